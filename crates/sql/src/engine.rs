//! The standalone SQL engine: one MVCC [`Store`], a durable GXID source, and [`Session`]s with
//! PostgreSQL's simple-query and transaction-block semantics.
//!
//! - GXIDs come from a [`LocalGtm`] that never reissues a GXID across restarts: the engine
//!   reserves blocks of [`GXID_BLOCK`] GXIDs durably before handing them out
//!   ([`Store::reserve_local_xids`], the GTM's block reservation done locally).
//! - Snapshots come from the same `LocalGtm` (READ COMMITTED: one per statement; REPEATABLE READ
//!   and SERIALIZABLE: one per transaction, as PostgreSQL; SERIALIZABLE runs as snapshot
//!   isolation, as Postgres-XC did).
//! - [`Session::execute`] runs a query string like PostgreSQL's simple-query protocol: statements
//!   in order, stopping at the first error; outside a block each statement is its own
//!   transaction, inside a failed block everything but ROLLBACK/COMMIT answers 25P02.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pgxc_common::{PgError, Snapshot, SqlState};
use pgxc_storage::mvcc::{Isolation, LocalGtm, RelId, Savepoint, Store, StoreConfig, Txn};
use pgxc_storage::Disk;
use sqlparser::ast::Ident;

use crate::catalog::SYSTEM_TABLE;
pub use crate::exec::copy::CopyOut;
use crate::exec::Exec;
use crate::expr::SequenceSource;
use crate::parser::{
    self, IsolationLevel, ResetTarget, Set, SetValue, ShowTarget, Statement, TransactionMode,
    TransactionStmt,
};
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Value};

/// How many GXIDs one durable reservation covers.
pub const GXID_BLOCK: u64 = 1000;

/// The result of one statement: its columns (empty for commands without a result set), rows and
/// PostgreSQL's command tag (`SELECT 3`, `INSERT 0 2`, `CREATE TABLE`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// Column names and types.
    pub columns: Vec<(String, DataType)>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
    /// The command tag.
    pub tag: String,
}

impl QueryResult {
    /// A result without rows.
    pub fn command(tag: impl Into<String>) -> QueryResult {
        QueryResult {
            columns: Vec::new(),
            rows: Vec::new(),
            tag: tag.into(),
        }
    }
}

struct GtmState {
    gtm: LocalGtm,
    /// First GXID not covered by the durable reservation.
    limit: u64,
}

/// A local sequence's state.
#[derive(Clone, Debug)]
pub(crate) struct SeqState {
    pub(crate) last: i64,
    pub(crate) is_called: bool,
    pub(crate) increment: i64,
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) cycle: bool,
}

/// A standalone SQL engine over one store. Cheap to share (`Arc`).
///
/// Sequences are local to the engine and, like PostgreSQL's, not transactional; in this first
/// slice they live in memory only (they restart after a restart), until sequences move to the
/// GTM's sequence service.
pub struct Engine {
    store: Store,
    gtm: Mutex<GtmState>,
    rt: tokio::runtime::Runtime,
    catalog_rel: RelId,
    seqs: Mutex<HashMap<String, SeqState>>,
}

/// One session's view of the engine's sequences (`currval` is per session).
pub(crate) struct SessionSeqs {
    engine: Arc<Engine>,
    last: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for SessionSeqs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSeqs")
    }
}

fn no_seq(name: &str) -> PgError {
    PgError::new(
        SqlState::UndefinedTable,
        format!(
            "relation \"{}\" does not exist",
            name.trim_start_matches("public.")
        ),
    )
}

impl SequenceSource for SessionSeqs {
    fn nextval(&self, name: &str) -> Result<i64, PgError> {
        let v = {
            let mut seqs = self.engine.seqs();
            let s = seqs.get_mut(name).ok_or_else(|| no_seq(name))?;
            let v = if s.is_called {
                match s.last.checked_add(s.increment) {
                    Some(v) if v >= s.min && v <= s.max => v,
                    _ if s.cycle => {
                        if s.increment > 0 {
                            s.min
                        } else {
                            s.max
                        }
                    }
                    _ => {
                        return Err(PgError::new(
                            SqlState::SequenceGeneratorLimitExceeded,
                            format!(
                                "nextval: reached {} value of sequence \"{}\"",
                                if s.increment > 0 {
                                    "maximum"
                                } else {
                                    "minimum"
                                },
                                name.trim_start_matches("public.")
                            ),
                        ))
                    }
                }
            } else {
                s.last
            };
            s.last = v;
            s.is_called = true;
            v
        };
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), v);
        Ok(v)
    }

    fn currval(&self, name: &str) -> Result<i64, PgError> {
        if !self.engine.seqs().contains_key(name) {
            return Err(no_seq(name));
        }
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
            .ok_or_else(|| {
                PgError::new(
                    SqlState::ObjectNotInPrerequisiteState,
                    format!(
                        "currval of sequence \"{}\" is not yet defined in this session",
                        name.trim_start_matches("public.")
                    ),
                )
            })
    }

    fn setval(&self, name: &str, value: i64, is_called: bool) -> Result<i64, PgError> {
        let mut seqs = self.engine.seqs();
        let s = seqs.get_mut(name).ok_or_else(|| no_seq(name))?;
        if value < s.min || value > s.max {
            return Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                format!("setval: value {value} is out of bounds for sequence"),
            ));
        }
        s.last = value;
        s.is_called = is_called;
        Ok(value)
    }
}

fn internal(msg: impl Into<String>) -> PgError {
    PgError::new(SqlState::InternalError, msg)
}

impl Engine {
    /// Open (or create) the engine's store `name` on `disk`, reserve the next block of GXIDs and
    /// bootstrap the SQL catalog on first use.
    ///
    /// Errors: the store's open errors (58030, XX001); XX000 if the runtime cannot start.
    pub fn open(disk: &Disk, name: &str) -> Result<Arc<Engine>, PgError> {
        let store = Store::open(disk, name, StoreConfig::default())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| internal(format!("cannot start runtime: {e}")))?;
        let start = store.reserve_local_xids(GXID_BLOCK)?;
        let mut catalog_rel = None;
        for def in store.relations() {
            if def.name == SYSTEM_TABLE {
                catalog_rel = Some(def.id);
            }
        }
        let gtm = GtmState {
            gtm: LocalGtm::starting_at(start),
            limit: start.0 + GXID_BLOCK,
        };
        let mut engine = Engine {
            store,
            gtm: Mutex::new(gtm),
            rt,
            catalog_rel: RelId(0),
            seqs: Mutex::new(HashMap::new()),
        };
        match catalog_rel {
            Some(r) => engine.catalog_rel = r,
            None => {
                let mut txn = engine.begin(Isolation::ReadCommitted)?;
                let r = engine.block_on(txn.create_table(SYSTEM_TABLE))?;
                engine.finish(txn, true)?;
                engine.catalog_rel = r;
            }
        }
        Ok(Arc::new(engine))
    }

    /// A new session with PostgreSQL's default settings (TimeZone UTC, DateStyle ISO, MDY).
    pub fn session(self: &Arc<Engine>) -> Session {
        Session {
            engine: Arc::clone(self),
            state: TxState::Idle,
            gucs: BTreeMap::new(),
            lock_timeout: None,
            seqs: Arc::new(SessionSeqs {
                engine: Arc::clone(self),
                last: Mutex::new(HashMap::new()),
            }),
            prepared: HashMap::new(),
            cursors: HashMap::new(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn catalog_rel(&self) -> RelId {
        self.catalog_rel
    }

    /// Run a storage future to completion on the engine's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub(crate) fn seqs(&self) -> MutexGuard<'_, HashMap<String, SeqState>> {
        self.seqs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gtm(&self) -> MutexGuard<'_, GtmState> {
        self.gtm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh snapshot.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.gtm().gtm.snapshot()
    }

    /// Begin a transaction with a fresh GXID (reserving a new block durably when needed).
    pub(crate) fn begin(&self, iso: Isolation) -> Result<Txn, PgError> {
        let mut g = self.gtm();
        let mut x = g.gtm.begin();
        if x.0 >= g.limit {
            // The block is used up: reserve the next one durably before handing out more
            // (it normally starts at `x`; the running set stays, for snapshots).
            let start = match self.store.reserve_local_xids(GXID_BLOCK) {
                Ok(s) => s,
                Err(e) => {
                    g.gtm.end(x);
                    return Err(e);
                }
            };
            if start > x {
                g.gtm.end(x);
                g.gtm.advance_to(start);
                x = g.gtm.begin();
            }
            g.limit = start.0 + GXID_BLOCK;
        }
        let snap = g.gtm.snapshot();
        drop(g);
        match self.store.begin(x, iso, snap) {
            Ok(t) => Ok(t),
            Err(e) => {
                self.gtm().gtm.end(x);
                Err(e)
            }
        }
    }

    /// Commit (`commit = true`) or roll back `txn` and tell the GTM it ended.
    pub(crate) fn finish(&self, txn: Txn, commit: bool) -> Result<(), PgError> {
        let x = txn.xid();
        let r = if commit {
            self.block_on(txn.commit()).map(|_| ())
        } else {
            txn.rollback();
            Ok(())
        };
        self.gtm().gtm.end(x);
        r
    }
}

struct Block {
    txn: Txn,
    /// Statements run so far (SET TRANSACTION must come first).
    statements: u32,
    /// Rows whose deferred FOREIGN KEYs are checked at COMMIT.
    deferred: Vec<(String, String, Vec<Value>)>,
    /// Start time (`now()`).
    start: i64,
    iso: Isolation,
    read_only: bool,
    failed: bool,
    /// Open savepoints, oldest first: name, store savepoint, deferred-check count at that point.
    savepoints: Vec<(String, Savepoint, usize)>,
}

// One per session and mostly `InBlock`: boxing the block would buy nothing.
#[allow(clippy::large_enum_variant)]
enum TxState {
    Idle,
    InBlock(Block),
}

/// One client session: the transaction state machine and settings.
pub struct Session {
    engine: Arc<Engine>,
    state: TxState,
    gucs: BTreeMap<String, String>,
    lock_timeout: Option<Duration>,
    seqs: Arc<SessionSeqs>,
    prepared: HashMap<String, (Vec<DataType>, Statement)>,
    cursors: HashMap<String, Cursor>,
}

/// An open cursor: its materialized result and position (0 = before the first row, `len + 1`
/// = after the last), as PostgreSQL's portal positions.
struct Cursor {
    columns: Vec<(String, DataType)>,
    rows: Vec<Vec<Value>>,
    pos: i64,
    /// `NO SCROLL`: backward movement fails with 55000.
    no_scroll: bool,
    /// `WITH HOLD`: survives the end of its transaction.
    hold: bool,
}

fn default_guc(name: &str) -> Option<&'static str> {
    Some(match name {
        "timezone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "extra_float_digits" => "1",
        "search_path" => "\"$user\", public",
        "client_encoding" => "UTF8",
        "server_encoding" => "UTF8",
        "standard_conforming_strings" => "on",
        "statement_timeout" => "0",
        "lock_timeout" => "0",
        "idle_in_transaction_session_timeout" => "0",
        "application_name" => "",
        "default_transaction_isolation" => "read committed",
        "default_transaction_read_only" => "off",
        "transaction_read_only" => "off",
        "work_mem" => "4MB",
        "deadlock_timeout" => "1s",
        "max_connections" => "100",
        "server_version" => "15.0",
        "server_version_num" => "150000",
        "enable_fast_query_shipping" => "on",
        "enable_seqscan" => "on",
        "enable_indexscan" => "on",
        "enable_hashjoin" => "on",
        "enable_mergejoin" => "on",
        "enable_nestloop" => "on",
        "enable_sort" => "on",
        "integer_datetimes" => "on",
        "lc_collate" => "C",
        "lc_ctype" => "C",
        "client_min_messages" => "notice",
        "bytea_output" => "hex",
        "default_transaction_deferrable" => "off",
        _ => return None,
    })
}

/// Wall-clock time as a PostgreSQL timestamp (microseconds since 2000-01-01 UTC).
fn clock_now() -> i64 {
    const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(0) - PG_EPOCH_UNIX_SECS * 1_000_000
}

fn iso_name(iso: Isolation, serializable: bool) -> &'static str {
    match (iso, serializable) {
        (Isolation::ReadCommitted, _) => "read committed",
        (_, true) => "serializable",
        _ => "repeatable read",
    }
}

fn is_write(stmt: &Statement) -> bool {
    use sqlparser::ast::Statement as S;
    match stmt {
        Statement::Sql(s) => matches!(
            s,
            S::Insert(_)
                | S::Update(_)
                | S::Delete(_)
                | S::CreateTable(_)
                | S::CreateIndex(_)
                | S::Drop { .. }
                | S::Truncate(_)
                | S::AlterTable(_)
                | S::CreateView(_)
                | S::CreateSequence { .. }
                | S::CreateSchema { .. }
        ),
        Statement::CreateTable { .. } => true,
        _ => false,
    }
}

impl Session {
    /// Limit lock waits (PostgreSQL's `lock_timeout`; `None` = wait forever). Test harnesses that
    /// run sessions on one thread set this so a blocked statement fails with 55P03 instead of
    /// hanging.
    pub fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.lock_timeout = timeout;
    }

    /// Whether the session is inside a transaction block.
    pub fn in_transaction(&self) -> bool {
        matches!(self.state, TxState::InBlock(_))
    }

    fn guc(&self, name: &str) -> Option<String> {
        self.gucs
            .get(name)
            .cloned()
            .or_else(|| default_guc(name).map(str::to_string))
    }

    /// The session time zone.
    pub fn time_zone(&self) -> TimeZone {
        self.guc("timezone")
            .and_then(|s| TimeZone::from_setting(&s).ok())
            .unwrap_or_default()
    }

    /// Run `sql` (one or more statements) with simple-query semantics: statements in order, each
    /// result in order; the first error stops the rest and is returned (the results before it are
    /// dropped, like a client that only sees the ErrorResponse).
    ///
    /// Errors: 42601 for syntax errors (nothing runs), any statement's error, 25P02 in a failed
    /// transaction block.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        let stmts = match parser::parse(sql) {
            Ok(s) => s,
            Err(e) => {
                self.fail_block();
                return Err(e);
            }
        };
        let mut out = Vec::new();
        for s in stmts {
            out.push(self.execute_one(s)?);
        }
        Ok(out)
    }

    /// Whether the session is inside a failed transaction block (only ROLLBACK/COMMIT accepted).
    pub fn in_failed_transaction(&self) -> bool {
        matches!(&self.state, TxState::InBlock(b) if b.failed)
    }

    /// Mark the current transaction block failed (an error outside `execute`, e.g. in COPY).
    pub fn fail_transaction_block(&mut self) {
        self.fail_block();
    }

    fn fail_block(&mut self) {
        if let TxState::InBlock(b) = &mut self.state {
            b.failed = true;
        }
    }

    fn execute_one(&mut self, stmt: Statement) -> Result<QueryResult, PgError> {
        if let Statement::Transaction(t) = &stmt {
            return self.transaction(t.clone());
        }
        if let TxState::InBlock(b) = &self.state {
            if b.failed {
                return Err(PgError::new(
                    SqlState::InFailedSqlTransaction,
                    "current transaction is aborted, commands ignored until end of transaction block",
                ));
            }
        }
        match &stmt {
            Statement::Set(s) => return self.set(s.clone()),
            Statement::Show(t) => return self.show(t),
            Statement::Reset(t) => {
                match t {
                    ResetTarget::All => self.gucs.clear(),
                    ResetTarget::Variable(v) => {
                        self.gucs.remove(&v.to_ascii_lowercase());
                    }
                }
                return Ok(QueryResult::command("RESET"));
            }
            Statement::Move { name, direction } => {
                let r = self.fetch(&parser::normalize_ident(name), direction);
                let r = r.map(|q| QueryResult::command(q.tag.replacen("FETCH", "MOVE", 1)));
                if r.is_err() {
                    self.fail_block();
                }
                return r;
            }
            _ => {}
        }
        use sqlparser::ast::Statement as S;
        if let Statement::Sql(s) = &stmt {
            match s {
                S::Declare { stmts, .. }
                    if stmts.first().is_some_and(|d| d.for_query.is_some()) =>
                {
                    let r = self.declare(&stmts[0]);
                    if r.is_err() {
                        self.fail_block();
                    }
                    return r;
                }
                S::Fetch {
                    name, direction, ..
                } => {
                    let r = self.fetch(&parser::normalize_ident(name), direction);
                    if r.is_err() {
                        self.fail_block();
                    }
                    return r;
                }
                S::Close { cursor } => {
                    match cursor {
                        sqlparser::ast::CloseCursor::All => self.cursors.clear(),
                        sqlparser::ast::CloseCursor::Specific { name } => {
                            let n = parser::normalize_ident(name);
                            if self.cursors.remove(&n).is_none() {
                                self.fail_block();
                                return Err(PgError::new(
                                    SqlState::InvalidCursorName,
                                    format!("cursor \"{n}\" does not exist"),
                                ));
                            }
                        }
                    }
                    return Ok(QueryResult::command("CLOSE CURSOR"));
                }
                _ => {}
            }
        }
        let mut exec_args: Option<Vec<sqlparser::ast::Expr>> = None;
        let mut param_types: Vec<DataType> = Vec::new();
        let mut stmt = stmt;
        if let Statement::Sql(s) = &stmt {
            match s {
                S::Prepare {
                    name,
                    data_types,
                    statement,
                } => {
                    let n = parser::normalize_ident(name);
                    if self.prepared.contains_key(&n) {
                        self.fail_block();
                        return Err(PgError::new(
                            SqlState::DuplicatePreparedStatement,
                            format!("prepared statement \"{n}\" already exists"),
                        ));
                    }
                    let types = data_types
                        .iter()
                        .map(crate::exec::parse_type)
                        .collect::<Result<Vec<_>, _>>();
                    let types = match types {
                        Ok(t) => t,
                        Err(e) => {
                            self.fail_block();
                            return Err(e);
                        }
                    };
                    self.prepared
                        .insert(n, (types, Statement::Sql(statement.as_ref().clone())));
                    return Ok(QueryResult::command("PREPARE"));
                }
                S::Deallocate { name, .. } => {
                    let n = parser::normalize_ident(name);
                    if n == "all" {
                        self.prepared.clear();
                    } else if self.prepared.remove(&n).is_none() {
                        self.fail_block();
                        return Err(PgError::new(
                            SqlState::InvalidSqlStatementName,
                            format!("prepared statement \"{n}\" does not exist"),
                        ));
                    }
                    return Ok(QueryResult::command("DEALLOCATE"));
                }
                S::Execute {
                    name: Some(name),
                    parameters,
                    ..
                } => {
                    let n = name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(parser::normalize_ident)
                        .unwrap_or_default();
                    let Some((types, inner)) = self.prepared.get(&n).cloned() else {
                        self.fail_block();
                        return Err(PgError::new(
                            SqlState::InvalidSqlStatementName,
                            format!("prepared statement \"{n}\" does not exist"),
                        ));
                    };
                    if !types.is_empty() && types.len() != parameters.len() {
                        self.fail_block();
                        return Err(PgError::new(
                            SqlState::SyntaxError,
                            format!(
                                "wrong number of parameters for prepared statement \"{n}\": expected {}, got {}",
                                types.len(),
                                parameters.len()
                            ),
                        ));
                    }
                    exec_args = Some(parameters.clone());
                    param_types = types;
                    stmt = inner;
                }
                _ => {}
            }
        }
        let tz = self.time_zone();
        let engine = Arc::clone(&self.engine);
        let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
        let mut deferred = Vec::new();
        let search_path = self.guc("search_path").unwrap_or_default();
        let mut run = |exec: Exec<'_>| -> Result<QueryResult, PgError> {
            let exec = exec.with_search_path(&search_path);
            let exec = match &exec_args {
                None => exec,
                Some(args) => {
                    let mut params = Vec::new();
                    for (i, a) in args.iter().enumerate() {
                        params.push(exec.eval_const(a, param_types.get(i))?);
                    }
                    exec.with_params(params)
                }
            };
            let r = exec.run(&stmt)?;
            deferred = exec.deferred.take();
            Ok(r)
        };
        match &mut self.state {
            TxState::InBlock(b) => {
                if b.read_only && is_write(&stmt) {
                    b.failed = true;
                    return Err(PgError::new(
                        SqlState::ReadOnlySqlTransaction,
                        "cannot execute statement in a read-only transaction",
                    ));
                }
                if b.iso == Isolation::ReadCommitted {
                    b.txn.set_snapshot(engine.snapshot())?;
                }
                b.statements += 1;
                let r = run(Exec::new(&engine, &mut b.txn, tz, b.start, seqs));
                b.deferred.append(&mut deferred);
                let r = r.and_then(|res| {
                    b.txn.next_command()?;
                    Ok(res)
                });
                if r.is_err() {
                    b.failed = true;
                }
                r
            }
            TxState::Idle => {
                let mut txn = engine.begin(Isolation::ReadCommitted)?;
                txn.set_lock_timeout(self.lock_timeout);
                let r = run(Exec::new(
                    &engine,
                    &mut txn,
                    tz.clone(),
                    clock_now(),
                    seqs.clone(),
                ));
                let r = r.and_then(|res| {
                    if !deferred.is_empty() {
                        txn.next_command()?;
                        Exec::new(&engine, &mut txn, tz, clock_now(), seqs)
                            .check_deferred(&deferred)?;
                    }
                    Ok(res)
                });
                match r {
                    Ok(res) => {
                        engine.finish(txn, true)?;
                        Ok(res)
                    }
                    Err(e) => {
                        engine.finish(txn, false)?;
                        Err(e)
                    }
                }
            }
        }
    }

    fn transaction(&mut self, t: TransactionStmt) -> Result<QueryResult, PgError> {
        match t {
            TransactionStmt::Begin { modes } => {
                if let TxState::InBlock(b) = &self.state {
                    if b.failed {
                        return Err(PgError::new(
                            SqlState::InFailedSqlTransaction,
                            "current transaction is aborted, commands ignored until end of transaction block",
                        ));
                    }
                    // PostgreSQL: a WARNING, the block continues.
                    return Ok(QueryResult::command("BEGIN"));
                }
                let default_iso = self
                    .guc("default_transaction_isolation")
                    .unwrap_or_default();
                let mut serializable = default_iso == "serializable";
                let mut iso = if default_iso == "repeatable read" || serializable {
                    Isolation::RepeatableRead
                } else {
                    Isolation::ReadCommitted
                };
                let mut read_only =
                    self.guc("default_transaction_read_only").as_deref() == Some("on");
                for m in modes {
                    match m {
                        TransactionMode::IsolationLevel(l) => {
                            serializable = l == IsolationLevel::Serializable;
                            iso = match l {
                                IsolationLevel::ReadUncommitted | IsolationLevel::ReadCommitted => {
                                    Isolation::ReadCommitted
                                }
                                _ => Isolation::RepeatableRead,
                            };
                        }
                        TransactionMode::ReadOnly => read_only = true,
                        TransactionMode::ReadWrite => read_only = false,
                        _ => {}
                    }
                }
                let mut txn = self.engine.begin(iso)?;
                txn.set_lock_timeout(self.lock_timeout);
                self.gucs.insert(
                    "transaction_isolation".into(),
                    iso_name(iso, serializable).into(),
                );
                self.gucs.insert(
                    "transaction_read_only".into(),
                    if read_only { "on" } else { "off" }.into(),
                );
                self.state = TxState::InBlock(Block {
                    txn,
                    statements: 0,
                    deferred: Vec::new(),
                    start: clock_now(),
                    iso,
                    read_only,
                    failed: false,
                    savepoints: Vec::new(),
                });
                Ok(QueryResult::command("BEGIN"))
            }
            TransactionStmt::Commit { .. } => {
                self.end_block_gucs();
                match std::mem::replace(&mut self.state, TxState::Idle) {
                    TxState::Idle => Ok(QueryResult::command("COMMIT")),
                    TxState::InBlock(mut b) => {
                        if b.failed {
                            self.engine.finish(b.txn, false)?;
                            Ok(QueryResult::command("ROLLBACK"))
                        } else {
                            if !b.deferred.is_empty() {
                                let tz = self.time_zone();
                                let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
                                let checked = b.txn.next_command().and_then(|_| {
                                    Exec::new(&self.engine, &mut b.txn, tz, b.start, seqs)
                                        .check_deferred(&b.deferred)
                                });
                                if let Err(e) = checked {
                                    self.engine.finish(b.txn, false)?;
                                    return Err(e);
                                }
                            }
                            self.engine.finish(b.txn, true)?;
                            Ok(QueryResult::command("COMMIT"))
                        }
                    }
                }
            }
            TransactionStmt::Rollback { .. } => {
                self.end_block_gucs();
                if let TxState::InBlock(b) = std::mem::replace(&mut self.state, TxState::Idle) {
                    self.engine.finish(b.txn, false)?;
                }
                Ok(QueryResult::command("ROLLBACK"))
            }
            TransactionStmt::Savepoint(ref name)
            | TransactionStmt::Release(ref name)
            | TransactionStmt::RollbackTo(ref name) => self.savepoint_stmt(&t, name),
            other => {
                let in_block = self.in_transaction();
                if !in_block {
                    return Err(PgError::new(
                        SqlState::NoActiveSqlTransaction,
                        format!("{other:?} can only be used in transaction blocks"),
                    ));
                }
                self.fail_block();
                Err(PgError::new(
                    SqlState::FeatureNotSupported,
                    "two-phase commit is not supported by the standalone engine yet",
                ))
            }
        }
    }

    /// SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT, as PostgreSQL: names may repeat
    /// (the newest wins), ROLLBACK TO keeps the savepoint and leaves a failed block usable again,
    /// RELEASE forgets it and every later one.
    fn savepoint_stmt(
        &mut self,
        t: &TransactionStmt,
        name: &Ident,
    ) -> Result<QueryResult, PgError> {
        let what = match t {
            TransactionStmt::Savepoint(_) => "SAVEPOINT",
            TransactionStmt::Release(_) => "RELEASE SAVEPOINT",
            _ => "ROLLBACK TO SAVEPOINT",
        };
        let name = parser::normalize_ident(name);
        let TxState::InBlock(b) = &mut self.state else {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                format!("{what} can only be used in transaction blocks"),
            ));
        };
        let rollback_to = matches!(t, TransactionStmt::RollbackTo(_));
        if b.failed && !rollback_to {
            return Err(PgError::new(
                SqlState::InFailedSqlTransaction,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if let TransactionStmt::Savepoint(_) = t {
            let sp = b.txn.savepoint();
            b.savepoints.push((name, sp, b.deferred.len()));
            return Ok(QueryResult::command("SAVEPOINT"));
        }
        let Some(pos) = b.savepoints.iter().rposition(|(n, _, _)| *n == name) else {
            b.failed = true;
            return Err(PgError::new(
                SqlState::InvalidSavepointSpecification,
                format!("savepoint \"{name}\" does not exist"),
            ));
        };
        if rollback_to {
            let (_, sp, deferred) = b.savepoints[pos].clone();
            b.savepoints.truncate(pos + 1);
            if let Err(e) = b.txn.rollback_to(&sp).and_then(|_| b.txn.next_command()) {
                b.failed = true;
                return Err(e);
            }
            b.deferred.truncate(deferred);
            b.failed = false;
            Ok(QueryResult::command("ROLLBACK"))
        } else {
            b.savepoints.truncate(pos);
            Ok(QueryResult::command("RELEASE"))
        }
    }

    fn declare(&mut self, d: &sqlparser::ast::Declare) -> Result<QueryResult, PgError> {
        let name = d
            .names
            .first()
            .map(parser::normalize_ident)
            .unwrap_or_default();
        let hold = d.hold == Some(true);
        if !self.in_transaction() && !hold {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                "DECLARE CURSOR can only be used in transaction blocks",
            ));
        }
        if self.cursors.contains_key(&name) {
            return Err(PgError::new(
                SqlState::DuplicateCursor,
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let Some(q) = &d.for_query else {
            return Err(PgError::new(SqlState::SyntaxError, "DECLARE needs a query"));
        };
        let r = self.execute_one(Statement::Sql(sqlparser::ast::Statement::Query(q.clone())))?;
        self.cursors.insert(
            name,
            Cursor {
                columns: r.columns,
                rows: r.rows,
                pos: 0,
                no_scroll: d.scroll == Some(false),
                hold,
            },
        );
        Ok(QueryResult::command("DECLARE CURSOR"))
    }

    fn fetch(
        &mut self,
        name: &str,
        dir: &sqlparser::ast::FetchDirection,
    ) -> Result<QueryResult, PgError> {
        use sqlparser::ast::FetchDirection as F;
        let c = self.cursors.get_mut(name).ok_or_else(|| {
            PgError::new(
                SqlState::InvalidCursorName,
                format!("cursor \"{name}\" does not exist"),
            )
        })?;
        let num = |v: &sqlparser::ast::ValueWithSpan| -> i64 {
            match &v.value {
                sqlparser::ast::Value::Number(n, _) => n.parse().unwrap_or(0),
                _ => 0,
            }
        };
        let len = c.rows.len() as i64;
        // (steps, forward) for relative moves returning every row passed; or an absolute target.
        enum Move {
            Steps(i64, bool),
            To(i64),
            Rel(i64),
        }
        let mv = match dir {
            F::Next | F::Forward { limit: None } => Move::Steps(1, true),
            F::Prior | F::Backward { limit: None } => Move::Steps(1, false),
            F::Count { limit } | F::Forward { limit: Some(limit) } => {
                let n = num(limit);
                if n >= 0 {
                    Move::Steps(n, true)
                } else {
                    Move::Steps(-n, false)
                }
            }
            F::Backward { limit: Some(limit) } => Move::Steps(num(limit), false),
            F::All | F::ForwardAll => Move::Steps(i64::MAX, true),
            F::BackwardAll => Move::Steps(i64::MAX, false),
            F::First => Move::To(1),
            F::Last => Move::To(len),
            F::Absolute { limit } => {
                let n = num(limit);
                Move::To(if n >= 0 { n } else { len + 1 + n })
            }
            F::Relative { limit } => Move::Rel(num(limit)),
        };
        let backward = match mv {
            Move::Steps(n, fwd) => !fwd && n > 0,
            Move::To(t) => t < c.pos,
            Move::Rel(n) => n < 0,
        };
        if backward && c.no_scroll {
            return Err(PgError::new(
                SqlState::ObjectNotInPrerequisiteState,
                "cursor can only scan forward",
            ));
        }
        let mut out = Vec::new();
        match mv {
            Move::Steps(n, fwd) => {
                let mut k = 0;
                while k < n {
                    let next = if fwd { c.pos + 1 } else { c.pos - 1 };
                    if next < 1 || next > len {
                        c.pos = if fwd { len + 1 } else { 0 };
                        break;
                    }
                    c.pos = next;
                    out.push(c.rows[(next - 1) as usize].clone());
                    k += 1;
                }
            }
            Move::To(t) | Move::Rel(t) => {
                let t = if let Move::Rel(_) = mv { c.pos + t } else { t };
                c.pos = t.clamp(0, len + 1);
                if c.pos >= 1 && c.pos <= len {
                    out.push(c.rows[(c.pos - 1) as usize].clone());
                }
            }
        }
        let n = out.len();
        Ok(QueryResult {
            columns: c.columns.clone(),
            rows: out,
            tag: format!("FETCH {n}"),
        })
    }

    fn end_block_gucs(&mut self) {
        self.cursors.retain(|_, c| c.hold);
        self.gucs.remove("transaction_isolation");
        self.gucs.remove("transaction_read_only");
    }

    fn set(&mut self, s: Set) -> Result<QueryResult, PgError> {
        match s {
            Set::Variable { name, value, .. } => {
                let name = name.to_ascii_lowercase();
                match value {
                    SetValue::Default => {
                        self.gucs.remove(&name);
                    }
                    SetValue::Values(vals) => {
                        let v = vals.join(", ");
                        if default_guc(&name).is_none() && !name.contains('.') {
                            return Err(PgError::new(
                                SqlState::UndefinedObject,
                                format!("unrecognized configuration parameter \"{name}\""),
                            ));
                        }
                        let v = match name.as_str() {
                            "timezone" => {
                                TimeZone::from_setting(&v)?;
                                v
                            }
                            "datestyle" => {
                                let l = v.to_ascii_lowercase();
                                if l.contains("iso") {
                                    "ISO, MDY".to_string()
                                } else {
                                    v
                                }
                            }
                            _ => v,
                        };
                        self.gucs.insert(name, v);
                    }
                }
                Ok(QueryResult::command("SET"))
            }
            Set::Transaction {
                session_characteristics,
                modes,
            } => {
                let mut iso = None;
                let mut read_only = None;
                for m in modes {
                    match m {
                        TransactionMode::IsolationLevel(l) => iso = Some(l),
                        TransactionMode::ReadOnly => read_only = Some(true),
                        TransactionMode::ReadWrite => read_only = Some(false),
                        _ => {}
                    }
                }
                let iso_text = |l: IsolationLevel| match l {
                    IsolationLevel::ReadUncommitted => "read uncommitted",
                    IsolationLevel::ReadCommitted => "read committed",
                    IsolationLevel::RepeatableRead => "repeatable read",
                    IsolationLevel::Serializable => "serializable",
                };
                if session_characteristics {
                    if let Some(l) = iso {
                        self.gucs
                            .insert("default_transaction_isolation".into(), iso_text(l).into());
                    }
                    if let Some(r) = read_only {
                        self.gucs.insert(
                            "default_transaction_read_only".into(),
                            if r { "on" } else { "off" }.into(),
                        );
                    }
                    return Ok(QueryResult::command("SET"));
                }
                let engine = Arc::clone(&self.engine);
                let lock_timeout = self.lock_timeout;
                let TxState::InBlock(b) = &mut self.state else {
                    // PostgreSQL: a WARNING outside a transaction block, no effect.
                    return Ok(QueryResult::command("SET"));
                };
                if let Some(l) = iso {
                    if b.statements > 0 {
                        b.failed = true;
                        return Err(PgError::new(
                            SqlState::ActiveSqlTransaction,
                            "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                        ));
                    }
                    let new_iso = match l {
                        IsolationLevel::ReadUncommitted | IsolationLevel::ReadCommitted => {
                            Isolation::ReadCommitted
                        }
                        _ => Isolation::RepeatableRead,
                    };
                    if new_iso != b.iso {
                        // Nothing ran yet: restart the transaction at the new level.
                        let mut txn = engine.begin(new_iso)?;
                        txn.set_lock_timeout(lock_timeout);
                        let old = std::mem::replace(&mut b.txn, txn);
                        engine.finish(old, false)?;
                        b.iso = new_iso;
                    }
                    self.gucs
                        .insert("transaction_isolation".into(), iso_text(l).into());
                }
                if let (Some(r), TxState::InBlock(b)) = (read_only, &mut self.state) {
                    b.read_only = r;
                    self.gucs.insert(
                        "transaction_read_only".into(),
                        if r { "on" } else { "off" }.into(),
                    );
                }
                Ok(QueryResult::command("SET"))
            }
            _ => Ok(QueryResult::command("SET")),
        }
    }

    fn show(&self, t: &ShowTarget) -> Result<QueryResult, PgError> {
        match t {
            ShowTarget::All => Err(PgError::new(
                SqlState::FeatureNotSupported,
                "SHOW ALL is not supported yet",
            )),
            ShowTarget::Variable(v) => {
                let name = v.to_ascii_lowercase();
                let val = match name.as_str() {
                    "transaction_isolation" | "transaction isolation level" => self
                        .guc("transaction_isolation")
                        .or_else(|| self.guc("default_transaction_isolation")),
                    _ => self.guc(&name),
                }
                .ok_or_else(|| {
                    PgError::new(
                        SqlState::UndefinedObject,
                        format!("unrecognized configuration parameter \"{name}\""),
                    )
                })?;
                Ok(QueryResult {
                    columns: vec![(name, DataType::Text)],
                    rows: vec![vec![Value::Text(val)]],
                    tag: "SHOW".into(),
                })
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let TxState::InBlock(b) = std::mem::replace(&mut self.state, TxState::Idle) {
            let _ = self.engine.finish(b.txn, false);
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;
    use pgxc_storage::SimDisk;

    fn one(s: &mut Session, sql: &str) -> QueryResult {
        match s.execute(sql) {
            Ok(mut r) => r.pop().unwrap_or_else(|| QueryResult::command("")),
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    #[test]
    fn gxids_are_never_reused_across_restarts() {
        let sim = SimDisk::new();
        {
            let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
            let mut s = e.session();
            one(&mut s, "CREATE TABLE t (a int PRIMARY KEY, b text)");
            for i in 0..5 {
                one(&mut s, &format!("INSERT INTO t VALUES ({i}, 'x')"));
            }
        }
        let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
        let mut s = e.session();
        // Each statement begins a new GXID; a reused one would be refused by the store.
        for i in 5..(GXID_BLOCK as i32 + 20) {
            one(&mut s, &format!("INSERT INTO t VALUES ({i}, 'y')"));
        }
        let r = one(&mut s, "SELECT count(*) FROM t");
        assert_eq!(
            r.rows,
            vec![vec![Value::Int8(i64::from(GXID_BLOCK as i32 + 20))]]
        );
        assert_eq!(r.tag, "SELECT 1");
    }

    #[test]
    fn failed_block_answers_25p02_until_rollback() {
        let e = Engine::open(&Disk::sim(SimDisk::new()), "t.redb").unwrap();
        let mut s = e.session();
        one(&mut s, "CREATE TABLE t (a int PRIMARY KEY)");
        one(&mut s, "BEGIN");
        one(&mut s, "INSERT INTO t VALUES (1)");
        let err = s.execute("INSERT INTO t VALUES (1)").unwrap_err();
        assert_eq!(err.code, SqlState::UniqueViolation);
        let err = s.execute("SELECT 1").unwrap_err();
        assert_eq!(err.code, SqlState::InFailedSqlTransaction);
        assert_eq!(one(&mut s, "COMMIT").tag, "ROLLBACK");
        let r = one(&mut s, "SELECT count(*) FROM t");
        assert_eq!(r.rows, vec![vec![Value::Int8(0)]]);
    }

    #[test]
    fn ddl_is_transactional() {
        let e = Engine::open(&Disk::sim(SimDisk::new()), "t.redb").unwrap();
        let mut s = e.session();
        one(&mut s, "BEGIN");
        one(&mut s, "CREATE TABLE t (a int)");
        one(&mut s, "INSERT INTO t VALUES (1), (2)");
        assert_eq!(one(&mut s, "SELECT a FROM t ORDER BY a DESC").rows.len(), 2);
        one(&mut s, "ROLLBACK");
        let err = s.execute("SELECT * FROM t").unwrap_err();
        assert_eq!(err.code, SqlState::UndefinedTable);
    }
}
