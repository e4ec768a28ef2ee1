//! Real-process crash test of the datanode MVCC store: the `store_writer` binary
//! (`tests/src/bin/store_writer.rs`) commits single- and multi-row transactions from concurrent
//! tasks on a real directory and prints each acknowledged commit; the test kills it with SIGKILL
//! mid-stream, reopens the store in-process and checks that
//!
//! - the store opens (recovery succeeds) and `verify` passes;
//! - every acknowledged transaction's rows are there, with the right payloads;
//! - every transaction found is all-or-nothing (all of its rows or none);
//! - no GXID is reused across restarts (the restarted writer's GXIDs lie above every one seen).
//!
//! Three kill/reopen cycles run on the same directory, the writer restarting each time.
#![cfg(not(madsim))]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgxc_common::Gxid;
use pgxc_storage::mvcc::{Isolation, KeyRange, LocalGtm, RelId, RelKind, Store, StoreConfig};
use pgxc_storage::Disk;

/// Kill/reopen cycles.
const CYCLES: usize = 3;
/// Acknowledged commits to read before each kill.
const ACKS_BEFORE_KILL: usize = 200;
/// Bound on the wait for those acknowledgements.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One acknowledged commit, as the writer printed it.
#[derive(Debug)]
struct Ack {
    gxid: u64,
    keys: Vec<i64>,
}

fn parse_ack(line: &str) -> Ack {
    let mut it = line.split_whitespace();
    assert_eq!(it.next(), Some("ACK"), "unexpected writer output {line:?}");
    let gxid = it.next().and_then(|s| s.parse().ok()).expect("gxid");
    let n: usize = it.next().and_then(|s| s.parse().ok()).expect("n");
    let keys: Vec<i64> = it.map(|s| s.parse().expect("key")).collect();
    assert_eq!(keys.len(), n, "ack line {line:?}");
    Ack { gxid, keys }
}

/// The writer's payload for row `key` of a transaction `gxid` of `n` rows (as in store_writer).
fn payload(gxid: u64, n: usize, key: i64) -> String {
    format!("gxid={gxid} n={n} key={key}")
}

/// A temporary directory that is removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let d =
            std::env::temp_dir().join(format!("pgxc-store-sigkill-{}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The writer process; killed when dropped (e.g. when an assertion fails).
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the writer on `dir` until `ACKS_BEFORE_KILL` acknowledgements arrived, SIGKILL it, and
/// return every acknowledgement it printed (including those still in the pipe at the kill).
fn run_and_kill(dir: &Path) -> Vec<Ack> {
    let mut child = Writer(
        Command::new(env!("CARGO_BIN_EXE_store_writer"))
            .arg(dir)
            .arg("4")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn store_writer"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                // A line cut by the kill (no newline) was not completely printed: not an ack.
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + ACK_TIMEOUT;
    while acks.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acks.push(parse_ack(&line)),
            Err(e) => {
                let status = child.0.try_wait();
                panic!(
                    "only {} acknowledgements from store_writer ({e}; exit status {status:?})",
                    acks.len()
                );
            }
        }
    }
    // std's Child::kill sends SIGKILL on unix.
    child.0.kill().expect("SIGKILL store_writer");
    let status = child.0.wait().expect("wait for store_writer");
    assert!(!status.success(), "store_writer was killed: {status:?}");
    reader.join().expect("reader thread");
    acks.extend(rx.try_iter().map(|l| parse_ack(&l)));
    acks
}

/// The table the writer writes to.
fn acked_table(store: &Store) -> RelId {
    store
        .relations()
        .into_iter()
        .find(|r| r.name == "acked" && r.kind == RelKind::Table)
        .map(|r| r.id)
        .expect("table acked exists once commits were acknowledged")
}

/// Every visible row of `acked` as (key, payload), read by a scan and by an index scan that must
/// agree.
async fn read_rows(store: &Store, gtm: &mut LocalGtm) -> BTreeMap<i64, String> {
    let table = acked_table(store);
    let index = store
        .relations()
        .into_iter()
        .find(|r| r.name == "acked_pkey")
        .map(|r| r.id)
        .expect("index acked_pkey exists");
    let x = gtm.begin();
    let mut t = store
        .begin(x, Isolation::RepeatableRead, gtm.snapshot())
        .expect("begin");
    let mut by_scan = BTreeMap::new();
    let mut scan = t.scan(table, false).await.expect("scan");
    loop {
        let rows = t.next(&mut scan, 500).await.expect("next");
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let p = String::from_utf8(r.data).expect("utf-8 payload");
            let key: i64 = p
                .rsplit("key=")
                .next()
                .and_then(|k| k.parse().ok())
                .unwrap_or_else(|| panic!("bad payload {p:?}"));
            assert!(by_scan.insert(key, p).is_none(), "key {key} twice");
        }
    }
    let mut by_index = 0;
    let mut scan = t
        .index_scan(index, KeyRange::all(), false)
        .await
        .expect("index scan");
    loop {
        let rows = t.next(&mut scan, 500).await.expect("next");
        if rows.is_empty() {
            break;
        }
        by_index += rows.len();
    }
    assert_eq!(by_index, by_scan.len(), "index scan and heap scan disagree");
    t.rollback();
    gtm.end(x);
    by_scan
}

/// Reopen the store after a kill and check it against every acknowledgement so far. Returns
/// the largest GXID found in the data.
fn check(dir: &Path, acked: &[Ack]) -> u64 {
    let store = Store::open(&Disk::real(dir), "dn.redb", StoreConfig::default())
        .expect("the store opens after SIGKILL");
    let tuples = store.verify().expect("verify");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Read with GXIDs far above the writer's, which reserves GXIDs in blocks of 1000.
    let mut gtm = LocalGtm::starting_at(Gxid(1 << 40));
    let rows = rt.block_on(read_rows(&store, &mut gtm));
    assert!(
        tuples >= rows.len() as u64,
        "{tuples} tuples, {} rows",
        rows.len()
    );

    // Every acknowledged row, with its payload.
    for a in acked {
        for k in &a.keys {
            assert_eq!(
                rows.get(k).map(String::as_str),
                Some(payload(a.gxid, a.keys.len(), *k).as_str()),
                "row {k} of acknowledged transaction {}",
                a.gxid
            );
        }
    }
    // All or nothing: group the rows by transaction.
    let mut by_txn: BTreeMap<u64, (usize, BTreeSet<i64>)> = BTreeMap::new();
    for (k, p) in &rows {
        let mut gxid = None;
        let mut n = None;
        for field in p.split_whitespace() {
            if let Some(v) = field.strip_prefix("gxid=") {
                gxid = v.parse::<u64>().ok();
            } else if let Some(v) = field.strip_prefix("n=") {
                n = v.parse::<usize>().ok();
            }
        }
        let (gxid, n) = gxid.zip(n).unwrap_or_else(|| panic!("bad payload {p:?}"));
        assert_eq!(*p, payload(gxid, n, *k), "payload of row {k}");
        let e = by_txn.entry(gxid).or_insert((n, BTreeSet::new()));
        assert_eq!(e.0, n, "transaction {gxid} with two row counts");
        e.1.insert(*k);
    }
    for (gxid, (n, keys)) in &by_txn {
        let want: BTreeSet<i64> = (0..*n as i64).map(|i| *gxid as i64 * 8 + i).collect();
        assert_eq!(*keys, want, "transaction {gxid} is not all-or-nothing");
    }
    let acked_txns: BTreeSet<u64> = acked.iter().map(|a| a.gxid).collect();
    let unacked = by_txn.keys().filter(|x| !acked_txns.contains(x)).count();
    eprintln!(
        "store_sigkill: {} transactions acknowledged, {} found ({} committed but not yet \
         acknowledged at the kill), {} rows, {tuples} tuples",
        acked_txns.len(),
        by_txn.len(),
        unacked,
        rows.len()
    );
    by_txn.keys().next_back().copied().unwrap_or(0)
}

#[test]
fn sigkilled_writer_loses_no_acknowledged_commit() {
    let started = Instant::now();
    let dir = TempDir::new();
    let mut acked: Vec<Ack> = Vec::new();
    let mut max_seen = 0;
    for cycle in 0..CYCLES {
        let acks = run_and_kill(&dir.0);
        // GXIDs are never reused: this run's lie above everything found after the last one.
        let min_new = acks.iter().map(|a| a.gxid).min().expect("acks");
        assert!(
            min_new > max_seen,
            "cycle {cycle}: GXID {min_new} issued again after a restart (largest seen {max_seen})"
        );
        let distinct: BTreeSet<u64> = acks.iter().map(|a| a.gxid).collect();
        assert_eq!(distinct.len(), acks.len(), "a GXID acknowledged twice");
        acked.extend(acks);
        max_seen = check(&dir.0, &acked);
    }
    eprintln!("store_sigkill: {CYCLES} cycles in {:?}", started.elapsed());
}
