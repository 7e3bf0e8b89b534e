//! What the ledger recorded, and the SQL that sets a SQLite ledger file back to an older schema.

use haltstate_authority::{Authority, EvidenceKind, EvidenceQuery, Outcome};

/// The table SQLite kept each tenant's Merkle tree hashes in, one row per hash, from schema 16 to 23 (schema 24
/// moved them into the records' rows): for tests that set a file back.
macro_rules! tlog_hashes_table {
    () => {
        "CREATE TABLE tlog_hashes (tenant TEXT NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, \
         PRIMARY KEY (tenant, idx)) WITHOUT ROWID;"
    };
}

/// A SQLite file's tree table as schemas 16 to 23 had it.
pub const SQLITE_TLOG_HASHES_TABLE: &str = tlog_hashes_table!();

/// A SQLite file's stored trees set back to schema 16 (no hashes in the ledger's rows, an empty `tlog_hashes`, no
/// tree heads), so that the next open builds them from the chains again: what a forger who rewrote records would
/// do.
pub const SQLITE_TREES_DROPPED: &str = concat!(
    "ALTER TABLE ledger DROP COLUMN tree; ",
    tlog_hashes_table!(),
    " DROP TABLE tree_checkpoints; DELETE FROM checkpoints; PRAGMA user_version = 16;"
);

/// Rewrites `tenant`'s chain in a SQLite file as a forger who recomputes every hash would: each record's body
/// through `edit` (given its sequence number), then every hash from the genesis on, the stored `at` column with
/// the body, and the chain's head row. [`SQLITE_TREES_DROPPED`] after it has the next open rebuild the trees from
/// the rewritten records.
pub fn rehash_sqlite_chain(
    conn: &rusqlite::Connection,
    tenant: &str,
    mut edit: impl FnMut(i64, &mut serde_json::Value),
) {
    let read = || -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
        conn.prepare("SELECT seq, body FROM ledger WHERE tenant = ?1 ORDER BY seq")?
            .query_map([tenant], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    };
    let rows = read().unwrap_or_else(|e| panic!("reading {tenant}'s records: {e}"));
    let mut prev = haltstate_authority::GENESIS_HASH.to_owned();
    for (seq, body) in rows {
        let mut value: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("record {seq} is not JSON: {e}"));
        edit(seq, &mut value);
        let at = value["at"].as_str().map(str::to_owned);
        let body = haltstate_authority::canonical::to_canonical_bytes(&value)
            .unwrap_or_else(|e| panic!("record {seq} does not serialize: {e}"));
        let hash = haltstate_authority::record_hash(&prev, &body);
        conn.execute(
            "UPDATE ledger SET body = ?1, prev_hash = ?2, hash = ?3, at = coalesce(?4, at) \
             WHERE tenant = ?5 AND seq = ?6",
            rusqlite::params![body, prev, hash, at, tenant, seq],
        )
        .unwrap_or_else(|e| panic!("rewriting record {seq}: {e}"));
        prev = hash;
    }
    conn.execute(
        "UPDATE ledger_heads SET hash = ?1 WHERE tenant = ?2",
        rusqlite::params![prev, tenant],
    )
    .unwrap_or_else(|e| panic!("moving {tenant}'s head: {e}"));
}

/// The outcomes recorded for `key` of `tenant`, in ledger order.
pub fn outcomes(authority: &Authority, tenant: &str, key: &str) -> Vec<Outcome> {
    let query = EvidenceQuery {
        idempotency_key: Some(key.into()),
        limit: Some(1000),
        ..EvidenceQuery::default()
    };
    match authority.evidence(tenant, &query) {
        Ok(records) => records
            .into_iter()
            .filter(|record| record.kind == EvidenceKind::Outcome)
            .filter_map(|record| record.outcome)
            .collect(),
        Err(error) => panic!("reading the evidence of {key}: {error}"),
    }
}
