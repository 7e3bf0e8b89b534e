//! A transaction's usage copy against a real SQLite file: an undone operation's charges leave it, the rest are
//! stored when the transaction finishes, and only then.

use std::collections::BTreeMap;

use rusqlite::Connection;
use time::OffsetDateTime;

use super::tails::Tails;
use super::tx::SqliteTx;
use crate::policy::{Usage, UsageWindow};
use crate::state_rows::Charge;
use crate::store::Durability;
use crate::store::tx::Tx;

const SCOPE: (&str, &str, &str) = ("acme", "billing-agent", "refund.create");

fn charge(at: OffsetDateTime, cents: i64) -> Charge {
    Charge {
        at,
        figures: UsageWindow {
            count: 1,
            tokens: 0,
            sums: BTreeMap::from([("amount_cents".to_owned(), cents)]),
        },
    }
}

fn usage(tx: &mut SqliteTx<'_>) -> Usage {
    let (tenant, agent, action) = SCOPE;
    tx.usage(tenant, agent, action).unwrap()
}

/// Runs `op` as the runner does: under a savepoint, undone when it fails.
fn op(tx: &mut SqliteTx<'_>, fails: bool, f: impl FnOnce(&mut SqliteTx<'_>)) {
    tx.savepoint().unwrap();
    f(tx);
    if fails {
        tx.rollback_to_savepoint().unwrap();
    } else {
        tx.release_savepoint().unwrap();
    }
}

fn charge_op(tx: &mut SqliteTx<'_>, fails: bool, charged: &Charge) {
    let (tenant, agent, action) = SCOPE;
    op(tx, fails, |tx| {
        tx.charge_usage(tenant, agent, action, charged, 1).unwrap();
    });
}

fn stored_rows(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM usage_buckets", [], |row| row.get(0))
        .unwrap()
}

fn day(usage: &Usage) -> (u64, Option<i64>) {
    (usage.day.count, usage.day.sums.get("amount_cents").copied())
}

#[test]
fn an_undone_operations_charges_leave_the_copy_and_the_rest_are_stored_when_the_transaction_finishes()
 {
    let dir = tempfile::tempdir().unwrap();
    let conn = super::open_writer(
        &dir.path().join("haltstate.db"),
        Durability::Normal,
        super::DEFAULT_CHECKPOINT_PAGES,
    )
    .unwrap();
    let mut tails = Tails::default();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();

    // A transaction whose only charge is undone stores nothing: no bucket row begun, none written.
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, now);
    assert_eq!(day(&usage(&mut tx)), (0, None));
    charge_op(&mut tx, true, &charge(now, 5000));
    assert_eq!(day(&usage(&mut tx)), (0, None));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(stored_rows(&conn), 0);

    // Kept, undone, kept: the operation after the undone one decides without its charge.
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, now);
    charge_op(&mut tx, false, &charge(now, 100));
    assert_eq!(day(&usage(&mut tx)), (1, Some(100)));
    charge_op(&mut tx, true, &charge(now, 1000));
    assert_eq!(day(&usage(&mut tx)), (1, Some(100)));
    charge_op(&mut tx, false, &charge(now, 10));
    assert_eq!(day(&usage(&mut tx)), (2, Some(110)));
    // Nothing is written before the transaction finishes: the copy holds it.
    assert_eq!(stored_rows(&conn), 0);
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    // One bucket per span: second, minute, hour.
    assert_eq!(stored_rows(&conn), 3);

    // The next transaction reads what was stored, a minute later too (the second's bucket has left its window).
    for later in [now, now + time::Duration::seconds(90)] {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut tx = SqliteTx::new(&conn, &mut tails, later);
        let read = usage(&mut tx);
        assert_eq!(day(&read), (2, Some(110)));
        assert_eq!(read.minute.count, if later == now { 2 } else { 0 });
        tx.finish().unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }

    // A charge given back in a later transaction, then that operation undone: the charge stays counted.
    let later = now + time::Duration::seconds(90);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, later);
    let (tenant, agent, action) = SCOPE;
    op(&mut tx, true, |tx| {
        tx.charge_usage(tenant, agent, action, &charge(now, 100), -1)
            .unwrap();
        assert_eq!(day(&usage(tx)), (1, Some(10)));
    });
    assert_eq!(day(&usage(&mut tx)), (2, Some(110)));
    // A charge in a new second begins a bucket and prunes the second's bucket that left the window.
    charge_op(&mut tx, false, &charge(later, 1));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(
        stored_rows(&conn),
        4,
        "minute and hour kept, old second pruned"
    );
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, later);
    assert_eq!(day(&usage(&mut tx)), (3, Some(111)));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
}
