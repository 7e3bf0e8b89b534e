//! The client over an authority in this process: the same operations and answers as over HTTP.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use haltstate::{
    Action, ApprovalStatus, Decision, GuardError, HaltStateClient, KillState, Lenient, Outcome,
};
use haltstate_authority::{Authority, KillScope};

const POLICIES: &str = haltstate_testkit::policies::REFUNDS;

struct Env {
    authority: Authority,
    client: HaltStateClient,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::builder(dir.path().join("hs.db"))
        .policy_source("p.cedar", POLICIES)
        .open()
        .unwrap();
    let client = HaltStateClient::builder()
        .authority(authority.clone())
        .tenant("acme")
        .agent_id("billing-agent")
        .redaction_key("k")
        .spool_dir(dir.path().join("spool"))
        .build()
        .unwrap();
    Env {
        authority,
        client,
        _dir: dir,
    }
}

fn refund(order: u32, cents: u32) -> Action {
    Action::new("refund.create")
        .key(format!("refund:{order}"))
        .param("amount_cents", cents)
}

#[tokio::test]
async fn guard_complete_and_replay() {
    let env = env();
    let evidence = env
        .client
        .guard(refund(1, 100))
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert_eq!(
        (evidence.decision.as_str(), evidence.policy_id.as_deref()),
        ("allowed", Some("refunds.small"))
    );
    assert_eq!(
        env.client.guard(refund(1, 100)).await.unwrap_err(),
        GuardError::AlreadyCompleted {
            idempotency_key: "refund:1".into()
        }
    );
    assert_eq!(
        env.client.guard(refund(1, 200)).await.unwrap_err(),
        GuardError::IdempotencyConflict {
            idempotency_key: "refund:1".into()
        }
    );
}

#[tokio::test]
async fn approval_flow_with_wait_and_stream() {
    let env = env();
    let mut stream = env.client.subscribe_approvals(None);
    let GuardError::ApprovalPending { approval_id, .. } =
        env.client.guard(refund(2, 90_000)).await.unwrap_err()
    else {
        panic!()
    };
    let waiter = {
        let (client, id) = (env.client.clone(), approval_id.clone());
        tokio::spawn(async move { client.wait_for_approval(&id, Duration::from_secs(10)).await })
    };
    env.authority
        .approve("acme", &approval_id, "alice", None)
        .wait()
        .unwrap();
    assert_eq!(
        waiter.await.unwrap().unwrap().status,
        ApprovalStatus::Approved
    );
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.request_id.as_str(), event.status),
        (
            approval_id.as_str(),
            Lenient::Known(ApprovalStatus::Approved)
        )
    );
    let permit = env.client.guard(refund(2, 90_000)).await.unwrap();
    assert_eq!(permit.approver(), Some("alice"));
    permit.complete().await.unwrap();
}

#[tokio::test]
async fn check_and_report() {
    let env = env();
    let check = env.client.check(refund(3, 100)).await.unwrap();
    assert_eq!(check.decision, Decision::Allow);
    env.client
        .report(&check, Outcome::Success, None)
        .await
        .unwrap();
    assert_eq!(
        env.client.check(refund(3, 90_000)).await.unwrap().decision,
        Decision::ApprovalRequired
    );
}

#[tokio::test]
async fn kill_switch_is_typed_and_the_heartbeat_sees_it() {
    let env = env();
    env.authority
        .set_kill_switch(
            KillScope::Tenant("acme".into()),
            haltstate_authority::KillState::Kill,
            "ops",
        )
        .wait()
        .unwrap();
    assert!(matches!(
        env.client.guard(refund(4, 100)).await,
        Err(GuardError::KillSwitchTriggered {
            state: KillState::Kill,
            ..
        })
    ));
    assert_eq!(env.client.heartbeat().await.unwrap(), KillState::Kill);
    assert_eq!(*env.client.kill_switch().borrow(), KillState::Kill);
}

#[tokio::test]
async fn a_dropped_permit_reports_aborted() {
    let env = env();
    drop(env.client.guard(refund(5, 100)).await.unwrap());
    let outcomes =
        haltstate_testkit::eventually("the aborted report", Duration::from_secs(5), || {
            Some(haltstate_testkit::outcomes(
                &env.authority,
                "acme",
                "refund:5",
            ))
            .filter(|found| !found.is_empty())
        });
    assert_eq!(outcomes, vec![haltstate_authority::Outcome::Aborted]);
}

#[test]
fn blocking_from_a_sync_fn_inside_a_current_thread_runtime() {
    let env = env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = env.client.clone();
    let evidence = runtime
        .block_on(async move { client.blocking().guard(refund(6, 100))?.complete() })
        .unwrap();
    assert_eq!(evidence.outcome, Some(Outcome::Success));
}

#[test]
fn secrets_need_a_redaction_key_on_the_embedded_authority() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::builder(dir.path().join("hs.db"))
        .policy_source("p.cedar", POLICIES)
        .open()
        .unwrap();
    let client = HaltStateClient::embedded(authority).unwrap().blocking();
    let error = client
        .guard(refund(7, 100).param("card", haltstate::secret("4111")))
        .unwrap_err();
    assert!(
        matches!(error, GuardError::Config(ref m) if m.contains("redaction key")),
        "{error}"
    );
}
