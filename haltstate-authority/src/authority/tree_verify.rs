//! Checking each tenant's Merkle tree against signed tree heads kept outside the database: every head must verify
//! and be the database's tree at its size, and each must extend the one before. A forged record is named: the
//! first whose leaf is not in the signed tree.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use haltstate_types::EvidenceQuery;
use haltstate_types::proof::{
    SignedCheckpoint, TreeHead, VerifyingKey, note_origin, origin_names_tenant, verify_consistency,
    verify_inclusion, verify_tree_head,
};
use haltstate_types::timestamp::format_rfc3339;

use super::Authority;
use crate::error::{AuthorityError, Result};
use crate::store::tree;

/// A signed tree head, verified, and when it was signed.
struct Signed {
    head: TreeHead,
    at: time::OffsetDateTime,
}

impl Authority {
    /// Checks the tenants' trees against the signed tree heads among `checkpoints` (signed by `key`, kept outside
    /// the database; checkpoints without one are skipped). Each head must verify under its tenant's log name and
    /// be the database's tree at its size, and the heads of a tenant must each extend the one before. Refused
    /// with [`AuthorityError::CheckpointMismatch`]: on a forged record, it names the first record whose leaf is
    /// not in the signed tree (when the stored tree was rewritten as well, the span of records the change lies
    /// in). Answers how many tree heads were checked.
    pub fn verify_tree_checkpoints(
        &self,
        checkpoints: &[SignedCheckpoint],
        key: &VerifyingKey,
    ) -> Result<usize> {
        let mut by_tenant: BTreeMap<&str, BTreeMap<u64, Signed>> = BTreeMap::new();
        for signed in checkpoints {
            let (c, Some(note)) = (&signed.checkpoint, &signed.tree) else {
                continue;
            };
            let mismatch = |problem: String| AuthorityError::CheckpointMismatch {
                tenant: c.tenant.clone(),
                seq: c.seq,
                problem,
            };
            let origin = note_origin(note)
                .filter(|origin| origin_names_tenant(origin, &c.tenant))
                .ok_or_else(|| mismatch("its tree head names another log".into()))?;
            let head = verify_tree_head(note, origin, key).map_err(|e| {
                mismatch(format!("the signed tree head itself does not verify: {e}"))
            })?;
            if head.size != c.seq {
                return Err(mismatch(format!(
                    "its tree head is of {} records, not {}",
                    head.size, c.seq
                )));
            }
            let heads = by_tenant.entry(&c.tenant).or_default();
            if let Some(other) = heads.get(&head.size)
                && other.head != head
            {
                return Err(mismatch(format!(
                    "two signed tree heads of {} records disagree: the log was forked",
                    head.size
                )));
            }
            heads.insert(head.size, Signed { head, at: c.at });
        }
        let mut checked = 0;
        for (tenant, heads) in by_tenant {
            let size = self.tenant_head(tenant)?.seq;
            let mut agreed = TreeHead {
                size: 0,
                root: self.tree_head_at(tenant, 0)?.root,
            };
            for signed in heads.values() {
                let head = &signed.head;
                let when = format_rfc3339(signed.at);
                let mismatch = |seq: u64, problem: String| AuthorityError::CheckpointMismatch {
                    tenant: tenant.to_owned(),
                    seq,
                    problem,
                };
                if head.size > size {
                    return Err(mismatch(
                        head.size,
                        format!(
                            "missing: the log holds {size} records but a tree head signed at {when} covers {}",
                            head.size
                        ),
                    ));
                }
                // A stored tree with hashes missing is as broken as one with hashes changed.
                let damaged = |error: AuthorityError| match error {
                    AuthorityError::Corrupt(why) => {
                        mismatch(head.size, format!("the stored tree is damaged: {why}"))
                    }
                    other => other,
                };
                let stored = self.tree_head_at(tenant, head.size).map_err(damaged)?;
                if stored.root != head.root {
                    return Err(self.first_leaf_not_in(tenant, head, agreed.size, &when)?);
                }
                let proof = self
                    .consistency_proof(tenant, agreed.size, head.size)
                    .map_err(damaged)?;
                verify_consistency(&proof, &agreed, head).map_err(|e| {
                    mismatch(
                        head.size,
                        format!(
                            "the tree head signed at {when} does not extend the one before: {e}"
                        ),
                    )
                })?;
                agreed = *head;
                checked += 1;
            }
            // The stored tree is the signed one: each record's bytes must be the leaf it holds.
            self.leaves_are_records(tenant, &agreed)?;
        }
        Ok(checked)
    }

    /// Checks that records `1..=head.size` are the leaves the stored tree (whose root is `head`'s) holds: a
    /// record edited in place, even with the chain recomputed, is named.
    fn leaves_are_records(&self, tenant: &str, head: &TreeHead) -> Result<()> {
        let store = super::merkle::ReadHashes::of(self);
        let from_start = EvidenceQuery {
            after_seq: Some(0),
            ..EvidenceQuery::default()
        };
        self.each_chained_while(tenant, from_start, |chained| {
            let seq = chained.record.seq;
            if seq > head.size {
                return Ok(ControlFlow::Break(()));
            }
            let body = chained
                .record
                .canonical_bytes()
                .map_err(|e| AuthorityError::Corrupt(e.to_string()))?;
            if tree::leaf_hashes(&store, tenant, seq - 1, 1)? != [tree::leaf_hash(&body)] {
                return Err(AuthorityError::CheckpointMismatch {
                    tenant: tenant.to_owned(),
                    seq,
                    problem: format!(
                        "its leaf is not in the signed tree of {} records: record {seq} was changed",
                        head.size
                    ),
                });
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// The error naming the first record after `after` whose leaf is not in the signed tree `head` (each
    /// record's inclusion proof from the stored tree, checked against the signed root).
    fn first_leaf_not_in(
        &self,
        tenant: &str,
        head: &TreeHead,
        after: u64,
        when: &str,
    ) -> Result<AuthorityError> {
        let mut first_out = None;
        let mut any_in = false;
        let since = EvidenceQuery {
            after_seq: Some(after),
            ..EvidenceQuery::default()
        };
        // Every leaf up to the first out of the tree and one in it (then the stored tree is the signed one, and
        // that first one is the changed record), or to the head's size.
        self.each_chained_while(tenant, since, |chained| {
            let seq = chained.record.seq;
            if seq > head.size || (first_out.is_some() && any_in) {
                return Ok(ControlFlow::Break(()));
            }
            let body = chained
                .record
                .canonical_bytes()
                .map_err(|e| AuthorityError::Corrupt(e.to_string()))?;
            let proof = self.stored_inclusion(tenant, seq - 1, head.size)?;
            if verify_inclusion(&proof, head, seq - 1, &body).is_ok() {
                any_in = true;
            } else if first_out.is_none() {
                first_out = Some(seq);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        let span = format!("records {} to {}", after + 1, head.size);
        Ok(AuthorityError::CheckpointMismatch {
            tenant: tenant.to_owned(),
            seq: first_out.unwrap_or(after + 1),
            problem: match first_out {
                Some(seq) if any_in || after + 1 == head.size => format!(
                    "its leaf is not in the tree of {} records signed at {when}: record {seq} was changed",
                    head.size
                ),
                _ => format!(
                    "the database's tree of {} records is not the one signed at {when}, and none of {span} is \
                     proven in the signed tree (the stored tree was rewritten too): the change lies in {span}",
                    head.size
                ),
            },
        })
    }
}
