//! The checks every field gets: bounded, non-empty, no control characters; action names are dotted identifiers;
//! params are bounded in size and depth, and their numbers exact.

use serde_json::{Map, Value};

use crate::error::{Result, invalid};
use crate::limits::{
    MAX_EXACT_INTEGER, MAX_FRACTION_DIGITS, MAX_KEY_LEN, MAX_NAME_LEN, MAX_PARAMS_BYTES,
    MAX_PARAMS_DEPTH,
};

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
        Value::Number(n) => {
            exact_number(n)?;
            *size += 20;
        }
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

/// A number means one thing everywhere (policy, usage sums, fingerprint, evidence, the approver's page): an
/// integer within ±[`MAX_EXACT_INTEGER`], or a fraction Cedar's `decimal` holds exactly. Anything else is refused
/// here, once, never converted: `1e4` or `10000.0` would compare as 10000 in a policy yet escape a usage sum,
/// and `9007199254740993` would fingerprint as `9007199254740992`. The error says what to send instead.
///
/// ```
/// use haltstate_types::exact_number;
///
/// assert!(exact_number(&serde_json::Number::from(4_500)).is_ok());
/// assert!(exact_number(&serde_json::Number::from_f64(12.25).unwrap()).is_ok());
/// assert!(exact_number(&serde_json::Number::from_f64(60.0).unwrap()).is_err());
/// ```
pub fn exact_number(n: &serde_json::Number) -> std::result::Result<(), String> {
    if n.is_i64() || n.is_u64() {
        // A u64 past i64's range is past 2^53 too.
        let within = n
            .as_i64()
            .is_some_and(|i| i.unsigned_abs() <= MAX_EXACT_INTEGER);
        return if within {
            Ok(())
        } else {
            Err(format!(
                "{n} is beyond the integers JSON numbers hold exactly (±{MAX_EXACT_INTEGER}); send it as a string"
            ))
        };
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.is_finite() && f.fract() == 0.0 {
        return Err(format!(
            "{n} is an integer written as a fraction or an exponent; send it as an integer ({f:.0})"
        ));
    }
    let text = n.to_string();
    let fraction = text.split_once('.').map_or(0, |(_, digits)| digits.len());
    // Below this bound a fraction of at most 4 digits is one decimal exactly (fewer than 2^53 ten-thousandths),
    // which Cedar's `decimal` holds too; above it the double behind the JSON number no longer pins the digits.
    let exact_below = MAX_EXACT_INTEGER as f64 / 10_000.0;
    if !f.is_finite()
        || f.abs() >= exact_below
        || text.contains(['e', 'E'])
        || fraction > MAX_FRACTION_DIGITS
    {
        return Err(format!(
            "{text} cannot be held exactly (at most {MAX_FRACTION_DIGITS} fractional digits); send amounts as integers in minor units"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_exact_integers_or_short_fractions() {
        let check = |text: &str| {
            let value: Value = serde_json::from_str(text).unwrap();
            let mut size = 0;
            measure(&value, 1, &mut size)
        };
        for good in [
            "0",
            "-1",
            "10000",
            "9007199254740991",
            "-9007199254740991",
            "10.25",
            "0.0001",
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("10000.0", "integer written as a fraction"),
            ("1e4", "integer written as a fraction"),
            ("1E4", "integer written as a fraction"),
            ("-0.0", "integer written as a fraction"),
            ("9007199254740992", "send it as a string"),
            ("9007199254740993", "send it as a string"),
            ("-9007199254740993", "send it as a string"),
            ("18446744073709551615", "send it as a string"),
            ("0.123456789", "minor units"),
            ("1.5e-7", "minor units"),
            ("12345678901234.5", "minor units"),
        ] {
            let refused = check(bad).unwrap_err();
            assert!(refused.contains(says), "{bad}: {refused}");
        }
        // Inside lists and records too.
        assert!(check("[1, {\"a\": 1e4}]").is_err());
    }

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
