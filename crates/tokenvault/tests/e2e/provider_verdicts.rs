//! Issue 4: when a provider declares a grant dead. Zoom's `app_deauthorized` webhook (quirk 16)
//! leaves exactly one audit entry and no secret behind; Dialpad's `invalid_grant` on refresh
//! (quirk 30) marks the grant `needs_reauth` after a single attempt.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{FakeUser, Host, Provider};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::fake_peek::current_refresh_token;
use crate::support::assert_error_shape;

connect_tests!(
    quirk_16_zoom_deauthorization_is_audited_once_without_secrets,
    quirk_30_dialpad_invalid_grant_marks_needs_reauth_without_retry_storm,
);

const ZOOM_WEBHOOK_SECRET: &str = "zoom-webhook-secret-token";

async fn audit(env: &ConnectEnv, query: &str) -> Vec<Value> {
    let (status, page) = env.api(Method::GET, &format!("/v1/audit?limit=1000&{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn post_signed_zoom_event(env: &ConnectEnv, url: &str, body: &[u8], signature: &str) -> StatusCode {
    env.vault
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-zm-request-timestamp", env.vault.clock_now_seconds().to_string())
        .header("x-zm-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
}

async fn quirk_16_zoom_deauthorization_is_audited_once_without_secrets(env: ConnectEnv) {
    let logs = crate::log_capture::start();
    let config = env
        .configure(
            Provider::Zoom,
            json!({ "provider": "zoom", "client_id": "zoom-client", "client_secret": "zoom-secret-1",
                    "webhook_secret": ZOOM_WEBHOOK_SECRET }),
        )
        .await;
    let url = config["webhook_url"].as_str().unwrap().to_owned();
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let (_, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let refresh = current_refresh_token(&env, &grant_id, Provider::Zoom, Host::ZoomOauth).await;

    let zoe = FakeUser::default_for(Provider::Zoom);
    let control = env.fakes.control();
    let body =
        serde_json::to_vec(&control.zoom_deauthorization_event(&zoe.id, &zoe.account_id, "zoom-client")).unwrap();
    let signature = control.zoom_sign(ZOOM_WEBHOOK_SECRET, &env.vault.clock_now_seconds().to_string(), &body);
    assert_eq!(post_signed_zoom_event(&env, &url, &body, &signature).await, StatusCode::OK);
    // Zoom redelivers: still one revocation, one audit entry.
    assert_eq!(post_signed_zoom_event(&env, &url, &body, &signature).await, StatusCode::OK);
    let grant = env.grant(&grant_id).await;
    assert_eq!(
        (grant["status"].as_str(), grant["status_reason"].as_str()),
        (Some("revoked"), Some("provider_deauthorized"))
    );

    let entries = audit(&env, &format!("grant_id={grant_id}&action=grant.revoked")).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["outcome"], "success");
    assert_eq!(entry["provider"], "zoom");
    assert_eq!(entry["end_user_id"], "user-1");
    assert_eq!(entry["detail"], "provider_deauthorized");

    let everything = serde_json::to_string(&audit(&env, "").await).unwrap();
    let logged = logs.contents();
    assert!(logged.contains(&grant_id), "logs were captured");
    for secret in [ZOOM_WEBHOOK_SECRET, "zoom-secret-1", &access, &refresh, &signature, &env.key] {
        assert!(!everything.contains(secret), "a secret is in the audit log");
        assert!(!logged.contains(secret), "a secret is in the logs");
    }
}

async fn quirk_30_dialpad_invalid_grant_marks_needs_reauth_without_retry_storm(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let control = env.fakes.control();
    // The authorization is withdrawn at Dialpad: its refresh token now gets `invalid_grant`.
    control.revoke_all_for_user(Provider::DialpadProduction, &FakeUser::default_for(Provider::DialpadProduction).id);
    env.vault.clock.advance(Duration::from_secs(2 * 3600));
    for _ in 0..3 {
        let (status, body) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(assert_error_shape(status, &body), "grant_needs_reauth");
    }
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["status"], "needs_reauth");
    assert_eq!(grant["status_reason"], "refresh_token_rejected");
    assert!(grant["next_refresh_at"].is_null(), "{grant}");

    // Neither callers nor the background refresher try again, however much time passes.
    for _ in 0..3 {
        env.vault.clock.advance(Duration::from_secs(86_400));
        assert_eq!(env.vault.vault.refresh_due_grants(100).await.unwrap().due, 0);
    }
    let refreshes: Vec<_> = control
        .token_requests(Provider::DialpadProduction)
        .into_iter()
        .filter(|r| r.grant_type == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "one attempt, no storm");
    assert_eq!(refreshes[0].outcome_status, 400);
    let marked = audit(&env, &format!("grant_id={grant_id}&action=grant.needs_reauth")).await;
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!(marked[0]["detail"], "refresh_token_rejected");
}
