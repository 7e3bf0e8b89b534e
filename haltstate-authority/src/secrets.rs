//! API key secrets: made from the OS's randomness, stored only as SHA-256 hashes, compared in constant time.

use haltstate_types::NewKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub(crate) fn generate() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    NewKey {
        id: format!("key_{}", hex::encode(id)),
        secret: format!("hs_{}", hex::encode(bytes)),
    }
}

pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) fn matches(stored: &[u8], presented: &[u8; 32]) -> bool {
    stored.len() == 32 && bool::from(stored.ct_eq(presented))
}
