//! Zoom: `zoom.us` (authorize, token, revoke) and two API hosts (`api.zoom.us` and an alternate
//! one, for a switched `api_url`).
//!
//! What makes Zoom hard for a vault is emulated strictly: Basic-only client auth, an identical
//! `redirect_uri` at the token endpoint, refresh tokens that rotate and die at once, older grants
//! killed by re-authorization (4741), and a bearer token accepted only in the header.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::authorize::{self, AuthorizePolicy, PkceRule, ScopeRule};
use crate::bearer;
use crate::client_auth::{self, AuthMethod, Credentials};
use crate::echo;
use crate::fault::Endpoint;
use crate::grant::{self, CodeRules, Failure, RedirectRule, RefreshIssue, RefreshRules, TokenShape};
use crate::model::ClientRegistration;
use crate::params::{self, BodyKind, Params};
use crate::pkce::Method as PkceMethod;
use crate::provider::{Host, Provider};
use crate::responses;
use crate::server::{HostCtx, endpoint};
use crate::token_log::{self, Draft};
use crate::tokens::{Grant, TokenProblem};
use crate::variant::ZoomApiUrl;

pub fn oauth_router(ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route("/oauth/authorize", endpoint(get(authorize).post(authorize), ctx, Endpoint::Authorize))
        .route("/oauth/token", endpoint(post(token), ctx, Endpoint::Token))
        .route("/oauth/revoke", endpoint(post(revoke), ctx, Endpoint::Revoke))
}

pub fn api_router(ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route("/v2/users/me", endpoint(get(users_me), ctx, Endpoint::UserInfo))
        .route("/v2/users/me/meetings", endpoint(get(list_meetings), ctx, Endpoint::Api))
        .route("/v2/meetings/{id}", endpoint(get(get_meeting).delete(delete_meeting), ctx, Endpoint::Api))
        .merge(echo::routes("/v2", ctx))
}

async fn authorize(State(ctx): State<HostCtx>, method: Method, uri: Uri, body: Bytes) -> Response {
    let policy = AuthorizePolicy {
        provider: Provider::Zoom,
        title: "Zoom",
        form_action: "/oauth/authorize".to_owned(),
        // No scope parameter: the app's configured scopes are granted as a bundle.
        scope: ScopeRule::Configured,
        pkce: PkceRule::Supported { methods: vec![PkceMethod::S256, PkceMethod::Plain], required: false },
        response_type_optional: false,
        redirect_uri_optional: false,
        iss: None,
    };
    authorize::handle(&ctx.control, &policy, &method, authorize::request_params(&method, &uri, &body))
}

/// Zoom's error body: `{"reason": ..., "error": ...}`.
fn zoom_error(status: u16, reason: &str, error: &str) -> Response {
    responses::no_store_json(status, &json!({ "reason": reason, "error": error }))
}

/// Parameters from the query string and the form body together, as Zoom reads them.
fn query_and_form(headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Params {
    let form = match params::body_kind(headers, body) {
        BodyKind::Form | BodyKind::Empty => Params::from_form(body),
        _ => Params::default(),
    };
    Params::from_query(uri.query()).merged(form)
}

/// Basic is required; body credentials only with `Variant::ZoomBodyCredentials(true)`.
fn authenticate_client(
    ctx: &HostCtx,
    creds: &Result<Credentials, client_auth::CredentialError>,
) -> Result<ClientRegistration, Response> {
    let invalid = || zoom_error(401, "Invalid client_id or client_secret", "invalid_client");
    let creds = creds.as_ref().map_err(|_| invalid())?;
    let allowed = match creds.method {
        AuthMethod::Basic => true,
        AuthMethod::Body => ctx.control.variants().zoom_body_credentials,
        AuthMethod::None => false,
    };
    token_log::authenticate(&ctx.control, Provider::Zoom, creds).filter(|_| allowed).ok_or_else(invalid)
}

async fn token(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let params = query_and_form(&headers, &uri, &body);
    let creds = client_auth::presented(&headers, &params);
    let draft = Draft::new(&headers, &params, creds.as_ref().ok());
    let response = match authenticate_client(&ctx, &creds) {
        Err(response) => response,
        Ok(client) => grant_tokens(&ctx, &client.client_id, &params),
    };
    draft.finish(&ctx.control, Provider::Zoom, response)
}

fn grant_tokens(ctx: &HostCtx, client_id: &str, params: &Params) -> Response {
    let result = match params.get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = params.get("code") else {
                return zoom_error(400, "Invalid authorization code", "invalid_request");
            };
            let rules = CodeRules {
                redirect: RedirectRule::Required,
                enforce_pkce: true,
                refresh: RefreshIssue::Always,
                revoke_previous_grants: true,
                shape: TokenShape::JwtLike,
            };
            let (redirect_uri, verifier) = (params.get("redirect_uri"), params.get("code_verifier"));
            grant::exchange_code(&ctx.control, Provider::Zoom, client_id, code, redirect_uri, verifier, &rules)
        }
        Some("refresh_token") => {
            let Some(refresh_token) = params.get("refresh_token") else {
                return zoom_error(400, "Invalid Token!", "invalid_request");
            };
            let rules = RefreshRules { rotate: true, reuse_revokes_grant: false, shape: TokenShape::JwtLike };
            grant::refresh(&ctx.control, Provider::Zoom, client_id, refresh_token, &rules)
        }
        _ => return zoom_error(400, "Unsupported grant type", "unsupported_grant_type"),
    };
    match result {
        Ok(issued) => responses::no_store_json(
            200,
            &json!({
                "access_token": issued.access_token,
                "token_type": "bearer",
                "refresh_token": issued.refresh_token,
                "expires_in": issued.lifetime,
                "scope": issued.grant.scopes.join(" "),
                "api_url": api_url(ctx),
            }),
        ),
        Err(failure) => failure_response(failure),
    }
}

/// Bodies observed from Zoom where known; the rest follow the same `{reason, error}` shape.
fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::CodeUnknown | Failure::CodeReused | Failure::CodeExpired | Failure::CodeWrongClient => {
            zoom_error(400, "Invalid authorization code", "invalid_grant")
        }
        Failure::RedirectMismatch => zoom_error(400, "Redirect URI mismatch.", "invalid_request"),
        Failure::Pkce(_) => zoom_error(400, "Invalid code verifier", "invalid_grant"),
        Failure::Refresh(_) | Failure::RefreshWrongClient => zoom_error(400, "Invalid Token!", "invalid_grant"),
    }
}

fn api_url(ctx: &HostCtx) -> String {
    match ctx.control.variants().zoom_api_url {
        ZoomApiUrl::Primary => ctx.control.base_url(Host::ZoomApi),
        ZoomApiUrl::Alternate => ctx.control.base_url(Host::ZoomApiAlt),
        ZoomApiUrl::Custom(url) => url,
    }
}

/// RFC 7009 style: success even for unknown or already-dead tokens; a known token kills its grant.
async fn revoke(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let params = query_and_form(&headers, &uri, &body);
    let client = match authenticate_client(&ctx, &client_auth::presented(&headers, &params)) {
        Ok(client) => client,
        Err(response) => return response,
    };
    let Some(token) = params.get("token") else {
        return zoom_error(400, "Missing token", "invalid_request");
    };
    let mut state = ctx.control.lock();
    let tokens = &mut state.provider(Provider::Zoom).tokens;
    if let Some(grant) = tokens.grant_of(token).filter(|g| g.client_id == client.client_id).map(|g| g.id) {
        tokens.revoke_grant(grant);
    }
    responses::json(200, &json!({ "status": "success" }))
}

async fn users_me(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(grant) => responses::json(200, &user_json(&grant)),
    }
}

/// A fixed meeting, enough for examples that read and (try to) delete meetings.
fn meeting_json(id: &str) -> Value {
    json!({ "id": id, "topic": "Weekly sync", "type": 8, "duration": 30, "timezone": "UTC" })
}

async fn list_meetings(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(_) => responses::json(
            200,
            &json!({ "page_size": 30, "total_records": 1, "next_page_token": "", "meetings": [meeting_json("85746065")] }),
        ),
    }
}

async fn get_meeting(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(_) => {
            let id = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
            responses::json(200, &meeting_json(&id))
        }
    }
}

/// Zoom answers a deleted meeting with 204 and no body.
async fn delete_meeting(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(_) => axum::http::StatusCode::NO_CONTENT.into_response(),
    }
}

fn user_json(grant: &Grant) -> Value {
    let user = &grant.user;
    let (first, last) = user.first_last();
    json!({
        "id": user.id,
        "account_id": user.account_id,
        "email": user.email,
        "first_name": first,
        "last_name": last,
        "display_name": user.name,
        "type": 1,
        "status": "active",
        "role_name": "Owner",
        "verified": 1,
        "language": "en-US",
        "timezone": "America/Los_Angeles",
    })
}

fn invalid_token(message: &str) -> Response {
    responses::json(401, &json!({ "code": 124, "message": message }))
}

/// The grant behind `Authorization: Bearer`; a token in the query string is refused outright.
pub fn authenticate_api(ctx: &HostCtx, headers: &HeaderMap, uri: &Uri) -> Result<Grant, Response> {
    if Params::from_query(uri.query()).get("access_token").is_some() {
        return Err(invalid_token("Invalid access token."));
    }
    let token = bearer::from_header(headers).ok_or_else(|| invalid_token("Invalid access token."))?;
    let mut state = ctx.control.lock();
    let now = state.clock.now();
    match state.provider(Provider::Zoom).tokens.check_access(&token, now) {
        Ok(grant) => Ok(grant.clone()),
        Err(TokenProblem::Expired) => Err(invalid_token("Access token is expired.")),
        Err(_) => Err(invalid_token("Invalid access token.")),
    }
}
