//! Webhook endpoints: the app's own endpoint registrations and delivery log (API key), and the
//! provider-to-vault webhooks (authenticated by the provider's signature or token).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokenvault_service::{
    PageSize, RotateSecretInput, Vault, WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointView,
};

use super::Page;
use crate::ApiError;
use crate::auth::AppCaller;
use crate::json::{JsonBody, OptionalJsonBody};
use crate::query::QueryParams;

pub(crate) async fn create_endpoint(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<WebhookEndpointInput>,
) -> Result<(StatusCode, Json<WebhookEndpointView>), ApiError> {
    let context = &caller.context;
    Ok((StatusCode::CREATED, Json(vault.create_webhook_endpoint(&caller.app_id, input, context).await?)))
}

pub(crate) async fn list_endpoints(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<WebhookEndpointView>>, ApiError> {
    Ok(Json(Page { data: vault.list_webhook_endpoints(&caller.app_id).await?, next_cursor: None }))
}

pub(crate) async fn delete_endpoint(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let context = &caller.context;
    vault.delete_webhook_endpoint(&caller.app_id, &id, context).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhook-endpoints/{id}/rotate-secret`: the new secret, shown once.
pub(crate) async fn rotate_secret(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    OptionalJsonBody(input): OptionalJsonBody<RotateSecretInput>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    Ok(Json(vault.rotate_webhook_secret(&caller.app_id, &id, input, &caller.context).await?))
}

/// `POST /v1/webhook-deliveries/{id}/retry`.
pub(crate) async fn retry_delivery(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<WebhookDeliveryView>, ApiError> {
    Ok(Json(vault.retry_webhook_delivery(&caller.app_id, &id, &caller.context).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryQuery {
    endpoint_id: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn list_deliveries(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    QueryParams(query): QueryParams<DeliveryQuery>,
) -> Result<Json<Page<WebhookDeliveryView>>, ApiError> {
    let limit = PageSize::LIST.resolve(query.limit)?;
    let rows = vault
        .list_webhook_deliveries(&caller.app_id, query.endpoint_id.as_deref(), query.after.as_deref(), limit)
        .await?;
    Ok(Json(Page::new(rows, limit, |d| d.id.clone())))
}

pub(crate) async fn zoom(
    State(vault): State<Arc<Vault>>,
    Path(config_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Ok(Json(
        vault
            .handle_zoom_webhook(&config_id, header("x-zm-request-timestamp"), header("x-zm-signature"), &body)
            .await?,
    ))
}

pub(crate) async fn aircall(
    State(vault): State<Arc<Vault>>,
    Path(config_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    vault.handle_aircall_webhook(&config_id, &body).await?;
    Ok(Json(json!({ "status": "ok" })))
}
