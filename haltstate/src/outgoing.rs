//! What leaves the process for one [`Action`]: the vocabulary's request, with secret params replaced by their
//! keyed digests and nothing else added. The authority normalises and validates it; this only decides what is
//! sent.

use haltstate_types::ActionRequest;
use serde_json::{Map, Value};

use crate::action::{Action, Param};
use crate::client::HaltStateClient;
use crate::error::GuardError;

impl HaltStateClient {
    /// The request `action` sends: the call's agent (or the client's), its params with secrets digested, and the
    /// names of the params that were.
    pub(crate) fn action_request(&self, action: &Action) -> Result<ActionRequest, GuardError> {
        let mut params = Map::new();
        let mut redacted = Vec::new();
        for (name, value) in &action.params {
            let value = match value {
                Param::Plain(Ok(value)) => value.clone(),
                Param::Plain(Err(why)) => {
                    return Err(GuardError::Config(format!(
                        "param {name:?} does not serialize: {why}"
                    )));
                }
                Param::Secret(secret) => {
                    let key = self.inner.redaction.as_ref().ok_or_else(|| {
                        GuardError::Config(format!(
                            "param {name:?} is secret but no redaction key is configured (ClientBuilder::redaction_key)"
                        ))
                    })?;
                    redacted.push(name.clone());
                    Value::String(key.digest(secret.expose()))
                }
                Param::Reduced(value) => {
                    redacted.push(name.clone());
                    value.clone()
                }
            };
            params.insert(name.clone(), value);
        }
        let agent = action
            .agent_id
            .clone()
            .unwrap_or_else(|| self.inner.agent_id.clone());
        let mut request = ActionRequest::new(agent, &action.name).params(params);
        request.resource = action.resource.clone();
        request.risk = action.risk.clone();
        request.metadata = action.metadata.clone();
        request.redacted_fields = redacted;
        Ok(request)
    }
}
