//! The HaltState wire contract, E1-E8, served under both the canonical and the legacy prefix. Agent keys only;
//! every request acts as the agent its key allows.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use haltstate_authority::AuthorityError;
use haltstate_types::wire::{
    ApprovalReply, CheckBody, CheckReply, CheckReportBody, GuardBody, GuardReply, GuardReportBody,
    GuardReportReply, HeartbeatReply, RecordedReply, SinceReply,
};
use haltstate_types::{OutcomeReport, UnverifiedOutcome};

use crate::auth::Agent;
use crate::body::WireJson;
use crate::error::ApiError;
use crate::metrics;
use crate::query;
use crate::state::Shared;

/// E1: `POST action/check`.
pub async fn check(
    State(state): State<Shared>,
    Agent(who): Agent,
    WireJson(body): WireJson<CheckBody>,
) -> Result<Json<CheckReply>, ApiError> {
    let agent = who.act_as(body.action.agent_id.as_deref())?;
    let action = metrics::action_label(&state.authority, &body.action.action);
    let answer = state
        .authority
        .check(&who.tenant, body.into_request(agent))
        .await?;
    metrics::decision(&who.tenant, action, answer.decision.as_str());
    Ok(Json(CheckReply::from(&answer)))
}

/// E2: `POST action/guard`.
pub async fn guard(
    State(state): State<Shared>,
    Agent(who): Agent,
    WireJson(body): WireJson<GuardBody>,
) -> Result<Json<GuardReply>, ApiError> {
    let started = std::time::Instant::now();
    let agent = who.act_as(body.action.agent_id.as_deref())?;
    let key = body.idempotency_key.clone();
    let action = metrics::action_label(&state.authority, &body.action.action);
    let request = body.into_request(agent).caller_key(&who.key_id);
    let answer = state.authority.guard(&who.tenant, request).await?;
    metrics::guard_duration(started.elapsed());
    metrics::decision(&who.tenant, action, answer.status.as_str());
    Ok(Json(GuardReply::from_answer(
        &answer,
        &key,
        state.authority.now(),
    )))
}

/// E3: `POST action/guard/report`.
pub async fn guard_report(
    State(state): State<Shared>,
    Agent(who): Agent,
    WireJson(body): WireJson<GuardReportBody>,
) -> Result<Json<GuardReportReply>, ApiError> {
    let mut report = OutcomeReport::from(body).caller_key(&who.key_id);
    // Keys are scoped per agent: a named agent must be one this key acts as (the SDKs' `default` is its own).
    if let Some(agent) = report.agent_id.take() {
        report.agent_id = Some(who.act_as(Some(&agent))?);
    }
    let ack = state.authority.report(&who.tenant, report).await?;
    Ok(Json(GuardReportReply {
        ok: true,
        ledger_seq: ack.ledger_seq,
        state: ack.state,
        duplicate: ack.duplicate,
    }))
}

/// Our extension: `POST action/guard/unverified`, evidence a client ran fail-open and delivers later. Recorded
/// once per `evidence_id`; a repeat delivery answers `duplicate: true`.
pub async fn guard_unverified(
    State(state): State<Shared>,
    Agent(who): Agent,
    WireJson(mut body): WireJson<UnverifiedOutcome>,
) -> Result<Json<RecordedReply>, ApiError> {
    body.agent_id = who.act_as(Some(&body.agent_id))?;
    let (ledger_seq, duplicate) = state.authority.record_unverified(&who.tenant, body).await?;
    Ok(Json(RecordedReply {
        ok: true,
        ledger_seq,
        duplicate,
    }))
}

/// E4: `POST action/report`.
pub async fn report(
    State(state): State<Shared>,
    Agent(who): Agent,
    WireJson(body): WireJson<CheckReportBody>,
) -> Result<Json<RecordedReply>, ApiError> {
    let agent = who.act_as(body.agent_id.as_deref())?;
    let ledger_seq = state
        .authority
        .report_check(&who.tenant, body.into_report(agent))
        .await?;
    Ok(Json(RecordedReply {
        ok: true,
        ledger_seq,
        duplicate: false,
    }))
}

/// E5: `GET approval/{id}`.
pub async fn approval(
    State(state): State<Shared>,
    Agent(who): Agent,
    Path(id): Path<String>,
) -> Result<Json<ApprovalReply>, ApiError> {
    let approval = state.authority.approval(&who.tenant, &id)?;
    // Another agent's approval does not exist for this key.
    if !who.agents.contains(&approval.agent_id) {
        return Err(AuthorityError::ApprovalNotFound { id }.into());
    }
    Ok(Json(ApprovalReply::from(&approval)))
}

/// E6: `GET approvals/since?since=&limit=`.
pub async fn approvals_since(
    State(state): State<Shared>,
    Agent(who): Agent,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<SinceReply>, ApiError> {
    let since = match params.get("since").filter(|s| !s.is_empty()) {
        Some(text) => query::timestamp("since", text)?,
        None => state.authority.now() - time::Duration::hours(24),
    };
    let limit = query::limit(&params, 100, 500)?;
    let decisions = state.authority.approvals_since(&who.tenant, since, limit)?;
    Ok(Json(SinceReply {
        decisions: decisions
            .iter()
            .filter(|a| who.agents.contains(&a.agent_id))
            .map(Into::into)
            .collect(),
    }))
}

/// E8: `GET heartbeat?agent_id=`: `OK`, `PAUSE` or `KILL`.
pub async fn heartbeat(
    State(state): State<Shared>,
    Agent(who): Agent,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    let agent = who.act_as(params.get("agent_id").map(String::as_str))?;
    let status = state.authority.kill_switch(&who.tenant, Some(&agent))?;
    Ok(Json(
        HeartbeatReply::new(status.state, status.denial_reason()).for_agent(agent),
    ))
}
