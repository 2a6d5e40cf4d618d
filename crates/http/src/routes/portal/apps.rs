//! The portal's pages for setting an app up: create it, its settings and branding, its provider
//! configurations (added from the catalog, with the redirect and install URIs to register shown
//! and copyable, scopes with their descriptions, the client secret write-only), and its keys
//! (minted and rotated keys are shown once, with a copy button). Each page calls the service
//! layer exactly as the API does; viewers see the pages without their forms.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use tokenvault_service::{
    ApiKeyInput, AppUpdate, BrandingUpdate, MintedApiKey, ProviderConfigInput, RotateInput, ServiceError, Vault,
};

use super::{AppNav, Fields, app_nav, editor, operator_context, page, refused, see_other, signed_in};
use crate::context::Context;

type FormFields = Result<Form<Vec<(String, String)>>, FormRejection>;

/// `POST /portal/apps`.
pub(crate) async fn create(State(vault): State<Arc<Vault>>, headers: HeaderMap, form: FormFields) -> Response {
    let (_, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    match vault.create_app(fields.get("name")).await {
        Ok(app) => see_other(&format!("/portal/apps/{}?done=created", app.id)),
        Err(error) => refused(error),
    }
}

#[derive(Template)]
#[template(path = "portal/app_settings.html")]
struct SettingsPage {
    nav: AppNav,
    name: String,
    return_origins: String,
    install_return_url: String,
    display_name: String,
    logo_url: String,
    accent_color: String,
    support_url: String,
}

fn notice(query: Option<&str>) -> Option<String> {
    let done = query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == "done").map(|(_, v)| v));
    match done.as_deref() {
        Some("created") => Some("App created. Next: add its return origins, then a provider.".into()),
        Some("saved") => Some("Saved.".into()),
        Some("added") => Some("Provider added. Register the redirect URI shown below at the provider.".into()),
        Some("deleted") => Some("Deleted.".into()),
        Some("revoked") => Some("Key revoked.".into()),
        _ => None,
    }
}

/// `GET /portal/apps/{app_id}`.
pub(crate) async fn settings(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "settings").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let branding = app.branding;
    page(
        StatusCode::OK,
        SettingsPage {
            nav,
            name: app.name,
            return_origins: app.return_origins.join("\n"),
            install_return_url: app.install_return_url.unwrap_or_default(),
            display_name: branding.display_name.unwrap_or_default(),
            logo_url: branding.logo_url.unwrap_or_default(),
            accent_color: branding.accent_color.unwrap_or_else(|| "#1f5fbf".into()),
            support_url: branding.support_url.unwrap_or_default(),
        }
        .render(),
    )
}

/// `POST /portal/apps/{app_id}`: every field of the settings form (blank clears an optional one).
pub(crate) async fn update(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let origins =
        fields.get("return_origins").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let update = AppUpdate {
        name: Some(fields.get("name").to_owned()),
        return_origins: Some(origins),
        install_return_url: Some(fields.opt("install_return_url")),
        branding: Some(BrandingUpdate {
            display_name: Some(fields.opt("display_name")),
            logo_url: Some(fields.opt("logo_url")),
            // The colour picker always sends a colour; the default one means "none chosen".
            accent_color: Some(fields.opt("accent_color").filter(|c| !c.eq_ignore_ascii_case("#1f5fbf"))),
            support_url: Some(fields.opt("support_url")),
        }),
    };
    match vault.update_app(&app_id, update, &operator_context(&session, context)).await {
        Ok(app) => see_other(&format!("/portal/apps/{}?done=saved", app.id)),
        Err(error) => refused(error),
    }
}

struct ScopeChoice {
    name: String,
    description: String,
    checked: bool,
}

struct CatalogEntry {
    id: String,
    display_name: String,
    environments: Vec<String>,
    scopes: Vec<ScopeChoice>,
    scopes_configurable: bool,
    free_form: bool,
    scope_note: Option<String>,
    needs_issuer: bool,
    has_webhook_secret: bool,
}

struct ConfigRow {
    id: String,
    key: String,
    display_name: String,
    environment: String,
    client_id: String,
    scopes: String,
    redirect_uri: String,
    install_uri: Option<String>,
    webhook_url: Option<String>,
    scopes_note: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/app_providers.html")]
struct ProvidersPage {
    nav: AppNav,
    configs: Vec<ConfigRow>,
    catalog: Vec<CatalogEntry>,
}

/// `GET /portal/apps/{app_id}/providers`.
pub(crate) async fn providers(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match signed_in(&vault, &headers).await {
        Ok(session) => session,
        Err(to_sign_in) => return to_sign_in,
    };
    let (app, mut nav) = match app_nav(&vault, &session, &app_id, "providers").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(query.as_deref());
    let configs = match vault.list_provider_configs(&app.id).await {
        Ok(configs) => configs,
        Err(error) => return refused(error),
    };
    let configs = configs
        .into_iter()
        .map(|c| ConfigRow {
            id: c.id,
            key: c.key,
            display_name: c.display_name,
            environment: c.environment,
            client_id: c.client_id,
            scopes: c.scopes.join(" "),
            redirect_uri: c.redirect_uri,
            install_uri: c.install_uri,
            webhook_url: c.webhook_url,
            scopes_note: c.scopes_note,
        })
        .collect();
    let mut catalog: Vec<CatalogEntry> = vault
        .catalog()
        .all()
        .map(|d| CatalogEntry {
            id: d.id.clone(),
            display_name: d.display_name.clone(),
            environments: if d.environments.len() > 1 { d.environments.keys().cloned().collect() } else { Vec::new() },
            scopes: d
                .scopes
                .iter()
                .map(|s| ScopeChoice { name: s.name.clone(), description: s.description.clone(), checked: s.default })
                .collect(),
            scopes_configurable: d.scope_policy.configurable,
            free_form: d.scope_policy.free_form,
            scope_note: d.scope_policy.explanation.clone(),
            needs_issuer: d.configured_endpoints,
            has_webhook_secret: d.inbound_webhooks.is_some() && d.id == "zoom",
        })
        .collect();
    catalog.sort_by(|a, b| (a.needs_issuer, &a.display_name).cmp(&(b.needs_issuer, &b.display_name)));
    page(StatusCode::OK, ProvidersPage { nav, configs, catalog }.render())
}

fn config_input(fields: &Fields) -> ProviderConfigInput {
    let mut scopes = fields.all("scopes");
    scopes.extend(fields.get("extra_scopes").split_whitespace().map(str::to_owned));
    ProviderConfigInput {
        provider: fields.get("provider").to_owned(),
        key: fields.opt("key"),
        environment: fields.opt("environment"),
        client_id: fields.get("client_id").to_owned(),
        client_secret: SecretString::from(fields.get("client_secret").to_owned()),
        scopes: (fields.get("scopes_given") == "1").then_some(scopes),
        issuer: fields.opt("issuer"),
        endpoints: None,
        api_base_url: None,
        client_auth: None,
        redirect_query: None,
        webhook_secret: fields.opt("webhook_secret").map(SecretString::from),
        provider_webhook_events: None,
    }
}

/// `POST /portal/apps/{app_id}/providers`.
pub(crate) async fn add_provider(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    if fields.get("client_secret").is_empty() {
        return refused(ServiceError::invalid("invalid_client_secret", "the client secret is required"));
    }
    match vault.create_provider_config(&app_id, config_input(&fields), &operator_context(&session, context)).await {
        Ok(config) => see_other(&format!("/portal/apps/{app_id}/providers?done=added#config-{}", config.key)),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/providers/{config_id}/delete`.
pub(crate) async fn delete_provider(
    State(vault): State<Arc<Vault>>,
    Path((app_id, config_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    match vault.delete_provider_config(&app_id, &config_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/providers?done=deleted")),
        Err(error) => refused(error),
    }
}

struct KeyRow {
    id: String,
    name: String,
    scopes: String,
    agent_id: Option<String>,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    state: &'static str,
}

struct NewKey {
    id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "portal/app_keys.html")]
struct KeysPage {
    nav: AppNav,
    keys: Vec<KeyRow>,
    minted: Option<NewKey>,
}

fn when(t: Option<tokenvault_service::Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())
}

async fn keys_page(
    vault: &Vault,
    session: &tokenvault_service::OperatorSession,
    app_id: &str,
    notice_query: Option<&str>,
    minted: Option<MintedApiKey>,
) -> Response {
    let (app, mut nav) = match app_nav(vault, session, app_id, "keys").await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    nav.notice = notice(notice_query);
    let keys = match vault.list_api_keys(&app.id).await {
        Ok(keys) => keys,
        Err(error) => return refused(error),
    };
    let now = vault.now();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow {
            state: if k.revoked_at.is_some() {
                "revoked"
            } else if k.expires_at.is_some_and(|e| e.as_millis() <= now.as_millis()) {
                "expired"
            } else if k.replaced_by.is_some() {
                "rotated (works until it expires)"
            } else {
                "active"
            },
            id: k.id,
            name: k.name,
            scopes: k.scopes.to_string(),
            agent_id: k.agent_id,
            created_at: k.created_at.to_rfc3339(),
            last_used_at: when(k.last_used_at),
            expires_at: when(k.expires_at),
        })
        .collect();
    let status = if minted.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    let minted = minted.map(|m| NewKey { id: m.info.id, secret: m.secret.expose_secret().to_owned() });
    page(status, KeysPage { nav, keys, minted }.render())
}

/// `GET /portal/apps/{app_id}/keys`.
pub(crate) async fn keys(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match signed_in(&vault, &headers).await {
        Ok(session) => keys_page(&vault, &session, &app_id, query.as_deref(), None).await,
        Err(to_sign_in) => to_sign_in,
    }
}

/// `POST /portal/apps/{app_id}/keys`: the new key is on the answer page, once.
pub(crate) async fn mint_key(
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let expires_in = match fields.opt("expires_in_days").map(|d| d.parse::<u64>()) {
        None => None,
        Some(Ok(days)) => Some(days.saturating_mul(86_400)),
        Some(Err(_)) => {
            return refused(ServiceError::invalid("invalid_expiry", "the expiry is a whole number of days"));
        }
    };
    let scopes: Vec<String> =
        fields.get("scopes").split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let input = ApiKeyInput {
        name: fields.opt("name"),
        scopes: Some(scopes),
        expires_at: None,
        expires_in,
        allowed_cidrs: None,
        rate_limit: None,
    };
    match vault.mint_api_key(&app_id, input, None, &operator_context(&session, context)).await {
        Ok(minted) => keys_page(&vault, &session, &app_id, None, Some(minted)).await,
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/keys/{key_id}/revoke`.
pub(crate) async fn revoke_key(
    State(vault): State<Arc<Vault>>,
    Path((app_id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, _) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    match vault.revoke_api_key(&app_id, &key_id, &operator_context(&session, context)).await {
        Ok(()) => see_other(&format!("/portal/apps/{app_id}/keys?done=revoked")),
        Err(error) => refused(error),
    }
}

/// `POST /portal/apps/{app_id}/keys/{key_id}/rotate`: the new key is shown once.
pub(crate) async fn rotate_key(
    State(vault): State<Arc<Vault>>,
    Path((app_id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    Context(context): Context,
    form: FormFields,
) -> Response {
    let (session, fields) = match editor(&vault, &headers, form).await {
        Ok(ok) => ok,
        Err(refusal) => return refusal,
    };
    let grace_seconds = match fields.opt("grace_seconds").map(|g| g.parse::<u64>()) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => return refused(ServiceError::invalid("invalid_grace", "the grace period is whole seconds")),
    };
    let input = RotateInput { grace_seconds };
    match vault.rotate_api_key(&app_id, &key_id, input, None, &operator_context(&session, context)).await {
        Ok(minted) => keys_page(&vault, &session, &app_id, None, Some(minted)).await,
        Err(error) => refused(error),
    }
}
