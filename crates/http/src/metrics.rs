//! `GET /metrics` (Prometheus / OpenMetrics text) and the layer that counts every routed
//! request by its route template, method and status, with its latency.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokenvault_service::{HttpLabels, Vault};

use crate::ApiError;

/// The metrics, behind the optional `--metrics-token` bearer.
pub(crate) async fn metrics(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    vault.authorize_metrics(presented)?;
    let text = vault.render_metrics().await?;
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// Counts a routed request. Methods outside the standard set count as `OTHER`, so a client
/// cannot grow the label set.
pub(crate) async fn record(State(vault): State<Arc<Vault>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        vault.metrics().http_request(HttpLabels { route, method, status: status.as_u16() }, started.elapsed());
    }
    response
}
