//! Signed checkpoints in SQLite.

use rusqlite::{Connection, params};

use haltstate_types::proof::{Checkpoint, SignedCheckpoint};
use haltstate_types::timestamp::{from_micros, to_micros};

use crate::error::{AuthorityError, Result};

pub(crate) fn insert(conn: &Connection, signed: &SignedCheckpoint) -> Result<()> {
    let c = &signed.checkpoint;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO checkpoints (tenant, seq, key_id, hash, at_us, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        c.tenant,
        i64::try_from(c.seq).unwrap_or(i64::MAX),
        c.key_id,
        c.hash,
        to_micros(c.at),
        signed.signature
    ])?;
    Ok(())
}

pub(crate) fn list(conn: &Connection, tenant: &str) -> Result<Vec<SignedCheckpoint>> {
    rows(
        conn,
        "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = ?1 ORDER BY seq, at_us",
        tenant,
        params![tenant],
    )
}

/// The first checkpoint at or after `seq`; for `u64::MAX`, the newest.
pub(crate) fn from(conn: &Connection, tenant: &str, seq: u64) -> Result<Option<SignedCheckpoint>> {
    let found = if seq == u64::MAX {
        rows(
            conn,
            "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = ?1 \
             ORDER BY seq DESC, at_us DESC LIMIT 1",
            tenant,
            params![tenant],
        )?
    } else {
        rows(
            conn,
            "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = ?1 AND seq >= ?2 \
             ORDER BY seq, at_us LIMIT 1",
            tenant,
            params![tenant, i64::try_from(seq).unwrap_or(i64::MAX)],
        )?
    };
    Ok(found.into_iter().next())
}

fn rows(
    conn: &Connection,
    sql: &str,
    tenant: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<SignedCheckpoint>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(values, |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut checkpoints = Vec::new();
    for row in rows {
        let (seq, key_id, hash, at, signature) = row?;
        checkpoints.push(SignedCheckpoint {
            checkpoint: Checkpoint {
                at: from_micros(at),
                hash,
                key_id,
                seq: u64::try_from(seq)
                    .map_err(|_| AuthorityError::Corrupt(format!("checkpoint seq {seq}")))?,
                tenant: tenant.to_owned(),
            },
            signature,
        });
    }
    Ok(checkpoints)
}
