//! An authority in this process: no network, the same answers, the same errors.

use std::time::Duration;

use haltstate_authority::{self as authority, AuthorityError};
use haltstate_types::wire::ApprovalDecision;
use haltstate_types::{
    CheckAnswer, CheckReport, CheckRequest, GuardAnswer, GuardRequest, KillState, Lenient,
    OutcomeReport, UnverifiedOutcome,
};
use time::OffsetDateTime;

use super::DecisionSender;
use crate::error::GuardError;
use crate::transport::cursor::Cursor;

#[derive(Debug)]
pub(crate) struct EmbeddedTransport {
    pub(crate) authority: authority::Authority,
    pub(crate) tenant: String,
}

/// The error the same refusal gets over HTTP.
fn map_error(error: AuthorityError, key: Option<&str>) -> GuardError {
    match error {
        AuthorityError::IdempotencyConflict { key: k } => GuardError::IdempotencyConflict {
            idempotency_key: key.map_or(k, str::to_owned),
        },
        AuthorityError::Unauthenticated => GuardError::Auth(error.to_string()),
        e if e.is_operational() => GuardError::Connection(e.to_string()),
        e @ (AuthorityError::ApprovalNotFound { .. } | AuthorityError::KeyNotFound { .. }) => {
            GuardError::NotFound {
                code: Lenient::Known(e.code()),
                detail: e.to_string(),
            }
        }
        e => GuardError::Rejected {
            code: Lenient::Known(e.code()),
            detail: e.to_string(),
        },
    }
}

impl EmbeddedTransport {
    pub(crate) async fn guard(&self, request: &GuardRequest) -> Result<GuardAnswer, GuardError> {
        self.authority
            .guard(&self.tenant, request.clone())
            .await
            .map_err(|e| map_error(e, Some(&request.idempotency_key)))
    }

    pub(crate) async fn report(&self, report: &OutcomeReport) -> Result<(), GuardError> {
        self.authority
            .report(&self.tenant, report.clone())
            .await
            .map(drop)
            .map_err(|e| map_error(e, Some(&report.idempotency_key)))
    }

    pub(crate) async fn check(&self, request: &CheckRequest) -> Result<CheckAnswer, GuardError> {
        self.authority
            .check(&self.tenant, request.clone())
            .await
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn report_check(&self, report: &CheckReport) -> Result<(), GuardError> {
        self.authority
            .report_check(&self.tenant, report.clone())
            .await
            .map(drop)
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &UnverifiedOutcome,
    ) -> Result<(), GuardError> {
        self.authority
            .record_unverified(&self.tenant, evidence.clone())
            .await
            .map(drop)
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        self.authority
            .approval(&self.tenant, id)
            .map(|approval| ApprovalDecision::from(&approval))
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn approval_window(
        &self,
        id: &str,
    ) -> Result<Option<OffsetDateTime>, GuardError> {
        self.authority
            .approval(&self.tenant, id)
            .map(|approval| Some(approval.expires_at))
            .map_err(|e| map_error(e, None))
    }

    pub(crate) async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let approvals = self
            .authority
            .approvals_since(&self.tenant, since, limit)
            .map_err(|e| map_error(e, None))?;
        Ok(approvals
            .iter()
            .map(|approval| ApprovalDecision {
                is_catchup: true,
                ..approval.into()
            })
            .collect())
    }

    pub(crate) async fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        let status = self
            .authority
            .kill_switch(&self.tenant, Some(agent_id))
            .map_err(|e| map_error(e, None))?;
        Ok(status.state)
    }

    /// Catches up from the database's cursor, then wakes on every committed decision (and once a second, for
    /// decisions another process made on the same file).
    pub(crate) async fn follow_approvals(&self, cursor: OffsetDateTime, sender: DecisionSender) {
        let mut wake = self.authority.subscribe();
        let mut cursor = Cursor::new(cursor);
        loop {
            let since = cursor.position() - Duration::from_micros(1);
            match self.approvals_since(since, 500).await {
                Ok(decisions) => {
                    for decision in decisions {
                        if cursor.deliver(Ok(decision), &sender).await.is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    if sender.send(Err(error)).await.is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                () = sender.closed() => return,
                _ = wake.recv() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
