//! pgxc-coordinator: where applications connect (Postgres-XC's coordinator, seed A-2).
//!
//! - [`node`]: the [`node::Coordinator`] a process runs — its name, the datanodes, the catalog
//!   engine (every table's definition plus `pgxc.pgxc_class`, no user rows), the GTM client and the
//!   pool of datanode connections (XC's pooler).
//! - [`session`]: [`session::CoordSession`], one client session: statements are placed with the
//!   locator and shipped whole to the datanodes that hold their rows (fast query shipping) when
//!   that is correct, otherwise evaluated on the coordinator over rows fetched under the
//!   statement's global snapshot; transactions commit in one phase on one writer and with
//!   two-phase commit on several (`pgxc_cluster::twophase`).
//! - [`wire`]: the PostgreSQL wire protocol in front of a coordinator (`pgxc_wire` with coordinator
//!   sessions).
//! - [`clean`]: `pgxc clean` (XC's pgxc_clean), deciding only from the GTM's record.
//! - [`explain`]: EXPLAIN's text in Postgres-XC's shapes (`Data Node Scan on
//!   "__REMOTE_FQS_QUERY__"`, `Node/s:`, `Remote query:`).
//! - [`gtm_seq`]: the GTM as the catalog engine's source of GXIDs, snapshots and sequences
//!   (global sequences).
//! - [`route`]: what a statement touches (relations, distribution-key equalities, shippability).
//!
//! Design and the order of the commit protocol: `docs/cluster.md`.

pub mod clean;
pub mod explain;
pub mod gtm_seq;
pub mod node;
pub mod route;
pub mod session;
// The wire front end blocks a session thread on the runtime (`Handle::block_on`): not under madsim,
// where simulated clients call `CoordSession::execute` directly.
#[cfg(not(madsim))]
pub mod wire;
