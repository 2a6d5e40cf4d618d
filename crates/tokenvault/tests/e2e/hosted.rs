//! Issue 13, the end-user pages over HTTP: the app's branding (validated, written only into the
//! pages' own nonce'd style block), the hosted Connect page (providers with their scopes and
//! descriptions, Zoom's note, an already-connected account, errors that say what to do), and the
//! wallet (a one-use link swapped for a cookie; the end user's grants only; disconnect revokes at
//! the provider; a delegation's revocation; CSRF on every form; other users' grants are not
//! found). The browser suite drives the same pages in Chromium.

use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenvault_fakes::{Endpoint, FakeUser, Provider};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;

connect_tests!(
    branding_and_scopes_show_on_the_hosted_connect_page,
    an_end_user_sees_and_revokes_their_connections_in_the_wallet,
    wallet_links_open_once_and_need_the_right_key,
    a_popup_flow_posts_its_result_to_the_registered_origin_only,
);

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn branding_and_scopes_show_on_the_hosted_connect_page(env: ConnectEnv) {
    env.configure_zoom().await;
    let dialpad_config = env.configure_dialpad("production", Some(vec!["recordings_export", "offline_access"])).await;
    for (body, code) in [
        (json!({ "accent_color": "red" }), "invalid_color"),
        (json!({ "accent_color": "#12345g" }), "invalid_color"),
        (json!({ "logo_url": "javascript:alert(1)" }), "invalid_url"),
        (json!({ "support_url": "mailto:not an address" }), "invalid_url"),
        (json!({ "display_name": "  " }), "invalid_name"),
    ] {
        let (status, error) = env.api(Method::PATCH, "/v1/app", Some(json!({ "branding": body }))).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}: {error}");
    }
    let (status, error) = env.api(Method::PATCH, "/v1/app", Some(json!({ "branding": [null, null] }))).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")), "{error}");
    let branding = json!({ "display_name": "Acme <CRM>", "accent_color": "#FFD700",
        "logo_url": "https://cdn.acme.example/logo.png", "support_url": "mailto:help@acme.example" });
    let (status, app) = env.api(Method::PATCH, "/v1/app", Some(json!({ "branding": branding }))).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(app["branding"]["accent_color"], "#ffd700", "stored lower-cased");
    assert_eq!(app["name"], "acme", "the app's own name is untouched");

    let (_, connect_url) = env.session("user-1", &["zoom", "dialpad-production"]).await;
    let page = browser().get(&connect_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("<style nonce=\"{nonce}\">")), "the one style block carries the nonce");
    assert!(!csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"));
    assert!(!html.contains("Acme <CRM>") && html.contains("Acme &#60;CRM&#62;"), "escaped: {html}");
    assert!(html.contains("--accent: #ffd700; --on-accent: #111111"), "dark text on a light accent");
    assert!(html.contains("src=\"https://cdn.acme.example/logo.png\"") && html.contains("mailto:help@acme.example"));
    assert!(html.contains("Choose an account to connect to Acme &#60;CRM&#62;"));
    // Dialpad's scopes with the catalog's descriptions; Zoom's come from the app's settings.
    assert!(html.contains("recordings_export"), "{html}");
    assert!(html.contains("Scopes tab"), "Zoom's explanation: {html}");
    assert!(html.contains("<svg"), "logos are shipped inline");
    assert!(!html.contains("Already connected"));

    // Once connected, a new link shows the account with "use a different account".
    env.connect_ok("user-1", "zoom").await;
    let (_, connect_url) = env.session("user-1", &["zoom"]).await;
    let html = browser().get(&connect_url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Connect your Zoom account to Acme &#60;CRM&#62;"));
    assert!(html.contains("Already connected as") && html.contains("Use a different account"), "{html}");
    // Another end user sees no account of user-1.
    let (_, other_url) = env.session("user-2", &["zoom"]).await;
    let html = browser().get(&other_url).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("Already connected"));

    // Errors say what to do; the code is on the page and in a header.
    let (authorize, _) = env.open(&connect_url).await;
    assert!(authorize.contains("/oauth/authorize"), "{authorize}");
    let used = env.get(&connect_url, &[]).await;
    assert_eq!(used.status, StatusCode::CONFLICT);
    assert_eq!(used.error_code.as_deref(), Some("session_already_used"));
    assert!(used.body.contains("What to do:") && used.body.contains("new link"), "{}", used.body);
    let unknown = env.get(&env.vault.url("/connect/tvc_nope"), &[]).await;
    assert_eq!(unknown.error_code.as_deref(), Some("unknown_session"));
    let (_, dialpad_only) = env.session("user-3", &["dialpad-production"]).await;
    let config_path = format!("/v1/provider-configs/{}", dialpad_config["id"].as_str().unwrap());
    let (status, _) = env.api(Method::DELETE, &config_path, None).await;
    assert!(status.is_success(), "{status}");
    let gone = env.get(&dialpad_only, &[]).await;
    assert_eq!(gone.error_code.as_deref(), Some("provider_not_allowed"));
    assert!(gone.body.contains("not a problem on your side"), "{}", gone.body);
}

/// Opens a wallet link; returns the `tv_wallet=…` cookie.
async fn open_wallet(env: &ConnectEnv, end_user: &str) -> String {
    let (status, created) = env
        .api(Method::POST, "/v1/wallet-sessions", Some(json!({ "end_user_id": end_user, "ttl_seconds": 600 })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["wallet_url"].as_str().unwrap();
    assert!(url.starts_with(&env.vault.url("/wallet/tvw_")), "{url}");
    let opened = browser().get(url).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(opened.headers()[LOCATION], "/wallet", "the link's secret leaves the address bar");
    let cookie = opened.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/wallet"));
    cookie.split(';').next().unwrap().to_owned()
}

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

async fn wallet_page(env: &ConnectEnv, cookie: &str) -> (StatusCode, String) {
    let page = browser().get(env.vault.url("/wallet")).header(COOKIE, cookie).send().await.unwrap();
    (page.status(), page.text().await.unwrap())
}

async fn post_form(env: &ConnectEnv, path: &str, cookie: &str, csrf: &str) -> reqwest::Response {
    browser().post(env.vault.url(path)).header(COOKIE, cookie).form(&[("csrf", csrf)]).send().await.unwrap()
}

async fn an_end_user_sees_and_revokes_their_connections_in_the_wallet(env: ConnectEnv) {
    env.configure_zoom().await;
    env.configure_dialpad("production", None).await;
    let zoom = env.connect_ok("user-1", "zoom").await;
    let dialpad = env.connect_ok("user-1", "dialpad-production").await;
    let base = FakeUser::default_for(Provider::Zoom);
    let other = FakeUser { id: format!("{}2", base.id), account_id: format!("{}2", base.account_id), ..base };
    env.fakes.control().set_user(Provider::Zoom, other);
    let theirs = env.connect_ok("user-2", "zoom").await;
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "Scheduler bot" }))).await;
    let agent_id = agent["id"].as_str().unwrap();
    let (status, delegation) =
        env.api(Method::POST, &format!("/v1/agents/{agent_id}/delegations"), Some(json!({ "grant_id": zoom }))).await;
    assert_eq!(status, StatusCode::CREATED, "{delegation}");
    let delegation_id = delegation["id"].as_str().unwrap();
    let (status, token) = env.api(Method::POST, &format!("/v1/grants/{zoom}/token"), None).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let access = token["access_token"].as_str().unwrap_or_else(|| panic!("{token}")).to_owned();

    let cookie = open_wallet(&env, "user-1").await;
    let (status, html) = wallet_page(&env, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&format!("data-grant=\"{zoom}\"")) && html.contains(&format!("data-grant=\"{dialpad}\"")));
    assert!(!html.contains(&theirs), "another end user's grant is not shown");
    assert!(html.contains("Scheduler bot"), "the agent with a delegation");
    assert!(!html.contains(&access), "never a token");
    assert!(html.contains("Recent activity") && html.contains("used the connection"), "the token retrieval: {html}");
    let csrf = hidden_csrf(&html);

    // Forms need the session's token.
    let forged = post_form(&env, &format!("/wallet/grants/{zoom}/disconnect"), &cookie, "forged").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(forged.headers()["x-tokenvault-error"], "csrf_failed");
    let no_cookie = post_form(&env, &format!("/wallet/grants/{zoom}/disconnect"), "tv_wallet=nope", &csrf).await;
    assert_eq!(no_cookie.status(), StatusCode::UNAUTHORIZED);
    // Another end user's grant is "not found", and stays connected.
    let other = post_form(&env, &format!("/wallet/grants/{theirs}/disconnect"), &cookie, &csrf).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(env.grant(&theirs).await["status"], "active");

    // Stop the agent, then disconnect: revoked at Zoom.
    let revoked = post_form(&env, &format!("/wallet/delegations/{delegation_id}/revoke"), &cookie, &csrf).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let (_, delegation) = env.api(Method::GET, &format!("/v1/delegations/{delegation_id}"), None).await;
    assert!(delegation["revoked_at"].is_string(), "{delegation}");
    assert!(env.fakes.control().is_access_token_active(Provider::Zoom, &access));
    assert_eq!(env.fakes.control().calls(Provider::Zoom, Endpoint::Revoke), 0);
    let done = post_form(&env, &format!("/wallet/grants/{zoom}/disconnect"), &cookie, &csrf).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], "/wallet?done=disconnected");
    assert_eq!(env.grant(&zoom).await["status"], "revoked");
    assert!(env.fakes.control().calls(Provider::Zoom, Endpoint::Revoke) >= 1, "revoked at Zoom");
    assert!(!env.fakes.control().is_access_token_active(Provider::Zoom, &access));
    let (_, html) = wallet_page(&env, &cookie).await;
    assert!(!html.contains(&format!("data-grant=\"{zoom}\"")) && html.contains(&format!("data-grant=\"{dialpad}\"")));
    // Recent activity is newest first: the disconnect comes before the connects.
    let activity = &html[html.find("id=\"activity\"").expect("the activity table")..];
    let (revoked, connected) = (activity.find("disconnected").unwrap(), activity.find("grant connected").unwrap());
    assert!(revoked < connected, "{activity}");
    // The audit names the end user as the one who did it.
    let (_, audit) = env.api(Method::GET, &format!("/v1/audit?grant_id={zoom}"), None).await;
    let disconnect = audit["data"].as_array().unwrap().iter().find(|e| e["action"] == "grant.revoked");
    let disconnect = disconnect.unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(disconnect["actor"]["type"], "end_user", "{disconnect}");
    assert_eq!(disconnect["actor"]["id"], "user-1");

    // Sign out ends the session.
    let html = wallet_page(&env, &cookie).await.1;
    let out = post_form(&env, "/wallet/sign-out", &cookie, &hidden_csrf(&html)).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(wallet_page(&env, &cookie).await.0, StatusCode::UNAUTHORIZED);
}

async fn wallet_links_open_once_and_need_the_right_key(env: ConnectEnv) {
    let (status, created) =
        env.api(Method::POST, "/v1/wallet-sessions", Some(json!({ "end_user_id": "user-1" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["wallet_url"].as_str().unwrap().to_owned();
    assert_eq!(browser().get(&url).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let again = browser().get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert_eq!(again.headers()["x-tokenvault-error"], "wallet_link_used");
    let unknown = browser().get(env.vault.url("/wallet/tvw_unknown")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()["x-tokenvault-error"], "unknown_wallet_link");
    assert_eq!(wallet_page(&env, "tv_wallet=forged").await.0, StatusCode::UNAUTHORIZED);
    for (body, code) in [
        (json!({ "end_user_id": "" }), "invalid_end_user_id"),
        (json!({ "end_user_id": "u", "ttl_seconds": 10 }), "invalid_ttl"),
    ] {
        let (status, error) = env.api(Method::POST, "/v1/wallet-sessions", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["code"], code, "{error}");
    }
    // It needs `grants:admin` (the wallet can disconnect), which no agent key can hold.
    let (_, narrow) =
        env.api(Method::POST, "/v1/api-keys", Some(json!({ "name": "n", "scopes": ["grants:write"] }))).await;
    let (status, error) = env
        .vault
        .call(Method::POST, "/v1/wallet-sessions", narrow["key"].as_str(), Some(json!({ "end_user_id": "u" })))
        .await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{error}");
    let (_, agent) = env.api(Method::POST, "/v1/agents", Some(json!({ "name": "a" }))).await;
    let (_, minted) = env
        .api(
            Method::POST,
            &format!("/v1/agents/{}/keys", agent["id"].as_str().unwrap()),
            Some(json!({ "scopes": ["connect:initiate"] })),
        )
        .await;
    let (status, error) = env
        .vault
        .call(Method::POST, "/v1/wallet-sessions", minted["key"].as_str(), Some(json!({ "end_user_id": "u" })))
        .await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{error}");
}

async fn a_popup_flow_posts_its_result_to_the_registered_origin_only(env: ConnectEnv) {
    env.configure_zoom().await;
    let script = browser().get(env.vault.url("/connect.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("window.open"));
    let (_, connect_url) = env.session("user-1", &["zoom"]).await;
    // The Connect page opened in popup mode keeps the mode on its Continue button.
    let landing = env.get(&format!("{connect_url}?mode=popup"), &[]).await;
    assert!(landing.body.contains("provider=zoom&#38;mode=popup"), "{}", landing.body);
    let start = env.get(&format!("{connect_url}?provider=zoom&mode=popup"), &[]).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    assert!(start.cookies.iter().any(|c| c == "tv_popup=1"), "{:?}", start.cookies);
    let callback = env.consent(start.location.as_deref().unwrap()).await;
    let page = browser().get(&callback).header(COOKIE, start.cookies.join("; ")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "a page, not a redirect");
    let csp = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    let cleared = page.headers().get_all(SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("tv_popup=;"));
    let html = page.text().await.unwrap();
    let nonce = csp.split("script-src 'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")), "{html}");
    assert!(html.contains("data-origin=\"https://app.example.com\""), "posted only to the return URL's origin: {html}");
    assert!(
        html.contains("&#34;status&#34;:&#34;succeeded&#34;")
            || html.contains("&quot;status&quot;:&quot;succeeded&quot;"),
        "{html}"
    );
    assert!(cleared, "the popup mark is cleared");
    // Without the popup mark, the same flow ends with the redirect to the app.
    assert!(env.connect_ok("user-2", "zoom").await.starts_with("grt_"));
}
