//! The first proof pack format (`haltstate.proof-pack/1`): records with the whole chain from the first of them to a
//! signed checkpoint. Still verified, for packs already handed out; new packs are tree packs (`tree_pack.rs`).

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ProofError, ProofRecord, SignedCheckpoint, proof_record};
use crate::chain::{GENESIS_HASH, record_hash};
use crate::evidence::EvidenceRecord;

/// The chain pack's format.
pub const CHAIN_PACK_FORMAT: &str = "haltstate.proof-pack/1";

/// One link of the chain: a record's canonical bytes (as text) and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// The record's sequence number.
    pub seq: u64,
    /// The previous record's hash.
    pub prev_hash: String,
    /// `hex(SHA-256(prev_hash || body))`.
    pub hash: String,
    /// The record's canonical JSON.
    pub body: String,
}

/// A chain pack: records, the chain that links them to a signed checkpoint, and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPack {
    /// [`CHAIN_PACK_FORMAT`].
    pub format: String,
    /// The tenant whose evidence it is.
    pub tenant: String,
    /// The records asked for.
    pub records: Vec<ProofRecord>,
    /// The chain from the first record asked for to the checkpoint's, every link.
    pub chain: Vec<ChainLink>,
    /// The checkpoint that ends the chain, signed.
    pub checkpoint: SignedCheckpoint,
}

/// What a verified chain pack proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPackSummary {
    /// The tenant.
    pub tenant: String,
    /// Records proven.
    pub records: usize,
    /// The chain's first and last sequence numbers.
    pub chain: (u64, u64),
    /// When the checkpoint was signed.
    pub signed_at: OffsetDateTime,
    /// By which key.
    pub key_id: String,
}

/// Verifies `pack` against the authority's public `key`: the checkpoint's signature, every link of the chain up
/// to it, and every record's fields against the chain's bytes.
///
/// # Errors
/// The first thing that does not hold.
pub fn verify_chain_pack(
    pack: &ChainPack,
    key: &VerifyingKey,
) -> Result<ChainPackSummary, ProofError> {
    if pack.format != CHAIN_PACK_FORMAT {
        return Err(ProofError::Format(format!("format {:?}", pack.format)));
    }
    pack.checkpoint.verify(key)?;
    let checkpoint = &pack.checkpoint.checkpoint;
    if checkpoint.tenant != pack.tenant {
        return Err(ProofError::Format(format!(
            "the checkpoint is of tenant {:?}, the pack of {:?}",
            checkpoint.tenant, pack.tenant
        )));
    }
    let (Some(first), Some(last)) = (pack.chain.first(), pack.chain.last()) else {
        return Err(ProofError::Format("the chain is empty".into()));
    };
    let mut bodies = std::collections::HashMap::with_capacity(pack.chain.len());
    let mut previous: Option<&ChainLink> = None;
    for link in &pack.chain {
        let broken = |why: String| ProofError::ChainBroken { seq: link.seq, why };
        match previous {
            Some(before) if link.seq != before.seq + 1 => {
                return Err(broken(format!("follows record {}", before.seq)));
            }
            Some(before) if link.prev_hash != before.hash => {
                return Err(broken(
                    "its prev_hash is not the previous record's hash".into(),
                ));
            }
            None if link.seq == 1 && link.prev_hash != GENESIS_HASH => {
                return Err(broken("the first record does not start the chain".into()));
            }
            _ => {}
        }
        if record_hash(&link.prev_hash, link.body.as_bytes()) != link.hash {
            return Err(broken("its hash does not match its bytes".into()));
        }
        let record: EvidenceRecord = serde_json::from_str(&link.body)
            .map_err(|e| broken(format!("its body is not a record: {e}")))?;
        if record.canonical_bytes().ok().as_deref() != Some(link.body.as_bytes()) {
            return Err(broken("its body is not in canonical form".into()));
        }
        if record.seq != link.seq || record.tenant != pack.tenant {
            return Err(broken("its body names another place or tenant".into()));
        }
        bodies.insert(link.seq, (record, link.hash.as_str()));
        previous = Some(link);
    }
    if last.seq != checkpoint.seq || last.hash != checkpoint.hash {
        return Err(ProofError::ChainBroken {
            seq: last.seq,
            why: format!(
                "the chain ends at record {} but the checkpoint signs record {} ({})",
                last.seq, checkpoint.seq, checkpoint.hash
            ),
        });
    }
    for listed in &pack.records {
        let seq = listed.ledger_entry_id;
        let (record, hash) = bodies.get(&seq).ok_or_else(|| ProofError::RecordMismatch {
            seq,
            why: "not in the pack's chain".into(),
        })?;
        if &proof_record(record, hash) != listed {
            return Err(ProofError::RecordMismatch {
                seq,
                why: "its fields differ from the record the chain holds".into(),
            });
        }
    }
    Ok(ChainPackSummary {
        tenant: pack.tenant.clone(),
        records: pack.records.len(),
        chain: (first.seq, last.seq),
        signed_at: checkpoint.at,
        key_id: checkpoint.key_id.clone(),
    })
}
