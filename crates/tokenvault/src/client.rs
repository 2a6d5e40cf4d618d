//! The CLI's HTTP client for a running vault: one place that adds the credential, declares the
//! actor, and turns every answer into a JSON value or a [`Failure`].
//!
//! The credential only ever goes into a sensitive `Authorization` header: it is in no URL, no
//! message and no `Debug` output. Redirects are not followed, so it is never sent anywhere else.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::profiles::Target;

/// Exit codes beyond clap's own `2` for usage errors.
pub mod exit {
    /// A local problem: bad input, the profile file, a direct database operation.
    pub const LOCAL: u8 = 1;
    /// The vault refused the request (4xx).
    pub const REFUSED: u8 = 3;
    /// The vault failed (5xx), could not be reached, or did not answer like the API.
    pub const UNAVAILABLE: u8 = 4;
}

/// Why a call to the vault did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The vault's JSON error.
    Api { status: u16, code: String, message: String, request_id: Option<String> },
    /// The vault could not be reached, or answered with something that is not the API.
    Unavailable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api { code, message, request_id, .. } => {
                write!(f, "{code}: {message}")?;
                if let Some(id) = request_id {
                    write!(f, " (request {id})")?;
                }
                Ok(())
            }
            Failure::Unavailable(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Failure {}

/// The exit code for an error that ends the program.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<Failure>() {
        Some(Failure::Api { status, .. }) if (400..500).contains(status) => exit::REFUSED,
        Some(_) => exit::UNAVAILABLE,
        None => exit::LOCAL,
    }
}

/// Which credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The operator's admin token (`/admin/v1`).
    Admin,
    /// An app's API key (`/v1`).
    App,
    /// Public endpoints (the provider catalog).
    None,
}

/// A vault and the credentials to call it with.
pub struct ApiClient {
    base: url::Url,
    source: String,
    http: reqwest::Client,
    admin_token: Option<SecretString>,
    api_key: Option<SecretString>,
    actor: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// A request to send: path under the vault URL, query pairs, optional JSON body.
pub struct Call<'a> {
    pub auth: Auth,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Value>,
}

impl<'a> Call<'a> {
    pub fn new(auth: Auth, method: Method, path: impl Into<String>) -> Self {
        Call { auth, method, path: path.into(), query: Vec::new(), body: None }
    }

    pub fn get(auth: Auth, path: impl Into<String>) -> Self {
        Self::new(auth, Method::GET, path)
    }

    /// Adds `name=value` when there is a value.
    pub fn query(mut self, name: &'a str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.query.push((name, value.to_string()));
        }
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl ApiClient {
    /// `actor` is `TYPE[:ID]`, sent as `x-actor-type` / `x-actor-id`; `reason` as `x-actor-reason`.
    pub fn new(target: Target, actor: Option<&str>, reason: Option<&str>) -> anyhow::Result<ApiClient> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("tokenvault-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut headers = Vec::new();
        let mut header = |name: &'static str, value: &str| -> anyhow::Result<()> {
            let value = HeaderValue::from_str(value)
                .map_err(|_| anyhow::anyhow!("the {name} header can only hold visible ASCII text"))?;
            headers.push((HeaderName::from_static(name), value));
            Ok(())
        };
        if let Some(actor) = actor.filter(|a| !a.is_empty()) {
            let (kind, id) = match actor.split_once(':') {
                Some((kind, id)) => (kind, Some(id)),
                None => (actor, None),
            };
            header("x-actor-type", kind)?;
            if let Some(id) = id {
                header("x-actor-id", id)?;
            }
        }
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            header("x-actor-reason", reason)?;
        }
        Ok(ApiClient {
            base: target.url,
            source: target.source,
            http,
            admin_token: target.admin_token,
            api_key: target.api_key,
            actor: headers,
        })
    }

    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    pub fn has(&self, auth: Auth) -> bool {
        match auth {
            Auth::Admin => self.admin_token.is_some(),
            Auth::App => self.api_key.is_some(),
            Auth::None => true,
        }
    }

    fn credential(&self, auth: Auth) -> anyhow::Result<Option<&SecretString>> {
        let missing = |what: &str, flag: &str, var: &str| {
            anyhow::anyhow!(
                "this command needs {what}, and {} has none: log in with `tokenvault login {flag} …` \
                 (or with --url, set {var})",
                self.source
            )
        };
        match auth {
            Auth::Admin => self
                .admin_token
                .as_ref()
                .map(Some)
                .ok_or_else(|| missing("an admin token", "--admin-token", crate::profiles::ADMIN_TOKEN_VAR)),
            Auth::App => self
                .api_key
                .as_ref()
                .map(Some)
                .ok_or_else(|| missing("an app API key", "--api-key", crate::profiles::API_KEY_VAR)),
            Auth::None => Ok(None),
        }
    }

    /// The full URL of an API path; `path` starts with `/`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// Sends a call and returns the response if its status is a success, else the failure.
    pub async fn send(&self, call: Call<'_>) -> anyhow::Result<reqwest::Response> {
        let credential = self.credential(call.auth)?;
        let mut request = self.http.request(call.method, self.url(&call.path));
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(secret) = credential {
            // `bearer_auth` marks the header sensitive.
            request = request.bearer_auth(secret.expose_secret());
        }
        for (name, value) in &self.actor {
            request = request.header(name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<Value>(&text) {
            Ok(error) if error["code"].is_string() => Failure::Api {
                status: status.as_u16(),
                code: printable(error["code"].as_str().unwrap_or_default()),
                message: printable(error["message"].as_str().unwrap_or("")),
                request_id: error["request_id"].as_str().map(printable).or(request_id),
            },
            _ => self.not_the_api(status),
        }
        .into())
    }

    /// Sends a call; returns its JSON body (`None` for an empty answer such as `204`).
    pub async fn call(&self, call: Call<'_>) -> anyhow::Result<Option<Value>> {
        let response = self.send(call).await?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|err| self.unreachable(&err))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|_| self.not_the_api(status).into())
    }

    /// Like [`ApiClient::call`], for calls that always answer with a body.
    pub async fn json(&self, call: Call<'_>) -> anyhow::Result<Value> {
        let status_hint = call.path.clone();
        self.call(call)
            .await?
            .ok_or_else(|| Failure::Unavailable(format!("the vault answered {status_hint} with an empty body")).into())
    }

    fn unreachable(&self, err: &reqwest::Error) -> Failure {
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let what = if err.is_timeout() { "timed out".to_owned() } else { cause.to_string() };
        Failure::Unavailable(format!("cannot reach the vault at {} ({}): {what}", self.base, self.source))
    }

    fn not_the_api(&self, status: StatusCode) -> Failure {
        Failure::Unavailable(format!(
            "{} answered {status} without the vault's JSON: is {} the vault's URL?",
            self.base, self.source
        ))
    }
}

/// Text from the vault as it may be shown on a terminal: control characters replaced.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// One path segment: ids are plain words, so anything else (`/`, `..`, `?`) is refused here
/// rather than sent to a different endpoint.
pub fn segment(id: &str) -> anyhow::Result<&str> {
    let plain =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain {
        anyhow::bail!("invalid_id: `{}` is not an id (ids look like `app_0192…`)", printable(id));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_like_the_api_and_map_to_exit_codes() {
        let refused = Failure::Api {
            status: 404,
            code: "not_found".into(),
            message: "grant not found".into(),
            request_id: Some("r-1".into()),
        };
        assert_eq!(refused.to_string(), "not_found: grant not found (request r-1)");
        assert_eq!(exit_code(&refused.into()), exit::REFUSED);
        let failed = Failure::Api { status: 503, code: "x".into(), message: "y".into(), request_id: None };
        assert_eq!(exit_code(&failed.into()), exit::UNAVAILABLE);
        assert_eq!(exit_code(&Failure::Unavailable("down".into()).into()), exit::UNAVAILABLE);
        assert_eq!(exit_code(&anyhow::anyhow!("local")), exit::LOCAL);
    }

    #[test]
    fn ids_cannot_escape_their_segment() {
        assert!(segment("grt_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e").is_ok());
        for bad in ["", "..", "a/b", "a?b", "%2e%2e", "a b"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
        assert_eq!(printable("a\u{1b}[31mb\n"), "a?[31mb?");
    }
}
