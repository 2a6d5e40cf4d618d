//! Issue 13, the portal's activity pages: an app's grants (filters, detail, disconnect, a connect
//! link), its audit log (filters, pages, CSV and JSON-lines export) and the overview's charts
//! across apps. Driven over real HTTP against the real server and the fake providers, signed in
//! as operators of each role.

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenvault_fakes::{ClientRegistration, Endpoint, FakeUser, Fault, Provider};

use crate::connect_env::{ConnectEnv, RETURN_ORIGIN, RETURN_URL, query_of};
use crate::connect_tests;

connect_tests!(
    grants_are_listed_filtered_shown_and_disconnected_by_an_operator,
    viewers_and_forms_without_the_sessions_token_change_nothing,
    a_grant_of_another_app_is_not_found_under_this_apps_pages,
    a_connect_link_made_in_the_portal_opens_the_hosted_connect_page,
    the_audit_log_is_filtered_paged_and_exported,
    the_overview_charts_count_calls_refreshes_and_grants_across_apps,
);

const PASSWORD: &str = "correct horse battery staple";

/// A client that never follows redirects and keeps no cookies by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn unescape(text: &str) -> String {
    text.replace("&#38;", "&")
        .replace("&#x26;", "&")
        .replace("&#x3d;", "=")
        .replace("&#61;", "=")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hidden_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The opening tag of the element with `id`.
fn tag<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(&html[start..=end])
}

/// An attribute of the element with `id`, unescaped.
fn attribute(html: &str, id: &str, name: &str) -> Option<String> {
    let tag = tag(html, id)?;
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(unescape(tag[at..].split('"').next()?))
}

/// The text right inside the element with `id` (up to its first child tag), unescaped.
fn text_of(html: &str, id: &str) -> Option<String> {
    let tag = tag(html, id)?;
    let at = html.find(tag)? + tag.len();
    Some(unescape(html[at..].split('<').next()?))
}

/// The HTML of the `<table id="…">`.
fn table<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<table id=\"{id}\"")).unwrap_or_else(|| panic!("no table {id}: {html}"));
    let end = start + html[start..].find("</table>").unwrap();
    &html[start..end]
}

/// Creates an operator; returns its id.
async fn operator(env: &ConnectEnv, email: &str, role: &str) -> String {
    let body = json!({ "email": email, "password": PASSWORD, "role": role });
    let (status, created) = env.vault.admin(Method::POST, "/operators", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Signs in; returns the session cookie (`tv_portal=…`).
async fn sign_in(env: &ConnectEnv, email: &str) -> String {
    let http = browser();
    let form = http.get(env.vault.url("/portal/sign-in")).send().await.unwrap();
    let token = set_cookie(&form, "tv_signin").expect("the form's token cookie");
    let html = form.text().await.unwrap();
    let response = http
        .post(env.vault.url("/portal/sign-in"))
        .header(COOKIE, token)
        .form(&[("email", email), ("password", PASSWORD), ("csrf", &hidden_csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    set_cookie(&response, "tv_portal").expect("a session cookie")
}

struct Page {
    status: StatusCode,
    error_code: Option<String>,
    location: Option<String>,
    content_type: String,
    body: String,
}

async fn read(response: reqwest::Response) -> Page {
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (error_code, location, content_type) =
        (header("x-tokenvault-error"), header(LOCATION.as_str()), header("content-type").unwrap_or_default());
    Page { status: response.status(), error_code, location, content_type, body: response.text().await.unwrap() }
}

async fn get(env: &ConnectEnv, path: &str, cookie: &str) -> Page {
    read(browser().get(env.vault.url(path)).header(COOKIE, cookie).send().await.unwrap()).await
}

async fn post(env: &ConnectEnv, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Page {
    read(browser().post(env.vault.url(path)).header(COOKIE, cookie).form(fields).send().await.unwrap()).await
}

async fn app_id(env: &ConnectEnv) -> String {
    env.api(Method::GET, "/v1/app", None).await.1["id"].as_str().unwrap().to_owned()
}

async fn audit(env: &ConnectEnv, query: &str) -> Vec<Value> {
    let (status, page) = env.api(Method::GET, &format!("/v1/audit?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

/// Connects `end_user` at Zoom as a Zoom user of their own (Zoom keeps one authorization per
/// user and app: a second end user connecting the same Zoom user would supersede the first).
async fn connect_zoom(env: &ConnectEnv, end_user: &str) -> String {
    let id: String = end_user.chars().filter(char::is_ascii_alphanumeric).collect();
    env.fakes.control().set_user(
        Provider::Zoom,
        FakeUser {
            id: format!("zoomuser{id}"),
            account_id: "Q8ZiAqZ_TE6sYVA4p2dG1w".into(),
            name: format!("Zoomer {id}"),
            email: format!("{id}@example.com"),
        },
    );
    env.connect_ok(end_user, "zoom").await
}

/// A second app with its own Zoom configuration (and client at the fake), and one of its end
/// users connected: returns (app id, grant id).
async fn other_app_with_a_grant(env: &ConnectEnv) -> (String, String) {
    let (app_id, key) = env.vault.new_app("other").await;
    let call = |method: Method, path: &'static str, body: Value| {
        let key = key.clone();
        async move { env.vault.call(method, path, Some(&key), Some(body)).await }
    };
    let (status, body) = call(Method::PATCH, "/v1/app", json!({ "return_origins": [RETURN_ORIGIN] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let client = json!({ "provider": "zoom", "client_id": "zoom-client-other", "client_secret": "zoom-secret-other" });
    let (status, config) = call(Method::POST, "/v1/provider-configs", client).await;
    assert_eq!(status, StatusCode::CREATED, "{config}");
    env.fakes.control().register_client(
        Provider::Zoom,
        ClientRegistration {
            client_id: "zoom-client-other".into(),
            client_secret: "zoom-secret-other".into(),
            redirect_uris: vec![config["redirect_uri"].as_str().unwrap().to_owned()],
            scopes: vec!["user:read:user".into(), "meeting:read:meeting".into()],
            install_uri: None,
        },
    );
    env.fakes.control().set_user(
        Provider::Zoom,
        FakeUser {
            id: "zoomuserother".into(),
            account_id: "otheraccount".into(),
            name: "Other Zoomer".into(),
            email: "other@example.com".into(),
        },
    );
    let session = json!({ "end_user_id": "other-user", "providers": ["zoom"], "return_url": RETURN_URL });
    let (status, session) = call(Method::POST, "/v1/connect-sessions", session).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (authorize, cookies) = env.open(session["connect_url"].as_str().unwrap()).await;
    let callback = env.consent(&authorize).await;
    let back = env.get(&callback, &cookies).await;
    let location = back.location.unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    (app_id, query_of(&location)["grant_id"].clone())
}

async fn proxy_get(env: &ConnectEnv, grant_id: &str, path: &str) -> StatusCode {
    let url = env.vault.url(&format!("/v1/proxy/{grant_id}{path}"));
    env.vault.http.get(url).bearer_auth(&env.key).send().await.unwrap().status()
}

async fn grants_are_listed_filtered_shown_and_disconnected_by_an_operator(env: ConnectEnv) {
    env.configure_zoom().await;
    let first = connect_zoom(&env, "user-1").await;
    let second = connect_zoom(&env, "user-2").await;
    let app = app_id(&env).await;
    let owner = operator(&env, "olga@example.com", "owner").await;
    let cookie = sign_in(&env, "olga@example.com").await;

    let list = get(&env, &format!("/portal/apps/{app}/grants"), &cookie).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let rows = table(&list.body, "grants");
    for id in [&first, &second] {
        assert!(rows.contains(&format!("href=\"/portal/apps/{app}/grants/{id}\"")), "{rows}");
    }
    assert!(rows.contains("user-1") && rows.contains("zoom") && rows.contains("status-active"));
    assert!(tag(&list.body, "grant-filters").is_some() && tag(&list.body, "connect-link").is_some());
    assert!(list.body.contains("<option value=\"zoom\">"), "the provider filter lists the app's providers");

    // Filters: by end user, by status; a status that does not exist is refused with its code.
    let one = get(&env, &format!("/portal/apps/{app}/grants?end_user_id=user-1&status=&provider=zoom"), &cookie).await;
    let rows = table(&one.body, "grants");
    assert!(rows.contains(&first) && !rows.contains(&second), "{rows}");
    let revoked = get(&env, &format!("/portal/apps/{app}/grants?status=revoked"), &cookie).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(tag(&revoked.body, "no-grants").is_some() && !revoked.body.contains(&first));
    assert!(revoked.body.contains("<option value=\"revoked\" selected>"), "the filter shows what is chosen");
    let bad = get(&env, &format!("/portal/apps/{app}/grants?status=sleeping"), &cookie).await;
    assert_eq!((bad.status, bad.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_status")));
    let bad = get(&env, &format!("/portal/apps/{app}/grants?color=red"), &cookie).await;
    assert_eq!((bad.status, bad.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_query")));

    // The detail page: account, scopes, expiry, history, the disconnect form.
    let detail = get(&env, &format!("/portal/apps/{app}/grants/{first}"), &cookie).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let grant = env.grant(&first).await;
    assert_eq!(text_of(&detail.body, "grant-status").as_deref(), Some("active"));
    assert_eq!(text_of(&detail.body, "grant-end-user").as_deref(), Some("user-1"));
    let account = detail.body.split("id=\"grant-account\"").nth(1).unwrap().split("</dd>").next().unwrap();
    assert!(account.contains(grant["account"]["id"].as_str().unwrap()), "{account}");
    if let Some(email) = grant["account"]["email"].as_str() {
        assert!(account.contains(email), "{account}");
    }
    assert!(detail.body.contains("<code>user:read:user</code>"), "the scopes are shown");
    assert_eq!(text_of(&detail.body, "grant-expires").as_deref(), grant["expires_at"].as_str());
    assert!(table(&detail.body, "history").contains("grant.connected"));
    assert!(tag(&detail.body, "disconnect").is_some());
    let csrf = hidden_csrf(&detail.body);

    // Disconnect through the portal's form: revoked, and the audit row names the operator.
    let done = post(&env, &format!("/portal/apps/{app}/grants/{first}/disconnect"), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(format!("/portal/apps/{app}/grants/{first}").as_str()));
    assert_eq!(env.grant(&first).await["status"], "revoked");
    assert_eq!(env.grant(&second).await["status"], "active", "only that grant");
    let rows = audit(&env, &format!("grant_id={first}&action=grant.revoked")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["actor"]["type"], "operator");
    assert_eq!(rows[0]["actor"]["id"], owner.as_str());
    let detail = get(&env, &format!("/portal/apps/{app}/grants/{first}"), &cookie).await;
    assert_eq!(text_of(&detail.body, "grant-status").as_deref(), Some("revoked"));
    assert!(tag(&detail.body, "disconnect").is_none(), "nothing left to disconnect");
    assert!(table(&detail.body, "history").contains("grant.revoked"));
    let revoked = get(&env, &format!("/portal/apps/{app}/grants?status=revoked"), &cookie).await;
    let rows = table(&revoked.body, "grants");
    assert!(rows.contains(&first) && !rows.contains(&second));

    // Not signed in: to the sign-in page.
    let anonymous =
        read(browser().get(env.vault.url(&format!("/portal/apps/{app}/grants"))).send().await.unwrap()).await;
    assert_eq!((anonymous.status, anonymous.location.as_deref()), (StatusCode::SEE_OTHER, Some("/portal/sign-in")));
}

async fn viewers_and_forms_without_the_sessions_token_change_nothing(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = connect_zoom(&env, "user-1").await;
    let app = app_id(&env).await;
    operator(&env, "vera@example.com", "viewer").await;
    operator(&env, "adam@example.com", "admin").await;
    let viewer = sign_in(&env, "vera@example.com").await;
    let admin = sign_in(&env, "adam@example.com").await;

    // A viewer sees the pages without their forms, and a posted form is refused.
    let list = get(&env, &format!("/portal/apps/{app}/grants"), &viewer).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(table(&list.body, "grants").contains(&grant_id));
    assert!(tag(&list.body, "connect-link").is_none());
    let detail = get(&env, &format!("/portal/apps/{app}/grants/{grant_id}"), &viewer).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(tag(&detail.body, "disconnect").is_none());
    let viewer_csrf = hidden_csrf(&detail.body);
    let disconnect = format!("/portal/apps/{app}/grants/{grant_id}/disconnect");
    let refused = post(&env, &disconnect, &viewer, &[("csrf", &viewer_csrf)]).await;
    assert_eq!((refused.status, refused.error_code.as_deref()), (StatusCode::FORBIDDEN, Some("role_forbidden")));
    let link = format!("/portal/apps/{app}/connect-links");
    let refused =
        post(&env, &link, &viewer, &[("csrf", &viewer_csrf), ("end_user_id", "user-2"), ("provider", "zoom")]).await;
    assert_eq!((refused.status, refused.error_code.as_deref()), (StatusCode::FORBIDDEN, Some("role_forbidden")));

    // An admin's form without this session's token (none, or another session's) is refused.
    for csrf in ["", viewer_csrf.as_str()] {
        let refused = post(&env, &disconnect, &admin, &[("csrf", csrf)]).await;
        assert_eq!((refused.status, refused.error_code.as_deref()), (StatusCode::FORBIDDEN, Some("csrf_failed")));
        let refused = post(&env, &link, &admin, &[("csrf", csrf), ("end_user_id", "user-2")]).await;
        assert_eq!(refused.error_code.as_deref(), Some("csrf_failed"));
    }
    let missing = post(&env, &disconnect, &admin, &[]).await;
    assert_eq!(
        (missing.status, missing.error_code.as_deref()),
        (StatusCode::BAD_REQUEST, Some("invalid_form")),
        "no token field at all"
    );
    assert_eq!(env.grant(&grant_id).await["status"], "active", "nothing changed");
    assert!(audit(&env, "action=grant.revoked").await.is_empty());
    assert!(audit(&env, "action=grant.connected").await.len() == 1, "no connect session was made either");
}

async fn a_grant_of_another_app_is_not_found_under_this_apps_pages(env: ConnectEnv) {
    env.configure_zoom().await;
    let grant_id = connect_zoom(&env, "user-1").await;
    let app = app_id(&env).await;
    let (other, other_grant) = other_app_with_a_grant(&env).await;
    operator(&env, "olga@example.com", "owner").await;
    let cookie = sign_in(&env, "olga@example.com").await;

    // Each app's pages know nothing of the other's grants.
    let list = get(&env, &format!("/portal/apps/{other}/grants"), &cookie).await;
    assert_eq!(list.status, StatusCode::OK);
    let rows = table(&list.body, "grants");
    assert!(rows.contains(&other_grant) && !rows.contains(&grant_id), "{rows}");
    let list = get(&env, &format!("/portal/apps/{app}/grants"), &cookie).await;
    assert!(!list.body.contains(&other_grant));
    let detail = get(&env, &format!("/portal/apps/{app}/grants/{other_grant}"), &cookie).await;
    assert_eq!((detail.status, detail.error_code.as_deref()), (StatusCode::NOT_FOUND, Some("not_found")));
    let detail = get(&env, &format!("/portal/apps/{other}/grants/{grant_id}"), &cookie).await;
    assert_eq!((detail.status, detail.error_code.as_deref()), (StatusCode::NOT_FOUND, Some("not_found")));
    let csrf = hidden_csrf(&get(&env, &format!("/portal/apps/{app}/grants/{grant_id}"), &cookie).await.body);
    let refused =
        post(&env, &format!("/portal/apps/{other}/grants/{grant_id}/disconnect"), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(env.grant(&grant_id).await["status"], "active");
    let audit_page = get(&env, &format!("/portal/apps/{other}/audit"), &cookie).await;
    assert!(table(&audit_page.body, "audit").contains(&other_grant));
    assert!(!audit_page.body.contains(&grant_id), "nor its audit rows");
    // No such app, or no such grant: not found too.
    let missing = get(&env, "/portal/apps/app_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e/grants", &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = get(&env, &format!("/portal/apps/{app}/grants/grt_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e"), &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn a_connect_link_made_in_the_portal_opens_the_hosted_connect_page(env: ConnectEnv) {
    env.configure_zoom().await;
    let app = app_id(&env).await;
    operator(&env, "olga@example.com", "owner").await;
    let cookie = sign_in(&env, "olga@example.com").await;
    let list = get(&env, &format!("/portal/apps/{app}/grants"), &cookie).await;
    assert!(list.body.contains("<option value=\"zoom\">"), "the form offers the app's configurations");
    let csrf = hidden_csrf(&list.body);
    let path = format!("/portal/apps/{app}/connect-links");

    // Any of the app's providers: the hosted Connect page, with its "Continue" buttons.
    let made = post(&env, &path, &cookie, &[("csrf", &csrf), ("end_user_id", "user-9"), ("provider", "")]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let url = text_of(&made.body, "connect-url").expect("the connect URL");
    assert!(url.starts_with(&env.vault.base), "{url}");
    assert_eq!(attribute(&made.body, "connect-url", "class").as_deref(), Some("copyable"));
    assert!(made.body.contains("data-copy=\"connect-url\""), "a copy button");
    assert!(text_of(&made.body, "connect-expires").is_some_and(|t| t.ends_with('Z')));
    assert_eq!(text_of(&made.body, "connect-return-url"), Some(format!("{RETURN_ORIGIN}/")));
    let landing = env.get(&url, &[]).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert!(landing.body.contains("id=\"continue-"), "the hosted Connect page");

    // One provider: the link connects an account, and the end user comes back to the app.
    let made = post(&env, &path, &cookie, &[("csrf", &csrf), ("end_user_id", "user-10"), ("provider", "zoom")]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let url = text_of(&made.body, "connect-url").unwrap();
    let (authorize, cookies) = env.open(&url).await;
    let callback = env.consent(&authorize).await;
    let back = env.get(&callback, &cookies).await;
    let location = back.location.unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    assert!(location.starts_with(&format!("{RETURN_ORIGIN}/?")) && location.contains("status=succeeded"), "{location}");
    let grants = env.grants().await;
    assert!(grants.iter().any(|g| g["end_user_id"] == "user-10" && g["status"] == "active"), "{grants:?}");
    let sessions = audit(&env, "action=grant.connected").await;
    assert_eq!(sessions.len(), 1);

    // Mistakes are refused with their codes: no end user, a provider the app does not have.
    let refused = post(&env, &path, &cookie, &[("csrf", &csrf), ("end_user_id", "")]).await;
    assert_eq!((refused.status, refused.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_end_user_id")));
    let refused = post(&env, &path, &cookie, &[("csrf", &csrf), ("end_user_id", "u"), ("provider", "nope")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    // An app without return origins: say where to add one.
    let (other, _) = env.vault.new_app("other").await;
    let refused =
        post(&env, &format!("/portal/apps/{other}/connect-links"), &cookie, &[("csrf", &csrf), ("end_user_id", "u")])
            .await;
    assert_eq!((refused.status, refused.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("no_return_origin")));
    assert!(refused.body.contains("Settings"), "{}", refused.body);
}

async fn the_audit_log_is_filtered_paged_and_exported(env: ConnectEnv) {
    env.configure_zoom().await;
    // An end user id a spreadsheet would run as a formula.
    let grant_id = connect_zoom(&env, "=1+1").await;
    assert_eq!(proxy_get(&env, &grant_id, "/v2/echo/items?page=2").await, StatusCode::OK);
    let app = app_id(&env).await;
    operator(&env, "vera@example.com", "viewer").await;
    let cookie = sign_in(&env, "vera@example.com").await;
    let base = format!("/portal/apps/{app}/audit");

    let page = get(&env, &base, &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let rows = table(&page.body, "audit");
    assert!(rows.contains("grant.connected") && rows.contains("proxy.request"), "{rows}");
    assert!(rows.contains("GET /v2/echo/items?page="), "method and path (query keys only): {rows}");
    assert!(!rows.contains("page=2"), "never a query value");
    assert!(rows.contains(&format!("/portal/apps/{app}/grants/{grant_id}")), "grants link to their page");
    assert!(tag(&page.body, "next-page").is_none(), "one page");

    // Filters.
    let proxied = get(&env, &format!("{base}?action=proxy.request&outcome=&from=&to="), &cookie).await;
    assert_eq!(proxied.status, StatusCode::OK);
    let rows = table(&proxied.body, "audit");
    assert!(rows.contains("proxy.request") && !rows.contains("grant.connected"), "{rows}");
    assert_eq!(attribute(&proxied.body, "filter-action", "value").as_deref(), Some("proxy.request"));
    let none = get(&env, &format!("{base}?end_user_id=someone-else"), &cookie).await;
    assert!(tag(&none.body, "no-events").is_some());
    let bad = get(&env, &format!("{base}?from=yesterday"), &cookie).await;
    assert_eq!((bad.status, bad.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_time")));
    let bad = get(&env, &format!("{base}?limit=5"), &cookie).await;
    assert_eq!((bad.status, bad.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_query")));

    // Exports: the filters carry over; CSV has its header row and formula-looking cells as text.
    let csv_link = attribute(&proxied.body, "export-csv", "href").unwrap();
    assert_eq!(csv_link, format!("{base}/export?action=proxy.request&format=csv"));
    let csv = get(&env, &csv_link, &cookie).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,at,action,outcome,grant_id,end_user_id,provider"), "{}", lines[0]);
    assert_eq!(lines.len(), 2, "the header and the one proxied call: {}", csv.body);
    assert!(lines[1].contains(",proxy.request,success,") && lines[1].contains(&grant_id));
    assert!(lines[1].contains(",'=1+1,"), "{}", lines[1]);
    let everything = get(&env, &attribute(&page.body, "export-jsonl", "href").unwrap(), &cookie).await;
    assert!(everything.content_type.starts_with("application/x-ndjson"));
    let events: Vec<Value> = everything.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), audit(&env, "limit=1000").await.len());
    assert!(events.iter().any(|e| e["action"] == "grant.connected" && e["end_user_id"] == "=1+1"));
    let bad = get(&env, &format!("{base}/export?format=xml"), &cookie).await;
    assert_eq!((bad.status, bad.error_code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
    let missing = get(&env, "/portal/apps/app_0192f7c4e6a87b3c9d1e2f3a4b5c6d7e/audit/export", &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let anonymous = read(browser().get(env.vault.url(&format!("{base}/export"))).send().await.unwrap()).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);

    // Pages of 50, oldest first, the next one after the last row shown.
    for _ in 0..55 {
        let (status, _) = env.api(Method::POST, &format!("/v1/grants/{grant_id}/token"), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let total = audit(&env, "limit=1000").await.len();
    assert!(total > 55);
    let first = get(&env, &base, &cookie).await;
    assert_eq!(table(&first.body, "audit").matches("<tr>").count(), 50 + 1, "50 rows and the header");
    let next = attribute(&first.body, "next-page", "href").expect("a next page");
    let second = get(&env, &next, &cookie).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(table(&second.body, "audit").matches("<tr>").count(), total - 50 + 1);
    assert!(tag(&second.body, "next-page").is_none() && tag(&second.body, "first-page").is_some());
}

async fn the_overview_charts_count_calls_refreshes_and_grants_across_apps(env: ConnectEnv) {
    env.configure_zoom().await;
    let refreshed = connect_zoom(&env, "user-1").await;
    let rejected = connect_zoom(&env, "user-2").await;
    let app = app_id(&env).await;
    let (other, other_grant) = other_app_with_a_grant(&env).await;
    operator(&env, "vera@example.com", "viewer").await;
    let cookie = sign_in(&env, "vera@example.com").await;

    // Nothing proxied yet.
    let overview = get(&env, "/portal", &cookie).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert!(tag(&overview.body, "charts").is_some() && tag(&overview.body, "apps").is_some());
    assert_eq!(
        attribute(&overview.body, "chart-traffic", "aria-label").as_deref(),
        Some("Proxied calls per hour, last 24 hours: none.")
    );
    assert_eq!(text_of(&overview.body, "needs-reauth-count").as_deref(), Some("0"));

    // Three calls answered 200, one answered 404 by Zoom: four calls, one error.
    for _ in 0..3 {
        assert_eq!(proxy_get(&env, &refreshed, "/v2/echo/me").await, StatusCode::OK);
    }
    let not_found =
        Fault::Status { status: 404, body: r#"{"code":1001,"message":"no such user"}"#.into(), retry_after: None };
    env.fakes.control().inject(Provider::Zoom, Endpoint::Api, not_found, 1);
    assert_eq!(proxy_get(&env, &refreshed, "/v2/echo/nobody").await, StatusCode::NOT_FOUND);
    // An hour later both tokens have expired: one refresh succeeds, Zoom refuses the other's.
    env.vault.clock.advance(Duration::from_secs(3600));
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{refreshed}/token"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invalid_grant = Fault::Status {
        status: 400,
        body: r#"{"error":"invalid_grant","error_description":"Invalid Token!"}"#.into(),
        retry_after: None,
    };
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, invalid_grant.clone(), 1);
    let (status, body) = env.api(Method::POST, &format!("/v1/grants/{rejected}/token"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(env.grant(&rejected).await["status"], "needs_reauth");
    // The other app's grant is refused too: the overview counts every app's.
    env.fakes.control().inject(Provider::Zoom, Endpoint::Token, invalid_grant, 1);
    env.vault.vault.refresh_due_grants(100).await.unwrap();
    let context = tokenvault_service::CallContext::default();
    let other_view = env.vault.vault.get_grant(&other, &other_grant, &context).await.unwrap();
    assert_eq!(other_view.status, "needs_reauth");

    let overview = get(&env, "/portal", &cookie).await;
    assert_eq!(overview.status, StatusCode::OK);
    let html = &overview.body;
    for id in ["chart-traffic", "chart-refreshes", "chart-grant-status"] {
        let svg = tag(html, id).unwrap_or_else(|| panic!("no {id}: {html}"));
        assert!(svg.starts_with("<svg") && svg.contains("role=\"img\""), "{svg}");
    }
    assert_eq!(
        attribute(html, "chart-traffic", "aria-label").as_deref(),
        Some("Proxied calls per hour, last 24 hours: zoom 4 calls, 1 error.")
    );
    assert_eq!(
        attribute(html, "chart-refreshes", "aria-label").as_deref(),
        Some("Refresh outcomes, last 24 hours: refreshed 1, needs_reauth: refresh_token_rejected 2.")
    );
    assert_eq!(
        attribute(html, "chart-grant-status", "aria-label").as_deref(),
        Some("Grants by status: active 1, needs_reauth 2, revoke_failed 0, revoked 0.")
    );
    assert!(html.contains("<title>Proxied calls per hour, last 24 hours: zoom 4 calls, 1 error.</title>"));
    assert!(!html.contains(" style="), "no inline style: the CSP would block it");
    assert_eq!(text_of(html, "needs-reauth-count").as_deref(), Some("2"));
    let apps = html.split("id=\"needs-reauth-apps\"").nth(1).unwrap().split("</ul>").next().unwrap();
    for (id, name) in [(&app, "acme"), (&other, "other")] {
        assert!(
            apps.contains(&format!("<a href=\"/portal/apps/{id}/grants?status=needs_reauth\">{name}</a>: 1")),
            "{apps}"
        );
    }
    let filtered = format!("/portal/apps/{app}/grants?status=needs_reauth");
    let list = get(&env, &filtered, &cookie).await;
    let rows = table(&list.body, "grants");
    assert!(rows.contains(&rejected) && !rows.contains(&refreshed), "{rows}");
}
