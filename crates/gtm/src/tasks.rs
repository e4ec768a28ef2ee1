//! Task helpers shared by the GTM server and proxy.

use tokio::sync::watch;

/// Spawn `fut`, cancelled when the shutdown flag turns true.
pub(crate) fn spawn_cancellable<F>(shutdown: &watch::Receiver<bool>, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
            biased;
            _ = async { while !*stop.borrow_and_update() { if stop.changed().await.is_err() { break; } } } => {}
            _ = fut => {}
        }
    });
}
