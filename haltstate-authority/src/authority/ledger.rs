//! The ledger and its evidence: every decision, outcome and operator action, one hash chain per tenant.
//!
//! - Reading: [`evidence`](Authority::evidence), [`chained_evidence`](Authority::chained_evidence) (with each
//!   record's links), [`tenant_head`](Authority::tenant_head).
//! - Verifying: [`verify_tenant_ledger`](Authority::verify_tenant_ledger), [`verify_ledger`](Authority::verify_ledger)
//!   (every tenant), [`verify_ledger_file`](Authority::verify_ledger_file) and
//!   [`verify_database`](Authority::verify_database) (without opening an authority).
//!
//! Signed checkpoints and proof packs are in `evidence_proof.rs`; the state tables checked against the ledger in
//! `state_check.rs`; replay and the shadow report in `replay.rs` and `shadow.rs`.

use std::path::Path;

use haltstate_types::{EvidenceQuery, EvidenceRecord, LedgerHead, VerifyReport};

use super::Authority;
use crate::database::Database;
use crate::error::Result;
use crate::store::sql::Order;
use crate::store::sqlite;

impl Authority {
    /// Evidence of `tenant` matching `query`, in ledger order: the oldest that match first, so that a reader
    /// pages on with `after_seq`.
    pub fn evidence(&self, tenant: &str, query: &EvidenceQuery) -> Result<Vec<EvidenceRecord>> {
        self.inner.reads.evidence(tenant, query, Order::OldestFirst)
    }

    /// The newest evidence of `tenant` matching `query`, newest first: its `limit` counts from the end of the
    /// ledger (`after_seq` still bounds the records from below). What a page of recent activity shows.
    ///
    /// ```
    /// # use haltstate_authority::{ActionRequest, Authority, EvidenceQuery, GuardRequest};
    /// # let dir = tempfile::tempdir()?;
    /// let authority = Authority::builder(dir.path().join("hs.db")).open()?;
    /// for key in ["refund:1", "refund:2", "refund:3"] {
    ///     let request = GuardRequest::new(ActionRequest::new("bot", "refund.create"), key);
    ///     authority.guard("acme", request).wait()?;
    /// }
    /// let query = EvidenceQuery { limit: Some(2), ..EvidenceQuery::default() };
    /// let newest = authority.newest_evidence("acme", &query)?;
    /// let keys: Vec<_> = newest.iter().map(|r| r.idempotency_key.as_deref()).collect();
    /// assert_eq!(keys, [Some("refund:3"), Some("refund:2")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn newest_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
    ) -> Result<Vec<EvidenceRecord>> {
        self.inner.reads.evidence(tenant, query, Order::NewestFirst)
    }

    /// Evidence of `tenant` matching `query`, with each record's chain links (its hash and the one before).
    pub fn chained_evidence(
        &self,
        tenant: &str,
        query: &EvidenceQuery,
    ) -> Result<Vec<haltstate_types::ChainedRecord>> {
        self.inner
            .reads
            .chained_evidence(tenant, query, Order::OldestFirst)
    }

    /// The last record of `tenant`'s evidence (sequence 0 and the genesis hash when it has none): what an
    /// operator of that tenant may see of the ledger's end.
    pub fn tenant_head(&self, tenant: &str) -> Result<LedgerHead> {
        self.inner.reads.tenant_head(tenant)
    }

    /// Recomputes `tenant`'s chain alone (what that tenant's operators may verify).
    pub fn verify_tenant_ledger(&self, tenant: &str) -> Result<VerifyReport> {
        self.inner.reads.verify_tenant(tenant)
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
}
