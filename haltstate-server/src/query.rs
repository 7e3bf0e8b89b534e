//! Query parameters, read strictly: a value that does not parse is a 400 naming the parameter, never a default.

use std::collections::HashMap;

use haltstate_types::timestamp::parse_iso8601;
use time::OffsetDateTime;

use crate::error::ApiError;

/// `limit`, an integer from 1 to `max`; `default` when absent.
pub(crate) fn limit(
    params: &HashMap<String, String>,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be an integer from 1 to {max}"))
            }),
    }
}

/// The required non-negative integer `name`.
pub(crate) fn count(params: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    let value = params
        .get(name)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer")))
}

/// An ISO-8601 timestamp (see [`parse_iso8601`]).
pub(crate) fn timestamp(field: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    parse_iso8601(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{field} must be an ISO-8601 timestamp, got {text:?}"
        ))
    })
}
