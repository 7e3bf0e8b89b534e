//! The HaltState wire contract over HTTP, without the official SDKs' defects (WIRE.md section 5).
//!
//! - B3/B4: full-jitter exponential backoff on connect errors, 429 (honouring `Retry-After`), 502, 503 and 504,
//!   all within one total deadline per operation, plus a per-request timeout.
//! - B17: the canonical-or-legacy route choice is remembered per endpoint template (not per URL), and a
//!   business 404 (an unknown approval) never triggers a second request.
//! - B18/B19: answers the client does not understand fail closed (`Protocol`, or DENY for a check);
//!   `rejected` reads as denied.
//! - B20: absent fields stay absent; nothing is filled from the client clock.
//! - B23/B25: only `X-Tenant-Id` and `X-API-Key` are sent (no `X-Admin-Token`); path segments are
//!   percent-encoded.

mod calls;
mod lines;
mod stream;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use haltstate_types::wire::ErrorBody;
use haltstate_types::wire::paths::{self, CANONICAL, LEGACY};
use haltstate_types::{ErrorCode, Lenient};
use rand::Rng;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::GuardError;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The endpoints, each with its own remembered route.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Endpoint {
    Check = 0,
    Guard = 1,
    GuardReport = 2,
    Report = 3,
    Approval = 4,
    Since = 5,
    Stream = 6,
    Heartbeat = 7,
    Unverified = 8,
}

impl Endpoint {
    /// The path after the route prefix, for the endpoints that always use the same one.
    fn fixed_path(self) -> Option<&'static str> {
        match self {
            Endpoint::Check => Some(paths::CHECK),
            Endpoint::Guard => Some(paths::GUARD),
            Endpoint::GuardReport => Some(paths::GUARD_REPORT),
            Endpoint::Report => Some(paths::REPORT),
            Endpoint::Unverified => Some(paths::GUARD_UNVERIFIED),
            Endpoint::Heartbeat => Some(paths::HEARTBEAT),
            Endpoint::Approval | Endpoint::Since | Endpoint::Stream => None,
        }
    }
}

/// Route memory: 0 = not yet known, 1 = canonical, 2 = legacy.
const UNKNOWN: u8 = 0;

/// Settings of the HTTP transport.
#[derive(Clone)]
pub(crate) struct HttpSettings {
    pub(crate) base_url: String,
    pub(crate) tenant: String,
    pub(crate) api_key: String,
    pub(crate) request_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) max_retries: u32,
    pub(crate) user_agent: String,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("base_url", &self.base_url)
            .field("tenant", &self.tenant)
            .field("api_key", &crate::redact::REDACTED)
            .field("request_timeout", &self.request_timeout)
            .field("deadline", &self.deadline)
            .field("max_retries", &self.max_retries)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

#[derive(Debug)]
pub(crate) struct HttpTransport {
    settings: HttpSettings,
    http: reqwest::Client,
    routes: [AtomicU8; 9],
    /// Per endpoint with a fixed path, its URL under each route prefix, parsed at its first use: given text,
    /// reqwest parses the whole URL (the host through IDNA) at every request, 4% of a guarded action's CPU in
    /// the client. `None` for a URL that does not parse: its requests pass the text, and reqwest says why.
    urls: [[OnceLock<Option<reqwest::Url>>; 2]; 9],
    /// `X-Tenant-Id` and `X-API-Key`, checked once when the client is built; the key is marked sensitive so
    /// that no `Debug` output of a request shows it.
    tenant_header: HeaderValue,
    key_header: HeaderValue,
}

const X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// An HTTP answer: status, body, and `Retry-After`.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl HttpTransport {
    pub(crate) fn new(settings: HttpSettings) -> Result<Self, GuardError> {
        if settings.base_url.starts_with("https://") && !cfg!(feature = "tls") {
            return Err(GuardError::Config(format!(
                "{} needs TLS: enable the `tls` feature of the haltstate crate",
                settings.base_url
            )));
        }
        if !settings.base_url.starts_with("http://") && !settings.base_url.starts_with("https://") {
            return Err(GuardError::Config(format!(
                "base URL {:?} must start with http:// or https://",
                settings.base_url
            )));
        }
        let tenant_header = HeaderValue::from_str(&settings.tenant).map_err(|_| {
            GuardError::Config(format!(
                "the tenant id {:?} has characters an HTTP header cannot carry",
                settings.tenant
            ))
        })?;
        let mut key_header = HeaderValue::from_str(&settings.api_key).map_err(|_| {
            GuardError::Config("the API key has characters an HTTP header cannot carry".into())
        })?;
        key_header.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            // A 3xx is never part of the contract; surface it instead of following it.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| GuardError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            settings,
            http,
            routes: Default::default(),
            urls: Default::default(),
            tenant_header,
            key_header,
        })
    }

    /// The prefixes to try for `endpoint`: the remembered one, or canonical then legacy.
    fn candidates(&self, endpoint: Endpoint) -> &'static [(&'static str, u8)] {
        match self.routes[endpoint as usize].load(Ordering::Relaxed) {
            1 => &[(CANONICAL, 1)],
            2 => &[(LEGACY, 2)],
            _ => &[(CANONICAL, 1), (LEGACY, 2)],
        }
    }

    /// Remembers the prefix that answered `endpoint`.
    fn remember(&self, endpoint: Endpoint, choice: u8) {
        let slot = &self.routes[endpoint as usize];
        if slot.load(Ordering::Relaxed) == UNKNOWN {
            slot.store(choice, Ordering::Relaxed);
        }
    }

    /// A request to `prefix/suffix` (route `choice`) of `endpoint`, with this client's credentials.
    fn request(
        &self,
        method: Method,
        endpoint: Endpoint,
        (prefix, choice): (&str, u8),
        suffix: &str,
    ) -> reqwest::RequestBuilder {
        let text = || format!("{}{prefix}/{suffix}", self.settings.base_url);
        let parsed = (endpoint.fixed_path() == Some(suffix))
            .then(|| self.urls[endpoint as usize].get(usize::from(choice).wrapping_sub(1)))
            .flatten()
            .and_then(|slot| {
                slot.get_or_init(|| reqwest::Url::parse(&text()).ok())
                    .clone()
            });
        let request = match parsed {
            Some(url) => self.http.request(method, url),
            None => self.http.request(method, text()),
        };
        request
            .header(X_TENANT_ID, self.tenant_header.clone())
            .header(X_API_KEY, self.key_header.clone())
    }

    /// One operation: route fallback, retries with backoff, all within the deadline.
    pub(crate) async fn send<B: Serialize + ?Sized>(
        &self,
        endpoint: Endpoint,
        method: Method,
        suffix: &str,
        body: Option<&B>,
    ) -> Result<Answer, GuardError> {
        let deadline = Instant::now() + self.settings.deadline;
        let mut attempt: u32 = 0;
        loop {
            let Ok(outcome) = tokio::time::timeout_at(
                deadline,
                self.attempt(endpoint, method.clone(), suffix, body),
            )
            .await
            else {
                return Err(GuardError::Connection(format!(
                    "no answer within the {:?} deadline",
                    self.settings.deadline
                )));
            };
            // Only answers that say "try again" are retried; every request here is safe to repeat (guards carry
            // their key and claim token, checks their request id, reports their claim token).
            let wait = match &outcome {
                Ok(answer) if matches!(answer.status.as_u16(), 429 | 502..=504) => {
                    answer.retry_after.unwrap_or_else(|| backoff(attempt))
                }
                Err(GuardError::Connection(_)) => backoff(attempt),
                _ => return outcome,
            };
            if attempt >= self.settings.max_retries || Instant::now() + wait >= deadline {
                return outcome;
            }
            tracing::debug!(?endpoint, attempt, ?wait, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt<B: Serialize + ?Sized>(
        &self,
        endpoint: Endpoint,
        method: Method,
        suffix: &str,
        body: Option<&B>,
    ) -> Result<Answer, GuardError> {
        let mut last = None;
        for &(prefix, choice) in self.candidates(endpoint) {
            let mut request = self.request(method.clone(), endpoint, (prefix, choice), suffix);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| GuardError::Connection(describe(&e)))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response
                .bytes()
                .await
                .map_err(|e| GuardError::Connection(describe(&e)))?
                .to_vec();
            let answer = Answer {
                status,
                body,
                retry_after,
            };
            if !answer.route_missing() {
                self.remember(endpoint, choice);
                return Ok(answer);
            }
            last = Some(answer);
        }
        last.ok_or_else(|| GuardError::Protocol("no route candidates".into()))
    }
}

impl Answer {
    /// A 404 or 405 for a route this server does not have (as opposed to a thing it does not have): the next
    /// prefix may have it.
    fn route_missing(&self) -> bool {
        if !matches!(self.status.as_u16(), 404 | 405) {
            return false;
        }
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(body) => matches!(
                body.code,
                Lenient::Known(ErrorCode::NotFound | ErrorCode::MethodNotAllowed)
            ),
            // Not our error body: another server's plain 404.
            Err(_) => true,
        }
    }
}

/// Full jitter: a uniform wait in `[0, min(cap, base * 2^attempt)]`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::rng().random_range(0..=micros))
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// A 2xx body decoded as `T`, or the typed error for the status.
pub(crate) fn ok_body<T: DeserializeOwned>(
    answer: Answer,
    key: Option<&str>,
) -> Result<T, GuardError> {
    let status = answer.status.as_u16();
    if answer.status.is_success() {
        return serde_json::from_slice(&answer.body).map_err(|e| {
            GuardError::Protocol(format!("the authority's answer does not decode: {e}"))
        });
    }
    let (code, detail) = match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => (body.code, body.detail),
        Err(_) => (
            Lenient::Unknown(String::new()),
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(200)
                .collect(),
        ),
    };
    Err(match status {
        300..=399 => GuardError::Protocol(format!("unexpected redirect ({status})")),
        401 => GuardError::Auth(if detail.is_empty() {
            "the credentials were refused".into()
        } else {
            detail
        }),
        409 if code == Lenient::Known(ErrorCode::IdempotencyConflict) => {
            GuardError::IdempotencyConflict {
                idempotency_key: key.unwrap_or_default().to_owned(),
            }
        }
        429 => GuardError::RateLimited {
            retry_after: answer.retry_after,
        },
        404 => GuardError::NotFound { code, detail },
        500..=599 => GuardError::Connection(format!("the authority failed ({status}): {detail}")),
        _ => GuardError::Rejected { code, detail },
    })
}

/// Percent-encodes one path segment or query value (B25).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 0..20 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
        assert!(backoff(0) <= BACKOFF_BASE);
    }

    fn settings(tenant: &str, api_key: &str) -> HttpSettings {
        HttpSettings {
            base_url: "http://127.0.0.1:1".into(),
            tenant: tenant.into(),
            api_key: api_key.into(),
            request_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(1),
            max_retries: 0,
            user_agent: "test".into(),
        }
    }

    #[test]
    fn tenant_and_key_that_no_header_can_carry_are_config_errors_at_build() {
        assert!(HttpTransport::new(settings("acme", "hs_key")).is_ok());
        let Err(GuardError::Config(message)) = HttpTransport::new(settings("acme\n", "hs_key"))
        else {
            panic!("a tenant with a newline was accepted");
        };
        assert!(message.contains("tenant"), "{message}");
        let Err(GuardError::Config(message)) =
            HttpTransport::new(settings("acme", "hs_secret\r\nX-Evil: 1"))
        else {
            panic!("a key with CR LF was accepted");
        };
        assert!(
            !message.contains("hs_secret"),
            "the error shows the key: {message}"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("apr/1?x#y"), "apr%2F1%3Fx%23y");
        assert_eq!(
            encode_segment("2026-01-05T00:00:00+00:00"),
            "2026-01-05T00%3A00%3A00%2B00%3A00"
        );
    }
}
