//! Why a use case failed, as one enum with stable machine-readable codes that the HTTP layer maps
//! to statuses in one place.

use tokenvault_crypto::CryptoError;
use tokenvault_store::StoreError;

/// Why a use case failed. Each variant carries a stable machine-readable `code`; the HTTP layer
/// maps variants to status codes in one place. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller sent something unusable (HTTP 400/422).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No valid credentials (HTTP 401).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: &'static str },
    /// Authenticated, but this action is not allowed (HTTP 403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// The object does not exist, or belongs to another app (HTTP 404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request conflicts with the current state (HTTP 409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The object existed but is gone for good (HTTP 410).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// Too many requests under a policy's rate limit (HTTP 429).
    #[error("{message}")]
    RateLimited { message: String, retry_after_seconds: u64 },
    /// Temporarily impossible; retrying later may work (HTTP 503).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String, retry_after_seconds: Option<u64> },
    /// A proxied call stopped at the vault's edge: a body over a limit (HTTP 413), an upstream
    /// answer the vault will not pass on (HTTP 502) or none in time (HTTP 504).
    #[error("{message}")]
    Gateway { status: u16, code: &'static str, message: String },
    /// A fault of the vault itself (HTTP 500). The detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Conflict { code, message: message.into() }
    }

    pub fn not_found(what: &'static str) -> Self {
        ServiceError::NotFound { what }
    }

    /// Maps a store "not found" to a named 404 and anything else to an internal error.
    pub(crate) fn from_store(what: &'static str) -> impl FnOnce(StoreError) -> ServiceError {
        move |err| match err {
            StoreError::NotFound => ServiceError::NotFound { what },
            other => other.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ServiceError::NotFound { what: "resource" },
            StoreError::Conflict(what) => ServiceError::conflict("conflict", what),
            StoreError::Unavailable(_) | StoreError::ConnectionLost(_) => ServiceError::Unavailable {
                code: "database_unavailable",
                message: "the database is not reachable right now".into(),
                retry_after_seconds: Some(1),
            },
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<CryptoError> for ServiceError {
    fn from(err: CryptoError) -> Self {
        ServiceError::Internal(format!("stored secret could not be opened: {err}"))
    }
}
