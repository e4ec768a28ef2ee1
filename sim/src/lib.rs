//! pgxc-sim: deterministic simulation of pgxc under madsim.
//!
//! The simulation suites live in `sim/tests/` and compile only under `cfg(madsim)`. Run them with
//! `cargo test --features sim` from the repository root (the launcher test re-runs this crate with
//! `--cfg madsim` in `target/sim`), or directly with `cargo sim-test` (an alias in `.cargo/config.toml`).
//!
//! - [`gtm_history`]: the events a GTM simulation records and the checkers that judge them (pure; their own
//!   tests run in normal mode too).
//! - `cluster` (madsim only): a simulated cluster's machines (GTM group, datanodes running the
//!   production server over the simulated network and disk) and the coordinator's side of the
//!   commit protocol over datanode connections.
//! - `harness` (madsim only): the seed loop, replay commands, determinism checks, simulated-time rate.
//!
//! Environment: `PGXC_SIM_SEEDS` (how many seeds), `PGXC_SIM_SEED_BASE` (first seed), `PGXC_SIM_SEED` (replay
//! one seed).

pub mod gtm_history;

#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod harness;
