//! Reading the audit log back (filters, cursor pages) and keeping it only as long as configured.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokenvault_store::{AuditFilter, AuditRecord};

use crate::{IdKind, ServiceError, Timestamp, Vault};

/// One audit event as the app reads it.
#[derive(Debug, Serialize)]
pub struct AuditEventView {
    pub id: String,
    pub at: Timestamp,
    pub action: String,
    pub outcome: String,
    pub grant_id: Option<String>,
    pub end_user_id: Option<String>,
    pub provider: Option<String>,
    pub actor: Option<crate::Actor>,
    pub request_id: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream_status: Option<i64>,
    pub latency_ms: Option<i64>,
    /// Proxied calls: body bytes received from the caller.
    pub request_bytes: Option<i64>,
    /// Proxied calls: body bytes passed back to the caller (counted until the stream ended).
    pub response_bytes: Option<i64>,
    pub detail: Option<String>,
    /// The verified agent that acted (its agent key), if any.
    pub agent_id: Option<String>,
    /// The API key the call was made with, if any.
    pub api_key_id: Option<String>,
}

impl From<AuditRecord> for AuditEventView {
    fn from(r: AuditRecord) -> Self {
        let actor = (r.actor_type.is_some() || r.actor_id.is_some() || r.actor_reason.is_some())
            .then_some(crate::Actor { kind: r.actor_type, id: r.actor_id, reason: r.actor_reason });
        AuditEventView {
            id: r.id,
            at: Timestamp::from_millis(r.at),
            action: r.action,
            outcome: r.outcome,
            grant_id: r.grant_id,
            end_user_id: r.end_user_id,
            provider: r.provider,
            actor,
            request_id: r.request_id,
            method: r.method,
            host: r.host,
            path: r.path,
            upstream_status: r.upstream_status,
            latency_ms: r.latency_ms,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            detail: r.detail,
            agent_id: r.agent_id,
            api_key_id: r.api_key_id,
        }
    }
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub grant_id: Option<String>,
    pub end_user_id: Option<String>,
    pub provider: Option<String>,
    pub actor_id: Option<String>,
    /// The verified agent (its agent key) that acted.
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339.
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

fn parse_time(field: &str, text: &str) -> Result<i64, ServiceError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| ServiceError::invalid("invalid_time", format!("`{field}` must be an RFC 3339 time")))
}

impl Vault {
    /// A page of the app's audit log (pending entries are flushed first).
    pub async fn query_audit(&self, app_id: &str, query: &AuditQuery) -> Result<Vec<AuditEventView>, ServiceError> {
        self.flush_audit().await;
        let filter = AuditFilter {
            grant_id: query.grant_id.as_deref(),
            end_user_id: query.end_user_id.as_deref(),
            provider: query.provider.as_deref(),
            actor_id: query.actor_id.as_deref(),
            agent_id: query.agent_id.as_deref(),
            action: query.action.as_deref(),
            outcome: query.outcome.as_deref(),
            from: query.from.as_deref().map(|t| parse_time("from", t)).transpose()?,
            to: query.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        };
        let after = query.after.as_deref().map(|a| IdKind::AuditEvent.parse(a)).transpose()?;
        let limit = i64::from(crate::PageSize::AUDIT.resolve(query.limit)?);
        Ok(self
            .store
            .query_audit(app_id, &filter, after.as_deref(), limit)
            .await?
            .into_iter()
            .map(AuditEventView::from)
            .collect())
    }

    /// Deletes audit rows older than the configured retention (one pass of the hourly worker);
    /// returns how many.
    pub async fn purge_expired_audit(&self) -> Result<u64, ServiceError> {
        let before = self.now().as_millis() - self.config.audit_retention.as_millis() as i64;
        Ok(self.store.purge_audit(before).await?)
    }

    /// Deletes audit rows past the configured retention once an hour until `shutdown` fires.
    pub async fn run_audit_retention(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let what = "audit rows past retention deleted";
        crate::periodic::run_sweep(Duration::from_secs(3600), shutdown, what, || self.purge_expired_audit()).await
    }
}
