//! Each tenant's evidence as a Merkle tree (RFC 9162 hashing): its head at any size, the proof that a record is in
//! it, the proof that a later tree extends an earlier one, and the checks of both (`crate::merkle`).

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::merkle::TreeHead;
use crate::store::tree::{self, HashStore};
use crate::store::tx::Reads;

/// The authority's readers seen as a hash store.
pub(super) struct ReadHashes<'a>(&'a dyn Reads);

impl ReadHashes<'_> {
    pub(super) fn of(authority: &Authority) -> ReadHashes<'_> {
        ReadHashes(authority.inner.reads.as_ref())
    }
}

impl HashStore for ReadHashes<'_> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        self.0.tree_hashes(tenant, indexes)
    }
}

impl Authority {
    fn tree_size(&self, tenant: &str) -> Result<u64> {
        Ok(self.tenant_head(tenant)?.seq)
    }

    /// Refuses a size larger than the tenant's log.
    pub(super) fn within(&self, tenant: &str, size: u64) -> Result<()> {
        let current = self.tree_size(tenant)?;
        if size > current {
            return Err(crate::RequestError::Invalid(format!(
                "tenant {tenant}'s log holds {current} records, not {size}"
            ))
            .into());
        }
        Ok(())
    }

    /// The head of `tenant`'s tree: its size (records) and root, as of now.
    ///
    /// ```
    /// use haltstate_authority::{ActionRequest, Authority, GuardRequest};
    /// use haltstate_authority::merkle::verify_inclusion;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let authority = Authority::builder(dir.path().join("haltstate.db"))
    ///     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#)
    ///     .open()?;
    /// for i in 0..5 {
    ///     let request = GuardRequest::new(ActionRequest::new("bot", "export"), format!("export:{i}"));
    ///     authority.guard("acme", request).wait()?;
    /// }
    /// let head = authority.tree_head("acme")?;
    /// assert_eq!(head.size, 5);
    /// let proof = authority.inclusion_proof("acme", 2, head.size)?;
    /// let body = authority.record_body("acme", 3)?;
    /// verify_inclusion(&proof, &head, 2, &body)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tree_head(&self, tenant: &str) -> Result<TreeHead> {
        let size = self.tree_size(tenant)?;
        self.tree_head_at(tenant, size)
    }

    /// The head of `tenant`'s tree of its first `size` records.
    pub fn tree_head_at(&self, tenant: &str, size: u64) -> Result<TreeHead> {
        self.within(tenant, size)?;
        let root = tree::root(&ReadHashes(self.inner.reads.as_ref()), tenant, size)?;
        Ok(TreeHead { size, root })
    }

    /// The proof that leaf `index` (the tenant's record `index + 1`) is in its tree of `size` records.
    pub fn inclusion_proof(&self, tenant: &str, index: u64, size: u64) -> Result<Vec<[u8; 32]>> {
        self.within(tenant, size)?;
        if index >= size {
            return Err(crate::RequestError::Invalid(format!(
                "leaf {index} is not in a tree of {size}"
            ))
            .into());
        }
        self.stored_inclusion(tenant, index, size)
    }

    /// [`inclusion_proof`](Self::inclusion_proof) for a size the caller has checked (see `within`): many proofs
    /// of one tree read the log's size once.
    pub(super) fn stored_inclusion(
        &self,
        tenant: &str,
        index: u64,
        size: u64,
    ) -> Result<Vec<[u8; 32]>> {
        tree::inclusion(&ReadHashes::of(self), tenant, size, index)
    }

    /// The proof that `tenant`'s tree of `new` records extends its tree of `old` records.
    pub fn consistency_proof(&self, tenant: &str, old: u64, new: u64) -> Result<Vec<[u8; 32]>> {
        self.within(tenant, new)?;
        if old > new {
            return Err(crate::RequestError::Invalid(format!(
                "a tree of {old} does not precede one of {new}"
            ))
            .into());
        }
        tree::consistency(&ReadHashes(self.inner.reads.as_ref()), tenant, old, new)
    }

    /// The canonical body of the tenant's record `seq` (a leaf of its tree).
    pub fn record_body(&self, tenant: &str, seq: u64) -> Result<Vec<u8>> {
        let query = haltstate_types::EvidenceQuery {
            after_seq: Some(seq.saturating_sub(1)),
            limit: Some(1),
            ..haltstate_types::EvidenceQuery::default()
        };
        let record = self
            .evidence(tenant, &query)?
            .into_iter()
            .find(|r| r.seq == seq)
            .ok_or_else(|| {
                crate::RequestError::Invalid(format!("tenant {tenant} has no record {seq}"))
            })?;
        record
            .canonical_bytes()
            .map_err(|e| AuthorityError::Corrupt(format!("record {seq} does not serialize: {e}")))
    }
}
