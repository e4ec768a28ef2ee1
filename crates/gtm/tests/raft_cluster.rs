//! In-process GTM Raft groups over real TCP on 127.0.0.1 (plain tokio): election, replication, leader failure,
//! membership changes, leadership transfer, promote, and restart from storage.

// Real sockets and real tokio runtimes: normal builds only (see raft_sim.rs for the madsim run).
#![cfg(not(madsim))]

use openraft::BasicNode;
use pgxc_common::frame::read_frame;
use pgxc_gtm::core::{Command, CommandResult, DurableState};
use pgxc_gtm::proto::Hello;
use pgxc_gtm::raft::{serve_peer, start_raft, NodeId, RaftConfig, RaftNode, TypeConfig};
use pgxc_storage::{Disk, SimDisk};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

fn config() -> RaftConfig {
    RaftConfig {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(250),
        election_timeout_max: Duration::from_millis(500),
        snapshot_every: 20,
        keep_after_snapshot: 5,
        connect_timeout: Duration::from_millis(200),
        install_snapshot_timeout: Duration::from_millis(1000),
    }
}

/// One node "process": its Raft node and accept loop (which plays the GTM server's role).
struct Proc {
    id: NodeId,
    addr: String,
    node: Option<RaftNode>,
    raft_slot: Arc<Mutex<Option<openraft::Raft<TypeConfig>>>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

async fn accept_loop(listener: TcpListener, slot: Arc<Mutex<Option<openraft::Raft<TypeConfig>>>>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let slot = slot.clone();
        conns.spawn(async move {
            if let Ok(Hello::Peer { .. }) = read_frame::<_, Hello>(&mut s).await {
                let raft = slot.lock().unwrap().clone();
                if let Some(raft) = raft {
                    serve_peer(s, raft).await;
                }
            }
        });
    }
    // `conns` is dropped (aborting every connection task) when this task is aborted.
}

impl Proc {
    async fn start(id: NodeId, disk: SimDisk, port: u16) -> Proc {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let node = start_raft(id, &Disk::sim(disk.clone()), config())
            .await
            .unwrap();
        let slot = Arc::new(Mutex::new(Some(node.raft.clone())));
        let server = tokio::spawn(accept_loop(listener, slot.clone()));
        Proc {
            id,
            addr,
            node: Some(node),
            raft_slot: slot,
            server: Some(server),
        }
    }

    fn node(&self) -> &RaftNode {
        self.node.as_ref().unwrap()
    }

    /// Kill the process: stop Raft, close the listener and every connection, release the database.
    async fn kill(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
        *self.raft_slot.lock().unwrap() = None;
        if let Some(n) = self.node.take() {
            n.shutdown().await.unwrap();
            drop(n);
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

async fn wait_for<F: FnMut() -> bool>(what: &str, within: Duration, mut f: F) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until exactly one live node holds a valid lease; return its index in `procs`.
async fn wait_leader(procs: &[Proc]) -> usize {
    let mut found = None;
    wait_for(
        "a leader with a valid lease",
        Duration::from_secs(10),
        || {
            let v: Vec<usize> = (0..procs.len())
                .filter(|&i| procs[i].node.as_ref().is_some_and(|n| n.lease_valid()))
                .collect();
            found = v.first().copied();
            v.len() == 1
        },
    )
    .await;
    found.unwrap()
}

async fn open(node: &RaftNode) -> CommandResult {
    node.raft
        .client_write(Command::OpenSession)
        .await
        .expect("client_write")
        .data
}

fn sessions(state: &Arc<Mutex<DurableState>>) -> u64 {
    state.lock().unwrap().next_session
}

#[tokio::test]
async fn three_nodes_failover_membership_transfer() {
    let t0 = Instant::now();
    let mut procs = Vec::new();
    for id in 1..=3 {
        procs.push(Proc::start(id, SimDisk::new(), 0).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = procs
        .iter()
        .map(|p| {
            (
                p.id,
                BasicNode {
                    addr: p.addr.clone(),
                },
            )
        })
        .collect();
    assert!(!procs[0].node().is_initialized().await.unwrap());
    procs[0].node().initialize(members.clone()).await.unwrap();
    // Idempotent.
    procs[0].node().initialize(members.clone()).await.unwrap();
    assert!(procs[0].node().is_initialized().await.unwrap());

    let l = wait_leader(&procs).await;
    let leader_id = procs[l].id;
    for p in &procs {
        wait_for("leader known", Duration::from_secs(5), || {
            p.node().leader().map(|x| x.0) == Some(leader_id)
        })
        .await;
        assert_eq!(p.node().leader().unwrap().1, procs[l].addr);
    }
    let mut total = 0;
    for _ in 1..=30 {
        total += 1;
        assert_eq!(open(procs[l].node()).await, CommandResult::Session(total));
    }
    // A follower refuses writes.
    let f = (l + 1) % 3;
    assert!(procs[f]
        .node()
        .raft
        .client_write(Command::OpenSession)
        .await
        .is_err());
    // The lease holds across heartbeats while idle.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(procs[l].node().lease_valid());
        assert!(!procs[f].node().lease_valid());
    }
    // Followers applied everything (and subscribers hear of new commands).
    let mut sub = procs[f].node().subscribe_applied();
    total += 1;
    assert_eq!(open(procs[l].node()).await, CommandResult::Session(total));
    let applied = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(applied.command, Command::OpenSession);
    assert_eq!(applied.result, CommandResult::Session(total));
    for p in &procs {
        let st = p.node().state.clone();
        wait_for("followers applied", Duration::from_secs(5), || {
            sessions(&st) == total
        })
        .await;
    }
    // Log compaction happened (snapshot every 20 entries).
    assert!(procs[l].node().metrics().snapshot.is_some());

    // Kill the leader: another one takes over with every acknowledged write.
    procs[l].kill().await;
    let l2 = wait_leader(&procs).await;
    assert_ne!(l2, l);
    total += 1;
    assert_eq!(open(procs[l2].node()).await, CommandResult::Session(total));

    // Add a fresh member (catches up through a snapshot: the log was compacted), then remove the dead one.
    procs.push(Proc::start(4, SimDisk::new(), 0).await);
    let addr4 = procs[3].addr.clone();
    procs[l2].node().add_member(4, addr4).await.unwrap();
    let st4 = procs[3].node().state.clone();
    wait_for("new member caught up", Duration::from_secs(5), || {
        sessions(&st4) == total
    })
    .await;
    procs[l2].node().remove_member(leader_id).await.unwrap();
    let voters: Vec<NodeId> = procs[l2]
        .node()
        .members()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(voters.len(), 3);
    assert!(!voters.contains(&leader_id) && voters.contains(&4));
    total += 1;
    assert_eq!(open(procs[l2].node()).await, CommandResult::Session(total));

    // Transfer leadership to node 4.
    assert!(
        procs[l2].node().transfer_leader(4).await.unwrap(),
        "transfer to 4"
    );
    let l3 = wait_leader(&procs).await;
    assert_eq!(procs[l3].id, 4);
    total += 1;
    assert_eq!(open(procs[l3].node()).await, CommandResult::Session(total));

    for p in &mut procs {
        p.kill().await;
    }
    eprintln!(
        "three_nodes_failover_membership_transfer: {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn promote_survivor_of_two_node_group() {
    let t0 = Instant::now();
    let mut procs = vec![
        Proc::start(1, SimDisk::new(), 0).await,
        Proc::start(2, SimDisk::new(), 0).await,
    ];
    let members: BTreeMap<NodeId, BasicNode> = procs
        .iter()
        .map(|p| {
            (
                p.id,
                BasicNode {
                    addr: p.addr.clone(),
                },
            )
        })
        .collect();
    procs[0].node().initialize(members).await.unwrap();
    let l = wait_leader(&procs).await;
    let mut total = 0;
    for _ in 1..=25 {
        total += 1;
        open(procs[l].node()).await;
    }
    let other = 1 - l;
    let st = procs[other].node().state.clone();
    wait_for("standby applied", Duration::from_secs(5), || {
        sessions(&st) == total
    })
    .await;

    // The leader dies: the standby alone cannot elect itself.
    procs[l].kill().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!procs[other].node().lease_valid());

    // Promote it.
    let mut sub = procs[other].node().subscribe_applied();
    procs[other].node.as_mut().unwrap().promote().await.unwrap();
    *procs[other].raft_slot.lock().unwrap() = Some(procs[other].node().raft.clone());
    let l2 = wait_leader(&procs).await;
    assert_eq!(l2, other);
    assert_eq!(
        procs[other]
            .node()
            .members()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        vec![procs[other].id]
    );
    total += 1;
    assert_eq!(
        open(procs[other].node()).await,
        CommandResult::Session(total)
    );
    assert_eq!(sessions(&procs[other].node().state), total);
    // The subscription survived the restart inside promote.
    let mut last = None;
    while let Ok(a) = sub.try_recv() {
        last = Some(a);
    }
    assert_eq!(last.unwrap().command, Command::OpenSession);
    // Promote is idempotent on a one-member group.
    procs[other].node.as_mut().unwrap().promote().await.unwrap();
    *procs[other].raft_slot.lock().unwrap() = Some(procs[other].node().raft.clone());
    wait_leader(&procs).await;
    assert_eq!(sessions(&procs[other].node().state), total);
    for p in &mut procs {
        p.kill().await;
    }
    eprintln!("promote_survivor_of_two_node_group: {:?}", t0.elapsed());
}

#[tokio::test]
async fn restart_restores_snapshot_and_log() {
    let t0 = Instant::now();
    let disk = SimDisk::new();
    let mut p = Proc::start(1, disk.clone(), 0).await;
    let members = BTreeMap::from([(
        1,
        BasicNode {
            addr: p.addr.clone(),
        },
    )]);
    p.node().initialize(members.clone()).await.unwrap();
    wait_leader(std::slice::from_ref(&p)).await;
    let mut total = 0;
    for _ in 1..=47 {
        total += 1;
        open(p.node()).await;
    }
    let snap = p.node().metrics().snapshot.expect("a snapshot was built");
    assert!(
        snap.index < p.node().metrics().last_applied.unwrap().index,
        "some log after the snapshot"
    );
    let port = p.port();
    p.kill().await;

    // Restart from the same disk: the state comes back from snapshot + log, before any new write.
    let p = Proc::start(1, disk, port).await;
    assert!(p.node().is_initialized().await.unwrap());
    let st = p.node().state.clone();
    wait_for("state restored", Duration::from_secs(5), || {
        sessions(&st) == total
    })
    .await;
    assert_eq!(st.lock().unwrap().sessions.len(), 47);
    // Initialize again is a no-op; the node leads again.
    p.node().initialize(members).await.unwrap();
    wait_leader(std::slice::from_ref(&p)).await;
    total += 1;
    assert_eq!(open(p.node()).await, CommandResult::Session(total));
    eprintln!("restart_restores_snapshot_and_log: {:?}", t0.elapsed());
}
