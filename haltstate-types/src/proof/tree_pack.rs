//! The proof pack (`haltstate.proof-pack/2`): exactly the records asked for, each with its canonical bytes and the
//! proof that it is a leaf of its tenant's Merkle tree, and the tree head those proofs end in, signed as a C2SP
//! checkpoint (and cosigned by witnesses, when there are). Nothing of any other record is in it: a pack of one
//! key is a few kilobytes whatever the size of the log.

use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{
    ProofError, ProofRecord, TreeCheckpointError, Witness, origin_names_tenant, proof_record,
    verify_cosigned_tree_head, verify_inclusion,
};
use crate::chain::record_hash;
use crate::evidence::EvidenceRecord;

/// The pack format this build writes.
pub const PACK_FORMAT: &str = "haltstate.proof-pack/2";

/// More hashes than any tree of 2^64 leaves needs in a proof.
const MAX_PROOF_HASHES: usize = 64;

/// One record of a pack: what auditors read, the bytes it is derived from, and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncludedRecord {
    /// The record's fields, derived from `body` (a verifier derives them again and compares).
    pub record: ProofRecord,
    /// The previous record's chain hash (with `body`, it gives the record's own: its `proof_id`).
    pub prev_hash: String,
    /// The record's canonical JSON: leaf `ledger_entry_id - 1` of the tree.
    pub body: String,
    /// The inclusion proof: base64 hashes from the leaf's sibling up.
    pub inclusion: Vec<String>,
}

/// A proof pack: records, each with its inclusion proof, and the signed tree head they are proven against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofPack {
    /// [`PACK_FORMAT`].
    pub format: String,
    /// The tenant whose evidence it is.
    pub tenant: String,
    /// The tenant's log's name: the checkpoint's origin line and the name its signature is under.
    pub origin: String,
    /// The tree head, as a C2SP signed note (the log's signature, then any witnesses' cosignatures).
    pub checkpoint: String,
    /// The records asked for.
    pub records: Vec<IncludedRecord>,
}

/// What a verified pack proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSummary {
    /// The tenant.
    pub tenant: String,
    /// Its log's name.
    pub origin: String,
    /// Records proven.
    pub records: usize,
    /// The size of the signed tree they are in.
    pub tree_size: u64,
    /// The witnesses required, each with when it cosigned (Unix seconds).
    pub cosigned: Vec<(String, u64)>,
}

/// Verifies `pack` against the authority's public `key`: the checkpoint's signature, each record's inclusion in
/// the tree it signs, and each record's fields against its bytes.
///
/// # Errors
/// The first thing that does not hold.
pub fn verify(pack: &ProofPack, key: &VerifyingKey) -> Result<PackSummary, ProofError> {
    verify_with_witnesses(pack, key, &[])
}

/// [`verify`], and a valid cosignature of the checkpoint by each of `witnesses`.
///
/// # Errors
/// The first thing that does not hold.
pub fn verify_with_witnesses(
    pack: &ProofPack,
    key: &VerifyingKey,
    witnesses: &[Witness],
) -> Result<PackSummary, ProofError> {
    if pack.format != PACK_FORMAT {
        return Err(ProofError::Format(format!("format {:?}", pack.format)));
    }
    if !origin_names_tenant(&pack.origin, &pack.tenant) {
        return Err(TreeCheckpointError::OtherLog {
            expected: format!(".../{}", pack.tenant),
            found: pack.origin.clone(),
        }
        .into());
    }
    if pack.records.is_empty() {
        return Err(ProofError::Format("the pack holds no record".into()));
    }
    let verified = verify_cosigned_tree_head(&pack.checkpoint, &pack.origin, key, witnesses)?;
    for included in &pack.records {
        check_record(included, pack, &verified.head)?;
    }
    Ok(PackSummary {
        tenant: pack.tenant.clone(),
        origin: pack.origin.clone(),
        records: pack.records.len(),
        tree_size: verified.head.size,
        cosigned: verified.cosigned,
    })
}

fn check_record(
    included: &IncludedRecord,
    pack: &ProofPack,
    head: &super::TreeHead,
) -> Result<(), ProofError> {
    let seq = included.record.ledger_entry_id;
    let mismatch = |why: &str| ProofError::RecordMismatch {
        seq,
        why: why.to_owned(),
    };
    let record: EvidenceRecord = serde_json::from_str(&included.body)
        .map_err(|e| mismatch(&format!("its body is not a record: {e}")))?;
    if record.canonical_bytes().ok().as_deref() != Some(included.body.as_bytes()) {
        return Err(mismatch("its body is not in canonical form"));
    }
    if record.seq != seq || record.tenant != pack.tenant || seq == 0 {
        return Err(mismatch("its body names another place or tenant"));
    }
    if included.inclusion.len() > MAX_PROOF_HASHES {
        return Err(mismatch(
            "its inclusion proof is longer than any tree needs",
        ));
    }
    let proof = included
        .inclusion
        .iter()
        .map(|hash| {
            base64::engine::general_purpose::STANDARD
                .decode(hash)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| mismatch("its inclusion proof holds something other than hashes"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(&proof, head, seq - 1, included.body.as_bytes())?;
    let hash = record_hash(&included.prev_hash, included.body.as_bytes());
    if proof_record(&record, &hash) != included.record {
        return Err(mismatch("its fields differ from the record its bytes hold"));
    }
    Ok(())
}
