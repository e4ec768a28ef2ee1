//! The coordinator a process runs: datanodes, catalog engine, GTM client, connection pool.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_cluster::twophase::{DecisionLog, InDoubt, NodeAccess, OrphanSource};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_datanode::client::DnConn;
use pgxc_gtm::client::GtmClient;
use pgxc_sql::Engine;

/// The table holding `pgxc_node` rows in the coordinator's catalog engine (XC's `pgxc_node`:
/// this coordinator, its peers and its datanodes; local to each coordinator, as in XC, where
/// `CREATE NODE` runs on every coordinator), plus `seq`, each node's position (the datanodes'
/// order is a new table's default node list).
pub const PGXC_NODE: &str = "pgxc.pgxc_node_rows";

/// The view clients query as `pgxc_node`: XC's columns (`node_name`, `node_type`, `node_port`,
/// `node_host`, `nodeis_primary`, `nodeis_preferred`, `node_id`) in node order.
pub const PGXC_NODE_VIEW: &str = "pgxc.pgxc_node";

/// The table holding `pgxc_group` rows (`group_name`, `group_members`: member node names
/// separated by spaces, as XC prints its oidvector).
pub const PGXC_GROUP: &str = "pgxc.pgxc_group";

/// Every catalog-changing statement this cluster's coordinators ran, in the order the GTM sequence
/// [`PGXC_DDL_SEQ`] gave them (`seq`, `sql`): written in the DDL's own transaction on every
/// coordinator, replayed by a coordinator that starts with an empty catalog.
pub const PGXC_DDL_LOG: &str = "pgxc.pgxc_ddl_log";

/// The GTM sequence ordering [`PGXC_DDL_LOG`] (a statement that depends on another's object
/// runs after it, so it draws a larger number).
pub const PGXC_DDL_SEQ: &str = "pgxc.pgxc_ddl_seq";

/// The table holding `pgxc_class` rows in the coordinator's catalog engine (one row per
/// distributed table: locator type letter, key column name or NULL, node list).
pub const PGXC_CLASS: &str = "pgxc.pgxc_class";

/// A coordinator's static configuration.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// This coordinator's node name (`pgxc_node_name`).
    pub name: String,
    /// Every datanode: `(name, "host:port")`, in `pgxc_node` order (the default node list of a
    /// new table).
    pub datanodes: Vec<(String, String)>,
    /// The other coordinators: `(name, "host:port")` of the coordinator-protocol endpoint each
    /// serves for its catalog (`pgxc_datanode::server::serve` over its catalog engine). DDL runs
    /// on every one of them in the same transaction, so all catalogs stay identical.
    pub peers: Vec<(String, String)>,
    /// The preferred datanode for reads of replicated tables (XC's `PREFERRED`).
    pub preferred: Option<String>,
    /// Idle connections kept per datanode (XC's `max_pool_size` per node; default 16).
    pub max_pool_size: usize,
}

/// Open (or create) a coordinator's catalog engine, store `file` on `disk`, with the GTM behind
/// `gtm` as its source of GXIDs, snapshots and sequences ([`crate::gtm_seq::ClusterTxnSource`]:
/// the cluster's sequences are global). Runs the (blocking) open on a blocking thread.
///
/// Errors: the store's open errors (58030, XX001); XX000 if the blocking task fails.
pub async fn open_catalog_engine(
    disk: pgxc_storage::Disk,
    file: &str,
    gtm: &GtmClient,
) -> Result<Arc<Engine>, PgError> {
    let src = Arc::new(crate::gtm_seq::ClusterTxnSource::new(gtm.clone()));
    let file = file.to_string();
    blocking(move || Engine::open_with(&disk, &file, Some(src)))
        .await
        .map_err(|e| PgError::new(SqlState::InternalError, format!("catalog open: {e}")))?
}

/// Run `f`, which uses the catalog engine synchronously, where that may block: on a blocking
/// thread in production (the engine waits for locks and the GTM there). Errors: the blocking
/// task's failure (it panicked), as text.
#[cfg(not(madsim))]
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())
}

/// Under madsim (one thread, the engine in `WaitMode::Restart`: a statement that would wait
/// answers 55P03 instead): `f` runs inline on the calling task. Never fails.
#[cfg(madsim)]
async fn blocking<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    Ok(f())
}

/// One `pgxc_node` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDef {
    /// `node_name`.
    pub name: String,
    /// `node_type`: `'C'` coordinator, `'D'` datanode.
    pub kind: char,
    /// `node_host`.
    pub host: String,
    /// `node_port` (for a peer coordinator: its coordinator-protocol endpoint).
    pub port: u16,
    /// `nodeis_primary`.
    pub primary: bool,
    /// `nodeis_preferred` (replicated tables are read from it).
    pub preferred: bool,
}

impl NodeDef {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `node_id`: PostgreSQL's `hashtext` of the name as int4, as XC's `pgxc_node.node_id`.
    pub fn id(&self) -> i32 {
        pgxc_cluster::hash::hash_bytes(self.name.as_bytes()) as i32
    }

    fn from_addr(name: &str, kind: char, addr: &str, preferred: bool) -> NodeDef {
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
            None => (addr.to_string(), 0),
        };
        NodeDef {
            name: name.to_string(),
            kind,
            host,
            port,
            primary: false,
            preferred,
        }
    }
}

/// The nodes the pool and the placement use (XC's pooler view of `pgxc_node`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Topology {
    /// Datanodes `(name, host:port)` in `pgxc_node` order (a new table's default node list).
    pub(crate) datanodes: Vec<(String, String)>,
    /// Other coordinators `(name, host:port)`.
    pub(crate) peers: Vec<(String, String)>,
    /// The preferred datanode.
    pub(crate) preferred: Option<String>,
}

impl Topology {
    fn of(self_name: &str, nodes: &[NodeDef]) -> Topology {
        Topology {
            datanodes: nodes
                .iter()
                .filter(|n| n.kind == 'D')
                .map(|n| (n.name.clone(), n.addr()))
                .collect(),
            peers: nodes
                .iter()
                .filter(|n| n.kind == 'C' && n.name != self_name)
                .map(|n| (n.name.clone(), n.addr()))
                .collect(),
            preferred: nodes
                .iter()
                .find(|n| n.kind == 'D' && n.preferred)
                .map(|n| n.name.clone()),
        }
    }
}

/// A running coordinator, shared by its sessions.
pub struct Coordinator {
    pub(crate) cfg: CoordinatorConfig,
    topo: Mutex<Topology>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) gtm: GtmClient,
    pool: Mutex<BTreeMap<String, Vec<DnConn>>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("name", &self.cfg.name)
            .finish()
    }
}

impl Coordinator {
    /// A coordinator over its catalog `engine` (opened with the GTM as its transaction source) and
    /// `gtm`. Creates `pgxc.pgxc_class` on first use. Must be called from an async context; the
    /// catalog bootstrap runs on a blocking thread.
    pub async fn start(
        cfg: CoordinatorConfig,
        engine: Arc<Engine>,
        gtm: GtmClient,
    ) -> Result<Arc<Coordinator>, PgError> {
        let eng = Arc::clone(&engine);
        // pgxc_node starts as the configuration; once written, it is authoritative (CREATE /
        // ALTER / DROP NODE change it, a restart keeps their effect).
        let mut seed = vec![NodeDef {
            name: cfg.name.clone(),
            kind: 'C',
            host: "localhost".into(),
            port: 0,
            primary: false,
            preferred: false,
        }];
        for (n, a) in &cfg.datanodes {
            let preferred = cfg.preferred.as_deref() == Some(n.as_str());
            seed.push(NodeDef::from_addr(n, 'D', a, preferred));
        }
        for (n, a) in &cfg.peers {
            seed.push(NodeDef::from_addr(n, 'C', a, false));
        }
        let nodes = blocking(move || {
            let mut s = eng.session();
            s.execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS pgxc; \
                 CREATE TABLE IF NOT EXISTS {PGXC_CLASS} (\
                   pcrelname text PRIMARY KEY, pclocatortype text NOT NULL, \
                   pcattname text, nodes text NOT NULL); \
                 CREATE TABLE IF NOT EXISTS {PGXC_NODE} (\
                   node_name text PRIMARY KEY, node_type text NOT NULL, node_port int NOT NULL, \
                   node_host text NOT NULL, nodeis_primary bool NOT NULL, \
                   nodeis_preferred bool NOT NULL, node_id int NOT NULL, seq int NOT NULL); \
                 CREATE TABLE IF NOT EXISTS {PGXC_GROUP} (\
                   group_name text PRIMARY KEY, group_members text NOT NULL); \
                 CREATE TABLE IF NOT EXISTS {PGXC_DDL_LOG} (\
                   seq bigint PRIMARY KEY, sql text NOT NULL); \
                 CREATE OR REPLACE VIEW {PGXC_NODE_VIEW} AS SELECT node_name, node_type, \
                   node_port, node_host, nodeis_primary, nodeis_preferred, node_id \
                   FROM {PGXC_NODE} ORDER BY seq, node_name"
            ))?;
            let mut nodes = read_nodes(&mut s)?;
            if nodes.is_empty() {
                for (i, n) in seed.iter().enumerate() {
                    s.execute(&insert_node_sql(n, i as i32))?;
                }
                nodes = read_nodes(&mut s)?;
            }
            Ok::<_, PgError>(nodes)
        })
        .await
        .map_err(|e| PgError::new(SqlState::InternalError, format!("bootstrap: {e}")))??;
        let topo = Topology::of(&cfg.name, &nodes);
        let opts = pgxc_gtm::proto::SeqOptions::default();
        gtm.create_sequence(PGXC_DDL_SEQ, opts, true).await?;
        copy_catalog(&cfg, &engine, &gtm, &topo).await?;
        Ok(Arc::new(Coordinator {
            cfg,
            topo: Mutex::new(topo),
            engine,
            gtm,
            pool: Mutex::new(BTreeMap::new()),
        }))
    }

    fn topo(&self) -> Topology {
        self.topo.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The preferred datanode for reads of replicated tables.
    pub fn preferred(&self) -> Option<String> {
        self.topo().preferred
    }

    /// The `pgxc_node` rows as this coordinator's catalog holds them (committed state).
    ///
    /// Errors: the catalog engine's (XX000 if its blocking task fails).
    pub async fn catalog_nodes(&self) -> Result<Vec<NodeDef>, PgError> {
        let eng = Arc::clone(&self.engine);
        blocking(move || read_nodes(&mut eng.session()))
            .await
            .map_err(|e| PgError::new(SqlState::InternalError, format!("pgxc_node: {e}")))?
    }

    /// `pgxc_pool_check()`: whether the nodes the pool uses are exactly `pgxc_node`'s.
    pub async fn pool_check(&self) -> Result<bool, PgError> {
        let nodes = self.catalog_nodes().await?;
        Ok(Topology::of(&self.cfg.name, &nodes) == self.topo())
    }

    /// `pgxc_pool_reload()`: take `pgxc_node` as the pool's node set (a datanode created with
    /// CREATE NODE becomes usable, a dropped one unusable) and drop the pooled connections of
    /// nodes whose address changed or that are gone.
    pub async fn reload_nodes(&self) -> Result<(), PgError> {
        let nodes = self.catalog_nodes().await?;
        let new = Topology::of(&self.cfg.name, &nodes);
        let old = std::mem::replace(
            &mut *self.topo.lock().unwrap_or_else(|p| p.into_inner()),
            new.clone(),
        );
        for (n, a) in old.datanodes.iter().chain(old.peers.iter()) {
            let same = new
                .datanodes
                .iter()
                .chain(new.peers.iter())
                .any(|(m, b)| m == n && a == b);
            if !same {
                self.forget_node(n);
            }
        }
        Ok(())
    }

    /// This coordinator's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The datanodes' names, in `pgxc_node` order.
    pub fn datanode_names(&self) -> Vec<String> {
        self.topo().datanodes.into_iter().map(|(n, _)| n).collect()
    }

    /// The datanodes: `(name, "host:port")`.
    pub fn datanode_addrs(&self) -> Vec<(String, String)> {
        self.topo().datanodes
    }

    /// The other coordinators' names.
    pub fn peer_names(&self) -> Vec<String> {
        self.topo().peers.into_iter().map(|(n, _)| n).collect()
    }

    /// The other coordinators: `(name, "host:port")` of their coordinator-protocol endpoints.
    pub fn peer_addrs(&self) -> Vec<(String, String)> {
        self.topo().peers
    }

    /// The catalog engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The GTM client.
    pub fn gtm(&self) -> &GtmClient {
        &self.gtm
    }

    /// A pooled connection to `node`, or a new one. Errors: 42704 unknown node, 08006.
    pub(crate) async fn checkout(&self, node: &str) -> Result<DnConn, PgError> {
        if let Some(c) = self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(node)
            .and_then(|v| v.pop())
        {
            return Ok(c);
        }
        self.connect(node).await
    }

    /// Drop every pooled connection to `node` (it restarted: they are dead).
    pub(crate) fn forget_node(&self, node: &str) {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(node);
    }

    /// A new connection to `node`. Errors: 42704 unknown node, 08006.
    pub(crate) async fn connect(&self, node: &str) -> Result<DnConn, PgError> {
        let topo = self.topo();
        let addr = topo
            .datanodes
            .iter()
            .chain(topo.peers.iter())
            .find(|(n, _)| n == node)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| {
                PgError::new(
                    SqlState::UndefinedObject,
                    format!("datanode \"{node}\" does not exist"),
                )
            })?;
        DnConn::connect(node, &addr, &self.cfg.name, Vec::new()).await
    }

    /// Return a connection to the pool (dropped if broken or the pool is full).
    pub(crate) fn checkin(&self, c: DnConn) {
        if c.is_broken() {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let v = pool.entry(c.node().to_string()).or_default();
        if v.len() < self.cfg.max_pool_size.max(1) {
            v.push(c);
        }
    }

    /// Drop every pooled connection (`CLEAN CONNECTION`), returning how many were dropped.
    pub fn clean_connections(&self) -> usize {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let n = pool.values().map(Vec::len).sum();
        pool.clear();
        n
    }
}

/// How long a starting coordinator waits for a peer to answer before it skips it.
const PEER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A coordinator joining a running cluster (its catalog holds no table yet) copies the catalog
/// from the first peer that answers: it replays the peer's [`PGXC_DDL_LOG`] on its own catalog
/// (each statement on its own; one that fails is logged and skipped) and copies `pgxc_class`.
/// Nothing to do when the catalog is not empty or no peer answers (the first coordinator).
///
/// Errors: the catalog engine's; a peer's errors only skip that peer.
async fn copy_catalog(
    cfg: &CoordinatorConfig,
    engine: &Arc<Engine>,
    gtm: &GtmClient,
    topo: &Topology,
) -> Result<(), PgError> {
    use pgxc_sql::types::Value;
    let eng = Arc::clone(engine);
    let empty = blocking(move || {
        let mut s = eng.session();
        let r = s.execute(&format!(
            "SELECT (SELECT count(*) FROM {PGXC_CLASS}) + (SELECT count(*) FROM {PGXC_DDL_LOG})"
        ))?;
        Ok::<_, PgError>(
            r.last()
                .and_then(|r| r.rows.first())
                .and_then(|row| row.first())
                .is_some_and(|v| matches!(v, Value::Int8(0))),
        )
    })
    .await
    .map_err(|e| PgError::new(SqlState::InternalError, format!("catalog copy: {e}")))??;
    if !empty {
        return Ok(());
    }
    for (peer, addr) in &topo.peers {
        let fetched = fetch_catalog(cfg, gtm, peer, addr).await;
        let (log, class) = match fetched {
            Ok(x) => x,
            Err(e) => {
                tracing::info!(%peer, "cannot copy the catalog from this peer: {e}");
                continue;
            }
        };
        if log.is_empty() && class.is_empty() {
            return Ok(());
        }
        let eng = Arc::clone(engine);
        let n = log.len();
        blocking(move || {
            let mut s = eng.session();
            for (seq, sql) in &log {
                if let Err(e) = s.execute(sql) {
                    tracing::warn!(seq, %sql, "catalog copy: statement skipped: {e}");
                }
                s.execute(&format!(
                    "INSERT INTO {PGXC_DDL_LOG} VALUES ({seq}, '{}')",
                    sql.replace('\'', "''")
                ))?;
            }
            for row in &class {
                s.execute(&format!("INSERT INTO {PGXC_CLASS} VALUES ({row})"))?;
            }
            Ok::<_, PgError>(())
        })
        .await
        .map_err(|e| PgError::new(SqlState::InternalError, format!("catalog copy: {e}")))??;
        tracing::info!(%peer, statements = n, "copied the catalog from a peer coordinator");
        return Ok(());
    }
    Ok(())
}

impl Coordinator {
    /// Give datanode `name` at `addr`, just registered with CREATE NODE, the cluster's catalog:
    /// if it holds no table yet, replay this coordinator's DDL log on it, each statement in a
    /// global transaction of its own (one that fails is logged and skipped). A datanode that
    /// already has tables (another coordinator seeded it, or it was in use) is left alone.
    ///
    /// Errors: 08006 if it cannot be reached; the GTM's.
    pub async fn seed_datanode(&self, name: &str, addr: &str) -> Result<usize, PgError> {
        use pgxc_sql::types::Value;
        let mut c = DnConn::connect(name, addr, &self.cfg.name, Vec::new()).await?;
        let probe = own_txn(
            &self.gtm,
            &mut c,
            "SELECT count(*) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                .into(),
        )
        .await?;
        let tables = match probe {
            DnResponse::Results { results, .. } => results
                .last()
                .and_then(|r| r.rows.first())
                .and_then(|row| row.first())
                .map(|v| !matches!(v, Value::Int8(0)))
                .unwrap_or(true),
            _ => true,
        };
        if tables {
            return Ok(0);
        }
        let eng = Arc::clone(&self.engine);
        let log = blocking(move || {
            let r = eng
                .session()
                .execute(&format!("SELECT sql FROM {PGXC_DDL_LOG} ORDER BY seq"))?;
            Ok::<_, PgError>(
                r.into_iter()
                    .last()
                    .map(|r| r.rows)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|row| match row.into_iter().next() {
                        Some(Value::Text(t)) => Some(t),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| PgError::new(SqlState::InternalError, format!("seed: {e}")))??;
        let mut n = 0;
        for sql in log {
            match own_txn(&self.gtm, &mut c, sql.clone()).await {
                Ok(_) => n += 1,
                Err(e) if e.code == SqlState::ConnectionFailure => return Err(e),
                Err(e) => tracing::warn!(node = %name, %sql, "seeding: statement skipped: {e}"),
            }
        }
        Ok(n)
    }
}

/// Run `sql` on the datanode behind `c` in a global transaction of its own (GTM GXID and
/// snapshot, one-phase commit there, then at the GTM).
async fn own_txn(gtm: &GtmClient, c: &mut DnConn, sql: String) -> Result<DnResponse, PgError> {
    use pgxc_cluster::proto::DnIsolation;
    let (gxid, snapshot) = gtm.begin_snapshot().await?;
    let r = async {
        c.call(DnRequest::Begin {
            gxid,
            isolation: DnIsolation::ReadCommitted,
            read_only: false,
        })
        .await?;
        let r = c.call(DnRequest::Execute { snapshot, sql }).await?;
        c.call(DnRequest::Commit).await?;
        Ok::<_, PgError>(r)
    }
    .await;
    match &r {
        Ok(_) => gtm.commit(gxid).await?,
        Err(_) => {
            let _ = c.call(DnRequest::Rollback).await;
            let _ = gtm.abort(gxid).await;
        }
    }
    r
}

/// The peer's DDL log `(seq, sql)` in order and its `pgxc_class` rows as SQL value lists, read in
/// one read-only transaction under a GTM snapshot.
async fn fetch_catalog(
    cfg: &CoordinatorConfig,
    gtm: &GtmClient,
    peer: &str,
    addr: &str,
) -> Result<(Vec<(i64, String)>, Vec<String>), PgError> {
    use pgxc_cluster::proto::DnIsolation;
    use pgxc_sql::types::Value;
    // A peer that is itself starting (a new cluster's coordinators start together) has bound
    // its endpoint but does not answer until its own start is done: do not wait for it.
    let connect = DnConn::connect(peer, addr, &cfg.name, Vec::new());
    let mut c = tokio::time::timeout(PEER_WAIT, connect)
        .await
        .map_err(|_| {
            PgError::new(
                SqlState::ConnectionFailure,
                format!("coordinator \"{peer}\" did not answer"),
            )
        })??;
    let (gxid, snapshot) = gtm.begin_snapshot().await?;
    let r = async {
        c.call(DnRequest::Begin {
            gxid,
            isolation: DnIsolation::RepeatableRead,
            read_only: true,
        })
        .await?;
        let rows = |resp: DnResponse| match resp {
            DnResponse::Results { results, .. } => Ok(results
                .into_iter()
                .last()
                .map(|r| r.rows)
                .unwrap_or_default()),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer {other:?}"),
            )),
        };
        let log = rows(
            c.call(DnRequest::Execute {
                snapshot: snapshot.clone(),
                sql: format!("SELECT seq, sql FROM {PGXC_DDL_LOG} ORDER BY seq"),
            })
            .await?,
        )?;
        let class = rows(
            c.call(DnRequest::Execute {
                snapshot: snapshot.clone(),
                sql: format!("SELECT pcrelname, pclocatortype, pcattname, nodes FROM {PGXC_CLASS}"),
            })
            .await?,
        )?;
        let _ = c.call(DnRequest::Rollback).await;
        let text = |v: &Value| match v {
            Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
            _ => "NULL".to_string(),
        };
        let log: Vec<(i64, String)> = log
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [Value::Int8(seq), Value::Text(sql)] => Some((*seq, sql.clone())),
                _ => None,
            })
            .collect();
        let class: Vec<String> = class
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
            .collect();
        Ok::<_, PgError>((log, class))
    }
    .await;
    let _ = gtm.abort(gxid).await;
    r
}

/// The SQL that inserts `n` as `pgxc_node` row number `seq` (its order among the nodes).
pub(crate) fn insert_node_sql(n: &NodeDef, seq: i32) -> String {
    format!(
        "INSERT INTO {PGXC_NODE} VALUES ('{}', '{}', {}, '{}', {}, {}, {}, {seq})",
        n.name.replace('\'', "''"),
        n.kind,
        n.port,
        n.host.replace('\'', "''"),
        n.primary,
        n.preferred,
        n.id()
    )
}

/// The `pgxc_node` rows `s` sees, in their order.
pub(crate) fn read_nodes(s: &mut pgxc_sql::Session) -> Result<Vec<NodeDef>, PgError> {
    use pgxc_sql::types::Value;
    let r = s.execute(&format!(
        "SELECT node_name, node_type, node_port, node_host, nodeis_primary, nodeis_preferred \
         FROM {PGXC_NODE} ORDER BY seq, node_name"
    ))?;
    let rows = r.into_iter().last().map(|r| r.rows).unwrap_or_default();
    let bad = || PgError::new(SqlState::DataCorrupted, "malformed pgxc_node row");
    rows.into_iter()
        .map(|row| match row.as_slice() {
            [Value::Text(name), Value::Text(kind), Value::Int4(port), Value::Text(host), Value::Bool(primary), Value::Bool(preferred)] => {
                Ok(NodeDef {
                    name: name.clone(),
                    kind: kind.chars().next().ok_or_else(bad)?,
                    host: host.clone(),
                    port: u16::try_from(*port).map_err(|_| bad())?,
                    primary: *primary,
                    preferred: *preferred,
                })
            }
            _ => Err(bad()),
        })
        .collect()
}

/// The GTM as the durable decision record.
pub(crate) struct GtmLog<'a>(pub(crate) &'a GtmClient);

impl DecisionLog for GtmLog<'_> {
    async fn prepare(&self, gxid: Gxid, gid: &str, nodes: Vec<String>) -> Result<(), PgError> {
        self.0.prepare(gxid, gid, nodes).await
    }
    async fn decide(&self, gid: &str, commit: bool) -> Result<(), PgError> {
        self.0.decide(gid, commit).await
    }
    async fn forget(&self, gid: &str) -> Result<(), PgError> {
        self.0.forget(gid).await
    }
    async fn commit(&self, gxid: Gxid) -> Result<(), PgError> {
        self.0.commit(gxid).await
    }
    async fn abort(&self, gxid: Gxid) -> Result<(), PgError> {
        self.0.abort(gxid).await
    }
    async fn list_prepared(&self) -> Result<Vec<InDoubt>, PgError> {
        Ok(self
            .0
            .list_prepared()
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

/// Every node by name, for the second phase and the resolver: datanodes over pooled connections,
/// this coordinator's own catalog engine directly.
pub(crate) struct Nodes<'a>(pub(crate) &'a Coordinator);

impl NodeAccess for Nodes<'_> {
    async fn finish_prepared(&self, node: &str, gid: &str, commit: bool) -> Result<(), PgError> {
        if node == self.0.cfg.name {
            let eng = Arc::clone(&self.0.engine);
            let gid = gid.to_string();
            return blocking(move || eng.finish_prepared(&gid, commit))
                .await
                .map_err(|e| PgError::new(SqlState::InternalError, e.to_string()))?
                .map(|_| ());
        }
        let mut c = self.0.checkout(node).await?;
        let r = c
            .call(DnRequest::FinishPrepared {
                gid: gid.to_string(),
                commit,
            })
            .await;
        self.0.checkin(c);
        match r? {
            DnResponse::Done { .. } => Ok(()),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to FinishPrepared: {other:?}"),
            )),
        }
    }
}

/// What the orphan sweep reads: the GTM's snapshot and each node's prepared transactions (this
/// coordinator's own catalog engine directly, datanodes and peer coordinators over pooled
/// connections with `DnRequest::ListPrepared`).
impl OrphanSource for Nodes<'_> {
    async fn gtm_snapshot(&self) -> Result<pgxc_common::Snapshot, PgError> {
        self.0.gtm.snapshot(None).await
    }
    async fn node_prepared(&self, node: &str) -> Result<Vec<(String, Gxid)>, PgError> {
        if node == self.0.cfg.name {
            return Ok(self
                .0
                .engine
                .prepared_xacts()
                .into_iter()
                .map(|p| (p.gid, p.xid))
                .collect());
        }
        let mut c = self.0.checkout(node).await?;
        let r = c.call(DnRequest::ListPrepared).await;
        self.0.checkin(c);
        match r? {
            DnResponse::Prepared(v) => Ok(v),
            other => Err(PgError::new(
                SqlState::ProtocolViolation,
                format!("unexpected answer to ListPrepared: {other:?}"),
            )),
        }
    }
}

impl Coordinator {
    /// Run the in-doubt resolver forever: every `period`, finish every prepared transaction whose
    /// decision is recorded (a coordinator or datanode that failed between the decision and the last
    /// COMMIT PREPARED), and roll back every undecided one this resolver has seen undecided for
    /// `abandon_after` or longer (its coordinator died before deciding; if it is merely slow and
    /// decides first, its decision stands). Never decides from what the datanodes hold.
    pub async fn resolver(
        self: Arc<Self>,
        period: std::time::Duration,
        abandon_after: std::time::Duration,
    ) {
        let mut first_seen: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
        loop {
            tokio::time::sleep(period).await;
            let now = tokio::time::Instant::now();
            let listed = match GtmLog(&self.gtm).list_prepared().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!("resolver: cannot list prepared transactions: {e}");
                    continue;
                }
            };
            first_seen.retain(|gid, _| listed.iter().any(|p| p.gid == *gid));
            for p in &listed {
                first_seen.entry(p.gid.clone()).or_insert(now);
            }
            let age = |gid: &str| {
                first_seen
                    .get(gid)
                    .map(|t| now.duration_since(*t))
                    .unwrap_or_default()
            };
            // Only implicit (coordinator-made) gids are abandoned automatically; a user's
            // PREPARE TRANSACTION waits for its COMMIT/ROLLBACK PREPARED, as in PostgreSQL.
            // A decided gid is left to its coordinator for a few periods first.
            let r = pgxc_cluster::twophase::resolve_when(
                &GtmLog(&self.gtm),
                &Nodes(&self),
                |p| age(&p.gid) >= abandon_after && p.gid.starts_with("_pgxc_T"),
                |p| age(&p.gid) >= period * 3,
                false,
            )
            .await;
            match r {
                Ok(r) if !r.committed.is_empty() || !r.rolled_back.is_empty() => {
                    tracing::info!(
                        committed = ?r.committed,
                        rolled_back = ?r.rolled_back,
                        "resolver finished in-doubt transactions"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("resolver pass failed: {e}"),
            }
            // The orphan sweep: implicit gids a node holds prepared that the GTM neither records
            // nor still runs (a PREPARE reported failed whose record reached the disk anyway;
            // found by the simulator, docs/simulation.md "seed 83").
            let mut names = self.datanode_names();
            names.extend(self.peer_names());
            names.push(self.cfg.name.clone());
            let n = Nodes(&self);
            match pgxc_cluster::twophase::roll_back_orphans(
                &GtmLog(&self.gtm),
                &n,
                &n,
                &names,
                false,
            )
            .await
            {
                Ok(r) if !r.rolled_back.is_empty() => {
                    tracing::info!(rolled_back = ?r.rolled_back, "resolver rolled back orphaned prepared transactions");
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("orphan sweep failed: {e}"),
            }
        }
    }

    /// One pass of the in-doubt resolver over every prepared transaction the GTM records
    /// (`pgxc clean`): `abandoned` says whether an undecided one's owner is gone.
    pub async fn resolve_in_doubt(
        &self,
        abandoned: impl Fn(&InDoubt) -> bool,
        report_only: bool,
    ) -> Result<pgxc_cluster::twophase::Report, PgError> {
        pgxc_cluster::twophase::resolve(&GtmLog(&self.gtm), &Nodes(self), abandoned, report_only)
            .await
    }
}
