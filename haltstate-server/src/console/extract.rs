//! What every console handler starts from, taken as extractors the way the API takes its key: the signed-in
//! [`Session`] (its tenant scopes everything the handler reads; without one the request goes to the sign-in
//! page), and a posted form whose CSRF token is that session's ([`CsrfForm`]; otherwise a 403 page, and the
//! handler never runs).

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::session::Session;
use super::{csrf_refused, to_login, to_login_then};
use crate::state::Shared;

impl FromRequestParts<Shared> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        // Found (and its role checked) by the `roles` layer every console route runs behind.
        let found = parts.extensions.get::<Session>().cloned();
        let found = found.or_else(|| state.sessions.find(&parts.headers, &state.authority));
        let Some(mut session) = found else {
            return Err(if parts.method == axum::http::Method::GET {
                // The router is nested under `/ui`: the request's own URI lost that prefix.
                let original = parts
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or(&parts.uri, |original| &original.0);
                to_login_then(original.path_and_query().map_or("", |p| p.as_str()))
            } else {
                to_login()
            });
        };
        // Shown on every page; the count stops where the authority's cap on waiting approvals does.
        let cap =
            u64::try_from(state.authority.max_pending_approvals_per_tenant()).unwrap_or(u64::MAX);
        session.pending = state
            .authority
            .pending_count(&session.principal.tenant, cap)
            .ok();
        Ok(session)
    }
}

/// A form that carries the CSRF token of the page it was posted from.
pub(crate) trait CsrfToken {
    /// The token it carries (empty when it carried none).
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfToken`] for forms whose `csrf` field holds the token.
macro_rules! csrf_field {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::console::extract::CsrfToken for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_field;

/// A form posted from one of this session's pages: the session, then the form, once its token matched.
pub(crate) struct CsrfForm<T>(pub(crate) Session, pub(crate) T);

impl<T> FromRequest<Shared> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !session.csrf_matches(form.csrf()) {
            return Err(csrf_refused(&session));
        }
        Ok(CsrfForm(session, form))
    }
}
