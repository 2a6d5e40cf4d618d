//! Operator API under `/admin/v1`: apps and their API keys, minted admin tokens, data-key status.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use tokenvault_service::{
    AdminTokenInfo, ApiKeyInfo, ApiKeyInput, App, AppUpdate, KeyStatus, PageSize, RotateInput, ServiceError, Vault,
};

use super::{Page, PageParams};
use crate::ApiError;
use crate::auth::AdminCaller;
use crate::json::JsonBody;
use crate::query::QueryParams;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApp {
    name: String,
}

fn default_key_name() -> String {
    "default".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAdminToken {
    #[serde(default = "default_key_name")]
    name: String,
}

pub(crate) async fn create_app(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(body): JsonBody<CreateApp>,
) -> Result<(StatusCode, Json<App>), ApiError> {
    Ok((StatusCode::CREATED, Json(vault.create_app(&body.name).await?)))
}

pub(crate) async fn list_apps(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(page): QueryParams<PageParams>,
) -> Result<Json<Page<App>>, ApiError> {
    let limit = PageSize::LIST.resolve(page.limit)?;
    let apps = vault.list_apps(page.after.as_deref(), limit).await?;
    Ok(Json(Page::new(apps, limit, |a| a.id.clone())))
}

pub(crate) async fn get_app(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(vault.get_app(&app_id).await?))
}

pub(crate) async fn update_app(
    _: AdminCaller,
    crate::context::Context(context): crate::context::Context,
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    JsonBody(update): JsonBody<AppUpdate>,
) -> Result<Json<App>, ApiError> {
    Ok(Json(vault.update_app(&app_id, update, &context).await?))
}

pub(crate) async fn delete_app(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    vault.delete_app(&app_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn mint_api_key(
    _: AdminCaller,
    crate::context::Context(context): crate::context::Context,
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
    JsonBody(input): JsonBody<ApiKeyInput>,
) -> Result<impl IntoResponse, ApiError> {
    super::minted_key(vault.mint_api_key(&app_id, input, None, &context).await?)
}

/// Rotates a key of the app: the new key is shown once; the old one works for the grace period.
pub(crate) async fn rotate_api_key(
    _: AdminCaller,
    crate::context::Context(context): crate::context::Context,
    State(vault): State<Arc<Vault>>,
    Path((app_id, key_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<RotateInput>,
) -> Result<impl IntoResponse, ApiError> {
    let app = vault.get_app(&app_id).await?;
    super::minted_key(vault.rotate_api_key(&app.id, &key_id, input, None, &context).await?)
}

pub(crate) async fn list_api_keys(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    Path(app_id): Path<String>,
) -> Result<Json<Page<ApiKeyInfo>>, ApiError> {
    let keys = vault.list_api_keys(&app_id).await?;
    Ok(Json(Page { data: keys, next_cursor: None }))
}

pub(crate) async fn revoke_api_key(
    _: AdminCaller,
    crate::context::Context(context): crate::context::Context,
    State(vault): State<Arc<Vault>>,
    Path((app_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = vault.get_app(&app_id).await?;
    vault.revoke_api_key(&app.id, &key_id, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn key_status(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<KeyStatus>>, ApiError> {
    Ok(Json(Page { data: vault.key_status().await?, next_cursor: None }))
}

pub(crate) async fn list_admin_tokens(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<AdminTokenInfo>>, ApiError> {
    Ok(Json(Page { data: vault.list_admin_tokens().await?, next_cursor: None }))
}

/// Mints an admin token; the response's `token` is the only time its secret is shown.
pub(crate) async fn mint_admin_token(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(body): JsonBody<CreateAdminToken>,
) -> Result<impl IntoResponse, ApiError> {
    let minted = vault.mint_admin_token(&body.name).await?;
    let mut shown =
        serde_json::to_value(&minted.info).map_err(|e| ApiError::from(ServiceError::Internal(e.to_string())))?;
    shown["token"] = json!(minted.secret.expose_secret());
    shown["note"] = json!("store this token now: it is shown only once");
    Ok((StatusCode::CREATED, Json(shown)))
}

/// Revokes a minted admin token; the next call with it gets 401.
pub(crate) async fn revoke_admin_token(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    vault.revoke_admin_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Operators who sign in to the portal (`/portal`).
pub(crate) async fn list_operators(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<tokenvault_service::OperatorView>>, ApiError> {
    Ok(Json(Page { data: vault.list_operators().await?, next_cursor: None }))
}

/// Creates an operator; the password is hashed (argon2id) and never shown again.
pub(crate) async fn create_operator(
    _: AdminCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<tokenvault_service::OperatorInput>,
) -> Result<(StatusCode, Json<tokenvault_service::OperatorView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vault.create_operator(input).await?)))
}
