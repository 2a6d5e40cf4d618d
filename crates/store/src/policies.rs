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
        self.announcing(crate::ChangeKind::Policy, &p.app_id, async move {
        sqlx::query("INSERT INTO policies (id, app_id, target_type, target_id, rules, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&p.id)
            .bind(&p.app_id)
            .bind(&p.target_type)
            .bind(&p.target_id)
            .bind(&p.rules)
            .bind(p.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }).await
    }

    pub async fn list_policies(&self, app_id: &str) -> Result<Vec<PolicyRecord>, StoreError> {
        self.retrying(|| async move {
            let rows = sqlx::query(
                "SELECT id, app_id, target_type, target_id, rules, created_at FROM policies WHERE app_id = $1 ORDER BY id",
            )
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(PolicyRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
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
        self.announcing(crate::ChangeKind::Policy, app_id, async move {
            let done = sqlx::query("DELETE FROM policies WHERE id = $1 AND app_id = $2")
                .bind(id)
                .bind(app_id)
                .execute(&self.writer)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM rate_buckets WHERE policy_id = $1").bind(id).execute(&self.writer).await?;
            Ok(())
        })
        .await
    }

    /// Takes one token from the shared bucket of (`policy_id`, `subject`), refilled at
    /// `per_ms` tokens a millisecond up to `capacity`, in one atomic statement, so instances
    /// sharing the database share the rate. `Err(seconds)` until the next token if it is empty.
    /// PostgreSQL only: a single SQLite instance keeps its buckets in memory.
    pub async fn take_rate_token(
        &self,
        policy_id: &str,
        subject: &str,
        capacity: f64,
        per_ms: f64,
        now: Millis,
    ) -> Result<Result<(), u64>, StoreError> {
        let taken = self
            .retrying(|| async move {
                Ok(sqlx::query(
                    "INSERT INTO rate_buckets (policy_id, subject, tokens, updated_at) VALUES ($1, $2, $3 - 1, $4) \
                     ON CONFLICT (policy_id, subject) DO UPDATE \
                     SET tokens = LEAST($3, rate_buckets.tokens + GREATEST($4 - rate_buckets.updated_at, 0) * $5) - 1, updated_at = $4 \
                     WHERE LEAST($3, rate_buckets.tokens + GREATEST($4 - rate_buckets.updated_at, 0) * $5) >= 1 \
                     RETURNING tokens",
                )
                .bind(policy_id)
                .bind(subject)
                .bind(capacity)
                .bind(now)
                .bind(per_ms)
                .fetch_optional(&self.writer)
                .await?
                .is_some())
            })
            .await?;
        if taken {
            return Ok(Ok(()));
        }
        let row = sqlx::query("SELECT tokens, updated_at FROM rate_buckets WHERE policy_id = $1 AND subject = $2")
            .bind(policy_id)
            .bind(subject)
            .fetch_one(&self.pool)
            .await?;
        let (tokens, at): (f64, Millis) = (row.try_get("tokens")?, row.try_get("updated_at")?);
        let current = (tokens + (now - at).max(0) as f64 * per_ms).min(capacity);
        Ok(Err((((1.0 - current) / per_ms) / 1000.0).ceil().max(1.0) as u64))
    }
}
