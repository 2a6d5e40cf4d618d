//! The portal's pages for what an app runs with once set up: webhook endpoints and their
//! deliveries, managed secrets, policies, agents with their delegations and keys, approvals
//! waiting, and the vault's key ring.
//!
//! Every page calls the service layer exactly as the API does; viewers see the pages without
//! their forms, and every form goes through [`editor`] (signed in, the session's CSRF token, a
//! role that may change things).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use tokenvault_service::{
    AgentInput, ApiKeyInput, ApprovalListQuery, CallContext, DelegationInput, GrantListQuery, ManagedSecretInput,
    MintedApiKey, OperatorSession, PolicyInput, PolicyRules, ServiceError, Timestamp, Vault, WebhookEndpointInput,
};

use super::{AppNav, Fields, app_nav, editor, operator_context, page, refused, see_other, signed_in};
use crate::context::Context;

type FormFields = Result<Form<Vec<(String, String)>>, FormRejection>;

/// The HTTP methods a delegation may be narrowed to (the service checks them).
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn notice(query: Option<&str>) -> Option<String> {
    let done = query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == "done").map(|(_, v)| v));
    match done.as_deref() {
        Some("created") => Some("Created.".into()),
        Some("delegated") => Some("Grant delegated.".into()),
        Some("revoked") => Some("Revoked.".into()),
        Some("deleted") => Some("Deleted.".into()),
        Some("approved") => Some("Approved. The caller can now execute the held call.".into()),
        Some("recorded") => Some("Your approval is recorded; more approvals are needed.".into()),
        Some("denied") => Some("Denied.".into()),
        Some("retried") => Some("The delivery is due again; the worker sends it within seconds.".into()),
        _ => None,
    }
}

fn when(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())
}

/// Whole days (optional) as seconds.
fn days(fields: &Fields, name: &str) -> Result<Option<u64>, ServiceError> {
    match fields.opt(name).map(|d| d.parse::<u64>()) {
        None => Ok(None),
        Some(Ok(days)) => Ok(Some(days.saturating_mul(86_400))),
        Some(Err(_)) => Err(ServiceError::invalid("invalid_expiry", "the expiry is a whole number of days")),
    }
}

/// The session of a page, or the way to sign in.
macro_rules! session_or_sign_in {
    ($vault:expr, $headers:expr) => {
        match signed_in(&$vault, &$headers).await {
            Ok(session) => session,
            Err(to_sign_in) => return to_sign_in,
        }
    };
}

/// The operator of a form, or the page that says why not.
macro_rules! editor_or_refusal {
    ($vault:expr, $headers:expr, $form:expr) => {
        match editor(&$vault, &$headers, $form).await {
            Ok(ok) => ok,
            Err(refusal) => return refusal,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Agents and delegations

struct AgentRow {
    id: String,
    name: String,
    description: String,
    status: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "portal/manage_agents.html")]
struct AgentsPage {
    nav: AppNav,
    agents: Vec<AgentRow>,
}

/// `GET /portal/apps/{app_id}/agents`.
pub(crate) async fn agents(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "agents").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let agents = match vault.list_agents(&app.id).await {
        Ok(agents) => agents,
        Err(error) => return refused(error),
    };
    let agents = agents
        .into_iter()
        .map(|a| AgentRow {
            id: a.id,
            name: a.name,
            description: a.description.unwrap_or_default(),
            status: a.status,
            created_at: a.created_at.to_rfc3339(),
        })
        .collect();
    page(StatusCode::OK, AgentsPage { nav, agents }.render())
}

/// `POST /portal/apps/{app_id}/agents`.
pub(crate) async fn create_agent(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let input =
        AgentInput { name: fields.get("name").to_owned(), description: fields.opt("description"), metadata: None };
    match vault.create_agent(&app_id, input, &operator_context(&session, context)).await {
        Ok(agent) => see_other(&format!("/portal/apps/{app_id}/agents/{}?done=created", agent.id)),
        Err(error) => refused(error),
    }
}

struct DelegationRow {
    id: String,
    grant_id: String,
    methods: String,
    paths: String,
    proxy_only: bool,
    created_at: String,
    expires_at: String,
    state: &'static str,
}

struct GrantChoice {
    id: String,
    label: String,
}

struct AgentKeyRow {
    id: String,
    name: String,
    scopes: String,
    expires_at: String,
    state: &'static str,
}

struct NewKey {
    id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "portal/manage_agent.html")]
struct AgentPage {
    nav: AppNav,
    agent: AgentRow,
    delegations: Vec<DelegationRow>,
    grants: Vec<GrantChoice>,
    methods: &'static [&'static str],
    keys: Vec<AgentKeyRow>,
    minted: Option<NewKey>,
}

async fn agent_page(
    vault: &Vault,
    session: &OperatorSession,
    app_id: &str,
    agent_id: &str,
    notice_query: Option<&str>,
    minted: Option<MintedApiKey>,
) -> Response {
    let (app, mut nav) = match app_nav(vault, session, app_id, "agents").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(notice_query);
    let agent = match vault.get_agent(&app.id, agent_id).await {
        Ok(agent) => agent,
        Err(error) => return refused(error),
    };
    let delegations = match vault.list_delegations(&app.id, &agent.id).await {
        Ok(delegations) => delegations,
        Err(error) => return refused(error),
    };
    let now = vault.now().as_millis();
    let delegations = delegations
        .into_iter()
        .map(|d| DelegationRow {
            state: if d.revoked_at.is_some() {
                "revoked"
            } else if d.expires_at.is_some_and(|e| e.as_millis() <= now) {
                "expired"
            } else {
                "active"
            },
            id: d.id,
            grant_id: d.grant_id,
            methods: d.methods.map(|m| m.join(" ")).unwrap_or_else(|| "any".into()),
            paths: d.paths.map(|p| p.join(" ")).unwrap_or_else(|| "any".into()),
            proxy_only: d.proxy_only,
            created_at: d.created_at.to_rfc3339(),
            expires_at: when(d.expires_at),
        })
        .collect();
    let query = GrantListQuery { status: Some("active".into()), limit: Some(200), ..GrantListQuery::default() };
    let mut grants: Vec<GrantChoice> = match vault.list_grants(&app.id, &query, &CallContext::default()).await {
        Ok(grants) => grants
            .into_iter()
            .map(|g| GrantChoice { label: format!("{} · {} · {}", g.provider, g.end_user_id, g.id), id: g.id })
            .collect(),
        Err(error) => return refused(error),
    };
    match vault.list_managed_secrets(&app.id).await {
        Ok(secrets) => grants.extend(
            secrets
                .into_iter()
                .filter(|s| s.status == "active")
                .map(|s| GrantChoice { label: format!("managed secret {} · {}", s.name, s.id), id: s.id }),
        ),
        Err(error) => return refused(error),
    }
    let keys = match vault.list_api_keys(&app.id).await {
        Ok(keys) => keys,
        Err(error) => return refused(error),
    };
    let keys = keys
        .into_iter()
        .filter(|k| k.agent_id.as_deref() == Some(agent.id.as_str()))
        .map(|k| AgentKeyRow {
            state: if k.revoked_at.is_some() {
                "revoked"
            } else if k.expires_at.is_some_and(|e| e.as_millis() <= now) {
                "expired"
            } else {
                "active"
            },
            id: k.id,
            name: k.name,
            scopes: k.scopes.to_string(),
            expires_at: when(k.expires_at),
        })
        .collect();
    let agent = AgentRow {
        id: agent.id,
        name: agent.name,
        description: agent.description.unwrap_or_default(),
        status: agent.status,
        created_at: agent.created_at.to_rfc3339(),
    };
    let status = if minted.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    let minted = minted.map(|m| NewKey { id: m.info.id, secret: m.secret.expose_secret().to_owned() });
    page(status, AgentPage { nav, agent, delegations, grants, methods: METHODS, keys, minted }.render())
}

/// `GET /portal/apps/{app_id}/agents/{agent_id}`.
pub(crate) async fn agent(
    State(vault): State<Arc<Vault>>,
    Path((app_id, agent_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    agent_page(&vault, &session, &app_id, &agent_id, query.as_deref(), None).await
}

/// `POST /portal/apps/{app_id}/agents/{agent_id}/delegations`: methods are checkboxes (none:
/// any), paths one pattern a line (none: any).
pub(crate) async fn delegate(
    State(vault): State<Arc<Vault>>,
    Path((app_id, agent_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let expires_in = match days(&fields, "expires_in_days") {
        Ok(expires_in) => expires_in,
        Err(error) => return refused(error),
    };
    let methods = fields.all("methods");
    let paths: Vec<String> =
        fields.get("paths").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let input = DelegationInput {
        grant_id: fields.get("grant_id").to_owned(),
        methods: (!methods.is_empty()).then_some(methods),
        paths: (!paths.is_empty()).then_some(paths),
        proxy_only: Some(fields.get("proxy_only") != "false"),
        expires_in,
    };
    match vault.create_delegation(&app_id, &agent_id, input, &operator_context(&session, context)).await {
        Ok(_) => see_other(&format!("/portal/apps/{app_id}/agents/{agent_id}?done=delegated")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/agents/{agent_id}/delegations/{delegation_id}/revoke`.
pub(crate) async fn revoke_delegation(
    State(vault): State<Arc<Vault>>,
    Path((app_id, agent_id, delegation_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    // The delegation must be this agent's (another agent's is "not found", as in the API).
    match vault.get_delegation(&app_id, &delegation_id).await {
        Ok(found) if found.agent_id == agent_id => {}
        Ok(_) => return refused(ServiceError::not_found("delegation")),
        Err(error) => return refused(error),
    }
    match vault.revoke_delegation(&app_id, &delegation_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/agents/{agent_id}?done=revoked")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/agents/{agent_id}/keys`: the new agent key is shown once.
pub(crate) async fn mint_agent_key(
    State(vault): State<Arc<Vault>>,
    Path((app_id, agent_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let expires_in = match days(&fields, "expires_in_days") {
        Ok(expires_in) => expires_in,
        Err(error) => return refused(error),
    };
    let scopes: Vec<String> =
        fields.get("scopes").split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let input = ApiKeyInput {
        name: fields.opt("name"),
        scopes: (!scopes.is_empty()).then_some(scopes),
        expires_at: None,
        expires_in,
        allowed_cidrs: None,
        rate_limit: None,
    };
    match vault.mint_agent_key(&app_id, &agent_id, input, None, &operator_context(&session, context)).await {
        Ok(minted) => agent_page(&vault, &session, &app_id, &agent_id, None, Some(minted)).await,
        Err(error) => refused(error),
    }
}

// ---------------------------------------------------------------------------------------------
// Approvals waiting

struct ApprovalRow {
    id: String,
    method: String,
    path: String,
    query: String,
    body_bytes: i64,
    grant_id: String,
    provider: String,
    end_user_id: String,
    agent_id: Option<String>,
    api_key_id: Option<String>,
    actor: String,
    reason: String,
    approvers: String,
    required: u32,
    approvals: usize,
    created_at: String,
    expires_at: String,
    /// Whether an operator may decide (the rule's approvers are not the end user alone).
    operators_decide: bool,
}

#[derive(Template)]
#[template(path = "portal/manage_approvals.html")]
struct ApprovalsPage {
    nav: AppNav,
    approvals: Vec<ApprovalRow>,
}

/// `GET /portal/apps/{app_id}/approvals`: the held calls waiting for a decision.
pub(crate) async fn approvals(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "approvals").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let filter = ApprovalListQuery { status: Some("pending".into()), limit: Some(200), ..ApprovalListQuery::default() };
    let approvals = match vault.list_approvals(&app.id, filter, &CallContext::default()).await {
        Ok(approvals) => approvals,
        Err(error) => return refused(error),
    };
    let approvals = approvals
        .into_iter()
        .map(|a| ApprovalRow {
            approvals: a.decisions.iter().filter(|d| d.decision == "approve").count(),
            operators_decide: a.approvers != "end_user",
            id: a.id,
            method: a.request.method,
            path: a.request.path,
            query: a.request.query.unwrap_or_default(),
            body_bytes: a.request.body_bytes,
            grant_id: a.grant_id,
            provider: a.provider,
            end_user_id: a.end_user_id.unwrap_or_default(),
            agent_id: a.requested_by.agent_id,
            api_key_id: a.requested_by.api_key_id,
            actor: a.requested_by.actor.kind.unwrap_or_default(),
            reason: a.requested_by.actor.reason.unwrap_or_default(),
            approvers: a.approvers.replace('_', " "),
            required: a.required_approvals,
            created_at: a.created_at.to_rfc3339(),
            expires_at: a.expires_at.to_rfc3339(),
        })
        .collect();
    page(StatusCode::OK, ApprovalsPage { nav, approvals }.render())
}

async fn decide(
    vault: &Vault,
    app_id: &str,
    id: &str,
    approve: bool,
    headers: &HeaderMap,
    context: CallContext,
    form: FormFields,
) -> Response {
    let (session, fields) = match editor(vault, headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let app = match vault.get_app(app_id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let context = operator_context(&session, context);
    match vault
        .decide_approval_as_operator(&app.id, id, approve, fields.opt("comment"), &session.operator, &context)
        .await
    {
        Ok(approval) => {
            // `pending` still: this approval counted, more are needed.
            let done = if approval.status == "pending" { "recorded" } else { approval.status.as_str() };
            see_other(&format!("/portal/apps/{}/approvals?done={done}", app.id))
        }
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/approvals/{approval_id}/approve`.
pub(crate) async fn approve(
    State(vault): State<Arc<Vault>>,
    Path((app_id, approval_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    decide(&vault, &app_id, &approval_id, true, &headers, context, form).await
}

/// `POST /portal/apps/{app_id}/approvals/{approval_id}/deny`.
pub(crate) async fn deny(
    State(vault): State<Arc<Vault>>,
    Path((app_id, approval_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    decide(&vault, &app_id, &approval_id, false, &headers, context, form).await
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// Deliveries a page shows at once.
const DELIVERIES: u32 = 50;

struct EndpointRow {
    id: String,
    url: String,
    events: String,
    created_at: String,
}

struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_type: String,
    state: String,
    attempts: i64,
    last_status: String,
    last_error: String,
    created_at: String,
    delivered_at: String,
    next_attempt_at: String,
}

struct NewEndpoint {
    id: String,
    url: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "portal/manage_webhooks.html")]
struct WebhooksPage {
    nav: AppNav,
    endpoints: Vec<EndpointRow>,
    deliveries: Vec<DeliveryRow>,
    /// The cursor of the next page of deliveries, when there may be one.
    next_after: Option<String>,
    created: Option<NewEndpoint>,
}

async fn webhooks_page(
    vault: &Vault,
    session: &OperatorSession,
    app_id: &str,
    query: Option<&str>,
    created: Option<NewEndpoint>,
) -> Response {
    let (app, mut nav) = match app_nav(vault, session, app_id, "webhooks").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query);
    let endpoints = match vault.list_webhook_endpoints(&app.id).await {
        Ok(endpoints) => endpoints,
        Err(error) => return refused(error),
    };
    let endpoints = endpoints
        .into_iter()
        .map(|e| EndpointRow {
            id: e.id,
            url: e.url,
            events: e.events.join(" "),
            created_at: e.created_at.to_rfc3339(),
        })
        .collect();
    let after = query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == "after").map(|(_, v)| v));
    let after = after.as_deref().filter(|a| !a.is_empty());
    let deliveries = match vault.list_webhook_deliveries(&app.id, None, after, DELIVERIES).await {
        Ok(deliveries) => deliveries,
        Err(error) => return refused(error),
    };
    let next_after = (deliveries.len() as u32 >= DELIVERIES).then(|| deliveries.last().map(|d| d.id.clone())).flatten();
    let deliveries = deliveries
        .into_iter()
        .map(|d| DeliveryRow {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into()),
            last_error: d.last_error.unwrap_or_default(),
            created_at: d.created_at.to_rfc3339(),
            delivered_at: when(d.delivered_at),
            next_attempt_at: when(d.next_attempt_at),
        })
        .collect();
    let status = if created.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    page(status, WebhooksPage { nav, endpoints, deliveries, next_after, created }.render())
}

/// `GET /portal/apps/{app_id}/webhooks`: endpoints, and the deliveries (oldest first, `?after=`
/// pages on).
pub(crate) async fn webhooks(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    webhooks_page(&vault, &session, &app_id, query.as_deref(), None).await
}

/// `POST /portal/apps/{app_id}/webhooks`: the signing secret is on the answer page, once.
pub(crate) async fn create_webhook(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let events: Vec<String> = fields
        .get("events")
        .split([' ', ',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let input =
        WebhookEndpointInput { url: fields.get("url").to_owned(), events: (!events.is_empty()).then_some(events) };
    match vault.create_webhook_endpoint(&app_id, input, &operator_context(&session, context)).await {
        Ok(endpoint) => {
            let secret = endpoint.secret.as_ref().map(|s| s.expose_secret().to_owned()).unwrap_or_default();
            let created = NewEndpoint { id: endpoint.id, url: endpoint.url, secret };
            webhooks_page(&vault, &session, &app_id, None, Some(created)).await
        }
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/webhooks/{endpoint_id}/delete`.
pub(crate) async fn delete_webhook(
    State(vault): State<Arc<Vault>>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    match vault.delete_webhook_endpoint(&app_id, &endpoint_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/webhooks?done=deleted")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/webhooks/{endpoint_id}/rotate-secret`: the new secret is on the
/// answer page, once; the previous one keeps signing for `grace_seconds` (default one day).
pub(crate) async fn rotate_webhook_secret(
    State(vault): State<Arc<Vault>>,
    Path((app_id, endpoint_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let grace_seconds = match fields.opt("grace_seconds").map(|g| g.parse::<u64>()) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => return refused(ServiceError::invalid("invalid_grace", "the grace period is whole seconds")),
    };
    let input = tokenvault_service::RotateSecretInput { grace_seconds };
    match vault.rotate_webhook_secret(&app_id, &endpoint_id, input, &operator_context(&session, context)).await {
        Ok(endpoint) => {
            let secret = endpoint.secret.as_ref().map(|s| s.expose_secret().to_owned()).unwrap_or_default();
            let created = NewEndpoint { id: endpoint.id, url: endpoint.url, secret };
            webhooks_page(&vault, &session, &app_id, None, Some(created)).await
        }
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/webhooks/deliveries/{delivery_id}/retry`.
pub(crate) async fn retry_webhook_delivery(
    State(vault): State<Arc<Vault>>,
    Path((app_id, delivery_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    match vault.retry_webhook_delivery(&app_id, &delivery_id, &operator_context(&session, context)).await {
        Ok(_) => see_other(&format!("/portal/apps/{app_id}/webhooks?done=retried")),
        Err(error) => refused(error),
    }
}

// ---------------------------------------------------------------------------------------------
// Managed secrets

struct SecretRow {
    id: String,
    name: String,
    end_user_id: String,
    style: String,
    base_urls: String,
    status: String,
    secret_set: bool,
    created_at: String,
    updated_at: String,
}

#[derive(Template)]
#[template(path = "portal/manage_secrets.html")]
struct SecretsPage {
    nav: AppNav,
    secrets: Vec<SecretRow>,
}

/// `GET /portal/apps/{app_id}/secrets`: the app's managed secrets (never their values).
pub(crate) async fn secrets(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "secrets").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let secrets = match vault.list_managed_secrets(&app.id).await {
        Ok(secrets) => secrets,
        Err(error) => return refused(error),
    };
    let secrets = secrets
        .into_iter()
        .map(|s| SecretRow {
            style: match (s.style.as_str(), &s.header_name, &s.query_parameter, &s.username) {
                ("header", Some(header), _, _) => format!("header {header}"),
                ("query", _, Some(parameter), _) => format!("query ?{parameter}="),
                ("basic", _, _, Some(username)) => format!("basic, user {username}"),
                (style, ..) => style.to_owned(),
            },
            id: s.id,
            name: s.name,
            end_user_id: s.end_user_id.unwrap_or_default(),
            base_urls: s.base_urls.join(" "),
            status: s.status,
            secret_set: s.secret_set,
            created_at: s.created_at.to_rfc3339(),
            updated_at: s.updated_at.to_rfc3339(),
        })
        .collect();
    page(StatusCode::OK, SecretsPage { nav, secrets }.render())
}

/// `POST /portal/apps/{app_id}/secrets`: the value is write-only (never shown again).
pub(crate) async fn create_secret(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let base_urls = fields.get("base_urls").split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let style = fields.get("style").to_owned();
    // Only the parameter of the chosen style is sent on (the form shows all three).
    let input = ManagedSecretInput {
        name: fields.get("name").to_owned(),
        end_user_id: fields.opt("end_user_id"),
        header_name: fields.opt("header_name").filter(|_| style == "header"),
        query_parameter: fields.opt("query_parameter").filter(|_| style == "query"),
        username: fields.opt("username").filter(|_| style == "basic"),
        style,
        secret: SecretString::from(fields.get("secret").to_owned()),
        base_urls,
    };
    match vault.create_managed_secret(&app_id, input, &operator_context(&session, context)).await {
        Ok(_) => see_other(&format!("/portal/apps/{app_id}/secrets?done=created")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/secrets/{secret_id}/delete`.
pub(crate) async fn delete_secret(
    State(vault): State<Arc<Vault>>,
    Path((app_id, secret_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    match vault.delete_managed_secret(&app_id, &secret_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/secrets?done=deleted")),
        Err(error) => refused(error),
    }
}

// ---------------------------------------------------------------------------------------------
// Policies

struct PolicyRow {
    id: String,
    target_type: String,
    target_id: String,
    rules: String,
    created_at: String,
}

struct TargetChoice {
    /// `app`, or `type:id`.
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "portal/manage_policies.html")]
struct PoliciesPage {
    nav: AppNav,
    policies: Vec<PolicyRow>,
    targets: Vec<TargetChoice>,
}

/// What a policy may be attached to: the app, its provider configurations, active grants,
/// agents and their delegations in force.
async fn policy_targets(vault: &Vault, app_id: &str) -> Result<Vec<TargetChoice>, ServiceError> {
    let mut targets = vec![TargetChoice { value: "app".into(), label: "the whole app".into() }];
    for c in vault.list_provider_configs(app_id).await? {
        targets.push(TargetChoice {
            value: format!("provider_config:{}", c.id),
            label: format!("provider {} ({}) · {}", c.display_name, c.key, c.id),
        });
    }
    let query = GrantListQuery { status: Some("active".into()), limit: Some(200), ..GrantListQuery::default() };
    for g in vault.list_grants(app_id, &query, &CallContext::default()).await? {
        targets.push(TargetChoice {
            value: format!("grant:{}", g.id),
            label: format!("grant {} · {} · {}", g.provider, g.end_user_id, g.id),
        });
    }
    for s in vault.list_managed_secrets(app_id).await?.into_iter().filter(|s| s.status == "active") {
        targets.push(TargetChoice {
            value: format!("grant:{}", s.id),
            label: format!("managed secret {} · {}", s.name, s.id),
        });
    }
    let now = vault.now().as_millis();
    for a in vault.list_agents(app_id).await?.into_iter().filter(|a| a.status != "revoked") {
        targets.push(TargetChoice { value: format!("agent:{}", a.id), label: format!("agent {} · {}", a.name, a.id) });
        for d in vault.list_delegations(app_id, &a.id).await? {
            if d.revoked_at.is_none() && d.expires_at.is_none_or(|e| e.as_millis() > now) {
                targets.push(TargetChoice {
                    value: format!("delegation:{}", d.id),
                    label: format!("delegation of {} to agent {} · {}", d.grant_id, a.name, d.id),
                });
            }
        }
    }
    Ok(targets)
}

/// `GET /portal/apps/{app_id}/policies`.
pub(crate) async fn policies(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "policies").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let policies = match vault.list_policies(&app.id).await {
        Ok(policies) => policies,
        Err(error) => return refused(error),
    };
    let policies = policies
        .into_iter()
        .map(|p| PolicyRow {
            id: p.id,
            target_type: p.target_type,
            target_id: p.target_id.unwrap_or_default(),
            rules: serde_json::to_string_pretty(&p.rules).unwrap_or_default(),
            created_at: p.created_at.to_rfc3339(),
        })
        .collect();
    let targets = if nav.may_change {
        match policy_targets(&vault, &app.id).await {
            Ok(targets) => targets,
            Err(error) => return refused(error),
        }
    } else {
        Vec::new()
    };
    page(StatusCode::OK, PoliciesPage { nav, policies, targets }.render())
}

/// `POST /portal/apps/{app_id}/policies`: `target` is `app` or `type:id`; `rules` a JSON object
/// (the API's `rules`).
pub(crate) async fn create_policy(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = editor_or_refusal!(vault, headers, form);
    let (target_type, target_id) = match fields.get("target").split_once(':') {
        Some((kind, id)) => (kind.to_owned(), Some(id.to_owned())),
        None => (fields.get("target").to_owned(), None),
    };
    let rules: PolicyRules = match serde_json::from_str(fields.get("rules")) {
        Ok(rules) => rules,
        Err(error) => {
            return refused(ServiceError::invalid(
                "invalid_rules",
                format!("the rules are not a valid JSON object of rules: {error}"),
            ));
        }
    };
    let input = PolicyInput { target_type, target_id, rules };
    match vault.create_policy(&app_id, input, &operator_context(&session, context)).await {
        Ok(_) => see_other(&format!("/portal/apps/{app_id}/policies?done=created")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/policies/{policy_id}/delete`.
pub(crate) async fn delete_policy(
    State(vault): State<Arc<Vault>>,
    Path((app_id, policy_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    match vault.delete_policy(&app_id, &policy_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/policies?done=deleted")),
        Err(error) => refused(error),
    }
}

// ---------------------------------------------------------------------------------------------
// The key ring (vault-wide)

struct DataKeyRow {
    id: u32,
    state: &'static str,
    created_at: String,
    retired_at: String,
    sealed_values: u64,
}

#[derive(Template)]
#[template(path = "portal/manage_keys.html")]
struct KeyRingPage {
    email: String,
    role: String,
    csrf: String,
    keys: Vec<DataKeyRow>,
    /// Only owners rotate the data key.
    may_rotate: bool,
    notice: Option<String>,
}

/// `GET /portal/keys`: the data keys, as `GET /admin/v1/keys` and `tokenvault keys list` show
/// them.
pub(crate) async fn key_ring(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = session_or_sign_in!(vault, headers);
    let keys = match vault.key_status().await {
        Ok(keys) => keys,
        Err(error) => return refused(error),
    };
    let keys = keys
        .into_iter()
        .map(|k| DataKeyRow {
            id: k.id,
            state: k.state,
            created_at: k.created_at.to_rfc3339(),
            retired_at: when(k.retired_at),
            sealed_values: k.sealed_values,
        })
        .collect();
    let done =
        query.as_deref().and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == "done").map(|(_, v)| v));
    let notice = (done.as_deref() == Some("rotated")).then(|| "Rotated: a new data key seals everything.".to_owned());
    let operator = &session.operator;
    page(
        StatusCode::OK,
        KeyRingPage {
            email: operator.email.clone(),
            role: operator.role.clone(),
            csrf: session.csrf_token.clone(),
            keys,
            may_rotate: operator.role == "owner",
            notice,
        }
        .render(),
    )
}

/// `POST /portal/keys/rotate` (owners only): what `tokenvault keys rotate` does, online
/// (`Vault::rotate_keys`). It runs to the end even if the browser leaves; a rotation that
/// stopped anyway is resumed by running it again.
pub(crate) async fn rotate_data_key(State(vault): State<Arc<Vault>>, headers: HeaderMap, form: FormFields) -> Response {
    let (session, _) = editor_or_refusal!(vault, headers, form);
    if session.operator.role != "owner" {
        return crate::pages::refusal(
            "Your role cannot do this",
            ServiceError::Forbidden { code: "role_forbidden", message: "only an owner rotates the data key".into() },
        );
    }
    let rotating = Arc::clone(&vault);
    match tokio::spawn(async move { rotating.rotate_keys().await }).await {
        Ok(Ok(report)) => {
            tracing::info!(operator_id = %session.operator.id, new_key_id = report.new_key_id, resealed = report.resealed, "data key rotated from the portal");
            see_other("/portal/keys?done=rotated")
        }
        Ok(Err(error)) => refused(error),
        Err(_) => refused(ServiceError::Internal("the key rotation stopped; run it again to resume".into())),
    }
}
