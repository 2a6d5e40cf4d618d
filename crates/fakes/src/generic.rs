//! A standards-compliant OAuth 2.0 / OIDC authorization server (RFC 6749, 7636, 7009, 8414,
//! 9207, 9700) at issuer `<base>/realms/test`, the reference the vault's generic provider support
//! is tested against. Its advertised capabilities are variants, and it enforces exactly what it
//! advertises.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::authorize::{self, AuthorizePolicy, PkceRule, ScopeRule};
use crate::bearer;
use crate::client_auth::{self, AuthMethod};
use crate::echo;
use crate::fault::Endpoint;
use crate::grant::{self, CodeRules, Issued, RedirectRule, RefreshIssue, RefreshRules, TokenShape};
use crate::jwt;
use crate::model::ClientRegistration;
use crate::params::{self, BodyKind, Params};
use crate::pkce::Method as PkceMethod;
use crate::provider::{Host, Provider};
use crate::responses::{self, oauth_error};
use crate::server::{HostCtx, endpoint};
use crate::token_log::{self, Draft};
use crate::tokens::Grant;
use crate::urls::GENERIC_ISSUER_PATH;
use crate::variant::IssResponse;

pub fn router(ctx: &HostCtx) -> Router<HostCtx> {
    let p = GENERIC_ISSUER_PATH;
    Router::new()
        .route(&format!("/.well-known/oauth-authorization-server{p}"), endpoint(get(metadata), ctx, Endpoint::Other))
        .route(&format!("{p}/.well-known/openid-configuration"), endpoint(get(metadata), ctx, Endpoint::Other))
        .route(&format!("{p}/authorize"), endpoint(get(authorize).post(authorize), ctx, Endpoint::Authorize))
        .route(&format!("{p}/token"), endpoint(post(token), ctx, Endpoint::Token))
        .route(&format!("{p}/revoke"), endpoint(post(revoke), ctx, Endpoint::Revoke))
        .route(&format!("{p}/userinfo"), endpoint(get(userinfo).post(userinfo), ctx, Endpoint::UserInfo))
        .route("/api/scoped/{scope}", endpoint(get(scoped), ctx, Endpoint::Api))
        .merge(echo::routes("/api", ctx))
}

fn issuer(ctx: &HostCtx) -> String {
    ctx.control.urls().generic_issuer
}

/// An issuer that is not this server's: another realm on the same host.
fn wrong_issuer(ctx: &HostCtx) -> String {
    format!("{}/realms/other", ctx.base_url())
}

/// RFC 8414 and OIDC discovery share one document.
async fn metadata(State(ctx): State<HostCtx>) -> Response {
    let v = ctx.control.variants();
    let issuer = issuer(&ctx);
    let mut scopes: Vec<String> = ["openid", "profile", "email", "offline_access"].map(str::to_owned).to_vec();
    for client in ctx.control.lock().provider(Provider::Generic).clients.values() {
        for scope in &client.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
    }
    let mut document = json!({
        "issuer": if v.generic_wrong_issuer_in_metadata { wrong_issuer(&ctx) } else { issuer.clone() },
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": v.generic_token_endpoint_auth_methods,
        "revocation_endpoint_auth_methods_supported": v.generic_token_endpoint_auth_methods,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "claims_supported": ["sub", "name", "email"],
        "authorization_response_iss_parameter_supported": v.generic_iss_parameter_supported,
    });
    if let Some(methods) = v.generic_code_challenge_methods {
        document["code_challenge_methods_supported"] = json!(methods);
    }
    responses::json(200, &document)
}

async fn authorize(State(ctx): State<HostCtx>, method: Method, uri: Uri, body: Bytes) -> Response {
    let v = ctx.control.variants();
    let pkce = match &v.generic_code_challenge_methods {
        // Not advertised = not supported: challenges are ignored, verifiers then refused.
        None => PkceRule::Ignore,
        Some(names) => PkceRule::Supported {
            methods: names.iter().filter_map(|n| PkceMethod::parse(Some(n))).collect(),
            required: v.generic_require_pkce,
        },
    };
    let iss = match v.generic_iss_response {
        IssResponse::FollowMetadata => v.generic_iss_parameter_supported.then(|| issuer(&ctx)),
        IssResponse::Wrong => Some(format!("{}{GENERIC_ISSUER_PATH}", ctx.control.base_url(Host::Evil))),
        IssResponse::Omit => None,
    };
    let policy = AuthorizePolicy {
        provider: Provider::Generic,
        title: "Generic OAuth server",
        form_action: format!("{GENERIC_ISSUER_PATH}/authorize"),
        scope: ScopeRule::Requested { default_all: true },
        pkce,
        response_type_optional: false,
        redirect_uri_optional: true,
        iss,
    };
    authorize::handle(&ctx.control, &policy, &method, authorize::request_params(&method, &uri, &body))
}

/// `invalid_client`, with a Basic challenge when the client tried Basic (RFC 6749 §5.2).
fn invalid_client(headers: &HeaderMap, description: &str) -> Response {
    let mut response = oauth_error(401, "invalid_client", description);
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"test\""));
    }
    response
}

/// Form-encoded parameters, no duplicates (RFC 6749 §3.2).
fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, Response> {
    if params::body_kind(headers, body) != BodyKind::Form {
        return Err(oauth_error(400, "invalid_request", "body must be application/x-www-form-urlencoded"));
    }
    let params = Params::from_form(body);
    match params.duplicated() {
        Some(name) => Err(oauth_error(400, "invalid_request", &format!("parameter {name} was sent more than once"))),
        None => Ok(params),
    }
}

/// Client authentication restricted to the advertised methods, one method per request.
fn authenticate_client(ctx: &HostCtx, headers: &HeaderMap, params: &Params) -> Result<ClientRegistration, Response> {
    let creds =
        client_auth::presented(headers, params).map_err(|_| invalid_client(headers, "client authentication failed"))?;
    if creds.also_in_body {
        return Err(oauth_error(400, "invalid_request", "more than one client authentication method used"));
    }
    let method_name = match creds.method {
        AuthMethod::Basic => "client_secret_basic",
        AuthMethod::Body => "client_secret_post",
        AuthMethod::None => "none",
    };
    if !ctx.control.variants().generic_token_endpoint_auth_methods.iter().any(|m| m == method_name) {
        return Err(invalid_client(headers, &format!("{method_name} is not a supported authentication method")));
    }
    token_log::authenticate(&ctx.control, Provider::Generic, &creds)
        .ok_or_else(|| invalid_client(headers, "client authentication failed"))
}

async fn token(State(ctx): State<HostCtx>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(response) => {
            return Draft::new(&headers, &Params::default(), None).finish(&ctx.control, Provider::Generic, response);
        }
    };
    let draft = Draft::new(&headers, &params, client_auth::presented(&headers, &params).ok().as_ref());
    let response = match authenticate_client(&ctx, &headers, &params) {
        Err(response) => response,
        Ok(client) => grant_tokens(&ctx, &client, &params),
    };
    draft.finish(&ctx.control, Provider::Generic, response)
}

fn grant_tokens(ctx: &HostCtx, client: &ClientRegistration, params: &Params) -> Response {
    let v = ctx.control.variants();
    let result = match params.get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = params.get("code") else {
                return oauth_error(400, "invalid_request", "code is missing");
            };
            let rules = CodeRules {
                redirect: RedirectRule::IfSentAtAuthorize,
                enforce_pkce: true,
                refresh: RefreshIssue::Always,
                revoke_previous_grants: false,
                shape: TokenShape::Opaque,
            };
            let (redirect_uri, verifier) = (params.get("redirect_uri"), params.get("code_verifier"));
            grant::exchange_code(
                &ctx.control,
                Provider::Generic,
                &client.client_id,
                code,
                redirect_uri,
                verifier,
                &rules,
            )
        }
        Some("refresh_token") => {
            let Some(refresh_token) = params.get("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is missing");
            };
            let rules = RefreshRules {
                rotate: v.generic_refresh_rotation,
                reuse_revokes_grant: v.generic_refresh_reuse_revokes_grant,
                shape: TokenShape::Opaque,
            };
            grant::refresh(&ctx.control, Provider::Generic, &client.client_id, refresh_token, &rules)
        }
        None => return oauth_error(400, "invalid_request", "grant_type is missing"),
        Some(_) => return oauth_error(400, "unsupported_grant_type", "grant_type is not supported"),
    };
    match result {
        Ok(issued) => responses::no_store_json(200, &token_body(ctx, client, &issued)),
        Err(failure) => oauth_error(400, "invalid_grant", failure.description()),
    }
}

fn token_body(ctx: &HostCtx, client: &ClientRegistration, issued: &Issued) -> Value {
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "scope": issued.grant.scopes.join(" "),
    });
    if let Some(lifetime) = issued.lifetime {
        body["expires_in"] = json!(lifetime);
    }
    if let Some(refresh_token) = &issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    if issued.grant.has_scope("openid") {
        let nonce = issued.grant.code.as_ref().and_then(|code| {
            ctx.control.lock().provider(Provider::Generic).codes.get(code).and_then(|c| c.nonce.clone())
        });
        let claims = json!({
            "iss": issuer(ctx),
            "sub": issued.grant.user.id,
            "aud": client.client_id,
            "iat": issued.now,
            "exp": issued.now + 3600,
            "nonce": nonce,
            "name": issued.grant.user.name,
            "email": issued.grant.user.email,
        });
        body["id_token"] = json!(jwt::hs256(&client.client_secret, &claims));
    }
    body
}

/// RFC 7009: 200 for revoked, unknown and already-invalid tokens alike.
async fn revoke(State(ctx): State<HostCtx>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form_params(&headers, &body) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let client = match authenticate_client(&ctx, &headers, &params) {
        Ok(client) => client,
        Err(response) => return response,
    };
    let Some(token) = params.get("token") else {
        return oauth_error(400, "invalid_request", "token is missing");
    };
    if let Some(hint) = params.get("token_type_hint")
        && hint != "access_token"
        && hint != "refresh_token"
    {
        return oauth_error(400, "unsupported_token_type", "token_type_hint is not supported");
    }
    let mut state = ctx.control.lock();
    let tokens = &mut state.provider(Provider::Generic).tokens;
    match tokens.grant_of(token).map(|g| (g.id, g.client_id.clone())) {
        Some((_, owner)) if owner != client.client_id => {
            return oauth_error(400, "unauthorized_client", "the token was issued to another client");
        }
        // Revoking a refresh token ends the grant; an access token dies alone.
        Some((grant, _)) if tokens.is_refresh_token(token) => tokens.revoke_grant(grant),
        Some(_) => {
            tokens.revoke_access(token);
        }
        None => {}
    }
    responses::empty(200)
}

/// A 401 with the RFC 6750 challenge (no error code when no token was sent, §3.1).
fn bearer_challenge(error: Option<&str>) -> Response {
    let (challenge, body) = match error {
        Some(error) => (format!("Bearer realm=\"test\", error=\"{error}\""), json!({ "error": error })),
        None => ("Bearer realm=\"test\"".to_owned(), json!({ "error": "unauthorized" })),
    };
    let mut response = responses::json(401, &body);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}

pub fn authenticate_api(ctx: &HostCtx, headers: &HeaderMap, _uri: &Uri) -> Result<Grant, Response> {
    let token = bearer::from_header(headers).ok_or_else(|| bearer_challenge(None))?;
    let mut state = ctx.control.lock();
    let now = state.clock.now();
    let result = state.provider(Provider::Generic).tokens.check_access(&token, now).cloned();
    result.map_err(|_| bearer_challenge(Some("invalid_token")))
}

async fn userinfo(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri) -> Response {
    match authenticate_api(&ctx, &headers, &uri) {
        Err(response) => response,
        Ok(grant) => responses::json(
            200,
            &json!({
                "sub": grant.user.id,
                "name": grant.user.name,
                "email": grant.user.email,
                "email_verified": true,
            }),
        ),
    }
}

/// Succeeds only if the token's grant includes `scope`; otherwise 403 `insufficient_scope`
/// (RFC 6750 §3.1), which a vault must not mistake for expiry.
async fn scoped(State(ctx): State<HostCtx>, headers: HeaderMap, uri: Uri, Path(scope): Path<String>) -> Response {
    let grant = match authenticate_api(&ctx, &headers, &uri) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    if grant.has_scope(&scope) {
        return responses::json(200, &json!({ "ok": true, "scope": scope }));
    }
    let mut response = responses::json(403, &json!({ "error": "insufficient_scope", "scope": scope }));
    let challenge =
        format!("Bearer realm=\"test\", error=\"insufficient_scope\", scope=\"{}\"", scope.replace('"', ""));
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}
