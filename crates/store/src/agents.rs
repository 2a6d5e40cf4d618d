//! Agents (an app's AI agents or services, with keys of their own) and the delegations that let
//! an agent use one of the app's grants or managed secrets.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{ChangeKind, Millis, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub description: Option<String>,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    /// JSON object (owned by the service layer).
    pub metadata: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

const AGENT_COLUMNS: &str = "id, app_id, name, description, status, metadata, created_at, updated_at";

impl AgentRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            status: row.try_get("status")?,
            metadata: row.try_get("metadata")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A grant (or managed secret, same id space) delegated to an agent, optionally narrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub grant_id: String,
    /// Allowed methods; `None`: any.
    pub methods: Option<Vec<String>>,
    /// Allowed path patterns; `None`: any.
    pub paths: Option<Vec<String>>,
    pub proxy_only: bool,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

const DELEGATION_COLUMNS: &str =
    "id, app_id, agent_id, grant_id, methods, paths, proxy_only, expires_at, created_at, revoked_at";

impl DelegationRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let list = |name: &str| -> Result<Option<Vec<String>>, sqlx::Error> {
            row.try_get::<Option<String>, _>(name)?.as_deref().map(crate::json_list::decode).transpose()
        };
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            agent_id: row.try_get("agent_id")?,
            grant_id: row.try_get("grant_id")?,
            methods: list("methods")?,
            paths: list("paths")?,
            proxy_only: row.try_get::<i64, _>("proxy_only")? != 0,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

impl Store {
    pub async fn insert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.announcing(ChangeKind::Agent, &agent.id, async move {
            sqlx::query(
                "INSERT INTO agents (id, app_id, name, description, status, metadata, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&agent.id)
            .bind(&agent.app_id)
            .bind(&agent.name)
            .bind(&agent.description)
            .bind(&agent.status)
            .bind(&agent.metadata)
            .bind(agent.created_at)
            .bind(agent.updated_at)
            .execute(&self.writer)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                _ => StoreError::unique_as_conflict(e, "agent id already exists"),
            })?;
            Ok(())
        })
        .await
    }

    /// The agent `id` of any app (the caller checks the app).
    pub async fn find_agent(&self, id: &str) -> Result<AgentRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(AgentRecord::from_row(&row)?)
        })
        .await
    }

    pub async fn list_agents(&self, app_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        self.retrying(|| async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {AGENT_COLUMNS} FROM agents WHERE app_id = $1 ORDER BY id"
            )))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(AgentRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Replaces an agent's name, description, status and metadata. A revoked agent stays revoked.
    pub async fn update_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.announcing(ChangeKind::Agent, &agent.id, async move {
            let done = sqlx::query(
                "UPDATE agents SET name = $1, description = $2, status = $3, metadata = $4, updated_at = $5 \
                 WHERE id = $6 AND app_id = $7 AND status <> 'revoked'",
            )
            .bind(&agent.name)
            .bind(&agent.description)
            .bind(&agent.status)
            .bind(&agent.metadata)
            .bind(agent.updated_at)
            .bind(&agent.id)
            .bind(&agent.app_id)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("the agent is revoked"));
            }
            Ok(())
        })
        .await
    }

    pub async fn insert_delegation(&self, d: &DelegationRecord) -> Result<(), StoreError> {
        self.announcing(ChangeKind::Delegation, &d.agent_id, async move {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO delegations ({DELEGATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
            )))
            .bind(&d.id)
            .bind(&d.app_id)
            .bind(&d.agent_id)
            .bind(&d.grant_id)
            .bind(d.methods.as_deref().map(crate::json_list::encode))
            .bind(d.paths.as_deref().map(crate::json_list::encode))
            .bind(i64::from(d.proxy_only))
            .bind(d.expires_at)
            .bind(d.created_at)
            .execute(&self.writer)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                _ => StoreError::unique_as_conflict(e, "delegation id already exists"),
            })?;
            Ok(())
        })
        .await
    }

    /// Every delegation to one agent, revoked ones included (newest last).
    pub async fn agent_delegations(&self, agent_id: &str) -> Result<Vec<DelegationRecord>, StoreError> {
        self.retrying(|| async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE agent_id = $1 ORDER BY id"
            )))
            .bind(agent_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(DelegationRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Every delegation of one grant, revoked ones included.
    pub async fn grant_delegations(&self, app_id: &str, grant_id: &str) -> Result<Vec<DelegationRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE grant_id = $1 AND app_id = $2 ORDER BY id"
        )))
        .bind(grant_id)
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(DelegationRecord::from_row).collect::<Result<_, _>>()?)
    }

    pub async fn find_delegation(&self, app_id: &str, id: &str) -> Result<DelegationRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE id = $1 AND app_id = $2"
        )))
        .bind(id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(DelegationRecord::from_row(&row)?)
    }

    /// Revokes a delegation of `app_id` (idempotent: the first time is kept).
    pub async fn revoke_delegation(&self, app_id: &str, id: &str, now: Millis) -> Result<(), StoreError> {
        let delegation = self.find_delegation(app_id, id).await?;
        self.announcing(ChangeKind::Delegation, &delegation.agent_id, async move {
            sqlx::query("UPDATE delegations SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND app_id = $3")
                .bind(now)
                .bind(id)
                .bind(app_id)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
        .await
    }
}
