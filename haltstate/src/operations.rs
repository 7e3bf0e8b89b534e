//! What the client does: guard, check and report, approvals, the kill switch.

use std::time::{Duration, Instant};

use haltstate_types::wire::ApprovalDecision;
use haltstate_types::{
    CheckAnswer, CheckReport, CheckRequest, Decision, ErrorCode, GuardRequest, GuardStatus,
    KillState, Lenient, Outcome,
};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::action::Action;
use crate::answers::CheckResult;
use crate::client::HaltStateClient;
use crate::error::GuardError;
use crate::fail_mode::FailMode;
use crate::permit::{Permit, PermitParts};

impl HaltStateClient {
    /// Asks whether `action` may run under its idempotency key, and claims the key when it may.
    ///
    /// `Ok(Permit)`: run the side effect, then [`Permit::complete`] or [`Permit::fail`] (a permit dropped without
    /// either reports `aborted`). Every other answer is a [`GuardError`]: `ApprovalPending` (exit, retry later
    /// with the same key), `ActionDenied`, `ActionExpired`, `AlreadyCompleted`, `InProgress`,
    /// `IdempotencyConflict`, `KillSwitchTriggered`, or a failure to reach the authority (which runs the action
    /// only under [`FailMode::Open`]). A guard is never retried once it has answered.
    pub async fn guard(&self, action: Action) -> Result<Permit, GuardError> {
        self.ensure_open()?;
        let key = action
            .idempotency_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                GuardError::Config(format!(
                    "guard of {:?} needs an idempotency key (Action::key)",
                    action.name
                ))
            })?;
        let mut request =
            GuardRequest::new(self.action_request(&action)?, key.clone()).lifetime(action.lifetime);
        let span = tracing::info_span!(
            "haltstate.guard",
            action = %request.action.action,
            agent_id = %request.action.agent_id,
            idempotency_key = %key,
            decision = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        self.ensure_running()
            .inspect_err(|e| crate::evidence::refused(&span, e))?;
        // A retry token makes the guard safe to retry: a lost answer gives the same claim back (the claim's own
        // token is the authority's).
        request.claim_token = Some(uuid::Uuid::new_v4().simple().to_string());
        let started = Instant::now();
        let answer = {
            let (client, request) = (self.clone(), request.clone());
            self.on_io(async move { client.inner.transport.guard(&request).await })
                .instrument(span.clone())
                .await
        };
        let parts = PermitParts {
            client: self.clone(),
            action: request.action.action.clone(),
            agent_id: request.action.agent_id.clone(),
            idempotency_key: key.clone(),
            resource: request.action.resource.clone(),
            redacted_fields: request.action.redacted_fields.clone(),
            sensitive: action.sensitive_values(),
            decision_latency: started.elapsed(),
            span: span.clone(),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) if error.is_unavailable() && self.fails_open(&action) => {
                tracing::warn!(parent: &span, %error, "authority unavailable; running fail-open, evidence unverified");
                return Ok(Permit::unverified(parts, error.to_string()));
            }
            Err(error) => {
                crate::evidence::refused(&span, &error);
                return Err(error);
            }
        };
        let refusal = match answer.status {
            GuardStatus::Allowed | GuardStatus::Approved => {
                return Ok(Permit::granted(parts, answer));
            }
            GuardStatus::Denied => match answer.kill_switch {
                Some(state) if state != KillState::Run => GuardError::KillSwitchTriggered {
                    state,
                    reason: answer.reason,
                },
                _ => GuardError::ActionDenied {
                    reason: answer.reason,
                    policy_id: answer.policy_id,
                },
            },
            GuardStatus::Pending => GuardError::ApprovalPending {
                // A pending answer without the approval to wait for is not one this client can act on.
                approval_id: answer.approval_id.ok_or_else(|| {
                    GuardError::Protocol("a pending answer without an approval id".into())
                })?,
                idempotency_key: key,
                action: request.action.action,
            },
            GuardStatus::Expired => GuardError::ActionExpired {
                idempotency_key: key,
            },
            GuardStatus::Completed => GuardError::AlreadyCompleted {
                idempotency_key: key,
            },
            GuardStatus::InProgress => GuardError::InProgress {
                idempotency_key: key,
            },
        };
        crate::evidence::refused(&span, &refusal);
        Err(refusal)
    }

    fn fails_open(&self, action: &Action) -> bool {
        action.fail_mode.unwrap_or(self.inner.fail_mode) == FailMode::Open
    }

    /// Asks for a decision without claiming anything; the caller branches on it and may [`report`](Self::report).
    /// A transport failure answers a synthetic ALLOW only under [`FailMode::Open`].
    pub async fn check(&self, action: Action) -> Result<CheckResult, GuardError> {
        self.ensure_open()?;
        self.ensure_running()?;
        let mut request = CheckRequest::new(self.action_request(&action)?);
        // B5: the request id is ours, sent, and kept by the authority, so reports correlate.
        let request_id = action
            .request_id
            .clone()
            .unwrap_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()));
        request.request_id = Some(request_id.clone());
        let (action_name, agent_id) = (
            request.action.action.clone(),
            request.action.agent_id.clone(),
        );
        let client = self.clone();
        let answer = match self
            .on_io(async move { client.inner.transport.check(&request).await })
            .await
        {
            Ok(answer) => answer,
            Err(error) if error.is_unavailable() && self.fails_open(&action) => {
                tracing::warn!(%error, action = %action_name, "authority unavailable; fail-open ALLOW (unverified)");
                CheckAnswer {
                    decision: Decision::Allow,
                    reason: format!("fail-open: {error}"),
                    policy_id: None,
                    approval_id: None,
                    request_id,
                    decision_latency_us: 0,
                    ledger_seq: 0,
                }
            }
            Err(error) => return Err(error),
        };
        Ok(CheckResult {
            answer,
            action: action_name,
            agent_id,
        })
    }

    /// Reports what happened after a check. Returns the authority's error instead of swallowing it (B9).
    pub async fn report(
        &self,
        check: &CheckResult,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), GuardError> {
        self.ensure_open()?;
        let report = CheckReport {
            request_id: Some(check.request_id.clone()),
            agent_id: check.agent_id.clone(),
            action: check.action.clone(),
            status: outcome.as_str().to_owned(),
            decision: Some(check.decision),
            policy_id: check.policy_id.clone(),
            error: error.map(|e| crate::redact::scrub(e, &[], crate::permit::MAX_ERROR_CHARS)),
        };
        let client = self.clone();
        self.on_io(async move { client.inner.transport.report_check(&report).await })
            .await
    }

    /// The current state of one approval.
    pub async fn approval(&self, approval_id: &str) -> Result<ApprovalDecision, GuardError> {
        let (client, id) = (self.clone(), approval_id.to_owned());
        self.on_io(async move { client.inner.transport.approval(&id).await })
            .await
    }

    /// When `approval_id` stops being decidable (it expires undecided then), as the authority says; `None` from a
    /// server that does not say.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db"))
    /// #     .policy_source("p.cedar", r#"@id("held") @approval("required") permit(principal, action, resource);"#).open()?;
    /// use haltstate::{Action, GuardError, HaltStateClient};
    ///
    /// let client = HaltStateClient::embedded(authority)?;
    /// let Err(GuardError::ApprovalPending { approval_id, .. }) = client.guard(Action::new("refund.create").key("r:1")).await
    /// else { unreachable!() };
    /// assert!(client.approval_window(&approval_id).await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn approval_window(
        &self,
        approval_id: &str,
    ) -> Result<Option<time::OffsetDateTime>, GuardError> {
        let (client, id) = (self.clone(), approval_id.to_owned());
        self.on_io(async move { client.inner.transport.approval_window(&id).await })
            .await
    }

    /// Waits until `approval_id` is decided or `timeout` passes, polling with backoff (capped at 5 s) and never
    /// sleeping past the deadline (B16). An approval not yet visible (not found) is retried until the deadline.
    pub async fn wait_for_approval(
        &self,
        approval_id: &str,
        timeout: Duration,
    ) -> Result<ApprovalDecision, GuardError> {
        let (client, id) = (self.clone(), approval_id.to_owned());
        self.on_runtime(async move {
            let started = tokio::time::Instant::now();
            let deadline = started + timeout;
            let mut interval = Duration::from_millis(100);
            loop {
                if client.inner.kill.state() != KillState::Run {
                    client.ensure_running()?;
                }
                match client.inner.transport.approval(&id).await {
                    Ok(decision) if decision.is_terminal() => return Ok(decision),
                    Ok(_) => {}
                    Err(
                        GuardError::NotFound {
                            code: Lenient::Known(ErrorCode::ApprovalNotFound),
                            ..
                        }
                        | GuardError::Connection(_)
                        | GuardError::RateLimited { .. },
                    ) => {}
                    Err(other) => return Err(other),
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(GuardError::ApprovalTimeout {
                        approval_id: id,
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(interval.min(deadline - now)).await;
                interval = (interval.mul_f32(1.5)).min(Duration::from_secs(5));
            }
        })
        .await
    }

    /// Decisions made after `since`, oldest first.
    pub async fn approvals_since(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ApprovalDecision>, GuardError> {
        let client = self.clone();
        self.on_io(async move { client.inner.transport.approvals_since(since, limit).await })
            .await
    }

    /// The kill-switch state as the heartbeat last saw it, as a `watch` channel the app can await.
    pub fn kill_switch(&self) -> tokio::sync::watch::Receiver<KillState> {
        self.inner.kill.watch()
    }

    /// The agent this client's API key acts as, asked of the server (its heartbeat answers the key's agent):
    /// how a gateway holding only a caller's key learns who the caller is. An embedded authority has no key, so
    /// the client's own agent id. A key that is refused, or that may act as several agents, is an error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let authority = haltstate_authority::Authority::builder(dir.path().join("hs.db"))
    /// #     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#).open()?;
    /// let client = haltstate::HaltStateClient::builder().authority(authority).agent_id("billing").build()?;
    /// assert_eq!(client.key_agent().await?, "billing");
    /// # Ok(()) }
    /// ```
    pub async fn key_agent(&self) -> Result<String, GuardError> {
        let client = self.clone();
        let agent = self
            .on_io(async move { client.inner.transport.key_agent().await })
            .await?;
        Ok(agent.unwrap_or_else(|| self.inner.agent_id.clone()))
    }

    /// Asks the authority for this client's kill-switch state now, and applies it.
    pub async fn heartbeat(&self) -> Result<KillState, GuardError> {
        let client = self.clone();
        let state = self
            .on_io(async move {
                let agent = client.inner.agent_id.clone();
                client.inner.transport.heartbeat(&agent).await
            })
            .await?;
        self.inner.kill.set(state);
        Ok(state)
    }
}
