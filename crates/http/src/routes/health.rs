use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokenvault_service::Vault;

use crate::ApiError;

/// Liveness: the process is up and answering.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and every migration is applied.
pub(crate) async fn readyz(State(vault): State<Arc<Vault>>) -> Result<Json<Value>, ApiError> {
    if vault.is_ready().await {
        Ok(Json(json!({ "status": "ready" })))
    } else {
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the database is unreachable or not migrated"))
    }
}
