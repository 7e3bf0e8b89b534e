//! The hash chain in SQLite: the running tail, and verification (the arithmetic is `haltstate_types::record_hash`).

use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{EvidenceRecord, GENESIS_HASH, VerifyReport, record_hash};
use rusqlite::{Connection, OptionalExtension};

use crate::error::{AuthorityError, Result};

/// The writer's view of the end of the chain, advanced record by record inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

impl Tail {
    pub(crate) fn load(conn: &Connection) -> Result<Self> {
        let row = conn
            .query_row(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, u64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((seq, hash)) => Tail { seq, hash },
            None => Tail {
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        })
    }

    /// Appends `record`, assigning its `seq`. The head row is written once per transaction, by
    /// [`store_head`](Self::store_head), before the commit.
    pub(crate) fn append(&mut self, conn: &Connection, record: &mut EvidenceRecord) -> Result<u64> {
        record.seq = self.seq + 1;
        record.saturate_numbers();
        let body = record.canonical_bytes().map_err(|e| {
            AuthorityError::Corrupt(format!("a ledger record does not serialize: {e}"))
        })?;
        let hash = record_hash(&self.hash, &body);
        conn.prepare_cached(
            "INSERT INTO ledger (seq, prev_hash, hash, body, tenant, at, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(rusqlite::params![
            record.seq,
            self.hash,
            hash,
            body,
            record.tenant,
            format_rfc3339(record.at),
            record.idempotency_key
        ])?;
        self.seq = record.seq;
        self.hash = hash;
        Ok(self.seq)
    }

    /// Writes the head row (sequence and hash of the last record), inside the transaction that appended.
    pub(crate) fn store_head(&self, conn: &Connection) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO ledger_head (id, seq, hash) VALUES (1, ?1, ?2) \
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )?
        .execute(rusqlite::params![self.seq, self.hash])?;
        Ok(())
    }
}

/// Recomputes the whole chain; the error names the first broken record.
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    let broken = |seq: u64, problem: String| AuthorityError::LedgerBroken { seq, problem };
    let mut statement = conn.prepare(
        "SELECT seq, prev_hash, hash, body, tenant, at, idempotency_key FROM ledger ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_owned();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let prev_hash: String = row.get(1)?;
        let hash: String = row.get(2)?;
        let body: Vec<u8> = row.get(3)?;
        let indexed: (String, String, Option<String>) = (row.get(4)?, row.get(5)?, row.get(6)?);
        let seq = u64::try_from(seq)
            .map_err(|_| broken(expected_seq, format!("invalid sequence number {seq}")))?;
        if seq != expected_seq {
            return Err(broken(
                expected_seq,
                format!("record {expected_seq} is missing (next record is {seq})"),
            ));
        }
        if prev_hash != prev {
            return Err(broken(
                seq,
                "its prev_hash does not match the previous record's hash".into(),
            ));
        }
        if record_hash(&prev_hash, &body) != hash {
            return Err(broken(seq, "its content does not match its hash".into()));
        }
        let record: EvidenceRecord = serde_json::from_slice(&body).map_err(|e| {
            broken(
                seq,
                format!("its content is not a valid evidence record: {e}"),
            )
        })?;
        if record.seq != seq {
            return Err(broken(
                seq,
                format!("it claims to be record {}", record.seq),
            ));
        }
        // Queries find records through these columns: one that disagrees with the hashed body would hide the
        // record from (or slip it into) another tenant's, key's or time range's evidence.
        if indexed
            != (
                record.tenant,
                format_rfc3339(record.at),
                record.idempotency_key,
            )
        {
            return Err(broken(
                seq,
                "its indexed columns (tenant, at, idempotency_key) do not match its content".into(),
            ));
        }
        prev = hash;
        expected_seq += 1;
    }
    let records = expected_seq - 1;
    // Read as stored: a tampered head (a negative number) is a broken ledger, not a storage error.
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM ledger_head WHERE id = 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )
        .optional()?;
    match head {
        None if records == 0 => {}
        None => return Err(broken(records, "the ledger head is missing".into())),
        Some((head_seq, head_hash)) => {
            let head_seq = u64::try_from(head_seq).map_err(|_| {
                broken(
                    records.max(1),
                    format!("the head's sequence number {head_seq} is invalid"),
                )
            })?;
            if head_seq > records {
                return Err(broken(
                    records + 1,
                    format!(
                        "record {} is missing (the head says {head_seq})",
                        records + 1
                    ),
                ));
            }
            if head_seq < records {
                return Err(broken(
                    head_seq + 1,
                    format!("record {} is past the head ({head_seq})", head_seq + 1),
                ));
            }
            if head_hash != prev {
                return Err(broken(
                    records,
                    "the ledger head's hash does not match the last record".into(),
                ));
            }
        }
    }
    Ok(VerifyReport {
        records,
        head_hash: prev,
    })
}
