//! The self-hosted HaltState authority over HTTP.
//!
//! Serves the HaltState wire contract (check, guard, reports, approvals, the approvals stream, heartbeat) under
//! both the canonical prefix `/api/haltstate/sentinel/` and the legacy `/api/sentinel/`, so the official SDKs
//! of other languages work against it unmodified. Bodies are bounded (64 KiB, nesting 32) and every error is JSON
//! `{"detail", "code"}`. Operators use `/api/haltstate/v1/` (operator keys only).
//!
//! [`serve`] runs it within [`ServeLimits`] (timeouts, connection count, graceful shutdown with a deadline);
//! [`router`] is the bare `axum` router, for embedding in an app of your own.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use haltstate_authority::Authority;
//! use haltstate_server::{AppState, ServeLimits, serve};
//!
//! let authority = Authority::builder("haltstate.db").policy_file("policies.cedar").open()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8787").await?;
//! let state = AppState::with_limits(authority, ServeLimits::default());
//! serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod auth;
mod body;
mod console;
mod error;
mod limits;
mod long_reads;
mod low_priority;
mod metrics;
pub mod outbound;
mod query;
mod rate;
mod refusals;
pub mod routes;
mod serve;
mod slots;
mod state;
mod streams;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use auth::{Admin, Agent, Operator};
pub use limits::ServeLimits;
pub use metrics::Metrics;
pub use serve::{METRICS_CONNECTIONS, serve, serve_metrics, serve_router};

/// Entry points for the fuzz targets in `fuzz/` and their regression tests; not a public API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes `bytes` as every request body the server takes, the way the server does (size and depth limits,
    /// then typed decoding, then the authority's normalisation and validation), and answers how many decoded.
    /// Never panics.
    pub fn request_bodies(bytes: &[u8]) -> usize {
        use haltstate_types::wire::{CheckBody, CheckReportBody, GuardBody, GuardReportBody};
        if bytes.len() > crate::body::MAX_BODY_BYTES {
            return 0;
        }
        let mut decoded = 0;
        if let Ok(body) = crate::body::decode::<GuardBody>(bytes) {
            decoded += 1;
            let agent = body
                .action
                .agent_id
                .clone()
                .unwrap_or_else(|| "default".into());
            let _ = body.into_request(agent).normalize();
        }
        if let Ok(body) = crate::body::decode::<CheckBody>(bytes) {
            decoded += 1;
            let agent = body
                .action
                .agent_id
                .clone()
                .unwrap_or_else(|| "default".into());
            let _ = body.into_request(agent).normalize();
        }
        decoded += usize::from(crate::body::decode::<GuardReportBody>(bytes).is_ok());
        decoded += usize::from(crate::body::decode::<CheckReportBody>(bytes).is_ok());
        decoded +=
            usize::from(crate::body::decode::<haltstate_types::UnverifiedOutcome>(bytes).is_ok());
        if let Ok(text) = std::str::from_utf8(bytes) {
            decoded += usize::from(haltstate_types::timestamp::parse_iso8601(text).is_some());
        }
        decoded
    }
}
pub use body::{MAX_BODY_BYTES, MAX_JSON_DEPTH};
pub use error::ApiError;
pub use state::{AppState, Shared};

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    use haltstate_types::wire::paths;
    use routes::{operator, sentinel, stream, tlog};
    let state = state::Shared::new(state);
    // The agents' contract under each of its prefixes, as routes of the top router: nested routers cut each
    // request's prefix off its URI, a new `Uri` per request (1% of the server's CPU at 64 connections).
    let contract = |routes: Router<state::Shared>, prefix: &str| {
        let at = |suffix: &str| format!("{prefix}/{suffix}");
        routes
            .route(&at(paths::CHECK), post(sentinel::check))
            .route(&at(paths::GUARD), post(sentinel::guard))
            .route(&at(paths::GUARD_REPORT), post(sentinel::guard_report))
            .route(
                &at(paths::GUARD_UNVERIFIED),
                post(sentinel::guard_unverified),
            )
            .route(&at(paths::REPORT), post(sentinel::report))
            .route(
                &at(&format!("{}/{{id}}", paths::APPROVAL)),
                get(sentinel::approval),
            )
            .route(&at(paths::APPROVALS_SINCE), get(sentinel::approvals_since))
            .route(&at(paths::APPROVALS_STREAM), get(stream::approvals_stream))
            .route(&at(paths::HEARTBEAT), get(sentinel::heartbeat))
    };
    let operator_api = Router::new()
        .route("/approvals", get(operator::list_approvals))
        .route("/approvals/{id}", get(operator::show_approval))
        .route("/approvals/{id}/approve", post(operator::approve))
        .route("/approvals/{id}/reject", post(operator::reject))
        .route(
            "/kill-switch",
            get(operator::get_kill_switch).post(operator::set_kill_switch),
        )
        .route("/evidence", get(operator::evidence))
        .route("/ledger/head", get(operator::ledger_head))
        .route("/ledger/checkpoint", get(tlog::checkpoint))
        .route("/ledger/consistency", get(tlog::consistency))
        .route("/ledger/inclusion", get(tlog::inclusion))
        .route("/keys", get(operator::list_keys).post(operator::create_key))
        .route("/keys/{id}/revoke", post(operator::revoke_key))
        .route("/keys/{id}/rotate", post(operator::rotate_key));
    let mut routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.console {
        routes = routes.nest("/ui", console::router(state.clone()));
    }
    for prefix in [
        paths::CANONICAL.to_owned(),
        paths::LEGACY.to_owned(),
        format!("{}{}", paths::OPS_BASE, paths::CANONICAL),
        format!("{}{}", paths::OPS_BASE, paths::LEGACY),
    ] {
        routes = contract(routes, &prefix);
    }
    routes
        .nest(paths::OPERATOR, operator_api)
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                haltstate_types::ErrorCode::MethodNotAllowed,
                "method not allowed",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when storage answers: 200, or 503 `unavailable` with `Retry-After` (a load balancer then sends the
/// traffic elsewhere). Says nothing about any tenant.
async fn readyz(
    axum::extract::State(state): axum::extract::State<state::Shared>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    match state.authority.ready() {
        Ok(()) => Ok(axum::Json(serde_json::json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(%error, "not ready: storage does not answer");
            Err(ApiError::retry_later(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                haltstate_types::ErrorCode::Unavailable,
                "storage does not answer",
                1,
            ))
        }
    }
}

/// The metrics endpoint, for a listener of its own (`serve --metrics-listen`): `GET /metrics` in the Prometheus
/// text format. It spans every tenant, so it is not on the API's listener; bind it where only Prometheus reaches.
pub fn metrics_router(authority: haltstate_authority::Authority, metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let (authority, metrics) = (authority.clone(), metrics.clone());
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(&authority),
                )
            }
        }),
    )
}

/// What a connection past the limit is served: `/healthz`, and 503 for everything else.
pub(crate) fn health_router() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(serve::too_many_connections)
}

/// One structured log line per request: method, path (never the query, which may carry ids), status, latency.
/// Answered requests and refusals log at `debug` (`RUST_LOG=haltstate_server=debug` shows them): formatting a line
/// per request cost 3% of the server's CPU under load, and a burst of bad requests must not flood the log, so
/// refusals are also counted and summarised at `info` once a minute. Server errors log at `warn`.
async fn log_request(
    axum::extract::State(state): axum::extract::State<state::Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if status >= 500 {
        tracing::warn!(%method, %path, status, micros, "request");
    } else if status >= 400 {
        state.refusals.count(status);
        tracing::debug!(%method, %path, status, micros, "request refused");
    } else {
        tracing::debug!(%method, %path, status, micros, "request");
    }
    response
}
