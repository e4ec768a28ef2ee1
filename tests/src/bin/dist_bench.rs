//! `dist_bench`: distributed planning beside PostgreSQL 15 (issue 8's benchmark). Starts a local
//! pgxc cluster (`pgxc ctl up --coordinators 1`: 3 GTM replicas, a GTM proxy, 2 datanodes, 1
//! coordinator) and PostgreSQL 15 on the same machine in the same run, loads the same data in both
//! (`COPY` through psql), and times:
//!
//! - **GROUP BY on a non-distribution column**: `SELECT g, count(*), sum(v) FROM big GROUP BY g
//!   ORDER BY g` over `PGXC_BENCH_ROWS` rows (default 1,000,000) hashed on `id`;
//! - **join on a non-distribution key**: `SELECT count(*), sum(a.x + b.y) FROM ja a JOIN jb b ON
//!   a.k = b.k` of two tables of `PGXC_BENCH_ROWS / 5` rows each (default 200,000), both hashed on
//!   `id`, `k` a permutation so every row has one partner; on pgxc with the redistributed join
//!   (default) and with `enable_remotejoin = off` (the coordinator join) for reference.
//!
//! Every query runs `PGXC_BENCH_RUNS` times (default 3) on each side, alternating; the best time
//! is reported with the pgxc / PostgreSQL ratio of times (above 1: pgxc is slower). Both sides'
//! answers must be equal, else the benchmark fails.
//!
//! ```text
//! cargo build --release -p pgxc
//! cargo run --release -p pgxc-tests --bin dist_bench
//! PGXC_BENCH_ROWS=100000 cargo run --release -p pgxc-tests --bin dist_bench    # quick
//! ```
//!
//! Settings (environment): `PGXC_BENCH_ROWS`, `PGXC_BENCH_RUNS`, `PGXC_BIN` the pgxc binary
//! (default `target/release/pgxc`), `PG_BIN` PostgreSQL's bin directory (default
//! `/usr/lib/postgresql/15/bin`). Ports: pgxc base 32200 (32200–32301), PostgreSQL 32900. Both
//! servers are stopped and their directories removed at the end.
//!
//! Exit status: 0 when every query ran and agreed; 1 with a message otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pgxc_tests::bench::{env_or, load, run, server_version, Pgxc, Postgres, Res};

const PGXC_BASE: u16 = 32_200;
const PG_PORT: u16 = 32_900;

/// Run one statement (or psql meta-command) through psql; its unaligned, tuples-only output.
fn psql(pg_bin: &Path, port: u16, sql: &str) -> Res<String> {
    run(
        Command::new(pg_bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql]),
        &format!("psql on port {port}: {sql}"),
    )
    .map(|s| s.trim().to_string())
}

/// A deterministic permutation step (multiplicative, `n` need not be prime: `p` is coprime).
fn permute(i: u64, n: u64) -> u64 {
    (i * 7_919 + 13) % n
}

/// Write the three tables' COPY text files (tab-separated) into `dir`.
fn write_data(dir: &Path, rows: u64) -> Res<()> {
    let w = |name: &str, f: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| -> Res<()> {
        let file = std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())?;
        let mut b = std::io::BufWriter::new(file);
        f(&mut b).map_err(|e| e.to_string())?;
        b.flush().map_err(|e| e.to_string())
    };
    w("big.tsv", &|out| {
        for i in 0..rows {
            writeln!(out, "{i}\t{}\t{}", permute(i, 1_000), i % 97)?;
        }
        Ok(())
    })?;
    let j = rows / 5;
    w("ja.tsv", &|out| {
        for i in 0..j {
            writeln!(out, "{i}\t{}\t{}", permute(i, j), i % 10)?;
        }
        Ok(())
    })?;
    w("jb.tsv", &|out| {
        for i in 0..j {
            writeln!(out, "{i}\t{}\t{}", permute(j - 1 - i, j), i % 7)?;
        }
        Ok(())
    })
}

fn load_data(pg_bin: &Path, port: u16, dir: &Path) -> Res<f64> {
    let t = Instant::now();
    for ddl in [
        "CREATE TABLE big (id int, g int, v int) DISTRIBUTE BY HASH (id)",
        "CREATE TABLE ja (id int, k int, x int) DISTRIBUTE BY HASH (id)",
        "CREATE TABLE jb (id int, k int, y int) DISTRIBUTE BY HASH (id)",
    ] {
        let sql = if port == PG_PORT {
            ddl.split(" DISTRIBUTE").next().unwrap_or(ddl)
        } else {
            ddl
        };
        psql(pg_bin, port, sql)?;
    }
    for t in ["big", "ja", "jb"] {
        let file = dir.join(format!("{t}.tsv"));
        psql(
            pg_bin,
            port,
            &format!("\\copy {t} FROM '{}'", file.display()),
        )?;
    }
    psql(pg_bin, port, "ANALYZE")?;
    Ok(t.elapsed().as_secs_f64())
}

/// One timed run of `sql` (after `setup`, in the same psql session) and its answer.
fn time_query(pg_bin: &Path, port: u16, setup: &str, sql: &str) -> Res<(f64, String)> {
    let text = format!("{setup}{sql}");
    let t = Instant::now();
    let out = psql(pg_bin, port, &text)?;
    Ok((t.elapsed().as_secs_f64(), out))
}

fn main() {
    if let Err(e) = bench() {
        eprintln!("dist_bench: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Res<()> {
    let rows: u64 = env_or("PGXC_BENCH_ROWS", 1_000_000);
    let runs: u32 = env_or("PGXC_BENCH_RUNS", 3).max(1);
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
    let scratch = std::env::temp_dir().join(format!("dist-bench-{}", std::process::id()));
    let (pgxc_dir, pg_dir, data_dir) = (
        scratch.join("pgxc"),
        scratch.join("pg"),
        scratch.join("data"),
    );
    for d in [&pgxc_dir, &pg_dir, &data_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let _ = Command::new("chmod").arg("755").arg(&scratch).status();
    let result = (|| {
        write_data(&data_dir, rows)?;
        let pgxc = Pgxc::start(&pgxc_bin, &pgxc_dir, PGXC_BASE, 1)?;
        let pg = Postgres::start(&pg_bin, &pg_dir, PG_PORT)?;
        let cn = PGXC_BASE + 100;
        println!("pgxc:       {}", server_version(&pg_bin, cn));
        println!("PostgreSQL: {}", server_version(&pg_bin, PG_PORT));
        let lx = load_data(&pg_bin, cn, &data_dir)?;
        let lp = load_data(&pg_bin, PG_PORT, &data_dir)?;
        println!(
            "loaded {rows} + 2 x {} rows: pgxc {lx:.1} s, PostgreSQL {lp:.1} s (COPY, ANALYZE)",
            rows / 5
        );
        let group = "SELECT g, count(*), sum(v) FROM big GROUP BY g ORDER BY g";
        let join = "SELECT count(*), sum(a.x + b.y) FROM ja a JOIN jb b ON a.k = b.k";
        let cases: [(&str, &str, &str); 3] = [
            ("GROUP BY non-key (big)", "", group),
            ("join on non-key (ja, jb)", "", join),
            (
                "  same, enable_remotejoin=off",
                "SET enable_remotejoin = off; ",
                join,
            ),
        ];
        let mut table = Vec::new();
        for (label, setup, sql) in cases {
            let (mut bx, mut bp) = (f64::MAX, f64::MAX);
            let mut answers = (String::new(), String::new());
            for _ in 0..runs {
                let before = load();
                let (tx, ax) = time_query(&pg_bin, cn, setup, sql)?;
                let (tp, ap) = time_query(&pg_bin, PG_PORT, "", sql)?;
                if ax != ap {
                    return Err(format!(
                        "{label}: answers differ\npgxc:\n{ax}\nPostgreSQL:\n{ap}"
                    ));
                }
                println!(
                    "{label}: pgxc {tx:.3} s, PostgreSQL {tp:.3} s (load average {before} -> {})",
                    load()
                );
                bx = bx.min(tx);
                bp = bp.min(tp);
                answers = (ax, ap);
            }
            let first = answers.0.lines().next().unwrap_or("").to_string();
            table.push((label, bx, bp, first));
        }
        println!();
        println!(
            "{rows} rows in big, {} in ja and jb; pgxc: 1 coordinator, 2 datanodes, 3 GTM replicas + proxy; \
             best of {runs}; answers equal on both sides",
            rows / 5
        );
        println!(
            "{:<32} {:>10} {:>14} {:>10}",
            "query", "pgxc s", "PostgreSQL s", "pgxc/PG"
        );
        for (label, x, p, _) in &table {
            println!("{label:<32} {x:>10.3} {p:>14.3} {:>10.2}", x / p);
        }
        drop(pg);
        drop(pgxc);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
