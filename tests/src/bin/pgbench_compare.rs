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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PGXC_BASE: u16 = 26_700;
const PG_PORT: u16 = 26_900;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

type Res<T> = Result<T, String>;

fn run(cmd: &mut Command, what: &str) -> Res<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{what} failed ({}):\n{text}", out.status));
    }
    Ok(text)
}

/// A command run as the `postgres` OS user when this process is root.
fn as_postgres(prog: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    }
}

/// The pgxc cluster (`pgxc ctl up` child); stopped with SIGTERM on drop.
struct Pgxc {
    dir: PathBuf,
    child: Child,
}

impl Pgxc {
    fn start(bin: &Path, dir: &Path) -> Res<Pgxc> {
        let log = std::fs::File::create(dir.join("up.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["ctl", "up", "--data"])
            .arg(dir.join("data"))
            .args(["--base-port", &PGXC_BASE.to_string()])
            .env_remove("PGXC_FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut p = Pgxc {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
            if text.contains("Press Ctrl-C") {
                return Ok(p);
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("pgxc ctl up exited ({st}):\n{text}"));
            }
            if Instant::now() > deadline {
                return Err(format!("pgxc cluster not ready in 120 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pgxc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL 15 in a fresh directory; `pg_ctl stop` on drop.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
}

impl Postgres {
    fn start(bin: &Path, dir: &Path) -> Res<Postgres> {
        let _ = Command::new("chown").arg("postgres").arg(dir).status();
        let data = dir.join("data");
        run(
            as_postgres(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres"]),
            "initdb",
        )?;
        let pg = Postgres {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        let opts = format!(
            "-p {PG_PORT} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB \
             -c max_connections=200 -c fsync=on -c synchronous_commit=on",
            dir.display()
        );
        run(
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("pg.log"))
                .args(["-o", &opts, "-w", "start"]),
            "pg_ctl start",
        )?;
        Ok(pg)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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

fn server_version(pg_bin: &Path, port: u16) -> String {
    run(
        Command::new(pg_bin.join("psql"))
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT version()"]),
        "psql",
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|e| e)
}

/// The 1-minute load average (`/proc/loadavg`), to judge how noisy a run was.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
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
        let pgxc = Pgxc::start(&pgxc_bin, &pgxc_dir)?;
        let pg = Postgres::start(&pg_bin, &pg_dir)?;
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
