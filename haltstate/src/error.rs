//! Why a guarded action did not run, or a call to the authority failed.

use std::time::Duration;

use haltstate_types::{ErrorCode, KillState, Lenient};

/// Every way a call to the authority can end other than "go ahead".
///
/// Policy outcomes (`ApprovalPending`, `ActionDenied`, ...) are ordinary values a caller matches on; transport
/// failures (`Connection`, `RateLimited`, `Protocol`) fail closed unless the call opted into fail-open.
/// `GuardError` is `Clone + Send + Sync + 'static`, so it fits `anyhow`, `Box<dyn Error>` and thiserror's
/// `#[from]`, and it converts into [`std::io::Error`].
///
/// ```
/// use haltstate::GuardError;
///
/// fn handle(error: GuardError) -> &'static str {
///     match error {
///         GuardError::ApprovalPending { .. } => "exit now; retry later with the same key",
///         GuardError::ActionDenied { .. } => "do not retry",
///         GuardError::AlreadyCompleted { .. } => "already done",
///         e if e.is_retryable() => "retry later",
///         _ => "give up",
///     }
/// }
/// assert_eq!(handle(GuardError::Connection("refused".into())), "retry later");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// A human must approve first. Exit and retry later with the same idempotency key.
    #[error(
        "action {action:?} awaits approval {approval_id} (key {idempotency_key:?}); retry later with the same key"
    )]
    ApprovalPending {
        /// The approval to wait for.
        approval_id: String,
        /// The key to retry with.
        idempotency_key: String,
        /// The action waiting.
        action: String,
    },
    /// Policy, a human or the authority denied the action.
    #[error("action denied: {reason}")]
    ActionDenied {
        /// Why.
        reason: String,
        /// The deciding policy, when policy decided.
        policy_id: Option<String>,
    },
    /// The approval window closed; a new attempt needs a new idempotency key.
    #[error("the approval for key {idempotency_key:?} expired; a new attempt needs a new key")]
    ActionExpired {
        /// The key whose approval expired.
        idempotency_key: String,
    },
    /// This key already ran successfully; it never runs twice.
    #[error("idempotency key {idempotency_key:?} already completed")]
    AlreadyCompleted {
        /// The key.
        idempotency_key: String,
    },
    /// Another worker holds the claim on this key right now.
    #[error("another worker is running idempotency key {idempotency_key:?}")]
    InProgress {
        /// The key.
        idempotency_key: String,
    },
    /// The key is already bound to a different operation (agent, action, resource, params or risk).
    #[error("idempotency key {idempotency_key:?} is bound to a different operation")]
    IdempotencyConflict {
        /// The key.
        idempotency_key: String,
    },
    /// The kill switch is not RUN.
    #[error("kill switch {state}: {reason}")]
    KillSwitchTriggered {
        /// PAUSE or KILL.
        state: KillState,
        /// Why, as the authority or the heartbeat said.
        reason: String,
    },
    /// The credentials were refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The authority asked us to slow down, and the deadline ran out first.
    #[error("rate limited by the authority{}", retry_after.map(|d| format!("; retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// How long the authority asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The authority could not be reached (or kept failing) within the deadline.
    #[error("cannot reach the authority: {0}")]
    Connection(String),
    /// The authority answered something this client does not understand; treated as a denial.
    #[error("unexpected answer from the authority: {0}")]
    Protocol(String),
    /// The authority refused the request as it stands: malformed, or not allowed to this key (an agent outside
    /// its set, the wrong role), or in conflict with what it already holds. The code says which.
    #[error("the authority refused the request ({}): {detail}", code_text(code))]
    Rejected {
        /// The authority's error code (one this version does not know is kept as text).
        code: Lenient<ErrorCode>,
        /// Its explanation.
        detail: String,
    },
    /// What the request names does not exist for this tenant (an approval id, say).
    #[error("not found ({}): {detail}", code_text(code))]
    NotFound {
        /// The authority's error code.
        code: Lenient<ErrorCode>,
        /// Its explanation.
        detail: String,
    },
    /// Waiting for an approval ran past its deadline.
    #[error("approval {approval_id} was not decided within {waited:?}")]
    ApprovalTimeout {
        /// The approval.
        approval_id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Fail-open evidence could not be kept on disk.
    #[error("cannot keep fail-open evidence: {0}")]
    Spool(String),
    /// The client is misconfigured.
    #[error("configuration error: {0}")]
    Config(String),
}

fn code_text(code: &Lenient<ErrorCode>) -> &str {
    match code {
        Lenient::Known(code) => code.as_str(),
        Lenient::Unknown(text) => text,
    }
}

impl GuardError {
    /// What stopped the body, in one word (what spans, evidence views and the MCP gateway call it): `pending`,
    /// `denied`, `expired`, `completed`, `in_progress`, `conflict`, `kill_switch`, `rate_limited`, `unavailable`
    /// (the authority could not be reached), or `error` for anything else.
    ///
    /// ```
    /// use haltstate::GuardError;
    ///
    /// assert_eq!(GuardError::Connection("refused".into()).decision(), "unavailable");
    /// ```
    pub fn decision(&self) -> &'static str {
        match self {
            GuardError::ApprovalPending { .. } => "pending",
            GuardError::ActionDenied { .. } => "denied",
            GuardError::ActionExpired { .. } => "expired",
            GuardError::AlreadyCompleted { .. } => "completed",
            GuardError::InProgress { .. } => "in_progress",
            GuardError::IdempotencyConflict { .. } => "conflict",
            GuardError::KillSwitchTriggered { .. } => "kill_switch",
            GuardError::RateLimited { .. } => "rate_limited",
            GuardError::Connection(_) => "unavailable",
            _ => "error",
        }
    }

    /// The authority's error code, for a refusal that carries one.
    pub fn code(&self) -> Option<&Lenient<ErrorCode>> {
        match self {
            GuardError::Rejected { code, .. } | GuardError::NotFound { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later (with the same key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GuardError::ApprovalPending { .. }
                | GuardError::InProgress { .. }
                | GuardError::RateLimited { .. }
                | GuardError::Connection(_)
                | GuardError::ApprovalTimeout { .. }
        )
    }

    /// Whether the authority could not be consulted at all (what fail-open applies to).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            GuardError::Connection(_) | GuardError::RateLimited { .. }
        )
    }
}

impl From<GuardError> for std::io::Error {
    fn from(error: GuardError) -> Self {
        use std::io::ErrorKind;
        let kind = match &error {
            GuardError::ActionDenied { .. }
            | GuardError::Auth(_)
            | GuardError::KillSwitchTriggered { .. } => ErrorKind::PermissionDenied,
            GuardError::ApprovalPending { .. } | GuardError::InProgress { .. } => {
                ErrorKind::WouldBlock
            }
            GuardError::AlreadyCompleted { .. } | GuardError::IdempotencyConflict { .. } => {
                ErrorKind::AlreadyExists
            }
            GuardError::Connection(_) => ErrorKind::ConnectionRefused,
            GuardError::ApprovalTimeout { .. } | GuardError::RateLimited { .. } => {
                ErrorKind::TimedOut
            }
            GuardError::Config(_) | GuardError::Rejected { .. } => ErrorKind::InvalidInput,
            GuardError::NotFound { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}
