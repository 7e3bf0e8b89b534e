//! What the authority answers a guard: the status, and the claim a caller holds while it runs the body.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::kill_switch::KillState;
use crate::timestamp::rfc3339;

/// The guard's answer, in the wire contract's vocabulary plus our two additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStatus {
    /// Policy allowed; the caller holds the claim and may run the body.
    Allowed,
    /// A human approved; the caller holds the claim and may run the body.
    Approved,
    /// Policy, a human or the kill switch denied (a human's rejection too: `rejected` reads as this).
    #[serde(alias = "rejected")]
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
    /// Which operation under the key this answer is about, from 1: a key whose lifetime is `operation` starts
    /// its next generation once the last one has ended; a `once` key stays at 1.
    pub generation: u64,
    /// Time policy took, in microseconds (0 when policy did not run).
    pub decision_latency_us: u64,
    /// The ledger record of this answer.
    pub ledger_seq: u64,
    /// Set when the kill switch denied the guard: the state that did.
    pub kill_switch: Option<KillState>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
