//! What storage keeps besides the ledger, as the rules see it: one idempotency record per key, one check record
//! per request id. Storage loads and stores these; it decides nothing.

use std::time::Duration;

use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;
use haltstate_types::{KeyLifetime, KeyState};

use crate::policy::UsageWindow;

/// One idempotency record: the operation a key is bound to, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    /// The idempotency key.
    pub(crate) key: String,
    /// The fingerprint of the operation the key is bound to.
    pub(crate) fingerprint: String,
    pub(crate) agent_id: String,
    pub(crate) action: String,
    pub(crate) state: KeyState,
    /// How long the key names one operation, as its current operation was asked for.
    pub(crate) lifetime: KeyLifetime,
    /// Which operation under the key this is, from 1 (a `once` key stays at 1).
    pub(crate) generation: u64,
    pub(crate) approval_id: Option<String>,
    pub(crate) policy_id: Option<String>,
    pub(crate) reason: String,
    /// The current (or last) claim's token, always made by the authority: kept after a report, so a retried
    /// report is recognised.
    pub(crate) claim_token: Option<String>,
    /// SHA-256 of the claim's holder (its API key) and the retry token the holder sent with its guard: the same
    /// holder retrying the same guard (its first answer was lost) gets the same claim back.
    pub(crate) retry_digest: Option<String>,
    /// Claims granted under the key's approval (its first run, and retries after errors or lapsed leases).
    pub(crate) attempts: u32,
    /// While claimed: when the lease lapses.
    pub(crate) lease_until: Option<OffsetDateTime>,
    /// The ledger record of the outcome that completed or failed the key.
    pub(crate) outcome_seq: Option<u64>,
    /// The API key holding the claim (none for the embedded authority).
    pub(crate) claimed_by: Option<String>,
    /// Whether the claim's holder sent a retry token with its guard (then only the claim's token reports it).
    pub(crate) client_token: bool,
    /// What the key's claim added to its agent's usage (a policy read it), until an error gives it back.
    pub(crate) charged: Option<Charge>,
}

/// One action's share of its agent's usage: counted at `at`, in the buckets that hold that time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charge {
    pub(crate) at: OffsetDateTime,
    pub(crate) figures: UsageWindow,
}

impl KeyRecord {
    /// Whether a claim is held and its lease has not lapsed at `now`.
    pub(crate) fn live_claim(&self, now: OffsetDateTime) -> bool {
        self.state == KeyState::Claimed && self.lease_until.is_some_and(|until| until > now)
    }

    /// The generation evidence names: only a key whose lifetime is `operation` has generations.
    pub(crate) fn evidence_generation(&self) -> Option<u64> {
        (self.lifetime == KeyLifetime::Operation).then_some(self.generation)
    }

    /// What a reader is shown of the record at `now`.
    pub(crate) fn status(&self, now: OffsetDateTime) -> KeyStatus {
        let lease_left = self
            .lease_until
            .filter(|_| self.state == KeyState::Claimed)
            // A lease already past has nothing left, not a negative remainder.
            .map(|until| {
                Duration::from_micros((to_micros(until) - to_micros(now)).max(0).unsigned_abs())
            });
        KeyStatus {
            state: self.state,
            lease_left,
            lifetime: self.lifetime,
            generation: self.generation,
        }
    }
}

/// Where an idempotency key stands, as [`Authority::idempotency_status`](crate::Authority::idempotency_status)
/// answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    /// The state of the key's current (or last) operation.
    pub state: KeyState,
    /// While claimed: the lease remaining.
    pub lease_left: Option<Duration>,
    /// How long the key names one operation.
    pub lifetime: KeyLifetime,
    /// Which operation under the key, from 1.
    pub generation: u64,
}

/// What a check decided under a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckRecord {
    pub(crate) request_id: String,
    pub(crate) fingerprint: String,
    pub(crate) agent_id: String,
    pub(crate) action: String,
    /// The latest decision (`ALLOW`, `DENY`, `APPROVAL_REQUIRED`).
    pub(crate) decision: String,
}
