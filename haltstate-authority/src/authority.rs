//! The authority: one handle over policies, approvals, idempotency claims, the kill switch and the ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::decision::PolicyDecision;
use crate::error::{AuthorityError, Result};
use crate::events::ApprovalEvent;
use crate::key_cache::KeyCache;
use crate::ops;
use crate::policy::{PolicyEngine, PolicyError};
use crate::rules::Windows;
use crate::store::Durability;
use crate::store::job::{WriterCounters, WriterStats};
use crate::store::pending::{self, Pending};
use crate::store::sqlite::{self, SqliteReads, SqliteRunner};
use crate::store::tx::{Reads, Tx};
use crate::store::writer::Writer;
use haltstate_types::canonical_name;
use haltstate_types::limits::MAX_KEY_LEN;
use haltstate_types::{
    ActionRequest, GuardRequest, OutcomeReport, UnverifiedOutcome, validate_name, validate_text,
};
use haltstate_types::{Actor, Via};
use haltstate_types::{Approval, ApprovalStatus, Verdict};
use haltstate_types::{CheckAnswer, CheckReport, CheckRequest};
use haltstate_types::{EvidenceQuery, EvidenceRecord, LedgerHead, VerifyReport};
use haltstate_types::{GuardAnswer, KeyState, ReportAck, fingerprint};
use haltstate_types::{KeyInfo, KeySpec, NewKey, Principal, Role};
use haltstate_types::{KillScope, KillState, KillStatus};

/// How long an approval stays decidable unless configured otherwise.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim lasts before another worker may re-claim the key, unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

/// Configures and opens an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    db_path: PathBuf,
    policy_file: Option<PathBuf>,
    policy_source: Option<(String, String)>,
    approval_ttl: Duration,
    lease: Duration,
    clock: Arc<dyn Clock>,
    durability: Durability,
    checkpoint_pages: u32,
}

impl AuthorityBuilder {
    /// Loads policies from this Cedar file (and [`Authority::reload_policies`] re-reads it).
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy_file = Some(path.into());
        self
    }

    /// Uses these policies; `name` appears in diagnostics.
    pub fn policy_source(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.policy_source = Some((name.into(), source.into()));
        self
    }

    /// How long an approval stays decidable (default 24 h).
    pub fn approval_ttl(mut self, ttl: Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// How long a claim lasts before another worker may re-claim (default 5 min).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Where the authority reads the time (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How hard commits work to survive a crash (default: fsync every commit).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How many pages the write-ahead log may hold before a commit copies them into the database (default
    /// [`DEFAULT_CHECKPOINT_PAGES`](crate::DEFAULT_CHECKPOINT_PAGES), about 40 MB). Lower keeps the `-wal` file
    /// smaller at some throughput; every acknowledged change is durable either way.
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages;
        self
    }

    /// Opens (creating or migrating) the database and loads the policies.
    ///
    /// With no policy configured every decision is DENY; that suits an operator tool that only approves,
    /// flips the kill switch or verifies the ledger.
    pub fn open(self) -> Result<Authority> {
        let policies = match (&self.policy_file, &self.policy_source) {
            (Some(path), _) => PolicyEngine::from_file(path)?,
            (None, Some((name, source))) => PolicyEngine::from_source(name, source)?,
            (None, None) => PolicyEngine::empty(),
        };
        let conn = sqlite::open_writer(&self.db_path, self.durability, self.checkpoint_pages)?;
        let counters = Arc::new(WriterCounters::default());
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let runner = SqliteRunner::new(conn, self.clock.clone(), counters.clone(), events.clone());
        let writer = Writer::new(Box::new(runner));
        let thread = {
            let writer = writer.clone();
            std::thread::Builder::new()
                .name("haltstate-writer".into())
                .spawn(move || writer.run())
                .map_err(|e| {
                    AuthorityError::CommitFailed(format!("cannot start the writer thread: {e}"))
                })?
        };
        Ok(Authority {
            inner: Arc::new(Inner {
                policies,
                policy_file: self.policy_file,
                reads: Arc::new(SqliteReads::new(self.db_path.clone())),
                db_path: self.db_path,
                writer,
                writer_thread: Some(thread),
                clock: self.clock,
                windows: Windows {
                    approval_ttl: self.approval_ttl,
                    lease: self.lease,
                },
                counters,
                events,
                key_cache: Arc::new(KeyCache::default()),
            }),
        })
    }
}

/// The policy authority, embedded in-process.
///
/// Cheap to clone; every clone shares one database writer. State-changing calls return a [`Pending`] that is
/// answered once the change is committed (`.wait()` from sync code, `.await` from async code); reads answer
/// directly.
///
/// ```
/// use haltstate_authority::{ActionRequest, Authority, GuardRequest, GuardStatus, Outcome, OutcomeReport};
/// use serde_json::json;
///
/// let dir = tempfile::tempdir()?;
/// let authority = Authority::builder(dir.path().join("haltstate.db"))
///     .policy_source("inline.cedar", r#"
///         @id("refunds.small")
///         permit(principal, action == Action::"refund.create", resource)
///         when { context.params has amount_cents && context.params.amount_cents <= 10000 };
///     "#)
///     .open()?;
///
/// let refund = ActionRequest::new("billing", "refund.create").param("amount_cents", json!(4_500));
/// let answer = authority.guard("acme", GuardRequest::new(refund.clone(), "refund:1042")).wait()?;
/// assert_eq!(answer.status, GuardStatus::Allowed);
///
/// // ... perform the refund, then report how it went:
/// authority.report("acme", OutcomeReport::new("refund:1042", Outcome::Success)).wait()?;
///
/// // The same key never runs twice.
/// let again = authority.guard("acme", GuardRequest::new(refund, "refund:1042")).wait()?;
/// assert_eq!(again.status, GuardStatus::Completed);
/// assert!(authority.verify_ledger().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    policies: PolicyEngine,
    policy_file: Option<PathBuf>,
    db_path: PathBuf,
    reads: Arc<dyn Reads>,
    writer: Arc<Writer>,
    writer_thread: Option<JoinHandle<()>>,
    clock: Arc<dyn Clock>,
    windows: Windows,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    key_cache: Arc<KeyCache>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer thread finish what is queued and stop; joining makes that durable
        // before the last handle is gone.
        self.writer.close();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

impl Authority {
    /// Starts configuring an authority stored in the SQLite file at `db_path`.
    pub fn builder(db_path: impl Into<PathBuf>) -> AuthorityBuilder {
        AuthorityBuilder {
            db_path: db_path.into(),
            policy_file: None,
            policy_source: None,
            approval_ttl: DEFAULT_APPROVAL_TTL,
            lease: DEFAULT_LEASE,
            clock: Arc::new(SystemClock),
            durability: Durability::Full,
            checkpoint_pages: sqlite::DEFAULT_CHECKPOINT_PAGES,
        }
    }

    fn submit<T, F>(&self, op: F) -> Pending<T>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        pending::submit(&self.inner.writer, op)
    }

    /// The current time, as the authority sees it.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The SQLite file.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// The live policy engine.
    pub fn policies(&self) -> &PolicyEngine {
        &self.inner.policies
    }

    /// Re-reads the configured policy file; on error the old set stays in force.
    pub fn reload_policies(&self) -> Result<usize, PolicyError> {
        match &self.inner.policy_file {
            Some(path) => self.inner.policies.reload_file(path),
            None => Ok(self.inner.policies.current().len()),
        }
    }

    /// What policy alone says, with no kill switch, idempotency or ledger involved.
    pub fn decide(&self, tenant: &str, request: &ActionRequest) -> PolicyDecision {
        self.inner.policies.decide(tenant, request, self.now())
    }

    /// Asks to run an action under an idempotency key: kill switch, then the key's record, then policy.
    ///
    /// `Allowed` and `Approved` answers carry a claim: run the body, then [`report`](Self::report). A key bound
    /// to a different operation is refused with [`AuthorityError::IdempotencyConflict`].
    pub fn guard(&self, tenant: &str, mut request: GuardRequest) -> Pending<GuardAnswer> {
        if let Err(e) = validate_name("tenant", tenant).and_then(|()| request.normalize()) {
            return Pending::ready(Err(e.into()));
        }
        // Policy runs on the caller's thread, in parallel with other callers; the writer only orders state.
        let policy = self.decide(tenant, &request.action);
        let fingerprint = fingerprint(&request.action);
        let (tenant, windows) = (tenant.to_owned(), self.inner.windows);
        self.submit(move |b| ops::guard::guard(b, windows, &tenant, &request, &fingerprint, policy))
    }

    /// Reports how a guarded body ended: success completes the key, anything else releases the claim.
    pub fn report(&self, tenant: &str, report: OutcomeReport) -> Pending<ReportAck> {
        let report = match validate_name("tenant", tenant).and_then(|()| report.validated()) {
            Ok(report) => report,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let tenant = tenant.to_owned();
        self.submit(move |b| ops::report::report(b, &tenant, report))
    }

    /// Asks for a decision without claiming anything. APPROVAL_REQUIRED creates (or, for a known request id,
    /// finds) an approval to wait for.
    pub fn check(&self, tenant: &str, mut request: CheckRequest) -> Pending<CheckAnswer> {
        let valid = validate_name("tenant", tenant)
            .and_then(|()| request.action.normalize())
            .and_then(|()| {
                request
                    .request_id
                    .as_deref()
                    .map_or(Ok(()), |id| validate_text("request_id", id, MAX_KEY_LEN))
            });
        if let Err(e) = valid {
            return Pending::ready(Err(e.into()));
        }
        let policy = self.decide(tenant, &request.action);
        let fingerprint = fingerprint(&request.action);
        let (tenant, windows) = (tenant.to_owned(), self.inner.windows);
        self.submit(move |b| ops::check::check(b, windows, &tenant, request, &fingerprint, policy))
    }

    /// Records evidence of an action a client ran fail-open. Recorded once per `evidence_id`: answers the ledger
    /// sequence number and whether this delivery was a repeat (then nothing was written).
    pub fn record_unverified(
        &self,
        tenant: &str,
        evidence: UnverifiedOutcome,
    ) -> Pending<(u64, bool)> {
        let evidence = match validate_name("tenant", tenant).and_then(|()| evidence.validated()) {
            Ok(evidence) => evidence,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let tenant = tenant.to_owned();
        self.submit(move |b| ops::unverified::record(b, &tenant, evidence))
    }

    /// Records what a caller did after a check; answers the ledger sequence number. The record is `verified`
    /// only when this authority made the decision the report names (see [`CheckReport`]).
    pub fn report_check(&self, tenant: &str, report: CheckReport) -> Pending<u64> {
        let report = match validate_name("tenant", tenant).and_then(|()| report.validated()) {
            Ok(report) => report,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let tenant = tenant.to_owned();
        self.submit(move |b| ops::check::report(b, &tenant, report))
    }

    /// One approval of `tenant`.
    pub fn approval(&self, tenant: &str, id: &str) -> Result<Approval> {
        let now = self.now();
        self.inner
            .reads
            .approval(tenant, id, now)?
            .ok_or_else(|| AuthorityError::ApprovalNotFound { id: id.to_owned() })
    }

    /// Approvals of `tenant`, newest first, optionally only those with `status`.
    pub fn approvals(
        &self,
        tenant: &str,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let now = self.now();
        self.inner.reads.approvals(tenant, status, limit, now)
    }

    /// Approvals of `tenant` decided (or expired) after `since`, oldest first.
    pub fn approvals_since(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let now = self.now();
        self.inner.reads.approvals_since(tenant, since, limit, now)
    }

    /// Approves a pending approval as `approver` (an operator; never the requesting agent), recorded as acting
    /// from code in this process ([`Via::Library`]); see [`decide_approval`](Self::decide_approval).
    pub fn approve(
        &self,
        tenant: &str,
        id: &str,
        approver: &str,
        reason: Option<String>,
    ) -> Pending<Approval> {
        match Actor::new(approver, Via::Library) {
            Ok(actor) => self.decide_approval(tenant, id, Verdict::Approve, actor, reason),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Rejects a pending approval as `approver`; the key then answers denied with `reason`.
    pub fn reject(
        &self,
        tenant: &str,
        id: &str,
        approver: &str,
        reason: Option<String>,
    ) -> Pending<Approval> {
        match Actor::new(approver, Via::Library) {
            Ok(actor) => self.decide_approval(tenant, id, Verdict::Reject, actor, reason),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Decides a pending approval as `approver`, recorded with the channel it acted through. Nobody decides an
    /// approval requested under their own name ([`AuthorityError::SelfApproval`]), and a decided approval stays
    /// decided ([`AuthorityError::ApprovalDecided`]).
    pub fn decide_approval(
        &self,
        tenant: &str,
        id: &str,
        verdict: Verdict,
        approver: Actor,
        reason: Option<String>,
    ) -> Pending<Approval> {
        let valid = validate_name("tenant", tenant)
            .and_then(|()| validate_text("approval id", id, MAX_KEY_LEN));
        if let Err(e) = valid {
            return Pending::ready(Err(e.into()));
        }
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.submit(move |b| ops::approvals::decide(b, &tenant, &id, verdict, &approver, reason))
    }

    /// Stores the expiry of every overdue approval (reads already show them expired) and answers them.
    pub fn sweep_expired(&self) -> Pending<Vec<Approval>> {
        self.submit(ops::approvals::sweep_expired)
    }

    /// Approval changes as they commit (decisions and expiries), for streaming to clients.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ApprovalEvent> {
        self.inner.events.subscribe()
    }

    /// The effective kill-switch state for `agent_id`, or the tenant's own state when `agent_id` is `None`.
    pub fn kill_switch(&self, tenant: &str, agent_id: Option<&str>) -> Result<KillStatus> {
        let agent_id = agent_id
            .map(|agent| canonical_name("agent_id", agent))
            .transpose()?;
        match &agent_id {
            Some(agent) => self.inner.reads.kill_status(tenant, agent),
            None => {
                let scope = KillScope::Tenant(tenant.to_owned());
                let state = self.inner.reads.kill_state(&scope)?;
                Ok(KillStatus {
                    state,
                    scope: (state != KillState::Run).then_some(scope),
                })
            }
        }
    }

    /// Sets the kill switch of `scope`; the change is itself a ledger record naming `actor`, recorded as acting
    /// from code in this process ([`Via::Library`]).
    pub fn set_kill_switch(
        &self,
        scope: KillScope,
        state: KillState,
        actor: &str,
    ) -> Pending<KillStatus> {
        match Actor::new(actor, Via::Library) {
            Ok(actor) => self.set_kill_switch_as(scope, state, actor),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Sets the kill switch of `scope` as `actor`, recorded with the channel it acted through.
    pub fn set_kill_switch_as(
        &self,
        scope: KillScope,
        state: KillState,
        actor: Actor,
    ) -> Pending<KillStatus> {
        let scope = match validate_name("tenant", scope.tenant()).and_then(|()| match scope {
            KillScope::Agent { tenant, agent_id } => Ok(KillScope::Agent {
                agent_id: canonical_name("agent_id", &agent_id)?,
                tenant,
            }),
            tenant => Ok(tenant),
        }) {
            Ok(scope) => scope,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        self.submit(move |b| ops::kill::set(b, &scope, state, &actor))
    }

    /// Evidence of `tenant` matching `query`, in ledger order.
    pub fn evidence(&self, tenant: &str, query: &EvidenceQuery) -> Result<Vec<EvidenceRecord>> {
        self.inner.reads.evidence(tenant, query)
    }

    /// The last record of the ledger.
    pub fn ledger_head(&self) -> Result<LedgerHead> {
        self.inner.reads.ledger_head()
    }

    /// The last record of `tenant`'s evidence (sequence 0 and the genesis hash when it has none): what an
    /// operator of that tenant may see of the ledger's end.
    pub fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        self.inner.reads.tenant_head(tenant)
    }

    /// Recomputes the whole hash chain; [`AuthorityError::LedgerBroken`] names the first broken record.
    pub fn verify_ledger(&self) -> Result<VerifyReport> {
        self.inner.reads.verify()
    }

    /// Verifies the ledger of the database at `path` without opening an authority on it: read-only, never
    /// creating or migrating anything, and refusing ([`AuthorityError::NotADatabase`]) a file that is not a
    /// HaltState database.
    pub fn verify_ledger_file(path: impl AsRef<Path>) -> Result<VerifyReport> {
        sqlite::verify_file(path.as_ref())
    }

    /// Creates an API key named `name` (for an agent key, acting as the agent of that name); its secret is in
    /// the answer and nowhere else.
    pub fn create_key(&self, tenant: &str, name: &str, role: Role) -> Pending<NewKey> {
        self.create_key_with(tenant, KeySpec::new(name, role))
    }

    /// Creates an API key as `spec` says. Names are canonical and unique among the tenant's live keys
    /// ([`AuthorityError::DuplicateKeyName`]).
    pub fn create_key_with(&self, tenant: &str, spec: KeySpec) -> Pending<NewKey> {
        if let Err(e) = validate_name("tenant", tenant).and_then(|()| spec.resolved().map(drop)) {
            return Pending::ready(Err(e.into()));
        }
        let tenant = tenant.to_owned();
        self.submit(move |b| ops::keys::create(b, &tenant, &spec))
    }

    /// Revokes a key by id; answers whether a live key was revoked. This authority forgets the key as the
    /// revocation is written; a request authenticating at that moment, or through another process on the same
    /// database, may still be served for at most [`KEY_CACHE_TTL`](crate::KEY_CACHE_TTL).
    pub fn revoke_key(&self, tenant: &str, key_id: &str) -> Pending<bool> {
        // Forget it before and after: a request authenticating meanwhile may have put it back.
        self.inner.key_cache.forget(key_id);
        let (tenant, key_id) = (tenant.to_owned(), key_id.to_owned());
        // Only the cache: a queued operation holding the whole authority would keep it alive past its last handle.
        let cache = self.inner.key_cache.clone();
        self.submit(move |b| {
            let revoked = ops::keys::revoke(b, &tenant, &key_id);
            cache.forget(&key_id);
            revoked
        })
    }

    /// The tenant's keys, newest first; revoked ones too unless `live_only`. Never their secrets.
    pub fn keys(&self, tenant: &str, live_only: bool) -> Result<Vec<KeyInfo>> {
        self.inner.reads.keys(tenant, live_only)
    }

    /// One key of the tenant.
    pub fn key(&self, tenant: &str, key_id: &str) -> Result<KeyInfo> {
        self.inner
            .reads
            .key_info(tenant, key_id)?
            .ok_or_else(|| AuthorityError::KeyNotFound {
                id: key_id.to_owned(),
            })
    }

    /// Who `secret` authenticates as within `tenant`. Every failure is the same
    /// [`AuthorityError::Unauthenticated`], whether the tenant is unknown or the key wrong. A success is
    /// remembered for [`KEY_CACHE_TTL`](crate::KEY_CACHE_TTL).
    pub fn authenticate(&self, tenant: &str, secret: &str) -> Result<Principal> {
        if tenant.is_empty() || secret.is_empty() || tenant.len() > 128 || secret.len() > 256 {
            return Err(AuthorityError::Unauthenticated);
        }
        if let Some(principal) = self.inner.key_cache.get(tenant, secret) {
            return Ok(principal);
        }
        let principal = self.inner.reads.authenticate(tenant, secret)?;
        self.inner.key_cache.put(tenant, secret, &principal);
        Ok(principal)
    }

    /// The state of an idempotency key and, while claimed, the lease remaining.
    pub fn idempotency_state(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<(KeyState, Option<Duration>)>> {
        let now = self.now();
        self.inner.reads.key_state(tenant, key, now)
    }

    /// How many transactions and operations the writer has committed (group commit at work).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }
}
