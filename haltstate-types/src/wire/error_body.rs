//! The body of every error answer.

use serde::{Deserialize, Serialize};

use super::lenient::Lenient;
use crate::error_code::ErrorCode;

/// `{"detail": "...", "code": "..."}` (FastAPI's `detail`, as the official SDKs expect, plus our stable code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A human-readable explanation (never a secret or a param value).
    #[serde(default)]
    pub detail: String,
    /// The stable code; one this version does not know is kept as text.
    pub code: Lenient<ErrorCode>,
}
