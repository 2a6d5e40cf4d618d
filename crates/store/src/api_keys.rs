use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// An app API key. Only a hash of its secret is ever stored.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// JSON list of scopes; `None`: full access (keys minted before scopes existed).
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<Millis>,
    /// CIDRs the key may be used from; `None`: anywhere.
    pub allowed_cidrs: Option<Vec<String>>,
    /// JSON rate limit (owned by the service layer); `None`: unlimited.
    pub rate_limit: Option<String>,
    /// The key this one was derived from (revoked with it).
    pub parent_id: Option<String>,
    /// The agent this key belongs to; `None`: the app's own key.
    pub agent_id: Option<String>,
    /// The key that replaced this one by rotation.
    pub replaced_by: Option<String>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("revoked_at", &self.revoked_at)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("parent_id", &self.parent_id)
            .field("agent_id", &self.agent_id)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, app_id, name, secret_hash, created_at, last_used_at, revoked_at, scopes, expires_at, \
     allowed_cidrs, rate_limit, parent_id, agent_id, replaced_by";

impl ApiKeyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            name: row.try_get("name")?,
            secret_hash: row.try_get("secret_hash")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
            scopes: row.try_get::<Option<String>, _>("scopes")?.as_deref().map(crate::json_list::decode).transpose()?,
            expires_at: row.try_get("expires_at")?,
            allowed_cidrs: row
                .try_get::<Option<String>, _>("allowed_cidrs")?
                .as_deref()
                .map(crate::json_list::decode)
                .transpose()?,
            rate_limit: row.try_get("rate_limit")?,
            parent_id: row.try_get("parent_id")?,
            agent_id: row.try_get("agent_id")?,
            replaced_by: row.try_get("replaced_by")?,
        })
    }
}

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        insert_query(key).execute(&self.writer).await.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::unique_as_conflict(e, "api key id already exists"),
        })?;
        Ok(())
    }

    /// Looks a key up by id, revoked or not; the caller decides what revocation means.
    pub async fn find_api_key(&self, id: &str) -> Result<ApiKeyRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(ApiKeyRecord::from_row(&row)?)
        })
        .await
    }

    pub async fn list_api_keys(&self, app_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE app_id = $1 ORDER BY id")))
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(ApiKeyRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes a key of `app_id`, and every key derived from it, in one statement. Revoking
    /// twice keeps the first revocation time.
    pub async fn revoke_api_key(&self, app_id: &str, id: &str, now: Millis) -> Result<(), StoreError> {
        let children = self.derived_key_ids(id).await?;
        let done = self
            .announcing(crate::ChangeKind::ApiKey, id, async move {
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
                     WHERE app_id = $3 AND (id = $2 OR parent_id = $2)",
                )
                .bind(now)
                .bind(id)
                .bind(app_id)
                .execute(&self.writer)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await;
        for child in children {
            self.changed(crate::ChangeKind::ApiKey, &child);
        }
        done
    }

    async fn derived_key_ids(&self, parent_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM api_keys WHERE parent_id = $1").bind(parent_id).fetch_all(&self.writer).await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Revokes every key of an agent (the agent was revoked).
    pub async fn revoke_agent_keys(&self, agent_id: &str, now: Millis) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM api_keys WHERE agent_id = $1 OR parent_id IN (SELECT id FROM api_keys WHERE agent_id = $1)",
        )
        .bind(agent_id)
        .fetch_all(&self.writer)
        .await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE agent_id = $2 OR parent_id IN (SELECT id FROM api_keys WHERE agent_id = $2)",
        )
        .bind(now)
        .bind(agent_id)
        .execute(&self.writer)
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            self.changed(crate::ChangeKind::ApiKey, &id);
        }
        Ok(())
    }

    /// Rotation: inserts `new` and lets `old_id` work until `old_expires_at`, naming its successor,
    /// in one transaction. A key already replaced, revoked or expired is not rotated again.
    pub async fn rotate_api_key(
        &self,
        old_id: &str,
        old_expires_at: Millis,
        now: Millis,
        new: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET replaced_by = $1, expires_at = $2 \
             WHERE id = $3 AND app_id = $4 AND replaced_by IS NULL AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $5)",
        )
        .bind(&new.id)
        .bind(old_expires_at)
        .bind(old_id)
        .bind(&new.app_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("the key was already rotated, revoked or expired"));
        }
        insert_query(new).execute(&mut *tx).await?;
        tx.commit().await?;
        self.changed(crate::ChangeKind::ApiKey, old_id);
        self.changed(crate::ChangeKind::ApiKey, &new.id);
        Ok(())
    }

    /// Records use of a key, at most about once a minute per key to keep the hot path cheap.
    pub async fn touch_api_key(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        self.retrying(|| async move {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
        .await
    }
}

/// The INSERT of a new key (never used, never revoked, not replaced).
fn insert_query(key: &ApiKeyRecord) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "INSERT INTO api_keys (id, app_id, name, secret_hash, created_at, last_used_at, revoked_at, scopes, \
         expires_at, allowed_cidrs, rate_limit, parent_id, agent_id, replaced_by) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $8, $9, $10, $11, NULL)",
    )
    .bind(&key.id)
    .bind(&key.app_id)
    .bind(&key.name)
    .bind(&key.secret_hash)
    .bind(key.created_at)
    .bind(key.scopes.as_deref().map(crate::json_list::encode))
    .bind(key.expires_at)
    .bind(key.allowed_cidrs.as_deref().map(crate::json_list::encode))
    .bind(&key.rate_limit)
    .bind(&key.parent_id)
    .bind(&key.agent_id)
}
