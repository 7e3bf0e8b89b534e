//! An approver's decision: only a pending approval is decided, never by the agent that asked, and the key waiting
//! on it moves with it.

use time::OffsetDateTime;

use haltstate_types::limits::MAX_ERROR_TEXT;
use haltstate_types::{
    ActionRequest, Actor, Approval, ApprovalStatus, KeyState, Verdict, truncate_chars,
};

use super::Windows;
use crate::error::AuthorityError;
use crate::policy_decision::PolicyDecision;

/// The approval a human must decide before `action` runs, as the policy that asked for it explains; bound to
/// `idempotency_key` when a guard asked, unbound when a check did.
pub(crate) fn pending(
    id: String,
    tenant: &str,
    idempotency_key: Option<String>,
    action: &ActionRequest,
    policy: &PolicyDecision,
    now: OffsetDateTime,
    windows: Windows,
) -> Approval {
    Approval {
        id,
        tenant: tenant.to_owned(),
        idempotency_key,
        agent_id: action.agent_id.clone(),
        action: action.action.clone(),
        resource: action.resource.clone(),
        params: action.params.clone(),
        risk: action.risk.clone(),
        metadata: action.metadata.clone(),
        policy_id: policy.policy_id.clone(),
        policy_reason: policy.reason.clone(),
        status: ApprovalStatus::Pending,
        created_at: now,
        expires_at: now + windows.approval_ttl,
        decided_at: None,
        approver: None,
        decision_reason: None,
        approvals_required: policy.approvals_required.max(1),
        approved_by: Vec::new(),
        policy_version: policy.policy_version.clone(),
    }
}

/// What deciding an approval does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DecideStep {
    /// The approval's window closed before the decision: store the expiry (if not stored yet), then refuse it
    /// as already decided.
    Expired,
    /// An approval counted towards the several the approval needs: store it; it stays pending.
    Counted { approval: Box<Approval> },
    /// Store the decided approval and move a key waiting on it to `key_state`.
    Decided {
        approval: Box<Approval>,
        key_state: KeyState,
    },
}

/// Decides `approval` (as of `now`).
pub(crate) fn decide(
    approval: &Approval,
    verdict: Verdict,
    approver: &Actor,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<DecideStep, AuthorityError> {
    match approval.status {
        ApprovalStatus::Pending => {}
        ApprovalStatus::Expired => return Ok(DecideStep::Expired),
        status => {
            return Err(AuthorityError::ApprovalDecided {
                id: approval.id.clone(),
                status,
            });
        }
    }
    // Both names are canonical, so `Bot` cannot approve what `bot` asked for.
    if approver.name() == approval.agent_id {
        return Err(AuthorityError::SelfApproval {
            id: approval.id.clone(),
            approver: approver.name().to_owned(),
        });
    }
    let reason = reason.map(|r| truncate_chars(&r, MAX_ERROR_TEXT));
    let (status, key_state, approved_by) = match verdict {
        Verdict::Approve => {
            // Several approvers means several different people: one operator approving twice counts once.
            if approval
                .approved_by
                .iter()
                .any(|who| who == approver.name())
            {
                return Err(AuthorityError::AlreadyApproved {
                    id: approval.id.clone(),
                    approver: approver.name().to_owned(),
                });
            }
            let mut approved_by = approval.approved_by.clone();
            approved_by.push(approver.name().to_owned());
            if approved_by.len() < usize::try_from(approval.approvals_required).unwrap_or(1) {
                return Ok(DecideStep::Counted {
                    approval: Box::new(Approval {
                        approved_by,
                        ..approval.clone()
                    }),
                });
            }
            (ApprovalStatus::Approved, KeyState::Approved, approved_by)
        }
        Verdict::Reject => (
            ApprovalStatus::Rejected,
            KeyState::Rejected,
            approval.approved_by.clone(),
        ),
    };
    Ok(DecideStep::Decided {
        approval: Box::new(Approval {
            status,
            decided_at: Some(now),
            approver: Some(approver.name().to_owned()),
            decision_reason: reason,
            approved_by,
            ..approval.clone()
        }),
        key_state,
    })
}

/// `approval` as stored once its window closed.
pub(crate) fn expired(approval: &Approval) -> Approval {
    Approval {
        status: ApprovalStatus::Expired,
        decided_at: Some(approval.expires_at),
        ..approval.clone()
    }
}
