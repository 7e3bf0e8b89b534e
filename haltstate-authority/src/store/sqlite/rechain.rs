//! Schema 6: from one global chain to one chain per tenant, in place.
//!
//! The global chain is verified first: re-chaining a tampered ledger would hide the tampering behind fresh
//! hashes, so a broken ledger is refused and the file left as it was. Records keep their order; each tenant's are
//! renumbered from 1 and re-hashed into its own chain, and the rows that point at records (a key's outcome, a
//! fail-open delivery) are renumbered with them.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use haltstate_types::timestamp::format_rfc3339;
use haltstate_types::{EvidenceRecord, GENESIS_HASH, record_hash};

use crate::error::{AuthorityError, Result};
use crate::store::chain::Tail;

const NEW_TABLES: &str = r#"
    CREATE TABLE ledger_v6 (
        id              INTEGER PRIMARY KEY,
        tenant          TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL,
        body            BLOB NOT NULL,
        at              TEXT NOT NULL,
        idempotency_key TEXT,
        action          TEXT GENERATED ALWAYS AS (json_extract(body, '$.action')) VIRTUAL,
        agent_id        TEXT GENERATED ALWAYS AS (json_extract(body, '$.agent_id')) VIRTUAL,
        UNIQUE (tenant, seq)
    );
    CREATE TABLE ledger_heads (
        tenant  TEXT PRIMARY KEY,
        seq     INTEGER NOT NULL,
        hash    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TEMP TABLE seq_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
"#;

const SWAP: &str = r#"
    UPDATE idempotency SET outcome_seq = (SELECT new FROM temp.seq_map WHERE old = outcome_seq)
        WHERE outcome_seq IS NOT NULL;
    UPDATE unverified_imports SET seq = (SELECT new FROM temp.seq_map WHERE old = unverified_imports.seq);
    DROP TABLE temp.seq_map;
    DROP TABLE ledger;
    DROP TABLE ledger_head;
    ALTER TABLE ledger_v6 RENAME TO ledger;
    CREATE INDEX ledger_tenant_key ON ledger (tenant, idempotency_key);
    CREATE INDEX ledger_tenant_at ON ledger (tenant, at);
"#;

fn refused(seq: i64, problem: &str) -> AuthorityError {
    AuthorityError::Corrupt(format!(
        "not migrating to per-tenant chains: the ledger is broken at record {seq}: {problem}"
    ))
}

pub(super) fn per_tenant_chains(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(NEW_TABLES)?;
    let mut tails: HashMap<String, Tail> = HashMap::new();
    let mut prev = GENESIS_HASH.to_owned();
    let mut expected = 1i64;
    {
        let mut rows_statement =
            tx.prepare("SELECT seq, prev_hash, hash, body FROM ledger ORDER BY seq")?;
        let mut insert = tx.prepare(
            "INSERT INTO ledger_v6 (tenant, seq, prev_hash, hash, body, at, idempotency_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut map = tx.prepare("INSERT INTO temp.seq_map (old, new) VALUES (?1, ?2)")?;
        let mut rows = rows_statement.query([])?;
        while let Some(row) = rows.next()? {
            let (seq, prev_hash, hash, body): (i64, String, String, Vec<u8>) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            if seq != expected {
                return Err(refused(expected, "a record is missing"));
            }
            if prev_hash != prev || record_hash(&prev_hash, &body) != hash {
                return Err(refused(seq, "its hash does not chain"));
            }
            let mut record: EvidenceRecord = serde_json::from_slice(&body)
                .map_err(|e| refused(seq, &format!("it does not decode: {e}")))?;
            let tail = tails
                .entry(record.tenant.clone())
                .or_insert_with(Tail::genesis);
            let (new_body, new_hash) = tail.next(&mut record)?;
            insert.execute(params![
                record.tenant,
                record.seq,
                tail.hash,
                new_hash,
                new_body,
                format_rfc3339(record.at),
                record.idempotency_key
            ])?;
            map.execute(params![seq, record.seq])?;
            // `at: None`: the records keep the times they were written with.
            *tail = Tail {
                seq: record.seq,
                hash: new_hash,
                at: None,
            };
            prev = hash;
            expected += 1;
        }
    }
    let head: Option<(i64, String)> = rusqlite::OptionalExtension::optional(tx.query_row(
        "SELECT seq, hash FROM ledger_head WHERE id = 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    ))?;
    let records = expected - 1;
    match head {
        None if records == 0 => {}
        Some((seq, hash)) if seq == records && hash == prev => {}
        _ => {
            return Err(refused(
                records,
                "the head row does not match the last record",
            ));
        }
    }
    tx.execute_batch(SWAP)?;
    let mut heads =
        tx.prepare("INSERT INTO ledger_heads (tenant, seq, hash) VALUES (?1, ?2, ?3)")?;
    for (tenant, tail) in &tails {
        heads.execute(params![tenant, tail.seq, tail.hash])?;
    }
    Ok(())
}
