//! Issue 8: a connected grant survives key rotation, dropped database connections and crashes
//! while it refreshes. Each test provokes the fault for real (rotations racing refreshes, the
//! backend's connections terminated by PostgreSQL, the vault process killed) and then checks
//! that no grant was lost and no request failed other than as documented.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokenvault_fakes::{FakeUser, Provider};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;

connect_tests!(
    key_rotation_under_refresh_load_loses_no_grant,
    an_unwritable_audit_log_stops_token_retrieval_and_proxying_until_it_mends,
);

/// Connects `n` grants of one provider, each for its own end user and provider account (one
/// account connected by two end users would supersede the first grant, quirk 12).
pub async fn connect_many(env: &ConnectEnv, provider_key: &str, fake: Provider, n: usize) -> Vec<String> {
    let mut grants = Vec::new();
    for i in 0..n {
        let base = FakeUser::default_for(fake);
        env.fakes.control().set_user(
            fake,
            FakeUser {
                id: format!("{}{i}", base.id),
                account_id: format!("{}{i}", base.account_id),
                name: format!("{} {i}", base.name),
                email: format!("user{i}@example.com"),
            },
        );
        grants.push(env.connect_ok(&format!("{provider_key}-user-{i}"), provider_key).await);
    }
    grants
}

/// Counts of a load run.
#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

async fn key_rotation_under_refresh_load_loses_no_grant(env: ConnectEnv) {
    env.configure_zoom().await;
    env.configure_dialpad("production", None).await;
    let mut grants = connect_many(&env, "zoom", Provider::Zoom, 3).await;
    grants.extend(connect_many(&env, "dialpad-production", Provider::DialpadProduction, 3).await);
    let env = Arc::new(env);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    for grant_id in grants.clone() {
        let (env, stop, tally) = (env.clone(), stop.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                // Every fetch finds the token expired, so every fetch refreshes (and rotates).
                env.vault.clock.advance(Duration::from_secs(3 * 3600));
                let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
                if status == StatusCode::OK {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    tally.failed.fetch_add(1, Ordering::SeqCst);
                    failures.push(format!("{status} {body}"));
                }
            }
            failures
        }));
    }
    let rotations = 4;
    for _ in 0..rotations {
        env.vault.vault.rotate_keys().await.expect("rotation completes");
    }
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let ok = tally.ok.load(Ordering::SeqCst);
    eprintln!(
        "rotation under load: {rotations} rotations, {} grants, {ok} fetches ok, {} failed",
        grants.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fetches failed: {:?}",
        failures.len(),
        ok + failures.len() as u64,
        &failures[..failures.len().min(5)]
    );
    assert!(ok >= grants.len() as u64 * 2, "the load refreshed every grant several times ({ok} fetches)");
    for grant_id in &grants {
        let grant = env.grant(grant_id).await;
        assert_eq!(grant["status"], "active", "grant lost: {grant}");
        env.vault.clock.advance(Duration::from_secs(3 * 3600));
        let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        assert_eq!(status, StatusCode::OK, "still refreshable after the rotations: {body}");
    }
    let rejected: Vec<_> = [Provider::Zoom, Provider::DialpadProduction]
        .into_iter()
        .flat_map(|p| env.fakes.control().token_requests(p))
        .filter(|r| r.grant_type == "refresh_token" && r.outcome_status != 200)
        .collect();
    assert!(rejected.is_empty(), "no refresh was ever rejected: {} were", rejected.len());
}

/// Fetches a token; returns status, body and the Retry-After header.
async fn fetch_token(env: &ConnectEnv, grant_id: &str) -> (StatusCode, serde_json::Value, Option<String>) {
    let response = env
        .vault
        .http
        .post(env.vault.url(&format!("/v1/grants/{grant_id}/token")))
        .bearer_auth(&env.key)
        .send()
        .await
        .expect("the vault answers");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap_or(serde_json::Value::Null), retry_after)
}

mod database_connections_killed_mid_refresh {
    use super::*;

    #[tokio::test]
    async fn lose_no_grant_and_answer_only_503_while_down() {
        let Some(env) = ConnectEnv::start(tokenvault_testkit::Backend::Postgres).await else { return };
        env.configure_zoom().await;
        env.configure_dialpad("production", None).await;
        let mut grants = connect_many(&env, "zoom", Provider::Zoom, 3).await;
        grants.extend(connect_many(&env, "dialpad-production", Provider::DialpadProduction, 3).await);
        let env = Arc::new(env);
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut workers = Vec::new();
        for grant_id in grants.clone() {
            let (env, stop, tally) = (env.clone(), stop.clone(), tally.clone());
            workers.push(tokio::spawn(async move {
                let mut bad = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    env.vault.clock.advance(Duration::from_secs(3 * 3600));
                    let (status, body, retry_after) = fetch_token(&env, &grant_id).await;
                    match status {
                        StatusCode::OK => {
                            tally.ok.fetch_add(1, Ordering::SeqCst);
                        }
                        StatusCode::SERVICE_UNAVAILABLE if retry_after.is_some() => {
                            tally.failed.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => bad.push(format!("{status} {body} retry-after={retry_after:?}")),
                    }
                }
                bad
            }));
        }
        let kills = 6;
        let mut cut = 0;
        for _ in 0..kills {
            // Let the load get going again before each cut (progress, not time).
            let before = tally.ok.load(Ordering::SeqCst);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while tally.ok.load(Ordering::SeqCst) < before + 10 {
                assert!(std::time::Instant::now() < deadline, "the load made no progress after a cut");
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            cut += env.vault.database().terminate_connections().await;
        }
        stop.store(true, Ordering::SeqCst);
        let mut bad = Vec::new();
        for worker in workers {
            bad.extend(worker.await.unwrap());
        }
        let (ok, unavailable) = (tally.ok.load(Ordering::SeqCst), tally.failed.load(Ordering::SeqCst));
        eprintln!(
            "connection kills: {kills} cuts ({cut} connections), {} grants, {ok} fetches ok, {unavailable} answered 503, {} other",
            grants.len(),
            bad.len()
        );
        assert!(cut >= kills, "connections were really cut");
        assert!(bad.is_empty(), "only 200 or 503 with Retry-After: {:?}", &bad[..bad.len().min(5)]);
        for grant_id in &grants {
            let grant = env.grant(grant_id).await;
            assert_eq!(grant["status"], "active", "grant lost: {grant}");
            env.vault.clock.advance(Duration::from_secs(3 * 3600));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let (status, body, _) = fetch_token(&env, grant_id).await;
                if status == StatusCode::OK {
                    break;
                }
                // A result still being stored in the background answers 503 until it lands.
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
                assert!(std::time::Instant::now() < deadline, "grant {grant_id} never became usable: {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let rejected = [Provider::Zoom, Provider::DialpadProduction]
            .into_iter()
            .flat_map(|p| env.fakes.control().token_requests(p))
            .filter(|r| r.grant_type == "refresh_token" && r.outcome_status != 200)
            .count();
        assert_eq!(rejected, 0, "an old refresh token was sent again");
    }
}

/// The vault as a real process, killed with SIGKILL at random points of refreshes that the fake
/// slows down (before it acts on the refresh, or after it rotated but before it answers), and
/// started again on the same database each time.
mod killed_mid_refresh {
    use std::process::Child;

    use rand::Rng;
    use tokenvault_fakes::{Endpoint, Fault, Variant};

    use super::*;
    use crate::process::{spawn, tokenvault};
    use crate::support::ADMIN_TOKEN;

    const KILLS: usize = 10;

    fn start_node(env: &ConnectEnv) -> (Child, String) {
        let settings = &env.vault.settings;
        let mut command = tokenvault();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--refresh-interval-seconds", "0"])
            .args(["--refresh-lease-seconds", "1", "--webhook-interval-seconds", "0", "--allow-private-egress"])
            .arg("--data-dir")
            .arg(&settings.data_dir)
            .arg("--providers-dir")
            .arg(settings.providers_dir.as_ref().unwrap())
            .env("TOKENVAULT_DATABASE_URL", settings.database_url.as_ref().unwrap())
            .env("TOKENVAULT_ADMIN_TOKEN", ADMIN_TOKEN);
        if let Some(file) = &settings.master_key_file {
            command.arg("--master-key-file").arg(file);
        }
        let (child, base, _, _) = spawn(command);
        (child, base)
    }

    async fn token_at(
        http: &reqwest::Client,
        base: &str,
        key: &str,
        grant_id: &str,
    ) -> Option<(StatusCode, serde_json::Value)> {
        let response = http.post(format!("{base}/v1/grants/{grant_id}/token")).bearer_auth(key).send().await.ok()?;
        let status = response.status();
        Some((status, response.json().await.unwrap_or_default()))
    }

    async fn run(backend: tokenvault_testkit::Backend, grace: bool) {
        let Some(mut env) = ConnectEnv::start(backend).await else { return };
        env.configure_zoom().await;
        env.configure_dialpad("production", None).await;
        let control = env.fakes.control();
        for provider in [Provider::Zoom, Provider::DialpadProduction] {
            // Tokens that are always due, so every fetch refreshes (and rotates).
            control.set_variant(Variant::AccessTokenLifetime { provider, seconds: Some(2) });
            if grace {
                control.set_variant(Variant::RefreshGraceSeconds { provider, seconds: 3600 });
            }
        }
        let zoom = connect_many(&env, "zoom", Provider::Zoom, 4).await;
        let dialpad = connect_many(&env, "dialpad-production", Provider::DialpadProduction, 4).await;
        let grants: Vec<String> = zoom.iter().chain(&dialpad).cloned().collect();
        env.vault.stop().await;
        if grace {
            // The operator declares the provider's documented grace in an override.
            let dir = env.vault.settings.providers_dir.clone().unwrap();
            for file in ["zoom.toml", "dialpad.toml"] {
                let path = dir.join(file);
                let mut text = std::fs::read_to_string(&path).unwrap();
                text.push_str(if text.contains("[token]") { "" } else { "[token]\n" });
                text.push_str("rotation_grace_seconds = 3600\n");
                std::fs::write(path, text).unwrap();
            }
        }
        let http = reqwest::Client::new();
        let mut rng = rand::thread_rng();
        // The last status each grant answered with: a provider whose grants all need
        // re-authorization sends no more refreshes to slow down.
        let last = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, StatusCode>::new()));
        let mut kills = 0;
        for round in 0..KILLS * 2 {
            if kills == KILLS {
                break;
            }
            let alive = |ids: &[String]| {
                let last = last.lock().unwrap();
                ids.iter().any(|id| last.get(id).is_none_or(|s| *s != StatusCode::CONFLICT))
            };
            let provider = match (round % 2 == 0 && alive(&zoom), alive(&dialpad), alive(&zoom)) {
                (true, _, _) => Provider::Zoom,
                (false, true, _) => Provider::DialpadProduction,
                (false, false, true) => Provider::Zoom,
                (false, false, false) => break,
            };
            let (mut node, base) = start_node(&env);
            let slow = Duration::from_millis(400);
            let fault = if kills % 4 < 2 { Fault::Latency(slow) } else { Fault::LatencyAfterCommit(slow) };
            let before = control.calls(provider, Endpoint::Token);
            control.inject(provider, Endpoint::Token, fault, 1);
            let stop = Arc::new(AtomicBool::new(false));
            let mut load = Vec::new();
            for grant_id in grants.clone() {
                let (http, base, key, stop, last) =
                    (http.clone(), base.clone(), env.key.clone(), stop.clone(), last.clone());
                load.push(tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let Some((status, _)) = token_at(&http, &base, &key, &grant_id).await else { break };
                        last.lock().unwrap().insert(grant_id.clone(), status);
                    }
                }));
            }
            // The slowed refresh has reached the provider: kill at a random point of it.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while control.calls(provider, Endpoint::Token) == before && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if control.calls(provider, Endpoint::Token) > before {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..350))).await;
                kills += 1;
            }
            node.kill().unwrap();
            node.wait().unwrap();
            stop.store(true, Ordering::SeqCst);
            for task in load {
                task.await.unwrap();
            }
            control.clear_faults();
        }
        // After the last restart: every grant is usable or says exactly why not.
        let (mut node, base) = start_node(&env);
        let (mut usable, mut reauth) = (0, 0);
        for grant_id in &grants {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let (status, body) = loop {
                let (status, body) = token_at(&http, &base, &env.key, grant_id).await.expect("the vault answers");
                // A dead holder's lease (1 s) may still block the grant for a moment.
                if status != StatusCode::SERVICE_UNAVAILABLE || std::time::Instant::now() > deadline {
                    break (status, body);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let grant: serde_json::Value = http
                .get(format!("{base}/v1/grants/{grant_id}"))
                .bearer_auth(&env.key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match status {
                StatusCode::OK => usable += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(grant["status"], "needs_reauth", "{grant}");
                    assert_eq!(grant["status_reason"], "refresh_response_lost", "the right reason: {grant}");
                    reauth += 1;
                }
                other => panic!("grant {grant_id} in no explicit state: {other} {body}"),
            }
        }
        crate::process::terminate(&mut node);
        eprintln!(
            "killed mid-refresh ({backend:?}, grace {grace}): {kills} kills, {} grants, {usable} usable, {reauth} needs_reauth (refresh_response_lost), 0 deleted",
            grants.len()
        );
        assert!(kills >= KILLS / 2, "the vault was killed mid-refresh {kills} times");
        if grace {
            assert_eq!(kills, KILLS);
            assert_eq!(usable, grants.len(), "with a rotation grace at the provider every grant survives");
        }
    }

    #[tokio::test]
    async fn sqlite_every_grant_usable_or_explicitly_needs_reauth() {
        run(tokenvault_testkit::Backend::Sqlite, false).await
    }

    #[tokio::test]
    async fn sqlite_with_rotation_grace_every_grant_usable() {
        run(tokenvault_testkit::Backend::Sqlite, true).await
    }

    #[tokio::test]
    async fn postgres_every_grant_usable_or_explicitly_needs_reauth() {
        run(tokenvault_testkit::Backend::Postgres, false).await
    }

    #[tokio::test]
    async fn postgres_with_rotation_grace_every_grant_usable() {
        run(tokenvault_testkit::Backend::Postgres, true).await
    }
}

async fn an_unwritable_audit_log_stops_token_retrieval_and_proxying_until_it_mends(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (status, _, _) = fetch_token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK);
    let database = env.vault.database();
    database.execute("ALTER TABLE audit_events RENAME TO audit_events_away").await;
    // The token is not handed out: its retrieval could not be recorded.
    let (status, body, retry_after) = fetch_token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(crate::support::assert_error_shape(status, &body), "audit_unavailable");
    assert!(retry_after.is_some());
    assert!(body.get("access_token").is_none());
    // Nor is a call proxied: the provider never hears of it.
    let calls = env.fakes.control().calls(Provider::Zoom, tokenvault_fakes::Endpoint::Api);
    let (status, body) = env.api(Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(crate::support::assert_error_shape(status, &body), "audit_unavailable");
    assert_eq!(env.fakes.control().calls(Provider::Zoom, tokenvault_fakes::Endpoint::Api), calls);
    // Mended: both work again, and the kept rows (the refused calls) are written.
    database.execute("ALTER TABLE audit_events_away RENAME TO audit_events").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = fetch_token(&env, &grant_id).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = env.api(Method::GET, &format!("/v1/proxy/{grant_id}/v2/users/me"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = env.api(Method::GET, &format!("/v1/audit?grant_id={grant_id}&limit=1000"), None).await;
    let rows = page["data"].as_array().unwrap();
    let count =
        |action: &str, outcome: &str| rows.iter().filter(|r| r["action"] == action && r["outcome"] == outcome).count();
    assert!(count("token.retrieved", "success") >= 2, "{page}");
    assert_eq!(count("proxy.request", "success"), 1, "{page}");
    assert!(count("proxy.request", "failure") >= 1, "the refused call was recorded once the log mended: {page}");
}
