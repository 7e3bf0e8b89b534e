//! The state changes, each run by the writer inside its transaction (see `writer.rs`).
//!
//! Order inside a guard is fixed: kill switch, then the idempotency record, then policy. Every answer, refusal
//! included, leaves a ledger record.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::batch::Batch;
use super::queries::{self, KeyRow};
use crate::decision::PolicyDecision;
use crate::error::{AuthorityError, Result};
use crate::events::ApprovalEvent;
use crate::secrets;
use haltstate_types::Decision;
use haltstate_types::limits::MAX_ERROR_TEXT;
use haltstate_types::timestamp::to_micros;
use haltstate_types::{
    ActionRequest, GuardRequest, Outcome, OutcomeReport, ProofStatus, UnverifiedOutcome,
    truncate_chars,
};
use haltstate_types::{Actor, Via};
use haltstate_types::{Approval, ApprovalStatus, Verdict};
use haltstate_types::{CheckAnswer, CheckReport, CheckRequest};
use haltstate_types::{Claim, GuardAnswer, GuardStatus, KeyState, ReportAck};
use haltstate_types::{EvidenceKind, EvidenceRecord};
use haltstate_types::{KeySpec, NewKey, Role};
use haltstate_types::{KillScope, KillState, KillStatus};

/// Timing rules the operations follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub(crate) approval_ttl: Duration,
    pub(crate) lease: Duration,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn answer(status: GuardStatus, reason: impl Into<String>) -> GuardAnswer {
    GuardAnswer {
        status,
        reason: reason.into(),
        policy_id: None,
        approval_id: None,
        approver: None,
        approved_at: None,
        expires_at: None,
        claim: None,
        completed_seq: None,
        decision_latency_us: 0,
        ledger_seq: 0,
        kill_switch: None,
    }
}

fn redaction_status(fields: &[String]) -> String {
    if fields.is_empty() {
        "none"
    } else {
        "redacted"
    }
    .to_owned()
}

/// Records the guard's answer in the ledger and returns it with its ledger sequence number.
fn record_guard(
    b: &mut Batch<'_>,
    tenant: &str,
    request: &GuardRequest,
    decision: Option<Decision>,
    mut answer: GuardAnswer,
) -> Result<GuardAnswer> {
    let action = &request.action;
    let mut record = EvidenceRecord::new(EvidenceKind::Guard, tenant, b.now);
    record.agent_id = Some(action.agent_id.clone());
    record.action = Some(action.action.clone());
    record.idempotency_key = Some(request.idempotency_key.clone());
    record.decision = decision;
    record.status = Some(answer.status.as_str().to_owned());
    record.reason = Some(answer.reason.clone());
    record.policy_id = answer.policy_id.clone();
    record.approval_id = answer.approval_id.clone();
    record.actor = answer
        .approver
        .clone()
        .filter(|_| answer.approval_id.is_some());
    record.resource_refs = action.resource.iter().cloned().collect();
    record.decision_latency_us = Some(answer.decision_latency_us);
    record.proof_status = Some(ProofStatus::Verified);
    record.redaction_status = Some(redaction_status(&action.redacted_fields));
    record.redacted_fields = action.redacted_fields.clone();
    answer.ledger_seq = b.append(record)?;
    Ok(answer)
}

pub(crate) fn guard(
    b: &mut Batch<'_>,
    windows: Windows,
    tenant: &str,
    request: &GuardRequest,
    fingerprint: &str,
    policy: PolicyDecision,
) -> Result<GuardAnswer> {
    let key = request.idempotency_key.as_str();
    let kill = queries::kill_status(b.conn, tenant, &request.action.agent_id)?;
    if let Some(reason) = kill.denial_reason() {
        let mut denied = answer(GuardStatus::Denied, reason);
        denied.kill_switch = Some(kill.state);
        return record_guard(b, tenant, request, None, denied);
    }

    let existing = queries::load_key(b.conn, tenant, key)?;
    if let Some(row) = &existing {
        if row.fingerprint != fingerprint {
            let refused = answer(
                GuardStatus::Denied,
                "idempotency key is bound to a different operation",
            );
            record_guard(b, tenant, request, None, refused)?;
            return Err(AuthorityError::IdempotencyConflict {
                key: key.to_owned(),
            });
        }
        if let Some(replayed) = replay(b, windows, tenant, request, row)? {
            return Ok(replayed);
        }
    }

    // No record, or a released claim that policy granted: decide afresh.
    let mut fresh = answer(GuardStatus::Denied, policy.reason.clone());
    fresh.policy_id = policy.policy_id.clone();
    fresh.decision_latency_us = micros(policy.latency);
    match policy.decision {
        Decision::Deny => {}
        Decision::Allow => {
            let claim = new_claim(b, windows, request);
            write_key(
                b,
                tenant,
                request,
                fingerprint,
                KeyState::Claimed,
                None,
                &policy,
                Some(&claim),
            )?;
            fresh.status = GuardStatus::Allowed;
            fresh.claim = Some(claim);
        }
        Decision::ApprovalRequired => {
            let approval = create_approval(
                b,
                windows,
                tenant,
                &request.action,
                &policy,
                Some(key),
                None,
            )?;
            write_key(
                b,
                tenant,
                request,
                fingerprint,
                KeyState::PendingApproval,
                Some(&approval.id),
                &policy,
                None,
            )?;
            fresh.status = GuardStatus::Pending;
            fresh.approval_id = Some(approval.id);
            fresh.expires_at = Some(approval.expires_at);
        }
    }
    record_guard(b, tenant, request, Some(policy.decision), fresh)
}

/// The answer a key's existing record gives; `None` when policy must decide again.
fn replay(
    b: &mut Batch<'_>,
    windows: Windows,
    tenant: &str,
    request: &GuardRequest,
    row: &KeyRow,
) -> Result<Option<GuardAnswer>> {
    let approval = match &row.approval_id {
        Some(id) => queries::load_approval(b.conn, tenant, id, b.now)?,
        None => None,
    };
    let mut replayed = answer(GuardStatus::Denied, row.reason.clone());
    replayed.policy_id = row.policy_id.clone();
    replayed.approval_id = row.approval_id.clone();
    if let Some(approval) = &approval {
        replayed.approver = approval.approver.clone();
        replayed.approved_at = approval
            .decided_at
            .filter(|_| approval.status == ApprovalStatus::Approved);
    }
    match row.state {
        KeyState::Completed => {
            replayed.status = GuardStatus::Completed;
            replayed.reason = "this idempotency key already completed".into();
            replayed.completed_seq = row.outcome_seq.and_then(|s| u64::try_from(s).ok());
        }
        KeyState::Claimed
            if row
                .lease_until_us
                .is_some_and(|until| until > to_micros(b.now))
                && request.claim_token.is_some()
                && request.claim_token == row.claim_token =>
        {
            // The same caller retrying (its first answer was lost): it already holds this claim.
            replayed.status = if row.approval_id.is_some() {
                GuardStatus::Approved
            } else {
                GuardStatus::Allowed
            };
            replayed.reason = "this caller already holds the claim".into();
            replayed.claim =
                row.claim_token
                    .clone()
                    .zip(row.lease_until_us)
                    .map(|(token, until)| Claim {
                        token,
                        lease_until: haltstate_types::timestamp::from_micros(until),
                    });
        }
        KeyState::Claimed
            if row
                .lease_until_us
                .is_some_and(|until| until > to_micros(b.now)) =>
        {
            replayed.status = GuardStatus::InProgress;
            replayed.reason = "another worker holds the claim on this idempotency key".into();
        }
        KeyState::Claimed | KeyState::Approved => {
            let lapsed = row.state == KeyState::Claimed;
            let claim = new_claim(b, windows, request);
            reclaim(b, tenant, request, &claim)?;
            replayed.status = if row.approval_id.is_some() {
                GuardStatus::Approved
            } else {
                GuardStatus::Allowed
            };
            if lapsed {
                replayed.reason = "the previous claim's lease expired; re-claimed".into();
            } else if let Some(approval) = &approval {
                replayed.reason = approval
                    .decision_reason
                    .clone()
                    .unwrap_or_else(|| "approved".into());
            }
            replayed.claim = Some(claim);
        }
        KeyState::Failed if row.approval_id.is_some() => {
            // The human already approved this exact operation; a retry after an error needs no new approval.
            let claim = new_claim(b, windows, request);
            reclaim(b, tenant, request, &claim)?;
            replayed.status = GuardStatus::Approved;
            replayed.reason = "retry of an approved action after an error".into();
            replayed.claim = Some(claim);
        }
        KeyState::Failed => return Ok(None),
        KeyState::PendingApproval => match approval {
            Some(approval) if approval.status == ApprovalStatus::Expired => {
                expire_approval(b, &approval)?;
                replayed.status = GuardStatus::Expired;
                replayed.reason = "the approval window closed; use a new idempotency key".into();
            }
            Some(approval) => {
                replayed.status = GuardStatus::Pending;
                replayed.expires_at = Some(approval.expires_at);
            }
            None => replayed.reason = "the approval for this key is missing".into(),
        },
        KeyState::Rejected => {
            replayed.status = GuardStatus::Denied;
            let approver = replayed
                .approver
                .clone()
                .unwrap_or_else(|| "an operator".into());
            replayed.reason = approval
                .and_then(|a| a.decision_reason)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| format!("rejected by {approver}"));
        }
        KeyState::Expired => {
            replayed.status = GuardStatus::Expired;
            replayed.reason = "the approval window closed; use a new idempotency key".into();
        }
    }
    record_guard(b, tenant, request, None, replayed).map(Some)
}

fn new_claim(b: &Batch<'_>, windows: Windows, request: &GuardRequest) -> Claim {
    let token = request
        .claim_token
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    Claim {
        token,
        lease_until: b.now + windows.lease,
    }
}

#[allow(clippy::too_many_arguments)]
fn write_key(
    b: &mut Batch<'_>,
    tenant: &str,
    request: &GuardRequest,
    fingerprint: &str,
    state: KeyState,
    approval_id: Option<&str>,
    policy: &PolicyDecision,
    claim: Option<&Claim>,
) -> Result<()> {
    let now = to_micros(b.now);
    b.conn
        .prepare_cached(
            "INSERT INTO idempotency (tenant, key, fingerprint, agent_id, action, state, approval_id, policy_id, \
             reason, claim_token, lease_until_us, created_us, updated_us, claimed_by, client_token) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14) \
             ON CONFLICT (tenant, key) DO UPDATE SET state = excluded.state, approval_id = excluded.approval_id, \
             policy_id = excluded.policy_id, reason = excluded.reason, claim_token = excluded.claim_token, \
             lease_until_us = excluded.lease_until_us, updated_us = excluded.updated_us, \
             claimed_by = excluded.claimed_by, client_token = excluded.client_token",
        )?
        .execute(params![
            tenant,
            request.idempotency_key,
            fingerprint,
            request.action.agent_id,
            request.action.action,
            state.as_str(),
            approval_id,
            policy.policy_id,
            policy.reason,
            claim.map(|c| c.token.as_str()),
            claim.map(|c| to_micros(c.lease_until)),
            now,
            claim.and(request.caller_key.as_deref()),
            claim.is_some() && request.claim_token.is_some(),
        ])?;
    Ok(())
}

/// Hands the key's claim to this guard's caller.
fn reclaim(b: &mut Batch<'_>, tenant: &str, request: &GuardRequest, claim: &Claim) -> Result<()> {
    b.conn
        .prepare_cached(
            "UPDATE idempotency SET state = 'claimed', claim_token = ?3, lease_until_us = ?4, updated_us = ?5, \
             claimed_by = ?6, client_token = ?7 WHERE tenant = ?1 AND key = ?2",
        )?
        .execute(params![
            tenant,
            request.idempotency_key,
            claim.token,
            to_micros(claim.lease_until),
            to_micros(b.now),
            request.caller_key,
            request.claim_token.is_some(),
        ])?;
    Ok(())
}

pub(crate) fn report(b: &mut Batch<'_>, tenant: &str, report: OutcomeReport) -> Result<ReportAck> {
    let key = report.idempotency_key.as_str();
    let row =
        queries::load_key(b.conn, tenant, key)?.ok_or_else(|| AuthorityError::NotClaimed {
            key: key.to_owned(),
            state: "unknown".into(),
        })?;
    let target = if report.outcome == Outcome::Success {
        KeyState::Completed
    } else {
        KeyState::Failed
    };
    // Only the claim's holder reports it: with its token, or, for a claim granted to a caller that chose no
    // token (the official SDKs), from the same API key without one.
    let token_matches = match &report.claim_token {
        Some(token) => row.claim_token.as_ref() == Some(token),
        None => !row.client_token && row.claimed_by == report.caller_key,
    };

    // A retried report of an outcome already recorded is acknowledged, never recorded twice.
    if row.state == target && token_matches {
        if let Some(seq) = row.outcome_seq.and_then(|s| u64::try_from(s).ok()) {
            return Ok(ReportAck {
                ledger_seq: seq,
                state: target,
                duplicate: true,
            });
        }
    }
    if row.state != KeyState::Claimed {
        return Err(AuthorityError::NotClaimed {
            key: key.to_owned(),
            state: row.state.to_string(),
        });
    }
    if !token_matches {
        return Err(match report.claim_token {
            Some(_) => AuthorityError::StaleClaim {
                key: key.to_owned(),
            },
            None => AuthorityError::ClaimTokenRequired {
                key: key.to_owned(),
            },
        });
    }

    let mut record = EvidenceRecord::new(EvidenceKind::Outcome, tenant, b.now);
    record.agent_id = Some(row.agent_id.clone());
    record.action = Some(row.action.clone());
    record.idempotency_key = Some(key.to_owned());
    record.status = Some(target.as_str().to_owned());
    record.outcome = Some(report.outcome);
    record.policy_id = row.policy_id.clone();
    record.approval_id = row.approval_id.clone();
    record.resource_refs = report.resource_refs;
    record.body_latency_us = report.body_latency.map(micros);
    record.proof_status = Some(report.proof_status);
    record.redaction_status = Some(redaction_status(&report.redacted_fields));
    record.redacted_fields = report.redacted_fields;
    record.error = report.error;
    record.usage = report.usage;
    let seq = b.append(record)?;
    b.conn
        .prepare_cached(
            "UPDATE idempotency SET state = ?3, outcome_seq = ?4, lease_until_us = NULL, updated_us = ?5 \
             WHERE tenant = ?1 AND key = ?2",
        )?
        .execute(params![tenant, key, target.as_str(), i64::try_from(seq).unwrap_or(i64::MAX), to_micros(b.now)])?;
    Ok(ReportAck {
        ledger_seq: seq,
        state: target,
        duplicate: false,
    })
}

pub(crate) fn check(
    b: &mut Batch<'_>,
    windows: Windows,
    tenant: &str,
    request: CheckRequest,
    fingerprint: &str,
    policy: PolicyDecision,
) -> Result<CheckAnswer> {
    let request_id = request.request_id.clone().unwrap_or_else(|| new_id("req"));
    // A request id is one operation, as an idempotency key is: reusing it for another operation could pick up
    // the approval granted to the first one.
    let bound = queries::load_check(b.conn, tenant, &request_id)?;
    if bound
        .as_ref()
        .is_some_and(|row| row.fingerprint != fingerprint)
    {
        let mut record = check_record(b, tenant, &request, &request_id);
        record.decision = Some(Decision::Deny);
        record.status = Some(Decision::Deny.as_str().to_owned());
        record.reason = Some("request id is bound to a different operation".into());
        b.append(record)?;
        return Err(AuthorityError::RequestIdConflict { request_id });
    }
    let kill = queries::kill_status(b.conn, tenant, &request.action.agent_id)?;
    let (decision, reason, policy_id, latency) = match kill.denial_reason() {
        Some(reason) => (Decision::Deny, reason, None, 0),
        None => (
            policy.decision,
            policy.reason.clone(),
            policy.policy_id.clone(),
            micros(policy.latency),
        ),
    };
    let approval_id = if decision == Decision::ApprovalRequired {
        // The same request id always finds the same approval.
        let existing = queries::load_approval_by_request(b.conn, tenant, &request_id, b.now)?;
        Some(match existing {
            Some(approval) => approval.id,
            None => {
                create_approval(
                    b,
                    windows,
                    tenant,
                    &request.action,
                    &policy,
                    None,
                    Some(&request_id),
                )?
                .id
            }
        })
    } else {
        None
    };
    b.conn
        .prepare_cached(
            "INSERT INTO check_requests (tenant, request_id, fingerprint, agent_id, action, decision, created_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tenant, request_id) DO UPDATE SET decision = excluded.decision",
        )?
        .execute(params![
            tenant,
            request_id,
            fingerprint,
            request.action.agent_id,
            request.action.action,
            decision.as_str(),
            to_micros(b.now)
        ])?;
    let mut record = check_record(b, tenant, &request, &request_id);
    record.decision = Some(decision);
    record.status = Some(decision.as_str().to_owned());
    record.reason = Some(reason.clone());
    record.policy_id = policy_id.clone();
    record.approval_id = approval_id.clone();
    record.decision_latency_us = Some(latency);
    let ledger_seq = b.append(record)?;
    Ok(CheckAnswer {
        decision,
        reason,
        policy_id,
        approval_id,
        request_id,
        decision_latency_us: latency,
        ledger_seq,
    })
}

fn check_record(
    b: &Batch<'_>,
    tenant: &str,
    request: &CheckRequest,
    request_id: &str,
) -> EvidenceRecord {
    let mut record = EvidenceRecord::new(EvidenceKind::Check, tenant, b.now);
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
/// decision it names: a check under that request id, by that agent, for that action, that decided so.
pub(crate) fn check_report(b: &mut Batch<'_>, tenant: &str, report: CheckReport) -> Result<u64> {
    let decided = match &report.request_id {
        Some(id) => queries::load_check(b.conn, tenant, id)?,
        None => None,
    };
    let verified = decided.is_some_and(|row| {
        row.agent_id == report.agent_id
            && (report.action.is_empty() || row.action == report.action)
            && report.decision.is_none_or(|d| d.as_str() == row.decision)
    });
    let mut record = EvidenceRecord::new(EvidenceKind::CheckReport, tenant, b.now);
    record.agent_id = Some(report.agent_id);
    record.action = Some(report.action).filter(|a| !a.is_empty());
    record.request_id = report.request_id;
    record.decision = report.decision;
    record.outcome = Some(Outcome::parse(&report.status).ok_or_else(|| {
        AuthorityError::InvalidRequest(format!("unknown status {:?}", report.status))
    })?);
    record.status = Some(report.status);
    record.policy_id = report.policy_id;
    record.error = report.error;
    record.proof_status = Some(if verified {
        ProofStatus::Verified
    } else {
        ProofStatus::Unverified
    });
    b.append(record)
}

fn create_approval(
    b: &mut Batch<'_>,
    windows: Windows,
    tenant: &str,
    action: &ActionRequest,
    policy: &PolicyDecision,
    idempotency_key: Option<&str>,
    request_id: Option<&str>,
) -> Result<Approval> {
    let approval = Approval {
        id: new_id("apr"),
        tenant: tenant.to_owned(),
        idempotency_key: idempotency_key.map(str::to_owned),
        agent_id: action.agent_id.clone(),
        action: action.action.clone(),
        resource: action.resource.clone(),
        params: action.params.clone(),
        risk: action.risk.clone(),
        metadata: action.metadata.clone(),
        policy_id: policy.policy_id.clone(),
        policy_reason: policy.reason.clone(),
        status: ApprovalStatus::Pending,
        created_at: b.now,
        expires_at: b.now + windows.approval_ttl,
        decided_at: None,
        approver: None,
        decision_reason: None,
    };
    let params_json = serde_json::Value::Object(approval.params.clone()).to_string();
    let metadata_json = approval
        .metadata
        .clone()
        .map(|m| serde_json::Value::Object(m).to_string());
    b.conn
        .prepare_cached(
            "INSERT INTO approvals (id, tenant, idempotency_key, request_id, agent_id, action, resource, params, \
             risk, metadata, policy_id, policy_reason, status, created_us, expires_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13, ?14)",
        )?
        .execute(params![
            approval.id,
            tenant,
            idempotency_key,
            request_id,
            approval.agent_id,
            approval.action,
            approval.resource,
            params_json,
            approval.risk,
            metadata_json,
            approval.policy_id,
            approval.policy_reason,
            to_micros(approval.created_at),
            to_micros(approval.expires_at),
        ])?;
    Ok(approval)
}

/// Stores the expiry of an overdue approval (read paths already show it as expired) and records it.
fn expire_approval(b: &mut Batch<'_>, approval: &Approval) -> Result<Approval> {
    let updated = b
        .conn
        .prepare_cached(
            "UPDATE approvals SET status = 'expired', decided_us = expires_us \
             WHERE id = ?1 AND tenant = ?2 AND status = 'pending'",
        )?
        .execute(params![approval.id, approval.tenant])?;
    let mut expired = approval.clone();
    expired.status = ApprovalStatus::Expired;
    expired.decided_at = Some(approval.expires_at);
    if updated == 0 {
        return Ok(expired);
    }
    if let Some(key) = &approval.idempotency_key {
        b.conn
            .prepare_cached(
                "UPDATE idempotency SET state = 'expired', updated_us = ?3 \
                 WHERE tenant = ?1 AND key = ?2 AND state = 'pending_approval'",
            )?
            .execute(params![approval.tenant, key, to_micros(b.now)])?;
    }
    record_approval(b, &expired, None)?;
    b.publish(ApprovalEvent {
        approval: expired.clone(),
    });
    Ok(expired)
}

fn record_approval(b: &mut Batch<'_>, approval: &Approval, via: Option<Via>) -> Result<u64> {
    let mut record = EvidenceRecord::new(EvidenceKind::Approval, &approval.tenant, b.now);
    record.agent_id = Some(approval.agent_id.clone());
    record.action = Some(approval.action.clone());
    record.idempotency_key = approval.idempotency_key.clone();
    record.approval_id = Some(approval.id.clone());
    record.status = Some(approval.status.as_str().to_owned());
    record.actor = approval.approver.clone();
    record.reason = approval.decision_reason.clone();
    record.policy_id = approval.policy_id.clone();
    record.resource_refs = approval.resource.iter().cloned().collect();
    record.via = via;
    b.append(record)
}

pub(crate) fn decide_approval(
    b: &mut Batch<'_>,
    tenant: &str,
    id: &str,
    verdict: Verdict,
    approver: &Actor,
    reason: Option<String>,
) -> Result<Approval> {
    let approval = queries::load_approval(b.conn, tenant, id, b.now)?
        .ok_or_else(|| AuthorityError::ApprovalNotFound { id: id.to_owned() })?;
    if approval.status == ApprovalStatus::Expired {
        expire_approval(b, &approval)?;
    }
    if approval.status != ApprovalStatus::Pending {
        return Err(AuthorityError::ApprovalDecided {
            id: id.to_owned(),
            status: approval.status,
        });
    }
    // Both names are canonical, so `Bot` cannot approve what `bot` asked for.
    if approver.name() == approval.agent_id {
        return Err(AuthorityError::SelfApproval {
            id: id.to_owned(),
            approver: approver.name().to_owned(),
        });
    }
    let (status, key_state) = match verdict {
        Verdict::Approve => (ApprovalStatus::Approved, KeyState::Approved),
        Verdict::Reject => (ApprovalStatus::Rejected, KeyState::Rejected),
    };
    let reason = reason.map(|r| truncate_chars(&r, MAX_ERROR_TEXT));
    b.conn
        .prepare_cached(
            "UPDATE approvals SET status = ?3, decided_us = ?4, approver = ?5, decision_reason = ?6 \
             WHERE id = ?1 AND tenant = ?2",
        )?
        .execute(params![id, tenant, status.as_str(), to_micros(b.now), approver.name(), reason])?;
    if let Some(key) = &approval.idempotency_key {
        b.conn
            .prepare_cached(
                "UPDATE idempotency SET state = ?3, updated_us = ?4 \
                 WHERE tenant = ?1 AND key = ?2 AND state = 'pending_approval'",
            )?
            .execute(params![tenant, key, key_state.as_str(), to_micros(b.now)])?;
    }
    let decided = Approval {
        status,
        decided_at: Some(b.now),
        approver: Some(approver.name().to_owned()),
        decision_reason: reason,
        ..approval
    };
    record_approval(b, &decided, Some(approver.via()))?;
    b.publish(ApprovalEvent {
        approval: decided.clone(),
    });
    Ok(decided)
}

/// Stores every overdue expiry (at most 1,000 per call) and records each.
pub(crate) fn sweep_expired(b: &mut Batch<'_>) -> Result<Vec<Approval>> {
    let due: Vec<(String, String)> = {
        let mut statement = b.conn.prepare_cached(
            "SELECT tenant, id FROM approvals WHERE status = 'pending' AND expires_us <= ?1 \
             ORDER BY expires_us LIMIT 1000",
        )?;
        let rows = statement.query_map(params![to_micros(b.now)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut expired = Vec::with_capacity(due.len());
    for (tenant, id) in due {
        if let Some(approval) = queries::load_approval(b.conn, &tenant, &id, b.now)? {
            expired.push(expire_approval(b, &approval)?);
        }
    }
    Ok(expired)
}

pub(crate) fn set_kill(
    b: &mut Batch<'_>,
    scope: &KillScope,
    state: KillState,
    actor: &Actor,
) -> Result<KillStatus> {
    b.conn
        .prepare_cached(
            "INSERT INTO kill_switch (tenant, agent_id, state, updated_us, updated_by) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, agent_id) DO UPDATE SET state = excluded.state, \
             updated_us = excluded.updated_us, updated_by = excluded.updated_by",
        )?
        .execute(params![scope.tenant(), scope.agent_id().unwrap_or(""), state.as_str(), to_micros(b.now), actor.name()])?;
    let mut record = EvidenceRecord::new(EvidenceKind::KillSwitch, scope.tenant(), b.now);
    record.agent_id = scope.agent_id().map(str::to_owned);
    record.status = Some(state.as_str().to_owned());
    record.actor = Some(actor.name().to_owned());
    record.via = Some(actor.via());
    record.reason = Some(match scope.agent_id() {
        Some(agent) => format!("agent {agent} set to {state}"),
        None => format!("tenant {} set to {state}", scope.tenant()),
    });
    b.append(record)?;
    Ok(match scope.agent_id() {
        Some(agent) => queries::kill_status(b.conn, scope.tenant(), agent)?,
        None if state == KillState::Run => KillStatus { state, scope: None },
        None => KillStatus {
            state,
            scope: Some(scope.clone()),
        },
    })
}

/// Records fail-open evidence once per evidence id; answers its ledger record and whether it was a repeat.
pub(crate) fn record_unverified(
    b: &mut Batch<'_>,
    tenant: &str,
    evidence: UnverifiedOutcome,
) -> Result<(u64, bool)> {
    let known: Option<i64> = b
        .conn
        .prepare_cached(
            "SELECT seq FROM unverified_imports WHERE tenant = ?1 AND evidence_id = ?2",
        )?
        .query_row(params![tenant, evidence.evidence_id], |row| row.get(0))
        .optional()?;
    if let Some(seq) = known {
        return Ok((u64::try_from(seq).unwrap_or(0), true));
    }
    let mut record = EvidenceRecord::new(EvidenceKind::Outcome, tenant, b.now);
    record.agent_id = Some(evidence.agent_id);
    record.action = Some(evidence.action);
    record.idempotency_key = Some(evidence.idempotency_key);
    record.status = Some("unverified".into());
    record.outcome = Some(evidence.outcome);
    record.reason = evidence.reason;
    record.error = evidence.error;
    record.body_latency_us = evidence.body_latency.map(micros);
    record.resource_refs = evidence.resource_refs;
    record.proof_status = Some(ProofStatus::Unverified);
    record.redaction_status = Some(redaction_status(&evidence.redacted_fields));
    record.redacted_fields = evidence.redacted_fields;
    record.evidence_id = Some(evidence.evidence_id.clone());
    record.occurred_at = Some(evidence.occurred_at);
    let seq = b.append(record)?;
    b.conn
        .prepare_cached(
            "INSERT INTO unverified_imports (tenant, evidence_id, seq) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            tenant,
            evidence.evidence_id,
            i64::try_from(seq).unwrap_or(i64::MAX)
        ])?;
    Ok((seq, false))
}

pub(crate) fn create_key(b: &mut Batch<'_>, tenant: &str, spec: &KeySpec) -> Result<NewKey> {
    let (name, agents) = spec.resolved()?;
    if queries::live_name_taken(b.conn, tenant, &name)? {
        return Err(AuthorityError::DuplicateKeyName { name });
    }
    let stored_agents = match spec.role {
        Role::Agent => Some(
            serde_json::to_string(&agents.to_strings())
                .map_err(|e| AuthorityError::InvalidRequest(e.to_string()))?,
        ),
        Role::Operator => None,
    };
    let key = secrets::generate();
    b.conn
        .prepare_cached(
            "INSERT INTO api_keys (id, tenant, name, role, key_hash, created_us, agents, rate_limit) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            key.id,
            tenant,
            name,
            spec.role.as_str(),
            secrets::hash(&key.secret).to_vec(),
            to_micros(b.now),
            stored_agents,
            spec.rate_limit.map(|n| n.get()),
        ])?;
    Ok(key)
}

pub(crate) fn revoke_key(b: &mut Batch<'_>, tenant: &str, key_id: &str) -> Result<bool> {
    let changed = b
        .conn
        .prepare_cached("UPDATE api_keys SET revoked_us = ?3 WHERE tenant = ?1 AND id = ?2 AND revoked_us IS NULL")?
        .execute(params![tenant, key_id, to_micros(b.now)])?;
    Ok(changed > 0)
}
