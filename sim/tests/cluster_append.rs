//! Whole-cluster list-append under madsim, checked for snapshot isolation (issue 7's list-append
//! workload): 3 GTM replicas, 3 datanodes (the production coordinator-protocol server and SQL
//! engine on simulated disks and network) and coordinator sessions driving each transaction as a
//! coordinator does: a GXID and one snapshot from the GTM (REPEATABLE READ: one snapshot for the
//! whole transaction, on every datanode), `Begin`/`Execute` on each datanode touched, then
//! `pgxc_cluster::twophase::commit`.
//!
//! Data: `lists (k bigint PRIMARY KEY, v text)` with keys 1..=9, three per datanode (keys 1–3 on
//! dn1, 4–6 on dn2, 7–9 on dn3, the way `cluster_bank` places accounts); `v` is the list as
//! `,v1,v2,...`. `append(k, x)` is `UPDATE lists SET v = v || ',x' WHERE k = k` (x unique in the
//! history), `read(k)` is `SELECT v FROM lists WHERE k = k`. Each transaction has 1–4 such
//! micro-operations on random keys, so most span several datanodes (two-phase commit). They run
//! in key order (no distributed deadlock: there is no global deadlock detector, as in Postgres-XC).
//!
//! Phase 1 (safety, faults on, `pgxc_sim::workload::Faults`): 4 clients and one reader of every
//! list (think time between keys: a fractured read shows as G-single) record a history (each
//! transaction's operations with read results, and its outcome: committed, aborted, or unknown
//! when the commit outcome is in doubt), a background in-doubt resolver runs. Phase 2 (liveness):
//! everything healed, within 60 simulated s no prepared transaction is left anywhere; then every
//! list is read in full under one snapshot, and `pgxc_sim::elle::check` judges the history: any
//! G0, G1a, G1b, G1c, G-single, lost update, internal inconsistency, duplicate, incompatible
//! order, garbage read, or acknowledged append missing from the final lists fails the seed, and
//! the failure shows the cycle with each transaction's operations.
//!
//! Env: `PGXC_SIM_SEEDS` (default 50), `PGXC_SIM_SEED` (replay one), `PGXC_SIM_NO_FAULTS=1`,
//! `PGXC_SIM_HISTORY=1` (print the whole history, final lists and faults of a seed run as a child:
//! `PGXC_SIM_CHILD=1 PGXC_SIM_SEED=<n> PGXC_SIM_HISTORY=1 target/sim/debug/deps/cluster_append-<hash>
//! cluster_append --exact --nocapture`),
//! `PGXC_SIM_MISTAKE=commit_before_all_prepared|ack_before_durable|stale_snapshot_after_leader_change`
//! (the checker must catch them; docs/simulation.md has how often it does).
#![cfg(madsim)]

use madsim::rand::{thread_rng, Rng};
use madsim::runtime::Handle;
use pgxc_cluster::twophase::{self, implicit_gid, DecisionLog, InDoubt, Mistakes, Outcome};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_sim::cluster::{deadline, mistake, Datanode, GtmGroup, GtmLog, Nodes, Part};
use pgxc_sim::elle::{self, Key, Op, Txn, Value as Elem};
use pgxc_sim::harness::{run_seeds, HistoryHash};
use pgxc_sim::workload::{background_resolver, connect_retrying, resolve_everything, Faults};
use pgxc_sql::types::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{sleep, Instant};

const DATANODES: u64 = 3;
const PER_NODE: i64 = 3;
const CLIENTS: usize = 4;
/// Read-only clients reading every list (each key at a different moment: think time between keys).
const READERS: usize = 1;
const SAFETY: Duration = Duration::from_secs(10);
const LIVENESS_BOUND: Duration = Duration::from_secs(60);

fn keys() -> i64 {
    DATANODES as i64 * PER_NODE
}

/// The datanode holding key `k` (1-based keys, `PER_NODE` consecutive keys per datanode).
fn dn_of(k: Key) -> String {
    format!("dn{}", (k - 1) / PER_NODE + 1)
}

#[test]
fn cluster_append() {
    run_seeds("cluster_append", 50, 2, Duration::from_secs(900), scenario);
}

#[derive(Default)]
struct Stats {
    /// The history, each client's transactions in its order.
    history: Vec<Txn>,
    /// SQLSTATE → transactions that failed before commit with it.
    early_codes: BTreeMap<String, u64>,
}

async fn scenario() -> Result<u64, String> {
    let t0 = Instant::now();
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

    // --- setup: the lists table on every datanode (no faults yet) ------------------------------------
    let setup = {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        coord.spawn(async move { setup(gtm_addrs, addrs).await })
    };
    setup.await.map_err(|e| format!("setup task: {e}"))??;

    // --- phase 1: clients, resolver, faults --------------------------------------------------------------
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let inflight = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS + READERS {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        let (stop, stats, inflight) = (stop.clone(), stats.clone(), inflight.clone());
        tasks.push(coord.spawn(async move {
            append_client(c, t0, gtm_addrs, addrs, stop, stats, inflight).await
        }));
    }
    {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        let (stop, inflight) = (stop.clone(), inflight.clone());
        tasks.push(
            coord.spawn(async move { background_resolver(gtm_addrs, addrs, stop, inflight).await }),
        );
    }
    // The fault injector's own GTM client (on the coordinator machine): it asks who leads.
    let watcher = {
        let gtm_addrs = gtm.addrs.clone();
        coord
            .spawn(async move { GtmGroup::connect(gtm_addrs, Duration::from_secs(60)).await })
            .await
            .map_err(|e| format!("watcher task: {e}"))??
    };
    let mut faults = Faults::new(t0);
    let enabled = std::env::var("PGXC_SIM_NO_FAULTS").is_err();
    faults
        .inject(&handle, &gtm, &mut dns, &watcher, SAFETY, enabled)
        .await;

    // --- phase 2: heal, stop the workload, resolve everything, read every list -----------------------
    faults.heal(&handle, &gtm, &mut dns);
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.map_err(|e| format!("workload task: {e}"))?;
    }
    let healed = Instant::now();
    let fin = {
        let (gtm_addrs, addrs) = (gtm.addrs.clone(), addrs.clone());
        coord.spawn(async move { final_lists(gtm_addrs, addrs).await })
    };
    let (lists, lost_tables) = fin
        .await
        .map_err(|e| format!("final task: {e}"))?
        .map_err(|e| format!("{e}; faults: {:?}", faults.log))?;
    let clean_after = healed.elapsed();

    let st = stats.lock().unwrap();
    if std::env::var("PGXC_SIM_HISTORY").is_ok() {
        for t in 0..st.history.len() {
            println!("{}", elle::describe(&st.history, t));
        }
        println!("final lists: {lists:?}");
        println!("faults: {:#?}", faults.log);
    }
    let checked = elle::check(&st.history, &lists);
    let lost_note = if lost_tables.is_empty() {
        String::new()
    } else {
        format!("the acknowledged CREATE TABLE lists is gone on {lost_tables:?} (durability)\n")
    };
    if !checked.ok() || !lost_tables.is_empty() {
        return Err(format!(
            "list-append checker: {:?}\n{lost_note}{}faults: {:?}",
            checked.kinds().iter().map(|k| k.name()).collect::<Vec<_>>(),
            checked.report(),
            faults.log
        ));
    }
    let count = |o: elle::Outcome| st.history.iter().filter(|t| t.outcome == o).count();
    let committed = count(elle::Outcome::Committed) + count(elle::Outcome::CommittedLate);
    if committed == 0 {
        return Err(format!(
            "no transaction committed; faults: {:?}",
            faults.log
        ));
    }
    let elements: usize = lists.values().map(Vec::len).sum();
    println!(
        "PGXC_SIM_SUMMARY {} txns: {committed} committed ({} late), {} aborted {:?}, {} unknown; {} in the graph, edges ww/wr/rw/session {:?}; {elements} elements in the final lists; {} faults ({} unsynced disk writes lost), clean {:.1} s after healing",
        st.history.len(),
        count(elle::Outcome::CommittedLate),
        count(elle::Outcome::Aborted),
        st.early_codes,
        count(elle::Outcome::Unknown),
        checked.graph_txns,
        checked.edges,
        faults.log.len(),
        faults.lost_ops,
        clean_after.as_secs_f64()
    );
    let mut h = HistoryHash::new();
    h.add(&faults.log);
    h.add(&st.history);
    h.add(&lists);
    Ok(h.value())
}

/// Create the table and its empty lists on every datanode, each in its own one-phase transaction.
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
            .map(|k| format!("({k}, '')"))
            .collect();
        let conn = connect_retrying(&nodes, &name, Duration::from_secs(60))
            .await
            .map_err(|e| format!("{name} never came up: {e}"))?;
        let (gxid, snap) = deadline("begin", gtm.begin_snapshot())
            .await
            .map_err(|e| e.to_string())?;
        let mut part = Part::begin(conn, gxid, false, false)
            .await
            .map_err(|e| e.to_string())?;
        for sql in [
            "CREATE TABLE lists (k bigint PRIMARY KEY, v text)".to_string(),
            format!("INSERT INTO lists VALUES {}", rows.join(", ")),
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

/// The GTM as the decision record, noting whether ending the GXID there (one-phase `commit`, or
/// `forget` after COMMIT PREPARED everywhere) failed: then the client's commit is acknowledged but
/// the GXID may still be running in later snapshots (the resolver ends it).
struct RecordingLog<'a> {
    inner: GtmLog<'a>,
    end_failed: AtomicBool,
}

impl DecisionLog for RecordingLog<'_> {
    async fn prepare(&self, gxid: Gxid, gid: &str, nodes: Vec<String>) -> Result<(), PgError> {
        self.inner.prepare(gxid, gid, nodes).await
    }
    async fn decide(&self, gid: &str, commit: bool) -> Result<(), PgError> {
        self.inner.decide(gid, commit).await
    }
    async fn forget(&self, gid: &str) -> Result<(), PgError> {
        let r = self.inner.forget(gid).await;
        if r.is_err() {
            self.end_failed.store(true, Ordering::SeqCst);
        }
        r
    }
    async fn commit(&self, gxid: Gxid) -> Result<(), PgError> {
        let r = self.inner.commit(gxid).await;
        if r.is_err() {
            self.end_failed.store(true, Ordering::SeqCst);
        }
        r
    }
    async fn abort(&self, gxid: Gxid) -> Result<(), PgError> {
        self.inner.abort(gxid).await
    }
    async fn list_prepared(&self) -> Result<Vec<InDoubt>, PgError> {
        self.inner.list_prepared().await
    }
}

/// The list a `v` column holds (`,1,5,9` → `[1, 5, 9]`). Errors: XX000 on anything else.
fn parse_list(row: &[Value]) -> Result<Vec<Elem>, PgError> {
    let bad = || PgError::new(SqlState::InternalError, format!("unexpected row {row:?}"));
    let [Value::Text(s)] = row else {
        return Err(bad());
    };
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<Elem>().map_err(|_| bad()))
        .collect()
}

/// Run one transaction's micro-operations (already in key order) on the datanodes; returns the
/// operations that succeeded and the error that stopped it, if any.
async fn run_ops(
    nodes: &Nodes,
    gxid: Gxid,
    snap: &pgxc_common::Snapshot,
    plan: &[(Key, Option<Elem>)],
    parts: &mut Vec<Part>,
) -> (Vec<Op>, Option<PgError>) {
    let mut done = Vec::new();
    let mut rng = thread_rng();
    for (i, &(key, append)) in plan.iter().enumerate() {
        if i > 0 && rng.gen_bool(0.3) {
            // Think time: transactions overlap GTM leader changes and each other's commits.
            sleep(Duration::from_millis(rng.gen_range(1..150))).await;
        }
        let dn = dn_of(key);
        let found = parts
            .iter()
            .position(|p| twophase::Participant::name(p) == dn);
        let k = match found {
            Some(k) => k,
            None => {
                let r = match nodes.connect(&dn).await {
                    Ok(conn) => Part::begin(conn, gxid, true, false).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(p) => {
                        parts.push(p);
                        parts.len() - 1
                    }
                    Err(e) => return (done, Some(e)),
                }
            }
        };
        let r = match append {
            Some(x) => {
                let sql = format!("UPDATE lists SET v = v || ',{x}' WHERE k = {key}");
                match parts[k].execute(snap.clone(), &sql).await {
                    Ok(r) if r.tag == "UPDATE 1" => Ok(Op::Append { key, value: x }),
                    Ok(r) => Err(PgError::new(
                        SqlState::InternalError,
                        format!("append to key {key} on {dn}: {}", r.tag),
                    )),
                    Err(e) => Err(e),
                }
            }
            None => {
                let sql = format!("SELECT v FROM lists WHERE k = {key}");
                match parts[k].execute(snap.clone(), &sql).await {
                    Ok(r) if r.rows.len() == 1 => {
                        parse_list(&r.rows[0]).map(|values| Op::Read { key, values })
                    }
                    Ok(r) => Err(PgError::new(
                        SqlState::InternalError,
                        format!("read of key {key} on {dn}: {} rows", r.rows.len()),
                    )),
                    Err(e) => Err(e),
                }
            }
        };
        match r {
            Ok(op) => done.push(op),
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// One coordinator session running list-append transactions at REPEATABLE READ until `stop`
/// (clients `CLIENTS..` only read every list, one REPEATABLE READ transaction at a time).
async fn append_client(
    c: usize,
    t0: Instant,
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
    let mut rng = thread_rng();
    let mistakes = Mistakes {
        commit_before_all_prepared: mistake("commit_before_all_prepared"),
    };
    let mut next_value: Elem = (c as Elem + 1) * 1_000_000;
    while !stop.load(Ordering::SeqCst) {
        let n = rng.gen_range(1..=4);
        let mut plan: Vec<(Key, Option<Elem>)> = if c >= CLIENTS {
            (1..=keys()).map(|k| (k, None)).collect()
        } else {
            (0..n)
                .map(|_| {
                    let key = rng.gen_range(1..=keys());
                    let append = rng.gen_bool(0.5).then(|| {
                        next_value += 1;
                        next_value
                    });
                    (key, append)
                })
                .collect()
        };
        // Key order (stable: operations on one key keep their random order).
        plan.sort_by_key(|(k, _)| *k);
        let Ok((gxid, snap)) = deadline("begin", gtm.begin_snapshot()).await else {
            sleep(Duration::from_millis(100)).await;
            continue;
        };
        // The snapshot's time: its answer arrived now.
        let began = t0.elapsed().as_secs_f64();
        let snapshot_at = Some(t0.elapsed().as_nanos() as u64);
        let mut parts: Vec<Part> = Vec::new();
        let (ops, failed) = run_ops(&nodes, gxid, &snap, &plan, &mut parts).await;
        let label = |t0: Instant| {
            format!(
                "gxid {}, {began:.3}..{:.3} s",
                gxid.0,
                t0.elapsed().as_secs_f64()
            )
        };
        if let Some(e) = failed {
            for p in parts.iter_mut() {
                let _ = twophase::Participant::rollback(p).await;
            }
            let _ = GtmLog(&gtm).abort(gxid).await;
            {
                let mut st = stats.lock().unwrap();
                *st.early_codes.entry(e.code.code().to_string()).or_default() += 1;
                st.history.push(Txn {
                    client: c,
                    label: label(t0),
                    ops,
                    outcome: elle::Outcome::Aborted,
                    snapshot_at,
                    commit_at: None,
                });
            }
            sleep(Duration::from_millis(rng.gen_range(20..200))).await;
            continue;
        }
        let gid = implicit_gid(gxid);
        let log = RecordingLog {
            inner: GtmLog(&gtm),
            end_failed: AtomicBool::new(false),
        };
        inflight.lock().unwrap().insert(gid.clone());
        let commit_at = Some(t0.elapsed().as_nanos() as u64);
        let outcome = twophase::commit(&log, &nodes, gxid, &gid, &mut parts, mistakes).await;
        inflight.lock().unwrap().remove(&gid);
        let outcome = match outcome {
            Outcome::Committed { pending }
                if pending.is_empty() && !log.end_failed.load(Ordering::SeqCst) =>
            {
                elle::Outcome::Committed
            }
            Outcome::Committed { .. } => elle::Outcome::CommittedLate,
            Outcome::RolledBack(_) => elle::Outcome::Aborted,
            Outcome::InDoubt(_) => elle::Outcome::Unknown,
        };
        stats.lock().unwrap().history.push(Txn {
            client: c,
            label: label(t0),
            ops,
            outcome,
            snapshot_at,
            commit_at,
        });
    }
}

/// Every key's list, and the datanodes that lost the table.
type Lists = (BTreeMap<Key, Vec<Elem>>, Vec<String>);

/// After healing: no prepared transaction anywhere (within `LIVENESS_BOUND`), then every list
/// read in full under one REPEATABLE READ snapshot across the datanodes.
async fn final_lists(
    gtm_addrs: Vec<String>,
    addrs: BTreeMap<String, String>,
) -> Result<Lists, String> {
    let gtm = GtmGroup::connect(gtm_addrs, LIVENESS_BOUND).await?;
    let nodes = Nodes {
        coordinator: "checker".into(),
        addrs,
    };
    let end = Instant::now() + LIVENESS_BOUND;
    resolve_everything(&gtm, &nodes, LIVENESS_BOUND).await?;
    loop {
        match read_all(&gtm, &nodes).await {
            Ok((lists, lost)) if lists.len() as i64 == keys() => return Ok((lists, lost)),
            Ok((lists, _)) => return Err(format!("{} keys after healing: {lists:?}", lists.len())),
            Err(e) if Instant::now() > end => return Err(format!("final read: {e}")),
            Err(_) => sleep(Duration::from_millis(300)).await,
        }
    }
}

/// Every key's list under one GTM snapshot (REPEATABLE READ, read-only, on every datanode), and the
/// datanodes where the table itself is gone (42P01: its keys count as empty lists).
async fn read_all(gtm: &pgxc_gtm::client::GtmClient, nodes: &Nodes) -> Result<Lists, PgError> {
    let (gxid, snap) = deadline("begin", gtm.begin_snapshot()).await?;
    let mut lists = BTreeMap::new();
    let mut lost = Vec::new();
    let mut result = Ok(());
    for name in nodes.addrs.keys() {
        let r = async {
            let conn = nodes.connect(name).await?;
            let mut p = Part::begin(conn, gxid, true, true).await?;
            let r = p.execute(snap.clone(), "SELECT k, v FROM lists").await;
            let _ = twophase::Participant::rollback(&mut p).await;
            r
        }
        .await;
        match r {
            Ok(r) => {
                for row in &r.rows {
                    match row.as_slice() {
                        [Value::Int8(k), v] => match parse_list(std::slice::from_ref(v)) {
                            Ok(list) => {
                                lists.insert(*k, list);
                            }
                            Err(e) => result = Err(e),
                        },
                        other => {
                            result = Err(PgError::new(
                                SqlState::InternalError,
                                format!("unexpected row {other:?}"),
                            ))
                        }
                    }
                }
            }
            Err(e) if e.code == SqlState::UndefinedTable => {
                // The acknowledged CREATE TABLE itself was lost: every list of this datanode is
                // gone (the checker then reports each acknowledged append to it as lost).
                for k in 1..=keys() {
                    if dn_of(k) == *name {
                        lists.insert(k, Vec::new());
                    }
                }
                lost.push(name.clone());
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = GtmLog(gtm).commit(gxid).await;
    result.map(|()| (lists, lost))
}
