//! The HaltState policy authority: the part that decides and remembers.
//!
//! A guarded action asks the authority before it runs. The authority checks, in order, the **kill switch**,
//! the **idempotency record** of the action's key (completed? in progress? waiting for a human?) and the
//! **policy** (Cedar), answers, and appends the answer to a hash-chained **evidence ledger**. After the action
//! ran, its outcome is reported and appended too. Everything lives in one SQLite file (WAL), which the app
//! and the operator CLI may open at the same time.
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

mod actor;
mod approval;
mod authority;
pub mod canonical;
mod check;
mod clock;
mod decision;
mod error;
mod idempotency;
mod identity;
mod key_cache;
mod keys;
mod kill_switch;
mod ledger;
mod policy;
mod request;
mod store;
pub mod timestamp;

pub use actor::{Actor, Via};
pub use approval::{Approval, ApprovalEvent, ApprovalStatus, Verdict};
pub use authority::{Authority, AuthorityBuilder, DEFAULT_APPROVAL_TTL, DEFAULT_LEASE};
pub use check::{CheckAnswer, CheckReport, CheckRequest};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, PolicyDecision};
pub use error::{AuthorityError, Result};
pub use idempotency::{Claim, GuardAnswer, GuardStatus, KeyState, ReportAck, fingerprint};
pub use identity::{
    AgentPattern, AgentSet, MAX_AGENT_PATTERNS, NAME_PUNCTUATION, PLACEHOLDER_AGENT, canonical_name,
};
pub use key_cache::KEY_CACHE_TTL;
pub use keys::{KeyInfo, KeySpec, NewKey, Principal, Role};
pub use kill_switch::{KillScope, KillState, KillStatus};
pub use ledger::{
    EvidenceKind, EvidenceQuery, EvidenceRecord, GENESIS_HASH, LedgerHead, VerifyReport,
    record_hash,
};
pub use policy::{
    CompiledPolicies, NO_POLICY_PERMITS, PolicyDiagnostic, PolicyEngine, PolicyError,
};
pub use request::{
    ActionRequest, GuardRequest, LlmUsage, MAX_ERROR_TEXT, MAX_KEY_LEN, MAX_NAME_LEN,
    MAX_PARAMS_BYTES, MAX_PARAMS_DEPTH, MAX_RISK_LEN, Outcome, OutcomeReport, ProofStatus,
    UnverifiedOutcome,
};
pub use store::batch::WriterStats;
pub use store::pending::{Pending, PendingFuture};
pub use store::{DEFAULT_CHECKPOINT_PAGES, Durability};
