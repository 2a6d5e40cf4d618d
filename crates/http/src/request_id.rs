//! One id per request: taken from a sane incoming `x-request-id` or generated, recorded on the
//! request's tracing span, and echoed in the response header.

use axum::extract::Request;
use axum::http::HeaderValue;

pub(crate) const HEADER: &str = "x-request-id";

/// The request id, stored in request and response extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

/// Accepts a caller's id only if it is short and plain, so logs cannot be forged through it.
fn acceptable(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| text.to_owned())
}

pub(crate) fn assign(request: &mut Request) -> RequestId {
    let id =
        request.headers().get(HEADER).and_then(acceptable).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let id = RequestId(id);
    request.extensions_mut().insert(id.clone());
    id
}
