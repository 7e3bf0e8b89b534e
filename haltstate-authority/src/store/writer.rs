//! The single writer: every state change goes through one thread and one connection.
//!
//! Callers queue operations; the writer takes everything queued (up to a bound), runs it in one `BEGIN IMMEDIATE`
//! transaction with a savepoint per operation, commits once, and only then answers each caller. Concurrent
//! callers therefore share one fsync (group commit), every acknowledged change is durable, and operations are
//! serialized, which is what makes "exactly one of 32 concurrent claims wins" true by construction.
//!
//! Another process (the operator CLI) may write the same file; the writer notices through `PRAGMA data_version`
//! and reloads the end of the ledger chain before appending.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::task::{Context, Poll};

use rusqlite::Connection;
use time::OffsetDateTime;

use crate::approval::ApprovalEvent;
use crate::clock::Clock;
use crate::error::{AuthorityError, Result};
use crate::ledger::{EvidenceRecord, Tail};

/// Most operations one transaction takes.
const MAX_BATCH: usize = 512;

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

struct OpJob<F, T> {
    op: F,
    reply: oneshot::Sender<Result<T>>,
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
    batch.conn.execute_batch("SAVEPOINT op")?;
    let tail_before = batch.tail.clone();
    let events_before = batch.events.len();
    let result = op(batch);
    match &result {
        Err(error) if error.is_operational() => {
            batch.conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
            *batch.tail = tail_before;
            batch.events.truncate(events_before);
        }
        _ => batch.conn.execute_batch("RELEASE op")?,
    }
    result
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

/// Queues `op` on the writer.
pub(crate) fn submit<T, F>(jobs: &std::sync::mpsc::Sender<Box<dyn Job>>, op: F) -> Pending<T>
where
    F: FnOnce(&mut Batch<'_>) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    if let Err(rejected) = jobs.send(Box::new(OpJob { op, reply })) {
        rejected.0.fail(AuthorityError::Closed);
    }
    Pending { receiver }
}

/// The answer to a state-changing call, available once its transaction commits.
///
/// Wait for it from sync code with [`wait`](Self::wait), or `.await` it from async code; either way the caller
/// only learns the answer after it is durable. Waiting never needs a runtime: the writer is its own thread.
///
/// ```
/// # use haltstate_authority::{Authority, KillScope, KillState};
/// # let dir = tempfile::tempdir()?;
/// let authority = Authority::builder(dir.path().join("hs.db")).open()?;
/// let status = authority.set_kill_switch(KillScope::Tenant("acme".into()), KillState::Pause, "ops").wait()?;
/// assert_eq!(status.state, KillState::Pause);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the call's answer (and any error) is in the Pending; wait for it or await it"]
#[derive(Debug)]
pub struct Pending<T> {
    receiver: oneshot::Receiver<Result<T>>,
}

impl<T> Pending<T> {
    /// An answer that needs no transaction (the request was refused before it reached the writer).
    pub(crate) fn ready(result: Result<T>) -> Self {
        let (reply, receiver) = oneshot::channel();
        let _ = reply.send(result);
        Self { receiver }
    }

    /// Blocks the thread until the answer is committed.
    pub fn wait(self) -> Result<T> {
        self.receiver.recv().unwrap_or(Err(AuthorityError::Closed))
    }
}

impl<T> IntoFuture for Pending<T> {
    type Output = Result<T>;
    type IntoFuture = PendingFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        PendingFuture {
            inner: self.receiver.into_future(),
        }
    }
}

/// The future of a [`Pending`].
#[derive(Debug)]
pub struct PendingFuture<T> {
    inner: oneshot::AsyncReceiver<Result<T>>,
}

impl<T> Future for PendingFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(AuthorityError::Closed)))
    }
}

/// The writer thread's loop; returns when every sender is gone and the queue is drained.
pub(crate) fn run(
    conn: Connection,
    jobs: Receiver<Box<dyn Job>>,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
) {
    let mut tail: Option<Tail> = None;
    let mut seen_data_version: Option<i64> = None;
    let mut queued: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        queued.push(first);
        while queued.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => queued.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(%error, "cannot start a write transaction");
            let message = error.to_string();
            for job in queued.drain(..) {
                job.fail(AuthorityError::CommitFailed(message.clone()));
            }
            continue;
        }
        // Another process may have appended to the ledger since our last commit.
        let data_version = conn
            .query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0))
            .ok();
        if tail.is_none() || data_version != seen_data_version {
            match Tail::load(&conn) {
                Ok(loaded) => tail = Some(loaded),
                Err(error) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    for job in queued.drain(..) {
                        job.fail(AuthorityError::CommitFailed(error.to_string()));
                    }
                    continue;
                }
            }
            seen_data_version = data_version;
        }
        let Some(current_tail) = tail.as_mut() else {
            continue;
        };
        let tail_before = current_tail.clone();
        let mut batch = Batch {
            conn: &conn,
            tail: current_tail,
            now: clock.now(),
            events: Vec::new(),
        };
        let count = queued.len() as u64;
        let replies: Vec<Box<dyn Reply>> =
            queued.drain(..).map(|job| job.run(&mut batch)).collect();
        let published = std::mem::take(&mut batch.events);
        // The head row moves once per transaction, with the last record this batch appended.
        let head = if *batch.tail == tail_before {
            Ok(())
        } else {
            batch.tail.store_head(&conn)
        };
        let committed = head
            .map_err(|e| e.to_string())
            .and_then(|()| conn.execute_batch("COMMIT").map_err(|e| e.to_string()));
        match committed {
            Ok(()) => {
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                counters.operations.fetch_add(count, Ordering::Relaxed);
                // Publish before answering: a caller that sees its acknowledgement finds the event already out.
                for event in published {
                    // No subscriber is not an error.
                    let _ = events.send(event);
                }
                for reply in replies {
                    reply.finish(None);
                }
            }
            Err(message) => {
                tracing::error!(error = %message, "commit failed; the batch is lost and every caller is told");
                let _ = conn.execute_batch("ROLLBACK");
                tail = Some(tail_before);
                seen_data_version = None;
                for reply in replies {
                    reply.finish(Some(&message));
                }
            }
        }
    }
}
