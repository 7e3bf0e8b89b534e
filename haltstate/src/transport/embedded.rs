//! An authority in this process: no network, the same answers.

#![cfg(feature = "embedded")]

use std::time::Duration;

use haltstate_authority as authority;
use time::OffsetDateTime;

use super::{CheckReportOut, GuardReply, GuardStatus, OutcomeOut, Outgoing};
use crate::answers::{
    ApprovalDecision, ApprovalStatus, CheckResult, Decision, Outcome, ProofStatus,
};
use crate::error::GuardError;
use crate::kill_switch::KillState;

#[derive(Debug)]
pub(crate) struct EmbeddedTransport {
    pub(crate) authority: authority::Authority,
    pub(crate) tenant: String,
}

fn map_error(error: authority::AuthorityError, key: Option<&str>) -> GuardError {
    use authority::AuthorityError as E;
    match error {
        E::IdempotencyConflict { key: k } => GuardError::IdempotencyConflict {
            idempotency_key: key.map_or(k, str::to_owned),
        },
        E::Unauthenticated | E::Forbidden(_) => GuardError::Auth(error.to_string()),
        e if e.is_operational() => GuardError::Connection(e.to_string()),
        e => GuardError::Rejected {
            status: 400,
            code: e.code().as_str().to_owned(),
            detail: e.to_string(),
        },
    }
}

fn action_request(out: &Outgoing) -> authority::ActionRequest {
    let mut request =
        authority::ActionRequest::new(&out.agent_id, &out.action).params(out.params.clone());
    request.resource = out.resource.clone();
    request.risk = out.risk.clone();
    request.metadata = out.metadata.clone();
    request.redacted_fields = out.redacted_fields.clone();
    request
}

fn kill_state(state: authority::KillState) -> KillState {
    match state {
        authority::KillState::Run => KillState::Run,
        authority::KillState::Pause => KillState::Pause,
        authority::KillState::Kill => KillState::Kill,
    }
}

fn decision_of(approval: &authority::Approval) -> ApprovalDecision {
    ApprovalDecision {
        request_id: approval.id.clone(),
        status: ApprovalStatus::parse(approval.status.as_str()),
        approver: approval.approver.clone(),
        reason: approval.decision_reason.clone(),
        agent_id: Some(approval.agent_id.clone()),
        action: Some(approval.action.clone()),
        decided_at: approval.decided_at,
        is_catchup: false,
    }
}

impl EmbeddedTransport {
    pub(crate) async fn guard(&self, out: &Outgoing) -> Result<GuardReply, GuardError> {
        let key = out.idempotency_key.clone().unwrap_or_default();
        let mut request = authority::GuardRequest::new(action_request(out), key.clone());
        request.claim_token = out.claim_token.clone();
        let answer = self
            .authority
            .guard(&self.tenant, request)
            .await
            .map_err(|e| map_error(e, Some(&key)))?;
        let status = match answer.status {
            authority::GuardStatus::Allowed => GuardStatus::Allowed,
            authority::GuardStatus::Approved => GuardStatus::Approved,
            authority::GuardStatus::Denied => GuardStatus::Denied,
            authority::GuardStatus::Pending => GuardStatus::Pending,
            authority::GuardStatus::Expired => GuardStatus::Expired,
            authority::GuardStatus::Completed => GuardStatus::Completed,
            authority::GuardStatus::InProgress => GuardStatus::InProgress,
        };
        Ok(GuardReply {
            status,
            reason: answer.reason,
            policy_id: answer.policy_id,
            approval_id: answer.approval_id,
            approver: answer.approver,
            approved_at: answer.approved_at,
            claim_token: answer.claim.map(|c| c.token),
            kill_switch: answer.kill_switch.map(kill_state),
        })
    }

    pub(crate) async fn report(&self, out: &OutcomeOut) -> Result<(), GuardError> {
        let outcome = match out.outcome {
            Outcome::Success => authority::Outcome::Success,
            Outcome::Error => authority::Outcome::Error,
            Outcome::Aborted => authority::Outcome::Aborted,
            Outcome::Panicked => authority::Outcome::Panicked,
            Outcome::Cancelled => authority::Outcome::Cancelled,
        };
        let mut report = authority::OutcomeReport::new(&out.idempotency_key, outcome)
            .body_latency(out.body_latency);
        report.claim_token = out.claim_token.clone();
        report.error = out.error.clone();
        report.resource_refs = out.resource_refs.clone();
        report.redacted_fields = out.redacted_fields.clone();
        report.usage = out.usage.as_ref().map(|u| authority::LlmUsage {
            model: u.model.clone(),
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        });
        report.proof_status = match out.proof_status {
            ProofStatus::Verified => authority::ProofStatus::Verified,
            ProofStatus::Unverified => authority::ProofStatus::Unverified,
        };
        self.authority
            .report(&self.tenant, report)
            .await
            .map(drop)
            .map_err(|e| map_error(e, Some(&out.idempotency_key)))
    }

    pub(crate) async fn check(&self, out: &Outgoing) -> Result<CheckResult, GuardError> {
        let mut request = authority::CheckRequest::new(action_request(out));
        request.request_id = out.request_id.clone();
        let answer = self
            .authority
            .check(&self.tenant, request)
            .await
            .map_err(|e| map_error(e, None))?;
        Ok(CheckResult {
            decision: match answer.decision {
                authority::Decision::Allow => Decision::Allow,
                authority::Decision::Deny => Decision::Deny,
                authority::Decision::ApprovalRequired => Decision::ApprovalRequired,
            },
            reason: answer.reason,
            policy_id: answer.policy_id,
            approval_id: answer.approval_id,
            request_id: answer.request_id,
            action: out.action.clone(),
            agent_id: out.agent_id.clone(),
            latency: Duration::from_micros(answer.decision_latency_us),
        })
    }

    pub(crate) async fn report_check(&self, out: &CheckReportOut) -> Result<(), GuardError> {
        let decision = match out.decision.as_str() {
            "ALLOW" => Some(authority::Decision::Allow),
            "DENY" => Some(authority::Decision::Deny),
            "APPROVAL_REQUIRED" => Some(authority::Decision::ApprovalRequired),
            _ => None,
        };
        let report = authority::CheckReport {
            request_id: Some(out.request_id.clone()),
            agent_id: out.agent_id.clone(),
            action: out.action.clone(),
            status: out.status.clone(),
            decision,
            policy_id: out.policy_id.clone(),
            error: out.error.clone(),
        };
        self.authority
            .report_check(&self.tenant, report)
            .await
            .map(drop)
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &crate::spool::SpooledEvidence,
    ) -> Result<(), GuardError> {
        let outcome = match evidence.outcome.as_str() {
            "success" => authority::Outcome::Success,
            "aborted" => authority::Outcome::Aborted,
            "panicked" => authority::Outcome::Panicked,
            "cancelled" => authority::Outcome::Cancelled,
            _ => authority::Outcome::Error,
        };
        let record = authority::UnverifiedOutcome {
            evidence_id: evidence.evidence_id.clone(),
            agent_id: evidence.agent_id.clone(),
            action: evidence.action.clone(),
            idempotency_key: evidence.idempotency_key.clone(),
            outcome,
            reason: evidence.reason.clone(),
            error: evidence.error.clone(),
            body_latency: evidence.body_latency.map(Duration::from_micros),
            resource_refs: evidence.resource_refs.clone(),
            redacted_fields: evidence.redacted_fields.clone(),
            occurred_at: evidence.occurred_at,
        };
        self.authority
            .record_unverified(&self.tenant, record)
            .await
            .map(drop)
            .map_err(|e| map_error(e, None))
    }

    pub(crate) fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        match self.authority.approval(&self.tenant, id) {
            Ok(approval) => Ok(decision_of(&approval)),
            Err(authority::AuthorityError::ApprovalNotFound { .. }) => Err(GuardError::Rejected {
                status: 404,
                code: "approval_not_found".into(),
                detail: format!("approval {id:?} not found"),
            }),
            Err(e) => Err(map_error(e, None)),
        }
    }

    pub(crate) fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let approvals = self
            .authority
            .approvals_since(&self.tenant, since, limit)
            .map_err(|e| map_error(e, None))?;
        Ok(approvals
            .iter()
            .map(|a| ApprovalDecision {
                is_catchup: true,
                ..decision_of(a)
            })
            .collect())
    }

    pub(crate) fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        let status = self
            .authority
            .kill_switch(&self.tenant, Some(agent_id))
            .map_err(|e| map_error(e, None))?;
        Ok(kill_state(status.state))
    }
}
