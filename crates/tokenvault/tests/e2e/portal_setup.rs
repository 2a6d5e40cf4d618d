//! Issue 13, setting an app up from the portal over HTTP: an operator creates an app, saves its
//! return origins and branding, adds Zoom from the catalog (the redirect URI to register is on
//! the page, the client secret never is), mints a key (shown once, and it works), rotates and
//! revokes it; a viewer sees the pages without forms and is refused at every form; a form without
//! the session's token is refused; an unknown app is a 404 page. The browser suite drives the
//! same pages in Chromium.

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Method, StatusCode};

use crate::connect_env::ConnectEnv;
use crate::connect_tests;
use crate::portal::{browser, create_operator, get, hidden_csrf, signed_in};

connect_tests!(an_operator_sets_up_an_app_from_the_portal, viewers_and_forged_forms_change_nothing,);

async fn post(env: &ConnectEnv, path: &str, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser().post(env.vault.url(path)).header(COOKIE, cookie).form(fields).send().await.unwrap()
}

async fn html(env: &ConnectEnv, path: &str, cookie: &str) -> String {
    let page = get(&env.vault, path, Some(cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "{path}");
    page.text().await.unwrap()
}

fn code_in(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("no #{id}: {html}")) + id.len() + 6;
    html[at..].split('<').next().unwrap().to_owned()
}

async fn an_operator_sets_up_an_app_from_the_portal(env: ConnectEnv) {
    create_operator(&env.vault, "owner@example.com", "owner").await;
    let cookie = signed_in(&env.vault, "owner@example.com").await;
    let overview = html(&env, "/portal", &cookie).await;
    let csrf = hidden_csrf(&overview);
    assert!(overview.contains("id=\"create-app\""));

    let created = post(&env, "/portal/apps", &cookie, &[("csrf", &csrf), ("name", "Portal CRM")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()[LOCATION].to_str().unwrap().to_owned();
    let app_id = location.trim_start_matches("/portal/apps/").split('?').next().unwrap().to_owned();
    assert!(app_id.starts_with("app_"), "{location}");
    let settings = html(&env, &location, &cookie).await;
    assert!(settings.contains("App created") && settings.contains("Portal CRM"));

    // Settings and branding; a bad colour is refused with its code and changes nothing.
    let path = format!("/portal/apps/{app_id}");
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "Portal CRM"),
        ("return_origins", "https://crm.example.com\r\nhttp://localhost:3000"),
        ("install_return_url", ""),
        ("display_name", "CRM by Portal"),
        ("logo_url", ""),
        ("accent_color", "#0A7D5A"),
        ("support_url", "mailto:help@crm.example.com"),
    ];
    let saved = post(&env, &path, &cookie, &fields).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, app) = env.vault.admin(Method::GET, &format!("/apps/{app_id}"), None).await;
    assert_eq!(app["return_origins"], serde_json::json!(["https://crm.example.com", "http://localhost:3000"]));
    assert_eq!(app["branding"]["display_name"], "CRM by Portal");
    assert_eq!(app["branding"]["accent_color"], "#0a7d5a");
    assert!(app["branding"]["logo_url"].is_null());
    let mut bad = fields;
    bad[6] = ("accent_color", "teal");
    let refused = post(&env, &path, &cookie, &bad).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.headers()["x-tokenvault-error"], "invalid_color");

    // Zoom from the catalog: the redirect URI to register is shown; the secret is not.
    let providers = format!("/portal/apps/{app_id}/providers");
    let page = html(&env, &providers, &cookie).await;
    assert!(page.contains("id=\"add-zoom\"") && page.contains("id=\"add-dialpad\"") && page.contains("Scopes tab"));
    let added = post(
        &env,
        &providers,
        &cookie,
        &[
            ("csrf", &csrf),
            ("provider", "zoom"),
            ("key", ""),
            ("client_id", "zoom-portal"),
            ("client_secret", "zoom-portal-secret"),
        ],
    )
    .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER, "{}", added.text().await.unwrap());
    let page = html(&env, &format!("{providers}?done=added"), &cookie).await;
    let redirect_uri = code_in(&page, "redirect-zoom");
    assert!(redirect_uri.starts_with(&env.vault.url("/connect/callback/pcf_")), "{redirect_uri}");
    assert!(page.contains("data-copy=\"redirect-zoom\"") && !page.contains("zoom-portal-secret"));
    // Dialpad with two chosen scopes.
    let added = post(
        &env,
        &providers,
        &cookie,
        &[
            ("csrf", &csrf),
            ("provider", "dialpad"),
            ("environment", "sandbox"),
            ("client_id", "dp"),
            ("client_secret", "dp-secret"),
            ("scopes_given", "1"),
            ("scopes", "recordings_export"),
            ("scopes", "offline_access"),
        ],
    )
    .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER, "{}", added.text().await.unwrap());
    let duplicate = post(
        &env,
        &providers,
        &cookie,
        &[("csrf", &csrf), ("provider", "zoom"), ("client_id", "z"), ("client_secret", "s")],
    )
    .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);

    // A key, shown once; it works.
    let keys = format!("/portal/apps/{app_id}/keys");
    let minted =
        post(&env, &keys, &cookie, &[("csrf", &csrf), ("name", "backend"), ("scopes", "app:read grants:read")]).await;
    assert_eq!(minted.status(), StatusCode::CREATED);
    let page = minted.text().await.unwrap();
    let secret = code_in(&page, "new-key-secret");
    let (status, me) = env.vault.call(Method::GET, "/v1/app", Some(&secret), None).await;
    assert_eq!((status, me["id"].as_str()), (StatusCode::OK, Some(app_id.as_str())), "{me}");
    let (_, configs) = env.vault.call(Method::GET, "/v1/provider-configs", Some(&secret), None).await;
    assert_eq!(configs["code"], "insufficient_scope", "the key has what was asked, no more");
    let listed = html(&env, &keys, &cookie).await;
    assert!(!listed.contains(&secret), "shown only once");
    let key_id = page.split("data-key=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let rotated =
        post(&env, &format!("{keys}/{key_id}/rotate"), &cookie, &[("csrf", &csrf), ("grace_seconds", "0")]).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let new_secret = code_in(&rotated.text().await.unwrap(), "new-key-secret");
    assert_ne!(new_secret, secret);
    assert_eq!(env.vault.call(Method::GET, "/v1/app", Some(&new_secret), None).await.0, StatusCode::OK);
    let (_, listed) = env.vault.admin(Method::GET, &format!("/apps/{app_id}/api-keys"), None).await;
    let new_id =
        listed["data"].as_array().unwrap().iter().find(|k| k["replaced_by"].is_null() && k["revoked_at"].is_null());
    let new_id = new_id.map(|k| k["id"].as_str().unwrap().to_owned());
    let revoked = post(&env, &format!("{keys}/{}/revoke", new_id.unwrap()), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(env.vault.call(Method::GET, "/v1/app", Some(&new_secret), None).await.0, StatusCode::UNAUTHORIZED);

    let missing = get(&env.vault, "/portal/apps/app_00000000000000000000000000000000", Some(&cookie)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn viewers_and_forged_forms_change_nothing(env: ConnectEnv) {
    create_operator(&env.vault, "owner@example.com", "owner").await;
    create_operator(&env.vault, "viewer@example.com", "viewer").await;
    let owner = signed_in(&env.vault, "owner@example.com").await;
    let viewer = signed_in(&env.vault, "viewer@example.com").await;
    let (_, app) = env.api(Method::GET, "/v1/app", None).await;
    let app_id = app["id"].as_str().unwrap();
    let overview = html(&env, "/portal", &viewer).await;
    assert!(!overview.contains("id=\"create-app\""), "no forms for a viewer");
    let viewer_csrf = hidden_csrf(&overview);
    for path in ["", "/providers", "/keys"] {
        let page = html(&env, &format!("/portal/apps/{app_id}{path}"), &viewer).await;
        assert!(
            !page.contains("type=\"submit\">Save")
                && !page.contains("id=\"mint-key\"")
                && !page.contains("id=\"add-zoom\"")
        );
    }
    for (path, fields) in [
        ("/portal/apps".to_owned(), vec![("name", "nope")]),
        (format!("/portal/apps/{app_id}/keys"), vec![("name", "n"), ("scopes", "*")]),
        (
            format!("/portal/apps/{app_id}/providers"),
            vec![("provider", "zoom"), ("client_id", "z"), ("client_secret", "s")],
        ),
    ] {
        let mut form = vec![("csrf", viewer_csrf.as_str())];
        form.extend(fields.iter().copied());
        let refused = post(&env, &path, &viewer, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.headers()["x-tokenvault-error"], "role_forbidden");
        let mut forged = vec![("csrf", "forged")];
        forged.extend(fields.iter().copied());
        let refused = post(&env, &path, &owner, &forged).await;
        assert_eq!(refused.headers()["x-tokenvault-error"], "csrf_failed", "{path}");
        let missing = post(&env, &path, &owner, &fields).await;
        assert_eq!(missing.status(), StatusCode::BAD_REQUEST, "no csrf field at all: {path}");
        assert_eq!(missing.headers()["x-tokenvault-error"], "invalid_form");
    }
    let (_, apps) = env.vault.admin(Method::GET, "/apps", None).await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "nothing was created");
    let (_, keys) = env.api(Method::GET, "/v1/api-keys", None).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    let (_, configs) = env.api(Method::GET, "/v1/provider-configs", None).await;
    assert!(configs["data"].as_array().unwrap().is_empty());
}
