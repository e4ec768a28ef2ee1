//! `cargo test --features sim` at the workspace root lands here: this launcher re-runs the tests of `pgxc-sim`
//! (the whole-system simulation suites), `pgxc-gtm` and `pgxc-storage` under madsim (`--cfg madsim`, separate target dir `target/sim`) as a child cargo, streams their
//! output, and fails if the child fails or ran no simulation test. Without it, `--features sim` would silently
//! run in normal mode (the simulation tests are compiled only under `cfg(madsim)`).
#![cfg(all(feature = "sim", not(madsim)))]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn simulation_suites_run_under_madsim() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "test",
            "-p",
            "pgxc-sim",
            "-p",
            "pgxc-gtm",
            "-p",
            "pgxc-storage",
        ])
        .args(["--features", "pgxc-sim/sim", "--target-dir", "target/sim"])
        .args(["--config", "build.rustflags=['--cfg','madsim']"])
        .args(["--config", "build.rustdocflags=['--cfg','madsim']"])
        .args(["--", "--nocapture", "--test-threads=1"])
        // A RUSTFLAGS in the environment would override the config's rustflags and drop `--cfg madsim`.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawn the madsim cargo");
    let stdout = child.stdout.take().expect("child stdout");
    let mut passed = 0u64;
    let mut failed_lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        // Written to the process's stderr directly: the test harness captures `println!`/`eprintln!`, not this.
        let _ = writeln!(std::io::stderr(), "[sim] {line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            if let Some(n) = rest
                .split(';')
                .next()
                .and_then(|s| s.split_whitespace().nth(1))
            {
                passed += n.parse::<u64>().unwrap_or(0);
            }
            if !rest.starts_with("ok") {
                failed_lines.push(line.clone());
            }
        }
    }
    let status = child.wait().expect("wait for the madsim cargo");
    assert!(
        status.success(),
        "simulation suites failed under madsim: {status}; {failed_lines:?}"
    );
    assert!(passed > 0, "the madsim build ran no simulation test");
}
