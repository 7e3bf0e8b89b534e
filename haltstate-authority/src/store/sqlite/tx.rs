//! [`Tx`] on a SQLite transaction.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;
use haltstate_types::{Approval, EvidenceRecord, KillScope, KillState, KillStatus};

use super::held::Held;
use super::key_rowids::KeyRowids;
use super::queries;
use super::tails::Tails;
use super::usage::UsageBuckets;
use crate::approval_event::ApprovalEvent;
use crate::console_session::{ConsoleSession, SessionId};
use crate::error::Result;
use crate::policy::Usage;
use crate::state_rows::{Charge, CheckRecord, KeyRecord};
use crate::store::chain::Tail;
use crate::store::kill_cache::KillCache;
use crate::store::sql::{
    APPROVAL_INSERT, APPROVAL_SETTLE, APPROVALS_OVERDUE, PENDING_OF_AGENT, PENDING_OF_TENANT,
    approval_json,
};
use crate::store::tx::{DeliveryUpdate, StoredKey, Tx};
use crate::store::usage_batch::UsageBatch;
use crate::webhooks::{Delivery, SealedSecret, Webhook, WebhookEvent};

/// The open transaction, the chains' tails, the batch's clock reading and the events it will publish.
pub(crate) struct SqliteTx<'a> {
    conn: &'a Connection,
    /// The hot path's statements, held for the batch.
    held: Held<'a>,
    tails: &'a mut Tails,
    now: OffsetDateTime,
    events: Vec<ApprovalEvent>,
    /// Per open savepoint: the tails it moved, as they were before, and the number of events before it.
    saved: Vec<(Vec<(String, Tail)>, usize)>,
    kill: KillCache,
    /// The writer's usage copies, kept from one transaction to the next.
    usage: &'a mut UsageBatch,
    /// Where the writer stored recent key rows, kept from one transaction to the next.
    rowids: &'a mut KeyRowids,
    /// The tenant, key and first ledger record of the key row the operation read last by its rowid: the record
    /// it appends under that key is filed there without a search (forgotten at each savepoint).
    key_head: Option<(String, String, u64)>,
}

impl<'a> SqliteTx<'a> {
    pub(crate) fn new(
        conn: &'a Connection,
        tails: &'a mut Tails,
        usage: &'a mut UsageBatch,
        rowids: &'a mut KeyRowids,
        now: OffsetDateTime,
    ) -> Self {
        usage.begin(now);
        Self {
            conn,
            held: Held::new(conn),
            tails,
            now,
            events: Vec::new(),
            saved: Vec::new(),
            kill: KillCache::default(),
            usage,
            rowids,
            key_head: None,
        }
    }

    /// Stores what the batch kept in memory (the usage buckets it charged), then hands out the events to publish
    /// once it commits. An error means the batch cannot commit.
    pub(crate) fn finish(self) -> Result<Vec<ApprovalEvent>> {
        for changes in self.usage.drain(self.now) {
            changes.store(&mut UsageBuckets::new(
                self.conn,
                (&changes.tenant, &changes.agent, &changes.action),
            ))?;
        }
        Ok(self.events)
    }

    fn execute(&self, sql: &str, values: impl rusqlite::Params) -> Result<usize> {
        Ok(self.conn.prepare_cached(sql)?.execute(values)?)
    }
}

impl Tx for SqliteTx<'_> {
    fn now(&self) -> OffsetDateTime {
        self.now
    }

    fn savepoint(&mut self) -> Result<()> {
        self.key_head = None;
        self.execute("SAVEPOINT op", [])?;
        self.saved.push((Vec::new(), self.events.len()));
        self.usage.savepoint();
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.kill.clear();
        self.key_head = None;
        let rolled_back = self.execute("ROLLBACK TO op", []);
        // The charges go with the writes: if the database kept those, the charges stay counted.
        match rolled_back {
            Ok(_) => self.usage.rollback_to_savepoint(),
            Err(_) => self.usage.release_savepoint(),
        }
        rolled_back?;
        self.execute("RELEASE op", [])?;
        if let Some((moved, events)) = self.saved.pop() {
            for (tenant, tail) in moved {
                self.tails.restore(tenant, tail);
            }
            self.events.truncate(events);
        }
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.usage.release_savepoint();
        self.execute("RELEASE op", [])?;
        self.saved.pop();
        Ok(())
    }

    fn key(&mut self, tenant: &str, agent: &str, key: &str) -> Result<Option<KeyRecord>> {
        let found = super::key_rows::load(&self.held, self.rowids, tenant, agent, key)?;
        self.key_head = found
            .key_head
            .map(|head| (tenant.to_owned(), key.to_owned(), head));
        Ok(found.record)
    }

    fn key_records(&mut self, tenant: &str, key: &str) -> Result<Vec<KeyRecord>> {
        queries::load_key_records(&self.held, tenant, key)
    }

    fn put_key(&mut self, tenant: &str, record: &KeyRecord) -> Result<()> {
        super::key_rows::store(&self.held, self.rowids, self.now, tenant, record)
    }

    fn approval(&mut self, tenant: &str, id: &str) -> Result<Option<Approval>> {
        queries::load_approval(self.conn, tenant, id, self.now)
    }

    fn approval_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<Approval>> {
        queries::load_approval_by_request(self.conn, tenant, request_id, self.now)
    }

    fn pending_approvals(
        &mut self,
        tenant: &str,
        agent: Option<&str>,
        at_most: usize,
    ) -> Result<usize> {
        let now = to_micros(self.now);
        let at_most = i64::try_from(at_most).unwrap_or(i64::MAX);
        // Two statements, not `(?2 IS NULL OR agent_id = ?2)`: that form keeps SQLite off the agent's index.
        let count: i64 = match agent {
            Some(agent) => self
                .conn
                .prepare_cached(PENDING_OF_AGENT)?
                .query_row(params![tenant, agent, now, at_most], |row| row.get(0))?,
            None => self
                .conn
                .prepare_cached(PENDING_OF_TENANT)?
                .query_row(params![tenant, now, at_most], |row| row.get(0))?,
        };
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    fn insert_approval(&mut self, approval: &Approval, request_id: Option<&str>) -> Result<()> {
        let (params_json, metadata_json) = approval_json(approval);
        self.execute(
            APPROVAL_INSERT,
            params![
                approval.id,
                approval.tenant,
                approval.idempotency_key,
                request_id,
                approval.agent_id,
                approval.action,
                approval.resource,
                params_json,
                approval.risk,
                metadata_json,
                approval.policy_id,
                approval.policy_reason,
                to_micros(approval.created_at),
                to_micros(approval.expires_at),
                approval.approvals_required,
                approval.policy_version,
            ],
        )?;
        Ok(())
    }

    fn settle_approval(&mut self, approval: &Approval) -> Result<bool> {
        let changed = self.execute(
            APPROVAL_SETTLE,
            params![
                approval.id,
                approval.tenant,
                approval.status.as_str(),
                approval.decided_at.map(to_micros),
                approval.approver,
                approval.decision_reason,
                crate::store::approvers::encode(approval)?,
            ],
        )?;
        Ok(changed > 0)
    }

    fn overdue_approvals(&mut self, tenant: &str, limit: usize) -> Result<Vec<String>> {
        let mut statement = self.conn.prepare_cached(APPROVALS_OVERDUE)?;
        let rows = statement.query_map(
            params![
                tenant,
                to_micros(self.now),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| row.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn kill_status(&mut self, tenant: &str, agent: &str) -> Result<KillStatus> {
        let conn = self.conn;
        self.kill
            .get_or_load(tenant, agent, || queries::kill_status(conn, tenant, agent))
    }

    fn put_kill(&mut self, scope: &KillScope, state: KillState, actor: &str) -> Result<()> {
        self.kill.clear();
        self.execute(
            "INSERT INTO kill_switch (tenant, agent_id, state, updated_us, updated_by) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant, agent_id) DO UPDATE SET state = excluded.state, \
             updated_us = excluded.updated_us, updated_by = excluded.updated_by",
            params![
                scope.tenant(),
                scope.agent_id().unwrap_or(""),
                state.as_str(),
                to_micros(self.now),
                actor
            ],
        )?;
        Ok(())
    }

    fn check(&mut self, tenant: &str, request_id: &str) -> Result<Option<CheckRecord>> {
        queries::load_check(self.conn, tenant, request_id)
    }

    fn put_check(&mut self, tenant: &str, record: &CheckRecord) -> Result<()> {
        self.execute(
            "INSERT INTO check_requests (tenant, request_id, fingerprint, agent_id, action, decision, created_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tenant, request_id) DO UPDATE SET decision = excluded.decision",
            params![
                tenant,
                record.request_id,
                record.fingerprint,
                record.agent_id,
                record.action,
                record.decision,
                to_micros(self.now)
            ],
        )?;
        Ok(())
    }

    fn key_name_taken(&mut self, tenant: &str, name: &str) -> Result<bool> {
        queries::name_ever_taken(self.conn, tenant, name)
    }

    fn insert_api_key(&mut self, tenant: &str, key: &StoredKey) -> Result<()> {
        let agents = key
            .agents
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| crate::error::AuthorityError::invalid(e.to_string()))?;
        self.execute(
            "INSERT INTO api_keys (id, tenant, name, role, key_hash, created_us, agents, rate_limit) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                key.id,
                tenant,
                key.name,
                key.role.as_str(),
                key.hash.to_vec(),
                to_micros(self.now),
                agents,
                key.rate_limit,
            ],
        )?;
        Ok(())
    }

    fn rotate_api_key(&mut self, tenant: &str, id: &str, hash: &[u8; 32]) -> Result<bool> {
        let changed = self.execute(
            "UPDATE api_keys SET key_hash = ?3 WHERE tenant = ?1 AND id = ?2 AND revoked_us IS NULL",
            params![tenant, id, hash.to_vec()],
        )?;
        Ok(changed > 0)
    }

    fn revoke_api_key(&mut self, tenant: &str, id: &str) -> Result<bool> {
        let changed = self.execute(
            "UPDATE api_keys SET revoked_us = ?3 WHERE tenant = ?1 AND id = ?2 AND revoked_us IS NULL",
            params![tenant, id, to_micros(self.now)],
        )?;
        Ok(changed > 0)
    }

    fn unverified(&mut self, tenant: &str, evidence_id: &str) -> Result<Option<u64>> {
        let seq: Option<u64> = self
            .conn
            .prepare_cached(
                "SELECT seq FROM unverified_imports WHERE tenant = ?1 AND evidence_id = ?2",
            )?
            .query_row(params![tenant, evidence_id], |row| row.get(0))
            .optional()?;
        Ok(seq)
    }

    fn put_unverified(&mut self, tenant: &str, evidence_id: &str, seq: u64) -> Result<()> {
        self.execute(
            "INSERT INTO unverified_imports (tenant, evidence_id, seq) VALUES (?1, ?2, ?3)",
            params![tenant, evidence_id, seq],
        )?;
        Ok(())
    }

    fn append(&mut self, mut record: EvidenceRecord) -> Result<u64> {
        if let Some((moved, _)) = self.saved.last_mut()
            && !moved.iter().any(|(tenant, _)| *tenant == record.tenant)
        {
            let before = self.tails.get(self.conn, &record.tenant)?;
            moved.push((record.tenant.clone(), before));
        }
        let key_first = match (&self.key_head, &record.idempotency_key) {
            (Some((tenant, key, head)), Some(of)) if *tenant == record.tenant && key == of => {
                Some(*head)
            }
            _ => None,
        };
        self.tails.append(&self.held, &mut record, key_first)
    }

    fn publish(&mut self, event: ApprovalEvent) {
        self.events.push(event);
    }

    fn enqueue_webhooks(
        &mut self,
        tenant: &str,
        id: &str,
        event: WebhookEvent,
        data: &str,
    ) -> Result<()> {
        super::webhooks::enqueue(self.conn, tenant, id, event, data, self.now)
    }

    fn insert_webhook(
        &mut self,
        webhook: &Webhook,
        secret: &SealedSecret,
        cap: usize,
    ) -> Result<bool> {
        super::webhooks::insert(self.conn, webhook, secret, cap)
    }

    fn webhook_secrets(&mut self, tenant: &str) -> Result<Vec<(String, SealedSecret)>> {
        super::webhooks::secrets(self.conn, tenant)
    }

    fn set_webhook_secret(&mut self, tenant: &str, id: &str, secret: &SealedSecret) -> Result<()> {
        super::webhooks::set_secret(self.conn, tenant, id, secret)
    }

    fn remove_webhook(&mut self, tenant: &str, id: &str) -> Result<bool> {
        super::webhooks::remove(self.conn, tenant, id, self.now)
    }

    fn claim_deliveries(
        &mut self,
        tenant: &str,
        holder: &str,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        super::webhooks::claim(self.conn, tenant, holder, self.now, until, limit)
    }

    fn finish_delivery(&mut self, tenant: &str, update: &DeliveryUpdate<'_>) -> Result<bool> {
        super::webhooks::finish(self.conn, tenant, update, self.now)
    }

    fn usage(&mut self, tenant: &str, agent: &str, action: &str) -> Result<Usage> {
        let scope = (tenant, agent, action);
        self.usage
            .usage(&mut UsageBuckets::new(self.conn, scope), scope, self.now)
    }

    fn charge_usage(
        &mut self,
        tenant: &str,
        agent: &str,
        action: &str,
        charge: &Charge,
        sign: i64,
    ) -> Result<()> {
        let scope = (tenant, agent, action);
        self.usage.charge(
            &mut UsageBuckets::new(self.conn, scope),
            scope,
            charge,
            sign,
            self.now,
        )
    }

    fn insert_checkpoint(
        &mut self,
        checkpoint: &haltstate_types::proof::SignedCheckpoint,
    ) -> Result<()> {
        super::checkpoints::insert(self.conn, checkpoint)
    }

    fn set_tree_note(&mut self, tenant: &str, size: u64, key_id: &str, note: &str) -> Result<()> {
        super::checkpoints::set_tree_note(self.conn, tenant, size, key_id, note)
    }

    fn completed_in_ledger(
        &mut self,
        tenant: &str,
        agent: &str,
        key: &str,
        generation: u64,
    ) -> Result<Option<u64>> {
        Ok(self
            .conn
            .prepare_cached(concat!(
                "SELECT seq FROM ledger WHERE tenant = ?1 AND ",
                crate::store::sql::sqlite_key_records!("?1", "?2"),
                " AND json_extract(CAST(body AS TEXT), '$.kind') = 'outcome' \
                 AND json_extract(CAST(body AS TEXT), '$.outcome') = 'success' \
                 AND json_extract(CAST(body AS TEXT), '$.status') IS NOT 'unverified' \
                 AND json_extract(CAST(body AS TEXT), '$.agent_id') = ?3 \
                 AND coalesce(json_extract(CAST(body AS TEXT), '$.generation'), ?4) >= ?4 LIMIT 1",
            ))?
            .query_row(params![tenant, key, agent, generation], |row| row.get(0))
            .optional()?)
    }

    fn note_change(&mut self, tenant: &str, subject: &str, seq: u64) -> Result<()> {
        super::console::note_change(self.conn, tenant, subject, seq)
    }

    fn expire_sessions(&mut self) -> Result<()> {
        super::console::expire(self.conn, self.now)
    }

    fn session_count(&mut self, tenant: Option<&str>) -> Result<u64> {
        super::console::count_of(self.conn, tenant)
    }

    fn end_oldest_sessions(&mut self, tenant: &str, count: u64) -> Result<()> {
        super::console::end_oldest(self.conn, tenant, count)
    }

    fn insert_session(&mut self, id: &SessionId, session: &ConsoleSession) -> Result<()> {
        super::console::insert(self.conn, id, session)
    }

    fn end_session(&mut self, tenant: &str, id: &SessionId) -> Result<bool> {
        super::console::end(self.conn, tenant, id)
    }

    fn end_key_sessions(&mut self, tenant: &str, key_id: &str) -> Result<u64> {
        super::console::end_of_key(self.conn, tenant, key_id)
    }
}
