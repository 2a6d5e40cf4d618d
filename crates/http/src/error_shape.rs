//! The outermost middleware: assigns the request id, refuses an oversized request head
//! ([`crate::edge_limits`]), and gives every error response, whoever produced it (the head check,
//! a handler, an extractor, the router's fallback, a timeout or a panic), the one JSON error
//! shape: `{"status", "code", "message", "request_id"}`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument;

use crate::ApiError;
use crate::edge_limits::{self, HeadLimits};
use crate::request_id::{self, HEADER};

pub(crate) async fn layer(State(limits): State<HeadLimits>, mut request: Request, next: Next) -> Response {
    let request_id = request_id::assign(&mut request);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.0,
        method = %request.method(),
        path = %crate::log_redaction::loggable_path(request.uri().path()),
    );
    let started = std::time::Instant::now();
    let response = match edge_limits::check(&limits, &request) {
        Ok(()) => next.run(request).instrument(span.clone()).await,
        Err(refused) => refused.into_response(),
    };
    let mut response = render_error(response, &request_id.0);
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
    });
    response
}

fn render_error(response: Response, request_id: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<crate::pages::RenderedPage>().is_some()
    {
        return response;
    }
    let error = response.extensions().get::<ApiError>().cloned().unwrap_or_else(|| fallback_error(status));
    let (mut parts, _body) = response.into_parts();
    let body = json!({
        "status": status.as_u16(),
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
    });
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Errors produced outside the handlers (router, layers) get a code derived from their status.
fn fallback_error(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this endpoint does not accept that method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is larger than the vault accepts"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the URI is longer than the vault accepts"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("request_headers_too_large", "the request headers are larger than the vault accepts")
        }
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send the body as application/json"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the vault cannot handle this request right now"),
        s if s.is_server_error() => ("internal_error", "the vault failed to handle this request"),
        _ => ("bad_request", "the request could not be handled"),
    };
    ApiError::new(status, code, message)
}
