//! An outcome report, applied: record the outcome and move the key.

use haltstate_types::{EvidenceKind, EvidenceRecord, KeyState, OutcomeReport, ReportAck};

use super::redaction_status;
use crate::error::{AuthorityError, Result};
use crate::rules::report::{ReportStep, report as decide};
use crate::rules::{Windows, micros};
use crate::state_rows::KeyRecord;
use crate::store::tx::Tx;

pub(crate) fn report(
    tx: &mut dyn Tx,
    windows: Windows,
    tenant: &str,
    report: &OutcomeReport,
) -> Result<ReportAck> {
    let key = report.idempotency_key.clone();
    let record = match &report.agent_id {
        Some(agent) => tx.key(tenant, agent, &key)?,
        None => unnamed(tx, tenant, report)?,
    }
    .ok_or_else(|| AuthorityError::NotClaimed {
        key: key.clone(),
        state: "unknown".into(),
    })?;
    let state = match decide(&record, report)? {
        ReportStep::Duplicate { seq } => {
            return Ok(ReportAck {
                ledger_seq: seq,
                state: record.state,
                duplicate: true,
            });
        }
        ReportStep::Record { state } => state,
    };
    let mut evidence = EvidenceRecord::new(EvidenceKind::Outcome, tenant, tx.now());
    evidence.agent_id = Some(record.agent_id.clone());
    evidence.action = Some(record.action.clone());
    evidence.idempotency_key = Some(key);
    evidence.generation = record.evidence_generation();
    evidence.status = Some(state.as_str().to_owned());
    evidence.outcome = Some(report.outcome);
    evidence.policy_id = record.policy_id.clone();
    evidence.approval_id = record.approval_id.clone();
    evidence.resource_refs = report.resource_refs.clone();
    evidence.body_latency_us = report.body_latency.map(micros);
    evidence.proof_status = Some(report.proof_status);
    evidence.redaction_status = Some(redaction_status(&report.redacted_fields));
    evidence.redacted_fields = report.redacted_fields.clone();
    evidence.error = report.error.clone();
    evidence.usage = report.usage.clone();
    let tokens = evidence.usage.as_ref().map(|u| u.total_tokens);
    let seq = tx.append(evidence)?;
    let mut record = KeyRecord {
        state,
        outcome_seq: Some(seq),
        lease_until: None,
        ..record
    };
    // A completed action keeps its share of its agent's usage (and adds its tokens). So does one that failed: its
    // body may have acted before the error, and an agent that reports every run as an error must still be
    // counted. The key keeps its charge, so a retry of the same key is not counted twice. Giving it back is an
    // explicit option.
    if state == KeyState::Completed {
        if let Some(tokens) = tokens.filter(|&t| t > 0) {
            super::usage::add_tokens(tx, tenant, &mut record, tokens)?;
        }
    } else if windows.refund_usage_on_error {
        super::usage::give_back(tx, tenant, &mut record)?;
    }
    tx.put_key(tenant, &record)?;
    Ok(ReportAck {
        ledger_seq: seq,
        state,
        duplicate: false,
    })
}

/// The record a report that names no agent means (keys are scoped per agent): the key's only record, or the one
/// whose claim the reporting API key holds. Several that fit are refused: the report must name its agent.
fn unnamed(tx: &mut dyn Tx, tenant: &str, report: &OutcomeReport) -> Result<Option<KeyRecord>> {
    let key = &report.idempotency_key;
    let mut records = tx.key_records(tenant, key)?;
    if records.len() > 1 {
        records.retain(|r| r.claimed_by.is_some() && r.claimed_by == report.caller_key);
        if records.len() != 1 {
            return Err(haltstate_types::RequestError::Invalid(format!(
                "several agents use idempotency key {key:?}: name the agent (agent_id)"
            ))
            .into());
        }
    }
    Ok(records.pop())
}
