//! A datanode store poisoned by a failed durable write answers 58030 to COMMIT/ROLLBACK PREPARED
//! of a gid it does not hold in memory, instead of "not found": the gid's PREPARE may have
//! reached the disk even though the store's memory dropped it (issue 7, seed 83), and a "not
//! found" would let the coordinator forget its decision.

use pgxc_common::SqlState;
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};

#[test]
fn finish_prepared_on_a_poisoned_store_is_an_io_error() {
    let disk = SimDisk::new();
    let engine = Engine::open(&Disk::sim(disk.clone()), "poison.redb").expect("engine");
    let mut s = engine.session();
    s.execute("CREATE TABLE t (x int)").expect("create");
    // Healthy store: an unknown gid is simply not found.
    assert!(!engine.finish_prepared("nosuch", true).expect("healthy"));
    // Every later write fails: the next commit poisons the store.
    disk.fail_after_writes(Some(0));
    let e = s
        .execute("INSERT INTO t VALUES (1)")
        .expect_err("write on a failing disk");
    assert_eq!(e.code, SqlState::IoError, "{e:?}");
    for commit in [true, false] {
        let e = engine
            .finish_prepared("nosuch", commit)
            .expect_err("poisoned store must not answer not-found");
        assert_eq!(e.code, SqlState::IoError, "{e:?}");
    }
}
