//! PostgreSQL 15 behaviour of the MVCC store, scenario by scenario: a statement not seeing its
//! own changes, concurrent writers (READ COMMITTED re-check, REPEATABLE READ 40001), row and
//! relation locks, unique indexes under MVCC, lock timeouts, cancellation and deadlocks,
//! two-phase commit across a restart, transactional DDL, vacuum, group commit and the change log.
//!
//! Concurrency is driven by moving a [`Txn`] into a task and polling [`Store::waiting_for`] to
//! know that it is blocked; nothing here asserts on timing.
#![cfg(not(madsim))]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    Change, IndexKey, Isolation, KeyRange, LocalGtm, LockMode, Lsn, Outcome, PrepareInfo, RelId,
    Row, RowLockStrength, Store, StoreConfig, Txn, XidStatus,
};
use pgxc_storage::{Disk, SimDisk};

const RC: Isolation = Isolation::ReadCommitted;
const RR: Isolation = Isolation::RepeatableRead;

/// A lock timeout that only matters if an operation that must not wait does wait (then it fails
/// with 55P03 instead of hanging: the holder stays open, so the outcome does not depend on time).
const NO_WAIT: Option<Duration> = Some(Duration::from_millis(200));

fn key(i: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i)])
}

/// Row payloads are `id:val`.
fn enc(id: i64, val: i64) -> Vec<u8> {
    format!("{id}:{val}").into_bytes()
}

fn dec(data: &[u8]) -> (i64, i64) {
    let s = std::str::from_utf8(data).expect("utf-8 payload");
    let (a, b) = s.split_once(':').expect("id:val payload");
    (a.parse().expect("id"), b.parse().expect("val"))
}

fn id_key(p: &[u8]) -> Result<IndexKey, PgError> {
    Ok(key(dec(p).0))
}

fn val_key(p: &[u8]) -> Result<IndexKey, PgError> {
    Ok(key(dec(p).1))
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pgxc-mvcc-behaviour-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// One store and the GTM stand-in handing out its GXIDs and snapshots.
struct Env {
    store: Store,
    gtm: Arc<Mutex<LocalGtm>>,
}

impl Env {
    fn mem() -> Env {
        Env::on(&Disk::sim(SimDisk::new()))
    }

    fn on(disk: &Disk) -> Env {
        Env {
            store: Store::open(disk, "dn.redb", StoreConfig::default()).expect("open store"),
            gtm: Arc::new(Mutex::new(LocalGtm::default())),
        }
    }

    fn gtm(&self) -> std::sync::MutexGuard<'_, LocalGtm> {
        self.gtm.lock().expect("gtm lock")
    }

    fn begin(&self, iso: Isolation) -> Txn {
        let (x, snap) = {
            let mut g = self.gtm();
            let x = g.begin();
            (x, g.snapshot())
        };
        self.store.begin(x, iso, snap).expect("begin")
    }

    fn end(&self, x: Gxid) {
        self.gtm().end(x);
    }

    async fn commit(&self, t: Txn) {
        let x = t.xid();
        t.commit().await.expect("commit");
        self.end(x);
    }

    fn rollback(&self, t: Txn) {
        let x = t.xid();
        t.rollback();
        self.end(x);
    }

    /// A new READ COMMITTED statement: next command id and a fresh snapshot.
    fn new_statement(&self, t: &mut Txn) {
        t.next_command().expect("next command");
        let snap = self.gtm().snapshot();
        t.set_snapshot(snap).expect("set snapshot");
    }

    fn horizon(&self) -> Gxid {
        self.gtm().global_xmin()
    }

    /// Table `t` (`id:val`) with unique index `t_pkey` on id, holding `rows`, committed.
    async fn table(&self, rows: &[(i64, i64)]) -> (RelId, RelId) {
        let mut t = self.begin(RC);
        let table = t.create_table("t").await.expect("create table");
        let pk = t
            .create_index(table, "t_pkey", true, id_key)
            .await
            .expect("create index");
        for &(id, v) in rows {
            t.insert(table, &enc(id, v), &[(pk, key(id))])
                .await
                .expect("insert");
        }
        self.commit(t).await;
        (table, pk)
    }
}

/// Every row `t` sees in `table` by sequential scan, read in small batches.
async fn rows(t: &mut Txn, table: RelId) -> Vec<Row> {
    let mut s = t.scan(table, false).await.expect("scan");
    let mut out = Vec::new();
    loop {
        let batch = t.next(&mut s, 3).await.expect("next");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// The `(id, val)` pairs `t` sees, sorted.
async fn values(t: &mut Txn, table: RelId) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = rows(t, table).await.iter().map(|r| dec(&r.data)).collect();
    v.sort();
    v
}

/// The rows `t` sees under `range` of `index`.
async fn index_rows(t: &mut Txn, index: RelId, range: KeyRange) -> Vec<Row> {
    let mut s = t.index_scan(index, range, false).await.expect("index scan");
    let mut out = Vec::new();
    loop {
        let batch = t.next(&mut s, 2).await.expect("next");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// The row with primary key `id`, if `t` sees one (at most one may be visible).
async fn by_key(t: &mut Txn, pk: RelId, id: i64) -> Option<Row> {
    let mut found = index_rows(t, pk, KeyRange::eq(&key(id).bytes)).await;
    assert!(
        found.len() <= 1,
        "{} visible versions of key {id}",
        found.len()
    );
    found.pop()
}

/// Wait (polling, with a generous guard against hangs) until `xid` waits for a transaction, and
/// return that transaction.
async fn blocked(store: &Store, xid: Gxid) -> Gxid {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(h) = store.waiting_for(xid) {
            return h;
        }
        assert!(Instant::now() < deadline, "{xid} never started waiting");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Wait until `xid` waits for exactly `holder` (after an earlier holder ended).
async fn blocked_on(store: &Store, xid: Gxid, holder: Gxid) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.waiting_for(xid) != Some(holder) {
        assert!(Instant::now() < deadline, "{xid} never waited for {holder}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, PgError>) -> SqlState {
    r.expect_err("expected an error").code
}

fn done<T: std::fmt::Debug>(o: Outcome<T>) -> T {
    match o {
        Outcome::Done(v) => v,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn info(owner: &str, database: &str, at: i64) -> PrepareInfo {
    PrepareInfo {
        prepared_at: at,
        owner: owner.into(),
        database: database.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// A statement does not see its own changes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_loop_touches_each_row_once() {
    const N: i64 = 40;
    let env = Env::mem();
    let mut t = env.begin(RC);
    let table = t.create_table("t").await.unwrap();
    let pk = t.create_index(table, "t_pkey", true, id_key).await.unwrap();
    let vx = t
        .create_index(table, "t_val", false, val_key)
        .await
        .unwrap();
    let keys = |id: i64, v: i64| vec![(pk, key(id)), (vx, key(v))];
    for id in 1..=N {
        t.insert(table, &enc(id, id), &keys(id, id)).await.unwrap();
    }
    env.commit(t).await;

    let mut t = env.begin(RC);
    // UPDATE t SET val = val + 1 by sequential scan: every new version is appended to the heap
    // ahead of the cursor, and the scan must not see it.
    let mut scan = t.scan(table, false).await.unwrap();
    let mut touched = Vec::new();
    let mut old_tids = Vec::new();
    loop {
        let batch = t.next(&mut scan, 4).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let (id, v) = dec(&r.data);
            let new = done(
                t.update(table, r.tid, &enc(id, v + 1), &keys(id, v + 1))
                    .await
                    .unwrap(),
            );
            assert!(new > r.tid, "the new version moved ahead of the scan");
            touched.push(id);
            old_tids.push(r.tid);
        }
    }
    touched.sort();
    assert_eq!(
        touched,
        (1..=N).collect::<Vec<_>>(),
        "each row updated exactly once"
    );
    // Updating a row again in the same statement: TM_SelfModified.
    let o = t
        .update(table, old_tids[0], &enc(1, 99), &keys(1, 99))
        .await
        .unwrap();
    assert_eq!(o, Outcome::SelfModified);
    // The statement itself still sees the old values.
    assert_eq!(
        values(&mut t, table).await,
        (1..=N).map(|i| (i, i)).collect::<Vec<_>>()
    );
    // The next command sees the new ones.
    t.next_command().unwrap();
    assert_eq!(
        values(&mut t, table).await,
        (1..=N).map(|i| (i, i + 1)).collect::<Vec<_>>()
    );

    // The same through an ascending index scan on val: every new entry (val + 1) lands ahead of
    // the cursor, in the key range still to be read (the Halloween problem).
    let mut scan = t.index_scan(vx, KeyRange::all(), false).await.unwrap();
    let mut seen_vals = Vec::new();
    loop {
        let batch = t.next(&mut scan, 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let (id, v) = dec(&r.data);
            seen_vals.push(v);
            done(
                t.update(table, r.tid, &enc(id, v + 1), &keys(id, v + 1))
                    .await
                    .unwrap(),
            );
        }
    }
    assert_eq!(
        seen_vals,
        (2..=N + 1).collect::<Vec<_>>(),
        "in key order, each row once"
    );
    t.next_command().unwrap();
    assert_eq!(
        values(&mut t, table).await,
        (1..=N).map(|i| (i, i + 2)).collect::<Vec<_>>()
    );

    // And descending, with val = val - 1 (new entries land ahead of a reverse cursor).
    let mut scan = t.index_scan(vx, KeyRange::all(), true).await.unwrap();
    let mut seen_vals = Vec::new();
    loop {
        let batch = t.next(&mut scan, 5).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let (id, v) = dec(&r.data);
            seen_vals.push(v);
            done(
                t.update(table, r.tid, &enc(id, v - 1), &keys(id, v - 1))
                    .await
                    .unwrap(),
            );
        }
    }
    assert_eq!(seen_vals, (3..=N + 2).rev().collect::<Vec<_>>());
    t.next_command().unwrap();
    let want: Vec<(i64, i64)> = (1..=N).map(|i| (i, i + 1)).collect();
    assert_eq!(values(&mut t, table).await, want);
    env.commit(t).await;

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, want);
    // Index lookups find exactly the newest version.
    for id in [1, N / 2, N] {
        let row = by_key(&mut r, pk, id).await.expect("row by key");
        assert_eq!(dec(&row.data), (id, id + 1));
        let by_val = index_rows(&mut r, vx, KeyRange::eq(&key(id + 1).bytes)).await;
        assert_eq!(by_val.len(), 1);
        assert_eq!(dec(&by_val[0].data), (id, id + 1));
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers of the same row.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn read_committed_rechecks_the_newest_version() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10)]).await;

    let mut a = env.begin(RC);
    let r = by_key(&mut a, pk, 1).await.unwrap();
    done(
        a.update(table, r.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );

    let mut b = env.begin(RC);
    let seen = by_key(&mut b, pk, 1).await.unwrap();
    assert_eq!(dec(&seen.data), (1, 10), "A's update is not committed yet");
    let bx = b.xid();
    let h = tokio::spawn(async move {
        let r = b
            .update(table, seen.tid, &enc(1, 11), &[(pk, key(1))])
            .await;
        (b, r)
    });
    assert_eq!(blocked(&env.store, bx).await, a.xid());
    assert!(!h.is_finished());
    let ax = a.xid();
    env.commit(a).await;

    let (mut b, r) = h.await.unwrap();
    let Outcome::Changed(newest) = r.unwrap() else {
        panic!("expected Changed")
    };
    assert_eq!(dec(&newest.data), (1, 11));
    // B followed A's update: a coordinator must not end B at the GTM before A.
    assert_eq!(b.followed(), &[ax]);
    // EvalPlanQual: re-evaluate val + 1 on the newest version and update that.
    let (id, v) = dec(&newest.data);
    done(
        b.update(table, newest.tid, &enc(id, v + 1), &[(pk, key(id))])
            .await
            .unwrap(),
    );
    env.commit(b).await;

    let mut r = env.begin(RC);
    assert_eq!(
        values(&mut r, table).await,
        vec![(1, 12)],
        "both increments applied"
    );
}

#[tokio::test]
async fn repeatable_read_fails_on_concurrent_update() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;

    // The first writer commits while the second waits: 40001.
    let mut a = env.begin(RC);
    let r = by_key(&mut a, pk, 1).await.unwrap();
    done(
        a.update(table, r.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    let mut b = env.begin(RR);
    let seen = by_key(&mut b, pk, 1).await.unwrap();
    let bx = b.xid();
    let h = tokio::spawn(async move {
        let r = b
            .update(table, seen.tid, &enc(1, 11), &[(pk, key(1))])
            .await;
        (b, r)
    });
    assert_eq!(blocked(&env.store, bx).await, a.xid());
    env.commit(a).await;
    let (b, r) = h.await.unwrap();
    assert_eq!(code(r), SqlState::SerializationFailure);
    env.rollback(b);

    // The update committed before the RR transaction tried (but after its snapshot): 40001 at
    // once, and the RR snapshot still reads the old value.
    let mut b = env.begin(RR);
    let seen = by_key(&mut b, pk, 2).await.unwrap();
    let mut a = env.begin(RC);
    let r = by_key(&mut a, pk, 2).await.unwrap();
    done(
        a.update(table, r.tid, &enc(2, 21), &[(pk, key(2))])
            .await
            .unwrap(),
    );
    env.commit(a).await;
    b.next_command().unwrap();
    assert_eq!(dec(&by_key(&mut b, pk, 2).await.unwrap().data), (2, 20));
    assert_eq!(
        code(
            b.update(table, seen.tid, &enc(2, 22), &[(pk, key(2))])
                .await
        ),
        SqlState::SerializationFailure
    );
    env.rollback(b);

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 11), (2, 21)]);
}

#[tokio::test]
async fn waiter_proceeds_when_the_first_writer_aborts() {
    for iso in [RC, RR] {
        let env = Env::mem();
        let (table, pk) = env.table(&[(1, 10)]).await;
        let mut a = env.begin(RC);
        let r = by_key(&mut a, pk, 1).await.unwrap();
        done(
            a.update(table, r.tid, &enc(1, 500), &[(pk, key(1))])
                .await
                .unwrap(),
        );

        let mut b = env.begin(iso);
        let seen = by_key(&mut b, pk, 1).await.unwrap();
        let bx = b.xid();
        let h = tokio::spawn(async move {
            let r = b
                .update(table, seen.tid, &enc(1, 11), &[(pk, key(1))])
                .await;
            (b, r)
        });
        assert_eq!(blocked(&env.store, bx).await, a.xid());
        env.rollback(a);
        let (b, r) = h.await.unwrap();
        done(r.unwrap());
        env.commit(b).await;
        let mut r = env.begin(RC);
        assert_eq!(values(&mut r, table).await, vec![(1, 11)], "{iso:?}");
    }
}

#[tokio::test]
async fn concurrent_delete_is_gone_or_40001() {
    for iso in [RC, RR] {
        let env = Env::mem();
        let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;
        let mut a = env.begin(RC);
        let r = by_key(&mut a, pk, 1).await.unwrap();
        assert_eq!(a.delete(table, r.tid).await.unwrap(), Outcome::Done(()));

        let mut b = env.begin(iso);
        let seen = by_key(&mut b, pk, 1).await.unwrap();
        let bx = b.xid();
        let h = tokio::spawn(async move {
            let r = b
                .update(table, seen.tid, &enc(1, 11), &[(pk, key(1))])
                .await;
            (b, r)
        });
        assert_eq!(blocked(&env.store, bx).await, a.xid());
        env.commit(a).await;
        let (mut b, r) = h.await.unwrap();
        match iso {
            Isolation::ReadCommitted => {
                assert_eq!(r.unwrap(), Outcome::Gone);
                // The statement skips the row; the transaction goes on.
                env.new_statement(&mut b);
                let seen2 = by_key(&mut b, pk, 2).await.unwrap();
                done(
                    b.update(table, seen2.tid, &enc(2, 21), &[(pk, key(2))])
                        .await
                        .unwrap(),
                );
                env.commit(b).await;
                let mut r = env.begin(RC);
                assert_eq!(values(&mut r, table).await, vec![(2, 21)]);
            }
            Isolation::RepeatableRead => {
                assert_eq!(code(r), SqlState::SerializationFailure);
                env.rollback(b);
                let mut r = env.begin(RC);
                assert_eq!(values(&mut r, table).await, vec![(2, 20)]);
            }
        }
        // A delete of an already-deleted row under RC (delete vs delete) is Gone too.
        if iso == RC {
            let mut c = env.begin(RC);
            let r2 = by_key(&mut c, pk, 2).await.unwrap();
            let mut d = env.begin(RC);
            let seen = by_key(&mut d, pk, 2).await.unwrap();
            assert_eq!(seen.tid, r2.tid);
            done(c.delete(table, r2.tid).await.unwrap());
            env.commit(c).await;
            assert_eq!(d.delete(table, seen.tid).await.unwrap(), Outcome::Gone);
            env.commit(d).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SELECT FOR SHARE / FOR UPDATE.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn row_locks_share_and_exclusive() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;
    use RowLockStrength::{Exclusive, Share};

    // Two FOR SHARE coexist.
    let mut a = env.begin(RC);
    let ra = by_key(&mut a, pk, 1).await.unwrap();
    assert_eq!(
        a.lock_row(table, ra.tid, Share).await.unwrap(),
        Outcome::Done(())
    );
    let mut b = env.begin(RC);
    b.set_lock_timeout(NO_WAIT);
    let rb = by_key(&mut b, pk, 1).await.unwrap();
    assert_eq!(
        b.lock_row(table, rb.tid, Share).await.unwrap(),
        Outcome::Done(())
    );
    b.set_lock_timeout(None);
    // Taking it again is a no-op.
    assert_eq!(
        a.lock_row(table, ra.tid, Share).await.unwrap(),
        Outcome::Done(())
    );

    // FOR UPDATE waits for both FOR SHARE holders.
    let mut c = env.begin(RC);
    let rc = by_key(&mut c, pk, 1).await.unwrap();
    let cx = c.xid();
    let hc = tokio::spawn(async move {
        let r = c.lock_row(table, rc.tid, Exclusive).await;
        (c, r)
    });
    let first = blocked(&env.store, cx).await;
    assert!(first == a.xid() || first == b.xid());
    let (bx, ax) = (b.xid(), a.xid());
    // Ending whichever holder it waits for leaves it waiting for the other.
    if first == ax {
        env.commit(a).await;
        blocked_on(&env.store, cx, bx).await;
        assert!(!hc.is_finished());
        env.commit(b).await;
    } else {
        env.commit(b).await;
        blocked_on(&env.store, cx, ax).await;
        assert!(!hc.is_finished());
        env.commit(a).await;
    }
    let (c, r) = hc.await.unwrap();
    assert_eq!(r.unwrap(), Outcome::Done(()));

    // FOR SHARE and UPDATE wait for the FOR UPDATE holder.
    let mut d = env.begin(RC);
    let rd = by_key(&mut d, pk, 1).await.unwrap();
    let dx = d.xid();
    let hd = tokio::spawn(async move {
        let r = d.lock_row(table, rd.tid, Share).await;
        (d, r)
    });
    assert_eq!(blocked(&env.store, dx).await, c.xid());
    env.rollback(c);
    let (d, r) = hd.await.unwrap();
    assert_eq!(r.unwrap(), Outcome::Done(()));

    // An UPDATE waits for a FOR SHARE holder, and proceeds once it ends.
    let mut e = env.begin(RC);
    let re = by_key(&mut e, pk, 1).await.unwrap();
    let ex = e.xid();
    let he = tokio::spawn(async move {
        let r = e.update(table, re.tid, &enc(1, 11), &[(pk, key(1))]).await;
        (e, r)
    });
    assert_eq!(blocked(&env.store, ex).await, d.xid());
    assert!(!he.is_finished());
    env.commit(d).await;
    let (e, r) = he.await.unwrap();
    done(r.unwrap());
    env.commit(e).await;

    // A FOR SHARE lock does not block readers, nor FOR SHARE of another row, nor updates of it.
    let mut f = env.begin(RC);
    let rf = by_key(&mut f, pk, 2).await.unwrap();
    assert_eq!(
        f.lock_row(table, rf.tid, Share).await.unwrap(),
        Outcome::Done(())
    );
    let mut g = env.begin(RC);
    g.set_lock_timeout(NO_WAIT);
    assert_eq!(values(&mut g, table).await, vec![(1, 11), (2, 20)]);
    let rg = by_key(&mut g, pk, 1).await.unwrap();
    done(
        g.update(table, rg.tid, &enc(1, 12), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    env.commit(g).await;
    env.commit(f).await;
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 12), (2, 20)]);
}

// ---------------------------------------------------------------------------------------------
// Unique indexes under MVCC.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unique_index_waits_for_in_progress_inserters() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 1), (3, 3), (5, 5)]).await;

    // The conflicting inserter commits: 23505.
    let mut a = env.begin(RC);
    a.insert(table, &enc(7, 70), &[(pk, key(7))]).await.unwrap();
    let mut b = env.begin(RC);
    let bx = b.xid();
    let h = tokio::spawn(async move {
        let r = b.insert(table, &enc(7, 71), &[(pk, key(7))]).await;
        (b, r)
    });
    assert_eq!(blocked(&env.store, bx).await, a.xid());
    assert!(!h.is_finished());
    env.commit(a).await;
    let (b, r) = h.await.unwrap();
    assert_eq!(code(r), SqlState::UniqueViolation);
    env.rollback(b);

    // It aborts: the insert succeeds.
    let mut a = env.begin(RC);
    a.insert(table, &enc(8, 80), &[(pk, key(8))]).await.unwrap();
    let mut b = env.begin(RC);
    let bx = b.xid();
    let h = tokio::spawn(async move {
        let r = b.insert(table, &enc(8, 81), &[(pk, key(8))]).await;
        (b, r)
    });
    assert_eq!(blocked(&env.store, bx).await, a.xid());
    env.rollback(a);
    let (b, r) = h.await.unwrap();
    r.unwrap();
    env.commit(b).await;

    // Delete and re-insert the same key in one transaction (even in one command).
    let mut c = env.begin(RC);
    let r5 = by_key(&mut c, pk, 5).await.unwrap();
    done(c.delete(table, r5.tid).await.unwrap());
    c.insert(table, &enc(5, 55), &[(pk, key(5))]).await.unwrap();
    c.next_command().unwrap();
    assert_eq!(dec(&by_key(&mut c, pk, 5).await.unwrap().data), (5, 55));
    // A second insert of it in the same transaction is a duplicate.
    assert_eq!(
        code(c.insert(table, &enc(5, 56), &[(pk, key(5))]).await),
        SqlState::UniqueViolation
    );
    env.rollback(c);
    let mut c = env.begin(RC);
    let r5 = by_key(&mut c, pk, 5).await.unwrap();
    done(c.delete(table, r5.tid).await.unwrap());
    c.insert(table, &enc(5, 55), &[(pk, key(5))]).await.unwrap();
    env.commit(c).await;

    // A key whose deleter is still open: the insert waits; the delete commits; it succeeds.
    let mut d = env.begin(RC);
    let r3 = by_key(&mut d, pk, 3).await.unwrap();
    done(d.delete(table, r3.tid).await.unwrap());
    let mut e = env.begin(RC);
    let ex = e.xid();
    let h = tokio::spawn(async move {
        let r = e.insert(table, &enc(3, 33), &[(pk, key(3))]).await;
        (e, r)
    });
    assert_eq!(blocked(&env.store, ex).await, d.xid());
    env.commit(d).await;
    let (e, r) = h.await.unwrap();
    r.unwrap();
    env.commit(e).await;

    // A key deleted by a committed transaction can be reused directly.
    let mut f = env.begin(RC);
    let r1 = by_key(&mut f, pk, 1).await.unwrap();
    done(f.delete(table, r1.tid).await.unwrap());
    env.commit(f).await;
    let mut g = env.begin(RC);
    g.set_lock_timeout(NO_WAIT);
    g.insert(table, &enc(1, 111), &[(pk, key(1))])
        .await
        .unwrap();
    env.commit(g).await;

    let mut r = env.begin(RC);
    assert_eq!(
        values(&mut r, table).await,
        vec![(1, 111), (3, 33), (5, 55), (7, 70), (8, 81)]
    );
    for (id, v) in [(1, 111), (3, 33), (5, 55), (7, 70), (8, 81)] {
        assert_eq!(dec(&by_key(&mut r, pk, id).await.unwrap().data), (id, v));
    }
}

#[tokio::test]
async fn null_keys_never_conflict() {
    let env = Env::mem();
    // Unique index on (a, b) where payload "a:b" with b = -1 meaning NULL.
    let kv = |p: &[u8]| -> IndexKey {
        let (a, b) = dec(p);
        let b = if b < 0 {
            KeyDatum::Null
        } else {
            KeyDatum::Int(b)
        };
        encode_key(&[KeyDatum::Int(a), b])
    };
    let mut t = env.begin(RC);
    let table = t.create_table("n").await.unwrap();
    let ux = t
        .create_index(table, "n_a_b_key", true, |p| Ok(kv(p)))
        .await
        .unwrap();
    env.commit(t).await;

    // An open transaction inserted (1, NULL); another inserts the same without waiting.
    let mut a = env.begin(RC);
    a.insert(table, &enc(1, -1), &[(ux, kv(&enc(1, -1)))])
        .await
        .unwrap();
    assert!(kv(&enc(1, -1)).has_null);
    let mut b = env.begin(RC);
    b.set_lock_timeout(NO_WAIT);
    b.insert(table, &enc(1, -1), &[(ux, kv(&enc(1, -1)))])
        .await
        .unwrap();
    b.insert(table, &enc(1, -1), &[(ux, kv(&enc(1, -1)))])
        .await
        .unwrap();
    env.commit(a).await;
    env.commit(b).await;
    let mut c = env.begin(RC);
    c.set_lock_timeout(NO_WAIT);
    c.insert(table, &enc(1, -1), &[(ux, kv(&enc(1, -1)))])
        .await
        .unwrap();
    // Non-NULL keys still conflict.
    c.insert(table, &enc(1, 2), &[(ux, kv(&enc(1, 2)))])
        .await
        .unwrap();
    assert_eq!(
        code(c.insert(table, &enc(1, 2), &[(ux, kv(&enc(1, 2)))]).await),
        SqlState::UniqueViolation
    );
    env.rollback(c);

    let mut r = env.begin(RC);
    let nulls = index_rows(&mut r, ux, KeyRange::eq(&kv(&enc(1, -1)).bytes)).await;
    assert_eq!(nulls.len(), 3);
    assert_eq!(values(&mut r, table).await, vec![(1, -1); 3]);
}

// ---------------------------------------------------------------------------------------------
// lock_timeout, cancellation, deadlocks.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lock_timeout_and_cancel() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10)]).await;
    let mut a = env.begin(RC);
    let ra = by_key(&mut a, pk, 1).await.unwrap();
    done(
        a.update(table, ra.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    let ax = a.xid();

    // lock_timeout: 55P03, and no wait is left behind.
    let mut b = env.begin(RC);
    b.set_lock_timeout(Some(Duration::from_millis(20)));
    let rb = by_key(&mut b, pk, 1).await.unwrap();
    assert_eq!(
        code(b.update(table, rb.tid, &enc(1, 0), &[(pk, key(1))]).await),
        SqlState::LockNotAvailable
    );
    assert_eq!(env.store.waiting_for(b.xid()), None);
    // Relation locks time out the same way (A holds RowExclusive).
    assert_eq!(
        code(b.lock_relation(table, LockMode::AccessExclusive).await),
        SqlState::LockNotAvailable
    );
    env.rollback(b);

    // Cancel during a wait: 57014; the transaction goes on.
    let mut c = env.begin(RC);
    let cancel = c.cancel_handle();
    let rc = by_key(&mut c, pk, 1).await.unwrap();
    let cx = c.xid();
    let tid = rc.tid;
    let h = tokio::spawn(async move {
        let r = c.update(table, tid, &enc(1, 11), &[(pk, key(1))]).await;
        (c, r)
    });
    assert_eq!(blocked(&env.store, cx).await, ax);
    cancel.cancel();
    let (mut c, r) = h.await.unwrap();
    assert_eq!(code(r), SqlState::QueryCanceled);
    assert_eq!(env.store.waiting_for(cx), None);
    env.new_statement(&mut c);
    c.insert(table, &enc(2, 20), &[(pk, key(2))]).await.unwrap();
    // A later wait is not cancelled by the earlier request.
    let h = tokio::spawn(async move {
        let r = c.update(table, tid, &enc(1, 11), &[(pk, key(1))]).await;
        (c, r)
    });
    assert_eq!(blocked(&env.store, cx).await, ax);
    assert!(!h.is_finished());
    env.commit(a).await;
    let (mut c, r) = h.await.unwrap();
    let Outcome::Changed(newest) = r.unwrap() else {
        panic!("expected Changed")
    };
    let (id, v) = dec(&newest.data);
    done(
        c.update(table, newest.tid, &enc(id, v + 1), &[(pk, key(id))])
            .await
            .unwrap(),
    );
    env.commit(c).await;

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 12), (2, 20)]);
}

#[tokio::test]
async fn local_deadlock_has_one_victim() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;
    let mut a = env.begin(RC);
    let mut b = env.begin(RC);
    let a1 = by_key(&mut a, pk, 1).await.unwrap();
    let a2 = by_key(&mut a, pk, 2).await.unwrap();
    let b1 = by_key(&mut b, pk, 1).await.unwrap();
    let b2 = by_key(&mut b, pk, 2).await.unwrap();
    done(
        a.update(table, a1.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    done(
        b.update(table, b2.tid, &enc(2, 22), &[(pk, key(2))])
            .await
            .unwrap(),
    );
    let (ax, bx) = (a.xid(), b.xid());

    let ha = tokio::spawn(async move {
        let r = a.update(table, a2.tid, &enc(2, 21), &[(pk, key(2))]).await;
        (a, r)
    });
    assert_eq!(blocked(&env.store, ax).await, bx);
    let hb = tokio::spawn(async move {
        let r = b.update(table, b1.tid, &enc(1, 12), &[(pk, key(1))]).await;
        (b, r)
    });
    // B closes the cycle and is the victim (at once: a local cycle needs no timeout).
    let (b, rb) = hb.await.unwrap();
    assert_eq!(code(rb), SqlState::DeadlockDetected);
    assert!(
        !ha.is_finished(),
        "A still waits until the victim rolls back"
    );
    assert_eq!(env.store.waiting_for(ax), Some(bx));
    env.rollback(b);
    let (a, ra) = ha.await.unwrap();
    done(ra.unwrap());
    env.commit(a).await;

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 11), (2, 21)]);
}

// ---------------------------------------------------------------------------------------------
// Relation locks.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn drop_and_truncate_wait_for_readers() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 1), (2, 2), (3, 3)]).await;

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await.len(), 3);
    assert!(env
        .store
        .relation_locks(r.xid())
        .contains(&(table, LockMode::AccessShare)));
    // TRUNCATE waits for the reader.
    let mut d = env.begin(RC);
    let dx = d.xid();
    let h = tokio::spawn(async move {
        let res = d.truncate(table).await;
        (d, res)
    });
    assert_eq!(blocked(&env.store, dx).await, r.xid());
    assert!(!h.is_finished());
    env.commit(r).await;
    let (d, res) = h.await.unwrap();
    res.unwrap();
    assert!(env
        .store
        .relation_locks(dx)
        .contains(&(table, LockMode::AccessExclusive)));
    // Readers now wait for the truncating transaction.
    let mut r2 = env.begin(RC);
    let r2x = r2.xid();
    let h = tokio::spawn(async move {
        let v = values(&mut r2, table).await;
        (r2, v)
    });
    assert_eq!(blocked(&env.store, r2x).await, dx);
    env.rollback(d);
    let (r2, v) = h.await.unwrap();
    assert_eq!(v, vec![(1, 1), (2, 2), (3, 3)]);

    // DROP waits for the (still open) reader.
    let mut d2 = env.begin(RC);
    let d2x = d2.xid();
    let h = tokio::spawn(async move {
        let res = d2.drop_relation(table).await;
        (d2, res)
    });
    assert_eq!(blocked(&env.store, d2x).await, r2x);
    assert!(!h.is_finished());
    env.commit(r2).await;
    let (d2, res) = h.await.unwrap();
    res.unwrap();
    env.commit(d2).await;
    let ids: Vec<RelId> = env.store.relations().iter().map(|r| r.id).collect();
    assert!(!ids.contains(&table) && !ids.contains(&pk), "{ids:?}");
}

#[tokio::test]
async fn relation_lock_conflict_table() {
    use LockMode::*;
    let env = Env::mem();
    let (table, _) = env.table(&[]).await;
    let cases = [
        (AccessShare, AccessShare, false),
        (AccessShare, Exclusive, false),
        (AccessShare, AccessExclusive, true),
        (RowShare, RowExclusive, false),
        (RowShare, Exclusive, true),
        (RowExclusive, RowExclusive, false),
        (RowExclusive, ShareUpdateExclusive, false),
        (RowExclusive, Share, true),
        (ShareUpdateExclusive, ShareUpdateExclusive, true),
        (Share, Share, false),
        (Share, RowExclusive, true),
        (ShareRowExclusive, RowShare, false),
        (ShareRowExclusive, ShareRowExclusive, true),
        (Exclusive, AccessShare, false),
        (Exclusive, RowShare, true),
        (AccessExclusive, AccessShare, true),
    ];
    for (held, wanted, conflicts) in cases {
        let mut h = env.begin(RC);
        h.lock_relation(table, held).await.unwrap();
        assert_eq!(env.store.relation_locks(h.xid()), vec![(table, held)]);
        let mut w = env.begin(RC);
        let wx = w.xid();
        if conflicts {
            let j = tokio::spawn(async move {
                let r = w.lock_relation(table, wanted).await;
                (w, r)
            });
            assert_eq!(
                blocked(&env.store, wx).await,
                h.xid(),
                "{wanted:?} waits for {held:?}"
            );
            assert!(!j.is_finished());
            env.rollback(h);
            let (w, r) = j.await.unwrap();
            r.unwrap();
            assert_eq!(env.store.relation_locks(wx), vec![(table, wanted)]);
            env.rollback(w);
        } else {
            w.set_lock_timeout(NO_WAIT);
            w.lock_relation(table, wanted)
                .await
                .unwrap_or_else(|e| panic!("{wanted:?} with {held:?}: {e}"));
            assert_eq!(env.store.relation_locks(wx), vec![(table, wanted)]);
            env.rollback(w);
            env.rollback(h);
        }
        assert!(env.store.relation_locks(wx).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Two-phase commit.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_phase_commit_and_restart() {
    let dir = tempdir("2pc");
    let disk = Disk::real(&dir);
    let env = Env::on(&disk);
    let (table, pk) = env.table(&[(1, 10), (2, 20), (3, 30)]).await;

    // PREPARE keeps row and relation locks.
    let mut p = env.begin(RC);
    let r1 = by_key(&mut p, pk, 1).await.unwrap();
    done(
        p.update(table, r1.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    p.insert(table, &enc(4, 40), &[(pk, key(4))]).await.unwrap();
    let px = p.xid();
    p.prepare("g1", info("alice", "db1", 1234)).await.unwrap();
    assert_eq!(env.store.xid_status(px), XidStatus::Prepared);
    let xacts = env.store.prepared_xacts();
    assert_eq!(xacts.len(), 1);
    assert_eq!((xacts[0].xid, xacts[0].gid.as_str()), (px, "g1"));
    assert_eq!(xacts[0].info, info("alice", "db1", 1234));
    assert!(
        xacts[0].locks.contains(&(table, LockMode::RowExclusive)),
        "{:?}",
        xacts[0].locks
    );
    assert!(env
        .store
        .relation_locks(px)
        .contains(&(table, LockMode::RowExclusive)));

    let mut w = env.begin(RC);
    let seen = by_key(&mut w, pk, 1).await.unwrap();
    assert_eq!(dec(&seen.data), (1, 10), "not committed yet");
    let wx = w.xid();
    let hw = tokio::spawn(async move {
        let r = w
            .update(table, seen.tid, &enc(1, 11), &[(pk, key(1))])
            .await;
        (w, r)
    });
    assert_eq!(blocked(&env.store, wx).await, px);
    // A duplicate insert of the prepared row's key waits too.
    let mut u = env.begin(RC);
    let ux = u.xid();
    let hu = tokio::spawn(async move {
        let r = u.insert(table, &enc(4, 44), &[(pk, key(4))]).await;
        (u, r)
    });
    assert_eq!(blocked(&env.store, ux).await, px);
    // (Started after the insert: a later RowExclusive request would queue behind this
    // AccessExclusive one, as in PostgreSQL.)
    let mut l = env.begin(RC);
    let lx = l.xid();
    let l_cancel = l.cancel_handle();
    let hl = tokio::spawn(async move {
        let r = l.lock_relation(table, LockMode::AccessExclusive).await;
        (l, r)
    });
    assert_eq!(blocked(&env.store, lx).await, px);
    assert!(!hw.is_finished() && !hl.is_finished() && !hu.is_finished());
    // Withdraw it: new readers below would otherwise queue behind it, as in PostgreSQL.
    l_cancel.cancel();
    let (l, r) = hl.await.unwrap();
    assert_eq!(code(r), SqlState::QueryCanceled);
    env.rollback(l);

    // The GTM already counts it as finished (the coordinator ends it there after the datanodes,
    // but another datanode may be faster): a snapshot without it waits for the COMMIT PREPARED
    // on its way rather than guessing.
    env.end(px);
    let mut early = env.begin(RC);
    let ex = early.xid();
    let he = tokio::spawn(async move {
        let v = values(&mut early, table).await;
        (early, v)
    });
    assert_eq!(blocked(&env.store, ex).await, px);

    // COMMIT PREPARED from another session.
    env.store.commit_prepared("g1").await.unwrap();
    let (early, v) = he.await.unwrap();
    assert_eq!(v, vec![(1, 11), (2, 20), (3, 30), (4, 40)]);
    env.commit(early).await;
    assert!(env.store.prepared_xacts().is_empty());
    assert_eq!(env.store.xid_status(px), XidStatus::Committed);
    assert!(env.store.relation_locks(px).is_empty());
    let (u, r) = hu.await.unwrap();
    assert_eq!(code(r), SqlState::UniqueViolation);
    env.rollback(u);
    let (mut w, r) = hw.await.unwrap();
    let Outcome::Changed(newest) = r.unwrap() else {
        panic!("expected Changed")
    };
    assert_eq!(dec(&newest.data), (1, 11));
    done(
        w.update(table, newest.tid, &enc(1, 12), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    env.commit(w).await;
    let mut rd = env.begin(RC);
    assert_eq!(
        values(&mut rd, table).await,
        vec![(1, 12), (2, 20), (3, 30), (4, 40)]
    );
    env.commit(rd).await;
    assert_eq!(
        code(env.store.commit_prepared("g1").await),
        SqlState::UndefinedObject
    );

    // ROLLBACK PREPARED discards.
    let mut p2 = env.begin(RC);
    let r2 = by_key(&mut p2, pk, 2).await.unwrap();
    done(p2.delete(table, r2.tid).await.unwrap());
    p2.insert(table, &enc(5, 50), &[(pk, key(5))])
        .await
        .unwrap();
    let p2x = p2.xid();
    p2.prepare("g2", info("bob", "db2", 5)).await.unwrap();
    env.store.rollback_prepared("g2").await.unwrap();
    env.end(p2x);
    assert_eq!(env.store.xid_status(p2x), XidStatus::Aborted);
    assert!(env.store.relation_locks(p2x).is_empty());
    assert!(env.store.prepared_xacts().is_empty());
    let mut rd = env.begin(RC);
    rd.set_lock_timeout(NO_WAIT);
    assert_eq!(
        values(&mut rd, table).await,
        vec![(1, 12), (2, 20), (3, 30), (4, 40)]
    );
    // Its row lock is gone: the row updates without waiting; its key 5 is free.
    let r2 = by_key(&mut rd, pk, 2).await.unwrap();
    done(
        rd.update(table, r2.tid, &enc(2, 21), &[(pk, key(2))])
            .await
            .unwrap(),
    );
    rd.insert(table, &enc(5, 55), &[(pk, key(5))])
        .await
        .unwrap();
    env.commit(rd).await;

    // Duplicate gid: 42710 and that transaction is rolled back.
    let mut p3 = env.begin(RC);
    let r3 = by_key(&mut p3, pk, 3).await.unwrap();
    done(
        p3.update(table, r3.tid, &enc(3, 33), &[(pk, key(3))])
            .await
            .unwrap(),
    );
    p3.insert(table, &enc(6, 60), &[(pk, key(6))])
        .await
        .unwrap();
    let p3x = p3.xid();
    p3.prepare("g3", info("carol", "db3", 7)).await.unwrap();
    let mut p4 = env.begin(RC);
    p4.insert(table, &enc(7, 70), &[(pk, key(7))])
        .await
        .unwrap();
    let p4x = p4.xid();
    assert_eq!(
        code(p4.prepare("g3", info("dave", "db4", 8)).await),
        SqlState::DuplicateObject
    );
    env.end(p4x);
    assert_eq!(env.store.xid_status(p4x), XidStatus::Aborted);
    assert!(env.store.relation_locks(p4x).is_empty());
    let xacts = env.store.prepared_xacts();
    assert_eq!(xacts.len(), 1);
    assert_eq!((xacts[0].xid, xacts[0].gid.as_str()), (p3x, "g3"));
    assert_eq!(xacts[0].info, info("carol", "db3", 7));
    // Its key 7 is free again (no wait, no conflict).
    let mut q = env.begin(RC);
    q.set_lock_timeout(NO_WAIT);
    q.insert(table, &enc(7, 77), &[(pk, key(7))]).await.unwrap();
    env.rollback(q);

    // A gid of 200 bytes or more: 22023, rolled back.
    let mut q = env.begin(RC);
    q.insert(table, &enc(8, 80), &[(pk, key(8))]).await.unwrap();
    let qx = q.xid();
    assert_eq!(
        code(q.prepare(&"x".repeat(200), info("u", "d", 9)).await),
        SqlState::InvalidParameterValue
    );
    env.end(qx);
    assert_eq!(env.store.xid_status(qx), XidStatus::Aborted);
    assert!(env.store.relation_locks(qx).is_empty());

    // Unknown gid: 42704.
    assert_eq!(
        code(env.store.commit_prepared("nope").await),
        SqlState::UndefinedObject
    );
    assert_eq!(
        code(env.store.rollback_prepared("nope").await),
        SqlState::UndefinedObject
    );

    // Restart: g3 comes back with its row and relation locks.
    let Env { store, gtm } = env;
    drop(store);
    let env = Env {
        store: Store::open(&disk, "dn.redb", StoreConfig::default()).expect("reopen"),
        gtm,
    };
    let xacts = env.store.prepared_xacts();
    assert_eq!(xacts.len(), 1);
    assert_eq!((xacts[0].xid, xacts[0].gid.as_str()), (p3x, "g3"));
    assert_eq!(xacts[0].info, info("carol", "db3", 7));
    assert_eq!(env.store.xid_status(p3x), XidStatus::Prepared);
    assert_eq!(env.store.xid_status(p4x), XidStatus::Aborted);
    assert!(env
        .store
        .relation_locks(p3x)
        .contains(&(table, LockMode::RowExclusive)));

    let mut w = env.begin(RC);
    assert_eq!(
        values(&mut w, table).await,
        vec![(1, 12), (2, 21), (3, 30), (4, 40), (5, 55)],
        "prepared changes invisible, the failed prepare's insert gone"
    );
    let seen = by_key(&mut w, pk, 3).await.unwrap();
    let wx = w.xid();
    let hw = tokio::spawn(async move {
        let r = w
            .update(table, seen.tid, &enc(3, 31), &[(pk, key(3))])
            .await;
        (w, r)
    });
    assert_eq!(blocked(&env.store, wx).await, p3x);
    let mut l = env.begin(RC);
    let lx = l.xid();
    let hl = tokio::spawn(async move {
        let r = l.drop_relation(table).await;
        (l, r)
    });
    assert_eq!(blocked(&env.store, lx).await, p3x);
    assert!(!hw.is_finished() && !hl.is_finished());
    env.store.commit_prepared("g3").await.unwrap();
    env.end(p3x);
    let (mut w, r) = hw.await.unwrap();
    let Outcome::Changed(newest) = r.unwrap() else {
        panic!("expected Changed")
    };
    assert_eq!(dec(&newest.data), (3, 33));
    done(
        w.update(table, newest.tid, &enc(3, 34), &[(pk, key(3))])
            .await
            .unwrap(),
    );
    env.commit(w).await;
    // The DROP got its lock once the writer ended; roll it back (a reader would queue behind it).
    let (l, r) = hl.await.unwrap();
    r.unwrap();
    env.rollback(l);
    let mut rd = env.begin(RC);
    assert_eq!(
        values(&mut rd, table).await,
        vec![(1, 12), (2, 21), (3, 34), (4, 40), (5, 55), (6, 60)]
    );
    env.commit(rd).await;
    drop(env);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Transactional DDL.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_rolled_back_leaves_nothing() {
    let env = Env::mem();
    let mut t = env.begin(RC);
    let table = t.create_table("x").await.unwrap();
    let ix = t.create_index(table, "x_pkey", true, id_key).await.unwrap();
    for i in 0..5 {
        t.insert(table, &enc(i, i), &[(ix, key(i))]).await.unwrap();
    }
    t.next_command().unwrap();
    assert_eq!(values(&mut t, table).await.len(), 5);
    assert!(t.relation(table).is_some());
    assert!(env.store.relation(table).is_none(), "not committed");
    env.rollback(t);

    let ids: Vec<RelId> = env.store.relations().iter().map(|r| r.id).collect();
    assert!(!ids.contains(&table) && !ids.contains(&ix), "{ids:?}");
    assert_eq!(code(env.store.rel_stats(table)), SqlState::UndefinedTable);
    let mut r = env.begin(RC);
    assert!(r.relation(table).is_none());
    assert_eq!(code(r.scan(table, false).await), SqlState::UndefinedTable);
    assert_eq!(
        code(r.index_scan(ix, KeyRange::all(), false).await),
        SqlState::UndefinedTable
    );
    env.rollback(r);
}

#[tokio::test]
async fn drop_table_rollback_and_commit() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;

    let mut d = env.begin(RC);
    d.drop_relation(table).await.unwrap();
    assert_eq!(
        code(d.scan(table, false).await),
        SqlState::UndefinedTable,
        "dropped for itself"
    );
    env.rollback(d);
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 10), (2, 20)]);
    assert_eq!(dec(&by_key(&mut r, pk, 2).await.unwrap().data), (2, 20));
    r.insert(table, &enc(3, 30), &[(pk, key(3))]).await.unwrap();
    env.commit(r).await;
    assert_eq!(env.store.rel_stats(table).unwrap().heap_tuples, 3);

    let mut d = env.begin(RC);
    d.drop_relation(table).await.unwrap();
    env.commit(d).await;
    let ids: Vec<RelId> = env.store.relations().iter().map(|r| r.id).collect();
    assert!(!ids.contains(&table) && !ids.contains(&pk), "{ids:?}");
    assert!(env.store.relation(table).is_none());
    assert_eq!(code(env.store.rel_stats(table)), SqlState::UndefinedTable);
    let mut r = env.begin(RC);
    assert_eq!(code(r.scan(table, false).await), SqlState::UndefinedTable);
    assert_eq!(
        code(r.index_scan(pk, KeyRange::all(), false).await),
        SqlState::UndefinedTable
    );
    assert_eq!(
        code(r.insert(table, &enc(9, 9), &[(pk, key(9))]).await),
        SqlState::UndefinedTable
    );
    env.rollback(r);
}

#[tokio::test]
async fn truncate_rollback_and_commit() {
    let env = Env::mem();
    let rows: Vec<(i64, i64)> = (1..=5).map(|i| (i, i * 10)).collect();
    let (table, pk) = env.table(&rows).await;

    let mut t = env.begin(RC);
    t.truncate(table).await.unwrap();
    assert!(values(&mut t, table).await.is_empty());
    t.insert(table, &enc(1, 1), &[(pk, key(1))]).await.unwrap();
    env.rollback(t);
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, rows);
    assert_eq!(index_rows(&mut r, pk, KeyRange::all()).await.len(), 5);
    env.commit(r).await;
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (5, 5));

    let mut t = env.begin(RC);
    t.truncate(table).await.unwrap();
    t.insert(table, &enc(1, 100), &[(pk, key(1))])
        .await
        .unwrap();
    t.insert(table, &enc(9, 900), &[(pk, key(9))])
        .await
        .unwrap();
    t.next_command().unwrap();
    let own: Vec<(i64, i64)> = index_rows(&mut t, pk, KeyRange::all())
        .await
        .iter()
        .map(|r| dec(&r.data))
        .collect();
    assert_eq!(
        own,
        vec![(1, 100), (9, 900)],
        "the truncating transaction reads its new index"
    );
    env.commit(t).await;
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (2, 2));

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 100), (9, 900)]);
    let all: Vec<(i64, i64)> = index_rows(&mut r, pk, KeyRange::all())
        .await
        .iter()
        .map(|r| dec(&r.data))
        .collect();
    assert_eq!(
        all,
        vec![(1, 100), (9, 900)],
        "the index holds the new rows only"
    );
    assert_eq!(dec(&by_key(&mut r, pk, 1).await.unwrap().data), (1, 100));
    assert!(by_key(&mut r, pk, 3).await.is_none());
    // New inserts work and the unique index is enforced on the new contents.
    r.insert(table, &enc(3, 3), &[(pk, key(3))]).await.unwrap();
    assert_eq!(
        code(r.insert(table, &enc(9, 9), &[(pk, key(9))]).await),
        SqlState::UniqueViolation
    );
    env.rollback(r);
}

#[tokio::test]
async fn create_index_on_existing_rows() {
    let env = Env::mem();
    let mut t = env.begin(RC);
    let table = t.create_table("c").await.unwrap();
    for (id, v) in [(1, 7), (2, 7), (3, 8), (4, 8)] {
        t.insert(table, &enc(id, v), &[]).await.unwrap();
    }
    env.commit(t).await;
    // Row 4 deleted (committed), row 5 inserted by an aborted transaction.
    let mut t = env.begin(RC);
    let r4 = rows(&mut t, table)
        .await
        .into_iter()
        .find(|r| dec(&r.data).0 == 4)
        .unwrap();
    done(t.delete(table, r4.tid).await.unwrap());
    env.commit(t).await;
    let mut t = env.begin(RC);
    t.insert(table, &enc(5, 9), &[]).await.unwrap();
    env.rollback(t);

    // A non-unique index finds the live rows.
    let mut t = env.begin(RC);
    let vx = t
        .create_index(table, "c_val", false, val_key)
        .await
        .unwrap();
    env.commit(t).await;
    let mut r = env.begin(RC);
    let ids = |rows: Vec<Row>| rows.iter().map(|r| dec(&r.data).0).collect::<Vec<_>>();
    assert_eq!(
        ids(index_rows(&mut r, vx, KeyRange::eq(&key(7).bytes)).await),
        vec![1, 2]
    );
    assert_eq!(
        ids(index_rows(&mut r, vx, KeyRange::eq(&key(8).bytes)).await),
        vec![3]
    );
    assert!(index_rows(&mut r, vx, KeyRange::eq(&key(9).bytes))
        .await
        .is_empty());
    assert!(env.store.rel_stats(table).unwrap().index_entries >= 3);
    env.commit(r).await;

    // A unique index over duplicate live keys fails with 23505, and leaves nothing behind.
    let mut t = env.begin(RC);
    assert_eq!(
        code(t.create_index(table, "c_val_key", true, val_key).await),
        SqlState::UniqueViolation
    );
    env.rollback(t);
    let names: Vec<String> = env
        .store
        .relations()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert!(!names.contains(&"c_val_key".to_string()), "{names:?}");
    let mut t = env.begin(RC);
    assert_eq!(t.indexes(table).len(), 1);
    t.insert(table, &enc(6, 6), &[(vx, key(6))]).await.unwrap();
    env.commit(t).await;

    // Duplicates only among dead versions do not count.
    let mut t = env.begin(RC);
    let r2 = rows(&mut t, table)
        .await
        .into_iter()
        .find(|r| dec(&r.data).0 == 2)
        .unwrap();
    done(t.delete(table, r2.tid).await.unwrap());
    env.commit(t).await;
    let mut t = env.begin(RC);
    let ux = t
        .create_index(table, "c_val_key", true, val_key)
        .await
        .unwrap();
    let pk = t.create_index(table, "c_pkey", true, id_key).await.unwrap();
    t.next_command().unwrap();
    let keys = |id: i64, v: i64| vec![(vx, key(v)), (ux, key(v)), (pk, key(id))];
    assert_eq!(
        code(t.insert(table, &enc(10, 7), &keys(10, 7)).await),
        SqlState::UniqueViolation
    );
    env.rollback(t);
    let t = env.begin(RC);
    assert_eq!(
        t.indexes(table).len(),
        1,
        "the rolled-back transaction's indexes are gone"
    );
    env.rollback(t);
}

// ---------------------------------------------------------------------------------------------
// Vacuum.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn vacuum_bounds_an_update_heavy_row() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 0)]).await;
    let mut tid = {
        let mut t = env.begin(RC);
        let row = by_key(&mut t, pk, 1).await.expect("the row");
        env.commit(t).await;
        row.tid
    };
    let mut max_heap = 0;
    let mut max_index = 0;
    let mut removed = 0;
    for i in 1..=2000 {
        let mut t = env.begin(RC);
        if i % 10 == 0 {
            // The index still leads to exactly the newest version.
            let row = by_key(&mut t, pk, 1).await.expect("the row");
            assert_eq!((row.tid, dec(&row.data)), (tid, (1, i - 1)));
        }
        tid = done(
            t.update(table, tid, &enc(1, i), &[(pk, key(1))])
                .await
                .unwrap(),
        );
        env.commit(t).await;
        if i % 10 == 0 {
            // Sizes peak just before each vacuum.
            let s = env.store.rel_stats(table).unwrap();
            max_heap = max_heap.max(s.heap_tuples);
            max_index = max_index.max(s.index_entries);
        }
        if i % 100 == 0 {
            let v = env.store.vacuum(env.horizon()).unwrap();
            removed += v.tuples_removed;
            let s = env.store.rel_stats(table).unwrap();
            assert_eq!((s.heap_tuples, s.index_entries), (1, 1), "after vacuum {i}");
        }
    }
    assert!(
        max_heap <= 150 && max_index <= 150,
        "heap {max_heap}, index {max_index}"
    );
    assert_eq!(removed, 2000);
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 2000)]);
    assert_eq!(dec(&by_key(&mut r, pk, 1).await.unwrap().data), (1, 2000));
}

#[tokio::test]
async fn vacuum_keeps_versions_an_open_snapshot_sees() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 0), (2, 0)]).await;
    let mut reader = env.begin(RR);
    let old = by_key(&mut reader, pk, 1).await.unwrap();
    assert_eq!(dec(&old.data), (1, 0));

    for i in 1..=300 {
        let mut t = env.begin(RC);
        let row = by_key(&mut t, pk, 1).await.unwrap();
        done(
            t.update(table, row.tid, &enc(1, i), &[(pk, key(1))])
                .await
                .unwrap(),
        );
        env.commit(t).await;
        if i % 50 == 0 {
            env.store.vacuum(env.horizon()).unwrap();
            // Even a horizon past every running transaction (a GTM unaware of the reader) is
            // clamped by the reader's snapshot here.
            let past = env.gtm().snapshot().xmax;
            let v = env.store.vacuum(past).unwrap();
            assert!(v.horizon <= reader.snapshot().xmin, "{:?}", v.horizon);
            reader.next_command().unwrap();
            assert_eq!(
                dec(&by_key(&mut reader, pk, 1).await.unwrap().data),
                (1, 0),
                "after {i}"
            );
        }
    }
    assert_eq!(values(&mut reader, table).await, vec![(1, 0), (2, 0)]);
    assert_eq!(
        reader
            .fetch(table, old.tid)
            .await
            .unwrap()
            .map(|r| dec(&r.data)),
        Some((1, 0))
    );
    assert!(env.store.rel_stats(table).unwrap().heap_tuples > 300);
    env.commit(reader).await;

    env.store.vacuum(env.horizon()).unwrap();
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (2, 2));
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 300), (2, 0)]);
}

#[tokio::test]
async fn vacuum_removes_aborted_versions() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10)]).await;
    // An old open transaction keeps the horizon low; aborted versions are dead regardless.
    let old = env.begin(RR);

    let mut t = env.begin(RC);
    for i in 100..150 {
        t.insert(table, &enc(i, i), &[(pk, key(i))]).await.unwrap();
    }
    let r1 = by_key(&mut t, pk, 1).await.unwrap();
    done(
        t.update(table, r1.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    env.rollback(t);
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (52, 52));

    let v = env.store.vacuum(env.horizon()).unwrap();
    assert_eq!((v.tuples_removed, v.index_entries_removed), (51, 51));
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (1, 1));
    env.rollback(old);

    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 10)]);
    // The keys of the aborted inserts are free, the surviving row still updatable.
    r.insert(table, &enc(100, 1), &[(pk, key(100))])
        .await
        .unwrap();
    let r1 = by_key(&mut r, pk, 1).await.unwrap();
    done(
        r.update(table, r1.tid, &enc(1, 12), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    env.commit(r).await;
}

#[tokio::test]
async fn autovacuum_removes_dead_versions() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 0)]).await;
    for i in 1..=50 {
        let mut t = env.begin(RC);
        let row = by_key(&mut t, pk, 1).await.unwrap();
        done(
            t.update(table, row.tid, &enc(1, i), &[(pk, key(1))])
                .await
                .unwrap(),
        );
        env.commit(t).await;
    }
    assert_eq!(env.store.rel_stats(table).unwrap().heap_tuples, 51);

    let gtm = env.gtm.clone();
    let av = env
        .store
        .spawn_autovacuum(Duration::from_millis(5), move || {
            let h = gtm.lock().expect("gtm lock").global_xmin();
            async move { Some(h) }
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.store.rel_stats(table).unwrap();
        if (s.heap_tuples, s.index_entries) == (1, 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "autovacuum never cleaned up: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    av.abort();
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await, vec![(1, 50)]);
}

// ---------------------------------------------------------------------------------------------
// Group commit and the change log.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_of_concurrent_inserts() {
    let dir = tempdir("group");
    let env = Env::on(&Disk::real(&dir));
    let (table, pk) = env.table(&[]).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut t = env.begin(RC);
        tasks.push(tokio::spawn(async move {
            t.insert(table, &enc(i, i * 10), &[(pk, key(i))]).await?;
            let x = t.xid();
            let lsn = t.commit().await?;
            Ok::<_, PgError>((x, lsn.expect("a writing commit has an LSN")))
        }));
    }
    let mut commits = Vec::new();
    for h in tasks {
        let (x, lsn) = h.await.unwrap().unwrap();
        env.end(x);
        commits.push((x, lsn));
    }
    let lsns: BTreeSet<Lsn> = commits.iter().map(|c| c.1).collect();
    assert_eq!(lsns.len(), 32, "distinct commit LSNs");

    let mut r = env.begin(RC);
    assert_eq!(
        values(&mut r, table).await,
        (0..32).map(|i| (i, i * 10)).collect::<Vec<_>>()
    );
    env.commit(r).await;
    let recs = env.store.changes_since(Lsn(1), 100_000).unwrap();
    for (x, lsn) in commits {
        let rec = recs.iter().find(|r| r.lsn == lsn).expect("commit record");
        assert_eq!((rec.xid, &rec.change), (x, &Change::Commit));
    }
    drop(env);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn change_log_records_commits_in_order() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10)]).await;
    let mut committed: Vec<(Gxid, Lsn)> = Vec::new();
    let mut aborted: Vec<Gxid> = Vec::new();

    let mut t1 = env.begin(RC);
    t1.insert(table, &enc(2, 20), &[(pk, key(2))])
        .await
        .unwrap();
    let x1 = t1.xid();
    committed.push((x1, t1.commit().await.unwrap().unwrap()));
    env.end(x1);

    let mut t2 = env.begin(RC);
    t2.insert(table, &enc(3, 30), &[(pk, key(3))])
        .await
        .unwrap();
    aborted.push(t2.xid());
    env.rollback(t2);

    let mut t3 = env.begin(RC);
    t3.insert(table, &enc(4, 40), &[(pk, key(4))])
        .await
        .unwrap();
    let x3 = t3.xid();
    let prep3 = t3.prepare("c3", info("u", "d", 1)).await.unwrap();
    let cp3 = env.store.commit_prepared("c3").await.unwrap();
    env.end(x3);

    let mut t4 = env.begin(RC);
    t4.insert(table, &enc(5, 50), &[(pk, key(5))])
        .await
        .unwrap();
    let x4 = t4.xid();
    let prep4 = t4.prepare("c4", info("u", "d", 2)).await.unwrap();
    let rp4 = env.store.rollback_prepared("c4").await.unwrap();
    env.end(x4);
    aborted.push(x4);

    let mut t5 = env.begin(RC);
    let r1 = by_key(&mut t5, pk, 1).await.unwrap();
    done(
        t5.update(table, r1.tid, &enc(1, 11), &[(pk, key(1))])
            .await
            .unwrap(),
    );
    let x5 = t5.xid();
    committed.push((x5, t5.commit().await.unwrap().unwrap()));
    env.end(x5);

    // A read-only commit writes nothing.
    let mut t6 = env.begin(RC);
    let x6 = t6.xid();
    assert_eq!(
        values(&mut t6, table).await,
        vec![(1, 11), (2, 20), (4, 40)]
    );
    assert_eq!(t6.commit().await.unwrap(), None);
    env.end(x6);

    let recs = env.store.changes_since(Lsn(1), 100_000).unwrap();
    assert_eq!(recs.first().map(|r| r.lsn), Some(Lsn(1)));
    assert_eq!(
        recs.last().map(|r| r.lsn.0 + 1),
        Some(env.store.next_lsn().0)
    );
    assert!(
        recs.windows(2).all(|w| w[0].lsn < w[1].lsn),
        "strictly increasing LSNs"
    );

    for (x, lsn) in &committed {
        let commits: Vec<_> = recs
            .iter()
            .filter(|r| r.xid == *x && r.change == Change::Commit)
            .collect();
        assert_eq!(commits.len(), 1, "one commit record for {x}");
        assert_eq!(commits[0].lsn, *lsn);
        assert!(
            recs.iter().filter(|r| r.xid == *x).all(|r| r.lsn <= *lsn),
            "changes before the commit"
        );
        assert!(recs
            .iter()
            .any(|r| r.xid == *x && matches!(r.change, Change::PutTuple { .. })));
    }
    let find = |x: Gxid, c: &Change| {
        recs.iter()
            .find(|r| r.xid == x && r.change == *c)
            .map(|r| r.lsn)
    };
    assert_eq!(
        find(x3, &Change::CommitPrepared { gid: "c3".into() }),
        Some(cp3)
    );
    assert!(
        matches!(recs.iter().find(|r| r.lsn == prep3).map(|r| &r.change), Some(Change::Prepare { gid, .. }) if gid == "c3")
    );
    assert_eq!(
        find(x4, &Change::RollbackPrepared { gid: "c4".into() }),
        Some(rp4)
    );
    assert!(
        matches!(recs.iter().find(|r| r.lsn == prep4).map(|r| &r.change), Some(Change::Prepare { gid, .. }) if gid == "c4")
    );
    for x in &aborted {
        assert!(
            !recs.iter().any(|r| r.xid == *x
                && matches!(r.change, Change::Commit | Change::CommitPrepared { .. })),
            "no commit record for aborted {x}"
        );
    }
    assert!(
        !recs.iter().any(|r| r.xid == aborted[0]),
        "a plain rollback logs nothing"
    );
    assert!(
        !recs.iter().any(|r| r.xid == x6),
        "a read-only commit logs nothing"
    );
    let commit_xids: BTreeSet<Gxid> = recs
        .iter()
        .filter(|r| matches!(r.change, Change::Commit | Change::CommitPrepared { .. }))
        .map(|r| r.xid)
        .collect();
    let mut want: BTreeSet<Gxid> = committed.iter().map(|c| c.0).collect();
    want.insert(x3);
    assert!(want.is_subset(&commit_xids));
    assert_eq!(
        commit_xids.len(),
        want.len() + 1,
        "plus the setup transaction"
    );

    // Reading from a middle LSN returns the suffix; a limit returns a prefix.
    let mid = recs.len() / 2;
    assert_eq!(
        env.store.changes_since(recs[mid].lsn, 100_000).unwrap(),
        recs[mid..].to_vec()
    );
    assert_eq!(
        env.store.changes_since(Lsn(1), 3).unwrap(),
        recs[..3].to_vec()
    );
    assert!(env
        .store
        .changes_since(env.store.next_lsn(), 10)
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------------------
// More corners.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lock_upgrade_deadlock() {
    // Two readers of a table both try to upgrade to AccessExclusive (e.g. both TRUNCATE it).
    let env = Env::mem();
    let (table, _) = env.table(&[(1, 1)]).await;
    let mut a = env.begin(RC);
    let mut b = env.begin(RC);
    assert_eq!(values(&mut a, table).await.len(), 1);
    assert_eq!(values(&mut b, table).await.len(), 1);
    let (ax, bx) = (a.xid(), b.xid());
    let ha = tokio::spawn(async move {
        let r = a.truncate(table).await;
        (a, r)
    });
    assert_eq!(blocked(&env.store, ax).await, bx);
    assert_eq!(code(b.truncate(table).await), SqlState::DeadlockDetected);
    assert!(!ha.is_finished());
    env.rollback(b);
    let (a, r) = ha.await.unwrap();
    r.unwrap();
    env.commit(a).await;
    let mut r = env.begin(RC);
    assert!(values(&mut r, table).await.is_empty());
}

#[tokio::test]
async fn row_lock_on_a_concurrently_changed_row() {
    use RowLockStrength::{Exclusive, Share};
    for iso in [RC, RR] {
        let env = Env::mem();
        let (table, pk) = env.table(&[(1, 10), (2, 20)]).await;
        let mut a = env.begin(RC);
        let r1 = by_key(&mut a, pk, 1).await.unwrap();
        let r2 = by_key(&mut a, pk, 2).await.unwrap();
        done(
            a.update(table, r1.tid, &enc(1, 11), &[(pk, key(1))])
                .await
                .unwrap(),
        );
        done(a.delete(table, r2.tid).await.unwrap());

        let mut b = env.begin(iso);
        let s1 = by_key(&mut b, pk, 1).await.unwrap();
        let s2 = by_key(&mut b, pk, 2).await.unwrap();
        let bx = b.xid();
        let h = tokio::spawn(async move {
            let r = b.lock_row(table, s1.tid, Exclusive).await;
            (b, r)
        });
        assert_eq!(blocked(&env.store, bx).await, a.xid());
        env.commit(a).await;
        let (mut b, r) = h.await.unwrap();
        match iso {
            Isolation::ReadCommitted => {
                // SELECT ... FOR UPDATE re-checks and locks the newest version.
                let Outcome::Changed(newest) = r.unwrap() else {
                    panic!("expected Changed")
                };
                assert_eq!(dec(&newest.data), (1, 11));
                assert_eq!(
                    b.lock_row(table, newest.tid, Exclusive).await.unwrap(),
                    Outcome::Done(())
                );
                assert_eq!(
                    b.lock_row(table, s2.tid, Share).await.unwrap(),
                    Outcome::Gone
                );
                // Now it holds the row: another writer waits for it.
                let mut c = env.begin(RC);
                let cx = c.xid();
                let h = tokio::spawn(async move {
                    let r = c
                        .update(table, newest.tid, &enc(1, 12), &[(pk, key(1))])
                        .await;
                    (c, r)
                });
                assert_eq!(blocked(&env.store, cx).await, bx);
                env.commit(b).await;
                let (c, r) = h.await.unwrap();
                done(r.unwrap());
                env.commit(c).await;
                let mut r = env.begin(RC);
                assert_eq!(values(&mut r, table).await, vec![(1, 12)]);
            }
            Isolation::RepeatableRead => {
                assert_eq!(code(r), SqlState::SerializationFailure);
                assert_eq!(
                    code(b.lock_row(table, s2.tid, Share).await),
                    SqlState::SerializationFailure
                );
                env.rollback(b);
            }
        }
    }
}

#[tokio::test]
async fn prepared_ddl_survives_restart() {
    let dir = tempdir("prepared-ddl");
    let disk = Disk::real(&dir);
    let env = Env::on(&disk);
    let (t1, pk1) = env.table(&[(1, 10), (2, 20)]).await;
    let mut s = env.begin(RC);
    let t2 = s.create_table("t2").await.unwrap();
    s.insert(t2, &enc(1, 1), &[]).await.unwrap();
    env.commit(s).await;

    // g1: create a table with a row, truncate t1 and insert into it.
    let mut p = env.begin(RC);
    let t3 = p.create_table("t3").await.unwrap();
    let pk3 = p.create_index(t3, "t3_pkey", true, id_key).await.unwrap();
    p.insert(t3, &enc(3, 30), &[(pk3, key(3))]).await.unwrap();
    p.truncate(t1).await.unwrap();
    p.insert(t1, &enc(9, 90), &[(pk1, key(9))]).await.unwrap();
    let px = p.xid();
    p.prepare("ddl1", info("u", "d", 1)).await.unwrap();
    // g2: drop t2.
    let mut q = env.begin(RC);
    q.drop_relation(t2).await.unwrap();
    let qx = q.xid();
    q.prepare("ddl2", info("u", "d", 2)).await.unwrap();

    let Env { store, gtm } = env;
    drop(store);
    let env = Env {
        store: Store::open(&disk, "dn.redb", StoreConfig::default()).expect("reopen"),
        gtm,
    };
    assert_eq!(env.store.prepared_xacts().len(), 2);
    let locks = env.store.relation_locks(px);
    assert!(
        locks.contains(&(t1, LockMode::AccessExclusive)),
        "{locks:?}"
    );
    assert!(env
        .store
        .relation_locks(qx)
        .contains(&(t2, LockMode::AccessExclusive)));
    assert!(env.store.relation(t3).is_none(), "creation not committed");
    let ids: Vec<RelId> = env.store.relations().iter().map(|r| r.id).collect();
    assert!(
        ids.contains(&t1) && ids.contains(&t2) && !ids.contains(&t3),
        "{ids:?}"
    );

    // Readers of t1 and t2 wait for the prepared transactions.
    let mut r = env.begin(RC);
    let rx = r.xid();
    let h = tokio::spawn(async move {
        let v = values(&mut r, t1).await;
        (r, v)
    });
    assert_eq!(blocked(&env.store, rx).await, px);
    env.store.commit_prepared("ddl1").await.unwrap();
    env.end(px);
    let (r, v) = h.await.unwrap();
    assert!(
        v.is_empty(),
        "truncated, and the prepared insert is invisible to the old snapshot"
    );
    env.rollback(r);
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, t1).await, vec![(9, 90)]);
    assert_eq!(values(&mut r, t3).await, vec![(3, 30)]);
    assert_eq!(dec(&by_key(&mut r, pk3, 3).await.unwrap().data), (3, 30));
    assert!(by_key(&mut r, pk1, 1).await.is_none());
    env.commit(r).await;

    env.store.rollback_prepared("ddl2").await.unwrap();
    env.end(qx);
    let mut r = env.begin(RC);
    assert_eq!(
        values(&mut r, t2).await,
        vec![(1, 1)],
        "the prepared drop rolled back"
    );
    env.commit(r).await;
    let ids: Vec<RelId> = env.store.relations().iter().map(|r| r.id).collect();
    assert!(
        ids.contains(&t1) && ids.contains(&t2) && ids.contains(&t3),
        "{ids:?}"
    );
    drop(env);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn drop_index_is_transactional() {
    let env = Env::mem();
    let (table, pk) = env.table(&[(1, 10)]).await;
    let mut t = env.begin(RC);
    let vx = t
        .create_index(table, "t_val", false, val_key)
        .await
        .unwrap();
    env.commit(t).await;

    let mut d = env.begin(RC);
    d.drop_relation(vx).await.unwrap();
    // Within the dropping transaction the index is gone: inserts give only the primary key.
    d.insert(table, &enc(2, 20), &[(pk, key(2))]).await.unwrap();
    env.rollback(d);
    let mut r = env.begin(RC);
    assert_eq!(r.indexes(table).len(), 2);
    assert_eq!(
        index_rows(&mut r, vx, KeyRange::eq(&key(10).bytes))
            .await
            .len(),
        1
    );
    env.commit(r).await;

    let mut d = env.begin(RC);
    d.drop_relation(vx).await.unwrap();
    env.commit(d).await;
    let mut r = env.begin(RC);
    assert_eq!(r.indexes(table).len(), 1);
    assert_eq!(
        code(r.index_scan(vx, KeyRange::all(), false).await),
        SqlState::UndefinedTable
    );
    r.insert(table, &enc(3, 30), &[(pk, key(3))]).await.unwrap();
    r.next_command().unwrap();
    assert_eq!(values(&mut r, table).await, vec![(1, 10), (3, 30)]);
    env.commit(r).await;
    // The rolled-back insert is dead until vacuum; then only the primary key's entries remain.
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (3, 3));
    env.store.vacuum(env.horizon()).unwrap();
    let s = env.store.rel_stats(table).unwrap();
    assert_eq!((s.heap_tuples, s.index_entries), (2, 2));
}

/// PostgreSQL queues a lock request behind waiting requests it conflicts with (`LockAcquire`
/// checks the wait mask), so a DROP waiting for a reader is not starved by later readers.
#[tokio::test]
async fn new_readers_queue_behind_a_waiting_drop() {
    let env = Env::mem();
    let (table, _) = env.table(&[(1, 1)]).await;
    let mut r = env.begin(RC);
    assert_eq!(values(&mut r, table).await.len(), 1);
    let mut d = env.begin(RC);
    let dx = d.xid();
    let h = tokio::spawn(async move {
        let res = d.drop_relation(table).await;
        (d, res)
    });
    assert_eq!(blocked(&env.store, dx).await, r.xid());
    let mut r2 = env.begin(RC);
    r2.set_lock_timeout(NO_WAIT);
    assert_eq!(
        code(r2.scan(table, false).await),
        SqlState::LockNotAvailable
    );
    env.rollback(r2);
    env.commit(r).await;
    let (d, res) = h.await.unwrap();
    res.unwrap();
    env.rollback(d);
}
