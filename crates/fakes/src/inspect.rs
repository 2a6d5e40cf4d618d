//! What tests read back: token-endpoint traffic and raw recorded requests.

use serde::Serialize;

use crate::provider::Host;

/// One request to a token endpoint, as the provider saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenRequestLog {
    /// Fake-clock unix seconds.
    pub at: u64,
    /// Empty when the request carried none.
    pub grant_type: String,
    pub client_id: Option<String>,
    pub code: Option<String>,
    pub refresh_token: Option<String>,
    pub code_verifier: Option<String>,
    pub redirect_uri: Option<String>,
    /// `"basic"`, `"body"` or `"none"`.
    pub client_auth: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The status the endpoint produced (also when a `DropAfterCommit` fault swallowed it).
    pub outcome_status: u16,
}

/// A request as it arrived at a host (kept for every host; the evil host's list is the one SSRF
/// tests read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub host: Host,
    pub method: String,
    /// Path plus `?query` when present.
    pub path: String,
    /// Header names lower-cased, in arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

impl RecordedRequest {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
