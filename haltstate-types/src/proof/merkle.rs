//! Checking a tenant's Merkle tree from outside: a tree head (size and root), the proof that a record is in it
//! and the proof that a later head extends an earlier one, with RFC 9162 hashing (`tlog_tiles`, a port of Go's
//! `sumdb/tlog`). Leaf `i` is the canonical body of the tenant's record `i + 1`.

use super::ProofError;

/// A tree's size (records) and root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// How many records the tree holds.
    pub size: u64,
    /// Its root: SHA-256, leaves and nodes domain-separated.
    pub root: [u8; 32],
}

fn hashes(proof: &[[u8; 32]]) -> Vec<tlog_tiles::Hash> {
    proof.iter().copied().map(tlog_tiles::Hash).collect()
}

/// Checks that `body` is leaf `index` of the tree `head` names.
pub fn verify_inclusion(
    proof: &[[u8; 32]],
    head: &TreeHead,
    index: u64,
    body: &[u8],
) -> Result<(), ProofError> {
    let leaf = tlog_tiles::record_hash(body);
    if index >= head.size {
        return Err(ProofError::NotIncluded {
            index,
            size: head.size,
        });
    }
    tlog_tiles::check_record(
        &hashes(proof),
        head.size,
        tlog_tiles::Hash(head.root),
        index,
        leaf,
    )
    .map_err(|_| ProofError::NotIncluded {
        index,
        size: head.size,
    })
}

/// Checks that the tree `new` names extends the tree `old` names.
pub fn verify_consistency(
    proof: &[[u8; 32]],
    old: &TreeHead,
    new: &TreeHead,
) -> Result<(), ProofError> {
    let refused = ProofError::NotConsistent {
        old: old.size,
        new: new.size,
    };
    if old.size > new.size {
        return Err(refused);
    }
    if old.size == new.size {
        return if old.root == new.root && proof.is_empty() {
            Ok(())
        } else {
            Err(refused)
        };
    }
    if old.size == 0 {
        // Every tree extends the empty one, whose root is the hash of nothing.
        return if old.root == tlog_tiles::EMPTY_HASH.0 && proof.is_empty() {
            Ok(())
        } else {
            Err(refused)
        };
    }
    tlog_tiles::check_tree(
        &hashes(proof),
        new.size,
        tlog_tiles::Hash(new.root),
        old.size,
        tlog_tiles::Hash(old.root),
    )
    .map_err(|_| refused)
}
