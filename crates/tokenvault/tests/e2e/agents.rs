//! Issue 11: scoped, expiring, rotatable keys; agents with keys of their own; delegations of
//! grants to agents; per-agent policies. Every attack of the issue is its own case, and the
//! scope check of every endpoint is generated from the OpenAPI document (which a unit test keeps
//! equal to the route table), so no endpoint can be forgotten.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    every_endpoint_refuses_a_key_without_its_scope_and_admits_one_with_it,
    expired_rotated_revoked_and_orphaned_keys_are_refused_at_once,
    a_key_outside_its_cidrs_or_over_its_rate_limit_is_refused,
    no_key_can_give_out_more_than_it_holds,
    an_agent_key_reaches_only_what_is_delegated_to_it,
    a_proxy_only_delegation_never_hands_out_the_token,
    a_suspended_agent_is_refused_at_once_and_a_revoked_one_for_good,
    delegations_cross_no_app_boundary,
    per_agent_policies_combine_with_the_grants_and_are_audited,
    a_connect_session_can_delegate_the_new_grant_to_an_agent,
    the_audit_log_records_the_verified_agent,
    a_managed_secret_can_be_delegated_like_a_grant,
);

/// Calls the vault with `key`.
async fn call(env: &ConnectEnv, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    env.vault.call(method, path, Some(key), body).await
}

/// Mints a key of the env's app with these scopes (and any other settings) through the admin API.
async fn mint(env: &ConnectEnv, body: Value) -> (String, Value) {
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let (status, minted) = env.vault.admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    (minted["key"].as_str().unwrap().to_owned(), minted)
}

async fn scoped(env: &ConnectEnv, scopes: &[&str]) -> String {
    mint(env, json!({ "name": "scoped", "scopes": scopes })).await.0
}

async fn new_agent(env: &ConnectEnv, name: &str) -> String {
    let (status, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": name }))).await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    assert_eq!(agent["status"], "active");
    agent["id"].as_str().unwrap().to_owned()
}

async fn agent_key(env: &ConnectEnv, agent_id: &str, body: Value) -> String {
    let (status, minted) = env.api(Method::POST, &format!("/v1/agents/{agent_id}/keys"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    assert_eq!(minted["agent_id"], agent_id);
    minted["key"].as_str().unwrap().to_owned()
}

async fn delegate(env: &ConnectEnv, agent_id: &str, body: Value) -> Value {
    let (status, delegation) = env.api(Method::POST, &format!("/v1/agents/{agent_id}/delegations"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{delegation}");
    delegation
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or_default()
}

/// Every operation the document lists with the app key scheme, called with a key that lacks its
/// scope: `403 insufficient_scope` naming both sides; with a key holding exactly that scope:
/// anything but `insufficient_scope`.
async fn every_endpoint_refuses_a_key_without_its_scope_and_admits_one_with_it(env: ConnectEnv) {
    env.configure_zoom().await;
    let document: Value =
        env.vault.http.get(env.vault.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(required) = operation["x-required-scope"].as_str() else { continue };
            if operation["security"][0].get("appApiKey").is_none() {
                continue;
            }
            let concrete = path
                .replace("{id}", "grt_00000000000000000000000000000000")
                .replace("{grant_id}", "grt_00000000000000000000000000000000")
                .replace("{key_id}", "key_00000000000000000000000000000000")
                .replace("{agent_id}", "agt_00000000000000000000000000000000")
                .replace("{path}", "v2/users/me");
            let method: Method = method.to_uppercase().parse().unwrap();
            if required == "(any valid key)" {
                continue;
            }
            // A key with one scope that does not cover the operation's.
            let other = if required == "audit:read" { "app:read" } else { "audit:read" };
            let lacking = scoped(&env, &[other]).await;
            let (status, body) = call(&env, &lacking, method.clone(), &concrete, Some(json!({}))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with `{other}`: {body}");
            assert_eq!(code(&body), "insufficient_scope", "{method} {path}");
            assert_error_shape(status, &body);
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(required) && message.contains(other), "{method} {path}: {message}");
            let holding = scoped(&env, &[required]).await;
            let (status, body) = call(&env, &holding, method.clone(), &concrete, Some(json!({}))).await;
            assert_ne!(code(&body), "insufficient_scope", "{method} {path} with `{required}`: {status} {body}");
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations were checked");
    // A wildcard level covers reads everywhere, but never an action.
    let reader = scoped(&env, &["*:read"]).await;
    assert_eq!(call(&env, &reader, Method::GET, "/v1/grants", None).await.0, StatusCode::OK);
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (status, body) = call(&env, &reader, Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{body}");
    let admin = scoped(&env, &["*:admin"]).await;
    let (status, body) = call(&env, &admin, Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{body}");
    // Keys minted before scopes existed, like `*`, keep full access.
    let (status, _) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn expired_rotated_revoked_and_orphaned_keys_are_refused_at_once(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let grants = "/v1/grants";
    // Expiry.
    let (short, minted) = mint(&env, json!({ "scopes": ["grants:read"], "expires_in": 60 })).await;
    assert!(minted["expires_at"].is_string(), "{minted}");
    assert_eq!(call(&env, &short, Method::GET, grants, None).await.0, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(61));
    let (status, body) = call(&env, &short, Method::GET, grants, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"), "{body}");

    // A derived key dies with its parent, at once.
    let (parent, minted) = mint(&env, json!({ "scopes": ["grants:read", "proxy:execute"] })).await;
    let parent_id = minted["id"].as_str().unwrap().to_owned();
    let (status, child) =
        call(&env, &parent, Method::POST, "/v1/api-keys/derive", Some(json!({ "scopes": ["proxy:execute"] }))).await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(child["parent_id"], parent_id.as_str());
    assert!(child["expires_at"].is_string(), "a derived key is short-lived by default: {child}");
    let child = child["key"].as_str().unwrap().to_owned();
    let proxied = format!("/v1/proxy/{grant_id}/v2/users/me");
    assert_eq!(call(&env, &child, Method::GET, &proxied, None).await.0, StatusCode::OK);
    let (status, body) = call(&env, &child, Method::GET, grants, None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "insufficient_scope"), "{body}");
    let (status, _) = env.api(Method::DELETE, &format!("/v1/api-keys/{parent_id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&env, &child, Method::GET, &proxied, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"), "{body}");
    // A derived key that outlives its window stops too.
    let (parent, _) = mint(&env, json!({ "scopes": ["grants:read"] })).await;
    let (_, child) = call(&env, &parent, Method::POST, "/v1/api-keys/derive", Some(json!({ "expires_in": 30 }))).await;
    let child = child["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&env, &child, Method::GET, grants, None).await.0, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(31));
    assert_eq!(call(&env, &child, Method::GET, grants, None).await.0, StatusCode::UNAUTHORIZED);

    // Rotation with a grace period: both work, then only the new one.
    let (old, minted) = mint(&env, json!({ "scopes": ["grants:read", "keys:admin"] })).await;
    let old_id = minted["id"].as_str().unwrap().to_owned();
    let (status, rotated) = call(
        &env,
        &old,
        Method::POST,
        &format!("/v1/api-keys/{old_id}/rotate"),
        Some(json!({ "grace_seconds": 3600 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["scopes"], json!(["grants:read", "keys:admin"]));
    assert_eq!(call(&env, &old, Method::GET, grants, None).await.0, StatusCode::OK, "the old key works in the grace");
    assert_eq!(call(&env, &new, Method::GET, grants, None).await.0, StatusCode::OK);
    let (status, body) =
        call(&env, &old, Method::POST, &format!("/v1/api-keys/{old_id}/rotate"), Some(json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "rotation_not_allowed"), "rotated twice: {body}");
    let (status, body) = call(
        &env,
        &new,
        Method::POST,
        &format!("/v1/api-keys/{old_id}/rotate"),
        Some(json!({ "grace_seconds": 31 * 86400 })),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_grace"), "{body}");
    env.vault.clock.advance(Duration::from_secs(3601));
    assert_eq!(call(&env, &old, Method::GET, grants, None).await.0, StatusCode::UNAUTHORIZED, "past the grace");
    assert_eq!(call(&env, &new, Method::GET, grants, None).await.0, StatusCode::OK);
    let (_, listed) = call(&env, &new, Method::GET, "/v1/api-keys", None).await;
    let old_row = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == old_id.as_str()).unwrap().clone();
    assert_eq!(old_row["replaced_by"], rotated["id"]);

    // The default grace is 7 days.
    let (seven, minted) = mint(&env, json!({ "scopes": ["grants:read"] })).await;
    let seven_id = minted["id"].as_str().unwrap();
    let (status, _) = call(&env, &new, Method::POST, &format!("/v1/api-keys/{seven_id}/rotate"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED);
    env.vault.clock.advance(Duration::from_secs(7 * 86400 - 60));
    assert_eq!(call(&env, &seven, Method::GET, grants, None).await.0, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(120));
    assert_eq!(call(&env, &seven, Method::GET, grants, None).await.0, StatusCode::UNAUTHORIZED);

    // Revoked: at once.
    let (revoked, minted) = mint(&env, json!({ "scopes": ["grants:read"] })).await;
    let (status, _) =
        call(&env, &new, Method::DELETE, &format!("/v1/api-keys/{}", minted["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(call(&env, &revoked, Method::GET, grants, None).await.0, StatusCode::UNAUTHORIZED);
}

async fn a_key_outside_its_cidrs_or_over_its_rate_limit_is_refused(env: ConnectEnv) {
    let (outside, _) = mint(&env, json!({ "scopes": ["grants:read"], "allowed_cidrs": ["203.0.113.0/24"] })).await;
    let (status, body) = call(&env, &outside, Method::GET, "/v1/grants", None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "ip_not_allowed"), "{body}");
    assert_error_shape(status, &body);
    let (inside, minted) =
        mint(&env, json!({ "scopes": ["grants:read"], "allowed_cidrs": ["127.0.0.1", "::1/128"] })).await;
    assert_eq!(minted["allowed_cidrs"], json!(["127.0.0.1/32", "::1/128"]));
    assert_eq!(call(&env, &inside, Method::GET, "/v1/grants", None).await.0, StatusCode::OK);
    let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
    let bad = json!({ "scopes": ["grants:read"], "allowed_cidrs": ["not-a-cidr"] });
    let (status, body) = env.vault.admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(bad)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_cidr"), "{body}");

    let (limited, _) =
        mint(&env, json!({ "scopes": ["grants:read"], "rate_limit": { "requests": 3, "per_seconds": 60 } })).await;
    for _ in 0..3 {
        assert_eq!(call(&env, &limited, Method::GET, "/v1/grants", None).await.0, StatusCode::OK);
    }
    let response = env.vault.http.get(env.vault.url("/v1/grants")).bearer_auth(&limited).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // A derived key shares its parent's bucket rather than adding its own.
    let (status, body) = call(&env, &limited, Method::POST, "/v1/api-keys/derive", Some(json!({}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    env.vault.clock.advance(Duration::from_secs(20));
    let (status, child) = call(&env, &limited, Method::POST, "/v1/api-keys/derive", Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    let child = child["key"].as_str().unwrap().to_owned();
    assert_eq!(call(&env, &child, Method::GET, "/v1/grants", None).await.0, StatusCode::TOO_MANY_REQUESTS);
}

async fn no_key_can_give_out_more_than_it_holds(env: ConnectEnv) {
    let (parent, _) = mint(
        &env,
        json!({ "scopes": ["grants:read", "keys:admin"], "expires_in": 3600, "allowed_cidrs": ["127.0.0.0/8"] }),
    )
    .await;
    let derive = |body: Value| {
        let env = &env;
        let parent = parent.clone();
        async move { call(env, &parent, Method::POST, "/v1/api-keys/derive", Some(body)).await }
    };
    for (body, why) in [
        (json!({ "scopes": ["grants:write"] }), "more scopes"),
        (json!({ "scopes": ["tokens:retrieve"] }), "an action"),
        (json!({ "scopes": ["*"] }), "full access"),
        (json!({ "expires_in": 7200 }), "a longer life"),
        (json!({ "allowed_cidrs": ["0.0.0.0/0"] }), "wider addresses"),
        (json!({ "allowed_cidrs": ["127.0.0.0/7"] }), "a wider range"),
    ] {
        let (status, body) = derive(body).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "{why}: {body}");
    }
    let (status, body) = derive(json!({ "scopes": ["grants:read"], "allowed_cidrs": ["127.0.0.1/32"] })).await;
    assert_eq!(status, StatusCode::CREATED, "a narrower child is fine: {body}");
    let child = body["key"].as_str().unwrap().to_owned();
    let (status, body) = call(&env, &child, Method::POST, "/v1/api-keys/derive", Some(json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "no grandchildren: {body}");
    // Minting and rotating through a key are bounded the same way.
    let (status, body) =
        call(&env, &parent, Method::POST, "/v1/api-keys", Some(json!({ "scopes": ["grants:admin"] }))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "{body}");
    let (status, body) =
        call(&env, &parent, Method::POST, "/v1/api-keys", Some(json!({ "scopes": ["grants:read"] }))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "no key outliving it: {body}");
    let (status, body) = call(
        &env,
        &parent,
        Method::POST,
        "/v1/api-keys",
        Some(json!({ "scopes": ["grants:read"], "expires_in": 600, "allowed_cidrs": ["127.0.0.1/32"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Rotating gives the new key the old one's settings: a key that never expires, or may be
    // used from anywhere, is beyond this parent's reach even with scopes it holds.
    for settings in [json!({ "scopes": ["grants:read"] }), json!({ "scopes": ["grants:read"], "expires_in": 600 })] {
        let (_, unbounded) = mint(&env, settings).await;
        let path = format!("/v1/api-keys/{}/rotate", unbounded["id"].as_str().unwrap());
        let (status, body) = call(&env, &parent, Method::POST, &path, Some(json!({}))).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "{body}");
    }
    let (_, wide) = mint(&env, json!({ "scopes": ["*"] })).await;
    let wide_id = wide["id"].as_str().unwrap();
    let (status, body) =
        call(&env, &parent, Method::POST, &format!("/v1/api-keys/{wide_id}/rotate"), Some(json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "scope_escalation"), "{body}");
    // Scopes must be named, and be scopes.
    for body in [json!({}), json!({ "scopes": [] }), json!({ "scopes": ["grants:delete"] })] {
        let app_id = env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
        let (status, answer) = env.vault.admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(["scopes_required", "invalid_scope"].contains(&code(&answer)), "{answer}");
    }
}

async fn an_agent_key_reaches_only_what_is_delegated_to_it(env: ConnectEnv) {
    env.configure_zoom().await;
    // The fake Zoom has one account: the later connection supersedes the earlier one, which is
    // only ever looked up here (and must stay invisible to the agent whatever its state).
    let other = env.connect_ok("user-2", "zoom").await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let agent = new_agent(&env, "assistant").await;
    let key = agent_key(&env, &agent, json!({ "scopes": ["grants:read", "proxy:execute", "tokens:retrieve"] })).await;
    // Nothing delegated yet: nothing exists for the agent.
    let (status, listed) = call(&env, &key, Method::GET, "/v1/grants", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"], json!([]));
    for (method, path) in [
        (Method::GET, format!("/v1/grants/{zoom}")),
        (Method::GET, format!("/v1/proxy/{zoom}/v2/users/me")),
        (Method::POST, format!("/v1/grants/{zoom}/token")),
    ] {
        let (status, body) = call(&env, &key, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let delegation = delegate(
        &env,
        &agent,
        json!({ "grant_id": zoom, "methods": ["GET"], "paths": ["/v2/users/**", "/v2/meetings/*"] }),
    )
    .await;
    assert_eq!(delegation["proxy_only"], true, "delegations are proxy-only by default");
    let (_, listed) = call(&env, &key, Method::GET, "/v1/grants", None).await;
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![zoom.as_str()]);
    assert_eq!(call(&env, &key, Method::GET, &format!("/v1/grants/{zoom}"), None).await.0, StatusCode::OK);
    assert_eq!(call(&env, &key, Method::GET, &format!("/v1/grants/{other}"), None).await.0, StatusCode::NOT_FOUND);
    let proxied = format!("/v1/proxy/{zoom}/v2/users/me");
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::OK);
    // Narrowed: other methods and paths are refused before the provider is called.
    let (status, body) = call(&env, &key, Method::DELETE, &format!("/v1/proxy/{zoom}/v2/meetings/1"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "delegation_denied"), "{body}");
    let (status, body) = call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/accounts/1"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "delegation_denied"), "{body}");
    // The other grant stays invisible.
    let (status, _) = call(&env, &key, Method::GET, &format!("/v1/proxy/{other}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Revoking the delegation is immediate and leaves the grant intact.
    let (status, _) =
        env.api(Method::DELETE, &format!("/v1/delegations/{}", delegation["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(env.grant(&zoom).await["status"], "active");
    let (status, _) = env.api(Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::OK, "the app still uses the grant");
    // An expired delegation ends by itself.
    delegate(&env, &agent, json!({ "grant_id": zoom, "expires_in": 60 })).await;
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::OK);
    env.vault.clock.advance(Duration::from_secs(61));
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::NOT_FOUND);
    // Agent keys hold only the scopes that use delegated grants.
    let (status, body) =
        env.api(Method::POST, &format!("/v1/agents/{agent}/keys"), Some(json!({ "scopes": ["policies:admin"] }))).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "scope_not_allowed_for_agent"), "{body}");
}

async fn a_proxy_only_delegation_never_hands_out_the_token(env: ConnectEnv) {
    env.configure_zoom().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let agent = new_agent(&env, "reader").await;
    let key = agent_key(&env, &agent, json!({ "scopes": ["tokens:retrieve", "proxy:execute"] })).await;
    let delegation = delegate(&env, &agent, json!({ "grant_id": zoom })).await;
    let (status, body) = call(&env, &key, Method::POST, &format!("/v1/grants/{zoom}/token"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "delegation_proxy_only"), "{body}");
    assert!(!body.to_string().contains("access_token"), "{body}");
    let (status, _) =
        env.api(Method::DELETE, &format!("/v1/delegations/{}", delegation["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    delegate(&env, &agent, json!({ "grant_id": zoom, "proxy_only": false })).await;
    let (status, body) = call(&env, &key, Method::POST, &format!("/v1/grants/{zoom}/token"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
}

async fn a_suspended_agent_is_refused_at_once_and_a_revoked_one_for_good(env: ConnectEnv) {
    env.configure_zoom().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let agent = new_agent(&env, "worker").await;
    let key = agent_key(&env, &agent, json!({})).await;
    delegate(&env, &agent, json!({ "grant_id": zoom })).await;
    let proxied = format!("/v1/proxy/{zoom}/v2/users/me");
    // Mid-stream: a run of calls, then the suspension lands between two of them.
    for _ in 0..3 {
        assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::OK);
    }
    let (status, body) =
        env.api(Method::PATCH, &format!("/v1/agents/{agent}"), Some(json!({ "status": "suspended" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "suspended");
    let (status, body) = call(&env, &key, Method::GET, &proxied, None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "agent_suspended"), "{body}");
    let (status, body) = call(&env, &key, Method::GET, "/v1/grants", None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "agent_suspended"), "{body}");
    let (status, _) = env.api(Method::PATCH, &format!("/v1/agents/{agent}"), Some(json!({ "status": "active" }))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::OK);
    let (status, _) = env.api(Method::DELETE, &format!("/v1/agents/{agent}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&env, &key, Method::GET, &proxied, None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"), "{body}");
    let (status, body) =
        env.api(Method::PATCH, &format!("/v1/agents/{agent}"), Some(json!({ "status": "active" }))).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "agent_revoked"), "revoked is for good: {body}");
    let (status, body) = env.api(Method::POST, &format!("/v1/agents/{agent}/keys"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

async fn delegations_cross_no_app_boundary(env: ConnectEnv) {
    env.configure_zoom().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let mine = new_agent(&env, "mine").await;
    let (other_app, other_key) = env.vault.new_app("other").await;
    let (status, theirs) =
        env.vault.call(Method::POST, "/v1/agents", Some(&other_key), Some(json!({ "name": "theirs" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs} ({other_app})");
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    // To another app's agent: not found. Another app's grant to my agent: not found.
    let (status, body) =
        env.api(Method::POST, &format!("/v1/agents/{theirs}/delegations"), Some(json!({ "grant_id": zoom }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = env
        .vault
        .call(
            Method::POST,
            &format!("/v1/agents/{theirs}/delegations"),
            Some(&other_key),
            Some(json!({ "grant_id": zoom })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for path in [format!("/v1/agents/{theirs}"), format!("/v1/agents/{theirs}/delegations")] {
        assert_eq!(env.api(Method::GET, &path, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // Another agent's delegation is not mine.
    let second = new_agent(&env, "second").await;
    delegate(&env, &second, json!({ "grant_id": zoom })).await;
    let key = agent_key(&env, &mine, json!({})).await;
    let (status, _) = call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another agent's grant");
    // An agent cannot start a session for another agent.
    let connecting = agent_key(&env, &mine, json!({ "scopes": ["connect:initiate"] })).await;
    let (status, body) = call(
        &env,
        &connecting,
        Method::POST,
        "/v1/connect-sessions",
        Some(
            json!({ "end_user_id": "u", "return_url": crate::connect_env::RETURN_URL, "delegate_to_agent_id": second }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn per_agent_policies_combine_with_the_grants_and_are_audited(env: ConnectEnv) {
    env.configure_zoom().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let agent = new_agent(&env, "careful").await;
    let key = agent_key(&env, &agent, json!({})).await;
    delegate(&env, &agent, json!({ "grant_id": zoom })).await;
    let (status, policy) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "agent", "target_id": agent, "rules": { "methods": ["GET"], "rate_limit": { "requests": 2, "per_seconds": 3600 } } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let policy_id = policy["id"].as_str().unwrap();
    let (status, _) = env
        .api(
            Method::POST,
            "/v1/policies",
            Some(json!({ "target_type": "grant", "target_id": zoom, "rules": { "paths": ["/v2/users/**"] } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(&env, &key, Method::POST, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "policy_denied"), "the agent's rule: {body}");
    assert!(body["message"].as_str().unwrap().contains(policy_id), "{body}");
    let (status, body) = call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/meetings/1"), None).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "policy_denied"), "the grant's rule: {body}");
    assert_eq!(call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await.0, StatusCode::OK);
    // The agent's rate limit is the agent's, not the app's.
    assert_eq!(env.api(Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await.0, StatusCode::OK);
    assert_eq!(call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await.0, StatusCode::OK);
    let (status, _) = call(&env, &key, Method::GET, &format!("/v1/proxy/{zoom}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    env.vault.vault.flush_audit().await;
    let (_, rows) = env.api(Method::GET, &format!("/v1/audit?agent_id={agent}"), None).await;
    let rows = rows["data"].as_array().unwrap();
    let denied = rows.iter().find(|r| r["action"] == "policy.decision").expect("the denial is audited");
    assert!(denied["detail"].as_str().unwrap().contains(policy_id), "{denied}");
    let allowed = rows.iter().find(|r| r["action"] == "proxy.request" && r["outcome"] == "success").unwrap();
    let detail = allowed["detail"].as_str().unwrap();
    assert!(detail.contains(policy_id) && detail.contains("delegated by dlg_"), "{detail}");
}

async fn a_connect_session_can_delegate_the_new_grant_to_an_agent(env: ConnectEnv) {
    env.configure_zoom().await;
    let agent = new_agent(&env, "scheduler").await;
    let (status, session) = env
        .api(
            Method::POST,
            "/v1/connect-sessions",
            Some(json!({ "end_user_id": "user-9", "return_url": crate::connect_env::RETURN_URL, "delegate_to_agent_id": agent })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (authorize, cookies) = env.open(session["connect_url"].as_str().unwrap()).await;
    let callback = env.consent(&authorize).await;
    let step = env.get(&callback, &cookies).await;
    let grant_id = crate::connect_env::query_of(step.location.as_deref().unwrap())["grant_id"].clone();
    let (_, delegations) = env.api(Method::GET, &format!("/v1/agents/{agent}/delegations"), None).await;
    let delegations = delegations["data"].as_array().unwrap();
    assert_eq!(delegations.len(), 1, "{delegations:?}");
    assert_eq!(delegations[0]["grant_id"], grant_id.as_str());
    assert_eq!(delegations[0]["proxy_only"], true);
    let key = agent_key(&env, &agent, json!({ "scopes": ["proxy:execute", "connect:initiate"] })).await;
    assert_eq!(
        call(&env, &key, Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await.0,
        StatusCode::OK
    );
    // A session the agent starts itself delegates to the agent without being asked.
    let (status, session) = call(
        &env,
        &key,
        Method::POST,
        "/v1/connect-sessions",
        Some(json!({ "end_user_id": "user-10", "return_url": crate::connect_env::RETURN_URL })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let own_session = format!("/v1/connect-sessions/{}", session["id"].as_str().unwrap());
    let (authorize, cookies) = env.open(session["connect_url"].as_str().unwrap()).await;
    let callback = env.consent(&authorize).await;
    let step = env.get(&callback, &cookies).await;
    let second = crate::connect_env::query_of(step.location.as_deref().unwrap())["grant_id"].clone();
    // The agent polls its own sessions, and no other of the app.
    let poller = agent_key(&env, &agent, json!({ "scopes": ["connect:read"] })).await;
    let (status, polled) = call(&env, &poller, Method::GET, &own_session, None).await;
    assert_eq!((status, polled["grant_id"].as_str()), (StatusCode::OK, Some(second.as_str())), "{polled}");
    let (app_session, _) = env.session("user-11", &["zoom"]).await;
    let (status, _) = call(&env, &poller, Method::GET, &format!("/v1/connect-sessions/{app_session}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the app's own session is not the agent's");
    assert_eq!(call(&env, &key, Method::GET, &format!("/v1/proxy/{second}/v2/users/me"), None).await.0, StatusCode::OK);
    // Naming an agent of nobody: not found; a suspended one: refused.
    let (status, _) = env
        .api(
            Method::POST,
            "/v1/connect-sessions",
            Some(json!({ "end_user_id": "u", "return_url": crate::connect_env::RETURN_URL, "delegate_to_agent_id": "agt_00000000000000000000000000000000" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_audit_log_records_the_verified_agent(env: ConnectEnv) {
    env.configure_zoom().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let agent = new_agent(&env, "audited").await;
    let key = agent_key(&env, &agent, json!({})).await;
    delegate(&env, &agent, json!({ "grant_id": zoom })).await;
    // The declared actor headers stay as context, never as the identity.
    let response = env
        .vault
        .http
        .get(env.vault.url(&format!("/v1/proxy/{zoom}/v2/users/me")))
        .bearer_auth(&key)
        .header("x-actor-type", "ai_agent")
        .header("x-actor-id", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    env.vault.vault.flush_audit().await;
    let (_, rows) = env.api(Method::GET, &format!("/v1/audit?agent_id={agent}&action=proxy.request"), None).await;
    let rows = rows["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["agent_id"], agent.as_str());
    assert!(rows[0]["api_key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(rows[0]["actor"]["id"], "someone-else", "declared context is kept");
    // The app's own calls carry no agent.
    let (_, rows) = env.api(Method::GET, "/v1/audit?action=delegation.created", None).await;
    assert!(rows["data"].as_array().unwrap().iter().all(|r| r["agent_id"].is_null()));
}

async fn a_managed_secret_can_be_delegated_like_a_grant(env: ConnectEnv) {
    let partner = env.fakes.urls().evil.trim_end_matches('/').to_owned();
    let secret =
        json!({ "name": "partner api", "style": "bearer", "secret": "ms-delegated-1", "base_urls": [partner] });
    let (status, created) = env.api(Method::POST, "/v1/managed-secrets", Some(secret)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let agent = new_agent(&env, "partner-caller").await;
    let key = agent_key(&env, &agent, json!({ "scopes": ["proxy:execute", "tokens:retrieve"] })).await;
    let proxied = format!("/v1/proxy/{id}/things");
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::NOT_FOUND, "not delegated yet");
    delegate(&env, &agent, json!({ "grant_id": id, "methods": ["GET"] })).await;
    assert_eq!(call(&env, &key, Method::GET, &proxied, None).await.0, StatusCode::OK);
    let seen = env.fakes.control().evil_requests().pop().expect("the partner API was called");
    assert!(seen.headers.iter().any(|(k, v)| k == "authorization" && v == "Bearer ms-delegated-1"));
    let (status, body) = call(&env, &key, Method::POST, &proxied, Some(json!({}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "delegation_denied"), "{body}");
    let (_, listed) = call(&env, &key, Method::GET, "/v1/managed-secrets", None).await;
    assert_eq!(listed["code"], "insufficient_scope", "an agent key never reads the app's secrets: {listed}");
}
