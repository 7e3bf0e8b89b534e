//! [`Pending`]: the answer to a state-changing call, available once its transaction commits.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::batch::{Batch, Job, OpJob};
use super::writer::Writer;
use crate::error::{AuthorityError, Result};

/// An operation not yet queued. It is queued when its caller first waits for it (and may then run on the
/// caller's thread), or, if the caller never does, when it is dropped: a dropped call still happens.
struct Unsent(Option<(Box<dyn Job>, Arc<Writer>)>);

impl Unsent {
    fn send(&mut self) {
        if let Some((job, writer)) = self.0.take() {
            writer.submit_and_lead(job);
        }
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
pub(crate) fn submit<T, F>(writer: &Arc<Writer>, op: F) -> Pending<T>
where
    F: FnOnce(&mut Batch<'_>) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    Pending {
        unsent: Unsent(Some((Box::new(OpJob { op, reply }), writer.clone()))),
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
            inner: self.receiver.into_future(),
        }
    }
}

/// The future of a [`Pending`].
///
/// Its first poll may run the batch on the polling thread when no other batch is running (a few tens of
/// microseconds of SQLite work, plus the commit's fsync with [`Durability::Full`](crate::Durability::Full)).
#[derive(Debug)]
pub struct PendingFuture<T> {
    unsent: Unsent,
    inner: oneshot::AsyncReceiver<Result<T>>,
}

impl<T> Future for PendingFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.unsent.send();
        Pin::new(&mut self.inner)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(AuthorityError::Closed)))
    }
}
