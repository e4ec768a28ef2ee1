//! Task helpers shared by the GTM server and proxy.

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

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

/// Accept connections forever, serving each in its own cancellable task: `serve(stream, conn)` with `conn` a
/// per-listener connection number from 1. `kind` names the listener in logs ("gtm", "gtm proxy").
pub(crate) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    kind: &'static str,
    serve: F,
) where
    F: Fn(TcpStream, u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut next_conn: u64 = 1;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = next_conn;
                next_conn += 1;
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("conn", kind, conn, %peer);
                spawn_cancellable(&shutdown, serve(stream, conn).instrument(span));
            }
            Err(e) => {
                tracing::warn!(kind, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
