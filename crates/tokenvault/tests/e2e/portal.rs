//! Issue 13, the portal's foundation: operators (created through the admin API and the CLI),
//! sign-in with a password hashed with argon2id, the session cookie's attributes, CSRF on every
//! form, sign-in rate limiting, sign-out and sign-out everywhere. Driven over real HTTP; the
//! browser suite drives the same pages in Chromium.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::TestVault;

on_both_backends!(
    an_operator_signs_in_sees_the_apps_and_signs_out,
    sign_in_needs_the_forms_token_and_is_rate_limited,
    forms_without_the_sessions_token_are_refused_and_sign_out_everywhere_ends_every_session,
    the_first_operator_is_created_from_the_command_line,
);

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A client that never follows redirects (each step is checked) and keeps no cookies by itself.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn value_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

pub(crate) fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn create_operator(vault: &TestVault, email: &str, role: &str) {
    let body = json!({ "email": email, "password": PASSWORD, "role": role });
    let (status, created) = vault.admin(Method::POST, "/operators", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], role);
    assert!(!created.to_string().contains(PASSWORD) && created.get("password_hash").is_none());
}

/// Signs in; returns the session cookie (`tv_portal=…`).
pub(crate) async fn sign_in(vault: &TestVault, email: &str, password: &str) -> reqwest::Response {
    let http = browser();
    let form = http.get(vault.url("/portal/sign-in")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let token_cookie = set_cookie(&form, "tv_signin").expect("the form sets its token cookie");
    let html = form.text().await.unwrap();
    http.post(vault.url("/portal/sign-in"))
        .header(COOKIE, format!("tv_signin={}", value_of(&token_cookie)))
        .form(&[("email", email), ("password", password), ("csrf", &hidden_csrf(&html))])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn signed_in(vault: &TestVault, email: &str) -> String {
    let response = sign_in(vault, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/portal");
    let cookie = set_cookie(&response, "tv_portal").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http in the test: no Secure attribute");
    format!("tv_portal={}", value_of(&cookie))
}

pub(crate) async fn get(vault: &TestVault, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(vault.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

async fn an_operator_signs_in_sees_the_apps_and_signs_out(vault: TestVault) {
    vault.new_app("acme-portal").await;
    create_operator(&vault, "Alice@Example.com", "owner").await;
    let (status, listed) = vault.admin(Method::GET, "/operators", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["email"], "alice@example.com");
    // Not signed in: to the sign-in page.
    let response = get(&vault, "/portal", None).await;
    assert_eq!(
        (response.status(), response.headers()[LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/portal/sign-in")
    );
    let cookie = signed_in(&vault, "alice@example.com").await;
    let page = get(&vault, "/portal", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "script only from the vault: {csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("alice@example.com (owner)") && html.contains("acme-portal"), "{html}");
    let css = get(&vault, "/portal/static/portal.css", None).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // Signing out ends the session.
    let out = browser()
        .post(vault.url("/portal/sign-out"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", hidden_csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&out, "tv_portal").unwrap().contains("Max-Age=0"));
    assert_eq!(get(&vault, "/portal", Some(&cookie)).await.status(), StatusCode::SEE_OTHER);
}

async fn sign_in_needs_the_forms_token_and_is_rate_limited(vault: TestVault) {
    create_operator(&vault, "bob@example.com", "viewer").await;
    // A form posted from elsewhere carries no token cookie: refused, and no session.
    let forged = browser()
        .post(vault.url("/portal/sign-in"))
        .form(&[("email", "bob@example.com"), ("password", PASSWORD), ("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&forged, "tv_portal").is_none());
    // Wrong passwords (and an unknown email) look the same.
    let wrong = sign_in(&vault, "bob@example.com", "not the password at all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown = sign_in(&vault, "nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.text().await.unwrap().contains("The email or password is wrong."));
    for _ in 0..3 {
        assert_eq!(
            sign_in(&vault, "bob@example.com", "still wrong, still wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Five failures from this address: even the right password waits (15 minutes).
    let limited = sign_in(&vault, "bob@example.com", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&limited, "tv_portal").is_none());
    // Bad operator input is refused with its code.
    let (status, body) = vault
        .admin(Method::POST, "/operators", Some(json!({ "email": "carol@example.com", "password": "short" })))
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("weak_password")));
    let (status, body) = vault
        .admin(Method::POST, "/operators", Some(json!({ "email": "bob@example.com", "password": PASSWORD })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = vault
        .admin(
            Method::POST,
            "/operators",
            Some(json!({ "email": "x@example.com", "password": PASSWORD, "role": "god" })),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_role")));
}

async fn forms_without_the_sessions_token_are_refused_and_sign_out_everywhere_ends_every_session(vault: TestVault) {
    create_operator(&vault, "dana@example.com", "admin").await;
    let laptop = signed_in(&vault, "dana@example.com").await;
    let phone = signed_in(&vault, "dana@example.com").await;
    assert_ne!(laptop, phone);
    let html = get(&vault, "/portal", Some(&phone)).await.text().await.unwrap();
    let phone_csrf = hidden_csrf(&html);
    // Another session's token, or none: refused, nothing ends.
    let html = get(&vault, "/portal", Some(&laptop)).await.text().await.unwrap();
    let laptop_csrf = hidden_csrf(&html);
    assert_ne!(laptop_csrf, phone_csrf);
    for csrf in ["", phone_csrf.as_str()] {
        let refused = browser()
            .post(vault.url("/portal/sign-out-everywhere"))
            .header(COOKIE, &laptop)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&vault, "/portal", Some(&phone)).await.status(), StatusCode::OK);
    let out = browser()
        .post(vault.url("/portal/sign-out-everywhere"))
        .header(COOKIE, &laptop)
        .form(&[("csrf", laptop_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    for session in [&laptop, &phone] {
        assert_eq!(get(&vault, "/portal", Some(session)).await.status(), StatusCode::SEE_OTHER);
    }
}

async fn the_first_operator_is_created_from_the_command_line(vault: TestVault) {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::from(crate::process::tokenvault());
    command
        .args([
            "--url",
            &vault.base,
            "operators",
            "create",
            "--email",
            "owner@example.com",
            "--role",
            "owner",
            "--json",
        ])
        .env("TOKENVAULT_ADMIN_TOKEN", crate::support::ADMIN_TOKEN)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((created["email"].as_str(), created["role"].as_str()), (Some("owner@example.com"), Some("owner")));
    assert!(!String::from_utf8_lossy(&output.stdout).contains(PASSWORD));
    // The password read from standard input (its newline dropped) signs in.
    signed_in(&vault, "owner@example.com").await;
}
