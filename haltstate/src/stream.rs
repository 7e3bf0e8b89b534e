//! `subscribe_approvals`: approval decisions as a `Stream`, resumable and deduplicated. The transport follows the
//! authority (`Transport::follow_approvals`), resuming and deduplicating with `transport/cursor.rs`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use haltstate_types::wire::ApprovalDecision;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::client::HaltStateClient;
use crate::error::GuardError;

pub use crate::transport::cursor::STREAM_IDLE_TIMEOUT;

/// Approval decisions as they happen. Ends only when the authority refuses the credentials; connection
/// trouble is retried with jittered backoff, resuming after the newest decision seen.
#[derive(Debug)]
pub struct ApprovalStream {
    receiver: mpsc::Receiver<Result<ApprovalDecision, GuardError>>,
}

impl Stream for ApprovalStream {
    type Item = Result<ApprovalDecision, GuardError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl HaltStateClient {
    /// Subscribes to approval decisions of this key's agents after `last_seen` (or from now).
    pub fn subscribe_approvals(&self, last_seen: Option<OffsetDateTime>) -> ApprovalStream {
        let (sender, receiver) = mpsc::channel(64);
        if let Some(runtime) = &self.inner.runtime {
            let client = self.clone();
            runtime.spawn(async move {
                let cursor = last_seen.unwrap_or_else(OffsetDateTime::now_utc);
                client
                    .inner
                    .transport
                    .follow_approvals(cursor, sender)
                    .await;
            });
        }
        ApprovalStream { receiver }
    }
}
