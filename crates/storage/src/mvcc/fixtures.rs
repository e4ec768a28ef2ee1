//! Fixtures for tests and fuzzing (not used by the store itself): a sample store image with every
//! kind of content, ways to damage it, and a routine that opens a (damaged) image and reads
//! everything in it. Shared by `tests/store_corruption.rs` and `fuzz/fuzz_targets/store_open.rs`.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use pgxc_common::{Gxid, Snapshot};

use super::{
    IndexKey, Isolation, KeyRange, LocalGtm, Lsn, PrepareInfo, RelKind, Store, StoreConfig,
};
use crate::keycode::{encode_key, KeyDatum};
use crate::{Disk, SimDisk};

/// The file name of the sample store image.
pub const FILE: &str = "dn.redb";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn key(i: i64) -> IndexKey {
    encode_key(&[KeyDatum::Int(i)])
}

/// (Tests and fuzzing.) A valid store image (the file `FILE`) with two tables, unique and non-unique indexes, committed, aborted and
/// prepared transactions and rows of several sizes (so that redb's trees have branch pages).
pub fn sample_image() -> &'static [u8] {
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
            drop(store);
        });
        sim.durable_image(FILE).expect("store file")
    })
}

/// One kind of damage, at offsets given as fractions (`u32` over `2^32`) of the image length so
/// that every region of the file is reachable whatever its size.
#[derive(Clone, Debug)]
pub enum Damage {
    /// Flip bit `bit` of the byte at `at`.
    Flip { at: u32, bit: u8 },
    /// Overwrite bytes from `at` on.
    Overwrite { at: u32, bytes: Vec<u8> },
    /// Zero `len` bytes from `at` on (a lost sector).
    Zero { at: u32, len: u16 },
    /// Cut the file at `at`.
    Truncate { at: u32 },
    /// Append `len` bytes of `fill`.
    Extend { len: u16, fill: u8 },
}

fn pos(at: u32, len: usize) -> usize {
    ((at as u64 * len as u64) >> 32) as usize
}

pub fn apply(image: &mut Vec<u8>, damage: &[Damage]) {
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

/// Open the damaged `image` and read everything in it; any outcome but a panic is fine. Returns
/// whether the store opened.
pub fn exercise(image: Vec<u8>) -> bool {
    let sim = SimDisk::new();
    sim.put_file(FILE, image);
    let Ok(store) = Store::open(&Disk::sim(sim), FILE, StoreConfig::default()) else {
        return false;
    };
    let _ = store.verify();
    let _ = store.changes_since(Lsn(0), 1000);
    // Like the GTM would, count prepared transactions as running (a reader otherwise waits for
    // them to be committed or rolled back).
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
            // A damaged commit log may leave a row's creator looking prepared or in progress:
            // do not wait for it forever.
            t.set_lock_timeout(Some(Duration::from_millis(5)));
            let scan = match rel.kind {
                RelKind::Table => t.scan(rel.id, false).await,
                RelKind::Index { .. } => t.index_scan(rel.id, KeyRange::all(), true).await,
            };
            if let Ok(mut scan) = scan {
                // Bounded: a damaged file cannot make this loop forever.
                for _ in 0..10_000 {
                    match t.next(&mut scan, 64).await {
                        Ok(rows) if !rows.is_empty() => {}
                        _ => break,
                    }
                }
            }
            // A write too: allocating a tid reads the heap's last key.
            if rel.kind == RelKind::Table {
                let _ = t.insert(rel.id, b"after damage", &[]).await;
            }
            t.rollback();
        }
    });
    true
}
