//! What policy says about one action: ALLOW, DENY or APPROVAL_REQUIRED.

use std::fmt;

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
