//! Usage buckets in SQLite (see `store/usage.rs`).

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::error::Result;
use crate::policy::Usage;
use crate::state_rows::Charge;
use crate::store::usage::{SPANS, add_bucket, decode, encode_sums};

pub(crate) fn load(
    conn: &Connection,
    tenant: &str,
    agent: &str,
    action: &str,
    now: OffsetDateTime,
) -> Result<Usage> {
    let mut statement = conn.prepare_cached(
        "SELECT span, count, tokens, sums FROM usage_buckets \
         WHERE tenant = ?1 AND agent_id = ?2 AND action = ?3 AND ( \
           (span = 's' AND start_us >= ?4) OR (span = 'm' AND start_us >= ?5) OR (span = 'h' AND start_us >= ?6))",
    )?;
    let rows = statement.query_map(
        params![
            tenant,
            agent,
            action,
            SPANS[0].first(now),
            SPANS[1].first(now),
            SPANS[2].first(now)
        ],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        },
    )?;
    let mut usage = Usage::default();
    for row in rows {
        let (span, count, tokens, sums) = row?;
        add_bucket(&mut usage, &span, &decode(count, tokens, &sums)?)?;
    }
    Ok(usage)
}

pub(crate) fn charge(
    conn: &Connection,
    (tenant, agent, action): (&str, &str, &str),
    charge: &Charge,
    sign: i64,
    now: OffsetDateTime,
) -> Result<()> {
    for span in &SPANS {
        let (start, first) = (span.bucket(charge.at), span.first(now));
        if start >= first {
            let stored = conn
                .prepare_cached(
                    "SELECT count, tokens, sums FROM usage_buckets \
                     WHERE tenant = ?1 AND agent_id = ?2 AND action = ?3 AND span = ?4 AND start_us = ?5",
                )?
                .query_row(params![tenant, agent, action, span.name, start], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
                })
                .optional()?;
            let new_bucket = stored.is_none();
            let mut figures = match stored {
                Some((count, tokens, sums)) => decode(count, tokens, &sums)?,
                None => Default::default(),
            };
            figures.add(&charge.figures, sign);
            conn.prepare_cached(
                "INSERT INTO usage_buckets (tenant, agent_id, action, span, start_us, count, tokens, sums) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (tenant, agent_id, action, span, start_us) DO UPDATE SET \
                 count = excluded.count, tokens = excluded.tokens, sums = excluded.sums",
            )?
            .execute(params![
                tenant,
                agent,
                action,
                span.name,
                start,
                i64::try_from(figures.count).unwrap_or(i64::MAX),
                i64::try_from(figures.tokens).unwrap_or(i64::MAX),
                encode_sums(&figures),
            ])?;
            if new_bucket {
                // Buckets that left the window go when a new one starts: once per bucket, not per charge.
                conn.prepare_cached(
                    "DELETE FROM usage_buckets \
                     WHERE tenant = ?1 AND agent_id = ?2 AND action = ?3 AND span = ?4 AND start_us < ?5",
                )?
                .execute(params![tenant, agent, action, span.name, first])?;
            }
        }
    }
    Ok(())
}
