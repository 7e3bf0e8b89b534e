//! Approvals: the human decision an APPROVAL_REQUIRED action waits for.
//!
//! An approval is created once per idempotency key (the same key always finds the same approval), expires after
//! a configurable window (24 h by default), and is decided by an operator who is never the requesting agent.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::timestamp::rfc3339;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a human.
    Pending,
    /// A human approved; the next guard with the key runs the action.
    Approved,
    /// A human rejected; the key answers denied.
    Rejected,
    /// Nobody decided in time; the key answers expired.
    Expired,
}

impl ApprovalStatus {
    /// The wire form (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Parses the wire form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(ApprovalStatus::Pending),
            "approved" => Some(ApprovalStatus::Approved),
            "rejected" => Some(ApprovalStatus::Rejected),
            "expired" => Some(ApprovalStatus::Expired),
            _ => None,
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One approval, as operators and the wire see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval id (`apr_...`); the wire's `approval_id` and `request_id`.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// The guard's idempotency key; `None` for approvals created by a check.
    pub idempotency_key: Option<String>,
    /// The requesting agent.
    pub agent_id: String,
    /// The action waiting.
    pub action: String,
    /// The resource reference, if any.
    pub resource: Option<String>,
    /// The safe params policy saw.
    pub params: Map<String, Value>,
    /// The risk flag, if any.
    pub risk: Option<String>,
    /// Context for the approver.
    pub metadata: Option<Map<String, Value>>,
    /// The policy that required approval.
    pub policy_id: Option<String>,
    /// Why approval is required.
    pub policy_reason: String,
    /// Where it stands now (an overdue pending approval reads as expired).
    pub status: ApprovalStatus,
    /// When it was requested.
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops being decidable.
    #[serde(with = "rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was decided (for an expiry: when it expired).
    #[serde(with = "rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided.
    pub approver: Option<String>,
    /// The approver's reason.
    pub decision_reason: Option<String>,
    /// How many different operators must approve (`@approval("2")`); one unless the policy says more.
    #[serde(default = "one")]
    pub approvals_required: u32,
    /// The operators who approved so far, in order (the last is `approver` once it is approved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
    /// The version (SHA-256 of the source) of the policy set it was requested under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
}

fn one() -> u32 {
    1
}

impl Approval {
    /// The approval as it stands at `now`: a pending one past its window is expired, decided at its expiry (its
    /// stored row may lag until the sweep writes it; every read says the same).
    ///
    /// ```
    /// # use haltstate_types::{Approval, ApprovalStatus};
    /// # let mut approval: Approval = serde_json::from_value(serde_json::json!({
    /// #     "id": "apr_1", "tenant": "acme", "idempotency_key": null, "agent_id": "a", "action": "x.y",
    /// #     "resource": null, "params": {}, "risk": null, "metadata": null, "policy_id": null,
    /// #     "policy_reason": "r", "status": "pending", "created_at": "2026-01-05T10:00:00Z",
    /// #     "expires_at": "2026-01-05T11:00:00Z", "decided_at": null, "approver": null, "decision_reason": null,
    /// # }))?;
    /// let later = approval.expires_at + time::Duration::SECOND;
    /// let read = approval.clone().as_of(later);
    /// assert_eq!(read.status, ApprovalStatus::Expired);
    /// assert_eq!(read.decided_at, Some(approval.expires_at));
    /// assert_eq!(approval.clone().as_of(approval.created_at).status, ApprovalStatus::Pending);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn as_of(mut self, now: OffsetDateTime) -> Self {
        if self.status == ApprovalStatus::Pending && self.expires_at <= now {
            self.status = ApprovalStatus::Expired;
            self.decided_at = Some(self.expires_at);
        }
        self
    }
}

/// How an operator decides an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the action run.
    Approve,
    /// Deny the action.
    Reject,
}
