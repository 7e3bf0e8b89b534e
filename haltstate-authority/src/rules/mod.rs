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

/// Timing rules the operations follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub(crate) approval_ttl: Duration,
    pub(crate) lease: Duration,
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
