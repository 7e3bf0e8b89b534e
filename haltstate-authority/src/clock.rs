//! Where the authority reads the time.
//!
//! Approval expiry, claim leases and schedule-window policies all depend on "now". The authority reads it
//! through [`Clock`] so tests (and simulations) can move time forward without sleeping.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// To the microsecond, as both databases keep time: a time the authority answers (an approval's expiry in a
    /// guard's answer) is then the one it stored, not a finer one that no later read reproduces.
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}

/// A clock that only moves when told to; for tests and simulations.
///
/// ```
/// use haltstate_authority::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at(time::macros::datetime!(2026-01-05 09:00 UTC));
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now().hour(), 10);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
