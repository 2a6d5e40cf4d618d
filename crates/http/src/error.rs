use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokenvault_service::ServiceError;

/// An error on its way to the client. It becomes a response *without* a body; the
/// [`crate::error_shape`] middleware renders the body, adding the request id.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_seconds: None }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid { code, message } => ApiError::new(StatusCode::BAD_REQUEST, code, message),
            ServiceError::Unauthenticated { code, message } => ApiError::new(StatusCode::UNAUTHORIZED, code, message),
            ServiceError::Forbidden { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            ServiceError::NotFound { what } => ApiError::not_found(what),
            ServiceError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            ServiceError::Gone { code, message } => ApiError::new(StatusCode::GONE, code, message),
            ServiceError::RateLimited { message, retry_after_seconds } => ApiError {
                retry_after_seconds: Some(retry_after_seconds),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            ServiceError::Unavailable { code, message, retry_after_seconds } => {
                ApiError { retry_after_seconds, ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message) }
            }
            ServiceError::Gateway { status, code, message } => {
                ApiError::new(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), code, message)
            }
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the vault failed to handle this request",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}
