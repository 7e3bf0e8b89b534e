//! Usage buckets in PostgreSQL (see `store/usage.rs`); the tenant's transaction holds its head row, so the read,
//! the decision and the charge of one guard are not interleaved with another instance's.

use time::OffsetDateTime;

use super::conn::Conn;
use crate::error::Result;
use crate::policy::Usage;
use crate::state_rows::Charge;
use crate::store::usage::{SPANS, add_bucket, decode, encode_sums};

pub(crate) fn load(
    conn: &mut Conn,
    tenant: &str,
    agent: &str,
    action: &str,
    now: OffsetDateTime,
) -> Result<Usage> {
    let rows = conn.query(
        "SELECT span, count, tokens, sums FROM usage_buckets \
         WHERE tenant = $1 AND agent_id = $2 AND action = $3 AND ( \
           (span = 's' AND start_us >= $4) OR (span = 'm' AND start_us >= $5) OR (span = 'h' AND start_us >= $6))",
        &[
            &tenant,
            &agent,
            &action,
            &SPANS[0].first(now),
            &SPANS[1].first(now),
            &SPANS[2].first(now),
        ],
    )?;
    let mut usage = Usage::default();
    for row in rows {
        let (span, sums): (String, String) = (row.try_get(0)?, row.try_get(3)?);
        add_bucket(
            &mut usage,
            &span,
            &decode(row.try_get(1)?, row.try_get(2)?, &sums)?,
        )?;
    }
    Ok(usage)
}

pub(crate) fn charge(
    conn: &mut Conn,
    (tenant, agent, action): (&str, &str, &str),
    charge: &Charge,
    sign: i64,
    now: OffsetDateTime,
) -> Result<()> {
    for span in &SPANS {
        let (start, first) = (span.bucket(charge.at), span.first(now));
        if start >= first {
            let stored = conn.query_opt(
                "SELECT count, tokens, sums FROM usage_buckets \
                 WHERE tenant = $1 AND agent_id = $2 AND action = $3 AND span = $4 AND start_us = $5",
                &[&tenant, &agent, &action, &span.name, &start],
            )?;
            let new_bucket = stored.is_none();
            let mut figures = match stored {
                Some(row) => {
                    let sums: String = row.try_get(2)?;
                    decode(row.try_get(0)?, row.try_get(1)?, &sums)?
                }
                None => Default::default(),
            };
            figures.add(&charge.figures, sign);
            conn.execute(
                "INSERT INTO usage_buckets (tenant, agent_id, action, span, start_us, count, tokens, sums) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant, agent_id, action, span, start_us) DO UPDATE SET \
                 count = excluded.count, tokens = excluded.tokens, sums = excluded.sums",
                &[
                    &tenant,
                    &agent,
                    &action,
                    &span.name,
                    &start,
                    &i64::try_from(figures.count).unwrap_or(i64::MAX),
                    &i64::try_from(figures.tokens).unwrap_or(i64::MAX),
                    &encode_sums(&figures),
                ],
            )?;
            if new_bucket {
                // Buckets that left the window go when a new one starts: once per bucket, not per charge.
                conn.execute(
                    "DELETE FROM usage_buckets \
                     WHERE tenant = $1 AND agent_id = $2 AND action = $3 AND span = $4 AND start_us < $5",
                    &[&tenant, &agent, &action, &span.name, &first],
                )?;
            }
        }
    }
    Ok(())
}
