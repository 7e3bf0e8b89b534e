//! Webhook delivery: the sender that takes due deliveries from the authority's outbox, posts them signed as
//! the Standard Webhooks specification describes, and records each attempt (retried with exponential backoff
//! until it succeeds or its attempts run out).
//!
//! Every `haltstate serve` runs one; on a shared PostgreSQL database each instance claims deliveries under a
//! lease, so an event is sent by one instance at a time, at least once.

mod body;
mod sender;
mod sign;

pub use sender::WebhookSender;
pub use sign::{SignatureError, sign, verify};

use std::time::Duration;

use haltstate_authority::webhooks::RetryPolicy;

/// How the sender works.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The console's public address (`https://haltstate.example.com`), put before the page links in payloads.
    pub public_url: String,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// How long one attempt may take (connect, send, answer).
    pub timeout: Duration,
    /// How often the outbox is looked at.
    pub poll: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Whether webhooks may post to loopback, link-local and private addresses (see [`crate::outbound`]);
    /// off by default.
    pub allow_private: bool,
}

impl WebhookSettings {
    /// The defaults ([`RetryPolicy::default`], 10 s per attempt, a look every 500 ms, 16 at once), linking to
    /// `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            concurrency: 16,
            allow_private: false,
        }
    }

    /// How long a claimed delivery is held: long enough for a batch of attempts to finish, short enough that
    /// a sender that died delays its deliveries only briefly.
    pub(crate) fn lease(&self) -> Duration {
        self.timeout.saturating_mul(3)
    }
}
