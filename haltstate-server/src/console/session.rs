//! Console sessions: an operator key, presented once at sign-in, exchanged for a random session token in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request came over TLS), with a CSRF token for its forms.
//!
//! Sessions live in this process's memory under the SHA-256 of their token (never the token, never the key). A
//! session ends at sign-out, after [`SESSION_TTL`], or as soon as its key is revoked (checked on every request).
//! With several instances behind a load balancer, a console session belongs to the instance that created it
//! (route `/ui` with session affinity).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use haltstate_authority::Authority;
use haltstate_types::Principal;

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// The cookie's name.
pub(crate) const COOKIE: &str = "haltstate_session";
/// Sessions kept at most, over all tenants; past it, sign-in is refused (never another tenant's session ended).
const CAPACITY: usize = 10_000;

/// A signed-in operator.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    expires: Instant,
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

/// The process's console sessions.
#[derive(Default)]
pub(crate) struct Sessions {
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_token_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session for `principal`; answers its token (for the cookie). Past `per_tenant` sessions of its
    /// tenant, that tenant's oldest ends: one tenant's sign-ins never end another's sessions. `None` when the
    /// process holds [`CAPACITY`] sessions of other tenants.
    pub(crate) fn start(&self, principal: Principal, per_tenant: usize) -> Option<String> {
        let token = random_token();
        let now = Instant::now();
        let mut sessions = self.locked();
        sessions.retain(|_, s| s.expires > now);
        let tenant = principal.tenant.clone();
        let mut own: Vec<([u8; 32], Instant)> = sessions
            .iter()
            .filter(|(_, s)| s.principal.tenant == tenant)
            .map(|(k, s)| (*k, s.expires))
            .collect();
        if own.len() >= per_tenant.max(1) {
            own.sort_by_key(|(_, expires)| *expires);
            for (hash, _) in &own[..=own.len() - per_tenant.max(1)] {
                sessions.remove(hash);
            }
        }
        if sessions.len() >= CAPACITY {
            return None;
        }
        sessions.insert(
            token_hash(&token),
            Session {
                principal,
                csrf: random_token(),
                expires: now + SESSION_TTL,
            },
        );
        Some(token)
    }

    /// The live session the request's cookie names, if its key is still live; a session whose key was revoked
    /// ends here.
    pub(crate) fn find(&self, headers: &HeaderMap, authority: &Authority) -> Option<Session> {
        let token = cookie(headers)?;
        let hash = token_hash(&token);
        let session = {
            let sessions = self.locked();
            sessions.get(&hash).cloned()
        }?;
        let live = session.expires > Instant::now()
            && authority
                .key(&session.principal.tenant, &session.principal.key_id)
                .is_ok_and(|key| key.revoked_at.is_none());
        if live {
            Some(session)
        } else {
            self.locked().remove(&hash);
            None
        }
    }

    /// Ends the session the request's cookie names.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers) {
            self.locked().remove(&token_hash(&token));
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
