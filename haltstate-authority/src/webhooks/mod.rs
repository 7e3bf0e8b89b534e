//! Notifications: per-tenant webhooks, fed by an outbox written in the same transaction as the change they
//! announce (an approval requested, decided or expired; a kill switch flipped), so a committed change is never
//! left unannounced and an undone one never announced.
//!
//! The authority stores endpoints and the outbox, hands due deliveries to a sender ([`Authority::claim_deliveries`](crate::Authority::claim_deliveries))
//! under a lease (two instances never hold one delivery at once) and records each attempt's result with the next
//! try on an exponential schedule ([`RetryPolicy`]). Sending over HTTP and signing are the server's.
//!
//! ```
//! use haltstate_authority::Authority;
//! use haltstate_authority::webhooks::{WebhookEvent, WebhookFormat, WebhookSpec};
//!
//! let dir = tempfile::tempdir()?;
//! let authority = Authority::builder(dir.path().join("haltstate.db")).open()?;
//! let spec = WebhookSpec::new("https://hooks.example.com/haltstate")?
//!     .events(vec![WebhookEvent::ApprovalRequested])
//!     .format(WebhookFormat::Standard);
//! let (webhook, secret) = authority.add_webhook("acme", spec, "oncall").wait()?;
//! assert!(secret.expose().starts_with("whsec_")); // shown once: only the receiver keeps it
//! assert_eq!(authority.webhooks("acme")?[0].id, webhook.id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;
mod schedule;
mod sealing;
mod secret;
mod spec;
pub(crate) mod stored;

pub use event::WebhookEvent;
pub(crate) use schedule::next_state;
pub use schedule::{AttemptResult, DeliveryState, RetryPolicy};
pub use sealing::{Keyring, SealError, SealedSecret, SecretsKey};
pub use secret::WebhookSecret;
pub use spec::{WebhookFormat, WebhookSpec};

use serde_json::Value;
use time::OffsetDateTime;

/// A tenant's webhook endpoint (its secret is never part of it). Its `Debug` shows the URL as
/// [`shown_url`] does: a webhook URL is often itself a credential.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    /// `wh_...`
    pub id: String,
    /// The tenant whose events it receives.
    pub tenant: String,
    /// Where deliveries are posted.
    pub url: String,
    /// The events it receives.
    pub events: Vec<WebhookEvent>,
    /// The body's shape.
    pub format: WebhookFormat,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// The operator who added it.
    pub created_by: String,
}

/// One delivery a sender holds under a lease: what to send, where, and how to sign it. Its `Debug` shows the URL
/// as [`shown_url`] does.
#[derive(Clone)]
pub struct Delivery {
    /// The message id (`msg_...`), the same for every attempt (`webhook-id`): receivers deduplicate on it.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The endpoint's id.
    pub webhook_id: String,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's signing secret as stored: sealed when a secrets key is configured. Signing takes it opened
    /// ([`Authority::webhook_secret`](crate::Authority::webhook_secret)).
    pub secret: SealedSecret,
    /// The body's shape.
    pub format: WebhookFormat,
    /// What happened.
    pub event: WebhookEvent,
    /// The event's data (the `data` of a Standard Webhooks body). A `path` field names the console page.
    pub data: Value,
    /// When the change committed.
    pub created_at: OffsetDateTime,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// A delivery as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The message id.
    pub id: String,
    /// The endpoint's id.
    pub webhook_id: String,
    /// What happened.
    pub event: WebhookEvent,
    /// When the change committed.
    pub created_at: OffsetDateTime,
    /// Attempts made.
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<OffsetDateTime>,
}

/// A webhook URL without what may be a credential, enough to tell endpoints apart by host: the scheme, host and
/// port; never user information, path, query or fragment (Slack's, Discord's and most services' webhook URLs
/// carry their token in the path). For listings, logs and `Debug`.
///
/// ```
/// use haltstate_authority::webhooks::shown_url;
///
/// assert_eq!(shown_url("https://hooks.slack.com/services/T0/B0/XyZ?x=1"), "https://hooks.slack.com/…");
/// assert_eq!(shown_url("http://user:pw@example.com:8080"), "http://example.com:8080");
/// ```
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if end < rest.len() && &rest[end..] != "/" {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("url", &shown_url(&self.url))
            .field("events", &self.events)
            .field("format", &self.format)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .finish()
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("webhook_id", &self.webhook_id)
            .field("url", &shown_url(&self.url))
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}
