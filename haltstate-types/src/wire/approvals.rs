//! Approvals on the wire: E5 `approval/{id}`, E6 `approvals/since` and E7's stream events, and the decision a
//! client sees from any of them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lenient::Lenient;
use crate::approval::{Approval, ApprovalStatus};
use crate::timestamp::rfc3339;

/// An approval's decision as E5, E6 and E7 carry it, and as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    /// The approval id (`approval_id` in guard and check answers).
    pub request_id: String,
    /// Where it stands; a status this version does not know is kept, not guessed.
    pub status: Lenient<ApprovalStatus>,
    /// Who decided.
    #[serde(default)]
    pub approver: Option<String>,
    /// The approver's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The requesting agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The action.
    #[serde(default)]
    pub action: Option<String>,
    /// When it was decided.
    #[serde(default, with = "rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Whether it was delivered as catch-up (decided before the reader asked) rather than live. Set by the
    /// reader from where it came; never on the wire.
    #[serde(default, skip_serializing)]
    pub is_catchup: bool,
}

impl ApprovalDecision {
    /// Whether it has been decided (approved, rejected or expired); an unknown status has not.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status,
            Lenient::Known(
                ApprovalStatus::Approved | ApprovalStatus::Rejected | ApprovalStatus::Expired
            )
        )
    }
}

impl From<&Approval> for ApprovalDecision {
    fn from(approval: &Approval) -> Self {
        Self {
            request_id: approval.id.clone(),
            status: approval.status.into(),
            approver: approval.approver.clone(),
            reason: approval.decision_reason.clone(),
            agent_id: Some(approval.agent_id.clone()),
            action: Some(approval.action.clone()),
            decided_at: approval.decided_at,
            is_catchup: false,
        }
    }
}

/// E5 `approval/{id}`'s answer: the decision, under both names of its id, and its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReply {
    /// The decision.
    #[serde(flatten)]
    pub decision: ApprovalDecision,
    /// The id again, under the name guard and check answers use.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// When it stops being decidable.
    #[serde(default, with = "rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<&Approval> for ApprovalReply {
    fn from(approval: &Approval) -> Self {
        Self {
            decision: approval.into(),
            approval_id: Some(approval.id.clone()),
            expires_at: Some(approval.expires_at),
        }
    }
}

/// E6 `approvals/since`'s answer, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinceReply {
    /// The decisions.
    pub decisions: Vec<ApprovalDecision>,
}

/// One event of E7 `approvals/stream`, one JSON object per `data:` line. Unknown event types are `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    /// Sent first.
    #[serde(rename = "CONNECTED")]
    Connected,
    /// An approval was decided (or expired).
    #[serde(rename = "APPROVAL_DECISION")]
    Decision(DecisionEvent),
    /// The stream ends with this.
    #[serde(rename = "ERROR")]
    Error {
        /// Why.
        message: String,
    },
    /// An event type this version does not know.
    #[serde(other)]
    Other,
}

/// The body of a [`StreamEvent::Decision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// The approval id.
    pub request_id: String,
    /// Its new status.
    pub status: Lenient<ApprovalStatus>,
    /// Who decided.
    #[serde(default)]
    pub approver: Option<String>,
    /// The approver's reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The requesting agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The action.
    #[serde(default)]
    pub action: Option<String>,
    /// When it was decided.
    #[serde(default, with = "rfc3339::option")]
    pub timestamp: Option<OffsetDateTime>,
    /// Whether it was decided before the stream connected.
    #[serde(default)]
    pub catchup: bool,
}

impl DecisionEvent {
    /// The event for `approval`.
    pub fn new(approval: &Approval, catchup: bool) -> Self {
        Self {
            request_id: approval.id.clone(),
            status: approval.status.into(),
            approver: approval.approver.clone(),
            reason: approval.decision_reason.clone(),
            agent_id: Some(approval.agent_id.clone()),
            action: Some(approval.action.clone()),
            timestamp: approval.decided_at,
            catchup,
        }
    }
}

impl From<DecisionEvent> for ApprovalDecision {
    fn from(event: DecisionEvent) -> Self {
        Self {
            request_id: event.request_id,
            status: event.status,
            approver: event.approver,
            reason: event.reason,
            agent_id: event.agent_id,
            action: event.action,
            decided_at: event.timestamp,
            is_catchup: event.catchup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_events_of_unknown_types_are_other() {
        let event: StreamEvent = serde_json::from_value(json!({"type": "PING", "n": 1})).unwrap();
        assert_eq!(event, StreamEvent::Other);
        let connected = serde_json::to_value(StreamEvent::Connected).unwrap();
        assert_eq!(connected, json!({"type": "CONNECTED"}));
    }
}
