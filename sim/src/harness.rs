//! Seed loop, replay instructions and determinism checks shared by every simulation suite.
//!
//! A suite calls [`run_seeds`] with a scenario `fn() -> Future<Output = Result<u64, String>>` returning a
//! history hash or a checker failure; the scenario reads its seed from [`current_seed`]. Each seed runs in a
//! fresh madsim runtime. A failure (checker error or
//! panic) prints the seed and the one command that replays it, then fails the test.
//!
//! Environment: `PGXC_SIM_SEEDS` (number of seeds; default per suite), `PGXC_SIM_SEED_BASE` (first seed,
//! default 1), `PGXC_SIM_SEED` (run exactly this one seed).

use std::future::Future;
use std::hash::Hasher;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// How one seed's run ended.
pub type Outcome = Result<u64, String>;

/// Seeds to run: `PGXC_SIM_SEED` alone, else `PGXC_SIM_SEEDS` seeds from `PGXC_SIM_SEED_BASE`.
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(one) = env_u64("PGXC_SIM_SEED") {
        return vec![one];
    }
    let n = env_u64("PGXC_SIM_SEEDS").unwrap_or(default_count);
    let base = env_u64("PGXC_SIM_SEED_BASE").unwrap_or(1);
    (base..base + n).collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The command that replays one seed of one test.
pub fn replay_command(test: &str, seed: u64) -> String {
    format!("PGXC_SIM_SEED={seed} cargo sim-test --test {test} -- --nocapture")
}

/// The seed of the running simulation.
pub fn current_seed() -> u64 {
    madsim::runtime::Handle::current().seed()
}

/// Run one seed in a fresh runtime on a fresh thread, turning a panic into an error.
///
/// The fresh thread matters: madsim seeds std's `HashMap` keys from the simulation seed, which only works if
/// nothing created a `RandomState` on that thread before the runtime (std initialises the keys once per
/// thread). Otherwise hash iteration orders inside dependencies vary from run to run.
pub fn run_one<Fut>(seed: u64, time_limit: Duration, scenario: fn() -> Fut) -> (Outcome, Duration)
where
    Fut: Future<Output = Outcome> + 'static,
{
    let joined = std::thread::Builder::new()
        .name(format!("sim-seed-{seed}"))
        .spawn(move || {
            let mut rt =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.set_time_limit(time_limit);
            let sim = std::cell::Cell::new(Duration::ZERO);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    let t0 = madsim::time::Instant::now();
                    let r = scenario().await;
                    sim.set(t0.elapsed());
                    r
                })
            }));
            let outcome = match result {
                Ok(r) => r,
                Err(p) => Err(panic_message(&p)),
            };
            (outcome, sim.get())
        })
        .expect("spawn a simulation thread")
        .join();
    joined.unwrap_or_else(|p| (Err(panic_message(&p)), Duration::ZERO))
}

/// Install the log subscriber for `PGXC_SIM_LOG` (e.g. `pgxc_gtm=debug`) on the calling thread's process,
/// before any simulation thread starts. Without timestamps: reading the clock would perturb the simulation.
fn init_logs() {
    if let Ok(filter) = std::env::var("PGXC_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
            .try_init();
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic (non-string payload)".into()
    }
}

/// Run `scenario` for every seed of [`seeds`], each in a fresh child process of this test binary, then re-run
/// the first `recheck` seeds in new processes and require the same history hash (determinism). Prints a line
/// per seed and, at the end, simulated seconds per wall second and per CPU second of the seed processes (the
/// simulated time of the seeds that passed). Panics (failing the test) listing each failed seed with the
/// command that replays it.
///
/// The re-runs also pass madsim's own determinism check (`Runtime::check_determinism`: the seed runs twice in
/// the child and every random draw must match); `PGXC_SIM_MADSIM_CHECK=1` turns it on for every child.
///
/// Why processes: some dependencies keep process-global state across madsim runtimes (tokio's random seed for
/// `select!` fairness and for picking one of a `watch`'s eight `Notify`s, madsim's task-id counter), so a seed
/// run after other seeds in the same process could take a different path than the same seed run alone. A
/// fresh process per seed makes every run exactly what its replay command reproduces. (pgxc's own code avoids
/// those paths: every `select!` is `biased`, and no second waiter sits on a `watch`.)
pub fn run_seeds<Fut>(
    test: &str,
    default_count: u64,
    recheck: usize,
    time_limit: Duration,
    scenario: fn() -> Fut,
) where
    Fut: Future<Output = Outcome> + 'static,
{
    if std::env::var("PGXC_SIM_CHILD").is_ok() {
        child(test, time_limit, scenario);
        return;
    }
    let list = seeds(default_count);
    let wall0 = std::time::Instant::now();
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let results = run_children(test, &list, parallel, false);
    let mut sim_total = Duration::ZERO;
    let mut failures = Vec::new();
    let mut hashes = Vec::new();
    for (seed, r) in list.iter().zip(&results) {
        match r {
            Ok((h, sim, summary)) => {
                sim_total += *sim;
                println!(
                    "{test}: seed {seed} ok, history {h:016x}, {:.1} simulated s; {summary}",
                    sim.as_secs_f64()
                );
                hashes.push((*seed, *h));
            }
            Err(e) => {
                println!(
                    "{test}: seed {seed} FAILED: {e}\n  replay: {}",
                    replay_command(test, *seed)
                );
                failures.push((*seed, e.clone()));
            }
        }
    }
    let again_seeds: Vec<u64> = hashes.iter().take(recheck).map(|(s, _)| *s).collect();
    let again = run_children(test, &again_seeds, parallel, true);
    for ((seed, h), r) in hashes.iter().take(recheck).zip(again) {
        match r {
            Ok((h2, _, _)) if h2 == *h => {
                println!("{test}: seed {seed} replayed in a new process: same history {h:016x}")
            }
            Ok((h2, _, _)) => failures.push((
                *seed,
                format!("non-deterministic: history {h:016x} then {h2:016x}"),
            )),
            Err(e) => failures.push((
                *seed,
                format!("non-deterministic: passed, then failed on replay: {e}"),
            )),
        }
    }
    let wall = wall0.elapsed().as_secs_f64().max(1e-9);
    // CPU time of the seed processes: the rate that does not depend on what else the machine runs.
    let cpu = match children_cpu_secs() {
        Some(c) if c > 0.0 => format!(
            "; {c:.0} CPU s in the seed processes, {:.1} simulated s per CPU s",
            sim_total.as_secs_f64() / c
        ),
        _ => String::new(),
    };
    println!(
        "{test}: {} seeds (+{} replayed), {:.0} simulated s in {:.1} wall s ({:.1} simulated s per wall s, {parallel} at a time{cpu})",
        list.len(),
        recheck.min(hashes.len()),
        sim_total.as_secs_f64(),
        wall,
        sim_total.as_secs_f64() / wall
    );
    if !failures.is_empty() {
        let mut msg = format!(
            "{test}: {} of {} seeds failed:\n",
            failures.len(),
            list.len()
        );
        for (seed, e) in &failures {
            msg.push_str(&format!(
                "  seed {seed}: {e}\n    replay: {}\n",
                replay_command(test, *seed)
            ));
        }
        panic!("{msg}");
    }
}

/// User plus system CPU seconds of every child process this process has waited for (Linux
/// `/proc/self/stat` fields `cutime` and `cstime`, in clock ticks of 1/100 s); `None` where that file
/// is not readable.
fn children_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (`state`).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) / 100.0)
}

/// Child mode: run the one seed in `PGXC_SIM_SEED` and report it on a `PGXC_SIM_RESULT` line.
fn child<Fut>(test: &str, time_limit: Duration, scenario: fn() -> Fut)
where
    Fut: Future<Output = Outcome> + 'static,
{
    let Some(seed) = env_u64("PGXC_SIM_SEED") else {
        panic!("{test}: child mode needs PGXC_SIM_SEED");
    };
    init_logs();
    if std::env::var("PGXC_SIM_MADSIM_CHECK").is_ok() {
        // madsim's own determinism check: the seed runs twice (each on a fresh thread) and every random draw
        // must match; a divergence panics here and the parent reports it.
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), scenario)
        }));
        if let Err(p) = r {
            println!(
                "PGXC_SIM_RESULT fail madsim determinism check: {}",
                panic_message(&p)
            );
            return;
        }
    }
    let (outcome, sim) = run_one(seed, time_limit, scenario);
    match outcome {
        Ok(h) => println!("PGXC_SIM_RESULT ok {h:016x} {}", sim.as_nanos()),
        Err(e) => println!("PGXC_SIM_RESULT fail {}", e.replace('\n', " | ")),
    }
}

type ChildResult = Result<(u64, Duration, String), String>;

/// Run `seeds` in child processes of this test binary, `parallel` at a time; results in seed order.
fn run_children(
    test: &str,
    seeds: &[u64],
    parallel: usize,
    madsim_check: bool,
) -> Vec<ChildResult> {
    let exe = std::env::current_exe().expect("path of the running test binary");
    let mut results: Vec<Option<ChildResult>> = vec![None; seeds.len()];
    let mut next = 0;
    let mut running: Vec<(usize, std::process::Child)> = Vec::new();
    while next < seeds.len() || !running.is_empty() {
        while running.len() < parallel && next < seeds.len() {
            let child = std::process::Command::new(&exe)
                .args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env("PGXC_SIM_CHILD", "1")
                .env("PGXC_SIM_SEED", seeds[next].to_string())
                .envs(madsim_check.then_some(("PGXC_SIM_MADSIM_CHECK", "1")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a simulation child process");
            running.push((next, child));
            next += 1;
        }
        // Wait for the oldest child (children of one batch take similar time).
        let (i, child) = running.remove(0);
        let out = child
            .wait_with_output()
            .expect("wait for a simulation child");
        results[i] = Some(parse_child(&out));
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

fn parse_child(out: &std::process::Output) -> ChildResult {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut summary = String::new();
    for line in stdout.lines() {
        if let Some(at) = line.find("PGXC_SIM_SUMMARY ") {
            summary = line[at + "PGXC_SIM_SUMMARY ".len()..].to_string();
        }
        let Some(at) = line.find("PGXC_SIM_RESULT ") else {
            continue;
        };
        let rest = &line[at + "PGXC_SIM_RESULT ".len()..];
        if let Some(fail) = rest.strip_prefix("fail ") {
            return Err(fail.to_string());
        }
        let mut parts = rest.split_whitespace();
        let (Some("ok"), Some(h), Some(ns)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("unreadable child result {rest:?}"));
        };
        let h = u64::from_str_radix(h, 16).map_err(|e| format!("bad hash {h}: {e}"))?;
        let ns: u64 = ns.parse().map_err(|e| format!("bad time {ns}: {e}"))?;
        return Ok((h, Duration::from_nanos(ns), summary));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    Err(format!(
        "child process ended without a result ({}); stderr tail: {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

/// An order-sensitive hash of a history (FNV-1a over the debug text of each event), stable across runs and
/// platforms.
#[derive(Default)]
pub struct HistoryHash(u64);

impl HistoryHash {
    /// A fresh hash.
    pub fn new() -> Self {
        HistoryHash(0xcbf2_9ce4_8422_2325)
    }

    /// Mix in one event.
    pub fn add(&mut self, event: &impl std::fmt::Debug) {
        let text = format!("{event:?}");
        self.write(text.as_bytes());
        self.write(&[0xff]);
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

impl Hasher for HistoryHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
