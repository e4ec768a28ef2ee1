//! One client session on a coordinator.
//!
//! Every statement runs in a global transaction: a GXID and snapshots from the GTM, sent to each
//! datanode it touches (and to the coordinator's own catalog session) with the statement. Outside
//! a transaction block each statement is its own transaction, committed when it ends.
//!
//! Placement (`pgxc_cluster::locator`) decides where a statement goes:
//! - **Fast query shipping**: a SELECT on replicated tables goes to one node; a SELECT whose
//!   distribution-key equalities prune it to one node goes there whole; a plain single-table scan
//!   (no aggregate, sort, limit, subquery...) goes to every node and the results are concatenated.
//!   UPDATE and DELETE go to the nodes their key equalities leave (all of the table's otherwise).
//! - **INSERT**: the coordinator completes every row (defaults, casts, constraints' column order)
//!   by running the INSERT with `RETURNING *` on its own catalog engine inside a savepoint it rolls
//!   back, places each row by its distribution key and ships one multi-row INSERT per node.
//! - **Everything else that reads distributed tables**: the coordinator fetches the rows of every
//!   table the statement names from the datanodes under the statement's snapshot into its own
//!   (otherwise empty) tables inside a savepoint, evaluates the statement there and rolls the
//!   savepoint back. Correct for every query the engine supports; issue 8 replaces it with
//!   pushed-down plans.
//! - **DDL** runs on every datanode and on the coordinator's catalog in the same transaction, which
//!   then always commits with two-phase commit (the catalog is a participant), and is appended to
//!   every coordinator's DDL log (`pgxc.pgxc_ddl_log`, replayed by a coordinator or datanode that
//!   joins later). Sequence DDL on this session's catalog thread is applied to the GTM's
//!   sequences (`crate::gtm_seq`), so `nextval` is global.
//! - **EXPLAIN** prints the route a statement takes in Postgres-XC's shapes (`crate::explain`).
//! - **Cluster catalog**: `pgxc_node` / `pgxc_group` / `pgxc_class`, CREATE/ALTER/DROP NODE
//!   [GROUP], `pgxc_node_str()`, `pgxc_pool_check()`, `pgxc_pool_reload()` and a cluster-wide
//!   `pg_prepared_xacts` (from the GTM's record).

use std::collections::BTreeMap;
use std::sync::Arc;

use pgxc_cluster::locator::{default_distribution, Distribution, LocatorType, Targets};
use pgxc_cluster::proto::{DnIsolation, DnRequest, DnResponse, DnResult};
use pgxc_cluster::twophase::{self, Mistakes, Outcome, Participant};
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use pgxc_datanode::client::DnConn;
use pgxc_sql::engine::Directed;
use pgxc_sql::parser::{
    self, DistributionStrategy, IsolationLevel, NodeTarget, SpannedStatement, Statement,
    TransactionMode, TransactionStmt,
};
use pgxc_sql::types::{DataType, TimeZone, Value};
use pgxc_sql::QueryResult;
use pgxc_wire::SessionThread;
use sqlparser::ast;

use crate::explain::{self, ExplainOpts, RemoteScan};
use crate::node::{
    insert_node_sql, Coordinator, GtmLog, NodeDef, Nodes, PGXC_CLASS, PGXC_DDL_LOG, PGXC_DDL_SEQ,
    PGXC_GROUP, PGXC_NODE,
};
use crate::route;

// Result streaming of shipped SELECTs (a child module: it drives this session's transaction).
#[path = "distjoin.rs"]
mod distjoin;
#[path = "stream.rs"]
pub mod stream;

/// XC's ALTER TABLE redistribution (a child module: it drives this session's transaction).
#[path = "redistribute.rs"]
pub mod redistribute;

/// Remote group query: partial aggregation on the datanodes, the final step here (a child module:
/// it runs on this session's transaction).
#[path = "remote_group.rs"]
mod remote_group;

#[path = "cursor.rs"]
mod cursor;
/// ORDER BY and LIMIT pushed under one table's remote scans (a child module, as above).
#[path = "remote_sort.rs"]
mod remote_sort;

/// The explicit transaction block, if any.
#[derive(Debug)]
struct Block {
    iso: DnIsolation,
    read_only: bool,
    failed: bool,
}

/// The global transaction in progress.
struct GlobalTxn {
    gxid: Gxid,
    iso: DnIsolation,
    read_only: bool,
    /// The current statement's snapshot.
    snapshot: Snapshot,
    /// The begin snapshot has not been used by a statement yet.
    fresh: bool,
    /// Datanodes touched: connection and whether it wrote.
    conns: BTreeMap<String, (DnConn, bool)>,
    /// The catalog session has a transaction open under `gxid`.
    local_begun: bool,
    /// DDL ran on the catalog: the coordinator is a commit participant.
    local_ddl: bool,
    /// Open savepoints, oldest first (replayed on every node the transaction reaches later).
    savepoints: Vec<String>,
    /// Transactions whose updates this one followed on some datanode (READ COMMITTED): it ends
    /// at the GTM only after they did (`CoordSession::wait_for_followed`).
    followed: Vec<Gxid>,
}

/// A table's placement and column types, as this transaction sees the catalog.
#[derive(Clone, Debug)]
struct Placed {
    name: String,
    dist: Distribution,
    columns: Vec<(String, DataType)>,
    /// WHERE conjuncts a remote scan of this table applies when the coordinator evaluates the
    /// statement (`route::scan_filters`), with the name the conjuncts call the table by.
    filter: Option<(String, Vec<String>)>,
}

/// How a SELECT runs (decided once, for running it and for EXPLAIN).
enum SelectRoute {
    /// No distributed table: the catalog engine answers.
    Local,
    /// Shipped whole to these nodes (one: fast query shipping; several: a plain scan whose
    /// results are concatenated).
    Ship(Vec<String>),
    /// A plain aggregate run on every node and combined here.
    Combine(Vec<String>, Vec<route::Combine>),
    /// Evaluated here over the rows of these tables.
    Evaluate(Vec<Placed>),
    /// A join that runs whole on the datanodes (colocated, or with replicated tables) under a
    /// statement that cannot be concatenated (GROUP BY, ORDER BY, LIMIT, DISTINCT...): the join
    /// (FROM and WHERE) is shipped as one remote query, its rows become a table here, and the
    /// rest of the statement runs over that table (XC's pushed-down join under a coordinator
    /// Sort/Aggregate).
    Joined(JoinedRemote),
    /// A join that is not colocated, run on the datanodes after moving rows (`distjoin`).
    Distributed(distjoin::DistJoin),
    /// Aggregation split into a partial query on every node and the final step here (XC's
    /// `__REMOTE_GROUP_QUERY__`, `remote_group`).
    Grouped(remote_group::GroupedRemote),
    /// One table read with the statement's ORDER BY and/or LIMIT bound pushed to every node,
    /// sorted and limited here (`remote_sort`).
    Sorted(remote_sort::SortedRemote),
}

/// The pieces of [`SelectRoute::Joined`].
struct JoinedRemote {
    /// The nodes the join runs on.
    nodes: Vec<String>,
    /// The remote query: the join's FROM and WHERE with the columns the rest needs, as `c0, c1...`.
    remote: String,
    /// The rest of the statement over [`JOINED_TABLE`].
    local: String,
    /// The remote query's columns and their types.
    columns: Vec<(String, DataType)>,
}

/// The coordinator-side table a [`SelectRoute::Joined`] join's rows are put in (inside a rolled
/// back savepoint of the catalog transaction).
const JOINED_TABLE: &str = "__remote_join_query__";

/// How long a commit waits for the transactions it followed (READ COMMITTED) to end at the GTM.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// One client session on a coordinator.
pub struct CoordSession {
    coord: Arc<Coordinator>,
    local: SessionThread,
    txn: Option<GlobalTxn>,
    block: Option<Block>,
    round_robin: u64,
    /// Test-only protocol mistakes (issue 7's simulator); default in production.
    pub mistakes: Mistakes,
    /// Postgres-XC's pushdown switches, as this session set them.
    switches: Switches,
    /// This session's id in its process (tracing spans carry it).
    id: u64,
    /// Open result streams and `pgxc.remote_fetch_size` (`stream.rs`).
    streams: stream::Streams,
}

/// The next [`CoordSession`] id.
static NEXT_SESSION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Postgres-XC's planner switches that turn a kind of pushdown off, so results can be compared
/// with and without it (all `on` by default, as in XC). Kept by the session when a `SET`/`RESET`
/// of one succeeds on its catalog engine (which also answers `SHOW`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Switches {
    /// `enable_fast_query_shipping`: ship whole statements (single node, concatenated scans,
    /// colocated joins). Off: every SELECT on distributed tables is evaluated here over remote
    /// scans (which still apply the WHERE conjuncts that read one table).
    fqs: bool,
    /// `enable_remotegroup`: run plain aggregates on the datanodes and combine the partial
    /// results here. Off: the aggregate is evaluated here over the rows.
    remote_group: bool,
    /// `enable_remotejoin`: run joins on the datanodes (colocated joins shipped whole). Off: every
    /// join is evaluated here over remote scans of its tables.
    remote_join: bool,
    /// `enable_remotesort`: push ORDER BY to the datanodes (merged here). Off: sorted here.
    remote_sort: bool,
    /// `enable_remotelimit`: push LIMIT/OFFSET to the datanodes as a bound. Off: applied here.
    remote_limit: bool,
}

impl Default for Switches {
    fn default() -> Switches {
        Switches {
            fqs: true,
            remote_group: true,
            remote_join: true,
            remote_sort: true,
            remote_limit: true,
        }
    }
}

impl Switches {
    /// Apply a successful `SET`/`RESET` (other settings are ignored).
    fn note(&mut self, st: &Statement) {
        let (name, value) = match st {
            Statement::Set(parser::Set::Variable { name, value, .. }) => (
                name.to_ascii_lowercase(),
                match value {
                    parser::SetValue::Values(v) if v.len() == 1 => Some(v[0].to_ascii_lowercase()),
                    _ => None,
                },
            ),
            Statement::Reset(parser::ResetTarget::Variable(name)) => {
                (name.to_ascii_lowercase(), None)
            }
            Statement::Reset(parser::ResetTarget::All) => {
                *self = Switches::default();
                return;
            }
            _ => return,
        };
        // PostgreSQL's boolean spellings; anything else (DEFAULT, RESET) is the default, on.
        let on = !matches!(
            value.as_deref(),
            Some("off" | "false" | "no" | "0" | "f" | "n" | "of")
        );
        match name.as_str() {
            "enable_fast_query_shipping" => self.fqs = on,
            "enable_remotegroup" => self.remote_group = on,
            "enable_remotejoin" => self.remote_join = on,
            "enable_remotesort" => self.remote_sort = on,
            "enable_remotelimit" => self.remote_limit = on,
            _ => {}
        }
    }
}

fn internal(e: impl std::fmt::Display) -> PgError {
    PgError::new(SqlState::InternalError, e.to_string())
}

fn io_err(e: std::io::Error) -> PgError {
    PgError::new(SqlState::InternalError, format!("session thread: {e}"))
}

fn unsupported(what: &str) -> PgError {
    PgError::new(
        SqlState::FeatureNotSupported,
        format!("{what} is not supported on a coordinator yet"),
    )
}

fn to_qr(r: DnResult) -> QueryResult {
    QueryResult {
        columns: r.columns,
        rows: r.rows,
        tag: r.tag,
    }
}

/// A SQL literal for `v` of type `ty` (`NULL`, or the text form cast to the type).
fn literal(v: &Value, ty: &DataType) -> String {
    if v.is_null() {
        return "NULL".into();
    }
    let text = v.to_text(ty, &TimeZone::utc());
    format!("'{}'::{}", text.replace('\'', "''"), ty.name())
}

fn rows_sql(rows: &[&Vec<Value>], columns: &[(String, DataType)]) -> String {
    rows.iter()
        .map(|r| {
            let vals: Vec<String> = r
                .iter()
                .zip(columns)
                .map(|(v, (_, t))| literal(v, t))
                .collect();
            format!("({})", vals.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` from a command tag's last word (`INSERT 0 n`, `UPDATE n`, `DELETE n`, `SELECT n`).
fn tag_count(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A participant of the commit protocol: a datanode connection or the catalog session.
enum Part<'a> {
    Dn {
        conn: &'a mut DnConn,
        wrote: bool,
    },
    Local {
        name: String,
        thread: &'a SessionThread,
        wrote: bool,
    },
}

impl Part<'_> {
    async fn local_end(
        thread: &SessionThread,
        sql: String,
        tag: &'static str,
    ) -> Result<(), PgError> {
        thread
            .call(move |s| {
                let r = s.execute(&sql);
                s.direct(None);
                r
            })
            .await
            .map_err(io_err)?
            .and_then(|res| {
                if res.last().map(|r| r.tag.as_str()) == Some(tag) {
                    Ok(())
                } else {
                    Err(PgError::new(
                        SqlState::TransactionRollback,
                        "the transaction was rolled back on the coordinator",
                    ))
                }
            })
    }

    async fn dn(conn: &mut DnConn, req: DnRequest) -> Result<(), PgError> {
        conn.call(req).await.map(|_| ())
    }
}

impl Participant for Part<'_> {
    fn name(&self) -> &str {
        match self {
            Part::Dn { conn, .. } => conn.node(),
            Part::Local { name, .. } => name,
        }
    }
    fn wrote(&self) -> bool {
        match self {
            Part::Dn { wrote, .. } | Part::Local { wrote, .. } => *wrote,
        }
    }
    async fn commit(&mut self) -> Result<(), PgError> {
        match self {
            Part::Dn { conn, .. } => Part::dn(conn, DnRequest::Commit).await,
            Part::Local { thread, .. } => Part::local_end(thread, "COMMIT".into(), "COMMIT").await,
        }
    }
    async fn rollback(&mut self) -> Result<(), PgError> {
        match self {
            Part::Dn { conn, .. } => Part::dn(conn, DnRequest::Rollback).await,
            Part::Local { thread, .. } => {
                Part::local_end(thread, "ROLLBACK".into(), "ROLLBACK").await
            }
        }
    }
    async fn prepare(&mut self, gid: &str) -> Result<(), PgError> {
        match self {
            Part::Dn { conn, .. } => {
                Part::dn(
                    conn,
                    DnRequest::Prepare {
                        gid: gid.to_string(),
                    },
                )
                .await
            }
            Part::Local { thread, .. } => {
                let sql = format!("PREPARE TRANSACTION '{}'", gid.replace('\'', "''"));
                Part::local_end(thread, sql, "PREPARE TRANSACTION").await
            }
        }
    }
}

impl CoordSession {
    /// A new session on `coord`. Errors: XX000 if its catalog session thread cannot start.
    pub fn new(coord: &Arc<Coordinator>) -> Result<CoordSession, PgError> {
        Ok(CoordSession {
            coord: Arc::clone(coord),
            local: {
                let engine = Arc::clone(&coord.engine);
                SessionThread::spawn_with(move || {
                    // Sequence DDL run on this thread is this coordinator's own: it goes to the GTM.
                    crate::gtm_seq::mark_origin_thread();
                    Ok(engine.session())
                })
                .map_err(io_err)?
            },
            txn: None,
            block: None,
            round_robin: 0,
            switches: Switches::default(),
            id: NEXT_SESSION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            mistakes: Mistakes::default(),
            streams: stream::Streams::default(),
        })
    }

    /// Whether an explicit transaction block is open.
    pub fn in_transaction(&self) -> bool {
        self.block.is_some()
    }

    /// Mark the open block failed (an error outside `execute`, e.g. a CopyFail).
    pub fn mark_failed(&mut self) {
        if let Some(b) = &mut self.block {
            b.failed = true;
        }
    }

    /// Whether the open block failed (every statement but ROLLBACK answers 25P02).
    pub fn in_failed_transaction(&self) -> bool {
        self.block.as_ref().is_some_and(|b| b.failed)
    }

    /// Run a query string (simple-query semantics: statements in order, stopping at the first
    /// error; outside a block each statement is its own global transaction).
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        use tracing::Instrument;
        // Every event of this query string carries the session id and, once the global transaction
        // has one, its GXID.
        let span = tracing::info_span!("session", id = self.id, gxid = tracing::field::Empty);
        if let Some(t) = &self.txn {
            span.record("gxid", t.gxid.0);
        }
        Box::pin(self.execute_in_span(sql)).instrument(span).await
    }

    async fn execute_in_span(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        let stmts = match parser::parse_spanned(sql) {
            Ok(s) => s,
            Err(e) => {
                self.fail().await;
                return Err(e);
            }
        };
        let mut out = Vec::new();
        let n = stmts.len();
        for (i, st) in stmts.into_iter().enumerate() {
            let control = matches!(st.statement, Statement::Transaction(_));
            self.streams.last_statement = i + 1 == n;
            // Boxed: the statement futures are large; keep them off the caller's stack.
            match Box::pin(self.one(st)).await {
                Ok(r) => {
                    // An open result stream keeps the implicit transaction until it ends.
                    if !control
                        && self.block.is_none()
                        && self.txn.is_some()
                        && !self.stream_holds_transaction()
                    {
                        self.commit_txn().await?;
                    }
                    out.push(r);
                }
                Err(e) => {
                    self.fail().await;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// After an error: a block becomes failed; an implicit transaction rolls back.
    async fn fail(&mut self) {
        match &mut self.block {
            Some(b) => b.failed = true,
            None => self.rollback_txn().await,
        }
    }

    async fn one(&mut self, st: SpannedStatement) -> Result<QueryResult, PgError> {
        use ast::Statement as S;
        if self.in_failed_transaction()
            && !matches!(
                st.statement,
                Statement::Transaction(
                    TransactionStmt::Rollback { .. }
                        | TransactionStmt::Commit { .. }
                        | TransactionStmt::RollbackTo(_)
                )
            )
        {
            return Err(PgError::new(
                SqlState::InFailedSqlTransaction,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        match &st.statement {
            Statement::Transaction(t) => Box::pin(self.transaction(t.clone())).await,
            Statement::Set(_) | Statement::Reset(_) | Statement::Show(_) => {
                if let Some(r) = self.fetch_size_setting(&st.statement)? {
                    return Ok(r);
                }
                let r = self.local_exec(&st.text, false).await?;
                self.switches.note(&st.statement);
                Ok(r)
            }
            Statement::CreateTable {
                create,
                distribution,
            } => {
                let strategy = distribution.strategy.clone();
                let target = distribution.target.clone();
                self.create_table(&st.text, create, strategy, target).await
            }
            Statement::Sql(create @ S::CreateTable(_)) => {
                self.create_table(&st.text, create, None, None).await
            }
            Statement::Sql(S::Query(q)) => {
                if let Some(q2) = self.cluster_catalog_query(&st.text, q).await? {
                    let text = q2.to_string();
                    return Box::pin(self.select(&text, &q2)).await;
                }
                Box::pin(self.select(&st.text, q)).await
            }
            Statement::Sql(S::Insert(ins)) => Box::pin(self.insert(ins)).await,
            Statement::Sql(S::Update(u)) => Box::pin(self.update(&st.text, u)).await,
            Statement::Sql(S::Delete(d)) => Box::pin(self.delete(&st.text, d)).await,
            Statement::Sql(S::Explain {
                statement,
                analyze,
                verbose,
                options,
                ..
            }) => {
                let o = ExplainOpts::parse(*analyze, *verbose, options.as_ref());
                let inner = (**statement).clone();
                Box::pin(self.explain(&st.text, &inner, o)).await
            }
            Statement::Sql(S::ExplainTable { .. }) => self.local_exec(&st.text, true).await,
            Statement::Sql(S::Drop {
                object_type: ast::ObjectType::Table,
                names,
                ..
            }) => {
                let names = names.clone();
                self.drop_tables(&st.text, &names).await
            }
            Statement::Vacuum(_) => Ok(QueryResult::command("VACUUM")),
            Statement::Analyze(v) => {
                let v = v.clone();
                Box::pin(self.analyze(&v)).await
            }
            Statement::Checkpoint => Ok(QueryResult::command("CHECKPOINT")),
            Statement::Sql(S::Declare { stmts, .. }) => {
                let stmts = stmts.clone();
                Box::pin(self.declare_cursor(&st.text, &stmts)).await
            }
            // A cursor lives in the catalog session (`cursor.rs`): never broadcast like DDL.
            Statement::Sql(S::Fetch { .. } | S::Close { .. }) | Statement::Move { .. } => {
                self.begin_statement().await?;
                self.local_exec(&st.text, true).await
            }
            Statement::Sql(S::Prepare { .. } | S::Execute { .. } | S::Deallocate { .. }) => Err(
                unsupported("SQL PREPARE/EXECUTE (use the extended query protocol)"),
            ),
            Statement::CleanConnection(_) => {
                self.coord.clean_connections();
                Ok(QueryResult::command("CLEAN CONNECTION"))
            }
            Statement::ExecuteDirect { nodes, query } => {
                let nodes: Vec<String> = nodes.iter().map(parser::normalize_ident).collect();
                let query = query.clone();
                self.execute_direct(&nodes, &query).await
            }
            Statement::Copy(_) => Err(unsupported("COPY")),
            Statement::Sql(S::Truncate(t)) => {
                let names: Vec<ast::ObjectName> =
                    t.table_names.iter().map(|x| x.name.clone()).collect();
                self.truncate(&st.text, &names).await
            }
            Statement::CreateNode { name, options } => {
                let (name, options) = (parser::normalize_ident(name), options.clone());
                self.create_node(&name, &options).await
            }
            Statement::AlterNode { name, options } => {
                let (name, options) = (parser::normalize_ident(name), options.clone());
                self.alter_node(&name, &options).await
            }
            Statement::DropNode { name, if_exists } => {
                let (name, if_exists) = (parser::normalize_ident(name), *if_exists);
                self.drop_node(&name, if_exists).await
            }
            Statement::CreateNodeGroup { name, members } => {
                let name = parser::normalize_ident(name);
                let members: Vec<String> = members.iter().map(parser::normalize_ident).collect();
                self.create_node_group(&name, &members).await
            }
            Statement::DropNodeGroup { name, if_exists } => {
                let (name, if_exists) = (parser::normalize_ident(name), *if_exists);
                self.drop_node_group(&name, if_exists).await
            }
            Statement::AlterTableDistribution {
                table,
                if_exists,
                actions,
                ..
            } => {
                let (table, if_exists, actions) = (table.clone(), *if_exists, actions.clone());
                self.alter_distribution(&table, if_exists, &actions).await
            }
            Statement::CreateBarrier { .. }
            | Statement::PauseCluster
            | Statement::UnpauseCluster => Err(unsupported("this cluster statement")),
            _ => self.ddl(&st.text).await,
        }
    }

    // ---- transactions --------------------------------------------------------------------

    async fn transaction(&mut self, t: TransactionStmt) -> Result<QueryResult, PgError> {
        match t {
            TransactionStmt::Begin { modes } => {
                if self.block.is_some() {
                    stream::warn(SqlState::ActiveSqlTransaction);
                    return Ok(QueryResult::command("BEGIN"));
                }
                let mut iso = DnIsolation::ReadCommitted;
                let mut read_only = false;
                for m in modes {
                    match m {
                        TransactionMode::IsolationLevel(
                            IsolationLevel::RepeatableRead | IsolationLevel::Serializable,
                        ) => iso = DnIsolation::RepeatableRead,
                        TransactionMode::IsolationLevel(_) => iso = DnIsolation::ReadCommitted,
                        TransactionMode::ReadOnly => read_only = true,
                        TransactionMode::ReadWrite => read_only = false,
                        _ => {}
                    }
                }
                self.block = Some(Block {
                    iso,
                    read_only,
                    failed: false,
                });
                Ok(QueryResult::command("BEGIN"))
            }
            TransactionStmt::Commit { .. } => {
                let failed = self.in_failed_transaction();
                if self.block.is_none() {
                    stream::warn(SqlState::NoActiveSqlTransaction);
                }
                self.block = None;
                if failed {
                    self.rollback_txn().await;
                    return Ok(QueryResult::command("ROLLBACK"));
                }
                self.commit_txn().await?;
                Ok(QueryResult::command("COMMIT"))
            }
            TransactionStmt::Rollback { .. } => {
                if self.block.is_none() {
                    stream::warn(SqlState::NoActiveSqlTransaction);
                }
                self.block = None;
                self.rollback_txn().await;
                Ok(QueryResult::command("ROLLBACK"))
            }
            TransactionStmt::PrepareTransaction(gid) => {
                let failed = self.in_failed_transaction();
                self.block = None;
                if failed || self.txn.is_none() {
                    self.rollback_txn().await;
                    return Ok(QueryResult::command("ROLLBACK"));
                }
                let Some(mut txn) = self.txn.take() else {
                    return Ok(QueryResult::command("ROLLBACK"));
                };
                let coord = Arc::clone(&self.coord);
                let local_name = coord.cfg.name.clone();
                let gxid = txn.gxid;
                let r = {
                    let mut parts = parts_of(&mut txn, &self.local, local_name);
                    twophase::prepare_only(
                        &GtmLog(&coord.gtm),
                        &Nodes(&coord),
                        gxid,
                        &gid,
                        &mut parts,
                    )
                    .await
                };
                self.release(txn);
                r.map(|_| QueryResult::command("PREPARE TRANSACTION"))
            }
            TransactionStmt::CommitPrepared(ref gid)
            | TransactionStmt::RollbackPrepared(ref gid) => {
                if self.block.is_some() {
                    return Err(PgError::new(
                        SqlState::ActiveSqlTransaction,
                        "COMMIT PREPARED cannot run inside a transaction block",
                    ));
                }
                let commit = matches!(t, TransactionStmt::CommitPrepared(_));
                twophase::finish_prepared(
                    &GtmLog(&self.coord.gtm),
                    &Nodes(&self.coord),
                    gid,
                    commit,
                )
                .await?;
                Ok(QueryResult::command(if commit {
                    "COMMIT PREPARED"
                } else {
                    "ROLLBACK PREPARED"
                }))
            }
            TransactionStmt::Savepoint(ref name)
            | TransactionStmt::Release(ref name)
            | TransactionStmt::RollbackTo(ref name) => {
                let name = parser::normalize_ident(name);
                self.savepoint(&t, &name).await
            }
        }
    }

    /// SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT on every node the transaction has
    /// reached (nodes reached later get the open savepoints replayed first, so a ROLLBACK TO undoes
    /// their work too).
    async fn savepoint(&mut self, t: &TransactionStmt, name: &str) -> Result<QueryResult, PgError> {
        let what = match t {
            TransactionStmt::Savepoint(_) => "SAVEPOINT",
            TransactionStmt::Release(_) => "RELEASE SAVEPOINT",
            _ => "ROLLBACK TO SAVEPOINT",
        };
        if self.block.is_none() {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                format!("{what} can only be used in transaction blocks"),
            ));
        }
        let rollback_to = matches!(t, TransactionStmt::RollbackTo(_));
        if self.in_failed_transaction() && !rollback_to {
            return Err(PgError::new(
                SqlState::InFailedSqlTransaction,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        self.begin_statement().await?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let sql = format!("{what} {quoted}");
        let txn = self.txn()?;
        let pos = txn.savepoints.iter().rposition(|s| s == name);
        if !matches!(t, TransactionStmt::Savepoint(_)) && pos.is_none() {
            return Err(PgError::new(
                SqlState::InvalidSavepointSpecification,
                format!("savepoint \"{name}\" does not exist"),
            ));
        }
        let nodes: Vec<String> = txn.conns.keys().cloned().collect();
        let local = txn.local_begun;
        for n in nodes {
            self.node_exec(&n, &sql).await?;
        }
        if local {
            self.local_run(&sql, true).await?;
        }
        let txn = self.txn()?;
        match (t, pos) {
            (TransactionStmt::Savepoint(_), _) => txn.savepoints.push(name.to_string()),
            (TransactionStmt::Release(_), Some(p)) => txn.savepoints.truncate(p),
            (_, Some(p)) => txn.savepoints.truncate(p + 1),
            _ => {}
        }
        if rollback_to {
            if let Some(b) = &mut self.block {
                b.failed = false;
            }
        }
        Ok(QueryResult::command(what))
    }

    /// Open the global transaction if none is open, and take the statement's snapshot.
    async fn begin_statement(&mut self) -> Result<(), PgError> {
        match &mut self.txn {
            None => {
                let (gxid, snapshot) = self.coord.gtm.begin_snapshot().await?;
                tracing::Span::current().record("gxid", gxid.0);
                tracing::debug!("global transaction begins");
                let (iso, read_only) = match &self.block {
                    Some(b) => (b.iso, b.read_only),
                    None => (DnIsolation::ReadCommitted, false),
                };
                self.txn = Some(GlobalTxn {
                    gxid,
                    iso,
                    read_only,
                    snapshot,
                    fresh: true,
                    conns: BTreeMap::new(),
                    local_begun: false,
                    local_ddl: false,
                    savepoints: Vec::new(),
                    followed: Vec::new(),
                });
            }
            Some(t) => {
                if t.fresh {
                    t.fresh = false;
                } else if t.iso == DnIsolation::ReadCommitted {
                    t.snapshot = self.coord.gtm.snapshot(Some(t.gxid)).await?;
                }
            }
        }
        if let Some(t) = &mut self.txn {
            t.fresh = false;
        }
        Ok(())
    }

    fn txn(&mut self) -> Result<&mut GlobalTxn, PgError> {
        self.txn
            .as_mut()
            .ok_or_else(|| internal("no global transaction is open"))
    }

    /// Commit the open global transaction (if any).
    async fn commit_txn(&mut self) -> Result<(), PgError> {
        if let Some(t) = &self.txn {
            let followed = t.followed.clone();
            if let Err(e) = self.wait_for_followed(&followed).await {
                self.rollback_txn().await;
                return Err(e);
            }
        }
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        let coord = Arc::clone(&self.coord);
        let gxid = txn.gxid;
        let gid = twophase::implicit_gid(gxid);
        let local_name = coord.cfg.name.clone();
        let out = {
            let mut parts = parts_of(&mut txn, &self.local, local_name);
            twophase::commit(
                &GtmLog(&coord.gtm),
                &Nodes(&coord),
                gxid,
                &gid,
                &mut parts,
                self.mistakes,
            )
            .await
        };
        self.release(txn);
        match out {
            Outcome::Committed { .. } => Ok(()),
            Outcome::RolledBack(e) | Outcome::InDoubt(e) => Err(e),
        }
    }

    /// Wait until none of `followed` is running at the GTM any more. A transaction committed on
    /// one datanode stays running at the GTM until its decision reached every participant; one
    /// that followed its update there (READ COMMITTED) and ended first would be visible to a
    /// snapshot that still sees the other as running: a fractured read. Errors: 40001 after
    /// `FOLLOW_WAIT` (the followed transaction is in doubt; this one was not committed anywhere
    /// and can be retried), the GTM's errors.
    async fn wait_for_followed(&self, followed: &[Gxid]) -> Result<(), PgError> {
        if followed.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + FOLLOW_WAIT;
        loop {
            let snap = self.coord.gtm.snapshot(None).await?;
            if followed.iter().all(|g| !snap.is_running(*g)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PgError::new(
                    SqlState::SerializationFailure,
                    "could not serialize access: a transaction this one followed is still in doubt",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Roll the open global transaction back everywhere (errors ignored: a node that cannot be
    /// reached rolls back when its connection drops).
    async fn rollback_txn(&mut self) {
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        for (conn, _) in txn.conns.values_mut() {
            let _ = conn.call(DnRequest::Rollback).await;
        }
        if txn.local_begun {
            let _ = self
                .local
                .call(|s| {
                    let _ = s.execute("ROLLBACK");
                    s.direct(None);
                })
                .await;
        }
        let _ = self.coord.gtm.abort(txn.gxid).await;
        self.release(txn);
    }

    fn release(&mut self, txn: GlobalTxn) {
        for (_, (conn, _)) in txn.conns {
            self.coord.checkin(conn);
        }
    }

    // ---- running work --------------------------------------------------------------------

    /// Run `sql` on datanode `node` inside the global transaction (opening it there first).
    async fn node_exec(&mut self, node: &str, sql: &str) -> Result<Vec<DnResult>, PgError> {
        self.ensure_conn(node).await?;
        let txn = self.txn()?;
        let snapshot = txn.snapshot.clone();
        let txn_followed = &mut txn.followed;
        let Some((conn, wrote)) = txn.conns.get_mut(node) else {
            return Err(internal("connection vanished"));
        };
        match conn
            .call(DnRequest::Execute {
                snapshot,
                sql: sql.to_string(),
            })
            .await?
        {
            DnResponse::Results {
                results,
                wrote: w,
                followed,
            } => {
                *wrote |= w;
                for g in followed {
                    if !txn_followed.contains(&g) {
                        txn_followed.push(g);
                    }
                }
                Ok(results)
            }
            other => Err(internal(format!("unexpected datanode answer {other:?}"))),
        }
    }

    /// Run `sql` on the catalog session: inside the global transaction (`in_txn`), or as the
    /// session's own statement (SET/SHOW outside a transaction).
    async fn local_exec(&mut self, sql: &str, in_txn: bool) -> Result<QueryResult, PgError> {
        let mut res = self.local_run(sql, in_txn || self.txn.is_some()).await?;
        res.pop()
            .ok_or_else(|| internal("the catalog session returned no result"))
    }

    async fn local_run(&mut self, sql: &str, in_txn: bool) -> Result<Vec<QueryResult>, PgError> {
        let sql = sql.to_string();
        if !in_txn {
            return self
                .local
                .call(move |s| s.execute(&sql))
                .await
                .map_err(io_err)?;
        }
        if self.txn.is_none() {
            self.begin_statement().await?;
        }
        let txn = self.txn()?;
        let directed = Directed {
            gxid: txn.gxid,
            snapshot: txn.snapshot.clone(),
        };
        let begin = if txn.local_begun {
            None
        } else {
            Some(format!(
                "BEGIN ISOLATION LEVEL {}{}",
                match txn.iso {
                    DnIsolation::ReadCommitted => "READ COMMITTED",
                    DnIsolation::RepeatableRead => "REPEATABLE READ",
                },
                if txn.read_only { " READ ONLY" } else { "" }
            ))
        };
        let begin = begin.map(|b| {
            let mut b = b;
            for sp in &txn.savepoints {
                b.push_str(&format!("; SAVEPOINT \"{}\"", sp.replace('"', "\"\"")));
            }
            b
        });
        txn.local_begun = true;
        // Under madsim the catalog engine has no thread to block: a statement that meets a lock
        // waits on this task (`Session::execute_async`) instead.
        #[cfg(madsim)]
        let r = self
            .local
            .execute_async(
                move |s| {
                    s.direct(Some(directed));
                    if let Some(b) = begin {
                        s.execute(&b)?;
                    }
                    Ok(())
                },
                &sql,
            )
            .await;
        #[cfg(not(madsim))]
        let r = {
            // The catalog's NOTICEs go to the client with the datanodes' (`stream.rs`).
            let ctx = pgxc_datanode::client::CallContext::current();
            self.local
                .call(move |s| {
                    s.direct(Some(directed));
                    if let Some(b) = begin {
                        s.execute(&b)?;
                    }
                    stream::execute_noting(s, &sql, ctx.as_deref())
                })
                .await
        };
        r.map_err(io_err)?
    }

    /// The placement of table `name` (and its columns) as this transaction sees the catalog, or
    /// `None` if it is not a distributed table (a view, a catalog table, a CTE name...).
    async fn placed(&mut self, name: &route::RelName) -> Result<Option<Placed>, PgError> {
        let Some(def) = self.lookup_def(name).await? else {
            return Ok(None);
        };
        if def.view.is_some() {
            return Ok(None);
        }
        let key = format!("{}.{}", def.schema, def.name);
        let q = format!(
            "SELECT pclocatortype, pcattname, nodes FROM {PGXC_CLASS} WHERE pcrelname = '{}'",
            key.replace('\'', "''")
        );
        let mut r = self.local_run(&q, true).await?;
        let Some(row) = r.pop().and_then(|r| r.rows.into_iter().next()) else {
            return Ok(None);
        };
        let text = |v: &Value| match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        };
        let kind = match text(&row[0]).as_deref() {
            Some("H") => LocatorType::Hash,
            Some("M") => LocatorType::Modulo,
            Some("N") => LocatorType::RoundRobin,
            _ => LocatorType::Replicated,
        };
        let columns: Vec<(String, DataType)> = def
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        let keycol = text(&row[1]).and_then(|k| {
            columns
                .iter()
                .position(|(n, _)| *n == k)
                .map(|i| (i, columns[i].1.clone()))
        });
        let nodes: Vec<String> = text(&row[2])
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Some(Placed {
            name: key,
            dist: Distribution::new(kind, keycol, nodes)?,
            columns,
            filter: None,
        }))
    }

    /// A relation's catalog definition as this transaction sees it (`None`: not a table or view,
    /// or a catalog relation).
    async fn lookup_def(
        &mut self,
        name: &route::RelName,
    ) -> Result<Option<pgxc_sql::catalog::TableDef>, PgError> {
        let (schema, rel) = name.clone();
        if schema.as_deref() == Some("pgxc") || schema.as_deref() == Some("pg_catalog") {
            return Ok(None);
        }
        if self.txn.is_none() {
            self.begin_statement().await?;
        }
        // Make sure the catalog session's transaction is open (once per transaction), then look
        // the table up.
        if !self.txn()?.local_begun {
            self.local_run("SELECT 1", true).await?;
        }
        self.local
            .call(move |s| s.table_def(schema.as_deref(), &rel))
            .await
            .map_err(io_err)?
    }

    /// The distributed tables a statement reads, looking through views (a view's own query names
    /// more relations), and whether any view was involved (then nothing is shipped whole: the
    /// statement is evaluated here over the base tables' rows).
    async fn expand(&mut self, rels: Vec<route::RelName>) -> Result<(Vec<Placed>, bool), PgError> {
        let mut out: Vec<Placed> = Vec::new();
        let mut via_view = false;
        let mut work = rels;
        work.reverse();
        let mut steps = 0;
        while let Some(r) = work.pop() {
            steps += 1;
            if steps > 1024 {
                return Err(PgError::new(
                    SqlState::ProgramLimitExceeded,
                    "views nest too deeply",
                ));
            }
            if let Some(def) = self.lookup_def(&r).await? {
                if let Some(sql) = &def.view {
                    via_view = true;
                    for st in parser::parse(sql)? {
                        if let Statement::Sql(s) = st {
                            work.extend(route::relations(&s));
                        }
                    }
                    continue;
                }
            }
            if let Some(p) = self.placed(&r).await? {
                if !out.iter().any(|x| x.name == p.name) {
                    out.push(p);
                }
            }
        }
        Ok((out, via_view))
    }

    /// 0A000 if `name` is a view: writes through views are not placed yet on a coordinator.
    async fn no_view_target(&mut self, name: &route::RelName) -> Result<(), PgError> {
        if let Some(def) = self.lookup_def(name).await? {
            if def.view.is_some() {
                return Err(unsupported("writing through a view"));
            }
        }
        Ok(())
    }

    /// Node indexes (into the table's node list) a statement visits, given the WHERE clause.
    fn targets(
        placed: &Placed,
        selection: Option<&ast::Expr>,
        names: &[String],
        write: bool,
        preferred: Option<&str>,
    ) -> Result<Vec<usize>, PgError> {
        let keys = match &placed.dist.key {
            Some((i, ty)) => {
                match route::key_literals(selection, names, &placed.columns[*i].0) {
                    Some(lits) => {
                        let mut vals = Vec::new();
                        for l in lits {
                            match pgxc_sql::types::text::parse_text(ty, &l, &TimeZone::utc()) {
                                Ok(v) => vals.push(v),
                                // A literal the key type rejects: let the datanodes report it.
                                Err(_) => {
                                    vals.clear();
                                    break;
                                }
                            }
                        }
                        if vals.is_empty() {
                            None
                        } else {
                            Some(vals)
                        }
                    }
                    None => None,
                }
            }
            None => None,
        };
        Ok(
            match placed.dist.targets(keys.as_deref(), write, preferred)? {
                Targets::All => (0..placed.dist.nodes.len()).collect(),
                Targets::Nodes(v) => v,
            },
        )
    }

    // ---- statements ----------------------------------------------------------------------

    async fn select(&mut self, text: &str, q: &ast::Query) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        match self.select_route(q).await? {
            SelectRoute::Local => self.local_exec(text, true).await,
            SelectRoute::Evaluate(placed) => Box::pin(self.evaluate_here(text, &placed)).await,
            SelectRoute::Joined(j) => Box::pin(self.evaluate_joined(&j)).await,
            SelectRoute::Distributed(d) => Box::pin(self.run_dist_join(&d)).await,
            SelectRoute::Grouped(g) => Box::pin(self.evaluate_grouped(&g)).await,
            SelectRoute::Sorted(r) => Box::pin(self.evaluate_sorted(text, &r)).await,
            SelectRoute::Combine(nodes, comb) => {
                let mut parts = Vec::new();
                for node in nodes {
                    if let Some(r) = self.node_exec(&node, text).await?.pop() {
                        parts.push(r);
                    }
                }
                combine_aggregates(parts, &comb)
            }
            // Batched, and streamed to the client when it asked (`stream.rs`).
            SelectRoute::Ship(nodes) => Box::pin(self.ship(text, nodes)).await,
        }
    }

    /// Where a SELECT runs: the first that applies of one node holding every (replicated)
    /// table, one node left by the distribution-key equalities, a combinable plain aggregate,
    /// a plain scan over the table's nodes, else evaluation here.
    async fn select_route(&mut self, q: &ast::Query) -> Result<SelectRoute, PgError> {
        let (placed, via_view) = self.expand(route::relations(q)).await?;
        if placed.is_empty() {
            return Ok(SelectRoute::Local);
        }
        if via_view {
            return Ok(SelectRoute::Evaluate(placed));
        }
        let preferred = self.coord.preferred();
        if !self.switches.fqs {
            return self.evaluate_route(q, placed).await;
        }
        // Only replicated tables: one node that holds all of them.
        if placed
            .iter()
            .all(|p| p.dist.kind == LocatorType::Replicated)
        {
            let first = &placed[0].dist.nodes;
            let node = preferred
                .iter()
                .chain(first.iter())
                .find(|n| placed.iter().all(|p| p.dist.nodes.contains(n)))
                .cloned();
            if let Some(node) = node {
                return Ok(SelectRoute::Ship(vec![node]));
            }
        }
        if placed.len() == 1 {
            let p = placed[0].clone();
            if let Some((_, names, sel)) = route::single_table_select(q) {
                let t = Self::targets(&p, sel, &names, false, preferred.as_deref())?;
                let nodes: Vec<String> = t.iter().map(|&i| p.dist.nodes[i].clone()).collect();
                if nodes.len() == 1 {
                    return Ok(SelectRoute::Ship(nodes));
                }
                if !nodes.is_empty() {
                    if let Some(comb) =
                        route::combinable_aggregates(q).filter(|_| self.switches.remote_group)
                    {
                        return Ok(SelectRoute::Combine(nodes, comb));
                    }
                    if route::concat_shippable(q).is_some() {
                        return Ok(SelectRoute::Ship(nodes));
                    }
                    if let Some((k, _)) = &p.dist.key {
                        if route::grouped_by_key(q, &names, &p.columns[*k].0)
                            || route::distinct_by_key(q, &names, &p.columns[*k].0)
                        {
                            return Ok(SelectRoute::Ship(nodes));
                        }
                    }
                    let table: JoinTable = (names.clone(), p.columns.clone());
                    if let Some(r) = self.group_route(q, &[table], nodes.clone()).await? {
                        return Ok(r);
                    }
                    if let Some(r) = self.sort_route(q, &p, &names, &nodes) {
                        return Ok(r);
                    }
                }
            }
        }
        if self.switches.remote_join {
            if let Some(r) = self.join_route(q, preferred.as_deref()).await? {
                return Ok(r);
            }
            if let Some(r) = self.dist_join_route(q).await? {
                return Ok(r);
            }
        }
        self.evaluate_route(q, placed).await
    }

    /// [`SelectRoute::Evaluate`] over `placed`, each remote scan applying the WHERE conjuncts
    /// that read only its table (`route::scan_filters`).
    async fn evaluate_route(
        &mut self,
        q: &ast::Query,
        placed: Vec<Placed>,
    ) -> Result<SelectRoute, PgError> {
        let mut placed = placed;
        for f in route::scan_filters(q) {
            let Some(target) = self.placed(&f.table).await? else {
                continue;
            };
            let Some(p) = placed.iter_mut().find(|p| p.name == target.name) else {
                continue;
            };
            if !f
                .columns
                .iter()
                .all(|c| p.columns.iter().any(|(n, _)| n == c))
            {
                continue;
            }
            match &mut p.filter {
                Some((qual, v)) if *qual == f.qualifier => v.push(f.sql),
                Some(_) => {}
                None => p.filter = Some((f.qualifier, vec![f.sql])),
            }
        }
        self.narrow_fetch(q, &mut placed).await?;
        Ok(SelectRoute::Evaluate(placed))
    }

    /// Fast query shipping of a join (XC's shippability rules): a SELECT over base tables joined by
    /// inner joins only, whose distributed tables are all joined to each other by equality of
    /// their distribution keys (same locator type, key type and node list: colocated), and whose
    /// replicated tables are held by every one of those nodes. Every joined row then exists on
    /// exactly one datanode, so the query is shipped whole: to the one node the keys pin, or to
    /// every node with the results concatenated (a plain join) or combined (count/sum/min/max).
    /// `None` when the join is not shippable (the coordinator evaluates it).
    async fn join_route(
        &mut self,
        q: &ast::Query,
        preferred: Option<&str>,
    ) -> Result<Option<SelectRoute>, PgError> {
        let Some(shape) = route::inner_join(q) else {
            return Ok(None);
        };
        // Every relation must be one of the FROM list's (no subqueries over other tables).
        if shape.tables.len() < 2 || route::relation_mentions(q) != shape.tables.len() {
            return Ok(None);
        }
        let mut occ: Vec<(Placed, Vec<String>)> = Vec::new();
        for (rel, names) in &shape.tables {
            match self.placed(rel).await? {
                Some(p) => occ.push((p, names.clone())),
                None => return Ok(None),
            }
        }
        // Which occurrence does a column reference name?
        let resolve = |c: &route::ColRef| -> Option<(usize, usize)> {
            let mut found = None;
            for (i, (p, names)) in occ.iter().enumerate() {
                if c.qualifier.as_ref().is_some_and(|q| !names.contains(q)) {
                    continue;
                }
                if let Some(ci) = p.columns.iter().position(|(n, _)| *n == c.column) {
                    if found.is_some() {
                        return None; // ambiguous
                    }
                    found = Some((i, ci));
                }
            }
            found
        };
        let distributed: Vec<usize> = (0..occ.len())
            .filter(|&i| occ[i].0.dist.kind != LocatorType::Replicated)
            .collect();
        let Some(&first) = distributed.first() else {
            return Ok(None);
        };
        let base = occ[first].0.dist.clone();
        if distributed.len() > 1 {
            // Colocated: same locator type (hash or modulo), key type and node list, and every
            // distributed occurrence joined to the first through key = key equalities.
            if !matches!(base.kind, LocatorType::Hash | LocatorType::Modulo) {
                return Ok(None);
            }
            let key_ty = base.key.as_ref().map(|(_, t)| t.clone());
            for &i in &distributed {
                let d = &occ[i].0.dist;
                if d.kind != base.kind
                    || d.nodes != base.nodes
                    || d.key.as_ref().map(|(_, t)| t.clone()) != key_ty
                {
                    return Ok(None);
                }
            }
            let is_key = |(i, c): (usize, usize)| {
                distributed.contains(&i) && occ[i].0.dist.key.as_ref().is_some_and(|(k, _)| *k == c)
            };
            let mut joined = vec![first];
            loop {
                let before = joined.len();
                for (l, r) in &shape.equalities {
                    let (Some(l), Some(r)) = (resolve(l), resolve(r)) else {
                        continue;
                    };
                    if !is_key(l) || !is_key(r) {
                        continue;
                    }
                    if joined.contains(&l.0) && !joined.contains(&r.0) {
                        joined.push(r.0);
                    } else if joined.contains(&r.0) && !joined.contains(&l.0) {
                        joined.push(l.0);
                    }
                }
                if joined.len() == before {
                    break;
                }
            }
            if distributed.iter().any(|i| !joined.contains(i)) {
                return Ok(None);
            }
        }
        // Replicated tables must be on every node the distributed rows live on.
        for (p, _) in &occ {
            if p.dist.kind == LocatorType::Replicated
                && base.nodes.iter().any(|n| !p.dist.nodes.contains(n))
            {
                return Ok(None);
            }
        }
        // The nodes: those every distributed occurrence's key literals allow (colocated, so the
        // intersection holds every result row).
        let mut nodes: Vec<usize> = (0..base.nodes.len()).collect();
        for &i in &distributed {
            let (p, names) = &occ[i];
            let t = Self::targets(p, shape.selection, names, false, preferred)?;
            nodes.retain(|n| t.contains(n));
        }
        let nodes: Vec<String> = nodes.iter().map(|&i| base.nodes[i].clone()).collect();
        // An aggregate over the join: partial aggregation on its nodes, the final step here.
        if nodes.len() > 1
            && !route::concat_safe(q)
            && route::combinable_aggregates_joined(q)
                .filter(|_| self.switches.remote_group)
                .is_none()
        {
            let cols: Vec<JoinTable> = occ
                .iter()
                .map(|(p, names)| (names.clone(), p.columns.clone()))
                .collect();
            if let Some(r) = self.group_route(q, &cols, nodes.clone()).await? {
                return Ok(Some(r));
            }
        }
        Ok(match nodes.len() {
            0 => None,
            1 => Some(SelectRoute::Ship(nodes)),
            _ => {
                if let Some(comb) =
                    route::combinable_aggregates_joined(q).filter(|_| self.switches.remote_group)
                {
                    Some(SelectRoute::Combine(nodes, comb))
                } else if route::concat_safe(q) {
                    Some(SelectRoute::Ship(nodes))
                } else {
                    let cols: Vec<JoinTable> = occ
                        .iter()
                        .map(|(p, names)| (names.clone(), p.columns.clone()))
                        .collect();
                    joined_rewrite(q, &cols).map(|(remote, local, columns)| {
                        SelectRoute::Joined(JoinedRemote {
                            nodes,
                            remote,
                            local,
                            columns,
                        })
                    })
                }
            }
        })
    }

    /// EXPLAIN of `stmt` as this coordinator would run it (`crate::explain`'s shapes): the
    /// route is the one running the statement takes. Statements on no distributed table are
    /// explained by the catalog engine. Errors: 0A000 for EXPLAIN ANALYZE.
    async fn explain(
        &mut self,
        text: &str,
        stmt: &ast::Statement,
        o: ExplainOpts,
    ) -> Result<QueryResult, PgError> {
        use ast::Statement as S;
        if o.analyze {
            return Err(unsupported("EXPLAIN ANALYZE"));
        }
        self.begin_statement().await?;
        let remote = stmt.to_string();
        let lines = match stmt {
            S::Query(q) => match self.select_route(q).await? {
                SelectRoute::Local => return self.local_exec(text, true).await,
                SelectRoute::Ship(nodes) => {
                    let output = if o.verbose {
                        self.explain_output(q, &remote).await?
                    } else {
                        None
                    };
                    explain::fqs(output.as_deref(), &nodes, &remote, o)
                }
                SelectRoute::Combine(nodes, comb) => {
                    let output = self.explain_output(q, &remote).await?.unwrap_or_default();
                    let items = split_top(&output);
                    let finals: Vec<&str> = comb
                        .iter()
                        .map(|c| match c {
                            route::Combine::Count | route::Combine::Sum => "sum",
                            route::Combine::Min => "min",
                            route::Combine::Max => "max",
                        })
                        .collect();
                    explain::combined(&items, &finals, &nodes, &remote, o)
                }
                SelectRoute::Evaluate(placed) => {
                    let local = self.local_plan(&remote, o.costs, o.verbose).await?;
                    let preferred = self.coord.preferred();
                    let mut scans = BTreeMap::new();
                    for p in &placed {
                        let bare = p.name.rsplit('.').next().unwrap_or(&p.name).to_string();
                        let scan = RemoteScan {
                            nodes: Self::fetch_nodes(p, preferred.as_deref())?,
                            query: Self::fetch_sql(p),
                        };
                        scans.insert(p.name.clone(), scan.clone());
                        scans.entry(bare).or_insert(scan);
                    }
                    explain::remote_scans(&local, |t| scans.get(t).cloned(), o)
                }
                SelectRoute::Joined(j) => {
                    let local = self.local_plan_joined(&j, o.costs, o.verbose).await?;
                    let scan = RemoteScan {
                        nodes: j.nodes.clone(),
                        query: j.remote.clone(),
                    };
                    explain::remote_scans(&local, |t| (t == JOINED_TABLE).then(|| scan.clone()), o)
                        .into_iter()
                        .map(|l| l.replace(JOINED_TABLE, "\"__REMOTE_JOIN_QUERY__\""))
                        .collect()
                }
                SelectRoute::Grouped(g) => self.explain_grouped(&g, o).await?,
                SelectRoute::Sorted(r) => self.explain_sorted(&remote, &r, o).await?,
                SelectRoute::Distributed(d) => self.explain_dist_join(q, &d, o).await?,
            },
            S::Update(u) => match self.update_target(u).await? {
                None => return self.local_exec(text, true).await,
                Some((p, names)) => {
                    let t = self
                        .write_targets(u, &p, &names, u.selection.as_ref())
                        .await?;
                    let nodes: Vec<String> = t.iter().map(|&i| p.dist.nodes[i].clone()).collect();
                    explain::fqs(None, &nodes, &remote, o)
                }
            },
            S::Delete(d) => match self.delete_target(d).await? {
                None => return self.local_exec(text, true).await,
                Some((p, names)) => {
                    let t = self
                        .write_targets(d, &p, &names, d.selection.as_ref())
                        .await?;
                    let nodes: Vec<String> = t.iter().map(|&i| p.dist.nodes[i].clone()).collect();
                    explain::fqs(None, &nodes, &remote, o)
                }
            },
            S::Insert(ins) => {
                let rel = match &ins.table {
                    ast::TableObject::TableName(t) => route::rel_name(t),
                    _ => None,
                };
                let placed = match rel {
                    Some(r) => self.placed(&r).await?,
                    None => None,
                };
                match placed {
                    Some(p) => {
                        let nodes = insert_nodes(&p, ins);
                        explain::fqs(None, &nodes, &remote, o)
                    }
                    None => return self.local_exec(text, true).await,
                }
            }
            _ => return self.local_exec(text, true).await,
        };
        Ok(QueryResult {
            columns: vec![("QUERY PLAN".into(), DataType::Text)],
            rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
            tag: "EXPLAIN".into(),
        })
    }

    /// The catalog engine's EXPLAIN lines for `sql` (its tables are empty: the plan shape only).
    async fn local_plan(
        &mut self,
        sql: &str,
        costs: bool,
        verbose: bool,
    ) -> Result<Vec<String>, PgError> {
        let q = format!(
            "EXPLAIN (COSTS {}, VERBOSE {}) {sql}",
            if costs { "ON" } else { "OFF" },
            if verbose { "ON" } else { "OFF" }
        );
        let r = self.local_exec(&q, true).await?;
        Ok(r.rows
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(Value::Text(t)) => Some(t),
                _ => None,
            })
            .collect())
    }

    /// A query's target list as EXPLAIN VERBOSE prints it: for a single table its select list
    /// with the table's columns qualified by its name or alias (as XC prints them), otherwise
    /// the catalog engine's top `Output:`.
    async fn explain_output(
        &mut self,
        q: &ast::Query,
        sql: &str,
    ) -> Result<Option<String>, PgError> {
        if let (Some((name, names, _)), ast::SetExpr::Select(sel)) =
            (route::single_table_select(q), q.body.as_ref())
        {
            if let Some(rel) = route::rel_name(&name) {
                if let Some(p) = self.placed(&rel).await? {
                    let cols: Vec<String> = p.columns.iter().map(|(n, _)| n.clone()).collect();
                    let alias = names.last().cloned().unwrap_or(rel.1);
                    let mut items = Vec::new();
                    for item in &sel.projection {
                        match item {
                            ast::SelectItem::Wildcard(_)
                            | ast::SelectItem::QualifiedWildcard(..) => {
                                items.extend(cols.iter().map(|c| format!("{alias}.{c}")));
                            }
                            ast::SelectItem::UnnamedExpr(e)
                            | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                                items.push(explain::qualify(&e.to_string(), &alias, &cols));
                            }
                            other => items.push(other.to_string()),
                        }
                    }
                    return Ok(Some(items.join(", ")));
                }
            }
        }
        let lines = self.local_plan(sql, false, true).await?;
        Ok(lines
            .iter()
            .find_map(|l| l.strip_prefix("  Output: ").map(str::to_string)))
    }

    /// The query that fetches every row of `p` (the fallback's remote scan).
    fn fetch_sql(p: &Placed) -> String {
        let cols: Vec<String> = p
            .columns
            .iter()
            .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
            .collect();
        match &p.filter {
            Some((qual, conj)) if !conj.is_empty() => format!(
                "SELECT {} FROM {} AS \"{}\" WHERE {}",
                cols.join(", "),
                p.name,
                qual.replace('"', "\"\""),
                conj.join(" AND ")
            ),
            _ => format!("SELECT {} FROM {}", cols.join(", "), p.name),
        }
    }

    /// The nodes the fallback reads `p` from: one for a replicated table, else all of its nodes.
    fn fetch_nodes(p: &Placed, preferred: Option<&str>) -> Result<Vec<String>, PgError> {
        Ok(if p.dist.kind == LocatorType::Replicated {
            let i = match p.dist.targets(None, false, preferred)? {
                Targets::Nodes(v) => v.first().copied().unwrap_or(0),
                Targets::All => 0,
            };
            vec![p.dist.nodes[i].clone()]
        } else {
            p.dist.nodes.clone()
        })
    }

    /// Roll the catalog session back to the internal savepoint `name` and release it (the end of
    /// every "work in a savepoint, then undo" step on the catalog engine).
    async fn undo_savepoint(&mut self, name: &str) -> Result<Vec<QueryResult>, PgError> {
        self.local_run(
            &format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
            true,
        )
        .await
    }

    /// Run a [`SelectRoute::Joined`]: the join on its nodes, its rows into [`JOINED_TABLE`] inside a
    /// savepoint of the catalog transaction, the rest of the statement there, roll back.
    async fn evaluate_joined(&mut self, j: &JoinedRemote) -> Result<QueryResult, PgError> {
        let ddl = joined_ddl(j);
        self.evaluate_over_remote(
            &j.nodes,
            &j.remote,
            "pgxc_join",
            &ddl,
            JOINED_TABLE,
            &j.columns,
            &j.local,
        )
        .await
    }

    /// Run `remote` on `nodes`, put the rows in the coordinator table `table` (created by `ddl`,
    /// with `columns`) inside the catalog-transaction savepoint `savepoint`, run `local` there and
    /// roll the savepoint back: the shared step of [`SelectRoute::Joined`] and the remote group query.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn evaluate_over_remote(
        &mut self,
        nodes: &[String],
        remote: &str,
        savepoint: &str,
        ddl: &str,
        table: &str,
        columns: &[(String, DataType)],
        local: &str,
    ) -> Result<QueryResult, PgError> {
        let mut rows = Vec::new();
        for n in nodes {
            if let Some(r) = self.node_exec(n, remote).await?.pop() {
                rows.extend(r.rows);
            }
        }
        self.local_run(&format!("SAVEPOINT {savepoint}"), true)
            .await?;
        let r = async {
            self.local_run(ddl, true).await?;
            let names = columns.iter().map(|(n, _)| quote_ident(n)).collect();
            self.local_load(table, names, rows).await?;
            self.local_exec(local, true).await
        }
        .await;
        let undo = self.undo_savepoint(savepoint).await;
        let r = r?;
        undo?;
        Ok(r)
    }

    /// The catalog engine's plan of a [`SelectRoute::Joined`] statement's local part (over an
    /// empty [`JOINED_TABLE`] created and dropped in a savepoint).
    async fn local_plan_joined(
        &mut self,
        j: &JoinedRemote,
        costs: bool,
        verbose: bool,
    ) -> Result<Vec<String>, PgError> {
        self.local_run("SAVEPOINT pgxc_join", true).await?;
        let r = async {
            self.local_run(&joined_ddl(j), true).await?;
            self.local_plan(&j.local, costs, verbose).await
        }
        .await;
        let undo = self.undo_savepoint("pgxc_join").await;
        let r = r?;
        undo?;
        Ok(r)
    }

    /// The fallback: fetch every named table's rows under the statement's snapshot into the
    /// catalog engine's (empty) tables inside a savepoint, run `text` there, roll back.
    async fn evaluate_here(
        &mut self,
        text: &str,
        placed: &[Placed],
    ) -> Result<QueryResult, PgError> {
        let preferred = self.coord.preferred();
        self.local_run("SAVEPOINT pgxc_fetch", true).await?;
        let r = async {
            for p in placed {
                let nodes = Self::fetch_nodes(p, preferred.as_deref())?;
                let cols: Vec<String> = p
                    .columns
                    .iter()
                    .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
                    .collect();
                let fetch = Self::fetch_sql(p);
                for n in nodes {
                    let rows = self
                        .node_exec(&n, &fetch)
                        .await?
                        .pop()
                        .map(|r| r.rows)
                        .unwrap_or_default();
                    self.local_load(&quote_qualified(&p.name), cols.clone(), rows)
                        .await?;
                }
            }
            self.local_exec(text, true).await
        }
        .await;
        let undo = self.undo_savepoint("pgxc_fetch").await;
        let r = r?;
        undo?;
        Ok(r)
    }

    async fn insert(&mut self, ins: &ast::Insert) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let ast::TableObject::TableName(table) = &ins.table else {
            return Err(unsupported("INSERT into a table function"));
        };
        let Some(rel) = route::rel_name(table) else {
            return Err(unsupported("this table name"));
        };
        self.no_view_target(&rel).await?;
        let Some(p) = self.placed(&rel).await? else {
            return self.local_exec(&ins.to_string(), true).await;
        };
        if ins.on.is_some() {
            return Err(unsupported("INSERT ... ON CONFLICT"));
        }
        // Complete the rows on the catalog engine (defaults, casts, NOT NULL/CHECK), then undo.
        let mut complete = ins.clone();
        complete.returning = Some(vec![ast::SelectItem::Wildcard(
            ast::WildcardAdditionalOptions::default(),
        )]);
        if let Some(src) = &complete.source {
            // A source that reads distributed tables is evaluated like a query first.
            if !matches!(src.body.as_ref(), ast::SetExpr::Values(_)) {
                let rows = Box::pin(self.select(&src.to_string(), src)).await?;
                let colnames: Vec<String> = if ins.columns.is_empty() {
                    p.columns
                        .iter()
                        .take(rows.columns.len())
                        .map(|(n, _)| n.clone())
                        .collect()
                } else {
                    ins.columns.iter().map(|c| c.to_string()).collect()
                };
                if rows.rows.is_empty() {
                    return Ok(QueryResult::command("INSERT 0 0"));
                }
                let refs: Vec<&Vec<Value>> = rows.rows.iter().collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {} RETURNING *",
                    table,
                    colnames.join(", "),
                    rows_sql(&refs, &rows.columns)
                );
                return self.insert_complete(&p, &sql, ins).await;
            }
        }
        self.insert_complete(&p, &complete.to_string(), ins).await
    }

    async fn insert_complete(
        &mut self,
        p: &Placed,
        complete_sql: &str,
        ins: &ast::Insert,
    ) -> Result<QueryResult, PgError> {
        self.local_run("SAVEPOINT pgxc_insert", true).await?;
        let r = self.local_exec(complete_sql, true).await;
        let undo = self.undo_savepoint("pgxc_insert").await;
        let full = r?;
        undo?;
        let mut per_node: BTreeMap<usize, Vec<&Vec<Value>>> = BTreeMap::new();
        for row in &full.rows {
            for i in p.dist.nodes_for_insert(row, &mut self.round_robin)? {
                per_node.entry(i).or_default().push(row);
            }
        }
        let returning = ins
            .returning
            .as_ref()
            .map(|r| {
                format!(
                    " RETURNING {}",
                    r.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .unwrap_or_default();
        let mut out = QueryResult::command("INSERT 0 0");
        let mut count = 0u64;
        let replicated = p.dist.kind == LocatorType::Replicated;
        for (k, (i, rows)) in per_node.into_iter().enumerate() {
            let node = p.dist.nodes[i].clone();
            let sql = format!(
                "INSERT INTO {} VALUES {}{}",
                p.name,
                rows_sql(&rows, &p.columns),
                returning
            );
            let r = self.node_exec(&node, &sql).await?;
            if let Some(r) = r.into_iter().last() {
                // A replicated row is inserted on every node: count and return it once.
                if replicated && k > 0 {
                    continue;
                }
                count += tag_count(&r.tag);
                if !r.columns.is_empty() {
                    out.columns = r.columns;
                    out.rows.extend(r.rows);
                }
            }
        }
        out.tag = format!("INSERT 0 {count}");
        Ok(out)
    }

    /// `COPY t [(cols)] FROM STDIN` with the whole data stream: every line goes to the node its
    /// distribution key places it on (all nodes for a replicated table, in turn for round robin),
    /// and each node loads its lines with its own COPY in the global transaction. Text format, or
    /// CSV for tables placed without a key.
    pub async fn copy_in(
        &mut self,
        stmt: &parser::Copy,
        data: &[u8],
    ) -> Result<QueryResult, PgError> {
        let r = self.copy_in_inner(stmt, data).await;
        match r {
            Ok(res) => {
                if self.block.is_none() && self.txn.is_some() {
                    self.commit_txn().await?;
                }
                Ok(res)
            }
            Err(e) => {
                self.fail().await;
                Err(e)
            }
        }
    }

    async fn copy_in_inner(
        &mut self,
        stmt: &parser::Copy,
        data: &[u8],
    ) -> Result<QueryResult, PgError> {
        let parser::CopySource::Table { name, columns } = &stmt.source else {
            return Err(unsupported("COPY (query) FROM"));
        };
        let Some(rel) = route::rel_name(name) else {
            return Err(unsupported("this table name"));
        };
        self.begin_statement().await?;
        let Some(p) = self.placed(&rel).await? else {
            return Err(unsupported("COPY into a table that is not distributed"));
        };
        let word = |o: &parser::UtilityOption| match &o.value {
            Some(parser::OptionValue::Word(w)) | Some(parser::OptionValue::Str(w)) => {
                Some(w.to_ascii_lowercase())
            }
            _ => None,
        };
        let csv = stmt.option("format").and_then(word).as_deref() == Some("csv");
        if stmt.option("header").is_some() {
            return Err(unsupported("COPY FROM with HEADER"));
        }
        let delim = match stmt.option("delimiter").map(|o| &o.value) {
            Some(Some(parser::OptionValue::Str(d))) if d.len() == 1 => d.as_bytes()[0],
            None => {
                if csv {
                    b','
                } else {
                    b'\t'
                }
            }
            _ => return Err(unsupported("this COPY DELIMITER")),
        };
        let null = match stmt.option("null").map(|o| &o.value) {
            Some(Some(parser::OptionValue::Str(n))) => n.clone(),
            _ => {
                if csv {
                    String::new()
                } else {
                    "\\N".into()
                }
            }
        };
        // The position of the distribution key among the data's fields.
        let key_field = match &p.dist.key {
            None => None,
            Some((k, ty)) => {
                if csv {
                    return Err(unsupported(
                        "COPY FROM in CSV format into a HASH/MODULO table",
                    ));
                }
                let keyname = &p.columns[*k].0;
                let pos = if columns.is_empty() {
                    Some(*k)
                } else {
                    columns
                        .iter()
                        .position(|c| parser::normalize_ident(c) == *keyname)
                };
                pos.map(|i| (i, ty.clone()))
            }
        };
        let mut per_node: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        let all: Vec<usize> = (0..p.dist.nodes.len()).collect();
        for line in data.split_inclusive(|b| *b == b'\n') {
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if body == b"\\." {
                break;
            }
            if body.is_empty() && line.len() <= 1 {
                continue;
            }
            let nodes: Vec<usize> = match p.dist.kind {
                LocatorType::Replicated => all.clone(),
                LocatorType::RoundRobin => {
                    let i = (self.round_robin % all.len() as u64) as usize;
                    self.round_robin = self.round_robin.wrapping_add(1);
                    vec![i]
                }
                LocatorType::Hash | LocatorType::Modulo => {
                    let v = match &key_field {
                        None => Value::Null,
                        Some((i, ty)) => {
                            let field = body.split(|b| *b == delim).nth(*i).unwrap_or(b"");
                            let text = String::from_utf8_lossy(field);
                            if text == null {
                                Value::Null
                            } else {
                                let unescaped = text.replace("\\\\", "\\");
                                pgxc_sql::types::text::parse_text(ty, &unescaped, &TimeZone::utc())?
                            }
                        }
                    };
                    p.dist.node_for_key(&v)?.into_iter().collect()
                }
            };
            for i in nodes {
                let buf = per_node.entry(i).or_default();
                buf.extend_from_slice(body);
                buf.push(b'\n');
            }
        }
        let text = copy_text(stmt, name, columns);
        let mut count = 0u64;
        let replicated = p.dist.kind == LocatorType::Replicated;
        for (k, (i, data)) in per_node.into_iter().enumerate() {
            let node = p.dist.nodes[i].clone();
            let r = self.node_copy(&node, &text, data).await?;
            if !(replicated && k > 0) {
                count += tag_count(&r.tag);
            }
        }
        Ok(QueryResult::command(format!("COPY {count}")))
    }

    async fn node_copy(
        &mut self,
        node: &str,
        sql: &str,
        data: Vec<u8>,
    ) -> Result<DnResult, PgError> {
        // Open the node's transaction with a no-op statement, then send the data.
        self.node_exec(node, "SELECT 1").await?;
        let txn = self.txn()?;
        let snapshot = txn.snapshot.clone();
        let Some((conn, wrote)) = txn.conns.get_mut(node) else {
            return Err(internal("connection vanished"));
        };
        match conn
            .call(DnRequest::CopyIn {
                snapshot,
                sql: sql.to_string(),
                data,
            })
            .await?
        {
            DnResponse::Results {
                mut results,
                wrote: w,
                ..
            } => {
                *wrote |= w;
                results
                    .pop()
                    .ok_or_else(|| internal("COPY returned nothing"))
            }
            other => Err(internal(format!("unexpected datanode answer {other:?}"))),
        }
    }

    async fn update(&mut self, text: &str, u: &ast::Update) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let Some((p, names)) = self.update_target(u).await? else {
            return self.local_exec(text, true).await;
        };
        self.write_shipped(text, u, &p, &names, u.selection.as_ref())
            .await
    }

    /// The distributed table an UPDATE writes and the names it is referred to by (`None`: not a
    /// distributed table). Errors: 0A000 for an update of the distribution key (as XC), a view
    /// or an unsupported target.
    async fn update_target(
        &mut self,
        u: &ast::Update,
    ) -> Result<Option<(Placed, Vec<String>)>, PgError> {
        let ast::TableFactor::Table { name, alias, .. } = &u.table.relation else {
            return Err(unsupported("UPDATE of this target"));
        };
        let Some(rel) = route::rel_name(name) else {
            return Err(unsupported("this table name"));
        };
        self.no_view_target(&rel).await?;
        let Some(p) = self.placed(&rel).await? else {
            return Ok(None);
        };
        if let Some((k, _)) = &p.dist.key {
            let key = &p.columns[*k].0;
            for a in &u.assignments {
                let cols: Vec<&ast::ObjectName> = match &a.target {
                    ast::AssignmentTarget::ColumnName(c) => vec![c],
                    ast::AssignmentTarget::Tuple(v) => v.iter().collect(),
                };
                if cols
                    .iter()
                    .any(|c| route::rel_name(c).is_some_and(|(_, n)| n == *key))
                {
                    return Err(PgError::new(
                        SqlState::FeatureNotSupported,
                        "Partition column can't be updated in current version",
                    ));
                }
            }
        }
        let mut names = vec![rel.1.clone()];
        if let Some(a) = alias {
            names.push(parser::normalize_ident(&a.name));
        }
        Ok(Some((p, names)))
    }

    async fn delete(&mut self, text: &str, d: &ast::Delete) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let Some((p, names)) = self.delete_target(d).await? else {
            return self.local_exec(text, true).await;
        };
        self.write_shipped(text, d, &p, &names, d.selection.as_ref())
            .await
    }

    /// The distributed table a DELETE removes from and the names it is referred to by (`None`:
    /// not a distributed table).
    async fn delete_target(
        &mut self,
        d: &ast::Delete,
    ) -> Result<Option<(Placed, Vec<String>)>, PgError> {
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        let [twj] = from.as_slice() else {
            return Err(unsupported("DELETE with several targets"));
        };
        let ast::TableFactor::Table { name, alias, .. } = &twj.relation else {
            return Err(unsupported("DELETE of this target"));
        };
        let Some(rel) = route::rel_name(name) else {
            return Err(unsupported("this table name"));
        };
        self.no_view_target(&rel).await?;
        let Some(p) = self.placed(&rel).await? else {
            return Ok(None);
        };
        let mut names = vec![rel.1.clone()];
        if let Some(a) = alias {
            names.push(parser::normalize_ident(&a.name));
        }
        Ok(Some((p, names)))
    }

    /// Ship an UPDATE/DELETE whole to the nodes of its target table its WHERE clause leaves.
    /// Other tables it reads must be replicated on those nodes.
    async fn write_shipped<V: ast::Visit>(
        &mut self,
        text: &str,
        stmt: &V,
        p: &Placed,
        names: &[String],
        selection: Option<&ast::Expr>,
    ) -> Result<QueryResult, PgError> {
        let targets = self.write_targets(stmt, p, names, selection).await?;
        let replicated = p.dist.kind == LocatorType::Replicated;
        let mut out = QueryResult::command("");
        let mut count = 0u64;
        let mut verb = String::new();
        for (k, i) in targets.into_iter().enumerate() {
            let node = p.dist.nodes[i].clone();
            let r = self.node_exec(&node, text).await?;
            if let Some(r) = r.into_iter().last() {
                verb = r.tag.split(' ').next().unwrap_or("").to_string();
                if replicated && k > 0 {
                    continue;
                }
                count += tag_count(&r.tag);
                if !r.columns.is_empty() {
                    out.columns = r.columns;
                    out.rows.extend(r.rows);
                }
            }
        }
        out.tag = format!("{verb} {count}");
        Ok(out)
    }

    /// The node indexes an UPDATE/DELETE of `p` is shipped to. Other tables it reads must be
    /// replicated on those nodes (0A000 otherwise).
    async fn write_targets<V: ast::Visit>(
        &mut self,
        stmt: &V,
        p: &Placed,
        names: &[String],
        selection: Option<&ast::Expr>,
    ) -> Result<Vec<usize>, PgError> {
        for r in route::relations(stmt) {
            if r.1 == p.name.rsplit('.').next().unwrap_or(&p.name) {
                continue;
            }
            self.no_view_target(&r).await?;
            if let Some(other) = self.placed(&r).await? {
                if other.name == p.name {
                    continue;
                }
                let covers = other.dist.kind == LocatorType::Replicated
                    && p.dist.nodes.iter().all(|n| other.dist.nodes.contains(n));
                if !covers {
                    return Err(unsupported(
                        "UPDATE/DELETE reading another distributed table",
                    ));
                }
            }
        }
        Self::targets(p, selection, names, true, None)
    }

    async fn truncate(
        &mut self,
        text: &str,
        names: &[ast::ObjectName],
    ) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let mut nodes: Vec<String> = Vec::new();
        for n in names {
            let Some(rel) = route::rel_name(n) else {
                continue;
            };
            if let Some(p) = self.placed(&rel).await? {
                for node in p.dist.nodes {
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
            }
        }
        for n in nodes {
            self.node_exec(&n, text).await?;
        }
        Ok(QueryResult::command("TRUNCATE TABLE"))
    }

    async fn execute_direct(
        &mut self,
        nodes: &[String],
        query: &str,
    ) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let mut out: Option<QueryResult> = None;
        for n in nodes {
            if *n == self.coord.cfg.name {
                let r = self.local_exec(query, true).await?;
                match &mut out {
                    None => out = Some(r),
                    Some(o) => o.rows.extend(r.rows),
                }
                continue;
            }
            let r = self.node_exec(n, query).await?;
            if let Some(r) = r.into_iter().last() {
                match &mut out {
                    None => out = Some(to_qr(r)),
                    Some(o) => o.rows.extend(r.rows),
                }
            }
        }
        out.ok_or_else(|| internal("EXECUTE DIRECT on no node"))
    }

    /// DDL: on every datanode and on the catalog, in the global transaction.
    async fn ddl(&mut self, text: &str) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let r = self.local_exec(text, true).await?;
        self.txn()?.local_ddl = true;
        let nodes: Vec<String> = self
            .coord
            .datanode_names()
            .into_iter()
            .chain(self.coord.peer_names())
            .collect();
        for n in nodes {
            self.node_exec(&n, text).await?;
            self.mark_wrote(&n)?;
        }
        self.log_ddl(text).await?;
        Ok(r)
    }

    /// Append `sql` to every coordinator's DDL log in this transaction (a coordinator that joins
    /// later replays it: `node::copy_catalog`).
    async fn log_ddl(&mut self, sql: &str) -> Result<(), PgError> {
        let seq = self.coord.gtm.nextval(PGXC_DDL_SEQ).await?;
        let ins = format!(
            "INSERT INTO {PGXC_DDL_LOG} VALUES ({seq}, {})",
            quote_lit(sql)
        );
        self.catalog_everywhere(&ins).await
    }

    /// Count `node` as a writer of the transaction (a commit participant): DDL whose only
    /// effect there is non-transactional (CREATE SEQUENCE) must still commit there, not be
    /// rolled back as a read-only participant.
    fn mark_wrote(&mut self, node: &str) -> Result<(), PgError> {
        if let Some((_, wrote)) = self.txn()?.conns.get_mut(node) {
            *wrote = true;
        }
        Ok(())
    }

    /// Run catalog bookkeeping (`pgxc_class` changes) here and on every other coordinator.
    async fn catalog_everywhere(&mut self, sql: &str) -> Result<(), PgError> {
        self.local_run(sql, true).await?;
        for n in self.coord.peer_names() {
            self.node_exec(&n, sql).await?;
        }
        Ok(())
    }

    async fn drop_tables(
        &mut self,
        text: &str,
        names: &[ast::ObjectName],
    ) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let mut keys = Vec::new();
        for n in names {
            if let Some(rel) = route::rel_name(n) {
                if let Some(p) = self.placed(&rel).await? {
                    keys.push(p.name);
                }
            }
        }
        let r = self.ddl(text).await?;
        for k in keys {
            let q = format!(
                "DELETE FROM {PGXC_CLASS} WHERE pcrelname = '{}'",
                k.replace('\'', "''")
            );
            self.catalog_everywhere(&q).await?;
        }
        Ok(r)
    }

    async fn create_table(
        &mut self,
        text: &str,
        create: &ast::Statement,
        strategy: Option<DistributionStrategy>,
        target: Option<NodeTarget>,
    ) -> Result<QueryResult, PgError> {
        let ast::Statement::CreateTable(ct) = create else {
            return Err(unsupported("this CREATE TABLE"));
        };
        if ct.query.is_some() {
            return Err(unsupported("CREATE TABLE AS"));
        }
        let Some(rel) = route::rel_name(&ct.name) else {
            return Err(unsupported("this table name"));
        };
        self.begin_statement().await?;
        // The catalog first: it validates the definition and resolves types and the primary key.
        let r = self.local_exec(&create.to_string(), true).await?;
        self.txn()?.local_ddl = true;
        let (s2, n2) = rel.clone();
        let def = self
            .local
            .call(move |s| s.table_def(s2.as_deref(), &n2))
            .await
            .map_err(io_err)??;
        let Some(def) = def else {
            // CREATE TABLE IF NOT EXISTS of an existing table: nothing more to do.
            return Ok(r);
        };
        let key = format!("{}.{}", def.schema, def.name);
        let exists = format!(
            "SELECT 1 FROM {PGXC_CLASS} WHERE pcrelname = '{}'",
            key.replace('\'', "''")
        );
        if !self.local_exec(&exists, true).await?.rows.is_empty() {
            return Ok(r);
        }
        let columns: Vec<(String, DataType)> = def
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        let pk: Option<Vec<usize>> = def
            .indexes
            .iter()
            .find(|i| i.primary)
            .or_else(|| def.indexes.iter().find(|i| i.unique))
            .map(|i| i.columns.clone());
        let col_index = |id: &ast::Ident| -> Result<usize, PgError> {
            let n = parser::normalize_ident(id);
            columns.iter().position(|(c, _)| *c == n).ok_or_else(|| {
                PgError::new(
                    SqlState::UndefinedColumn,
                    format!("column \"{n}\" does not exist"),
                )
            })
        };
        let (kind, keycol) = match &strategy {
            None => default_distribution(&columns, pk.as_deref()),
            Some(DistributionStrategy::Hash(c)) => (LocatorType::Hash, Some(col_index(c)?)),
            Some(DistributionStrategy::Modulo(c)) => (LocatorType::Modulo, Some(col_index(c)?)),
            Some(DistributionStrategy::RoundRobin) => (LocatorType::RoundRobin, None),
            Some(DistributionStrategy::Replication) => (LocatorType::Replicated, None),
        };
        let all = self.coord.datanode_names();
        let nodes: Vec<String> = match &target {
            None => all.clone(),
            Some(NodeTarget::Nodes(v)) => {
                let mut out = Vec::new();
                for id in v {
                    let n = parser::normalize_ident(id);
                    if !all.contains(&n) {
                        return Err(PgError::new(
                            SqlState::UndefinedObject,
                            format!("PGXC Node {n}: object not defined"),
                        ));
                    }
                    out.push(n);
                }
                out
            }
            Some(NodeTarget::Group(g)) => {
                let g = parser::normalize_ident(g);
                let members = self.node_group(&g).await?.ok_or_else(|| {
                    PgError::new(
                        SqlState::UndefinedObject,
                        format!("PGXC Group {g}: group not defined"),
                    )
                })?;
                for m in &members {
                    if !all.contains(m) {
                        return Err(undefined_node(m));
                    }
                }
                members
            }
        };
        // Checked like XC (distributable key type, node list).
        let dist = Distribution::new(
            kind,
            keycol.map(|k| (k, columns[k].1.clone())),
            nodes.clone(),
        )?;
        let ins = format!(
            "INSERT INTO {PGXC_CLASS} VALUES ('{}', '{}', {}, '{}')",
            key.replace('\'', "''"),
            dist.kind.letter(),
            keycol
                .map(|k| format!("'{}'", columns[k].0.replace('\'', "''")))
                .unwrap_or_else(|| "NULL".into()),
            nodes.join(",")
        );
        self.catalog_everywhere(&ins).await?;
        // Every datanode and coordinator gets the definition (one catalog everywhere), also
        // datanodes that hold no rows of it.
        for n in all.iter().chain(self.coord.peer_names().iter()) {
            self.node_exec(n, text).await?;
        }
        self.log_ddl(&create.to_string()).await?;
        Ok(r)
    }
}

/// The expression of `SELECT <sql>`.
fn parse_expr(sql: &str) -> Option<ast::Expr> {
    match parser::parse(&format!("SELECT {sql}")).ok()?.pop()? {
        Statement::Sql(ast::Statement::Query(q)) => match *q.body {
            ast::SetExpr::Select(s) => match s.projection.into_iter().next()? {
                ast::SelectItem::UnnamedExpr(e) => Some(e),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn quote_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn undefined_node(name: &str) -> PgError {
    PgError::new(
        SqlState::UndefinedObject,
        format!("PGXC Node {name}: object not defined"),
    )
}

impl CoordSession {
    // ---- cluster catalog: pgxc_node, pgxc_group -------------------------------------------

    /// Apply `sqls` to this coordinator's catalog in a transaction of their own, commit, and
    /// make the pool use the new `pgxc_node` at once. XC's node DDL is local to the coordinator
    /// it runs on (it is run on every coordinator), and cannot run inside a transaction block.
    async fn node_catalog_change(
        &mut self,
        what: &str,
        sqls: Vec<String>,
    ) -> Result<QueryResult, PgError> {
        for sql in sqls {
            self.local_run(&sql, true).await?;
        }
        self.txn()?.local_ddl = true;
        self.commit_txn().await?;
        self.coord.reload_nodes().await?;
        Ok(QueryResult::command(what))
    }

    fn no_block(&self, what: &str) -> Result<(), PgError> {
        if self.block.is_some() {
            return Err(PgError::new(
                SqlState::ActiveSqlTransaction,
                format!("{what} cannot run inside a transaction block"),
            ));
        }
        Ok(())
    }

    /// `CREATE NODE name WITH (TYPE = 'coordinator' | 'datanode', HOST = 'h', PORT = p,
    /// PRIMARY, PREFERRED)` (XC): a new `pgxc_node` row, usable at once. Defaults: TYPE
    /// coordinator, HOST localhost, PORT 5432. A coordinator's PORT is its coordinator-protocol
    /// endpoint (`--internal`). Errors: 42710 if it exists, 25001 in a transaction block.
    async fn create_node(
        &mut self,
        name: &str,
        o: &parser::NodeOptions,
    ) -> Result<QueryResult, PgError> {
        self.no_block("CREATE NODE")?;
        let nodes = self.coord.catalog_nodes().await?;
        if nodes.iter().any(|n| n.name == name) {
            return Err(PgError::new(
                SqlState::DuplicateObject,
                format!("PGXC Node {name}: object already defined"),
            ));
        }
        let n = NodeDef {
            name: name.to_string(),
            kind: match o.node_type {
                Some(parser::NodeType::Datanode) => 'D',
                _ => 'C',
            },
            host: o.host.clone().unwrap_or_else(|| "localhost".into()),
            port: o.port.unwrap_or(5432),
            primary: o.primary.unwrap_or(false),
            preferred: o.preferred.unwrap_or(false),
        };
        let seq = nodes.len() as i32;
        for sql in [insert_node_sql(&n, seq)] {
            self.local_run(&sql, true).await?;
        }
        self.txn()?.local_ddl = true;
        self.commit_txn().await?;
        // A new datanode gets the catalog before this coordinator places anything on it.
        if n.kind == 'D' {
            if let Err(e) = self.coord.seed_datanode(&n.name, &n.addr()).await {
                tracing::warn!(node = %n.name, "cannot give the new datanode the catalog: {e}");
            }
        }
        self.coord.reload_nodes().await?;
        Ok(QueryResult::command("CREATE NODE"))
    }

    /// `ALTER NODE name WITH (...)`: change the given columns of its `pgxc_node` row; the pool
    /// reconnects to a moved node. Errors: 42704 unknown node, 25001 in a transaction block.
    async fn alter_node(
        &mut self,
        name: &str,
        o: &parser::NodeOptions,
    ) -> Result<QueryResult, PgError> {
        self.no_block("ALTER NODE")?;
        let nodes = self.coord.catalog_nodes().await?;
        if !nodes.iter().any(|n| n.name == name) {
            return Err(undefined_node(name));
        }
        let mut set = Vec::new();
        if let Some(t) = o.node_type {
            let k = if t == parser::NodeType::Datanode {
                'D'
            } else {
                'C'
            };
            set.push(format!("node_type = '{k}'"));
        }
        if let Some(h) = &o.host {
            set.push(format!("node_host = {}", quote_lit(h)));
        }
        if let Some(p) = o.port {
            set.push(format!("node_port = {p}"));
        }
        if let Some(p) = o.primary {
            set.push(format!("nodeis_primary = {p}"));
        }
        if let Some(p) = o.preferred {
            set.push(format!("nodeis_preferred = {p}"));
        }
        let sqls = if set.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "UPDATE {PGXC_NODE} SET {} WHERE node_name = {}",
                set.join(", "),
                quote_lit(name)
            )]
        };
        self.node_catalog_change("ALTER NODE", sqls).await
    }

    /// `DROP NODE [IF EXISTS] name`. Errors: 42704 unknown node (without IF EXISTS), 55000 for
    /// this coordinator itself, 2BP01 while a table is distributed on it or a group lists it,
    /// 25001 in a transaction block.
    async fn drop_node(&mut self, name: &str, if_exists: bool) -> Result<QueryResult, PgError> {
        self.no_block("DROP NODE")?;
        let nodes = self.coord.catalog_nodes().await?;
        if !nodes.iter().any(|n| n.name == name) {
            if if_exists {
                return Ok(QueryResult::command("DROP NODE"));
            }
            return Err(undefined_node(name));
        }
        if name == self.coord.name() {
            return Err(PgError::new(
                SqlState::ObjectNotInPrerequisiteState,
                format!("PGXC Node {name}: cannot drop local node"),
            ));
        }
        let pattern = quote_lit(&format!("%,{name},%"));
        let used = self
            .local_exec(
                &format!(
                    "SELECT pcrelname FROM {PGXC_CLASS} WHERE ',' || nodes || ',' LIKE {pattern} \
                     UNION ALL SELECT 'group ' || group_name FROM {PGXC_GROUP} \
                     WHERE ' ' || group_members || ' ' LIKE {}",
                    quote_lit(&format!("% {name} %"))
                ),
                true,
            )
            .await?;
        if let Some(row) = used.rows.first() {
            let what = match row.first() {
                Some(Value::Text(t)) => t.clone(),
                _ => String::new(),
            };
            return Err(PgError::new(
                SqlState::DependentObjectsStillExist,
                format!("cannot drop node {name}: {what} uses it"),
            ));
        }
        self.node_catalog_change(
            "DROP NODE",
            vec![format!(
                "DELETE FROM {PGXC_NODE} WHERE node_name = {}",
                quote_lit(name)
            )],
        )
        .await
    }

    /// `CREATE NODE GROUP name WITH (dn1, dn2, ...)`: a `pgxc_group` row (for `TO GROUP`).
    /// Errors: 42710 if it exists, 42704 for a member that is not a datanode, 25001 in a block.
    async fn create_node_group(
        &mut self,
        name: &str,
        members: &[String],
    ) -> Result<QueryResult, PgError> {
        self.no_block("CREATE NODE GROUP")?;
        let nodes = self.coord.catalog_nodes().await?;
        for m in members {
            if !nodes.iter().any(|n| n.name == *m && n.kind == 'D') {
                return Err(undefined_node(m));
            }
        }
        if self.node_group(name).await?.is_some() {
            return Err(PgError::new(
                SqlState::DuplicateObject,
                format!("PGXC Group {name}: group already defined"),
            ));
        }
        self.node_catalog_change(
            "CREATE NODE GROUP",
            vec![format!(
                "INSERT INTO {PGXC_GROUP} VALUES ({}, {})",
                quote_lit(name),
                quote_lit(&members.join(" "))
            )],
        )
        .await
    }

    /// `DROP NODE GROUP [IF EXISTS] name`. Errors: 42704 unknown group, 25001 in a block.
    async fn drop_node_group(
        &mut self,
        name: &str,
        if_exists: bool,
    ) -> Result<QueryResult, PgError> {
        self.no_block("DROP NODE GROUP")?;
        if self.node_group(name).await?.is_none() {
            if if_exists {
                return Ok(QueryResult::command("DROP NODE GROUP"));
            }
            return Err(PgError::new(
                SqlState::UndefinedObject,
                format!("PGXC Group {name}: group not defined"),
            ));
        }
        self.node_catalog_change(
            "DROP NODE GROUP",
            vec![format!(
                "DELETE FROM {PGXC_GROUP} WHERE group_name = {}",
                quote_lit(name)
            )],
        )
        .await
    }

    /// `q` with XC's cluster catalog made concrete, or `None` when it names none of it:
    /// `pgxc_node` / `pgxc_group` read this coordinator's catalog; `pg_prepared_xacts` lists the
    /// cluster's prepared transactions from the GTM's record (`transaction` is the GXID as
    /// bigint; `prepared` and `owner` are not recorded: NULL); `pgxc_node_str()` is this
    /// coordinator's name, `pgxc_pool_check()` whether the pool's nodes match `pgxc_node`,
    /// `pgxc_pool_reload()` reloads the pool's nodes from `pgxc_node` (true).
    async fn cluster_catalog_query(
        &mut self,
        text: &str,
        q: &ast::Query,
    ) -> Result<Option<ast::Query>, PgError> {
        use std::ops::ControlFlow;
        // Cheap test first: most queries name none of it.
        if !text
            .as_bytes()
            .windows(2)
            .any(|w| w.eq_ignore_ascii_case(b"pg"))
        {
            return Ok(None);
        }
        let text = text.to_ascii_lowercase();
        let words = [
            "pgxc_class",
            "pgxc_node",
            "pgxc_group",
            "pg_prepared_xacts",
            "pgxc_pool_check",
            "pgxc_pool_reload",
        ];
        if !words.iter().any(|w| text.contains(w)) {
            return Ok(None);
        }
        let pool_check = if text.contains("pgxc_pool_check") {
            Some(self.coord.pool_check().await?)
        } else {
            None
        };
        let pool_reload = if text.contains("pgxc_pool_reload") {
            self.coord.reload_nodes().await?;
            Some(true)
        } else {
            None
        };
        let prepared = if text.contains("pg_prepared_xacts") {
            Some(self.coord.gtm.list_prepared().await?)
        } else {
            None
        };
        let node = self.coord.name().to_string();
        let lit = |f: &ast::Function| -> Option<(String, ast::Expr)> {
            let (_, name) = route::rel_name(&f.name)?;
            let sql = match name.as_str() {
                "pgxc_node_str" => format!("{}::text", quote_lit(&node)),
                "pgxc_pool_check" => pool_check?.to_string(),
                "pgxc_pool_reload" => pool_reload?.to_string(),
                _ => return None,
            };
            Some((name, parse_expr(&sql)?))
        };
        let mut q = q.clone();
        // A bare call in the select list keeps the function's name as its column name.
        if let ast::SetExpr::Select(sel) = q.body.as_mut() {
            for item in &mut sel.projection {
                if let ast::SelectItem::UnnamedExpr(ast::Expr::Function(f)) = item {
                    if let Some((name, expr)) = lit(f) {
                        *item = ast::SelectItem::ExprWithAlias {
                            expr,
                            alias: ast::Ident::new(name),
                        };
                    }
                }
            }
        }
        let _ = ast::visit_expressions_mut(&mut q, |e| {
            if let ast::Expr::Function(f) = e {
                if let Some((_, x)) = lit(f) {
                    *e = x;
                }
            }
            ControlFlow::<()>::Continue(())
        });
        let _ = ast::visit_relations_mut(&mut q, |n| {
            if let Some((schema, name)) = route::rel_name(n) {
                let catalog = schema.is_none() || schema.as_deref() == Some("pg_catalog");
                match name.as_str() {
                    "pgxc_node" | "pgxc_group" | "pgxc_class" if catalog => {
                        *n = ast::ObjectName::from(vec![
                            ast::Ident::new("pgxc"),
                            ast::Ident::new(name),
                        ]);
                    }
                    "pg_prepared_xacts" if catalog => {
                        *n = ast::ObjectName::from(vec![ast::Ident::new(name)]);
                    }
                    _ => {}
                }
            }
            ControlFlow::<()>::Continue(())
        });
        if let Some(list) = prepared {
            let row = |gxid: String, gid: String| {
                format!(
                    "SELECT {gxid}::bigint AS transaction, {gid}::text AS gid, \
                     NULL::timestamptz AS prepared, NULL::text AS owner, \
                     current_database() AS database"
                )
            };
            let body = if list.is_empty() {
                format!("{} WHERE false", row("NULL".into(), "NULL".into()))
            } else {
                list.iter()
                    .map(|p| row(p.gxid.0.to_string(), quote_lit(&p.gid)))
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ")
            };
            let sql = format!("WITH pg_prepared_xacts AS ({body}) SELECT 1");
            let cte = match parser::parse(&sql)?.pop() {
                Some(Statement::Sql(ast::Statement::Query(w))) => {
                    w.with.and_then(|w| w.cte_tables.into_iter().next())
                }
                _ => None,
            }
            .ok_or_else(|| internal("cannot build pg_prepared_xacts"))?;
            match &mut q.with {
                Some(w) => w.cte_tables.insert(0, cte),
                None => {
                    let Some(Statement::Sql(ast::Statement::Query(w))) = parser::parse(&sql)?.pop()
                    else {
                        return Err(internal("cannot build pg_prepared_xacts"));
                    };
                    q.with = w.with;
                }
            }
        }
        Ok(Some(q))
    }

    /// The members of node group `name`, as this transaction sees `pgxc_group`.
    async fn node_group(&mut self, name: &str) -> Result<Option<Vec<String>>, PgError> {
        let r = self
            .local_exec(
                &format!(
                    "SELECT group_members FROM {PGXC_GROUP} WHERE group_name = {}",
                    quote_lit(name)
                ),
                true,
            )
            .await?;
        Ok(r.rows.first().map(|row| match row.first() {
            Some(Value::Text(t)) => t.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        }))
    }
}

/// The nodes an INSERT's rows go to, as far as the statement text says: for `VALUES` whose
/// distribution-key entries are all literals, the nodes those keys hash to; otherwise every
/// node of the table (the rows are placed once complete).
fn insert_nodes(p: &Placed, ins: &ast::Insert) -> Vec<String> {
    let all = p.dist.nodes.clone();
    let Some((k, ty)) = &p.dist.key else {
        return all;
    };
    let Some(src) = &ins.source else {
        return all;
    };
    let ast::SetExpr::Values(v) = src.body.as_ref() else {
        return all;
    };
    let keyname = &p.columns[*k].0;
    let pos = if ins.columns.is_empty() {
        Some(*k)
    } else {
        ins.columns
            .iter()
            .position(|c| route::rel_name(c).is_some_and(|(_, n)| n == *keyname))
    };
    let Some(pos) = pos else {
        // The key is not given: its default decides.
        return all;
    };
    let mut idx = std::collections::BTreeSet::new();
    for row in &v.rows {
        let lit = match row.get(pos) {
            Some(ast::Expr::Value(x)) => match &x.value {
                ast::Value::Number(n, _) => n.clone(),
                ast::Value::SingleQuotedString(t) => t.clone(),
                _ => return all,
            },
            _ => return all,
        };
        let Ok(val) = pgxc_sql::types::text::parse_text(ty, &lit, &TimeZone::utc()) else {
            return all;
        };
        match p.dist.node_for_key(&val) {
            Ok(Some(i)) => {
                idx.insert(i);
            }
            _ => return all,
        }
    }
    if idx.is_empty() {
        return all;
    }
    idx.into_iter().map(|i| p.dist.nodes[i].clone()).collect()
}

/// The top-level items of an EXPLAIN target list (commas inside parentheses or quotes kept).
fn split_top(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut cur = String::new();
    for c in list.chars() {
        match c {
            '\'' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The output name PostgreSQL gives an unnamed select-list item that is a column reference, or a
/// cast or parenthesis around one (its `FigureColname`); `None` for anything else (those names do
/// not depend on column names).
fn column_output_name(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Identifier(id) => Some(parser::normalize_ident(id)),
        ast::Expr::CompoundIdentifier(ids) => ids.last().map(parser::normalize_ident),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => column_output_name(expr),
        _ => None,
    }
}

/// Column names and types, in order.
type Columns = Vec<(String, DataType)>;

/// One FROM-list occurrence for [`joined_rewrite`]: the names it is referred to by, its columns.
type JoinTable = (Vec<String>, Columns);

/// `CREATE TABLE` of [`JOINED_TABLE`] with a [`JoinedRemote`]'s columns.
fn joined_ddl(j: &JoinedRemote) -> String {
    let cols: Vec<String> = j
        .columns
        .iter()
        .map(|(n, t)| format!("\"{n}\" {t}"))
        .collect();
    format!("CREATE TABLE {JOINED_TABLE} ({})", cols.join(", "))
}

/// Split a SELECT over a join that runs whole on the datanodes into the remote join and the
/// local rest ([`SelectRoute::Joined`]). `tables` are the FROM list's occurrences in order: the
/// names each is referred to by, and its columns. Every column reference outside FROM and WHERE
/// becomes a column `cN` of the remote query's result; FROM becomes [`JOINED_TABLE`] and WHERE
/// (applied remotely) goes. `None` when the statement is not a plain SELECT of that kind:
/// wildcards, subqueries, CTEs, locking clauses, a reference that names no single column, or an
/// output name that is also a column name (ORDER BY would resolve it differently).
fn joined_rewrite(q: &ast::Query, tables: &[JoinTable]) -> Option<(String, String, Columns)> {
    use std::ops::ControlFlow;
    if q.with.is_some() || !q.locks.is_empty() {
        return None;
    }
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let mut outputs = Vec::new();
    for item in &sel.projection {
        match item {
            ast::SelectItem::UnnamedExpr(_) => {}
            ast::SelectItem::ExprWithAlias { alias, .. } => {
                outputs.push(parser::normalize_ident(alias))
            }
            _ => return None,
        }
    }
    if tables
        .iter()
        .any(|(_, cols)| cols.iter().any(|(c, _)| outputs.contains(c)))
    {
        return None;
    }
    if route::relation_mentions(q) != tables.len() {
        return None;
    }
    let from_sql: Vec<String> = sel.from.iter().map(|f| f.to_string()).collect();
    let where_sql = sel.selection.as_ref().map(|w| w.to_string());
    let mut local = q.clone();
    let ast::SetExpr::Select(lsel) = local.body.as_mut() else {
        return None;
    };
    lsel.selection = None;
    let mut from = sel.from[0].clone();
    from.joins.clear();
    if let ast::TableFactor::Table { name, alias, .. } = &mut from.relation {
        *name = ast::ObjectName::from(vec![ast::Ident::new(JOINED_TABLE)]);
        *alias = None;
    } else {
        return None;
    }
    lsel.from = vec![from];
    // Keep PostgreSQL's output names: an unnamed column reference (or a cast of one) is named
    // after the column, which the rewrite below renames.
    for item in lsel.projection.iter_mut() {
        if let ast::SelectItem::UnnamedExpr(e) = item {
            if let Some(name) = column_output_name(e) {
                *item = ast::SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: ast::Ident::with_quote('"', name),
                };
            }
        }
    }
    // (occurrence, column) of every reference, in order of first use.
    let mut used: Vec<(usize, usize)> = Vec::new();
    let mut ok = true;
    let _ = ast::visit_expressions_mut(&mut local, |e| {
        let r = match e {
            ast::Expr::Identifier(id) => Some((None, parser::normalize_ident(id))),
            ast::Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [t, c] | [_, t, c] => {
                    Some((Some(parser::normalize_ident(t)), parser::normalize_ident(c)))
                }
                _ => {
                    ok = false;
                    None
                }
            },
            ast::Expr::Subquery(_)
            | ast::Expr::Exists { .. }
            | ast::Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            } => {
                ok = false;
                None
            }
            _ => None,
        };
        if let Some((qual, col)) = r {
            let mut hit = None;
            for (i, (names, cols)) in tables.iter().enumerate() {
                if qual.as_ref().is_some_and(|q| !names.contains(q)) {
                    continue;
                }
                if let Some(ci) = cols.iter().position(|(n, _)| *n == col) {
                    if hit.is_some() {
                        ok = false; // ambiguous
                    }
                    hit = Some((i, ci));
                }
            }
            match hit {
                Some(h) => {
                    let k = match used.iter().position(|u| *u == h) {
                        Some(k) => k,
                        None => {
                            used.push(h);
                            used.len() - 1
                        }
                    };
                    *e = ast::Expr::Identifier(ast::Ident::new(format!("pgxc_c{k}")));
                }
                // A qualified name that is no column here; a bare one may be an output name.
                None if qual.is_some() => ok = false,
                None => {}
            }
        }
        if ok {
            ControlFlow::<()>::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    if !ok {
        return None;
    }
    let mut list: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    for (k, (i, ci)) in used.iter().enumerate() {
        let (names, cols) = &tables[*i];
        let (c, ty) = &cols[*ci];
        list.push(format!(
            "\"{}\".\"{}\" AS pgxc_c{k}",
            names[0].replace('"', "\"\""),
            c.replace('"', "\"\"")
        ));
        columns.push((format!("pgxc_c{k}"), ty.clone()));
    }
    if list.is_empty() {
        list.push("1 AS pgxc_c0".into());
        columns.push(("pgxc_c0".into(), DataType::Int4));
    }
    let mut remote = format!("SELECT {} FROM {}", list.join(", "), from_sql.join(", "));
    if let Some(w) = where_sql {
        remote.push_str(&format!(" WHERE {w}"));
    }
    Some((remote, local.to_string(), columns))
}

/// The commit participants of `txn`: its datanode connections and the catalog session.
fn parts_of<'a>(txn: &'a mut GlobalTxn, local: &'a SessionThread, name: String) -> Vec<Part<'a>> {
    let mut parts: Vec<Part<'a>> = txn
        .conns
        .values_mut()
        .map(|(conn, wrote)| Part::Dn {
            conn,
            wrote: *wrote,
        })
        .collect();
    if txn.local_begun {
        parts.push(Part::Local {
            name,
            thread: local,
            wrote: txn.local_ddl,
        });
    }
    parts
}

/// The text of a `COPY ... FROM STDIN` statement equivalent to `stmt` (for the datanodes).
fn copy_text(stmt: &parser::Copy, name: &ast::ObjectName, columns: &[ast::Ident]) -> String {
    let cols = if columns.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            columns
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let opts: Vec<String> = stmt
        .options
        .iter()
        .filter(|o| o.name != "freeze")
        .map(|o| match &o.value {
            None => o.name.clone(),
            Some(parser::OptionValue::Str(v)) => format!("{} '{}'", o.name, v.replace('\'', "''")),
            Some(parser::OptionValue::Number(v)) | Some(parser::OptionValue::Word(v)) => {
                format!("{} {v}", o.name)
            }
            Some(parser::OptionValue::Star) => format!("{} *", o.name),
            Some(parser::OptionValue::List(l)) => format!(
                "{} ({})",
                o.name,
                l.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect();
    let with = if opts.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", opts.join(", "))
    };
    format!("COPY {name}{cols} FROM STDIN{with}")
}

/// The final step of a plain aggregate query: combine the per-node one-row results column by
/// column (count of counts, sum of sums, min of mins, max of maxes).
fn combine_aggregates(
    parts: Vec<DnResult>,
    comb: &[route::Combine],
) -> Result<QueryResult, PgError> {
    use pgxc_sql::types::cast::compare;
    use route::Combine;
    let mut it = parts.into_iter();
    let Some(first) = it.next() else {
        return Err(internal("no datanode answered"));
    };
    let mut out = to_qr(first);
    let Some(mut acc) = out.rows.pop() else {
        return Err(internal("an aggregate returned no row"));
    };
    for r in it {
        let Some(row) = r.rows.into_iter().next() else {
            return Err(internal("an aggregate returned no row"));
        };
        for (k, (a, b)) in acc.iter_mut().zip(row).enumerate() {
            let Some(c) = comb.get(k) else {
                return Err(internal("result wider than the query"));
            };
            let next = match (c, &*a, b) {
                (_, _, Value::Null) => continue,
                (_, Value::Null, b) => b,
                (Combine::Count | Combine::Sum, Value::Int8(x), Value::Int8(y)) => {
                    Value::Int8(x.checked_add(y).ok_or_else(|| {
                        PgError::new(SqlState::NumericValueOutOfRange, "bigint out of range")
                    })?)
                }
                (Combine::Sum, Value::Numeric(x), Value::Numeric(y)) => Value::Numeric(x.add(&y)?),
                (Combine::Sum, Value::Float8(x), Value::Float8(y)) => Value::Float8(x + y),
                (Combine::Sum, Value::Float4(x), Value::Float4(y)) => Value::Float4(x + y),
                (Combine::Sum, Value::Interval(x), Value::Interval(y)) => {
                    Value::Interval(pgxc_sql::types::Interval {
                        months: x.months.saturating_add(y.months),
                        days: x.days.saturating_add(y.days),
                        micros: x.micros.saturating_add(y.micros),
                    })
                }
                (Combine::Min, x, y) => {
                    if compare(&y, x) == Some(std::cmp::Ordering::Less) {
                        y
                    } else {
                        continue;
                    }
                }
                (Combine::Max, x, y) => {
                    if compare(&y, x) == Some(std::cmp::Ordering::Greater) {
                        y
                    } else {
                        continue;
                    }
                }
                (_, x, y) => {
                    return Err(internal(format!("cannot combine {x:?} and {y:?}")));
                }
            };
            *a = next;
        }
    }
    out.rows.push(acc);
    Ok(out)
}

// Projection pushdown under the fallback (docs/cluster.md, "Projection pushdown").
impl CoordSession {
    /// Narrow each of `placed`'s columns to those `q` reads (`route::read_columns`), so the
    /// fallback's remote scans fetch only those ([`CoordSession::fetch_sql`]) and load them into the
    /// coordinator's copy by name (its other columns stay NULL: nothing reads them). Columns the
    /// copy needs a value in are kept too: NOT NULL ones and those with a DEFAULT (an INSERT
    /// naming fewer columns would evaluate it, e.g. advance a sequence). A table with CHECK
    /// constraints, generated or identity-always columns keeps every column. At least one column
    /// stays, so every fetched row is still a row.
    async fn narrow_fetch(&mut self, q: &ast::Query, placed: &mut [Placed]) -> Result<(), PgError> {
        let tables: Vec<(String, Vec<String>)> = placed
            .iter()
            .map(|p| {
                let bare = p.name.rsplit('.').next().unwrap_or(&p.name).to_string();
                (bare, p.columns.iter().map(|(n, _)| n.clone()).collect())
            })
            .collect();
        let reads = route::read_columns(q, &tables);
        for (p, mask) in placed.iter_mut().zip(reads) {
            let Some(mut mask) = mask else {
                continue;
            };
            let Some((schema, name)) = p.name.split_once('.') else {
                continue;
            };
            let rel = (Some(schema.to_string()), name.to_string());
            let Some(def) = self.lookup_def(&rel).await? else {
                continue;
            };
            if !def.checks.is_empty()
                || def.columns.len() != p.columns.len()
                || def
                    .columns
                    .iter()
                    .any(|c| c.generated.is_some() || c.identity_always)
            {
                continue;
            }
            for (m, c) in mask.iter_mut().zip(&def.columns) {
                *m |= c.not_null || c.default.is_some();
            }
            if !mask.iter().any(|m| *m) {
                if let Some(m) = mask.first_mut() {
                    *m = true;
                }
            }
            p.columns = p
                .columns
                .iter()
                .zip(&mask)
                .filter(|(_, m)| **m)
                .map(|(c, _)| c.clone())
                .collect();
        }
        Ok(())
    }
}

// The direct load of fetched rows into the catalog engine (docs/ARCHITECTURE.md, "Loading rows").
impl CoordSession {
    /// Insert `rows` (typed values, in the order of `columns`: quoted SQL identifiers, empty = all
    /// columns) into the catalog session's table `table` (as SQL names it) inside the global
    /// transaction, through `Session::insert_values`: no SQL text is built or parsed. The sibling
    /// of [`CoordSession::local_run`] for the fallbacks' fetched rows. Returns the rows inserted.
    /// Errors: those of `Session::insert_values` (the catalog block fails with them).
    async fn local_load(
        &mut self,
        table: &str,
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, PgError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if !self.txn.as_ref().is_some_and(|t| t.local_begun) {
            // Opens the catalog session's part of the global transaction (BEGIN, savepoints).
            self.local_run("", true).await?;
        }
        let txn = self.txn()?;
        let directed = Directed {
            gxid: txn.gxid,
            snapshot: txn.snapshot.clone(),
        };
        let table = table.to_string();
        self.local
            .call(move |s| {
                s.direct(Some(directed));
                s.insert_values(&table, &columns, rows)
            })
            .await
            .map_err(io_err)?
    }
}

/// `name` as a quoted SQL identifier (`"a""b"`).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `schema.name` key (as `Placed::name` holds it) as a quoted qualified SQL name.
fn quote_qualified(key: &str) -> String {
    match key.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(key),
    }
}
