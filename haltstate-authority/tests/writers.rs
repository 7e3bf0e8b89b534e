//! Several writers on PostgreSQL, each owning a share of the tenants: tenants commit side by side, so one tenant
//! whose chain is held (a stuck transaction of another instance, a slow disk under its rows) does not stop the
//! tenants of the other writers; a contested key still runs once in each tenant and every chain verifies. A SQLite
//! database has one writer and refuses more. Against a real PostgreSQL server the test starts.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::{Future, IntoFuture};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::Context;
use std::time::Duration;

use common::{MONDAY_10AM, guard_refund, sample_policy_path};
use haltstate_authority::{
    Authority, AuthorityError, Database, GuardAnswer, GuardStatus, MAX_POSTGRES_WRITERS,
    ManualClock, Pending, PendingFuture, RequestError,
};
use haltstate_types::{Outcome, OutcomeReport};

/// Long enough for any commit on a loaded machine; a deadline, not a pause: every wait ends on its answer.
const DEADLINE: Duration = Duration::from_secs(60);

fn open(url: &str, writers: Option<usize>) -> Result<Authority, AuthorityError> {
    let mut builder = Authority::builder(Database::parse(url))
        .clock(Arc::new(ManualClock::at(MONDAY_10AM)))
        .policy_file(sample_policy_path());
    if let Some(writers) = writers {
        builder = builder.postgres_writers(NonZeroUsize::new(writers).unwrap());
    }
    builder.open()
}

/// Guards a refund of `tenant` on a thread of its own; its answer arrives on `answers`, labelled `label`.
fn guard_in_background(
    authority: &Authority,
    tenant: &str,
    key: &str,
    label: usize,
    answers: &mpsc::Sender<(usize, GuardAnswer)>,
) {
    let (authority, tenant, key) = (authority.clone(), tenant.to_owned(), key.to_owned());
    let answers = answers.clone();
    std::thread::spawn(move || {
        let answer = authority
            .guard(&tenant, guard_refund(100, &key))
            .wait()
            .unwrap();
        let _ = answers.send((label, answer));
    });
}

/// Returns once a session of this database waits for a lock (a writer's transaction queued behind a held row).
fn wait_for_a_lock_wait(url: &str, never: &str) {
    let mut watch = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while watch
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "{never}");
        std::thread::yield_now();
    }
}

/// Another session holding `tenant`'s head row, as another instance's transaction would while it commits,
/// until [`release`](HeldHead::release).
struct HeldHead(postgres::Client);

impl HeldHead {
    fn hold(url: &str, tenant: &str) -> HeldHead {
        let mut session = postgres::Client::connect(url, postgres::NoTls).unwrap();
        session.batch_execute("BEGIN").unwrap();
        let locked = session
            .query(
                "SELECT seq FROM ledger_heads WHERE tenant = $1 FOR UPDATE",
                &[&tenant],
            )
            .unwrap();
        assert_eq!(locked.len(), 1, "{tenant} has no head row to hold");
        HeldHead(session)
    }

    fn release(mut self) {
        self.0.batch_execute("ROLLBACK").unwrap();
    }
}

/// From now on the database refuses every ledger record of key `refund:poison` (a trigger: a full disk, a
/// constraint a migration added, any refusal).
fn refuse_records_of_poison(url: &str) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.idempotency_key = 'refund:poison' THEN RAISE EXCEPTION 'refused'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON ledger \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        )
        .unwrap();
}

/// The SQLite file of `admin` refuses every ledger record of key `refund:poison` from now on.
fn refuse_sqlite_records_of_poison(admin: &rusqlite::Connection) {
    admin
        .execute_batch(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON ledger \
             WHEN json_extract(NEW.body, '$.idempotency_key') = 'refund:poison' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
}

/// `pending`'s operation queued for its writer (a first poll does that), to be awaited later.
fn queued<T>(pending: Pending<T>) -> Pin<Box<PendingFuture<T>>> {
    let mut future = Box::pin(pending.into_future());
    let poll = future
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()));
    assert!(poll.is_pending(), "answered before its writer was free");
    future
}

#[test]
fn a_tenant_whose_chain_is_held_does_not_stop_the_tenants_of_other_writers() {
    let url = haltstate_testkit::postgres::test_database();
    // The default number of writers.
    let authority = open(&url, None).unwrap();
    let held = "held";
    let first = authority
        .guard(held, guard_refund(100, "refund:first"))
        .wait()
        .unwrap();
    assert_eq!(first.status, GuardStatus::Allowed);

    let hold = HeldHead::hold(&url, held);

    let (held_answers, stuck) = mpsc::channel();
    guard_in_background(&authority, held, "refund:second", 0, &held_answers);
    // Its writer is waiting for the row before any other tenant's guard is queued.
    wait_for_a_lock_wait(&url, "the held tenant's guard never waited for its row");
    // Eight other tenants: with four writers, some are on another writer than `held` (which ones is the
    // writers' business), and those answer while its row is held.
    let (answers, others) = mpsc::channel();
    for i in 0..8 {
        guard_in_background(&authority, &format!("t{i}"), "refund:1", i, &answers);
    }
    let (answered, answer) = others.recv_timeout(DEADLINE).expect(
        "no tenant answered while one tenant's head row was held: every tenant waits on one writer",
    );
    assert_eq!(
        answer.status,
        GuardStatus::Allowed,
        "t{answered}: {answer:?}"
    );
    assert!(
        matches!(stuck.try_recv(), Err(mpsc::TryRecvError::Empty)),
        "the held tenant's guard answered while its head row was locked"
    );

    hold.release();
    let (_, second) = stuck.recv_timeout(DEADLINE).unwrap();
    assert_eq!(second.status, GuardStatus::Allowed);
    for _ in 1..8 {
        let (i, answer) = others.recv_timeout(DEADLINE).unwrap();
        assert_eq!(answer.status, GuardStatus::Allowed, "t{i}: {answer:?}");
    }
    let report = authority.verify_ledger().unwrap();
    assert_eq!(report.records, 10, "{report:?}");
    assert_eq!(report.chains.len(), 9, "{report:?}");
}

#[test]
fn many_tenants_at_once_on_several_writers_run_each_contested_key_once_and_verify() {
    let url = haltstate_testkit::postgres::test_database();
    let authority = open(&url, Some(3)).unwrap();
    let (tenants, callers) = (6, 8);
    let barrier = Arc::new(Barrier::new(tenants * callers));
    let threads: Vec<_> = (0..tenants)
        .flat_map(|t| (0..callers).map(move |c| (t, c)))
        .map(|(t, c)| {
            let (authority, barrier) = (authority.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let tenant = format!("tenant-{t}");
                let contested = authority
                    .guard(&tenant, guard_refund(100, "refund:contested"))
                    .wait()
                    .unwrap();
                let own = authority
                    .guard(&tenant, guard_refund(100, &format!("refund:{c}")))
                    .wait()
                    .unwrap();
                (t, contested, own)
            })
        })
        .collect();
    let mut winners = vec![0; tenants];
    for thread in threads {
        let (t, contested, own) = thread.join().unwrap();
        assert_eq!(own.status, GuardStatus::Allowed, "{own:?}");
        if contested.status == GuardStatus::Allowed {
            winners[t] += 1;
        } else {
            assert_eq!(contested.status, GuardStatus::InProgress, "{contested:?}");
        }
    }
    assert_eq!(winners, vec![1; tenants]);
    let report = authority.verify_ledger().unwrap();
    assert_eq!(report.chains.len(), tenants, "{report:?}");
    // Every guard is a record, the contested key's refusals too.
    assert_eq!(report.records, (tenants * callers * 2) as u64, "{report:?}");
    // Another instance with another number of writers reads the same chains.
    drop(authority);
    let again = open(&url, Some(1)).unwrap();
    assert_eq!(again.verify_ledger().unwrap(), report);
}

#[test]
fn more_writers_than_the_most_are_refused_before_connecting() {
    let url = haltstate_testkit::postgres::test_database();
    let error = open(&url, Some(MAX_POSTGRES_WRITERS + 1)).unwrap_err();
    assert!(
        matches!(&error, AuthorityError::Request(RequestError::Invalid(why)) if why.contains("at most")),
        "{error:?}"
    );
    assert!(open(&url, Some(MAX_POSTGRES_WRITERS)).is_ok());
}

#[test]
fn a_sqlite_database_has_one_writer_and_refuses_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haltstate.db");
    let error = open(path.to_str().unwrap(), Some(2)).unwrap_err();
    assert!(
        matches!(&error, AuthorityError::Request(RequestError::Invalid(why)) if why.contains("SQLite")),
        "{error:?}"
    );
    assert!(!path.exists(), "the refused authority created its file");
    let authority = open(path.to_str().unwrap(), Some(1)).unwrap();
    let answer = authority
        .guard("acme", guard_refund(100, "refund:1"))
        .wait()
        .unwrap();
    assert_eq!(answer.status, GuardStatus::Allowed);
}

/// A SQLite batch runs its operations without savepoints (copying each changed page into a savepoint's journal was
/// a fifth of the writer's work), yet an operation whose write the database refuses half-way must still fail alone:
/// the transaction is rolled back and run again with a savepoint per operation, so the operations before it in the
/// batch (whose first run was rolled back) and after it are answered and stored as if it had never been queued,
/// and it stores nothing. The batch after that one runs with savepoints, and fails only its own refused operation
/// too.
#[test]
fn a_sqlite_write_refused_half_way_fails_only_its_operation_and_the_batch_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haltstate.db");
    let authority = open(path.to_str().unwrap(), None).unwrap();
    let tenant = "refusing";
    let guard = |key: &str| authority.guard(tenant, guard_refund(100, key));
    assert_eq!(
        guard("refund:before").wait().unwrap().status,
        GuardStatus::Allowed
    );
    let admin = rusqlite::Connection::open(&path).unwrap();
    // The key's row is written before its record, so the refusal comes after a write of the same operation.
    refuse_sqlite_records_of_poison(&admin);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    for round in 0..2 {
        let stats = authority.writer_stats();
        // With the file's write lock held, the writer waits at its first batch's BEGIN, and the rest queue behind
        // it: the refused guard shares its transaction with at least one guard before it and two after.
        admin.execute_batch("BEGIN IMMEDIATE").unwrap();
        let before: Vec<_> = (0..2)
            .map(|i| queued(guard(&format!("refund:{round}:before-{i}"))))
            .collect();
        let poison = queued(guard("refund:poison"));
        let after: Vec<_> = (0..2)
            .map(|i| queued(guard(&format!("refund:{round}:after-{i}"))))
            .collect();
        admin.execute_batch("COMMIT").unwrap();

        let error = runtime.block_on(poison).unwrap_err();
        assert!(
            matches!(&error, AuthorityError::Storage(why) if why.to_string().contains("refused")),
            "round {round}: {error:?}"
        );
        for (i, answer) in before.into_iter().chain(after).enumerate() {
            let answer = runtime.block_on(answer).unwrap();
            assert_eq!(
                answer.status,
                GuardStatus::Allowed,
                "round {round}, guard {i}"
            );
            assert!(answer.claim.is_some(), "round {round}, guard {i}");
        }
        let now = authority.writer_stats();
        assert_eq!(now.operations - stats.operations, 5, "round {round}");
        assert!(
            now.transactions - stats.transactions <= 2,
            "round {round}: the refused guard had a transaction of its own: {stats:?} -> {now:?}"
        );
    }

    // What the answered guards stored is there (a second guard of a claimed key is told it is in progress), the
    // refused guard stored nothing (its key is fresh once the database takes its record), and the chain verifies.
    assert_eq!(
        guard("refund:0:before-0").wait().unwrap().status,
        GuardStatus::InProgress
    );
    assert_eq!(
        guard("refund:1:after-1").wait().unwrap().status,
        GuardStatus::InProgress
    );
    admin.execute_batch("DROP TRIGGER refuse_poison").unwrap();
    let poison = guard("refund:poison").wait().unwrap();
    assert_eq!(poison.status, GuardStatus::Allowed);
    let report = authority.verify_ledger().unwrap();
    assert_eq!(report.records, 1 + 2 * 4 + 2 + 1, "{report:?}");
}

/// SQLite's writer keeps the usage buckets it charged from one transaction to the next. A batch that is rolled
/// back and run again (an operation refused half-way) must charge each guard once: the charges of the run rolled
/// back go with it.
#[test]
fn a_sqlite_batch_run_again_after_a_refused_write_charges_each_guard_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haltstate.db");
    let budgeted = |budget: u32| {
        Authority::builder(Database::parse(path.to_str().unwrap()))
            .clock(Arc::new(ManualClock::at(MONDAY_10AM)))
            .policy_source(
                "budget.cedar",
                format!(
                    r#"@id("refunds.budget")
                       permit(principal, action == Action::"refund.create", resource)
                       when {{ context.usage.day.sum.amount_cents + context.params.amount_cents <= {budget} }};"#
                ),
            )
            .open()
            .unwrap()
    };
    let authority = budgeted(500);
    let tenant = "budgeted";
    let guard = |key: &str| authority.guard(tenant, guard_refund(100, key));
    assert_eq!(
        guard("refund:first").wait().unwrap().status,
        GuardStatus::Allowed
    );
    let admin = rusqlite::Connection::open(&path).unwrap();
    refuse_sqlite_records_of_poison(&admin);
    // Held at its BEGIN, the writer takes all five in one batch: two guards charge before the refused one.
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    let queued: Vec<_> = ["before-0", "before-1", "poison", "after-0", "after-1"]
        .map(|key| queued(guard(&format!("refund:{key}"))))
        .into_iter()
        .collect();
    admin.execute_batch("COMMIT").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let answers: Vec<_> = queued
        .into_iter()
        .map(|answer| runtime.block_on(answer).map(|a| a.status))
        .collect();
    assert!(answers[2].is_err(), "{answers:?}");
    // 100 before, and four of 100 in the batch: the budget of 500 is spent exactly, not at the second guard after.
    for at in [0, 1, 3, 4] {
        assert_eq!(
            answers[at].as_ref().ok(),
            Some(&GuardStatus::Allowed),
            "{answers:?}"
        );
    }
    assert_eq!(
        guard("refund:over").wait().unwrap().status,
        GuardStatus::Denied
    );
    drop(authority);
    // What was stored says the same to a writer that reads it afresh.
    let reopened = budgeted(600);
    assert_eq!(
        reopened
            .guard(tenant, guard_refund(100, "refund:last"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );
    assert_eq!(
        reopened
            .guard(tenant, guard_refund(100, "refund:beyond"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Denied
    );
}

/// A writer holds a transaction's key rows and records back and sends them together (one statement), and runs no
/// SQL savepoints: a write the database refuses must fail its whole transaction, every operation of it (none
/// acknowledged, none stored), and the writer must go on from the chain as stored.
#[test]
fn a_write_the_database_refuses_fails_its_whole_transaction_and_the_writer_goes_on() {
    let url = haltstate_testkit::postgres::test_database();
    let authority = open(&url, None).unwrap();
    let tenant = "refusing";
    let guard = |key: &str| authority.guard(tenant, guard_refund(100, key));
    assert_eq!(
        guard("refund:before").wait().unwrap().status,
        GuardStatus::Allowed
    );
    // The database refuses one key's ledger record.
    refuse_records_of_poison(&url);

    // With the tenant's head row held, a first guard's transaction waits for it and everything queued behind
    // it goes into the next transaction: the refused key first, four others after it.
    let hold = HeldHead::hold(&url, tenant);
    let first = queued(guard("refund:first"));
    wait_for_a_lock_wait(&url, "the first guard never waited for the head row");
    let poison = queued(guard("refund:poison"));
    let behind: Vec<_> = (0..4)
        .map(|i| queued(guard(&format!("refund:behind-{i}"))))
        .collect();
    hold.release();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(
        runtime.block_on(first).unwrap().status,
        GuardStatus::Allowed
    );
    // The transaction's key rows and records go to the database together, before its COMMIT: every caller of it
    // hears that it failed, with the database's reason (none of them is told the refusal was its own write's).
    for (i, answer) in std::iter::once(poison).chain(behind).enumerate() {
        let error = runtime.block_on(answer).unwrap_err();
        assert!(
            matches!(&error, AuthorityError::CommitFailed(why) if why.contains("refused")),
            "operation {i} of the failed transaction: {error:?}"
        );
    }

    // Nothing of that transaction was stored: a key batched behind the refused one is fresh (a stored claim
    // would answer InProgress), and the chain goes on from the last committed record.
    assert_eq!(
        guard("refund:behind-0").wait().unwrap().status,
        GuardStatus::Allowed
    );
    assert_eq!(
        guard("refund:after").wait().unwrap().status,
        GuardStatus::Allowed
    );
    let report = authority.verify_ledger().unwrap();
    assert_eq!(report.records, 4, "{report:?}");
    drop(authority);
    assert_eq!(
        open(&url, Some(1)).unwrap().verify_ledger().unwrap(),
        report
    );
}

/// A tenant transaction of several guards and reports reads their key rows in one statement before it runs them:
/// each operation must still see what the operations before it in the same transaction wrote, agent by agent.
#[test]
fn the_operations_of_one_transaction_see_each_others_key_rows() {
    let url = haltstate_testkit::postgres::test_database();
    let authority = open(&url, None).unwrap();
    let tenant = "batched";
    let guard_as = |agent: &str, key: &str| {
        let mut request = guard_refund(100, key);
        request.action.agent_id = agent.to_owned();
        authority.guard(tenant, request)
    };
    assert_eq!(
        guard_as("billing-agent", "refund:done")
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );

    // Everything queued while a first guard waits for the held head row runs in the next transaction, in order.
    let hold = HeldHead::hold(&url, tenant);
    let first = queued(guard_as("billing-agent", "refund:first"));
    wait_for_a_lock_wait(&url, "the first guard never waited for the head row");
    let completed = queued(authority.report(
        tenant,
        OutcomeReport::new("refund:done", Outcome::Success).agent("billing-agent"),
    ));
    let done_again = queued(guard_as("billing-agent", "refund:done"));
    let other_agent = queued(guard_as("support-agent", "refund:done"));
    let fresh = queued(guard_as("billing-agent", "refund:fresh"));
    let fresh_again = queued(guard_as("billing-agent", "refund:fresh"));
    let other_again = queued(guard_as("support-agent", "refund:done"));
    // A key claimed and completed in the same transaction: its row is written twice, stored once as completed.
    let claimed = queued(guard_as("billing-agent", "refund:both"));
    let reported = queued(authority.report(
        tenant,
        OutcomeReport::new("refund:both", Outcome::Success).agent("billing-agent"),
    ));
    hold.release();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let status =
        |future: Pin<Box<PendingFuture<GuardAnswer>>>| runtime.block_on(future).unwrap().status;
    assert_eq!(status(first), GuardStatus::Allowed);
    runtime.block_on(completed).unwrap();
    // The report completed the key earlier in the same transaction.
    assert_eq!(status(done_again), GuardStatus::Completed);
    // Keys are per agent: another agent's row of the same key is its own, claimed once.
    assert_eq!(status(other_agent), GuardStatus::Allowed);
    assert_eq!(status(fresh), GuardStatus::Allowed);
    assert_eq!(status(fresh_again), GuardStatus::InProgress);
    assert_eq!(status(other_again), GuardStatus::InProgress);
    assert_eq!(status(claimed), GuardStatus::Allowed);
    runtime.block_on(reported).unwrap();
    assert_eq!(
        guard_as("billing-agent", "refund:both")
            .wait()
            .unwrap()
            .status,
        GuardStatus::Completed
    );
    authority.verify_ledger().unwrap();
}

/// A tenant transaction keeps the usage buckets it reads and charges in memory and writes them before its
/// `COMMIT`: guards of one agent batched in one transaction must each see the charges before them (exactly the
/// budget is admitted), the next transaction must see them stored, and a transaction that fails must store none.
#[test]
fn one_transactions_guards_charge_each_others_budget_and_a_failed_one_charges_nothing() {
    let url = haltstate_testkit::postgres::test_database();
    let authority = Authority::builder(Database::parse(&url))
        .clock(Arc::new(ManualClock::at(MONDAY_10AM)))
        .policy_source(
            "budget.cedar",
            r#"@id("refunds.budget")
               permit(principal, action == Action::"refund.create", resource)
               when { context.usage.day.sum.amount_cents + context.params.amount_cents <= 1000 };"#,
        )
        .open()
        .unwrap();
    let tenant = "budgeted";
    let guard_as = |agent: &str, key: &str| {
        let mut request = guard_refund(100, key);
        request.action.agent_id = agent.to_owned();
        authority.guard(tenant, request)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let status =
        |future: Pin<Box<PendingFuture<GuardAnswer>>>| runtime.block_on(future).unwrap().status;
    assert_eq!(
        guard_as("billing-agent", "refund:0").wait().unwrap().status,
        GuardStatus::Allowed
    );

    // Twelve refunds of 100 queued behind a first one, in one transaction: 100 + 100 were charged before them, so
    // eight fit the budget of 1,000 and four do not.
    let hold = HeldHead::hold(&url, tenant);
    let first = queued(guard_as("billing-agent", "refund:first"));
    wait_for_a_lock_wait(&url, "the first guard never waited for the head row");
    let batched: Vec<_> = (1..=12)
        .map(|i| queued(guard_as("billing-agent", &format!("refund:{i}"))))
        .collect();
    hold.release();
    assert_eq!(status(first), GuardStatus::Allowed);
    let statuses: Vec<_> = batched.into_iter().map(status).collect();
    let expected: Vec<_> = (1..=12)
        .map(|i| {
            if i <= 8 {
                GuardStatus::Allowed
            } else {
                GuardStatus::Denied
            }
        })
        .collect();
    assert_eq!(statuses, expected);
    // Stored: the next transaction finds the budget spent.
    assert_eq!(
        guard_as("billing-agent", "refund:13")
            .wait()
            .unwrap()
            .status,
        GuardStatus::Denied
    );

    // Another agent's transaction fails (the database refuses one key's record): none of its charges is stored.
    refuse_records_of_poison(&url);
    let hold = HeldHead::hold(&url, tenant);
    let first = queued(guard_as("billing-agent", "refund:14"));
    wait_for_a_lock_wait(&url, "the first guard never waited for the head row");
    let before = queued(guard_as("support-agent", "refund:before-poison"));
    let poison = queued(guard_as("support-agent", "refund:poison"));
    let after = queued(guard_as("support-agent", "refund:after-poison"));
    hold.release();
    assert_eq!(status(first), GuardStatus::Denied);
    for failed in [before, poison, after] {
        assert!(runtime.block_on(failed).is_err());
    }
    // The whole budget is still the support agent's: ten refunds of 100 fit, the eleventh does not.
    for i in 0..10 {
        assert_eq!(
            guard_as("support-agent", &format!("support:{i}"))
                .wait()
                .unwrap()
                .status,
            GuardStatus::Allowed,
            "support:{i}"
        );
    }
    assert_eq!(
        guard_as("support-agent", "support:10")
            .wait()
            .unwrap()
            .status,
        GuardStatus::Denied
    );
    authority.verify_ledger().unwrap();
}
