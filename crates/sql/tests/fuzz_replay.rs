//! Replays the `sql_plan` fuzz target's seed corpus (`fuzz/corpus/sql_plan/`) and its saved
//! findings (`fuzz/artifacts/sql_plan/`) through the same harness as the fuzz target
//! (`fuzz/harness/sql_plan.rs`): `EXPLAIN <input>` and `<input>`, each in a rolled-back block on an
//! in-memory engine with a small schema. Every input must finish without a panic; the panicking
//! inputs are collected and listed. Regenerate the seeds with
//! `python3 fuzz/scripts/make_sql_plan_corpus.py`.
#![cfg(not(madsim))]

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

#[path = "../../../fuzz/harness/sql_plan.rs"]
mod harness;

/// The files of `dir` (sorted; a missing directory has none), notes (`*.md`, `*.txt`) left out.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "md" || e == "txt"))
        .collect();
    out.sort();
    out
}

#[test]
fn sql_plan_corpus_never_panics() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = inputs(&fuzz.join("corpus/sql_plan"));
    let artifacts = inputs(&fuzz.join("artifacts/sql_plan"));
    assert!(
        corpus.len() >= 50,
        "the seed corpus fuzz/corpus/sql_plan has {} files; regenerate it with \
         `python3 fuzz/scripts/make_sql_plan_corpus.py`",
        corpus.len()
    );
    let mut h = harness::Harness::new();
    let mut failures = Vec::new();
    let hook = std::panic::take_hook();
    // The failures are listed at the end; keep the per-input panic messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    for path in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(AssertUnwindSafe(|| h.run(&data))).is_err() {
            failures.push(format!(
                "{}: {:?}",
                path.display(),
                String::from_utf8_lossy(&data)
            ));
            // The engine may be left mid-statement: start the next input on a fresh one.
            h = harness::Harness::new();
        }
    }
    std::panic::set_hook(hook);
    println!(
        "replayed {} corpus + {} artifact inputs, {} panicked",
        corpus.len(),
        artifacts.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "inputs that panicked:\n{}",
        failures.join("\n")
    );
}
