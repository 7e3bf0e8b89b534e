//! What a caller asks the authority about one action: its safe context, and the fingerprint that binds a key to
//! it. (A guard of it under an idempotency key is `guard.rs`.)
//!
//! Only safe context crosses this boundary: ids, normalized amounts, action names, risk flags. Every field is
//! bounded ([`crate::limits`]). One normalisation ([`ActionRequest::normalize`]) serves every entry point, so the
//! same action fingerprints the same whichever way it arrives.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_bytes;
use crate::error::{Result, invalid};
use crate::identity::canonical_name;
use crate::limits::{MAX_KEY_LEN, MAX_RISK_LEN};
use crate::validate::{validate_action, validate_fields, validate_object, validate_text};

/// The safe context of one action, as policy sees it.
///
/// ```
/// use haltstate_types::ActionRequest;
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
        if let Some(risk) = &self.risk
            && (risk.len() > MAX_RISK_LEN || risk.chars().any(char::is_control))
        {
            return Err(invalid(format!(
                "risk must be at most {MAX_RISK_LEN} bytes without control characters"
            )));
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
    pub fn normalize(&mut self) -> Result<()> {
        self.agent_id = canonical_name("agent_id", &self.agent_id)?;
        if self.risk.as_deref() == Some("") {
            self.risk = None;
        }
        self.validate()
    }
}

/// SHA-256 (hex) of the canonical JSON of `{agent, action, resource, params, risk}`.
pub fn fingerprint(request: &ActionRequest) -> Result<String> {
    let value = json!({
        "agent": request.agent_id,
        "action": request.action,
        "resource": request.resource,
        "params": request.params,
        "risk": request.risk,
    });
    Ok(hex::encode(Sha256::digest(to_canonical_bytes(&value)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;
    use crate::limits::{MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH};

    #[test]
    fn deep_params_are_refused() {
        let mut deep = json!(1);
        for _ in 0..=MAX_PARAMS_DEPTH {
            deep = json!({ "x": deep });
        }
        let request = ActionRequest::new("a", "x.y").param("deep", deep);
        assert!(
            matches!(request.validate(), Err(RequestError::Invalid(m)) if m.contains("nesting"))
        );
    }

    #[test]
    fn huge_params_are_refused() {
        let request =
            ActionRequest::new("a", "x.y").param("blob", json!("x".repeat(MAX_PARAMS_BYTES)));
        assert!(request.validate().is_err());
    }

    #[test]
    fn normalisation_canonicalises_the_agent_and_drops_an_empty_risk() {
        let mut request = ActionRequest::new("Billing", "x.y").risk("");
        request.normalize().unwrap();
        assert_eq!(
            (request.agent_id.as_str(), request.risk.as_deref()),
            ("billing", None)
        );
        assert_eq!(
            fingerprint(&request).unwrap(),
            fingerprint(&ActionRequest::new("billing", "x.y")).unwrap()
        );
    }

    #[test]
    fn fingerprint_ignores_param_order_and_metadata_but_not_values() {
        let a = ActionRequest::new("agent", "refund.create")
            .param("x", json!(1))
            .param("y", json!(2));
        let b = ActionRequest::new("agent", "refund.create")
            .param("y", json!(2))
            .param("x", json!(1.0))
            .metadata(serde_json::Map::new());
        assert_eq!(fingerprint(&a).unwrap(), fingerprint(&b).unwrap());
        let c = a.clone().param("x", json!(3));
        assert_ne!(fingerprint(&a).unwrap(), fingerprint(&c).unwrap());
        assert_ne!(
            fingerprint(&a).unwrap(),
            fingerprint(&a.clone().resource("order:1")).unwrap()
        );
        assert_ne!(
            fingerprint(&a).unwrap(),
            fingerprint(&a.clone().risk("money")).unwrap()
        );
    }
}
