//! Where the client's work runs: its own small runtime (or the application's, given to the builder) for HTTP I/O
//! and timers, the caller's thread for the embedded authority, and [`block_on`] for sync callers.
//!
//! All I/O runs on that runtime, so the client works the same from any async runtime, from `spawn_blocking`, from
//! a sync function called inside a `current_thread` runtime, and with no runtime at all. A call already on that
//! runtime runs where it is: handing it to another task costs two cross-thread wake-ups per request.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::error::GuardError;

/// The runtime the client's HTTP I/O, timers and background tasks run on.
#[derive(Debug)]
pub(crate) enum IoRuntime {
    /// The client's own (two threads), shut down with the client.
    Own(tokio::runtime::Runtime),
    /// The application's multi-thread runtime (`ClientBuilder::io_runtime`), which outlives the client.
    Shared(tokio::runtime::Handle),
}

impl IoRuntime {
    pub(crate) fn own() -> Result<Self, GuardError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("haltstate-io")
            .enable_all()
            .build()
            .map(Self::Own)
            .map_err(|e| GuardError::Config(format!("cannot start the client runtime: {e}")))
    }

    pub(crate) fn shared(handle: tokio::runtime::Handle) -> Result<Self, GuardError> {
        match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => Ok(Self::Shared(handle)),
            flavor => Err(GuardError::Config(format!(
                "io_runtime needs a multi-thread runtime, not {flavor:?}: a blocking call on a single-threaded \
                 runtime's thread would wait for its own I/O"
            ))),
        }
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            Self::Own(runtime) => runtime.handle(),
            Self::Shared(handle) => handle,
        }
    }

    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }

    /// Runs `work` on this runtime: where it is when already on it, else as a task of it (`what` names the task
    /// in the error should it fail).
    pub(crate) async fn run<T, F>(&self, work: F, what: &str) -> Result<T, GuardError>
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        if self.is_current() {
            return work.await;
        }
        self.spawn(work)
            .await
            .map_err(|e| GuardError::Protocol(format!("the client's {what} failed: {e}")))?
    }

    /// Whether this thread runs a task of this runtime: work started here needs no hand-over.
    fn is_current(&self) -> bool {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|current| current.id() == self.handle().id())
    }

    /// Lets go of the runtime: the client's own is shut down without waiting (dropping a runtime from async code
    /// panics); the application's is left running.
    pub(crate) fn release(self) {
        if let Self::Own(runtime) = self {
            runtime.shutdown_background();
        }
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` on this thread by parking between polls.
///
/// The client's futures only wait on work running elsewhere (its runtime's threads, or the embedded
/// authority's writer thread), so this never needs the caller's runtime and cannot deadlock it; unlike a
/// runtime's `block_on`, it does not panic when called from inside one.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}
