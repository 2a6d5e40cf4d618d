//! Keeps a refresh lease alive while its holder works. One provider call may take up to its
//! timeout and a lost-response retry doubles that, so a fixed lease could run out under a live
//! holder and let another instance send the same rotating refresh token. The holder renews the
//! lease every third of its length with a conditional UPDATE that only extends a lease it still
//! owns; a crashed holder stops renewing, so it blocks the grant for at most one lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokenvault_store::Store;

use crate::Clock;

pub(crate) struct LeaseHeartbeat {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl LeaseHeartbeat {
    pub(crate) fn start(store: Store, clock: Arc<dyn Clock>, grant_id: String, owner: String, lease: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let lost = Arc::new(AtomicBool::new(false));
        let lost_flag = lost.clone();
        let task = tokio::spawn(async move {
            let period = lease / 3;
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(period) => {}
                }
                let until = clock.now().as_millis() + lease.as_millis() as i64;
                match store.renew_refresh_lease(&grant_id, &owner, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(grant_id = %grant_id, "refresh lease lost while refreshing; this holder writes nothing more");
                        lost_flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The next beat tries again; the outcome writes are guarded either way.
                    Err(error) => tracing::warn!(grant_id = %grant_id, error = %error, "refresh lease renewal failed"),
                }
            }
        });
        Self { stop, task, lost }
    }

    /// True once a renewal found the lease released or taken by another instance.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing; returns once no renewal can run any more.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
