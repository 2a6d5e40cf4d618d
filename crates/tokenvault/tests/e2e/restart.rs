//! Issue 2: what was sealed before a restart opens after it, with the same key file.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokenvault_fakes::Provider;

use crate::connect_env::ConnectEnv;
use crate::connect_tests;

connect_tests!(sealed_credentials_open_after_a_restart);

/// A grant's tokens and the configuration's client secret are sealed; after a restart the token
/// is served unchanged and a refresh (which opens the client secret and the refresh token) works.
async fn sealed_credentials_open_after_a_restart(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let token_path = format!("/v1/grants/{grant_id}/token");
    let (status, before) = env.api(Method::POST, &token_path, None).await;
    assert_eq!(status, StatusCode::OK, "{before}");

    let ConnectEnv { vault, fakes, key } = env;
    let env = ConnectEnv { vault: vault.restart().await, fakes, key };

    let (status, same) = env.api(Method::POST, &token_path, None).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["access_token"], before["access_token"]);

    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, refreshed) = env.api(Method::POST, &token_path, None).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["access_token"], before["access_token"]);
    let refreshes =
        env.fakes.control().token_requests(Provider::Zoom).into_iter().filter(|r| r.grant_type == "refresh_token");
    assert_eq!(refreshes.count(), 1);
}
