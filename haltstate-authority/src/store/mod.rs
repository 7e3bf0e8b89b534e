//! SQLite storage: the file, its schema, the single writer and a small pool of readers.
//!
//! WAL mode lets readers (and another process, such as the operator CLI) work while the writer writes.

pub(crate) mod batch;
pub(crate) mod ops;
pub(crate) mod pending;
pub(crate) mod queries;
mod schema;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// How hard a commit works to survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync at every commit (`synchronous = FULL`): an acknowledged record survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only (`synchronous = NORMAL`): survives a process crash, may lose the last
    /// commits on power loss.
    Normal,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which a commit checkpoints, unless configured otherwise: ~40 MB of WAL.
///
/// SQLite's default (1,000) made checkpoints 7% of the server's CPU under load, copying the same hot pages (the
/// ledger's tail, index leaves) back into the database again and again; at 10,000 each is copied once per much
/// longer stretch. Measured at 64 connections: 6,100-6,500 -> 7,100-7,350 actions/s; 20,000 gave no more.
pub const DEFAULT_CHECKPOINT_PAGES: u32 = 10_000;

pub(crate) fn open_writer(
    path: &Path,
    durability: Durability,
    checkpoint_pages: u32,
) -> Result<Connection> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
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
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn)?;
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
    if version > schema::SCHEMA_VERSION {
        return Err(crate::error::AuthorityError::SchemaTooNew {
            found: version,
            supported: schema::SCHEMA_VERSION,
        });
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('ledger', 'ledger_head', 'api_keys')",
        [],
        |row| row.get(0),
    )?;
    if tables != 3 {
        return Err(not_ours("its tables are not a HaltState ledger".into()));
    }
    Ok(conn)
}

/// Read-only connections, reused.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a pooled connection.
    pub(crate) fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn
            }
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        result
    }
}
