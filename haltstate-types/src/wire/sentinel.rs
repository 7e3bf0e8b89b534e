//! The wire contract's bodies (E1-E8, see WIRE.md): tolerant on input, exact on output, and the conversions to
//! and from the domain types, so a request has one shape on each side of the wire.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::lenient::Lenient;
use crate::action::{ActionRequest, GuardRequest};
use crate::approval::{Approval, ApprovalStatus};
use crate::check::{CheckAnswer, CheckReport, CheckRequest};
use crate::decision::Decision;
use crate::guard::{Claim, GuardAnswer, GuardStatus};
use crate::key_state::KeyState;
use crate::kill_switch::KillState;
use crate::report::{LlmUsage, Outcome, OutcomeReport, ProofStatus};
use crate::timestamp::rfc3339;

/// The action fields E1 and E2 share. The TypeScript docs send `context` where the Python SDK sends `params`;
/// both are read (`params` wins on a clash).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionBody {
    /// The agent; absent means the key's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The action.
    pub action: String,
    /// The safe params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// The safe params, as the TypeScript docs name them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    /// The resource reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The risk flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// Approver context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Params sent as digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
}

impl ActionBody {
    /// The body of `action` (as a client sends it).
    pub fn from_action(action: &ActionRequest) -> Self {
        Self {
            agent_id: Some(action.agent_id.clone()),
            action: action.action.clone(),
            params: Some(action.params.clone()),
            context: None,
            resource: action.resource.clone(),
            risk: action.risk.clone(),
            metadata: action.metadata.clone(),
            redacted_fields: action.redacted_fields.clone(),
        }
    }

    /// The action this body asks for, acting as `agent_id` (the server resolves it from the key).
    pub fn into_action(self, agent_id: String) -> ActionRequest {
        let mut params = self.context.unwrap_or_default();
        params.extend(self.params.unwrap_or_default());
        let mut action = ActionRequest::new(agent_id, self.action).params(params);
        action.resource = self.resource;
        action.risk = self.risk;
        action.metadata = self.metadata;
        action.redacted_fields = self.redacted_fields;
        action
    }
}

/// E1 `action/check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckBody {
    /// The action.
    #[serde(flatten)]
    pub action: ActionBody,
    /// The caller's request id (the same id finds the same approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl From<&CheckRequest> for CheckBody {
    fn from(request: &CheckRequest) -> Self {
        Self {
            action: ActionBody::from_action(&request.action),
            request_id: request.request_id.clone(),
        }
    }
}

impl CheckBody {
    /// The check this body asks for, acting as `agent_id`.
    pub fn into_request(self, agent_id: String) -> CheckRequest {
        CheckRequest {
            action: self.action.into_action(agent_id),
            request_id: self.request_id,
        }
    }
}

/// E2 `action/guard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardBody {
    /// The action.
    #[serde(flatten)]
    pub action: ActionBody,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The caller's claim token (our extension; the official SDKs send none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
}

impl From<&GuardRequest> for GuardBody {
    fn from(request: &GuardRequest) -> Self {
        Self {
            action: ActionBody::from_action(&request.action),
            idempotency_key: request.idempotency_key.clone(),
            claim_token: request.claim_token.clone(),
        }
    }
}

impl GuardBody {
    /// The guard this body asks for, acting as `agent_id`.
    pub fn into_request(self, agent_id: String) -> GuardRequest {
        let mut request =
            GuardRequest::new(self.action.into_action(agent_id), self.idempotency_key);
        request.claim_token = self.claim_token;
        request
    }
}

/// E1's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReply {
    /// `ALLOW`, `DENY` or `APPROVAL_REQUIRED`; anything else reads as a denial.
    pub decision: Lenient<Decision>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The deciding policy.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// Time policy took.
    #[serde(default)]
    pub latency_ms: u64,
    /// For APPROVAL_REQUIRED: the approval to wait for.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// The request id the authority kept.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl From<&CheckAnswer> for CheckReply {
    fn from(answer: &CheckAnswer) -> Self {
        Self {
            decision: answer.decision.into(),
            reason: answer.reason.clone(),
            policy_id: answer.policy_id.clone(),
            latency_ms: answer.decision_latency_us / 1000,
            approval_id: answer.approval_id.clone(),
            request_id: Some(answer.request_id.clone()),
        }
    }
}

impl CheckReply {
    /// The answer as the domain has it. A decision this version does not know is a denial (fail closed); the
    /// request id falls back to the one sent.
    pub fn into_answer(self, sent_request_id: Option<String>) -> CheckAnswer {
        let (decision, reason) = match self.decision {
            Lenient::Known(decision) => (decision, self.reason),
            Lenient::Unknown(text) => (
                Decision::Deny,
                format!("unrecognised decision {text:?}; denied (fail closed)"),
            ),
        };
        CheckAnswer {
            decision,
            reason,
            policy_id: self.policy_id,
            approval_id: self
                .approval_id
                .filter(|_| decision == Decision::ApprovalRequired),
            request_id: self.request_id.or(sent_request_id).unwrap_or_default(),
            decision_latency_us: self.latency_ms.saturating_mul(1000),
            ledger_seq: 0,
        }
    }
}

/// E2's answer. The official SDKs fill absent approval fields from the client clock (B20): the server always
/// sends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReply {
    /// `allowed`, `approved`, `denied` (also read from `rejected`), `pending`, `expired`, `completed`,
    /// `in_progress`.
    pub status: Lenient<GuardStatus>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The deciding policy.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// The approval behind the answer.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// Who approved or rejected.
    #[serde(default)]
    pub approver: Option<String>,
    /// When it was approved (or, for `allowed`, when policy allowed it).
    #[serde(default, with = "rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    /// When a pending approval's window closes.
    #[serde(default, with = "rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The key guarded.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The claim token, when the caller may run the body.
    #[serde(default)]
    pub claim_token: Option<String>,
    /// When the claim lapses.
    #[serde(default, with = "rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    /// For `completed`: the ledger record of the successful outcome.
    #[serde(default)]
    pub completed_seq: Option<u64>,
    /// The ledger record of this answer.
    #[serde(default)]
    pub ledger_seq: u64,
    /// Set when the kill switch denied the guard.
    #[serde(default)]
    pub kill_switch: Option<KillState>,
    /// Time policy took.
    #[serde(default)]
    pub latency_ms: u64,
}

impl GuardReply {
    /// The wire form of `answer` for `idempotency_key`; `now` is the `approved_at` of a plain allow.
    pub fn from_answer(answer: &GuardAnswer, idempotency_key: &str, now: OffsetDateTime) -> Self {
        let approved_at = match answer.status {
            GuardStatus::Approved => answer.approved_at,
            GuardStatus::Allowed => Some(now),
            _ => None,
        };
        Self {
            status: answer.status.into(),
            reason: answer.reason.clone(),
            policy_id: answer.policy_id.clone(),
            approval_id: answer.approval_id.clone(),
            approver: answer.approver.clone(),
            approved_at,
            expires_at: answer.expires_at,
            idempotency_key: Some(idempotency_key.to_owned()),
            claim_token: answer.claim.as_ref().map(|c| c.token.clone()),
            lease_expires_at: answer.claim.as_ref().map(|c| c.lease_until),
            completed_seq: answer.completed_seq,
            ledger_seq: answer.ledger_seq,
            kill_switch: answer.kill_switch,
            latency_ms: answer.decision_latency_us / 1000,
        }
    }

    /// The answer as the domain has it; `Err(text)` for a status this version does not know.
    pub fn into_answer(self) -> Result<GuardAnswer, String> {
        let status = match self.status {
            Lenient::Known(status) => status,
            Lenient::Unknown(text) => return Err(text),
        };
        let claim = self.claim_token.map(|token| Claim {
            token,
            lease_until: self.lease_expires_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        });
        Ok(GuardAnswer {
            status,
            reason: self.reason,
            policy_id: self.policy_id,
            approval_id: self.approval_id,
            approver: self.approver,
            // Only a human's approval has a time worth keeping; an allow's is the server's clock.
            approved_at: self.approved_at.filter(|_| status == GuardStatus::Approved),
            expires_at: self.expires_at,
            claim,
            completed_seq: self.completed_seq,
            decision_latency_us: self.latency_ms.saturating_mul(1000),
            ledger_seq: self.ledger_seq,
            kill_switch: self.kill_switch,
        })
    }
}

/// E3 `action/guard/report`. The official SDKs also send `action` and `agent_id`, which the key's claim makes
/// redundant and are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReportBody {
    /// The key guarded.
    pub idempotency_key: String,
    /// How the body ended (`failure` reads as `error`).
    pub outcome: Outcome,
    /// A short error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The claim token from the guard's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
    /// How long the body ran, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_latency_us: Option<u64>,
    /// Safe references to what the body touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<String>,
    /// Whether the decision came from the authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_status: Option<ProofStatus>,
    /// Params sent as digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
    /// For an LLM call: the model and token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<LlmUsage>,
}

impl From<&OutcomeReport> for GuardReportBody {
    fn from(report: &OutcomeReport) -> Self {
        Self {
            idempotency_key: report.idempotency_key.clone(),
            outcome: report.outcome,
            error: report.error.clone(),
            claim_token: report.claim_token.clone(),
            body_latency_us: report
                .body_latency
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            resource_refs: report.resource_refs.clone(),
            proof_status: Some(report.proof_status),
            redacted_fields: report.redacted_fields.clone(),
            usage: report.usage.clone(),
        }
    }
}

impl From<GuardReportBody> for OutcomeReport {
    fn from(body: GuardReportBody) -> Self {
        let mut report = OutcomeReport::new(body.idempotency_key, body.outcome);
        report.claim_token = body.claim_token;
        report.error = body.error;
        report.body_latency = body.body_latency_us.map(Duration::from_micros);
        report.resource_refs = body.resource_refs;
        report.redacted_fields = body.redacted_fields;
        report.usage = body.usage;
        report.proof_status = body.proof_status.unwrap_or_default();
        report
    }
}

/// E3's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardReportReply {
    /// Always `true`.
    pub ok: bool,
    /// The ledger record of the outcome.
    pub ledger_seq: u64,
    /// The key's state after the report.
    pub state: KeyState,
    /// The same outcome had already been recorded; nothing new was written.
    pub duplicate: bool,
}

/// E4 `action/report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReportBody {
    /// The check's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The agent; absent means the key's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The action (`""` when the SDK was given none).
    #[serde(default)]
    pub action: String,
    /// `success`, `error`, `failure`, ...
    pub status: String,
    /// The decision the caller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The policy the caller was told about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// What the caller's code returned; only its `error` text is kept (the rest may be a raw payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl From<&CheckReport> for CheckReportBody {
    fn from(report: &CheckReport) -> Self {
        Self {
            request_id: report.request_id.clone(),
            agent_id: Some(report.agent_id.clone()),
            action: report.action.clone(),
            status: report.status.clone(),
            decision: report.decision,
            policy_id: report.policy_id.clone(),
            result: report
                .error
                .as_ref()
                .map(|error| serde_json::json!({ "error": error })),
        }
    }
}

impl CheckReportBody {
    /// The report, acting as `agent_id`.
    pub fn into_report(self, agent_id: String) -> CheckReport {
        let error = self
            .result
            .as_ref()
            .and_then(|result| result.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        CheckReport {
            request_id: self.request_id,
            agent_id,
            action: self.action,
            status: self.status,
            decision: self.decision,
            policy_id: self.policy_id,
            error,
        }
    }
}

/// E4's answer (and, with `duplicate`, the answer to delivered fail-open evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedReply {
    /// Always `true`.
    pub ok: bool,
    /// The ledger record.
    pub ledger_seq: u64,
    /// The evidence had already been delivered; nothing new was written.
    #[serde(default)]
    pub duplicate: bool,
}

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
        }
    }
}

/// E8 `heartbeat`'s answer: `OK`, `PAUSE` or `KILL` (the official SDKs compare the exact uppercase strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The state, in the heartbeat's words.
    pub status: String,
    /// Why, when not running.
    #[serde(default)]
    pub reason: Option<String>,
}

impl HeartbeatReply {
    /// The answer for `state`.
    pub fn new(state: KillState, reason: Option<String>) -> Self {
        let status = match state {
            KillState::Run => "OK",
            KillState::Pause => "PAUSE",
            KillState::Kill => "KILL",
        };
        Self {
            status: status.to_owned(),
            reason,
        }
    }

    /// The state it says; `None` for a status this version does not know.
    pub fn state(&self) -> Option<KillState> {
        KillState::parse(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rejected_status_reads_as_denied_and_an_unknown_one_is_kept() {
        let reply: GuardReply = serde_json::from_value(json!({"status": "rejected"})).unwrap();
        assert_eq!(reply.status, Lenient::Known(GuardStatus::Denied));
        let reply: GuardReply = serde_json::from_value(json!({"status": "quarantined"})).unwrap();
        assert_eq!(reply.into_answer(), Err("quarantined".to_owned()));
    }

    #[test]
    fn an_unknown_decision_is_a_denial() {
        let reply: CheckReply =
            serde_json::from_value(json!({"decision": "QUARANTINE", "approval_id": "apr_1"}))
                .unwrap();
        let answer = reply.into_answer(Some("req_1".into()));
        assert_eq!(answer.decision, Decision::Deny);
        assert_eq!(answer.approval_id, None);
        assert_eq!(answer.request_id, "req_1");
    }

    #[test]
    fn params_and_context_are_both_read() {
        let body: CheckBody = serde_json::from_value(
            json!({"action": "x.y", "context": {"a": 1, "b": 1}, "params": {"b": 2}}),
        )
        .unwrap();
        let request = body.into_request("bot".into());
        assert_eq!(
            request.action.params,
            *json!({"a": 1, "b": 2}).as_object().unwrap()
        );
    }

    #[test]
    fn stream_events_of_unknown_types_are_other() {
        let event: StreamEvent = serde_json::from_value(json!({"type": "PING", "n": 1})).unwrap();
        assert_eq!(event, StreamEvent::Other);
        let connected = serde_json::to_value(StreamEvent::Connected).unwrap();
        assert_eq!(connected, json!({"type": "CONNECTED"}));
    }
}
