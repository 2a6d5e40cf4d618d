//! Aircall: the dashboard (install button, consent) and the public API (token exchange,
//! integration, webhooks).
//!
//! Aircall tokens are permanent (no `expires_in`, no refresh token), the token request is JSON
//! with body credentials, and there is no PKCE: `code_challenge` is ignored at authorize and a
//! `code_verifier` is ignored at the token endpoint, as a server that does not know PKCE would.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::authorize::{self, AuthorizePolicy, PkceRule, ScopeRule};
use crate::bearer;
use crate::client_auth::{self, AuthMethod, CredentialError};
use crate::echo;
use crate::fault::Endpoint;
use crate::grant::{self, CodeRules, RedirectRule, RefreshIssue, TokenShape};
use crate::params::{BodyKind, Params};
use crate::provider::{Host, Provider};
use crate::random;
use crate::responses::{self, oauth_error};
use crate::server::{HostCtx, endpoint};
use crate::state::{AircallWebhook, Integration};
use crate::token_log::{self, Draft};
use crate::tokens::Grant;
use crate::webhooks::rfc3339;

const INVALID_GRANT: &str = "The provided authorization grant is invalid, expired, revoked, does not match the \
     redirection URI used in the authorization request, or was issued to another client.";
const INVALID_CLIENT: &str = "Client authentication failed due to unknown client, no client authentication \
     included, or unsupported authentication method.";

pub fn dashboard_router(ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route("/install", endpoint(get(install), ctx, Endpoint::Other))
        .route("/oauth/authorize", endpoint(get(authorize).post(authorize), ctx, Endpoint::Authorize))
        .route("/oauth/success", endpoint(get(success), ctx, Endpoint::Other))
}

pub fn api_router(ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route("/v1/oauth/token", endpoint(post(token), ctx, Endpoint::Token))
        .route("/v1/integrations/me", endpoint(get(integration_me), ctx, Endpoint::UserInfo))
        .route("/v1/integrations/disable", endpoint(post(disable), ctx, Endpoint::Disable))
        .route("/v1/integrations/enable", endpoint(post(enable), ctx, Endpoint::Disable))
        .route("/v1/webhooks", endpoint(post(create_webhook).get(list_webhooks), ctx, Endpoint::Webhooks))
        .route("/v1/webhooks/{id}", endpoint(delete(delete_webhook), ctx, Endpoint::Webhooks))
        .route("/v1/ping", endpoint(get(ping), ctx, Endpoint::Api))
        .merge(echo::routes("/v1", ctx))
}

/// The dashboard's "Install" button: sends the admin to the app's registered `install_uri`.
async fn install(State(ctx): State<HostCtx>, uri: Uri) -> Response {
    let params = Params::from_query(uri.query());
    let Some(client_id) = params.get("client_id") else {
        return responses::error_page("Aircall install", "client_id is missing");
    };
    let client = ctx.control.lock().provider(Provider::Aircall).clients.get(client_id).cloned();
    match client.and_then(|c| c.install_uri) {
        Some(install_uri) => responses::redirect(302, &install_uri),
        None => responses::error_page("Aircall install", "unknown app or app without install_uri"),
    }
}

async fn success() -> Response {
    responses::html(
        200,
        "<!doctype html><html><body><h1>Aircall</h1><p>Integration installed.</p></body></html>".into(),
    )
}

async fn authorize(State(ctx): State<HostCtx>, method: Method, uri: Uri, body: Bytes) -> Response {
    let policy = AuthorizePolicy {
        provider: Provider::Aircall,
        title: "Aircall",
        form_action: "/oauth/authorize".to_owned(),
        scope: ScopeRule::PublicApiOnly,
        pkce: PkceRule::Ignore,
        response_type_optional: false,
        redirect_uri_optional: false,
        iss: None,
    };
    authorize::handle(&ctx.control, &policy, &method, authorize::request_params(&method, &uri, &body))
}

async fn token(State(ctx): State<HostCtx>, headers: HeaderMap, body: Bytes) -> Response {
    let variants = ctx.control.variants();
    let parsed = match crate::params::body_kind(&headers, &body) {
        BodyKind::Json => Params::from_json(&body),
        BodyKind::Form if variants.aircall_accept_form => Ok(Params::from_form(&body)),
        _ => Err("Content-Type must be application/json".to_owned()),
    };
    let params = match parsed {
        Ok(params) => params,
        Err(message) => {
            let draft = Draft::new(&headers, &Params::default(), None);
            return draft.finish(&ctx.control, Provider::Aircall, oauth_error(400, "invalid_request", &message));
        }
    };
    let creds = client_auth::presented(&headers, &params);
    let draft = Draft::new(&headers, &params, creds.as_ref().ok());
    let response = match creds {
        Err(CredentialError::Missing) | Err(_) => oauth_error(401, "invalid_client", INVALID_CLIENT),
        Ok(creds) => {
            let allowed = match creds.method {
                AuthMethod::Body => true,
                AuthMethod::Basic => variants.aircall_accept_basic,
                AuthMethod::None => false,
            };
            match token_log::authenticate(&ctx.control, Provider::Aircall, &creds).filter(|_| allowed) {
                None => oauth_error(401, "invalid_client", INVALID_CLIENT),
                Some(client) => exchange(&ctx, &client.client_id, &params),
            }
        }
    };
    draft.finish(&ctx.control, Provider::Aircall, response)
}

fn exchange(ctx: &HostCtx, client_id: &str, params: &Params) -> Response {
    match params.get("grant_type") {
        Some("authorization_code") => {}
        None => return oauth_error(400, "invalid_request", "grant_type is missing"),
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
    }
    let Some(code) = params.get("code") else {
        return oauth_error(400, "invalid_request", "code is missing");
    };
    let rules = CodeRules {
        redirect: RedirectRule::Required,
        enforce_pkce: false,
        refresh: RefreshIssue::Never,
        revoke_previous_grants: false,
        shape: TokenShape::Opaque,
    };
    let issued = match grant::exchange_code(
        &ctx.control,
        Provider::Aircall,
        client_id,
        code,
        params.get("redirect_uri"),
        None,
        &rules,
    ) {
        Ok(issued) => issued,
        Err(_) => return oauth_error(400, "invalid_grant", INVALID_GRANT),
    };
    {
        let mut state = ctx.control.lock();
        let key = (client_id.to_owned(), issued.grant.user.account_id.clone());
        let integration =
            state.aircall.integrations.entry(key).or_insert_with(|| Integration { id: random::int_id(), active: true });
        integration.active = true;
    }
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "created_at": issued.now,
        "scope": "public_api",
    });
    if let Some(lifetime) = issued.lifetime {
        body["expires_in"] = json!(lifetime);
    }
    responses::no_store_json(200, &body)
}

/// Aircall's API error body.
fn api_error(status: u16, error: &str, troubleshoot: &str) -> Response {
    responses::json(status, &json!({ "error": error, "troubleshoot": troubleshoot }))
}

/// The grant behind `Authorization: Bearer`.
pub fn authenticate_api(ctx: &HostCtx, headers: &HeaderMap, _uri: &Uri) -> Result<Grant, Response> {
    let unauthorized = || api_error(401, "Unauthorized", "Check your access token: it is missing, invalid or revoked");
    let token = bearer::from_header(headers).ok_or_else(unauthorized)?;
    let mut state = ctx.control.lock();
    let now = state.clock.now();
    let result = state.provider(Provider::Aircall).tokens.check_access(&token, now).cloned();
    result.map_err(|_| unauthorized())
}

/// Ids are integers at Aircall; a configured non-numeric id is passed through as a string.
fn int_or_string(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn integration_json(ctx: &HostCtx, grant: &Grant) -> Value {
    let key = (grant.client_id.clone(), grant.user.account_id.clone());
    let integration =
        ctx.control.lock().aircall.integrations.get(&key).cloned().unwrap_or(Integration { id: 0, active: false });
    json!({
        "integration": {
            "id": integration.id,
            "name": format!("Fake app {}", grant.client_id),
            "custom_name": format!("Fake app {}", grant.client_id),
            "logo": null,
            "company_id": int_or_string(&grant.user.account_id),
            "status": if integration.active { "active" } else { "inactive" },
            "active": integration.active,
            "number_ids": [],
            "numbers_count": 0,
            "user": {
                "id": int_or_string(&grant.user.id),
                "name": grant.user.name,
                "email": grant.user.email,
            },
        }
    })
}

async fn integration_me(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => responses::json(200, &integration_json(&ctx, &grant)),
        Err(response) => response,
    }
}

fn set_active(ctx: &HostCtx, headers: &HeaderMap, uri: &Uri, active: bool) -> Response {
    let grant = match authenticate_api(ctx, headers, uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    {
        let mut state = ctx.control.lock();
        let key = (grant.client_id.clone(), grant.user.account_id.clone());
        if let Some(integration) = state.aircall.integrations.get_mut(&key) {
            integration.active = active;
        }
        if !active && state.variants.aircall_disable_revokes_token {
            state
                .provider(Provider::Aircall)
                .tokens
                .revoke_grants_where(|g| g.client_id == grant.client_id && g.user.account_id == grant.user.account_id);
        }
    }
    responses::json(200, &integration_json(ctx, &grant))
}

async fn disable(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    set_active(&ctx, &headers, &uri, false)
}

async fn enable(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    set_active(&ctx, &headers, &uri, true)
}

async fn ping(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Ok(_) => responses::json(200, &json!({ "ping": "pong" })),
        Err(response) => response,
    }
}

fn webhook_json(ctx: &HostCtx, webhook: &AircallWebhook) -> Value {
    json!({
        "webhook_id": webhook.webhook_id,
        "direct_link": format!("{}/v1/webhooks/{}", ctx.control.base_url(Host::AircallApi), webhook.webhook_id),
        "created_at": rfc3339(webhook.created_at),
        "url": webhook.url,
        "active": true,
        "token": webhook.token,
        "events": webhook.events,
        "custom_name": webhook.custom_name,
    })
}

/// The JSON body of a webhook creation, or the troubleshooting message.
fn webhook_request(body: &[u8]) -> Result<(String, String, Vec<String>), String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "Body must be a JSON object".to_owned())?;
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")))
        .ok_or("url is missing or is not a valid URL")?
        .to_owned();
    let custom_name = value.get("custom_name").and_then(Value::as_str).unwrap_or("Webhook").to_owned();
    let events = match value.get("events") {
        None | Some(Value::Null) => vec!["call.created".to_owned(), "call.ended".to_owned()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|e| e.as_str().map(str::to_owned).ok_or("events must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("events must be an array".into()),
    };
    Ok((url, custom_name, events))
}

async fn create_webhook(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let grant = match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    let (url, custom_name, events) = match webhook_request(&body) {
        Ok(request) => request,
        Err(message) => return api_error(400, "Invalid params", &message),
    };
    let webhook = {
        let mut state = ctx.control.lock();
        let webhook = AircallWebhook {
            webhook_id: random::uuid_v4(),
            token: random::token(24),
            url,
            custom_name,
            events,
            created_at: state.clock.now(),
            client_id: grant.client_id.clone(),
            company_id: grant.user.account_id.clone(),
        };
        state.aircall.webhooks.push(webhook.clone());
        webhook
    };
    responses::json(201, &json!({ "webhook": webhook_json(&ctx, &webhook) }))
}

async fn list_webhooks(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    let grant = match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    let mine: Vec<AircallWebhook> = ctx
        .control
        .aircall_webhooks()
        .into_iter()
        .filter(|w| w.client_id == grant.client_id && w.company_id == grant.user.account_id)
        .collect();
    let list: Vec<Value> = mine.iter().map(|w| webhook_json(&ctx, w)).collect();
    responses::json(200, &json!({ "webhooks": list, "meta": { "count": list.len(), "total": list.len() } }))
}

async fn delete_webhook(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let grant = match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    let mut state = ctx.control.lock();
    let webhooks = &mut state.aircall.webhooks;
    let found = webhooks
        .iter()
        .position(|w| w.webhook_id == id && w.client_id == grant.client_id && w.company_id == grant.user.account_id);
    match found {
        Some(index) => {
            webhooks.remove(index);
            responses::empty(204)
        }
        None => api_error(404, "Not Found", "Check ID of the resource"),
    }
}
