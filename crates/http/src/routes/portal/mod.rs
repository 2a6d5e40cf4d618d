//! The developer portal under `/portal`: server-rendered (askama templates, escaped), no script,
//! one stylesheet embedded in the binary. Operators sign in with email and password; the session
//! lives in an HttpOnly, SameSite=Strict cookie scoped to `/portal` (Secure when the public URL is
//! https), and every form that changes something carries the session's CSRF token. Pages call
//! the same service layer as the API.
//!
//! Submodules hold the pages of one area each (`apps`: an app's settings, provider
//! configurations and keys; `activity`: grants and audit; `manage`: webhooks, managed secrets,
//! policies, agents and delegations, approvals, and the vault's key ring). This module holds what they share:
//! the session, the role check (viewers may look, not change), form fields, page responses.

pub(crate) mod activity;
pub(crate) mod apps;
pub(crate) mod charts;
pub(crate) mod manage;

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokenvault_service::{OperatorSession, ServiceError, Vault};

const SESSION_COOKIE: &str = "tv_portal";
const SIGN_IN_COOKIE: &str = "tv_signin";
const STYLESHEET: &str = include_str!("../../../static/portal.css");
const SCRIPT: &str = include_str!("../../../static/portal.js");
const PORTAL_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

struct AppRow {
    id: String,
    name: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "portal/overview.html")]
struct OverviewPage<'a> {
    email: &'a str,
    role: &'a str,
    csrf: &'a str,
    apps: Vec<AppRow>,
    may_change: bool,
    /// The activity charts (`None` when the numbers could not be read).
    charts: Option<charts::OverviewCharts>,
}

/// A page: strict CSP (script and styles only from this origin), never framed, never cached.
pub(crate) fn page(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let Ok(html) = html else {
        return crate::ApiError::from(ServiceError::Internal("a portal page failed to render".into())).into_response();
    };
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response.extensions_mut().insert(crate::pages::RenderedPage);
    crate::pages::guarded(response, PORTAL_CSP)
}

fn cookie(vault: &Vault, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if vault.public_url().scheme() == "https" { "; Secure" } else { "" };
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/portal; HttpOnly; SameSite=Strict{secure}{age}"))
        .expect("cookie values are URL-safe")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::pages::cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

pub(crate) fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(to) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, to);
    }
    response.extensions_mut().insert(crate::pages::RenderedPage);
    response
}

async fn session(vault: &Vault, headers: &HeaderMap) -> Option<OperatorSession> {
    let secret = cookie_value(headers, SESSION_COOKIE)?;
    vault.operator_session(secret).await.ok()
}

/// `GET /portal/static/portal.js`: the copy buttons (`data-copy` names the element whose text is
/// copied). Pages work without it.
pub(crate) async fn script() -> Response {
    let mut response = SCRIPT.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// The signed-in operator of a page, or the way to the sign-in page.
pub(crate) async fn signed_in(vault: &Vault, headers: &HeaderMap) -> Result<OperatorSession, Response> {
    session(vault, headers).await.ok_or_else(|| see_other("/portal/sign-in"))
}

/// Whether the operator's role may change things (owner, admin); viewers only look.
pub(crate) fn may_change(session: &OperatorSession) -> bool {
    session.operator.role != "viewer"
}

/// A form's fields, in order (a name may repeat: checkboxes).
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim()).unwrap_or("")
    }

    /// The value of `name`, `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(n, v)| n == name && !v.trim().is_empty()).map(|(_, v)| v.trim().to_owned()).collect()
    }
}

/// The operator of a form that changes something: signed in, the session's CSRF token, and a
/// role that may change things. Otherwise the page that says why.
pub(crate) async fn editor(
    vault: &Vault,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<(OperatorSession, Fields), Response> {
    let Ok(Form(fields)) = form else {
        let error = ServiceError::invalid("invalid_form", "the form could not be read");
        return Err(crate::pages::refusal("This form cannot be used", error));
    };
    let fields = Fields(fields);
    // A form without its token field is malformed whoever sends it: a 400 before the session.
    if !fields.0.iter().any(|(name, _)| name == "csrf") {
        let error = ServiceError::invalid("invalid_form", "the form has no `csrf` field");
        return Err(crate::pages::refusal("This form cannot be used", error));
    }
    let session = signed_in(vault, headers).await?;
    if !Vault::operator_csrf_ok(&session, fields.get("csrf")) {
        let error =
            ServiceError::Forbidden { code: "csrf_failed", message: "the form is not from this session".into() };
        return Err(crate::pages::refusal("This form cannot be used", error));
    }
    if !may_change(&session) {
        let error = ServiceError::Forbidden {
            code: "role_forbidden",
            message: "a viewer can look at everything but change nothing; ask an owner or admin".into(),
        };
        return Err(crate::pages::refusal("Your role cannot do this", error));
    }
    Ok((session, fields))
}

/// The audit context of what an operator does in the portal: actor `operator`, their id.
pub(crate) fn operator_context(
    session: &OperatorSession,
    context: tokenvault_service::CallContext,
) -> tokenvault_service::CallContext {
    tokenvault_service::CallContext {
        actor: tokenvault_service::Actor {
            kind: Some("operator".into()),
            id: Some(session.operator.id.clone()),
            reason: Some("portal".into()),
        },
        ..context
    }
}

/// What the app pages' header and tabs show (`templates/portal/app_base.html`).
pub(crate) struct AppNav {
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub app_id: String,
    pub app_name: String,
    /// The tab shown as current (`settings`, `providers`, `keys`, `grants`, `audit`, `agents`,
    /// `approvals`, `webhooks`, `secrets`, `policies`).
    pub tab: &'static str,
    pub notice: Option<String>,
    /// Whether to show the forms that change things (not for viewers).
    pub may_change: bool,
}

/// The app a page is about (a `404` page when there is none) and its header.
pub(crate) async fn app_nav(
    vault: &Vault,
    session: &OperatorSession,
    app_id: &str,
    tab: &'static str,
) -> Result<(tokenvault_service::App, AppNav), Response> {
    let app = vault.get_app(app_id).await.map_err(refused)?;
    let nav = AppNav {
        email: session.operator.email.clone(),
        role: session.operator.role.clone(),
        csrf: session.csrf_token.clone(),
        app_id: app.id.clone(),
        app_name: app.name.clone(),
        tab,
        notice: None,
        may_change: may_change(session),
    };
    Ok((app, nav))
}

/// A service refusal as a portal page (with the stable code).
pub(crate) fn refused(error: ServiceError) -> Response {
    crate::pages::refusal("That did not work", error)
}

/// `GET /portal/static/portal.css`.
pub(crate) async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

fn sign_in_form(vault: &Vault, status: StatusCode, email: &str, error: Option<&str>) -> Response {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut response = page(status, SignInPage { csrf: &token, email, error }.render());
    response.headers_mut().append(header::SET_COOKIE, cookie(vault, SIGN_IN_COOKIE, &token, Some(1800)));
    response
}

/// `GET /portal/sign-in`.
pub(crate) async fn sign_in_page(State(vault): State<Arc<Vault>>) -> Response {
    sign_in_form(&vault, StatusCode::OK, "", None)
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/sign-in`: the form must carry the token its page set in a cookie (no sign-in
/// from another site's form).
pub(crate) async fn sign_in(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    crate::context::Context(context): crate::context::Context,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return sign_in_form(
            &vault,
            StatusCode::BAD_REQUEST,
            "",
            Some("The form could not be read. Please sign in again."),
        );
    };
    let expected = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokenvault_service::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return sign_in_form(
            &vault,
            StatusCode::FORBIDDEN,
            &form.email,
            Some("The form expired. Please sign in again."),
        );
    }
    match vault.sign_in_operator(&form.email, SecretString::from(form.password), context.client_ip).await {
        Ok(new) => {
            let mut response = see_other("/portal");
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, cookie(&vault, SESSION_COOKIE, new.secret.expose_secret(), None));
            headers.append(header::SET_COOKIE, cookie(&vault, SIGN_IN_COOKIE, "", Some(0)));
            response
        }
        Err(ServiceError::RateLimited { .. }) => sign_in_form(
            &vault,
            StatusCode::TOO_MANY_REQUESTS,
            &form.email,
            Some("Too many failed sign-ins. Wait 15 minutes and try again."),
        ),
        Err(ServiceError::Unauthenticated { .. }) | Err(ServiceError::Invalid { .. }) => {
            sign_in_form(&vault, StatusCode::UNAUTHORIZED, &form.email, Some("The email or password is wrong."))
        }
        Err(other) => crate::ApiError::from(other).into_response(),
    }
}

/// `GET /portal`: the overview (signed-in operators only).
pub(crate) async fn overview(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let Some(session) = session(&vault, &headers).await else { return see_other("/portal/sign-in") };
    let apps = match vault.list_apps(None, 200).await {
        Ok(apps) => apps,
        Err(error) => return crate::ApiError::from(error).into_response(),
    };
    let apps =
        apps.into_iter().map(|a| AppRow { id: a.id, name: a.name, created_at: a.created_at.to_rfc3339() }).collect();
    let charts = match vault.portal_stats().await {
        Ok(stats) => Some(charts::OverviewCharts::new(stats)),
        Err(error) => {
            tracing::warn!(error = %error, "the overview's activity numbers could not be read");
            None
        }
    };
    let operator = &session.operator;
    page(
        StatusCode::OK,
        OverviewPage {
            email: &operator.email,
            role: &operator.role,
            csrf: &session.csrf_token,
            apps,
            may_change: may_change(&session),
            charts,
        }
        .render(),
    )
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// The session of a state-changing form, if its CSRF token is right.
async fn form_session(
    vault: &Vault,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<OperatorSession, Response> {
    let Ok(Form(form)) = form else {
        let error = ServiceError::invalid("invalid_form", "the form could not be read");
        return Err(crate::pages::refusal("This form cannot be used", error));
    };
    let Some(session) = session(vault, headers).await else { return Err(see_other("/portal/sign-in")) };
    if !Vault::operator_csrf_ok(&session, &form.csrf) {
        let error =
            ServiceError::Forbidden { code: "csrf_failed", message: "the form is not from this session".into() };
        return Err(crate::pages::refusal("This form cannot be used", error));
    }
    Ok(session)
}

fn signed_out(vault: &Vault) -> Response {
    let mut response = see_other("/portal/sign-in");
    response.headers_mut().append(header::SET_COOKIE, cookie(vault, SESSION_COOKIE, "", Some(0)));
    response
}

/// `POST /portal/sign-out`.
pub(crate) async fn sign_out(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    match form_session(&vault, &headers, form).await {
        Ok(session) => match vault.sign_out_operator(&session).await {
            Ok(()) => signed_out(&vault),
            Err(error) => crate::ApiError::from(error).into_response(),
        },
        Err(refused) => refused,
    }
}

/// `POST /portal/sign-out-everywhere`: every session of this operator ends.
pub(crate) async fn sign_out_everywhere(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    match form_session(&vault, &headers, form).await {
        Ok(session) => match vault.sign_out_operator_everywhere(&session).await {
            Ok(_) => signed_out(&vault),
            Err(error) => crate::ApiError::from(error).into_response(),
        },
        Err(refused) => refused,
    }
}
