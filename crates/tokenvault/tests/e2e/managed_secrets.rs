//! Managed secrets: choosing among the declared base URLs, the query-style rules, replacement,
//! tenant isolation, and no secret value in the audit log or the logs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::RecordedRequest;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    a_call_can_choose_any_declared_base_url_and_no_other,
    query_style_needs_an_explicit_parameter_that_is_not_a_bearer_token,
    replacing_a_secret_injects_the_new_value_and_never_the_old,
    another_app_cannot_use_read_replace_or_delete_a_managed_secret,
    no_managed_secret_value_reaches_the_audit_log_or_the_logs,
);

/// Proxies a GET with the app key `key` and extra headers; returns the status and JSON body.
async fn proxy_with(
    env: &ConnectEnv,
    key: &str,
    grant_id: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = env.vault.http.get(env.vault.url(&format!("/v1/proxy/{grant_id}{path}"))).bearer_auth(key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn create(env: &ConnectEnv, mut body: Value, secret: &str, base_urls: Value) -> String {
    body["name"] = json!("partner api");
    body["secret"] = json!(secret);
    body["base_urls"] = base_urls;
    let (status, created) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// The request the evil fake (standing in for the partner API) received last.
fn last_seen(env: &ConnectEnv) -> RecordedRequest {
    env.fakes.control().evil_requests().pop().expect("the partner API was called")
}

fn header(seen: &RecordedRequest, name: &str) -> Option<String> {
    seen.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

async fn a_call_can_choose_any_declared_base_url_and_no_other(env: ConnectEnv) {
    let evil = env.fakes.urls().evil.trim_end_matches('/').to_owned();
    let (alpha, beta) = (format!("{evil}/alpha"), format!("{evil}/beta"));
    let id = create(&env, json!({ "style": "bearer" }), "ms-choice-1", json!([alpha, beta])).await;
    let (status, _) = proxy_with(&env, &env.key, &id, "/things", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(last_seen(&env).path, "/alpha/things", "without a choice, the first");
    for chosen in [beta.clone(), format!("{beta}/")] {
        let (status, _) = proxy_with(&env, &env.key, &id, "/things", &[("x-tokenvault-base-url", &chosen)]).await;
        assert_eq!(status, StatusCode::OK, "{chosen}");
        let seen = last_seen(&env);
        assert_eq!(seen.path, "/beta/things", "{chosen}");
        assert_eq!(header(&seen, "authorization").unwrap(), "Bearer ms-choice-1");
        assert!(header(&seen, "x-tokenvault-base-url").is_none(), "the choice is not forwarded");
    }
    let calls = env.fakes.control().evil_requests().len();
    let aircall = env.fakes.urls().aircall_api.clone();
    for undeclared in [
        format!("{evil}/gamma"),
        evil.clone(),
        format!("{alpha}/things"),
        format!("{evil}/alph"),
        aircall,
        "nonsense".into(),
    ] {
        let (status, body) =
            proxy_with(&env, &env.key, &id, "/things", &[("x-tokenvault-base-url", &undeclared)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{undeclared}: {body}");
        assert_eq!(assert_error_shape(status, &body), "base_url_not_allowed", "{undeclared}");
    }
    assert_eq!(env.fakes.control().evil_requests().len(), calls, "no refused call left the vault");

    // An OAuth grant has one base URL: naming it is fine, naming another is refused.
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let zoom_base = token["api_base_url"].as_str().expect("a Zoom grant has its API base").to_owned();
    let (status, _) =
        proxy_with(&env, &env.key, &grant_id, "/v2/echo/x", &[("x-tokenvault-base-url", &zoom_base)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        proxy_with(&env, &env.key, &grant_id, "/v2/echo/x", &[("x-tokenvault-base-url", &alpha)]).await;
    assert_eq!((status, assert_error_shape(status, &body).as_str()), (StatusCode::BAD_REQUEST, "base_url_not_allowed"));
    assert_eq!(env.fakes.control().evil_requests().len(), calls, "the grant's token never went to the other host");
}

async fn query_style_needs_an_explicit_parameter_that_is_not_a_bearer_token(env: ConnectEnv) {
    let https = json!(["https://api.partner.example"]);
    let rejected = [
        (json!({ "style": "query" }), "query_parameter"),
        (json!({ "style": "query", "query_parameter": "" }), "query_parameter"),
        (json!({ "style": "query", "query_parameter": "api key" }), "query_parameter"),
        (json!({ "style": "query", "query_parameter": "access_token" }), "bearer"),
        (json!({ "style": "query", "query_parameter": "Access_Token" }), "bearer"),
        (json!({ "style": "query", "query_parameter": "api_key", "header_name": "x-api-key" }), "own field"),
        (json!({ "style": "query", "query_parameter": "api_key", "username": "svc" }), "own field"),
        (json!({ "style": "bearer", "query_parameter": "api_key" }), "own field"),
    ];
    for (mut body, why) in rejected {
        body["name"] = json!("partner");
        body["secret"] = json!("s3cret");
        body["base_urls"] = https.clone();
        let (status, answer) = env.api(Method::POST, "/v1/managed-secrets", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(assert_error_shape(status, &answer), "invalid_managed_secret", "{body}");
        assert!(answer["message"].as_str().unwrap().contains(why), "{body}: {answer}");
        assert!(!answer.to_string().contains("s3cret"));
    }
    // Plain http to a non-local host is refused for every style (the URL rule, not the style's).
    let (status, answer) = env
        .api(
            Method::POST,
            "/v1/managed-secrets",
            Some(json!({ "name": "x", "style": "query", "query_parameter": "api_key", "secret": "s",
                         "base_urls": ["http://api.partner.example"] })),
        )
        .await;
    assert_eq!((status, assert_error_shape(status, &answer).as_str()), (StatusCode::BAD_REQUEST, "invalid_url"));
    // The same request with an https base URL and a named parameter is accepted.
    create(&env, json!({ "style": "query", "query_parameter": "api_key" }), "s3cret", https).await;
}

async fn replacing_a_secret_injects_the_new_value_and_never_the_old(env: ConnectEnv) {
    let evil = json!([env.fakes.urls().evil.clone()]);
    let cases = [
        (json!({ "style": "header", "header_name": "X-Api-Key" }), "ms-header-old", "ms-header-new"),
        (json!({ "style": "query", "query_parameter": "api_key" }), "ms-query-old", "ms-query-new"),
    ];
    for (style, old, new) in cases {
        let id = create(&env, style.clone(), old, evil.clone()).await;
        let (status, _) = proxy_with(&env, &env.key, &id, "/partner/x", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(format!("{:?}", last_seen(&env)).contains(old));
        let mut replacement = style.clone();
        replacement["name"] = json!("partner api");
        replacement["secret"] = json!(new);
        replacement["base_urls"] = evil.clone();
        let (status, replaced) = env.api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(replacement)).await;
        assert_eq!(status, StatusCode::OK, "{replaced}");
        assert!(!replaced.to_string().contains(new), "write-only");
        let (status, _) = proxy_with(&env, &env.key, &id, "/partner/x", &[]).await;
        assert_eq!(status, StatusCode::OK);
        let seen = last_seen(&env);
        match style["style"].as_str().unwrap() {
            "header" => assert_eq!(header(&seen, "x-api-key").as_deref(), Some(new)),
            _ => assert_eq!(seen.path, format!("/partner/x?api_key={new}")),
        }
        assert!(!format!("{seen:?}").contains(old), "the old value is gone: {seen:?}");
        if style["style"] == "query" {
            // The caller cannot send the parameter the vault injects (the provider would see two).
            let calls = env.fakes.control().evil_requests().len();
            let (status, answer) = proxy_with(&env, &env.key, &id, "/partner/x?a=1&api_key=mine", &[]).await;
            assert_eq!(assert_error_shape(status, &answer), "reserved_query_parameter", "{answer}");
            assert_eq!(env.fakes.control().evil_requests().len(), calls, "nothing was sent");
        }
    }
}

async fn another_app_cannot_use_read_replace_or_delete_a_managed_secret(env: ConnectEnv) {
    let evil = env.fakes.urls().evil.clone();
    let id = create(&env, json!({ "style": "bearer" }), "ms-tenant-a", json!([evil])).await;
    let (_, other) = env.vault.new_app("other").await;
    let calls = env.fakes.control().evil_requests().len();
    let (status, _) = proxy_with(&env, &other, &id, "/partner/x", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(env.fakes.control().evil_requests().len(), calls, "nothing was sent");
    let path = format!("/v1/managed-secrets/{id}");
    let replacement = json!({ "name": "stolen", "style": "bearer", "secret": "ms-tenant-b", "base_urls": [evil] });
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(replacement)), (Method::DELETE, None)] {
        let (status, answer) = env.vault.call(method.clone(), &path, Some(&other), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
        assert_eq!(assert_error_shape(status, &answer), "not_found");
    }
    let (_, listed) = env.vault.call(Method::GET, "/v1/managed-secrets", Some(&other), None).await;
    assert!(listed["data"].as_array().unwrap().is_empty());
    let (_, audit) = env.vault.call(Method::GET, &format!("/v1/audit?grant_id={id}"), Some(&other), None).await;
    assert!(audit["data"].as_array().unwrap().is_empty());
    // Untouched for its owner.
    let (status, _) = proxy_with(&env, &env.key, &id, "/partner/x", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&last_seen(&env), "authorization").unwrap(), "Bearer ms-tenant-a");
    let (status, shown) = env.api(Method::GET, &path, None).await;
    assert_eq!((status, shown["name"].as_str()), (StatusCode::OK, Some("partner api")));
}

async fn no_managed_secret_value_reaches_the_audit_log_or_the_logs(env: ConnectEnv) {
    use base64::Engine;
    let logs = crate::log_capture::start();
    let evil = json!([env.fakes.urls().evil.clone()]);
    let styles = [
        (json!({ "style": "bearer" }), "scan-bearer-9f1"),
        (json!({ "style": "header", "header_name": "X-Api-Key" }), "scan-header-9f2"),
        (json!({ "style": "basic", "username": "svc" }), "scan-basic-9f3"),
        (json!({ "style": "query", "query_parameter": "api_key" }), "scan-query-9f4"),
    ];
    let mut secrets: Vec<String> = vec![env.key.clone(), "scan-caller-query-9f5".into()];
    for (style, secret) in styles {
        let id = create(&env, style.clone(), secret, evil.clone()).await;
        let path = "/partner/v1/things?cursor=scan-caller-query-9f5";
        let (status, _) = proxy_with(&env, &env.key, &id, path, &[("x-actor-type", "ai_agent")]).await;
        assert_eq!(status, StatusCode::OK);
        let replaced = format!("{secret}-v2");
        let mut replacement = style.clone();
        replacement["name"] = json!("partner api");
        replacement["secret"] = json!(replaced);
        replacement["base_urls"] = evil.clone();
        let (status, _) = env.api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(replacement)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = proxy_with(&env, &env.key, &id, path, &[]).await;
        assert_eq!(status, StatusCode::OK);
        if style["style"] == "query" {
            assert!(last_seen(&env).path.contains(&format!("api_key={replaced}")), "the query style was exercised");
        }
        let (status, _) = env.api(Method::DELETE, &format!("/v1/managed-secrets/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for value in [secret.to_owned(), replaced] {
            secrets.push(base64::engine::general_purpose::STANDARD.encode(format!("svc:{value}")));
            secrets.push(value);
        }
    }
    env.assert_secrets_absent(&logs, &secrets).await;
    let (_, page) = env.api(Method::GET, "/v1/audit?action=proxy.request&limit=100", None).await;
    assert!(page["data"].as_array().unwrap().len() >= 8, "every call was audited: {page}");
}
