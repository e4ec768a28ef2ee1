//! Crash tests on the simulated disk: durability of acknowledged writes, atomicity of batches,
//! fencing of old handles, torn writes.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

use pgxc_storage::{Disk, Durability, Kv, SimDisk, WriteBatch};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const TABLES: [&str; 2] = ["t0", "t1"];

/// The whole visible state: table -> key -> value (absent tables and empty tables alike omitted).
type State = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn read_state(kv: &Kv) -> State {
    let mut state = State::new();
    for t in TABLES {
        let entries = kv
            .range(t, Unbounded, Unbounded, false, None)
            .expect("range");
        if !entries.is_empty() {
            state.insert(t.to_string(), entries.into_iter().collect());
        }
    }
    state
}

#[derive(Clone, Debug)]
enum MOp {
    Put {
        t: usize,
        key: u8,
        fill: u8,
        len: usize,
    },
    Delete {
        t: usize,
        key: u8,
    },
    DeleteRange {
        t: usize,
        lo: u8,
        hi: u8,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Batch {
        ops: Vec<MOp>,
        immediate: bool,
        fail_after: Option<u64>,
    },
    Crash {
        seed: u64,
    },
    CleanReopen,
}

fn apply(state: &mut State, ops: &[MOp]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for op in ops {
        match *op {
            MOp::Put { t, key, fill, len } => {
                let value = vec![fill; len];
                batch.put(TABLES[t], &[key], &value);
                state
                    .entry(TABLES[t].to_string())
                    .or_default()
                    .insert(vec![key], value);
            }
            MOp::Delete { t, key } => {
                batch.delete(TABLES[t], &[key]);
                if let Some(m) = state.get_mut(TABLES[t]) {
                    m.remove(&vec![key]);
                }
            }
            MOp::DeleteRange { t, lo, hi } => {
                batch.delete_range(TABLES[t], Included(&[lo][..]), Excluded(&[hi][..]));
                if let Some(m) = state.get_mut(TABLES[t]) {
                    m.retain(|k, _| !(k.as_slice() >= &[lo][..] && k.as_slice() < &[hi][..]));
                }
            }
        }
    }
    state.retain(|_, m| !m.is_empty());
    batch
}

fn mop() -> impl Strategy<Value = MOp> {
    prop_oneof![
        6 => (0..2usize, 0..24u8, any::<u8>(), prop_oneof![0..64usize, 0..6000usize])
            .prop_map(|(t, key, fill, len)| MOp::Put { t, key, fill, len }),
        2 => (0..2usize, 0..24u8).prop_map(|(t, key)| MOp::Delete { t, key }),
        1 => (0..2usize, 0..24u8, 0..24u8).prop_map(|(t, lo, hi)| MOp::DeleteRange { t, lo, hi }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            prop::collection::vec(mop(), 0..12),
            any::<bool>(),
            prop_oneof![4 => Just(None), 1 => (0..40u64).prop_map(Some)],
        )
            .prop_map(|(ops, immediate, fail_after)| Step::Batch { ops, immediate, fail_after }),
        2 => any::<u64>().prop_map(|seed| Step::Crash { seed }),
        1 => Just(Step::CleanReopen),
    ]
}

/// Crash the disk, check the old handle is fenced, reopen, and check the recovered state is one
/// of `candidates` (`candidates[0]` is the last acknowledged-Immediate state; later entries are
/// states after later batches, in order). Returns the new handle and the recovered state.
fn crash_and_reopen(disk: &SimDisk, kv: Kv, seed: u64, candidates: &[State]) -> (Kv, State) {
    let mut rng = StdRng::seed_from_u64(seed);
    disk.crash(&mut rng);
    disk.fail_after_writes(None);
    let image = disk.durable_image("db");
    // The killed process's handle can neither write nor, when dropped, change the disk.
    let mut b = WriteBatch::new();
    b.put("t0", b"zombie", b"write");
    assert!(
        kv.write(b, Durability::Immediate).is_err(),
        "fenced handle wrote"
    );
    drop(kv);
    assert_eq!(
        disk.durable_image("db"),
        image,
        "fenced handle changed the disk"
    );
    assert_eq!(
        disk.current_image("db"),
        image,
        "fenced handle changed the disk"
    );
    let kv = Disk::sim(disk.clone())
        .open_kv("db")
        .expect("reopen after crash is clean");
    let got = read_state(&kv);
    assert!(
        candidates.contains(&got),
        "recovered state is not the state after a whole batch at or after the last \
         immediate one: got {got:?}, candidates {}",
        candidates.len()
    );
    (kv, got)
}

fn run(steps: Vec<Step>) {
    let disk = SimDisk::new();
    let mut kv = Disk::sim(disk.clone()).open_kv("db").expect("open");
    // candidates[0]: the state every crash must at least preserve; then later batches.
    let mut candidates: Vec<State> = vec![State::new()];
    let mut live = State::new();
    for step in steps {
        match step {
            Step::Batch {
                ops,
                immediate,
                fail_after,
            } => {
                let mut next = live.clone();
                let batch = apply(&mut next, &ops);
                disk.fail_after_writes(fail_after);
                let durability = if immediate {
                    Durability::Immediate
                } else {
                    Durability::Deferred
                };
                match kv.write(batch, durability) {
                    Ok(()) => {
                        disk.fail_after_writes(None);
                        live = next;
                        assert_eq!(read_state(&kv), live, "reads see the batch");
                        if immediate {
                            candidates = vec![live.clone()];
                        } else {
                            candidates.push(live.clone());
                        }
                    }
                    Err(err) => {
                        assert!(err.is_io(), "{err}");
                        assert_eq!(read_state(&kv), live, "a failed batch is invisible");
                        // The disk died mid-commit: the batch may or may not have landed.
                        candidates.push(next);
                        let seed = candidates.len() as u64;
                        let (k, got) = crash_and_reopen(&disk, kv, seed, &candidates);
                        kv = k;
                        live = got.clone();
                        candidates = vec![got];
                    }
                }
            }
            Step::Crash { seed } => {
                let (k, got) = crash_and_reopen(&disk, kv, seed, &candidates);
                kv = k;
                live = got.clone();
                candidates = vec![got];
            }
            Step::CleanReopen => {
                drop(kv);
                kv = Disk::sim(disk.clone()).open_kv("db").expect("clean reopen");
                assert_eq!(read_state(&kv), live, "a clean close loses nothing");
                candidates = vec![live.clone()];
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Every acknowledged Immediate batch survives a crash; the reopened database is clean and
    /// equals the model after some whole batch at or after the last Immediate one.
    #[test]
    fn crashes_preserve_acknowledged_batches_and_atomicity(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        run(steps);
    }
}

/// Many crashes in the middle of commits (power fails after a random number of disk operations)
/// tear writes, and every reopen is clean and consistent.
#[test]
fn torn_writes_happen_and_are_survived() {
    let disk = SimDisk::new();
    let mut kv = Disk::sim(disk.clone()).open_kv("db").expect("open");
    let mut rng = StdRng::seed_from_u64(42);
    let mut torn = 0;
    let mut kept_partial = 0;
    let mut acked: u64 = 0; // the highest counter acknowledged Immediate
    for round in 0..150u64 {
        // A deferred batch and an immediate batch with big values, the second maybe cut short.
        let mut b = WriteBatch::new();
        b.put("t0", b"deferred", &vec![round as u8; 3000]);
        kv.write(b, Durability::Deferred).expect("deferred write");
        let fail = if round % 3 == 0 {
            None
        } else {
            Some(round % 17)
        };
        disk.fail_after_writes(fail);
        let mut b = WriteBatch::new();
        b.put("t0", b"counter", &(round + 1).to_be_bytes());
        b.put(
            "t0",
            format!("big{}", round % 5).as_bytes(),
            &vec![round as u8; 9000],
        );
        if kv.write(b, Durability::Immediate).is_ok() {
            acked = round + 1;
        }
        let report = disk.crash(&mut rng);
        disk.fail_after_writes(None);
        torn += report.torn_writes;
        if report.kept_ops > 0 && report.dropped_ops > 0 {
            kept_partial += 1;
        }
        drop(kv);
        kv = Disk::sim(disk.clone()).open_kv("db").expect("clean reopen");
        let counter = kv
            .get("t0", b"counter")
            .expect("get")
            .map(|v| u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes")))
            .unwrap_or(0);
        assert!(
            counter >= acked,
            "round {round}: acknowledged {acked}, found {counter}"
        );
        assert!(counter <= round + 1);
        acked = counter;
    }
    assert!(torn >= 10, "only {torn} torn writes in 150 crashes");
    assert!(kept_partial >= 10, "only {kept_partial} partial crashes");
    assert!(disk.stats().torn_writes == torn);
}

/// A handle opened before a crash cannot change the disk after it, even with pending redb state.
#[test]
fn fenced_handle_never_changes_the_image() {
    let disk = SimDisk::new();
    let old = Disk::sim(disk.clone()).open_kv("db").expect("open");
    let mut b = WriteBatch::new();
    b.put("t0", b"a", b"1");
    old.write(b, Durability::Immediate).expect("write");
    let mut b = WriteBatch::new();
    b.put("t0", b"b", b"2");
    old.write(b, Durability::Deferred).expect("write");
    disk.crash(&mut StdRng::seed_from_u64(3));

    // The new incarnation opens the file while the old handle still exists.
    let new = Disk::sim(disk.clone())
        .open_kv("db")
        .expect("reopen while zombie alive");
    assert_eq!(new.get("t0", b"a").expect("get"), Some(b"1".to_vec()));
    let new_image = disk.current_image("db").expect("file");

    let mut b = WriteBatch::new();
    b.put("t0", b"zombie", b"x");
    let err = old.write(b, Durability::Immediate).expect_err("fenced");
    assert!(err.is_io(), "{err}");
    drop(old); // redb's destructor tries to write a clean shutdown
    assert_eq!(disk.current_image("db").expect("file"), new_image);
    assert!(disk.stats().fenced_calls > 0);
    assert_eq!(new.get("t0", b"zombie").expect("get"), None);

    // And a crash now falls back to what the new handle synced, never the zombie's writes.
    drop(new);
    disk.crash(&mut StdRng::seed_from_u64(4));
    let kv = Disk::sim(disk.clone()).open_kv("db").expect("reopen");
    assert_eq!(kv.get("t0", b"zombie").expect("get"), None);
    assert_eq!(kv.get("t0", b"a").expect("get"), Some(b"1".to_vec()));
}
