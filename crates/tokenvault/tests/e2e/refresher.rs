//! Issue 4, item 4: the background refresher keeps idle grants alive, keeps its schedule in the
//! database across restarts, runs on its own when an interval is configured, and leaves
//! permanent (Aircall) grants alone.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenvault::Settings;
use tokenvault_fakes::{Provider, Variant};
use tokenvault_service::Timestamp;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::fake_peek::{advance_both, millis};

connect_tests!(
    idle_zoom_grant_is_refreshed_before_its_refresh_token_idles_out,
    refresh_schedule_survives_a_restart,
    background_loop_refreshes_due_grants_and_never_aircall,
);

const DAY: Duration = Duration::from_secs(86_400);
/// Zoom refresh tokens die after 90 days unused (provider-facts.md §2; the fake enforces it).
const ZOOM_IDLE_LIFETIME_MS: i64 = 90 * 86_400_000;

/// Stops the vault, changes its settings, and starts it again on the same database and data
/// directory (the fakes and the app's key carry over). Provider configurations created before
/// the restart keep the old redirect URI, so configure providers afterwards when connecting.
async fn restarted(env: ConnectEnv, change: impl FnOnce(&mut Settings)) -> ConnectEnv {
    let ConnectEnv { mut vault, fakes, key } = env;
    change(&mut vault.settings);
    ConnectEnv { vault: vault.restart().await, fakes, key }
}

fn refreshes(env: &ConnectEnv, provider: Provider) -> Vec<tokenvault_fakes::TokenRequestLog> {
    env.fakes.control().token_requests(provider).into_iter().filter(|r| r.grant_type == "refresh_token").collect()
}

fn now_ms(env: &ConnectEnv) -> i64 {
    env.vault.clock_now_seconds() * 1000
}

/// Polls the grant over the API until `done` holds; the background loop is a separate task, so
/// its effect can only be observed, not awaited. The deadline is generous: it catches a loop that
/// never runs, it does not measure speed.
async fn wait_for_grant(env: &ConnectEnv, grant_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let grant = env.grant(grant_id).await;
        if done(&grant) {
            return grant;
        }
        assert!(Instant::now() < deadline, "the background refresher did not {what} within 30 s: {grant}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Zoom's shipped definition caps access tokens at an hour, so the expiry schedule alone would
/// refresh every hour. Here tokens last a year (fake variant plus a catalog override of the cap):
/// only the keep-alive schedule can save the grant from Zoom's 90-day refresh-token idle limit.
async fn idle_zoom_grant_is_refreshed_before_its_refresh_token_idles_out(env: ConnectEnv) {
    let zoom_override = env.vault.settings.providers_dir.clone().unwrap().join("zoom.toml");
    let mut toml = std::fs::read_to_string(&zoom_override).unwrap();
    toml.push_str("[token]\nmax_lifetime_seconds = 40000000\n");
    std::fs::write(&zoom_override, toml).unwrap();
    let env = restarted(env, |_| {}).await;
    env.configure_zoom().await;
    env.fakes
        .control()
        .set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(31_536_000) });
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let grant = env.grant(&grant_id).await;
    let connected_at = millis(&grant, "connected_at").unwrap();
    assert!(millis(&grant, "expires_at").unwrap() - connected_at > 300 * DAY.as_millis() as i64, "{grant}");
    let first = millis(&grant, "next_refresh_at").unwrap();
    assert!(first - connected_at < ZOOM_IDLE_LIFETIME_MS, "scheduled within the idle lifetime: {grant}");

    // Nobody uses the grant for 200 days; only the refresher touches it, once a day.
    for day in 1..=200 {
        advance_both(&env, DAY);
        let report = env.vault.vault.refresh_due_grants(100).await.unwrap();
        assert_eq!(report.failed + report.retry_later + report.needs_reauth, 0, "day {day}: {report:?}");
        let grant = env.grant(&grant_id).await;
        assert_eq!(grant["status"], "active", "day {day}: {grant}");
        let last_exchange = millis(&grant, "refreshed_at").unwrap_or(connected_at);
        assert!(
            now_ms(&env) - last_exchange < ZOOM_IDLE_LIFETIME_MS,
            "day {day}: the refresh token went past its idle deadline: {grant}"
        );
        let next = millis(&grant, "next_refresh_at").expect("an idle Zoom grant stays scheduled");
        assert!(next - last_exchange < ZOOM_IDLE_LIFETIME_MS, "day {day}: scheduled too late: {grant}");
    }

    // Refreshed for idleness (a few times), not every day, and Zoom accepted every refresh.
    let log = refreshes(&env, Provider::Zoom);
    assert!((2..=8).contains(&log.len()), "{} refreshes in 200 days", log.len());
    assert!(log.iter().all(|r| r.outcome_status == 200), "{log:?}");
    let mut previous = log[0].at;
    for refresh in &log[1..] {
        assert!(refresh.at - previous < 90 * 86_400, "gap between refreshes at the fake: {log:?}");
        previous = refresh.at;
    }
    // The grant still works at Zoom after 200 idle days.
    let (status, verified) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/verify"), None).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["status"], "active");
}

async fn refresh_schedule_survives_a_restart(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let before = env.grant(&grant_id).await;
    let due_at = millis(&before, "next_refresh_at").expect("a Zoom grant is scheduled");
    assert!(before["refreshed_at"].is_null(), "{before}");

    // A new process knows nothing in memory: its clock restarts from the wall clock.
    let env = restarted(env, |_| {}).await;
    assert_eq!(env.vault.vault.refresh_due_grants(100).await.unwrap().due, 0, "not due yet");
    env.vault.clock.set(Timestamp::from_millis(due_at + 1000));
    let report = env.vault.vault.refresh_due_grants(100).await.unwrap();
    assert_eq!((report.due, report.refreshed), (1, 1), "{report:?}");

    let after = env.grant(&grant_id).await;
    assert_eq!(after["status"], "active");
    assert!(millis(&after, "refreshed_at").is_some(), "{after}");
    assert!(millis(&after, "expires_at") > millis(&before, "expires_at"), "{after}");
    assert!(millis(&after, "next_refresh_at").unwrap() > due_at, "rescheduled: {after}");
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome_status, 200);
}

/// The real loop, started by `Application::run_until` because `refresh.interval` is set.
async fn background_loop_refreshes_due_grants_and_never_aircall(env: ConnectEnv) {
    let env = restarted(env, |settings| settings.refresh.interval = Some(Duration::from_millis(50))).await;
    env.configure_zoom().await;
    env.configure_aircall().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let aircall = env.connect_ok("user-2", "aircall").await;
    let aircall_before = env.grant(&aircall).await;
    assert!(aircall_before["expires_at"].is_null() && aircall_before["next_refresh_at"].is_null());
    let before = env.grant(&zoom).await;
    let expires_at = millis(&before, "expires_at").unwrap();
    assert!(refreshes(&env, Provider::Zoom).is_empty(), "nothing is due at connect");

    // Past expiry minus the refresh lead: the loop notices on its own.
    env.vault.clock.set(Timestamp::from_millis(expires_at - 60_000));
    let first = wait_for_grant(&env, &zoom, "refresh the Zoom grant", |g| !g["refreshed_at"].is_null()).await;
    assert_eq!(first["status"], "active");
    assert!(millis(&first, "expires_at").unwrap() > expires_at, "{first}");
    assert_eq!(refreshes(&env, Provider::Zoom).len(), 1, "one refresh per due time");

    // A year later the loop refreshes Zoom again; Aircall's permanent token is never refreshed.
    env.vault.clock.advance(365 * DAY);
    let refreshed_at = first["refreshed_at"].clone();
    wait_for_grant(&env, &zoom, "refresh the Zoom grant again", |g| g["refreshed_at"] != refreshed_at).await;
    assert!(refreshes(&env, Provider::Aircall).is_empty(), "Aircall grants are never refreshed");
    let aircall_after = env.grant(&aircall).await;
    assert_eq!(aircall_after["status"], "active");
    assert!(aircall_after["next_refresh_at"].is_null() && aircall_after["refreshed_at"].is_null(), "{aircall_after}");
    assert_eq!(aircall_after["updated_at"], aircall_before["updated_at"], "the refresher never touched it");
    assert!(refreshes(&env, Provider::Zoom).iter().all(|r| r.outcome_status == 200));
}
