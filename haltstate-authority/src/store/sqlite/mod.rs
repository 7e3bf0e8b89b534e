//! SQLite storage: the file, its schema, the batch runner, the transaction and a small pool of readers.
//!
//! WAL mode lets readers (and another process, such as the operator CLI) work while the writer writes.

mod backup;
mod checkpoints;
mod columns;
mod console;
mod held;
mod key_heads;
mod key_rowids;
mod key_rows;
pub(crate) mod queries;
mod reads;
mod recent_hashes;
mod rechain;
mod runner;
mod schema;
mod tails;
pub(crate) mod times;
#[cfg(test)]
pub(crate) use tails::LEDGER_INSERT;
mod tree;
#[cfg(feature = "postgres")]
pub(crate) use tree::each_stored_hash;
mod tree_legacy;
mod tx;
mod usage;
#[cfg(test)]
mod usage_tests;
mod verify;
mod wal_bound;
pub(crate) mod webhooks;
#[cfg(test)]
mod writer_tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use haltstate_types::VerifyReport;

use super::Durability;
use crate::error::Result;

pub use backup::BackupReport;
pub(crate) use backup::backup;
pub(crate) use reads::SqliteReads;
pub(crate) use runner::SqliteRunner;
pub(crate) use wal_bound::WalBound;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which a commit checkpoints, unless configured otherwise: ~20 MB of WAL in a new file's 2 KiB
/// pages (~40 MB in an older file's 4 KiB pages).
///
/// SQLite's default (1,000) made checkpoints 7% of the server's CPU under load, copying the same hot pages (the
/// ledger's tail, index leaves) back into the database again and again; at 10,000 each is copied once per much
/// longer stretch. Measured at 64 connections: 6,100-6,500 -> 7,100-7,350 actions/s; 20,000 gave no more, with 4 KiB
/// pages and again with 2 KiB (1.017x actions/s, p99 1.41x: each checkpoint copies twice as much at once).
pub const DEFAULT_CHECKPOINT_PAGES: u32 = 10_000;

/// The page size of a new file: 2 KiB, half SQLite's default.
///
/// A commit writes each page it changed to the WAL whole (a copy, a checksum, a `pwrite`, then the sync), and an
/// action changes one leaf in each of about seven b-trees while adding a few hundred bytes: at 4 KiB most of what it
/// wrote was unchanged. Measured (BENCHMARKS.md, "2026-12-06, later"): embedded, one caller 0.91x CPU and 0.87x
/// wall, 8 callers with fsync 0.96x wall; the server at 64 connections unchanged. 1 KiB pages wrote ~10% more
/// frames under load (0.95x actions/s at 64 connections) and spill index keys over ~230 bytes into overflow
/// pages. A file keeps the size it was made with: SQLite cannot change it in WAL mode.
pub(crate) const PAGE_SIZE: u32 = 2048;

pub(crate) fn open_writer(
    path: &Path,
    durability: Durability,
    checkpoint_pages: u32,
) -> Result<Connection> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Before anything is written: SQLite fixes a file's page size when it creates it (a no-op on an existing one).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
    // What an update or delete frees is zeroed in the page being written anyway (no extra I/O): a replaced
    // webhook secret, a revoked key's row, do not linger in the file's free space.
    conn.pragma_update(None, "secure_delete", "FAST")?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn)?;
    // After the migrations, whose index builds may sort more than memory should hold. An operation's savepoint
    // journal (a batch runs again with one per operation after an operational error) lives as long as the
    // operation: on disk (spilled after 64 KiB) each page it saves was a `pwrite`, ~16 system calls per guard; in
    // memory it is a copy.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Creates the database file readable by its owner only, before SQLite does (with the process umask, usually
/// 0644). SQLite gives the `-wal` and `-shm` files the database file's permissions.
fn create_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(crate::error::AuthorityError::CommitFailed(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens an existing HaltState database read-only, refusing a file that is not one (without writing to it).
pub(crate) fn open_existing_read_only(path: &Path) -> Result<Connection> {
    let not_ours = |why: String| crate::error::AuthorityError::NotADatabase {
        path: path.display().to_string(),
        why,
    };
    if !path.is_file() {
        return Err(not_ours("no such file".into()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if version == 0 {
        return Err(not_ours("it holds no HaltState schema".into()));
    }
    if version < schema::SCHEMA_VERSION {
        return Err(crate::error::AuthorityError::SchemaTooOld {
            found: version,
            current: schema::SCHEMA_VERSION,
        });
    }
    if version > schema::SCHEMA_VERSION {
        return Err(crate::error::AuthorityError::SchemaTooNew {
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('ledger', 'ledger_heads', 'api_keys')",
        [],
        |row| row.get(0),
    )?;
    if tables != 3 {
        return Err(not_ours("its tables are not a HaltState ledger".into()));
    }
    Ok(conn)
}

/// Copies the WAL into the database file and empties it, from a connection of its own: the pages a change
/// replaced (a secret resealed) are then gone from both files.
pub(crate) fn truncate_wal(path: &Path) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    if busy != 0 {
        return Err(crate::error::AuthorityError::storage(
            "the WAL could not be emptied: a reader held it",
        ));
    }
    Ok(())
}

/// Creates or migrates the file at `path`; answers its schema version.
pub(crate) fn migrate_file(path: &Path) -> Result<i64> {
    open_writer(path, Durability::Full, DEFAULT_CHECKPOINT_PAGES)?;
    Ok(schema::SCHEMA_VERSION)
}

/// Verifies the ledger of the file at `path`, read-only.
pub(crate) fn verify_file(path: &Path) -> Result<VerifyReport> {
    verify::verify(&open_existing_read_only(path)?)
}

/// Verifies the ledger on an open connection.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn verify_connection(conn: &Connection) -> Result<VerifyReport> {
    verify::verify(conn)
}
