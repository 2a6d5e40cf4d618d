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

connect_tests!(key_rotation_under_refresh_load_loses_no_grant);

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
