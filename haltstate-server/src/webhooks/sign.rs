//! Standard Webhooks signatures: `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`,
//! where the key is the secret's base64 after `whsec_`, decoded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use haltstate_authority::webhooks::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

/// The `webhook-signature` header's value for one message.
///
/// ```
/// # use haltstate_server::webhooks::{sign, verify};
/// # let secret = haltstate_authority::webhooks::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let header = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
/// assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// assert!(verify(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#, &header).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(mac(secret, id, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(&secret.key_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `v1,` signature in the header matched the message.
    #[error("no signature matches the message")]
    Mismatch,
}

/// Checks a `webhook-signature` header (space-separated `v1,<base64>` entries; one matching suffices, in
/// constant time), as a receiver does. Checking the timestamp's age is the receiver's.
pub fn verify(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let matched = header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|signature| {
            mac(secret, id, timestamp, body)
                .verify_slice(&signature)
                .is_ok()
        });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
