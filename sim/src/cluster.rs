//! Building blocks of a simulated cluster (madsim only): the GTM group, datanodes serving the
//! coordinator→datanode protocol over the simulated network from the production server code, and
//! the coordinator's side of the commit protocol (`pgxc_cluster::twophase`) over `DnConn`s.
//!
//! - [`GtmGroup::start`]: 3 GTM replicas (openraft, simulated disks that lose unsynced writes on a
//!   crash), as in `tests/gtm_chaos.rs`.
//! - [`Datanode::start`]: one simulated machine running `pgxc_datanode::server::serve` on an engine
//!   in `WaitMode::Restart` over its own [`SimDisk`]; its own internal transactions take GXIDs from
//!   the GTM through a [`PrefetchedSource`]. [`Datanode::crash`] loses the disk's unsynced writes
//!   (power failure) and kills the machine; [`Datanode::restart`] boots it again from its disk.
//! - [`GtmLog`], [`Nodes`], [`Part`]: what a coordinator gives `twophase::commit` — the GTM as
//!   the decision record, datanodes by name for the second phase and the resolver, and one
//!   datanode connection per participant. Every network call has a simulated-time deadline
//!   ([`CALL_DEADLINE`]): a dead peer makes calls fail (08006/08007), never hang.

use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;
use openraft::BasicNode;
use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_cluster::twophase::{DecisionLog, InDoubt, NodeAccess, OrphanSource, Participant};
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use pgxc_datanode::client::DnConn;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::raft::{start_raft, RaftConfig};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sql::engine::{TxnSource, WaitMode};
use pgxc_sql::Engine;
use pgxc_storage::{CrashReport, Disk, SimDisk};
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The GTM replicas' port.
pub const GTM_PORT: u16 = 6666;
/// The datanodes' coordinator-protocol port.
pub const DN_PORT: u16 = 15432;
/// How long one network call (GTM request, datanode request, connect) may take in simulated
/// time before it counts as failed.
pub const CALL_DEADLINE: Duration = Duration::from_secs(3);

/// `f` with the [`CALL_DEADLINE`]; a timeout is 08007 (the request may have been applied).
pub async fn deadline<T>(
    what: &str,
    f: impl Future<Output = Result<T, PgError>>,
) -> Result<T, PgError> {
    match tokio::time::timeout(CALL_DEADLINE, f).await {
        Ok(r) => r,
        Err(_) => Err(PgError::new(
            SqlState::TransactionResolutionUnknown,
            format!("{what}: no answer within {CALL_DEADLINE:?} (simulated)"),
        )),
    }
}

/// Whether `PGXC_SIM_MISTAKE` (a comma-separated list) names the re-introduced mistake `name`.
pub fn mistake(name: &str) -> bool {
    std::env::var("PGXC_SIM_MISTAKE").is_ok_and(|m| m.split(',').any(|m| m.trim() == name))
}

/// The IP of GTM replica `i` (1-based).
pub fn gtm_ip(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, i as u8))
}

/// The address of GTM replica `i`.
pub fn gtm_addr(i: u64) -> String {
    format!("{}:{GTM_PORT}", gtm_ip(i))
}

/// A running 3-replica GTM group.
pub struct GtmGroup {
    /// The replicas' madsim node ids, replica 1 first.
    pub nodes: Vec<NodeId>,
    /// Their disks (they outlive a killed replica).
    pub disks: Vec<SimDisk>,
    /// Their client addresses.
    pub addrs: Vec<String>,
}

impl GtmGroup {
    /// Start replicas 1..=3 (replica 1 initialises the group on its first boot).
    pub fn start(handle: &Handle) -> GtmGroup {
        let members: BTreeMap<u64, BasicNode> =
            (1..=3).map(|i| (i, BasicNode::new(gtm_addr(i)))).collect();
        let mut disks = Vec::new();
        let mut nodes = Vec::new();
        for i in 1..=3u64 {
            let disk = SimDisk::new();
            disks.push(disk.clone());
            let first_boot = Arc::new(AtomicBool::new(i == 1));
            let members = members.clone();
            let node = handle
                .create_node()
                .name(format!("gtm{i}"))
                .ip(gtm_ip(i))
                .init(move || {
                    let disk = disk.clone();
                    let first_boot = first_boot.clone();
                    let members = members.clone();
                    async move {
                        let d = Disk::sim(disk);
                        let node = match start_raft(i, &d, RaftConfig::default()).await {
                            Ok(n) => n,
                            Err(e) => {
                                tracing::warn!("gtm{i} cannot start: {e}");
                                return;
                            }
                        };
                        if first_boot.swap(false, Ordering::SeqCst) {
                            if let Err(e) = node.initialize(members).await {
                                tracing::warn!("gtm{i} cannot initialise the group: {e}");
                                return;
                            }
                        }
                        let mut cfg = ServerConfig::new(i, gtm_addr(i));
                        // Issue 7's second mistake: a new leader serves snapshots without the
                        // transactions still running (no wait for re-registration).
                        cfg.core.mistakes.stale_snapshot_after_leader_change =
                            mistake("stale_snapshot_after_leader_change");
                        let _server = match GtmServer::start(cfg, Replication::Raft(node)).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!("gtm{i} server cannot start: {e}");
                                return;
                            }
                        };
                        std::future::pending::<()>().await;
                    }
                })
                .build();
            nodes.push(node.id());
        }
        GtmGroup {
            nodes,
            disks,
            addrs: (1..=3).map(gtm_addr).collect(),
        }
    }

    /// Connect a client, retrying until `within` (simulated) has passed.
    pub async fn connect(addrs: Vec<String>, within: Duration) -> Result<GtmClient, String> {
        let end = tokio::time::Instant::now() + within;
        loop {
            let r = deadline(
                "connect to the GTM",
                GtmClient::connect(addrs.clone(), ClientOptions::default()),
            )
            .await;
            match r {
                Ok(c) => return Ok(c),
                Err(e) if tokio::time::Instant::now() > end => {
                    return Err(format!("GTM unreachable: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// A datanode's own source of GXIDs and snapshots in the simulation: GXIDs the GTM issued,
/// asked for ahead (the engine calls its source synchronously, and nothing may block the
/// simulation's thread); ends are reported to the GTM by a task. Enough for the engine's internal
/// transactions (catalog bootstrap, sequence bookkeeping); every other transaction on a datanode
/// is coordinator-directed. Its snapshots are the one taken with the last GXID handed out
/// (internal transactions only read the engine's own system tables).
pub struct PrefetchedSource {
    pool: Mutex<VecDeque<(Gxid, Snapshot)>>,
    last: Mutex<Option<Snapshot>>,
    ends: tokio::sync::mpsc::UnboundedSender<(Gxid, bool)>,
}

impl PrefetchedSource {
    /// Ask the GTM for `n` GXIDs now; spawn the task reporting ends over `client`.
    pub async fn fetch(client: GtmClient, n: usize) -> Result<Arc<PrefetchedSource>, PgError> {
        let mut pool = VecDeque::new();
        for _ in 0..n {
            pool.push_back(deadline("begin at the GTM", client.begin_snapshot()).await?);
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Gxid, bool)>();
        tokio::spawn(async move {
            while let Some((x, committed)) = rx.recv().await {
                let r = if committed {
                    deadline("commit at the GTM", client.commit(x)).await
                } else {
                    deadline("abort at the GTM", client.abort(x)).await
                };
                if let Err(e) = r {
                    tracing::debug!(%x, "datanode could not report an end: {e}");
                }
            }
        });
        Ok(Arc::new(PrefetchedSource {
            pool: Mutex::new(pool),
            last: Mutex::new(None),
            ends: tx,
        }))
    }

    /// Give the unused GXIDs back (abort them at the GTM).
    pub fn release_unused(&self) {
        let rest: Vec<_> = self.pool.lock().unwrap().drain(..).collect();
        for (x, _) in rest {
            let _ = self.ends.send((x, false));
        }
    }
}

impl TxnSource for PrefetchedSource {
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError> {
        let next = self.pool.lock().unwrap().pop_front();
        match next {
            Some((x, snap)) => {
                *self.last.lock().unwrap() = Some(snap.clone());
                Ok((x, snap))
            }
            None => Err(PgError::new(
                SqlState::InternalError,
                "the simulated datanode used up its prefetched GXIDs",
            )),
        }
    }

    fn snapshot(&self) -> Result<Snapshot, PgError> {
        self.last.lock().unwrap().clone().ok_or_else(|| {
            PgError::new(
                SqlState::InternalError,
                "no snapshot before the first prefetched GXID",
            )
        })
    }

    fn end(&self, xid: Gxid, committed: bool) {
        let _ = self.ends.send((xid, committed));
    }
}

/// A simulated datanode machine.
pub struct Datanode {
    /// The node name (`dn1`, ...).
    pub name: String,
    /// Its coordinator-protocol address.
    pub addr: String,
    /// The madsim node.
    pub node: NodeId,
    /// Its disk (outlives crashes).
    pub disk: SimDisk,
    /// Whether it is down (crashed, not restarted).
    pub down: bool,
}

impl Datanode {
    /// The IP of datanode `i` (1-based).
    pub fn ip(i: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 4, i as u8))
    }

    /// Create datanode `i` and boot it: connect to the GTM, fetch GXIDs for its own transactions,
    /// open (or recover) its engine from its disk, serve coordinators on [`DN_PORT`].
    pub fn start(handle: &Handle, i: u64, gtm_addrs: Vec<String>) -> Datanode {
        let disk = SimDisk::new();
        let name = format!("dn{i}");
        let addr = format!("{}:{DN_PORT}", Datanode::ip(i));
        let (d2, n2, a2) = (disk.clone(), name.clone(), addr.clone());
        let node: NodeHandle = handle
            .create_node()
            .name(name.clone())
            .ip(Datanode::ip(i))
            .init(move || {
                let (disk, name, addr, gtm) =
                    (d2.clone(), n2.clone(), a2.clone(), gtm_addrs.clone());
                async move {
                    // As under a supervisor (systemd's Restart=on-failure): the production
                    // datanode exits when it cannot reach the GTM or open its store at boot,
                    // and is started again. Without this a datanode that booted while the GTM
                    // had no leader stayed down for good (seed 91 of 100).
                    loop {
                        match Datanode::boot(disk.clone(), name.clone(), addr.clone(), gtm.clone())
                            .await
                        {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!("{name} cannot boot: {e}; starting it again in 1 s");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                }
            })
            .build();
        Datanode {
            name,
            addr,
            node: node.id(),
            disk,
            down: false,
        }
    }

    async fn boot(
        disk: SimDisk,
        name: String,
        addr: String,
        gtm: Vec<String>,
    ) -> Result<(), String> {
        let client = GtmGroup::connect(gtm, Duration::from_secs(60)).await?;
        let source = PrefetchedSource::fetch(client, 4)
            .await
            .map_err(|e| format!("fetch GXIDs: {e}"))?;
        let src: Arc<dyn TxnSource> = source.clone();
        let engine = Engine::open_with_mode(&Disk::sim(disk), &name, Some(src), WaitMode::Restart)
            .map_err(|e| format!("open the engine: {e}"))?;
        source.release_unused();
        if mistake("ack_before_durable") {
            // Issue 7's third mistake: acknowledge commits before they are durable.
            engine.store().set_mistake_ack_before_durable(true);
        }
        let listener = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        pgxc_datanode::server::serve(listener, engine, name)
            .await
            .map_err(|e| format!("serve: {e}"))
    }

    /// Power failure: the disk loses its unsynced writes (drawn from `rng`), then the machine
    /// dies (its tasks are dropped; its engine's destructors cannot write: the disk fenced them).
    pub fn crash(&mut self, handle: &Handle, rng: &mut impl Rng) -> CrashReport {
        let report = self.disk.crash(rng);
        handle.kill(self.node);
        self.down = true;
        report
    }

    /// Boot the machine again from its disk.
    pub fn restart(&mut self, handle: &Handle) {
        handle.restart(self.node);
        self.down = false;
    }
}

/// The GTM as the commit protocol's durable decision record, each call with the
/// [`CALL_DEADLINE`].
pub struct GtmLog<'a>(pub &'a GtmClient);

impl DecisionLog for GtmLog<'_> {
    async fn prepare(&self, gxid: Gxid, gid: &str, nodes: Vec<String>) -> Result<(), PgError> {
        deadline("GTM prepare", self.0.prepare(gxid, gid, nodes)).await
    }
    async fn decide(&self, gid: &str, commit: bool) -> Result<(), PgError> {
        deadline("GTM decide", self.0.decide(gid, commit)).await
    }
    async fn forget(&self, gid: &str) -> Result<(), PgError> {
        deadline("GTM forget", self.0.forget(gid)).await
    }
    async fn commit(&self, gxid: Gxid) -> Result<(), PgError> {
        deadline("GTM commit", self.0.commit(gxid)).await
    }
    async fn abort(&self, gxid: Gxid) -> Result<(), PgError> {
        deadline("GTM abort", self.0.abort(gxid)).await
    }
    async fn list_prepared(&self) -> Result<Vec<InDoubt>, PgError> {
        Ok(deadline("GTM list prepared", self.0.list_prepared())
            .await?
            .into_iter()
            .map(|p| InDoubt {
                gxid: p.gxid,
                gid: p.gid,
                nodes: p.nodes,
                decision: p.decision,
            })
            .collect())
    }
}

/// Datanodes by name (name → address), reached on a fresh connection per call: the second phase
/// and the resolver.
pub struct Nodes {
    /// The coordinator's name, sent in `Hello`.
    pub coordinator: String,
    /// Datanode name → address.
    pub addrs: BTreeMap<String, String>,
}

impl Nodes {
    /// A connection to `node`. Errors: 42704 unknown node, 08006, or the datanode's error.
    pub async fn connect(&self, node: &str) -> Result<DnConn, PgError> {
        let addr = self.addrs.get(node).ok_or_else(|| {
            PgError::new(
                SqlState::UndefinedObject,
                format!("datanode \"{node}\" does not exist"),
            )
        })?;
        deadline(
            "connect to a datanode",
            DnConn::connect(node, addr, &self.coordinator, Vec::new()),
        )
        .await
    }

    /// The gids prepared on `node`.
    pub async fn list_prepared(&self, node: &str) -> Result<Vec<(String, Gxid)>, PgError> {
        let mut c = self.connect(node).await?;
        match deadline("list prepared", c.call(DnRequest::ListPrepared)).await? {
            DnResponse::Prepared(v) => Ok(v),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to ListPrepared: {other:?}"),
            )),
        }
    }
}

impl NodeAccess for Nodes {
    async fn finish_prepared(&self, node: &str, gid: &str, commit: bool) -> Result<(), PgError> {
        let mut c = self.connect(node).await?;
        deadline(
            "finish prepared",
            c.call(DnRequest::FinishPrepared {
                gid: gid.to_string(),
                commit,
            }),
        )
        .await
        .map(|_| ())
    }
}

/// What the resolver's orphan sweep (`twophase::roll_back_orphans`) reads: the GTM's running set
/// and each datanode's prepared transactions, each call with the [`CALL_DEADLINE`].
pub struct Orphans<'a> {
    /// The GTM.
    pub gtm: &'a GtmClient,
    /// The datanodes.
    pub nodes: &'a Nodes,
}

impl OrphanSource for Orphans<'_> {
    async fn gtm_snapshot(&self) -> Result<Snapshot, PgError> {
        deadline("GTM snapshot", self.gtm.snapshot(None)).await
    }
    async fn node_prepared(&self, node: &str) -> Result<Vec<(String, Gxid)>, PgError> {
        self.nodes.list_prepared(node).await
    }
}

/// One datanode's side of one global transaction: a connection with the local transaction open.
/// A call that times out leaves the connection unusable (a frame may be half read), so it is
/// dropped and later calls fail with 08006.
pub struct Part {
    name: String,
    conn: Option<DnConn>,
    /// Whether the transaction wrote on this node.
    pub wrote: bool,
    /// Transactions whose updates it followed here (READ COMMITTED; `Txn::followed`): a
    /// coordinator ends it at the GTM only after they ended there.
    pub followed: Vec<Gxid>,
}

impl Part {
    /// Open `conn`'s part of `gxid` (READ COMMITTED unless `repeatable`).
    pub async fn begin(
        mut conn: DnConn,
        gxid: Gxid,
        repeatable: bool,
        read_only: bool,
    ) -> Result<Part, PgError> {
        let isolation = if repeatable {
            pgxc_cluster::proto::DnIsolation::RepeatableRead
        } else {
            pgxc_cluster::proto::DnIsolation::ReadCommitted
        };
        deadline(
            "Begin",
            conn.call(DnRequest::Begin {
                gxid,
                isolation,
                read_only,
            }),
        )
        .await?;
        Ok(Part {
            name: conn.node().to_string(),
            conn: Some(conn),
            wrote: false,
            followed: Vec::new(),
        })
    }

    /// Send one request with the deadline.
    pub async fn call(&mut self, req: DnRequest) -> Result<DnResponse, PgError> {
        let Some(c) = self.conn.as_mut() else {
            return Err(PgError::new(
                SqlState::ConnectionFailure,
                format!("connection to datanode \"{}\" is broken", self.name),
            ));
        };
        let r = deadline("datanode request", c.call(req)).await;
        if matches!(&r, Err(e) if e.code == SqlState::TransactionResolutionUnknown) {
            self.conn = None;
        }
        r
    }

    /// Run `sql` under `snapshot`; returns the last statement's result (rows and tag).
    pub async fn execute(
        &mut self,
        snapshot: Snapshot,
        sql: &str,
    ) -> Result<pgxc_cluster::proto::DnResult, PgError> {
        match self
            .call(DnRequest::Execute {
                snapshot,
                sql: sql.to_string(),
            })
            .await?
        {
            DnResponse::Results {
                mut results,
                wrote,
                followed,
            } => {
                self.wrote |= wrote;
                for g in followed {
                    if !self.followed.contains(&g) {
                        self.followed.push(g);
                    }
                }
                results.pop().ok_or_else(|| {
                    PgError::new(SqlState::ProtocolViolation, "Execute answered no result")
                })
            }
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to Execute: {other:?}"),
            )),
        }
    }
}

impl Participant for Part {
    fn name(&self) -> &str {
        &self.name
    }
    fn wrote(&self) -> bool {
        self.wrote
    }
    async fn commit(&mut self) -> Result<(), PgError> {
        self.call(DnRequest::Commit).await.map(|_| ())
    }
    async fn rollback(&mut self) -> Result<(), PgError> {
        self.call(DnRequest::Rollback).await.map(|_| ())
    }
    async fn prepare(&mut self, gid: &str) -> Result<(), PgError> {
        self.call(DnRequest::Prepare {
            gid: gid.to_string(),
        })
        .await
        .map(|_| ())
    }
}
