//! The coordinator a process runs: datanodes, catalog engine, GTM client, connection pool.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_cluster::twophase::{DecisionLog, InDoubt, NodeAccess};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_datanode::client::DnConn;
use pgxc_gtm::client::GtmClient;
use pgxc_sql::Engine;

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

/// A running coordinator, shared by its sessions.
pub struct Coordinator {
    pub(crate) cfg: CoordinatorConfig,
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
        tokio::task::spawn_blocking(move || {
            let mut s = eng.session();
            s.execute(
                "CREATE SCHEMA IF NOT EXISTS pgxc; \
                 CREATE TABLE IF NOT EXISTS pgxc.pgxc_class (\
                   pcrelname text PRIMARY KEY, pclocatortype text NOT NULL, \
                   pcattname text, nodes text NOT NULL)",
            )
            .map(|_| ())
        })
        .await
        .map_err(|e| PgError::new(SqlState::InternalError, format!("bootstrap: {e}")))??;
        Ok(Arc::new(Coordinator {
            cfg,
            engine,
            gtm,
            pool: Mutex::new(BTreeMap::new()),
        }))
    }

    /// This coordinator's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The datanodes' names, in configuration order.
    pub fn datanode_names(&self) -> Vec<String> {
        self.cfg.datanodes.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The datanodes: `(name, "host:port")`.
    pub fn datanode_addrs(&self) -> Vec<(String, String)> {
        self.cfg.datanodes.clone()
    }

    /// The other coordinators' names.
    pub fn peer_names(&self) -> Vec<String> {
        self.cfg.peers.iter().map(|(n, _)| n.clone()).collect()
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
        let addr = self
            .cfg
            .datanodes
            .iter()
            .chain(self.cfg.peers.iter())
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
            return tokio::task::spawn_blocking(move || eng.finish_prepared(&gid, commit))
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
