//! Zoom emulator over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokenvault_fakes::{Fakes, Host, Provider, Variant, ZoomApiUrl, pkce_s256, zoom_sign};

const REDIRECT: &str = "http://127.0.0.1:1/zoom/cb";
const SCOPES: &[&str] = &["user:read:user", "meeting:read:meeting"];

async fn setup() -> Fakes {
    let fakes = start().await;
    fakes.control().register_client(Provider::Zoom, registration("zm-id", "zm-secret", REDIRECT, SCOPES));
    fakes
}

fn authorize_url(fakes: &Fakes, extra: &[(&str, &str)]) -> String {
    let mut pairs =
        vec![("response_type", "code"), ("client_id", "zm-id"), ("redirect_uri", REDIRECT), ("state", "z-state")];
    pairs.extend_from_slice(extra);
    with_query(&format!("{}/oauth/authorize", fakes.urls().zoom_oauth), &pairs)
}

async fn token(fakes: &Fakes, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(format!("{}/oauth/token", fakes.urls().zoom_oauth))
        .header("authorization", basic("zm-id", "zm-secret"))
        .form(form)
        .send()
        .await
        .unwrap();
    json(response).await
}

async fn connect(fakes: &Fakes) -> Value {
    let code = code_from(&authorize_url(fakes, &[])).await;
    let (status, body) =
        token(fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh(fakes: &Fakes, refresh_token: &str) -> (u16, Value) {
    token(fakes, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

async fn me(base: &str, access: &str) -> (u16, Value) {
    json(http().get(format!("{base}/v2/users/me")).bearer_auth(access).send().await.unwrap()).await
}

#[tokio::test]
async fn full_flow_grants_configured_scopes_and_reports_api_url() {
    let fakes = setup().await;
    // A scope parameter is ignored: the app's configured scopes are granted.
    let code = code_from(&authorize_url(&fakes, &[("scope", "something:else")])).await;
    let (status, body) =
        token(&fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], "user:read:user meeting:read:meeting");
    assert_eq!(body["api_url"], fakes.urls().zoom_api.as_str());
    assert!(body["refresh_token"].as_str().unwrap().starts_with("eyJ"));
    let access = body["access_token"].as_str().unwrap();
    let (status, user) = me(&fakes.urls().zoom_api, access).await;
    assert_eq!(status, 200);
    assert_eq!(user["id"], "KDcuGIm1QgePTO8WbOqwIQ");
    assert_eq!(user["account_id"], "Q8ZiAqZ_TE6sYVA4p2dG1w");
    assert_eq!(user["type"], 1);
    assert_eq!(user["status"], "active");
    assert_eq!(me(&fakes.urls().zoom_api_alt, access).await.0, 200);
}

#[tokio::test]
async fn token_endpoint_requires_basic_unless_variant_allows_body() {
    let fakes = setup().await;
    let url = format!("{}/oauth/token", fakes.urls().zoom_oauth);
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "zm-id"),
        ("client_secret", "zm-secret"),
    ];
    let (status, body) = json(http().post(&url).form(&form).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));

    fakes.control().set_variant(Variant::ZoomBodyCredentials(true));
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "zm-id"),
        ("client_secret", "zm-secret"),
    ];
    assert_eq!(http().post(&url).form(&form).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn parameters_may_travel_in_the_query_string() {
    let fakes = setup().await;
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let url = with_query(
        &format!("{}/oauth/token", fakes.urls().zoom_oauth),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    );
    let response = http().post(url).header("authorization", basic("zm-id", "zm-secret")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_token_gets_zooms_exact_body() {
    let fakes = setup().await;
    let first = connect(&fakes).await;
    let old = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&fakes, old).await;
    assert_eq!(status, 200);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, body) = refresh(&fakes, old).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"reason": "Invalid Token!", "error": "invalid_grant"}));
    // The new one still works.
    assert_eq!(refresh(&fakes, second["refresh_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn refresh_grace_period_is_configurable() {
    let fakes = setup().await;
    fakes.control().set_variant(Variant::RefreshGraceSeconds { provider: Provider::Zoom, seconds: 30 });
    let first = connect(&fakes).await;
    let old = first["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&fakes, old).await.0, 200);
    assert_eq!(refresh(&fakes, old).await.0, 200, "within grace");
    fakes.control().advance(Duration::from_secs(31));
    assert_eq!(refresh(&fakes, old).await.0, 400);
}

#[tokio::test]
async fn refresh_tokens_expire_after_inactivity() {
    let fakes = setup().await;
    let first = connect(&fakes).await;
    fakes.control().advance(Duration::from_secs(90 * 24 * 3600));
    let (status, body) = refresh(&fakes, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("Invalid Token!")));
}

#[tokio::test]
async fn reauthorization_invalidates_older_tokens() {
    let fakes = setup().await;
    let first = connect(&fakes).await;
    let second = connect(&fakes).await;
    let control = fakes.control();
    assert!(!control.is_access_token_active(Provider::Zoom, first["access_token"].as_str().unwrap()));
    assert!(!control.is_refresh_token_active(Provider::Zoom, first["refresh_token"].as_str().unwrap()));
    assert!(control.is_access_token_active(Provider::Zoom, second["access_token"].as_str().unwrap()));
    let (status, body) = refresh(&fakes, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn bearer_only_in_the_header_and_expiry_give_code_124() {
    let fakes = setup().await;
    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let api = &fakes.urls().zoom_api;
    let (status, error) =
        json(http().get(format!("{api}/v2/users/me?access_token={access}")).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_i64()), (401, Some(124)));
    let (status, error) = json(http().get(format!("{api}/v2/users/me")).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_i64()), (401, Some(124)));
    fakes.control().advance(Duration::from_secs(3599));
    let (status, error) = me(api, access).await;
    assert_eq!((status, error["code"].as_i64()), (401, Some(124)));
}

#[tokio::test]
async fn code_errors_redirect_mismatch_and_expiry() {
    let fakes = setup().await;
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, body) = token(
        &fakes,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:1/other")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"reason": "Redirect URI mismatch.", "error": "invalid_request"}));

    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, _) = token(&fakes, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(status, 400, "redirect_uri is required");

    let code = code_from(&authorize_url(&fakes, &[])).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    assert_eq!(token(&fakes, &form).await.0, 200);
    let (status, body) = token(&fakes, &form).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"reason": "Invalid authorization code", "error": "invalid_grant"}));

    let code = code_from(&authorize_url(&fakes, &[])).await;
    fakes.control().advance(Duration::from_secs(301));
    let (status, body) =
        token(&fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn pkce_method_defaults_to_plain() {
    let fakes = setup().await;
    // S256 challenge but no method: Zoom compares as plain, so the verifier fails.
    let challenge = pkce_s256(VERIFIER);
    let code = code_from(&authorize_url(&fakes, &[("code_challenge", &challenge)])).await;
    let (status, body) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Explicit S256 works.
    let code =
        code_from(&authorize_url(&fakes, &[("code_challenge", &challenge), ("code_challenge_method", "S256")])).await;
    let (status, _) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // Verifier without challenge is refused.
    let code = code_from(&authorize_url(&fakes, &[])).await;
    let (status, _) = token(
        &fakes,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn revoke_succeeds_for_known_and_unknown_tokens() {
    let fakes = setup().await;
    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let url = format!("{}/oauth/revoke", fakes.urls().zoom_oauth);
    let (status, result) = json(
        http()
            .post(&url)
            .header("authorization", basic("zm-id", "zm-secret"))
            .form(&[("token", access)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, result), (200, json!({"status": "success"})));
    assert!(!fakes.control().is_access_token_active(Provider::Zoom, access));
    assert!(!fakes.control().is_refresh_token_active(Provider::Zoom, body["refresh_token"].as_str().unwrap()));
    // Already-invalid token, sent in the query string: still success.
    let response = http()
        .post(format!("{url}?token={access}"))
        .header("authorization", basic("zm-id", "zm-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = http().post(&url).form(&[("token", "nope")]).send().await.unwrap();
    assert_eq!(response.status(), 401, "revoke needs client auth");
}

#[tokio::test]
async fn api_url_variant_points_at_the_alternate_host() {
    let fakes = setup().await;
    let control = fakes.control();
    control.set_variant(Variant::ZoomApiUrl(ZoomApiUrl::Alternate));
    let body = connect(&fakes).await;
    let api_url = body["api_url"].as_str().unwrap();
    assert_eq!(api_url, fakes.urls().zoom_api_alt);
    let (status, echo) = json(
        http()
            .get(format!("{api_url}/v2/echo/x"))
            .bearer_auth(body["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(echo["host"], "zoom_api_alt");
    assert_eq!(control.calls_on_host(Host::ZoomApiAlt), 1);
    assert_eq!(control.calls_on_host(Host::ZoomApi), 0);
    control.set_variant(Variant::ZoomApiUrl(ZoomApiUrl::Custom("https://evil.example".into())));
    assert_eq!(connect(&fakes).await["api_url"], "https://evil.example");
}

#[tokio::test]
async fn deauthorization_event_and_signature() {
    let fakes = setup().await;
    let event = fakes.control().zoom_deauthorization_event("u1", "a1", "zm-id");
    assert_eq!(event["event"], "app_deauthorized");
    assert_eq!(event["payload"]["user_id"], "u1");
    assert_eq!(event["payload"]["account_id"], "a1");
    assert_eq!(event["payload"]["client_id"], "zm-id");
    assert!(event["event_ts"].as_u64().unwrap() >= fakes.control().now() * 1000);
    let signature = zoom_sign("secret", "1700000000", b"{\"a\":1}");
    // Computed independently (Python hmac) over "v0:1700000000:{\"a\":1}".
    assert_eq!(signature, "v0=7d06e4dcbb54167f0033658ac8c45abe35b1fa257ff38a448e290762b595f902");
    assert_eq!(signature, fakes.control().zoom_sign("secret", "1700000000", b"{\"a\":1}"));
    assert_ne!(signature, zoom_sign("secret", "1700000001", b"{\"a\":1}"));
    let validation = tokenvault_fakes::zoom_url_validation_response("whsec", "plain123");
    assert_eq!(validation["encryptedToken"], "13356a6c11936ea8df24855c06f0969727b7e378808fdc52bda081befd03b3ed");
}
