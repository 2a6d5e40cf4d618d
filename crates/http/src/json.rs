//! A JSON body extractor whose every rejection is an [`ApiError`] in the common shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Like `axum::Json`, with clear error codes: `malformed_json` (400), `body_not_object` (400),
/// `invalid_body` (422), `payload_too_large` (413), `unsupported_media_type` (415).
///
/// Every request body of the API is a JSON object. serde would also read a struct from a JSON
/// array (its fields in order), and the OpenAPI document promises an object, so anything else
/// (an array, a string, a number, `null`) is refused with `400 body_not_object`.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(request, state).await.map_err(reject)?;
        if !value.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_not_object",
                "the body must be a JSON object (`{...}`)",
            ));
        }
        serde_json::from_value(value).map(JsonBody).map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", without_values(&e.to_string()))
        })
    }
}

/// [`JsonBody`] for an endpoint whose body is optional: no body at all is `T::default()`.
pub(crate) struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
        })?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(T::default()));
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        JsonBody::<T>::from_request(request, state).await.map(|JsonBody(value)| OptionalJsonBody(value))
    }
}

fn reject(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {}", without_values(&e.body_text())),
        ),
        JsonRejection::JsonDataError(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", without_values(&e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the vault accepts",
        ),
        other => ApiError::new(other.status(), "invalid_body", "the request body could not be read"),
    }
}

/// serde messages quote offending values (`invalid type: string "…"`); a misplaced secret must
/// not be echoed back or logged, so quoted strings are cut out of the message.
pub(crate) fn without_values(message: &str) -> String {
    let message = message.trim_start_matches("Failed to deserialize the JSON body into the target type: ");
    let message = message.trim_start_matches("Failed to parse the request body as JSON: ");
    let mut out = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        match (c, in_quotes) {
            ('"', false) => in_quotes = true,
            ('"', true) => {
                in_quotes = false;
                out.push_str("(value hidden)");
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_values_are_hidden() {
        let msg = r#"name: invalid type: string "hunter2", expected u32 at line 1 column 18"#;
        let shown = without_values(msg);
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("expected u32"));
        assert_eq!(without_values("unknown field `nme`, expected `name`"), "unknown field `nme`, expected `name`");
    }
}
