//! What the wire contract answers E1, E2, E3, E4 and E8: exact on output, tolerant on input (a status this version
//! does not know is kept, then refused or read as a denial), with the conversions to the domain's answers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lenient::Lenient;
use crate::check::CheckAnswer;
use crate::decision::Decision;
use crate::guard::{Claim, GuardAnswer, GuardStatus};
use crate::key_state::KeyState;
use crate::kill_switch::KillState;
use crate::timestamp::rfc3339;

/// E1's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReply {
    /// `ALLOW`, `DENY` or `APPROVAL_REQUIRED`; anything else reads as a denial.
    pub decision: Lenient<Decision>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The deciding policy.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// Time policy took.
    #[serde(default)]
    pub latency_ms: u64,
    /// For APPROVAL_REQUIRED: the approval to wait for.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// The request id the authority kept.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl From<&CheckAnswer> for CheckReply {
    fn from(answer: &CheckAnswer) -> Self {
        Self {
            decision: answer.decision.into(),
            reason: answer.reason.clone(),
            policy_id: answer.policy_id.clone(),
            latency_ms: answer.decision_latency_us / 1000,
            approval_id: answer.approval_id.clone(),
            request_id: Some(answer.request_id.clone()),
        }
    }
}

impl CheckReply {
    /// The answer as the domain has it. A decision this version does not know is a denial (fail closed); the
    /// request id falls back to the one sent.
    pub fn into_answer(self, sent_request_id: Option<String>) -> CheckAnswer {
        let (decision, reason) = match self.decision {
            Lenient::Known(decision) => (decision, self.reason),
            Lenient::Unknown(text) => (
                Decision::Deny,
                format!("unrecognised decision {text:?}; denied (fail closed)"),
            ),
        };
        CheckAnswer {
            decision,
            reason,
            policy_id: self.policy_id,
            approval_id: self
                .approval_id
                .filter(|_| decision == Decision::ApprovalRequired),
            request_id: self.request_id.or(sent_request_id).unwrap_or_default(),
            decision_latency_us: self.latency_ms.saturating_mul(1000),
            ledger_seq: 0,
        }
    }
}

/// E2's answer. The official SDKs fill absent approval fields from the client clock (B20): the server always
/// sends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardReply {
    /// `allowed`, `approved`, `denied` (also read from `rejected`), `pending`, `expired`, `completed`,
    /// `in_progress`.
    pub status: Lenient<GuardStatus>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// The deciding policy.
    #[serde(default)]
    pub policy_id: Option<String>,
    /// The approval behind the answer.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// Who approved or rejected.
    #[serde(default)]
    pub approver: Option<String>,
    /// When it was approved (or, for `allowed`, when policy allowed it).
    #[serde(default, with = "rfc3339::option")]
    pub approved_at: Option<OffsetDateTime>,
    /// When a pending approval's window closes.
    #[serde(default, with = "rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The key guarded.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The claim token, when the caller may run the body.
    #[serde(default)]
    pub claim_token: Option<String>,
    /// When the claim lapses.
    #[serde(default, with = "rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    /// For `completed`: the ledger record of the successful outcome.
    #[serde(default)]
    pub completed_seq: Option<u64>,
    /// Which operation under the key the answer is about, from 1 (our extension; absent reads as 1).
    #[serde(default)]
    pub generation: Option<u64>,
    /// The ledger record of this answer.
    #[serde(default)]
    pub ledger_seq: u64,
    /// Set when the kill switch denied the guard.
    #[serde(default)]
    pub kill_switch: Option<KillState>,
    /// Time policy took.
    #[serde(default)]
    pub latency_ms: u64,
}

impl GuardReply {
    /// The wire form of `answer` for `idempotency_key`; `now` is the `approved_at` of a plain allow.
    pub fn from_answer(answer: &GuardAnswer, idempotency_key: &str, now: OffsetDateTime) -> Self {
        let approved_at = match answer.status {
            GuardStatus::Approved => answer.approved_at,
            GuardStatus::Allowed => Some(now),
            _ => None,
        };
        Self {
            status: answer.status.into(),
            reason: answer.reason.clone(),
            policy_id: answer.policy_id.clone(),
            approval_id: answer.approval_id.clone(),
            approver: answer.approver.clone(),
            approved_at,
            expires_at: answer.expires_at,
            idempotency_key: Some(idempotency_key.to_owned()),
            claim_token: answer.claim.as_ref().map(|c| c.token.clone()),
            lease_expires_at: answer.claim.as_ref().map(|c| c.lease_until),
            completed_seq: answer.completed_seq,
            generation: Some(answer.generation),
            ledger_seq: answer.ledger_seq,
            kill_switch: answer.kill_switch,
            latency_ms: answer.decision_latency_us / 1000,
        }
    }

    /// The answer as the domain has it; `Err(text)` for a status this version does not know.
    pub fn into_answer(self) -> Result<GuardAnswer, String> {
        let status = match self.status {
            Lenient::Known(status) => status,
            Lenient::Unknown(text) => return Err(text),
        };
        let claim = self.claim_token.map(|token| Claim {
            token,
            lease_until: self.lease_expires_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        });
        Ok(GuardAnswer {
            status,
            reason: self.reason,
            policy_id: self.policy_id,
            approval_id: self.approval_id,
            approver: self.approver,
            // Only a human's approval has a time worth keeping; an allow's is the server's clock.
            approved_at: self.approved_at.filter(|_| status == GuardStatus::Approved),
            expires_at: self.expires_at,
            claim,
            completed_seq: self.completed_seq,
            generation: self.generation.unwrap_or(1),
            decision_latency_us: self.latency_ms.saturating_mul(1000),
            ledger_seq: self.ledger_seq,
            kill_switch: self.kill_switch,
        })
    }
}

/// E3's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardReportReply {
    /// Always `true`.
    pub ok: bool,
    /// The ledger record of the outcome.
    pub ledger_seq: u64,
    /// The key's state after the report.
    pub state: KeyState,
    /// The same outcome had already been recorded; nothing new was written.
    pub duplicate: bool,
}

/// E4's answer (and, with `duplicate`, the answer to delivered fail-open evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedReply {
    /// Always `true`.
    pub ok: bool,
    /// The ledger record.
    pub ledger_seq: u64,
    /// The evidence had already been delivered; nothing new was written.
    #[serde(default)]
    pub duplicate: bool,
}

/// E8 `heartbeat`'s answer: `OK`, `PAUSE` or `KILL` (the official SDKs compare the exact uppercase strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The state, in the heartbeat's words.
    pub status: String,
    /// Why, when not running.
    #[serde(default)]
    pub reason: Option<String>,
    /// The agent whose state this is: the one the request named, or the one its key acts as when it named none
    /// (how a program holding only a key learns its agent). Absent from servers before this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl HeartbeatReply {
    /// The answer for `state`.
    pub fn new(state: KillState, reason: Option<String>) -> Self {
        let status = match state {
            KillState::Run => "OK",
            KillState::Pause => "PAUSE",
            KillState::Kill => "KILL",
        };
        Self {
            status: status.to_owned(),
            reason,
            agent: None,
        }
    }

    /// The same answer, naming the agent it is about.
    pub fn for_agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// The state it says; `None` for a status this version does not know.
    pub fn state(&self) -> Option<KillState> {
        KillState::parse(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rejected_status_reads_as_denied_and_an_unknown_one_is_kept() {
        let reply: GuardReply = serde_json::from_value(json!({"status": "rejected"})).unwrap();
        assert_eq!(reply.status, Lenient::Known(GuardStatus::Denied));
        let reply: GuardReply = serde_json::from_value(json!({"status": "quarantined"})).unwrap();
        assert_eq!(reply.into_answer(), Err("quarantined".to_owned()));
    }

    #[test]
    fn an_unknown_decision_is_a_denial() {
        let reply: CheckReply =
            serde_json::from_value(json!({"decision": "QUARANTINE", "approval_id": "apr_1"}))
                .unwrap();
        let answer = reply.into_answer(Some("req_1".into()));
        assert_eq!(answer.decision, Decision::Deny);
        assert_eq!(answer.approval_id, None);
        assert_eq!(answer.request_id, "req_1");
    }
}
