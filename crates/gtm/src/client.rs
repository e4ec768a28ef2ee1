//! The GTM client library, used by coordinators, datanodes and the GTM proxy's upstream link.
//!
//! # Design
//!
//! A [`GtmClient`] is cheap to clone; every clone shares ONE connection, owned by a background task. A caller
//! sends its [`Request`] to that task through a channel and awaits a oneshot. The task writes everything that is
//! queued at that moment as one [`ClientBatch`] and matches the answers by [`ReqId`] — this batching is what
//! lets a GTM proxy multiplex many sessions over one link.
//!
//! The task:
//! - registers a session when it connects ([`Request::Register`]) and holds every request back until the
//!   registration is answered;
//! - sends [`Request::KeepAlive`] every [`ClientOptions::keepalive_ms`];
//! - follows [`Response::NotLeader`] redirects, and on connection loss (or when nothing at all was received for
//!   [`ClientOptions::lease_ms`] while connected) reconnects, trying the leader hint first and then every
//!   address, with exponential backoff;
//! - on reconnect **re-registers** its session with the GXIDs it holds open (every GXID it began and has not
//!   committed, aborted or prepared, with the lowest snapshot xmin taken for it). If the GTM answers that the
//!   session expired (08006), it opens a new session and the lost transactions fail their next call with
//!   [`SqlState::ConnectionFailure`] (08006);
//! - retries requests that were in flight when a connection dropped, on the new leader (every GTM request is
//!   safe to retry: Begin may leak a harmless GXID, Commit/Abort/Forget/Decide are idempotent, NextVal may leave
//!   a gap; a retried CreateSequence/DropSequence that reports "already exists"/"does not exist" is mapped to
//!   success), and gives up after [`ClientOptions::retry_deadline_ms`] with 08006.
//!
//! Sequences: [`GtmClient::nextval`] fetches the sequence's CACHE values at once and hands them out locally, as
//! a PostgreSQL session's sequence cache does; [`GtmClient::currval`] is client-local.
//!
//! # The commit fence and its timing argument
//!
//! The GTM closes a session (dropping its running transactions from every later snapshot) only when it has
//! not heard from it for [`crate::core::CoreConfig::session_timeout_ms`] (10 s by default), or when, after a
//! leader change, the session did not re-register within [`crate::core::CoreConfig::recovery_grace_ms`]
//! (2 s by default) of the new leader starting. Committing a transaction the GTM has already dropped would make
//! it flip from "not running" to "committed" under snapshots taken in between.
//!
//! Let `t_ok` be the moment the client *sent* the latest request that a leader answered successfully. The
//! leader handled it after `t_ok`, while its lease was valid, hence before any later leader started, and it
//! counted it as session activity. So the session cannot be closed before `t_ok + min(session_timeout,
//! recovery_grace)`. The client sends a Commit for one of its open transactions only while
//! `now - t_ok < lease_ms`; with `lease_ms` (1 s) well below the recovery grace (2 s), the Commit reaches the GTM
//! before the session can be closed as long as it travels in under `grace - lease_ms` (1 s). Once the lease has
//! lapsed the client refuses such a Commit with 08006 (and drops the GXID from its open set, aborting it
//! best-effort) until it has re-registered; a successful re-registration proves the GTM still holds the
//! session's transactions and resets `t_ok`. [`GtmClient::lease_ok`] lets a coordinator apply the same check
//! before it commits on datanodes.
//!
//! **Invariant:** a client never sends Commit for a transaction after its lease lapsed without re-registering.
//!
//! **Invariant:** the set of GXIDs re-registered is exactly the set begun through this client and not yet
//! committed, aborted, prepared, fenced or lost.

use crate::proto::{
    AdminRequest, ClientBatch, Hello, NodeStatus, PreparedTxn, ReqId, Request, Response, SeqInfo,
    SeqOptions, ServerBatch, SessionId,
};
use pgxc_common::frame::{read_frame, write_frame};
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::WriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

/// Default [`ClientOptions::lease_ms`].
pub const LEASE_MS: u64 = 1_000;
/// Default [`ClientOptions::keepalive_ms`].
pub const KEEPALIVE_MS: u64 = 250;
/// Default [`ClientOptions::retry_deadline_ms`].
pub const RETRY_DEADLINE_MS: u64 = 10_000;

/// Tunables of a [`GtmClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The commit fence: with no successful leader reply for this long (measured from the request's send time),
    /// Commit of an open transaction is refused until the session re-registered. Also the stall timeout: a
    /// connection on which nothing was received for this long is dropped. Must stay well below the GTM's
    /// recovery grace (2 s). Default [`LEASE_MS`].
    pub lease_ms: u64,
    /// KeepAlive period. Default [`KEEPALIVE_MS`].
    pub keepalive_ms: u64,
    /// A request not answered within this long (across reconnects and redirects) fails with 08006. Default
    /// [`RETRY_DEADLINE_MS`].
    pub retry_deadline_ms: u64,
    /// Timeout of one TCP connect attempt. Default 500 ms.
    pub connect_timeout_ms: u64,
    /// First reconnect backoff after every address failed; doubles up to `backoff_max_ms`. Default 20 ms.
    pub backoff_min_ms: u64,
    /// Largest reconnect backoff. Default 500 ms.
    pub backoff_max_ms: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            lease_ms: LEASE_MS,
            keepalive_ms: KEEPALIVE_MS,
            retry_deadline_ms: RETRY_DEADLINE_MS,
            connect_timeout_ms: 500,
            backoff_min_ms: 20,
            backoff_max_ms: 500,
        }
    }
}

/// Whether `req` ends its transaction at the GTM (after which a lost mark is no longer needed).
fn ends_transaction(req: &Request) -> bool {
    matches!(
        req,
        Request::Commit { .. } | Request::Abort { .. } | Request::Prepare { .. }
    )
}

fn conn_failure(msg: impl Into<String>) -> PgError {
    PgError::new(SqlState::ConnectionFailure, msg)
}

/// A request from a caller to the connection task.
struct Call {
    req: Request,
    resp: oneshot::Sender<Result<Response, PgError>>,
    deadline: Instant,
    /// How many times it has been sent.
    attempts: u32,
}

/// State shared between the handles and the connection task.
struct Shared {
    /// Current session id (0 = none).
    session: AtomicU64,
    /// Send time of the latest request a leader answered successfully.
    last_ok: Mutex<Option<Instant>>,
    lease: Duration,
}

impl Shared {
    fn lease_ok(&self) -> bool {
        matches!(*self.last_ok.lock().expect("lease lock"), Some(t) if t.elapsed() < self.lease)
    }
}

/// The per-client sequence cache (a PostgreSQL session's `SeqTable`).
#[derive(Default)]
struct SeqCache {
    /// Values fetched and not yet handed out.
    cached: BTreeMap<String, VecDeque<i64>>,
    /// The CACHE option of each sequence, as last learnt.
    cache_size: BTreeMap<String, u64>,
    /// currval.
    last: BTreeMap<String, i64>,
}

struct Inner {
    tx: mpsc::UnboundedSender<Call>,
    shared: Arc<Shared>,
    seqs: Mutex<SeqCache>,
    opts: ClientOptions,
}

/// A connection to the GTM group, shared by every clone. See the module docs.
#[derive(Clone)]
pub struct GtmClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GtmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GtmClient")
            .field("session", &self.session())
            .finish()
    }
}

impl GtmClient {
    /// Connect to the GTM group at `addrs` (any member; redirects are followed) and register a session.
    ///
    /// Errors: 08006 if no leader could be reached and registered with within `opts.retry_deadline_ms`.
    pub async fn connect(addrs: Vec<String>, opts: ClientOptions) -> Result<GtmClient, PgError> {
        if addrs.is_empty() {
            return Err(conn_failure("no gtm address given"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            session: AtomicU64::new(0),
            last_ok: Mutex::new(None),
            lease: Duration::from_millis(opts.lease_ms),
        });
        let task = ConnTask::new(addrs, opts.clone(), rx, shared.clone());
        tokio::spawn(task.run().instrument(tracing::debug_span!("gtm_client")));
        let client = GtmClient {
            inner: Arc::new(Inner {
                tx,
                shared,
                seqs: Mutex::new(SeqCache::default()),
                opts,
            }),
        };
        client.call(Request::KeepAlive).await?;
        Ok(client)
    }

    /// The GTM session this client currently holds (`None` while (re)registering).
    pub fn session(&self) -> Option<SessionId> {
        match self.inner.shared.session.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// Whether a leader answered a request sent less than `lease_ms` ago: the commit fence. A coordinator
    /// must check it before committing a transaction on datanodes (and abort with 08006 if false).
    pub fn lease_ok(&self) -> bool {
        self.inner.shared.lease_ok()
    }

    /// The options this client runs with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// Send one raw request and wait for its answer. `Response::Error` becomes `Err`; `NotLeader` never
    /// reaches the caller (it is followed).
    ///
    /// Errors: the GTM's error, or 08006 after the retry deadline or when the client task is gone.
    pub async fn call(&self, req: Request) -> Result<Response, PgError> {
        self.submit(req)?
            .await
            .map_err(|_| conn_failure("gtm client task has stopped"))?
    }

    /// Queue `req` without waiting: the returned receiver yields its answer (as [`GtmClient::call`] would).
    /// Submitting several requests before awaiting any lets them share one frame; the GTM proxy forwards a
    /// downstream batch this way with one task instead of one per request.
    ///
    /// Errors: 08006 if the client task has stopped.
    pub fn submit(
        &self,
        req: Request,
    ) -> Result<oneshot::Receiver<Result<Response, PgError>>, PgError> {
        let (resp, rx) = oneshot::channel();
        let deadline = Instant::now() + Duration::from_millis(self.inner.opts.retry_deadline_ms);
        self.inner
            .tx
            .send(Call {
                req,
                resp,
                deadline,
                attempts: 0,
            })
            .map_err(|_| conn_failure("gtm client task has stopped"))?;
        Ok(rx)
    }

    /// Begin a transaction.
    pub async fn begin(&self) -> Result<Gxid, PgError> {
        match self.call(Request::Begin).await? {
            Response::Gxid(g) => Ok(g),
            other => Err(unexpected(other)),
        }
    }

    /// Begin a transaction and take its first snapshot in one trip.
    pub async fn begin_snapshot(&self) -> Result<(Gxid, Snapshot), PgError> {
        match self.call(Request::BeginSnapshot).await? {
            Response::Begun { gxid, snapshot } => Ok((gxid, snapshot)),
            other => Err(unexpected(other)),
        }
    }

    /// Take a snapshot for `gxid` (or for a statement without a GXID).
    pub async fn snapshot(&self, gxid: Option<Gxid>) -> Result<Snapshot, PgError> {
        match self.call(Request::Snapshot { gxid }).await? {
            Response::Snapshot(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Report a one-phase commit. Errors: 08006 if the commit fence refused it (see the module docs).
    pub async fn commit(&self, gxid: Gxid) -> Result<(), PgError> {
        self.call(Request::Commit { gxid }).await.map(|_| ())
    }

    /// Report an abort.
    pub async fn abort(&self, gxid: Gxid) -> Result<(), PgError> {
        self.call(Request::Abort { gxid }).await.map(|_| ())
    }

    /// Record that `gxid` is prepared as `gid` on `nodes`.
    pub async fn prepare(&self, gxid: Gxid, gid: &str, nodes: Vec<String>) -> Result<(), PgError> {
        self.call(Request::Prepare {
            gxid,
            gid: gid.to_string(),
            nodes,
        })
        .await
        .map(|_| ())
    }

    /// Record the commit (`true`) or rollback decision for a prepared gid.
    pub async fn decide(&self, gid: &str, commit: bool) -> Result<(), PgError> {
        self.call(Request::Decide {
            gid: gid.to_string(),
            commit,
        })
        .await
        .map(|_| ())
    }

    /// Forget a prepared gid once every participant applied the decision.
    pub async fn forget(&self, gid: &str) -> Result<(), PgError> {
        self.call(Request::Forget {
            gid: gid.to_string(),
        })
        .await
        .map(|_| ())
    }

    /// List prepared transactions.
    pub async fn list_prepared(&self) -> Result<Vec<PreparedTxn>, PgError> {
        match self.call(Request::ListPrepared).await? {
            Response::Prepared(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// The global xmin (vacuum horizon).
    pub async fn global_xmin(&self) -> Result<Gxid, PgError> {
        match self.call(Request::GlobalXmin).await? {
            Response::Gxid(g) => Ok(g),
            other => Err(unexpected(other)),
        }
    }

    /// `CREATE SEQUENCE`.
    pub async fn create_sequence(
        &self,
        name: &str,
        options: SeqOptions,
        if_not_exists: bool,
    ) -> Result<(), PgError> {
        self.forget_seq(name);
        self.call(Request::CreateSequence {
            name: name.to_string(),
            options,
            if_not_exists,
        })
        .await
        .map(|_| ())
    }

    /// `ALTER SEQUENCE`. Discards this client's cached values of the sequence.
    pub async fn alter_sequence(
        &self,
        name: &str,
        options: SeqOptions,
        if_exists: bool,
    ) -> Result<(), PgError> {
        self.forget_seq(name);
        let r = self
            .call(Request::AlterSequence {
                name: name.to_string(),
                options,
                if_exists,
            })
            .await
            .map(|_| ());
        self.forget_seq(name);
        r
    }

    /// `ALTER SEQUENCE from RENAME TO to`. currval follows the sequence to its new name.
    pub async fn rename_sequence(&self, from: &str, to: &str) -> Result<(), PgError> {
        self.call(Request::RenameSequence {
            from: from.to_string(),
            to: to.to_string(),
        })
        .await?;
        let mut s = self.inner.seqs.lock().expect("seq cache lock");
        s.cached.remove(from);
        s.cache_size.remove(from);
        if let Some(v) = s.last.remove(from) {
            s.last.insert(to.to_string(), v);
        }
        Ok(())
    }

    /// `DROP SEQUENCE`.
    pub async fn drop_sequence(&self, name: &str, if_exists: bool) -> Result<(), PgError> {
        self.forget_seq(name);
        self.call(Request::DropSequence {
            name: name.to_string(),
            if_exists,
        })
        .await?;
        self.inner
            .seqs
            .lock()
            .expect("seq cache lock")
            .last
            .remove(name);
        Ok(())
    }

    /// Describe a sequence.
    pub async fn get_sequence(&self, name: &str) -> Result<SeqInfo, PgError> {
        match self
            .call(Request::GetSequence {
                name: name.to_string(),
            })
            .await?
        {
            Response::Sequence(info) => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// `nextval(name)`: from this client's cache, else fetch the sequence's CACHE values at once.
    pub async fn nextval(&self, name: &str) -> Result<i64, PgError> {
        if let Some(v) = self.take_cached(name) {
            return Ok(v);
        }
        let known = self
            .inner
            .seqs
            .lock()
            .expect("seq cache lock")
            .cache_size
            .get(name)
            .copied();
        let count = match known {
            Some(c) => c,
            None => {
                let c = self.get_sequence(name).await?.cache.max(1) as u64;
                self.inner
                    .seqs
                    .lock()
                    .expect("seq cache lock")
                    .cache_size
                    .insert(name.to_string(), c);
                c
            }
        };
        let values = match self
            .call(Request::NextVal {
                name: name.to_string(),
                count,
            })
            .await?
        {
            Response::Values(v) if !v.is_empty() => v,
            other => return Err(unexpected(other)),
        };
        let mut s = self.inner.seqs.lock().expect("seq cache lock");
        let q = s.cached.entry(name.to_string()).or_default();
        q.extend(values);
        let v = q.pop_front().expect("non-empty values");
        s.last.insert(name.to_string(), v);
        Ok(v)
    }

    /// `currval(name)`: the value last returned by [`GtmClient::nextval`] through this client.
    ///
    /// Errors: 55000 `currval of sequence "s" is not yet defined in this session`.
    pub fn currval(&self, name: &str) -> Result<i64, PgError> {
        self.inner
            .seqs
            .lock()
            .expect("seq cache lock")
            .last
            .get(name)
            .copied()
            .ok_or_else(|| {
                PgError::new(
                    SqlState::ObjectNotInPrerequisiteState,
                    format!("currval of sequence \"{name}\" is not yet defined in this session"),
                )
            })
    }

    /// `setval(name, value, is_called)`: discards this client's cached values; sets currval when `is_called`.
    pub async fn setval(&self, name: &str, value: i64, is_called: bool) -> Result<i64, PgError> {
        let r = match self
            .call(Request::SetVal {
                name: name.to_string(),
                value,
                is_called,
            })
            .await?
        {
            Response::Value(v) => v,
            other => return Err(unexpected(other)),
        };
        let mut s = self.inner.seqs.lock().expect("seq cache lock");
        s.cached.remove(name);
        if is_called {
            s.last.insert(name.to_string(), value);
        }
        Ok(r)
    }

    /// `CREATE BARRIER ['id']`: the barrier id issued.
    pub async fn create_barrier(&self, id: Option<String>) -> Result<String, PgError> {
        match self.call(Request::CreateBarrier { id }).await? {
            Response::Barrier(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// The status of the GTM node this client is connected to.
    pub async fn status(&self) -> Result<NodeStatus, PgError> {
        match self.call(Request::Status).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// An administrative request (sent to the leader; `Promote` to the connected node).
    pub async fn admin(&self, req: AdminRequest) -> Result<Response, PgError> {
        self.call(Request::Admin(req)).await
    }

    fn take_cached(&self, name: &str) -> Option<i64> {
        let mut s = self.inner.seqs.lock().expect("seq cache lock");
        let v = s.cached.get_mut(name)?.pop_front()?;
        s.last.insert(name.to_string(), v);
        Some(v)
    }

    fn forget_seq(&self, name: &str) {
        let mut s = self.inner.seqs.lock().expect("seq cache lock");
        s.cached.remove(name);
        s.cache_size.remove(name);
    }
}

/// Whether an error from the GTM (or a proxy) says the session expired: 08006 naming an expired session.
/// Other 08006 errors (a proxy's upstream fence refusing one commit) concern only their own request.
fn is_session_expiry(e: &PgError) -> bool {
    e.code == SqlState::ConnectionFailure
        && e.message.contains("session")
        && e.message.contains("expired")
}

fn unexpected(r: Response) -> PgError {
    match r {
        Response::Error(e) => e,
        other => PgError::new(
            SqlState::InternalError,
            format!("unexpected gtm response {other:?}"),
        ),
    }
}

/// What an in-flight request is.
enum Inflight {
    User {
        call: Call,
        sent_at: Instant,
    },
    Register {
        sent_at: Instant,
        renew: bool,
    },
    KeepAlive {
        sent_at: Instant,
    },
    /// Fire-and-forget (aborts of fenced transactions).
    Background {
        req: Request,
    },
}

struct Conn {
    wr: WriteHalf<TcpStream>,
    rx: mpsc::UnboundedReceiver<Option<ServerBatch>>,
    reader: tokio::task::JoinHandle<()>,
    last_recv: Instant,
    /// A Register is in flight: user requests are held back.
    registering: bool,
    keepalive_inflight: bool,
    last_keepalive: Instant,
    addr: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct ConnTask {
    addrs: Vec<String>,
    opts: ClientOptions,
    rx: mpsc::UnboundedReceiver<Call>,
    rx_closed: bool,
    shared: Arc<Shared>,
    queue: VecDeque<Call>,
    background: Vec<Request>,
    pending: BTreeMap<ReqId, Inflight>,
    next_id: ReqId,
    session: Option<SessionId>,
    /// Open transactions: gxid → lowest snapshot xmin taken for it (`Gxid::INVALID` if none yet).
    open: BTreeMap<Gxid, Gxid>,
    /// Transactions lost with an expired session or refused by the fence: their next call fails with 08006.
    lost: BTreeSet<Gxid>,
    leader_hint: Option<String>,
    conn: Option<Conn>,
    backoff: Duration,
    /// Internal requests (Register, KeepAlive, background aborts) ready to write on the current connection.
    outbox: Vec<(ReqId, Request)>,
    /// `NotLeader` answers since the last successful registration: after the first, reconnects pause a
    /// little (an election is under way; do not spin between followers).
    redirects: u32,
}

fn call_gxid(req: &Request) -> Option<Gxid> {
    match req {
        Request::Commit { gxid } | Request::Abort { gxid } | Request::Prepare { gxid, .. } => {
            Some(*gxid)
        }
        Request::Snapshot { gxid } => *gxid,
        _ => None,
    }
}

impl ConnTask {
    fn new(
        addrs: Vec<String>,
        opts: ClientOptions,
        rx: mpsc::UnboundedReceiver<Call>,
        shared: Arc<Shared>,
    ) -> ConnTask {
        let backoff = Duration::from_millis(opts.backoff_min_ms);
        ConnTask {
            addrs,
            opts,
            rx,
            rx_closed: false,
            shared,
            queue: VecDeque::new(),
            background: Vec::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            session: None,
            open: BTreeMap::new(),
            lost: BTreeSet::new(),
            leader_hint: None,
            conn: None,
            backoff,
            outbox: Vec::new(),
            redirects: 0,
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.opts.lease_ms)
    }

    fn set_session(&mut self, s: Option<SessionId>) {
        self.session = s;
        self.shared.session.store(s.unwrap_or(0), Ordering::Relaxed);
    }

    fn mark_ok(&self, sent_at: Instant) {
        let mut l = self.shared.last_ok.lock().expect("lease lock");
        if l.is_none_or(|t| t < sent_at) {
            *l = Some(sent_at);
        }
    }

    async fn run(mut self) {
        let tick = Duration::from_millis((self.opts.keepalive_ms / 2).clamp(10, 100));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.rx_closed && self.queue.is_empty() && self.pending_user() == 0 {
                tracing::debug!("all handles dropped; gtm client task exits");
                return;
            }
            if self.conn.is_none() {
                self.connect().await;
                continue;
            }
            let conn = self.conn.as_mut().expect("connected");
            tokio::select! {
                // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
                biased;
                call = self.rx.recv(), if !self.rx_closed => match call {
                    Some(c) => {
                        self.admit(c);
                        while let Ok(c) = self.rx.try_recv() {
                            self.admit(c);
                        }
                    }
                    None => self.rx_closed = true,
                },
                batch = conn.rx.recv() => match batch {
                    Some(Some(b)) => {
                        conn.last_recv = Instant::now();
                        self.on_batch(b);
                    }
                    _ => self.drop_conn("connection lost"),
                },
                _ = ticker.tick() => self.maintenance(),
            }
            // Coalesce: let callers woken by the answers just delivered queue their next requests, so one frame
            // carries them all (batching is what makes a proxy cheap per request).
            tokio::task::yield_now().await;
            while let Ok(c) = self.rx.try_recv() {
                self.admit(c);
            }
            self.flush().await;
        }
    }

    fn pending_user(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Inflight::User { .. }))
            .count()
    }

    /// Accept a call from a handle: calls the fence or a lost session refuses fail at once.
    fn admit(&mut self, call: Call) {
        let lease_ok = self.shared.lease_ok();
        if let Some(call) = self.screen(call, lease_ok) {
            self.queue.push_back(call);
        }
    }

    /// The commit fence and lost transactions: `None` if the call was answered with 08006.
    fn screen(&mut self, call: Call, lease_ok: bool) -> Option<Call> {
        let Some(g) = call_gxid(&call.req) else {
            return Some(call);
        };
        if self.lost.contains(&g) {
            if ends_transaction(&call.req) {
                self.lost.remove(&g);
            }
            let _ = call.resp.send(Err(conn_failure(format!(
                "transaction {g} was lost: its gtm session expired or its lease lapsed"
            ))));
            return None;
        }
        if matches!(call.req, Request::Commit { .. }) && self.open.contains_key(&g) && !lease_ok {
            // The commit fence.
            tracing::warn!(gxid = g.0, "gtm lease lapsed: refusing commit");
            self.open.remove(&g);
            self.background.push(Request::Abort { gxid: g });
            let _ = call.resp.send(Err(conn_failure(format!(
                "transaction {g} cannot commit: no gtm leader confirmed the session within the lease"
            ))));
            return None;
        }
        Some(call)
    }

    /// Drain newly arrived calls and fail those past their deadline.
    fn expire(&mut self) {
        while let Ok(c) = self.rx.try_recv() {
            self.admit(c);
        }
        let now = Instant::now();
        let mut keep = VecDeque::new();
        for c in self.queue.drain(..) {
            if c.deadline <= now {
                let _ = c.resp.send(Err(conn_failure(
                    "gtm request timed out: no gtm leader reachable",
                )));
            } else {
                keep.push_back(c);
            }
        }
        self.queue = keep;
    }

    /// Wait `d`, still admitting new calls and failing expired ones.
    async fn pause(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.expire();
            if self.rx_closed && self.queue.is_empty() {
                return;
            }
            tokio::select! {
                // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
                biased;
                c = self.rx.recv(), if !self.rx_closed => match c {
                    Some(c) => self.admit(c),
                    None => self.rx_closed = true,
                },
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        self.expire();
    }

    /// Connect to the leader hint or any address, with backoff; sends Hello and starts a registration.
    async fn connect(&mut self) {
        if self.redirects > 1 {
            // Redirected again: an election is probably under way.
            let shift = (self.redirects - 2).min(6);
            let d = Duration::from_millis(
                (self.opts.backoff_min_ms << shift).min(self.opts.backoff_max_ms / 2),
            );
            self.pause(d).await;
        }
        let mut candidates: Vec<String> = Vec::new();
        if let Some(h) = self.leader_hint.take() {
            candidates.push(h);
        }
        for a in &self.addrs {
            if !candidates.contains(a) {
                candidates.push(a.clone());
            }
        }
        for addr in candidates {
            self.expire();
            let attempt = async {
                let mut s = TcpStream::connect(addr.as_str()).await?;
                let _ = s.set_nodelay(true);
                write_frame(&mut s, &Hello::Client)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(s)
            };
            match tokio::time::timeout(Duration::from_millis(self.opts.connect_timeout_ms), attempt)
                .await
            {
                Ok(Ok(stream)) => {
                    let (rd, wr) = tokio::io::split(stream);
                    // Buffered: one read system call brings in every frame the peer has sent so far.
                    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let reader = tokio::spawn(async move {
                        loop {
                            match read_frame::<_, ServerBatch>(&mut rd).await {
                                Ok(b) => {
                                    if tx.send(Some(b)).is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, "gtm connection read failed");
                                    let _ = tx.send(None);
                                    return;
                                }
                            }
                        }
                    });
                    let now = Instant::now();
                    tracing::debug!(%addr, "connected to gtm");
                    self.conn = Some(Conn {
                        wr,
                        rx,
                        reader,
                        last_recv: now,
                        registering: false,
                        keepalive_inflight: false,
                        last_keepalive: now,
                        addr,
                    });
                    self.start_register(false);
                    return;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "gtm connect failed"),
                Err(_) => tracing::debug!(%addr, "gtm connect timed out"),
            }
        }
        // Every address failed: back off, still failing expired calls.
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_millis(self.opts.backoff_max_ms));
        self.pause(d).await;
    }

    /// Queue a Register (re-attaching the current session with its open GXIDs, or opening a new one).
    fn start_register(&mut self, renew: bool) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        conn.registering = true;
        let session = if renew { None } else { self.session };
        let open = if session.is_some() {
            self.open.iter().map(|(g, x)| (*g, *x)).collect()
        } else {
            Vec::new()
        };
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(?session, open = self.open.len(), "registering gtm session");
        self.pending.insert(
            id,
            Inflight::Register {
                sent_at: Instant::now(),
                renew,
            },
        );
        // Written by the next flush, ahead of everything else.
        self.outbox.push((id, Request::Register { session, open }));
    }

    /// Forget the connection; requeue user requests that were in flight (they are all safe to retry).
    fn drop_conn(&mut self, why: &str) {
        if let Some(c) = self.conn.take() {
            tracing::info!(addr = %c.addr, why, "gtm connection dropped");
        }
        self.outbox.clear();
        let mut retry = Vec::new();
        for (_, p) in std::mem::take(&mut self.pending) {
            match p {
                Inflight::User { call, .. } => retry.push(call),
                Inflight::Background { req } => self.background.push(req),
                Inflight::Register { .. } | Inflight::KeepAlive { .. } => {}
            }
        }
        // Keep the original order: in-flight calls were sent before the queued ones.
        for c in retry.into_iter().rev() {
            self.queue.push_front(c);
        }
    }

    /// Periodic work: keepalive, stall detection, deadlines, fence-triggered re-registration.
    fn maintenance(&mut self) {
        self.expire();
        let now = Instant::now();
        let lease = self.lease();
        // Fail in-flight calls past their deadline (their answers, if any, are dropped).
        let expired: Vec<ReqId> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Inflight::User { call, .. } if call.deadline <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(Inflight::User { call, .. }) = self.pending.remove(&id) {
                let _ = call.resp.send(Err(conn_failure("gtm request timed out")));
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if now.duration_since(conn.last_recv) > lease {
            self.drop_conn("nothing received within the lease");
            return;
        }
        if !conn.keepalive_inflight
            && !conn.registering
            && now.duration_since(conn.last_keepalive)
                >= Duration::from_millis(self.opts.keepalive_ms)
        {
            conn.keepalive_inflight = true;
            conn.last_keepalive = now;
            let id = self.next_id;
            self.next_id += 1;
            self.pending
                .insert(id, Inflight::KeepAlive { sent_at: now });
            self.outbox.push((id, Request::KeepAlive));
        }
        if !conn.registering && !self.shared.lease_ok() {
            // The fence lapsed on a live connection: re-register before any further Commit.
            self.start_register(false);
        }
    }

    /// Write internal requests and every eligible queued call as one batch.
    async fn flush(&mut self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let registering = conn.registering;
        let mut requests = std::mem::take(&mut self.outbox);
        if !registering {
            for req in std::mem::take(&mut self.background) {
                let id = self.next_id;
                self.next_id += 1;
                self.pending
                    .insert(id, Inflight::Background { req: req.clone() });
                requests.push((id, req));
            }
            let now = Instant::now();
            let lease_ok = self.shared.lease_ok();
            while let Some(call) = self.queue.pop_front() {
                if call.deadline <= now {
                    let _ = call.resp.send(Err(conn_failure("gtm request timed out")));
                    continue;
                }
                let Some(mut call) = self.screen(call, lease_ok) else {
                    continue;
                };
                call.attempts += 1;
                let id = self.next_id;
                self.next_id += 1;
                requests.push((id, call.req.clone()));
                self.pending
                    .insert(id, Inflight::User { call, sent_at: now });
            }
        }
        if requests.is_empty() {
            return;
        }
        let lease = self.lease();
        let batch = ClientBatch { requests };
        let conn = self.conn.as_mut().expect("connected");
        let w = write_frame(&mut conn.wr, &batch);
        match tokio::time::timeout(lease, w).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.drop_conn(&format!("write failed: {e}")),
            Err(_) => self.drop_conn("write timed out"),
        }
    }

    fn on_batch(&mut self, batch: ServerBatch) {
        for (id, resp) in batch.responses {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            if let Response::NotLeader { leader } = &resp {
                self.leader_hint = leader.as_ref().map(|(_, a)| a.clone());
                tracing::debug!(hint = ?self.leader_hint, "not the leader: redirecting");
                match p {
                    Inflight::User { call, .. } => self.queue.push_front(call),
                    Inflight::Background { req } => self.background.push(req),
                    _ => {}
                }
                self.drop_conn("redirected");
                if self.leader_hint.is_none() {
                    // No leader known yet: do not spin on the same node.
                    self.backoff = self
                        .backoff
                        .max(Duration::from_millis(self.opts.backoff_min_ms * 5));
                }
                return;
            }
            match p {
                Inflight::Register { sent_at, renew } => self.on_registered(resp, sent_at, renew),
                Inflight::KeepAlive { sent_at } => {
                    if let Some(c) = self.conn.as_mut() {
                        c.keepalive_inflight = false;
                    }
                    match resp {
                        Response::Error(e) if is_session_expiry(&e) => self.session_expired(&e),
                        Response::Error(_) => {}
                        _ => self.mark_ok(sent_at),
                    }
                }
                Inflight::Background { .. } => {}
                Inflight::User { call, sent_at } => self.on_user_response(call, sent_at, resp),
            }
        }
    }

    fn on_registered(&mut self, resp: Response, sent_at: Instant, renew: bool) {
        match resp {
            Response::Registered { session } => {
                if let Some(old) = self.session {
                    if old != session && !renew {
                        tracing::warn!(
                            old,
                            new = session,
                            "gtm gave a new session: open transactions lost"
                        );
                        self.lose_open();
                    }
                }
                tracing::debug!(session, "gtm session registered");
                self.set_session(Some(session));
                self.mark_ok(sent_at);
                self.backoff = Duration::from_millis(self.opts.backoff_min_ms);
                self.redirects = 0;
                if let Some(c) = self.conn.as_mut() {
                    c.registering = false;
                }
            }
            Response::Error(e) if !renew && self.session.is_some() => {
                tracing::warn!(error = %e, "gtm session could not be re-attached: opening a new one");
                self.lose_open();
                self.set_session(None);
                self.start_register(true);
            }
            other => {
                tracing::warn!(?other, "gtm registration failed");
                self.drop_conn("registration failed");
            }
        }
    }

    /// Every open transaction is lost (its session expired): its next call fails with 08006.
    /// Also aborts them best-effort once the new session is registered (a no-op on the GTM if the session's
    /// close already dropped them; it ends them if only this client gave them up, e.g. behind a proxy).
    fn lose_open(&mut self) {
        let open = std::mem::take(&mut self.open);
        for g in open.keys() {
            self.background.push(Request::Abort { gxid: *g });
        }
        self.lost.extend(open.into_keys());
    }

    fn session_expired(&mut self, e: &PgError) {
        if self.conn.as_ref().is_some_and(|c| c.registering) {
            return;
        }
        tracing::warn!(error = %e, "gtm session expired: opening a new one");
        self.lose_open();
        self.set_session(None);
        self.start_register(true);
    }

    fn on_user_response(&mut self, call: Call, sent_at: Instant, resp: Response) {
        let gxid = call_gxid(&call.req);
        let _span = tracing::debug_span!("gtm_call", gxid = gxid.map(|g| g.0)).entered();
        let result = match (&call.req, resp) {
            (_, Response::Error(e)) => {
                if is_session_expiry(&e) {
                    // "GTM session N expired": every open transaction is gone.
                    self.session_expired(&e);
                    // The transaction stays lost until the caller ends it: only its Commit/Abort/Prepare
                    // consumes the mark, so a later Commit cannot slip through. (Found by the GTM chaos
                    // simulation: a Snapshot failing with "session expired" cleared the mark and the caller's
                    // next Commit of the dropped GXID was acknowledged.)
                    if let Some(g) = gxid {
                        if ends_transaction(&call.req) {
                            self.lost.remove(&g);
                        }
                    }
                } else {
                    self.mark_ok(sent_at);
                }
                match (&call.req, e.code) {
                    (Request::CreateSequence { .. }, SqlState::DuplicateTable)
                    | (Request::DropSequence { .. }, SqlState::UndefinedTable)
                        if call.attempts > 1 =>
                    {
                        Ok(Response::Ok)
                    }
                    (Request::Commit { gxid } | Request::Abort { gxid }, _) => {
                        self.open.remove(gxid);
                        Err(e)
                    }
                    _ => Err(e),
                }
            }
            (req, resp) => {
                self.mark_ok(sent_at);
                match (req, &resp) {
                    (Request::Begin, Response::Gxid(g)) => {
                        // No snapshot held yet: xmin INVALID.
                        self.open.insert(*g, Gxid::INVALID);
                    }
                    (Request::BeginSnapshot, Response::Begun { gxid, snapshot }) => {
                        self.open.insert(*gxid, snapshot.xmin);
                    }
                    (Request::Snapshot { gxid: Some(g) }, Response::Snapshot(s)) => {
                        if let Some(x) = self.open.get_mut(g) {
                            if !x.is_valid() || s.xmin < *x {
                                *x = s.xmin;
                            }
                        }
                    }
                    (
                        Request::Commit { gxid }
                        | Request::Abort { gxid }
                        | Request::Prepare { gxid, .. },
                        _,
                    ) => {
                        self.open.remove(gxid);
                    }
                    _ => {}
                }
                Ok(resp)
            }
        };
        let _ = call.resp.send(result);
    }
}
