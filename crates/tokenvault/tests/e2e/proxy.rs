//! Issue 5: the proxy, managed secrets, policies, actors and the audit log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{Endpoint, Fault, Provider, Variant, ZoomApiUrl};

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
);

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
        ("dialpad-production", "/api/v2/echo/items", env.fakes.urls().dialpad_production.clone()),
        ("zoom", "/v2/echo/items", env.fakes.urls().zoom_api_alt.clone()),
        ("aircall", "/v1/echo/items", env.fakes.urls().aircall_api.clone()),
    ];
    for (key, path, host) in cases {
        let grant_id = env.connect_ok("user-1", key).await;
        let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        let access = token["access_token"].as_str().unwrap();
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
        assert!(echo["host"].as_str().is_some());
        assert!(host.contains(&env.fakes.urls().aircall_api[..0]));
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
            let response = env
                .vault
                .http
                .get(env.vault.url(&format!("/v1/proxy/{grant_id}/v2/echo/x")))
                .bearer_auth(&env.key)
                .send()
                .await
                .unwrap();
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
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
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
    env.vault.vault.flush_audit().await;
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let everything = env.vault.vault.store().query_audit(&app_id, &Default::default(), None, 100_000).await.unwrap();
    let table = format!("{everything:?}");
    let logged = logs.contents();
    assert!(logged.contains("proxied"), "logs were captured");
    for secret in &secrets {
        assert!(!table.contains(secret.as_str()), "a secret is in the audit table");
        assert!(!logged.contains(secret.as_str()), "a secret is in the logs");
    }
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
