//! The operator API under `/api/haltstate/v1/`: approvals, the kill switch, evidence and the ledger head.
//! Operator keys only; an agent key gets 403. Every query is scoped to the key's tenant.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use haltstate_authority::{ApprovalStatus, EvidenceQuery, KillScope, KillState, Principal};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Operator;
use crate::body::WireJson;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire;

/// The operator API's prefix.
pub const PREFIX: &str = "/api/haltstate/v1";

fn parse_limit(query: &HashMap<String, String>, default: u32) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::bad_request("limit must be an integer from 1 to 1000")),
    }
}

/// `GET approvals?status=&limit=`.
pub async fn list_approvals(
    State(state): State<AppState>,
    Operator(who): Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.get("status").map(String::as_str) {
        None | Some("") => None,
        Some("pending") => Some(ApprovalStatus::Pending),
        Some("approved") => Some(ApprovalStatus::Approved),
        Some("rejected") => Some(ApprovalStatus::Rejected),
        Some("expired") => Some(ApprovalStatus::Expired),
        Some(other) => return Err(ApiError::bad_request(format!("unknown status {other:?}"))),
    };
    let approvals = state
        .authority
        .approvals(&who.tenant, status, parse_limit(&query, 100)?)?;
    Ok(Json(json!({ "approvals": approvals })))
}

/// `GET approvals/{id}`.
pub async fn show_approval(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.authority.approval(&who.tenant, &id)?)))
}

/// The body of approve and reject.
#[derive(Debug, Deserialize, Default)]
pub struct DecideBody {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who decides, when the key is shared by a team; defaults to the key's name.
    #[serde(default, rename = "as")]
    pub approver: Option<String>,
}

fn approver(who: &Principal, body: &DecideBody) -> String {
    body.approver
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| who.name.clone())
}

/// `POST approvals/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    let approval = state
        .authority
        .approve(&who.tenant, &id, &approver(&who, &body), body.reason)
        .await?;
    Ok(Json(json!(approval)))
}

/// `POST approvals/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    let approval = state
        .authority
        .reject(&who.tenant, &id, &approver(&who, &body), body.reason)
        .await?;
    Ok(Json(json!(approval)))
}

fn kill_json(status: &haltstate_authority::KillStatus) -> Value {
    json!({
        "state": status.state.as_str(),
        "scope": status.scope.as_ref().map(|s| if s.agent_id().is_some() { "agent" } else { "tenant" }),
        "reason": status.denial_reason(),
    })
}

/// `GET kill-switch?agent_id=`.
pub async fn get_kill_switch(
    State(state): State<AppState>,
    Operator(who): Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let status = state
        .authority
        .kill_switch(&who.tenant, query.get("agent_id").map(String::as_str))?;
    Ok(Json(kill_json(&status)))
}

/// The body of a kill-switch change.
#[derive(Debug, Deserialize)]
pub struct KillBody {
    /// `RUN`, `PAUSE` or `KILL`.
    pub state: String,
    /// Only this agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Who flips it; defaults to the key's name.
    #[serde(default, rename = "as")]
    pub actor: Option<String>,
}

/// `POST kill-switch`.
pub async fn set_kill_switch(
    State(state): State<AppState>,
    Operator(who): Operator,
    WireJson(body): WireJson<KillBody>,
) -> Result<Json<Value>, ApiError> {
    let kill = KillState::parse(&body.state).ok_or_else(|| {
        ApiError::bad_request(format!(
            "state must be RUN, PAUSE or KILL, got {:?}",
            body.state
        ))
    })?;
    let actor = body
        .actor
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| who.name.clone());
    let scope = KillScope::new(who.tenant.clone(), body.agent_id);
    let status = state.authority.set_kill_switch(scope, kill, &actor).await?;
    Ok(Json(kill_json(&status)))
}

/// `GET evidence?idempotency_key=&action=&agent_id=&from=&to=&after_seq=&limit=`.
pub async fn evidence(
    State(state): State<AppState>,
    Operator(who): Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let time = |field: &str| {
        query
            .get(field)
            .map(|t| wire::parse_timestamp(field, t))
            .transpose()
    };
    let after_seq = match query.get("after_seq") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request("after_seq must be an integer"))?,
        ),
    };
    let filter = EvidenceQuery {
        idempotency_key: query.get("idempotency_key").cloned(),
        action: query.get("action").cloned(),
        agent_id: query.get("agent_id").cloned(),
        from: time("from")?,
        to: time("to")?,
        after_seq,
        limit: Some(parse_limit(&query, 100)?),
    };
    Ok(Json(
        json!({ "records": state.authority.evidence(&who.tenant, &filter)? }),
    ))
}

/// `GET ledger/head`.
pub async fn ledger_head(
    State(state): State<AppState>,
    Operator(_who): Operator,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.authority.ledger_head()?)))
}
