//! App API under `/v1`, authenticated by an app API key. Every handler scopes to the caller's app.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use tokenvault_service::{
    AccessToken, ApiKeyInfo, ApiKeyInput, App, AppUpdate, ClaimInstallInput, ClaimedInstall, ConnectSessionInput,
    ConnectSessionView, GrantListQuery, GrantView, PageSize, ProviderConfigInput, ProviderConfigView, RotateInput,
    ServiceError, Vault,
};

use super::Page;
use crate::ApiError;
use crate::auth::AppCaller;
use crate::json::JsonBody;
use crate::query::QueryParams;

pub(crate) async fn current_app(caller: AppCaller, State(vault): State<Arc<Vault>>) -> Result<Json<App>, ApiError> {
    Ok(Json(vault.get_app(&caller.app_id).await?))
}

pub(crate) async fn list_api_keys(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<ApiKeyInfo>>, ApiError> {
    Ok(Json(Page { data: vault.list_api_keys(&caller.app_id).await?, next_cursor: None }))
}

/// Mints a key of the caller's app, with no more than the calling key holds.
pub(crate) async fn mint_api_key(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ApiKeyInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    super::minted_key(vault.mint_api_key(&caller.app_id, input, Some(&caller.key), &caller.context).await?)
}

/// Derives a short-lived child of the calling key.
pub(crate) async fn derive_api_key(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ApiKeyInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    super::minted_key(vault.derive_api_key(&caller.key, input, &caller.context).await?)
}

pub(crate) async fn rotate_api_key(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(key_id): Path<String>,
    JsonBody(input): JsonBody<RotateInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    super::minted_key(vault.rotate_api_key(&caller.app_id, &key_id, input, Some(&caller.key), &caller.context).await?)
}

pub(crate) async fn revoke_api_key(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let context = &caller.context;
    vault.revoke_api_key(&caller.app_id, &key_id, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn update_app(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(update): JsonBody<AppUpdate>,
) -> Result<Json<App>, ApiError> {
    let context = &caller.context;
    Ok(Json(vault.update_app(&caller.app_id, update, context).await?))
}

pub(crate) async fn create_provider_config(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ProviderConfigInput>,
) -> Result<(StatusCode, Json<ProviderConfigView>), ApiError> {
    let context = &caller.context;
    Ok((StatusCode::CREATED, Json(vault.create_provider_config(&caller.app_id, input, context).await?)))
}

pub(crate) async fn list_provider_configs(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<ProviderConfigView>>, ApiError> {
    Ok(Json(Page { data: vault.list_provider_configs(&caller.app_id).await?, next_cursor: None }))
}

pub(crate) async fn get_provider_config(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<ProviderConfigView>, ApiError> {
    Ok(Json(vault.get_provider_config(&caller.app_id, &id).await?))
}

pub(crate) async fn update_provider_config(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ProviderConfigInput>,
) -> Result<Json<ProviderConfigView>, ApiError> {
    let context = &caller.context;
    Ok(Json(vault.update_provider_config(&caller.app_id, &id, input, context).await?))
}

pub(crate) async fn delete_provider_config(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let context = &caller.context;
    vault.delete_provider_config(&caller.app_id, &id, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn create_connect_session(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ConnectSessionInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let created = vault.create_connect_session(&caller.app_id, input, &caller.context).await?;
    let mut body =
        serde_json::to_value(&created.session).map_err(|e| ApiError::from(ServiceError::Internal(e.to_string())))?;
    body["token"] = created.token.expose_secret().into();
    body["connect_url"] = created.connect_url.expose_secret().into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub(crate) async fn get_connect_session(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<ConnectSessionView>, ApiError> {
    Ok(Json(vault.get_connect_session(&caller.app_id, &id, &caller.context).await?))
}

pub(crate) async fn list_grants(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(query): QueryParams<GrantListQuery>,
) -> Result<Json<Page<GrantView>>, ApiError> {
    let limit = PageSize::LIST.resolve(query.limit)?;
    let grants =
        vault.list_grants(&caller.app_id, &GrantListQuery { limit: Some(limit), ..query }, &caller.context).await?;
    Ok(Json(Page::new(grants, limit, |g| g.id.clone())))
}

pub(crate) async fn get_grant(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    Ok(Json(vault.get_grant(&caller.app_id, &id, &caller.context).await?))
}

pub(crate) async fn claim_install(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ClaimInstallInput>,
) -> Result<(StatusCode, Json<ClaimedInstall>), ApiError> {
    Ok((StatusCode::CREATED, Json(vault.claim_install(&caller.app_id, input).await?)))
}

/// The provider catalog: public facts, no credentials needed.
pub(crate) async fn list_providers(State(vault): State<Arc<Vault>>) -> Json<serde_json::Value> {
    let providers: Vec<serde_json::Value> = vault
        .catalog()
        .all()
        .map(|p| {
            serde_json::json!({
                "id": p.id,
                "display_name": p.display_name,
                "category": p.category,
                "docs_url": p.docs_url,
                "environments": p.environments.keys().collect::<Vec<_>>(),
                "default_environment": p.default_environment,
                "authorize_method": p.authorize.method,
                "pkce": p.authorize.pkce,
                "client_auth": p.token.client_auth,
                "refresh": p.token.refresh,
                "scopes": p.scopes,
                "scopes_configurable": p.scope_policy.configurable,
                "scopes_note": p.scope_policy.explanation,
                "install_uri": p.supports_install_uri,
            })
        })
        .collect();
    Json(serde_json::json!({ "data": providers }))
}

/// A valid access token for the grant, refreshed first if it is about to expire.
pub(crate) async fn grant_token(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<AccessToken>, ApiError> {
    let context = &caller.context;
    Ok(Json(vault.get_token(&caller.app_id, &id, context).await?))
}

/// Disconnect: revoke at the provider, then erase the tokens (the grant stays as a tombstone).
pub(crate) async fn disconnect_grant(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    let context = &caller.context;
    Ok(Json(vault.disconnect_grant(&caller.app_id, &id, context).await?))
}

/// Asks the provider whether the grant's token still works (401 → `needs_reauth`).
pub(crate) async fn verify_grant(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, ApiError> {
    Ok(Json(vault.verify_grant(&caller.app_id, &id).await?))
}
