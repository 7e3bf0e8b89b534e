//! Places counted per holder: how many of a resource one client address, or one key, holds at once. A [`Slot`]
//! is one place, given back when dropped, so a place is freed however its holder goes away.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

/// The places each holder `K` holds.
#[derive(Debug)]
pub(crate) struct Slots<K> {
    held: Mutex<HashMap<K, usize>>,
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
        }
    }
}

/// One place, held by `holder` until dropped.
#[derive(Debug)]
pub(crate) struct Slot<K: Hash + Eq> {
    slots: Arc<Slots<K>>,
    holder: K,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// A place for `holder`, unless it holds `cap` already.
    pub(crate) fn take(self: &Arc<Self>, holder: K, cap: usize) -> Option<Slot<K>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(holder.clone()).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            holder,
        })
    }
}

#[cfg(test)]
impl<K: Hash + Eq> Slots<K> {
    /// The places `holder` holds now.
    pub(crate) fn held(&self, holder: &K) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(holder).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.holder) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_takes_at_most_its_cap_and_a_dropped_slot_frees_its_place() {
        let slots: Arc<Slots<&str>> = Arc::default();
        let first = slots.take("a", 2).unwrap();
        let _second = slots.take("a", 2).unwrap();
        assert!(slots.take("a", 2).is_none());
        assert!(
            slots.take("b", 2).is_some(),
            "another holder is not counted"
        );
        drop(first);
        assert!(slots.take("a", 2).is_some());
    }
}
