//! Dialpad emulator over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokenvault_fakes::{
    BodyEncoding, ClientAuthMode, ConsentMode, ExpiresInMode, Fakes, IdFormat, Provider, RateLimit, Variant, pkce_s256,
};

const REDIRECT: &str = "http://127.0.0.1:1/cb?tenant=x";
const SCOPES: &[&str] = &["offline_access", "calls:list"];

async fn setup() -> Fakes {
    let fakes = start().await;
    let control = fakes.control();
    control.register_client(Provider::DialpadProduction, registration("dp-id", "dp-secret", REDIRECT, SCOPES));
    control.register_client(Provider::DialpadSandbox, registration("sb-id", "sb-secret", REDIRECT, SCOPES));
    fakes
}

fn authorize_url(base: &str, client_id: &str, scope: Option<&str>, pkce: bool) -> String {
    let challenge = pkce_s256(VERIFIER);
    let mut pairs =
        vec![("response_type", "code"), ("client_id", client_id), ("redirect_uri", REDIRECT), ("state", "st-1")];
    if let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    if pkce {
        pairs.push(("code_challenge", challenge.as_str()));
        pairs.push(("code_challenge_method", "S256"));
    }
    with_query(&format!("{base}/oauth2/authorize"), &pairs)
}

async fn exchange(base: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    json(http().post(format!("{base}/oauth2/token")).form(form).send().await.unwrap()).await
}

async fn offline_tokens(fakes: &Fakes) -> serde_json::Value {
    let base = &fakes.urls().dialpad_production;
    let code = code_from(&authorize_url(base, "dp-id", Some("offline_access"), false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn full_flow_with_pkce_query_redirect_and_users_me() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let location = authorize(&authorize_url(base, "dp-id", Some("offline_access calls:list"), true)).await;
    assert!(location.starts_with("http://127.0.0.1:1/cb?tenant=x&code="), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&location, "tenant").as_deref(), Some("x"));
    let code = param(&location, "code").unwrap();

    let response = http()
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    assert!(body["id_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body.get("scope").is_none(), "Dialpad returns no scope field");

    let access = body["access_token"].as_str().unwrap();
    let (status, me) =
        json(http().get(format!("{base}/api/v2/users/me")).bearer_auth(access).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], "5835806903417907");
    assert_eq!(me["company_id"], "4508591728425984");
    assert_eq!(me["state"], "active");
    assert_eq!(me["emails"][0], "dana@example.com");
    // The discouraged ?apikey= form works too.
    let response = http().get(format!("{base}/api/v2/users/me?apikey={access}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refresh_token_and_id_token_only_with_offline_access() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let code = code_from(&authorize_url(base, "dp-id", Some("calls:list"), false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
}

#[tokio::test]
async fn unregistered_scope_redirects_with_invalid_scope() {
    let fakes = setup().await;
    let location =
        authorize(&authorize_url(&fakes.urls().dialpad_production, "dp-id", Some("screen_pop"), false)).await;
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&location, "tenant").as_deref(), Some("x"));
}

#[tokio::test]
async fn code_is_single_use_and_reuse_revokes_the_first_tokens() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let code = code_from(&authorize_url(base, "dp-id", Some("offline_access"), false)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", "dp-id"),
        ("client_secret", "dp-secret"),
    ];
    let (status, first) = exchange(base, &form).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert!(fakes.control().is_access_token_active(Provider::DialpadProduction, access));
    let (status, second) = exchange(base, &form).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    assert!(!fakes.control().is_access_token_active(Provider::DialpadProduction, access));
    assert!(
        !fakes.control().is_refresh_token_active(Provider::DialpadProduction, first["refresh_token"].as_str().unwrap())
    );
}

#[tokio::test]
async fn code_expires_after_60_seconds_on_the_fake_clock() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let form = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("client_id", "dp-id".to_owned()),
            ("client_secret", "dp-secret".to_owned()),
        ]
    };
    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    fakes.control().advance(Duration::from_secs(58));
    let response = http().post(format!("{base}/oauth2/token")).form(&form(&code)).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    fakes.control().advance(Duration::from_secs(61));
    let (status, body) =
        json(http().post(format!("{base}/oauth2/token")).form(&form(&code)).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_wrong_verifier_and_verifier_without_challenge_are_invalid_grant() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let code = code_from(&authorize_url(base, "dp-id", None, true)).await;
    let wrong = "x".repeat(43);
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
            ("code_verifier", &wrong),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let code = code_from(&authorize_url(base, "dp-id", None, true)).await;
    let (status, _) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!(status, 400, "a challenge requires a verifier");

    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn redirect_problems_show_a_page_and_never_redirect() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    for (client_id, redirect) in [
        ("dp-id", "http://127.0.0.1:1/cb"),
        ("dp-id", "http://127.0.0.1:1/cb?tenant=x#frag"),
        ("dp-id", "http://127.0.0.1:1/cb?tenant=x&extra=1"),
        ("unknown", REDIRECT),
    ] {
        let url = with_query(
            &format!("{base}/oauth2/authorize"),
            &[("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect), ("state", "s")],
        );
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{client_id} {redirect}");
        assert!(response.headers().get("location").is_none());
    }
    // redirect_uri is optional at the token endpoint, but must match when sent.
    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn epoch_mode_and_raw_expires_in() {
    let fakes = setup().await;
    let control = fakes.control();
    control.set_variant(Variant::DialpadExpiresIn(ExpiresInMode::Epoch));
    let before = control.now();
    let body = offline_tokens(&fakes).await;
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(expires_in >= before + 3600 && expires_in <= control.now() + 3600, "{expires_in}");

    control.dialpad_expires_in_raw(Some(1_680_047_149));
    assert_eq!(offline_tokens(&fakes).await["expires_in"], 1_680_047_149);
    control.dialpad_expires_in_raw(None);
    control.set_variant(Variant::DialpadExpiresIn(ExpiresInMode::Seconds));
    assert_eq!(offline_tokens(&fakes).await["expires_in"], 3600);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_dies() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let first = offline_tokens(&fakes).await;
    let old = first["refresh_token"].as_str().unwrap();
    // Basic auth works for refresh as documented.
    let response = http()
        .post(format!("{base}/oauth2/token"))
        .header("authorization", basic("dp-id", "dp-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", old)])
        .send()
        .await
        .unwrap();
    let (status, second) = json(response).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", old),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let log = fakes.control().token_requests(Provider::DialpadProduction);
    assert_eq!(log.iter().map(|l| l.client_auth.as_str()).collect::<Vec<_>>(), ["body", "basic", "body"]);
    assert_eq!(log[1].refresh_token.as_deref(), Some(old));
    assert_eq!(log.iter().map(|l| l.outcome_status).collect::<Vec<_>>(), [200, 200, 400]);
}

#[tokio::test]
async fn body_encoding_and_client_auth_variants() {
    let fakes = setup().await;
    let control = fakes.control();
    let base = &fakes.urls().dialpad_production;
    control.set_variant(Variant::DialpadTokenBody(BodyEncoding::JsonOnly));
    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));

    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let payload =
        json!({"grant_type": "authorization_code", "code": code, "client_id": "dp-id", "client_secret": "dp-secret"});
    let response = http().post(format!("{base}/oauth2/token")).json(&payload).send().await.unwrap();
    assert_eq!(response.status(), 200);

    control.set_variant(Variant::DialpadTokenBody(BodyEncoding::Both));
    control.set_variant(Variant::DialpadClientAuth(ClientAuthMode::BasicOnly));
    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let (status, body) = exchange(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "dp-id"),
            ("client_secret", "dp-secret"),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let code = code_from(&authorize_url(base, "dp-id", None, false)).await;
    let response = http()
        .post(format!("{base}/oauth2/token"))
        .header("authorization", basic("dp-id", "dp-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn sandbox_and_production_are_isolated() {
    let fakes = setup().await;
    let urls = fakes.urls();
    let body = offline_tokens(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let response =
        http().get(format!("{}/api/v2/users/me", urls.dialpad_sandbox)).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 403);
    // The production client is not registered on the sandbox host.
    let response = http().get(authorize_url(&urls.dialpad_sandbox, "dp-id", None, false)).send().await.unwrap();
    assert_eq!(response.status(), 400);
    // The sandbox client works on the sandbox host, and its user is the sandbox user.
    let code = code_from(&authorize_url(&urls.dialpad_sandbox, "sb-id", None, false)).await;
    let (status, body) = exchange(
        &urls.dialpad_sandbox,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "sb-id"),
            ("client_secret", "sb-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let sandbox_access = body["access_token"].as_str().unwrap();
    let response = http()
        .get(format!("{}/api/v2/users/me", urls.dialpad_production))
        .bearer_auth(sandbox_access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn deauthorize_returns_204_and_kills_every_token_of_the_user() {
    let fakes = setup().await;
    let base = &fakes.urls().dialpad_production;
    let first = offline_tokens(&fakes).await;
    let second = offline_tokens(&fakes).await;
    let response = http()
        .post(format!("{base}/oauth2/deauthorize"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    let control = fakes.control();
    for body in [&first, &second] {
        assert!(!control.is_access_token_active(Provider::DialpadProduction, body["access_token"].as_str().unwrap()));
        assert!(!control.is_refresh_token_active(Provider::DialpadProduction, body["refresh_token"].as_str().unwrap()));
    }
    let response = http()
        .get(format!("{base}/api/v2/users/me"))
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn integer_ids_rate_limit_and_echo() {
    let fakes = setup().await;
    let control = fakes.control();
    let base = &fakes.urls().dialpad_production;
    let access = offline_tokens(&fakes).await["access_token"].as_str().unwrap().to_owned();
    control.set_variant(Variant::DialpadUserId(IdFormat::Integer));
    let (_, me) = json(http().get(format!("{base}/api/v2/users/me")).bearer_auth(&access).send().await.unwrap()).await;
    assert_eq!(me["id"], 5_835_806_903_417_907_i64);

    let (status, echo) = json(
        http()
            .put(format!("{base}/api/v2/echo/a/b?x=1"))
            .bearer_auth(&access)
            .header("X-Custom", "yes")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/api/v2/echo/a/b");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["headers"]["x-custom"], "yes");
    assert_eq!(echo["body_len"], 5);
    assert_eq!(echo["host"], "dialpad_production");

    control.set_variant(Variant::DialpadRateLimit(Some(RateLimit { max_requests: 2, window_seconds: 60 })));
    for _ in 0..2 {
        assert_eq!(
            http().get(format!("{base}/api/v2/users/me")).bearer_auth(&access).send().await.unwrap().status(),
            200
        );
    }
    let response = http().get(format!("{base}/api/v2/users/me")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    control.advance(Duration::from_secs(60));
    assert_eq!(http().get(format!("{base}/api/v2/users/me")).bearer_auth(&access).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn consent_deny_and_page_modes() {
    let fakes = setup().await;
    let control = fakes.control();
    let base = &fakes.urls().dialpad_production;
    control.set_consent(Provider::DialpadProduction, ConsentMode::AutoDeny);
    let location = authorize(&authorize_url(base, "dp-id", None, false)).await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));

    control.set_consent(Provider::DialpadProduction, ConsentMode::Page);
    let response = http().get(authorize_url(base, "dp-id", None, false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("Approve") && page.contains("Deny") && page.contains(r#"method="post""#));
    // Submitting the form (as a browser would) approves with a 303.
    let response = http()
        .post(format!("{base}/oauth2/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", "dp-id"),
            ("redirect_uri", REDIRECT),
            ("state", "st-1"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(param(&location_of(&response), "code").is_some());
}

fn location_of(response: &reqwest::Response) -> String {
    location(response)
}
