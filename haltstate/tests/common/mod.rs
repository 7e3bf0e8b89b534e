//! A real authority server on loopback (the testkit's), with an agent and an operator key and clients for it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod proxy;

use std::time::Duration;

use haltstate::{FailMode, HaltStateClient};
use haltstate_authority::{Authority, Role};
use haltstate_testkit::{LoopbackServer, policies, scratch_authority};

pub const TENANT: &str = "acme";

/// The refunds, and exports allowed, deletes forbidden.
pub fn policies() -> String {
    policies::refunds_and(
        r#"
@id("exports") permit(principal, action == Action::"data.export", resource);
@id("no-deletes") @reason("deletes are forbidden") forbid(principal, action == Action::"data.delete", resource);
@id("deletes") permit(principal, action == Action::"data.delete", resource);
"#,
    )
}

pub struct TestServer {
    pub authority: Authority,
    pub agent_key: String,
    pub operator_key: String,
    server: LoopbackServer,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> Self {
        let (authority, dir) = scratch_authority(&policies());
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
        Self {
            server: LoopbackServer::start(authority.clone()),
            authority,
            agent_key,
            operator_key,
            _dir: dir,
        }
    }

    /// Kills the server: every connection drops, nothing answers on the port.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// The fail-open spool of this server's test clients.
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("spool")
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn client(&self) -> HaltStateClient {
        self.client_with(FailMode::Closed)
    }

    pub fn client_with(&self, fail_mode: FailMode) -> HaltStateClient {
        self.client_at(&self.base_url(), fail_mode)
    }

    /// A client of this server's agent that talks to `base` (a proxy in front of the server).
    pub fn client_at(&self, base: &str, fail_mode: FailMode) -> HaltStateClient {
        self.builder_at(base, fail_mode).build().unwrap()
    }

    /// The settings of [`client_at`](Self::client_at), to add to.
    pub fn builder_at(&self, base: &str, fail_mode: FailMode) -> haltstate::ClientBuilder {
        HaltStateClient::builder()
            .base_url(base)
            .tenant(TENANT)
            .api_key(&self.agent_key)
            .agent_id("billing-agent")
            .request_timeout(Duration::from_millis(500))
            .deadline(Duration::from_secs(2))
            .fail_mode(fail_mode)
            .redaction_key("test-redaction-key")
            .spool_dir(self.spool_dir())
    }

    /// How many ledger records the authority holds: proof of whether a call reached it.
    pub fn ledger_len(&self) -> u64 {
        self.authority.tenant_head(TENANT).unwrap().seq
    }
}

pub fn refund(order: u32, cents: u32) -> haltstate::Action {
    haltstate::Action::new("refund.create")
        .key(format!("refund:{order}"))
        .resource(format!("order:{order}"))
        .param("amount_cents", cents)
}
