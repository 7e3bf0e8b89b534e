//! A long read of a tenant's ledger as many short statements, each over a window of sequence numbers.
//!
//! Each statement reads from a snapshot of its own (SQLite in autocommit, PostgreSQL in read committed), taken when
//! it starts and let go when it ends. One statement over a whole ledger held its snapshot for the whole read, a
//! second at 10^6 records: on SQLite the writer cannot start the WAL over while a reader holds a snapshot from
//! before its last commit, so readers that overlapped one another (two searches of one operator, staggered) kept
//! it growing, 1.1 GB in 40 s under load (BENCHMARKS.md, "2026-12-06, fourth session"); on PostgreSQL an old
//! snapshot keeps VACUUM from the head rows' dead versions. A window of [`WINDOW`] records reads in a few
//! milliseconds. The ledger only grows: records already read do not change between windows.

/// Records one statement reads at most.
pub(crate) const WINDOW: i64 = 4_096;

/// Sequence numbers strictly between `after` and `before`, as windows `(after, before)` (both exclusive) of at most
/// [`WINDOW`] numbers, in the order a query reads them.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    after: i64,
    before: i64,
    newest_first: bool,
    size: i64,
}

impl Windows {
    /// The numbers in `(after, before)`, oldest first or newest first.
    pub(crate) fn new(after: i64, before: i64, newest_first: bool) -> Self {
        Self::sized(after, before, newest_first, WINDOW)
    }

    fn sized(after: i64, before: i64, newest_first: bool, size: i64) -> Self {
        Self {
            after,
            before,
            newest_first,
            size: size.max(1),
        }
    }

    /// Reads window by window, in order, until `limit` items were read: `read` gets each window's `(after,
    /// before)` and how many are still wanted.
    pub(crate) fn read_until<T>(
        self,
        limit: i64,
        mut read: impl FnMut(i64, i64, i64) -> crate::error::Result<Vec<T>>,
    ) -> crate::error::Result<Vec<T>> {
        let mut items = Vec::new();
        for (after, before) in self {
            let wanted = limit - i64::try_from(items.len()).unwrap_or(i64::MAX);
            if wanted <= 0 {
                break;
            }
            items.extend(read(after, before, wanted)?);
        }
        Ok(items)
    }
}

impl Iterator for Windows {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        // The numbers left are after+1 ..= before-1.
        if self.before.saturating_sub(self.after) <= 1 {
            return None;
        }
        if self.newest_first {
            let low = self.before.saturating_sub(self.size + 1).max(self.after);
            let window = (low, self.before);
            self.before = low.saturating_add(1);
            Some(window)
        } else {
            let high = self.after.saturating_add(self.size + 1).min(self.before);
            let window = (self.after, high);
            self.after = high.saturating_sub(1);
            Some(window)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number of the range, once, in order, in windows of at most `size` numbers.
    fn covered(after: i64, before: i64, newest_first: bool, size: i64) -> Vec<i64> {
        let windows: Vec<_> = Windows::sized(after, before, newest_first, size).collect();
        for (low, high) in &windows {
            assert!(high - low - 1 <= size && high - low >= 2, "{windows:?}");
        }
        windows
            .into_iter()
            .flat_map(|(low, high)| {
                let numbers: Vec<i64> = (low + 1..high).collect();
                if newest_first {
                    numbers.into_iter().rev().collect()
                } else {
                    numbers
                }
            })
            .collect()
    }

    #[test]
    fn windows_cover_each_number_once_in_the_order_asked() {
        for (after, before) in [(0, 1), (0, 2), (0, 10), (3, 11), (0, 9), (7, 7), (9, 2)] {
            for size in [1, 2, 3, 4, 100] {
                let expected: Vec<i64> = (after + 1..before).collect();
                assert_eq!(covered(after, before, false, size), expected);
                let reversed: Vec<i64> = expected.into_iter().rev().collect();
                assert_eq!(covered(after, before, true, size), reversed);
            }
        }
    }

    #[test]
    fn the_ends_of_the_numbers_do_not_overflow() {
        let last = Windows::new(i64::MAX - 3, i64::MAX, false).last();
        assert_eq!(last, Some((i64::MAX - 3, i64::MAX)));
        let first = Windows::new(i64::MIN, i64::MIN + 3, true).next();
        assert_eq!(first, Some((i64::MIN, i64::MIN + 3)));
        assert_eq!(
            Windows::new(0, i64::MAX, false).next(),
            Some((0, WINDOW + 1))
        );
    }
}
