//! `subscribe_approvals`: approval decisions as a `Stream`, resumable and deduplicated.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use rand::Rng;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::answers::ApprovalDecision;
use crate::client::HaltStateClient;
use crate::error::GuardError;
use crate::transport::Transport;
use crate::transport::http::{Endpoint, decision_from, encode_segment};

/// How long a stream may stay silent (no event, no heartbeat comment) before it is treated as dead.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const RECONNECT_BASE: Duration = Duration::from_millis(200);
const RECONNECT_CAP: Duration = Duration::from_secs(10);
const DEDUP_WINDOW: usize = 10_000;

/// Approval decisions as they happen. Ends only when the authority refuses the credentials; connection
/// trouble is retried with jittered backoff, resuming after the newest decision seen.
#[derive(Debug)]
pub struct ApprovalStream {
    receiver: mpsc::Receiver<Result<ApprovalDecision, GuardError>>,
}

impl Stream for ApprovalStream {
    type Item = Result<ApprovalDecision, GuardError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

/// Remembers recently delivered ids so a replay after reconnecting is not delivered twice.
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    fn new() -> Self {
        Self {
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// `true` the first time `id` (at this status) is offered.
    fn first(&mut self, id: String) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

impl HaltStateClient {
    /// Subscribes to approval decisions of this tenant after `last_seen` (or from now).
    pub fn subscribe_approvals(&self, last_seen: Option<OffsetDateTime>) -> ApprovalStream {
        let (sender, receiver) = mpsc::channel(64);
        if let Some(runtime) = &self.inner.runtime {
            let client = self.clone();
            runtime.spawn(async move {
                let cursor = last_seen.unwrap_or_else(OffsetDateTime::now_utc);
                match &client.inner.transport {
                    Transport::Http(_) => follow_sse(client, cursor, sender).await,
                    #[cfg(feature = "embedded")]
                    Transport::Embedded(_) => follow_cursor(client, cursor, sender).await,
                }
            });
        }
        ApprovalStream { receiver }
    }
}

fn reconnect_delay(failures: u32) -> Duration {
    let ceiling = RECONNECT_BASE
        .saturating_mul(1u32 << failures.min(16))
        .min(RECONNECT_CAP);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::rng().random_range(micros / 2..=micros))
}

// Without the `embedded` feature HTTP is the only transport, and the `let .. else` below is irrefutable.
#[allow(irrefutable_let_patterns)]
async fn follow_sse(
    client: HaltStateClient,
    mut cursor: OffsetDateTime,
    sender: mpsc::Sender<Result<ApprovalDecision, GuardError>>,
) {
    let Transport::Http(http) = &client.inner.transport else {
        return;
    };
    let mut seen = Seen::new();
    let mut failures = 0u32;
    loop {
        if sender.is_closed() {
            return;
        }
        // B11: the query is rebuilt from the newest decision on every connection.
        let last_seen = cursor
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let url = http.url(
            Endpoint::Stream,
            &format!(
                "approvals/stream?tenant_id={}&last_seen={}",
                encode_segment(&http.settings().tenant),
                encode_segment(&last_seen)
            ),
        );
        let request = http
            .http()
            .get(&url)
            .header("X-Tenant-Id", &http.settings().tenant)
            .header("X-API-Key", &http.settings().api_key)
            .header("Accept", "text/event-stream")
            // The stream lives longer than any request timeout; idleness is watched below instead.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        let connected = tokio::select! {
            () = sender.closed() => return,
            response = request.send() => response,
        };
        match connected {
            Ok(response) if response.status().is_success() => {
                failures = 0;
                if read_events(response, &mut cursor, &mut seen, &sender)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => {
                // B13: surfaced, not a silent exit.
                let _ = sender
                    .send(Err(GuardError::Auth(format!(
                        "approvals stream refused: {}",
                        response.status()
                    ))))
                    .await;
                return;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "approvals stream refused; reconnecting")
            }
            Err(error) => {
                tracing::warn!(%error, "approvals stream connection failed; reconnecting")
            }
        }
        failures += 1;
        tokio::select! {
            () = sender.closed() => return,
            () = tokio::time::sleep(reconnect_delay(failures)) => {}
        }
    }
}

/// Reads one connection's events; `Err` when the subscriber is gone.
async fn read_events(
    mut response: reqwest::Response,
    cursor: &mut OffsetDateTime,
    seen: &mut Seen,
    sender: &mpsc::Sender<Result<ApprovalDecision, GuardError>>,
) -> Result<(), ()> {
    let mut buffer = String::new();
    loop {
        let chunk = tokio::select! {
            () = sender.closed() => return Err(()),
            chunk = tokio::time::timeout(STREAM_IDLE_TIMEOUT, response.chunk()) => chunk,
        };
        let bytes = match chunk {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "approvals stream broke");
                return Ok(());
            }
            Err(_) => {
                tracing::warn!("approvals stream idle past {STREAM_IDLE_TIMEOUT:?}; reconnecting");
                return Ok(());
            }
        };
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            if let Some(event) = parse_line(line.trim_end_matches(['\r', '\n'])) {
                deliver(event, cursor, seen, sender).await?;
            }
        }
    }
}

pub(crate) fn parse_line_for_fuzzing(line: &str) -> bool {
    parse_line(line).is_some()
}

/// One SSE line: a `data:` line carrying one JSON object; comments, `event:`, `id:`, `retry:` are ignored.
fn parse_line(line: &str) -> Option<Result<ApprovalDecision, GuardError>> {
    let data = line.strip_prefix("data:")?.trim_start();
    let Ok(value) = serde_json::from_str::<Value>(data) else {
        tracing::warn!("approvals stream sent a line that is not JSON; skipped");
        return None;
    };
    match value.get("type").and_then(Value::as_str) {
        Some("APPROVAL_DECISION") => {
            let decision = decision_from(
                &value,
                "",
                value
                    .get("catchup")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            );
            (!decision.request_id.is_empty()).then_some(Ok(decision))
        }
        Some("ERROR") => {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            Some(Err(GuardError::Protocol(format!(
                "approvals stream error: {message}"
            ))))
        }
        // CONNECTED and types this client does not know (B12: skipped, never fatal).
        _ => None,
    }
}

async fn deliver(
    event: Result<ApprovalDecision, GuardError>,
    cursor: &mut OffsetDateTime,
    seen: &mut Seen,
    sender: &mpsc::Sender<Result<ApprovalDecision, GuardError>>,
) -> Result<(), ()> {
    if let Ok(decision) = &event {
        let identity = format!("{}:{:?}", decision.request_id, decision.status);
        if !seen.first(identity) {
            return Ok(());
        }
        if let Some(at) = decision.decided_at {
            *cursor = (*cursor).max(at);
        }
    }
    sender.send(event).await.map_err(drop)
}

/// The embedded authority: catch up from the database cursor, then wake on every committed decision.
#[cfg(feature = "embedded")]
async fn follow_cursor(
    client: HaltStateClient,
    mut cursor: OffsetDateTime,
    sender: mpsc::Sender<Result<ApprovalDecision, GuardError>>,
) {
    let Transport::Embedded(embedded) = &client.inner.transport else {
        return;
    };
    let mut wake = embedded.authority.subscribe();
    let mut seen = Seen::new();
    loop {
        match embedded.approvals_since(cursor - Duration::from_micros(1), 500) {
            Ok(decisions) => {
                for decision in decisions {
                    if deliver(Ok(decision), &mut cursor, &mut seen, &sender)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Err(error) => {
                if sender.send(Err(error)).await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            () = sender.closed() => return,
            _ = wake.recv() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_lines_parse_forgivingly() {
        assert!(parse_line(": heartbeat").is_none());
        assert!(parse_line("event: message").is_none());
        assert!(parse_line(r#"data: {"type":"CONNECTED"}"#).is_none());
        assert!(parse_line("data: not json").is_none());
        let unknown = parse_line(
            r#"data: {"type":"APPROVAL_DECISION","request_id":"apr_1","status":"quarantined"}"#,
        );
        let decision = unknown.unwrap().unwrap();
        assert_eq!(
            decision.status,
            crate::ApprovalStatus::Unknown("quarantined".into())
        );
        assert!(matches!(
            parse_line(r#"data:{"type":"ERROR","message":"x"}"#),
            Some(Err(GuardError::Protocol(_)))
        ));
    }

    #[test]
    fn dedup_forgets_only_past_its_window() {
        let mut seen = Seen::new();
        assert!(seen.first("a".into()));
        assert!(!seen.first("a".into()));
        for i in 0..DEDUP_WINDOW {
            seen.first(i.to_string());
        }
        assert!(seen.first("a".into()));
    }
}
