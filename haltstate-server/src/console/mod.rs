//! The operators' console under `/ui`: sign in with an operator key (`sign_in.rs`), see what waits for a decision,
//! approve or reject it as yourself (`inbox.rs`). Server-rendered (`pages.rs`), no script needed; sessions in
//! `session.rs`, the handlers' `Session` and `CsrfForm` extractors in `extract.rs`. This file: the router, the role
//! gate and what every page shares.
//!
//! Admin keys sign in too, to the keys page only: they mint and revoke keys, operators decide (and see the keys,
//! never change them). [`roles`] enforces it for every route, in one place.
//!
//! Every page is scoped to the signed-in operator's tenant; every form carries the session's CSRF token (and the
//! cookie is `SameSite=Strict`); decisions are recorded as the operator, `via: console`, under the same identity
//! rules as the API (no self-approval, a decision made meanwhile is shown, never overwritten).

mod charts;
mod extract;
mod history;
mod inbox;
mod keys;
mod kill;
mod layout;
mod live;
mod overview;
mod pages;
mod proof;
pub(crate) mod session;
mod shadow;
mod sign_in;
mod visible;
mod webhooks;
mod when;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use haltstate_types::Role;

use crate::state::Shared;
use session::Session;

/// The console's routes, nested under `/ui`; every one behind [`roles`].
pub(crate) fn router(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/", get(sign_in::root))
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/inbox", get(inbox::inbox))
        .route("/overview", get(overview::show))
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
        .route("/approvals/{id}", get(inbox::approval_page))
        .route("/console.js", get(live::script))
        .route("/approvals/{id}/decide", post(inbox::decide))
        .route_layer(axum::middleware::from_fn_with_state(state, roles))
}

/// What a signed-in role may reach: an admin session the keys page (and signing out) only; an operator session
/// everything but changing keys. Pages without a session handle that themselves (sign-in, redirects).
async fn roles(
    State(state): State<Shared>,
    mut request: axum::extract::Request,
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
            layout::refused(Some(&session), "Not for this key", why),
        ),
        None => {
            // The handler's `Session` extractor takes it from here: one read of the session per request.
            request.extensions_mut().insert(session);
            next.run(request).await
        }
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

/// The page for a search, check or report refused because the tenant has as many running as it may
/// ([`long_reads`](crate::long_reads)).
fn busy(session: &Session) -> Response {
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        layout::refused(
            Some(session),
            "Busy",
            "Other searches of this tenant's evidence are running; try again when they end.",
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// To the sign-in page, coming back to `target` after it (a notification's link opened signed out lands on the
/// approval it names, not the inbox).
fn to_login_then(target: &str) -> Response {
    match return_path(target) {
        Some(target) => {
            Redirect::to(&format!("/ui/login?next={}", layout::urlencode(target))).into_response()
        }
        None => to_login(),
    }
}

/// `target`, if it is a console page of this server to return to after signing in: a path under `/ui/`, never
/// another origin (`//host`, `/\host`), the sign-in page itself, or anything with characters outside a plain path
/// and query.
fn return_path(target: &str) -> Option<&str> {
    let plain = target.len() <= 512
        && target.starts_with("/ui/")
        && !target.starts_with("/ui/login")
        && !target.contains("//")
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~%?=&+:".contains(&b));
    plain.then_some(target)
}

/// Where a session lands: the inbox, or the keys page for an admin.
fn home(session: &Session) -> &'static str {
    match session.principal.role {
        Role::Admin => "/ui/keys",
        Role::Agent | Role::Operator => "/ui/inbox",
    }
}

/// A form that carries nothing but its CSRF token (sign out, revoke, remove).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

extract::csrf_field!(TokenForm);

/// The session a form was posted in, when the form carries that session's CSRF token; otherwise the answer to
/// send instead (sign in, or refused). Every state-changing form starts here.
fn csrf_refused(session: &Session) -> Response {
    page(
        StatusCode::FORBIDDEN,
        layout::refused(
            Some(session),
            "Refused",
            "This form did not carry this session's token (an old page, or a form posted from elsewhere). Nothing changed.",
        ),
    )
}
