//! Shared set-up: a real authority on a real SQLite file in a temp dir, with a clock the test moves.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use haltstate_authority::{ActionRequest, Authority, AuthorityBuilder, GuardRequest, ManualClock};
use serde_json::json;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

/// A Monday, 10:00 UTC: outside every sample freeze window.
pub const MONDAY_10AM: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);

pub const TENANT: &str = "acme";

pub struct Env {
    pub dir: TempDir,
    pub clock: Arc<ManualClock>,
    pub authority: Authority,
}

impl Env {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("haltstate.db")
    }

    /// Another authority on the same file, as a second process (the operator CLI) would open it.
    pub fn second_handle(&self) -> Authority {
        Authority::builder(self.db_path())
            .clock(self.clock.clone())
            .open()
            .unwrap()
    }
}

pub fn sample_policy_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/haltstate.cedar")
}

pub fn env_with(configure: impl FnOnce(AuthorityBuilder) -> AuthorityBuilder) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(MONDAY_10AM));
    let builder = Authority::builder(dir.path().join("haltstate.db")).clock(clock.clone());
    let authority = configure(builder).open().unwrap();
    Env {
        dir,
        clock,
        authority,
    }
}

/// An authority over the sample policies in `examples/policies/`.
pub fn env() -> Env {
    env_with(|b| b.policy_file(sample_policy_path()))
}

pub fn refund(cents: i64) -> ActionRequest {
    ActionRequest::new("billing-agent", "refund.create")
        .resource("order:1042")
        .param("amount_cents", json!(cents))
}

pub fn guard_refund(cents: i64, key: &str) -> GuardRequest {
    GuardRequest::new(refund(cents), key)
}
