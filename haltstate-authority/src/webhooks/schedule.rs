//! When a failed delivery is tried again: exponentially later, up to a cap, until the attempts run out.

use std::time::Duration;

use time::OffsetDateTime;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed (or its webhook was removed); no more are made.
    Failed,
}

impl DeliveryState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered 2xx.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// It answered otherwise, or not at all.
    Failed {
        /// Its status, when it answered.
        status: Option<u16>,
        /// What went wrong, for the console.
        error: String,
    },
}

impl AttemptResult {
    /// The receiver's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptResult::Delivered { status } => Some(*status),
            AttemptResult::Failed { status, .. } => *status,
        }
    }

    /// What went wrong, when something did.
    pub fn error(&self) -> Option<&str> {
        match self {
            AttemptResult::Delivered { .. } => None,
            AttemptResult::Failed { error, .. } => Some(error),
        }
    }
}

/// The retry schedule: the n-th retry waits `base * 2^(n-1)` (at most `cap`), with up to a fifth more or less
/// at random so that many deliveries failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// Attempts in all, the first included; then the delivery is failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 5 s, doubling to at most an hour, 15 attempts: about nine hours of trying.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60 * 60),
            max_attempts: 15,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed attempt (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(doubling).min(self.cap)
    }
}

/// What an attempt leaves: the delivery's state and, when pending, when to try next. `attempts` counts this
/// attempt; `jitter` is in `[-1, 1]`.
pub(crate) fn next_state(
    policy: &RetryPolicy,
    attempts: u32,
    result: &AttemptResult,
    now: OffsetDateTime,
    jitter: f64,
) -> (DeliveryState, Option<OffsetDateTime>) {
    match result {
        AttemptResult::Delivered { .. } => (DeliveryState::Delivered, None),
        AttemptResult::Failed { .. } if attempts >= policy.max_attempts => {
            (DeliveryState::Failed, None)
        }
        AttemptResult::Failed { .. } => {
            let delay = policy
                .delay(attempts)
                .mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
            (DeliveryState::Pending, Some(now + delay))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> AttemptResult {
        AttemptResult::Failed {
            status: Some(500),
            error: "500".into(),
        }
    }

    #[test]
    fn waits_double_up_to_the_cap() {
        let policy = RetryPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            max_attempts: 10,
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn a_failure_is_retried_until_the_attempts_run_out() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            next_state(&policy, 1, &failed(), now, 0.0),
            (DeliveryState::Pending, Some(now + Duration::from_secs(5)))
        );
        let (state, at) = next_state(&policy, 2, &failed(), now, 1.0);
        assert_eq!(
            (state, at),
            (DeliveryState::Pending, Some(now + Duration::from_secs(12)))
        );
        assert_eq!(
            next_state(&policy, 3, &failed(), now, 0.0),
            (DeliveryState::Failed, None)
        );
        assert_eq!(
            next_state(
                &policy,
                3,
                &AttemptResult::Delivered { status: 204 },
                now,
                0.0
            ),
            (DeliveryState::Delivered, None)
        );
    }
}
