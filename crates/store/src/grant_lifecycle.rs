//! The writes of a grant's life after connect: the refresh lease, refresh results, failures,
//! re-authorization and revocation. Each is a single conditional UPDATE; the state changes the
//! app is told about run in one transaction with the outbox rows announcing them (`events`),
//! inserted only if the UPDATE applied: a crash loses both or neither. Every write of a
//! refresh's outcome names the refresh it belongs to ([`RefreshHold`]), so a holder that
//! outlived its lease can never clobber the result of a newer refresh.

use sqlx::Row;

use crate::webhook_outbox::insert_deliveries;
use crate::{Millis, Store, StoreError, WebhookDeliveryRecord};

/// New tokens from a refresh, already sealed.
#[derive(Clone)]
pub struct RefreshedTokens {
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    pub expires_at: Option<Millis>,
    pub api_base_url: Option<String>,
    pub scopes: Option<String>,
    pub next_refresh_at: Option<Millis>,
    pub refreshed_at: Millis,
    /// The answer carried a refresh token other than the one sent: the provider rotates.
    pub rotated: bool,
}

/// Which refresh an outcome write belongs to: the lease holder, and the token generation it
/// refreshed from ([`crate::GrantRecord::token_generation`]). The write happens only if both are
/// still current. The generation, not the ciphertext, identifies the tokens: a key rotation
/// re-sealing them in place changes nothing a refresh compares.
#[derive(Clone, Copy, Debug)]
pub struct RefreshHold<'a> {
    pub owner: &'a str,
    pub generation: i64,
}

impl RefreshHold<'_> {
    /// The SQL condition, its parameters numbered from `first`.
    fn condition(&self, first: usize) -> String {
        format!("refresh_lease_owner = ${first} AND token_generation = ${}", first + 1)
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>
    where
        Self: 'q,
    {
        query.bind(self.owner.to_owned()).bind(self.generation)
    }
}

/// The `needs_reauth` reasons a refresh result from the same token generation overrides: they
/// only say that this generation's refresh token was used up, which the result proves it was,
/// by the one who holds its successor.
pub const SPENT_TOKEN_REASONS: &[&str] = &["refresh_token_rejected", "refresh_response_lost"];

/// A grant due for a background refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueGrant {
    pub id: String,
    pub app_id: String,
    pub provider: String,
}

impl Store {
    /// Takes the refresh lease of a grant if nobody holds a live one. The lease bounds how long
    /// a crashed holder can block the grant: once `until` passes, anyone may take it. Active
    /// grants and `revoke_failed` ones (whose disconnect needs a live token) can be refreshed.
    pub async fn try_acquire_refresh_lease(
        &self,
        grant_id: &str,
        owner: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        self.retrying(|| async move {
            let done = sqlx::query(
                "UPDATE grants SET refresh_lease_owner = $1, refresh_lease_until = $2 \
                 WHERE id = $3 AND status IN ('active', 'revoke_failed') \
                 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $4 OR refresh_lease_owner = $1)",
            )
            .bind(owner)
            .bind(until)
            .bind(grant_id)
            .bind(now)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Extends a lease its owner still holds (the heartbeat of a holder at work). False means
    /// the lease is gone: released, or taken over after it ran out.
    pub async fn renew_refresh_lease(&self, grant_id: &str, owner: &str, until: Millis) -> Result<bool, StoreError> {
        self.retrying(|| async move {
            let done = sqlx::query(
                "UPDATE grants SET refresh_lease_until = $1 WHERE id = $2 AND refresh_lease_owner = $3 AND status IN ('active', 'revoke_failed')",
            )
            .bind(until)
            .bind(grant_id)
            .bind(owner)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    pub async fn release_refresh_lease(&self, grant_id: &str, owner: &str) -> Result<(), StoreError> {
        self.retrying(|| async move {
            sqlx::query("UPDATE grants SET refresh_lease_owner = NULL, refresh_lease_until = NULL WHERE id = $1 AND refresh_lease_owner = $2")
                .bind(grant_id)
                .bind(owner)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
        .await
    }

    /// Stores a refresh result and releases the lease, only if the grant still holds the token
    /// generation that was refreshed (`used_generation`); the stored generation then moves on by
    /// one. This compare-and-swap, not the lease, guarantees a newer token pair is never
    /// overwritten by an older one. It also wins over a `needs_reauth` recorded for the same
    /// generation by a spent-token verdict ([`SPENT_TOKEN_REASONS`]): that verdict was about the
    /// token this result replaces. A `revoke_failed` grant (refreshed so that its disconnect can
    /// be retried with a live token) stays `revoke_failed` and unscheduled.
    pub async fn complete_refresh(
        &self,
        grant_id: &str,
        used_generation: i64,
        tokens: &RefreshedTokens,
        events: &[WebhookDeliveryRecord],
    ) -> Result<bool, StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
        self.retrying(|| async move {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE grants SET access_token = $1, refresh_token = $2, expires_at = $3, api_base_url = COALESCE($4, api_base_url), \
                 scopes = COALESCE($5, scopes), next_refresh_at = CASE WHEN status = 'revoke_failed' THEN NULL ELSE $6 END, \
                 refreshed_at = $7, updated_at = $7, refresh_failures = 0, \
                 retry_at = NULL, last_error = NULL, last_error_detail = NULL, refresh_lease_owner = NULL, refresh_lease_until = NULL, refresh_sends_in_doubt = 0, \
                 refresh_doubt_since = NULL, token_generation = token_generation + 1, refresh_rotates = CASE WHEN $8 = 1 THEN 1 ELSE refresh_rotates END, \
                 status = CASE WHEN status = 'revoke_failed' THEN status ELSE 'active' END, \
                 status_reason = CASE WHEN status = 'revoke_failed' THEN status_reason ELSE NULL END \
                 WHERE id = $9 AND token_generation = $10 \
                 AND (status IN ('active', 'revoke_failed') OR (status = 'needs_reauth' AND status_reason IN ($11, $12)))",
            )
            .bind(&tokens.access_token)
            .bind(&tokens.refresh_token)
            .bind(tokens.expires_at)
            .bind(&tokens.api_base_url)
            .bind(&tokens.scopes)
            .bind(tokens.next_refresh_at)
            .bind(tokens.refreshed_at)
            .bind(i64::from(tokens.rotated))
            .bind(grant_id)
            .bind(used_generation)
            .bind(SPENT_TOKEN_REASONS[0])
            .bind(SPENT_TOKEN_REASONS[1])
            .execute(&mut *tx)
            .await?;
            Self::commit_with_events(tx, done.rows_affected() == 1, events).await
        })
        .await
    }).await
    }

    /// Records, before a rotating refresh token is sent, how many sends of it will then be in
    /// doubt (and optionally why, as `last_error`). Only the lease holder may do this, and only
    /// while the generation it is about to send is still the stored one; false means "do not send".
    pub async fn record_refresh_send(
        &self,
        grant_id: &str,
        hold: RefreshHold<'_>,
        sends_in_doubt: i64,
        last_error: Option<&str>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
        let sql = format!(
            "UPDATE grants SET refresh_sends_in_doubt = $1, last_error = COALESCE($2, last_error), \
             refresh_doubt_since = COALESCE(refresh_doubt_since, $3) WHERE id = $4 AND status IN ('active', 'revoke_failed') AND {}",
            hold.condition(5)
        );
        self.retrying(|| async {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(sends_in_doubt)
                .bind(last_error.map(str::to_owned))
                .bind(now)
                .bind(grant_id.to_owned());
            let done = hold.bind(query).execute(&self.writer).await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }).await
    }

    /// Records a temporary refresh failure: the grant stays active, retried at `retry_at`. Only
    /// for the refresh `hold` names; returns the failure count, 0 if the write did not apply.
    /// `sends_in_doubt`: earlier sends of the token whose answers are still unknown (the failed
    /// send itself was answered, so it is not one of them).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_refresh_failure(
        &self,
        grant_id: &str,
        hold: RefreshHold<'_>,
        retry_at: Millis,
        error: &str,
        detail: &str,
        now: Millis,
        sends_in_doubt: i64,
    ) -> Result<i64, StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
        let sql = format!(
            "UPDATE grants SET refresh_failures = refresh_failures + 1, retry_at = $1, next_refresh_at = $1, last_error = $2, updated_at = $3, \
             refresh_sends_in_doubt = $4, refresh_doubt_since = CASE WHEN $4 = 0 THEN NULL ELSE refresh_doubt_since END, \
             refresh_lease_owner = NULL, refresh_lease_until = NULL, last_error_detail = $5 \
             WHERE id = $6 AND status = 'active' AND {} RETURNING refresh_failures",
            hold.condition(7)
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(retry_at)
            .bind(error.to_owned())
            .bind(now)
            .bind(sends_in_doubt)
            .bind(detail.to_owned())
            .bind(grant_id.to_owned());
        let row = hold.bind(query).fetch_optional(&self.writer).await?;
        Ok(row.map(|r| r.try_get("refresh_failures")).transpose()?.unwrap_or(0))
    }).await
    }

    /// The provider said the grant is dead: stop refreshing, keep the row and tokens, and say why.
    /// With a `hold`, only if that refresh is still the current one. Returns false if nothing
    /// changed (not active any more, or a newer refresh happened).
    /// `detail`: the provider's answer that settled it, in words (kept as `last_error_detail`).
    pub async fn mark_needs_reauth(
        &self,
        grant_id: &str,
        reason: &str,
        detail: Option<&str>,
        now: Millis,
        hold: Option<RefreshHold<'_>>,
        events: &[WebhookDeliveryRecord],
    ) -> Result<bool, StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
        let guard = hold.map(|h| format!(" AND {}", h.condition(5))).unwrap_or_default();
        let sql = format!(
            "UPDATE grants SET status = 'needs_reauth', status_reason = $1, next_refresh_at = NULL, retry_at = NULL, updated_at = $2, \
             refresh_lease_owner = NULL, refresh_lease_until = NULL, last_error_detail = COALESCE($3, last_error_detail) \
             WHERE id = $4 AND status = 'active'{guard}"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(reason.to_owned())
            .bind(now)
            .bind(detail.map(str::to_owned))
            .bind(grant_id.to_owned());
        let query = match &hold {
            Some(h) => h.bind(query),
            None => query,
        };
        let mut tx = self.begin_write().await?;
        let changed = query.execute(&mut *tx).await?.rows_affected() == 1;
        Self::commit_with_events(tx, changed, events).await
    }).await
    }

    /// Marks a revocation attempt that failed at the provider: tokens are kept for a retry.
    /// `error` is the machine-readable code, `detail` the provider's answer in words.
    pub async fn mark_revoke_failed(
        &self,
        grant_id: &str,
        error: &str,
        detail: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
        sqlx::query(
            "UPDATE grants SET status = 'revoke_failed', last_error = $1, last_error_detail = $2, next_refresh_at = NULL, \
             updated_at = $3, refresh_lease_owner = NULL, refresh_lease_until = NULL WHERE id = $4 AND status <> 'revoked'",
        )
        .bind(error)
        .bind(detail)
        .bind(now)
        .bind(grant_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }).await
    }

    /// Erases a grant's tokens and the provider webhooks recorded for it, and leaves a tombstone.
    /// Returns false if it was already revoked (then nothing is written).
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        reason: &str,
        now: Millis,
        events: &[WebhookDeliveryRecord],
    ) -> Result<bool, StoreError> {
        self.announcing(crate::ChangeKind::Grant, grant_id, async move {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE grants SET status = 'revoked', status_reason = $1, access_token = NULL, refresh_token = NULL, \
             next_refresh_at = NULL, retry_at = NULL, revoked_at = $2, updated_at = $2, refresh_lease_owner = NULL, \
             refresh_lease_until = NULL WHERE id = $3 AND status <> 'revoked'",
            )
            .bind(reason)
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
            let changed = done.rows_affected() == 1;
            if changed {
                sqlx::query("DELETE FROM provider_webhooks WHERE grant_id = $1")
                    .bind(grant_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::commit_with_events(tx, changed, events).await
        })
        .await
    }

    /// Inserts `events` if the change they announce happened, and commits.
    pub(crate) async fn commit_with_events(
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        changed: bool,
        events: &[WebhookDeliveryRecord],
    ) -> Result<bool, StoreError> {
        if changed {
            insert_deliveries(&mut tx, events).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Active grants whose scheduled refresh time has come and that are not leased, soonest
    /// first. A grant backing off after a failure is not among them: its `next_refresh_at` is
    /// its retry time, so a pass never reads the grants that wait for theirs.
    pub async fn due_grants(&self, now: Millis, limit: i64) -> Result<Vec<DueGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, app_id, provider FROM grants WHERE status = 'active' AND next_refresh_at IS NOT NULL AND next_refresh_at <= $1 \
             AND (retry_at IS NULL OR retry_at <= $1) AND (refresh_lease_until IS NULL OR refresh_lease_until <= $1) \
             ORDER BY next_refresh_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueGrant { id: r.try_get("id")?, app_id: r.try_get("app_id")?, provider: r.try_get("provider")? })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// A grant by id alone (background work and provider webhooks carry no app credentials).
    pub async fn find_grant(&self, id: &str) -> Result<crate::GrantRecord, StoreError> {
        let app_id: Option<String> = self
            .retrying(|| async move {
                Ok(sqlx::query("SELECT app_id FROM grants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get("app_id"))
                    .transpose()?)
            })
            .await?;
        match app_id {
            Some(app_id) => self.get_grant(&app_id, id).await,
            None => Err(StoreError::NotFound),
        }
    }

    /// Grants of a provider configuration for one provider account (provider webhooks).
    pub async fn grants_for_account(
        &self,
        provider_config_id: &str,
        account_key: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM grants WHERE provider_config_id = $1 AND account_key = $2 ORDER BY id")
            .bind(provider_config_id)
            .bind(account_key)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get("id")).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }
}
