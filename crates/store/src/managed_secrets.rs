use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, json_list};

/// A credential the app owns (API key, service token, username and password), sealed, with how
/// to inject it and where it may be sent.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedSecretRecord {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub end_user_id: Option<String>,
    pub style: String,
    /// Header name (`header` style) or query parameter name (`query` style).
    pub parameter: Option<String>,
    pub username: Option<String>,
    pub secret: Option<Vec<u8>>,
    pub base_urls: Vec<String>,
    pub status: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl std::fmt::Debug for ManagedSecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedSecretRecord").field("id", &self.id).field("style", &self.style).finish_non_exhaustive()
    }
}

const COLUMNS: &str =
    "id, app_id, name, end_user_id, style, parameter, username, secret, base_urls, status, created_at, updated_at";

impl ManagedSecretRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            name: row.try_get("name")?,
            end_user_id: row.try_get("end_user_id")?,
            style: row.try_get("style")?,
            parameter: row.try_get("parameter")?,
            username: row.try_get("username")?,
            secret: row.try_get("secret")?,
            base_urls: json_list::decode(&row.try_get::<String, _>("base_urls")?)?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl Store {
    /// Inserts or fully replaces a managed secret of its app.
    pub async fn upsert_managed_secret(&self, m: &ManagedSecretRecord) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::ManagedSecret, &m.id, async move {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO managed_secrets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, end_user_id = excluded.end_user_id, style = excluded.style, \
             parameter = excluded.parameter, username = excluded.username, secret = excluded.secret, base_urls = excluded.base_urls, \
             status = excluded.status, updated_at = excluded.updated_at"
        )))
        .bind(&m.id)
        .bind(&m.app_id)
        .bind(&m.name)
        .bind(&m.end_user_id)
        .bind(&m.style)
        .bind(&m.parameter)
        .bind(&m.username)
        .bind(&m.secret)
        .bind(json_list::encode(&m.base_urls))
        .bind(&m.status)
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }).await
    }

    pub async fn get_managed_secret(&self, app_id: &str, id: &str) -> Result<ManagedSecretRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM managed_secrets WHERE id = $1 AND app_id = $2"
        )))
        .bind(id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(ManagedSecretRecord::from_row(&row)?)
    }

    pub async fn list_managed_secrets(&self, app_id: &str) -> Result<Vec<ManagedSecretRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM managed_secrets WHERE app_id = $1 ORDER BY id"
        )))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ManagedSecretRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Erases the secret and marks it deleted.
    pub async fn delete_managed_secret(&self, app_id: &str, id: &str, now: Millis) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::ManagedSecret, id, async move {
        let done = sqlx::query("UPDATE managed_secrets SET secret = NULL, status = 'deleted', updated_at = $1 WHERE id = $2 AND app_id = $3 AND status <> 'deleted'")
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
}
