//! A real authority server on loopback, on its own thread and runtime, which tests can stop and restart.
#![allow(dead_code, clippy::unwrap_used)]

pub mod proxy;

use std::net::SocketAddr;
use std::time::Duration;

use haltstate::{FailMode, HaltStateClient};
use haltstate_authority::{Authority, Role};
use haltstate_server::{AppState, router};

pub const TENANT: &str = "acme";

pub const POLICIES: &str = r#"
@id("refunds.small") @reason("small refunds are routine")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents <= 10000 };
@id("refunds.large") @reason("large refunds need a human") @approval("required")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents > 10000 && context.params.amount_cents <= 500000 };
@id("exports") permit(principal, action == Action::"data.export", resource);
@id("no-deletes") @reason("deletes are forbidden") forbid(principal, action == Action::"data.delete", resource);
@id("deletes") permit(principal, action == Action::"data.delete", resource);
"#;

pub struct TestServer {
    pub addr: SocketAddr,
    pub authority: Authority,
    pub agent_key: String,
    pub operator_key: String,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::builder(dir.path().join("hs.db"))
            .policy_source("test.cedar", POLICIES)
            .open()
            .unwrap();
        let agent_key = authority
            .create_key(TENANT, "billing-agent", Role::Agent)
            .wait()
            .unwrap()
            .secret;
        let operator_key = authority
            .create_key(TENANT, "alice", Role::Operator)
            .wait()
            .unwrap()
            .secret;
        let mut server = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            authority,
            agent_key,
            operator_key,
            runtime: None,
            _dir: dir,
        };
        server.listen();
        server
    }

    fn listen(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Bound with std: a test may already be inside a runtime, where `block_on` would panic.
        let std_listener = std::net::TcpListener::bind(self.addr).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        self.addr = std_listener.local_addr().unwrap();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).unwrap()
        };
        let mut state = AppState::new(self.authority.clone());
        state.sse_heartbeat = Duration::from_millis(200);
        runtime.spawn(async move { axum::serve(listener, router(state)).await });
        self.runtime = Some(runtime);
    }

    /// Kills the server: every connection drops, nothing answers on the port.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.listen();
    }

    /// The fail-open spool of this server's test clients.
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("spool")
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> HaltStateClient {
        self.client_with(FailMode::Closed)
    }

    pub fn client_with(&self, fail_mode: FailMode) -> HaltStateClient {
        HaltStateClient::builder()
            .base_url(self.base_url())
            .tenant(TENANT)
            .api_key(&self.agent_key)
            .agent_id("billing-agent")
            .request_timeout(Duration::from_millis(500))
            .deadline(Duration::from_secs(2))
            .fail_mode(fail_mode)
            .redaction_key("test-redaction-key")
            .spool_dir(self.spool_dir())
            .build()
            .unwrap()
    }

    /// How many ledger records the authority holds: proof of whether a call reached it.
    pub fn ledger_len(&self) -> u64 {
        self.authority.ledger_head().unwrap().seq
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn refund(order: u32, cents: u32) -> haltstate::Action {
    haltstate::Action::new("refund.create")
        .key(format!("refund:{order}"))
        .resource(format!("order:{order}"))
        .param("amount_cents", cents)
}
