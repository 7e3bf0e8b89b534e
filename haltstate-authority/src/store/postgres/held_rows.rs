//! The rows a PostgreSQL transaction holds back until it sends them ([`super::pending`]): key rows to upsert and
//! ledger records to insert, and the values computed from a key row for a statement's parameters (one row's, or
//! a batch's columns in [`super::bulk`]).

use haltstate_types::timestamp::to_micros;

use super::conn::signed;
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

/// The key row's values that are computed from it (the rest are borrowed).
pub(crate) struct KeyValues<'a> {
    pub(crate) row: &'a KeyRow,
    pub(crate) state: &'static str,
    pub(crate) lease_until: Option<i64>,
    pub(crate) outcome_seq: Option<i64>,
    pub(crate) usage_us: Option<i64>,
    pub(crate) usage: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) lifetime: &'static str,
    pub(crate) generation: i64,
}

/// The values of `row` that are computed from it.
pub(crate) fn key_values(row: &KeyRow) -> Result<KeyValues<'_>> {
    let record = &row.record;
    Ok(KeyValues {
        row,
        state: record.state.as_str(),
        lease_until: record.lease_until.map(to_micros),
        outcome_seq: record.outcome_seq.map(signed),
        usage_us: record.charged.as_ref().map(|c| to_micros(c.at)),
        usage: record
            .charged
            .as_ref()
            .map(|c| usage::encode_charge(&c.figures))
            .transpose()?,
        attempts: i64::from(record.attempts),
        lifetime: record.lifetime.as_str(),
        generation: signed(record.generation),
    })
}
