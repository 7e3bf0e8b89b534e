//! The sender: a loop that looks at the outbox, claims what is due per tenant, posts each delivery signed, and
//! records how it went.

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use haltstate_authority::Authority;
use haltstate_authority::webhooks::{AttemptResult, Delivery, DeliveryState};

use super::{WebhookSettings, body, sign};

/// Deliveries claimed per tenant per look.
const CLAIM_BATCH: usize = 64;

/// Sends the outbox's due deliveries. One per server process; many processes share an outbox safely.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    authority: Authority,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This sender's name in the outbox's claims.
    holder: String,
}

impl WebhookSender {
    /// A sender for `authority`'s outbox.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots, say).
    pub fn new(authority: Authority, settings: WebhookSettings) -> Result<Self, reqwest::Error> {
        let client = crate::outbound::client(settings.allow_private, settings.timeout)?;
        let holder = format!(
            "sender-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        Ok(Self {
            authority,
            settings,
            client,
            holder,
        })
    }

    /// Sends what is due every [`WebhookSettings::poll`] until `shutdown`; a round under way finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.send_due().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// One round: claims every tenant's due deliveries and attempts each; answers how many were attempted.
    pub async fn send_due(&self) -> usize {
        let tenants = match self.authority.tenants_with_due_deliveries() {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "reading the webhook outbox failed");
                return 0;
            }
        };
        let mut attempted = 0;
        for tenant in tenants {
            let claimed = self
                .authority
                .claim_deliveries(&tenant, &self.holder, self.settings.lease(), CLAIM_BATCH)
                .await;
            let deliveries = match claimed {
                Ok(deliveries) => deliveries,
                Err(error) => {
                    tracing::warn!(%error, %tenant, "claiming webhook deliveries failed");
                    continue;
                }
            };
            attempted += deliveries.len();
            futures_util::stream::iter(deliveries)
                .for_each_concurrent(self.settings.concurrency, |delivery| self.attempt(delivery))
                .await;
        }
        attempted
    }

    async fn attempt(&self, delivery: Delivery) {
        let result = self.post(&delivery).await;
        let recorded = self
            .authority
            .finish_delivery(&delivery, &self.holder, result.clone(), self.settings.retry)
            .await;
        // The endpoint's URL is not logged: a Slack webhook's URL is itself a secret.
        let (tenant, webhook, id) = (&delivery.tenant, &delivery.webhook_id, &delivery.id);
        let outcome = match recorded {
            Ok(Some((DeliveryState::Delivered, _))) => "delivered",
            Ok(Some((DeliveryState::Pending, next))) => {
                let retry_in_s = next.map(|at| (at - OffsetDateTime::now_utc()).whole_seconds());
                tracing::info!(%tenant, %webhook, %id, attempt = delivery.attempts + 1, status = result.status(),
                    error = result.error(), retry_in_s, "webhook delivery failed; will retry");
                "retry"
            }
            Ok(Some((DeliveryState::Failed, _))) => {
                tracing::warn!(%tenant, %webhook, %id, attempts = delivery.attempts + 1, status = result.status(),
                    error = result.error(), "webhook delivery failed for good");
                "failed"
            }
            Ok(None) => {
                tracing::warn!(%tenant, %webhook, %id, "webhook delivery's lease lapsed before its result was stored");
                "lost_lease"
            }
            Err(error) => {
                tracing::warn!(%tenant, %webhook, %id, %error, "storing a webhook attempt failed; it will be retried");
                "unrecorded"
            }
        };
        metrics::counter!("haltstate_webhook_deliveries_total", "outcome" => outcome).increment(1);
    }

    async fn post(&self, delivery: &Delivery) -> AttemptResult {
        // Refused before anything is sent: what a non-public target answers is never recorded (the console shows
        // attempts, and would otherwise scan the server's network for whoever adds webhooks).
        if let Err(refused) = crate::outbound::check_url(&delivery.url, self.settings.allow_private)
        {
            return AttemptResult::Failed {
                status: None,
                error: refused.to_string(),
            };
        }
        // Sealed at rest: without its key (a database moved without it) nothing is sent, signed or not.
        let secret = match self.authority.webhook_secret(delivery) {
            Ok(secret) => secret,
            Err(sealed) => {
                return AttemptResult::Failed {
                    status: None,
                    error: sealed.to_string(),
                };
            }
        };
        let body = body::body(delivery, &self.settings.public_url);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(&secret, &delivery.id, timestamp, &body);
        let sent = self
            .client
            .post(&delivery.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => AttemptResult::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => AttemptResult::Failed {
                status: Some(response.status().as_u16()),
                error: format!("HTTP {}", response.status()),
            },
            Err(error) => AttemptResult::Failed {
                status: None,
                error: describe(error),
            },
        }
    }
}

/// What went wrong, with its causes and without the URL.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "failed"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
