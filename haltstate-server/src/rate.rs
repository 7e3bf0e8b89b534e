//! Request rates: failed authentications per client address, and requests per key.
//!
//! Counted in this process (each server instance counts its own), with `governor`'s GCRA limiters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use haltstate_types::Principal;

use crate::limits::ServeLimits;

/// The limiters the authentication step consults.
#[derive(Debug)]
pub(crate) struct RateLimits {
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses past their failure budget, until when: every request from them is refused before its key is
    /// looked at, so guessing keys gets nowhere.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Whether `blocked` may hold anything: the common case (nobody blocked) then takes no lock.
    any_blocked: AtomicBool,
    per_key: Mutex<HashMap<String, KeyLimiter>>,
    default_key_rate: Option<NonZeroU32>,
}

/// One key's limiter, the rate it was built for, and when the key last asked.
#[derive(Debug)]
struct KeyLimiter {
    rate: NonZeroU32,
    limiter: DefaultDirectRateLimiter,
    last_used: Instant,
}

/// A key quiet this long has its whole burst back (a second's worth), so its limiter can be forgotten.
const KEY_IDLE: Duration = Duration::from_secs(60);

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one host usually holds the whole /64).
fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold no invariant a panic could break half-way.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RateLimits {
    pub(crate) fn new(limits: &ServeLimits) -> Self {
        Self {
            auth_failures: RateLimiter::keyed(Quota::per_minute(limits.auth_failures_per_minute)),
            blocked: Mutex::new(HashMap::new()),
            any_blocked: AtomicBool::new(false),
            per_key: Mutex::new(HashMap::new()),
            default_key_rate: limits.key_rate_limit,
        }
    }

    /// `Err(wait)` while `address` is past its budget of failed authentications.
    pub(crate) fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        if !self.any_blocked.load(Ordering::Acquire) {
            return Ok(());
        }
        let client = client_of(address);
        let mut blocked = locked(&self.blocked);
        match blocked.get(&client) {
            Some(until) if *until > Instant::now() => Err(*until - Instant::now()),
            Some(_) => {
                blocked.remove(&client);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication; `Some(wait)` when that put the address past its budget.
    pub(crate) fn failed(&self, address: IpAddr) -> Option<Duration> {
        let client = client_of(address);
        let not_until = self.auth_failures.check_key(&client).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        locked(&self.blocked).insert(client, Instant::now() + wait);
        self.any_blocked.store(true, Ordering::Release);
        Some(wait)
    }

    /// `Err(wait)` when the key is over its request rate (its own, else the server's default).
    pub(crate) fn check_key(&self, principal: &Principal) -> Result<(), Duration> {
        let Some(rate) = principal.rate_limit.or(self.default_key_rate) else {
            return Ok(());
        };
        let fresh = || KeyLimiter {
            rate,
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            last_used: Instant::now(),
        };
        let mut limiters = locked(&self.per_key);
        let entry = limiters
            .entry(principal.key_id.clone())
            .or_insert_with(fresh);
        if entry.rate != rate {
            *entry = fresh();
        }
        entry.last_used = Instant::now();
        entry
            .limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses and keys that have been quiet long enough to have their whole budget back.
    pub(crate) fn prune(&self) {
        self.auth_failures.retain_recent();
        self.auth_failures.shrink_to_fit();
        let now = Instant::now();
        let mut blocked = locked(&self.blocked);
        blocked.retain(|_, until| *until > now);
        self.any_blocked
            .store(!blocked.is_empty(), Ordering::Release);
        drop(blocked);
        locked(&self.per_key).retain(|_, key| now.duration_since(key.last_used) < KEY_IDLE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_of(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn an_address_past_its_failures_is_blocked_and_others_are_not() {
        let limits = RateLimits::new(&ServeLimits {
            auth_failures_per_minute: NonZeroU32::new(3).unwrap(),
            ..ServeLimits::default()
        });
        let (bad, good): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!((0..3).all(|_| limits.failed(bad).is_none()));
        let wait = limits
            .failed(bad)
            .expect("the fourth failure is over budget");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert!(limits.check_address(bad).is_err());
        assert!(limits.check_address(good).is_ok());
    }
}
