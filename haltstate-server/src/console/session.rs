//! Console sessions: an operator key, presented once at sign-in, exchanged for a random session token in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request came over TLS); the forms' CSRF token is derived
//! from the session token, so nothing but the session's name needs keeping.
//!
//! Sessions are stored by the authority under the SHA-256 of their token (never the token, never the key), so every
//! instance on the same database knows every session: a load balancer needs no affinity. A session ends at
//! sign-out (on every instance), after [`SESSION_TTL`], or as soon as its key is revoked or rotated (checked on
//! every request).

use std::time::Duration;

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use haltstate_authority::{Authority, AuthorityError, SessionId, SessionLimits};
use haltstate_types::{Principal, Role};

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// The cookie's name.
pub(crate) const COOKIE: &str = "haltstate_session";
/// Sessions kept at most, over all tenants; past it, sign-in is refused (never another tenant's session ended).
const CAPACITY: usize = 10_000;

/// A signed-in operator (or admin).
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    /// How many approvals the tenant has waiting (for the navigation), when it could be read.
    pub(crate) pending: Option<u64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CSRF token is a secret of the session.
        f.debug_struct("Session")
            .field("tenant", &self.principal.tenant)
            .field("operator", &self.principal.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// The console's sessions, kept by the authority.
#[derive(Debug, Default)]
pub(crate) struct Sessions;

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The forms' token of the session whose token is `token`: only its holder can compute it, and it tells nothing
/// of the session token (a different digest than the stored name).
fn csrf_of(token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"haltstate console csrf\n");
    digest.update(token.as_bytes());
    hex::encode(digest.finalize())
}

impl Sessions {
    /// Starts a session for `principal`; answers its token (for the cookie). Past `per_tenant` sessions of its
    /// tenant, that tenant's oldest ends: one tenant's sign-ins never end another's sessions. `Ok(None)` when
    /// [`CAPACITY`] sessions are stored.
    pub(crate) async fn start(
        &self,
        authority: &Authority,
        principal: &Principal,
        per_tenant: usize,
    ) -> Result<Option<String>, AuthorityError> {
        let token = random_token();
        let limits = SessionLimits {
            per_tenant,
            total: CAPACITY,
        };
        let started = authority
            .start_console_session(principal, SessionId::of_token(&token), SESSION_TTL, limits)
            .await?;
        Ok(started.then_some(token))
    }

    /// The live session the request's cookie names, if its key is still live (read fresh: a revoked key, or one
    /// whose role changed, signs nobody in).
    pub(crate) fn find(&self, headers: &HeaderMap, authority: &Authority) -> Option<Session> {
        let token = cookie(headers)?;
        let stored = authority
            .console_session(&SessionId::of_token(&token))
            .inspect_err(|error| tracing::warn!(%error, "console session could not be read"))
            .ok()??;
        let key = authority.key(&stored.tenant, &stored.key_id).ok()?;
        if key.revoked_at.is_some() || !matches!(key.role, Role::Operator | Role::Admin) {
            return None;
        }
        Some(Session {
            principal: Principal {
                tenant: key.tenant,
                key_id: key.id,
                name: key.name,
                role: key.role,
                agents: key.agents,
                rate_limit: key.rate_limit,
            },
            csrf: csrf_of(&token),
            pending: None,
        })
    }

    /// Ends the session the request's cookie names (on every instance).
    pub(crate) async fn end(&self, headers: &HeaderMap, authority: &Authority, tenant: &str) {
        if let Some(token) = cookie(headers)
            && let Err(error) = authority
                .end_console_session(tenant, SessionId::of_token(&token))
                .await
        {
            tracing::warn!(%error, "console session could not be ended");
        }
    }
}

/// The session cookie's value, if the request carries one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    named_cookie(headers, COOKIE)
}

fn named_cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// Whether the request reached us over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that stores `token`.
pub(crate) fn set_cookie(token: &str, headers: &HeaderMap) -> String {
    format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if over_tls(headers) { "; Secure" } else { "" }
    )
}

/// The cookie that carries the sign-in form's CSRF token (before there is a session to hold one).
pub(crate) const LOGIN_COOKIE: &str = "haltstate_login";

/// A fresh token for the sign-in form, and the `Set-Cookie` value that pairs it with this browser.
pub(crate) fn login_token(headers: &HeaderMap) -> (String, String) {
    let token = random_token();
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=600{}",
        if over_tls(headers) { "; Secure" } else { "" }
    );
    (token, cookie)
}

/// Whether the sign-in form's token matches the one its cookie carries (compared in constant time).
pub(crate) fn login_token_matches(headers: &HeaderMap, presented: &str) -> bool {
    named_cookie(headers, LOGIN_COOKIE).is_some_and(|expected| {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    })
}

/// The `Set-Cookie` value that clears the cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}
