//! The one loop shape every background worker shares: run a pass, wait, stop promptly on shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs `pass` now and then every `interval` until `shutdown` becomes `true`.
///
/// The flag is checked by value, not by change notification, so a receiver subscribed
/// after the stop was signalled still stops at once instead of sleeping a whole interval.
pub(crate) async fn run_every<F, Fut>(interval: Duration, mut shutdown: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    while !*shutdown.borrow_and_update() {
        pass().await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// [`run_every`] for a sweep that deletes or erases rows: logs how many, or why it failed.
pub(crate) async fn run_sweep<F, Fut>(interval: Duration, shutdown: watch::Receiver<bool>, what: &str, mut sweep: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, crate::ServiceError>>,
{
    run_every(interval, shutdown, || {
        let pass = sweep();
        async move {
            match pass.await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, what, "sweep done"),
                Err(error) => tracing::error!(error = %error, what, "sweep failed"),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_receiver_created_after_the_stop_returns_without_a_pass() {
        let (stop, _) = watch::channel(false);
        stop.send_replace(true);
        let mut passes = 0;
        run_every(Duration::from_secs(3600), stop.subscribe(), || {
            passes += 1;
            async {}
        })
        .await;
        assert_eq!(passes, 0);
    }

    #[tokio::test]
    async fn stops_during_the_wait_after_a_pass() {
        let (stop, receiver) = watch::channel(false);
        let (passed, mut passes) = tokio::sync::mpsc::unbounded_channel();
        let worker = tokio::spawn(run_every(Duration::from_secs(3600), receiver, move || {
            let _ = passed.send(());
            async {}
        }));
        passes.recv().await.unwrap();
        stop.send_replace(true);
        worker.await.unwrap();
        assert!(passes.recv().await.is_none(), "exactly one pass before the stop");
    }
}
