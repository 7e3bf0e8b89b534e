//! The evidence ledger: append-only and hash-chained.
//!
//! Each record's hash is SHA-256 over the previous record's hash and the record's canonical bytes, and the
//! record carries its own sequence number, so an edited, removed, inserted or reordered row breaks the chain.
//! [`verify`](crate::Authority::verify_ledger) recomputes it and names the first broken record. A separate head
//! row (sequence and hash of the last record) catches a truncated tail.

mod chain;

pub(crate) use chain::{Tail, verify};
