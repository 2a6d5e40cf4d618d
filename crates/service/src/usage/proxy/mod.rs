//! The proxy: the app calls a provider's API through the vault, which injects the credential.
//!
//! Safety rules: the upstream is always the grant's own API base (from the catalog or the
//! grant, e.g. Zoom's `api_url`); the path is appended to it and refused if it could escape
//! (`//`, `\`, dot segments, encoded `/`, `\` or `.`, a leading `@`); the caller's
//! `Authorization`, cookies and hop-by-hop headers are never forwarded (see [`headers`]);
//! the token goes only in the `Authorization` header; redirects are never followed, and a
//! redirect to another origin is refused; the egress guard refuses a loopback, private or
//! link-local upstream address (502 `destination_not_allowed`), judged when it is dialled. Policies are checked before anything touches the
//! provider (no refresh for a call that will be denied). Bodies stream both ways; a request body
//! up to 64 KiB is kept so that a 401 can be answered by one refresh and one replay. Every call,
//! including one stopped early, leaves one `proxy.request` audit row (see [`audit`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use http::{HeaderMap, Method};
use secrecy::ExposeSecret;
use url::Url;

pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod headers;
pub(crate) mod meter;
pub(crate) mod target;

use crate::access::request::Access;
use crate::lifecycle::refresh::{RefreshOutcome, RefreshTrigger};
use crate::usage::proxy::audit::ProxyAudit;
pub use crate::usage::proxy::body::{BodyStream, read_capped};
use crate::usage::proxy::body::{OutgoingBody, ResponseBody, metered_request};
use crate::usage::proxy::headers::{request_headers, response_headers};
use crate::usage::proxy::meter::BodyMeter;
use crate::usage::proxy::target::{Credential, ProxyTarget};
use crate::{CallContext, IdKind, ServiceError, Vault};

/// Size and time limits of proxied calls (documented in docs/proxy-policies-audit.md).
#[derive(Debug, Clone)]
pub struct ProxyLimits {
    /// Largest request body: a larger declared `Content-Length` gets 413 at once, a larger
    /// streamed body is cut off at the cap (413).
    pub max_request_bytes: u64,
    /// Largest response body: a larger declared `Content-Length` gets 502, a larger streamed body
    /// is cut off at the cap (the caller sees an incomplete body, never a complete-looking one).
    pub max_response_bytes: u64,
    /// From sending the request (upload included) to the provider's status and headers; then 504.
    pub response_timeout: Duration,
    /// Longest pause between two pieces of the response body; then the stream is cut off.
    pub idle_timeout: Duration,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 10 * 1024 * 1024,
            max_response_bytes: 100 * 1024 * 1024,
            response_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
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

/// What became of a proxied call: forwarded (the provider's answer), or held for approval.
pub enum ProxyOutcome {
    Forwarded(ProxyResponse),
    Held(Box<crate::usage::approvals::ApprovalView>),
}

/// What [`Vault::forward`] got to.
enum Forwarded {
    Upstream(Upstream),
    Held(crate::usage::approvals::ApprovalView),
}

/// The provider's answer before it is wrapped for the caller.
struct Upstream {
    status: u16,
    headers: HeaderMap,
    body: BodyStream,
    /// Time spent waiting for the provider (every attempt), to tell the vault's own share.
    at_provider: std::time::Duration,
}

const REPLAYABLE_BODY_LIMIT: u64 = 64 * 1024;

fn refused(code: &'static str, message: &str) -> ServiceError {
    ServiceError::invalid(code, message)
}

fn request_too_large() -> ServiceError {
    ServiceError::Gateway {
        status: 413,
        code: "payload_too_large",
        message: "the request body is larger than the proxy accepts".into(),
    }
}

fn upstream_timeout() -> ServiceError {
    ServiceError::Gateway {
        status: 504,
        code: "upstream_timeout",
        message: "the provider did not answer in time".into(),
    }
}

/// Why a proxied request got no answer: the egress guard refused the address (nothing was sent),
/// the request body grew over the limit, no answer in time, or no connection.
fn send_failure(error: &reqwest::Error, meter: &BodyMeter) -> ServiceError {
    if let Some(denied) = tokenvault_providers::EgressDenied::find(error) {
        crate::outbound::egress::refused_call(&format!("the call was not sent: {denied}"))
    } else if meter.over_limit() {
        request_too_large()
    } else if error.is_timeout() {
        upstream_timeout()
    } else {
        ServiceError::Unavailable {
            code: "upstream_unavailable",
            message: "the provider could not be reached".into(),
            retry_after_seconds: Some(2),
        }
    }
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
}

/// A caller may not send the parameter a query-style secret is injected as: the upstream would see
/// two values and could pick the caller's.
fn refuse_reserved_query_parameter(parameter: &str, query: Option<&str>) -> Result<(), ServiceError> {
    let clashes = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).any(|(key, _)| key == parameter);
    if clashes {
        return Err(ServiceError::invalid(
            "reserved_query_parameter",
            format!("the query parameter `{parameter}` is set by the vault for this managed secret"),
        ));
    }
    Ok(())
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

impl Vault {
    /// Forwards one request to the grant's provider API with the credential injected. Every call
    /// is audited: an early stop at once, a streamed answer when its body ends or is dropped.
    /// A call a `require_approval` rule matches is not forwarded: it is held, and the approval
    /// to poll is returned instead.
    pub async fn proxy(
        &self,
        app_id: &str,
        grant_id: &str,
        request: ProxyRequest,
        context: &CallContext,
    ) -> Result<ProxyOutcome, ServiceError> {
        self.proxy_call(app_id, grant_id, request, context, None).await
    }

    /// [`Vault::proxy`]; `approved` names the approval whose held call this is (its execution).
    pub(crate) async fn proxy_call(
        &self,
        app_id: &str,
        grant_id: &str,
        request: ProxyRequest,
        context: &CallContext,
        approved: Option<&str>,
    ) -> Result<ProxyOutcome, ServiceError> {
        let meter = Arc::new(BodyMeter::default());
        let mut audit = ProxyAudit::start(
            self.audit_sink(),
            app_id,
            &request.method,
            &request.path,
            request.query.as_deref(),
            context,
            meter.clone(),
        )
        .await?;
        let method = request.method.clone();
        let started = std::time::Instant::now();
        match self.forward(app_id, grant_id, request, context, &mut audit, &meter, approved).await {
            Ok(Forwarded::Held(approval)) => {
                audit.held(&approval.id);
                Ok(ProxyOutcome::Held(Box::new(approval)))
            }
            Ok(Forwarded::Upstream(upstream)) => {
                let added = started.elapsed().saturating_sub(upstream.at_provider);
                self.metrics.proxy_call(audit.provider(), Some(upstream.status), Some(added));
                let expects_body = method != Method::HEAD && !matches!(upstream.status, 100..=199 | 204 | 304);
                let limits = &self.config.proxy_limits;
                let body = ResponseBody::new(
                    upstream.body,
                    limits.max_response_bytes,
                    limits.idle_timeout,
                    audit,
                    expects_body,
                    content_length(&upstream.headers),
                );
                Ok(ProxyOutcome::Forwarded(ProxyResponse {
                    status: upstream.status,
                    headers: upstream.headers,
                    body: Box::pin(body),
                }))
            }
            Err(error) => {
                self.metrics.proxy_call(audit.provider(), audit.upstream_status(), None);
                audit.failed(&error);
                Err(error)
            }
        }
    }

    async fn forward(
        &self,
        app_id: &str,
        grant_id: &str,
        request: ProxyRequest,
        context: &CallContext,
        audit: &mut ProxyAudit,
        meter: &Arc<BodyMeter>,
        approved: Option<&str>,
    ) -> Result<Forwarded, ServiceError> {
        let grant_id = IdKind::Grant.parse(grant_id)?;
        // An agent reaches only what is delegated to it: anything else is 404, like an unknown id.
        let delegation = self.delegation_for(context, &grant_id).await?;
        // An unknown grant is 404 whatever the headers say: the base URL header is judged after.
        let requested_base = crate::usage::base_urls::requested_base_url(&request.headers);
        let subject =
            self.proxy_subject(app_id, &grant_id, requested_base.as_ref().ok().and_then(Option::as_deref)).await?;
        let requested_base = requested_base?;
        let (id, provider, end_user_id) = subject.identity();
        audit.subject(id, provider, end_user_id);
        if let Some(delegation) = &delegation {
            crate::access::delegations::check_delegated_call(delegation, request.method.as_str(), &request.path)?;
        }
        let access = Access::Proxy { method: request.method.as_str(), path: &request.path };
        let mut scope = subject.scope();
        scope.delegation_id = delegation.as_ref().map(|d| d.id.clone());
        let decision = self.decide(&scope, access, context, approved.is_some()).await?;
        let mut text = crate::usage::token::with_delegation(decision.text, delegation.as_ref());
        if let Some(approval_id) = approved {
            text = format!("{text}; approved in {approval_id}");
        }
        audit.allowed(text);
        // No credential is used while the audit log cannot record its use.
        self.audit_sink().ensure_writable()?;
        if let Some(hold) = decision.hold {
            let held = crate::usage::approvals::HeldSubject {
                grant_id: id,
                provider,
                end_user_id,
                base_url: requested_base.clone(),
            };
            let view = self.hold_for_approval(app_id, held, hold, request, meter, context).await?;
            return Ok(Forwarded::Held(view));
        }

        let limits = &self.config.proxy_limits;
        let declared = content_length(&request.headers);
        if declared.is_some_and(|n| n > limits.max_request_bytes) {
            return Err(request_too_large());
        }
        let headers = request_headers(&request.headers);
        let body = metered_request(request.body, limits.max_request_bytes, meter.clone());
        let small = declared.is_some_and(|n| n <= REPLAYABLE_BODY_LIMIT)
            || declared.is_none() && matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut body = if small {
            OutgoingBody::keep_up_to(body, REPLAYABLE_BODY_LIMIT).await.map_err(|_| {
                if meter.over_limit() {
                    request_too_large()
                } else {
                    ServiceError::invalid("invalid_request_body", "the request body could not be read")
                }
            })?
        } else {
            OutgoingBody::Streamed(Some(body))
        };

        // Only now may the provider be contacted (a refresh if the token expires soon).
        let target = self.proxy_target(subject, requested_base.as_deref()).await?;
        if let Credential::Query { parameter, .. } = &target.credential {
            refuse_reserved_query_parameter(parameter, request.query.as_deref())?;
        }
        let url = upstream_url(&target.base, &request.path, request.query.as_deref())?;
        audit.upstream(&url);
        self.check_dial(&url)
            .map_err(|denied| crate::outbound::egress::refused_call(&format!("the call was not sent: {denied}")))?;
        let mut renewed: Option<Credential> = None;
        let mut retried = false;
        let mut at_provider = std::time::Duration::ZERO;
        loop {
            let upstream = self.proxy_http.request(request.method.clone(), url.clone()).headers(headers.clone());
            let upstream = renewed.as_ref().unwrap_or(&target.credential).apply(upstream).body(body.next_attempt());
            let sent = std::time::Instant::now();
            let answer = tokio::time::timeout(limits.response_timeout, upstream.send()).await;
            at_provider += sent.elapsed();
            let response = match answer {
                Err(_) => return Err(upstream_timeout()),
                Ok(Err(error)) => return Err(send_failure(&error, meter)),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            audit.answered(status.as_u16());
            if status == reqwest::StatusCode::UNAUTHORIZED && !retried && target.refreshable_grant.is_some() {
                if let Some(fresh) = self.after_upstream_401(&target, body.is_replayable()).await? {
                    renewed = Some(fresh);
                    retried = true;
                    continue;
                }
            } else if status == reqwest::StatusCode::UNAUTHORIZED
                && target.refreshable_grant.is_none()
                && let Some(grant) = &target.grant
            {
                self.mark_needs_reauth(grant, "provider_rejected_token", None).await?;
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
            if content_length(response.headers()).is_some_and(|n| n > limits.max_response_bytes) {
                return Err(ServiceError::Gateway {
                    status: 502,
                    code: "upstream_response_too_large",
                    message: "the provider's response is larger than the proxy passes on".into(),
                });
            }
            let headers = response_headers(response.headers());
            let body = Box::pin(response.bytes_stream().map_err(std::io::Error::other));
            return Ok(Forwarded::Upstream(Upstream { status: status.as_u16(), headers, body, at_provider }));
        }
    }

    /// On an upstream 401: refresh once (shared with other callers) and return the new
    /// credential if the request can be replayed. A body that cannot be replayed still gets the
    /// refresh, so the caller's next attempt works; this one's 401 is returned.
    async fn after_upstream_401(
        &self,
        target: &ProxyTarget,
        replayable: bool,
    ) -> Result<Option<Credential>, ServiceError> {
        let Some(grant) = &target.grant else { return Ok(None) };
        let outcome =
            self.refresh_grant(&grant.id, RefreshTrigger::Caller { seen_generation: grant.token_generation }).await?;
        if !matches!(outcome, RefreshOutcome::Refreshed | RefreshOutcome::AlreadyFresh) || !replayable {
            return Ok(None);
        }
        let fresh = self.store.find_grant(&grant.id).await?;
        let token = self.open_grant_secret(&fresh, "access_token", fresh.access_token.as_ref()).await?;
        Ok(token.map(|t| Credential::Bearer(t.expose_secret().to_owned().into())))
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
