//! A guard: the kill switch, then the key's record, then policy.
//!
//! ```text
//!             ALLOW                 success
//!   (none) ──────────────> claimed ─────────> completed
//!     │                     │  ^  error / abort
//!     │ APPROVAL_REQUIRED   │  └──────────── failed (a retry claims again: under an approval, while the
//!     v                     │                        approval has attempts left; else policy decides again)
//!   pending_approval ──approve──> approved ──guard──> claimed
//!     │        └──reject──> rejected
//!     └──window closes──> expired
//! ```
//!
//! Claim tokens are always the authority's (256 random bits); the token a caller sends with its guard is only a
//! retry token, recognised for the same API key.
//!
//! A key whose lifetime is `operation` (both the stored operation's and the guard's) is one operation until that
//! operation ends: completed, failed, expired, or rejected and past the window the approval had. The next guard
//! under it then starts the key's next generation, decided afresh as if the key were new. A `once` key never
//! does: completed is forever.

use time::OffsetDateTime;

use haltstate_types::{
    Approval, ApprovalStatus, Claim, Decision, GuardAnswer, GuardRequest, GuardStatus, KeyLifetime,
    KeyState, KillStatus,
};

use super::{Windows, approval as approvals, micros};
use crate::policy_decision::PolicyDecision;
use crate::state_rows::KeyRecord;

/// Everything a guard is decided from.
#[derive(Debug)]
pub(crate) struct GuardFacts<'a> {
    pub(crate) tenant: &'a str,
    pub(crate) request: &'a GuardRequest,
    pub(crate) fingerprint: &'a str,
    /// The effective kill switch for the request's agent.
    pub(crate) kill: &'a KillStatus,
    /// The key's record, if any.
    pub(crate) record: Option<&'a KeyRecord>,
    /// The approval the record names, as of `now` (an overdue pending one reads as expired).
    pub(crate) approval: Option<&'a Approval>,
    /// What policy says now.
    pub(crate) policy: &'a PolicyDecision,
    pub(crate) now: OffsetDateTime,
    pub(crate) windows: Windows,
    /// The token a new claim takes, and the id a new approval takes.
    pub(crate) fresh_token: String,
    pub(crate) fresh_approval_id: FreshId<'a>,
}

/// Makes the id of a new approval, only when the guard creates one: a fresh id asks the OS for randomness (a
/// system call per guard, most of which create none).
pub(crate) struct FreshId<'a>(pub(crate) &'a dyn Fn() -> String);

impl std::fmt::Debug for FreshId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreshId")
    }
}

/// What a guard answers and changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GuardOutcome {
    /// The answer (its `ledger_seq` is filled when the evidence is appended).
    pub(crate) answer: GuardAnswer,
    /// The policy decision behind the answer, when policy decided it.
    pub(crate) decision: Option<Decision>,
    /// The key's record to store.
    pub(crate) store: Option<KeyRecord>,
    /// A new approval to store.
    pub(crate) create_approval: Option<Approval>,
    /// The record's approval is overdue: store it as expired (and its key with it).
    pub(crate) expire_approval: Option<Approval>,
    /// The key is bound to another operation: record the refusal, then refuse.
    pub(crate) conflict: bool,
    /// For a key whose lifetime is `operation`: which operation under it the answer is about (evidence names
    /// it). `None` for a `once` key, and when the kill switch answered without reading the key.
    pub(crate) generation: Option<u64>,
}

fn answer(status: GuardStatus, reason: impl Into<String>) -> GuardAnswer {
    GuardAnswer {
        status,
        reason: reason.into(),
        policy_id: None,
        approval_id: None,
        approver: None,
        approved_at: None,
        expires_at: None,
        claim: None,
        completed_seq: None,
        generation: 1,
        decision_latency_us: 0,
        ledger_seq: 0,
        kill_switch: None,
    }
}

fn outcome(answer: GuardAnswer) -> GuardOutcome {
    GuardOutcome::answer_only(answer, None)
}

impl GuardOutcome {
    /// An answer that stores and decides nothing (a refusal, say), about `generation`.
    pub(crate) fn answer_only(answer: GuardAnswer, generation: Option<u64>) -> Self {
        Self {
            answer,
            decision: None,
            store: None,
            create_approval: None,
            expire_approval: None,
            conflict: false,
            generation,
        }
    }
}

impl GuardOutcome {
    /// This outcome as the answer about `record`'s operation (its generation, named in evidence when the key has
    /// generations).
    fn about(mut self, record: &KeyRecord) -> Self {
        self.generation = record.evidence_generation();
        self.answer.generation = record.generation;
        self
    }
}

/// Whether a guard under `record`'s key starts the key's next operation: both the stored operation and the
/// guard name a key of lifetime `operation`, and the stored operation has ended at `now`. `approval` is the
/// record's approval, as of `now`.
pub(crate) fn starts_next(
    record: &KeyRecord,
    request: &GuardRequest,
    approval: Option<&Approval>,
    now: OffsetDateTime,
) -> bool {
    if record.lifetime != KeyLifetime::Operation || request.lifetime != KeyLifetime::Operation {
        return false;
    }
    match record.state {
        KeyState::Completed | KeyState::Failed | KeyState::Expired => true,
        // A rejection stands for the same arguments as long as the approval would have waited: a caller
        // retrying on a schedule must not ask the approvers again and again. A missing approval stands.
        KeyState::Rejected => approval.is_some_and(|a| a.expires_at <= now),
        KeyState::PendingApproval => approval.is_some_and(|a| a.status == ApprovalStatus::Expired),
        KeyState::Claimed | KeyState::Approved => false,
    }
}

/// What recognises a retried guard: its caller's API key and the retry token it sent (none: not recognisable).
pub(crate) fn retry_digest(request: &GuardRequest) -> Option<String> {
    use sha2::{Digest, Sha256};
    let token = request.claim_token.as_deref()?;
    let mut hasher = Sha256::new();
    hasher.update(request.caller_key.as_deref().unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(token.as_bytes());
    Some(hex::encode(hasher.finalize()))
}

impl GuardFacts<'_> {
    fn new_claim(&self) -> Claim {
        Claim {
            token: self.fresh_token.clone(),
            lease_until: self.now + self.windows.lease,
        }
    }

    /// `record` handed to this guard's caller under `claim`, its `attempts`-th under the key's approval.
    fn claimed(&self, record: KeyRecord, claim: &Claim, attempts: u32) -> KeyRecord {
        KeyRecord {
            state: KeyState::Claimed,
            claim_token: Some(claim.token.clone()),
            lease_until: Some(claim.lease_until),
            claimed_by: self.request.caller_key.clone(),
            client_token: self.request.claim_token.is_some(),
            retry_digest: retry_digest(self.request),
            attempts,
            ..record
        }
    }

    /// Whether the key's approval has granted as many claims as it may.
    fn approval_used_up(&self, record: &KeyRecord) -> bool {
        record.approval_id.is_some() && record.attempts >= self.windows.approval_attempts.max(1)
    }

    /// A new record for this guard's operation, the `generation`-th under its key.
    fn fresh_record(
        &self,
        state: KeyState,
        approval_id: Option<String>,
        generation: u64,
    ) -> KeyRecord {
        let same_operation = self.record.filter(|r| r.generation == generation);
        KeyRecord {
            key: self.request.idempotency_key.clone(),
            fingerprint: self.fingerprint.to_owned(),
            agent_id: self.request.action.agent_id.clone(),
            action: self.request.action.action.clone(),
            state,
            lifetime: self.request.lifetime,
            generation,
            approval_id,
            policy_id: self.policy.policy_id.clone(),
            reason: self.policy.reason.clone(),
            claim_token: None,
            retry_digest: None,
            attempts: 0,
            lease_until: None,
            outcome_seq: None,
            claimed_by: None,
            client_token: false,
            // The operation's usage charge stays with it: a retry after an error is one operation, counted
            // once. The key's next operation is charged afresh.
            charged: same_operation.and_then(|r| r.charged.clone()),
        }
    }
}

/// Decides a guard.
pub(crate) fn guard(facts: &GuardFacts<'_>) -> GuardOutcome {
    if let Some(reason) = facts.kill.denial_reason() {
        let mut denied = answer(GuardStatus::Denied, reason);
        denied.kill_switch = Some(facts.kill.state);
        return outcome(denied);
    }
    if let Some(record) = facts.record {
        if starts_next(record, facts.request, facts.approval, facts.now) {
            return next_operation(facts, record);
        }
        if record.fingerprint != facts.fingerprint {
            let mut refused = outcome(answer(
                GuardStatus::Denied,
                "idempotency key is bound to a different operation",
            ));
            refused.conflict = true;
            return refused.about(record);
        }
        if let Some(replayed) = replay(facts, record) {
            return replayed.about(record);
        }
        // Policy decides again for the same operation (a released claim, or an approval's attempts used up).
        return decide_afresh(facts, record.generation);
    }
    decide_afresh(facts, 1)
}

/// The key's operation has ended: the guard is the next operation under the key, decided as if the key were new.
/// A pending approval that ran out of time is settled as expired on the way.
fn next_operation(facts: &GuardFacts<'_>, record: &KeyRecord) -> GuardOutcome {
    let mut next = decide_afresh(facts, record.generation.saturating_add(1));
    if record.state == KeyState::PendingApproval {
        next.expire_approval = facts.approval.cloned();
    }
    next
}

/// No record, a released claim without an approval, or the key's next operation: policy decides the
/// `generation`-th operation under the key.
fn decide_afresh(facts: &GuardFacts<'_>, generation: u64) -> GuardOutcome {
    let policy = facts.policy;
    let mut fresh = answer(GuardStatus::Denied, policy.reason.clone());
    fresh.policy_id = policy.policy_id.clone();
    fresh.decision_latency_us = micros(policy.latency);
    fresh.generation = generation;
    let mut result = outcome(fresh);
    result.decision = Some(policy.decision);
    result.generation = (facts.request.lifetime == KeyLifetime::Operation).then_some(generation);
    match policy.decision {
        Decision::Deny => {}
        Decision::Allow => {
            let claim = facts.new_claim();
            let record = facts.fresh_record(KeyState::Claimed, None, generation);
            result.store = Some(facts.claimed(record, &claim, 0));
            result.answer.status = GuardStatus::Allowed;
            result.answer.claim = Some(claim);
        }
        Decision::ApprovalRequired => {
            let approval = approvals::pending(
                (facts.fresh_approval_id.0)(),
                facts.tenant,
                Some(facts.request.idempotency_key.clone()),
                &facts.request.action,
                policy,
                facts.now,
                facts.windows,
            );
            result.store = Some(facts.fresh_record(
                KeyState::PendingApproval,
                Some(approval.id.clone()),
                generation,
            ));
            result.answer.status = GuardStatus::Pending;
            result.answer.approval_id = Some(approval.id.clone());
            result.answer.expires_at = Some(approval.expires_at);
            result.create_approval = Some(approval);
        }
    }
    result
}

/// The answer a key's existing record gives; `None` when policy must decide again.
fn replay(facts: &GuardFacts<'_>, record: &KeyRecord) -> Option<GuardOutcome> {
    let approval = facts.approval;
    let mut replayed = answer(GuardStatus::Denied, record.reason.clone());
    replayed.policy_id = record.policy_id.clone();
    replayed.approval_id = record.approval_id.clone();
    if let Some(approval) = approval {
        replayed.approver = approval.approver.clone();
        replayed.approved_at = approval
            .decided_at
            .filter(|_| approval.status == ApprovalStatus::Approved);
    }
    let granted = if record.approval_id.is_some() {
        GuardStatus::Approved
    } else {
        GuardStatus::Allowed
    };
    let mut result = outcome(replayed);
    let answer = &mut result.answer;
    match record.state {
        KeyState::Completed => {
            answer.status = GuardStatus::Completed;
            answer.reason = "this idempotency key already completed".into();
            answer.completed_seq = record.outcome_seq;
        }
        KeyState::Claimed
            if record.live_claim(facts.now)
                && record.retry_digest.is_some()
                && retry_digest(facts.request) == record.retry_digest =>
        {
            // The same caller retrying (its first answer was lost): it already holds this claim.
            answer.status = granted;
            answer.reason = "this caller already holds the claim".into();
            answer.claim = record
                .claim_token
                .clone()
                .zip(record.lease_until)
                .map(|(token, lease_until)| Claim { token, lease_until });
        }
        KeyState::Claimed if record.live_claim(facts.now) => {
            answer.status = GuardStatus::InProgress;
            answer.reason = "another worker holds the claim on this idempotency key".into();
        }
        KeyState::Claimed | KeyState::Approved | KeyState::Failed
            if facts.policy.decision == Decision::Deny
                && (record.state != KeyState::Failed || record.approval_id.is_some()) =>
        {
            // A new claim is granted only if policy still lets the action run: a forbid added since the approval
            // (or since the lapsed claim) denies it. The key keeps its state: if the forbid goes, it can run.
            answer.reason = match &answer.approver {
                Some(approver) => format!(
                    "approved by {approver}, but policy now denies it: {}",
                    facts.policy.reason
                ),
                None => format!("policy now denies it: {}", facts.policy.reason),
            };
            answer.policy_id = facts.policy.policy_id.clone();
            answer.decision_latency_us = micros(facts.policy.latency);
            result.decision = Some(Decision::Deny);
        }
        // The approval's attempts are used up (the agent kept reporting errors, or kept losing its lease): it
        // authorised that many runs, not more. Policy decides again, which asks a human again.
        KeyState::Claimed | KeyState::Failed if facts.approval_used_up(record) => return None,
        KeyState::Claimed | KeyState::Approved => {
            let claim = facts.new_claim();
            answer.status = granted;
            if record.state == KeyState::Claimed {
                answer.reason = "the previous claim's lease expired; re-claimed".into();
            } else if let Some(approval) = approval {
                answer.reason = approval
                    .decision_reason
                    .clone()
                    .unwrap_or_else(|| "approved".into());
            }
            answer.claim = Some(claim.clone());
            let attempts = match record.state {
                KeyState::Approved => 1,
                _ if record.approval_id.is_some() => record.attempts + 1,
                _ => record.attempts,
            };
            result.store = Some(facts.claimed(record.clone(), &claim, attempts));
        }
        KeyState::Failed if record.approval_id.is_some() => {
            // The human approved this exact operation for a few attempts; a retry within them needs no new
            // approval.
            let claim = facts.new_claim();
            answer.status = GuardStatus::Approved;
            answer.reason = format!(
                "retry of an approved action after an error (attempt {} of {})",
                record.attempts + 1,
                facts.windows.approval_attempts.max(1)
            );
            answer.claim = Some(claim.clone());
            result.store = Some(facts.claimed(record.clone(), &claim, record.attempts + 1));
        }
        KeyState::Failed => return None,
        KeyState::PendingApproval => match approval {
            Some(approval) if approval.status == ApprovalStatus::Expired => {
                answer.status = GuardStatus::Expired;
                answer.reason = "the approval window closed; use a new idempotency key".into();
                result.expire_approval = Some(approval.clone());
                result.store = Some(KeyRecord {
                    state: KeyState::Expired,
                    ..record.clone()
                });
            }
            Some(approval) => {
                answer.status = GuardStatus::Pending;
                answer.expires_at = Some(approval.expires_at);
            }
            None => answer.reason = "the approval for this key is missing".into(),
        },
        KeyState::Rejected => {
            let approver = answer
                .approver
                .clone()
                .unwrap_or_else(|| "an operator".into());
            answer.reason = approval
                .and_then(|a| a.decision_reason.clone())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| format!("rejected by {approver}"));
            if let (KeyLifetime::Operation, Some(approval)) = (record.lifetime, approval) {
                answer.reason = format!(
                    "{} (the rejection stands for the same arguments until {})",
                    answer.reason,
                    haltstate_types::timestamp::format_rfc3339(approval.expires_at)
                );
            }
        }
        KeyState::Expired => {
            answer.status = GuardStatus::Expired;
            answer.reason = "the approval window closed; use a new idempotency key".into();
        }
    }
    Some(result)
}
