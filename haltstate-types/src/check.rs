//! Checks: a decision without a claim, for callers that branch on the answer themselves.

use serde::{Deserialize, Serialize};

use crate::action::ActionRequest;
use crate::decision::Decision;
use crate::error::{Result, invalid};
use crate::identity::canonical_name;
use crate::limits::{MAX_ERROR_TEXT, MAX_KEY_LEN, MAX_NAME_LEN};
use crate::validate::{truncate_chars, validate_action, validate_text};

/// A check: the action, and optionally the caller's request id (the same id finds the same approval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The action.
    #[serde(flatten)]
    pub action: ActionRequest,
    /// The caller's correlation id; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl CheckRequest {
    /// A check of `action`.
    pub fn new(action: ActionRequest) -> Self {
        Self {
            action,
            request_id: None,
        }
    }

    /// Sets the caller's request id.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Normalises the action and checks every bound.
    pub fn normalize(&mut self) -> Result<()> {
        self.action.normalize()?;
        match &self.request_id {
            Some(id) => validate_text("request_id", id, MAX_KEY_LEN),
            None => Ok(()),
        }
    }
}

/// What the authority answers a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckAnswer {
    /// The decision.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// For APPROVAL_REQUIRED: the approval to wait for.
    pub approval_id: Option<String>,
    /// The request id (the caller's, or one generated for it).
    pub request_id: String,
    /// Time policy took, in microseconds.
    pub decision_latency_us: u64,
    /// The ledger record of this answer.
    pub ledger_seq: u64,
}

/// What a caller reports after acting on a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The agent.
    pub agent_id: String,
    /// The action.
    #[serde(default)]
    pub action: String,
    /// Free text from the caller: `success`, `error`, `failure`, ...
    pub status: String,
    /// The decision the caller acted on.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The policy the caller was told about.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// A short error text (truncated on receipt).
    #[serde(default)]
    pub error: Option<String>,
}

/// The statuses a check report may carry (the official SDKs' free text, bounded to what they send).
const CHECK_REPORT_STATUSES: &[&str] = &[
    "success",
    "error",
    "failure",
    "aborted",
    "panicked",
    "cancelled",
];

impl CheckReport {
    /// Canonicalises the agent and checks every field as strictly as a guard's: bounded ids without control
    /// characters, a known action name and status.
    pub fn validated(mut self) -> Result<Self> {
        self.agent_id = canonical_name("agent_id", &self.agent_id)?;
        if !self.action.is_empty() {
            validate_action(&self.action)?;
        }
        if let Some(id) = &self.request_id {
            validate_text("request_id", id, MAX_KEY_LEN)?;
        }
        if let Some(id) = &self.policy_id {
            validate_text("policy_id", id, MAX_NAME_LEN)?;
        }
        self.status = self.status.to_ascii_lowercase();
        if !CHECK_REPORT_STATUSES.contains(&self.status.as_str()) {
            return Err(invalid(format!(
                "status must be one of {}",
                CHECK_REPORT_STATUSES.join(", ")
            )));
        }
        self.error = self.error.map(|e| truncate_chars(&e, MAX_ERROR_TEXT));
        Ok(self)
    }
}
