//! Issue 5: the proxy, managed secrets, policies, actors and the audit log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{Endpoint, Fault, Host, Provider, Variant, ZoomApiUrl};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    proxy_get_and_streamed_post_reach_each_provider_with_the_token_in_the_header,
    proxy_refuses_paths_and_redirects_that_leave_the_provider,
    upstream_401_refreshes_and_retries_once_and_only_once,
    aircall_401_through_the_proxy_marks_needs_reauth,
    policy_methods_and_paths,
    policy_time_windows_and_grant_lifetime,
    policy_ip_allowlist_and_actor_types,
    policy_rate_limit_under_concurrent_load,
    policy_token_retrieval_off_leaves_only_the_proxy,
    policy_that_cannot_be_evaluated_denies,
    managed_secrets_are_injected_in_each_style_and_never_readable,
    audit_records_every_action_without_secrets,
    tenant_isolation_for_proxy_and_audit,
    proxy_audit_rows_count_request_and_response_bytes,
    proxy_audit_row_is_written_when_the_client_disconnects_mid_stream,
    every_proxied_call_leaves_one_audit_row_even_when_stopped_early,
    denied_calls_never_refresh_at_the_provider,
    hop_by_hop_headers_are_dropped_both_ways,
    dialpad_sandbox_grants_are_proxied_to_the_sandbox_host,
    only_a_body_within_the_replay_buffer_is_replayed_after_a_401,
);

/// Small proxy limits, so that tests can go over them quickly.
fn small_limits(settings: &mut tokenvault::Settings) {
    settings.proxy_limits = tokenvault_service::ProxyLimits {
        max_request_bytes: 128 * 1024,
        max_response_bytes: 256 * 1024,
        response_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
    };
}

/// Like `connect_tests!`, for cases that need the vault started with [`small_limits`].
macro_rules! small_limit_tests {
    ($($case:ident),* $(,)?) => {
        mod small_limits {
            mod sqlite {
                $(#[tokio::test] async fn $case() {
                    let env = $crate::connect_env::ConnectEnv::start_adjusted(
                        tokenvault_testkit::Backend::Sqlite, None, super::super::small_limits).await;
                    if let Some(env) = env { super::super::$case(env).await }
                })*
            }
            mod postgres {
                $(#[tokio::test] async fn $case() {
                    let env = $crate::connect_env::ConnectEnv::start_adjusted(
                        tokenvault_testkit::Backend::Postgres, None, super::super::small_limits).await;
                    if let Some(env) = env { super::super::$case(env).await }
                })*
            }
        }
    };
}

small_limit_tests!(proxy_caps_request_and_response_bodies, proxy_gives_up_on_a_provider_that_does_not_answer_in_time);

async fn proxy(
    env: &ConnectEnv,
    method: Method,
    grant_id: &str,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request =
        env.vault.http.request(method, env.vault.url(&format!("/v1/proxy/{grant_id}{path}"))).bearer_auth(&env.key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A GET through the proxy with the app's key, its response unread (for streamed bodies and headers).
async fn proxy_get(env: &ConnectEnv, path: &str, request_id: Option<&str>) -> reqwest::Response {
    let mut request = env.vault.http.get(env.vault.url(path)).bearer_auth(&env.key);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    request.send().await.unwrap()
}

async fn policy(env: &ConnectEnv, target_type: &str, target_id: Option<&str>, rules: Value) -> String {
    let mut body = json!({ "target_type": target_type, "rules": rules });
    if let Some(id) = target_id {
        body["target_id"] = json!(id);
    }
    let (status, created) = env.api(Method::POST, "/v1/policies", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn proxy_get_and_streamed_post_reach_each_provider_with_the_token_in_the_header(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.configure_zoom().await;
    env.configure_aircall().await;
    env.fakes.control().set_variant(Variant::ZoomApiUrl(ZoomApiUrl::Alternate));
    let cases = [
        ("dialpad-production", "/api/v2/echo/items", Host::DialpadProduction),
        ("zoom", "/v2/echo/items", Host::ZoomApiAlt),
        ("aircall", "/v1/echo/items", Host::AircallApi),
    ];
    for (key, path, host) in cases {
        let grant_id = env.connect_ok("user-1", key).await;
        let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        let access = token["access_token"].as_str().unwrap();
        let calls_before = env.fakes.control().calls_on_host(host);
        let (status, echo) = proxy(
            &env,
            Method::GET,
            &grant_id,
            &format!("{path}?page=2"),
            None,
            &[("cookie", "session=abc"), ("x-actor-type", "ai_agent")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{key}: {echo}");
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["query"], "page=2", "{echo}");
        assert_eq!(
            echo["headers"]["authorization"],
            format!("Bearer {access}"),
            "{key}: the token in the header, the caller's key dropped"
        );
        assert!(echo["headers"].get("cookie").is_none(), "{key}: cookies never forwarded");
        assert!(echo["headers"].get("x-actor-type").is_none());
        assert!(!echo["query"].as_str().unwrap().contains(access), "never in the query");
        assert_eq!(echo["host"], host.as_str(), "{key}: answered by the provider's own API host");
        assert_eq!(env.fakes.control().calls_on_host(host), calls_before + 1);
        // A streamed body of 1 MiB arrives whole.
        let chunks = futures_util::stream::iter((0..16).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024])));
        let response = env
            .vault
            .http
            .post(env.vault.url(&format!("/v1/proxy/{grant_id}{path}")))
            .bearer_auth(&env.key)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echo: Value = response.json().await.unwrap();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["body_len"], 16 * 64 * 1024);
        assert_eq!(echo["host"], host.as_str());
    }
    // Zoom went to the api_url of its token response (the alternate host), not the default.
    assert!(env.fakes.control().calls_on_host(tokenvault_fakes::Host::ZoomApiAlt) >= 2);
    // A streamed response of 3 MiB comes back whole.
    let zoom = env.grants().await.into_iter().find(|g| g["provider"] == "zoom").unwrap();
    let response = env
        .vault
        .http
        .get(env.vault.url(&format!("/v1/proxy/{}/v2/stream?bytes=3145728", zoom["id"].as_str().unwrap())))
        .bearer_auth(&env.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), 3_145_728);
}

async fn proxy_refuses_paths_and_redirects_that_leave_the_provider(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let evil = env.fakes.urls().evil.clone();
    for path in [
        "//evil.test/",
        "/@evil.test",
        "/%2F%2Fevil.test/x",
        "/v2/%2e%2e/%2e%2e/x",
        "/v2/../../x",
        "/v2\\..\\x",
        &format!("/{evil}/x"),
    ] {
        let (status, body) = proxy(&env, Method::GET, &grant_id, path, None, &[]).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{path}: {status} {body}");
        // Some of these the HTTP client itself normalises (dot segments, `\`) so that they never
        // even address this grant, or turn into a path on the provider's own host (its 404).
        if status == StatusCode::BAD_REQUEST {
            let code = assert_error_shape(status, &body);
            assert!(["invalid_proxy_path", "invalid_id"].contains(&code.as_str()), "{path}: {code}");
        }
    }
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/redirect-evil", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(assert_error_shape(status, &body), "upstream_redirect_refused");
    assert!(env.fakes.control().evil_requests().is_empty(), "no request ever reached the other host");
    // An email in a path segment is fine.
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/users/zoe@example.com", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

async fn upstream_401_refreshes_and_retries_once_and_only_once(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let unauthorized = || Fault::Status {
        status: 401,
        body: r#"{"code":124,"message":"Invalid access token."}"#.into(),
        retry_after: None,
    };
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, unauthorized(), 1);
    let (status, echo) = proxy(&env, Method::GET, &grant_id, "/v2/echo/me", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    let refreshes = |env: &ConnectEnv| {
        env.fakes.control().token_requests(Provider::Zoom).iter().filter(|r| r.grant_type == "refresh_token").count()
    };
    assert_eq!(refreshes(&env), 1);
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(
        echo["headers"]["authorization"],
        format!("Bearer {}", token["access_token"].as_str().unwrap()),
        "retried with the new token"
    );
    // Two 401s in a row: one refresh, one retry, then the 401 is the answer.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, unauthorized(), 2);
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/me", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], 124, "the provider's own answer");
    assert_eq!(refreshes(&env), 2);
    // A POST with a small body is replayed too.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, unauthorized(), 1);
    let (status, echo) = proxy(
        &env,
        Method::POST,
        &grant_id,
        "/v2/echo/me",
        Some(b"{\"a\":1}".to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["body_len"], 7);
}

async fn aircall_401_through_the_proxy_marks_needs_reauth(env: ConnectEnv) {
    env.configure_aircall().await;
    let grant_id = env.connect_ok("user-1", "aircall").await;
    env.fakes
        .control()
        .revoke_all_for_user(Provider::Aircall, &tokenvault_fakes::FakeUser::default_for(Provider::Aircall).id);
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v1/ping", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "needs_reauth");
    assert_eq!(grant["status_reason"], "provider_rejected_token");
}

async fn policy_methods_and_paths(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let id =
        policy(&env, "grant", Some(&grant_id), json!({ "methods": ["GET"], "paths": ["/v2/echo/allowed/*"] })).await;
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/allowed/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = proxy(&env, Method::POST, &grant_id, "/v2/echo/allowed/x", Some(b"{}".to_vec()), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(assert_error_shape(status, &body), "policy_denied");
    assert!(
        body["message"].as_str().unwrap().contains(&id) && body["message"].as_str().unwrap().contains("methods"),
        "{body}"
    );
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/other", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("paths"));
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/allowed/x/deeper", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "`*` stays within one segment");
}

async fn policy_time_windows_and_grant_lifetime(env: ConnectEnv) {
    env.configure_zoom().await;
    let config_id =
        env.api(Method::GET, "/v1/provider-configs", None).await.1["data"][0]["id"].as_str().unwrap().to_owned();
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let now = time::OffsetDateTime::from_unix_timestamp(env.vault.clock_now_seconds()).unwrap();
    let start = format!("{:02}:00", now.hour());
    let end = format!("{:02}:00", (now.hour() + 1) % 24).replace("00:00", "24:00");
    policy(
        &env,
        "provider_config",
        Some(&config_id),
        json!({ "time_windows": [{ "start": start, "end": end }], "max_grant_age_days": 2 }),
    )
    .await;
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(2 * 3600));
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("time_windows"));
    // Back inside the window a day later, but the grant is now older than allowed.
    env.vault.clock.advance(Duration::from_secs(22 * 3600 + 2 * 86_400));
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("max_grant_age_days"), "{body}");
    let (status, _) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "app", "rules": { "time_windows": [{ "start": "25:00", "end": "26:00" }] } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn policy_ip_allowlist_and_actor_types(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let id = policy(&env, "grant", Some(&grant_id), json!({ "ip_allowlist": ["10.0.0.0/8"] })).await;
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "127.0.0.1 is not in 10/8: {body}");
    env.api(Method::DELETE, &format!("/v1/policies/{id}"), None).await;
    policy(
        &env,
        "grant",
        Some(&grant_id),
        json!({ "ip_allowlist": ["127.0.0.1/32", "::1/128"], "actor_types": ["service"] }),
    )
    .await;
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("actor_types"), "{body}");
    let (status, _) = proxy(
        &env,
        Method::GET,
        &grant_id,
        "/v2/echo/x",
        None,
        &[("x-actor-type", "service"), ("x-actor-id", "billing-job")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[("x-actor-type", "robot")]).await;
    assert_eq!((status, assert_error_shape(status, &body).as_str()), (StatusCode::BAD_REQUEST, "invalid_actor"));
    let long = "r".repeat(600);
    let (status, _) = proxy(
        &env,
        Method::GET,
        &grant_id,
        "/v2/echo/x",
        None,
        &[("x-actor-type", "service"), ("x-actor-reason", &long)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "reasons are limited in size");
}

async fn policy_rate_limit_under_concurrent_load(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    policy(&env, "app", None, json!({ "rate_limit": { "requests": 5, "per_seconds": 60 } })).await;
    let env = std::sync::Arc::new(env);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let env = env.clone();
        let grant_id = grant_id.clone();
        tasks.push(tokio::spawn(async move {
            let response = proxy_get(&env, &format!("/v1/proxy/{grant_id}/v2/echo/x"), None).await;
            (response.status(), response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()))
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some(retry)) => {
                assert!(retry.parse::<u64>().unwrap() >= 1);
                limited += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, limited), (5, 15));
    env.vault.clock.advance(Duration::from_secs(12));
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "the bucket refills");
}

async fn policy_token_retrieval_off_leaves_only_the_proxy(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    policy(&env, "grant", Some(&grant_id), json!({ "token_retrieval": false })).await;
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.get("access_token").is_none());
    assert!(body["message"].as_str().unwrap().contains("token_retrieval"));
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

async fn policy_that_cannot_be_evaluated_denies(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    // A stored rule this vault cannot read (e.g. written by a newer version).
    let record = tokenvault_store::PolicyRecord {
        id: "pol_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e".into(),
        app_id,
        target_type: "app".into(),
        target_id: "x".into(),
        rules: r#"{"quantum_rule": true}"#.into(),
        created_at: 0,
    };
    env.vault.vault.store().insert_policy(&record).await.unwrap();
    let (status, body) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("unreadable"), "{body}");
    let (status, _) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn managed_secrets_are_injected_in_each_style_and_never_readable(env: ConnectEnv) {
    let evil = env.fakes.urls().evil.clone();
    let styles = [
        (json!({ "style": "bearer" }), "managed-bearer-secret"),
        (json!({ "style": "header", "header_name": "X-Api-Key" }), "managed-header-secret"),
        (json!({ "style": "basic", "username": "svc" }), "managed-basic-password"),
        (json!({ "style": "query", "query_parameter": "api_key" }), "managed-query-secret"),
    ];
    for (style, secret) in styles {
        let mut body = style.clone();
        body["name"] = json!("partner api");
        body["secret"] = json!(secret);
        body["base_urls"] = json!([evil]);
        let (status, created) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("grt_"), "addressed like a grant");
        let (status, _) =
            proxy(&env, Method::GET, &id, "/partner/v1/things?x=1", None, &[("authorization", "Bearer caller")]).await;
        assert_eq!(status, StatusCode::OK);
        let seen = env.fakes.control().evil_requests().pop().unwrap();
        let header = |name: &str| seen.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match style["style"].as_str().unwrap() {
            "bearer" => assert_eq!(header("authorization").unwrap(), format!("Bearer {secret}")),
            "header" => {
                assert_eq!(header("x-api-key").unwrap(), secret);
                assert!(header("authorization").is_none(), "the caller's Authorization is dropped");
            }
            "basic" => {
                use base64::Engine;
                let expected = base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"));
                assert_eq!(header("authorization").unwrap(), format!("Basic {expected}"));
            }
            _ => {
                assert!(seen.path.contains(&format!("api_key={secret}")) && seen.path.contains("x=1"), "{}", seen.path)
            }
        }
        let (_, shown) = env.api(Method::GET, &format!("/v1/managed-secrets/{id}"), None).await;
        let (_, listed) = env.api(Method::GET, "/v1/managed-secrets", None).await;
        for text in [shown.to_string(), listed.to_string(), created.to_string()] {
            assert!(!text.contains(secret), "write-only: {text}");
        }
        // It can be replaced, and then the new value is used.
        let mut replacement = style.clone();
        replacement["name"] = json!("partner api");
        replacement["secret"] = json!(format!("{secret}-v2"));
        replacement["base_urls"] = json!([evil]);
        let (status, _) = env.api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(replacement)).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The query style is refused without an explicit, non-bearer parameter (the base URL is fine).
    for parameter in [None, Some("access_token")] {
        let mut body =
            json!({ "name": "x", "style": "query", "secret": "s", "base_urls": ["https://api.example.com"] });
        if let Some(parameter) = parameter {
            body["query_parameter"] = json!(parameter);
        }
        let (status, body) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_managed_secret");
    }
}

async fn audit_records_every_action_without_secrets(env: ConnectEnv) {
    let logs = crate::log_capture::start();
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let headers =
        [("x-actor-type", "ai_agent"), ("x-actor-id", "assistant-7"), ("x-actor-reason", "summarise meetings")];
    proxy(&env, Method::GET, &grant_id, "/v2/echo/meetings?next_page_token=tok-value-123", None, &headers).await;
    policy(&env, "grant", Some(&grant_id), json!({ "methods": ["GET"] })).await;
    proxy(&env, Method::DELETE, &grant_id, "/v2/echo/meetings", None, &headers).await;
    env.vault.clock.advance(Duration::from_secs(3600));
    let (_, refreshed) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let (status, _) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, page) = env.api(Method::GET, "/v1/audit?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
    let events = page["data"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in [
        "provider_config.created",
        "grant.connected",
        "token.retrieved",
        "proxy.request",
        "policy.created",
        "policy.decision",
        "grant.refreshed",
        "grant.revoked",
    ] {
        assert!(actions.contains(&expected), "missing {expected}: {actions:?}");
    }
    let proxied = events.iter().find(|e| e["action"] == "proxy.request").unwrap();
    assert_eq!(proxied["method"], "GET");
    assert_eq!(proxied["path"], "/v2/echo/meetings?next_page_token=");
    assert_eq!(proxied["upstream_status"], 200);
    assert_eq!(proxied["actor"]["type"], "ai_agent");
    assert_eq!(proxied["actor"]["id"], "assistant-7");
    assert_eq!(proxied["actor"]["reason"], "summarise meetings");
    assert!(proxied["request_id"].is_string() && proxied["latency_ms"].is_number());
    let denied = events.iter().find(|e| e["action"] == "policy.decision").unwrap();
    assert_eq!(denied["outcome"], "denied");
    let (_, filtered) = env.api(Method::GET, "/v1/audit?action=proxy.request&actor_id=assistant-7", None).await;
    let outcomes: Vec<&str> =
        filtered["data"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["success", "denied"], "the denied call is a proxy.request row too");
    let export = env.vault.http.get(env.vault.url("/v1/audit/export")).bearer_auth(&env.key).send().await.unwrap();
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines = export.text().await.unwrap();
    assert_eq!(lines.lines().count(), events.len());
    assert!(lines.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    // Every token and secret this test created, scanned for in the audit table and the logs.
    let mut secrets: Vec<String> = vec![env.key.clone(), "zoom-secret-1".into(), "tok-value-123".into()];
    for value in [&token["access_token"], &refreshed["access_token"]] {
        secrets.push(value.as_str().unwrap().to_owned());
    }
    for request in env.fakes.control().token_requests(Provider::Zoom) {
        secrets.extend(request.refresh_token);
        secrets.extend(request.code);
    }
    env.assert_secrets_absent(&logs, &secrets).await;
}

async fn tenant_isolation_for_proxy_and_audit(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, other) = env.vault.new_app("other").await;
    let response = env
        .vault
        .http
        .get(env.vault.url(&format!("/v1/proxy/{grant_id}/v2/echo/x")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (_, audit) = env.vault.call(Method::GET, &format!("/v1/audit?grant_id={grant_id}"), Some(&other), None).await;
    assert!(audit["data"].as_array().unwrap().is_empty());
    let (status, _) = env
        .vault
        .call(
            Method::POST,
            "/v1/policies",
            Some(&other),
            Some(json!({ "target_type": "grant", "target_id": grant_id, "rules": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

/// The `proxy.request` rows of the app, oldest first.
async fn proxy_rows(env: &ConnectEnv) -> Vec<Value> {
    let (status, page) = env.api(Method::GET, "/v1/audit?action=proxy.request&limit=1000", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// The one `proxy.request` row of the call sent with this request id.
async fn row_of(env: &ConnectEnv, request_id: &str) -> Value {
    let rows: Vec<Value> = proxy_rows(env).await.into_iter().filter(|r| r["request_id"] == request_id).collect();
    assert_eq!(rows.len(), 1, "exactly one proxy.request row for {request_id}: {rows:?}");
    rows.into_iter().next().unwrap()
}

async fn bytes_are_counted(env: &ConnectEnv, grant_id: &str) {
    let (status, echo) =
        proxy(env, Method::POST, grant_id, "/v2/echo/upload", Some(vec![b'u'; 1000]), &[("x-request-id", "bytes-1")])
            .await;
    assert_eq!(status, StatusCode::OK);
    let row = row_of(env, "bytes-1").await;
    assert_eq!(row["request_bytes"], 1000);
    assert_eq!(row["response_bytes"].as_u64().unwrap(), echo.to_string().len() as u64, "{row}");
    assert_eq!(row["upstream_status"], 200);
    // A streamed response: counted as it passes, written when it ends.
    let response =
        proxy_get(env, &format!("/v1/proxy/{grant_id}/v2/stream?bytes=300000&chunk=7000"), Some("bytes-2")).await;
    assert_eq!(response.bytes().await.unwrap().len(), 300_000);
    let row = row_of(env, "bytes-2").await;
    assert_eq!((row["request_bytes"].as_u64(), row["response_bytes"].as_u64()), (Some(0), Some(300_000)), "{row}");
    assert_eq!(row["outcome"], "success");
    assert_eq!(row["detail"], "no policy applies", "the allowing decision is on the row: {row}");
}

async fn proxy_audit_rows_count_request_and_response_bytes(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    bytes_are_counted(&env, &grant_id).await;
}

async fn proxy_audit_row_is_written_when_the_client_disconnects_mid_stream(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let total: u64 = 100 * 1024 * 1024;
    let mut response =
        proxy_get(&env, &format!("/v1/proxy/{grant_id}/v2/stream?bytes={total}&chunk=65536"), Some("gone-1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.chunk().await.unwrap().unwrap().is_empty());
    drop(response);
    // The server notices the closed connection in its own time: poll for the row.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let row = loop {
        let rows: Vec<Value> = proxy_rows(&env).await.into_iter().filter(|r| r["request_id"] == "gone-1").collect();
        if let Some(row) = rows.first() {
            assert_eq!(rows.len(), 1);
            break row.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no audit row after the client went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row["detail"], "client_disconnected", "{row}");
    assert_eq!(row["upstream_status"], 200);
    let sent = row["response_bytes"].as_u64().unwrap();
    assert!(sent >= 65_536 && sent < total, "{sent}");
}

async fn every_proxied_call_leaves_one_audit_row_even_when_stopped_early(env: ConnectEnv) {
    let logs = crate::log_capture::start();
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let mut calls: Vec<(String, StatusCode, &str, &str)> = Vec::new();
    let mut call = async |path: &str, method: Method, expect: (StatusCode, &'static str, &'static str)| {
        let id = format!("stop-{}", calls.len());
        let (status, body) = proxy(&env, method, &grant_id, path, None, &[("x-request-id", &id)]).await;
        assert_eq!(status, expect.0, "{path}: {body}");
        assert_eq!(assert_error_shape(status, &body), expect.1, "{path}");
        calls.push((id, status, expect.1, expect.2));
    };
    // Paths that would leave the provider's API.
    for path in ["//evil.test/", "/@evil.test", "/%2F%2Fevil.test/x", "/v2/users%2F..%2Fadmin"] {
        call(path, Method::GET, (StatusCode::BAD_REQUEST, "invalid_proxy_path", "failure")).await;
    }
    call("/v2/redirect-evil", Method::GET, (StatusCode::FORBIDDEN, "upstream_redirect_refused", "failure")).await;
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, Fault::DropConnection, 1);
    call("/v2/echo/x", Method::GET, (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable", "failure")).await;
    // The token expired and the provider cannot refresh it right now.
    env.vault.clock.advance(Duration::from_secs(2 * 3600));
    let unavailable = Fault::Status { status: 503, body: "{}".into(), retry_after: None };
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, unavailable, 1);
    call("/v2/echo/x", Method::GET, (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", "failure")).await;
    policy(&env, "grant", Some(&grant_id), json!({ "methods": ["GET"] })).await;
    call("/v2/echo/x", Method::DELETE, (StatusCode::FORBIDDEN, "policy_denied", "denied")).await;

    for (id, _, code, outcome) in &calls {
        let row = row_of(&env, id).await;
        assert_eq!(row["outcome"], *outcome, "{id}: {row}");
        assert_eq!(row["grant_id"], grant_id.as_str());
        assert_eq!(row["provider"], "zoom");
        if *outcome == "denied" {
            assert!(row["detail"].as_str().unwrap().contains("methods"), "{row}");
        } else {
            assert_eq!(row["detail"], *code, "{row}");
        }
        assert!(row["latency_ms"].is_number() && row["request_bytes"] == 0, "{row}");
    }
    let redirect = row_of(&env, "stop-4").await;
    assert_eq!((redirect["upstream_status"].as_u64(), redirect["host"].is_string()), (Some(302), true));
    assert_eq!(row_of(&env, "stop-0").await["path"], "//evil.test/");
    // A grant id that is not the app's: a row without any grant.
    let (status, _) =
        proxy(&env, Method::GET, "grt_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", "/x", None, &[("x-request-id", "stop-x")])
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let row = row_of(&env, "stop-x").await;
    assert!(row["grant_id"].is_null() && row["outcome"] == "failure", "{row}");

    let mut secrets = vec![env.key.clone(), "zoom-secret-1".to_owned(), access];
    for request in env.fakes.control().token_requests(Provider::Zoom) {
        secrets.extend(request.refresh_token);
        secrets.extend(request.code);
    }
    env.vault.vault.flush_audit().await;
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let table = format!(
        "{:?}",
        env.vault.vault.store().query_audit(&app_id, &Default::default(), None, 100_000).await.unwrap()
    );
    let logged = logs.contents();
    for secret in &secrets {
        assert!(!table.contains(secret.as_str()), "a secret is in the audit table");
        assert!(!logged.contains(secret.as_str()), "a secret is in the logs");
    }
}

async fn denied_calls_never_refresh_at_the_provider(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let refreshes = |env: &ConnectEnv| {
        env.fakes.control().token_requests(Provider::Zoom).iter().filter(|r| r.grant_type == "refresh_token").count()
    };
    let id = policy(&env, "grant", Some(&grant_id), json!({ "methods": ["GET"], "token_retrieval": false })).await;
    // The access token has expired: any use of it would refresh first.
    env.vault.clock.advance(Duration::from_secs(2 * 3600));
    let (status, _) = proxy(&env, Method::POST, &grant_id, "/v2/echo/x", Some(b"{}".to_vec()), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refreshes(&env), 0, "a denied caller made the vault refresh at the provider");
    // An allowed call does refresh: the token really was due.
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refreshes(&env), 1);
    env.api(Method::DELETE, &format!("/v1/policies/{id}"), None).await;
}

async fn proxy_caps_request_and_response_bodies(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let zoom_calls = |env: &ConnectEnv| env.fakes.control().calls_on_host(tokenvault_fakes::Host::ZoomApi);
    // A declared length over the 128 KiB cap: refused before anything is sent.
    let before = zoom_calls(&env);
    let (status, body) =
        proxy(&env, Method::POST, &grant_id, "/v2/echo/up", Some(vec![b'a'; 200 * 1024]), &[("x-request-id", "big-1")])
            .await;
    assert_eq!(
        (status, assert_error_shape(status, &body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(zoom_calls(&env), before, "nothing reached the provider");
    assert_eq!(row_of(&env, "big-1").await["detail"], "payload_too_large");
    // A streamed body without a declared length: cut off at the cap.
    let chunks = futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 50 * 1024])));
    let response = env
        .vault
        .http
        .post(env.vault.url(&format!("/v1/proxy/{grant_id}/v2/echo/up")))
        .bearer_auth(&env.key)
        .header("x-request-id", "big-2")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, assert_error_shape(status, &body).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let row = row_of(&env, "big-2").await;
    assert_eq!(row["detail"], "payload_too_large");
    assert!(row["request_bytes"].as_u64().unwrap() > 128 * 1024, "{row}");
    // Under the cap: forwarded whole.
    let (status, echo) = proxy(&env, Method::POST, &grant_id, "/v2/echo/up", Some(vec![b'c'; 100 * 1024]), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["body_len"], 100 * 1024);

    // A response declaring more than the 256 KiB cap: 502 before any of it is passed on.
    let (status, body) =
        proxy(&env, Method::GET, &grant_id, "/v2/stream?bytes=300000&declare_length=1", None, &[]).await;
    assert_eq!(
        (status, assert_error_shape(status, &body).as_str()),
        (StatusCode::BAD_GATEWAY, "upstream_response_too_large")
    );
    // A streamed response growing past the cap: cut off, never passed on as if complete.
    let response =
        proxy_get(&env, &format!("/v1/proxy/{grant_id}/v2/stream?bytes=300000&chunk=10000"), Some("big-3")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.is_err(), "the body must end in an error, not look complete");
    let row = row_of(&env, "big-3").await;
    assert_eq!(
        (row["outcome"].as_str(), row["detail"].as_str()),
        (Some("failure"), Some("upstream_response_too_large"))
    );
    assert!(row["response_bytes"].as_u64().unwrap() <= 256 * 1024, "{row}");
    // At the cap exactly: whole.
    let response = proxy_get(&env, &format!("/v1/proxy/{grant_id}/v2/stream?bytes=262144"), None).await;
    assert_eq!(response.bytes().await.unwrap().len(), 262_144);
}

async fn proxy_gives_up_on_a_provider_that_does_not_answer_in_time(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    // No status and headers within the 2 s response timeout.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, Fault::Latency(Duration::from_secs(30)), 1);
    let (status, body) =
        proxy(&env, Method::GET, &grant_id, "/v2/echo/slow", None, &[("x-request-id", "slow-1")]).await;
    assert_eq!((status, assert_error_shape(status, &body).as_str()), (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"));
    let row = row_of(&env, "slow-1").await;
    assert_eq!((row["outcome"].as_str(), row["detail"].as_str()), (Some("failure"), Some("upstream_timeout")));
    // Headers in time, then the body stalls longer than the 2 s idle timeout: cut off.
    let response = proxy_get(
        &env,
        &format!("/v1/proxy/{grant_id}/v2/stream?bytes=20000&chunk=1000&delay_ms=30000"),
        Some("slow-2"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.is_err());
    let row = row_of(&env, "slow-2").await;
    assert_eq!((row["detail"].as_str(), row["response_bytes"].as_u64()), (Some("upstream_timeout"), Some(0)));
    // The provider answers normally again.
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/fast", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

async fn hop_by_hop_headers_are_dropped_both_ways(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    // Towards the provider.
    let (status, echo) = proxy(
        &env,
        Method::GET,
        &grant_id,
        "/v2/echo/h",
        None,
        &[
            ("connection", "x-hop-request"),
            ("x-hop-request", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic cHJveHk6cGFzcw=="),
            ("te", "trailers"),
            ("cookie", "session=abc"),
            ("x-custom-request", "kept"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    let seen = &echo["headers"];
    assert_eq!((seen["x-custom-request"].as_str(), seen["accept"].as_str()), (Some("kept"), Some("application/json")));
    for name in ["x-hop-request", "keep-alive", "proxy-authorization", "te", "cookie"] {
        assert!(seen.get(name).is_none(), "{name} was forwarded: {seen}");
    }
    assert!(!seen["connection"].as_str().unwrap_or_default().contains("x-hop-request"), "{seen}");
    assert!(
        seen["authorization"].as_str().unwrap().starts_with("Bearer ")
            && seen["authorization"] != format!("Bearer {}", env.key)
    );

    // Back to the caller. First check the provider really sends them all.
    let query =
        "x-custom=yes&connection=x-hop-response&x-hop-response=1&keep-alive=timeout%3D5&proxy-authenticate=Basic";
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let direct = env
        .vault
        .http
        .get(format!("{}/v2/headers?{query}", env.fakes.urls().zoom_api))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    for name in ["x-custom", "x-hop-response", "keep-alive", "proxy-authenticate", "connection"] {
        assert!(direct.headers().contains_key(name), "the fake did not send {name}");
    }
    let response = proxy_get(&env, &format!("/v1/proxy/{grant_id}/v2/headers?{query}"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-custom"], "yes");
    assert_eq!(headers["content-type"], "application/json");
    for name in ["x-hop-response", "keep-alive", "proxy-authenticate"] {
        assert!(!headers.contains_key(name), "{name} was passed back");
    }
    assert!(headers.get("connection").is_none_or(|v| !v.to_str().unwrap().contains("x-hop-response")));
}

fn unauthorized() -> Fault {
    Fault::Status { status: 401, body: r#"{"code":124,"message":"Invalid access token."}"#.into(), retry_after: None }
}

fn refreshes(env: &ConnectEnv, provider: Provider) -> usize {
    env.fakes.control().token_requests(provider).iter().filter(|r| r.grant_type == "refresh_token").count()
}

async fn dialpad_sandbox_grants_are_proxied_to_the_sandbox_host(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.configure_dialpad("sandbox", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-sandbox").await;
    let production_calls = env.fakes.control().calls_on_host(Host::DialpadProduction);
    let (status, echo) = proxy(&env, Method::GET, &grant_id, "/api/v2/echo/users", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["host"], Host::DialpadSandbox.as_str());
    // A 401 there refreshes at the sandbox too, and the replay goes to the sandbox again.
    env.fakes.control().inject(Provider::DialpadSandbox, Endpoint::Api, unauthorized(), 1);
    let (status, echo) = proxy(&env, Method::GET, &grant_id, "/api/v2/echo/users", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["host"], Host::DialpadSandbox.as_str());
    assert_eq!((refreshes(&env, Provider::DialpadSandbox), refreshes(&env, Provider::DialpadProduction)), (1, 0));
    assert_eq!(
        env.fakes.control().calls_on_host(Host::DialpadProduction),
        production_calls,
        "nothing went to production"
    );
}

async fn only_a_body_within_the_replay_buffer_is_replayed_after_a_401(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let sent_to = |env: &ConnectEnv, path: &str| -> Vec<String> {
        env.fakes.control().requests(Host::ZoomApi).into_iter().filter(|r| r.path == path).map(|r| r.body).collect()
    };
    // Over 64 KiB: sent once; the 401 goes back to the caller, the grant is refreshed for next time.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, unauthorized(), 1);
    let big = vec![b'b'; 64 * 1024 + 1];
    let (status, body) = proxy(&env, Method::POST, &grant_id, "/v2/echo/big", Some(big), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], 124, "the provider's own answer");
    assert_eq!(sent_to(&env, "/v2/echo/big").len(), 1, "a body over the replay buffer is never sent twice");
    assert_eq!(refreshes(&env, Provider::Zoom), 1);
    let (status, _) = proxy(&env, Method::GET, &grant_id, "/v2/echo/after", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "the refreshed token works");
    // Within 64 KiB: replayed exactly once, byte for byte.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, unauthorized(), 1);
    let small = "s".repeat(64 * 1024);
    let (status, echo) =
        proxy(&env, Method::POST, &grant_id, "/v2/echo/small", Some(small.clone().into_bytes()), &[]).await;
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["body_len"], 64 * 1024);
    assert_eq!(sent_to(&env, "/v2/echo/small"), [small.clone(), small]);
    assert_eq!(refreshes(&env, Provider::Zoom), 2);
}
