//! A webhook's signing secret, in the Standard Webhooks form `whsec_<base64 of 32 random bytes>`.
//!
//! It must be stored as it is (signing needs it, unlike an API key, whose hash suffices), so it is kept out of
//! `Debug` and logs and shown once, when the endpoint is added.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use haltstate_types::RequestError;

const PREFIX: &str = "whsec_";

/// A signing secret. `Debug` shows `whsec_***`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A new secret from the OS's randomness.
    pub(crate) fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A secret as a receiver holds it: `whsec_` and the base64 of its key.
    ///
    /// # Errors
    /// When `text` is not in that form.
    pub fn parse(text: &str) -> Result<Self, RequestError> {
        match text
            .strip_prefix(PREFIX)
            .map(|encoded| STANDARD.decode(encoded))
        {
            Some(Ok(key)) if !key.is_empty() => Ok(Self(text.to_owned())),
            _ => Err(RequestError::Invalid(
                "a webhook secret is whsec_ followed by base64".into(),
            )),
        }
    }

    /// A stored secret.
    pub(crate) fn from_stored(secret: String) -> Self {
        Self(secret)
    }

    /// The secret as the receiver configures it (`whsec_...`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the base64 after the prefix, decoded (the whole text when it is not in that form).
    pub fn key_bytes(&self) -> Vec<u8> {
        self.0
            .strip_prefix(PREFIX)
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_32_random_bytes_and_never_debug_printed() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        assert_ne!(a, b);
        assert_eq!(a.key_bytes().len(), 32);
        assert_eq!(format!("{a:?}"), "whsec_***");
        assert!(!format!("{:?}", Some(&a)).contains(&a.expose()[6..]));
    }
}
