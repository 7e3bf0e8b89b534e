//! Guard what agents do through MCP: every `tools/call` of an MCP server under the HaltState policy authority.
//!
//! [`Guarded`] wraps any [`rmcp::ServerHandler`]: a tool call becomes the action `mcp.<server>.<tool>` (its
//! arguments the params, long texts sent as their length and digest, chosen arguments as keyed digests, a chosen
//! argument as the resource), guarded under a key derived from the server, tool, agent and arguments. The same
//! call is one operation while it waits for a human or runs (an identical call finds its approval, or answers
//! in progress); once it completed, the same call runs again, except for the tools named
//! [`once`](GuardConfig::once). A key the client sets in `_meta` (`ai.haltstate/idempotency_key`) wins.
//!
//! A call the authority does not let run comes back as a tool result with `isError: true`, a sentence for the
//! model and `structuredContent.haltstate` = `{status, reason, policy_id, approval_id, approval_url, expires_at,
//! retry}`; a client of 2026-07-28 that can open URLs is sent to the approval's page instead (`input_required`,
//! with a sealed request state: [`GuardConfig::request_state_key`]). Over HTTP ([`router`], feature `listen`),
//! each request's API key is the [`Caller`] it acts as.
//! Approvals, the kill switch, usage limits, shadow policies, webhooks and proof packs work for tool calls as for
//! any action.
//!
//! ```no_run
//! # async fn run<H: rmcp::ServerHandler>(handler: H) -> Result<(), Box<dyn std::error::Error>> {
//! use haltstate::HaltStateClient;
//! use haltstate_mcp::{GuardConfig, Guarded};
//!
//! let client = HaltStateClient::from_env()?;
//! let config = GuardConfig::new("files")?
//!     .agent("desktop-agent")
//!     .resource_arg("write_file", "path")
//!     .once("delete_file");
//! let guarded = Guarded::new(handler, client, config);
//! // serve `guarded` over stdio, streamable HTTP or any rmcp transport
//! # let _ = guarded; Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod call;
mod caller;
mod config;
mod elicit;
#[cfg(feature = "proxy")]
mod forward;
mod layer;
#[cfg(feature = "listen")]
mod listen;
#[cfg(feature = "proxy")]
mod proxy;
#[cfg(feature = "proxy")]
mod relay;

pub use call::{CallError, KEY_META};
pub use caller::{Caller, CallerFuture, Callers, OneAgent, Refusal, ServerKeys};
pub use config::{ConfigError, DEFAULT_LONG_STRING, GuardConfig, Visible};
#[cfg(feature = "proxy")]
pub use forward::Forward;
pub use layer::Guarded;
#[cfg(feature = "listen")]
pub use listen::{HttpOptions, router};
#[cfg(feature = "proxy")]
pub use proxy::{Connected, ProxyError, Upstream, serve_stdio};
#[cfg(feature = "proxy")]
pub use relay::{Relay, Routes};
