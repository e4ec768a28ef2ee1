//! pgxc-sql: the SQL engine shared by coordinators and datanodes, with PostgreSQL 15 semantics.
//!
//! - [`types`]: PostgreSQL's data types ([`types::DataType`]) and values ([`types::Value`]), their text
//!   and binary formats, and casts.
//! - [`parser`]: the front end: sqlparser (PostgreSQL dialect) plus a small pre-parse layer for
//!   statements it cannot parse and the Postgres-XC cluster extensions; syntax errors are 42601 with a
//!   position.
//! - [`expr`]: typed expression trees with PostgreSQL's evaluation semantics.
//! - [`catalog`]: the SQL catalog (tables, columns, constraints, indexes, views) stored in an MVCC
//!   system table, and the row / index-key encodings.
//! - [`engine`]: the standalone engine ([`Engine`]) and its [`Session`]s: simple-query execution,
//!   transaction blocks, SET/SHOW, PREPARE/EXECUTE, cursors. Statements are bound and executed by
//!   a first, materializing executor (`exec`), driven by the conformance suite in `tests/sql`.

pub mod catalog;
pub mod engine;
mod exec;
pub mod expr;
pub mod funcs;
pub mod parser;
pub mod plan;
pub mod types;

pub use engine::{Engine, QueryResult, Session};
/// The ordering of two values of one ORDER BY key exactly as the engine's Sort operator applies
/// it: `(a, b, desc, nulls_first)`, PostgreSQL's B-tree order of the values (text bytewise, the
/// "C" collation), reversed for DESC, with NULLs placed by `nulls_first` (PostgreSQL's default:
/// `nulls_first == desc`). Coordinators merge datanodes' sorted streams with it.
pub use exec::agg::cmp_nulls;
/// The engine's set-returning functions by name (they expand rows where they are called).
pub use exec::plan_bind::SRFS as SET_RETURNING_FUNCTIONS;
