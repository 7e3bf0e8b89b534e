//! E7 over HTTP: the approvals stream (SSE), with the same route choice as every other endpoint (canonical,
//! then legacy, remembered), reconnecting with jittered backoff and resuming after the newest decision seen.

use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use time::OffsetDateTime;

use super::lines::{Lines, MAX_LINE};
use super::{Endpoint, HttpTransport, encode_segment, ok_body};
use crate::error::GuardError;
use crate::transport::DecisionSender;
use crate::transport::cursor::{Cursor, STREAM_IDLE_TIMEOUT, parse_line};
use haltstate_types::wire::paths;

const RECONNECT_BASE: Duration = Duration::from_millis(200);
const RECONNECT_CAP: Duration = Duration::from_secs(10);

fn reconnect_delay(failures: u32) -> Duration {
    let ceiling = RECONNECT_BASE
        .saturating_mul(1u32 << failures.min(16))
        .min(RECONNECT_CAP);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::rng().random_range(micros / 2..=micros))
}

/// How one connection ended.
enum Ended {
    /// Reconnect.
    Retry,
    /// Stop: the subscriber left, or the credentials were refused (already told).
    Stop,
}

impl HttpTransport {
    /// Opens the stream after `last_seen` under the first prefix that has the route.
    async fn open_stream(
        &self,
        last_seen: OffsetDateTime,
    ) -> Result<reqwest::Response, GuardError> {
        // B11: the query is rebuilt from the newest decision on every connection.
        let last_seen = last_seen
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| GuardError::Config(format!("last_seen: {e}")))?;
        let suffix = format!(
            "{}?tenant_id={}&last_seen={}",
            paths::APPROVALS_STREAM,
            encode_segment(&self.settings.tenant),
            encode_segment(&last_seen)
        );
        let mut refused = None;
        for &(prefix, choice) in self.candidates(Endpoint::Stream) {
            let response = self
                .request(Method::GET, Endpoint::Stream, (prefix, choice), &suffix)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                // The stream lives longer than any request timeout; idleness is watched while reading.
                .timeout(Duration::from_secs(365 * 24 * 3600))
                .send()
                .await
                .map_err(|e| GuardError::Connection(super::describe(&e)))?;
            if response.status().is_success() {
                self.remember(Endpoint::Stream, choice);
                return Ok(response);
            }
            let status = response.status();
            let retry_after = None;
            let body = response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            let answer = super::Answer {
                status,
                body,
                retry_after,
            };
            if !answer.route_missing() {
                self.remember(Endpoint::Stream, choice);
                return Err(ok_body::<serde_json::Value>(answer, None)
                    .err()
                    .unwrap_or_else(|| {
                        GuardError::Protocol(format!("approvals stream answered {status}"))
                    }));
            }
            refused = Some(answer);
        }
        Err(match refused {
            Some(answer) => ok_body::<serde_json::Value>(answer, None)
                .err()
                .unwrap_or_else(|| GuardError::Protocol("no approvals stream route".into())),
            None => GuardError::Protocol("no route candidates".into()),
        })
    }

    pub(crate) async fn follow_approvals(&self, cursor: OffsetDateTime, sender: DecisionSender) {
        let mut cursor = Cursor::new(cursor);
        let mut failures = 0u32;
        loop {
            if sender.is_closed() {
                return;
            }
            let opened = tokio::select! {
                () = sender.closed() => return,
                opened = self.open_stream(cursor.position()) => opened,
            };
            let ended = match opened {
                Ok(response) => {
                    failures = 0;
                    read_events(response, &mut cursor, &sender).await
                }
                Err(
                    error @ (GuardError::Auth(_)
                    | GuardError::Rejected { .. }
                    | GuardError::NotFound { .. }),
                ) => {
                    // B13: surfaced, not a silent exit; no retry would be let in.
                    let _ = sender.send(Err(error)).await;
                    Ended::Stop
                }
                Err(error) => {
                    tracing::warn!(%error, "approvals stream connection failed; reconnecting");
                    Ended::Retry
                }
            };
            if let Ended::Stop = ended {
                return;
            }
            failures += 1;
            tokio::select! {
                () = sender.closed() => return,
                () = tokio::time::sleep(reconnect_delay(failures)) => {}
            }
        }
    }
}

/// Reads one connection's events until it ends.
async fn read_events(
    mut response: reqwest::Response,
    cursor: &mut Cursor,
    sender: &DecisionSender,
) -> Ended {
    let mut lines = Lines::default();
    loop {
        let chunk = tokio::select! {
            () = sender.closed() => return Ended::Stop,
            chunk = tokio::time::timeout(STREAM_IDLE_TIMEOUT, response.chunk()) => chunk,
        };
        let bytes = match chunk {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => return Ended::Retry,
            Ok(Err(error)) => {
                tracing::debug!(%error, "approvals stream broke");
                return Ended::Retry;
            }
            Err(_) => {
                tracing::warn!("approvals stream idle past {STREAM_IDLE_TIMEOUT:?}; reconnecting");
                return Ended::Retry;
            }
        };
        let Ok(complete) = lines.push(&bytes) else {
            tracing::warn!(
                "approvals stream sent a line longer than {MAX_LINE} bytes; reconnecting"
            );
            return Ended::Retry;
        };
        for line in complete {
            if let Some(event) = parse_line(&line)
                && cursor.deliver(event, sender).await.is_err()
            {
                return Ended::Stop;
            }
        }
    }
}
