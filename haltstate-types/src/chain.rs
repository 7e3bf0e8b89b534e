//! The hash chain's arithmetic: how a record's hash is computed, and what a chain's end and a verification are.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The last record of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    /// How many records the chain holds (the last record's sequence number).
    pub seq: u64,
    /// The last record's hash ([`GENESIS_HASH`] for an empty chain).
    pub hash: String,
}

/// A ledger record with its place in its tenant's chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainedRecord {
    /// The record.
    pub record: crate::EvidenceRecord,
    /// The hash of the record before it ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Its own hash: `record_hash(prev_hash, canonical bytes)`.
    pub hash: String,
}

/// What a successful verification saw: every tenant's chain, each verified alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// How many records were checked, over every chain.
    pub records: u64,
    /// Each tenant's chain end, by tenant name.
    pub chains: Vec<TenantHead>,
}

/// The end of one tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantHead {
    /// The tenant.
    pub tenant: String,
    /// Its chain's last record.
    pub head: LedgerHead,
}

/// `hex(SHA-256(prev_hash || canonical record bytes))`: how every ledger hash is computed, for auditors who
/// recompute the chain themselves.
pub fn record_hash(prev_hash: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}
