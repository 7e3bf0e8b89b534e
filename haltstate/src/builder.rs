//! Configuring a [`HaltStateClient`]: where the authority is, who the client is, how long it waits, what it
//! does when the authority is away.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::client::{DEFAULT_AGENT_ID, DEFAULT_BASE_URL, HaltStateClient, Inner};
use crate::error::GuardError;
use crate::fail_mode::FailMode;
use crate::kill_switch::KillSwitch;
use crate::redact::{REDACTED, RedactionKey};
use crate::runtime::IoRuntime;
use crate::spool::Spool;
use crate::transport::Transport;
use crate::transport::http::{HttpSettings, HttpTransport};

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
    io_runtime: Option<tokio::runtime::Handle>,
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
            .field("spool_dir", &self.spool_dir)
            .field("io_runtime", &self.io_runtime.is_some());
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
            io_runtime: None,
            #[cfg(feature = "embedded")]
            authority: None,
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
        ClientBuilder::from_env()?.build()
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
    /// `<temp dir>/haltstate-spool/<digest of the base URL>/<tenant>`). Use a directory that survives restarts:
    /// evidence spooled by one process is delivered by the next client that uses the same directory. Only a
    /// client that may fail open (or finds evidence waiting there when built) watches it.
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Runs the client's HTTP I/O and background tasks (heartbeat, spool delivery) on this multi-thread runtime
    /// instead of a runtime of its own (two threads). A call made from a task of that runtime then runs where it
    /// was made, instead of being handed to the client's thread and back: for a service that lives on one
    /// runtime, less CPU and latency per call (BENCHMARKS.md). Calls from anywhere else still work; the blocking
    /// API must not be called from this runtime's worker threads (it would hold one while it waits).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let client = haltstate::HaltStateClient::builder()
    ///     .tenant("acme")
    ///     .api_key("hs_example")
    ///     .io_runtime(runtime.handle().clone())
    ///     .build()?;
    /// # drop(client);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A `current_thread` runtime is refused when the client is built ([`GuardError::Config`]): the I/O of a
    /// blocking call made on its thread would wait for that very thread.
    pub fn io_runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.io_runtime = Some(handle);
        self
    }

    /// Talks to this in-process authority instead of HTTP.
    #[cfg(feature = "embedded")]
    pub fn authority(mut self, authority: haltstate_authority::Authority) -> Self {
        self.authority = Some(authority);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HaltStateClient, GuardError> {
        let runtime = match self.io_runtime.clone() {
            Some(handle) => IoRuntime::shared(handle)?,
            None => IoRuntime::own()?,
        };
        let (transport, tenant, redaction) = self.transport()?;
        let spool = Spool::new(
            self.spool_dir
                .clone()
                .unwrap_or_else(|| crate::spool::default_dir(&self.base_url, &tenant)),
        );
        // Only a client that may run fail-open (or has evidence left from a process that did) watches the spool.
        let deliver = self.fail_mode == FailMode::Open || !spool.pending().is_empty();
        let client = HaltStateClient {
            inner: Arc::new(Inner {
                transport,
                spool,
                tenant,
                agent_id: self.agent_id,
                fail_mode: self.fail_mode,
                redaction,
                kill: KillSwitch::new(),
                closed: AtomicBool::new(false),
                delivering: AtomicBool::new(deliver),
                runtime: Some(runtime),
            }),
        };
        if let Some(interval) = self.kill_switch_interval {
            crate::heartbeat::start(&client, interval);
        }
        if deliver {
            crate::delivery::start(&client);
        }
        Ok(client)
    }

    /// The transport, the tenant and the redaction key this configuration names.
    fn transport(&self) -> Result<(Transport, String, Option<RedactionKey>), GuardError> {
        #[cfg(feature = "embedded")]
        if let Some(authority) = &self.authority {
            let tenant = self
                .tenant
                .clone()
                .unwrap_or_else(|| DEFAULT_AGENT_ID.to_owned());
            // No API key to derive from: secrets need an explicit key (checked when one is sent).
            let redaction = self
                .redaction_key
                .as_deref()
                .map(RedactionKey::from_material);
            let transport = Transport::Embedded(crate::transport::embedded::EmbeddedTransport {
                authority: authority.clone(),
                tenant: tenant.clone(),
            });
            return Ok((transport, tenant, redaction));
        }
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
        Ok((
            Transport::Http(Box::new(HttpTransport::new(settings)?)),
            tenant,
            Some(RedactionKey::from_material(&material)),
        ))
    }
}
