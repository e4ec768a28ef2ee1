//! pgxc-datanode: a datanode serving coordinators.
//!
//! - [`backend`]: the synchronous request handler — one coordinator connection's state (the
//!   global transaction it directs) over one engine [`pgxc_sql::Session`]; pure logic, tested in
//!   process.
//! - [`server`]: the TCP server (`pgxc_common::frame` frames of [`pgxc_cluster::proto`] messages),
//!   one session thread per connection as in `pgxc-wire` (under madsim the session lives on the
//!   connection's task and statements restart instead of blocking: `Backend::handle_async`).
//! - [`client`]: a coordinator's connection to a datanode.
//! - [`gtm_source`]: the cluster GTM as the engine's [`pgxc_sql::engine::TxnSource`], so the datanode's
//!   own internal transactions take GXIDs from the same sequence as everybody's (blocking; not
//!   usable under madsim, where `pgxc-sim` supplies a source that asked the GTM ahead).
//!
//! **Invariant:** every transaction on a datanode of a cluster runs under a GXID the GTM issued
//! (coordinator-directed, or the datanode's own via [`gtm_source`]); the engine's local GTM is never
//! used, so no GXID is issued twice cluster-wide.

pub mod backend;
pub mod client;
pub mod gtm_source;
pub mod server;
