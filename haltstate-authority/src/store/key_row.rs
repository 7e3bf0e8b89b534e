//! What both backends decode the same way from an idempotency row's text columns.

use haltstate_types::{KeyLifetime, KeyState};

use crate::error::{AuthorityError, Result};

/// The state and lifetime columns of `key`'s row. An unknown value is refused, never guessed: a state read as
/// `failed`, or a lifetime read as `operation`, would let a completed side effect run again.
pub(crate) fn decode_key_state(
    key: &str,
    state: &str,
    lifetime: &str,
) -> Result<(KeyState, KeyLifetime)> {
    let corrupt = |what: &str, value: &str| {
        AuthorityError::Corrupt(format!(
            "idempotency key {key:?} has an unknown {what} {value:?}"
        ))
    };
    let state = KeyState::parse(state).ok_or_else(|| corrupt("state", state))?;
    let lifetime = KeyLifetime::parse(lifetime).ok_or_else(|| corrupt("lifetime", lifetime))?;
    Ok((state, lifetime))
}
