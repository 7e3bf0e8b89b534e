//! The tenants' Merkle trees on PostgreSQL (`store/tree.rs`), as SQLite keeps them: stored hashes through the
//! writer's or a reader's connection, and the trees of a ledger from before schema 16 built once its chains verify.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::Row;
use postgres::types::ToSql;

use super::conn::{Conn, signed};
use crate::error::{AuthorityError, Result};
use crate::store::chain::ChainVerifier;
use crate::store::decode::{self, stored_record_columns};
use crate::store::tree::{self, HashStore};

shared_statements!(TREE_READ, TREE_WRITE);

/// What the stored hashes are read and written through: the writer's or a reader's connection (its prepared
/// statements kept), or the migration's transaction.
pub(crate) trait Client {
    fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>>;
    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64>;
}

impl Client for &mut Conn {
    fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        self.query_opt(sql, params)
    }

    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.execute(sql, params)
    }
}

impl Client for &mut postgres::Transaction<'_> {
    fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.query_opt(sql, params)?)
    }

    fn run(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.execute(sql, params)?)
    }
}

/// The stored hashes through a [`Client`].
pub(crate) struct PgHashes<C>(pub(crate) RefCell<C>);

impl<C: Client> HashStore for PgHashes<C> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let mut client = self.0.borrow_mut();
        indexes
            .iter()
            .map(|i| {
                let row = client
                    .one(TREE_READ.as_str(), &[&tenant, &signed(*i)])?
                    .ok_or_else(|| {
                        AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {i}"))
                    })?;
                let bytes: Vec<u8> = row.try_get(0)?;
                tree::hash_of(&bytes)
            })
            .collect()
    }

    fn write(&self, tenant: &str, start: u64, hashes: &[[u8; 32]]) -> Result<()> {
        let mut client = self.0.borrow_mut();
        for (offset, hash) in hashes.iter().enumerate() {
            client.run(
                TREE_WRITE.as_str(),
                &[&tenant, &signed(start + offset as u64), &hash.as_slice()],
            )?;
        }
        Ok(())
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
