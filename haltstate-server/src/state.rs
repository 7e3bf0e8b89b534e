//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use haltstate_authority::Authority;
use tokio_util::sync::CancellationToken;

use crate::limits::ServeLimits;
use crate::rate::RateLimits;
use crate::refusals::Refusals;

/// The server's shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The authority the server fronts.
    pub authority: Authority,
    /// How often the approvals stream sends a `:` comment when idle.
    pub sse_heartbeat: Duration,
    /// How often an approvals stream re-reads the database (decisions made by another process) and checks that
    /// its key is still live.
    pub sse_poll: Duration,
    /// Cancelled when the server shuts down: approval streams end on it.
    pub shutdown: CancellationToken,
    /// Whether `/ui` (the operators' console) is served.
    pub console: bool,
    /// The public half of the evidence signing key, when the server signs: the console checks proof packs with it.
    pub signing_public: Option<haltstate_types::proof::VerifyingKey>,
    /// Whether webhooks added in the console may name loopback, link-local or private addresses (see
    /// [`outbound`](crate::outbound)); the sender checks again at each attempt.
    pub allow_private_targets: bool,
    pub(crate) sessions: Arc<crate::console::session::Sessions>,
    pub(crate) limits: ServeLimits,
    pub(crate) rates: Arc<RateLimits>,
    pub(crate) refusals: Arc<Refusals>,
    pub(crate) streams: Arc<crate::streams::Streams>,
    pub(crate) long_reads: Arc<crate::long_reads::LongReads>,
}

/// The state the [`router`](crate::router)'s handlers share: one [`AppState`] behind a reference count. The
/// router makes it from the `AppState` it is given; it reads as that `AppState`.
///
/// axum clones a handler's state for every request, several times (the logging middleware's, the handler
/// service's, each `State` extractor's), and drops each clone. Cloning an `AppState` bumps six reference
/// counts, locks the shutdown token's mutex and copies the signing key; cloning this bumps one count
/// (server CPU per action 0.975x at 64 connections, BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Shared(Arc<AppState>);

impl Shared {
    pub(crate) fn new(state: AppState) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for Shared {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl AppState {
    /// State over `authority` with the default limits and a 15 s stream heartbeat.
    pub fn new(authority: Authority) -> Self {
        Self::with_limits(authority, ServeLimits::default())
    }

    /// State over `authority` with these limits.
    pub fn with_limits(authority: Authority, limits: ServeLimits) -> Self {
        Self {
            authority,
            sse_heartbeat: Duration::from_secs(15),
            sse_poll: Duration::from_secs(1),
            shutdown: CancellationToken::new(),
            console: true,
            signing_public: None,
            allow_private_targets: false,
            sessions: Arc::default(),
            limits,
            rates: Arc::new(RateLimits::new(&limits)),
            refusals: Arc::new(Refusals::default()),
            streams: Arc::default(),
            long_reads: Arc::default(),
        }
    }

    /// The limits this state enforces.
    pub fn limits(&self) -> &ServeLimits {
        &self.limits
    }
}
