//! Where the client's work runs: its own small runtime for HTTP I/O and timers, the caller's thread for the
//! embedded authority, and [`block_on`] for sync callers.
//!
//! All I/O runs on the client's own runtime, so the client works the same from any async runtime, from
//! `spawn_blocking`, from a sync function called inside a `current_thread` runtime, and with no runtime at all.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::client::HaltStateClient;
use crate::error::GuardError;

impl HaltStateClient {
    /// Runs `work` where the transport needs it: on the client's runtime for HTTP (whatever runtime, or none,
    /// the caller is on), inline for the embedded authority.
    pub(crate) async fn on_io<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match (&self.inner.runtime, self.inner.transport.needs_io_runtime()) {
            (Some(runtime), true) => runtime
                .spawn(work)
                .await
                .map_err(|e| GuardError::Protocol(format!("the client's I/O task failed: {e}")))?,
            _ => work.await,
        }
    }

    /// Runs `work` on the client's runtime whatever the transport (for timers: waits and heartbeats).
    pub(crate) async fn on_runtime<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        F: Future<Output = Result<T, GuardError>> + Send + 'static,
        T: Send + 'static,
    {
        match &self.inner.runtime {
            Some(runtime) => runtime
                .spawn(work)
                .await
                .map_err(|e| GuardError::Protocol(format!("the client's task failed: {e}")))?,
            None => Err(GuardError::Config("the client has shut down".into())),
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
