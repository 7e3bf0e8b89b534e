//! Why a request is refused before anything is decided: a malformed field, or an identity the caller's key does
//! not hold. Every refusal has a stable [`ErrorCode`].

use crate::error_code::ErrorCode;

/// A request refused for what it says, before any state is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A field is missing, too long or malformed.
    #[error("invalid request: {0}")]
    Invalid(String),

    /// The request names an agent outside the agents its key may act as.
    #[error("this key may not act as agent {agent:?} (it acts as {allowed})")]
    AgentMismatch {
        /// The agent the request named (canonical).
        agent: String,
        /// The key's agent set.
        allowed: String,
    },

    /// The request names an identity other than the caller's own (an approver or actor).
    #[error("this key acts as {identity:?}, not {claimed:?}")]
    IdentityMismatch {
        /// Who the request claimed to be.
        claimed: String,
        /// Who the key is.
        identity: String,
    },

    /// The caller's role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl RequestError {
    /// The stable code of this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::Invalid(_) => ErrorCode::InvalidRequest,
            RequestError::AgentMismatch { .. } => ErrorCode::AgentMismatch,
            RequestError::IdentityMismatch { .. } => ErrorCode::IdentityMismatch,
            RequestError::Forbidden(_) => ErrorCode::Forbidden,
        }
    }
}

/// Shorthand for results of validation.
pub type Result<T, E = RequestError> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::Invalid(message.into())
}
