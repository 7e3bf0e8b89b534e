//! Signed checkpoints in SQLite.

use rusqlite::{Connection, OptionalExtension, params};

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
    if let Some(note) = &signed.tree {
        conn.prepare_cached(
            // Never over a stored one: the same key signs the same head into the same note, and the stored one may
            // carry witnesses' cosignatures by now.
            "INSERT INTO tree_checkpoints (tenant, size, key_id, note) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            c.tenant,
            i64::try_from(c.seq).unwrap_or(i64::MAX),
            c.key_id,
            note
        ])?;
    }
    Ok(())
}

/// A checkpoint with its tree head, when it has one.
macro_rules! SELECT {
    () => {
        "SELECT c.seq, c.key_id, c.hash, c.at_us, c.signature, t.note FROM checkpoints c \
         LEFT JOIN tree_checkpoints t ON t.tenant = c.tenant AND t.size = c.seq AND t.key_id = c.key_id "
    };
}

pub(crate) fn list(conn: &Connection, tenant: &str) -> Result<Vec<SignedCheckpoint>> {
    rows(
        conn,
        concat!(SELECT!(), "WHERE c.tenant = ?1 ORDER BY c.seq, c.at_us"),
        tenant,
        params![tenant],
    )
}

/// The first checkpoint at or after `seq`; for `u64::MAX`, the newest.
pub(crate) fn from(conn: &Connection, tenant: &str, seq: u64) -> Result<Option<SignedCheckpoint>> {
    let found = if seq == u64::MAX {
        rows(
            conn,
            concat!(
                SELECT!(),
                "WHERE c.tenant = ?1 ORDER BY c.seq DESC, c.at_us DESC LIMIT 1"
            ),
            tenant,
            params![tenant],
        )?
    } else {
        rows(
            conn,
            concat!(
                SELECT!(),
                "WHERE c.tenant = ?1 AND c.seq >= ?2 ORDER BY c.seq, c.at_us LIMIT 1"
            ),
            tenant,
            params![tenant, i64::try_from(seq).unwrap_or(i64::MAX)],
        )?
    };
    Ok(found.into_iter().next())
}

/// The first checkpoint with a signed tree head at or after `seq`.
pub(crate) fn tree_from(
    conn: &Connection,
    tenant: &str,
    seq: u64,
) -> Result<Option<SignedCheckpoint>> {
    let found = rows(
        conn,
        concat!(
            SELECT!(),
            "WHERE c.tenant = ?1 AND c.seq >= ?2 AND t.note IS NOT NULL ORDER BY c.seq, c.at_us LIMIT 1"
        ),
        tenant,
        params![tenant, i64::try_from(seq).unwrap_or(i64::MAX)],
    )?;
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
            row.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut checkpoints = Vec::new();
    for row in rows {
        let (seq, key_id, hash, at, signature, tree) = row?;
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
            tree,
        });
    }
    Ok(checkpoints)
}

/// Replaces the stored note of the tree checkpoint (`tenant`, `size`, `key_id`), with cosignatures added.
pub(crate) fn set_tree_note(
    conn: &Connection,
    tenant: &str,
    size: u64,
    key_id: &str,
    note: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tree_checkpoints SET note = ?4 WHERE tenant = ?1 AND size = ?2 AND key_id = ?3",
    )?
    .execute(params![
        tenant,
        i64::try_from(size).unwrap_or(i64::MAX),
        key_id,
        note
    ])?;
    Ok(())
}

/// The stored note of the tree checkpoint (`tenant`, `size`, `key_id`).
pub(crate) fn tree_note(
    conn: &Connection,
    tenant: &str,
    size: u64,
    key_id: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT note FROM tree_checkpoints WHERE tenant = ?1 AND size = ?2 AND key_id = ?3",
        )?
        .query_row(
            params![tenant, i64::try_from(size).unwrap_or(i64::MAX), key_id],
            |row| row.get(0),
        )
        .optional()?)
}
