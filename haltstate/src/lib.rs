//! Guard side effects behind a policy authority.
//!
//! Code that performs side effects (refunds, exports, deletes, LLM calls) asks the authority first:
//! [`guard`](HaltStateClient::guard) answers with a [`Permit`] to run, or a typed [`GuardError`] (denied,
//! pending a human's approval, already completed, in progress, kill switch...). The body runs only with a
//! permit, and the permit reports the outcome exactly once, leaving [`Evidence`] behind. Only the params a
//! call names leave the process; [`secret`] values leave as keyed digests.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use haltstate::{Action, GuardError, HaltStateClient};
//!
//! # let dir = tempfile::tempdir()?;
//! // An authority in this process, with one policy: refunds up to 100.00 run, larger ones need a human.
//! let authority = haltstate_authority::Authority::builder(dir.path().join("haltstate.db"))
//!     .policy_source("refunds.cedar", r#"
//!         @id("small") permit(principal, action == Action::"refund.create", resource)
//!             when { context.params.amount_cents <= 10000 };
//!         @id("large") @approval("required") permit(principal, action == Action::"refund.create", resource)
//!             when { context.params.amount_cents > 10000 };
//!     "#)
//!     .open()?;
//! let client = HaltStateClient::embedded(authority)?;
//!
//! let refund = |order: u32, cents: u32| {
//!     Action::new("refund.create").key(format!("refund:{order}")).param("amount_cents", cents)
//! };
//! let permit = client.guard(refund(1042, 4_500)).await?;
//! // ... issue the refund ...
//! permit.complete().await?;
//!
//! match client.guard(refund(1043, 90_000)).await {
//!     Err(GuardError::ApprovalPending { approval_id, .. }) => println!("waiting for a human: {approval_id}"),
//!     other => panic!("expected a pending approval, got {other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `embedded` | yes | the in-process authority: [`HaltStateClient::embedded`], and `HALTSTATE_POLICY` + `HALTSTATE_DB` in [`from_env`](HaltStateClient::from_env) |
//! | `tls` | yes | `https://` authorities (rustls, webpki roots), so [`HaltStateClient::new`] works against the default `https://haltstate.ai` |
//! | `postgres` | no | the in-process authority on PostgreSQL (`HALTSTATE_DB=postgres://...`) |
//! | `async-openai` | no | [`openai::Usage`] for `async-openai`'s chat completion responses (token counts in the evidence) |
//! | `otel` | no | `otel`: export the `haltstate.guard` spans to an OpenTelemetry collector over OTLP/HTTP |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod answers;
pub mod blocking;
mod builder;
mod client;
mod delivery;
pub mod env;
mod error;
mod evidence;
mod fail_mode;
mod global;
pub mod guarded;
mod heartbeat;
mod kill_switch;
pub mod openai;
mod operations;
#[cfg(feature = "otel")]
pub mod otel;
mod outgoing;
mod permit;
#[doc(hidden)]
pub mod __private {
    //! Used by the expansions of the guard macros; not a public API.
    pub use crate::private::*;
}
mod private;
mod redact;
mod runtime;
mod spool;
mod stream;
mod transport;

pub use action::{Action, IntoParam, Param};
pub use answers::CheckResult;
pub use builder::ClientBuilder;
pub use client::{AsyncHaltStateClient, DEFAULT_AGENT_ID, DEFAULT_BASE_URL, HaltStateClient};
pub use error::GuardError;
pub use evidence::Evidence;
pub use fail_mode::FailMode;
pub use global::{global, init};
pub use haltstate_macros::{ahaltstate_guard, guard, haltstate_guard, openai_guard};
/// Proof packs and signed checkpoints, verified offline with the authority's public key alone (the same
/// verifier as `haltstate proof verify`): `haltstate::proof::verify(&pack, &key)`.
pub use haltstate_types::proof;
pub use haltstate_types::wire::ApprovalDecision;
pub use haltstate_types::{
    ApprovalStatus, CheckAnswer, Decision, ErrorCode, KeyLifetime, KillState, Lenient, Outcome,
    ProofStatus,
};
pub use permit::{MAX_ERROR_CHARS, Permit};
pub use redact::{Secret, secret};
pub use stream::{ApprovalStream, STREAM_IDLE_TIMEOUT};

#[cfg(feature = "embedded")]
pub use haltstate_authority as authority;
/// The vocabulary shared with the authority: requests, answers, evidence records, wire bodies.
pub use haltstate_types as types;
