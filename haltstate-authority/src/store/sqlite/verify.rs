//! Verifying the chains in SQLite (the walk is `store::chain`, the rows decoded by `store/decode.rs`).

use std::collections::HashMap;

use haltstate_types::VerifyReport;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::store::chain::{self, ChainVerifier, broken};
use crate::store::decode::{self, stored_record_columns};
use crate::store::windows::Windows;

/// Recomputes every tenant's chain; the error names the tenant and the first broken record.
///
/// In one snapshot: the heads and the records, read apart, disagree whenever the writer appends in between.
/// (Whoever holds the file runs this, not an operator over HTTP; a migration runs it inside its own transaction.)
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    let snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let mut heads = HashMap::new();
    let mut statement = conn.prepare("SELECT tenant, seq, hash FROM ledger_heads")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        heads.insert(row.get::<_, String>(0)?, (row.get(1)?, row.get(2)?));
    }
    drop(rows);
    let mut verifier = verifier(conn, heads)?;
    let mut statement = conn.prepare(concat!(
        "SELECT ",
        stored_record_columns!(),
        " FROM ledger ORDER BY tenant, seq"
    ))?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        verifier.push(decode::stored_record(row)?)?;
    }
    let report = verifier.finish()?;
    check_key_heads(conn, None)?;
    drop(snapshot);
    Ok(report)
}

/// Recomputes one tenant's chain (what its operators may see verified) up to the head it reads first, in windows
/// of records (`store/windows.rs`), each its own snapshot: records the writer appends meanwhile are past the head
/// read, not a broken chain, and no snapshot is held for the whole walk.
pub(crate) fn verify_tenant(conn: &Connection, tenant: &str) -> Result<VerifyReport> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM ledger_heads WHERE tenant = ?1")?
        .query_row([tenant], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    // Without a head there is nothing to walk: any record at all is then a broken chain (below).
    let end = head.as_ref().map_or(0, |(seq, _)| seq.saturating_add(1));
    let heads = head
        .map(|head| (tenant.to_owned(), head))
        .into_iter()
        .collect();
    let mut verifier = verifier(conn, heads)?;
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        stored_record_columns!(),
        " FROM ledger WHERE tenant = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq"
    ))?;
    for (after, before) in Windows::new(0, end, false) {
        let mut rows = statement.query(params![tenant, after, before])?;
        while let Some(row) = rows.next()? {
            verifier.push(decode::stored_record(row)?)?;
        }
    }
    let report = verifier.finish()?;
    let (head, last) = conn
        .prepare_cached(chain::TAIL)?
        .query_row([tenant], |row| Ok((row.get(0)?, row.get(1)?)))?;
    chain::check_tail(tenant, head, last)?;
    check_key_heads(conn, Some((tenant, end)))?;
    Ok(report)
}

/// A walk over `heads` (`tenant -> (seq, hash)`), checking times in order where the file has no index by time.
fn verifier(conn: &Connection, heads: HashMap<String, (i64, String)>) -> Result<ChainVerifier> {
    let verifier = ChainVerifier::new(heads);
    Ok(if super::times::indexed(conn)? {
        verifier
    } else {
        verifier.times_in_order()
    })
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
fn check_key_heads(conn: &Connection, tenant: Option<(&str, i64)>) -> Result<()> {
    if !super::columns::ledger_has_column(conn, "key_first")? {
        return Ok(());
    }
    let found = match tenant {
        // Every tenant's, in the caller's snapshot, with `?1` bound to NULL.
        None => first_misfiled(conn, "?1 IS NULL", params![None::<&str>])?,
        // One tenant's records through the `(tenant, seq)` index, a window at a time up to `end` (exclusive); a
        // second head is looked for among the key heads alone (an index of one entry per key).
        Some((tenant, end)) => {
            let mut found = None;
            let scope = "record.tenant = ?1 AND record.seq > ?2 AND record.seq < ?3";
            let sql = MISFILED_RECORD.replace("{scope}", scope);
            for (after, before) in Windows::new(0, end, false) {
                found = first(conn, &sql, params![tenant, after, before])?.map(misfiled);
                if found.is_some() {
                    break;
                }
            }
            // With the unique index SQLite refuses a second head; without it (a file changed by hand) one statement
            // looks, reading every key head of the tenant (1.5 s at 1.3 million records, 34 s from a cold cache).
            match found {
                Some(found) => Some(found),
                None if unique_key_heads(conn)? => None,
                None => first(
                    conn,
                    &SECOND_HEAD.replace("{scope}", "record.tenant = ?1"),
                    params![tenant],
                )?
                .map(second_head),
            }
        }
    };
    match found {
        Some((tenant, seq, problem)) => Err(broken(&tenant, seq, problem)),
        None => Ok(()),
    }
}

/// Whether the file has the unique index of key heads (schema 22), which forbids a key a second head.
fn unique_key_heads(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM pragma_index_list('ledger') WHERE name = 'ledger_key_head' AND \"unique\" = 1",
        )?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some())
}

/// What [`MISFILED_RECORD`] then [`SECOND_HEAD`] find first in `scope`.
fn first_misfiled(
    conn: &Connection,
    scope: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<Option<(String, u64, &'static str)>> {
    if let Some(found) = first(conn, &MISFILED_RECORD.replace("{scope}", scope), values)? {
        return Ok(Some(misfiled(found)));
    }
    Ok(first(conn, &SECOND_HEAD.replace("{scope}", scope), values)?.map(second_head))
}

fn misfiled((tenant, seq): (String, u64)) -> (String, u64, &'static str) {
    (
        tenant,
        seq,
        "its key_first column does not name the first record of its idempotency key",
    )
}

fn second_head((tenant, seq): (String, u64)) -> (String, u64, &'static str) {
    (
        tenant,
        seq,
        "its idempotency key has a first record already",
    )
}

/// The tenant and sequence number of the first row `sql` answers.
fn first(
    conn: &Connection,
    sql: &str,
    values: &[&dyn rusqlite::ToSql],
) -> Result<Option<(String, u64)>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(values, |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}
