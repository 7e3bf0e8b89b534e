//! What policy says about one action: ALLOW, DENY or APPROVAL_REQUIRED, with the deciding policy and reason.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The three answers policy can give. Serialized in the wire contract's uppercase form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    /// The action may run.
    Allow,
    /// The action must not run.
    Deny,
    /// A human must approve before the action may run.
    ApprovalRequired,
}

impl Decision {
    /// The wire form: `ALLOW`, `DENY` or `APPROVAL_REQUIRED`.
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
}

impl PolicyDecision {
    /// A DENY that no policy produced (fail closed), with the given reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            decision: Decision::Deny,
            policy_id: None,
            reason: reason.into(),
            latency: Duration::ZERO,
        }
    }
}
