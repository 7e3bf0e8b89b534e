//! Approvals: a human's decision on an action policy held for one.
//!
//! - Reading: [`approval`](Authority::approval), [`approvals`](Authority::approvals) (newest first, by status),
//!   [`approvals_since`](Authority::approvals_since) (decided after a time), [`subscribe`](Authority::subscribe)
//!   (changes as they commit).
//! - Deciding: [`approve`](Authority::approve), [`reject`](Authority::reject),
//!   [`decide_approval`](Authority::decide_approval) (as an actor, through a channel).
//! - Expiry: [`sweep_expired`](Authority::sweep_expired), [`tenants_with_overdue_approvals`](Authority::tenants_with_overdue_approvals).
//! - Limits and metrics: [`max_pending_approvals_per_tenant`](Authority::max_pending_approvals_per_tenant),
//!   [`pending_approval_counts`](Authority::pending_approval_counts).

use crate::pending_approvals::PendingApprovals;
use time::OffsetDateTime;

use haltstate_types::limits::MAX_KEY_LEN;
use haltstate_types::{
    Actor, Approval, ApprovalStatus, Verdict, Via, validate_name, validate_text,
};

use super::Authority;
use crate::approval_event::ApprovalEvent;
use crate::error::{AuthorityError, Result};
use crate::ops;
use crate::store::pending::Pending;

impl Authority {
    /// One approval of `tenant`.
    pub fn approval(&self, tenant: &str, id: &str) -> Result<Approval> {
        let now = self.now();
        self.inner
            .reads
            .approval(tenant, id, now)?
            .ok_or_else(|| AuthorityError::ApprovalNotFound { id: id.to_owned() })
    }

    /// Approvals of `tenant`, newest first, optionally only those with `status`.
    pub fn approvals(
        &self,
        tenant: &str,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let now = self.now();
        self.inner.reads.approvals(tenant, status, limit, now)
    }

    /// Approvals of `tenant` decided (or expired) after `since`, oldest first.
    pub fn approvals_since(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let now = self.now();
        self.inner.reads.approvals_since(tenant, since, limit, now)
    }

    /// Approves a pending approval as `approver` (an operator; never the requesting agent), recorded as acting
    /// from code in this process ([`Via::Library`]); see [`decide_approval`](Self::decide_approval).
    pub fn approve(
        &self,
        tenant: &str,
        id: &str,
        approver: &str,
        reason: Option<String>,
    ) -> Pending<Approval> {
        self.decide_from_library(tenant, id, Verdict::Approve, approver, reason)
    }

    /// Rejects a pending approval as `approver`; the key then answers denied with `reason`.
    pub fn reject(
        &self,
        tenant: &str,
        id: &str,
        approver: &str,
        reason: Option<String>,
    ) -> Pending<Approval> {
        self.decide_from_library(tenant, id, Verdict::Reject, approver, reason)
    }

    fn decide_from_library(
        &self,
        tenant: &str,
        id: &str,
        verdict: Verdict,
        approver: &str,
        reason: Option<String>,
    ) -> Pending<Approval> {
        match Actor::new(approver, Via::Library) {
            Ok(actor) => self.decide_approval(tenant, id, verdict, actor, reason),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Decides a pending approval as `approver`, recorded with the channel it acted through. Nobody decides an
    /// approval requested under their own name ([`AuthorityError::SelfApproval`](crate::AuthorityError::SelfApproval)), and a decided approval stays
    /// decided ([`AuthorityError::ApprovalDecided`](crate::AuthorityError::ApprovalDecided)). A reason is trimmed
    /// (blank is none) and refused past 512 bytes or with control characters.
    pub fn decide_approval(
        &self,
        tenant: &str,
        id: &str,
        verdict: Verdict,
        approver: Actor,
        reason: Option<String>,
    ) -> Pending<Approval> {
        let valid = validate_name("tenant", tenant)
            .and_then(|()| validate_text("approval id", id, MAX_KEY_LEN));
        if let Err(e) = valid {
            return Pending::ready(Err(e.into()));
        }
        // A reason is evidence others read (the ledger, the console, webhooks): bounded, without control
        // characters, as the kill switch's and a key revocation's are.
        let reason = match super::given_reason(reason.as_deref()) {
            Ok(reason) => reason,
            Err(e) => return Pending::ready(Err(e)),
        };
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.submit(tenant, move |b, tenant| {
            ops::approvals::decide(b, tenant, &id, verdict, &approver, reason.clone())
        })
    }

    /// Stores the expiry of `tenant`'s overdue approvals, at most 1,000 a call (reads already show them
    /// expired), and answers them.
    pub fn sweep_expired(&self, tenant: &str) -> Pending<Vec<Approval>> {
        self.submit(tenant.to_owned(), ops::approvals::sweep_expired)
    }

    /// Every tenant with evidence, in name order (for metrics: every tenant, so not for a tenant's operator).
    pub fn known_tenants(&self) -> Result<Vec<String>> {
        self.inner.reads.tenants()
    }

    /// Per tenant, how many approvals wait for a decision now (for metrics; every tenant, so not for a tenant's
    /// operator).
    pub fn pending_approval_counts(&self) -> Result<Vec<PendingApprovals>> {
        self.inner.reads.pending_counts(self.now())
    }

    /// The tenants with approvals past their window whose expiry is not stored yet (see
    /// [`sweep_expired`](Self::sweep_expired)).
    pub fn tenants_with_overdue_approvals(&self) -> Result<Vec<String>> {
        self.inner.reads.overdue_tenants(self.now())
    }

    /// Approval changes as they commit (decisions and expiries), for streaming to clients.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ApprovalEvent> {
        self.inner.events.subscribe()
    }

    /// How many approvals a tenant may have waiting at once
    /// ([`AuthorityBuilder::max_pending_approvals_per_tenant`](crate::AuthorityBuilder::max_pending_approvals_per_tenant)):
    /// a list of that many shows every one.
    pub fn max_pending_approvals_per_tenant(&self) -> usize {
        self.inner.windows.max_pending_per_tenant
    }
}
