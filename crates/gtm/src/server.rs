//! The GTM node (`pgxc gtm`): TCP front end, the single leader task, and the replication seam.
//!
//! # Design
//!
//! - One accept loop. Every connection first sends a [`Hello`]. `Hello::Peer` hands the stream to the Raft
//!   network ([`crate::raft`]); `Hello::Client` starts a client session: a reader that decodes
//!   [`ClientBatch`]es and forwards every request to the leader task, and a writer that drains whatever
//!   responses are ready into one [`ServerBatch`] (so a pipelined connection gets its answers in as few
//!   frames as possible, in any order, matched by [`ReqId`]).
//! - ONE leader task owns the [`LeaderState`] (single-threaded logic, no locks around it). It feeds each
//!   request to [`LeaderState::handle`]: a [`Step::Reply`] is sent at once; a [`Step::Propose`] is written
//!   through the replication layer in a spawned task (other requests keep flowing while it is in flight) and
//!   answered with [`LeaderState::reply_for`] once applied; a [`Step::Wait`] parks the request in a queue
//!   retried after every apply and every tick. Every [`TICK`] the task proposes what
//!   [`LeaderState::take_proposals`] asks for (GXID/sequence reservations, session closes).
//! - Leadership: the task watches the replication layer. When this node becomes leader of term `t` it first
//!   commits a [`Command::Noop`]; only once that entry is applied (so the state machine holds everything up to
//!   the leader's first entry of term `t`) does it build a fresh [`LeaderState`]. Requests that arrive in
//!   between are queued. When leadership is lost (or the term changes) the leader state is dropped and every
//!   queued request is answered [`Response::NotLeader`].
//! - A session is bound to the connection that registered it: the `Registered{session}` reply sets it, and
//!   every later request of that connection is handed to the core tagged with it (`None` before).
//! - [`Replication`] abstracts the log: [`Replication::Raft`] (openraft) or [`Replication::Memory`], a single
//!   in-memory node whose proposals apply at once to a local [`DurableState`] — the benchmark's "in-memory GTM"
//!   baseline and a convenient test server.
//! - A malformed or oversized frame closes only the connection that sent it.
//!
//! # Invariants
//!
//! **Invariant:** every leader-served reply is checked against the replication layer's lease (`RaftNode::lease_valid`) at the moment its
//! frame is written; if the lease no longer holds the reply is replaced by `NotLeader`, so a deposed leader
//! answers nothing after its lease.
//!
//! **Invariant:** no snapshot is served by a leader still recovering: the leader state is only built after the
//! no-op of its term applied, and [`LeaderState::handle`] answers `Wait` for snapshots until the sessions
//! re-registered (or their grace expired); waited requests are retried, never answered early.
//!
//! **Invariant:** a non-leader never serves transaction requests; it only answers `Status`, `Admin(Promote)`
//! and `NotLeader{leader}`.

use crate::core::{Command, CommandResult, CoreConfig, DurableState, LeaderState, Step};
use crate::proto::{
    AdminRequest, ClientBatch, Hello, NodeId, NodeStatus, ReqId, Request, Response, ServerBatch,
    SessionId,
};
use crate::tasks::spawn_cancellable;
use pgxc_common::frame::{read_frame, write_frame};
use pgxc_common::{Gxid, PgError, SqlState};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

/// How often the leader task ticks ([`LeaderState::take_proposals`] and the retry of waiting requests).
pub const TICK: Duration = Duration::from_millis(50);

/// How long a new connection may take to send its [`Hello`].
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration of a GTM node.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This node's id (Raft node id; any value for the in-memory mode).
    pub id: NodeId,
    /// Address to listen on (`host:port`; port 0 picks a free port). Ignored by
    /// [`GtmServer::start_with_listener`].
    pub listen: String,
    /// Tick period of the leader task (default [`TICK`]).
    pub tick: Duration,
    /// Tunables of the leader state machine (recovery grace, session timeout, block sizes).
    pub core: CoreConfig,
}

impl ServerConfig {
    /// A configuration with default timings.
    pub fn new(id: NodeId, listen: impl Into<String>) -> ServerConfig {
        ServerConfig {
            id,
            listen: listen.into(),
            tick: TICK,
            core: CoreConfig::default(),
        }
    }
}

/// How the GTM state is replicated.
pub enum Replication {
    /// A single in-memory node: always leader, proposals apply immediately to a local [`DurableState`], nothing
    /// survives a restart. The benchmark's "in-memory GTM" baseline.
    Memory,
    /// An openraft group member.
    Raft(crate::raft::RaftNode),
}

/// Why a proposal did not apply.
#[derive(Debug)]
enum ProposeError {
    /// This node is not (or no longer) the leader.
    NotLeader,
    /// Any other failure (storage, shutdown): treated as a loss of leadership.
    Fatal(String),
}

/// The replication layer as seen by the server: the durable state plus what the leader task needs.
struct Repl {
    id: NodeId,
    kind: Mode,
    durable: Arc<Mutex<DurableState>>,
}

/// [`Replication`] as held by the server.
enum Mode {
    Memory,
    Raft(raft_glue::Node),
}

/// Who leads, as far as this node knows.
#[derive(Clone, Debug, PartialEq)]
struct LeaderView {
    /// `Some(term)` if this node is the leader of `term`.
    leading: Option<u64>,
}

impl Repl {
    fn new(id: NodeId, kind: Replication) -> Repl {
        match kind {
            Replication::Memory => Repl {
                id,
                kind: Mode::Memory,
                durable: Arc::new(Mutex::new(DurableState::default())),
            },
            Replication::Raft(node) => {
                let durable = raft_glue::durable(&node);
                Repl {
                    id,
                    kind: Mode::Raft(tokio::sync::RwLock::new(node)),
                    durable,
                }
            }
        }
    }

    /// Whether this node may still answer as leader right now.
    fn lease_valid(&self) -> bool {
        match &self.kind {
            Mode::Memory => true,
            Mode::Raft(node) => raft_glue::lease_valid(node),
        }
    }

    /// The leader hint given in `NotLeader`.
    fn leader_hint(&self) -> Option<(NodeId, String)> {
        match &self.kind {
            Mode::Memory => None,
            Mode::Raft(node) => raft_glue::leader(node),
        }
    }

    fn view(&self) -> LeaderView {
        match &self.kind {
            Mode::Memory => LeaderView { leading: Some(0) },
            Mode::Raft(node) => LeaderView {
                leading: raft_glue::leading_term(node),
            },
        }
    }

    /// Build the raft/durable part of a status report.
    fn status(&self) -> NodeStatus {
        let mut st = match &self.kind {
            Mode::Memory => NodeStatus::blank(self.id, "leader"),
            Mode::Raft(node) => raft_glue::status(node, self.id),
        };
        st.gxid_reserved_upto = self
            .durable
            .lock()
            .expect("durable state lock")
            .gxid_reserved_upto;
        st
    }
}

/// Glue to [`crate::raft`]; kept in one place so the rest of the server does not depend on openraft types.
///
/// The node sits behind an async `RwLock` because [`RaftNode::promote`] needs `&mut` (it replaces the openraft
/// handle). Synchronous checks use `try_read`: while a promote runs, the lease is void and no leader is known.
mod raft_glue {
    use super::*;
    use crate::raft::{NodeError, RaftNode};
    use openraft::ServerState;
    use tokio::sync::RwLock;

    pub(super) type Node = RwLock<RaftNode>;

    pub(super) fn durable(node: &RaftNode) -> Arc<Mutex<DurableState>> {
        node.state.clone()
    }
    pub(super) fn lease_valid(node: &Node) -> bool {
        node.try_read().map(|n| n.lease_valid()).unwrap_or(false)
    }
    pub(super) fn leader(node: &Node) -> Option<(NodeId, String)> {
        node.try_read().ok().and_then(|n| n.leader())
    }
    pub(super) fn leading_term(node: &Node) -> Option<u64> {
        let n = node.try_read().ok()?;
        let m = n.raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader && m.current_leader == Some(n.id)).then_some(m.current_term)
    }
    pub(super) fn status(node: &Node, id: NodeId) -> NodeStatus {
        let mut st = NodeStatus::blank(id, "shutdown");
        let Ok(n) = node.try_read() else { return st };
        let m = n.metrics();
        st.role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        }
        .into();
        st.leader = n.leader();
        st.term = m.current_term;
        st.last_applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        st.members = n.members();
        st
    }
    pub(super) async fn propose(node: &Node, cmd: Command) -> Result<CommandResult, ProposeError> {
        let raft = node.read().await.raft.clone();
        match raft.client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) => Err(ProposeError::NotLeader),
            Err(e) => Err(ProposeError::Fatal(e.to_string())),
        }
    }
    fn node_err(e: NodeError, hint: Option<(NodeId, String)>) -> Response {
        match e {
            NodeError::NotLeader(_) => Response::NotLeader { leader: hint },
            NodeError::Refused(m) => {
                Response::Error(PgError::new(SqlState::ObjectNotInPrerequisiteState, m))
            }
            NodeError::Config(m) => {
                Response::Error(PgError::new(SqlState::InvalidParameterValue, m))
            }
            e => Response::Error(PgError::new(SqlState::InternalError, e.to_string())),
        }
    }
    pub(super) async fn admin(node: &Node, req: AdminRequest) -> Response {
        let r = match req {
            AdminRequest::Promote => node.write().await.promote().await.map(|_| Response::Ok),
            AdminRequest::TransferLeader { to } => {
                match node.read().await.transfer_leader(to).await {
                    Ok(true) => Ok(Response::Ok),
                    Ok(false) => Ok(Response::Error(PgError::new(
                        SqlState::ObjectNotInPrerequisiteState,
                        format!("leadership transfer to gtm node {to} did not complete"),
                    ))),
                    Err(e) => Err(e),
                }
            }
            AdminRequest::AddMember { id, addr } => node
                .read()
                .await
                .add_member(id, addr)
                .await
                .map(|_| Response::Ok),
            AdminRequest::RemoveMember { id } => node
                .read()
                .await
                .remove_member(id)
                .await
                .map(|_| Response::Ok),
        };
        r.unwrap_or_else(|e| node_err(e, leader(node)))
    }
    pub(super) async fn serve_peer(node: &Node, stream: TcpStream) {
        let raft = node.read().await.raft.clone();
        crate::raft::serve_peer(stream, raft).await;
    }
    pub(super) async fn shutdown(node: &Node) {
        if let Err(e) = node.read().await.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
    }
}

/// State shared by the accept loop, the connections and the leader task.
struct Shared {
    repl: Repl,
    to_leader: mpsc::UnboundedSender<LeaderMsg>,
    shutdown: watch::Receiver<bool>,
}

/// A response on its way to a connection's writer.
struct Outgoing {
    id: ReqId,
    resp: Response,
    /// Served as leader: replaced by `NotLeader` if the lease lapsed before the frame is written.
    needs_lease: bool,
}

type ConnId = u64;
type ConnTx = mpsc::UnboundedSender<Outgoing>;

enum LeaderMsg {
    /// A new client connection.
    Open { conn: ConnId, tx: ConnTx },
    /// Requests from a connection.
    Requests {
        conn: ConnId,
        requests: Vec<(ReqId, Request)>,
    },
    /// The connection closed.
    Closed { conn: ConnId },
}

/// A running GTM node. Dropping it does not stop it: call [`GtmServer::shutdown`].
pub struct GtmServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl GtmServer {
    /// Bind `cfg.listen` and start serving with `replication`.
    ///
    /// Errors: 08006 if the address cannot be bound.
    pub async fn start(cfg: ServerConfig, replication: Replication) -> Result<GtmServer, PgError> {
        let listener = TcpListener::bind(cfg.listen.as_str()).await.map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("cannot listen on {}: {e}", cfg.listen),
            )
        })?;
        Self::start_with_listener(listener, cfg, replication)
    }

    /// Start serving on an already bound listener (lets a test or a launcher learn every node's address before
    /// starting Raft).
    ///
    /// Errors: 08006 if the listener has no local address.
    pub fn start_with_listener(
        listener: TcpListener,
        cfg: ServerConfig,
        replication: Replication,
    ) -> Result<GtmServer, PgError> {
        let addr = listener.local_addr().map_err(|e| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("listener address: {e}"),
            )
        })?;
        let (stop, shutdown) = watch::channel(false);
        let (to_leader, leader_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            repl: Repl::new(cfg.id, replication),
            to_leader,
            shutdown,
        });
        let lt = LeaderTask::new(shared.clone(), leader_rx, &cfg);
        spawn_cancellable(
            &shared.shutdown,
            lt.run()
                .instrument(tracing::info_span!("gtm_leader", node = cfg.id)),
        );
        spawn_cancellable(
            &shared.shutdown,
            crate::tasks::accept_loop(listener, shared.shutdown.clone(), "gtm", {
                let shared = shared.clone();
                move |stream, conn| serve_conn(stream, conn, shared.clone())
            })
            .instrument(tracing::info_span!("gtm_accept", node = cfg.id, %addr)),
        );
        tracing::info!(node = cfg.id, %addr, "gtm server started");
        Ok(GtmServer { addr, shared, stop })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// This node's current status (what `Request::Status` answers, without the leader-state fields).
    pub fn status(&self) -> NodeStatus {
        self.shared.repl.status()
    }

    /// Stop accepting, close every connection, stop the leader task and (in Raft mode) shut Raft down.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Mode::Raft(node) = &self.shared.repl.kind {
            raft_glue::shutdown(node).await;
        }
        tracing::info!(addr = %self.addr, "gtm server stopped");
    }
}

async fn serve_conn(mut stream: TcpStream, conn: ConnId, shared: Arc<Shared>) {
    let hello: Hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut stream)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "bad hello; closing");
            return;
        }
        Err(_) => {
            tracing::debug!("no hello; closing");
            return;
        }
    };
    match hello {
        Hello::Peer { from } => match &shared.repl.kind {
            Mode::Raft(node) => {
                tracing::debug!(from, "raft peer connected");
                raft_glue::serve_peer(node, stream).await;
            }
            Mode::Memory => tracing::debug!(from, "raft peer on an in-memory gtm; closing"),
        },
        Hello::Client => client_session(stream, conn, shared).await,
    }
}

async fn client_session(stream: TcpStream, conn: ConnId, shared: Arc<Shared>) {
    let (rd, mut wr) = tokio::io::split(stream);
    // Buffered: one read system call brings in every frame the peer has sent so far.
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    if shared.to_leader.send(LeaderMsg::Open { conn, tx }).is_err() {
        return;
    }
    let wshared = shared.clone();
    let writer = async move {
        while let Some(first) = rx.recv().await {
            let mut out = vec![first];
            while let Ok(more) = rx.try_recv() {
                out.push(more);
            }
            // The lease is checked at the moment of replying, for the whole frame.
            let lease_ok = !out.iter().any(|o| o.needs_lease) || wshared.repl.lease_valid();
            let hint = if lease_ok {
                None
            } else {
                wshared.repl.leader_hint()
            };
            let responses = out
                .into_iter()
                .map(|o| {
                    if o.needs_lease && !lease_ok {
                        (
                            o.id,
                            Response::NotLeader {
                                leader: hint.clone(),
                            },
                        )
                    } else {
                        (o.id, o.resp)
                    }
                })
                .collect();
            if let Err(e) = write_frame(&mut wr, &ServerBatch { responses }).await {
                tracing::debug!(error = %e, "write failed; closing");
                return;
            }
        }
    };
    let reader = async {
        loop {
            match read_frame::<_, ClientBatch>(&mut rd).await {
                Ok(batch) => {
                    if shared
                        .to_leader
                        .send(LeaderMsg::Requests {
                            conn,
                            requests: batch.requests,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(pgxc_common::frame::FrameError::Closed) => return,
                Err(e) => {
                    tracing::info!(error = %e, "bad frame from client; closing the connection");
                    return;
                }
            }
        }
    };
    tokio::select! {
        // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
        biased;
        _ = reader => {}
        _ = writer => {}
    }
    let _ = shared.to_leader.send(LeaderMsg::Closed { conn });
}

/// A request waiting for an answer from the leader task.
struct Pending {
    conn: ConnId,
    id: ReqId,
    req: Request,
}

/// A proposal (or admin operation) that finished.
// Moved once through a channel per proposal; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Done {
    Proposal {
        gen: u64,
        origin: Option<Pending>,
        cmd: Command,
        result: Result<CommandResult, ProposeError>,
    },
    /// The no-op that opens a term committed (or failed).
    Noop { gen: u64, ok: bool },
}

enum Role {
    Follower,
    /// Leader of `term`, waiting for its no-op to apply; requests are queued.
    Becoming {
        term: u64,
        queued: Vec<Pending>,
    },
    /// Serving.
    Leader {
        term: u64,
        state: Box<LeaderState>,
        waiting: VecDeque<Pending>,
    },
}

struct ConnEntry {
    session: Option<SessionId>,
    tx: ConnTx,
}

struct LeaderTask {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<LeaderMsg>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    conns: BTreeMap<ConnId, ConnEntry>,
    role: Role,
    /// Bumped on every role change; stale completions are recognised by it.
    gen: u64,
    start: Instant,
    tick: Duration,
    core: CoreConfig,
    retry: bool,
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

impl LeaderTask {
    fn new(
        shared: Arc<Shared>,
        rx: mpsc::UnboundedReceiver<LeaderMsg>,
        cfg: &ServerConfig,
    ) -> LeaderTask {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        LeaderTask {
            shared,
            rx,
            done_tx,
            done_rx,
            conns: BTreeMap::new(),
            role: Role::Follower,
            gen: 0,
            start: Instant::now(),
            tick: cfg.tick,
            core: cfg.core.clone(),
            retry: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.check_leadership();
        // Leadership is polled on every tick rather than awaited on openraft's metrics watch: tokio's `watch`
        // wakes its waiters through one of eight `Notify`s picked with tokio's process-global random seed, so
        // a second waiter on the same watch (the raft lease observer is the first) made the wake order differ
        // from run to run and broke madsim's determinism check. A tick is at most 50 ms late.
        loop {
            tokio::select! {
                // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
                biased;
                msg = self.rx.recv() => match msg {
                    Some(m) => {
                        let requests = matches!(m, LeaderMsg::Requests { .. });
                        self.on_msg(m);
                        if requests {
                            // Background proposals (GXID and sequence reservations) right away, not only on the
                            // tick: at the tick alone, one GXID block per tick capped throughput at
                            // block / tick (10,000 per 50 ms = 200,000 GXIDs/s).
                            self.on_tick();
                        }
                    }
                    None => return,
                },
                Some(done) = self.done_rx.recv() => self.on_done(done),
                _ = ticker.tick() => {
                    self.check_leadership();
                    self.on_tick();
                }
            }
            if self.retry {
                self.retry = false;
                self.retry_waiting();
            }
        }
    }

    fn send(&self, conn: ConnId, id: ReqId, resp: Response, needs_lease: bool) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.tx.send(Outgoing {
                id,
                resp,
                needs_lease,
            });
        }
    }

    fn not_leader(&self) -> Response {
        Response::NotLeader {
            leader: self.shared.repl.leader_hint(),
        }
    }

    fn on_msg(&mut self, msg: LeaderMsg) {
        match msg {
            LeaderMsg::Open { conn, tx } => {
                self.conns.insert(conn, ConnEntry { session: None, tx });
            }
            LeaderMsg::Closed { conn } => {
                self.conns.remove(&conn);
            }
            LeaderMsg::Requests { conn, requests } => {
                for (id, req) in requests {
                    self.on_request(Pending { conn, id, req });
                }
            }
        }
    }

    fn on_request(&mut self, p: Pending) {
        match &p.req {
            Request::Status => {
                let st = self.status();
                self.send(p.conn, p.id, Response::Status(st), false);
                return;
            }
            Request::Admin(AdminRequest::Promote) => {
                self.spawn_admin(p, false);
                return;
            }
            Request::Admin(_) => {
                if matches!(self.role, Role::Leader { .. }) {
                    // Admin replies report on the group, not on GTM state: no lease needed (a transfer ends the lease).
                    self.spawn_admin(p, false);
                } else {
                    let r = self.not_leader();
                    self.send(p.conn, p.id, r, false);
                }
                return;
            }
            _ => {}
        }
        match &mut self.role {
            Role::Follower => {
                let r = self.not_leader();
                self.send(p.conn, p.id, r, false);
            }
            Role::Becoming { queued, .. } => queued.push(p),
            Role::Leader { .. } => self.dispatch(p),
        }
    }

    fn spawn_admin(&self, p: Pending, needs_lease: bool) {
        let Request::Admin(a) = p.req else { return };
        let Some(tx) = self.conns.get(&p.conn).map(|c| c.tx.clone()) else {
            return;
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let resp = match &shared.repl.kind {
                Mode::Memory => Response::Error(PgError::new(
                    SqlState::FeatureNotSupported,
                    "administrative requests need a raft gtm (this one is in-memory)",
                )),
                Mode::Raft(node) => raft_glue::admin(node, a).await,
            };
            let _ = tx.send(Outgoing {
                id: p.id,
                resp,
                needs_lease,
            });
        });
    }

    fn status(&self) -> NodeStatus {
        let mut st = self.shared.repl.status();
        if let Role::Leader { state, .. } = &self.role {
            leader_status(state, &mut st);
        }
        st
    }

    /// Feed one request to the leader state.
    fn dispatch(&mut self, p: Pending) {
        let now = self.now_ms();
        let session = self.conns.get(&p.conn).and_then(|c| c.session);
        let Role::Leader { state, waiting, .. } = &mut self.role else {
            let r = self.not_leader();
            self.send(p.conn, p.id, r, false);
            return;
        };
        let gxid = req_gxid(&p.req).map(|g| g.0);
        let span = tracing::debug_span!("gtm_req", conn = p.conn, id = p.id, gxid);
        let _e = span.enter();
        let step = {
            let durable = self.shared.repl.durable.lock().expect("durable state lock");
            state.handle(session, &p.req, &durable, now)
        };
        match step {
            Step::Reply(r) => {
                tracing::trace!(?r, "reply");
                self.reply(p, r);
            }
            Step::Propose(cmd) => {
                tracing::trace!(?cmd, "propose");
                self.propose(cmd, Some(p));
            }
            Step::Wait => waiting.push_back(p),
        }
    }

    /// Send a leader reply, binding the session on `Registered`.
    fn reply(&mut self, p: Pending, r: Response) {
        if let Response::Registered { session } = &r {
            if let Some(c) = self.conns.get_mut(&p.conn) {
                c.session = Some(*session);
            }
        }
        self.send(p.conn, p.id, r, true);
    }

    fn propose(&mut self, cmd: Command, origin: Option<Pending>) {
        match &self.shared.repl.kind {
            Mode::Memory => {
                let result = self
                    .shared
                    .repl
                    .durable
                    .lock()
                    .expect("durable state lock")
                    .apply(&cmd);
                self.on_done(Done::Proposal {
                    gen: self.gen,
                    origin,
                    cmd,
                    result: Ok(result),
                });
            }
            Mode::Raft(_) => {
                let shared = self.shared.clone();
                let done = self.done_tx.clone();
                let gen = self.gen;
                tokio::spawn(async move {
                    let Mode::Raft(node) = &shared.repl.kind else {
                        return;
                    };
                    let result = raft_glue::propose(node, cmd.clone()).await;
                    let _ = done.send(Done::Proposal {
                        gen,
                        origin,
                        cmd,
                        result,
                    });
                });
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Noop { gen, ok } => {
                if gen != self.gen {
                    return;
                }
                let Role::Becoming { term, queued } =
                    std::mem::replace(&mut self.role, Role::Follower)
                else {
                    return;
                };
                if !ok {
                    self.step_down(queued);
                    return;
                }
                self.become_leader(term, queued);
            }
            Done::Proposal {
                gen,
                origin,
                cmd,
                result,
            } => {
                if gen != self.gen {
                    if let Some(p) = origin {
                        let r = self.not_leader();
                        self.send(p.conn, p.id, r, false);
                    }
                    return;
                }
                match result {
                    Ok(res) => {
                        let Role::Leader { state, .. } = &mut self.role else {
                            if let Some(p) = origin {
                                let r = self.not_leader();
                                self.send(p.conn, p.id, r, false);
                            }
                            return;
                        };
                        {
                            let durable =
                                self.shared.repl.durable.lock().expect("durable state lock");
                            state.on_applied(&cmd, &res, &durable);
                        }
                        if let Some(p) = origin {
                            let r = state.reply_for(&p.req, &cmd, &res);
                            self.reply(p, r);
                        }
                        self.retry = true;
                    }
                    Err(e) => {
                        match &e {
                            ProposeError::NotLeader => {
                                tracing::info!(?cmd, "proposal refused: not the leader any more")
                            }
                            ProposeError::Fatal(m) => {
                                tracing::warn!(error = %m, ?cmd, "proposal failed; stepping down")
                            }
                        }
                        if let Some(p) = origin {
                            let r = self.not_leader();
                            self.send(p.conn, p.id, r, false);
                        }
                        self.lose_leadership();
                    }
                }
            }
        }
    }

    fn become_leader(&mut self, term: u64, queued: Vec<Pending>) {
        let now = self.now_ms();
        let state = {
            let durable = self.shared.repl.durable.lock().expect("durable state lock");
            LeaderState::with_config(&durable, now, self.core.clone())
        };
        tracing::info!(term, "leading: leader state built");
        self.role = Role::Leader {
            term,
            state: Box::new(state),
            waiting: VecDeque::new(),
        };
        for p in queued {
            self.dispatch(p);
        }
    }

    fn step_down(&mut self, pending: Vec<Pending>) {
        for p in pending {
            let r = self.not_leader();
            self.send(p.conn, p.id, r, false);
        }
    }

    /// Drop any leader state and answer everything queued with `NotLeader`.
    fn lose_leadership(&mut self) {
        self.gen += 1;
        match std::mem::replace(&mut self.role, Role::Follower) {
            Role::Follower => {}
            Role::Becoming { queued, .. } => self.step_down(queued),
            Role::Leader { waiting, term, .. } => {
                tracing::info!(term, "leadership lost: leader state dropped");
                self.step_down(waiting.into_iter().collect());
            }
        }
    }

    /// Compare the role with what the replication layer says.
    fn check_leadership(&mut self) {
        let view = self.shared.repl.view();
        let current = match &self.role {
            Role::Follower => None,
            Role::Becoming { term, .. } | Role::Leader { term, .. } => Some(*term),
        };
        if current == view.leading {
            return;
        }
        if current.is_some() {
            self.lose_leadership();
        }
        if let Some(term) = view.leading {
            self.gen += 1;
            match &self.shared.repl.kind {
                Mode::Memory => self.become_leader(term, Vec::new()),
                Mode::Raft(_) => {
                    tracing::info!(term, "elected: committing the no-op of the term");
                    self.role = Role::Becoming {
                        term,
                        queued: Vec::new(),
                    };
                    let shared = self.shared.clone();
                    let done = self.done_tx.clone();
                    let gen = self.gen;
                    tokio::spawn(async move {
                        let Mode::Raft(node) = &shared.repl.kind else {
                            return;
                        };
                        let ok = raft_glue::propose(node, Command::Noop).await.is_ok();
                        let _ = done.send(Done::Noop { gen, ok });
                    });
                }
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now_ms();
        let Role::Leader { state, .. } = &mut self.role else {
            return;
        };
        let cmds = {
            let durable = self.shared.repl.durable.lock().expect("durable state lock");
            state.take_proposals(&durable, now)
        };
        for cmd in cmds {
            self.propose(cmd, None);
        }
        self.retry = true;
    }

    /// Retry every waiting request once, in arrival order.
    fn retry_waiting(&mut self) {
        let Role::Leader { waiting, .. } = &mut self.role else {
            return;
        };
        let batch: Vec<Pending> = std::mem::take(waiting).into_iter().collect();
        for p in batch {
            self.dispatch(p);
        }
    }
}

/// Fill the leader-state fields of a status report.
fn leader_status(state: &LeaderState, st: &mut NodeStatus) {
    st.next_gxid = state.next_gxid().0;
    st.running = state.running_count();
    st.recovering = state.is_recovering();
}
