//! The client: one handle for check, guard, report, approvals and the kill switch, from async or sync code.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::action::{Action, Param};
use crate::answers::{ApprovalDecision, CheckResult, Outcome, ProofStatus};
use crate::error::GuardError;
use crate::kill_switch::{KillState, KillSwitch};
use crate::permit::{Permit, PermitParts};
use crate::redact::REDACTED;
use crate::redact::RedactionKey;
use crate::transport::http::{HttpSettings, HttpTransport};
use crate::transport::{CheckReportOut, GuardStatus, Outgoing, Transport};

/// The base URL the official SDKs use.
pub const DEFAULT_BASE_URL: &str = "https://haltstate.ai";
/// The agent id used when neither the call nor the client names one.
pub const DEFAULT_AGENT_ID: &str = "default";

/// What a call does when the authority cannot be consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Do not run the action (the default: right for money, PII and production writes).
    #[default]
    Closed,
    /// Run it anyway, mark its evidence `unverified`, and keep that evidence for later delivery.
    Open,
}

/// Configures a [`HaltStateClient`].
///
/// ```
/// use std::time::Duration;
/// use haltstate::{FailMode, HaltStateClient};
///
/// let client = HaltStateClient::builder()
///     .tenant("acme")
///     .api_key("hs_example")
///     .base_url("http://127.0.0.1:8787")
///     .agent_id("billing-agent")
///     .request_timeout(Duration::from_secs(2))
///     .deadline(Duration::from_secs(5))
///     .fail_mode(FailMode::Closed)
///     .build()?;
/// # Ok::<(), haltstate::GuardError>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    tenant: Option<String>,
    api_key: Option<String>,
    base_url: String,
    request_timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    fail_mode: FailMode,
    agent_id: String,
    kill_switch_interval: Option<Duration>,
    redaction_key: Option<Vec<u8>>,
    user_agent: String,
    spool_dir: Option<std::path::PathBuf>,
    #[cfg(feature = "embedded")]
    authority: Option<haltstate_authority::Authority>,
}

/// Shows the settings with the API key and the redaction key as `<redacted>`: a client is often logged with `?`.
impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("ClientBuilder");
        out.field("tenant", &self.tenant)
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("base_url", &self.base_url)
            .field("request_timeout", &self.request_timeout)
            .field("deadline", &self.deadline)
            .field("max_retries", &self.max_retries)
            .field("fail_mode", &self.fail_mode)
            .field("agent_id", &self.agent_id)
            .field("kill_switch_interval", &self.kill_switch_interval)
            .field(
                "redaction_key",
                &self.redaction_key.as_ref().map(|_| REDACTED),
            )
            .field("user_agent", &self.user_agent)
            .field("spool_dir", &self.spool_dir);
        #[cfg(feature = "embedded")]
        out.field("authority", &self.authority);
        out.finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            tenant: None,
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            request_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(15),
            max_retries: 3,
            fail_mode: FailMode::Closed,
            agent_id: DEFAULT_AGENT_ID.to_owned(),
            kill_switch_interval: None,
            redaction_key: None,
            user_agent: format!("haltstate-rust/{}", env!("CARGO_PKG_VERSION")),
            spool_dir: None,
            #[cfg(feature = "embedded")]
            authority: None,
        }
    }
}

impl ClientBuilder {
    /// The tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The API key (`hs_...`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The authority's base URL (default `https://haltstate.ai`; a path such as `/ops` is kept).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The timeout of one HTTP request (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The total time one operation may take, retries included (default 15 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many times a failed request is retried within the deadline (default 3).
    pub fn retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// What calls do when the authority cannot be consulted (default closed).
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// The agent id used when a call names none.
    pub fn agent_id(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = agent_id.into();
        self
    }

    /// Starts a kill-switch heartbeat every `interval`: KILL or PAUSE then fails every guard fast.
    pub fn kill_switch_interval(mut self, interval: Duration) -> Self {
        self.kill_switch_interval = Some(interval);
        self
    }

    /// The key [`secret`](crate::secret) values are digested under. Keep it stable: a digest is part of an
    /// action's identity, so a retry from another process must produce the same one.
    pub fn redaction_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.redaction_key = Some(key.as_ref().to_vec());
        self
    }

    /// Where fail-open evidence waits for delivery (default `$HALTSTATE_SPOOL_DIR`, else
    /// `<temp dir>/haltstate-spool/<tenant>`). Use a directory that survives restarts: evidence spooled by one
    /// process is delivered by the next client that uses the same directory.
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// A builder configured from the process environment (see [`crate::env`]).
    pub fn from_env() -> Result<Self, GuardError> {
        crate::env::builder_from_env()
    }

    /// A builder configured from these variables instead of the process environment, by the same rules
    /// as [`from_env`](Self::from_env): for tests, and for configuration kept elsewhere.
    ///
    /// ```
    /// let error = haltstate::ClientBuilder::from_vars([("HALTSTATE_TENANT_ID", "acme")]).unwrap_err();
    /// assert_eq!(error.to_string(), "configuration error: HALTSTATE_API_KEY is not set");
    /// ```
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, GuardError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        crate::env::builder_from(&|name| vars.get(name).cloned())
    }

    /// Talks to this in-process authority instead of HTTP.
    #[cfg(feature = "embedded")]
    pub fn authority(mut self, authority: haltstate_authority::Authority) -> Self {
        self.authority = Some(authority);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HaltStateClient, GuardError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("haltstate-io")
            .enable_all()
            .build()
            .map_err(|e| GuardError::Config(format!("cannot start the client runtime: {e}")))?;
        #[cfg(feature = "embedded")]
        let embedded = self.authority.clone();
        #[cfg(not(feature = "embedded"))]
        let embedded: Option<()> = None;

        let (transport, tenant, redaction) = match embedded {
            #[cfg(feature = "embedded")]
            Some(authority) => {
                let tenant = self
                    .tenant
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AGENT_ID.to_owned());
                // No API key to derive from: secrets need an explicit key (checked when one is sent).
                let redaction = self
                    .redaction_key
                    .as_deref()
                    .map(RedactionKey::from_material);
                let transport =
                    Transport::Embedded(crate::transport::embedded::EmbeddedTransport {
                        authority,
                        tenant: tenant.clone(),
                    });
                (transport, tenant, redaction)
            }
            _ => {
                let tenant = self
                    .tenant
                    .clone()
                    .ok_or_else(|| GuardError::Config("the tenant id is missing".into()))?;
                let api_key = self
                    .api_key
                    .clone()
                    .ok_or_else(|| GuardError::Config("the API key is missing".into()))?;
                let material = match &self.redaction_key {
                    Some(key) => key.clone(),
                    None => format!("{tenant}\0{api_key}").into_bytes(),
                };
                let settings = HttpSettings {
                    base_url: self.base_url.clone(),
                    tenant: tenant.clone(),
                    api_key,
                    request_timeout: self.request_timeout,
                    deadline: self.deadline,
                    max_retries: self.max_retries,
                    user_agent: self.user_agent.clone(),
                };
                (
                    Transport::Http(Box::new(HttpTransport::new(settings)?)),
                    tenant,
                    Some(RedactionKey::from_material(&material)),
                )
            }
        };
        let spool = crate::spool::Spool::new(
            self.spool_dir
                .clone()
                .unwrap_or_else(|| crate::spool::default_dir(&tenant)),
        );
        let inner = Arc::new(Inner {
            transport,
            spool,
            tenant,
            agent_id: self.agent_id,
            fail_mode: self.fail_mode,
            redaction,
            kill: KillSwitch::new(),
            closed: AtomicBool::new(false),
            runtime: Some(runtime),
        });
        let client = HaltStateClient { inner };
        if let Some(interval) = self.kill_switch_interval {
            client.start_heartbeat(interval);
        }
        client.start_spool_delivery();
        Ok(client)
    }
}

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
    pub(crate) runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; shutting it down in the background never does.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl HaltStateClient {
    /// A client for the authority at the default base URL.
    pub fn new(
        tenant_id: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Result<Self, GuardError> {
        Self::builder().tenant(tenant_id).api_key(api_key).build()
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client of an authority in this process (tenant `default`; use the builder for another).
    #[cfg(feature = "embedded")]
    pub fn embedded(authority: haltstate_authority::Authority) -> Result<Self, GuardError> {
        Self::builder().authority(authority).build()
    }

    /// A client configured from the environment; see [`crate::env`] for the variables.
    pub fn from_env() -> Result<Self, GuardError> {
        crate::env::builder_from_env()?.build()
    }

    /// The tenant this client acts for.
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    /// The agent id used when a call names none.
    pub fn agent_id(&self) -> &str {
        &self.inner.agent_id
    }

    /// The same client with blocking methods, for sync code.
    pub fn blocking(&self) -> crate::blocking::BlockingClient {
        crate::blocking::BlockingClient::new(self.clone())
    }

    /// Runs `work` where the transport needs it: on the client's runtime for HTTP (whatever runtime, or none,
    /// the caller is on), inline for the embedded authority.
    pub(crate) async fn on_io<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match (&self.inner.runtime, self.inner.transport.needs_io_runtime()) {
            (Some(runtime), true) => runtime
                .spawn(work)
                .await
                .map_err(|e| GuardError::Protocol(format!("the client's I/O task failed: {e}")))?,
            _ => work.await,
        }
    }

    /// Runs `work` on the client's runtime whatever the transport (for timers: waits and heartbeats).
    pub(crate) async fn on_runtime<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match &self.inner.runtime {
            Some(runtime) => runtime
                .spawn(work)
                .await
                .map_err(|e| GuardError::Protocol(format!("the client's task failed: {e}")))?,
            None => Err(GuardError::Config("the client has shut down".into())),
        }
    }

    fn ensure_open(&self) -> Result<(), GuardError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(GuardError::Config("the client is closed".into()));
        }
        Ok(())
    }

    /// Fails fast, without a round trip, while the heartbeat says PAUSE or KILL.
    fn ensure_running(&self) -> Result<(), GuardError> {
        match self.inner.kill.state() {
            KillState::Run => Ok(()),
            state => Err(GuardError::KillSwitchTriggered {
                state,
                reason: format!("the heartbeat reported {state}"),
            }),
        }
    }

    /// Redacts and bounds an action into what leaves the process.
    pub(crate) fn outgoing(&self, action: &Action) -> Result<Outgoing, GuardError> {
        let mut params = Map::new();
        let mut redacted = Vec::new();
        for (name, value) in &action.params {
            let value = match value {
                Param::Plain(Ok(value)) => value.clone(),
                Param::Plain(Err(why)) => {
                    return Err(GuardError::Config(format!(
                        "param {name:?} does not serialize: {why}"
                    )));
                }
                Param::Secret(secret) => {
                    let key = self.inner.redaction.as_ref().ok_or_else(|| {
                        GuardError::Config(format!(
                            "param {name:?} is secret but no redaction key is configured (ClientBuilder::redaction_key)"
                        ))
                    })?;
                    redacted.push(name.clone());
                    Value::String(key.digest(secret.expose()))
                }
            };
            params.insert(name.clone(), value);
        }
        Ok(Outgoing {
            agent_id: action
                .agent_id
                .clone()
                .unwrap_or_else(|| self.inner.agent_id.clone()),
            action: action.name.clone(),
            params,
            resource: action.resource.clone(),
            risk: action.risk.clone(),
            metadata: action.metadata.clone(),
            redacted_fields: redacted,
            idempotency_key: action.idempotency_key.clone(),
            claim_token: None,
            request_id: action.request_id.clone(),
        })
    }

    /// Asks whether `action` may run under its idempotency key, and claims the key when it may.
    ///
    /// `Ok(Permit)`: run the side effect, then [`Permit::complete`] or [`Permit::fail`] (a permit dropped without
    /// either reports `aborted`). Every other answer is a [`GuardError`]: `ApprovalPending` (exit, retry later
    /// with the same key), `ActionDenied`, `ActionExpired`, `AlreadyCompleted`, `InProgress`,
    /// `IdempotencyConflict`, `KillSwitchTriggered`, or a failure to reach the authority (which runs the action
    /// only under [`FailMode::Open`]). A guard is never retried once it has answered.
    pub async fn guard(&self, action: Action) -> Result<Permit, GuardError> {
        self.ensure_open()?;
        let key = action
            .idempotency_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                GuardError::Config(format!(
                    "guard of {:?} needs an idempotency key (Action::key)",
                    action.name
                ))
            })?;
        let mut out = self.outgoing(&action)?;
        let span = tracing::info_span!(
            "haltstate.guard",
            action = %out.action,
            agent_id = %out.agent_id,
            idempotency_key = %key,
            decision = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        self.ensure_running()
            .inspect_err(|e| crate::evidence::refused(&span, e))?;
        // Our own claim token makes the guard safe to retry: a lost answer gives the same claim back.
        out.claim_token = Some(uuid::Uuid::new_v4().simple().to_string());
        let started = Instant::now();
        let reply = {
            let client = self.clone();
            let out = out.clone();
            self.on_io(async move { client.inner.transport.guard(&out).await })
                .instrument(span.clone())
                .await
        };
        let decision_latency = started.elapsed();
        let parts = PermitParts {
            client: self.clone(),
            action: out.action.clone(),
            agent_id: out.agent_id.clone(),
            idempotency_key: key.clone(),
            resource: out.resource.clone(),
            redacted_fields: out.redacted_fields.clone(),
            sensitive: action.sensitive_values(),
            decision_latency,
            span: span.clone(),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error)
                if error.is_unavailable()
                    && action.fail_mode.unwrap_or(self.inner.fail_mode) == FailMode::Open =>
            {
                tracing::warn!(parent: &span, %error, "authority unavailable; running fail-open, evidence unverified");
                return Ok(Permit::unverified(parts, error.to_string()));
            }
            Err(error) => {
                crate::evidence::refused(&span, &error);
                return Err(error);
            }
        };
        let refusal = match reply.status {
            GuardStatus::Allowed | GuardStatus::Approved => {
                return Ok(Permit::granted(parts, reply));
            }
            GuardStatus::Denied => match reply.kill_switch {
                Some(state) if state != KillState::Run => GuardError::KillSwitchTriggered {
                    state,
                    reason: reply.reason,
                },
                _ => GuardError::ActionDenied {
                    reason: reply.reason,
                    policy_id: reply.policy_id,
                },
            },
            GuardStatus::Pending => GuardError::ApprovalPending {
                approval_id: reply.approval_id.unwrap_or_default(),
                idempotency_key: key,
                action: out.action,
            },
            GuardStatus::Expired => GuardError::ActionExpired {
                idempotency_key: key,
            },
            GuardStatus::Completed => GuardError::AlreadyCompleted {
                idempotency_key: key,
            },
            GuardStatus::InProgress => GuardError::InProgress {
                idempotency_key: key,
            },
        };
        crate::evidence::refused(&span, &refusal);
        Err(refusal)
    }

    /// Asks for a decision without claiming anything; the caller branches on it and may [`report`](Self::report).
    /// A transport failure answers a synthetic ALLOW only under [`FailMode::Open`].
    pub async fn check(&self, action: Action) -> Result<CheckResult, GuardError> {
        self.ensure_open()?;
        self.ensure_running()?;
        let mut out = self.outgoing(&action)?;
        // B5: the request id is ours, sent, and kept by the authority, so reports correlate.
        let request_id = out
            .request_id
            .get_or_insert_with(|| format!("req_{}", uuid::Uuid::new_v4().simple()))
            .clone();
        let client = self.clone();
        let sent = out.clone();
        match self
            .on_io(async move { client.inner.transport.check(&sent).await })
            .await
        {
            Ok(result) => Ok(result),
            Err(error)
                if error.is_unavailable()
                    && action.fail_mode.unwrap_or(self.inner.fail_mode) == FailMode::Open =>
            {
                tracing::warn!(%error, action = %out.action, "authority unavailable; fail-open ALLOW (unverified)");
                Ok(CheckResult {
                    decision: crate::answers::Decision::Allow,
                    reason: format!("fail-open: {error}"),
                    policy_id: None,
                    approval_id: None,
                    request_id,
                    action: out.action,
                    agent_id: out.agent_id,
                    latency: Duration::ZERO,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Reports what happened after a check. Returns the authority's error instead of swallowing it (B9).
    pub async fn report(
        &self,
        check: &CheckResult,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), GuardError> {
        self.ensure_open()?;
        let out = CheckReportOut {
            request_id: check.request_id.clone(),
            agent_id: check.agent_id.clone(),
            action: check.action.clone(),
            status: outcome.as_str().to_owned(),
            decision: check.decision.as_str().to_owned(),
            policy_id: check.policy_id.clone(),
            error: error.map(|e| crate::redact::scrub(e, &[], crate::permit::MAX_ERROR_CHARS)),
        };
        let client = self.clone();
        self.on_io(async move { client.inner.transport.report_check(&out).await })
            .await
    }

    /// The current state of one approval.
    pub async fn approval(&self, approval_id: &str) -> Result<ApprovalDecision, GuardError> {
        let (client, id) = (self.clone(), approval_id.to_owned());
        self.on_io(async move { client.inner.transport.approval(&id).await })
            .await
    }

    /// Waits until `approval_id` is decided or `timeout` passes, polling with backoff (capped at 5 s) and never
    /// sleeping past the deadline (B16). An approval not yet visible (404) is retried until the deadline.
    pub async fn wait_for_approval(
        &self,
        approval_id: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, GuardError> {
        let (client, id) = (self.clone(), approval_id.to_owned());
        self.on_runtime(async move {
            let started = tokio::time::Instant::now();
            let deadline = started + timeout;
            let mut interval = Duration::from_millis(100);
            loop {
                if client.inner.kill.state() != KillState::Run {
                    client.ensure_running()?;
                }
                match client.inner.transport.approval(&id).await {
                    Ok(decision) if decision.status.is_terminal() => return Ok(decision),
                    Ok(_) => {}
                    Err(
                        GuardError::Rejected { status: 404, .. }
                        | GuardError::Connection(_)
                        | GuardError::RateLimited { .. },
                    ) => {}
                    Err(other) => return Err(other),
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(GuardError::ApprovalTimeout {
                        approval_id: id,
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(interval.min(deadline - now)).await;
                interval = (interval.mul_f32(1.5)).min(Duration::from_secs(5));
            }
        })
        .await
    }

    /// Decisions made after `since`, oldest first.
    pub async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let client = self.clone();
        self.on_io(async move { client.inner.transport.approvals_since(since, limit).await })
            .await
    }

    /// The kill-switch state as the heartbeat last saw it, as a `watch` channel the app can await.
    pub fn kill_switch(&self) -> tokio::sync::watch::Receiver<KillState> {
        self.inner.kill.watch()
    }

    /// Asks the authority for this client's kill-switch state now, and applies it.
    pub async fn heartbeat(&self) -> Result<KillState, GuardError> {
        let client = self.clone();
        let state = self
            .on_io(async move {
                let agent = client.inner.agent_id.clone();
                client.inner.transport.heartbeat(&agent).await
            })
            .await?;
        self.inner.kill.set(state);
        Ok(state)
    }

    fn start_heartbeat(&self, interval: Duration) {
        let Some(runtime) = &self.inner.runtime else {
            return;
        };
        // The task holds a weak handle, so it ends when the last client is dropped.
        let weak = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let agent = inner.agent_id.clone();
                match inner.transport.heartbeat(&agent).await {
                    Ok(state) => inner.kill.set(state),
                    // B15: a failing heartbeat is logged, never silent.
                    Err(error) => tracing::warn!(%error, "kill-switch heartbeat failed"),
                }
                drop(inner);
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// Delivers spooled fail-open evidence whenever there is some and the authority answers.
    fn start_spool_delivery(&self) {
        let Some(runtime) = &self.inner.runtime else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                for path in inner.spool.pending() {
                    let Some(evidence) = inner.spool.read(&path) else {
                        continue;
                    };
                    match inner.transport.deliver_unverified(&evidence).await {
                        Ok(()) => inner.spool.delivered(&path),
                        // Malformed for the authority: retrying would never succeed.
                        Err(error @ GuardError::Rejected { .. }) => {
                            inner.spool.refused(&path, &error)
                        }
                        // Still unreachable (or refusing us): keep everything for the next round.
                        Err(error) => {
                            tracing::debug!(%error, "spooled evidence not delivered yet");
                            break;
                        }
                    }
                }
                let wake = tokio::time::sleep(crate::spool::DELIVERY_INTERVAL);
                tokio::select! {
                    () = inner.spool.wake.notified() => {}
                    () = wake => {}
                }
                drop(inner);
            }
        });
    }

    /// The directory fail-open evidence is spooled to.
    pub fn spool_dir(&self) -> &std::path::Path {
        self.inner.spool.dir()
    }

    /// Stops the heartbeat and refuses further calls. Reports already sent are not affected.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    pub(crate) fn proof_for(&self, unverified: bool) -> ProofStatus {
        if unverified {
            ProofStatus::Unverified
        } else {
            ProofStatus::Verified
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
