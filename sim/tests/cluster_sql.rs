//! Whole-cluster bank through the production coordinator, under madsim: 3 GTM replicas, a GTM
//! proxy, 3 datanodes and 2 coordinators (`pgxc_coordinator::node::Coordinator`, each on its own
//! simulated machine with its catalog engine on its own simulated disk, its in-doubt resolver
//! running and its coordinator-protocol endpoint served to the other). Coordinator 1 reaches the
//! GTM through the proxy, coordinator 2 directly. Clients speak SQL through
//! `CoordSession::execute` (the session API the pgwire front end calls) on either coordinator.
//!
//! Setup (no faults): `CREATE TABLE accounts (...) DISTRIBUTE BY HASH(id)` on coordinator 1 (the
//! DDL runs on every datanode and both catalogs under two-phase commit), the accounts inserted,
//! then each account's datanode read back with `EXECUTE DIRECT`; both coordinators must see the
//! same table. A replicated table `audit (id, transfers) DISTRIBUTE BY REPLICATION` gets one row
//! `(1, 0)`.
//!
//! Phase 1 (safety, faults on): transfer clients run `BEGIN; UPDATE ...; UPDATE ...; COMMIT` at
//! READ COMMITTED between accounts on different datanodes, through a random coordinator, half of
//! them also `UPDATE audit SET transfers = transfers + 1 WHERE id = 1` (the replicated hot row,
//! written on every datanode in the same transaction); a
//! REPEATABLE READ reader runs `SELECT sum(balance), count(*) FROM accounts` twice in one
//! transaction, and every complete read must see the constant total and every account. Faults
//! chosen by the seed: coordinator power failures at any moment (between PREPARE and COMMIT
//! PREPARED included: the machine, its sessions and its datanode connections die; its catalog
//! disk loses unsynced writes) and restarts from the same disk; datanode power failures and
//! restarts; GTM replica power failures and restarts; isolated nodes and one-way (asymmetric) partitions
//! between a coordinator and a datanode; packet loss and latency; a
//! datanode or coordinator paused for 1–5 simulated s (its tasks stop, its timers and sockets
//! go on), then resumed: it wakes up late.
//! Phase 2 (liveness): everything healed and restarted; within a bounded simulated time the
//! coordinators' own resolvers must leave no prepared transaction on the GTM or any datanode;
//! the final balances (read through a coordinator) must be the start plus every transfer
//! acknowledged as committed plus a subset of the in-doubt ones, and the total exact; the
//! replicated `audit` row read on each datanode (`EXECUTE DIRECT`) must be identical on all of
//! them and between the acknowledged transfers that updated it and those plus the in-doubt ones
//! that did; no GXID issued twice to the coordinators' sessions (every GXID a session began,
//! observed through the coordinator's `session` tracing span, [`GxidLog`]).
//!
//! `PGXC_SIM_NO_FAULTS=1` turns faults off. Seeds: `PGXC_SIM_SEEDS` (default 20), each in its own
//! process; a failure prints the replay command
//! (`PGXC_SIM_SEED=<n> cargo sim-test --test cluster_sql -- --nocapture`).
#![cfg(madsim)]

use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use pgxc_common::{PgError, SqlState};
use pgxc_sim::cluster::{deadline, Datanode, GtmGroup, GtmLog, Nodes};
use pgxc_sim::coord::{CoordSetup, GtmProxyNode, GxidLog, SimCoordinator, SqlClient};
use pgxc_sim::harness::{run_seeds, HistoryHash};
use pgxc_sql::types::Value;
use pgxc_sql::QueryResult;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const DATANODES: u64 = 3;
const COORDINATORS: u64 = 2;
const ACCOUNTS: i64 = 12;
const START: i64 = 100;
const CLIENTS: usize = 3;
const SAFETY: Duration = Duration::from_secs(10);
const LIVENESS_BOUND: Duration = Duration::from_secs(60);
/// A client gives up on a query string after this long (simulated) and drops its session, as
/// an application with a statement timeout would; the outcome of a COMMIT is then unknown.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn cluster_sql() {
    run_seeds("cluster_sql", 20, 2, Duration::from_secs(900), scenario);
}

#[derive(Default)]
struct Stats {
    committed: u64,
    rolled_back: u64,
    in_doubt: u64,
    failed_early: u64,
    /// SQLSTATE → how many transfers failed before COMMIT with it.
    early_codes: BTreeMap<String, u64>,
    /// SQLSTATE → how many COMMITs answered it.
    commit_codes: BTreeMap<String, u64>,
    reads: u64,
    /// Transfers acknowledged as committed: (from, to, amount).
    acked: Vec<(i64, i64, i64)>,
    /// Transfers whose outcome is unknown.
    doubtful: Vec<(i64, i64, i64)>,
    /// Acknowledged transfers that also updated the replicated `audit` row.
    acked_audit: i64,
    /// In-doubt transfers that also updated the replicated `audit` row.
    doubtful_audit: i64,
    /// Complete reads that saw the wrong total or the wrong number of accounts.
    bad_reads: Vec<String>,
}

/// The shared view of the coordinators clients pick from.
type Coords = Arc<Vec<Mutex<SimCoordinator>>>;

/// Per coordinator: how many clients are waiting for a COMMIT there now.
type InCommit = Arc<Mutex<Vec<u32>>>;

async fn scenario() -> Result<u64, String> {
    // Every GXID the sessions are issued (the "no GXID issued twice" checker).
    let gxids = GxidLog::default();
    let _observing = gxids.install();
    let handle = Handle::current();
    let gtm = GtmGroup::start(&handle);
    let proxy = GtmProxyNode::start(&handle, 1, gtm.addrs.clone());
    let mut dns: Vec<Datanode> = (1..=DATANODES)
        .map(|i| Datanode::start(&handle, i, gtm.addrs.clone()))
        .collect();
    let dn_addrs: Vec<(String, String)> = dns
        .iter()
        .map(|d| (d.name.clone(), d.addr.clone()))
        .collect();
    let coords: Coords = Arc::new(
        (1..=COORDINATORS)
            .map(|i| {
                let peers = (1..=COORDINATORS)
                    .filter(|j| *j != i)
                    .map(|j| (format!("cn{j}"), SimCoordinator::addr_of(j)))
                    .collect();
                let setup = CoordSetup {
                    // Coordinator 1 through the GTM proxy, the others directly.
                    gtm: if i == 1 {
                        vec![proxy.addr.clone()]
                    } else {
                        gtm.addrs.clone()
                    },
                    datanodes: dn_addrs.clone(),
                    peers,
                };
                Mutex::new(SimCoordinator::start(&handle, i, setup))
            })
            .collect(),
    );
    let clients = handle
        .create_node()
        .name("clients")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 3, 1)))
        .build();

    // --- setup: the table and its accounts, through coordinator 1 (no faults yet) ----------------------
    let placement = {
        let coords = coords.clone();
        clients.spawn(async move { setup(coords).await })
    };
    let placement = placement.await.map_err(|e| format!("setup task: {e}"))??;

    // --- phase 1: transfers, reads, faults ------------------------------------------------------------
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let in_commit: InCommit = Arc::new(Mutex::new(vec![0; COORDINATORS as usize]));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (coords, stop, stats, placement, in_commit) = (
            coords.clone(),
            stop.clone(),
            stats.clone(),
            placement.clone(),
            in_commit.clone(),
        );
        tasks.push(clients.spawn(async move {
            transfer_client(c, coords, placement, stop, stats, in_commit).await
        }));
    }
    {
        let (coords, stop, stats) = (coords.clone(), stop.clone(), stats.clone());
        tasks.push(clients.spawn(async move { reader(coords, stop, stats).await }));
    }

    let mut rng = thread_rng();
    let faults_on = std::env::var("PGXC_SIM_NO_FAULTS").is_err();
    let net = madsim::net::NetSim::current();
    let mut gtm_down: Option<usize> = None;
    // The paused node: (its madsim id, its name, when it is resumed).
    let mut paused: Option<(madsim::task::NodeId, String, Instant)> = None;
    // One-way clogged links (asymmetric partitions) to unclog when the network heals.
    let mut one_way: Vec<(madsim::task::NodeId, madsim::task::NodeId)> = Vec::new();
    let mut faults = Vec::new();
    let phase_end = Instant::now() + SAFETY;
    while faults_on && Instant::now() < phase_end {
        sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        if let Some((node, name, until)) = paused.take() {
            if Instant::now() >= until {
                handle.resume(node);
                faults.push(format!("resume {name}"));
            } else {
                paused = Some((node, name, until));
            }
        }
        match rng.gen_range(0..11) {
            // Coordinators: power failure at a random moment, or restart.
            0..=3 => {
                let i = rng.gen_range(0..coords.len());
                let none_down = coords.iter().all(|c| !c.lock().unwrap().down);
                let down = coords[i].lock().unwrap().down;
                if down {
                    let mut c = coords[i].lock().unwrap();
                    c.restart(&handle);
                    faults.push(format!("restart {}", c.name));
                } else if none_down {
                    // Half the time aim at the commit protocol: wait (up to 2 s) until a client
                    // is in COMMIT on this coordinator, then crash it a few ms later (PREPARE,
                    // the decision and COMMIT PREPARED are in flight then).
                    let mut aimed = String::new();
                    if rng.gen_bool(0.5) {
                        let until = Instant::now() + Duration::from_secs(2);
                        while in_commit.lock().unwrap()[i] == 0 && Instant::now() < until {
                            sleep(Duration::from_millis(1)).await;
                        }
                        if in_commit.lock().unwrap()[i] > 0 {
                            let ms = rng.gen_range(0..25u64);
                            sleep(Duration::from_millis(ms)).await;
                            aimed = format!(" {ms} ms into a COMMIT");
                        }
                    }
                    let mut c = coords[i].lock().unwrap();
                    let report = c.crash(&handle, &mut rng);
                    faults.push(format!("crash {}{aimed} ({report:?})", c.name));
                }
            }
            // Datanodes: power failure or restart (one down at a time).
            4..=5 => {
                let i = rng.gen_range(0..dns.len());
                if dns[i].down {
                    dns[i].restart(&handle);
                    faults.push(format!("restart {}", dns[i].name));
                } else if dns.iter().all(|d| !d.down) {
                    let report = dns[i].crash(&handle, &mut rng);
                    faults.push(format!("crash {} ({report:?})", dns[i].name));
                }
            }
            // GTM replicas: one at a time, power failure or restart.
            6 => match gtm_down.take() {
                Some(g) => {
                    handle.restart(gtm.nodes[g]);
                    faults.push(format!("restart gtm{}", g + 1));
                }
                None => {
                    let g = rng.gen_range(0..gtm.nodes.len());
                    let report = gtm.disks[g].crash(&mut rng);
                    handle.kill(gtm.nodes[g]);
                    gtm_down = Some(g);
                    faults.push(format!("crash gtm{} ({report:?})", g + 1));
                }
            },
            // Network: isolate a datanode or a coordinator, heal, or change loss and latency.
            7 => match rng.gen_range(0..3) {
                0 => {
                    let i = rng.gen_range(0..dns.len());
                    net.clog_node(dns[i].node);
                    faults.push(format!("isolate {}", dns[i].name));
                }
                1 => {
                    let i = rng.gen_range(0..coords.len());
                    let c = coords[i].lock().unwrap();
                    net.clog_node(c.node);
                    faults.push(format!("isolate {}", c.name));
                }
                _ => {
                    // An asymmetric partition: one direction between a coordinator and a
                    // datanode drops everything, the other still delivers.
                    let d = &dns[rng.gen_range(0..dns.len())];
                    let c = coords[rng.gen_range(0..coords.len())].lock().unwrap();
                    let (src, dst, what) = if rng.gen_bool(0.5) {
                        (c.node, d.node, format!("{} -> {}", c.name, d.name))
                    } else {
                        (d.node, c.node, format!("{} -> {}", d.name, c.name))
                    };
                    net.clog_link(src, dst);
                    one_way.push((src, dst));
                    faults.push(format!("isolate one way {what}"));
                }
            },
            8 => {
                heal_network(&net, &dns, &coords, &mut one_way);
                faults.push("heal partitions".into());
            }
            // A datanode or a coordinator stops running for 1-5 s (a long GC pause, a stopped
            // VM) while its timers and the network go on, then wakes up late.
            10 => {
                if paused.is_none() {
                    let (node, name) = if rng.gen_bool(0.5) {
                        let d = &dns[rng.gen_range(0..dns.len())];
                        (d.node, d.name.clone())
                    } else {
                        let c = coords[rng.gen_range(0..coords.len())].lock().unwrap();
                        (c.node, c.name.clone())
                    };
                    let ms = rng.gen_range(1000..=5000u64);
                    handle.pause(node);
                    faults.push(format!("pause {name} for {ms} ms"));
                    paused = Some((node, name, Instant::now() + Duration::from_millis(ms)));
                }
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
    }
    if !faults_on {
        sleep(SAFETY).await;
    }

    // --- phase 2: heal, stop the workload, let the coordinators resolve everything ---------------------
    if let Some((node, name, _)) = paused.take() {
        handle.resume(node);
        faults.push(format!("heal: resume {name}"));
    }
    heal_network(&net, &dns, &coords, &mut one_way);
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
    for c in coords.iter() {
        let mut c = c.lock().unwrap();
        if c.down {
            c.restart(&handle);
            faults.push(format!("heal: restart {}", c.name));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.map_err(|e| format!("workload task: {e}"))?;
    }
    let healed = Instant::now();
    let fin = {
        let coords = coords.clone();
        let gtm_addrs = gtm.addrs.clone();
        let dn_addrs: BTreeMap<String, String> = dn_addrs.iter().cloned().collect();
        clients.spawn(async move { final_checks(coords, gtm_addrs, dn_addrs).await })
    };
    let (balances, audit) = fin
        .await
        .map_err(|e| format!("final task: {e}"))?
        .map_err(|e| format!("{e}; faults: {faults:?}"))?;
    let total: i64 = balances.iter().map(|(_, b)| b).sum();
    let st = stats.lock().unwrap();
    if let Err(e) = explain_balances(&balances, &st.acked, &st.doubtful) {
        return Err(format!("{e}; faults: {faults:?}"));
    }
    // The replicated row: the same on every datanode, and counting every acknowledged transfer
    // that updated it plus some of the in-doubt ones.
    if audit.iter().any(|n| *n != audit[0]) {
        return Err(format!(
            "replicated table audit differs between datanodes (dn1.. : {audit:?}); faults: {faults:?}"
        ));
    }
    let (lo, hi) = (st.acked_audit, st.acked_audit + st.doubtful_audit);
    if !(lo..=hi).contains(&audit[0]) {
        return Err(format!(
            "audit.transfers is {} on every datanode, expected {lo}..={hi} ({} acknowledged and {} in-doubt transfers updated it); faults: {faults:?}",
            audit[0], st.acked_audit, st.doubtful_audit
        ));
    }
    // No GXID issued twice to the sessions.
    let issued = gxids.issued();
    // Every acknowledged transfer ran under a GXID the observer must have seen: fewer means the
    // observer lost track of the session span (renamed field?) and the check would be vacuous.
    if issued.len() < st.acked.len() {
        return Err(format!(
            "the GXID observer saw {} GXIDs but {} transfers were acknowledged",
            issued.len(),
            st.acked.len()
        ));
    }
    if let Some(g) = gxids.first_duplicate() {
        return Err(format!(
            "GXID {g} issued twice to the coordinators' sessions ({} issued); faults: {faults:?}",
            issued.len()
        ));
    }
    if let Some(bad) = st.bad_reads.first() {
        return Err(format!(
            "fractured read (total must be {}): {bad}; final total {total}; faults: {faults:?}",
            ACCOUNTS * START
        ));
    }
    if total != ACCOUNTS * START {
        return Err(format!(
            "final total {total}, expected {}; faults: {faults:?}",
            ACCOUNTS * START
        ));
    }
    if st.committed == 0 {
        return Err(format!("no transfer committed; faults: {faults:?}"));
    }
    let kinds = [
        "crash cn",
        "crash dn",
        "crash gtm",
        "isolate",
        "loss",
        "pause",
    ]
    .map(|k| faults.iter().filter(|f| f.starts_with(k)).count());
    let aimed = faults
        .iter()
        .filter(|f| f.contains("into a COMMIT"))
        .count();
    println!(
        "PGXC_SIM_SUMMARY {} committed, {} rolled back {:?}, {} in doubt, {} failed before commit {:?}, {} consistent reads, audit {} on every datanode ({}..={}), {} distinct GXIDs issued to sessions, {} faults (coordinator/datanode/GTM crashes, isolations, loss changes, pauses: {kinds:?}; {aimed} coordinator crashes during a COMMIT), clean {:.1} s after healing",
        st.committed,
        st.rolled_back,
        st.commit_codes,
        st.in_doubt,
        st.failed_early,
        st.early_codes,
        st.reads,
        audit[0],
        lo,
        hi,
        issued.len(),
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
    h.add(&balances);
    h.add(&audit);
    h.add(&issued);
    Ok(h.value())
}

fn heal_network(
    net: &madsim::net::NetSim,
    dns: &[Datanode],
    coords: &Coords,
    one_way: &mut Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
) {
    for (src, dst) in one_way.drain(..) {
        net.unclog_link(src, dst);
    }
    for d in dns {
        net.unclog_node(d.node);
    }
    for c in coords.iter() {
        net.unclog_node(c.lock().unwrap().node);
    }
}

/// A session on coordinator `i`, waiting up to `within` for it to accept connections.
async fn connect(coords: &Coords, i: usize, within: Duration) -> Result<SqlClient, PgError> {
    let end = Instant::now() + within;
    loop {
        let r = coords[i].lock().unwrap().connect();
        match r {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `sql` on `client` with the client's timeout (08007 on timeout: the outcome is unknown).
async fn run(client: &SqlClient, sql: &str) -> Result<Vec<QueryResult>, PgError> {
    match tokio::time::timeout(CLIENT_TIMEOUT, client.execute(sql)).await {
        Ok(r) => r,
        Err(_) => Err(PgError::new(
            SqlState::TransactionResolutionUnknown,
            format!("no answer to {sql:?} within {CLIENT_TIMEOUT:?} (simulated)"),
        )),
    }
}

/// Create the table and the accounts through coordinator 1; return each account's datanode.
async fn setup(coords: Coords) -> Result<BTreeMap<i64, String>, String> {
    let c1 = connect(&coords, 0, Duration::from_secs(120))
        .await
        .map_err(|e| format!("cn1 never came up: {e}"))?;
    let create = "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL) \
                  DISTRIBUTE BY HASH(id)";
    // The datanodes and the other coordinator may still be booting: retry the DDL a while.
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        match run(&c1, create).await {
            Ok(_) => break,
            Err(e) if Instant::now() > end => return Err(format!("{create}: {e}")),
            Err(e) => {
                tracing::debug!("setup: {create}: {e}");
                sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let rows: Vec<String> = (1..=ACCOUNTS)
        .map(|id| format!("({id}, {START})"))
        .collect();
    let insert = format!("INSERT INTO accounts VALUES {}", rows.join(", "));
    let r = run(&c1, &insert)
        .await
        .map_err(|e| format!("{insert}: {e}"))?;
    let tag = r.last().map(|r| r.tag.clone()).unwrap_or_default();
    if tag != format!("INSERT 0 {ACCOUNTS}") {
        return Err(format!("{insert}: tag {tag:?}"));
    }
    // The replicated hot row a share of the transfers also updates.
    for sql in [
        "CREATE TABLE audit (id int PRIMARY KEY, transfers bigint NOT NULL) \
         DISTRIBUTE BY REPLICATION",
        "INSERT INTO audit VALUES (1, 0)",
    ] {
        run(&c1, sql).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    let audit = audit_on_datanodes(&c1).await?;
    if audit != vec![0; DATANODES as usize] {
        return Err(format!("audit after setup, per datanode: {audit:?}"));
    }
    // Where each account lives, asked of each datanode.
    let mut placement = BTreeMap::new();
    for d in 1..=DATANODES {
        let q = format!("EXECUTE DIRECT ON (dn{d}) 'SELECT id FROM accounts'");
        let r = run(&c1, &q).await.map_err(|e| format!("{q}: {e}"))?;
        for row in r.last().map(|r| r.rows.clone()).unwrap_or_default() {
            match row.as_slice() {
                [Value::Int4(id)] => {
                    placement.insert(i64::from(*id), format!("dn{d}"));
                }
                other => return Err(format!("{q}: unexpected row {other:?}")),
            }
        }
    }
    if placement.len() as i64 != ACCOUNTS {
        return Err(format!("accounts placed: {placement:?}"));
    }
    let nodes: std::collections::BTreeSet<&String> = placement.values().collect();
    if nodes.len() < 2 {
        return Err(format!("all accounts on one datanode: {placement:?}"));
    }
    // The other coordinator got the table through the same DDL transaction.
    let c2 = connect(&coords, 1, Duration::from_secs(60))
        .await
        .map_err(|e| format!("cn2: {e}"))?;
    let (total, count) = read_once(&c2, "SELECT sum(balance), count(*) FROM accounts")
        .await
        .map_err(|e| format!("cn2 reading accounts: {e}"))?;
    if (total, count) != (ACCOUNTS * START, ACCOUNTS) {
        return Err(format!("cn2 sees total {total} in {count} accounts"));
    }
    Ok(placement)
}

/// The `(sum, count)` row of `sql`.
async fn read_once(client: &SqlClient, sql: &str) -> Result<(i64, i64), PgError> {
    let r = run(client, sql).await?;
    let row = r
        .last()
        .and_then(|r| r.rows.first())
        .cloned()
        .unwrap_or_default();
    let int = |v: &Value| match v {
        Value::Int8(n) => Some(*n),
        Value::Int4(n) => Some(i64::from(*n)),
        _ => None,
    };
    match row.as_slice() {
        [a, b] => match (int(a), int(b)) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(PgError::new(
                SqlState::InternalError,
                format!("unexpected row {row:?}"),
            )),
        },
        _ => Err(PgError::new(
            SqlState::InternalError,
            format!("unexpected row {row:?}"),
        )),
    }
}

/// One application client moving money between accounts on different datanodes until `stop`,
/// each transfer through a coordinator picked at random (a new session after any connection
/// failure).
async fn transfer_client(
    c: usize,
    coords: Coords,
    placement: BTreeMap<i64, String>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    in_commit: InCommit,
) {
    let mut rng = thread_rng();
    let mut session: Option<(usize, SqlClient)> = None;
    while !stop.load(Ordering::SeqCst) {
        let (ci, client) = match session.take() {
            Some(s) => s,
            None => {
                let i = rng.gen_range(0..coords.len());
                match connect(&coords, i, Duration::ZERO).await {
                    Ok(s) => (i, s),
                    Err(_) => {
                        sleep(Duration::from_millis(rng.gen_range(50..300))).await;
                        continue;
                    }
                }
            }
        };
        let a = rng.gen_range(1..=ACCOUNTS);
        let others: Vec<i64> = placement
            .iter()
            .filter(|(_, dn)| **dn != placement[&a])
            .map(|(id, _)| *id)
            .collect();
        let b = others[rng.gen_range(0..others.len())];
        let amount = rng.gen_range(1..=30i64);
        // Updates in account order on every transaction: no distributed deadlock (there is no
        // global deadlock detector, as in Postgres-XC).
        let mut steps = [(a, -amount), (b, amount)];
        steps.sort();
        // Half the transfers also count themselves on the replicated row, last (after the
        // accounts, so locks are still taken in one global order: accounts by id, then the audit
        // row, which the coordinator updates on the datanodes in node order).
        let audit = rng.gen_bool(0.5);
        let mut sqls: Vec<String> = steps
            .iter()
            .map(|(id, delta)| {
                format!("UPDATE accounts SET balance = balance + ({delta}) WHERE id = {id}")
            })
            .collect();
        if audit {
            sqls.push("UPDATE audit SET transfers = transfers + 1 WHERE id = 1".into());
        }
        let mut failed = run(&client, "BEGIN").await.err();
        for sql in sqls {
            if failed.is_some() {
                break;
            }
            match run(&client, &sql).await {
                Ok(r) if r.last().is_some_and(|r| r.tag == "UPDATE 1") => {}
                Ok(r) => {
                    failed = Some(PgError::new(
                        SqlState::InternalError,
                        format!("client {c}: {sql}: {:?}", r.last().map(|r| &r.tag)),
                    ))
                }
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            let alive = !matches!(
                e.code,
                SqlState::ConnectionFailure | SqlState::TransactionResolutionUnknown
            ) && run(&client, "ROLLBACK").await.is_ok();
            {
                let mut st = stats.lock().unwrap();
                st.failed_early += 1;
                *st.early_codes.entry(e.code.code().to_string()).or_default() += 1;
            }
            if alive {
                session = Some((ci, client));
            }
            sleep(Duration::from_millis(rng.gen_range(50..300))).await;
            continue;
        }
        in_commit.lock().unwrap()[ci] += 1;
        let r = run(&client, "COMMIT").await;
        in_commit.lock().unwrap()[ci] -= 1;
        let mut st = stats.lock().unwrap();
        match r {
            Ok(r) if r.last().is_some_and(|r| r.tag == "COMMIT") => {
                st.committed += 1;
                st.acked.push((a, b, amount));
                st.acked_audit += i64::from(audit);
                session = Some((ci, client));
            }
            Ok(r) => {
                // ROLLBACK: the block had failed.
                st.rolled_back += 1;
                *st.commit_codes
                    .entry(r.last().map(|r| r.tag.clone()).unwrap_or_default())
                    .or_default() += 1;
                session = Some((ci, client));
            }
            Err(e) => {
                *st.commit_codes
                    .entry(e.code.code().to_string())
                    .or_default() += 1;
                // 08007: a participant or the decision could not be confirmed; 08006: the
                // coordinator died during COMMIT (or the client timed out). Anything else: the
                // coordinator rolled it back everywhere.
                if matches!(
                    e.code,
                    SqlState::ConnectionFailure | SqlState::TransactionResolutionUnknown
                ) {
                    st.in_doubt += 1;
                    st.doubtful.push((a, b, amount));
                    st.doubtful_audit += i64::from(audit);
                } else {
                    st.rolled_back += 1;
                    session = Some((ci, client));
                }
            }
        }
    }
}

/// Reads the total now and then at REPEATABLE READ through a random coordinator: two reads in
/// one transaction, each of which must see every account and the constant total.
async fn reader(coords: Coords, stop: Arc<AtomicBool>, stats: Arc<Mutex<Stats>>) {
    let mut rng = thread_rng();
    while !stop.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(150)).await;
        let i = rng.gen_range(0..coords.len());
        let Ok(client) = connect(&coords, i, Duration::ZERO).await else {
            continue;
        };
        if run(&client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .is_err()
        {
            continue;
        }
        for k in 0..2 {
            match read_once(&client, "SELECT sum(balance), count(*) FROM accounts").await {
                Ok((total, count)) => {
                    let mut st = stats.lock().unwrap();
                    if total != ACCOUNTS * START || count != ACCOUNTS {
                        st.bad_reads.push(format!(
                            "cn{} read {k} of a REPEATABLE READ transaction: total {total} in {count} accounts",
                            i + 1
                        ));
                    } else {
                        st.reads += 1;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = run(&client, "COMMIT").await;
    }
}

/// The replicated `audit` row's `transfers`, read on each datanode in turn (`dn1`..) with
/// `EXECUTE DIRECT` through `client`.
async fn audit_on_datanodes(client: &SqlClient) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for d in 1..=DATANODES {
        let q = format!("EXECUTE DIRECT ON (dn{d}) 'SELECT transfers FROM audit'");
        let r = run(client, &q).await.map_err(|e| format!("{q}: {e}"))?;
        let rows = r.last().map(|r| r.rows.clone()).unwrap_or_default();
        match rows.as_slice() {
            [row] => match row.as_slice() {
                [Value::Int8(n)] => out.push(*n),
                other => return Err(format!("{q}: unexpected row {other:?}")),
            },
            other => return Err(format!("{q}: {} rows: {other:?}", other.len())),
        }
    }
    Ok(out)
}

/// After healing: wait (up to `LIVENESS_BOUND`) until the coordinators' resolvers have left no
/// prepared transaction on the GTM or any datanode, then read every balance through a
/// coordinator, and the replicated `audit` row on every datanode (`(balances, audit per
/// datanode)`).
async fn final_checks(
    coords: Coords,
    gtm_addrs: Vec<String>,
    dn_addrs: BTreeMap<String, String>,
) -> Result<(Vec<(i64, i64)>, Vec<i64>), String> {
    let gtm = GtmGroup::connect(gtm_addrs, LIVENESS_BOUND).await?;
    // Only to look: the resolving is the coordinators' own.
    let nodes = Nodes {
        coordinator: "checker".into(),
        addrs: dn_addrs.clone(),
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
        let mut left = Vec::new();
        let mut complete = true;
        match pgxc_cluster::twophase::DecisionLog::list_prepared(&log).await {
            Ok(v) => left.extend(v.into_iter().map(|p| format!("GTM:{}", p.gid))),
            Err(_) => complete = false,
        }
        for name in dn_addrs.keys() {
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
    let mut k = 0;
    let balances = loop {
        let r = async {
            let client = connect(&coords, k % coords.len(), Duration::from_secs(5)).await?;
            deadline(
                "final read",
                run(&client, "SELECT id, balance FROM accounts ORDER BY id"),
            )
            .await
        }
        .await;
        k += 1;
        match r {
            Ok(r) => {
                let rows = r.last().map(|r| r.rows.clone()).unwrap_or_default();
                let mut out = Vec::new();
                for row in &rows {
                    match row.as_slice() {
                        [Value::Int4(id), Value::Int4(b)] => {
                            out.push((i64::from(*id), i64::from(*b)))
                        }
                        other => return Err(format!("final read: unexpected row {other:?}")),
                    }
                }
                if out.len() as i64 != ACCOUNTS {
                    return Err(format!("{} accounts after healing: {out:?}", out.len()));
                }
                break out;
            }
            Err(e) if Instant::now() > end => return Err(format!("final read: {e}")),
            Err(_) => sleep(Duration::from_millis(300)).await,
        }
    };
    loop {
        let r = async {
            let client = connect(&coords, k % coords.len(), Duration::from_secs(5))
                .await
                .map_err(|e| e.to_string())?;
            audit_on_datanodes(&client).await
        }
        .await;
        k += 1;
        match r {
            Ok(audit) => return Ok((balances, audit)),
            Err(e) if Instant::now() > end => return Err(format!("final audit read: {e}")),
            Err(_) => sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Check that `balances` are the starting balances plus every acknowledged transfer plus a subset
/// of the in-doubt ones (tried exhaustively up to 16 of them; beyond that only the acknowledged
/// part and the total are checked).
fn explain_balances(
    balances: &[(i64, i64)],
    acked: &[(i64, i64, i64)],
    doubtful: &[(i64, i64, i64)],
) -> Result<(), String> {
    let mut expected: BTreeMap<i64, i64> = (1..=ACCOUNTS).map(|id| (id, START)).collect();
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
