//! A check and its report, applied.

use haltstate_types::{
    CheckAnswer, CheckReport, CheckRequest, Decision, EvidenceKind, EvidenceRecord, Outcome,
    ProofStatus,
};

use super::{approvals, new_id, redaction_status};
use crate::error::{AuthorityError, Result};
use crate::ops::judgement::Judgement;
use crate::rules::Windows;
use crate::rules::check::{check as decide, report_is_verified};
use crate::state_rows::CheckRecord;
use crate::store::tx::Tx;

pub(crate) fn check(
    tx: &mut dyn Tx,
    windows: Windows,
    tenant: &str,
    request: &CheckRequest,
    fingerprint: &str,
    judgement: &Judgement,
) -> Result<CheckAnswer> {
    let request_id = request.request_id.clone().unwrap_or_else(|| new_id("req"));
    let bound = tx.check(tenant, &request_id)?;
    let kill = tx.kill_status(tenant, &request.action.agent_id)?;
    // A check charges nothing (it claims nothing), but a usage limit applies to it as to a guard.
    let (policy, usage) = super::usage::decide(tx, tenant, &request.action, judgement, None)?;
    let Some(mut verdict) = decide(bound.as_ref(), fingerprint, &kill, &policy) else {
        // A request id is one operation, as an idempotency key is: reusing it for another operation could pick
        // up the approval granted to the first one.
        let mut record = check_record(tx, tenant, request, &request_id);
        record.decision = Some(Decision::Deny);
        record.status = Some(Decision::Deny.as_str().to_owned());
        record.reason = Some("request id is bound to a different operation".into());
        tx.append(record)?;
        return Err(AuthorityError::RequestIdConflict { request_id });
    };
    let approval_id = if verdict.decision == Decision::ApprovalRequired {
        // The same request id always finds the same approval.
        match tx.approval_by_request(tenant, &request_id)? {
            Some(approval) => Some(approval.id),
            None => {
                let agent = &request.action.agent_id;
                if let Some(why) = approvals::flooded(tx, windows, tenant, agent)? {
                    verdict.decision = Decision::Deny;
                    verdict.reason = why;
                    verdict.policy_id = None;
                    None
                } else {
                    let approval =
                        approvals::for_check(tx, windows, tenant, &request.action, &policy);
                    tx.insert_approval(&approval, Some(&request_id))?;
                    super::webhooks::announce_approval(tx, &approval)?;
                    Some(approval.id)
                }
            }
        }
    } else {
        None
    };
    tx.put_check(
        tenant,
        &CheckRecord {
            request_id: request_id.clone(),
            fingerprint: fingerprint.to_owned(),
            agent_id: request.action.agent_id.clone(),
            action: request.action.action.clone(),
            decision: verdict.decision.as_str().to_owned(),
        },
    )?;
    let mut record = check_record(tx, tenant, request, &request_id);
    record.decision = Some(verdict.decision);
    record.status = Some(verdict.decision.as_str().to_owned());
    record.reason = Some(verdict.reason.clone());
    record.policy_id = verdict.policy_id.clone();
    record.approval_id = approval_id.clone();
    record.decision_latency_us = Some(verdict.latency_us);
    if kill.denial_reason().is_none() {
        // Policy decided: keep what it decided from, so a replay can decide it again.
        record.context = super::usage::context(&request.action, usage.as_ref());
        record.policy_version = policy.policy_version.clone();
        if let Some(shadow) = &policy.shadow {
            record.shadow_decision = Some(shadow.decision);
            record.shadow_policy_id = shadow.policy_id.clone();
        }
    }
    let ledger_seq = tx.append(record)?;
    Ok(CheckAnswer {
        decision: verdict.decision,
        reason: verdict.reason,
        policy_id: verdict.policy_id,
        approval_id,
        request_id,
        decision_latency_us: verdict.latency_us,
        ledger_seq,
    })
}

fn check_record(
    tx: &dyn Tx,
    tenant: &str,
    request: &CheckRequest,
    request_id: &str,
) -> EvidenceRecord {
    let mut record = EvidenceRecord::new(EvidenceKind::Check, tenant, tx.now());
    record.agent_id = Some(request.action.agent_id.clone());
    record.action = Some(request.action.action.clone());
    record.request_id = Some(request_id.to_owned());
    record.resource_refs = request.action.resource.iter().cloned().collect();
    record.proof_status = Some(ProofStatus::Verified);
    record.redaction_status = Some(redaction_status(&request.action.redacted_fields));
    record.redacted_fields = request.action.redacted_fields.clone();
    record
}

/// Records what a caller says it did after a check. The record is `verified` only when the authority made the
/// decision it names.
pub(crate) fn report(tx: &mut dyn Tx, tenant: &str, report: &CheckReport) -> Result<u64> {
    let decided = match &report.request_id {
        Some(id) => tx.check(tenant, id)?,
        None => None,
    };
    let verified = report_is_verified(
        decided.as_ref(),
        &report.agent_id,
        &report.action,
        report.decision,
    );
    let outcome = Outcome::parse(&report.status)
        .ok_or_else(|| AuthorityError::invalid(format!("unknown status {:?}", report.status)))?;
    let mut record = EvidenceRecord::new(EvidenceKind::CheckReport, tenant, tx.now());
    record.agent_id = Some(report.agent_id.clone());
    record.action = Some(report.action.clone()).filter(|a| !a.is_empty());
    record.request_id = report.request_id.clone();
    record.decision = report.decision;
    record.outcome = Some(outcome);
    record.status = Some(report.status.clone());
    record.policy_id = report.policy_id.clone();
    record.error = report.error.clone();
    record.proof_status = Some(if verified {
        ProofStatus::Verified
    } else {
        ProofStatus::Unverified
    });
    tx.append(record)
}
