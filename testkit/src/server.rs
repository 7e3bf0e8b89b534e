//! A real server on loopback, in this process, on its own thread and runtime (so sync tests can use it and a
//! test may already be inside a runtime), which tests can stop and restart on the same port.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use haltstate_authority::Authority;
use haltstate_server::{AppState, ServeLimits};

use tempfile::TempDir;

use crate::{eventually, scratch_authority};

/// The server.
#[derive(Debug)]
pub struct LoopbackServer {
    addr: SocketAddr,
    authority: Authority,
    limits: ServeLimits,
    runtime: Option<tokio::runtime::Runtime>,
    scratch: Option<TempDir>,
}

impl LoopbackServer {
    /// Serves `authority` on a free port with the default limits.
    pub fn start(authority: Authority) -> Self {
        Self::start_with(authority, ServeLimits::default())
    }

    /// Serves `authority` on a free port within `limits`.
    pub fn start_with(authority: Authority, limits: ServeLimits) -> Self {
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            authority,
            limits,
            runtime: None,
            scratch: None,
        };
        server.listen();
        server
    }

    /// Serves a [`scratch_authority`] with `policies` within `limits`; the scratch directory lives as long as the
    /// server.
    pub fn scratch(policies: &str, limits: ServeLimits) -> Self {
        let (authority, dir) = scratch_authority(policies);
        let mut server = Self::start_with(authority, limits);
        server.scratch = Some(dir);
        server
    }

    fn listen(&mut self) {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => panic!("cannot start the server's runtime: {error}"),
        };
        // Bound with std: a test may already be inside a runtime, where `block_on` would panic.
        let listener = match std::net::TcpListener::bind(self.addr) {
            Ok(listener) => listener,
            Err(error) => panic!("cannot listen on {}: {error}", self.addr),
        };
        let _ = listener.set_nonblocking(true);
        if let Ok(addr) = listener.local_addr() {
            self.addr = addr;
        }
        let listener = {
            let _entered = runtime.enter();
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => panic!("cannot serve on {}: {error}", self.addr),
            }
        };
        let mut state = AppState::with_limits(self.authority.clone(), self.limits);
        state.sse_heartbeat = Duration::from_millis(200);
        state.sse_poll = Duration::from_millis(200);
        runtime.spawn(haltstate_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        self.runtime = Some(runtime);
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The authority it serves.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Kills the server: every connection drops, and nothing answers on the port once this returns.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
            let addr = self.addr;
            eventually(
                "the stopped server to stop answering",
                Duration::from_secs(5),
                || {
                    TcpStream::connect_timeout(&addr, Duration::from_millis(50))
                        .is_err()
                        .then_some(())
                },
            );
        }
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.listen();
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
