//! The HTTP client for provider calls: timeouts, no redirects, the egress guard, and failure
//! classification.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::egress::{EgressDenied, EgressPolicy};
use crate::error::{ProviderError, call_site, sanitize};

/// Talks to providers. Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct ProviderHttp {
    pub(crate) client: reqwest::Client,
    pub(crate) egress: EgressPolicy,
}

impl Default for ProviderHttp {
    fn default() -> Self {
        Self::new(Duration::from_secs(15), EgressPolicy::default())
    }
}

impl ProviderHttp {
    /// Redirects are never followed: a token or code must not travel to wherever a provider (or
    /// an attacker in its place) points. Every destination passes `egress`.
    pub fn new(timeout: Duration, egress: EgressPolicy) -> Self {
        let client = egress
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .user_agent(concat!("tokenvault/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client builds");
        Self { client, egress }
    }

    /// Sends a request. A destination the egress guard refuses is `DestinationNotAllowed`
    /// (nothing was sent); another failure before the request left (connect) is `Transient`;
    /// after it left (timeout, reset, truncated response) it is `ResponseLost`, because the
    /// provider may have acted on it.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, ProviderError> {
        let (client, request) = request.build_split();
        let request =
            request.map_err(|_| ProviderError::Config("the request to the provider could not be built".into()))?;
        self.egress.check_url(request.url()).map_err(refused)?;
        client.execute(request).await.map_err(classify_transport)
    }

    /// Reads a JSON body, classifying a lost body as `ResponseLost`.
    pub(crate) async fn json_body(response: Response) -> Result<Value, ProviderError> {
        let bytes = response.bytes().await.map_err(classify_transport)?;
        serde_json::from_slice(&bytes).map_err(|_| ProviderError::Protocol("response body is not JSON".into()))
    }
}

pub(crate) fn refused(denied: EgressDenied) -> ProviderError {
    ProviderError::DestinationNotAllowed(denied.to_string())
}

pub(crate) fn classify_transport(err: reqwest::Error) -> ProviderError {
    let at = err.url().map(call_site).unwrap_or_else(|| "the provider".into());
    let cause = causes(&err);
    if err.is_connect() {
        if is_tls_failure(&cause) {
            return ProviderError::Tls { at, reason: cause };
        }
        ProviderError::Transient { reason: format!("connection to {at} failed: {cause}"), retry_after: None }
    } else if err.is_timeout() {
        ProviderError::ResponseLost { reason: format!("timed out waiting for the response of {at}") }
    } else {
        ProviderError::ResponseLost { reason: format!("connection to {at} closed before a complete response: {cause}") }
    }
}

/// The underlying reasons of a transport error (resolver, TCP, TLS verification), innermost
/// last, without reqwest's own wording or the URL.
fn causes(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = sanitize(&cause.to_string());
        if !parts.iter().any(|p| p.contains(&text) || text.contains(p.as_str())) {
            parts.push(text);
        } else if let Some(last) = parts.last_mut().filter(|p| text.contains(p.as_str())) {
            *last = text;
        }
        source = cause.source();
    }
    let parts: Vec<String> = parts.into_iter().filter(|p| p != "client error (Connect)").collect();
    if parts.is_empty() { "no further detail".into() } else { parts.join(": ") }
}

fn is_tls_failure(cause: &str) -> bool {
    ["certificate", "tls", "handshake", "CertificateRequired", "UnknownIssuer"]
        .iter()
        .any(|needle| cause.contains(needle))
}

/// Maps a non-success token-endpoint response to an error, reading RFC 6749 §5.2 bodies and
/// the providers' variants (Zoom adds `reason`).
pub(crate) async fn oauth_error(response: Response) -> ProviderError {
    let status = response.status();
    let at = call_site(response.url());
    let retry_after = retry_after(&response);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return ProviderError::Transient { reason: format!("HTTP {} from {at}", status.as_u16()), retry_after };
    }
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(err) => return classify_transport(err),
    };
    let error = body.get("error").and_then(Value::as_str).unwrap_or("").to_owned();
    let description = body
        .get("error_description")
        .or_else(|| body.get("reason"))
        .or_else(|| body.get("troubleshoot"))
        .and_then(Value::as_str)
        .map(sanitize)
        .unwrap_or_else(|| "no description".into());
    let status = status.as_u16();
    match error.as_str() {
        "invalid_grant" => ProviderError::InvalidGrant { at, status, description },
        "invalid_client" | "unauthorized_client" => {
            ProviderError::InvalidClient { at, status, error: sanitize(&error), description }
        }
        _ => ProviderError::Rejected {
            at,
            status,
            error: if error.is_empty() { "unknown".into() } else { sanitize(&error) },
            description,
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and read as absent).
pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
