//! The change feed that keeps every instance's in-memory caches true.
//!
//! Triggers (migration 0010) add a row to `changes` in the same transaction as every change of
//! what instances cache (API keys, grants, managed secrets, policies, apps), so a change that
//! committed is in the feed and a rolled-back one is not. Instances read the feed a few times a
//! second ([`Store::changes_after`]); this process's own writes are also announced at once to a
//! [`ChangeListener`], so they take effect here without waiting for the next read.

use std::sync::{Arc, OnceLock};

use sqlx::Row;

use crate::{Dialect, Store, StoreError};

/// What a change row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An API key, by key id.
    ApiKey,
    /// An OAuth grant, by grant id.
    Grant,
    /// A managed secret, by its id (in the grants' id space).
    ManagedSecret,
    /// Any policy of an app, by app id.
    Policy,
    /// An app, by app id (its deletion removes its keys, grants and policies).
    App,
    /// An agent, by agent id.
    Agent,
    /// Any delegation to an agent, by agent id.
    Delegation,
}

impl ChangeKind {
    fn parse(text: &str) -> Option<ChangeKind> {
        Some(match text {
            "api_key" => ChangeKind::ApiKey,
            "grant" => ChangeKind::Grant,
            "managed_secret" => ChangeKind::ManagedSecret,
            "policy" => ChangeKind::Policy,
            "app" => ChangeKind::App,
            "agent" => ChangeKind::Agent,
            "delegation" => ChangeKind::Delegation,
            _ => return None,
        })
    }
}

/// One row of the feed. An unknown kind (a newer schema) reads as [`ChangeKind::App`], which
/// makes readers drop everything: never wrong, only slower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: i64,
    pub kind: ChangeKind,
    pub key: String,
}

/// Told of every change this process writes, right after the statement that made it.
pub type ChangeListener = Arc<dyn Fn(ChangeKind, &str) + Send + Sync>;

/// The listener slot of a [`Store`] (set once, shared by its clones).
#[derive(Default, Clone)]
pub(crate) struct ListenerSlot(Arc<OnceLock<ChangeListener>>);

impl std::fmt::Debug for ListenerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "ListenerSlot(set)" } else { "ListenerSlot(empty)" })
    }
}

impl Store {
    /// Sets the listener told of this process's own changes. Only the first call counts.
    pub fn set_change_listener(&self, listener: ChangeListener) {
        let _ = self.listener.0.set(listener);
    }

    /// Announces a change this process just wrote (or tried to: announcing one too many is harmless).
    pub(crate) fn changed(&self, kind: ChangeKind, key: &str) {
        if let Some(listener) = self.listener.0.get() {
            listener(kind, key);
        }
    }

    /// The newest row's sequence number (0 when the feed is empty).
    pub async fn latest_change(&self) -> Result<i64, StoreError> {
        self.retrying(|| async {
            let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes").fetch_one(&self.pool).await?;
            Ok(row.try_get::<i64, _>("seq")?)
        })
        .await
    }

    /// The oldest row's sequence number still in the feed (None when it is empty).
    pub async fn oldest_change(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MIN(seq) AS seq FROM changes").fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("seq")?)
    }

    /// Rows after `after`, in order, at most `limit`, and the rows of `also` (sequence numbers
    /// skipped earlier, whose transactions may have committed since: on PostgreSQL a sequence
    /// number is taken before its transaction commits, so numbers become visible out of order).
    pub async fn changes_after(&self, after: i64, also: &[i64], limit: i64) -> Result<Vec<ChangeRow>, StoreError> {
        let mut sql = String::from("SELECT seq, kind, key FROM changes WHERE seq > $1");
        if !also.is_empty() {
            let list: Vec<String> = also.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" OR seq IN ({})", list.join(",")));
        }
        sql.push_str(" ORDER BY seq LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(ChangeRow {
                    seq: row.try_get("seq")?,
                    kind: ChangeKind::parse(&kind).unwrap_or(ChangeKind::App),
                    key: row.try_get("key")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Deletes rows older than `age_ms` by the database's clock (the triggers stamp rows with it).
    pub async fn prune_changes(&self, age_ms: i64) -> Result<u64, StoreError> {
        let now = match self.dialect() {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Dialect::Postgres => "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT",
        };
        let sql = format!("DELETE FROM changes WHERE at < {now} - $1");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(age_ms).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Runs a write and then announces the change it made to this process's listener (also when
    /// it failed: a lost connection may have committed it, and one announcement too many is harmless).
    pub(crate) async fn announcing<T>(
        &self,
        kind: ChangeKind,
        key: &str,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = write.await;
        self.changed(kind, key);
        result
    }
}
