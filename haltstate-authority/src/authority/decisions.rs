//! Decisions: what an agent asks before acting and reports after, and where its idempotency keys stand.
//!
//! - [`decide`](Authority::decide): what policy alone says.
//! - [`guard`](Authority::guard) then [`report`](Authority::report): ask to run under an idempotency key (kill
//!   switch, the key's record, policy), then say how the body ended.
//! - [`check`](Authority::check) then [`report_check`](Authority::report_check): a decision without a claim, and
//!   what the caller did after it.
//! - [`record_unverified`](Authority::record_unverified): evidence of an action a client ran fail-open.
//! - [`idempotency_status`](Authority::idempotency_status), [`idempotency_state`](Authority::idempotency_state):
//!   where a key stands.

use std::time::Duration;

use haltstate_types::{
    ActionRequest, CheckAnswer, CheckReport, CheckRequest, GuardAnswer, GuardRequest, KeyState,
    OutcomeReport, ReportAck, RequestError, UnverifiedOutcome, fingerprint, validate_name,
};

use super::Authority;
use crate::error::Result;
use crate::ops;
use crate::ops::judgement::Judgement;
use crate::policy_decision::PolicyDecision;
use crate::state_rows::KeyStatus;
use crate::store::job::KeyHint;
use crate::store::pending::Pending;

impl Authority {
    /// What policy alone says, with no kill switch, idempotency or ledger involved. A policy that reads
    /// `context.usage` has no usage to read here and fails to evaluate, which denies; a guard or check decides it
    /// with the agent's usage ([`PolicyEngine::decide_with_usage`](crate::PolicyEngine::decide_with_usage) takes usage given by hand).
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
        let key = KeyHint {
            agent: request.action.agent_id.clone(),
            key: request.idempotency_key.clone(),
        };
        self.submit_keyed(tenant, Some(key), move |b, tenant| {
            ops::guard::guard(b, windows, tenant, &request, &fingerprint, &policy)
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
        let key = report.agent_id.as_ref().map(|agent| KeyHint {
            agent: agent.clone(),
            key: report.idempotency_key.clone(),
        });
        self.submit_keyed(tenant, key, move |b, tenant| {
            ops::report::report(b, windows, tenant, &report)
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
            ops::check::check(b, windows, tenant, &request, &fingerprint, &policy)
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
            ops::unverified::record(b, tenant, &evidence)
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
            ops::check::report(b, tenant, &report)
        })
    }

    /// The state of `agent`'s idempotency key (keys are scoped per agent) and, while claimed, the lease
    /// remaining.
    pub fn idempotency_state(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
    ) -> Result<Option<(KeyState, Option<Duration>)>> {
        Ok(self
            .idempotency_status(tenant, agent, key)?
            .map(|status| (status.state, status.lease_left)))
    }

    /// Where `agent`'s idempotency key stands: its state, which operation (generation) under it, its lifetime
    /// and, while claimed, the lease remaining.
    pub fn idempotency_status(
        &self,
        tenant: &str,
        agent: &str,
        key: &str,
    ) -> Result<Option<KeyStatus>> {
        let now = self.now();
        self.inner.reads.key_state(tenant, agent, key, now)
    }
}
