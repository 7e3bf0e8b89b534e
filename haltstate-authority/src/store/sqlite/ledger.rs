//! The hash chains in SQLite: each tenant's running tail, and verification (the arithmetic is
//! `haltstate_types::record_hash`, the walk `store::chain`).

use std::collections::{HashMap, HashSet};

use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{EvidenceRecord, VerifyReport};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::store::chain::{ChainVerifier, StoredRecord, Tail};

/// The tails this writer knows, by tenant, and which ones the open transaction moved.
#[derive(Debug, Default)]
pub(crate) struct Tails {
    known: HashMap<String, Tail>,
    moved: HashSet<String>,
}

impl Tails {
    /// Forgets every tail (another process may have appended).
    pub(crate) fn clear(&mut self) {
        self.known.clear();
        self.moved.clear();
    }

    fn load(conn: &Connection, tenant: &str) -> Result<Tail> {
        let row = conn
            .prepare_cached(
                "SELECT seq, hash FROM ledger WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![tenant], |row| {
                Ok((row.get::<_, u64>(0)?, row.get::<_, String>(1)?))
            })
            .optional()?;
        Ok(row.map_or_else(Tail::genesis, |(seq, hash)| Tail { seq, hash }))
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
        self.known.insert(tenant, tail);
    }

    /// Appends `record` to its tenant's chain, assigning its `seq`.
    pub(crate) fn append(&mut self, conn: &Connection, record: &mut EvidenceRecord) -> Result<u64> {
        let tail = self.get(conn, &record.tenant)?;
        let (body, hash) = tail.next(record)?;
        conn.prepare_cached(
            "INSERT INTO ledger (tenant, seq, prev_hash, hash, body, at, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            record.tenant,
            record.seq,
            tail.hash,
            hash,
            body,
            format_rfc3339(record.at),
            record.idempotency_key
        ])?;
        self.known.insert(
            record.tenant.clone(),
            Tail {
                seq: record.seq,
                hash,
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

/// Recomputes every tenant's chain; the error names the tenant and the first broken record.
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    verify_chains(conn, None)
}

/// Recomputes one tenant's chain (what its operators may see verified).
pub(crate) fn verify_tenant(conn: &Connection, tenant: &str) -> Result<VerifyReport> {
    verify_chains(conn, Some(tenant))
}

/// The chains of `tenant`, or of every tenant (each query keeps its own SQL, so the one-tenant walk uses the
/// `(tenant, seq)` index).
fn verify_chains(conn: &Connection, tenant: Option<&str>) -> Result<VerifyReport> {
    let (heads_sql, rows_sql, values): (&str, &str, Vec<&dyn rusqlite::ToSql>) = match &tenant {
        Some(tenant) => (
            "SELECT tenant, seq, hash FROM ledger_heads WHERE tenant = ?1",
            "SELECT tenant, seq, prev_hash, hash, body, at, idempotency_key FROM ledger WHERE tenant = ?1 \
             ORDER BY seq",
            vec![tenant],
        ),
        None => (
            "SELECT tenant, seq, hash FROM ledger_heads",
            "SELECT tenant, seq, prev_hash, hash, body, at, idempotency_key FROM ledger ORDER BY tenant, seq",
            Vec::new(),
        ),
    };
    let mut heads = HashMap::new();
    let mut statement = conn.prepare(heads_sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        heads.insert(row.get::<_, String>(0)?, (row.get(1)?, row.get(2)?));
    }
    drop(rows);
    let mut verifier = ChainVerifier::new(heads);
    let mut statement = conn.prepare(rows_sql)?;
    let mut rows = statement.query(values.as_slice())?;
    while let Some(row) = rows.next()? {
        verifier.push(StoredRecord {
            tenant: row.get(0)?,
            seq: row.get(1)?,
            prev_hash: row.get(2)?,
            hash: row.get(3)?,
            body: row.get(4)?,
            at: row.get(5)?,
            idempotency_key: row.get(6)?,
        })?;
    }
    verifier.finish()
}
