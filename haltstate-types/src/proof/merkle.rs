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

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str) -> [u8; 32] {
        hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .unwrap_or_else(|| panic!("{text}"))
    }

    /// The RFC 6962 test vectors (Certificate Transparency; transparency-dev/merkle's `testonly`): the leaves,
    /// the root of each size, proofs of inclusion and of consistency.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn head(size: u64) -> TreeHead {
        TreeHead {
            size,
            root: hash(ROOTS[size as usize]),
        }
    }

    fn leaf(index: usize) -> Vec<u8> {
        hex::decode(LEAVES[index]).unwrap_or_default()
    }

    #[test]
    fn the_rfc_6962_inclusion_vectors_verify_and_edited_ones_do_not() {
        let vectors: [(u64, [&str; 3]); 2] = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, proof) in vectors {
            let proof: Vec<[u8; 32]> = proof.iter().map(|h| hash(h)).collect();
            let body = leaf(index as usize);
            assert_eq!(verify_inclusion(&proof, &head(8), index, &body), Ok(()));
            let mut edited = proof.clone();
            edited[1][0] ^= 1;
            assert!(verify_inclusion(&edited, &head(8), index, &body).is_err());
            assert!(verify_inclusion(&proof, &head(8), index + 1, &body).is_err());
            assert!(verify_inclusion(&proof, &head(7), index, &body).is_err());
        }
    }

    #[test]
    fn the_rfc_6962_consistency_vectors_verify_and_edited_ones_do_not() {
        let vectors: [(u64, u64, &[&str]); 2] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, proof) in vectors {
            let proof: Vec<[u8; 32]> = proof.iter().map(|h| hash(h)).collect();
            assert_eq!(verify_consistency(&proof, &head(old), &head(new)), Ok(()));
            let mut edited = proof.clone();
            edited[0][31] ^= 1;
            assert!(verify_consistency(&edited, &head(old), &head(new)).is_err());
            assert!(verify_consistency(&proof, &head(old + 1), &head(new)).is_err());
        }
        // Every tree extends the empty one and itself, with no proof.
        assert_eq!(verify_consistency(&[], &head(0), &head(8)), Ok(()));
        assert_eq!(verify_consistency(&[], &head(8), &head(8)), Ok(()));
        assert!(verify_consistency(&[], &head(8), &head(7)).is_err());
    }
}
