//! Approvals: one per key, decided by someone other than the requester, expiring on time.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TENANT, env, env_with, guard_refund, refund, sample_policy_path};
use haltstate_authority::{
    ApprovalStatus, AuthorityError, CheckRequest, Decision, GuardStatus, KeyState, Outcome,
    OutcomeReport,
};

#[test]
fn approval_required_creates_a_pending_approval_with_a_24h_window() {
    let env = env();
    let answer = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big1"))
        .wait()
        .unwrap();
    assert_eq!(answer.status, GuardStatus::Pending);
    assert_eq!(answer.policy_id.as_deref(), Some("refunds.large"));
    let id = answer.approval_id.unwrap();
    let approval = env.authority.approval(TENANT, &id).unwrap();
    assert_eq!(approval.status, ApprovalStatus::Pending);
    assert_eq!(
        approval.expires_at - approval.created_at,
        time::Duration::hours(24)
    );
    assert_eq!(approval.idempotency_key.as_deref(), Some("refund:big1"));
    assert_eq!(approval.params["amount_cents"], 90_000);
    assert_eq!(answer.expires_at, Some(approval.expires_at));
}

#[test]
fn the_same_key_always_maps_to_the_same_approval() {
    let env = env();
    let first = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big2"))
        .wait()
        .unwrap();
    let again = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big2"))
        .wait()
        .unwrap();
    assert_eq!(again.status, GuardStatus::Pending);
    assert_eq!(again.approval_id, first.approval_id);
    assert_eq!(
        env.authority
            .approvals(TENANT, Some(ApprovalStatus::Pending), 100)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn approved_key_runs_on_retry_once() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big3"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    let approved = env
        .authority
        .approve(TENANT, &id, "alice", Some("customer verified".into()))
        .wait()
        .unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.approver.as_deref(), Some("alice"));

    let retry = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big3"))
        .wait()
        .unwrap();
    assert_eq!(retry.status, GuardStatus::Approved);
    assert_eq!(retry.approval_id.as_deref(), Some(id.as_str()));
    assert_eq!(retry.approver.as_deref(), Some("alice"));
    assert_eq!(retry.approved_at, approved.decided_at);
    let token = retry.claim.unwrap().token;
    env.authority
        .report(
            TENANT,
            OutcomeReport::new("refund:big3", Outcome::Success).claim_token(token),
        )
        .wait()
        .unwrap();
    let replay = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big3"))
        .wait()
        .unwrap();
    assert_eq!(replay.status, GuardStatus::Completed);
}

#[test]
fn error_after_approval_releases_without_needing_a_new_approval() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big4"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap();
    env.authority
        .guard(TENANT, guard_refund(90_000, "refund:big4"))
        .wait()
        .unwrap();
    env.authority
        .report(TENANT, OutcomeReport::new("refund:big4", Outcome::Error))
        .wait()
        .unwrap();
    let retry = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big4"))
        .wait()
        .unwrap();
    assert_eq!(retry.status, GuardStatus::Approved);
    assert_eq!(retry.approval_id.as_deref(), Some(id.as_str()));
    assert_eq!(env.authority.approvals(TENANT, None, 100).unwrap().len(), 1);
}

/// Hostile (issue 21): one approval, a bounded number of runs, on real storage. The agent acts, reports
/// `error`, guards again: after the approval's attempts, a human is asked again.
#[test]
fn an_approval_is_used_up_after_its_attempts_and_a_human_is_asked_again() {
    let env = env_with(|b| b.policy_file(sample_policy_path()).approval_attempts(2));
    let guard = || {
        env.authority
            .guard(TENANT, guard_refund(90_000, "refund:again"))
            .wait()
            .unwrap()
    };
    let id = guard().approval_id.unwrap();
    env.authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap();
    for attempt in 1..=2 {
        let run = guard();
        assert_eq!(
            run.status,
            GuardStatus::Approved,
            "attempt {attempt}: {}",
            run.reason
        );
        env.authority
            .report(
                TENANT,
                OutcomeReport::new("refund:again", Outcome::Error)
                    .claim_token(run.claim.unwrap().token),
            )
            .wait()
            .unwrap();
    }
    let third = guard();
    assert_eq!(third.status, GuardStatus::Pending, "{}", third.reason);
    let second_id = third.approval_id.unwrap();
    assert_ne!(second_id, id);
    // Approved again, it runs again.
    env.authority
        .approve(TENANT, &second_id, "bob", None)
        .wait()
        .unwrap();
    assert_eq!(guard().status, GuardStatus::Approved);
}

/// Hostile (issue 21): an agent cannot bury other agents' requests under its own. Past its cap of waiting
/// approvals its requests that need a human are denied; other agents still ask; a decision frees a place.
#[test]
fn an_agent_may_have_only_so_many_approvals_waiting() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .max_pending_approvals_per_agent(3)
    });
    let ask = |agent: &str, key: &str| {
        let action = haltstate_authority::ActionRequest::new(agent, "refund.create")
            .param("amount_cents", serde_json::json!(90_000));
        env.authority
            .guard(TENANT, haltstate_authority::GuardRequest::new(action, key))
            .wait()
            .unwrap()
    };
    let first = ask("billing-agent", "flood:0");
    for i in 1..3 {
        assert_eq!(
            ask("billing-agent", &format!("flood:{i}")).status,
            GuardStatus::Pending
        );
    }
    let over = ask("billing-agent", "flood:3");
    assert_eq!(over.status, GuardStatus::Denied);
    assert!(
        over.reason.contains("3 approvals waiting"),
        "{}",
        over.reason
    );
    assert!(over.approval_id.is_none());
    // A check asking for a human is held to the same cap.
    let check = env
        .authority
        .check(TENANT, CheckRequest::new(refund(90_000)))
        .wait()
        .unwrap();
    assert_eq!(check.decision, Decision::Deny);
    assert!(check.approval_id.is_none());
    assert_eq!(ask("other-agent", "other:0").status, GuardStatus::Pending);
    env.authority
        .reject(TENANT, &first.approval_id.unwrap(), "alice", None)
        .wait()
        .unwrap();
    assert_eq!(ask("billing-agent", "flood:4").status, GuardStatus::Pending);
    assert_eq!(
        env.authority
            .approvals(TENANT, Some(ApprovalStatus::Pending), 100)
            .unwrap()
            .len(),
        4
    );
}

/// However many agents a key may act as (`billing-*`), the tenant's waiting approvals stay within what the
/// console's inbox shows: none is ever below its fold.
#[test]
fn a_tenant_may_have_only_so_many_approvals_waiting() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .max_pending_approvals_per_tenant(4)
    });
    assert_eq!(env.authority.max_pending_approvals_per_tenant(), 4);
    let ask = |agent: &str| {
        let action = haltstate_authority::ActionRequest::new(agent, "refund.create")
            .param("amount_cents", serde_json::json!(90_000));
        env.authority
            .guard(TENANT, haltstate_authority::GuardRequest::new(action, "k"))
            .wait()
            .unwrap()
    };
    for i in 0..4 {
        assert_eq!(ask(&format!("billing-{i}")).status, GuardStatus::Pending);
    }
    let over = ask("billing-9");
    assert_eq!(over.status, GuardStatus::Denied);
    assert!(
        over.reason.contains("tenant acme has 4 approvals waiting"),
        "{}",
        over.reason
    );
    // Another tenant is not counted.
    let action = haltstate_authority::ActionRequest::new("billing-9", "refund.create")
        .param("amount_cents", serde_json::json!(90_000));
    let elsewhere = env
        .authority
        .guard(
            "globex",
            haltstate_authority::GuardRequest::new(action, "k"),
        )
        .wait()
        .unwrap();
    assert_eq!(elsewhere.status, GuardStatus::Pending);
}

#[test]
fn rejected_key_answers_denied_with_the_rejection_reason() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big5"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.authority
        .reject(TENANT, &id, "bob", Some("looks like fraud".into()))
        .wait()
        .unwrap();
    let retry = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big5"))
        .wait()
        .unwrap();
    assert_eq!(retry.status, GuardStatus::Denied);
    assert_eq!(retry.reason, "looks like fraud");
    assert_eq!(retry.approver.as_deref(), Some("bob"));
    assert!(retry.claim.is_none());
    assert_eq!(
        env.authority
            .idempotency_state(TENANT, "billing-agent", "refund:big5")
            .unwrap()
            .unwrap()
            .0,
        KeyState::Rejected
    );
}

#[test]
fn self_approval_refused() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big6"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    let error = env
        .authority
        .approve(TENANT, &id, "billing-agent", None)
        .wait()
        .unwrap_err();
    assert!(
        matches!(error, AuthorityError::SelfApproval { .. }),
        "{error}"
    );
    assert!(matches!(
        env.authority
            .reject(TENANT, &id, "billing-agent", None)
            .wait(),
        Err(AuthorityError::SelfApproval { .. })
    ));
    assert_eq!(
        env.authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Pending
    );
}

#[test]
fn a_decided_approval_cannot_be_decided_again() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big7"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap();
    let error = env
        .authority
        .reject(TENANT, &id, "bob", None)
        .wait()
        .unwrap_err();
    assert!(
        matches!(
            error,
            AuthorityError::ApprovalDecided {
                status: ApprovalStatus::Approved,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn another_tenants_approval_is_not_found() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big8"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    assert!(matches!(
        env.authority.approval("globex", &id),
        Err(AuthorityError::ApprovalNotFound { .. })
    ));
    assert!(matches!(
        env.authority.approve("globex", &id, "eve", None).wait(),
        Err(AuthorityError::ApprovalNotFound { .. })
    ));
    assert_eq!(
        env.authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Pending
    );
}

#[test]
fn approval_expiry_answers_expired_and_refuses_late_decisions() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .approval_ttl(Duration::from_secs(3600))
    });
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big9"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.clock.advance(Duration::from_secs(3599));
    assert_eq!(
        env.authority
            .guard(TENANT, guard_refund(90_000, "refund:big9"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Pending
    );
    env.clock.advance(Duration::from_secs(1));
    // Reads show the expiry before anything stored it.
    assert_eq!(
        env.authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Expired
    );
    let late = env
        .authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap_err();
    assert!(
        matches!(
            late,
            AuthorityError::ApprovalDecided {
                status: ApprovalStatus::Expired,
                ..
            }
        ),
        "{late}"
    );
    let retry = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big9"))
        .wait()
        .unwrap();
    assert_eq!(retry.status, GuardStatus::Expired);
    assert_eq!(
        env.authority
            .idempotency_state(TENANT, "billing-agent", "refund:big9")
            .unwrap()
            .unwrap()
            .0,
        KeyState::Expired
    );
}

#[test]
fn sweep_stores_expiries_once_and_publishes_them() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .approval_ttl(Duration::from_secs(60))
    });
    let mut events = env.authority.subscribe();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:big10"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.clock.advance(Duration::from_secs(61));
    let swept = env.authority.sweep_expired(TENANT).wait().unwrap();
    assert_eq!(
        swept.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert!(
        env.authority
            .sweep_expired(TENANT)
            .wait()
            .unwrap()
            .is_empty()
    );
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.approval.id.as_str(), event.approval.status),
        (id.as_str(), ApprovalStatus::Expired)
    );
}

#[test]
fn approvals_since_lists_decisions_in_order_after_the_cursor() {
    let env = env_with(|b| {
        b.policy_file(sample_policy_path())
            .approval_ttl(Duration::from_secs(600))
    });
    let ids: Vec<String> = (0..3)
        .map(|i| {
            env.authority
                .guard(TENANT, guard_refund(90_000, &format!("refund:s{i}")))
                .wait()
                .unwrap()
                .approval_id
                .unwrap()
        })
        .collect();
    let start = env.authority.now();
    env.clock.advance(Duration::from_secs(1));
    env.authority
        .reject(TENANT, &ids[1], "bob", None)
        .wait()
        .unwrap();
    env.clock.advance(Duration::from_secs(1));
    env.authority
        .approve(TENANT, &ids[0], "alice", None)
        .wait()
        .unwrap();
    let cursor = env.authority.now();
    env.clock.advance(Duration::from_secs(600)); // ids[2] expires, counted at its expiry time
    let since: Vec<(String, ApprovalStatus)> = env
        .authority
        .approvals_since(TENANT, start, 100)
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.status))
        .collect();
    assert_eq!(
        since,
        vec![
            (ids[1].clone(), ApprovalStatus::Rejected),
            (ids[0].clone(), ApprovalStatus::Approved),
            (ids[2].clone(), ApprovalStatus::Expired),
        ]
    );
    assert_eq!(
        env.authority
            .approvals_since(TENANT, cursor, 100)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.authority
            .approvals_since(TENANT, start, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(
        env.authority
            .approvals_since("globex", start, 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn decisions_are_published_after_commit() {
    let env = env();
    let mut events = env.authority.subscribe();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:ev"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    assert!(
        events.try_recv().is_err(),
        "a pending approval is not a decision"
    );
    env.authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap();
    let event = events.try_recv().unwrap();
    assert_eq!(event.approval.status, ApprovalStatus::Approved);
    assert_eq!(event.approval.approver.as_deref(), Some("alice"));
}

#[test]
fn check_approval_is_found_again_by_request_id() {
    let env = env();
    let check = || CheckRequest::new(refund(90_000)).request_id("req-77");
    let first = env.authority.check(TENANT, check()).wait().unwrap();
    assert_eq!(first.decision, Decision::ApprovalRequired);
    let again = env.authority.check(TENANT, check()).wait().unwrap();
    assert_eq!(again.approval_id, first.approval_id);
    assert_eq!(again.request_id, "req-77");
    let other = env
        .authority
        .check(TENANT, CheckRequest::new(refund(90_000)))
        .wait()
        .unwrap();
    assert_ne!(other.approval_id, first.approval_id);
    assert!(other.request_id.starts_with("req_"));
    let approval = env
        .authority
        .approval(TENANT, first.approval_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(approval.idempotency_key, None);
}

/// Two authorities on one PostgreSQL database are two instances: a decision made through one reaches the
/// approvals subscribers of the other (LISTEN/NOTIFY), with what the approver decided. PostgreSQL only: SQLite
/// has one writer process, whose server polls.
#[test]
fn a_decision_made_through_another_instance_reaches_this_ones_subscribers() {
    let env = common::env_on(haltstate_testkit::postgres::Backend::Postgres, |b| {
        b.policy_file(sample_policy_path())
    });
    let other = env.second_handle();
    let mut events = env.authority.subscribe();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:far"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    other
        .approve(
            TENANT,
            &id,
            "alice",
            Some("seen on the other instance".into()),
        )
        .wait()
        .unwrap();
    let event = haltstate_testkit::eventually(
        "the other instance's decision to arrive",
        Duration::from_secs(10),
        || events.try_recv().ok(),
    );
    assert_eq!(event.approval.id, id);
    assert_eq!(event.approval.status, ApprovalStatus::Approved);
    assert_eq!(event.approval.approver.as_deref(), Some("alice"));
    // Published once here: the instance that decided does not hear its own notice twice.
    let mut own = other.subscribe();
    let second = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:far2"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    other.reject(TENANT, &second, "alice", None).wait().unwrap();
    assert_eq!(own.try_recv().unwrap().approval.id, second);
    haltstate_testkit::eventually(
        "the rejection to arrive here",
        Duration::from_secs(10),
        || events.try_recv().ok(),
    );
    assert!(
        own.try_recv().is_err(),
        "the deciding instance published twice"
    );
}

mod outbox {
    use super::*;
    use haltstate_authority::webhooks::{
        AttemptResult, DeliveryState, RetryPolicy, WebhookEvent, WebhookSpec,
    };
    use haltstate_authority::{KillScope, KillState};

    const LEASE: Duration = Duration::from_secs(30);

    fn spec(events: Vec<WebhookEvent>) -> WebhookSpec {
        WebhookSpec::new("http://127.0.0.1:9/hook")
            .unwrap()
            .events(events)
    }

    /// Hostile (issue 21): each event is posted to every webhook, so their number is capped per tenant; another
    /// tenant's are not counted, and a removed one frees its place.
    #[test]
    fn a_tenant_holds_at_most_sixteen_webhooks() {
        let env = env();
        let add = |tenant: &str| {
            env.authority
                .add_webhook(tenant, spec(WebhookEvent::ALL.to_vec()), "oncall")
                .wait()
        };
        let first = add(TENANT).unwrap().0;
        for _ in 1..16 {
            add(TENANT).unwrap();
        }
        let refused = add(TENANT).unwrap_err();
        assert!(
            refused.to_string().contains("16 webhooks already"),
            "{refused}"
        );
        add("other").unwrap();
        assert!(
            env.authority
                .remove_webhook(TENANT, &first.id)
                .wait()
                .unwrap()
        );
        add(TENANT).unwrap();
        assert_eq!(env.authority.webhooks(TENANT).unwrap().len(), 16);
    }

    #[test]
    fn approvals_and_kill_switches_are_queued_for_the_webhooks_that_want_them() {
        let env = env();
        let (all, secret) = env
            .authority
            .add_webhook(TENANT, spec(WebhookEvent::ALL.to_vec()), "oncall")
            .wait()
            .unwrap();
        assert!(secret.expose().starts_with("whsec_"));
        let (kills, _) = env
            .authority
            .add_webhook(
                TENANT,
                spec(vec![WebhookEvent::KillSwitchChanged]),
                "oncall",
            )
            .wait()
            .unwrap();
        // Another tenant's webhook hears nothing of this tenant.
        env.authority
            .add_webhook("other", spec(WebhookEvent::ALL.to_vec()), "oncall")
            .wait()
            .unwrap();

        let id = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:hook1"))
            .wait()
            .unwrap()
            .approval_id
            .unwrap();
        env.authority
            .approve(TENANT, &id, "alice", None)
            .wait()
            .unwrap();
        env.authority
            .set_kill_switch(
                KillScope::Agent {
                    tenant: TENANT.into(),
                    agent_id: "billing".into(),
                },
                KillState::Pause,
                "oncall",
            )
            .wait()
            .unwrap();

        let claimed = env
            .authority
            .claim_deliveries(TENANT, "sender-a", LEASE, 100)
            .wait()
            .unwrap();
        let mut seen: Vec<(&str, &str)> = claimed
            .iter()
            .map(|d| (d.webhook_id.as_str(), d.event.as_str()))
            .collect();
        seen.sort();
        let mut expected = vec![
            (all.id.as_str(), "approval.requested"),
            (all.id.as_str(), "approval.decided"),
            (all.id.as_str(), "kill_switch.changed"),
            (kills.id.as_str(), "kill_switch.changed"),
        ];
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(claimed.len(), 4, "{seen:?}");
        let requested = &claimed
            .iter()
            .find(|d| d.event == WebhookEvent::ApprovalRequested)
            .unwrap();
        assert_eq!(requested.data["approval_id"], id.as_str());
        assert_eq!(requested.data["path"], format!("/ui/approvals/{id}"));
        assert!(
            requested.data.get("params").is_none(),
            "params stay behind sign-in"
        );
        assert_eq!(env.authority.webhook_secret(requested).unwrap(), secret);
        // One event to two endpoints is one message id.
        let kill_ids: Vec<&str> = claimed
            .iter()
            .filter(|d| d.event == WebhookEvent::KillSwitchChanged)
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(kill_ids.len(), 2);
        assert_eq!(kill_ids[0], kill_ids[1]);
        // Held: nobody else gets them; the other tenant's is its own.
        assert!(
            env.authority
                .claim_deliveries(TENANT, "sender-b", LEASE, 100)
                .wait()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            env.authority.tenants_with_due_deliveries().unwrap(),
            Vec::<String>::new(),
            "the other tenant's webhook heard nothing"
        );
    }

    #[test]
    fn a_failed_attempt_is_retried_on_schedule_and_a_lapsed_lease_frees_the_delivery() {
        let env = env();
        let policy = RetryPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(60),
            max_attempts: 3,
        };
        env.authority
            .add_webhook(TENANT, spec(WebhookEvent::ALL.to_vec()), "oncall")
            .wait()
            .unwrap();
        env.authority
            .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Pause, "oncall")
            .wait()
            .unwrap();
        assert_eq!(
            env.authority.tenants_with_due_deliveries().unwrap(),
            [TENANT]
        );
        let claim = |holder: &str| {
            env.authority
                .claim_deliveries(TENANT, holder, LEASE, 10)
                .wait()
                .unwrap()
        };
        let first = claim("a").pop().unwrap();
        assert_eq!(first.attempts, 0);
        // A sender that dies holding it loses nothing: the lease lapses and another takes it.
        env.clock.advance(LEASE);
        let taken = claim("b").pop().unwrap();
        assert_eq!(taken.id, first.id);
        // The first holder's late result is not stored over the new holder's.
        let failed = || AttemptResult::Failed {
            status: Some(500),
            error: "HTTP 500".into(),
        };
        assert_eq!(
            env.authority
                .finish_delivery(&first, "a", failed(), policy)
                .wait()
                .unwrap(),
            None
        );
        let (state, next) = env
            .authority
            .finish_delivery(&taken, "b", failed(), policy)
            .wait()
            .unwrap()
            .unwrap();
        assert_eq!(state, DeliveryState::Pending);
        let wait = next.unwrap() - env.authority.now();
        assert!(
            wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12),
            "{wait}"
        );
        assert!(claim("a").is_empty(), "not due before its time");
        env.clock.advance(Duration::from_secs(12));
        let second = claim("a").pop().unwrap();
        assert_eq!(second.attempts, 1);
        env.authority
            .finish_delivery(&second, "a", failed(), policy)
            .wait()
            .unwrap();
        env.clock.advance(Duration::from_secs(30));
        let third = claim("a").pop().unwrap();
        let (state, next) = env
            .authority
            .finish_delivery(&third, "a", failed(), policy)
            .wait()
            .unwrap()
            .unwrap();
        assert_eq!((state, next), (DeliveryState::Failed, None));
        let listed = env.authority.webhook_deliveries(TENANT, 10).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, DeliveryState::Failed);
        assert_eq!(listed[0].attempts, 3);
        assert_eq!(listed[0].last_status, Some(500));
        assert_eq!(listed[0].last_error.as_deref(), Some("HTTP 500"));
        env.clock.advance(Duration::from_secs(3600));
        assert!(claim("a").is_empty(), "failed for good");
    }

    #[test]
    fn a_delivered_event_is_not_sent_again_and_a_removed_webhook_fails_what_waits() {
        let env = env();
        let (webhook, _) = env
            .authority
            .add_webhook(TENANT, spec(WebhookEvent::ALL.to_vec()), "oncall")
            .wait()
            .unwrap();
        let kill = |state| {
            env.authority
                .set_kill_switch(KillScope::Tenant(TENANT.into()), state, "oncall")
                .wait()
                .unwrap();
        };
        kill(KillState::Pause);
        let delivery = env
            .authority
            .claim_deliveries(TENANT, "a", LEASE, 10)
            .wait()
            .unwrap()
            .pop()
            .unwrap();
        let done = env
            .authority
            .finish_delivery(
                &delivery,
                "a",
                AttemptResult::Delivered { status: 204 },
                RetryPolicy::default(),
            )
            .wait()
            .unwrap();
        assert_eq!(done, Some((DeliveryState::Delivered, None)));
        env.clock.advance(Duration::from_secs(3600));
        assert!(
            env.authority
                .claim_deliveries(TENANT, "a", LEASE, 10)
                .wait()
                .unwrap()
                .is_empty()
        );
        kill(KillState::Run);
        assert!(
            env.authority
                .remove_webhook(TENANT, &webhook.id)
                .wait()
                .unwrap()
        );
        assert!(
            !env.authority
                .remove_webhook(TENANT, &webhook.id)
                .wait()
                .unwrap()
        );
        assert!(env.authority.webhooks(TENANT).unwrap().is_empty());
        let listed = env.authority.webhook_deliveries(TENANT, 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].state, DeliveryState::Failed);
        assert_eq!(listed[0].last_error.as_deref(), Some("webhook removed"));
        assert_eq!(listed[1].state, DeliveryState::Delivered);
        assert!(
            env.authority
                .claim_deliveries(TENANT, "a", LEASE, 10)
                .wait()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_webhook_needs_an_event() {
        let env = env();
        let refused = env
            .authority
            .add_webhook(TENANT, spec(Vec::new()), "oncall")
            .wait()
            .unwrap_err();
        assert!(
            refused.to_string().contains("at least one event"),
            "{refused}"
        );
    }
}

mod staying_true {
    use super::*;
    use haltstate_authority::{Decision, EvidenceKind, EvidenceQuery};

    const TWO_APPROVERS: &str = r#"
        @id("refunds.large") @approval("2")
        permit(principal, action == Action::"refund.create", resource)
        when { context.params.amount_cents > 10000 };
    "#;

    #[test]
    fn two_approvers_means_two_different_operators() {
        let env = common::env_with(|b| b.policy_source("two.cedar", TWO_APPROVERS));
        let pending = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:two"))
            .wait()
            .unwrap();
        let id = pending.approval_id.unwrap();
        let approval = env.authority.approval(TENANT, &id).unwrap();
        assert_eq!(approval.approvals_required, 2);
        assert_eq!(
            approval.policy_version.as_deref(),
            Some(env.authority.policies().current().version())
        );
        let first = env
            .authority
            .approve(TENANT, &id, "alice", None)
            .wait()
            .unwrap();
        assert_eq!(first.status, ApprovalStatus::Pending, "one of two");
        assert_eq!(first.approved_by, ["alice"]);
        // Alice again does not count twice; the key still waits.
        let again = env
            .authority
            .approve(TENANT, &id, "alice", None)
            .wait()
            .unwrap_err();
        assert!(
            matches!(again, AuthorityError::AlreadyApproved { .. }),
            "{again}"
        );
        let retry = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:two"))
            .wait()
            .unwrap();
        assert_eq!(retry.status, GuardStatus::Pending);
        let second = env
            .authority
            .approve(TENANT, &id, "bob", Some("checked".into()))
            .wait()
            .unwrap();
        assert_eq!(second.status, ApprovalStatus::Approved);
        assert_eq!(second.approved_by, ["alice", "bob"]);
        assert_eq!(second.approver.as_deref(), Some("bob"));
        let run = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:two"))
            .wait()
            .unwrap();
        assert_eq!(run.status, GuardStatus::Approved);
        // The evidence has both approvals, the first one as partial.
        let records = env
            .authority
            .evidence(TENANT, &EvidenceQuery::default())
            .unwrap();
        let approvals: Vec<(Option<&str>, Option<&str>)> = records
            .iter()
            .filter(|r| r.kind == EvidenceKind::Approval)
            .map(|r| (r.actor.as_deref(), r.status.as_deref()))
            .collect();
        assert_eq!(
            approvals,
            [
                (Some("alice"), Some("pending")),
                (Some("bob"), Some("approved"))
            ]
        );
    }

    #[test]
    fn a_forbid_added_since_the_approval_still_denies_and_says_so() {
        let base = r#"
            @id("refunds.large") @approval("required")
            permit(principal, action == Action::"refund.create", resource);
        "#;
        let env = common::env_with(|b| b.policy_source("base.cedar", base));
        let id = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:frozen"))
            .wait()
            .unwrap()
            .approval_id
            .unwrap();
        env.authority
            .approve(TENANT, &id, "alice", None)
            .wait()
            .unwrap();
        env.authority
            .policies()
            .reload_source(
                "frozen.cedar",
                &format!(
                    "{base}\n@id(\"refunds.frozen\") @reason(\"refunds are frozen\")\nforbid(principal, action == Action::\"refund.create\", resource);"
                ),
            )
            .unwrap();
        let denied = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:frozen"))
            .wait()
            .unwrap();
        assert_eq!(denied.status, GuardStatus::Denied);
        assert_eq!(
            denied.reason,
            "approved by alice, but policy now denies it: refunds are frozen"
        );
        assert_eq!(denied.policy_id.as_deref(), Some("refunds.frozen"));
        let last = env
            .authority
            .evidence(TENANT, &EvidenceQuery::default())
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(last.decision, Some(Decision::Deny));
        assert_eq!(last.policy_id.as_deref(), Some("refunds.frozen"));
        assert_eq!(
            env.authority
                .idempotency_state(TENANT, "billing-agent", "refund:frozen")
                .unwrap()
                .unwrap()
                .0,
            KeyState::Approved,
            "the approval stands"
        );
        // The freeze lifted, the approved key runs.
        env.authority
            .policies()
            .reload_source("base.cedar", base)
            .unwrap();
        let run = env
            .authority
            .guard(TENANT, guard_refund(90_000, "refund:frozen"))
            .wait()
            .unwrap();
        assert_eq!(run.status, GuardStatus::Approved);
    }

    #[test]
    fn an_approval_annotation_is_required_or_a_count() {
        for (annotation, ok) in [
            ("\"required\"", true),
            ("\"3\"", true),
            ("\"0\"", false),
            ("\"11\"", false),
            ("\"two\"", false),
        ] {
            let source =
                format!("@id(\"a\") @approval({annotation}) permit(principal, action, resource);");
            assert_eq!(
                haltstate_authority::PolicyEngine::from_source("p.cedar", &source).is_ok(),
                ok,
                "{annotation}"
            );
        }
    }
}

/// A decision's reason is evidence others read: past 512 bytes or with a control character it is refused and the
/// approval stays pending; a blank one is no reason; one within bounds is kept.
#[test]
fn a_decisions_reason_is_bounded_and_printable() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:reason"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    for bad in ["x".repeat(513), "line\u{1b}[2Jcleared".to_owned()] {
        let refused = env
            .authority
            .reject(TENANT, &id, "alice", Some(bad.clone()))
            .wait();
        assert!(
            matches!(refused, Err(AuthorityError::Request(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(
        env.authority.approval(TENANT, &id).unwrap().status,
        ApprovalStatus::Pending
    );
    let kept = env
        .authority
        .approve(
            TENANT,
            &id,
            "alice",
            Some(format!("  {}  ", "y".repeat(512))),
        )
        .wait()
        .unwrap();
    assert_eq!(kept.status, ApprovalStatus::Approved);
    assert_eq!(
        kept.decision_reason.as_deref(),
        Some("y".repeat(512).as_str())
    );
}
