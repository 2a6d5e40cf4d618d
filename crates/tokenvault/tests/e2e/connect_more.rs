//! Issue 3, continued: generic providers by explicit URLs, the Dialpad sandbox after connect,
//! multi-provider connect sessions, unclaimed Aircall installs, and tenant isolation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokenvault_fakes::{Endpoint, FakeUser, Host, Provider};

use crate::connect_env::{ConnectEnv, RETURN_URL, query_of};
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    generic_full_connect_with_explicit_endpoints,
    quirk_05_dialpad_sandbox_grant_refreshes_and_deauthorizes_on_the_sandbox_only,
    session_with_several_providers_lets_the_user_choose_an_allowed_one,
    quirk_20_unclaimed_install_expires_and_is_erased,
    quirk_20_install_claim_with_another_apps_key_is_not_found,
    another_apps_key_cannot_poll_a_session_or_change_a_provider_config,
);

fn instant(value: &Value) -> i64 {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("not a timestamp: {value}")), &Rfc3339)
        .unwrap()
        .unix_timestamp()
}

async fn generic_full_connect_with_explicit_endpoints(env: ConnectEnv) {
    let issuer = env.fakes.urls().generic_issuer.clone();
    let endpoints = json!({
        "authorize_url": format!("{issuer}/authorize"),
        "token_url": format!("{issuer}/token"),
        "revoke_url": format!("{issuer}/revoke"),
        "userinfo_url": format!("{issuer}/userinfo"),
    });
    let config = env
        .configure(
            Provider::Generic,
            json!({ "provider": "custom", "key": "generic-urls", "client_id": "generic-client",
                    "client_secret": "generic-secret", "endpoints": endpoints, "scopes": ["openid", "profile"] }),
        )
        .await;
    assert_eq!(config["endpoints"]["token_url"], format!("{issuer}/token"));
    // No discovery document was read: the URLs were used as given.
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::Other), 0);
    let grant = env.grant(&env.connect_ok("user-1", "generic-urls").await).await;
    assert_eq!(grant["provider"], "custom");
    assert_eq!(grant["account"]["id"], FakeUser::default_for(Provider::Generic).id.as_str());
    assert_eq!(grant["refreshable"], true);
    let log = env.fakes.control().token_requests(Provider::Generic);
    assert_eq!(log.len(), 1);
    // The defaults for typed-in endpoints: HTTP Basic and PKCE S256.
    assert_eq!(log[0].client_auth, "basic");
    assert!(log[0].code_verifier.is_some());
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::UserInfo), 1);
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::Other), 0);
}

async fn quirk_05_dialpad_sandbox_grant_refreshes_and_deauthorizes_on_the_sandbox_only(env: ConnectEnv) {
    env.configure_dialpad("sandbox", None).await;
    let grant_id = env.connect_ok("user-1", "dialpad-sandbox").await;
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["refreshable"], true);
    let control = env.fakes.control();
    assert_eq!(control.calls(Provider::DialpadSandbox, Endpoint::Token), 1);
    // Move past the access token's expiry: asking for a token must refresh, at the sandbox.
    let due_in = instant(&grant["expires_at"]) - env.vault.clock_now_seconds();
    env.vault.clock.advance(std::time::Duration::from_secs(u64::try_from(due_in).unwrap() + 1));
    let (status, token) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert!(token["access_token"].is_string(), "{token}");
    assert_eq!(control.calls(Provider::DialpadSandbox, Endpoint::Token), 2);
    assert_eq!(control.token_requests(Provider::DialpadSandbox).last().unwrap().grant_type, "refresh_token");
    // Disconnecting deauthorizes at the sandbox.
    let (status, body) = env.api(Method::DELETE, &format!("/v1/grants/{grant_id}"), None).await;
    assert!(status.is_success(), "{status}: {body}");
    assert_eq!(control.calls(Provider::DialpadSandbox, Endpoint::Revoke), 1);
    // Production saw nothing at all: no token, identity or deauthorize call.
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Token), 0);
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Revoke), 0);
    assert_eq!(control.calls_on_host(Host::DialpadProduction), 0);
}

async fn session_with_several_providers_lets_the_user_choose_an_allowed_one(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.configure_zoom().await;
    env.configure_aircall().await;
    let (status, session) = env
        .api(
            Method::POST,
            "/v1/connect-sessions",
            Some(json!({ "end_user_id": "user-1", "providers": ["dialpad-production", "zoom"], "return_url": RETURN_URL })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let token = session["token"].as_str().unwrap();
    assert!(token.starts_with("tvc_") && token.len() >= 40, "opaque token: {session}");
    let connect_url = session["connect_url"].as_str().unwrap().to_owned();
    assert!(connect_url.ends_with(token), "{connect_url}");
    // The default lifetime is exactly 10 minutes from creation (on the manual clock).
    let created = instant(&session["created_at"]);
    assert_eq!(created, env.vault.clock_now_seconds());
    assert_eq!(instant(&session["expires_at"]) - created, 600);
    let session_id = session["id"].as_str().unwrap().to_owned();

    // Opening the link shows a chooser with exactly the allowed providers.
    let chooser = env.get(&connect_url, &[]).await;
    assert_eq!(chooser.status, StatusCode::OK, "{}", chooser.body);
    assert!(chooser.body.contains("?provider=dialpad-production"), "{}", chooser.body);
    assert!(chooser.body.contains("?provider=zoom"), "{}", chooser.body);
    assert!(!chooser.body.contains("aircall") && !chooser.body.contains("Aircall"), "{}", chooser.body);
    assert_eq!(env.session_status(&session_id).await["status"], "pending");

    // A provider outside the list is refused, and the link stays usable.
    let refused = env.get(&format!("{connect_url}?provider=aircall"), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code.as_deref(), Some("provider_not_allowed"));
    assert_eq!(env.fakes.control().calls(Provider::Aircall, Endpoint::Authorize), 0);
    assert_eq!(env.session_status(&session_id).await["status"], "pending");

    // Choosing Zoom starts its flow with a fresh state of at least 128 bits.
    let (authorize, cookies) = env.open(&format!("{connect_url}?provider=zoom")).await;
    assert!(authorize.starts_with(&env.fakes.urls().zoom_oauth), "{authorize}");
    let state = query_of(&authorize)["state"].clone();
    assert!(state.len() >= 22, "{state}");
    let state_bytes = URL_SAFE_NO_PAD.decode(&state).expect("state is base64url");
    assert!(state_bytes.len() >= 16, "state carries {} bytes", state_bytes.len());
    assert_eq!(env.session_status(&session_id).await["status"], "started");
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    let params = query_of(step.location.as_deref().unwrap());
    assert_eq!(params["status"], "succeeded");
    let grant = env.grant(&params["grant_id"]).await;
    assert_eq!(grant["provider"], "zoom");
    let polled = env.session_status(&session_id).await;
    assert_eq!(polled["status"], "succeeded");
    assert_eq!(polled["grant_id"].as_str(), Some(params["grant_id"].as_str()));
    // Two flows never share a state.
    let (_, again) = env.session("user-2", &["zoom"]).await;
    let (second, _) = env.open(&again).await;
    assert_ne!(query_of(&second)["state"], state);
}

/// Starts an install from Aircall's dashboard; returns (install id, claim).
async fn pending_install(env: &ConnectEnv) -> (String, String) {
    let config = env.configure_aircall().await;
    env.allow_aircall_installs().await;
    let start = env.get(config["install_uri"].as_str().unwrap(), &[]).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let callback = env.consent(start.location.as_deref().unwrap()).await;
    let done = env.get(&callback, &start.cookies).await;
    let params = query_of(done.location.as_deref().unwrap());
    assert_eq!(params["status"], "install_pending");
    (params["install_id"].clone(), params["claim"].clone())
}

async fn quirk_20_unclaimed_install_expires_and_is_erased(env: ConnectEnv) {
    let (install_id, claim) = pending_install(&env).await;
    let store = env.vault.vault.store();
    let held = store.get_pending_install(&install_id).await.unwrap();
    assert!(held.access_token.is_some(), "the install holds its sealed token until claimed");
    // Still inside the window, a sweep keeps it.
    env.vault.clock.advance(std::time::Duration::from_secs(14 * 60));
    env.vault.vault.erase_expired_installs().await.unwrap();
    assert!(store.get_pending_install(&install_id).await.unwrap().access_token.is_some());
    // Past the 15-minute window the sweep erases the sealed tokens.
    env.vault.clock.advance(std::time::Duration::from_secs(60));
    env.vault.vault.erase_expired_installs().await.unwrap();
    let erased = store.get_pending_install(&install_id).await.unwrap();
    assert!(erased.access_token.is_none() && erased.refresh_token.is_none(), "tokens are gone");
    assert!(erased.claimed_at.is_none());
    // A late claim fails clearly and creates nothing.
    let (status, body) =
        env.api(Method::POST, "/v1/installs/claim", Some(json!({ "claim": claim, "end_user_id": "admin-7" }))).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(assert_error_shape(status, &body), "claim_expired");
    assert!(env.grants().await.is_empty());
}

async fn quirk_20_install_claim_with_another_apps_key_is_not_found(env: ConnectEnv) {
    let (install_id, claim) = pending_install(&env).await;
    let (_, other_key) = env.vault.new_app("other").await;
    let claim_as = |key: String, claim: String| {
        let vault = &env.vault;
        async move {
            vault
                .call(
                    Method::POST,
                    "/v1/installs/claim",
                    Some(&key),
                    Some(json!({ "claim": claim, "end_user_id": "intruder" })),
                )
                .await
        }
    };
    let (status, stolen) = claim_as(other_key.clone(), claim.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{stolen}");
    let code = assert_error_shape(status, &stolen);
    // Exactly what a made-up claim gets: nothing tells the other app the install exists.
    let made_up = format!("tvi_{}", "A".repeat(43));
    let (made_up_status, made_up_body) = claim_as(other_key, made_up).await;
    assert_eq!(made_up_status, status);
    assert_eq!(assert_error_shape(made_up_status, &made_up_body), code);
    assert_eq!(made_up_body["message"], stolen["message"]);
    assert!(!stolen.to_string().contains(&install_id), "{stolen}");
    // The install is untouched: its own app claims it.
    let held = env.vault.vault.store().get_pending_install(&install_id).await.unwrap();
    assert!(held.access_token.is_some() && held.claimed_at.is_none());
    let (status, claimed) =
        env.api(Method::POST, "/v1/installs/claim", Some(json!({ "claim": claim, "end_user_id": "admin-7" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    let grant = env.grant(claimed["grant_id"].as_str().unwrap()).await;
    assert_eq!(grant["end_user_id"], "admin-7");
}

async fn another_apps_key_cannot_poll_a_session_or_change_a_provider_config(env: ConnectEnv) {
    let config = env.configure_dialpad("production", None).await;
    let config_id = config["id"].as_str().unwrap();
    let (session_id, _) = env.session("user-1", &["dialpad-production"]).await;
    let (_, other_key) = env.vault.new_app("other").await;

    let (status, body) =
        env.vault.call(Method::GET, &format!("/v1/connect-sessions/{session_id}"), Some(&other_key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_error_shape(status, &body);
    assert!(!body.to_string().contains("user-1"), "{body}");
    assert_eq!(env.session_status(&session_id).await["status"], "pending");

    let (_, before) = env.api(Method::GET, &format!("/v1/provider-configs/{config_id}"), None).await;
    let (status, body) = env
        .vault
        .call(
            Method::PUT,
            &format!("/v1/provider-configs/{config_id}"),
            Some(&other_key),
            Some(json!({ "provider": "dialpad", "client_id": "hijacked", "client_secret": "attacker-secret" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_error_shape(status, &body);
    let (_, after) = env.api(Method::GET, &format!("/v1/provider-configs/{config_id}"), None).await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(after["client_id"], "dialpad-production-client");
    // The original credentials still work end to end.
    env.connect_ok("user-1", "dialpad-production").await;
    let log = env.fakes.control().token_requests(Provider::DialpadProduction);
    assert_eq!(log.last().unwrap().client_id.as_deref(), Some("dialpad-production-client"));
}
