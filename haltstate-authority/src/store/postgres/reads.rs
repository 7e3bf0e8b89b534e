//! [`Reads`] on PostgreSQL: a few reader threads, each with its own connection, take reads from a queue.
//!
//! The blocking client cannot run on a caller's thread (it may be an async runtime's), so a read is handed to a
//! reader thread and the caller waits for its answer.

use crate::pending_approvals::PendingApprovals;
use crate::store::sql::Order;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, KeyInfo, KillScope, KillState,
    KillStatus, LedgerHead, Principal, VerifyReport,
};

use super::conn::{Conn, connect};
use super::{checkpoints, queries, verify, webhooks};
use crate::console_session::{ConsoleSession, SessionId};
use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result};
use crate::store::tx::Reads;
use crate::webhooks::{DeliveryRecord, Webhook};

/// Reader threads (and connections) per authority.
const READERS: usize = 4;

type ReadJob = Box<dyn FnOnce(&mut Reader) + Send>;

/// A reader thread's connection (reconnected when lost).
struct Reader {
    url: PostgresUrl,
    conn: Option<Conn>,
}

/// The queue of reads and the threads serving it (they stop when this is dropped).
#[derive(Debug)]
pub(crate) struct PgReads {
    queue: Mutex<Sender<ReadJob>>,
}

impl PgReads {
    pub(crate) fn start(url: PostgresUrl) -> Result<Self> {
        let (sender, receiver) = std::sync::mpsc::channel::<ReadJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..READERS {
            let (url, receiver) = (url.clone(), receiver.clone());
            std::thread::Builder::new()
                .name(format!("haltstate-reader-{index}"))
                .spawn(move || serve(&url, &receiver))
                .map_err(|e| {
                    AuthorityError::storage(format!("cannot start a reader thread: {e}"))
                })?;
        }
        Ok(Self {
            queue: Mutex::new(sender),
        })
    }

    /// Runs `read` on a reader's connection and waits for its answer.
    fn with<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |reader: &mut Reader| {
            let _ = reply.send(run(reader, read));
        });
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| AuthorityError::Closed)?;
        answer.recv().unwrap_or(Err(AuthorityError::Closed))
    }
}

/// Runs one read, connecting first when the reader has no live connection.
fn run<T>(reader: &mut Reader, read: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    if reader.conn.as_ref().is_none_or(Conn::is_closed) {
        reader.conn = None;
        reader.conn = Some(connect(&reader.url)?);
    }
    let Some(conn) = reader.conn.as_mut() else {
        return Err(AuthorityError::Closed);
    };
    let result = read(conn);
    if conn.is_closed() {
        reader.conn = None;
    }
    result
}

fn serve(url: &PostgresUrl, receiver: &Mutex<Receiver<ReadJob>>) {
    let mut reader = Reader {
        url: url.clone(),
        conn: None,
    };
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(&mut reader),
            // Every sender is gone: the authority was dropped.
            Err(_) => return,
        }
    }
}

impl Reads for PgReads {
    fn approval(&self, tenant: &str, id: &str, now: OffsetDateTime) -> Result<Option<Approval>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |c| queries::load_approval(c, &tenant, &id, now))
    }

    fn approvals(
        &self,
        tenant: &str,
        status: Option<ApprovalStatus>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>> {
        let tenant = tenant.to_owned();
        self.with(move |c| queries::list_approvals(c, &tenant, status, limit, now))
    }

    fn approvals_since(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>> {
        let tenant = tenant.to_owned();
        self.with(move |c| queries::approvals_since(c, &tenant, since, limit, now))
    }

    fn ping(&self) -> Result<()> {
        self.with(|c| c.query_opt("SELECT 1", &[]).map(drop))
    }

    fn pending_counts(&self, now: OffsetDateTime) -> Result<Vec<PendingApprovals>> {
        self.with(move |c| {
            let rows = c.query(
                &queries::PENDING_COUNTS,
                &[&haltstate_types::timestamp::to_micros(now)],
            )?;
            rows.iter()
                .map(|row| PendingApprovals::new(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
                .collect()
        })
    }

    fn kill_switches(&self) -> Result<Vec<(KillScope, KillState)>> {
        self.with(|c| {
            let rows = c.query("SELECT tenant, agent_id, state FROM kill_switch", &[])?;
            rows.iter()
                .map(|row| {
                    let state: String = row.try_get(2)?;
                    Ok(crate::store::sqlite::queries::kill_row(
                        row.try_get(0)?,
                        row.try_get(1)?,
                        &state,
                    ))
                })
                .collect()
        })
    }

    fn overdue_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        self.with(move |c| queries::overdue_tenants(c, now))
    }

    fn kill_status(&self, tenant: &str, agent: &str) -> Result<KillStatus> {
        let (tenant, agent) = (tenant.to_owned(), agent.to_owned());
        self.with(move |c| queries::kill_status(c, &tenant, &agent))
    }

    fn tenants(&self) -> Result<Vec<String>> {
        self.with(|c| {
            c.query("SELECT tenant FROM ledger_heads ORDER BY tenant", &[])?
                .iter()
                .map(|row| Ok(row.try_get(0)?))
                .collect()
        })
    }

    fn checkpoints(&self, tenant: &str) -> Result<Vec<haltstate_types::proof::SignedCheckpoint>> {
        let tenant = tenant.to_owned();
        self.with(move |c| checkpoints::list(c, &tenant))
    }

    fn checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>> {
        let tenant = tenant.to_owned();
        self.with(move |c| checkpoints::from(c, &tenant, seq))
    }

    fn tree_note(&self, tenant: &str, size: u64, key_id: &str) -> Result<Option<String>> {
        let (tenant, key_id) = (tenant.to_owned(), key_id.to_owned());
        self.with(move |c| checkpoints::tree_note(c, &tenant, size, &key_id))
    }

    fn tree_checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>> {
        let tenant = tenant.to_owned();
        self.with(move |c| checkpoints::tree_from(c, &tenant, seq))
    }

    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>> {
        let tenant = tenant.to_owned();
        self.with(move |c| webhooks::list(c, &tenant))
    }

    fn deliveries(&self, tenant: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let tenant = tenant.to_owned();
        self.with(move |c| webhooks::deliveries(c, &tenant, limit))
    }

    fn due_delivery_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        self.with(move |c| webhooks::due_tenants(c, now))
    }

    fn webhook_tenants(&self) -> Result<Vec<String>> {
        self.with(webhooks::tenants)
    }

    fn kill_state(&self, scope: &KillScope) -> Result<KillState> {
        let scope = scope.clone();
        self.with(move |c| queries::kill_state(c, &scope))
    }

    fn chained_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
        order: Order,
    ) -> Result<Vec<ChainedRecord>> {
        let (tenant, query) = (tenant.to_owned(), query.clone());
        self.with(move |c| queries::evidence(c, &tenant, &query, order))
    }

    fn verify_tenant(&self, tenant: &str) -> Result<VerifyReport> {
        let tenant = tenant.to_owned();
        self.with(move |c| verify::verify_tenant(c, &tenant))
    }

    fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        let tenant = tenant.to_owned();
        self.with(move |c| queries::tenant_head(c, &tenant))
    }

    fn verify(&self) -> Result<VerifyReport> {
        self.with(verify::verify)
    }

    fn authenticate(&self, tenant: &str, secret: &str) -> Result<Principal> {
        let (tenant, secret) = (tenant.to_owned(), secret.to_owned());
        self.with(move |c| queries::authenticate(c, &tenant, &secret))
    }

    fn keys(&self, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
        let tenant = tenant.to_owned();
        self.with(move |c| queries::list_keys(c, &tenant, live_only))
    }

    fn key_info(&self, tenant: &str, id: &str) -> Result<Option<KeyInfo>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |c| queries::load_key_info(c, &tenant, &id))
    }

    fn key_state(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<crate::state_rows::KeyStatus>> {
        let (tenant, agent, key) = (tenant.to_owned(), agent.to_owned(), key.to_owned());
        self.with(move |c| queries::key_state(c, &tenant, &agent, &key, now))
    }

    fn tree_hashes(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        use crate::store::tree::HashStore;
        let (tenant, indexes) = (tenant.to_owned(), indexes.to_vec());
        self.with(move |c| {
            super::tree::PgHashes(std::cell::RefCell::new(c)).read(&tenant, &indexes)
        })
    }

    fn session(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<ConsoleSession>> {
        let id = id.clone();
        self.with(move |c| super::console::find(c, &id, now))
    }

    fn pending_count(&self, tenant: &str, now: OffsetDateTime, at_most: u64) -> Result<u64> {
        let tenant = tenant.to_owned();
        self.with(move |c| super::console::pending_count(c, &tenant, now, at_most))
    }

    fn changes(
        &self,
        tenant: &str,
        subject: &str,
        limit: u32,
    ) -> Result<Vec<haltstate_types::EvidenceRecord>> {
        let (tenant, subject) = (tenant.to_owned(), subject.to_owned());
        self.with(move |c| super::console::changes(c, &tenant, &subject, limit))
    }

    fn activity(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<haltstate_types::EvidenceRecord>> {
        let tenant = tenant.to_owned();
        self.with(move |c| super::console::activity(c, &tenant, since, limit))
    }
}
