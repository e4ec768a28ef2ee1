//! The conformance suite (`tests/sql/**.slt`, PostgreSQL 15's expected results) against the
//! standalone engine, with a ratchet.
//!
//! Every record of every file runs (a failing record does not stop its file); the test prints
//! passed/total per area. `tests/sql/passing.txt` lists `file:line` of every record known to
//! pass: the test fails if one of them fails (a regression) and lists records that pass but are
//! not listed yet. `PGXC_SLT_BLESS=1` rewrites `passing.txt` with today's passes;
//! `PGXC_SLT_VERBOSE=1` prints every failure; `PGXC_SLT_FILTER=substr` runs matching files only.
#![cfg(not(madsim))]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pgxc_common::PgError;
use pgxc_sql::types::{DataType, Value};
use pgxc_sql::{Engine, Session};
use pgxc_storage::{Disk, SimDisk};
use sqllogictest::{DBOutput, DefaultColumnType, Record, Runner, DB};

/// One connection of the runner: a session on the file's engine.
struct Conn(Session);

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int2 | DataType::Int4 | DataType::Int8 => DefaultColumnType::Integer,
        DataType::Float4 | DataType::Float8 | DataType::Numeric(_) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

impl DB for Conn {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let tz = self.0.time_zone();
        let results = self.0.execute(sql)?;
        let Some(last) = results.into_iter().last() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if last.columns.is_empty() {
            let n = last
                .tag
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return Ok(DBOutput::StatementComplete(n));
        }
        let types = last.columns.iter().map(|(_, t)| column_type(t)).collect();
        let rows = last
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&last.columns)
                    .map(|(v, (_, t))| match v {
                        Value::Null => "NULL".to_string(),
                        v => {
                            let s = v.to_text(t, &tz);
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    fn engine_name(&self) -> &str {
        "pgxc"
    }

    fn error_sql_state(err: &PgError) -> Option<String> {
        Some(err.code.code().to_string())
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sql")
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

/// Run one file; returns (record id, passed, failure message) per statement/query record.
fn run_file(path: &Path, rel: &str) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    let records = match sqllogictest::parse_file::<DefaultColumnType>(path) {
        Ok(r) => r,
        Err(e) => {
            out.push((format!("{rel}:0"), false, format!("parse error: {e}")));
            return out;
        }
    };
    let engine = match Engine::open(&Disk::sim(SimDisk::new()), "slt.redb") {
        Ok(e) => e,
        Err(e) => {
            out.push((format!("{rel}:0"), false, format!("engine: {e}")));
            return out;
        }
    };
    let make = {
        let engine: Arc<Engine> = engine;
        move || {
            let mut s = engine.session();
            s.set_lock_timeout(Some(Duration::from_millis(200)));
            async move { Ok::<_, PgError>(Conn(s)) }
        }
    };
    let mut runner = Runner::new(make);
    for rec in records {
        let line = match &rec {
            Record::Statement { loc, .. } | Record::Query { loc, .. } => Some(loc.line()),
            _ => None,
        };
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| runner.run(rec)));
        if let Some(line) = line {
            let id = format!("{rel}:{line}");
            match r {
                Ok(Ok(_)) => out.push((id, true, String::new())),
                Ok(Err(e)) => out.push((id, false, e.to_string())),
                Err(_) => out.push((id, false, "PANIC".to_string())),
            }
        }
    }
    out
}

#[test]
fn conformance_suite() {
    let dir = suite_dir();
    let mut files = Vec::new();
    slt_files(&dir, &mut files);
    let filter = std::env::var("PGXC_SLT_FILTER").ok();
    let verbose = std::env::var("PGXC_SLT_VERBOSE").is_ok_and(|v| v == "1");
    let bless = std::env::var("PGXC_SLT_BLESS").is_ok_and(|v| v == "1");
    let passing_path = dir.join("passing.txt");
    let listed: BTreeSet<String> = std::fs::read_to_string(&passing_path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    // Silence panic messages of caught panics; they are reported as PANIC.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut results = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&dir)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        if filter.as_deref().is_some_and(|flt| !rel.contains(flt)) {
            continue;
        }
        results.extend(run_file(f, &rel));
    }
    std::panic::set_hook(hook);

    let mut per_area: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut regressions = Vec::new();
    let mut new_passes = Vec::new();
    let mut passing = BTreeSet::new();
    for (id, ok, msg) in &results {
        let area = id.split('/').next().unwrap_or("").to_string();
        let e = per_area.entry(area).or_default();
        e.1 += 1;
        if *ok {
            e.0 += 1;
            passing.insert(id.clone());
            if !listed.contains(id) {
                new_passes.push(id.clone());
            }
        } else {
            if listed.contains(id) {
                regressions.push(format!("{id}: {msg}"));
            }
            if verbose {
                println!(
                    "FAIL {id}: {}",
                    msg.lines().take(6).collect::<Vec<_>>().join(" | ")
                );
            }
        }
    }
    let (mut p, mut t) = (0, 0);
    println!("area              passed/total");
    for (area, (ok, total)) in &per_area {
        println!("{area:<18}{ok:>4}/{total}");
        p += ok;
        t += total;
    }
    println!("{:<18}{p:>4}/{t}", "total");
    if bless && filter.is_none() {
        let mut text = String::from(
            "# Records of tests/sql that pass on pgxc (file:line); a listed record that fails is a regression.\n# Regenerate with PGXC_SLT_BLESS=1 cargo test -p pgxc-sql --test slt.\n",
        );
        for id in &passing {
            text.push_str(id);
            text.push('\n');
        }
        if let Err(e) = std::fs::write(&passing_path, text) {
            panic!("cannot write {}: {e}", passing_path.display());
        }
        println!("blessed {} passing records", passing.len());
    } else if !new_passes.is_empty() {
        println!(
            "{} records pass but are not in passing.txt (PGXC_SLT_BLESS=1 adds them):",
            new_passes.len()
        );
        for id in new_passes.iter().take(50) {
            println!("  {id}");
        }
    }
    assert!(
        regressions.is_empty(),
        "{} regressions:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}
