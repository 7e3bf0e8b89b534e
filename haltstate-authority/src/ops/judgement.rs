//! How a guard or check gets its policy decision: decided already on the caller's thread, or to be decided inside
//! the transaction with the agent's usage loaded.

use crate::policy::PolicyEngine;
use crate::policy_decision::PolicyDecision;

/// How a guard or check gets its policy decision.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// Decided on the caller's thread: no policy of the action reads usage.
    Decided(PolicyDecision),
    /// Decided inside the transaction with the agent's usage loaded, so concurrent decisions see each other's
    /// charges (a policy of the action reads `context.usage`).
    WithUsage(std::sync::Arc<PolicyEngine>),
}
