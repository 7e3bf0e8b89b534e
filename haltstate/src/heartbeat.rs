//! The kill-switch heartbeat: asks the authority for this client's state every interval, and applies it.

use std::time::Duration;

use crate::client::{Background, HaltStateClient};

/// Starts the heartbeat on the client's runtime. The task holds a weak handle, so it ends when the last client
/// is dropped (or the client is closed).
pub(crate) fn start(client: &HaltStateClient, interval: Duration) {
    Background::spawn(client, |task| async move {
        while let Some(inner) = task.live() {
            let agent = inner.agent_id.clone();
            match inner.transport.heartbeat(&agent).await {
                Ok(state) => inner.kill.set(state),
                // B15: a failing heartbeat is logged, never silent.
                Err(error) => tracing::warn!(%error, "kill-switch heartbeat failed"),
            }
            drop(inner);
            tokio::time::sleep(interval).await;
        }
    });
}
