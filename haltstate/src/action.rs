//! What a caller asks to do: the action, its idempotency key, and only the safe params it names.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use haltstate_types::KeyLifetime;

use crate::fail_mode::FailMode;
use crate::redact::Secret;

/// A value given to [`Action::param`]: anything `Serialize`, or a [`Secret`].
pub trait IntoParam {
    #[doc(hidden)]
    fn into_param(self) -> Param;
}

/// A param as the action holds it.
#[doc(hidden)]
#[derive(Clone, PartialEq)]
pub enum Param {
    /// Sent as is.
    Plain(Result<Value, String>),
    /// Sent as a keyed digest.
    Secret(Secret),
    /// Already reduced by the caller to a safe form (a length and a digest, say): sent as is, listed as redacted.
    Reduced(Value),
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Plain(Ok(value)) => write!(f, "{value}"),
            Param::Plain(Err(e)) => write!(f, "<unserializable: {e}>"),
            Param::Secret(_) => f.write_str("<secret>"),
            Param::Reduced(value) => write!(f, "<reduced: {value}>"),
        }
    }
}

impl<T: Serialize> IntoParam for T {
    fn into_param(self) -> Param {
        Param::Plain(serde_json::to_value(self).map_err(|e| e.to_string()))
    }
}

impl IntoParam for Secret {
    fn into_param(self) -> Param {
        Param::Secret(self)
    }
}

/// One action to check or guard.
///
/// ```
/// use haltstate::Action;
///
/// let refund = Action::new("refund.create")
///     .agent("billing-agent")
///     .key("refund:order-1042")
///     .resource("order:1042")
///     .param("amount_cents", 4_500)
///     .risk("money");
/// assert_eq!(refund.name(), "refund.create");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub(crate) name: String,
    pub(crate) agent_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) lifetime: KeyLifetime,
    pub(crate) params: Vec<(String, Param)>,
    pub(crate) resource: Option<String>,
    pub(crate) risk: Option<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) fail_mode: Option<FailMode>,
    pub(crate) request_id: Option<String>,
}

impl Action {
    /// An action named `name` (`refund.create`, `llm.ask`, ...).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            agent_id: None,
            idempotency_key: None,
            lifetime: KeyLifetime::Once,
            params: Vec::new(),
            resource: None,
            risk: None,
            metadata: None,
            fail_mode: None,
            request_id: None,
        }
    }

    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who acts (defaults to the client's agent id).
    pub fn agent(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// The idempotency key: required for [`guard`](crate::HaltStateClient::guard). The same key is the same
    /// operation forever; derive it from what makes the side effect unique (`refund:<order id>`).
    pub fn key(mut self, idempotency_key: impl Into<String>) -> Self {
        self.idempotency_key = Some(idempotency_key.into());
        self
    }

    /// How long the key names one operation: [`KeyLifetime::Once`] (the default: forever) or
    /// [`KeyLifetime::Operation`] (until that operation has completed, failed, expired, or its rejection's
    /// window closed; the next guard under the key is then a new operation, decided afresh). The guard macros
    /// give a key they derive from the arguments `Operation`, unless the attribute says `once`.
    ///
    /// ```
    /// use haltstate::{Action, KeyLifetime};
    ///
    /// // A nightly export: one run at a time, and a run every night.
    /// let export = Action::new("records.export")
    ///     .key("export:nightly")
    ///     .key_lifetime(KeyLifetime::Operation);
    /// # let _ = export;
    /// ```
    pub fn key_lifetime(mut self, lifetime: KeyLifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Adds a param the caller has already reduced to what may leave the process (the length and a digest of a
    /// long text, say): sent as given, and listed in the evidence as redacted, like a [`secret`](crate::secret).
    ///
    /// ```
    /// use haltstate::Action;
    /// use serde_json::json;
    ///
    /// let write = Action::new("mcp.files.write_file")
    ///     .key("write:notes")
    ///     .reduced_param("content", json!({"length": 52_114, "sha256": "9f86d081884c7d65"}));
    /// # let _ = write;
    /// ```
    pub fn reduced_param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.params.push((name.into(), Param::Reduced(value)));
        self
    }

    /// Adds one safe param for policy. Only params named here leave the process.
    pub fn param(mut self, name: impl Into<String>, value: impl IntoParam) -> Self {
        self.params.push((name.into(), value.into_param()));
        self
    }

    /// The resource acted on (`order:1042`).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// A risk flag (`money`, `pii`).
    pub fn risk(mut self, risk: impl Into<String>) -> Self {
        self.risk = Some(risk.into());
        self
    }

    /// Context shown to a human approver; not seen by policy.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Overrides the client's fail mode for this call.
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = Some(mode);
        self
    }

    /// A correlation id for a check (the same id finds the same approval).
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The param values that must not appear in error texts sent in reports.
    pub(crate) fn sensitive_values(&self) -> Vec<String> {
        self.params
            .iter()
            .filter_map(|(_, p)| match p {
                Param::Secret(s) => Some(s.expose().to_owned()),
                Param::Plain(Ok(Value::String(s))) => Some(s.clone()),
                Param::Plain(Ok(Value::Number(n))) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }
}
