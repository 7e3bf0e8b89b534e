//! What a caller reports after a guarded body ran: its outcome, and evidence of actions run fail-open.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::identity::canonical_name;
use crate::key_state::KeyState;
use crate::limits::{MAX_ERROR_TEXT, MAX_KEY_LEN, MAX_NAME_LEN};
use crate::validate::{
    truncate_chars, validate_action, validate_fields, validate_refs, validate_text,
};

/// How a guarded body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The body returned success: the key is completed and never runs again.
    Success,
    /// The body returned an error: the claim is released so a retry may run it (the official SDKs' `failure`
    /// reads as this).
    #[serde(alias = "failure")]
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

    /// Parses the wire form; the official SDKs' `failure` means `error`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Outcome::Success),
            "error" | "failure" => Some(Outcome::Error),
            "aborted" => Some(Outcome::Aborted),
            "panicked" => Some(Outcome::Panicked),
            "cancelled" => Some(Outcome::Cancelled),
            _ => None,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the evidence was produced under the authority's decision (`Verified`) or by a client that ran the
/// action without reaching the authority (`Unverified`, fail-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProofStatus {
    /// Decided by the authority.
    #[default]
    Verified,
    /// Ran without the authority's decision.
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

/// The outcome of a guarded body, reported once after it ran.
///
/// ```
/// use haltstate_types::{Outcome, OutcomeReport};
/// use std::time::Duration;
///
/// let report = OutcomeReport::new("refund:1042", Outcome::Success).body_latency(Duration::from_millis(12));
/// assert_eq!(report.outcome, Outcome::Success);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// The guarded key.
    pub idempotency_key: String,
    /// The agent whose key it is (keys are scoped per agent). Without one, the key's only agent is meant: a key
    /// that several agents use must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The claim token from the guard's answer. A claim can only be reported with it, except one granted to a
    /// guard that sent no token of its own (the official SDKs send none on guard or report): that one the same
    /// API key may report without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
    /// The id of the API key reporting, set by the server from the credentials (never from a body).
    #[serde(skip)]
    pub caller_key: Option<String>,
    /// How the body ended.
    pub outcome: Outcome,
    /// A short error text; cut to [`MAX_ERROR_TEXT`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the body ran.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_micros"
    )]
    pub body_latency: Option<Duration>,
    /// Safe references to what the body produced or touched (`refund:re_123`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<String>,
    /// Whether the decision behind this run came from the authority.
    #[serde(default)]
    pub proof_status: ProofStatus,
    /// Names of params the client replaced by a keyed digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
    /// For an LLM call: the model and token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<LlmUsage>,
}

impl OutcomeReport {
    /// A report with no details beyond the outcome.
    pub fn new(idempotency_key: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            idempotency_key: idempotency_key.into(),
            agent_id: None,
            claim_token: None,
            caller_key: None,
            outcome,
            error: None,
            body_latency: None,
            resource_refs: Vec::new(),
            proof_status: ProofStatus::Verified,
            redacted_fields: Vec::new(),
            usage: None,
        }
    }

    /// Names the agent whose key it is.
    pub fn agent(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// Sets the claim token from the guard's answer.
    pub fn claim_token(mut self, token: impl Into<String>) -> Self {
        self.claim_token = Some(token.into());
        self
    }

    /// Sets the id of the API key reporting.
    pub fn caller_key(mut self, key_id: impl Into<String>) -> Self {
        self.caller_key = Some(key_id.into());
        self
    }

    /// Sets the error text.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Sets how long the body ran.
    pub fn body_latency(mut self, latency: Duration) -> Self {
        self.body_latency = Some(latency);
        self
    }

    /// Adds a safe resource reference.
    pub fn resource_ref(mut self, reference: impl Into<String>) -> Self {
        self.resource_refs.push(reference.into());
        self
    }

    /// Checks every bound and cuts the error text.
    pub fn validated(mut self) -> Result<Self> {
        validate_text("idempotency_key", &self.idempotency_key, MAX_KEY_LEN)?;
        self.agent_id = self
            .agent_id
            .map(|agent| canonical_name("agent_id", &agent))
            .transpose()?;
        if let Some(token) = &self.claim_token {
            validate_text("claim_token", token, MAX_KEY_LEN)?;
        }
        validate_refs(&self.resource_refs)?;
        validate_fields(&self.redacted_fields)?;
        if let Some(usage) = &self.usage {
            validate_text("usage.model", &usage.model, MAX_NAME_LEN)?;
        }
        self.error = self.error.map(|text| truncate_chars(&text, MAX_ERROR_TEXT));
        Ok(self)
    }
}

/// What an LLM call consumed, recorded with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmUsage {
    /// Tokens in the completion.
    pub completion_tokens: u64,
    /// The model that answered.
    pub model: String,
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

/// Evidence of an action a client ran fail-open, without the authority's decision, delivered once the
/// authority answers again. Recorded once per `evidence_id`, however often it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnverifiedOutcome {
    /// The client's unique id for this evidence.
    pub evidence_id: String,
    /// The agent.
    pub agent_id: String,
    /// The action.
    pub action: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// How the body ended.
    pub outcome: Outcome,
    /// Why the client ran without a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short error text from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the body ran.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_micros"
    )]
    pub body_latency: Option<Duration>,
    /// Safe references to what was acted on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<String>,
    /// Params the client sent as digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
    /// When it happened, on the client's clock.
    #[serde(with = "crate::timestamp::rfc3339")]
    pub occurred_at: time::OffsetDateTime,
}

impl UnverifiedOutcome {
    /// Checks every bound and cuts the error text.
    pub fn validated(mut self) -> Result<Self> {
        validate_text("evidence_id", &self.evidence_id, MAX_KEY_LEN)?;
        self.agent_id = canonical_name("agent_id", &self.agent_id)?;
        validate_action(&self.action)?;
        validate_text("idempotency_key", &self.idempotency_key, MAX_KEY_LEN)?;
        validate_refs(&self.resource_refs)?;
        validate_fields(&self.redacted_fields)?;
        self.error = self.error.map(|text| truncate_chars(&text, MAX_ERROR_TEXT));
        self.reason = self
            .reason
            .map(|text| truncate_chars(&text, MAX_ERROR_TEXT));
        Ok(self)
    }
}

/// What the authority answers an outcome report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportAck {
    /// The ledger record of the outcome.
    pub ledger_seq: u64,
    /// The key's state after the report: `completed` or `failed`.
    pub state: KeyState,
    /// The same outcome had already been recorded (a retried report); nothing new was written.
    pub duplicate: bool,
}

/// `Option<Duration>` as integer microseconds.
mod duration_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_truncated() {
        let report = OutcomeReport::new("k", Outcome::Error)
            .error("é".repeat(2 * MAX_ERROR_TEXT))
            .validated()
            .unwrap();
        assert_eq!(report.error.unwrap().chars().count(), MAX_ERROR_TEXT + 1);
    }
}
