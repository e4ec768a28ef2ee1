//! [`Txn`]: one transaction's view of and changes to the store.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use redb::{ReadableDatabase, ReadableTable};

use super::catalog::{heap_table, index_table, RelDef, RelEntry, RelId, RelKind};
use super::commit::EndKind;
use super::locks::{LockMode, WaitRefused};
use super::store::{
    be, corrupt, from_be, io, open_read, tdef, PrepareInfo, State, Store, Undo, WriteCtx, CATALOG,
    META,
};
use super::tuple::{decode_tuple, encode_tuple, Header, RowLockStrength, Tid, XmaxKind};
use super::visibility::{
    check_modify, unique_conflict, visible, Modify, UniqueCheck, Viewer, Visibility, XidStatus,
};
use super::wal::{Change, Lsn};

/// Transaction isolation level. SERIALIZABLE is served as REPEATABLE READ (snapshot
/// isolation), as Postgres-XC did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A new snapshot per statement; a row changed by a concurrent committed transaction is
    /// re-checked in its newest version ([`Outcome::Changed`]).
    ReadCommitted,
    /// One snapshot for the whole transaction; changing a row that changed after it fails with
    /// 40001.
    RepeatableRead,
}

/// An index key as the caller encoded it (e.g. with [`crate::keycode`]): bytes compared
/// byte-wise, from a prefix-free encoding (no key is a proper prefix of another).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexKey {
    /// The encoded key.
    pub bytes: Vec<u8>,
    /// Whether any key column is NULL: such keys never conflict in a unique index (PostgreSQL's
    /// NULLS DISTINCT).
    pub has_null: bool,
}

impl IndexKey {
    /// A key without NULLs.
    pub fn new(bytes: Vec<u8>) -> IndexKey {
        IndexKey {
            bytes,
            has_null: false,
        }
    }
}

/// A range of encoded index keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound on keys.
    pub lower: Bound<Vec<u8>>,
    /// Upper bound on keys.
    pub upper: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }

    /// Exactly `key`.
    pub fn eq(key: &[u8]) -> KeyRange {
        KeyRange {
            lower: Bound::Included(key.to_vec()),
            upper: Bound::Included(key.to_vec()),
        }
    }

    /// Every key starting with `prefix` (e.g. the encoding of leading columns of a
    /// multi-column index).
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        let mut upper = prefix.to_vec();
        while let Some(last) = upper.pop() {
            if last < 0xff {
                upper.push(last + 1);
                return KeyRange {
                    lower: Bound::Included(prefix.to_vec()),
                    upper: Bound::Excluded(upper),
                };
            }
        }
        KeyRange {
            lower: Bound::Included(prefix.to_vec()),
            upper: Bound::Unbounded,
        }
    }

    /// Keys within `(lower, upper)`.
    pub fn between(lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> KeyRange {
        KeyRange { lower, upper }
    }

    /// The bounds on index entries (`key ‖ tid`) that select exactly these keys.
    fn entry_bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let max_tid = |k: &Vec<u8>| {
            let mut v = k.clone();
            v.extend_from_slice(&[0xff; 8]);
            v
        };
        let lower = match &self.lower {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(k.clone()),
            Bound::Excluded(k) => Bound::Excluded(max_tid(k)),
        };
        let upper = match &self.upper {
            Bound::Unbounded => Bound::Unbounded,
            Bound::Included(k) => Bound::Included(max_tid(k)),
            Bound::Excluded(k) => Bound::Excluded(k.clone()),
        };
        (lower, upper)
    }
}

/// One row for [`Txn::insert_many`]: its payload and its key in every index of the table.
pub type NewRow<'a> = (&'a [u8], &'a [(RelId, IndexKey)]);

/// A visible row version: its address and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The version's tuple id.
    pub tid: Tid,
    /// The payload as inserted or updated.
    pub data: Vec<u8>,
}

/// The result of an UPDATE, DELETE or row lock on one row (PostgreSQL's `TM_Result`, after
/// waiting for any open transaction holding the row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Done; for an update the new version's tid.
    Done(T),
    /// This statement already changed the row: skip it.
    SelfModified,
    /// The row no longer exists (a committed transaction deleted it): skip it.
    Gone,
    /// READ COMMITTED only: a committed transaction updated the row; this is its newest version.
    /// Re-evaluate the statement's condition on it and, if it still qualifies, retry on its tid
    /// (PostgreSQL's EvalPlanQual).
    Changed(Row),
}

/// A cursor over a heap or an index range, read in batches by [`Txn::next`].
#[derive(Clone, Debug)]
pub struct Scan {
    heap_sid: u64,
    index_sid: Option<u64>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    reverse: bool,
    done: bool,
}

impl Scan {
    /// Whether the scan has returned everything.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Cancels a transaction's current lock wait from elsewhere (PostgreSQL's
/// `pg_cancel_backend` / a CancelRequest): the wait fails with 57014.
#[derive(Clone, Debug)]
pub struct CancelHandle(Arc<tokio::sync::watch::Sender<bool>>);

impl CancelHandle {
    /// Cancel the current (or next) wait.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// The message prefix of the "would block" error of restart mode ([`Txn::set_report_waits`]).
const WOULD_BLOCK: &str = "would wait for transaction ";

fn would_block_error(holder: Gxid) -> PgError {
    PgError::new(
        SqlState::LockNotAvailable,
        format!("{WOULD_BLOCK}{}", holder.0),
    )
}

/// If `e` is the "would block" error of restart mode ([`Txn::set_report_waits`]): the GXID of the
/// transaction the operation would have waited for. Its SQLSTATE is 55P03 (lock_not_available),
/// so a caller that does not restart reports it as PostgreSQL reports a `NOWAIT` failure.
pub fn would_block(e: &PgError) -> Option<Gxid> {
    if e.code != SqlState::LockNotAvailable {
        return None;
    }
    e.message
        .strip_prefix(WOULD_BLOCK)
        .and_then(|x| x.parse::<u64>().ok())
        .map(Gxid)
}

/// One transaction on the store, begun with [`Store::begin`]. Dropping it without
/// [`Txn::commit`] or [`Txn::prepare`] rolls it back.
///
/// Statements: call [`Txn::next_command`] before each statement after the first (PostgreSQL's
/// `CommandCounterIncrement`), and under READ COMMITTED [`Txn::set_snapshot`] with the
/// statement's snapshot.
///
/// Errors of every operation are [`PgError`]s with PostgreSQL's SQLSTATEs; after an error the
/// caller is expected to roll the transaction back, as PostgreSQL does.
pub struct Txn {
    store: Store,
    xid: Gxid,
    isolation: Isolation,
    snapshot: Snapshot,
    cid: u32,
    changes: Vec<Change>,
    wrote: bool,
    /// Committed transactions whose update or delete this transaction followed under READ
    /// COMMITTED (`Outcome::Changed` / `Outcome::Gone`): its result depends on them.
    followed: Vec<Gxid>,
    lock_timeout: Option<Duration>,
    cancel: CancelHandle,
    /// Restart mode: a wait is reported ([`would_block`]) instead of waited for.
    report_waits: bool,
    ended: bool,
    /// How to revert this transaction's writes, in order (ROLLBACK TO SAVEPOINT).
    undo: Vec<Undo>,
    /// Storage replaced by TRUNCATE, deleted when the transaction ends if nothing names it.
    orphans: Vec<u64>,
}

/// A point inside a transaction to roll back to (`SAVEPOINT name`), from [`Txn::savepoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Savepoint {
    undo: usize,
    changes: usize,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("xid", &self.xid)
            .field("cid", &self.cid)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

/// What a write attempt inside one redb transaction concluded.
enum Step<T> {
    Done(T, Vec<Change>),
    Wait(Gxid),
    Other(Outcome<T>),
    /// A committed transaction (the GXID) updated the row: follow its chain from this tid.
    Chase(Tid, Gxid),
    /// A committed transaction (the GXID) deleted the row.
    GoneBy(Gxid),
}

fn read_tuple(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tid: Tid,
) -> Result<Option<(Header, Vec<u8>)>, PgError> {
    match t.get(be(tid.0).as_slice()).map_err(io)? {
        Some(v) => {
            let (h, p) = decode_tuple(v.value())?;
            Ok(Some((h, p.to_vec())))
        }
        None => Ok(None),
    }
}

fn entry_key(key: &[u8], tid: Tid) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 8);
    k.extend_from_slice(key);
    k.extend_from_slice(&be(tid.0));
    k
}

fn entry_tid(entry: &[u8]) -> Result<Tid, PgError> {
    if entry.len() < 8 {
        return Err(corrupt("index entry", "shorter than a tuple id"));
    }
    Ok(Tid(from_be(&entry[entry.len() - 8..])?))
}

fn open_write<'t>(
    w: &'t redb::WriteTransaction,
    name: &str,
) -> Result<redb::Table<'t, &'static [u8], &'static [u8]>, PgError> {
    w.open_table(tdef(name)).map_err(io)
}

impl WriteCtx<'_> {
    fn alloc_tid(&mut self, sid: u64) -> Result<Tid, PgError> {
        let next = match self.st.next_tid.get(&sid) {
            Some(n) => *n,
            None => {
                let t = open_write(&self.w, &heap_table(sid))?;
                let last = t.last().map_err(io)?;
                match last {
                    Some((k, _)) => from_be(k.value())? + 1,
                    None => 1,
                }
            }
        };
        self.st.next_tid.insert(sid, next + 1);
        Ok(Tid(next))
    }

    /// Check `key` against unique index `idx_sid` of heap `heap_sid` for `xid`.
    fn check_unique(
        &self,
        xid: Gxid,
        heap_sid: u64,
        idx_sid: u64,
        key: &[u8],
    ) -> Result<UniqueCheck, PgError> {
        let idx = open_write(&self.w, &index_table(idx_sid))?;
        let heap = open_write(&self.w, &heap_table(heap_sid))?;
        let (lo, hi) = KeyRange::eq(key).entry_bounds();
        let range = idx
            .range::<&[u8]>((
                lo.as_ref().map(Vec::as_slice),
                hi.as_ref().map(Vec::as_slice),
            ))
            .map_err(io)?;
        for e in range {
            let (k, _) = e.map_err(io)?;
            let tid = entry_tid(k.value())?;
            let Some((h, _)) = read_tuple(&heap, tid)? else {
                continue;
            };
            match unique_conflict(&h, xid, |x| self.st.status(x)) {
                UniqueCheck::Free => {}
                other => return Ok(other),
            }
        }
        Ok(UniqueCheck::Free)
    }

    fn put_tuple(&self, sid: u64, tid: Tid, h: &Header, payload: &[u8]) -> Result<Change, PgError> {
        let bytes = encode_tuple(h, payload);
        let before = open_write(&self.w, &heap_table(sid))?
            .insert(be(tid.0).as_slice(), bytes.as_slice())
            .map_err(io)?
            .map(|old| old.value().to_vec());
        self.undo
            .borrow_mut()
            .push(Undo::Tuple { sid, tid, before });
        Ok(Change::PutTuple {
            sid,
            tid,
            tuple: bytes,
        })
    }

    fn put_index(&self, sid: u64, key: &[u8], tid: Tid) -> Result<Change, PgError> {
        let entry = entry_key(key, tid);
        open_write(&self.w, &index_table(sid))?
            .insert(entry.as_slice(), [].as_slice())
            .map_err(io)?;
        self.undo.borrow_mut().push(Undo::Index { sid, entry });
        Ok(Change::IndexInsert {
            sid,
            key: key.to_vec(),
            tid,
        })
    }

    fn put_catalog(&self, e: &RelEntry) -> Result<(), PgError> {
        self.undo.borrow_mut().push(Undo::Catalog {
            rel: e.def.id,
            before: self.st.catalog.get(&e.def.id).cloned(),
        });
        let v = super::commit::encode(e);
        open_write(&self.w, CATALOG)?
            .insert(be(e.def.id.0).as_slice(), v.as_slice())
            .map_err(io)?;
        Ok(())
    }

    fn put_counters(&self, next_rel: u64, next_sid: u64) -> Result<(), PgError> {
        let mut m = open_write(&self.w, META)?;
        m.insert(b"next_rel".as_slice(), be(next_rel).as_slice())
            .map_err(io)?;
        m.insert(b"next_sid".as_slice(), be(next_sid).as_slice())
            .map_err(io)?;
        Ok(())
    }

    /// Insert the index entries of a new version at `tid` of table `table`, checking unique
    /// indexes; `keys` must name every index of the table exactly once.
    fn index_new_version(
        &self,
        xid: Gxid,
        table: RelId,
        heap_sid: u64,
        tid: Tid,
        keys: &[(RelId, IndexKey)],
    ) -> Result<Result<Vec<Change>, Gxid>, PgError> {
        let indexes: Vec<(RelId, u64, bool, String)> = self
            .st
            .indexes_of(table, xid)
            .into_iter()
            .map(|e| {
                let unique = matches!(e.def.kind, RelKind::Index { unique: true, .. });
                (e.def.id, e.sid_for(xid), unique, e.def.name.clone())
            })
            .collect();
        let given: BTreeSet<RelId> = keys.iter().map(|(r, _)| *r).collect();
        let wanted: BTreeSet<RelId> = indexes.iter().map(|i| i.0).collect();
        if given != wanted || given.len() != keys.len() {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("index keys given for {given:?}, but table {table} has indexes {wanted:?}"),
            ));
        }
        let key_of = |id: &RelId| {
            keys.iter()
                .find(|(r, _)| r == id)
                .map(|(_, k)| k)
                .ok_or_else(|| PgError::new(SqlState::InternalError, "index key missing"))
        };
        // Every unique check first, so that a wait leaves nothing of this version written.
        for (id, sid, unique, name) in &indexes {
            let key = key_of(id)?;
            if *unique && !key.has_null {
                match self.check_unique(xid, heap_sid, *sid, &key.bytes)? {
                    UniqueCheck::Free => {}
                    UniqueCheck::Wait(x) => return Ok(Err(x)),
                    UniqueCheck::Duplicate => {
                        return Err(PgError::new(
                            SqlState::UniqueViolation,
                            format!("duplicate key value violates unique constraint \"{name}\""),
                        ))
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for (id, sid, _, _) in &indexes {
            changes.push(self.put_index(*sid, &key_of(id)?.bytes, tid)?);
        }
        Ok(Ok(changes))
    }
}

impl Txn {
    pub(crate) fn new(store: Store, xid: Gxid, isolation: Isolation, snapshot: Snapshot) -> Txn {
        Txn {
            store,
            xid,
            isolation,
            snapshot,
            cid: 0,
            changes: Vec::new(),
            wrote: false,
            followed: Vec::new(),
            lock_timeout: None,
            cancel: CancelHandle(Arc::new(tokio::sync::watch::channel(false).0)),
            report_waits: false,
            ended: false,
            undo: Vec::new(),
            orphans: Vec::new(),
        }
    }

    /// The transaction's GXID.
    pub fn xid(&self) -> Gxid {
        self.xid
    }

    /// Its isolation level.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The snapshot in use.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The current command id.
    pub fn command_id(&self) -> u32 {
        self.cid
    }

    /// Whether the transaction has written anything here (rows, row locks or DDL).
    pub fn has_written(&self) -> bool {
        self.wrote
    }

    /// The committed transactions whose updates or deletes this one followed under READ
    /// COMMITTED (PostgreSQL's EvalPlanQual): it must not become visible before they do. In a
    /// cluster a transaction committed here may still be running at the GTM (its COMMIT
    /// PREPARED pending on another datanode), so the coordinator waits for these GXIDs to leave
    /// the GTM's running set before it ends this transaction there (no fractured reads).
    pub fn followed(&self) -> &[Gxid] {
        &self.followed
    }

    fn note_followed(&mut self, x: Gxid) {
        if x.is_valid() && x != self.xid && !self.followed.contains(&x) {
            self.followed.push(x);
        }
    }

    /// Use `snapshot` from now on (READ COMMITTED: each statement's fresh snapshot).
    ///
    /// Errors: XX000 for a malformed snapshot.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) -> Result<(), PgError> {
        snapshot
            .check()
            .map_err(|e| PgError::new(SqlState::InternalError, format!("invalid snapshot: {e}")))?;
        if let Some(a) = self.store.state().active.get_mut(&self.xid) {
            a.xmin = snapshot.xmin;
        }
        self.snapshot = snapshot;
        Ok(())
    }

    /// Start the next statement: later reads see this transaction's earlier writes
    /// (PostgreSQL's `CommandCounterIncrement`); a pending cancel is cleared.
    ///
    /// Errors: 54000-like XX000 after 2^32 − 1 statements.
    pub fn next_command(&mut self) -> Result<(), PgError> {
        // A cancel aimed at the previous statement does not carry over.
        self.cancel.0.send_replace(false);
        self.cid = self.cid.checked_add(1).ok_or_else(|| {
            PgError::new(
                SqlState::InternalError,
                "cannot have more than 2^32-2 commands in a transaction",
            )
        })?;
        Ok(())
    }

    /// How long a lock wait may last before failing with 55P03 (`lock_timeout`; `None` = forever).
    pub fn set_lock_timeout(&mut self, timeout: Option<Duration>) {
        self.lock_timeout = timeout;
    }

    /// Restart mode (`true`): instead of waiting for another transaction to end, every operation
    /// that would wait fails at once with the "would block" error [`would_block`] recognises,
    /// naming the transaction it would wait for, and leaves no wait registered. The caller rolls
    /// the statement back (to a savepoint taken before it), awaits
    /// [`crate::mvcc::Store::wait_until_ended`] and runs the statement again: what a
    /// deterministic simulation, which cannot block a thread, does instead of a lock wait.
    /// Operations then never return `Pending` except a commit, whose store writes inline under
    /// madsim ([`crate::mvcc::Store::set_inline_commits`]).
    pub fn set_report_waits(&mut self, on: bool) {
        self.report_waits = on;
    }

    /// A handle that cancels this transaction's lock waits.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    fn check_open(&self) -> Result<(), PgError> {
        if self.ended {
            return Err(PgError::new(
                SqlState::InvalidTransactionState,
                "transaction already ended",
            ));
        }
        Ok(())
    }

    /// Wait until `holder` ends (or fail with 40P01, 55P03 or 57014).
    async fn wait_for(&self, holder: Gxid) -> Result<(), PgError> {
        let rx = {
            let mut st = self.store.state();
            if !st.status(holder).is_open() && st.locks.locks_of(holder).is_empty() {
                return Ok(());
            }
            match st.locks.start_wait(self.xid, holder) {
                Err(WaitRefused::Deadlock) => {
                    return Err(PgError::new(
                        SqlState::DeadlockDetected,
                        format!("deadlock detected: transaction {} waits for transaction {holder}, which waits for it", self.xid),
                    ))
                }
                Ok(rx) if self.report_waits => {
                    // Restart mode: the cycle check above ran; report instead of waiting.
                    drop(rx);
                    st.locks.stop_wait(self.xid);
                    return Err(would_block_error(holder));
                }
                Ok(rx) => rx,
            }
        };
        let mut cancel = self.cancel.0.subscribe();
        let timeout = self.lock_timeout;
        let result = tokio::select! {
            biased;
            _ = cancel.wait_for(|c| *c) => Err(PgError::new(SqlState::QueryCanceled, "canceling statement due to user request")),
            _ = rx => Ok(()),
            _ = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            } => Err(PgError::new(SqlState::LockNotAvailable, "canceling statement due to lock timeout")),
        };
        if matches!(&result, Err(e) if e.code == SqlState::QueryCanceled) {
            self.cancel.0.send_replace(false);
        }
        self.store.state().locks.stop_wait(self.xid);
        result
    }

    /// Take relation lock `mode` on `rel` (held to the end of the transaction), waiting for
    /// conflicting holders (`LOCK TABLE`; the store's own operations take theirs implicitly).
    ///
    /// Errors: 40P01, 55P03, 57014 while waiting.
    pub async fn lock_relation(&mut self, rel: RelId, mode: LockMode) -> Result<(), PgError> {
        self.check_open()?;
        loop {
            let holder = {
                let mut st = self.store.state();
                match st.locks.try_lock(self.xid, rel, mode) {
                    Ok(()) => return Ok(()),
                    Err(h) => {
                        st.locks.enqueue(self.xid, rel, mode);
                        h
                    }
                }
            };
            if let Err(e) = self.wait_for(holder).await {
                self.store.state().locks.dequeue(self.xid, rel);
                return Err(e);
            }
        }
    }

    /// Lock `rel` and check that it exists for this transaction; returns its entry.
    async fn open_rel(&mut self, rel: RelId, mode: LockMode) -> Result<RelEntry, PgError> {
        self.lock_relation(rel, mode).await?;
        let st = self.store.state();
        st.check_usable()?;
        st.rel(rel, self.xid).cloned()
    }

    fn table_entry(&self, st: &State, rel: RelId) -> Result<RelEntry, PgError> {
        let e = st.rel(rel, self.xid)?;
        if e.def.kind != RelKind::Table {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("relation {rel} is not a table"),
            ));
        }
        Ok(e.clone())
    }

    /// The relation `rel` as this transaction sees it.
    pub fn relation(&self, rel: RelId) -> Option<RelDef> {
        self.store
            .state()
            .rel(rel, self.xid)
            .ok()
            .map(|e| e.def.clone())
    }

    /// The indexes of `table` this transaction sees (their keys are due on every insert/update).
    pub fn indexes(&self, table: RelId) -> Vec<RelDef> {
        self.store
            .state()
            .indexes_of(table, self.xid)
            .into_iter()
            .map(|e| e.def.clone())
            .collect()
    }

    fn create_rel(&mut self, name: &str, kind: RelKind) -> Result<(RelEntry, Change), PgError> {
        let xid = self.xid;
        let (r, undo) = self.store.with_write_undo(|c| {
            let id = RelId(c.st.next_rel);
            let sid = c.st.next_sid;
            c.undo.borrow_mut().push(Undo::Storage { sid });
            let entry = RelEntry {
                def: RelDef {
                    id,
                    name: name.to_string(),
                    kind,
                },
                sid,
                created_by: Some(xid),
                dropped_by: None,
                truncated: None,
            };
            c.put_catalog(&entry)?;
            c.put_counters(id.0 + 1, sid + 1)?;
            c.st.next_rel = id.0 + 1;
            c.st.next_sid = sid + 1;
            c.st.catalog.insert(id, entry.clone());
            let _ = c.st.locks.try_lock(xid, id, LockMode::AccessExclusive);
            Ok((
                entry.clone(),
                Change::CreateRel {
                    def: entry.def.clone(),
                    sid,
                },
            ))
        })?;
        self.undo.extend(undo);
        Ok(r)
    }

    /// CREATE TABLE: a new, empty heap, visible to others once this transaction commits.
    ///
    /// Errors: 58030 on disk failure.
    pub async fn create_table(&mut self, name: &str) -> Result<RelId, PgError> {
        self.check_open()?;
        let (e, ch) = self.create_rel(name, RelKind::Table)?;
        self.wrote = true;
        self.changes.push(ch);
        Ok(e.def.id)
    }

    /// CREATE [UNIQUE] INDEX on `table`, built from its current versions with `key_of(payload)`
    /// (which must compute the same keys the caller will pass to insert and update). Takes a
    /// Share lock on the table, so it waits for writers and blocks new ones until commit.
    ///
    /// Errors: 23505 if `unique` and two live rows share a non-NULL key; errors of `key_of`;
    /// 42P01 if the table does not exist.
    pub async fn create_index(
        &mut self,
        table: RelId,
        name: &str,
        unique: bool,
        mut key_of: impl FnMut(&[u8]) -> Result<IndexKey, PgError>,
    ) -> Result<RelId, PgError> {
        self.check_open()?;
        self.open_rel(table, LockMode::Share).await?;
        let xid = self.xid;
        let (entry, mut changes) = {
            let st = self.store.state();
            let t = self.table_entry(&st, table)?;
            drop(st);
            let heap_sid = t.sid_for(xid);
            let (entry, create) = self.create_rel(name, RelKind::Index { table, unique })?;
            let idx_sid = entry.sid;
            let built = self.store.with_write_undo(|c| {
                let mut rows = Vec::new();
                {
                    let heap = open_write(&c.w, &heap_table(heap_sid))?;
                    for e in heap.iter().map_err(io)? {
                        let (k, v) = e.map_err(io)?;
                        let (h, p) = decode_tuple(v.value())?;
                        let tid = Tid(from_be(k.value())?);
                        if h.xmin != xid && c.st.status(h.xmin) == XidStatus::Aborted {
                            continue;
                        }
                        let live =
                            unique_conflict(&h, xid, |x| c.st.status(x)) != UniqueCheck::Free;
                        rows.push((tid, key_of(p)?, live));
                    }
                }
                let mut seen = BTreeSet::new();
                let mut changes = Vec::new();
                for (tid, key, live) in rows {
                    if unique && live && !key.has_null && !seen.insert(key.bytes.clone()) {
                        return Err(PgError::new(
                            SqlState::UniqueViolation,
                            format!("could not create unique index \"{name}\""),
                        ));
                    }
                    changes.push(c.put_index(idx_sid, &key.bytes, tid)?);
                }
                Ok(changes)
            });
            match built {
                Ok((ch, undo)) => {
                    self.undo.extend(undo);
                    (entry, std::iter::once(create).chain(ch).collect::<Vec<_>>())
                }
                Err(e) => {
                    // The catalog entry exists (pending on us); the caller rolls back.
                    self.wrote = true;
                    return Err(e);
                }
            }
        };
        self.wrote = true;
        self.changes.append(&mut changes);
        Ok(entry.def.id)
    }

    /// DROP TABLE (with its indexes) or DROP INDEX, effective when this transaction commits.
    ///
    /// Errors: 42P01 if it does not exist; lock-wait errors.
    pub async fn drop_relation(&mut self, rel: RelId) -> Result<(), PgError> {
        self.check_open()?;
        let e = self.open_rel(rel, LockMode::AccessExclusive).await?;
        if let RelKind::Index { table, .. } = e.def.kind {
            self.lock_relation(table, LockMode::AccessExclusive).await?;
        }
        let xid = self.xid;
        let mut victims = vec![rel];
        {
            let st = self.store.state();
            victims.extend(st.indexes_of(rel, xid).into_iter().map(|i| i.def.id));
        }
        for v in &victims[1..] {
            self.lock_relation(*v, LockMode::AccessExclusive).await?;
        }
        let (changes, undo) = self.store.with_write_undo(|c| {
            let mut entries = Vec::new();
            for v in &victims {
                let mut e = c.st.rel(*v, xid)?.clone();
                e.dropped_by = Some(xid);
                c.put_catalog(&e)?;
                entries.push(e);
            }
            let changes = victims
                .iter()
                .map(|v| Change::DropRel { rel: *v })
                .collect::<Vec<_>>();
            for e in entries {
                c.st.catalog.insert(e.def.id, e);
            }
            Ok(changes)
        })?;
        self.undo.extend(undo);
        self.wrote = true;
        self.changes.extend(changes);
        Ok(())
    }

    /// TRUNCATE a table (and its indexes): new, empty storage, effective at commit; the old
    /// storage is deleted then (like PostgreSQL, not MVCC-safe for older snapshots).
    ///
    /// Errors: 42P01 if it does not exist or is not a table; lock-wait errors.
    pub async fn truncate(&mut self, table: RelId) -> Result<(), PgError> {
        self.check_open()?;
        self.open_rel(table, LockMode::AccessExclusive).await?;
        let xid = self.xid;
        let mut rels = vec![table];
        {
            let st = self.store.state();
            self.table_entry(&st, table)?;
            rels.extend(st.indexes_of(table, xid).into_iter().map(|i| i.def.id));
        }
        let ((changes, orphans), undo) = self.store.with_write_undo(|c| {
            let mut entries = Vec::new();
            let mut changes = Vec::new();
            let mut orphans = Vec::new();
            let mut next_sid = c.st.next_sid;
            for r in &rels {
                let mut e = c.st.rel(*r, xid)?.clone();
                // Storage replaced by this truncation is deleted when the transaction ends
                // (unless a ROLLBACK TO SAVEPOINT brought it back).
                if let Some((x, old)) = e.truncated {
                    if x == xid {
                        orphans.push(old);
                    }
                }
                if e.created_by == Some(xid) {
                    // Our own new relation: its storage can simply be emptied by replacing it.
                    orphans.push(e.sid);
                    e.truncated = None;
                    e.sid = next_sid;
                } else {
                    e.truncated = Some((xid, next_sid));
                }
                c.undo.borrow_mut().push(Undo::Storage { sid: next_sid });
                changes.push(Change::TruncateRel {
                    rel: *r,
                    sid: next_sid,
                });
                next_sid += 1;
                c.put_catalog(&e)?;
                entries.push(e);
            }
            c.put_counters(c.st.next_rel, next_sid)?;
            c.st.next_sid = next_sid;
            for e in entries {
                c.st.catalog.insert(e.def.id, e);
            }
            Ok((changes, orphans))
        })?;
        self.undo.extend(undo);
        self.orphans.extend(orphans);
        self.wrote = true;
        self.changes.extend(changes);
        Ok(())
    }

    /// INSERT one row with `payload` and its key in every index of `table`. Returns its tid.
    ///
    /// Errors: 23505 on a unique violation (after waiting for an open conflicting insert or
    /// delete to end); XX000 if `keys` does not cover the table's indexes exactly; 42P01;
    /// lock-wait errors; 58030.
    pub async fn insert(
        &mut self,
        table: RelId,
        payload: &[u8],
        keys: &[(RelId, IndexKey)],
    ) -> Result<Tid, PgError> {
        let tids = self.insert_many(table, &[(payload, keys)]).await?;
        tids.first()
            .copied()
            .ok_or_else(|| PgError::new(SqlState::InternalError, "insert returned no tuple id"))
    }

    /// INSERT many rows (multi-row INSERT, COPY FROM): each `(payload, keys)` as for
    /// [`Txn::insert`], in order, written in as few redb transactions as waits allow (one when
    /// nothing blocks). Returns their tids in order.
    ///
    /// Errors: as [`Txn::insert`]; on an error some earlier rows may be written (the caller
    /// rolls the transaction back, as PostgreSQL aborts it).
    pub async fn insert_many(
        &mut self,
        table: RelId,
        rows: &[NewRow<'_>],
    ) -> Result<Vec<Tid>, PgError> {
        self.check_open()?;
        self.open_rel(table, LockMode::RowExclusive).await?;
        let (xid, cid) = (self.xid, self.cid);
        let mut tids = Vec::with_capacity(rows.len());
        while tids.len() < rows.len() {
            let from = tids.len();
            let ((new_tids, changes, wait), undo) = self.store.with_write_undo(|c| {
                let t = self.table_entry(&c.st, table)?;
                let sid = t.sid_for(xid);
                let mut new_tids = Vec::new();
                let mut changes = Vec::new();
                for (payload, keys) in &rows[from..] {
                    let tid = c.alloc_tid(sid)?;
                    match c.index_new_version(xid, table, sid, tid, keys)? {
                        Ok(idx) => {
                            changes.push(c.put_tuple(
                                sid,
                                tid,
                                &Header::inserted(xid, cid),
                                payload,
                            )?);
                            changes.extend(idx);
                            new_tids.push(tid);
                        }
                        Err(x) => return Ok((new_tids, changes, Some(x))),
                    }
                }
                Ok((new_tids, changes, None))
            })?;
            self.undo.extend(undo);
            if !new_tids.is_empty() {
                self.wrote = true;
            }
            tids.extend(new_tids);
            self.changes.extend(changes);
            if let Some(x) = wait {
                self.wait_for(x).await?;
            }
        }
        Ok(tids)
    }

    /// The modify path shared by update, delete and row locks.
    async fn modify<T>(
        &mut self,
        table: RelId,
        tid: Tid,
        strength: RowLockStrength,
        mode: LockMode,
        mut apply: impl FnMut(
            &mut WriteCtx<'_>,
            u64,
            Tid,
            Header,
            Vec<u8>,
        ) -> Result<Result<(T, Vec<Change>), Gxid>, PgError>,
    ) -> Result<Outcome<T>, PgError> {
        self.check_open()?;
        self.open_rel(table, mode).await?;
        let (xid, cid, iso) = (self.xid, self.cid, self.isolation);
        loop {
            let step = self.store.try_write_undo(|c| -> Result<Step<T>, Abort> {
                let t = self.table_entry(&c.st, table)?;
                let sid = t.sid_for(xid);
                let found = read_tuple(&open_write(&c.w, &heap_table(sid))?, tid)?;
                let Some((h, payload)) = found else {
                    return Ok(Step::Other(Outcome::Gone));
                };
                match check_modify(&h, xid, cid, strength, |x| c.st.status(x)) {
                    Modify::Ok => match apply(c, sid, tid, h, payload)? {
                        Ok((v, ch)) => Ok(Step::Done(v, ch)),
                        Err(x) => Err(Abort::Wait(x)),
                    },
                    Modify::SelfModified => Ok(Step::Other(Outcome::SelfModified)),
                    Modify::Invisible => Ok(Step::Other(Outcome::Gone)),
                    Modify::Wait(x) => Ok(Step::Wait(x)),
                    Modify::Concurrent { next } => {
                        if iso == Isolation::RepeatableRead {
                            return Err(PgError::new(
                                SqlState::SerializationFailure,
                                if next.is_some() {
                                    "could not serialize access due to concurrent update"
                                } else {
                                    "could not serialize access due to concurrent delete"
                                },
                            )
                            .into());
                        }
                        let by = h.xmax.map(|(x, _)| x).unwrap_or(Gxid(0));
                        match next {
                            Some(n) => Ok(Step::Chase(n, by)),
                            None => Ok(Step::GoneBy(by)),
                        }
                    }
                }
            });
            let step = step.map(|(step, undo)| {
                self.undo.extend(undo);
                step
            });
            match step {
                Ok(Step::Done(v, ch)) => {
                    self.wrote = true;
                    self.changes.extend(ch);
                    return Ok(Outcome::Done(v));
                }
                Ok(Step::Other(o)) => return Ok(o),
                Ok(Step::Wait(x)) | Err(Abort::Wait(x)) => self.wait_for(x).await?,
                Ok(Step::GoneBy(by)) => {
                    self.note_followed(by);
                    return Ok(Outcome::Gone);
                }
                Ok(Step::Chase(next, by)) => {
                    self.note_followed(by);
                    return Ok(match self.latest_from(table, next).await? {
                        Some(row) => Outcome::Changed(row),
                        None => Outcome::Gone,
                    });
                }
                Err(Abort::Error(e)) => return Err(e),
            }
            // After a wait, look at the same version again.
        }
    }

    /// UPDATE the row version `tid` (one this transaction saw) to `payload`, with its new key in
    /// every index. Returns the new version's tid.
    ///
    /// Errors: 40001 under REPEATABLE READ if the row changed after the snapshot; 23505; 40P01,
    /// 55P03, 57014 while waiting; 42P01; 58030.
    pub async fn update(
        &mut self,
        table: RelId,
        tid: Tid,
        payload: &[u8],
        keys: &[(RelId, IndexKey)],
    ) -> Result<Outcome<Tid>, PgError> {
        let (xid, cid) = (self.xid, self.cid);
        self.modify(
            table,
            tid,
            RowLockStrength::Exclusive,
            LockMode::RowExclusive,
            |c, sid, old_tid, mut h, old_payload| {
                let new_tid = c.alloc_tid(sid)?;
                h.xmax = Some((xid, XmaxKind::Update));
                h.cmax = cid;
                h.next = Some(new_tid);
                let mut changes = vec![c.put_tuple(sid, old_tid, &h, &old_payload)?];
                changes.push(c.put_tuple(sid, new_tid, &Header::inserted(xid, cid), payload)?);
                match c.index_new_version(xid, table, sid, new_tid, keys)? {
                    Ok(idx) => {
                        changes.extend(idx);
                        Ok(Ok((new_tid, changes)))
                    }
                    Err(x) => Ok(Err(x)),
                }
            },
        )
        .await
    }

    /// DELETE the row version `tid` (one this transaction saw).
    ///
    /// Errors: 40001 under REPEATABLE READ if the row changed after the snapshot; 40P01, 55P03,
    /// 57014 while waiting; 42P01; 58030.
    pub async fn delete(&mut self, table: RelId, tid: Tid) -> Result<Outcome<()>, PgError> {
        let (xid, cid) = (self.xid, self.cid);
        self.modify(
            table,
            tid,
            RowLockStrength::Exclusive,
            LockMode::RowExclusive,
            |c, sid, tid, mut h, payload| {
                h.xmax = Some((xid, XmaxKind::Delete));
                h.cmax = cid;
                Ok(Ok(((), vec![c.put_tuple(sid, tid, &h, &payload)?])))
            },
        )
        .await
    }

    /// SELECT ... FOR SHARE / FOR UPDATE of the row version `tid`: held to the end of the
    /// transaction (and across PREPARE TRANSACTION and a restart, being in the tuple header).
    ///
    /// Errors: as [`Txn::delete`].
    pub async fn lock_row(
        &mut self,
        table: RelId,
        tid: Tid,
        strength: RowLockStrength,
    ) -> Result<Outcome<()>, PgError> {
        let xid = self.xid;
        self.modify(
            table,
            tid,
            strength,
            LockMode::RowShare,
            |c, sid, tid, mut h, payload| {
                if h.lockers
                    .iter()
                    .any(|(x, s)| *x == xid && (*s == strength || *s == RowLockStrength::Exclusive))
                {
                    return Ok(Ok(((), Vec::new())));
                }
                let st = &c.st;
                h.lockers
                    .retain(|(x, _)| *x != xid && st.status(*x).is_open());
                h.lockers.push((xid, strength));
                Ok(Ok(((), vec![c.put_tuple(sid, tid, &h, &payload)?])))
            },
        )
        .await
    }

    /// The newest version of the row whose version `tid` a committed transaction updated:
    /// follows the update chain (waiting for an open updater); `None` if the row was deleted.
    async fn latest_from(&mut self, table: RelId, mut tid: Tid) -> Result<Option<Row>, PgError> {
        let xid = self.xid;
        loop {
            let step = {
                let st = self.store.state();
                let sid = self.table_entry(&st, table)?.sid_for(xid);
                let r = self.store.db().begin_read().map_err(io)?;
                let Some(heap) = open_read(&r, &heap_table(sid))? else {
                    return Ok(None);
                };
                let Some((h, payload)) = read_tuple(&heap, tid)? else {
                    return Ok(None);
                };
                match h.xmax {
                    Some((x, kind)) if x != xid => match st.status(x) {
                        XidStatus::Committed => match (kind, h.next) {
                            (XmaxKind::Update, Some(n)) => Err(Ok((n, x))),
                            _ => {
                                drop(st);
                                self.note_followed(x);
                                return Ok(None);
                            }
                        },
                        XidStatus::InProgress | XidStatus::Prepared => Err(Err(x)),
                        XidStatus::Aborted => Ok(Row { tid, data: payload }),
                    },
                    _ => Ok(Row { tid, data: payload }),
                }
            };
            match step {
                Ok(row) => return Ok(Some(row)),
                Err(Ok((next, by))) => {
                    self.note_followed(by);
                    tid = next;
                }
                Err(Err(x)) => self.wait_for(x).await?,
            }
        }
    }

    /// The version at `tid` if this transaction sees it.
    ///
    /// Errors: 42P01; 58030 / XX001; lock-wait errors (waiting for a commit in flight).
    pub async fn fetch(&mut self, table: RelId, tid: Tid) -> Result<Option<Row>, PgError> {
        self.check_open()?;
        let e = self.open_rel(table, LockMode::AccessShare).await?;
        let sid = e.sid_for(self.xid);
        loop {
            let v = {
                let st = self.store.state();
                let r = self.store.db().begin_read().map_err(io)?;
                let Some(heap) = open_read(&r, &heap_table(sid))? else {
                    return Ok(None);
                };
                let Some((h, payload)) = read_tuple(&heap, tid)? else {
                    return Ok(None);
                };
                let viewer = Viewer {
                    xid: self.xid,
                    cid: self.cid,
                    snapshot: &self.snapshot,
                };
                match visible(&h, &viewer, |x| st.status(x)) {
                    Visibility::Visible => return Ok(Some(Row { tid, data: payload })),
                    Visibility::Invisible => return Ok(None),
                    Visibility::WaitFor(x) => x,
                }
            };
            self.wait_for(v).await?;
        }
    }

    /// A sequential scan of `table` in tid order (reversed if `reverse`).
    ///
    /// Errors: 42P01; lock-wait errors.
    pub async fn scan(&mut self, table: RelId, reverse: bool) -> Result<Scan, PgError> {
        self.check_open()?;
        let e = self.open_rel(table, LockMode::AccessShare).await?;
        if e.def.kind != RelKind::Table {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("relation {table} is not a table"),
            ));
        }
        Ok(Scan {
            heap_sid: e.sid_for(self.xid),
            index_sid: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse,
            done: false,
        })
    }

    /// An index scan of `index` over `range`, in key order (descending if `reverse`); rows come
    /// back from the indexed table.
    ///
    /// Errors: 42P01; XX000 if `index` is not an index; lock-wait errors.
    pub async fn index_scan(
        &mut self,
        index: RelId,
        range: KeyRange,
        reverse: bool,
    ) -> Result<Scan, PgError> {
        self.check_open()?;
        let e = {
            let st = self.store.state();
            st.rel(index, self.xid)?.clone()
        };
        let RelKind::Index { table, .. } = e.def.kind else {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("relation {index} is not an index"),
            ));
        };
        let t = self.open_rel(table, LockMode::AccessShare).await?;
        self.lock_relation(index, LockMode::AccessShare).await?;
        let e = self.store.state().rel(index, self.xid)?.clone();
        let (lower, upper) = range.entry_bounds();
        Ok(Scan {
            heap_sid: t.sid_for(self.xid),
            index_sid: Some(e.sid_for(self.xid)),
            lower,
            upper,
            reverse,
            done: false,
        })
    }

    /// The next up to `max` (≥ 1) visible rows of `scan`; an empty vector once it is done.
    ///
    /// Errors: 58030 / XX001 from the disk; lock-wait errors (waiting for a commit in flight).
    pub async fn next(&mut self, scan: &mut Scan, max: usize) -> Result<Vec<Row>, PgError> {
        self.check_open()?;
        let max = max.max(1);
        let mut out = Vec::new();
        while !scan.done && out.len() < max {
            let wait = self.read_batch(scan, max - out.len(), &mut out)?;
            if let Some(x) = wait {
                if !out.is_empty() {
                    break;
                }
                self.wait_for(x).await?;
            }
        }
        Ok(out)
    }

    /// Read visible rows into `out` (at most `want`); returns a GXID to wait for if one blocks.
    fn read_batch(
        &self,
        scan: &mut Scan,
        want: usize,
        out: &mut Vec<Row>,
    ) -> Result<Option<Gxid>, PgError> {
        let st = self.store.state();
        st.check_usable()?;
        let r = self.store.db().begin_read().map_err(io)?;
        let Some(heap) = open_read(&r, &heap_table(scan.heap_sid))? else {
            scan.done = true;
            return Ok(None);
        };
        let viewer = Viewer {
            xid: self.xid,
            cid: self.cid,
            snapshot: &self.snapshot,
        };
        let source = match scan.index_sid {
            Some(sid) => {
                let Some(t) = open_read(&r, &index_table(sid))? else {
                    scan.done = true;
                    return Ok(None);
                };
                Some(t)
            }
            None => None,
        };
        let table = source.as_ref().unwrap_or(&heap);
        let bounds = (
            scan.lower.as_ref().map(Vec::as_slice),
            scan.upper.as_ref().map(Vec::as_slice),
        );
        if !bounds_nonempty(&bounds) {
            scan.done = true;
            return Ok(None);
        }
        let range = table.range::<&[u8]>(bounds).map_err(io)?;
        let iter: Box<dyn Iterator<Item = _>> = if scan.reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut exhausted = true;
        // The last consumed entry's key guard: the scan's bound moves past it once per batch.
        let mut last = None;
        let mut wait = None;
        for e in iter {
            if out.len() >= want {
                exhausted = false;
                break;
            }
            let (k, v) = e.map_err(io)?;
            let seen = if scan.index_sid.is_some() {
                let tid = entry_tid(k.value())?;
                match heap.get(be(tid.0).as_slice()).map_err(io)? {
                    Some(t) => {
                        let (h, p) = decode_tuple(t.value())?;
                        match visible(&h, &viewer, |x| st.status(x)) {
                            Visibility::Visible => Ok(Some(Row {
                                tid,
                                data: p.to_vec(),
                            })),
                            Visibility::Invisible => Ok(None),
                            Visibility::WaitFor(x) => Err(x),
                        }
                    }
                    None => Ok(None), // vacuumed since the index entry was read
                }
            } else {
                let (h, p) = decode_tuple(v.value())?;
                match visible(&h, &viewer, |x| st.status(x)) {
                    Visibility::Visible => Ok(Some(Row {
                        tid: Tid(from_be(k.value())?),
                        data: p.to_vec(),
                    })),
                    Visibility::Invisible => Ok(None),
                    Visibility::WaitFor(x) => Err(x),
                }
            };
            match seen {
                Ok(Some(row)) => out.push(row),
                Ok(None) => {}
                Err(x) => {
                    wait = Some(x);
                    exhausted = false;
                    break;
                }
            }
            last = Some(k);
        }
        if let Some(k) = last {
            advance(scan, k.value().to_vec());
        }
        if wait.is_some() {
            return Ok(wait);
        }
        if exhausted {
            scan.done = true;
        }
        Ok(None)
    }

    /// `SAVEPOINT`: remember this point; [`Txn::rollback_to`] reverts every write made after it.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo: self.undo.len(),
            changes: self.changes.len(),
        }
    }

    /// `ROLLBACK TO SAVEPOINT`: revert every row, index and DDL change made after `sp`, in
    /// reverse order, in one redb transaction; the change log forgets them too. The savepoint
    /// stays usable (PostgreSQL keeps it after ROLLBACK TO). Locks taken after it are kept to the
    /// end of the transaction (PostgreSQL releases them; holding them longer is safe, only less
    /// concurrent), and so are waits other transactions started on them.
    ///
    /// Errors: 25000 if the transaction ended or `sp` is not from it; 58030 on disk failure.
    pub fn rollback_to(&mut self, sp: &Savepoint) -> Result<(), PgError> {
        self.check_open()?;
        if sp.undo > self.undo.len() || sp.changes > self.changes.len() {
            return Err(PgError::new(
                SqlState::InvalidTransactionState,
                "savepoint does not belong to this transaction state",
            ));
        }
        let steps: Vec<Undo> = self.undo[sp.undo..].to_vec();
        if !steps.is_empty() {
            self.store.with_write(|c| {
                let mut catalog = Vec::new();
                for step in steps.iter().rev() {
                    match step {
                        Undo::Tuple { sid, tid, before } => {
                            let mut t = open_write(&c.w, &heap_table(*sid))?;
                            match before {
                                Some(b) => {
                                    t.insert(be(tid.0).as_slice(), b.as_slice()).map_err(io)?;
                                }
                                None => {
                                    t.remove(be(tid.0).as_slice()).map_err(io)?;
                                }
                            }
                        }
                        Undo::Index { sid, entry } => {
                            open_write(&c.w, &index_table(*sid))?
                                .remove(entry.as_slice())
                                .map_err(io)?;
                        }
                        Undo::Catalog { rel, before } => {
                            let mut t = open_write(&c.w, CATALOG)?;
                            match before {
                                Some(e) => {
                                    let v = super::commit::encode(e);
                                    t.insert(be(rel.0).as_slice(), v.as_slice()).map_err(io)?;
                                }
                                None => {
                                    t.remove(be(rel.0).as_slice()).map_err(io)?;
                                }
                            }
                            catalog.push((*rel, before.clone()));
                        }
                        Undo::Storage { sid } => {
                            c.w.delete_table(tdef(&heap_table(*sid))).map_err(io)?;
                            c.w.delete_table(tdef(&index_table(*sid))).map_err(io)?;
                        }
                    }
                }
                for (rel, before) in catalog {
                    match before {
                        Some(e) => {
                            c.st.catalog.insert(rel, e);
                        }
                        None => {
                            c.st.catalog.remove(&rel);
                        }
                    }
                }
                Ok(())
            })?;
        }
        self.undo.truncate(sp.undo);
        self.changes.truncate(sp.changes);
        Ok(())
    }

    /// Delete storage replaced by TRUNCATE that no catalog entry names any more (best effort: a
    /// crash leaves it to the orphan sweep at the next open).
    fn drop_orphans(&mut self) {
        let orphans = std::mem::take(&mut self.orphans);
        if orphans.is_empty() {
            return;
        }
        let r = self.store.with_write(|c| {
            for sid in &orphans {
                let named =
                    c.st.catalog
                        .values()
                        .any(|e| e.sid == *sid || e.truncated.is_some_and(|(_, s)| s == *sid));
                if !named {
                    c.w.delete_table(tdef(&heap_table(*sid))).map_err(io)?;
                    c.w.delete_table(tdef(&index_table(*sid))).map_err(io)?;
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(xid = %self.xid, error = %e, "could not delete replaced storage; the next open does");
        }
    }

    /// COMMIT: durable (group commit) before it returns; releases locks and wakes waiters.
    /// Returns the LSN of the commit record, or `None` for a transaction that wrote nothing here
    /// (it commits without touching the disk).
    ///
    /// Errors: 58030 if the disk failed (the outcome is then unknown until restart).
    pub async fn commit(mut self) -> Result<Option<Lsn>, PgError> {
        self.check_open()?;
        self.ended = true;
        if !self.wrote {
            self.end_in_memory();
            return Ok(None);
        }
        let changes = std::mem::take(&mut self.changes);
        let r = self
            .store
            .submit_end(self.xid, EndKind::Commit, changes)
            .await;
        if r.is_err() {
            self.end_in_memory();
        } else {
            self.drop_orphans();
        }
        r.map(Some)
    }

    /// PREPARE TRANSACTION `gid`: the changes and locks become durable and survive a restart;
    /// the transaction then belongs to no session and ends with [`Store::commit_prepared`] or
    /// [`Store::rollback_prepared`]. Returns the LSN of the prepare record.
    ///
    /// Errors: 42710 if `gid` is in use (the transaction is rolled back, as PostgreSQL does);
    /// 22023 if `gid` is longer than 200 bytes; 58030.
    pub async fn prepare(mut self, gid: &str, info: PrepareInfo) -> Result<Lsn, PgError> {
        self.check_open()?;
        if gid.len() >= 200 {
            self.abort_now();
            return Err(PgError::new(
                SqlState::InvalidParameterValue,
                format!("transaction identifier \"{gid}\" is too long"),
            ));
        }
        self.ended = true;
        let changes = std::mem::take(&mut self.changes);
        let r = self
            .store
            .submit_end(
                self.xid,
                EndKind::Prepare {
                    gid: gid.to_string(),
                    info,
                },
                changes,
            )
            .await;
        if r.is_err() {
            self.ended = false;
            self.abort_now();
        }
        r
    }

    /// ROLLBACK: the transaction's versions become dead, its DDL is undone, locks released.
    pub fn rollback(mut self) {
        self.abort_now();
    }

    fn end_in_memory(&mut self) {
        let mut st = self.store.state();
        if st.status(self.xid) == XidStatus::InProgress {
            st.clog.remove(&self.xid);
        }
        st.active.remove(&self.xid);
        st.locks.end(self.xid);
    }

    fn abort_now(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let xid = self.xid;
        let touched: Vec<RelEntry> = self
            .store
            .state()
            .catalog
            .values()
            .filter(|e| e.pending_for(xid))
            .cloned()
            .collect();
        if !touched.is_empty() {
            let undo = self.store.with_write(|c| {
                let mut after = Vec::new();
                for e in touched {
                    let id = e.def.id;
                    let (a, gone) = e.on_abort(xid);
                    match &a {
                        Some(a) => c.put_catalog(a)?,
                        None => {
                            open_write(&c.w, CATALOG)?
                                .remove(be(id.0).as_slice())
                                .map_err(io)?;
                        }
                    }
                    for sid in gone {
                        c.w.delete_table(tdef(&heap_table(sid))).map_err(io)?;
                        c.w.delete_table(tdef(&index_table(sid))).map_err(io)?;
                    }
                    after.push((id, a));
                }
                for (id, a) in after {
                    match a {
                        Some(a) => {
                            c.st.catalog.insert(id, a);
                        }
                        None => {
                            c.st.catalog.remove(&id);
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = undo {
                // The catalog still names our pending DDL; the store reverts it when reopened.
                tracing::warn!(%xid, error = %e, "could not undo DDL at rollback; it is undone at the next open");
            }
        }
        self.end_in_memory();
        self.drop_orphans();
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.abort_now();
    }
}

fn bounds_nonempty(b: &(Bound<&[u8]>, Bound<&[u8]>)) -> bool {
    match b {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s < e,
        _ => true,
    }
}

fn advance(scan: &mut Scan, key: Vec<u8>) {
    if scan.reverse {
        scan.upper = Bound::Excluded(key);
    } else {
        scan.lower = Bound::Excluded(key);
    }
}

/// Why a write closure gave up: an error, or a GXID to wait for (its partial writes, e.g. an
/// update's old version already stamped before a unique check found an open conflicting
/// insert, are dropped with the redb transaction either way).
enum Abort {
    Error(PgError),
    Wait(Gxid),
}

impl From<PgError> for Abort {
    fn from(e: PgError) -> Abort {
        Abort::Error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_select_exact_keys() {
        let r = KeyRange::prefix(&[1, 0xff]);
        assert_eq!(r.upper, Bound::Excluded(vec![2]));
        assert_eq!(KeyRange::prefix(&[0xff]).upper, Bound::Unbounded);
        let (lo, hi) = KeyRange::eq(&[5]).entry_bounds();
        let e = entry_key(&[5], Tid(3));
        let inside = |k: &Vec<u8>| {
            (match &lo {
                Bound::Included(l) => k >= l,
                Bound::Excluded(l) => k > l,
                Bound::Unbounded => true,
            }) && (match &hi {
                Bound::Included(h) => k <= h,
                Bound::Excluded(h) => k < h,
                Bound::Unbounded => true,
            })
        };
        assert!(inside(&e));
        assert!(!inside(&entry_key(&[6], Tid(0))));
        assert!(!inside(&entry_key(&[4], Tid(u64::MAX))));
    }
}
