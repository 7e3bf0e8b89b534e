//! The Merkle trees as schemas 16 to 23 stored them, one row per hash in `tlog_hashes`: built from the chains at
//! schema 17, moved into the records' rows at schema 24 (`tree.rs` says why).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::columns::ledger_has_column;
use crate::error::{AuthorityError, Result};
use crate::store::tree::{self, HashStore, HashWriter};

/// The `tlog_hashes` table, on the migration's transaction.
struct TlogHashes<'c>(&'c Connection);

impl HashStore for TlogHashes<'_> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let mut statement = self
            .0
            .prepare_cached("SELECT hash FROM tlog_hashes WHERE tenant = ?1 AND idx = ?2")?;
        indexes
            .iter()
            .map(|&i| {
                let bytes: Option<Vec<u8>> = statement
                    .query_row(params![tenant, index(i)], |row| row.get(0))
                    .optional()?;
                let bytes = bytes.ok_or_else(|| {
                    AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"))
                })?;
                tree::hash_of(&bytes)
            })
            .collect()
    }
}

impl HashWriter for TlogHashes<'_> {
    fn write(&self, tenant: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()> {
        let mut statement = self
            .0
            .prepare_cached("INSERT INTO tlog_hashes (tenant, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (i, hash) in (start..).zip(hashes) {
            statement.execute(params![tenant, index(i), hash.as_slice()])?;
        }
        Ok(())
    }
}

fn index(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Schema 17: every tenant's tree from its chain, after the chains verify (a broken chain stops the migration:
/// a tree must not sign what the chain cannot vouch for).
pub(super) fn build_all(tx: &Transaction<'_>) -> Result<()> {
    super::verify::verify(tx)?;
    let store = TlogHashes(tx);
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

/// Schema 24: each record's hashes into its row (`tree`), and `tlog_hashes` dropped. A record whose hashes are
/// not all there keeps those before the first one missing (a hash's place in the row is its level, so none after
/// a gap can be kept, and nothing stands in for a missing one): its tree reads as damaged, as it did (a proof
/// through it fails, and the signed heads name it). Hashes of no record (past a tenant's last) were part of no
/// tree and go with the table.
pub(super) fn move_into_ledger(tx: &Transaction<'_>) -> Result<()> {
    // A file set back by hand or by a test to an older version may hold the column already, and no table.
    if !ledger_has_column(tx, "tree")? {
        tx.execute_batch("ALTER TABLE ledger ADD COLUMN tree BLOB")?;
    }
    let table: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'tlog_hashes')",
        [],
        |row| row.get(0),
    )?;
    if !table {
        return Ok(());
    }
    let mut hashes = tx.prepare(
        "SELECT idx, hash FROM tlog_hashes WHERE tenant = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
    )?;
    let mut update = tx.prepare("UPDATE ledger SET tree = ?2 WHERE id = ?1")?;
    // In slices, so that no scan of the ledger is open while its rows are updated.
    let mut slice =
        tx.prepare("SELECT id, tenant, seq FROM ledger WHERE id > ?1 ORDER BY id LIMIT 4096")?;
    let mut after = i64::MIN;
    loop {
        let records: Vec<(i64, String, i64)> = slice
            .query_map([after], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some((last, _, _)) = records.last() else {
            break;
        };
        after = *last;
        for (id, tenant, seq) in records {
            move_one(&mut hashes, &mut update, id, &tenant, seq)?;
        }
    }
    tx.execute_batch("DROP TABLE tlog_hashes")?;
    Ok(())
}

/// Record `seq`'s hashes into its row `id`: all of them, or those before the first missing one.
fn move_one(
    hashes: &mut rusqlite::Statement<'_>,
    update: &mut rusqlite::Statement<'_>,
    id: i64,
    tenant: &str,
    seq: i64,
) -> Result<()> {
    let Some(leaf) = u64::try_from(seq).ok().and_then(|seq| seq.checked_sub(1)) else {
        return Err(AuthorityError::Corrupt(format!(
            "tenant {tenant}: record {seq}"
        )));
    };
    let start = tlog_tiles::stored_hash_index(0, leaf);
    let count = u64::from(1 + leaf.trailing_ones());
    let mut tree = Vec::with_capacity(32 * (1 + leaf.trailing_ones() as usize));
    let mut found = hashes.query(params![tenant, index(start), index(start + count)])?;
    let mut next = start;
    while let Some(hash) = found.next()? {
        let (at, bytes): (i64, Vec<u8>) = (hash.get(0)?, hash.get(1)?);
        if at != index(next) || bytes.len() != 32 {
            break;
        }
        tree.extend_from_slice(&bytes);
        next += 1;
    }
    drop(found);
    if !tree.is_empty() {
        update.execute(params![id, tree])?;
    }
    Ok(())
}
