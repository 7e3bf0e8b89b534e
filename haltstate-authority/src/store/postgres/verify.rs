//! Verifying every tenant's chain in PostgreSQL, in one repeatable-read snapshot (writers keep writing).

use std::collections::HashMap;

use fallible_iterator::FallibleIterator;
use haltstate_types::VerifyReport;

use super::conn::Conn;
use crate::error::Result;
use crate::store::chain::{ChainVerifier, StoredRecord};

pub(crate) fn verify(conn: &mut Conn) -> Result<VerifyReport> {
    let mut tx = conn
        .client()
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut heads = HashMap::new();
    for row in tx.query("SELECT tenant, seq, hash FROM ledger_heads", &[])? {
        heads.insert(
            row.try_get::<_, String>(0)?,
            (row.try_get(1)?, row.try_get(2)?),
        );
    }
    let mut verifier = ChainVerifier::new(heads);
    let no_params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
    // Streamed, so that a ledger of any size is verified in constant memory.
    let mut rows = tx.query_raw(
        "SELECT tenant, seq, prev_hash, hash, body, at, idempotency_key FROM ledger \
         ORDER BY tenant COLLATE \"C\", seq",
        no_params,
    )?;
    while let Some(row) = rows.next()? {
        verifier.push(StoredRecord {
            tenant: row.try_get(0)?,
            seq: row.try_get(1)?,
            prev_hash: row.try_get(2)?,
            hash: row.try_get(3)?,
            body: row.try_get(4)?,
            at: row.try_get(5)?,
            idempotency_key: row.try_get(6)?,
        })?;
    }
    drop(rows);
    tx.commit()?;
    verifier.finish()
}

/// Recomputes one tenant's chain, in one snapshot.
pub(crate) fn verify_tenant(conn: &mut Conn, tenant: &str) -> Result<VerifyReport> {
    let mut tx = conn
        .client()
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let mut heads = HashMap::new();
    if let Some(row) = tx.query_opt(
        "SELECT seq, hash FROM ledger_heads WHERE tenant = $1",
        &[&tenant],
    )? {
        heads.insert(tenant.to_owned(), (row.try_get(0)?, row.try_get(1)?));
    }
    let mut verifier = ChainVerifier::new(heads);
    let mut rows = tx.query_raw(
        "SELECT tenant, seq, prev_hash, hash, body, at, idempotency_key FROM ledger WHERE tenant = $1 ORDER BY seq",
        [tenant],
    )?;
    while let Some(row) = rows.next()? {
        verifier.push(StoredRecord {
            tenant: row.try_get(0)?,
            seq: row.try_get(1)?,
            prev_hash: row.try_get(2)?,
            hash: row.try_get(3)?,
            body: row.try_get(4)?,
            at: row.try_get(5)?,
            idempotency_key: row.try_get(6)?,
        })?;
    }
    drop(rows);
    tx.commit()?;
    verifier.finish()
}
