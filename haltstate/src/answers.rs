//! What the authority answers, as this client exposes it.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

/// A policy decision. A decision this client does not recognise is read as `Deny` (fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The action may run.
    Allow,
    /// The action must not run.
    Deny,
    /// A human must approve first.
    ApprovalRequired,
}

impl Decision {
    /// `ALLOW`, `DENY` or `APPROVAL_REQUIRED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "ALLOW",
            Decision::Deny => "DENY",
            Decision::ApprovalRequired => "APPROVAL_REQUIRED",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to a [`check`](crate::HaltStateClient::check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// For APPROVAL_REQUIRED: the approval to wait for.
    pub approval_id: Option<String>,
    /// The request id, as sent and as the authority kept it; reports carry it.
    pub request_id: String,
    /// The action checked.
    pub action: String,
    /// The agent that asked.
    pub agent_id: String,
    /// Time the authority spent deciding.
    pub latency: Duration,
}

impl CheckResult {
    /// Whether the action may run now.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// Whether a human must approve first.
    pub fn requires_approval(&self) -> bool {
        self.decision == Decision::ApprovalRequired
    }
}

/// Where an approval stands. Statuses this client does not know are kept, not guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Waiting for a human.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// The window closed.
    Expired,
    /// A status this client version does not know.
    Unknown(String),
}

impl ApprovalStatus {
    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "pending" => ApprovalStatus::Pending,
            "approved" => ApprovalStatus::Approved,
            "rejected" => ApprovalStatus::Rejected,
            "expired" => ApprovalStatus::Expired,
            other => ApprovalStatus::Unknown(other.to_owned()),
        }
    }

    /// Whether the approval has been decided (approved, rejected or expired).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ApprovalStatus::Approved | ApprovalStatus::Rejected | ApprovalStatus::Expired
        )
    }
}

/// A decided (or pending) approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// The approval id (`approval_id` in guard and check answers).
    pub request_id: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who decided.
    pub approver: Option<String>,
    /// The approver's reason.
    pub reason: Option<String>,
    /// The requesting agent.
    pub agent_id: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// When it was decided.
    pub decided_at: Option<OffsetDateTime>,
    /// Whether it came from catch-up rather than live.
    pub is_catchup: bool,
}

/// How a guarded body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded: the key completes and never runs again.
    Success,
    /// It returned an error: the claim is released for a retry.
    Error,
    /// The permit was dropped without an outcome.
    Aborted,
    /// The body panicked.
    Panicked,
    /// The body's future was dropped before it finished.
    Cancelled,
}

impl Outcome {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Aborted => "aborted",
            Outcome::Panicked => "panicked",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether evidence was produced under the authority's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProofStatus {
    /// The authority decided.
    Verified,
    /// Fail-open: the action ran without the authority's decision.
    Unverified,
}

impl ProofStatus {
    /// `verified` or `unverified`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofStatus::Verified => "verified",
            ProofStatus::Unverified => "unverified",
        }
    }
}
