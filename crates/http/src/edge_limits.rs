//! Limits on a request's head, its URI and its header lines, checked first thing (after the
//! request id is assigned) so that an oversized request gets the JSON error shape like every
//! other error: `414 uri_too_long`, `431 request_headers_too_large`. hyper has limits of its own
//! while it parses, set well above these in [`crate::serve`]; past them hyper answers by itself,
//! before any request exists, with a status and no body.

use axum::extract::Request;
use axum::http::StatusCode;

use crate::ApiError;

/// The largest request head the vault reads. Generous for browsers and API clients (big cookies
/// and bearer tokens included), small enough that a request cannot make the vault hold much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Bytes of the request target (path and query; scheme and authority if absolute-form).
    pub max_uri_bytes: usize,
    /// Header lines, duplicates counted.
    pub max_headers: usize,
    /// Bytes of all header lines together, each counted as `name: value` plus its line end.
    pub max_header_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self { max_uri_bytes: 8 * 1024, max_headers: 100, max_header_bytes: 32 * 1024 }
    }
}

pub(crate) fn check(limits: &HeadLimits, request: &Request) -> Result<(), ApiError> {
    let uri = request.uri();
    let uri_bytes = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, str::len);
    if uri_bytes > limits.max_uri_bytes {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URI is {uri_bytes} bytes long; the vault accepts at most {}", limits.max_uri_bytes),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > limits.max_headers || header_bytes > limits.max_header_bytes {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large",
            format!(
                "the request has {} header lines, {header_bytes} bytes; the vault accepts at most {} lines and {} bytes",
                headers.len(),
                limits.max_headers,
                limits.max_header_bytes
            ),
        ));
    }
    Ok(())
}
