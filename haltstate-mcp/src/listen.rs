//! Serving a guarded server over streamable HTTP (`/mcp`), to clients of the session-based revisions and of the
//! stateless 2026-07-28 one. Before rmcp sees a request, the gate makes its API key (`X-API-Key` or
//! `Authorization: Bearer`) the caller it acts as ([`Callers`]), refuses an address that keeps failing to
//! authenticate, and holds each session to the agent that opened it: a session id learnt by another agent opens
//! nothing. rmcp checks `Host` and `Origin` (DNS rebinding) and bounds the body. The listener's connection limits
//! and timeouts are whoever serves the router's (the CLI serves it within the authority server's limits).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::caller::{Callers, Refusal};

/// The header naming a session (session-based revisions).
const SESSION: &str = "mcp-session-id";

/// How the listener checks what reaches it.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values served (names or `host:port`); others are refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Browser origins served (`scheme://host:port`, `:*` for any port); a request carrying any other `Origin`
    /// is refused (agents' clients send none). Default: pages of this machine's loopback names only. Empty: every
    /// request carrying an `Origin` is refused.
    pub allowed_origins: Vec<String>,
    /// The largest request body (default 1 MiB).
    pub max_body_bytes: usize,
    /// Sessions one agent may hold open (default 32): opening one more closes its oldest.
    pub max_sessions_per_agent: usize,
    /// Failed authentications one address may make per minute (default 60); past it the address is refused
    /// before its key is looked at.
    pub auth_failures_per_minute: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: ["localhost", "127.0.0.1", "[::1]"]
                .into_iter()
                .flat_map(|host| ["http", "https"].map(|scheme| format!("{scheme}://{host}:*")))
                .collect(),
            max_body_bytes: 1024 * 1024,
            max_sessions_per_agent: 32,
            auth_failures_per_minute: 60,
        }
    }
}

/// The router serving `handler` (fresh clones per session or stateless request) at `/mcp`, behind the gate.
pub fn router<H>(handler: H, callers: Arc<dyn Callers>, options: HttpOptions) -> Router
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts.clone())
        .with_allowed_origins(options.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(options.max_body_bytes);
    let sessions = Arc::new(LocalSessionManager::default());
    let service =
        StreamableHttpService::new(move || Ok(handler.clone()), Arc::clone(&sessions), config);
    let gate = Arc::new(Gate {
        callers,
        sessions,
        owners: Mutex::default(),
        failures: Mutex::default(),
        options,
    });
    Router::new()
        .route_service("/mcp", service)
        .layer(from_fn_with_state(gate, admit))
}

/// What the gate keeps.
struct Gate {
    callers: Arc<dyn Callers>,
    sessions: Arc<LocalSessionManager>,
    owners: Mutex<Owners>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    options: HttpOptions,
}

/// Which agent opened each session, oldest first per agent.
#[derive(Default)]
struct Owners {
    by_session: HashMap<String, String>,
    by_agent: HashMap<String, VecDeque<String>>,
}

impl Owners {
    /// Records `agent`'s new session; answers the session it displaced, past `max` per agent.
    fn open(&mut self, session: String, agent: &str, max: usize) -> Option<String> {
        self.by_session.insert(session.clone(), agent.to_owned());
        let open = self.by_agent.entry(agent.to_owned()).or_default();
        open.push_back(session);
        let displaced = (open.len() > max).then(|| open.pop_front()).flatten();
        if let Some(old) = &displaced {
            self.by_session.remove(old);
        }
        displaced
    }

    fn close(&mut self, session: &str) {
        if let Some(agent) = self.by_session.remove(session)
            && let Some(open) = self.by_agent.get_mut(&agent)
        {
            open.retain(|s| s != session);
            if open.is_empty() {
                self.by_agent.remove(&agent);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Neither map holds an invariant a panic could break halfway.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are remembered at once: past it the oldest windows are forgotten.
const FAILING_ADDRESSES: usize = 4096;

impl Gate {
    /// Whether `address` has failed too often this minute.
    fn refusing(&self, address: IpAddr) -> bool {
        lock(&self.failures)
            .get(&address)
            .is_some_and(|(since, count)| {
                since.elapsed() < FAILURE_WINDOW && *count >= self.options.auth_failures_per_minute
            })
    }

    fn failed(&self, address: IpAddr) {
        let mut failures = lock(&self.failures);
        if failures.len() >= FAILING_ADDRESSES {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(address).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The key a request carries: `X-API-Key`, else `Authorization: Bearer`.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return key.to_str().ok();
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A refusal in JSON, as the authority server words its own.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn admit(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if address.is_some_and(|a| gate.refusing(a)) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_auth_failures",
            "too many failed authentications from this address; retry in a minute",
        );
    }
    let caller = match gate.callers.caller(api_key(request.headers())).await {
        Ok(caller) => caller,
        Err(Refusal::Unauthenticated) => {
            if let Some(address) = address {
                gate.failed(address);
            }
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &Refusal::Unauthenticated.to_string(),
            );
        }
        Err(refusal @ Refusal::Unavailable(_)) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &refusal.to_string(),
            );
        }
    };
    let session = request
        .headers()
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session {
        let owner = lock(&gate.owners).by_session.get(session).cloned();
        // Another agent's session, or one this gate never opened (or closed): as if it did not exist.
        if owner.as_deref() != Some(caller.agent()) {
            return refuse(
                StatusCode::NOT_FOUND,
                "session_not_found",
                "no such session",
            );
        }
    }
    let agent = caller.agent().to_owned();
    let closing = request.method() == Method::DELETE;
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    match (&session, response.headers().get(SESSION)) {
        (None, Some(opened)) => {
            if let Ok(opened) = opened.to_str() {
                let displaced = lock(&gate.owners).open(
                    opened.to_owned(),
                    &agent,
                    gate.options.max_sessions_per_agent,
                );
                if let Some(old) = displaced
                    && let Err(error) = gate.sessions.close_session(&old.into()).await
                {
                    tracing::debug!(%error, "a displaced session was already closed");
                }
            }
        }
        (Some(session), _) if closing && response.status().is_success() => {
            lock(&gate.owners).close(session);
        }
        _ => {}
    }
    response
}
