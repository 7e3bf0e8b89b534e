//! Verifying the chains in SQLite (the walk is `store::chain`, the rows decoded by `store/decode.rs`).

use std::collections::HashMap;

use haltstate_types::VerifyReport;
use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::store::chain::{ChainVerifier, broken};
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
    if !super::times::indexed(conn)? {
        verifier = verifier.times_in_order();
    }
    let mut statement = conn.prepare(rows_sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        verifier.push(decode::stored_record(row)?)?;
    }
    let report = verifier.finish()?;
    check_key_heads(conn, tenant)?;
    Ok(report)
}

/// A record whose key's head is wrong (`key_first`, schema 22): one that names no head, a later record, or the head
/// of another key (`{scope}`: the records checked). A query by key finds a key's records through its head, so such
/// a record would be hidden from its key's evidence or slipped into another's. With one head per key (below), each
/// key's head is then its first record.
const MISFILED_RECORD: &str = "SELECT record.tenant, record.seq FROM ledger AS record \
     LEFT JOIN ledger AS head ON head.tenant = record.tenant AND head.seq = record.key_first \
     WHERE {scope} AND ((record.idempotency_key IS NULL) <> (record.key_first IS NULL) \
       OR (record.key_first IS NOT NULL AND (head.seq IS NULL OR record.key_first > record.seq \
         OR head.key_first IS NOT head.seq \
         OR head.idempotency_key IS NOT record.idempotency_key))) \
     ORDER BY record.tenant, record.seq LIMIT 1";

/// A key with a second head (the unique index forbids one; a file changed by hand may lack the index).
const SECOND_HEAD: &str = "SELECT record.tenant, max(record.seq) FROM ledger AS record \
     WHERE {scope} AND record.key_first = record.seq \
     GROUP BY record.tenant, record.idempotency_key HAVING count(*) > 1 ORDER BY record.tenant LIMIT 1";

/// Every record of `tenant` (or of every tenant) names the first record of its own key, and a key has one.
/// A file before schema 22 (verified by a migration before it, e.g. schema 17's trees) has no heads to check.
fn check_key_heads(conn: &Connection, tenant: Option<&str>) -> Result<()> {
    if !super::columns::ledger_has_column(conn, "key_first")? {
        return Ok(());
    }
    // One tenant's records through the `(tenant, seq)` index; every tenant's with `?1` bound to NULL.
    let scope = if tenant.is_some() {
        "record.tenant = ?1"
    } else {
        "?1 IS NULL"
    };
    for (sql, problem) in [
        (
            MISFILED_RECORD,
            "its key_first column does not name the first record of its idempotency key",
        ),
        (
            SECOND_HEAD,
            "its idempotency key has a first record already",
        ),
    ] {
        let found: Option<(String, u64)> = conn
            .prepare(&sql.replace("{scope}", scope))?
            .query_row([tenant], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((tenant, seq)) = found {
            return Err(broken(&tenant, seq, problem));
        }
    }
    Ok(())
}
