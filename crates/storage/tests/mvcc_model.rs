//! Model-based property tests of the MVCC store's isolation levels.
//!
//! proptest generates random interleavings of BEGIN (READ COMMITTED or REPEATABLE READ), point
//! reads, full scans (sequential or by index, either direction), writes (INSERT if the key is
//! not visible, else UPDATE), DELETE, SELECT ... FOR SHARE / FOR UPDATE, COMMIT, ROLLBACK,
//! PREPARE TRANSACTION, COMMIT / ROLLBACK PREPARED, single-statement autocommit transactions,
//! VACUUM and restarts (clean or after a simulated crash) across a few sessions, on one table
//! with a unique index on an integer key. Every step runs against the store and against a small
//! reference model: committed write sets in commit order, a snapshot being a prefix of that
//! order, plus each transaction's own writes by command id and its row locks. Every read
//! result, write outcome (including READ COMMITTED's re-check of a row changed after the
//! statement's snapshot) and SQLSTATE must match the model's; a divergence fails and shrinks to
//! a minimal op sequence. After the last step every transaction is finished and the committed
//! rows, and what a full vacuum leaves, are checked too.
//!
//! To keep runs single-threaded and deterministic, every transaction has a zero lock timeout:
//! a write that would wait for an open (or prepared) transaction fails at once with 55P03, which
//! the model predicts, and the session's transaction is then rolled back (as after any error).
//!
//! Each property runs 128 cases by default; `PROPTEST_CASES=5000 cargo test -p pgxc-storage
//! --test mvcc_model` searches longer.
#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::time::Duration;

use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    IndexKey, Isolation, KeyRange, LocalGtm, Outcome, PrepareInfo, RelId, Row, RowLockStrength,
    Store, StoreConfig, Txn,
};
use pgxc_storage::{Disk, SimDisk};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::rngs::StdRng;
use rand::SeedableRng;

const FILE: &str = "dn.redb";
const SESSIONS: usize = 4;
/// The session [`Op::Autocommit`] runs in (READ COMMITTED by [`default_rr`]).
const AUTOCOMMIT: usize = SESSIONS;
const KEYS: u8 = 4;
/// Keys `0..PRESENT` start with a committed row (value [`initial`]); the others start absent.
const PRESENT: u8 = 3;

/// The isolation level of a transaction a statement begins implicitly in session `s` (an
/// explicit [`Op::Begin`] chooses its own): even sessions READ COMMITTED, odd ones REPEATABLE
/// READ.
fn default_rr(s: usize) -> bool {
    s % 2 == 1
}

/// The value a key in `0..PRESENT` starts with (committed before the first step).
fn initial(k: u8) -> u32 {
    1000 + u32::from(k)
}

/// One step of the workload. A statement (read, scan, write, delete, lock) in a session without
/// a transaction begins one (see [`default_rr`]). `stmt`: the operation starts a new statement
/// (the command counter advances and, under READ COMMITTED, the statement gets a fresh
/// snapshot); otherwise it continues the session's previous statement (same command id and
/// snapshot), which is how READ COMMITTED meets rows updated after its statement's snapshot.
#[derive(Clone, Debug)]
enum Op {
    Begin {
        s: usize,
        rr: bool,
    },
    Read {
        s: usize,
        k: u8,
        stmt: bool,
    },
    Scan {
        s: usize,
        index: bool,
        reverse: bool,
        stmt: bool,
    },
    /// Insert `k` if the session does not see it, else update it (to a value unique to the op).
    Write {
        s: usize,
        k: u8,
        stmt: bool,
    },
    Delete {
        s: usize,
        k: u8,
        stmt: bool,
    },
    /// A transaction of its own (READ COMMITTED, in an extra session) that writes or deletes `k`
    /// in one statement and then commits (or, if not `commit`, rolls back).
    Autocommit {
        k: u8,
        delete: bool,
        commit: bool,
    },
    /// SELECT ... FOR UPDATE (`exclusive`) or FOR SHARE of the row of key `k`.
    Lock {
        s: usize,
        k: u8,
        exclusive: bool,
        stmt: bool,
    },
    Commit {
        s: usize,
    },
    Abort {
        s: usize,
    },
    Prepare {
        s: usize,
    },
    /// COMMIT PREPARED the `i % n`-th of the `n` prepared transactions (oldest first).
    CommitPrepared {
        i: usize,
    },
    RollbackPrepared {
        i: usize,
    },
    Vacuum,
    /// Close and reopen the store (after a simulated crash with this seed, if any): open
    /// transactions are aborted, prepared ones survive.
    Restart {
        crash: Option<u64>,
    },
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Did {
    Inserted,
    Updated,
    Deleted,
    Locked,
    /// No row to delete or lock.
    NotFound,
    /// The row was already changed by this statement.
    SelfModified,
    /// A committed transaction deleted the row (READ COMMITTED).
    Gone,
}

/// What a write step does to a row it sees.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Update it to this value (or insert it, if not seen).
    Write(u32),
    Delete,
    /// Lock it: exclusive (FOR UPDATE) or shared (FOR SHARE).
    Lock(bool),
}

/// The observable result of one step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Obs {
    /// Not applicable (no transaction to end, session already in a transaction, nothing
    /// prepared).
    Skip,
    Ok,
    Value(Option<u32>),
    Rows(Vec<(u8, u32)>),
    /// `chased`: the store reported the row concurrently updated (`Outcome::Changed`) and the
    /// write was retried on its newest version.
    Write {
        did: Did,
        chased: bool,
    },
    Err(SqlState),
    /// The store returned something impossible (never predicted by the model).
    Anomaly(String),
}

// ---------------------------------------------------------------------------------------------
// The reference model.

/// A row version: the row's identity (an update keeps it, an insert makes a new one) and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ver {
    row: u64,
    val: u32,
}

#[derive(Clone, Debug)]
struct MTxn {
    rr: bool,
    /// The snapshot: the number of committed transactions it sees (a prefix of commit order).
    snap: usize,
    /// The current command id.
    cid: u32,
    /// Own writes per key, in order: (command id, state of the key after the write).
    own: BTreeMap<u8, Vec<(u32, Option<Ver>)>>,
    /// Row locks held on committed rows, per key: exclusive (FOR UPDATE) or shared.
    locks: BTreeMap<u8, bool>,
}

impl MTxn {
    fn new(rr: bool, snap: usize) -> MTxn {
        MTxn {
            rr,
            snap,
            cid: 0,
            own: BTreeMap::new(),
            locks: BTreeMap::new(),
        }
    }

    /// The latest own write to `k` (any command).
    fn own_last(&self, k: u8) -> Option<&(u32, Option<Ver>)> {
        self.own.get(&k).and_then(|w| w.last())
    }
}

#[derive(Debug)]
struct Model {
    /// Committed transactions so far (commit sequence numbers are 1..=commits).
    commits: usize,
    /// Per key, the state each committed transaction that wrote it left: (commit seq, state).
    hist: BTreeMap<u8, Vec<(usize, Option<Ver>)>>,
    next_row: u64,
    sessions: Vec<Option<MTxn>>,
    /// Prepared transactions, oldest first.
    prepared: Vec<MTxn>,
}

impl Model {
    fn new() -> Model {
        let mut m = Model {
            commits: 0,
            hist: BTreeMap::new(),
            next_row: 1,
            sessions: vec![None; SESSIONS + 1],
            prepared: Vec::new(),
        };
        let mut t = MTxn::new(false, 0);
        for k in 0..PRESENT {
            let row = m.next_row;
            m.next_row += 1;
            t.own.insert(
                k,
                vec![(
                    0,
                    Some(Ver {
                        row,
                        val: initial(k),
                    }),
                )],
            );
        }
        m.commit_txn(t);
        m
    }

    /// The committed state of `k` in a snapshot seeing `upto` commits.
    fn committed_at(&self, k: u8, upto: usize) -> Option<Ver> {
        self.hist
            .get(&k)
            .and_then(|h| h.iter().rev().find(|(seq, _)| *seq <= upto))
            .and_then(|(_, v)| *v)
    }

    fn latest(&self, k: u8) -> Option<Ver> {
        self.committed_at(k, usize::MAX)
    }

    /// Whether a transaction committed after snapshot `snap` wrote `k`.
    fn newer(&self, k: u8, snap: usize) -> bool {
        self.hist
            .get(&k)
            .and_then(|h| h.last())
            .is_some_and(|(seq, _)| *seq > snap)
    }

    /// What `t` sees of `k` in its current command: its own latest write from an earlier
    /// command, else its snapshot. `bool`: the version is its own.
    fn view(&self, t: &MTxn, k: u8) -> Option<(Ver, bool)> {
        let own = t
            .own
            .get(&k)
            .and_then(|w| w.iter().rev().find(|(c, _)| *c < t.cid));
        match own {
            Some((_, v)) => v.map(|v| (v, true)),
            None => self.committed_at(k, t.snap).map(|v| (v, false)),
        }
    }

    /// The open and prepared transactions other than session `s`'s.
    fn others(&self, s: usize) -> impl Iterator<Item = &MTxn> {
        self.sessions
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != s)
            .filter_map(|(_, t)| t.as_ref())
            .chain(self.prepared.iter())
    }

    /// Whether an open or prepared transaction other than session `s`'s wrote `k` (a write
    /// touching it must wait for that transaction).
    fn other_writer(&self, s: usize, k: u8) -> bool {
        self.others(s).any(|t| t.own.contains_key(&k))
    }

    /// Whether session `s` must wait to change the row of `k` (`lock = None`) or to lock it
    /// (`Some(exclusive)`): another open or prepared transaction wrote it or holds a
    /// conflicting row lock (only two share locks do not conflict).
    fn blocked(&self, s: usize, k: u8, lock: Option<bool>) -> bool {
        self.other_writer(s, k)
            || self.others(s).any(|t| match (t.locks.get(&k), lock) {
                (None, _) => false,
                (Some(false), Some(false)) => false,
                (Some(_), _) => true,
            })
    }

    fn commit_txn(&mut self, t: MTxn) {
        self.commits += 1;
        for (k, w) in t.own {
            let state = w.last().and_then(|(_, v)| *v);
            self.hist.entry(k).or_default().push((self.commits, state));
        }
    }

    fn scan(&self, t: &MTxn) -> Vec<(u8, u32)> {
        (0..KEYS)
            .filter_map(|k| self.view(t, k).map(|(v, _)| (k, v.val)))
            .collect()
    }

    /// A statement-level step of session `s`: starts a statement if asked, runs `f`, and on an
    /// error aborts the session's transaction.
    fn data(
        &mut self,
        s: usize,
        stmt: bool,
        f: impl FnOnce(&mut Model, usize) -> Result<Obs, SqlState>,
    ) -> Obs {
        let commits = self.commits;
        let t = self.sessions[s].get_or_insert_with(|| MTxn::new(default_rr(s), commits));
        if stmt {
            t.cid += 1;
            if !t.rr {
                t.snap = commits;
            }
        }
        match f(self, s) {
            Ok(o) => o,
            Err(code) => {
                self.sessions[s] = None;
                Obs::Err(code)
            }
        }
    }

    /// Write (insert or update), delete or lock key `k`.
    fn write(&mut self, s: usize, k: u8, action: Action) -> Result<Obs, SqlState> {
        let t = self.sessions[s].as_ref().expect("open session");
        let cid = t.cid;
        let written = |did, chased| Ok(Obs::Write { did, chased });
        let Some((seen, own)) = self.view(t, k) else {
            let Action::Write(val) = action else {
                return written(Did::NotFound, false);
            };
            // INSERT: the unique index waits for any open writer of the key, then rejects a
            // live one (own latest write, else the latest committed state; not the snapshot).
            if self.other_writer(s, k) {
                return Err(SqlState::LockNotAvailable);
            }
            let live = match t.own_last(k) {
                Some((_, v)) => v.is_some(),
                None => self.latest(k).is_some(),
            };
            if live {
                return Err(SqlState::UniqueViolation);
            }
            let row = self.next_row;
            self.next_row += 1;
            self.push_own(s, k, cid, Some(Ver { row, val }));
            return written(Did::Inserted, false);
        };
        let (did, lock) = match action {
            Action::Write(_) => (Did::Updated, None),
            Action::Delete => (Did::Deleted, None),
            Action::Lock(exclusive) => (Did::Locked, Some(exclusive)),
        };
        let concurrent = !own && self.newer(k, t.snap);
        if t.own_last(k).is_some_and(|(c, _)| *c == cid) {
            // This statement already changed the row (READ COMMITTED finds that out after
            // following the row to its newest version).
            return written(Did::SelfModified, concurrent && !t.rr);
        }
        if own {
            // Our own version: nobody else can have touched it.
            self.apply(s, k, cid, seen, action);
            return written(did, false);
        }
        let mut chased = false;
        if concurrent {
            if t.rr {
                return Err(SqlState::SerializationFailure);
            }
            // READ COMMITTED: follow the row to its newest committed version.
            match self.latest(k) {
                Some(l) if l.row == seen.row => chased = true,
                _ => return written(Did::Gone, false),
            }
        }
        if self.blocked(s, k, lock) {
            return Err(SqlState::LockNotAvailable);
        }
        self.apply(s, k, cid, seen, action);
        written(did, chased)
    }

    /// Record `action` of session `s` (at command `cid`) on the row `seen` of `k`.
    fn apply(&mut self, s: usize, k: u8, cid: u32, seen: Ver, action: Action) {
        let t = self.sessions[s].as_mut().expect("open session");
        let after = match action {
            Action::Write(val) => Some(Ver { row: seen.row, val }),
            Action::Delete => None,
            Action::Lock(exclusive) => {
                if !t.own.contains_key(&k) {
                    // (A lock on our own version changes nothing others can observe.)
                    let held = t.locks.entry(k).or_insert(exclusive);
                    *held |= exclusive;
                }
                return;
            }
        };
        t.own.entry(k).or_default().push((cid, after));
    }

    fn push_own(&mut self, s: usize, k: u8, cid: u32, v: Option<Ver>) {
        let t = self.sessions[s].as_mut().expect("open session");
        t.own.entry(k).or_default().push((cid, v));
    }

    fn step(&mut self, op: &Op, val: u32) -> Obs {
        match *op {
            Op::Begin { s, rr } => {
                if self.sessions[s].is_some() {
                    return Obs::Skip;
                }
                self.sessions[s] = Some(MTxn::new(rr, self.commits));
                Obs::Ok
            }
            Op::Read { s, k, stmt } => self.data(s, stmt, |m, s| {
                let t = m.sessions[s].as_ref().expect("open session");
                Ok(Obs::Value(m.view(t, k).map(|(v, _)| v.val)))
            }),
            Op::Scan {
                s,
                index,
                reverse,
                stmt,
            } => self.data(s, stmt, |m, s| {
                let t = m.sessions[s].as_ref().expect("open session");
                let mut rows = m.scan(t);
                if index && reverse {
                    rows.reverse();
                }
                Ok(Obs::Rows(rows))
            }),
            Op::Write { s, k, stmt } => {
                self.data(s, stmt, |m, s| m.write(s, k, Action::Write(val)))
            }
            Op::Delete { s, k, stmt } => self.data(s, stmt, |m, s| m.write(s, k, Action::Delete)),
            Op::Lock {
                s,
                k,
                exclusive,
                stmt,
            } => self.data(s, stmt, |m, s| m.write(s, k, Action::Lock(exclusive))),
            Op::Autocommit { k, delete, commit } => {
                let s = AUTOCOMMIT;
                let o = if delete {
                    self.data(s, true, |m, s| m.write(s, k, Action::Delete))
                } else {
                    self.data(s, true, |m, s| m.write(s, k, Action::Write(val)))
                };
                if let Some(t) = self.sessions[s].take() {
                    if commit {
                        self.commit_txn(t);
                    }
                }
                o
            }
            Op::Commit { s } => match self.sessions[s].take() {
                Some(t) => {
                    self.commit_txn(t);
                    Obs::Ok
                }
                None => Obs::Skip,
            },
            Op::Abort { s } => match self.sessions[s].take() {
                Some(_) => Obs::Ok,
                None => Obs::Skip,
            },
            Op::Prepare { s } => match self.sessions[s].take() {
                Some(t) => {
                    self.prepared.push(t);
                    Obs::Ok
                }
                None => Obs::Skip,
            },
            Op::CommitPrepared { i } | Op::RollbackPrepared { i } => {
                if self.prepared.is_empty() {
                    return Obs::Skip;
                }
                let t = self.prepared.remove(i % self.prepared.len());
                if matches!(op, Op::CommitPrepared { .. }) {
                    self.commit_txn(t);
                }
                Obs::Ok
            }
            Op::Vacuum => Obs::Ok,
            Op::Restart { .. } => {
                self.sessions.iter_mut().for_each(|t| *t = None);
                Obs::Ok
            }
        }
    }

    /// The latest committed rows.
    fn committed_rows(&self) -> Vec<(u8, u32)> {
        (0..KEYS)
            .filter_map(|k| self.latest(k).map(|v| (k, v.val)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The store under test.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn key(k: u8) -> IndexKey {
    encode_key(&[KeyDatum::Int(i64::from(k))])
}

fn payload(k: u8, val: u32) -> Vec<u8> {
    let mut p = vec![k];
    p.extend_from_slice(&val.to_be_bytes());
    p
}

fn parse(p: &[u8]) -> Option<(u8, u32)> {
    match p {
        [k, v @ ..] if v.len() == 4 => Some((*k, u32::from_be_bytes(v.try_into().ok()?))),
        _ => None,
    }
}

fn parse_rows(rows: &[Row]) -> Result<Vec<(u8, u32)>, String> {
    rows.iter()
        .map(|r| parse(&r.data).ok_or_else(|| format!("bad payload {:?} at {:?}", r.data, r.tid)))
        .collect()
}

fn info() -> PrepareInfo {
    PrepareInfo {
        prepared_at: 0,
        owner: "u".into(),
        database: "d".into(),
    }
}

/// The outcome of an update or delete, without its value.
fn plain<T>(o: Outcome<T>) -> Outcome<()> {
    match o {
        Outcome::Done(_) => Outcome::Done(()),
        Outcome::SelfModified => Outcome::SelfModified,
        Outcome::Gone => Outcome::Gone,
        Outcome::Changed(r) => Outcome::Changed(r),
    }
}

async fn drain(t: &mut Txn, mut scan: pgxc_storage::mvcc::Scan) -> Result<Vec<Row>, PgError> {
    let mut out = Vec::new();
    loop {
        let rows = t.next(&mut scan, 2).await?;
        if rows.is_empty() {
            return Ok(out);
        }
        out.extend(rows);
    }
}

struct Engine {
    disk: SimDisk,
    store: Option<Store>,
    gtm: LocalGtm,
    table: RelId,
    idx: RelId,
    sessions: Vec<Option<Txn>>,
    /// Prepared transactions (gid, GXID), oldest first: the model's order.
    prepared: Vec<(String, Gxid)>,
    gids: u32,
}

impl Engine {
    async fn new() -> Engine {
        let disk = SimDisk::new();
        let store = Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default())
            .expect("open store");
        let mut gtm = LocalGtm::default();
        let x = gtm.begin();
        let mut t = store
            .begin(x, Isolation::ReadCommitted, gtm.snapshot())
            .expect("begin");
        let table = t.create_table("t").await.expect("create table");
        let idx = t
            .create_index(table, "t_pkey", true, |p| {
                parse(p)
                    .map(|(k, _)| key(k))
                    .ok_or_else(|| PgError::new(SqlState::InternalError, "bad payload"))
            })
            .await
            .expect("create index");
        t.commit().await.expect("commit DDL");
        gtm.end(x);
        let x = gtm.begin();
        let mut t = store
            .begin(x, Isolation::ReadCommitted, gtm.snapshot())
            .expect("begin");
        for k in 0..PRESENT {
            t.insert(table, &payload(k, initial(k)), &[(idx, key(k))])
                .await
                .expect("insert initial row");
        }
        t.commit().await.expect("commit initial rows");
        gtm.end(x);
        Engine {
            disk,
            store: Some(store),
            gtm,
            table,
            idx,
            sessions: (0..=SESSIONS).map(|_| None).collect(),
            prepared: Vec::new(),
            gids: 0,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store open")
    }

    fn begin(&mut self, iso: Isolation) -> Result<Txn, PgError> {
        let x = self.gtm.begin();
        let mut t = self.store().begin(x, iso, self.gtm.snapshot())?;
        t.set_lock_timeout(Some(Duration::ZERO));
        Ok(t)
    }

    /// Roll back session `s`'s transaction after an error.
    fn fail(&mut self, s: usize, e: PgError) -> Obs {
        if let Some(t) = self.sessions[s].take() {
            let x = t.xid();
            t.rollback();
            self.gtm.end(x);
        }
        Obs::Err(e.code)
    }

    async fn read_key(&self, t: &mut Txn, k: u8) -> Result<Vec<Row>, PgError> {
        let scan = t
            .index_scan(self.idx, KeyRange::eq(&key(k).bytes), false)
            .await?;
        drain(t, scan).await
    }

    async fn data(&mut self, s: usize, stmt: bool, op: &Op, val: u32) -> Obs {
        let mut t = match self.sessions[s].take() {
            Some(t) => t,
            None => match self.begin(if default_rr(s) {
                Isolation::RepeatableRead
            } else {
                Isolation::ReadCommitted
            }) {
                Ok(t) => t,
                Err(e) => return Obs::Err(e.code),
            },
        };
        let r = self.statement(&mut t, stmt, op, val).await;
        self.sessions[s] = Some(t);
        match r {
            Ok(o) => o,
            Err(e) => self.fail(s, e),
        }
    }

    async fn statement(
        &mut self,
        t: &mut Txn,
        stmt: bool,
        op: &Op,
        val: u32,
    ) -> Result<Obs, PgError> {
        if stmt {
            t.next_command()?;
            if t.isolation() == Isolation::ReadCommitted {
                t.set_snapshot(self.gtm.snapshot())?;
            }
        }
        match *op {
            Op::Read { k, .. } => {
                let rows = self.read_key(t, k).await?;
                Ok(match parse_rows(&rows) {
                    Ok(r) if r.is_empty() => Obs::Value(None),
                    Ok(r) if r.len() == 1 && r[0].0 == k => Obs::Value(Some(r[0].1)),
                    Ok(r) => Obs::Anomaly(format!("key {k} read as {r:?}")),
                    Err(e) => Obs::Anomaly(e),
                })
            }
            Op::Scan { index, reverse, .. } => {
                let scan = if index {
                    t.index_scan(self.idx, KeyRange::all(), reverse).await?
                } else {
                    t.scan(self.table, reverse).await?
                };
                let rows = match parse_rows(&drain(t, scan).await?) {
                    Ok(r) => r,
                    Err(e) => return Ok(Obs::Anomaly(e)),
                };
                let mut sorted = rows.clone();
                sorted.sort_unstable();
                if index && reverse {
                    sorted.reverse();
                }
                if index && sorted != rows {
                    return Ok(Obs::Anomaly(format!("index scan out of order: {rows:?}")));
                }
                Ok(Obs::Rows(sorted))
            }
            Op::Write { k, .. } => self.write(t, k, Action::Write(val)).await,
            Op::Delete { k, .. } => self.write(t, k, Action::Delete).await,
            Op::Lock { k, exclusive, .. } => self.write(t, k, Action::Lock(exclusive)).await,
            _ => unreachable!("not a statement: {op:?}"),
        }
    }

    async fn write(&mut self, t: &mut Txn, k: u8, action: Action) -> Result<Obs, PgError> {
        let written = |did, chased| Ok(Obs::Write { did, chased });
        let rows = self.read_key(t, k).await?;
        let seen = match parse_rows(&rows) {
            Ok(r) if r.len() <= 1 && r.iter().all(|(rk, _)| *rk == k) => rows.first().cloned(),
            Ok(r) => return Ok(Obs::Anomaly(format!("key {k} read as {r:?}"))),
            Err(e) => return Ok(Obs::Anomaly(e)),
        };
        let Some(seen) = seen else {
            return match action {
                Action::Write(val) => {
                    t.insert(self.table, &payload(k, val), &[(self.idx, key(k))])
                        .await?;
                    written(Did::Inserted, false)
                }
                Action::Delete | Action::Lock(_) => written(Did::NotFound, false),
            };
        };
        let mut tid = seen.tid;
        let mut chased = false;
        for _ in 0..4 {
            let outcome = match action {
                Action::Write(val) => plain(
                    t.update(self.table, tid, &payload(k, val), &[(self.idx, key(k))])
                        .await?,
                ),
                Action::Delete => plain(t.delete(self.table, tid).await?),
                Action::Lock(exclusive) => {
                    let strength = if exclusive {
                        RowLockStrength::Exclusive
                    } else {
                        RowLockStrength::Share
                    };
                    t.lock_row(self.table, tid, strength).await?
                }
            };
            match outcome {
                Outcome::Done(()) => {
                    let did = match action {
                        Action::Write(_) => Did::Updated,
                        Action::Delete => Did::Deleted,
                        Action::Lock(_) => Did::Locked,
                    };
                    return written(did, chased);
                }
                Outcome::SelfModified => return written(Did::SelfModified, chased),
                Outcome::Gone => return written(Did::Gone, chased),
                Outcome::Changed(row) => {
                    // EvalPlanQual: the newest version must still be the row of key `k`.
                    if parse(&row.data).map(|(rk, _)| rk) != Some(k) {
                        return Ok(Obs::Anomaly(format!("key {k} changed into {:?}", row.data)));
                    }
                    if t.isolation() != Isolation::ReadCommitted {
                        return Ok(Obs::Anomaly(
                            "Outcome::Changed under REPEATABLE READ".into(),
                        ));
                    }
                    tid = row.tid;
                    chased = true;
                }
            }
        }
        Ok(Obs::Anomaly(format!("key {k}: the row kept changing")))
    }

    async fn step(&mut self, op: &Op, val: u32) -> Obs {
        match *op {
            Op::Begin { s, rr } => {
                if self.sessions[s].is_some() {
                    return Obs::Skip;
                }
                let iso = if rr {
                    Isolation::RepeatableRead
                } else {
                    Isolation::ReadCommitted
                };
                match self.begin(iso) {
                    Ok(t) => {
                        self.sessions[s] = Some(t);
                        Obs::Ok
                    }
                    Err(e) => Obs::Err(e.code),
                }
            }
            Op::Read { s, stmt, .. }
            | Op::Scan { s, stmt, .. }
            | Op::Write { s, stmt, .. }
            | Op::Delete { s, stmt, .. }
            | Op::Lock { s, stmt, .. } => self.data(s, stmt, op, val).await,
            Op::Autocommit { k, delete, commit } => {
                let s = AUTOCOMMIT;
                let statement = if delete {
                    Op::Delete { s, k, stmt: true }
                } else {
                    Op::Write { s, k, stmt: true }
                };
                let o = self.data(s, true, &statement, val).await;
                let end = if commit {
                    self.commit(s).await
                } else {
                    self.abort(s)
                };
                match end {
                    Obs::Ok | Obs::Skip => o,
                    other => Obs::Anomaly(format!("autocommit {o:?}, then {other:?}")),
                }
            }
            Op::Commit { s } => self.commit(s).await,
            Op::Abort { s } => self.abort(s),
            Op::Prepare { s } => {
                let Some(t) = self.sessions[s].take() else {
                    return Obs::Skip;
                };
                let x = t.xid();
                self.gids += 1;
                let gid = format!("g{}", self.gids);
                match t.prepare(&gid, info()).await {
                    Ok(_) => {
                        self.prepared.push((gid, x));
                        Obs::Ok
                    }
                    Err(e) => {
                        self.gtm.end(x);
                        Obs::Err(e.code)
                    }
                }
            }
            Op::CommitPrepared { i } | Op::RollbackPrepared { i } => {
                if self.prepared.is_empty() {
                    return Obs::Skip;
                }
                let (gid, x) = self.prepared.remove(i % self.prepared.len());
                let r = if matches!(op, Op::CommitPrepared { .. }) {
                    self.store().commit_prepared(&gid).await
                } else {
                    self.store().rollback_prepared(&gid).await
                };
                self.gtm.end(x);
                match r {
                    Ok(_) => Obs::Ok,
                    Err(e) => Obs::Err(e.code),
                }
            }
            Op::Vacuum => match self.store().vacuum(self.gtm.global_xmin()) {
                Ok(_) => Obs::Ok,
                Err(e) => Obs::Err(e.code),
            },
            Op::Restart { crash } => {
                if let Some(seed) = crash {
                    self.disk.crash(&mut StdRng::seed_from_u64(seed));
                }
                for t in self.sessions.iter_mut().filter_map(Option::take) {
                    let x = t.xid();
                    drop(t);
                    self.gtm.end(x);
                }
                self.store = None;
                match Store::open(&Disk::sim(self.disk.clone()), FILE, StoreConfig::default()) {
                    Ok(store) => self.store = Some(store),
                    Err(e) => return Obs::Anomaly(format!("reopen failed: {e}")),
                }
                let mut gids: Vec<String> = self
                    .store()
                    .prepared_xacts()
                    .into_iter()
                    .map(|p| p.gid)
                    .collect();
                let mut want: Vec<String> = self.prepared.iter().map(|p| p.0.clone()).collect();
                gids.sort();
                want.sort();
                if gids != want {
                    return Obs::Anomaly(format!(
                        "prepared after restart: {gids:?}, expected {want:?}"
                    ));
                }
                Obs::Ok
            }
        }
    }

    fn abort(&mut self, s: usize) -> Obs {
        let Some(t) = self.sessions[s].take() else {
            return Obs::Skip;
        };
        let x = t.xid();
        t.rollback();
        self.gtm.end(x);
        Obs::Ok
    }

    async fn commit(&mut self, s: usize) -> Obs {
        let Some(t) = self.sessions[s].take() else {
            return Obs::Skip;
        };
        let x = t.xid();
        let r = t.commit().await;
        self.gtm.end(x);
        match r {
            Ok(_) => Obs::Ok,
            Err(e) => Obs::Err(e.code),
        }
    }

    /// The committed rows, read by a fresh transaction both by sequential and by index scan.
    async fn committed_rows(&mut self) -> Result<Vec<(u8, u32)>, String> {
        let mut t = self
            .begin(Isolation::RepeatableRead)
            .map_err(|e| e.to_string())?;
        let x = t.xid();
        let heap = self.all_rows(&mut t, false).await;
        let by_index = self.all_rows(&mut t, true).await;
        t.commit().await.map_err(|e| e.to_string())?;
        self.gtm.end(x);
        let (heap, by_index) = (heap?, by_index?);
        if heap != by_index {
            return Err(format!("heap has {heap:?}, index finds {by_index:?}"));
        }
        Ok(heap)
    }

    async fn all_rows(&self, t: &mut Txn, index: bool) -> Result<Vec<(u8, u32)>, String> {
        let scan = if index {
            t.index_scan(self.idx, KeyRange::all(), false).await
        } else {
            t.scan(self.table, false).await
        }
        .map_err(|e| e.to_string())?;
        let mut rows = parse_rows(&drain(t, scan).await.map_err(|e| e.to_string())?)?;
        rows.sort_unstable();
        Ok(rows)
    }
}

/// Run `ops` against the store and the model, comparing every observation; then finish every
/// transaction and check the committed state, and that a full vacuum leaves exactly the live
/// rows. Returns the observations of `ops`.
fn check(ops: &[Op]) -> Result<Vec<Obs>, TestCaseError> {
    runtime().block_on(async {
        let mut engine = Engine::new().await;
        let mut model = Model::new();
        let mut seen = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let val = u32::try_from(i).expect("few ops") + 1;
            let want = model.step(op, val);
            let got = engine.step(op, val).await;
            prop_assert_eq!(&got, &want, "step #{} {:?}", i, op);
            seen.push(got);
        }
        // Commit whatever is still open, then every prepared transaction.
        let val = u32::MAX;
        for s in 0..SESSIONS {
            let op = Op::Commit { s };
            let want = model.step(&op, val);
            prop_assert_eq!(engine.step(&op, val).await, want, "final {:?}", op);
        }
        while !model.prepared.is_empty() {
            let op = Op::CommitPrepared { i: 0 };
            let want = model.step(&op, val);
            prop_assert_eq!(engine.step(&op, val).await, want, "final {:?}", op);
        }
        let want = model.committed_rows();
        prop_assert_eq!(
            engine.committed_rows().await,
            Ok(want.clone()),
            "final state"
        );
        // Nothing runs: a vacuum removes every dead version and its index entries.
        let store = engine.store().clone();
        store
            .vacuum(engine.gtm.global_xmin())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let stats = store
            .rel_stats(engine.table)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            stats.heap_tuples,
            want.len() as u64,
            "heap tuples after vacuum"
        );
        prop_assert_eq!(
            stats.index_entries,
            want.len() as u64,
            "index entries after vacuum"
        );
        prop_assert_eq!(
            engine.committed_rows().await,
            Ok(want),
            "state after vacuum"
        );
        Ok(seen)
    })
}

/// A step in one of `sessions` on one of `keys`.
fn op(sessions: &'static [usize], keys: std::ops::Range<u8>) -> impl Strategy<Value = Op> {
    let s = move || prop::sample::select(sessions);
    let k = move || keys.clone();
    let stmt = || prop::bool::weighted(0.6);
    prop_oneof![
        3 => (s(), any::<bool>()).prop_map(|(s, rr)| Op::Begin { s, rr }),
        4 => (s(), k(), stmt()).prop_map(|(s, k, stmt)| Op::Read { s, k, stmt }),
        2 => (s(), any::<bool>(), any::<bool>(), stmt())
            .prop_map(|(s, index, reverse, stmt)| Op::Scan { s, index, reverse, stmt }),
        6 => (s(), k(), stmt()).prop_map(|(s, k, stmt)| Op::Write { s, k, stmt }),
        3 => (s(), k(), stmt()).prop_map(|(s, k, stmt)| Op::Delete { s, k, stmt }),
        2 => (k(), autocommit()).prop_map(|(k, (delete, commit))| Op::Autocommit { k, delete, commit }),
        2 => (s(), k(), any::<bool>(), stmt())
            .prop_map(|(s, k, exclusive, stmt)| Op::Lock { s, k, exclusive, stmt }),
        5 => s().prop_map(|s| Op::Commit { s }),
        2 => s().prop_map(|s| Op::Abort { s }),
        1 => s().prop_map(|s| Op::Prepare { s }),
        1 => (0..3usize).prop_map(|i| Op::CommitPrepared { i }),
        1 => (0..3usize).prop_map(|i| Op::RollbackPrepared { i }),
        1 => Just(Op::Vacuum),
        1 => prop_oneof![Just(None), any::<u64>().prop_map(Some)]
            .prop_map(|crash| Op::Restart { crash }),
    ]
}

/// The `(delete, commit)` flags of an [`Op::Autocommit`]: mostly updates, mostly committed.
fn autocommit() -> impl Strategy<Value = (bool, bool)> {
    (prop::bool::weighted(0.3), prop::bool::weighted(0.75))
}

/// Steps of READ COMMITTED sessions 0 and 2 and of autocommit transactions on key `k`: single
/// random steps, and races in which a statement reads the row, one or two autocommit
/// transactions write or delete it, and the statement then updates, deletes or locks it (the
/// mix in which statements most often meet a row changed after their snapshot).
fn rc_steps(k: u8) -> impl Strategy<Value = Vec<Op>> {
    let s = || prop::sample::select(&[0usize, 2][..]);
    let stmt = || any::<bool>();
    let single = prop_oneof![
        2 => (s(), stmt()).prop_map(move |(s, stmt)| Op::Read { s, k, stmt }),
        4 => (s(), stmt()).prop_map(move |(s, stmt)| Op::Write { s, k, stmt }),
        2 => (s(), stmt()).prop_map(move |(s, stmt)| Op::Delete { s, k, stmt }),
        2 => (s(), any::<bool>(), stmt())
            .prop_map(move |(s, exclusive, stmt)| Op::Lock { s, k, exclusive, stmt }),
        4 => s().prop_map(|s| Op::Commit { s }),
        1 => s().prop_map(|s| Op::Abort { s }),
        2 => autocommit().prop_map(move |(delete, commit)| Op::Autocommit { k, delete, commit }),
    ];
    let others = prop::collection::vec(autocommit(), 1..3);
    let race = (s(), others, 0..5u8).prop_map(move |(s, others, then)| {
        let stmt = false;
        let mut ops = vec![Op::Commit { s }, Op::Read { s, k, stmt: true }];
        ops.extend(
            others
                .into_iter()
                .map(|(delete, commit)| Op::Autocommit { k, delete, commit }),
        );
        ops.push(match then {
            0 | 1 => Op::Write { s, k, stmt },
            2 => Op::Delete { s, k, stmt },
            _ => Op::Lock {
                s,
                k,
                exclusive: then == 4,
                stmt,
            },
        });
        ops
    });
    prop_oneof![3 => single.prop_map(|op| vec![op]), 1 => race]
}

/// `PROPTEST_CASES` if set (for longer runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Both hot keys: one present and one absent at the start.
const HOT: std::ops::Range<u8> = PRESENT - 1..PRESENT + 1;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Random interleavings across sessions at both isolation levels match the model.
    #[test]
    fn interleavings_match_the_model(
        ops in prop::collection::vec(op(&[0, 1, 2, 3], 0..KEYS), 1..60),
    ) {
        check(&ops)?;
    }

    /// Three sessions (READ COMMITTED, REPEATABLE READ, READ COMMITTED by default) on two hot
    /// keys, where concurrent inserts, updates, deletes and row locks meet most often.
    #[test]
    fn hot_rows_match_the_model(ops in prop::collection::vec(op(&[0, 1, 2], HOT), 1..40)) {
        check(&ops)?;
    }

    /// Two READ COMMITTED sessions on one row: statements that meet it updated or deleted
    /// after their snapshot (re-check of the newest version, or skip).
    #[test]
    fn read_committed_rechecks_match_the_model(
        ops in prop::collection::vec(rc_steps(PRESENT - 1), 1..12)
            .prop_map(|steps| steps.concat()),
    ) {
        check(&ops)?;
    }
}

/// Hand-written histories with their expected observations, pinning the model's rules (and
/// the store's) by name. Every key starts with the value [`initial`]; a write writes its step's
/// index + 1.
mod cases {
    use super::*;
    use Did::*;
    use Op::{Restart, Vacuum};

    fn begin(s: usize, rr: bool) -> Op {
        Op::Begin { s, rr }
    }

    /// A read starting a new statement.
    fn read(s: usize, k: u8) -> Op {
        Op::Read { s, k, stmt: true }
    }

    /// A read in the session's current statement.
    fn read_same(s: usize, k: u8) -> Op {
        Op::Read { s, k, stmt: false }
    }

    fn scan(s: usize, index: bool, reverse: bool) -> Op {
        Op::Scan {
            s,
            index,
            reverse,
            stmt: true,
        }
    }

    fn write(s: usize, k: u8) -> Op {
        Op::Write { s, k, stmt: true }
    }

    fn write_same(s: usize, k: u8) -> Op {
        Op::Write { s, k, stmt: false }
    }

    fn delete(s: usize, k: u8) -> Op {
        Op::Delete { s, k, stmt: true }
    }

    fn delete_same(s: usize, k: u8) -> Op {
        Op::Delete { s, k, stmt: false }
    }

    fn commit(s: usize) -> Op {
        Op::Commit { s }
    }

    fn abort(s: usize) -> Op {
        Op::Abort { s }
    }

    fn prepare(s: usize) -> Op {
        Op::Prepare { s }
    }

    fn commit_prepared(i: usize) -> Op {
        Op::CommitPrepared { i }
    }

    fn rollback_prepared(i: usize) -> Op {
        Op::RollbackPrepared { i }
    }

    fn run(ops: &[Op]) -> Vec<Obs> {
        match check(ops) {
            Ok(obs) => obs,
            Err(e) => panic!("{e}"),
        }
    }

    fn w(did: Did, chased: bool) -> Obs {
        Obs::Write { did, chased }
    }

    fn val(v: u32) -> Obs {
        Obs::Value(Some(v))
    }

    fn err(code: SqlState) -> Obs {
        Obs::Err(code)
    }

    #[test]
    fn repeatable_read_keeps_its_snapshot_and_fails_on_a_newer_row_version() {
        let obs = run(&[
            read(1, 1),
            delete(0, 2),
            write(0, 1),
            commit(0),
            read(1, 1),
            read(1, 2),
            scan(1, true, true),
            read(2, 1),
            write(1, 2),
            read(1, 2),
            write(3, 2),
            commit(3),
            write(1, 2),
            read(2, 2),
        ]);
        assert_eq!(
            obs,
            [
                val(1001),
                w(Deleted, false),
                w(Updated, false),
                Obs::Ok,
                val(1001),
                val(1002),
                Obs::Rows(vec![(2, 1002), (1, 1001), (0, 1000)]),
                val(3),
                err(SqlState::SerializationFailure),
                Obs::Value(None),
                w(Inserted, false),
                Obs::Ok,
                err(SqlState::UniqueViolation),
                val(11),
            ]
        );
    }

    #[test]
    fn an_explicit_begin_chooses_the_isolation_level_and_takes_the_snapshot() {
        let obs = run(&[
            begin(0, true),
            write(2, 1),
            commit(2),
            read(0, 1),
            begin(0, false),
            write(0, 1),
            begin(1, false),
            read(1, 1),
            write(2, 1),
            commit(2),
            read(1, 1),
        ]);
        assert_eq!(
            obs,
            [
                Obs::Ok,
                w(Updated, false),
                Obs::Ok,
                val(1001),
                Obs::Skip,
                err(SqlState::SerializationFailure),
                Obs::Ok,
                val(2),
                w(Updated, false),
                Obs::Ok,
                val(9),
            ]
        );
    }

    #[test]
    fn read_committed_follows_a_concurrent_update_within_a_statement() {
        let obs = run(&[
            read(0, 2),
            write(2, 2),
            commit(2),
            write_same(0, 2),
            write_same(0, 2),
            read_same(0, 2),
            read(0, 2),
            delete(2, 2),
            commit(0),
            read(2, 2),
        ]);
        assert_eq!(
            obs,
            [
                val(1002),
                w(Updated, false),
                Obs::Ok,
                w(Updated, true),
                w(SelfModified, true),
                val(1002),
                val(4),
                err(SqlState::LockNotAvailable),
                Obs::Ok,
                val(4),
            ]
        );
    }

    #[test]
    fn read_committed_skips_a_concurrently_deleted_row() {
        let obs = run(&[
            scan(0, false, false),
            delete(2, 0),
            write(2, 0),
            commit(2),
            delete_same(0, 0),
            write_same(0, 0),
            write(0, 0),
        ]);
        assert_eq!(
            obs,
            [
                Obs::Rows(vec![(0, 1000), (1, 1001), (2, 1002)]),
                w(Deleted, false),
                w(Inserted, false),
                Obs::Ok,
                w(Gone, false),
                w(Gone, false),
                w(Updated, false),
            ]
        );
    }

    #[test]
    fn prepared_writes_block_until_resolved_and_survive_a_crash() {
        let obs = run(&[
            write(0, 1),
            delete(0, 2),
            prepare(0),
            write(2, 1),
            write(2, 2),
            Restart { crash: Some(7) },
            read(1, 1),
            write(0, 2),
            commit_prepared(0),
            read(1, 1),
            write(1, 2),
            scan(2, true, false),
            Vacuum,
            write(0, 2),
        ]);
        assert_eq!(
            obs,
            [
                w(Updated, false),
                w(Deleted, false),
                Obs::Ok,
                err(SqlState::LockNotAvailable),
                err(SqlState::LockNotAvailable),
                Obs::Ok,
                val(1001),
                err(SqlState::LockNotAvailable),
                Obs::Ok,
                val(1001),
                err(SqlState::SerializationFailure),
                Obs::Rows(vec![(0, 1000), (1, 1)]),
                Obs::Ok,
                w(Inserted, false),
            ]
        );
    }

    #[test]
    fn rollback_prepared_discards_and_unblocks() {
        let obs = run(&[
            write(0, 0),
            prepare(0),
            prepare(2),
            Restart { crash: None },
            rollback_prepared(0),
            read(2, 0),
            write(2, 0),
        ]);
        assert_eq!(
            obs,
            [
                w(Updated, false),
                Obs::Ok,
                Obs::Skip,
                Obs::Ok,
                Obs::Ok,
                val(1000),
                w(Updated, false),
            ]
        );
    }

    #[test]
    fn an_insert_from_an_old_snapshot_conflicts_with_a_row_whose_deleter_aborted() {
        let obs = run(&[
            read(1, 3),
            read(2, 3),
            write(0, 3),
            commit(0),
            delete(0, 3),
            abort(0),
            write_same(2, 3),
            write(1, 3),
        ]);
        assert_eq!(
            obs,
            [
                Obs::Value(None),
                Obs::Value(None),
                w(Inserted, false),
                Obs::Ok,
                w(Deleted, false),
                Obs::Ok,
                err(SqlState::UniqueViolation),
                err(SqlState::UniqueViolation),
            ]
        );
    }

    #[test]
    fn a_statement_does_not_see_its_own_changes() {
        let obs = run(&[
            delete(1, 1),
            write_same(1, 1),
            read_same(1, 1),
            write(1, 1),
            read_same(1, 1),
            write_same(1, 1),
            read(1, 1),
        ]);
        assert_eq!(
            obs,
            [
                w(Deleted, false),
                w(SelfModified, false),
                val(1001),
                w(Inserted, false),
                Obs::Value(None),
                err(SqlState::UniqueViolation),
                // The error rolled the transaction back; this statement begins a new one.
                val(1001),
            ]
        );
    }
}
