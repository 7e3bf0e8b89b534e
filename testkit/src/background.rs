//! An axum router served on a free loopback port, on a thread and runtime of its own (so that sync and async tests
//! can use it alike); it stops when dropped.

use std::net::SocketAddr;

use axum::Router;

/// The running server.
pub(crate) struct Background {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Background {
    /// Serves `router`; `what` names it in a panic.
    pub(crate) fn serve(router: Router, what: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .unwrap_or_else(|e| panic!("cannot bind the {what}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no {what} address: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let what = what.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start the {what}'s runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("cannot listen: {e}"));
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}
