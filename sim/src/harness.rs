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
    format!("PGXC_SIM_SEED={seed} cargo sim-test {test} -- --nocapture   # or: PGXC_SIM_SEED={seed} cargo test --features sim")
}

/// The seed of the running simulation.
pub fn current_seed() -> u64 {
    madsim::runtime::Handle::current().seed()
}

/// Run one seed in a fresh runtime, turning a panic into an error.
pub fn run_one<Fut>(seed: u64, time_limit: Duration, scenario: fn() -> Fut) -> (Outcome, Duration)
where
    Fut: Future<Output = Outcome> + 'static,
{
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.set_time_limit(time_limit);
    let fut = scenario();
    let start_sim = std::cell::Cell::new(Duration::ZERO);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let t0 = madsim::time::Instant::now();
            let r = fut.await;
            start_sim.set(t0.elapsed());
            r
        })
    }));
    let outcome = match result {
        Ok(r) => r,
        Err(p) => Err(panic_message(&p)),
    };
    (outcome, start_sim.get())
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

/// Run `scenario` for every seed of [`seeds`], then re-run the first `recheck` seeds and compare history
/// hashes (determinism). Prints per-seed lines and simulated seconds per wall second. Panics (failing the test)
/// listing each failed seed with its replay command.
pub fn run_seeds<Fut>(test: &str, default_count: u64, recheck: usize, time_limit: Duration, scenario: fn() -> Fut)
where
    Fut: Future<Output = Outcome> + 'static,
{
    let list = seeds(default_count);
    let wall0 = std::time::Instant::now();
    let mut sim_total = Duration::ZERO;
    let mut failures = Vec::new();
    let mut hashes = Vec::new();
    for &seed in &list {
        let (outcome, sim) = run_one(seed, time_limit, scenario);
        sim_total += sim;
        match outcome {
            Ok(h) => {
                println!("{test}: seed {seed} ok, history {h:016x}, {:.1} simulated s", sim.as_secs_f64());
                hashes.push((seed, h));
            }
            Err(e) => {
                println!("{test}: seed {seed} FAILED: {e}\n  replay: {}", replay_command(test, seed));
                failures.push((seed, e));
            }
        }
    }
    for &(seed, h) in hashes.iter().take(recheck) {
        // madsim's own check: the same seed must draw the same random numbers in the same order.
        let again = std::panic::catch_unwind(AssertUnwindSafe(|| {
            madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), scenario)
        }))
        .unwrap_or_else(|p| Err(format!("madsim determinism check: {}", panic_message(&p))));
        match again {
            Ok(h2) if h2 == h => println!("{test}: seed {seed} replayed with the same history {h:016x}"),
            Ok(h2) => failures.push((seed, format!("non-deterministic: history {h:016x} then {h2:016x}"))),
            Err(e) => failures.push((seed, format!("non-deterministic: passed, then failed on replay: {e}"))),
        }
    }
    let wall = wall0.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{test}: {} seeds, {:.0} simulated s in {:.1} wall s ({:.1} simulated s per wall s)",
        list.len(),
        sim_total.as_secs_f64(),
        wall,
        sim_total.as_secs_f64() / wall
    );
    if !failures.is_empty() {
        let mut msg = format!("{test}: {} of {} seeds failed:\n", failures.len(), list.len());
        for (seed, e) in &failures {
            msg.push_str(&format!("  seed {seed}: {e}\n    replay: {}\n", replay_command(test, *seed)));
        }
        panic!("{msg}");
    }
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
