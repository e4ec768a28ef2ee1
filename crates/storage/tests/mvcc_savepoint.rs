//! SAVEPOINT / ROLLBACK TO SAVEPOINT in the MVCC store: writes, index entries and DDL made after
//! a savepoint are reverted; the change log keeps only what survives.
#![cfg(not(madsim))]

use pgxc_common::SqlState;
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    Change, IndexKey, Isolation, KeyRange, LocalGtm, Lsn, Outcome, RelId, Store, StoreConfig, Txn,
};
use pgxc_storage::{Disk, SimDisk};

fn key(i: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i)])
}

fn row(k: i64, v: &str) -> Vec<u8> {
    format!("{k}:{v}").into_bytes()
}

async fn values(t: &mut Txn, table: RelId) -> Vec<String> {
    let mut s = t.scan(table, false).await.unwrap();
    let mut out = Vec::new();
    loop {
        let rows = t.next(&mut s, 100).await.unwrap();
        if rows.is_empty() {
            break;
        }
        out.extend(rows.into_iter().map(|r| String::from_utf8(r.data).unwrap()));
    }
    out.sort();
    out
}

async fn by_key(t: &mut Txn, idx: RelId, k: i64) -> Vec<String> {
    let mut s = t
        .index_scan(idx, KeyRange::eq(&key(k).bytes), false)
        .await
        .unwrap();
    let rows = t.next(&mut s, 100).await.unwrap();
    rows.into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect()
}

#[tokio::test]
async fn rollback_to_reverts_rows_indexes_and_ddl() {
    let store = Store::open(
        &Disk::sim(SimDisk::new()),
        "dn.redb",
        StoreConfig::default(),
    )
    .unwrap();
    let mut gtm = LocalGtm::default();
    let x = gtm.begin();
    let mut t = store
        .begin(x, Isolation::ReadCommitted, gtm.snapshot())
        .unwrap();
    let table = t.create_table("t").await.unwrap();
    let pk = t
        .create_index(table, "t_pkey", true, |_| Ok(key(0)))
        .await
        .unwrap();
    let a = t
        .insert(table, &row(1, "a"), &[(pk, key(1))])
        .await
        .unwrap();
    let c = t
        .insert(table, &row(3, "c"), &[(pk, key(3))])
        .await
        .unwrap();
    t.next_command().unwrap();

    let sp = t.savepoint();
    // After the savepoint: insert, update, delete, and a new table with a row.
    let b = t
        .insert(table, &row(2, "b"), &[(pk, key(2))])
        .await
        .unwrap();
    assert!(matches!(
        t.update(table, a, &row(1, "a2"), &[(pk, key(1))])
            .await
            .unwrap(),
        Outcome::Done(_)
    ));
    assert_eq!(t.delete(table, c).await.unwrap(), Outcome::Done(()));
    let other = t.create_table("other").await.unwrap();
    t.insert(other, b"x", &[]).await.unwrap();
    t.next_command().unwrap();
    assert_eq!(values(&mut t, table).await, vec!["1:a2", "2:b"]);

    t.rollback_to(&sp).unwrap();
    t.next_command().unwrap();
    assert_eq!(values(&mut t, table).await, vec!["1:a", "3:c"]);
    assert!(
        t.relation(other).is_none(),
        "table created after the savepoint is gone"
    );
    assert!(
        by_key(&mut t, pk, 2).await.is_empty(),
        "index entry of the reverted insert is gone"
    );
    assert_eq!(by_key(&mut t, pk, 1).await, vec!["1:a"]);
    // Key 2 is free again, key 1 still taken.
    t.insert(table, &row(2, "b2"), &[(pk, key(2))])
        .await
        .unwrap();
    let dup = t
        .insert(table, &row(1, "dup"), &[(pk, key(1))])
        .await
        .unwrap_err();
    assert_eq!(dup.code, SqlState::UniqueViolation);

    // The savepoint stays usable: roll back to it a second time.
    t.rollback_to(&sp).unwrap();
    t.next_command().unwrap();
    assert_eq!(values(&mut t, table).await, vec!["1:a", "3:c"]);

    // A truncate after a savepoint comes back too.
    let sp2 = t.savepoint();
    t.truncate(table).await.unwrap();
    t.next_command().unwrap();
    assert!(values(&mut t, table).await.is_empty());
    t.rollback_to(&sp2).unwrap();
    t.next_command().unwrap();
    assert_eq!(values(&mut t, table).await, vec!["1:a", "3:c"]);
    assert_eq!(by_key(&mut t, pk, 3).await, vec!["3:c"]);

    let from = store.next_lsn();
    t.commit().await.unwrap();
    gtm.end(x);

    // Another transaction sees exactly the state at the savepoint.
    let y = gtm.begin();
    let mut r = store
        .begin(y, Isolation::ReadCommitted, gtm.snapshot())
        .unwrap();
    assert_eq!(values(&mut r, table).await, vec!["1:a", "3:c"]);
    assert!(r.relation(other).is_none());
    drop(r);
    let _ = from;
    // The change log holds no record of the reverted writes.
    let log = store.changes_since(Lsn(1), 10_000).unwrap();
    assert!(!log
        .iter()
        .any(|rec| matches!(&rec.change, Change::PutTuple { tid, .. } if *tid == b)));
    assert!(!log
        .iter()
        .any(|rec| matches!(&rec.change, Change::CreateRel { def, .. } if def.id == other)));
    assert_eq!(store.relations().len(), 2, "t and its index only");
}
