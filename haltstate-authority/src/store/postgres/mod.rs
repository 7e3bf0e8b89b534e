//! PostgreSQL storage: many authority instances on one database.
//!
//! `conn.rs` holds the driver choice and error mapping, `schema.rs` the tables, `runner.rs` the per-tenant
//! transactions, `tx.rs` the seam's implementation (with `approvals.rs` and `api_keys.rs`, those tables'
//! statements), `reads.rs` the reader threads, `listen.rs` approval changes from other instances, `verify.rs` the
//! chains' check.

/// The statements of `store/sql.rs` by the same names, in PostgreSQL's placeholders, made once: a statement
/// stays prepared on the connection under its `'static` text.
macro_rules! shared_statements {
    ($($name:ident),*) => {
        $(pub(crate) static $name: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| crate::store::sql::dollars(crate::store::sql::$name));)*
    };
}

mod api_keys;
mod approvals;
mod bulk;
mod checkpoints;
mod conn;
mod console;
mod copy;
mod held_rows;
mod listen;
mod pending;
mod queries;
mod reads;
mod runner;
mod schema;
mod tls;
mod tree;
mod tx;
mod usage;
mod verify;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use haltstate_types::VerifyReport;

use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result};
use crate::store::job::WriterCounters;

pub use copy::CopyReport;
pub(crate) use reads::PgReads;
pub(crate) use runner::PgRunner;

/// What an authority on PostgreSQL runs on.
pub(crate) struct Opened {
    /// One per writer, each on a connection of its own.
    pub(crate) runners: Vec<Box<dyn crate::store::job::Runner>>,
    pub(crate) reads: PgReads,
    /// Set to stop the listener thread.
    pub(crate) stop_listener: Arc<AtomicBool>,
}

/// Runs `work` on a thread of its own when called from inside an async runtime: the blocking client starts (and
/// on drop, stops) a runtime of its own, which tokio forbids inside another one.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Connects (an unreachable database is an error naming the URL without its password), migrates, and starts the
/// readers and the listener; `writers` connections are opened for the writers.
pub(crate) fn open(
    url: &PostgresUrl,
    migrate: bool,
    writers: usize,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
) -> Result<Opened> {
    off_runtime(|| open_here(url, migrate, writers, clock, counters, events))
}

fn open_here(
    url: &PostgresUrl,
    migrate: bool,
    writers: usize,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
) -> Result<Opened> {
    let mut conn = conn::connect(url)?;
    if migrate {
        schema::migrate(&mut conn)?;
    } else {
        schema::check(&mut conn)?;
    }
    // Every writer's connection at start: a database that cannot take them all (its max_connections) is told
    // now, not by the first batch of some tenants.
    let mut conns = vec![conn];
    for _ in 1..writers {
        conns.push(conn::connect(url)?);
    }
    // The readers first: if they cannot start, no listener thread is left behind.
    let reads = PgReads::start(url.clone())?;
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
            .map_err(|e| AuthorityError::storage(format!("cannot start the listener: {e}")))?;
    }
    let runners = conns
        .into_iter()
        .map(|conn| {
            Box::new(PgRunner::new(
                url.clone(),
                conn,
                clock.clone(),
                counters.clone(),
                events.clone(),
                instance.clone(),
            )) as Box<dyn crate::store::job::Runner>
        })
        .collect();
    Ok(Opened {
        runners,
        reads,
        stop_listener,
    })
}

/// Runs `migrate` only: for `haltstate db migrate`.
pub(crate) fn migrate(url: &PostgresUrl) -> Result<i64> {
    off_runtime(|| {
        let mut conn = conn::connect(url)?;
        schema::migrate(&mut conn)?;
        schema::version(&mut conn)
    })
}

/// Verifies the chains of the database at `url` without migrating or writing anything.
pub(crate) fn verify_database(url: &PostgresUrl) -> Result<VerifyReport> {
    off_runtime(|| {
        let mut conn = conn::connect(url)?;
        schema::check(&mut conn)?;
        verify::verify(&mut conn)
    })
}

/// Copies a SQLite authority into an empty PostgreSQL one (see `copy.rs`).
pub(crate) fn copy(from: &std::path::Path, to: &PostgresUrl) -> Result<CopyReport> {
    off_runtime(|| copy::copy(from, to))
}
