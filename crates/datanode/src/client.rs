//! A coordinator's connection to one datanode, and the per-statement [`CallContext`] a
//! coordinator session lends the datanode calls it makes (cancel forwarding, notices).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pgxc_cluster::proto::{DnRequest, DnResponse, DnResult, PROTOCOL_VERSION};
use pgxc_common::error::Notice;
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use pgxc_common::{PgError, SqlState};
use tokio::io::BufReader;
#[cfg(not(madsim))]
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

// madsim's TcpStream has no owned halves: split it with tokio's generic `split` there.
#[cfg(madsim)]
type OwnedReadHalf = tokio::io::ReadHalf<TcpStream>;
#[cfg(madsim)]
type OwnedWriteHalf = tokio::io::WriteHalf<TcpStream>;

/// What a coordinator session's running statement shares with the datanode calls it makes, as a
/// task-local ([`CallContext::scope`]): the client's CancelRequest ([`CallContext::cancel`]) is
/// forwarded by every [`DnConn::call`] waiting under it to its datanode backend (PostgreSQL's own
/// cancel: a separate connection with the backend's key), and the NOTICEs datanodes report are
/// gathered here, one copy per distinct notice and statement however many nodes ran it.
#[derive(Debug, Default)]
pub struct CallContext {
    cancelled: AtomicBool,
    wake: tokio::sync::Notify,
    /// `(source, notice, matched)`: who reported it ("" for the coordinator itself), and whether
    /// another source's identical notice was folded into it.
    notices: Mutex<Vec<(String, Notice, Vec<String>)>>,
}

tokio::task_local! {
    static CONTEXT: Arc<CallContext>;
}

impl CallContext {
    /// A new context, not cancelled, without notices.
    pub fn new() -> Arc<CallContext> {
        Arc::new(CallContext::default())
    }

    /// Run `f` with this context visible to the [`DnConn::call`]s and [`notice`]s inside it.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, f: F) -> F::Output {
        CONTEXT.scope(Arc::clone(self), f).await
    }

    /// The context of the running task, if it runs inside [`CallContext::scope`].
    pub fn current() -> Option<Arc<CallContext>> {
        CONTEXT.try_with(Arc::clone).ok()
    }

    /// Cancel the running statement (any thread): datanode calls waiting now forward the cancel
    /// to their backends; calls made later fail with 57014 until [`CallContext::reset`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Whether [`CallContext::cancel`] was called since the last reset.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Forget an earlier cancel (a new query string starts).
    pub fn reset(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
    }

    /// Record `n` reported by `source` (a node name; "" for the coordinator). An identical
    /// notice already reported by another source and not yet folded with one from `source` is
    /// the same statement's notice on another node: it is folded, not repeated.
    pub fn push_notice(&self, source: &str, n: Notice) {
        let mut v = self.notices.lock().unwrap_or_else(|p| p.into_inner());
        for (src, have, matched) in v.iter_mut() {
            if *have == n && src != source && !matched.iter().any(|m| m == source) {
                matched.push(source.to_string());
                return;
            }
        }
        v.push((source.to_string(), n, Vec::new()));
    }

    /// The notices gathered so far, in order, leaving none.
    pub fn take_notices(&self) -> Vec<Notice> {
        let mut v = self.notices.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *v)
            .into_iter()
            .map(|(_, n, _)| n)
            .collect()
    }
}

/// Report a NOTICE/WARNING of the coordinator itself to the running statement's client (no-op
/// outside a [`CallContext::scope`]).
pub fn notice(n: Notice) {
    if let Some(c) = CallContext::current() {
        c.push_notice("", n);
    }
}

/// The notices a datanode answer carries.
fn answer_notices(r: &DnResponse) -> Vec<Notice> {
    match r {
        DnResponse::Results { results, .. } => results
            .iter()
            .flat_map(|r: &DnResult| r.notices.iter().cloned())
            .collect(),
        DnResponse::Batch { notices, .. } => notices.clone(),
        _ => Vec::new(),
    }
}

/// One pooled connection to a datanode (one datanode session).
#[derive(Debug)]
pub struct DnConn {
    node: String,
    addr: String,
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    broken: bool,
    /// The backend's cancel key from `Ready` (backend 0: not cancellable).
    key: (u32, u64),
}

fn transport(node: &str, e: FrameError, after_send: bool) -> PgError {
    PgError::new(
        if after_send {
            // The request may have been applied: only its outcome is unknown.
            SqlState::TransactionResolutionUnknown
        } else {
            SqlState::ConnectionFailure
        },
        format!("connection to datanode \"{node}\" failed: {e}"),
    )
}

impl DnConn {
    /// Connect to the datanode `node` at `addr` and introduce coordinator `coordinator`, applying
    /// `settings` (`SET name = value` each). Errors: 08006 (cannot connect), the datanode's error.
    pub async fn connect(
        node: &str,
        addr: &str,
        coordinator: &str,
        settings: Vec<(String, String)>,
    ) -> Result<DnConn, PgError> {
        let stream = TcpStream::connect(addr).await.map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("could not connect to datanode \"{node}\" at {addr}: {e}"),
            )
        })?;
        let _ = stream.set_nodelay(true);
        #[cfg(not(madsim))]
        let (r, w) = stream.into_split();
        #[cfg(madsim)]
        let (r, w) = tokio::io::split(stream);
        let mut c = DnConn {
            node: node.to_string(),
            addr: addr.to_string(),
            r: BufReader::new(r),
            w,
            broken: false,
            key: (0, 0),
        };
        match c
            .call(DnRequest::Hello {
                version: PROTOCOL_VERSION,
                coordinator: coordinator.to_string(),
                settings,
            })
            .await?
        {
            DnResponse::Ready {
                backend, secret, ..
            } => {
                c.key = (backend, secret);
                Ok(c)
            }
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to Hello from \"{node}\": {other:?}"),
            )),
        }
    }

    /// The datanode's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether a transport error happened (the pool must drop this connection).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Send one request and wait for its answer. [`DnResponse::Error`] becomes `Err` (the
    /// datanode's SQLSTATE); a transport failure is 08006 before the request left and 08007 after.
    ///
    /// Inside a [`CallContext::scope`]: a statement request (`Execute`, `Query`, `Fetch`,
    /// `CopyIn`, `Rowset`) made after the context was cancelled fails with 57014 without being sent, and a
    /// cancel arriving while the answer is awaited is forwarded to the datanode backend (on a
    /// connection of its own), whose statement then fails with 57014; the NOTICEs of the answer
    /// are added to the context.
    pub async fn call(&mut self, req: DnRequest) -> Result<DnResponse, PgError> {
        if self.broken {
            return Err(PgError::new(
                SqlState::ConnectionFailure,
                format!("connection to datanode \"{}\" is broken", self.node),
            ));
        }
        let statement = matches!(
            req,
            DnRequest::Execute { .. }
                | DnRequest::Query { .. }
                | DnRequest::Fetch { .. }
                | DnRequest::CopyIn { .. }
                | DnRequest::Rowset { .. }
        );
        let ctx = CallContext::current().filter(|_| statement);
        if ctx.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(canceled());
        }
        if let Err(e) = write_frame(&mut self.w, &req).await {
            self.broken = true;
            return Err(transport(&self.node, e, false));
        }
        let answer = match &ctx {
            Some(c) if self.key.0 != 0 => {
                let read = read_frame::<_, DnResponse>(&mut self.r);
                tokio::pin!(read);
                let mut forwarded = false;
                loop {
                    let woken = c.wake.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    if !forwarded && c.is_cancelled() {
                        forwarded = true;
                        send_cancel(&self.addr, self.key).await;
                        continue;
                    }
                    tokio::select! {
                        r = &mut read => break r,
                        _ = &mut woken, if !forwarded => {}
                    }
                }
            }
            _ => read_frame::<_, DnResponse>(&mut self.r).await,
        };
        match answer {
            Ok(DnResponse::Error(e)) => Err(e),
            Ok(r) => {
                if let Some(c) = &ctx {
                    for n in answer_notices(&r) {
                        c.push_notice(&self.node, n);
                    }
                }
                Ok(r)
            }
            Err(e) => {
                self.broken = true;
                Err(transport(&self.node, e, true))
            }
        }
    }
}

/// 57014, PostgreSQL's words for a cancelled statement.
pub fn canceled() -> PgError {
    PgError::new(
        SqlState::QueryCanceled,
        "canceling statement due to user request",
    )
}

/// Ask the datanode at `addr` to cancel backend `key`'s statement: [`DnRequest::Cancel`] on a
/// connection of its own, never answered (best effort: an unreachable datanode is ignored).
async fn send_cancel(addr: &str, key: (u32, u64)) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let req = DnRequest::Cancel {
        backend: key.0,
        secret: key.1,
    };
    let _ = write_frame(&mut stream, &req).await;
}
