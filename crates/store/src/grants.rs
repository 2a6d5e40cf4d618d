use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, WebhookDeliveryRecord};

/// A stored credential: one per app, end user, provider configuration and provider account.
/// Tokens are sealed; a revoked grant keeps its row (a tombstone) with the tokens erased.
#[derive(Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub app_id: String,
    pub provider_config_id: String,
    pub provider: String,
    pub environment: String,
    pub end_user_id: String,
    pub account_key: String,
    pub account_id: String,
    pub account_user_id: Option<String>,
    pub account_name: Option<String>,
    pub account_email: Option<String>,
    pub scopes: String,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub token_type: String,
    pub expires_at: Option<Millis>,
    pub api_base_url: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub connected_at: Millis,
    pub refreshed_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub next_refresh_at: Option<Millis>,
    pub refresh_failures: i64,
    pub retry_at: Option<Millis>,
    pub last_error: Option<String>,
    pub revoked_at: Option<Millis>,
    pub refresh_lease_until: Option<Millis>,
    /// Sends of the stored refresh token whose outcome is unknown (rotating providers only).
    pub refresh_sends_in_doubt: i64,
    /// The identity of the stored token pair: bumped whenever the tokens are replaced (refresh,
    /// reconnect), never by re-sealing. Refresh outcomes are written only if it is unchanged.
    pub token_generation: i64,
    /// A refresh of this grant has returned a new refresh token: the provider rotates.
    pub refresh_rotates: bool,
    /// When the first of the `refresh_sends_in_doubt` happened.
    pub refresh_doubt_since: Option<Millis>,
    /// Why the last provider call failed, in words (endpoint, status, the provider's error);
    /// `last_error` is the machine-readable code.
    pub last_error_detail: Option<String>,
}

impl std::fmt::Debug for GrantRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantRecord")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, app_id, provider_config_id, provider, environment, end_user_id, account_key, account_id, \
    account_user_id, account_name, account_email, scopes, access_token, refresh_token, token_type, expires_at, \
    api_base_url, status, status_reason, connected_at, refreshed_at, created_at, updated_at, next_refresh_at, \
    refresh_failures, retry_at, last_error, revoked_at, refresh_lease_until, \
    refresh_sends_in_doubt, token_generation, refresh_rotates, refresh_doubt_since, last_error_detail";

impl GrantRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            provider_config_id: row.try_get("provider_config_id")?,
            provider: row.try_get("provider")?,
            environment: row.try_get("environment")?,
            end_user_id: row.try_get("end_user_id")?,
            account_key: row.try_get("account_key")?,
            account_id: row.try_get("account_id")?,
            account_user_id: row.try_get("account_user_id")?,
            account_name: row.try_get("account_name")?,
            account_email: row.try_get("account_email")?,
            scopes: row.try_get("scopes")?,
            access_token: row.try_get("access_token")?,
            refresh_token: row.try_get("refresh_token")?,
            token_type: row.try_get("token_type")?,
            expires_at: row.try_get("expires_at")?,
            api_base_url: row.try_get("api_base_url")?,
            status: row.try_get("status")?,
            status_reason: row.try_get("status_reason")?,
            connected_at: row.try_get("connected_at")?,
            refreshed_at: row.try_get("refreshed_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            next_refresh_at: row.try_get("next_refresh_at")?,
            refresh_failures: row.try_get("refresh_failures")?,
            retry_at: row.try_get("retry_at")?,
            last_error: row.try_get("last_error")?,
            revoked_at: row.try_get("revoked_at")?,
            refresh_lease_until: row.try_get("refresh_lease_until")?,
            refresh_sends_in_doubt: row.try_get("refresh_sends_in_doubt")?,
            token_generation: row.try_get("token_generation")?,
            refresh_rotates: row.try_get::<i64, _>("refresh_rotates")? != 0,
            refresh_doubt_since: row.try_get("refresh_doubt_since")?,
            last_error_detail: row.try_get("last_error_detail")?,
        })
    }
}

impl Store {
    /// The id of the grant for this (app, end user, configuration, account), if one exists.
    pub async fn find_grant_id(
        &self,
        app_id: &str,
        end_user_id: &str,
        provider_config_id: &str,
        account_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM grants WHERE app_id = $1 AND end_user_id = $2 AND provider_config_id = $3 AND account_key = $4",
        )
        .bind(app_id)
        .bind(end_user_id)
        .bind(provider_config_id)
        .bind(account_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Inserts a grant, or replaces the connection data of the grant with the same id
    /// (a reconnect, which starts a new token generation and keeps what was learnt about the
    /// provider's rotation). A concurrent first connect of the same account yields `Conflict`.
    pub async fn upsert_grant(&self, g: &GrantRecord) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::Grant, &g.id, async move { self.upsert_grant_announcing(g, &[]).await })
            .await
    }

    /// [`Store::upsert_grant`] and the app-webhook `events` announcing it, in one transaction:
    /// a connect is never stored without its `grant.connected` event, nor announced without it.
    pub async fn upsert_grant_announcing(
        &self,
        g: &GrantRecord,
        events: &[WebhookDeliveryRecord],
    ) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::Grant, &g.id, async move {
            let mut tx = self.begin_write().await?;
            upsert_query(g).execute(&mut *tx).await.map_err(|e| {
                StoreError::unique_as_conflict(e, "a grant for this account was created at the same time")
            })?;
            Self::commit_with_events(tx, true, events).await?;
            Ok(())
        })
        .await
    }

    pub async fn get_grant(&self, app_id: &str, id: &str) -> Result<GrantRecord, StoreError> {
        self.retrying(|| async move {
            let row =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM grants WHERE id = $1 AND app_id = $2")))
                    .bind(id)
                    .bind(app_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            Ok(GrantRecord::from_row(&row)?)
        })
        .await
    }

    /// Grants of `app_id`, newest last, after the cursor, optionally filtered.
    pub async fn list_grants(
        &self,
        app_id: &str,
        filter: &GrantFilter<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM grants WHERE app_id = $1 AND id > $2 \
             AND ($3 = '' OR end_user_id = $3) AND ($4 = '' OR provider = $4) AND ($5 = '' OR status = $5) \
             ORDER BY id LIMIT $6"
        )))
        .bind(app_id)
        .bind(after.unwrap_or(""))
        .bind(filter.end_user_id.unwrap_or(""))
        .bind(filter.provider.unwrap_or(""))
        .bind(filter.status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(GrantRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Grants of a configuration that still hold tokens (anything but revoked tombstones).
    pub async fn count_live_grants(&self, provider_config_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM grants WHERE provider_config_id = $1 AND status <> 'revoked'")
            .bind(provider_config_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// Optional filters of a grant listing.
#[derive(Debug, Default, Clone)]
pub struct GrantFilter<'a> {
    pub end_user_id: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub status: Option<&'a str>,
}

fn upsert_query(g: &GrantRecord) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO grants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34) \
         ON CONFLICT (id) DO UPDATE SET account_user_id = excluded.account_user_id, account_name = excluded.account_name, \
         account_email = excluded.account_email, scopes = excluded.scopes, access_token = excluded.access_token, \
         refresh_token = excluded.refresh_token, token_type = excluded.token_type, expires_at = excluded.expires_at, \
         api_base_url = excluded.api_base_url, status = excluded.status, status_reason = excluded.status_reason, \
         connected_at = excluded.connected_at, refreshed_at = excluded.refreshed_at, updated_at = excluded.updated_at, \
         next_refresh_at = excluded.next_refresh_at, refresh_failures = excluded.refresh_failures, retry_at = excluded.retry_at, \
         last_error = excluded.last_error, revoked_at = excluded.revoked_at, refresh_lease_owner = NULL, refresh_lease_until = NULL, \
         refresh_sends_in_doubt = excluded.refresh_sends_in_doubt, refresh_doubt_since = excluded.refresh_doubt_since, \
         last_error_detail = excluded.last_error_detail, token_generation = grants.token_generation + 1"
    )))
    .bind(&g.id)
    .bind(&g.app_id)
    .bind(&g.provider_config_id)
    .bind(&g.provider)
    .bind(&g.environment)
    .bind(&g.end_user_id)
    .bind(&g.account_key)
    .bind(&g.account_id)
    .bind(&g.account_user_id)
    .bind(&g.account_name)
    .bind(&g.account_email)
    .bind(&g.scopes)
    .bind(&g.access_token)
    .bind(&g.refresh_token)
    .bind(&g.token_type)
    .bind(g.expires_at)
    .bind(&g.api_base_url)
    .bind(&g.status)
    .bind(&g.status_reason)
    .bind(g.connected_at)
    .bind(g.refreshed_at)
    .bind(g.created_at)
    .bind(g.updated_at)
    .bind(g.next_refresh_at)
    .bind(g.refresh_failures)
    .bind(g.retry_at)
    .bind(&g.last_error)
    .bind(g.revoked_at)
    .bind(g.refresh_lease_until)
    .bind(g.refresh_sends_in_doubt)
    .bind(g.token_generation)
    .bind(i64::from(g.refresh_rotates))
    .bind(g.refresh_doubt_since)
    .bind(&g.last_error_detail)
}

impl Store {
    /// Grants by status, for the metrics.
    pub async fn count_grants_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM grants GROUP BY status").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
