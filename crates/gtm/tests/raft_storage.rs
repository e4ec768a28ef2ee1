//! openraft's storage conformance suite against the GTM log store and state machine, each build on a fresh
//! simulated disk.

// Real sockets and real tokio runtimes: normal builds only (see raft_sim.rs for the madsim run).
#![cfg(not(madsim))]

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use pgxc_gtm::raft::{LogStore, StateMachine, TypeConfig, KV_NAME};
use pgxc_storage::{Disk, SimDisk};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for Builder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<u64>> {
        let kv = Disk::sim(SimDisk::new()).open_kv(KV_NAME).expect("open kv");
        let sm = StateMachine::open(kv.clone())?;
        Ok(((), LogStore::new(kv), sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("storage suite");
}
