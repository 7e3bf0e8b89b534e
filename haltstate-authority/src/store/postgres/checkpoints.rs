//! Signed checkpoints in PostgreSQL.

use haltstate_types::proof::{Checkpoint, SignedCheckpoint};
use haltstate_types::timestamp::{from_micros, to_micros};

use super::conn::{Conn, signed, unsigned};
use crate::error::Result;

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
    Ok(())
}

pub(crate) fn list(conn: &mut Conn, tenant: &str) -> Result<Vec<SignedCheckpoint>> {
    let rows = conn.query(
        "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = $1 ORDER BY seq, at_us",
        &[&tenant],
    )?;
    decode(&rows, tenant)
}

/// The first checkpoint at or after `seq`; for `u64::MAX`, the newest.
pub(crate) fn from(conn: &mut Conn, tenant: &str, seq: u64) -> Result<Option<SignedCheckpoint>> {
    let rows = if seq == u64::MAX {
        conn.query(
            "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = $1 \
             ORDER BY seq DESC, at_us DESC LIMIT 1",
            &[&tenant],
        )?
    } else {
        conn.query(
            "SELECT seq, key_id, hash, at_us, signature FROM checkpoints WHERE tenant = $1 AND seq >= $2 \
             ORDER BY seq, at_us LIMIT 1",
            &[&tenant, &signed(seq)],
        )?
    };
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
            })
        })
        .collect()
}
