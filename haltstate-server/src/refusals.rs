//! Refused requests, counted: each is logged at `debug`, and a summary per status at `info` once a minute, so a
//! burst of bad requests cannot flood the log.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Refusals (4xx answers) since the last summary, by status.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    counts: Mutex<BTreeMap<u16, u64>>,
}

impl Refusals {
    pub(crate) fn count(&self, status: u16) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    /// Logs the counts since the last call at `info`, if there were any, and starts counting again.
    pub(crate) fn log_summary(&self) {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        if counts.is_empty() {
            return;
        }
        let total: u64 = counts.values().sum();
        let by_status = counts
            .iter()
            .map(|(status, n)| format!("{status}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::info!(total, by_status = %by_status, "requests refused since the last summary");
    }
}
