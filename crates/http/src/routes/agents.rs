//! Agents, their keys and the delegations of grants to them, under `/v1` (app API key).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tokenvault_service::{AgentInput, AgentUpdate, AgentView, ApiKeyInput, DelegationInput, DelegationView, Vault};

use super::Page;
use crate::ApiError;
use crate::auth::AppCaller;
use crate::json::JsonBody;

pub(crate) async fn create_agent(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    JsonBody(input): JsonBody<AgentInput>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    Ok((StatusCode::CREATED, Json(vault.create_agent(&caller.app_id, input, &caller.context).await?)))
}

pub(crate) async fn list_agents(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
) -> Result<Json<Page<AgentView>>, ApiError> {
    Ok(Json(Page { data: vault.list_agents(&caller.app_id).await?, next_cursor: None }))
}

pub(crate) async fn get_agent(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(vault.get_agent(&caller.app_id, &agent_id).await?))
}

pub(crate) async fn update_agent(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
    JsonBody(update): JsonBody<AgentUpdate>,
) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(vault.update_agent(&caller.app_id, &agent_id, update, &caller.context).await?))
}

pub(crate) async fn revoke_agent(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    vault.revoke_agent(&caller.app_id, &agent_id, &caller.context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn mint_agent_key(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
    JsonBody(input): JsonBody<ApiKeyInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let minted = vault.mint_agent_key(&caller.app_id, &agent_id, input, Some(&caller.key), &caller.context).await?;
    super::minted_key(minted)
}

pub(crate) async fn create_delegation(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
    JsonBody(input): JsonBody<DelegationInput>,
) -> Result<(StatusCode, Json<DelegationView>), ApiError> {
    let created = vault.create_delegation(&caller.app_id, &agent_id, input, &caller.context).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn list_delegations(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(agent_id): Path<String>,
) -> Result<Json<Page<DelegationView>>, ApiError> {
    Ok(Json(Page { data: vault.list_delegations(&caller.app_id, &agent_id).await?, next_cursor: None }))
}

pub(crate) async fn get_delegation(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<Json<DelegationView>, ApiError> {
    Ok(Json(vault.get_delegation(&caller.app_id, &id).await?))
}

pub(crate) async fn revoke_delegation(
    caller: AppCaller,
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    vault.revoke_delegation(&caller.app_id, &id, &caller.context).await?;
    Ok(StatusCode::NO_CONTENT)
}
