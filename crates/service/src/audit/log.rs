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
    /// The export's format (`jsonl`, the default, or `csv`); not for pages.
    pub format: Option<String>,
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFormat {
    /// One JSON object per line (`application/x-ndjson`).
    JsonLines,
    /// A header row, then one row per event (`text/csv`); cells that a spreadsheet would run as a
    /// formula are prefixed with `'`.
    Csv,
}

impl AuditFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            AuditFormat::JsonLines => "application/x-ndjson",
            AuditFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            AuditFormat::JsonLines => "jsonl",
            AuditFormat::Csv => "csv",
        }
    }
}

const CSV_COLUMNS: [&str; 19] = [
    "id",
    "at",
    "action",
    "outcome",
    "grant_id",
    "end_user_id",
    "provider",
    "actor_type",
    "actor_id",
    "actor_reason",
    "agent_id",
    "api_key_id",
    "request_id",
    "method",
    "host",
    "path",
    "upstream_status",
    "latency_ms",
    "detail",
];

/// A cell a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab, CR) is written as text.
fn cell(value: Option<&str>) -> String {
    match value {
        Some(v) if v.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{v}"),
        Some(v) => v.to_owned(),
        None => String::new(),
    }
}

fn csv_row(e: &AuditEventView) -> Vec<String> {
    let actor = e.actor.as_ref();
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    vec![
        cell(Some(&e.id)),
        e.at.to_rfc3339(),
        cell(Some(&e.action)),
        cell(Some(&e.outcome)),
        cell(e.grant_id.as_deref()),
        cell(e.end_user_id.as_deref()),
        cell(e.provider.as_deref()),
        cell(actor.and_then(|a| a.kind.as_deref())),
        cell(actor.and_then(|a| a.id.as_deref())),
        cell(actor.and_then(|a| a.reason.as_deref())),
        cell(e.agent_id.as_deref()),
        cell(e.api_key_id.as_deref()),
        cell(e.request_id.as_deref()),
        cell(e.method.as_deref()),
        cell(e.host.as_deref()),
        cell(e.path.as_deref()),
        number(e.upstream_status),
        number(e.latency_ms),
        cell(e.detail.as_deref()),
    ]
}

fn parse_time(field: &str, text: &str) -> Result<i64, ServiceError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| ServiceError::invalid("invalid_time", format!("`{field}` must be an RFC 3339 time")))
}

impl Vault {
    /// A page of the app's audit log (pending entries are flushed first).
    pub async fn query_audit(&self, app_id: &str, query: &AuditQuery) -> Result<Vec<AuditEventView>, ServiceError> {
        if query.format.is_some() {
            return Err(ServiceError::invalid("invalid_query", "`format` applies to the export only"));
        }
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

    /// The newest `limit` events about one end user of the app, newest first (pending entries
    /// are flushed first).
    pub(crate) async fn latest_audit_of_end_user(
        &self,
        app_id: &str,
        end_user_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditEventView>, ServiceError> {
        self.flush_audit().await;
        let filter = AuditFilter { end_user_id: Some(end_user_id), ..AuditFilter::default() };
        Ok(self.store.latest_audit(app_id, &filter, limit).await?.into_iter().map(AuditEventView::from).collect())
    }

    /// The whole (filtered) audit log, oldest first, in `format` (from `query.format`: `jsonl`,
    /// the default, or `csv`). It is not paginated, so `limit` and `after` are refused rather than
    /// ignored.
    pub async fn export_audit(&self, app_id: &str, query: &AuditQuery) -> Result<(AuditFormat, String), ServiceError> {
        if query.limit.is_some() || query.after.is_some() {
            return Err(ServiceError::invalid(
                "invalid_query",
                "the export returns every matching event: it takes no `limit` or `after`",
            ));
        }
        let format = match query.format.as_deref() {
            None | Some("jsonl") => AuditFormat::JsonLines,
            Some("csv") => AuditFormat::Csv,
            Some(_) => return Err(ServiceError::invalid("invalid_query", "`format` is `jsonl` or `csv`")),
        };
        let internal = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("audit export: {e}"));
        let mut out = String::new();
        let mut csv = csv::Writer::from_writer(Vec::new());
        if format == AuditFormat::Csv {
            csv.write_record(CSV_COLUMNS).map_err(|e| internal(&e))?;
        }
        let max = crate::PageSize::AUDIT.max;
        let mut page = AuditQuery { limit: Some(max), format: None, ..query.clone() };
        loop {
            let events = self.query_audit(app_id, &page).await?;
            for event in &events {
                match format {
                    AuditFormat::JsonLines => {
                        out.push_str(&serde_json::to_string(event).map_err(|e| internal(&e))?);
                        out.push('\n');
                    }
                    AuditFormat::Csv => csv.write_record(csv_row(event)).map_err(|e| internal(&e))?,
                }
            }
            match events.last() {
                Some(last) if events.len() == max as usize => page.after = Some(last.id.clone()),
                _ => break,
            }
        }
        if format == AuditFormat::Csv {
            let bytes = csv.into_inner().map_err(|e| internal(&e))?;
            out = String::from_utf8(bytes).map_err(|e| internal(&e))?;
        }
        Ok((format, out))
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
