//! Moving a deployment: a SQLite authority copied into an empty PostgreSQL one, every row of every table.
//!
//! The source's chains are verified first (a broken ledger is not moved), the copy runs in one transaction (a
//! failed copy leaves the target empty), and the target's chains are verified after the commit.

use postgres::types::ToSql;
use rusqlite::types::Value;

use haltstate_types::VerifyReport;

use super::conn::{Conn, connect};
use super::{schema, verify};
use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result};
use crate::store::sql::LedgerColumns;
use crate::store::sqlite;

/// How a column is carried over.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Blob,
    /// An integer 0/1 in SQLite, a boolean in PostgreSQL.
    Bool,
}

use Kind::{Blob, Bool, Int, Text};

/// Every table and column, in the order they are copied (the same names on both sides).
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "api_keys",
        &[
            ("tenant", Text),
            ("id", Text),
            ("name", Text),
            ("role", Text),
            ("key_hash", Blob),
            ("created_us", Int),
            ("revoked_us", Int),
            ("agents", Text),
            ("rate_limit", Int),
        ],
    ),
    (
        "idempotency",
        &[
            ("tenant", Text),
            ("key", Text),
            ("fingerprint", Text),
            ("agent_id", Text),
            ("action", Text),
            ("state", Text),
            ("approval_id", Text),
            ("policy_id", Text),
            ("reason", Text),
            ("claim_token", Text),
            ("lease_until_us", Int),
            ("outcome_seq", Int),
            ("created_us", Int),
            ("updated_us", Int),
            ("claimed_by", Text),
            ("client_token", Bool),
            ("usage_us", Int),
            ("usage", Text),
            ("attempts", Int),
            ("retry_digest", Text),
            ("lifetime", Text),
            ("generation", Int),
        ],
    ),
    (
        "usage_buckets",
        &[
            ("tenant", Text),
            ("agent_id", Text),
            ("action", Text),
            ("span", Text),
            ("start_us", Int),
            ("count", Int),
            ("tokens", Int),
            ("sums", Text),
        ],
    ),
    (
        "approvals",
        &[
            ("tenant", Text),
            ("id", Text),
            ("idempotency_key", Text),
            ("request_id", Text),
            ("agent_id", Text),
            ("action", Text),
            ("resource", Text),
            ("params", Text),
            ("risk", Text),
            ("metadata", Text),
            ("policy_id", Text),
            ("policy_reason", Text),
            ("status", Text),
            ("created_us", Int),
            ("expires_us", Int),
            ("decided_us", Int),
            ("approver", Text),
            ("decision_reason", Text),
            ("approvals_required", Int),
            ("approved_by", Text),
            ("policy_version", Text),
        ],
    ),
    (
        "kill_switch",
        &[
            ("tenant", Text),
            ("agent_id", Text),
            ("state", Text),
            ("updated_us", Int),
            ("updated_by", Text),
        ],
    ),
    (
        "checkpoints",
        &[
            ("tenant", Text),
            ("seq", Int),
            ("key_id", Text),
            ("hash", Text),
            ("at_us", Int),
            ("signature", Text),
        ],
    ),
    (
        "tlog_hashes",
        &[("tenant", Text), ("idx", Int), ("hash", Blob)],
    ),
    (
        "tree_checkpoints",
        &[
            ("tenant", Text),
            ("size", Int),
            ("key_id", Text),
            ("note", Text),
        ],
    ),
    (
        "change_history",
        &[("tenant", Text), ("subject", Text), ("seq", Int)],
    ),
    (
        "webhooks",
        &[
            ("tenant", Text),
            ("id", Text),
            ("url", Text),
            ("secret", Text),
            ("events", Text),
            ("format", Text),
            ("created_us", Int),
            ("created_by", Text),
            ("removed_us", Int),
        ],
    ),
    (
        "webhook_outbox",
        &[
            ("tenant", Text),
            ("id", Text),
            ("webhook_id", Text),
            ("event", Text),
            ("data", Text),
            ("created_us", Int),
            ("attempts", Int),
            ("state", Text),
            ("next_attempt_us", Int),
            ("claimed_by", Text),
            ("claim_until_us", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("finished_us", Int),
        ],
    ),
    (
        "check_requests",
        &[
            ("tenant", Text),
            ("request_id", Text),
            ("fingerprint", Text),
            ("agent_id", Text),
            ("action", Text),
            ("decision", Text),
            ("created_us", Int),
        ],
    ),
    (
        "unverified_imports",
        &[("tenant", Text), ("evidence_id", Text), ("seq", Int)],
    ),
    (
        "ledger",
        &[
            ("tenant", Text),
            ("seq", Int),
            ("prev_hash", Text),
            ("hash", Text),
            ("body", Blob),
            ("at", Text),
            ("idempotency_key", Text),
            ("action", Text),
            ("agent_id", Text),
        ],
    ),
    (
        "ledger_heads",
        &[("tenant", Text), ("seq", Int), ("hash", Text), ("at", Text)],
    ),
];

/// What a copy moved: rows per table, and the copy's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows copied, by table.
    pub rows: Vec<(String, u64)>,
    /// The target's chains, verified after the copy.
    pub verified: VerifyReport,
}

fn value(value: Value, kind: Kind, table: &str, column: &str) -> Result<Box<dyn ToSql + Sync>> {
    let mismatch = |found: &str| {
        AuthorityError::Corrupt(format!(
            "{table}.{column} holds {found}, not what the schema says"
        ))
    };
    Ok(match (kind, value) {
        (Text, Value::Null) => Box::new(None::<String>),
        (Int | Bool, Value::Null) => Box::new(None::<i64>),
        (Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (Text, Value::Text(text)) => Box::new(text),
        (Int, Value::Integer(n)) => Box::new(n),
        (Bool, Value::Integer(n)) => Box::new(n != 0),
        (Blob, Value::Blob(bytes)) => Box::new(bytes),
        (_, Value::Real(_)) => return Err(mismatch("a real number")),
        (_, Value::Text(_)) => return Err(mismatch("text")),
        (_, Value::Integer(_)) => return Err(mismatch("an integer")),
        (_, Value::Blob(_)) => return Err(mismatch("a blob")),
    })
}

fn is_empty(conn: &mut Conn) -> Result<bool> {
    let row = conn.query_opt(
        "SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM idempotency) \
         + (SELECT count(*) FROM approvals) + (SELECT count(*) FROM kill_switch) \
         + (SELECT count(*) FROM ledger) + (SELECT count(*) FROM ledger_heads)",
        &[],
    )?;
    Ok(row.is_some_and(|row| row.get::<_, i64>(0) == 0))
}

/// Copies the SQLite authority at `from` into the empty PostgreSQL database at `to`.
/// What the copy reads from SQLite for a column of PostgreSQL's: SQLite's ledger has no `action` and `agent_id`
/// columns since its schema 19, they are read from the record's body; its head rows keep no time (its writer reads
/// the chain's last record), which PostgreSQL's keep since its schema 25: the last record's.
fn source_column<'a>(table: &str, column: &'a str) -> &'a str {
    match (table, column) {
        ("ledger", "action") => LedgerColumns::SQLITE.action,
        ("ledger", "agent_id") => LedgerColumns::SQLITE.agent_id,
        ("ledger_heads", "at") => {
            "(SELECT record.at FROM ledger AS record \
              WHERE record.tenant = ledger_heads.tenant AND record.seq = ledger_heads.seq)"
        }
        _ => column,
    }
}

/// Each row of `table` in the SQLite file, as the values of the columns `names`. SQLite keeps the tree's hashes
/// in the records' rows since its schema 24; they are read from there, one row per hash.
fn each_source_row(
    source: &rusqlite::Connection,
    table: &str,
    names: &[&str],
    mut each: impl FnMut(Vec<Value>) -> Result<()>,
) -> Result<()> {
    if table == "tlog_hashes" {
        return sqlite::each_stored_hash(source, |tenant, index, hash| {
            let index = i64::try_from(index).map_err(|_| {
                AuthorityError::Corrupt(format!("tenant {tenant}'s tree hash {index}"))
            })?;
            each(vec![
                Value::Text(tenant.to_owned()),
                Value::Integer(index),
                Value::Blob(hash.to_vec()),
            ])
        });
    }
    let read: Vec<&str> = names.iter().map(|c| source_column(table, c)).collect();
    let mut select = source.prepare(&format!("SELECT {} FROM {table}", read.join(", ")))?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        each(
            (0..names.len())
                .map(|index| row.get::<_, Value>(index))
                .collect::<rusqlite::Result<_>>()?,
        )?;
    }
    Ok(())
}

pub(crate) fn copy(from: &std::path::Path, to: &PostgresUrl) -> Result<CopyReport> {
    let source = sqlite::open_existing_read_only(from)?;
    sqlite::verify_connection(&source)?;
    let mut conn = connect(to)?;
    schema::migrate(&mut conn)?;
    if !is_empty(&mut conn)? {
        return Err(AuthorityError::invalid(format!(
            "{to} already holds HaltState data; copy into an empty database"
        )));
    }
    let mut rows = Vec::new();
    let mut tx = conn.client().transaction()?;
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let insert = tx.prepare(&format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        ))?;
        let mut count = 0u64;
        each_source_row(&source, table, &names, |row| {
            let mut values = Vec::with_capacity(columns.len());
            for (cell, (column, kind)) in row.into_iter().zip(columns.iter()) {
                values.push(value(cell, *kind, table, column)?);
            }
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            tx.execute(&insert, &params)?;
            count += 1;
            Ok(())
        })?;
        rows.push(((*table).to_owned(), count));
    }
    tx.commit()?;
    let verified = verify::verify(&mut conn)?;
    Ok(CopyReport { rows, verified })
}
