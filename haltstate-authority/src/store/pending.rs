//! [`Pending`]: the answer to a state-changing call, available once its transaction commits.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::job::{KeyHint, OpJob};
use super::tx::Tx;
use super::writer::Writer;
use crate::error::{AuthorityError, Result};

/// An operation not yet queued. It is queued when its caller first waits for it (and may then run on the
/// caller's thread), or, if the caller never does, when it is dropped: a dropped call still happens.
struct Unsent(Option<(Box<dyn super::job::Job>, Arc<Writer>)>);

impl Unsent {
    fn send(&mut self) {
        if let Some((job, writer)) = self.0.take() {
            writer.submit_and_lead(job);
        }
    }
}

/// An operation the future queued on its first poll and means to lead a batch for on its second, after the
/// executor has run the other ready tasks (whose operations join the batch). If the future is dropped before
/// that, the writer thread is woken for it instead: a dropped call still happens.
struct QueuedToLead(Option<Arc<Writer>>);

impl Drop for QueuedToLead {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            writer.nudge();
        }
    }
}

impl std::fmt::Debug for QueuedToLead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "QueuedToLead"
        } else {
            "Led"
        })
    }
}

impl Drop for Unsent {
    fn drop(&mut self) {
        if let Some((job, writer)) = self.0.take() {
            writer.submit_in_background(job);
        }
    }
}

impl std::fmt::Debug for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Unsent" } else { "Sent" })
    }
}

/// Prepares `op` for `writer`; it runs when the answer is first waited for.
pub(crate) fn submit<T, F>(
    writer: &Arc<Writer>,
    tenant: String,
    key: Option<KeyHint>,
    op: F,
) -> Pending<T>
where
    F: FnMut(&mut dyn Tx, &str) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    Pending {
        unsent: Unsent(Some((
            Box::new(OpJob {
                tenant,
                key,
                op,
                reply,
                result: None,
            }),
            writer.clone(),
        ))),
        receiver,
    }
}

/// The answer to a state-changing call, available once its transaction commits.
///
/// Wait for it from sync code with [`wait`](Self::wait), or `.await` it from async code; either way the caller
/// only learns the answer after it is durable. Waiting never needs a runtime. A `Pending` dropped unwaited
/// still has its change made, in the background.
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
    unsent: Unsent,
    receiver: oneshot::Receiver<Result<T>>,
}

impl<T> Pending<T> {
    /// An answer that needs no transaction (the request was refused before it reached the writer).
    pub(crate) fn ready(result: Result<T>) -> Self {
        let (reply, receiver) = oneshot::channel();
        let _ = reply.send(result);
        Self {
            unsent: Unsent(None),
            receiver,
        }
    }

    /// Blocks the thread until the answer is committed.
    pub fn wait(mut self) -> Result<T> {
        self.unsent.send();
        self.receiver.recv().unwrap_or(Err(AuthorityError::Closed))
    }
}

impl<T> IntoFuture for Pending<T> {
    type Output = Result<T>;
    type IntoFuture = PendingFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        PendingFuture {
            unsent: self.unsent,
            queued: QueuedToLead(None),
            inner: self.receiver.into_future(),
        }
    }
}

/// The future of a [`Pending`].
///
/// On a tokio runtime with more than one worker, its first poll runs the batch on the polling thread when no
/// other batch is running and the last one held a single operation (a few tens of microseconds of SQLite work
/// per operation, plus the commit's fsync with [`Durability::Full`](crate::Durability::Full)); tasks on the
/// other workers queue behind it and share the next commit. Once operations queue behind each other, the
/// writer's own thread runs the batches and the runtime's workers stay free for the other tasks. On one thread
/// (a `current_thread` runtime, a one-worker `multi_thread` one, or an executor other than tokio) nothing else
/// could queue while that batch runs, so the first poll only queues the operation and yields; the executor's
/// other ready tasks queue theirs, and the second poll runs them all in one transaction: one fsync for the batch
/// instead of one per operation (8 tasks on a `current_thread` runtime, fsync per commit: 8.0 operations per
/// transaction instead of 1.0, 483 -> 134 µs per guard + report; `examples/profile_async.rs`).
#[derive(Debug)]
pub struct PendingFuture<T> {
    unsent: Unsent,
    queued: QueuedToLead,
    inner: oneshot::AsyncReceiver<Result<T>>,
}

/// Whether the polling executor has other threads whose tasks can queue operations while this one runs a batch.
fn other_workers_can_queue() -> bool {
    tokio::runtime::Handle::try_current().is_ok_and(|runtime| runtime.metrics().num_workers() > 1)
}

impl<T> Future for PendingFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some((job, writer)) = this.unsent.0.take() {
            if other_workers_can_queue() {
                writer.submit_from_worker(job);
            } else if writer.submit_to_lead_later(job) {
                this.queued.0 = Some(writer);
                // A task woken during its own poll is rescheduled behind the ones already ready, so their
                // operations are queued before it leads.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        } else if let Some(writer) = this.queued.0.take() {
            if let Poll::Ready(answer) = this.poll_answer(cx) {
                return Poll::Ready(answer);
            }
            writer.lead_if_free();
        }
        this.poll_answer(cx)
    }
}

impl<T> PendingFuture<T> {
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.inner)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(AuthorityError::Closed)))
    }
}
