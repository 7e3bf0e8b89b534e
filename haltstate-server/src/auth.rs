//! Who is calling: `X-Tenant-Id` with `X-API-Key`, or `Authorization: Bearer` with the tenant in `X-Tenant-Id`
//! or the `tenant_id` query parameter. `X-Admin-Token` (which the official SDKs send with the agent's own key)
//! grants nothing.
//!
//! A key is one identity of one role. The wire contract's routes take agent keys only ([`Agent`]); the operator
//! API takes operator keys only ([`Operator`]), except its key routes, which take admin keys only ([`Admin`]);
//! any other role gets 403 `wrong_role`. An address that fails to
//! authenticate too often gets 429 for a while, before its keys are looked at; a key over its request rate gets
//! 429 too. Both answers carry `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use haltstate_authority::AuthorityError;
use haltstate_types::{ErrorCode, Principal, Role};

use crate::error::ApiError;
use crate::state::{AppState, Shared};

/// An authenticated agent key.
#[derive(Debug, Clone)]
pub struct Agent(pub Principal);

/// An authenticated operator key.
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

/// An authenticated admin key: mints, rotates and revokes keys, and nothing else.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

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

/// The client's address; a server not started by [`serve`](crate::serve) (a test's `axum::serve`) gives none,
/// and all its clients share one budget.
pub(crate) fn client_address(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

fn too_many(code: ErrorCode, detail: &str, wait: std::time::Duration) -> ApiError {
    ApiError::retry_later(StatusCode::TOO_MANY_REQUESTS, code, detail, wait.as_secs())
}

/// Authenticates the request's key, under the address's failure budget and the key's rate.
pub(crate) fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let address = client_address(parts);
    if let Err(wait) = state.rates.check_address(address) {
        return Err(too_many(
            ErrorCode::TooManyFailures,
            "too many failed authentications from this address",
            wait,
        ));
    }
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
    let principal = match (tenant, key) {
        (Some(tenant), Some(key)) => match state.authority.authenticate(&tenant, &key) {
            Ok(principal) => Some(principal),
            Err(AuthorityError::Unauthenticated) => None,
            // The key could not be looked up (the database is away): not a failed authentication, and never
            // an answer about the key. 503 with Retry-After, or 500.
            Err(other) => return Err(other.into()),
        },
        _ => None,
    };
    let Some(principal) = principal else {
        return Err(match state.rates.failed(address) {
            Some(wait) => too_many(
                ErrorCode::TooManyFailures,
                "too many failed authentications from this address",
                wait,
            ),
            None => ApiError::unauthenticated(),
        });
    };
    state.rates.check_key(&principal).map_err(|wait| {
        too_many(
            ErrorCode::RateLimited,
            "this key is over its request rate",
            wait,
        )
    })?;
    Ok(principal)
}

fn with_role(principal: Principal, role: Role) -> Result<Principal, ApiError> {
    if principal.role == role {
        return Ok(principal);
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::WrongRole,
        match role {
            Role::Agent => {
                "this route takes agent keys: operator keys cannot request actions or act as agents"
            }
            Role::Operator => "this route takes operator keys",
            Role::Admin => {
                "this route takes admin keys: keys are minted, rotated and revoked by admins, not by operators"
            }
        },
    ))
}

impl FromRequestParts<Shared> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        with_role(authenticate(parts, state)?, Role::Agent).map(Agent)
    }
}

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        with_role(authenticate(parts, state)?, Role::Admin).map(Admin)
    }
}

impl FromRequestParts<Shared> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        with_role(authenticate(parts, state)?, Role::Operator).map(Operator)
    }
}
