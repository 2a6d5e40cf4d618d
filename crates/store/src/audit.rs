use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Millis, Store, StoreError};

/// One audit row. Never holds a token, a secret, a body or a query value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    pub id: String,
    pub app_id: String,
    pub at: Millis,
    pub action: String,
    pub outcome: String,
    pub grant_id: Option<String>,
    pub end_user_id: Option<String>,
    pub provider: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub actor_reason: Option<String>,
    pub request_id: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream_status: Option<i64>,
    pub latency_ms: Option<i64>,
    /// Proxied calls: body bytes received from the caller.
    pub request_bytes: Option<i64>,
    /// Proxied calls: body bytes passed back to the caller.
    pub response_bytes: Option<i64>,
    pub detail: Option<String>,
    /// The verified agent that acted (its key's agent), if any.
    pub agent_id: Option<String>,
    /// The API key the call was made with, if any.
    pub api_key_id: Option<String>,
}

/// Filters of an audit query; empty strings and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub grant_id: Option<&'a str>,
    pub end_user_id: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
}

const COLUMNS: &str = "id, app_id, at, action, outcome, grant_id, end_user_id, provider, actor_type, actor_id, actor_reason, \
    request_id, method, host, path, upstream_status, latency_ms, detail, request_bytes, response_bytes, agent_id, api_key_id";

impl AuditRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app_id: row.try_get("app_id")?,
            at: row.try_get("at")?,
            action: row.try_get("action")?,
            outcome: row.try_get("outcome")?,
            grant_id: row.try_get("grant_id")?,
            end_user_id: row.try_get("end_user_id")?,
            provider: row.try_get("provider")?,
            actor_type: row.try_get("actor_type")?,
            actor_id: row.try_get("actor_id")?,
            actor_reason: row.try_get("actor_reason")?,
            request_id: row.try_get("request_id")?,
            method: row.try_get("method")?,
            host: row.try_get("host")?,
            path: row.try_get("path")?,
            upstream_status: row.try_get("upstream_status")?,
            latency_ms: row.try_get("latency_ms")?,
            detail: row.try_get("detail")?,
            request_bytes: row.try_get("request_bytes")?,
            response_bytes: row.try_get("response_bytes")?,
            agent_id: row.try_get("agent_id")?,
            api_key_id: row.try_get("api_key_id")?,
        })
    }
}

impl Store {
    /// Appends a batch of audit rows in one transaction.
    /// Appends a batch of rows: one multi-row INSERT per [`AUDIT_ROWS_PER_STATEMENT`] rows (a
    /// single statement needs no transaction; a larger batch is one transaction), so a batch
    /// costs one round trip and one commit, not one per row. Safe to repeat: ids are unique and
    /// a row already written is skipped.
    pub async fn append_audit(&self, batch: &[AuditRecord]) -> Result<(), StoreError> {
        self.retrying(|| async move {
            let chunks: Vec<&[AuditRecord]> = batch.chunks(AUDIT_ROWS_PER_STATEMENT).collect();
            match chunks.as_slice() {
                [] => {}
                [one] => {
                    insert_audit_rows(one).execute(&self.writer).await?;
                }
                many => {
                    let mut tx = self.begin_write().await?;
                    for chunk in many {
                        insert_audit_rows(chunk).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn query_audit(
        &self,
        app_id: &str,
        filter: &AuditFilter<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_page(app_id, filter, after, limit, "ASC").await
    }

    /// The newest `limit` events matching `filter`, newest first.
    pub async fn latest_audit(
        &self,
        app_id: &str,
        filter: &AuditFilter<'_>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_page(app_id, filter, None, limit, "DESC").await
    }

    async fn audit_page(
        &self,
        app_id: &str,
        filter: &AuditFilter<'_>,
        after: Option<&str>,
        limit: i64,
        order: &'static str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE app_id = $1 AND id > $2 \
             AND ($3 = '' OR grant_id = $3) AND ($4 = '' OR end_user_id = $4) AND ($5 = '' OR provider = $5) \
             AND ($6 = '' OR actor_id = $6) AND ($7 = '' OR action = $7) AND ($8 = '' OR outcome = $8) \
             AND at >= $9 AND at <= $10 AND ($12 = '' OR agent_id = $12) ORDER BY id {order} LIMIT $11"
        )))
        .bind(app_id)
        .bind(after.unwrap_or(""))
        .bind(filter.grant_id.unwrap_or(""))
        .bind(filter.end_user_id.unwrap_or(""))
        .bind(filter.provider.unwrap_or(""))
        .bind(filter.actor_id.unwrap_or(""))
        .bind(filter.action.unwrap_or(""))
        .bind(filter.outcome.unwrap_or(""))
        .bind(filter.from.unwrap_or(i64::MIN))
        .bind(filter.to.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(filter.agent_id.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(AuditRecord::from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes audit rows older than `before` (retention).
    pub async fn purge_audit(&self, before: Millis) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}

/// Rows per INSERT statement (22 parameters each, well under both databases' limits).
const AUDIT_ROWS_PER_STATEMENT: usize = 100;

fn insert_audit_rows(rows: &[AuditRecord]) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    let tuples: Vec<String> = (0..rows.len())
        .map(|i| {
            let params: Vec<String> = (1..=22).map(|p| format!("${}", i * 22 + p)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING", tuples.join(", "));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        query = query
            .bind(&r.id)
            .bind(&r.app_id)
            .bind(r.at)
            .bind(&r.action)
            .bind(&r.outcome)
            .bind(&r.grant_id)
            .bind(&r.end_user_id)
            .bind(&r.provider)
            .bind(&r.actor_type)
            .bind(&r.actor_id)
            .bind(&r.actor_reason)
            .bind(&r.request_id)
            .bind(&r.method)
            .bind(&r.host)
            .bind(&r.path)
            .bind(r.upstream_status)
            .bind(r.latency_ms)
            .bind(&r.detail)
            .bind(r.request_bytes)
            .bind(r.response_bytes)
            .bind(&r.agent_id)
            .bind(&r.api_key_id);
    }
    query
}
