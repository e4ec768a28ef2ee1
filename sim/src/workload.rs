//! Pieces every whole-cluster suite shares (madsim only): faults chosen by the seed and healing
//! ([`Faults`]), the coordinators' background in-doubt resolver ([`background_resolver`]), the
//! liveness check after healing ([`resolve_everything`]) and a datanode connection retried while
//! the node boots ([`connect_retrying`]).
//!
//! The fault mix is `cluster_bank`'s: datanode power failures (unsynced writes lost, last write
//! possibly torn; sometimes the disk first fails in the middle of a commit) and restarts, GTM
//! replica power failures and restarts (one replica down at a time, mostly the leader: leader
//! changes while transactions are open), isolated datanodes, packet loss and latency. The
//! resolvers finish what the GTM records and then sweep orphans (`twophase::roll_back_orphans`:
//! implicit gids a datanode holds that the GTM forgot).

use crate::cluster::{deadline, Datanode, GtmGroup, GtmLog, Nodes, Orphans};
use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use pgxc_cluster::twophase::{self, DecisionLog};
use pgxc_common::PgError;
use pgxc_datanode::client::DnConn;
use pgxc_gtm::client::GtmClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

/// The faults one seed injected, in order (for failure reports and the history hash).
#[derive(Debug)]
pub struct Faults {
    /// One line per fault with its simulated time since the scenario started (`2.417 s: crash dn2
    /// (...)`, `isolate dn1`, `heal: restart gtm3`, ...).
    pub log: Vec<String>,
    /// Unsynced disk writes lost by datanode power failures.
    pub lost_ops: u64,
    gtm_down: Option<usize>,
    t0: Instant,
}

impl Faults {
    /// No faults yet; times are reported from `t0` (the scenario's start).
    pub fn new(t0: Instant) -> Faults {
        Faults {
            log: Vec::new(),
            lost_ops: 0,
            gtm_down: None,
            t0,
        }
    }

    fn note(&mut self, what: String) {
        let t = self.t0.elapsed().as_secs_f64();
        self.log.push(format!("{t:.3} s: {what}"));
    }

    /// Inject faults chosen by the seed for `duration` of simulated time: every 0.3–2 s one of
    /// network (25%: isolate a datanode, heal every cut, or new packet loss 0–5% and latency
    /// 1..2–40 ms), GTM (40%: restart the replica that is down, else power-fail one, 75% of the
    /// time the leader as `watcher` reports it), or a datanode
    /// (restart it if down; else, with no other datanode down, 60%: power failure, 40% of those
    /// after its disk starts failing within the next 0–11 writes). With `enabled == false` only
    /// restarts happen (none: nothing goes down).
    pub async fn inject(
        &mut self,
        handle: &Handle,
        gtm: &GtmGroup,
        dns: &mut [Datanode],
        watcher: &GtmClient,
        duration: Duration,
        enabled: bool,
    ) {
        let mut rng = thread_rng();
        let net = madsim::net::NetSim::current();
        let end = Instant::now() + duration;
        while Instant::now() < end {
            sleep(Duration::from_millis(rng.gen_range(300..2000))).await;
            if enabled && rng.gen_bool(0.25) {
                match rng.gen_range(0..3) {
                    0 => {
                        let i = rng.gen_range(0..dns.len());
                        net.clog_node(dns[i].node);
                        self.note(format!("isolate {}", dns[i].name));
                    }
                    1 => {
                        for d in dns.iter() {
                            net.unclog_node(d.node);
                        }
                        self.note("heal partitions".into());
                    }
                    _ => {
                        let loss = rng.gen_range(0.0..0.05);
                        let hi = rng.gen_range(2..40u64);
                        net.update_config(|cfg| {
                            cfg.packet_loss_rate = loss;
                            cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(hi);
                        });
                        self.note(format!("loss {loss:.3}, latency 1..{hi} ms"));
                    }
                }
                continue;
            }
            if enabled && rng.gen_bool(0.4) {
                match self.gtm_down.take() {
                    Some(g) => {
                        handle.restart(gtm.nodes[g]);
                        self.note(format!("restart gtm{}", g + 1));
                    }
                    None => {
                        let leader = if rng.gen_bool(0.75) {
                            deadline("GTM status", watcher.status())
                                .await
                                .ok()
                                .and_then(|s| s.leader)
                                .map(|(id, _)| id as usize)
                                .filter(|id| (1..=gtm.nodes.len()).contains(id))
                        } else {
                            None
                        };
                        let g = match leader {
                            Some(id) => id - 1,
                            None => rng.gen_range(0..gtm.nodes.len()),
                        };
                        let report = gtm.disks[g].crash(&mut rng);
                        handle.kill(gtm.nodes[g]);
                        self.gtm_down = Some(g);
                        let role = if leader.is_some() { ", the leader" } else { "" };
                        self.note(format!("crash gtm{}{role} ({report:?})", g + 1));
                    }
                }
                continue;
            }
            let i = rng.gen_range(0..dns.len());
            let down = dns.iter().filter(|d| d.down).count();
            if dns[i].down {
                dns[i].restart(handle);
                self.note(format!("restart {}", dns[i].name));
            } else if down == 0 && enabled && rng.gen_bool(0.6) {
                if rng.gen_bool(0.4) {
                    let n = rng.gen_range(0..12u64);
                    dns[i].disk.fail_after_writes(Some(n));
                    sleep(Duration::from_millis(rng.gen_range(50..600))).await;
                    self.note(format!("{}: disk fails after {n} writes", dns[i].name));
                }
                let report = dns[i].crash(handle, &mut rng);
                dns[i].disk.fail_after_writes(None);
                self.lost_ops += report.dropped_ops;
                self.note(format!("crash {} ({report:?})", dns[i].name));
            }
        }
    }

    /// Heal everything: reconnect every datanode, no loss, 1–10 ms latency, restart the GTM
    /// replica and every datanode that is down.
    pub fn heal(&mut self, handle: &Handle, gtm: &GtmGroup, dns: &mut [Datanode]) {
        let net = madsim::net::NetSim::current();
        for d in dns.iter() {
            net.unclog_node(d.node);
        }
        net.update_config(|cfg| {
            cfg.packet_loss_rate = 0.0;
            cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
        });
        if let Some(g) = self.gtm_down.take() {
            handle.restart(gtm.nodes[g]);
            self.note(format!("heal: restart gtm{}", g + 1));
        }
        for d in dns.iter_mut().filter(|d| d.down) {
            d.restart(handle);
            self.note(format!("heal: restart {}", d.name));
        }
    }
}

/// A connection to datanode `name`, retried every 200 ms for `within` (simulated) while it boots.
/// Errors: the last connection error once `within` has passed.
pub async fn connect_retrying(
    nodes: &Nodes,
    name: &str,
    within: Duration,
) -> Result<DnConn, PgError> {
    let end = Instant::now() + within;
    loop {
        match nodes.connect(name).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > end => return Err(e),
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The coordinators' background in-doubt resolver: every 700 ms, one `twophase::resolve_when`
/// pass over the gids no live client is committing (`inflight` holds the gids clients are in the
/// middle of committing), then the orphan sweep, until `stop`.
pub async fn background_resolver(
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
    stop: Arc<AtomicBool>,
    inflight: Arc<Mutex<BTreeSet<String>>>,
) {
    let Ok(gtm) = GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await else {
        return;
    };
    let nodes = Nodes {
        coordinator: "resolver".into(),
        addrs,
    };
    while !stop.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(700)).await;
        let idle = |p: &twophase::InDoubt| !inflight.lock().unwrap().contains(&p.gid);
        let _ = twophase::resolve_when(&GtmLog(&gtm), &nodes, idle, idle, false).await;
        sweep_orphans(&gtm, &nodes).await;
    }
}

/// One orphan sweep (`twophase::roll_back_orphans`) over every datanode of `nodes`: implicit gids
/// a datanode holds prepared that the GTM neither records nor runs (a PREPARE that failed on a
/// dying disk after reaching it) are rolled back. Never one a live client is committing: its GXID
/// is running at the GTM until it is done. Errors are left to the next pass.
pub async fn sweep_orphans(gtm: &GtmClient, nodes: &Nodes) {
    let names: Vec<String> = nodes.addrs.keys().cloned().collect();
    let orphans = Orphans { gtm, nodes };
    let _ = twophase::roll_back_orphans(&GtmLog(gtm), nodes, &orphans, &names, false).await;
}

/// Liveness after healing: resolve (every gid counts as abandoned) and sweep orphans every 500 ms
/// until neither the
/// GTM nor any datanode of `nodes` holds a prepared transaction. Errors: what is left (and whether
/// a node did not answer) after `bound` of simulated time.
pub async fn resolve_everything(
    gtm: &GtmClient,
    nodes: &Nodes,
    bound: Duration,
) -> Result<(), String> {
    let log = GtmLog(gtm);
    let end = Instant::now() + bound;
    let mut last = String::new();
    loop {
        if Instant::now() > end {
            return Err(format!(
                "prepared transactions left {bound:?} after healing: {last}"
            ));
        }
        let _ = twophase::resolve(&log, nodes, |_| true, false).await;
        sweep_orphans(gtm, nodes).await;
        let mut left = Vec::new();
        let mut complete = true;
        match log.list_prepared().await {
            Ok(v) => left.extend(v.into_iter().map(|p| format!("GTM:{}", p.gid))),
            Err(_) => complete = false,
        }
        for name in nodes.addrs.keys() {
            match nodes.list_prepared(name).await {
                Ok(v) => left.extend(v.into_iter().map(|(g, _)| format!("{name}:{g}"))),
                Err(_) => complete = false,
            }
        }
        if complete && left.is_empty() {
            return Ok(());
        }
        last = format!(
            "{left:?}{}",
            if complete {
                ""
            } else {
                " (a node did not answer)"
            }
        );
        sleep(Duration::from_millis(500)).await;
    }
}
