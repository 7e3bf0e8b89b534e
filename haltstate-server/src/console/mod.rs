//! The operators' console under `/ui`: sign in with an operator key, see what waits for a decision, approve or
//! reject it as yourself. Server-rendered (`pages.rs`), no script needed; sessions and CSRF in `session.rs`.
//!
//! Admin keys sign in too, to the keys page only: they mint and revoke keys, operators decide (and see the keys,
//! never change them). [`roles`] enforces it for every route, in one place.
//!
//! Every page is scoped to the signed-in operator's tenant; every form carries the session's CSRF token (and the
//! cookie is `SameSite=Strict`); decisions are recorded as the operator, `via: console`, under the same identity
//! rules as the API (no self-approval, a decision made meanwhile is shown, never overwritten).

mod extract;
mod history;
mod keys;
mod kill;
mod live;
mod pages;
mod proof;
pub(crate) mod session;
mod shadow;
mod visible;
mod webhooks;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;

use haltstate_authority::AuthorityError;
use haltstate_types::{Actor, ApprovalStatus, Role, Verdict, Via, canonical_name};

use crate::state::AppState;
use extract::CsrfForm;
use session::Session;

/// The console's routes, nested under `/ui`; every one behind [`roles`].
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/inbox", get(inbox))
        .route("/events", get(live::events))
        .route("/history", get(history::history))
        .route("/timeline", get(history::timeline))
        .route("/ledger", get(history::ledger))
        .route("/kill", get(kill::show).post(kill::change))
        .route("/keys", get(keys::show).post(keys::create))
        .route("/keys/{id}/revoke", post(keys::revoke))
        .route("/webhooks", get(webhooks::show).post(webhooks::add))
        .route("/shadow", get(shadow::show))
        .route("/proof", get(proof::download))
        .route("/proof/view", get(proof::view))
        .route("/webhooks/{id}/remove", post(webhooks::remove))
        .route("/approvals/{id}", get(approval_page))
        .route("/console.js", get(live::script))
        .route("/approvals/{id}/decide", post(decide))
        .route_layer(axum::middleware::from_fn_with_state(state, roles))
}

/// What a signed-in role may reach: an admin session the keys page (and signing out) only; an operator session
/// everything but changing keys. Pages without a session handle that themselves (sign-in, redirects).
async fn roles(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let path = path.strip_prefix("/ui").unwrap_or(path);
    let keys = path == "/keys" || path.starts_with("/keys/");
    let changes_keys = keys && request.method() == axum::http::Method::POST;
    let open = matches!(path, "/login" | "/logout" | "/console.js" | "/");
    let Some(session) = state.sessions.find(request.headers(), &state.authority) else {
        return next.run(request).await;
    };
    let refusal = match session.principal.role {
        Role::Admin if !(keys || open) => {
            Some("Admin keys manage keys only: sign in with an operator key to decide.")
        }
        Role::Operator if changes_keys => Some(
            "Keys are minted, rotated and revoked by admins: an operator cannot make the identities that ask or decide.",
        ),
        Role::Admin | Role::Operator => None,
        Role::Agent => Some("Agent keys have no console."),
    };
    match refusal {
        Some(why) => page(
            StatusCode::FORBIDDEN,
            pages::refused(Some(&session), "Not for this key", why),
        ),
        None => next.run(request).await,
    }
}

/// A page with its status; never cached (it shows one operator's view).
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// Where a session lands: the inbox, or the keys page for an admin.
fn home(session: &Session) -> &'static str {
    match session.principal.role {
        Role::Admin => "/ui/keys",
        Role::Agent | Role::Operator => "/ui/inbox",
    }
}

async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.sessions.find(&headers, &state.authority) {
        Some(session) => Redirect::to(home(&session)).into_response(),
        None => to_login(),
    }
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = state.sessions.find(&headers, &state.authority) {
        return Redirect::to(home(&session)).into_response();
    }
    login_form(&headers, StatusCode::OK, None)
}

/// The sign-in page with a fresh CSRF token (paired with this browser by a short-lived cookie).
fn login_form(headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let (token, cookie) = session::login_token(headers);
    let mut response = page(status, pages::login(&token, error));
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    tenant: String,
    key: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let address = connection.map_or(
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        |Extension(ConnectInfo(peer))| peer.ip(),
    );
    let too_many = || {
        login_form(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed sign-ins from this address; wait a minute."),
        )
    };
    if state.rates.check_address(address).is_err() {
        return too_many();
    }
    if !session::login_token_matches(&headers, &form.csrf) {
        return login_form(
            &headers,
            StatusCode::FORBIDDEN,
            Some("This sign-in form is stale or was posted from elsewhere; sign in again."),
        );
    }
    let tenant = form.tenant.trim().to_owned();
    match state.authority.authenticate(&tenant, form.key.trim()) {
        Ok(principal) if matches!(principal.role, Role::Operator | Role::Admin) => {
            let landing = match principal.role {
                Role::Admin => "/ui/keys",
                Role::Agent | Role::Operator => "/ui/inbox",
            };
            let Some(token) = state
                .sessions
                .start(principal, state.limits.max_sessions_per_tenant)
            else {
                return login_form(
                    &headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("The console holds as many sessions as it can; try again later."),
                );
            };
            let mut response = Redirect::to(landing).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&token, &headers)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(_) | Err(AuthorityError::Unauthenticated) => {
            if state.rates.failed(address).is_some() {
                return too_many();
            }
            login_form(
                &headers,
                StatusCode::UNAUTHORIZED,
                Some(
                    "That tenant and key do not sign in: the key is wrong, revoked, of another tenant, or not an operator key.",
                ),
            )
        }
        Err(error) => {
            tracing::warn!(%error, "console sign-in could not check the key");
            login_form(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The authority cannot check keys right now; try again shortly."),
            )
        }
    }
}

/// A form that carries nothing but its CSRF token (sign out, revoke, remove).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

extract::csrf_field!(TokenForm, DecideForm);

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_session, _form): CsrfForm<TokenForm>,
) -> Response {
    state.sessions.end(&headers);
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The session a form was posted in, when the form carries that session's CSRF token; otherwise the answer to
/// send instead (sign in, or refused). Every state-changing form starts here.
fn csrf_refused(session: &Session) -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::refused(
            Some(session),
            "Refused",
            "This form did not carry this session's token (an old page, or a form posted from elsewhere). Nothing changed.",
        ),
    )
}

async fn inbox(State(state): State<AppState>, session: Session) -> Response {
    show_inbox(&state, &session, None)
}

fn show_inbox(state: &AppState, session: &Session, notice: Option<&str>) -> Response {
    match state.authority.approvals(
        &session.principal.tenant,
        Some(ApprovalStatus::Pending),
        // The authority keeps at most this many waiting per tenant: the inbox shows every one.
        u32::try_from(state.authority.max_pending_approvals_per_tenant()).unwrap_or(u32::MAX),
    ) {
        Ok(pending) => page(StatusCode::OK, pages::inbox(session, &pending, notice)),
        Err(error) => {
            tracing::warn!(%error, "console inbox could not read approvals");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(session),
                    "Unavailable",
                    "The authority cannot read approvals right now.",
                ),
            )
        }
    }
}

async fn approval_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    match state.authority.approval(&session.principal.tenant, &id) {
        Ok(approval) => page(StatusCode::OK, pages::approval(&session, &approval)),
        Err(AuthorityError::ApprovalNotFound { .. }) => page(
            StatusCode::NOT_FOUND,
            pages::refused(
                Some(&session),
                "Not found",
                "No such approval in this tenant.",
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "console could not read an approval");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(&session),
                    "Unavailable",
                    "The authority cannot read approvals right now.",
                ),
            )
        }
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    verdict: String,
    #[serde(default)]
    reason: String,
}

impl std::fmt::Debug for DecideForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecideForm")
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(session, form): CsrfForm<DecideForm>,
) -> Response {
    let verdict = match form.verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::refused(
                    Some(&session),
                    "Refused",
                    "Approve or reject: nothing else.",
                ),
            );
        }
    };
    let tenant = session.principal.tenant.clone();
    let approver = match canonical_name("operator", &session.principal.name)
        .and_then(|name| Actor::new(&name, Via::Console))
    {
        Ok(actor) => actor,
        Err(error) => {
            return page(
                StatusCode::FORBIDDEN,
                pages::refused(Some(&session), "Refused", &error.to_string()),
            );
        }
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    let decided = state
        .authority
        .decide_approval(&tenant, &id, verdict, approver, reason)
        .await;
    match decided {
        Ok(approval) if approval.status == ApprovalStatus::Pending => {
            let notice = format!(
                "Your approval of {} by {} ({}) is recorded: {} of {} approvals; another operator must approve too.",
                approval.action,
                approval.agent_id,
                approval.id,
                approval.approved_by.len(),
                approval.approvals_required
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Ok(approval) => {
            let notice = format!(
                "{} {} by {} ({}).",
                match approval.status {
                    ApprovalStatus::Approved => "Approved",
                    _ => "Rejected",
                },
                approval.action,
                approval.agent_id,
                approval.id
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::AlreadyApproved { .. }) => {
            let notice = format!(
                "You already approved {id}; it needs another operator's approval. Nothing changed."
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::ApprovalDecided { status, .. }) => {
            let by = state
                .authority
                .approval(&tenant, &id)
                .ok()
                .and_then(|a| a.approver)
                .map(|who| format!(" by {who}"))
                .unwrap_or_default();
            let notice = format!(
                "Approval {id} was already {}{by}; your decision was not recorded.",
                status.as_str()
            );
            show_inbox(&state, &session, Some(&notice))
        }
        Err(AuthorityError::ApprovalNotFound { .. }) => page(
            StatusCode::NOT_FOUND,
            pages::refused(
                Some(&session),
                "Not found",
                "No such approval in this tenant.",
            ),
        ),
        Err(AuthorityError::SelfApproval { .. }) => page(
            StatusCode::FORBIDDEN,
            pages::refused(
                Some(&session),
                "Refused",
                "Nobody decides an approval requested under their own name.",
            ),
        ),
        Err(error) => {
            tracing::warn!(%error, "console decision failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::refused(
                    Some(&session),
                    "Unavailable",
                    "The decision could not be recorded; try again.",
                ),
            )
        }
    }
}
