//! API keys: per tenant, with a role, stored only as SHA-256 hashes and compared in constant time.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Check, guard, report, read its approvals, heartbeat.
    Agent,
    /// Everything an agent may, plus approve, reject, kill switch, evidence.
    Operator,
}

impl Role {
    /// `agent` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Operator => "operator",
        }
    }

    /// Parses `agent` or `operator`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agent" => Some(Role::Agent),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every query is scoped to.
    pub tenant: String,
    /// The key's name (an operator's identity when approving).
    pub name: String,
    /// The key's role.
    pub role: Role,
}

/// A freshly created key. The secret is shown here once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The key id (not secret).
    pub id: String,
    /// The secret to hand to the client: `hs_` and 64 hex characters.
    pub secret: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

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
