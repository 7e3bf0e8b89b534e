//! A SQLite batch: `BEGIN IMMEDIATE`, every queued operation, each moved chain's head row once, then `COMMIT`.
//! Another process (the operator CLI) may write the same file; the runner notices through `PRAGMA data_version`
//! and reloads the chains' ends and the usage buckets before using them.
//!
//! Operations run without savepoints: SQLite copies every page an operation changes into its savepoint's journal,
//! a fifth of the writer's work. When one fails operationally (its writes may be half made), the transaction is
//! rolled back and the batch runs again with a savepoint per operation, the failed one's answer kept; the batches
//! after it keep their savepoints until one passes without such a failure, so an operation that keeps failing
//! costs its batch one run, not two.

use std::sync::Arc;

use rusqlite::Connection;

use super::key_rowids::KeyRowids;
use super::tails::Tails;
use super::tx::SqliteTx;
use super::wal_bound::WalBound;
use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::store::job::{
    BatchFailure, Isolation, Job, Ran, Runner, WriterCounters, acknowledge, fail_all,
};
use crate::store::usage_batch::UsageBatch;

/// The connection and what the batch runner keeps between batches.
pub(crate) struct SqliteRunner {
    conn: Connection,
    tails: Tails,
    /// The usage buckets the last transactions read and charged, as stored.
    usage: UsageBatch,
    /// Where recent key rows were stored.
    rowids: KeyRowids,
    seen_data_version: Option<i64>,
    /// The last batch had an operation fail operationally: this one runs each under a savepoint.
    isolate: bool,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    /// Starts the WAL over when readers kept it growing (none in tests of the runner alone).
    wal: Option<WalBound>,
}

impl SqliteRunner {
    pub(crate) fn new(
        conn: Connection,
        clock: Arc<dyn Clock>,
        counters: Arc<WriterCounters>,
        events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    ) -> Self {
        Self {
            conn,
            tails: Tails::default(),
            usage: UsageBatch::default(),
            rowids: KeyRowids::default(),
            seen_data_version: None,
            isolate: false,
            clock,
            counters,
            events,
            wal: None,
        }
    }

    /// Keeps the WAL within `bound` (after the batches' callers are answered).
    pub(crate) fn bounding_wal(mut self, bound: WalBound) -> Self {
        self.wal = Some(bound);
        self
    }

    /// `BEGIN IMMEDIATE`; the chains' ends are forgotten if another process wrote since our last commit. A
    /// transaction that does not start is logged, and is what every caller of the batch is told.
    fn begin(&mut self) -> Result<(), BatchFailure> {
        if let Err(error) = self
            .conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(%error, "cannot start a write transaction");
            return Err(BatchFailure::Failed(error.to_string()));
        }
        let data_version = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
            .ok();
        if data_version.is_none() || data_version != self.seen_data_version {
            self.tails.clear();
            self.usage.clear();
            self.rowids.clear();
            self.seen_data_version = data_version;
        }
        Ok(())
    }

    /// Rolls the open transaction back, if one is open, and forgets the chains' ends and usage copies it had moved.
    fn roll_back(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tails.clear();
        self.usage.clear();
        self.rowids.clear();
        self.seen_data_version = None;
    }
}

/// Runs `jobs` in order, but the one at `skip` (whose answer stands); returns the index of the first that failed
/// operationally. Without isolation it stops there: the transaction is to be rolled back.
fn run_jobs(
    tx: &mut SqliteTx<'_>,
    jobs: &mut [Box<dyn Job>],
    isolation: Isolation,
    skip: Option<usize>,
) -> Option<usize> {
    let mut failed = None;
    for (at, job) in jobs.iter_mut().enumerate() {
        if Some(at) == skip {
            continue;
        }
        if job.run(tx, isolation) == Ran::Failed {
            failed.get_or_insert(at);
            if isolation == Isolation::None {
                break;
            }
        }
    }
    failed
}

impl Runner for SqliteRunner {
    fn run_batch(&mut self, mut jobs: Vec<Box<dyn Job>>) {
        let started = std::time::Instant::now();
        if let Err(failure) = self.begin() {
            return fail_all(jobs, &failure);
        }
        let isolation = if self.isolate {
            Isolation::Savepoint
        } else {
            Isolation::None
        };
        let mut tx = SqliteTx::new(
            &self.conn,
            &mut self.tails,
            &mut self.usage,
            &mut self.rowids,
            self.clock.now(),
        );
        let mut failed = run_jobs(&mut tx, &mut jobs, isolation, None);
        if let (Isolation::None, Some(at)) = (isolation, failed) {
            drop(tx);
            tracing::warn!(
                "an operation failed part-way; its batch runs again, each operation under a savepoint"
            );
            self.roll_back();
            if let Err(failure) = self.begin() {
                return fail_all(jobs, &failure);
            }
            tx = SqliteTx::new(
                &self.conn,
                &mut self.tails,
                &mut self.usage,
                &mut self.rowids,
                self.clock.now(),
            );
            failed = run_jobs(&mut tx, &mut jobs, Isolation::Savepoint, Some(at)).or(failed);
        }
        self.isolate = failed.is_some();
        let conn = &self.conn;
        let finished = tx.finish().map_err(|e| e.to_string());
        // Each moved chain's head row moves once per transaction, with the last record this batch appended.
        let committed = finished
            .and_then(|published| {
                self.tails
                    .store_heads(conn)
                    .map(|()| published)
                    .map_err(|e| e.to_string())
            })
            .and_then(|published| {
                conn.prepare_cached("COMMIT")
                    .and_then(|mut s| s.execute([]))
                    .map(|_| published)
                    .map_err(|e| e.to_string())
            })
            .map_err(BatchFailure::Failed);
        match committed {
            Ok(published) => {
                acknowledge(&self.counters, &self.events, started, published, jobs);
                if let Some(wal) = &mut self.wal {
                    wal.after_commit(&self.conn, super::BUSY_TIMEOUT);
                }
            }
            Err(failure) => {
                tracing::error!(error = %failure, "commit failed; the batch is lost and every caller is told");
                self.roll_back();
                for job in jobs {
                    job.finish(Some(&failure));
                }
            }
        }
    }

    fn recover(&mut self) {
        self.roll_back();
    }
}
