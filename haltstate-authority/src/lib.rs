//! The HaltState policy authority: the part that decides and remembers.
//!
//! A guarded action asks the authority before it runs. The authority checks, in order, the **kill switch**,
//! the **idempotency record** of the action's key (completed? in progress? waiting for a human?) and the
//! **policy** (Cedar), answers, and appends the answer to a hash-chained **evidence ledger**. After the action
//! ran, its outcome is reported and appended too. Everything lives in one database: a SQLite file (WAL), which
//! the app and the operator CLI may open at the same time, or PostgreSQL (feature `postgres`), which several
//! instances share.
//!
//! The same API serves the embedded client transport (in-process) and the HTTP server.
//!
//! ```
//! use haltstate_authority::{ActionRequest, Authority, GuardRequest, GuardStatus, KillScope, KillState};
//!
//! let dir = tempfile::tempdir()?;
//! let authority = Authority::builder(dir.path().join("haltstate.db"))
//!     .policy_source("inline.cedar", r#"@id("all") permit(principal, action, resource);"#)
//!     .open()?;
//! let export = || GuardRequest::new(ActionRequest::new("exporter", "data.export"), "export:2026-01");
//! assert_eq!(authority.guard("acme", export()).wait()?.status, GuardStatus::Allowed);
//!
//! // An operator stops the tenant: every guard is denied before policy runs.
//! authority.set_kill_switch(KillScope::Tenant("acme".into()), KillState::Kill, "oncall").wait()?;
//! let denied = authority.guard("acme", export()).wait()?;
//! assert_eq!(denied.status, GuardStatus::Denied);
//! assert!(denied.reason.contains("kill switch"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod approval_event;
mod authority;
pub mod checkpoint_file;
mod clock;
mod console_session;
mod database;
mod error;
mod key_cache;
/// Checking a tenant's Merkle tree from outside (the verifiers live with the proof formats, in
/// `haltstate_types::proof`).
pub mod merkle {
    pub use haltstate_types::proof::{ProofError, TreeHead, verify_consistency, verify_inclusion};
}
mod ops;
mod pending_approvals;
mod policy;
mod policy_decision;
mod rules;
mod secrets;
mod signing;
mod state_rows;
mod store;
pub mod tree_checkpoint;
pub mod webhooks;

pub use approval_event::ApprovalEvent;
pub use authority::{
    Authority, AuthorityBuilder, DEFAULT_APPROVAL_ATTEMPTS, DEFAULT_APPROVAL_TTL, DEFAULT_LEASE,
    DEFAULT_LOG_PREFIX, DEFAULT_MAX_PENDING_PER_AGENT, DEFAULT_MAX_PENDING_PER_TENANT,
    DEFAULT_POSTGRES_WRITERS, LOCAL_ACTOR, MAX_POSTGRES_WRITERS, ProofSelection, ReplayChange,
    ReplayQuery, ReplayReport, ShadowDisagreement, ShadowReport,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use console_session::{ConsoleSession, SessionId, SessionLimits};
pub use database::{Database, PostgresUrl};
pub use error::{AuthorityError, Result, StorageError};
pub use haltstate_types::limits::{
    MAX_ERROR_TEXT, MAX_KEY_LEN, MAX_NAME_LEN, MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH, MAX_RISK_LEN,
};
pub use haltstate_types::proof;
pub use haltstate_types::{
    ActionRequest, Actor, AgentPattern, AgentSet, Approval, ApprovalStatus, ChainedRecord,
    CheckAnswer, CheckReport, CheckRequest, Claim, Decision, ErrorCode, EvidenceKind,
    EvidenceQuery, EvidenceRecord, GENESIS_HASH, GuardAnswer, GuardRequest, GuardStatus, KeyInfo,
    KeyLifetime, KeySpec, KeyState, KillScope, KillState, KillStatus, LedgerHead, LlmUsage,
    MAX_AGENT_PATTERNS, NAME_PUNCTUATION, NewKey, Outcome, OutcomeReport, PLACEHOLDER_AGENT,
    Principal, ProofStatus, ReportAck, RequestError, Role, TenantHead, UnverifiedOutcome, Verdict,
    VerifyReport, Via, canonical, canonical_name, fingerprint, record_hash, timestamp,
};
pub use key_cache::KEY_CACHE_TTL;
pub use pending_approvals::PendingApprovals;
pub use policy::{
    CompiledPolicies, NO_POLICY_PERMITS, PolicyDiagnostic, PolicyEngine, PolicyError,
    PolicyWarning, Usage, UsageWindow,
};
pub use policy_decision::{PolicyDecision, ShadowDecision};
pub use signing::{SigningKey, SigningKeyError};
pub use state_rows::KeyStatus;
pub use store::Durability;
pub use store::job::WriterStats;
pub use store::pending::{Pending, PendingFuture};
#[cfg(feature = "postgres")]
pub use store::postgres::CopyReport;
pub use store::sqlite::{BackupReport, DEFAULT_CHECKPOINT_PAGES};
