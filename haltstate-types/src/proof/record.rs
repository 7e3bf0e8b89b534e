//! A record as auditors read it in a proof pack.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::evidence::EvidenceRecord;
use crate::timestamp::rfc3339;

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
