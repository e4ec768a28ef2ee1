//! GTM throughput: begin+snapshot+commit cycles per second through one GTM proxy, against a 3-replica Raft
//! group and against a single in-memory GTM (no Raft), in the same process and run, with the ratio.
//!
//! A cycle is `begin_snapshot` (one round trip: XC's begin + snapshot grouping) followed by `commit`.
//!
//! Three client shapes are measured for each setup:
//! - `64 conns`: 64 tasks, each with its own [`GtmClient`] (its own connection and session to the proxy);
//! - `64 embedded`: 64 tasks calling the proxy in-process (sharing the proxy's upstream link: the proxy
//!   embedded in a coordinator process, sessions reach it without a TCP hop);
//! - `64 shared`: 64 tasks sharing ONE [`GtmClient`] (one link, as a coordinator process would multiplex its
//!   backends).
//!
//! The setups are alternated (raft, memory, raft, memory, ...) so run-to-run noise is visible.
//!
//! Run: `cargo bench -p pgxc-gtm --bench gtm_cycles`. Environment:
//! - `PGXC_BENCH_SECS`: measured seconds per run (default 10);
//! - `PGXC_BENCH_WARMUP_SECS`: warm-up seconds per run (default 2);
//! - `PGXC_BENCH_ROUNDS`: how many raft/memory alternations (default 2);
//! - `PGXC_BENCH_CLIENTS`: client tasks (default 64);
//! - `PGXC_BENCH_SHAPES`: `conns`, `shared`, `embedded` or `all` (default all);
//! - `PGXC_BENCH_SETUPS`: `raft`, `memory` or `both` (default both);
//! - `PGXC_BENCH_WORKERS`: tokio worker threads (default: the number of cores).

use openraft::BasicNode;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::proxy::GtmProxy;
use pgxc_gtm::raft::{start_raft, RaftConfig};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_storage::Disk;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Target: cycles per second through the Raft group.
const TARGET_CYCLES: f64 = 200_000.0;
/// Target: Raft figure over the in-memory figure.
const TARGET_RATIO: f64 = 0.5;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn env_choice(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    Raft,
    Memory,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Raft => "raft x3",
            Setup::Memory => "in-memory",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// One GtmClient (connection) per task.
    Conns,
    /// All tasks share one GtmClient.
    Shared,
    /// All tasks call the proxy in-process: they share the proxy's own upstream link (the proxy embedded in
    /// the coordinator process, so sessions reach it without a TCP hop).
    Embedded,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Conns => "conns",
            Shape::Shared => "shared",
            Shape::Embedded => "embedded",
        }
    }
}

/// One measured run.
struct RunResult {
    setup: Setup,
    shape: Shape,
    clients: usize,
    cycles: u64,
    errors: u64,
    secs: f64,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.cycles as f64 / self.secs
    }
}

/// Removes the temporary data directories at the end (also on panic).
struct TempDirs(Vec<PathBuf>);

impl Drop for TempDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A running setup: its servers and the proxy clients connect to.
struct Running {
    servers: Vec<GtmServer>,
    proxy: GtmProxy,
}

async fn start_raft_group(dirs: &TempDirs) -> Running {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect();
    let members: BTreeMap<u64, BasicNode> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u64 + 1, BasicNode { addr: a.clone() }))
        .collect();
    let mut servers = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let node = start_raft(id, &Disk::real(&dirs.0[i]), RaftConfig::default())
            .await
            .expect("start raft");
        if id == 1 {
            node.initialize(members.clone()).await.expect("initialize");
        }
        servers.push(
            GtmServer::start_with_listener(l, ServerConfig::new(id, ""), Replication::Raft(node))
                .expect("start gtm server"),
        );
    }
    // Wait for a leader.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if servers.iter().any(|s| {
            let st = s.status();
            st.role == "leader" && st.leader.as_ref().map(|l| l.0) == Some(st.id)
        }) {
            break;
        }
        assert!(Instant::now() < until, "no raft leader within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxy = GtmProxy::start("127.0.0.1:0", addrs)
        .await
        .expect("start proxy");
    Running { servers, proxy }
}

async fn start_memory() -> Running {
    let srv = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .expect("start memory gtm");
    let proxy = GtmProxy::start("127.0.0.1:0", vec![srv.local_addr().to_string()])
        .await
        .expect("start proxy");
    Running {
        servers: vec![srv],
        proxy,
    }
}

/// Run `clients` tasks looping begin_snapshot → commit through `proxy` for `warmup` + `measure`.
async fn run_once(
    setup: Setup,
    shape: Shape,
    proxy: &GtmProxy,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> RunResult {
    let addr = vec![proxy.local_addr().to_string()];
    let mut handles: Vec<GtmClient> = Vec::with_capacity(clients);
    match shape {
        Shape::Conns => {
            for _ in 0..clients {
                handles.push(
                    GtmClient::connect(addr.clone(), ClientOptions::default())
                        .await
                        .expect("connect to proxy"),
                );
            }
        }
        Shape::Shared => {
            let c = GtmClient::connect(addr.clone(), ClientOptions::default())
                .await
                .expect("connect to proxy");
            for _ in 0..clients {
                handles.push(c.clone());
            }
        }
        Shape::Embedded => {
            for _ in 0..clients {
                handles.push(proxy.upstream().clone());
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for c in handles {
        let stop = stop.clone();
        let cycles = cycles.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match c.begin_snapshot().await {
                    Ok((gxid, _snap)) => match c.commit(gxid).await {
                        Ok(()) => {
                            cycles.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    let c0 = cycles.load(Ordering::Relaxed);
    let e0 = errors.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(measure).await;
    let c1 = cycles.load(Ordering::Relaxed);
    let e1 = errors.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    RunResult {
        setup,
        shape,
        clients,
        cycles: c1 - c0,
        errors: e1 - e0,
        secs,
    }
}

fn print_row(r: &RunResult) {
    println!(
        "{:<10} {:<7} {:>7} {:>11} {:>7.2} {:>12.0} {:>7}",
        r.setup.name(),
        r.shape.name(),
        r.clients,
        r.cycles,
        r.secs,
        r.rate(),
        r.errors
    );
}

fn best(results: &[RunResult], setup: Setup, shape: Shape) -> Option<f64> {
    results
        .iter()
        .filter(|r| r.setup == setup && r.shape == shape)
        .map(RunResult::rate)
        .fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x))))
}

fn mean(results: &[RunResult], setup: Setup, shape: Shape) -> Option<f64> {
    let v: Vec<f64> = results
        .iter()
        .filter(|r| r.setup == setup && r.shape == shape)
        .map(RunResult::rate)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let measure = Duration::from_secs(env_u64("PGXC_BENCH_SECS", 10).max(1));
    let warmup = Duration::from_secs(env_u64("PGXC_BENCH_WARMUP_SECS", 2));
    let rounds = env_u64("PGXC_BENCH_ROUNDS", 2).max(1);
    let clients = env_u64("PGXC_BENCH_CLIENTS", 64).max(1) as usize;
    let shapes: Vec<Shape> = match env_choice("PGXC_BENCH_SHAPES", "all").as_str() {
        "conns" => vec![Shape::Conns],
        "shared" => vec![Shape::Shared],
        "embedded" => vec![Shape::Embedded],
        _ => vec![Shape::Conns, Shape::Shared, Shape::Embedded],
    };
    let setups: Vec<Setup> = match env_choice("PGXC_BENCH_SETUPS", "both").as_str() {
        "raft" => vec![Setup::Raft],
        "memory" => vec![Setup::Memory],
        _ => vec![Setup::Raft, Setup::Memory],
    };

    let base = std::env::temp_dir().join(format!(
        "pgxc-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let dirs = TempDirs((1..=3).map(|i| base.join(format!("gtm{i}"))).collect());

    let workers = env_u64(
        "PGXC_BENCH_WORKERS",
        std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1),
    )
    .max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "gtm_cycles: {clients} clients through one proxy, warm-up {:?}, measured {:?} per run, {rounds} round(s), \
         {workers} worker thread(s); cycle = begin_snapshot + commit",
        warmup, measure
    );
    let results = rt.block_on(async {
        let raft = if setups.contains(&Setup::Raft) {
            Some(start_raft_group(&dirs).await)
        } else {
            None
        };
        let mem = if setups.contains(&Setup::Memory) {
            Some(start_memory().await)
        } else {
            None
        };
        println!(
            "\n{:<10} {:<7} {:>7} {:>11} {:>7} {:>12} {:>7}",
            "setup", "shape", "clients", "cycles", "seconds", "cycles/s", "errors"
        );
        let mut results = Vec::new();
        for _ in 0..rounds {
            for &setup in &setups {
                let running = match setup {
                    Setup::Raft => raft.as_ref(),
                    Setup::Memory => mem.as_ref(),
                }
                .expect("setup started");
                for &shape in &shapes {
                    let r = run_once(setup, shape, &running.proxy, clients, warmup, measure).await;
                    print_row(&r);
                    results.push(r);
                }
            }
        }
        for running in [raft, mem].into_iter().flatten() {
            running.proxy.shutdown().await;
            for s in running.servers {
                s.shutdown().await;
            }
        }
        results
    });
    drop(rt);
    drop(dirs);

    println!("\nsummary (mean of runs; best in brackets):");
    for &shape in &shapes {
        let r = mean(&results, Setup::Raft, shape);
        let m = mean(&results, Setup::Memory, shape);
        let rb = best(&results, Setup::Raft, shape);
        let mb = best(&results, Setup::Memory, shape);
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
        print!(
            "  {:<7} raft {:>9} [{:>9}] cycles/s, in-memory {:>9} [{:>9}] cycles/s",
            shape.name(),
            fmt(r),
            fmt(rb),
            fmt(m),
            fmt(mb)
        );
        if let (Some(r), Some(m)) = (r, m) {
            let ratio = r / m;
            println!(
                ", ratio raft/in-memory {ratio:.2}  | target >= {TARGET_CYCLES:.0}/s: {}, target ratio >= {TARGET_RATIO}: {}",
                if r >= TARGET_CYCLES { "MET" } else { "NOT MET" },
                if ratio >= TARGET_RATIO { "MET" } else { "NOT MET" }
            );
        } else {
            println!();
        }
    }
}
