//! The authorization endpoint, shared by all providers and parameterised by a policy.
//!
//! Order matters (RFC 6749 §4.1.2.1): `client_id` and `redirect_uri` are verified first and any
//! problem with them is shown as a page; only then are other errors sent back by redirect.

use axum::http::Method as HttpMethod;
use axum::response::Response;

use crate::control::Control;
use crate::model::{ClientRegistration, ConsentMode};
use crate::params::Params;
use crate::pkce::{self, Challenge, Method};
use crate::provider::Provider;
use crate::random;
use crate::responses::{self, append_query, escape};
use crate::state::AuthCode;

/// How a provider treats the `scope` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeRule {
    /// Optional, space separated, each must be registered for the client (Dialpad, generic).
    /// Omitted: Dialpad grants nothing extra, the generic server grants the registered set.
    Requested { default_all: bool },
    /// Ignored; the client's configured scopes are granted as a bundle (Zoom).
    Configured,
    /// Required and must be exactly `public_api` (Aircall).
    PublicApiOnly,
}

/// How a provider treats PKCE parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PkceRule {
    /// Challenge parameters are ignored and not stored (Aircall, generic without PKCE).
    Ignore,
    Supported {
        methods: Vec<Method>,
        required: bool,
    },
}

#[derive(Clone, Debug)]
pub struct AuthorizePolicy {
    pub provider: Provider,
    /// Display name on pages.
    pub title: &'static str,
    /// Path the consent form posts back to.
    pub form_action: String,
    pub scope: ScopeRule,
    pub pkce: PkceRule,
    /// `response_type` may be omitted (Dialpad's spec marks it optional).
    pub response_type_optional: bool,
    /// With exactly one registered URI, `redirect_uri` may be omitted (RFC 6749 §3.1.2.3).
    pub redirect_uri_optional: bool,
    /// `iss` added to every authorization response (RFC 9207), if any.
    pub iss: Option<String>,
}

/// Handles GET (show consent or decide per consent mode) and POST (the consent form's answer).
pub fn handle(control: &Control, policy: &AuthorizePolicy, method: &HttpMethod, params: Params) -> Response {
    match validate(control, policy, &params) {
        Err(Rejection::Page(message)) => {
            responses::error_page(&format!("{} authorization error", policy.title), &message)
        }
        Err(Rejection::Redirect { redirect_uri, error, description, state }) => {
            let code = if *method == HttpMethod::POST { 303 } else { 302 };
            responses::redirect(code, &error_location(policy, &redirect_uri, error, &description, state.as_deref()))
        }
        Ok(request) => decide(control, policy, method, &params, request),
    }
}

/// A request whose client and redirect URI are trustworthy.
struct Valid {
    client: ClientRegistration,
    /// Where to send the browser.
    redirect_uri: String,
    /// What the request carried (bound to the code).
    sent_redirect_uri: Option<String>,
    state: Option<String>,
    scopes: Vec<String>,
    challenge: Option<Challenge>,
}

enum Rejection {
    Page(String),
    Redirect { redirect_uri: String, error: &'static str, description: String, state: Option<String> },
}

fn validate(control: &Control, policy: &AuthorizePolicy, params: &Params) -> Result<Valid, Rejection> {
    if let Some(name @ ("client_id" | "redirect_uri")) = params.duplicated() {
        return Err(Rejection::Page(format!("parameter {name} was sent more than once")));
    }
    let client_id = params.get("client_id").ok_or_else(|| Rejection::Page("client_id is missing".into()))?;
    let client = control
        .lock()
        .provider(policy.provider)
        .clients
        .get(client_id)
        .cloned()
        .ok_or_else(|| Rejection::Page(format!("unknown client_id {client_id:?}")))?;
    let sent_redirect_uri = params.get("redirect_uri").map(str::to_owned);
    let redirect_uri = match &sent_redirect_uri {
        Some(uri) if uri.contains('#') => {
            return Err(Rejection::Page("redirect_uri must not contain a fragment (#)".into()));
        }
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.clone(),
        Some(uri) => return Err(Rejection::Page(format!("redirect_uri {uri:?} is not registered for this client"))),
        None if policy.redirect_uri_optional && client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(Rejection::Page("redirect_uri is missing".into())),
    };
    let state = params.get("state").map(str::to_owned);
    let reject = |error: &'static str, description: String| Rejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    if let Some(name) = params.duplicated() {
        return Err(reject("invalid_request", format!("parameter {name} was sent more than once")));
    }
    match params.get("response_type") {
        Some("code") => {}
        None if policy.response_type_optional => {}
        None => return Err(reject("invalid_request", "response_type is missing".into())),
        Some(other) => {
            return Err(reject("unsupported_response_type", format!("response_type {other:?} is not supported")));
        }
    }
    let scopes = granted_scopes(policy.scope, &client, params.get("scope")).map_err(|d| reject("invalid_scope", d))?;
    let challenge = challenge(&policy.pkce, params).map_err(|d| reject("invalid_request", d))?;
    Ok(Valid { client, redirect_uri, sent_redirect_uri, state, scopes, challenge })
}

fn granted_scopes(
    rule: ScopeRule,
    client: &ClientRegistration,
    requested: Option<&str>,
) -> Result<Vec<String>, String> {
    match rule {
        ScopeRule::Configured => Ok(client.scopes.clone()),
        ScopeRule::PublicApiOnly => match requested {
            Some("public_api") => Ok(vec!["public_api".to_owned()]),
            Some(other) => Err(format!("scope must be public_api, got {other:?}")),
            None => Err("scope is missing (must be public_api)".into()),
        },
        ScopeRule::Requested { default_all } => {
            let Some(requested) = requested else {
                return Ok(if default_all { client.scopes.clone() } else { Vec::new() });
            };
            let mut granted: Vec<String> = Vec::new();
            for scope in requested.split(' ').filter(|s| !s.is_empty()) {
                if !client.scopes.iter().any(|s| s == scope) {
                    return Err(format!("scope {scope:?} is not approved for this client"));
                }
                if !granted.iter().any(|s| s == scope) {
                    granted.push(scope.to_owned());
                }
            }
            Ok(granted)
        }
    }
}

fn challenge(rule: &PkceRule, params: &Params) -> Result<Option<Challenge>, String> {
    let PkceRule::Supported { methods, required } = rule else { return Ok(None) };
    let Some(challenge) = params.get("code_challenge") else {
        return if *required { Err("code_challenge is required".into()) } else { Ok(None) };
    };
    let method = Method::parse(params.get("code_challenge_method"))
        .filter(|m| methods.contains(m))
        .ok_or("code_challenge_method is not supported")?;
    if !pkce::well_formed(challenge) {
        return Err("code_challenge must be 43-128 unreserved characters".into());
    }
    Ok(Some(Challenge { challenge: challenge.to_owned(), method }))
}

fn decide(
    control: &Control,
    policy: &AuthorizePolicy,
    method: &HttpMethod,
    params: &Params,
    request: Valid,
) -> Response {
    let approve = if *method == HttpMethod::POST {
        params.get("decision") != Some("deny")
    } else {
        // Read the mode first: the page builder locks the state again.
        let consent = control.lock().provider(policy.provider).consent;
        match consent {
            ConsentMode::AutoApprove => true,
            ConsentMode::AutoDeny => false,
            ConsentMode::Page => return consent_page(control, policy, params, &request),
        }
    };
    // After a form POST, 303 makes the browser follow with GET (RFC 9700 §4.12).
    let status = if *method == HttpMethod::POST { 303 } else { 302 };
    if !approve {
        let location = error_location(
            policy,
            &request.redirect_uri,
            "access_denied",
            "the user denied access",
            request.state.as_deref(),
        );
        return responses::redirect(status, &location);
    }
    let code = random::token(32);
    {
        let mut state = control.lock();
        let now = state.clock.now();
        let lifetime = state.variants.lifetimes(policy.provider).code_seconds;
        let provider = state.provider(policy.provider);
        let record = AuthCode {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.sent_redirect_uri.clone(),
            challenge: request.challenge.clone(),
            scopes: request.scopes.clone(),
            user: provider.user.clone(),
            expires_at: now + lifetime,
            used: false,
            grant: None,
            nonce: params.get("nonce").map(str::to_owned),
        };
        provider.codes.insert(code.clone(), record);
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        pairs.push(("state", state));
    }
    if let Some(iss) = policy.iss.as_deref() {
        pairs.push(("iss", iss));
    }
    responses::redirect(status, &append_query(&request.redirect_uri, &pairs))
}

fn error_location(
    policy: &AuthorizePolicy,
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    if let Some(iss) = policy.iss.as_deref() {
        pairs.push(("iss", iss));
    }
    append_query(redirect_uri, &pairs)
}

/// An approval page whose buttons post the original parameters back with a decision.
fn consent_page(control: &Control, policy: &AuthorizePolicy, params: &Params, request: &Valid) -> Response {
    let user = control.lock().provider(policy.provider).user.clone();
    let hidden: String = params
        .pairs()
        .iter()
        .filter(|(name, _)| name != "decision")
        .map(|(name, value)| format!(r#"<input type="hidden" name="{}" value="{}">"#, escape(name), escape(value)))
        .collect();
    let form = |decision: &str, label: &str| {
        format!(
            r#"<form method="post" action="{action}" style="display:inline">{hidden}<input type="hidden" name="decision" value="{decision}"><button type="submit" id="{decision}">{label}</button></form>"#,
            action = escape(&policy.form_action)
        )
    };
    let scopes = if request.scopes.is_empty() { "(default access)".to_owned() } else { request.scopes.join(" ") };
    let body = format!(
        "<!doctype html><html><head><title>{title}: authorize {client}</title></head><body>\
         <h1>{title}</h1><p>Signed in as <b>{name}</b> ({email}).</p>\
         <p>The application <b>{client}</b> wants access: <code>{scopes}</code></p>\
         <p>After approval you return to <code>{redirect}</code>.</p>{approve} {deny}</body></html>",
        title = escape(policy.title),
        client = escape(&request.client.client_id),
        name = escape(&user.name),
        email = escape(&user.email),
        scopes = escape(&scopes),
        redirect = escape(&request.redirect_uri),
        approve = form("approve", "Approve"),
        deny = form("deny", "Deny"),
    );
    responses::html(200, body)
}

/// Authorization parameters: the query string, plus the form body for POST (the consent form).
pub fn request_params(method: &HttpMethod, uri: &axum::http::Uri, body: &[u8]) -> Params {
    let query = Params::from_query(uri.query());
    if *method == HttpMethod::POST { query.merged(Params::from_form(body)) } else { query }
}
