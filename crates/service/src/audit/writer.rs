//! How audit rows reach the database.
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

use tokenvault_store::{AuditRecord, Store};
use tokio::sync::{mpsc, oneshot};

use crate::audit::entry::AuditEntry;
use crate::{IdKind, ServiceError, Vault};

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
}
