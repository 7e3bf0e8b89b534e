//! Signing in and out: an operator's (or admin's) key exchanged for a session cookie, and the session ended.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use haltstate_authority::AuthorityError;
use haltstate_types::Role;

use super::extract::CsrfForm;
use super::session::{self};
use super::{TokenForm, home, page, pages, return_path, to_login};
use crate::state::Shared;

pub(crate) async fn root(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match state.sessions.find(&headers, &state.authority) {
        Some(session) => Redirect::to(home(&session)).into_response(),
        None => to_login(),
    }
}

/// `?next=`: the console page to return to after signing in.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Next {
    #[serde(default)]
    next: String,
}

pub(crate) async fn login_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Response {
    if let Some(session) = state.sessions.find(&headers, &state.authority) {
        return Redirect::to(home(&session)).into_response();
    }
    login_form(&headers, StatusCode::OK, None, &next.next)
}

/// The sign-in page with a fresh CSRF token (paired with this browser by a short-lived cookie).
fn login_form(
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    next: &str,
) -> Response {
    let (token, cookie) = session::login_token(headers);
    let next = return_path(next);
    let mut response = page(status, pages::login(&token, error, next));
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    tenant: String,
    key: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn login(
    State(state): State<Shared>,
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
            &form.next,
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
            &form.next,
        );
    }
    let tenant = form.tenant.trim().to_owned();
    match state.authority.authenticate(&tenant, form.key.trim()) {
        Ok(principal) if matches!(principal.role, Role::Operator | Role::Admin) => {
            // An operator returns to the page that sent them here (a notification's link); an admin has one page.
            let landing = match principal.role {
                Role::Admin => "/ui/keys",
                Role::Agent | Role::Operator => return_path(&form.next).unwrap_or("/ui/inbox"),
            }
            .to_owned();
            let started = state
                .sessions
                .start(
                    &state.authority,
                    &principal,
                    state.limits.max_sessions_per_tenant,
                )
                .await;
            let token = match started {
                Ok(Some(token)) => token,
                Ok(None) => {
                    return login_form(
                        &headers,
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some("The console holds as many sessions as it can; try again later."),
                        &form.next,
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "console sign-in could not store its session");
                    return login_form(
                        &headers,
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some("The authority cannot start a session right now; try again shortly."),
                        &form.next,
                    );
                }
            };
            let mut response = Redirect::to(&landing).into_response();
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
                &form.next,
            )
        }
        Err(error) => {
            tracing::warn!(%error, "console sign-in could not check the key");
            login_form(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The authority cannot check keys right now; try again shortly."),
                &form.next,
            )
        }
    }
}

pub(crate) async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    CsrfForm(session, _form): CsrfForm<TokenForm>,
) -> Response {
    state
        .sessions
        .end(&headers, &state.authority, &session.principal.tenant)
        .await;
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
