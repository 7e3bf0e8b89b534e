//! Reads outside the writer's transaction, on a small pool of read-only connections (WAL lets them run beside
//! the writer).

use crate::pending_approvals::PendingApprovals;
use crate::store::sql::Order;
use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;
use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, EvidenceRecord, KeyInfo, KillScope,
    KillState, KillStatus, LedgerHead, Principal, VerifyReport,
};

use super::{BUSY_TIMEOUT, checkpoints, queries, verify, webhooks};
use crate::console_session::{ConsoleSession, SessionId};
use crate::error::Result;
use crate::store::tx::Reads;
use crate::webhooks::{DeliveryRecord, Webhook};

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

    fn pending_counts(&self, now: OffsetDateTime) -> Result<Vec<PendingApprovals>> {
        self.readers.with(|conn| {
            let mut statement = conn.prepare_cached(crate::store::sql::PENDING_COUNTS)?;
            let rows = statement.query_map([to_micros(now)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
            rows.map(|row| {
                let (tenant, count, oldest) = row?;
                PendingApprovals::new(tenant, count, oldest)
            })
            .collect()
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
            let mut statement = conn.prepare_cached(crate::store::sql::OVERDUE_TENANTS)?;
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

    fn chained_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
        order: Order,
    ) -> Result<Vec<ChainedRecord>> {
        self.readers
            .with(|conn| queries::evidence(conn, tenant, query, order))
    }

    fn verify_tenant(&self, tenant: &str) -> Result<VerifyReport> {
        self.readers
            .with(|conn| verify::verify_tenant(conn, tenant))
    }

    fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        self.readers.with(|conn| queries::tenant_head(conn, tenant))
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.readers.with(verify::verify)
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

    fn tree_note(&self, tenant: &str, size: u64, key_id: &str) -> Result<Option<String>> {
        self.readers
            .with(|conn| checkpoints::tree_note(conn, tenant, size, key_id))
    }

    fn tree_checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>> {
        self.readers
            .with(|conn| checkpoints::tree_from(conn, tenant, seq))
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

    fn webhook_tenants(&self) -> Result<Vec<String>> {
        self.readers.with(webhooks::tenants)
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

    fn tree_hashes(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        use crate::store::tree::HashStore;
        self.readers
            .with(|conn| super::tree::SqliteHashes(conn).read(tenant, indexes))
    }

    fn session(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<ConsoleSession>> {
        self.readers
            .with(|conn| super::console::find(conn, id, now))
    }

    fn pending_count(&self, tenant: &str, now: OffsetDateTime, at_most: u64) -> Result<u64> {
        self.readers.with(|conn| {
            let counted: i64 = conn
                .prepare_cached(crate::store::sql::PENDING_OF_TENANT)?
                .query_row(
                    rusqlite::params![
                        tenant,
                        to_micros(now),
                        i64::try_from(at_most).unwrap_or(i64::MAX)
                    ],
                    |row| row.get(0),
                )?;
            Ok(u64::try_from(counted).unwrap_or(0))
        })
    }

    fn changes(&self, tenant: &str, subject: &str, limit: u32) -> Result<Vec<EvidenceRecord>> {
        self.readers
            .with(|conn| super::console::changes(conn, tenant, subject, limit))
    }

    fn activity(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EvidenceRecord>> {
        self.readers
            .with(|conn| super::console::activity(conn, tenant, since, limit))
    }
}
