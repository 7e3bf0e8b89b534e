//! The PostgreSQL schema and its versioned migrations (tracked in `haltstate_schema`).
//!
//! Ready to be distributed by tenant (Citus and the like): every table's primary key leads with the tenant and
//! every transaction the authority runs touches one tenant. `haltstate_schema` (one row) is the only table shared
//! by all tenants. Times are integer microseconds since the Unix epoch, as in SQLite; ledger rows hold the
//! canonical bytes, the chain and the columns queries find them by (checked against the bytes by `verify`).

use super::conn::Conn;
use crate::error::{AuthorityError, Result};

/// Each entry moves the schema one version up; never edit a released entry, append a new one. Version 6
/// matches SQLite's schema 6 (PostgreSQL storage started there).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        6,
        r#"
    CREATE TABLE api_keys (
        tenant      TEXT NOT NULL,
        id          TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('agent', 'operator')),
        key_hash    BYTEA NOT NULL,
        created_us  BIGINT NOT NULL,
        revoked_us  BIGINT,
        agents      TEXT,
        rate_limit  BIGINT,
        PRIMARY KEY (tenant, id)
    );
    CREATE UNIQUE INDEX api_keys_hash ON api_keys (tenant, key_hash);
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (tenant, name) WHERE revoked_us IS NULL;

    CREATE TABLE idempotency (
        tenant          TEXT NOT NULL,
        key             TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        agent_id        TEXT NOT NULL,
        action          TEXT NOT NULL,
        state           TEXT NOT NULL,
        approval_id     TEXT,
        policy_id       TEXT,
        reason          TEXT NOT NULL DEFAULT '',
        claim_token     TEXT,
        lease_until_us  BIGINT,
        outcome_seq     BIGINT,
        created_us      BIGINT NOT NULL,
        updated_us      BIGINT NOT NULL,
        claimed_by      TEXT,
        client_token    BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (tenant, key)
    );

    CREATE TABLE approvals (
        tenant           TEXT NOT NULL,
        id               TEXT NOT NULL,
        idempotency_key  TEXT,
        request_id       TEXT,
        agent_id         TEXT NOT NULL,
        action           TEXT NOT NULL,
        resource         TEXT,
        params           TEXT NOT NULL,
        risk             TEXT,
        metadata         TEXT,
        policy_id        TEXT,
        policy_reason    TEXT NOT NULL,
        status           TEXT NOT NULL,
        created_us       BIGINT NOT NULL,
        expires_us       BIGINT NOT NULL,
        decided_us       BIGINT,
        approver         TEXT,
        decision_reason  TEXT,
        PRIMARY KEY (tenant, id)
    );
    CREATE INDEX approvals_pending ON approvals (tenant, status, expires_us);
    CREATE INDEX approvals_decided ON approvals (tenant, decided_us);
    CREATE INDEX approvals_created ON approvals (tenant, created_us);
    CREATE UNIQUE INDEX approvals_request ON approvals (tenant, request_id) WHERE request_id IS NOT NULL;

    CREATE TABLE kill_switch (
        tenant      TEXT NOT NULL,
        agent_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        updated_us  BIGINT NOT NULL,
        updated_by  TEXT NOT NULL,
        PRIMARY KEY (tenant, agent_id)
    );

    CREATE TABLE check_requests (
        tenant       TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        agent_id     TEXT NOT NULL,
        action       TEXT NOT NULL,
        decision     TEXT NOT NULL,
        created_us   BIGINT NOT NULL,
        PRIMARY KEY (tenant, request_id)
    );

    CREATE TABLE unverified_imports (
        tenant       TEXT NOT NULL,
        evidence_id  TEXT NOT NULL,
        seq          BIGINT NOT NULL,
        PRIMARY KEY (tenant, evidence_id)
    );

    CREATE TABLE ledger (
        tenant          TEXT NOT NULL,
        seq             BIGINT NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL,
        body            BYTEA NOT NULL,
        at              TEXT NOT NULL,
        idempotency_key TEXT,
        action          TEXT,
        agent_id        TEXT,
        PRIMARY KEY (tenant, seq)
    );
    CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
    CREATE INDEX ledger_tenant_at ON ledger (tenant, at);

    -- One row per tenant, locked by every transaction of that tenant: it orders the tenant's writers across
    -- every instance, as SQLite's single writer does, and holds the end of the tenant's chain.
    CREATE TABLE ledger_heads (
        tenant  TEXT PRIMARY KEY,
        seq     BIGINT NOT NULL,
        hash    TEXT NOT NULL
    );
    "#,
    ),
    // 7: webhooks and their outbox, as in SQLite's schema 7.
    (
        7,
        r#"
    CREATE TABLE webhooks (
        tenant      TEXT NOT NULL,
        id          TEXT NOT NULL,
        url         TEXT NOT NULL,
        secret      TEXT NOT NULL,
        events      TEXT NOT NULL,
        format      TEXT NOT NULL,
        created_us  BIGINT NOT NULL,
        created_by  TEXT NOT NULL,
        removed_us  BIGINT,
        PRIMARY KEY (tenant, id)
    );

    CREATE TABLE webhook_outbox (
        tenant           TEXT NOT NULL,
        id               TEXT NOT NULL,
        webhook_id       TEXT NOT NULL,
        event            TEXT NOT NULL,
        data             TEXT NOT NULL,
        created_us       BIGINT NOT NULL,
        attempts         BIGINT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        next_attempt_us  BIGINT,
        claimed_by       TEXT,
        claim_until_us   BIGINT,
        last_status      BIGINT,
        last_error       TEXT,
        finished_us      BIGINT,
        PRIMARY KEY (tenant, id, webhook_id)
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_us) WHERE state = 'pending';
    CREATE INDEX webhook_outbox_recent ON webhook_outbox (tenant, created_us);
    "#,
    ),
    // 8: usage buckets and each key's charge, as in SQLite's schema 8.
    (
        8,
        r#"
    CREATE TABLE usage_buckets (
        tenant    TEXT NOT NULL,
        agent_id  TEXT NOT NULL,
        action    TEXT NOT NULL,
        span      TEXT NOT NULL CHECK (span IN ('s', 'm', 'h')),
        start_us  BIGINT NOT NULL,
        count     BIGINT NOT NULL,
        tokens    BIGINT NOT NULL,
        sums      TEXT NOT NULL,
        PRIMARY KEY (tenant, agent_id, action, span, start_us)
    );
    ALTER TABLE idempotency ADD COLUMN usage_us BIGINT;
    ALTER TABLE idempotency ADD COLUMN usage TEXT;
    "#,
    ),
    // 9: several approvers and the policy version, as in SQLite's schema 9.
    (
        9,
        r#"
    ALTER TABLE approvals ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1;
    ALTER TABLE approvals ADD COLUMN approved_by TEXT;
    ALTER TABLE approvals ADD COLUMN policy_version TEXT;
    "#,
    ),
    // 10: signed checkpoints, as in SQLite's schema 10.
    (
        10,
        r#"
    CREATE TABLE checkpoints (
        tenant     TEXT NOT NULL,
        seq        BIGINT NOT NULL,
        key_id     TEXT NOT NULL,
        hash       TEXT NOT NULL,
        at_us      BIGINT NOT NULL,
        signature  TEXT NOT NULL,
        PRIMARY KEY (tenant, seq, key_id)
    );
    "#,
    ),
    // 11: keys scoped per agent, approval attempts, retry digests and admin keys, as in SQLite's schema 11.
    (
        11,
        r#"
    ALTER TABLE idempotency ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE idempotency ADD COLUMN retry_digest TEXT;
    ALTER TABLE idempotency DROP CONSTRAINT idempotency_pkey;
    ALTER TABLE idempotency ADD PRIMARY KEY (tenant, key, agent_id);
    ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
    ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('agent', 'operator', 'admin'));
    "#,
    ),
    // 12: key lifetimes and generations, as in SQLite's schema 12.
    (
        12,
        r#"
    ALTER TABLE idempotency ADD COLUMN lifetime TEXT NOT NULL DEFAULT 'once'
        CHECK (lifetime IN ('once', 'operation'));
    ALTER TABLE idempotency ADD COLUMN generation BIGINT NOT NULL DEFAULT 1 CHECK (generation >= 1);
    "#,
    ),
    // 13: the key index ends with the sequence number, as in SQLite's schema 13 (a key's records in ledger
    // order, without a sort).
    (
        13,
        r#"
    CREATE INDEX ledger_key_seq ON ledger (tenant, idempotency_key, seq);
    DROP INDEX IF EXISTS ledger_tenant_key;
    "#,
    ),
    // 14: an agent's pending approvals counted from an index, as in SQLite's schema 14.
    (
        14,
        r#"
    CREATE INDEX approvals_pending_agent ON approvals (tenant, agent_id, status, expires_us);
    "#,
    ),
    // 15: console sessions stored, and where operator changes are in the ledger, as in SQLite's schema 15.
    (
        15,
        r#"
    CREATE TABLE console_sessions (
        token_hash  TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        created_us  BIGINT NOT NULL,
        expires_us  BIGINT NOT NULL
    );
    CREATE INDEX console_sessions_tenant ON console_sessions (tenant, expires_us);
    CREATE INDEX console_sessions_key ON console_sessions (tenant, key_id);
    CREATE INDEX console_sessions_expiry ON console_sessions (expires_us);

    CREATE TABLE change_history (
        tenant   TEXT NOT NULL,
        subject  TEXT NOT NULL,
        seq      BIGINT NOT NULL,
        PRIMARY KEY (tenant, subject, seq)
    );
    INSERT INTO change_history (tenant, subject, seq)
        SELECT tenant, 'kill-switch', seq FROM ledger
        WHERE convert_from(body, 'UTF8')::jsonb ->> 'kind' = 'kill_switch';
    INSERT INTO change_history (tenant, subject, seq)
        SELECT tenant, convert_from(body, 'UTF8')::jsonb -> 'resource_refs' ->> 0, seq FROM ledger
        WHERE convert_from(body, 'UTF8')::jsonb ->> 'kind' = 'key'
          AND convert_from(body, 'UTF8')::jsonb -> 'resource_refs' ->> 0 IS NOT NULL;
    "#,
    ),
    // 16: each tenant's ledger as a Merkle tree, as in SQLite's schema 16.
    (
        16,
        r#"
    CREATE TABLE tlog_hashes (
        tenant  TEXT NOT NULL,
        idx     BIGINT NOT NULL,
        hash    BYTEA NOT NULL,
        PRIMARY KEY (tenant, idx)
    );
    "#,
    ),
    // 17: the trees of the records already in the ledger (SQLite's 17): built by `migrate` in Rust.
    (17, "SELECT 1;"),
    // 18: each checkpoint's tree head as a signed C2SP checkpoint, as in SQLite's schema 18.
    (
        18,
        r#"
    CREATE TABLE tree_checkpoints (
        tenant  TEXT NOT NULL,
        size    BIGINT NOT NULL,
        key_id  TEXT NOT NULL,
        note    TEXT NOT NULL,
        PRIMARY KEY (tenant, size, key_id)
    );
    "#,
    ),
    // 25: the head row keeps its chain's last record's time, before which the next record's may not be (as the
    // SQLite writer keeps it since its schema 25; PostgreSQL keeps its index by time). NULL for a chain with no
    // records.
    (
        25,
        r#"
    ALTER TABLE ledger_heads ADD COLUMN at TEXT;
    UPDATE ledger_heads AS head SET at = record.at FROM ledger AS record
        WHERE record.tenant = head.tenant AND record.seq = head.seq;
    "#,
    ),
];

/// The newest schema version this build knows (the same number as SQLite's).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Any number for `pg_advisory_xact_lock`, as long as every instance uses the same: migrations run one at a time.
const MIGRATION_LOCK: i64 = 0x4841_4c54_5354_4154; // "HALTSTAT"

/// The schema version the database holds (0: none).
pub(crate) fn version(conn: &mut Conn) -> Result<i64> {
    let exists = conn
        .query_opt("SELECT to_regclass('haltstate_schema') IS NOT NULL", &[])?
        .is_some_and(|row| row.get::<_, bool>(0));
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .query_opt("SELECT version FROM haltstate_schema", &[])?
        .map_or(0, |row| row.get(0)))
}

/// Refuses a database this build cannot run on: newer (`SchemaTooNew`), or older when `migrate` is false.
pub(crate) fn check(conn: &mut Conn) -> Result<()> {
    match version(conn)? {
        SCHEMA_VERSION => Ok(()),
        found if found > SCHEMA_VERSION => Err(AuthorityError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }),
        found => Err(AuthorityError::SchemaTooOld {
            found,
            current: SCHEMA_VERSION,
        }),
    }
}

/// Brings the database up to [`SCHEMA_VERSION`]; safe to race with other instances doing the same.
pub(crate) fn migrate(conn: &mut Conn) -> Result<()> {
    let mut tx = conn.client().transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS haltstate_schema (version BIGINT NOT NULL)")?;
    let found: i64 = tx
        .query_opt("SELECT version FROM haltstate_schema", &[])?
        .map_or(0, |row| row.get(0));
    if found > SCHEMA_VERSION {
        return Err(AuthorityError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        tx.batch_execute(sql)?;
        tx.execute("DELETE FROM haltstate_schema", &[])?;
        tx.execute(
            "INSERT INTO haltstate_schema (version) VALUES ($1)",
            &[version],
        )?;
    }
    if found < 17 {
        super::tree::build_all(&mut tx)?;
    }
    tx.commit()?;
    Ok(())
}
