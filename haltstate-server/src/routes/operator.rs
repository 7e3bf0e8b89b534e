//! The operator API under `/api/haltstate/v1/`: approvals, the kill switch, evidence and the tenant's ledger
//! head take operator keys only; keys (list, create, rotate, revoke) take admin keys only; any other key gets
//! 403. Every query is scoped to the key's tenant, and every
//! change is recorded as the key's own operator: a body's `as` may only name that operator.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use haltstate_types::wire::{
    ApprovalsReply, DecideBody, EvidenceReply, KeyCreated, KeysReply, KillBody, KillReply,
    NewKeyBody, RevokedReply, TenantHeadReply,
};
use haltstate_types::{
    Actor, AgentSet, Approval, ApprovalStatus, EvidenceQuery, KeySpec, KillScope, Principal,
    Verdict, Via,
};

use crate::auth::{Admin, Operator};
use crate::body::WireJson;
use crate::error::ApiError;
use crate::long_reads;
use crate::query;
use crate::state::Shared;

/// The most any list answers at once.
const MAX_LIMIT: u32 = 1000;

/// `GET approvals?status=&limit=`.
pub async fn list_approvals(
    State(state): State<Shared>,
    Operator(who): Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ApprovalsReply>, ApiError> {
    let status = match params.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(text) => Some(
            ApprovalStatus::parse(text)
                .ok_or_else(|| ApiError::bad_request(format!("unknown status {text:?}")))?,
        ),
    };
    let approvals =
        state
            .authority
            .approvals(&who.tenant, status, query::limit(&params, 100, MAX_LIMIT)?)?;
    Ok(Json(ApprovalsReply { approvals }))
}

/// `GET approvals/{id}`.
pub async fn show_approval(
    State(state): State<Shared>,
    Operator(who): Operator,
    Path(id): Path<String>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(state.authority.approval(&who.tenant, &id)?))
}

/// The key's operator, acting through the API; `claimed` (a body's `as`) must be the same one.
fn actor(who: &Principal, claimed: Option<&str>) -> Result<Actor, ApiError> {
    let name = who.operator(claimed)?;
    Ok(Actor::new(&name, Via::Api)?)
}

async fn decide(
    state: Shared,
    who: Principal,
    id: String,
    body: DecideBody,
    verdict: Verdict,
) -> Result<Json<Approval>, ApiError> {
    let approver = actor(&who, body.approver.as_deref())?;
    let approval = state
        .authority
        .decide_approval(&who.tenant, &id, verdict, approver, body.reason)
        .await?;
    crate::metrics::approval_decided(&approval);
    Ok(Json(approval))
}

/// `POST approvals/{id}/approve`.
pub async fn approve(
    State(state): State<Shared>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Approval>, ApiError> {
    decide(state, who, id, body, Verdict::Approve).await
}

/// `POST approvals/{id}/reject`.
pub async fn reject(
    State(state): State<Shared>,
    Operator(who): Operator,
    Path(id): Path<String>,
    WireJson(body): WireJson<DecideBody>,
) -> Result<Json<Approval>, ApiError> {
    decide(state, who, id, body, Verdict::Reject).await
}

/// `GET kill-switch?agent_id=`.
pub async fn get_kill_switch(
    State(state): State<Shared>,
    Operator(who): Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<KillReply>, ApiError> {
    let status = state
        .authority
        .kill_switch(&who.tenant, params.get("agent_id").map(String::as_str))?;
    Ok(Json(KillReply::from(&status)))
}

/// `POST kill-switch`.
pub async fn set_kill_switch(
    State(state): State<Shared>,
    Operator(who): Operator,
    WireJson(body): WireJson<KillBody>,
) -> Result<Json<KillReply>, ApiError> {
    let actor = actor(&who, body.actor.as_deref())?;
    let scope = KillScope::new(who.tenant.clone(), body.agent_id);
    let status = state
        .authority
        .set_kill_switch_because(scope, body.state, actor, body.reason.as_deref())
        .await?;
    Ok(Json(KillReply::from(&status)))
}

/// `GET evidence?idempotency_key=&action=&agent_id=&from=&to=&after_seq=&limit=&newest_first=`: oldest first
/// (page on with `after_seq`), or with `newest_first=true` the newest that match, newest first. Without a key, run
/// off the runtime's workers: a search by action or agent reads the tenant's ledger until it has `limit` records.
pub async fn evidence(
    State(state): State<Shared>,
    Operator(who): Operator,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EvidenceReply>, ApiError> {
    let time = |field: &str| {
        params
            .get(field)
            .map(|t| query::timestamp(field, t))
            .transpose()
    };
    let after_seq = match params.get("after_seq") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| ApiError::bad_request("after_seq must be an integer"))?,
        ),
    };
    let filter = EvidenceQuery {
        idempotency_key: params.get("idempotency_key").cloned(),
        action: params.get("action").cloned(),
        agent_id: params.get("agent_id").cloned(),
        from: time("from")?,
        to: time("to")?,
        after_seq,
        limit: Some(query::limit(&params, 100, MAX_LIMIT)?),
    };
    let newest_first = match params.get("newest_first").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad_request("newest_first must be true or false")),
    };
    let (authority, tenant) = (state.authority.clone(), who.tenant.clone());
    let records = long_reads::evidence(&state.long_reads, &who.tenant, filter, move |filter| {
        if newest_first {
            authority.newest_evidence(&tenant, filter)
        } else {
            authority.evidence(&tenant, filter)
        }
    })
    .await?;
    Ok(Json(EvidenceReply { records }))
}

/// `GET ledger/head`: the last record of this tenant's evidence, never another tenant's.
pub async fn ledger_head(
    State(state): State<Shared>,
    Operator(who): Operator,
) -> Result<Json<TenantHeadReply>, ApiError> {
    let head = state.authority.tenant_head(&who.tenant)?;
    Ok(Json(TenantHeadReply {
        tenant: who.tenant,
        seq: head.seq,
        hash: head.hash,
    }))
}

/// `GET keys?live=true`: the tenant's keys, never their secrets. Admin keys only, as every key route.
pub async fn list_keys(
    State(state): State<Shared>,
    Admin(who): Admin,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<KeysReply>, ApiError> {
    let live_only = match params.get("live").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "live must be true or false, got {other:?}"
            )));
        }
    };
    Ok(Json(KeysReply {
        keys: state.authority.keys(&who.tenant, live_only)?,
    }))
}

/// `POST keys`: creates a key, recorded in the ledger as made by this admin; the answer holds its secret, shown
/// this once.
pub async fn create_key(
    State(state): State<Shared>,
    Admin(who): Admin,
    WireJson(body): WireJson<NewKeyBody>,
) -> Result<Json<KeyCreated>, ApiError> {
    let mut spec = KeySpec::new(body.name, body.role);
    if let Some(agents) = body.agents {
        spec = spec.agents(AgentSet::parse(agents)?);
    }
    spec.rate_limit = body.rate_limit;
    let created = state
        .authority
        .create_key_as(&who.tenant, spec, &who.name)
        .await?;
    let key = state.authority.key(&who.tenant, &created.id)?;
    tracing::info!(tenant = %who.tenant, key_id = %created.id, by = %who.name, "key created");
    Ok(Json(KeyCreated {
        key,
        secret: created.secret,
    }))
}

/// `POST keys/{id}/rotate`: a new secret for a live key (same id, name and role), shown this once.
pub async fn rotate_key(
    State(state): State<Shared>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Json<KeyCreated>, ApiError> {
    // Unknown ids (another tenant's included) are not found.
    state.authority.key(&who.tenant, &id)?;
    let rotated = state
        .authority
        .rotate_key(&who.tenant, &id, &who.name)
        .await?;
    tracing::info!(tenant = %who.tenant, key_id = %id, by = %who.name, "key rotated");
    Ok(Json(KeyCreated {
        key: state.authority.key(&who.tenant, &id)?,
        secret: rotated.secret,
    }))
}

/// `POST keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<Shared>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Json<RevokedReply>, ApiError> {
    // Unknown ids (another tenant's included) are not found.
    state.authority.key(&who.tenant, &id)?;
    let revoked = state
        .authority
        .revoke_key_as(&who.tenant, &id, &who.name)
        .await?;
    tracing::info!(tenant = %who.tenant, key_id = %id, by = %who.name, revoked, "key revoked");
    Ok(Json(RevokedReply {
        key: state.authority.key(&who.tenant, &id)?,
        revoked,
    }))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use haltstate_authority::{Authority, Role};
    use tower::ServiceExt;

    use crate::long_reads::PER_TENANT;
    use crate::state::AppState;

    /// With the tenant's long reads all taken, a search without a key is refused with 429 and `Retry-After`, and
    /// a lookup by key (through the key index, bounded) still answers; another tenant's search is not counted.
    #[tokio::test]
    async fn a_lookup_by_key_answers_while_the_tenants_long_reads_are_all_taken() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::builder(dir.path().join("hs.db")).open().unwrap();
        let acme = authority
            .create_key("acme", "alice", Role::Operator)
            .await
            .unwrap();
        let globex = authority
            .create_key("globex", "bob", Role::Operator)
            .await
            .unwrap();
        let state = AppState::new(authority);
        let long_reads = state.long_reads.clone();
        let router = crate::router(state);
        let get = |tenant: &str, secret: &str, query: &str| {
            let mut request = Request::get(format!("/api/haltstate/v1/evidence?{query}"))
                .header("X-Tenant-Id", tenant)
                .header("X-API-Key", secret)
                .body(Body::empty())
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
            router.clone().oneshot(request)
        };
        let held: Vec<_> = (0..PER_TENANT)
            .map(|_| long_reads.take("acme".to_owned(), PER_TENANT).unwrap())
            .collect();

        let refused = get("acme", &acme.secret, "action=refund.create")
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        let by_key = get("acme", &acme.secret, "idempotency_key=refund:1")
            .await
            .unwrap();
        assert_eq!(by_key.status(), StatusCode::OK);
        let other = get("globex", &globex.secret, "action=refund.create")
            .await
            .unwrap();
        assert_eq!(
            other.status(),
            StatusCode::OK,
            "another tenant is not counted"
        );

        drop(held);
        let searched = get("acme", &acme.secret, "action=refund.create")
            .await
            .unwrap();
        assert_eq!(searched.status(), StatusCode::OK);
    }
}
