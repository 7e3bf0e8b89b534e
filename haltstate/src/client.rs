//! The client: one cheap handle over a transport, the kill switch and the spool. What it does is in
//! `operations.rs`; how it is configured in `builder.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use haltstate_types::KillState;

use crate::error::GuardError;
use crate::fail_mode::FailMode;
use crate::kill_switch::KillSwitch;
use crate::redact::RedactionKey;
use crate::transport::Transport;

/// The base URL the official SDKs use.
pub const DEFAULT_BASE_URL: &str = "https://haltstate.ai";
/// The agent id used when neither the call nor the client names one.
pub const DEFAULT_AGENT_ID: &str = "default";

/// The HaltState client: ask before acting, report after.
///
/// Cheap to clone (an `Arc` inside) and `Send + Sync`. Every operation is async; [`blocking`](Self::blocking)
/// gives the same operations for sync code. Network I/O runs on the client's own small runtime, so the client
/// works the same from any async runtime, from `spawn_blocking`, from a sync function called inside a
/// `current_thread` runtime, and with no runtime at all.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use haltstate::{Action, GuardError, HaltStateClient};
///
/// # let dir = tempfile::tempdir()?;
/// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db"))
/// #     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#).open()?;
/// let client = HaltStateClient::embedded(authority)?;
/// let permit = client.guard(Action::new("refund.create").key("refund:1042").param("amount_cents", 4_500)).await?;
/// // ... perform the refund ...
/// let evidence = permit.complete().await?;
/// assert_eq!(evidence.outcome, Some(haltstate::Outcome::Success));
///
/// // The same key never runs twice.
/// let again = client.guard(Action::new("refund.create").key("refund:1042").param("amount_cents", 4_500)).await;
/// assert!(matches!(again, Err(GuardError::AlreadyCompleted { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HaltStateClient {
    pub(crate) inner: Arc<Inner>,
}

/// The same client, under the name the other SDKs use for their async client.
pub type AsyncHaltStateClient = HaltStateClient;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) spool: crate::spool::Spool,
    pub(crate) tenant: String,
    pub(crate) agent_id: String,
    pub(crate) fail_mode: FailMode,
    pub(crate) redaction: Option<RedactionKey>,
    pub(crate) kill: KillSwitch,
    pub(crate) closed: AtomicBool,
    /// Whether the spool's delivery task runs.
    pub(crate) delivering: AtomicBool,
    pub(crate) runtime: Option<crate::runtime::IoRuntime>,
}

impl HaltStateClient {
    /// Runs `work` where the transport needs it: on the client's runtime for HTTP (whatever runtime, or none,
    /// the caller is on), inline for the embedded authority.
    pub(crate) async fn on_io<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: std::future::Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match (&self.inner.runtime, self.inner.transport.needs_io_runtime()) {
            (Some(runtime), true) => runtime.run(work, "I/O task").await,
            _ => work.await,
        }
    }

    /// Runs `work` on the client's runtime whatever the transport (for timers: waits and heartbeats).
    pub(crate) async fn on_runtime<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: std::future::Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match &self.inner.runtime {
            Some(runtime) => runtime.run(work, "task").await,
            None => Err(GuardError::Config("the client has shut down".into())),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.release();
        }
    }
}

/// A task on the client's runtime that must not keep the client alive: it holds a weak handle and asks for a
/// live one each round.
pub(crate) struct Background(std::sync::Weak<Inner>);

impl Background {
    /// Runs `task` on `client`'s runtime (an embedded client without one runs nothing in the background).
    pub(crate) fn spawn<F>(client: &HaltStateClient, task: impl FnOnce(Self) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &client.inner.runtime {
            runtime.spawn(task(Self(Arc::downgrade(&client.inner))));
        }
    }

    /// The client for one round, or `None` once the last handle is dropped or the client is closed: the task
    /// then ends.
    pub(crate) fn live(&self) -> Option<Arc<Inner>> {
        self.0
            .upgrade()
            .filter(|inner| !inner.closed.load(std::sync::atomic::Ordering::Acquire))
    }
}

impl HaltStateClient {
    /// The tenant this client acts for.
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The agent id used when a call names none.
    pub fn agent_id(&self) -> &str {
        &self.inner.agent_id
    }

    pub(crate) fn ensure_open(&self) -> Result<(), GuardError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(GuardError::Config("the client is closed".into()));
        }
        Ok(())
    }

    /// Fails fast, without a round trip, while the heartbeat says PAUSE or KILL.
    pub(crate) fn ensure_running(&self) -> Result<(), GuardError> {
        match self.inner.kill.state() {
            KillState::Run => Ok(()),
            state => Err(GuardError::KillSwitchTriggered {
                state,
                reason: format!("the heartbeat reported {state}"),
            }),
        }
    }

    /// The directory fail-open evidence is spooled to.
    pub fn spool_dir(&self) -> &std::path::Path {
        self.inner.spool.dir()
    }

    /// Stops the heartbeat and refuses further calls. Reports already sent are not affected.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;

    #[test]
    fn debug_output_of_builder_and_client_shows_no_secret() {
        let builder = HaltStateClient::builder()
            .base_url("http://127.0.0.1:1")
            .tenant("acme")
            .api_key("hs_live_do_not_print")
            .redaction_key("redaction-material");
        let client = builder.clone().build().unwrap();
        let key_bytes = format!("{:?}", b"redaction-material".to_vec());
        for shown in [
            format!("{builder:?}"),
            format!("{client:?}"),
            format!("{client:#?}"),
        ] {
            assert!(!shown.contains("hs_live_do_not_print"), "{shown}");
            assert!(!shown.contains(&key_bytes[1..20]), "{shown}");
            assert!(shown.contains("acme"), "{shown}");
        }
        assert!(format!("{builder:?}").contains(REDACTED));
    }
}
