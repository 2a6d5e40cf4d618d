//! The end-user wallet: `POST /v1/wallet-sessions` (the app's backend mints a link), and the
//! browser pages under `/wallet`. Opening the link once sets an HttpOnly cookie scoped to
//! `/wallet` (SameSite=Lax, so the link works when followed from the app's site; Secure when the
//! public URL is https) and redirects to `/wallet`, so the link's secret never stays in the
//! address bar. Every form carries the session's CSRF token. Pages call the service layer.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokenvault_service::{BrowserError, ServiceError, Vault, WalletSession, WalletSessionInput, WalletView};

use crate::ApiError;
use crate::auth::AppCaller;
use crate::hosted::{Look, logo, readable, respond};
use crate::json::JsonBody;

const COOKIE: &str = "tv_wallet";

/// `POST /v1/wallet-sessions`.
pub(crate) async fn create_session(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<WalletSessionInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let created = vault.create_wallet_session(&caller.app_id, input, &caller.context).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": created.id,
            "end_user_id": created.end_user_id,
            "wallet_url": created.wallet_url.expose_secret(),
            "expires_at": created.expires_at,
            "created_at": created.created_at,
        })),
    ))
}

fn browser_error(error: ServiceError) -> BrowserError {
    let api = ApiError::from(error);
    BrowserError { status: api.status.as_u16(), code: api.code, message: api.message }
}

fn cookie(vault: &Vault, value: &str, max_age: i64) -> HeaderValue {
    let secure = if vault.public_url().scheme() == "https" { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/wallet; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .expect("cookie values are URL-safe")
}

fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(to) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, to);
    }
    response.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response.extensions_mut().insert(crate::pages::RenderedPage);
    response
}

/// `GET /wallet/{token}`: the link opens once, then the cookie carries the session.
pub(crate) async fn open(State(vault): State<Arc<Vault>>, Path(token): Path<String>) -> Response {
    match vault.open_wallet(&token).await {
        Ok(opened) => {
            let max_age = ((opened.session.expires_at.as_millis() - vault.now().as_millis()) / 1000).max(1);
            let mut response = see_other("/wallet");
            response.headers_mut().append(header::SET_COOKIE, cookie(&vault, opened.cookie.expose_secret(), max_age));
            response
        }
        Err(error) => {
            let mut error = browser_error(error);
            if error.code == "unknown_wallet_link" {
                error.status = 404;
            }
            crate::hosted::error(&error)
        }
    }
}

async fn signed_in(vault: &Vault, headers: &HeaderMap) -> Result<WalletSession, Response> {
    let secret = crate::pages::cookies(headers).find(|(n, _)| *n == COOKIE).map(|(_, v)| v);
    let refused = || {
        let error = BrowserError::new(
            401,
            "wallet_signed_out",
            "you are not signed in to the wallet, or the session ended; open it again from the app",
        );
        crate::hosted::error(&error)
    };
    let Some(secret) = secret else { return Err(refused()) };
    vault.wallet_session(secret).await.map_err(|_| refused())
}

struct Connection {
    id: String,
    provider_name: String,
    logo: &'static str,
    account: String,
    status: String,
    status_text: &'static str,
    scopes: Vec<String>,
    connected_at: String,
    last_used_at: String,
    delegations: Vec<Delegation>,
}

struct Delegation {
    id: String,
    agent_name: String,
    until: Option<String>,
}

struct PendingApproval {
    call: String,
    provider: String,
    who: String,
    expires_at: String,
}

struct Activity {
    at: String,
    who: String,
    what: String,
}

#[derive(Template)]
#[template(path = "hosted/wallet.html")]
struct WalletPage {
    look: Look,
    app_name: String,
    csrf: String,
    notice: Option<&'static str>,
    connections: Vec<Connection>,
    approvals: Vec<PendingApproval>,
    activity: Vec<Activity>,
    expires_at: String,
}

fn status_text(status: &str) -> &'static str {
    match status {
        "active" => "Connected",
        "needs_reauth" => "Needs you to connect again",
        "revoke_failed" => "Disconnect pending at the provider",
        _ => "Disconnected",
    }
}

fn what(action: &str, method: Option<&str>, path: Option<&str>, outcome: &str) -> String {
    let base = match action {
        "proxy.request" => format!("called {} {}", method.unwrap_or_default(), path.unwrap_or_default()),
        "token.retrieved" => "used the connection".into(),
        "grant.created" | "connect.completed" => "connected".into(),
        "grant.disconnected" | "grant.revoked" => "disconnected".into(),
        "grant.refreshed" | "token.refreshed" => "renewed access".into(),
        other => other.replace(['.', '_'], " "),
    };
    if outcome == "success" { base } else { format!("{base} ({outcome})") }
}

fn render(session: &WalletSession, view: WalletView, notice: Option<&'static str>) -> Response {
    let look = Look::new(Some(&view.app));
    let nonce = look.nonce.clone();
    let agent_names: std::collections::HashMap<String, String> = view
        .connections
        .iter()
        .flat_map(|c| c.delegations.iter().map(|d| (d.delegation.agent_id.clone(), d.agent_name.clone())))
        .collect();
    let connections = view
        .connections
        .iter()
        .map(|c| {
            let account = &c.grant.account;
            Connection {
                id: c.grant.id.clone(),
                provider_name: c.provider_name.clone(),
                logo: logo(&c.grant.provider),
                account: account.email.clone().or_else(|| account.name.clone()).unwrap_or_else(|| account.id.clone()),
                status: c.grant.status.clone(),
                status_text: status_text(&c.grant.status),
                scopes: c.grant.scopes.clone(),
                connected_at: readable(&c.grant.connected_at.to_rfc3339()),
                last_used_at: c.last_used_at.map(|t| readable(&t.to_rfc3339())).unwrap_or_else(|| "not yet".into()),
                delegations: c
                    .delegations
                    .iter()
                    .map(|d| Delegation {
                        id: d.delegation.id.clone(),
                        agent_name: if d.agent_name.is_empty() { "an agent".into() } else { d.agent_name.clone() },
                        until: d.delegation.expires_at.map(|t| readable(&t.to_rfc3339())),
                    })
                    .collect(),
            }
        })
        .collect();
    let approvals = view
        .pending_approvals
        .iter()
        .map(|a| PendingApproval {
            call: format!("{} {}", a.request.method, a.request.path),
            provider: a.provider.clone(),
            who: a
                .requested_by
                .agent_id
                .as_ref()
                .map(|id| agent_names.get(id).cloned().unwrap_or_else(|| "an agent".into()))
                .unwrap_or_else(|| "the app".into()),
            expires_at: readable(&a.expires_at.to_rfc3339()),
        })
        .collect();
    let activity = view
        .activity
        .iter()
        .map(|e| Activity {
            at: readable(&e.at.to_rfc3339()),
            who: match (&e.agent_id, e.actor.as_ref().and_then(|a| a.kind.as_deref())) {
                (Some(agent), _) => agent_names.get(agent).cloned().unwrap_or_else(|| "an agent".into()),
                (None, Some("end_user")) => "you".into(),
                _ => view.app.shown_name().to_owned(),
            },
            what: what(&e.action, e.method.as_deref(), e.path.as_deref(), &e.outcome),
        })
        .collect();
    let page = WalletPage {
        app_name: view.app.shown_name().to_owned(),
        look,
        csrf: session.csrf_token.clone(),
        notice,
        connections,
        approvals,
        activity,
        expires_at: readable(&view.expires_at.to_rfc3339()),
    };
    respond(StatusCode::OK, &nonce, page.render())
}

/// `GET /wallet`.
pub(crate) async fn page(State(vault): State<Arc<Vault>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let notice = match query.as_deref() {
        Some("done=disconnected") => Some("Disconnected. The app can no longer use that account."),
        Some("done=revoked") => Some("Done. That agent can no longer use the connection."),
        _ => None,
    };
    match vault.wallet_view(&session).await {
        Ok(view) => render(&session, view, notice),
        Err(error) => crate::hosted::error(&browser_error(error)),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

async fn form_session(
    vault: &Vault,
    headers: &HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<WalletSession, Response> {
    let Ok(Form(form)) = form else {
        return Err(crate::hosted::error(&BrowserError::new(400, "invalid_form", "the form could not be read")));
    };
    let session = signed_in(vault, headers).await?;
    if !session.csrf_ok(&form.csrf) {
        let error = BrowserError::new(403, "csrf_failed", "the form is not from this wallet session");
        return Err(crate::hosted::error(&error));
    }
    Ok(session)
}

/// `POST /wallet/grants/{id}/disconnect`.
pub(crate) async fn disconnect(
    State(vault): State<Arc<Vault>>,
    Path(grant_id): Path<String>,
    headers: HeaderMap,
    crate::context::Context(context): crate::context::Context,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match form_session(&vault, &headers, form).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let context = session.context(context.request_id, context.client_ip);
    match vault.wallet_disconnect(&session, &grant_id, &context).await {
        Ok(_) => see_other("/wallet?done=disconnected"),
        Err(error) => crate::hosted::error(&browser_error(error)),
    }
}

/// `POST /wallet/delegations/{id}/revoke`.
pub(crate) async fn revoke_delegation(
    State(vault): State<Arc<Vault>>,
    Path(delegation_id): Path<String>,
    headers: HeaderMap,
    crate::context::Context(context): crate::context::Context,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match form_session(&vault, &headers, form).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let context = session.context(context.request_id, context.client_ip);
    match vault.wallet_revoke_delegation(&session, &delegation_id, &context).await {
        Ok(()) => see_other("/wallet?done=revoked"),
        Err(error) => crate::hosted::error(&browser_error(error)),
    }
}

/// `POST /wallet/sign-out`.
pub(crate) async fn sign_out(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let session = match form_session(&vault, &headers, form).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    if let Err(error) = vault.sign_out_wallet(&session).await {
        return crate::hosted::error(&browser_error(error));
    }
    let error = BrowserError::new(200, "signed_out", "you are signed out of the wallet");
    let mut response = crate::hosted::error(&error);
    response.headers_mut().append(header::SET_COOKIE, cookie(&vault, "", 0));
    response
}
