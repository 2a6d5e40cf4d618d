use std::time::Duration;

/// A provider call failed. The classification drives what the vault does next: `InvalidGrant`
/// means the user must re-authorize; `Transient` is retried with backoff; `ResponseLost` means
/// the provider may have acted (e.g. rotated a refresh token) without the vault seeing the result.
/// Messages never contain tokens or secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider rejected the grant ({description})")]
    InvalidGrant { description: String },
    #[error("the provider rejected the client credentials ({description})")]
    InvalidClient { description: String },
    #[error("the provider rejected the request: HTTP {status}, error `{error}` ({description})")]
    Rejected { status: u16, error: String, description: String },
    #[error("the provider answered {status} to the access token")]
    Unauthorized { status: u16 },
    #[error("the provider is temporarily unavailable ({reason})")]
    Transient { reason: String, retry_after: Option<Duration> },
    #[error("the connection to the provider was lost after the request was sent ({reason})")]
    ResponseLost { reason: String },
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

/// Provider-supplied text, shortened and stripped of control characters before it is kept.
pub(crate) fn sanitize(text: &str) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.is_empty() { "no description".into() } else { cleaned }
}
