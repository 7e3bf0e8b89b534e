//! Each operation of the wire contract: the typed body out, the typed reply back.

use haltstate_types::wire::paths;
use haltstate_types::wire::{
    ApprovalDecision, ApprovalReply, CheckBody, CheckReply, CheckReportBody, GuardBody, GuardReply,
    GuardReportBody, GuardReportReply, HeartbeatReply, RecordedReply, SinceReply,
};
use haltstate_types::{
    CheckAnswer, CheckReport, CheckRequest, GuardAnswer, GuardRequest, KillState, OutcomeReport,
    UnverifiedOutcome,
};
use reqwest::Method;
use time::OffsetDateTime;

use super::{Endpoint, HttpTransport, encode_segment, ok_body};
use crate::error::GuardError;

/// No request body.
const NO_BODY: Option<&()> = None;

impl HttpTransport {
    pub(crate) async fn guard(&self, request: &GuardRequest) -> Result<GuardAnswer, GuardError> {
        let key = request.idempotency_key.as_str();
        let answer = self
            .send(
                Endpoint::Guard,
                Method::POST,
                paths::GUARD,
                Some(&GuardBody::from(request)),
            )
            .await?;
        ok_body::<GuardReply>(answer, Some(key))?
            .into_answer()
            .map_err(|status| GuardError::Protocol(format!("unknown guard status {status:?}")))
    }

    pub(crate) async fn report(&self, report: &OutcomeReport) -> Result<(), GuardError> {
        let answer = self
            .send(
                Endpoint::GuardReport,
                Method::POST,
                paths::GUARD_REPORT,
                Some(&GuardReportBody::from(report)),
            )
            .await?;
        ok_body::<GuardReportReply>(answer, Some(&report.idempotency_key)).map(drop)
    }

    pub(crate) async fn check(&self, request: &CheckRequest) -> Result<CheckAnswer, GuardError> {
        let answer = self
            .send(
                Endpoint::Check,
                Method::POST,
                paths::CHECK,
                Some(&CheckBody::from(request)),
            )
            .await?;
        // B18: a decision this client does not know is a denial, never a crash and never an allow.
        Ok(ok_body::<CheckReply>(answer, None)?.into_answer(request.request_id.clone()))
    }

    pub(crate) async fn report_check(&self, report: &CheckReport) -> Result<(), GuardError> {
        let answer = self
            .send(
                Endpoint::Report,
                Method::POST,
                paths::REPORT,
                Some(&CheckReportBody::from(report)),
            )
            .await?;
        ok_body::<RecordedReply>(answer, None).map(drop)
    }

    pub(crate) async fn approval(&self, id: &str) -> Result<ApprovalDecision, GuardError> {
        Ok(self.approval_reply(id).await?.decision)
    }

    pub(crate) async fn approval_window(
        &self,
        id: &str,
    ) -> Result<Option<OffsetDateTime>, GuardError> {
        Ok(self.approval_reply(id).await?.expires_at)
    }

    async fn approval_reply(&self, id: &str) -> Result<ApprovalReply, GuardError> {
        let suffix = format!("{}/{}", paths::APPROVAL, encode_segment(id));
        let answer = self
            .send(Endpoint::Approval, Method::GET, &suffix, NO_BODY)
            .await?;
        ok_body::<ApprovalReply>(answer, None)
    }

    pub(crate) async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| GuardError::Config(format!("since: {e}")))?;
        let suffix = format!(
            "{}?tenant_id={}&since={}&limit={}",
            paths::APPROVALS_SINCE,
            encode_segment(&self.settings.tenant),
            encode_segment(&since),
            limit.clamp(1, 500)
        );
        let answer = self
            .send(Endpoint::Since, Method::GET, &suffix, NO_BODY)
            .await?;
        Ok(ok_body::<SinceReply>(answer, None)?
            .decisions
            .into_iter()
            .map(|decision| ApprovalDecision {
                is_catchup: true,
                ..decision
            })
            .collect())
    }

    pub(crate) async fn deliver_unverified(
        &self,
        evidence: &UnverifiedOutcome,
    ) -> Result<(), GuardError> {
        let answer = self
            .send(
                Endpoint::Unverified,
                Method::POST,
                paths::GUARD_UNVERIFIED,
                Some(evidence),
            )
            .await?;
        ok_body::<RecordedReply>(answer, None).map(drop)
    }

    pub(crate) async fn heartbeat(&self, agent_id: &str) -> Result<KillState, GuardError> {
        let suffix = format!("{}?agent_id={}", paths::HEARTBEAT, encode_segment(agent_id));
        let answer = self
            .send(Endpoint::Heartbeat, Method::GET, &suffix, NO_BODY)
            .await?;
        let reply = ok_body::<HeartbeatReply>(answer, None)?;
        // WIRE.md: the official SDKs treat anything but KILL and PAUSE as running.
        Ok(reply.state().unwrap_or(KillState::Run))
    }

    /// The agent the client's key acts as: the heartbeat naming no agent answers the key's own.
    pub(crate) async fn key_agent(&self) -> Result<String, GuardError> {
        let answer = self
            .send(Endpoint::Heartbeat, Method::GET, paths::HEARTBEAT, NO_BODY)
            .await?;
        ok_body::<HeartbeatReply>(answer, None)?
            .agent
            .ok_or_else(|| {
                GuardError::Protocol("the server's heartbeat does not name the key's agent".into())
            })
    }
}
