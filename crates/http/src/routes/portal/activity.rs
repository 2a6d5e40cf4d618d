//! The portal's activity pages of one app: grants (filter, detail, disconnect, a connect link)
//! and the audit log (filters, pages, CSV and JSON-lines export). Each page calls the service
//! layer as the API does (its filters are the API's, checked there); viewers see the pages
//! without their forms.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use secrecy::ExposeSecret;
use tokenvault_service::{
    AuditEventView, AuditQuery, CallContext, ConnectSessionInput, GRANT_STATUSES, GrantListQuery, GrantView,
    ServiceError, Timestamp, Vault,
};

use super::{AppNav, app_nav, editor, operator_context, page, refused, see_other, signed_in};

/// Rows per page of the grants and audit pages.
const PAGE: u32 = 50;
/// Filters of the audit page (and of its export, which also takes `format` but no `after`).
const AUDIT_FILTERS: [&str; 8] = ["action", "outcome", "grant_id", "end_user_id", "provider", "agent_id", "from", "to"];
/// Suggestions for the audit page's action filter (any action may be typed).
const KNOWN_ACTIONS: [&str; 14] = [
    "proxy.request",
    "token.retrieved",
    "policy.decision",
    "grant.connected",
    "grant.refreshed",
    "grant.needs_reauth",
    "grant.revoked",
    "approval.requested",
    "api_key.created",
    "api_key.revoked",
    "provider_config.created",
    "provider_config.deleted",
    "app.updated",
    "delegation.created",
];

fn when(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())
}

/// A page's query as (name, value) pairs, blank values dropped (a GET form sends every field).
/// A name outside `allowed` is refused, as the API refuses an unknown parameter.
fn query_pairs(query: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, ServiceError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !allowed.contains(&name.as_ref()) {
            return Err(ServiceError::invalid(
                "invalid_query",
                format!("this page takes no `{}` parameter", name.chars().take(40).collect::<String>()),
            ));
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(ServiceError::invalid("invalid_query", format!("`{name}` is given twice")));
        }
        let value = value.trim();
        if !value.is_empty() {
            pairs.push((name.into_owned(), value.to_owned()));
        }
    }
    Ok(pairs)
}

fn pair(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// `path?name=value&...` (the pairs URL-encoded), or just `path`.
fn link(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    format!("{path}?{}", query.finish())
}

/// A select's option.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct GrantRow {
    id: String,
    provider: String,
    end_user_id: String,
    account: String,
    status: String,
    expires_at: String,
    connected_at: String,
}

#[derive(Template)]
#[template(path = "portal/grants.html")]
struct GrantsPage {
    nav: AppNav,
    grants: Vec<GrantRow>,
    /// The provider filter (by provider name, as grants are filtered).
    providers: Vec<Choice>,
    statuses: Vec<Choice>,
    end_user_id: String,
    filtered: bool,
    next: Option<String>,
    /// The connect-link form's provider configurations (by key).
    configs: Vec<Choice>,
    has_return_origin: bool,
}

/// `GET /portal/apps/{app_id}/grants`.
pub(crate) async fn grants(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let (app, nav) = match app_nav(&vault, &session, &app_id, "grants").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    let pairs = match query_pairs(query.as_deref(), &["provider", "status", "end_user_id", "after"]) {
        Ok(pairs) => pairs,
        Err(error) => return refused(error),
    };
    let filter = GrantListQuery {
        provider: pair(&pairs, "provider"),
        status: pair(&pairs, "status"),
        end_user_id: pair(&pairs, "end_user_id"),
        after: pair(&pairs, "after"),
        limit: Some(PAGE),
    };
    let grants = match vault.list_grants(&app.id, &filter, &CallContext::default()).await {
        Ok(grants) => grants,
        Err(error) => return refused(error),
    };
    let configs = match vault.list_provider_configs(&app.id).await {
        Ok(configs) => configs,
        Err(error) => return refused(error),
    };
    let next = match grants.last() {
        Some(last) if grants.len() == PAGE as usize => {
            let mut next: Vec<(String, String)> = pairs.iter().filter(|(n, _)| n != "after").cloned().collect();
            next.push(("after".into(), last.id.clone()));
            Some(link(&format!("/portal/apps/{}/grants", app.id), &next))
        }
        _ => None,
    };
    let mut provider_names: Vec<String> = configs.iter().map(|c| c.provider.clone()).collect();
    provider_names.extend(filter.provider.clone());
    provider_names.sort();
    provider_names.dedup();
    let page_data = GrantsPage {
        providers: provider_names
            .into_iter()
            .map(|p| Choice { selected: filter.provider.as_deref() == Some(p.as_str()), label: p.clone(), value: p })
            .collect(),
        statuses: GRANT_STATUSES
            .iter()
            .map(|s| Choice {
                value: (*s).to_owned(),
                label: s.replace('_', " "),
                selected: filter.status.as_deref() == Some(*s),
            })
            .collect(),
        end_user_id: filter.end_user_id.clone().unwrap_or_default(),
        filtered: filter.provider.is_some() || filter.status.is_some() || filter.end_user_id.is_some(),
        next,
        configs: configs
            .iter()
            .map(|c| Choice {
                value: c.key.clone(),
                label: format!("{} ({}, {})", c.display_name, c.key, c.environment),
                selected: false,
            })
            .collect(),
        has_return_origin: !app.return_origins.is_empty(),
        grants: grants.into_iter().map(grant_row).collect(),
        nav,
    };
    page(StatusCode::OK, page_data.render())
}

fn grant_row(g: GrantView) -> GrantRow {
    let account = match (&g.account.email, &g.account.name) {
        (Some(email), Some(name)) => format!("{name} <{email}>"),
        (Some(email), None) => email.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => g.account.id.clone(),
    };
    GrantRow {
        account,
        expires_at: when(g.expires_at),
        connected_at: g.connected_at.to_rfc3339(),
        id: g.id,
        provider: g.provider,
        end_user_id: g.end_user_id,
        status: g.status,
    }
}

struct EventRow {
    at: String,
    action: String,
    outcome: String,
    provider: String,
    grant_id: Option<String>,
    end_user_id: String,
    actor: String,
    agent_id: String,
    call: String,
    upstream_status: String,
    detail: String,
}

fn event_row(e: AuditEventView) -> EventRow {
    let actor = e
        .actor
        .as_ref()
        .map(|a| {
            let kind = a.kind.as_deref().unwrap_or("?");
            match &a.id {
                Some(id) => format!("{kind} {id}"),
                None => kind.to_owned(),
            }
        })
        .unwrap_or_default();
    let call = match (&e.method, &e.path) {
        (Some(method), Some(path)) => format!("{method} {path}"),
        (Some(method), None) => method.clone(),
        (None, Some(path)) => path.clone(),
        (None, None) => String::new(),
    };
    EventRow {
        at: e.at.to_rfc3339(),
        action: e.action,
        outcome: e.outcome,
        provider: e.provider.unwrap_or_default(),
        grant_id: e.grant_id,
        end_user_id: e.end_user_id.unwrap_or_default(),
        actor,
        agent_id: e.agent_id.unwrap_or_default(),
        call,
        upstream_status: e.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
        detail: e.detail.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "portal/grant.html")]
struct GrantPage {
    nav: AppNav,
    grant: GrantRow,
    account_id: String,
    account_name: String,
    account_email: String,
    environment: String,
    scopes: Vec<String>,
    status_reason: String,
    refreshable: bool,
    refreshed_at: String,
    next_refresh_at: String,
    revoked_at: String,
    last_error: String,
    last_error_detail: String,
    history: Vec<EventRow>,
    /// The rest of the grant's events (when this page shows only the first ones).
    more_history: Option<String>,
    all_history: String,
    may_disconnect: bool,
}

/// `GET /portal/apps/{app_id}/grants/{grant_id}`.
pub(crate) async fn grant(
    State(vault): State<Arc<Vault>>,
    Path((app_id, grant_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let (app, nav) = match app_nav(&vault, &session, &app_id, "grants").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    // A grant of another app is not found here.
    let grant = match vault.get_grant(&app.id, &grant_id, &CallContext::default()).await {
        Ok(grant) => grant,
        Err(error) => return refused(error),
    };
    let query = AuditQuery { grant_id: Some(grant.id.clone()), limit: Some(PAGE), ..Default::default() };
    let history = match vault.query_audit(&app.id, &query).await {
        Ok(events) => events,
        Err(error) => return refused(error),
    };
    let audit = format!("/portal/apps/{}/audit", app.id);
    let by_grant = vec![("grant_id".to_owned(), grant.id.clone())];
    let more_history = match history.last() {
        Some(last) if history.len() == PAGE as usize => {
            let mut next = by_grant.clone();
            next.push(("after".into(), last.id.clone()));
            Some(link(&audit, &next))
        }
        _ => None,
    };
    let page_data = GrantPage {
        may_disconnect: nav.may_change && grant.status != "revoked",
        account_id: grant.account.id.clone(),
        account_name: grant.account.name.clone().unwrap_or_default(),
        account_email: grant.account.email.clone().unwrap_or_default(),
        environment: grant.environment.clone(),
        scopes: grant.scopes.clone(),
        status_reason: grant.status_reason.clone().unwrap_or_default(),
        refreshable: grant.refreshable,
        refreshed_at: when(grant.refreshed_at),
        next_refresh_at: when(grant.next_refresh_at),
        revoked_at: when(grant.revoked_at),
        last_error: grant.last_error.clone().unwrap_or_default(),
        last_error_detail: grant.last_error_detail.clone().unwrap_or_default(),
        history: history.into_iter().map(event_row).collect(),
        more_history,
        all_history: link(&audit, &by_grant),
        grant: grant_row(grant),
        nav,
    };
    page(StatusCode::OK, page_data.render())
}

/// `POST /portal/apps/{app_id}/grants/{grant_id}/disconnect`.
pub(crate) async fn disconnect(
    State(vault): State<Arc<Vault>>,
    Path((app_id, grant_id)): Path<(String, String)>,
    headers: HeaderMap,
    crate::context::Context(context): crate::context::Context,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let (session, _) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let app = match vault.get_app(&app_id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    match vault.disconnect_grant(&app.id, &grant_id, &operator_context(&session, context)).await {
        Ok(grant) => see_other(&format!("/portal/apps/{}/grants/{}", app.id, grant.id)),
        Err(error) => refused(error),
    }
}

#[derive(Template)]
#[template(path = "portal/connect_link.html")]
struct ConnectLinkPage {
    nav: AppNav,
    connect_url: String,
    end_user_id: String,
    providers: Vec<String>,
    return_url: String,
    expires_at: String,
}

/// `POST /portal/apps/{app_id}/connect-links`: a connect session for an end user, returning to
/// the app's first return origin; its link is shown once.
pub(crate) async fn connect_link(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    crate::context::Context(context): crate::context::Context,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let (session, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let (app, nav) = match app_nav(&vault, &session, &app_id, "grants").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    let Some(origin) = app.return_origins.first() else {
        return refused(ServiceError::invalid(
            "no_return_origin",
            "a connect link returns the end user to one of the app's return origins, and it has none: add one in Settings",
        ));
    };
    let input = ConnectSessionInput {
        end_user_id: fields.get("end_user_id").to_owned(),
        providers: fields.opt("provider").map(|p| vec![p]),
        return_url: format!("{}/", origin.trim_end_matches('/')),
        ttl_seconds: None,
        delegate_to_agent_id: None,
    };
    let created = match vault.create_connect_session(&app.id, input, &operator_context(&session, context)).await {
        Ok(created) => created,
        Err(error) => return refused(error),
    };
    let session_view = created.session;
    page(
        StatusCode::CREATED,
        ConnectLinkPage {
            nav,
            connect_url: created.connect_url.expose_secret().to_owned(),
            end_user_id: session_view.end_user_id,
            providers: session_view.providers,
            return_url: session_view.return_url,
            expires_at: session_view.expires_at.to_rfc3339(),
        }
        .render(),
    )
}

/// An audit page's or export's filters as the service reads them.
fn audit_query(pairs: &[(String, String)]) -> AuditQuery {
    AuditQuery {
        action: pair(pairs, "action"),
        outcome: pair(pairs, "outcome"),
        grant_id: pair(pairs, "grant_id"),
        end_user_id: pair(pairs, "end_user_id"),
        provider: pair(pairs, "provider"),
        agent_id: pair(pairs, "agent_id"),
        from: pair(pairs, "from"),
        to: pair(pairs, "to"),
        after: pair(pairs, "after"),
        format: pair(pairs, "format"),
        ..Default::default()
    }
}

/// A filter field of the audit page.
struct FilterField {
    name: &'static str,
    label: &'static str,
    value: String,
    hint: &'static str,
    list: &'static str,
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
struct AuditPage {
    nav: AppNav,
    events: Vec<EventRow>,
    filters: Vec<FilterField>,
    actions: [&'static str; 14],
    filtered: bool,
    first_page: Option<String>,
    next: Option<String>,
    export_csv: String,
    export_jsonl: String,
}

/// `GET /portal/apps/{app_id}/audit`.
pub(crate) async fn audit(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let (app, nav) = match app_nav(&vault, &session, &app_id, "audit").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    let mut allowed = AUDIT_FILTERS.to_vec();
    allowed.push("after");
    let pairs = match query_pairs(query.as_deref(), &allowed) {
        Ok(pairs) => pairs,
        Err(error) => return refused(error),
    };
    let query = AuditQuery { limit: Some(PAGE), ..audit_query(&pairs) };
    let events = match vault.query_audit(&app.id, &query).await {
        Ok(events) => events,
        Err(error) => return refused(error),
    };
    let base = format!("/portal/apps/{}/audit", app.id);
    let filters: Vec<(String, String)> = pairs.iter().filter(|(n, _)| n != "after").cloned().collect();
    let next = match events.last() {
        Some(last) if events.len() == PAGE as usize => {
            let mut next = filters.clone();
            next.push(("after".into(), last.id.clone()));
            Some(link(&base, &next))
        }
        _ => None,
    };
    let export = |format: &str| {
        let mut with_format = filters.clone();
        with_format.push(("format".into(), format.to_owned()));
        link(&format!("{base}/export"), &with_format)
    };
    let field = |name: &'static str, label: &'static str, hint: &'static str, list: &'static str| FilterField {
        name,
        label,
        value: pair(&filters, name).unwrap_or_default(),
        hint,
        list,
    };
    let page_data = AuditPage {
        filters: vec![
            field("action", "Action", "", "audit-actions"),
            field("outcome", "Outcome", "", "audit-outcomes"),
            field("provider", "Provider", "", ""),
            field("grant_id", "Grant", "", ""),
            field("end_user_id", "End user", "", ""),
            field("agent_id", "Agent", "", ""),
            field("from", "From", "2026-01-31T09:00:00Z", ""),
            field("to", "To", "2026-01-31T18:00:00Z", ""),
        ],
        actions: KNOWN_ACTIONS,
        filtered: !filters.is_empty(),
        first_page: query.after.as_ref().map(|_| link(&base, &filters)),
        next,
        export_csv: export("csv"),
        export_jsonl: export("jsonl"),
        events: events.into_iter().map(event_row).collect(),
        nav,
    };
    page(StatusCode::OK, page_data.render())
}

/// `GET /portal/apps/{app_id}/audit/export`: every matching event, as a download.
pub(crate) async fn export(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The query's shape is checked before the session: a malformed request is a 400 whoever asks.
    let mut allowed = AUDIT_FILTERS.to_vec();
    allowed.push("format");
    let pairs = match query_pairs(query.as_deref(), &allowed) {
        Ok(pairs) => pairs,
        Err(error) => return refused(error),
    };
    if pairs.iter().any(|(name, value)| name == "format" && value != "jsonl" && value != "csv") {
        return refused(ServiceError::invalid("invalid_query", "`format` is `jsonl` or `csv`"));
    }
    if let Err(to_sign_in) = signed_in(&vault, &headers).await {
        return to_sign_in;
    }
    let app = match vault.get_app(&app_id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    match vault.export_audit(&app.id, &audit_query(&pairs)).await {
        Ok((format, body)) => {
            let mut response = crate::routes::use_api::export_response(format, body);
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => refused(error),
    }
}
