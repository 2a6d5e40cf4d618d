//! The background refresher: refreshes grants shortly before they expire (and idle Zoom grants
//! before their refresh token dies), with bounded concurrency per provider. Its schedule lives
//! in the database (`next_refresh_at`), so it survives restarts and is shared by all instances;
//! the refresh lease keeps two instances from refreshing one grant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::lifecycle::refresh::RefreshOutcome;
use crate::{ServiceError, Vault};

/// Due grants one refresher pass takes at most.
pub const REFRESH_PASS_LIMIT: i64 = 1000;

/// Per-provider concurrency limits, and the highest concurrency seen (for tests and metrics).
pub(crate) struct RefreshLimits {
    per_provider: usize,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: AtomicUsize,
}

impl RefreshLimits {
    pub(crate) fn new(per_provider: usize) -> Self {
        Self {
            per_provider: per_provider.max(1),
            semaphores: Mutex::default(),
            in_flight: Mutex::default(),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    fn semaphore(&self, provider: &str) -> Arc<Semaphore> {
        self.semaphores
            .lock()
            .expect("poisoned")
            .entry(provider.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_provider)))
            .clone()
    }

    fn enter(&self, provider: &str) {
        let mut in_flight = self.in_flight.lock().expect("poisoned");
        let n = in_flight.entry(provider.to_owned()).or_default();
        *n += 1;
        self.max_in_flight.fetch_max(*n, Ordering::SeqCst);
    }

    fn leave(&self, provider: &str) {
        if let Some(n) = self.in_flight.lock().expect("poisoned").get_mut(provider) {
            *n -= 1;
        }
    }
}

/// What one pass of the refresher did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RefresherReport {
    pub due: usize,
    pub refreshed: usize,
    pub needs_reauth: usize,
    pub retry_later: usize,
    pub failed: usize,
    /// Highest number of refreshes of one provider running at once, since the vault started.
    pub max_concurrency_seen: usize,
}

impl Vault {
    /// One pass: refreshes every grant due now (up to `limit`), concurrently within limits.
    pub async fn refresh_due_grants(self: &Arc<Self>, limit: i64) -> Result<RefresherReport, ServiceError> {
        let due = self.store.due_grants(self.now().as_millis(), limit).await?;
        let mut report = RefresherReport { due: due.len(), ..RefresherReport::default() };
        let mut tasks = tokio::task::JoinSet::new();
        for grant in due {
            let vault = self.clone();
            let semaphore = self.refresh_limits.semaphore(&grant.provider);
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await.expect("semaphore never closed");
                vault.refresh_limits.enter(&grant.provider);
                let outcome = vault.refresh_grant(&grant.id, crate::lifecycle::refresh::RefreshTrigger::Schedule).await;
                vault.refresh_limits.leave(&grant.provider);
                outcome
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(RefreshOutcome::Refreshed | RefreshOutcome::AlreadyFresh)) => report.refreshed += 1,
                Ok(Ok(RefreshOutcome::NeedsReauth(_))) => report.needs_reauth += 1,
                Ok(Ok(RefreshOutcome::RetryLater { .. })) => report.retry_later += 1,
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "background refresh failed");
                    report.failed += 1;
                }
                Err(join_error) => {
                    tracing::error!(error = %join_error, "background refresh task panicked");
                    report.failed += 1;
                }
            }
        }
        report.max_concurrency_seen = self.refresh_limits.max_in_flight.load(Ordering::SeqCst);
        Ok(report)
    }

    /// Runs the refresher every `interval` until `shutdown` fires. A pass that found as many due
    /// grants as it may take ([`REFRESH_PASS_LIMIT`]) and settled them all is followed by
    /// another at once, so the pass size caps a pass's memory, not the refresh rate.
    pub async fn run_refresher(self: Arc<Self>, interval: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        let stop = shutdown.clone();
        crate::periodic::run_every(interval, shutdown, || async {
            loop {
                match self.refresh_due_grants(REFRESH_PASS_LIMIT).await {
                    Ok(report) => {
                        if report.due > 0 {
                            tracing::info!(?report, "refresher pass");
                        }
                        let full = report.due as i64 >= REFRESH_PASS_LIMIT && report.failed == 0;
                        if !full || *stop.borrow() {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "refresher pass failed");
                        break;
                    }
                }
            }
        })
        .await
    }
}
