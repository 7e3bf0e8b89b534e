//! The writer's key rows and ledger records, held until the next statement needs the database or the transaction
//! commits: a transaction of one tenant's guards and reports (each a key row and a record) then sends them all as
//! one statement instead of one per operation (round trips bound an instance's throughput, and each statement
//! costs PostgreSQL its own planning and executor start). A lone operation's pair goes by the one-row statements.
//!
//! Anything else the transaction sends first sends what is held ([`super::tx::PgTx`] reaches the connection only
//! through the flush), so every read sees every earlier write of the transaction, and the runner flushes before
//! `COMMIT`. A held write that fails fails at its flush, which spoils the tenant's transaction as any failed
//! statement does: rolled back, every caller of the batch told, with the database's reason.

use postgres::types::ToSql;

use super::conn::Conn;
use super::held_rows::{KeyRow, KeyValues, RecordRow, key_values};
use crate::error::{AuthorityError, Result};
use crate::store::sql::{key_upsert_conflict, key_upsert_into};

/// The key row's columns, `$1` to `$21` (`$13` is both `created_us` and `updated_us`).
const KEY_INSERT: &str = concat!(
    key_upsert_into!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    key_upsert_conflict!("tenant, key, agent_id")
);

/// A record and its tree hashes: the ledger's columns `$1`-`$9`, the hashes' indexes `$10` and hashes `$11`.
const RECORD_INSERT: &str = "WITH tree AS (INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $1, t.idx, t.hash FROM UNNEST($10::bigint[], $11::bytea[]) AS t(idx, hash)) \
     INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, action, agent_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Both in one statement: the key row's `$1`-`$21`, then the record's as [`RECORD_INSERT`] numbers them, each
/// plus 21. The two touch different tables, so neither sees (or needs) the other's change.
const KEY_AND_RECORD_INSERT: &str = concat!(
    "WITH k AS (",
    key_upsert_into!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    key_upsert_conflict!("tenant, key, agent_id"),
    "), \
     tree AS (INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $22, t.idx, t.hash FROM UNNEST($31::bigint[], $32::bytea[]) AS t(idx, hash)) \
     INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, action, agent_id) \
     VALUES ($22, $23, $24, $25, $26, $27, $28, $29, $30)"
);

/// The writes held back, in the order they were made.
#[derive(Default)]
pub(crate) struct Pending {
    keys: Vec<KeyRow>,
    records: Vec<RecordRow>,
}

impl Pending {
    /// Holds `row`.
    pub(crate) fn key(&mut self, row: KeyRow) {
        self.keys.push(row);
    }

    /// Holds `row`.
    pub(crate) fn record(&mut self, row: RecordRow) {
        self.records.push(row);
    }

    /// Sends what is held, in one statement. A refusal is the transaction's, not the operation's that happened
    /// to need the database next: it is told as the commit failing, with the database's reason.
    pub(crate) fn flush(&mut self, conn: &mut Conn) -> Result<()> {
        self.send(conn).map_err(|error| match error {
            AuthorityError::Storage(refused) => AuthorityError::CommitFailed(format!(
                "the database refused the transaction's writes: {refused}"
            )),
            other => other,
        })
    }

    fn send(&mut self, conn: &mut Conn) -> Result<()> {
        let keys = latest(std::mem::take(&mut self.keys));
        let records = std::mem::take(&mut self.records);
        match (keys.as_slice(), records.as_slice()) {
            ([], []) => Ok(()),
            ([key], []) => {
                let values = key_values(key)?;
                conn.execute(KEY_INSERT, &key_refs(&values)).map(drop)
            }
            ([], [record]) => conn
                .execute(RECORD_INSERT, &record_params(record))
                .map(drop),
            ([key], [record]) => {
                let values = key_values(key)?;
                let mut params = key_refs(&values);
                params.extend(record_params(record));
                conn.execute(KEY_AND_RECORD_INSERT, &params).map(drop)
            }
            _ => super::bulk::insert(conn, &keys, &records),
        }
    }
}

/// Each key row's last version, in the order of those: one statement may not upsert a row twice, and the last
/// write of a row is all of it (every column but `created_us`, which is the transaction's clock either way).
fn latest(rows: Vec<KeyRow>) -> Vec<KeyRow> {
    if rows.len() < 2 {
        return rows;
    }
    let keep: Vec<bool> = {
        let mut last = std::collections::HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let record = &row.record;
            last.insert((&row.tenant, &record.key, &record.agent_id), i);
        }
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let record = &row.record;
                last.get(&(&row.tenant, &record.key, &record.agent_id)) == Some(&i)
            })
            .collect()
    };
    rows.into_iter()
        .zip(keep)
        .filter_map(|(row, keep)| keep.then_some(row))
        .collect()
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
