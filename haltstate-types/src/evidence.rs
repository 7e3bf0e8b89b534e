//! One evidence record: what was decided or what happened, with everything an auditor needs and nothing more.
//!
//! The ledger stores each record as its canonical bytes and chains it ([`record_hash`](crate::record_hash)).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::actor::Via;
use crate::decision::Decision;
use crate::report::{LlmUsage, Outcome, ProofStatus};
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
    /// An API key was created, rotated or revoked (and by whom).
    Key,
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
            EvidenceKind::Key => "key",
        }
    }
}

/// One ledger record. Optional fields are absent from the canonical bytes when empty.
///
/// Fields are declared in the order of their keys, so serializing the struct gives its RFC 8785 canonical
/// bytes directly (no field holds a float or a map); [`canonical_bytes`](Self::canonical_bytes) relies on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The operator who approved, rejected or flipped the kill switch; the admin who created, rotated or revoked
    /// a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The acting agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The approval involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// When it was recorded: the authority's clock, or the tenant's previous record's time if the clock stood up
    /// to a minute before it (so that a tenant's record times do not go backwards along its chain when a clock is
    /// corrected; a clock further behind gives the record its own time).
    #[serde(with = "rfc3339")]
    pub at: OffsetDateTime,
    /// Time the guarded body ran, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_latency_us: Option<u64>,
    /// What policy decided from, as canonical JSON text: `{"params", "resource", "risk", "usage"}` (usage only
    /// when a policy read it). A replay re-decides the record from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The policy decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Time spent deciding, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_latency_us: Option<u64>,
    /// A short error text from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The client's id for fail-open evidence delivered later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<String>,
    /// For a key whose lifetime is `operation`: which operation under the key (from 1) the record is about.
    /// Absent for a `once` key, which is one operation forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What this is evidence of.
    pub kind: EvidenceKind,
    /// When fail-open evidence happened on the client (the record's `at` is when it arrived).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timestamp::rfc3339::option"
    )]
    pub occurred_at: Option<OffsetDateTime>,
    /// How a guarded body ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The deciding policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// The version (SHA-256 of the source) of the policy set that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    /// Whether the authority decided (`verified`) or a fail-open client ran without it (`unverified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_status: Option<ProofStatus>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The params the client replaced by digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_fields: Vec<String>,
    /// `none` or `redacted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction_status: Option<String>,
    /// The check's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Safe references to what was acted on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_refs: Vec<String>,
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// What the shadow policies (`@mode("shadow")`, `serve --shadow`) would have decided, when it differs or
    /// not: recorded beside the live decision, never in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_decision: Option<Decision>,
    /// The shadow policy that would have decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_policy_id: Option<String>,
    /// The answer or new state: a guard status (`allowed`, `pending`, ...), an approval status, a kill state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The tenant.
    pub tenant: String,
    /// For an LLM call: the model and token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<LlmUsage>,
    /// For an operator's change: through what the `actor` acted (`api`, `cli`, `console`, `library`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

impl EvidenceRecord {
    /// The largest integer RFC 8785 writes exactly (2^53 - 1); larger numbers become doubles there.
    pub const MAX_EXACT_NUMBER: u64 = (1 << 53) - 1;

    /// Caps every number at [`MAX_EXACT_NUMBER`](Self::MAX_EXACT_NUMBER), so the record's bytes are canonical
    /// and read back as written. Only client-reported figures (latencies, token counts) can be that large.
    pub fn saturate_numbers(&mut self) {
        let cap = |n: &mut u64| *n = (*n).min(Self::MAX_EXACT_NUMBER);
        cap(&mut self.seq);
        self.generation.as_mut().map(cap);
        self.decision_latency_us.as_mut().map(cap);
        self.body_latency_us.as_mut().map(cap);
        if let Some(usage) = self.usage.as_mut() {
            cap(&mut usage.completion_tokens);
            cap(&mut usage.prompt_tokens);
            cap(&mut usage.total_tokens);
        }
    }

    /// The record's canonical (RFC 8785) bytes: what the ledger stores and hashes. Numbers must be at most
    /// [`MAX_EXACT_NUMBER`](Self::MAX_EXACT_NUMBER), as the ledger makes them.
    ///
    /// An auditor holding the records can recompute the chain with it:
    ///
    /// ```
    /// use haltstate_types::{EvidenceKind, EvidenceRecord, GENESIS_HASH, record_hash};
    ///
    /// let mut first = EvidenceRecord::new(EvidenceKind::Guard, "acme", time::OffsetDateTime::UNIX_EPOCH);
    /// first.seq = 1;
    /// let hash = record_hash(GENESIS_HASH, &first.canonical_bytes()?);
    /// assert_eq!(hash.len(), 64);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Building a `serde_json::Value` and sorting it was half of an append's cost; the declaration order
        // makes the plain serialization canonical (a test compares both on every field).
        serde_json::to_vec(self)
    }

    /// An empty record of `kind` for `tenant` at `at`; the ledger assigns `seq` on append.
    pub fn new(kind: EvidenceKind, tenant: &str, at: OffsetDateTime) -> Self {
        Self {
            seq: 0,
            at,
            tenant: tenant.to_owned(),
            kind,
            agent_id: None,
            action: None,
            idempotency_key: None,
            generation: None,
            request_id: None,
            decision: None,
            status: None,
            outcome: None,
            reason: None,
            policy_id: None,
            policy_version: None,
            context: None,
            shadow_decision: None,
            shadow_policy_id: None,
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
            via: None,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::canonical::to_canonical_bytes;

    fn full_record(text: &str, number: u64) -> EvidenceRecord {
        let at = OffsetDateTime::from_unix_timestamp(1_767_225_600)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut record = EvidenceRecord::new(EvidenceKind::Outcome, text, at);
        let some = || Some(text.to_owned());
        record.seq = number;
        record.agent_id = some();
        record.action = some();
        record.idempotency_key = some();
        record.generation = Some(number);
        record.request_id = some();
        record.decision = Some(Decision::ApprovalRequired);
        record.status = some();
        record.outcome = Some(Outcome::Success);
        record.reason = some();
        record.policy_id = some();
        record.approval_id = some();
        record.actor = some();
        record.resource_refs = vec![text.to_owned(), "order:1".to_owned()];
        record.decision_latency_us = Some(number);
        record.body_latency_us = Some(number);
        record.proof_status = Some(ProofStatus::Unverified);
        record.redaction_status = some();
        record.redacted_fields = vec![text.to_owned()];
        record.error = some();
        record.usage = Some(LlmUsage {
            completion_tokens: number,
            model: text.to_owned(),
            prompt_tokens: number,
            total_tokens: number,
        });
        record.evidence_id = some();
        record.occurred_at = Some(at);
        record.via = Some(Via::Cli);
        record
    }

    fn jcs(record: &EvidenceRecord) -> Vec<u8> {
        to_canonical_bytes(&serde_json::to_value(record).unwrap()).unwrap()
    }

    #[test]
    fn every_field_serializes_in_canonical_order() {
        let record = full_record("acme", 42);
        assert_eq!(
            String::from_utf8_lossy(&record.canonical_bytes().unwrap()),
            String::from_utf8_lossy(&jcs(&record))
        );
        let mut huge = full_record("acme", u64::MAX);
        huge.saturate_numbers();
        assert_eq!(huge.canonical_bytes().unwrap(), jcs(&huge));
        assert_eq!(huge.body_latency_us, Some(EvidenceRecord::MAX_EXACT_NUMBER));
        let sparse = EvidenceRecord::new(EvidenceKind::Guard, "acme", record.at);
        assert_eq!(sparse.canonical_bytes().unwrap(), jcs(&sparse));
    }

    proptest! {
        #[test]
        fn canonical_bytes_equal_rfc8785_for_any_text(text in any::<String>(), number in any::<u64>()) {
            let mut record = full_record(&text, number);
            record.saturate_numbers();
            prop_assert_eq!(record.canonical_bytes().unwrap(), jcs(&record));
        }
    }
}
