use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, json_list};

/// A short-lived permission for one end user to connect one of the allowed providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSessionRecord {
    pub id: String,
    pub app_id: String,
    pub token_hash: Vec<u8>,
    pub end_user_id: String,
    pub allowed_configs: Vec<String>,
    pub return_url: String,
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub grant_id: Option<String>,
    pub expires_at: Millis,
    pub created_at: Millis,
    pub completed_at: Option<Millis>,
    /// The agent the new grant is delegated to (proxy-only), if the session names one.
    pub delegate_agent_id: Option<String>,
}

/// A status change of a session (compare-and-swap on the current status).
#[derive(Debug, Clone)]
pub struct SessionOutcome<'a> {
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub completed_at: Option<Millis>,
}

const COLUMNS: &str = "id, app_id, token_hash, end_user_id, allowed_configs, return_url, status, error_code, error_message, grant_id, expires_at, created_at, completed_at, delegate_agent_id";

impl ConnectSessionRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            token_hash: row.try_get("token_hash")?,
            end_user_id: row.try_get("end_user_id")?,
            allowed_configs: json_list::decode(&row.try_get::<String, _>("allowed_configs")?)?,
            return_url: row.try_get("return_url")?,
            status: row.try_get("status")?,
            error_code: row.try_get("error_code")?,
            error_message: row.try_get("error_message")?,
            grant_id: row.try_get("grant_id")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            completed_at: row.try_get("completed_at")?,
            delegate_agent_id: row.try_get("delegate_agent_id")?,
        })
    }
}

impl Store {
    pub async fn insert_connect_session(&self, s: &ConnectSessionRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO connect_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&s.id)
        .bind(&s.app_id)
        .bind(&s.token_hash)
        .bind(&s.end_user_id)
        .bind(json_list::encode(&s.allowed_configs))
        .bind(&s.return_url)
        .bind(&s.status)
        .bind(&s.error_code)
        .bind(&s.error_message)
        .bind(&s.grant_id)
        .bind(s.expires_at)
        .bind(s.created_at)
        .bind(s.completed_at)
        .bind(&s.delegate_agent_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_connect_session(&self, app_id: &str, id: &str) -> Result<ConnectSessionRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connect_sessions WHERE id = $1 AND app_id = $2"
        )))
        .bind(id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(ConnectSessionRecord::from_row(&row)?)
    }

    pub async fn find_connect_session(&self, id: &str) -> Result<ConnectSessionRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM connect_sessions WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(ConnectSessionRecord::from_row(&row)?)
    }

    pub async fn find_connect_session_by_token(&self, token_hash: &[u8]) -> Result<ConnectSessionRecord, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM connect_sessions WHERE token_hash = $1")))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(ConnectSessionRecord::from_row(&row)?)
    }

    /// Moves a session to `outcome.status` only if it is currently in `from`. Returns whether
    /// it moved, so two callbacks can never both finish one session.
    pub async fn transition_connect_session(
        &self,
        id: &str,
        from: &str,
        outcome: &SessionOutcome<'_>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connect_sessions SET status = $1, error_code = $2, error_message = $3, grant_id = $4, completed_at = $5 \
             WHERE id = $6 AND status = $7",
        )
        .bind(outcome.status)
        .bind(outcome.error_code)
        .bind(outcome.error_message)
        .bind(outcome.grant_id)
        .bind(outcome.completed_at)
        .bind(id)
        .bind(from)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
