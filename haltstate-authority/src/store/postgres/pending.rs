//! The writer's last key row and ledger record, held until the next statement needs the database: a guard writes
//! its key row then its record, a report its record then its key row, and each pair goes to PostgreSQL as one
//! statement (a round trip fewer per operation; round trips bound an instance's throughput).
//!
//! Anything else the transaction sends first sends what is held ([`super::tx::PgTx`] reaches the connection only
//! through the flush), so every read sees every earlier write of the transaction, and the runner flushes before
//! `COMMIT`. A held write that fails fails at its flush, which spoils the tenant's transaction as any failed
//! statement does: rolled back, every caller of the batch told.

use postgres::types::ToSql;

use haltstate_types::timestamp::to_micros;

use super::conn::{Conn, signed};
use crate::error::Result;
use crate::state_rows::KeyRecord;
use crate::store::usage;

/// A key row to upsert.
pub(crate) struct KeyRow {
    pub(crate) tenant: String,
    pub(crate) record: KeyRecord,
    /// `updated_us` (and `created_us` for a new row).
    pub(crate) now_us: i64,
}

/// A ledger record and the tree hashes its append stores.
pub(crate) struct RecordRow {
    pub(crate) tenant: String,
    pub(crate) seq: i64,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
    pub(crate) body: Vec<u8>,
    pub(crate) at: String,
    pub(crate) key: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) tree_indexes: Vec<i64>,
    pub(crate) tree_hashes: Vec<Vec<u8>>,
}

/// The key row's columns, `$1` to `$21` (`$13` is both `created_us` and `updated_us`).
const KEY_INSERT: &str = "INSERT INTO idempotency (tenant, key, fingerprint, agent_id, action, state, approval_id, \
     policy_id, reason, claim_token, lease_until_us, outcome_seq, created_us, updated_us, claimed_by, client_token, \
     usage_us, usage, attempts, retry_digest, lifetime, generation) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
     ON CONFLICT (tenant, key, agent_id) DO UPDATE SET fingerprint = excluded.fingerprint, action = excluded.action, \
     state = excluded.state, approval_id = excluded.approval_id, \
     policy_id = excluded.policy_id, reason = excluded.reason, claim_token = excluded.claim_token, \
     lease_until_us = excluded.lease_until_us, outcome_seq = excluded.outcome_seq, \
     updated_us = excluded.updated_us, claimed_by = excluded.claimed_by, \
     client_token = excluded.client_token, usage_us = excluded.usage_us, usage = excluded.usage, \
     attempts = excluded.attempts, retry_digest = excluded.retry_digest, lifetime = excluded.lifetime, \
     generation = excluded.generation";

/// A record and its tree hashes: the ledger's columns `$1`-`$9`, the hashes' indexes `$10` and hashes `$11`.
const RECORD_INSERT: &str = "WITH tree AS (INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $1, t.idx, t.hash FROM UNNEST($10::bigint[], $11::bytea[]) AS t(idx, hash)) \
     INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, action, agent_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Both in one statement: the key row's `$1`-`$21`, then the record's as [`RECORD_INSERT`] numbers them, each
/// plus 21. The two touch different tables, so neither sees (or needs) the other's change.
const KEY_AND_RECORD_INSERT: &str = "WITH k AS (INSERT INTO idempotency (tenant, key, fingerprint, agent_id, \
     action, state, approval_id, policy_id, reason, claim_token, lease_until_us, outcome_seq, created_us, updated_us, \
     claimed_by, client_token, usage_us, usage, attempts, retry_digest, lifetime, generation) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
     ON CONFLICT (tenant, key, agent_id) DO UPDATE SET fingerprint = excluded.fingerprint, action = excluded.action, \
     state = excluded.state, approval_id = excluded.approval_id, \
     policy_id = excluded.policy_id, reason = excluded.reason, claim_token = excluded.claim_token, \
     lease_until_us = excluded.lease_until_us, outcome_seq = excluded.outcome_seq, \
     updated_us = excluded.updated_us, claimed_by = excluded.claimed_by, \
     client_token = excluded.client_token, usage_us = excluded.usage_us, usage = excluded.usage, \
     attempts = excluded.attempts, retry_digest = excluded.retry_digest, lifetime = excluded.lifetime, \
     generation = excluded.generation), \
     tree AS (INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $22, t.idx, t.hash FROM UNNEST($31::bigint[], $32::bytea[]) AS t(idx, hash)) \
     INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, action, agent_id) \
     VALUES ($22, $23, $24, $25, $26, $27, $28, $29, $30)";

/// The writes held back, at most one of each kind.
#[derive(Default)]
pub(crate) struct Pending {
    key: Option<KeyRow>,
    record: Option<RecordRow>,
}

impl Pending {
    /// Holds `row` (sending a key row already held first); sends it with a held record.
    pub(crate) fn key(&mut self, conn: &mut Conn, row: KeyRow) -> Result<()> {
        if self.key.is_some() {
            self.flush(conn)?;
        }
        self.key = Some(row);
        self.flush_pair(conn)
    }

    /// Holds `row` (sending a record already held first); sends it with a held key row.
    pub(crate) fn record(&mut self, conn: &mut Conn, row: RecordRow) -> Result<()> {
        if self.record.is_some() {
            self.flush(conn)?;
        }
        self.record = Some(row);
        self.flush_pair(conn)
    }

    fn flush_pair(&mut self, conn: &mut Conn) -> Result<()> {
        if self.key.is_some() && self.record.is_some() {
            self.flush(conn)?;
        }
        Ok(())
    }

    /// Sends what is held, in one statement.
    pub(crate) fn flush(&mut self, conn: &mut Conn) -> Result<()> {
        match (self.key.take(), self.record.take()) {
            (None, None) => Ok(()),
            (Some(key), None) => {
                let values = key_values(&key);
                conn.execute(KEY_INSERT, &key_refs(&values)).map(drop)
            }
            (None, Some(record)) => conn
                .execute(RECORD_INSERT, &record_params(&record))
                .map(drop),
            (Some(key), Some(record)) => {
                let values = key_values(&key);
                let mut params = key_refs(&values);
                params.extend(record_params(&record));
                conn.execute(KEY_AND_RECORD_INSERT, &params).map(drop)
            }
        }
    }
}

/// The key row's values that are computed from it (the rest are borrowed).
struct KeyValues<'a> {
    row: &'a KeyRow,
    state: &'static str,
    lease_until: Option<i64>,
    outcome_seq: Option<i64>,
    usage_us: Option<i64>,
    usage: Option<String>,
    attempts: i64,
    lifetime: &'static str,
    generation: i64,
}

fn key_values(row: &KeyRow) -> KeyValues<'_> {
    let record = &row.record;
    KeyValues {
        row,
        state: record.state.as_str(),
        lease_until: record.lease_until.map(to_micros),
        outcome_seq: record.outcome_seq.map(signed),
        usage_us: record.charged.as_ref().map(|c| to_micros(c.at)),
        usage: record
            .charged
            .as_ref()
            .map(|c| usage::encode_charge(&c.figures)),
        attempts: i64::from(record.attempts),
        lifetime: record.lifetime.as_str(),
        generation: signed(record.generation),
    }
}

fn key_refs<'a>(v: &'a KeyValues<'a>) -> Vec<&'a (dyn ToSql + Sync)> {
    let record = &v.row.record;
    vec![
        &v.row.tenant,
        &record.key,
        &record.fingerprint,
        &record.agent_id,
        &record.action,
        &v.state,
        &record.approval_id,
        &record.policy_id,
        &record.reason,
        &record.claim_token,
        &v.lease_until,
        &v.outcome_seq,
        &v.row.now_us,
        &record.claimed_by,
        &record.client_token,
        &v.usage_us,
        &v.usage,
        &v.attempts,
        &record.retry_digest,
        &v.lifetime,
        &v.generation,
    ]
}

fn record_params(row: &RecordRow) -> Vec<&(dyn ToSql + Sync)> {
    vec![
        &row.tenant,
        &row.seq,
        &row.prev_hash,
        &row.hash,
        &row.body,
        &row.at,
        &row.key,
        &row.action,
        &row.agent,
        &row.tree_indexes,
        &row.tree_hashes,
    ]
}
