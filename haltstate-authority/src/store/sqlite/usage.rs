//! Usage buckets in SQLite: the statements of `store/sql.rs` for the rules of `store/usage.rs`.

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
    fn since(&mut self, firsts: [i64; 3]) -> Result<Vec<(String, UsageWindow)>> {
        let mut statement = self.conn.prepare_cached(sql::USAGE_SINCE)?;
        let mut rows = statement.query(params![
            self.tenant,
            self.agent,
            self.action,
            firsts[0],
            firsts[1],
            firsts[2]
        ])?;
        let mut buckets = Vec::new();
        while let Some(row) = rows.next()? {
            buckets.push((row.get(0)?, usage::figures(row, 1)?));
        }
        Ok(buckets)
    }

    fn read(&mut self, span: &Span, start: i64) -> Result<Option<UsageWindow>> {
        let mut statement = self.conn.prepare_cached(sql::USAGE_BUCKET)?;
        let mut rows = statement.query(params![
            self.tenant,
            self.agent,
            self.action,
            span.name,
            start
        ])?;
        rows.next()?.map(|row| usage::figures(row, 0)).transpose()
    }

    fn write(&mut self, span: &Span, start: i64, figures: &UsageWindow) -> Result<()> {
        let (count, tokens, sums) = usage::columns(figures);
        self.conn
            .prepare_cached(sql::USAGE_WRITE)?
            .execute(params![
                self.tenant,
                self.agent,
                self.action,
                span.name,
                start,
                count,
                tokens,
                sums
            ])?;
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
