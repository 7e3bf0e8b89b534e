//! A tool call as an action: `mcp.<server>.<tool>`, its arguments as params (long texts as their length and
//! digest, secret arguments as keyed digests), its resource, and its idempotency key.

use haltstate::types::canonical::to_canonical_bytes;
use haltstate::{Action, KeyLifetime, secret};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::GuardConfig;

/// The `_meta` entry a client may set to name the call's idempotency key itself (then it runs once ever).
pub const KEY_META: &str = "ai.haltstate/idempotency_key";

/// Why a call cannot be turned into an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The `_meta` idempotency key is not a non-empty string.
    #[error("`_meta.{KEY_META}` must be a non-empty string")]
    MetaKey,
    /// The arguments do not serialize canonically (a number JSON cannot hold exactly, say).
    #[error("the arguments cannot be digested: {0}")]
    Arguments(String),
}

/// The action guarding `agent`'s call of `tool` with `arguments` (and the call's `_meta`); no agent: the
/// client's.
pub(crate) fn action(
    config: &GuardConfig,
    agent: Option<&str>,
    tool: &str,
    arguments: &Map<String, Value>,
    meta: Option<&Map<String, Value>>,
) -> Result<Action, CallError> {
    let mut action = Action::new(config.action_of(tool));
    if let Some(agent) = agent {
        action = action.agent(agent);
    }
    action = match meta.and_then(|m| m.get(KEY_META)) {
        Some(Value::String(key)) if !key.trim().is_empty() => action.key(key.clone()),
        Some(_) => return Err(CallError::MetaKey),
        None => {
            let lifetime = if config.once.contains(tool) {
                KeyLifetime::Once
            } else {
                KeyLifetime::Operation
            };
            action
                .key(derived_key(config, agent, tool, arguments)?)
                .key_lifetime(lifetime)
        }
    };
    let secrets = config.secret_args.get(tool);
    for (name, value) in arguments {
        action = if secrets.is_some_and(|s| s.contains(name)) {
            action.param(name.clone(), secret(text_of(value)))
        } else {
            match reduced(value, config.long_string) {
                Some(reduced) => action.reduced_param(name.clone(), reduced),
                None => action.param(name.clone(), for_policy(value)),
            }
        };
    }
    if let Some(value) = config
        .resource_args
        .get(tool)
        .and_then(|arg| arguments.get(arg))
    {
        action = action.resource(text_of(value));
    }
    Ok(action)
}

/// What a sealed request state is bound to: the agent, the call (server, tool, canonical arguments) and the key
/// the client named, if any.
pub(crate) fn binding(
    config: &GuardConfig,
    agent: Option<&str>,
    tool: &str,
    arguments: &Map<String, Value>,
    meta: Option<&Map<String, Value>>,
) -> Result<Vec<u8>, CallError> {
    let named = meta.and_then(|m| m.get(KEY_META));
    to_canonical_bytes(&json!({
        "agent": agent,
        "call": derived_key(config, agent, tool, arguments)?,
        "key": named,
    }))
    .map_err(|e| CallError::Arguments(e.to_string()))
}

/// The key a call derives: the server, tool, agent and canonical arguments, digested. The same call is the same
/// operation while it runs or waits for a human.
fn derived_key(
    config: &GuardConfig,
    agent: Option<&str>,
    tool: &str,
    arguments: &Map<String, Value>,
) -> Result<String, CallError> {
    let identity = json!({
        "agent": agent,
        "arguments": arguments,
        "server": config.server,
        "tool": tool,
    });
    let bytes = to_canonical_bytes(&identity).map_err(|e| CallError::Arguments(e.to_string()))?;
    let digest = hex::encode(Sha256::digest(bytes));
    Ok(format!(
        "mcp:{}.{tool}:{}",
        config.server,
        digest.get(..32).unwrap_or(&digest)
    ))
}

/// A value too long to send: its length and SHA-256 instead (`None`: send it as it is).
fn reduced(value: &Value, limit: usize) -> Option<Value> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
        _ => return None,
    };
    let length = text.chars().count();
    (length > limit).then(|| {
        json!({
            "length": length,
            "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        })
    })
}

/// A value as policy reads it. Params hold numbers exactly (an integer, or a fraction of at most 4 digits); a
/// tool's arguments are the tool's own and may not: an integral float (`60.0`) is that integer, any other number
/// the authority cannot hold exactly is its JSON text.
fn for_policy(value: &Value) -> Value {
    match value {
        Value::Number(n) if haltstate::types::exact_number(n).is_ok() => value.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 => {
                // Exact: an integral double of at most 2^53 - 1 converts without loss.
                #[allow(clippy::cast_possible_truncation)]
                Value::from(f as i64)
            }
            _ => Value::String(n.to_string()),
        },
        Value::Array(items) => Value::Array(items.iter().map(for_policy).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), for_policy(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A value as text: a string as itself, anything else as its JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GuardConfig {
        GuardConfig::new("files").unwrap().long_string(8)
    }

    #[test]
    fn the_same_arguments_in_any_order_derive_the_same_key_and_others_another() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"path": "/a", "mode": 1}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"mode": 1, "path": "/a"}"#).unwrap();
        let c: Map<String, Value> = serde_json::from_str(r#"{"mode": 1, "path": "/b"}"#).unwrap();
        let key = |args| derived_key(&config(), Some("desktop-agent"), "write_file", args).unwrap();
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        assert!(key(&a).starts_with("mcp:files.write_file:"));
        let other_agent = derived_key(&config(), Some("other"), "write_file", &a).unwrap();
        assert_ne!(key(&a), other_agent);
    }

    #[test]
    fn long_texts_leave_as_their_length_and_digest() {
        assert_eq!(reduced(&json!("short"), 8), None);
        assert_eq!(reduced(&json!(12345678901_u64), 8), None);
        let long = reduced(&json!("a much longer text"), 8).unwrap();
        assert_eq!(long["length"], 18);
        assert_eq!(long["sha256"].as_str().map(str::len), Some(64));
        assert!(!long.to_string().contains("longer"));
    }

    #[test]
    fn numbers_reach_policy_as_numbers_it_holds_exactly() {
        assert_eq!(for_policy(&json!(60.0)), json!(60));
        assert_eq!(for_policy(&json!(0.25)), json!(0.25));
        assert_eq!(for_policy(&json!(0.123456)), json!("0.123456"));
        assert_eq!(for_policy(&json!(1e300)), json!("1e+300"));
        assert_eq!(for_policy(&json!({"a": [2.0, 7]})), json!({"a": [2, 7]}));
    }

    #[test]
    fn a_key_in_meta_wins_and_must_be_text() {
        let meta: Map<String, Value> =
            serde_json::from_str(r#"{"ai.haltstate/idempotency_key": 7}"#).unwrap();
        assert_eq!(
            action(&config(), None, "t", &Map::new(), Some(&meta)).unwrap_err(),
            CallError::MetaKey
        );
    }
}
