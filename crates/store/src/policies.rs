use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// A policy: JSON rules (owned by the service layer) attached to an app, a provider
/// configuration or a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub id: String,
    pub app_id: String,
    pub target_type: String,
    pub target_id: String,
    pub rules: String,
    pub created_at: Millis,
}

impl PolicyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            rules: row.try_get("rules")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Store {
    pub async fn insert_policy(&self, p: &PolicyRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO policies (id, app_id, target_type, target_id, rules, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&p.id)
            .bind(&p.app_id)
            .bind(&p.target_type)
            .bind(&p.target_id)
            .bind(&p.rules)
            .bind(p.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn list_policies(&self, app_id: &str) -> Result<Vec<PolicyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, app_id, target_type, target_id, rules, created_at FROM policies WHERE app_id = $1 ORDER BY id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(PolicyRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Every policy that applies to an access: the app's, the configuration's and the grant's.
    pub async fn policies_for(
        &self,
        app_id: &str,
        provider_config_id: Option<&str>,
        grant_id: &str,
    ) -> Result<Vec<PolicyRecord>, StoreError> {
        self.retrying(|| async move {
            let rows = sqlx::query(
                "SELECT id, app_id, target_type, target_id, rules, created_at FROM policies WHERE app_id = $1 AND \
                 ((target_type = 'app') OR (target_type = 'provider_config' AND target_id = $2) OR (target_type = 'grant' AND target_id = $3)) \
                 ORDER BY id",
            )
            .bind(app_id)
            .bind(provider_config_id.unwrap_or(""))
            .bind(grant_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(PolicyRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn delete_policy(&self, app_id: &str, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM policies WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
