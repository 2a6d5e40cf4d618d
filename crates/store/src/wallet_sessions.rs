//! Wallet sessions: one end user of one app signed in to see and revoke their connections. The
//! app's backend creates one (the link's secret is kept as a hash); opening the link once swaps
//! it for a browser cookie (also kept as a hash). Both end at `expires_at` or on revocation.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletSessionRecord {
    pub id: String,
    pub app_id: String,
    pub end_user_id: String,
    pub link_hash: String,
    pub cookie_hash: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub opened_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

const COLUMNS: &str = "id, app_id, end_user_id, link_hash, cookie_hash, created_at, expires_at, opened_at, revoked_at";

impl WalletSessionRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            end_user_id: row.try_get("end_user_id")?,
            link_hash: row.try_get("link_hash")?,
            cookie_hash: row.try_get("cookie_hash")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            opened_at: row.try_get("opened_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

impl Store {
    pub async fn insert_wallet_session(&self, session: &WalletSessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO wallet_sessions (id, app_id, end_user_id, link_hash, cookie_hash, created_at, expires_at, opened_at, revoked_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL, NULL)",
        )
        .bind(&session.id)
        .bind(&session.app_id)
        .bind(&session.end_user_id)
        .bind(&session.link_hash)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Opens a session by its link: only once, only in force at `now`. Returns the session, now
    /// bound to `cookie_hash`; `NotFound` when the link is unknown, used, expired or revoked.
    pub async fn open_wallet_session(
        &self,
        link_hash: &str,
        cookie_hash: &str,
        now: Millis,
    ) -> Result<WalletSessionRecord, StoreError> {
        let done = sqlx::query(
            "UPDATE wallet_sessions SET cookie_hash = $1, opened_at = $2 \
             WHERE link_hash = $3 AND opened_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(cookie_hash)
        .bind(now)
        .bind(link_hash)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.find_wallet_session(cookie_hash, now).await
    }

    /// The session a browser cookie belongs to, if in force at `now`.
    pub async fn find_wallet_session(&self, cookie_hash: &str, now: Millis) -> Result<WalletSessionRecord, StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM wallet_sessions WHERE cookie_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
            )))
            .bind(cookie_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(WalletSessionRecord::from_row(&row)?)
        })
        .await
    }

    /// Whether a link was ever issued (to tell "used or expired" from "never valid").
    pub async fn wallet_link_known(&self, link_hash: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM wallet_sessions WHERE link_hash = $1")
            .bind(link_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn revoke_wallet_session(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE wallet_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Forgets sessions that ended before `before`; returns how many.
    pub async fn purge_wallet_sessions(&self, before: Millis) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM wallet_sessions WHERE expires_at < $1").bind(before).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}
