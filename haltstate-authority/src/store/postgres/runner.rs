//! A PostgreSQL batch: one transaction per tenant in the batch. Each starts by locking the tenant's head row,
//! which orders that tenant's writers across every instance on the database (what SQLite's single writer does
//! for one process) and gives the end of its chain as committed; then every queued operation of the tenant runs
//! in its savepoint, the head row moves once, approval changes are announced (`NOTIFY`, delivered at commit),
//! and the transaction commits.

use std::sync::Arc;

use haltstate_types::GENESIS_HASH;
use haltstate_types::timestamp::{format_rfc3339, parse_iso8601};

use super::conn::{Conn, connect, signed, unsigned};
use super::listen::{CHANNEL, Notice};
use super::queries::{self, KnownKeys};
use super::tx::PgTx;
use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result};
use crate::store::chain::{Tail, broken};
use crate::store::job::{
    BatchFailure, Isolation, Job, KeyHint, Runner, WriterCounters, acknowledge, fail_all,
};

/// The writer's connection (reconnected when lost) and what it needs to run batches.
pub(crate) struct PgRunner {
    url: PostgresUrl,
    conn: Option<Conn>,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    /// Names this authority in its notices, so that its own listener skips what was already published here.
    instance: String,
}

impl PgRunner {
    pub(crate) fn new(
        url: PostgresUrl,
        conn: Conn,
        clock: Arc<dyn Clock>,
        counters: Arc<WriterCounters>,
        events: tokio::sync::broadcast::Sender<ApprovalEvent>,
        instance: String,
    ) -> Self {
        Self {
            url,
            conn: Some(conn),
            clock,
            counters,
            events,
            instance,
        }
    }

    fn failure(error: &AuthorityError) -> BatchFailure {
        match error {
            AuthorityError::Unavailable(why) => BatchFailure::Unavailable(why.clone()),
            other => BatchFailure::Failed(other.to_string()),
        }
    }

    /// Runs one tenant's jobs in one transaction.
    fn run_tenant(&mut self, tenant: &str, jobs: Vec<Box<dyn Job>>) {
        let started = std::time::Instant::now();
        if self.conn.as_ref().is_none_or(Conn::is_closed) {
            match connect(&self.url) {
                Ok(conn) => self.conn = Some(conn),
                Err(error) => {
                    self.conn = None;
                    tracing::error!(%error, "the database is unavailable; refusing the batch");
                    return fail_all(jobs, &Self::failure(&error));
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let tail = match begin(conn, tenant) {
            Ok(tail) => tail,
            Err(error) => {
                let _ = conn.batch("ROLLBACK");
                tracing::error!(%error, "cannot start a write transaction");
                return fail_all(jobs, &Self::failure(&error));
            }
        };
        // The batch's key rows in one round trip instead of one each (an operation alone reads its own).
        let hints: Vec<&KeyHint> = jobs.iter().filter_map(|job| job.key()).collect();
        let keys = if hints.len() > 1 {
            match queries::load_keys(conn, tenant, &hints) {
                Ok(keys) => keys,
                Err(error) => {
                    let _ = conn.batch("ROLLBACK");
                    tracing::error!(%error, "cannot read the batch's key rows");
                    return fail_all(jobs, &Self::failure(&error));
                }
            }
        } else {
            KnownKeys::new()
        };
        let mut tx = PgTx::new(conn, tenant, tail.clone(), self.clock.now()).knowing(keys);
        let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            match tx.poisoned() {
                // The transaction will be rolled back: the rest of the batch is not run.
                Some(error) => job.fail(error),
                None => {
                    // A savepoint here is the transaction's own bookkeeping (no statement): an operational error
                    // poisons the transaction, and the tenant's batch fails as a whole.
                    let _ = job.run(&mut tx, Isolation::Savepoint);
                    ran.push(job);
                }
            }
        }
        tx.flush();
        let poisoned = tx.poisoned();
        let (after, published) = tx.finish();
        let committed = match poisoned {
            Some(error) => Err(error),
            None => finish(conn, tenant, &tail, &after, &published, &self.instance),
        };
        match committed {
            Ok(()) => acknowledge(&self.counters, &self.events, started, published, ran),
            Err(error) => {
                tracing::error!(%error, "commit failed; the batch is lost and every caller is told");
                let _ = conn.batch("ROLLBACK");
                let failure = if conn.is_closed() {
                    BatchFailure::Unavailable(error.to_string())
                } else {
                    Self::failure(&error)
                };
                for job in ran {
                    job.finish(Some(&failure));
                }
            }
        }
    }
}

/// `BEGIN`, then the tenant's head row, locked until the commit (created at the genesis for a new tenant).
fn begin(conn: &mut Conn, tenant: &str) -> Result<Tail> {
    conn.batch("BEGIN")?;
    let row = conn.query_opt(
        "INSERT INTO ledger_heads (tenant, seq, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (tenant) DO UPDATE SET tenant = excluded.tenant RETURNING seq, hash, at",
        &[&tenant, &GENESIS_HASH],
    )?;
    let row = row.ok_or_else(|| AuthorityError::Corrupt("the head row did not answer".into()))?;
    let seq = unsigned(row.try_get(0)?, "a chain head's sequence number")?;
    let at = row
        .try_get::<_, Option<String>>(2)?
        .map(|at| {
            parse_iso8601(&at).ok_or_else(|| broken(tenant, seq, "its head's time does not parse"))
        })
        .transpose()?;
    Ok(Tail {
        seq,
        hash: row.try_get(1)?,
        at,
    })
}

/// Moves the head row (once), announces the approval changes and commits.
fn finish(
    conn: &mut Conn,
    tenant: &str,
    before: &Tail,
    after: &Tail,
    published: &[ApprovalEvent],
    instance: &str,
) -> Result<()> {
    if after != before {
        conn.execute(
            "UPDATE ledger_heads SET seq = $2, hash = $3, at = $4 WHERE tenant = $1",
            &[
                &tenant,
                &signed(after.seq),
                &after.hash,
                &after.at.map(format_rfc3339),
            ],
        )?;
    }
    for event in published {
        let notice = Notice {
            origin: instance.to_owned(),
            tenant: event.approval.tenant.clone(),
            id: event.approval.id.clone(),
        };
        let payload = serde_json::to_string(&notice)
            .map_err(|e| AuthorityError::Corrupt(format!("a notice does not serialize: {e}")))?;
        conn.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    }
    conn.batch("COMMIT")
}

impl Runner for PgRunner {
    fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        // One transaction per tenant (what a database distributed by tenant needs), each tenant's operations in
        // the order they were queued.
        let mut groups: Vec<(String, Vec<Box<dyn Job>>)> = Vec::new();
        for job in jobs {
            match groups.iter_mut().find(|(tenant, _)| tenant == job.tenant()) {
                Some((_, group)) => group.push(job),
                None => groups.push((job.tenant().to_owned(), vec![job])),
            }
        }
        for (tenant, jobs) in groups {
            self.run_tenant(&tenant, jobs);
        }
    }

    fn recover(&mut self) {
        // A batch panicked half-way: its transaction may be open. A fresh connection is the sure way back.
        self.conn = None;
    }

    fn close(&mut self) {
        self.conn = None;
    }
}
