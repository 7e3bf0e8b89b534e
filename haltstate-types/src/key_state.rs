//! Idempotency records: one (tenant, key) is one operation, forever.
//!
//! The key binds to a fingerprint of the operation (agent, action, resource, params, risk); a different operation
//! under the same key is a conflict, never a replay. The record moves through:
//!
//! ```text
//!             ALLOW                 success
//!   (none) ──────────────> claimed ─────────> completed
//!     │                     │  ^  error / abort
//!     │ APPROVAL_REQUIRED   │  └──────────── failed (a retry claims again, without a new approval)
//!     v                     │
//!   pending_approval ──approve──> approved ──guard──> claimed
//!     │        └──reject──> rejected
//!     └──window closes──> expired
//! ```
//!
//! A claim has a lease: a second guard while it is live answers `in_progress`; after it lapses (the worker died)
//! the next guard re-claims the key.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an idempotency key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Waiting for a human.
    PendingApproval,
    /// Approved, not yet claimed.
    Approved,
    /// Rejected by a human.
    Rejected,
    /// The approval window closed.
    Expired,
    /// A worker holds the claim and is running the body.
    Claimed,
    /// The body succeeded; the key never runs again.
    Completed,
    /// The body failed or was abandoned; the claim is released for a retry.
    Failed,
}

impl KeyState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::PendingApproval => "pending_approval",
            KeyState::Approved => "approved",
            KeyState::Rejected => "rejected",
            KeyState::Expired => "expired",
            KeyState::Claimed => "claimed",
            KeyState::Completed => "completed",
            KeyState::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending_approval" => KeyState::PendingApproval,
            "approved" => KeyState::Approved,
            "rejected" => KeyState::Rejected,
            "expired" => KeyState::Expired,
            "claimed" => KeyState::Claimed,
            "completed" => KeyState::Completed,
            "failed" => KeyState::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
