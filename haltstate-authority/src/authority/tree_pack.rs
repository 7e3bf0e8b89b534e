//! Proof packs of exactly what was asked (each record with its inclusion proof against a signed tree head), each
//! tenant's log name, and witnesses' cosignatures kept with the heads they cosigned.

use base64::Engine;

use haltstate_types::proof::{
    IncludedRecord, PACK_FORMAT, ProofPack, add_signatures, log_origin, note_origin, proof_record,
};

use super::{Authority, ProofSelection};
use crate::error::{AuthorityError, Result};

impl Authority {
    /// The name of `tenant`'s log: the origin line of its signed tree heads (`<prefix>/<tenant>`, see
    /// [`AuthorityBuilder::log_origin_prefix`](super::AuthorityBuilder::log_origin_prefix)).
    pub fn log_origin(&self, tenant: &str) -> String {
        log_origin(&self.inner.log_prefix, tenant)
    }

    /// A proof pack of the tenant's records that `selection` picks: those records and nothing else, each with
    /// its canonical bytes and the proof that it is in the tree of the first stored signed tree head that covers
    /// the last of them ([`AuthorityError::NotCheckpointed`] when none does yet). The same records give the same
    /// pack, signed by the key that signed then.
    ///
    /// ```
    /// use haltstate_authority::{ActionRequest, Authority, GuardRequest, ProofSelection, SigningKey};
    /// use haltstate_authority::proof::verify;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let authority = Authority::builder(dir.path().join("haltstate.db"))
    ///     .policy_source("p.cedar", r#"@id("all") permit(principal, action, resource);"#)
    ///     .open()?;
    /// for key in ["refund:1", "refund:2", "refund:3"] {
    ///     let request = GuardRequest::new(ActionRequest::new("billing", "refund.create"), key);
    ///     authority.guard("acme", request).wait()?;
    /// }
    /// let signing = SigningKey::generate();
    /// authority.checkpoint(&signing)?;
    /// let selection = ProofSelection { key: Some("refund:2".into()), ..ProofSelection::default() };
    /// let pack = authority.proof_pack("acme", &selection)?;
    /// assert_eq!(pack.records.len(), 1);
    /// assert_eq!(verify(&pack, &signing.public())?.tree_size, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proof_pack(&self, tenant: &str, selection: &ProofSelection) -> Result<ProofPack> {
        let records = self.selected(tenant, selection)?;
        let Some(last) = records.last() else {
            return Err(AuthorityError::invalid(format!(
                "tenant {tenant} has no records of that selection"
            )));
        };
        let last_seq = last.record.seq;
        let not_covered = || AuthorityError::NotCheckpointed {
            tenant: tenant.to_owned(),
            seq: last_seq,
        };
        let signed = self
            .inner
            .reads
            .tree_checkpoint_from(tenant, last_seq)?
            .ok_or_else(not_covered)?;
        let size = signed.checkpoint.seq;
        let note = signed.tree.ok_or_else(not_covered)?;
        let origin = note_origin(&note)
            .ok_or_else(|| AuthorityError::Corrupt(format!("tenant {tenant}'s stored tree head")))?
            .to_owned();
        self.within(tenant, size)?;
        let mut included = Vec::with_capacity(records.len());
        for chained in records {
            let seq = chained.record.seq;
            let body = chained
                .record
                .canonical_bytes()
                .map_err(|e| AuthorityError::Corrupt(e.to_string()))?;
            let proof = self.stored_inclusion(tenant, seq - 1, size)?;
            included.push(IncludedRecord {
                record: proof_record(&chained.record, &chained.hash),
                prev_hash: chained.prev_hash,
                body: String::from_utf8(body)
                    .map_err(|e| AuthorityError::Corrupt(e.to_string()))?,
                inclusion: proof
                    .iter()
                    .map(|hash| base64::engine::general_purpose::STANDARD.encode(hash))
                    .collect(),
            });
        }
        Ok(ProofPack {
            format: PACK_FORMAT.to_owned(),
            tenant: tenant.to_owned(),
            origin,
            checkpoint: note,
            records: included,
        })
    }

    /// Adds witnesses' cosignature `lines` to the stored tree head of `tenant` at `size` signed by the key
    /// `key_id`, and answers the note as now stored. The lines are kept as given (well-formed, one per witness
    /// key): verifiers check the witnesses they trust.
    pub fn add_cosignatures(
        &self,
        tenant: &str,
        size: u64,
        key_id: &str,
        lines: &str,
    ) -> Result<String> {
        let note = self
            .inner
            .reads
            .tree_note(tenant, size, key_id)?
            .ok_or_else(|| {
                AuthorityError::invalid(format!(
                    "tenant {tenant} has no signed tree head of size {size} by key {key_id}"
                ))
            })?;
        let cosigned = add_signatures(&note, lines)
            .map_err(|e| AuthorityError::invalid(format!("cosignatures: {e}")))?;
        if cosigned != note {
            let (stored, key_id) = (cosigned.clone(), key_id.to_owned());
            self.submit(tenant.to_owned(), move |tx, tenant| {
                tx.set_tree_note(tenant, size, &key_id, &stored)
            })
            .wait()?;
        }
        Ok(cosigned)
    }

    /// The newest stored signed tree head of `tenant` (with any cosignatures), if its newest checkpoint has one.
    pub fn newest_tree_head(&self, tenant: &str) -> Result<Option<String>> {
        Ok(self
            .inner
            .reads
            .checkpoint_from(tenant, u64::MAX)?
            .and_then(|c| c.tree))
    }
}
