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
