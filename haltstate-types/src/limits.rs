//! The bounds every request field is held to, so a hostile caller cannot grow the database or the ledger
//! without limit.

/// Longest accepted tenant id, agent id or action name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest accepted idempotency key, resource reference or request id, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest accepted risk flag, in bytes.
pub const MAX_RISK_LEN: usize = 64;
/// Largest accepted params (or metadata) object, as canonical JSON bytes.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;
/// Deepest accepted nesting of params (or metadata).
pub const MAX_PARAMS_DEPTH: usize = 16;
/// Error texts in outcome reports are cut to this many characters.
pub const MAX_ERROR_TEXT: usize = 512;
