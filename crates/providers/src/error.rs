use std::time::Duration;

/// A provider call failed. The classification drives what the vault does next: `InvalidGrant`
/// means the user must re-authorize; `Transient` is retried with backoff; `ResponseLost` means
/// the provider may have acted (e.g. rotated a refresh token) without the vault seeing the result.
/// Messages never contain tokens or secrets.
/// Every variant that stems from a call says where it went (`at`: host, port and path, never a
/// query) and what came back (status, the provider's error code and description, or for TLS the
/// verification failure), so an operator can read why a provider call failed without the code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider rejected the grant at {at}: HTTP {status} `invalid_grant` ({description})")]
    InvalidGrant { at: String, status: u16, description: String },
    #[error("the provider rejected the client credentials at {at}: HTTP {status} `{error}` ({description})")]
    InvalidClient { at: String, status: u16, error: String, description: String },
    #[error("the provider rejected the request at {at}: HTTP {status} `{error}` ({description})")]
    Rejected { at: String, status: u16, error: String, description: String },
    #[error("the provider answered HTTP {status} to the access token at {at}")]
    Unauthorized { at: String, status: u16 },
    #[error("the provider is temporarily unavailable ({reason})")]
    Transient { reason: String, retry_after: Option<Duration> },
    #[error("the connection to the provider was lost after the request was sent ({reason})")]
    ResponseLost { reason: String },
    /// The TLS handshake failed: most often a certificate the vault does not trust (a private
    /// CA: see `--ca-file`). Nothing was sent.
    #[error("TLS connection to {at} failed: {reason}")]
    Tls { at: String, reason: String },
    #[error("the provider's response could not be understood: {0}")]
    Protocol(String),
    #[error("provider configuration error: {0}")]
    Config(String),
    /// The vault's egress guard refused the provider's address (loopback, private, link-local,
    /// ...); nothing was sent. Retrying does not help until an operator allows the destination.
    #[error("the egress guard refused the provider's address: {0}")]
    DestinationNotAllowed(String),
}

impl ProviderError {
    /// True when the provider said the code or refresh token is dead: re-authorize, do not retry.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, ProviderError::InvalidGrant { .. })
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }
}

/// Where a call went, for messages: host, port if not the default, and path; never the query.
pub fn call_site(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}

/// Provider-supplied text, shortened and stripped of control characters before it is kept.
pub(crate) fn sanitize(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.is_empty() { "no description".into() } else { cleaned }
}
