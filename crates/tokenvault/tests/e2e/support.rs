use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault::cli::LogFormat;
use tokenvault::{Application, Settings};
use tokenvault_service::{ManualClock, MasterKey, Vault};
use tokenvault_testkit::{Backend, TestDatabase};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";

/// Generates `sqlite::<case>` and `postgres::<case>` tests for each case taking a `TestVault`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                if let Some(vault) = $crate::support::TestVault::start(tokenvault_testkit::Backend::Sqlite).await { super::$case(vault).await }
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() {
                if let Some(vault) = $crate::support::TestVault::start(tokenvault_testkit::Backend::Postgres).await { super::$case(vault).await }
            })*
        }
    };
}

/// A running vault server plus what a test needs to talk to it.
pub struct TestVault {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub vault: Arc<Vault>,
    pub settings: Settings,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _db: Arc<TestDatabase>,
    _dir: Arc<tempfile::TempDir>,
}

impl TestVault {
    pub async fn start(backend: Backend) -> Option<TestVault> {
        let db = Arc::new(TestDatabase::create(backend).await?);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let settings = test_settings(&db, dir.path());
        Some(Self::start_with(settings, db, dir).await)
    }

    pub async fn start_with(settings: Settings, db: Arc<TestDatabase>, dir: Arc<tempfile::TempDir>) -> TestVault {
        let clock = ManualClock::default();
        let app = Application::build(&settings, Arc::new(clock.clone())).await.expect("vault starts");
        let base = format!("http://{}", app.addr());
        let vault = app.vault();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async move {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestVault { base, http, clock, vault, settings, shutdown: Some(tx), server: Some(server), _db: db, _dir: dir }
    }

    /// Stops the server gracefully and starts a new one on the same database and data directory.
    pub async fn restart(self) -> TestVault {
        self.restart_adjusted(|_| {}).await
    }

    /// Like [`TestVault::restart`], with the settings adjusted first.
    pub async fn restart_adjusted(mut self, adjust: impl FnOnce(&mut Settings)) -> TestVault {
        self.stop().await;
        let mut settings = Settings { listen: "127.0.0.1:0".parse().unwrap(), ..self.settings.clone() };
        adjust(&mut settings);
        Self::start_with(settings, self._db.clone(), self._dir.clone()).await
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            // A shutdown that hangs is a bug: fail loudly instead of stalling the whole suite.
            tokio::time::timeout(std::time::Duration::from_secs(60), server)
                .await
                .expect("the server did not shut down within 60 s")
                .unwrap();
        }
    }

    /// Another instance on the same database and data directory (same master key), as a
    /// second vault process behind a load balancer would be.
    pub async fn another_instance(&self) -> TestVault {
        let settings = Settings { listen: "127.0.0.1:0".parse().unwrap(), ..self.settings.clone() };
        Self::start_with(settings, self._db.clone(), self._dir.clone()).await
    }

    pub fn database(&self) -> &TestDatabase {
        &self._db
    }

    pub fn clock_now_seconds(&self) -> i64 {
        tokenvault_service::Clock::now(&self.clock).as_unix_seconds()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, json)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, &format!("/admin/v1{path}"), Some(ADMIN_TOKEN), body).await
    }

    /// Creates an app and mints a key for it; returns (app id, api key).
    pub async fn new_app(&self, name: &str) -> (String, String) {
        let (status, app) = self.admin(Method::POST, "/apps", Some(json!({ "name": name }))).await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        let app_id = app["id"].as_str().unwrap().to_owned();
        let (status, key) = self
            .admin(Method::POST, &format!("/apps/{app_id}/api-keys"), Some(json!({ "name": "test", "scopes": ["*"] })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        (app_id, key["key"].as_str().unwrap().to_owned())
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn test_settings(db: &TestDatabase, dir: &std::path::Path) -> Settings {
    let master_key_file = match db.backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let path = dir.join("master.key");
            std::fs::write(&path, MasterKey::generate().to_base64().as_bytes()).unwrap();
            // As an operator must: a key file others can read is refused.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            Some(path)
        }
    };
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        database_url: Some(db.url.clone()),
        master_key_file,
        allow_insecure_master_key_file: false,
        log_format: LogFormat::Human,
        admin_token: Some(ADMIN_TOKEN.to_owned().into()),
        max_body_bytes: 64 * 1024,
        public_url: None,
        providers_dir: None,
        key_cache_ttl: std::time::Duration::from_millis(20),
        audit_retention: std::time::Duration::from_secs(365 * 86_400),
        proxy_limits: Default::default(),
        // The fake providers and test receivers listen on loopback, which the egress guard
        // refuses by default: the tests allow it explicitly (the `egress` tests turn it back on).
        egress: tokenvault_providers::EgressPolicy::unrestricted(),
        trusted_proxies: Vec::new(),
        metrics_token: None,
        refresh: tokenvault::settings::RefreshSettings {
            interval: None,
            webhook_interval: None,
            lease: std::time::Duration::from_secs(30),
            margin: std::time::Duration::from_secs(120),
            concurrency_per_provider: 4,
        },
    }
}

/// Asserts the one JSON error shape and returns the code.
pub fn assert_error_shape(status: StatusCode, body: &Value) -> String {
    assert!(status.is_client_error() || status.is_server_error(), "{status}: {body}");
    assert_eq!(body["status"].as_u64(), Some(u64::from(status.as_u16())), "{body}");
    assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    body["code"].as_str().unwrap().to_owned()
}
