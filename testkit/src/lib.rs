//! What the workspace's tests share, written once: a real server on loopback ([`LoopbackServer`]), the real
//! `haltstate` process ([`ServeProcess`]), waiting on a condition instead of a sleep ([`eventually`]), reading
//! what the ledger recorded for a key ([`outcomes`]), and the policies the tests use ([`policies`]).
//!
//! Not published: a dev-dependency of the other crates' tests.

pub mod apt;
mod background;
pub mod browser;
mod eventually;
pub mod ledger;
pub mod mcp;
pub mod policies;
pub mod postgres;
mod process;
pub mod python;
mod receiver;
mod scratch;
mod server;
pub mod tool_latency;
mod witness;

pub use eventually::{eventually, eventually_async};
pub use ledger::outcomes;
pub use process::ServeProcess;
pub use receiver::{Received, WebhookReceiver};
pub use scratch::scratch_authority;
pub use server::LoopbackServer;
pub use witness::{Submission, Witness};
