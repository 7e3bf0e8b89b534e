//! Webhook rows as both backends store them: events as a comma-separated list, formats and states by name,
//! counts as integers. Anything that does not decode is corrupt, never guessed.

use haltstate_types::timestamp::from_micros;

use super::{DeliveryRecord, DeliveryState, WebhookEvent, WebhookFormat};
use crate::error::{AuthorityError, Result};

/// A delivery row as the console lists it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    id: String,
    webhook_id: String,
    event: &str,
    state: &str,
    created: i64,
    attempts: i64,
    next: Option<i64>,
    finished: Option<i64>,
    status: Option<i64>,
    error: Option<String>,
) -> Result<DeliveryRecord> {
    let state = DeliveryState::parse(state).ok_or_else(|| {
        AuthorityError::Corrupt(format!("delivery {id}: unknown state {state:?}"))
    })?;
    Ok(DeliveryRecord {
        event: parse_event(event)?,
        created_at: from_micros(created),
        attempts: count(attempts)?,
        state,
        next_attempt_at: next.map(from_micros),
        last_status: status.and_then(|s| u16::try_from(s).ok()),
        last_error: error,
        finished_at: finished.map(from_micros),
        id,
        webhook_id,
    })
}

pub(crate) fn events_text(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn parse_events(text: &str) -> Result<Vec<WebhookEvent>> {
    text.split(',').map(parse_event).collect()
}

pub(crate) fn parse_event(name: &str) -> Result<WebhookEvent> {
    WebhookEvent::parse(name)
        .ok_or_else(|| AuthorityError::Corrupt(format!("unknown webhook event {name:?}")))
}

pub(crate) fn parse_format(name: &str) -> Result<WebhookFormat> {
    WebhookFormat::parse(name)
        .ok_or_else(|| AuthorityError::Corrupt(format!("unknown webhook format {name:?}")))
}

pub(crate) fn count(value: i64) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| AuthorityError::Corrupt(format!("delivery attempts out of range: {value}")))
}
