//! Issue 8, the smaller holes: values a header cannot carry, page limits out of range, the JSON
//! error shape for every 4xx (hyper's own answers included), the master key file's permissions
//! and the database files' modes, and secrets in URLs kept out of the logs.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::support::{TestVault, assert_error_shape};
use crate::{connect_tests, on_both_backends};

/// Item 1: managed-secret values the proxy could not send as they are.
mod header_values {
    use super::*;
    connect_tests!(
        a_managed_secret_that_a_header_cannot_carry_is_refused_at_creation_and_never_stored,
        replacing_a_managed_secret_with_an_unsendable_value_is_refused_and_the_old_value_keeps_working,
    );
}

/// Item 3: `limit` outside 1..=max is a 400, not clamped.
mod page_limits {
    use super::*;
    on_both_backends!(page_limits_outside_the_documented_range_are_refused_on_every_list_endpoint);
}

/// Values with a byte no header may carry (CR, LF, NUL, other controls), or that a recipient
/// would read differently (spaces at the ends, non-ASCII) for the styles sent verbatim.
const UNSENDABLE: [(&str, &str); 9] = [
    ("bearer", "tok-hole-1\r\nX-Injected: yes"),
    ("bearer", "tok-hole-2\n"),
    ("bearer", "tok-hole-3\0"),
    ("bearer", " tok-hole-4"),
    ("header", "tok-hole-5\r"),
    ("header", "tok-hole-6\u{7f}"),
    ("header", "tök-hole-7"),
    ("basic", "tok-hole-8\n"),
    ("query", "tok-hole-9\r\n"),
];

fn style_body(style: &str) -> Value {
    match style {
        "bearer" => json!({ "style": "bearer" }),
        "header" => json!({ "style": "header", "header_name": "X-Api-Key" }),
        "basic" => json!({ "style": "basic", "username": "svc" }),
        _ => json!({ "style": "query", "query_parameter": "api_key" }),
    }
}

fn managed_secret(env: &ConnectEnv, style: &str, secret: &str) -> Value {
    let mut body = style_body(style);
    body["name"] = json!("partner api");
    body["secret"] = json!(secret);
    body["base_urls"] = json!([env.fakes.urls().evil.clone()]);
    body
}

async fn a_managed_secret_that_a_header_cannot_carry_is_refused_at_creation_and_never_stored(env: ConnectEnv) {
    for (style, secret) in UNSENDABLE {
        let (status, body) = env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, secret))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{style} {secret:?}: {body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_secret_value", "{style} {secret:?}");
        assert!(body["message"].as_str().unwrap().contains("`secret`"), "{body}");
        assert!(!body.to_string().contains("tok-hole"), "the value is not echoed: {body}");
    }
    // A Basic username is sent too: a colon or a control character in it is refused as well.
    for username in ["svc\r\nX-Injected: yes", "svc:admin", "svc\0"] {
        let mut body = managed_secret(&env, "basic", "fine-secret");
        body["username"] = json!(username);
        let (status, answer) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{username:?}: {answer}");
        assert_eq!(assert_error_shape(status, &answer), "invalid_managed_secret", "{username:?}");
        assert!(answer["message"].as_str().unwrap().contains("`username`"), "{answer}");
    }
    // A header name that is not a header name (CR/LF in it) is refused.
    let mut body = managed_secret(&env, "header", "fine-secret");
    body["header_name"] = json!("X-Api-Key\r\nX-Injected");
    let (status, answer) = env.api(Method::POST, "/v1/managed-secrets", Some(body)).await;
    assert_eq!((status, assert_error_shape(status, &answer).as_str()), (StatusCode::BAD_REQUEST, "invalid_managed_secret"));

    let (status, listed) = env.api(Method::GET, "/v1/managed-secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "nothing was stored: {listed}");
    env.vault.vault.flush_audit().await;
    let (_, audit) = env.api(Method::GET, "/v1/audit?action=managed_secret.created", None).await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 0, "nothing was created: {audit}");

    // The same requests with sendable values are accepted: the rule is about the bytes only.
    for (style, secret) in [("bearer", "sk_live_0123-ABC.~+/="), ("basic", " pässword with spaces "), ("query", "ä b")] {
        let (status, body) = env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, secret))).await;
        assert_eq!(status, StatusCode::CREATED, "{style}: {body}");
    }
}

async fn replacing_a_managed_secret_with_an_unsendable_value_is_refused_and_the_old_value_keeps_working(
    env: ConnectEnv,
) {
    for style in ["bearer", "header", "basic", "query"] {
        let old = format!("old-{style}-value");
        let (status, created) = env.api(Method::POST, "/v1/managed-secrets", Some(managed_secret(&env, style, &old))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        for (_, bad) in UNSENDABLE.iter().filter(|(s, _)| *s == style) {
            let (status, body) =
                env.api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(managed_secret(&env, style, bad))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{style} {bad:?}: {body}");
            assert_eq!(assert_error_shape(status, &body), "invalid_secret_value");
        }
        // The old value is still the one injected.
        let response =
            env.vault.http.get(env.vault.url(&format!("/v1/proxy/{id}/partner/x"))).bearer_auth(&env.key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{style}");
        let seen = env.fakes.control().evil_requests().pop().expect("the partner API was called");
        let sent = format!("{:?} {:?}", seen.path, seen.headers);
        let expected = match style {
            "basic" => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(format!("svc:{old}"))
            }
            _ => old.clone(),
        };
        assert!(sent.contains(&expected), "{style}: the old value is still sent: {sent}");
        assert!(!sent.contains("tok-hole"), "{style}: {sent}");
    }
}

/// The list endpoints and their documented maximum (`limit` is 1..=max; the default applies when absent).
const LISTS: [(&str, u32); 4] =
    [("/admin/v1/apps", 200), ("/v1/grants", 200), ("/v1/webhook-deliveries", 200), ("/v1/audit", 1000)];

async fn page_limits_outside_the_documented_range_are_refused_on_every_list_endpoint(vault: TestVault) {
    let (_, key) = vault.new_app("first").await;
    vault.new_app("second").await;
    for (path, max) in LISTS {
        let token = if path.starts_with("/admin") { crate::support::ADMIN_TOKEN } else { key.as_str() };
        for limit in [0, max + 1, 100_000] {
            let (status, body) = vault.call(Method::GET, &format!("{path}?limit={limit}"), Some(token), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?limit={limit}: {body}");
            assert_eq!(assert_error_shape(status, &body), "invalid_limit", "{path}?limit={limit}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(&format!("between 1 and {max}")), "{path}: {message}");
        }
        for limit in [1, max] {
            let (status, body) = vault.call(Method::GET, &format!("{path}?limit={limit}"), Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{path}?limit={limit}: {body}");
            assert!(body["data"].as_array().unwrap().len() <= limit as usize, "{path}: {body}");
        }
    }
    // limit=1 really is one row, with a cursor to the next.
    let (_, page) = vault.admin(Method::GET, "/apps?limit=1", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["next_cursor"].is_string(), "{page}");

    // The export is not paginated: `limit` and `after` are refused, not ignored.
    for query in ["limit=10", "limit=0", "after=aud_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e"] {
        let (status, body) = vault.call(Method::GET, &format!("/v1/audit/export?{query}"), Some(&key), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_query", "{query}");
    }
}
