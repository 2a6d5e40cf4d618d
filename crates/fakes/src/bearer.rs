//! Reading bearer tokens the ways providers accept them (RFC 6750).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The token from `Authorization: Bearer <token>` (scheme compared case-insensitively).
pub fn from_header(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
