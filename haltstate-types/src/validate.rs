//! The checks every field gets: bounded, non-empty, no control characters; action names are dotted identifiers;
//! params are bounded in size and depth.

use serde_json::{Map, Value};

use crate::error::{Result, invalid};
use crate::limits::{MAX_KEY_LEN, MAX_NAME_LEN, MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH};

/// `text` cut to `max` characters, marked with an ellipsis when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

pub(crate) fn validate_refs(references: &[String]) -> Result<()> {
    if references.len() > 32 {
        return Err(invalid("at most 32 resource_refs"));
    }
    references
        .iter()
        .try_for_each(|reference| validate_text("resource_refs", reference, MAX_KEY_LEN))
}

pub(crate) fn validate_fields(fields: &[String]) -> Result<()> {
    if fields.len() > 64 {
        return Err(invalid("at most 64 redacted_fields"));
    }
    fields
        .iter()
        .try_for_each(|field| validate_text("redacted_fields", field, MAX_NAME_LEN))
}

/// Checks a non-empty string of at most `max` bytes with no control characters.
pub fn validate_text(field: &str, value: &str, max: usize) -> Result<()> {
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
pub fn validate_name(field: &str, value: &str) -> Result<()> {
    validate_text(field, value, MAX_NAME_LEN)
}

/// Action names are dotted identifiers: `refund.create`, `llm.ask`, `data:export`.
pub fn validate_action(action: &str) -> Result<()> {
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

pub(crate) fn validate_object(field: &str, map: &Map<String, Value>) -> Result<()> {
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

    #[test]
    fn action_names_are_dotted_identifiers() {
        assert!(validate_action("refund.create").is_ok());
        assert!(validate_action("llm.ask").is_ok());
        assert!(validate_action("Refund Create").is_err());
        assert!(validate_action("").is_err());
        assert!(validate_action(".hidden").is_err());
        assert!(validate_action(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
