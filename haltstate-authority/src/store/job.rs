//! Operations queued for a batch, and the answers they hold until the batch commits.
//!
//! An operation's answer is held until the commit, so every acknowledged change is durable and a failed commit is
//! told to every caller in the batch. An operational error (the database's, not a refusal) must undo only the
//! failing operation's writes: either it ran under its own savepoint ([`Isolation::Savepoint`]), or the backend
//! rolls the whole transaction back and runs the batch again with savepoints ([`Isolation::None`]; SQLite copies
//! every page an operation changes into a savepoint's journal, a fifth of its writer's work). What a batch is (a
//! transaction on one connection) is the backend's: a [`Runner`].

use std::sync::atomic::{AtomicU64, Ordering};

use super::tx::Tx;
use crate::approval_event::ApprovalEvent;
use crate::error::{AuthorityError, Result};

/// Runs batches on one backend connection.
pub(crate) trait Runner: Send {
    /// Runs `jobs` in one transaction and answers each after the commit (or with the commit's error).
    fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>);
    /// Makes the connection usable again after a batch panicked half-way (its callers were told `Closed` when
    /// their reply senders dropped).
    fn recover(&mut self);
    /// Lets go of the connection, on the thread that ran the last batch (a PostgreSQL client must be dropped
    /// outside any async runtime). A later batch reconnects.
    fn close(&mut self) {}
}

/// How an operation runs in its batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Under its own savepoint: an operational error undoes its writes and leaves the rest of the batch alone.
    Savepoint,
    /// Directly in the transaction: after an operational error ([`Ran::Failed`]) its writes may be half made, and
    /// the runner must roll the transaction back before anything of it commits.
    None,
}

/// What running an operation left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Ran {
    /// An answer (a refusal included) whose writes belong in the transaction.
    Done,
    /// An operational error: nothing of the operation is to be kept.
    Failed,
}

/// One queued operation, of one tenant.
pub(crate) trait Job: Send {
    /// The tenant whose state the operation reads and writes (a backend may give each tenant its own
    /// transaction).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn tenant(&self) -> &str;
    /// The key row (agent, key) the operation reads first, when it is known before it runs: a backend whose
    /// reads are round trips may read the rows of a whole batch at once.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn key(&self) -> Option<&KeyHint>;
    /// Runs the operation, or runs it again in a new transaction after the one it ran in was rolled back; the
    /// answer of the last run is held until [`finish`](Self::finish).
    fn run(&mut self, tx: &mut dyn Tx, isolation: Isolation) -> Ran;
    /// Sends the held answer, or the commit's error.
    fn finish(self: Box<Self>, commit_error: Option<&BatchFailure>);
    /// Answers without running (the transaction could not start).
    fn fail(self: Box<Self>, error: AuthorityError);
}

/// Why a batch did not commit, as every caller of the batch is told.
#[derive(Debug, Clone)]
pub(crate) enum BatchFailure {
    /// The database could not be reached: nothing was decided, the caller may retry.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Unavailable(String),
    /// The transaction failed.
    Failed(String),
}

impl BatchFailure {
    pub(crate) fn to_error(&self) -> AuthorityError {
        match self {
            BatchFailure::Unavailable(why) => AuthorityError::Unavailable(why.clone()),
            BatchFailure::Failed(why) => AuthorityError::CommitFailed(why.clone()),
        }
    }
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchFailure::Unavailable(why) => write!(f, "database unavailable: {why}"),
            BatchFailure::Failed(why) => f.write_str(why),
        }
    }
}

/// An idempotency key and the agent whose row of it an operation reads.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) struct KeyHint {
    pub(crate) agent: String,
    pub(crate) key: String,
}

/// An operation (which may run more than once: its batch's transaction may be rolled back and run again) and
/// where its answer goes.
pub(crate) struct OpJob<F, T> {
    pub(crate) tenant: String,
    pub(crate) key: Option<KeyHint>,
    pub(crate) op: F,
    pub(crate) reply: oneshot::Sender<Result<T>>,
    /// The answer of the last run.
    pub(crate) result: Option<Result<T>>,
}

impl<F, T> Job for OpJob<F, T>
where
    F: FnMut(&mut dyn Tx, &str) -> Result<T> + Send,
    T: Send + 'static,
{
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn key(&self) -> Option<&KeyHint> {
        self.key.as_ref()
    }

    fn run(&mut self, tx: &mut dyn Tx, isolation: Isolation) -> Ran {
        let (op, tenant) = (&mut self.op, self.tenant.as_str());
        let result = match isolation {
            Isolation::Savepoint => run_in_savepoint(tx, |tx| op(tx, tenant)),
            Isolation::None => op(tx, tenant),
        };
        let ran = match &result {
            Err(error) if error.is_operational() => Ran::Failed,
            _ => Ran::Done,
        };
        self.result = Some(result);
        ran
    }

    fn finish(self: Box<Self>, commit_error: Option<&BatchFailure>) {
        let result = match (commit_error, self.result) {
            // An operation that itself failed (a row that does not decode, say) is told its own failure, not the
            // batch's it caused: nothing of it was to be kept either way, and the cause is what the caller needs.
            (Some(_), Some(Err(own))) if own.is_operational() => Err(own),
            (Some(failure), _) => Err(failure.to_error()),
            (None, Some(result)) => result,
            // Not run, so nothing of it was decided (a runner answers before running every job only on failure).
            (None, None) => Err(AuthorityError::CommitFailed(
                "the operation was not run".into(),
            )),
        };
        // A caller that stopped waiting is fine: the change is committed either way.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, error: AuthorityError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Runs `op` under a savepoint: an operational error undoes its writes (and the ledger tail) and leaves the rest
/// of the batch alone; a refusal keeps what the operation wrote (the evidence of the refusal).
fn run_in_savepoint<T>(tx: &mut dyn Tx, op: impl FnOnce(&mut dyn Tx) -> Result<T>) -> Result<T> {
    tx.savepoint()?;
    let result = op(tx);
    match &result {
        Err(error) if error.is_operational() => tx.rollback_to_savepoint()?,
        _ => tx.release_savepoint()?,
    }
    result
}

/// Answers every job of a batch that could not run with the reason.
pub(crate) fn fail_all(jobs: Vec<Box<dyn Job>>, failure: &BatchFailure) {
    for job in jobs {
        job.fail(failure.to_error());
    }
}

/// After a batch's commit: counts it, records it in the process's metrics (a no-op unless a recorder is
/// installed, as the server does: operations carried, time from start to commit), publishes its events, then
/// answers its callers. Publishing comes first, so that a caller that sees its acknowledgement finds the event
/// already out.
pub(crate) fn acknowledge(
    counters: &WriterCounters,
    events: &tokio::sync::broadcast::Sender<ApprovalEvent>,
    started: std::time::Instant,
    published: Vec<ApprovalEvent>,
    jobs: Vec<Box<dyn Job>>,
) {
    let operations = jobs.len() as u64;
    counters.transactions.fetch_add(1, Ordering::Relaxed);
    counters.operations.fetch_add(operations, Ordering::Relaxed);
    metrics::histogram!("haltstate_commit_batch_size").record(operations as f64);
    metrics::histogram!("haltstate_commit_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    for event in published {
        // No subscriber is not an error.
        let _ = events.send(event);
    }
    for job in jobs {
        job.finish(None);
    }
}

/// Counters that show group commit at work.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    pub(crate) transactions: AtomicU64,
    pub(crate) operations: AtomicU64,
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Operations run in them.
    pub operations: u64,
}

impl WriterCounters {
    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
        }
    }
}
