//! Usage buckets in PostgreSQL: the statements of `store/sql.rs` for the rules of `store/usage.rs`. The
//! tenant's transaction holds its head row, so the read, the decision and the charge of one guard are not
//! interleaved with another instance's.

use time::OffsetDateTime;

use super::conn::Conn;
use crate::error::Result;
use crate::policy::{Usage, UsageWindow};
use crate::state_rows::Charge;
use crate::store::usage::{self, Buckets, Span};

shared_statements!(USAGE_SINCE, USAGE_BUCKET, USAGE_WRITE, USAGE_PRUNE);

/// One agent's buckets for one action, in the tenant's transaction.
struct Of<'a> {
    conn: &'a mut Conn,
    tenant: &'a str,
    agent: &'a str,
    action: &'a str,
}

impl Buckets for Of<'_> {
    fn since(&mut self, firsts: [i64; 3]) -> Result<Vec<(String, UsageWindow)>> {
        let rows = self.conn.query(
            &USAGE_SINCE,
            &[
                &self.tenant,
                &self.agent,
                &self.action,
                &firsts[0],
                &firsts[1],
                &firsts[2],
            ],
        )?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, usage::figures(row, 1)?)))
            .collect()
    }

    fn read(&mut self, span: &Span, start: i64) -> Result<Option<UsageWindow>> {
        self.conn
            .query_opt(
                &USAGE_BUCKET,
                &[&self.tenant, &self.agent, &self.action, &span.name, &start],
            )?
            .map(|row| usage::figures(&row, 0))
            .transpose()
    }

    fn write(&mut self, span: &Span, start: i64, figures: &UsageWindow) -> Result<()> {
        let (count, tokens, sums) = usage::columns(figures);
        self.conn.execute(
            &USAGE_WRITE,
            &[
                &self.tenant,
                &self.agent,
                &self.action,
                &span.name,
                &start,
                &count,
                &tokens,
                &sums,
            ],
        )?;
        Ok(())
    }

    fn prune(&mut self, span: &Span, first: i64) -> Result<()> {
        self.conn.execute(
            &USAGE_PRUNE,
            &[&self.tenant, &self.agent, &self.action, &span.name, &first],
        )?;
        Ok(())
    }
}

pub(crate) fn load(
    conn: &mut Conn,
    (tenant, agent, action): (&str, &str, &str),
    now: OffsetDateTime,
) -> Result<Usage> {
    let mut of = Of {
        conn,
        tenant,
        agent,
        action,
    };
    usage::load(&mut of, now)
}

pub(crate) fn charge(
    conn: &mut Conn,
    (tenant, agent, action): (&str, &str, &str),
    charge: &Charge,
    sign: i64,
    now: OffsetDateTime,
) -> Result<()> {
    let mut of = Of {
        conn,
        tenant,
        agent,
        action,
    };
    usage::charge(&mut of, charge, sign, now)
}
