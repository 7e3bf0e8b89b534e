//! The operator API under `/api/haltstate/v1/`: approvals, the kill switch, evidence, the tenant's ledger head
//! and keys. Operator keys only; an agent key gets 403. Every query is scoped to the key's tenant, and every
//! change is recorded as the key's own operator: a body's `as` may only name that operator.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use haltstate_authority::{
    Actor, AgentSet, ApprovalStatus, EvidenceQuery, KeySpec, KillScope, KillState, Principal, Role,
    Verdict, Via,
};
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
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who decides: when given, it must be the key's own operator (compared canonically).
    #[serde(default, rename = "as")]
    pub approver: Option<String>,
}

/// The key's operator, acting through the API; `claimed` (a body's `as`) must be the same one.
fn actor(who: &Principal, claimed: Option<&str>) -> Result<Actor, ApiError> {
    let name = who.operator(claimed)?;
    Ok(Actor::new(&name, Via::Api)?)
}

async fn decide(
    state: AppState,
    who: Principal,
    id: String,
    body: DecideBody,
    verdict: Verdict,
) -> Result<Json<Value>, ApiError> {
    let approver = actor(&who, body.approver.as_deref())?;
    let approval = state
        .authority
        .decide_approval(&who.tenant, &id, verdict, approver, body.reason)
        .await?;
    Ok(Json(json!(approval)))
}

/// `POST approvals/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    decide(state, who, id, body, Verdict::Approve).await
}

/// `POST approvals/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    decide(state, who, id, body, Verdict::Reject).await
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
#[serde(deny_unknown_fields)]
pub struct KillBody {
    /// `RUN`, `PAUSE` or `KILL`.
    pub state: String,
    /// Only this agent.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Who flips it: when given, it must be the key's own operator.
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
    let actor = actor(&who, body.actor.as_deref())?;
    let scope = KillScope::new(who.tenant.clone(), body.agent_id);
    let status = state
        .authority
        .set_kill_switch_as(scope, kill, actor)
        .await?;
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

/// `GET ledger/head`: the last record of this tenant's evidence, never another tenant's.
pub async fn ledger_head(
    State(state): State<AppState>,
    Operator(who): Operator,
) -> Result<Json<Value>, ApiError> {
    let head = state.authority.tenant_head(&who.tenant)?;
    Ok(Json(
        json!({ "tenant": who.tenant, "seq": head.seq, "hash": head.hash }),
    ))
}

/// `GET keys?live=true`: the tenant's keys, never their secrets.
pub async fn list_keys(
    State(state): State<AppState>,
    Operator(who): Operator,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let live_only = match query.get("live").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "live must be true or false, got {other:?}"
            )));
        }
    };
    Ok(Json(
        json!({ "keys": state.authority.keys(&who.tenant, live_only)? }),
    ))
}

/// The body of a key creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// The key's name: an operator's identity, or (by default) the agent an agent key acts as.
    pub name: String,
    /// `agent` or `operator`.
    pub role: Role,
    /// For an agent key: the agents it may act as (`name`, `prefix*`, `*`).
    #[serde(default)]
    pub agents: Option<Vec<String>>,
    /// Requests per second.
    #[serde(default)]
    pub rate_limit: Option<std::num::NonZeroU32>,
}

/// `POST keys`: creates a key; the answer holds its secret, shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    Operator(who): Operator,
    WireJson(body): WireJson<NewKeyBody>,
) -> Result<Json<Value>, ApiError> {
    let mut spec = KeySpec::new(body.name, body.role);
    if let Some(agents) = body.agents {
        spec = spec.agents(AgentSet::parse(agents)?);
    }
    spec.rate_limit = body.rate_limit;
    let created = state.authority.create_key_with(&who.tenant, spec).await?;
    let info = state.authority.key(&who.tenant, &created.id)?;
    tracing::info!(tenant = %who.tenant, key_id = %created.id, by = %who.name, "key created");
    Ok(Json(json!({ "key": info, "secret": created.secret })))
}

/// `POST keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Unknown ids (another tenant's included) are not found.
    state.authority.key(&who.tenant, &id)?;
    let revoked = state.authority.revoke_key(&who.tenant, &id).await?;
    tracing::info!(tenant = %who.tenant, key_id = %id, by = %who.name, revoked, "key revoked");
    Ok(Json(
        json!({ "key": state.authority.key(&who.tenant, &id)?, "revoked": revoked }),
    ))
}
