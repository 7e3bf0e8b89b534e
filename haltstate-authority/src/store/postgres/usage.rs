//! Usage buckets in PostgreSQL: the statements of `store/sql.rs` for the rules of `store/usage.rs`. The
//! tenant's transaction holds its head row, so the read, the decision and the charge of one guard are not
//! interleaved with another instance's.

use std::sync::LazyLock;

use postgres::types::ToSql;

use super::conn::Conn;
use crate::error::Result;
use crate::policy::UsageWindow;
use crate::store::sql;
use crate::store::usage::{self, Buckets, Span, Starting};

shared_statements!(USAGE_SINCE, USAGE_AT, USAGE_PRUNE);

/// The writes of one to three buckets (what a charge writes), kept prepared.
static USAGE_WRITES: LazyLock<[String; 3]> =
    LazyLock::new(|| [1, 2, 3].map(|rows| sql::dollars(&sql::usage_write(rows))));

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
    fn read(&mut self, starting: Starting, bounds: [i64; 3]) -> Result<Vec<(String, UsageWindow)>> {
        let sql: &'static str = match starting {
            Starting::Since => &USAGE_SINCE,
            Starting::At => &USAGE_AT,
        };
        let rows = self.conn.query(
            sql,
            &[
                &self.tenant,
                &self.agent,
                &self.action,
                &bounds[0],
                &bounds[1],
                &bounds[2],
            ],
        )?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, usage::figures(row, 1)?)))
            .collect()
    }

    fn write(&mut self, buckets: &[(&Span, i64, UsageWindow)]) -> Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        let columns = usage::rows(buckets);
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&self.tenant, &self.agent, &self.action];
        for (span, start, (count, tokens, sums)) in &columns {
            values.extend([span as &(dyn ToSql + Sync), start, count, tokens, sums]);
        }
        match USAGE_WRITES.get(buckets.len() - 1) {
            Some(sql) => self.conn.execute(sql, &values)?,
            None => {
                let sql = sql::dollars(&sql::usage_write(buckets.len()));
                self.conn.client().execute(sql.as_str(), &values)?
            }
        };
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
