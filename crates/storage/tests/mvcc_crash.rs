//! Crash tests of the MVCC store on the simulated disk, under madsim (`cargo test --features sim`
//! at the workspace root runs them).
//!
//! - `crash_loop_keeps_acknowledged_commits`: rounds of concurrent sessions (multi-row inserts,
//!   updates, deletes on a table with a unique index and one with a plain index; unique
//!   violations; commits, PREPAREs, COMMIT/ROLLBACK PREPARED, rollbacks, transactions left open;
//!   VACUUM) cut by a power loss at a random moment: anywhere, right after a commit was sent, or
//!   right after its batch became durable but before the committer was told; sometimes with the
//!   disk failing first, sometimes failing again during recovery. The test keeps its own record
//!   of what was acknowledged and checks after every reopen that every acknowledged commit is
//!   there, an unacknowledged one is wholly there or wholly absent, transactions open at the
//!   crash are aborted, prepared ones come back (listed, with their relation and row locks, and
//!   COMMIT/ROLLBACK PREPARED works on them), the indexes agree with the heaps, the tuples verify
//!   and the change log is intact (gapless, unchanged, a commit record exactly for the committed
//!   transactions). GXIDs are never reused: after a restart the GTM starts past the largest.
//! - `group_commit_batches_concurrent_commits`: concurrent commits share fsyncs.
//! - `uncommitted_ddl_is_undone_by_recovery`: tables and indexes of transactions that did not
//!   commit are gone after a crash (catalog and storage); prepared DDL comes back with its lock.
//!
//! Every test builds its own madsim runtime from a fixed seed, so a failure names the seed and
//! round that reproduce it.
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use madsim::runtime::{Handle, Runtime};
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    Change, IndexKey, Isolation, KeyRange, LocalGtm, LockMode, Lsn, Outcome, PrepareInfo, RelId,
    Store, StoreConfig, Txn, XidStatus,
};
use pgxc_storage::{Disk, SimDisk};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FILE: &str = "dn.redb";
/// Concurrent sessions per round; session `s` owns the keys `k` with `k % SESSIONS == s`.
const SESSIONS: i64 = 4;
/// Table 0 has a unique index on the key, table 1 a non-unique one.
const TABLES: usize = 2;

fn run<F: Future>(seed: u64, f: impl FnOnce() -> F) -> F::Output {
    Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(f())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn key(k: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(k)])
}

/// Payloads are `table:key:writer-xid:value`, so every row names the transaction that wrote it.
fn payload(table: usize, k: i64, x: Gxid, v: u32) -> Vec<u8> {
    format!("{table}:{k}:{}:{v}", x.0).into_bytes()
}

fn key_of_payload(p: &[u8]) -> i64 {
    let s = std::str::from_utf8(p).expect("utf-8 payload");
    s.split(':')
        .nth(1)
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("bad payload {s:?}"))
}

fn show(p: &Option<Vec<u8>>) -> String {
    match p {
        Some(p) => String::from_utf8_lossy(p).into_owned(),
        None => "<absent>".into(),
    }
}

fn info() -> PrepareInfo {
    PrepareInfo {
        prepared_at: 0,
        owner: "tester".into(),
        database: "db".into(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    table: usize,
    k: i64,
}

/// Where a transaction the model still tracks stands (acknowledged ends are applied at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Running, left open, or failed before ending: must come back aborted.
    Open,
    /// COMMIT sent, no answer (in flight at the crash, or failed): committed or aborted.
    Committing,
    /// PREPARE sent, no answer: prepared or aborted.
    Preparing,
    /// PREPARE acknowledged: must come back prepared.
    Prepared,
    /// COMMIT PREPARED sent, no answer: committed or still prepared.
    CommittingPrepared,
    /// ROLLBACK PREPARED sent, no answer: aborted or still prepared.
    RollingBackPrepared,
}

impl Phase {
    fn allowed(self) -> &'static [XidStatus] {
        match self {
            Phase::Open => &[XidStatus::Aborted],
            Phase::Committing => &[XidStatus::Committed, XidStatus::Aborted],
            Phase::Preparing => &[XidStatus::Prepared, XidStatus::Aborted],
            Phase::Prepared => &[XidStatus::Prepared],
            Phase::CommittingPrepared => &[XidStatus::Committed, XidStatus::Prepared],
            Phase::RollingBackPrepared => &[XidStatus::Aborted, XidStatus::Prepared],
        }
    }

    fn is_prepared(self) -> bool {
        matches!(
            self,
            Phase::Prepared | Phase::CommittingPrepared | Phase::RollingBackPrepared
        )
    }
}

/// A key's value before a transaction and after it (`None` = no row).
type BeforeAfter = (Option<Vec<u8>>, Option<Vec<u8>>);

struct TxnRec {
    phase: Phase,
    gid: String,
    /// Per key: its value before the transaction and after it (`None` = no row).
    writes: BTreeMap<Key, BeforeAfter>,
    /// The round (store incarnation) in which it was prepared.
    prepared_in: u64,
}

/// What an acknowledged call put in the change log.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Acked {
    Commit,
    Prepare(String),
    CommitPrepared(String),
    RollbackPrepared(String),
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    rounds: u64,
    acked_commits: u64,
    acked_prepares: u64,
    acked_resolutions: u64,
    unique_violations: u64,
    inflight_at_crash: u64,
    failed_ends: u64,
    unknown_committed: u64,
    unknown_aborted: u64,
    unknown_prepared: u64,
    open_aborted: u64,
    prepared_survived: u64,
    resolved_after_restart: u64,
    lock_checks: u64,
    injected_failure_rounds: u64,
    failed_opens: u64,
    torn_writes: u64,
    vacuumed: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.rounds += o.rounds;
        self.acked_commits += o.acked_commits;
        self.acked_prepares += o.acked_prepares;
        self.acked_resolutions += o.acked_resolutions;
        self.unique_violations += o.unique_violations;
        self.inflight_at_crash += o.inflight_at_crash;
        self.failed_ends += o.failed_ends;
        self.unknown_committed += o.unknown_committed;
        self.unknown_aborted += o.unknown_aborted;
        self.unknown_prepared += o.unknown_prepared;
        self.open_aborted += o.open_aborted;
        self.prepared_survived += o.prepared_survived;
        self.resolved_after_restart += o.resolved_after_restart;
        self.lock_checks += o.lock_checks;
        self.injected_failure_rounds += o.injected_failure_rounds;
        self.failed_opens += o.failed_opens;
        self.torn_writes += o.torn_writes;
        self.vacuumed += o.vacuumed;
    }
}

/// The test's own record of the acknowledged state, shared by the sessions of a round.
struct Model {
    tables: [RelId; TABLES],
    indexes: [RelId; TABLES],
    /// Rows as of every acknowledged (or recovered-as-committed) transaction.
    stable: BTreeMap<Key, Vec<u8>>,
    /// Keys written by a transaction that has not ended (no one else touches them).
    locked: BTreeSet<Key>,
    /// Transactions whose end was not acknowledged yet.
    txns: BTreeMap<Gxid, TxnRec>,
    committed: BTreeSet<Gxid>,
    aborted: BTreeSet<Gxid>,
    /// Change-log records acknowledged to the test.
    acked_log: Vec<(Lsn, Gxid, Acked)>,
    /// The change log as read at the last reopen (it must only grow).
    log_seen: Vec<pgxc_storage::mvcc::ChangeRecord>,
    gtm: LocalGtm,
    max_xid: u64,
    next_key: i64,
    round: u64,
    /// COMMITs, PREPAREs and COMMIT/ROLLBACK PREPAREDs sent and not answered.
    in_flight: u64,
    crashed: bool,
    stats: Stats,
}

fn lock(m: &Mutex<Model>) -> MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Model {
    fn new() -> Model {
        Model {
            tables: [RelId(0); TABLES],
            indexes: [RelId(0); TABLES],
            stable: BTreeMap::new(),
            locked: BTreeSet::new(),
            txns: BTreeMap::new(),
            committed: BTreeSet::new(),
            aborted: BTreeSet::new(),
            acked_log: Vec::new(),
            log_seen: Vec::new(),
            gtm: LocalGtm::default(),
            max_xid: 0,
            next_key: 0,
            round: 0,
            in_flight: 0,
            crashed: false,
            stats: Stats::default(),
        }
    }

    fn begin(&mut self) -> (Gxid, Snapshot) {
        let x = self.gtm.begin();
        self.max_xid = self.max_xid.max(x.0);
        (x, self.snapshot())
    }

    /// The GTM's snapshot plus every prepared transaction (the GTM keeps them running until
    /// COMMIT/ROLLBACK PREPARED, also across a datanode restart).
    fn snapshot(&self) -> Snapshot {
        let s = self.gtm.snapshot();
        let mut running: BTreeSet<Gxid> = s.xip.iter().copied().collect();
        running.extend(
            self.txns
                .iter()
                .filter(|(_, r)| r.phase.is_prepared())
                .map(|(x, _)| *x),
        );
        Snapshot::new(s.xmax, running.into_iter().collect())
    }

    /// The transaction `x` committed: its writes become the stable state.
    fn apply_commit(&mut self, x: Gxid) {
        let rec = self.txns.remove(&x).expect("tracked transaction");
        for (k, (_, after)) in rec.writes {
            match after {
                Some(v) => self.stable.insert(k, v),
                None => self.stable.remove(&k),
            };
            self.locked.remove(&k);
        }
        self.committed.insert(x);
        self.gtm.end(x);
    }

    /// The transaction `x` aborted: its writes vanish.
    fn apply_abort(&mut self, x: Gxid) {
        let rec = self.txns.remove(&x).expect("tracked transaction");
        for k in rec.writes.keys() {
            self.locked.remove(k);
        }
        self.aborted.insert(x);
        self.gtm.end(x);
    }

    /// Keys of session `s` free to update or delete.
    fn own_keys(&self, s: i64) -> Vec<Key> {
        self.stable
            .keys()
            .filter(|k| k.k % SESSIONS == s && !self.locked.contains(k))
            .copied()
            .collect()
    }
}

/// One transaction of session `s`: 1 to 4 statements, then COMMIT, PREPARE, ROLLBACK, or left
/// open in `held` until the crash. Errors are the disk's (58030); the session stops on them.
async fn one_txn(
    store: &Store,
    model: &Mutex<Model>,
    s: i64,
    rng: &mut StdRng,
    held: &mut Vec<Txn>,
) -> Result<(), PgError> {
    let (x, snap) = lock(model).begin();
    let mut t = store.begin(x, Isolation::ReadCommitted, snap)?;
    lock(model).txns.insert(
        x,
        TxnRec {
            phase: Phase::Open,
            gid: format!("gid-{}", x.0),
            writes: BTreeMap::new(),
            prepared_in: 0,
        },
    );
    // This transaction's view of the keys it touched.
    let mut local: BTreeMap<Key, Option<Vec<u8>>> = BTreeMap::new();
    let ops = rng.gen_range(1..=4);
    for _ in 0..ops {
        // READ COMMITTED: each statement takes a fresh snapshot, consistent with the keys it
        // may pick (those whose last writer has ended).
        let (tables, indexes, candidates, fresh, snap) = {
            let mut m = lock(model);
            let mut c: Vec<Key> = m.own_keys(s);
            c.retain(|k| !local.contains_key(k));
            c.extend(local.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| *k));
            c.sort();
            let fresh = m.next_key * SESSIONS + s;
            m.next_key += 1;
            (m.tables, m.indexes, c, fresh, m.snapshot())
        };
        t.set_snapshot(snap)?;
        let current = |k: &Key, m: &Model| -> Option<Vec<u8>> {
            local
                .get(k)
                .cloned()
                .unwrap_or_else(|| m.stable.get(k).cloned())
        };
        let roll = rng.gen_range(0..100);
        if candidates.len() < 6 || roll < 30 {
            // INSERT a new key.
            let table = rng.gen_range(0..TABLES);
            let k = Key { table, k: fresh };
            let p = payload(table, fresh, x, rng.gen());
            t.insert(tables[table], &p, &[(indexes[table], key(fresh))])
                .await?;
            record(model, x, k, None, Some(p.clone()));
            local.insert(k, Some(p));
        } else {
            let k = candidates[rng.gen_range(0..candidates.len())];
            let expected = current(&k, &lock(model));
            let mut sc = t
                .index_scan(indexes[k.table], KeyRange::eq(&key(k.k).bytes), false)
                .await?;
            let rows = t.next(&mut sc, 10).await?;
            let found: Vec<String> = rows.iter().map(|r| show(&Some(r.data.clone()))).collect();
            assert!(
                rows.len() == 1 && Some(&rows[0].data) == expected.as_ref(),
                "txn {x}: key {k:?}: expected {}, found {found:?}",
                show(&expected)
            );
            if roll < 35 && k.table == 0 {
                // A duplicate key in the unique index: 23505, and the transaction rolls back.
                let p = payload(0, k.k, x, rng.gen());
                let e = t
                    .insert(tables[0], &p, &[(indexes[0], key(k.k))])
                    .await
                    .expect_err("duplicate key");
                if e.code == SqlState::IoError {
                    return Err(e);
                }
                assert_eq!(e.code, SqlState::UniqueViolation, "txn {x}: {e:?}");
                t.rollback();
                let mut m = lock(model);
                m.apply_abort(x);
                m.stats.unique_violations += 1;
                return Ok(());
            } else if roll < 70 {
                let p = payload(k.table, k.k, x, rng.gen());
                let o = t
                    .update(
                        tables[k.table],
                        rows[0].tid,
                        &p,
                        &[(indexes[k.table], key(k.k))],
                    )
                    .await?;
                assert!(
                    matches!(o, Outcome::Done(_)),
                    "txn {x}: update of {k:?} gave {o:?}"
                );
                record(model, x, k, expected, Some(p.clone()));
                local.insert(k, Some(p));
            } else {
                let o = t.delete(tables[k.table], rows[0].tid).await?;
                assert_eq!(o, Outcome::Done(()), "txn {x}: delete of {k:?}");
                record(model, x, k, expected, None);
                local.insert(k, None);
            }
        }
        t.next_command()?;
        madsim::time::sleep(ms(rng.gen_range(0..2))).await;
    }
    let end = rng.gen_range(0..100);
    if end < 60 {
        {
            let mut m = lock(model);
            m.txns.get_mut(&x).expect("tracked").phase = Phase::Committing;
            m.in_flight += 1;
        }
        let r = t.commit().await;
        let mut m = lock(model);
        m.in_flight -= 1;
        if m.crashed {
            return Ok(());
        }
        if r.is_err() {
            m.stats.failed_ends += 1;
        }
        let lsn = r?.expect("a transaction that wrote commits durably");
        m.apply_commit(x);
        m.acked_log.push((lsn, x, Acked::Commit));
        m.stats.acked_commits += 1;
    } else if end < 75 {
        let gid = {
            let mut m = lock(model);
            let rec = m.txns.get_mut(&x).expect("tracked");
            rec.phase = Phase::Preparing;
            let gid = rec.gid.clone();
            m.in_flight += 1;
            gid
        };
        let r = t.prepare(&gid, info()).await;
        let mut m = lock(model);
        m.in_flight -= 1;
        if m.crashed {
            return Ok(());
        }
        if r.is_err() {
            m.stats.failed_ends += 1;
        }
        let lsn = r?;
        let round = m.round;
        let rec = m.txns.get_mut(&x).expect("tracked");
        rec.phase = Phase::Prepared;
        rec.prepared_in = round;
        m.acked_log.push((lsn, x, Acked::Prepare(gid)));
        m.stats.acked_prepares += 1;
    } else if end < 87 {
        t.rollback();
        lock(model).apply_abort(x);
    } else {
        held.push(t);
    }
    Ok(())
}

/// Record that `x` changed key `k` from `before` to `after` (keeping the value before its first
/// change) and lock the key for it.
fn record(model: &Mutex<Model>, x: Gxid, k: Key, before: Option<Vec<u8>>, after: Option<Vec<u8>>) {
    let mut m = lock(model);
    m.locked.insert(k);
    let rec = m.txns.get_mut(&x).expect("tracked");
    rec.writes.entry(k).or_insert((before, None)).1 = after;
}

async fn session(store: Store, model: Arc<Mutex<Model>>, s: i64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut held = Vec::new();
    loop {
        madsim::time::sleep(ms(rng.gen_range(0..3))).await;
        if let Err(e) = one_txn(&store, &model, s, &mut rng, &mut held).await {
            // Only the failing disk may stop a session; the store is poisoned now.
            assert_eq!(e.code, SqlState::IoError, "session {s}: {e:?}");
            std::future::pending::<()>().await;
        }
    }
}

/// COMMIT PREPARED / ROLLBACK PREPARED of random prepared transactions, from no session.
async fn resolver(store: Store, model: Arc<Mutex<Model>>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        madsim::time::sleep(ms(rng.gen_range(1..6))).await;
        let pick = {
            let mut m = lock(&model);
            let prepared: Vec<Gxid> = m
                .txns
                .iter()
                .filter(|(_, r)| r.phase == Phase::Prepared)
                .map(|(x, _)| *x)
                .collect();
            if prepared.is_empty() {
                continue;
            }
            let x = prepared[rng.gen_range(0..prepared.len())];
            let commit = rng.gen_ratio(2, 3);
            let rec = m.txns.get_mut(&x).expect("tracked");
            rec.phase = if commit {
                Phase::CommittingPrepared
            } else {
                Phase::RollingBackPrepared
            };
            let pick = (x, rec.gid.clone(), commit, rec.prepared_in);
            m.in_flight += 1;
            pick
        };
        let (x, gid, commit, prepared_in) = pick;
        let r = if commit {
            store.commit_prepared(&gid).await
        } else {
            store.rollback_prepared(&gid).await
        };
        let failed = {
            let mut m = lock(&model);
            if m.crashed {
                return;
            }
            m.in_flight -= 1;
            match r {
                Ok(lsn) => {
                    if commit {
                        m.apply_commit(x);
                        m.acked_log.push((lsn, x, Acked::CommitPrepared(gid)));
                    } else {
                        m.apply_abort(x);
                        m.acked_log.push((lsn, x, Acked::RollbackPrepared(gid)));
                    }
                    m.stats.acked_resolutions += 1;
                    if prepared_in < m.round {
                        m.stats.resolved_after_restart += 1;
                    }
                    false
                }
                Err(e) => {
                    assert_eq!(e.code, SqlState::IoError, "resolving {gid}: {e:?}");
                    m.stats.failed_ends += 1;
                    true
                }
            }
        };
        if failed {
            std::future::pending::<()>().await;
        }
    }
}

/// VACUUM now and then, up to the oldest snapshot the GTM could still hand out.
async fn vacuumer(store: Store, model: Arc<Mutex<Model>>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        madsim::time::sleep(ms(rng.gen_range(2..10))).await;
        let horizon = lock(&model).snapshot().xmin;
        let r = store.vacuum(horizon);
        let mut m = lock(&model);
        match r {
            Ok(v) => m.stats.vacuumed += v.tuples_removed,
            Err(e) => {
                assert_eq!(e.code, SqlState::IoError, "vacuum: {e:?}");
                drop(m);
                break;
            }
        }
    }
}

/// Every visible row of table `t` by key, read by `txn` from the heap and through the index; the
/// two must agree.
async fn read_table(txn: &mut Txn, m: &Model, t: usize, ctx: &str) -> BTreeMap<i64, Vec<u8>> {
    let mut heap = BTreeMap::new();
    let mut sc = txn.scan(m.tables[t], false).await.expect("scan");
    loop {
        let rows = txn.next(&mut sc, 64).await.expect("next");
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let k = key_of_payload(&r.data);
            if let Some(old) = heap.insert(k, r.data.clone()) {
                panic!(
                    "{ctx}: table {t} key {k} visible twice: {} and {}",
                    show(&Some(old)),
                    show(&Some(r.data))
                );
            }
        }
    }
    let mut via_index = BTreeMap::new();
    let mut sc = txn
        .index_scan(m.indexes[t], KeyRange::all(), false)
        .await
        .expect("index scan");
    loop {
        let rows = txn.next(&mut sc, 64).await.expect("next");
        if rows.is_empty() {
            break;
        }
        for r in rows {
            via_index.insert(key_of_payload(&r.data), r.data);
        }
    }
    assert_eq!(heap, via_index, "{ctx}: table {t}: heap and index disagree");
    heap
}

/// After a reopen: resolve every unacknowledged transaction from the store and check the store
/// against the model.
async fn check_reopened(store: &Store, model: &Mutex<Model>, ctx: &str) {
    // Only this task runs now (the crashed node's tasks are gone): take the model out.
    let mut m = std::mem::replace(&mut *lock(model), Model::new());
    check_model(store, &mut m, ctx).await;
    *lock(model) = m;
}

async fn check_model(store: &Store, m: &mut Model, ctx: &str) {
    m.crashed = false;
    m.gtm = LocalGtm::starting_at(Gxid(m.max_xid + 1));

    // Outcomes of the transactions the crash interrupted.
    let tracked: Vec<(Gxid, Phase)> = m.txns.iter().map(|(x, r)| (*x, r.phase)).collect();
    for (x, phase) in tracked {
        let st = store.xid_status(x);
        assert!(
            phase.allowed().contains(&st),
            "{ctx}: transaction {x} was {phase:?} at the crash and is {st:?} now"
        );
        match st {
            XidStatus::Committed => {
                m.stats.unknown_committed += 1;
                m.apply_commit(x);
            }
            XidStatus::Aborted => {
                if phase == Phase::Open {
                    m.stats.open_aborted += 1;
                } else {
                    m.stats.unknown_aborted += 1;
                }
                m.apply_abort(x);
            }
            XidStatus::Prepared => {
                if phase == Phase::Preparing {
                    m.stats.unknown_prepared += 1;
                    m.txns.get_mut(&x).expect("tracked").prepared_in = m.round;
                }
                m.stats.prepared_survived += 1;
                m.txns.get_mut(&x).expect("tracked").phase = Phase::Prepared;
            }
            XidStatus::InProgress => unreachable!("not allowed"),
        }
    }
    for x in &m.committed {
        assert_eq!(
            store.xid_status(*x),
            XidStatus::Committed,
            "{ctx}: acknowledged commit {x}"
        );
    }
    for x in &m.aborted {
        assert_eq!(
            store.xid_status(*x),
            XidStatus::Aborted,
            "{ctx}: aborted transaction {x}"
        );
    }

    // Prepared transactions are back, with their relation locks.
    let prepared = store.prepared_xacts();
    let listed: BTreeMap<String, Gxid> = prepared.iter().map(|p| (p.gid.clone(), p.xid)).collect();
    let expected: BTreeMap<String, Gxid> =
        m.txns.iter().map(|(x, r)| (r.gid.clone(), *x)).collect();
    assert_eq!(listed, expected, "{ctx}: prepared transactions");
    for p in &prepared {
        let held: BTreeSet<(RelId, LockMode)> = store.relation_locks(p.xid).into_iter().collect();
        let recorded: BTreeSet<(RelId, LockMode)> = p.locks.iter().copied().collect();
        assert_eq!(
            held, recorded,
            "{ctx}: relation locks of prepared {}",
            p.gid
        );
        for k in m.txns[&p.xid].writes.keys() {
            assert!(
                held.contains(&(m.tables[k.table], LockMode::RowExclusive)),
                "{ctx}: prepared {} wrote table {} but holds {held:?}",
                p.gid,
                k.table
            );
        }
    }

    // The data: exactly the stable rows, in heap and indexes.
    let (x, snap) = m.begin();
    let mut r = store
        .begin(x, Isolation::ReadCommitted, snap)
        .expect("begin reader");
    for t in 0..TABLES {
        let got = read_table(&mut r, m, t, ctx).await;
        let want: BTreeMap<i64, Vec<u8>> = m
            .stable
            .iter()
            .filter(|(k, _)| k.table == t)
            .map(|(k, v)| (k.k, v.clone()))
            .collect();
        if got != want {
            let keys: BTreeSet<i64> = got.keys().chain(want.keys()).copied().collect();
            let diff: Vec<String> = keys
                .into_iter()
                .filter(|k| got.get(k) != want.get(k))
                .map(|k| {
                    format!(
                        "key {k}: expected {} found {}",
                        show(&want.get(&k).cloned()),
                        show(&got.get(&k).cloned())
                    )
                })
                .collect();
            panic!("{ctx}: table {t} differs from the acknowledged state: {diff:#?}");
        }
    }
    drop(r);
    m.apply_abort_untracked(x);

    // Prepared transactions still hold their row locks: a writer of one of their rows waits.
    let checks: Vec<(Gxid, Key, Option<Vec<u8>>)> = m
        .txns
        .iter()
        .take(3)
        .filter_map(|(x, rec)| {
            rec.writes
                .iter()
                .find(|(k, (before, _))| before.is_some() || k.table == 0)
                .map(|(k, (before, _))| (*x, *k, before.clone()))
        })
        .collect();
    for (p, k, before) in checks {
        let (x, snap) = m.begin();
        let mut w = store
            .begin(x, Isolation::ReadCommitted, snap)
            .expect("begin writer");
        w.set_lock_timeout(Some(Duration::ZERO));
        let (table, index) = (m.tables[k.table], m.indexes[k.table]);
        let err = match &before {
            Some(old) => {
                let mut sc = w
                    .index_scan(index, KeyRange::eq(&key(k.k).bytes), false)
                    .await
                    .expect("scan");
                let rows = w.next(&mut sc, 10).await.expect("next");
                assert_eq!(rows.len(), 1, "{ctx}: {k:?} before prepared {p}");
                assert_eq!(&rows[0].data, old, "{ctx}: {k:?} before prepared {p}");
                if x.0 % 2 == 0 {
                    w.update(
                        table,
                        rows[0].tid,
                        &payload(k.table, k.k, x, 0),
                        &[(index, key(k.k))],
                    )
                    .await
                    .map(|_| ())
                } else {
                    w.delete(table, rows[0].tid).await.map(|_| ())
                }
            }
            None => w
                .insert(table, &payload(k.table, k.k, x, 0), &[(index, key(k.k))])
                .await
                .map(|_| ()),
        };
        let err = err.expect_err("a row of a prepared transaction is locked");
        assert_eq!(
            err.code,
            SqlState::LockNotAvailable,
            "{ctx}: writing {k:?} of prepared {p}: {err:?}"
        );
        drop(w);
        m.apply_abort_untracked(x);
        m.stats.lock_checks += 1;
    }

    // Every tuple reads back intact.
    store
        .verify()
        .unwrap_or_else(|e| panic!("{ctx}: verify: {e:?}"));

    // The change log: LSNs 1.. without gaps, what was read before unchanged, every acknowledged
    // record there, and a commit record exactly for the committed transactions.
    let next = store.next_lsn();
    let log = store.changes_since(Lsn(1), usize::MAX).expect("change log");
    assert_eq!(
        log.len() as u64,
        next.0 - 1,
        "{ctx}: change log length vs next LSN {next:?}"
    );
    for (i, rec) in log.iter().enumerate() {
        assert_eq!(rec.lsn, Lsn(i as u64 + 1), "{ctx}: change log LSNs");
    }
    assert!(log.len() >= m.log_seen.len(), "{ctx}: change log shrank");
    assert!(
        log[..m.log_seen.len()] == m.log_seen[..],
        "{ctx}: change log records changed"
    );
    for (lsn, x, what) in &m.acked_log {
        let rec = log
            .get(lsn.0 as usize - 1)
            .unwrap_or_else(|| panic!("{ctx}: acknowledged {lsn:?} missing"));
        assert_eq!(rec.xid, *x, "{ctx}: record {lsn:?}");
        let ok = match (what, &rec.change) {
            (Acked::Commit, Change::Commit) => true,
            (Acked::Prepare(g), Change::Prepare { gid, .. }) => g == gid,
            (Acked::CommitPrepared(g), Change::CommitPrepared { gid }) => g == gid,
            (Acked::RollbackPrepared(g), Change::RollbackPrepared { gid }) => g == gid,
            _ => false,
        };
        assert!(
            ok,
            "{ctx}: record {lsn:?} is {:?}, acknowledged as {what:?}",
            rec.change
        );
    }
    let committed_in_log: BTreeSet<Gxid> = log
        .iter()
        .filter(|r| matches!(r.change, Change::Commit | Change::CommitPrepared { .. }))
        .map(|r| r.xid)
        .collect();
    assert_eq!(
        committed_in_log, m.committed,
        "{ctx}: commit records vs committed transactions"
    );
    let prepared_in_log: BTreeSet<Gxid> = log
        .iter()
        .filter(|r| matches!(r.change, Change::Prepare { .. }))
        .map(|r| r.xid)
        .collect();
    for x in m.txns.keys() {
        assert!(prepared_in_log.contains(x), "{ctx}: prepare record of {x}");
    }
    m.log_seen = log;
}

impl Model {
    /// A transaction the model never tracked (a reader or a lock probe) ended without commit.
    fn apply_abort_untracked(&mut self, x: Gxid) {
        self.aborted.insert(x);
        self.gtm.end(x);
    }
}

/// Create the two tables with their indexes and a few rows; acknowledged.
async fn setup(store: &Store, model: &Mutex<Model>) {
    let (x, snap) = lock(model).begin();
    let mut t = store
        .begin(x, Isolation::ReadCommitted, snap)
        .expect("begin");
    let mut tables = [RelId(0); TABLES];
    let mut indexes = [RelId(0); TABLES];
    for i in 0..TABLES {
        tables[i] = t
            .create_table(&format!("t{i}"))
            .await
            .expect("create table");
        indexes[i] = t
            .create_index(tables[i], &format!("t{i}_k"), i == 0, |p| {
                Ok(key(key_of_payload(p)))
            })
            .await
            .expect("create index");
    }
    let mut rows = Vec::new();
    for k in 0..16i64 {
        let table = (k % 2) as usize;
        let p = payload(table, k, x, 7);
        t.insert(tables[table], &p, &[(indexes[table], key(k))])
            .await
            .expect("insert");
        rows.push((Key { table, k }, p));
    }
    let lsn = t.commit().await.expect("commit").expect("lsn");
    let mut m = lock(model);
    m.tables = tables;
    m.indexes = indexes;
    m.stable.extend(rows);
    m.next_key = 16;
    m.committed.insert(x);
    m.gtm.end(x);
    m.acked_log.push((lsn, x, Acked::Commit));
}

async fn crash_loop(seed: u64, rounds: u64) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let disk = SimDisk::new();
    let model = Arc::new(Mutex::new(Model::new()));
    for round in 0..rounds {
        let ctx = format!("seed {seed} round {round}");
        lock(&model).round = round;
        // Sometimes the disk fails during recovery itself; then power fails again.
        if round > 0 && rng.gen_ratio(1, 6) {
            disk.fail_after_writes(Some(rng.gen_range(0..12)));
            if Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default()).is_err() {
                lock(&model).stats.failed_opens += 1;
            }
            disk.crash(&mut rng);
            disk.fail_after_writes(None);
        }
        let config = StoreConfig {
            commit_delay: if rng.gen_ratio(1, 3) {
                ms(1)
            } else {
                Duration::ZERO
            },
        };
        let store = Store::open(&Disk::sim(disk.clone()), FILE, config)
            .unwrap_or_else(|e| panic!("{ctx}: reopening failed: {e:?}"));
        if round == 0 {
            setup(&store, &model).await;
        } else {
            check_reopened(&store, &model, &ctx).await;
        }

        // The workload, on a node of its own so that the crash kills all of it.
        let node = Handle::current()
            .create_node()
            .name(format!("dn-{round}"))
            .build();
        for s in 0..SESSIONS {
            node.spawn(session(store.clone(), model.clone(), s, rng.gen()));
        }
        node.spawn(resolver(store.clone(), model.clone(), rng.gen()));
        node.spawn(vacuumer(store.clone(), model.clone(), rng.gen()));

        // Whole milliseconds, like the sessions' pauses, so that the crash instant is one at
        // which sessions and the commit flusher are running too.
        madsim::time::sleep(ms(rng.gen_range(0..25))).await;
        let injected = rng.gen_ratio(1, 4);
        if injected {
            disk.fail_after_writes(Some(rng.gen_range(0..60)));
            madsim::time::sleep(ms(rng.gen_range(0..10))).await;
        }
        // Land between the steps of tasks woken at the same instant: a third of the time right
        // after a commit was sent (before its batch is written), a third right after a batch
        // became durable while a commit still waits for its answer, else anywhere.
        let mode = rng.gen_range(0..3);
        if mode == 0 {
            for _ in 0..rng.gen_range(0..40) {
                madsim::task::yield_now().await;
            }
        } else {
            let mut base = disk.sync_count();
            'wait: for _ in 0..50 {
                for _ in 0..20 {
                    let syncs = disk.sync_count();
                    if lock(&model).in_flight == 0 {
                        base = syncs;
                    } else if mode == 1 || syncs > base {
                        break 'wait;
                    }
                    madsim::task::yield_now().await;
                }
                madsim::time::sleep(ms(1)).await;
            }
            if mode == 1 {
                for _ in 0..rng.gen_range(0..2) {
                    madsim::task::yield_now().await;
                }
            }
        }
        let report = disk.crash(&mut rng);
        Handle::current().kill(node.id());
        {
            let mut m = lock(&model);
            m.crashed = true;
            m.in_flight = 0;
            let inflight = m
                .txns
                .values()
                .filter(|r| {
                    matches!(
                        r.phase,
                        Phase::Committing
                            | Phase::Preparing
                            | Phase::CommittingPrepared
                            | Phase::RollingBackPrepared
                    )
                })
                .count() as u64;
            m.stats.inflight_at_crash += inflight;
            m.stats.torn_writes += report.torn_writes;
            m.stats.injected_failure_rounds += u64::from(injected);
            m.stats.rounds += 1;
        }
        disk.fail_after_writes(None);
        drop(store);
    }
    // A last reopen checks the last round.
    lock(&model).round = rounds;
    let store =
        Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default()).expect("final reopen");
    check_reopened(&store, &model, &format!("seed {seed} final")).await;
    let m = lock(&model);
    m.stats
}

#[test]
fn crash_loop_keeps_acknowledged_commits() {
    let mut total = Stats::default();
    for seed in [1u64, 2, 3, 4, 5, 6] {
        let stats = run(seed, || crash_loop(seed, 25));
        eprintln!("seed {seed}: {stats:?}");
        total.add(&stats);
    }
    eprintln!("total: {total:?}");
    // The seeds must exercise what the test is about.
    assert!(total.inflight_at_crash > 0, "{total:?}");
    assert!(
        total.unknown_committed > 0,
        "an unacknowledged commit survived: {total:?}"
    );
    assert!(
        total.unknown_aborted > 0,
        "an unacknowledged commit was lost: {total:?}"
    );
    assert!(total.open_aborted > 0, "{total:?}");
    assert!(total.prepared_survived > 0, "{total:?}");
    assert!(total.resolved_after_restart > 0, "{total:?}");
    assert!(total.lock_checks > 0, "{total:?}");
    assert!(total.unique_violations > 0, "{total:?}");
    assert!(total.failed_opens > 0, "{total:?}");
    assert!(total.torn_writes > 0, "{total:?}");
}

/// Begin, insert row `i` into `table`, commit; returns the GXID and the commit's LSN.
async fn insert_commit(
    store: Store,
    gtm: Arc<Mutex<LocalGtm>>,
    table: RelId,
    index: RelId,
    i: i64,
) -> (Gxid, Lsn) {
    let (x, snap) = {
        let mut g = gtm.lock().expect("gtm");
        let x = g.begin();
        (x, g.snapshot())
    };
    let mut t = store
        .begin(x, Isolation::ReadCommitted, snap)
        .expect("begin");
    t.insert(table, &payload(0, i, x, 1), &[(index, key(i))])
        .await
        .expect("insert");
    let lsn = t.commit().await.expect("commit").expect("lsn");
    gtm.lock().expect("gtm").end(x);
    (x, lsn)
}

async fn count_rows(store: &Store, gtm: &Mutex<LocalGtm>, table: RelId) -> usize {
    let (x, snap) = {
        let mut g = gtm.lock().expect("gtm");
        (g.begin(), g.snapshot())
    };
    let mut t = store
        .begin(x, Isolation::ReadCommitted, snap)
        .expect("begin");
    let mut sc = t.scan(table, false).await.expect("scan");
    let mut n = 0;
    loop {
        let rows = t.next(&mut sc, 100).await.expect("next");
        if rows.is_empty() {
            break;
        }
        n += rows.len();
    }
    drop(t);
    gtm.lock().expect("gtm").end(x);
    n
}

#[test]
fn group_commit_batches_concurrent_commits() {
    const N: u64 = 16;
    for (seed, delay) in [(11u64, Duration::ZERO), (12, ms(1)), (13, ms(1))] {
        run(seed, || async move {
            let disk = SimDisk::new();
            let config = StoreConfig {
                commit_delay: delay,
            };
            let store = Store::open(&Disk::sim(disk.clone()), FILE, config.clone()).expect("open");
            let gtm = Arc::new(Mutex::new(LocalGtm::default()));
            let (x, snap) = {
                let mut g = gtm.lock().expect("gtm");
                (g.begin(), g.snapshot())
            };
            let mut t = store
                .begin(x, Isolation::ReadCommitted, snap)
                .expect("begin");
            let table = t.create_table("g").await.expect("create");
            let index = t
                .create_index(table, "g_k", true, |p| Ok(key(key_of_payload(p))))
                .await
                .expect("index");
            t.commit().await.expect("commit");
            gtm.lock().expect("gtm").end(x);

            // One after another: every commit syncs on its own.
            let before = disk.sync_count();
            for i in 0..N {
                insert_commit(store.clone(), gtm.clone(), table, index, i as i64).await;
            }
            let sequential = disk.sync_count() - before;
            assert!(
                sequential >= N,
                "{N} sequential commits synced {sequential} times"
            );

            // All at once: they share syncs, and every one is acknowledged.
            let before = disk.sync_count();
            let tasks: Vec<_> = (N..2 * N)
                .map(|i| {
                    madsim::task::spawn(insert_commit(
                        store.clone(),
                        gtm.clone(),
                        table,
                        index,
                        i as i64,
                    ))
                })
                .collect();
            let mut acked = BTreeMap::new();
            for task in tasks {
                let (x, lsn) = task.await.expect("committer");
                assert!(acked.insert(lsn, x).is_none(), "LSN {lsn:?} given twice");
            }
            let batched = disk.sync_count() - before;
            eprintln!("group commit (delay {delay:?}): {N} sequential commits {sequential} syncs, {N} concurrent {batched} syncs");
            assert_eq!(acked.len() as u64, N);
            assert!(
                (1..N).contains(&batched),
                "{N} concurrent commits synced {batched} times"
            );
            assert!(
                batched * 2 <= sequential,
                "{batched} syncs batched vs {sequential} sequential"
            );
            if !delay.is_zero() {
                // Everyone arrived within the delay: one batch, the syncs of a single commit.
                assert_eq!(batched * N, sequential, "one batch expected");
            }
            let log = store.changes_since(Lsn(1), usize::MAX).expect("log");
            for (lsn, x) in &acked {
                let rec = &log[lsn.0 as usize - 1];
                assert_eq!((rec.xid, &rec.change), (*x, &Change::Commit));
            }

            // Acknowledged means durable: lose power at once and find all of them.
            let mut rng = StdRng::seed_from_u64(seed);
            disk.crash(&mut rng);
            drop(store);
            let store = Store::open(&Disk::sim(disk.clone()), FILE, config).expect("reopen");
            for x in acked.values() {
                assert_eq!(store.xid_status(*x), XidStatus::Committed);
            }
            let next = gtm.lock().expect("gtm").snapshot().xmax;
            let gtm = Mutex::new(LocalGtm::starting_at(next));
            assert_eq!(count_rows(&store, &gtm, table).await as u64, 2 * N);
        });
    }
}

/// Begin a transaction with a fresh GXID.
fn begin(store: &Store, gtm: &mut LocalGtm) -> Txn {
    let x = gtm.begin();
    store
        .begin(x, Isolation::ReadCommitted, gtm.snapshot())
        .expect("begin")
}

async fn ddl_round(i: u64) {
    let disk = SimDisk::new();
    let mut rng = StdRng::seed_from_u64(i);
    let store = Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default()).expect("open");
    let mut gtm = LocalGtm::default();
    let key_fn = |p: &[u8]| Ok(key(key_of_payload(p)));
    let row = |k: i64| payload(0, k, Gxid(0), 0);

    // B: committed table with an index and two rows.
    let mut b = begin(&store, &mut gtm);
    let b_table = b.create_table("b").await.expect("create");
    let b_index = b
        .create_index(b_table, "b_k", true, key_fn)
        .await
        .expect("index");
    for k in 0..2 {
        b.insert(b_table, &row(k), &[(b_index, key(k))])
            .await
            .expect("insert");
    }
    let bx = b.xid();
    b.commit().await.expect("commit");
    gtm.end(bx);

    // P and Q: prepared DDL.
    let mut p = begin(&store, &mut gtm);
    let px = p.xid();
    let p_table = p.create_table("p").await.expect("create");
    p.insert(p_table, &row(1), &[]).await.expect("insert");
    p.prepare("gp", info()).await.expect("prepare");
    let mut q = begin(&store, &mut gtm);
    let q_table = q.create_table("q").await.expect("create");
    let q_index = q
        .create_index(q_table, "q_k", false, key_fn)
        .await
        .expect("index");
    q.insert(q_table, &row(1), &[(q_index, key(1))])
        .await
        .expect("insert");
    q.prepare("gq", info()).await.expect("prepare");

    // A: a table, an index and rows of a transaction still open...
    let mut a = begin(&store, &mut gtm);
    let a_table = a.create_table("a").await.expect("create");
    let a_index = a
        .create_index(a_table, "a_k", true, key_fn)
        .await
        .expect("index");
    for k in 0..3 {
        a.insert(a_table, &row(k), &[(a_index, key(k))])
            .await
            .expect("insert");
    }
    assert_eq!(
        store.rel_stats(a_table).expect("stats"),
        pgxc_storage::mvcc::RelStats {
            heap_tuples: 3,
            index_entries: 3
        }
    );
    // ...made durable by C's commit...
    let mut c = begin(&store, &mut gtm);
    let c_table = c.create_table("c").await.expect("create");
    c.insert(c_table, &row(5), &[]).await.expect("insert");
    let cx = c.xid();
    c.commit().await.expect("commit");
    gtm.end(cx);
    // ...and D and E, open after the last durable write: D creates, E drops C's table.
    let mut d = begin(&store, &mut gtm);
    let d_table = d.create_table("d").await.expect("create");
    let d_index = d
        .create_index(d_table, "d_k", false, key_fn)
        .await
        .expect("index");
    for k in 0..2 {
        d.insert(d_table, &row(k), &[(d_index, key(k))])
            .await
            .expect("insert");
    }
    let mut e = begin(&store, &mut gtm);
    e.drop_relation(c_table).await.expect("drop");

    let report = disk.crash(&mut rng);
    let ctx = format!("ddl round {i} ({report:?})");
    drop((a, d, e, store));
    if i.is_multiple_of(3) {
        // The disk fails during recovery, and the power again.
        disk.fail_after_writes(Some(i % 5));
        let _ = Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default());
        disk.crash(&mut rng);
        disk.fail_after_writes(None);
    }
    let store = Store::open(&Disk::sim(disk.clone()), FILE, StoreConfig::default())
        .unwrap_or_else(|e| panic!("{ctx}: reopen: {e:?}"));
    let mut gtm = LocalGtm::starting_at(Gxid(gtm.snapshot().xmax.0));
    let names = |store: &Store| -> Vec<String> {
        let mut v: Vec<String> = store.relations().into_iter().map(|r| r.name).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&store),
        ["b", "b_k", "c"],
        "{ctx}: committed relations"
    );
    for rel in [a_table, a_index, d_table, d_index] {
        let err = store
            .rel_stats(rel)
            .expect_err("uncommitted relation is gone");
        assert_eq!(err.code, SqlState::UndefinedTable, "{ctx}: {rel}");
    }
    let gids: Vec<String> = store.prepared_xacts().into_iter().map(|p| p.gid).collect();
    assert_eq!(gids, ["gp", "gq"], "{ctx}: prepared");
    assert!(
        store
            .relation_locks(px)
            .contains(&(p_table, LockMode::AccessExclusive)),
        "{ctx}: prepared CREATE TABLE holds its lock: {:?}",
        store.relation_locks(px)
    );
    // The prepared CREATE TABLE still locks its table out.
    let mut t = begin(&store, &mut gtm);
    t.set_lock_timeout(Some(Duration::ZERO));
    let err = t
        .lock_relation(p_table, LockMode::AccessShare)
        .await
        .expect_err("locked by gp");
    assert_eq!(err.code, SqlState::LockNotAvailable, "{ctx}");
    let tx = t.xid();
    drop(t);
    gtm.end(tx);

    store.commit_prepared("gp").await.expect("commit prepared");
    store
        .rollback_prepared("gq")
        .await
        .expect("rollback prepared");
    gtm.end(px);
    assert!(store.prepared_xacts().is_empty());
    assert_eq!(
        names(&store),
        ["b", "b_k", "c", "p"],
        "{ctx}: after COMMIT PREPARED"
    );
    assert_eq!(
        store.rel_stats(q_table).expect_err("rolled back").code,
        SqlState::UndefinedTable
    );
    let gtm = Mutex::new(gtm);
    for (table, rows) in [(b_table, 2), (c_table, 1), (p_table, 1)] {
        assert_eq!(
            count_rows(&store, &gtm, table).await,
            rows,
            "{ctx}: rows of {table}"
        );
    }
    store.verify().expect("verify");

    // The storage of the relations that did not commit is gone too.
    let log = store.changes_since(Lsn(1), usize::MAX).expect("log");
    let sids: BTreeMap<String, u64> = log
        .iter()
        .filter_map(|r| match &r.change {
            Change::CreateRel { def, sid } => Some((def.name.clone(), *sid)),
            _ => None,
        })
        .collect();
    let (b_sid, q_sid, c_sid) = (sids["b"], sids["q_k"], sids["c"]);
    assert_eq!(
        c_sid,
        q_sid + 3,
        "{ctx}: A's table and index got the storages between Q's and C's: {sids:?}"
    );
    let gone = [q_sid - 1, q_sid, q_sid + 1, q_sid + 2, c_sid + 1, c_sid + 2];
    drop(store);
    let kv = Disk::sim(disk.clone()).open_kv(FILE).expect("open kv");
    assert!(
        kv.first(&format!("heap.{b_sid}")).expect("read").is_some(),
        "{ctx}: B's heap has rows"
    );
    for sid in gone {
        for name in [format!("heap.{sid}"), format!("index.{sid}")] {
            assert_eq!(
                kv.first(&name).expect("read"),
                None,
                "{ctx}: storage {name} should be gone"
            );
        }
    }
}

#[test]
fn uncommitted_ddl_is_undone_by_recovery() {
    for i in 0..9u64 {
        run(100 + i, || ddl_round(i));
    }
}
