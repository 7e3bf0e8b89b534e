//! Where the writer stored each recent key row (its rowid), kept between transactions. A report reads and updates
//! the row its guard stored a moment before: by rowid that is one search of the table's newest pages, where the
//! key's head (a random page of `ledger_key_head`) and the rows' index cost two more. Every use of a remembered
//! rowid also compares the row's tenant, key and agent, so one that no longer names that row (its insert rolled
//! back and the rowid reused, or a change by another process) finds nothing, and the caller goes the long way.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// How many rows are remembered: far more than the operations in flight between a guard and its report (one per
/// connection or caller); past it the memory starts afresh.
const REMEMBERED: usize = 4096;

/// Rowids by a keyed hash of (tenant, agent, key): a collision only costs a lookup that finds nothing, and the
/// hash's random key keeps a caller from choosing keys that collide with another tenant's.
#[derive(Debug, Default)]
pub(crate) struct KeyRowids {
    hasher: RandomState,
    rows: HashMap<u64, i64>,
}

impl KeyRowids {
    fn slot(&self, tenant: &str, agent: &str, key: &str) -> u64 {
        self.hasher.hash_one((tenant, agent, key))
    }

    /// The rowid the row of `agent`'s `key` had when last stored, if remembered.
    pub(crate) fn get(&self, tenant: &str, agent: &str, key: &str) -> Option<i64> {
        self.rows.get(&self.slot(tenant, agent, key)).copied()
    }

    /// Remembers where the row of `agent`'s `key` was stored.
    pub(crate) fn remember(&mut self, tenant: &str, agent: &str, key: &str, rowid: i64) {
        if self.rows.len() >= REMEMBERED {
            self.rows.clear();
        }
        let slot = self.slot(tenant, agent, key);
        self.rows.insert(slot, rowid);
    }

    /// Forgets where the row of `agent`'s `key` is (it was not where remembered).
    pub(crate) fn forget(&mut self, tenant: &str, agent: &str, key: &str) {
        let slot = self.slot(tenant, agent, key);
        self.rows.remove(&slot);
    }

    /// Forgets every row (another process may have changed the file).
    pub(crate) fn clear(&mut self) {
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_remembered_by_tenant_agent_and_key_and_the_memory_is_bounded() {
        let mut rowids = KeyRowids::default();
        rowids.remember("acme", "bot", "k", 7);
        assert_eq!(rowids.get("acme", "bot", "k"), Some(7));
        assert_eq!(rowids.get("acme", "bot2", "k"), None);
        assert_eq!(rowids.get("other", "bot", "k"), None);
        // The parts are hashed as three strings, not their concatenation.
        assert_eq!(rowids.get("acme", "bo", "tk"), None);
        rowids.forget("acme", "bot", "k");
        assert_eq!(rowids.get("acme", "bot", "k"), None);
        for n in 0..REMEMBERED as i64 {
            rowids.remember("acme", "bot", &n.to_string(), n);
        }
        assert!(rowids.rows.len() <= REMEMBERED);
    }
}
