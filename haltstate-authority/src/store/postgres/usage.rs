//! Usage buckets in PostgreSQL: the statements of `store/sql.rs` for the rules of `store/usage_batch.rs`. The
//! tenant's transaction holds its head row, so the read, the decision and the charge of one guard are not
//! interleaved with another instance's.

use std::sync::LazyLock;

use postgres::types::ToSql;

use super::conn::Conn;
use super::pending::Pending;
use crate::error::Result;
use crate::policy::UsageWindow;
use crate::store::sql;
use crate::store::usage::{self, Buckets, Span};

shared_statements!(USAGE_SINCE, USAGE_PRUNE);

/// The writes of one to three buckets (what a transaction's charges usually change), kept prepared.
static USAGE_WRITES: LazyLock<[String; 3]> =
    LazyLock::new(|| [1, 2, 3].map(|rows| sql::dollars(&sql::usage_write(rows))));

/// One agent's buckets for one action, in the tenant's transaction. The transaction's held writes go first,
/// when a statement is sent: a charge served from the transaction's copy sends nothing.
pub(crate) struct UsageBuckets<'a> {
    raw: &'a mut Conn,
    pending: &'a mut Pending,
    tenant: &'a str,
    agent: &'a str,
    action: &'a str,
}

impl<'a> UsageBuckets<'a> {
    pub(crate) fn new(
        raw: &'a mut Conn,
        pending: &'a mut Pending,
        (tenant, agent, action): (&'a str, &'a str, &'a str),
    ) -> Self {
        Self {
            raw,
            pending,
            tenant,
            agent,
            action,
        }
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        self.pending.flush(self.raw)?;
        Ok(self.raw)
    }
}

impl Buckets for UsageBuckets<'_> {
    fn read(&mut self, bounds: [i64; 3]) -> Result<Vec<(String, i64, UsageWindow)>> {
        let (tenant, agent, action) = (self.tenant, self.agent, self.action);
        let rows = self.conn()?.query(
            &USAGE_SINCE,
            &[&tenant, &agent, &action, &bounds[0], &bounds[1], &bounds[2]],
        )?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, usage::figures(row, 2)?)))
            .collect()
    }

    fn write(&mut self, buckets: &[(&Span, i64, UsageWindow)]) -> Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let columns = usage::rows(buckets)?;
        let (tenant, agent, action) = (self.tenant, self.agent, self.action);
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&tenant, &agent, &action];
        for (span, start, (count, tokens, sums)) in &columns {
            values.extend([span as &(dyn ToSql + Sync), start, count, tokens, sums]);
        }
        let conn = self.conn()?;
        match USAGE_WRITES.get(buckets.len() - 1) {
            Some(sql) => conn.execute(sql, &values)?,
            None => {
                let sql = sql::dollars(&sql::usage_write(buckets.len()));
                conn.client().execute(sql.as_str(), &values)?
            }
        };
        Ok(())
    }

    fn prune(&mut self, span: &Span, first: i64) -> Result<()> {
        let (tenant, agent, action) = (self.tenant, self.agent, self.action);
        self.conn()?.execute(
            &USAGE_PRUNE,
            &[&tenant, &agent, &action, &span.name, &first],
        )?;
        Ok(())
    }
}
