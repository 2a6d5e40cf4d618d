use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// Lifecycle of a data key: `active` seals new values (exactly one), `retiring` keys still open
/// values a running rotation has not re-sealed yet, `retired` keys sealed nothing that remained
/// at the end of their rotation. A retired key keeps its wrapped material until the end of the
/// next rotation, so a value that a slow writer sealed just before a rotation and stored just
/// after it still opens (and that next rotation re-seals it); then the material is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Retiring,
    Retired,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Result<Self, sqlx::Error> {
        match text {
            "active" => Ok(KeyState::Active),
            "retiring" => Ok(KeyState::Retiring),
            "retired" => Ok(KeyState::Retired),
            other => Err(sqlx::Error::Decode(format!("unknown key state `{other}`").into())),
        }
    }
}

/// A data key as stored: wrapped by the master key, never in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKeyRecord {
    pub id: u32,
    pub wrapped_key: Option<Vec<u8>>,
    pub master_fingerprint: String,
    pub state: KeyState,
    pub created_at: Millis,
    pub retired_at: Option<Millis>,
}

impl std::fmt::Debug for EncryptionKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKeyRecord")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("master_fingerprint", &self.master_fingerprint)
            .finish_non_exhaustive()
    }
}

impl EncryptionKeyRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let id: i64 = row.try_get("id")?;
        let state: String = row.try_get("state")?;
        Ok(Self {
            id: u32::try_from(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            wrapped_key: row.try_get("wrapped_key")?,
            master_fingerprint: row.try_get("master_fingerprint")?,
            state: KeyState::parse(&state)?,
            created_at: row.try_get("created_at")?,
            retired_at: row.try_get("retired_at")?,
        })
    }
}

impl Store {
    pub async fn list_encryption_keys(&self) -> Result<Vec<EncryptionKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, wrapped_key, master_fingerprint, state, created_at, retired_at FROM encryption_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(EncryptionKeyRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Makes `new_key` the active key and demotes the current active key to `retiring`, in one
    /// transaction. Two concurrent rotations cannot both succeed: the loser gets `Conflict`.
    pub async fn activate_new_key(&self, new_key: &EncryptionKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE encryption_keys SET state = 'retiring' WHERE state = 'active'").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO encryption_keys (id, wrapped_key, master_fingerprint, state, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(i64::from(new_key.id))
        .bind(&new_key.wrapped_key)
        .bind(&new_key.master_fingerprint)
        .bind(KeyState::Active.as_str())
        .bind(new_key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::unique_as_conflict(e, "another key was created at the same time"))?;
        tx.commit().await?;
        Ok(())
    }

    /// Retires the given `retiring` keys: they seal and are expected to open nothing any more.
    /// Their material stays until [`Store::erase_retired_keys`] of a later rotation.
    pub async fn retire_keys(&self, ids: &[u32], now: Millis) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE encryption_keys SET state = 'retired', retired_at = $1 WHERE id = $2 AND state = 'retiring'",
            )
            .bind(now)
            .bind(i64::from(*id))
            .execute(&self.writer)
            .await?;
        }
        Ok(())
    }

    /// Erases the wrapped material of keys retired before `retired_before`. Called at the end of
    /// a rotation, whose sweep re-sealed whatever they still sealed.
    pub async fn erase_retired_keys(&self, retired_before: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE encryption_keys SET wrapped_key = NULL WHERE state = 'retired' AND retired_at < $1 AND wrapped_key IS NOT NULL",
        )
        .bind(retired_before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}
