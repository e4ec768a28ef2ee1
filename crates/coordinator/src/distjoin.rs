//! Joins that are not colocated, run on the datanodes (Postgres-XL's redistribution): instead of
//! pulling every table to the coordinator ([`SelectRoute::Evaluate`]), the rows of all but one
//! side are moved to the datanodes of the side that stays, and the join runs there.
//!
//! A moved side's rows are fetched from its datanodes (its single-table WHERE conjuncts pushed,
//! `route::scan_filters`) in batches (`Query`/`Fetch` of [`ROWSET_BATCH`] rows, every source node
//! at once); each batch is routed and forwarded as it arrives, as typed values
//! (`DnRequest::Rowset`, never SQL text), into a session rowset of the statement's global
//! transaction on each target node (every target node at once). The join query names the rowset
//! (`__pgxc_moved_<k>__ AS "alias"`) in the table's place and runs on every target node at once;
//! then the rowsets are dropped (after an error too, best effort: they end with the transaction
//! anyway). Nothing touches storage, so other transactions see nothing and a read-only
//! transaction stays read-only. The coordinator holds one batch per source node at a time.
//!
//! - **redistribute** (XL's `Distribute results by H: col`): each row goes to the one datanode
//!   the distribution of the join key sends it to — the staying table's own distribution when the
//!   join is on its distribution key, or a hash of the join key over the target nodes when every
//!   side is moved. Only when both join keys have the same type (so equal keys hash alike); a
//!   NULL key never matches an equality, so such rows are dropped;
//! - **broadcast**: every row goes to every datanode of the staying side (any inner join).
//!
//! The plan is the cheapest of those by rows moved, estimated from `ANALYZE`'s row counts
//! ([`STATS_TABLE`]; 1000 rows per table when a table has none, which makes redistribution the
//! default). Only SELECTs over inner joins of base tables qualify (no subqueries, views, outer
//! joins); the per-node results are concatenated, combined (count/sum/min/max) or handed to the
//! coordinator's final step (GROUP BY, ORDER BY, LIMIT...) as [`SelectRoute::Joined`] does.
//! `SET enable_remotejoin = off` turns this off (the coordinator joins).
//!
//! `ANALYZE [t, ...]` counts each distributed table's rows on each of its datanodes and stores
//! the counts in [`STATS_TABLE`] on every coordinator.

use std::collections::BTreeMap;

use pgxc_cluster::locator::{Distribution, LocatorType};
use pgxc_cluster::proto::{DnRequest, DnResponse, DnResult, ROWSET_BATCH};
use pgxc_common::{PgError, SqlState};
use pgxc_sql::parser;
use pgxc_sql::types::{DataType, Value};
use pgxc_sql::QueryResult;
use sqlparser::ast;

use super::{
    combine_aggregates, internal, joined_ddl, joined_rewrite, to_qr, CoordSession, JoinTable,
    JoinedRemote, Placed, SelectRoute, JOINED_TABLE,
};
use crate::explain::{self, ExplainOpts, RemoteScan};
use crate::node::PGXC_CLASS;
use crate::route;

/// The coordinator catalog table of `ANALYZE`'s row counts: `(relname text, node text,
/// reltuples int8)`, one row per distributed table and datanode (`relname` as in `pgxc_class`,
/// `schema.table`). Created by the first `ANALYZE` on every coordinator.
pub const STATS_TABLE: &str = "pgxc.pgxc_stats";

/// Rows assumed for a table `ANALYZE` has not counted.
const DEFAULT_ROWS: u64 = 1000;

/// How a moved side's rows reach the target datanodes.
#[derive(Clone, Debug)]
enum How {
    /// Every row to every target node.
    Broadcast,
    /// Each row to the node `dist` places its column `col` on (an index into the moved table's
    /// columns); `dist.nodes` are the target nodes. `label` is the column as the query names it.
    Distribute {
        dist: Distribution,
        col: usize,
        label: String,
    },
}

/// One moved FROM-list occurrence.
#[derive(Clone, Debug)]
struct Move {
    /// The session rowset its rows are moved into on every target node, and the name standing
    /// for the table in [`DistJoin::body`] (`__pgxc_moved_<k>__`, `k` its position).
    placeholder: String,
    /// The table (`schema.name`) and the name the query refers to it by.
    table: String,
    qualifier: String,
    /// The query fetching its rows, and the nodes it runs on.
    fetch: String,
    fetch_nodes: Vec<String>,
    columns: Vec<(String, DataType)>,
    how: How,
}

/// How the per-node results of the moved join become the statement's result.
#[derive(Clone, Debug)]
enum Finish {
    /// Concatenated (a plain join).
    Concat,
    /// Combined column by column (count/sum/min/max).
    Combine(Vec<route::Combine>),
    /// Loaded into [`JOINED_TABLE`] and finished by the coordinator (`local`).
    Local {
        local: String,
        columns: Vec<(String, DataType)>,
    },
}

/// A join run on the datanodes after moving rows ([`SelectRoute::Distributed`]).
#[derive(Clone, Debug)]
pub(super) struct DistJoin {
    /// The datanodes the join runs on.
    nodes: Vec<String>,
    moves: Vec<Move>,
    /// The query each node runs, with every moved table replaced by its rowset.
    body: String,
    finish: Finish,
}

/// The stream numbers of the moved sides' fetches, counted down from here (one per move), away
/// from the numbers shipped SELECTs count up from 1 on the same connections (`stream.rs`).
const MOVE_STREAM: u32 = u32::MAX;

/// Whether equal values of `ty` always have the same distribution hash (the types
/// redistribution by a join key accepts).
fn rehashable(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Bool
            | DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Text
            | DataType::Varchar(_)
            | DataType::Char(_)
            | DataType::Date
            | DataType::Timestamp
            | DataType::Timestamptz
            | DataType::Uuid
            | DataType::Bytea
    )
}

/// Route one batch of a moved side's rows to the `n` target nodes (indexes into
/// [`DistJoin::nodes`], which a [`How::Distribute`]'s distribution lists in the same order).
fn route_rows(rows: Vec<Vec<Value>>, how: &How, n: usize) -> Result<Vec<Vec<Vec<Value>>>, PgError> {
    let mut per: Vec<Vec<Vec<Value>>> = vec![Vec::new(); n];
    match how {
        How::Broadcast => {
            if let Some((last, rest)) = per.split_last_mut() {
                for p in rest {
                    p.extend(rows.iter().cloned());
                }
                *last = rows;
            }
        }
        How::Distribute { dist, col, .. } => {
            for r in rows {
                let key = r.get(*col).ok_or_else(|| internal("short row"))?;
                if key.is_null() {
                    continue; // never equal to anything
                }
                if let Some(t) = dist.node_for_key(key)? {
                    if let Some(p) = per.get_mut(t) {
                        p.push(r);
                    }
                }
            }
        }
    }
    Ok(per)
}

/// Poll every future of `futs` until all are done (on the calling task, in order, so the
/// outcome does not depend on scheduling); their outputs in the order of `futs`.
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Union-find over `(occurrence, column)` pairs joined by equalities.
fn find(
    parent: &mut BTreeMap<(usize, usize), (usize, usize)>,
    x: (usize, usize),
) -> (usize, usize) {
    let p = *parent.entry(x).or_insert(x);
    if p == x {
        x
    } else {
        let r = find(parent, p);
        parent.insert(x, r);
        r
    }
}

/// A candidate plan: the target nodes, what each occurrence does (`None`: stays), the cost.
struct Candidate {
    nodes: Vec<String>,
    how: Vec<Option<How>>,
    cost: u64,
}

impl CoordSession {
    /// Row counts per datanode of table `name` (`schema.table`) from [`STATS_TABLE`], if
    /// `ANALYZE` counted it.
    async fn stats_rows(&mut self, name: &str) -> Result<Option<u64>, PgError> {
        let exists = self
            .local
            .call(|s| s.table_def(Some("pgxc"), "pgxc_stats"))
            .await
            .map_err(super::io_err)?;
        if !matches!(exists, Ok(Some(_))) {
            return Ok(None);
        }
        let q = format!(
            "SELECT sum(reltuples)::int8, count(*)::int8 FROM {STATS_TABLE} WHERE relname = '{}'",
            name.replace('\'', "''")
        );
        let r = self.local_exec(&q, true).await?;
        Ok(match r.rows.first().map(|r| (r.first(), r.get(1))) {
            Some((Some(Value::Int8(n)), Some(Value::Int8(c)))) if *c > 0 => Some(*n as u64),
            _ => None,
        })
    }

    /// The [`SelectRoute::Distributed`] plan of `q`, or `None` when it does not qualify (the
    /// coordinator then evaluates it). Called after fast query shipping found no colocated join.
    pub(super) async fn dist_join_route(
        &mut self,
        q: &ast::Query,
    ) -> Result<Option<SelectRoute>, PgError> {
        let Some(shape) = route::inner_join(q) else {
            return Ok(None);
        };
        if shape.tables.len() < 2 || route::relation_mentions(q) != shape.tables.len() {
            return Ok(None);
        }
        // Three-part column names (`schema.table.col`) would not resolve against a derived table.
        let mut long_names = false;
        let _ = ast::visit_expressions(q, |e| {
            if let ast::Expr::CompoundIdentifier(ids) = e {
                long_names |= ids.len() > 2;
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        if long_names {
            return Ok(None);
        }
        let mut occ: Vec<(Placed, Vec<String>)> = Vec::new();
        for (rel, names) in &shape.tables {
            match self.placed(rel).await? {
                Some(p) => occ.push((p, names.clone())),
                None => return Ok(None),
            }
        }
        let mut rows = Vec::new();
        for (p, _) in &occ {
            rows.push(self.stats_rows(&p.name).await?.unwrap_or(DEFAULT_ROWS));
        }
        let Some(cand) = choose(&occ, &shape, &rows) else {
            return Ok(None);
        };
        // The statement with every moved occurrence replaced by its placeholder.
        let mut q2 = q.clone();
        let ast::SetExpr::Select(sel) = q2.body.as_mut() else {
            return Ok(None);
        };
        let mut k = 0usize;
        let mut factors: Vec<&mut ast::TableFactor> = Vec::new();
        for twj in sel.from.iter_mut() {
            factors.push(&mut twj.relation);
            for j in twj.joins.iter_mut() {
                factors.push(&mut j.relation);
            }
        }
        if factors.len() != occ.len() {
            return Ok(None);
        }
        // Every column reference of the statement: (qualifier, column), and whether `*` is used.
        let mut refs: Vec<(Option<String>, String)> = Vec::new();
        let _ = ast::visit_expressions(q, |e| {
            match e {
                ast::Expr::Identifier(id) => refs.push((None, parser::normalize_ident(id))),
                ast::Expr::CompoundIdentifier(ids) => {
                    if let [t, c] = ids.as_slice() {
                        refs.push((Some(parser::normalize_ident(t)), parser::normalize_ident(c)));
                    }
                }
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        let mut all_columns = false;
        let _ = ast::visit_expressions(q, |e| {
            all_columns |= matches!(e, ast::Expr::Wildcard(_) | ast::Expr::QualifiedWildcard(..));
            std::ops::ControlFlow::<()>::Continue(())
        });
        let all_columns = all_columns
            || match q.body.as_ref() {
                ast::SetExpr::Select(s) => s.projection.iter().any(|i| {
                    matches!(
                        i,
                        ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..)
                    )
                }),
                _ => true,
            };
        let filters = route::scan_filters(q);
        let preferred = self.coord.preferred();
        let mut moves = Vec::new();
        for (i, f) in factors.into_iter().enumerate() {
            let Some(how) = cand.how[i].clone() else {
                continue;
            };
            let (p, names) = &occ[i];
            let ast::TableFactor::Table { name, alias, .. } = f else {
                return Ok(None);
            };
            let qualifier = names[0].clone();
            // Only the columns the statement can refer to travel (all of them under `*`).
            let keep: Vec<usize> = (0..p.columns.len())
                .filter(|&c| {
                    all_columns
                        || refs.iter().any(|(t, n)| {
                            *n == p.columns[c].0 && t.as_ref().is_none_or(|t| names.contains(t))
                        })
                })
                .collect();
            let keep = if keep.is_empty() { vec![0] } else { keep };
            let columns: Vec<(String, DataType)> =
                keep.iter().map(|&c| p.columns[c].clone()).collect();
            let how = match how {
                How::Distribute { dist, col, label } => match keep.iter().position(|&c| c == col) {
                    Some(col) => How::Distribute { dist, col, label },
                    None => return Ok(None),
                },
                b => b,
            };
            let placeholder = format!("__pgxc_moved_{k}__");
            k += 1;
            *name = ast::ObjectName::from(vec![ast::Ident::new(placeholder.clone())]);
            // The rowset has the table's column names: only the qualifier is kept.
            *alias = Some(ast::TableAlias {
                explicit: true,
                name: ast::Ident::with_quote('"', qualifier.clone()),
                columns: Vec::new(),
                at: None,
            });
            let conj: Vec<String> = filters
                .iter()
                .filter(|f| {
                    f.qualifier == qualifier
                        && f.columns
                            .iter()
                            .all(|c| p.columns.iter().any(|(n, _)| n == c))
                })
                .map(|f| f.sql.clone())
                .collect();
            let cols: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
            let fetch = if conj.is_empty() {
                format!("SELECT {} FROM {}", cols.join(", "), p.name)
            } else {
                format!(
                    "SELECT {} FROM {} AS {} WHERE {}",
                    cols.join(", "),
                    p.name,
                    quote(&qualifier),
                    conj.join(" AND ")
                )
            };
            moves.push(Move {
                placeholder,
                table: p.name.clone(),
                qualifier,
                fetch,
                fetch_nodes: Self::fetch_nodes(p, preferred.as_deref())?,
                columns,
                how,
            });
        }
        let finish;
        let body;
        if let Some(comb) =
            route::combinable_aggregates_joined(q).filter(|_| self.switches.remote_group)
        {
            finish = Finish::Combine(comb);
            body = q2.to_string();
        } else if route::concat_safe(q) {
            finish = Finish::Concat;
            body = q2.to_string();
        } else {
            let tables: Vec<JoinTable> = occ
                .iter()
                .map(|(p, names)| (names.clone(), p.columns.clone()))
                .collect();
            let Some((remote, local, columns)) = joined_rewrite(&q2, &tables) else {
                return Ok(None);
            };
            finish = Finish::Local { local, columns };
            body = remote;
        }
        Ok(Some(SelectRoute::Distributed(DistJoin {
            nodes: cand.nodes,
            moves,
            body,
            finish,
        })))
    }

    /// Run a [`SelectRoute::Distributed`] plan: move the rows of every moved side into a session
    /// rowset on each target node ([`CoordSession::send_moved_rows`]), run the join on every target
    /// node at once, drop the rowsets, finish. Errors: the datanodes' (the statement then fails
    /// as any other). The rowsets are dropped after an error too (best effort; they end with the
    /// transaction anyway), so a block rolled back to a savepoint finds none.
    pub(super) async fn run_dist_join(&mut self, d: &DistJoin) -> Result<QueryResult, PgError> {
        let parts = match self.moved_join(d).await {
            Ok(parts) => parts,
            Err(e) => {
                let _ = self.drop_rowsets(d).await;
                return Err(e);
            }
        };
        self.drop_rowsets(d).await?;
        match &d.finish {
            Finish::Combine(comb) => combine_aggregates(parts, comb),
            Finish::Concat => {
                let mut it = parts.into_iter();
                let mut out = to_qr(it.next().ok_or_else(|| internal("no datanode answered"))?);
                for r in it {
                    out.rows.extend(r.rows);
                }
                out.tag = format!("SELECT {}", out.rows.len());
                Ok(out)
            }
            Finish::Local { local, columns } => {
                let rows: Vec<Vec<Value>> = parts.into_iter().flat_map(|r| r.rows).collect();
                let j = JoinedRemote {
                    nodes: d.nodes.clone(),
                    remote: d.body.clone(),
                    local: local.clone(),
                    columns: columns.clone(),
                };
                self.local_run("SAVEPOINT pgxc_join", true).await?;
                let r = async {
                    self.local_run(&joined_ddl(&j), true).await?;
                    let names = j.columns.iter().map(|(n, _)| quote(n)).collect();
                    self.local_load(JOINED_TABLE, names, rows).await?;
                    self.local_exec(&j.local, true).await
                }
                .await;
                let undo = self.undo_savepoint("pgxc_join").await;
                let r = r?;
                undo?;
                Ok(r)
            }
        }
    }

    /// Move every moved side's rows, then run [`DistJoin::body`] on every target node at once:
    /// each node's last result, in the order of [`DistJoin::nodes`].
    async fn moved_join(&mut self, d: &DistJoin) -> Result<Vec<DnResult>, PgError> {
        for (i, m) in d.moves.iter().enumerate() {
            let stream = MOVE_STREAM - i as u32;
            self.send_moved_rows(d, m, stream).await?;
        }
        let snapshot = self.txn()?.snapshot.clone();
        let joins: Vec<(String, DnRequest)> = d
            .nodes
            .iter()
            .map(|node| {
                let req = DnRequest::Execute {
                    snapshot: snapshot.clone(),
                    sql: d.body.clone(),
                };
                (node.clone(), req)
            })
            .collect();
        let mut parts = Vec::new();
        for (_, answer) in self.dn_calls(joins).await? {
            match answer {
                DnResponse::Results { mut results, .. } => {
                    if let Some(r) = results.pop() {
                        parts.push(r);
                    }
                }
                other => return Err(internal(format!("unexpected datanode answer {other:?}"))),
            }
        }
        Ok(parts)
    }

    /// Drop the rowsets of `d`'s moves on the target nodes taking part in the transaction
    /// (connections that broke are skipped: their sessions are gone).
    async fn drop_rowsets(&mut self, d: &DistJoin) -> Result<(), PgError> {
        let live: Vec<String> = match &self.txn {
            Some(t) => d
                .nodes
                .iter()
                .filter(|n| t.conns.get(*n).is_some_and(|(c, _)| !c.is_broken()))
                .cloned()
                .collect(),
            None => return Ok(()),
        };
        let mut first_error = None;
        for m in &d.moves {
            let drops: Vec<(String, DnRequest)> = live
                .iter()
                .map(|node| {
                    let req = DnRequest::DropRowset {
                        name: m.placeholder.clone(),
                    };
                    (node.clone(), req)
                })
                .collect();
            if let Err(e) = self.dn_calls(drops).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Move the rows of `m` to the target nodes of `d` as typed values: its fetch query runs on
    /// every fetch node at once as a `Query` answered in batches of [`ROWSET_BATCH`] rows (stream
    /// number `stream`); each batch is routed (every row to every target when broadcast; else the
    /// one target its key's distribution picks, NULL keys dropped) and forwarded as it arrives as
    /// one `Rowset` per target node, all targets at once, then the sources' next batches are
    /// fetched. So the coordinator holds at most one batch per fetch node, and a `Rowset`
    /// message is never bigger than the answer its rows came in. Every target ends with the
    /// rowset [`Move::placeholder`] created, empty if no row goes there.
    async fn send_moved_rows(
        &mut self,
        d: &DistJoin,
        m: &Move,
        stream: u32,
    ) -> Result<(), PgError> {
        let n = d.nodes.len();
        let snapshot = self.txn()?.snapshot.clone();
        let mut created = vec![false; n];
        let mut asks: Vec<(String, DnRequest)> = m
            .fetch_nodes
            .iter()
            .map(|node| {
                let req = DnRequest::Query {
                    snapshot: snapshot.clone(),
                    sql: m.fetch.clone(),
                    stream,
                    batch: ROWSET_BATCH,
                };
                (node.clone(), req)
            })
            .collect();
        while !asks.is_empty() {
            let answers = self.dn_calls(std::mem::take(&mut asks)).await?;
            for (node, answer) in answers {
                let DnResponse::Batch { rows, more, .. } = answer else {
                    return Err(internal(format!("unexpected datanode answer {answer:?}")));
                };
                if more {
                    asks.push((
                        node,
                        DnRequest::Fetch {
                            stream,
                            batch: ROWSET_BATCH,
                        },
                    ));
                }
                let per = route_rows(rows, &m.how, n)?;
                let sends: Vec<(String, DnRequest)> = per
                    .into_iter()
                    .enumerate()
                    .filter(|(_, rows)| !rows.is_empty())
                    .map(|(t, rows)| {
                        let columns = (!created[t]).then(|| m.columns.clone());
                        created[t] = true;
                        let req = DnRequest::Rowset {
                            snapshot: snapshot.clone(),
                            name: m.placeholder.clone(),
                            columns,
                            rows,
                        };
                        (d.nodes[t].clone(), req)
                    })
                    .collect();
                self.dn_calls(sends).await?;
            }
        }
        let empty: Vec<(String, DnRequest)> = (0..n)
            .filter(|&t| !created[t])
            .map(|t| {
                let req = DnRequest::Rowset {
                    snapshot: snapshot.clone(),
                    name: m.placeholder.clone(),
                    columns: Some(m.columns.clone()),
                    rows: Vec::new(),
                };
                (d.nodes[t].clone(), req)
            })
            .collect();
        self.dn_calls(empty).await?;
        Ok(())
    }

    /// Send each request to its node inside the global transaction (opening it there first, as
    /// `node_exec` does), all at once, and wait for every answer; the answers come back in the
    /// order of `reqs`. Records which nodes wrote and whom they followed. **Invariant:** at most
    /// one request per node (a connection carries one request at a time). Errors: the first
    /// failed request's (every request was answered or failed first, so no connection is left
    /// waiting on an answer).
    async fn dn_calls(
        &mut self,
        reqs: Vec<(String, DnRequest)>,
    ) -> Result<Vec<(String, DnResponse)>, PgError> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        for (node, _) in &reqs {
            self.ensure_conn(node).await?;
        }
        let order: Vec<String> = reqs.iter().map(|(n, _)| n.clone()).collect();
        let mut by_node: BTreeMap<String, DnRequest> = BTreeMap::new();
        for (node, req) in reqs {
            if by_node.insert(node, req).is_some() {
                return Err(internal("two requests for one datanode connection at once"));
            }
        }
        let txn = self.txn()?;
        let mut calls = Vec::new();
        for (node, (conn, _)) in txn.conns.iter_mut() {
            if let Some(req) = by_node.remove(node) {
                calls.push(async move { (node.clone(), conn.call(req).await) });
            }
        }
        if !by_node.is_empty() {
            return Err(internal("connection vanished"));
        }
        let answers = join_all(calls).await;
        let mut out: BTreeMap<String, DnResponse> = BTreeMap::new();
        let mut first_error = None;
        for (node, answer) in answers {
            match answer {
                Ok(r) => {
                    let (w, followed) = match &r {
                        DnResponse::Results {
                            wrote, followed, ..
                        }
                        | DnResponse::Batch {
                            wrote, followed, ..
                        } => (*wrote, followed.clone()),
                        _ => (false, Vec::new()),
                    };
                    if let Some((_, wrote)) = txn.conns.get_mut(&node) {
                        *wrote |= w;
                    }
                    for g in followed {
                        if !txn.followed.contains(&g) {
                            txn.followed.push(g);
                        }
                    }
                    out.insert(node, r);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        order
            .into_iter()
            .map(|node| {
                let r = out
                    .remove(&node)
                    .ok_or_else(|| internal("a datanode answer is missing"))?;
                Ok((node, r))
            })
            .collect()
    }

    /// EXPLAIN lines of a [`SelectRoute::Distributed`] plan: the shipped join (as fast query
    /// shipping, a combined aggregate, or under the coordinator's final step) with, below it,
    /// one XL-style step per moved table: `Distribute results by H: col` or `Broadcast`, over
    /// the `Data Node Scan` fetching its rows.
    pub(super) async fn explain_dist_join(
        &mut self,
        q: &ast::Query,
        d: &DistJoin,
        o: ExplainOpts,
    ) -> Result<Vec<String>, PgError> {
        let mut shown = d.body.clone();
        for m in &d.moves {
            shown = shown.replacen(
                &m.placeholder,
                &format!("\"__REMOTE_MOVED_{}__\"", m.qualifier),
                1,
            );
        }
        let mut lines = match &d.finish {
            Finish::Concat => explain::fqs(None, &d.nodes, &shown, o),
            Finish::Combine(comb) => {
                let remote = q.to_string();
                let output = self.explain_output(q, &remote).await?.unwrap_or_default();
                let items = super::split_top(&output);
                let finals: Vec<&str> = comb
                    .iter()
                    .map(|c| match c {
                        route::Combine::Count | route::Combine::Sum => "sum",
                        route::Combine::Min => "min",
                        route::Combine::Max => "max",
                    })
                    .collect();
                explain::combined(&items, &finals, &d.nodes, &shown, o)
            }
            Finish::Local { local, columns } => {
                let j = JoinedRemote {
                    nodes: d.nodes.clone(),
                    remote: shown.clone(),
                    local: local.clone(),
                    columns: columns.clone(),
                };
                let plan = self.local_plan_joined(&j, o.costs, o.verbose).await?;
                let scan = RemoteScan {
                    nodes: j.nodes.clone(),
                    query: shown.clone(),
                };
                explain::remote_scans(&plan, |t| (t == JOINED_TABLE).then(|| scan.clone()), o)
                    .into_iter()
                    .map(|l| l.replace(JOINED_TABLE, "\"__REMOTE_JOIN_QUERY__\""))
                    .collect()
            }
        };
        lines.extend(move_lines(d));
        Ok(lines)
    }

    /// `ANALYZE [t, ...]`: count each named distributed table's rows (every distributed table's
    /// when none is named) on each of its datanodes, under the statement's snapshot, and store
    /// the counts in [`STATS_TABLE`] on every coordinator (created by the first ANALYZE).
    /// Tables that are not distributed (views, catalog tables) are skipped, as the catalog
    /// engine's own ANALYZE would find nothing to do for them. Errors: 42P01 for an unknown
    /// table.
    pub(super) async fn analyze(&mut self, v: &parser::Vacuum) -> Result<QueryResult, PgError> {
        self.begin_statement().await?;
        let mut tables: Vec<Placed> = Vec::new();
        if v.tables.is_empty() {
            let q = format!("SELECT pcrelname FROM {PGXC_CLASS} ORDER BY 1");
            let r = self.local_exec(&q, true).await?;
            for row in r.rows {
                if let Some(Value::Text(name)) = row.into_iter().next() {
                    let rel = match name.split_once('.') {
                        Some((s, t)) => (Some(s.to_string()), t.to_string()),
                        None => (None, name),
                    };
                    if let Some(p) = self.placed(&rel).await? {
                        tables.push(p);
                    }
                }
            }
        } else {
            for t in &v.tables {
                let Some(rel) = route::rel_name(&t.name) else {
                    continue;
                };
                if self.lookup_def(&rel).await?.is_none() {
                    return Err(PgError::new(
                        SqlState::UndefinedTable,
                        format!("relation \"{}\" does not exist", t.name),
                    ));
                }
                if let Some(p) = self.placed(&rel).await? {
                    tables.push(p);
                }
            }
        }
        if tables.is_empty() {
            return Ok(QueryResult::command("ANALYZE"));
        }
        let mut counts: Vec<(String, String, i64)> = Vec::new();
        for p in &tables {
            let preferred = self.coord.preferred();
            let nodes = Self::fetch_nodes(p, preferred.as_deref())?;
            for node in nodes {
                let r = self
                    .node_exec(&node, &format!("SELECT count(*) FROM {}", p.name))
                    .await?;
                let c = match r
                    .last()
                    .and_then(|r| r.rows.first())
                    .and_then(|r| r.first())
                {
                    Some(Value::Int8(c)) => *c,
                    _ => return Err(internal("count(*) returned no bigint")),
                };
                counts.push((p.name.clone(), node, c));
            }
        }
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {STATS_TABLE} (relname text, node text, reltuples int8); \
             DELETE FROM {STATS_TABLE} WHERE relname IN ({})",
            tables
                .iter()
                .map(|p| format!("'{}'", p.name.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let vals: Vec<String> = counts
            .iter()
            .map(|(t, n, c)| {
                format!(
                    "('{}', '{}', {c})",
                    t.replace('\'', "''"),
                    n.replace('\'', "''")
                )
            })
            .collect();
        sql.push_str(&format!(
            "; INSERT INTO {STATS_TABLE} VALUES {}",
            vals.join(", ")
        ));
        self.catalog_everywhere(&sql).await?;
        self.txn()?.local_ddl = true;
        for n in self.coord.peer_names() {
            self.mark_wrote(&n)?;
        }
        Ok(QueryResult::command("ANALYZE"))
    }
}

/// The XL-style lines of the moves under a distributed join's plan.
fn move_lines(d: &DistJoin) -> Vec<String> {
    let mut out = Vec::new();
    for m in &d.moves {
        let step = match &m.how {
            How::Broadcast => "Broadcast".to_string(),
            How::Distribute { label, .. } => format!("Distribute results by H: {label}"),
        };
        out.push(format!("  ->  {step}"));
        out.push(format!(
            "        ->  Data Node Scan on {} {}",
            m.table,
            quote(&m.qualifier)
        ));
        out.push(format!(
            "              Node/s: {}",
            m.fetch_nodes.join(", ")
        ));
        out.push(format!("              Remote query: {}", m.fetch));
    }
    out
}

/// The cheapest way to make the join of `occ` local to some datanodes (rows moved, from
/// `rows`' estimates): keep one hash/modulo table and redistribute the others by its
/// distribution key; redistribute every distributed table by a common join key; or keep one
/// table and broadcast the others. Replicated tables stay when they are on every target node,
/// else they are broadcast. `None` when no distributed table is joined.
fn choose(
    occ: &[(Placed, Vec<String>)],
    shape: &route::InnerJoin<'_>,
    rows: &[u64],
) -> Option<Candidate> {
    let resolve = |c: &route::ColRef| -> Option<(usize, usize)> {
        let mut found = None;
        for (i, (p, names)) in occ.iter().enumerate() {
            if c.qualifier.as_ref().is_some_and(|q| !names.contains(q)) {
                continue;
            }
            if let Some(ci) = p.columns.iter().position(|(n, _)| *n == c.column) {
                if found.is_some() {
                    return None;
                }
                found = Some((i, ci));
            }
        }
        found
    };
    let mut parent = BTreeMap::new();
    for (l, r) in &shape.equalities {
        if let (Some(l), Some(r)) = (resolve(l), resolve(r)) {
            if l.0 != r.0 {
                let (a, b) = (find(&mut parent, l), find(&mut parent, r));
                parent.insert(a, b);
            }
        }
    }
    let keys: Vec<(usize, usize)> = parent.keys().copied().collect();
    let mut classes: BTreeMap<(usize, usize), Vec<(usize, usize)>> = BTreeMap::new();
    for k in keys {
        let root = find(&mut parent, k);
        classes.entry(root).or_default().push(k);
    }
    let distributed: Vec<usize> = (0..occ.len())
        .filter(|&i| occ[i].0.dist.kind != LocatorType::Replicated)
        .collect();
    if distributed.is_empty() {
        return None;
    }
    let label = |(i, c): (usize, usize)| format!("{}.{}", occ[i].1[0], occ[i].0.columns[c].0);
    // Replicated tables: stay if on every target node, else broadcast.
    let replicated = |nodes: &[String], how: &mut Vec<Option<How>>, cost: &mut u64| {
        for (i, (p, _)) in occ.iter().enumerate() {
            if p.dist.kind == LocatorType::Replicated
                && nodes.iter().any(|n| !p.dist.nodes.contains(n))
            {
                how[i] = Some(How::Broadcast);
                *cost += rows[i] * nodes.len() as u64;
            }
        }
    };
    let mut cands: Vec<Candidate> = Vec::new();
    // Keep X, redistribute the others by X's distribution key.
    for &x in &distributed {
        let d = &occ[x].0.dist;
        let Some((kc, kty)) = &d.key else { continue };
        if !matches!(d.kind, LocatorType::Hash | LocatorType::Modulo) {
            continue;
        }
        let Some(class) = classes.values().find(|c| c.contains(&(x, *kc))) else {
            continue;
        };
        let mut how: Vec<Option<How>> = vec![None; occ.len()];
        let mut cost = 0;
        let mut ok = true;
        for &y in &distributed {
            if y == x {
                continue;
            }
            let member = class.iter().find(|(i, c)| {
                *i == y && {
                    let ty = &occ[y].0.columns[*c].1;
                    match d.kind {
                        LocatorType::Hash => ty == kty && rehashable(ty),
                        _ => {
                            matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Int8)
                                && matches!(kty, DataType::Int2 | DataType::Int4 | DataType::Int8)
                        }
                    }
                }
            });
            match member {
                Some(&(_, c)) => {
                    how[y] = Some(How::Distribute {
                        dist: d.clone(),
                        col: c,
                        label: label((y, c)),
                    });
                    cost += rows[y];
                }
                None => ok = false,
            }
        }
        if ok {
            replicated(&d.nodes, &mut how, &mut cost);
            cands.push(Candidate {
                nodes: d.nodes.clone(),
                how,
                cost,
            });
        }
    }
    // Redistribute every distributed table by one join key, over the biggest table's nodes.
    let biggest = *distributed.iter().max_by_key(|&&i| rows[i])?;
    let target_nodes = occ[biggest].0.dist.nodes.clone();
    for class in classes.values() {
        let mut how: Vec<Option<How>> = vec![None; occ.len()];
        let mut cost = 0;
        let mut ty: Option<DataType> = None;
        let mut ok = true;
        for &y in &distributed {
            let member = class.iter().find(|(i, c)| {
                *i == y && {
                    let t = &occ[y].0.columns[*c].1;
                    rehashable(t) && ty.as_ref().is_none_or(|x| x == t)
                }
            });
            let Some(&(_, c)) = member else {
                ok = false;
                break;
            };
            let t = occ[y].0.columns[c].1.clone();
            let Ok(dist) = Distribution::new(
                LocatorType::Hash,
                Some((0, t.clone())),
                target_nodes.clone(),
            ) else {
                ok = false;
                break;
            };
            ty = Some(t);
            how[y] = Some(How::Distribute {
                dist,
                col: c,
                label: label((y, c)),
            });
            cost += rows[y];
        }
        if ok {
            replicated(&target_nodes, &mut how, &mut cost);
            cands.push(Candidate {
                nodes: target_nodes.clone(),
                how,
                cost,
            });
        }
    }
    // Keep X, broadcast the others.
    for &x in &distributed {
        let nodes = occ[x].0.dist.nodes.clone();
        let mut how: Vec<Option<How>> = vec![None; occ.len()];
        let mut cost = 0;
        for &y in &distributed {
            if y != x {
                how[y] = Some(How::Broadcast);
                cost += rows[y] * nodes.len() as u64;
            }
        }
        replicated(&nodes, &mut how, &mut cost);
        cands.push(Candidate { nodes, how, cost });
    }
    // The first cheapest (candidates are in order of preference).
    let mut best: Option<Candidate> = None;
    for c in cands {
        if best.as_ref().is_none_or(|b| c.cost < b.cost) {
            best = Some(c);
        }
    }
    best
}
