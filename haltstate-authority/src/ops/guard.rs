//! A guard, applied: load the kill switch and the key's record, decide by the rule, store and record.

use std::borrow::Cow;

use haltstate_types::{
    Decision, EvidenceKind, EvidenceRecord, GuardAnswer, GuardRequest, ProofStatus,
};

use super::{approvals, new_id, redaction_status};
use crate::error::{AuthorityError, Result};
use crate::ops::judgement::Judgement;
use crate::policy_decision::PolicyDecision;
use crate::rules::Windows;
use crate::rules::guard::{FreshId, GuardFacts, GuardOutcome, guard as decide, starts_next};
use crate::store::tx::Tx;

/// Guards `request` under policy (decided before the transaction on the caller's thread, or here when it reads
/// usage).
pub(crate) fn guard(
    tx: &mut dyn Tx,
    windows: Windows,
    tenant: &str,
    request: &GuardRequest,
    fingerprint: &str,
    judgement: &Judgement,
) -> Result<GuardAnswer> {
    let kill = tx.kill_status(tenant, &request.action.agent_id)?;
    // A stopped agent's guard reads nothing else.
    let record = match kill.denial_reason() {
        Some(_) => None,
        None => tx.key(tenant, &request.action.agent_id, &request.idempotency_key)?,
    };
    let approval = match record.as_ref().and_then(|r| r.approval_id.as_deref()) {
        Some(id) => tx.approval(tenant, id)?,
        None => None,
    };
    // The key's next operation is a new one: the last one's charge is not its own.
    let now = tx.now();
    let same_operation = record
        .as_ref()
        .filter(|r| !starts_next(r, request, approval.as_ref(), now));
    let (policy, usage) = match (kill.denial_reason(), judgement) {
        // Stopped: the rule answers from the kill switch; no usage is read for it.
        (Some(why), Judgement::WithUsage(_)) => (Cow::Owned(PolicyDecision::deny(why)), None),
        (_, judgement) => super::usage::decide(
            tx,
            tenant,
            &request.action,
            judgement,
            same_operation.and_then(|r| r.charged.as_ref()),
        )?,
    };
    let mut outcome = decide(&GuardFacts {
        tenant,
        request,
        fingerprint,
        kill: &kill,
        record: record.as_ref(),
        approval: approval.as_ref(),
        policy: &policy,
        now,
        windows,
        fresh_token: claim_token(),
        fresh_approval_id: FreshId(&|| new_id("apr")),
    });
    if let Some(overdue) = &outcome.expire_approval {
        approvals::expire(tx, overdue)?;
    }
    if let Some(approval) = &outcome.create_approval
        && let Some(why) = approvals::flooded(tx, windows, tenant, &approval.agent_id)?
    {
        outcome = refused(&outcome, why);
    }
    if let Some(approval) = &outcome.create_approval {
        tx.insert_approval(approval, None)?;
        super::webhooks::announce_approval(tx, approval)?;
    }
    if outcome.answer.claim.is_some()
        && let Some(existing) = same_operation
    {
        // Never trust a row that contradicts the ledger: a completed operation whose row was set back (to
        // failed, say) would run its side effect again. (The key's next operation has no outcome to contradict.)
        if let Some(seq) = tx.completed_in_ledger(
            tenant,
            &existing.agent_id,
            &existing.key,
            existing.generation,
        )? {
            tracing::error!(%tenant, key = %existing.key, seq, state = existing.state.as_str(),
                    "a key's row contradicts the ledger; refusing the guard");
            outcome = refused(
                &outcome,
                format!(
                    "refused: ledger record {seq} completed this key but its state row says {}; the state \
                         was changed outside the authority (see `haltstate ledger verify`)",
                    existing.state.as_str()
                ),
            );
        }
    }
    let decided = Decided {
        decision: outcome.decision,
        policy_version: policy.policy_version.as_deref(),
        usage: usage.as_ref(),
        shadow: policy.shadow.as_ref(),
    };
    // The record first: a new key's row is filed under the key's first record (`Tx::put_key`).
    let answer = record_guard(tx, tenant, request, &decided, &outcome)?;
    if let Some(record) = &mut outcome.store {
        if usage.is_some() && outcome.answer.claim.is_some() {
            super::usage::charge_claim(tx, tenant, &request.action, record)?;
        }
        tx.put_key(tenant, record)?;
    }
    if outcome.conflict {
        return Err(AuthorityError::IdempotencyConflict {
            key: request.idempotency_key.clone(),
        });
    }
    Ok(answer)
}

/// A new claim's token: 256 bits from the OS's randomness, hex. Only the holder ever learns it.
fn claim_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The answer when the guard must not go ahead for a reason outside the rule (the key's row contradicts the
/// ledger; the agent has too many approvals waiting): refused, nothing stored.
fn refused(outcome: &GuardOutcome, reason: String) -> GuardOutcome {
    let mut answer = outcome.answer.clone();
    answer.status = haltstate_types::GuardStatus::Denied;
    answer.claim = None;
    answer.approval_id = None;
    answer.expires_at = None;
    answer.reason = reason;
    GuardOutcome::answer_only(answer, outcome.generation)
}

/// What policy decided, from what.
struct Decided<'a> {
    decision: Option<Decision>,
    policy_version: Option<&'a str>,
    usage: Option<&'a crate::policy::Usage>,
    shadow: Option<&'a crate::policy_decision::ShadowDecision>,
}

/// Records the guard's answer in the ledger and returns it with its ledger sequence number.
fn record_guard(
    tx: &mut dyn Tx,
    tenant: &str,
    request: &GuardRequest,
    decided: &Decided<'_>,
    outcome: &GuardOutcome,
) -> Result<GuardAnswer> {
    let mut answer = outcome.answer.clone();
    let action = &request.action;
    let mut record = EvidenceRecord::new(EvidenceKind::Guard, tenant, tx.now());
    record.agent_id = Some(action.agent_id.clone());
    record.action = Some(action.action.clone());
    record.idempotency_key = Some(request.idempotency_key.clone());
    record.generation = outcome.generation;
    record.decision = decided.decision;
    if decided.decision.is_some() {
        // Policy decided: keep what it decided from, so a replay can decide it again.
        record.context = super::usage::context(action, decided.usage);
        record.policy_version = decided.policy_version.map(str::to_owned);
        if let Some(shadow) = decided.shadow {
            record.shadow_decision = Some(shadow.decision);
            record.shadow_policy_id = shadow.policy_id.clone();
        }
    }
    record.status = Some(answer.status.as_str().to_owned());
    record.reason = Some(answer.reason.clone());
    record.policy_id = answer.policy_id.clone();
    record.approval_id = answer.approval_id.clone();
    record.actor = answer
        .approver
        .clone()
        .filter(|_| answer.approval_id.is_some());
    record.resource_refs = action.resource.iter().cloned().collect();
    record.decision_latency_us = Some(answer.decision_latency_us);
    record.proof_status = Some(ProofStatus::Verified);
    record.redaction_status = Some(redaction_status(&action.redacted_fields));
    record.redacted_fields = action.redacted_fields.clone();
    answer.ledger_seq = tx.append(record)?;
    Ok(answer)
}
