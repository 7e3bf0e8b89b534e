//! What a caller asks the authority: the safe context of one action, and the outcome it reports afterwards.
//!
//! Only safe context crosses this boundary: ids, normalized amounts, action names, risk flags. Every field is
//! bounded so a hostile caller cannot grow the database or the ledger without limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{AuthorityError, Result};
use crate::identity::canonical_name;

/// Longest accepted tenant id, agent id or action name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest accepted idempotency key, resource reference or request id, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest accepted risk flag, in bytes.
pub const MAX_RISK_LEN: usize = 64;
/// Largest accepted params (or metadata) object, as canonical JSON bytes.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;
/// Deepest accepted nesting of params (or metadata).
pub const MAX_PARAMS_DEPTH: usize = 16;
/// Error texts in outcome reports are cut to this many characters.
pub const MAX_ERROR_TEXT: usize = 512;

/// The safe context of one action, as policy sees it.
///
/// ```
/// use haltstate_authority::ActionRequest;
/// use serde_json::json;
///
/// let request = ActionRequest::new("billing-agent", "refund.create")
///     .resource("order:1042")
///     .param("amount_cents", json!(4_500))
///     .risk("money");
/// assert!(request.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Who acts: becomes the Cedar principal `Agent::"<agent_id>"`.
    pub agent_id: String,
    /// What it does: becomes `Action::"<action>"`.
    pub action: String,
    /// What it acts on: becomes `Resource::"<resource>"`, or `Resource::"none"` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The safe parameters: `context.params` in policy.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// A risk flag such as `"money"` or `"pii"`: `context.risk` (empty when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// Context for a human approver; never seen by policy and not part of the idempotency fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Names of params the client replaced by a keyed digest (recorded as the redaction status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
}

impl ActionRequest {
    /// A request with no resource, params or risk.
    pub fn new(agent_id: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            agent_id: agent_id.into(),
            action: action.into(),
            resource: None,
            params: Map::new(),
            risk: None,
            metadata: None,
            redacted_fields: Vec::new(),
        }
    }

    /// Sets the resource reference.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Adds one safe parameter.
    pub fn param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.params.insert(name.into(), value);
        self
    }

    /// Replaces all parameters.
    pub fn params(mut self, params: Map<String, Value>) -> Self {
        self.params = params;
        self
    }

    /// Sets the risk flag.
    pub fn risk(mut self, risk: impl Into<String>) -> Self {
        self.risk = Some(risk.into());
        self
    }

    /// Sets approver context.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Checks every bound; the authority calls this (through its normalisation) before doing anything else.
    pub fn validate(&self) -> Result<()> {
        canonical_name("agent_id", &self.agent_id)?;
        validate_action(&self.action)?;
        if let Some(resource) = &self.resource {
            validate_text("resource", resource, MAX_KEY_LEN)?;
        }
        if let Some(risk) = &self.risk {
            if risk.len() > MAX_RISK_LEN || risk.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "risk must be at most {MAX_RISK_LEN} bytes without control characters"
                )));
            }
        }
        validate_object("params", &self.params)?;
        validate_fields(&self.redacted_fields)?;
        if let Some(metadata) = &self.metadata {
            validate_object("metadata", metadata)?;
        }
        Ok(())
    }

    /// The one normalisation every entry point applies before validating: the agent's canonical name, and no
    /// empty risk flag (absent and empty are the same to policy, so they must fingerprint the same).
    pub(crate) fn normalize(&mut self) -> Result<()> {
        self.agent_id = canonical_name("agent_id", &self.agent_id)?;
        if self.risk.as_deref() == Some("") {
            self.risk = None;
        }
        self.validate()
    }
}

/// A guard: an action bound to an idempotency key, which the authority claims for the caller when allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRequest {
    /// The action.
    #[serde(flatten)]
    pub action: ActionRequest,
    /// The key that makes retries safe: the same key is the same operation, forever.
    pub idempotency_key: String,
    /// A token the caller chose for the claim. A retried guard with the same token gets the same claim back
    /// (its first answer may have been lost) instead of `in_progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_token: Option<String>,
    /// The id of the API key asking, set by the server from the credentials (never from a body). A claim granted
    /// to a caller that sent no claim token can be reported without one by this key only.
    #[serde(skip)]
    pub caller_key: Option<String>,
}

impl GuardRequest {
    /// A guard for `action` under `idempotency_key`.
    pub fn new(action: ActionRequest, idempotency_key: impl Into<String>) -> Self {
        Self {
            action,
            idempotency_key: idempotency_key.into(),
            claim_token: None,
            caller_key: None,
        }
    }

    /// Sets the id of the API key asking (see [`caller_key`](Self::caller_key)).
    pub fn caller_key(mut self, key_id: impl Into<String>) -> Self {
        self.caller_key = Some(key_id.into());
        self
    }

    /// Sets the caller's claim token (see [`claim_token`](Self::claim_token)).
    pub fn claim_token(mut self, token: impl Into<String>) -> Self {
        self.claim_token = Some(token.into());
        self
    }

    /// Normalises the action and checks every bound.
    pub(crate) fn normalize(&mut self) -> Result<()> {
        self.action.normalize()?;
        self.validate()
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<()> {
        self.action.validate()?;
        if let Some(token) = &self.claim_token {
            validate_text("claim_token", token, MAX_KEY_LEN)?;
        }
        validate_text("idempotency_key", &self.idempotency_key, MAX_KEY_LEN)
    }
}

/// How a guarded body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The body returned success: the key is completed and never runs again.
    Success,
    /// The body returned an error: the claim is released so a retry may run it.
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

/// The outcome of a guarded body, reported once after it ran.
///
/// ```
/// use haltstate_authority::{Outcome, OutcomeReport};
/// use std::time::Duration;
///
/// let report = OutcomeReport::new("refund:1042", Outcome::Success).body_latency(Duration::from_millis(12));
/// assert_eq!(report.outcome, Outcome::Success);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeReport {
    /// The guarded key.
    pub idempotency_key: String,
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
    pub(crate) fn validated(mut self) -> Result<Self> {
        validate_text("idempotency_key", &self.idempotency_key, MAX_KEY_LEN)?;
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
    pub(crate) fn validated(mut self) -> Result<Self> {
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

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn validate_refs(references: &[String]) -> Result<()> {
    if references.len() > 32 {
        return Err(invalid("at most 32 resource_refs".into()));
    }
    references
        .iter()
        .try_for_each(|reference| validate_text("resource_refs", reference, MAX_KEY_LEN))
}

fn validate_fields(fields: &[String]) -> Result<()> {
    if fields.len() > 64 {
        return Err(invalid("at most 64 redacted_fields".into()));
    }
    fields
        .iter()
        .try_for_each(|field| validate_text("redacted_fields", field, MAX_NAME_LEN))
}

fn invalid(message: String) -> AuthorityError {
    AuthorityError::InvalidRequest(message)
}

/// A non-empty string of at most `max` bytes with no control characters.
pub(crate) fn validate_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(invalid(format!("{field} must be at most {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// A tenant or agent id.
pub(crate) fn validate_name(field: &str, value: &str) -> Result<()> {
    validate_text(field, value, MAX_NAME_LEN)
}

/// Action names are dotted identifiers: `refund.create`, `llm.ask`, `data:export`.
pub(crate) fn validate_action(action: &str) -> Result<()> {
    validate_text("action", action, MAX_NAME_LEN)?;
    let valid = action
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
        && action.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(invalid(format!(
            "action {action:?} must start with a letter, digit or `_` and hold only letters, digits and `._-:/`"
        )));
    }
    Ok(())
}

fn validate_object(field: &str, map: &Map<String, Value>) -> Result<()> {
    let mut size = 0usize;
    for (key, value) in map {
        size += key.len() + 3;
        measure(value, 1, &mut size).map_err(|why| invalid(format!("{field}: {why}")))?;
    }
    if size > MAX_PARAMS_BYTES {
        return Err(invalid(format!(
            "{field} must be at most {MAX_PARAMS_BYTES} bytes"
        )));
    }
    Ok(())
}

fn measure(value: &Value, depth: usize, size: &mut usize) -> std::result::Result<(), String> {
    if depth > MAX_PARAMS_DEPTH {
        return Err(format!("nesting deeper than {MAX_PARAMS_DEPTH}"));
    }
    if *size > MAX_PARAMS_BYTES {
        return Err(format!("larger than {MAX_PARAMS_BYTES} bytes"));
    }
    match value {
        Value::Null | Value::Bool(_) => *size += 5,
        Value::Number(_) => *size += 20,
        Value::String(s) => *size += s.len() + 2,
        Value::Array(items) => {
            for item in items {
                *size += 1;
                measure(item, depth + 1, size)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                *size += key.len() + 3;
                measure(item, depth + 1, size)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn action_names_are_dotted_identifiers() {
        assert!(validate_action("refund.create").is_ok());
        assert!(validate_action("llm.ask").is_ok());
        assert!(validate_action("Refund Create").is_err());
        assert!(validate_action("").is_err());
        assert!(validate_action(".hidden").is_err());
        assert!(validate_action(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn deep_params_are_refused() {
        let mut deep = json!(1);
        for _ in 0..=MAX_PARAMS_DEPTH {
            deep = json!({ "x": deep });
        }
        let request = ActionRequest::new("a", "x.y").param("deep", deep);
        assert!(
            matches!(request.validate(), Err(AuthorityError::InvalidRequest(m)) if m.contains("nesting"))
        );
    }

    #[test]
    fn huge_params_are_refused() {
        let request =
            ActionRequest::new("a", "x.y").param("blob", json!("x".repeat(MAX_PARAMS_BYTES)));
        assert!(request.validate().is_err());
    }

    #[test]
    fn error_text_is_truncated() {
        let report = OutcomeReport::new("k", Outcome::Error)
            .error("é".repeat(2 * MAX_ERROR_TEXT))
            .validated()
            .unwrap();
        assert_eq!(report.error.unwrap().chars().count(), MAX_ERROR_TEXT + 1);
    }
}
