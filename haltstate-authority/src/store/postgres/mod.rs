//! PostgreSQL storage: many authority instances on one database.
//!
//! `conn.rs` holds the driver choice and error mapping, `schema.rs` the tables, `runner.rs` the per-tenant
//! transactions, `tx.rs` the seam's implementation, `reads.rs` the reader threads, `listen.rs` approval changes
//! from other instances, `verify.rs` the chains' check.

mod conn;
mod listen;
mod queries;
mod reads;
mod runner;
mod schema;
mod tx;
mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use haltstate_types::VerifyReport;

use crate::clock::Clock;
use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result};
use crate::events::ApprovalEvent;
use crate::store::job::WriterCounters;

pub(crate) use reads::PgReads;
pub(crate) use runner::PgRunner;

/// What an authority on PostgreSQL runs on.
pub(crate) struct Opened {
    pub(crate) runner: PgRunner,
    pub(crate) reads: PgReads,
    /// Set to stop the listener thread.
    pub(crate) stop_listener: Arc<AtomicBool>,
}

/// Connects (an unreachable database is an error naming the URL without its password), migrates, and starts the
/// readers and the listener.
pub(crate) fn open(
    url: &PostgresUrl,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
) -> Result<Opened> {
    let mut conn = conn::connect(url)?;
    schema::migrate(&mut conn)?;
    let instance = uuid::Uuid::new_v4().to_string();
    let stop_listener = Arc::new(AtomicBool::new(false));
    {
        let (url, instance, clock, events, stop) = (
            url.clone(),
            instance.clone(),
            clock.clone(),
            events.clone(),
            stop_listener.clone(),
        );
        std::thread::Builder::new()
            .name("haltstate-listener".into())
            .spawn(move || listen::run(url, instance, clock, events, stop))
            .map_err(|e| AuthorityError::Database(format!("cannot start the listener: {e}")))?;
    }
    Ok(Opened {
        runner: PgRunner::new(url.clone(), conn, clock, counters, events, instance),
        reads: PgReads::start(url.clone())?,
        stop_listener,
    })
}

/// Runs `migrate` only: for `haltstate db migrate`.
pub(crate) fn migrate(url: &PostgresUrl) -> Result<i64> {
    let mut conn = conn::connect(url)?;
    schema::migrate(&mut conn)?;
    schema::version(&mut conn)
}

/// Verifies the chains of the database at `url` without migrating or writing anything.
pub(crate) fn verify_database(url: &PostgresUrl) -> Result<VerifyReport> {
    let mut conn = conn::connect(url)?;
    schema::check(&mut conn)?;
    verify::verify(&mut conn)
}
