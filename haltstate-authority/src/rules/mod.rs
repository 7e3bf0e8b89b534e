//! The rules: what a guard, a report, a check or an approver's decision does to the state of a key, as pure
//! functions of what storage loaded, the request and the decision. No I/O: storage loads the facts, applies the
//! outcome, and appends the evidence (`ops/`).
//!
//! Every rule is tested here without a database, exhaustively over the states a key can be in and with a
//! model-based property test over sequences of operations (`tests.rs`).

pub(crate) mod approval;
pub(crate) mod check;
pub(crate) mod guard;
pub(crate) mod report;
#[cfg(test)]
mod tests;

use std::time::Duration;

/// The settings the rules follow: timing, and what an approval and an error allow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub(crate) approval_ttl: Duration,
    pub(crate) lease: Duration,
    /// Claims one approval grants (the first run and its retries after errors or lapsed leases); past it, policy
    /// decides again (and asks a human again).
    pub(crate) approval_attempts: u32,
    /// Whether an error (or abort) outcome gives its claim's usage back. Off by default: the body may have acted.
    pub(crate) refund_usage_on_error: bool,
    /// Approvals one agent may have waiting at once: past it, its requests that need a human are denied, so it
    /// cannot bury other agents' requests in the approvers' inbox.
    pub(crate) max_pending_per_agent: usize,
    /// Approvals a tenant may have waiting at once (as many as the console's inbox shows): past it, requests that
    /// need a human are denied, so no waiting request is ever below the inbox's fold.
    pub(crate) max_pending_per_tenant: usize,
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
