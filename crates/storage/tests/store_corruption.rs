//! Arbitrary damage to a store file never panics: opening it, verifying it and reading every
//! relation either succeeds or fails with an error (XX001, 58030, ...). The same check as the
//! cargo-fuzz target `fuzz/fuzz_targets/store_open.rs`, with a few hundred random corruptions,
//! so that CI (which does not run cargo-fuzz) exercises it.
#![cfg(not(madsim))]

use pgxc_storage::mvcc::fixtures::{apply, exercise, sample_image as base_image, Damage, FILE};
use pgxc_storage::mvcc::{Store, StoreConfig};
use pgxc_storage::{Disk, SimDisk};
use proptest::prelude::*;

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<u32>(), any::<u8>()).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        3 => (any::<u32>(), proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
        2 => (any::<u32>(), 1..4096u16).prop_map(|(at, len)| Damage::Zero { at, len }),
        1 => any::<u32>().prop_map(|at| Damage::Truncate { at }),
        1 => (1..8192u16, any::<u8>()).prop_map(|(len, fill)| Damage::Extend { len, fill }),
    ]
}

#[test]
fn undamaged_image_opens_and_verifies() {
    assert!(exercise(base_image().to_vec()));
    let sim = SimDisk::new();
    sim.put_file(FILE, base_image().to_vec());
    let store = Store::open(&Disk::sim(sim), FILE, StoreConfig::default()).expect("open");
    assert!(store.verify().expect("verify") > 0);
    assert_eq!(store.relations().len(), 4);
    assert_eq!(store.prepared_xacts().len(), 1);
}

#[test]
fn header_damage_is_an_error_not_a_panic() {
    // The first page holds redb's header: wiping it must give an error (or a fresh store, never
    // a panic).
    let mut image = base_image().to_vec();
    let n = image.len().min(4096);
    image[..n].fill(0xff);
    exercise(image);
    exercise(Vec::new());
    exercise(vec![0; 100]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, max_shrink_iters: 500, ..ProptestConfig::default() })]

    #[test]
    fn damaged_store_never_panics(damage in proptest::collection::vec(damage(), 1..6)) {
        let mut image = base_image().to_vec();
        apply(&mut image, &damage);
        exercise(image);
    }
}
