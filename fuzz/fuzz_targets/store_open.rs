//! Arbitrary damage to a datanode store file never panics: a valid store image (built once on a
//! simulated disk) is damaged as the fuzzer chooses (bit flips, overwrites, zeroed runs,
//! truncation, extension), then `Store::open`, `verify`, the change log and a scan of every
//! relation must each return `Ok` or `Err`. The CI-run twin of this target is the proptest
//! `crates/storage/tests/store_corruption.rs`.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pgxc_common::{Gxid, Snapshot};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{
    IndexKey, Isolation, KeyRange, LocalGtm, Lsn, PrepareInfo, RelKind, Store, StoreConfig,
};
use pgxc_storage::{Disk, SimDisk};

const FILE: &str = "dn.redb";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

fn key(i: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i)])
}

/// A valid store image: two tables, unique and non-unique indexes, committed, rolled back and
/// prepared transactions, rows of several sizes.
fn base_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let sim = SimDisk::new();
        runtime().block_on(async {
            let store = Store::open(&Disk::sim(sim.clone()), FILE, StoreConfig::default())
                .expect("open new store");
            let mut gtm = LocalGtm::default();
            let x = gtm.begin();
            let mut t = store
                .begin(x, Isolation::ReadCommitted, gtm.snapshot())
                .expect("begin");
            let a = t.create_table("a").await.expect("create a");
            let a_pkey = t
                .create_index(a, "a_pkey", true, |_| Ok(key(0)))
                .await
                .expect("index");
            let b = t.create_table("b").await.expect("create b");
            let b_len = t
                .create_index(b, "b_len", false, |p| Ok(key(p.len() as i64)))
                .await
                .expect("index");
            t.commit().await.expect("commit");
            gtm.end(x);
            for round in 0..12i64 {
                let x = gtm.begin();
                let mut t = store
                    .begin(x, Isolation::ReadCommitted, gtm.snapshot())
                    .expect("begin");
                for i in 0..8 {
                    let k = round * 8 + i;
                    let payload = vec![b'a' + (k % 26) as u8; 20 + (k as usize * 37) % 900];
                    t.insert(a, &payload, &[(a_pkey, key(k))])
                        .await
                        .expect("insert a");
                    t.insert(b, &payload[..k as usize % 20], &[(b_len, key(k % 20))])
                        .await
                        .expect("insert b");
                }
                match round % 4 {
                    3 => t.rollback(),
                    2 if round == 2 => {
                        let info = PrepareInfo {
                            prepared_at: 0,
                            owner: "o".into(),
                            database: "d".into(),
                        };
                        t.prepare("g1", info).await.expect("prepare");
                    }
                    _ => {
                        t.commit().await.expect("commit");
                    }
                }
                gtm.end(x);
            }
        });
        sim.durable_image(FILE).expect("store file")
    })
}

/// One kind of damage; offsets are fractions (over `2^32`) of the image length.
#[derive(Arbitrary, Debug)]
enum Damage {
    Flip { at: u32, bit: u8 },
    Overwrite { at: u32, bytes: Vec<u8> },
    Zero { at: u32, len: u16 },
    Truncate { at: u32 },
    Extend { len: u16, fill: u8 },
}

fn pos(at: u32, len: usize) -> usize {
    ((at as u64 * len as u64) >> 32) as usize
}

fn apply(image: &mut Vec<u8>, damage: &[Damage]) {
    for d in damage {
        let len = image.len();
        match d {
            Damage::Flip { at, bit } if len > 0 => image[pos(*at, len)] ^= 1 << (bit % 8),
            Damage::Overwrite { at, bytes } if len > 0 => {
                let start = pos(*at, len);
                let end = (start + bytes.len()).min(len);
                image[start..end].copy_from_slice(&bytes[..end - start]);
            }
            Damage::Zero { at, len: n } if len > 0 => {
                let start = pos(*at, len);
                let end = (start + *n as usize).min(len);
                image[start..end].fill(0);
            }
            Damage::Truncate { at } => image.truncate(pos(*at, len)),
            Damage::Extend { len: n, fill } => image.resize(len + *n as usize, *fill),
            _ => {}
        }
    }
}

fn exercise(image: Vec<u8>) {
    let sim = SimDisk::new();
    sim.put_file(FILE, image);
    let Ok(store) = Store::open(&Disk::sim(sim), FILE, StoreConfig::default()) else {
        return;
    };
    let _ = store.verify();
    let _ = store.changes_since(Lsn(0), 1000);
    // Prepared transactions count as running, as the GTM would report them.
    let xmax = Gxid(1_000_000);
    let prepared: BTreeSet<Gxid> = store
        .prepared_xacts()
        .into_iter()
        .map(|p| p.xid)
        .filter(|x| x.is_valid() && *x < xmax)
        .collect();
    runtime().block_on(async {
        for (i, rel) in store.relations().into_iter().enumerate() {
            let _ = store.rel_stats(rel.id);
            let x = Gxid(xmax.0 + i as u64);
            let snapshot = Snapshot::new(x, prepared.iter().copied().collect());
            let Ok(mut t) = store.begin(x, Isolation::ReadCommitted, snapshot) else {
                continue;
            };
            t.set_lock_timeout(Some(Duration::from_millis(1)));
            let scan = match rel.kind {
                RelKind::Table => t.scan(rel.id, false).await,
                RelKind::Index { .. } => t.index_scan(rel.id, KeyRange::all(), true).await,
            };
            if let Ok(mut scan) = scan {
                for _ in 0..10_000 {
                    match t.next(&mut scan, 64).await {
                        Ok(rows) if !rows.is_empty() => {}
                        _ => break,
                    }
                }
            }
            if rel.kind == RelKind::Table {
                let _ = t.insert(rel.id, b"after damage", &[]).await;
            }
            t.rollback();
        }
    });
}

fuzz_target!(|damage: Vec<Damage>| {
    let mut image = base_image().to_vec();
    apply(&mut image, &damage);
    exercise(image);
});
