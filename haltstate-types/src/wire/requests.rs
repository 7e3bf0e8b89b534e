//! What callers send on the wire contract (E1-E4): tolerant on input, and the conversions to and from the
//! domain's requests, so a request has one shape on each side of the wire.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::action::ActionRequest;
use crate::check::{CheckReport, CheckRequest};
use crate::decision::Decision;
use crate::guard::GuardRequest;
use crate::key_lifetime::KeyLifetime;
use crate::report::{LlmUsage, Outcome, OutcomeReport, ProofStatus};

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
    /// How long the key names one operation (our extension): `once` (the default, and what the official SDKs
    /// mean) or `operation` (until it ends; then the next guard starts the key's next generation).
    #[serde(default, skip_serializing_if = "KeyLifetime::is_once")]
    pub key_lifetime: KeyLifetime,
    /// The caller's claim token (our extension; the official SDKs send none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
}

impl From<&GuardRequest> for GuardBody {
    fn from(request: &GuardRequest) -> Self {
        Self {
            action: ActionBody::from_action(&request.action),
            idempotency_key: request.idempotency_key.clone(),
            key_lifetime: request.lifetime,
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
        request.lifetime = self.key_lifetime;
        request
    }
}

/// E3 `action/guard/report`. The official SDKs also send `action`, which the key's claim makes redundant and is
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReportBody {
    /// The key guarded.
    pub idempotency_key: String,
    /// The agent that guarded it (keys are scoped per agent; the official SDKs send it). Checked against the
    /// key's agents like every other `agent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
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
            agent_id: report.agent_id.clone(),
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
        report.agent_id = body.agent_id;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
