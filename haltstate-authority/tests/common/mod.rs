//! Shared set-up: a real authority with a clock the test moves, on the backend `HALTSTATE_TEST_BACKEND` names: a
//! real SQLite file in a temp dir (default), or a fresh database on a real PostgreSQL server the tests start
//! (`postgres`). The same suite runs on both; the few tests about SQLite's file itself ask for it by name.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use haltstate_authority::{
    ActionRequest, Authority, AuthorityBuilder, Database, GuardRequest, ManualClock,
};
use haltstate_testkit::postgres::{Backend, backend, database_for};
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
    pub database: Database,
    pub authority: Authority,
}

impl Env {
    /// The SQLite file, for tests about the file itself (they run on SQLite whatever the backend).
    pub fn db_path(&self) -> PathBuf {
        match &self.database {
            Database::Sqlite(path) => path.clone(),
            Database::Postgres(_) => panic!("a SQLite-only test must start with `sqlite_env`"),
        }
    }

    /// Another authority on the same database, as a second process (the operator CLI, another instance)
    /// would open it: with the sample policies, as instances of one deployment share a policy file.
    pub fn second_handle(&self) -> Authority {
        Authority::builder(self.database.clone())
            .clock(self.clock.clone())
            .policy_file(sample_policy_path())
            .open()
            .unwrap()
    }
}

pub fn sample_policy_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/haltstate.cedar")
}

/// An authority on the suite's backend, configured by `configure`.
pub fn env_with(configure: impl FnOnce(AuthorityBuilder) -> AuthorityBuilder) -> Env {
    env_on(backend(), configure)
}

pub fn env_on(
    backend: Backend,
    configure: impl FnOnce(AuthorityBuilder) -> AuthorityBuilder,
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(MONDAY_10AM));
    let database = database_for(backend, dir.path());
    let builder = Authority::builder(database.clone()).clock(clock.clone());
    let authority = configure(builder).open().unwrap();
    Env {
        dir,
        clock,
        database,
        authority,
    }
}

/// An authority over the sample policies in `examples/policies/`.
pub fn env() -> Env {
    env_with(|b| b.policy_file(sample_policy_path()))
}

/// As [`env`], always on a SQLite file: for tests of the file itself (tampering with it in SQL, migrations).
pub fn sqlite_env() -> Env {
    env_on(Backend::Sqlite, |b| b.policy_file(sample_policy_path()))
}

pub fn refund(cents: i64) -> ActionRequest {
    ActionRequest::new("billing-agent", "refund.create")
        .resource("order:1042")
        .param("amount_cents", json!(cents))
}

pub fn guard_refund(cents: i64, key: &str) -> GuardRequest {
    GuardRequest::new(refund(cents), key)
}

/// Rewrites a current SQLite file into schema 5's shape: one global chain over every tenant's records in the
/// order they were written, numbered and hashed as schema 5 did, with the rows that point at records renumbered.
pub fn downgrade_to_schema_5(path: &std::path::Path) {
    use haltstate_authority::{EvidenceRecord, record_hash};
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<(String, i64, Vec<u8>)> = conn
        .prepare("SELECT tenant, seq, body FROM ledger ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE ledger_v5 (
            seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body BLOB NOT NULL,
            tenant TEXT NOT NULL, at TEXT NOT NULL, idempotency_key TEXT,
            action TEXT GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL,
            agent_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL);
         CREATE TEMP TABLE remap (tenant TEXT, old INTEGER, new INTEGER, PRIMARY KEY (tenant, old));",
    )
    .unwrap();
    let mut prev = haltstate_authority::GENESIS_HASH.to_owned();
    for (index, (tenant, old, body)) in rows.iter().enumerate() {
        let mut record: EvidenceRecord = serde_json::from_slice(body).unwrap();
        record.seq = index as u64 + 1;
        let body = record.canonical_bytes().unwrap();
        let hash = record_hash(&prev, &body);
        conn.execute(
            "INSERT INTO ledger_v5 (seq, prev_hash, hash, body, tenant, at, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                record.seq,
                prev,
                hash,
                body,
                tenant,
                haltstate_authority::timestamp::format_rfc3339(record.at),
                record.idempotency_key
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO temp.remap VALUES (?1, ?2, ?3)",
            rusqlite::params![tenant, old, record.seq],
        )
        .unwrap();
        prev = hash;
    }
    conn.execute_batch(&format!(
        "UPDATE idempotency SET outcome_seq = (SELECT new FROM temp.remap AS m
             WHERE m.tenant = idempotency.tenant AND m.old = idempotency.outcome_seq)
             WHERE outcome_seq IS NOT NULL;
         UPDATE unverified_imports SET seq = (SELECT new FROM temp.remap AS m
             WHERE m.tenant = unverified_imports.tenant AND m.old = unverified_imports.seq);
         DROP TABLE ledger; DROP TABLE ledger_heads;
         DROP TABLE webhook_outbox; DROP TABLE webhooks; DROP TABLE usage_buckets;
         ALTER TABLE idempotency DROP COLUMN usage_us; ALTER TABLE idempotency DROP COLUMN usage;
         ALTER TABLE approvals DROP COLUMN approvals_required; ALTER TABLE approvals DROP COLUMN approved_by;
         ALTER TABLE approvals DROP COLUMN policy_version;
         DROP TABLE checkpoints;
         DROP INDEX approvals_pending_agent;
         DROP TABLE console_sessions; DROP TABLE change_history; DROP TABLE tree_checkpoints;
         ALTER TABLE idempotency DROP COLUMN attempts; ALTER TABLE idempotency DROP COLUMN retry_digest;
         ALTER TABLE ledger_v5 RENAME TO ledger;
         CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
         CREATE INDEX ledger_tenant_at ON ledger (tenant, at);
         CREATE TABLE ledger_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
         {}
         PRAGMA user_version = 5;",
        if rows.is_empty() {
            String::new()
        } else {
            format!(
                "INSERT INTO ledger_head VALUES (1, {}, '{prev}');",
                rows.len()
            )
        }
    ))
    .unwrap();
}
