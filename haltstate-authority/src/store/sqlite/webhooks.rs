//! Webhooks and their outbox in SQLite: endpoints, deliveries queued with the change they announce, and the
//! leases senders hold them under.

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use haltstate_types::timestamp::{from_micros, to_micros};

use crate::error::{AuthorityError, Result};
use crate::store::tx::DeliveryUpdate;
use crate::webhooks::stored::{
    count, events_text, parse_event, parse_events, parse_format, record,
};
use crate::webhooks::{
    Delivery, DeliveryRecord, DeliveryState, SealedSecret, Webhook, WebhookEvent,
};

pub(crate) fn enqueue(
    conn: &Connection,
    tenant: &str,
    id: &str,
    event: WebhookEvent,
    data: &str,
    now: OffsetDateTime,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_outbox (tenant, id, webhook_id, event, data, created_us, attempts, state, \
         next_attempt_us) \
         SELECT tenant, ?2, id, ?3, ?4, ?5, 0, 'pending', ?5 FROM webhooks \
         WHERE tenant = ?1 AND removed_us IS NULL AND instr(',' || events || ',', ',' || ?3 || ',') > 0",
    )?
    .execute(params![tenant, id, event.as_str(), data, to_micros(now)])?;
    Ok(())
}

/// Inserts `webhook` unless its tenant already has `cap` live ones; answers whether it did.
pub(crate) fn insert(
    conn: &Connection,
    webhook: &Webhook,
    secret: &SealedSecret,
    cap: usize,
) -> Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO webhooks (tenant, id, url, secret, events, format, created_us, created_by) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE (SELECT COUNT(*) FROM webhooks \
             WHERE tenant = ?1 AND removed_us IS NULL) < ?9",
        )?
        .execute(params![
        webhook.tenant,
        webhook.id,
        webhook.url,
        secret.stored(),
        events_text(&webhook.events),
        webhook.format.as_str(),
        to_micros(webhook.created_at),
        webhook.created_by,
        i64::try_from(cap).unwrap_or(i64::MAX),
    ])?;
    Ok(inserted == 1)
}

pub(crate) fn remove(
    conn: &Connection,
    tenant: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let removed = conn
        .prepare_cached(
            "UPDATE webhooks SET removed_us = ?3 WHERE tenant = ?1 AND id = ?2 AND removed_us IS NULL",
        )?
        .execute(params![tenant, id, to_micros(now)])?;
    if removed > 0 {
        conn.prepare_cached(
            "UPDATE webhook_outbox SET state = 'failed', last_error = 'webhook removed', finished_us = ?3, \
             next_attempt_us = NULL, claimed_by = NULL, claim_until_us = NULL \
             WHERE tenant = ?1 AND webhook_id = ?2 AND state = 'pending'",
        )?
        .execute(params![tenant, id, to_micros(now)])?;
    }
    Ok(removed > 0)
}

/// Up to `?3` of tenant `?1`'s deliveries due at `?2` and not held by another sender, the longest waiting first.
pub(crate) const CLAIM_DUE: &str = "SELECT o.id, o.webhook_id, w.url, w.secret, w.format, o.event, o.data, o.created_us, o.attempts \
     FROM webhook_outbox o JOIN webhooks w ON w.tenant = o.tenant AND w.id = o.webhook_id \
     WHERE o.tenant = ?1 AND o.state = 'pending' AND o.next_attempt_us <= ?2 \
       AND (o.claim_until_us IS NULL OR o.claim_until_us <= ?2) \
     ORDER BY o.next_attempt_us, o.created_us LIMIT CAST(?3 AS BIGINT)";

/// Tenant `?1`'s newest `?2` deliveries.
pub(crate) const DELIVERIES: &str = "SELECT id, webhook_id, event, created_us, attempts, state, next_attempt_us, last_status, last_error, \
     finished_us FROM webhook_outbox WHERE tenant = ?1 ORDER BY created_us DESC, id, webhook_id \
     LIMIT CAST(?2 AS BIGINT)";

pub(crate) fn claim(
    conn: &Connection,
    tenant: &str,
    holder: &str,
    now: OffsetDateTime,
    until: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let mut statement = conn.prepare_cached(CLAIM_DUE)?;
    let rows = statement.query_map(
        params![
            tenant,
            to_micros(now),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| delivery_from_row(tenant, row),
    )?;
    let deliveries = rows
        .map(|row| row.map_err(AuthorityError::from).and_then(|d| d))
        .collect::<Result<Vec<_>>>()?;
    let mut mark = conn.prepare_cached(
        "UPDATE webhook_outbox SET claimed_by = ?4, claim_until_us = ?5 \
         WHERE tenant = ?1 AND id = ?2 AND webhook_id = ?3",
    )?;
    for delivery in &deliveries {
        mark.execute(params![
            tenant,
            delivery.id,
            delivery.webhook_id,
            holder,
            to_micros(until)
        ])?;
    }
    Ok(deliveries)
}

#[allow(clippy::type_complexity)]
fn delivery_from_row(tenant: &str, row: &Row<'_>) -> rusqlite::Result<Result<Delivery>> {
    let (format, event, data): (String, String, String) = (row.get(4)?, row.get(5)?, row.get(6)?);
    let id: String = row.get(0)?;
    let attempts: i64 = row.get(8)?;
    let decoded = (|| {
        Ok(Delivery {
            webhook_id: row.get(1).map_err(AuthorityError::from)?,
            url: row.get(2).map_err(AuthorityError::from)?,
            secret: SealedSecret::from_stored(row.get(3).map_err(AuthorityError::from)?),
            format: parse_format(&format)?,
            event: parse_event(&event)?,
            data: serde_json::from_str(&data)
                .map_err(|e| AuthorityError::Corrupt(format!("delivery {id}: data: {e}")))?,
            created_at: from_micros(row.get(7).map_err(AuthorityError::from)?),
            attempts: count(attempts)?,
            tenant: tenant.to_owned(),
            id: id.clone(),
        })
    })();
    Ok(decoded)
}

pub(crate) fn finish(
    conn: &Connection,
    tenant: &str,
    update: &DeliveryUpdate<'_>,
    now: OffsetDateTime,
) -> Result<bool> {
    let finished = (update.state != DeliveryState::Pending).then(|| to_micros(now));
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_outbox SET attempts = ?5, state = ?6, next_attempt_us = ?7, last_status = ?8, \
             last_error = ?9, finished_us = ?10, claimed_by = NULL, claim_until_us = NULL \
             WHERE tenant = ?1 AND id = ?2 AND webhook_id = ?3 AND claimed_by = ?4 AND state = 'pending'",
        )?
        .execute(params![
            tenant,
            update.id,
            update.webhook_id,
            update.holder,
            update.attempts,
            update.state.as_str(),
            update.next_attempt_at.map(to_micros),
            update.last_status,
            update.last_error,
            finished,
        ])?;
    Ok(changed > 0)
}

pub(crate) fn list(conn: &Connection, tenant: &str) -> Result<Vec<Webhook>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, url, events, format, created_us, created_by FROM webhooks \
         WHERE tenant = ?1 AND removed_us IS NULL ORDER BY created_us DESC, id",
    )?;
    let rows = statement.query_map([tenant], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    let mut webhooks = Vec::new();
    for row in rows {
        let (id, url, events, format, created, created_by) = row?;
        webhooks.push(Webhook {
            id,
            tenant: tenant.to_owned(),
            url,
            events: parse_events(&events)?,
            format: parse_format(&format)?,
            created_at: from_micros(created),
            created_by,
        });
    }
    Ok(webhooks)
}

pub(crate) fn deliveries(
    conn: &Connection,
    tenant: &str,
    limit: u32,
) -> Result<Vec<DeliveryRecord>> {
    let mut statement = conn.prepare_cached(DELIVERIES)?;
    let rows = statement.query_map(params![tenant, limit], |row| {
        Ok((
            (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            (row.get::<_, String>(2)?, row.get::<_, String>(5)?),
            (row.get::<_, i64>(3)?, row.get::<_, i64>(4)?),
            (row.get::<_, Option<i64>>(6)?, row.get::<_, Option<i64>>(9)?),
            (
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, Option<String>>(8)?,
            ),
        ))
    })?;
    let mut records = Vec::new();
    for row in rows {
        let (
            (id, webhook_id),
            (event, state),
            (created, attempts),
            (next, finished),
            (status, error),
        ) = row?;
        records.push(record(
            id, webhook_id, &event, &state, created, attempts, next, finished, status, error,
        )?);
    }
    Ok(records)
}

pub(crate) fn due_tenants(conn: &Connection, now: OffsetDateTime) -> Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT DISTINCT tenant FROM webhook_outbox WHERE state = 'pending' AND next_attempt_us <= ?1 \
         AND (claim_until_us IS NULL OR claim_until_us <= ?1)",
    )?;
    let rows = statement.query_map([to_micros(now)], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Tenants with webhooks (live or removed: a removed one's secret is still stored).
pub(crate) fn tenants(conn: &Connection) -> Result<Vec<String>> {
    let mut statement =
        conn.prepare_cached("SELECT DISTINCT tenant FROM webhooks ORDER BY tenant")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every webhook of `tenant` with its stored secret.
pub(crate) fn secrets(conn: &Connection, tenant: &str) -> Result<Vec<(String, SealedSecret)>> {
    let mut statement = conn.prepare_cached("SELECT id, secret FROM webhooks WHERE tenant = ?1")?;
    let rows = statement.query_map([tenant], |row| {
        Ok((row.get(0)?, SealedSecret::from_stored(row.get(1)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the stored secret of `tenant`'s webhook `id`.
pub(crate) fn set_secret(
    conn: &Connection,
    tenant: &str,
    id: &str,
    secret: &SealedSecret,
) -> Result<()> {
    conn.prepare_cached("UPDATE webhooks SET secret = ?3 WHERE tenant = ?1 AND id = ?2")?
        .execute(params![tenant, id, secret.stored()])?;
    Ok(())
}
