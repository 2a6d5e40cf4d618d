//! A vault wired to the fake providers through an explicit catalog override, plus a scripted
//! "browser" that walks the redirects of a connect flow.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{ClientRegistration, Fakes, Provider};
use tokenvault_testkit::{Backend, TestDatabase};

use crate::support::{TestVault, test_settings};

pub const RETURN_ORIGIN: &str = "https://app.example.com";
pub const RETURN_URL: &str = "https://app.example.com/connected?from=vault";

/// The link of the hosted Connect page's first "Continue" button (HTML-unescaped).
pub fn continue_href(page: &str) -> Option<String> {
    let at = page.find("id=\"continue-")?;
    let tag_start = page[..at].rfind("<a ")?;
    let tag = &page[tag_start..];
    let href = tag.split("href=\"").nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&#38;", "&").replace("&#x3d;", "=").replace("&#61;", "="))
}

pub struct ConnectEnv {
    pub vault: TestVault,
    pub fakes: Fakes,
    pub key: String,
}

/// Provider definitions pointing at the fakes: what an operator would write to use them.
pub fn catalog_overrides(fakes: &Fakes, dir: &std::path::Path, dialpad_client_auth: Option<&str>) {
    for (name, contents) in tokenvault_fakes::vault_catalog_overrides(fakes.urls(), dialpad_client_auth) {
        std::fs::write(dir.join(name), contents).unwrap();
    }
}

/// One browser step: status, Location, and the cookies it set.
pub struct Step {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub body: String,
    pub error_code: Option<String>,
}

impl ConnectEnv {
    pub async fn start(backend: Backend) -> Option<ConnectEnv> {
        Self::start_with(backend, None).await
    }

    pub async fn start_with(backend: Backend, dialpad_client_auth: Option<&str>) -> Option<ConnectEnv> {
        Self::start_adjusted(backend, dialpad_client_auth, |_| {}).await
    }

    /// Like [`ConnectEnv::start_with`], with the vault's settings adjusted first.
    pub async fn start_adjusted(
        backend: Backend,
        dialpad_client_auth: Option<&str>,
        adjust: impl FnOnce(&mut tokenvault::Settings),
    ) -> Option<ConnectEnv> {
        let db = Arc::new(TestDatabase::create(backend).await?);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let fakes = Fakes::start().await.expect("fakes start");
        let providers_dir = dir.path().join("providers");
        std::fs::create_dir_all(&providers_dir).unwrap();
        catalog_overrides(&fakes, &providers_dir, dialpad_client_auth);
        let mut settings = test_settings(&db, dir.path());
        settings.providers_dir = Some(providers_dir);
        adjust(&mut settings);
        let vault = TestVault::start_with(settings, db, dir).await;
        let (_, key) = vault.new_app("acme").await;
        let (status, body) =
            vault.call(Method::PATCH, "/v1/app", Some(&key), Some(json!({ "return_origins": [RETURN_ORIGIN] }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Some(ConnectEnv { vault, fakes, key })
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.vault.call(method, path, Some(&self.key), body).await
    }

    /// Creates a provider configuration at the vault and registers the matching client at the
    /// fake (its redirect URI taken from the vault's answer). Returns the configuration.
    pub async fn configure(&self, fake: Provider, body: Value) -> Value {
        let (status, config) = self.api(Method::POST, "/v1/provider-configs", Some(body.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{config}");
        let scopes = match fake {
            Provider::Zoom => vec!["user:read:user".into(), "meeting:read:meeting".into()],
            _ => config["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        };
        self.fakes.control().register_client(
            fake,
            ClientRegistration {
                client_id: body["client_id"].as_str().unwrap().to_owned(),
                client_secret: body["client_secret"].as_str().unwrap().to_owned(),
                redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
                scopes,
                install_uri: config["install_uri"].as_str().map(str::to_owned),
            },
        );
        config
    }

    pub async fn configure_dialpad(&self, environment: &str, scopes: Option<Vec<&str>>) -> Value {
        let fake = if environment == "sandbox" { Provider::DialpadSandbox } else { Provider::DialpadProduction };
        let mut body = json!({ "provider": "dialpad", "key": format!("dialpad-{environment}"), "environment": environment,
            "client_id": format!("dialpad-{environment}-client"), "client_secret": "dialpad-secret-1" });
        if let Some(scopes) = scopes {
            body["scopes"] = json!(scopes);
        }
        self.configure(fake, body).await
    }

    pub async fn configure_zoom(&self) -> Value {
        self.configure(
            Provider::Zoom,
            json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1" }),
        )
        .await
    }

    pub async fn configure_aircall(&self) -> Value {
        self.configure(
            Provider::Aircall,
            json!({ "provider": "aircall", "client_id": "aircall-client", "client_secret": "aircall-secret-1" }),
        )
        .await
    }

    pub async fn configure_generic(&self, client_secret: &str) -> Value {
        let issuer = self.fakes.urls().generic_issuer.clone();
        self.configure(
            Provider::Generic,
            json!({ "provider": "custom", "key": "generic", "client_id": "generic-client", "client_secret": client_secret,
                    "issuer": issuer, "scopes": ["openid", "profile"] }),
        )
        .await
    }

    /// Creates a connect session; returns (session id, connect_url).
    pub async fn session(&self, end_user: &str, providers: &[&str]) -> (String, String) {
        let (status, body) = self
            .api(
                Method::POST,
                "/v1/connect-sessions",
                Some(json!({ "end_user_id": end_user, "providers": providers, "return_url": RETURN_URL })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["id"].as_str().unwrap().to_owned(), body["connect_url"].as_str().unwrap().to_owned())
    }

    pub async fn get(&self, url: &str, cookies: &[String]) -> Step {
        let mut request = self.vault.http.get(url);
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let error_code = response.headers().get("x-tokenvault-error").map(|v| v.to_str().unwrap().to_owned());
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let body = response.text().await.unwrap();
        Step { status, location, cookies, body, error_code }
    }

    /// Opens the connect URL: returns the provider authorize URL and the flow cookie. The hosted
    /// Connect page comes first unless the URL names the provider; then its first "Continue"
    /// button is followed, as a person would.
    pub async fn open(&self, connect_url: &str) -> (String, Vec<String>) {
        let mut step = self.get(connect_url, &[]).await;
        if step.status == StatusCode::OK {
            let start = continue_href(&step.body).unwrap_or_else(|| panic!("no continue button: {}", step.body));
            step = self.get(&self.vault.url(&start), &[]).await;
        }
        assert_eq!(step.status, StatusCode::SEE_OTHER, "{}", step.body);
        (step.location.unwrap(), step.cookies)
    }

    /// At the fake provider (auto-consent): returns the callback URL it redirects to.
    pub async fn consent(&self, authorize_url: &str) -> String {
        let step = self.get(authorize_url, &[]).await;
        assert!(step.status.is_redirection(), "provider said {}: {}", step.status, step.body);
        step.location.unwrap()
    }

    /// A whole connect: session, vault, provider, callback. Returns the final step (the
    /// redirect back to the app, or an error page).
    pub async fn connect(&self, end_user: &str, provider_key: &str) -> Step {
        let (_, connect_url) = self.session(end_user, &[provider_key]).await;
        let (authorize, cookies) = self.open(&connect_url).await;
        let callback = self.consent(&authorize).await;
        self.get(&callback, &cookies).await
    }

    /// Connects and returns the grant id from the return URL.
    pub async fn connect_ok(&self, end_user: &str, provider_key: &str) -> String {
        let step = self.connect(end_user, provider_key).await;
        let location = step.location.unwrap_or_else(|| panic!("no redirect: {} {}", step.status, step.body));
        let params = query_of(&location);
        assert_eq!(params.get("status").map(String::as_str), Some("succeeded"), "{location}");
        assert!(location.starts_with(RETURN_URL), "{location}");
        params["grant_id"].clone()
    }

    pub async fn grant(&self, grant_id: &str) -> Value {
        let (status, grant) = self.api(Method::GET, &format!("/v1/grants/{grant_id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{grant}");
        grant
    }

    pub async fn grants(&self) -> Vec<Value> {
        let (status, page) = self.api(Method::GET, "/v1/grants?limit=200", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    /// Flushes the audit log, then asserts none of `secrets` is in the app's audit table or in `logs`.
    pub async fn assert_secrets_absent(&self, logs: &crate::log_capture::Capture, secrets: &[String]) {
        self.vault.vault.flush_audit().await;
        let app_id = self.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned();
        let everything =
            self.vault.vault.store().query_audit(&app_id, &Default::default(), None, 100_000).await.unwrap();
        assert!(everything.iter().any(|r| r.action == "proxy.request"), "the calls were audited");
        let table = format!("{everything:?}");
        let logged = logs.contents();
        assert!(logged.contains("proxied"), "logs were captured");
        for secret in secrets {
            assert!(!table.contains(secret.as_str()), "a secret is in the audit table");
            assert!(!logged.contains(secret.as_str()), "a secret is in the logs");
        }
    }

    /// Lets Aircall installs started from its dashboard complete (they return here to be claimed).
    pub async fn allow_aircall_installs(&self) {
        let body = json!({ "install_return_url": "https://app.example.com/aircall/installed" });
        let (status, app) = self.api(Method::PATCH, "/v1/app", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{app}");
    }

    pub async fn session_status(&self, session_id: &str) -> Value {
        let (status, session) = self.api(Method::GET, &format!("/v1/connect-sessions/{session_id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        session
    }
}

pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Generates `sqlite::<case>` and `postgres::<case>` tests for each case taking a `ConnectEnv`.
#[macro_export]
macro_rules! connect_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                if let Some(env) = $crate::connect_env::ConnectEnv::start(tokenvault_testkit::Backend::Sqlite).await { super::$case(env).await }
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $case() {
                if let Some(env) = $crate::connect_env::ConnectEnv::start(tokenvault_testkit::Backend::Postgres).await { super::$case(env).await }
            })*
        }
    };
}
