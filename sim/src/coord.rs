//! Simulated coordinators and GTM proxies (madsim only): the production coordinator
//! (`pgxc_coordinator::node::Coordinator`, sessions are `pgxc_coordinator::session::CoordSession`)
//! on its own simulated machine, with its catalog engine on its own [`SimDisk`], its in-doubt
//! resolver running and its coordinator-protocol endpoint served to its peers (DDL runs on every
//! coordinator's catalog), exactly as `pgxc coordinator` runs it.
//!
//! - [`GtmProxyNode::start`]: a simulated machine running `pgxc_gtm::proxy::GtmProxy` in front of
//!   the GTM group (XC's GTM proxy; a coordinator may talk to the GTM through it).
//! - [`SimCoordinator::start`]: boot a coordinator: connect to the GTM (or its proxy), open the
//!   catalog engine in `WaitMode::Restart` on its disk (its own internal transactions take GXIDs the
//!   GTM issued ahead, [`CatalogSource`]), `Coordinator::start`, the resolver task, the
//!   coordinator-protocol server for its peers, then accept simulated client sessions.
//! - [`SimCoordinator::connect`]: a client session, [`SqlClient`]: every query string runs through
//!   `CoordSession::execute` — the same session API the pgwire front end calls — on a task of the
//!   coordinator's machine, so a killed coordinator takes its sessions (and their datanode
//!   connections) with it, as a killed process would.
//! - [`SimCoordinator::crash`] / [`SimCoordinator::restart`]: power failure of the machine (the
//!   catalog disk loses unsynced writes) at whatever moment the simulation is in — between PREPARE
//!   and COMMIT PREPARED included — and a reboot from the same disk.
//! - [`GxidLog`]: every GXID the sessions were issued, seen through the coordinator's own
//!   `session` tracing span (for the "no GXID issued twice" checker).
//!
//! Limits: the catalog engine's sequences are local (production's `gtm_seq::ClusterTxnSource`
//! blocks on the GTM), and after the start the catalog's own source has no GXIDs left: a catalog
//! statement outside a global transaction that needs one (none of the bank's: everything a
//! session runs is coordinator-directed) fails with XX000.

use crate::cluster::{GtmGroup, PrefetchedSource};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::CoordSession;
use pgxc_gtm::client::GtmClient;
use pgxc_gtm::proxy::GtmProxy;
use pgxc_sql::engine::{TxnSource, WaitMode};
use pgxc_sql::{Engine, QueryResult};
use pgxc_storage::{CrashReport, Disk, SimDisk};
use rand::Rng;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The coordinators' coordinator-protocol port (what peers connect to for DDL and catalog copy).
pub const COORD_PORT: u16 = 6668;
/// The GTM proxies' port.
pub const PROXY_PORT: u16 = 6667;
/// The resolver's period in the simulation (production: 2 s).
pub const RESOLVER_PERIOD: Duration = Duration::from_secs(1);
/// How long the resolver lets an undecided implicit gid sit before rolling it back (production:
/// 30 s; its coordinator died before deciding).
pub const RESOLVER_ABANDON: Duration = Duration::from_secs(5);

/// A simulated GTM proxy machine.
pub struct GtmProxyNode {
    /// Its client address.
    pub addr: String,
    /// The madsim node.
    pub node: NodeId,
}

impl GtmProxyNode {
    /// The IP of proxy `i` (1-based).
    pub fn ip(i: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, i as u8))
    }

    /// Start proxy `i` in front of the GTM replicas `upstream` (retrying until it can start).
    pub fn start(handle: &Handle, i: u64, upstream: Vec<String>) -> GtmProxyNode {
        let addr = format!("{}:{PROXY_PORT}", GtmProxyNode::ip(i));
        let paddr = addr.clone();
        let node = handle
            .create_node()
            .name(format!("gtm_proxy{i}"))
            .ip(GtmProxyNode::ip(i))
            .init(move || {
                let (upstream, paddr) = (upstream.clone(), paddr.clone());
                async move {
                    loop {
                        match GtmProxy::start(&paddr, upstream.clone()).await {
                            Ok(_p) => std::future::pending::<()>().await,
                            Err(e) => {
                                tracing::warn!("proxy cannot start yet: {e}");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                }
            })
            .build();
        GtmProxyNode {
            addr,
            node: node.id(),
        }
    }
}

/// The catalog engine's own source of GXIDs in the simulation: GXIDs the GTM issued ahead
/// ([`PrefetchedSource`]), with the snapshots made to see the ones this source already ended.
/// The bootstrap runs several internal transactions in a row (schema, then tables in it); the
/// snapshot prefetched with the second GXID still lists the first as running, so without this
/// the second would not see the first's schema.
pub struct CatalogSource {
    inner: Arc<PrefetchedSource>,
    ended: Mutex<std::collections::BTreeSet<Gxid>>,
}

impl CatalogSource {
    /// Ask the GTM for `n` GXIDs now (see [`PrefetchedSource::fetch`]).
    pub async fn fetch(client: GtmClient, n: usize) -> Result<Arc<CatalogSource>, PgError> {
        Ok(Arc::new(CatalogSource {
            inner: PrefetchedSource::fetch(client, n).await?,
            ended: Mutex::new(Default::default()),
        }))
    }

    /// Give the unused GXIDs back (abort them at the GTM).
    pub fn release_unused(&self) {
        self.inner.release_unused();
    }

    fn adjust(&self, snap: Snapshot) -> Snapshot {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        let running: Vec<Gxid> = snap
            .xip
            .iter()
            .copied()
            .filter(|x| !ended.contains(x))
            .collect();
        Snapshot::new(snap.xmax, running)
    }
}

impl TxnSource for CatalogSource {
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError> {
        let (x, snap) = self.inner.begin()?;
        Ok((x, self.adjust(snap)))
    }

    fn snapshot(&self) -> Result<Snapshot, PgError> {
        Ok(self.adjust(self.inner.snapshot()?))
    }

    fn end(&self, xid: Gxid, committed: bool) {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(xid);
        self.inner.end(xid, committed);
    }
}

/// One query string from a client and where its answer goes.
type Query = (String, oneshot::Sender<Result<Vec<QueryResult>, PgError>>);

/// Where a running coordinator takes new sessions (each is the inbox of its queries); empty
/// until it has started.
type Acceptor = Arc<Mutex<Option<mpsc::UnboundedSender<mpsc::UnboundedReceiver<Query>>>>>;

/// A simulated coordinator machine.
pub struct SimCoordinator {
    /// Its node name (`cn1`, ...).
    pub name: String,
    /// Its coordinator-protocol address (peers reach its catalog there).
    pub addr: String,
    /// The madsim node.
    pub node: NodeId,
    /// Its catalog disk (outlives crashes).
    pub disk: SimDisk,
    /// Whether it is down (crashed, not restarted).
    pub down: bool,
    acceptor: Acceptor,
}

/// What a coordinator is configured with.
#[derive(Clone, Debug)]
pub struct CoordSetup {
    /// GTM addresses it connects to (the replicas, or one proxy).
    pub gtm: Vec<String>,
    /// The datanodes `(name, host:port)`.
    pub datanodes: Vec<(String, String)>,
    /// The other coordinators `(name, host:port)` of their coordinator-protocol endpoints.
    pub peers: Vec<(String, String)>,
}

impl SimCoordinator {
    /// The IP of coordinator `i` (1-based).
    pub fn ip(i: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 5, i as u8))
    }

    /// The coordinator-protocol address of coordinator `i`.
    pub fn addr_of(i: u64) -> String {
        format!("{}:{COORD_PORT}", SimCoordinator::ip(i))
    }

    /// Create coordinator `i` (`cn<i>`) and boot it (see the module docs).
    pub fn start(handle: &Handle, i: u64, setup: CoordSetup) -> SimCoordinator {
        let disk = SimDisk::new();
        let name = format!("cn{i}");
        let addr = SimCoordinator::addr_of(i);
        let acceptor: Acceptor = Arc::new(Mutex::new(None));
        let (d2, n2, a2, acc2) = (disk.clone(), name.clone(), addr.clone(), acceptor.clone());
        let node = handle
            .create_node()
            .name(name.clone())
            .ip(SimCoordinator::ip(i))
            .init(move || {
                let (disk, name, addr, setup, acc) = (
                    d2.clone(),
                    n2.clone(),
                    a2.clone(),
                    setup.clone(),
                    acc2.clone(),
                );
                async move {
                    if let Err(e) = SimCoordinator::boot(disk, name.clone(), addr, setup, acc).await
                    {
                        tracing::warn!("{name} cannot boot: {e}");
                    }
                }
            })
            .build();
        SimCoordinator {
            name,
            addr,
            node: node.id(),
            disk,
            down: false,
            acceptor,
        }
    }

    async fn boot(
        disk: SimDisk,
        name: String,
        addr: String,
        setup: CoordSetup,
        acceptor: Acceptor,
    ) -> Result<(), String> {
        let gtm = GtmGroup::connect(setup.gtm.clone(), Duration::from_secs(120)).await?;
        // The catalog engine's own transactions (bootstrap) take GXIDs the GTM issued ahead:
        // the engine calls its source synchronously and nothing may block the simulation's thread.
        let source = CatalogSource::fetch(gtm.clone(), 64)
            .await
            .map_err(|e| format!("fetch GXIDs: {e}"))?;
        let src: Arc<dyn TxnSource> = source.clone();
        let engine = Engine::open_with_mode(&Disk::sim(disk), &name, Some(src), WaitMode::Restart)
            .map_err(|e| format!("open the catalog engine: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| format!("bind {addr}: {e}"))?;
        let cfg = CoordinatorConfig {
            name: name.clone(),
            datanodes: setup.datanodes.clone(),
            peers: setup.peers.clone(),
            preferred: None,
            max_pool_size: 16,
        };
        let mut tries = 0;
        let coord = loop {
            match Coordinator::start(cfg.clone(), Arc::clone(&engine), gtm.clone()).await {
                Ok(c) => break c,
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::debug!("{name}: start failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    source.release_unused();
                    return Err(format!("start: {e}"));
                }
            }
        };
        source.release_unused();
        tokio::spawn(Arc::clone(&coord).resolver(RESOLVER_PERIOD, RESOLVER_ABANDON));
        // Peers reach this catalog over the coordinator protocol, as in production.
        tokio::spawn(pgxc_datanode::server::serve(
            listener,
            Arc::clone(&engine),
            name.clone(),
        ));
        let (tx, mut rx) = mpsc::unbounded_channel::<mpsc::UnboundedReceiver<Query>>();
        *acceptor.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        tracing::info!("{name} ready");
        while let Some(inbox) = rx.recv().await {
            // Local: madsim's stream halves in a session's datanode connections are not `Sync`.
            tokio::task::spawn_local(serve_session(Arc::clone(&coord), inbox));
        }
        Ok(())
    }

    /// A new client session. Errors: 08006 if the coordinator is down or still starting.
    pub fn connect(&self) -> Result<SqlClient, PgError> {
        let refused = || {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("coordinator \"{}\" does not accept connections", self.name),
            )
        };
        let guard = self.acceptor.lock().unwrap_or_else(|p| p.into_inner());
        let acc = guard.as_ref().ok_or_else(refused)?;
        let (tx, rx) = mpsc::unbounded_channel();
        acc.send(rx).map_err(|_| refused())?;
        Ok(SqlClient {
            coordinator: self.name.clone(),
            tx,
        })
    }

    /// Power failure: the catalog disk loses its unsynced writes (drawn from `rng`), then the
    /// machine dies with every session, datanode connection and the resolver on it.
    pub fn crash(&mut self, handle: &Handle, rng: &mut impl Rng) -> CrashReport {
        let report = self.disk.crash(rng);
        handle.kill(self.node);
        *self.acceptor.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.down = true;
        report
    }

    /// Boot the machine again from its disk.
    pub fn restart(&mut self, handle: &Handle) {
        handle.restart(self.node);
        self.down = false;
    }
}

/// One client session on a simulated coordinator (a connection, without the wire encoding).
pub struct SqlClient {
    coordinator: String,
    tx: mpsc::UnboundedSender<Query>,
}

impl SqlClient {
    /// The coordinator this session is on.
    pub fn coordinator(&self) -> &str {
        &self.coordinator
    }

    /// Run a query string through `CoordSession::execute` on the coordinator. Errors: the
    /// session's; 08006 if the coordinator died (before or while running it: the outcome of a
    /// COMMIT is then unknown).
    pub async fn execute(&self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        let lost = || {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("connection to coordinator \"{}\" lost", self.coordinator),
            )
        };
        let (tx, rx) = oneshot::channel();
        self.tx.send((sql.to_string(), tx)).map_err(|_| lost())?;
        rx.await.map_err(|_| lost())?
    }
}

/// One session's task on the coordinator: run each query string in order; when the client goes,
/// roll back what it left open (as a backend does when its connection closes).
async fn serve_session(coord: Arc<Coordinator>, mut inbox: mpsc::UnboundedReceiver<Query>) {
    let mut s = match CoordSession::new(&coord) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("session cannot start: {e}");
            return;
        }
    };
    // Issue 7's first re-introduced mistake, to show the checkers catch it through the
    // coordinator too: `PGXC_SIM_MISTAKE=commit_before_all_prepared`.
    if std::env::var("PGXC_SIM_MISTAKE")
        .is_ok_and(|m| m.split(',').any(|m| m == "commit_before_all_prepared"))
    {
        // The struct update keeps this compiling when more mistakes are added.
        #[allow(clippy::needless_update)]
        let mistakes = pgxc_cluster::twophase::Mistakes {
            commit_before_all_prepared: true,
            ..Default::default()
        };
        s.mistakes = mistakes;
    }
    while let Some((sql, reply)) = inbox.recv().await {
        let r = s.execute(&sql).await;
        let _ = reply.send(r);
    }
    if s.in_transaction() {
        let _ = s.execute("ROLLBACK").await;
    }
}

/// Every GXID the coordinators' sessions were issued, observed without touching the coordinator:
/// `CoordSession::execute` runs each query string in a `session` span (target
/// `pgxc_coordinator::...`) and, when it opens a global transaction, records the GXID the GTM
/// just issued (`begin_snapshot`) on that span while inside it. A record made from outside the
/// span (the GXID of a transaction already open, carried onto the next query string's span) is
/// not an issue and is skipped. The checker (issue 7's "no GXID issued twice") then looks for a
/// value seen twice. Limits: the catalog engine's own GXIDs ([`CatalogSource`]) and those the
/// coordinator's DDL/resolver paths take outside a session are not seen.
#[derive(Clone, Default)]
pub struct GxidLog(Arc<Mutex<Vec<u64>>>);

impl GxidLog {
    /// Observe the calling thread's spans from now until the guard drops (madsim runs every
    /// simulated node on the calling thread). Replaces the process's log subscriber on this
    /// thread, so the `PGXC_SIM_LOG` output (same format as the harness's) is kept here.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let logs = std::env::var("PGXC_SIM_LOG").ok().map(|f| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .without_time()
                .with_filter(tracing_subscriber::EnvFilter::new(f))
        });
        let observer = GxidLayer(Arc::clone(&self.0)).with_filter(
            tracing_subscriber::filter::filter_fn(|m| {
                m.is_span() && m.name() == "session" && m.target().starts_with("pgxc_coordinator")
            }),
        );
        tracing::subscriber::set_default(tracing_subscriber::registry().with(observer).with(logs))
    }

    /// The GXIDs issued so far, in the order they were issued.
    pub fn issued(&self) -> Vec<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first GXID issued more than once, if any.
    pub fn first_duplicate(&self) -> Option<u64> {
        let mut seen = std::collections::BTreeSet::new();
        self.issued().into_iter().find(|g| !seen.insert(*g))
    }
}

struct GxidLayer(Arc<Mutex<Vec<u64>>>);

impl<S> tracing_subscriber::Layer<S> for GxidLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        // Only a record made inside the span: `begin_statement` just got the GXID from the GTM.
        if ctx.current_span().id() != Some(id) {
            return;
        }
        let mut v = GxidVisitor(None);
        values.record(&mut v);
        if let Some(g) = v.0 {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(g);
        }
    }
}

struct GxidVisitor(Option<u64>);

impl tracing::field::Visit for GxidVisitor {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "gxid" {
            self.0 = Some(value);
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "gxid" {
            self.0 = u64::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, _field: &tracing::field::Field, _value: &dyn std::fmt::Debug) {}
}
