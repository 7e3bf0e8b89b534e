//! The same operations for sync code.
//!
//! Works outside any runtime, inside a multi-thread runtime (e.g. from `spawn_blocking`), and from a sync
//! function called inside a `current_thread` runtime: the I/O runs on the client's own runtime threads, and this
//! thread only waits for the answer, so nothing here needs (or blocks) the caller's runtime to make progress.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use time::OffsetDateTime;

use crate::action::Action;
use crate::answers::{ApprovalDecision, CheckResult, Outcome};
use crate::client::HaltStateClient;
use crate::error::GuardError;
use crate::evidence::Evidence;
use crate::kill_switch::KillState;

/// A [`HaltStateClient`] with blocking methods. Get one with [`HaltStateClient::blocking`].
///
/// ```
/// use haltstate::{Action, HaltStateClient};
///
/// # let dir = tempfile::tempdir()?;
/// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db"))
/// #     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#).open()?;
/// let client = HaltStateClient::embedded(authority)?.blocking();
/// let permit = client.guard(Action::new("data.export").key("export:2026-01").param("count", 100))?;
/// // ... export ...
/// let evidence = permit.complete()?;
/// assert_eq!(evidence.decision, "allowed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BlockingClient {
    client: HaltStateClient,
}

impl BlockingClient {
    pub(crate) fn new(client: HaltStateClient) -> Self {
        Self { client }
    }

    /// The async client behind this one.
    pub fn client(&self) -> &HaltStateClient {
        &self.client
    }

    /// See [`HaltStateClient::guard`].
    pub fn guard(&self, action: Action) -> Result<Permit, GuardError> {
        block_on(self.client.guard(action)).map(|permit| Permit { inner: permit })
    }

    /// See [`HaltStateClient::check`].
    pub fn check(&self, action: Action) -> Result<CheckResult, GuardError> {
        block_on(self.client.check(action))
    }

    /// See [`HaltStateClient::report`].
    pub fn report(
        &self,
        check: &CheckResult,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), GuardError> {
        block_on(self.client.report(check, outcome, error))
    }

    /// See [`HaltStateClient::approval`].
    pub fn approval(&self, approval_id: &str) -> Result<ApprovalDecision, GuardError> {
        block_on(self.client.approval(approval_id))
    }

    /// See [`HaltStateClient::wait_for_approval`].
    pub fn wait_for_approval(
        &self,
        approval_id: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, GuardError> {
        block_on(self.client.wait_for_approval(approval_id, timeout))
    }

    /// See [`HaltStateClient::approvals_since`].
    pub fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        block_on(self.client.approvals_since(since, limit))
    }

    /// See [`HaltStateClient::heartbeat`].
    pub fn heartbeat(&self) -> Result<KillState, GuardError> {
        block_on(self.client.heartbeat())
    }
}

/// A [`crate::Permit`] whose outcome is reported by blocking calls.
#[derive(Debug)]
#[must_use = "a permit must be completed or failed; dropping it reports the action as aborted"]
pub struct Permit {
    inner: crate::Permit,
}

impl Permit {
    /// The async permit inside.
    pub fn into_inner(self) -> crate::Permit {
        self.inner
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> &str {
        self.inner.idempotency_key()
    }

    /// Who approved.
    pub fn approver(&self) -> Option<&str> {
        self.inner.approver()
    }

    /// The approval behind an approved permit.
    pub fn approval_id(&self) -> Option<&str> {
        self.inner.approval_id()
    }

    /// Whether the authority decided (not fail-open).
    pub fn is_verified(&self) -> bool {
        self.inner.is_verified()
    }

    /// Adds a safe reference to what the body produced.
    pub fn add_resource_ref(&mut self, reference: impl Into<String>) {
        self.inner.add_resource_ref(reference);
    }

    /// Reports success.
    pub fn complete(self) -> Result<Evidence, GuardError> {
        self.inner.finish_blocking(Outcome::Success, None)
    }

    /// Reports failure.
    pub fn fail(self, error: impl std::fmt::Display) -> Result<Evidence, GuardError> {
        self.inner
            .finish_blocking(Outcome::Error, Some(error.to_string()))
    }

    /// Reports `outcome`.
    pub fn finish(self, outcome: Outcome, error: Option<String>) -> Result<Evidence, GuardError> {
        self.inner.finish_blocking(outcome, error)
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` on this thread by parking between polls.
///
/// The client's futures only wait on work running elsewhere (its runtime's threads, or the embedded
/// authority's writer thread), so this never needs the caller's runtime and cannot deadlock it; unlike a
/// runtime's `block_on`, it does not panic when called from inside one.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
