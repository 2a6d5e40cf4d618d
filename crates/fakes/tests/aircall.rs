//! Aircall emulator over real HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokenvault_fakes::{ConsentMode, Fakes, Provider, Variant};

const REDIRECT: &str = "http://127.0.0.1:1/aircall/cb";
const INSTALL: &str = "http://127.0.0.1:1/aircall/install";

async fn setup() -> Fakes {
    let fakes = start().await;
    let mut client = registration("ac-id", "ac-secret", REDIRECT, &[]);
    client.install_uri = Some(INSTALL.to_owned());
    fakes.control().register_client(Provider::Aircall, client);
    fakes
}

fn authorize_url(fakes: &Fakes, pairs: &[(&str, &str)]) -> String {
    with_query(&format!("{}/oauth/authorize", fakes.urls().aircall_dashboard), pairs)
}

fn good_authorize_url(fakes: &Fakes) -> String {
    authorize_url(
        fakes,
        &[
            ("client_id", "ac-id"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "public_api"),
            ("state", "a-state"),
        ],
    )
}

async fn exchange_json(fakes: &Fakes, code: &str) -> (u16, Value) {
    let payload = json!({
        "client_id": "ac-id", "client_secret": "ac-secret", "code": code,
        "redirect_uri": REDIRECT, "grant_type": "authorization_code",
    });
    json(http().post(format!("{}/v1/oauth/token", fakes.urls().aircall_api)).json(&payload).send().await.unwrap()).await
}

async fn connect(fakes: &Fakes) -> String {
    let code = code_from(&good_authorize_url(fakes)).await;
    let (status, body) = exchange_json(fakes, &code).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn api(fakes: &Fakes, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    http().request(method, format!("{}{path}", fakes.urls().aircall_api)).bearer_auth(token)
}

#[tokio::test]
async fn dashboard_install_redirects_to_the_install_uri() {
    let fakes = setup().await;
    let dashboard = &fakes.urls().aircall_dashboard;
    let response = http().get(format!("{dashboard}/install?client_id=ac-id")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), INSTALL);
    let response = http().get(format!("{dashboard}/install?client_id=other")).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn full_flow_gives_a_permanent_token_and_integer_ids() {
    let fakes = setup().await;
    let location = authorize(&good_authorize_url(&fakes)).await;
    assert_eq!(param(&location, "state").as_deref(), Some("a-state"));
    let code = param(&location, "code").unwrap();
    let (status, body) = exchange_json(&fakes, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "public_api");
    assert!(body["created_at"].as_u64().unwrap() >= fakes.control().now() - 5);
    assert!(body.get("expires_in").is_none() && body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();

    fakes.control().advance(Duration::from_secs(10 * 365 * 24 * 3600));
    let (status, me) =
        json(api(&fakes, reqwest::Method::GET, "/v1/integrations/me", token).await.send().await.unwrap()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["integration"]["user"]["id"], 123_456);
    assert_eq!(me["integration"]["company_id"], 98_765);
    assert_eq!(me["integration"]["active"], true);
    let (status, pong) = json(api(&fakes, reqwest::Method::GET, "/v1/ping", token).await.send().await.unwrap()).await;
    assert_eq!((status, pong), (200, json!({"ping": "pong"})));
}

#[tokio::test]
async fn token_request_must_be_json_with_body_credentials() {
    let fakes = setup().await;
    let url = format!("{}/v1/oauth/token", fakes.urls().aircall_api);
    let code = code_from(&good_authorize_url(&fakes)).await;
    let form = [
        ("client_id", "ac-id"),
        ("client_secret", "ac-secret"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("grant_type", "authorization_code"),
    ];
    let (status, body) = json(http().post(&url).form(&form).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    // The form attempt did not consume the code.
    assert_eq!(exchange_json(&fakes, &code).await.0, 200);

    let code = code_from(&good_authorize_url(&fakes)).await;
    let payload = json!({"code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code"});
    let response =
        http().post(&url).header("authorization", basic("ac-id", "ac-secret")).json(&payload).send().await.unwrap();
    assert_eq!(response.status(), 401, "Basic is not accepted by default");

    fakes.control().set_variant(Variant::AircallAcceptForm(true));
    let code = code_from(&good_authorize_url(&fakes)).await;
    let form = [
        ("client_id", "ac-id"),
        ("client_secret", "ac-secret"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("grant_type", "authorization_code"),
    ];
    assert_eq!(http().post(&url).form(&form).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn authorize_requires_public_api_scope_and_code_response_type() {
    let fakes = setup().await;
    let location = authorize(&authorize_url(
        &fakes,
        &[
            ("client_id", "ac-id"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "read"),
            ("state", "s"),
        ],
    ))
    .await;
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(param(&location, "state").as_deref(), Some("s"));
    let location = authorize(&authorize_url(
        &fakes,
        &[("client_id", "ac-id"), ("redirect_uri", REDIRECT), ("scope", "public_api")],
    ))
    .await;
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_request"));
    let response = http()
        .get(authorize_url(
            &fakes,
            &[
                ("client_id", "ac-id"),
                ("redirect_uri", "http://127.0.0.1:1/x"),
                ("response_type", "code"),
                ("scope", "public_api"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn codes_are_single_use_expire_after_10_minutes_and_bind_the_redirect() {
    let fakes = setup().await;
    let code = code_from(&good_authorize_url(&fakes)).await;
    assert_eq!(exchange_json(&fakes, &code).await.0, 200);
    let (status, body) = exchange_json(&fakes, &code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    let code = code_from(&good_authorize_url(&fakes)).await;
    fakes.control().advance(Duration::from_secs(601));
    assert_eq!(exchange_json(&fakes, &code).await.0, 400);

    let code = code_from(&good_authorize_url(&fakes)).await;
    let payload = json!({"client_id": "ac-id", "client_secret": "ac-secret", "code": code, "redirect_uri": "http://127.0.0.1:1/x", "grant_type": "authorization_code"});
    let response =
        http().post(format!("{}/v1/oauth/token", fakes.urls().aircall_api)).json(&payload).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn pkce_parameters_are_ignored() {
    let fakes = setup().await;
    let url = authorize_url(
        &fakes,
        &[
            ("client_id", "ac-id"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "public_api"),
            ("code_challenge", &"c".repeat(43)),
            ("code_challenge_method", "S256"),
        ],
    );
    let code = code_from(&url).await;
    let payload = json!({"client_id": "ac-id", "client_secret": "ac-secret", "code": code, "redirect_uri": REDIRECT, "grant_type": "authorization_code", "code_verifier": VERIFIER});
    let response =
        http().post(format!("{}/v1/oauth/token", fakes.urls().aircall_api)).json(&payload).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn webhooks_create_list_delete_and_events_carry_the_token() {
    let fakes = setup().await;
    let token = connect(&fakes).await;
    let (status, created) = json(
        api(&fakes, reqwest::Method::POST, "/v1/webhooks", &token)
            .await
            .json(&json!({"custom_name": "vault", "url": "https://vault.example/hooks/aircall", "events": ["call.created"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let webhook = &created["webhook"];
    let id = webhook["webhook_id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(webhook["active"], true);
    assert_eq!(webhook["events"], json!(["call.created"]));
    let webhook_token = webhook["token"].as_str().unwrap();
    let event = fakes.control().aircall_webhook_event(webhook_token, "call.created");
    assert_eq!(event["token"], webhook_token);
    assert_eq!(event["event"], "call.created");
    assert_eq!(event["resource"], "call");

    let (_, list) = json(api(&fakes, reqwest::Method::GET, "/v1/webhooks", &token).await.send().await.unwrap()).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    let response =
        api(&fakes, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), &token).await.send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (status, error) =
        json(api(&fakes, reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"), &token).await.send().await.unwrap())
            .await;
    assert_eq!(status, 404);
    assert!(error["error"].is_string() && error["troubleshoot"].is_string());

    let (status, error) = json(
        api(&fakes, reqwest::Method::POST, "/v1/webhooks", &token)
            .await
            .json(&json!({"custom_name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error["troubleshoot"].is_string());
}

#[tokio::test]
async fn disable_marks_inactive_and_revokes_only_with_the_variant() {
    let fakes = setup().await;
    let token = connect(&fakes).await;
    let response = api(&fakes, reqwest::Method::POST, "/v1/integrations/disable", &token).await.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (status, me) =
        json(api(&fakes, reqwest::Method::GET, "/v1/integrations/me", &token).await.send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(me["integration"]["active"], false);

    fakes.control().set_variant(Variant::AircallDisableRevokesToken(true));
    let token = connect(&fakes).await;
    assert_eq!(
        api(&fakes, reqwest::Method::POST, "/v1/integrations/disable", &token).await.send().await.unwrap().status(),
        200
    );
    let (status, error) = json(api(&fakes, reqwest::Method::GET, "/v1/ping", &token).await.send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(error["troubleshoot"].is_string());
}

#[tokio::test]
async fn uninstall_by_the_provider_gives_401_in_aircalls_shape() {
    let fakes = setup().await;
    let token = connect(&fakes).await;
    assert_eq!(fakes.control().revoke_all_for_user(Provider::Aircall, "123456"), 1);
    let (status, error) =
        json(api(&fakes, reqwest::Method::GET, "/v1/integrations/me", &token).await.send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(error["error"].is_string() && error["troubleshoot"].is_string());
}

#[tokio::test]
async fn consent_page_posts_back_to_authorize() {
    let fakes = setup().await;
    fakes.control().set_consent(Provider::Aircall, ConsentMode::Page);
    let response = http().get(good_authorize_url(&fakes)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"action="/oauth/authorize""#));
    let dashboard = &fakes.urls().aircall_dashboard;
    let response = http()
        .post(format!("{dashboard}/oauth/authorize"))
        .form(&[
            ("client_id", "ac-id"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "public_api"),
            ("state", "a"),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(param(&location(&response), "error").as_deref(), Some("access_denied"));
}
