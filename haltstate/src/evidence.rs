//! Evidence: what every guarded call leaves behind, returned to the caller and emitted as a `tracing` event
//! inside the `haltstate.guard` span.

use std::time::Duration;

use haltstate_types::{LlmUsage, Outcome, ProofStatus};

use crate::error::GuardError;

/// What happened to one guarded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The action.
    pub action: String,
    /// The agent.
    pub agent_id: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The guard's answer: `allowed`, `approved`, or `unverified` (fail-open).
    pub decision: String,
    /// How the body ended.
    pub outcome: Option<Outcome>,
    /// The deciding policy.
    pub policy_id: Option<String>,
    /// The approval, when a human approved.
    pub approval_id: Option<String>,
    /// Safe references to what was acted on or produced.
    pub resource_refs: Vec<String>,
    /// Time to the authority's answer.
    pub decision_latency: Duration,
    /// Time the body ran.
    pub body_latency: Option<Duration>,
    /// Whether the authority decided.
    pub proof_status: ProofStatus,
    /// `none` or `redacted`.
    pub redaction_status: &'static str,
    /// The params sent as digests.
    pub redacted_fields: Vec<String>,
    /// For an LLM call whose response implements [`Usage`](crate::openai::Usage): model and token counts.
    pub usage: Option<LlmUsage>,
}

impl Evidence {
    /// Emits this evidence as a `tracing` event (target `haltstate::evidence`) in `span`.
    pub(crate) fn emit(&self, span: &tracing::Span) {
        if let Some(outcome) = self.outcome {
            span.record("outcome", outcome.as_str());
        }
        span.record("decision", self.decision.as_str());
        tracing::info!(
            target: "haltstate::evidence",
            parent: span,
            action = %self.action,
            agent_id = %self.agent_id,
            idempotency_key = %self.idempotency_key,
            decision = %self.decision,
            outcome = self.outcome.map(Outcome::as_str),
            policy_id = self.policy_id.as_deref(),
            approval_id = self.approval_id.as_deref(),
            resource_refs = ?self.resource_refs,
            decision_latency_us = u64::try_from(self.decision_latency.as_micros()).unwrap_or(u64::MAX),
            body_latency_us = self.body_latency.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            proof_status = self.proof_status.as_str(),
            redaction_status = self.redaction_status,
            redacted_fields = ?self.redacted_fields,
            llm_model = self.usage.as_ref().map(|u| u.model.as_str()),
            llm_total_tokens = self.usage.as_ref().map(|u| u.total_tokens),
            "guarded call"
        );
    }
}

/// Records a guard that did not let the body run.
pub(crate) fn refused(span: &tracing::Span, error: &GuardError) {
    let decision = error.decision();
    span.record("decision", decision);
    tracing::info!(target: "haltstate::evidence", parent: span, decision, error = %error, "guard refused");
}
