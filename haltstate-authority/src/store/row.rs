//! A stored row as the decoders read it, whichever driver fetched it: columns by position, as text or integers
//! (timestamps are microseconds, JSON is text). Each backend implements this for its own row type; each kind of
//! record is then decoded once, in `decode.rs`.

use crate::error::Result;

/// A row of either backend.
pub(crate) trait Row {
    /// A text column.
    fn text(&self, column: usize) -> Result<String>;
    /// A nullable text column.
    fn text_opt(&self, column: usize) -> Result<Option<String>>;
    /// An integer column (SQLite's INTEGER, PostgreSQL's BIGINT).
    fn int(&self, column: usize) -> Result<i64>;
    /// A nullable integer column.
    fn int_opt(&self, column: usize) -> Result<Option<i64>>;
    /// A boolean column (SQLite's 0 or 1, PostgreSQL's BOOLEAN).
    fn flag(&self, column: usize) -> Result<bool>;
    /// A binary column (SQLite's BLOB, PostgreSQL's BYTEA).
    fn bytes(&self, column: usize) -> Result<Vec<u8>>;
}

impl Row for rusqlite::Row<'_> {
    fn text(&self, column: usize) -> Result<String> {
        Ok(self.get(column)?)
    }

    fn text_opt(&self, column: usize) -> Result<Option<String>> {
        Ok(self.get(column)?)
    }

    fn int(&self, column: usize) -> Result<i64> {
        Ok(self.get(column)?)
    }

    fn int_opt(&self, column: usize) -> Result<Option<i64>> {
        Ok(self.get(column)?)
    }

    fn flag(&self, column: usize) -> Result<bool> {
        Ok(self.get(column)?)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>> {
        Ok(self.get(column)?)
    }
}

#[cfg(feature = "postgres")]
impl Row for postgres::Row {
    fn text(&self, column: usize) -> Result<String> {
        Ok(self.try_get(column)?)
    }

    fn text_opt(&self, column: usize) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: usize) -> Result<i64> {
        Ok(self.try_get(column)?)
    }

    fn int_opt(&self, column: usize) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn flag(&self, column: usize) -> Result<bool> {
        Ok(self.try_get(column)?)
    }

    fn bytes(&self, column: usize) -> Result<Vec<u8>> {
        Ok(self.try_get(column)?)
    }
}
