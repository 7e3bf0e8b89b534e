//! Signed checkpoints: a tenant's chain head (sequence and hash) at a time, signed with the authority's Ed25519
//! key. Kept outside the database too, they pin the chain: a rewrite of every hash after an edit, or a truncation
//! with the head moved back, no longer agrees with a checkpoint.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ProofError;
use crate::timestamp::rfc3339;

/// What is signed: one tenant's chain end at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// When it was signed.
    #[serde(with = "rfc3339")]
    pub at: OffsetDateTime,
    /// The chain end's hash.
    pub hash: String,
    /// The signing key's id (see [`key_id`]).
    pub key_id: String,
    /// The chain end's sequence number.
    pub seq: u64,
    /// The tenant.
    pub tenant: String,
}

/// Domain separation: a checkpoint signature can never be taken for a signature over anything else.
const DOMAIN: &[u8] = b"haltstate checkpoint v1\n";

impl Checkpoint {
    /// The bytes signed: a fixed prefix, then the checkpoint's canonical JSON (RFC 8785).
    ///
    /// # Errors
    /// [`ProofError::Format`] when the checkpoint cannot be serialized (never for a well-formed one).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, ProofError> {
        let mut bytes = DOMAIN.to_vec();
        bytes.extend(serde_jcs::to_vec(self).map_err(|e| ProofError::Format(e.to_string()))?);
        Ok(bytes)
    }
}

/// A checkpoint with its signature, as stored, written to the checkpoint file (one JSON line each) and put in
/// proof packs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// What was signed.
    pub checkpoint: Checkpoint,
    /// The Ed25519 signature of [`Checkpoint::signed_bytes`], hex.
    pub signature: String,
    /// The tenant's tree head at the same record (size `checkpoint.seq`), as a C2SP signed note: the same key's
    /// signature under the log's origin, then any witnesses' cosignatures. Absent from checkpoints signed before
    /// the tree existed. It is not covered by `signature`: it carries its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

impl SignedCheckpoint {
    /// Checks the signature with `key` (and that the checkpoint names that key).
    ///
    /// # Errors
    /// [`ProofError::WrongKey`] when another key signed it, [`ProofError::BadSignature`] when the signature does
    /// not verify.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ProofError> {
        if self.checkpoint.key_id != key_id(key) {
            return Err(ProofError::WrongKey {
                signed_by: self.checkpoint.key_id.clone(),
                given: key_id(key),
            });
        }
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ProofError::BadSignature)?;
        key.verify(
            &self.checkpoint.signed_bytes()?,
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| ProofError::BadSignature)
    }
}

/// A key's id: the first 16 hex digits of the SHA-256 of its public half.
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A public key from its text form: 64 hex digits, optionally prefixed `ed25519:`.
///
/// # Errors
/// [`ProofError::BadKey`] when the text is not such a key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, ProofError> {
    let hex_part = text.trim().trim_start_matches("ed25519:");
    let bytes: [u8; 32] = hex::decode(hex_part)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProofError::BadKey("expected 64 hex digits (ed25519:...)".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| ProofError::BadKey(e.to_string()))
}

/// A public key's text form: `ed25519:` and 64 hex digits.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", hex::encode(key.as_bytes()))
}
