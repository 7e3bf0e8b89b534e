//! The client against the real server over loopback: every operation, every refusal, fail modes.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::proxy::FaultProxy;
use common::{TENANT, TestServer, refund};
use futures_util::StreamExt;
use haltstate::{
    Action, ApprovalStatus, Decision, FailMode, GuardError, KillState, Outcome, ProofStatus, secret,
};
use haltstate_authority::{EvidenceKind, EvidenceQuery, KillScope};
use haltstate_testkit::{eventually, eventually_async};

#[tokio::test]
async fn guard_allowed_runs_completes_and_a_replay_is_already_completed() {
    let server = TestServer::start();
    let client = server.client();
    let permit = client.guard(refund(1, 4_500)).await.unwrap();
    assert!(permit.is_verified());
    assert_eq!(permit.policy_id(), Some("refunds.small"));
    let evidence = permit.complete().await.unwrap();
    assert_eq!(
        (evidence.decision.as_str(), evidence.outcome),
        ("allowed", Some(Outcome::Success))
    );
    assert_eq!(evidence.resource_refs, vec!["order:1".to_owned()]);
    assert_eq!(evidence.proof_status, ProofStatus::Verified);
    assert_eq!(
        haltstate_testkit::outcomes(&server.authority, TENANT, "refund:1"),
        vec![haltstate_authority::Outcome::Success]
    );

    let replay = client.guard(refund(1, 4_500)).await.unwrap_err();
    assert_eq!(
        replay,
        GuardError::AlreadyCompleted {
            idempotency_key: "refund:1".into()
        }
    );
}

#[tokio::test]
async fn pending_approval_then_operator_approves_then_it_runs_once() {
    let server = TestServer::start();
    let client = server.client();
    let GuardError::ApprovalPending {
        approval_id,
        idempotency_key,
        action,
    } = client.guard(refund(2, 90_000)).await.unwrap_err()
    else {
        panic!("expected ApprovalPending");
    };
    assert_eq!(
        (idempotency_key.as_str(), action.as_str()),
        ("refund:2", "refund.create")
    );
    // Its window, as the server stored it.
    let expires = server
        .authority
        .approval(TENANT, &approval_id)
        .unwrap()
        .expires_at;
    assert_eq!(
        client.approval_window(&approval_id).await.unwrap(),
        Some(expires)
    );
    // The waiter asks through a proxy, so the test sees it ask before the decision is made.
    let proxy = FaultProxy::start(&server.base_url());
    let waiter = {
        let client = server.client_at(&proxy.base, FailMode::Closed);
        let id = approval_id.clone();
        tokio::spawn(async move { client.wait_for_approval(&id, Duration::from_secs(10)).await })
    };
    eventually_async(
        "the waiter asking for the approval",
        Duration::from_secs(5),
        || async { (!proxy.seen(&approval_id).is_empty()).then_some(()) },
    )
    .await;
    server
        .authority
        .approve(TENANT, &approval_id, "alice", Some("verified".into()))
        .wait()
        .unwrap();
    let decision = waiter.await.unwrap().unwrap();
    assert_eq!(
        (decision.status, decision.approver.as_deref()),
        (ApprovalStatus::Approved.into(), Some("alice"))
    );

    let permit = client.guard(refund(2, 90_000)).await.unwrap();
    assert_eq!(
        (permit.approver(), permit.approval_id()),
        (Some("alice"), Some(approval_id.as_str()))
    );
    assert!(permit.approved_at().is_some());
    permit.complete().await.unwrap();
}

#[tokio::test]
async fn wait_for_approval_honours_its_deadline() {
    let server = TestServer::start();
    let client = server.client();
    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(refund(3, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    let started = std::time::Instant::now();
    let error = client
        .wait_for_approval(&approval_id, Duration::from_millis(700))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GuardError::ApprovalTimeout { .. }),
        "{error}"
    );
    // B16: never sleeps past the deadline by a whole interval.
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn denial_rejection_conflict_and_in_progress_are_typed() {
    let server = TestServer::start();
    let client = server.client();
    let denied = client
        .guard(Action::new("data.delete").key("delete:1"))
        .await
        .unwrap_err();
    assert_eq!(
        denied,
        GuardError::ActionDenied {
            reason: "deletes are forbidden".into(),
            policy_id: Some("no-deletes".into())
        }
    );

    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(refund(4, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    server
        .authority
        .reject(TENANT, &approval_id, "bob", Some("fraud".into()))
        .wait()
        .unwrap();
    assert!(
        matches!(client.guard(refund(4, 90_000)).await, Err(GuardError::ActionDenied { reason, .. }) if reason == "fraud")
    );

    let held = client.guard(refund(5, 100)).await.unwrap();
    assert_eq!(
        client.guard(refund(5, 100)).await.unwrap_err(),
        GuardError::InProgress {
            idempotency_key: "refund:5".into()
        }
    );
    assert_eq!(
        client.guard(refund(5, 200)).await.unwrap_err(),
        GuardError::IdempotencyConflict {
            idempotency_key: "refund:5".into()
        }
    );
    held.complete().await.unwrap();
}

#[tokio::test]
async fn a_guard_without_a_key_is_a_config_error_and_sends_nothing() {
    let server = TestServer::start();
    let before = server.ledger_len();
    let error = server
        .client()
        .guard(Action::new("refund.create").param("amount_cents", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GuardError::Config(ref m) if m.contains("idempotency key")),
        "{error}"
    );
    assert_eq!(server.ledger_len(), before);
}

#[tokio::test]
async fn wrong_credentials_are_auth_errors() {
    let server = TestServer::start();
    let client = haltstate::HaltStateClient::builder()
        .base_url(server.base_url())
        .tenant(TENANT)
        .api_key("hs_wrong")
        .build()
        .unwrap();
    assert!(matches!(
        client.guard(refund(6, 1)).await,
        Err(GuardError::Auth(_))
    ));
    assert!(matches!(
        client.check(refund(6, 1)).await,
        Err(GuardError::Auth(_))
    ));
}

#[tokio::test]
async fn check_answers_each_decision_and_report_reaches_the_ledger() {
    let server = TestServer::start();
    let client = server.client();
    let allow = client.check(refund(7, 100)).await.unwrap();
    assert_eq!(allow.decision, Decision::Allow);
    assert!(
        allow.request_id.starts_with("req_"),
        "B5: the client's request id is sent and kept"
    );
    assert_eq!(
        client.check(refund(7, 900_000)).await.unwrap().decision,
        Decision::Deny
    );
    let approval = client.check(refund(7, 90_000)).await.unwrap();
    assert!(approval.requires_approval() && approval.approval_id.is_some());

    client.report(&allow, Outcome::Success, None).await.unwrap();
    let reports: Vec<_> = server
        .authority
        .evidence(TENANT, &EvidenceQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::CheckReport)
        .collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].request_id.as_deref(),
        Some(allow.request_id.as_str())
    );
}

#[tokio::test]
async fn approvals_since_and_the_stream_deliver_decisions_once() {
    let server = TestServer::start();
    let client = server.client();
    let start = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let GuardError::ApprovalPending {
        approval_id: first, ..
    } = client.guard(refund(8, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    let GuardError::ApprovalPending {
        approval_id: second,
        ..
    } = client.guard(refund(9, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    server
        .authority
        .approve(TENANT, &first, "alice", None)
        .wait()
        .unwrap();

    let since = client.approvals_since(start, 100).await.unwrap();
    assert_eq!(
        since
            .iter()
            .map(|d| d.request_id.as_str())
            .collect::<Vec<_>>(),
        vec![first.as_str()]
    );

    let mut stream = client.subscribe_approvals(Some(start));
    let caught_up = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (caught_up.request_id.as_str(), caught_up.is_catchup),
        (first.as_str(), true)
    );
    server
        .authority
        .reject(TENANT, &second, "alice", None)
        .wait()
        .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (live.request_id.as_str(), live.status),
        (second.as_str(), ApprovalStatus::Rejected.into())
    );
    // Heartbeats keep flowing; no decision is delivered twice.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), stream.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_stream_resumes_after_the_server_restarts_without_duplicates() {
    let mut server = TestServer::start();
    let client = server.client();
    let start = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let GuardError::ApprovalPending {
        approval_id: first, ..
    } = client.guard(refund(10, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    let GuardError::ApprovalPending {
        approval_id: second,
        ..
    } = client.guard(refund(11, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    server
        .authority
        .approve(TENANT, &first, "alice", None)
        .wait()
        .unwrap();
    let mut stream = client.subscribe_approvals(Some(start));
    let got = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.request_id, first);

    server.restart();
    server
        .authority
        .approve(TENANT, &second, "alice", None)
        .wait()
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(15), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        next.request_id, second,
        "B11: the reconnect resumes after the newest decision"
    );
}

#[tokio::test]
async fn kill_switch_heartbeat_makes_guards_fail_fast_without_a_round_trip() {
    let server = TestServer::start();
    let client = haltstate::HaltStateClient::builder()
        .base_url(server.base_url())
        .tenant(TENANT)
        .api_key(&server.agent_key)
        .agent_id("billing-agent")
        .kill_switch_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut watch = client.kill_switch();
    server
        .authority
        .set_kill_switch(
            KillScope::new(TENANT, Some("billing-agent")),
            haltstate_authority::KillState::Kill,
            "ops",
        )
        .wait()
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        watch.wait_for(|s| *s == KillState::Kill),
    )
    .await
    .unwrap()
    .unwrap();
    let before = server.ledger_len();
    let error = client.guard(refund(12, 100)).await.unwrap_err();
    assert!(
        matches!(
            error,
            GuardError::KillSwitchTriggered {
                state: KillState::Kill,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(server.ledger_len(), before, "no round trip while killed");
}

#[tokio::test]
async fn server_side_kill_is_a_typed_kill_switch_error() {
    let server = TestServer::start();
    server
        .authority
        .set_kill_switch(
            KillScope::Tenant(TENANT.into()),
            haltstate_authority::KillState::Pause,
            "ops",
        )
        .wait()
        .unwrap();
    let error = server.client().guard(refund(13, 100)).await.unwrap_err();
    assert!(
        matches!(
            error,
            GuardError::KillSwitchTriggered {
                state: KillState::Pause,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn server_stopped_fails_closed_and_the_body_never_runs() {
    let mut server = TestServer::start();
    let client = server.client();
    client
        .guard(refund(14, 100))
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    server.stop();
    let ran = AtomicUsize::new(0);
    let result = client.guard(refund(15, 100)).await.inspect(|_permit| {
        ran.fetch_add(1, Ordering::SeqCst);
    });
    assert!(
        matches!(result, Err(GuardError::Connection(_))),
        "{result:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(matches!(
        client.check(refund(15, 100)).await,
        Err(GuardError::Connection(_))
    ));
}

#[tokio::test]
async fn fail_open_runs_unverified_when_the_authority_is_down() {
    let mut server = TestServer::start();
    let client = server.client_with(FailMode::Open);
    server.stop();
    let permit = client.guard(refund(16, 100)).await.unwrap();
    assert!(!permit.is_verified());
    let evidence = permit.complete().await.unwrap();
    assert_eq!(
        (evidence.proof_status, evidence.decision.as_str()),
        (ProofStatus::Unverified, "unverified")
    );
    let check = client.check(refund(16, 100)).await.unwrap();
    assert!(check.allowed() && check.reason.starts_with("fail-open"));
    // Per call, closed still wins.
    let closed = client
        .guard(refund(17, 100).fail_mode(FailMode::Closed))
        .await;
    assert!(matches!(closed, Err(GuardError::Connection(_))));
}

#[tokio::test]
async fn a_dropped_permit_reports_aborted_and_releases_the_claim() {
    let server = TestServer::start();
    let client = server.client();
    drop(client.guard(refund(18, 100)).await.unwrap());
    eventually_async(
        "the dropped permit's report",
        Duration::from_secs(5),
        || async {
            (!haltstate_testkit::outcomes(&server.authority, TENANT, "refund:18").is_empty())
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        haltstate_testkit::outcomes(&server.authority, TENANT, "refund:18"),
        vec![haltstate_authority::Outcome::Aborted]
    );
    client
        .guard(refund(18, 100))
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
}

#[test]
fn a_panicking_body_reports_panicked() {
    let server = TestServer::start();
    let client = server.client().blocking();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = client.guard(refund(19, 100)).unwrap();
        panic!("the body blew up");
    }));
    assert!(caught.is_err());
    eventually("the panicked body's report", Duration::from_secs(5), || {
        (!haltstate_testkit::outcomes(&server.authority, TENANT, "refund:19").is_empty())
            .then_some(())
    });
    assert_eq!(
        haltstate_testkit::outcomes(&server.authority, TENANT, "refund:19"),
        vec![haltstate_authority::Outcome::Panicked]
    );
}

#[tokio::test]
async fn secrets_leave_as_digests_and_error_texts_carry_no_param_values() {
    let server = TestServer::start();
    let client = server.client();
    let action = refund(20, 90_000)
        .param("card", secret("4111111111111111"))
        .param("email", "alice@example.com");
    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(action.clone()).await.unwrap_err()
    else {
        panic!()
    };
    let approval = server.authority.approval(TENANT, &approval_id).unwrap();
    let card = approval.params["card"].as_str().unwrap();
    assert!(
        card.starts_with("hmac-sha256:") && !card.contains("4111"),
        "{card}"
    );

    server
        .authority
        .approve(TENANT, &approval_id, "alice", None)
        .wait()
        .unwrap();
    let permit = client.guard(action).await.unwrap();
    let evidence = permit
        .fail("card 4111111111111111 of alice@example.com was declined")
        .await
        .unwrap();
    assert_eq!(
        (evidence.redaction_status, evidence.redacted_fields.clone()),
        ("redacted", vec!["card".to_owned()])
    );
    let record = server
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("refund:20".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .find(|r| r.kind == EvidenceKind::Outcome)
        .unwrap();
    let error = record.error.unwrap();
    assert!(
        !error.contains("4111") && !error.contains("alice@"),
        "{error}"
    );
    assert_eq!(record.redacted_fields, vec!["card".to_owned()]);
}

#[test]
fn blocking_client_works_outside_any_runtime() {
    let server = TestServer::start();
    let client = server.client().blocking();
    let permit = client.guard(refund(21, 100)).unwrap();
    permit.complete().unwrap();
    assert!(matches!(
        client.guard(refund(21, 100)),
        Err(GuardError::AlreadyCompleted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_works_from_spawn_blocking() {
    let server = TestServer::start();
    let client = server.client();
    let outcome = tokio::task::spawn_blocking(move || {
        let client = client.blocking();
        client.guard(refund(22, 100))?.complete()
    })
    .await
    .unwrap();
    assert_eq!(outcome.unwrap().outcome, Some(Outcome::Success));
}

/// A sync function that guards, as a user's code would call it from inside an async handler.
fn sync_refund(client: &haltstate::HaltStateClient, order: u32) -> Result<(), GuardError> {
    client
        .blocking()
        .guard(refund(order, 100))?
        .complete()
        .map(drop)
}

#[test]
fn blocking_client_works_from_a_sync_fn_inside_a_current_thread_runtime() {
    let server = TestServer::start();
    let client = server.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async { sync_refund(&client, 23) });
    assert_eq!(result, Ok(()));
}

#[test]
fn one_static_client_serves_many_runtimes() {
    let server = TestServer::start();
    let client = Arc::new(server.client());
    for order in 30..34 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = client.clone();
        runtime.block_on(async move {
            client
                .guard(refund(order, 100))
                .await
                .unwrap()
                .complete()
                .await
                .unwrap()
        });
    }
}

fn spooled(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn unverified_records(server: &TestServer) -> Vec<haltstate_authority::EvidenceRecord> {
    server
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .filter(|r| r.proof_status == Some(haltstate_authority::ProofStatus::Unverified))
        .collect()
}

#[tokio::test]
async fn fail_open_evidence_is_spooled_and_delivered_once_after_the_authority_and_the_client_restart()
 {
    let mut server = TestServer::start();
    let spool = server.spool_dir();
    server.stop();
    {
        let client = server.client_with(FailMode::Open);
        for order in 0..5 {
            let permit = client.guard(refund(100 + order, 100)).await.unwrap();
            assert!(!permit.is_verified());
            permit.complete().await.unwrap();
        }
        assert_eq!(
            spooled(&spool).len(),
            5,
            "each fail-open run is on disk before complete() returns"
        );
        // The process "exits" with the authority still down.
    }
    let kept = spooled(&spool)[0].clone();
    let kept_copy = std::fs::read(&kept).unwrap();

    server.restart();
    let client = server.client_with(FailMode::Open);
    eventually_async("the spool's delivery", Duration::from_secs(10), || async {
        spooled(&spool).is_empty().then_some(())
    })
    .await;
    let records = unverified_records(&server);
    assert_eq!(records.len(), 5);
    let ids: std::collections::HashSet<_> = records
        .iter()
        .map(|r| r.evidence_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(records.iter().all(
        |r| r.outcome == Some(haltstate_authority::Outcome::Success) && r.occurred_at.is_some()
    ));

    // A crash between the authority's acknowledgement and the file's removal delivers it again: still one record.
    std::fs::write(&kept, kept_copy).unwrap();
    eventually_async("the second delivery", Duration::from_secs(10), || async {
        spooled(&spool).is_empty().then_some(())
    })
    .await;
    assert_eq!(
        unverified_records(&server).len(),
        5,
        "nothing delivered twice"
    );
    drop(client);
    server.authority.verify_ledger().unwrap();
}

/// A client holding only a key learns its agent from the server (what the MCP gateway does with a caller's
/// key); an operator's key, which acts as no agent, and a wrong key are refused.
#[tokio::test]
async fn a_key_names_its_agent_and_other_keys_are_refused() {
    let server = TestServer::start();
    let with_key = |key: &str| {
        haltstate::HaltStateClient::builder()
            .base_url(server.base_url())
            .tenant(TENANT)
            .api_key(key)
            .build()
            .unwrap()
    };
    assert_eq!(
        with_key(&server.agent_key).key_agent().await.unwrap(),
        "billing-agent"
    );
    let operator = with_key(&server.operator_key).key_agent().await;
    assert!(operator.is_err(), "{operator:?}");
    let wrong = with_key("hs_not-a-key").key_agent().await;
    assert!(
        matches!(wrong, Err(haltstate::GuardError::Auth(_))),
        "{wrong:?}"
    );
}

#[test]
fn a_client_on_the_applications_runtime_works_on_it_and_from_elsewhere() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = server
        .builder_at(&server.base_url(), FailMode::Closed)
        .io_runtime(runtime.handle().clone())
        .build()
        .unwrap();
    // On the runtime: from its block_on and from its tasks, the requests run where they are made.
    runtime.block_on(async {
        let permit = client.guard(refund(40, 100)).await.unwrap();
        assert!(permit.is_verified());
        permit.complete().await.unwrap();
        let tasks: Vec<_> = (41..45)
            .map(|order| {
                let client = client.clone();
                tokio::spawn(async move {
                    let permit = client.guard(refund(order, 100)).await?;
                    permit.complete().await.map(drop)
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    });
    // Off it: from another runtime and from a thread without one, the I/O is handed to it.
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        let permit = client.guard(refund(45, 100)).await.unwrap();
        permit.complete().await.unwrap();
    });
    let blocking = client.blocking();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let permit = blocking.guard(refund(46, 100)).unwrap();
            permit.complete().unwrap();
        });
    });
    for order in 40..47 {
        assert_eq!(
            haltstate_testkit::outcomes(&server.authority, TENANT, &format!("refund:{order}")),
            vec![haltstate_authority::Outcome::Success],
            "order {order}"
        );
    }
    // The client ends; the application's runtime goes on.
    drop((client, blocking));
    assert_eq!(runtime.block_on(async { 7 }), 7);
}

#[test]
fn a_single_threaded_runtime_is_refused_as_the_clients() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let refused = server
        .builder_at(&server.base_url(), FailMode::Closed)
        .io_runtime(runtime.handle().clone())
        .build()
        .unwrap_err();
    let GuardError::Config(why) = refused else {
        panic!("expected a configuration error, got {refused:?}");
    };
    assert!(why.contains("multi-thread runtime"), "{why}");
}
