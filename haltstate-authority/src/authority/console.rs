//! What the operators' console asks of the authority besides decisions: its sessions (stored, so every instance
//! on the database knows them), the count of a tenant's waiting approvals (shown on every page), and a span of a
//! tenant's records (the overview's pictures).

use std::time::Duration;

use time::OffsetDateTime;

use haltstate_types::{EvidenceRecord, Principal};

use super::Authority;
use crate::console_session::{ConsoleSession, SessionId, SessionLimits};
use crate::error::Result;
use crate::ops;
use crate::store::pending::Pending;

impl Authority {
    /// Starts a console session for `principal` under the stored name `id`, lasting `ttl`; answers `false` when
    /// [`SessionLimits::total`] sessions are stored (nothing started). Past the tenant's share, its sessions
    /// closest to their expiry end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use haltstate_authority::{Authority, Role, SessionId, SessionLimits};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let authority = Authority::builder(dir.path().join("haltstate.db"))
    ///     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#)
    ///     .open()?;
    /// let key = authority.create_key("acme", "alice", Role::Operator).wait()?;
    /// let alice = authority.authenticate("acme", &key.secret)?;
    /// let id = SessionId::of_token("the random token in the cookie");
    /// let limits = SessionLimits { per_tenant: 10, total: 100 };
    /// let ttl = Duration::from_secs(60);
    /// assert!(authority.start_console_session(&alice, id.clone(), ttl, limits).wait()?);
    /// assert_eq!(authority.console_session(&id)?.map(|s| s.key_id), Some(key.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_console_session(
        &self,
        principal: &Principal,
        id: SessionId,
        ttl: Duration,
        limits: SessionLimits,
    ) -> Pending<bool> {
        let now = self.now();
        let session = ConsoleSession {
            tenant: principal.tenant.clone(),
            key_id: principal.key_id.clone(),
            created_at: now,
            expires_at: now + ttl,
        };
        self.submit(principal.tenant.clone(), move |tx, _| {
            ops::sessions::start(tx, &id, &session, limits)
        })
    }

    /// The stored session named `id`, unless it expired.
    pub fn console_session(&self, id: &SessionId) -> Result<Option<ConsoleSession>> {
        self.inner.reads.session(id, self.now())
    }

    /// Ends the session `id` of `tenant` (on every instance); answers whether there was one.
    pub fn end_console_session(&self, tenant: &str, id: SessionId) -> Pending<bool> {
        self.submit(tenant.to_owned(), move |tx, tenant| {
            tx.end_session(tenant, &id)
        })
    }

    /// How many approvals `tenant` has waiting for a decision now, counting no further than `at_most`.
    pub fn pending_count(&self, tenant: &str, at_most: u64) -> Result<u64> {
        self.inner.reads.pending_count(tenant, self.now(), at_most)
    }

    /// Who changed the tenant's kill switches (its own and its agents'), when and why: their records, newest
    /// first, at most `limit`.
    pub fn kill_switch_history(&self, tenant: &str, limit: u32) -> Result<Vec<EvidenceRecord>> {
        self.inner
            .reads
            .changes(tenant, ops::kill::KILL_SWITCH_SUBJECT, limit)
    }

    /// Who created, rotated or revoked key `key_id` of the tenant, when and why: its records, newest first, at
    /// most `limit`.
    pub fn key_history(
        &self,
        tenant: &str,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<EvidenceRecord>> {
        self.inner
            .reads
            .changes(tenant, &format!("key:{key_id}"), limit)
    }

    /// The tenant's newest signed checkpoint, if any.
    pub fn latest_checkpoint(
        &self,
        tenant: &str,
    ) -> Result<Option<haltstate_types::proof::SignedCheckpoint>> {
        self.inner.reads.checkpoint_from(tenant, u64::MAX)
    }

    /// The tenant's records at or after `since`, oldest first, at most `limit`.
    pub fn activity(
        &self,
        tenant: &str,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<EvidenceRecord>> {
        self.inner.reads.activity(tenant, since, limit)
    }
}
