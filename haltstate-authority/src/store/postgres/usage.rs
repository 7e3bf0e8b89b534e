//! Usage buckets in PostgreSQL: the statements of `store/sql.rs` for the rules of `store/usage.rs`. The
//! tenant's transaction holds its head row, so the read, the decision and the charge of one guard are not
//! interleaved with another instance's.

use super::conn::Conn;
use crate::error::Result;
use crate::policy::UsageWindow;
use crate::store::usage::{self, Buckets, Span};

shared_statements!(USAGE_SINCE, USAGE_BUCKET, USAGE_WRITE, USAGE_PRUNE);

/// One agent's buckets for one action, in the tenant's transaction.
pub(crate) struct UsageBuckets<'a> {
    conn: &'a mut Conn,
    tenant: &'a str,
    agent: &'a str,
    action: &'a str,
}

impl<'a> UsageBuckets<'a> {
    pub(crate) fn new(
        conn: &'a mut Conn,
        (tenant, agent, action): (&'a str, &'a str, &'a str),
    ) -> Self {
        Self {
            conn,
            tenant,
            agent,
            action,
        }
    }
}

impl Buckets for UsageBuckets<'_> {
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
