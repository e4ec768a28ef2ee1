//! The GTM Raft group inside madsim (only built with `--cfg madsim`): three simulated hosts over simulated TCP,
//! election, replication, leader kill and re-election, deterministic for a seed.
//!
//! Run: `cargo test -p pgxc-gtm --test raft_sim --target-dir target/sim --config "build.rustflags=['--cfg','madsim']"`.
#![cfg(madsim)]

use madsim::runtime::Handle;
use openraft::BasicNode;
use pgxc_common::frame::read_frame;
use pgxc_gtm::core::{Command, DurableState};
use pgxc_gtm::proto::Hello;
use pgxc_gtm::raft::{serve_peer, start_raft, NodeId, RaftConfig, RaftNode};
use pgxc_storage::{Disk, SimDisk};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Slot = Arc<Mutex<Option<Arc<RaftNode>>>>;

async fn wait_leader(slots: &[Slot], exclude: Option<usize>) -> usize {
    for _ in 0..500 {
        let live: Vec<usize> = (0..slots.len())
            .filter(|&i| {
                Some(i) != exclude
                    && slots[i]
                        .lock()
                        .unwrap()
                        .as_ref()
                        .is_some_and(|n| n.lease_valid())
            })
            .collect();
        if live.len() == 1 {
            return live[0];
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader");
}

fn sessions(n: &RaftNode) -> u64 {
    let s: &Mutex<DurableState> = &n.state;
    s.lock().unwrap().next_session
}

#[madsim::test]
async fn sim_three_nodes_failover() {
    let handle = Handle::current();
    let mut slots: Vec<Slot> = Vec::new();
    let mut hosts = Vec::new();
    let members: BTreeMap<NodeId, BasicNode> = (1..=3u64)
        .map(|id| {
            (
                id,
                BasicNode {
                    addr: format!("10.0.0.{id}:7000"),
                },
            )
        })
        .collect();
    for id in 1..=3u64 {
        let slot: Slot = Arc::new(Mutex::new(None));
        let disk = SimDisk::new();
        let s = slot.clone();
        let host = handle
            .create_node()
            .name(format!("gtm{id}"))
            .ip(format!("10.0.0.{id}").parse().unwrap())
            .init(move || {
                let s = s.clone();
                let disk = disk.clone();
                async move {
                    let listener = tokio::net::TcpListener::bind("0.0.0.0:7000").await.unwrap();
                    let node = Arc::new(
                        start_raft(id, &Disk::sim(disk), RaftConfig::default())
                            .await
                            .unwrap(),
                    );
                    *s.lock().unwrap() = Some(node.clone());
                    loop {
                        let (mut stream, _) = listener.accept().await.unwrap();
                        let raft = node.raft.clone();
                        tokio::spawn(async move {
                            if let Ok(Hello::Peer { .. }) =
                                read_frame::<_, Hello>(&mut stream).await
                            {
                                serve_peer(stream, raft).await;
                            }
                        });
                    }
                }
            })
            .build();
        hosts.push(host);
        slots.push(slot);
    }
    madsim::time::sleep(Duration::from_millis(100)).await;
    let n1 = slots[0].lock().unwrap().clone().unwrap();
    n1.initialize(members).await.unwrap();
    let l = wait_leader(&slots, None).await;
    let leader = slots[l].lock().unwrap().clone().unwrap();
    let mut total = 0;
    for _ in 1..=50 {
        total += 1;
        leader
            .raft
            .client_write(Command::OpenSession)
            .await
            .unwrap();
    }
    handle.kill(hosts[l].id());
    *slots[l].lock().unwrap() = None;
    let l2 = wait_leader(&slots, Some(l)).await;
    let leader2 = slots[l2].lock().unwrap().clone().unwrap();
    total += 1;
    leader2
        .raft
        .client_write(Command::OpenSession)
        .await
        .unwrap();
    assert_eq!(sessions(&leader2), total);
}
