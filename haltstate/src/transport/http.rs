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

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::{CheckReportOut, GuardReply, GuardStatus, OutcomeOut, Outgoing};
use crate::answers::{ApprovalDecision, ApprovalStatus, CheckResult, Decision};
use crate::error::GuardError;
use crate::kill_switch::KillState;

const CANONICAL: &str = "/api/haltstate/sentinel";
const LEGACY: &str = "/api/sentinel";
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
    /// `X-Tenant-Id` and `X-API-Key`, checked once when the client is built; the key is marked sensitive so
    /// that no `Debug` output of a request shows it.
    tenant_header: HeaderValue,
    key_header: HeaderValue,
}

const X_TENANT_ID: HeaderName = HeaderName::from_static("x-tenant-id");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// An HTTP answer: status, JSON body (Null when there is none), and `Retry-After`.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
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
            tenant_header,
            key_header,
        })
    }

    pub(crate) fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of `endpoint` + `suffix` under the remembered (or first-choice) prefix.
    pub(crate) fn url(&self, endpoint: Endpoint, suffix: &str) -> String {
        let prefix = if self.routes[endpoint as usize].load(Ordering::Relaxed) == 2 {
            LEGACY
        } else {
            CANONICAL
        };
        format!("{}{prefix}/{suffix}", self.settings.base_url)
    }

    /// One operation: route fallback, retries with backoff, all within the deadline.
    pub(crate) async fn send(
        &self,
        endpoint: Endpoint,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
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

    async fn attempt(
        &self,
        endpoint: Endpoint,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
    ) -> Result<Answer, GuardError> {
        let slot = &self.routes[endpoint as usize];
        let candidates: &[(&str, u8)] = match slot.load(Ordering::Relaxed) {
            1 => &[(CANONICAL, 1)],
            2 => &[(LEGACY, 2)],
            _ => &[(CANONICAL, 1), (LEGACY, 2)],
        };
        let mut last = None;
        for &(prefix, choice) in candidates {
            let url = format!("{}{prefix}/{suffix}", self.settings.base_url);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(X_TENANT_ID, self.tenant_header.clone())
                .header(X_API_KEY, self.key_header.clone());
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
            let text = response
                .text()
                .await
                .map_err(|e| GuardError::Connection(describe(&e)))?;
            let body: Value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            let route_missing = matches!(status.as_u16(), 404 | 405)
                && body
                    .get("code")
                    .and_then(Value::as_str)
                    .is_none_or(|code| code == "not_found" || code == "method_not_allowed");
            if !route_missing {
                if slot.load(Ordering::Relaxed) == UNKNOWN {
                    slot.store(choice, Ordering::Relaxed);
                }
                return Ok(Answer {
                    status,
                    body,
                    retry_after,
                });
            }
            last = Some(Answer {
                status,
                body,
                retry_after,
            });
        }
        last.ok_or_else(|| GuardError::Protocol("no route candidates".into()))
    }

    pub(crate) async fn guard(&self, out: &Outgoing) -> Result<GuardReply, GuardError> {
        let key = out.idempotency_key.clone().unwrap_or_default();
        let body = json!({
            "agent_id": out.agent_id,
            "action": out.action,
            "params": out.params,
            "idempotency_key": key,
            "claim_token": out.claim_token,
            "resource": out.resource,
            "risk": out.risk,
            "metadata": out.metadata,
            "redacted_fields": out.redacted_fields,
        });
        let answer = self
            .send(Endpoint::Guard, Method::POST, "action/guard", Some(&body))
            .await?;
        let body = ok_body(answer, Some(&key))?;
        let status = match body.get("status").and_then(Value::as_str) {
            Some("allowed") => GuardStatus::Allowed,
            Some("approved") => GuardStatus::Approved,
            Some("denied" | "rejected") => GuardStatus::Denied,
            Some("pending") => GuardStatus::Pending,
            Some("expired") => GuardStatus::Expired,
            Some("completed") => GuardStatus::Completed,
            Some("in_progress") => GuardStatus::InProgress,
            other => {
                return Err(GuardError::Protocol(format!(
                    "unknown guard status {other:?}"
                )));
            }
        };
        Ok(GuardReply {
            status,
            reason: text(&body, "reason").unwrap_or_default(),
            policy_id: text(&body, "policy_id"),
            approval_id: text(&body, "approval_id"),
            approver: text(&body, "approver"),
            approved_at: timestamp(&body, "approved_at"),
            claim_token: text(&body, "claim_token"),
            kill_switch: text(&body, "kill_switch").map(|s| KillState::from_heartbeat(&s)),
        })
    }

    pub(crate) async fn report(&self, out: &OutcomeOut) -> Result<(), GuardError> {
        let body = json!({
            "idempotency_key": out.idempotency_key,
            "claim_token": out.claim_token,
            "action": out.action,
            "agent_id": out.agent_id,
            "outcome": out.outcome.as_str(),
            "error": out.error,
            "body_latency_us": u64::try_from(out.body_latency.as_micros()).unwrap_or(u64::MAX),
            "resource_refs": out.resource_refs,
            "redacted_fields": out.redacted_fields,
            "proof_status": out.proof_status.as_str(),
            "usage": out.usage.as_ref().map(|u| json!({
                "model": u.model,
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "total_tokens": u.total_tokens,
            })),
        });
        let answer = self
            .send(
                Endpoint::GuardReport,
                Method::POST,
                "action/guard/report",
                Some(&body),
            )
            .await?;
        ok_body(answer, Some(&out.idempotency_key)).map(drop)
    }

    pub(crate) async fn check(&self, out: &Outgoing) -> Result<CheckResult, GuardError> {
        let body = json!({
            "agent_id": out.agent_id,
            "action": out.action,
            "params": out.params,
            "request_id": out.request_id,
            "resource": out.resource,
            "risk": out.risk,
            "metadata": out.metadata,
            "redacted_fields": out.redacted_fields,
        });
        let answer = self
            .send(Endpoint::Check, Method::POST, "action/check", Some(&body))
            .await?;
        let body = ok_body(answer, None)?;
        let (decision, reason) = match body.get("decision").and_then(Value::as_str) {
            Some("ALLOW") => (Decision::Allow, text(&body, "reason").unwrap_or_default()),
            Some("DENY") => (Decision::Deny, text(&body, "reason").unwrap_or_default()),
            Some("APPROVAL_REQUIRED") => (
                Decision::ApprovalRequired,
                text(&body, "reason").unwrap_or_default(),
            ),
            // B18: a decision we do not know is a denial, never a crash and never an allow.
            other => (
                Decision::Deny,
                format!("unrecognised decision {other:?}; denied (fail closed)"),
            ),
        };
        Ok(CheckResult {
            decision,
            reason,
            policy_id: text(&body, "policy_id"),
            approval_id: text(&body, "approval_id")
                .filter(|_| decision == Decision::ApprovalRequired),
            request_id: text(&body, "request_id")
                .or_else(|| out.request_id.clone())
                .unwrap_or_default(),
            action: out.action.clone(),
            agent_id: out.agent_id.clone(),
            latency: Duration::from_millis(
                body.get("latency_ms").and_then(Value::as_u64).unwrap_or(0),
            ),
        })
    }

    pub(crate) async fn report_check(&self, out: &CheckReportOut) -> Result<(), GuardError> {
        let body = json!({
            "request_id": out.request_id,
            "agent_id": out.agent_id,
            "action": out.action,
            "status": out.status,
            "decision": out.decision,
            "policy_id": out.policy_id,
            "result": out.error.as_ref().map(|e| json!({ "error": e })),
        });
        let answer = self
            .send(Endpoint::Report, Method::POST, "action/report", Some(&body))
            .await?;
        ok_body(answer, None).map(drop)
    }

    pub(crate) async fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        let suffix = format!("approval/{}", encode_segment(id));
        let answer = self
            .send(Endpoint::Approval, Method::GET, &suffix, None)
            .await?;
        let body = ok_body(answer, None)?;
        Ok(decision_from(&body, id, false))
    }

    pub(crate) async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let suffix = format!(
            "approvals/since?tenant_id={}&since={}&limit={}",
            encode_segment(&self.settings.tenant),
            encode_segment(&since),
            limit.clamp(1, 500)
        );
        let answer = self
            .send(Endpoint::Since, Method::GET, &suffix, None)
            .await?;
        let body = ok_body(answer, None)?;
        let items = body
            .get("decisions")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                GuardError::Protocol("approvals/since answered without `decisions`".into())
            })?;
        Ok(items
            .iter()
            .map(|item| decision_from(item, "", true))
            .filter(|d| !d.request_id.is_empty())
            .collect())
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &crate::spool::SpooledEvidence,
    ) -> Result<(), GuardError> {
        let body = serde_json::to_value(evidence).map_err(|e| GuardError::Spool(e.to_string()))?;
        let answer = self
            .send(
                Endpoint::Unverified,
                Method::POST,
                "action/guard/unverified",
                Some(&body),
            )
            .await?;
        ok_body(answer, None).map(drop)
    }

    pub(crate) async fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        let suffix = format!("heartbeat?agent_id={}", encode_segment(agent_id));
        let answer = self
            .send(Endpoint::Heartbeat, Method::GET, &suffix, None)
            .await?;
        let body = ok_body(answer, None)?;
        let status = body
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| GuardError::Protocol("heartbeat answered without `status`".into()))?;
        Ok(KillState::from_heartbeat(status))
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

/// A 2xx body, or the typed error for the status.
pub(crate) fn ok_body(answer: Answer, key: Option<&str>) -> Result<Value, GuardError> {
    let status = answer.status.as_u16();
    if answer.status.is_success() {
        return match answer.body {
            Value::Object(_) => Ok(answer.body),
            other => Err(GuardError::Protocol(format!(
                "expected a JSON object, got {other}"
            ))),
        };
    }
    let code = answer
        .body
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let detail = match &answer.body {
        Value::Object(map) => map
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Value::String(text) => text.chars().take(200).collect(),
        _ => String::new(),
    };
    Err(match status {
        300..=399 => GuardError::Protocol(format!("unexpected redirect ({status})")),
        401 | 403 => GuardError::Auth(if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            detail
        }),
        409 if code == "idempotency_conflict" => GuardError::IdempotencyConflict {
            idempotency_key: key.unwrap_or_default().to_owned(),
        },
        429 => GuardError::RateLimited {
            retry_after: answer.retry_after,
        },
        500..=599 => GuardError::Connection(format!("the authority failed ({status}): {detail}")),
        _ => GuardError::Rejected {
            status,
            code,
            detail,
        },
    })
}

fn text(body: &Value, field: &str) -> Option<String> {
    body.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn timestamp(body: &Value, field: &str) -> Option<OffsetDateTime> {
    body.get(field)
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}

pub(crate) fn decision_from(body: &Value, id: &str, is_catchup: bool) -> ApprovalDecision {
    ApprovalDecision {
        request_id: text(body, "request_id").unwrap_or_else(|| id.to_owned()),
        status: ApprovalStatus::parse(body.get("status").and_then(Value::as_str).unwrap_or("")),
        approver: text(body, "approver"),
        reason: text(body, "reason"),
        agent_id: text(body, "agent_id"),
        action: text(body, "action"),
        decided_at: timestamp(body, "decided_at").or_else(|| timestamp(body, "timestamp")),
        is_catchup,
    }
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
