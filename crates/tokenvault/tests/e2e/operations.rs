//! Issue 9: running the vault as an operator does. Behind a reverse proxy, IP-allowlist
//! policies judge the client the trusted proxy names, never an address a client claims itself;
//! several instances sharing PostgreSQL share each rate-limit policy's bucket.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_testkit::Backend;

use crate::connect_env::ConnectEnv;
use crate::support::{TestVault, assert_error_shape};

async fn policy(env: &ConnectEnv, grant_id: &str, rules: Value) {
    let body = json!({ "target_type": "grant", "target_id": grant_id, "rules": rules });
    let (status, created) = env.api(Method::POST, "/v1/policies", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

async fn token_from(vault: &TestVault, key: &str, grant_id: &str, forwarded_for: Option<&str>) -> (StatusCode, Value) {
    let mut request = vault.http.post(vault.url(&format!("/v1/grants/{grant_id}/token"))).bearer_auth(key);
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

mod behind_a_trusted_proxy {
    use super::*;

    async fn run(backend: Backend) {
        // The test client connects from loopback: that is "the reverse proxy".
        let env = ConnectEnv::start_adjusted(backend, None, |s| {
            s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        })
        .await;
        let Some(env) = env else { return };
        env.configure_zoom().await;
        let grant_id = env.connect_ok("user-1", "zoom").await;
        policy(&env, &grant_id, json!({ "ip_allowlist": ["203.0.113.0/24"] })).await;
        let token = |xff: Option<&'static str>| token_from(&env.vault, &env.key, &grant_id, xff);
        assert_eq!(token(Some("203.0.113.7")).await.0, StatusCode::OK, "the client the proxy names");
        let (status, body) = token(Some("198.51.100.1")).await;
        assert_eq!((status, assert_error_shape(status, &body).as_str()), (StatusCode::FORBIDDEN, "policy_denied"));
        // A client that sends its own header: the proxy appends the real address, which counts.
        assert_eq!(token(Some("203.0.113.7, 198.51.100.1")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(token(Some("198.51.100.1, 203.0.113.9")).await.0, StatusCode::OK);
        // No header: the proxy itself is the client (loopback, not allowed).
        assert_eq!(token(None).await.0, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await
    }
}

async fn forwarded_for_is_ignored_without_a_trusted_proxy(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    policy(&env, &grant_id, json!({ "ip_allowlist": ["203.0.113.0/24"] })).await;
    let (status, body) = token_from(&env.vault, &env.key, &grant_id, Some("203.0.113.7")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a client cannot claim an address: {body}");
}

crate::connect_tests!(forwarded_for_is_ignored_without_a_trusted_proxy);

/// Two instances on one PostgreSQL database: a policy of 5 requests an hour allows 5 in all,
/// not 5 per instance; both refuse the sixth with 429 and `Retry-After`.
#[tokio::test]
async fn a_rate_limit_is_shared_by_instances_on_one_postgresql() {
    let Some(env) = ConnectEnv::start(Backend::Postgres).await else { return };
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    policy(&env, &grant_id, json!({ "rate_limit": { "requests": 5, "per_seconds": 3600 } })).await;
    let second = env.vault.another_instance().await;
    let mut allowed = 0;
    for i in 0..12 {
        let vault = if i % 2 == 0 { &env.vault } else { &second };
        let response = vault
            .http
            .post(vault.url(&format!("/v1/grants/{grant_id}/token")))
            .bearer_auth(&env.key)
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => assert!(response.headers().contains_key("retry-after")),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(allowed, 5, "the instances share one bucket");
}
