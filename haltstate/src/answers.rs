//! What a [`check`](crate::HaltStateClient::check) answers, with what was asked.

use std::ops::Deref;
use std::time::Duration;

use haltstate_types::{CheckAnswer, Decision};

/// The answer to a [`check`](crate::HaltStateClient::check): the authority's [`CheckAnswer`] (its fields read
/// through this value: `result.decision`, `result.request_id`), and the action and agent it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// What the authority answered.
    pub answer: CheckAnswer,
    /// The action checked.
    pub action: String,
    /// The agent that asked.
    pub agent_id: String,
}

impl Deref for CheckResult {
    type Target = CheckAnswer;

    fn deref(&self) -> &CheckAnswer {
        &self.answer
    }
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

    /// Time the authority spent deciding.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.decision_latency_us)
    }
}
