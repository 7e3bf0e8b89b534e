//! Delivery of spooled fail-open evidence: whenever there is some and the authority answers, each file once,
//! deleted only after the authority acknowledged it. Runs only for clients that may fail open.

use crate::client::{Background, HaltStateClient};
use crate::error::GuardError;
use crate::spool::DELIVERY_INTERVAL;

/// Starts delivery on the client's runtime; the task ends with the last client handle.
pub(crate) fn start(client: &HaltStateClient) {
    Background::spawn(client, |task| async move {
        while let Some(inner) = task.live() {
            for path in inner.spool.pending() {
                let Some(evidence) = inner.spool.read(&path) else {
                    continue;
                };
                match inner.transport.deliver_unverified(&evidence).await {
                    Ok(()) => inner.spool.delivered(&path),
                    // Malformed for the authority: retrying would never succeed.
                    Err(error @ GuardError::Rejected { .. }) => inner.spool.refused(&path, &error),
                    // Still unreachable (or refusing us): keep everything for the next round.
                    Err(error) => {
                        tracing::debug!(%error, "spooled evidence not delivered yet");
                        break;
                    }
                }
            }
            let wake = tokio::time::sleep(DELIVERY_INTERVAL);
            tokio::select! {
                () = inner.spool.wake.notified() => {}
                () = wake => {}
            }
            drop(inner);
        }
    });
}
