//! How many approvals a tenant has waiting, and since when: what metrics and alerts read.

use time::OffsetDateTime;

use crate::error::{AuthorityError, Result};

/// A tenant's approvals waiting for a decision (pending, window still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApprovals {
    /// The tenant.
    pub tenant: String,
    /// How many wait.
    pub count: u64,
    /// When the one waiting longest was asked for.
    pub oldest: OffsetDateTime,
}

impl PendingApprovals {
    /// From a stored row: the count and the oldest creation time in microseconds; a negative count is corrupt.
    pub(crate) fn new(tenant: String, count: i64, oldest_us: i64) -> Result<Self> {
        let count = u64::try_from(count).map_err(|_| {
            AuthorityError::Corrupt(format!("a negative count of approvals: {count}"))
        })?;
        let oldest = haltstate_types::timestamp::from_micros(oldest_us);
        Ok(PendingApprovals {
            tenant,
            count,
            oldest,
        })
    }
}
