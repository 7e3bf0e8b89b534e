//! Keys whose lifetime is `operation` (what the guard macros derive from a call's arguments): one operation
//! until it ends, then the key's next operation, decided afresh; evidence names each record's generation, and the
//! state check holds rows to it. On the suite's backend, except the tampering tests, which edit SQLite directly.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{TENANT, env, env_with, guard_refund, sample_policy_path, sqlite_env};
use haltstate_authority::{
    ApprovalStatus, Authority, EvidenceKind, EvidenceQuery, EvidenceRecord, GuardAnswer,
    GuardRequest, GuardStatus, KeyLifetime, KeyState, Outcome, OutcomeReport,
};

const AGENT: &str = "billing-agent";

/// A refund of `cents` under `key`, one operation until it ends.
fn repeatable(cents: i64, key: &str) -> GuardRequest {
    guard_refund(cents, key).lifetime(KeyLifetime::Operation)
}

fn guard(authority: &Authority, request: GuardRequest) -> GuardAnswer {
    authority.guard(TENANT, request).wait().unwrap()
}

fn report(authority: &Authority, key: &str, answer: &GuardAnswer, outcome: Outcome) {
    let token = answer
        .claim
        .as_ref()
        .expect("a claim to report")
        .token
        .clone();
    authority
        .report(TENANT, OutcomeReport::new(key, outcome).claim_token(token))
        .wait()
        .unwrap();
}

fn status(authority: &Authority, key: &str) -> (KeyState, u64) {
    let status = authority
        .idempotency_status(TENANT, AGENT, key)
        .unwrap()
        .unwrap();
    (status.state, status.generation)
}

fn records(authority: &Authority, key: &str) -> Vec<EvidenceRecord> {
    let query = EvidenceQuery {
        idempotency_key: Some(key.into()),
        ..EvidenceQuery::default()
    };
    authority.evidence(TENANT, &query).unwrap()
}

/// (kind, status, generation) of every record of `key`.
fn history(authority: &Authority, key: &str) -> Vec<(EvidenceKind, String, Option<u64>)> {
    records(authority, key)
        .into_iter()
        .map(|r| (r.kind, r.status.unwrap_or_default(), r.generation))
        .collect()
}

#[test]
fn an_operation_key_runs_again_once_its_operation_completed() {
    let env = env();
    let a = &env.authority;
    let first = guard(a, repeatable(100, "export:nightly"));
    assert_eq!((first.status, first.generation), (GuardStatus::Allowed, 1));
    report(a, "export:nightly", &first, Outcome::Success);
    assert_eq!(status(a, "export:nightly"), (KeyState::Completed, 1));

    let second = guard(a, repeatable(100, "export:nightly"));
    assert_eq!(
        (second.status, second.generation),
        (GuardStatus::Allowed, 2)
    );
    assert_eq!(status(a, "export:nightly"), (KeyState::Claimed, 2));
    report(a, "export:nightly", &second, Outcome::Success);

    use EvidenceKind::{Guard, Outcome as Done};
    assert_eq!(
        history(a, "export:nightly"),
        vec![
            (Guard, "allowed".into(), Some(1)),
            (Done, "completed".into(), Some(1)),
            (Guard, "allowed".into(), Some(2)),
            (Done, "completed".into(), Some(2)),
        ]
    );
    assert_eq!(a.verify_state(&Default::default()).unwrap(), 1);
}

#[test]
fn a_once_key_stays_completed_and_names_no_generation() {
    let env = env();
    let a = &env.authority;
    let first = guard(a, guard_refund(100, "refund:once"));
    report(a, "refund:once", &first, Outcome::Success);
    let again = guard(a, guard_refund(100, "refund:once"));
    assert_eq!(
        (again.status, again.generation),
        (GuardStatus::Completed, 1)
    );
    // Asking for an operation key does not turn a `once` key into one.
    let asked = guard(a, repeatable(100, "refund:once"));
    assert_eq!(asked.status, GuardStatus::Completed);
    assert!(
        records(a, "refund:once")
            .iter()
            .filter(|r| r.kind != EvidenceKind::Guard || r.status.as_deref() != Some("completed"))
            .all(|r| r.generation.is_none()),
        "{:?}",
        history(a, "refund:once")
    );
}

#[test]
fn sixteen_identical_calls_at_once_are_one_run_and_fifteen_in_progress() {
    let env = env();
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(16));
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (authority, barrier) = (env.authority.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    guard(&authority, repeatable(100, "export:shared"))
                })
            })
            .collect();
        let answers: Vec<GuardAnswer> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let winners: Vec<&GuardAnswer> = answers.iter().filter(|a| a.status.may_run()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        assert!(
            answers
                .iter()
                .all(|a| a.status.may_run() || a.status == GuardStatus::InProgress),
            "{answers:?}"
        );
        assert!(
            answers.iter().all(|a| a.generation == round + 1),
            "{answers:?}"
        );
        report(
            &env.authority,
            "export:shared",
            winners[0],
            Outcome::Success,
        );
    }
}

#[test]
fn an_approval_round_trip_by_exit_and_retry_runs_once_then_asks_again() {
    let env = env();
    let a = &env.authority;
    let asked = guard(a, repeatable(90_000, "refund:big"));
    assert_eq!(asked.status, GuardStatus::Pending);
    let approval = asked.approval_id.clone().unwrap();
    // The caller exits and retries: the same approval, not a second one.
    let retried = guard(a, repeatable(90_000, "refund:big"));
    assert_eq!(
        (
            retried.status,
            retried.approval_id.as_deref(),
            retried.generation
        ),
        (GuardStatus::Pending, Some(approval.as_str()), 1)
    );
    a.approve(TENANT, &approval, "alice", None).wait().unwrap();
    let approved = guard(a, repeatable(90_000, "refund:big"));
    assert_eq!(
        (approved.status, approved.generation),
        (GuardStatus::Approved, 1)
    );
    // While it runs, the same call is in progress.
    assert_eq!(
        guard(a, repeatable(90_000, "refund:big")).status,
        GuardStatus::InProgress
    );
    report(a, "refund:big", &approved, Outcome::Success);
    // Completed: the same arguments again are a new refund, which a human must approve again.
    let next = guard(a, repeatable(90_000, "refund:big"));
    assert_eq!((next.status, next.generation), (GuardStatus::Pending, 2));
    assert_ne!(next.approval_id.as_deref(), Some(approval.as_str()));
    assert_eq!(
        a.verify_state(&Default::default()).unwrap(),
        2,
        "a key and the decided approval"
    );
}

#[test]
fn a_rejection_stands_for_the_same_arguments_until_its_window_closes() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .approval_ttl(Duration::from_secs(3600))
    });
    let a = &env.authority;
    let asked = guard(a, repeatable(90_000, "refund:cron"));
    let approval = asked.approval_id.clone().unwrap();
    a.reject(TENANT, &approval, "alice", Some("not this one".into()))
        .wait()
        .unwrap();
    // A cron retrying every ten minutes is refused without asking anyone.
    for _ in 0..5 {
        env.clock.advance(Duration::from_secs(600));
        let refused = guard(a, repeatable(90_000, "refund:cron"));
        assert_eq!(
            (refused.status, refused.generation),
            (GuardStatus::Denied, 1)
        );
        assert!(
            refused.reason.contains("not this one"),
            "{}",
            refused.reason
        );
        assert!(refused.reason.contains("stands"), "{}", refused.reason);
    }
    assert_eq!(
        a.approvals(TENANT, Some(ApprovalStatus::Pending), 10)
            .unwrap()
            .len(),
        0
    );
    // Past the window the approval had, the same call asks again.
    env.clock.advance(Duration::from_secs(600));
    let again = guard(a, repeatable(90_000, "refund:cron"));
    assert_eq!((again.status, again.generation), (GuardStatus::Pending, 2));
    assert_ne!(again.approval_id.as_deref(), Some(approval.as_str()));
}

#[test]
fn an_approval_nobody_answered_is_asked_again_by_the_next_call() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .approval_ttl(Duration::from_secs(60))
    });
    let a = &env.authority;
    let first = guard(a, repeatable(90_000, "refund:unanswered"));
    env.clock.advance(Duration::from_secs(61));
    let second = guard(a, repeatable(90_000, "refund:unanswered"));
    assert_eq!(
        (second.status, second.generation),
        (GuardStatus::Pending, 2)
    );
    let old = a
        .approval(TENANT, first.approval_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(old.status, ApprovalStatus::Expired);
    assert_eq!(
        status(a, "refund:unanswered"),
        (KeyState::PendingApproval, 2)
    );
    assert!(a.verify_state(&Default::default()).is_ok());
}

#[test]
fn a_failed_operation_is_followed_by_a_new_one_decided_afresh() {
    let env = env();
    let a = &env.authority;
    let first = guard(a, repeatable(100, "refund:flaky"));
    report(a, "refund:flaky", &first, Outcome::Error);
    let second = guard(a, repeatable(100, "refund:flaky"));
    assert_eq!(
        (second.status, second.generation),
        (GuardStatus::Allowed, 2)
    );
    // Denied by policy now (the amount changed): nothing is stored, the key stays at its failed operation.
    let key = "refund:flaky";
    report(a, key, &second, Outcome::Error);
    let denied = guard(a, repeatable(900_000, key));
    assert_eq!((denied.status, denied.generation), (GuardStatus::Denied, 3));
    assert_eq!(status(a, key), (KeyState::Failed, 2));
}

/// Edits the row of `key` in the SQLite file behind the authority's back.
fn edit_row(env: &common::Env, sql: &str) {
    let conn = rusqlite::Connection::open(env.db_path()).unwrap();
    assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
}

#[test]
fn a_completed_operation_set_back_in_its_row_does_not_run_again() {
    let env = sqlite_env();
    let a = &env.authority;
    let first = guard(a, repeatable(100, "refund:set-back"));
    report(a, "refund:set-back", &first, Outcome::Success);
    // Someone with the database makes the completed operation look like a lapsed claim of the same operation.
    edit_row(
        &env,
        "UPDATE idempotency SET state = 'claimed', lease_until_us = 0 WHERE key = 'refund:set-back'",
    );
    let refused = guard(a, repeatable(100, "refund:set-back"));
    assert_eq!(refused.status, GuardStatus::Denied);
    assert!(
        refused.reason.contains("contradicts") || refused.reason.contains("ledger"),
        "{}",
        refused.reason
    );
    assert!(a.verify_state(&Default::default()).is_err());
}

#[test]
fn a_row_behind_the_ledger_generation_is_named_by_the_state_check() {
    let env = sqlite_env();
    let a = &env.authority;
    for _ in 0..2 {
        let answer = guard(a, repeatable(100, "refund:behind"));
        report(a, "refund:behind", &answer, Outcome::Success);
    }
    assert!(a.verify_state(&Default::default()).is_ok());
    edit_row(
        &env,
        "UPDATE idempotency SET generation = 1 WHERE key = 'refund:behind'",
    );
    let said = a.verify_state(&Default::default()).unwrap_err().to_string();
    assert!(
        said.contains("operation 2") && said.contains("operation 1"),
        "{said}"
    );
}

#[test]
fn a_proof_pack_of_one_operation_holds_that_operation_and_verifies() {
    use haltstate_authority::proof::verify;
    use haltstate_authority::{ProofSelection, SigningKey};
    let env = env();
    let a = &env.authority;
    let first = guard(a, repeatable(100, "refund:packed"));
    report(a, "refund:packed", &first, Outcome::Success);
    // The second operation needs a human: its approval's record belongs to it too.
    let asked = guard(a, repeatable(90_000, "refund:packed"));
    assert_eq!((asked.status, asked.generation), (GuardStatus::Pending, 2));
    a.approve(TENANT, asked.approval_id.as_deref().unwrap(), "alice", None)
        .wait()
        .unwrap();
    let approved = guard(a, repeatable(90_000, "refund:packed"));
    report(a, "refund:packed", &approved, Outcome::Success);
    let key = SigningKey::generate();
    a.checkpoint(&key).unwrap();
    let pack = |generation| {
        a.proof_pack(
            TENANT,
            &ProofSelection {
                key: Some("refund:packed".into()),
                generation,
                ..ProofSelection::default()
            },
        )
        .unwrap()
    };
    let second = pack(Some(2));
    verify(&second, &key.public()).unwrap();
    let kinds: Vec<(&str, Option<u64>)> = second
        .records
        .iter()
        .map(|r| (r.record.kind.as_str(), r.record.generation))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("guard", Some(2)),
            ("approval", Some(2)),
            ("guard", Some(2)),
            ("outcome", Some(2)),
        ]
    );
    assert_eq!(pack(Some(1)).records.len(), 2);
    assert_eq!(pack(None).records.len(), 6);
    let none = a.proof_pack(
        TENANT,
        &ProofSelection {
            key: Some("refund:packed".into()),
            generation: Some(3),
            ..ProofSelection::default()
        },
    );
    assert!(none.is_err());
}

#[test]
fn each_operation_under_one_key_is_counted_by_usage_limits() {
    let env = env_with(|b| {
        b.policy_source(
            "limits.cedar",
            r#"
            @id("nightly") permit(principal, action == Action::"report.send", resource);
            @id("twice-a-day") @reason("at most two reports a day")
            forbid(principal, action == Action::"report.send", resource)
            when { context.usage.day.count >= 2 };
            "#,
        )
    });
    let a = &env.authority;
    let send = || {
        GuardRequest::new(
            haltstate_authority::ActionRequest::new(AGENT, "report.send"),
            "report:daily",
        )
        .lifetime(KeyLifetime::Operation)
    };
    for generation in 1..=2 {
        let answer = guard(a, send());
        assert_eq!(
            (answer.status, answer.generation),
            (GuardStatus::Allowed, generation)
        );
        report(a, "report:daily", &answer, Outcome::Success);
    }
    // The same key's third operation is a third report: the limit counts it.
    let third = guard(a, send());
    assert_eq!(third.status, GuardStatus::Denied, "{third:?}");
    assert_eq!(third.policy_id.as_deref(), Some("twice-a-day"));
}
