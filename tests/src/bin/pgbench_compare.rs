//! `pgbench_compare`: pgbench `-S` (select only) and TPC-B through one coordinator of a local pgxc
//! cluster (`pgxc ctl up`: 3 GTM replicas, a GTM proxy, 2 datanodes, 2 coordinators) beside
//! PostgreSQL 15 started by this program on the same machine, in the same run, alternating; prints
//! both tps figures and the ratios (issue 5, `notes/benchmarking.md`).
//!
//! ```text
//! cargo build --release -p pgxc
//! cargo run --release -p pgxc-tests --bin pgbench_compare
//! ```
//!
//! Settings (environment): `PGXC_BENCH_SECS` seconds per run (default 20), `PGXC_BENCH_SCALE`
//! pgbench scale (default 10), `PGXC_BENCH_CLIENTS` (default 8), `PGXC_BIN` the pgxc binary
//! (default `target/release/pgxc`), `PG_BIN` PostgreSQL's bin directory (default
//! `/usr/lib/postgresql/15/bin`). Every run is `pgbench -n -M prepared -c <clients> -j 2 -T <secs>`.
//! Ports: pgxc base 26700 (26700–26801), PostgreSQL 26900. PostgreSQL runs as the `postgres` OS
//! user when started as root (initdb refuses root), with `fsync` and `synchronous_commit` on, as
//! pgxc's durable commits. Both servers are stopped and their directories removed at the end.
//!
//! Exit status: 0 when every run completed; 1 with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pgxc_tests::bench::{env_or, load, run, server_version, Pgxc, Postgres, Res};

const PGXC_BASE: u16 = 26_700;
const PG_PORT: u16 = 26_900;

fn pgbench(bin: &Path, port: u16, args: &[&str]) -> Res<String> {
    run(
        Command::new(bin.join("pgbench"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(args)
            .arg("postgres"),
        &format!("pgbench {} on port {port}", args.join(" ")),
    )
}

/// `tps = N (without initial connection time)` from a pgbench report.
fn tps(report: &str) -> Res<f64> {
    report
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .filter(|r| r.contains("without initial connection time"))
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no tps line in the pgbench report:\n{report}"))
}

fn failed(report: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("pgbench_compare: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Res<()> {
    let secs: u64 = env_or("PGXC_BENCH_SECS", 20);
    let scale: u32 = env_or("PGXC_BENCH_SCALE", 10);
    let clients: u32 = env_or("PGXC_BENCH_CLIENTS", 8);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let pgxc_bin = std::env::var_os("PGXC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/pgxc"));
    if !pgxc_bin.is_file() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p pgxc` (or set PGXC_BIN)",
            pgxc_bin.display()
        ));
    }
    let pg_bin = PathBuf::from(
        std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
    );
    let scratch = std::env::temp_dir().join(format!("pgbench-compare-{}", std::process::id()));
    let (pgxc_dir, pg_dir) = (scratch.join("pgxc"), scratch.join("pg"));
    for d in [&pgxc_dir, &pg_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let _ = Command::new("chmod").arg("755").arg(&scratch).status();
    let result = (|| {
        let pgxc = Pgxc::start(&pgxc_bin, &pgxc_dir, PGXC_BASE, 2)?;
        let pg = Postgres::start(&pg_bin, &pg_dir, PG_PORT)?;
        let cn1 = PGXC_BASE + 100;
        println!("pgxc:       {}", server_version(&pg_bin, cn1));
        println!("PostgreSQL: {}", server_version(&pg_bin, PG_PORT));
        let s = scale.to_string();
        for (name, port) in [("pgxc", cn1), ("PostgreSQL", PG_PORT)] {
            let t = Instant::now();
            pgbench(&pg_bin, port, &["-i", "-q", "-s", &s])?;
            println!(
                "{name}: pgbench -i -s {scale} in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        let (c, t) = (clients.to_string(), secs.to_string());
        let mut rows = Vec::new();
        for (label, extra) in [("pgbench -S", Some("-S")), ("TPC-B", None)] {
            let mut args = vec!["-n", "-M", "prepared", "-c", &c, "-j", "2", "-T", &t];
            args.extend(extra);
            let mut figures = Vec::new();
            for port in [cn1, PG_PORT] {
                let before = load();
                let report = pgbench(&pg_bin, port, &args)?;
                let n = tps(&report)?;
                let f = failed(&report);
                println!(
                    "{label} on {}: {n:.0} tps ({f} failed; load average {before} -> {})",
                    if port == cn1 { "pgxc" } else { "PostgreSQL" },
                    load()
                );
                figures.push(n);
            }
            rows.push((label, figures[0], figures[1]));
        }
        println!();
        println!(
            "scale {scale}, -M prepared -c {clients} -j 2 -T {secs}, pgxc through 1 of 2 coordinators \
             (2 datanodes, 3 GTM replicas + proxy)"
        );
        println!(
            "{:<12} {:>12} {:>16} {:>8}",
            "workload", "pgxc tps", "PostgreSQL tps", "ratio"
        );
        for (label, a, b) in &rows {
            println!("{label:<12} {a:>12.0} {b:>16.0} {:>8.3}", a / b);
        }
        drop(pg);
        drop(pgxc);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
