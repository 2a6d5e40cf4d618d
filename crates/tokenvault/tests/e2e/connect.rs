//! Issue 3: the connect flow end to end against the fake providers, one test per quirk
//! (numbers from provider-facts.md §5) and per bad input.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenvault_fakes::{
    BodyEncoding, ClientAuthMode, ClientRegistration, ConsentMode, Endpoint, ExpiresInMode, FakeUser, IdFormat,
    IssResponse, Provider, Variant, ZoomApiUrl,
};

use crate::connect_env::{ConnectEnv, RETURN_URL, query_of};
use crate::connect_tests;
use crate::support::assert_error_shape;

connect_tests!(
    dialpad_full_connect,
    zoom_full_connect,
    aircall_full_connect_from_the_app,
    generic_full_connect_via_discovery,
    quirk_01_dialpad_epoch_expires_in_is_stored_as_that_instant,
    quirk_02_dialpad_basic_only_fails_clearly_with_body_credentials,
    quirk_03_dialpad_json_only_token_endpoint_is_a_clear_error,
    quirk_04_dialpad_without_offline_access_is_not_refreshable,
    quirk_05_dialpad_sandbox_grant_uses_the_sandbox_host_only,
    quirk_06_dialpad_code_used_after_61_seconds_fails_clearly,
    quirk_07_dialpad_redirect_uri_with_query_is_kept,
    quirk_09_zoom_authorize_url_has_no_scope,
    quirk_12_zoom_reauthorization_merges_and_supersedes,
    quirk_13_zoom_basic_auth_and_redirect_uri_mismatch_is_a_configuration_error,
    quirk_14_zoom_api_url_from_the_token_response_is_stored,
    quirk_15_zoom_pkce_method_is_explicitly_s256,
    quirk_20_aircall_install_is_claimed_by_an_end_user,
    quirk_20_aircall_install_without_install_return_url_is_refused,
    quirk_21_aircall_token_request_is_json_with_body_credentials,
    quirk_25_state_on_another_providers_callback_is_rejected,
    quirk_25_generic_iss_missing_or_wrong_is_rejected,
    quirk_26_state_is_single_use_and_expires,
    quirk_26_access_denied_ends_the_session_as_denied,
    quirk_27_wrong_pkce_verifier_from_an_injected_code_is_rejected,
    quirk_28_generic_discovery_issuer_mismatch_is_refused,
    quirk_28_generic_without_pkce_methods_sends_no_pkce_and_posts_credentials,
    generic_discovery_with_an_explicit_client_auth_the_metadata_allows,
    quirk_29_client_secret_with_reserved_characters_works_with_basic,
    quirk_31_account_ids_are_strings_whatever_the_json_type,
    quirk_32_unknown_and_missing_token_fields_are_tolerated,
    bad_missing_or_tampered_state,
    bad_callback_with_both_code_and_error,
    bad_code_reuse_in_a_new_flow,
    bad_oversized_and_duplicated_parameters,
    bad_callback_from_another_browser,
    bad_return_url_off_the_allowlist,
    bad_expired_connect_link,
    bad_provider_config_inputs,
    client_secret_is_write_only,
);

async fn dialpad_full_connect(env: ConnectEnv) {
    let config = env.configure_dialpad("production", None).await;
    assert!(config.get("client_secret").is_none());
    let grant_id = env.connect_ok("user-1", "dialpad-production").await;
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["provider"], "dialpad");
    assert_eq!(grant["environment"], "production");
    assert_eq!(grant["end_user_id"], "user-1");
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["account"]["id"], FakeUser::default_for(Provider::DialpadProduction).id.as_str());
    assert_eq!(grant["refreshable"], true);
    assert_eq!(grant["scopes"], json!(["calls:list", "change_log", "offline_access"]));
    assert!(grant["expires_at"].is_string());
    assert!(grant.get("access_token").is_none() && grant.get("refresh_token").is_none());
    // The token request was form-encoded with body credentials and PKCE.
    let log = env.fakes.control().token_requests(Provider::DialpadProduction);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].client_auth, "body");
    assert!(log[0].content_type.as_deref().unwrap().starts_with("application/x-www-form-urlencoded"));
    assert!(log[0].code_verifier.is_some());
    assert_eq!(log[0].outcome_status, 200);
}

async fn zoom_full_connect(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = env.connect_ok("user-1", "zoom").await;
    let grant = env.grant(&grant_id).await;
    let zoe = FakeUser::default_for(Provider::Zoom);
    assert_eq!(grant["account"]["id"], zoe.account_id.as_str());
    assert_eq!(grant["account"]["user_id"], zoe.id.as_str());
    assert_eq!(grant["scopes"], json!(["user:read:user", "meeting:read:meeting"]));
    assert_eq!(grant["api_base_url"], env.fakes.urls().zoom_api.as_str());
    assert_eq!(grant["refreshable"], true);
}

async fn aircall_full_connect_from_the_app(env: ConnectEnv) {
    env.configure_aircall().await;
    let grant_id = env.connect_ok("user-1", "aircall").await;
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["provider"], "aircall");
    assert!(grant["expires_at"].is_null(), "permanent token: {grant}");
    assert_eq!(grant["refreshable"], false);
    assert_eq!(grant["account"]["user_id"], FakeUser::default_for(Provider::Aircall).id.as_str());
    assert_eq!(grant["scopes"], json!(["public_api"]));
}

async fn generic_full_connect_via_discovery(env: ConnectEnv) {
    let config = env.configure_generic("generic-secret").await;
    assert_eq!(config["endpoints"]["issuer"], env.fakes.urls().generic_issuer.as_str());
    let grant_id = env.connect_ok("user-1", "generic").await;
    let grant = env.grant(&grant_id).await;
    assert_eq!(grant["provider"], "custom");
    assert_eq!(grant["account"]["id"], FakeUser::default_for(Provider::Generic).id.as_str());
    assert_eq!(grant["refreshable"], true);
}

async fn quirk_01_dialpad_epoch_expires_in_is_stored_as_that_instant(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.fakes.control().set_variant(Variant::DialpadExpiresIn(ExpiresInMode::Epoch));
    let expected = env.fakes.control().now() + 3600;
    let grant = env.grant(&env.connect_ok("user-1", "dialpad-production").await).await;
    let stored = time::OffsetDateTime::parse(
        grant["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // The instant itself (within clock skew between the fake and the vault), not now + epoch.
    assert!((stored.unix_timestamp() - expected as i64).abs() <= 5, "{grant}");

    // An epoch already in the past makes the token due at once.
    env.fakes.control().dialpad_expires_in_raw(Some(1_680_047_149));
    let grant = env.grant(&env.connect_ok("user-2", "dialpad-production").await).await;
    let stored = time::OffsetDateTime::parse(
        grant["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let vault_now = env.vault.clock_now_seconds();
    assert!((stored.unix_timestamp() - vault_now).abs() <= 1, "{grant}");
}

async fn quirk_02_dialpad_basic_only_fails_clearly_with_body_credentials(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.fakes.control().set_variant(Variant::DialpadClientAuth(ClientAuthMode::BasicOnly));
    let step = env.connect("user-1", "dialpad-production").await;
    let params = query_of(step.location.as_deref().unwrap());
    assert_eq!(params["status"], "failed");
    assert_eq!(params["error"], "invalid_client_credentials");
    assert!(env.grants().await.is_empty());
}

async fn quirk_03_dialpad_json_only_token_endpoint_is_a_clear_error(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    env.fakes.control().set_variant(Variant::DialpadTokenBody(BodyEncoding::JsonOnly));
    let (session_id, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    let params = query_of(step.location.as_deref().unwrap());
    assert_eq!(params["status"], "failed");
    let session = env.session_status(&session_id).await;
    assert_eq!(session["status"], "failed");
    assert!(session["error"]["code"].as_str().unwrap().starts_with("provider_"), "{session}");
    assert!(env.grants().await.is_empty());
}

async fn quirk_04_dialpad_without_offline_access_is_not_refreshable(env: ConnectEnv) {
    env.configure_dialpad("production", Some(vec!["calls:list"])).await;
    let grant = env.grant(&env.connect_ok("user-1", "dialpad-production").await).await;
    assert_eq!(grant["refreshable"], false, "{grant}");
    assert_eq!(grant["scopes"], json!(["calls:list"]));
}

async fn quirk_05_dialpad_sandbox_grant_uses_the_sandbox_host_only(env: ConnectEnv) {
    env.configure_dialpad("sandbox", None).await;
    let grant = env.grant(&env.connect_ok("user-1", "dialpad-sandbox").await).await;
    assert_eq!(grant["environment"], "sandbox");
    assert_eq!(grant["api_base_url"], env.fakes.urls().dialpad_sandbox.as_str());
    assert_eq!(grant["account"]["id"], FakeUser::default_for(Provider::DialpadSandbox).id.as_str());
    let control = env.fakes.control();
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::Token), 0);
    assert_eq!(control.calls(Provider::DialpadProduction, Endpoint::UserInfo), 0);
    assert_eq!(control.calls(Provider::DialpadSandbox, Endpoint::Token), 1);
}

async fn quirk_06_dialpad_code_used_after_61_seconds_fails_clearly(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let (session_id, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    env.fakes.control().advance(std::time::Duration::from_secs(61));
    let step = env.get(&callback, &cookies).await;
    let params = query_of(step.location.as_deref().unwrap());
    assert_eq!(params["status"], "failed");
    assert_eq!(params["error"], "code_rejected");
    let session = env.session_status(&session_id).await;
    assert!(session["error"]["message"].as_str().unwrap().contains("start the connection again"), "{session}");
    assert!(env.grants().await.is_empty());
}

async fn quirk_07_dialpad_redirect_uri_with_query_is_kept(env: ConnectEnv) {
    let config = env
        .configure(
            Provider::DialpadProduction,
            json!({ "provider": "dialpad", "client_id": "dp", "client_secret": "s", "redirect_query": "tenant=x" }),
        )
        .await;
    let redirect_uri = config["redirect_uri"].as_str().unwrap();
    assert!(redirect_uri.ends_with("?tenant=x"), "{redirect_uri}");
    let (_, connect_url) = env.session("user-1", &["dialpad"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    let params = query_of(&callback);
    assert_eq!(params["tenant"], "x");
    assert!(params.contains_key("code") && params.contains_key("state"));
    let step = env.get(&callback, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "succeeded");
}

async fn quirk_09_zoom_authorize_url_has_no_scope(env: ConnectEnv) {
    env.configure_zoom().await;
    let (_, connect_url) = env.session("user-1", &["zoom"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let params = query_of(&authorize);
    assert!(!params.contains_key("scope"), "{authorize}");
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    let grant = env.grant(&query_of(step.location.as_deref().unwrap())["grant_id"]).await;
    // Granted scopes come from the token response.
    assert_eq!(grant["scopes"], json!(["user:read:user", "meeting:read:meeting"]));
}

async fn quirk_12_zoom_reauthorization_merges_and_supersedes(env: ConnectEnv) {
    env.configure_zoom().await;
    let first = env.connect_ok("user-1", "zoom").await;
    let again = env.connect_ok("user-1", "zoom").await;
    assert_eq!(first, again, "the same user and account reconnecting keeps one grant");
    assert_eq!(env.grants().await.len(), 1);
    // Another end user authorizes the same Zoom user: Zoom kills the older tokens.
    let other = env.connect_ok("user-2", "zoom").await;
    assert_ne!(other, first);
    let old = env.grant(&first).await;
    assert_eq!(old["status"], "needs_reauth");
    assert_eq!(old["status_reason"], "superseded_by_newer_authorization");
    assert_eq!(env.grant(&other).await["status"], "active");
}

async fn quirk_13_zoom_basic_auth_and_redirect_uri_mismatch_is_a_configuration_error(env: ConnectEnv) {
    let config = env.configure_zoom().await;
    env.connect_ok("user-1", "zoom").await;
    let log = env.fakes.control().token_requests(Provider::Zoom);
    assert_eq!(log[0].client_auth, "basic");
    let registered = config["redirect_uri"].as_str().unwrap().to_owned();
    assert_eq!(log[0].redirect_uri.as_deref(), Some(registered.as_str()));
    // The Zoom app also allows a second redirect URL (say, left over from an old deployment),
    // and the authorization is made with that one: Zoom binds the code to it, and its own
    // check at the token endpoint rejects the vault's (different) `redirect_uri` with 4709.
    let stale = format!("{registered}?deployment=old");
    env.fakes.control().register_client(
        Provider::Zoom,
        ClientRegistration {
            client_id: "zoom-client".into(),
            client_secret: "zoom-secret-1".into(),
            redirect_uris: vec![registered.clone(), stale.clone()],
            scopes: vec!["user:read:user".into(), "meeting:read:meeting".into()],
            install_uri: None,
        },
    );
    let (session_id, connect_url) = env.session("user-2", &["zoom"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let mut rewritten = url::Url::parse(&authorize).unwrap();
    let pairs: Vec<(String, String)> = rewritten
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" { stale.clone() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    rewritten.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = env.consent(rewritten.as_str()).await;
    assert!(callback.starts_with(&stale), "{callback}");
    let step = env.get(&callback, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["error"], "provider_configuration_error");
    let last = env.fakes.control().token_requests(Provider::Zoom).pop().unwrap();
    assert_eq!(last.outcome_status, 400, "the fake's own redirect check refused the exchange");
    assert_eq!(last.redirect_uri.as_deref(), Some(registered.as_str()));
    let session = env.session_status(&session_id).await;
    assert_eq!(session["status"], "failed");
    assert_eq!(session["error"]["code"], "provider_configuration_error", "{session}");
    assert_eq!(env.grants().await.len(), 1);
}

async fn quirk_14_zoom_api_url_from_the_token_response_is_stored(env: ConnectEnv) {
    env.configure_zoom().await;
    env.fakes.control().set_variant(Variant::ZoomApiUrl(ZoomApiUrl::Alternate));
    let grant = env.grant(&env.connect_ok("user-1", "zoom").await).await;
    assert_eq!(grant["api_base_url"], env.fakes.urls().zoom_api_alt.as_str());
    // An api_url off Zoom's hosts is refused: no grant.
    env.fakes.control().set_variant(Variant::ZoomApiUrl(ZoomApiUrl::Custom(env.fakes.urls().evil.clone())));
    let step = env.connect("user-2", "zoom").await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "failed");
    assert_eq!(env.grants().await.len(), 1);
}

async fn quirk_15_zoom_pkce_method_is_explicitly_s256(env: ConnectEnv) {
    env.configure_zoom().await;
    let (_, connect_url) = env.session("user-1", &["zoom"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let params = query_of(&authorize);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    // The fake applies `plain` semantics when the method is missing, so success proves S256.
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "succeeded");
}

async fn quirk_20_aircall_install_is_claimed_by_an_end_user(env: ConnectEnv) {
    let config = env.configure_aircall().await;
    let install_uri = config["install_uri"].as_str().unwrap();
    env.allow_aircall_installs().await;
    // The admin clicks Install in Aircall's dashboard: it opens the vault's install URI.
    let dashboard =
        env.get(&format!("{}/install?client_id=aircall-client", env.fakes.urls().aircall_dashboard), &[]).await;
    assert_eq!(dashboard.location.as_deref(), Some(install_uri));
    let start = env.get(install_uri, &[]).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let callback = env.consent(start.location.as_deref().unwrap()).await;
    let done = env.get(&callback, &start.cookies).await;
    let location = done.location.unwrap();
    assert!(location.starts_with("https://app.example.com/aircall/installed?"), "{location}");
    let params = query_of(&location);
    assert_eq!(params["status"], "install_pending");
    // No grant until the app binds the install to one of its users.
    assert!(env.grants().await.is_empty());
    let claim = json!({ "claim": params["claim"], "end_user_id": "admin-7" });
    let (status, claimed) = env.api(Method::POST, "/v1/installs/claim", Some(claim.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    let grant = env.grant(claimed["grant_id"].as_str().unwrap()).await;
    assert_eq!(grant["end_user_id"], "admin-7");
    assert_eq!(grant["provider"], "aircall");
    // A claim works once.
    let (status, body) = env.api(Method::POST, "/v1/installs/claim", Some(claim)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(assert_error_shape(status, &body), "claim_already_used");
    assert_eq!(env.grants().await.len(), 1);
}

async fn quirk_20_aircall_install_without_install_return_url_is_refused(env: ConnectEnv) {
    let config = env.configure_aircall().await;
    let step = env.get(config["install_uri"].as_str().unwrap(), &[]).await;
    assert_eq!(step.status, StatusCode::FORBIDDEN);
    assert_eq!(step.error_code.as_deref(), Some("installs_not_enabled"));
    assert!(step.body.contains("installs_not_enabled"));
    assert_eq!(env.fakes.control().calls(Provider::Aircall, Endpoint::Authorize), 0);
    assert!(env.grants().await.is_empty());
}

async fn quirk_21_aircall_token_request_is_json_with_body_credentials(env: ConnectEnv) {
    env.configure_aircall().await;
    env.connect_ok("user-1", "aircall").await;
    let log = env.fakes.control().token_requests(Provider::Aircall);
    assert_eq!(log.len(), 1);
    assert!(log[0].content_type.as_deref().unwrap().starts_with("application/json"));
    assert_eq!(log[0].client_auth, "body");
    assert!(log[0].code_verifier.is_none(), "Aircall gets no PKCE");
}

async fn quirk_25_state_on_another_providers_callback_is_rejected(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let zoom = env.configure_zoom().await;
    let (session_id, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    // Deliver Dialpad's response to Zoom's redirect path.
    let query = callback.split_once('?').unwrap().1;
    let wrong = format!("{}?{query}", zoom["redirect_uri"].as_str().unwrap());
    let step = env.get(&wrong, &cookies).await;
    assert_eq!(step.status, StatusCode::BAD_REQUEST);
    assert_eq!(step.error_code.as_deref(), Some("state_provider_mismatch"));
    // The flow is burnt: the right path does not work afterwards either.
    let step = env.get(&callback, &cookies).await;
    assert_eq!(step.error_code.as_deref(), Some("state_already_used"));
    assert_eq!(env.session_status(&session_id).await["status"], "failed");
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Token), 0);
    assert!(env.grants().await.is_empty());
}

async fn quirk_25_generic_iss_missing_or_wrong_is_rejected(env: ConnectEnv) {
    env.fakes.control().set_variant(Variant::GenericIssParameterSupported(true));
    env.configure_generic("generic-secret").await;
    env.connect_ok("user-1", "generic").await;
    for (variant, end_user) in [(IssResponse::Wrong, "user-2"), (IssResponse::Omit, "user-3")] {
        env.fakes.control().set_variant(Variant::GenericIssResponse(variant));
        let step = env.connect(end_user, "generic").await;
        let params = query_of(step.location.as_deref().unwrap());
        assert_eq!(params["error"], "issuer_mismatch", "{variant:?}");
    }
    assert_eq!(env.grants().await.len(), 1);
    assert_eq!(env.fakes.control().calls(Provider::Generic, Endpoint::Token), 1);
}

async fn quirk_26_state_is_single_use_and_expires(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let (_, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    assert_eq!(query_of(env.get(&callback, &cookies).await.location.as_deref().unwrap())["status"], "succeeded");
    let grant_before = env.grants().await;
    let replay = env.get(&callback, &cookies).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error_code.as_deref(), Some("state_already_used"));
    // The connect link itself is single-use too.
    let again = env.get(&connect_url, &[]).await;
    assert_eq!(again.error_code.as_deref(), Some("session_already_used"));
    // A flow left at the provider longer than its lifetime expires.
    let (session_id, connect_url) = env.session("user-2", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    env.vault.clock.advance(std::time::Duration::from_secs(16 * 60));
    let late = env.get(&callback, &cookies).await;
    assert_eq!(late.error_code.as_deref(), Some("state_expired"));
    assert_eq!(env.session_status(&session_id).await["status"], "expired");
    assert_eq!(env.grants().await.len(), grant_before.len());
}

async fn quirk_26_access_denied_ends_the_session_as_denied(env: ConnectEnv) {
    env.configure_zoom().await;
    env.fakes.control().set_consent(Provider::Zoom, ConsentMode::AutoDeny);
    let (session_id, connect_url) = env.session("user-1", &["zoom"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    let location = step.location.unwrap();
    assert!(location.starts_with(RETURN_URL));
    assert_eq!(query_of(&location)["status"], "denied");
    let session = env.session_status(&session_id).await;
    assert_eq!(session["status"], "denied");
    assert_eq!(session["error"]["code"], "access_denied");
    assert!(env.grants().await.is_empty());
}

async fn quirk_27_wrong_pkce_verifier_from_an_injected_code_is_rejected(env: ConnectEnv) {
    env.configure_generic("generic-secret").await;
    // Two flows; the attacker's code (flow A) is injected into the victim's flow B.
    let (_, url_a) = env.session("attacker", &["generic"]).await;
    let (authorize_a, _) = env.open(&url_a).await;
    let code_a = query_of(&env.consent(&authorize_a).await)["code"].clone();
    let (session_b, url_b) = env.session("victim", &["generic"]).await;
    let (authorize_b, cookies_b) = env.open(&url_b).await;
    let callback_b = env.consent(&authorize_b).await;
    let code_b = query_of(&callback_b)["code"].clone();
    let injected = callback_b.replace(&format!("code={code_b}"), &format!("code={code_a}"));
    assert_ne!(injected, callback_b);
    let step = env.get(&injected, &cookies_b).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["error"], "code_rejected");
    assert_eq!(env.session_status(&session_b).await["status"], "failed");
    let log = env.fakes.control().token_requests(Provider::Generic);
    assert_eq!(log.last().unwrap().outcome_status, 400);
    assert!(env.grants().await.is_empty());
}

async fn quirk_28_generic_discovery_issuer_mismatch_is_refused(env: ConnectEnv) {
    env.fakes.control().set_variant(Variant::GenericWrongIssuerInMetadata(true));
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(json!({ "provider": "custom", "key": "generic", "client_id": "c", "client_secret": "s", "issuer": env.fakes.urls().generic_issuer })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(assert_error_shape(status, &body), "discovery_failed");
    let (_, configs) = env.api(Method::GET, "/v1/provider-configs", None).await;
    assert!(configs["data"].as_array().unwrap().is_empty());
}

async fn quirk_28_generic_without_pkce_methods_sends_no_pkce_and_posts_credentials(env: ConnectEnv) {
    env.fakes.control().set_variant(Variant::GenericCodeChallengeMethods(None));
    env.fakes.control().set_variant(Variant::GenericTokenEndpointAuthMethods(vec!["client_secret_post".into()]));
    env.configure_generic("generic-secret").await;
    let (_, connect_url) = env.session("user-1", &["generic"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    assert!(!query_of(&authorize).contains_key("code_challenge"), "{authorize}");
    let step = env.get(&env.consent(&authorize).await, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "succeeded");
    let log = env.fakes.control().token_requests(Provider::Generic);
    assert_eq!(log[0].client_auth, "body");
    assert!(log[0].code_verifier.is_none());
}

async fn generic_discovery_with_an_explicit_client_auth_the_metadata_allows(env: ConnectEnv) {
    // The metadata lists both (the fake's default): the vault would pick Basic, but this client
    // was registered for client_secret_post, and keeps discovery and its issuer check.
    let issuer = env.fakes.urls().generic_issuer.clone();
    let config = env
        .configure(
            Provider::Generic,
            serde_json::json!({ "provider": "custom", "key": "generic", "client_id": "generic-client",
                "client_secret": "generic-secret", "issuer": issuer, "scopes": ["openid"], "client_auth": "body" }),
        )
        .await;
    assert_eq!(config["endpoints"]["client_auth"], "body", "{config}");
    env.connect_ok("user-1", "generic").await;
    assert_eq!(env.fakes.control().token_requests(Provider::Generic)[0].client_auth, "body");
    // A style the metadata does not allow is refused, with what it does allow.
    env.fakes.control().set_variant(Variant::GenericTokenEndpointAuthMethods(vec!["client_secret_basic".into()]));
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(serde_json::json!({ "provider": "custom", "key": "generic-2", "client_id": "c", "client_secret": "generic-secret-2",
                "issuer": issuer, "client_auth": "body" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(assert_error_shape(status, &body), "client_auth_not_supported");
    assert!(body["message"].as_str().unwrap().contains("client_secret_basic"), "{body}");
    // Catalog providers take it from the catalog.
    let (status, body) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(serde_json::json!({ "provider": "zoom", "client_id": "z", "client_secret": "zoom-secret-9", "client_auth": "body" })),
        )
        .await;
    assert_eq!(
        (status, assert_error_shape(status, &body).as_str()),
        (StatusCode::BAD_REQUEST, "endpoints_not_allowed")
    );
}

async fn quirk_29_client_secret_with_reserved_characters_works_with_basic(env: ConnectEnv) {
    env.configure_generic("s3:cr%et+with=reserved").await;
    env.connect_ok("user-1", "generic").await;
    assert_eq!(env.fakes.control().token_requests(Provider::Generic)[0].client_auth, "basic");
}

async fn quirk_31_account_ids_are_strings_whatever_the_json_type(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let first = env.connect_ok("user-1", "dialpad-production").await;
    env.fakes.control().set_variant(Variant::DialpadUserId(IdFormat::Integer));
    let second = env.connect_ok("user-1", "dialpad-production").await;
    assert_eq!(first, second, "string and integer ids name the same account");
    let grant = env.grant(&first).await;
    assert!(grant["account"]["id"].is_string());
    // Aircall sends integers.
    env.configure_aircall().await;
    let aircall = env.grant(&env.connect_ok("user-1", "aircall").await).await;
    assert_eq!(aircall["account"]["user_id"], "123456");
}

async fn quirk_32_unknown_and_missing_token_fields_are_tolerated(env: ConnectEnv) {
    // Dialpad: id_token present, no scope; Zoom: api_url, scope; Aircall: created_at, no
    // expires_in, "Bearer" capitalised. All connect.
    env.configure_dialpad("production", None).await;
    env.configure_zoom().await;
    env.configure_aircall().await;
    for key in ["dialpad-production", "zoom", "aircall"] {
        env.connect_ok("user-1", key).await;
    }
    assert_eq!(env.grants().await.len(), 3);
}

async fn bad_missing_or_tampered_state(env: ConnectEnv) {
    let config = env.configure_dialpad("production", None).await;
    let (_, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    let params = query_of(&callback);
    let base = config["redirect_uri"].as_str().unwrap();
    let missing = env.get(&format!("{base}?code={}", params["code"]), &cookies).await;
    assert_eq!(missing.error_code.as_deref(), Some("missing_state"));
    let mut tampered_state = params["state"].clone();
    tampered_state.replace_range(0..1, if tampered_state.starts_with('A') { "B" } else { "A" });
    let tampered = env.get(&format!("{base}?code={}&state={tampered_state}", params["code"]), &cookies).await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    assert_eq!(tampered.error_code.as_deref(), Some("unknown_state"));
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Token), 0);
    // The genuine callback still works afterwards.
    let step = env.get(&callback, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "succeeded");
}

async fn bad_callback_with_both_code_and_error(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let (session_id, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    let step = env.get(&format!("{callback}&error=access_denied"), &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["error"], "invalid_callback");
    assert_eq!(env.session_status(&session_id).await["status"], "failed");
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Token), 0);
    assert!(env.grants().await.is_empty());
}

async fn bad_code_reuse_in_a_new_flow(env: ConnectEnv) {
    env.configure_aircall().await;
    let (_, url_a) = env.session("user-1", &["aircall"]).await;
    let (authorize_a, cookies_a) = env.open(&url_a).await;
    let callback_a = env.consent(&authorize_a).await;
    let code = query_of(&callback_a)["code"].clone();
    let grant_id = query_of(env.get(&callback_a, &cookies_a).await.location.as_deref().unwrap())["grant_id"].clone();
    let before = env.grant(&grant_id).await;
    // Replay the used code inside a fresh flow of another user.
    let (session_b, url_b) = env.session("user-2", &["aircall"]).await;
    let (authorize_b, cookies_b) = env.open(&url_b).await;
    let callback_b = env.consent(&authorize_b).await;
    let state_b = query_of(&callback_b)["state"].clone();
    let base = callback_b.split_once('?').unwrap().0;
    let step = env.get(&format!("{base}?code={code}&state={state_b}"), &cookies_b).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["error"], "code_rejected");
    assert_eq!(env.session_status(&session_b).await["status"], "failed");
    assert_eq!(env.grants().await.len(), 1);
    assert_eq!(env.grant(&grant_id).await["updated_at"], before["updated_at"]);
}

async fn bad_oversized_and_duplicated_parameters(env: ConnectEnv) {
    let config = env.configure_dialpad("production", None).await;
    let base = config["redirect_uri"].as_str().unwrap();
    let huge = "A".repeat(5000);
    let step = env.get(&format!("{base}?code=x&state={huge}"), &[]).await;
    assert_eq!(step.status, StatusCode::BAD_REQUEST);
    assert_eq!(step.error_code.as_deref(), Some("invalid_callback"));
    let step = env.get(&format!("{base}?code=x&state=a&state=b"), &[]).await;
    assert_eq!(step.error_code.as_deref(), Some("invalid_callback"));
    let step = env.get(&format!("{base}?code=%FF%FE&state=%00"), &[]).await;
    assert_eq!(step.status, StatusCode::BAD_REQUEST);
    let step = env.get(&format!("{}/connect/callback/not-an-id?code=x&state=y", env.vault.base), &[]).await;
    assert_eq!(step.status, StatusCode::BAD_REQUEST);
    let step = env.get(&format!("{}/connect/{}", env.vault.base, "x".repeat(3000)), &[]).await;
    assert_eq!(step.error_code.as_deref(), Some("unknown_session"));
    assert!(env.grants().await.is_empty());
}

async fn bad_callback_from_another_browser(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let (_, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    let (authorize, cookies) = env.open(&connect_url).await;
    let callback = env.consent(&authorize).await;
    let step = env.get(&callback, &[]).await;
    assert_eq!(step.error_code.as_deref(), Some("browser_mismatch"));
    // The right browser can still finish.
    let step = env.get(&callback, &cookies).await;
    assert_eq!(query_of(step.location.as_deref().unwrap())["status"], "succeeded");
}

async fn bad_return_url_off_the_allowlist(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    for url in [
        "https://evil.example/steal",
        "http://app.example.com/x",
        "https://app.example.com.evil.example/",
        "javascript:alert(1)",
        "https://app.example.com/#frag",
    ] {
        let (status, body) =
            env.api(Method::POST, "/v1/connect-sessions", Some(json!({ "end_user_id": "u", "return_url": url }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        let code = assert_error_shape(status, &body);
        assert!(code == "return_url_not_allowed" || code == "invalid_url", "{url}: {code}");
    }
}

async fn bad_expired_connect_link(env: ConnectEnv) {
    env.configure_dialpad("production", None).await;
    let (session_id, connect_url) = env.session("user-1", &["dialpad-production"]).await;
    env.vault.clock.advance(std::time::Duration::from_secs(601));
    let step = env.get(&connect_url, &[]).await;
    assert_eq!(step.status, StatusCode::GONE);
    assert_eq!(step.error_code.as_deref(), Some("session_expired"));
    assert_eq!(env.session_status(&session_id).await["status"], "expired");
    assert_eq!(env.fakes.control().calls(Provider::DialpadProduction, Endpoint::Authorize), 0);
}

async fn bad_provider_config_inputs(env: ConnectEnv) {
    let cases = [
        (json!({ "provider": "nope", "client_id": "c", "client_secret": "s" }), "unknown_provider"),
        (
            json!({ "provider": "dialpad", "client_id": "c", "client_secret": "s", "scopes": ["calls:list", "root"] }),
            "unknown_scope",
        ),
        (
            json!({ "provider": "zoom", "client_id": "c", "client_secret": "s", "scopes": ["meeting:read"] }),
            "scopes_not_configurable",
        ),
        (
            json!({ "provider": "dialpad", "environment": "staging", "client_id": "c", "client_secret": "s" }),
            "invalid_provider_config",
        ),
        (json!({ "provider": "dialpad", "client_id": "", "client_secret": "s" }), "invalid_client_id"),
        (json!({ "provider": "dialpad", "client_id": "c", "client_secret": "" }), "invalid_client_secret"),
        (json!({ "provider": "custom", "client_id": "c", "client_secret": "s" }), "endpoints_required"),
        (json!({ "provider": "dialpad", "key": "Bad Key", "client_id": "c", "client_secret": "s" }), "invalid_key"),
    ];
    for (body, expected) in cases {
        let (status, response) = env.api(Method::POST, "/v1/provider-configs", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_eq!(assert_error_shape(status, &response), expected, "{body}");
    }
    let (_, response) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(json!({ "provider": "dialpad", "client_id": "c", "client_secret": "s", "scopes": ["nope"] })),
        )
        .await;
    assert!(response["message"].as_str().unwrap().contains("offline_access"), "lists valid scopes: {response}");
    let (_, response) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(json!({ "provider": "zoom", "client_id": "c", "client_secret": "s", "scopes": ["x"] })),
        )
        .await;
    assert!(response["message"].as_str().unwrap().contains("Scopes tab"), "{response}");
    let zoom = env.configure_zoom().await;
    assert!(zoom["scopes_note"].as_str().unwrap().contains("Scopes tab"));
    let (status, response) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(json!({ "provider": "zoom", "client_id": "c", "client_secret": "s" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{response}");
}

async fn client_secret_is_write_only(env: ConnectEnv) {
    let secret = "very-secret-client-secret-value";
    let (status, created) = env
        .api(
            Method::POST,
            "/v1/provider-configs",
            Some(json!({ "provider": "aircall", "client_id": "c", "client_secret": secret })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    let (_, listed) = env.api(Method::GET, "/v1/provider-configs", None).await;
    let (_, single) = env.api(Method::GET, &format!("/v1/provider-configs/{id}"), None).await;
    let (status, updated) = env
        .api(
            Method::PUT,
            &format!("/v1/provider-configs/{id}"),
            Some(json!({ "provider": "aircall", "client_id": "c2", "client_secret": "another-secret" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["client_id"], "c2");
    assert_eq!(updated["redirect_uri"], created["redirect_uri"]);
    for shown in [&created, &listed, &single, &updated] {
        let text = shown.to_string();
        assert!(!text.contains(secret) && !text.contains("another-secret"), "{text}");
    }
    assert_eq!(created["client_secret_set"], true);
    // App B cannot see or touch app A's configuration.
    let (_, other_key) = env.vault.new_app("other").await;
    let (status, _) = env.vault.call(Method::GET, &format!("/v1/provider-configs/{id}"), Some(&other_key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        env.vault.call(Method::DELETE, &format!("/v1/provider-configs/{id}"), Some(&other_key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env.api(Method::DELETE, &format!("/v1/provider-configs/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// Quirk 2, the other half: with Dialpad's client authentication overridden to Basic, a
/// Basic-only Dialpad accepts the exchange.
async fn dialpad_with_basic_override_succeeds_against_basic_only(backend: tokenvault_testkit::Backend) {
    let Some(env) = ConnectEnv::start_with(backend, Some("basic")).await else { return };
    env.configure_dialpad("production", None).await;
    env.fakes.control().set_variant(Variant::DialpadClientAuth(ClientAuthMode::BasicOnly));
    env.connect_ok("user-1", "dialpad-production").await;
    assert_eq!(env.fakes.control().token_requests(Provider::DialpadProduction)[0].client_auth, "basic");
}

#[tokio::test]
async fn quirk_02_dialpad_basic_override_succeeds_against_basic_only_sqlite() {
    dialpad_with_basic_override_succeeds_against_basic_only(tokenvault_testkit::Backend::Sqlite).await;
}

#[tokio::test]
async fn quirk_02_dialpad_basic_override_succeeds_against_basic_only_postgres() {
    dialpad_with_basic_override_succeeds_against_basic_only(tokenvault_testkit::Backend::Postgres).await;
}
