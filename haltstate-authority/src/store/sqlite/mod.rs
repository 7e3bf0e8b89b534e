//! SQLite storage: the file, its schema, the batch runner, the transaction and a small pool of readers.
//!
//! WAL mode lets readers (and another process, such as the operator CLI) work while the writer writes.

mod checkpoints;
mod ledger;
pub(crate) mod queries;
mod rechain;
mod runner;
mod schema;
mod tx;
mod usage;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;
use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, KeyInfo, KillScope, KillState,
    KillStatus, LedgerHead, Principal, VerifyReport,
};

use super::Durability;
use super::tx::Reads;
use crate::error::Result;
use crate::webhooks::{DeliveryRecord, Webhook};

pub(crate) use runner::SqliteRunner;

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

/// [`Reads`] on the pool.
#[derive(Debug)]
pub(crate) struct SqliteReads {
    readers: Readers,
}

impl SqliteReads {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            readers: Readers::new(path),
        }
    }
}

impl Reads for SqliteReads {
    fn approval(&self, tenant: &str, id: &str, now: OffsetDateTime) -> Result<Option<Approval>> {
        self.readers
            .with(|conn| queries::load_approval(conn, tenant, id, now))
    }

    fn approvals(
        &self,
        tenant: &str,
        status: Option<ApprovalStatus>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>> {
        self.readers
            .with(|conn| queries::list_approvals(conn, tenant, status, limit, now))
    }

    fn approvals_since(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>> {
        self.readers
            .with(|conn| queries::approvals_since(conn, tenant, since, limit, now))
    }

    fn ping(&self) -> Result<()> {
        self.readers
            .with(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn pending_counts(&self, now: OffsetDateTime) -> Result<Vec<(String, u64)>> {
        self.readers.with(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT tenant, count(*) FROM approvals WHERE status = 'pending' AND expires_us > ?1 \
                 GROUP BY tenant",
            )?;
            let rows = statement.query_map([to_micros(now)], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn kill_switches(&self) -> Result<Vec<(KillScope, KillState)>> {
        self.readers.with(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT tenant, agent_id, state FROM kill_switch")?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            let mut switches = Vec::new();
            for row in rows {
                let (tenant, agent, state) = row?;
                switches.push(queries::kill_row(tenant, agent, &state));
            }
            Ok(switches)
        })
    }

    fn overdue_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        self.readers.with(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT DISTINCT tenant FROM approvals WHERE status = 'pending' AND expires_us <= ?1",
            )?;
            let rows = statement.query_map([to_micros(now)], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn kill_status(&self, tenant: &str, agent: &str) -> Result<KillStatus> {
        self.readers
            .with(|conn| queries::kill_status(conn, tenant, agent))
    }

    fn kill_state(&self, scope: &KillScope) -> Result<KillState> {
        self.readers.with(|conn| queries::kill_state(conn, scope))
    }

    fn chained_evidence(&self, tenant: &str, query: &EvidenceQuery) -> Result<Vec<ChainedRecord>> {
        self.readers
            .with(|conn| queries::evidence(conn, tenant, query))
    }

    fn verify_tenant(&self, tenant: &str) -> Result<VerifyReport> {
        self.readers
            .with(|conn| ledger::verify_tenant(conn, tenant))
    }

    fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        self.readers.with(|conn| queries::tenant_head(conn, tenant))
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.readers.with(ledger::verify)
    }

    fn authenticate(&self, tenant: &str, secret: &str) -> Result<Principal> {
        self.readers
            .with(|conn| queries::authenticate(conn, tenant, secret))
    }

    fn keys(&self, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
        self.readers
            .with(|conn| queries::list_keys(conn, tenant, live_only))
    }

    fn key_info(&self, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
        self.readers
            .with(|conn| queries::load_key_info(conn, tenant, id))
    }

    fn tenants(&self) -> Result<Vec<String>> {
        self.readers.with(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT tenant FROM ledger_heads ORDER BY tenant")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn checkpoints(&self, tenant: &str) -> Result<Vec<haltstate_types::proof::SignedCheckpoint>> {
        self.readers.with(|conn| checkpoints::list(conn, tenant))
    }

    fn checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>> {
        self.readers
            .with(|conn| checkpoints::from(conn, tenant, seq))
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>> {
        self.readers.with(|conn| webhooks::list(conn, tenant))
    }

    fn deliveries(&self, tenant: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        self.readers
            .with(|conn| webhooks::deliveries(conn, tenant, limit))
    }

    fn due_delivery_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        self.readers.with(|conn| webhooks::due_tenants(conn, now))
    }

    fn key_state(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<crate::state_rows::KeyStatus>> {
        self.readers
            .with(|conn| queries::key_state(conn, tenant, agent, key, now))
    }
}

/// Creates or migrates the file at `path`; answers its schema version.
pub(crate) fn migrate_file(path: &Path) -> Result<i64> {
    open_writer(path, Durability::Full, DEFAULT_CHECKPOINT_PAGES)?;
    Ok(schema::SCHEMA_VERSION)
}

/// Verifies the ledger of the file at `path`, read-only.
pub(crate) fn verify_file(path: &Path) -> Result<VerifyReport> {
    ledger::verify(&open_existing_read_only(path)?)
}

/// Verifies the ledger on an open connection.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn verify_connection(conn: &Connection) -> Result<VerifyReport> {
    ledger::verify(conn)
}
