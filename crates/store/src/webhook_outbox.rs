//! The app's webhook endpoints and the durable outbox of deliveries to them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError, json_list};

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub id: String,
    pub app_id: String,
    pub url: String,
    /// Sealed signing secret.
    pub secret: Vec<u8>,
    pub event_types: Vec<String>,
    pub created_at: Millis,
    /// After a rotation: the sealed previous secret, which also signs until `previous_secret_until`.
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until: Option<Millis>,
}

impl std::fmt::Debug for WebhookEndpointRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointRecord").field("id", &self.id).field("url", &self.url).finish_non_exhaustive()
    }
}

/// One event for one endpoint. `message_id` is the Standard Webhooks `webhook-id`, the same on
/// every retry so receivers can deduplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDeliveryRecord {
    pub id: String,
    pub message_id: String,
    pub app_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub payload: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

const ENDPOINT_COLUMNS: &str =
    "id, app_id, url, secret, event_types, created_at, previous_secret, previous_secret_until";
const DELIVERY_COLUMNS: &str = "id, message_id, app_id, endpoint_id, event_type, payload, state, attempts, next_attempt_at, \
    last_status, last_error, created_at, delivered_at";

impl WebhookEndpointRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            event_types: json_list::decode(&row.try_get::<String, _>("event_types")?)?,
            created_at: row.try_get("created_at")?,
            previous_secret: row.try_get("previous_secret")?,
            previous_secret_until: row.try_get("previous_secret_until")?,
        })
    }
}

impl WebhookDeliveryRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            message_id: row.try_get("message_id")?,
            app_id: row.try_get("app_id")?,
            endpoint_id: row.try_get("endpoint_id")?,
            event_type: row.try_get("event_type")?,
            payload: row.try_get("payload")?,
            state: row.try_get("state")?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            last_status: row.try_get("last_status")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    }
}

fn insert_delivery(d: &WebhookDeliveryRecord) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(d.id.clone())
    .bind(d.message_id.clone())
    .bind(d.app_id.clone())
    .bind(d.endpoint_id.clone())
    .bind(d.event_type.clone())
    .bind(d.payload.clone())
    .bind(d.state.clone())
    .bind(d.attempts)
    .bind(d.next_attempt_at)
    .bind(d.last_status)
    .bind(d.last_error.clone())
    .bind(d.created_at)
    .bind(d.delivered_at)
}

/// Writes outbox rows inside a transaction that also holds the state change they announce, so
/// an event exists exactly when its change happened.
pub(crate) async fn insert_deliveries(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    deliveries: &[WebhookDeliveryRecord],
) -> Result<(), StoreError> {
    for d in deliveries {
        insert_delivery(d).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    pub async fn insert_webhook_endpoint(&self, e: &WebhookEndpointRecord) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(&e.id)
        .bind(&e.app_id)
        .bind(&e.url)
        .bind(&e.secret)
        .bind(json_list::encode(&e.event_types))
        .bind(e.created_at)
        .bind(&e.previous_secret)
        .bind(e.previous_secret_until)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn list_webhook_endpoints(&self, app_id: &str) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
        self.retrying(|| async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE app_id = $1 ORDER BY id"
            )))
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(WebhookEndpointRecord::from_row).collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn find_webhook_endpoint(&self, id: &str) -> Result<WebhookEndpointRecord, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(WebhookEndpointRecord::from_row(&row)?)
    }

    /// Replaces an endpoint's signing secret only if it still holds `expected` (two rotations at
    /// once: one wins, the other is `Conflict`), keeping `previous` as the previous secret.
    pub async fn rotate_webhook_secret(
        &self,
        app_id: &str,
        id: &str,
        expected: &[u8],
        secret: &[u8],
        previous: Option<&[u8]>,
        previous_until: Option<Millis>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, previous_secret_until = $3 \
             WHERE id = $4 AND app_id = $5 AND secret = $6",
        )
        .bind(secret)
        .bind(previous)
        .bind(previous_until)
        .bind(id)
        .bind(app_id)
        .bind(expected)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("the secret changed meanwhile"));
        }
        Ok(())
    }

    /// Puts a delivery of `app_id` back in the queue, due at `now` (its attempts are kept). A
    /// delivered one is left alone: `Ok(false)`.
    pub async fn retry_webhook_delivery(&self, app_id: &str, id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, lease_until = NULL \
             WHERE id = $2 AND app_id = $3 AND state <> 'delivered'",
        )
        .bind(now)
        .bind(id)
        .bind(app_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn find_webhook_delivery(&self, app_id: &str, id: &str) -> Result<WebhookDeliveryRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND app_id = $2"
        )))
        .bind(id)
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(WebhookDeliveryRecord::from_row(&row)?)
    }

    pub async fn delete_webhook_endpoint(&self, app_id: &str, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND app_id = $2")
            .bind(id)
            .bind(app_id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn insert_webhook_delivery(&self, d: &WebhookDeliveryRecord) -> Result<(), StoreError> {
        insert_delivery(d).execute(&self.writer).await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries for this worker until `lease_until` (each claim is a
    /// conditional UPDATE, so two vault instances never send the same attempt).
    pub async fn claim_due_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, StoreError> {
        let candidates = sqlx::query(
            "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let id: String = row.try_get("id")?;
            let done = sqlx::query(
                "UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2 AND state = 'pending' AND (lease_until IS NULL OR lease_until <= $3)",
            )
            .bind(lease_until)
            .bind(&id)
            .bind(now)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 1 {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
                )))
                .bind(&id)
                .fetch_one(&self.pool)
                .await?;
                claimed.push(WebhookDeliveryRecord::from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    /// Records an attempt: delivered, retried at `next_attempt_at`, or given up (`failed`).
    pub async fn record_delivery_attempt(
        &self,
        id: &str,
        state: &str,
        next_attempt_at: Millis,
        status: Option<i64>,
        error: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_status = $3, last_error = $4, \
             lease_until = NULL, delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END WHERE id = $6",
        )
        .bind(state)
        .bind(next_attempt_at)
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The delivery log of an app, newest last, after a cursor.
    pub async fn list_webhook_deliveries(
        &self,
        app_id: &str,
        endpoint_id: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE app_id = $1 AND ($2 = '' OR endpoint_id = $2) AND id > $3 ORDER BY id LIMIT $4"
        )))
        .bind(app_id)
        .bind(endpoint_id.unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(WebhookDeliveryRecord::from_row).collect::<Result<_, _>>()?)
    }
}

impl Store {
    /// Deliveries still pending, and how long the oldest has waited (ms), for the metrics.
    pub async fn webhook_outbox_state(&self, now: Millis) -> Result<(i64, Option<Millis>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<Millis> = row.try_get("oldest")?;
        Ok((row.try_get("n")?, oldest.map(|at| (now - at).max(0))))
    }
}
