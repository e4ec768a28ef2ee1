//! The GTM proxy (`pgxc gtm-proxy`, Postgres-XC's `gtm_proxy`).
//!
//! # Design
//!
//! Downstream, the proxy speaks the GTM client protocol itself ([`Hello::Client`], then [`ClientBatch`]es
//! answered by [`ServerBatch`]es, several batches in flight per connection). Upstream it holds ONE
//! [`GtmClient`] — one connection and one GTM session for all its downstream connections. Every downstream
//! request is forwarded through that client concurrently; the client's background task writes everything
//! queued at once as one upstream batch, so many sessions are multiplexed over one link and one round trip.
//!
//! - Downstream `Register` and `KeepAlive` are answered locally: each downstream connection gets a proxy-local
//!   session id. Re-attaching a proxy-local session from another connection is refused as expired (08006,
//!   the GTM's own wording): its transactions were aborted when its connection closed.
//! - The proxy remembers which downstream connection holds which open GXIDs (begun and not committed, aborted
//!   or prepared). When a downstream connection closes, its open GXIDs are aborted upstream.
//! - Re-registration after an upstream leader change, redirects, retries and the commit fence are the
//!   upstream [`GtmClient`]'s job: it tracks every GXID begun through it.
//!
//! **Invariant:** a GXID begun through the proxy is, at any time, either open in exactly one downstream
//! connection's set, or ended (committed, aborted, prepared), or being aborted because its connection closed.
//!
//! **Invariant:** the proxy never answers a transaction request itself: only `Register` and `KeepAlive` are
//! local; everything else is the GTM leader's answer (or 08006 when the upstream gave up).

use crate::client::{ClientOptions, GtmClient};
use crate::proto::{ClientBatch, Hello, ReqId, Request, Response, ServerBatch, SessionId};
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_common::{Gxid, PgError, SqlState};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// A running GTM proxy. Dropping it does not stop it: call [`GtmProxy::shutdown`].
pub struct GtmProxy {
    addr: SocketAddr,
    upstream: GtmClient,
    stop: watch::Sender<bool>,
}

struct ProxyShared {
    upstream: GtmClient,
    next_session: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// What the proxy tracks for one downstream connection.
#[derive(Default)]
struct DownConn {
    session: Option<SessionId>,
    open: BTreeSet<Gxid>,
    closed: bool,
}

impl GtmProxy {
    /// Listen on `listen_addr` (port 0 picks one) and forward to the GTM group at `upstream_addrs`, with default
    /// [`ClientOptions`].
    ///
    /// Errors: 08006 if the address cannot be bound or no GTM leader can be reached.
    pub async fn start(
        listen_addr: &str,
        upstream_addrs: Vec<String>,
    ) -> Result<GtmProxy, PgError> {
        Self::start_with(listen_addr, upstream_addrs, ClientOptions::default()).await
    }

    /// Like [`GtmProxy::start`], with the upstream client's options.
    pub async fn start_with(
        listen_addr: &str,
        upstream_addrs: Vec<String>,
        opts: ClientOptions,
    ) -> Result<GtmProxy, PgError> {
        let upstream = GtmClient::connect(upstream_addrs, opts).await?;
        let listener = TcpListener::bind(listen_addr).await.map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("cannot listen on {listen_addr}: {e}"),
            )
        })?;
        let addr = listener.local_addr().map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("listener address: {e}"),
            )
        })?;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(ProxyShared {
            upstream: upstream.clone(),
            next_session: AtomicU64::new(1),
            shutdown,
        });
        spawn_cancellable(
            &shared.shutdown,
            accept_loop(listener, shared.clone())
                .instrument(tracing::info_span!("gtm_proxy", %addr)),
        );
        tracing::info!(%addr, session = ?upstream.session(), "gtm proxy started");
        Ok(GtmProxy {
            addr,
            upstream,
            stop,
        })
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream client (its session is the proxy's GTM session).
    pub fn upstream(&self) -> &GtmClient {
        &self.upstream
    }

    /// Stop accepting and close every downstream connection (their open transactions are not aborted here;
    /// the GTM session of the proxy expires instead).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        tracing::info!(addr = %self.addr, "gtm proxy stopped");
    }
}

fn spawn_cancellable<F>(shutdown: &watch::Receiver<bool>, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = async {
                while !*stop.borrow_and_update() {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
            } => {}
            _ = fut => {}
        }
    });
}

async fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    let mut next_conn: u64 = 1;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = next_conn;
                next_conn += 1;
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("gtm_proxy_conn", conn, %peer);
                spawn_cancellable(
                    &shared.shutdown,
                    serve_conn(stream, shared.clone()).instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn req_gxid(req: &Request) -> Option<Gxid> {
    match req {
        Request::Commit { gxid } | Request::Abort { gxid } | Request::Prepare { gxid, .. } => {
            Some(*gxid)
        }
        Request::Snapshot { gxid } => *gxid,
        _ => None,
    }
}

async fn serve_conn(mut stream: TcpStream, shared: Arc<ProxyShared>) {
    match tokio::time::timeout(
        crate::server::HELLO_TIMEOUT,
        read_frame::<_, Hello>(&mut stream),
    )
    .await
    {
        Ok(Ok(Hello::Client)) => {}
        Ok(Ok(Hello::Peer { from })) => {
            tracing::debug!(from, "raft peer connected to a proxy; closing");
            return;
        }
        _ => return,
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<(ReqId, Response)>();
    let state = Arc::new(Mutex::new(DownConn::default()));
    let writer = async move {
        while let Some(first) = rx.recv().await {
            let mut responses = vec![first];
            while let Ok(more) = rx.try_recv() {
                responses.push(more);
            }
            if let Err(e) = write_frame(&mut wr, &ServerBatch { responses }).await {
                tracing::debug!(error = %e, "downstream write failed");
                return;
            }
        }
    };
    let reader = async {
        loop {
            let batch = match read_frame::<_, ClientBatch>(&mut rd).await {
                Ok(b) => b,
                Err(FrameError::Closed) => return,
                Err(e) => {
                    tracing::info!(error = %e, "bad frame from downstream; closing the connection");
                    return;
                }
            };
            for (id, req) in batch.requests {
                if let Some(resp) = local_answer(&shared, &state, &req) {
                    let _ = tx.send((id, resp));
                    continue;
                }
                let (shared, state, tx) = (shared.clone(), state.clone(), tx.clone());
                let span =
                    tracing::debug_span!("gtm_proxy_req", id, gxid = req_gxid(&req).map(|g| g.0));
                tokio::spawn(
                    async move {
                        let result = shared.upstream.call(req.clone()).await;
                        track(&shared, &state, &req, &result);
                        let resp = result.unwrap_or_else(Response::Error);
                        let _ = tx.send((id, resp));
                    }
                    .instrument(span),
                );
            }
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
    // Abort whatever the connection left open.
    let open = {
        let mut st = state.lock().expect("proxy conn lock");
        st.closed = true;
        std::mem::take(&mut st.open)
    };
    if !open.is_empty() {
        tracing::info!(
            count = open.len(),
            "downstream closed: aborting its open transactions"
        );
    }
    for g in open {
        abort_upstream(&shared, g);
    }
}

fn abort_upstream(shared: &Arc<ProxyShared>, gxid: Gxid) {
    let up = shared.upstream.clone();
    tokio::spawn(
        async move {
            if let Err(e) = up.abort(gxid).await {
                tracing::warn!(error = %e, "abort of an orphaned transaction failed");
            }
        }
        .instrument(tracing::debug_span!("gtm_proxy_orphan", gxid = gxid.0)),
    );
}

/// `Register` and `KeepAlive` are the proxy's own business; so is refusing Begin before Register.
fn local_answer(shared: &ProxyShared, state: &Mutex<DownConn>, req: &Request) -> Option<Response> {
    let mut st = state.lock().expect("proxy conn lock");
    match req {
        Request::Register { session: None, .. } => {
            let s = shared.next_session.fetch_add(1, Ordering::Relaxed);
            st.session = Some(s);
            Some(Response::Registered { session: s })
        }
        Request::Register {
            session: Some(s), ..
        } => {
            if st.session == Some(*s) {
                Some(Response::Registered { session: *s })
            } else {
                Some(Response::Error(PgError::new(
                    SqlState::ConnectionFailure,
                    format!("GTM session {s} expired"),
                )))
            }
        }
        Request::KeepAlive => Some(Response::Ok),
        Request::Begin | Request::BeginSnapshot if st.session.is_none() => {
            Some(Response::Error(PgError::new(
                SqlState::ProtocolViolation,
                "no GTM session registered on this connection",
            )))
        }
        _ => None,
    }
}

/// Keep the connection's open-GXID set up to date with an upstream answer.
fn track(
    shared: &Arc<ProxyShared>,
    state: &Mutex<DownConn>,
    req: &Request,
    result: &Result<Response, PgError>,
) {
    let mut st = state.lock().expect("proxy conn lock");
    let begun = match (req, result) {
        (Request::Begin, Ok(Response::Gxid(g))) => Some(*g),
        (Request::BeginSnapshot, Ok(Response::Begun { gxid, .. })) => Some(*gxid),
        (Request::Commit { gxid } | Request::Abort { gxid }, _) => {
            st.open.remove(gxid);
            None
        }
        (Request::Prepare { gxid, .. }, Ok(_)) => {
            st.open.remove(gxid);
            None
        }
        _ => None,
    };
    if let Some(g) = begun {
        if st.closed {
            // The connection went away while its Begin was in flight.
            drop(st);
            abort_upstream(shared, g);
        } else {
            st.open.insert(g);
        }
    }
}
