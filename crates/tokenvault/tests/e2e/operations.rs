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

/// `tokenvault backup FILE` copies the embedded database while the vault serves; the copy (with
/// the master key, kept apart) is a working vault.
#[tokio::test]
async fn an_online_backup_of_the_embedded_database_restores() {
    use crate::process::{spawn, terminate, tokenvault};
    use crate::support::ADMIN_TOKEN;
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |extra: &[&str]| {
        let mut command = tokenvault();
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data).args(extra);
        command.env("TOKENVAULT_ADMIN_TOKEN", ADMIN_TOKEN);
        spawn(command)
    };
    let http = reqwest::Client::new();
    let create_app = async |base: &str, name: &str| {
        let response =
            http.post(format!("{base}/admin/v1/apps")).bearer_auth(ADMIN_TOKEN).json(&json!({ "name": name })).send();
        assert_eq!(response.await.unwrap().status(), StatusCode::CREATED);
    };
    let (mut child, base, _, _) = serve(&[]);
    create_app(&base, "before-backup").await;
    let copy = dir.path().join("copy.db");
    let backup = tokenvault().arg("backup").arg(&copy).arg("--data-dir").arg(&data).output().unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    create_app(&base, "after-backup").await;
    // An existing file is never overwritten.
    let again = tokenvault().arg("backup").arg(&copy).arg("--data-dir").arg(&data).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("copy.db"), "{}", String::from_utf8_lossy(&again.stderr));
    terminate(&mut child);

    let copy_url = format!("sqlite://{}", copy.display());
    let key_file = data.join("master.key");
    let (mut restored, base, _, _) =
        serve(&["--database-url", &copy_url, "--master-key-file", key_file.to_str().unwrap()]);
    let apps: Value =
        http.get(format!("{base}/admin/v1/apps")).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = apps["data"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["before-backup"], "the copy is the database as it was");
    terminate(&mut restored);
}
