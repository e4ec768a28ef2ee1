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
//! - Downstream `Register` is answered locally: each downstream client gets a proxy-local session id, which it
//!   can re-attach from a new connection (after a stall or a dropped link) for [`DETACHED_TTL`] after its last
//!   connection closed. `KeepAlive` is answered locally while the upstream client's lease holds, else forwarded
//!   upstream. Re-attaching a session that outlived the TTL is refused as expired (08006, the GTM's wording).
//! - The proxy remembers which downstream session holds which open GXIDs (begun and not committed, aborted or
//!   prepared). When a session has been detached for [`DETACHED_TTL`], its open GXIDs are aborted upstream.
//!   (Aborting them as soon as the connection closed let a client that reconnected at once commit a
//!   transaction the GTM had already dropped from every snapshot: found by the GTM chaos simulation.)
//! - Re-registration after an upstream leader change, redirects, retries and the commit fence are the
//!   upstream [`GtmClient`]'s job: it tracks every GXID begun through it, and refuses (08006) a Commit sent
//!   after its own lease lapsed. That upstream fence is the authoritative one behind a proxy; a coordinator
//!   embedding the proxy checks [`GtmProxy::upstream`]`().lease_ok()` before committing on datanodes.
//!
//! **Invariant:** a GXID begun through the proxy is, at any time, either open in exactly one downstream
//! session's set, or ended (committed, aborted, prepared), or being aborted because its session expired; a
//! session expires only after [`DETACHED_TTL`] without a connection, longer than the client's lease.
//!
//! **Invariant:** the proxy never answers a transaction request itself: only `Register` and (while the
//! upstream lease holds) `KeepAlive` are local; everything else is the GTM leader's answer (or 08006 when the
//! upstream gave up or its fence refused a commit).

use crate::client::{ClientOptions, GtmClient};
use crate::proto::{ClientBatch, Hello, ReqId, Request, Response, ServerBatch, SessionId};
use crate::tasks::spawn_cancellable;
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_common::{Gxid, PgError, SqlState};
use std::collections::{BTreeMap, BTreeSet};
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
    /// Downstream sessions by proxy-local id. A session outlives its connection for [`DETACHED_TTL`], so a
    /// client that reconnects (after a stall, a dropped link) re-attaches with its open transactions.
    sessions: Mutex<BTreeMap<SessionId, DownSession>>,
}

/// How long a downstream session survives without a connection before its open transactions are aborted.
/// Longer than a client's lease (1 s by default) plus a reconnect, so a live client re-attaches first; a
/// client away longer has fenced itself (its commits are refused until it re-registers, and re-registering
/// then reports the session expired).
pub const DETACHED_TTL: Duration = Duration::from_secs(3);

/// A downstream session: the GXIDs it has open, and whether a connection currently holds it.
struct DownSession {
    open: BTreeSet<Gxid>,
    /// When its last connection closed; `None` while attached.
    detached_at: Option<tokio::time::Instant>,
}

/// What the proxy tracks for one downstream connection.
#[derive(Default)]
struct DownConn {
    session: Option<SessionId>,
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
            sessions: Mutex::new(BTreeMap::new()),
        });
        spawn_cancellable(&shared.shutdown, reap_detached(shared.clone()));
        spawn_cancellable(
            &shared.shutdown,
            crate::tasks::accept_loop(listener, shared.shutdown.clone(), "gtm proxy", {
                let shared = shared.clone();
                move |stream, _conn| serve_conn(stream, shared.clone())
            })
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
    let (rd, mut wr) = tokio::io::split(stream);
    // Buffered: one read system call brings in every frame the peer has sent so far.
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
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
            // Local answers go straight back; everything else is submitted upstream at once (one upstream
            // frame) and awaited by one task per downstream batch.
            let mut forwarded = Vec::new();
            for (id, req) in batch.requests {
                if let Some(resp) = local_answer(&shared, &state, &req) {
                    let _ = tx.send((id, resp));
                    continue;
                }
                let rx = shared.upstream.submit(req.clone());
                forwarded.push((id, req, rx));
            }
            if forwarded.is_empty() {
                continue;
            }
            let (shared, state, tx) = (shared.clone(), state.clone(), tx.clone());
            tokio::spawn(
                async move {
                    for (id, req, rx) in forwarded {
                        let result = match rx {
                            Ok(rx) => rx.await.unwrap_or_else(|_| {
                                Err(PgError::new(
                                    SqlState::ConnectionFailure,
                                    "gtm client task has stopped",
                                ))
                            }),
                            Err(e) => Err(e),
                        };
                        track(&shared, &state, &req, &result);
                        let resp = result.unwrap_or_else(Response::Error);
                        let _ = tx.send((id, resp));
                    }
                }
                .instrument(tracing::debug_span!("gtm_proxy_batch")),
            );
        }
    };
    tokio::select! {
        // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
        biased;
        _ = reader => {}
        _ = writer => {}
    }
    // Detach the session; its open transactions stay until it re-attaches or DETACHED_TTL passes.
    let session = state.lock().expect("proxy conn lock").session;
    if let Some(sid) = session {
        if let Some(ds) = shared
            .sessions
            .lock()
            .expect("proxy sessions lock")
            .get_mut(&sid)
        {
            ds.detached_at = Some(tokio::time::Instant::now());
            tracing::debug!(
                session = sid,
                open = ds.open.len(),
                "downstream closed: session detached"
            );
        }
    }
}

/// Abort the open transactions of sessions detached for longer than [`DETACHED_TTL`], and forget them.
async fn reap_detached(shared: Arc<ProxyShared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = tokio::time::Instant::now();
        let expired: Vec<(SessionId, BTreeSet<Gxid>)> = {
            let mut sessions = shared.sessions.lock().expect("proxy sessions lock");
            let ids: Vec<SessionId> = sessions
                .iter()
                .filter(|(_, d)| {
                    d.detached_at
                        .is_some_and(|t| now.duration_since(t) >= DETACHED_TTL)
                })
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|d| (id, d.open)))
                .collect()
        };
        for (sid, open) in expired {
            if !open.is_empty() {
                tracing::info!(
                    session = sid,
                    count = open.len(),
                    "detached session expired: aborting its open transactions"
                );
            }
            for g in open {
                abort_upstream(&shared, g);
            }
        }
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
            shared.sessions.lock().expect("proxy sessions lock").insert(
                s,
                DownSession {
                    open: BTreeSet::new(),
                    detached_at: None,
                },
            );
            st.session = Some(s);
            Some(Response::Registered { session: s })
        }
        Request::Register {
            session: Some(s), ..
        } => {
            // Re-attach (from this or a new connection) while the session lives; the proxy's own record of its
            // open GXIDs is authoritative.
            let mut sessions = shared.sessions.lock().expect("proxy sessions lock");
            match sessions.get_mut(s) {
                Some(ds) => {
                    ds.detached_at = None;
                    st.session = Some(*s);
                    Some(Response::Registered { session: *s })
                }
                None => Some(Response::Error(PgError::new(
                    SqlState::ConnectionFailure,
                    format!("GTM session {s} expired"),
                ))),
            }
        }
        // While the upstream lease holds, a keepalive is answered here; otherwise it goes upstream and is
        // answered once the proxy's GTM session is confirmed again, so a downstream client's lease never runs
        // ahead of the proxy's by more than one lease.
        Request::KeepAlive if shared.upstream.lease_ok() => Some(Response::Ok),
        Request::Begin | Request::BeginSnapshot if st.session.is_none() => {
            Some(Response::Error(PgError::new(
                SqlState::ProtocolViolation,
                "no GTM session registered on this connection",
            )))
        }
        _ => None,
    }
}

/// Keep the session's open-GXID set up to date with an upstream answer.
fn track(
    shared: &Arc<ProxyShared>,
    state: &Mutex<DownConn>,
    req: &Request,
    result: &Result<Response, PgError>,
) {
    let Some(sid) = state.lock().expect("proxy conn lock").session else {
        return;
    };
    let mut sessions = shared.sessions.lock().expect("proxy sessions lock");
    let begun = match (req, result) {
        (Request::Begin, Ok(Response::Gxid(g))) => Some(*g),
        (Request::BeginSnapshot, Ok(Response::Begun { gxid, .. })) => Some(*gxid),
        (Request::Commit { gxid } | Request::Abort { gxid }, _) => {
            if let Some(ds) = sessions.get_mut(&sid) {
                ds.open.remove(gxid);
            }
            None
        }
        (Request::Prepare { gxid, .. }, Ok(_)) => {
            if let Some(ds) = sessions.get_mut(&sid) {
                ds.open.remove(gxid);
            }
            None
        }
        _ => None,
    };
    if let Some(g) = begun {
        match sessions.get_mut(&sid) {
            Some(ds) => {
                ds.open.insert(g);
            }
            None => {
                // The session expired while its Begin was in flight.
                drop(sessions);
                abort_upstream(shared, g);
            }
        }
    }
}
