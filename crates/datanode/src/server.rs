//! The datanode's coordinator-protocol server: frames of [`DnRequest`] in, [`DnResponse`] out,
//! one [`Backend`] and session thread per connection (under madsim: one session on the
//! connection's task, see `connection`).
//!
//! A malformed or oversized frame ends only that connection (its open transaction rolls back
//! when the session is dropped; prepared transactions stay prepared). The server keeps accepting.

use std::sync::Arc;

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_sql::Engine;
#[cfg(not(madsim))]
use pgxc_wire::SessionThread;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

use crate::backend::Backend;

/// Serve coordinators on `listener` for the datanode `node` until the listener fails.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    node: String,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let engine = Arc::clone(&engine);
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, engine, node).await {
                tracing::debug!(%peer, "coordinator connection ended: {e}");
            }
        });
    }
}

#[cfg(not(madsim))]
async fn connection(
    stream: TcpStream,
    engine: Arc<Engine>,
    node: String,
) -> Result<(), FrameError> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let session = SessionThread::spawn(Arc::clone(&engine))?;
    let backend = Arc::new(std::sync::Mutex::new(Backend::new(node)));
    loop {
        let req: DnRequest = match read_frame(&mut r).await {
            Ok(req) => req,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => {
                // Tell the coordinator why, then drop only this connection.
                let err = pgxc_common::PgError::new(
                    pgxc_common::SqlState::ProtocolViolation,
                    format!("bad frame from coordinator: {e}"),
                );
                let _ = write_frame(&mut w, &DnResponse::Error(err)).await;
                return Err(e);
            }
        };
        let engine = Arc::clone(&engine);
        let backend = Arc::clone(&backend);
        let resp = session
            .call(move |s| {
                let mut b = backend.lock().unwrap_or_else(|p| p.into_inner());
                b.handle(s, &engine, req)
            })
            .await?;
        write_frame(&mut w, &resp).await?;
    }
}

/// Under madsim: the connection's session lives on the connection's own task (no threads in the
/// simulation) and statements run through `Backend::handle_async` (the engine is in
/// `WaitMode::Restart`, so a lock wait is an await, not a blocked thread).
#[cfg(madsim)]
async fn connection(
    stream: TcpStream,
    engine: Arc<Engine>,
    node: String,
) -> Result<(), FrameError> {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut session = engine.session();
    let mut backend = Backend::new(node);
    loop {
        let req: DnRequest = match read_frame(&mut r).await {
            Ok(req) => req,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => {
                let err = pgxc_common::PgError::new(
                    pgxc_common::SqlState::ProtocolViolation,
                    format!("bad frame from coordinator: {e}"),
                );
                let _ = write_frame(&mut w, &DnResponse::Error(err)).await;
                return Err(e);
            }
        };
        let resp = backend.handle_async(&mut session, &engine, req).await;
        write_frame(&mut w, &resp).await?;
    }
}
