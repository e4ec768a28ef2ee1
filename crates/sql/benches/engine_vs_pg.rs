//! The SQL engine beside PostgreSQL 15 on the same machine, in the same run: statements/s for a
//! point select and a single-row insert, rows/s for a bulk load and a 1M-row scan with GROUP BY,
//! each with the ratio pgxc / PostgreSQL (higher is better for pgxc).
//!
//! - pgxc side: [`pgxc_sql::Engine`] on a real on-disk store (`Disk::real`, a temporary
//!   directory), one [`pgxc_sql::Session`], statements through `Session::execute` **in process**
//!   (no wire protocol, no socket).
//! - PostgreSQL side: a throwaway PostgreSQL 15 server (initdb in a temporary directory, as the
//!   `postgres` user when run as root; default settings, fsync and synchronous_commit on, Unix
//!   socket only), one client connection of the `postgres` crate over the Unix socket, **simple
//!   query protocol** with literal values so both sides parse every statement. The server is
//!   stopped (and its directory removed) at the end, also on a panic.
//!
//! Workloads (the same SQL text on both sides; pgxc runs each workload, then PostgreSQL):
//! - `point select`: `SELECT abalance FROM accounts WHERE aid = <k>` on a 100,000-row table
//!   (`aid` its primary key), `k` uniformly random from a seeded PRNG, autocommit, for
//!   `PGXC_BENCH_SECS`; every answer must be exactly one row.
//! - `single-row insert`: `INSERT INTO hist VALUES (...)` (pgbench's history row), autocommit, each a
//!   durable transaction (pgxc: group commit with an fsync; PostgreSQL: synchronous_commit=on), for
//!   `PGXC_BENCH_SECS`.
//! - `load`: `PGXC_BENCH_ROWS` rows into `big (k int, v int)` by multi-row INSERTs of
//!   [`LOAD_CHUNK`] rows, each its own transaction (timed once).
//! - `group by`: `SELECT k % 100, count(*), sum(v) FROM big GROUP BY 1`, the best of
//!   `PGXC_BENCH_RUNS` runs; both sides' answers must agree with the rows loaded.
//!
//! Run: `cargo bench -p pgxc-sql --bench engine_vs_pg` (without `--bench` it only prints how, so
//! `cargo test --all-targets` does not run it). Environment:
//! - `PGXC_BENCH_SECS`: measured seconds per throughput figure (default 5);
//! - `PGXC_BENCH_ROWS`: rows of the GROUP BY table (default 1,000,000);
//! - `PGXC_BENCH_ACCOUNTS`: rows of the point-select table (default 100,000);
//! - `PGXC_BENCH_RUNS`: GROUP BY runs, the best is reported (default 3);
//! - `PGXC_BENCH_SKIP_PG=1`: pgxc only (also what happens, with a message, when PostgreSQL 15 is
//!   not installed);
//! - `PGXC_BENCH_PG_BIN`: PostgreSQL's server binaries (default `/usr/lib/postgresql/15/bin`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgxc_sql::types::Value;
use pgxc_sql::{Engine, Session};
use pgxc_storage::Disk;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rows per INSERT statement when loading tables.
const LOAD_CHUNK: u64 = 1000;
/// The seed of the point-select keys and insert values (the same on both sides).
const SEED: u64 = 0x5eed_5eed;

/// A query's rows as text (`None` = NULL).
type Rows = Vec<Vec<Option<String>>>;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// A directory removed (recursively) when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(what: &str) -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = std::env::temp_dir().join(format!(
        "pgxc-sql-bench-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
    TempDir(p)
}

/// One side of the comparison: something that runs a SQL string and returns the last result's
/// rows as text.
trait Side {
    fn query(&mut self, sql: &str) -> Rows;
}

/// pgxc in process.
struct Pgxc {
    session: Session,
    // Dropped after the session.
    _engine: Arc<Engine>,
}

impl Side for Pgxc {
    fn query(&mut self, sql: &str) -> Rows {
        let tz = self.session.time_zone();
        let results = self
            .session
            .execute(sql)
            .unwrap_or_else(|e| panic!("pgxc: {sql:.200}: {e}"));
        let Some(last) = results.into_iter().last() else {
            return Vec::new();
        };
        last.rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&last.columns)
                    .map(|(v, (_, t))| match v {
                        Value::Null => None,
                        v => Some(v.to_text(t, &tz)),
                    })
                    .collect()
            })
            .collect()
    }
}

/// PostgreSQL over its Unix socket, simple query protocol.
struct Pg {
    client: postgres::Client,
}

impl Side for Pg {
    fn query(&mut self, sql: &str) -> Rows {
        let msgs = self
            .client
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("PostgreSQL: {sql:.200}: {e}"));
        let mut rows = Vec::new();
        for m in msgs {
            match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                // A later statement's result replaces an earlier one's (only one per string here).
                postgres::SimpleQueryMessage::RowDescription(_) => rows.clear(),
                _ => {}
            }
        }
        rows
    }
}

/// A throwaway PostgreSQL server: initdb'd in a temporary directory, listening only on a Unix
/// socket in that directory; stopped (immediately) and removed when dropped.
struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    dir: TempDir,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    fn command(&self, tool: &str) -> Command {
        let tool = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        }
    }

    fn run(&self, mut c: Command, what: &str) -> Result<(), String> {
        let out = c.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// initdb and start a server from `bin`.
    fn start(bin: &Path) -> Result<PgServer, String> {
        let dir = temp_dir("pg");
        let as_postgres = is_root();
        if as_postgres {
            let st = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir.0)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !st.success() {
                return Err(format!("chown postgres {} failed", dir.0.display()));
            }
        }
        let server = PgServer {
            bin: bin.to_path_buf(),
            data: dir.0.join("data"),
            // Only the socket file's name: nothing listens on TCP.
            port: 5432,
            as_postgres,
            dir,
        };
        let mut c = server.command("initdb");
        c.arg("-D").arg(&server.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--locale=C",
            "-E",
            "UTF8",
        ]);
        server.run(c, "initdb")?;
        let mut c = server.command("pg_ctl");
        c.arg("-D")
            .arg(&server.data)
            .arg("-w")
            .arg("-l")
            .arg(server.dir.0.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=''",
                server.port,
                server.dir.0.display()
            ))
            .arg("start");
        if let Err(e) = server.run(c, "pg_ctl start") {
            let log = std::fs::read_to_string(server.dir.0.join("log")).unwrap_or_default();
            return Err(format!("{e}\n{log}"));
        }
        Ok(server)
    }

    fn connect(&self) -> Result<Pg, String> {
        let client = postgres::Config::new()
            .host_path(&self.dir.0)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .map_err(|e| format!("connect: {e}"))?;
        Ok(Pg { client })
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        if let Err(e) = self.run(c, "pg_ctl stop") {
            eprintln!("{e}");
        }
    }
}

/// The tables of the workloads and their rows, the same on both sides.
fn setup(side: &mut dyn Side, accounts: u64) {
    side.query(
        "CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, \
         filler text)",
    );
    side.query(
        "CREATE TABLE hist (tid int, bid int, aid int, delta int, mtime timestamp, filler text)",
    );
    side.query("CREATE TABLE big (k int NOT NULL, v int NOT NULL)");
    insert_chunks(side, "accounts", accounts, |i| {
        format!("({i}, {}, 0, 'account {i}')", (i - 1) / 100_000 + 1)
    });
}

/// Insert rows `1..=n` of `table`, [`LOAD_CHUNK`] per statement, each statement autocommitted.
fn insert_chunks(side: &mut dyn Side, table: &str, n: u64, row: impl Fn(u64) -> String) {
    let mut i = 1;
    while i <= n {
        let end = (i + LOAD_CHUNK - 1).min(n);
        let values: Vec<String> = (i..=end).map(&row).collect();
        side.query(&format!("INSERT INTO {table} VALUES {}", values.join(", ")));
        i = end + 1;
    }
}

/// Statements run and the time they took.
struct Throughput {
    stmts: u64,
    elapsed: Duration,
}

impl Throughput {
    fn per_sec(&self) -> f64 {
        self.stmts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run `stmt(rng)` for `secs`, checking the clock every statement.
fn timed(secs: Duration, mut stmt: impl FnMut(&mut StdRng, u64)) -> Throughput {
    let mut rng = StdRng::seed_from_u64(SEED);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < secs {
        stmt(&mut rng, n);
        n += 1;
    }
    Throughput {
        stmts: n,
        elapsed: start.elapsed(),
    }
}

fn point_select(side: &mut dyn Side, accounts: u64, secs: Duration) -> Throughput {
    timed(secs, |rng, _| {
        let k = rng.gen_range(1..=accounts);
        let rows = side.query(&format!("SELECT abalance FROM accounts WHERE aid = {k}"));
        assert_eq!(rows, vec![vec![Some("0".to_string())]], "aid = {k}");
        black_box(rows);
    })
}

fn single_insert(side: &mut dyn Side, accounts: u64, secs: Duration) -> Throughput {
    timed(secs, |rng, n| {
        let aid = rng.gen_range(1..=accounts);
        let delta = rng.gen_range(-5000..=5000);
        side.query(&format!(
            "INSERT INTO hist VALUES ({}, 1, {aid}, {delta}, '2026-01-01 00:00:00', NULL)",
            n % 10 + 1
        ));
    })
}

/// Load `rows` rows into `big`; returns the elapsed time.
fn load_big(side: &mut dyn Side, rows: u64) -> Duration {
    let start = Instant::now();
    insert_chunks(side, "big", rows, |i| format!("({i}, {})", i % 1000));
    start.elapsed()
}

/// The GROUP BY's answer for rows `1..=n` (k = i, v = i % 1000), sorted by group.
fn expected_groups(n: u64) -> Vec<(u64, u64, u64)> {
    let mut g = vec![(0u64, 0u64); 100];
    for i in 1..=n {
        let e = &mut g[(i % 100) as usize];
        e.0 += 1;
        e.1 += i % 1000;
    }
    g.into_iter()
        .enumerate()
        .filter(|(_, (c, _))| *c > 0)
        .map(|(k, (c, s))| (k as u64, c, s))
        .collect()
}

/// Best-of-`runs` time of the GROUP BY, checking each answer against [`expected_groups`].
fn group_by(side: &mut dyn Side, rows: u64, runs: u64) -> Duration {
    let expected = expected_groups(rows);
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let got = side.query("SELECT k % 100, count(*), sum(v) FROM big GROUP BY 1");
        best = best.min(start.elapsed());
        let mut got: Vec<(u64, u64, u64)> = got
            .iter()
            .map(|r| {
                let n = |i: usize| -> u64 {
                    r.get(i)
                        .and_then(|v| v.as_deref())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("bad GROUP BY row {r:?}"))
                };
                (n(0), n(1), n(2))
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, expected, "GROUP BY answer");
    }
    best
}

/// One line of the report: the figure on each side (PostgreSQL's may be missing) and the ratio.
struct Line {
    workload: String,
    pgxc: String,
    pg: Option<String>,
    ratio: Option<f64>,
}

fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A line for a throughput figure (`a` pgxc, `b` PostgreSQL, both per second).
fn throughput(name: &str, unit: &str, a: f64, b: Option<f64>) -> Line {
    Line {
        workload: name.to_string(),
        pgxc: format!("{} {unit}", human(a)),
        pg: b.map(|b| format!("{} {unit}", human(b))),
        ratio: b.map(|b| a / b),
    }
}

fn main() {
    // `cargo bench` passes `--bench` (a filter argument is accepted and ignored); without it (e.g.
    // `cargo test --all-targets`, which runs bench targets) there is nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "engine_vs_pg: a benchmark; run it with `cargo bench -p pgxc-sql --bench engine_vs_pg`"
        );
        return;
    }
    let secs = Duration::from_secs(env_u64("PGXC_BENCH_SECS", 5).max(1));
    let rows = env_u64("PGXC_BENCH_ROWS", 1_000_000).max(1);
    let accounts = env_u64("PGXC_BENCH_ACCOUNTS", 100_000).max(1);
    let runs = env_u64("PGXC_BENCH_RUNS", 3).max(1);
    let bin = PathBuf::from(
        std::env::var("PGXC_BENCH_PG_BIN")
            .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string()),
    );

    let skip_pg = std::env::var("PGXC_BENCH_SKIP_PG").is_ok_and(|v| v == "1");
    let server = if skip_pg {
        println!("PostgreSQL side skipped (PGXC_BENCH_SKIP_PG=1)");
        None
    } else if !bin.join("postgres").is_file() {
        println!(
            "PostgreSQL side skipped: no PostgreSQL 15 server in {} (apt-get install postgresql, \
             or set PGXC_BENCH_PG_BIN)",
            bin.display()
        );
        None
    } else {
        match PgServer::start(&bin) {
            Ok(s) => Some(s),
            Err(e) => panic!("cannot start PostgreSQL: {e}"),
        }
    };
    let mut pg = server
        .as_ref()
        .map(|s| s.connect().unwrap_or_else(|e| panic!("{e}")));
    if let Some(pg) = &mut pg {
        let v = pg.query("SHOW server_version");
        println!(
            "PostgreSQL {} (fsync {}, synchronous_commit {}, max_parallel_workers_per_gather {})",
            v[0][0].as_deref().unwrap_or("?"),
            pg.query("SHOW fsync")[0][0].as_deref().unwrap_or("?"),
            pg.query("SHOW synchronous_commit")[0][0]
                .as_deref()
                .unwrap_or("?"),
            pg.query("SHOW max_parallel_workers_per_gather")[0][0]
                .as_deref()
                .unwrap_or("?"),
        );
    }

    let pgxc_dir = temp_dir("pgxc");
    let engine = Engine::open(&Disk::real(&pgxc_dir.0), "bench.redb")
        .unwrap_or_else(|e| panic!("pgxc engine: {e}"));
    let mut pgxc = Pgxc {
        session: engine.session(),
        _engine: engine,
    };
    println!(
        "setup: accounts {accounts} rows (primary key), big {rows} rows; {}s per throughput \
         figure, GROUP BY best of {runs}",
        secs.as_secs()
    );

    let mut lines = Vec::new();
    let sides = |pgxc: &mut Pgxc, pg: &mut Option<Pg>, f: &mut dyn FnMut(&mut dyn Side) -> f64| {
        let a = f(pgxc);
        let b = pg.as_mut().map(|pg| f(pg));
        (a, b)
    };

    let (a, b) = sides(&mut pgxc, &mut pg, &mut |s| {
        let t = Instant::now();
        setup(s, accounts);
        t.elapsed().as_secs_f64()
    });
    println!(
        "  (accounts loaded in {a:.2}s pgxc{})",
        b.map(|b| format!(", {b:.2}s PostgreSQL"))
            .unwrap_or_default()
    );

    let (a, b) = sides(&mut pgxc, &mut pg, &mut |s| {
        point_select(s, accounts, secs).per_sec()
    });
    lines.push(throughput(
        &format!("point select by pk ({} rows)", human(accounts as f64)),
        "stmt/s",
        a,
        b,
    ));
    let (a, b) = sides(&mut pgxc, &mut pg, &mut |s| {
        single_insert(s, accounts, secs).per_sec()
    });
    lines.push(throughput("single-row insert, autocommit", "stmt/s", a, b));
    let (a, b) = sides(&mut pgxc, &mut pg, &mut |s| load_big(s, rows).as_secs_f64());
    let rate = |secs: f64| rows as f64 / secs.max(1e-9);
    lines.push(Line {
        workload: format!(
            "load {} rows ({LOAD_CHUNK}-row INSERTs)",
            human(rows as f64)
        ),
        pgxc: format!("{a:.2} s = {} rows/s", human(rate(a))),
        pg: b.map(|b| format!("{b:.2} s = {} rows/s", human(rate(b)))),
        ratio: b.map(|b| rate(a) / rate(b)),
    });
    let (a, b) = sides(&mut pgxc, &mut pg, &mut |s| {
        group_by(s, rows, runs).as_secs_f64()
    });
    lines.push(Line {
        workload: format!("GROUP BY scan of {} rows", human(rows as f64)),
        pgxc: format!("{a:.3} s = {} rows/s", human(rate(a))),
        pg: b.map(|b| format!("{b:.3} s = {} rows/s", human(rate(b)))),
        ratio: b.map(|b| rate(a) / rate(b)),
    });

    println!();
    println!(
        "{:<38} {:>26} {:>26} {:>9}",
        "workload", "pgxc (in process)", "PostgreSQL 15 (socket)", "pgxc/PG"
    );
    for l in &lines {
        println!(
            "{:<38} {:>26} {:>26} {:>9}",
            l.workload,
            l.pgxc,
            l.pg.as_deref().unwrap_or("skipped"),
            l.ratio.map(|r| format!("{r:.3}")).unwrap_or("-".into())
        );
    }
    println!(
        "\npgxc runs in process (Session::execute, no protocol, no socket); PostgreSQL serves one \
         client connection over its Unix socket (simple query protocol). Ratios are of throughput \
         (statements/s or rows/s): above 1 pgxc is faster."
    );
    // The session and engine go before the directories; the server stops when dropped.
    drop(pgxc);
    drop(pg);
    drop(server);
    drop(pgxc_dir);
}
