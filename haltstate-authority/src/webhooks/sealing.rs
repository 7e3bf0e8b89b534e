//! Webhook secrets at rest: sealed (ChaCha20-Poly1305, ring) with a key kept outside the database, so that a copy
//! of the database alone cannot sign deliveries.
//!
//! A sealed secret is stored as `sealed:v1:<key id>:<base64 of nonce and ciphertext>`; the key id (the first 8
//! hex digits of the key's SHA-256) says which key opens it, so keys can be rotated: the current key seals, any
//! configured key opens, and [`Authority::reseal_webhook_secrets`](crate::Authority::reseal_webhook_secrets)
//! moves every secret to the current key. The sealed text is bound to its tenant and webhook (associated data):
//! moved to another row, it no longer opens. Without a key, secrets are stored as they are (and the server says so).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

use super::WebhookSecret;

const SEALED: &str = "sealed:v1:";
const KEY_PREFIX: &str = "hssk_";

/// Why a secrets key or a sealed secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key's text is not `hssk_` and 64 hex digits.
    #[error(
        "a secrets key is hssk_ followed by 64 hex digits (make one with `haltstate keys secrets create`)"
    )]
    BadKey,
    /// The secret was sealed with a key that is not configured.
    #[error(
        "the webhook secret is sealed with secrets key {0}, which is not configured (was the database moved \
         without its key?)"
    )]
    UnknownKey(String),
    /// The sealed text does not open: changed, truncated, or moved from another webhook.
    #[error(
        "the sealed webhook secret does not open: it was changed or moved from another webhook"
    )]
    Tampered,
    /// The cipher refused to seal (ring's own checks).
    #[error("sealing the webhook secret failed")]
    Failed,
}

/// A 32-byte key that seals webhook secrets. `Debug` shows its id only.
#[derive(Clone)]
pub struct SecretsKey {
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

impl SecretsKey {
    /// A new key from the OS's randomness.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(key)[..4]);
        SecretsKey { id, key }
    }

    /// Reads a key's text (`hssk_` and 64 hex digits; surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`SealError::BadKey`] for anything else.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let hex_text = text
            .trim()
            .strip_prefix(KEY_PREFIX)
            .ok_or(SealError::BadKey)?;
        let bytes = hex::decode(hex_text).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::from_bytes(key))
    }

    /// The key's text, for its file: keep it outside the database, readable by the server only.
    pub fn expose(&self) -> String {
        format!("{KEY_PREFIX}{}", hex::encode(self.key))
    }

    /// The key's id: the first 8 hex digits of its SHA-256 (stored with each secret it seals).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aead(&self) -> Result<LessSafeKey, SealError> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &self.key).map_err(|_| SealError::Failed)?;
        Ok(LessSafeKey::new(key))
    }
}

/// A webhook secret as stored: sealed, or (without a secrets key) as it is. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key_id() {
            Some(id) => write!(f, "SealedSecret(sealed with {id})"),
            None => f.write_str("SealedSecret(not sealed)"),
        }
    }
}

impl SealedSecret {
    /// A stored value, as read from the database.
    pub(crate) fn from_stored(text: String) -> Self {
        SealedSecret(text)
    }

    /// The value to store.
    pub(crate) fn stored(&self) -> &str {
        &self.0
    }

    /// The id of the key that sealed it, or `None` when it is stored as it is.
    pub fn key_id(&self) -> Option<&str> {
        self.0.strip_prefix(SEALED)?.split(':').next()
    }
}

/// The secrets keys a process holds: the current one seals, every one opens.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    current: Option<SecretsKey>,
    previous: Vec<SecretsKey>,
}

impl Keyring {
    /// Seals with `current`; opens what `current` or any of `previous` sealed (a rotation's old keys).
    pub fn new(current: SecretsKey, previous: Vec<SecretsKey>) -> Self {
        Keyring {
            current: Some(current),
            previous,
        }
    }

    /// Whether secrets are sealed at all.
    pub fn seals(&self) -> bool {
        self.current.is_some()
    }

    /// Whether `secret` is sealed with the current key (nothing to reseal).
    pub fn is_current(&self, secret: &SealedSecret) -> bool {
        match (&self.current, secret.key_id()) {
            (Some(key), Some(id)) => key.id == id,
            (None, None) => true,
            _ => false,
        }
    }

    /// `secret` of `tenant`'s webhook `webhook_id`, sealed with the current key (as it is without one).
    ///
    /// # Errors
    /// [`SealError::Failed`] if the cipher refuses (it does not, for a key of the right length).
    pub fn seal(
        &self,
        tenant: &str,
        webhook_id: &str,
        secret: &WebhookSecret,
    ) -> Result<SealedSecret, SealError> {
        let Some(key) = &self.current else {
            return Ok(SealedSecret(secret.expose().to_owned()));
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = secret.expose().as_bytes().to_vec();
        key.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated(tenant, webhook_id)),
                &mut data,
            )
            .map_err(|_| SealError::Failed)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&data);
        Ok(SealedSecret(format!(
            "{SEALED}{}:{}",
            key.id,
            STANDARD.encode(blob)
        )))
    }

    /// Opens `sealed`, stored for `tenant`'s webhook `webhook_id`.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] when no configured key sealed it, [`SealError::Tampered`] when it does not open.
    pub fn open(
        &self,
        tenant: &str,
        webhook_id: &str,
        sealed: &SealedSecret,
    ) -> Result<WebhookSecret, SealError> {
        let Some(rest) = sealed.0.strip_prefix(SEALED) else {
            return Ok(WebhookSecret::from_stored(sealed.0.clone()));
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Tampered)?;
        let key = self
            .current
            .iter()
            .chain(&self.previous)
            .find(|key| key.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let blob = STANDARD.decode(encoded).map_err(|_| SealError::Tampered)?;
        if blob.len() < NONCE_LEN {
            return Err(SealError::Tampered);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Tampered)?;
        let mut data = ciphertext.to_vec();
        let plain = key
            .aead()?
            .open_in_place(nonce, Aad::from(associated(tenant, webhook_id)), &mut data)
            .map_err(|_| SealError::Tampered)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SealError::Tampered)?;
        WebhookSecret::parse(&text).map_err(|_| SealError::Tampered)
    }
}

/// What a sealed secret is bound to: its tenant and webhook, length-prefixed so no two pairs read the same.
fn associated(tenant: &str, webhook_id: &str) -> Vec<u8> {
    format!("{}:{tenant}:{webhook_id}", tenant.len()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only_and_only_in_its_own_row() {
        let key = SecretsKey::generate();
        let ring = Keyring::new(key.clone(), Vec::new());
        let secret = WebhookSecret::generate();
        let sealed = ring.seal("acme", "wh_1", &secret).unwrap();
        assert!(!sealed.stored().contains(&secret.expose()[6..]));
        assert_eq!(sealed.key_id(), Some(key.id()));
        assert_eq!(ring.open("acme", "wh_1", &sealed).unwrap(), secret);
        // Another row, another tenant, another key, no key, an edited byte: refused.
        assert_eq!(ring.open("acme", "wh_2", &sealed), Err(SealError::Tampered));
        assert_eq!(
            ring.open("acme2", "wh_1", &sealed),
            Err(SealError::Tampered)
        );
        let other = Keyring::new(SecretsKey::generate(), Vec::new());
        assert!(matches!(
            other.open("acme", "wh_1", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        assert!(matches!(
            Keyring::default().open("acme", "wh_1", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        let mut edited = sealed.stored().to_owned();
        let last = edited.pop().unwrap();
        edited.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            ring.open("acme", "wh_1", &SealedSecret(edited)),
            Err(SealError::Tampered)
        );
        assert!(!format!("{sealed:?}{key:?}").contains(&key.expose()[5..]));
    }

    #[test]
    fn a_rotation_opens_with_the_previous_key_and_seals_with_the_new() {
        let (old, new) = (SecretsKey::generate(), SecretsKey::generate());
        let secret = WebhookSecret::generate();
        let sealed_old = Keyring::new(old.clone(), Vec::new())
            .seal("t", "w", &secret)
            .unwrap();
        let rotating = Keyring::new(new.clone(), vec![old]);
        assert!(!rotating.is_current(&sealed_old));
        let opened = rotating.open("t", "w", &sealed_old).unwrap();
        let resealed = rotating.seal("t", "w", &opened).unwrap();
        assert!(rotating.is_current(&resealed));
        assert_eq!(
            Keyring::new(new, Vec::new())
                .open("t", "w", &resealed)
                .unwrap(),
            secret
        );
    }

    #[test]
    fn key_text_round_trips_and_anything_else_is_refused() {
        let key = SecretsKey::generate();
        assert_eq!(
            SecretsKey::parse(&format!(" {}\n", key.expose()))
                .unwrap()
                .id(),
            key.id()
        );
        for bad in [
            "",
            "hssk_",
            "hssk_zz",
            &key.expose()[..40],
            &key.expose()[5..],
        ] {
            assert_eq!(
                SecretsKey::parse(bad).unwrap_err(),
                SealError::BadKey,
                "{bad}"
            );
        }
    }
}
