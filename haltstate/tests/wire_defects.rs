//! One test per client defect of the Python SDK 0.7.0 listed in `shared/WIRE.md` section 5, each named for it.
//! Faults come from a proxy in front of the real server; every other answer is the real server's.
//! (B7/B8 are the decorators, pinned with the macros; B14's pending map does not exist here.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Fault, FaultProxy};
use common::{TENANT, TestServer, refund};
use futures_util::StreamExt;
use haltstate::{Action, Decision, FailMode, GuardError, HaltStateClient};
use haltstate_authority::{EvidenceKind, EvidenceQuery};
use serde_json::Value;

fn via(proxy: &FaultProxy, server: &TestServer, fail_mode: FailMode) -> HaltStateClient {
    HaltStateClient::builder()
        .base_url(&proxy.base)
        .tenant(TENANT)
        .api_key(&server.agent_key)
        .agent_id("billing-agent")
        .request_timeout(Duration::from_millis(400))
        .deadline(Duration::from_secs(3))
        .fail_mode(fail_mode)
        .spool_dir(server.spool_dir())
        .build()
        .unwrap()
}

fn setup() -> (TestServer, FaultProxy) {
    let server = TestServer::start();
    let proxy = FaultProxy::start(&server.base_url());
    (server, proxy)
}

#[tokio::test]
async fn b01_a_failing_body_never_triggers_a_second_guard() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let permit = client.guard(refund(1, 100)).await.unwrap();
    let evidence = permit
        .fail("connection reset by the payment gateway")
        .await
        .unwrap();
    assert_eq!(evidence.outcome, Some(haltstate::Outcome::Error));
    assert_eq!(
        proxy
            .seen("action/guard")
            .iter()
            .filter(|s| s.path.ends_with("action/guard"))
            .count(),
        1
    );
}

#[tokio::test]
async fn b02_fail_open_is_explicit_and_covers_5xx_exhaustion() {
    let (server, proxy) = setup();
    proxy.fault("action/guard", Fault::Status(500, None), None);
    let closed = via(&proxy, &server, FailMode::Closed)
        .guard(refund(2, 100))
        .await;
    assert!(
        matches!(closed, Err(GuardError::Connection(_))),
        "{closed:?}"
    );
    let open = via(&proxy, &server, FailMode::Open)
        .guard(refund(2, 100))
        .await
        .unwrap();
    assert!(!open.is_verified());
    open.complete().await.unwrap();
}

#[tokio::test]
async fn b03_429_honours_retry_after_and_5xx_is_retried_with_backoff() {
    let (server, proxy) = setup();
    proxy.fault("action/guard", Fault::Status(429, Some(1)), Some(1));
    proxy.fault("action/guard", Fault::Status(503, None), Some(1));
    let started = Instant::now();
    let permit = via(&proxy, &server, FailMode::Closed)
        .guard(refund(3, 100))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.seen("action/guard").len(), 3);
    permit.complete().await.unwrap();
}

#[tokio::test]
async fn b03_retries_end_at_the_deadline_with_a_typed_error() {
    let (server, proxy) = setup();
    proxy.fault("action/guard", Fault::Status(429, Some(60)), None);
    let started = Instant::now();
    let error = via(&proxy, &server, FailMode::Closed)
        .guard(refund(4, 100))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GuardError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a Retry-After past the deadline is not slept"
    );
}

#[tokio::test]
async fn b04_a_hung_authority_costs_at_most_the_deadline_and_the_body_never_runs() {
    let (server, proxy) = setup();
    proxy.fault("action/guard", Fault::Hang, None);
    let started = Instant::now();
    let result = via(&proxy, &server, FailMode::Closed)
        .guard(refund(5, 100))
        .await;
    assert!(
        matches!(result, Err(GuardError::Connection(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(3_500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn b05_check_sends_its_request_id_and_the_report_carries_it() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let check = client
        .check(refund(6, 100).request_id("req-b05"))
        .await
        .unwrap();
    assert_eq!(check.request_id, "req-b05");
    client
        .report(&check, haltstate::Outcome::Success, None)
        .await
        .unwrap();
    let records = server
        .authority
        .evidence(TENANT, &EvidenceQuery::default())
        .unwrap();
    let kinds: Vec<_> = records
        .iter()
        .filter(|r| r.request_id.as_deref() == Some("req-b05"))
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, vec![EvidenceKind::Check, EvidenceKind::CheckReport]);
}

#[tokio::test]
async fn b06_the_clients_agent_id_is_the_default_for_every_call() {
    let (server, proxy) = setup();
    via(&proxy, &server, FailMode::Closed)
        .guard(refund(7, 100))
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    let records = server
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("refund:7".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.agent_id.as_deref() == Some("billing-agent"))
    );
}

#[tokio::test]
async fn b09_a_failed_report_is_returned_not_swallowed() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let permit = client.guard(refund(8, 100)).await.unwrap();
    proxy.fault("action/guard/report", Fault::Status(500, None), None);
    let error = permit.complete().await.unwrap_err();
    assert!(matches!(error, GuardError::Connection(_)), "{error}");
}

#[tokio::test]
async fn b10_catch_up_is_an_exact_instant_not_midnight() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(refund(9, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    server
        .authority
        .approve(TENANT, &approval_id, "alice", None)
        .wait()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        client
            .approvals_since(now - Duration::from_secs(60), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        client
            .approvals_since(now + Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let since = &proxy.seen("approvals/since")[0].path;
    assert!(
        since.contains("since=") && since.contains("%3A"),
        "the instant is sent, percent-encoded: {since}"
    );
}

#[tokio::test]
async fn b12_an_unknown_approval_status_is_kept_not_fatal() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(refund(10, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    proxy.fault(
        "approval/",
        Fault::Rewrite(|mut v| {
            v["status"] = Value::from("quarantined");
            v
        }),
        Some(1),
    );
    let decision = client.approval(&approval_id).await.unwrap();
    assert_eq!(
        decision.status,
        haltstate::Lenient::Unknown("quarantined".into())
    );
    assert!(!decision.is_terminal());
}

#[tokio::test]
async fn b13_a_refused_stream_surfaces_the_error() {
    let (server, proxy) = setup();
    let client = HaltStateClient::builder()
        .base_url(&proxy.base)
        .tenant(TENANT)
        .api_key("hs_wrong")
        .build()
        .unwrap();
    let mut stream = client.subscribe_approvals(None);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Err(GuardError::Auth(_))), "{first:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends"
    );
    drop(server);
}

#[tokio::test]
async fn b16_wait_for_approval_retries_a_not_yet_visible_approval() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let GuardError::ApprovalPending { approval_id, .. } =
        client.guard(refund(11, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    proxy.fault(
        "approval/",
        Fault::Body(404, r#"{"detail":"not yet","code":"approval_not_found"}"#),
        Some(2),
    );
    server
        .authority
        .approve(TENANT, &approval_id, "alice", None)
        .wait()
        .unwrap();
    let decision = client
        .wait_for_approval(&approval_id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(decision.status, haltstate::ApprovalStatus::Approved);
}

#[tokio::test]
async fn b17_a_business_404_never_tries_the_legacy_route() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    let error = client.approval("apr_does_not_exist").await.unwrap_err();
    assert!(matches!(error, GuardError::NotFound { .. }), "{error}");
    assert_eq!(proxy.seen("approval/apr_does_not_exist").len(), 1);
    assert!(
        proxy.seen("/api/sentinel/").is_empty(),
        "no legacy fallback"
    );
}

#[tokio::test]
async fn b17_a_missing_canonical_route_falls_back_to_legacy_once_and_remembers() {
    let (server, proxy) = setup();
    proxy.fault(
        "/api/haltstate/sentinel/action/check",
        Fault::Body(404, r#"{"detail":"no such route","code":"not_found"}"#),
        None,
    );
    let client = via(&proxy, &server, FailMode::Closed);
    for order in 0..3 {
        assert_eq!(
            client
                .check(refund(12 + order, 100))
                .await
                .unwrap()
                .decision,
            Decision::Allow
        );
    }
    assert_eq!(
        proxy.seen("/api/haltstate/sentinel/action/check").len(),
        1,
        "the canonical route is tried once"
    );
    assert_eq!(proxy.seen("/api/sentinel/action/check").len(), 3);
}

#[tokio::test]
async fn b18_answers_the_client_does_not_understand_fail_closed() {
    let (server, proxy) = setup();
    let client = via(&proxy, &server, FailMode::Closed);
    proxy.fault(
        "action/guard",
        Fault::Body(200, "<html>maintenance</html>"),
        Some(1),
    );
    assert!(matches!(
        client.guard(refund(20, 100)).await,
        Err(GuardError::Protocol(_))
    ));
    proxy.fault(
        "action/check",
        Fault::Rewrite(|mut v| {
            v["decision"] = Value::from("QUARANTINE");
            v
        }),
        Some(1),
    );
    let check = client.check(refund(21, 100)).await.unwrap();
    assert_eq!(check.decision, Decision::Deny);
    proxy.fault("action/guard", Fault::Body(302, ""), Some(1));
    assert!(matches!(
        client.guard(refund(22, 100)).await,
        Err(GuardError::Protocol(_))
    ));
}

#[tokio::test]
async fn b19_a_rejected_guard_status_reads_as_denied() {
    let (server, proxy) = setup();
    proxy.fault(
        "action/guard",
        Fault::Rewrite(|mut v| {
            v["status"] = Value::from("rejected");
            v["reason"] = Value::from("no");
            v
        }),
        Some(1),
    );
    let error = via(&proxy, &server, FailMode::Closed)
        .guard(refund(23, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GuardError::ActionDenied { ref reason, .. } if reason == "no"),
        "{error}"
    );
}

#[tokio::test]
async fn b20_absent_fields_stay_absent() {
    let (server, proxy) = setup();
    proxy.fault(
        "action/guard",
        Fault::Rewrite(|mut v| {
            let map = v.as_object_mut().unwrap();
            map.remove("approved_at");
            map.remove("approval_id");
            v
        }),
        Some(1),
    );
    let permit = via(&proxy, &server, FailMode::Closed)
        .guard(refund(24, 100))
        .await
        .unwrap();
    assert_eq!(
        (permit.approved_at(), permit.approval_id()),
        (None, None),
        "never invented on the client"
    );
    permit.complete().await.unwrap();
}

#[tokio::test]
async fn b21_a_guard_needs_a_key_and_never_invents_one() {
    let (server, proxy) = setup();
    let error = via(&proxy, &server, FailMode::Closed)
        .guard(Action::new("refund.create"))
        .await
        .unwrap_err();
    assert!(matches!(error, GuardError::Config(_)));
    assert!(proxy.seen("action/guard").is_empty());
}

#[tokio::test]
async fn b22_resource_risk_and_metadata_reach_the_authority() {
    let (server, proxy) = setup();
    let metadata = serde_json::Map::from_iter([("ticket".to_owned(), Value::from("SUP-1"))]);
    let action = refund(25, 90_000).risk("money").metadata(metadata);
    let GuardError::ApprovalPending { approval_id, .. } = via(&proxy, &server, FailMode::Closed)
        .guard(action)
        .await
        .unwrap_err()
    else {
        panic!()
    };
    let approval = server.authority.approval(TENANT, &approval_id).unwrap();
    assert_eq!(approval.resource.as_deref(), Some("order:25"));
    assert_eq!(approval.risk.as_deref(), Some("money"));
    assert_eq!(approval.metadata.unwrap()["ticket"], "SUP-1");
}

#[tokio::test]
async fn b23_only_the_needed_credentials_are_sent() {
    let (server, proxy) = setup();
    via(&proxy, &server, FailMode::Closed)
        .check(refund(26, 100))
        .await
        .unwrap();
    let headers = &proxy.seen("action/check")[0].headers;
    assert!(headers.get("x-admin-token").is_none());
    assert_eq!(headers.get("x-tenant-id").unwrap(), TENANT);
    assert!(
        headers
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("haltstate-rust/")
    );
}

#[tokio::test]
async fn b25_path_segments_are_percent_encoded() {
    let (server, proxy) = setup();
    let error = via(&proxy, &server, FailMode::Closed)
        .approval("apr/../../x?y#z")
        .await
        .unwrap_err();
    assert!(matches!(error, GuardError::NotFound { .. }), "{error}");
    let paths: Vec<String> = proxy
        .seen("approval/")
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(
        paths,
        vec!["/api/haltstate/sentinel/approval/apr%2F..%2F..%2Fx%3Fy%23z".to_owned()]
    );
}
