//! Crash failpoints for real-process fault tests (`tests/tests/cluster_faults.rs`).
//!
//! A failpoint is a named place in the code where a test can make the process die at once, as if
//! it had been killed there (`SIGKILL`, power loss): [`hit`] calls `std::process::exit(86)`
//! ([`EXIT_CODE`]) when the process environment variable `PGXC_FAILPOINTS` ([`ENV`]) — a
//! comma-separated list of names, read once per process — names it. Nothing is flushed, closed or
//! rolled back first beyond what `exit` itself does; durable state is whatever was on disk at that
//! point. With the variable unset (production, the simulator) every call is one load of a cached
//! empty list.
//!
//! The points (the names are stable: `tests/tests/cluster_faults.rs` arms them by name):
//!
//! | name | process | where |
//! |---|---|---|
//! | `coordinator-after-prepare` | coordinator | two-phase commit: every writer answered PREPARE, the commit decision is not yet recorded at the GTM |
//! | `coordinator-after-decision` | coordinator | the GTM recorded the commit decision, no COMMIT PREPARED sent yet |
//! | `coordinator-mid-commit-prepared` | coordinator | the first writer answered COMMIT PREPARED, the others are still prepared |
//! | `datanode-before-prepare` | datanode | a `PREPARE TRANSACTION` request arrived; nothing made durable |
//! | `datanode-after-prepare` | datanode | the prepared transaction is durable; the reply is not sent |
//!
//! The `datanode-*` points sit in the datanode request handler, which a coordinator also runs on its
//! internal endpoint (the catalog's part of cluster-wide DDL): set them on datanode processes only.
//! This mirrors the fault injection PostgreSQL's own tests get from `pg_ctl stop -m immediate` at
//! chosen points, made deterministic.

use std::sync::OnceLock;

/// The environment variable naming the armed failpoints (comma separated; spaces ignored).
pub const ENV: &str = "PGXC_FAILPOINTS";

/// The exit status of a process stopped by a failpoint.
pub const EXIT_CODE: i32 = 86;

fn armed_list() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| parse(&std::env::var(ENV).unwrap_or_default()))
}

/// The names in a `PGXC_FAILPOINTS` value: comma separated, trimmed, empty entries dropped.
pub fn parse(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether failpoint `name` is armed in this process (`PGXC_FAILPOINTS` names it).
pub fn armed(name: &str) -> bool {
    armed_list().iter().any(|n| n == name)
}

/// Failpoint `name`: if armed, print one line to stderr (the component's log) and exit the
/// process at once with status [`EXIT_CODE`] — a crash, no cleanup. Otherwise do nothing.
pub fn hit(name: &str) {
    if armed(name) {
        eprintln!("failpoint {name} hit: exiting with status {EXIT_CODE}");
        std::process::exit(EXIT_CODE);
    }
}

/// [`hit`] only when `cond` holds (one call line where a handler serves several requests).
pub fn hit_if(cond: bool, name: &str) {
    if cond {
        hit(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_trims_and_drops_empty_entries() {
        assert_eq!(
            parse(" coordinator-after-prepare, ,datanode-after-prepare,"),
            vec!["coordinator-after-prepare", "datanode-after-prepare"]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn unarmed_points_return() {
        // The test process does not set PGXC_FAILPOINTS for these names.
        assert!(!armed("no-such-failpoint"));
        hit("no-such-failpoint");
        hit_if(true, "no-such-failpoint");
        hit_if(false, "no-such-failpoint");
    }
}
