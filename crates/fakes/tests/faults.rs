//! Fault injection, call counting, the evil host and the streaming endpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokenvault_fakes::{Endpoint, Fakes, Fault, Host, Provider};

const REDIRECT: &str = "http://127.0.0.1:1/zoom/cb";

async fn setup() -> Fakes {
    let fakes = start().await;
    fakes.control().register_client(Provider::Zoom, registration("zm-id", "zm-secret", REDIRECT, &["user:read:user"]));
    fakes
}

async fn zoom_code(fakes: &Fakes) -> String {
    code_from(&with_query(
        &format!("{}/oauth/authorize", fakes.urls().zoom_oauth),
        &[("response_type", "code"), ("client_id", "zm-id"), ("redirect_uri", REDIRECT)],
    ))
    .await
}

async fn zoom_token(fakes: &Fakes, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
    http()
        .post(format!("{}/oauth/token", fakes.urls().zoom_oauth))
        .header("authorization", basic("zm-id", "zm-secret"))
        .form(form)
        .send()
        .await
}

async fn connect(fakes: &Fakes) -> Value {
    let code = zoom_code(fakes).await;
    let response =
        zoom_token(fakes, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await
            .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn status_fault_applies_to_the_next_n_requests_and_is_counted() {
    let fakes = setup().await;
    let control = fakes.control();
    let body = connect(&fakes).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    control.inject(
        Provider::Zoom,
        Endpoint::Token,
        Fault::Status { status: 503, body: r#"{"error":"temporarily_unavailable"}"#.into(), retry_after: Some(7) },
        2,
    );
    for _ in 0..2 {
        let response =
            zoom_token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    let response = zoom_token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.unwrap();
    assert_eq!(response.status(), 200, "faults are used up and the token was never touched");
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Token), 4);
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Authorize), 1);
    // Faulted requests never reached the handler, so only two exchanges are logged.
    assert_eq!(control.token_requests(Provider::Zoom).len(), 2);
    control.reset_counters();
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Token), 0);
    assert!(control.token_requests(Provider::Zoom).is_empty());
}

#[tokio::test]
async fn drop_after_commit_rotates_then_closes_the_socket() {
    let fakes = setup().await;
    let control = fakes.control();
    let body = connect(&fakes).await;
    let old = body["refresh_token"].as_str().unwrap();
    control.inject(Provider::Zoom, Endpoint::Token, Fault::DropAfterCommit, 1);
    let result = zoom_token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert!(result.is_err(), "no response must arrive: {result:?}");
    // The rotation happened: the old refresh token is dead at the provider.
    assert!(!control.is_refresh_token_active(Provider::Zoom, old));
    let log = control.token_requests(Provider::Zoom);
    assert_eq!(log.last().map(|l| l.outcome_status), Some(200));
    let (status, body) =
        json(zoom_token(&fakes, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"reason": "Invalid Token!", "error": "invalid_grant"}));
}

#[tokio::test]
async fn drop_connection_processes_nothing() {
    let fakes = setup().await;
    let control = fakes.control();
    let code = zoom_code(&fakes).await;
    control.inject(Provider::Zoom, Endpoint::Token, Fault::DropConnection, 1);
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    assert!(zoom_token(&fakes, &form).await.is_err());
    assert!(control.token_requests(Provider::Zoom).is_empty());
    assert_eq!(zoom_token(&fakes, &form).await.unwrap().status(), 200, "the code was not consumed");
}

#[tokio::test]
async fn latency_fault_delays_then_answers_and_clear_faults_removes_pending_ones() {
    let fakes = setup().await;
    let control = fakes.control();
    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let me = format!("{}/v2/users/me", fakes.urls().zoom_api);
    control.inject(Provider::Zoom, Endpoint::UserInfo, Fault::Latency(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(http().get(&me).bearer_auth(access).send().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    control.inject(
        Provider::Zoom,
        Endpoint::UserInfo,
        Fault::Status { status: 500, body: "boom".into(), retry_after: None },
        5,
    );
    assert_eq!(http().get(&me).bearer_auth(access).send().await.unwrap().status(), 500);
    control.clear_faults();
    assert_eq!(http().get(&me).bearer_auth(access).send().await.unwrap().status(), 200);
    assert_eq!(control.calls(Provider::Zoom, Endpoint::UserInfo), 3);
}

#[tokio::test]
async fn evil_host_records_everything_and_redirect_evil_points_there() {
    let fakes = setup().await;
    let control = fakes.control();
    let evil = &fakes.urls().evil;
    let response = http()
        .post(format!("{evil}/anything/at/all?q=1"))
        .header("x-secret", "leak")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded = control.evil_requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/anything/at/all?q=1");
    assert_eq!(recorded[0].header("X-Secret"), Some("leak"));
    assert_eq!(recorded[0].body, "payload");

    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let response =
        http().get(format!("{}/v2/redirect-evil", fakes.urls().zoom_api)).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with(evil.as_str()));
    assert_eq!(control.evil_requests().len(), 1, "a non-following client never reaches the evil host");
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Api), 1);
    assert!(control.requests(Host::ZoomApi).iter().all(|r| !r.path.contains("access_token")));
}

#[tokio::test]
async fn stream_returns_the_requested_number_of_bytes() {
    let fakes = setup().await;
    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let response = http()
        .get(format!("{}/v2/stream?bytes=100000&chunk=4096", fakes.urls().zoom_api))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), 100_000);
    let response = http().get(format!("{}/v2/stream?bytes=10", fakes.urls().zoom_api)).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn malformed_requests_get_400s_not_panics() {
    let fakes = setup().await;
    let urls = fakes.urls();
    let cases: Vec<(String, &str, Vec<u8>)> = vec![
        (format!("{}/oauth2/token", urls.dialpad_production), "application/json", b"{not json".to_vec()),
        (
            format!("{}/oauth2/token", urls.dialpad_production),
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, b'=', 0x80],
        ),
        (format!("{}/v1/oauth/token", urls.aircall_api), "application/json", b"[1,2,3]".to_vec()),
        (format!("{}/token", urls.generic_issuer), "text/plain", b"grant_type=x".to_vec()),
        (format!("{}/oauth/token", urls.zoom_oauth), "application/x-www-form-urlencoded", b"%%%".to_vec()),
    ];
    for (url, content_type, body) in cases {
        let response = http().post(&url).header("content-type", content_type).body(body).send().await.unwrap();
        assert!(matches!(response.status().as_u16(), 400 | 401), "{url}: {}", response.status());
    }
    let response = http()
        .post(format!("{}/oauth/token", urls.zoom_oauth))
        .header("authorization", "Basic !!!notbase64")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = http().get(format!("{}/oauth/authorize?client_id=%ff", urls.zoom_oauth)).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn echo_accepts_bodies_larger_than_axums_default_limit() {
    let fakes = setup().await;
    let body = connect(&fakes).await;
    let access = body["access_token"].as_str().unwrap();
    let payload = vec![b'a'; 3 * 1024 * 1024];
    let (status, echo) = json(
        http()
            .post(format!("{}/v2/echo/upload", fakes.urls().zoom_api))
            .bearer_auth(access)
            .body(payload)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(echo["body_len"], 3 * 1024 * 1024);
}
