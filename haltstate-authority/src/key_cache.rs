//! Recently authenticated keys, kept for [`KEY_CACHE_TTL`] so that a busy client does not cost a database read
//! per request.
//!
//! Looking a key up was a twentieth of the server's CPU per request. A key revoked through this authority is
//! forgotten at once; one revoked by another process (the CLI, another server instance) keeps working here for
//! at most the TTL. Only principals are kept, under the SHA-256 of the tenant and the secret: never a secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use haltstate_types::Principal;

/// How long an authentication is trusted without asking the database again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Entries kept at most; past it the cache starts over (a flood of distinct valid keys is not a hot path).
const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

fn slot(tenant: &str, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

impl KeyCache {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Principal, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The principal `secret` authenticated as within the last TTL.
    pub(crate) fn get(&self, tenant: &str, secret: &str) -> Option<Principal> {
        let key = slot(tenant, secret);
        let mut entries = self.locked();
        match entries.get(&key) {
            Some((principal, at)) if at.elapsed() < KEY_CACHE_TTL => Some(principal.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, tenant: &str, secret: &str, principal: &Principal) {
        let mut entries = self.locked();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(slot(tenant, secret), (principal.clone(), Instant::now()));
    }

    /// Forgets every entry of `key_id` (it was revoked).
    pub(crate) fn forget(&self, key_id: &str) {
        self.locked()
            .retain(|_, (principal, _)| principal.key_id != key_id);
    }
}
