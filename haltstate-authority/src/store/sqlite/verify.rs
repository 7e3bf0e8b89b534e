//! Verifying the chains in SQLite (the walk is `store::chain`, the rows decoded by `store/decode.rs`).

use std::collections::HashMap;

use haltstate_types::VerifyReport;
use rusqlite::Connection;

use crate::error::Result;
use crate::store::chain::ChainVerifier;
use crate::store::decode::{self, stored_record_columns};

/// Recomputes every tenant's chain; the error names the tenant and the first broken record.
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    verify_chains(conn, None)
}

/// Recomputes one tenant's chain (what its operators may see verified).
pub(crate) fn verify_tenant(conn: &Connection, tenant: &str) -> Result<VerifyReport> {
    verify_chains(conn, Some(tenant))
}

/// The chains of `tenant`, or of every tenant (each query keeps its own SQL, so the one-tenant walk uses the
/// `(tenant, seq)` index).
fn verify_chains(conn: &Connection, tenant: Option<&str>) -> Result<VerifyReport> {
    let (heads_sql, rows_sql, values): (&str, &str, Vec<&dyn rusqlite::ToSql>) = match &tenant {
        Some(tenant) => (
            "SELECT tenant, seq, hash FROM ledger_heads WHERE tenant = ?1",
            concat!(
                "SELECT ",
                stored_record_columns!(),
                " FROM ledger WHERE tenant = ?1 ORDER BY seq"
            ),
            vec![tenant],
        ),
        None => (
            "SELECT tenant, seq, hash FROM ledger_heads",
            concat!(
                "SELECT ",
                stored_record_columns!(),
                " FROM ledger ORDER BY tenant, seq"
            ),
            Vec::new(),
        ),
    };
    let mut heads = HashMap::new();
    let mut statement = conn.prepare(heads_sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        heads.insert(row.get::<_, String>(0)?, (row.get(1)?, row.get(2)?));
    }
    drop(rows);
    let mut verifier = ChainVerifier::new(heads);
    let mut statement = conn.prepare(rows_sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        verifier.push(decode::stored_record(row)?)?;
    }
    verifier.finish()
}
