//! Dialpad: one emulator serving two hosts (production and sandbox) whose registrations and
//! tokens are separate; a token from one host gets 403 on the other, as Dialpad documents.
//!
//! Undocumented behaviour is a [GUESS] switchable through `Variant`: `expires_in` meaning, body
//! encoding, credential placement, user-id type, access-token lifetime, rotation grace.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::authorize::{self, AuthorizePolicy, PkceRule, ScopeRule};
use crate::bearer;
use crate::client_auth::{self, AuthMethod, CredentialError};
use crate::echo;
use crate::fault::Endpoint;
use crate::grant::{self, CodeRules, Issued, RedirectRule, RefreshIssue, RefreshRules, TokenShape};
use crate::jwt;
use crate::params::{self, BodyKind, Params};
use crate::pkce::Method as PkceMethod;
use crate::provider::Provider;
use crate::responses::{self, oauth_error};
use crate::server::{HostCtx, endpoint};
use crate::state::State as FakeState;
use crate::token_log::{self, Draft};
use crate::tokens::{Grant, TokenProblem};
use crate::variant::{BodyEncoding, ClientAuthMode, ExpiresInMode, IdFormat};

const OFFLINE_ACCESS: &str = "offline_access";

pub fn router(ctx: &HostCtx) -> Router<HostCtx> {
    Router::new()
        .route("/oauth2/authorize", endpoint(get(authorize).post(authorize), ctx, Endpoint::Authorize))
        .route("/oauth2/token", endpoint(post(token), ctx, Endpoint::Token))
        .route("/oauth2/deauthorize", endpoint(post(deauthorize), ctx, Endpoint::Revoke))
        .route("/api/v2/users/me", endpoint(get(users_me), ctx, Endpoint::UserInfo))
        .merge(echo::routes("/api/v2", ctx))
}

async fn authorize(State(ctx): State<HostCtx>, method: Method, uri: Uri, body: Bytes) -> Response {
    let policy = AuthorizePolicy {
        provider: ctx.provider(),
        title: if ctx.provider() == Provider::DialpadSandbox { "Dialpad Sandbox" } else { "Dialpad" },
        form_action: "/oauth2/authorize".to_owned(),
        scope: ScopeRule::Requested { default_all: false },
        pkce: PkceRule::Supported { methods: vec![PkceMethod::S256, PkceMethod::Plain], required: false },
        response_type_optional: true,
        redirect_uri_optional: false,
        iss: None,
    };
    authorize::handle(&ctx.control, &policy, &method, authorize::request_params(&method, &uri, &body))
}

async fn token(State(ctx): State<HostCtx>, headers: HeaderMap, body: Bytes) -> Response {
    let provider = ctx.provider();
    let variants = ctx.control.variants();
    let parsed = match (params::body_kind(&headers, &body), variants.dialpad_token_body) {
        (BodyKind::Form | BodyKind::Empty, BodyEncoding::Both | BodyEncoding::FormOnly) => Ok(Params::from_form(&body)),
        (BodyKind::Json, BodyEncoding::Both | BodyEncoding::JsonOnly) => Params::from_json(&body),
        (kind, accepted) => Err(format!("unsupported request body {kind:?}; this server accepts {accepted:?}")),
    };
    let params = match parsed {
        Ok(params) => params,
        Err(message) => {
            let draft = Draft::new(&headers, &Params::default(), None);
            return draft.finish(&ctx.control, provider, oauth_error(400, "invalid_request", &message));
        }
    };
    let creds = client_auth::presented(&headers, &params);
    let draft = Draft::new(&headers, &params, creds.as_ref().ok());
    let response = match creds {
        Err(CredentialError::Missing) => oauth_error(401, "invalid_client", "client authentication is required"),
        Err(_) => oauth_error(401, "invalid_client", "malformed client credentials"),
        Ok(creds) => {
            let allowed = match (variants.dialpad_client_auth, creds.method) {
                (_, AuthMethod::None) => false,
                (ClientAuthMode::Either, _) => true,
                (ClientAuthMode::BasicOnly, method) => method == AuthMethod::Basic,
                (ClientAuthMode::BodyOnly, method) => method == AuthMethod::Body,
            };
            match token_log::authenticate(&ctx.control, provider, &creds).filter(|_| allowed) {
                None => oauth_error(401, "invalid_client", "client authentication failed"),
                Some(client) => grant_tokens(&ctx, &client.client_id, &client.client_secret, &params),
            }
        }
    };
    draft.finish(&ctx.control, provider, response)
}

fn grant_tokens(ctx: &HostCtx, client_id: &str, secret: &str, params: &Params) -> Response {
    let provider = ctx.provider();
    let result = match params.get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = params.get("code") else {
                return oauth_error(400, "invalid_request", "code is missing");
            };
            let rules = CodeRules {
                redirect: RedirectRule::Optional,
                enforce_pkce: true,
                refresh: RefreshIssue::WithScope(OFFLINE_ACCESS),
                revoke_previous_grants: false,
                shape: TokenShape::Opaque,
            };
            let (redirect_uri, verifier) = (params.get("redirect_uri"), params.get("code_verifier"));
            grant::exchange_code(&ctx.control, provider, client_id, code, redirect_uri, verifier, &rules)
        }
        Some("refresh_token") => {
            let Some(refresh_token) = params.get("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is missing");
            };
            let rules = RefreshRules { rotate: true, reuse_revokes_grant: false, shape: TokenShape::Opaque };
            grant::refresh(&ctx.control, provider, client_id, refresh_token, &rules)
        }
        None => return oauth_error(400, "invalid_request", "grant_type is missing"),
        Some(_) => return oauth_error(400, "unsupported_grant_type", "grant_type is not supported"),
    };
    match result {
        Ok(issued) => responses::no_store_json(200, &token_body(ctx, secret, &issued)),
        Err(failure) => oauth_error(400, "invalid_grant", failure.description()),
    }
}

/// `token_type` lower case, no `scope`; refresh and id tokens only with `offline_access`.
fn token_body(ctx: &HostCtx, secret: &str, issued: &Issued) -> Value {
    let variants = ctx.control.variants();
    let mut body = json!({ "access_token": issued.access_token, "token_type": "bearer" });
    let expires_in = match (variants.dialpad_expires_in_raw, issued.lifetime) {
        (Some(raw), _) => Some(raw),
        (None, None) => None,
        (None, Some(lifetime)) => {
            let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX);
            Some(match variants.dialpad_expires_in {
                ExpiresInMode::Seconds => lifetime,
                ExpiresInMode::Epoch => i64::try_from(issued.now).unwrap_or(i64::MAX).saturating_add(lifetime),
            })
        }
    };
    if let Some(expires_in) = expires_in {
        body["expires_in"] = json!(expires_in);
    }
    if issued.grant.has_scope(OFFLINE_ACCESS) {
        if let Some(refresh_token) = &issued.refresh_token {
            body["refresh_token"] = json!(refresh_token);
        }
        let claims = json!({
            "iss": ctx.base_url(),
            "sub": issued.grant.user.id,
            "aud": issued.grant.client_id,
            "iat": issued.now,
            "exp": issued.now + 3600,
            "email": issued.grant.user.email,
        });
        body["id_token"] = json!(jwt::hs256(secret, &claims));
    }
    body
}

/// Revokes every token the app holds for the calling user (204, empty body).
async fn deauthorize(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(grant) => {
            ctx.control
                .lock()
                .provider(ctx.provider())
                .tokens
                .revoke_grants_where(|g| g.client_id == grant.client_id && g.user.id == grant.user.id);
            responses::empty(204)
        }
    }
}

async fn users_me(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    let grant = match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    let format = ctx.control.variants().dialpad_user_id;
    let user = &grant.user;
    let (first, last) = user.first_last();
    responses::json(
        200,
        &json!({
            "id": id_value(&user.id, format),
            "company_id": id_value(&user.account_id, format),
            "office_id": id_value("5314054371950592", format),
            "emails": [user.email],
            "display_name": user.name,
            "first_name": first,
            "last_name": last,
            "state": "active",
            "is_admin": false,
            "is_online": true,
            "language": "en",
            "timezone": "US/Pacific",
            "country": "us",
            "phone_numbers": [],
        }),
    )
}

/// Ids are strings in Dialpad's examples and int64 in its schema.
fn id_value(id: &str, format: IdFormat) -> Value {
    match (format, id.parse::<i64>()) {
        (IdFormat::Integer, Ok(n)) => json!(n),
        _ => json!(id),
    }
}

/// Dialpad's API error body [GUESS: Google Cloud Endpoints shape].
fn api_error(status: u16, reason: &str, message: &str) -> Response {
    responses::json(
        status,
        &json!({ "error": { "code": status, "message": message, "errors": [{ "domain": "global", "reason": reason, "message": message }] } }),
    )
}

/// The grant behind `Authorization: Bearer` (or the discouraged `?apikey=`), applying the rate limit.
pub fn authenticate_api(ctx: &HostCtx, headers: &HeaderMap, uri: &Uri) -> Result<Grant, Response> {
    let token = bearer::from_header(headers)
        .or_else(|| Params::from_query(uri.query()).get("apikey").map(str::to_owned))
        .ok_or_else(|| api_error(401, "required", "Login Required"))?;
    let provider = ctx.provider();
    let other = match provider {
        Provider::DialpadProduction => Provider::DialpadSandbox,
        _ => Provider::DialpadProduction,
    };
    let mut state = ctx.control.lock();
    let now = state.clock.now();
    let checked = state.provider(provider).tokens.check_access(&token, now).cloned();
    match checked {
        Ok(grant) => match over_limit(&mut state, provider, now) {
            Some(retry_after) => {
                let mut response = api_error(429, "rateLimitExceeded", "Rate limit exceeded");
                response.headers_mut().insert("retry-after", HeaderValue::from(retry_after));
                Err(response)
            }
            None => Ok(grant),
        },
        Err(TokenProblem::Unknown) if state.provider(other).tokens.grant_of(&token).is_some() => Err(api_error(
            403,
            "forbidden",
            "This OAuth app is not allowed to access this environment (sandbox and production apps are separate)",
        )),
        Err(TokenProblem::Expired) => Err(api_error(401, "authError", "Access token expired")),
        Err(_) => Err(api_error(401, "authError", "Invalid access token")),
    }
}

/// Fixed-window limit on the fake clock; `Some(retry_after)` when over it.
fn over_limit(state: &mut FakeState, provider: Provider, now: u64) -> Option<u64> {
    let limit = state.variants.dialpad_rate_limit?;
    let (start, count) = &mut state.provider(provider).rate_window;
    if now >= *start + limit.window_seconds {
        *start = now;
        *count = 0;
    }
    *count += 1;
    (*count > limit.max_requests).then(|| (*start + limit.window_seconds).saturating_sub(now).max(1))
}
