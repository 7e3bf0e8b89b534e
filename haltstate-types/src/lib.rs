//! The HaltState vocabulary, shared by the client, the authority, the server and the CLI.
//!
//! Everything that crosses a boundary is declared here once: what a caller asks ([`ActionRequest`],
//! [`GuardRequest`], [`CheckRequest`]), with the one normalisation and validation every entry point applies;
//! what the authority answers ([`GuardAnswer`], [`CheckAnswer`]); what a caller reports ([`OutcomeReport`]);
//! approvals, the kill switch, keys and identities; evidence records and their hash chain; and the HTTP
//! contract's bodies, error codes and paths ([`wire`]). Serde only, no I/O.
//!
//! ```
//! use haltstate_types::{ActionRequest, GuardRequest, fingerprint, wire::GuardBody};
//!
//! let mut refund = ActionRequest::new("Billing-Agent", "refund.create").param("amount_cents", 4_500.into());
//! refund.normalize()?;
//! assert_eq!(refund.agent_id, "billing-agent");
//! let guard = GuardRequest::new(refund.clone(), "refund:1042");
//! let body = serde_json::to_value(GuardBody::from(&guard))?;
//! assert_eq!(body["idempotency_key"], "refund:1042");
//! assert_eq!(fingerprint(&refund)?.len(), 64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod actor;
mod approval;
pub mod canonical;
mod chain;
mod check;
mod decision;
mod error;
mod error_code;
mod evidence;
mod guard;
mod identity;
mod key_lifetime;
mod key_state;
mod keys;
mod kill_switch;
pub mod limits;
pub mod proof;
mod report;
pub mod timestamp;
mod validate;
mod webhook_data;
pub mod wire;

pub use action::{ActionRequest, fingerprint};
pub use actor::{Actor, Via};
pub use approval::{Approval, ApprovalStatus, Verdict};
pub use chain::{ChainedRecord, GENESIS_HASH, LedgerHead, TenantHead, VerifyReport, record_hash};
pub use check::{CheckAnswer, CheckReport, CheckRequest};
pub use decision::Decision;
pub use error::{RequestError, Result};
pub use error_code::ErrorCode;
pub use evidence::{EvidenceKind, EvidenceQuery, EvidenceRecord};
pub use guard::{Claim, GuardAnswer, GuardRequest, GuardStatus};
pub use identity::{
    AgentPattern, AgentSet, MAX_AGENT_PATTERNS, NAME_PUNCTUATION, PLACEHOLDER_AGENT, canonical_name,
};
pub use key_lifetime::KeyLifetime;
pub use key_state::KeyState;
pub use keys::{KeyInfo, KeySpec, NewKey, Principal, Role};
pub use kill_switch::{KillScope, KillState, KillStatus};
pub use report::{LlmUsage, Outcome, OutcomeReport, ProofStatus, ReportAck, UnverifiedOutcome};
pub use validate::{exact_number, truncate_chars, validate_action, validate_name, validate_text};
pub use webhook_data::{ApprovalEventData, KillSwitchEventData};
pub use wire::Lenient;
