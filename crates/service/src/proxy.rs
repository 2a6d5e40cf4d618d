//! The proxy: the app calls a provider's API through the vault, which injects the credential.
//!
//! Safety rules: the upstream is always the grant's own API base (from the catalog or the
//! grant, e.g. Zoom's `api_url`); the path is appended to it and refused if it could escape
//! (`//`, `\`, dot segments, encoded `/`, `\` or `.`, a leading `@`); the caller's
//! `Authorization`, cookies and hop-by-hop headers are never forwarded; the token goes only in
//! the `Authorization` header; redirects are never followed, and a redirect to another origin
//! is refused. Bodies stream both ways; a request body up to 64 KiB is kept so that a 401 can
//! be answered by one refresh and one replay.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, Method};
use secrecy::ExposeSecret;
use url::Url;

use crate::refresh::{RefreshOutcome, RefreshTrigger};
use crate::{CallContext, IdKind, ServiceError, Vault};

/// A streamed body.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Limits of the proxy (documented in docs/proxy.md).
#[derive(Debug, Clone)]
pub struct ProxyLimits {
    pub max_request_bytes: u64,
    pub max_response_bytes: u64,
    pub timeout: Duration,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 10 * 1024 * 1024,
            max_response_bytes: 100 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

pub struct ProxyRequest {
    pub method: Method,
    /// The raw (still percent-encoded) path after `/v1/proxy/{grant_id}`.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

pub struct ProxyResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

const REPLAYABLE_BODY_LIMIT: u64 = 64 * 1024;
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];
const NEVER_FORWARDED: &[&str] =
    &["authorization", "cookie", "x-actor-type", "x-actor-id", "x-actor-reason", "x-forwarded-for", "forwarded"];

fn refused(code: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid(code, message)
}

/// Checks a raw proxied path and appends it to the base. Returns the upstream URL.
pub(crate) fn upstream_url(base: &Url, raw_path: &str, query: Option<&str>) -> Result<Url, ServiceError> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let lower = path.to_ascii_lowercase();
    let bad = path.starts_with('@')
        || path.starts_with('/')
        || path.contains("//")
        || path.contains('\\')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains("%00")
        || path.split('/').any(|segment| segment == "." || segment == "..")
        || path.chars().any(|c| c.is_control() || c == ' ' || c == '#');
    if bad {
        return Err(refused("invalid_proxy_path", "the path could leave the provider's API; it is refused"));
    }
    let base_path = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{base_path}/{path}"));
    url.set_query(query.filter(|q| !q.is_empty()));
    if url.origin() != base.origin() || !url.path().starts_with(base_path) {
        return Err(refused("invalid_proxy_path", "the path could leave the provider's API; it is refused"));
    }
    Ok(url)
}

fn forwardable(name: &HeaderName) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name) && !NEVER_FORWARDED.contains(&name) && !name.starts_with("x-tokenvault-")
}

/// Caps a stream at `limit` bytes, failing it when exceeded.
fn limited(stream: BodyStream, limit: u64) -> BodyStream {
    let mut seen = 0u64;
    Box::pin(stream.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(std::io::Error::other("body larger than the proxy accepts"));
        }
        Ok(chunk)
    }))
}

enum OutgoingBody {
    Buffered(Bytes),
    Streamed(Option<BodyStream>),
}

impl Vault {
    /// Forwards one request to the grant's provider API with the credential injected.
    pub async fn proxy(
        &self,
        app_id: &str,
        grant_id: &str,
        request: ProxyRequest,
        context: &CallContext,
    ) -> Result<ProxyResponse, ServiceError> {
        let grant_id = IdKind::Grant.parse(grant_id)?;
        let started = Instant::now();
        let requested_base = crate::managed_secrets::requested_base_url(&request.headers)?;
        let target = self.proxy_target(app_id, &grant_id, requested_base.as_deref()).await?;
        self.check_policies(
            &target.scope,
            crate::policies::Access::Proxy { method: request.method.as_str(), path: &request.path },
            context,
        )
        .await?;
        let url = upstream_url(&target.base, &request.path, request.query.as_deref())?;
        let limits = &self.config.proxy_limits;
        let declared = request
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_request_bytes) {
            return Err(ServiceError::invalid(
                "payload_too_large",
                "the request body is larger than the proxy accepts",
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            if forwardable(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let mut body = if declared.is_some_and(|n| n <= REPLAYABLE_BODY_LIMIT)
            || matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS) && declared.is_none()
        {
            let bytes = limited(request.body, REPLAYABLE_BODY_LIMIT.max(declared.unwrap_or(0)))
                .try_fold(Vec::new(), |mut acc, chunk| async move {
                    acc.extend_from_slice(&chunk);
                    Ok(acc)
                })
                .await
                .map_err(|_| ServiceError::invalid("payload_too_large", "the request body is larger than declared"))?;
            OutgoingBody::Buffered(Bytes::from(bytes))
        } else {
            OutgoingBody::Streamed(Some(limited(request.body, limits.max_request_bytes)))
        };

        let mut renewed: Option<crate::proxy_target::Credential> = None;
        let mut retried = false;
        loop {
            let outgoing = match &mut body {
                OutgoingBody::Buffered(bytes) => reqwest::Body::from(bytes.clone()),
                OutgoingBody::Streamed(stream) => match stream.take() {
                    Some(stream) => reqwest::Body::wrap_stream(stream),
                    None => reqwest::Body::from(Bytes::new()),
                },
            };
            let mut upstream = self
                .proxy_http
                .request(request.method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(limits.timeout);
            upstream = renewed.as_ref().unwrap_or(&target.credential).apply(upstream);
            let response = upstream.body(outgoing).send().await.map_err(|e| {
                let message = if e.is_timeout() {
                    "the provider did not answer in time"
                } else {
                    "the provider could not be reached"
                };
                ServiceError::Unavailable {
                    code: "upstream_unavailable",
                    message: message.into(),
                    retry_after_seconds: Some(2),
                }
            })?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !retried && target.refreshable_grant.is_some() {
                let replayable = matches!(body, OutgoingBody::Buffered(_));
                if let Some(fresh) = self.after_upstream_401(&target, replayable).await? {
                    renewed = Some(fresh);
                    retried = true;
                    continue;
                }
            } else if status == reqwest::StatusCode::UNAUTHORIZED
                && target.refreshable_grant.is_none()
                && let Some(grant) = &target.grant
            {
                self.mark_needs_reauth(grant, "provider_rejected_token").await?;
            }
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                if location.is_none_or(|l| l.origin() != target.base.origin()) {
                    return Err(ServiceError::Forbidden {
                        code: "upstream_redirect_refused",
                        message: "the provider redirected to another host; the vault does not follow it".into(),
                    });
                }
            }
            let mut response_headers = HeaderMap::new();
            for (name, value) in response.headers() {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    response_headers.append(name.clone(), value.clone());
                }
            }
            let stream = response.bytes_stream().map_err(std::io::Error::other);
            let body = limited(Box::pin(stream), limits.max_response_bytes);
            tracing::info!(grant_id = %grant_id, method = %request.method, host = url.host_str().unwrap_or_default(), status = status.as_u16(), latency_ms = started.elapsed().as_millis() as u64, "proxied");
            self.audit(crate::audit::AuditEntry::proxy(
                app_id,
                &target,
                &request.method,
                &url,
                status.as_u16(),
                started.elapsed(),
                context,
            ));
            return Ok(ProxyResponse { status: status.as_u16(), headers: response_headers, body });
        }
    }

    /// On an upstream 401: refresh once (shared with other callers) and return the new
    /// credential if the request can be replayed.
    async fn after_upstream_401(
        &self,
        target: &crate::proxy_target::ProxyTarget,
        replayable: bool,
    ) -> Result<Option<crate::proxy_target::Credential>, ServiceError> {
        let Some(grant) = &target.grant else { return Ok(None) };
        let outcome = self
            .refresh_grant(&grant.id, RefreshTrigger::Caller { seen_access_token: grant.access_token.clone() })
            .await?;
        if !matches!(outcome, RefreshOutcome::Refreshed | RefreshOutcome::AlreadyFresh) || !replayable {
            return Ok(None);
        }
        let fresh = self.store.find_grant(&grant.id).await?;
        let token = self.open_grant_secret(&fresh, "access_token", fresh.access_token.as_ref()).await?;
        Ok(token.map(|t| crate::proxy_target::Credential::Bearer(t.expose_secret().to_owned().into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.zoom.us/v2").unwrap()
    }

    #[test]
    fn paths_stay_on_the_base() {
        assert_eq!(upstream_url(&base(), "/users/me", None).unwrap().as_str(), "https://api.zoom.us/v2/users/me");
        assert_eq!(
            upstream_url(&base(), "/users/a@b.example", Some("x=1")).unwrap().as_str(),
            "https://api.zoom.us/v2/users/a@b.example?x=1"
        );
        let root = Url::parse("https://api.aircall.io").unwrap();
        assert_eq!(upstream_url(&root, "/v1/ping", None).unwrap().as_str(), "https://api.aircall.io/v1/ping");
    }

    #[test]
    fn escaping_paths_are_refused() {
        for path in [
            "//evil.test/",
            "/@evil.test",
            "/%2F%2Fevil.test",
            "/a/%2e%2e/b",
            "/../x",
            "/a/./b",
            "/a\\b",
            "/x%5cy",
            "/a%00",
            "/a b",
            "https://evil.test/",
        ] {
            assert!(upstream_url(&base(), path, None).is_err(), "{path}");
        }
    }
}
