//! Whole-cluster bank under madsim: 3 GTM replicas, 3 datanodes (the production
//! coordinator-protocol server and SQL engine on simulated disks and network) and a coordinator
//! driver that does what a coordinator does for each transfer: a GXID and snapshots from the GTM,
//! `Begin`/`Execute` on each datanode it touches, then `pgxc_cluster::twophase::commit` (one-phase
//! on one writer; otherwise record at the GTM → PREPARE everywhere → decide at the GTM → COMMIT
//! PREPARED → forget) over `DnConn` participants.
//!
//! Phase 1 (safety, faults on): transfer clients, a REPEATABLE READ reader that sums every account
//! across the three datanodes under one GTM snapshot (it must always see the constant total: no
//! fractured reads), a background in-doubt resolver (the GTM's records, then the orphan sweep:
//! implicit gids a datanode holds that the GTM forgot), and faults chosen by the seed: datanode
//! power failures (unsynced writes lost, last write possibly torn; sometimes the disk first fails
//! in the middle of a commit) and restarts, GTM replica power failures and restarts (one at a
//! time, mostly the leader: leader changes while transfers are open), isolated datanodes, packet
//! loss and latency.
//! Phase 2 (liveness): everything back; within a bounded simulated time the resolver must leave no
//! prepared transaction on the GTM or any datanode; the final balances must be the start plus every
//! transfer acknowledged as committed plus a subset of the in-doubt ones (durability, atomicity),
//! and the total exact.
//!
//! Writers run at READ COMMITTED (PostgreSQL's default; `PGXC_SIM_RR_WRITERS=1` for REPEATABLE
//! READ). A READ COMMITTED writer that follows another transaction's update reports it, and the
//! driver, like a coordinator, ends it at the GTM only after the followed one ended there.
//! `PGXC_SIM_NO_FAULTS=1` turns faults off. Re-introduced mistakes (the checkers must catch them;
//! `PGXC_SIM_MISTAKE=a,b` for several): `commit_before_all_prepared` (`twophase::Mistakes`),
//! `stale_snapshot_after_leader_change` (`pgxc_gtm::core::Mistakes`), `ack_before_durable` (the
//! store), `skip_follow_wait` (this driver); docs/simulation.md lists which checker catches each.
//!
//! Seeds: `PGXC_SIM_SEEDS` (default 100), each in its own process; a failure prints the replay
//! command (`PGXC_SIM_SEED=<n> cargo sim-test --test cluster_bank -- --nocapture`).
#![cfg(madsim)]

use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use pgxc_cluster::twophase::{self, implicit_gid, DecisionLog, Mistakes, Outcome};
use pgxc_common::{Gxid, PgError};
use pgxc_sim::cluster::{deadline, mistake, Datanode, GtmGroup, GtmLog, Nodes, Orphans, Part};
use pgxc_sim::harness::{run_seeds, HistoryHash};
use pgxc_sql::types::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const DATANODES: u64 = 3;
const PER_NODE: i64 = 4;
const START: i64 = 100;
const CLIENTS: usize = 3;
const SAFETY: Duration = Duration::from_secs(10);
const LIVENESS_BOUND: Duration = Duration::from_secs(60);

fn accounts() -> i64 {
    DATANODES as i64 * PER_NODE
}

/// The datanode holding account `id` (1-based ids, `PER_NODE` consecutive ids per datanode).
fn dn_of(id: i64) -> String {
    format!("dn{}", (id - 1) / PER_NODE + 1)
}

#[test]
fn cluster_bank() {
    run_seeds("cluster_bank", 100, 2, Duration::from_secs(900), scenario);
}

#[derive(Default)]
struct Stats {
    committed: u64,
    rolled_back: u64,
    in_doubt: u64,
    failed_early: u64,
    /// SQLSTATE → how many transfers failed before commit with it.
    early_codes: BTreeMap<String, u64>,
    reads: u64,
    /// Transfers acknowledged as committed: (from, to, amount).
    acked: Vec<(i64, i64, i64)>,
    /// Transfers whose outcome is unknown (08007 at commit).
    doubtful: Vec<(i64, i64, i64)>,
    /// Reads whose total was wrong (fractured): what each saw.
    bad_reads: Vec<String>,
}

async fn scenario() -> Result<u64, String> {
    let handle = Handle::current();
    let gtm = GtmGroup::start(&handle);
    let mut dns: Vec<Datanode> = (1..=DATANODES)
        .map(|i| Datanode::start(&handle, i, gtm.addrs.clone()))
        .collect();
    let addrs: BTreeMap<String, String> = dns
        .iter()
        .map(|d| (d.name.clone(), d.addr.clone()))
        .collect();
    let coord = handle
        .create_node()
        .name("coordinator")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 3, 1)))
        .build();

    // --- setup: the accounts table on every datanode (no faults yet) ------------------------------------
    let setup = {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        coord.spawn(async move { setup(gtm_addrs, addrs).await })
    };
    setup.await.map_err(|e| format!("setup task: {e}"))??;

    // --- phase 1: transfers, reads, resolver, datanode crashes ------------------------------------------
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let inflight = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        let (stop, stats, inflight) = (stop.clone(), stats.clone(), inflight.clone());
        tasks.push(coord.spawn(async move {
            transfer_client(c, gtm_addrs, addrs, stop, stats, inflight).await
        }));
    }
    {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        let (stop, stats) = (stop.clone(), stats.clone());
        tasks.push(coord.spawn(async move { reader(gtm_addrs, addrs, stop, stats).await }));
    }
    {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        let (stop, inflight) = (stop.clone(), inflight.clone());
        tasks.push(
            coord.spawn(async move { background_resolver(gtm_addrs, addrs, stop, inflight).await }),
        );
    }

    // The fault injector's own GTM client (on the coordinator machine): it asks who leads, so that
    // GTM power failures often hit the leader (leader changes while transactions are open).
    let watcher = {
        let gtm_addrs = gtm.addrs.clone();
        coord
            .spawn(async move { GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await })
            .await
            .map_err(|e| format!("watcher task: {e}"))??
    };
    let mut rng = thread_rng();
    let no_faults = std::env::var("PGXC_SIM_NO_FAULTS").is_ok();
    let gtm_faults = !no_faults;
    let net_faults = !no_faults;
    let net = madsim::net::NetSim::current();
    let mut gtm_down: Option<usize> = None;
    let mut faults = Vec::new();
    let mut lost_ops = 0u64;
    let phase_end = Instant::now() + SAFETY;
    while Instant::now() < phase_end {
        sleep(Duration::from_millis(rng.gen_range(300..2000))).await;
        if net_faults && rng.gen_bool(0.25) {
            // Cut one datanode off (or heal every cut), or change loss and latency.
            match rng.gen_range(0..3) {
                0 => {
                    let i = rng.gen_range(0..dns.len());
                    net.clog_node(dns[i].node);
                    faults.push(format!("isolate {}", dns[i].name));
                }
                1 => {
                    for d in &dns {
                        net.unclog_node(d.node);
                    }
                    faults.push("heal partitions".into());
                }
                _ => {
                    let loss = rng.gen_range(0.0..0.05);
                    let hi = rng.gen_range(2..40u64);
                    net.update_config(|cfg| {
                        cfg.packet_loss_rate = loss;
                        cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(hi);
                    });
                    faults.push(format!("loss {loss:.3}, latency 1..{hi} ms"));
                }
            }
            continue;
        }
        if gtm_faults && rng.gen_bool(0.4) {
            // One GTM replica at a time: power failure (unsynced writes lost) and kill, or restart.
            // Mostly the leader: a leader change while transfers are open.
            match gtm_down.take() {
                Some(g) => {
                    handle.restart(gtm.nodes[g]);
                    faults.push(format!("restart gtm{}", g + 1));
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
                    gtm_down = Some(g);
                    let role = if leader.is_some() { ", the leader" } else { "" };
                    faults.push(format!("crash gtm{}{role} ({report:?})", g + 1));
                }
            }
            continue;
        }
        let i = rng.gen_range(0..dns.len());
        let down = dns.iter().filter(|d| d.down).count();
        if dns[i].down {
            dns[i].restart(&handle);
            faults.push(format!("restart {}", dns[i].name));
        } else if down == 0 && rng.gen_bool(0.6) && !no_faults {
            if rng.gen_bool(0.4) {
                // The disk dies first, in the middle of some later commit: the store refuses
                // everything after the failed write until the power goes and the node reboots.
                let n = rng.gen_range(0..12u64);
                dns[i].disk.fail_after_writes(Some(n));
                sleep(Duration::from_millis(rng.gen_range(50..600))).await;
                faults.push(format!("{}: disk fails after {n} writes", dns[i].name));
            }
            let report = dns[i].crash(&handle, &mut rng);
            dns[i].disk.fail_after_writes(None);
            lost_ops += report.dropped_ops;
            faults.push(format!("crash {} ({report:?})", dns[i].name));
        }
    }

    // --- phase 2: heal, stop the workload, resolve everything ---------------------------------------------
    for d in &dns {
        net.unclog_node(d.node);
    }
    net.update_config(|cfg| {
        cfg.packet_loss_rate = 0.0;
        cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
    });
    if let Some(g) = gtm_down.take() {
        handle.restart(gtm.nodes[g]);
        faults.push(format!("heal: restart gtm{}", g + 1));
    }
    for d in dns.iter_mut().filter(|d| d.down) {
        d.restart(&handle);
        faults.push(format!("heal: restart {}", d.name));
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.map_err(|e| format!("workload task: {e}"))?;
    }
    let healed = Instant::now();
    let fin = {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        coord.spawn(async move { final_checks(gtm_addrs, addrs).await })
    };
    let balances = fin
        .await
        .map_err(|e| format!("final task: {e}"))?
        .map_err(|e| format!("{e}; faults: {faults:?}"))?;
    let total: i64 = balances.iter().map(|(_, b)| b).sum();
    let st = stats.lock().unwrap();
    // Durability and atomicity: the final balances are the start plus every transfer the client was
    // told committed, plus some subset of the in-doubt ones, and nothing else.
    if let Err(e) = explain_balances(&balances, &st.acked, &st.doubtful) {
        return Err(format!("{e}; faults: {faults:?}"));
    }
    if let Some(bad) = st.bad_reads.first() {
        return Err(format!(
            "fractured read (total must be {}): {bad}; final total {total}; faults: {faults:?}",
            accounts() * START
        ));
    }
    if total != accounts() * START {
        return Err(format!(
            "final total {total}, expected {}; faults: {faults:?}",
            accounts() * START
        ));
    }
    if st.committed == 0 {
        return Err(format!("no transfer committed; faults: {faults:?}"));
    }
    println!(
        "PGXC_SIM_SUMMARY {} committed, {} rolled back, {} in doubt, {} failed before commit {:?}, {} consistent reads, {} faults ({lost_ops} unsynced disk writes lost), clean {:.1} s after healing",
        st.committed,
        st.rolled_back,
        st.in_doubt,
        st.failed_early,
        st.early_codes,
        st.reads,
        faults.len(),
        healed.elapsed().as_secs_f64()
    );
    let mut h = HistoryHash::new();
    h.add(&faults);
    h.add(&(
        st.committed,
        st.rolled_back,
        st.in_doubt,
        st.failed_early,
        st.reads,
    ));
    Ok(h.value())
}

/// Create the table and its accounts on every datanode, each in its own one-phase transaction.
async fn setup(gtm_addrs: Vec<String>, addrs: BTreeMap<String, String>) -> Result<(), String> {
    let gtm = GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await?;
    let nodes = Nodes {
        coordinator: "cn1".into(),
        addrs,
    };
    let log = GtmLog(&gtm);
    for d in 1..=DATANODES {
        let name = format!("dn{d}");
        let first = (d as i64 - 1) * PER_NODE + 1;
        let rows: Vec<String> = (first..first + PER_NODE)
            .map(|id| format!("({id}, {START})"))
            .collect();
        let end = Instant::now() + Duration::from_secs(60);
        let conn = loop {
            match nodes.connect(&name).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > end => return Err(format!("{name} never came up: {e}")),
                Err(_) => sleep(Duration::from_millis(200)).await,
            }
        };
        let (gxid, snap) = deadline("begin", gtm.begin_snapshot())
            .await
            .map_err(|e| e.to_string())?;
        let mut part = Part::begin(conn, gxid, false, false)
            .await
            .map_err(|e| e.to_string())?;
        for sql in [
            "CREATE TABLE acc (id bigint PRIMARY KEY, bal bigint)".to_string(),
            format!("INSERT INTO acc VALUES {}", rows.join(", ")),
        ] {
            part.execute(snap.clone(), &sql)
                .await
                .map_err(|e| format!("{name}: {sql}: {e}"))?;
        }
        let mut parts = [part];
        match twophase::commit(
            &log,
            &nodes,
            gxid,
            &implicit_gid(gxid),
            &mut parts,
            Mistakes::default(),
        )
        .await
        {
            Outcome::Committed { .. } => {}
            other => return Err(format!("{name}: setup commit: {other:?}")),
        }
    }
    Ok(())
}

/// One coordinator session moving money between random accounts until `stop`.
async fn transfer_client(
    c: usize,
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    inflight: Arc<Mutex<BTreeSet<String>>>,
) {
    let Ok(gtm) = GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await else {
        return;
    };
    let nodes = Nodes {
        coordinator: format!("cn{}", c + 1),
        addrs,
    };
    let log = GtmLog(&gtm);
    let mut rng = thread_rng();
    // A re-introduced mistake, to show the checkers catch it (issue 7).
    let mistakes = Mistakes {
        commit_before_all_prepared: mistake("commit_before_all_prepared"),
    };
    // READ COMMITTED writers by default (PostgreSQL's default isolation).
    let repeatable = std::env::var("PGXC_SIM_RR_WRITERS").is_ok();
    let skip_follow_wait = mistake("skip_follow_wait");
    while !stop.load(Ordering::SeqCst) {
        let a = rng.gen_range(1..=accounts());
        let mut b = rng.gen_range(1..=accounts());
        if a == b {
            b = a % accounts() + 1;
        }
        let amount = rng.gen_range(1..=30i64);
        let Ok((gxid, _)) = deadline("begin", gtm.begin_snapshot()).await else {
            sleep(Duration::from_millis(100)).await;
            continue;
        };
        // Updates in account order on every transaction: no distributed deadlock (there is no
        // global deadlock detector, as in Postgres-XC).
        let mut steps = [(a, -amount), (b, amount)];
        steps.sort();
        let mut parts: Vec<Part> = Vec::new();
        let mut failed = None;
        for (id, delta) in steps {
            let dn = dn_of(id);
            let found = parts
                .iter()
                .position(|p| twophase::Participant::name(p) == dn);
            let k = match found {
                Some(k) => k,
                None => {
                    let r = match nodes.connect(&dn).await {
                        Ok(conn) => Part::begin(conn, gxid, repeatable, false).await,
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(p) => {
                            parts.push(p);
                            parts.len() - 1
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            };
            let snap = match deadline("snapshot", gtm.snapshot(Some(gxid))).await {
                Ok(s) => s,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let sql = format!("UPDATE acc SET bal = bal + ({delta}) WHERE id = {id}");
            match parts[k].execute(snap, &sql).await {
                Ok(r) if r.tag == "UPDATE 1" => {}
                Ok(r) => {
                    failed = Some(PgError::new(
                        pgxc_common::SqlState::InternalError,
                        format!("account {id} on {dn}: {}", r.tag),
                    ));
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            for p in parts.iter_mut() {
                let _ = twophase::Participant::rollback(p).await;
            }
            let _ = log.abort(gxid).await;
            {
                let mut st = stats.lock().unwrap();
                st.failed_early += 1;
                *st.early_codes.entry(e.code.code().to_string()).or_default() += 1;
            }
            // Back off: the node may be down for a while.
            sleep(Duration::from_millis(rng.gen_range(50..300))).await;
            continue;
        }
        // What a coordinator does before ending a transaction at the GTM: wait until every
        // transaction it followed (READ COMMITTED) has ended there (no fractured reads).
        let followed: Vec<Gxid> = parts.iter().flat_map(|p| p.followed.clone()).collect();
        if !followed.is_empty() && !skip_follow_wait {
            let end = Instant::now() + Duration::from_secs(30);
            let waited = loop {
                match deadline("snapshot", gtm.snapshot(None)).await {
                    Ok(s) if followed.iter().all(|g| !s.is_running(*g)) => break true,
                    _ if Instant::now() > end => break false,
                    _ => sleep(Duration::from_millis(5)).await,
                }
            };
            if !waited {
                for p in parts.iter_mut() {
                    let _ = twophase::Participant::rollback(p).await;
                }
                let _ = log.abort(gxid).await;
                stats.lock().unwrap().failed_early += 1;
                continue;
            }
        }
        let gid = implicit_gid(gxid);
        inflight.lock().unwrap().insert(gid.clone());
        let outcome = twophase::commit(&log, &nodes, gxid, &gid, &mut parts, mistakes).await;
        inflight.lock().unwrap().remove(&gid);
        let mut st = stats.lock().unwrap();
        match outcome {
            Outcome::Committed { .. } => {
                st.committed += 1;
                st.acked.push((a, b, amount));
            }
            Outcome::RolledBack(_) => st.rolled_back += 1,
            Outcome::InDoubt(_) => {
                st.in_doubt += 1;
                st.doubtful.push((a, b, amount));
            }
        }
    }
}

/// Sum every account under one GTM snapshot at REPEATABLE READ across all datanodes.
async fn read_total(
    gtm: &pgxc_gtm::client::GtmClient,
    nodes: &Nodes,
) -> Result<(String, i64, Vec<(i64, i64)>), PgError> {
    let (gxid, snap) = deadline("begin", gtm.begin_snapshot()).await?;
    let mut seen = format!("transaction {gxid} with snapshot {snap:?}:");
    let mut total = 0i64;
    let mut rows = Vec::new();
    let mut result = Ok(());
    for d in 1..=DATANODES {
        let dn = format!("dn{d}");
        let r = async {
            let conn = nodes.connect(&dn).await?;
            let mut p = Part::begin(conn, gxid, true, true).await?;
            let r = p.execute(snap.clone(), "SELECT id, bal FROM acc").await;
            let _ = twophase::Participant::rollback(&mut p).await;
            r
        }
        .await;
        match r {
            Ok(r) => {
                seen.push_str(&format!(" {dn} {:?}", r.rows));
                for row in r.rows {
                    match row.as_slice() {
                        [Value::Int8(id), Value::Int8(b)] => {
                            total += b;
                            rows.push((*id, *b));
                        }
                        other => {
                            result = Err(PgError::new(
                                pgxc_common::SqlState::InternalError,
                                format!("unexpected row {other:?}"),
                            ))
                        }
                    }
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = GtmLog(gtm).commit(gxid).await;
    result.map(|()| (seen, total, rows))
}

/// Reads the total now and then; a complete read that does not see the constant total is a
/// fractured read.
async fn reader(
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
) {
    let Ok(gtm) = GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await else {
        return;
    };
    let nodes = Nodes {
        coordinator: "reader".into(),
        addrs,
    };
    while !stop.load(Ordering::SeqCst) {
        if let Ok((g, total, rows)) = read_total(&gtm, &nodes).await {
            let mut st = stats.lock().unwrap();
            if total != accounts() * START || rows.len() as i64 != accounts() {
                st.bad_reads.push(format!("{g} (total {total})"));
            } else {
                st.reads += 1;
            }
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// The coordinators' in-doubt resolver: finishes gids no live transfer is committing.
async fn background_resolver(
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
    stop: Arc<AtomicBool>,
    inflight: Arc<Mutex<BTreeSet<String>>>,
) {
    let Ok(gtm) = GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await else {
        return;
    };
    let names: Vec<String> = addrs.keys().cloned().collect();
    let nodes = Nodes {
        coordinator: "resolver".into(),
        addrs,
    };
    while !stop.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(700)).await;
        let idle = |p: &twophase::InDoubt| !inflight.lock().unwrap().contains(&p.gid);
        let _ = twophase::resolve_when(&GtmLog(&gtm), &nodes, idle, idle, false).await;
        // Implicit gids a datanode holds that the GTM forgot (a PREPARE that failed on a dying
        // disk after reaching it): rolled back. Never one a live client is committing: its GXID
        // is running at the GTM until it is done.
        let orphans = Orphans {
            gtm: &gtm,
            nodes: &nodes,
        };
        let _ = twophase::roll_back_orphans(&GtmLog(&gtm), &nodes, &orphans, &names, false).await;
    }
}

/// After healing: resolve until neither the GTM nor any datanode holds a prepared transaction
/// (within `LIVENESS_BOUND`), then read the total.
async fn final_checks(
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
) -> Result<Vec<(i64, i64)>, String> {
    let gtm = GtmGroup::connect(gtm_addrs, LIVENESS_BOUND).await?;
    let nodes = Nodes {
        coordinator: "checker".into(),
        addrs: addrs.clone(),
    };
    let log = GtmLog(&gtm);
    let end = Instant::now() + LIVENESS_BOUND;
    let mut last = String::new();
    loop {
        if Instant::now() > end {
            return Err(format!(
                "prepared transactions left {LIVENESS_BOUND:?} after healing: {last}"
            ));
        }
        let _ = twophase::resolve(&log, &nodes, |_| true, false).await;
        let names: Vec<String> = addrs.keys().cloned().collect();
        let orphans = Orphans {
            gtm: &gtm,
            nodes: &nodes,
        };
        let _ = twophase::roll_back_orphans(&log, &nodes, &orphans, &names, false).await;
        let mut left = Vec::new();
        let mut complete = true;
        match log.list_prepared().await {
            Ok(v) => left.extend(v.into_iter().map(|p| format!("GTM:{}", p.gid))),
            Err(_) => complete = false,
        }
        for name in addrs.keys() {
            match nodes.list_prepared(name).await {
                Ok(v) => left.extend(v.into_iter().map(|(g, _)| format!("{name}:{g}"))),
                Err(_) => complete = false,
            }
        }
        if complete && left.is_empty() {
            break;
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
    loop {
        match read_total(&gtm, &nodes).await {
            Ok((_, _, rows)) if rows.len() as i64 == accounts() => return Ok(rows),
            Ok((seen, total, rows)) => {
                return Err(format!(
                    "{} accounts after healing (total {total}): {seen}",
                    rows.len()
                ))
            }
            Err(e) if Instant::now() > end => return Err(format!("final read: {e}")),
            Err(_) => sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Check that `balances` are the starting balances plus every acknowledged transfer plus a subset of
/// the in-doubt ones (tried exhaustively up to 16 of them; beyond that only the acknowledged part
/// and the total are checked).
fn explain_balances(
    balances: &[(i64, i64)],
    acked: &[(i64, i64, i64)],
    doubtful: &[(i64, i64, i64)],
) -> Result<(), String> {
    let mut expected: BTreeMap<i64, i64> = (1..=accounts()).map(|id| (id, START)).collect();
    for (a, b, amount) in acked {
        *expected.entry(*a).or_default() -= amount;
        *expected.entry(*b).or_default() += amount;
    }
    let got: BTreeMap<i64, i64> = balances.iter().copied().collect();
    let diff: BTreeMap<i64, i64> = expected
        .iter()
        .map(|(id, e)| (*id, got.get(id).copied().unwrap_or(i64::MIN) - e))
        .filter(|(_, d)| *d != 0)
        .collect();
    if diff.is_empty() {
        return Ok(());
    }
    if doubtful.len() > 16 {
        return Ok(());
    }
    for mask in 1u32..(1 << doubtful.len()) {
        let mut d: BTreeMap<i64, i64> = BTreeMap::new();
        for (k, (a, b, amount)) in doubtful.iter().enumerate() {
            if mask & (1 << k) != 0 {
                *d.entry(*a).or_default() -= amount;
                *d.entry(*b).or_default() += amount;
            }
        }
        d.retain(|_, v| *v != 0);
        if d == diff {
            return Ok(());
        }
    }
    Err(format!(
        "final balances {got:?} are not the start plus the {} acknowledged transfers (differences {diff:?}) plus any subset of the {} in-doubt ones",
        acked.len(),
        doubtful.len()
    ))
}
