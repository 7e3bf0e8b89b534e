//! The authority: one handle over policies, approvals, idempotency claims, the kill switch and the ledger.
//!
//! Its API, by noun, a file each (each file's doc lists what it offers):
//! - `builder.rs`: opening one ([`Authority::builder`]); this file: the handle itself (its clock, database and
//!   policies);
//! - `decisions.rs`: guard, report, check, and where idempotency keys stand;
//! - `approvals.rs`: reading and deciding approvals, their expiry;
//! - `kill_switch.rs`: stopping a tenant or an agent;
//! - `ledger.rs`: the evidence and its hash chains; `evidence_proof.rs`: signed checkpoints and proof packs;
//!   `state_check.rs`: the state tables checked against the ledger; `replay.rs`, `shadow.rs`: policy changes
//!   tried on recorded decisions;
//! - `keys.rs`: API keys; `webhooks.rs`: webhook endpoints and deliveries;
//! - `database.rs`: readiness, schema migration, copying to PostgreSQL, the writer's counters.

mod approvals;
mod builder;
mod console;
mod database;
mod decisions;
mod evidence_proof;
mod keys;
mod kill_switch;
mod ledger;
mod merkle;
mod replay;
mod shadow;
mod state_check;
mod tree_pack;
mod tree_verify;
mod webhooks;

pub use builder::{
    AuthorityBuilder, DEFAULT_LOG_PREFIX, DEFAULT_POSTGRES_WRITERS, MAX_POSTGRES_WRITERS,
};
pub use evidence_proof::ProofSelection;
pub use keys::LOCAL_ACTOR;
pub use replay::{ReplayChange, ReplayQuery, ReplayReport};
pub use shadow::{ShadowDisagreement, ShadowReport};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::error::Result;
use crate::key_cache::KeyCache;
use crate::policy::{PolicyEngine, PolicyError};
use crate::rules::Windows;
use crate::store::job::{KeyHint, WriterCounters};
use crate::store::pending::{self, Pending};
use crate::store::tx::{Reads, Tx};
use crate::store::writers::Writers;

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
    /// One writer per connection that writes (several on PostgreSQL), each owning a share of the tenants.
    writers: Writers,
    clock: Arc<dyn Clock>,
    windows: Windows,
    counters: Arc<WriterCounters>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    key_cache: Arc<KeyCache>,
    keyring: crate::webhooks::Keyring,
    /// Each tenant's log is named `<log_prefix>/<tenant>`.
    log_prefix: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queues lets the writer threads finish what is queued and stop; joining makes that durable
        // before the last handle is gone.
        if let Some(stop) = &self.stop_listener {
            stop.store(true, Ordering::Relaxed);
        }
        self.writers.close();
    }
}

impl Authority {
    /// Starts configuring an authority stored in `database`: a SQLite file's path, or a [`Database`](crate::Database)
    /// (a PostgreSQL URL with the `postgres` feature).
    pub fn builder(database: impl Into<crate::database::Database>) -> AuthorityBuilder {
        AuthorityBuilder::new(database.into())
    }

    /// Queues `op`, which reads and writes `tenant`'s state only. It may run more than once (its batch's
    /// transaction rolled back and run again), so it changes nothing outside the transaction that a second run
    /// would change again.
    fn submit<T, F>(&self, tenant: String, op: F) -> Pending<T>
    where
        F: FnMut(&mut dyn Tx, &str) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit_keyed(tenant, None, op)
    }

    /// [`submit`](Self::submit) for an operation that first reads `key`'s row (its batch may read them all at
    /// once).
    fn submit_keyed<T, F>(&self, tenant: String, key: Option<KeyHint>, op: F) -> Pending<T>
    where
        F: FnMut(&mut dyn Tx, &str) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let writer = self.inner.writers.for_tenant(&tenant);
        pending::submit(writer, tenant, key, op)
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
}

/// An operator's reason for a change, trimmed: `None` when blank, refused past
/// [`MAX_ERROR_TEXT`](haltstate_types::limits::MAX_ERROR_TEXT) bytes.
fn given_reason(reason: Option<&str>) -> Result<Option<String>> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => {
            haltstate_types::validate_text(
                "reason",
                reason,
                haltstate_types::limits::MAX_ERROR_TEXT,
            )?;
            Ok(Some(reason.to_owned()))
        }
        None => Ok(None),
    }
}
