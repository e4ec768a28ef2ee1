//! pgxc-cluster: the vocabulary every cluster component shares.
//!
//! - [`hash`]: the distribution hash — PostgreSQL 15's own hash functions (`hashint4`, `hashint8`,
//!   `hashtext`, `hash_numeric`, ...), reproduced bit for bit and fixed to little-endian byte order,
//!   so a row lands on the same datanode on every platform and `SELECT hashint4(k)` on PostgreSQL
//!   tells where it goes.
//! - [`locator`]: Postgres-XC's locator — which datanodes a row or a statement touches for
//!   `DISTRIBUTE BY HASH | MODULO | ROUNDROBIN | REPLICATION` over a node list (`pgxc_class`).
//! - [`proto`]: the coordinator ↔ datanode messages (begin under a GXID, execute under a snapshot, 2PC).
//! - [`twophase`]: the coordinator's commit protocol (one phase for one writer, two-phase commit with a
//!   durable GTM decision for more) and the in-doubt resolver behind `pgxc clean`.

pub mod hash;
pub mod locator;
pub mod proto;
pub mod twophase;
