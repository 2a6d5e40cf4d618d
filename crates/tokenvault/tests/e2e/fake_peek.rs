//! Helpers that read what the fakes received and move both clocks together. The vault keeps its
//! tokens sealed; tests that ask a fake "does this refresh token still work?" learn the token
//! from a request the vault sent, without letting the fake spend (rotate) it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenvault_fakes::{Endpoint, Fault, Host, Provider};

use crate::connect_env::ConnectEnv;
use crate::support::assert_error_shape;

/// Form fields of a recorded request body.
pub fn form_field(body: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The `token` field of the latest revocation request on `host` with this `token_type_hint`.
pub fn last_revoked_token(env: &ConnectEnv, host: Host, hint: &str) -> Option<String> {
    env.fakes
        .control()
        .requests(host)
        .iter()
        .rev()
        .find(|r| form_field(&r.body, "token_type_hint").as_deref() == Some(hint))
        .and_then(|r| form_field(&r.body, "token"))
}

/// The refresh token the vault currently holds for `grant_id`: the vault is made to refresh
/// (its clock moved two hours on) and the fake answers that one request with a 503, so nothing
/// rotates; the token is read from the recorded request. The grant is left backing off.
pub async fn current_refresh_token(env: &ConnectEnv, grant_id: &str, provider: Provider, host: Host) -> String {
    env.vault.clock.advance(Duration::from_secs(2 * 3600));
    env.fakes.control().inject(
        provider,
        Endpoint::Token,
        Fault::Status { status: 503, body: "{}".into(), retry_after: None },
        1,
    );
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "provider_unavailable");
    let requests = env.fakes.control().requests(host);
    let refresh = requests
        .iter()
        .rev()
        .find(|r| form_field(&r.body, "grant_type").as_deref() == Some("refresh_token"))
        .expect("the vault sent a refresh request");
    form_field(&refresh.body, "refresh_token").expect("the refresh request carries the refresh token")
}

/// Moves the vault's clock and the fakes' clock forward together (token lifetimes at the fake,
/// such as Zoom's refresh-token inactivity limit, follow the fakes' clock).
pub fn advance_both(env: &ConnectEnv, by: Duration) {
    env.vault.clock.advance(by);
    env.fakes.control().advance(by);
}

/// A timestamp field of the grant view (RFC 3339) as Unix milliseconds.
pub fn millis(grant: &Value, field: &str) -> Option<i64> {
    let text = grant[field].as_str()?;
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("`{field}` is not RFC 3339: {text}"));
    Some((at.unix_timestamp_nanos() / 1_000_000) as i64)
}
