//! Who is calling: `X-Tenant-Id` with `X-API-Key`, or `Authorization: Bearer` with the tenant in `X-Tenant-Id`
//! or the `tenant_id` query parameter. `X-Admin-Token` (which the official SDKs send with the agent's own key)
//! grants nothing.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use haltstate_authority::{Principal, Role};

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller of any role.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// An authenticated caller with the operator role.
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn query_tenant(parts: &Parts) -> Option<String> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "tenant_id" && !value.is_empty()).then(|| value.to_owned())
    })
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let key = header(parts, "x-api-key").map(str::to_owned).or_else(|| {
        header(parts, "authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|v| v.trim().to_owned())
    });
    let tenant = header(parts, "x-tenant-id")
        .map(str::to_owned)
        .or_else(|| query_tenant(parts));
    let (Some(tenant), Some(key)) = (tenant, key) else {
        return Err(ApiError::unauthenticated());
    };
    state
        .authority
        .authenticate(&tenant, &key)
        .map_err(|_| ApiError::unauthenticated())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).map(Caller)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state)?;
        if principal.role != Role::Operator {
            return Err(ApiError::forbidden("this endpoint needs an operator key"));
        }
        Ok(Operator(principal))
    }
}
