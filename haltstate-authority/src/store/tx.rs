//! The storage seam: what an operation may load and store inside its transaction ([`Tx`]), and what the
//! authority reads outside one ([`Reads`]). The SQLite implementation is in `sqlite/`; a second backend is a second
//! implementation of these two traits, and every rule above them is shared.

use crate::pending_approvals::PendingApprovals;
use crate::store::sql::Order;
use time::OffsetDateTime;

use haltstate_types::{
    Approval, ApprovalStatus, ChainedRecord, EvidenceQuery, EvidenceRecord, KeyInfo, KillScope,
    KillState, KillStatus, LedgerHead, Principal, Role, VerifyReport,
};

use crate::approval_event::ApprovalEvent;
use crate::console_session::{ConsoleSession, SessionId};
use crate::error::Result;
use crate::policy::Usage;
use crate::state_rows::{Charge, CheckRecord, KeyRecord};
use crate::webhooks::{
    Delivery, DeliveryRecord, DeliveryState, SealedSecret, Webhook, WebhookEvent,
};

/// An API key as stored: its hash, never its secret.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) hash: [u8; 32],
    /// For an agent key: its agent set's patterns.
    pub(crate) agents: Option<Vec<String>>,
    pub(crate) rate_limit: Option<u32>,
}

/// One transaction's view of storage, as an operation sees it. Every call is inside the transaction; nothing is
/// visible to others until the batch commits.
pub(crate) trait Tx {
    /// The batch's clock reading: every change of one batch happens at one time.
    fn now(&self) -> OffsetDateTime;

    /// Marks a point the operation's changes can be undone to (an operational error undoes one operation, not
    /// the batch).
    fn savepoint(&mut self) -> Result<()>;
    /// Undoes everything since the last savepoint (storage, the ledger's tail, events) and drops it.
    fn rollback_to_savepoint(&mut self) -> Result<()>;
    /// Keeps everything since the last savepoint and drops it.
    fn release_savepoint(&mut self) -> Result<()>;

    /// The record of `agent`'s idempotency key (keys are scoped per agent).
    fn key(&mut self, tenant: &str, agent: &str, key: &str) -> Result<Option<KeyRecord>>;
    /// Every agent's record under the idempotency key `key`, at most 16 (past a few, a report must name its agent
    /// anyway), in one read: what a report that names no agent chooses from.
    fn key_records(&mut self, tenant: &str, key: &str) -> Result<Vec<KeyRecord>>;
    /// Stores a key's record (inserting or replacing it). A new key's first ledger record is appended before its
    /// row: SQLite files the row under that record (schema 23) and refuses a row whose key has none.
    fn put_key(&mut self, tenant: &str, record: &KeyRecord) -> Result<()>;

    /// An approval, as of [`now`](Self::now): an overdue pending approval reads as expired.
    fn approval(&mut self, tenant: &str, id: &str) -> Result<Option<Approval>>;
    /// The approval a check created under a request id.
    fn approval_by_request(&mut self, tenant: &str, request_id: &str) -> Result<Option<Approval>>;
    /// How many approvals `agent` (or, for `None`, the whole tenant) has waiting for a decision (pending, window
    /// still open), counting no further than `at_most`: the count runs in the writer's transaction, and must cost
    /// no more than the cap it is checked against, however many are waiting.
    fn pending_approvals(
        &mut self,
        tenant: &str,
        agent: Option<&str>,
        at_most: usize,
    ) -> Result<usize>;
    /// Stores a new approval (with the check's request id, for one a check created).
    fn insert_approval(&mut self, approval: &Approval, request_id: Option<&str>) -> Result<()>;
    /// Stores a pending approval's decision or expiry; `false` when it was no longer pending (nothing changed).
    fn settle_approval(&mut self, approval: &Approval) -> Result<bool>;
    /// A tenant's pending approvals past their window, oldest first.
    fn overdue_approvals(&mut self, tenant: &str, limit: usize) -> Result<Vec<String>>;

    /// The effective kill switch for `agent`: the more severe of the tenant's and the agent's.
    fn kill_status(&mut self, tenant: &str, agent: &str) -> Result<KillStatus>;
    /// Stores one scope's kill switch.
    fn put_kill(&mut self, scope: &KillScope, state: KillState, actor: &str) -> Result<()>;

    /// What a check decided under a request id.
    fn check(&mut self, tenant: &str, request_id: &str) -> Result<Option<CheckRecord>>;
    /// Stores a check's record (the decision of a repeat replaces the last one).
    fn put_check(&mut self, tenant: &str, record: &CheckRecord) -> Result<()>;

    /// Whether any key of the tenant, live or revoked, has had this name.
    fn key_name_taken(&mut self, tenant: &str, name: &str) -> Result<bool>;
    /// Stores a new API key.
    fn insert_api_key(&mut self, tenant: &str, key: &StoredKey) -> Result<()>;
    /// Revokes an API key; `false` when it was not live.
    fn revoke_api_key(&mut self, tenant: &str, id: &str) -> Result<bool>;
    /// Gives a live key a new secret hash; `false` when there is no live key `id`.
    fn rotate_api_key(&mut self, tenant: &str, id: &str, hash: &[u8; 32]) -> Result<bool>;

    /// The ledger record of fail-open evidence already delivered under this id.
    fn unverified(&mut self, tenant: &str, evidence_id: &str) -> Result<Option<u64>>;
    /// Remembers that fail-open evidence was recorded as `seq`.
    fn put_unverified(&mut self, tenant: &str, evidence_id: &str, seq: u64) -> Result<()>;

    /// Appends a record to the ledger, stamped with its sequence number; answers it.
    fn append(&mut self, record: EvidenceRecord) -> Result<u64>;
    /// Queues an approval change for the approvals streams; sent only if the batch commits.
    fn publish(&mut self, event: ApprovalEvent);

    /// Writes `event` to the outbox of each of the tenant's webhooks that receives it, in this transaction: the
    /// notification commits (and is undone) with the change it announces. `id` is the message id.
    fn enqueue_webhooks(
        &mut self,
        tenant: &str,
        id: &str,
        event: WebhookEvent,
        data: &str,
    ) -> Result<()>;
    /// Stores a new webhook with its secret, its tenant has `cap` live ones already; answers whether it did.
    fn insert_webhook(
        &mut self,
        webhook: &Webhook,
        secret: &SealedSecret,
        cap: usize,
    ) -> Result<bool>;
    /// Every webhook of `tenant` (live or removed) with its stored secret.
    fn webhook_secrets(&mut self, tenant: &str) -> Result<Vec<(String, SealedSecret)>>;
    /// Replaces the stored secret of `tenant`'s webhook `id` (resealed with another key).
    fn set_webhook_secret(&mut self, tenant: &str, id: &str, secret: &SealedSecret) -> Result<()>;
    /// Removes a live webhook and fails its pending deliveries; `false` when there was none.
    fn remove_webhook(&mut self, tenant: &str, id: &str) -> Result<bool>;
    /// Claims up to `limit` of the tenant's due deliveries (pending, due by now, not held by anyone) for
    /// `holder` until `until`, oldest first.
    fn claim_deliveries(
        &mut self,
        tenant: &str,
        holder: &str,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>>;
    /// Stores an attempt's result, if `holder` still holds the pending delivery; `false` otherwise.
    fn finish_delivery(&mut self, tenant: &str, update: &DeliveryUpdate<'_>) -> Result<bool>;

    /// The ledger record of a verified successful outcome of `agent`'s `key` in its `generation`-th operation or a
    /// later one (a `once` key's outcome names no generation: it counts for every one), if one exists: what a
    /// state row must not contradict.
    fn completed_in_ledger(
        &mut self,
        tenant: &str,
        agent: &str,
        key: &str,
        generation: u64,
    ) -> Result<Option<u64>>;
    /// Stores a signed checkpoint of the tenant's chain.
    fn insert_checkpoint(
        &mut self,
        checkpoint: &haltstate_types::proof::SignedCheckpoint,
    ) -> Result<()>;
    /// Replaces the note of a stored tree checkpoint (the same head, with witnesses' cosignatures added).
    fn set_tree_note(&mut self, tenant: &str, size: u64, key_id: &str, note: &str) -> Result<()>;

    /// The agent's usage of `action` over each window, as of [`now`](Self::now).
    fn usage(&mut self, tenant: &str, agent: &str, action: &str) -> Result<Usage>;
    /// Adds (`sign` 1) or takes back (`sign` -1) one action's charge, in the buckets holding its time (a bucket
    /// already out of every window is left alone); prunes the buckets no window reads any more.
    fn charge_usage(
        &mut self,
        tenant: &str,
        agent: &str,
        action: &str,
        charge: &Charge,
        sign: i64,
    ) -> Result<()>;

    /// Notes that record `seq` of `tenant` changed `subject` (its history is then read by index).
    fn note_change(&mut self, tenant: &str, subject: &str, seq: u64) -> Result<()>;
    /// Ends every console session past its expiry at [`now`](Self::now), whatever its tenant.
    fn expire_sessions(&mut self) -> Result<()>;
    /// How many console sessions `tenant` has (every tenant's: `None`).
    fn session_count(&mut self, tenant: Option<&str>) -> Result<u64>;
    /// Ends the `count` sessions of `tenant` closest to their expiry.
    fn end_oldest_sessions(&mut self, tenant: &str, count: u64) -> Result<()>;
    /// Stores a new session.
    fn insert_session(&mut self, id: &SessionId, session: &ConsoleSession) -> Result<()>;
    /// Ends one session of `tenant`; `false` when it had none of that id.
    fn end_session(&mut self, tenant: &str, id: &SessionId) -> Result<bool>;
    /// Ends every session a key of `tenant` started; answers how many.
    fn end_key_sessions(&mut self, tenant: &str, key_id: &str) -> Result<u64>;
}

/// One delivery attempt's result, as stored.
#[derive(Debug)]
pub(crate) struct DeliveryUpdate<'a> {
    pub(crate) id: &'a str,
    pub(crate) webhook_id: &'a str,
    pub(crate) holder: &'a str,
    /// Attempts made, this one included.
    pub(crate) attempts: u32,
    pub(crate) state: DeliveryState,
    pub(crate) next_attempt_at: Option<OffsetDateTime>,
    pub(crate) last_status: Option<u16>,
    pub(crate) last_error: Option<&'a str>,
}

/// What the authority reads outside a transaction.
pub(crate) trait Reads: Send + Sync + std::fmt::Debug {
    /// One approval, as of `now`.
    fn approval(&self, tenant: &str, id: &str, now: OffsetDateTime) -> Result<Option<Approval>>;
    /// Approvals newest first, optionally of one (effective) status.
    fn approvals(
        &self,
        tenant: &str,
        status: Option<ApprovalStatus>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>>;
    /// Approvals decided (or expired) after `since`, oldest first.
    fn approvals_since(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<Approval>>;
    /// Answers when the database does (a trivial read).
    fn ping(&self) -> Result<()>;
    /// Per tenant, how many approvals are pending (and not past their window) at `now`, and the oldest's age.
    fn pending_counts(&self, now: OffsetDateTime) -> Result<Vec<PendingApprovals>>;
    /// Every scope whose kill switch was ever set, with its state.
    fn kill_switches(&self) -> Result<Vec<(KillScope, KillState)>>;
    /// Tenants with pending approvals past their window.
    fn overdue_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>>;
    /// The effective kill switch for `agent`.
    fn kill_status(&self, tenant: &str, agent: &str) -> Result<KillStatus>;
    /// One scope's own kill switch.
    fn kill_state(&self, scope: &KillScope) -> Result<KillState>;
    /// Evidence of a tenant, from the end `order` names.
    fn evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
        order: Order,
    ) -> Result<Vec<EvidenceRecord>> {
        Ok(self
            .chained_evidence(tenant, query, order)?
            .into_iter()
            .map(|chained| chained.record)
            .collect())
    }
    /// The same, with each record's chain links.
    fn chained_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
        order: Order,
    ) -> Result<Vec<ChainedRecord>>;
    /// Recomputes one tenant's chain.
    fn verify_tenant(&self, tenant: &str) -> Result<VerifyReport>;
    /// The last record of a tenant's evidence.
    fn tenant_head(&self, tenant: &str) -> Result<LedgerHead>;
    /// Recomputes the chain.
    fn verify(&self) -> Result<VerifyReport>;
    /// The principal a secret authenticates as.
    fn authenticate(&self, tenant: &str, secret: &str) -> Result<Principal>;
    /// The tenant's keys, newest first.
    fn keys(&self, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>>;
    /// One key of the tenant.
    fn key_info(&self, tenant: &str, id: &str) -> Result<Option<KeyInfo>>;
    /// Every tenant with evidence.
    fn tenants(&self) -> Result<Vec<String>>;
    /// The tenant's stored checkpoints, by sequence number.
    fn checkpoints(&self, tenant: &str) -> Result<Vec<haltstate_types::proof::SignedCheckpoint>>;
    /// The first stored checkpoint at or after record `seq` (`u64::MAX`: the newest), if any.
    fn checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>>;
    /// The stored signed tree head of `tenant` at `size` by the key `key_id`, if any.
    fn tree_note(&self, tenant: &str, size: u64, key_id: &str) -> Result<Option<String>>;
    /// The first stored checkpoint with a signed tree head at or after record `seq`, if any.
    fn tree_checkpoint_from(
        &self,
        tenant: &str,
        seq: u64,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>>;
    /// The tenant's live webhooks, newest first.
    fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>>;
    /// The tenant's deliveries, newest first.
    fn deliveries(&self, tenant: &str, limit: u32) -> Result<Vec<DeliveryRecord>>;
    /// Tenants with deliveries due at `now` that nobody holds.
    fn due_delivery_tenants(&self, now: OffsetDateTime) -> Result<Vec<String>>;
    /// Tenants with webhooks, live or removed.
    fn webhook_tenants(&self) -> Result<Vec<String>>;
    /// Where a key stands: its state, generation and, while claimed, the lease remaining.
    fn key_state(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<crate::state_rows::KeyStatus>>;
    /// The stored hashes of `tenant`'s Merkle tree at `indexes` (every one must exist).
    fn tree_hashes(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>>;
    /// A console session, unless it expired by `now`.
    fn session(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<ConsoleSession>>;
    /// How many approvals `tenant` has waiting at `now` (pending, window open), counting no further than `at_most`.
    fn pending_count(&self, tenant: &str, now: OffsetDateTime, at_most: u64) -> Result<u64>;
    /// The records of `subject`'s changes in `tenant` (`kill-switch`, `key:<id>`), newest first, at most `limit`.
    fn changes(&self, tenant: &str, subject: &str, limit: u32) -> Result<Vec<EvidenceRecord>>;
    /// The tenant's records at or after `since`, oldest first, at most `limit`.
    fn activity(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EvidenceRecord>>;
}
