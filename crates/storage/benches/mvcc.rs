//! MVCC store throughput against its floor: each operation done through [`pgxc_storage::mvcc`]
//! and the same operation done directly on redb, in the same process and run, with the ratio
//! (pgxc figure / redb figure).
//!
//! Both sides use a real disk under the system temporary directory (separate files, same redb
//! cache size as the store) and the same rows: an 8-byte-tid heap and a unique index on an
//! integer key (encoded with [`pgxc_storage::keycode`]), payloads of `PGXC_BENCH_PAYLOAD` bytes.
//!
//! Operations:
//! - `insert commit, N writers`: N concurrent writers each loop a single-row transaction (begin,
//!   insert one row with its unique key, commit; durable before it returns). pgxc: N tokio tasks,
//!   the store's group commit. Floor: N threads, each row one `Durability::Immediate` redb write
//!   transaction (unique check on the index table, heap insert, index insert); redb serializes
//!   them.
//! - `point lookup`: a random key (seeded) by the unique index: `index_scan(KeyRange::eq)` + `next`
//!   inside one long read-only transaction; `point lookup txn` adds begin + commit around each.
//!   Floor: a redb read transaction per lookup, index range on the key, heap get.
//! - `seq scan rows`: full scans of the loaded table (`scan` + `next` in batches of
//!   `PGXC_BENCH_BATCH`). Floor: iterating the redb heap table.
//! - `index range rows`: ranges of `PGXC_BENCH_RANGE` consecutive keys from a random start, via the
//!   index. Floor: redb index range + heap get per entry.
//!
//! Before the read figures both sides load `PGXC_BENCH_ROWS` rows in transactions of 10,000 rows;
//! the load rate is printed for information (the floor writes each chunk in one redb transaction,
//! the store one redb transaction per row), not as one of the figures.
//!
//! Run: `cargo bench -p pgxc-storage --bench mvcc` (without `--bench` it only prints how, so
//! `cargo test --all-targets` does not run it). Environment:
//! - `PGXC_BENCH_SECS`: measured seconds per figure (default 3);
//! - `PGXC_BENCH_WARMUP_MS`: warm-up before each figure (default 500);
//! - `PGXC_BENCH_ROWS`: rows loaded for the read figures (default 100000);
//! - `PGXC_BENCH_PAYLOAD`: payload bytes per row (default 100);
//! - `PGXC_BENCH_WRITERS`: comma-separated writer counts for inserts (default `1,32`);
//! - `PGXC_BENCH_READERS`: comma-separated reader counts for point lookups (default `1`);
//! - `PGXC_BENCH_BATCH`: rows per `next` call in scans (default 1000);
//! - `PGXC_BENCH_RANGE`: keys per index range scan (default 1000);
//! - `PGXC_BENCH_CASES`: comma-separated subset of `insert,lookup,seqscan,range` (default all);
//! - `PGXC_BENCH_WORKERS`: tokio worker threads (default 2).

use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    IndexKey, Isolation, KeyRange, LocalGtm, NewRow, RelId, Store, StoreConfig, Txn,
};
use pgxc_storage::Disk;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::hint::black_box;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The redb page cache of the floor database (the store's, for a real disk).
const CACHE_BYTES: usize = 256 * 1024 * 1024;
/// Rows per loading transaction.
const LOAD_CHUNK: u64 = 10_000;

type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;
const INS_HEAP: Bytes = TableDefinition::new("ins_heap");
const INS_IDX: Bytes = TableDefinition::new("ins_idx");
const HEAP: Bytes = TableDefinition::new("heap");
const IDX: Bytes = TableDefinition::new("idx");

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_counts(name: &str, default: &str) -> Vec<usize> {
    env_list(name, default)
        .iter()
        .map(|s| {
            s.parse::<usize>()
                .unwrap_or_else(|_| panic!("{name}: {s:?} is not a number"))
                .max(1)
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Cfg {
    warmup: Duration,
    measure: Duration,
    rows: u64,
    payload: usize,
    batch: usize,
    range: u64,
}

/// Removes the temporary directory at the end (also on panic).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(i: u64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i as i64)])
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = format!("{i:012}|").into_bytes();
    p.resize(len.max(p.len()), b'x');
    p
}

/// An index entry as the store lays it out: key ‖ big-endian tid.
fn entry(key: &[u8], tid: u64) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + 8);
    e.extend_from_slice(key);
    e.extend_from_slice(&tid.to_be_bytes());
    e
}

/// Index-entry bounds selecting exactly the keys in `[lo, hi]` (inclusive both).
fn entry_bounds(lo: &[u8], hi: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut h = hi.to_vec();
    h.extend_from_slice(&[0xff; 8]);
    (lo.to_vec(), h)
}

/// A shared progress counter and stop flag for one measurement.
#[derive(Default)]
struct Meter {
    stop: AtomicBool,
    done: AtomicU64,
}

impl Meter {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// Units per second over `measure` after `warmup`, then stops the meter.
///
/// Sleeps with the thread, not the runtime's timer: it runs in `block_on` on the main thread (not
/// a worker), and the timer is driven only by idle workers, which readers that never wait may
/// leave none of.
fn sample_blocking(m: &Meter, cfg: Cfg) -> f64 {
    std::thread::sleep(cfg.warmup);
    let c0 = m.done.load(Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(cfg.measure);
    let c1 = m.done.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    m.stop.store(true, Ordering::Relaxed);
    (c1 - c0) as f64 / secs
}

/// Runs `n` threads of `work` (each gets its index) and returns units per second.
fn measure_threads(n: usize, cfg: Cfg, work: impl Fn(usize, &Meter) + Sync) -> f64 {
    let m = Meter::default();
    let m = &m;
    std::thread::scope(|s| {
        for i in 0..n {
            let work = &work;
            s.spawn(move || work(i, m));
        }
        sample_blocking(m, cfg)
    })
}

/// Let other tasks run now and then: operations that never wait never yield, and the bench's
/// tasks would otherwise keep the workers from everything else (as a server's would not, between
/// network reads).
async fn yield_sometimes(ops: &mut u32) {
    *ops += 1;
    if *ops >= 256 {
        *ops = 0;
        tokio::task::yield_now().await;
    }
}

/// The pgxc side: a store, a local GTM and the benchmark's relations.
struct Pgxc {
    store: Store,
    gtm: Arc<Mutex<LocalGtm>>,
    /// The insert benchmark's table and unique index.
    ins: (RelId, RelId),
    /// The loaded table and its unique index.
    tab: (RelId, RelId),
}

fn begin(store: &Store, gtm: &Mutex<LocalGtm>, iso: Isolation) -> Txn {
    let (x, snap) = {
        let mut g = gtm.lock().expect("gtm lock");
        let x = g.begin();
        (x, g.snapshot())
    };
    store.begin(x, iso, snap).expect("begin")
}

async fn commit(t: Txn, gtm: &Mutex<LocalGtm>) {
    let x = t.xid();
    t.commit().await.expect("commit");
    gtm.lock().expect("gtm lock").end(x);
}

async fn create_table(store: &Store, gtm: &Mutex<LocalGtm>, name: &str) -> (RelId, RelId) {
    let mut t = begin(store, gtm, Isolation::ReadCommitted);
    let table = t.create_table(name).await.expect("create table");
    let idx = t
        .create_index(table, &format!("{name}_pkey"), true, |_| {
            unreachable!("the table is empty")
        })
        .await
        .expect("create index");
    commit(t, gtm).await;
    (table, idx)
}

impl Pgxc {
    async fn open(disk: &Disk) -> Pgxc {
        let store = Store::open(disk, "dn.redb", StoreConfig::default()).expect("open store");
        let gtm = Arc::new(Mutex::new(LocalGtm::default()));
        let ins = create_table(&store, &gtm, "ins").await;
        let tab = create_table(&store, &gtm, "tab").await;
        Pgxc {
            store,
            gtm,
            ins,
            tab,
        }
    }

    async fn load(&self, cfg: Cfg) {
        let (table, idx) = self.tab;
        let mut i = 0;
        while i < cfg.rows {
            let mut t = begin(&self.store, &self.gtm, Isolation::ReadCommitted);
            let end = (i + LOAD_CHUNK).min(cfg.rows);
            // One multi-row insert per chunk (as COPY / multi-row INSERT will do).
            let payloads: Vec<Vec<u8>> = (i..end).map(|j| payload(j, cfg.payload)).collect();
            let keys: Vec<[(RelId, IndexKey); 1]> = (i..end).map(|j| [(idx, key(j))]).collect();
            let rows: Vec<NewRow<'_>> = payloads
                .iter()
                .zip(&keys)
                .map(|(p, k)| (p.as_slice(), k.as_slice()))
                .collect();
            t.insert_many(table, &rows).await.expect("load insert");
            commit(t, &self.gtm).await;
            i = end;
        }
    }

    async fn inserts(&self, writers: usize, next: &Arc<AtomicU64>, cfg: Cfg) -> f64 {
        let m = Arc::new(Meter::default());
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let (store, gtm, m, next) = (
                self.store.clone(),
                self.gtm.clone(),
                m.clone(),
                next.clone(),
            );
            let (table, idx) = self.ins;
            tasks.push(tokio::spawn(async move {
                while !m.stopped() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let mut t = begin(&store, &gtm, Isolation::ReadCommitted);
                    t.insert(table, &payload(i, cfg.payload), &[(idx, key(i))])
                        .await
                        .expect("insert");
                    commit(t, &gtm).await;
                    m.add(1);
                }
            }));
        }
        let rate = sample_blocking(&m, cfg);
        for t in tasks {
            t.await.expect("insert task");
        }
        rate
    }

    async fn lookup_one(t: &mut Txn, idx: RelId, k: &IndexKey) {
        let mut s = t
            .index_scan(idx, KeyRange::eq(&k.bytes), false)
            .await
            .expect("index scan");
        let rows = t.next(&mut s, 2).await.expect("next");
        assert_eq!(rows.len(), 1, "one row per key");
        black_box(rows);
    }

    /// Point lookups/s by `readers` tasks; `txn_each` begins and commits a transaction per lookup.
    async fn lookups(&self, readers: usize, txn_each: bool, cfg: Cfg) -> f64 {
        let m = Arc::new(Meter::default());
        let mut tasks = Vec::new();
        for r in 0..readers {
            let (store, gtm, m) = (self.store.clone(), self.gtm.clone(), m.clone());
            let idx = self.tab.1;
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(42 + r as u64);
                let mut ops = 0u32;
                if txn_each {
                    while !m.stopped() {
                        let mut t = begin(&store, &gtm, Isolation::ReadCommitted);
                        Pgxc::lookup_one(&mut t, idx, &key(rng.gen_range(0..cfg.rows))).await;
                        commit(t, &gtm).await;
                        m.add(1);
                        yield_sometimes(&mut ops).await;
                    }
                } else {
                    let mut t = begin(&store, &gtm, Isolation::RepeatableRead);
                    while !m.stopped() {
                        Pgxc::lookup_one(&mut t, idx, &key(rng.gen_range(0..cfg.rows))).await;
                        m.add(1);
                        yield_sometimes(&mut ops).await;
                    }
                    commit(t, &gtm).await;
                }
            }));
        }
        let rate = sample_blocking(&m, cfg);
        for t in tasks {
            t.await.expect("lookup task");
        }
        rate
    }

    /// Rows/s of full sequential scans (`range` = false) or index range scans.
    async fn scans(&self, range: bool, cfg: Cfg) -> f64 {
        let m = Arc::new(Meter::default());
        let (store, gtm, m2) = (self.store.clone(), self.gtm.clone(), m.clone());
        let (table, idx) = self.tab;
        let task = tokio::spawn(async move {
            let m = m2;
            let mut rng = StdRng::seed_from_u64(7);
            let mut t = begin(&store, &gtm, Isolation::RepeatableRead);
            while !m.stopped() {
                let (mut s, expect) = if range {
                    let span = cfg.range.min(cfg.rows);
                    let lo = rng.gen_range(0..=cfg.rows - span);
                    let r = KeyRange::between(
                        Bound::Included(key(lo).bytes),
                        Bound::Excluded(key(lo + span).bytes),
                    );
                    (t.index_scan(idx, r, false).await.expect("index scan"), span)
                } else {
                    (t.scan(table, false).await.expect("scan"), cfg.rows)
                };
                let mut n = 0;
                while !m.stopped() {
                    let rows = t.next(&mut s, cfg.batch).await.expect("next");
                    if rows.is_empty() {
                        assert_eq!(n, expect, "rows per scan");
                        break;
                    }
                    n += rows.len() as u64;
                    m.add(rows.len() as u64);
                    black_box(rows);
                    tokio::task::yield_now().await;
                }
            }
            commit(t, &gtm).await;
        });
        let rate = sample_blocking(&m, cfg);
        task.await.expect("scan task");
        rate
    }
}

/// The floor: the same tables directly on redb.
struct Floor {
    db: Database,
}

impl Floor {
    fn open(dir: &std::path::Path) -> Floor {
        std::fs::create_dir_all(dir).expect("mkdir");
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("floor.redb"))
            .expect("create floor db");
        let w = db.begin_write().expect("begin write");
        for t in [INS_HEAP, INS_IDX, HEAP, IDX] {
            w.open_table(t).expect("open table");
        }
        w.commit().expect("commit");
        Floor { db }
    }

    fn load(&self, cfg: Cfg) {
        let mut i = 0;
        while i < cfg.rows {
            let end = (i + LOAD_CHUNK).min(cfg.rows);
            let w = self.db.begin_write().expect("begin write");
            {
                let mut heap = w.open_table(HEAP).expect("heap");
                let mut idx = w.open_table(IDX).expect("idx");
                for j in i..end {
                    let tid = j + 1;
                    heap.insert(
                        tid.to_be_bytes().as_slice(),
                        payload(j, cfg.payload).as_slice(),
                    )
                    .expect("insert");
                    idx.insert(entry(&key(j).bytes, tid).as_slice(), [].as_slice())
                        .expect("insert");
                }
            }
            w.commit().expect("commit");
            i = end;
        }
    }

    fn inserts(&self, writers: usize, next: &AtomicU64, cfg: Cfg) -> f64 {
        measure_threads(writers, cfg, |_, m| {
            while !m.stopped() {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let tid = i + 1;
                let k = key(i);
                let mut w = self.db.begin_write().expect("begin write");
                w.set_durability(Durability::Immediate).expect("durability");
                {
                    let mut idx = w.open_table(INS_IDX).expect("idx");
                    let (lo, hi) = entry_bounds(&k.bytes, &k.bytes);
                    let dup = idx
                        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
                        .expect("range")
                        .next()
                        .is_some();
                    assert!(!dup, "duplicate key");
                    idx.insert(entry(&k.bytes, tid).as_slice(), [].as_slice())
                        .expect("insert");
                    let mut heap = w.open_table(INS_HEAP).expect("heap");
                    heap.insert(
                        tid.to_be_bytes().as_slice(),
                        payload(i, cfg.payload).as_slice(),
                    )
                    .expect("insert");
                }
                w.commit().expect("commit");
                m.add(1);
            }
        })
    }

    fn lookups(&self, readers: usize, cfg: Cfg) -> f64 {
        measure_threads(readers, cfg, |r, m| {
            let mut rng = StdRng::seed_from_u64(42 + r as u64);
            while !m.stopped() {
                let k = key(rng.gen_range(0..cfg.rows));
                let (lo, hi) = entry_bounds(&k.bytes, &k.bytes);
                let rt = self.db.begin_read().expect("begin read");
                let idx = rt.open_table(IDX).expect("idx");
                let heap = rt.open_table(HEAP).expect("heap");
                let mut it = idx
                    .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
                    .expect("range");
                let (e, _) = it.next().expect("one entry").expect("read");
                let ev = e.value();
                let tid = &ev[ev.len() - 8..];
                let v = heap.get(tid).expect("get").expect("row");
                black_box(v.value().len());
                assert!(it.next().is_none(), "one entry per key");
                m.add(1);
            }
        })
    }

    fn scans(&self, range: bool, cfg: Cfg) -> f64 {
        measure_threads(1, cfg, |_, m| {
            let mut rng = StdRng::seed_from_u64(7);
            while !m.stopped() {
                let rt = self.db.begin_read().expect("begin read");
                let heap = rt.open_table(HEAP).expect("heap");
                // Rows not yet added to the meter (added a batch at a time).
                let mut n = 0u64;
                if range {
                    let span = cfg.range.min(cfg.rows);
                    let lo = rng.gen_range(0..=cfg.rows - span);
                    let (a, b) = entry_bounds(&key(lo).bytes, &key(lo + span - 1).bytes);
                    let idx = rt.open_table(IDX).expect("idx");
                    for e in idx
                        .range::<&[u8]>(a.as_slice()..=b.as_slice())
                        .expect("range")
                    {
                        let (e, _) = e.expect("read");
                        let ev = e.value();
                        let v = heap.get(&ev[ev.len() - 8..]).expect("get").expect("row");
                        black_box(v.value().len());
                        n += 1;
                        if n == cfg.batch as u64 {
                            m.add(n);
                            n = 0;
                        }
                    }
                } else {
                    for e in heap.iter().expect("iter") {
                        let (k, v) = e.expect("read");
                        black_box((k.value().len(), v.value().len()));
                        n += 1;
                        if n == cfg.batch as u64 {
                            m.add(n);
                            n = 0;
                            if m.stopped() {
                                break;
                            }
                        }
                    }
                }
                m.add(n);
            }
        })
    }
}

struct Figure {
    op: String,
    unit: &'static str,
    pgxc: f64,
    floor: f64,
}

fn print_figure(f: &Figure) {
    println!(
        "{:<30} {:>14.0} {:>14.0} {:>7.3}  {}",
        f.op,
        f.pgxc,
        f.floor,
        f.pgxc / f.floor,
        f.unit
    );
}

fn main() {
    // `cargo bench` passes `--bench` (a filter argument is accepted and ignored); without it (e.g.
    // `cargo test --all-targets`, which runs bench targets) there is nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        println!("mvcc: a benchmark; run it with `cargo bench -p pgxc-storage --bench mvcc`");
        return;
    }
    let cfg = Cfg {
        warmup: Duration::from_millis(env_u64("PGXC_BENCH_WARMUP_MS", 500)),
        measure: Duration::from_secs_f64(env_u64("PGXC_BENCH_SECS", 3).max(1) as f64),
        rows: env_u64("PGXC_BENCH_ROWS", 100_000).max(1),
        payload: env_u64("PGXC_BENCH_PAYLOAD", 100) as usize,
        batch: env_u64("PGXC_BENCH_BATCH", 1000).max(1) as usize,
        range: env_u64("PGXC_BENCH_RANGE", 1000).max(1),
    };
    let writers = env_counts("PGXC_BENCH_WRITERS", "1,32");
    let readers = env_counts("PGXC_BENCH_READERS", "1");
    let cases = env_list("PGXC_BENCH_CASES", "insert,lookup,seqscan,range");
    let has = |c: &str| cases.iter().any(|x| x == c);
    let workers = env_u64("PGXC_BENCH_WORKERS", 2).max(1) as usize;

    let dir = TempDir(std::env::temp_dir().join(format!(
        "pgxc-mvcc-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "mvcc: pgxc MVCC store vs redb directly (floor), real disk under {}; {workers} tokio worker(s), \
         warm-up {:?} + {:?} per figure, {} rows of {} bytes, scan batch {}, range {} keys",
        dir.0.display(),
        cfg.warmup,
        cfg.measure,
        cfg.rows,
        cfg.payload,
        cfg.batch,
        cfg.range
    );
    println!(
        "\n{:<30} {:>14} {:>14} {:>7}  unit",
        "operation", "pgxc", "redb floor", "ratio"
    );
    let started = Instant::now();
    let figures = rt.block_on(async {
        let pgxc = Pgxc::open(&Disk::real(dir.0.join("pgxc"))).await;
        let floor = Floor::open(&dir.0.join("floor"));
        let mut figures = Vec::new();
        let mut push = |f: Figure| {
            print_figure(&f);
            figures.push(f);
        };
        if has("insert") {
            // Keys never repeat across runs of either side's insert table.
            let (next_p, next_f) = (Arc::new(AtomicU64::new(0)), AtomicU64::new(0));
            for &w in &writers {
                let p = pgxc.inserts(w, &next_p, cfg).await;
                let f = floor.inserts(w, &next_f, cfg);
                push(Figure {
                    op: format!("insert commit, {w} writer(s)"),
                    unit: "commits/s",
                    pgxc: p,
                    floor: f,
                });
            }
        }
        if has("lookup") || has("seqscan") || has("range") {
            let t0 = Instant::now();
            pgxc.load(cfg).await;
            let lp = t0.elapsed();
            let t0 = Instant::now();
            floor.load(cfg);
            let lf = t0.elapsed();
            println!(
                "{:<30} {:>14.0} {:>14.0} {:>7.3}  rows/s (load {} rows: {:.2}s vs {:.2}s)",
                "load (10k-row txns)",
                cfg.rows as f64 / lp.as_secs_f64(),
                cfg.rows as f64 / lf.as_secs_f64(),
                lf.as_secs_f64() / lp.as_secs_f64(),
                cfg.rows,
                lp.as_secs_f64(),
                lf.as_secs_f64()
            );
        }
        if has("lookup") {
            for &r in &readers {
                let f = floor.lookups(r, cfg);
                let p = pgxc.lookups(r, false, cfg).await;
                push(Figure {
                    op: format!("point lookup, {r} reader(s)"),
                    unit: "lookups/s",
                    pgxc: p,
                    floor: f,
                });
                let p = pgxc.lookups(r, true, cfg).await;
                push(Figure {
                    op: format!("point lookup txn, {r} reader(s)"),
                    unit: "lookups/s (begin+lookup+commit)",
                    pgxc: p,
                    floor: f,
                });
            }
        }
        if has("seqscan") {
            let p = pgxc.scans(false, cfg).await;
            let f = floor.scans(false, cfg);
            push(Figure {
                op: "seq scan".to_string(),
                unit: "rows/s",
                pgxc: p,
                floor: f,
            });
        }
        if has("range") {
            let p = pgxc.scans(true, cfg).await;
            let f = floor.scans(true, cfg);
            push(Figure {
                op: format!("index range ({} keys)", cfg.range.min(cfg.rows)),
                unit: "rows/s",
                pgxc: p,
                floor: f,
            });
        }
        figures
    });
    drop(rt);
    drop(dir);
    let worst = figures
        .iter()
        .map(|f| f.pgxc / f.floor)
        .fold(f64::INFINITY, f64::min);
    println!(
        "\n{} figure(s) in {:.1}s; lowest ratio {:.3}",
        figures.len(),
        started.elapsed().as_secs_f64(),
        worst
    );
}
