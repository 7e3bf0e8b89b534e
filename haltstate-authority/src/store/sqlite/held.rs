//! Where a statement comes from: the connection's statement cache, or the writer's batch, which holds its
//! hottest statements from their first use to its end. rusqlite's cache hashes a statement's whole text and
//! moves the statement out of its LRU list and back at every use (7% of the writer's samples, most of it for the
//! key row's 900-character upsert); a held statement is found by the address of its text among a few.

use std::cell::RefCell;

use rusqlite::{CachedStatement, Connection, Statement};

use crate::error::Result;

/// Runs a closure on a prepared statement of a given text.
pub(crate) trait Prepare {
    /// Runs `use_it` on the statement of `sql`, prepared once and reused.
    fn with<R>(
        &self,
        sql: &'static str,
        use_it: impl FnOnce(&mut Statement<'_>) -> Result<R>,
    ) -> Result<R>;
}

impl Prepare for Connection {
    fn with<R>(
        &self,
        sql: &'static str,
        use_it: impl FnOnce(&mut Statement<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut statement = self.prepare_cached(sql)?;
        use_it(&mut statement)
    }
}

/// How many statements a batch holds; the writer's hot path uses eight (ledger record, tree hash read and write,
/// key row upsert and update in place, key row reads by rowid, by agent and by key).
const HELD: usize = 10;

/// A batch's held statements, on the writer's connection. Each goes back to the connection's cache when the
/// batch ends (this is dropped before its `COMMIT` or `ROLLBACK`).
pub(crate) struct Held<'c> {
    conn: &'c Connection,
    slots: RefCell<Vec<(&'static str, Option<CachedStatement<'c>>)>>,
}

impl<'c> Held<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            slots: RefCell::new(Vec::with_capacity(HELD)),
        }
    }

    pub(crate) fn conn(&self) -> &'c Connection {
        self.conn
    }
}

impl Prepare for Held<'_> {
    fn with<R>(
        &self,
        sql: &'static str,
        use_it: impl FnOnce(&mut Statement<'_>) -> Result<R>,
    ) -> Result<R> {
        // Taken out of its slot while in use, so that a closure that needs another held statement may take it.
        let found = self
            .slots
            .borrow_mut()
            .iter_mut()
            .find(|(text, _)| std::ptr::eq(*text, sql))
            .and_then(|(_, statement)| statement.take());
        let mut statement = match found {
            Some(statement) => statement,
            None => self.conn.prepare_cached(sql)?,
        };
        let result = use_it(&mut statement);
        let mut slots = self.slots.borrow_mut();
        if let Some((_, slot)) = slots.iter_mut().find(|(text, _)| std::ptr::eq(*text, sql)) {
            *slot = Some(statement);
        } else if slots.len() < HELD {
            slots.push((sql, Some(statement)));
        }
        // Otherwise every slot is taken: the statement goes back to the connection's cache.
        result
    }
}
