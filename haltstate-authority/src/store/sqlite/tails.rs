//! Each tenant's running chain tail in SQLite, kept by the writer between transactions (the arithmetic is
//! `haltstate_types::record_hash`).

use std::collections::{HashMap, HashSet};

use haltstate_types::EvidenceRecord;
use haltstate_types::timestamp::{format_rfc3339, parse_iso8601};
use rusqlite::{Connection, OptionalExtension, params};

use super::held::{Held, Prepare};
use super::recent_hashes::{RecentHashes, WriterHashes};
use super::tree::SqliteHashes;
use crate::error::Result;
use crate::store::chain::Tail;

/// Appends one record to the ledger. A record with a key names the key's first record (`key_first`, schema 22):
/// `?8` when the caller knows it (the key's row names it, schema 23), else the one the key's head in the ledger
/// gives (`coalesce` stops at the first value, so a known head reads no index page), else its own sequence number
/// (it is the first). `?9` is the hashes its append adds to the tenant's tree (schema 24, `tree.rs`).
pub(crate) const LEDGER_INSERT: &str = concat!(
    "INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key, key_first, tree) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?7 IS NOT NULL THEN coalesce(?8, ",
    crate::store::sql::sqlite_key_head!("?1", "?7"),
    ", ?2) END, ?9)"
);

/// The tails this writer knows, by tenant, which ones the open transaction moved, and the hashes each tenant's
/// tree stored last.
#[derive(Debug, Default)]
pub(crate) struct Tails {
    known: HashMap<String, Tail>,
    moved: HashSet<String>,
    hashes: HashMap<String, RecentHashes>,
}

impl Tails {
    /// Forgets every tail (another process may have appended).
    pub(crate) fn clear(&mut self) {
        self.known.clear();
        self.moved.clear();
        self.hashes.clear();
    }

    fn load(conn: &Connection, tenant: &str) -> Result<Tail> {
        let row = conn
            .prepare_cached(
                "SELECT seq, hash, at FROM ledger WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![tenant], |row| {
                Ok((
                    row.get::<_, u64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        let Some((seq, hash, at)) = row else {
            return Ok(Tail::genesis());
        };
        let at = parse_iso8601(&at)
            .ok_or_else(|| crate::store::chain::broken(tenant, seq, "its time does not parse"))?;
        Ok(Tail {
            seq,
            hash,
            at: Some(at),
        })
    }

    /// The tail of `tenant` as of now, for undoing an operation.
    pub(crate) fn get(&mut self, conn: &Connection, tenant: &str) -> Result<Tail> {
        if let Some(tail) = self.known.get(tenant) {
            return Ok(tail.clone());
        }
        let tail = Self::load(conn, tenant)?;
        self.known.insert(tenant.to_owned(), tail.clone());
        Ok(tail)
    }

    /// Puts a tail back as it was before an operation that was undone.
    pub(crate) fn restore(&mut self, tenant: String, tail: Tail) {
        // The undone operation's tree hashes are gone from the database too.
        self.hashes.remove(&tenant);
        self.known.insert(tenant, tail);
    }

    /// Appends `record` to its tenant's chain, assigning its `seq`; `key_first` is its key's first record, when
    /// the caller knows it.
    pub(crate) fn append(
        &mut self,
        held: &Held<'_>,
        record: &mut EvidenceRecord,
        key_first: Option<u64>,
    ) -> Result<u64> {
        let tail = self.get(held.conn(), &record.tenant)?;
        if tail.out_of_order(record.at) {
            // The tenant's times go backwards here: time queries need the index by time again.
            super::times::index_again(held.conn())?;
        }
        let (body, hash) = tail.next(record)?;
        // The tree keeps pace with the chain: the hashes this append adds go in the record's row.
        if !self.hashes.contains_key(&record.tenant) {
            self.hashes
                .insert(record.tenant.clone(), RecentHashes::default());
        }
        let recent = self.hashes.get_mut(&record.tenant).ok_or_else(|| {
            crate::error::AuthorityError::Corrupt("a tree's hashes went missing".into())
        })?;
        let store = WriterHashes {
            stored: SqliteHashes(held),
            recent: std::cell::RefCell::new(recent),
        };
        let (start, hashes) =
            crate::store::tree::new_hashes(&store, &record.tenant, record.seq - 1, &body)?;
        held.with(LEDGER_INSERT, |statement| {
            statement.execute(params![
                record.tenant,
                record.seq,
                tail.hash,
                hash,
                body,
                format_rfc3339(record.at),
                record.idempotency_key,
                key_first,
                hashes.as_flattened()
            ])?;
            Ok(())
        })?;
        store.remember(start, &hashes);
        self.known.insert(
            record.tenant.clone(),
            Tail {
                seq: record.seq,
                hash,
                at: Some(record.at),
            },
        );
        self.moved.insert(record.tenant.clone());
        Ok(record.seq)
    }

    /// Writes the head row of every chain the transaction moved, once per transaction, before the commit.
    pub(crate) fn store_heads(&mut self, conn: &Connection) -> Result<()> {
        for tenant in self.moved.drain() {
            let Some(tail) = self.known.get(&tenant) else {
                continue;
            };
            conn.prepare_cached(
                "INSERT INTO ledger_heads (tenant, seq, hash) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            )?
            .execute(params![tenant, tail.seq, tail.hash])?;
        }
        Ok(())
    }
}
