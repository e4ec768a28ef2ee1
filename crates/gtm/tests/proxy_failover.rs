//! A 3-node Raft GTM behind a GTM proxy: clients keep working across a leader shutdown; no GXID is issued
//! twice; snapshots after the failover still list the transactions that were open before it.

use openraft::BasicNode;
use pgxc_common::frame::{read_frame, write_frame};
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::proto::{ClientBatch, Hello, Request, Response, SeqOptions, ServerBatch};
use pgxc_gtm::proxy::GtmProxy;
use pgxc_gtm::raft::{start_raft, RaftConfig};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_storage::{Disk, SimDisk};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

async fn cluster() -> (Vec<Option<GtmServer>>, Vec<String>) {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let members: BTreeMap<u64, BasicNode> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u64 + 1, BasicNode { addr: a.clone() }))
        .collect();
    let mut servers = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let node = start_raft(id, &Disk::sim(SimDisk::new()), RaftConfig::default())
            .await
            .unwrap();
        if id == 1 {
            node.initialize(members.clone()).await.unwrap();
        }
        let srv =
            GtmServer::start_with_listener(l, ServerConfig::new(id, ""), Replication::Raft(node))
                .unwrap();
        servers.push(Some(srv));
    }
    (servers, addrs)
}

/// Wait until some live server reports itself leader and not recovering; returns its index.
async fn wait_leader(servers: &[Option<GtmServer>]) -> usize {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if let Some(s) = s {
                let st = s.status();
                if st.role == "leader" && st.leader.as_ref().map(|l| l.0) == Some(st.id) {
                    return i;
                }
            }
        }
        assert!(Instant::now() < until, "no leader elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_through_proxy_survive_leader_shutdown() {
    let (mut servers, addrs) = cluster().await;
    let leader = wait_leader(&servers).await;

    // A follower answers Status itself and redirects everything else to the leader (once it heard of it).
    let follower = (leader + 1) % 3;
    let until = Instant::now() + Duration::from_secs(5);
    while servers[follower]
        .as_ref()
        .unwrap()
        .status()
        .leader
        .map(|l| l.0)
        != Some(leader as u64 + 1)
    {
        assert!(Instant::now() < until, "follower never learnt the leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut raw = TcpStream::connect(addrs[follower].as_str()).await.unwrap();
    write_frame(&mut raw, &Hello::Client).await.unwrap();
    let batch = ClientBatch {
        requests: vec![(1, Request::Begin), (2, Request::Status)],
    };
    write_frame(&mut raw, &batch).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(
            read_frame::<_, ServerBatch>(&mut raw)
                .await
                .unwrap()
                .responses,
        );
    }
    got.sort_by_key(|(id, _)| *id);
    let want_leader = Some((leader as u64 + 1, addrs[leader].clone()));
    assert_eq!(
        got[0],
        (
            1,
            Response::NotLeader {
                leader: want_leader.clone()
            }
        )
    );
    let (2, Response::Status(st)) = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!(
        (st.id, st.role.as_str(), &st.leader),
        (follower as u64 + 1, "follower", &want_leader)
    );
    assert_eq!(st.members.len(), 3);
    drop(raw);

    let proxy = GtmProxy::start("127.0.0.1:0", addrs.clone()).await.unwrap();
    let paddr = vec![proxy.local_addr().to_string()];
    let c1 = GtmClient::connect(paddr.clone(), ClientOptions::default())
        .await
        .unwrap();
    let c2 = GtmClient::connect(paddr.clone(), ClientOptions::default())
        .await
        .unwrap();
    // A direct client as well (re-registers by itself).
    let d = GtmClient::connect(addrs.clone(), ClientOptions::default())
        .await
        .unwrap();

    let mut issued = BTreeSet::new();
    let g1 = c1.begin().await.unwrap();
    let (g2, s2) = c2.begin_snapshot().await.unwrap();
    let g3 = d.begin().await.unwrap();
    assert!(s2.is_running(g1) && s2.is_running(g2));
    for g in [g1, g2, g3] {
        assert!(issued.insert(g));
    }
    for _ in 0..20 {
        let g = c1.begin().await.unwrap();
        assert!(issued.insert(g), "gxid {g} issued twice");
        c1.commit(g).await.unwrap();
    }
    c1.create_sequence(
        "seq",
        SeqOptions {
            cache: Some(5),
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let mut seq_values = BTreeSet::new();
    for _ in 0..7 {
        assert!(seq_values.insert(c2.nextval("seq").await.unwrap()));
    }
    let before_max = *issued.iter().max().unwrap();

    // Kill the leader.
    servers[leader].take().unwrap().shutdown().await;
    let t0 = Instant::now();

    // Snapshots after the failover still list the transactions open before it.
    let s = c2.snapshot(Some(g2)).await.unwrap();
    let failover = t0.elapsed();
    for g in [g1, g2, g3] {
        assert!(s.is_running(g), "snapshot {s} after failover lost {g}");
    }
    assert!(s.xmax > before_max);
    let new_leader = wait_leader(&servers).await;
    assert_ne!(new_leader, leader);

    // New GXIDs are never reissued.
    for c in [&c1, &c2, &d] {
        for _ in 0..10 {
            let g = c.begin().await.unwrap();
            assert!(g > before_max);
            assert!(issued.insert(g), "gxid {g} issued twice");
            c.abort(g).await.unwrap();
        }
    }
    // The transactions that were open commit normally (their sessions re-registered).
    c1.commit(g1).await.unwrap();
    c2.commit(g2).await.unwrap();
    d.commit(g3).await.unwrap();
    let s = d.snapshot(None).await.unwrap();
    for g in [g1, g2, g3] {
        assert!(!s.is_running(g), "{s}");
    }
    assert!(s.xip.is_empty(), "{s}");
    // Sequence values are never reissued either.
    for _ in 0..7 {
        let v = c1.nextval("seq").await.unwrap();
        assert!(seq_values.insert(v), "sequence value {v} issued twice");
    }
    let st = d.status().await.unwrap();
    assert_eq!(st.role, "leader");
    assert!(!st.recovering);
    eprintln!("failover took {failover:?}");
    assert!(failover < Duration::from_secs(8));

    proxy.shutdown().await;
    for s in servers.into_iter().flatten() {
        s.shutdown().await;
    }
}
