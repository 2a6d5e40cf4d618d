//! Issue 2: health, auth, tenant isolation, the error shape, restarts.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{ADMIN_TOKEN, TestVault, assert_error_shape};

on_both_backends!(
    health_and_readiness_answer_with_request_ids,
    missing_wrong_and_revoked_api_keys_get_401,
    admin_api_requires_an_admin_token,
    an_app_key_cannot_touch_another_apps_objects,
    malformed_unknown_and_oversized_bodies_get_clear_4xx,
    bad_ids_unknown_routes_and_wrong_methods_get_json_errors,
    apps_and_keys_can_be_listed_paginated_and_deleted,
    data_survives_a_restart,
    readiness_fails_when_the_database_is_unreachable,
    openapi_document_is_served,
);

async fn health_and_readiness_answer_with_request_ids(vault: TestVault) {
    let response = vault.http.get(vault.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-request-id").is_some());
    let response = vault.http.get(vault.url("/readyz")).header("x-request-id", "trace-abc-123").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["status"], "ready");
    // An id that could forge log lines is replaced, not echoed.
    let response = vault.http.get(vault.url("/healthz")).header("x-request-id", "a b\tc").send().await.unwrap();
    assert_ne!(response.headers()["x-request-id"], "a b\tc");
}

async fn missing_wrong_and_revoked_api_keys_get_401(vault: TestVault) {
    let (app_id, key) = vault.new_app("acme").await;

    let (status, body) = vault.call(Method::GET, "/v1/app", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(assert_error_shape(status, &body), "missing_credentials");

    let response =
        vault.http.get(vault.url("/v1/app")).header("authorization", "Basic Zm9vOmJhcg==").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    // Right shape, wrong secret: same answer as an unknown key.
    let mut wrong = key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [wrong.as_str(), "tvk_nonsense", "", ADMIN_TOKEN] {
        let (status, body) = vault.call(Method::GET, "/v1/app", Some(bad), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        let code = assert_error_shape(status, &body);
        assert!(code == "invalid_api_key" || code == "invalid_authorization_header", "{code}");
    }

    let (status, body) = vault.call(Method::GET, "/v1/app", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], app_id.as_str());

    let key_id = format!("key_{}", &key[4..36]);
    let (status, _) = vault.admin(Method::DELETE, &format!("/apps/{app_id}/api-keys/{key_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = vault.call(Method::GET, "/v1/app", Some(&key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(assert_error_shape(status, &body), "invalid_api_key");
}

async fn admin_api_requires_an_admin_token(vault: TestVault) {
    let (_, app_key) = vault.new_app("acme").await;
    for token in [None, Some(app_key.as_str()), Some("wrong-admin-token-wrong-admin-token")] {
        let (status, body) = vault.call(Method::GET, "/admin/v1/apps", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_error_shape(status, &body);
    }
    // A minted admin token works, and stops working once revoked.
    let minted = vault.vault.mint_admin_token("ops").await.unwrap();
    let (id, secret) = (minted.info.id, secrecy::ExposeSecret::expose_secret(&minted.secret).to_owned());
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK);
    vault.vault.revoke_admin_token(&id).await.unwrap();
    let (status, _) = vault.call(Method::GET, "/admin/v1/apps", Some(&secret), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn an_app_key_cannot_touch_another_apps_objects(vault: TestVault) {
    let (_, key_a) = vault.new_app("a").await;
    let (app_b, key_b) = vault.new_app("b").await;
    let key_b_id = format!("key_{}", &key_b[4..36]);

    let (status, body) = vault.call(Method::DELETE, &format!("/v1/api-keys/{key_b_id}"), Some(&key_a), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(assert_error_shape(status, &body), "not_found");

    let (status, body) = vault.call(Method::GET, "/v1/api-keys", Some(&key_a), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"].as_array().unwrap().iter().all(|k| k["app_id"] != app_b.as_str()), "{body}");

    // B's key is untouched and still works.
    let (status, body) = vault.call(Method::GET, "/v1/app", Some(&key_b), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], app_b.as_str());
}

async fn malformed_unknown_and_oversized_bodies_get_clear_4xx(vault: TestVault) {
    let post = |body: &'static str, content_type: &'static str| {
        vault
            .http
            .post(vault.url("/admin/v1/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        ("{\"name\": ", "application/json", StatusCode::BAD_REQUEST, "malformed_json"),
        ("{\"name\": \"x\", \"extra\": 1}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("{\"name\": 42}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("{}", "application/json", StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("{\"name\": \"   \"}", "application/json", StatusCode::BAD_REQUEST, "invalid_name"),
        ("name=x", "application/x-www-form-urlencoded", StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for (body, content_type, expected_status, expected_code) in cases {
        let response = post(body, content_type).await.unwrap();
        let status = response.status();
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, expected_status, "{body}: {json}");
        assert_eq!(assert_error_shape(status, &json), expected_code, "{body}");
    }
    // A secret-looking value in a wrongly typed field is not echoed.
    let (status, body) =
        vault.call(Method::POST, "/admin/v1/apps", Some(ADMIN_TOKEN), Some(json!({ "name": ["s3cr3t-value"] }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!body.to_string().contains("s3cr3t-value"), "{body}");

    let oversized = format!("{{\"name\": \"{}\"}}", "x".repeat(vault.settings.max_body_bytes + 1));
    let response = vault
        .http
        .post(vault.url("/admin/v1/apps"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let json: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(assert_error_shape(status, &json), "payload_too_large");

    // Nothing was created by any of the bad requests.
    let (_, apps) = vault.admin(Method::GET, "/apps", None).await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 0, "{apps}");
}

async fn bad_ids_unknown_routes_and_wrong_methods_get_json_errors(vault: TestVault) {
    let (status, body) = vault.admin(Method::GET, "/apps/not-an-id", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(assert_error_shape(status, &body), "invalid_id");

    let (status, body) = vault.admin(Method::GET, "/apps/app_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(assert_error_shape(status, &body), "not_found");

    let (status, body) = vault.call(Method::GET, "/no/such/endpoint", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(assert_error_shape(status, &body), "not_found");

    let (status, body) = vault.call(Method::PUT, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(assert_error_shape(status, &body), "method_not_allowed");

    // A page size that is not a number is the same mistake as one out of range.
    let (status, body) = vault.admin(Method::GET, "/apps?limit=lots", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(assert_error_shape(status, &body), "invalid_limit");

    let (status, body) = vault.admin(Method::GET, "/apps?colour=red", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(assert_error_shape(status, &body), "invalid_query");
}

async fn apps_and_keys_can_be_listed_paginated_and_deleted(vault: TestVault) {
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(vault.new_app(&format!("app {i}")).await);
    }
    let (status, page) = vault.admin(Method::GET, "/apps?limit=2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = vault.admin(Method::GET, &format!("/apps?limit=2&after={cursor}"), None).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], ids[2].0.as_str());
    assert!(rest["next_cursor"].is_null());

    let (status, keys) = vault.admin(Method::GET, &format!("/apps/{}/api-keys", ids[0].0), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    assert!(keys["data"][0].get("key").is_none() && keys["data"][0].get("secret_hash").is_none(), "{keys}");

    let (status, _) = vault.admin(Method::DELETE, &format!("/apps/{}", ids[0].0), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = vault.call(Method::GET, "/v1/app", Some(&ids[0].1), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a deleted app's keys stop working");
    let (status, _) = vault.call(Method::GET, "/v1/app", Some(&ids[1].1), None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn data_survives_a_restart(vault: TestVault) {
    let (app_id, key) = vault.new_app("durable").await;
    let vault = vault.restart().await;
    let (status, body) = vault.call(Method::GET, "/v1/app", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], app_id.as_str());
    assert_eq!(body["name"], "durable");
}

async fn readiness_fails_when_the_database_is_unreachable(vault: TestVault) {
    // Liveness and readiness differ: the process is up, but without its database it is not ready.
    vault.vault.store().close().await;
    let response = vault.http.get(vault.url("/readyz")).send().await.unwrap();
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(assert_error_shape(status, &body), "not_ready");
    let response = vault.http.get(vault.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The OpenAPI document is served without credentials, and what it says about security holds:
/// every operation it marks as authenticated refuses a call without credentials (which also shows
/// the route exists: an unknown route would be 404, a wrong method 405).
async fn openapi_document_is_served(vault: TestVault) {
    let response = vault.http.get(vault.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: serde_json::Value = response.json().await.expect("the document parses as JSON");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", document["openapi"]);

    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/v1/grants/{id}/token") && paths.contains_key("/admin/v1/apps"));
    for (path, item) in paths {
        let concrete = path.replace("{path}", "some/path").replace(['{', '}'], "");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // `{}` among the requirements makes authentication optional (`GET /metrics`).
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
            if !secured {
                continue;
            }
            let (status, body) = vault.call(method.clone(), &concrete, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {concrete}: {body}");
            assert_eq!(assert_error_shape(status, &body), "missing_credentials", "{method} {concrete}");
        }
    }
}
