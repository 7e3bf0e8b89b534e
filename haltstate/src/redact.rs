//! Redaction: only the params a call site names leave the process, and values marked secret leave as a keyed
//! digest (HMAC-SHA-256), so policy can compare them but nobody can read them.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How a secret setting (the API key, the redaction key) appears in `Debug` output.
pub(crate) const REDACTED: &str = "<redacted>";

/// A value that must never leave the process in the clear. Build it with [`secret`].
///
/// Its `Debug` prints `Secret(<redacted>)`, so it is safe in logs too.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// Marks a param value as secret: the authority receives `hmac-sha256:<hex>` of it under the client's
/// redaction key, and the evidence lists the param as redacted.
///
/// ```
/// use haltstate::{Action, secret};
///
/// let action = Action::new("refund.create")
///     .key("refund:1042")
///     .param("amount_cents", 4_500)
///     .param("card", secret("4111 1111 1111 1111"));
/// assert!(!format!("{action:?}").contains("4111"));
/// ```
pub fn secret(value: impl fmt::Display) -> Secret {
    Secret(value.to_string())
}

/// The key secrets are digested under.
#[derive(Clone)]
pub(crate) struct RedactionKey([u8; 32]);

impl fmt::Debug for RedactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedactionKey(<redacted>)")
    }
}

impl RedactionKey {
    /// A key from configured material (any length).
    pub(crate) fn from_material(material: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"haltstate-redaction-key\0");
        hasher.update(material);
        Self(hasher.finalize().into())
    }

    pub(crate) fn digest(&self, value: &str) -> String {
        // HMAC accepts keys of any length; a 32-byte key never fails.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return "hmac-sha256:unavailable".to_owned(),
        };
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// Cuts an error text for a report and removes every param value from it.
pub(crate) fn scrub(text: &str, sensitive: &[String], max_chars: usize) -> String {
    let mut text = text.to_owned();
    // Longest first, so a value that contains another is removed whole.
    let mut values: Vec<&String> = sensitive.iter().filter(|v| v.len() >= 3).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        text = text.replace(value.as_str(), "[redacted]");
    }
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_stable() {
        let a = RedactionKey::from_material(b"k1");
        assert_eq!(a.digest("4111"), a.digest("4111"));
        assert_ne!(
            a.digest("4111"),
            RedactionKey::from_material(b"k2").digest("4111")
        );
        assert!(a.digest("4111").starts_with("hmac-sha256:"));
        assert!(!a.digest("4111").contains("4111"));
    }

    #[test]
    fn scrub_removes_values_and_truncates() {
        let text = scrub(
            "card 4111111111111111 declined for alice@example.com",
            &["4111111111111111".into(), "alice@example.com".into()],
            200,
        );
        assert_eq!(text, "card [redacted] declined for [redacted]");
        assert_eq!(scrub(&"x".repeat(500), &[], 10).chars().count(), 11);
    }
}
