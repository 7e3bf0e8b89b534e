//! The tenants' Merkle trees in SQLite (`store/tree.rs`): each record's row holds the hashes its append stored
//! (schema 24), read on one connection (the writer's transaction, or a reader).
//!
//! They were rows of their own before (`tlog_hashes`, `tree_legacy.rs`), ordered by tenant and index: appended in
//! order, yet SQLite rebalances an index B-tree's last three leaves whenever the last one fills, so with many
//! callers each commit rewrote three or four of that table's pages for about half a page of hashes (~12% of a
//! commit's WAL frames, `examples/wal_pages.rs`), and each hash was an INSERT of its own. In the record's row they
//! add ~64 bytes to a row the commit writes anyway.

use rusqlite::{Connection, OptionalExtension, params};

use super::held::Prepare;
use crate::error::{AuthorityError, Result};
use crate::store::tree::{self, HashStore};

/// Hash `?3` (1-based byte offset) of the hashes record `?2` of tenant `?1` stored.
const TREE_READ: &str = "SELECT substr(tree, ?3, 32) FROM ledger WHERE tenant = ?1 AND seq = ?2";

/// A connection's view of the stored hashes (or the writer's batch's, whose statements it holds).
pub(crate) struct SqliteHashes<'c, P: Prepare + ?Sized = Connection>(pub(crate) &'c P);

/// Record `seq` and the byte offset (1-based, for `substr`) of stored hash `index` in its row.
fn place(index: u64) -> Option<(i64, i64)> {
    let (leaf, level) = tree::stored_by(index)?;
    let seq = i64::try_from(leaf.checked_add(1)?).ok()?;
    Some((seq, i64::from(level) * 32 + 1))
}

impl<P: Prepare + ?Sized> HashStore for SqliteHashes<'_, P> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let missing =
            |i: u64| AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"));
        self.0.with(TREE_READ, |statement| {
            indexes
                .iter()
                .map(|&i| {
                    let (seq, offset) = place(i).ok_or_else(|| missing(i))?;
                    let bytes: Option<Vec<u8>> = statement
                        .query_row(params![tenant, seq, offset], |row| row.get(0))
                        .optional()?
                        .flatten();
                    // A row without the hash (its tree is NULL or shorter) reads as an empty blob or NULL.
                    match bytes {
                        Some(bytes) if bytes.len() == 32 => tree::hash_of(&bytes),
                        _ => Err(missing(i)),
                    }
                })
                .collect()
        })
    }
}

/// Every stored hash of every tenant, as `(tenant, index, hash)`, record by record (for a copy into a store that
/// keeps one row per hash). A record whose row holds no hashes (a damaged tree) gives none.
#[cfg(feature = "postgres")]
pub(crate) fn each_stored_hash(
    conn: &Connection,
    mut each: impl FnMut(&str, u64, &[u8; 32]) -> Result<()>,
) -> Result<()> {
    let mut statement =
        conn.prepare("SELECT tenant, seq, tree FROM ledger WHERE tree IS NOT NULL")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let (tenant, seq, hashes): (String, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let bad =
            || AuthorityError::Corrupt(format!("tenant {tenant}'s record {seq}: its tree hashes"));
        let leaf = u64::try_from(seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .ok_or_else(bad)?;
        if hashes.len() % 32 != 0 {
            return Err(bad());
        }
        let (chunks, _) = hashes.as_chunks::<32>();
        for (index, hash) in (tlog_tiles::stored_hash_index(0, leaf)..).zip(chunks) {
            each(&tenant, index, hash)?;
        }
    }
    Ok(())
}
