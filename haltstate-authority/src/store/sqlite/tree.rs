//! The tenants' Merkle trees in SQLite (`store/tree.rs`): stored hashes read and written on one connection (the
//! writer's transaction, or a reader), and the trees of a ledger from before schema 16 built once its chains verify.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::held::Prepare;
use crate::error::{AuthorityError, Result};
use crate::store::sql::{TREE_READ, TREE_WRITE};
use crate::store::tree::{self, HashStore};

/// A connection's view of the stored hashes (or the writer's batch's, whose statements it holds).
pub(crate) struct SqliteHashes<'c, P: Prepare + ?Sized = Connection>(pub(crate) &'c P);

fn index(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl<P: Prepare + ?Sized> HashStore for SqliteHashes<'_, P> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        self.0.with(TREE_READ, |statement| {
            indexes
                .iter()
                .map(|i| {
                    let bytes: Option<Vec<u8>> = statement
                        .query_row(params![tenant, index(*i)], |row| row.get(0))
                        .optional()?;
                    let bytes = bytes.ok_or_else(|| {
                        AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"))
                    })?;
                    tree::hash_of(&bytes)
                })
                .collect()
        })
    }

    fn write(&self, tenant: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()> {
        self.0.with(TREE_WRITE, |statement| {
            for (offset, hash) in hashes.iter().enumerate() {
                statement.execute(params![
                    tenant,
                    index(start + offset as u64),
                    hash.as_slice()
                ])?;
            }
            Ok(())
        })
    }
}

/// Schema 16: every tenant's tree from its chain, after the chains verify (a broken chain stops the migration:
/// a tree must not sign what the chain cannot vouch for).
pub(crate) fn build_all(tx: &Transaction<'_>) -> Result<()> {
    super::verify::verify(tx)?;
    let store = SqliteHashes::<Connection>(tx);
    let mut statement = tx.prepare("SELECT tenant, seq, body FROM ledger ORDER BY tenant, seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let tenant: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let body: Vec<u8> = row.get(2)?;
        let leaf = u64::try_from(seq - 1)
            .map_err(|_| AuthorityError::Corrupt(format!("tenant {tenant}: record {seq}")))?;
        tree::append(&store, &tenant, leaf, &body)?;
    }
    Ok(())
}
