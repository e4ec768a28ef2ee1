//! pgxc-sim: deterministic simulation of pgxc under madsim.
//!
//! The simulation suites live in `sim/tests/` and compile only under `cfg(madsim)`. Run them with
//! `cargo test --features sim` from the repository root (the launcher test re-runs this crate with
//! `--cfg madsim` in `target/sim`), or directly with `cargo sim-test` (an alias in `.cargo/config.toml`).
//!
//! Environment: `PGXC_SIM_SEEDS` (how many seeds, default per suite), `PGXC_SIM_SEED` (replay one seed).

#[cfg(all(feature = "sim", not(madsim)))]
const _: () = {
    // This crate is compiled in normal mode only for the launcher test; nothing simulated runs here.
};

#[cfg(madsim)]
pub mod harness;
