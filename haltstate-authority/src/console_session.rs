//! Console sessions as the authority stores them: a session is known by the SHA-256 of its token (the token itself
//! never reaches storage), belongs to one key of one tenant, and ends at its expiry, when it is ended, or when its
//! key is revoked. Stored, every instance on the database knows every session: a load balancer needs no affinity.

use time::OffsetDateTime;

/// A stored console session.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The tenant it is scoped to.
    pub tenant: String,
    /// The key that signed in (its role and name are read from the key on each use, so a revocation ends it).
    pub key_id: String,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When it ends by itself.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("tenant", &self.tenant)
            .field("key_id", &self.key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How many sessions may be stored: per tenant (past it, the tenant's oldest ends) and over all tenants (past it,
/// signing in is refused: one tenant's sign-ins never end another's sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions one tenant keeps at most.
    pub per_tenant: usize,
    /// Sessions kept at most, over all tenants.
    pub total: usize,
}

/// A session token's stored name: the hex SHA-256 of the token. A database read by someone else holds no token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// The stored name of `token`.
    pub fn of_token(token: &str) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(token.as_bytes())))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A digest only, but nothing a log needs.
        f.write_str("SessionId(..)")
    }
}
