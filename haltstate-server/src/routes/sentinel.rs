//! The HaltState wire contract, E1-E8, served under both the canonical and the legacy prefix.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use haltstate_authority::{
    ActionRequest, CheckReport, CheckRequest, Decision, GuardRequest, GuardStatus, KillState,
    Outcome, OutcomeReport, ProofStatus, timestamp::format_rfc3339,
};
use serde_json::{Value, json};

use crate::auth::Agent;
use crate::body::WireJson;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{self, CheckBody, CheckReportBody, GuardBody, GuardReportBody};

/// The canonical prefix.
pub const CANONICAL: &str = "/api/haltstate/sentinel";
/// The legacy prefix every official SDK call is written against.
pub const LEGACY: &str = "/api/sentinel";

/// The action a body asks for, acting as the agent the key allows (the body's `agent_id`, or the key's own).
#[allow(clippy::too_many_arguments)]
fn action_request(
    agent_id: String,
    action: String,
    params: serde_json::Map<String, Value>,
    resource: Option<String>,
    risk: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
    redacted_fields: Vec<String>,
) -> ActionRequest {
    let mut request = ActionRequest::new(agent_id, action).params(params);
    request.resource = resource;
    request.risk = risk.filter(|r| !r.is_empty());
    request.metadata = metadata;
    request.redacted_fields = redacted_fields;
    request
}

/// E1: `POST action/check`.
pub async fn check(
    State(state): State<AppState>,
    Agent(who): Agent,
    WireJson(body): WireJson<CheckBody>,
) -> Result<Json<Value>, ApiError> {
    let params = wire::merge_params(body.params, body.context);
    let action = action_request(
        who.act_as(body.agent_id.as_deref())?,
        body.action,
        params,
        body.resource,
        body.risk,
        body.metadata,
        body.redacted_fields,
    );
    let mut request = CheckRequest::new(action);
    request.request_id = body.request_id;
    let answer = state.authority.check(&who.tenant, request).await?;
    Ok(Json(json!({
        "decision": answer.decision.as_str(),
        "reason": answer.reason,
        "policy_id": answer.policy_id,
        "latency_ms": answer.decision_latency_us / 1000,
        "approval_id": answer.approval_id,
        "request_id": answer.request_id,
    })))
}

/// E2: `POST action/guard`.
pub async fn guard(
    State(state): State<AppState>,
    Agent(who): Agent,
    WireJson(body): WireJson<GuardBody>,
) -> Result<Json<Value>, ApiError> {
    let params = wire::merge_params(body.params, body.context);
    let key = body.idempotency_key;
    let action = action_request(
        who.act_as(body.agent_id.as_deref())?,
        body.action,
        params,
        body.resource,
        body.risk,
        body.metadata,
        body.redacted_fields,
    );
    let mut request = GuardRequest::new(action, key.clone()).caller_key(&who.key_id);
    request.claim_token = body.claim_token;
    let answer = state.authority.guard(&who.tenant, request).await?;
    // The official SDKs fill absent approval fields from the client clock and the key (B20): always send them.
    let approved_at = match answer.status {
        GuardStatus::Approved => answer.approved_at,
        GuardStatus::Allowed => Some(state.authority.now()),
        _ => None,
    };
    Ok(Json(json!({
        "status": answer.status.as_str(),
        "reason": answer.reason,
        "policy_id": answer.policy_id,
        "approval_id": answer.approval_id,
        "approver": answer.approver,
        "approved_at": approved_at.map(format_rfc3339),
        "expires_at": answer.expires_at.map(format_rfc3339),
        "idempotency_key": key,
        "claim_token": answer.claim.as_ref().map(|c| c.token.clone()),
        "lease_expires_at": answer.claim.as_ref().map(|c| format_rfc3339(c.lease_until)),
        "completed_seq": answer.completed_seq,
        "ledger_seq": answer.ledger_seq,
        "kill_switch": answer.kill_switch.map(|k| k.as_str()),
        "latency_ms": answer.decision_latency_us / 1000,
    })))
}

/// E3: `POST action/guard/report`.
pub async fn guard_report(
    State(state): State<AppState>,
    Agent(who): Agent,
    WireJson(body): WireJson<GuardReportBody>,
) -> Result<Json<Value>, ApiError> {
    let outcome = Outcome::parse(&body.outcome)
        .ok_or_else(|| ApiError::bad_request(format!("unknown outcome {:?}", body.outcome)))?;
    let mut report = OutcomeReport::new(body.idempotency_key, outcome).caller_key(&who.key_id);
    report.claim_token = body.claim_token;
    report.error = body.error;
    report.body_latency = body.body_latency_us.map(std::time::Duration::from_micros);
    report.resource_refs = body.resource_refs;
    report.redacted_fields = body.redacted_fields;
    report.usage = body.usage;
    report.proof_status = match body.proof_status.as_deref() {
        None | Some("verified") => ProofStatus::Verified,
        Some("unverified") => ProofStatus::Unverified,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown proof_status {other:?}"
            )));
        }
    };
    let ack = state.authority.report(&who.tenant, report).await?;
    Ok(Json(
        json!({ "ok": true, "ledger_seq": ack.ledger_seq, "state": ack.state.as_str(), "duplicate": ack.duplicate }),
    ))
}

/// Our extension: `POST action/guard/unverified`, evidence a client ran fail-open and delivers later. Recorded
/// once per `evidence_id`; a repeat delivery answers `duplicate: true`.
pub async fn guard_unverified(
    State(state): State<AppState>,
    Agent(who): Agent,
    WireJson(mut body): WireJson<haltstate_authority::UnverifiedOutcome>,
) -> Result<Json<Value>, ApiError> {
    body.agent_id = who.act_as(Some(&body.agent_id))?;
    let (seq, duplicate) = state.authority.record_unverified(&who.tenant, body).await?;
    Ok(Json(
        json!({ "ok": true, "ledger_seq": seq, "duplicate": duplicate }),
    ))
}

/// E4: `POST action/report`.
pub async fn report(
    State(state): State<AppState>,
    Agent(who): Agent,
    WireJson(body): WireJson<CheckReportBody>,
) -> Result<Json<Value>, ApiError> {
    let agent_id = who.act_as(body.agent_id.as_deref())?;
    let decision = match body.decision.as_deref() {
        None => None,
        Some("ALLOW") => Some(Decision::Allow),
        Some("DENY") => Some(Decision::Deny),
        Some("APPROVAL_REQUIRED") => Some(Decision::ApprovalRequired),
        Some(other) => return Err(ApiError::bad_request(format!("unknown decision {other:?}"))),
    };
    // Only the error text is kept from `result`: the rest may be a raw payload.
    let error = body
        .result
        .as_ref()
        .and_then(|r| r.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let report = CheckReport {
        request_id: body.request_id,
        agent_id,
        action: body.action,
        status: body.status,
        decision,
        policy_id: body.policy_id,
        error,
    };
    let seq = state.authority.report_check(&who.tenant, report).await?;
    Ok(Json(json!({ "ok": true, "ledger_seq": seq })))
}

/// E5: `GET approval/{id}`.
pub async fn approval(
    State(state): State<AppState>,
    Agent(who): Agent,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let approval = state.authority.approval(&who.tenant, &id)?;
    // Another agent's approval does not exist for this key.
    if !who.agents.contains(&approval.agent_id) {
        return Err(haltstate_authority::AuthorityError::ApprovalNotFound { id }.into());
    }
    Ok(Json(wire::approval_status(&approval)))
}

/// E6: `GET approvals/since?since=&limit=`.
pub async fn approvals_since(
    State(state): State<AppState>,
    Agent(who): Agent,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let since = match query.get("since").filter(|s| !s.is_empty()) {
        Some(text) => wire::parse_timestamp("since", text)?,
        None => state.authority.now() - time::Duration::hours(24),
    };
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::bad_request("limit must be an integer from 1 to 500"))?,
    };
    let decisions = state.authority.approvals_since(&who.tenant, since, limit)?;
    Ok(Json(json!({
        "decisions": decisions
            .iter()
            .filter(|a| who.agents.contains(&a.agent_id))
            .map(wire::decision_item)
            .collect::<Vec<_>>()
    })))
}

/// E8: `GET heartbeat?agent_id=`: `OK`, `PAUSE` or `KILL`.
pub async fn heartbeat(
    State(state): State<AppState>,
    Agent(who): Agent,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let agent = who.act_as(query.get("agent_id").map(String::as_str))?;
    let status = state.authority.kill_switch(&who.tenant, Some(&agent))?;
    let text = match status.state {
        KillState::Run => "OK",
        KillState::Pause => "PAUSE",
        KillState::Kill => "KILL",
    };
    Ok(Json(
        json!({ "status": text, "reason": status.denial_reason() }),
    ))
}
