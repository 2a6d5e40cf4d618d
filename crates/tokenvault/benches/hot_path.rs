//! `cargo bench -p tokenvault --bench hot_path`: the vault's hot path measured against its own
//! limits in one run, on SQLite and (when it answers) PostgreSQL.
//!
//! The vault runs as its own process (the release binary), the fake providers and the load
//! generator in this one, all on loopback. Every figure is a ratio taken in the same run, so the
//! machine's speed cancels out: token fetches against `GET /healthz` (the vault's trivial
//! endpoint), proxied calls against calling the fake directly. Then: 1000 concurrent token calls
//! on an expiring grant, the background refresher's rate on a batch of due grants, and the
//! vault's resident memory with no grant and with thousands stored.
//!
//! `BENCH_PERF=token|proxy` profiles the vault with `perf` under that load instead.
//! Environment: `BENCH_SECONDS` (per case, default 3), `BENCH_GRANTS` (refresher batch, default
//! 3000), `BENCH_REFRESH_CONCURRENCY` (the refresher's `--refresh-concurrency`, default 4),
//! `TOKENVAULT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use tokenvault_fakes::{ClientRegistration, FakeUser, Fakes, Provider, Variant, vault_catalog_overrides};
use tokenvault_testkit::{Backend, TestDatabase};

const ADMIN: &str = "bench-admin-token-0123456789abcdefghijklmnop";
const RETURN: &str = "https://app.example.com";

fn seconds_per_case() -> Duration {
    Duration::from_secs_f64(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0))
}

fn grants_for_refresher() -> usize {
    std::env::var("BENCH_GRANTS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000)
}

/// One load result: requests per second and latency percentiles.
#[derive(Clone, Debug)]
struct Load {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
    /// The first failed answer's status and body, to say why.
    first_error: Option<(u16, String)>,
}

/// A request template: method, path and an optional bearer token.
#[derive(Clone)]
struct Target {
    authority: String,
    method: http::Method,
    path: String,
    bearer: Option<String>,
}

/// Drives `concurrency` keep-alive HTTP/1.1 connections, each sending the next request when the
/// previous answer's body has arrived, for `duration`.
async fn load(target: &Target, concurrency: usize, duration: Duration) -> Load {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&target.authority).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
            tokio::spawn(connection);
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut first_error = None;
            while Instant::now() < deadline {
                let mut request = http::Request::builder()
                    .method(target.method.clone())
                    .uri(&target.path)
                    .header(http::header::HOST, &target.authority);
                if let Some(token) = &target.bearer {
                    request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
                }
                let request = request.body(Empty::<Bytes>::new()).unwrap();
                let started = Instant::now();
                sender.ready().await.expect("connection ready");
                let response = sender.send_request(request).await.expect("answer");
                let status = response.status();
                let body = response.into_body().collect().await.expect("body").to_bytes();
                latencies.push(started.elapsed());
                if !status.is_success() {
                    errors += 1;
                    first_error.get_or_insert((status.as_u16(), String::from_utf8_lossy(&body).into_owned()));
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let (latencies, e, first) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
        first_error = first_error.or(first);
    }
    all.sort();
    let pick = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    Load { rps: all.len() as f64 / duration.as_secs_f64(), p50: pick(0.5), p99: pick(0.99), errors, first_error }
}

/// Failed answers of a case, said in its row (they count in req/s: fast failures flatter it).
fn failures(load: &Load) -> String {
    match &load.first_error {
        None => String::new(),
        Some((status, body)) => {
            let code = serde_json::from_str::<Value>(body).ok().and_then(|b| b["code"].as_str().map(str::to_owned));
            format!(", **{} failed** (first: {status} {})", load.errors, code.unwrap_or_default())
        }
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The vault as a child process.
struct VaultProcess {
    child: Child,
    base: String,
    authority: String,
}

impl VaultProcess {
    fn start(database_url: &str, data_dir: &std::path::Path, providers: &std::path::Path, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let authority = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenvault"));
        command
            .args(["serve", "--listen", &authority, "--database-url", database_url, "--data-dir"])
            .arg(data_dir)
            .arg("--providers-dir")
            .arg(providers)
            .args(["--allow-private-egress", "--admin-token", ADMIN])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if database_url.starts_with("postgres") {
            command.arg("--master-key-file").arg(data_dir.join("bench-master.key"));
        }
        let child = command.spawn().expect("the vault starts");
        VaultProcess { child, base: format!("http://{authority}"), authority }
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        while http.get(format!("{}/readyz", self.base)).send().await.map(|r| r.status().is_success()).ok() != Some(true)
        {
            assert!(Instant::now() < deadline, "the vault did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory, from /proc.
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }

    fn stop(mut self) {
        terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn terminate(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// An app, its key and a Zoom configuration registered at the fake.
struct Tenant {
    key: String,
}

async fn tenant(http: &reqwest::Client, vault: &VaultProcess, fakes: &Fakes) -> Tenant {
    let base = &vault.base;
    let app: Value = http
        .post(format!("{base}/admin/v1/apps"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = app["id"].as_str().unwrap();
    let key: Value = http
        .post(format!("{base}/admin/v1/apps/{app_id}/api-keys"))
        .bearer_auth(ADMIN)
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
        .json(&json!({"return_origins": [RETURN]}))
        .send()
        .await
        .unwrap();
    let config: Value = http
        .post(format!("{base}/v1/provider-configs"))
        .bearer_auth(&key)
        .json(&json!({"provider": "zoom", "client_id": "bench", "client_secret": "bench-secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    Tenant { key }
}

/// Waits (up to a minute) until the vault's audit queue is empty.
async fn audit_drained(http: &reqwest::Client, vault: &VaultProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let text = http.get(format!("{}/metrics", vault.base)).send().await.unwrap().text().await.unwrap();
        let depth = text
            .lines()
            .find_map(|l| l.strip_prefix("tokenvault_audit_queue_depth "))
            .and_then(|n| n.trim().parse::<f64>().ok());
        if depth.is_none_or(|d| d == 0.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers an agent, mints it a key (grants, tokens, proxy) and delegates `grant` to it with
/// token retrieval allowed and a method and path narrowing to check. Returns the agent key.
async fn agent_with_delegation(http: &reqwest::Client, vault: &VaultProcess, key: &str, grant: &str) -> String {
    let base = &vault.base;
    let post = async |path: String, body: Value| -> Value {
        let r = http.post(format!("{base}{path}")).bearer_auth(key).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    };
    let agent = post("/v1/agents".into(), json!({ "name": "bench-agent" })).await;
    let agent_id = agent["id"].as_str().unwrap();
    let minted = post(
        format!("/v1/agents/{agent_id}/keys"),
        json!({ "scopes": ["grants:read", "tokens:retrieve", "proxy:execute"] }),
    )
    .await;
    let delegation = json!({ "grant_id": grant, "proxy_only": false, "methods": ["GET", "POST"], "paths": ["/v2/**"] });
    post(format!("/v1/agents/{agent_id}/delegations"), delegation).await;
    minted["key"].as_str().unwrap().to_owned()
}

/// Connects one Zoom grant for `end_user` (a distinct Zoom user each, as Zoom revokes an
/// account's older grants on reauthorization). Returns the grant id.
async fn connect(http: &reqwest::Client, vault: &VaultProcess, fakes: &Fakes, key: &str, end_user: &str) -> String {
    fakes.control().set_user(
        Provider::Zoom,
        FakeUser {
            id: format!("zu-{end_user}"),
            account_id: format!("za-{end_user}"),
            name: "Bench User".into(),
            email: format!("{end_user}@example.com"),
        },
    );
    let session: Value = http
        .post(format!("{}/v1/connect-sessions", vault.base))
        .bearer_auth(key)
        .json(&json!({"end_user_id": end_user, "return_url": format!("{RETURN}/done")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let open = http.get(session["connect_url"].as_str().unwrap()).send().await.unwrap();
    let cookie = open.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let consent = http.get(open.headers()["location"].to_str().unwrap()).send().await.unwrap();
    let done = http.get(consent.headers()["location"].to_str().unwrap()).header("cookie", cookie).send().await.unwrap();
    let location = url::Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    location.query_pairs().find(|(k, _)| k == "grant_id").map(|(_, v)| v.into_owned()).expect("connected")
}

/// Calls of the fake Zoom token endpoint (only refreshes happen while a case counts them).
fn refreshes_at_fake(fakes: &Fakes) -> usize {
    fakes.control().calls(Provider::Zoom, tokenvault_fakes::Endpoint::Token) as usize
}

async fn run_backend(backend: Backend, fakes: &Fakes, providers: &std::path::Path) -> Option<()> {
    let db = TestDatabase::create(backend).await?;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    if backend == Backend::Postgres {
        use std::os::unix::fs::PermissionsExt;
        let path = data.join("bench-master.key");
        std::fs::write(&path, tokenvault_service::MasterKey::generate().to_base64()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let name = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let per_case = seconds_per_case();
    fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(3600) });

    // The hot path: no refresher in this process, so nothing but the load runs.
    let vault = VaultProcess::start(&db.url, &data, providers, &["--refresh-interval-seconds", "0"]);
    vault.ready().await;
    let idle_empty = vault.rss_mb();
    let tenant = tenant(&http, &vault, fakes).await;
    let grant = connect(&http, &vault, fakes, &tenant.key, "hot-user").await;
    let token: Value = http
        .post(format!("{}/v1/grants/{grant}/token", vault.base))
        .bearer_auth(&tenant.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    let fake_api = url::Url::parse(&fakes.urls().zoom_api).unwrap();
    let fake_authority = format!("{}:{}", fake_api.host_str().unwrap(), fake_api.port().unwrap());

    let health =
        Target { authority: vault.authority.clone(), method: http::Method::GET, path: "/healthz".into(), bearer: None };
    let token_call = Target {
        authority: vault.authority.clone(),
        method: http::Method::POST,
        path: format!("/v1/grants/{grant}/token"),
        bearer: Some(tenant.key.clone()),
    };
    let direct = Target {
        authority: fake_authority,
        method: http::Method::GET,
        path: "/v2/echo/bench".into(),
        bearer: Some(access),
    };
    let proxied = Target {
        authority: vault.authority.clone(),
        method: http::Method::GET,
        path: format!("/v1/proxy/{grant}/v2/echo/bench"),
        bearer: Some(tenant.key.clone()),
    };
    // An agent with its own key, the grant delegated to it (token retrieval allowed), to measure
    // what the scope and delegation checks cost against the app's full-access key.
    let agent_key = agent_with_delegation(&http, &vault, &tenant.key, &grant).await;
    let agent_token = Target { bearer: Some(agent_key.clone()), ..token_call.clone() };
    let agent_proxied = Target { bearer: Some(agent_key), ..proxied.clone() };
    // Warm up every path (connections, caches, the allocator).
    for target in [&health, &token_call, &direct, &proxied, &agent_token, &agent_proxied] {
        load(target, 4, Duration::from_millis(300)).await;
    }

    // `BENCH_PERF=token|proxy` records a `perf` profile of the vault under that load (c=16) into
    // `target/perf-<case>.data` instead of the tables.
    if let Ok(case) = std::env::var("BENCH_PERF") {
        let target = if case == "proxy" { &proxied } else { &token_call };
        let out = format!("{}/../../target/perf-{case}.data", env!("CARGO_MANIFEST_DIR"));
        // `BENCH_PERF_ARGS` replaces the sampling options (default: the whole machine at 999 Hz).
        let options = std::env::var("BENCH_PERF_ARGS").unwrap_or_else(|_| "-F 999 -a".into());
        let options = options.replace("{pid}", &vault.child.id().to_string());
        let mut perf = Command::new("perf")
            .arg("record")
            .args(options.split_whitespace())
            .args(["-o", &out])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf runs");
        let l = load(target, 16, per_case).await;
        terminate(perf.id());
        perf.wait().unwrap();
        println!("{case} c=16: {:.0} req/s, p50 {:.0} µs{}; profile in {out}", l.rps, us(l.p50), failures(&l));
        vault.stop();
        return Some(());
    }

    println!("\n## {name}\n");
    println!("| case | c | req/s | p50 | p99 | ratio | goal |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for c in [1, 16, 64] {
        let h = load(&health, c, per_case).await;
        let t = load(&token_call, c, per_case).await;
        println!("| `GET /healthz` | {c} | {:.0} | {:.0} µs | {:.0} µs | | |", h.rps, us(h.p50), us(h.p99));
        println!(
            "| `POST /v1/grants/{{id}}/token` | {c} | {:.0} | {:.0} µs | {:.0} µs | **{:.2}x** healthz{} | >= 0.5x at c=16 |",
            t.rps,
            us(t.p50),
            us(t.p99),
            t.rps / h.rps,
            failures(&t)
        );
    }
    for c in [1, 16, 64] {
        let d = load(&direct, c, per_case).await;
        let p = load(&proxied, c, per_case).await;
        println!("| fake API directly | {c} | {:.0} | {:.0} µs | {:.0} µs | | |", d.rps, us(d.p50), us(d.p99));
        println!(
            "| the same through `/v1/proxy` | {c} | {:.0} | {:.0} µs | {:.0} µs | **{:.2}x** direct{} | >= 0.7x at c=16 |",
            p.rps,
            us(p.p50),
            us(p.p99),
            p.rps / d.rps,
            failures(&p)
        );
        if c == 1 {
            println!(
                "| **proxy added latency**, sequential | 1 | | **{:.0} µs** | **{:.0} µs** | | p50 <= 150 µs, p99 <= 1 ms |",
                us(p.p50.saturating_sub(d.p50)),
                us(p.p99.saturating_sub(d.p99))
            );
        }
    }

    // Scope and delegation checks: the agent's key against the app's, alternating, at c=16,
    // each measured with the audit writer caught up (a backlog left by the case before would
    // slow whichever came first).
    let (mut app_t, mut agent_t, mut app_p, mut agent_p) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        for (target, sum) in [
            (&token_call, &mut app_t),
            (&agent_token, &mut agent_t),
            (&proxied, &mut app_p),
            (&agent_proxied, &mut agent_p),
        ] {
            audit_drained(&http, &vault).await;
            *sum += load(target, 16, per_case / 2).await.rps;
        }
    }
    println!(
        "| token, agent key with delegation vs app key | 16 | {:.0} vs {:.0} | | | **{:.2}x** | >= 0.9x |",
        agent_t / 2.0,
        app_t / 2.0,
        agent_t / app_t
    );
    println!(
        "| proxy, agent key with delegation vs app key | 16 | {:.0} vs {:.0} | | | **{:.2}x** | >= 0.9x |",
        agent_p / 2.0,
        app_p / 2.0,
        agent_p / app_p
    );

    // 1000 concurrent token calls on a grant whose token expires within the margin, against the
    // same burst on a grant that needs nothing.
    let burst = async |grant: &str| {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let (http, url, key) =
                (http.clone(), format!("{}/v1/grants/{grant}/token", vault.base), tenant.key.clone());
            tasks.push(tokio::spawn(async move {
                let r = http.post(url).bearer_auth(key).send().await.unwrap();
                let ok = r.status().is_success();
                let body: Value = r.json().await.unwrap();
                (ok, body["access_token"].as_str().unwrap_or_default().to_owned())
            }));
        }
        let mut tokens = std::collections::HashSet::new();
        for task in tasks {
            let (ok, token) = task.await.unwrap();
            assert!(ok, "a token call of the burst failed");
            tokens.insert(token);
        }
        (started.elapsed(), tokens.len())
    };
    let (baseline, _) = burst(&grant).await;
    fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(4) });
    let expiring = connect(&http, &vault, fakes, &tenant.key, "expiring-user").await;
    fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(3600) });
    // A 4 s token is refreshed once less than half its lifetime is left.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let before = refreshes_at_fake(fakes);
    let (expiring_burst, distinct) = burst(&expiring).await;
    let refreshed = refreshes_at_fake(fakes) - before;
    println!(
        "| 1000 concurrent token calls, expiring grant | 1000 | | | | {refreshed} refresh, {distinct} distinct token, {:.0} ms vs {:.0} ms on a fresh grant (+{:.0} ms) | 1 refresh, waiters share it |",
        expiring_burst.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        (expiring_burst.as_secs_f64() - baseline.as_secs_f64()) * 1e3,
    );
    let busy = vault.rss_mb();

    // The refresher: a batch of grants with 20 s tokens, stored while no refresher runs; the
    // vault restarts with one once all are due, and the refreshes reaching the fake are timed.
    let count = grants_for_refresher();
    fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(20) });
    let connecting = Instant::now();
    // One at a time: each connect first sets the fake's current user.
    for i in 0..count {
        connect(&http, &vault, fakes, &tenant.key, &format!("batch-{i}")).await;
    }
    let connected_at = Instant::now();
    println!(
        "| (setup: {count} grants connected through the connect flow in {:.1} s) | | | | | | |",
        (connected_at - connecting).as_secs_f64()
    );
    fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(3600) });
    vault.stop();
    // All are due 12 s after their connect (the refresh lead is at most 2/5 of a lifetime).
    let due = connected_at + Duration::from_secs(13);
    let vault = VaultProcess::start(&db.url, &data, providers, &["--refresh-interval-seconds", "0"]);
    vault.ready().await;
    let idle_stored = vault.rss_mb();
    vault.stop();
    tokio::time::sleep_until(due.into()).await;
    let before = refreshes_at_fake(fakes);
    // `BENCH_REFRESH_CONCURRENCY` sets `--refresh-concurrency` (default: the vault's own, 4).
    let concurrency = std::env::var("BENCH_REFRESH_CONCURRENCY").unwrap_or_else(|_| "4".into());
    let vault = VaultProcess::start(
        &db.url,
        &data,
        providers,
        &["--refresh-interval-seconds", "1", "--refresh-concurrency", &concurrency],
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let mut first: Option<Instant> = None;
    loop {
        let done = refreshes_at_fake(fakes) - before;
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if done >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = refreshes_at_fake(fakes) - before;
    let took = first.map_or(Duration::ZERO, |f| f.elapsed());
    println!(
        "| background refresher, {count} due grants, zero-latency fake, `--refresh-concurrency {concurrency}` | | **{:.0} refreshes/s** | | | {done} of {count} in {:.2} s | >= 2000/s |",
        done as f64 / took.as_secs_f64().max(1e-3),
        took.as_secs_f64()
    );
    println!(
        "| vault RSS | | | | | idle, no grant: **{idle_empty:.1} MB**; idle, {} grants stored: **{idle_stored:.1} MB**; after the load: {busy:.1} MB | idle <= 40 MB, flat in grants |",
        count + 2
    );
    vault.stop();
    Some(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fakes = Fakes::start().await.expect("fakes start");
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    for (name, contents) in vault_catalog_overrides(fakes.urls(), None) {
        std::fs::write(providers.join(name), contents).unwrap();
    }
    println!(
        "tokenvault hot-path benchmark: {} s per case, keep-alive HTTP/1.1 on loopback, vault = release binary in its own process",
        seconds_per_case().as_secs_f64()
    );
    let only = std::env::var("BENCH_BACKEND").unwrap_or_default();
    if only != "postgres" {
        run_backend(Backend::Sqlite, &fakes, &providers).await;
    }
    if only != "sqlite" && run_backend(Backend::Postgres, &fakes, &providers).await.is_none() {
        println!("\n(PostgreSQL skipped: set TOKENVAULT_TEST_POSTGRES_URL to a server that answers)");
    }
}
