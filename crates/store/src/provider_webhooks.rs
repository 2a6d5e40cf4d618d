use sqlx::Row;

use crate::{Millis, Store, StoreError};

/// A webhook the vault created at a provider for one grant. The token the provider puts in every
/// event is sealed, and also stored as a hash so incoming events can be routed without
/// decrypting anything.
#[derive(Clone)]
pub struct ProviderWebhookRecord {
    pub id: String,
    pub grant_id: String,
    pub provider_config_id: String,
    pub remote_id: String,
    pub token_hash: Vec<u8>,
    pub token: Vec<u8>,
    pub created_at: Millis,
}

impl Store {
    pub async fn insert_provider_webhook(&self, w: &ProviderWebhookRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_webhooks (id, grant_id, provider_config_id, remote_id, token_hash, token, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&w.id)
        .bind(&w.grant_id)
        .bind(&w.provider_config_id)
        .bind(&w.remote_id)
        .bind(&w.token_hash)
        .bind(&w.token)
        .bind(w.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Remote ids of a grant's provider webhooks.
    pub async fn provider_webhook_remote_ids(&self, grant_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT remote_id FROM provider_webhooks WHERE grant_id = $1 ORDER BY id")
            .bind(grant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get("remote_id")).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// The grant an incoming provider event belongs to, by the hash of its token.
    pub async fn grant_for_provider_webhook(
        &self,
        provider_config_id: &str,
        token_hash: &[u8],
    ) -> Result<String, StoreError> {
        let row =
            sqlx::query("SELECT grant_id FROM provider_webhooks WHERE token_hash = $1 AND provider_config_id = $2")
                .bind(token_hash)
                .bind(provider_config_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("grant_id")?)
    }

    pub async fn delete_provider_webhooks(&self, grant_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM provider_webhooks WHERE grant_id = $1").bind(grant_id).execute(&self.writer).await?;
        Ok(())
    }
}
