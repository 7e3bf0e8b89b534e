//! [`Tx`] on a PostgreSQL transaction of one tenant, whose head row it holds locked.

use std::collections::HashMap;

use time::OffsetDateTime;

use haltstate_types::timestamp::{format_rfc3339, to_micros};
use haltstate_types::{Approval, EvidenceRecord, KillScope, KillState, KillStatus};

use super::conn::{Conn, signed, unsigned};
use super::held_rows::{KeyRow, RecordRow};
use super::pending::Pending;
use super::queries::{self, KnownKeys};
use super::usage::UsageBuckets;
use super::{api_keys, approvals};
use crate::approval_event::ApprovalEvent;
use crate::console_session::{ConsoleSession, SessionId};
use crate::error::{AuthorityError, Result};
use crate::policy::Usage;
use crate::state_rows::{Charge, CheckRecord, KeyRecord};
use crate::store::chain::Tail;
use crate::store::kill_cache::KillCache;
use crate::store::tx::{DeliveryUpdate, StoredKey, Tx};
use crate::store::usage_batch::UsageBatch;
use crate::webhooks::{Delivery, SealedSecret, Webhook, WebhookEvent};

/// The open transaction, its tenant's chain end, the batch's clock reading and the events it will publish.
pub(crate) struct PgTx<'a> {
    /// The connection: reached through [`flushed`], which first sends the held writes.
    raw: &'a mut Conn,
    pending: Pending,
    tenant: &'a str,
    tail: Tail,
    now: OffsetDateTime,
    events: Vec<ApprovalEvent>,
    /// Per open savepoint: the tail and the number of events before it.
    saved: Vec<(Tail, usize)>,
    /// Why the transaction can no longer commit: an operation failed after it may have written.
    poisoned: Option<String>,
    kill: KillCache,
    /// The tree hashes this transaction stored (by stored index), which the next appends read instead of the
    /// database: a batch of one tenant appends many records in a row.
    tree: HashMap<u64, [u8; 32]>,
    /// Key rows read for the whole batch before it ran ([`queries::load_keys`]), kept current by
    /// [`put_key`](Tx::put_key): an operation whose row is here reads no further. Nothing else writes key rows,
    /// and the tenant's head row, locked since `BEGIN`, keeps every other writer of them out.
    keys: KnownKeys,
    /// The usage buckets read and charged, written by [`flush`](Self::flush).
    usage: UsageBatch,
}

impl<'a> PgTx<'a> {
    pub(crate) fn new(
        conn: &'a mut Conn,
        tenant: &'a str,
        tail: Tail,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            raw: conn,
            pending: Pending::default(),
            tenant,
            tail,
            now,
            events: Vec::new(),
            saved: Vec::new(),
            poisoned: None,
            kill: KillCache::default(),
            tree: HashMap::new(),
            keys: KnownKeys::new(),
            usage: UsageBatch::default(),
        }
    }

    /// Starts the transaction knowing `keys`, the batch's key rows.
    pub(crate) fn knowing(mut self, keys: KnownKeys) -> Self {
        self.keys = keys;
        self
    }

    /// Why the transaction must be rolled back, if it must: the database went away (`Unavailable`, the callers
    /// may retry) or an operation failed.
    pub(crate) fn poisoned(&self) -> Option<AuthorityError> {
        let why = self.poisoned.as_ref()?;
        Some(if self.raw.is_closed() {
            AuthorityError::Unavailable("the connection to the database was lost".into())
        } else {
            AuthorityError::CommitFailed(why.clone())
        })
    }

    /// Sends the held writes and the usage buckets charged (before `COMMIT`); a failure spoils the transaction.
    pub(crate) fn flush(&mut self) {
        if self.poisoned.is_some() {
            return;
        }
        if let Err(error) = self.store_usage() {
            self.poisoned = Some(match error {
                AuthorityError::CommitFailed(why) => why,
                other => other.to_string(),
            });
        }
    }

    fn store_usage(&mut self) -> Result<()> {
        for changes in self.usage.drain(self.now) {
            changes.store(&mut UsageBuckets::new(
                self.raw,
                &mut self.pending,
                (&changes.tenant, &changes.agent, &changes.action),
            ))?;
        }
        self.pending.flush(self.raw)
    }

    /// The tail after the batch, and the events to publish once it commits.
    pub(crate) fn finish(self) -> (Tail, Vec<ApprovalEvent>) {
        (self.tail, self.events)
    }

    /// Every statement of a tenant's transaction is about that tenant: anything else is a bug, refused.
    fn own(&self, tenant: &str) -> Result<()> {
        if tenant == self.tenant {
            Ok(())
        } else {
            Err(AuthorityError::Corrupt(format!(
                "an operation of tenant {:?} touched tenant {tenant:?}",
                self.tenant
            )))
        }
    }
}

impl Tx for PgTx<'_> {
    fn now(&self) -> OffsetDateTime {
        self.now
    }

    // No SQL savepoints: two round trips per operation (SAVEPOINT, RELEASE) were a third of an operation's time
    // (BENCHMARKS.md). An operational error (the database failing, a row that does not decode) instead spoils the
    // tenant's whole transaction: it is rolled back and every caller of it told, none acknowledged.
    fn savepoint(&mut self) -> Result<()> {
        self.saved.push((self.tail.clone(), self.events.len()));
        self.usage.savepoint();
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.kill.clear();
        self.usage.rollback_to_savepoint();
        if let Some((tail, events)) = self.saved.pop() {
            self.tail = tail;
            self.events.truncate(events);
        }
        self.poisoned
            .get_or_insert_with(|| "an operation of the transaction failed".into());
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.saved.pop();
        self.usage.release_savepoint();
        Ok(())
    }

    fn key_records(&mut self, tenant: &str, key: &str) -> Result<Vec<KeyRecord>> {
        self.own(tenant)?;
        queries::load_key_records(flushed(self.raw, &mut self.pending)?, tenant, key)
    }

    fn key(&mut self, tenant: &str, agent: &str, key: &str) -> Result<Option<KeyRecord>> {
        self.own(tenant)?;
        if let Some(known) = self.keys.get(&(agent.to_owned(), key.to_owned())) {
            return Ok(known.clone());
        }
        queries::load_key(flushed(self.raw, &mut self.pending)?, tenant, agent, key)
    }

    fn put_key(&mut self, tenant: &str, record: &KeyRecord) -> Result<()> {
        self.own(tenant)?;
        self.keys.insert(
            (record.agent_id.clone(), record.key.clone()),
            Some(record.clone()),
        );
        let row = KeyRow {
            tenant: tenant.to_owned(),
            record: record.clone(),
            now_us: to_micros(self.now),
        };
        self.pending.key(row);
        Ok(())
    }

    fn approval(&mut self, tenant: &str, id: &str) -> Result<Option<Approval>> {
        self.own(tenant)?;
        queries::load_approval(flushed(self.raw, &mut self.pending)?, tenant, id, self.now)
    }

    fn approval_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<Approval>> {
        self.own(tenant)?;
        queries::load_approval_by_request(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            request_id,
            self.now,
        )
    }

    fn pending_approvals(
        &mut self,
        tenant: &str,
        agent: Option<&str>,
        at_most: usize,
    ) -> Result<usize> {
        self.own(tenant)?;
        let conn = flushed(self.raw, &mut self.pending)?;
        approvals::waiting(conn, tenant, agent, self.now, at_most)
    }

    fn insert_approval(&mut self, approval: &Approval, request_id: Option<&str>) -> Result<()> {
        self.own(&approval.tenant)?;
        approvals::insert(flushed(self.raw, &mut self.pending)?, approval, request_id)
    }

    fn settle_approval(&mut self, approval: &Approval) -> Result<bool> {
        self.own(&approval.tenant)?;
        approvals::settle(flushed(self.raw, &mut self.pending)?, approval)
    }

    fn overdue_approvals(&mut self, tenant: &str, limit: usize) -> Result<Vec<String>> {
        self.own(tenant)?;
        approvals::overdue(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            self.now,
            limit,
        )
    }

    fn kill_status(&mut self, tenant: &str, agent: &str) -> Result<KillStatus> {
        self.own(tenant)?;
        // Read once per transaction: no held write touches the kill switch, so a known state sends nothing (and
        // the key rows and records held back stay held for the batch's one statement).
        let (raw, pending) = (&mut *self.raw, &mut self.pending);
        self.kill.get_or_load(tenant, agent, || {
            queries::kill_status(flushed(raw, pending)?, tenant, agent)
        })
    }

    fn put_kill(&mut self, scope: &KillScope, state: KillState, actor: &str) -> Result<()> {
        self.own(scope.tenant())?;
        self.kill.clear();
        flushed(self.raw, &mut self.pending)?.execute(
            "INSERT INTO kill_switch (tenant, agent_id, state, updated_us, updated_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, agent_id) DO UPDATE SET state = excluded.state, \
             updated_us = excluded.updated_us, updated_by = excluded.updated_by",
            &[
                &scope.tenant(),
                &scope.agent_id().unwrap_or(""),
                &state.as_str(),
                &to_micros(self.now),
                &actor,
            ],
        )?;
        Ok(())
    }

    fn check(&mut self, tenant: &str, request_id: &str) -> Result<Option<CheckRecord>> {
        self.own(tenant)?;
        queries::load_check(flushed(self.raw, &mut self.pending)?, tenant, request_id)
    }

    fn put_check(&mut self, tenant: &str, record: &CheckRecord) -> Result<()> {
        self.own(tenant)?;
        flushed(self.raw, &mut self.pending)?.execute(
            "INSERT INTO check_requests (tenant, request_id, fingerprint, agent_id, action, decision, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant, request_id) DO UPDATE SET decision = excluded.decision",
            &[
                &tenant,
                &record.request_id,
                &record.fingerprint,
                &record.agent_id,
                &record.action,
                &record.decision,
                &to_micros(self.now),
            ],
        )?;
        Ok(())
    }

    fn key_name_taken(&mut self, tenant: &str, name: &str) -> Result<bool> {
        self.own(tenant)?;
        queries::name_ever_taken(flushed(self.raw, &mut self.pending)?, tenant, name)
    }

    fn insert_api_key(&mut self, tenant: &str, key: &StoredKey) -> Result<()> {
        self.own(tenant)?;
        api_keys::insert(flushed(self.raw, &mut self.pending)?, tenant, key, self.now)
    }

    fn rotate_api_key(&mut self, tenant: &str, id: &str, hash: &[u8; 32]) -> Result<bool> {
        self.own(tenant)?;
        api_keys::rotate(flushed(self.raw, &mut self.pending)?, tenant, id, hash)
    }

    fn revoke_api_key(&mut self, tenant: &str, id: &str) -> Result<bool> {
        self.own(tenant)?;
        api_keys::revoke(flushed(self.raw, &mut self.pending)?, tenant, id, self.now)
    }

    fn unverified(&mut self, tenant: &str, evidence_id: &str) -> Result<Option<u64>> {
        self.own(tenant)?;
        flushed(self.raw, &mut self.pending)?
            .query_opt(
                "SELECT seq FROM unverified_imports WHERE tenant = $1 AND evidence_id = $2",
                &[&tenant, &evidence_id],
            )?
            .map(|row| unsigned(row.try_get(0)?, "a ledger sequence number"))
            .transpose()
    }

    fn put_unverified(&mut self, tenant: &str, evidence_id: &str, seq: u64) -> Result<()> {
        self.own(tenant)?;
        flushed(self.raw, &mut self.pending)?.execute(
            "INSERT INTO unverified_imports (tenant, evidence_id, seq) VALUES ($1, $2, $3)",
            &[&tenant, &evidence_id, &signed(seq)],
        )?;
        Ok(())
    }

    fn append(&mut self, mut record: EvidenceRecord) -> Result<u64> {
        self.own(&record.tenant)?;
        let (body, hash) = self.tail.next(&mut record)?;
        // The tree keeps pace with the chain, in the same statement: its new hashes are computed first (from the
        // hashes this transaction stored, or read: only `tlog_hashes`, which no held write touches), then
        // written with the record.
        let (start, hashes) = crate::store::tree::new_hashes(
            &super::tree::TxHashes::new(&mut *self.raw, &self.tree),
            &record.tenant,
            record.seq - 1,
            &body,
        )?;
        let (tree_indexes, tree_hashes) = super::tree::hash_arrays(start, &hashes);
        let row = RecordRow {
            tenant: record.tenant.clone(),
            seq: signed(record.seq),
            prev_hash: self.tail.hash.clone(),
            hash: hash.clone(),
            body,
            at: format_rfc3339(record.at),
            key: record.idempotency_key.clone(),
            action: record.action.clone(),
            agent: record.agent_id.clone(),
            tree_indexes,
            tree_hashes: tree_hashes.into_iter().map(<[u8]>::to_vec).collect(),
        };
        self.pending.record(row);
        self.tree.extend((start..).zip(hashes.iter().copied()));
        self.tail = Tail {
            seq: record.seq,
            hash,
            at: Some(record.at),
        };
        Ok(record.seq)
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
        self.own(tenant)?;
        super::webhooks::enqueue(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            id,
            event,
            data,
            self.now,
        )
    }

    fn insert_webhook(
        &mut self,
        webhook: &Webhook,
        secret: &SealedSecret,
        cap: usize,
    ) -> Result<bool> {
        self.own(&webhook.tenant)?;
        super::webhooks::insert(flushed(self.raw, &mut self.pending)?, webhook, secret, cap)
    }

    fn webhook_secrets(&mut self, tenant: &str) -> Result<Vec<(String, SealedSecret)>> {
        self.own(tenant)?;
        super::webhooks::secrets(flushed(self.raw, &mut self.pending)?, tenant)
    }

    fn set_webhook_secret(&mut self, tenant: &str, id: &str, secret: &SealedSecret) -> Result<()> {
        self.own(tenant)?;
        super::webhooks::set_secret(flushed(self.raw, &mut self.pending)?, tenant, id, secret)
    }

    fn remove_webhook(&mut self, tenant: &str, id: &str) -> Result<bool> {
        self.own(tenant)?;
        super::webhooks::remove(flushed(self.raw, &mut self.pending)?, tenant, id, self.now)
    }

    fn claim_deliveries(
        &mut self,
        tenant: &str,
        holder: &str,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.own(tenant)?;
        super::webhooks::claim(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            holder,
            self.now,
            until,
            limit,
        )
    }

    fn finish_delivery(&mut self, tenant: &str, update: &DeliveryUpdate<'_>) -> Result<bool> {
        self.own(tenant)?;
        super::webhooks::finish(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            update,
            self.now,
        )
    }

    fn usage(&mut self, tenant: &str, agent: &str, action: &str) -> Result<Usage> {
        self.own(tenant)?;
        let scope = (tenant, agent, action);
        self.usage.usage(
            &mut UsageBuckets::new(self.raw, &mut self.pending, scope),
            scope,
            self.now,
        )
    }

    fn charge_usage(
        &mut self,
        tenant: &str,
        agent: &str,
        action: &str,
        charge: &Charge,
        sign: i64,
    ) -> Result<()> {
        self.own(tenant)?;
        let scope = (tenant, agent, action);
        self.usage.charge(
            &mut UsageBuckets::new(self.raw, &mut self.pending, scope),
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
        self.own(&checkpoint.checkpoint.tenant)?;
        super::checkpoints::insert(flushed(self.raw, &mut self.pending)?, checkpoint)
    }

    fn set_tree_note(&mut self, tenant: &str, size: u64, key_id: &str, note: &str) -> Result<()> {
        self.own(tenant)?;
        super::checkpoints::set_tree_note(
            flushed(self.raw, &mut self.pending)?,
            tenant,
            size,
            key_id,
            note,
        )
    }

    fn completed_in_ledger(
        &mut self,
        tenant: &str,
        agent: &str,
        key: &str,
        generation: u64,
    ) -> Result<Option<u64>> {
        self.own(tenant)?;
        flushed(self.raw, &mut self.pending)?
            .query_opt(
                "SELECT seq FROM ledger WHERE tenant = $1 AND idempotency_key = $2 \
                 AND convert_from(body, 'UTF8')::jsonb ->> 'kind' = 'outcome' \
                 AND convert_from(body, 'UTF8')::jsonb ->> 'outcome' = 'success' \
                 AND (convert_from(body, 'UTF8')::jsonb ->> 'status') IS DISTINCT FROM 'unverified' \
                 AND convert_from(body, 'UTF8')::jsonb ->> 'agent_id' = $3 \
                 AND coalesce((convert_from(body, 'UTF8')::jsonb ->> 'generation')::bigint, $4) >= $4 LIMIT 1",
                &[&tenant, &key, &agent, &signed(generation)],
            )?
            .map(|row| unsigned(row.try_get(0)?, "a ledger sequence number"))
            .transpose()
    }

    fn note_change(&mut self, tenant: &str, subject: &str, seq: u64) -> Result<()> {
        self.own(tenant)?;
        super::console::note_change(flushed(self.raw, &mut self.pending)?, tenant, subject, seq)
    }

    fn expire_sessions(&mut self) -> Result<()> {
        super::console::expire(flushed(self.raw, &mut self.pending)?, self.now)
    }

    fn session_count(&mut self, tenant: Option<&str>) -> Result<u64> {
        super::console::count_of(flushed(self.raw, &mut self.pending)?, tenant)
    }

    fn end_oldest_sessions(&mut self, tenant: &str, count: u64) -> Result<()> {
        self.own(tenant)?;
        super::console::end_oldest(flushed(self.raw, &mut self.pending)?, tenant, count)
    }

    fn insert_session(&mut self, id: &SessionId, session: &ConsoleSession) -> Result<()> {
        self.own(&session.tenant)?;
        super::console::insert(flushed(self.raw, &mut self.pending)?, id, session)
    }

    fn end_session(&mut self, tenant: &str, id: &SessionId) -> Result<bool> {
        self.own(tenant)?;
        super::console::end(flushed(self.raw, &mut self.pending)?, tenant, id)
    }

    fn end_key_sessions(&mut self, tenant: &str, key_id: &str) -> Result<u64> {
        self.own(tenant)?;
        super::console::end_of_key(flushed(self.raw, &mut self.pending)?, tenant, key_id)
    }
}

/// The connection, once every held write is sent: what every statement but the held ones goes through (a
/// function of the two fields, so that a statement's parameters may borrow the transaction's others).
fn flushed<'c>(raw: &'c mut Conn, pending: &mut Pending) -> Result<&'c mut Conn> {
    pending.flush(raw)?;
    Ok(raw)
}
