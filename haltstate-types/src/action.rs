//! What a caller asks the authority about one action: its safe context, and the fingerprint that binds a key to
//! it. (A guard of it under an idempotency key is `guard.rs`.)
//!
//! Only safe context crosses this boundary: ids, normalized amounts, action names, risk flags. Every field is
//! bounded ([`crate::limits`]). One normalisation ([`ActionRequest::normalize`]) serves every entry point, so the
//! same action fingerprints the same whichever way it arrives.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
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
    let params = String::from_utf8(to_canonical_bytes(&request.params)?)
        .map_err(|e| invalid(format!("params are not canonical JSON text: {e}")))?;
    let params = RawValue::from_string(params)
        .map_err(|e| invalid(format!("params are not canonical JSON text: {e}")))?;
    let fingerprinted = Fingerprinted {
        action: &request.action,
        agent: &request.agent_id,
        params: &params,
        resource: request.resource.as_deref(),
        risk: request.risk.as_deref(),
    };
    let bytes = serde_json::to_vec(&fingerprinted)
        .map_err(|e| invalid(format!("not representable as canonical JSON: {e}")))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// What a fingerprint covers, its fields declared in canonical (RFC 8785) key order, so that the plain
/// serialization is the canonical one: only `params`, arbitrary JSON, is canonicalised, on its own. Building a
/// `Value` of the whole (cloning the params) and canonicalising that took 2.5x as long, and the fingerprint is
/// computed for every guard. A test compares both on random requests.
#[derive(Serialize)]
struct Fingerprinted<'a> {
    action: &'a str,
    agent: &'a str,
    params: &'a RawValue,
    resource: Option<&'a str>,
    risk: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;
    use crate::limits::{MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH};
    use proptest::prelude::*;
    use serde_json::json;

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

    /// The fingerprint as first defined: the canonical bytes of one JSON object of the five fields. Stored keys
    /// carry fingerprints made this way, so the faster form must give the same bytes.
    fn reference(request: &ActionRequest) -> String {
        let value = json!({
            "agent": request.agent_id,
            "action": request.action,
            "resource": request.resource,
            "params": request.params,
            "risk": request.risk,
        });
        hex::encode(Sha256::digest(to_canonical_bytes(&value).unwrap()))
    }

    #[test]
    fn a_known_request_keeps_its_fingerprint() {
        let request = ActionRequest::new("billing-agent", "refund.create")
            .resource("order:1042")
            .param("rate", json!(1.5))
            .param("currency", json!("EUR"))
            .param("amount_cents", json!(4500.0));
        // sha256 of {"action":"refund.create","agent":"billing-agent","params":{"amount_cents":4500,
        // "currency":"EUR","rate":1.5},"resource":"order:1042","risk":null}
        let known = "ec8f199f2486f44a3538364c20df2286c76fd69b5f8b44b1fb74d1e3cf972ffe";
        assert_eq!(fingerprint(&request).unwrap(), known);
        assert_eq!(reference(&request), known);
    }

    /// The characters JSON serializers disagree on (a solidus, DEL, line and paragraph separators, control
    /// characters, HTML's specials, a non-BMP character) in every fingerprinted text, including a key.
    #[test]
    fn texts_escape_as_the_canonical_form_does() {
        let text = "a/b\u{7f}\u{2028}\u{2029}\u{1f}\u{0}<&>'\"\\\té😀\u{e000}";
        let request = ActionRequest::new(text, text)
            .resource(text)
            .risk(text)
            .param(text, json!({ text: [text, 1e21, -0.0, 1.5e-7] }));
        assert_eq!(fingerprint(&request).unwrap(), reference(&request));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((any::<String>(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any text (control characters, quotes, characters outside the BMP, whose UTF-16 order differs from
        /// UTF-8's), any numbers (floats, integers beyond 2^53), nested params in any insertion order.
        #[test]
        fn the_fingerprint_is_the_canonical_form_of_the_whole(
            agent in any::<String>(),
            action in any::<String>(),
            resource in proptest::option::of(any::<String>()),
            risk in proptest::option::of(any::<String>()),
            params in prop::collection::vec((any::<String>(), json_value()), 0..6),
        ) {
            let mut request = ActionRequest::new(agent, action);
            request.resource = resource;
            request.risk = risk;
            request.params = params.into_iter().collect();
            prop_assert_eq!(fingerprint(&request).unwrap(), reference(&request));
        }
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
