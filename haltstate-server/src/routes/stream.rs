//! E7: the approvals stream (SSE).
//!
//! `CONNECTED` first; then, when `last_seen` is given, every decision after it (`catchup: true`); then live
//! decisions. The stream reads from the database cursor rather than only from in-process events, so decisions
//! made by another process on the same file (the operator CLI) arrive too, and nothing is missed between the
//! catch-up and the first live event. Idle periods carry `:` comment heartbeats.
//!
//! A stream delivers only the approvals of the agents its key acts as. It ends (with an `ERROR` event) within
//! one poll of its key being revoked, and at once when the server shuts down.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use haltstate_authority::Authority;
use haltstate_types::wire::{DecisionEvent, StreamEvent};
use haltstate_types::{ApprovalStatus, Principal};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::auth::Agent;
use crate::error::ApiError;
use crate::query;
use crate::state::Shared;

/// `GET approvals/stream?tenant_id=&last_seen=`.
pub async fn approvals_stream(
    State(state): State<Shared>,
    Agent(who): Agent,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_seen = query
        .get("last_seen")
        .filter(|s| !s.is_empty())
        .map(|s| query::timestamp("last_seen", s));
    let last_seen = last_seen.transpose()?;
    let slot = crate::streams::open(
        &state.streams,
        &who.tenant,
        &who.key_id,
        state.limits.max_streams_per_key,
    )?;
    let (sender, receiver) = mpsc::channel::<Event>(64);
    let connected_at = state.authority.now();
    tokio::spawn(feed(state.clone(), who, last_seen, connected_at, sender));
    // The slot goes with the response body: a client that leaves frees it.
    let stream =
        futures_util::stream::unfold((receiver, slot), |(mut receiver, slot)| async move {
            receiver
                .recv()
                .await
                .map(|event| (Ok(event), (receiver, slot)))
        });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(state.sse_heartbeat)
            .text("heartbeat"),
    ))
}

/// Whether the stream's key may still read: live, and the server not shutting down. `Some(message)` ends it.
fn end_reason(authority: &Authority, who: &Principal) -> Option<&'static str> {
    match authority.key(&who.tenant, &who.key_id) {
        Ok(key) if key.revoked_at.is_none() => None,
        Ok(_) => Some("the key was revoked"),
        Err(error) => {
            tracing::warn!(%error, "approvals stream cannot check its key; ending it");
            Some("internal error")
        }
    }
}

async fn feed(
    state: Shared,
    who: Principal,
    last_seen: Option<OffsetDateTime>,
    connected_at: OffsetDateTime,
    sender: mpsc::Sender<Event>,
) {
    let authority = &state.authority;
    let tenant = &who.tenant;
    // Subscribe before the first read, so a decision committed in between wakes us.
    let mut wake = authority.subscribe();
    let data = |event: StreamEvent| {
        Event::default().data(serde_json::to_string(&event).unwrap_or_default())
    };
    if sender.send(data(StreamEvent::Connected)).await.is_err() {
        return;
    }
    let mut cursor = last_seen.unwrap_or(connected_at);
    let mut sent_at_cursor: HashSet<String> = HashSet::new();
    loop {
        if let Some(message) = end_reason(authority, &who) {
            let _ = sender
                .send(data(StreamEvent::Error {
                    message: message.to_owned(),
                }))
                .await;
            return;
        }
        let decisions =
            match authority.approvals_since(tenant, cursor - Duration::from_micros(1), 500) {
                Ok(decisions) => decisions,
                Err(error) => {
                    tracing::warn!(%error, "approvals stream read failed");
                    let _ = sender
                        .send(data(StreamEvent::Error {
                            message: "internal error".into(),
                        }))
                        .await;
                    return;
                }
            };
        for approval in decisions
            .iter()
            .filter(|a| a.status != ApprovalStatus::Pending)
        {
            let Some(decided_at) = approval.decided_at else {
                continue;
            };
            if decided_at < cursor
                || (decided_at == cursor && sent_at_cursor.contains(&approval.id))
            {
                continue;
            }
            if decided_at > cursor {
                cursor = decided_at;
                sent_at_cursor.clear();
            }
            sent_at_cursor.insert(approval.id.clone());
            if !who.agents.contains(&approval.agent_id) {
                continue;
            }
            let event =
                StreamEvent::Decision(DecisionEvent::new(approval, decided_at <= connected_at));
            if sender.send(data(event)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = sender.closed() => return,
            () = state.shutdown.cancelled() => return,
            _ = wake.recv() => {}
            () = tokio::time::sleep(state.sse_poll) => {}
        }
    }
}
