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

use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use pgxc_storage::mvcc::{
    Isolation, LocalGtm, Outcome, RelId, Savepoint, Store, StoreConfig, Tid, Txn,
};
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
use crate::types::datetime::{self as dt, TimeZone, Zone};
use crate::types::{DataType, Value};

/// How many GXIDs one durable reservation covers.
pub const GXID_BLOCK: u64 = 1000;

/// How many gids [`Engine::finish_prepared_fenced`] remembers.
pub const FENCED_GIDS: usize = 4096;

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

/// The store relation that holds every local sequence's durable state, one row per sequence
/// (postcard-encoded [`SeqRecord`]).
pub const SEQUENCE_TABLE: &str = "pgxc_sql_sequences";

/// How many values `nextval` logs ahead before handing them out (PostgreSQL's `SEQ_LOG_VALS`):
/// the durable row records a value at least this far ahead of the last one handed out, so a
/// crash skips at most this many values and never reissues one.
pub const SEQ_LOG_VALS: u32 = 32;

/// A local sequence's state.
#[derive(Clone, Debug)]
pub(crate) struct SeqState {
    /// Last value handed out (or, with `is_called = false`, the next one).
    pub(crate) last: i64,
    pub(crate) is_called: bool,
    pub(crate) increment: i64,
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) cycle: bool,
    /// START WITH (what `ALTER SEQUENCE .. RESTART` goes back to).
    pub(crate) start: i64,
    /// Values that may still be handed out before the next durable log record.
    pub(crate) log_cnt: u32,
    /// The durable row holding this sequence (`None` before its first write).
    pub(crate) tid: Option<Tid>,
}

impl SeqState {
    /// A fresh sequence's state (`nextval` returns `start` first).
    pub(crate) fn new(start: i64, increment: i64, min: i64, max: i64, cycle: bool) -> SeqState {
        SeqState {
            last: start,
            is_called: false,
            increment,
            min,
            max,
            cycle,
            start,
            log_cnt: 0,
            tid: None,
        }
    }

    /// The parameters a [`GlobalSequences`] store needs.
    fn def(&self) -> SeqDef {
        SeqDef {
            start: self.start,
            increment: self.increment,
            min: self.min,
            max: self.max,
            cycle: self.cycle,
        }
    }

    /// The value after `from`: `None` at the limit of a sequence without CYCLE.
    fn step(&self, from: i64) -> Option<i64> {
        match from.checked_add(self.increment) {
            Some(v) if v >= self.min && v <= self.max => Some(v),
            _ if self.cycle => Some(if self.increment > 0 {
                self.min
            } else {
                self.max
            }),
            _ => None,
        }
    }

    fn record(&self, key: &str, last: i64, is_called: bool) -> SeqRecord {
        SeqRecord {
            key: key.to_string(),
            last,
            is_called,
            increment: self.increment,
            min: self.min,
            max: self.max,
            cycle: self.cycle,
            start: self.start,
        }
    }
}

/// The durable form of a sequence (one row of [`SEQUENCE_TABLE`]). `last` is the logged-ahead
/// value: after a restart the sequence continues after it, as PostgreSQL's after crash recovery.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SeqRecord {
    key: String,
    last: i64,
    is_called: bool,
    increment: i64,
    min: i64,
    max: i64,
    cycle: bool,
    start: i64,
}

/// How statements wait for the holder of a row or relation lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Wait inside the statement, as PostgreSQL does: storage futures run on an engine-owned
    /// current-thread runtime, so [`Session::execute`] blocks its thread (one session per
    /// thread). The default outside madsim.
    Block,
    /// Never block a thread: a statement that would wait is rolled back to its start (an
    /// internal savepoint) and [`Session::execute_async`] awaits the holder's end, then runs it
    /// again. READ COMMITTED statements restart with a new snapshot (a later statement start, as
    /// PostgreSQL would have allowed); REPEATABLE READ ones keep theirs and still get 40001 on a
    /// concurrent update. [`Session::execute`] in this mode answers 55P03 where it would wait.
    /// The only mode under madsim (a deterministic simulation runs every node on one thread).
    Restart,
}

impl WaitMode {
    /// [`WaitMode::Restart`] under madsim, [`WaitMode::Block`] otherwise.
    pub fn for_build() -> WaitMode {
        if cfg!(madsim) {
            WaitMode::Restart
        } else {
            WaitMode::Block
        }
    }
}

/// A standalone SQL engine over one store. Cheap to share (`Arc`).
///
/// Sequences are local to the engine and, like PostgreSQL's, not transactional: every change
/// is written through the store (an autonomous, committed write to [`SEQUENCE_TABLE`]) before
/// it takes effect, and `nextval` logs [`SEQ_LOG_VALS`] values ahead, so no value is ever
/// handed out twice, across restarts and crashes included.
pub struct Engine {
    store: Store,
    gtm: Mutex<GtmState>,
    /// Where GXIDs and snapshots come from when not from the local GTM (a datanode in a cluster).
    source: Option<Arc<dyn TxnSource>>,
    /// Block mode's runtime for storage futures (`None` in restart mode; never under madsim).
    #[cfg(not(madsim))]
    rt: Option<tokio::runtime::Runtime>,
    /// How statements wait for lock holders.
    mode: WaitMode,
    catalog_rel: RelId,
    seq_rel: RelId,
    seqs: Mutex<HashMap<String, SeqState>>,
    ssi: Mutex<SsiState>,
    /// The last `pg_backend_pid()` handed to a session (sessions are numbered from 1).
    last_pid: std::sync::atomic::AtomicI32,
    /// Gids a coordinator rolled back here before they were prepared
    /// ([`Engine::finish_prepared_fenced`]): a PREPARE arriving late under one of them is refused.
    /// Also the lock that makes "not prepared → fence" and PREPARE mutually atomic.
    fenced_gids: Mutex<std::collections::VecDeque<String>>,
}

/// Serializable snapshot isolation at relation granularity (PostgreSQL's SSI, coarsened): the
/// relations a serializable transaction read and wrote come from its relation locks (reads:
/// AccessShare / RowShare, writes: RowExclusive and the exclusive modes). Two concurrent
/// serializable transactions have an rw-antidependency `T1 -> T2` when T1 read a relation T2
/// wrote. A transaction fails to commit with 40001 when it would become the pivot of a dangerous
/// structure `Tin -> T -> Tout` whose `Tout` committed first, or when it would be the `Tin` of
/// such a structure whose pivot already committed. False positives are possible (relation
/// granularity), false negatives are not.
#[derive(Default)]
struct SsiState {
    /// Active serializable transactions and their snapshots.
    active: BTreeMap<u64, Snapshot>,
    /// Committed serializable transactions an active one may still be concurrent with.
    committed: Vec<SsiCommitted>,
}

/// What SSI remembers of a committed serializable transaction.
struct SsiCommitted {
    xid: u64,
    reads: std::collections::BTreeSet<u64>,
    writes: std::collections::BTreeSet<u64>,
    /// It committed with an rw-antidependency to a transaction that had committed before it
    /// (a pivot whose `Tout` committed first: a later `Tin` must fail).
    pivot: bool,
}

/// Whether `snap` sees the commit of `xid` (it committed before the snapshot was taken).
fn sees(snap: &Snapshot, xid: u64) -> bool {
    xid < snap.xmax.0 && !snap.xip.iter().any(|x| x.0 == xid)
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
        if let Some(g) = self.engine.global_seqs() {
            if !self.engine.seqs().contains_key(name) {
                return Err(no_seq(name));
            }
            let v = g.nextval(name)?;
            self.last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string(), v);
            return Ok(v);
        }
        let v = {
            let mut seqs = self.engine.seqs();
            let s = seqs.get_mut(name).ok_or_else(|| no_seq(name))?;
            let v = if s.is_called {
                match s.step(s.last) {
                    Some(v) => v,
                    None => {
                        return Err(PgError::new(
                            SqlState::SequenceGeneratorLimitExceeded,
                            format!(
                                "nextval: reached {} value of sequence \"{}\" ({})",
                                if s.increment > 0 {
                                    "maximum"
                                } else {
                                    "minimum"
                                },
                                name.trim_start_matches("public."),
                                if s.increment > 0 { s.max } else { s.min }
                            ),
                        ))
                    }
                }
            } else {
                s.last
            };
            if s.log_cnt == 0 {
                // Log ahead: make a value SEQ_LOG_VALS steps on durable first.
                let mut ahead = v;
                for _ in 0..SEQ_LOG_VALS {
                    match s.step(ahead) {
                        Some(n) => ahead = n,
                        None => break,
                    }
                }
                let rec = s.record(name, ahead, true);
                self.engine.seq_write(s, &rec)?;
                s.log_cnt = SEQ_LOG_VALS;
            } else {
                s.log_cnt -= 1;
            }
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
        {
            let mut seqs = self.engine.seqs();
            let s = seqs.get_mut(name).ok_or_else(|| no_seq(name))?;
            if value < s.min || value > s.max {
                return Err(PgError::new(
                    SqlState::NumericValueOutOfRange,
                    format!(
                        "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                        name.trim_start_matches("public."),
                        s.min,
                        s.max
                    ),
                ));
            }
            match self.engine.global_seqs() {
                Some(g) => {
                    drop(seqs);
                    g.setval(name, value, is_called)?;
                }
                None => {
                    let rec = s.record(name, value, is_called);
                    self.engine.seq_write(s, &rec)?;
                    s.last = value;
                    s.is_called = is_called;
                    s.log_cnt = 0;
                }
            }
        }
        // As PostgreSQL's do_setval: currval follows only a setval with is_called = true.
        if is_called {
            self.last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string(), value);
        }
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
        Engine::open_with(disk, name, None)
    }

    /// [`Engine::open`] for a node of a cluster: every transaction of this engine, including its
    /// own internal ones (catalog bootstrap, sequence bookkeeping), takes its GXID and snapshots from
    /// `source` (the GTM), so no GXID is ever issued twice cluster-wide. `None` = the local GTM.
    pub fn open_with(
        disk: &Disk,
        name: &str,
        source: Option<Arc<dyn TxnSource>>,
    ) -> Result<Arc<Engine>, PgError> {
        Engine::open_with_mode(disk, name, source, WaitMode::for_build())
    }

    /// [`Engine::open_with`] choosing how statements wait for lock holders ([`WaitMode`]).
    /// In [`WaitMode::Restart`] no runtime is created and the store writes commits inline
    /// (`Store::set_inline_commits`); run statements with [`Session::execute_async`].
    ///
    /// Errors: as [`Engine::open`]; XX000 if [`WaitMode::Block`] is asked for under madsim.
    pub fn open_with_mode(
        disk: &Disk,
        name: &str,
        source: Option<Arc<dyn TxnSource>>,
        mode: WaitMode,
    ) -> Result<Arc<Engine>, PgError> {
        let store = Store::open(disk, name, StoreConfig::default())?;
        #[cfg(not(madsim))]
        let rt = match mode {
            WaitMode::Block => Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| internal(format!("cannot start runtime: {e}")))?,
            ),
            WaitMode::Restart => None,
        };
        #[cfg(madsim)]
        if mode == WaitMode::Block {
            return Err(internal(
                "the blocking wait mode needs threads; use WaitMode::Restart under madsim",
            ));
        }
        if mode == WaitMode::Restart {
            store.set_inline_commits(true);
        }
        let start = store.reserve_local_xids(GXID_BLOCK)?;
        let mut catalog_rel = None;
        let mut seq_rel = None;
        for def in store.relations() {
            if def.name == SYSTEM_TABLE {
                catalog_rel = Some(def.id);
            }
            if def.name == SEQUENCE_TABLE {
                seq_rel = Some(def.id);
            }
        }
        let gtm = GtmState {
            gtm: LocalGtm::starting_at(start),
            limit: start.0 + GXID_BLOCK,
        };
        let mut engine = Engine {
            store,
            gtm: Mutex::new(gtm),
            source,
            #[cfg(not(madsim))]
            rt,
            mode,
            catalog_rel: RelId(0),
            seq_rel: RelId(0),
            seqs: Mutex::new(HashMap::new()),
            ssi: Mutex::new(SsiState::default()),
            last_pid: std::sync::atomic::AtomicI32::new(0),
            fenced_gids: Mutex::new(std::collections::VecDeque::new()),
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
        match seq_rel {
            Some(r) => {
                engine.seq_rel = r;
                engine.load_sequences()?;
            }
            None => {
                let mut txn = engine.begin(Isolation::ReadCommitted)?;
                let r = engine.block_on(txn.create_table(SEQUENCE_TABLE))?;
                engine.finish(txn, true)?;
                engine.seq_rel = r;
            }
        }
        Ok(Arc::new(engine))
    }

    /// Read every sequence's durable row: a sequence continues after its logged-ahead value.
    fn load_sequences(&mut self) -> Result<(), PgError> {
        let mut txn = self.begin(Isolation::ReadCommitted)?;
        let mut rows = Vec::new();
        let r = (|| {
            let mut scan = self.block_on(txn.scan(self.seq_rel, false))?;
            loop {
                let batch = self.block_on(txn.next(&mut scan, 1024))?;
                if batch.is_empty() {
                    return Ok::<(), PgError>(());
                }
                rows.extend(batch);
            }
        })();
        self.finish(txn, true)?;
        r?;
        let mut seqs = HashMap::new();
        for row in rows {
            let rec: SeqRecord = postcard::from_bytes(&row.data).map_err(|e| {
                PgError::new(
                    SqlState::DataCorrupted,
                    format!("corrupt sequence row: {e}"),
                )
            })?;
            let mut st = SeqState::new(rec.start, rec.increment, rec.min, rec.max, rec.cycle);
            st.last = rec.last;
            st.is_called = rec.is_called;
            st.tid = Some(row.tid);
            seqs.insert(rec.key, st);
        }
        *self.seqs.get_mut().unwrap_or_else(|p| p.into_inner()) = seqs;
        Ok(())
    }

    /// Write `rec` as the durable row of sequence `s` (an autonomous transaction, committed
    /// before this returns, as PostgreSQL's WAL-logged sequence changes ignore the caller's
    /// transaction), remembering the row's new tid in `s`.
    ///
    /// Errors: the store's (58030 on disk failure).
    fn seq_write(&self, s: &mut SeqState, rec: &SeqRecord) -> Result<(), PgError> {
        let payload = postcard::to_allocvec(rec)
            .map_err(|e| internal(format!("cannot encode sequence: {e}")))?;
        let mut txn = self.begin(Isolation::ReadCommitted)?;
        let r = match s.tid {
            Some(tid) => match self.block_on(txn.update(self.seq_rel, tid, &payload, &[])) {
                Ok(Outcome::Done(t)) => Ok(t),
                Ok(_) => Err(internal("sequence row changed concurrently")),
                Err(e) => Err(e),
            },
            None => self.block_on(txn.insert(self.seq_rel, &payload, &[])),
        };
        match r {
            Ok(t) => {
                self.finish(txn, true)?;
                s.tid = Some(t);
                Ok(())
            }
            Err(e) => {
                let _ = self.finish(txn, false);
                Err(e)
            }
        }
    }

    /// CREATE SEQUENCE: register `key` (`schema.name`) with `state`, durably. Returns false if
    /// it exists and `if_not_exists` is set.
    ///
    /// Errors: 42P07 if it exists; the store's.
    pub(crate) fn create_sequence(
        &self,
        key: &str,
        mut state: SeqState,
        if_not_exists: bool,
    ) -> Result<bool, PgError> {
        let mut seqs = self.seqs();
        if seqs.contains_key(key) {
            if if_not_exists {
                return Ok(false);
            }
            return Err(PgError::new(
                SqlState::DuplicateTable,
                format!(
                    "relation \"{}\" already exists",
                    key.trim_start_matches("public.")
                ),
            ));
        }
        if let Some(g) = self.global_seqs() {
            g.create(key, &state.def())?;
            // The local position is never advanced (values come from the GTM): keep it "called"
            // so that an ALTER SEQUENCE .. RESTART is told apart from other changes.
            state.is_called = true;
        }
        let rec = state.record(key, state.last, state.is_called);
        if let Err(e) = self.seq_write(&mut state, &rec) {
            if let Some(g) = self.global_seqs() {
                let _ = g.drop(key);
            }
            return Err(e);
        }
        state.log_cnt = 0;
        seqs.insert(key.to_string(), state);
        Ok(true)
    }

    /// ALTER SEQUENCE: replace the state of `key` by `f(old)`, durably.
    ///
    /// Errors: 42P01 if there is no such sequence; what `f` returns; the store's.
    pub(crate) fn alter_sequence(
        &self,
        key: &str,
        f: impl FnOnce(&SeqState) -> Result<SeqState, PgError>,
    ) -> Result<(), PgError> {
        let mut seqs = self.seqs();
        let s = seqs.get_mut(key).ok_or_else(|| no_seq(key))?;
        let mut new = f(s)?;
        new.tid = s.tid;
        new.log_cnt = 0;
        if let Some(g) = self.global_seqs() {
            // RESTART is the only change that clears `is_called` (kept set in this mode).
            let restart = (!new.is_called).then_some(new.last);
            g.alter(key, &new.def(), restart)?;
            new.is_called = true;
        }
        let rec = new.record(key, new.last, new.is_called);
        self.seq_write(&mut new, &rec)?;
        *s = new;
        Ok(())
    }

    fn ssi(&self) -> MutexGuard<'_, SsiState> {
        self.ssi.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user relations `xid` has read and written so far, from its relation locks (the
    /// catalog and sequence tables excluded: DDL is serialized by locks).
    fn ssi_sets(
        &self,
        xid: u64,
    ) -> (
        std::collections::BTreeSet<u64>,
        std::collections::BTreeSet<u64>,
    ) {
        use pgxc_storage::mvcc::LockMode as L;
        let (mut r, mut w) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        for (rel, mode) in self.store.relation_locks(pgxc_common::Gxid(xid)) {
            if rel == self.catalog_rel || rel == self.seq_rel {
                continue;
            }
            match mode {
                L::AccessShare | L::RowShare => {
                    r.insert(rel.0);
                }
                L::Share | L::ShareUpdateExclusive => {}
                _ => {
                    w.insert(rel.0);
                }
            }
        }
        (r, w)
    }

    /// Note that serializable transaction `xid` (snapshot `snap`) runs (idempotent).
    pub(crate) fn ssi_register(&self, xid: u64, snap: &Snapshot) {
        self.ssi().active.entry(xid).or_insert_with(|| snap.clone());
    }

    /// The SSI check of serializable transaction `txn` about to commit (see [`SsiState`]): on
    /// success it is recorded as committed.
    ///
    /// Errors: 40001 when committing could make the serializable transactions' outcome differ
    /// from every serial order (the caller rolls `txn` back).
    pub(crate) fn ssi_commit(&self, txn: &Txn) -> Result<(), PgError> {
        let me = txn.xid().0;
        let snap = txn.snapshot().clone();
        let (reads, writes) = self.ssi_sets(me);
        let mut st = self.ssi();
        st.active.remove(&me);
        // Forget transactions that ended without telling (sessions dropped mid-block).
        let gone: Vec<u64> = st
            .active
            .keys()
            .copied()
            .filter(|x| {
                !matches!(
                    self.store.xid_status(pgxc_common::Gxid(*x)),
                    pgxc_storage::mvcc::XidStatus::InProgress
                )
            })
            .collect();
        for x in gone {
            st.active.remove(&x);
        }
        let mut in_edge = false;
        let mut out_to_committed = false;
        let mut in_of_pivot = false;
        for x in st.active.keys() {
            let (xr, _) = self.ssi_sets(*x);
            if !xr.is_disjoint(&writes) {
                in_edge = true;
            }
        }
        for c in &st.committed {
            if sees(&snap, c.xid) {
                continue;
            }
            if !c.reads.is_disjoint(&writes) {
                in_edge = true;
            }
            if !reads.is_disjoint(&c.writes) {
                out_to_committed = true;
                if c.pivot {
                    in_of_pivot = true;
                }
            }
        }
        if (in_edge && out_to_committed) || in_of_pivot {
            return Err(PgError::new(
                SqlState::SerializationFailure,
                "could not serialize access due to read/write dependencies among transactions",
            ));
        }
        st.committed.push(SsiCommitted {
            xid: me,
            reads,
            writes,
            pivot: out_to_committed,
        });
        // Keep only what an active serializable transaction may still be concurrent with.
        let SsiState { active, committed } = &mut *st;
        committed.retain(|c| active.values().any(|s| !sees(s, c.xid)));
        Ok(())
    }

    /// DROP SEQUENCE: forget `key` and delete its durable row. Returns whether it existed.
    ///
    /// Errors: the store's.
    pub(crate) fn drop_sequence(&self, key: &str) -> Result<bool, PgError> {
        let mut seqs = self.seqs();
        if !seqs.contains_key(key) {
            return Ok(false);
        }
        if let Some(g) = self.global_seqs() {
            g.drop(key)?;
        }
        let Some(s) = seqs.remove(key) else {
            return Ok(false);
        };
        if let Some(tid) = s.tid {
            let mut txn = self.begin(Isolation::ReadCommitted)?;
            match self.block_on(txn.delete(self.seq_rel, tid)) {
                Ok(_) => self.finish(txn, true)?,
                Err(e) => {
                    let _ = self.finish(txn, false);
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// A new session with PostgreSQL's default settings (TimeZone UTC, DateStyle ISO, MDY).
    pub fn session(self: &Arc<Engine>) -> Session {
        Session {
            engine: Arc::clone(self),
            state: TxState::Idle,
            gucs: BTreeMap::new(),
            local_gucs: BTreeMap::new(),
            pid: self
                .last_pid
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .wrapping_add(1),
            gucs_at_begin: None,
            lock_timeout: None,
            seqs: Arc::new(SessionSeqs {
                engine: Arc::clone(self),
                last: Mutex::new(HashMap::new()),
            }),
            prepared: HashMap::new(),
            cursors: HashMap::new(),
            declaring: false,
            cursor_tids: None,
            block_seqs: Vec::new(),
            rng: Arc::default(),
            directed: None,
            cancel: Arc::default(),
            notices: Vec::new(),
            rowsets: Default::default(),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn catalog_rel(&self) -> RelId {
        self.catalog_rel
    }

    /// Run a storage future to completion: on the engine's runtime in [`WaitMode::Block`]; in
    /// [`WaitMode::Restart`] by polling it once (storage then never waits: a wait comes back as
    /// the "would block" error, `pgxc_storage::mvcc::would_block`, and commits are written
    /// inline). Errors: the future's; XX000 if a future is still pending after its poll in
    /// restart mode (a storage path that waits without reporting it).
    pub(crate) fn block_on<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        #[cfg(not(madsim))]
        if let Some(rt) = &self.rt {
            return rt.block_on(f);
        }
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => Err(internal(
                "a storage operation would wait in restart mode without naming what it waits for",
            )),
        }
    }

    /// How this engine's statements wait for lock holders.
    pub fn wait_mode(&self) -> WaitMode {
        self.mode
    }

    /// Put a transaction this engine begins into the engine's wait mode.
    fn mode_txn(&self, mut txn: Txn) -> Txn {
        txn.set_report_waits(self.mode == WaitMode::Restart);
        txn
    }

    pub(crate) fn seqs(&self) -> MutexGuard<'_, HashMap<String, SeqState>> {
        self.seqs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequences outside this engine (the GTM's), when its transaction source has them.
    pub(crate) fn global_seqs(&self) -> Option<&dyn GlobalSequences> {
        self.source.as_ref().and_then(|s| s.sequences())
    }

    fn gtm(&self) -> MutexGuard<'_, GtmState> {
        self.gtm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh snapshot.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, PgError> {
        match &self.source {
            Some(src) => src.snapshot(),
            None => Ok(self.gtm().gtm.snapshot()),
        }
    }

    /// Begin a transaction with a fresh GXID (reserving a new block durably when needed).
    pub(crate) fn begin(&self, iso: Isolation) -> Result<Txn, PgError> {
        if let Some(src) = &self.source {
            let (x, snap) = src.begin()?;
            return match self.store.begin(x, iso, snap) {
                Ok(t) => Ok(self.mode_txn(t)),
                Err(e) => {
                    src.end(x, false);
                    Err(e)
                }
            };
        }
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
            Ok(t) => Ok(self.mode_txn(t)),
            Err(e) => {
                self.gtm().gtm.end(x);
                Err(e)
            }
        }
    }

    /// Commit (`commit = true`) or roll back `txn` and tell the GTM it ended.
    pub(crate) fn finish(&self, txn: Txn, commit: bool) -> Result<(), PgError> {
        self.finish_as(txn, commit, false)
    }

    /// [`Engine::finish`]; a `directed` transaction's GXID belongs to the coordinator directing
    /// it, which ends it at the GTM itself, so this engine reports nothing.
    pub(crate) fn finish_as(&self, txn: Txn, commit: bool, directed: bool) -> Result<(), PgError> {
        let x = txn.xid();
        let r = if commit {
            self.block_on(txn.commit()).map(|_| ())
        } else {
            txn.rollback();
            Ok(())
        };
        if directed {
            return r;
        }
        match &self.source {
            Some(src) => src.end(x, commit && r.is_ok()),
            None => self.gtm().gtm.end(x),
        }
        r
    }

    /// `PREPARE TRANSACTION gid`: the transaction's writes and locks become durable under `gid`
    /// and its GXID stays running (in every snapshot) until [`Engine::finish_prepared`].
    /// Errors: 42710 if `gid` is in use (the transaction is rolled back, as PostgreSQL).
    pub(crate) fn prepare(&self, txn: Txn, gid: &str, directed: bool) -> Result<(), PgError> {
        let x = txn.xid();
        // Held to the end: a fence cannot slip in between this check and the durable PREPARE.
        let fenced = self.fenced_gids.lock().unwrap_or_else(|p| p.into_inner());
        if fenced.iter().any(|g| g == gid) {
            drop(fenced);
            self.finish_as(txn, false, directed)?;
            return Err(PgError::new(
                SqlState::TransactionRollback,
                format!("transaction \"{gid}\" was already rolled back by its coordinator"),
            ));
        }
        if self.store.prepared_xacts().iter().any(|p| p.gid == gid) {
            self.finish_as(txn, false, directed)?;
            return Err(PgError::new(
                SqlState::DuplicateObject,
                format!("transaction identifier \"{gid}\" is already in use"),
            ));
        }
        let info = pgxc_storage::mvcc::PrepareInfo {
            prepared_at: clock_now(),
            owner: "postgres".into(),
            database: "postgres".into(),
        };
        match self.block_on(txn.prepare(gid, info)) {
            Ok(_) => Ok(()),
            Err(e) => {
                if !directed {
                    match &self.source {
                        Some(src) => src.end(x, false),
                        None => self.gtm().gtm.end(x),
                    }
                }
                Err(e)
            }
        }
    }

    /// `COMMIT PREPARED gid` (`commit`) / `ROLLBACK PREPARED gid`. Returns `false` if no
    /// transaction is prepared as `gid` here. With the local GTM its GXID then leaves the running
    /// set; in a cluster the coordinator tells the GTM.
    ///
    /// Errors: 58030 when the store is poisoned by an earlier failed write (also instead of
    /// `false`: the gid may be prepared on disk though not in memory), the store's write errors.
    pub fn finish_prepared(&self, gid: &str, commit: bool) -> Result<bool, PgError> {
        let _fenced = self.fenced_gids.lock().unwrap_or_else(|p| p.into_inner());
        self.finish_prepared_locked(gid, commit)
    }

    /// [`Engine::finish_prepared`] for a coordinator (the datanode protocol's `FinishPrepared`):
    /// a ROLLBACK PREPARED that finds no such gid also fences it, so a PREPARE TRANSACTION of that
    /// gid that arrives later (sent before the coordinator gave up on it, over another connection)
    /// is refused with 40000 instead of leaving a prepared transaction nobody will finish (the
    /// GTM has forgotten the gid by then). The last [`FENCED_GIDS`] fences are kept, in memory: a
    /// restart also drops every connection such a late PREPARE could come on.
    pub fn finish_prepared_fenced(&self, gid: &str, commit: bool) -> Result<bool, PgError> {
        let mut fenced = self.fenced_gids.lock().unwrap_or_else(|p| p.into_inner());
        let found = self.finish_prepared_locked(gid, commit)?;
        if !found && !commit && !fenced.iter().any(|g| g == gid) {
            if fenced.len() >= FENCED_GIDS {
                fenced.pop_front();
            }
            fenced.push_back(gid.to_string());
        }
        Ok(found)
    }

    fn finish_prepared_locked(&self, gid: &str, commit: bool) -> Result<bool, PgError> {
        let Some(p) = self
            .store
            .prepared_xacts()
            .into_iter()
            .find(|p| p.gid == gid)
        else {
            // A poisoned store's memory may have dropped a gid whose PREPARE reached the disk
            // anyway (issue 7, seed 83): "not found" would let the caller forget the decision.
            self.store.check_usable()?;
            return Ok(false);
        };
        if commit {
            self.block_on(self.store.commit_prepared(gid))?;
        } else {
            self.block_on(self.store.rollback_prepared(gid))?;
        }
        if self.source.is_none() {
            self.gtm().gtm.end(p.xid);
        }
        Ok(true)
    }

    /// The transactions prepared in this engine's store (`pg_prepared_xacts`).
    pub fn prepared_xacts(&self) -> Vec<pgxc_storage::mvcc::PreparedXact> {
        self.store.prepared_xacts()
    }

    /// Begin a transaction under a GXID and snapshot chosen elsewhere (a coordinator directing this
    /// datanode): nothing is registered with this engine's GTM; the director ends it.
    pub(crate) fn begin_directed(
        &self,
        xid: Gxid,
        iso: Isolation,
        snapshot: Snapshot,
    ) -> Result<Txn, PgError> {
        self.store
            .begin(xid, iso, snapshot)
            .map(|t| self.mode_txn(t))
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
    /// `SET LOCAL` values, consulted before `gucs` and dropped at the end of the transaction block.
    local_gucs: BTreeMap<String, String>,
    /// `pg_backend_pid()`: the session's number in its engine.
    pid: i32,
    /// The session settings when the open transaction block began: a rolled-back block undoes
    /// its `SET`s, as in PostgreSQL.
    gucs_at_begin: Option<BTreeMap<String, String>>,
    lock_timeout: Option<Duration>,
    seqs: Arc<SessionSeqs>,
    /// The session's random generator (`random()`, `setseed()`, `gen_random_uuid()`).
    rng: Arc<crate::funcs::SessionRng>,
    prepared: HashMap<String, (Vec<DataType>, Statement)>,
    cursors: HashMap<String, Cursor>,
    /// Set while DECLARE runs its query (the tids of its rows are recorded).
    declaring: bool,
    /// The tids the last cursor query recorded.
    cursor_tids: Option<(u64, Vec<Tid>)>,
    /// Sequences created in the open transaction block (dropped again if it rolls back).
    block_seqs: Vec<String>,
    /// Set while a coordinator directs this session (a datanode in a cluster): the GXID and
    /// snapshot its transaction and statements run under.
    directed: Option<Directed>,
    /// The running statement's cancel flag (cleared when a query string starts).
    cancel: Arc<std::sync::atomic::AtomicBool>,
    /// NOTICEs and WARNINGs of the last query string ([`Session::take_notices`]).
    notices: Vec<pgxc_common::error::Notice>,
    /// Session rowsets ([`Session::rowset_create`]); dropped when a transaction block ends.
    rowsets: crate::exec::rowset::Rowsets,
}

/// PostgreSQL's WARNING for COMMIT/ROLLBACK outside a transaction block.
fn no_transaction_warning() -> pgxc_common::error::Notice {
    pgxc_common::error::Notice::warning(
        SqlState::NoActiveSqlTransaction,
        "there is no transaction in progress",
    )
}

/// What a coordinator tells a datanode session: run the transaction as `gxid`, the next statement
/// under `snapshot` (Postgres-XC sent both with every statement).
#[derive(Clone, Debug, PartialEq)]
pub struct Directed {
    /// The global transaction's GXID (from the GTM).
    pub gxid: Gxid,
    /// The snapshot for the next statement (READ COMMITTED) or the transaction (REPEATABLE READ).
    pub snapshot: Snapshot,
}

/// A source of GXIDs and snapshots other than the engine's local GTM: the cluster's GTM, for an
/// engine that is a node of a cluster ([`Engine::open_with`]). Calls may block (they are network
/// round trips); errors are the GTM's (08006 when unreachable).
pub trait TxnSource: Send + Sync {
    /// A new GXID, registered as running, and a snapshot taken after it.
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError>;
    /// A fresh snapshot.
    fn snapshot(&self) -> Result<Snapshot, PgError>;
    /// `xid` ended (committed when `committed`); it leaves the running set.
    fn end(&self, xid: Gxid, committed: bool);
    /// Where sequence values live when not in this engine: `Some` for a coordinator's catalog
    /// engine whose sequences are the GTM's (Postgres-XC's global sequences), so `nextval` on
    /// any coordinator never repeats a value. The default, `None`, keeps them local.
    fn sequences(&self) -> Option<&dyn GlobalSequences> {
        None
    }
}

/// A sequence's parameters as the engine resolved them from CREATE/ALTER SEQUENCE (PostgreSQL's
/// defaults applied: bounds from the type and the sign of the increment, START from the bound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqDef {
    /// START WITH (what RESTART goes back to).
    pub start: i64,
    /// INCREMENT BY (non-zero).
    pub increment: i64,
    /// MINVALUE.
    pub min: i64,
    /// MAXVALUE.
    pub max: i64,
    /// CYCLE.
    pub cycle: bool,
}

/// Sequences kept outside the engine (the GTM's, through [`TxnSource::sequences`]). The engine
/// still keeps each sequence's definition in its catalog (it answers "does not exist" and checks
/// setval's bounds itself); values come from here. Keys are `schema.name`. Calls may block
/// (network round trips); errors are the GTM's (08006 unreachable, 42P01, 2200H, 22003).
///
/// `create`, `alter` and `drop` are called wherever the engine runs the DDL, including on the
/// catalogs that only mirror a DDL another coordinator ran; an implementation applies them to the
/// shared store only where the DDL originated.
pub trait GlobalSequences: Send + Sync {
    /// CREATE SEQUENCE `key` with `def` (its first `nextval` returns `def.start`).
    fn create(&self, key: &str, def: &SeqDef) -> Result<(), PgError>;
    /// ALTER SEQUENCE `key` to `def`; `restart` = RESTART [WITH n] (the next `nextval` returns it).
    fn alter(&self, key: &str, def: &SeqDef, restart: Option<i64>) -> Result<(), PgError>;
    /// DROP SEQUENCE `key` (no error when it is already gone).
    fn drop(&self, key: &str) -> Result<(), PgError>;
    /// `nextval(key)`.
    fn nextval(&self, key: &str) -> Result<i64, PgError>;
    /// `setval(key, value, is_called)`; returns `value`.
    fn setval(&self, key: &str, value: i64, is_called: bool) -> Result<i64, PgError>;
    /// The sequence's `(last_value, is_called)` as `SELECT * FROM seq` shows it.
    fn position(&self, key: &str) -> Result<(i64, bool), PgError>;
}

/// An open cursor: its materialized result and position (0 = before the first row, `len + 1`
/// = after the last), as PostgreSQL's portal positions.
struct Cursor {
    /// The DECLARE statement's text (`pg_cursors.statement`).
    statement: String,
    /// `pg_cursors.is_scrollable`.
    scrollable: bool,
    /// For a simple scan of one base table: its relation and each row's tid (`WHERE CURRENT OF`).
    tids: Option<(u64, Vec<Tid>)>,
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
        // Postgres-XC's pushdown switches (the coordinator reads them; see pgxc-coordinator).
        "enable_remotejoin" => "on",
        "enable_remotegroup" => "on",
        "enable_remotesort" => "on",
        "enable_remotelimit" => "on",
        "enable_seqscan" => "on",
        "enable_indexscan" => "on",
        "enable_hashjoin" => "on",
        "enable_mergejoin" => "on",
        "enable_nestloop" => "on",
        "enable_sort" => "on",
        "enable_hashagg" => "on",
        // The planner (crate::plan): route supported SELECTs through it; per-operator memory.
        "pgxc.use_planner" => "on",
        "pgxc.operator_memory_limit" => "1GB",
        "integer_datetimes" => "on",
        "lc_collate" => "C",
        "lc_ctype" => "C",
        "client_min_messages" => "notice",
        "bytea_output" => "hex",
        "default_transaction_deferrable" => "off",
        _ => return None,
    })
}

/// The session's settings as one statement sees them through `current_setting` / `set_config`:
/// a snapshot taken before the statement plus its own `set_config` calls, which the session
/// keeps only if the statement succeeds (as PostgreSQL rolls them back with a failed statement).
#[derive(Debug)]
struct StatementGucs {
    /// Effective values (session values overlaid with `SET LOCAL` ones).
    values: Mutex<BTreeMap<String, String>>,
    /// `set_config` calls: name, canonical value, is_local.
    changes: Mutex<Vec<(String, String, bool)>>,
    in_block: bool,
    pid: i32,
}

impl StatementGucs {
    fn new(s: &Session) -> StatementGucs {
        let mut values = s.gucs.clone();
        values.extend(s.local_gucs.iter().map(|(k, v)| (k.clone(), v.clone())));
        StatementGucs {
            values: Mutex::new(values),
            changes: Mutex::new(Vec::new()),
            in_block: s.in_transaction(),
            pid: s.pid,
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let get = |n: &str| {
            values
                .get(n)
                .cloned()
                .or_else(|| default_guc(n).map(str::to_string))
        };
        match name {
            "transaction_isolation" => {
                get("transaction_isolation").or_else(|| get("default_transaction_isolation"))
            }
            _ => get(name),
        }
    }
}

fn unknown_guc(name: &str) -> PgError {
    PgError::new(
        SqlState::UndefinedObject,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

impl crate::expr::SettingsSource for StatementGucs {
    fn get(&self, name: &str) -> Result<String, PgError> {
        let n = name.to_ascii_lowercase();
        self.lookup(&n).ok_or_else(|| unknown_guc(name))
    }

    fn set(&self, name: &str, value: &str, is_local: bool) -> Result<String, PgError> {
        let n = name.to_ascii_lowercase();
        if default_guc(&n).is_none() && !n.contains('.') {
            return Err(unknown_guc(&n));
        }
        let v = check_guc(&n, value, self.lookup(&n).as_deref())?;
        if !is_local || self.in_block {
            self.values
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(n.clone(), v.clone());
            self.changes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((n, v.clone(), is_local));
        }
        Ok(v)
    }

    fn backend_pid(&self) -> i32 {
        self.pid
    }
}

/// Check a new value for setting `name` and return it as SHOW prints it (`current`: the value
/// before, which `DateStyle` builds on). Mirrors PostgreSQL's check hooks for the settings whose
/// values the engine interprets; others are stored as given.
///
/// Errors: 22023 `invalid value for parameter` (time zones, DateStyle, IntervalStyle, integer
/// settings out of range), 22P02-style bad numbers are reported as 22023 like PostgreSQL's GUC code.
fn check_guc(name: &str, v: &str, current: Option<&str>) -> Result<String, PgError> {
    let invalid = |what: &str| {
        PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"{what}\": \"{v}\""),
        )
    };
    Ok(match name {
        "timezone" => {
            Zone::from_setting(v)?;
            v.to_string()
        }
        "datestyle" => {
            let cur = current
                .and_then(|c| dt::parse_date_style(c, Default::default()).ok())
                .unwrap_or_default();
            let (f, o) = dt::parse_date_style(v, cur)?;
            dt::date_style_name(f, o)
        }
        "intervalstyle" => dt::interval_style_name(dt::parse_interval_style(v)?).to_string(),
        "extra_float_digits" => {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| invalid("extra_float_digits"))?;
            if !(-15..=3).contains(&n) {
                return Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!(
                        "{n} is outside the valid range for parameter \"extra_float_digits\" (-15 .. 3)"
                    ),
                ));
            }
            n.to_string()
        }
        _ => v.to_string(),
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

    /// Direct this session's transactions from a coordinator (a datanode in a cluster), or stop
    /// (`None`). While directed, `BEGIN` opens the local transaction as `d.gxid` under
    /// `d.snapshot`, and each READ COMMITTED statement runs under the snapshot most recently given
    /// here; the local GTM is not involved. Call again before each statement with its snapshot.
    pub fn direct(&mut self, d: Option<Directed>) {
        self.directed = d;
    }

    /// The definition of table `name` (folded; `schema` given or search_path applied) as the open
    /// transaction block sees the catalog, or `None`. Errors: 25P01 outside a transaction block.
    pub fn table_def(
        &mut self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Option<crate::catalog::TableDef>, PgError> {
        let tz = self.time_zone();
        let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
        let engine = Arc::clone(&self.engine);
        let TxState::InBlock(b) = &mut self.state else {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                "there is no transaction in progress",
            ));
        };
        Exec::new(&engine, &mut b.txn, tz, b.start, seqs).lookup_table(schema, name)
    }

    /// Insert `rows` of typed values into `table` without SQL text: PostgreSQL's
    /// `INSERT INTO table (columns) VALUES ...` with each value given as a literal of its own type.
    /// `table` is named as SQL names it (`t`, `public.t`, `"T"`; search_path applies); `columns`
    /// are SQL identifiers giving each row's value order (empty: the table's columns in order, a
    /// short row's remaining columns defaulted). Omitted columns get their defaults
    /// (serial/identity/`DEFAULT`); values convert with the assignment cast (a `Value::Text` is an
    /// untyped literal parsed by the column type's input function; see `exec/load.rs`); NOT NULL,
    /// CHECK, unique and foreign keys are checked as INSERT checks them. Runs as one statement of
    /// the open transaction block (an error fails the block: 25P02 next), or in an implicit
    /// transaction of its own when none is open. Returns the number of rows inserted.
    ///
    /// Errors: 42P01, 42703, 42701, 42601 (more values than columns), 22P02 and the other input
    /// errors, 42804, 23502, 23514, 23505, 23503, 428C9, 25P02 in a failed block, 25006 read-only.
    pub fn insert_values(
        &mut self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, PgError> {
        self.load_values(table, columns, rows, crate::exec::load::LoadMode::Insert)
    }

    /// Run `f` as one statement of the open transaction block (a `write` in a read-only block is
    /// 25006): READ COMMITTED takes the statement's snapshot, the session's search_path and
    /// settings apply, deferred FOREIGN KEYs wait for COMMIT, and an error fails the block.
    /// Errors: 25P01 outside a block, 25P02 in a failed block, `f`'s.
    pub(crate) fn with_block_exec<T>(
        &mut self,
        write: bool,
        f: impl FnOnce(&Exec<'_>) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let tz = self.time_zone();
        let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
        let engine = Arc::clone(&self.engine);
        let search_path = self.guc("search_path").unwrap_or_default();
        let serializable = self.guc("transaction_isolation").as_deref() == Some("serializable");
        let settings = Arc::new(StatementGucs::new(self));
        let (rng, cancel) = (Arc::clone(&self.rng), Arc::clone(&self.cancel));
        let directed = self.directed.as_ref().map(|d| d.snapshot.clone());
        let TxState::InBlock(b) = &mut self.state else {
            return Err(PgError::new(
                SqlState::NoActiveSqlTransaction,
                "there is no transaction in progress",
            ));
        };
        if b.failed {
            return Err(PgError::new(
                SqlState::InFailedSqlTransaction,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        if b.read_only && write {
            b.failed = true;
            return Err(PgError::new(
                SqlState::ReadOnlySqlTransaction,
                "cannot execute statement in a read-only transaction",
            ));
        }
        let r = (|| {
            if b.iso == Isolation::ReadCommitted {
                b.txn.set_snapshot(match directed {
                    Some(s) => s,
                    None => engine.snapshot()?,
                })?;
            }
            b.statements += 1;
            if serializable {
                engine.ssi_register(b.txn.xid().0, b.txn.snapshot());
            }
            let exec = Exec::new(&engine, &mut b.txn, tz, b.start, seqs)
                .with_settings(settings)
                .with_search_path(&search_path)
                .with_rng(rng)
                .with_cancel(cancel);
            let r = f(&exec);
            let mut deferred = exec.deferred.take();
            drop(exec);
            let r = r?;
            b.deferred.append(&mut deferred);
            b.txn.next_command()?;
            Ok(r)
        })();
        if r.is_err() {
            b.failed = true;
        }
        r
    }

    /// The flag that cancels the running statement (PostgreSQL's CancelRequest, `statement_timeout`):
    /// set it from any thread; the statement fails with 57014 at its next check (between batches
    /// of the streaming executor). `execute` clears it when a query string starts.
    pub fn cancel_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// The NOTICEs and WARNINGs the last query string reported (PostgreSQL's NoticeResponse
    /// messages: `table "t" does not exist, skipping`, `there is no transaction in progress`,
    /// ...), in order, leaving none behind. `execute` starts every query string with none.
    pub fn take_notices(&mut self) -> Vec<pgxc_common::error::Notice> {
        std::mem::take(&mut self.notices)
    }

    /// `statement_timeout` as set (`0` or unset: `None`). PostgreSQL's units: a bare number is
    /// milliseconds; `us`, `ms`, `s`, `min`, `h`, `d` suffixes are accepted.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let v = self.guc("statement_timeout")?;
        let v = v.trim();
        let split = v
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(v.len());
        let (num, unit) = v.split_at(split);
        let n: f64 = num.parse().ok()?;
        let ms = match unit.trim() {
            "" | "ms" => n,
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            "min" => n * 60_000.0,
            "h" => n * 3_600_000.0,
            "d" => n * 86_400_000.0,
            _ => return None,
        };
        (ms >= 1.0).then(|| Duration::from_micros((ms * 1000.0) as u64))
    }

    /// Whether the open transaction block has written anything (a two-phase commit participant).
    pub fn has_written(&self) -> bool {
        matches!(&self.state, TxState::InBlock(b) if b.txn.has_written())
    }

    /// The committed transactions whose updates or deletes the open transaction block followed
    /// under READ COMMITTED (`pgxc_storage::mvcc::Txn::followed`); empty outside a block.
    pub fn followed(&self) -> Vec<pgxc_common::Gxid> {
        match &self.state {
            TxState::InBlock(b) => b.txn.followed().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Whether the session is inside a transaction block.
    pub fn in_transaction(&self) -> bool {
        matches!(self.state, TxState::InBlock(_))
    }

    fn guc(&self, name: &str) -> Option<String> {
        self.local_gucs
            .get(name)
            .or_else(|| self.gucs.get(name))
            .cloned()
            .or_else(|| default_guc(name).map(str::to_string))
    }

    /// The settings that text I/O of values depends on: `TimeZone`, `DateStyle`, `IntervalStyle`
    /// and `extra_float_digits` (without a transaction time; statements add theirs).
    pub fn time_zone(&self) -> TimeZone {
        let mut st = TimeZone::default();
        if let Some(z) = self
            .guc("timezone")
            .and_then(|s| Zone::from_setting(&s).ok())
        {
            st.zone = z;
        }
        if let Some(v) = self.guc("datestyle") {
            if let Ok((f, o)) = dt::parse_date_style(&v, (st.date_format, st.date_order)) {
                st.date_format = f;
                st.date_order = o;
            }
        }
        if let Some(v) = self.guc("intervalstyle") {
            st.interval_style = dt::parse_interval_style(&v).unwrap_or_default();
        }
        if let Some(v) = self.guc("extra_float_digits") {
            st.extra_float_digits = v.trim().parse().unwrap_or(1);
        }
        st
    }

    /// Run `sql` (one or more statements) with simple-query semantics: statements in order, each
    /// result in order; the first error stops the rest and is returned (the results before it are
    /// dropped, like a client that only sees the ErrorResponse).
    ///
    /// Errors: 42601 for syntax errors (nothing runs), any statement's error, 25P02 in a failed
    /// transaction block.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        self.cancel
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.notices.clear();
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

    /// [`Session::execute`] for an engine in [`WaitMode::Restart`], on an async task instead of a
    /// thread: same semantics and results, but where a statement would wait for a lock holder it
    /// is rolled back to its start (an internal savepoint inside a block; the whole implicit
    /// transaction outside one), this future awaits the holder's end
    /// (`Store::wait_until_ended`, with the session's `lock_timeout` and deadlock detection for
    /// the waiting transaction) and the statement runs again. Transaction-control statements
    /// (BEGIN, COMMIT, PREPARE TRANSACTION, ...) run once, as in `execute`. In
    /// [`WaitMode::Block`] this is `execute` (it blocks the calling thread while it waits).
    ///
    /// Errors: as `execute`; 40P01 if the wait closes a cycle, 55P03 on `lock_timeout`, 57014 if
    /// the session was cancelled between attempts (each fails the transaction block).
    pub async fn execute_async(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        self.cancel
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.notices.clear();
        let stmts = match parser::parse(sql) {
            Ok(s) => s,
            Err(e) => {
                self.fail_block();
                return Err(e);
            }
        };
        let mut out = Vec::new();
        for s in stmts {
            out.push(self.execute_one_restarting(s).await?);
        }
        Ok(out)
    }

    /// One statement of [`Session::execute_async`]: run, and on "would block" undo, wait, rerun.
    async fn execute_one_restarting(&mut self, stmt: Statement) -> Result<QueryResult, PgError> {
        if matches!(stmt, Statement::Transaction(_)) || self.engine.mode != WaitMode::Restart {
            return self.execute_one(stmt);
        }
        loop {
            let mark = match &self.state {
                TxState::InBlock(b) if !b.failed => Some((b.txn.savepoint(), b.statements)),
                _ => None,
            };
            let r = self.execute_one(stmt.clone());
            let Some(holder) = r.as_ref().err().and_then(pgxc_storage::mvcc::would_block) else {
                return r;
            };
            let waiter = match (&mut self.state, mark) {
                (TxState::InBlock(b), Some((sp, statements))) => {
                    if let Err(e) = b.txn.rollback_to(&sp) {
                        b.failed = true;
                        return Err(e);
                    }
                    b.failed = false;
                    b.statements = statements;
                    Some(b.txn.xid())
                }
                // The statement opened or ended the block: nothing to restart.
                (TxState::InBlock(_), None) => return r,
                // The implicit transaction is already rolled back; it holds nothing.
                (TxState::Idle, _) => None,
            };
            if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                self.fail_block();
                return Err(PgError::new(
                    SqlState::QueryCanceled,
                    "canceling statement due to user request",
                ));
            }
            if let Err(e) = self
                .engine
                .store
                .wait_until_ended(waiter, holder, self.lock_timeout)
                .await
            {
                self.fail_block();
                return Err(e);
            }
        }
    }

    /// Create session rowset `name`: an in-memory, read-only relation of `columns` (name, type)
    /// that this session's queries see by its bare name wherever a table name may appear, before
    /// any table of that name (a CTE of the name still wins), like PostgreSQL's ephemeral named
    /// relations. `name` and the column names are matched exactly, as quoted identifiers (use
    /// lower case to refer to them unquoted). No storage is written and no SQL text is parsed.
    ///
    /// Lifetime: every rowset of the session is dropped when a transaction block ends (COMMIT,
    /// END, ROLLBACK, ABORT, PREPARE TRANSACTION); statements outside a block do not drop them,
    /// so a rowset created outside a block lives until [`Session::rowset_drop`] or the end of
    /// the next block.
    ///
    /// Errors: 42P07 a rowset `name` exists in this session, 42601 `columns` is empty, 42602
    /// `name` is empty, 42701 a column name repeats.
    pub fn rowset_create(
        &mut self,
        name: &str,
        columns: Vec<(String, DataType)>,
    ) -> Result<(), PgError> {
        self.rowsets.create(name, columns)
    }

    /// Append `rows` to rowset `name` (all or nothing); each row has one value per column, in
    /// the engine's representation of the column's type, or a value PostgreSQL assigns to it
    /// (an assignment cast, as INSERT applies: `int4` into `int8`, typmods of `varchar(n)` /
    /// `numeric(p,s)`). Returns the rowset's row count after appending.
    ///
    /// Errors: 42P01 no rowset `name`, 22P04 a row with the wrong number of values (COPY's
    /// missing/extra data), 42804 a value with no assignment cast to its column's type, 22001 /
    /// 22003 a value too long or out of range for the column's typmod.
    pub fn rowset_append(&mut self, name: &str, rows: Vec<Vec<Value>>) -> Result<u64, PgError> {
        let tz = self.time_zone();
        self.rowsets.append(name, rows, &tz)
    }

    /// Drop rowset `name`; whether it existed.
    pub fn rowset_drop(&mut self, name: &str) -> bool {
        self.rowsets.drop_one(name)
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
            let in_block = self.in_transaction();
            let gucs_before = (!in_block).then(|| self.gucs.clone());
            let r = self.transaction(t.clone());
            if !in_block && self.in_transaction() {
                self.gucs_at_begin = gucs_before;
            }
            if in_block && !self.in_transaction() {
                let committed = matches!(&r, Ok(q) if q.tag != "ROLLBACK");
                self.end_block_seqs(committed);
                self.end_block_settings(committed);
                self.rowsets.clear();
            }
            return r;
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
                    ResetTarget::All => {
                        self.gucs.clear();
                        self.local_gucs.clear();
                    }
                    ResetTarget::Variable(v) => {
                        let v = v.to_ascii_lowercase();
                        self.gucs.remove(&v);
                        self.local_gucs.remove(&v);
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
        let current_of = match self.current_of(&stmt) {
            Ok(c) => c,
            Err(e) => {
                self.fail_block();
                return Err(e);
            }
        };
        let views = self.session_views();
        let serializable = self.guc("transaction_isolation").as_deref() == Some("serializable");
        let declaring = std::mem::take(&mut self.declaring);
        let mut cursor_tids = None;
        let mut created_seqs: Vec<String> = Vec::new();
        let mut notices = Vec::new();
        let tz = self.time_zone();
        let engine = Arc::clone(&self.engine);
        let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
        let mut deferred = Vec::new();
        let search_path = self.guc("search_path").unwrap_or_default();
        let rng = Arc::clone(&self.rng);
        let cancel = Arc::clone(&self.cancel);
        let settings = Arc::new(StatementGucs::new(self));
        let rowsets = self.rowsets.clone();
        let mut run = |exec: Exec<'_>| -> Result<QueryResult, PgError> {
            let exec = exec
                .with_rowsets(rowsets.clone())
                .with_settings(settings.clone())
                .with_search_path(&search_path)
                .with_rng(Arc::clone(&rng))
                .with_cancel(Arc::clone(&cancel))
                .with_views(views.clone())
                .with_current_of(current_of.clone());
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
            let r = match &stmt {
                Statement::Sql(sqlparser::ast::Statement::Query(q)) if declaring => {
                    exec.cursor_query(q).map(|(r, tids)| {
                        cursor_tids = tids;
                        r
                    })
                }
                _ => exec.run(&stmt),
            };
            created_seqs.extend(exec.created_seqs.take());
            notices.extend(exec.notices.take());
            let r = r?;
            deferred = exec.deferred.take();
            Ok(r)
        };
        let result = match &mut self.state {
            TxState::InBlock(b) => {
                if b.read_only && is_write(&stmt) {
                    b.failed = true;
                    return Err(PgError::new(
                        SqlState::ReadOnlySqlTransaction,
                        "cannot execute statement in a read-only transaction",
                    ));
                }
                if b.iso == Isolation::ReadCommitted {
                    let snap = match &self.directed {
                        Some(d) => d.snapshot.clone(),
                        None => engine.snapshot()?,
                    };
                    b.txn.set_snapshot(snap)?;
                }
                b.statements += 1;
                if serializable {
                    engine.ssi_register(b.txn.xid().0, b.txn.snapshot());
                }
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
        };
        self.cursor_tids = cursor_tids;
        self.notices.append(&mut notices);
        // Sequences are created at once (non-transactionally); one whose creating transaction
        // rolls back is dropped again, as PostgreSQL's CREATE SEQUENCE is transactional.
        if self.in_transaction() {
            self.block_seqs.append(&mut created_seqs);
        } else if result.is_err() {
            for k in created_seqs {
                let _ = self.engine.drop_sequence(&k);
            }
        }
        if result.is_ok() {
            self.apply_statement_gucs(&settings)?;
        }
        result
    }

    /// The end of a transaction block: forget the sequences it created if it committed, drop
    /// them if it rolled back.
    fn end_block_seqs(&mut self, committed: bool) {
        for k in std::mem::take(&mut self.block_seqs) {
            if !committed {
                let _ = self.engine.drop_sequence(&k);
            }
        }
    }

    /// What `pg_cursors` and `pg_prepared_statements` show for this session.
    fn session_views(&self) -> crate::exec::SessionViews {
        let mut cursors: Vec<_> = self
            .cursors
            .iter()
            .map(|(n, c)| (n.clone(), c.statement.clone(), c.hold, false, c.scrollable))
            .collect();
        cursors.sort();
        let mut prepared: Vec<_> = self
            .prepared
            .iter()
            .map(|(n, (types, st))| {
                let text = match st {
                    Statement::Sql(s) => format!("PREPARE {n} AS {s}"),
                    _ => format!("PREPARE {n}"),
                };
                (n.clone(), text, types.clone())
            })
            .collect();
        prepared.sort_by(|a, b| a.0.cmp(&b.0));
        crate::exec::SessionViews { cursors, prepared }
    }

    /// For `UPDATE/DELETE ... WHERE CURRENT OF c` (the parser's `pgxc_current_of('c')`): the
    /// cursor's position. Errors: 34000 if there is no such cursor.
    fn current_of(
        &self,
        stmt: &Statement,
    ) -> Result<Option<(String, crate::exec::CursorPos)>, PgError> {
        use sqlparser::ast::{self as a, Statement as S};
        let sel = match stmt {
            Statement::Sql(S::Update(u)) => u.selection.as_ref(),
            Statement::Sql(S::Delete(d)) => d.selection.as_ref(),
            _ => None,
        };
        let Some(a::Expr::Function(f)) = sel else {
            return Ok(None);
        };
        if !f.name.to_string().eq_ignore_ascii_case("pgxc_current_of") {
            return Ok(None);
        }
        let name = match &f.args {
            a::FunctionArguments::List(l) => match l.args.first() {
                Some(a::FunctionArg::Unnamed(a::FunctionArgExpr::Expr(a::Expr::Value(v)))) => {
                    match &v.value {
                        a::Value::SingleQuotedString(s) => s.clone(),
                        _ => String::new(),
                    }
                }
                _ => String::new(),
            },
            _ => String::new(),
        };
        let c = self.cursors.get(&name).ok_or_else(|| {
            PgError::new(
                SqlState::InvalidCursorName,
                format!("cursor \"{name}\" does not exist"),
            )
        })?;
        let pos = match &c.tids {
            None => crate::exec::CursorPos::NotUpdatable,
            Some((rel, tids)) => match usize::try_from(c.pos - 1).ok().and_then(|i| tids.get(i)) {
                Some(t) => crate::exec::CursorPos::Row(*rel, *t),
                None => crate::exec::CursorPos::NotPositioned,
            },
        };
        Ok(Some((name, pos)))
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
                    self.notices.push(pgxc_common::error::Notice::warning(
                        SqlState::ActiveSqlTransaction,
                        "there is already a transaction in progress",
                    ));
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
                let mut txn = match &self.directed {
                    Some(d) => self
                        .engine
                        .begin_directed(d.gxid, iso, d.snapshot.clone())?,
                    None => self.engine.begin(iso)?,
                };
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
                let serializable =
                    self.guc("transaction_isolation").as_deref() == Some("serializable");
                self.end_block_gucs();
                match std::mem::replace(&mut self.state, TxState::Idle) {
                    TxState::Idle => {
                        self.notices.push(no_transaction_warning());
                        Ok(QueryResult::command("COMMIT"))
                    }
                    TxState::InBlock(mut b) => {
                        if b.failed {
                            self.engine
                                .finish_as(b.txn, false, self.directed.is_some())?;
                            Ok(QueryResult::command("ROLLBACK"))
                        } else {
                            if let Err(e) = self.before_commit(&mut b, serializable) {
                                self.engine
                                    .finish_as(b.txn, false, self.directed.is_some())?;
                                return Err(e);
                            }
                            self.engine
                                .finish_as(b.txn, true, self.directed.is_some())?;
                            Ok(QueryResult::command("COMMIT"))
                        }
                    }
                }
            }
            TransactionStmt::Rollback { .. } => {
                self.end_block_gucs();
                match std::mem::replace(&mut self.state, TxState::Idle) {
                    TxState::InBlock(b) => {
                        self.engine
                            .finish_as(b.txn, false, self.directed.is_some())?;
                    }
                    TxState::Idle => self.notices.push(no_transaction_warning()),
                }
                Ok(QueryResult::command("ROLLBACK"))
            }
            TransactionStmt::Savepoint(ref name)
            | TransactionStmt::Release(ref name)
            | TransactionStmt::RollbackTo(ref name) => self.savepoint_stmt(&t, name),
            TransactionStmt::PrepareTransaction(gid) => {
                let serializable =
                    self.guc("transaction_isolation").as_deref() == Some("serializable");
                self.end_block_gucs();
                match std::mem::replace(&mut self.state, TxState::Idle) {
                    // PostgreSQL: a WARNING (25P01), and the tag says ROLLBACK.
                    TxState::Idle => Ok(QueryResult::command("ROLLBACK")),
                    TxState::InBlock(b) if b.failed => {
                        self.engine
                            .finish_as(b.txn, false, self.directed.is_some())?;
                        Ok(QueryResult::command("ROLLBACK"))
                    }
                    TxState::InBlock(mut b) => {
                        // SSI: PREPARE is the point of no return (a prepared transaction counts
                        // as committed; a later ROLLBACK PREPARED only costs false positives).
                        if let Err(e) = self.before_commit(&mut b, serializable) {
                            self.engine
                                .finish_as(b.txn, false, self.directed.is_some())?;
                            return Err(e);
                        }
                        self.engine.prepare(b.txn, &gid, self.directed.is_some())?;
                        Ok(QueryResult::command("PREPARE TRANSACTION"))
                    }
                }
            }
            TransactionStmt::CommitPrepared(ref gid)
            | TransactionStmt::RollbackPrepared(ref gid) => {
                let commit = matches!(t, TransactionStmt::CommitPrepared(_));
                let what = if commit {
                    "COMMIT PREPARED"
                } else {
                    "ROLLBACK PREPARED"
                };
                if self.in_transaction() {
                    self.fail_block();
                    return Err(PgError::new(
                        SqlState::ActiveSqlTransaction,
                        format!("{what} cannot run inside a transaction block"),
                    ));
                }
                if !self.engine.finish_prepared(gid, commit)? {
                    return Err(PgError::new(
                        SqlState::UndefinedObject,
                        format!("prepared transaction with identifier \"{gid}\" does not exist"),
                    ));
                }
                Ok(QueryResult::command(what))
            }
        }
    }

    /// What COMMIT and PREPARE TRANSACTION check before the transaction may end well: deferred
    /// foreign keys, then (SERIALIZABLE) the SSI pivot rule. An error means the caller rolls back.
    fn before_commit(&self, b: &mut Block, serializable: bool) -> Result<(), PgError> {
        if !b.deferred.is_empty() {
            let tz = self.time_zone();
            let seqs: Arc<dyn SequenceSource> = self.seqs.clone();
            b.txn.next_command()?;
            Exec::new(&self.engine, &mut b.txn, tz, b.start, seqs).check_deferred(&b.deferred)?;
        }
        if serializable {
            self.engine.ssi_commit(&b.txn)?;
        }
        Ok(())
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
        self.declaring = true;
        self.cursor_tids = None;
        let r = self.execute_one(Statement::Sql(sqlparser::ast::Statement::Query(q.clone())));
        self.declaring = false;
        let r = r?;
        self.cursors.insert(
            name,
            Cursor {
                statement: format!("DECLARE {d}"),
                scrollable: d.scroll != Some(false),
                tids: self.cursor_tids.take(),
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
        self.local_gucs.clear();
        self.cursors.retain(|_, c| c.hold);
        self.gucs.remove("transaction_isolation");
        self.gucs.remove("transaction_read_only");
    }

    fn set(&mut self, s: Set) -> Result<QueryResult, PgError> {
        match s {
            Set::Variable { name, value, local } => {
                let name = name.to_ascii_lowercase();
                let value = match value {
                    SetValue::Default => None,
                    SetValue::Values(vals) => Some(vals.join(", ")),
                };
                self.set_guc(&name, value.as_deref(), local)?;
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

    /// At the end of a transaction block: a rolled-back block's `SET`s are undone.
    fn end_block_settings(&mut self, committed: bool) {
        if let Some(before) = self.gucs_at_begin.take() {
            if !committed {
                self.gucs = before;
            }
        }
    }

    /// Keep what `set_config` did during a statement that succeeded.
    fn apply_statement_gucs(&mut self, g: &StatementGucs) -> Result<(), PgError> {
        let changes = std::mem::take(&mut *g.changes.lock().unwrap_or_else(|p| p.into_inner()));
        for (name, value, local) in changes {
            self.set_guc(&name, Some(&value), local)?;
        }
        Ok(())
    }

    /// `SET [LOCAL] name = value` (`None`: `DEFAULT`): checks the value as PostgreSQL would and
    /// stores it in its canonical form. `SET LOCAL` outside a transaction block has no effect, as
    /// in PostgreSQL (which warns). Errors: 42704 unknown parameter, 22023 / 22P02 bad value.
    fn set_guc(&mut self, name: &str, value: Option<&str>, local: bool) -> Result<(), PgError> {
        if default_guc(name).is_none() && !name.contains('.') {
            return Err(PgError::new(
                SqlState::UndefinedObject,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
        let value = match value {
            Some(v) => Some(check_guc(name, v, self.guc(name).as_deref())?),
            None => None,
        };
        if local {
            if !self.in_transaction() {
                return Ok(());
            }
            let v = value
                .or_else(|| self.gucs.get(name).cloned())
                .or_else(|| default_guc(name).map(str::to_string))
                .unwrap_or_default();
            self.local_gucs.insert(name.to_string(), v);
            return Ok(());
        }
        self.local_gucs.remove(name);
        match value {
            Some(v) => {
                self.gucs.insert(name.to_string(), v);
            }
            None => {
                self.gucs.remove(name);
            }
        }
        Ok(())
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
            let _ = self.engine.finish_as(b.txn, false, self.directed.is_some());
            self.end_block_seqs(false);
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
    fn sequences_never_reissue_values_across_crashes() {
        use rand::SeedableRng;
        for seed in 0..6u64 {
            let sim = SimDisk::new();
            let mut handed_out = Vec::new();
            {
                let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
                let mut s = e.session();
                one(&mut s, "CREATE SEQUENCE sq");
                for _ in 0..(40 + seed * 7) {
                    let r = one(&mut s, "SELECT nextval('sq')");
                    let Value::Int8(v) = r.rows[0][0] else {
                        panic!("nextval returned {:?}", r.rows[0][0]);
                    };
                    handed_out.push(v);
                }
                // Power loss: whatever was not synced may be lost or torn.
                sim.crash(&mut rand::rngs::StdRng::seed_from_u64(seed));
            }
            let max = handed_out.iter().copied().max().unwrap();
            let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
            let mut s = e.session();
            let r = one(&mut s, "SELECT nextval('sq')");
            let Value::Int8(next) = r.rows[0][0] else {
                panic!("nextval returned {:?}", r.rows[0][0]);
            };
            assert!(
                next > max,
                "seed {seed}: nextval reissued {next} (handed out up to {max})"
            );
        }
    }

    #[test]
    fn sequences_never_reissue_values_across_restarts() {
        let sim = SimDisk::new();
        let mut handed_out = Vec::new();
        {
            let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
            let mut s = e.session();
            one(&mut s, "CREATE SEQUENCE sq");
            one(&mut s, "CREATE TABLE ts (id serial, v text)");
            for _ in 0..40 {
                let r = one(&mut s, "SELECT nextval('sq')");
                handed_out.push(r.rows[0][0].clone());
            }
            one(&mut s, "INSERT INTO ts (v) VALUES ('a'), ('b'), ('c')");
            // Dropped without a clean shutdown: only what was logged survives.
        }
        let max = handed_out
            .iter()
            .map(|v| match v {
                Value::Int8(n) => *n,
                other => panic!("nextval returned {other:?}"),
            })
            .max()
            .unwrap();
        assert_eq!(max, 40);
        let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
        let mut s = e.session();
        let r = one(&mut s, "SELECT nextval('sq')");
        let Value::Int8(next) = r.rows[0][0] else {
            panic!("nextval returned {:?}", r.rows[0][0]);
        };
        assert!(
            next > max,
            "nextval reissued {next} (had handed out up to {max})"
        );
        // PostgreSQL skips at most SEQ_LOG_VALS values after a crash.
        assert!(
            next <= max + i64::from(SEQ_LOG_VALS) + 1,
            "skipped too far: {next}"
        );
        // The serial column's sequence survived too and continues past 3.
        one(&mut s, "INSERT INTO ts (v) VALUES ('d')");
        let r = one(&mut s, "SELECT id FROM ts WHERE v = 'd'");
        let Value::Int4(id) = r.rows[0][0] else {
            panic!("id is {:?}", r.rows[0][0]);
        };
        assert!(id > 3, "serial reissued {id}");
        // setval and ALTER SEQUENCE .. RESTART are durable as well.
        one(&mut s, "SELECT setval('sq', 500)");
        drop(s);
        drop(e);
        let e = Engine::open(&Disk::sim(sim.clone()), "t.redb").unwrap();
        let mut s = e.session();
        assert_eq!(
            one(&mut s, "SELECT nextval('sq')").rows,
            vec![vec![Value::Int8(501)]]
        );
        one(&mut s, "ALTER SEQUENCE sq RESTART WITH 7");
        drop(s);
        drop(e);
        let e = Engine::open(&Disk::sim(sim), "t.redb").unwrap();
        let mut s = e.session();
        assert_eq!(
            one(&mut s, "SELECT nextval('sq')").rows,
            vec![vec![Value::Int8(7)]]
        );
        one(&mut s, "DROP SEQUENCE sq");
        assert_eq!(
            s.execute("SELECT nextval('sq')").unwrap_err().code,
            SqlState::UndefinedTable
        );
    }

    #[test]
    fn sequences_of_rolled_back_transactions_are_dropped() {
        let e = Engine::open(&Disk::sim(SimDisk::new()), "t.redb").unwrap();
        let mut s = e.session();
        one(&mut s, "BEGIN");
        one(&mut s, "CREATE TABLE t (id serial, v text)");
        one(&mut s, "CREATE SEQUENCE s1");
        one(&mut s, "ROLLBACK");
        // Neither the serial column's sequence nor s1 survived: both can be created again.
        one(&mut s, "CREATE TABLE t (id serial, v text)");
        one(&mut s, "CREATE SEQUENCE s1");
        one(&mut s, "INSERT INTO t (v) VALUES ('a')");
        let r = one(&mut s, "SELECT id FROM t");
        assert_eq!(r.rows, vec![vec![Value::Int4(1)]]);
        // A committed block keeps its sequences.
        one(&mut s, "BEGIN");
        one(&mut s, "CREATE SEQUENCE s2");
        one(&mut s, "COMMIT");
        assert_eq!(
            one(&mut s, "SELECT nextval('s2')").rows,
            vec![vec![Value::Int8(1)]]
        );
    }

    #[test]
    fn serializable_write_skew_fails_at_commit() {
        let e = Engine::open(&Disk::sim(SimDisk::new()), "t.redb").unwrap();
        let (mut s1, mut s2) = (e.session(), e.session());
        one(&mut s1, "CREATE TABLE oncall (doc text, on_duty boolean)");
        one(&mut s1, "CREATE TABLE other (x int)");
        one(
            &mut s1,
            "INSERT INTO oncall VALUES ('a', true), ('b', true)",
        );
        // Disjoint relations: no rw-antidependency, both commit.
        one(&mut s1, "BEGIN ISOLATION LEVEL SERIALIZABLE");
        one(&mut s2, "BEGIN ISOLATION LEVEL SERIALIZABLE");
        one(&mut s1, "SELECT count(*) FROM oncall");
        one(&mut s2, "SELECT count(*) FROM other");
        one(&mut s1, "UPDATE oncall SET on_duty = true WHERE doc = 'a'");
        one(&mut s2, "INSERT INTO other VALUES (1)");
        assert_eq!(one(&mut s1, "COMMIT").tag, "COMMIT");
        assert_eq!(one(&mut s2, "COMMIT").tag, "COMMIT");
        // Write skew: each reads what the other writes; the second COMMIT fails.
        one(&mut s1, "BEGIN ISOLATION LEVEL SERIALIZABLE");
        one(&mut s2, "BEGIN ISOLATION LEVEL SERIALIZABLE");
        one(&mut s1, "SELECT count(*) FROM oncall WHERE on_duty");
        one(&mut s2, "SELECT count(*) FROM oncall WHERE on_duty");
        one(&mut s1, "UPDATE oncall SET on_duty = false WHERE doc = 'a'");
        one(&mut s2, "UPDATE oncall SET on_duty = false WHERE doc = 'b'");
        assert_eq!(one(&mut s1, "COMMIT").tag, "COMMIT");
        let err = s2.execute("COMMIT").unwrap_err();
        assert_eq!(err.code, SqlState::SerializationFailure);
        let r = one(&mut s1, "SELECT doc FROM oncall WHERE on_duty");
        assert_eq!(r.rows, vec![vec![Value::Text("b".into())]]);
        // The same interleaving under REPEATABLE READ commits both (snapshot isolation).
        one(&mut s1, "BEGIN ISOLATION LEVEL REPEATABLE READ");
        one(&mut s2, "BEGIN ISOLATION LEVEL REPEATABLE READ");
        one(&mut s1, "SELECT count(*) FROM oncall WHERE on_duty");
        one(&mut s2, "SELECT count(*) FROM oncall WHERE on_duty");
        one(&mut s1, "UPDATE oncall SET on_duty = true WHERE doc = 'a'");
        one(&mut s2, "UPDATE oncall SET on_duty = false WHERE doc = 'b'");
        assert_eq!(one(&mut s1, "COMMIT").tag, "COMMIT");
        assert_eq!(one(&mut s2, "COMMIT").tag, "COMMIT");
    }

    #[test]
    fn serializable_reader_of_a_committed_pivot_fails() {
        let e = Engine::open(&Disk::sim(SimDisk::new()), "t.redb").unwrap();
        let (mut tin, mut piv, mut tout) = (e.session(), e.session(), e.session());
        one(&mut tin, "CREATE TABLE a (x int)");
        one(&mut tin, "CREATE TABLE b (x int)");
        one(&mut tin, "CREATE TABLE c (x int)");
        for s in [&mut tin, &mut piv, &mut tout] {
            one(s, "BEGIN ISOLATION LEVEL SERIALIZABLE");
        }
        one(&mut tin, "SELECT count(*) FROM c");
        one(&mut piv, "SELECT count(*) FROM b");
        one(&mut tout, "INSERT INTO b VALUES (1)");
        one(&mut piv, "INSERT INTO a VALUES (1)");
        // tout commits first, then the pivot (nobody has read `a` yet: it may commit).
        assert_eq!(one(&mut tout, "COMMIT").tag, "COMMIT");
        assert_eq!(one(&mut piv, "COMMIT").tag, "COMMIT");
        // tin now reads what the committed pivot wrote: tin -> pivot -> tout, tout first.
        one(&mut tin, "SELECT count(*) FROM a");
        let err = tin.execute("COMMIT").unwrap_err();
        assert_eq!(err.code, SqlState::SerializationFailure);
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
