//! Usage buckets in SQLite: the statements of `store/sql.rs` for the rules of `store/usage_batch.rs`.

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::policy::UsageWindow;
use crate::store::sql;
use crate::store::usage::{self, Buckets, Span};

/// One agent's buckets for one action, on the writer's connection.
pub(crate) struct UsageBuckets<'a> {
    conn: &'a Connection,
    tenant: &'a str,
    agent: &'a str,
    action: &'a str,
}

impl<'a> UsageBuckets<'a> {
    pub(crate) fn new(
        conn: &'a Connection,
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
    fn read(&mut self, bounds: [i64; 3]) -> Result<Vec<(String, i64, UsageWindow)>> {
        let mut statement = self.conn.prepare_cached(sql::USAGE_SINCE)?;
        let mut rows = statement.query(params![
            self.tenant,
            self.agent,
            self.action,
            bounds[0],
            bounds[1],
            bounds[2]
        ])?;
        let mut buckets = Vec::new();
        while let Some(row) = rows.next()? {
            buckets.push((row.get(0)?, row.get(1)?, usage::figures(row, 2)?));
        }
        Ok(buckets)
    }

    fn write(&mut self, buckets: &[(&Span, i64, UsageWindow)]) -> Result<()> {
        if buckets.is_empty() {
            return Ok(());
        }
        // One single-row statement per bucket: it needs no statement journal, which a multi-row insert opens (it
        // could fail after its first rows). On SQLite a statement is a call, not a round trip.
        let mut statement = self.conn.prepare_cached(&sql::usage_write(1))?;
        for (span, start, (count, tokens, sums)) in usage::rows(buckets)? {
            statement.execute(params![
                self.tenant,
                self.agent,
                self.action,
                span,
                start,
                count,
                tokens,
                sums
            ])?;
        }
        Ok(())
    }

    fn prune(&mut self, span: &Span, first: i64) -> Result<()> {
        self.conn
            .prepare_cached(sql::USAGE_PRUNE)?
            .execute(params![
                self.tenant,
                self.agent,
                self.action,
                span.name,
                first
            ])?;
        Ok(())
    }
}
