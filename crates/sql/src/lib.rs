//! pgxc-sql: the SQL engine shared by coordinators and datanodes, with PostgreSQL 15 semantics.
//!
//! - [`types`]: PostgreSQL's data types ([`types::DataType`]) and values ([`types::Value`]), their text
//!   and binary formats, and casts.
//! - [`parser`]: the front end: sqlparser (PostgreSQL dialect) plus a small pre-parse layer for
//!   statements it cannot parse and the Postgres-XC cluster extensions; syntax errors are 42601 with a
//!   position.

pub mod parser;
pub mod types;
