//! The tenants' Merkle trees on PostgreSQL (`store/tree.rs`), one row per stored hash in `tlog_hashes`: read and
//! written through the writer's or a reader's connection, and the trees of a ledger from before schema 16 built
//! once its chains verify.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::Row;
use postgres::types::ToSql;

use super::conn::{Conn, signed};
use crate::error::{AuthorityError, Result};
use crate::store::chain::ChainVerifier;
use crate::store::decode::{self, stored_record_columns};
use crate::store::tree::{self, HashStore, HashWriter};

/// One stored hash of tenant `$1`'s Merkle tree.
const TREE_READ: &str = "SELECT hash FROM tlog_hashes WHERE tenant = $1 AND idx = $2";

/// The stored hashes of tenant `$1` at the indexes `$2`, in one round trip (an inclusion proof asks for about
/// 20). Not for the writer's appends, which miss one or two: there it took 0.45 ms a statement against 7 µs for
/// the one-hash statement (PostgreSQL plans it again at every execution: its generic plan, costed for an array of
/// 10, loses to a custom one).
const TREE_READ_MANY: &str =
    "SELECT idx, hash FROM tlog_hashes WHERE tenant = $1 AND idx = ANY($2::bigint[])";
/// Stores tenant `$1`'s hashes `$3` at the indexes `$2`, in one round trip.
const TREE_WRITE_MANY: &str = "INSERT INTO tlog_hashes (tenant, idx, hash) \
     SELECT $1, t.idx, t.hash FROM UNNEST($2::bigint[], $3::bytea[]) AS t(idx, hash)";
/// What the stored hashes are read and written through: the writer's or a reader's connection (its prepared
/// statements kept), or the migration's transaction.
pub(crate) trait Client {
    fn all(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>>;
    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64>;
}

impl Client for &mut Conn {
    fn all(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.query(sql, params)
    }

    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.execute(sql, params)
    }
}

impl Client for &mut postgres::Transaction<'_> {
    fn all(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.query(sql, params)?)
    }

    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.execute(sql, params)?)
    }
}

/// The indexes and hashes of an append as PostgreSQL arrays.
pub(crate) fn hash_arrays(start: u64, hashes: &[[u8; 32]]) -> (Vec<i64>, Vec<&[u8]>) {
    let indexes = (0..hashes.len() as u64)
        .map(|offset| signed(start + offset))
        .collect();
    (indexes, hashes.iter().map(<[u8; 32]>::as_slice).collect())
}

/// The stored hashes through a [`Client`].
pub(crate) struct PgHashes<C>(pub(crate) RefCell<C>);

impl<C: Client> HashStore for PgHashes<C> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        match indexes {
            [] => return Ok(Vec::new()),
            [index] => {
                let row = self
                    .0
                    .borrow_mut()
                    .all(TREE_READ, &[&tenant, &signed(*index)])?;
                let bytes: Vec<u8> = match row.first() {
                    Some(row) => row.try_get(0)?,
                    None => {
                        return Err(AuthorityError::Corrupt(format!(
                            "tenant {tenant}'s tree has no hash {index}"
                        )));
                    }
                };
                return Ok(vec![tree::hash_of(&bytes)?]);
            }
            _ => {}
        }
        let wanted: Vec<i64> = indexes.iter().map(|i| signed(*i)).collect();
        let rows = self
            .0
            .borrow_mut()
            .all(TREE_READ_MANY, &[&tenant, &wanted])?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let index: i64 = row.try_get(0)?;
            let bytes: Vec<u8> = row.try_get(1)?;
            found.insert(index, tree::hash_of(&bytes)?);
        }
        wanted
            .iter()
            .map(|i| {
                found.get(i).copied().ok_or_else(|| {
                    AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"))
                })
            })
            .collect()
    }
}

impl<C: Client> HashWriter for PgHashes<C> {
    fn write(&self, tenant: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()> {
        let (indexes, hashes) = hash_arrays(start, hashes);
        self.0
            .borrow_mut()
            .run(TREE_WRITE_MANY, &[&tenant, &indexes, &hashes])?;
        Ok(())
    }
}

/// The hashes an append of the writer's transaction reads: those the transaction stored itself from memory, the
/// rest (at most one read per transaction's first append, most of the time) from the database.
pub(crate) struct TxHashes<'a> {
    conn: RefCell<&'a mut Conn>,
    written: &'a HashMap<u64, [u8; 32]>,
}

impl<'a> TxHashes<'a> {
    pub(crate) fn new(conn: &'a mut Conn, written: &'a HashMap<u64, [u8; 32]>) -> Self {
        Self {
            conn: RefCell::new(conn),
            written,
        }
    }
}

impl HashStore for TxHashes<'_> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let missing: Vec<u64> = indexes
            .iter()
            .copied()
            .filter(|i| !self.written.contains_key(i))
            .collect();
        let mut conn = self.conn.borrow_mut();
        let store = PgHashes(RefCell::new(&mut **conn));
        // One statement per hash: the array form costs PostgreSQL far more than the round trips it saves for
        // the one or two hashes an append misses (0.45 ms against 7 µs here, measured with
        // `log_min_duration_statement`).
        let mut read = HashMap::with_capacity(missing.len());
        for index in missing {
            let [hash] = store.read(tenant, &[index])?[..] else {
                return Err(AuthorityError::Corrupt(format!(
                    "tenant {tenant}'s tree has no hash {index}"
                )));
            };
            read.insert(index, hash);
        }
        indexes
            .iter()
            .map(|i| {
                self.written
                    .get(i)
                    .or_else(|| read.get(i))
                    .copied()
                    .ok_or_else(|| {
                        AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"))
                    })
            })
            .collect()
    }
}

/// Schema 16: every tenant's tree from its chain, after the chains verify (a broken chain stops the migration).
pub(crate) fn build_all(tx: &mut postgres::Transaction<'_>) -> Result<()> {
    let heads: HashMap<String, (i64, String)> = tx
        .query("SELECT tenant, seq, hash FROM ledger_heads", &[])?
        .iter()
        .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
        .collect::<Result<_>>()?;
    let rows = tx.query(
        concat!(
            "SELECT ",
            stored_record_columns!(),
            " FROM ledger ORDER BY tenant, seq"
        ),
        &[],
    )?;
    let mut verifier = ChainVerifier::new(heads);
    let mut leaves = Vec::with_capacity(rows.len());
    for row in &rows {
        let record = decode::stored_record(row)?;
        leaves.push((record.tenant.clone(), record.seq, record.body.clone()));
        verifier.push(record)?;
    }
    verifier.finish()?;
    let store = PgHashes(RefCell::new(tx));
    for (tenant, seq, body) in leaves {
        let leaf = u64::try_from(seq - 1)
            .map_err(|_| AuthorityError::Corrupt(format!("tenant {tenant}: record {seq}")))?;
        tree::append(&store, &tenant, leaf, &body)?;
    }
    Ok(())
}
