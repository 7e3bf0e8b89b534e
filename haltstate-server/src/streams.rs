//! Open streams per key: an approvals stream or a console live view holds a connection for as long as its client
//! likes, so one key may hold only [`ServeLimits::max_streams_per_key`](crate::ServeLimits) of them; otherwise a
//! single agent key could take every connection the server has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use haltstate_authority::ErrorCode;

use crate::error::ApiError;

/// The open streams of every key.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<(String, String), usize>>,
}

/// One open stream, counted against its key until dropped.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    streams: Arc<Streams>,
    key: (String, String),
}

impl Streams {
    /// A slot for a stream of `tenant`'s key `key_id`, or 429 `too_many_streams` when it holds `cap` already.
    pub(crate) fn open(
        self: &Arc<Self>,
        tenant: &str,
        key_id: &str,
        cap: usize,
    ) -> Result<StreamSlot, ApiError> {
        let key = (tenant.to_owned(), key_id.to_owned());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= cap {
            return Err(ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyStreams,
                &format!("this key already has {cap} streams open; close one first"),
                5,
            ));
        }
        *count += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            key,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
