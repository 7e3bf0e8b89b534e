//! The kill switch as one transaction reads it. A guard reads its agent's switch first, and a batch holds many
//! guards of the same agents: each read was a statement (a round trip to PostgreSQL: 9% of its server's CPU at 64
//! connections, `docs/perf/`). Within a transaction the switch can only change by the transaction's own write
//! (SQLite has one writer; a PostgreSQL tenant's transaction holds the tenant's head row, which every write of its
//! switches takes), so the first read per agent is kept until the transaction writes a switch or rolls an
//! operation back.

use std::collections::HashMap;

use haltstate_types::KillStatus;

use crate::error::Result;

/// Kill switches read in the open transaction, by tenant and agent.
#[derive(Debug, Default)]
pub(crate) struct KillCache(HashMap<(String, String), KillStatus>);

impl KillCache {
    /// The switch for `agent`, read by `load` unless this transaction already read it.
    pub(crate) fn get_or_load(
        &mut self,
        tenant: &str,
        agent: &str,
        load: impl FnOnce() -> Result<KillStatus>,
    ) -> Result<KillStatus> {
        let key = (tenant.to_owned(), agent.to_owned());
        if let Some(status) = self.0.get(&key) {
            return Ok(status.clone());
        }
        let status = load()?;
        self.0.insert(key, status.clone());
        Ok(status)
    }

    /// Forgets every read: a switch was written, or an operation that may have written one was undone.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
