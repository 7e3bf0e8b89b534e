//! Canonical JSON: the one byte form used for fingerprints and ledger hashes.
//!
//! Object keys are sorted by their UTF-8 bytes, there is no insignificant whitespace, and numbers that hold an
//! integral value are written as integers (`1.0` and `1` are the same amount). The sort is done here rather
//! than relying on `serde_json::Map` ordering, which a dependency enabling `preserve_order` would silently change.

use serde_json::Value;

/// The canonical bytes of `value`.
pub fn to_canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        // Integral floats within the exactly-representable range are the same amount as the integer.
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            out.extend_from_slice((f as i64).to_string().as_bytes());
            return;
        }
    }
    out.extend_from_slice(n.to_string().as_bytes());
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is already minimal and deterministic.
    match serde_json::to_vec(s) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": "d"}});
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&v)).unwrap(),
            r#"{"a":{"c":"d","z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn integral_floats_equal_integers() {
        assert_eq!(
            to_canonical_bytes(&json!({"amount": 1.0})),
            to_canonical_bytes(&json!({"amount": 1}))
        );
        assert_ne!(
            to_canonical_bytes(&json!({"amount": 1.5})),
            to_canonical_bytes(&json!({"amount": 1}))
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            to_canonical_bytes(&json!("a\"b\n")),
            br#""a\"b\n""#.to_vec()
        );
    }
}
