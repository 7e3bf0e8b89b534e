//! Each tenant's ledger as a Merkle tree (RFC 9162 hashing: leaves and interior nodes domain-separated), kept by
//! the writer as records are appended: every complete subtree's hash is stored once (`tlog_hashes`, in the layout
//! of Go's `sumdb/tlog`, through the `tlog_tiles` crate), so the root of any size, the proof that a record is in
//! the tree and the proof that a later tree extends an earlier one each read `O(log n)` hashes, never every leaf.
//!
//! A leaf is a record's canonical body (what its chain hash covers); leaf `i` is the tenant's record `i + 1`.

use tlog_tiles::{Hash, HashReader};

use crate::error::{AuthorityError, Result};

/// Where a tenant's stored hashes are read and written.
pub(crate) trait HashStore {
    /// The stored hashes at `indexes` (every one must exist).
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>>;
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
pub(crate) fn append<S: HashStore + ?Sized>(
    store: &S,
    tenant: &str,
    index: u64,
    body: &[u8],
) -> Result<()> {
    let reader = Reader { store, tenant };
    let hashes =
        tlog_tiles::stored_hashes(index, body, &reader).map_err(|e| tree_error(tenant, &e))?;
    let start = tlog_tiles::stored_hash_index(0, index);
    let raw: Vec<[u8; 32]> = hashes.into_iter().map(|hash| hash.0).collect();
    store.write(tenant, start, &raw)
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
