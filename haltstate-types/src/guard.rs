//! A guard: the request to run an action under an idempotency key ([`GuardRequest`]), and what the authority
//! answers ([`GuardAnswer`]: the status, and the claim a caller holds while it runs the body).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::action::ActionRequest;
use crate::error::Result;
use crate::key_lifetime::KeyLifetime;
use crate::kill_switch::KillState;
use crate::limits::MAX_KEY_LEN;
use crate::timestamp::rfc3339;
use crate::validate::validate_text;

/// The guard's answer, in the wire contract's vocabulary plus our two additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStatus {
    /// Policy allowed; the caller holds the claim and may run the body.
    Allowed,
    /// A human approved; the caller holds the claim and may run the body.
    Approved,
    /// Policy, a human or the kill switch denied (a human's rejection too: `rejected` reads as this).
    #[serde(alias = "rejected")]
    Denied,
    /// Waiting for a human; exit and retry later with the same key.
    Pending,
    /// The approval window closed; a new attempt needs a new key.
    Expired,
    /// This key already ran successfully (our extension).
    Completed,
    /// Another worker holds the claim right now (our extension).
    InProgress,
}

impl GuardStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStatus::Allowed => "allowed",
            GuardStatus::Approved => "approved",
            GuardStatus::Denied => "denied",
            GuardStatus::Pending => "pending",
            GuardStatus::Expired => "expired",
            GuardStatus::Completed => "completed",
            GuardStatus::InProgress => "in_progress",
        }
    }

    /// Whether the caller may run the body.
    pub fn may_run(self) -> bool {
        matches!(self, GuardStatus::Allowed | GuardStatus::Approved)
    }
}

impl fmt::Display for GuardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claim a caller holds while it runs the body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Proof of holding the claim; send it with the outcome report.
    pub token: String,
    /// When the claim lapses and another worker may re-claim the key.
    #[serde(with = "rfc3339")]
    pub lease_until: OffsetDateTime,
}

/// The token is a capability (whoever holds it may report the claim's outcome), so `Debug` does not show it.
impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("token", &"<redacted>")
            .field("lease_until", &self.lease_until)
            .finish()
    }
}

/// What the authority answers a guard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardAnswer {
    /// The answer.
    pub status: GuardStatus,
    /// Why.
    pub reason: String,
    /// The deciding policy, when policy decided.
    pub policy_id: Option<String>,
    /// The approval behind a pending, approved, rejected or expired answer.
    pub approval_id: Option<String>,
    /// Who approved (or rejected).
    pub approver: Option<String>,
    /// When it was approved.
    #[serde(with = "rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    /// When a pending approval's window closes.
    #[serde(with = "rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The claim, when the caller may run the body.
    pub claim: Option<Claim>,
    /// For `completed`: the ledger record of the successful outcome.
    pub completed_seq: Option<u64>,
    /// Which operation under the key this answer is about, from 1: a key whose lifetime is `operation` starts
    /// its next generation once the last one has ended; a `once` key stays at 1.
    pub generation: u64,
    /// Time policy took, in microseconds (0 when policy did not run).
    pub decision_latency_us: u64,
    /// The ledger record of this answer.
    pub ledger_seq: u64,
    /// Set when the kill switch denied the guard: the state that did.
    pub kill_switch: Option<KillState>,
}

/// A guard: an action bound to an idempotency key, which the authority claims for the caller when allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardRequest {
    /// The action.
    #[serde(flatten)]
    pub action: ActionRequest,
    /// The key that makes retries safe: the same key is the same operation, forever or (see
    /// [`lifetime`](Self::lifetime)) until that operation ends.
    pub idempotency_key: String,
    /// How long the key names one operation; `once` (forever) unless the caller says otherwise.
    #[serde(
        default,
        rename = "key_lifetime",
        skip_serializing_if = "KeyLifetime::is_once"
    )]
    pub lifetime: KeyLifetime,
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
            lifetime: KeyLifetime::Once,
            claim_token: None,
            caller_key: None,
        }
    }

    /// Sets how long the key names one operation (see [`KeyLifetime`]).
    pub fn lifetime(mut self, lifetime: KeyLifetime) -> Self {
        self.lifetime = lifetime;
        self
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
    pub fn normalize(&mut self) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_debug_hides_the_token() {
        let claim = Claim {
            token: "ct_capability_do_not_print".into(),
            lease_until: OffsetDateTime::UNIX_EPOCH,
        };
        let shown = format!("{claim:?}");
        assert!(!shown.contains("ct_capability_do_not_print"), "{shown}");
        assert!(shown.contains("lease_until"), "{shown}");
    }
}
