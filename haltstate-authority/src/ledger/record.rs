//! One evidence record: what was decided or what happened, with everything an auditor needs and nothing more.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::decision::Decision;
use crate::request::{Outcome, ProofStatus};
use crate::timestamp::rfc3339;

/// What a record is evidence of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A guard's answer.
    Guard,
    /// A check's answer.
    Check,
    /// A guarded body's outcome.
    Outcome,
    /// The outcome a caller reported for a check.
    CheckReport,
    /// An approval changed status.
    Approval,
    /// A kill-switch setting changed.
    KillSwitch,
}

impl EvidenceKind {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Guard => "guard",
            EvidenceKind::Check => "check",
            EvidenceKind::Outcome => "outcome",
            EvidenceKind::CheckReport => "check_report",
            EvidenceKind::Approval => "approval",
            EvidenceKind::KillSwitch => "kill_switch",
        }
    }
}

/// One ledger record. Optional fields are absent from the canonical bytes when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// When it was recorded.
    #[serde(with = "rfc3339")]
    pub at: OffsetDateTime,
    /// The tenant.
    pub tenant: String,
    /// What this is evidence of.
    pub kind: EvidenceKind,
    /// The acting agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The check's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The policy decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The answer or new state: a guard status (`allowed`, `pending`, ...), an approval status, a kill state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How a guarded body ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// The approval involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// The operator who approved, rejected or flipped the kill switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Safe references to what was acted on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<String>,
    /// Time spent deciding, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_latency_us: Option<u64>,
    /// Time the guarded body ran, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_latency_us: Option<u64>,
    /// Whether the authority decided (`verified`) or a fail-open client ran without it (`unverified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_status: Option<ProofStatus>,
    /// `none` or `redacted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction_status: Option<String>,
    /// The params the client replaced by digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
    /// A short error text from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For an LLM call: the model and token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::request::LlmUsage>,
    /// The client's id for fail-open evidence delivered later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<String>,
    /// When fail-open evidence happened on the client (the record's `at` is when it arrived).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::rfc3339::option"
    )]
    pub occurred_at: Option<OffsetDateTime>,
}

impl EvidenceRecord {
    /// An empty record of `kind` for `tenant` at `at`; the ledger assigns `seq` on append.
    pub(crate) fn new(kind: EvidenceKind, tenant: &str, at: OffsetDateTime) -> Self {
        Self {
            seq: 0,
            at,
            tenant: tenant.to_owned(),
            kind,
            agent_id: None,
            action: None,
            idempotency_key: None,
            request_id: None,
            decision: None,
            status: None,
            outcome: None,
            reason: None,
            policy_id: None,
            approval_id: None,
            actor: None,
            resource_refs: Vec::new(),
            decision_latency_us: None,
            body_latency_us: None,
            proof_status: None,
            redaction_status: None,
            redacted_fields: Vec::new(),
            error: None,
            usage: None,
            evidence_id: None,
            occurred_at: None,
        }
    }
}

/// A filter over the ledger; every query is scoped to one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceQuery {
    /// Only records with this idempotency key.
    pub idempotency_key: Option<String>,
    /// Only records of this action.
    pub action: Option<String>,
    /// Only records of this agent.
    pub agent_id: Option<String>,
    /// Only records at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Only records before this time.
    pub to: Option<OffsetDateTime>,
    /// Only records after this sequence number (for paging).
    pub after_seq: Option<u64>,
    /// At most this many records (capped at 1000; 100 when unset).
    pub limit: Option<u32>,
}
