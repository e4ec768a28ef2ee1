//! Redistribution: Postgres-XC's `ALTER TABLE t DISTRIBUTE BY ...`, `ALTER TABLE t TO NODE (..)` /
//! `TO GROUP g`, `ALTER TABLE t ADD NODE (..)` and `ALTER TABLE t DELETE NODE (..)`.
//!
//! A child module of [`crate::session`] (declared there), so it drives the session's global
//! transaction with the session's own helpers. The whole change is one global transaction:
//!
//! 1. the table's placement is read from `pgxc_class` under the statement's snapshot and the new
//!    placement computed from the actions (checked as `CREATE TABLE` checks it: known datanodes,
//!    a distributable key, a non-empty node list);
//! 2. on every old node that holds a copy to move (every node of a distributed table, the first
//!    node of a replicated one) a cursor `DECLARE`d over `SELECT *` materialises the rows under
//!    the snapshot; then `DELETE FROM t` runs on every old node (MVCC: concurrent readers keep
//!    seeing those rows until this transaction is visible to them);
//! 3. the cursors are read [`BATCH`] rows at a time; every row is placed by the new locator and
//!    each batch goes to its nodes as one `COPY ... FROM STDIN` per node (the coordinator holds at
//!    most one batch);
//! 4. `pgxc_class` is updated here and on every other coordinator.
//!
//! The statement's GXID is then committed like DDL: with two-phase commit over every datanode it
//! wrote and every coordinator's catalog. The GXID leaves the GTM's running set only after every
//! `COMMIT PREPARED` is done (`docs/cluster.md`, "Transactions"), and a statement resolves
//! `pgxc_class` and reads the datanodes under one snapshot, so a concurrent reader sees either the
//! old catalog with the old rows on the old nodes, or the new catalog with the new rows.

use pgxc_cluster::locator::{Distribution, LocatorType};
use pgxc_common::{PgError, SqlState};
use pgxc_sql::parser::{self, AlterDistribution, DistributionStrategy, NodeTarget};
use pgxc_sql::types::{DataType, TimeZone, Value};
use pgxc_sql::QueryResult;
use sqlparser::ast;

use super::{internal, quote_lit, undefined_node, CoordSession, Placed};
use crate::node::PGXC_CLASS;
use crate::route;

/// Rows moved per `FETCH` (and per `COPY` to each node): what the coordinator holds at once.
pub const BATCH: usize = 10_000;

/// The cursor each old node reads its rows through.
const CURSOR: &str = "__pgxc_redistribute";

/// A double-quoted SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One field of a `COPY` text-format line for `v` of type `ty` (`\N` for NULL; backslash, tab,
/// newline and carriage return escaped).
fn copy_field(v: &Value, ty: &DataType, out: &mut String) {
    if v.is_null() {
        out.push_str("\\N");
        return;
    }
    for ch in v.to_text(ty, &TimeZone::utc()).chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The placement `actions` lead to from `old`, in order (XC applies an ALTER TABLE's
/// subcommands one after the other). `columns` are the table's columns, `datanodes` the
/// cluster's datanodes, `group` resolves `TO GROUP g` (`None`: no such group).
///
/// Errors (XC's): 42703 unknown key column; 42704 unknown datanode or group, or `DELETE NODE` of
/// a node the table is not on; 42710 `ADD NODE` of a node it is already on; 42P16 an empty node
/// list or a key type that cannot be distributed (`Distribution::new`).
pub fn new_distribution(
    old: &Distribution,
    columns: &[(String, DataType)],
    datanodes: &[String],
    actions: &[AlterDistribution],
    group: &dyn Fn(&str) -> Option<Vec<String>>,
    table: &str,
) -> Result<Distribution, PgError> {
    let known = |n: &str| -> Result<String, PgError> {
        if datanodes.iter().any(|d| d == n) {
            Ok(n.to_string())
        } else {
            Err(undefined_node(n))
        }
    };
    let mut kind = old.kind;
    let mut key = old.key.as_ref().map(|(i, _)| *i);
    let mut nodes = old.nodes.clone();
    for a in actions {
        match a {
            AlterDistribution::DistributeBy(s) => {
                let col = |id: &ast::Ident| -> Result<usize, PgError> {
                    let n = parser::normalize_ident(id);
                    columns.iter().position(|(c, _)| *c == n).ok_or_else(|| {
                        PgError::new(
                            SqlState::UndefinedColumn,
                            format!("column \"{n}\" does not exist"),
                        )
                    })
                };
                (kind, key) = match s {
                    DistributionStrategy::Hash(c) => (LocatorType::Hash, Some(col(c)?)),
                    DistributionStrategy::Modulo(c) => (LocatorType::Modulo, Some(col(c)?)),
                    DistributionStrategy::RoundRobin => (LocatorType::RoundRobin, None),
                    DistributionStrategy::Replication => (LocatorType::Replicated, None),
                };
            }
            AlterDistribution::To(NodeTarget::Nodes(v)) => {
                nodes = Vec::new();
                for id in v {
                    let n = known(&parser::normalize_ident(id))?;
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
            }
            AlterDistribution::To(NodeTarget::Group(g)) => {
                let g = parser::normalize_ident(g);
                let members = group(&g).ok_or_else(|| {
                    PgError::new(
                        SqlState::UndefinedObject,
                        format!("PGXC Group {g}: group not defined"),
                    )
                })?;
                nodes = Vec::new();
                for m in members {
                    let n = known(&m)?;
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
            }
            AlterDistribution::AddNode(v) => {
                for id in v {
                    let n = known(&parser::normalize_ident(id))?;
                    if nodes.contains(&n) {
                        return Err(PgError::new(
                            SqlState::DuplicateObject,
                            format!("PGXC Node {n}: object already defined in table \"{table}\""),
                        ));
                    }
                    nodes.push(n);
                }
            }
            AlterDistribution::DeleteNode(v) => {
                for id in v {
                    let n = known(&parser::normalize_ident(id))?;
                    let Some(i) = nodes.iter().position(|x| *x == n) else {
                        return Err(PgError::new(
                            SqlState::UndefinedObject,
                            format!("PGXC Node {n}: object not in relation node list"),
                        ));
                    };
                    nodes.remove(i);
                }
            }
        }
    }
    if nodes.is_empty() {
        return Err(PgError::new(
            SqlState::InvalidTableDefinition,
            "Node list is empty: one node at least is mandatory",
        ));
    }
    Distribution::new(kind, key.map(|k| (k, columns[k].1.clone())), nodes)
}

impl CoordSession {
    /// `ALTER TABLE [IF EXISTS] t {DISTRIBUTE BY .. | TO NODE (..) | TO GROUP g | ADD NODE (..) |
    /// DELETE NODE (..)} [, ...]` (XC's redistribution): moves every row to the node the new
    /// locator places it on and updates `pgxc_class` on every coordinator, all in the session's
    /// global transaction (so also inside a transaction block, and undone by its ROLLBACK).
    /// A change that leaves the placement as it was moves nothing. Answers `ALTER TABLE`.
    ///
    /// Errors: 42P01 no such table (a NOTICE-free no-op with IF EXISTS), 42809 not a distributed
    /// table, those of [`new_distribution`], and the datanodes' (e.g. a row the new key type
    /// cannot place).
    pub(super) async fn alter_distribution(
        &mut self,
        table: &ast::ObjectName,
        if_exists: bool,
        actions: &[AlterDistribution],
    ) -> Result<QueryResult, PgError> {
        let done = || Ok(QueryResult::command("ALTER TABLE"));
        let Some(rel) = route::rel_name(table) else {
            return Err(super::unsupported("this table name"));
        };
        self.begin_statement().await?;
        let Some(def) = self.lookup_def(&rel).await? else {
            if if_exists {
                return done();
            }
            return Err(PgError::new(
                SqlState::UndefinedTable,
                format!("relation \"{}\" does not exist", rel.1),
            ));
        };
        let Some(old) = self.placed(&rel).await? else {
            return Err(PgError::new(
                SqlState::WrongObjectType,
                format!("\"{}\" is not a distributed table", def.name),
            ));
        };
        let datanodes = self.coord.datanode_names();
        // Resolve the groups the actions name first (the resolver below is synchronous).
        let mut groups: Vec<(String, Option<Vec<String>>)> = Vec::new();
        for a in actions {
            if let AlterDistribution::To(NodeTarget::Group(g)) = a {
                let g = parser::normalize_ident(g);
                let members = self.node_group(&g).await?;
                groups.push((g, members));
            }
        }
        let lookup = |g: &str| {
            groups
                .iter()
                .find(|(n, _)| n == g)
                .and_then(|(_, m)| m.clone())
        };
        let new = new_distribution(
            &old.dist,
            &old.columns,
            &datanodes,
            actions,
            &lookup,
            &def.name,
        )?;
        if new == old.dist {
            return done();
        }
        self.move_rows(&old, &new).await?;
        let q = format!(
            "UPDATE {PGXC_CLASS} SET pclocatortype = '{}', pcattname = {}, nodes = {} \
             WHERE pcrelname = {}",
            new.kind.letter(),
            new.key
                .as_ref()
                .map(|(k, _)| quote_lit(&old.columns[*k].0))
                .unwrap_or_else(|| "NULL".into()),
            quote_lit(&new.nodes.join(",")),
            quote_lit(&old.name)
        );
        self.catalog_everywhere(&q).await?;
        // The catalog changed: this coordinator commits with the others (2PC), as for DDL.
        self.txn()?.local_ddl = true;
        done()
    }

    /// Move the rows of `old` to the nodes `new` places them on (steps 2 and 3 of the module's
    /// description), in the open global transaction.
    async fn move_rows(&mut self, old: &Placed, new: &Distribution) -> Result<(), PgError> {
        let (schema, name) = old.name.split_once('.').unwrap_or(("public", &old.name));
        let qname = format!("{}.{}", quote_ident(schema), quote_ident(name));
        let sources: Vec<String> = if old.dist.kind == LocatorType::Replicated {
            old.dist.nodes.iter().take(1).cloned().collect()
        } else {
            old.dist.nodes.clone()
        };
        for n in &sources {
            self.node_exec(
                n,
                &format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR SELECT * FROM {qname}"),
            )
            .await?;
        }
        for n in &old.dist.nodes {
            self.node_exec(n, &format!("DELETE FROM {qname}")).await?;
        }
        let cols: Vec<String> = old.columns.iter().map(|(c, _)| quote_ident(c)).collect();
        let copy = format!("COPY {qname} ({}) FROM STDIN", cols.join(", "));
        let mut moved = 0u64;
        for n in &sources {
            loop {
                let mut r = self
                    .node_exec(n, &format!("FETCH FORWARD {BATCH} FROM {CURSOR}"))
                    .await?;
                let rows = r
                    .pop()
                    .ok_or_else(|| internal("FETCH returned no result"))?
                    .rows;
                if rows.is_empty() {
                    break;
                }
                let mut per_node: Vec<String> = vec![String::new(); new.nodes.len()];
                for row in &rows {
                    if row.len() != old.columns.len() {
                        return Err(internal("a fetched row does not match the table's columns"));
                    }
                    let mut line = String::new();
                    for (i, (v, (_, ty))) in row.iter().zip(&old.columns).enumerate() {
                        if i > 0 {
                            line.push('\t');
                        }
                        copy_field(v, ty, &mut line);
                    }
                    line.push('\n');
                    for t in new.nodes_for_insert(row, &mut self.round_robin)? {
                        if let Some(buf) = per_node.get_mut(t) {
                            buf.push_str(&line);
                        }
                    }
                }
                moved += rows.len() as u64;
                for (i, data) in per_node.into_iter().enumerate() {
                    if data.is_empty() {
                        continue;
                    }
                    let node = new.nodes[i].clone();
                    self.node_copy(&node, &copy, data.into_bytes()).await?;
                }
                if rows.len() < BATCH {
                    break;
                }
            }
            self.node_exec(n, &format!("CLOSE {CURSOR}")).await?;
        }
        tracing::debug!(table = %old.name, rows = moved, "redistributed");
        Ok(())
    }
}
