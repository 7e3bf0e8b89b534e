//! The hashes the writer stored last in each tenant's Merkle tree, kept between transactions. An append reads
//! the left siblings of the subtrees it completes, and most of them were stored a few appends before: the last
//! [`KEPT`] hashes (about sixteen appends') hold the siblings of the four lowest levels, so about one append in
//! sixteen reads one from the database instead of every append reading one or more. They are forgotten with the
//! chains' tails (`Tails`): when another process wrote, when a transaction rolled back, when an operation was
//! undone.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::held::Held;
use super::tree::SqliteHashes;
use crate::error::{AuthorityError, Result};
use crate::store::tree::HashStore;

/// How many of a tenant's last stored hashes are kept (each 40 bytes).
const KEPT: usize = 32;

/// One tenant's last stored hashes, by stored index, oldest first.
#[derive(Debug, Default)]
pub(crate) struct RecentHashes(VecDeque<(u64, [u8; 32])>);

impl RecentHashes {
    fn find(&self, index: u64) -> Option<[u8; 32]> {
        self.0
            .iter()
            .rev()
            .find(|(stored, _)| *stored == index)
            .map(|(_, hash)| *hash)
    }

    fn push(&mut self, index: u64, hash: [u8; 32]) {
        if self.0.len() == KEPT {
            self.0.pop_front();
        }
        self.0.push_back((index, hash));
    }
}

/// The stored hashes with one tenant's recent ones in front: reads look there first. An append's new hashes are
/// remembered once its record is stored with them (what the database refused is not kept).
pub(crate) struct WriterHashes<'c, 'h, 'r> {
    pub(crate) stored: SqliteHashes<'h, Held<'c>>,
    pub(crate) recent: RefCell<&'r mut RecentHashes>,
}

impl HashStore for WriterHashes<'_, '_, '_> {
    fn read(&self, tenant: &str, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let recent = self.recent.borrow();
        indexes
            .iter()
            .map(|&index| match recent.find(index) {
                Some(hash) => Ok(hash),
                None => self.stored.read(tenant, &[index])?.pop().ok_or_else(|| {
                    AuthorityError::Corrupt(format!("tenant {tenant}'s tree has no hash {index}"))
                }),
            })
            .collect()
    }
}

impl WriterHashes<'_, '_, '_> {
    /// Keeps `hashes`, stored at consecutive indexes from `start`.
    pub(crate) fn remember(&self, start: u64, hashes: &[[u8; 32]]) {
        let mut recent = self.recent.borrow_mut();
        for (index, hash) in (start..).zip(hashes) {
            recent.push(index, *hash);
        }
    }
}
