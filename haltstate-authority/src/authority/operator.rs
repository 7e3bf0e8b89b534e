//! What operators do through the authority: approvals, the kill switch, evidence and the ledger.

use std::path::Path;

use time::OffsetDateTime;

use haltstate_types::limits::MAX_KEY_LEN;
use haltstate_types::{
    Actor, Approval, ApprovalStatus, EvidenceQuery, EvidenceRecord, KillScope, KillState,
    KillStatus, LedgerHead, Verdict, VerifyReport, Via, canonical_name, validate_name,
    validate_text,
};

use super::Authority;
use crate::database::Database;
use crate::error::{AuthorityError, Result};
use crate::events::ApprovalEvent;
use crate::ops;
use crate::store::pending::Pending;
use crate::store::sqlite;

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
    /// decided ([`AuthorityError::ApprovalDecided`](crate::AuthorityError::ApprovalDecided)).
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
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.submit(tenant, move |b, tenant| {
            ops::approvals::decide(b, tenant, &id, verdict, &approver, reason)
        })
    }

    /// Stores the expiry of `tenant`'s overdue approvals, at most 1,000 a call (reads already show them
    /// expired), and answers them.
    pub fn sweep_expired(&self, tenant: &str) -> Pending<Vec<Approval>> {
        self.submit(tenant.to_owned(), ops::approvals::sweep_expired)
    }

    /// Answers `Ok` when the database answers a trivial read: whether this authority can serve (`/readyz`).
    pub fn ready(&self) -> Result<()> {
        self.inner.reads.ping()
    }

    /// Per tenant, how many approvals wait for a decision now (for metrics; every tenant, so not for a tenant's
    /// operator).
    pub fn pending_approval_counts(&self) -> Result<Vec<(String, u64)>> {
        self.inner.reads.pending_counts(self.now())
    }

    /// Every kill switch ever set, with its state (for metrics; every tenant).
    pub fn kill_switches(&self) -> Result<Vec<(KillScope, KillState)>> {
        self.inner.reads.kill_switches()
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

    /// The effective kill-switch state for `agent_id`, or the tenant's own state when `agent_id` is `None`.
    pub fn kill_switch(&self, tenant: &str, agent_id: Option<&str>) -> Result<KillStatus> {
        let agent_id = agent_id
            .map(|agent| canonical_name("agent_id", agent))
            .transpose()?;
        match &agent_id {
            Some(agent) => self.inner.reads.kill_status(tenant, agent),
            None => {
                let scope = KillScope::Tenant(tenant.to_owned());
                let state = self.inner.reads.kill_state(&scope)?;
                Ok(KillStatus {
                    state,
                    scope: (state != KillState::Run).then_some(scope),
                })
            }
        }
    }

    /// Sets the kill switch of `scope`; the change is itself a ledger record naming `actor`, recorded as acting
    /// from code in this process ([`Via::Library`]).
    pub fn set_kill_switch(
        &self,
        scope: KillScope,
        state: KillState,
        actor: &str,
    ) -> Pending<KillStatus> {
        match Actor::new(actor, Via::Library) {
            Ok(actor) => self.set_kill_switch_as(scope, state, actor),
            Err(e) => Pending::ready(Err(e.into())),
        }
    }

    /// Sets the kill switch of `scope` as `actor`, recorded with the channel it acted through.
    pub fn set_kill_switch_as(
        &self,
        scope: KillScope,
        state: KillState,
        actor: Actor,
    ) -> Pending<KillStatus> {
        let scope = match validate_name("tenant", scope.tenant()).and_then(|()| match scope {
            KillScope::Agent { tenant, agent_id } => Ok(KillScope::Agent {
                agent_id: canonical_name("agent_id", &agent_id)?,
                tenant,
            }),
            tenant => Ok(tenant),
        }) {
            Ok(scope) => scope,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        self.submit(scope.tenant().to_owned(), move |b, _| {
            ops::kill::set(b, &scope, state, &actor)
        })
    }

    /// Evidence of `tenant` matching `query`, in ledger order.
    pub fn evidence(&self, tenant: &str, query: &EvidenceQuery) -> Result<Vec<EvidenceRecord>> {
        self.inner.reads.evidence(tenant, query)
    }

    /// Evidence of `tenant` matching `query`, with each record's chain links (its hash and the one before).
    pub fn chained_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
    ) -> Result<Vec<haltstate_types::ChainedRecord>> {
        self.inner.reads.chained_evidence(tenant, query)
    }

    /// Recomputes `tenant`'s chain alone (what that tenant's operators may verify).
    pub fn verify_tenant_ledger(&self, tenant: &str) -> Result<VerifyReport> {
        self.inner.reads.verify_tenant(tenant)
    }

    /// The last record of `tenant`'s evidence (sequence 0 and the genesis hash when it has none): what an
    /// operator of that tenant may see of the ledger's end.
    pub fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        self.inner.reads.tenant_head(tenant)
    }

    /// Recomputes every tenant's hash chain; [`AuthorityError::LedgerBroken`](crate::AuthorityError::LedgerBroken) names the first broken record.
    pub fn verify_ledger(&self) -> Result<VerifyReport> {
        self.inner.reads.verify()
    }

    /// Verifies the ledger of the database at `path` without opening an authority on it: read-only, never
    /// creating or migrating anything, and refusing ([`AuthorityError::NotADatabase`](crate::AuthorityError::NotADatabase)) a file that is not a
    /// HaltState database.
    pub fn verify_ledger_file(path: impl AsRef<Path>) -> Result<VerifyReport> {
        sqlite::verify_file(path.as_ref())
    }

    /// Verifies the ledger of `database` without opening an authority on it: nothing is created, migrated or
    /// written (a SQLite file is opened read-only; a PostgreSQL database is read in one snapshot).
    pub fn verify_database(database: &Database) -> Result<VerifyReport> {
        match database {
            Database::Sqlite(path) => sqlite::verify_file(path),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => crate::store::postgres::verify_database(url),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(super::builder::no_postgres()),
        }
    }

    /// Copies the SQLite authority at `from` into the empty PostgreSQL database `to` (schema created), every
    /// chain and row, in one transaction, and verifies the copy. Refuses a source whose ledger does not verify
    /// and a target that holds HaltState data.
    #[cfg(feature = "postgres")]
    pub fn copy_database(from: &Path, to: &Database) -> Result<crate::CopyReport> {
        match to {
            Database::Postgres(url) => crate::store::postgres::copy(from, url),
            Database::Sqlite(path) => Err(AuthorityError::invalid(format!(
                "copy goes into a PostgreSQL database, not the file {}",
                path.display()
            ))),
        }
    }

    /// Creates or migrates the schema of `database` to this build's version and answers that version; refuses
    /// ([`AuthorityError::SchemaTooNew`](crate::AuthorityError::SchemaTooNew)) a newer one. Opening an authority
    /// does the same; this is for running migrations as a deployment step.
    pub fn migrate(database: &Database) -> Result<i64> {
        match database {
            Database::Sqlite(path) => sqlite::migrate_file(path),
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => crate::store::postgres::migrate(url),
            #[cfg(not(feature = "postgres"))]
            Database::Postgres(_) => Err(super::builder::no_postgres()),
        }
    }
}
