//! Webhooks through the authority: endpoints added, listed and removed by operators; deliveries handed to a
//! sender under a lease and each attempt recorded.

use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

use haltstate_types::validate_name;

use super::Authority;
use crate::error::Result;
use crate::ops;
use crate::store::pending::Pending;
use crate::webhooks::{
    AttemptResult, Delivery, DeliveryRecord, DeliveryState, RetryPolicy, Webhook, WebhookSecret,
    WebhookSpec,
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
        let actor = actor.to_owned();
        self.submit(tenant.to_owned(), move |tx, tenant| {
            ops::webhooks::add(tx, tenant, spec, &actor)
        })
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
