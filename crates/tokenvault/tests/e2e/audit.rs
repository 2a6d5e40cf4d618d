//! The audit log: what its rows carry (actor, request id, end user, provider, policy decisions),
//! every filter of `GET /v1/audit`, cursor pagination, the JSON-lines export, retention, and no
//! row lost on a clean shutdown.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::ADMIN_TOKEN;

connect_tests!(
    configuration_changes_carry_actor_and_request_id,
    policy_decisions_are_recorded_with_end_user_and_provider,
);

const ACTOR: [(&str, &str); 2] = [("x-actor-type", "service"), ("x-actor-id", "deploy-bot")];

/// A call with the app key (or `bearer`), the declared actor and a chosen request id.
async fn call_as(
    env: &ConnectEnv,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut request = env
        .vault
        .http
        .request(method, env.vault.url(path))
        .bearer_auth(bearer.unwrap_or(&env.key))
        .header("x-request-id", request_id);
    for (name, value) in ACTOR {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The app's audit rows matching `query` (one page of up to 1000).
pub async fn audit_rows(env: &ConnectEnv, query: &str) -> Vec<Value> {
    let (status, page) = env.api(Method::GET, &format!("/v1/audit?limit=1000&{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn proxy_as(env: &ConnectEnv, method: Method, grant_id: &str, path: &str) -> StatusCode {
    let mut request =
        env.vault.http.request(method, env.vault.url(&format!("/v1/proxy/{grant_id}{path}"))).bearer_auth(&env.key);
    for (name, value) in ACTOR {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status()
}

async fn configuration_changes_carry_actor_and_request_id(env: ConnectEnv) {
    let config = env.configure_zoom().await;
    let config_id = config["id"].as_str().unwrap();
    let evil = env.fakes.urls().evil.clone();
    let zoom = json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1" });
    let (status, body) =
        call_as(&env, Method::PUT, &format!("/v1/provider-configs/{config_id}"), None, Some(zoom), "req-pc-update")
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, policy) = call_as(
        &env,
        Method::POST,
        "/v1/policies",
        None,
        Some(json!({ "target_type": "app", "rules": {} })),
        "req-pol-create",
    )
    .await;
    let policy_id = policy["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/policies/{policy_id}"), None, None, "req-pol-delete").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let secret = json!({ "name": "partner", "style": "bearer", "secret": "ms-audit-1", "base_urls": [evil] });
    let (_, managed) =
        call_as(&env, Method::POST, "/v1/managed-secrets", None, Some(secret.clone()), "req-ms-create").await;
    let managed_id = managed["id"].as_str().unwrap();
    let path = format!("/v1/managed-secrets/{managed_id}");
    let (status, _) = call_as(&env, Method::PUT, &path, None, Some(secret), "req-ms-replace").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call_as(&env, Method::DELETE, &path, None, None, "req-ms-delete").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, endpoint) = call_as(
        &env,
        Method::POST,
        "/v1/webhook-endpoints",
        None,
        Some(json!({ "url": "https://hooks.example.com/vault" })),
        "req-wh-create",
    )
    .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/webhook-endpoints/{endpoint_id}"), None, None, "req-wh-delete")
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        call_as(&env, Method::PATCH, "/v1/app", None, Some(json!({ "name": "acme renamed" })), "req-app-update").await;
    assert_eq!(status, StatusCode::OK);
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let (status, key) = call_as(
        &env,
        Method::POST,
        &format!("/admin/v1/apps/{app_id}/api-keys"),
        Some(ADMIN_TOKEN),
        Some(json!({ "name": "second" })),
        "req-key-create",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key_id = key["id"].as_str().unwrap();
    let (status, _) =
        call_as(&env, Method::DELETE, &format!("/v1/api-keys/{key_id}"), None, None, "req-key-revoke").await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let rows = audit_rows(&env, "").await;
    for (action, request_id, object) in [
        ("provider_config.updated", "req-pc-update", config_id),
        ("policy.created", "req-pol-create", policy_id),
        ("policy.deleted", "req-pol-delete", policy_id),
        ("managed_secret.created", "req-ms-create", managed_id),
        ("managed_secret.replaced", "req-ms-replace", managed_id),
        ("managed_secret.deleted", "req-ms-delete", managed_id),
        ("webhook_endpoint.created", "req-wh-create", endpoint_id),
        ("webhook_endpoint.deleted", "req-wh-delete", endpoint_id),
        ("app.updated", "req-app-update", app_id.as_str()),
        ("api_key.created", "req-key-create", key_id),
        ("api_key.revoked", "req-key-revoke", key_id),
    ] {
        let row = rows
            .iter()
            .find(|r| r["action"] == action && r["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no {action} row with request id {request_id} in {rows:?}"));
        assert_eq!(row["actor"]["type"], "service", "{row}");
        assert_eq!(row["actor"]["id"], "deploy-bot", "{row}");
        assert_eq!(row["outcome"], "success", "{row}");
        assert_eq!(row["detail"], object, "the row names what changed: {row}");
    }
    // A change made without declaring an actor still has its request id.
    let created = rows.iter().find(|r| r["action"] == "provider_config.created").unwrap();
    assert!(created["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{created}");
    assert!(created["actor"].is_null(), "{created}");
}

async fn policy_decisions_are_recorded_with_end_user_and_provider(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-9", "zoom").await;
    let token_path = format!("/v1/grants/{grant_id}/token");
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-1").await;
    assert_eq!(status, StatusCode::OK);
    let (_, policy) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "grant", "target_id": grant_id, "rules": { "methods": ["GET"] } })),
        )
        .await;
    let policy_id = policy["id"].as_str().unwrap();
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxy_as(&env, Method::GET, &grant_id, "/v2/echo/x").await, StatusCode::OK);
    assert_eq!(proxy_as(&env, Method::DELETE, &grant_id, "/v2/echo/x").await, StatusCode::FORBIDDEN);

    // Allowed decisions are on the access's own row, not a row of their own.
    let retrievals = audit_rows(&env, "action=token.retrieved").await;
    let by_request = |id: &str| retrievals.iter().find(|r| r["request_id"] == id).unwrap().clone();
    assert_eq!(by_request("req-token-1")["detail"], "no policy applies");
    assert_eq!(by_request("req-token-2")["detail"], format!("allowed by policies {policy_id}"));
    let proxied = audit_rows(&env, "action=proxy.request").await;
    assert_eq!(proxied.len(), 1, "the denied call never reached the provider: {proxied:?}");
    assert_eq!(proxied[0]["detail"], format!("allowed by policies {policy_id}"));
    let decisions = audit_rows(&env, "action=policy.decision").await;
    assert_eq!(decisions.len(), 1, "only the denial has a row: {decisions:?}");
    let denied = &decisions[0];
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["grant_id"], grant_id.as_str());
    assert_eq!(denied["end_user_id"], "user-9");
    assert_eq!(denied["provider"], "zoom");
    assert_eq!(denied["method"], "DELETE");
    assert_eq!(denied["actor"]["id"], "deploy-bot");
    assert!(denied["request_id"].is_string());
    assert!(denied["detail"].as_str().unwrap().contains(policy_id) && denied["detail"].as_str().unwrap().contains("methods"));

    // A denied token retrieval: the denial row and the retrieval row, both attributed.
    env.api(
        Method::POST,
        "/v1/policies",
        Some(json!({ "target_type": "app", "rules": { "token_retrieval": false } })),
    )
    .await;
    let (status, _) = call_as(&env, Method::POST, &token_path, None, None, "req-token-3").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = audit_rows(&env, "").await;
    for action in ["policy.decision", "token.retrieved"] {
        let row = rows.iter().find(|r| r["action"] == action && r["request_id"] == "req-token-3").unwrap();
        assert_eq!(row["outcome"], "denied", "{row}");
        assert_eq!(row["end_user_id"], "user-9", "{row}");
        assert_eq!(row["provider"], "zoom", "{row}");
        assert!(row["detail"].as_str().unwrap().contains("token_retrieval"), "{row}");
    }
}
