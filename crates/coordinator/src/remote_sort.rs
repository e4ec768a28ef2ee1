//! ORDER BY and LIMIT/OFFSET pushed under the remote scan of one distributed table (Postgres-XC's
//! `enable_remotesort` / `enable_remotelimit`).
//!
//! A plain SELECT over one table spread over several datanodes (no aggregates, GROUP BY,
//! DISTINCT, window functions, subqueries or locking clauses) with ORDER BY and/or LIMIT reads
//! from every node only
//!
//! ```text
//! SELECT <the table's columns> FROM t AS "alias" [WHERE <its WHERE>] [ORDER BY <its keys>]
//!   [LIMIT <limit + offset>]
//! ```
//!
//! — the first `limit + offset` rows of each node in the statement's order hold the first
//! `limit + offset` rows of their union — and the coordinator runs the statement over those rows
//! (inside a rolled back savepoint of its catalog transaction, like the fallback), which sorts the
//! candidates with the engine's own comparison rules (collation, NULLS FIRST/LAST, DESC) and
//! applies OFFSET and LIMIT. ORDER BY without LIMIT is pushed too (each node sorts its share;
//! the coordinator's sort then meets ordered runs). LIMIT without ORDER BY is pushed as the
//! bound alone (any rows are a correct answer). `enable_remotesort = off` keeps ORDER BY (and so
//! a LIMIT under it) here; `enable_remotelimit = off` keeps the bound here.

use super::*;
use sqlparser::ast::Expr;

/// A single-table SELECT whose remote scan carries the statement's ORDER BY and/or LIMIT
/// ([`SelectRoute::Sorted`]).
pub(super) struct SortedRemote {
    /// The table read.
    pub(super) table: Placed,
    /// The nodes read (every node of the table).
    pub(super) nodes: Vec<String>,
    /// The per-node query (the table's columns, filtered, ordered, bounded).
    pub(super) remote: String,
}

/// The literal value of a LIMIT/OFFSET expression (`None`: not a non-negative integer literal).
fn count(e: &Expr) -> Option<u64> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::Nested(x) => count(x),
        _ => None,
    }
}

/// The per-node query of `q` over the table `p` called `names` (its name and alias), or `None`
/// when the statement is not of the kind this pushdown handles or there is nothing to push
/// (`sort`: push ORDER BY; `limit`: push the LIMIT bound).
pub(super) fn remote_query(
    q: &ast::Query,
    p: &Placed,
    names: &[String],
    sort: bool,
    limit: bool,
) -> Option<String> {
    if q.with.is_some() || !q.locks.is_empty() || q.fetch.is_some() {
        return None;
    }
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if sel.distinct.is_some() || sel.having.is_some() || !sel.named_window.is_empty() {
        return None;
    }
    match &sel.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return None,
    }
    // No aggregates, window functions or subqueries anywhere (the ORDER BY/LIMIT-free body).
    let mut body = q.clone();
    body.order_by = None;
    body.limit_clause = None;
    if !route::concat_safe(&body) {
        return None;
    }
    if let Some(w) = &sel.selection {
        if !route::portable(w) {
            return None;
        }
    }
    // ORDER BY keys in terms of the table's columns: an ordinal or an output name is the
    // select-list expression it names.
    let mut keys = Vec::new();
    if let Some(ob) = &q.order_by {
        let ast::OrderByKind::Expressions(list) = &ob.kind else {
            return None;
        };
        let mut outputs: Vec<(Option<String>, Expr)> = Vec::new();
        for item in &sel.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => outputs.push((
                    match e {
                        Expr::Identifier(id) => Some(parser::normalize_ident(id)),
                        Expr::CompoundIdentifier(ids) => ids.last().map(parser::normalize_ident),
                        _ => None,
                    },
                    e.clone(),
                )),
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    outputs.push((Some(parser::normalize_ident(alias)), expr.clone()))
                }
                _ => outputs.push((None, Expr::Value(ast::Value::Null.into()))),
            }
        }
        let wildcard = sel.projection.iter().any(|i| {
            !matches!(
                i,
                ast::SelectItem::UnnamedExpr(_) | ast::SelectItem::ExprWithAlias { .. }
            )
        });
        for k in list {
            if k.with_fill.is_some() {
                return None;
            }
            let e = match &k.expr {
                Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => {
                        if wildcard {
                            return None;
                        }
                        let i: usize = n.parse().ok()?;
                        outputs.get(i.checked_sub(1)?)?.1.clone()
                    }
                    _ => k.expr.clone(),
                },
                Expr::Identifier(id) => {
                    let n = parser::normalize_ident(id);
                    let hits: Vec<&Expr> = outputs
                        .iter()
                        .filter(|(o, _)| o.as_deref() == Some(n.as_str()))
                        .map(|(_, e)| e)
                        .collect();
                    match hits.as_slice() {
                        [] => k.expr.clone(),
                        [e] => (*e).clone(),
                        _ => return None,
                    }
                }
                other => other.clone(),
            };
            if !route::portable(&e) {
                return None;
            }
            let mut key = k.clone();
            key.expr = e;
            keys.push(key.to_string());
        }
    }
    // The bound: LIMIT + OFFSET, both literals.
    let bound = match &q.limit_clause {
        None => None,
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => {
            let off = match offset {
                None => 0,
                Some(o) => count(&o.value)?,
            };
            match limit {
                None => None,
                Some(l) => match count(l) {
                    Some(n) => Some(n.checked_add(off)?),
                    None => return None,
                },
            }
        }
        _ => return None,
    };
    let push_sort = sort && !keys.is_empty();
    // A bound is valid only with the statement's order on the node (or with no order at all).
    let push_limit = limit && bound.is_some() && (keys.is_empty() || push_sort);
    if !push_sort && !push_limit {
        return None;
    }
    let alias = names.last()?;
    let cols: Vec<String> = p
        .columns
        .iter()
        .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {} AS \"{}\"",
        cols.join(", "),
        p.name,
        alias.replace('"', "\"\"")
    );
    if let Some(w) = &sel.selection {
        sql.push_str(&format!(" WHERE {w}"));
    }
    if push_sort {
        sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    }
    if push_limit {
        if let Some(b) = bound {
            sql.push_str(&format!(" LIMIT {b}"));
        }
    }
    Some(sql)
}

impl CoordSession {
    /// The [`SelectRoute::Sorted`] route of a single-table SELECT over `nodes`, or `None`.
    pub(super) fn sort_route(
        &self,
        q: &ast::Query,
        p: &Placed,
        names: &[String],
        nodes: &[String],
    ) -> Option<SelectRoute> {
        if nodes.len() < 2 || p.dist.kind == LocatorType::Replicated {
            return None;
        }
        let remote = remote_query(
            q,
            p,
            names,
            self.switches.remote_sort,
            self.switches.remote_limit,
        )?;
        Some(SelectRoute::Sorted(SortedRemote {
            table: p.clone(),
            nodes: nodes.to_vec(),
            remote,
        }))
    }

    /// Run a [`SelectRoute::Sorted`]: each node's ordered, bounded rows into the catalog
    /// engine's (empty) table inside a savepoint, `text` there (the final sort, OFFSET and
    /// LIMIT), roll back.
    pub(super) async fn evaluate_sorted(
        &mut self,
        text: &str,
        s: &SortedRemote,
    ) -> Result<QueryResult, PgError> {
        let mut rows = Vec::new();
        for n in &s.nodes {
            if let Some(r) = self.node_exec(n, &s.remote).await?.pop() {
                rows.extend(r.rows);
            }
        }
        let cols: Vec<String> = s
            .table
            .columns
            .iter()
            .map(|(n, _)| format!("\"{}\"", n.replace('"', "\"\"")))
            .collect();
        self.local_run("SAVEPOINT pgxc_sort", true).await?;
        let r = async {
            for chunk in rows.chunks(500) {
                let refs: Vec<&Vec<Value>> = chunk.iter().collect();
                let ins = format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    s.table.name,
                    cols.join(", "),
                    rows_sql(&refs, &s.table.columns)
                );
                self.local_run(&ins, true).await?;
            }
            self.local_exec(text, true).await
        }
        .await;
        let undo = self.undo_savepoint("pgxc_sort").await;
        let r = r?;
        undo?;
        Ok(r)
    }

    /// EXPLAIN of a [`SelectRoute::Sorted`]: the coordinator's Limit/Sort over `Data Node Scan on
    /// <table>`, whose `Remote query:` (VERBOSE) carries the pushed ORDER BY and bound.
    pub(super) async fn explain_sorted(
        &mut self,
        text: &str,
        s: &SortedRemote,
        o: ExplainOpts,
    ) -> Result<Vec<String>, PgError> {
        let local = self.local_plan(text, o.costs, o.verbose).await?;
        let scan = RemoteScan {
            nodes: s.nodes.clone(),
            query: s.remote.clone(),
        };
        let bare = s
            .table
            .name
            .rsplit('.')
            .next()
            .unwrap_or(&s.table.name)
            .to_string();
        let full = s.table.name.clone();
        Ok(explain::remote_scans(
            &local,
            |t| (t == bare || t == full).then(|| scan.clone()),
            o,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgxc_cluster::locator::Distribution;

    fn query(sql: &str) -> ast::Query {
        match parser::parse(sql).expect("parses").pop() {
            Some(Statement::Sql(ast::Statement::Query(q))) => *q,
            other => panic!("not a query: {other:?}"),
        }
    }

    fn t() -> Placed {
        Placed {
            name: "public.t".into(),
            dist: Distribution {
                kind: LocatorType::RoundRobin,
                key: None,
                nodes: vec!["dn1".into(), "dn2".into()],
            },
            columns: vec![("k".into(), DataType::Int4), ("b".into(), DataType::Text)],
            filter: None,
        }
    }

    #[test]
    fn pushes_order_and_bound() {
        let names = vec!["t".to_string(), "x".to_string()];
        let q = query(
            "SELECT b AS n, k FROM t x WHERE k > 1 ORDER BY n DESC NULLS LAST, 2 LIMIT 3 OFFSET 2",
        );
        assert_eq!(
            remote_query(&q, &t(), &names, true, true).as_deref(),
            Some(
                "SELECT \"k\", \"b\" FROM public.t AS \"x\" WHERE k > 1 \
                 ORDER BY b DESC NULLS LAST, k LIMIT 5"
            )
        );
        assert_eq!(
            remote_query(&q, &t(), &names, true, false).as_deref(),
            Some("SELECT \"k\", \"b\" FROM public.t AS \"x\" WHERE k > 1 ORDER BY b DESC NULLS LAST, k")
        );
        // No ORDER BY pushed: the bound cannot go alone under an order.
        assert_eq!(remote_query(&q, &t(), &names, false, true), None);
        let q = query("SELECT k FROM t LIMIT 4");
        assert_eq!(
            remote_query(&q, &t(), &names[..1], false, true).as_deref(),
            Some("SELECT \"k\", \"b\" FROM public.t AS \"t\" LIMIT 4")
        );
        for sql in [
            "SELECT count(*) FROM t LIMIT 1",
            "SELECT DISTINCT k FROM t ORDER BY k LIMIT 1",
            "SELECT k FROM t ORDER BY random() LIMIT 1",
            "SELECT k FROM t WHERE k IN (SELECT 1) LIMIT 1",
            "SELECT k FROM t LIMIT $1",
            "SELECT k FROM t",
        ] {
            assert_eq!(
                remote_query(&query(sql), &t(), &names, true, true),
                None,
                "{sql}"
            );
        }
    }
}
