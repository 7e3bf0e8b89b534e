//! The API keys table's writes, on the writer's connection (the reads are in `queries.rs` and `reads.rs`).

use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;

use super::conn::Conn;
use crate::error::{AuthorityError, Result};
use crate::store::tx::StoredKey;

/// A new key of `tenant`, created at `now`.
pub(super) fn insert(
    conn: &mut Conn,
    tenant: &str,
    key: &StoredKey,
    now: OffsetDateTime,
) -> Result<()> {
    let agents = key
        .agents
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AuthorityError::invalid(e.to_string()))?;
    conn.execute(
        "INSERT INTO api_keys (id, tenant, name, role, key_hash, created_us, agents, rate_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &key.id,
            &tenant,
            &key.name,
            &key.role.as_str(),
            &key.hash.as_slice(),
            &to_micros(now),
            &agents,
            &key.rate_limit.map(i64::from),
        ],
    )?;
    Ok(())
}

/// A live key's new secret (its hash); answers whether the key was live.
pub(super) fn rotate(conn: &mut Conn, tenant: &str, id: &str, hash: &[u8; 32]) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE api_keys SET key_hash = $3 WHERE tenant = $1 AND id = $2 AND revoked_us IS NULL",
        &[&tenant, &id, &hash.as_slice()],
    )?;
    Ok(changed > 0)
}

/// Revokes a live key at `now`; answers whether it was live.
pub(super) fn revoke(conn: &mut Conn, tenant: &str, id: &str, now: OffsetDateTime) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE api_keys SET revoked_us = $3 WHERE tenant = $1 AND id = $2 AND revoked_us IS NULL",
        &[&tenant, &id, &to_micros(now)],
    )?;
    Ok(changed > 0)
}
