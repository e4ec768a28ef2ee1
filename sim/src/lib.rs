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
//! - [`elle`]: the list-append history and its Elle-style snapshot-isolation checker (pure; its tests run
//!   in normal mode too).
//! - `workload` (madsim only): pieces whole-cluster suites share: seed-chosen faults and healing, the
//!   background in-doubt resolver, the liveness check after healing.
//! - `coord` (madsim only): simulated coordinators (the production `Coordinator` and
//!   `CoordSession` with their catalog engine on a simulated disk) and GTM proxies; clients run SQL
//!   through `CoordSession::execute` on the coordinator's machine.
//! - `harness` (madsim only): the seed loop, replay commands, determinism checks, simulated-time rate.
//!
//! Environment: `PGXC_SIM_SEEDS` (how many seeds), `PGXC_SIM_SEED_BASE` (first seed), `PGXC_SIM_SEED` (replay
//! one seed).

pub mod elle;
pub mod gtm_history;

#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod coord;
#[cfg(madsim)]
pub mod harness;
#[cfg(madsim)]
pub mod workload;
