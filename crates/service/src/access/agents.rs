//! Agents: an app's AI agents (or services) registered as callers of their own. An agent gets
//! its own keys (agent keys), uses only the grants delegated to it, and is audited under its
//! verified id. Suspending an agent refuses its keys at once (on other instances within the
//! cache bound); revoking it revokes its keys for good.

use serde::{Deserialize, Serialize};
use tokenvault_store::{AgentRecord, StoreError};

use crate::admin::apps::validate_name;
use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

const MAX_DESCRIPTION: usize = 1024;
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// `POST /v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form JSON object (at most 16 KiB), e.g. the model or the owner.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `PATCH /v1/agents/{id}`: absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `active` or `suspended` (revoking is `DELETE`).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentView {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub description: Option<String>,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    pub metadata: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<AgentRecord> for AgentView {
    fn from(r: AgentRecord) -> Self {
        AgentView {
            metadata: serde_json::from_str(&r.metadata).unwrap_or_else(|_| serde_json::json!({})),
            id: r.id,
            app_id: r.app_id,
            name: r.name,
            description: r.description,
            status: r.status,
            created_at: Timestamp::from_millis(r.created_at),
            updated_at: Timestamp::from_millis(r.updated_at),
        }
    }
}

fn validate_description(text: Option<String>) -> Result<Option<String>, ServiceError> {
    match text {
        Some(text) if text.chars().count() > MAX_DESCRIPTION || text.chars().any(|c| c.is_control() && c != '\n') => {
            Err(ServiceError::invalid(
                "invalid_description",
                format!("`description` must be at most {MAX_DESCRIPTION} characters, without control characters"),
            ))
        }
        other => Ok(other),
    }
}

fn metadata_text(metadata: Option<serde_json::Map<String, serde_json::Value>>) -> Result<String, ServiceError> {
    let text = serde_json::to_string(&metadata.unwrap_or_default()).expect("a JSON object serializes");
    if text.len() > MAX_METADATA_BYTES {
        return Err(ServiceError::invalid("invalid_metadata", "`metadata` must be at most 16 KiB of JSON"));
    }
    Ok(text)
}

impl Vault {
    pub async fn create_agent(
        &self,
        app_id: &str,
        input: AgentInput,
        context: &CallContext,
    ) -> Result<AgentView, ServiceError> {
        let now = self.now().as_millis();
        let record = AgentRecord {
            id: IdKind::Agent.generate(),
            app_id: app_id.to_owned(),
            name: validate_name("name", &input.name)?,
            description: validate_description(input.description)?,
            status: "active".into(),
            metadata: metadata_text(input.metadata)?,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_agent(&record).await.map_err(ServiceError::from_store("app"))?;
        tracing::info!(app_id, agent_id = %record.id, "agent registered");
        self.audit(crate::audit::AuditEntry::config(app_id, "agent.created", &record.id, context));
        Ok(record.into())
    }

    pub async fn list_agents(&self, app_id: &str) -> Result<Vec<AgentView>, ServiceError> {
        Ok(self.store.list_agents(app_id).await?.into_iter().map(AgentView::from).collect())
    }

    pub async fn get_agent(&self, app_id: &str, agent_id: &str) -> Result<AgentView, ServiceError> {
        Ok(self.app_agent(app_id, agent_id).await?.into())
    }

    /// The agent `agent_id` of `app_id`; another app's agent is "not found".
    pub(crate) async fn app_agent(&self, app_id: &str, agent_id: &str) -> Result<AgentRecord, ServiceError> {
        let agent_id = IdKind::Agent.parse(agent_id)?;
        match self.store.find_agent(&agent_id).await {
            Ok(agent) if agent.app_id == app_id => Ok(agent),
            Ok(_) | Err(StoreError::NotFound) => Err(ServiceError::not_found("agent")),
            Err(other) => Err(other.into()),
        }
    }

    /// Renames, describes, suspends or reactivates an agent. A revoked agent cannot change.
    pub async fn update_agent(
        &self,
        app_id: &str,
        agent_id: &str,
        update: AgentUpdate,
        context: &CallContext,
    ) -> Result<AgentView, ServiceError> {
        let mut agent = self.app_agent(app_id, agent_id).await?;
        if let Some(name) = update.name {
            agent.name = validate_name("name", &name)?;
        }
        if update.description.is_some() {
            agent.description = validate_description(update.description)?;
        }
        if update.metadata.is_some() {
            agent.metadata = metadata_text(update.metadata)?;
        }
        let action = match update.status.as_deref() {
            None => "agent.updated",
            Some("active") => "agent.activated",
            Some("suspended") => "agent.suspended",
            Some(_) => {
                return Err(ServiceError::invalid(
                    "invalid_status",
                    "`status` is `active` or `suspended` (DELETE revokes an agent)",
                ));
            }
        };
        if let Some(status) = update.status {
            agent.status = status;
        }
        agent.updated_at = self.now().as_millis();
        self.store.update_agent(&agent).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict("agent_revoked", "the agent is revoked"),
            other => other.into(),
        })?;
        tracing::info!(app_id, agent_id = %agent.id, status = %agent.status, "agent changed");
        self.audit(crate::audit::AuditEntry::config(app_id, action, &agent.id, context));
        Ok(agent.into())
    }

    /// Revokes an agent for good: its status becomes `revoked` and every key it has stops.
    pub async fn revoke_agent(&self, app_id: &str, agent_id: &str, context: &CallContext) -> Result<(), ServiceError> {
        let mut agent = self.app_agent(app_id, agent_id).await?;
        if agent.status != "revoked" {
            agent.status = "revoked".into();
            agent.updated_at = self.now().as_millis();
            self.store.update_agent(&agent).await?;
        }
        self.store.revoke_agent_keys(&agent.id, self.now().as_millis()).await?;
        tracing::info!(app_id, agent_id = %agent.id, "agent revoked");
        self.audit(crate::audit::AuditEntry::config(app_id, "agent.revoked", &agent.id, context));
        Ok(())
    }
}
