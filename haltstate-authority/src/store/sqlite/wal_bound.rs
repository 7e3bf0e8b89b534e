//! Keeps the WAL from growing without end while readers keep it in use.
//!
//! After a commit that leaves the WAL at `checkpoint_pages` or more, SQLite copies its pages into the database up
//! to the oldest snapshot a reader holds; the writer starts the WAL over (writes it from the beginning again) only
//! when every page was copied and no reader is left on it. Readers that overlap one another (two searches of one
//! operator, staggered) never leave it: the WAL grew 1.1 GB in 40 s under load, every commit appending to a longer
//! file (BENCHMARKS.md, "2026-12-06, fourth session"). Past [`GROWTH`] times its usual size the writer runs a
//! `RESTART` checkpoint itself, between batches: SQLite then lets no commit in, copies the rest, and waits (at most
//! [`WAIT`]) for the readers of older snapshots to end, while new readers read the database file. Long reads go a
//! window at a time (`store/windows.rs`), so they end within milliseconds. The next commit starts the WAL over
//! and cuts the file back to the bound (`journal_size_limit`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How many times the automatic checkpoint's size the WAL may reach before the writer starts it over.
const GROWTH: u64 = 4;
/// The smallest bound, whatever `checkpoint_pages` (a test's or a tiny deployment's handful of pages).
const MIN_BYTES: u64 = 1 << 20;
/// How often the writer looks at the file's size (once per batch at most).
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long a restart waits for the readers of older snapshots: commits wait as long.
const WAIT: Duration = Duration::from_millis(100);
/// The longest pause between attempts while readers keep a restart from finishing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The writer's bound on its WAL file.
#[derive(Debug)]
pub(crate) struct WalBound {
    wal: PathBuf,
    limit: u64,
    next_check: Instant,
    backoff: Duration,
}

impl WalBound {
    /// The bound for the database at `path`, whose writer checkpoints at `checkpoint_pages`; sets it on `conn` as
    /// the size the WAL file is cut back to after it starts over.
    pub(crate) fn new(
        conn: &Connection,
        path: &std::path::Path,
        checkpoint_pages: u32,
    ) -> crate::error::Result<Self> {
        let page_size: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let limit = (u64::from(checkpoint_pages) * page_size * GROWTH).max(MIN_BYTES);
        conn.query_row(&format!("PRAGMA journal_size_limit = {limit}"), [], |_| {
            Ok(())
        })?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self {
            wal: PathBuf::from(wal),
            limit,
            next_check: Instant::now(),
            backoff: CHECK_EVERY,
        })
    }

    /// After a commit: starts the WAL over if it has grown past the bound (at most every [`CHECK_EVERY`]).
    pub(crate) fn after_commit(&mut self, conn: &Connection, busy_timeout: Duration) {
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        let Ok(size) = std::fs::metadata(&self.wal).map(|m| m.len()) else {
            return;
        };
        if size <= self.limit {
            self.backoff = CHECK_EVERY;
            return;
        }
        match restart(conn, busy_timeout) {
            Ok(true) => {
                self.backoff = CHECK_EVERY;
                tracing::info!(bytes = size, "the WAL grew past its bound and starts over");
            }
            Ok(false) => {
                self.next_check = now + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                tracing::warn!(
                    bytes = size,
                    "the WAL grew past its bound; a reader kept it from starting over, tried again later"
                );
            }
            Err(error) => {
                self.next_check = now + MAX_BACKOFF;
                tracing::error!(%error, "a checkpoint of the WAL failed");
            }
        }
    }
}

/// A `RESTART` checkpoint waiting at most [`WAIT`]: whether it finished (no reader was left on the WAL).
fn restart(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<bool> {
    conn.busy_timeout(WAIT)?;
    let busy = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
        row.get::<_, i64>(0)
    });
    conn.busy_timeout(busy_timeout)?;
    Ok(busy? == 0)
}
