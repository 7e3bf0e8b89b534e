//! How a request reaches an authority: over HTTP, or to an authority in this process.
//!
//! Both transports speak the vocabulary's requests and answers (`haltstate_types`), so everything above them
//! (permits, evidence, fail modes, the kill switch, the approvals stream) is written once, and no error above
//! them carries an HTTP status.

pub(crate) mod cursor;
#[cfg(feature = "embedded")]
pub(crate) mod embedded;
pub(crate) mod http;

use haltstate_types::wire::ApprovalDecision;
use haltstate_types::{
    CheckAnswer, CheckReport, CheckRequest, GuardAnswer, GuardRequest, KillState, OutcomeReport,
    UnverifiedOutcome,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::error::GuardError;

/// Where the approvals stream delivers.
pub(crate) type DecisionSender = mpsc::Sender<Result<ApprovalDecision, GuardError>>;

/// Where requests go.
#[derive(Debug)]
pub(crate) enum Transport {
    Http(Box<http::HttpTransport>),
    #[cfg(feature = "embedded")]
    Embedded(embedded::EmbeddedTransport),
}

/// Calls the same method on whichever transport this is.
macro_rules! each {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            Transport::Http($t) => $call,
            #[cfg(feature = "embedded")]
            Transport::Embedded($t) => $call,
        }
    };
}

impl Transport {
    pub(crate) async fn guard(&self, request: &GuardRequest) -> Result<GuardAnswer, GuardError> {
        each!(self, t => t.guard(request).await)
    }

    pub(crate) async fn report(&self, report: &OutcomeReport) -> Result<(), GuardError> {
        each!(self, t => t.report(report).await)
    }

    pub(crate) async fn check(&self, request: &CheckRequest) -> Result<CheckAnswer, GuardError> {
        each!(self, t => t.check(request).await)
    }

    pub(crate) async fn report_check(&self, report: &CheckReport) -> Result<(), GuardError> {
        each!(self, t => t.report_check(report).await)
    }

    pub(crate) async fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        each!(self, t => t.approval(id).await)
    }

    pub(crate) async fn approval_window(
        &self,
        id: &str,
    ) -> Result<Option<OffsetDateTime>, GuardError> {
        each!(self, t => t.approval_window(id).await)
    }

    pub(crate) async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        each!(self, t => t.approvals_since(since, limit).await)
    }

    pub(crate) async fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        each!(self, t => t.heartbeat(agent_id).await)
    }

    /// The agent the client's credentials act as; `None` for an embedded authority (no key: any agent).
    pub(crate) async fn key_agent(&self) -> Result<Option<String>, GuardError> {
        match self {
            Transport::Http(t) => t.key_agent().await.map(Some),
            #[cfg(feature = "embedded")]
            Transport::Embedded(_) => Ok(None),
        }
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &UnverifiedOutcome,
    ) -> Result<(), GuardError> {
        each!(self, t => t.deliver_unverified(evidence).await)
    }

    /// Delivers approval decisions after `cursor` to `sender` until it closes or the credentials are refused:
    /// over HTTP the SSE stream (reconnecting, resuming), embedded the database's cursor.
    pub(crate) async fn follow_approvals(&self, cursor: OffsetDateTime, sender: DecisionSender) {
        each!(self, t => t.follow_approvals(cursor, sender).await)
    }

    /// Whether calls must run on the client's own runtime (HTTP) or may run on the caller's (embedded).
    pub(crate) fn needs_io_runtime(&self) -> bool {
        matches!(self, Transport::Http(_))
    }
}
