//! The datanode's coordinator-protocol server: frames of [`DnRequest`] in, [`DnResponse`] out,
//! one [`Backend`] and session thread per connection (under madsim: one session on the
//! connection's task, see `connection`).
//!
//! A malformed or oversized frame ends only that connection (its open transaction rolls back
//! when the session is dropped; prepared transactions stay prepared). The server keeps accepting.
//!
//! Cancel (PostgreSQL's CancelRequest): every connection gets a backend number and a random
//! secret, told to the coordinator in `Ready`; a connection whose first frame is
//! `DnRequest::Cancel` with a matching pair sets that connection's engine session's cancel flag
//! (its statement fails with 57014 at the executor's next check) and is closed unanswered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_sql::Engine;
#[cfg(not(madsim))]
use pgxc_wire::SessionThread;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

use crate::backend::Backend;

/// Backend number → (secret, the connection's engine session's cancel flag).
type CancelRegistry = Arc<Mutex<HashMap<u32, (u64, Arc<AtomicBool>)>>>;

/// Removes a connection's cancel key when the connection ends.
#[cfg(not(madsim))]
struct Registered(CancelRegistry, u32);

#[cfg(not(madsim))]
impl Drop for Registered {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// Apply a `Cancel { backend, secret }`: set the flag of the matching connection's session.
fn cancel(registry: &CancelRegistry, backend: u32, secret: u64) {
    let keys = registry.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((s, flag)) = keys.get(&backend) {
        if *s == secret {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

/// A cancel secret no other client can guess (the standard library's per-process random
/// hashing keys; no wall clock involved).
#[cfg(not(madsim))]
fn random_secret(backend: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(backend);
    h.finish()
}

/// Serve coordinators on `listener` for the datanode `node` until the listener fails.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    node: String,
) -> std::io::Result<()> {
    let registry: CancelRegistry = Arc::default();
    let next_backend = Arc::new(AtomicU32::new(1));
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let engine = Arc::clone(&engine);
        let node = node.clone();
        let registry = Arc::clone(&registry);
        let backend = next_backend.fetch_add(1, Ordering::Relaxed).max(1);
        tokio::spawn(async move {
            if let Err(e) = connection(stream, engine, node, registry, backend).await {
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
    registry: CancelRegistry,
    number: u32,
) -> Result<(), FrameError> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    // A cancel connection carries one frame and is never answered.
    let first: DnRequest = match read_frame(&mut r).await {
        Ok(DnRequest::Cancel { backend, secret }) => {
            cancel(&registry, backend, secret);
            return Ok(());
        }
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
    let session = SessionThread::spawn(Arc::clone(&engine))?;
    let secret = random_secret(number);
    let flag = session.call(|s| s.cancel_flag()).await?;
    registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(number, (secret, flag));
    let _registered = Registered(Arc::clone(&registry), number);
    let backend = Arc::new(std::sync::Mutex::new(
        Backend::new(node).with_cancel_key(number, secret),
    ));
    let mut first = Some(first);
    loop {
        let next = match first.take() {
            Some(req) => Ok(req),
            None => read_frame(&mut r).await,
        };
        let req: DnRequest = match next {
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
    registry: CancelRegistry,
    _number: u32,
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
        if let DnRequest::Cancel { backend, secret } = req {
            // No keys are handed out under madsim (`Ready` says backend 0): nothing matches.
            cancel(&registry, backend, secret);
            return Ok(());
        }
        let resp = backend.handle_async(&mut session, &engine, req).await;
        write_frame(&mut w, &resp).await?;
    }
}
