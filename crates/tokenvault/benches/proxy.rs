//! `cargo bench -p tokenvault --bench proxy`: the vault's added latency, measured in one run
//! against the fake providers over loopback HTTP with a real SQLite database.
//!
//! Prints median and p99 of: a trivial endpoint (`/healthz`), token retrieval, a call to the fake
//! Zoom API directly, and the same call through the proxy; and the proxy's added latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenvault::Application;
use tokenvault::cli::LogFormat;
use tokenvault::settings::{RefreshSettings, Settings};
use tokenvault_fakes::{ClientRegistration, Fakes, Provider, vault_catalog_overrides};
use tokenvault_service::SystemClock;

const ADMIN: &str = "bench-admin-token-0123456789abcdefghijklmnop";
const WARMUP: usize = 200;
const SAMPLES: usize = 3000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure<F, Fut>(label: &str, mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        call().await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        call().await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let (median, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!("{label:<28} median {:>7.1} µs   p99 {:>7.1} µs", median.as_secs_f64() * 1e6, p99.as_secs_f64() * 1e6);
    (median, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fakes = Fakes::start().await?;
    let providers = dir.path().join("providers");
    std::fs::create_dir_all(&providers)?;
    for (name, contents) in vault_catalog_overrides(fakes.urls(), None) {
        std::fs::write(providers.join(name), contents)?;
    }
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        database_url: None,
        master_key_file: None,
        allow_insecure_master_key_file: false,
        log_format: LogFormat::Human,
        admin_token: Some(ADMIN.to_owned().into()),
        max_body_bytes: 1024 * 1024,
        public_url: None,
        providers_dir: Some(providers),
        key_cache_ttl: Duration::from_secs(5),
        audit_retention: Duration::from_secs(86_400),
        proxy_limits: Default::default(),
        // The fake providers listen on loopback, which the egress guard refuses by default.
        egress: tokenvault_providers::EgressPolicy::unrestricted(),
        trusted_proxies: Vec::new(),
        metrics_token: None,
        refresh: RefreshSettings {
            interval: None,
            webhook_interval: None,
            lease: Duration::from_secs(30),
            margin: Duration::from_secs(120),
            concurrency_per_provider: 4,
        },
    };
    let app = Application::build(&settings, Arc::new(SystemClock)).await?;
    let base = format!("http://{}", app.addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    // An app, a Zoom configuration, a connected grant.
    let app: Value = http
        .post(format!("{base}/admin/v1/apps"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let app_id = app["id"].as_str().unwrap();
    let key: Value = http
        .post(format!("{base}/admin/v1/apps/{app_id}/api-keys"))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let key = key["key"].as_str().unwrap().to_owned();
    http.patch(format!("{base}/v1/app"))
        .bearer_auth(&key)
        .json(&json!({"return_origins": ["https://app.example.com"]}))
        .send()
        .await?;
    let config: Value = http
        .post(format!("{base}/v1/provider-configs"))
        .bearer_auth(&key)
        .json(&json!({"provider": "zoom", "client_id": "bench", "client_secret": "bench-secret"}))
        .send()
        .await?
        .json()
        .await?;
    fakes.control().register_client(
        Provider::Zoom,
        ClientRegistration {
            client_id: "bench".into(),
            client_secret: "bench-secret".into(),
            redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
            scopes: vec!["user:read:user".into()],
            install_uri: None,
        },
    );
    let session: Value = http
        .post(format!("{base}/v1/connect-sessions"))
        .bearer_auth(&key)
        .json(&json!({"end_user_id": "bench-user", "return_url": "https://app.example.com/done"}))
        .send()
        .await?
        .json()
        .await?;
    let open = http.get(session["connect_url"].as_str().unwrap()).send().await?;
    let cookie = open.headers()["set-cookie"].to_str()?.split(';').next().unwrap().to_owned();
    let consent = http.get(open.headers()["location"].to_str()?).send().await?;
    let done = http.get(consent.headers()["location"].to_str()?).header("cookie", cookie).send().await?;
    let location = url::Url::parse(done.headers()["location"].to_str()?)?;
    let grant_id = location.query_pairs().find(|(k, _)| k == "grant_id").map(|(_, v)| v.into_owned()).unwrap();
    let token: Value =
        http.post(format!("{base}/v1/grants/{grant_id}/token")).bearer_auth(&key).send().await?.json().await?;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let upstream = format!("{}/v2/echo/bench", fakes.urls().zoom_api);
    let proxied = format!("{base}/v1/proxy/{grant_id}/v2/echo/bench");

    println!(
        "tokenvault proxy benchmark: {SAMPLES} sequential requests each after {WARMUP} warm-up, keep-alive, loopback"
    );
    let health = format!("{base}/healthz");
    measure("GET /healthz", || async {
        http.get(&health).send().await.unwrap().bytes().await.unwrap();
    })
    .await;
    let token_url = format!("{base}/v1/grants/{grant_id}/token");
    measure("POST /v1/grants/{id}/token", || async {
        http.post(&token_url).bearer_auth(&key).send().await.unwrap().bytes().await.unwrap();
    })
    .await;
    let (direct_median, direct_p99) = measure("fake Zoom API directly", || async {
        http.get(&upstream).bearer_auth(&access).send().await.unwrap().bytes().await.unwrap();
    })
    .await;
    let (proxy_median, proxy_p99) = measure("same call through the proxy", || async {
        http.get(&proxied).bearer_auth(&key).send().await.unwrap().bytes().await.unwrap();
    })
    .await;
    println!(
        "proxy added latency: median {:.1} µs, p99 {:.1} µs (ratio {:.2}x median)",
        (proxy_median.as_secs_f64() - direct_median.as_secs_f64()) * 1e6,
        (proxy_p99.as_secs_f64() - direct_p99.as_secs_f64()) * 1e6,
        proxy_median.as_secs_f64() / direct_median.as_secs_f64()
    );
    Ok(())
}
