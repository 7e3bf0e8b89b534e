//! A SQLite batch: `BEGIN IMMEDIATE`, every queued operation in its savepoint, the ledger's head row once, then
//! `COMMIT`. Another process (the operator CLI) may write the same file; the runner notices through `PRAGMA
//! data_version` and reloads the end of the ledger chain before appending.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::ledger::Tail;
use super::tx::SqliteTx;
use crate::clock::Clock;
use crate::events::ApprovalEvent;
use crate::store::job::{Job, Reply, Runner, WriterCounters, fail_all};

/// The connection and what the batch runner keeps between batches.
pub(crate) struct SqliteRunner {
    conn: Connection,
    tail: Option<Tail>,
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
            tail: None,
            seen_data_version: None,
            clock,
            counters,
            events,
        }
    }
}

impl Runner for SqliteRunner {
    fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        let conn = &self.conn;
        if let Err(error) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(%error, "cannot start a write transaction");
            fail_all(jobs, &error.to_string());
            return;
        }
        // Another process may have appended to the ledger since our last commit.
        let data_version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
            .ok();
        if self.tail.is_none() || data_version != self.seen_data_version {
            match Tail::load(conn) {
                Ok(loaded) => self.tail = Some(loaded),
                Err(error) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    fail_all(jobs, &error.to_string());
                    return;
                }
            }
            self.seen_data_version = data_version;
        }
        let Some(current_tail) = self.tail.as_mut() else {
            return;
        };
        let tail_before = current_tail.clone();
        let mut tx = SqliteTx::new(conn, current_tail, self.clock.now());
        let count = jobs.len() as u64;
        let replies: Vec<Box<dyn Reply>> = jobs.into_iter().map(|job| job.run(&mut tx)).collect();
        let (tail, published) = tx.finish();
        // The head row moves once per transaction, with the last record this batch appended.
        let head = if *tail == tail_before {
            Ok(())
        } else {
            tail.store_head(conn)
        };
        let committed = head.map_err(|e| e.to_string()).and_then(|()| {
            conn.prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        match committed {
            Ok(()) => {
                self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                self.counters.operations.fetch_add(count, Ordering::Relaxed);
                // Publish before answering: a caller that sees its acknowledgement finds the event already out.
                for event in published {
                    // No subscriber is not an error.
                    let _ = self.events.send(event);
                }
                for reply in replies {
                    reply.finish(None);
                }
            }
            Err(message) => {
                tracing::error!(error = %message, "commit failed; the batch is lost and every caller is told");
                let _ = conn.execute_batch("ROLLBACK");
                self.tail = Some(tail_before);
                self.seen_data_version = None;
                for reply in replies {
                    reply.finish(Some(&message));
                }
            }
        }
    }

    fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tail = None;
        self.seen_data_version = None;
    }
}
