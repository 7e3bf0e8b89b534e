//! Fail-open evidence, applied: recorded once per evidence id, however often it is delivered.

use haltstate_types::{EvidenceKind, EvidenceRecord, ProofStatus, UnverifiedOutcome};

use super::redaction_status;
use crate::error::Result;
use crate::rules::micros;
use crate::store::tx::Tx;

/// Answers the evidence's ledger record and whether this delivery was a repeat (then nothing was written).
pub(crate) fn record(
    tx: &mut dyn Tx,
    tenant: &str,
    evidence: &UnverifiedOutcome,
) -> Result<(u64, bool)> {
    if let Some(seq) = tx.unverified(tenant, &evidence.evidence_id)? {
        return Ok((seq, true));
    }
    let mut record = EvidenceRecord::new(EvidenceKind::Outcome, tenant, tx.now());
    record.agent_id = Some(evidence.agent_id.clone());
    record.action = Some(evidence.action.clone());
    record.idempotency_key = Some(evidence.idempotency_key.clone());
    record.status = Some(super::UNVERIFIED.into());
    record.outcome = Some(evidence.outcome);
    record.reason = evidence.reason.clone();
    record.error = evidence.error.clone();
    record.body_latency_us = evidence.body_latency.map(micros);
    record.resource_refs = evidence.resource_refs.clone();
    record.proof_status = Some(ProofStatus::Unverified);
    record.redaction_status = Some(redaction_status(&evidence.redacted_fields));
    record.redacted_fields = evidence.redacted_fields.clone();
    record.evidence_id = Some(evidence.evidence_id.clone());
    record.occurred_at = Some(evidence.occurred_at);
    let seq = tx.append(record)?;
    tx.put_unverified(tenant, &evidence.evidence_id, seq)?;
    Ok((seq, false))
}
