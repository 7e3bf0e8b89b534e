//! The migrations that file what belongs to an idempotency key under the key's first ledger record, its head:
//! the key's other records (schema 22) and its key rows (schema 23). A query by key then reads one random page, the
//! head's entry in `ledger_key_head`, and finds the rest beside the newest entries of append-ordered indexes.

use rusqlite::{OptionalExtension, Transaction};

use super::columns::{ledger_has_column, table_has_column};
use crate::error::{AuthorityError, Result};

/// Schema 22. A column already there is kept (a file set back to an older version by a test) and only its
/// empty entries filled.
pub(super) fn file_records_under_key_heads(tx: &Transaction<'_>) -> Result<()> {
    if !ledger_has_column(tx, "key_first")? {
        tx.execute_batch("ALTER TABLE ledger ADD COLUMN key_first INTEGER")?;
    }
    tx.execute_batch(
        "UPDATE ledger SET key_first = (SELECT min(first.seq) FROM ledger AS first
             WHERE first.tenant = ledger.tenant AND first.idempotency_key = ledger.idempotency_key)
             WHERE idempotency_key IS NOT NULL AND key_first IS NULL;
         CREATE UNIQUE INDEX IF NOT EXISTS ledger_key_head ON ledger (tenant, idempotency_key)
             WHERE key_first = seq;
         CREATE INDEX IF NOT EXISTS ledger_key_records ON ledger (tenant, key_first, seq)
             WHERE key_first IS NOT NULL;
         DROP INDEX IF EXISTS ledger_key_seq;",
    )?;
    Ok(())
}

/// Schema 23. Every key row names its key's head (`key_head`; 0, which names no record, until filled). A row whose
/// key has no record at all was not written by the authority, which records a guard before it stores the key's
/// row: such a file is refused and left as it was, since a row no query could find would let its key run again.
pub(super) fn file_key_rows_under_key_heads(tx: &Transaction<'_>) -> Result<()> {
    if !table_has_column(tx, "idempotency", "key_head")? {
        tx.execute_batch("ALTER TABLE idempotency ADD COLUMN key_head INTEGER NOT NULL DEFAULT 0")?;
    }
    tx.execute_batch(concat!(
        "UPDATE idempotency SET key_head = coalesce(",
        crate::store::sql::sqlite_key_head!("idempotency.tenant", "idempotency.key"),
        ", 0) WHERE key_head = 0"
    ))?;
    let headless: Option<(String, String, String)> = tx
        .query_row(
            "SELECT tenant, key, agent_id FROM idempotency WHERE key_head = 0 LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    if let Some((tenant, key, agent)) = headless {
        return Err(AuthorityError::Corrupt(format!(
            "not migrating to schema 23: the row of idempotency key {key:?} (tenant {tenant:?}, agent {agent:?}) \
             has no ledger record of its key; the authority records a key's guard before it stores the key's \
             row, so the row was written outside it. Remove that row or restore the file from a backup, then \
             open it again"
        )));
    }
    tx.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS idempotency_head ON idempotency (tenant, key_head, agent_id);
         DROP INDEX IF EXISTS idempotency_key;",
    )?;
    Ok(())
}
