//! ORDER BY and LIMIT/OFFSET pushed under the remote scan of one distributed table (Postgres-XC's
//! `enable_remotesort` / `enable_remotelimit`), with the nodes' sorted streams merged here.
//!
//! **Merge** ([`merge_query`], run by `CoordSession::merge_ship` in `stream.rs`). A plain SELECT
//! over one table spread over several datanodes (no aggregates, GROUP BY, DISTINCT, window
//! functions, subqueries, CTEs or locking clauses) with ORDER BY, whose select list and keys the
//! datanodes can evaluate (no volatile, set-returning or `pgxc_*` functions, no COLLATE, no
//! parameters) and whose LIMIT/OFFSET are literals, sends every node
//!
//! ```text
//! SELECT <the client's select list>, <ORDER BY keys not in the output> FROM t AS "alias"
//!   [WHERE <its WHERE>] ORDER BY <output positions> [LIMIT <limit + offset>]
//! ```
//!
//! and merges the sorted streams with a binary heap over the head row of each (a k-way merge, XC's
//! merge of sorted RemoteSubplan streams), comparing key columns with the engine's own Sort
//! comparison ([`pgxc_sql::cmp_nulls`]: PostgreSQL's B-tree order, bytewise text, DESC, NULLS
//! FIRST/LAST with PostgreSQL's defaults). ORDER BY keys given as output positions (`ORDER BY 2`)
//! or output names (aliases) are those columns; any other key travels as a hidden trailing column
//! stripped before the client sees the row. A bare name that matches no output is a table column
//! only when the engine's name of every output is known here (`SELECT g::text ... ORDER BY g`
//! sorts by the output named `g`, so it keeps the re-sort). OFFSET is skipped and LIMIT applied
//! while merging, and rows stream to the client batch by batch (a node's next batch is fetched
//! when its buffer ran dry): the coordinator holds at most `pgxc.remote_fetch_size` rows per
//! datanode whatever the result's size.
//!
//! **Re-sort** (the rest: ORDER BY that the merge does not take, LIMIT without ORDER BY). The
//! same kind of statement, with portable WHERE and keys, reads from every node only
//!
//! ```text
//! SELECT <the table's columns> FROM t AS "alias" [WHERE <its WHERE>] [ORDER BY <its keys>]
//!   [LIMIT <limit + offset>]
//! ```
//!
//! — the first `limit + offset` rows of each node in the statement's order hold the first
//! `limit + offset` rows of their union — and the coordinator runs the statement over those rows
//! (inside a rolled back savepoint of its catalog transaction, like the fallback), which sorts the
//! candidates with the engine's own comparison rules and applies OFFSET and LIMIT. LIMIT without
//! ORDER BY is pushed as the bound alone (any rows are a correct answer).
//!
//! `enable_remotesort = off` keeps ORDER BY (and so a LIMIT under it) on the coordinator (neither
//! merge nor pushed sort); `enable_remotelimit = off` keeps the bound here (the merge still stops
//! at LIMIT).

use super::*;
use sqlparser::ast::Expr;

/// A single-table SELECT whose remote scan carries the statement's ORDER BY and/or LIMIT
/// ([`SelectRoute::Sorted`]).
pub(super) struct SortedRemote {
    /// The table read.
    pub(super) table: Placed,
    /// The nodes read (every node of the table).
    pub(super) nodes: Vec<String>,
    /// The per-node query (the table's columns, filtered, ordered, bounded; with [`Self::merge`],
    /// the client's select list and hidden key columns).
    pub(super) remote: String,
    /// The k-way merge of the nodes' sorted streams, when the statement allows it (else the
    /// candidates are re-sorted by the catalog engine).
    pub(super) merge: Option<Box<MergeSpec>>,
    /// The alias the statement gives the table, if any (EXPLAIN's `Data Node Scan on t x`).
    pub(super) alias: Option<String>,
}

/// One ORDER BY key of a merge: a column of the per-node rows and its direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MergeKey {
    /// The key's column in a per-node row (0-based; hidden columns come after the visible ones).
    pub(super) col: usize,
    /// `DESC`.
    pub(super) desc: bool,
    /// Where NULLs go (PostgreSQL's default: first for DESC, last for ASC).
    pub(super) nulls_first: bool,
}

/// How the coordinator merges the nodes' sorted rows of a [`SortedRemote`]: the keys, the
/// trailing hidden key columns to strip, and OFFSET/LIMIT applied while merging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MergeSpec {
    /// The ORDER BY keys, major first.
    pub(super) keys: Vec<MergeKey>,
    /// The client's columns (the per-node rows' first `visible` columns).
    pub(super) visible: usize,
    /// ORDER BY expressions appended to the per-node rows (stripped before the client sees them).
    pub(super) hidden: usize,
    /// Rows skipped first (OFFSET).
    pub(super) offset: u64,
    /// Rows handed out at most (LIMIT; `None`: all).
    pub(super) limit: Option<u64>,
    /// EXPLAIN's `Sort Key:` items.
    pub(super) sort_key: Vec<String>,
    /// EXPLAIN's `Output:` items of the per-node rows (visible, then hidden).
    pub(super) output: Vec<String>,
}

/// Volatile functions a merged statement may not evaluate on the datanodes (a datanode's value
/// would differ from the coordinator's, or the sequence is the GTM's); the engine's set-returning
/// ones (`pgxc_sql::SET_RETURNING_FUNCTIONS`: they expand rows) and the cluster's own (`pgxc_*`,
/// answered per node) are refused too.
const NOT_ON_NODES: &[&str] = &[
    "random",
    "setseed",
    "nextval",
    "currval",
    "setval",
    "lastval",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "pg_sleep",
    "txid_current",
];

/// Whether the datanodes may evaluate `e` for a merge: no function of [`NOT_ON_NODES`] (nor any
/// `pgxc_*` one), no COLLATE (the merge compares with the engine's one order), no parameters, no
/// schema-qualified column references.
fn node_safe(e: &Expr) -> bool {
    let mut ok = true;
    let _ = ast::visit_expressions(e, |x| {
        match x {
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                let base = name.rsplit('.').next().unwrap_or(&name).trim_matches('"');
                ok &= !NOT_ON_NODES.contains(&base)
                    && !pgxc_sql::SET_RETURNING_FUNCTIONS.contains(&base)
                    && !base.starts_with("pgxc_");
            }
            Expr::Collate { .. } => ok = false,
            // `schema.table.column`: the per-node query names the table by its alias only.
            Expr::CompoundIdentifier(ids) => ok &= ids.len() <= 2,
            Expr::Value(v) => ok &= !matches!(v.value, ast::Value::Placeholder(_)),
            _ => {}
        }
        if ok {
            std::ops::ControlFlow::Continue(())
        } else {
            std::ops::ControlFlow::Break(())
        }
    });
    ok
}

/// The OFFSET and LIMIT of `q` as literals (`(offset, limit)`), `None` when either is not a
/// non-negative integer literal or the clause is not PostgreSQL's.
fn offset_limit(q: &ast::Query) -> Option<(u64, Option<u64>)> {
    match &q.limit_clause {
        None => Some((0, None)),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) if limit_by.is_empty() => {
            let off = match offset {
                None => 0,
                Some(o) => count(&o.value)?,
            };
            let lim = match limit {
                None => None,
                Some(l) => Some(count(l)?),
            };
            Some((off, lim))
        }
        _ => None,
    }
}

/// The per-node query and the merge of `q` over the table `p` called `names` (its name and
/// alias), or `None` when the statement is not a plain single-table SELECT with ORDER BY whose
/// select list and keys the datanodes can evaluate (see the module docs). `limit`: push the
/// LIMIT bound (`enable_remotelimit`).
pub(super) fn merge_query(
    q: &ast::Query,
    p: &Placed,
    names: &[String],
    limit: bool,
) -> Option<(String, MergeSpec)> {
    if q.with.is_some() || !q.locks.is_empty() || q.fetch.is_some() {
        return None;
    }
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if sel.distinct.is_some()
        || sel.having.is_some()
        || !sel.named_window.is_empty()
        || sel.into.is_some()
        || sel.top.is_some()
        || sel.qualify.is_some()
        || sel.prewhere.is_some()
        || !sel.lateral_views.is_empty()
        || !sel.sort_by.is_empty()
        || !sel.cluster_by.is_empty()
        || !sel.distribute_by.is_empty()
        || sel.exclude.is_some()
    {
        return None;
    }
    match &sel.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return None,
    }
    let ob = q.order_by.as_ref()?;
    let ast::OrderByKind::Expressions(list) = &ob.kind else {
        return None;
    };
    if list.is_empty() || ob.interpolate.is_some() {
        return None;
    }
    // The statement with its keys as extra outputs and without ORDER BY/LIMIT: no aggregates,
    // window functions or subqueries anywhere.
    let mut body = q.clone();
    body.order_by = None;
    body.limit_clause = None;
    if let ast::SetExpr::Select(b) = body.body.as_mut() {
        for k in list {
            b.projection
                .push(ast::SelectItem::UnnamedExpr(k.expr.clone()));
        }
    }
    if !route::concat_safe(&body) {
        return None;
    }
    let mut safe = true;
    let _ = ast::visit_expressions(&body, |e| {
        safe &= node_safe(e);
        if safe {
            std::ops::ControlFlow::Continue(())
        } else {
            std::ops::ControlFlow::Break(())
        }
    });
    if !safe {
        return None;
    }
    let (offset, lim) = offset_limit(q)?;
    let alias = names.last()?;
    // The client's output columns: (name when known, EXPLAIN text). A wildcard is the table's
    // columns; an expression without alias has a name only the engine knows.
    let mut outputs: Vec<(Option<String>, String)> = Vec::new();
    let mut items = Vec::new();
    for item in &sel.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    Expr::Identifier(id) => Some(parser::normalize_ident(id)),
                    Expr::CompoundIdentifier(ids) => ids.last().map(parser::normalize_ident),
                    _ => None,
                };
                outputs.push((name, e.to_string()));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                outputs.push((Some(parser::normalize_ident(alias)), expr.to_string()))
            }
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                let text = item.to_string();
                let plain = text == "*"
                    || text
                        .strip_suffix(".*")
                        .is_some_and(|q| !q.contains(char::is_whitespace));
                if !plain {
                    return None;
                }
                for (c, _) in &p.columns {
                    outputs.push((Some(c.clone()), c.clone()));
                }
            }
            _ => return None,
        }
        items.push(item.to_string());
    }
    let visible = outputs.len();
    let unnamed = outputs.iter().any(|(n, _)| n.is_none());
    let mut keys = Vec::new();
    let mut hidden: Vec<String> = Vec::new();
    let mut sort_key = Vec::new();
    for k in list {
        if k.with_fill.is_some() {
            return None;
        }
        let desc = match &k.options.sort {
            None | Some(ast::OrderBySort::Asc) => false,
            Some(ast::OrderBySort::Desc) => true,
            Some(ast::OrderBySort::Using(_)) => return None,
        };
        let nulls_first = k.options.nulls_first.unwrap_or(desc);
        let (col, text) = match &k.expr {
            Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    let i: usize = n.parse().ok()?;
                    let i = i.checked_sub(1).filter(|&i| i < visible)?;
                    (i, outputs[i].1.clone())
                }
                _ => return None,
            },
            Expr::Identifier(id) => {
                let n = parser::normalize_ident(id);
                let hits: Vec<usize> = (0..visible)
                    .filter(|&i| outputs[i].0.as_deref() == Some(n.as_str()))
                    .collect();
                match hits.as_slice() {
                    [i] => (*i, outputs[*i].1.clone()),
                    // An output the engine names may be it: the engine decides.
                    [] if unnamed => return None,
                    [] => {
                        hidden.push(k.expr.to_string());
                        (visible + hidden.len() - 1, k.expr.to_string())
                    }
                    _ => return None,
                }
            }
            e => {
                hidden.push(e.to_string());
                (visible + hidden.len() - 1, e.to_string())
            }
        };
        let mut t = text;
        if desc {
            t.push_str(" DESC");
        }
        match (desc, nulls_first) {
            (false, true) => t.push_str(" NULLS FIRST"),
            (true, false) => t.push_str(" NULLS LAST"),
            _ => {}
        }
        sort_key.push(t);
        keys.push(MergeKey {
            col,
            desc,
            nulls_first,
        });
    }
    let mut sql = format!("SELECT {}", items.join(", "));
    for h in &hidden {
        sql.push_str(&format!(", {h}"));
    }
    sql.push_str(&format!(
        " FROM {} AS \"{}\"",
        p.name,
        alias.replace('"', "\"\"")
    ));
    if let Some(w) = &sel.selection {
        sql.push_str(&format!(" WHERE {w}"));
    }
    let order: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut s = (k.col + 1).to_string();
            if k.desc {
                s.push_str(" DESC");
            }
            match (k.desc, k.nulls_first) {
                (false, true) => s.push_str(" NULLS FIRST"),
                (true, false) => s.push_str(" NULLS LAST"),
                _ => {}
            }
            s
        })
        .collect();
    sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    if limit {
        if let Some(l) = lim {
            sql.push_str(&format!(" LIMIT {}", l.checked_add(offset)?));
        }
    }
    let mut output: Vec<String> = outputs.into_iter().map(|(_, t)| t).collect();
    output.extend(hidden.iter().cloned());
    Some((
        sql,
        MergeSpec {
            keys,
            visible,
            hidden: hidden.len(),
            offset,
            limit: lim,
            sort_key,
            output,
        },
    ))
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
                        // An output the engine names (`k::text` is `k`) may be it: not pushed.
                        [] if outputs.iter().any(|(o, _)| o.is_none()) => return None,
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
        if self.switches.remote_sort {
            if let Some((remote, merge)) = merge_query(q, p, names, self.switches.remote_limit) {
                return Some(SelectRoute::Sorted(SortedRemote {
                    table: p.clone(),
                    nodes: nodes.to_vec(),
                    remote,
                    merge: Some(Box::new(merge)),
                    alias: names.get(1).cloned(),
                }));
            }
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
            merge: None,
            alias: names.get(1).cloned(),
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
        if let Some(m) = &s.merge {
            // Streamed to the client when it asked (`stream.rs`).
            return Box::pin(self.merge_ship(&s.remote, s.nodes.clone(), m)).await;
        }
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
        if let Some(m) = &s.merge {
            let target = match s.alias.as_deref() {
                Some(a) if a != bare => format!("{bare} {a}"),
                _ => bare,
            };
            return Ok(explain::merged(
                m.limit.is_some() || m.offset > 0,
                &m.sort_key,
                &m.output,
                &target,
                &scan,
                o,
            ));
        }
        let local = self.local_plan(text, o.costs, o.verbose).await?;
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
    fn merges_sorted_streams() {
        let names = vec!["t".to_string(), "x".to_string()];
        let (sql, m) = merge_query(
            &query("SELECT b AS n, k FROM t x WHERE k > 1 ORDER BY n DESC NULLS LAST, 2, k + 1 LIMIT 3 OFFSET 2"),
            &t(),
            &names,
            true,
        )
        .expect("merged");
        assert_eq!(
            sql,
            "SELECT b AS n, k, k + 1 FROM public.t AS \"x\" WHERE k > 1 \
             ORDER BY 1 DESC NULLS LAST, 2, 3 LIMIT 5"
        );
        assert_eq!(
            m.keys,
            vec![
                MergeKey {
                    col: 0,
                    desc: true,
                    nulls_first: false
                },
                MergeKey {
                    col: 1,
                    desc: false,
                    nulls_first: false
                },
                MergeKey {
                    col: 2,
                    desc: false,
                    nulls_first: false
                },
            ]
        );
        assert_eq!((m.visible, m.hidden, m.offset, m.limit), (2, 1, 2, Some(3)));
        assert_eq!(m.sort_key, vec!["b DESC NULLS LAST", "k", "k + 1"]);
        // A wildcard is the table's columns; DESC puts NULLs first unless told; no LIMIT pushed
        // with enable_remotelimit off (the merge still applies it).
        let (sql, m) = merge_query(
            &query("SELECT * FROM t ORDER BY b DESC, k NULLS FIRST LIMIT 4"),
            &t(),
            &names[..1],
            false,
        )
        .expect("merged");
        assert_eq!(
            sql,
            "SELECT * FROM public.t AS \"t\" ORDER BY 2 DESC, 1 NULLS FIRST"
        );
        assert!(m.keys[0].nulls_first);
        assert_eq!((m.visible, m.hidden, m.limit), (2, 0, Some(4)));
        for sql in [
            "SELECT k FROM t",
            "SELECT k FROM t LIMIT 3",
            "SELECT k FROM t ORDER BY random()",
            "SELECT random() AS r, k FROM t ORDER BY k",
            "SELECT generate_series(1, k) FROM t ORDER BY 1",
            "SELECT k FROM t ORDER BY b COLLATE \"C\"",
            "SELECT DISTINCT ON (k) k FROM t ORDER BY k",
            "SELECT k FROM t ORDER BY k LIMIT $1",
            "SELECT k FROM t ORDER BY 3",
            "SELECT k, b AS k FROM t ORDER BY k",
            // `k::text` is named k by the engine: the key is that output, not the column.
            "SELECT k::text FROM t ORDER BY k",
            "SELECT k FROM t ORDER BY k FOR UPDATE",
            "SELECT sum(k) FROM t ORDER BY 1",
            "SELECT k, row_number() OVER () FROM t ORDER BY k",
            "SELECT k FROM t WHERE k IN (SELECT 1) ORDER BY k",
            "SELECT public.t.k FROM public.t ORDER BY 1",
        ] {
            assert_eq!(merge_query(&query(sql), &t(), &names, true), None, "{sql}");
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
