//! One batch: the operations queued since the last commit, run in one transaction.
//!
//! Each operation runs under its own savepoint and its answer is held until the commit, so every acknowledged
//! change is durable and a failed commit is told to every caller in the batch. Another process (the operator
//! CLI) may write the same file; the batch runner notices through `PRAGMA data_version` and reloads the end of
//! the ledger chain before appending.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{AuthorityError, Result};
use crate::events::ApprovalEvent;
use crate::ledger::Tail;
use haltstate_types::EvidenceRecord;

/// What an operation sees while it runs: the open transaction, the ledger tail, the batch's clock reading.
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    pub(crate) conn: &'a Connection,
    tail: &'a mut Tail,
    pub(crate) now: OffsetDateTime,
    events: Vec<ApprovalEvent>,
}

impl Batch<'_> {
    /// Appends `record` to the ledger, stamped with the batch time.
    pub(crate) fn append(&mut self, mut record: EvidenceRecord) -> Result<u64> {
        self.tail.append(self.conn, &mut record)
    }

    /// Queues an approval change for the stream; sent only if the batch commits.
    pub(crate) fn publish(&mut self, event: ApprovalEvent) {
        self.events.push(event);
    }
}

/// One queued operation.
pub(crate) trait Job: Send {
    /// Runs the operation; the answer is held until the commit.
    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> Box<dyn Reply>;
    /// Answers without running (the transaction could not start).
    fn fail(self: Box<Self>, error: AuthorityError);
}

/// An answer waiting for the commit.
pub(crate) trait Reply: Send {
    /// Sends the answer, or the commit error.
    fn finish(self: Box<Self>, commit_error: Option<&str>);
}

pub(crate) struct OpJob<F, T> {
    pub(crate) op: F,
    pub(crate) reply: oneshot::Sender<Result<T>>,
}

struct OpReply<T> {
    result: Result<T>,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, T> Job for OpJob<F, T>
where
    F: FnOnce(&mut Batch<'_>) -> Result<T> + Send,
    T: Send + 'static,
{
    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> Box<dyn Reply> {
        let this = *self;
        let result = run_in_savepoint(batch, this.op);
        Box::new(OpReply {
            result,
            reply: this.reply,
        })
    }

    fn fail(self: Box<Self>, error: AuthorityError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Reply for OpReply<T> {
    fn finish(self: Box<Self>, commit_error: Option<&str>) {
        let result = match commit_error {
            Some(error) => Err(AuthorityError::CommitFailed(error.to_owned())),
            None => self.result,
        };
        // A caller that stopped waiting is fine: the change is committed either way.
        let _ = self.reply.send(result);
    }
}

/// Runs `op` under a savepoint: an operational error undoes its writes (and the ledger tail) and leaves the rest
/// of the batch alone; a refusal keeps what the operation wrote (the evidence of the refusal).
fn run_in_savepoint<T>(
    batch: &mut Batch<'_>,
    op: impl FnOnce(&mut Batch<'_>) -> Result<T>,
) -> Result<T> {
    batch.conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    let tail_before = batch.tail.clone();
    let events_before = batch.events.len();
    let result = op(batch);
    match &result {
        Err(error) if error.is_operational() => {
            batch.conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
            batch.conn.prepare_cached("RELEASE op")?.execute([])?;
            *batch.tail = tail_before;
            batch.events.truncate(events_before);
        }
        _ => {
            batch.conn.prepare_cached("RELEASE op")?.execute([])?;
        }
    }
    result
}

/// Answers every job of a batch that could not run with the reason.
fn fail_all(jobs: Vec<Box<dyn Job>>, message: &str) {
    for job in jobs {
        job.fail(AuthorityError::CommitFailed(message.to_owned()));
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

/// The connection and what the batch runner keeps between batches.
pub(crate) struct WriterState {
    conn: Connection,
    tail: Option<Tail>,
    seen_data_version: Option<i64>,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
}

impl WriterState {
    pub(crate) fn new(
        conn: Connection,
        clock: Arc<dyn Clock>,
        counters: Arc<WriterCounters>,
        events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    ) -> Self {
        Self {
            conn,
            tail: None,
            seen_data_version: None,
            clock,
            counters,
            events,
        }
    }

    /// Runs `jobs` in one transaction and answers each after the commit (or with the commit's error).
    pub(crate) fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        let conn = &self.conn;
        if let Err(error) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(%error, "cannot start a write transaction");
            fail_all(jobs, &error.to_string());
            return;
        }
        // Another process may have appended to the ledger since our last commit.
        let data_version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
            .ok();
        if self.tail.is_none() || data_version != self.seen_data_version {
            match Tail::load(conn) {
                Ok(loaded) => self.tail = Some(loaded),
                Err(error) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    fail_all(jobs, &error.to_string());
                    return;
                }
            }
            self.seen_data_version = data_version;
        }
        let Some(current_tail) = self.tail.as_mut() else {
            return;
        };
        let tail_before = current_tail.clone();
        let mut batch = Batch {
            conn,
            tail: current_tail,
            now: self.clock.now(),
            events: Vec::new(),
        };
        let count = jobs.len() as u64;
        let replies: Vec<Box<dyn Reply>> =
            jobs.into_iter().map(|job| job.run(&mut batch)).collect();
        let published = std::mem::take(&mut batch.events);
        // The head row moves once per transaction, with the last record this batch appended.
        let head = if *batch.tail == tail_before {
            Ok(())
        } else {
            batch.tail.store_head(conn)
        };
        let committed = head.map_err(|e| e.to_string()).and_then(|()| {
            conn.prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        match committed {
            Ok(()) => {
                self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                self.counters.operations.fetch_add(count, Ordering::Relaxed);
                // Publish before answering: a caller that sees its acknowledgement finds the event already out.
                for event in published {
                    // No subscriber is not an error.
                    let _ = self.events.send(event);
                }
                for reply in replies {
                    reply.finish(None);
                }
            }
            Err(message) => {
                tracing::error!(error = %message, "commit failed; the batch is lost and every caller is told");
                let _ = conn.execute_batch("ROLLBACK");
                self.tail = Some(tail_before);
                self.seen_data_version = None;
                for reply in replies {
                    reply.finish(Some(&message));
                }
            }
        }
    }

    /// Makes the connection usable again after a batch panicked half-way (its callers were told `Closed` when
    /// their reply senders dropped).
    pub(crate) fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tail = None;
        self.seen_data_version = None;
    }
}
