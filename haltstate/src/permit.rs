//! The permit: proof that the authority let this call run, and the one place its outcome is reported.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use haltstate_types::{
    GuardAnswer, GuardStatus, LlmUsage, Outcome, OutcomeReport, ProofStatus, UnverifiedOutcome,
};
use time::OffsetDateTime;

use crate::client::HaltStateClient;
use crate::error::GuardError;
use crate::evidence::Evidence;

/// Error texts in reports are cut to this many characters (after every param value is removed).
pub const MAX_ERROR_CHARS: usize = 256;

/// What the guard knew when it granted.
pub(crate) struct PermitParts {
    pub(crate) client: HaltStateClient,
    pub(crate) action: String,
    pub(crate) agent_id: String,
    pub(crate) idempotency_key: String,
    pub(crate) resource: Option<String>,
    pub(crate) redacted_fields: Vec<String>,
    pub(crate) sensitive: Vec<String>,
    pub(crate) decision_latency: Duration,
    pub(crate) span: tracing::Span,
}

struct Grant {
    parts: PermitParts,
    decision: &'static str,
    claim_token: Option<String>,
    approval_id: Option<String>,
    approver: Option<String>,
    approved_at: Option<OffsetDateTime>,
    policy_id: Option<String>,
    reason: String,
    unverified: bool,
    resource_refs: Vec<String>,
    started: Instant,
    occurred_at: OffsetDateTime,
    usage: Option<LlmUsage>,
}

/// Permission to run one guarded action, held while its body runs.
///
/// Report the outcome exactly once, with [`complete`](Self::complete) or [`fail`](Self::fail) (they take the
/// permit by value). A permit dropped without either reports `aborted`, or `panicked` while unwinding, in the
/// background: the claim is released either way.
#[must_use = "a permit must be completed or failed; dropping it reports the action as aborted"]
pub struct Permit {
    grant: Option<Grant>,
    drop_outcome: Outcome,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Permit");
        if let Some(grant) = &self.grant {
            d.field("action", &grant.parts.action)
                .field("idempotency_key", &grant.parts.idempotency_key)
                .field("decision", &grant.decision)
                .field("approval_id", &grant.approval_id);
        }
        d.finish_non_exhaustive()
    }
}

impl Permit {
    pub(crate) fn granted(parts: PermitParts, answer: GuardAnswer) -> Self {
        let decision = if answer.status == GuardStatus::Approved {
            "approved"
        } else {
            "allowed"
        };
        Self::with(Grant {
            parts,
            decision,
            claim_token: answer.claim.map(|claim| claim.token),
            approval_id: answer.approval_id,
            approver: answer.approver,
            approved_at: answer.approved_at,
            policy_id: answer.policy_id,
            reason: answer.reason,
            unverified: false,
            resource_refs: Vec::new(),
            started: Instant::now(),
            occurred_at: OffsetDateTime::now_utc(),
            usage: None,
        })
    }

    pub(crate) fn unverified(parts: PermitParts, why: String) -> Self {
        Self::with(Grant {
            parts,
            decision: "unverified",
            claim_token: None,
            approval_id: None,
            approver: None,
            approved_at: None,
            policy_id: None,
            reason: format!("fail-open: {why}"),
            unverified: true,
            resource_refs: Vec::new(),
            started: Instant::now(),
            occurred_at: OffsetDateTime::now_utc(),
            usage: None,
        })
    }

    fn with(grant: Grant) -> Self {
        Self {
            grant: Some(grant),
            drop_outcome: Outcome::Aborted,
        }
    }

    fn grant(&self) -> Option<&Grant> {
        self.grant.as_ref()
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> &str {
        self.grant()
            .map_or("", |g| g.parts.idempotency_key.as_str())
    }

    /// The action.
    pub fn action(&self) -> &str {
        self.grant().map_or("", |g| g.parts.action.as_str())
    }

    /// The approval behind an approved permit.
    pub fn approval_id(&self) -> Option<&str> {
        self.grant().and_then(|g| g.approval_id.as_deref())
    }

    /// Who approved.
    pub fn approver(&self) -> Option<&str> {
        self.grant().and_then(|g| g.approver.as_deref())
    }

    /// When it was approved, as the authority says (never the client clock).
    pub fn approved_at(&self) -> Option<OffsetDateTime> {
        self.grant().and_then(|g| g.approved_at)
    }

    /// The deciding policy.
    pub fn policy_id(&self) -> Option<&str> {
        self.grant().and_then(|g| g.policy_id.as_deref())
    }

    /// The authority's reason.
    pub fn reason(&self) -> &str {
        self.grant().map_or("", |g| g.reason.as_str())
    }

    /// `false` when the authority could not be reached and the call runs fail-open.
    pub fn is_verified(&self) -> bool {
        self.grant().is_some_and(|g| !g.unverified)
    }

    /// Adds a safe reference to what the body produced (`refund:re_123`), recorded with the outcome.
    pub fn add_resource_ref(&mut self, reference: impl Into<String>) {
        if let Some(grant) = &mut self.grant {
            grant.resource_refs.push(reference.into());
        }
    }

    /// Records what an LLM call consumed, reported with the outcome.
    pub fn set_usage(&mut self, usage: LlmUsage) {
        if let Some(grant) = &mut self.grant {
            grant.usage = Some(usage);
        }
    }

    /// What a permit dropped without an outcome reports: `aborted` by default. Code that runs the side effect in a
    /// future the caller may drop (a request handler, the guard macros' async bodies) sets `cancelled`.
    pub fn set_drop_outcome(&mut self, outcome: Outcome) {
        self.drop_outcome = outcome;
    }

    /// Reports success: the key completes and never runs again.
    pub async fn complete(self) -> Result<Evidence, GuardError> {
        self.finish(Outcome::Success, None).await
    }

    /// Reports failure: the claim is released so a retry may run. The error text is cut and every param value
    /// is removed from it before it leaves the process.
    pub async fn fail(self, error: impl fmt::Display) -> Result<Evidence, GuardError> {
        self.finish(Outcome::Error, Some(error.to_string())).await
    }

    /// Reports `outcome`. `Err` means the outcome could not be recorded; the action itself did run.
    pub async fn finish(
        mut self,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<Evidence, GuardError> {
        let Some(grant) = self.grant.take() else {
            return Err(GuardError::Config(
                "this permit's outcome was already reported".into(),
            ));
        };
        let (report, evidence, client) = prepare(grant, outcome, error);
        let result = deliver(&client, report).await;
        if let Err(error) = &result {
            tracing::error!(%error, key = %evidence.idempotency_key, "outcome report failed");
        }
        result.map(|()| evidence)
    }

    /// Sync [`finish`](Self::finish), for the blocking client and sync guarded functions.
    pub(crate) fn finish_blocking(
        self,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<Evidence, GuardError> {
        crate::runtime::block_on(self.finish(outcome, error))
    }
}

/// Where an outcome goes: to the authority, or (fail-open) to the spool for later delivery.
enum Report {
    Authority(OutcomeReport),
    Spool(UnverifiedOutcome),
}

fn prepare(
    grant: Grant,
    outcome: Outcome,
    error: Option<String>,
) -> (Report, Evidence, HaltStateClient) {
    let body_latency = grant.started.elapsed();
    let parts = grant.parts;
    let mut resource_refs: Vec<String> = parts.resource.iter().cloned().collect();
    resource_refs.extend(grant.resource_refs);
    let proof_status = if grant.unverified {
        ProofStatus::Unverified
    } else {
        ProofStatus::Verified
    };
    let evidence = Evidence {
        action: parts.action.clone(),
        agent_id: parts.agent_id.clone(),
        idempotency_key: parts.idempotency_key.clone(),
        decision: grant.decision.to_owned(),
        outcome: Some(outcome),
        policy_id: grant.policy_id,
        approval_id: grant.approval_id,
        resource_refs: resource_refs.clone(),
        decision_latency: parts.decision_latency,
        body_latency: Some(body_latency),
        proof_status,
        redaction_status: if parts.redacted_fields.is_empty() {
            "none"
        } else {
            "redacted"
        },
        redacted_fields: parts.redacted_fields.clone(),
        usage: grant.usage.clone(),
    };
    evidence.emit(&parts.span);
    let error = error.map(|e| crate::redact::scrub(&e, &parts.sensitive, MAX_ERROR_CHARS));
    let report = if proof_status == ProofStatus::Verified {
        let mut report = OutcomeReport::new(parts.idempotency_key, outcome)
            .agent(parts.agent_id.clone())
            .body_latency(body_latency);
        report.claim_token = grant.claim_token;
        report.error = error;
        report.resource_refs = resource_refs;
        report.redacted_fields = parts.redacted_fields;
        report.proof_status = proof_status;
        report.usage = grant.usage;
        Report::Authority(report)
    } else {
        Report::Spool(UnverifiedOutcome {
            evidence_id: format!("ev_{}", uuid::Uuid::new_v4().simple()),
            agent_id: parts.agent_id,
            action: parts.action,
            idempotency_key: parts.idempotency_key,
            outcome,
            reason: Some(grant.reason),
            error,
            body_latency: Some(body_latency),
            resource_refs,
            redacted_fields: parts.redacted_fields,
            occurred_at: grant.occurred_at,
        })
    };
    (report, evidence, parts.client)
}

async fn deliver(client: &HaltStateClient, report: Report) -> Result<(), GuardError> {
    match report {
        Report::Authority(report) => {
            let sender = client.clone();
            client
                .on_io(async move { sender.inner.transport.report(&report).await })
                .await
        }
        // Durable before we answer; the spool's deliverer takes it from here.
        Report::Spool(evidence) => {
            client.inner.spool.write(&evidence)?;
            if !client.inner.delivering.swap(true, Ordering::AcqRel) {
                crate::delivery::start(client);
            }
            Ok(())
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(grant) = self.grant.take() else {
            return;
        };
        let outcome = if std::thread::panicking() {
            Outcome::Panicked
        } else {
            self.drop_outcome
        };
        let (report, evidence, client) = prepare(grant, outcome, None);
        tracing::warn!(key = %evidence.idempotency_key, %outcome, "permit dropped without an outcome; reporting it");
        // Never block in drop: the report goes out on the client's runtime.
        if let Some(runtime) = &client.inner.runtime {
            let sender = client.clone();
            runtime.spawn(async move {
                if let Err(error) = deliver(&sender, report).await {
                    tracing::error!(%error, "report of a dropped permit failed");
                }
            });
        }
    }
}
