//! What a webhook says about a change: the `data` of a Standard Webhooks body, typed, so the authority that writes
//! it and the sender that reads it (a Slack line, a console link) agree by type, not by string keys. Fields are
//! declared in name order: the stored JSON reads the same as before these types.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::approval::{Approval, ApprovalStatus};
use crate::kill_switch::{KillScope, KillState};
use crate::timestamp::rfc3339;

/// An approval's event (`approval.requested`, `approval.decided`, `approval.expired`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalEventData {
    /// What waits (or waited).
    pub action: String,
    /// The requesting agent.
    pub agent_id: String,
    /// The approval.
    pub approval_id: String,
    /// Who decided, once decided.
    pub approver: Option<String>,
    /// When it was decided (for an expiry: when it expired).
    #[serde(with = "rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// The approver's reason.
    pub decision_reason: Option<String>,
    /// When it stops being decidable.
    #[serde(with = "rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The guard's idempotency key (none for a check's approval).
    pub idempotency_key: Option<String>,
    /// The console page of the approval, on the console's own address (`/ui/approvals/{id}`).
    pub path: String,
    /// The policy that asked for a human.
    pub policy_id: Option<String>,
    /// Why.
    pub policy_reason: String,
    /// When it was asked.
    #[serde(with = "rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The resource, if any.
    pub resource: Option<String>,
    /// The risk flag, if any.
    pub risk: Option<String>,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// The tenant.
    pub tenant: String,
}

impl From<&Approval> for ApprovalEventData {
    fn from(approval: &Approval) -> Self {
        Self {
            action: approval.action.clone(),
            agent_id: approval.agent_id.clone(),
            approval_id: approval.id.clone(),
            approver: approval.approver.clone(),
            decided_at: approval.decided_at,
            decision_reason: approval.decision_reason.clone(),
            expires_at: approval.expires_at,
            idempotency_key: approval.idempotency_key.clone(),
            path: format!("/ui/approvals/{}", approval.id),
            policy_id: approval.policy_id.clone(),
            policy_reason: approval.policy_reason.clone(),
            requested_at: approval.created_at,
            resource: approval.resource.clone(),
            risk: approval.risk.clone(),
            status: approval.status,
            tenant: approval.tenant.clone(),
        }
    }
}

/// A kill switch's event (`kill_switch.changed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitchEventData {
    /// Who set it.
    pub actor: String,
    /// The agent, for an agent's switch; none for the tenant's.
    pub agent_id: Option<String>,
    /// The console's kill-switch page (`/ui/kill`).
    pub path: String,
    /// Its new state.
    pub state: KillState,
    /// The tenant.
    pub tenant: String,
}

impl KillSwitchEventData {
    /// `scope` set to `state` by `actor`.
    pub fn new(scope: &KillScope, state: KillState, actor: &str) -> Self {
        Self {
            actor: actor.to_owned(),
            agent_id: scope.agent_id().map(str::to_owned),
            path: "/ui/kill".to_owned(),
            state,
            tenant: scope.tenant().to_owned(),
        }
    }
}
