//! What columns a file's tables have: its schema's migrations and `verify` ask, and neither may import the other
//! (a migration step builds the Merkle tree, which verifies the chain first).

use rusqlite::Connection;

use crate::error::Result;

/// Whether the file's ledger has `column` (generated columns included), for the steps that a file set back by hand
/// or by a test must survive, and for checks that exist only from a schema on.
pub(super) fn ledger_has_column(conn: &Connection, column: &str) -> Result<bool> {
    table_has_column(conn, "ledger", column)
}

/// Whether the file's `table` has `column` (generated columns included).
pub(super) fn table_has_column(conn: &Connection, table: &str, column: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_xinfo(?1) WHERE name = ?2)",
        [table, column],
        |row| row.get(0),
    )?)
}
