//! Webhooks and their outbox in PostgreSQL (the same rows as SQLite's `webhooks.rs`). A tenant's claims run in
//! the tenant's transaction, which holds its head row locked, so two instances never claim one delivery.

use postgres::Row;
use time::OffsetDateTime;

use haltstate_types::timestamp::{from_micros, to_micros};

use super::conn::Conn;
use crate::error::{AuthorityError, Result};
use crate::store::tx::DeliveryUpdate;
use crate::webhooks::stored::{
    count, events_text, parse_event, parse_events, parse_format, record,
};
use crate::webhooks::{
    Delivery, DeliveryRecord, DeliveryState, SealedSecret, Webhook, WebhookEvent,
};

pub(crate) fn enqueue(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    event: WebhookEvent,
    data: &str,
    now: OffsetDateTime,
) -> Result<()> {
    conn.execute(
        "INSERT INTO webhook_outbox (tenant, id, webhook_id, event, data, created_us, attempts, state, \
         next_attempt_us) \
         SELECT tenant, $2, id, $3, $4, $5, 0, 'pending', $5 FROM webhooks \
         WHERE tenant = $1 AND removed_us IS NULL \
           AND position(',' || $3 || ',' IN ',' || events || ',') > 0",
        &[&tenant, &id, &event.as_str(), &data, &to_micros(now)],
    )?;
    Ok(())
}

/// Inserts `webhook` unless its tenant already has `cap` live ones (the tenant's head row is locked, so the
/// count holds until commit); answers whether it did.
pub(crate) fn insert(
    conn: &mut Conn,
    webhook: &Webhook,
    secret: &SealedSecret,
    cap: usize,
) -> Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO webhooks (tenant, id, url, secret, events, format, created_us, created_by) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE (SELECT COUNT(*) FROM webhooks \
         WHERE tenant = $1 AND removed_us IS NULL) < $9",
        &[
            &webhook.tenant,
            &webhook.id,
            &webhook.url,
            &secret.stored(),
            &events_text(&webhook.events),
            &webhook.format.as_str(),
            &to_micros(webhook.created_at),
            &webhook.created_by,
            &i64::try_from(cap).unwrap_or(i64::MAX),
        ],
    )?;
    Ok(inserted == 1)
}

pub(crate) fn remove(conn: &mut Conn, tenant: &str, id: &str, now: OffsetDateTime) -> Result<bool> {
    let removed = conn.execute(
        "UPDATE webhooks SET removed_us = $3 WHERE tenant = $1 AND id = $2 AND removed_us IS NULL",
        &[&tenant, &id, &to_micros(now)],
    )?;
    if removed > 0 {
        conn.execute(
            "UPDATE webhook_outbox SET state = 'failed', last_error = 'webhook removed', finished_us = $3, \
             next_attempt_us = NULL, claimed_by = NULL, claim_until_us = NULL \
             WHERE tenant = $1 AND webhook_id = $2 AND state = 'pending'",
            &[&tenant, &id, &to_micros(now)],
        )?;
    }
    Ok(removed > 0)
}

pub(crate) fn claim(
    conn: &mut Conn,
    tenant: &str,
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let rows = conn.query(
        "WITH due AS ( \
             SELECT tenant, id, webhook_id FROM webhook_outbox \
             WHERE tenant = $1 AND state = 'pending' AND next_attempt_us <= $2 \
               AND (claim_until_us IS NULL OR claim_until_us <= $2) \
             ORDER BY next_attempt_us, created_us LIMIT $3 FOR UPDATE) \
         UPDATE webhook_outbox o SET claimed_by = $4, claim_until_us = $5 FROM due, webhooks w \
         WHERE o.tenant = due.tenant AND o.id = due.id AND o.webhook_id = due.webhook_id \
           AND w.tenant = o.tenant AND w.id = o.webhook_id \
         RETURNING o.id, o.webhook_id, w.url, w.secret, w.format, o.event, o.data, o.created_us, o.attempts",
        &[
            &tenant,
            &to_micros(now),
            &i64::try_from(limit).unwrap_or(i64::MAX),
            &holder,
            &to_micros(until),
        ],
    )?;
    let mut deliveries = rows
        .iter()
        .map(|row| delivery_from_row(tenant, row))
        .collect::<Result<Vec<_>>>()?;
    deliveries.sort_by_key(|d| d.created_at);
    Ok(deliveries)
}

fn delivery_from_row(tenant: &str, row: &Row) -> Result<Delivery> {
    let id: String = row.try_get(0)?;
    let (format, event, data): (String, String, String) =
        (row.try_get(4)?, row.try_get(5)?, row.try_get(6)?);
    Ok(Delivery {
        webhook_id: row.try_get(1)?,
        url: row.try_get(2)?,
        secret: SealedSecret::from_stored(row.try_get(3)?),
        format: parse_format(&format)?,
        event: parse_event(&event)?,
        data: serde_json::from_str(&data)
            .map_err(|e| AuthorityError::Corrupt(format!("delivery {id}: data: {e}")))?,
        created_at: from_micros(row.try_get(7)?),
        attempts: count(row.try_get(8)?)?,
        tenant: tenant.to_owned(),
        id,
    })
}

pub(crate) fn finish(
    conn: &mut Conn,
    tenant: &str,
    update: &DeliveryUpdate<'_>,
    now: OffsetDateTime,
) -> Result<bool> {
    let finished = (update.state != DeliveryState::Pending).then(|| to_micros(now));
    let changed = conn.execute(
        "UPDATE webhook_outbox SET attempts = $5, state = $6, next_attempt_us = $7, last_status = $8, \
         last_error = $9, finished_us = $10, claimed_by = NULL, claim_until_us = NULL \
         WHERE tenant = $1 AND id = $2 AND webhook_id = $3 AND claimed_by = $4 AND state = 'pending'",
        &[
            &tenant,
            &update.id,
            &update.webhook_id,
            &update.holder,
            &i64::from(update.attempts),
            &update.state.as_str(),
            &update.next_attempt_at.map(to_micros),
            &update.last_status.map(i64::from),
            &update.last_error,
            &finished,
        ],
    )?;
    Ok(changed > 0)
}

pub(crate) fn list(conn: &mut Conn, tenant: &str) -> Result<Vec<Webhook>> {
    let rows = conn.query(
        "SELECT id, url, events, format, created_us, created_by FROM webhooks \
         WHERE tenant = $1 AND removed_us IS NULL ORDER BY created_us DESC, id",
        &[&tenant],
    )?;
    rows.iter()
        .map(|row| {
            let (events, format): (String, String) = (row.try_get(2)?, row.try_get(3)?);
            Ok(Webhook {
                id: row.try_get(0)?,
                tenant: tenant.to_owned(),
                url: row.try_get(1)?,
                events: parse_events(&events)?,
                format: parse_format(&format)?,
                created_at: from_micros(row.try_get(4)?),
                created_by: row.try_get(5)?,
            })
        })
        .collect()
}

pub(crate) fn deliveries(conn: &mut Conn, tenant: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
    let rows = conn.query(
        "SELECT id, webhook_id, event, state, created_us, attempts, next_attempt_us, finished_us, \
         last_status, last_error FROM webhook_outbox WHERE tenant = $1 \
         ORDER BY created_us DESC, id, webhook_id LIMIT $2",
        &[&tenant, &i64::from(limit)],
    )?;
    rows.iter()
        .map(|row| {
            let (event, state): (String, String) = (row.try_get(2)?, row.try_get(3)?);
            record(
                row.try_get(0)?,
                row.try_get(1)?,
                &event,
                &state,
                row.try_get(4)?,
                row.try_get(5)?,
                row.try_get(6)?,
                row.try_get(7)?,
                row.try_get(8)?,
                row.try_get(9)?,
            )
        })
        .collect()
}

pub(crate) fn due_tenants(conn: &mut Conn, now: OffsetDateTime) -> Result<Vec<String>> {
    let rows = conn.query(
        "SELECT DISTINCT tenant FROM webhook_outbox WHERE state = 'pending' AND next_attempt_us <= $1 \
         AND (claim_until_us IS NULL OR claim_until_us <= $1)",
        &[&to_micros(now)],
    )?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// Tenants with webhooks (live or removed: a removed one's secret is still stored).
pub(crate) fn tenants(conn: &mut Conn) -> Result<Vec<String>> {
    let rows = conn.query("SELECT DISTINCT tenant FROM webhooks ORDER BY tenant", &[])?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// Every webhook of `tenant` with its stored secret.
pub(crate) fn secrets(conn: &mut Conn, tenant: &str) -> Result<Vec<(String, SealedSecret)>> {
    let rows = conn.query(
        "SELECT id, secret FROM webhooks WHERE tenant = $1",
        &[&tenant],
    )?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, SealedSecret::from_stored(row.try_get(1)?))))
        .collect()
}

/// Replaces the stored secret of `tenant`'s webhook `id`.
pub(crate) fn set_secret(
    conn: &mut Conn,
    tenant: &str,
    id: &str,
    secret: &SealedSecret,
) -> Result<()> {
    conn.execute(
        "UPDATE webhooks SET secret = $3 WHERE tenant = $1 AND id = $2",
        &[&tenant, &id, &secret.stored()],
    )?;
    Ok(())
}
