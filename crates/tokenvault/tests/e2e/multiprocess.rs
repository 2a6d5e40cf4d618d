//! Issue 4: single-flight refresh across several vault processes sharing one PostgreSQL
//! database, and recovery from a process killed while holding a refresh lease.

use std::process::Child;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenvault_fakes::{ClientRegistration, Endpoint, Fakes, Fault, Provider, Variant};
use tokenvault_service::MasterKey;
use tokenvault_testkit::TestDatabase;

use crate::connect_env::{RETURN_ORIGIN, RETURN_URL, catalog_overrides, query_of};
use crate::process::{spawn, tokenvault};
use crate::support::ADMIN_TOKEN;

struct Cluster {
    fakes: Fakes,
    nodes: Vec<(Child, String)>,
    http: reqwest::Client,
    key: String,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(nodes: usize, lease_seconds: u64) -> Option<Cluster> {
        let db = TestDatabase::postgres().await?;
        let dir = tempfile::tempdir().unwrap();
        let fakes = Fakes::start().await.unwrap();
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers).unwrap();
        catalog_overrides(&fakes, &providers, None);
        let master = MasterKey::generate().to_base64();
        let mut started = Vec::new();
        for i in 0..nodes {
            let mut command = tokenvault();
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--refresh-interval-seconds", "0"])
                // The fake providers listen on loopback, which the egress guard refuses unless allowed.
                .arg("--allow-private-egress")
                .args(["--refresh-lease-seconds", &lease_seconds.to_string()])
                .arg("--data-dir")
                .arg(dir.path().join(format!("node{i}")))
                .arg("--providers-dir")
                .arg(&providers)
                .env("TOKENVAULT_DATABASE_URL", &db.url)
                .env("TOKENVAULT_MASTER_KEY", master.as_str())
                .env("TOKENVAULT_ADMIN_TOKEN", ADMIN_TOKEN);
            let (child, base, _, _) = spawn(command);
            started.push((child, base));
        }
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let base = started[0].1.clone();
        let app: Value = http
            .post(format!("{base}/admin/v1/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "cluster"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let app_id = app["id"].as_str().unwrap();
        let key: Value = http
            .post(format!("{base}/admin/v1/apps/{app_id}/api-keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "scopes": ["*"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = key["key"].as_str().unwrap().to_owned();
        http.patch(format!("{base}/v1/app"))
            .bearer_auth(&key)
            .json(&json!({"return_origins": [RETURN_ORIGIN]}))
            .send()
            .await
            .unwrap();
        Some(Cluster { fakes, nodes: started, http, key, _db: db, _dir: dir })
    }

    /// Connects a Zoom account through node 0; returns the grant id.
    async fn connect_zoom(&self) -> String {
        let base = &self.nodes[0].1;
        let config: Value = self
            .http
            .post(format!("{base}/v1/provider-configs"))
            .bearer_auth(&self.key)
            .json(&json!({"provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.fakes.control().register_client(
            Provider::Zoom,
            ClientRegistration {
                client_id: "zoom-client".into(),
                client_secret: "zoom-secret".into(),
                redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
                scopes: vec!["user:read:user".into()],
                install_uri: None,
            },
        );
        let session: Value = self
            .http
            .post(format!("{base}/v1/connect-sessions"))
            .bearer_auth(&self.key)
            .json(&json!({"end_user_id": "u1", "return_url": RETURN_URL}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let start = format!("{}?provider=zoom", session["connect_url"].as_str().unwrap());
        let open = self.http.get(start).send().await.unwrap();
        let cookie = open.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let authorize = open.headers()["location"].to_str().unwrap().to_owned();
        let consent = self.http.get(authorize).send().await.unwrap();
        let callback = consent.headers()["location"].to_str().unwrap().to_owned();
        let done = self.http.get(callback).header("cookie", cookie).send().await.unwrap();
        let location = done.headers()["location"].to_str().unwrap().to_owned();
        query_of(&location)["grant_id"].clone()
    }

    async fn token(&self, node: usize, grant_id: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/v1/grants/{grant_id}/token", self.nodes[node].1))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn refreshes(&self) -> Vec<tokenvault_fakes::TokenRequestLog> {
        self.fakes
            .control()
            .token_requests(Provider::Zoom)
            .into_iter()
            .filter(|r| r.grant_type == "refresh_token")
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connects with a Zoom access token the vault will consider due (60 s left, under the 120 s
/// margin), then lets the fake issue normal hour-long tokens again.
async fn grant_due_for_refresh(cluster: &Cluster) -> String {
    let control = cluster.fakes.control();
    // A token is due once half its life has passed (the margin is at most half the lifetime):
    // a 4 s token is due 2 s after the connect, by the real clock the processes run on.
    control.set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(4) });
    let connected = std::time::Instant::now();
    let grant_id = cluster.connect_zoom().await;
    control.set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(3599) });
    tokio::time::sleep_until((connected + std::time::Duration::from_millis(2_500)).into()).await;
    grant_id
}

#[tokio::test]
async fn two_hundred_callers_on_three_processes_cause_exactly_one_refresh() {
    let Some(cluster) = Cluster::start(3, 30).await else { return };
    let grant_id = grant_due_for_refresh(&cluster).await;
    let cluster = std::sync::Arc::new(cluster);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let cluster = cluster.clone();
        let grant_id = grant_id.clone();
        tasks.push(tokio::spawn(async move { cluster.token(i % 3, &grant_id).await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller received the same new token");
    let refreshes = cluster.refreshes();
    assert_eq!(refreshes.len(), 1, "exactly one refresh reached Zoom");
    let used = refreshes[0].refresh_token.clone().unwrap();
    let uses = cluster
        .fakes
        .control()
        .token_requests(Provider::Zoom)
        .iter()
        .filter(|r| r.refresh_token.as_deref() == Some(used.as_str()))
        .count();
    assert_eq!(uses, 1, "the old refresh token was used once");
}

#[tokio::test]
async fn a_process_killed_holding_the_lease_does_not_lose_or_block_the_grant() {
    let Some(mut cluster) = Cluster::start(2, 2).await else { return };
    let grant_id = grant_due_for_refresh(&cluster).await;
    let control = cluster.fakes.control();
    // Node 0's refresh hangs at Zoom; kill node 0 while it holds the lease.
    control.inject(Provider::Zoom, Endpoint::Token, Fault::Latency(std::time::Duration::from_secs(30)), 1);
    let calls_before = control.calls(Provider::Zoom, Endpoint::Token);
    let hanging = {
        let http = cluster.http.clone();
        let url = format!("{}/v1/grants/{grant_id}/token", cluster.nodes[0].1);
        let key = cluster.key.clone();
        tokio::spawn(async move { http.post(url).bearer_auth(key).send().await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while control.calls(Provider::Zoom, Endpoint::Token) == calls_before {
        assert!(std::time::Instant::now() < deadline, "node 0 never sent its refresh");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (node0, _) = &mut cluster.nodes[0];
    node0.kill().unwrap();
    node0.wait().unwrap();
    assert!(hanging.await.unwrap().is_err(), "node 0 died mid-request");
    // Node 1 takes over once the lease runs out (2 s) and refreshes.
    let (status, body) = cluster.token(1, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, grant) = {
        let response = cluster
            .http
            .get(format!("{}/v1/grants/{grant_id}", cluster.nodes[1].1))
            .bearer_auth(&cluster.key)
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grant["status"], "active");
    assert!(control.is_access_token_active(Provider::Zoom, body["access_token"].as_str().unwrap()));
}
