//! The same operations for sync code.
//!
//! Works outside any runtime, inside a multi-thread runtime (e.g. from `spawn_blocking`), and from a sync
//! function called inside a `current_thread` runtime: the I/O runs on the client's own runtime threads, and this
//! thread only waits for the answer, so nothing here needs (or blocks) the caller's runtime to make progress.

use std::time::Duration;

use haltstate_types::wire::ApprovalDecision;
use haltstate_types::{KillState, LlmUsage, Outcome};
use time::OffsetDateTime;

use crate::action::Action;
use crate::answers::CheckResult;
use crate::client::HaltStateClient;
use crate::error::GuardError;
use crate::evidence::Evidence;
use crate::runtime::block_on;

/// A [`HaltStateClient`] with blocking methods. Get one with [`HaltStateClient::blocking`].
///
/// ```
/// use haltstate::{Action, HaltStateClient};
///
/// # let dir = tempfile::tempdir()?;
/// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db"))
/// #     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#).open()?;
/// let client = HaltStateClient::embedded(authority)?.blocking();
/// let permit = client.guard(Action::new("data.export").key("export:2026-01").param("count", 100))?;
/// // ... export ...
/// let evidence = permit.complete()?;
/// assert_eq!(evidence.decision, "allowed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BlockingClient {
    client: HaltStateClient,
}

impl HaltStateClient {
    /// The same client with blocking methods, for sync code.
    pub fn blocking(&self) -> BlockingClient {
        BlockingClient::new(self.clone())
    }
}

impl BlockingClient {
    pub(crate) fn new(client: HaltStateClient) -> Self {
        Self { client }
    }

    /// The async client behind this one.
    pub fn client(&self) -> &HaltStateClient {
        &self.client
    }

    /// See [`HaltStateClient::guard`].
    pub fn guard(&self, action: Action) -> Result<Permit, GuardError> {
        block_on(self.client.guard(action)).map(|permit| Permit { inner: permit })
    }

    /// See [`HaltStateClient::check`].
    pub fn check(&self, action: Action) -> Result<CheckResult, GuardError> {
        block_on(self.client.check(action))
    }

    /// See [`HaltStateClient::report`].
    pub fn report(
        &self,
        check: &CheckResult,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), GuardError> {
        block_on(self.client.report(check, outcome, error))
    }

    /// See [`HaltStateClient::approval`].
    pub fn approval(&self, approval_id: &str) -> Result<ApprovalDecision, GuardError> {
        block_on(self.client.approval(approval_id))
    }

    /// See [`HaltStateClient::wait_for_approval`].
    pub fn wait_for_approval(
        &self,
        approval_id: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, GuardError> {
        block_on(self.client.wait_for_approval(approval_id, timeout))
    }

    /// See [`HaltStateClient::approvals_since`].
    pub fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        block_on(self.client.approvals_since(since, limit))
    }

    /// See [`HaltStateClient::heartbeat`].
    pub fn heartbeat(&self) -> Result<KillState, GuardError> {
        block_on(self.client.heartbeat())
    }
}

/// A [`crate::Permit`] whose outcome is reported by blocking calls: the same methods, name for name.
#[derive(Debug)]
#[must_use = "a permit must be completed or failed; dropping it reports the action as aborted"]
pub struct Permit {
    inner: crate::Permit,
}

impl Permit {
    /// The async permit inside.
    pub fn into_inner(self) -> crate::Permit {
        self.inner
    }

    /// See [`crate::Permit::idempotency_key`].
    pub fn idempotency_key(&self) -> &str {
        self.inner.idempotency_key()
    }

    /// See [`crate::Permit::action`].
    pub fn action(&self) -> &str {
        self.inner.action()
    }

    /// See [`crate::Permit::approval_id`].
    pub fn approval_id(&self) -> Option<&str> {
        self.inner.approval_id()
    }

    /// See [`crate::Permit::approver`].
    pub fn approver(&self) -> Option<&str> {
        self.inner.approver()
    }

    /// See [`crate::Permit::approved_at`].
    pub fn approved_at(&self) -> Option<OffsetDateTime> {
        self.inner.approved_at()
    }

    /// See [`crate::Permit::policy_id`].
    pub fn policy_id(&self) -> Option<&str> {
        self.inner.policy_id()
    }

    /// See [`crate::Permit::reason`].
    pub fn reason(&self) -> &str {
        self.inner.reason()
    }

    /// See [`crate::Permit::is_verified`].
    pub fn is_verified(&self) -> bool {
        self.inner.is_verified()
    }

    /// See [`crate::Permit::add_resource_ref`].
    pub fn add_resource_ref(&mut self, reference: impl Into<String>) {
        self.inner.add_resource_ref(reference);
    }

    /// See [`crate::Permit::set_usage`].
    pub fn set_usage(&mut self, usage: LlmUsage) {
        self.inner.set_usage(usage);
    }

    /// See [`crate::Permit::complete`].
    pub fn complete(self) -> Result<Evidence, GuardError> {
        self.inner.finish_blocking(Outcome::Success, None)
    }

    /// See [`crate::Permit::fail`].
    pub fn fail(self, error: impl std::fmt::Display) -> Result<Evidence, GuardError> {
        self.inner
            .finish_blocking(Outcome::Error, Some(error.to_string()))
    }

    /// See [`crate::Permit::finish`].
    pub fn finish(self, outcome: Outcome, error: Option<String>) -> Result<Evidence, GuardError> {
        self.inner.finish_blocking(outcome, error)
    }
}
