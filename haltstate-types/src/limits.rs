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
/// Largest integer a param may hold, either sign: 2^53 - 1, the integers JSON numbers hold exactly everywhere they
/// go (the canonical form that fingerprints and hashes, JavaScript, the ledger). Larger ones (account numbers)
/// are sent as strings.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;
/// Most fractional digits a non-integral param may have: what Cedar's `decimal` holds exactly.
pub const MAX_FRACTION_DIGITS: usize = 4;
