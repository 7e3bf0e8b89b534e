//! The same stored-row cases on both backends, one after the other in each test: what a row decodes to, what a
//! rule applies on read (an overdue approval reads expired), and what a row that does not decode does (refused,
//! never guessed; a kill switch fails closed). Rows are written with each driver's own client, behind the
//! authority's back, as a damaged or hand-edited database would hold them.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use haltstate_authority::{
    ActionRequest, ApprovalStatus, AuthorityError, Database, GuardRequest, GuardStatus, KillScope,
    KillState, Role,
};
use std::sync::Arc;

use haltstate_authority::{Authority, AuthorityBuilder, ManualClock};
use haltstate_testkit::postgres::Backend;

use common::{Env, MONDAY_10AM, TENANT};

const POLICY: &str = r#"@id("held") @approval("required") permit(principal, action == Action::"refund.create", resource);"#;

/// Where a test's rows are, for writing them behind the authority's back.
enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// An authority on `backend` (configured by `configure`, over the policy above), and its rows.
struct World {
    env: Env,
    raw: Raw,
}

fn world(backend: Backend, configure: impl FnOnce(AuthorityBuilder) -> AuthorityBuilder) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (database, raw) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("haltstate.db");
            (Database::Sqlite(path.clone()), Raw::Sqlite(path))
        }
        Backend::Postgres => {
            let url = haltstate_testkit::postgres::test_database();
            (Database::parse(&url), Raw::Postgres(url))
        }
    };
    let clock = Arc::new(ManualClock::at(MONDAY_10AM));
    let authority = configure(
        Authority::builder(database.clone())
            .clock(clock.clone())
            .policy_source("p.cedar", POLICY),
    )
    .open()
    .unwrap();
    World {
        env: Env {
            dir,
            clock,
            database,
            authority,
        },
        raw,
    }
}

impl World {
    /// Runs `sql` (placeholders written `$1`, `$2`) on the database directly.
    fn raw(&self, sql: &str, args: &[&str]) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let sql = sql.replace('$', "?");
                conn.execute(&sql, rusqlite::params_from_iter(args))
                    .unwrap();
            }
            Raw::Postgres(url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let args: Vec<&(dyn postgres::types::ToSql + Sync)> = args
                    .iter()
                    .map(|a| a as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                client.execute(sql, &args).unwrap();
            }
        }
    }
}

fn each_backend(test: impl Fn(Backend)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        test(backend);
    }
}

/// An approval held for `key`: its id.
fn held(env: &Env, key: &str) -> String {
    let answer = env
        .authority
        .guard(
            TENANT,
            GuardRequest::new(ActionRequest::new("agent-1", "refund.create"), key),
        )
        .wait()
        .unwrap();
    assert_eq!(answer.status, GuardStatus::Pending);
    answer.approval_id.unwrap()
}

#[test]
fn an_overdue_approval_reads_expired_at_its_expiry_on_both_backends() {
    each_backend(|backend| {
        let w = world(backend, |b| b.approval_ttl(Duration::from_secs(60)));
        let env = &w.env;
        let id = held(env, "k-1");
        env.clock.advance(Duration::from_secs(61));
        let read = env.authority.approval(TENANT, &id).unwrap();
        assert_eq!(read.status, ApprovalStatus::Expired, "{backend:?}");
        assert_eq!(read.decided_at, Some(read.expires_at), "{backend:?}");
        let expired = env
            .authority
            .approvals(TENANT, Some(ApprovalStatus::Expired), 10)
            .unwrap();
        assert_eq!(expired.len(), 1, "{backend:?}");
        let pending = env
            .authority
            .approvals(TENANT, Some(ApprovalStatus::Pending), 10)
            .unwrap();
        assert!(pending.is_empty(), "{backend:?}");
    });
}

#[test]
fn an_approval_with_an_unknown_status_is_refused_not_shown() {
    each_backend(|backend| {
        let w = world(backend, |b| b);
        let env = &w.env;
        let id = held(env, "k-1");
        w.raw(
            "UPDATE approvals SET status = 'maybe' WHERE id = $1",
            &[&id],
        );
        let read = env.authority.approval(TENANT, &id);
        assert!(
            matches!(read, Err(AuthorityError::Corrupt(_))),
            "{backend:?}: {read:?}"
        );
    });
}

#[test]
fn a_key_row_with_an_unknown_state_is_refused_not_guessed() {
    each_backend(|backend| {
        let w = world(backend, |b| b);
        let env = &w.env;
        held(env, "k-1");
        w.raw(
            "UPDATE idempotency SET state = 'half-done' WHERE key = $1",
            &["k-1"],
        );
        let status = env.authority.idempotency_status(TENANT, "agent-1", "k-1");
        assert!(
            matches!(status, Err(AuthorityError::Corrupt(_))),
            "{backend:?}: {status:?}"
        );
        let again = env
            .authority
            .guard(
                TENANT,
                GuardRequest::new(ActionRequest::new("agent-1", "refund.create"), "k-1"),
            )
            .wait();
        assert!(
            matches!(again, Err(AuthorityError::Corrupt(_))),
            "{backend:?}: {again:?}"
        );
    });
}

#[test]
fn an_unreadable_kill_switch_stops_the_agent() {
    each_backend(|backend| {
        let w = world(backend, |b| b);
        let env = &w.env;
        env.authority
            .set_kill_switch(
                KillScope::Agent {
                    tenant: TENANT.into(),
                    agent_id: "agent-1".into(),
                },
                KillState::Pause,
                "ops",
            )
            .wait()
            .unwrap();
        w.raw(
            "UPDATE kill_switch SET state = 'SNOOZE' WHERE agent_id = $1",
            &["agent-1"],
        );
        let status = env.authority.kill_switch(TENANT, Some("agent-1")).unwrap();
        assert_eq!(status.state, KillState::Kill, "{backend:?}");
    });
}

#[test]
fn a_key_whose_agent_set_does_not_decode_authenticates_nobody() {
    each_backend(|backend| {
        let w = world(backend, |b| b);
        let env = &w.env;
        let made = env
            .authority
            .create_key(TENANT, "bot", Role::Agent)
            .wait()
            .unwrap();
        w.raw(
            "UPDATE api_keys SET agents = 'not json' WHERE id = $1",
            &[&made.id],
        );
        let who = env.authority.authenticate(TENANT, &made.secret);
        assert!(
            matches!(who, Err(AuthorityError::Unauthenticated)),
            "{backend:?}: {who:?}"
        );
        let listed = env.authority.keys(TENANT, false);
        assert!(
            matches!(listed, Err(AuthorityError::Corrupt(_))),
            "{backend:?}: {listed:?}"
        );
    });
}

#[test]
fn a_usage_bucket_with_a_negative_count_is_refused_not_read_as_zero() {
    const RATE: &str = r#"@id("exports.rate") permit(principal, action == Action::"data.export", resource)
        when { context.usage.minute.count < 2 };"#;
    each_backend(|backend| {
        let w = world(backend, |b| b.policy_source("rate.cedar", RATE));
        let env = &w.env;
        let export = |key: &str| {
            env.authority
                .guard(
                    TENANT,
                    GuardRequest::new(ActionRequest::new("agent-1", "data.export"), key),
                )
                .wait()
        };
        assert_eq!(export("e:1").unwrap().status, GuardStatus::Allowed);
        assert_eq!(export("e:2").unwrap().status, GuardStatus::Allowed);
        assert_eq!(export("e:3").unwrap().status, GuardStatus::Denied);
        // A count gone negative (a hand edit, a bad restore) must not reopen the budget.
        w.raw(
            "UPDATE usage_buckets SET count = -5 WHERE agent_id = $1",
            &["agent-1"],
        );
        let refused = export("e:4").unwrap_err();
        assert!(
            matches!(refused, AuthorityError::Corrupt(ref why) if why.contains("count")),
            "{backend:?}: {refused:?}"
        );
    });
}

/// A tenant's chain check (a window of records at a time, up to the head it read first) finds what lies past the
/// head: a record the head row no longer reaches, and records whose head row is gone.
#[test]
fn a_tenants_chain_check_finds_a_record_past_its_head_and_a_missing_head() {
    each_backend(|backend| {
        let world = world(backend, |b| b);
        for i in 0..3 {
            held(&world.env, &format!("refund:{i}"));
        }
        let records = world
            .env
            .authority
            .verify_tenant_ledger(TENANT)
            .unwrap()
            .records;
        assert!(records >= 3, "{backend:?}: {records}");
        let broken = |world: &World| match world.env.authority.verify_tenant_ledger(TENANT) {
            Err(AuthorityError::LedgerBroken { seq, problem, .. }) => (seq, problem),
            other => panic!("{backend:?}: not caught: {other:?}"),
        };
        // The head set back one record, hash and all: the chain up to it is whole, the last record past it.
        world.raw(
            "UPDATE ledger_heads SET seq = seq - 1, hash = (SELECT hash FROM ledger \
             WHERE ledger.tenant = $1 AND ledger.seq = ledger_heads.seq - 1) WHERE tenant = $1",
            &[TENANT],
        );
        let (seq, problem) = broken(&world);
        assert_eq!(seq, records, "{backend:?}: {problem}");
        assert!(problem.contains("past the head"), "{backend:?}: {problem}");
        world.raw("DELETE FROM ledger_heads WHERE tenant = $1", &[TENANT]);
        let (seq, problem) = broken(&world);
        assert_eq!(seq, records, "{backend:?}: {problem}");
        assert!(
            problem.contains("head is missing"),
            "{backend:?}: {problem}"
        );
    });
}
