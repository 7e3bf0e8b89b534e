//! Open streams per key: an approvals stream or a console live view holds a connection for as long as its client
//! likes, so one key may hold only [`ServeLimits::max_streams_per_key`](crate::ServeLimits) of them; otherwise a
//! single agent key could take every connection the server has.

use std::sync::Arc;

use axum::http::StatusCode;
use haltstate_types::ErrorCode;

use crate::error::ApiError;
use crate::slots::{Slot, Slots};

/// The open streams of every key, by (tenant, key id).
pub(crate) type Streams = Slots<(String, String)>;

/// One open stream, counted against its key until dropped.
pub(crate) type StreamSlot = Slot<(String, String)>;

/// A slot for a stream of `tenant`'s key `key_id`, or 429 `too_many_streams` when it holds `cap` already.
pub(crate) fn open(
    streams: &Arc<Streams>,
    tenant: &str,
    key_id: &str,
    cap: usize,
) -> Result<StreamSlot, ApiError> {
    streams
        .take((tenant.to_owned(), key_id.to_owned()), cap)
        .ok_or_else(|| {
            ApiError::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyStreams,
                &format!("this key already has {cap} streams open; close one first"),
                5,
            )
        })
}
