//! The authority: one handle over policies, approvals, idempotency claims, the kill switch and the ledger.
//!
//! `builder.rs` opens one; this file asks it for decisions (guard, check, report); `operator.rs` holds what
//! operators do (approvals, the kill switch, evidence); `keys.rs` the API keys.

mod builder;
mod evidence_proof;
mod keys;
mod operator;
mod replay;
mod shadow;
mod state_check;
mod webhooks;

pub use builder::AuthorityBuilder;
pub use evidence_proof::ProofSelection;
pub use keys::LOCAL_ACTOR;
pub use replay::{ReplayChange, ReplayQuery, ReplayReport};
pub use shadow::{ShadowDisagreement, ShadowReport};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use time::OffsetDateTime;

use haltstate_types::{
    ActionRequest, CheckAnswer, CheckReport, CheckRequest, GuardAnswer, GuardRequest,
    OutcomeReport, ReportAck, RequestError, UnverifiedOutcome, fingerprint, validate_name,
};

use crate::clock::Clock;
use crate::decision::{Judgement, PolicyDecision};
use crate::error::Result;
use crate::events::ApprovalEvent;
use crate::key_cache::KeyCache;
use crate::ops;
use crate::policy::{PolicyEngine, PolicyError};
use crate::rules::Windows;
use crate::store::job::WriterCounters;
use crate::store::pending::{self, Pending};
use crate::store::tx::{Reads, Tx};
use crate::store::writer::Writer;

/// How long an approval stays decidable unless configured otherwise.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a claim lasts before another worker may re-claim the key, unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);
/// Claims one approval grants, by default (see [`AuthorityBuilder::approval_attempts`]).
pub const DEFAULT_APPROVAL_ATTEMPTS: u32 = 3;
/// Approvals one agent may have waiting at once, by default (see
/// [`AuthorityBuilder::max_pending_approvals_per_agent`]).
pub const DEFAULT_MAX_PENDING_PER_AGENT: usize = 50;
/// Approvals one tenant may have waiting at once, by default: the console's inbox shows this many (see
/// [`AuthorityBuilder::max_pending_approvals_per_tenant`]).
pub const DEFAULT_MAX_PENDING_PER_TENANT: usize = 500;

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
    policies: Arc<PolicyEngine>,
    policy_file: Option<PathBuf>,
    shadow_file: Option<PathBuf>,
    database: crate::database::Database,
    /// Stops the thread listening for other instances' changes (PostgreSQL).
    stop_listener: Option<Arc<AtomicBool>>,
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
        if let Some(stop) = &self.stop_listener {
            stop.store(true, Ordering::Relaxed);
        }
        self.writer.close();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

impl Authority {
    /// Starts configuring an authority stored in `database`: a SQLite file's path, or a [`Database`](crate::Database)
    /// (a PostgreSQL URL with the `postgres` feature).
    pub fn builder(database: impl Into<crate::database::Database>) -> AuthorityBuilder {
        AuthorityBuilder::new(database.into())
    }

    /// Queues `op`, which reads and writes `tenant`'s state only.
    fn submit<T, F>(&self, tenant: String, op: F) -> Pending<T>
    where
        F: FnOnce(&mut dyn Tx, &str) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        pending::submit(&self.inner.writer, tenant, op)
    }

    /// The current time, as the authority sees it.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// Where the authority keeps its state.
    pub fn database(&self) -> &crate::database::Database {
        &self.inner.database
    }

    /// The live policy engine.
    pub fn policies(&self) -> &PolicyEngine {
        &self.inner.policies
    }

    /// Re-reads the configured policy file (and shadow file); on error the old sets stay in force.
    pub fn reload_policies(&self) -> Result<usize, PolicyError> {
        if let Some(shadow) = &self.inner.shadow_file {
            // Checked first: a bad shadow file leaves both sets as they were.
            crate::policy::PolicyEngine::from_file(shadow)?;
        }
        let count = match &self.inner.policy_file {
            Some(path) => self.inner.policies.reload_file(path)?,
            None => self.inner.policies.current().len(),
        };
        if let Some(shadow) = &self.inner.shadow_file {
            self.inner.policies.set_shadow_file(shadow)?;
        }
        Ok(count)
    }

    /// What policy alone says, with no kill switch, idempotency or ledger involved. A policy that reads
    /// `context.usage` has no usage to read here and fails to evaluate, which denies; a guard or check decides it
    /// with the agent's usage ([`PolicyEngine::decide_with_usage`] takes usage given by hand).
    pub fn decide(&self, tenant: &str, request: &ActionRequest) -> PolicyDecision {
        self.inner.policies.decide(tenant, request, self.now())
    }

    /// Asks to run an action under an idempotency key: kill switch, then the key's record, then policy.
    ///
    /// `Allowed` and `Approved` answers carry a claim: run the body, then [`report`](Self::report). A key bound
    /// to a different operation is refused with [`AuthorityError::IdempotencyConflict`](crate::AuthorityError::IdempotencyConflict).
    pub fn guard(&self, tenant: &str, mut request: GuardRequest) -> Pending<GuardAnswer> {
        let judged = validate_name("tenant", tenant)
            .and_then(|()| request.normalize())
            .and_then(|()| self.judge(tenant, &request.action));
        let (policy, fingerprint) = match judged {
            Ok(judged) => judged,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let (tenant, windows) = (tenant.to_owned(), self.inner.windows);
        self.submit(tenant, move |b, tenant| {
            ops::guard::guard(b, windows, tenant, &request, &fingerprint, policy)
        })
    }

    /// Policy's decision and the operation's fingerprint for a valid request. Policy runs on the caller's
    /// thread, in parallel with other callers, unless a policy of the action reads usage: then it runs in the
    /// transaction, which loads the usage and charges it.
    fn judge(
        &self,
        tenant: &str,
        action: &ActionRequest,
    ) -> std::result::Result<(Judgement, String), RequestError> {
        let fingerprint = fingerprint(action)?;
        if self.inner.policies.reads_usage(&action.action) {
            return Ok((
                Judgement::WithUsage(self.inner.policies.clone()),
                fingerprint,
            ));
        }
        Ok((Judgement::Decided(self.decide(tenant, action)), fingerprint))
    }

    /// Reports how a guarded body ended: success completes the key, anything else releases the claim.
    pub fn report(&self, tenant: &str, report: OutcomeReport) -> Pending<ReportAck> {
        let report = match validate_name("tenant", tenant).and_then(|()| report.validated()) {
            Ok(report) => report,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let (tenant, windows) = (tenant.to_owned(), self.inner.windows);
        self.submit(tenant, move |b, tenant| {
            ops::report::report(b, windows, tenant, report)
        })
    }

    /// Asks for a decision without claiming anything. APPROVAL_REQUIRED creates (or, for a known request id,
    /// finds) an approval to wait for.
    pub fn check(&self, tenant: &str, mut request: CheckRequest) -> Pending<CheckAnswer> {
        let judged = validate_name("tenant", tenant)
            .and_then(|()| request.normalize())
            .and_then(|()| self.judge(tenant, &request.action));
        let (policy, fingerprint) = match judged {
            Ok(judged) => judged,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let (tenant, windows) = (tenant.to_owned(), self.inner.windows);
        self.submit(tenant, move |b, tenant| {
            ops::check::check(b, windows, tenant, request, &fingerprint, policy)
        })
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
        self.submit(tenant, move |b, tenant| {
            ops::unverified::record(b, tenant, evidence)
        })
    }

    /// Records what a caller did after a check; answers the ledger sequence number. The record is `verified`
    /// only when this authority made the decision the report names (see [`CheckReport`]).
    pub fn report_check(&self, tenant: &str, report: CheckReport) -> Pending<u64> {
        let report = match validate_name("tenant", tenant).and_then(|()| report.validated()) {
            Ok(report) => report,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        let tenant = tenant.to_owned();
        self.submit(tenant, move |b, tenant| {
            ops::check::report(b, tenant, report)
        })
    }
}
