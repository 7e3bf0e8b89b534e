//! How a request reaches an authority: over HTTP, or to an authority in this process.
//!
//! Both transports speak in the same neutral types, so everything above them (permits, evidence, fail modes,
//! the kill switch) is written once.

pub(crate) mod embedded;
pub(crate) mod http;

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::answers::{ApprovalDecision, CheckResult, Outcome, ProofStatus};
use crate::error::GuardError;
use crate::kill_switch::KillState;

/// A request after redaction: exactly what leaves the process.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outgoing {
    pub(crate) agent_id: String,
    pub(crate) action: String,
    pub(crate) params: Map<String, Value>,
    pub(crate) resource: Option<String>,
    pub(crate) risk: Option<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) redacted_fields: Vec<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) claim_token: Option<String>,
    pub(crate) request_id: Option<String>,
}

/// A guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardStatus {
    Allowed,
    Approved,
    Denied,
    Pending,
    Expired,
    Completed,
    InProgress,
}

#[derive(Debug, Clone)]
pub(crate) struct GuardReply {
    pub(crate) status: GuardStatus,
    pub(crate) reason: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) approval_id: Option<String>,
    pub(crate) approver: Option<String>,
    pub(crate) approved_at: Option<OffsetDateTime>,
    pub(crate) claim_token: Option<String>,
    pub(crate) kill_switch: Option<KillState>,
}

/// An outcome report.
#[derive(Debug, Clone)]
pub(crate) struct OutcomeOut {
    pub(crate) idempotency_key: String,
    pub(crate) claim_token: Option<String>,
    pub(crate) action: String,
    pub(crate) agent_id: String,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
    pub(crate) body_latency: Duration,
    pub(crate) resource_refs: Vec<String>,
    pub(crate) redacted_fields: Vec<String>,
    pub(crate) proof_status: ProofStatus,
    pub(crate) usage: Option<crate::openai::LlmUsage>,
}

/// A report on a check.
#[derive(Debug, Clone)]
pub(crate) struct CheckReportOut {
    pub(crate) request_id: String,
    pub(crate) agent_id: String,
    pub(crate) action: String,
    pub(crate) status: String,
    pub(crate) decision: String,
    pub(crate) policy_id: Option<String>,
    pub(crate) error: Option<String>,
}

/// Where requests go.
#[derive(Debug)]
pub(crate) enum Transport {
    Http(Box<http::HttpTransport>),
    #[cfg(feature = "embedded")]
    Embedded(embedded::EmbeddedTransport),
}

impl Transport {
    pub(crate) async fn guard(&self, out: &Outgoing) -> Result<GuardReply, GuardError> {
        match self {
            Transport::Http(t) => t.guard(out).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.guard(out).await,
        }
    }

    pub(crate) async fn report(&self, out: &OutcomeOut) -> Result<(), GuardError> {
        match self {
            Transport::Http(t) => t.report(out).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.report(out).await,
        }
    }

    pub(crate) async fn check(&self, out: &Outgoing) -> Result<CheckResult, GuardError> {
        match self {
            Transport::Http(t) => t.check(out).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.check(out).await,
        }
    }

    pub(crate) async fn report_check(&self, out: &CheckReportOut) -> Result<(), GuardError> {
        match self {
            Transport::Http(t) => t.report_check(out).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.report_check(out).await,
        }
    }

    pub(crate) async fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        match self {
            Transport::Http(t) => t.approval(id).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.approval(id),
        }
    }

    pub(crate) async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        match self {
            Transport::Http(t) => t.approvals_since(since, limit).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.approvals_since(since, limit),
        }
    }

    pub(crate) async fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        match self {
            Transport::Http(t) => t.heartbeat(agent_id).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.heartbeat(agent_id),
        }
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &crate::spool::SpooledEvidence,
    ) -> Result<(), GuardError> {
        match self {
            Transport::Http(t) => t.deliver_unverified(evidence).await,
            #[cfg(feature = "embedded")]
            Transport::Embedded(t) => t.deliver_unverified(evidence).await,
        }
    }

    /// Whether calls must run on the client's own runtime (HTTP) or may run on the caller's (embedded).
    pub(crate) fn needs_io_runtime(&self) -> bool {
        matches!(self, Transport::Http(_))
    }
}
