//! Reads whose time grows with a tenant's ledger, run off the runtime's workers.
//!
//! An evidence search by action or agent is not indexed: one that matches little reads the tenant's whole ledger
//! (~1 µs a record: a second at 10^6 records, ten at 10^7); the console's chain check reads and hashes all of it,
//! its shadow page a week of it. Run on a worker, such a read holds one of the few threads that serve every
//! tenant's agents: four operators searching a 1.26-million-record ledger stopped a 2-core server's guards
//! (0 actions/s, p50 2.8 s at one connection; 345 actions/s and p50 1.3 ms with the searches here instead). On
//! the blocking pool they share the CPU with the workers.

use haltstate_authority::{AuthorityError, Result};

/// Runs `read` on tokio's blocking pool and answers what it answered. A read that panics answers
/// [`AuthorityError::Unavailable`] (a bug, reported as a failure to read, never as an empty answer).
pub(crate) async fn off_workers<T, F>(read: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|stopped| {
            Err(AuthorityError::Unavailable(format!(
                "the read stopped: {stopped}"
            )))
        })
}
