//! Approvals, applied: created for checks, decided by operators, expired when their window closes.

use haltstate_types::{
    ActionRequest, Actor, Approval, ApprovalStatus, EvidenceKind, EvidenceRecord, KeyState,
    Verdict, Via,
};

use super::new_id;
use crate::approval_event::ApprovalEvent;
use crate::error::{AuthorityError, Result};
use crate::policy_decision::PolicyDecision;
use crate::rules::Windows;
use crate::rules::approval::{self, DecideStep, decide as decide_rule, expired};
use crate::store::tx::Tx;

/// A new pending approval for a check of `action`.
/// Why a request of `agent` that needs a human must be denied now, if it must: the agent, or its tenant, has as
/// many approvals waiting as it may (one agent must not bury the others' requests in the approvers' inbox).
pub(crate) fn flooded(
    tx: &mut dyn Tx,
    windows: Windows,
    tenant: &str,
    agent: &str,
) -> Result<Option<String>> {
    let waiting = tx.pending_approvals(tenant, Some(agent), windows.max_pending_per_agent)?;
    if waiting >= windows.max_pending_per_agent {
        return Ok(Some(format!(
            "agent {agent} has {waiting} approvals waiting for a decision, as many as it may; wait for them to \
             be decided (or to expire) before asking for more"
        )));
    }
    let waiting = tx.pending_approvals(tenant, None, windows.max_pending_per_tenant)?;
    if waiting >= windows.max_pending_per_tenant {
        return Ok(Some(format!(
            "tenant {tenant} has {waiting} approvals waiting for a decision, as many as it may; wait for them to \
             be decided (or to expire) before asking for more"
        )));
    }
    Ok(None)
}

pub(crate) fn for_check(
    tx: &dyn Tx,
    windows: Windows,
    tenant: &str,
    action: &ActionRequest,
    policy: &PolicyDecision,
) -> Approval {
    approval::pending(
        new_id("apr"),
        tenant,
        None,
        action,
        policy,
        tx.now(),
        windows,
    )
}

/// Moves the key waiting on `approval` (if it still waits) to `state`.
fn move_key(tx: &mut dyn Tx, approval: &Approval, state: KeyState) -> Result<()> {
    let Some(key) = &approval.idempotency_key else {
        return Ok(());
    };
    if let Some(record) = tx.key(&approval.tenant, &approval.agent_id, key)? {
        // Only the key still waiting on this approval (a used-up approval's key may wait on a newer one).
        if record.state == KeyState::PendingApproval
            && record.approval_id.as_deref() == Some(approval.id.as_str())
        {
            tx.put_key(
                &approval.tenant,
                &crate::state_rows::KeyRecord { state, ..record },
            )?;
        }
    }
    Ok(())
}

/// Stores the expiry of an overdue approval (reads already show it expired), moves its key and records it;
/// answers the approval as expired.
pub(crate) fn expire(tx: &mut dyn Tx, approval: &Approval) -> Result<Approval> {
    let expired = expired(approval);
    if !tx.settle_approval(&expired)? {
        return Ok(expired);
    }
    move_key(tx, &expired, KeyState::Expired)?;
    record(tx, &expired, None)?;
    super::webhooks::announce_approval(tx, &expired)?;
    tx.publish(ApprovalEvent {
        approval: expired.clone(),
    });
    Ok(expired)
}

fn record(tx: &mut dyn Tx, approval: &Approval, via: Option<Via>) -> Result<u64> {
    let mut record = EvidenceRecord::new(EvidenceKind::Approval, &approval.tenant, tx.now());
    record.agent_id = Some(approval.agent_id.clone());
    record.action = Some(approval.action.clone());
    record.idempotency_key = approval.idempotency_key.clone();
    // The operation the approval was asked for: the key's, while it still waits on (or was moved by) this one.
    record.generation = match &approval.idempotency_key {
        Some(key) => tx
            .key(&approval.tenant, &approval.agent_id, key)?
            .filter(|r| r.approval_id.as_deref() == Some(approval.id.as_str()))
            .and_then(|r| r.evidence_generation()),
        None => None,
    };
    record.approval_id = Some(approval.id.clone());
    record.status = Some(approval.status.as_str().to_owned());
    record.actor = approval.approver.clone();
    record.reason = approval.decision_reason.clone();
    record.policy_id = approval.policy_id.clone();
    record.resource_refs = approval.resource.iter().cloned().collect();
    record.via = via;
    tx.append(record)
}

pub(crate) fn decide(
    tx: &mut dyn Tx,
    tenant: &str,
    id: &str,
    verdict: Verdict,
    approver: &Actor,
    reason: Option<String>,
) -> Result<Approval> {
    let approval = tx
        .approval(tenant, id)?
        .ok_or_else(|| AuthorityError::ApprovalNotFound { id: id.to_owned() })?;
    match decide_rule(&approval, verdict, approver, reason, tx.now())? {
        DecideStep::Expired => {
            expire(tx, &approval)?;
            Err(AuthorityError::ApprovalDecided {
                id: id.to_owned(),
                status: ApprovalStatus::Expired,
            })
        }
        DecideStep::Counted { approval } => {
            let approval = *approval;
            settle(tx, &approval)?;
            let mut evidence = approval.clone();
            evidence.approver = Some(approver.name().to_owned());
            evidence.decision_reason = Some(format!(
                "approved by {} of {} operators",
                approval.approved_by.len(),
                approval.approvals_required
            ));
            record(tx, &evidence, Some(approver.via()))?;
            tx.publish(ApprovalEvent {
                approval: approval.clone(),
            });
            Ok(approval)
        }
        DecideStep::Decided {
            approval,
            key_state,
        } => {
            let approval = *approval;
            settle(tx, &approval)?;
            move_key(tx, &approval, key_state)?;
            record(tx, &approval, Some(approver.via()))?;
            super::webhooks::announce_approval(tx, &approval)?;
            tx.publish(ApprovalEvent {
                approval: approval.clone(),
            });
            Ok(approval)
        }
    }
}

/// Stores an approval's new state; refused as already decided when it no longer was pending (decided by
/// someone else in another process since it was read).
fn settle(tx: &mut dyn Tx, approval: &Approval) -> Result<()> {
    if tx.settle_approval(approval)? {
        return Ok(());
    }
    Err(AuthorityError::ApprovalDecided {
        id: approval.id.clone(),
        status: tx
            .approval(&approval.tenant, &approval.id)?
            .map_or(approval.status, |current| current.status),
    })
}

/// Stores a tenant's overdue expiries (at most 1,000 per call) and records each.
pub(crate) fn sweep_expired(tx: &mut dyn Tx, tenant: &str) -> Result<Vec<Approval>> {
    let due = tx.overdue_approvals(tenant, 1000)?;
    let mut swept = Vec::with_capacity(due.len());
    for id in due {
        if let Some(approval) = tx.approval(tenant, &id)? {
            swept.push(expire(tx, &approval)?);
        }
    }
    Ok(swept)
}
