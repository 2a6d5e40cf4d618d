use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// An operator token minted by `tokenvault admin-token`. Only its hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    pub id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl std::fmt::Debug for AdminTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokenRecord").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

impl AdminTokenRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            secret_hash: row.try_get("secret_hash")?,
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

impl Store {
    pub async fn insert_admin_token(&self, token: &AdminTokenRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO admin_tokens (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.secret_hash)
            .bind(token.created_at)
            .execute(&self.writer)
            .await
            .map_err(|e| StoreError::unique_as_conflict(e, "admin token id already exists"))?;
        Ok(())
    }

    pub async fn find_admin_token(&self, id: &str) -> Result<AdminTokenRecord, StoreError> {
        let row = sqlx::query("SELECT id, name, secret_hash, created_at, revoked_at FROM admin_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(AdminTokenRecord::from_row(&row)?)
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, name, secret_hash, created_at, revoked_at FROM admin_tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(AdminTokenRecord::from_row).collect::<Result<_, _>>()?)
    }

    pub async fn revoke_admin_token(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
