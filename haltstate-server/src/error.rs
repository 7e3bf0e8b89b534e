//! Every error the server answers: a status and a JSON body `{"detail": "...", "code": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haltstate_authority::AuthorityError;
use haltstate_types::wire::ErrorBody;
use haltstate_types::{ErrorCode, RequestError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: ErrorCode,
    /// A human-readable explanation (never a secret or a param value).
    pub detail: String,
    /// Seconds to wait, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 with code `invalid_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, detail)
    }

    /// 401: the same answer whatever was wrong with the credentials.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "invalid tenant id or API key",
        )
    }

    /// 404 for a route that does not exist (clients fall back to the legacy prefix on it).
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
    }

    /// 408: the body did not arrive in time; the connection is closed after the answer.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BodyTimeout,
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs()
            ),
        )
    }

    /// 429 or 503 with `Retry-After`.
    pub fn retry_later(status: StatusCode, code: ErrorCode, detail: &str, seconds: u64) -> Self {
        let mut error = Self::new(status, code, detail);
        error.retry_after = Some(seconds.max(1));
        error
    }
}

impl From<AuthorityError> for ApiError {
    fn from(error: AuthorityError) -> Self {
        // A refusal of what the request says has one mapping, shared with the routes that refuse it directly.
        let error = match error {
            AuthorityError::Request(refused) => return refused.into(),
            other => other,
        };
        let status = match &error {
            AuthorityError::Unauthenticated => return ApiError::unauthenticated(),
            AuthorityError::SelfApproval { .. } => StatusCode::FORBIDDEN,
            AuthorityError::IdempotencyConflict { .. }
            | AuthorityError::RequestIdConflict { .. }
            | AuthorityError::NotClaimed { .. }
            | AuthorityError::StaleClaim { .. }
            | AuthorityError::ClaimTokenRequired { .. }
            | AuthorityError::DuplicateKeyName { .. }
            | AuthorityError::ApprovalDecided { .. }
            | AuthorityError::AlreadyApproved { .. } => StatusCode::CONFLICT,
            AuthorityError::ApprovalNotFound { .. } | AuthorityError::KeyNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            AuthorityError::Closed | AuthorityError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "authority failure");
            // Storage details stay in the log.
            return ApiError::new(status, error.code(), "internal error");
        }
        let mut api = ApiError::new(status, error.code(), error.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            api.retry_after = Some(1);
        }
        api
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        let status = match &error {
            RequestError::Invalid(_) => StatusCode::BAD_REQUEST,
            // Forbidden, an agent or identity the key does not hold, and whatever refusal comes next.
            _ => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: self.detail,
            code: self.code.into(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a body that came too slowly is not worth reading.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
