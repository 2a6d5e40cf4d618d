//! `/v1/proxy/{grant_id}/{path}`: any method, forwarded with the credential injected.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use tokenvault_service::{ProxyOutcome, ProxyRequest, Vault};

use crate::ApiError;
use crate::auth::AppCaller;

/// The `Allow` header of a refused method (the common ones; other methods are forwarded too).
const PROXY_ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

pub(crate) async fn proxy(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(params): Path<Vec<(String, String)>>,
    OriginalUri(original): OriginalUri,
    request: Request,
) -> Result<Response, ApiError> {
    let context = &caller.context;
    // TRACE and CONNECT are never forwarded: TRACE would echo the injected credential back
    // (cross-site tracing), CONNECT is not a request to an API.
    if matches!(request.method(), &Method::TRACE | &Method::CONNECT) {
        let mut refused = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the proxy forwards every method except TRACE and CONNECT",
        )
        .into_response();
        refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static(PROXY_ALLOW));
        return Ok(refused);
    }
    let grant_id = params.iter().find(|(k, _)| k == "grant_id").map(|(_, v)| v.clone()).unwrap_or_default();
    let (parts, body) = request.into_parts();
    // The raw path keeps its percent-encoding, so encoded slashes can be seen and refused.
    let prefix = format!("/v1/proxy/{grant_id}");
    let path = original.path().strip_prefix(&prefix).unwrap_or("/").to_owned();
    let proxied = ProxyRequest {
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: Box::pin(body.into_data_stream().map_err(std::io::Error::other)),
    };
    let response = match vault.proxy(&caller.app_id, &grant_id, proxied, context).await? {
        ProxyOutcome::Forwarded(response) => response,
        ProxyOutcome::Held(approval) => return Ok(super::approvals::held(&approval)),
    };
    let mut out = Response::new(Body::from_stream(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    *out.headers_mut() = response.headers;
    // Upstream errors are the provider's answer, passed through unchanged.
    out.extensions_mut().insert(crate::pages::RenderedPage);
    Ok(out.into_response())
}
