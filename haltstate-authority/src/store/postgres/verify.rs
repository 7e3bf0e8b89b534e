//! Verifying the chains in PostgreSQL, in one repeatable-read snapshot (writers keep writing).

use std::collections::HashMap;

use fallible_iterator::FallibleIterator;
use haltstate_types::VerifyReport;

use super::conn::Conn;
use crate::error::Result;
use crate::store::chain::ChainVerifier;
use crate::store::decode::{self, stored_record_columns};

/// Recomputes every tenant's chain.
pub(crate) fn verify(conn: &mut Conn) -> Result<VerifyReport> {
    verify_chains(conn, None)
}

/// Recomputes one tenant's chain.
pub(crate) fn verify_tenant(conn: &mut Conn, tenant: &str) -> Result<VerifyReport> {
    verify_chains(conn, Some(tenant))
}

/// The chains of `tenant`, or of every tenant, streamed row by row so that a ledger of any size is verified in
/// constant memory.
fn verify_chains(conn: &mut Conn, tenant: Option<&str>) -> Result<VerifyReport> {
    let mut tx = conn
        .client()
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let head_rows = match tenant {
        Some(tenant) => tx.query(
            "SELECT tenant, seq, hash FROM ledger_heads WHERE tenant = $1",
            &[&tenant],
        )?,
        None => tx.query("SELECT tenant, seq, hash FROM ledger_heads", &[])?,
    };
    let mut heads = HashMap::new();
    for row in head_rows {
        heads.insert(
            row.try_get::<_, String>(0)?,
            (row.try_get(1)?, row.try_get(2)?),
        );
    }
    let mut verifier = ChainVerifier::new(heads);
    let mut rows = match tenant {
        Some(tenant) => tx.query_raw(
            concat!(
                "SELECT ",
                stored_record_columns!(),
                " FROM ledger WHERE tenant = $1 ORDER BY seq"
            ),
            [tenant],
        )?,
        None => tx.query_raw(
            concat!(
                "SELECT ",
                stored_record_columns!(),
                " FROM ledger ORDER BY tenant COLLATE \"C\", seq"
            ),
            std::iter::empty::<&str>(),
        )?,
    };
    while let Some(row) = rows.next()? {
        verifier.push(decode::stored_record(&row)?)?;
    }
    drop(rows);
    tx.commit()?;
    verifier.finish()
}
