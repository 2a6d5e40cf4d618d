//! The egress guard (SSRF protection): with the default settings the vault refuses to store or
//! call URLs whose host is, or resolves to, a loopback, private, link-local or other non-public
//! address; a value stored while it was allowed is refused when it is dialled, the local service
//! receiving nothing; the operator's allowances let the fakes (or one range) through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault::Settings;
use tokenvault::cli::{GlobalArgs, ServeArgs};
use tokenvault_fakes::{Host, Provider};
use tokenvault_providers::{EgressPolicy, parse_cidr};
use tokenvault_testkit::{Backend, TestDatabase};

use crate::connect_env::ConnectEnv;
use crate::support::{ADMIN_TOKEN, TestVault, assert_error_shape, test_settings};

/// Generates `sqlite::<case>` and `postgres::<case>` tests for each case taking a `Backend`
/// (each case starts the vault with the egress settings it is about).
macro_rules! egress_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(tokenvault_testkit::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(tokenvault_testkit::Backend::Postgres).await })*
        }
    };
}

egress_tests!(
    with_the_guard_on_managed_secret_base_urls_into_private_networks_are_refused,
    with_the_guard_on_custom_provider_issuers_endpoints_and_webhook_urls_into_private_networks_are_refused,
    a_managed_secret_stored_while_allowed_is_refused_when_dialled_and_nothing_reaches_the_local_service,
    a_custom_provider_stored_while_allowed_is_refused_at_refresh_and_verify,
    an_app_webhook_stored_while_allowed_is_not_delivered_once_the_guard_is_on,
    the_guard_is_on_with_the_default_settings,
    an_allowed_range_lets_only_that_range_through,
);

const SECRET: &str = "ms-egress-secret-0042";

fn guarded(settings: &mut Settings) {
    settings.egress = EgressPolicy::guarded();
}

fn loopback_allowed(settings: &mut Settings) {
    settings.egress = EgressPolicy::new(false, vec![parse_cidr("127.0.0.0/8").unwrap()]);
}

/// A vault wired to the fakes with the egress settings `adjust` sets.
async fn env_with(backend: Backend, adjust: fn(&mut Settings)) -> Option<ConnectEnv> {
    ConnectEnv::start_adjusted(backend, None, adjust).await
}

/// Restarts the env's vault (same database) with other egress settings.
async fn restarted(env: ConnectEnv, adjust: fn(&mut Settings)) -> ConnectEnv {
    let ConnectEnv { vault, fakes, key } = env;
    let vault = vault.restart_adjusted(adjust).await;
    ConnectEnv { vault, fakes, key }
}

async fn create_managed(env: &ConnectEnv, base_url: &str) -> (StatusCode, Value) {
    let body = json!({ "name": "partner api", "style": "bearer", "secret": SECRET, "base_urls": [base_url] });
    env.api(Method::POST, "/v1/managed-secrets", Some(body)).await
}

/// Asserts a `400 destination_not_allowed` whose message names `host` and never the secret.
fn assert_refused_at_creation(status: StatusCode, body: &Value, host: &str, why: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{host}: {body}");
    assert_eq!(assert_error_shape(status, body), "destination_not_allowed", "{host}: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(host), "the message names the host `{host}`: {message}");
    assert!(message.contains(why), "the message says why ({why}): {message}");
    assert!(message.contains("--allow-private-egress"), "the message says how to allow it: {message}");
    assert!(!body.to_string().contains(SECRET), "{body}");
}

async fn proxy_get(env: &ConnectEnv, grant_id: &str, path: &str) -> (StatusCode, Value) {
    let response =
        env.vault.http.get(env.vault.url(&format!("/v1/proxy/{grant_id}{path}"))).bearer_auth(&env.key).send().await;
    let response = response.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Port of the evil fake (the stand-in for a local service), as `http://127.0.0.1:PORT`.
fn evil(env: &ConnectEnv) -> (String, u16) {
    let evil = env.fakes.urls().evil.trim_end_matches('/').to_owned();
    let port = url::Url::parse(&evil).unwrap().port().unwrap();
    (evil, port)
}

async fn with_the_guard_on_managed_secret_base_urls_into_private_networks_are_refused(backend: Backend) {
    let Some(env) = env_with(backend, guarded).await else { return };
    let (evil, port) = evil(&env);
    for (url, host, why) in [
        (evil.clone(), "127.0.0.1", "loopback"),
        ("http://127.1".into(), "127.0.0.1", "loopback"),
        ("http://[::1]".into(), "[::1]", "loopback"),
        ("https://[::ffff:127.0.0.1]".into(), "[::ffff:7f00:1]", "loopback"),
        ("https://169.254.169.254".into(), "169.254.169.254", "link-local"),
        ("https://10.0.0.1".into(), "10.0.0.1", "private"),
        ("https://172.16.0.1".into(), "172.16.0.1", "private"),
        ("https://192.168.1.1".into(), "192.168.1.1", "private"),
        ("https://100.64.0.1".into(), "100.64.0.1", "carrier-grade NAT"),
        ("https://[fd00::1]".into(), "[fd00::1]", "unique-local"),
        ("https://[fe80::1]".into(), "[fe80::1]", "link-local"),
        ("http://0.0.0.0".into(), "0.0.0.0", "unspecified"),
        // A name is judged by what it resolves to.
        (format!("http://localhost:{port}"), "localhost", "resolves to a loopback address"),
    ] {
        let (status, body) = create_managed(&env, &url).await;
        assert_refused_at_creation(status, &body, host, why);
    }
    // Replacing a secret is checked the same way.
    let (status, created) = create_managed(&env, "https://api.partner.example").await;
    assert_eq!(status, StatusCode::CREATED, "a public (or not yet resolvable) name is accepted: {created}");
    let id = created["id"].as_str().unwrap();
    let body = json!({ "name": "partner api", "style": "bearer", "secret": SECRET, "base_urls": ["https://api.partner.example", "https://10.1.2.3"] });
    let (status, body) = env.api(Method::PUT, &format!("/v1/managed-secrets/{id}"), Some(body)).await;
    assert_refused_at_creation(status, &body, "10.1.2.3", "private");
    assert!(env.fakes.control().evil_requests().is_empty(), "nothing was called");
}

async fn with_the_guard_on_custom_provider_issuers_endpoints_and_webhook_urls_into_private_networks_are_refused(
    backend: Backend,
) {
    let Some(env) = env_with(backend, guarded).await else { return };
    let issuer = env.fakes.urls().generic_issuer.clone();
    let port = url::Url::parse(&issuer).unwrap().port().unwrap();
    let custom = |extra: Value| {
        let mut body =
            json!({ "provider": "custom", "key": "generic", "client_id": "c", "client_secret": "generic-secret" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    // Discovery at the fake generic provider: refused before any request leaves.
    let (status, body) = env.api(Method::POST, "/v1/provider-configs", Some(custom(json!({ "issuer": issuer })))).await;
    assert_refused_at_creation(status, &body, "127.0.0.1", "loopback");
    let by_name = format!("http://localhost:{port}/realms/test");
    let (status, body) =
        env.api(Method::POST, "/v1/provider-configs", Some(custom(json!({ "issuer": by_name })))).await;
    assert_refused_at_creation(status, &body, "localhost", "resolves to a loopback address");
    assert_eq!(env.fakes.control().calls_on_host(Host::Generic), 0, "no discovery request was sent");

    // Explicit endpoints: each one the vault calls, and the API base.
    let endpoints = |token: &str| json!({ "authorize_url": "https://id.example/authorize", "token_url": token, "userinfo_url": "https://id.example/userinfo" });
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(custom(json!({ "endpoints": endpoints("https://169.254.169.254/token") }))),
        )
        .await;
    assert_refused_at_creation(status, &body, "169.254.169.254", "link-local");
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(custom(
                json!({ "endpoints": endpoints("https://id.example/token"), "api_base_url": "https://10.0.0.1/api" }),
            )),
        )
        .await;
    assert_refused_at_creation(status, &body, "10.0.0.1", "private");
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(custom(
                json!({ "endpoints": endpoints("https://id.example/token"), "api_base_url": "https://api.id.example" }),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "public endpoints are accepted: {body}");

    // App webhook endpoints.
    for (url, host, why) in [
        (format!("http://127.0.0.1:{port}/hook"), "127.0.0.1", "loopback"),
        (format!("http://localhost:{port}/hook"), "localhost", "resolves to a loopback address"),
        ("https://169.254.169.254/hook".into(), "169.254.169.254", "link-local"),
        ("https://[fd00::1]/hook?token=abc".into(), "[fd00::1]", "unique-local"),
    ] {
        let (status, body) = env.api(Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": url }))).await;
        assert_refused_at_creation(status, &body, host, why);
        assert!(!body["message"].as_str().unwrap().contains("token=abc"), "only the host is named: {body}");
    }
    let (_, listed) = env.api(Method::GET, "/v1/webhook-endpoints", None).await;
    assert_eq!(listed["data"].as_array().map(Vec::len).unwrap_or(0), 0, "{listed}");
}

async fn a_managed_secret_stored_while_allowed_is_refused_when_dialled_and_nothing_reaches_the_local_service(
    backend: Backend,
) {
    // Stored while an allowlist lets loopback through; reached once to prove the path works.
    let Some(env) = env_with(backend, loopback_allowed).await else { return };
    let (evil, port) = evil(&env);
    let (status, literal) = create_managed(&env, &evil).await;
    assert_eq!(status, StatusCode::CREATED, "{literal}");
    let literal = literal["id"].as_str().unwrap().to_owned();
    // A name that resolves to loopback: what a rebinding attacker's name turns into at dial time.
    let (status, named) = create_managed(&env, &format!("http://localhost:{port}")).await;
    assert_eq!(status, StatusCode::CREATED, "{named}");
    let named = named["id"].as_str().unwrap().to_owned();
    for id in [&literal, &named] {
        let (status, body) = proxy_get(&env, id, "/things").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let reached = env.fakes.control().evil_requests().len();
    assert_eq!(reached, 2);

    // The same vault data, the guard on: dialling is refused, and the local service gets nothing.
    let env = restarted(env, guarded).await;
    for (id, host, why) in
        [(&literal, "127.0.0.1", "is a loopback address"), (&named, "localhost", "resolves to a loopback address")]
    {
        let (status, body) = proxy_get(&env, id, "/things").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert_eq!(assert_error_shape(status, &body), "destination_not_allowed", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(host) && message.contains(why), "{message}");
        assert!(!body.to_string().contains(SECRET), "{body}");
    }
    assert_eq!(env.fakes.control().evil_requests().len(), reached, "no request reached the local service");

    // The refusals are audited as failed proxy calls with the code.
    env.vault.vault.flush_audit().await;
    let (_, audit) = env.api(Method::GET, &format!("/v1/audit?grant_id={named}"), None).await;
    assert!(audit.to_string().contains("destination_not_allowed"), "{audit}");
    assert!(!audit.to_string().contains(SECRET), "{audit}");
}

async fn a_custom_provider_stored_while_allowed_is_refused_at_refresh_and_verify(backend: Backend) {
    // The test harness allows private egress: connect a grant at the fake generic provider.
    let Some(env) = ConnectEnv::start(backend).await else { return };
    env.configure_generic("generic-secret").await;
    let grant_id = env.connect_ok("user-1", "generic").await;
    let token_calls = env.fakes.control().token_requests(Provider::Generic).len();
    let calls = env.fakes.control().calls_on_host(Host::Generic);

    let env = restarted(env, guarded).await;
    // The token has expired: a refresh is needed, and its destination is refused.
    env.vault.clock.advance(std::time::Duration::from_secs(2 * 86_400));
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(assert_error_shape(status, &body), "destination_not_allowed", "{body}");
    assert!(!body["message"].as_str().unwrap().contains("temporarily"), "{body}");
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "active", "a refused destination does not kill the grant: {grant}");
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/verify"), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(assert_error_shape(status, &body), "destination_not_allowed", "{body}");
    assert!(body["message"].as_str().unwrap().contains("127.0.0.1"), "{body}");
    assert_eq!(env.fakes.control().token_requests(Provider::Generic).len(), token_calls, "no refresh was sent");
    assert_eq!(env.fakes.control().calls_on_host(Host::Generic), calls, "nothing reached the provider");
}

/// A local TCP service that counts the connections it accepts (and answers none).
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (addr, accepted)
}

async fn an_app_webhook_stored_while_allowed_is_not_delivered_once_the_guard_is_on(backend: Backend) {
    let Some(env) = ConnectEnv::start(backend).await else { return };
    let (addr, accepted) = counting_listener().await;
    for url in [format!("http://{addr}/hook"), format!("http://localhost:{}/hook", addr.port())] {
        let body = json!({ "url": url, "events": ["grant.connected"] });
        let (status, endpoint) = env.api(Method::POST, "/v1/webhook-endpoints", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    }
    env.configure_generic("generic-secret").await;
    env.connect_ok("user-1", "generic").await; // two grant.connected deliveries wait in the outbox

    let env = restarted(env, guarded).await;
    let report = env.vault.vault.deliver_due_webhooks(100).await.unwrap();
    assert_eq!((report.attempted, report.delivered, report.retrying), (2, 0, 2), "{report:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection reached the local service");
    let (_, log) = env.api(Method::GET, "/v1/webhook-deliveries", None).await;
    let rows = log["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{log}");
    for row in rows {
        assert_eq!(row["state"], "pending", "{row}");
        let error = row["last_error"].as_str().unwrap();
        assert!(error.starts_with("destination_not_allowed"), "{error}");
        assert!(error.contains("loopback"), "{error}");
    }
    assert!(rows.iter().any(|r| r["last_error"].as_str().unwrap().contains("`localhost` resolves to")), "{log}");
}

async fn the_guard_is_on_with_the_default_settings(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await else { return };
    let (db, dir) = (Arc::new(db), Arc::new(tempfile::tempdir().unwrap()));
    // Only what a test must set: where the data lives, the database, the key, the admin token.
    let harness = test_settings(&db, dir.path());
    let global = GlobalArgs {
        data_dir: Some(harness.data_dir),
        database_url: harness.database_url,
        master_key_file: harness.master_key_file,
        ..Default::default()
    };
    let serve = ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        admin_token: Some(ADMIN_TOKEN.into()),
        ..Default::default()
    };
    let settings = Settings::resolve(&global, &serve).unwrap();
    assert_eq!(settings.egress, EgressPolicy::guarded());
    let vault = TestVault::start_with(settings, db, dir).await;
    let (_, key) = vault.new_app("defaults").await;
    let (addr, accepted) = counting_listener().await;
    let body = json!({ "name": "local", "style": "bearer", "secret": SECRET, "base_urls": [format!("http://{addr}")] });
    let (status, body) = vault.call(Method::POST, "/v1/managed-secrets", Some(&key), Some(body)).await;
    assert_refused_at_creation(status, &body, "127.0.0.1", "loopback");
    let body = json!({ "url": format!("http://localhost:{}/hook", addr.port()) });
    let (status, body) = vault.call(Method::POST, "/v1/webhook-endpoints", Some(&key), Some(body)).await;
    assert_refused_at_creation(status, &body, "localhost", "resolves to a loopback address");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

async fn an_allowed_range_lets_only_that_range_through(backend: Backend) {
    let Some(env) = env_with(backend, loopback_allowed).await else { return };
    // 127.0.0.0/8 is allowed: managed secrets, discovery and a whole connect reach the fakes.
    let (evil, _) = evil(&env);
    let (status, created) = create_managed(&env, &evil).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, body) = proxy_get(&env, created["id"].as_str().unwrap(), "/ping").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, mapped) = create_managed(&env, "https://[::ffff:127.0.0.1]").await;
    assert_eq!(status, StatusCode::CREATED, "the IPv4-mapped form of an allowed address is allowed: {mapped}");
    env.configure_generic("generic-secret").await;
    env.connect_ok("user-1", "generic").await;

    // Everything outside it stays refused, ::1 included (it is not in 127.0.0.0/8).
    for (url, host, why) in [
        ("https://10.0.0.1", "10.0.0.1", "private"),
        ("https://169.254.169.254", "169.254.169.254", "link-local"),
        ("http://[::1]", "[::1]", "loopback"),
    ] {
        let (status, body) = create_managed(&env, url).await;
        assert_refused_at_creation(status, &body, host, why);
    }
}
