//! Evidence that holds against whoever holds the database: each tenant's chain head signed into a checkpoint
//! (stored, and written outside the database by the caller), the chain checked against checkpoints, and proof
//! packs that verify with the public key alone.

use time::OffsetDateTime;

use haltstate_types::proof::{
    CHAIN_PACK_FORMAT, ChainLink, ChainPack, Checkpoint, SignedCheckpoint, VerifyingKey,
    proof_record,
};
use haltstate_types::{ChainedRecord, EvidenceQuery};

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::signing::SigningKey;
use crate::store::sql::Order;

/// Which records a proof pack proves.
#[derive(Debug, Clone, Default)]
pub struct ProofSelection {
    /// Only this idempotency key's records.
    pub key: Option<String>,
    /// With `key`: only the records of its `generation`-th operation (a `once` key has only the first).
    pub generation: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only records before this time.
    pub until: Option<OffsetDateTime>,
}

impl Authority {
    /// Signs every tenant's chain head that no checkpoint of `key` covers yet, and its tree head at the same
    /// record as a C2SP checkpoint (`SignedCheckpoint::tree`), stores the checkpoints and answers them (for the
    /// caller to write outside the database and hand to witnesses).
    pub fn checkpoint(&self, key: &SigningKey) -> Result<Vec<SignedCheckpoint>> {
        let mut signed = Vec::new();
        for tenant in self.inner.reads.tenants()? {
            let head = self.inner.reads.tenant_head(&tenant)?;
            if head.seq == 0 {
                continue;
            }
            let covered = self
                .inner
                .reads
                .checkpoint_from(&tenant, u64::MAX)?
                .is_some_and(|c| {
                    c.checkpoint.seq == head.seq
                        && c.checkpoint.key_id == key.key_id()
                        && c.tree.is_some()
                });
            if covered {
                continue;
            }
            let tree_head = self.tree_head_at(&tenant, head.seq)?;
            let note =
                crate::tree_checkpoint::sign_tree_head(key, &self.log_origin(&tenant), &tree_head)
                    .map_err(|e| {
                        AuthorityError::Corrupt(format!("cannot sign a tree head: {e}"))
                    })?;
            let mut checkpoint = key
                .sign(Checkpoint {
                    at: self.now(),
                    hash: head.hash,
                    key_id: String::new(),
                    seq: head.seq,
                    tenant: tenant.clone(),
                })
                .map_err(|e| AuthorityError::Corrupt(format!("cannot sign a checkpoint: {e}")))?;
            checkpoint.tree = Some(note);
            let stored = checkpoint.clone();
            self.submit(tenant, move |tx, _| tx.insert_checkpoint(&stored))
                .wait()?;
            signed.push(checkpoint);
        }
        Ok(signed)
    }

    /// The tenant's stored checkpoints, by sequence number.
    pub fn checkpoints(&self, tenant: &str) -> Result<Vec<SignedCheckpoint>> {
        self.inner.reads.checkpoints(tenant)
    }

    /// Checks the chains against `checkpoints` (signed by `key`, kept outside the database): each must verify
    /// and agree with the record it signs. A rewrite of every hash after an edit, or a truncation with the head
    /// moved back, disagrees: refused with [`AuthorityError::CheckpointMismatch`] naming the tenant and the first
    /// record that disagrees. Answers how many checkpoints were checked.
    pub fn verify_checkpoints(
        &self,
        checkpoints: &[SignedCheckpoint],
        key: &VerifyingKey,
    ) -> Result<usize> {
        let mut ordered: Vec<&SignedCheckpoint> = checkpoints.iter().collect();
        ordered.sort_by(|a, b| {
            (&a.checkpoint.tenant, a.checkpoint.seq).cmp(&(&b.checkpoint.tenant, b.checkpoint.seq))
        });
        // Per tenant, the last record a checkpoint vouched for: a change lies after it.
        let mut agreed: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for signed in &ordered {
            let c = &signed.checkpoint;
            let since = agreed.get(c.tenant.as_str()).map_or(1, |seq| seq + 1);
            signed
                .verify(key)
                .map_err(|e| AuthorityError::CheckpointMismatch {
                    tenant: c.tenant.clone(),
                    seq: c.seq,
                    problem: format!("the checkpoint itself does not verify: {e}"),
                })?;
            let record = self.record_at(&c.tenant, c.seq)?;
            let problem = match record {
                None => {
                    let head = self.inner.reads.tenant_head(&c.tenant)?;
                    Some(format!(
                        "missing: the chain ends at record {} but a checkpoint signed at {} covers record {}",
                        head.seq,
                        haltstate_types::timestamp::format_rfc3339(c.at),
                        c.seq
                    ))
                }
                Some(record) if record.hash != c.hash => Some(format!(
                    "its hash {} disagrees with the checkpoint signed at {} ({}): the chain was changed between \
                     record {since} and record {}",
                    record.hash,
                    haltstate_types::timestamp::format_rfc3339(c.at),
                    c.hash,
                    c.seq
                )),
                Some(_) => {
                    agreed.insert(&c.tenant, c.seq);
                    None
                }
            };
            if let Some(problem) = problem {
                return Err(AuthorityError::CheckpointMismatch {
                    tenant: c.tenant.clone(),
                    seq: c.seq,
                    problem,
                });
            }
        }
        Ok(ordered.len())
    }

    /// The record at `seq` of the tenant's chain, with its links.
    fn record_at(&self, tenant: &str, seq: u64) -> Result<Option<ChainedRecord>> {
        let found = self.inner.reads.chained_evidence(
            tenant,
            &EvidenceQuery {
                after_seq: seq.checked_sub(1),
                limit: Some(1),
                ..EvidenceQuery::default()
            },
            Order::OldestFirst,
        )?;
        Ok(found.into_iter().next().filter(|r| r.record.seq == seq))
    }

    /// A chain pack (the first proof pack format) of the tenant's records that `selection` picks: the records,
    /// the chain from the first of them to the first stored checkpoint covering the last (every record between,
    /// whoever's), and that checkpoint. [`Authority::proof_pack`] proves the same records with nothing else.
    pub fn chain_proof_pack(&self, tenant: &str, selection: &ProofSelection) -> Result<ChainPack> {
        let records = self.selected(tenant, selection)?;
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Err(AuthorityError::invalid(format!(
                "tenant {tenant} has no records of that selection"
            )));
        };
        let (first_seq, last_seq) = (first.record.seq, last.record.seq);
        let checkpoint = self
            .inner
            .reads
            .checkpoint_from(tenant, last_seq)?
            .ok_or_else(|| AuthorityError::NotCheckpointed {
                tenant: tenant.to_owned(),
                seq: last_seq,
            })?;
        let chain = self.all_chained(
            tenant,
            EvidenceQuery {
                after_seq: first_seq.checked_sub(1),
                ..EvidenceQuery::default()
            },
        )?;
        let mut links = Vec::with_capacity(chain.len());
        for chained in chain
            .into_iter()
            .take_while(|c| c.record.seq <= checkpoint.checkpoint.seq)
        {
            let body = chained
                .record
                .canonical_bytes()
                .map_err(|e| AuthorityError::Corrupt(e.to_string()))?;
            links.push(ChainLink {
                seq: chained.record.seq,
                prev_hash: chained.prev_hash,
                hash: chained.hash,
                body: String::from_utf8(body)
                    .map_err(|e| AuthorityError::Corrupt(e.to_string()))?,
            });
        }
        Ok(ChainPack {
            format: CHAIN_PACK_FORMAT.to_owned(),
            tenant: tenant.to_owned(),
            records: records
                .iter()
                .map(|c| proof_record(&c.record, &c.hash))
                .collect(),
            chain: links,
            checkpoint,
        })
    }

    /// The records of `tenant` that `selection` picks, with their links (possibly none).
    pub(super) fn selected(
        &self,
        tenant: &str,
        selection: &ProofSelection,
    ) -> Result<Vec<ChainedRecord>> {
        let query = EvidenceQuery {
            idempotency_key: selection.key.clone(),
            from: selection.since,
            to: selection.until,
            ..EvidenceQuery::default()
        };
        if selection.generation.is_some() && selection.key.is_none() {
            return Err(AuthorityError::invalid(
                "a proof pack of one operation names its idempotency key",
            ));
        }
        let mut records = self.all_chained(tenant, query)?;
        if let Some(generation) = selection.generation {
            records.retain(|c| c.record.generation.unwrap_or(1) == generation);
        }
        Ok(records)
    }

    /// Every record of `tenant` that `query` matches (its `after_seq` as the start).
    fn all_chained(&self, tenant: &str, query: EvidenceQuery) -> Result<Vec<ChainedRecord>> {
        let mut all = Vec::new();
        self.each_chained(tenant, query, |chained| {
            all.push(chained);
            Ok(())
        })?;
        Ok(all)
    }
}
