//! Arbitrary damage to a datanode store file never panics: the sample store image
//! (`pgxc_storage::mvcc::fixtures::sample_image`) is damaged as the fuzzer chooses (bit flips,
//! overwrites, zeroed runs, truncation, extension), then `Store::open`, `verify`, the change log
//! and a scan of every relation must each return `Ok` or `Err`
//! (`pgxc_storage::mvcc::fixtures::exercise`). The CI-run twin of this target is the proptest
//! `crates/storage/tests/store_corruption.rs`.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use pgxc_storage::mvcc::fixtures::{apply, exercise, sample_image, Damage};

/// The fuzzer's view of [`Damage`]; offsets are fractions (over `2^32`) of the image length.
#[derive(Arbitrary, Debug)]
enum FuzzDamage {
    Flip { at: u32, bit: u8 },
    Overwrite { at: u32, bytes: Vec<u8> },
    Zero { at: u32, len: u16 },
    Truncate { at: u32 },
    Extend { len: u16, fill: u8 },
}

impl From<FuzzDamage> for Damage {
    fn from(d: FuzzDamage) -> Damage {
        match d {
            FuzzDamage::Flip { at, bit } => Damage::Flip { at, bit },
            FuzzDamage::Overwrite { at, bytes } => Damage::Overwrite { at, bytes },
            FuzzDamage::Zero { at, len } => Damage::Zero { at, len },
            FuzzDamage::Truncate { at } => Damage::Truncate { at },
            FuzzDamage::Extend { len, fill } => Damage::Extend { len, fill },
        }
    }
}

fuzz_target!(|damage: Vec<FuzzDamage>| {
    let mut image = sample_image().to_vec();
    let damage: Vec<Damage> = damage.into_iter().map(Damage::from).collect();
    apply(&mut image, &damage);
    exercise(image);
});
