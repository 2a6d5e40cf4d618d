use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// One authorization-code round trip: the `state` (stored as a hash), the browser it was
/// started in (a hash of a cookie value), the expected provider, the exact redirect URI and the
/// sealed PKCE verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthFlowRecord {
    pub id: String,
    pub state_hash: Vec<u8>,
    pub browser_hash: Vec<u8>,
    pub app_id: String,
    pub session_id: Option<String>,
    pub provider_config_id: String,
    pub redirect_uri: String,
    pub pkce_verifier: Option<Vec<u8>>,
    pub expected_issuer: Option<String>,
    pub expires_at: Millis,
    pub created_at: Millis,
    pub used_at: Option<Millis>,
}

impl std::fmt::Debug for OAuthFlowRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthFlowRecord")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, state_hash, browser_hash, app_id, session_id, provider_config_id, redirect_uri, pkce_verifier, expected_issuer, expires_at, created_at, used_at";

impl OAuthFlowRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            state_hash: row.try_get("state_hash")?,
            browser_hash: row.try_get("browser_hash")?,
            app_id: row.try_get("app_id")?,
            session_id: row.try_get("session_id")?,
            provider_config_id: row.try_get("provider_config_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            expected_issuer: row.try_get("expected_issuer")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            used_at: row.try_get("used_at")?,
        })
    }
}

impl Store {
    pub async fn insert_oauth_flow(&self, f: &OAuthFlowRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO oauth_flows ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&f.id)
        .bind(&f.state_hash)
        .bind(&f.browser_hash)
        .bind(&f.app_id)
        .bind(&f.session_id)
        .bind(&f.provider_config_id)
        .bind(&f.redirect_uri)
        .bind(&f.pkce_verifier)
        .bind(&f.expected_issuer)
        .bind(f.expires_at)
        .bind(f.created_at)
        .bind(f.used_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn find_oauth_flow_by_state(&self, state_hash: &[u8]) -> Result<OAuthFlowRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM oauth_flows WHERE state_hash = $1")))
            .bind(state_hash)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(OAuthFlowRecord::from_row(&row)?)
    }

    /// Consumes a flow's `state`. Returns false if it was already used: a replay.
    pub async fn consume_oauth_flow(&self, id: &str, now: Millis) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE oauth_flows SET used_at = $1, pkce_verifier = NULL WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
