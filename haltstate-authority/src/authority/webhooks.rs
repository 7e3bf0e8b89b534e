//! Webhooks through the authority: endpoints added, listed and removed by operators; deliveries handed to a
//! sender under a lease and each attempt recorded.

use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

use haltstate_types::validate_name;

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::ops;
use crate::store::pending::Pending;
use crate::webhooks::{
    AttemptResult, Delivery, DeliveryRecord, DeliveryState, RetryPolicy, SealError, Webhook,
    WebhookSecret, WebhookSpec,
};

impl Authority {
    /// Adds a webhook for `tenant`, recorded as added by `actor`. The answer holds its signing secret, which is
    /// stored for signing but never shown again.
    pub fn add_webhook(
        &self,
        tenant: &str,
        spec: WebhookSpec,
        actor: &str,
    ) -> Pending<(Webhook, WebhookSecret)> {
        if let Err(e) = validate_name("tenant", tenant) {
            return Pending::ready(Err(e.into()));
        }
        let (actor, keyring) = (actor.to_owned(), self.inner.keyring.clone());
        self.submit(tenant.to_owned(), move |tx, tenant| {
            ops::webhooks::add(tx, tenant, spec.clone(), &actor, &keyring)
        })
    }

    /// The signing secret of `delivery`'s webhook, opened with the configured secrets keys.
    ///
    /// # Errors
    /// [`SealError`] when no configured key sealed it (a database moved without its key cannot sign) or it does
    /// not open.
    pub fn webhook_secret(
        &self,
        delivery: &Delivery,
    ) -> std::result::Result<WebhookSecret, SealError> {
        self.inner
            .keyring
            .open(&delivery.tenant, &delivery.webhook_id, &delivery.secret)
    }

    /// Whether any tenant has (or had) a webhook: its secret is stored.
    pub fn any_webhooks(&self) -> Result<bool> {
        Ok(!self.inner.reads.webhook_tenants()?.is_empty())
    }

    /// Whether webhook secrets are sealed at rest (a secrets key is configured).
    pub fn seals_webhook_secrets(&self) -> bool {
        self.inner.keyring.seals()
    }

    /// Reseals every stored webhook secret (live or removed) that the current secrets key did not seal: secrets
    /// stored before a key was configured, or sealed with a previous key (a rotation). One transaction per
    /// tenant; answers how many were resealed. A secret no configured key opens is left as it is, and the
    /// answer is that error.
    ///
    /// ```
    /// use haltstate_authority::Authority;
    /// use haltstate_authority::webhooks::{Keyring, SecretsKey, WebhookFormat, WebhookSpec, WebhookEvent};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = dir.path().join("hs.db");
    /// let spec = WebhookSpec::new("https://hooks.example.com/hs")?
    ///     .events(vec![WebhookEvent::ApprovalRequested])
    ///     .format(WebhookFormat::Standard);
    /// // Added before any key: stored as it is.
    /// Authority::builder(&db).open()?.add_webhook("acme", spec, "alice").wait()?;
    /// let sealed = Authority::builder(&db)
    ///     .secrets_keys(Keyring::new(SecretsKey::generate(), Vec::new()))
    ///     .open()?;
    /// assert_eq!(sealed.reseal_webhook_secrets()?, 1);
    /// assert_eq!(sealed.reseal_webhook_secrets()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reseal_webhook_secrets(&self) -> Result<usize> {
        if !self.inner.keyring.seals() {
            return Ok(0);
        }
        let mut resealed = 0;
        for tenant in self.inner.reads.webhook_tenants()? {
            let keyring = self.inner.keyring.clone();
            resealed += self
                .submit(tenant, move |tx, tenant| {
                    let mut changed = 0;
                    for (id, stored) in tx.webhook_secrets(tenant)? {
                        if keyring.is_current(&stored) {
                            continue;
                        }
                        let secret = keyring
                            .open(tenant, &id, &stored)
                            .map_err(|e| AuthorityError::Corrupt(format!("webhook {id}: {e}")))?;
                        let sealed = keyring
                            .seal(tenant, &id, &secret)
                            .map_err(|e| AuthorityError::storage(e.to_string()))?;
                        tx.set_webhook_secret(tenant, &id, &sealed)?;
                        changed += 1;
                    }
                    Ok(changed)
                })
                .wait()?;
        }
        if resealed > 0
            && let crate::database::Database::Sqlite(path) = &self.inner.database
        {
            // The replaced secrets' pages leave the WAL and the file's free space (secure_delete) now, not at
            // the next checkpoint.
            crate::store::sqlite::truncate_wal(path)?;
        }
        Ok(resealed)
    }

    /// Removes a webhook; its pending deliveries fail with "webhook removed". Answers whether a live webhook
    /// was removed.
    pub fn remove_webhook(&self, tenant: &str, id: &str) -> Pending<bool> {
        let id = id.to_owned();
        self.submit(tenant.to_owned(), move |tx, tenant| {
            tx.remove_webhook(tenant, &id)
        })
    }

    /// The tenant's live webhooks, newest first (never their secrets).
    pub fn webhooks(&self, tenant: &str) -> Result<Vec<Webhook>> {
        self.inner.reads.webhooks(tenant)
    }

    /// The tenant's latest deliveries, newest first: what was sent, how often, and how it went.
    pub fn webhook_deliveries(&self, tenant: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        self.inner.reads.deliveries(tenant, limit)
    }

    /// Tenants with deliveries due now that no sender holds.
    pub fn tenants_with_due_deliveries(&self) -> Result<Vec<String>> {
        self.inner.reads.due_delivery_tenants(self.now())
    }

    /// Hands up to `limit` of the tenant's due deliveries to `holder` for `lease`: no other holder gets them
    /// until the lease lapses (then they are due again: a sender that died loses nothing).
    pub fn claim_deliveries(
        &self,
        tenant: &str,
        holder: &str,
        lease: Duration,
        limit: usize,
    ) -> Pending<Vec<Delivery>> {
        let holder = holder.to_owned();
        self.submit(tenant.to_owned(), move |tx, tenant| {
            ops::webhooks::claim(tx, tenant, &holder, lease, limit)
        })
    }

    /// Records one attempt of a claimed delivery: delivered, or failed and due again on `policy`'s schedule
    /// (failed for good once its attempts run out). Answers the delivery's state and next attempt, or `None`
    /// when `holder` no longer held it.
    pub fn finish_delivery(
        &self,
        delivery: &Delivery,
        holder: &str,
        result: AttemptResult,
        policy: RetryPolicy,
    ) -> Pending<Option<(DeliveryState, Option<OffsetDateTime>)>> {
        let (delivery, holder) = (delivery.clone(), holder.to_owned());
        let jitter = rand::rng().random_range(-1.0..=1.0);
        self.submit(delivery.tenant.clone(), move |tx, _| {
            ops::webhooks::finish(tx, &delivery, &holder, &result, &policy, jitter)
        })
    }
}
