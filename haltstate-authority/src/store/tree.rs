//! Each tenant's ledger as a Merkle tree (RFC 9162 hashing: leaves and interior nodes domain-separated), kept by
//! the writer as records are appended: every complete subtree's hash is stored once (in the layout of Go's
//! `sumdb/tlog`, through the `tlog_tiles` crate), so the root of any size, the proof that a record is in the tree
//! and the proof that a later tree extends an earlier one each read `O(log n)` hashes, never every leaf.
//! PostgreSQL stores them in `tlog_hashes`, one row per hash; SQLite in the row of the record whose append made
//! them (schema 24, [`stored_by`]).
//!
//! A leaf is a record's canonical body (what its chain hash covers); leaf `i` is the tenant's record `i + 1`.

use tlog_tiles::{Hash, HashReader};

use crate::error::{AuthorityError, Result};

/// Where a tenant's stored hashes are read.
pub(crate) trait HashStore {
    /// The stored hashes at `indexes` (every one must exist).
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>>;
}

/// A store that takes hashes on their own, for [`append`]: a tree built from its chain. The writers store an
/// append's hashes with its record ([`new_hashes`]).
pub(crate) trait HashWriter: HashStore {
    /// Stores `hashes` at consecutive indexes from `start`.
    fn write(&self, tenant: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()>;
}

/// A store seen as `tlog_tiles` reads it, for one tenant.
pub(crate) struct Reader<'a, S: ?Sized> {
    pub(crate) store: &'a S,
    pub(crate) tenant: &'a str,
}

impl<S: HashStore + ?Sized> HashReader for Reader<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<Hash>, tlog_tiles::Error> {
        match self.store.read(self.tenant, indexes) {
            Ok(hashes) if hashes.len() == indexes.len() => {
                Ok(hashes.into_iter().map(Hash).collect())
            }
            _ => Err(tlog_tiles::Error::IndexesNotInTree),
        }
    }
}

fn tree_error(tenant: &str, error: &tlog_tiles::Error) -> AuthorityError {
    AuthorityError::Corrupt(format!("tenant {tenant}'s Merkle tree: {error}"))
}

/// Adds leaf `index` (the record's canonical `body`) to the tenant's tree: the leaf's hash and every subtree it
/// completes.
pub(crate) fn append<S: HashWriter + ?Sized>(
    store: &S,
    tenant: &str,
    index: u64,
    body: &[u8],
) -> Result<()> {
    let (start, hashes) = new_hashes(store, tenant, index, body)?;
    store.write(tenant, start, &hashes)
}

/// What appending leaf `index` stores: the leaf's hash and every subtree it completes, from the stored index
/// of the first (for a backend that writes them in one statement with the record).
pub(crate) fn new_hashes<S: HashStore + ?Sized>(
    store: &S,
    tenant: &str,
    index: u64,
    body: &[u8],
) -> Result<(u64, Vec<[u8; 32]>)> {
    let reader = Reader { store, tenant };
    let hashes =
        tlog_tiles::stored_hashes(index, body, &reader).map_err(|e| tree_error(tenant, &e))?;
    let start = tlog_tiles::stored_hash_index(0, index);
    Ok((start, hashes.into_iter().map(|hash| hash.0).collect()))
}

/// The leaf whose append stored hash `index`, and the hash's place among the hashes that append stored (its
/// level: the leaf's own hash first, then each subtree it completed, smallest first). `None` for an index no
/// ledger reaches: `split_stored_hash_index` panics near `u64::MAX`, and below 2^62 it cannot (a tree of 2^61
/// leaves stores fewer hashes; a record's `seq` is an `i64`).
pub(crate) fn stored_by(index: u64) -> Option<(u64, u8)> {
    if index >= 1 << 62 {
        return None;
    }
    let (level, n) = tlog_tiles::split_stored_hash_index(index);
    // Subtree `n` of `level` is complete once its last leaf, `(n + 1) * 2^level - 1`, is appended.
    let leaf = n
        .checked_add(1)?
        .checked_mul(1u64.checked_shl(u32::from(level))?)?
        - 1;
    Some((leaf, level))
}

/// The root of the tenant's tree of its first `size` records.
pub(crate) fn root<S: HashStore + ?Sized>(store: &S, tenant: &str, size: u64) -> Result<[u8; 32]> {
    if size == 0 {
        return Ok(tlog_tiles::EMPTY_HASH.0);
    }
    tlog_tiles::tree_hash(size, &Reader { store, tenant })
        .map(|hash| hash.0)
        .map_err(|e| tree_error(tenant, &e))
}

/// The proof that leaf `index` is in the tree of `size` leaves.
pub(crate) fn inclusion<S: HashStore + ?Sized>(
    store: &S,
    tenant: &str,
    size: u64,
    index: u64,
) -> Result<Vec<[u8; 32]>> {
    tlog_tiles::prove_record(size, index, &Reader { store, tenant })
        .map(|proof| proof.into_iter().map(|hash| hash.0).collect())
        .map_err(|e| tree_error(tenant, &e))
}

/// The proof that the tree of `new` leaves extends the tree of `old` leaves.
pub(crate) fn consistency<S: HashStore + ?Sized>(
    store: &S,
    tenant: &str,
    old: u64,
    new: u64,
) -> Result<Vec<[u8; 32]>> {
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    tlog_tiles::prove_tree(new, old, &Reader { store, tenant })
        .map(|proof| proof.into_iter().map(|hash| hash.0).collect())
        .map_err(|e| tree_error(tenant, &e))
}

/// The stored hashes of leaves `first..first + count` (what the tree says each record's bytes hash to).
pub(crate) fn leaf_hashes<S: HashStore + ?Sized>(
    store: &S,
    tenant: &str,
    first: u64,
    count: u64,
) -> Result<Vec<[u8; 32]>> {
    let indexes: Vec<u64> = (first..first + count)
        .map(|leaf| tlog_tiles::stored_hash_index(0, leaf))
        .collect();
    store.read(tenant, &indexes)
}

/// The hash a leaf of `body` has.
pub(crate) fn leaf_hash(body: &[u8]) -> [u8; 32] {
    tlog_tiles::record_hash(body).0
}

/// Hashes from stored bytes (a BLOB of 32 bytes); anything else is corruption.
pub(crate) fn hash_of(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| {
        AuthorityError::Corrupt(format!("a stored tree hash of {} bytes", bytes.len()))
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Memory(RefCell<HashMap<u64, [u8; 32]>>);

    impl HashStore for Memory {
        fn read(&self, _: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
            let stored = self.0.borrow();
            indexes
                .iter()
                .map(|i| {
                    stored
                        .get(i)
                        .copied()
                        .ok_or_else(|| AuthorityError::Corrupt(format!("no hash {i}")))
                })
                .collect()
        }
    }

    impl HashWriter for Memory {
        fn write(&self, _: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()> {
            let mut stored = self.0.borrow_mut();
            for (offset, hash) in hashes.iter().enumerate() {
                stored.insert(start + offset as u64, *hash);
            }
            Ok(())
        }
    }

    /// Every hash an append stores is found again from its index: the appending leaf, and its place.
    #[test]
    fn a_stored_hash_names_the_append_that_stored_it() {
        let store = Memory::default();
        for leaf in 0..1100u64 {
            let (start, hashes) = new_hashes(&store, "t", leaf, &leaf.to_be_bytes()).unwrap();
            assert_eq!(hashes.len() as u32, 1 + leaf.trailing_ones());
            for (place, hash) in hashes.iter().enumerate() {
                assert_eq!(stored_by(start + place as u64), Some((leaf, place as u8)));
                store.write("t", start + place as u64, &[*hash]).unwrap();
            }
        }
        assert_eq!(stored_by(u64::MAX), None);
        assert_eq!(stored_by(1 << 62), None);
        let last = (1 << 62) - 1;
        let (leaf, level) = stored_by(last).unwrap();
        assert_eq!(tlog_tiles::stored_hash_index(level, leaf >> level), last);
    }

    /// The roots of the RFC 6962 test vectors' trees (transparency-dev/merkle's `testonly`), of every size, from
    /// the hashes the writer stores.
    #[test]
    fn the_stored_tree_has_the_rfc_6962_roots() {
        let leaves = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let roots = [
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
        let store = Memory::default();
        assert_eq!(hex::encode(root(&store, "t", 0).unwrap()), roots[0]);
        for (index, leaf) in leaves.iter().enumerate() {
            append(&store, "t", index as u64, &hex::decode(leaf).unwrap()).unwrap();
            for size in 1..=index as u64 + 1 {
                assert_eq!(
                    hex::encode(root(&store, "t", size).unwrap()),
                    roots[size as usize],
                    "size {size}"
                );
            }
        }
        // And the proofs the vectors publish: record 6's inclusion in 8, and 2 -> 5.
        let hexes = |proof: Vec<[u8; 32]>| proof.iter().map(hex::encode).collect::<Vec<_>>();
        let proof = hexes(inclusion(&store, "t", 8, 5).unwrap());
        assert_eq!(
            proof,
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        let proof = hexes(consistency(&store, "t", 2, 5).unwrap());
        assert_eq!(
            proof,
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
    }
}
