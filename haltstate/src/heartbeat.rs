//! The kill-switch heartbeat: asks the authority for this client's state every interval, and applies it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::client::HaltStateClient;

/// Starts the heartbeat on the client's runtime. The task holds a weak handle, so it ends when the last client
/// is dropped (or the client is closed).
pub(crate) fn start(client: &HaltStateClient, interval: Duration) {
    let Some(runtime) = &client.inner.runtime else {
        return;
    };
    let weak = Arc::downgrade(&client.inner);
    runtime.spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(Ordering::Acquire) {
                return;
            }
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
