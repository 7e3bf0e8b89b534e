//! A SQLite batch: `BEGIN IMMEDIATE`, every queued operation in its savepoint, each moved chain's head row once, then
//! `COMMIT`. Another process (the operator CLI) may write the same file; the runner notices through `PRAGMA
//! data_version` and reloads the chains' ends before appending.

use std::sync::Arc;

use rusqlite::Connection;

use super::tails::Tails;
use super::tx::SqliteTx;
use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::store::job::{BatchFailure, Job, Reply, Runner, WriterCounters, acknowledge, fail_all};

/// The connection and what the batch runner keeps between batches.
pub(crate) struct SqliteRunner {
    conn: Connection,
    tails: Tails,
    seen_data_version: Option<i64>,
    clock: Arc<dyn Clock>,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
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
            seen_data_version: None,
            clock,
            counters,
            events,
        }
    }
}

impl Runner for SqliteRunner {
    fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        let started = std::time::Instant::now();
        let conn = &self.conn;
        if let Err(error) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(%error, "cannot start a write transaction");
            fail_all(jobs, &BatchFailure::Failed(error.to_string()));
            return;
        }
        // Another process may have appended to the ledger since our last commit.
        let data_version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
            .ok();
        if data_version.is_none() || data_version != self.seen_data_version {
            self.tails.clear();
            self.seen_data_version = data_version;
        }
        let mut tx = SqliteTx::new(conn, &mut self.tails, self.clock.now());
        let replies: Vec<Box<dyn Reply>> = jobs.into_iter().map(|job| job.run(&mut tx)).collect();
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
            Ok(published) => acknowledge(&self.counters, &self.events, started, published, replies),
            Err(failure) => {
                tracing::error!(error = %failure, "commit failed; the batch is lost and every caller is told");
                let _ = conn.execute_batch("ROLLBACK");
                self.tails.clear();
                self.seen_data_version = None;
                for reply in replies {
                    reply.finish(Some(&failure));
                }
            }
        }
    }

    fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tails.clear();
        self.seen_data_version = None;
    }
}
