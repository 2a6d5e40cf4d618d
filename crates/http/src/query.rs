//! A query-string extractor whose rejection is an [`ApiError`].

use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiError;

pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        check_limit(parts.uri.query().unwrap_or(""))?;
        Query::<T>::from_request_parts(parts, state).await.map(|Query(value)| QueryParams(value)).map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("the query parameters are not valid for this endpoint: {}", reason(&rejection.body_text())),
            )
        })
    }
}

/// `limit` is a page size everywhere: one that is not a whole number (`abc`, `-1`, `2.5`, empty)
/// is the same mistake as one out of range, so it gets the same code, `invalid_limit`. The range
/// itself is checked by the list use cases (their message gives it).
fn check_limit(query: &str) -> Result<(), ApiError> {
    let not_a_number =
        form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == "limit").any(|(_, value)| {
            value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.parse::<u32>().is_err()
        });
    if not_a_number {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            "`limit` must be a whole number (a page size)",
        ));
    }
    Ok(())
}

/// serde_urlencoded's reason (`unknown field `x``, `duplicate field `limit``, `invalid digit
/// found in string`), which names fields but never quotes a value.
fn reason(body_text: &str) -> String {
    let text = body_text.trim_start_matches("Failed to deserialize query string: ");
    crate::json::without_values(text)
}
