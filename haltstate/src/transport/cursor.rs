//! What every transport's approvals stream shares: where it resumes from and which decisions it already delivered
//! (a [`Cursor`]), how one SSE line decodes, and how long a stream may stay silent.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use haltstate_types::wire::{ApprovalDecision, StreamEvent};
use time::OffsetDateTime;

use crate::error::GuardError;
use crate::transport::DecisionSender;

/// How long a stream may stay silent (no event, no heartbeat comment) before it is treated as dead.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const DEDUP_WINDOW: usize = 10_000;

/// Where a stream resumes from, and which decisions it already delivered (a replay after reconnecting is not
/// delivered twice).
#[derive(Debug)]
pub(crate) struct Cursor {
    position: OffsetDateTime,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Cursor {
    pub(crate) fn new(position: OffsetDateTime) -> Self {
        Self {
            position,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// The newest decision time delivered (or the start).
    pub(crate) fn position(&self) -> OffsetDateTime {
        self.position
    }

    /// `true` the first time `identity` is offered.
    fn first(&mut self, identity: String) -> bool {
        if !self.seen.insert(identity.clone()) {
            return false;
        }
        self.order.push_back(identity);
        if self.order.len() > DEDUP_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    /// Delivers `event` unless it was delivered before; `Err` when the subscriber is gone.
    pub(crate) async fn deliver(
        &mut self,
        event: Result<ApprovalDecision, GuardError>,
        sender: &DecisionSender,
    ) -> Result<(), ()> {
        if let Ok(decision) = &event {
            if !self.first(format!("{}:{:?}", decision.request_id, decision.status)) {
                return Ok(());
            }
            if let Some(at) = decision.decided_at {
                self.position = self.position.max(at);
            }
        }
        sender.send(event).await.map_err(drop)
    }
}

/// One SSE line: a `data:` line carrying one JSON object; comments, `event:`, `id:`, `retry:` are ignored, and so
/// are event types this client does not know (B12: skipped, never fatal).
pub(crate) fn parse_line(line: &str) -> Option<Result<ApprovalDecision, GuardError>> {
    let data = line.strip_prefix("data:")?.trim_start();
    let event = match serde_json::from_str::<StreamEvent>(data) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "approvals stream sent a line that does not decode; skipped");
            return None;
        }
    };
    match event {
        StreamEvent::Decision(decision) if !decision.request_id.is_empty() => {
            Some(Ok(decision.into()))
        }
        StreamEvent::Error { message } => Some(Err(GuardError::Protocol(format!(
            "approvals stream error: {message}"
        )))),
        _ => None,
    }
}

pub(crate) fn parse_line_for_fuzzing(line: &str) -> bool {
    parse_line(line).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use haltstate_types::{ApprovalStatus, Lenient};

    #[test]
    fn sse_lines_parse_forgivingly() {
        assert!(parse_line(": heartbeat").is_none());
        assert!(parse_line("event: message").is_none());
        assert!(parse_line(r#"data: {"type":"CONNECTED"}"#).is_none());
        assert!(parse_line(r#"data: {"type":"PING"}"#).is_none());
        assert!(parse_line("data: not json").is_none());
        let unknown = parse_line(
            r#"data: {"type":"APPROVAL_DECISION","request_id":"apr_1","status":"quarantined"}"#,
        );
        let decision = unknown.unwrap().unwrap();
        assert_eq!(decision.status, Lenient::Unknown("quarantined".into()));
        let known = parse_line(
            r#"data: {"type":"APPROVAL_DECISION","request_id":"apr_2","status":"approved","catchup":true}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(known.status, Lenient::Known(ApprovalStatus::Approved));
        assert!(known.is_catchup);
        assert!(matches!(
            parse_line(r#"data:{"type":"ERROR","message":"x"}"#),
            Some(Err(GuardError::Protocol(_)))
        ));
    }

    #[test]
    fn dedup_forgets_only_past_its_window() {
        let mut cursor = Cursor::new(OffsetDateTime::UNIX_EPOCH);
        assert!(cursor.first("a".into()));
        assert!(!cursor.first("a".into()));
        for i in 0..DEDUP_WINDOW {
            cursor.first(i.to_string());
        }
        assert!(cursor.first("a".into()));
    }
}
