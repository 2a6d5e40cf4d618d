use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// A connection made from the provider's side (Aircall's install button) that no end user has
/// claimed yet. It holds sealed tokens for a few minutes; unclaimed, it is erased.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingInstallRecord {
    pub id: String,
    pub app_id: String,
    pub provider_config_id: String,
    pub claim_hash: Vec<u8>,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub token_type: String,
    pub expires_at: Option<Millis>,
    pub scopes: String,
    pub api_base_url: Option<String>,
    pub account_key: String,
    pub account_id: String,
    pub account_user_id: Option<String>,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub claim_expires_at: Millis,
    pub created_at: Millis,
    pub claimed_at: Option<Millis>,
}

impl std::fmt::Debug for PendingInstallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingInstallRecord")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, app_id, provider_config_id, claim_hash, access_token, refresh_token, token_type, expires_at, scopes, \
    api_base_url, account_key, account_id, account_user_id, account_name, account_email, claim_expires_at, created_at, claimed_at";

impl PendingInstallRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            provider_config_id: row.try_get("provider_config_id")?,
            claim_hash: row.try_get("claim_hash")?,
            access_token: row.try_get("access_token")?,
            refresh_token: row.try_get("refresh_token")?,
            token_type: row.try_get("token_type")?,
            expires_at: row.try_get("expires_at")?,
            scopes: row.try_get("scopes")?,
            api_base_url: row.try_get("api_base_url")?,
            account_key: row.try_get("account_key")?,
            account_id: row.try_get("account_id")?,
            account_user_id: row.try_get("account_user_id")?,
            account_name: row.try_get("account_name")?,
            account_email: row.try_get("account_email")?,
            claim_expires_at: row.try_get("claim_expires_at")?,
            created_at: row.try_get("created_at")?,
            claimed_at: row.try_get("claimed_at")?,
        })
    }
}

impl Store {
    pub async fn insert_pending_install(&self, p: &PendingInstallRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO pending_installs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(&p.id)
        .bind(&p.app_id)
        .bind(&p.provider_config_id)
        .bind(&p.claim_hash)
        .bind(&p.access_token)
        .bind(&p.refresh_token)
        .bind(&p.token_type)
        .bind(p.expires_at)
        .bind(&p.scopes)
        .bind(&p.api_base_url)
        .bind(&p.account_key)
        .bind(&p.account_id)
        .bind(&p.account_user_id)
        .bind(&p.account_name)
        .bind(&p.account_email)
        .bind(p.claim_expires_at)
        .bind(p.created_at)
        .bind(p.claimed_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn find_pending_install(
        &self,
        app_id: &str,
        claim_hash: &[u8],
    ) -> Result<PendingInstallRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pending_installs WHERE claim_hash = $1 AND app_id = $2"
        )))
        .bind(claim_hash)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(PendingInstallRecord::from_row(&row)?)
    }

    /// One pending install by id (for operators and tests; apps find installs by claim).
    pub async fn get_pending_install(&self, id: &str) -> Result<PendingInstallRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM pending_installs WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(PendingInstallRecord::from_row(&row)?)
    }

    /// Claims a pending install once, erasing its tokens from this table (they move to a grant).
    pub async fn claim_pending_install(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pending_installs SET claimed_at = $1, access_token = NULL, refresh_token = NULL \
             WHERE id = $2 AND claimed_at IS NULL AND claim_expires_at > $1",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Erases the tokens of installs nobody claimed in time.
    pub async fn erase_expired_pending_installs(&self, now: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE pending_installs SET access_token = NULL, refresh_token = NULL WHERE claimed_at IS NULL AND claim_expires_at <= $1 AND access_token IS NOT NULL",
        )
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
