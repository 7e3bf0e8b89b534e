//! A transaction's usage copy against a real SQLite file: an undone operation's charges leave it, the rest are
//! stored when the transaction finishes, and only then.

use std::collections::BTreeMap;

use rusqlite::Connection;
use time::OffsetDateTime;

use super::key_rowids::KeyRowids;
use super::tails::Tails;
use super::tx::SqliteTx;
use crate::policy::{Usage, UsageWindow};
use crate::state_rows::Charge;
use crate::store::Durability;
use crate::store::tx::Tx;
use crate::store::usage_batch::UsageBatch;

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

/// Runs `op` as the runner does when it isolates operations: under a savepoint, undone when it fails.
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

/// The writer's connection to a new file in `dir`.
fn writer(dir: &tempfile::TempDir) -> Connection {
    super::open_writer(
        &dir.path().join("haltstate.db"),
        Durability::Normal,
        super::DEFAULT_CHECKPOINT_PAGES,
    )
    .unwrap()
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
    let conn = writer(&dir);
    let mut tails = Tails::default();
    let mut kept = UsageBatch::default();
    let mut rows = KeyRowids::default();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();

    // A transaction whose only charge is undone stores nothing: no bucket row begun, none written.
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, now);
    assert_eq!(day(&usage(&mut tx)), (0, None));
    charge_op(&mut tx, true, &charge(now, 5000));
    assert_eq!(day(&usage(&mut tx)), (0, None));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(stored_rows(&conn), 0);

    // Kept, undone, kept: the operation after the undone one decides without its charge.
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, now);
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
        let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, later);
        let read = usage(&mut tx);
        assert_eq!(day(&read), (2, Some(110)));
        assert_eq!(read.minute.count, if later == now { 2 } else { 0 });
        tx.finish().unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }

    // A charge given back in a later transaction, then that operation undone: the charge stays counted.
    let later = now + time::Duration::seconds(90);
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, later);
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
    let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, later);
    assert_eq!(day(&usage(&mut tx)), (3, Some(111)));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

#[test]
fn a_clock_that_went_back_reads_the_buckets_the_kept_copy_had_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let conn = writer(&dir);
    let (mut tails, mut kept, mut rows) = (
        Tails::default(),
        UsageBatch::default(),
        KeyRowids::default(),
    );
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let minute = |kept: &mut UsageBatch, tails: &mut Tails, at: OffsetDateTime| {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut rows = KeyRowids::default();
        let mut tx = SqliteTx::new(&conn, tails, kept, &mut rows, at);
        let count = usage(&mut tx).minute.count;
        tx.finish().unwrap();
        conn.execute_batch("COMMIT").unwrap();
        count
    };
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, now);
    charge_op(&mut tx, false, &charge(now, 100));
    tx.finish().unwrap();
    conn.execute_batch("COMMIT").unwrap();
    // Ninety seconds on, the second's bucket has left the minute: the kept copy lets it go, the database keeps it
    // (nothing began a new bucket to prune it).
    assert_eq!(
        minute(&mut kept, &mut tails, now + time::Duration::seconds(90)),
        0
    );
    assert_eq!(stored_rows(&conn), 3);
    // The clock back where it was: the bucket is inside the minute again, as the database still holds it.
    assert_eq!(minute(&mut kept, &mut tails, now), 1);
}

mod against_a_model {
    //! Random histories of charges, give-backs, undone operations and transactions over two agents, decided from
    //! the transaction's copy, against a model that applies every charge to the stored buckets at once (what the
    //! database held when each charge was written as it came): every usage read must be the model's.

    use proptest::prelude::*;

    use super::*;
    use crate::store::usage::SPANS;

    const AGENTS: [&str; 2] = ["billing-agent", "support-agent"];

    /// One charge: the agent, how many seconds before the transaction's clock it was made, cents, and whether it
    /// is given back.
    type Charged = (usize, u32, i64, bool);

    #[derive(Debug, Clone)]
    struct Operation {
        charges: Vec<Charged>,
        undone: bool,
    }

    /// The stored buckets by (agent, span, start), as the model keeps them.
    type Buckets = BTreeMap<(usize, usize, i64), UsageWindow>;

    fn model_charge(
        buckets: &mut Buckets,
        now: OffsetDateTime,
        (agent, back, cents, back_given): Charged,
    ) {
        let charged = charge(now - time::Duration::seconds(i64::from(back)), cents);
        for (index, span) in SPANS.iter().enumerate() {
            let start = span.bucket(charged.at);
            if start >= span.first(now) {
                buckets
                    .entry((agent, index, start))
                    .or_default()
                    .add(&charged.figures, if back_given { -1 } else { 1 });
            }
        }
    }

    fn model_usage(buckets: &Buckets, agent: usize, now: OffsetDateTime) -> Usage {
        let mut usage = Usage::default();
        for ((of, span, start), figures) in buckets {
            let span = &SPANS[*span];
            if *of == agent
                && *start >= span.first(now)
                && let Some(window) = usage.window_mut(span.window)
            {
                window.add(figures, 1);
            }
        }
        usage
    }

    fn check(tx: &mut SqliteTx<'_>, model: &Buckets, now: OffsetDateTime, when: &str) {
        for (agent, name) in AGENTS.iter().enumerate() {
            let read = tx.usage(SCOPE.0, name, SCOPE.2).unwrap();
            assert_eq!(read, model_usage(model, agent, now), "{name}, {when}");
        }
    }

    fn operation() -> impl Strategy<Value = Operation> {
        let charged = (
            0..AGENTS.len(),
            prop_oneof![0..5u32, 0..120u32, 0..7_200u32, 80_000..90_000u32],
            -50..1_000i64,
            prop::bool::weighted(0.25),
        );
        (
            prop::collection::vec(charged, 0..4),
            prop::bool::weighted(0.25),
        )
            .prop_map(|(charges, undone)| Operation { charges, undone })
    }

    fn history() -> impl Strategy<Value = Vec<(Vec<Operation>, u32)>> {
        let advance = prop_oneof![Just(0u32), 1..3u32, 50..70u32, 3_500..3_700u32];
        prop::collection::vec((prop::collection::vec(operation(), 0..6), advance), 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_usage_read_is_what_charges_written_at_once_would_give(history in history()) {
            let dir = tempfile::tempdir().unwrap();
            let conn = writer(&dir);
            let mut tails = Tails::default();
    let mut kept = UsageBatch::default();
            let mut rows = KeyRowids::default();
            let mut now = OffsetDateTime::from_unix_timestamp(1_800_000_007).unwrap();
            let mut stored = Buckets::new();
            for (number, (operations, advance)) in history.into_iter().enumerate() {
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                {
                    // What the database holds, read afresh: the writer's kept copies must equal it.
                    let (mut tails, mut fresh, mut rows) = (Tails::default(), UsageBatch::default(), KeyRowids::default());
                    let mut tx = SqliteTx::new(&conn, &mut tails, &mut fresh, &mut rows, now);
                    check(&mut tx, &stored, now, &format!("read afresh as transaction {number} begins"));
                }
                let mut tx = SqliteTx::new(&conn, &mut tails, &mut kept, &mut rows, now);
                check(&mut tx, &stored, now, &format!("as transaction {number} begins"));
                let mut seen = stored.clone();
                for (i, operation) in operations.into_iter().enumerate() {
                    let before = seen.clone();
                    op(&mut tx, operation.undone, |tx| {
                        for &charged in &operation.charges {
                            let (agent, back, cents, given_back) = charged;
                            let at = now - time::Duration::seconds(i64::from(back));
                            let sign = if given_back { -1 } else { 1 };
                            tx.charge_usage(SCOPE.0, AGENTS[agent], SCOPE.2, &charge(at, cents), sign)
                                .unwrap();
                            model_charge(&mut seen, now, charged);
                        }
                    });
                    if operation.undone {
                        seen = before;
                    }
                    check(&mut tx, &seen, now, &format!("after operation {i} of transaction {number}"));
                }
                tx.finish().unwrap();
                conn.execute_batch("COMMIT").unwrap();
                stored = seen;
                now += time::Duration::seconds(i64::from(advance));
            }
        }
    }
}
