//! Idempotency records: one (tenant, key) is one operation, forever.
//!
//! The key binds to a fingerprint of the operation (agent, action, resource, params, risk); a different operation
//! under the same key is a conflict, never a replay. The record moves through:
//!
//! ```text
//!             ALLOW                 success
//!   (none) ──────────────> claimed ─────────> completed
//!     │                     │  ^  error / abort
//!     │ APPROVAL_REQUIRED   │  └──────────── failed (a retry claims again, without a new approval)
//!     v                     │
//!   pending_approval ──approve──> approved ──guard──> claimed
//!     │        └──reject──> rejected
//!     └──window closes──> expired
//! ```
//!
//! A claim has a lease: a second guard while it is live answers `in_progress`; after it lapses (the worker died)
//! the next guard re-claims the key.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::canonical::to_canonical_bytes;
use crate::request::ActionRequest;
use crate::timestamp::rfc3339;

/// Where an idempotency key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Waiting for a human.
    PendingApproval,
    /// Approved, not yet claimed.
    Approved,
    /// Rejected by a human.
    Rejected,
    /// The approval window closed.
    Expired,
    /// A worker holds the claim and is running the body.
    Claimed,
    /// The body succeeded; the key never runs again.
    Completed,
    /// The body failed or was abandoned; the claim is released for a retry.
    Failed,
}

impl KeyState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::PendingApproval => "pending_approval",
            KeyState::Approved => "approved",
            KeyState::Rejected => "rejected",
            KeyState::Expired => "expired",
            KeyState::Claimed => "claimed",
            KeyState::Completed => "completed",
            KeyState::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending_approval" => KeyState::PendingApproval,
            "approved" => KeyState::Approved,
            "rejected" => KeyState::Rejected,
            "expired" => KeyState::Expired,
            "claimed" => KeyState::Claimed,
            "completed" => KeyState::Completed,
            "failed" => KeyState::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SHA-256 (hex) of the canonical JSON of `{agent, action, resource, params, risk}`.
pub fn fingerprint(request: &ActionRequest) -> String {
    let value = json!({
        "agent": request.agent_id,
        "action": request.action,
        "resource": request.resource,
        "params": request.params,
        "risk": request.risk,
    });
    hex::encode(Sha256::digest(to_canonical_bytes(&value)))
}

/// The guard's answer, in the wire contract's vocabulary plus our two additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStatus {
    /// Policy allowed; the caller holds the claim and may run the body.
    Allowed,
    /// A human approved; the caller holds the claim and may run the body.
    Approved,
    /// Policy, a human or the kill switch denied.
    Denied,
    /// Waiting for a human; exit and retry later with the same key.
    Pending,
    /// The approval window closed; a new attempt needs a new key.
    Expired,
    /// This key already ran successfully (our extension).
    Completed,
    /// Another worker holds the claim right now (our extension).
    InProgress,
}

impl GuardStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStatus::Allowed => "allowed",
            GuardStatus::Approved => "approved",
            GuardStatus::Denied => "denied",
            GuardStatus::Pending => "pending",
            GuardStatus::Expired => "expired",
            GuardStatus::Completed => "completed",
            GuardStatus::InProgress => "in_progress",
        }
    }

    /// Whether the caller may run the body.
    pub fn may_run(self) -> bool {
        matches!(self, GuardStatus::Allowed | GuardStatus::Approved)
    }
}

impl fmt::Display for GuardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claim a caller holds while it runs the body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Proof of holding the claim; send it with the outcome report.
    pub token: String,
    /// When the claim lapses and another worker may re-claim the key.
    #[serde(with = "rfc3339")]
    pub lease_until: OffsetDateTime,
}

/// The token is a capability (whoever holds it may report the claim's outcome), so `Debug` does not show it.
impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("token", &"<redacted>")
            .field("lease_until", &self.lease_until)
            .finish()
    }
}

/// What the authority answers a guard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardAnswer {
    /// The answer.
    pub status: GuardStatus,
    /// Why.
    pub reason: String,
    /// The deciding policy, when policy decided.
    pub policy_id: Option<String>,
    /// The approval behind a pending, approved, rejected or expired answer.
    pub approval_id: Option<String>,
    /// Who approved (or rejected).
    pub approver: Option<String>,
    /// When it was approved.
    #[serde(with = "rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    /// When a pending approval's window closes.
    #[serde(with = "rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The claim, when the caller may run the body.
    pub claim: Option<Claim>,
    /// For `completed`: the ledger record of the successful outcome.
    pub completed_seq: Option<u64>,
    /// Time policy took, in microseconds (0 when policy did not run).
    pub decision_latency_us: u64,
    /// The ledger record of this answer.
    pub ledger_seq: u64,
    /// Set when the kill switch denied the guard: the state that did.
    pub kill_switch: Option<crate::kill_switch::KillState>,
}

/// What the authority answers an outcome report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportAck {
    /// The ledger record of the outcome.
    pub ledger_seq: u64,
    /// The key's state after the report: `completed` or `failed`.
    pub state: KeyState,
    /// The same outcome had already been recorded (a retried report); nothing new was written.
    pub duplicate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_debug_hides_the_token() {
        let claim = Claim {
            token: "ct_capability_do_not_print".into(),
            lease_until: OffsetDateTime::UNIX_EPOCH,
        };
        let shown = format!("{claim:?}");
        assert!(!shown.contains("ct_capability_do_not_print"), "{shown}");
        assert!(shown.contains("lease_until"), "{shown}");
    }

    #[test]
    fn fingerprint_ignores_param_order_and_metadata_but_not_values() {
        let a = ActionRequest::new("agent", "refund.create")
            .param("x", json!(1))
            .param("y", json!(2));
        let b = ActionRequest::new("agent", "refund.create")
            .param("y", json!(2))
            .param("x", json!(1.0))
            .metadata(serde_json::Map::new());
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = a.clone().param("x", json!(3));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_ne!(fingerprint(&a), fingerprint(&a.clone().resource("order:1")));
        assert_ne!(fingerprint(&a), fingerprint(&a.clone().risk("money")));
    }
}
