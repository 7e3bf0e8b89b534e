//! Canonical JSON: the one byte form used for fingerprints and ledger hashes.
//!
//! RFC 8785 (JSON Canonicalization Scheme): object keys sorted, no insignificant whitespace, numbers in their
//! shortest round-trip form (so `1.0` and `1` are the same amount). The sort is done by the serializer, not by
//! `serde_json::Map`, whose order a dependency enabling `preserve_order` changes (cedar-policy does).

use serde::Serialize;

use crate::error::{RequestError, Result};

/// The canonical (RFC 8785) bytes of `value`. An error is returned, never empty bytes: two values that both
/// failed must not fingerprint (or hash) the same.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_jcs::to_vec(value)
        .map_err(|e| RequestError::Invalid(format!("not representable as canonical JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth_and_whitespace_dropped() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": "d"}});
        assert_eq!(
            String::from_utf8(to_canonical_bytes(&v).unwrap()).unwrap(),
            r#"{"a":{"c":"d","z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn integral_floats_equal_integers() {
        assert_eq!(
            to_canonical_bytes(&json!({"amount": 1.0})).unwrap(),
            to_canonical_bytes(&json!({"amount": 1})).unwrap()
        );
        assert_ne!(
            to_canonical_bytes(&json!({"amount": 1.5})).unwrap(),
            to_canonical_bytes(&json!({"amount": 1})).unwrap()
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            to_canonical_bytes(&json!("a\"b\n")).unwrap(),
            br#""a\"b\n""#.to_vec()
        );
    }
}
