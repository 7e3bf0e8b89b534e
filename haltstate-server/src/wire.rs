//! The wire shapes of the HaltState contract (see `shared/WIRE.md`), tolerant on input, exact on output.

use haltstate_authority::{Approval, ApprovalStatus, timestamp::format_rfc3339};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::ApiError;

/// E1 check. The TypeScript docs send `context` where the Python SDK sends `params`; both are accepted.
#[derive(Debug, Deserialize)]
pub struct CheckBody {
    #[serde(default)]
    pub agent_id: Option<String>,
    pub action: String,
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub risk: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub redacted_fields: Vec<String>,
}

/// E2 guard.
#[derive(Debug, Deserialize)]
pub struct GuardBody {
    #[serde(default)]
    pub agent_id: Option<String>,
    pub action: String,
    #[serde(default)]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    pub idempotency_key: String,
    #[serde(default)]
    pub claim_token: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub risk: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub redacted_fields: Vec<String>,
}

/// E3 guard outcome report.
#[derive(Debug, Deserialize)]
pub struct GuardReportBody {
    pub idempotency_key: String,
    pub outcome: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub claim_token: Option<String>,
    #[serde(default)]
    pub body_latency_us: Option<u64>,
    #[serde(default)]
    pub resource_refs: Vec<String>,
    #[serde(default)]
    pub proof_status: Option<String>,
    #[serde(default)]
    pub redacted_fields: Vec<String>,
    #[serde(default)]
    pub usage: Option<haltstate_authority::LlmUsage>,
}

/// E4 check outcome report.
#[derive(Debug, Deserialize)]
pub struct CheckReportBody {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub action: String,
    pub status: String,
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
}

/// Merges `params` and `context` (the TypeScript shape) into one object.
pub fn merge_params(
    params: Option<Map<String, Value>>,
    context: Option<Map<String, Value>>,
) -> Map<String, Value> {
    let mut merged = context.unwrap_or_default();
    merged.extend(params.unwrap_or_default());
    merged
}

/// An approval as E5 answers it.
pub fn approval_status(approval: &Approval) -> Value {
    json!({
        "request_id": approval.id,
        "approval_id": approval.id,
        "status": approval.status.as_str(),
        "approver": approval.approver,
        "reason": approval.decision_reason,
        "agent_id": approval.agent_id,
        "action": approval.action,
        "decided_at": approval.decided_at.map(format_rfc3339),
        "expires_at": format_rfc3339(approval.expires_at),
    })
}

/// An approval as E6 lists it.
pub fn decision_item(approval: &Approval) -> Value {
    json!({
        "request_id": approval.id,
        "status": approval.status.as_str(),
        "approver": approval.approver,
        "reason": approval.decision_reason,
        "agent_id": approval.agent_id,
        "action": approval.action,
        "decided_at": approval.decided_at.map(format_rfc3339),
    })
}

/// An approval as the E7 stream sends it.
pub fn decision_event(approval: &Approval, catchup: bool) -> Value {
    json!({
        "type": "APPROVAL_DECISION",
        "request_id": approval.id,
        "status": approval.status.as_str(),
        "approver": approval.approver,
        "reason": approval.decision_reason,
        "agent_id": approval.agent_id,
        "action": approval.action,
        "timestamp": approval.decided_at.map(format_rfc3339),
        "catchup": catchup,
    })
}

/// Whether a status is a decision the stream and catch-up deliver.
pub fn is_decided(status: ApprovalStatus) -> bool {
    status != ApprovalStatus::Pending
}

/// Parses an ISO-8601 timestamp: RFC 3339 with an offset, or (as Python's `isoformat()` of a naive datetime
/// gives) without one, read as UTC.
pub fn parse_timestamp(field: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        return Ok(t);
    }
    PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
        .map(|t| t.assume_offset(UtcOffset::UTC))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field} must be an ISO-8601 timestamp, got {text:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_isoformat_timestamps_parse() {
        let expected = time::macros::datetime!(2026-01-05 00:37:12.123456 UTC);
        assert_eq!(
            parse_timestamp("since", "2026-01-05T00:37:12.123456+00:00").unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp("since", "2026-01-05T00:37:12.123456").unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp("since", "2026-01-05T01:37:12.123456+01:00").unwrap(),
            expected
        );
        assert!(parse_timestamp("since", "yesterday").is_err());
    }
}
