//! The audit log: every token retrieval, proxied call, policy decision, connect, refresh,
//! revoke and configuration change, with app, grant, end user, provider, actor and request id.
//! Never a secret, token, body or query value (a proxied path is recorded with its query keys
//! only).
//!
//! Writes are batched: entries go to a bounded in-memory queue and one writer task appends them
//! in transactions of up to 500 rows (group commit). A token handed out is audited durably: the
//! caller waits until its row is committed before the token leaves the vault, and when the
//! audit store cannot be written the retrieval fails closed with 503 `audit_unavailable`; so
//! does every proxied call while the writer's last write failed. Other rows (proxied calls,
//! failures, configuration changes) are not waited for: rows that could not be written are kept
//! and written again once the database answers. What a crash (SIGKILL, power loss) can lose is
//! therefore only rows of that kind still queued, at most the last few milliseconds of them;
//! never the row of a token handed out. [`Vault::flush_audit`] waits until everything sent so
//! far is stored; the binary calls it on shutdown so a clean stop loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokenvault_store::{AuditFilter, AuditRecord, GrantRecord, Store};
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::policies::{Access, PolicyScope};
use crate::{CallContext, IdKind, ServiceError, Timestamp, Vault};

/// An entry before it is stamped with an id and a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditEntry {
    pub record: AuditRecord,
}

fn with_context(mut record: AuditRecord, context: &CallContext) -> AuditRecord {
    record.actor_type = context.actor.kind.clone();
    record.actor_id = context.actor.id.clone();
    record.actor_reason = context.actor.reason.clone();
    record.request_id = (!context.request_id.is_empty()).then(|| context.request_id.clone());
    record
}

pub(crate) fn outcome_of(error: Option<&ServiceError>) -> (String, Option<String>) {
    match error {
        None => ("success".into(), None),
        Some(ServiceError::Forbidden { code, message }) if *code == "policy_denied" => {
            ("denied".into(), Some(message.clone()))
        }
        Some(ServiceError::RateLimited { message, .. }) => ("denied".into(), Some(message.clone())),
        Some(other) => ("failure".into(), Some(error_code(other).into())),
    }
}

pub(crate) fn error_code(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Invalid { code, .. }
        | ServiceError::Unauthenticated { code, .. }
        | ServiceError::Forbidden { code, .. }
        | ServiceError::Conflict { code, .. }
        | ServiceError::Gone { code, .. }
        | ServiceError::Unavailable { code, .. }
        | ServiceError::Gateway { code, .. } => code,
        ServiceError::NotFound { .. } => "not_found",
        ServiceError::RateLimited { .. } => "rate_limited",
        ServiceError::Internal(_) => "internal_error",
    }
}

/// A path with its query reduced to parameter names.
pub(crate) fn path_without_values(url: &Url) -> String {
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=")).collect();
    if keys.is_empty() { url.path().to_owned() } else { format!("{}?{}", url.path(), keys.join("&")) }
}

impl AuditEntry {
    /// A token retrieval (or another access to a grant). On success `detail` carries the policy
    /// decision that allowed it (see [`Vault::check_policies`]).
    pub(crate) fn for_grant(
        grant: &GrantRecord,
        action: &str,
        error: Option<&ServiceError>,
        decision: Option<String>,
        context: &CallContext,
    ) -> Self {
        let (outcome, error_detail) = outcome_of(error);
        let detail = if error.is_none() { decision } else { error_detail };
        let record = AuditRecord {
            app_id: grant.app_id.clone(),
            action: action.into(),
            outcome,
            detail,
            grant_id: Some(grant.id.clone()),
            end_user_id: Some(grant.end_user_id.clone()),
            provider: Some(grant.provider.clone()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// The start of a proxied call's row; [`crate::proxy_audit::ProxyAudit`] fills in the rest as
    /// the call proceeds and writes it once, when the call ends.
    pub(crate) fn proxy(app_id: &str, method: &http::Method, context: &CallContext) -> Self {
        let record = AuditRecord {
            app_id: app_id.to_owned(),
            action: "proxy.request".into(),
            outcome: "success".into(),
            method: Some(method.as_str().to_owned()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    pub(crate) fn denied(
        scope: &PolicyScope,
        access: &Access<'_>,
        error: &ServiceError,
        context: &CallContext,
    ) -> Self {
        let (method, path) = match access {
            Access::Token => (None, None),
            Access::Proxy { method, path } => {
                (Some((*method).to_owned()), Some(path.split('?').next().unwrap_or_default().to_owned()))
            }
        };
        let record = AuditRecord {
            app_id: scope.app_id.clone(),
            action: "policy.decision".into(),
            outcome: "denied".into(),
            detail: Some(error.to_string()),
            grant_id: Some(scope.grant_id.clone()),
            end_user_id: scope.end_user_id.clone(),
            provider: Some(scope.provider.clone()),
            method,
            path,
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// A configuration change; `detail` names the object changed.
    pub(crate) fn config(app_id: &str, action: &str, object_id: &str, context: &CallContext) -> Self {
        let record = AuditRecord {
            app_id: app_id.to_owned(),
            action: action.into(),
            outcome: "success".into(),
            detail: Some(object_id.to_owned()),
            ..AuditRecord::default()
        };
        Self { record: with_context(record, context) }
    }

    /// Attributes the entry to the call that caused it (actor and request id).
    pub(crate) fn by(self, context: &CallContext) -> Self {
        Self { record: with_context(self.record, context) }
    }

    pub(crate) fn grant_event(grant: &GrantRecord, action: &str, reason: Option<&str>) -> Self {
        Self {
            record: AuditRecord {
                app_id: grant.app_id.clone(),
                action: action.into(),
                outcome: "success".into(),
                grant_id: Some(grant.id.clone()),
                end_user_id: Some(grant.end_user_id.clone()),
                provider: Some(grant.provider.clone()),
                detail: reason.map(str::to_owned),
                ..AuditRecord::default()
            },
        }
    }
}

/// Rows waiting for the writer at most; a caller that must wait for its row waits for room.
const QUEUE_CAPACITY: usize = 10_000;
/// Rows kept for a later attempt while the database is down, at most (then the oldest go, loudly).
const RETRY_CAPACITY: usize = 100_000;
const BATCH_ROWS: usize = 500;

/// How long a call waits for room in a full audit queue before it is refused.
const RESERVE_WAIT: Duration = Duration::from_secs(5);

/// Room for one row in the writer's queue, taken before the audited action starts.
pub(crate) struct Reserved {
    permit: mpsc::OwnedPermit<AuditCommand>,
    sink: AuditSink,
}

impl Reserved {
    /// Queues the row in the room reserved for it (never full, never waits).
    pub(crate) fn record(self, entry: AuditEntry) {
        let record = self.sink.stamp(entry);
        self.permit.send(AuditCommand::Entry(record, None));
    }
}

/// Whether an audited action may go ahead: the row committed (durable), or at least the writer
/// able to write.
pub(crate) type Committed = oneshot::Sender<bool>;

#[allow(clippy::large_enum_variant)]
pub(crate) enum AuditCommand {
    Entry(AuditRecord, Option<Committed>),
    Flush(oneshot::Sender<()>),
}

/// The writer's end as the rest of the vault sees it.
#[derive(Clone)]
pub(crate) struct AuditQueue {
    tx: mpsc::Sender<AuditCommand>,
    /// False while the last write failed: proxied calls and token retrievals fail closed.
    healthy: Arc<AtomicBool>,
}

impl AuditQueue {
    /// Rows waiting for the writer.
    pub(crate) fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the writer task; returns its queue.
pub(crate) fn spawn_writer(store: Store, metrics: Arc<crate::Metrics>) -> AuditQueue {
    let (tx, rx) = mpsc::channel::<AuditCommand>(QUEUE_CAPACITY);
    let healthy = Arc::new(AtomicBool::new(true));
    tokio::spawn(run_writer(store, rx, healthy.clone(), metrics));
    AuditQueue { tx, healthy }
}

async fn run_writer(
    store: Store,
    mut rx: mpsc::Receiver<AuditCommand>,
    healthy: Arc<AtomicBool>,
    metrics: Arc<crate::Metrics>,
) {
    let mut kept: Vec<AuditRecord> = Vec::new();
    let mut delay = Duration::from_millis(100);
    loop {
        let first = if kept.is_empty() && healthy.load(Ordering::SeqCst) {
            rx.recv().await
        } else {
            // Rows are waiting for the database, or it failed last time: try again after a
            // pause, or with the next command.
            match tokio::time::timeout(delay, rx.recv()).await {
                Ok(command) => command,
                Err(_) => {
                    if kept.is_empty() && store.is_ready().await {
                        healthy.store(true, Ordering::SeqCst);
                    }
                    Some(AuditCommand::Flush(oneshot::channel().0))
                }
            }
        };
        let Some(first) = first else { break };
        let mut batch: Vec<AuditRecord> = std::mem::take(&mut kept);
        let mut durable: Vec<(usize, Committed)> = Vec::new();
        let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                AuditCommand::Entry(record, committed) => {
                    if let Some(committed) = committed {
                        durable.push((batch.len(), committed));
                    }
                    batch.push(record);
                }
                AuditCommand::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH_ROWS {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            let written = store.append_audit(&batch).await;
            metrics.audit_write(started.elapsed());
            match written {
                Ok(()) => {
                    healthy.store(true, Ordering::SeqCst);
                    delay = Duration::from_millis(100);
                    for (_, committed) in durable {
                        let _ = committed.send(true);
                    }
                }
                Err(error) => {
                    healthy.store(false, Ordering::SeqCst);
                    delay = (delay * 2).min(Duration::from_secs(5));
                    // The callers waiting for their rows fail closed (the token is not handed
                    // out, so its row would be untrue); the rest is kept for the next attempt.
                    let mut refused: Vec<usize> = durable.iter().map(|(i, _)| *i).collect();
                    refused.sort_unstable();
                    for (_, committed) in durable {
                        let _ = committed.send(false);
                    }
                    kept = batch
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| refused.binary_search(i).is_err())
                        .map(|(_, r)| r)
                        .collect();
                    if kept.len() > RETRY_CAPACITY {
                        let dropped = kept.len() - RETRY_CAPACITY;
                        kept.drain(..dropped);
                        tracing::error!(dropped, "audit rows lost: the database has been unavailable too long");
                    }
                    tracing::error!(error = %error, kept = kept.len(), "audit rows could not be written; token retrieval and proxying are refused until they can");
                }
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
    if !kept.is_empty() && store.append_audit(&kept).await.is_err() {
        tracing::error!(rows = kept.len(), "audit rows lost at shutdown: the database did not answer");
    }
}

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

/// Where audit entries go: a cheap handle that can outlive the request (a proxied response body
/// writes its row when the stream ends, after the handler returned).
#[derive(Clone)]
pub(crate) struct AuditSink {
    queue: AuditQueue,
    clock: Arc<dyn crate::Clock>,
}

impl AuditSink {
    fn stamp(&self, entry: AuditEntry) -> AuditRecord {
        let mut record = entry.record;
        record.id = IdKind::AuditEvent.generate();
        record.at = self.clock.now().as_millis();
        record
    }

    /// Queues the entry without waiting. A full queue (the database far behind) drops the row
    /// loudly and marks the writer unhealthy, so token retrieval and proxying stop.
    pub(crate) fn record(&self, entry: AuditEntry) {
        let record = self.stamp(entry);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.tx.try_send(AuditCommand::Entry(record, None)) {
            self.queue.healthy.store(false, Ordering::SeqCst);
            tracing::error!(
                "audit queue full: an audit row was lost; token retrieval and proxying are refused until it drains"
            );
        }
    }

    /// Queues the entry and waits until it is committed; an error if it could not be.
    pub(crate) async fn record_durably(&self, entry: AuditEntry) -> Result<(), ServiceError> {
        let record = self.stamp(entry);
        let (committed, outcome) = oneshot::channel();
        let sent = self.queue.tx.send(AuditCommand::Entry(record, Some(committed))).await.is_ok();
        match sent && outcome.await.unwrap_or(false) {
            true => Ok(()),
            false => Err(audit_unavailable()),
        }
    }

    /// Reserves room in the queue for a row that will be written later (a proxied call's row is
    /// written when its response body ends). Under load this waits for the writer to make room
    /// (backpressure) instead of losing the row; only a writer that makes no room within
    /// [`RESERVE_WAIT`] refuses the call.
    pub(crate) async fn reserve(&self) -> Result<Reserved, ServiceError> {
        match tokio::time::timeout(RESERVE_WAIT, self.queue.tx.clone().reserve_owned()).await {
            Ok(Ok(permit)) => Ok(Reserved { permit, sink: self.clone() }),
            Ok(Err(_)) => {
                tracing::error!("the audit writer has stopped: a proxied call is refused");
                Err(audit_unavailable())
            }
            Err(_) => {
                tracing::error!("audit queue full for too long: a proxied call is refused");
                Err(audit_unavailable())
            }
        }
    }

    /// Refuses an audited action while rows cannot be written.
    pub(crate) fn ensure_writable(&self) -> Result<(), ServiceError> {
        match self.queue.healthy.load(Ordering::SeqCst) {
            true => Ok(()),
            false => Err(audit_unavailable()),
        }
    }
}

fn audit_unavailable() -> ServiceError {
    ServiceError::Unavailable {
        code: "audit_unavailable",
        message: "the audit log cannot be written right now, so credentials are not used; retry shortly".into(),
        retry_after_seconds: Some(1),
    }
}

impl Vault {
    /// Records an audit entry (non-blocking).
    pub(crate) fn audit(&self, entry: AuditEntry) {
        self.audit_sink().record(entry);
    }

    pub(crate) fn audit_sink(&self) -> AuditSink {
        AuditSink { queue: self.audit_queue.clone(), clock: self.clock.clone() }
    }

    /// Waits until every audit entry recorded so far is stored (or could not be, once).
    pub async fn flush_audit(&self) {
        let (done, wait) = oneshot::channel();
        if self.audit_queue.tx.send(AuditCommand::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// A page of the app's audit log (pending entries are flushed first).
    pub async fn query_audit(&self, app_id: &str, query: &AuditQuery) -> Result<Vec<AuditEventView>, ServiceError> {
        self.flush_audit().await;
        let filter = AuditFilter {
            grant_id: query.grant_id.as_deref(),
            end_user_id: query.end_user_id.as_deref(),
            provider: query.provider.as_deref(),
            actor_id: query.actor_id.as_deref(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sink_with_room_for(rows: usize) -> (AuditSink, mpsc::Receiver<AuditCommand>) {
        let (tx, rx) = mpsc::channel(rows);
        let queue = AuditQueue { tx, healthy: Arc::new(AtomicBool::new(true)) };
        (AuditSink { queue, clock: Arc::new(crate::clock::SystemClock) }, rx)
    }

    fn entry(action: &str) -> AuditEntry {
        AuditEntry { record: AuditRecord { action: action.into(), ..AuditRecord::default() } }
    }

    /// A full queue makes a proxied call wait for room (backpressure), and the row is then
    /// written; no row is lost and nothing is refused while the writer keeps up eventually.
    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_callers_wait_for_room_not_fail() {
        let (sink, mut rx) = sink_with_room_for(1);
        let first = sink.reserve().await.expect("room");
        let waiting = tokio::spawn({
            let sink = sink.clone();
            async move { sink.reserve().await.map(|slot| slot.record(entry("second"))) }
        });
        tokio::time::sleep(RESERVE_WAIT / 2).await;
        assert!(!waiting.is_finished(), "the second caller waits while the queue is full");
        first.record(entry("first"));
        let Some(AuditCommand::Entry(row, None)) = rx.recv().await else { panic!("the first row") };
        assert_eq!(row.action, "first");
        waiting.await.unwrap().expect("room once the writer took a row");
        let Some(AuditCommand::Entry(row, None)) = rx.recv().await else { panic!("the second row") };
        assert_eq!(row.action, "second");
        assert!(sink.queue.healthy.load(Ordering::SeqCst), "waiting is not a failure");
    }

    /// A writer that makes no room at all within the wait refuses the call with the usual error.
    #[tokio::test(start_paused = true)]
    async fn a_writer_that_makes_no_room_refuses_after_the_wait() {
        let (sink, _rx) = sink_with_room_for(1);
        let _held = sink.reserve().await.expect("room");
        let refused = sink.reserve().await.err().expect("refused");
        assert!(matches!(refused, ServiceError::Unavailable { code: "audit_unavailable", .. }));
    }

    #[test]
    fn query_values_are_dropped() {
        let url = Url::parse("https://api.zoom.us/v2/users?page_size=30&next_page_token=secretish").unwrap();
        assert_eq!(path_without_values(&url), "/v2/users?page_size=&next_page_token=");
    }
}
