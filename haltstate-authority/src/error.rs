//! The errors of the authority's public API.

use crate::policy::PolicyError;
use haltstate_types::{ApprovalStatus, ErrorCode, RequestError};

/// Everything the authority can refuse or fail with.
///
/// Business refusals (a conflicting idempotency key, an approval by its own requester) are variants a caller
/// can match on and map to a wire status; `Storage` and `Closed` are operational failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// The request was refused for what it says, before any state was read: a malformed field, an agent or
    /// identity the caller's key does not hold, a role that may not do this.
    #[error(transparent)]
    Request(#[from] RequestError),

    /// The tenant is unknown or the key does not belong to it. Deliberately says no more than that.
    #[error("authentication failed")]
    Unauthenticated,

    /// A key of this tenant has (or had, before it was revoked) that name: names are identities, never given to a
    /// second key (rotate a key to give it a new secret).
    #[error(
        "a key named {name:?} exists or existed in this tenant; names are never reused (rotate a key for a new secret)"
    )]
    DuplicateKeyName {
        /// The name.
        name: String,
    },

    /// No key with that id exists for this tenant.
    #[error("key {id:?} not found")]
    KeyNotFound {
        /// The key id asked for.
        id: String,
    },

    /// The check's request id is already bound to a different operation.
    #[error("request id {request_id:?} is already bound to a different operation")]
    RequestIdConflict {
        /// The request id that was reused.
        request_id: String,
    },

    /// The idempotency key is already bound to a different operation.
    #[error("idempotency key {key:?} is already bound to a different operation")]
    IdempotencyConflict {
        /// The key that was reused.
        key: String,
    },

    /// An outcome was reported for a key that holds no live claim.
    #[error("idempotency key {key:?} holds no claim to report on (state: {state})")]
    NotClaimed {
        /// The key reported on.
        key: String,
        /// The key's state at the time of the report.
        state: String,
    },

    /// An outcome was reported with a claim token that is not the current one (the lease expired and another
    /// worker re-claimed the key).
    #[error("claim token for idempotency key {key:?} is no longer current")]
    StaleClaim {
        /// The key reported on.
        key: String,
    },

    /// An outcome was reported without the claim token for a claim granted to a caller that chose its own token
    /// (or by another key than the one holding the claim).
    #[error(
        "idempotency key {key:?} is claimed; its outcome can only be reported with the claim token"
    )]
    ClaimTokenRequired {
        /// The key reported on.
        key: String,
    },

    /// No approval with that id exists for this tenant.
    #[error("approval {id:?} not found")]
    ApprovalNotFound {
        /// The approval id asked for.
        id: String,
    },

    /// The approval has already been decided.
    #[error("approval {id:?} is already {status}")]
    ApprovalDecided {
        /// The approval id.
        id: String,
        /// Its current status.
        status: ApprovalStatus,
    },

    /// The operator already approved this approval, which needs another operator's approval too.
    #[error("approval {id:?} needs another operator: {approver:?} already approved it")]
    AlreadyApproved {
        /// The approval id.
        id: String,
        /// Who tried again.
        approver: String,
    },

    /// A record disagrees with a signed checkpoint kept outside the database (or the checkpoint does not verify).
    #[error("tenant {tenant:?}, record {seq}: {problem}")]
    CheckpointMismatch {
        /// The tenant.
        tenant: String,
        /// The record the checkpoint signs.
        seq: u64,
        /// What disagrees.
        problem: String,
    },

    /// A state row (a key, an approval, a kill switch) contradicts the ledger's record of it.
    #[error("tenant {tenant:?}: {problem}")]
    StateMismatch {
        /// The tenant.
        tenant: String,
        /// Which row, and what the ledger says instead.
        problem: String,
    },

    /// No signed checkpoint covers the record yet (a proof pack needs one).
    #[error(
        "no signed checkpoint of tenant {tenant:?} covers record {seq} yet: run `haltstate ledger checkpoint`"
    )]
    NotCheckpointed {
        /// The tenant.
        tenant: String,
        /// The last record asked for.
        seq: u64,
    },

    /// The approver is the agent that requested the action.
    #[error("approval {id:?} cannot be decided by its requesting agent {approver:?}")]
    SelfApproval {
        /// The approval id.
        id: String,
        /// Who tried.
        approver: String,
    },

    /// The policy set failed to load.
    #[error(transparent)]
    Policy(#[from] PolicyError),

    /// The ledger's hash chain is broken.
    #[error("ledger of tenant {tenant:?} is broken at record {seq}: {problem}")]
    LedgerBroken {
        /// The tenant whose chain is broken.
        tenant: String,
        /// The first broken record's sequence number in that chain.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },

    /// The database failed (SQLite or PostgreSQL): what its driver said.
    #[error("storage error: {0}")]
    Storage(#[source] StorageError),

    /// A stored row does not decode (an unknown state, a malformed column): the authority refuses to guess.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),

    /// The transaction holding this operation failed to commit; nothing of it was kept.
    #[error("commit failed: {0}")]
    CommitFailed(String),

    /// The schema in the database file is newer than this build understands.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },

    /// The database's schema predates this build and was opened read-only (so not migrated).
    #[error(
        "database schema version {found} predates this build's {current}; open it once for writing (`haltstate db migrate`) to migrate it"
    )]
    SchemaTooOld {
        /// Version found.
        found: i64,
        /// The version this build writes.
        current: i64,
    },

    /// The database cannot be reached (connection refused or lost); nothing was decided. Retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),

    /// The database URL asks for what cannot be done (an unknown `sslmode`, a certificate file that cannot be
    /// read): nothing was connected.
    #[error("the database URL cannot be used: {0}")]
    DatabaseConfig(String),

    /// The file is not a HaltState database.
    #[error("{path} is not a HaltState database: {why}")]
    NotADatabase {
        /// The file.
        path: String,
        /// What gave it away.
        why: String,
    },

    /// The authority has shut down.
    #[error("the authority has shut down")]
    Closed,
}

impl AuthorityError {
    /// The stable code for the wire (`{"code": ...}`).
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthorityError::Request(refused) => refused.code(),
            AuthorityError::Unauthenticated => ErrorCode::Unauthenticated,
            AuthorityError::DuplicateKeyName { .. } => ErrorCode::DuplicateName,
            AuthorityError::KeyNotFound { .. } => ErrorCode::KeyNotFound,
            AuthorityError::RequestIdConflict { .. } => ErrorCode::RequestIdConflict,
            AuthorityError::ClaimTokenRequired { .. } => ErrorCode::ClaimTokenRequired,
            AuthorityError::NotADatabase { .. } => ErrorCode::NotADatabase,
            AuthorityError::IdempotencyConflict { .. } => ErrorCode::IdempotencyConflict,
            AuthorityError::NotClaimed { .. } => ErrorCode::NotClaimed,
            AuthorityError::StaleClaim { .. } => ErrorCode::StaleClaim,
            AuthorityError::ApprovalNotFound { .. } => ErrorCode::ApprovalNotFound,
            AuthorityError::ApprovalDecided { .. } => ErrorCode::ApprovalDecided,
            AuthorityError::SelfApproval { .. } => ErrorCode::SelfApproval,
            AuthorityError::AlreadyApproved { .. } => ErrorCode::AlreadyApproved,
            AuthorityError::Policy(_) => ErrorCode::PolicyInvalid,
            AuthorityError::LedgerBroken { .. }
            | AuthorityError::CheckpointMismatch { .. }
            | AuthorityError::StateMismatch { .. } => ErrorCode::LedgerBroken,
            AuthorityError::NotCheckpointed { .. } => ErrorCode::InvalidRequest,
            AuthorityError::Storage(_) => ErrorCode::Storage,
            AuthorityError::Corrupt(_) => ErrorCode::Corrupt,
            AuthorityError::CommitFailed(_) => ErrorCode::CommitFailed,
            AuthorityError::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            AuthorityError::SchemaTooOld { .. } => ErrorCode::SchemaTooOld,
            AuthorityError::Unavailable(_) => ErrorCode::Unavailable,
            AuthorityError::DatabaseConfig(_) => ErrorCode::Storage,
            AuthorityError::Closed => ErrorCode::Closed,
        }
    }
}

impl AuthorityError {
    /// A request refused as invalid, for `why`.
    pub fn invalid(why: impl Into<String>) -> Self {
        AuthorityError::Request(RequestError::Invalid(why.into()))
    }
}

impl AuthorityError {
    /// Whether this is an operational failure (storage, shutdown) rather than a refusal of the request.
    pub fn is_operational(&self) -> bool {
        matches!(
            self,
            AuthorityError::Storage(_)
                | AuthorityError::Corrupt(_)
                | AuthorityError::CommitFailed(_)
                | AuthorityError::Closed
                | AuthorityError::DatabaseConfig(_)
                | AuthorityError::SchemaTooNew { .. }
                | AuthorityError::SchemaTooOld { .. }
                | AuthorityError::Unavailable(_)
        )
    }
}

/// What a database driver reported, whichever backend: its message, and the driver's own error as the source
/// for whoever logs the chain. The same type for SQLite and PostgreSQL, so that no caller depends on a driver.
#[derive(Debug)]
pub struct StorageError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StorageError {
    /// A failure described by `message`, caused by `source` when a driver's error is at hand.
    pub(crate) fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source,
        }
    }

    /// What the driver said.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl AuthorityError {
    /// A storage failure described by `message` (no driver error behind it: a thread that would not start, say).
    pub(crate) fn storage(message: impl Into<String>) -> Self {
        AuthorityError::Storage(StorageError::new(message, None))
    }
}

impl From<rusqlite::Error> for AuthorityError {
    fn from(error: rusqlite::Error) -> Self {
        AuthorityError::Storage(StorageError::new(error.to_string(), Some(Box::new(error))))
    }
}

/// Shorthand for results of the authority's API.
pub type Result<T, E = AuthorityError> = std::result::Result<T, E>;
