//! Policies matching the declared actor id (`actor_ids`), alone and with `actor_types`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(actor_ids_allow_only_the_listed_actors, actor_ids_must_be_a_non_empty_list_of_ids);

/// Proxies a GET and retrieves the token as the given actor; returns both statuses and the
/// proxy's denial message, if any.
async fn access_as(env: &ConnectEnv, grant_id: &str, actor: &[(&str, &str)]) -> (StatusCode, StatusCode, String) {
    let mut proxied =
        env.vault.http.get(env.vault.url(&format!("/v1/proxy/{grant_id}/v2/echo/x"))).bearer_auth(&env.key);
    let mut token = env.vault.http.post(env.vault.url(&format!("/v1/grants/{grant_id}/token"))).bearer_auth(&env.key);
    for (name, value) in actor {
        proxied = proxied.header(*name, *value);
        token = token.header(*name, *value);
    }
    let proxied = proxied.send().await.unwrap();
    let proxy_status = proxied.status();
    let body: serde_json::Value = proxied.json().await.unwrap_or_default();
    let token_status = token.send().await.unwrap().status();
    (proxy_status, token_status, body["message"].as_str().unwrap_or_default().to_owned())
}

async fn actor_ids_allow_only_the_listed_actors(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (status, policy) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "grant", "target_id": grant_id,
                         "rules": { "actor_ids": ["billing-job", "report-job"] } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    assert_eq!(policy["rules"]["actor_ids"], json!(["billing-job", "report-job"]));
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    for allowed in ["billing-job", "report-job"] {
        let (proxied, token, _) = access_as(&env, &grant_id, &[("x-actor-id", allowed)]).await;
        assert_eq!((proxied, token), (StatusCode::OK, StatusCode::OK), "{allowed}");
    }
    let denied: [&[(&str, &str)]; 4] =
        [&[], &[("x-actor-type", "service")], &[("x-actor-id", "other-job")], &[("x-actor-id", "Billing-Job")]];
    for actor in denied {
        let (proxied, token, message) = access_as(&env, &grant_id, actor).await;
        assert_eq!((proxied, token), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN), "{actor:?}");
        assert_eq!(message, format!("denied by policy {policy_id} (rule `actor_ids`)"), "{actor:?}");
    }
    // With `actor_types` too, both must match.
    env.api(Method::DELETE, &format!("/v1/policies/{policy_id}"), None).await;
    env.api(
        Method::POST,
        "/v1/policies",
        Some(json!({ "target_type": "app", "rules": { "actor_types": ["service"], "actor_ids": ["billing-job"] } })),
    )
    .await;
    let (proxied, _, message) =
        access_as(&env, &grant_id, &[("x-actor-type", "ai_agent"), ("x-actor-id", "billing-job")]).await;
    assert_eq!(proxied, StatusCode::FORBIDDEN);
    assert!(message.contains("actor_types"), "{message}");
    let (proxied, _, message) =
        access_as(&env, &grant_id, &[("x-actor-type", "service"), ("x-actor-id", "report-job")]).await;
    assert_eq!(proxied, StatusCode::FORBIDDEN);
    assert!(message.contains("actor_ids"), "{message}");
    let (proxied, token, _) =
        access_as(&env, &grant_id, &[("x-actor-type", "service"), ("x-actor-id", "billing-job")]).await;
    assert_eq!((proxied, token), (StatusCode::OK, StatusCode::OK));
}

async fn actor_ids_must_be_a_non_empty_list_of_ids(env: ConnectEnv) {
    for rules in [json!({ "actor_ids": [] }), json!({ "actor_ids": [""] }), json!({ "actor_ids": ["x".repeat(129)] })] {
        let (status, body) =
            env.api(Method::POST, "/v1/policies", Some(json!({ "target_type": "app", "rules": rules }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rules}: {body}");
        assert_eq!(assert_error_shape(status, &body), "invalid_policy");
    }
}
