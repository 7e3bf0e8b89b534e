//! The proof pack and its verification.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ProofError, SignedCheckpoint};
use crate::chain::{GENESIS_HASH, record_hash};
use crate::evidence::EvidenceRecord;
use crate::timestamp::rfc3339;

/// The pack format this build writes and reads.
pub const PACK_FORMAT: &str = "haltstate.proof-pack/1";

/// One record as auditors read it (the hosted product's proof-pack fields), derived from the record's
/// canonical bytes: a verifier derives it again and compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRecord {
    /// `prf_` and the first 24 hex digits of the record's hash.
    pub proof_id: String,
    /// The record's sequence number in its tenant's chain.
    pub ledger_entry_id: u64,
    /// What the record is evidence of (`guard`, `outcome`, `approval`, ...).
    pub kind: String,
    /// When it was recorded.
    #[serde(with = "rfc3339")]
    pub at: OffsetDateTime,
    /// The agent.
    pub agent: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// The idempotency key.
    pub idempotency_key: Option<String>,
    /// For a key whose lifetime is `operation`: which operation under it (from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The policy decision (`ALLOW`, `DENY`, `APPROVAL_REQUIRED`).
    pub decision: Option<String>,
    /// The answer or new state.
    pub status: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Time spent deciding, in microseconds.
    pub latency_us: Option<u64>,
    /// How the guarded body ended.
    pub outcome: Option<String>,
    /// `verified` (the authority decided) or `unverified` (a fail-open client ran without it).
    pub proof_status: Option<String>,
    /// `signed`: a signed checkpoint covers the record.
    pub signature_status: String,
    /// `none` or `redacted`.
    pub redaction_status: Option<String>,
    /// The record's hash.
    pub hash: String,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// The policy set's version.
    pub policy_version: Option<String>,
    /// The approval involved.
    pub approval_id: Option<String>,
    /// For an approval record: its state (`pending`, `approved`, `rejected`, `expired`).
    pub approval_state: Option<String>,
    /// The operator who approved, rejected or flipped the kill switch.
    pub approver: Option<String>,
}

/// The auditor's view of `record`, whose hash is `hash`.
pub fn proof_record(record: &EvidenceRecord, hash: &str) -> ProofRecord {
    let is_approval = record.kind == crate::EvidenceKind::Approval;
    ProofRecord {
        proof_id: format!("prf_{}", hash.get(..24).unwrap_or(hash)),
        ledger_entry_id: record.seq,
        kind: record.kind.as_str().to_owned(),
        at: record.at,
        agent: record.agent_id.clone(),
        action: record.action.clone(),
        idempotency_key: record.idempotency_key.clone(),
        generation: record.generation,
        decision: record.decision.map(|d| d.as_str().to_owned()),
        status: record.status.clone(),
        reason: record.reason.clone(),
        latency_us: record.decision_latency_us,
        outcome: record.outcome.map(|o| o.as_str().to_owned()),
        proof_status: record.proof_status.map(|p| p.as_str().to_owned()),
        signature_status: "signed".into(),
        redaction_status: record.redaction_status.clone(),
        hash: hash.to_owned(),
        policy_id: record.policy_id.clone(),
        policy_version: record.policy_version.clone(),
        approval_id: record.approval_id.clone(),
        approval_state: record.status.clone().filter(|_| is_approval),
        approver: record.actor.clone(),
    }
}

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

/// A proof pack: records, the chain that links them to a signed checkpoint, and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofPack {
    /// [`PACK_FORMAT`].
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

/// What a verified pack proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSummary {
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
pub fn verify(pack: &ProofPack, key: &VerifyingKey) -> Result<PackSummary, ProofError> {
    if pack.format != PACK_FORMAT {
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
    Ok(PackSummary {
        tenant: pack.tenant.clone(),
        records: pack.records.len(),
        chain: (first.seq, last.seq),
        signed_at: checkpoint.at,
        key_id: checkpoint.key_id.clone(),
    })
}
