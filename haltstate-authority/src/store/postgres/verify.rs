//! Verifying the chains in PostgreSQL: every tenant's in one repeatable-read snapshot (writers keep writing), one
//! tenant's a window at a time up to the head it read first.

use std::collections::HashMap;

use fallible_iterator::FallibleIterator;
use haltstate_types::VerifyReport;

use super::conn::Conn;
use crate::error::Result;
use crate::store::chain::{self, ChainVerifier};
use crate::store::decode::{self, stored_record_columns};
use crate::store::sql::dollars;
use crate::store::windows::Windows;

/// Recomputes every tenant's chain.
pub(crate) fn verify(conn: &mut Conn) -> Result<VerifyReport> {
    verify_chains(conn)
}

/// Recomputes one tenant's chain up to the head it reads first, a window of records at a time (`store/windows.rs`),
/// each window a statement and a snapshot of its own: a snapshot held for a whole walk keeps VACUUM from the head
/// rows' dead versions, which every commit leaves.
pub(crate) fn verify_tenant(conn: &mut Conn, tenant: &str) -> Result<VerifyReport> {
    let head: Option<(i64, String)> = conn
        .query_opt(
            "SELECT seq, hash FROM ledger_heads WHERE tenant = $1",
            &[&tenant],
        )?
        .map(|row| Ok::<_, postgres::Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()?;
    let end = head.as_ref().map_or(0, |(seq, _)| seq.saturating_add(1));
    let mut verifier = ChainVerifier::new(
        head.map(|head| (tenant.to_owned(), head))
            .into_iter()
            .collect(),
    );
    for (after, before) in Windows::new(0, end, false) {
        let rows = conn.query(
            concat!(
                "SELECT ",
                stored_record_columns!(),
                " FROM ledger WHERE tenant = $1 AND seq > $2 AND seq < $3 ORDER BY seq"
            ),
            &[&tenant, &after, &before],
        )?;
        for row in rows {
            verifier.push(decode::stored_record(&row)?)?;
        }
    }
    let report = verifier.finish()?;
    let tail = conn.query_dynamic(&dollars(chain::TAIL), &[&tenant])?;
    let (head, last) = match tail.first() {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (None, None),
    };
    chain::check_tail(tenant, head, last)?;
    Ok(report)
}

/// The chains of every tenant in one snapshot, streamed row by row so that a ledger of any size is verified in
/// constant memory.
fn verify_chains(conn: &mut Conn) -> Result<VerifyReport> {
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
    let mut rows = tx.query_raw(
        concat!(
            "SELECT ",
            stored_record_columns!(),
            " FROM ledger ORDER BY tenant COLLATE \"C\", seq"
        ),
        std::iter::empty::<&str>(),
    )?;
    while let Some(row) = rows.next()? {
        verifier.push(decode::stored_record(&row)?)?;
    }
    drop(rows);
    tx.commit()?;
    verifier.finish()
}
