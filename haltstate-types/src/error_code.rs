//! The stable error codes of the wire (`{"detail": ..., "code": ...}`): what a client matches on.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every error code the authority answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// A field is missing, too long or malformed.
    InvalidRequest,
    /// The tenant or key is wrong (deliberately no more than that).
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// The key's role does not fit the route (an operator key on an agent route, or the reverse).
    WrongRole,
    /// The body names an agent outside the key's set.
    AgentMismatch,
    /// The body names another operator than the key's own.
    IdentityMismatch,
    /// A live key of the tenant already has that name.
    DuplicateName,
    /// No such key in this tenant.
    KeyNotFound,
    /// The idempotency key is bound to another operation.
    IdempotencyConflict,
    /// The check's request id is bound to another operation.
    RequestIdConflict,
    /// The key holds no claim to report on.
    NotClaimed,
    /// The claim token is not the current one.
    StaleClaim,
    /// The claim can only be reported with its token.
    ClaimTokenRequired,
    /// No such approval in this tenant.
    ApprovalNotFound,
    /// The approval is already decided.
    ApprovalDecided,
    /// Nobody decides an approval requested under their own name.
    SelfApproval,
    /// This operator already approved it; another must.
    AlreadyApproved,
    /// The policy set does not load.
    PolicyInvalid,
    /// The ledger's chain is broken.
    LedgerBroken,
    /// The storage failed.
    Storage,
    /// A stored row does not decode.
    Corrupt,
    /// The transaction could not commit.
    CommitFailed,
    /// The database's schema is newer than this build.
    SchemaTooNew,
    /// The database's schema predates this build and was opened read-only, so it was not migrated.
    SchemaTooOld,
    /// The database cannot be reached now; retry later.
    Unavailable,
    /// The file is not a HaltState database.
    NotADatabase,
    /// The authority has shut down.
    Closed,
    /// The body is larger than the server takes.
    BodyTooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    /// No such route.
    NotFound,
    /// The route does not take this method.
    MethodNotAllowed,
    /// Too many failed authentications from this address.
    TooManyFailures,
    /// The key is over its request rate.
    RateLimited,
    /// The server is at its connection limit.
    TooManyConnections,
    /// The key has as many streams open as it may.
    TooManyStreams,
    /// The server failed; details are in its log.
    Internal,
}

impl ErrorCode {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::WrongRole => "wrong_role",
            ErrorCode::AgentMismatch => "agent_mismatch",
            ErrorCode::IdentityMismatch => "identity_mismatch",
            ErrorCode::DuplicateName => "duplicate_name",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::RequestIdConflict => "request_id_conflict",
            ErrorCode::NotClaimed => "not_claimed",
            ErrorCode::StaleClaim => "stale_claim",
            ErrorCode::ClaimTokenRequired => "claim_token_required",
            ErrorCode::ApprovalNotFound => "approval_not_found",
            ErrorCode::ApprovalDecided => "approval_decided",
            ErrorCode::AlreadyApproved => "already_approved",
            ErrorCode::SelfApproval => "self_approval",
            ErrorCode::PolicyInvalid => "policy_invalid",
            ErrorCode::LedgerBroken => "ledger_broken",
            ErrorCode::Storage => "storage",
            ErrorCode::Corrupt => "corrupt",
            ErrorCode::CommitFailed => "commit_failed",
            ErrorCode::SchemaTooNew => "schema_too_new",
            ErrorCode::SchemaTooOld => "schema_too_old",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotADatabase => "not_a_database",
            ErrorCode::Closed => "closed",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::TooManyFailures => "too_many_failures",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_the_serde_form() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::NotADatabase,
            ErrorCode::TooManyConnections,
            ErrorCode::TooManyStreams,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
