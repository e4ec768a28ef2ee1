//! Kv API tests on a simulated and a real disk.

use std::ops::Bound::{self, Excluded, Included, Unbounded};

use pgxc_common::{PgError, SqlState};
use pgxc_storage::{Disk, Durability, Kv, SimDisk, StorageError, WriteBatch};

fn sim_kv() -> (SimDisk, Kv) {
    let disk = SimDisk::new();
    let kv = Disk::sim(disk.clone()).open_kv("db").expect("open");
    (disk, kv)
}

fn k(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u32> {
    entries
        .iter()
        .map(|(key, _)| u32::from_be_bytes(key.as_slice().try_into().expect("4-byte key")))
        .collect()
}

/// Fill table "log" with keys 0..10, value = key + "v".
fn fill(kv: &Kv) {
    let mut b = WriteBatch::new();
    for i in 0..10 {
        let mut v = k(i);
        v.push(b'v');
        b.put("log", &k(i), &v);
    }
    kv.write(b, Durability::Immediate).expect("write");
}

#[test]
fn absent_tables_read_as_empty() {
    let (_disk, kv) = sim_kv();
    assert_eq!(kv.get("nope", b"k").expect("get"), None);
    assert_eq!(kv.first("nope").expect("first"), None);
    assert_eq!(kv.last("nope").expect("last"), None);
    assert!(kv
        .range("nope", Unbounded, Unbounded, false, None)
        .expect("range")
        .is_empty());
}

#[test]
fn put_get_delete_round_trip() {
    let (_disk, kv) = sim_kv();
    let mut b = WriteBatch::new();
    b.put("a", b"k1", b"v1")
        .put("a", b"k2", b"")
        .put("b", b"k1", b"other");
    assert_eq!(b.len(), 3);
    kv.write(b, Durability::Immediate).expect("write");
    assert_eq!(kv.get("a", b"k1").expect("get"), Some(b"v1".to_vec()));
    assert_eq!(kv.get("a", b"k2").expect("get"), Some(Vec::new()));
    assert_eq!(kv.get("b", b"k1").expect("get"), Some(b"other".to_vec()));
    assert_eq!(kv.get("a", b"k3").expect("get"), None);

    let mut b = WriteBatch::new();
    b.delete("a", b"k1")
        .put("a", b"k2", b"new")
        .delete("a", b"missing");
    kv.write(b, Durability::Deferred).expect("write");
    assert_eq!(kv.get("a", b"k1").expect("get"), None);
    assert_eq!(kv.get("a", b"k2").expect("get"), Some(b"new".to_vec()));
    assert_eq!(
        kv.first("a").expect("first"),
        Some((b"k2".to_vec(), b"new".to_vec()))
    );
    assert_eq!(
        kv.last("b").expect("last"),
        Some((b"k1".to_vec(), b"other".to_vec()))
    );
}

#[test]
fn ranges_both_directions_with_limits() {
    let (_disk, kv) = sim_kv();
    fill(&kv);
    let r = |s: Bound<&[u8]>, e: Bound<&[u8]>, rev, lim| {
        keys(&kv.range("log", s, e, rev, lim).expect("range"))
    };
    let (k3, k7) = (k(3), k(7));
    assert_eq!(
        r(Unbounded, Unbounded, false, None),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        r(Unbounded, Unbounded, true, None),
        (0..10).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        r(Included(&k3), Excluded(&k7), false, None),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        r(Excluded(&k3), Included(&k7), false, None),
        vec![4, 5, 6, 7]
    );
    assert_eq!(r(Included(&k3), Included(&k7), true, Some(2)), vec![7, 6]);
    assert_eq!(r(Included(&k3), Unbounded, false, Some(3)), vec![3, 4, 5]);
    assert_eq!(r(Unbounded, Excluded(&k3), true, Some(10)), vec![2, 1, 0]);
    assert_eq!(r(Unbounded, Unbounded, false, Some(0)), Vec::<u32>::new());
    // Empty and inverted ranges are empty, not a panic.
    assert_eq!(
        r(Included(&k7), Included(&k3), false, None),
        Vec::<u32>::new()
    );
    assert_eq!(
        r(Included(&k3), Excluded(&k3), false, None),
        Vec::<u32>::new()
    );
    assert_eq!(r(Included(&k3), Included(&k3), true, None), vec![3]);
    // Values come back with their keys.
    let got = kv
        .range("log", Included(&k3), Unbounded, false, Some(1))
        .expect("range");
    assert_eq!(got, vec![(k(3), [k(3), b"v".to_vec()].concat())]);
    assert_eq!(kv.first("log").expect("first").map(|e| e.0), Some(k(0)));
    assert_eq!(kv.last("log").expect("last").map(|e| e.0), Some(k(9)));
}

#[test]
fn delete_range_removes_exactly_the_range() {
    let (_disk, kv) = sim_kv();
    fill(&kv);
    let (k2, k5, k8) = (k(2), k(5), k(8));
    let mut b = WriteBatch::new();
    b.delete_range("log", Excluded(&k2), Included(&k5));
    b.delete_range("log", Included(&k8), Unbounded);
    b.delete_range("log", Included(&k5), Excluded(&k2)); // inverted: no-op
    b.delete_range("absent", Unbounded, Unbounded); // absent table: no-op
    kv.write(b, Durability::Immediate).expect("write");
    let all = kv
        .range("log", Unbounded, Unbounded, false, None)
        .expect("range");
    assert_eq!(keys(&all), vec![0, 1, 2, 6, 7]);

    let mut b = WriteBatch::new();
    b.delete_range("log", Unbounded, Unbounded);
    kv.write(b, Durability::Immediate).expect("write");
    assert_eq!(kv.first("log").expect("first"), None);
}

#[test]
fn a_failed_batch_applies_nothing() {
    let (disk, kv) = sim_kv();
    fill(&kv);
    // The disk dies in the middle of the commit: the batch must be invisible, wholly.
    disk.fail_after_writes(Some(1));
    let mut b = WriteBatch::new();
    b.delete_range("log", Unbounded, Unbounded);
    for i in 100..200 {
        b.put("log", &k(i), &[7u8; 1000]);
    }
    let err = kv.write(b, Durability::Immediate).expect_err("disk failed");
    assert!(err.is_io(), "{err}");
    let pg: PgError = err.into();
    assert_eq!(pg.code, SqlState::IoError);
    assert_eq!(
        keys(
            &kv.range("log", Unbounded, Unbounded, false, None)
                .expect("range")
        ),
        (0..10).collect::<Vec<_>>()
    );
    disk.fail_after_writes(None);
    // After a power loss and a reopen the batch is not there either, or whole.
    disk.crash(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1));
    drop(kv);
    let kv = Disk::sim(disk.clone()).open_kv("db").expect("reopen");
    let got = keys(
        &kv.range("log", Unbounded, Unbounded, false, None)
            .expect("range"),
    );
    assert!(
        got == (0..10).collect::<Vec<_>>() || got == (100..200).collect::<Vec<_>>(),
        "{got:?}"
    );
}

#[test]
fn batches_are_atomic_and_ordered() {
    let (_disk, kv) = sim_kv();
    let mut b = WriteBatch::new();
    b.put("t", b"x", b"1")
        .delete("t", b"x")
        .put("t", b"y", b"2")
        .put("t", b"y", b"3");
    kv.write(b, Durability::Immediate).expect("write");
    assert_eq!(kv.get("t", b"x").expect("get"), None);
    assert_eq!(kv.get("t", b"y").expect("get"), Some(b"3".to_vec()));
    // An empty batch commits (a sync barrier) and changes nothing.
    kv.write(WriteBatch::new(), Durability::Immediate)
        .expect("write");
    assert_eq!(kv.get("t", b"y").expect("get"), Some(b"3".to_vec()));
}

#[test]
fn immediate_syncs_and_deferred_does_not() {
    let (disk, kv) = sim_kv();
    let before = disk.sync_count();
    let mut b = WriteBatch::new();
    b.put("t", b"a", b"1");
    kv.write(b, Durability::Deferred).expect("write");
    assert_eq!(disk.sync_count(), before, "deferred write must not sync");
    let mut b = WriteBatch::new();
    b.put("t", b"b", b"2");
    kv.write(b, Durability::Immediate).expect("write");
    assert!(disk.sync_count() > before, "immediate write must sync");
    assert_eq!(
        disk.pending_ops("db"),
        0,
        "nothing unsynced after an immediate commit"
    );
}

#[test]
fn deferred_writes_survive_a_clean_close() {
    let disk = SimDisk::new();
    let kv = Disk::sim(disk.clone()).open_kv("db").expect("open");
    let mut b = WriteBatch::new();
    b.put("t", b"a", b"1");
    kv.write(b, Durability::Immediate).expect("write");
    let mut b = WriteBatch::new();
    b.put("t", b"b", b"2");
    kv.write(b, Durability::Deferred).expect("write");
    drop(kv);
    let kv = Disk::sim(disk.clone()).open_kv("db").expect("reopen");
    assert_eq!(kv.get("t", b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(kv.get("t", b"b").expect("get"), Some(b"2".to_vec()));
}

#[test]
fn one_open_handle_per_file_and_name_checks() {
    let disk = SimDisk::new();
    let d = Disk::sim(disk.clone());
    assert!(!d.exists("db"));
    let kv = d.open_kv("db").expect("open");
    assert!(d.exists("db"));
    assert_eq!(disk.file_names(), vec!["db".to_string()]);
    assert!(disk.size("db").expect("size") > 0);
    assert!(matches!(d.open_kv("db"), Err(StorageError::Misuse(_))));
    for bad in ["", ".", "..", "a/b", "a\\b"] {
        assert!(
            matches!(d.open_kv(bad), Err(StorageError::Misuse(_))),
            "{bad:?}"
        );
        assert!(!d.exists(bad));
    }
    let kv2 = kv.clone();
    drop(kv);
    drop(kv2);
    let kv = d.open_kv("db").expect("reopen after close");
    assert_eq!(kv.name(), "db");
}

#[test]
fn storage_errors_map_to_sqlstates() {
    let pg = PgError::from(StorageError::Corruption("bad page".into()));
    assert_eq!(pg.code, SqlState::DataCorrupted);
    assert!(pg.message.contains("bad page"));
    assert_eq!(
        PgError::from(StorageError::Io("x".into())).code,
        SqlState::IoError
    );
    assert_eq!(
        PgError::from(StorageError::Misuse("x".into())).code,
        SqlState::InternalError
    );
}

#[test]
fn real_disk_in_a_temp_dir() {
    let dir = std::env::temp_dir().join(format!(
        "pgxc-storage-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let disk = Disk::real(dir.join("nested"));
    assert_eq!(disk.dir(), Some(dir.join("nested").as_path()));
    assert!(!disk.exists("gtm.redb"));
    {
        let kv = disk.open_kv("gtm.redb").expect("open real");
        assert!(disk.exists("gtm.redb"));
        assert!(
            matches!(disk.open_kv("gtm.redb"), Err(StorageError::Misuse(_))),
            "redb's file lock refuses a second open"
        );
        fill(&kv);
        let mut b = WriteBatch::new();
        b.delete("log", &k(0));
        kv.write(b, Durability::Deferred).expect("write");
    }
    let kv = disk.open_kv("gtm.redb").expect("reopen real");
    assert_eq!(
        keys(
            &kv.range("log", Unbounded, Unbounded, true, Some(3))
                .expect("range")
        ),
        vec![9, 8, 7]
    );
    assert_eq!(kv.first("log").expect("first").map(|e| e.0), Some(k(1)));
    drop(kv);
    assert!(dir.join("nested").join("gtm.redb").is_file());
}
