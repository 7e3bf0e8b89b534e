//! What every handler shares.

use std::time::Duration;

use haltstate_authority::Authority;

/// The server's shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The authority the server fronts.
    pub authority: Authority,
    /// How often the approvals stream sends a `:` comment when idle.
    pub sse_heartbeat: Duration,
}

impl AppState {
    /// State over `authority` with the default 15 s stream heartbeat.
    pub fn new(authority: Authority) -> Self {
        Self {
            authority,
            sse_heartbeat: Duration::from_secs(15),
        }
    }
}
