//! The SQLite schema and its versioned migrations (tracked in `PRAGMA user_version`).
//!
//! Times are integer microseconds since the Unix epoch. Ledger rows hold the canonical bytes and the chain; the
//! indexed columns queries filter on are stored beside them and checked against them by `verify`, the others
//! read from the bytes as a query needs them.

use rusqlite::{Connection, Transaction};

use super::columns::ledger_has_column;
use super::key_heads::{file_key_rows_under_key_heads, file_records_under_key_heads};
use crate::error::{AuthorityError, Result};

/// One step up: SQL, or code for a step SQL cannot take.
enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> Result<()>),
}

use Migration::{Code, Sql};

/// Each entry moves the schema one version up; never edit a released entry, append a new one.
const MIGRATIONS: &[Migration] = &[
    // 1: the initial schema.
    Sql(r#"
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('agent', 'operator')),
        key_hash    BLOB NOT NULL UNIQUE,
        created_us  INTEGER NOT NULL,
        revoked_us  INTEGER
    );
    CREATE INDEX api_keys_tenant ON api_keys (tenant);

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
        lease_until_us  INTEGER,
        outcome_seq     INTEGER,
        created_us      INTEGER NOT NULL,
        updated_us      INTEGER NOT NULL,
        PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID;

    CREATE TABLE approvals (
        id               TEXT PRIMARY KEY,
        tenant           TEXT NOT NULL,
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
        created_us       INTEGER NOT NULL,
        expires_us       INTEGER NOT NULL,
        decided_us       INTEGER,
        approver         TEXT,
        decision_reason  TEXT
    );
    CREATE INDEX approvals_pending ON approvals (tenant, status, expires_us);
    CREATE INDEX approvals_decided ON approvals (tenant, decided_us);
    CREATE UNIQUE INDEX approvals_request ON approvals (tenant, request_id) WHERE request_id IS NOT NULL;

    CREATE TABLE kill_switch (
        tenant      TEXT NOT NULL,
        agent_id    TEXT NOT NULL,
        state       TEXT NOT NULL,
        updated_us  INTEGER NOT NULL,
        updated_by  TEXT NOT NULL,
        PRIMARY KEY (tenant, agent_id)
    ) WITHOUT ROWID;

    CREATE TABLE ledger (
        seq             INTEGER PRIMARY KEY,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL,
        body            BLOB NOT NULL,
        tenant          TEXT GENERATED ALWAYS AS (json_extract(body, '$.tenant')) VIRTUAL,
        at              TEXT GENERATED ALWAYS AS (json_extract(body, '$.at')) VIRTUAL,
        action          TEXT GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL,
        agent_id        TEXT GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL,
        idempotency_key TEXT GENERATED ALWAYS AS (json_extract(body, '$.idempotency_key')) VIRTUAL
    );
    CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
    CREATE INDEX ledger_tenant_action ON ledger (tenant, action, seq);
    CREATE INDEX ledger_tenant_agent ON ledger (tenant, agent_id, seq);
    CREATE INDEX ledger_tenant_at ON ledger (tenant, at);

    CREATE TABLE ledger_head (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        seq   INTEGER NOT NULL,
        hash  TEXT NOT NULL
    );
    "#),
    // 2: fail-open evidence delivered later by clients, deduplicated by the client's evidence id.
    Sql(r#"
    CREATE TABLE unverified_imports (
        tenant       TEXT NOT NULL,
        evidence_id  TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        PRIMARY KEY (tenant, evidence_id)
    ) WITHOUT ROWID;
    "#),
    // 3: every ledger append paid for four expression indexes; operator queries by action or agent are rare
    // and are served by the tenant/time index, so keep only the key and time indexes.
    Sql(r#"
    DROP INDEX IF EXISTS ledger_tenant_action;
    DROP INDEX IF EXISTS ledger_tenant_agent;
    "#),
    // 4: the indexed columns (tenant, time, key) are stored, not generated: evaluating `json_extract` over the
    // body for every index entry was a sixth of each append. `verify` checks them against the body, so they
    // are no second copy anyone can change unnoticed. Action and agent stay generated (no index reads them).
    Sql(r#"
    CREATE TABLE ledger_v4 (
        seq             INTEGER PRIMARY KEY,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL,
        body            BLOB NOT NULL,
        tenant          TEXT NOT NULL,
        at              TEXT NOT NULL,
        idempotency_key TEXT,
        action          TEXT GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL,
        agent_id        TEXT GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL
    );
    INSERT INTO ledger_v4 (seq, prev_hash, hash, body, tenant, at, idempotency_key)
        SELECT seq, prev_hash, hash, body, tenant, at, idempotency_key FROM ledger ORDER BY seq;
    DROP TABLE ledger;
    ALTER TABLE ledger_v4 RENAME TO ledger;
    CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
    CREATE INDEX ledger_tenant_at ON ledger (tenant, at);
    "#),
    // 5: identities. A key is one identity: names are canonical (lowercase) and unique among a tenant's live
    // keys (older duplicates get their key id appended), and an agent key carries the agents it may act as.
    // A claim remembers which key holds it and whether the caller chose its token; a check's request id is
    // bound to one operation, like an idempotency key.
    Sql(r#"
    ALTER TABLE api_keys ADD COLUMN agents TEXT;
    ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER;
    UPDATE api_keys SET name = lower(name);
    UPDATE api_keys SET name = name || '-' || substr(id, 5)
        WHERE revoked_us IS NULL AND EXISTS (
            SELECT 1 FROM api_keys AS older
            WHERE older.tenant = api_keys.tenant AND older.name = api_keys.name
              AND older.revoked_us IS NULL AND older.rowid < api_keys.rowid);
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (tenant, name) WHERE revoked_us IS NULL;

    ALTER TABLE idempotency ADD COLUMN claimed_by TEXT;
    ALTER TABLE idempotency ADD COLUMN client_token INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE check_requests (
        tenant       TEXT NOT NULL,
        request_id   TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        agent_id     TEXT NOT NULL,
        action       TEXT NOT NULL,
        decision     TEXT NOT NULL,
        created_us   INTEGER NOT NULL,
        PRIMARY KEY (tenant, request_id)
    ) WITHOUT ROWID;
    "#),
    // 6: one chain per tenant (see `rechain.rs`).
    Code(super::rechain::per_tenant_chains),
    // 7: webhooks and their outbox. The secret is stored as given: signing needs it (see `webhooks/secret.rs`).
    // A delivery is one event for one endpoint; its message id is the event's, shared by the endpoints it goes to.
    Sql(r#"
    CREATE TABLE webhooks (
        tenant      TEXT NOT NULL,
        id          TEXT NOT NULL,
        url         TEXT NOT NULL,
        secret      TEXT NOT NULL,
        events      TEXT NOT NULL,
        format      TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        removed_us  INTEGER,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;

    CREATE TABLE webhook_outbox (
        tenant           TEXT NOT NULL,
        id               TEXT NOT NULL,
        webhook_id       TEXT NOT NULL,
        event            TEXT NOT NULL,
        data             TEXT NOT NULL,
        created_us       INTEGER NOT NULL,
        attempts         INTEGER NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        next_attempt_us  INTEGER,
        claimed_by       TEXT,
        claim_until_us   INTEGER,
        last_status      INTEGER,
        last_error       TEXT,
        finished_us      INTEGER,
        PRIMARY KEY (tenant, id, webhook_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_us) WHERE state = 'pending';
    CREATE INDEX webhook_outbox_recent ON webhook_outbox (tenant, created_us);
    "#),
    // 8: usage in the policy context (see `store/usage.rs`): per (tenant, agent, action) buckets of a second, a
    // minute and an hour, and on each key the charge its claim added (given back when its outcome is an error).
    Sql(r#"
    CREATE TABLE usage_buckets (
        tenant    TEXT NOT NULL,
        agent_id  TEXT NOT NULL,
        action    TEXT NOT NULL,
        span      TEXT NOT NULL CHECK (span IN ('s', 'm', 'h')),
        start_us  INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        tokens    INTEGER NOT NULL,
        sums      TEXT NOT NULL,
        PRIMARY KEY (tenant, agent_id, action, span, start_us)
    ) WITHOUT ROWID;
    ALTER TABLE idempotency ADD COLUMN usage_us INTEGER;
    ALTER TABLE idempotency ADD COLUMN usage TEXT;
    "#),
    // 9: approvals that need several operators (`@approval("2")`) and the policy set they were requested under.
    Sql(r#"
    ALTER TABLE approvals ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE approvals ADD COLUMN approved_by TEXT;
    ALTER TABLE approvals ADD COLUMN policy_version TEXT;
    "#),
    // 10: signed checkpoints of each tenant's chain (also written outside the database, see checkpoint_file.rs).
    Sql(r#"
    CREATE TABLE checkpoints (
        tenant     TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        key_id     TEXT NOT NULL,
        hash       TEXT NOT NULL,
        at_us      INTEGER NOT NULL,
        signature  TEXT NOT NULL,
        PRIMARY KEY (tenant, seq, key_id)
    ) WITHOUT ROWID;
    "#),
    // 11: idempotency keys are scoped per agent (one agent cannot take the key another will use); claims under an
    // approval are counted (an approval grants a few, not as many as the agent likes), and a retried guard is
    // recognised by a digest of its caller's key and retry token, not by a token it chose. Keys may be admins
    // (who mint keys; operators no longer do). SQLite changes a primary key or a CHECK only by copying the table.
    Sql(r#"
    CREATE TABLE idempotency_11 (
        tenant          TEXT NOT NULL,
        agent_id        TEXT NOT NULL,
        key             TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        action          TEXT NOT NULL,
        state           TEXT NOT NULL,
        approval_id     TEXT,
        policy_id       TEXT,
        reason          TEXT NOT NULL DEFAULT '',
        claim_token     TEXT,
        lease_until_us  INTEGER,
        outcome_seq     INTEGER,
        created_us      INTEGER NOT NULL,
        updated_us      INTEGER NOT NULL,
        claimed_by      TEXT,
        client_token    INTEGER NOT NULL DEFAULT 0,
        usage_us        INTEGER,
        usage           TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        retry_digest    TEXT,
        -- The key before the agent: a report that names no agent finds the key's records by the key's prefix.
        PRIMARY KEY (tenant, key, agent_id)
    ) WITHOUT ROWID;
    INSERT INTO idempotency_11 (tenant, agent_id, key, fingerprint, action, state, approval_id, policy_id, reason,
            claim_token, lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, usage_us,
            usage)
        SELECT tenant, agent_id, key, fingerprint, action, state, approval_id, policy_id, reason, claim_token,
            lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, usage_us, usage
        FROM idempotency;
    DROP TABLE idempotency;
    ALTER TABLE idempotency_11 RENAME TO idempotency;

    CREATE TABLE api_keys_11 (
        id          TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('agent', 'operator', 'admin')),
        key_hash    BLOB NOT NULL UNIQUE,
        created_us  INTEGER NOT NULL,
        revoked_us  INTEGER,
        agents      TEXT,
        rate_limit  INTEGER
    );
    INSERT INTO api_keys_11 (id, tenant, name, role, key_hash, created_us, revoked_us, agents, rate_limit)
        SELECT id, tenant, name, role, key_hash, created_us, revoked_us, agents, rate_limit FROM api_keys;
    DROP TABLE api_keys;
    ALTER TABLE api_keys_11 RENAME TO api_keys;
    CREATE INDEX api_keys_tenant ON api_keys (tenant);
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (tenant, name) WHERE revoked_us IS NULL;
    "#),
    // 12: a key derived from a call's arguments names one operation until it ends, then the next (its
    // generation); a key the caller chose stays one operation forever (`once`, every row before this).
    Sql(r#"
    ALTER TABLE idempotency ADD COLUMN lifetime TEXT NOT NULL DEFAULT 'once'
        CHECK (lifetime IN ('once', 'operation'));
    ALTER TABLE idempotency ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1);
    "#),
    // 13: the key index ends with the sequence number. Evidence is read in ledger order (`ORDER BY seq`), and
    // with `(tenant, idempotency_key)` alone SQLite preferred walking the tenant's `(tenant, seq)` index, which
    // needs no sort: a query by key read the tenant's whole ledger (8 ms at 15,000 records, growing with it;
    // `examples/growth.rs`). With the sequence in the index the key's records come out in order.
    Sql(r#"
    CREATE INDEX ledger_key_seq ON ledger (tenant, idempotency_key, seq);
    DROP INDEX IF EXISTS ledger_tenant_key;
    "#),
    // 14: an agent's pending approvals counted from an index. Every approval a guard asks for first counts the
    // agent's waiting approvals against its cap; through `approvals_pending` that read each of the tenant's
    // pending rows to compare its agent, so asking cost as much as the tenant's whole inbox (issue 25: 10^5
    // pending approvals).
    Sql(r#"
    CREATE INDEX approvals_pending_agent ON approvals (tenant, agent_id, status, expires_us);
    "#),
    // 15: console sessions stored, so that every instance on the database knows every session (no affinity at the
    // load balancer) and signing out or revoking the key ends it everywhere. Only the token's SHA-256 is kept.
    Sql(r#"
    CREATE TABLE console_sessions (
        token_hash  TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        created_us  INTEGER NOT NULL,
        expires_us  INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_tenant ON console_sessions (tenant, expires_us);
    CREATE INDEX console_sessions_key ON console_sessions (tenant, key_id);
    CREATE INDEX console_sessions_expiry ON console_sessions (expires_us);

    -- Where the records of a tenant's operator changes are (the kill switch, each key), so that their history
    -- is read from the ledger by index, not by decoding every record. Filled from the ledger as it stands.
    CREATE TABLE change_history (
        tenant   TEXT NOT NULL,
        subject  TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        PRIMARY KEY (tenant, subject, seq)
    ) WITHOUT ROWID;
    INSERT INTO change_history (tenant, subject, seq)
        SELECT tenant, 'kill-switch', seq FROM ledger
        WHERE json_extract(CAST(body AS TEXT), '$.kind') = 'kill_switch';
    INSERT INTO change_history (tenant, subject, seq)
        SELECT tenant, json_extract(CAST(body AS TEXT), '$.resource_refs[0]'), seq FROM ledger
        WHERE json_extract(CAST(body AS TEXT), '$.kind') = 'key'
          AND json_extract(CAST(body AS TEXT), '$.resource_refs[0]') IS NOT NULL;
    "#),
    // 16: each tenant's ledger as a Merkle tree (`store/tree.rs`): the hash of every complete subtree, stored as
    // records are appended, so that proofs of one record and of append-only growth never need every leaf.
    Sql(r#"
    CREATE TABLE tlog_hashes (
        tenant  TEXT NOT NULL,
        idx     INTEGER NOT NULL,
        hash    BLOB NOT NULL,
        PRIMARY KEY (tenant, idx)
    ) WITHOUT ROWID;
    "#),
    // 17: the trees of the records already in the ledger, built once its chains verify.
    Code(super::tree_legacy::build_all),
    // 18: each checkpoint's tree head, signed as a C2SP checkpoint (and the witnesses' cosignatures added to it).
    Sql(r#"
    CREATE TABLE tree_checkpoints (
        tenant  TEXT NOT NULL,
        size    INTEGER NOT NULL,
        key_id  TEXT NOT NULL,
        note    TEXT NOT NULL,
        PRIMARY KEY (tenant, size, key_id)
    ) WITHOUT ROWID;
    "#),
    // 19: the ledger's generated `action` and `agent_id` columns go (`drop_generated_ledger_columns`).
    Code(drop_generated_ledger_columns),
    // 20: a usage bucket's span checked with `=`s. SQLite evaluates a CHECK's `IN` list of three or more values
    // through an ephemeral table it builds at every write of the row: about half of writing a bucket, which a
    // usage-reading guard does for three of them. The table is rebuilt (a CHECK cannot be altered); it holds one
    // day of buckets per agent and action.
    Sql(r#"
    CREATE TABLE usage_buckets_20 (
        tenant    TEXT NOT NULL,
        agent_id  TEXT NOT NULL,
        action    TEXT NOT NULL,
        span      TEXT NOT NULL CHECK (span = 's' OR span = 'm' OR span = 'h'),
        start_us  INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        tokens    INTEGER NOT NULL,
        sums      TEXT NOT NULL,
        PRIMARY KEY (tenant, agent_id, action, span, start_us)
    ) WITHOUT ROWID;
    INSERT INTO usage_buckets_20 (tenant, agent_id, action, span, start_us, count, tokens, sums)
        SELECT tenant, agent_id, action, span, start_us, count, tokens, sums FROM usage_buckets;
    DROP TABLE usage_buckets;
    ALTER TABLE usage_buckets_20 RENAME TO usage_buckets;
    "#),
    // 21: key rows stored in the order they were made, found through an index. In a table ordered by key
    // (`WITHOUT ROWID`, schema 11) a random key's row sits on a random page, and its operation's guard and report
    // each dirtied that page in a different commit: two whole 4 KiB WAL frames per action for ~300 bytes, most of
    // what a commit wrote with many callers (`examples/wal_pages.rs`). Now the row lands on the table's newest
    // pages and is updated there (the report comes soon after the guard), and only the index entry, written once
    // per key and not changed by an update, is random: 0.935x server CPU per action, 1.078x actions/s at 64
    // connections (BENCHMARKS.md, "2026-12-04, late").
    Sql(r#"
    CREATE TABLE idempotency_21 (
        tenant          TEXT NOT NULL,
        agent_id        TEXT NOT NULL,
        key             TEXT NOT NULL,
        fingerprint     TEXT NOT NULL,
        action          TEXT NOT NULL,
        state           TEXT NOT NULL,
        approval_id     TEXT,
        policy_id       TEXT,
        reason          TEXT NOT NULL DEFAULT '',
        claim_token     TEXT,
        lease_until_us  INTEGER,
        outcome_seq     INTEGER,
        created_us      INTEGER NOT NULL,
        updated_us      INTEGER NOT NULL,
        claimed_by      TEXT,
        client_token    INTEGER NOT NULL DEFAULT 0,
        usage_us        INTEGER,
        usage           TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        retry_digest    TEXT,
        lifetime        TEXT NOT NULL DEFAULT 'once' CHECK (lifetime IN ('once', 'operation')),
        generation      INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1)
    );
    INSERT INTO idempotency_21 (tenant, agent_id, key, fingerprint, action, state, approval_id, policy_id, reason,
            claim_token, lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, usage_us,
            usage, attempts, retry_digest, lifetime, generation)
        SELECT tenant, agent_id, key, fingerprint, action, state, approval_id, policy_id, reason, claim_token,
            lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, usage_us, usage,
            attempts, retry_digest, lifetime, generation
        FROM idempotency ORDER BY created_us;
    DROP TABLE idempotency;
    ALTER TABLE idempotency_21 RENAME TO idempotency;
    CREATE UNIQUE INDEX idempotency_key ON idempotency (tenant, key, agent_id);
    "#),
    // 22: a key's records found through its first record. The key index `(tenant, idempotency_key, seq)` took an
    // entry at a random place for every record with a key, guard and report alike: after schema 21 the largest
    // source of WAL frames with many callers. Now each record names its key's first record (`key_first`); only
    // that first record, the key's head, is indexed by key (once per key), and the others by `(tenant,
    // key_first, seq)`, whose entries for a report land near the newest ones. `verify` checks that every record
    // names a head of its own key and that a key has one head, so a query by key finds exactly its records.
    // Filled from the ledger as it stands (`file_records_under_key_heads`).
    Code(file_records_under_key_heads),
    // 23: key rows filed under their key's first record. Schema 21 left one entry at a random place per key in the
    // key rows' index `(tenant, key, agent_id)`, beside the key's head in the ledger's (schema 22): two random
    // pages per new key, about half of what a commit wrote with many callers (`examples/wal_pages.rs`). Now a row
    // names its key's head (`key_head`) and is found through it, by `(tenant, key_head, agent_id)`, whose entry
    // for a new key lands beside the newest ones. A key row is stored after its key's first record.
    Code(file_key_rows_under_key_heads),
    // 24: the tree's hashes in the row of the record whose append stored them (`tree`), not rows of their own in
    // `tlog_hashes`, whose index B-tree SQLite rewrote three or four pages of at every commit (`tree.rs`).
    Code(super::tree_legacy::move_into_ledger),
    // 25: the index by time goes where every tenant's record times are in sequence order (`times.rs`): time
    // queries bisect the sequence numbers instead, and the writer keeps new records in order (`tails.rs`).
    Code(super::times::drop_unless_backwards),
];

/// Schema 19. SQLite computed the ledger's generated `action` and `agent_id` columns on every insert (two
/// `json_extract`s of the body, ~4% of the writer's CPU per record) for a filter of operator queries that is not
/// indexed: those evaluate the same expression as they read (`LedgerColumns::SQLITE`). Virtual columns are
/// dropped without rewriting a row. A column already gone is left so (a file rebuilt by hand, or by a test).
fn drop_generated_ledger_columns(tx: &Transaction<'_>) -> Result<()> {
    for column in ["action", "agent_id"] {
        if ledger_has_column(tx, column)? {
            tx.execute_batch(&format!("ALTER TABLE ledger DROP COLUMN {column}"))?;
        }
    }
    Ok(())
}

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file up to [`SCHEMA_VERSION`]; safe to race with another process doing the same.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(AuthorityError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        match sql {
            Sql(sql) => tx.execute_batch(sql)?,
            Code(step) => step(&tx)?,
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}
