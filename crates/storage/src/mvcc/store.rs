//! [`Store`]: opening (with recovery), shared state, and the store-wide operations.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

use super::catalog::{heap_table, index_table, RelDef, RelEntry, RelId, RelKind};
use super::commit::CommitQueue;
use super::locks::{LockMode, LockTable};
use super::tuple::decode_tuple;
use super::txn::{Isolation, Txn};
use super::visibility::XidStatus;
use super::wal::{ChangeRecord, Lsn};
use crate::error::StorageError;
use crate::{Disk, Kv};

pub(crate) const CLOG: &str = "clog";
pub(crate) const CATALOG: &str = "catalog";
pub(crate) const PREPARED: &str = "prepared";
pub(crate) const META: &str = "meta";
pub(crate) const WAL: &str = "wal";

/// On-disk format version of the store (meta key `format`).
const FORMAT: u64 = 1;

/// Deferred (not yet fsynced) write transactions after which a write is made durable at once,
/// bounding the memory redb keeps for them.
const MAX_DEFERRED_WRITES: u64 = 512;

pub(crate) fn tdef(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// A table of a read transaction.
pub(crate) type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// Open table `name` in read transaction `r`; `None` if it was never created (reads of a
/// never-written storage are empty).
pub(crate) fn open_read(
    r: &redb::ReadTransaction,
    name: &str,
) -> Result<Option<ReadTable>, PgError> {
    match r.open_table(tdef(name)) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(io(e)),
    }
}

pub(crate) fn be(x: u64) -> [u8; 8] {
    x.to_be_bytes()
}

pub(crate) fn from_be(b: &[u8]) -> Result<u64, StorageError> {
    b.try_into().map(u64::from_be_bytes).map_err(|_| {
        StorageError::Corruption(format!("expected an 8-byte key, got {} bytes", b.len()))
    })
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> PgError {
    StorageError::Corruption(format!("{what}: {e}")).into()
}

pub(crate) fn io(e: impl Into<StorageError>) -> PgError {
    e.into().into()
}

/// Settings of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How long a group-commit leader waits for more commits to join before syncing; zero (the
    /// default) syncs at once and relies on commits that arrive during a sync joining the next
    /// one (PostgreSQL's `commit_delay`, in simulated or real time).
    pub commit_delay: Duration,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            commit_delay: Duration::ZERO,
        }
    }
}

/// What [`super::Txn::prepare`] records about a prepared transaction, as `pg_prepared_xacts`
/// shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareInfo {
    /// When it was prepared, in microseconds since 2000-01-01 UTC (PostgreSQL's timestamptz
    /// epoch); supplied by the caller because the store reads no clock.
    pub prepared_at: i64,
    /// The role that prepared it.
    pub owner: String,
    /// The database it belongs to.
    pub database: String,
}

/// One row of `pg_prepared_xacts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedXact {
    /// `transaction`: the GXID.
    pub xid: Gxid,
    /// `gid`.
    pub gid: String,
    /// `prepared`, `owner`, `database`.
    pub info: PrepareInfo,
    /// Relation locks it still holds.
    pub locks: Vec<(RelId, LockMode)>,
}

/// Sizes of one relation, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelStats {
    /// Tuple versions in the table's heap (live and dead).
    pub heap_tuples: u64,
    /// Entries in all of its indexes.
    pub index_entries: u64,
}

/// What one [`Store::vacuum`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VacuumStats {
    /// The horizon used (after clamping by local snapshots).
    pub horizon: Gxid,
    /// Dead tuple versions removed.
    pub tuples_removed: u64,
    /// Index entries removed.
    pub index_entries_removed: u64,
}

/// A local transaction that has begun and not ended.
#[derive(Clone, Debug)]
pub(crate) struct Active {
    /// The xmin of the snapshot it uses now (bounds vacuum; READ COMMITTED moves it forward with
    /// each statement's snapshot).
    pub xmin: Gxid,
}

/// The in-memory state of a store, behind one mutex (never held across an await).
pub(crate) struct State {
    /// Local commit log: open, committed and prepared GXIDs (absent = aborted).
    pub clog: BTreeMap<Gxid, XidStatus>,
    /// Transactions begun here and not ended.
    pub active: BTreeMap<Gxid, Active>,
    /// Every relation, with pending DDL.
    pub catalog: BTreeMap<RelId, RelEntry>,
    /// Prepared transactions by gid.
    pub prepared: BTreeMap<String, PreparedXact>,
    pub next_rel: u64,
    pub next_sid: u64,
    /// Next tuple id per storage, loaded lazily.
    pub next_tid: HashMap<u64, u64>,
    /// Next LSN to assign.
    pub next_lsn: u64,
    /// Relation locks and waits.
    pub locks: LockTable,
    /// Deferred writes since the last durable one.
    pub deferred: u64,
    /// Set after a failed durable write: the store refuses every write until reopened.
    pub poisoned: Option<String>,
}

impl State {
    /// The local commit-log status of `x`.
    pub fn status(&self, x: Gxid) -> XidStatus {
        self.clog.get(&x).copied().unwrap_or(XidStatus::Aborted)
    }

    /// The relation `rel` as `xid` sees it (latest committed plus its own DDL).
    pub fn rel(&self, rel: RelId, xid: Gxid) -> Result<&RelEntry, PgError> {
        self.catalog
            .get(&rel)
            .filter(|e| e.visible_to(xid))
            .ok_or_else(|| {
                PgError::new(
                    SqlState::UndefinedTable,
                    format!("relation with OID {rel} does not exist"),
                )
            })
    }

    /// The indexes of `table` visible to `xid`, by id.
    pub fn indexes_of(&self, table: RelId, xid: Gxid) -> Vec<&RelEntry> {
        self.catalog
            .values()
            .filter(|e| {
                e.visible_to(xid)
                    && matches!(e.def.kind, RelKind::Index { table: t, .. } if t == table)
            })
            .collect()
    }

    /// Fail if the store is poisoned.
    pub fn check_usable(&self) -> Result<(), PgError> {
        match &self.poisoned {
            Some(m) => Err(PgError::new(
                SqlState::IoError,
                format!(
                    "datanode storage is unusable after a failed write ({m}); restart the datanode"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The vacuum horizon after clamping `horizon` by local transactions.
    pub fn clamp_horizon(&self, horizon: Gxid) -> Gxid {
        self.active
            .iter()
            .map(|(x, a)| (*x).min(a.xmin))
            .fold(horizon, Gxid::min)
    }
}

pub(crate) struct Inner {
    pub kv: Kv,
    pub state: Mutex<State>,
    pub commit: Mutex<CommitQueue>,
    pub config: StoreConfig,
    /// Commits are written by the committing future itself, in one poll (no flusher task, no
    /// blocking thread): see [`Store::set_inline_commits`].
    pub inline_commits: std::sync::atomic::AtomicBool,
    /// Test-only mistake: acknowledge ends without syncing them ([`Store::set_mistake_ack_before_durable`]).
    pub ack_before_durable: std::sync::atomic::AtomicBool,
}

/// The datanode's MVCC store (see the [module docs](super)). Cloning is cheap; clones share it.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kv", &self.inner.kv).finish()
    }
}

/// A redb write transaction with the store's bookkeeping.
pub(crate) struct WriteCtx<'a> {
    pub w: redb::WriteTransaction,
    pub st: MutexGuard<'a, State>,
    /// How to undo what this write did (for ROLLBACK TO SAVEPOINT), in order.
    pub undo: std::cell::RefCell<Vec<Undo>>,
}

/// One step of a transaction's undo log: how to put back what a write changed, so that
/// ROLLBACK TO SAVEPOINT can restore the state at the savepoint (PostgreSQL aborts a
/// subtransaction; here the transaction's own later writes are reverted in place).
#[derive(Clone, Debug)]
pub(crate) enum Undo {
    /// The heap tuple at `tid` was written; `before` is what was there (`None`: nothing).
    Tuple {
        sid: u64,
        tid: super::tuple::Tid,
        before: Option<Vec<u8>>,
    },
    /// An index entry (`key ‖ tid`) was added.
    Index { sid: u64, entry: Vec<u8> },
    /// A catalog entry was written; `before` is the entry as it was (`None`: it did not exist).
    Catalog {
        rel: RelId,
        before: Option<RelEntry>,
    },
    /// A storage was created (its tables are deleted on undo).
    Storage { sid: u64 },
}

impl Store {
    /// Open (creating if missing) the store in file `name` on `disk`, recovering after a crash.
    ///
    /// Errors: 58030 for disk failures, XX001 for a damaged file or an unknown format, XX000 for a
    /// file already open.
    pub fn open(disk: &Disk, name: &str, config: StoreConfig) -> Result<Store, PgError> {
        let kv = disk.open_kv(name)?;
        let db = kv.db();
        // Initialise or check the format.
        {
            let r = db.begin_read().map_err(io)?;
            let format = match r.open_table(tdef(META)) {
                Ok(t) => t
                    .get(b"format".as_slice())
                    .map_err(io)?
                    .map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(io(e)),
            };
            match format {
                Some(v) => {
                    let f = from_be(&v)?;
                    if f != FORMAT {
                        return Err(corrupt("store format", format!("unknown version {f}")));
                    }
                }
                None => {
                    drop(r);
                    let w = db.begin_write().map_err(io)?;
                    w.open_table(tdef(META))
                        .map_err(io)?
                        .insert(b"format".as_slice(), be(FORMAT).as_slice())
                        .map_err(io)?;
                    w.commit().map_err(io)?;
                }
            }
        }
        let mut st = State {
            clog: BTreeMap::new(),
            active: BTreeMap::new(),
            catalog: BTreeMap::new(),
            prepared: BTreeMap::new(),
            next_rel: 1,
            next_sid: 1,
            next_tid: HashMap::new(),
            next_lsn: 1,
            locks: LockTable::default(),
            deferred: 0,
            poisoned: None,
        };
        {
            let r = db.begin_read().map_err(io)?;
            let open = |name: &str| match r.open_table(tdef(name)) {
                Ok(t) => Ok(Some(t)),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(io(e)),
            };
            if let Some(t) = open(META)? {
                for (k, into) in [
                    (b"next_rel".as_slice(), &mut st.next_rel),
                    (b"next_sid", &mut st.next_sid),
                ] {
                    if let Some(v) = t.get(k).map_err(io)? {
                        *into = from_be(v.value())?;
                    }
                }
            }
            if let Some(t) = open(CLOG)? {
                for e in t.iter().map_err(io)? {
                    let (k, v) = e.map_err(io)?;
                    let x = Gxid(from_be(k.value())?);
                    let s = match v.value() {
                        [1] => XidStatus::Committed,
                        [3] => XidStatus::Prepared,
                        other => {
                            return Err(corrupt(
                                "commit log",
                                format!("bad status {other:?} for {x}"),
                            ))
                        }
                    };
                    st.clog.insert(x, s);
                }
            }
            if let Some(t) = open(CATALOG)? {
                for e in t.iter().map_err(io)? {
                    let (_, v) = e.map_err(io)?;
                    let entry: RelEntry =
                        postcard::from_bytes(v.value()).map_err(|e| corrupt("catalog", e))?;
                    st.next_rel = st.next_rel.max(entry.def.id.0 + 1);
                    st.next_sid = st.next_sid.max(entry.sid + 1);
                    if let Some((_, s)) = entry.truncated {
                        st.next_sid = st.next_sid.max(s + 1);
                    }
                    st.catalog.insert(entry.def.id, entry);
                }
            }
            if let Some(t) = open(PREPARED)? {
                for e in t.iter().map_err(io)? {
                    let (_, v) = e.map_err(io)?;
                    let p: PreparedXact =
                        postcard::from_bytes(v.value()).map_err(|e| corrupt("prepared", e))?;
                    if st.status(p.xid) != XidStatus::Prepared {
                        return Err(corrupt(
                            "prepared",
                            format!("{} is not prepared in the commit log", p.gid),
                        ));
                    }
                    for (rel, mode) in &p.locks {
                        let _ = st.locks.try_lock(p.xid, *rel, *mode);
                    }
                    st.prepared.insert(p.gid.clone(), p);
                }
            }
            if let Some((x, _)) = st.clog.iter().find(|(x, s)| {
                **s == XidStatus::Prepared && !st.prepared.values().any(|p| p.xid == **x)
            }) {
                return Err(corrupt(
                    "commit log",
                    format!("{x} is prepared but has no prepared record"),
                ));
            }
            if let Some(t) = open(WAL)? {
                if let Some((k, _)) = t.last().map_err(io)? {
                    st.next_lsn = from_be(k.value())? + 1;
                }
            }
        }
        // Undo the DDL of transactions that did not commit, and delete orphaned storage.
        let w = db.begin_write().map_err(io)?;
        {
            let mut cat = w.open_table(tdef(CATALOG)).map_err(io)?;
            let ids: Vec<RelId> = st.catalog.keys().copied().collect();
            for id in ids {
                let Some(entry) = st.catalog.get(&id).cloned() else {
                    continue;
                };
                let pending: Vec<Gxid> = [
                    entry.created_by,
                    entry.dropped_by,
                    entry.truncated.map(|t| t.0),
                ]
                .into_iter()
                .flatten()
                .collect();
                let mut cur = Some(entry.clone());
                for x in pending {
                    let Some(e) = cur.take() else { break };
                    cur = match st.status(x) {
                        XidStatus::Prepared | XidStatus::InProgress => Some(e),
                        XidStatus::Committed => e.on_commit(x).0,
                        XidStatus::Aborted => e.on_abort(x).0,
                    };
                }
                if cur.as_ref() != Some(&entry) {
                    match &cur {
                        Some(e) => {
                            let bytes = super::commit::encode(e);
                            cat.insert(be(id.0).as_slice(), bytes.as_slice())
                                .map_err(io)?;
                            st.catalog.insert(id, e.clone());
                        }
                        None => {
                            cat.remove(be(id.0).as_slice()).map_err(io)?;
                            st.catalog.remove(&id);
                        }
                    }
                }
            }
        }
        let mut live_sids: Vec<u64> = Vec::new();
        for e in st.catalog.values() {
            live_sids.push(e.sid);
            if let Some((_, s)) = e.truncated {
                live_sids.push(s);
            }
        }
        let names: Vec<String> = w
            .list_tables()
            .map_err(io)?
            .map(|h| h.name().to_string())
            .collect();
        for name in names {
            let sid = name
                .strip_prefix("heap.")
                .or_else(|| name.strip_prefix("index."))
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(sid) = sid {
                if !live_sids.contains(&sid) {
                    w.delete_table(tdef(&name)).map_err(io)?;
                }
            }
        }
        w.commit().map_err(io)?;
        Ok(Store {
            inner: Arc::new(Inner {
                kv,
                state: Mutex::new(st),
                commit: Mutex::new(CommitQueue::default()),
                config,
                inline_commits: std::sync::atomic::AtomicBool::new(false),
                ack_before_durable: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug already reported; the state itself stays
        // consistent because every mutation is completed before the guard drops.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn db(&self) -> &redb::Database {
        self.inner.kv.db()
    }

    /// Run `f` in one redb write transaction (deferred durability, unless many deferred ones
    /// piled up) while holding the state lock. `f` returning an error aborts the redb
    /// transaction: nothing it wrote is applied (in-memory changes must be made by the caller
    /// only after success, from `f`'s result).
    pub(crate) fn with_write<R>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R, PgError>,
    ) -> Result<R, PgError> {
        self.with_write_undo(f).map(|(r, _)| r)
    }

    /// [`Store::with_write`], also returning the undo log of what `f` wrote.
    pub(crate) fn with_write_undo<R>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R, PgError>,
    ) -> Result<(R, Vec<Undo>), PgError> {
        self.try_write_undo(f)
    }

    /// [`Store::with_write_undo`] with the caller's error type (anything a [`PgError`] converts
    /// into), so a closure can give up for a reason that is not an error, such as a wait, and
    /// still have its partial writes dropped with the redb transaction.
    pub(crate) fn try_write_undo<R, E: From<PgError>>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R, E>,
    ) -> Result<(R, Vec<Undo>), E> {
        // Lock order: the redb write lock first, then the state mutex (the group-commit flusher
        // holds the redb lock during its fsync without the state mutex, so readers go on).
        let mut w = self.db().begin_write().map_err(io)?;
        let st = self.state();
        st.check_usable()?;
        let durable = st.deferred + 1 >= MAX_DEFERRED_WRITES;
        w.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })
        .map_err(io)?;
        let mut ctx = WriteCtx {
            w,
            st,
            undo: std::cell::RefCell::new(Vec::new()),
        };
        let r = f(&mut ctx)?;
        let WriteCtx { w, mut st, undo } = ctx;
        if let Err(e) = w.commit() {
            let e: PgError = io(e);
            st.poisoned = Some(e.message.clone());
            return Err(e.into());
        }
        st.deferred = if durable { 0 } else { st.deferred + 1 };
        Ok((r, undo.into_inner()))
    }

    /// Begin transaction `xid` here with `isolation` and the first statement's `snapshot`.
    ///
    /// Errors: XX000 if `xid` is invalid or already began here (the GTM never reissues a GXID;
    /// seeing one twice is a bug elsewhere), 58030 if the store is poisoned.
    pub fn begin(
        &self,
        xid: Gxid,
        isolation: Isolation,
        snapshot: Snapshot,
    ) -> Result<Txn, PgError> {
        let mut st = self.state();
        st.check_usable()?;
        if !xid.is_valid() {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("invalid transaction id {xid}"),
            ));
        }
        if st.clog.contains_key(&xid) || st.active.contains_key(&xid) {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("transaction {xid} already began on this datanode"),
            ));
        }
        if let Err(e) = snapshot.check() {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("invalid snapshot: {e}"),
            ));
        }
        st.active.insert(
            xid,
            Active {
                xmin: snapshot.xmin,
            },
        );
        st.clog.insert(xid, XidStatus::InProgress);
        drop(st);
        Ok(Txn::new(self.clone(), xid, isolation, snapshot))
    }

    /// Durably reserve `n` GXIDs for a node that runs without a GTM (a standalone datanode, tests):
    /// returns the first of `n` consecutive GXIDs that no earlier reservation and no transaction
    /// this store has seen used. The high-water mark is fsynced before this returns, so GXIDs are
    /// never reused across restarts (the GTM's block reservation, locally).
    ///
    /// Errors: 58030 on disk failure.
    pub fn reserve_local_xids(&self, n: u64) -> Result<Gxid, PgError> {
        let mut w = self.db().begin_write().map_err(io)?;
        let st = self.state();
        st.check_usable()?;
        w.set_durability(redb::Durability::Immediate).map_err(io)?;
        let seen = st
            .clog
            .keys()
            .next_back()
            .map_or(Gxid::FIRST_NORMAL.0, |x| x.0 + 1)
            .max(st.active.keys().next_back().map_or(0, |x| x.0 + 1));
        let start = {
            let mut meta = w.open_table(tdef(META)).map_err(io)?;
            let hwm = match meta.get(b"xid_hwm".as_slice()).map_err(io)? {
                Some(v) => from_be(v.value())?,
                None => 0,
            };
            let start = hwm.max(seen).max(Gxid::FIRST_NORMAL.0);
            meta.insert(
                b"xid_hwm".as_slice(),
                be(start.saturating_add(n)).as_slice(),
            )
            .map_err(io)?;
            start
        };
        w.commit().map_err(io)?;
        Ok(Gxid(start))
    }

    /// The local commit-log status of `xid` (absent = aborted or never here).
    pub fn xid_status(&self, xid: Gxid) -> XidStatus {
        self.state().status(xid)
    }

    /// Make every durable end (COMMIT, PREPARE, COMMIT/ROLLBACK PREPARED) write its batch inside
    /// the ending future itself, synchronously, instead of queueing for a flusher task that syncs
    /// on a blocking thread. The ending future then completes in its first poll, so a caller that
    /// polls storage futures once (the SQL engine's restart mode, [`Txn::set_report_waits`]) can
    /// commit without a runtime. Group commit is lost (one sync per end) and `commit_delay` is
    /// ignored. Off by default (also under madsim, where the flusher is a simulated task); the SQL
    /// engine turns it on in its restart mode.
    pub fn set_inline_commits(&self, on: bool) {
        self.inner
            .inline_commits
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// **Test-only mistake** (issue 7: the simulator must show its checkers catch it): write the
    /// batches of COMMIT / PREPARE / COMMIT PREPARED without syncing them, yet acknowledge them, so
    /// a power failure can lose acknowledged commits. Never set outside a simulation; off by default.
    pub fn set_mistake_ack_before_durable(&self, on: bool) {
        self.inner
            .ack_before_durable
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether ends are synced before they are acknowledged (always, unless the test-only mistake
    /// is on).
    pub(crate) fn durable_ends(&self) -> bool {
        !self
            .inner
            .ack_before_durable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait until transaction `holder` has ended (committed, rolled back or, if it was prepared,
    /// finished) and released its locks: the wait a statement in restart mode
    /// ([`Txn::set_report_waits`]) does between giving up and restarting. `waiter` (the still-open
    /// transaction that gave up, if any) takes part in deadlock detection as a blocking wait
    /// would; `timeout` is `lock_timeout`.
    ///
    /// Errors: 40P01 if `waiter` waiting for `holder` closes a cycle of waits; 55P03 after
    /// `timeout`.
    pub async fn wait_until_ended(
        &self,
        waiter: Option<Gxid>,
        holder: Gxid,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), PgError> {
        let rx = {
            let mut st = self.state();
            if !st.status(holder).is_open() && st.locks.locks_of(holder).is_empty() {
                return Ok(());
            }
            match waiter {
                Some(w) => st.locks.start_wait(w, holder).map_err(|_| {
                    PgError::new(
                        SqlState::DeadlockDetected,
                        format!("deadlock detected: transaction {w} waits for transaction {holder}, which waits for it"),
                    )
                })?,
                None => st.locks.subscribe(holder),
            }
        };
        let result = tokio::select! {
            biased;
            _ = rx => Ok(()),
            _ = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            } => Err(PgError::new(SqlState::LockNotAvailable, "canceling statement due to lock timeout")),
        };
        if let Some(w) = waiter {
            self.state().locks.stop_wait(w);
        }
        result
    }

    /// The transaction `xid` is waiting for, if it waits (`pg_locks` rows with `granted = false`).
    pub fn waiting_for(&self, xid: Gxid) -> Option<Gxid> {
        self.state().locks.waiting_for(xid)
    }

    /// The relation locks `xid` holds (open or prepared transactions), in grant order.
    pub fn relation_locks(&self, xid: Gxid) -> Vec<(RelId, LockMode)> {
        self.state().locks.locks_of(xid)
    }

    /// `Ok` while the store accepts writes; 58030 (`SqlState::IoError`) once a failed durable
    /// write poisoned it (every later write fails the same way until the datanode restarts and
    /// recovers from disk). Lets a caller that would answer "not found" from the in-memory state
    /// answer the I/O error instead, since the state may no longer match the disk.
    pub fn check_usable(&self) -> Result<(), PgError> {
        self.state().check_usable()
    }

    /// The prepared transactions (`pg_prepared_xacts`), by gid.
    pub fn prepared_xacts(&self) -> Vec<PreparedXact> {
        self.state().prepared.values().cloned().collect()
    }

    /// The definition of `rel` as committed (pending DDL of open transactions ignored).
    pub fn relation(&self, rel: RelId) -> Option<RelDef> {
        self.state()
            .catalog
            .get(&rel)
            .filter(|e| e.created_by.is_none())
            .map(|e| e.def.clone())
    }

    /// Every committed relation, by id.
    pub fn relations(&self) -> Vec<RelDef> {
        self.state()
            .catalog
            .values()
            .filter(|e| e.created_by.is_none())
            .map(|e| e.def.clone())
            .collect()
    }

    /// The LSN the next change-log record will get (one past the last durable record).
    pub fn next_lsn(&self) -> Lsn {
        Lsn(self.state().next_lsn)
    }

    /// Up to `limit` change-log records with LSN `>= from`, in LSN order.
    ///
    /// Errors: 58030 / XX001 from the disk.
    pub fn changes_since(&self, from: Lsn, limit: usize) -> Result<Vec<ChangeRecord>, PgError> {
        let rows = self.inner.kv.range(
            WAL,
            Bound::Included(be(from.0).as_slice()),
            Bound::Unbounded,
            false,
            Some(limit),
        )?;
        rows.into_iter()
            .map(|(k, v)| {
                let rec: ChangeRecord =
                    postcard::from_bytes(&v).map_err(|e| corrupt("change log", e))?;
                if rec.lsn.0 != from_be(&k)? {
                    return Err(corrupt(
                        "change log",
                        format!("record {} stored at another LSN", rec.lsn),
                    ));
                }
                Ok(rec)
            })
            .collect()
    }

    /// Tuple and index-entry counts of `rel` (a table; its indexes are summed).
    ///
    /// Errors: 42P01 for an unknown relation, 58030 / XX001 from the disk.
    pub fn rel_stats(&self, rel: RelId) -> Result<RelStats, PgError> {
        let (heap_sid, index_sids) = {
            let st = self.state();
            let e = st.catalog.get(&rel).ok_or_else(|| {
                PgError::new(
                    SqlState::UndefinedTable,
                    format!("relation with OID {rel} does not exist"),
                )
            })?;
            let idx: Vec<u64> = st
                .catalog
                .values()
                .filter(|i| matches!(i.def.kind, RelKind::Index { table, .. } if table == rel))
                .map(|i| i.sid)
                .collect();
            (e.sid, idx)
        };
        let r = self.db().begin_read().map_err(io)?;
        let count = |name: String| -> Result<u64, PgError> {
            match open_read(&r, &name)? {
                Some(t) => t.len().map_err(io),
                None => Ok(0),
            }
        };
        let mut s = RelStats {
            heap_tuples: count(heap_table(heap_sid))?,
            index_entries: 0,
        };
        for sid in index_sids {
            s.index_entries += count(index_table(sid))?;
        }
        Ok(s)
    }

    /// Read and verify every tuple of every relation's heap (a consistency check, like
    /// `amcheck`): returns the number of tuples checked.
    ///
    /// Errors: XX001 on the first damaged tuple.
    pub fn verify(&self) -> Result<u64, PgError> {
        let sids: Vec<u64> = self.state().catalog.values().map(|e| e.sid).collect();
        let r = self.db().begin_read().map_err(io)?;
        let mut n = 0;
        for sid in sids {
            let Some(t) = open_read(&r, &heap_table(sid))? else {
                continue;
            };
            for e in t.iter().map_err(io)? {
                let (_, v) = e.map_err(io)?;
                decode_tuple(v.value())?;
                n += 1;
            }
        }
        Ok(n)
    }
}
