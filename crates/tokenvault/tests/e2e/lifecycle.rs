//! Issue 4: fresh tokens, refresh that never loses a rotating token, revoke, re-authorize.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenvault_fakes::{Endpoint, ExpiresInMode, Fault, Provider, Variant};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    fresh_token_is_served_without_refresh,
    quirk_10_expired_zoom_token_is_refreshed_and_the_rotation_persisted,
    concurrent_token_requests_share_one_refresh,
    quirk_01_dialpad_refresh_expires_in_seconds_epoch_past_and_absurd,
    quirk_04_unrefreshable_grant_needs_reauth_at_expiry,
    quirk_08_dialpad_disconnect_deauthorizes_with_the_access_token,
    quirk_11_zoom_lost_refresh_response_is_retried_once_then_needs_reauth,
    quirk_18_zoom_disconnect_revokes_and_already_invalid_counts_as_done,
    quirk_22_aircall_is_never_scheduled_and_a_401_means_reauth,
    quirk_24_aircall_disconnect_failure_keeps_tokens_and_can_be_retried,
    quirk_30_invalid_grant_marks_needs_reauth_without_retry_storm,
    quirk_30_transient_failures_back_off_honour_retry_after_and_keep_the_grant,
    quirk_30_insufficient_scope_403_is_not_expiry,
    quirk_30_non_rotating_provider_lost_connections_are_plain_transient_errors,
    quirk_11_zoom_response_lost_twice_never_sends_the_old_token_a_third_time,
    quirk_11_a_send_left_in_doubt_by_a_dead_holder_counts_against_the_budget,
    background_refresher_refreshes_a_thousand_grants_before_expiry,
    grants_api_lists_filters_and_isolates_apps,
    tokens_shorter_lived_than_the_margin_are_refreshed_once_per_half_lifetime,
);

async fn tokens_shorter_lived_than_the_margin_are_refreshed_once_per_half_lifetime(env: ConnectEnv) {
    // 60 s tokens against the default 120 s margin: before, every call and every refresher pass
    // refreshed (and rotated) them.
    env.fakes.control().set_variant(Variant::AccessTokenLifetime { provider: Provider::Zoom, seconds: Some(60) });
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    for second in 1..=120 {
        env.vault.clock.advance(Duration::from_secs(1));
        let (status, body) = token(&env, &grant_id).await;
        assert_eq!(status, StatusCode::OK, "at {second} s: {body}");
        env.vault.vault.refresh_due_grants(100).await.unwrap();
        let expected_at_most = second / 30;
        let done = refreshes(&env, Provider::Zoom).len() as i64;
        assert!(done <= expected_at_most, "{done} refreshes after {second} s: at most one per half-lifetime");
    }
    assert!(refreshes(&env, Provider::Zoom).len() >= 2, "the token was kept fresh all along");
}

async fn token(env: &ConnectEnv, grant_id: &str) -> (StatusCode, Value) {
    env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await
}

fn refreshes(env: &ConnectEnv, provider: Provider) -> Vec<tokenvault_fakes::TokenRequestLog> {
    env.fakes.control().token_requests(provider).into_iter().filter(|r| r.grant_type == "refresh_token").collect()
}

async fn fresh_token_is_served_without_refresh(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert!(env.fakes.control().is_access_token_active(Provider::Zoom, access));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["api_base_url"], env.fakes.urls().zoom_api.as_str());
    assert_eq!(body["scopes"], serde_json::json!(["user:read:user", "meeting:read:meeting"]));
    assert!(refreshes(&env, Provider::Zoom).is_empty());
}

async fn quirk_10_expired_zoom_token_is_refreshed_and_the_rotation_persisted(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, before) = token(&env, &grant_id).await;
    let old_refresh = env.fakes.control().token_requests(Provider::Zoom)[0].clone();
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, after) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_ne!(after["access_token"], before["access_token"]);
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].client_auth, "basic");
    // The old refresh token is dead at Zoom; the vault holds the new one and uses it next time.
    let used = log[0].refresh_token.clone().unwrap();
    assert!(!env.fakes.control().is_refresh_token_active(Provider::Zoom, &used));
    let _ = old_refresh;
    let (_, again) = token(&env, &grant_id).await;
    assert_eq!(again["access_token"], after["access_token"], "no second refresh while fresh");
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, third) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 2);
    assert_ne!(log[1].refresh_token, log[0].refresh_token, "the rotated token was persisted and used");
    assert_eq!(log[1].outcome_status, 200);
    assert_eq!(env.grant(&grant_id).await["status"], "active");
}

async fn concurrent_token_requests_share_one_refresh(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    env.vault.clock.advance(Duration::from_secs(3600));
    let env = std::sync::Arc::new(env);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let env = env.clone();
        let grant_id = grant_id.clone();
        tasks.push(tokio::spawn(async move { token(&env, &grant_id).await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller got the same new token");
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 1, "exactly one refresh reached the provider");
    let used = log[0].refresh_token.clone().unwrap();
    assert_eq!(
        env.fakes
            .control()
            .token_requests(Provider::Zoom)
            .iter()
            .filter(|r| r.refresh_token.as_deref() == Some(used.as_str()))
            .count(),
        1
    );
}

fn expires_at_seconds(grant: &Value) -> i64 {
    time::OffsetDateTime::parse(grant["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

async fn quirk_01_dialpad_refresh_expires_in_seconds_epoch_past_and_absurd(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let control = env.fakes.control();
    let refresh_with = async |variant: Option<Variant>, raw: Option<i64>| {
        if let Some(v) = variant {
            control.set_variant(v);
        }
        control.dialpad_expires_in_raw(raw);
        env.vault.clock.advance(Duration::from_secs(2 * 86_400));
        let (status, body) = token(&env, &grant_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (env.vault.clock_now_seconds(), expires_at_seconds(&env.grant(&grant_id).await))
    };
    let (now, at) = refresh_with(Some(Variant::DialpadExpiresIn(ExpiresInMode::Seconds)), None).await;
    assert_eq!(at - now, 3600, "seconds: now + 3600");
    let epoch = env.vault.clock_now_seconds() + 2 * 86_400 + 1800;
    let (_, at) = refresh_with(None, Some(epoch)).await;
    assert_eq!(at, epoch, "an epoch is that instant");
    let (now, at) = refresh_with(None, Some(1_680_047_149)).await;
    assert_eq!(at, now, "an epoch in the past is due at once");
    let (now, at) = refresh_with(None, Some(epoch + 50 * 365 * 86_400)).await;
    assert_eq!(at - now, 86_400, "an absurd value is capped at 24 h");
}

async fn quirk_04_unrefreshable_grant_needs_reauth_at_expiry(env: ConnectEnv) {
    env.configure_dialpad("production", Some(vec!["calls:list"])).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    env.vault.clock.advance(Duration::from_secs(3601));
    let report = env.vault.vault.refresh_due_grants(100).await.unwrap();
    assert_eq!(report.needs_reauth, 1, "{report:?}");
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "needs_reauth");
    assert_eq!(grant["status_reason"], "expired_without_refresh_token");
    assert!(refreshes(&env, Provider::DialpadProduction).is_empty());
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(assert_error_shape(status, &body), "grant_needs_reauth");
    // Not retried in a loop.
    env.vault.clock.advance(Duration::from_secs(3600));
    assert_eq!(env.vault.vault.refresh_due_grants(100).await.unwrap().due, 0);
}

async fn quirk_08_dialpad_disconnect_deauthorizes_with_the_access_token(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let (_, tokens) = token(&env, &grant_id).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = crate::fake_peek::current_refresh_token(
        &env,
        &grant_id,
        Provider::DialpadProduction,
        tokenvault_fakes::Host::DialpadProduction,
    )
    .await;
    let control = env.fakes.control();
    assert!(control.is_access_token_active(Provider::DialpadProduction, &access));
    assert!(control.is_refresh_token_active(Provider::DialpadProduction, &refresh));
    let (status, grant) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    assert_eq!(grant["refreshable"], false, "tokens erased");
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Revoke), 1);
    // An empty body with the Bearer access token; the 204 counts as done.
    let deauthorize = control
        .requests(tokenvault_fakes::Host::DialpadProduction)
        .into_iter()
        .find(|r| r.path == "/oauth2/deauthorize")
        .unwrap();
    assert_eq!(deauthorize.method, "POST");
    assert_eq!(deauthorize.header("authorization"), Some(format!("Bearer {access}").as_str()));
    assert!(deauthorize.body.is_empty());
    // Dialpad now rejects both tokens.
    assert!(!control.is_access_token_active(Provider::DialpadProduction, &access));
    assert!(!control.is_refresh_token_active(Provider::DialpadProduction, &refresh));
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(assert_error_shape(status, &body), "grant_revoked");
    // Idempotent: a second delete is fine and calls nobody.
    let (status, _) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Revoke), 1);
}

async fn quirk_11_zoom_lost_refresh_response_is_retried_once_then_needs_reauth(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    env.vault.clock.advance(Duration::from_secs(3600));
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, Fault::DropAfterCommit, 1);
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(assert_error_shape(status, &body), "grant_needs_reauth");
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 2, "the old refresh token was sent twice at most");
    assert_eq!(log[0].refresh_token, log[1].refresh_token);
    assert_eq!(log[1].outcome_status, 400);
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "needs_reauth");
    assert_eq!(grant["status_reason"], "refresh_response_lost");
    // Reconnecting the same account revives the same grant.
    assert_eq!(env.connect_ok("user-1", "zoom").await, grant_id);
    assert_eq!(env.grant(&grant_id).await["status"], "active");
}

async fn quirk_11_zoom_response_lost_twice_never_sends_the_old_token_a_third_time(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    env.vault.clock.advance(Duration::from_secs(3600));
    // The original request and its one retry both lose their answers (Zoom rotated on the first).
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, Fault::DropAfterCommit, 2);
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(assert_error_shape(status, &body), "grant_needs_reauth");
    // Later callers and background passes never send the old token a third time.
    env.vault.clock.advance(Duration::from_secs(3 * 3600));
    let (status, _) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::CONFLICT);
    env.vault.vault.refresh_due_grants(100).await.unwrap();
    let log = refreshes(&env, Provider::Zoom);
    assert_eq!(log.len(), 2, "original + one retry, never more");
    assert_eq!(log[0].refresh_token, log[1].refresh_token);
    let (status, grant) = env.api(Method::GET, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "the grant is kept: {grant}");
    assert_eq!(grant["status"], "needs_reauth");
    assert_eq!(grant["status_reason"], "refresh_response_lost");
}

async fn quirk_11_a_send_left_in_doubt_by_a_dead_holder_counts_against_the_budget(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    // Another instance took the lease, recorded its send and died before hearing the answer.
    let store = tokenvault_store::Store::connect(env.vault.settings.database_url.as_deref().unwrap()).await.unwrap();
    let now = env.vault.clock_now_seconds() * 1000;
    assert!(store.try_acquire_refresh_lease(&grant_id, "vault-dead", now, now + 30_000).await.unwrap());
    let generation = store.find_grant(&grant_id).await.unwrap().token_generation;
    let hold = tokenvault_store::RefreshHold { owner: "vault-dead", generation };
    assert!(store.record_refresh_send(&grant_id, hold, 1, None, now).await.unwrap());
    // After the lease ran out this vault may send the token once, and that answer is lost too.
    env.vault.clock.advance(Duration::from_secs(3600));
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, Fault::DropAfterCommit, 1);
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(refreshes(&env, Provider::Zoom).len(), 1, "only the one retry left in the budget was sent");
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status_reason"], "refresh_response_lost");
    // Reconnecting stores a new refresh token with a clean slate.
    assert_eq!(env.connect_ok("user-1", "zoom").await, grant_id);
    assert_eq!(store.find_grant(&grant_id).await.unwrap().refresh_sends_in_doubt, 0);
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    store.close().await;
}

async fn quirk_18_zoom_disconnect_revokes_and_already_invalid_counts_as_done(env: ConnectEnv) {
    env.configure_zoom().await;
    let first = env.connect_ok("user-1", "zoom").await;
    let (status, grant) = env.api(Method::DELETE, &format!("/v1/grants/{first}"), None).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    assert!(env.fakes.control().calls(Provider::Zoom, Endpoint::Revoke) >= 1);
    // The user already removed the app at Zoom: revocation of dead tokens still completes.
    let second = env.connect_ok("user-2", "zoom").await;
    let zoe = tokenvault_fakes::FakeUser::default_for(Provider::Zoom);
    env.fakes.control().revoke_all_for_user(Provider::Zoom, &zoe.id);
    let (status, grant) = env.api(Method::DELETE, &format!("/v1/grants/{second}"), None).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
}

async fn quirk_22_aircall_is_never_scheduled_and_a_401_means_reauth(env: ConnectEnv) {
    env.configure_aircall().await;
    let grant_id = env.connect_ok("user-1", "aircall").await;
    let grant = env.grant(&grant_id).await;
    assert!(grant["expires_at"].is_null(), "a permanent token: {grant}");
    assert!(grant["next_refresh_at"].is_null(), "never scheduled: {grant}");
    assert_eq!(grant["refreshable"], false, "{grant}");
    let (_, first) = token(&env, &grant_id).await;
    assert!(first["expires_at"].is_null(), "{first}");
    env.vault.clock.advance(Duration::from_secs(365 * 86_400));
    assert_eq!(env.vault.vault.refresh_due_grants(100).await.unwrap().due, 0);
    let (status, later) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "a permanent token is served a year later");
    assert_eq!(later["access_token"], first["access_token"], "the same token, never refreshed");
    assert!(refreshes(&env, Provider::Aircall).is_empty());
    assert!(env.grant(&grant_id).await["next_refresh_at"].is_null());
    let (status, verified) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/verify"), None).await;
    assert_eq!((status, verified["status"].as_str()), (StatusCode::OK, Some("active")));
    // The admin uninstalls the app in Aircall: the API answers 401.
    env.fakes
        .control()
        .revoke_all_for_user(Provider::Aircall, &tokenvault_fakes::FakeUser::default_for(Provider::Aircall).id);
    let (_, verified) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/verify"), None).await;
    assert_eq!(verified["status"], "needs_reauth");
    assert_eq!(verified["status_reason"], "provider_rejected_token");
}

async fn quirk_24_aircall_disconnect_failure_keeps_tokens_and_can_be_retried(env: ConnectEnv) {
    env.configure_aircall().await;
    let grant_id = env.connect_ok("user-1", "aircall").await;
    env.fakes.control().inject(
        Provider::Aircall,
        Endpoint::Disable,
        Fault::Status { status: 503, body: "{}".into(), retry_after: None },
        1,
    );
    let (status, body) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "revoke_failed");
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "revoke_failed");
    // Tokens are kept: the retry can still authenticate to Aircall.
    let (status, grant) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    assert_eq!(env.fakes.control().calls(Provider::Aircall, Endpoint::Disable), 2);
}

async fn quirk_30_invalid_grant_marks_needs_reauth_without_retry_storm(env: ConnectEnv) {
    env.configure_generic("generic-secret").await;
    let grant_id = env.connect_ok("user-1", "generic").await;
    env.fakes.control().inject(
        Provider::Generic,
        Endpoint::Token,
        Fault::Status {
            status: 400,
            body: r#"{"error":"invalid_grant","error_description":"revoked"}"#.into(),
            retry_after: None,
        },
        10,
    );
    env.vault.clock.advance(Duration::from_secs(3600));
    for _ in 0..3 {
        let (status, body) = token(&env, &grant_id).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
    env.vault.vault.refresh_due_grants(100).await.unwrap();
    // One exchange at connect, then exactly one refresh attempt (answered by the injected fault).
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::Token), 2, "one attempt, no storm");
    assert_eq!(env.grant(&grant_id).await["status_reason"], "refresh_token_rejected");
}

async fn quirk_30_transient_failures_back_off_honour_retry_after_and_keep_the_grant(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    env.vault.clock.advance(Duration::from_secs(3600));
    env.fakes.control().inject(
        Provider::Zoom,
        Endpoint::Token,
        Fault::Status { status: 429, body: "{}".into(), retry_after: Some(120) },
        1,
    );
    let (status, body) = env
        .vault
        .http
        .post(env.vault.url(&format!("/v1/grants/{grant_id}/token")))
        .bearer_auth(&env.key)
        .send()
        .await
        .map(|r| {
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status(), retry)
        })
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.unwrap() >= 119, "Retry-After honours the provider's: {body:?}");
    // Before retry_at, nobody hits the provider again.
    for _ in 0..3 {
        let (status, _) = token(&env, &grant_id).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    env.vault.vault.refresh_due_grants(100).await.unwrap();
    assert_eq!(env.fakes.control().calls(Provider::Zoom, Endpoint::Token), 2, "exchange + one refresh attempt");
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["last_error"], "provider_unavailable");
    // A 5xx then a network failure: still not dead.
    env.vault.clock.advance(Duration::from_secs(121));
    env.fakes.control().inject(
        Provider::Zoom,
        Endpoint::Token,
        Fault::Status { status: 502, body: "bad gateway".into(), retry_after: None },
        1,
    );
    let (status, _) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Once the provider is back, the grant refreshes normally.
    env.vault.clock.advance(Duration::from_secs(20 * 60));
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let grant = env.grant(&grant_id).await;
    assert!(grant.get("last_error").is_none_or(Value::is_null), "{grant}");
    // A single lost connection (nothing processed) is absorbed by the one retry.
    env.vault.clock.advance(Duration::from_secs(3600));
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, Fault::DropConnection, 1);
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn background_refresher_refreshes_a_thousand_grants_before_expiry(env: ConnectEnv) {
    const GRANTS: usize = 1000;
    env.configure_dialpad("production", None).await;
    let control = env.fakes.control();
    // Lifetimes spread over the next hour.
    let env = std::sync::Arc::new(env);
    for batch in 0..(GRANTS / 50) {
        control.set_variant(Variant::AccessTokenLifetime {
            provider: Provider::DialpadProduction,
            seconds: Some(60 + batch as u64 * 175),
        });
        let mut tasks = Vec::new();
        for i in 0..50 {
            let env = env.clone();
            tasks.push(tokio::spawn(async move {
                env.connect_ok(&format!("user-{batch}-{i}"), "dialpad-production").await
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
    control.set_variant(Variant::AccessTokenLifetime { provider: Provider::DialpadProduction, seconds: Some(3600) });
    let mut refreshed = 0;
    for _ in 0..(60 * 2) {
        env.vault.clock.advance(Duration::from_secs(30));
        let report = env.vault.vault.refresh_due_grants(2000).await.unwrap();
        refreshed += report.refreshed;
        assert_eq!(report.failed + report.retry_later + report.needs_reauth, 0, "{report:?}");
        assert!(report.max_concurrency_seen <= 4, "concurrency bound: {report:?}");
        // No grant is ever past its expiry.
        let now = env.vault.clock_now_seconds();
        let expired = count_expired(&env, now).await;
        assert_eq!(expired, 0, "grants expired unrefreshed at t+{}s", now);
    }
    assert!(refreshed >= GRANTS, "every grant refreshed at least once: {refreshed}");
    assert!(refreshes(&env, Provider::DialpadProduction).len() >= GRANTS);
}

async fn count_expired(env: &ConnectEnv, now: i64) -> usize {
    let mut expired = 0;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/grants?limit=200&after={a}"),
            None => "/v1/grants?limit=200".into(),
        };
        let (_, page) = env.api(Method::GET, &path, None).await;
        for grant in page["data"].as_array().unwrap() {
            if grant["status"] != "active" || expires_at_seconds(grant) <= now {
                expired += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return expired,
        }
    }
}

async fn grants_api_lists_filters_and_isolates_apps(env: ConnectEnv) {
    env.configure_zoom().await;
    env.configure_aircall().await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let aircall = env.connect_ok("user-2", "aircall").await;
    let (_, page) = env.api(Method::GET, "/v1/grants?provider=aircall", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], aircall.as_str());
    let (_, page) = env.api(Method::GET, "/v1/grants?end_user_id=user-1&status=active", None).await;
    assert_eq!(page["data"][0]["id"], zoom.as_str());
    let (_, page) = env.api(Method::GET, "/v1/grants?limit=1", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = env.api(Method::GET, &format!("/v1/grants?limit=1&after={cursor}"), None).await;
    assert_eq!(page["data"][0]["id"], aircall.as_str());
    let (status, body) = env.api(Method::GET, "/v1/grants?status=weird", None).await;
    assert_eq!(assert_error_shape(status, &body), "invalid_status");
    // Another app sees nothing, cannot fetch a token, cannot disconnect.
    let (_, other) = env.vault.new_app("other").await;
    for (method, path) in [
        (Method::GET, format!("/v1/grants/{zoom}")),
        (Method::POST, format!("/v1/grants/{zoom}/token")),
        (Method::DELETE, format!("/v1/grants/{zoom}")),
    ] {
        let (status, _) = env.vault.call(method, &path, Some(&other), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, page) = env.vault.call(Method::GET, "/v1/grants", Some(&other), None).await;
    assert!(page["data"].as_array().unwrap().is_empty());
    assert_eq!(env.grant(&zoom).await["status"], "active");
}

async fn quirk_30_insufficient_scope_403_is_not_expiry(env: ConnectEnv) {
    env.configure_generic("generic-secret").await;
    let grant_id = env.connect_ok("user-1", "generic").await;
    env.fakes.control().inject(
        Provider::Generic,
        Endpoint::UserInfo,
        Fault::Status { status: 403, body: r#"{"error":"insufficient_scope"}"#.into(), retry_after: None },
        1,
    );
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/verify"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(assert_error_shape(status, &body), "provider_forbidden");
    assert_eq!(env.grant(&grant_id).await["status"], "active");
    assert!(refreshes(&env, Provider::Generic).is_empty(), "a 403 does not trigger a refresh");
}

async fn quirk_30_non_rotating_provider_lost_connections_are_plain_transient_errors(env: ConnectEnv) {
    // A provider that does not rotate refresh tokens loses nothing when an answer is lost: the
    // grant backs off and the same refresh token is simply sent again later.
    env.configure_generic("generic-secret").await;
    let grant_id = env.connect_ok("user-1", "generic").await;
    env.fakes.control().inject(Provider::Generic, Endpoint::Token, Fault::DropConnection, 2);
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        env.fakes.control().calls(Provider::Generic, Endpoint::Token),
        2,
        "exchange + one refresh, no instant retry"
    );
    env.vault.clock.advance(Duration::from_secs(20 * 60));
    let (status, _) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let grant = env.grant(&grant_id).await;
    assert_eq!((grant["status"].as_str(), grant["last_error"].as_str()), (Some("active"), Some("response_lost")));
    env.vault.clock.advance(Duration::from_secs(20 * 60));
    let (status, body) = token(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "a third send of the same token is fine here: {body}");
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::Token), 4);
}

/// Run with a one-second lease, so a three-second provider call outlasts it several times over.
mod lease_is_renewed_while_the_provider_is_slow {
    use super::*;

    async fn env(backend: tokenvault_testkit::Backend) -> Option<ConnectEnv> {
        ConnectEnv::start_adjusted(backend, None, |s| s.refresh.lease = Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn sqlite() {
        if let Some(env) = env(tokenvault_testkit::Backend::Sqlite).await {
            super::lease_is_renewed_while_the_provider_is_slow(env).await
        }
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(env) = env(tokenvault_testkit::Backend::Postgres).await {
            super::lease_is_renewed_while_the_provider_is_slow(env).await
        }
    }
}

/// Polls the grant row until `check` holds (the heartbeat is a background task).
async fn wait_for_grant(
    store: &tokenvault_store::Store,
    grant_id: &str,
    what: &str,
    check: impl Fn(&tokenvault_store::GrantRecord) -> bool,
) -> tokenvault_store::GrantRecord {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let grant = store.find_grant(grant_id).await.unwrap();
        if check(&grant) {
            return grant;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lease_is_renewed_while_the_provider_is_slow(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let store = tokenvault_store::Store::connect(env.vault.settings.database_url.as_deref().unwrap()).await.unwrap();
    env.vault.clock.advance(Duration::from_secs(3600));
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, Fault::Latency(Duration::from_secs(3)), 1);
    let env = std::sync::Arc::new(env);
    let caller = tokio::spawn({
        let (env, grant_id) = (env.clone(), grant_id.clone());
        async move { token(&env, &grant_id).await }
    });
    let held = wait_for_grant(&store, &grant_id, "the lease", |g| g.refresh_lease_until.is_some()).await;
    // The vault's clock moves far past the lease while the provider is still thinking: only the
    // holder's renewals keep the lease alive.
    env.vault.clock.advance(Duration::from_secs(60));
    let now = env.vault.clock_now_seconds() * 1000;
    assert!(held.refresh_lease_until.unwrap() < now);
    wait_for_grant(&store, &grant_id, "a renewal", |g| g.refresh_lease_until.is_some_and(|until| until > now)).await;
    assert!(
        !store.try_acquire_refresh_lease(&grant_id, "vault-other", now, now + 1000).await.unwrap(),
        "a live holder keeps its lease"
    );
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(refreshes(&env, Provider::Zoom).len(), 1);
    let grant = store.find_grant(&grant_id).await.unwrap();
    assert_eq!(grant.refresh_lease_until, None, "released once done");
    store.close().await;
}
