//! Cache coherence across instances: two vaults on one PostgreSQL database, each serving token
//! fetches from memory; a change made through one takes effect on the other within the stated
//! bound (`STALENESS_BOUND`, 1 s), never later. Each test first proves the second instance
//! really serves from its cache (its hit counter moves), so a pass is not a cache that is off.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_service::STALENESS_BOUND;
use tokenvault_testkit::Backend;

use crate::connect_env::ConnectEnv;
use crate::support::TestVault;

/// The bound, plus what one HTTP round trip on a busy 2-core machine may add.
fn deadline() -> Instant {
    Instant::now() + STALENESS_BOUND + Duration::from_millis(1500)
}

async fn token(vault: &TestVault, key: &str, grant_id: &str) -> (StatusCode, Value) {
    let response =
        vault.http.post(vault.url(&format!("/v1/grants/{grant_id}/token"))).bearer_auth(key).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `tokenvault_cache_lookups_total{cache=…,result="hit"}` of an instance.
async fn cache_hits(vault: &TestVault, cache: &str) -> u64 {
    let text = vault.http.get(vault.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let wanted = format!("tokenvault_cache_lookups_total{{cache=\"{cache}\",result=\"hit\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&wanted)).map_or(0, |n| n.trim().parse().unwrap())
}

/// Polls `fetch` until `done` holds or the deadline passes; returns how long it took.
async fn within_bound<F, Fut>(what: &str, mut fetch: F, done: impl Fn(&(StatusCode, Value)) -> bool) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)>,
{
    let started = Instant::now();
    let deadline = deadline();
    loop {
        let answer = fetch().await;
        if done(&answer) {
            return started.elapsed();
        }
        assert!(Instant::now() < deadline, "{what}: still {} {} after the bound", answer.0, answer.1);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_instances() -> Option<(ConnectEnv, TestVault, String)> {
    let env = ConnectEnv::start(Backend::Postgres).await?;
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let second = env.vault.another_instance().await;
    Some((env, second, grant_id))
}

/// B serves the grant from memory (proved by its hit counters: its caches fill once it has read
/// the change feed for the first time), then A changes something.
async fn warm(second: &TestVault, key: &str, grant_id: &str) -> String {
    let before = (cache_hits(second, "grants").await, cache_hits(second, "api_keys").await);
    let deadline = deadline();
    loop {
        let (status, body) = token(second, key, grant_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after = (cache_hits(second, "grants").await, cache_hits(second, "api_keys").await);
        if after.0 > before.0 && after.1 > before.1 {
            return body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "B does not serve from its caches: {before:?} -> {after:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other_within_the_bound() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    warm(&second, &env.key, &grant_id).await;
    let key_id = format!("key_{}", &env.key[4..36]);
    let (status, body) = env.api(Method::DELETE, &format!("/v1/api-keys/{key_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // At once on the instance that made the change.
    assert_eq!(token(&env.vault, &env.key, &grant_id).await.0, StatusCode::UNAUTHORIZED);
    let took = within_bound(
        "revoked key on B",
        || token(&second, &env.key, &grant_id),
        |(s, _)| *s == StatusCode::UNAUTHORIZED,
    )
    .await;
    eprintln!("revoked key refused by the other instance after {took:?}");
}

#[tokio::test]
async fn a_grant_revoked_on_one_instance_is_refused_by_the_other_within_the_bound() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    warm(&second, &env.key, &grant_id).await;
    let (status, body) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert!(status.is_success(), "{status} {body}");
    assert_ne!(token(&env.vault, &env.key, &grant_id).await.0, StatusCode::OK);
    let took =
        within_bound("revoked grant on B", || token(&second, &env.key, &grant_id), |(s, _)| *s != StatusCode::OK).await;
    eprintln!("revoked grant refused by the other instance after {took:?}");
    let (_, body) = token(&second, &env.key, &grant_id).await;
    assert_eq!(body["code"], "grant_revoked", "{body}");
}

#[tokio::test]
async fn a_denying_policy_made_on_one_instance_holds_on_the_other_within_the_bound() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    warm(&second, &env.key, &grant_id).await;
    let rules = json!({ "token_retrieval": false });
    let body = json!({ "target_type": "grant", "target_id": grant_id, "rules": rules });
    let (status, created) = env.api(Method::POST, "/v1/policies", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(token(&env.vault, &env.key, &grant_id).await.0, StatusCode::FORBIDDEN);
    let took = within_bound(
        "denying policy on B",
        || token(&second, &env.key, &grant_id),
        |(s, _)| *s == StatusCode::FORBIDDEN,
    )
    .await;
    eprintln!("denying policy enforced by the other instance after {took:?}");
}

/// A refresh made by A is what B serves next (within the bound), and never the old token after.
#[tokio::test]
async fn a_refresh_on_one_instance_is_what_the_other_serves() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    let old = warm(&second, &env.key, &grant_id).await;
    // Only A's clock moves: A sees the token expiring and refreshes; B would not by itself.
    env.vault.clock.advance(Duration::from_secs(3590));
    let (status, fresh) = token(&env.vault, &env.key, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let new = fresh["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "A refreshed");
    within_bound(
        "B serves A's refresh",
        || token(&second, &env.key, &grant_id),
        |(_, body)| body["access_token"] == new.as_str(),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(token(&second, &env.key, &grant_id).await.1["access_token"], new.as_str());
    }
}

/// Two key rotations on A (the second erases the data key the first retired): B, which had the
/// grant in memory sealed under the first key, still opens what it serves, and serves the same token.
#[tokio::test]
async fn key_rotations_on_one_instance_never_leave_the_other_with_stale_sealed_values() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    let before = warm(&second, &env.key, &grant_id).await;
    env.vault.vault.rotate_keys().await.unwrap();
    env.vault.vault.rotate_keys().await.unwrap();
    let (status, body) = token(&second, &env.key, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], before.as_str());
}

/// An agent suspended, and a delegation revoked, on instance A: instance B, which was serving
/// the agent's proxied calls from memory (its agent and delegation caches hit), refuses within
/// the bound.
#[tokio::test]
async fn a_suspended_agent_and_a_revoked_delegation_are_refused_by_the_other_instance_within_the_bound() {
    let Some((env, second, grant_id)) = two_instances().await else { return };
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "roaming" }))).await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let (_, minted) = env.api(Method::POST, &format!("/v1/agents/{agent_id}/keys"), Some(json!({}))).await;
    let agent_key = minted["key"].as_str().unwrap().to_owned();
    let (_, delegation) = env
        .api(Method::POST, &format!("/v1/agents/{agent_id}/delegations"), Some(json!({ "grant_id": grant_id })))
        .await;
    let proxied = |vault: &TestVault| {
        let request = vault.http.get(vault.url(&format!("/v1/proxy/{grant_id}/v2/users/me"))).bearer_auth(&agent_key);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json().await.unwrap_or(Value::Null))
        }
    };
    // B serves the agent from memory.
    let before = (cache_hits(&second, "agents").await, cache_hits(&second, "delegations").await);
    let deadline = deadline();
    loop {
        let (status, body) = proxied(&second).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after = (cache_hits(&second, "agents").await, cache_hits(&second, "delegations").await);
        if after.0 > before.0 && after.1 > before.1 {
            break;
        }
        assert!(Instant::now() < deadline, "B does not serve the agent from its caches");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) =
        env.api(Method::PATCH, &format!("/v1/agents/{agent_id}"), Some(json!({ "status": "suspended" }))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(proxied(&env.vault).await.0, StatusCode::FORBIDDEN, "at once on A");
    let took = within_bound(
        "suspended agent on B",
        || proxied(&second),
        |(s, b)| *s == StatusCode::FORBIDDEN && b["code"] == "agent_suspended",
    )
    .await;
    eprintln!("suspended agent refused by the other instance after {took:?}");
    let (status, _) =
        env.api(Method::PATCH, &format!("/v1/agents/{agent_id}"), Some(json!({ "status": "active" }))).await;
    assert_eq!(status, StatusCode::OK);
    within_bound("reactivated agent on B", || proxied(&second), |(s, _)| *s == StatusCode::OK).await;
    let path = format!("/v1/delegations/{}", delegation["id"].as_str().unwrap());
    assert_eq!(env.api(Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(proxied(&env.vault).await.0, StatusCode::NOT_FOUND, "at once on A");
    let took = within_bound("revoked delegation on B", || proxied(&second), |(s, _)| *s == StatusCode::NOT_FOUND).await;
    eprintln!("revoked delegation refused by the other instance after {took:?}");
}
