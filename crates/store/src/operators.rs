//! Operators (the people who sign in to the portal) and their sessions. A session is found by
//! the hash of its secret and ends by revocation or expiry; revoking all of an operator's
//! sessions is one statement ("sign out everywhere").

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub id: String,
    pub email: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    /// `owner`, `admin` or `viewer`.
    pub role: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl OperatorRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            role: row.try_get("role")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSessionRecord {
    pub id: String,
    pub operator_id: String,
    pub token_hash: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

const OPERATOR_COLUMNS: &str = "id, email, password_hash, role, created_at, updated_at";

impl Store {
    pub async fn insert_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO operators (id, email, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&operator.id)
        .bind(&operator.email)
        .bind(&operator.password_hash)
        .bind(&operator.role)
        .bind(operator.created_at)
        .bind(operator.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "an operator with this email exists"))?;
        Ok(())
    }

    pub async fn find_operator_by_email(&self, email: &str) -> Result<OperatorRecord, StoreError> {
        self.retrying(|| async move {
            let row =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE email = $1")))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            Ok(OperatorRecord::from_row(&row)?)
        })
        .await
    }

    pub async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        self.retrying(|| async move {
            let rows =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY id")))
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows.iter().map(OperatorRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn insert_operator_session(&self, session: &OperatorSessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO operator_sessions (id, operator_id, token_hash, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&session.id)
        .bind(&session.operator_id)
        .bind(&session.token_hash)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The operator of a session in force at `now` (not revoked, not expired).
    pub async fn operator_of_session(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<(String, OperatorRecord), StoreError> {
        self.retrying(|| async move {
            let row = sqlx::query(
                "SELECT s.id AS session_id, o.id, o.email, o.password_hash, o.role, o.created_at, o.updated_at \
                 FROM operator_sessions s JOIN operators o ON o.id = s.operator_id \
                 WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok((row.try_get("session_id")?, OperatorRecord::from_row(&row)?))
        })
        .await
    }

    pub async fn revoke_operator_session(&self, session_id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE operator_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Ends every session of the operator; returns how many were in force.
    pub async fn revoke_operator_sessions(&self, operator_id: &str, now: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE operator_sessions SET revoked_at = $1 WHERE operator_id = $2 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(operator_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
