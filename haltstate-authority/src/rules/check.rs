//! A check: a decision without a claim, under a request id that is bound to one operation.

use haltstate_types::{Decision, KillStatus};

use super::micros;
use crate::policy_decision::PolicyDecision;
use crate::state_rows::CheckRecord;

/// What a check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckVerdict {
    pub(crate) decision: Decision,
    pub(crate) reason: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) latency_us: u64,
}

/// Decides a check; `None` when the request id is bound to another operation (a conflict, refused).
pub(crate) fn check(
    bound: Option<&CheckRecord>,
    fingerprint: &str,
    kill: &KillStatus,
    policy: &PolicyDecision,
) -> Option<CheckVerdict> {
    if bound.is_some_and(|record| record.fingerprint != fingerprint) {
        return None;
    }
    Some(match kill.denial_reason() {
        Some(reason) => CheckVerdict {
            decision: Decision::Deny,
            reason,
            policy_id: None,
            latency_us: 0,
        },
        None => CheckVerdict {
            decision: policy.decision,
            reason: policy.reason.clone(),
            policy_id: policy.policy_id.clone(),
            latency_us: micros(policy.latency),
        },
    })
}

/// Whether a check report describes a decision the authority made: a check under that request id, by that
/// agent, for that action (when named), that decided what the report says (when it says).
pub(crate) fn report_is_verified(
    decided: Option<&CheckRecord>,
    agent_id: &str,
    action: &str,
    decision: Option<Decision>,
) -> bool {
    decided.is_some_and(|record| {
        record.agent_id == agent_id
            && (action.is_empty() || record.action == action)
            && decision.is_none_or(|d| d.as_str() == record.decision)
    })
}
