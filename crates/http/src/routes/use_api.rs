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

/// The whole (filtered) audit log as JSON lines. It is not paginated, so `limit` and `after`
/// are refused rather than ignored.
pub(crate) async fn export_audit(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Response, ApiError> {
    if query.limit.is_some() || query.after.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "the export returns every matching event: it takes no `limit` or `after`",
        ));
    }
    let mut lines = String::new();
    let mut page = AuditQuery { limit: Some(PageSize::AUDIT.max), ..query };
    loop {
        let events = vault.query_audit(&caller.app_id, &page).await?;
        for event in &events {
            lines.push_str(
                &serde_json::to_string(event)
                    .map_err(|e| ApiError::from(tokenvault_service::ServiceError::Internal(e.to_string())))?,
            );
            lines.push('\n');
        }
        match events.last() {
            Some(last) if events.len() == PageSize::AUDIT.max as usize => page.after = Some(last.id.clone()),
            _ => break,
        }
    }
    let mut response = Response::new(Body::from(lines));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}
