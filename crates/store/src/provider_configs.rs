use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, json_list};

/// An app's configuration of one provider: its client registration and chosen scopes.
/// `client_secret` is sealed; `custom_endpoints` is JSON owned by the providers layer.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfigRecord {
    pub id: String,
    pub app_id: String,
    pub key: String,
    pub provider: String,
    pub environment: String,
    pub client_id: String,
    pub client_secret: Vec<u8>,
    pub scopes: Vec<String>,
    pub custom_endpoints: Option<String>,
    pub redirect_uri: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Sealed secret that signs the provider's webhooks to the vault (Zoom's secret token).
    pub webhook_secret: Option<Vec<u8>>,
    /// Events the vault subscribes to at the provider for each grant (Aircall webhooks).
    pub provider_webhook_events: Option<Vec<String>>,
}

impl std::fmt::Debug for ProviderConfigRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfigRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("key", &self.key)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, app_id, key, provider, environment, client_id, client_secret, scopes, custom_endpoints, redirect_uri, created_at, updated_at, webhook_secret, provider_webhook_events";

impl ProviderConfigRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            key: row.try_get("key")?,
            provider: row.try_get("provider")?,
            environment: row.try_get("environment")?,
            client_id: row.try_get("client_id")?,
            client_secret: row.try_get("client_secret")?,
            scopes: json_list::decode(&row.try_get::<String, _>("scopes")?)?,
            custom_endpoints: row.try_get("custom_endpoints")?,
            redirect_uri: row.try_get("redirect_uri")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            webhook_secret: row.try_get("webhook_secret")?,
            provider_webhook_events: row
                .try_get::<Option<String>, _>("provider_webhook_events")?
                .map(|t| json_list::decode(&t))
                .transpose()?,
        })
    }
}

impl Store {
    pub async fn insert_provider_config(&self, c: &ProviderConfigRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO provider_configs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&c.id)
        .bind(&c.app_id)
        .bind(&c.key)
        .bind(&c.provider)
        .bind(&c.environment)
        .bind(&c.client_id)
        .bind(&c.client_secret)
        .bind(json_list::encode(&c.scopes))
        .bind(&c.custom_endpoints)
        .bind(&c.redirect_uri)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(&c.webhook_secret)
        .bind(c.provider_webhook_events.as_deref().map(json_list::encode))
        .execute(&self.writer)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "the app already has a provider configuration with this key"))?;
        Ok(())
    }

    /// Replaces the mutable fields of a configuration of `app_id`.
    pub async fn update_provider_config(&self, c: &ProviderConfigRecord) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE provider_configs SET environment = $1, client_id = $2, client_secret = $3, scopes = $4, \
             custom_endpoints = $5, redirect_uri = $6, updated_at = $7, webhook_secret = $10, provider_webhook_events = $11 \
             WHERE id = $8 AND app_id = $9",
        )
        .bind(&c.environment)
        .bind(&c.client_id)
        .bind(&c.client_secret)
        .bind(json_list::encode(&c.scopes))
        .bind(&c.custom_endpoints)
        .bind(&c.redirect_uri)
        .bind(c.updated_at)
        .bind(&c.id)
        .bind(&c.app_id)
        .bind(&c.webhook_secret)
        .bind(c.provider_webhook_events.as_deref().map(json_list::encode))
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A configuration of `app_id` by id; another app's configuration is not found.
    pub async fn get_provider_config(&self, app_id: &str, id: &str) -> Result<ProviderConfigRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM provider_configs WHERE id = $1 AND app_id = $2"
            )))
            .bind(id)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(ProviderConfigRecord::from_row(&row)?)
        })
        .await
    }

    /// A configuration by id alone: for provider callbacks, which carry no app credentials.
    pub async fn find_provider_config(&self, id: &str) -> Result<ProviderConfigRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM provider_configs WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(ProviderConfigRecord::from_row(&row)?)
        })
        .await
    }

    pub async fn list_provider_configs(&self, app_id: &str) -> Result<Vec<ProviderConfigRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM provider_configs WHERE app_id = $1 ORDER BY id"
        )))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ProviderConfigRecord::from_row).collect::<Result<_, _>>()?)
    }

    pub async fn delete_provider_config(&self, app_id: &str, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM provider_configs WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
