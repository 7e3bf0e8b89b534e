//! Several writers on PostgreSQL, each owning a share of the tenants: tenants commit side by side, so one tenant
//! whose chain is held (a stuck transaction of another instance, a slow disk under its rows) does not stop the
//! tenants of the other writers; a contested key still runs once in each tenant and every chain verifies. A SQLite
//! database has one writer and refuses more. Against a real PostgreSQL server the test starts.

#![allow(clippy::unwrap_used)]

mod common;

use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{MONDAY_10AM, guard_refund, sample_policy_path};
use haltstate_authority::{
    Authority, AuthorityError, Database, GuardAnswer, GuardStatus, MAX_POSTGRES_WRITERS,
    ManualClock, RequestError,
};

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

    // Another session holds the tenant's head row, as another instance's transaction would while it commits.
    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut hold = other.transaction().unwrap();
    let locked = hold
        .query(
            "SELECT seq FROM ledger_heads WHERE tenant = $1 FOR UPDATE",
            &[&held],
        )
        .unwrap();
    assert_eq!(locked.len(), 1);

    let (held_answers, stuck) = mpsc::channel();
    guard_in_background(&authority, held, "refund:second", 0, &held_answers);
    // Its writer is waiting for the row before any other tenant's guard is queued.
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
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
        assert!(
            std::time::Instant::now() < deadline,
            "the held tenant's guard never waited for its row"
        );
        std::thread::yield_now();
    }
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

    hold.rollback().unwrap();
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
