//! Basic behaviour of the MVCC store on a real disk: visibility, indexes, updates, DDL,
//! prepared transactions and restart.
#![cfg(not(madsim))]

use pgxc_common::SqlState;
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    IndexKey, Isolation, KeyRange, LocalGtm, Outcome, PrepareInfo, RelId, Store, StoreConfig, Txn,
};
use pgxc_storage::Disk;

type Gtm = LocalGtm;

fn start(store: &Store, gtm: &mut Gtm, iso: Isolation) -> Txn {
    let x = gtm.begin();
    store.begin(x, iso, gtm.snapshot()).unwrap()
}

fn key(i: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i)])
}

fn row(i: i64, v: &str) -> Vec<u8> {
    format!("{i}:{v}").into_bytes()
}

async fn all(t: &mut Txn, table: RelId) -> Vec<String> {
    let mut s = t.scan(table, false).await.unwrap();
    let mut out = Vec::new();
    loop {
        let rows = t.next(&mut s, 3).await.unwrap();
        if rows.is_empty() {
            break;
        }
        out.extend(rows.into_iter().map(|r| String::from_utf8(r.data).unwrap()));
    }
    out
}

#[tokio::test]
async fn insert_update_delete_and_restart() {
    let dir = tempdir();
    let disk = Disk::real(&dir);
    let mut gtm = Gtm::default();
    let store = Store::open(&disk, "dn.redb", StoreConfig::default()).unwrap();

    let mut t = start(&store, &mut gtm, Isolation::ReadCommitted);
    let table = t.create_table("t").await.unwrap();
    let idx = t
        .create_index(table, "t_pkey", true, |_| Ok(key(0)))
        .await
        .unwrap();
    for i in 1..=5 {
        t.insert(table, &row(i, "a"), &[(idx, key(i))])
            .await
            .unwrap();
    }
    // Own writes are visible to the next command, not the current one.
    assert!(all(&mut t, table).await.is_empty());
    t.next_command().unwrap();
    assert_eq!(all(&mut t, table).await.len(), 5);
    let x = t.xid();
    t.commit().await.unwrap();
    gtm.end(x);

    // A concurrent reader with an old snapshot keeps seeing the old values.
    let mut old = start(&store, &mut gtm, Isolation::RepeatableRead);
    let mut w = start(&store, &mut gtm, Isolation::ReadCommitted);
    let mut scan = w
        .index_scan(idx, KeyRange::eq(&key(3).bytes), false)
        .await
        .unwrap();
    let rows = w.next(&mut scan, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let o = w
        .update(table, rows[0].tid, &row(3, "b"), &[(idx, key(3))])
        .await
        .unwrap();
    assert!(matches!(o, Outcome::Done(_)));
    // Updating it again in the same command is SelfModified.
    assert_eq!(
        w.update(table, rows[0].tid, &row(3, "c"), &[(idx, key(3))])
            .await
            .unwrap(),
        Outcome::SelfModified
    );
    let wx = w.xid();
    w.commit().await.unwrap();
    gtm.end(wx);
    assert!(all(&mut old, table).await.contains(&"3:a".to_string()));
    let ox = old.xid();
    drop(old);
    gtm.end(ox);

    // Unique violation.
    let mut d = start(&store, &mut gtm, Isolation::ReadCommitted);
    let err = d
        .insert(table, &row(2, "dup"), &[(idx, key(2))])
        .await
        .unwrap_err();
    assert_eq!(err.code, SqlState::UniqueViolation);
    let dx = d.xid();
    drop(d);
    gtm.end(dx);

    // Prepare a delete, restart, commit it.
    let mut p = start(&store, &mut gtm, Isolation::ReadCommitted);
    let mut scan = p
        .index_scan(idx, KeyRange::eq(&key(1).bytes), false)
        .await
        .unwrap();
    let r = p.next(&mut scan, 10).await.unwrap();
    assert_eq!(p.delete(table, r[0].tid).await.unwrap(), Outcome::Done(()));
    let px = p.xid();
    p.prepare(
        "g1",
        PrepareInfo {
            prepared_at: 0,
            owner: "u".into(),
            database: "d".into(),
        },
    )
    .await
    .unwrap();
    drop(store);

    let store = Store::open(&disk, "dn.redb", StoreConfig::default()).unwrap();
    assert_eq!(store.prepared_xacts().len(), 1);
    assert_eq!(store.prepared_xacts()[0].xid, px);
    let mut r = start(&store, &mut gtm, Isolation::ReadCommitted);
    let mut rows = all(&mut r, table).await;
    rows.sort();
    assert_eq!(rows, vec!["1:a", "2:a", "3:b", "4:a", "5:a"]);
    store.commit_prepared("g1").await.unwrap();
    gtm.end(px);
    r.set_snapshot(gtm.snapshot()).unwrap();
    let mut rows = all(&mut r, table).await;
    rows.sort();
    assert_eq!(rows, vec!["2:a", "3:b", "4:a", "5:a"]);
    drop(r);
    let lsn = store.next_lsn();
    assert!(lsn.0 > 10, "change log has records: {lsn:?}");
    let recs = store
        .changes_since(pgxc_storage::mvcc::Lsn(1), 1000)
        .unwrap();
    assert_eq!(recs.len() as u64, lsn.0 - 1);
    assert!(recs.windows(2).all(|w| w[0].lsn < w[1].lsn));
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pgxc-mvcc-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
