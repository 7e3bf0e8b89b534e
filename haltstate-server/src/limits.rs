//! How much a client may take: connection timeouts and counts, request rates. Every default is a `serve` flag.

use std::num::NonZeroU32;
use std::time::Duration;

/// The server's limits on connections and requests.
///
/// ```
/// use std::time::Duration;
/// use haltstate_server::ServeLimits;
///
/// let limits = ServeLimits { max_connections: 256, idle_timeout: Duration::from_secs(30), ..ServeLimits::default() };
/// assert_eq!(limits.header_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// From a request's first byte to the end of its headers (default 10 s): a slower client is disconnected.
    pub header_timeout: Duration,
    /// To receive a request's whole body once its headers arrived (default 30 s): a slower body is answered 408
    /// and the connection closed.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (default 60 s).
    pub idle_timeout: Duration,
    /// Connections served at once (default 512; keep it below the process's file descriptor limit). Past it, a
    /// few more are accepted only to answer `/healthz` and a 503 `too_many_connections` with `Retry-After`; past
    /// those, new connections are closed at once.
    pub max_connections: usize,
    /// Connections one client address may hold at once (default 128, a quarter of the default limit): past it,
    /// that address gets what a connection past `max_connections` gets, and everyone else is still served. Behind a
    /// reverse proxy every client shares its address: raise this to `max_connections` there.
    pub max_connections_per_address: usize,
    /// Open approval streams (and console live views) per key (default 4): past it, 429 `too_many_streams`.
    pub max_streams_per_key: usize,
    /// Console sessions one tenant may hold (default 256): signing in past it ends that tenant's oldest session,
    /// never another tenant's.
    pub max_sessions_per_tenant: usize,
    /// On SIGTERM: how long in-flight requests and approval streams get before the server exits anyway
    /// (default 10 s). Streams are ended at once; requests finish within this.
    pub shutdown_timeout: Duration,
    /// Failed authentications one client address may make per minute (default 60, also the burst). Past it every
    /// request from that address is answered 429 with `Retry-After`, before its key is even looked at.
    pub auth_failures_per_minute: NonZeroU32,
    /// Requests per second for a key that has no limit of its own (default: none).
    pub key_rate_limit: Option<NonZeroU32>,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_connections_per_address: 128,
            max_streams_per_key: 4,
            max_sessions_per_tenant: 256,
            shutdown_timeout: Duration::from_secs(10),
            auth_failures_per_minute: NonZeroU32::MIN.saturating_add(59),
            key_rate_limit: None,
        }
    }
}
