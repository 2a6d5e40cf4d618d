//! Issue 4, item 6 (quirks 8, 18, 24): when the provider does not confirm a revocation the grant
//! becomes `revoke_failed` with its tokens kept (still valid at the provider, not served to the
//! app, not refreshed), and a retried disconnect finishes the job.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenvault_fakes::{Endpoint, Fault, Host, Provider};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::fake_peek::{current_refresh_token, last_revoked_token};
use crate::support::assert_error_shape;

connect_tests!(
    quirk_18_zoom_revoke_failure_keeps_the_grant_and_a_retry_revokes,
    quirk_18_zoom_revoke_failing_halfway_is_completed_by_the_retry,
    quirk_08_dialpad_deauthorize_failure_keeps_the_grant_and_a_retry_revokes,
    quirk_24_aircall_webhook_deletion_failure_disables_nothing_and_a_retry_completes,
    dialpad_expired_access_token_is_refreshed_and_the_deauthorize_retried,
    dialpad_disconnect_of_a_dead_grant_is_revoked_once_the_refresh_proves_it,
    dialpad_disconnect_without_a_fresh_token_stays_revoke_failed_and_a_retry_completes,
);

/// A Dialpad grant whose access token expired at Dialpad while the vault still holds it as
/// fresh (the fake's clock moved on past the token's life, the vault's did not).
async fn dialpad_grant_with_expired_access_token(env: &ConnectEnv) -> (String, String) {
    env.configure_dialpad("production", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let old_access = access_token(env, &grant_id).await;
    env.fakes.control().advance(Duration::from_secs(2 * 3600));
    assert!(!env.fakes.control().is_access_token_active(Provider::DialpadProduction, &old_access));
    (grant_id, old_access)
}

fn dialpad_refreshes(env: &ConnectEnv) -> usize {
    env.fakes
        .control()
        .token_requests(Provider::DialpadProduction)
        .iter()
        .filter(|r| r.grant_type == "refresh_token")
        .count()
}

async fn dialpad_expired_access_token_is_refreshed_and_the_deauthorize_retried(env: ConnectEnv) {
    let (grant_id, _) = dialpad_grant_with_expired_access_token(&env).await;
    let (status, grant) = disconnect(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    let control = env.fakes.control();
    // The first deauthorize got 401 (nothing revoked), then one refresh, then a confirmed one.
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Revoke), 2);
    assert_eq!(dialpad_refreshes(&env), 1);
    let refreshed = control
        .token_requests(Provider::DialpadProduction)
        .into_iter()
        .rfind(|r| r.grant_type == "refresh_token")
        .unwrap();
    assert_eq!(refreshed.outcome_status, 200);
    let last_deauthorize =
        control.requests(Host::DialpadProduction).into_iter().rfind(|r| r.path == "/oauth2/deauthorize").unwrap();
    let bearer = last_deauthorize.header("authorization").unwrap().trim_start_matches("Bearer ").to_owned();
    assert!(!control.is_access_token_active(Provider::DialpadProduction, &bearer), "the new token was revoked");
    // Dialpad holds nothing live for the grant any more: no refresh token of it works.
    let zoe = tokenvault_fakes::FakeUser::default_for(Provider::DialpadProduction);
    assert_eq!(control.revoke_all_for_user(Provider::DialpadProduction, &zoe.id), 0, "nothing was left to revoke");
}

async fn dialpad_disconnect_of_a_dead_grant_is_revoked_once_the_refresh_proves_it(env: ConnectEnv) {
    let (grant_id, _) = dialpad_grant_with_expired_access_token(&env).await;
    // The user removed the app at Dialpad: both tokens are dead there.
    let user = tokenvault_fakes::FakeUser::default_for(Provider::DialpadProduction);
    env.fakes.control().revoke_all_for_user(Provider::DialpadProduction, &user.id);
    let (status, grant) = disconnect(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!((grant["status"].as_str(), grant["refreshable"].as_bool()), (Some("revoked"), Some(false)));
    assert_eq!(dialpad_refreshes(&env), 1, "the refresh answered invalid_grant: proven dead");
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Revoke), 1);
}

async fn dialpad_disconnect_without_a_fresh_token_stays_revoke_failed_and_a_retry_completes(env: ConnectEnv) {
    let (grant_id, _) = dialpad_grant_with_expired_access_token(&env).await;
    env.fakes.control().inject(Provider::DialpadProduction, Endpoint::Token, unavailable(), 1);
    let (status, body) = disconnect(&env, &grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "revoke_failed");
    assert!(body["message"].as_str().unwrap().contains("refused the access token"), "{body}");
    let grant = env.grant(&grant_id).await;
    assert_eq!((grant["status"].as_str(), grant["refreshable"].as_bool()), (Some("revoke_failed"), Some(true)));
    // The retry refreshes the revoke_failed grant, revokes with the new token, and only then says revoked.
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, grant) = disconnect(&env, &grant_id).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    // Two refreshes were sent; the fake logs only the one that reached its handler.
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Token), 3, "exchange + 2 refreshes");
    assert_eq!(dialpad_refreshes(&env), 1);
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Revoke), 3);
}

fn unavailable() -> Fault {
    Fault::Status { status: 503, body: r#"{"error":"temporarily_unavailable"}"#.into(), retry_after: None }
}

async fn disconnect(env: &ConnectEnv, grant_id: &str) -> (StatusCode, serde_json::Value) {
    env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await
}

async fn access_token(env: &ConnectEnv, grant_id: &str) -> String {
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// The disconnect answers 503 `revoke_failed`; the grant says so, keeps its tokens, is neither
/// served nor scheduled, and shows up in the `revoke_failed` listing.
async fn assert_revoke_failed(env: &ConnectEnv, grant_id: &str, refreshable: bool) {
    let (status, body) = disconnect(env, grant_id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "revoke_failed");
    let grant = env.grant(grant_id).await;
    assert_eq!(grant["status"], "revoke_failed", "{grant}");
    assert_eq!(grant["refreshable"], refreshable, "tokens kept: {grant}");
    assert!(grant["last_error"].is_string(), "{grant}");
    assert!(grant["next_refresh_at"].is_null(), "not refreshed while being disconnected: {grant}");
    assert!(grant.get("revoked_at").is_none_or(|v| v.is_null()), "{grant}");
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(assert_error_shape(status, &body), "grant_revoke_failed");
    let (_, page) = env.api(Method::GET, "/v1/grants?status=revoke_failed", None).await;
    assert!(page["data"].as_array().unwrap().iter().any(|g| g["id"] == grant_id), "{page}");
    // The background refresher leaves it alone, even long after its tokens expired.
    env.vault.clock.advance(Duration::from_secs(7 * 86_400));
    assert_eq!(env.vault.vault.refresh_due_grants(100).await.unwrap().due, 0);
}

/// The retried disconnect succeeds: tombstone, tokens erased, nothing served any more.
async fn assert_retry_revokes(env: &ConnectEnv, grant_id: &str) {
    let (status, grant) = disconnect(env, grant_id).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "revoked");
    assert_eq!(grant["status_reason"], "disconnected");
    assert_eq!(grant["refreshable"], false, "tokens erased");
    assert!(grant["revoked_at"].is_string(), "{grant}");
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "grant_revoked");
}

async fn quirk_18_zoom_revoke_failure_keeps_the_grant_and_a_retry_revokes(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let access = access_token(&env, &grant_id).await;
    let control = env.fakes.control();
    control.inject(Provider::Zoom, Endpoint::Revoke, unavailable(), 1);
    assert_revoke_failed(&env, &grant_id, true).await;
    // The refresh token went out in the failed revocation: Zoom still honours both tokens.
    let refresh = last_revoked_token(&env, Host::ZoomOauth, "refresh_token").expect("refresh token revoked first");
    assert!(control.is_refresh_token_active(Provider::Zoom, &refresh));
    assert!(control.is_access_token_active(Provider::Zoom, &access));
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Revoke), 1, "stopped at the first failure");

    assert_retry_revokes(&env, &grant_id).await;
    assert_eq!(last_revoked_token(&env, Host::ZoomOauth, "refresh_token"), Some(refresh.clone()), "the kept token");
    assert!(!control.is_refresh_token_active(Provider::Zoom, &refresh));
    assert!(!control.is_access_token_active(Provider::Zoom, &access));
}

async fn quirk_18_zoom_revoke_failing_halfway_is_completed_by_the_retry(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let access = access_token(&env, &grant_id).await;
    let control = env.fakes.control();
    // The refresh token's revocation goes through; the access token's fails.
    control.inject(Provider::Zoom, Endpoint::Revoke, Fault::Latency(Duration::ZERO), 1);
    control.inject(Provider::Zoom, Endpoint::Revoke, unavailable(), 1);
    assert_revoke_failed(&env, &grant_id, true).await;
    assert_eq!(control.calls(Provider::Zoom, Endpoint::Revoke), 2);
    let refresh = last_revoked_token(&env, Host::ZoomOauth, "refresh_token").unwrap();
    assert!(!control.is_refresh_token_active(Provider::Zoom, &refresh), "half done at Zoom");
    // Zoom already considers the tokens dead: the retry's "invalid token" answers count as done.
    assert_retry_revokes(&env, &grant_id).await;
    assert!(!control.is_access_token_active(Provider::Zoom, &access));
}

async fn quirk_08_dialpad_deauthorize_failure_keeps_the_grant_and_a_retry_revokes(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let access = access_token(&env, &grant_id).await;
    let refresh = current_refresh_token(&env, &grant_id, Provider::DialpadProduction, Host::DialpadProduction).await;
    let control = env.fakes.control();
    control.inject(
        Provider::DialpadProduction,
        Endpoint::Revoke,
        Fault::Status { status: 500, body: "internal error".into(), retry_after: None },
        1,
    );
    assert_revoke_failed(&env, &grant_id, true).await;
    assert!(control.is_access_token_active(Provider::DialpadProduction, &access));
    assert!(control.is_refresh_token_active(Provider::DialpadProduction, &refresh));

    assert_retry_revokes(&env, &grant_id).await;
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Revoke), 2);
    assert!(!control.is_access_token_active(Provider::DialpadProduction, &access));
    assert!(!control.is_refresh_token_active(Provider::DialpadProduction, &refresh));
}

async fn quirk_24_aircall_webhook_deletion_failure_disables_nothing_and_a_retry_completes(env: ConnectEnv) {
    let config = env
        .configure(
            Provider::Aircall,
            json!({ "provider": "aircall", "client_id": "aircall-client", "client_secret": "aircall-secret-1",
                    "provider_webhook_events": ["call.created"] }),
        )
        .await;
    let grant_id = env.connect_ok("user-1", "aircall").await;
    let access = access_token(&env, &grant_id).await;
    let control = env.fakes.control();
    let webhooks = control.aircall_webhooks();
    assert_eq!(webhooks.len(), 1);
    control.inject(Provider::Aircall, Endpoint::Webhooks, unavailable(), 1);
    assert_revoke_failed(&env, &grant_id, false).await;
    // Nothing half-done: the webhook is still there and the integration was not disabled.
    assert_eq!(control.aircall_webhooks(), webhooks);
    assert_eq!(control.calls(Provider::Aircall, Endpoint::Disable), 0);
    assert!(control.is_access_token_active(Provider::Aircall, &access));

    assert_retry_revokes(&env, &grant_id).await;
    assert!(control.aircall_webhooks().is_empty(), "the webhook is deleted on retry");
    assert_eq!(control.calls(Provider::Aircall, Endpoint::Disable), 1);
    // Its events are no longer accepted once the grant is gone.
    let event = control.aircall_webhook_event(&webhooks[0].token, "call.created");
    let response = env.vault.http.post(config["webhook_url"].as_str().unwrap()).json(&event).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
