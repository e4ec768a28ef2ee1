//! Under `--cfg madsim`: the simulated disk and redb run inside the madsim runtime (no threads,
//! no wall clock), crash after crash, deterministically.
#![cfg(madsim)]

use pgxc_storage::{Disk, Durability, SimDisk, WriteBatch};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[madsim::test]
async fn crash_loop_inside_the_simulator() {
    let disk = SimDisk::new();
    let mut rng = StdRng::seed_from_u64(5);
    let mut acked = 0u64;
    for round in 0..30u64 {
        let kv = Disk::sim(disk.clone()).open_kv("raft").expect("open");
        let got = kv
            .get("log", b"last")
            .expect("get")
            .map(|v| u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes")))
            .unwrap_or(0);
        assert!(
            got >= acked,
            "round {round}: acknowledged {acked}, found {got}"
        );
        acked = got;
        disk.fail_after_writes(Some(round % 7));
        let mut b = WriteBatch::new();
        b.put("log", b"last", &(round + 1).to_be_bytes());
        b.put("log", &round.to_be_bytes(), &vec![round as u8; 5000]);
        if kv.write(b, Durability::Immediate).is_ok() {
            acked = round + 1;
        }
        madsim::time::sleep(std::time::Duration::from_millis(1)).await;
        disk.crash(&mut rng);
        disk.fail_after_writes(None);
    }
}
