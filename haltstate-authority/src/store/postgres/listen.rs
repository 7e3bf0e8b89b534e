//! Approval changes made by other instances: each committing transaction announces its changes on a channel
//! (`NOTIFY`, delivered only if it commits); every authority listens on its own connection and publishes what
//! others changed to its approvals streams, as if it had made the change itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use serde::{Deserialize, Serialize};

use super::conn::{Conn, connect};
use super::queries;
use crate::approval_event::ApprovalEvent;
use crate::clock::Clock;
use crate::database::PostgresUrl;

/// The channel approval changes are announced on.
pub(crate) const CHANNEL: &str = "haltstate_approvals";

/// What a notice carries: which approval changed, and which instance changed it. The approval itself is read
/// from the database (a notice's payload is limited to 8,000 bytes; an approval's params may be larger).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Notice {
    pub(crate) origin: String,
    pub(crate) tenant: String,
    pub(crate) id: String,
}

/// How long the listener waits for a notice before it looks at whether it should stop.
const POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` is set: listens, reconnecting (every second) when the connection is lost.
pub(crate) fn run(
    url: PostgresUrl,
    instance: String,
    clock: Arc<dyn Clock>,
    events: tokio::sync::broadcast::Sender<ApprovalEvent>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match connect(&url).and_then(|mut conn| {
            conn.batch(&format!("LISTEN {CHANNEL}"))?;
            Ok(conn)
        }) {
            Ok(conn) => listen(conn, &instance, clock.as_ref(), &events, &stop),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for approval changes; retrying in a second");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn listen(
    mut conn: Conn,
    instance: &str,
    clock: &dyn Clock,
    events: &tokio::sync::broadcast::Sender<ApprovalEvent>,
    stop: &AtomicBool,
) {
    let mut received = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut notifications = conn.client().notifications();
        let mut iter = notifications.timeout_iter(POLL);
        loop {
            match iter.next() {
                Ok(Some(notification)) => received.push(notification.payload().to_owned()),
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "lost the connection listening for approval changes");
                    return;
                }
            }
        }
        drop(iter);
        drop(notifications);
        for payload in received.drain(..) {
            let Ok(notice) = serde_json::from_str::<Notice>(&payload) else {
                tracing::warn!("ignoring a notice that is not ours on {CHANNEL}");
                continue;
            };
            if notice.origin == instance {
                continue;
            }
            match queries::load_approval(&mut conn, &notice.tenant, &notice.id, clock.now()) {
                Ok(Some(approval)) => {
                    let _ = events.send(ApprovalEvent { approval });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot read a changed approval");
                    if conn.is_closed() {
                        return;
                    }
                }
            }
        }
        if conn.is_closed() {
            return;
        }
    }
}
