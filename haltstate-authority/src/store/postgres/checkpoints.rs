//! Signed checkpoints in PostgreSQL.

use haltstate_types::proof::{Checkpoint, SignedCheckpoint};
use haltstate_types::timestamp::{from_micros, to_micros};

use super::conn::{Conn, signed, unsigned};
use crate::error::Result;

/// A checkpoint with its tree head, when it has one.
macro_rules! SELECT {
    () => {
        "SELECT c.seq, c.key_id, c.hash, c.at_us, c.signature, t.note FROM checkpoints c \
         LEFT JOIN tree_checkpoints t ON t.tenant = c.tenant AND t.size = c.seq AND t.key_id = c.key_id "
    };
}

pub(crate) fn insert(conn: &mut Conn, checkpoint: &SignedCheckpoint) -> Result<()> {
    let c = &checkpoint.checkpoint;
    conn.execute(
        "INSERT INTO checkpoints (tenant, seq, key_id, hash, at_us, signature) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
        &[
            &c.tenant,
            &signed(c.seq),
            &c.key_id,
            &c.hash,
            &to_micros(c.at),
            &checkpoint.signature,
        ],
    )?;
    if let Some(note) = &checkpoint.tree {
        conn.execute(
            // Never over a stored one (another instance's, perhaps cosigned by now): the same key signs the same
            // head into the same note.
            "INSERT INTO tree_checkpoints (tenant, size, key_id, note) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, size, key_id) DO NOTHING",
            &[&c.tenant, &signed(c.seq), &c.key_id, note],
        )?;
    }
    Ok(())
}

/// Replaces the stored note of the tree checkpoint (`tenant`, `size`, `key_id`), with cosignatures added.
pub(crate) fn set_tree_note(
    conn: &mut Conn,
    tenant: &str,
    size: u64,
    key_id: &str,
    note: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE tree_checkpoints SET note = $4 WHERE tenant = $1 AND size = $2 AND key_id = $3",
        &[&tenant, &signed(size), &key_id, &note],
    )?;
    Ok(())
}

pub(crate) fn list(conn: &mut Conn, tenant: &str) -> Result<Vec<SignedCheckpoint>> {
    let rows = conn.query(
        concat!(SELECT!(), "WHERE c.tenant = $1 ORDER BY c.seq, c.at_us"),
        &[&tenant],
    )?;
    decode(&rows, tenant)
}

/// The first checkpoint at or after `seq`; for `u64::MAX`, the newest.
pub(crate) fn from(conn: &mut Conn, tenant: &str, seq: u64) -> Result<Option<SignedCheckpoint>> {
    let rows = if seq == u64::MAX {
        conn.query(
            concat!(
                SELECT!(),
                "WHERE c.tenant = $1 ORDER BY c.seq DESC, c.at_us DESC LIMIT 1"
            ),
            &[&tenant],
        )?
    } else {
        conn.query(
            concat!(
                SELECT!(),
                "WHERE c.tenant = $1 AND c.seq >= $2 ORDER BY c.seq, c.at_us LIMIT 1"
            ),
            &[&tenant, &signed(seq)],
        )?
    };
    Ok(decode(&rows, tenant)?.into_iter().next())
}

/// The first checkpoint with a signed tree head at or after `seq`.
pub(crate) fn tree_from(
    conn: &mut Conn,
    tenant: &str,
    seq: u64,
) -> Result<Option<SignedCheckpoint>> {
    let rows = conn.query(
        concat!(
            SELECT!(),
            "WHERE c.tenant = $1 AND c.seq >= $2 AND t.note IS NOT NULL ORDER BY c.seq, c.at_us LIMIT 1"
        ),
        &[&tenant, &signed(seq)],
    )?;
    Ok(decode(&rows, tenant)?.into_iter().next())
}

fn decode(rows: &[postgres::Row], tenant: &str) -> Result<Vec<SignedCheckpoint>> {
    rows.iter()
        .map(|row| {
            Ok(SignedCheckpoint {
                checkpoint: Checkpoint {
                    at: from_micros(row.try_get(3)?),
                    hash: row.try_get(2)?,
                    key_id: row.try_get(1)?,
                    seq: unsigned(row.try_get(0)?, "a checkpoint's sequence number")?,
                    tenant: tenant.to_owned(),
                },
                signature: row.try_get(4)?,
                tree: row.try_get(5)?,
            })
        })
        .collect()
}

/// The stored note of the tree checkpoint (`tenant`, `size`, `key_id`).
pub(crate) fn tree_note(
    conn: &mut Conn,
    tenant: &str,
    size: u64,
    key_id: &str,
) -> Result<Option<String>> {
    Ok(conn
        .query_opt(
            "SELECT note FROM tree_checkpoints WHERE tenant = $1 AND size = $2 AND key_id = $3",
            &[&tenant, &signed(size), &key_id],
        )?
        .map(|row| row.try_get(0))
        .transpose()?)
}
