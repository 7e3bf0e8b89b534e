//! What policy said about one action, with its provenance: the decision, the deciding policy, why, and how long
//! deciding took.

use std::time::Duration;

use haltstate_types::Decision;

/// A decision with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// What policy decided.
    pub decision: Decision,
    /// The `@id` of the deciding policy; `None` when nothing matched or the decision came from outside policy
    /// (kill switch, invalid input).
    pub policy_id: Option<String>,
    /// Why, from the deciding policy's `@reason` or a fixed text.
    pub reason: String,
    /// Time spent deciding.
    pub latency: Duration,
    /// For APPROVAL_REQUIRED: how many different operators must approve (`@approval("2")`); 1 otherwise.
    pub approvals_required: u32,
    /// The version of the policy set that decided (SHA-256 of its source); `None` when no set decided.
    pub policy_version: Option<String>,
    /// What the shadow set (`@mode("shadow")` policies live, or `serve --shadow FILE`) would have decided; never
    /// enforced, only recorded.
    pub shadow: Option<ShadowDecision>,
}

/// A shadow set's would-be decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowDecision {
    /// What it would decide.
    pub decision: Decision,
    /// The policy that would decide.
    pub policy_id: Option<String>,
}

impl PolicyDecision {
    /// A DENY that no policy produced (fail closed), with the given reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            decision: Decision::Deny,
            policy_id: None,
            reason: reason.into(),
            latency: Duration::ZERO,
            approvals_required: 1,
            policy_version: None,
            shadow: None,
        }
    }
}
