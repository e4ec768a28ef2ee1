//! GTM chaos: a 3-replica GTM group, a GTM proxy and eight clients (half through the proxy, half direct) under
//! madsim, with random kills and restarts (crash-time loss of unsynced writes on the simulated disk), leader
//! kills, symmetric and asymmetric partitions, packet loss and delay, and paused nodes that wake up late.
//!
//! Phase 1 (safety, faults on): clients run begin → snapshot(s) → commit/abort/two-phase commit, nextval and
//! barriers, recording what they observe. Phase 2 (liveness): heal everything; service must come back within
//! a bounded simulated time, every prepared transaction acknowledged must still be there, the sequence and the
//! GXID counter must continue above every value handed out. Then the history checkers run
//! (`pgxc_sim::gtm_history`).
//!
//! Seeds: 50 by default (`PGXC_SIM_SEEDS`), each in its own process; a failure prints the replay command; the
//! first 3 seeds are re-run in new processes under madsim's determinism check and must give the same history
//! hash (every event with its simulated nanosecond time, and every fault).
#![cfg(madsim)]

use madsim::net::NetSim;
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use openraft::BasicNode;
use pgxc_common::Gxid;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::proto::SeqOptions;
use pgxc_gtm::proxy::GtmProxy;
use pgxc_gtm::raft::{start_raft, RaftConfig};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sim::gtm_history::{check_history, Event};
use pgxc_sim::harness::{run_seeds, HistoryHash};
use pgxc_storage::{Disk, SimDisk};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const GTM_PORT: u16 = 6666;
const PROXY_PORT: u16 = 6670;
const CLIENTS: u32 = 8;
const SAFETY: Duration = Duration::from_secs(8);
const LIVENESS_BOUND: Duration = Duration::from_secs(20);
const SEQ: &str = "chaos_seq";

fn gtm_ip(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, i as u8))
}

fn gtm_addr(i: u64) -> String {
    format!("{}:{GTM_PORT}", gtm_ip(i))
}

#[derive(Clone)]
struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
}

#[test]
fn gtm_chaos() {
    run_seeds("gtm_chaos", 50, 3, Duration::from_secs(600), scenario);
}

async fn scenario() -> Result<u64, String> {
    let handle = Handle::current();
    let rec = Recorder {
        start: Instant::now(),
        events: Arc::new(Mutex::new(Vec::new())),
    };
    let members: BTreeMap<u64, BasicNode> =
        (1..=3).map(|i| (i, BasicNode::new(gtm_addr(i)))).collect();
    let gtm_addrs: Vec<String> = (1..=3).map(gtm_addr).collect();

    // --- the GTM replicas, each with a simulated disk that outlives its process -------------------------
    let mut disks = Vec::new();
    let mut nodes = Vec::new();
    for i in 1..=3u64 {
        let disk = SimDisk::new();
        disks.push(disk.clone());
        let first_boot = Arc::new(AtomicBool::new(i == 1));
        let members = members.clone();
        let node = handle
            .create_node()
            .name(format!("gtm{i}"))
            .ip(gtm_ip(i))
            .init(move || {
                let disk = disk.clone();
                let first_boot = first_boot.clone();
                let members = members.clone();
                async move {
                    let d = Disk::sim(disk);
                    let node = match start_raft(i, &d, RaftConfig::default()).await {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!("gtm{i} cannot start: {e}");
                            return;
                        }
                    };
                    if first_boot.swap(false, Ordering::SeqCst) {
                        node.initialize(members)
                            .await
                            .expect("initialize the GTM group");
                    }
                    let _server = GtmServer::start(
                        ServerConfig::new(i, gtm_addr(i)),
                        Replication::Raft(node),
                    )
                    .await
                    .expect("gtm server starts");
                    std::future::pending::<()>().await;
                }
            })
            .build();
        nodes.push(node.id());
    }

    // --- the proxy ------------------------------------------------------------------------------------------
    let proxy_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1));
    let proxy_addr = format!("{proxy_ip}:{PROXY_PORT}");
    let upstream = gtm_addrs.clone();
    let paddr = proxy_addr.clone();
    let proxy_node = handle
        .create_node()
        .name("proxy")
        .ip(proxy_ip)
        .init(move || {
            let upstream = upstream.clone();
            let paddr = paddr.clone();
            async move {
                loop {
                    match GtmProxy::start(&paddr, upstream.clone()).await {
                        Ok(_p) => std::future::pending::<()>().await,
                        Err(e) => {
                            tracing::warn!("proxy cannot start yet: {e}");
                            sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        })
        .build();

    // --- clients ----------------------------------------------------------------------------------------------
    let client_node = handle
        .create_node()
        .name("clients")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 3, 1)))
        .build();
    let setup = {
        let addrs = gtm_addrs.clone();
        client_node.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(c) = GtmClient::connect(addrs.clone(), ClientOptions::default()).await {
                    match c.create_sequence(SEQ, SeqOptions::default(), true).await {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => {
                            return Err(format!("create sequence: {e}"))
                        }
                        Err(_) => {}
                    }
                }
                if Instant::now() > deadline {
                    return Err("GTM group did not come up within 30 s".to_string());
                }
                sleep(Duration::from_millis(100)).await;
            }
        })
    };
    setup.await.map_err(|e| format!("setup task: {e}"))??;

    let stop = Arc::new(AtomicBool::new(false));
    let prepared_gids = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut workers = Vec::new();
    for c in 0..CLIENTS {
        let addrs = if c % 2 == 0 {
            vec![proxy_addr.clone()]
        } else {
            gtm_addrs.clone()
        };
        let rec = rec.clone();
        let stop = stop.clone();
        let gids = prepared_gids.clone();
        workers
            .push(client_node.spawn(async move { client_loop(c, addrs, rec, stop, gids).await }));
    }

    // --- phase 1: faults ----------------------------------------------------------------------------------
    let net = NetSim::current();
    let mut rng = thread_rng();
    let mut down: BTreeSet<usize> = BTreeSet::new();
    let mut paused: BTreeSet<usize> = BTreeSet::new();
    let phase_end = Instant::now() + SAFETY;
    let mut faults = Vec::new();
    while Instant::now() < phase_end {
        sleep(Duration::from_millis(rng.gen_range(150..1200))).await;
        let i = rng.gen_range(0..3usize);
        match rng.gen_range(0..9) {
            0 | 1 => {
                if down.insert(i) {
                    handle.kill(nodes[i]);
                    let report = disks[i].crash(&mut rng);
                    faults.push(format!("kill gtm{} ({report:?})", i + 1));
                }
            }
            2 | 3 => {
                if down.remove(&i) {
                    handle.restart(nodes[i]);
                    faults.push(format!("restart gtm{}", i + 1));
                }
            }
            4 => {
                net.clog_node(nodes[i]);
                faults.push(format!("isolate gtm{}", i + 1));
            }
            5 => {
                let j = (i + rng.gen_range(1..3)) % 3;
                net.clog_link(nodes[i], nodes[j]);
                faults.push(format!("clog link gtm{}->gtm{}", i + 1, j + 1));
            }
            6 => {
                net.clog_link(proxy_node.id(), nodes[i]);
                faults.push(format!("clog link proxy->gtm{}", i + 1));
            }
            7 => {
                let loss = rng.gen_range(0.0..0.1);
                let hi = rng.gen_range(2..50u64);
                net.update_config(|cfg| {
                    cfg.packet_loss_rate = loss;
                    cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(hi);
                });
                faults.push(format!("loss {loss:.3}, latency 1..{hi} ms"));
            }
            _ => {
                if !down.contains(&i) && paused.insert(i) {
                    handle.pause(nodes[i]);
                    faults.push(format!("pause gtm{}", i + 1));
                } else if paused.remove(&i) {
                    handle.resume(nodes[i]);
                    faults.push(format!("resume gtm{}", i + 1));
                }
            }
        }
        // Heal some partitions now and then so the group is not cut off for the whole phase.
        if rng.gen_bool(0.3) {
            for n in &nodes {
                net.unclog_node(*n);
                for m in &nodes {
                    net.unclog_link(*n, *m);
                }
                net.unclog_link(proxy_node.id(), *n);
            }
            faults.push("heal partitions".into());
        }
    }

    // --- phase 2: heal and require service ----------------------------------------------------------------
    for (i, n) in nodes.iter().enumerate() {
        net.unclog_node(*n);
        for m in &nodes {
            net.unclog_link(*n, *m);
        }
        net.unclog_link(proxy_node.id(), *n);
        if paused.remove(&i) {
            handle.resume(*n);
        }
        if down.remove(&i) {
            handle.restart(*n);
        }
    }
    net.update_config(|cfg| {
        cfg.packet_loss_rate = 0.0;
        cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
    });
    let healed = Instant::now();
    let probe = {
        let addrs = gtm_addrs.clone();
        let paddr = proxy_addr.clone();
        let rec = rec.clone();
        client_node.spawn(async move { liveness_probe(addrs, paddr, rec).await })
    };
    let probe_result = probe.await.map_err(|e| format!("probe task: {e}"))?;
    let service_after = healed.elapsed();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.await;
    }
    let probe_state = probe_result.map_err(|e| format!("{e}; faults: {faults:?}"))?;

    // --- final checks ---------------------------------------------------------------------------------------
    let mut events = rec.events.lock().unwrap().clone();
    let forget_sent: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| {
            if let Event::ForgetSent { gid, .. } = e {
                Some(gid.as_str())
            } else {
                None
            }
        })
        .collect();
    let must_list: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Prepared { gid, .. } if !forget_sent.contains(gid.as_str()) => Some(gid.clone()),
            _ => None,
        })
        .collect();
    let max_value = events
        .iter()
        .filter_map(|e| {
            if let Event::Value { value, .. } = e {
                Some(*value)
            } else {
                None
            }
        })
        .max()
        .unwrap_or(i64::MIN);
    let fin = {
        let addrs = gtm_addrs.clone();
        let gids = prepared_gids.lock().unwrap().clone();
        client_node.spawn(async move { final_checks(addrs, gids, must_list).await })
    };
    let final_events = fin
        .await
        .map_err(|e| format!("final task: {e}"))?
        .map_err(|e| format!("{e}; faults: {faults:?}"))?;
    for e in &final_events {
        if let Event::Value { value, .. } = e {
            if *value <= max_value {
                return Err(format!(
                    "sequence went back after healing: {value} <= {max_value}; faults: {faults:?}"
                ));
            }
        }
    }
    events.extend(final_events);
    check_history(&events).map_err(|e| format!("{e}; faults: {faults:?}"))?;
    let _ = probe_state;

    let mut h = HistoryHash::new();
    for e in &events {
        h.add(e);
    }
    for f in &faults {
        h.add(f);
    }
    let begun = events
        .iter()
        .filter(|e| matches!(e, Event::Begun { .. }))
        .count();
    let snaps = events
        .iter()
        .filter(|e| matches!(e, Event::Snap { .. }))
        .count();
    let ended = events
        .iter()
        .filter(|e| matches!(e, Event::Ended { .. }))
        .count();
    if ended == 0 {
        return Err(format!(
            "no transaction committed in the whole run; faults: {faults:?}"
        ));
    }
    println!(
        "PGXC_SIM_SUMMARY {begun} begun, {ended} committed, {snaps} snapshots, {} faults, service {:.2} s after healing",
        faults.len(),
        service_after.as_secs_f64()
    );
    Ok(h.value())
}

/// What the liveness probe saw.
#[allow(dead_code)]
struct ProbeState {
    max_gxid: Gxid,
    max_value: i64,
}

async fn client_loop(
    c: u32,
    addrs: Vec<String>,
    rec: Recorder,
    stop: Arc<AtomicBool>,
    gids: Arc<Mutex<BTreeSet<String>>>,
) {
    let mut rng = thread_rng();
    let client = loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match GtmClient::connect(addrs.clone(), ClientOptions::default()).await {
            Ok(cl) => break cl,
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let sent = rec.now();
        let (gxid, snapshot) = match client.begin_snapshot().await {
            Ok(x) => x,
            Err(_) => {
                sleep(Duration::from_millis(rng.gen_range(10..60))).await;
                continue;
            }
        };
        let at = rec.now();
        rec.push(Event::Begun {
            client: c,
            gxid,
            sent,
            at,
        });
        rec.push(Event::Snap {
            client: c,
            snapshot,
            sent,
            at,
        });
        for _ in 0..rng.gen_range(0..3) {
            let sent = rec.now();
            if let Ok(s) = client.snapshot(Some(gxid)).await {
                rec.push(Event::Snap {
                    client: c,
                    snapshot: s,
                    sent,
                    at: rec.now(),
                });
            }
            sleep(Duration::from_millis(rng.gen_range(0..10))).await;
        }
        if rng.gen_bool(0.3) {
            if let Ok(v) = client.nextval(SEQ).await {
                rec.push(Event::Value {
                    seq: SEQ.into(),
                    value: v,
                });
            }
        }
        if c == 0 && rng.gen_bool(0.05) {
            if let Ok(id) = client.create_barrier(None).await {
                rec.push(Event::Barrier { id });
            }
        }
        sleep(Duration::from_millis(rng.gen_range(0..20))).await;
        match rng.gen_range(0..20) {
            0..=13 => {
                let sent = rec.now();
                if client.commit(gxid).await.is_ok() {
                    rec.push(Event::Ended {
                        client: c,
                        gxid,
                        sent,
                    });
                }
            }
            14..=16 => {
                let _ = client.abort(gxid).await;
            }
            _ => {
                let gid = format!("c{c}-{}", gxid.0);
                gids.lock().unwrap().insert(gid.clone());
                if client
                    .prepare(gxid, &gid, vec!["dn1".into(), "dn2".into()])
                    .await
                    .is_ok()
                {
                    rec.push(Event::Prepared {
                        client: c,
                        gxid,
                        gid: gid.clone(),
                    });
                    if client.decide(&gid, true).await.is_ok() {
                        rec.push(Event::ForgetSent {
                            gid: gid.clone(),
                            sent: rec.now(),
                        });
                        let _ = client.forget(&gid).await;
                    }
                }
            }
        }
    }
}

/// After healing: within [`LIVENESS_BOUND`], a fresh client through the proxy and one direct must each
/// complete begin → snapshot → commit and a nextval.
async fn liveness_probe(
    addrs: Vec<String>,
    proxy: String,
    rec: Recorder,
) -> Result<ProbeState, String> {
    let deadline = Instant::now() + LIVENESS_BOUND;
    let mut max_gxid = Gxid::INVALID;
    let mut max_value = i64::MIN;
    for (name, a) in [("proxy", vec![proxy]), ("direct", addrs)] {
        let mut last_err = String::from("no attempt");
        let mut done = false;
        while Instant::now() < deadline {
            let attempt = async {
                let c = GtmClient::connect(a.clone(), ClientOptions::default()).await?;
                let sent = rec.now();
                let (g, s) = c.begin_snapshot().await?;
                let at = rec.now();
                rec.push(Event::Begun {
                    client: 100,
                    gxid: g,
                    sent,
                    at,
                });
                rec.push(Event::Snap {
                    client: 100,
                    snapshot: s,
                    sent,
                    at,
                });
                let v = c.nextval(SEQ).await?;
                rec.push(Event::Value {
                    seq: SEQ.into(),
                    value: v,
                });
                let sent = rec.now();
                c.commit(g).await?;
                rec.push(Event::Ended {
                    client: 100,
                    gxid: g,
                    sent,
                });
                Ok::<_, pgxc_common::PgError>((g, v))
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok((g, v))) => {
                    max_gxid = max_gxid.max(g);
                    max_value = max_value.max(v);
                    done = true;
                    break;
                }
                Ok(Err(e)) => last_err = e.to_string(),
                Err(_) => last_err = "timed out".into(),
            }
            sleep(Duration::from_millis(100)).await;
        }
        if !done {
            return Err(format!("liveness: no service through {name} within {LIVENESS_BOUND:?} of healing: {last_err}"));
        }
    }
    Ok(ProbeState {
        max_gxid,
        max_value,
    })
}

/// Durability and continuity after the run: prepared transactions that were acknowledged and never forgotten
/// are still listed; every gid can be forgotten so nothing stays prepared; the GXID counter and the sequence
/// continue above everything handed out.
async fn final_checks(
    addrs: Vec<String>,
    gids: BTreeSet<String>,
    must_list: BTreeSet<String>,
) -> Result<Vec<Event>, String> {
    let c = GtmClient::connect(addrs, ClientOptions::default())
        .await
        .map_err(|e| format!("final connect: {e}"))?;
    let listed = c
        .list_prepared()
        .await
        .map_err(|e| format!("list prepared: {e}"))?;
    let listed_gids: BTreeSet<String> = listed.iter().map(|p| p.gid.clone()).collect();
    for p in &listed {
        if !gids.contains(&p.gid) {
            return Err(format!("unknown prepared gid {} listed", p.gid));
        }
    }
    for gid in &must_list {
        if !listed_gids.contains(gid) {
            return Err(format!(
                "acknowledged prepared transaction {gid} lost (listed: {listed_gids:?})"
            ));
        }
    }
    let mut out = Vec::new();
    for gid in &gids {
        out.push(Event::ForgetSent {
            gid: gid.clone(),
            sent: u64::MAX - 2,
        });
        c.forget(gid)
            .await
            .map_err(|e| format!("forget {gid}: {e}"))?;
    }
    let left = c
        .list_prepared()
        .await
        .map_err(|e| format!("list prepared: {e}"))?;
    if !left.is_empty() {
        return Err(format!(
            "prepared transactions left after forgetting all: {left:?}"
        ));
    }
    let (g, s) = c
        .begin_snapshot()
        .await
        .map_err(|e| format!("final begin: {e}"))?;
    let v = c
        .nextval(SEQ)
        .await
        .map_err(|e| format!("final nextval: {e}"))?;
    c.commit(g)
        .await
        .map_err(|e| format!("final commit: {e}"))?;
    out.extend([
        Event::Begun {
            client: 200,
            gxid: g,
            sent: u64::MAX - 1,
            at: u64::MAX - 1,
        },
        Event::Snap {
            client: 200,
            snapshot: s,
            sent: u64::MAX - 1,
            at: u64::MAX - 1,
        },
        Event::Value {
            seq: SEQ.into(),
            value: v,
        },
    ]);
    Ok(out)
}
