//! pgxc-gtm: the global transaction manager.
//!
//! Postgres-XC's GTM hands out GXIDs, global snapshots and sequence values to every coordinator and datanode
//! (seed, chapter A-2). Ours is an openraft group that fails over by itself.
//!
//! Layers, from pure to I/O:
//! - [`proto`]: the client protocol (requests, responses, batches) spoken by clients, proxies and GTM nodes.
//! - [`core`]: the pure state machine: replicated [`core::DurableState`] (GXID reservations, sessions,
//!   sequences, prepared transactions, barriers) and the leader's volatile [`core::LeaderState`] (running
//!   transactions, snapshots, cached GXID and sequence ranges). No I/O, no clocks.
//! - [`raft`]: openraft wiring: type config, the madsim-switchable runtime, the log store and state machine on
//!   the storage seam, and the TCP network.
//! - [`server`], [`client`], [`proxy`]: the GTM node, the client library, and the GTM proxy.

pub mod client;
pub mod core;
pub mod proto;
pub mod proxy;
pub mod raft;
pub mod server;
mod tasks;
