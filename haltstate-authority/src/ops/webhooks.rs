//! Webhooks, applied: announcements queued with the change they announce, endpoints added and removed,
//! deliveries claimed and their attempts recorded.

use time::OffsetDateTime;

use haltstate_types::{
    Approval, ApprovalEventData, KillScope, KillState, KillSwitchEventData, RequestError,
};

use super::new_id;
use crate::error::{AuthorityError, Result};
use crate::store::tx::{DeliveryUpdate, Tx};
use crate::webhooks::{
    AttemptResult, Delivery, Keyring, RetryPolicy, Webhook, WebhookEvent, WebhookSecret,
    WebhookSpec, next_state,
};

/// An event's data as stored and sent (typed in the vocabulary: `ApprovalEventData`, `KillSwitchEventData`).
fn event_json(data: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(data)
        .map_err(|e| crate::error::AuthorityError::Corrupt(format!("an event's data: {e}")))
}

/// Queues the announcement of an approval's new status.
pub(crate) fn announce_approval(tx: &mut dyn Tx, approval: &Approval) -> Result<()> {
    let event = WebhookEvent::for_approval(approval.status);
    let data = event_json(&ApprovalEventData::from(approval))?;
    tx.enqueue_webhooks(&approval.tenant, &new_id("msg"), event, &data)
}

/// Queues the announcement of a kill switch's change.
pub(crate) fn announce_kill(
    tx: &mut dyn Tx,
    scope: &KillScope,
    state: KillState,
    actor: &str,
) -> Result<()> {
    let data = event_json(&KillSwitchEventData::new(scope, state, actor))?;
    tx.enqueue_webhooks(
        scope.tenant(),
        &new_id("msg"),
        WebhookEvent::KillSwitchChanged,
        &data,
    )
}

/// Live webhooks a tenant may have: each event is posted to every one, so their number multiplies the work (and
/// the requests to other hosts) one event causes.
pub(crate) const MAX_WEBHOOKS_PER_TENANT: usize = 16;

pub(crate) fn add(
    tx: &mut dyn Tx,
    tenant: &str,
    spec: WebhookSpec,
    actor: &str,
    keyring: &Keyring,
) -> Result<(Webhook, WebhookSecret)> {
    if spec.events.is_empty() {
        return Err(RequestError::Invalid("a webhook needs at least one event".into()).into());
    }
    let webhook = Webhook {
        id: new_id("wh"),
        tenant: tenant.to_owned(),
        url: spec.url,
        events: spec.events,
        format: spec.format,
        created_at: tx.now(),
        created_by: actor.to_owned(),
    };
    let secret = WebhookSecret::generate();
    let sealed = keyring
        .seal(tenant, &webhook.id, &secret)
        .map_err(|e| AuthorityError::storage(e.to_string()))?;
    if !tx.insert_webhook(&webhook, &sealed, MAX_WEBHOOKS_PER_TENANT)? {
        return Err(RequestError::Invalid(format!(
            "this tenant has {MAX_WEBHOOKS_PER_TENANT} webhooks already; remove one first"
        ))
        .into());
    }
    Ok((webhook, secret))
}

pub(crate) fn claim(
    tx: &mut dyn Tx,
    tenant: &str,
    holder: &str,
    lease: std::time::Duration,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let until = tx.now() + lease;
    tx.claim_deliveries(tenant, holder, until, limit)
}

/// Records an attempt; answers whether the delivery is now pending (retried later), delivered or failed, or
/// `None` when `holder` no longer held it (its lease lapsed and another sender took it).
pub(crate) fn finish(
    tx: &mut dyn Tx,
    delivery: &Delivery,
    holder: &str,
    result: &AttemptResult,
    policy: &RetryPolicy,
    jitter: f64,
) -> Result<Option<(crate::webhooks::DeliveryState, Option<OffsetDateTime>)>> {
    let attempts = delivery.attempts.saturating_add(1);
    let (state, next_attempt_at) = next_state(policy, attempts, result, tx.now(), jitter);
    let (last_status, last_error) = match result {
        AttemptResult::Delivered { status } => (Some(*status), None),
        AttemptResult::Failed { status, error } => (*status, Some(error.as_str())),
    };
    let stored = tx.finish_delivery(
        &delivery.tenant,
        &DeliveryUpdate {
            id: &delivery.id,
            webhook_id: &delivery.webhook_id,
            holder,
            attempts,
            state,
            next_attempt_at,
            last_status,
            last_error,
        },
    )?;
    Ok(stored.then_some((state, next_attempt_at)))
}
