//! The rules without a database: every combination of a key's state with a guard, and a model-based property
//! test over sequences of guards, reports, approvals and time.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

use haltstate_types::{
    ActionRequest, Actor, Approval, ApprovalStatus, Decision, GuardRequest, GuardStatus,
    KeyLifetime, KeyState, KillScope, KillState, KillStatus, Outcome, OutcomeReport, Verdict, Via,
};

use super::Windows;
use super::approval::{DecideStep, decide};
use super::guard::{FreshId, GuardFacts, GuardOutcome, guard};
use super::report::{ReportStep, report};
use crate::policy_decision::PolicyDecision;
use crate::state_rows::KeyRecord;

const NOW: OffsetDateTime = datetime!(2026-01-05 10:00 UTC);
const WINDOWS: Windows = Windows {
    approval_ttl: Duration::from_secs(3600),
    lease: Duration::from_secs(60),
    approval_attempts: 3,
    refund_usage_on_error: false,
    max_pending_per_agent: 50,
    max_pending_per_tenant: 500,
};

fn request(token: Option<&str>) -> GuardRequest {
    let mut request = GuardRequest::new(ActionRequest::new("bot", "refund.create"), "k");
    request.claim_token = token.map(str::to_owned);
    request
}

fn policy(decision: Decision) -> PolicyDecision {
    PolicyDecision {
        approvals_required: 1,
        policy_version: None,
        shadow: None,
        decision,
        policy_id: Some("p".into()),
        reason: "policy".into(),
        latency: Duration::ZERO,
    }
}

fn running() -> KillStatus {
    KillStatus {
        state: KillState::Run,
        scope: None,
    }
}

fn approval(status: ApprovalStatus) -> Approval {
    Approval {
        id: "apr_1".into(),
        tenant: "acme".into(),
        idempotency_key: Some("k".into()),
        agent_id: "bot".into(),
        action: "refund.create".into(),
        resource: None,
        params: Default::default(),
        risk: None,
        metadata: None,
        policy_id: Some("p".into()),
        policy_reason: "needs a human".into(),
        status,
        created_at: NOW,
        expires_at: NOW + WINDOWS.approval_ttl,
        decided_at: (status != ApprovalStatus::Pending).then_some(NOW),
        approver: None,
        decision_reason: None,
        approvals_required: 1,
        approved_by: Vec::new(),
        policy_version: None,
    }
}

fn record(state: KeyState, lease: Option<OffsetDateTime>, token: Option<&str>) -> KeyRecord {
    KeyRecord {
        key: "k".into(),
        fingerprint: "fp".into(),
        agent_id: "bot".into(),
        action: "refund.create".into(),
        state,
        lifetime: KeyLifetime::Once,
        generation: 4,
        approval_id: None,
        policy_id: Some("p".into()),
        reason: "policy".into(),
        claim_token: token.map(str::to_owned),
        // The claim's holder sent `token` as its retry token (the claim's own token is the authority's; these
        // tests give both the same text).
        retry_digest: token.and_then(|t| super::guard::retry_digest(&request(Some(t)))),
        attempts: 0,
        lease_until: lease,
        outcome_seq: (state == KeyState::Completed).then_some(7),
        claimed_by: None,
        client_token: token.is_some(),
        charged: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_guard(
    request: &GuardRequest,
    fingerprint: &str,
    kill: &KillStatus,
    record: Option<&KeyRecord>,
    approval: Option<&Approval>,
    policy: &PolicyDecision,
    now: OffsetDateTime,
) -> GuardOutcome {
    guard(&GuardFacts {
        tenant: "acme",
        request,
        fingerprint,
        kill,
        record,
        approval,
        policy,
        now,
        windows: WINDOWS,
        fresh_token: "fresh".into(),
        fresh_approval_id: FreshId(&|| "apr_new".into()),
    })
}

/// Every state a key can be in, with every lease, claim token, approval, policy decision, kill switch and
/// fingerprint: the answer is one the state allows, and only a grant stores a claim.
#[test]
fn every_guard_answer_follows_from_the_state_it_met() {
    let states = [
        KeyState::PendingApproval,
        KeyState::Approved,
        KeyState::Rejected,
        KeyState::Expired,
        KeyState::Claimed,
        KeyState::Completed,
        KeyState::Failed,
    ];
    let leases = [
        None,
        Some(NOW + Duration::from_secs(30)),
        Some(NOW - Duration::from_secs(1)),
    ];
    let approvals = [
        None,
        Some(ApprovalStatus::Pending),
        Some(ApprovalStatus::Approved),
        Some(ApprovalStatus::Rejected),
        Some(ApprovalStatus::Expired),
    ];
    let decisions = [Decision::Allow, Decision::Deny, Decision::ApprovalRequired];
    let kills = [KillState::Run, KillState::Pause, KillState::Kill];
    let mut cases = 0;
    for state in states {
        for lease in leases {
            for (held, asking) in [
                (Some("A"), Some("A")),
                (Some("A"), Some("B")),
                (Some("A"), None),
                (None, None),
            ] {
                for approval_status in approvals {
                    for decision in decisions {
                        for kill_state in kills {
                            for (fingerprint, (kept, asked)) in ["fp", "other"]
                                .into_iter()
                                .flat_map(|f| LIFETIMES.into_iter().map(move |l| (f, l)))
                            {
                                cases += 1;
                                let mut stored = record(state, lease, held);
                                stored.lifetime = kept;
                                stored.approval_id = approval_status.map(|_| "apr_1".to_owned());
                                let approval = approval_status.map(approval);
                                let kill = KillStatus {
                                    state: kill_state,
                                    scope: (kill_state != KillState::Run)
                                        .then(|| KillScope::new("acme", Some("bot"))),
                                };
                                let request = request(asking).lifetime(asked);
                                let out = decide_guard(
                                    &request,
                                    fingerprint,
                                    &kill,
                                    Some(&stored),
                                    approval.as_ref(),
                                    &policy(decision),
                                    NOW,
                                );
                                check_guard(
                                    &stored,
                                    &request,
                                    fingerprint,
                                    &kill,
                                    approval.as_ref(),
                                    decision,
                                    &out,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 7 * 3 * 4 * 5 * 3 * 3 * 2 * 4);
}

/// The stored operation's lifetime and the guard's: every pair.
const LIFETIMES: [(KeyLifetime, KeyLifetime); 4] = [
    (KeyLifetime::Once, KeyLifetime::Once),
    (KeyLifetime::Operation, KeyLifetime::Operation),
    (KeyLifetime::Once, KeyLifetime::Operation),
    (KeyLifetime::Operation, KeyLifetime::Once),
];

/// Whether the stored operation has ended for a guard that may start the next one, stated from the states
/// themselves (not from the rule).
fn has_ended(stored: &KeyRecord, approval: Option<&Approval>, now: OffsetDateTime) -> bool {
    match stored.state {
        KeyState::Completed | KeyState::Failed | KeyState::Expired => true,
        KeyState::Rejected => approval.is_some_and(|a| now >= a.expires_at),
        KeyState::PendingApproval => approval.is_some_and(|a| a.status == ApprovalStatus::Expired),
        KeyState::Claimed | KeyState::Approved => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_guard(
    stored: &KeyRecord,
    request: &GuardRequest,
    fingerprint: &str,
    kill: &KillStatus,
    approval: Option<&Approval>,
    decision: Decision,
    out: &GuardOutcome,
) {
    let context = format!(
        "{stored:?} {request:?} {fingerprint} {kill:?} {approval:?} {decision:?} -> {out:?}"
    );
    let answer = &out.answer;
    if kill.state != KillState::Run {
        assert_eq!(answer.status, GuardStatus::Denied, "{context}");
        assert_eq!(answer.kill_switch, Some(kill.state), "{context}");
        assert!(
            out.store.is_none() && out.create_approval.is_none(),
            "{context}"
        );
        return;
    }
    let repeatable =
        stored.lifetime == KeyLifetime::Operation && request.lifetime == KeyLifetime::Operation;
    if repeatable && has_ended(stored, approval, NOW) {
        // The key's next operation: decided by policy as a new key would be, whatever the last one's arguments.
        let next = stored.generation + 1;
        assert!(!out.conflict, "{context}");
        assert_eq!(answer.generation, next, "{context}");
        assert_eq!(out.generation, Some(next), "{context}");
        let expected = match decision {
            Decision::Allow => GuardStatus::Allowed,
            Decision::Deny => GuardStatus::Denied,
            Decision::ApprovalRequired => GuardStatus::Pending,
        };
        assert_eq!(answer.status, expected, "{context}");
        if let Some(new) = &out.store {
            assert_eq!(new.generation, next, "{context}");
            assert_eq!(new.attempts, 0, "{context}");
            assert!(new.charged.is_none(), "{context}");
            assert_eq!(new.lifetime, KeyLifetime::Operation, "{context}");
        }
        assert_eq!(
            out.expire_approval.is_some(),
            stored.state == KeyState::PendingApproval,
            "an overdue approval is settled on the way: {context}"
        );
        return;
    }
    // Anything else is about the stored operation.
    assert_eq!(answer.generation, stored.generation, "{context}");
    if let Some(new) = &out.store {
        assert_eq!(new.generation, stored.generation, "{context}");
    }
    if fingerprint != stored.fingerprint {
        assert!(out.conflict && out.store.is_none(), "{context}");
        return;
    }
    assert!(!out.conflict, "{context}");
    let live = stored.live_claim(NOW);
    match stored.state {
        KeyState::Completed => {
            assert_eq!(answer.status, GuardStatus::Completed, "{context}");
            assert_eq!(answer.completed_seq, Some(7), "{context}");
        }
        KeyState::Claimed
            if live
                && request.claim_token.is_some()
                && request.claim_token == stored.claim_token =>
        {
            // The holder retrying gets its own claim back, unchanged.
            assert!(answer.status.may_run(), "{context}");
            assert_eq!(
                answer.claim.as_ref().map(|c| c.token.as_str()),
                stored.claim_token.as_deref()
            );
            assert!(out.store.is_none(), "{context}");
        }
        KeyState::Claimed if live => {
            assert_eq!(answer.status, GuardStatus::InProgress, "{context}")
        }
        KeyState::Rejected => assert_eq!(answer.status, GuardStatus::Denied, "{context}"),
        KeyState::Expired => assert_eq!(answer.status, GuardStatus::Expired, "{context}"),
        KeyState::PendingApproval => match approval.map(|a| a.status) {
            Some(ApprovalStatus::Expired) => {
                assert_eq!(answer.status, GuardStatus::Expired, "{context}");
                assert_eq!(
                    out.store.as_ref().map(|r| r.state),
                    Some(KeyState::Expired),
                    "{context}"
                );
                assert!(out.expire_approval.is_some(), "{context}");
            }
            Some(_) => assert_eq!(answer.status, GuardStatus::Pending, "{context}"),
            None => assert_eq!(answer.status, GuardStatus::Denied, "{context}"),
        },
        KeyState::Failed if stored.approval_id.is_none() => {
            // Released without a human in the loop: policy decides again.
            let expected = match decision {
                Decision::Allow => GuardStatus::Allowed,
                Decision::Deny => GuardStatus::Denied,
                Decision::ApprovalRequired => GuardStatus::Pending,
            };
            assert_eq!(answer.status, expected, "{context}");
            assert_eq!(
                out.create_approval.is_some(),
                decision == Decision::ApprovalRequired,
                "{context}"
            );
        }
        KeyState::Approved | KeyState::Claimed | KeyState::Failed if decision == Decision::Deny => {
            // Approved, or claimed before: a new claim still needs policy not to deny it now.
            assert_eq!(answer.status, GuardStatus::Denied, "{context}");
            assert_eq!(out.decision, Some(Decision::Deny), "{context}");
            assert!(out.store.is_none(), "the key keeps its state: {context}");
        }
        KeyState::Approved | KeyState::Claimed | KeyState::Failed => {
            let expected = if stored.approval_id.is_some() {
                GuardStatus::Approved
            } else {
                GuardStatus::Allowed
            };
            assert_eq!(answer.status, expected, "{context}");
        }
    }
    // Whatever was granted, a new claim is stored under a token the authority made (never the caller's), with a
    // lease and the digest that recognises the caller's retry; nothing else stores a claim.
    if let Some(new) = &out.store
        && new.state == KeyState::Claimed
    {
        let token = answer.claim.as_ref().map(|c| c.token.clone());
        assert_eq!(new.claim_token, token, "{context}");
        assert_eq!(new.claim_token.as_deref(), Some("fresh"), "{context}");
        assert_eq!(
            new.retry_digest,
            super::guard::retry_digest(request),
            "{context}"
        );
        assert_eq!(new.lease_until, Some(NOW + WINDOWS.lease), "{context}");
        assert_eq!(new.client_token, request.claim_token.is_some(), "{context}");
        assert!(answer.status.may_run(), "{context}");
    }
    if answer.status.may_run() {
        assert!(answer.claim.is_some(), "{context}");
    } else {
        assert!(answer.claim.is_none(), "{context}");
    }
}

#[test]
fn a_new_key_is_decided_by_policy() {
    let request = request(Some("T"));
    for (decision, status) in [
        (Decision::Allow, GuardStatus::Allowed),
        (Decision::Deny, GuardStatus::Denied),
        (Decision::ApprovalRequired, GuardStatus::Pending),
    ] {
        let out = decide_guard(
            &request,
            "fp",
            &running(),
            None,
            None,
            &policy(decision),
            NOW,
        );
        assert_eq!(out.answer.status, status);
        assert_eq!(out.decision, Some(decision));
        match decision {
            Decision::Allow => assert_eq!(out.store.unwrap().claim_token.as_deref(), Some("fresh")),
            Decision::Deny => assert!(out.store.is_none()),
            Decision::ApprovalRequired => {
                let created = out.create_approval.unwrap();
                assert_eq!(created.id, "apr_new");
                assert_eq!(created.expires_at, NOW + WINDOWS.approval_ttl);
                assert_eq!(out.store.unwrap().approval_id.as_deref(), Some("apr_new"));
            }
        }
    }
}

#[test]
fn only_the_holder_reports_a_claim() {
    let live = Some(NOW + Duration::from_secs(30));
    let mut chosen = record(KeyState::Claimed, live, Some("T"));
    let report_with = |token: Option<&str>, caller: Option<&str>| {
        let mut report = OutcomeReport::new("k", Outcome::Success);
        report.claim_token = token.map(str::to_owned);
        report.caller_key = caller.map(str::to_owned);
        report
    };
    assert_eq!(
        report(&chosen, &report_with(Some("T"), None)).unwrap(),
        ReportStep::Record {
            state: KeyState::Completed
        }
    );
    for refused in [
        report_with(None, None),
        report_with(Some("X"), None),
        // The right token from another API key (one acting as another agent, say): not the holder.
        report_with(Some("T"), Some("key_b")),
    ] {
        assert!(report(&chosen, &refused).is_err());
    }
    // A claim the server chose a token for (an official SDK's): the same key may report without one.
    chosen.client_token = false;
    chosen.claimed_by = Some("key_a".into());
    assert!(report(&chosen, &report_with(None, Some("key_a"))).is_ok());
    assert!(report(&chosen, &report_with(None, Some("key_b"))).is_err());
    assert!(report(&chosen, &report_with(None, None)).is_err());
    let done = KeyRecord {
        state: KeyState::Completed,
        outcome_seq: Some(9),
        ..chosen
    };
    assert_eq!(
        report(&done, &report_with(Some("T"), Some("key_a"))).unwrap(),
        ReportStep::Duplicate { seq: 9 }
    );
}

/// Hostile (issue 21): one approval, a bounded number of runs. An agent that acts, reports `error` and guards
/// again gets the approved retries, then a new approval to wait for, never a seventh run.
#[test]
fn an_approval_grants_a_bounded_number_of_claims() {
    let approved = approval(ApprovalStatus::Approved);
    let mut stored = KeyRecord {
        approval_id: Some("apr_1".into()),
        ..record(KeyState::Approved, None, None)
    };
    let mut runs = 0;
    for _ in 0..10 {
        let out = decide_guard(
            &request(None),
            "fp",
            &running(),
            Some(&stored),
            Some(&approved),
            &policy(Decision::ApprovalRequired),
            NOW,
        );
        if out.answer.status != GuardStatus::Approved {
            assert_eq!(out.answer.status, GuardStatus::Pending, "{out:?}");
            assert_eq!(
                out.create_approval.map(|a| a.id).as_deref(),
                Some("apr_new")
            );
            break;
        }
        runs += 1;
        // The body ran, and its agent says it failed.
        stored = KeyRecord {
            state: KeyState::Failed,
            lease_until: None,
            ..out.store.unwrap()
        };
    }
    assert_eq!(runs, WINDOWS.approval_attempts);
    // A lapsed lease counts as an attempt too: the body may have run.
    let lapsed = KeyRecord {
        state: KeyState::Claimed,
        lease_until: Some(NOW - Duration::from_secs(1)),
        attempts: WINDOWS.approval_attempts,
        ..stored
    };
    let out = decide_guard(
        &request(None),
        "fp",
        &running(),
        Some(&lapsed),
        Some(&approved),
        &policy(Decision::ApprovalRequired),
        NOW,
    );
    assert_eq!(out.answer.status, GuardStatus::Pending);
}

#[test]
fn an_approver_decides_only_pending_approvals_and_never_their_own() {
    let alice = Actor::new("alice", Via::Api).unwrap();
    let pending = approval(ApprovalStatus::Pending);
    let Ok(DecideStep::Decided {
        approval: decided,
        key_state,
    }) = decide(&pending, Verdict::Reject, &alice, Some("no".into()), NOW)
    else {
        panic!("a pending approval is decidable");
    };
    assert_eq!(
        (decided.status, key_state),
        (ApprovalStatus::Rejected, KeyState::Rejected)
    );
    assert_eq!(decided.approver.as_deref(), Some("alice"));
    let own = Actor::new("Bot", Via::Cli).unwrap();
    assert!(decide(&pending, Verdict::Approve, &own, None, NOW).is_err());
    assert!(matches!(
        decide(
            &approval(ApprovalStatus::Expired),
            Verdict::Approve,
            &alice,
            None,
            NOW
        ),
        Ok(DecideStep::Expired)
    ));
    assert!(
        decide(
            &approval(ApprovalStatus::Approved),
            Verdict::Approve,
            &alice,
            None,
            NOW
        )
        .is_err()
    );
}

/// What one caller does next.
#[derive(Debug, Clone)]
enum Step {
    /// A worker guards with its own token (0-3) while policy says this.
    Guard { worker: u8, decision: u8 },
    /// A worker reports its claim.
    Report { worker: u8, success: bool },
    /// An operator decides the pending approval.
    Decide { approve: bool },
    /// Time passes.
    Wait { seconds: u16 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4u8, 0..3u8).prop_map(|(worker, decision)| Step::Guard { worker, decision }),
        3 => (0..4u8, any::<bool>()).prop_map(|(worker, success)| Step::Report { worker, success }),
        1 => any::<bool>().prop_map(|approve| Step::Decide { approve }),
        1 => (1..120u16).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

/// One key's storage, applied the way `ops/` applies the rules.
#[derive(Default)]
struct Model {
    record: Option<KeyRecord>,
    approvals: HashMap<String, Approval>,
    next_seq: u64,
}

impl Model {
    fn approval_now(&self, now: OffsetDateTime) -> Option<Approval> {
        let id = self.record.as_ref()?.approval_id.as_ref()?;
        let mut approval = self.approvals.get(id)?.clone();
        if approval.status == ApprovalStatus::Pending && approval.expires_at <= now {
            approval = super::approval::expired(&approval);
        }
        Some(approval)
    }

    fn apply(&mut self, out: &GuardOutcome) {
        if let Some(expired) = &out.expire_approval {
            self.approvals
                .insert(expired.id.clone(), super::approval::expired(expired));
        }
        if let Some(created) = &out.create_approval {
            self.approvals.insert(created.id.clone(), created.clone());
        }
        if let Some(record) = &out.store {
            self.record = Some(record.clone());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever happens in whatever order: at most one worker runs the body at a time, a completed key never runs
    /// again, a rejected one never runs, and every report is accepted only from the holder.
    ///
    /// A key whose lifetime is `operation` may run again after it ended, as its next operation: never the same
    /// operation after it completed, never while a rejection of it stands.
    #[test]
    fn one_body_at_a_time_and_never_after_completion(
        steps in prop::collection::vec(step(), 1..60),
        repeatable in any::<bool>(),
    ) {
        let lifetime = if repeatable { KeyLifetime::Operation } else { KeyLifetime::Once };
        let mut model = Model::default();
        let mut now = NOW;
        // Workers that were granted the claim and have not reported: token -> lease end.
        let mut holders: HashMap<u8, OffsetDateTime> = HashMap::new();
        // The last operation (generation) that completed, and the last rejected one with the end of its window.
        let mut completed: Option<u64> = None;
        let mut rejected: Option<(u64, OffsetDateTime)> = None;
        for step in steps {
            match step {
                Step::Guard { worker, decision } => {
                    let decision = [Decision::Allow, Decision::Deny, Decision::ApprovalRequired][usize::from(decision)];
                    let token = format!("w{worker}");
                    let request = request(Some(&token)).lifetime(lifetime);
                    let approval = model.approval_now(now);
                    let out = guard(&GuardFacts {
                        tenant: "acme",
                        request: &request,
                        fingerprint: "fp",
                        kill: &running(),
                        record: model.record.as_ref(),
                        approval: approval.as_ref(),
                        policy: &policy(decision),
                        now,
                        windows: WINDOWS,
                        // The authority's token, which the worker learns from the answer.
                        fresh_token: token.clone(),
                        fresh_approval_id: FreshId(&|| format!("apr_{}", model.approvals.len())),
                    });
                    model.apply(&out);
                    if out.answer.status.may_run() {
                        let generation = out.answer.generation;
                        prop_assert!(completed.is_none_or(|done| generation > done), "granted after completion");
                        if let Some((refused, until)) = rejected {
                            prop_assert!(generation > refused, "granted the rejected operation");
                            prop_assert!(now >= until, "granted while a rejection stands");
                        }
                        prop_assert!(repeatable || generation == 1, "a once key has one operation");
                        // Nobody else may be running with a live lease.
                        for (other, until) in &holders {
                            prop_assert!(*other == worker || *until <= now, "two live claims: {other} and {worker}");
                        }
                        let until = out.answer.claim.as_ref().map(|c| c.lease_until).unwrap_or(now);
                        holders.retain(|_, lease| *lease > now);
                        holders.insert(worker, until);
                    }
                }
                Step::Report { worker, success } => {
                    let Some(record) = model.record.clone() else { continue };
                    let mut report_of = OutcomeReport::new("k", if success { Outcome::Success } else { Outcome::Error });
                    report_of.claim_token = Some(format!("w{worker}"));
                    match report(&record, &report_of) {
                        Ok(ReportStep::Record { state }) => {
                            let holder = format!("w{worker}");
                            prop_assert_eq!(record.claim_token.as_deref(), Some(holder.as_str()));
                            model.next_seq += 1;
                            model.record = Some(KeyRecord { state, outcome_seq: Some(model.next_seq), lease_until: None, ..record });
                            holders.remove(&worker);
                            if success {
                                completed = Some(record.generation);
                            }
                        }
                        Ok(ReportStep::Duplicate { .. }) | Err(_) => {}
                    }
                }
                Step::Decide { approve } => {
                    let Some(approval) = model.approval_now(now) else { continue };
                    let alice = Actor::new("alice", Via::Api).unwrap();
                    let verdict = if approve { Verdict::Approve } else { Verdict::Reject };
                    if let Ok(DecideStep::Decided { approval, key_state }) = decide(&approval, verdict, &alice, None, now) {
                        model.approvals.insert(approval.id.clone(), *approval);
                        let snapshot = model.approvals.clone();
                        if let Some(record) = model.record.as_mut()
                            && record.state == KeyState::PendingApproval {
                                record.state = key_state;
                                if key_state == KeyState::Rejected {
                                    rejected = Some((record.generation, approval_window_end(&snapshot, record)));
                                }
                            }
                    }
                }
                Step::Wait { seconds } => now += Duration::from_secs(u64::from(seconds)),
            }
        }
    }
}

/// When the approval a record waited on would have expired.
fn approval_window_end(
    approvals: &HashMap<String, Approval>,
    record: &KeyRecord,
) -> OffsetDateTime {
    record
        .approval_id
        .as_ref()
        .and_then(|id| approvals.get(id))
        .map_or(OffsetDateTime::UNIX_EPOCH, |a| a.expires_at)
}
