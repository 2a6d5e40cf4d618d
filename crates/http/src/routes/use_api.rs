//! Policies, managed secrets and the audit log (app API key).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokenvault_service::{
    AuditEventView, AuditQuery, ManagedSecretInput, ManagedSecretView, PageSize, PolicyInput, PolicyView, Vault,
};

use super::Page;
use crate::ApiError;
use crate::auth::AppCaller;
use crate::json::JsonBody;
use crate::query::QueryParams;

pub(crate) async fn create_policy(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<PolicyInput>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let context = &caller.context;
    Ok((StatusCode::CREATED, Json(vault.create_policy(&caller.app_id, input, context).await?)))
}

pub(crate) async fn list_policies(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<PolicyView>>, ApiError> {
    Ok(Json(Page { data: vault.list_policies(&caller.app_id).await?, next_cursor: None }))
}

pub(crate) async fn delete_policy(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let context = &caller.context;
    vault.delete_policy(&caller.app_id, &id, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn create_managed_secret(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<ManagedSecretInput>,
) -> Result<(StatusCode, Json<ManagedSecretView>), ApiError> {
    let context = &caller.context;
    Ok((StatusCode::CREATED, Json(vault.create_managed_secret(&caller.app_id, input, context).await?)))
}

pub(crate) async fn list_managed_secrets(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<ManagedSecretView>>, ApiError> {
    Ok(Json(Page { data: vault.list_managed_secrets(&caller.app_id).await?, next_cursor: None }))
}

pub(crate) async fn get_managed_secret(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<ManagedSecretView>, ApiError> {
    Ok(Json(vault.get_managed_secret(&caller.app_id, &id).await?))
}

pub(crate) async fn replace_managed_secret(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ManagedSecretInput>,
) -> Result<Json<ManagedSecretView>, ApiError> {
    let context = &caller.context;
    Ok(Json(vault.replace_managed_secret(&caller.app_id, &id, input, context).await?))
}

pub(crate) async fn delete_managed_secret(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let context = &caller.context;
    vault.delete_managed_secret(&caller.app_id, &id, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn query_audit(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>, ApiError> {
    let limit = PageSize::AUDIT.resolve(query.limit)?;
    let events = vault.query_audit(&caller.app_id, &AuditQuery { limit: Some(limit), ..query }).await?;
    Ok(Json(Page::new(events, limit, |e| e.id.clone())))
}

/// The whole (filtered) audit log as JSON lines or CSV (`format`).
pub(crate) async fn export_audit(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    let (format, body) = vault.export_audit(&caller.app_id, &query).await?;
    Ok(export_response(format, body))
}

/// An export as a download (`audit.jsonl` / `audit.csv`).
pub(crate) fn export_response(format: tokenvault_service::AuditFormat, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let disposition = format!("attachment; filename=\"audit.{}\"", format.extension());
    if let Ok(disposition) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}
