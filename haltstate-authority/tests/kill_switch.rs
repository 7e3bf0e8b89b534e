//! The kill switch: per tenant and per agent, checked before policy, every change on the ledger.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::IntoFuture;

use common::{TENANT, env, guard_refund, refund};
use haltstate_authority::{
    CheckRequest, Decision, EvidenceKind, EvidenceQuery, GuardStatus, KillScope, KillState,
};

fn agent_scope(agent: &str) -> KillScope {
    KillScope::Agent {
        tenant: TENANT.into(),
        agent_id: agent.into(),
    }
}

#[test]
fn kill_switch_deny_on_tenant_kill_before_policy_runs() {
    let env = env();
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Kill, "oncall")
        .wait()
        .unwrap();
    let guard = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:k1"))
        .wait()
        .unwrap();
    assert_eq!(guard.status, GuardStatus::Denied);
    assert_eq!(guard.reason, "kill switch: tenant acme is killed");
    assert_eq!(guard.policy_id, None);
    assert_eq!(
        env.authority
            .idempotency_state(TENANT, "billing-agent", "refund:k1")
            .unwrap(),
        None,
        "nothing was claimed"
    );
    let check = env
        .authority
        .check(TENANT, CheckRequest::new(refund(100)))
        .wait()
        .unwrap();
    assert_eq!(check.decision, Decision::Deny);
    assert!(check.reason.contains("kill switch"));
    // Other tenants run on.
    assert_eq!(
        env.authority
            .guard("globex", guard_refund(100, "refund:k1"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );
}

#[test]
fn pausing_one_agent_stops_only_that_agent_until_resumed() {
    let env = env();
    env.authority
        .set_kill_switch(agent_scope("billing-agent"), KillState::Pause, "oncall")
        .wait()
        .unwrap();
    let paused = env
        .authority
        .guard(TENANT, guard_refund(100, "refund:p1"))
        .wait()
        .unwrap();
    assert_eq!(paused.status, GuardStatus::Denied);
    assert_eq!(paused.reason, "kill switch: agent billing-agent is paused");
    let mut other = guard_refund(100, "refund:p2");
    other.action.agent_id = "other-agent".into();
    assert_eq!(
        env.authority.guard(TENANT, other).wait().unwrap().status,
        GuardStatus::Allowed
    );

    env.authority
        .set_kill_switch(agent_scope("billing-agent"), KillState::Run, "oncall")
        .wait()
        .unwrap();
    assert_eq!(
        env.authority
            .guard(TENANT, guard_refund(100, "refund:p1"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Allowed
    );
}

#[test]
fn the_more_severe_of_tenant_and_agent_state_applies() {
    let env = env();
    env.authority
        .set_kill_switch(agent_scope("billing-agent"), KillState::Pause, "a")
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Kill, "b")
        .wait()
        .unwrap();
    let status = env
        .authority
        .kill_switch(TENANT, Some("billing-agent"))
        .unwrap();
    assert_eq!(status.state, KillState::Kill);
    assert_eq!(status.scope, Some(KillScope::Tenant(TENANT.into())));
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Run, "b")
        .wait()
        .unwrap();
    let status = env
        .authority
        .kill_switch(TENANT, Some("billing-agent"))
        .unwrap();
    assert_eq!(
        (status.state, status.scope),
        (KillState::Pause, Some(agent_scope("billing-agent")))
    );
    assert_eq!(
        env.authority.kill_switch(TENANT, None).unwrap().state,
        KillState::Run
    );
}

#[test]
fn every_kill_switch_change_is_a_ledger_record() {
    let env = env();
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Pause, "oncall")
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(agent_scope("billing-agent"), KillState::Kill, "secops")
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Run, "oncall")
        .wait()
        .unwrap();
    let records = env
        .authority
        .evidence(TENANT, &EvidenceQuery::default())
        .unwrap();
    let changes: Vec<(Option<&str>, Option<&str>, Option<&str>)> = records
        .iter()
        .filter(|r| r.kind == EvidenceKind::KillSwitch)
        .map(|r| {
            (
                r.agent_id.as_deref(),
                r.status.as_deref(),
                r.actor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (None, Some("PAUSE"), Some("oncall")),
            (Some("billing-agent"), Some("KILL"), Some("secops")),
            (None, Some("RUN"), Some("oncall")),
        ]
    );
}

#[test]
fn a_kill_denies_keys_that_were_already_approved() {
    let env = env();
    let id = env
        .authority
        .guard(TENANT, guard_refund(90_000, "refund:k2"))
        .wait()
        .unwrap()
        .approval_id
        .unwrap();
    env.authority
        .approve(TENANT, &id, "alice", None)
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Kill, "oncall")
        .wait()
        .unwrap();
    assert_eq!(
        env.authority
            .guard(TENANT, guard_refund(90_000, "refund:k2"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Denied
    );
    env.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Run, "oncall")
        .wait()
        .unwrap();
    assert_eq!(
        env.authority
            .guard(TENANT, guard_refund(90_000, "refund:k2"))
            .wait()
            .unwrap()
            .status,
        GuardStatus::Approved
    );
}

/// A batch reads each agent's switch once (`store/kill_cache.rs`): a switch set by an operation of the batch must
/// stop the guards queued behind it in the same transaction, and an operation rolled back must not leave its read
/// behind. On SQLite the three operations below share one transaction (one task on a `current_thread` runtime
/// queues all three before leading the batch); PostgreSQL's writer thread may split them, and the answers must be
/// the same either way.
#[test]
fn a_switch_set_inside_a_batch_stops_the_guards_behind_it() {
    let env = env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = env.authority.writer_stats();
    let (first, killed, second) = runtime.block_on(async {
        tokio::join!(
            env.authority
                .guard(TENANT, guard_refund(100, "refund:batch-1"))
                .into_future(),
            env.authority
                .set_kill_switch(agent_scope("billing-agent"), KillState::Kill, "oncall")
                .into_future(),
            env.authority
                .guard(TENANT, guard_refund(100, "refund:batch-2"))
                .into_future(),
        )
    });
    assert_eq!(first.unwrap().status, GuardStatus::Allowed);
    assert_eq!(killed.unwrap().state, KillState::Kill);
    let second = second.unwrap();
    assert_eq!(second.status, GuardStatus::Denied, "{second:?}");
    assert!(second.reason.contains("kill switch"), "{}", second.reason);
    if haltstate_testkit::postgres::backend() == haltstate_testkit::postgres::Backend::Sqlite {
        let after = env.authority.writer_stats();
        assert_eq!(
            (
                after.transactions - before.transactions,
                after.operations - before.operations
            ),
            (1, 3),
            "the three operations shared one transaction"
        );
    }
}

#[test]
fn the_switchs_history_says_who_changed_it_when_and_why() {
    let env = env();
    let actor = |name: &str| {
        haltstate_authority::Actor::new(name, haltstate_authority::Via::Console).unwrap()
    };
    env.authority
        .set_kill_switch_because(
            KillScope::Tenant(TENANT.into()),
            KillState::Kill,
            actor("alice"),
            Some("refund storm"),
        )
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch_because(
            agent_scope("exporter"),
            KillState::Pause,
            actor("bob"),
            None,
        )
        .wait()
        .unwrap();
    env.authority
        .set_kill_switch(KillScope::Tenant("globex".into()), KillState::Kill, "gina")
        .wait()
        .unwrap();
    let history = env.authority.kill_switch_history(TENANT, 10).unwrap();
    let told: Vec<(Option<&str>, Option<&str>)> = history
        .iter()
        .map(|r| (r.actor.as_deref(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        told,
        [
            (Some("bob"), Some("agent exporter set to PAUSE")),
            (Some("alice"), Some("tenant acme set to KILL: refund storm")),
        ]
    );
    assert_eq!(
        env.authority.kill_switch_history(TENANT, 1).unwrap().len(),
        1
    );
    // An overlong reason is refused and nothing changes.
    let refused = env
        .authority
        .set_kill_switch_because(
            KillScope::Tenant(TENANT.into()),
            KillState::Run,
            actor("alice"),
            Some(&"x".repeat(600)),
        )
        .wait();
    assert!(refused.is_err());
    assert_eq!(
        env.authority.kill_switch(TENANT, None).unwrap().state,
        KillState::Kill
    );
}
