//! pgxc-cluster: the vocabulary every cluster component shares.
//!
//! - [`hash`]: the distribution hash — PostgreSQL 15's own hash functions (`hashint4`, `hashint8`,
//!   `hashtext`, `hash_numeric`, ...), reproduced bit for bit and fixed to little-endian byte order,
//!   so a row lands on the same datanode on every platform and `SELECT hashint4(k)` on PostgreSQL
//!   tells where it goes.
//! - [`locator`]: Postgres-XC's locator — which datanodes a row or a statement touches for
//!   `DISTRIBUTE BY HASH | MODULO | ROUNDROBIN | REPLICATION` over a node list (`pgxc_class`).

pub mod hash;
pub mod locator;
