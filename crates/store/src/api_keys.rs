use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// An app API key. Only a hash of its secret is ever stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, app_id, name, secret_hash, created_at, last_used_at, revoked_at";

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
        })
    }
}

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, app_id, name, secret_hash, created_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
        )
        .bind(&key.id)
        .bind(&key.app_id)
        .bind(&key.name)
        .bind(&key.secret_hash)
        .bind(key.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| match &e {
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

    /// Revokes a key of `app_id`. Revoking twice keeps the first revocation time.
    pub async fn revoke_api_key(&self, app_id: &str, id: &str, now: Millis) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::ApiKey, id, async move {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND app_id = $3")
                .bind(now)
                .bind(id)
                .bind(app_id)
                .execute(&self.writer)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }).await
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
