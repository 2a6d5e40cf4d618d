//! Endpoints every API host serves for the vault's proxy tests: an echo of the request as
//! received, a redirect to the evil host, and a chunked stream. All need a valid access token of
//! the host's provider and fail with that provider's own 401 shape.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::json;

use crate::fault::Endpoint;
use crate::params::Params;
use crate::provider::{Host, Provider};
use crate::server::{HostCtx, endpoint};
use crate::tokens::Grant;
use crate::{aircall, dialpad, generic, responses, zoom};

/// Largest stream the fakes produce.
const MAX_STREAM: u64 = 1 << 30;

pub fn routes(prefix: &str, ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route(&format!("{prefix}/echo"), endpoint(any(echo), ctx, Endpoint::Api))
        .route(&format!("{prefix}/echo/{{*rest}}"), endpoint(any(echo), ctx, Endpoint::Api))
        .route(&format!("{prefix}/redirect-evil"), endpoint(any(redirect_evil), ctx, Endpoint::Api))
        .route(&format!("{prefix}/stream"), endpoint(get(stream), ctx, Endpoint::Api))
        .route(&format!("{prefix}/headers"), endpoint(get(with_headers), ctx, Endpoint::Api))
}

/// Bearer check in the answering provider's own style.
fn authenticate(ctx: &HostCtx, headers: &HeaderMap, uri: &Uri) -> Result<Grant, Response> {
    match ctx.provider() {
        Provider::DialpadProduction | Provider::DialpadSandbox => dialpad::authenticate_api(ctx, headers, uri),
        Provider::Zoom => zoom::authenticate_api(ctx, headers, uri),
        Provider::Aircall => aircall::authenticate_api(ctx, headers, uri),
        Provider::Generic => generic::authenticate_api(ctx, headers, uri),
    }
}

async fn echo(State(ctx): State<HostCtx>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = authenticate(&ctx, &headers, &uri) {
        return response;
    }
    let mut echoed: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        echoed
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    responses::json(
        200,
        &json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query(),
            "headers": echoed,
            "body_len": body.len(),
            "host": ctx.host.as_str(),
        }),
    )
}

/// A 302 to the evil host, for checking that the proxy does not follow redirects with the token.
async fn redirect_evil(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(response) = authenticate(&ctx, &headers, &uri) {
        return response;
    }
    let target = format!("{}/stolen?from={}", ctx.control.base_url(Host::Evil), ctx.host.as_str());
    responses::redirect(302, &target)
}

/// `?bytes=N[&chunk=K][&delay_ms=D][&declare_length=1]`: N bytes of `x` in K-byte chunks, D ms
/// apart, chunked unless the length is declared up front in `Content-Length`.
async fn stream(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(response) = authenticate(&ctx, &headers, &uri) {
        return response;
    }
    let params = Params::from_query(uri.query());
    let number = |name: &str, default: u64| params.get(name).map_or(Ok(default), str::parse::<u64>);
    let (Ok(total), Ok(chunk), Ok(delay_ms)) = (number("bytes", 65_536), number("chunk", 8_192), number("delay_ms", 0))
    else {
        return responses::json(400, &json!({ "error": "bytes, chunk and delay_ms must be integers" }));
    };
    let total = total.min(MAX_STREAM);
    let chunk = chunk.clamp(1, 1 << 20);
    let chunks = futures_util::stream::unfold(total, move |remaining| async move {
        if remaining == 0 {
            return None;
        }
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        let n = remaining.min(chunk);
        // `n` is at most 1 MiB, so it fits in usize.
        let bytes = Bytes::from(vec![b'x'; n as usize]);
        Some((Ok::<_, Infallible>(bytes), remaining - n))
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/octet-stream"));
    if params.get("declare_length") == Some("1") {
        response.headers_mut().insert(axum::http::header::CONTENT_LENGTH, axum::http::HeaderValue::from(total));
    }
    response
}

/// `?name=value&...`: a small JSON answer carrying each pair as a response header (appended, so
/// a name may repeat), for checking which headers the proxy passes back.
async fn with_headers(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(response) = authenticate(&ctx, &headers, &uri) {
        return response;
    }
    let mut response = responses::json(200, &json!({ "ok": true }));
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_str(&value))
        else {
            return responses::json(400, &json!({ "error": "invalid header" }));
        };
        response.headers_mut().append(name, value);
    }
    response
}
