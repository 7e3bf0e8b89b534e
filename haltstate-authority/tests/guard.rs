//! Guards and idempotency claims: allow claims, success completes, error releases, leases lapse, and one key
//! is one operation.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::IntoFuture;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{TENANT, env, env_with, guard_refund, refund, sqlite_env};
use haltstate_authority::{
    AuthorityError, EvidenceKind, EvidenceQuery, GuardRequest, GuardStatus, KeyState, Outcome,
    OutcomeReport,
};
use serde_json::json;

#[test]
fn allowed_guard_claims_the_key_with_a_lease() {
    let env = env();
    let answer = env
        .authority
        .guard(TENANT, guard_refund(4_500, "refund:1"))
        .wait()
        .unwrap();
    assert_eq!(answer.status, GuardStatus::Allowed);
    assert_eq!(answer.policy_id.as_deref(), Some("refunds.small"));
    let claim = answer.claim.expect("an allowed guard carries a claim");
    assert_eq!(
        claim.lease_until,
        common::MONDAY_10AM + haltstate_authority::DEFAULT_LEASE
    );
    let (state, remaining) = env
        .authority
        .idempotency_state(TENANT, "billing-agent", "refund:1")
        .unwrap()
        .unwrap();
    assert_eq!(state, KeyState::Claimed);
    assert_eq!(remaining, Some(haltstate_authority::DEFAULT_LEASE));
}

#[test]
fn denied_guard_claims_nothing_and_runs_policy_again_on_retry() {
    let env = env();
    let answer = env
        .authority
        .guard(TENANT, guard_refund(900_000, "refund:big"))
        .wait()
        .unwrap();
    assert_eq!(answer.status, GuardStatus::Denied);
    assert_eq!(answer.reason, haltstate_authority::NO_POLICY_PERMITS);
    assert!(answer.claim.is_none());
    assert_eq!(
        env.authority
            .idempotency_state(TENANT, "billing-agent", "refund:big")
            .unwrap(),
        None
    );
}

#[test]
fn second_guard_while_claimed_is_in_progress() {
    let env = env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:2"))
        .wait()
        .unwrap();
    let second = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:2"))
        .wait()
        .unwrap();
    assert_eq!(second.status, GuardStatus::InProgress);
    assert!(second.claim.is_none());
}

#[test]
fn completed_replay_answers_completed_with_the_recorded_outcome() {
    let env = env();
    let first = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:3"))
        .wait()
        .unwrap();
    let token = first.claim.unwrap().token;
    let report = OutcomeReport::new("refund:3", Outcome::Success)
        .claim_token(token)
        .resource_ref("refund:re_1");
    let ack = env.authority.report(TENANT, report).wait().unwrap();
    assert_eq!(ack.state, KeyState::Completed);
    assert!(!ack.duplicate);

    let replay = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:3"))
        .wait()
        .unwrap();
    assert_eq!(replay.status, GuardStatus::Completed);
    assert_eq!(replay.completed_seq, Some(ack.ledger_seq));
    assert!(replay.claim.is_none());
    let outcome = &env
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                after_seq: Some(ack.ledger_seq - 1),
                limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap()[0];
    assert_eq!(outcome.outcome, Some(Outcome::Success));
    assert_eq!(outcome.resource_refs, vec!["refund:re_1".to_owned()]);
}

#[test]
fn key_conflict_is_an_error_never_a_replay() {
    let env = env();
    env.authority
        .guard(TENANT, guard_refund(100, "refund:4"))
        .wait()
        .unwrap();
    let error = env
        .authority
        .guard(TENANT, guard_refund(200, "refund:4"))
        .wait()
        .unwrap_err();
    assert!(
        matches!(&error, AuthorityError::IdempotencyConflict { key } if key == "refund:4"),
        "{error}"
    );
    assert_eq!(error.code().as_str(), "idempotency_conflict");
    // Another resource or risk under the same key conflicts too; another agent's same key is its own operation
    // (keys are scoped per agent).
    let mut other_agent = guard_refund(100, "refund:4");
    other_agent.action.agent_id = "someone-else".into();
    assert_eq!(
        env.authority
            .guard(TENANT, other_agent)
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );
    // The refusal is evidence too.
    let records = env
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("refund:4".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.status.as_deref() == Some("denied"))
            .count(),
        1
    );
    // The same key in another tenant is another operation.
    assert_eq!(
        env.authority
            .guard("globex", guard_refund(200, "refund:4"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );
}

#[test]
fn metadata_and_param_order_do_not_change_the_operation() {
    let env = env();
    let request = refund(100).param("currency", json!("EUR"));
    env.authority
        .guard(TENANT, GuardRequest::new(request.clone(), "refund:5"))
        .wait()
        .unwrap();
    let mut reordered = request.clone();
    reordered.params = request
        .params
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let reordered = reordered.metadata(serde_json::Map::from_iter([(
        "note".into(),
        json!("for the approver"),
    )]));
    let again = env
        .authority
        .guard(TENANT, GuardRequest::new(reordered, "refund:5"))
        .wait()
        .unwrap();
    assert_eq!(again.status, GuardStatus::InProgress);
}

#[test]
fn error_releases_the_claim_and_a_retry_claims_again() {
    let env = env();
    let first = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:6"))
        .wait()
        .unwrap();
    let report = OutcomeReport::new("refund:6", Outcome::Error)
        .claim_token(first.claim.unwrap().token)
        .error("gateway timeout");
    assert_eq!(
        env.authority.report(TENANT, report).wait().unwrap().state,
        KeyState::Failed
    );
    let retry = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:6"))
        .wait()
        .unwrap();
    assert_eq!(retry.status, GuardStatus::Allowed);
    assert!(retry.claim.is_some());
}

#[test]
fn panicked_cancelled_and_aborted_outcomes_release_the_claim_too() {
    let env = env();
    for (i, outcome) in [Outcome::Panicked, Outcome::Cancelled, Outcome::Aborted]
        .into_iter()
        .enumerate()
    {
        let key = format!("refund:rel{i}");
        env.authority
            .guard(TENANT, guard_refund(100, &key))
            .wait()
            .unwrap();
        let ack = env
            .authority
            .report(TENANT, OutcomeReport::new(&key, outcome))
            .wait()
            .unwrap();
        assert_eq!(ack.state, KeyState::Failed);
        assert_eq!(
            env.authority
                .guard(TENANT, guard_refund(100, &key))
                .wait()
                .unwrap()
                .status,
            GuardStatus::Allowed
        );
    }
}

#[test]
fn lease_expiry_lets_another_worker_re_claim_and_the_old_token_goes_stale() {
    let env = env_with(|b| {
        b.policy_file(common::sample_policy_path())
            .lease(Duration::from_secs(30))
    });
    let first = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:7"))
        .wait()
        .unwrap();
    let stale_token = first.claim.unwrap().token;
    env.clock.advance(Duration::from_secs(29));
    assert_eq!(
        env.authority
            .guard(TENANT, guard_refund(100, "refund:7"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::InProgress
    );
    env.clock.advance(Duration::from_secs(2));
    let reclaimed = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:7"))
        .wait()
        .unwrap();
    assert_eq!(reclaimed.status, GuardStatus::Allowed);
    assert!(
        reclaimed.reason.contains("lease expired"),
        "{}",
        reclaimed.reason
    );
    let fresh_token = reclaimed.claim.unwrap().token;
    assert_ne!(fresh_token, stale_token);

    let late = OutcomeReport::new("refund:7", Outcome::Success).claim_token(stale_token);
    assert!(matches!(
        env.authority.report(TENANT, late).wait(),
        Err(AuthorityError::StaleClaim { .. })
    ));
    let current = OutcomeReport::new("refund:7", Outcome::Success).claim_token(fresh_token);
    assert_eq!(
        env.authority.report(TENANT, current).wait().unwrap().state,
        KeyState::Completed
    );
}

#[test]
fn retried_report_is_acknowledged_once_and_recorded_once() {
    let env = env();
    let token = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:8"))
        .wait()
        .unwrap()
        .claim
        .unwrap()
        .token;
    let report = OutcomeReport::new("refund:8", Outcome::Success).claim_token(token);
    let first = env.authority.report(TENANT, report.clone()).wait().unwrap();
    let second = env.authority.report(TENANT, report).wait().unwrap();
    assert!(second.duplicate);
    assert_eq!(second.ledger_seq, first.ledger_seq);
    let outcomes = env
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("refund:8".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        outcomes
            .iter()
            .filter(|r| r.kind == EvidenceKind::Outcome)
            .count(),
        1
    );
}

#[test]
fn report_without_a_claim_is_refused() {
    let env = env();
    let unknown = env
        .authority
        .report(
            TENANT,
            OutcomeReport::new("never-guarded", Outcome::Success),
        )
        .wait();
    assert!(
        matches!(unknown, Err(AuthorityError::NotClaimed { ref state, .. }) if state == "unknown")
    );
    env.authority
        .guard(TENANT, guard_refund(90_000, "refund:pending"))
        .wait()
        .unwrap();
    let pending = env
        .authority
        .report(
            TENANT,
            OutcomeReport::new("refund:pending", Outcome::Success),
        )
        .wait();
    assert!(
        matches!(pending, Err(AuthorityError::NotClaimed { ref state, .. }) if state == "pending_approval")
    );
}

#[test]
fn concurrent_claim_32_threads_one_key_exactly_one_wins_100_rounds() {
    let env = env();
    for round in 0..100 {
        let key = format!("refund:race{round}");
        let barrier = Arc::new(Barrier::new(32));
        let workers: Vec<_> = (0..32)
            .map(|_| {
                let (authority, barrier, key) =
                    (env.authority.clone(), barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    authority
                        .guard(TENANT, guard_refund(100, &key))
                        .wait()
                        .unwrap()
                        .status
                })
            })
            .collect();
        let statuses: Vec<GuardStatus> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let winners = statuses.iter().filter(|s| s.may_run()).count();
        assert_eq!(winners, 1, "round {round}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| s.may_run() || *s == GuardStatus::InProgress),
            "{statuses:?}"
        );
    }
}

#[test]
fn concurrent_guards_share_transactions_group_commit() {
    let env = env();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let authority = env.authority.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let key = format!("refund:gc{w}:{i}");
                    let token = authority
                        .guard(TENANT, guard_refund(100, &key))
                        .wait()
                        .unwrap()
                        .claim
                        .unwrap()
                        .token;
                    authority
                        .report(
                            TENANT,
                            OutcomeReport::new(&key, Outcome::Success).claim_token(token),
                        )
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let stats = env.authority.writer_stats();
    assert_eq!(stats.operations, 16 * 50 * 2);
    assert!(
        stats.transactions < stats.operations / 2,
        "no batching happened: {stats:?}"
    );
    assert_eq!(env.authority.verify_ledger().unwrap().records, 16 * 50 * 2);
}

#[test]
fn invalid_requests_are_refused_before_anything_is_written() {
    let env = env();
    let bad_action = GuardRequest::new(
        haltstate_authority::ActionRequest::new("agent", "Refund Create"),
        "k",
    );
    assert!(matches!(
        env.authority.guard(TENANT, bad_action).wait(),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    assert!(matches!(
        env.authority.guard(TENANT, guard_refund(1, "")).wait(),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    assert!(matches!(
        env.authority.guard("", guard_refund(1, "k")).wait(),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    let long_key = "k".repeat(haltstate_authority::MAX_KEY_LEN + 1);
    assert!(matches!(
        env.authority
            .guard(TENANT, guard_refund(1, &long_key))
            .wait(),
        Err(AuthorityError::Request(
            haltstate_authority::RequestError::Invalid(_)
        ))
    ));
    assert_eq!(env.authority.tenant_head(TENANT).unwrap().seq, 0);
}

#[test]
fn async_callers_await_the_same_answers() {
    let env = env();
    let authority = env.authority.clone();
    let status = futures_lite_block_on(async move {
        authority
            .guard(TENANT, guard_refund(100, "refund:async"))
            .await
            .map(|a| a.status)
    });
    assert_eq!(status.unwrap(), GuardStatus::Allowed);
}

#[test]
fn async_tasks_on_one_thread_share_a_transaction() {
    let one_thread = [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread().build(),
        ),
        (
            "multi_thread, 1 worker",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build(),
        ),
    ];
    for (flavor, runtime) in one_thread {
        let env = env();
        // Warm up, so that the writer thread is normally asleep and the tasks' own leader runs the batch.
        env.authority
            .guard(TENANT, guard_refund(100, "refund:warm-up"))
            .wait()
            .unwrap();
        let before = env.authority.writer_stats();
        runtime.unwrap().block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let authority = env.authority.clone();
                    tokio::spawn(async move {
                        authority
                            .guard(TENANT, guard_refund(100, &format!("refund:task{t}")))
                            .await
                            .unwrap()
                            .status
                    })
                })
                .collect();
            for task in tasks {
                assert_eq!(task.await.unwrap(), GuardStatus::Allowed);
            }
        });
        let after = env.authority.writer_stats();
        assert_eq!(after.operations - before.operations, 8, "{flavor}");
        // Each task running its own operation at its first poll made 8 transactions (8 fsyncs); the first poll
        // now only queues and yields, so the 8 share one. A writer thread not yet asleep (a loaded machine may
        // not have scheduled it since it started) takes what is queued when it gets there: a few batches.
        assert!(
            after.transactions - before.transactions <= 4,
            "{flavor}: {before:?} -> {after:?}"
        );
    }
}

#[test]
fn a_future_dropped_after_its_first_poll_still_happens() {
    let env = env();
    let mut future = Box::pin(
        env.authority
            .guard(TENANT, guard_refund(100, "refund:polled-once"))
            .into_future(),
    );
    // Outside a runtime the first poll queues the operation and yields, meaning to lead its batch next time.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    drop(future);
    // Nothing else is submitted: only the writer thread, woken by the drop, can carry it out.
    haltstate_testkit::eventually("the dropped call to run", Duration::from_secs(10), || {
        let state = env
            .authority
            .idempotency_state(TENANT, "billing-agent", "refund:polled-once")
            .unwrap();
        (state.map(|(s, _)| s) == Some(KeyState::Claimed)).then_some(())
    });
}

#[test]
fn a_call_dropped_unwaited_still_happens_in_order() {
    let env = env();
    // Neither the Pending nor the future is ever waited for; both changes must still be made, before
    // anything submitted after them.
    drop(
        env.authority
            .guard(TENANT, guard_refund(100, "refund:dropped")),
    );
    drop(
        env.authority
            .guard(TENANT, guard_refund(100, "refund:dropped-future"))
            .into_future(),
    );
    let later = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:later"))
        .wait()
        .unwrap();
    assert_eq!(later.ledger_seq, 3);
    for key in ["refund:dropped", "refund:dropped-future"] {
        let state = env
            .authority
            .idempotency_state(TENANT, "billing-agent", key)
            .unwrap();
        assert_eq!(state.map(|(s, _)| s), Some(KeyState::Claimed), "{key}");
    }
}

#[test]
fn a_call_waited_for_after_every_handle_is_gone_still_happens() {
    let env = sqlite_env();
    let path = env.db_path();
    let common::Env { dir, authority, .. } = env;
    let waited = authority.guard(TENANT, guard_refund(100, "refund:outlived"));
    let dropped = authority.guard(TENANT, guard_refund(100, "refund:outlived-dropped"));
    drop(authority);
    // The writer thread has stopped; the waiting thread runs the batch itself.
    assert_eq!(waited.wait().unwrap().status, GuardStatus::Allowed);
    drop(dropped);
    let reopened = haltstate_authority::Authority::builder(path)
        .open()
        .unwrap();
    for key in ["refund:outlived", "refund:outlived-dropped"] {
        let state = reopened
            .idempotency_state(TENANT, "billing-agent", key)
            .unwrap();
        assert_eq!(state.map(|(s, _)| s), Some(KeyState::Claimed), "{key}");
    }
    assert_eq!(reopened.verify_ledger().unwrap().records, 2);
    drop(dir);
}

#[test]
fn sync_and_async_callers_at_once_are_each_answered_once() {
    let env = env();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let authority = env.authority.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let key = format!("refund:mix{w}:{i}");
                    let guard = authority.guard(TENANT, guard_refund(100, &key));
                    let answer = if w % 2 == 0 {
                        guard.wait()
                    } else {
                        futures_lite_block_on(guard.into_future())
                    };
                    assert_eq!(answer.unwrap().status, GuardStatus::Allowed, "{key}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(env.authority.writer_stats().operations, 8 * 40);
    assert_eq!(env.authority.verify_ledger().unwrap().records, 8 * 40);
}

/// A minimal executor: the writer is its own thread, so awaiting a `Pending` needs no runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn a_retried_guard_with_the_same_claim_token_gets_its_claim_back() {
    let env = env();
    let first = env
        .authority
        .guard(
            TENANT,
            guard_refund(100, "refund:retry").claim_token("tok-1"),
        )
        .wait()
        .unwrap();
    // The caller's token is a retry token: the claim's own token is the authority's, 256 random bits.
    let token = &first.claim.as_ref().unwrap().token;
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_ne!(token, "tok-1");
    let retried = env
        .authority
        .guard(
            TENANT,
            guard_refund(100, "refund:retry").claim_token("tok-1"),
        )
        .wait()
        .unwrap();
    assert_eq!(retried.status, GuardStatus::Allowed);
    assert_eq!(retried.claim, first.claim);
    let other = env
        .authority
        .guard(
            TENANT,
            guard_refund(100, "refund:retry").claim_token("tok-2"),
        )
        .wait()
        .unwrap();
    assert_eq!(other.status, GuardStatus::InProgress);
    let untokened = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:retry"))
        .wait()
        .unwrap();
    assert_eq!(untokened.status, GuardStatus::InProgress);
    // The same retry token from another API key is another caller: in progress, never the claim.
    let elsewhere = env
        .authority
        .guard(
            TENANT,
            guard_refund(100, "refund:retry")
                .claim_token("tok-1")
                .caller_key("key_other"),
        )
        .wait()
        .unwrap();
    assert_eq!(elsewhere.status, GuardStatus::InProgress);
    assert!(elsewhere.claim.is_none());
}

/// Two authorities on one database (two processes on a SQLite file, two instances on PostgreSQL): once a lease
/// lapses, sixteen workers racing through both re-claim the key exactly once.
#[test]
fn a_lapsed_lease_is_re_claimed_exactly_once_across_instances() {
    let env = env_with(|b| {
        b.policy_file(common::sample_policy_path())
            .lease(Duration::from_secs(30))
    });
    let other = env.second_handle();
    let first = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:lapse"))
        .wait()
        .unwrap();
    assert_eq!(first.status, GuardStatus::Allowed);
    env.clock.advance(Duration::from_secs(31));
    let start = Arc::new(Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let authority = if i % 2 == 0 {
                env.authority.clone()
            } else {
                other.clone()
            };
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                authority
                    .guard(TENANT, guard_refund(100, "refund:lapse"))
                    .wait()
                    .unwrap()
                    .status
            })
        })
        .collect();
    let statuses: Vec<GuardStatus> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let won = statuses
        .iter()
        .filter(|s| **s == GuardStatus::Allowed)
        .count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, GuardStatus::Allowed | GuardStatus::InProgress)),
        "{statuses:?}"
    );
}

/// Hostile (issue 21): idempotency keys are scoped per agent. Another agent guarding the key first neither
/// blocks nor borrows this agent's operation; a report naming no agent finds the record its claim token is for.
#[test]
fn idempotency_keys_are_scoped_per_agent() {
    let env = env();
    let as_agent = |agent: &str| {
        GuardRequest::new(
            haltstate_authority::ActionRequest::new(agent, "refund.create")
                .param("amount_cents", serde_json::json!(100)),
            "refund:shared",
        )
    };
    let squatter = env
        .authority
        .guard(TENANT, as_agent("mallory"))
        .wait()
        .unwrap();
    assert_eq!(squatter.status, GuardStatus::Allowed);
    let own = env
        .authority
        .guard(TENANT, as_agent("billing-agent"))
        .wait()
        .unwrap();
    assert_eq!(own.status, GuardStatus::Allowed, "{}", own.reason);
    env.authority
        .report(
            TENANT,
            OutcomeReport::new("refund:shared", Outcome::Success)
                .agent("billing-agent")
                .claim_token(own.claim.unwrap().token),
        )
        .wait()
        .unwrap();
    let state = |agent: &str| {
        env.authority
            .idempotency_state(TENANT, agent, "refund:shared")
            .unwrap()
            .map(|(state, _)| state)
    };
    assert_eq!(state("billing-agent"), Some(KeyState::Completed));
    assert_eq!(state("mallory"), Some(KeyState::Claimed));
    // Two agents hold the key: a report that names neither, from no API key, cannot tell them apart.
    let unnamed = env
        .authority
        .report(
            TENANT,
            OutcomeReport::new("refund:shared", Outcome::Error)
                .claim_token(squatter.claim.unwrap().token),
        )
        .wait();
    assert!(
        matches!(unnamed, Err(AuthorityError::Request(_))),
        "{unnamed:?}"
    );
    assert_eq!(state("mallory"), Some(KeyState::Claimed));
    env.authority.verify_state(&Default::default()).unwrap();
}
