//! Remote group query: aggregation split into a partial step on every datanode and a final step on
//! the coordinator (Postgres-XC's `__REMOTE_GROUP_QUERY__`, `enable_remotegroup`).
//!
//! For a SELECT with aggregates and/or GROUP BY over one distributed table (or a join that runs
//! whole on the datanodes) whose groups may span datanodes, the coordinator ships
//!
//! ```text
//! SELECT g1 AS pgxc_g0, ..., count(x) AS pgxc_p0, sum(x) AS pgxc_p1, ... , d AS pgxc_d0
//!   FROM <the query's FROM> WHERE <its WHERE> GROUP BY g1, ..., d
//! ```
//!
//! to every node, puts the partial rows into a coordinator table `__remote_group_query__` (inside a
//! rolled back savepoint of the catalog transaction, like `__remote_join_query__`) and runs the
//! final step there:
//!
//! | aggregate            | partial on each datanode | final on the coordinator                      |
//! |----------------------|--------------------------|-----------------------------------------------|
//! | `count(*)`/`count(x)`| `count(..)`              | `coalesce(sum(p), 0)::int8`                   |
//! | `sum(x)`             | `sum(x)`                 | `sum(p)` (cast back to int8 for int2/int4)    |
//! | `min`/`max`          | same                     | min of mins, max of maxes                     |
//! | `avg(x)`             | `sum(x)`, `count(x)`     | numeric: `sum(s)::numeric / nullif(sum(c),0)`, float8: the same in float8 |
//! | `bool_and`/`every`/`bool_or` | same             | `bool_and`/`bool_or` of the partials         |
//! | `agg(DISTINCT x...)` | `x` added to GROUP BY (deduplicated on the nodes) | `agg(DISTINCT pgxc_dN ...)` |
//!
//! then HAVING, DISTINCT, ORDER BY and LIMIT/OFFSET of the original statement, over the final
//! groups.
//!
//! A plain `SELECT DISTINCT <exprs>` (no aggregates, no GROUP BY; not `DISTINCT ON`) is split the
//! same way, DISTINCT being a GROUP BY on every output expression: the nodes run
//! `SELECT e1 AS pgxc_g0, ... FROM ... WHERE ... GROUP BY e1, ...` (deduplicating their own rows;
//! `*` is expanded to every column, qualified; literal outputs stay on the coordinator) and the
//! final step is `SELECT DISTINCT pgxc_g0 AS "e1", ... FROM __remote_group_query__ [ORDER BY ...]
//! [LIMIT ...]` (EXPLAIN: `HashAggregate`/`Unique` over `Data Node Scan on
//! "__REMOTE_GROUP_QUERY__"`). An output expression that reads no column and is not a literal
//! (`random()`) keeps the statement off this route. When the output includes a single table's
//! distribution key, the statement is shipped whole instead (`route::distinct_by_key`). The result types are PostgreSQL's (`count` bigint, `sum(int4)` bigint, `avg(int)`
//! numeric with the scale of numeric division, `avg(float8)` float8), a global aggregate over no
//! rows gives one row (count 0, sum NULL). Anything else — aggregates with ORDER BY inside or
//! FILTER, `string_agg`/`array_agg` without DISTINCT, statistics aggregates, window functions,
//! subqueries, GROUPING SETS, a reference to a column that is not grouped — is not split: the
//! caller falls back to evaluating the statement over fetched rows.

use super::*;
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, VisitMut, VisitorMut};

/// The coordinator-side table the partial rows of a [`GroupedRemote`] are put in (inside a rolled
/// back savepoint of the catalog transaction).
pub(super) const GROUP_TABLE: &str = "__remote_group_query__";

/// A SELECT split into a partial aggregation on the datanodes and a final step here
/// ([`SelectRoute::Grouped`]).
pub(super) struct GroupedRemote {
    /// The nodes the partial query runs on.
    pub(super) nodes: Vec<String>,
    /// The partial query (`pgxc_gN`, `pgxc_pN`, `pgxc_dN` columns).
    pub(super) remote: String,
    /// The final step over [`GROUP_TABLE`].
    pub(super) local: String,
    /// The partial query's columns and their types.
    pub(super) columns: Columns,
    /// Each partial column's expression as EXPLAIN prints it (`tab1.val2`, `sum(tab1.val)`).
    pub(super) display: Vec<(String, String)>,
}

/// How one aggregate call of the statement is finished on the coordinator.
#[derive(Clone, Debug)]
enum Final {
    /// `count(..)`: the sum of the partial counts, 0 when there are none.
    Count(usize),
    /// `sum(x)`: the sum of the partial sums.
    Sum(usize),
    /// `min`/`max`/`bool_and`/`bool_or`: the same aggregate over the partials.
    Same(&'static str, usize),
    /// `avg(x)`: partial sum and count.
    Avg(usize, usize),
    /// A DISTINCT aggregate, its arguments replaced by partial group columns: the call's text.
    Distinct(String),
}

/// The statement split by [`split`], before the partial columns' types are known.
#[derive(Debug)]
pub(super) struct GroupSplit {
    /// The partial query.
    pub(super) remote: String,
    /// The final step with every aggregate call replaced by `pgxc_fN` (N = index in `finals`).
    local: String,
    /// How each `pgxc_fN` is finished.
    finals: Vec<Final>,
    /// The partial query's column names, in order.
    names: Vec<String>,
    /// The partial query's column expressions, in order.
    exprs: Vec<String>,
}

/// PostgreSQL's output column name of a select-list expression (FigureColname), or `None` when
/// this module does not know it (the caller then does not split the statement).
fn output_name(e: &Expr) -> Option<String> {
    Some(match e {
        Expr::Identifier(id) => parser::normalize_ident(id),
        Expr::CompoundIdentifier(ids) => ids.last().map(parser::normalize_ident)?,
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(parser::normalize_ident)?,
        Expr::Nested(x) => output_name(x)?,
        Expr::Cast { expr, .. } => match expr.as_ref() {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Function(_) => {
                output_name(expr)?
            }
            _ => return None,
        },
        Expr::Case { .. } => "case".into(),
        Expr::Value(_)
        | Expr::BinaryOp { .. }
        | Expr::UnaryOp { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..) => "?column?".into(),
        _ => return None,
    })
}

/// Which FROM-list occurrence and column a reference names; `Err(())` when ambiguous.
fn resolve(tables: &[JoinTable], e: &Expr) -> Option<Result<(usize, usize), ()>> {
    let (qual, col) = match e {
        Expr::Identifier(id) => (None, parser::normalize_ident(id)),
        Expr::CompoundIdentifier(ids) => match ids.as_slice() {
            [t, c] | [_, t, c] => (Some(parser::normalize_ident(t)), parser::normalize_ident(c)),
            _ => return Some(Err(())),
        },
        _ => return None,
    };
    let mut hit = None;
    for (i, (names, cols)) in tables.iter().enumerate() {
        if qual.as_ref().is_some_and(|q| !names.contains(q)) {
            continue;
        }
        if let Some(ci) = cols.iter().position(|(n, _)| *n == col) {
            if hit.is_some() {
                return Some(Err(()));
            }
            hit = Some((i, ci));
        }
    }
    match hit {
        Some(h) => Some(Ok(h)),
        // A qualified name that is no column: not ours to rewrite.
        None if qual.is_some() => Some(Err(())),
        None => None,
    }
}

/// `e` with every column reference written as its resolved occurrence and column, so that `a`,
/// `t.a` and `x.a` (alias) compare equal.
fn canon(tables: &[JoinTable], e: &Expr) -> String {
    let mut c = e.clone();
    let _ = ast::visit_expressions_mut(&mut c, |x| {
        if let Some(Ok((i, ci))) = resolve(tables, x) {
            *x = Expr::Identifier(ast::Ident::new(format!("#{i}.{ci}")));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    let s = c.to_string();
    s.trim_start_matches('(').trim_end_matches(')').to_string()
}

/// Whether `e` reads any column of the FROM list.
fn reads_columns(tables: &[JoinTable], e: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if resolve(tables, x).is_some() {
            found = true;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

/// The aggregate name of a call (lowercase, unqualified), if it is one of the aggregates the
/// coordinator knows and not a window call.
fn aggregate_name(f: &ast::Function) -> Option<String> {
    if f.over.is_some() {
        return None;
    }
    let name = f.name.to_string().to_ascii_lowercase();
    let base = name.rsplit('.').next().unwrap_or(&name).to_string();
    route::AGGREGATES.contains(&base.as_str()).then_some(base)
}

/// The rewrite state: group keys, partial aggregates, finals.
struct Splitter<'a> {
    tables: &'a [JoinTable],
    /// Group keys: canonical text and SQL text (partial `pgxc_gN`).
    groups: Vec<(String, String)>,
    /// DISTINCT aggregate arguments: canonical text and SQL text (partial `pgxc_dN`).
    dkeys: Vec<(String, String)>,
    /// Partial aggregates: canonical text and SQL text (`pgxc_pN`).
    partials: Vec<(String, String)>,
    finals: Vec<Final>,
    ok: bool,
}

impl Splitter<'_> {
    fn partial(&mut self, sql: String, canon: String) -> usize {
        if let Some(i) = self.partials.iter().position(|(c, _)| *c == canon) {
            return i;
        }
        self.partials.push((canon, sql));
        self.partials.len() - 1
    }

    fn dkey(&mut self, e: &Expr) -> usize {
        let c = canon(self.tables, e);
        if let Some(i) = self.dkeys.iter().position(|(k, _)| *k == c) {
            return i;
        }
        self.dkeys.push((c, e.to_string()));
        self.dkeys.len() - 1
    }

    /// The final of one aggregate call, or `None` when it cannot be split.
    fn aggregate(&mut self, f: &ast::Function, name: &str) -> Option<Final> {
        if f.filter.is_some() || !f.within_group.is_empty() {
            return None;
        }
        let FunctionArguments::List(list) = &f.args else {
            return None;
        };
        // No aggregates or subqueries nested in the arguments.
        let mut nested = false;
        let _ = ast::visit_expressions(&list.args, |x| {
            match x {
                Expr::Function(g) if aggregate_name(g).is_some() || g.over.is_some() => {
                    nested = true
                }
                Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::In {
                    target: ast::InTarget::Subquery(_),
                    ..
                } => nested = true,
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        if nested {
            return None;
        }
        if list.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct) {
            // Deduplicate on the nodes: every argument that reads columns becomes a group key of
            // the partial query, and the aggregate runs DISTINCT over those keys here.
            let mut call = f.clone();
            let FunctionArguments::List(cl) = &mut call.args else {
                return None;
            };
            for a in cl.args.iter_mut() {
                let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = a else {
                    return None;
                };
                if reads_columns(self.tables, e) {
                    let k = self.dkey(e);
                    *e = Expr::Identifier(ast::Ident::new(format!("pgxc_d{k}")));
                }
            }
            for c in cl.clauses.iter_mut() {
                let ast::FunctionArgumentClause::OrderBy(keys) = c else {
                    return None;
                };
                for k in keys.iter_mut() {
                    if reads_columns(self.tables, &k.expr) {
                        let i = self.dkey(&k.expr);
                        k.expr = Expr::Identifier(ast::Ident::new(format!("pgxc_d{i}")));
                    }
                }
            }
            return Some(Final::Distinct(call.to_string()));
        }
        if !list.clauses.is_empty() {
            return None;
        }
        let arg = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "count" => None,
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e),
            _ => return None,
        };
        let (arg_sql, arg_canon) = match arg {
            None => ("*".to_string(), "*".to_string()),
            Some(e) => (e.to_string(), canon(self.tables, e)),
        };
        let part = |fname: &str, s: &mut Self| {
            s.partial(
                format!("{fname}({arg_sql})"),
                format!("{fname}({arg_canon})"),
            )
        };
        Some(match name {
            "count" => Final::Count(part("count", self)),
            "sum" => Final::Sum(part("sum", self)),
            "min" => Final::Same("min", part("min", self)),
            "max" => Final::Same("max", part("max", self)),
            "bool_and" | "every" => Final::Same("bool_and", part("bool_and", self)),
            "bool_or" => Final::Same("bool_or", part("bool_or", self)),
            "avg" => {
                arg?;
                let s = part("sum", self);
                let c = part("count", self);
                Final::Avg(s, c)
            }
            _ => return None,
        })
    }
}

impl VisitorMut for Splitter<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow;
        if !self.ok {
            return ControlFlow::Break(());
        }
        // A group key (as written anywhere outside an aggregate) reads the partial column.
        let c = canon(self.tables, e);
        if let Some(i) = self.groups.iter().position(|(k, _)| *k == c) {
            *e = Expr::Identifier(ast::Ident::new(format!("pgxc_g{i}")));
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Function(f) => {
                if f.over.is_some() {
                    self.ok = false;
                    return ControlFlow::Break(());
                }
                if let Some(name) = aggregate_name(f) {
                    match self.aggregate(f, &name) {
                        Some(fin) => {
                            self.finals.push(fin);
                            *e = Expr::Identifier(ast::Ident::new(format!(
                                "pgxc_f{}",
                                self.finals.len() - 1
                            )));
                        }
                        None => {
                            self.ok = false;
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            }
            | Expr::GroupingSets(_)
            | Expr::Cube(_)
            | Expr::Rollup(_) => {
                self.ok = false;
                return ControlFlow::Break(());
            }
            // A column that is not grouped (PostgreSQL would refuse it unless grouped by a
            // primary key) — or an ambiguous one: leave the statement to the fallback.
            Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                if resolve(self.tables, e).is_some() =>
            {
                self.ok = false;
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Whether `e` is a literal (possibly negated, cast or parenthesized): the same on every row.
fn constant(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => !matches!(v.value, ast::Value::Placeholder(_)),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => constant(expr),
        _ => false,
    }
}

/// Split an aggregate SELECT over `tables` (the FROM list's occurrences: the names each is referred
/// to by, and its columns) into a partial query for the datanodes and a final step here. `None`
/// when the statement is not of the splittable kind (see the module's docs); the caller checks that
/// the FROM list runs whole on each datanode (one table, or a colocated join).
pub(super) fn split(q: &ast::Query, tables: &[JoinTable]) -> Option<GroupSplit> {
    if q.with.is_some() || !q.locks.is_empty() || q.fetch.is_some() {
        return None;
    }
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if !sel.named_window.is_empty()
        || sel.qualify.is_some()
        || sel.top.is_some()
        || sel.into.is_some()
        || !sel.lateral_views.is_empty()
        || sel.prewhere.is_some()
        || !sel.cluster_by.is_empty()
        || !sel.distribute_by.is_empty()
        || !sel.sort_by.is_empty()
    {
        return None;
    }
    if route::relation_mentions(q) != tables.len() {
        return None;
    }
    let ast::GroupByExpr::Expressions(gexprs, mods) = &sel.group_by else {
        return None;
    };
    if !mods.is_empty() {
        return None;
    }
    // An aggregate query: GROUP BY, or an aggregate call in the select list, HAVING or ORDER BY.
    let mut has_agg = sel.having.is_some();
    let _ = ast::visit_expressions(&sel.projection, |x| {
        if let Expr::Function(f) = x {
            has_agg |= aggregate_name(f).is_some();
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    // A plain SELECT DISTINCT (no aggregates, no GROUP BY) is a GROUP BY on every output
    // expression: the nodes deduplicate their rows, the final step deduplicates their union.
    let distinct_only =
        gexprs.is_empty() && !has_agg && matches!(sel.distinct, Some(ast::Distinct::Distinct));
    if gexprs.is_empty() && !has_agg && !distinct_only {
        return None;
    }
    // The WHERE and ON clauses run on the datanodes: no subqueries or aggregates there.
    let mut bad = false;
    let check = |x: &Expr, bad: &mut bool| {
        match x {
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            } => *bad = true,
            Expr::Function(f) if f.over.is_some() || aggregate_name(f).is_some() => *bad = true,
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    };
    let _ = ast::visit_expressions(&sel.from, |x| check(x, &mut bad));
    let _ = ast::visit_expressions(&sel.selection, |x| check(x, &mut bad));
    if bad {
        return None;
    }
    // Output names (kept on the final step's select list), and no wildcard.
    let mut names = Vec::new();
    let mut items = Vec::new();
    for item in &sel.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => {
                names.push(output_name(e)?);
                items.push(e.clone());
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                names.push(parser::normalize_ident(alias));
                items.push(expr.clone());
            }
            // `SELECT DISTINCT *`: every column of every occurrence, in order, qualified.
            ast::SelectItem::Wildcard(opts)
                if distinct_only && *opts == ast::WildcardAdditionalOptions::default() =>
            {
                for (occ_names, cols) in tables {
                    let qual = occ_names.last()?;
                    for (c, _) in cols {
                        names.push(c.clone());
                        items.push(Expr::CompoundIdentifier(vec![
                            ast::Ident::with_quote('"', qual.clone()),
                            ast::Ident::with_quote('"', c.clone()),
                        ]));
                    }
                }
            }
            _ => return None,
        }
    }
    // ORDER BY may name an output column that is also a table column: PostgreSQL resolves it to
    // the output column, which the rewrite below could not tell apart.
    // (Harmless when the output column is that very column, and no other table has one so named.)
    if q.order_by.is_some() {
        for (e, n) in items.iter().zip(&names) {
            let holders = tables
                .iter()
                .filter(|(_, cols)| cols.iter().any(|(c, _)| c == n))
                .count();
            let same = matches!(resolve(tables, e), Some(Ok((i, ci))) if tables[i].1[ci].0 == *n);
            if holders > 1 || (holders == 1 && !same) {
                return None;
            }
        }
    }
    // Group keys: expressions, or ordinals of the select list; for a plain DISTINCT, the output
    // expressions that read columns (a constant one is the same on every row; anything else that
    // reads no column — `random()` — is left to the fallback).
    let mut gexprs = gexprs.clone();
    if distinct_only {
        for e in &items {
            if reads_columns(tables, e) {
                gexprs.push(e.clone());
            } else if !constant(e) {
                return None;
            }
        }
    }
    let mut groups: Vec<(String, String)> = Vec::new();
    for g in &gexprs {
        let e = match g {
            Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    let i: usize = n.parse().ok()?;
                    items.get(i.checked_sub(1)?)?.clone()
                }
                _ => g.clone(),
            },
            other => other.clone(),
        };
        // A bare name that is no column (an output alias, as PostgreSQL allows): not split.
        if matches!(e, Expr::Identifier(_)) && resolve(tables, &e).is_none() {
            return None;
        }
        let mut sub = false;
        let _ = ast::visit_expressions(&e, |x| {
            if let Expr::Function(f) = x {
                sub |= aggregate_name(f).is_some() || f.over.is_some();
            }
            sub |= matches!(
                x,
                Expr::Subquery(_)
                    | Expr::Exists { .. }
                    | Expr::In {
                        target: ast::InTarget::Subquery(_),
                        ..
                    }
                    | Expr::GroupingSets(_)
                    | Expr::Cube(_)
                    | Expr::Rollup(_)
            );
            std::ops::ControlFlow::<()>::Continue(())
        });
        if sub {
            return None;
        }
        let c = canon(tables, &e);
        if !groups.iter().any(|(k, _)| *k == c) {
            groups.push((c, e.to_string()));
        }
    }
    // The final step: the statement over GROUP_TABLE, group keys and aggregates replaced.
    let mut local = q.clone();
    let ast::SetExpr::Select(lsel) = local.body.as_mut() else {
        return None;
    };
    lsel.selection = None;
    lsel.group_by = ast::GroupByExpr::Expressions(Vec::new(), Vec::new());
    let mut from = sel.from.first()?.clone();
    from.joins.clear();
    match &mut from.relation {
        ast::TableFactor::Table { name, alias, .. } => {
            *name = ast::ObjectName::from(vec![ast::Ident::new(GROUP_TABLE)]);
            *alias = None;
        }
        _ => return None,
    }
    lsel.from = vec![from];
    lsel.projection = items
        .iter()
        .zip(&names)
        .map(|(e, n)| ast::SelectItem::ExprWithAlias {
            expr: e.clone(),
            alias: ast::Ident::with_quote('"', n.clone()),
        })
        .collect();
    let mut sp = Splitter {
        tables,
        groups,
        dkeys: Vec::new(),
        partials: Vec::new(),
        finals: Vec::new(),
        ok: true,
    };
    let _ = local.visit(&mut sp);
    if !sp.ok {
        return None;
    }
    let ast::SetExpr::Select(lsel) = local.body.as_mut() else {
        return None;
    };
    // A plain DISTINCT keeps its DISTINCT over the group columns (no GROUP BY here).
    let final_keys = if distinct_only { 0 } else { sp.groups.len() };
    lsel.group_by = ast::GroupByExpr::Expressions(
        (0..final_keys)
            .map(|i| Expr::Identifier(ast::Ident::new(format!("pgxc_g{i}"))))
            .collect(),
        Vec::new(),
    );
    // The partial query.
    let mut list = Vec::new();
    let mut cols = Vec::new();
    let mut exprs = Vec::new();
    for (prefix, keys) in [("g", &sp.groups), ("p", &sp.partials), ("d", &sp.dkeys)] {
        for (i, (_, e)) in keys.iter().enumerate() {
            list.push(format!("{e} AS pgxc_{prefix}{i}"));
            cols.push(format!("pgxc_{prefix}{i}"));
            exprs.push(e.clone());
        }
    }
    if list.is_empty() {
        return None;
    }
    let from_sql: Vec<String> = sel.from.iter().map(|f| f.to_string()).collect();
    let mut remote = format!("SELECT {} FROM {}", list.join(", "), from_sql.join(", "));
    if let Some(w) = &sel.selection {
        remote.push_str(&format!(" WHERE {w}"));
    }
    let keys: Vec<&str> = sp
        .groups
        .iter()
        .chain(sp.dkeys.iter())
        .map(|(_, s)| s.as_str())
        .collect();
    if !keys.is_empty() {
        remote.push_str(&format!(" GROUP BY {}", keys.join(", ")));
    }
    Some(GroupSplit {
        remote,
        local: local.to_string(),
        finals: sp.finals,
        names: cols,
        exprs,
    })
}

impl GroupSplit {
    /// The final step's SQL given the partial query's column types (in [`GroupSplit::names`]'
    /// order); `None` when a partial type has no exact final here (e.g. `avg` of float4 or
    /// interval, whose PostgreSQL results the split would not reproduce).
    pub(super) fn local_sql(&self, types: &[DataType]) -> Option<String> {
        let ty = |i: usize| -> Option<&DataType> {
            let pos = self.names.iter().position(|n| *n == format!("pgxc_p{i}"))?;
            types.get(pos)
        };
        let mut out = self.local.clone();
        // Highest index first, so `pgxc_f1` does not replace the start of `pgxc_f12`.
        for (i, f) in self.finals.iter().enumerate().rev() {
            let sql = match f {
                Final::Count(p) => format!("coalesce(sum(pgxc_p{p}), 0)::int8"),
                Final::Sum(p) => match ty(*p)? {
                    DataType::Int8 => format!("sum(pgxc_p{p})::int8"),
                    DataType::Numeric { .. } | DataType::Float8 | DataType::Float4 => {
                        format!("sum(pgxc_p{p})")
                    }
                    _ => return None,
                },
                Final::Same(name, p) => format!("{name}(pgxc_p{p})"),
                Final::Avg(s, c) => match ty(*s)? {
                    DataType::Int8 | DataType::Numeric { .. } => {
                        format!("(sum(pgxc_p{s})::numeric / nullif(sum(pgxc_p{c}), 0)::numeric)")
                    }
                    DataType::Float8 => {
                        format!("(sum(pgxc_p{s}) / nullif(sum(pgxc_p{c}), 0)::float8)")
                    }
                    _ => return None,
                },
                Final::Distinct(call) => call.clone(),
            };
            out = out.replace(&format!("pgxc_f{i}"), &sql);
        }
        Some(out)
    }
}

impl CoordSession {
    /// The [`SelectRoute::Grouped`] route of `q` over `tables` run on `nodes`, or `None` when the
    /// statement is not split (see [`split`]). The partial query's column types come from the
    /// catalog engine (the same query over its empty tables, inside a rolled back savepoint).
    pub(super) async fn group_route(
        &mut self,
        q: &ast::Query,
        tables: &[JoinTable],
        nodes: Vec<String>,
    ) -> Result<Option<SelectRoute>, PgError> {
        if !self.switches.remote_group {
            return Ok(None);
        }
        let Some(split) = split(q, tables) else {
            return Ok(None);
        };
        let probe = self
            .local_run(&format!("SAVEPOINT pgxc_group; {}", split.remote), true)
            .await;
        let undo = self.undo_savepoint("pgxc_group").await;
        undo?;
        // The partial query does not bind here (a type error, an unknown function): leave the
        // statement to the fallback, which reports PostgreSQL's error.
        let Ok(mut probe) = probe else {
            return Ok(None);
        };
        let Some(described) = probe.pop() else {
            return Ok(None);
        };
        let types: Vec<DataType> = described.columns.iter().map(|(_, t)| t.clone()).collect();
        let Some(local) = split.local_sql(&types) else {
            return Ok(None);
        };
        let columns = split.names.iter().cloned().zip(types).collect::<Vec<_>>();
        // EXPLAIN names a single table's columns qualified, as XC prints them.
        let display = split
            .names
            .iter()
            .cloned()
            .zip(split.exprs.iter().map(|e| match tables {
                [(names, cols)] => {
                    let cols: Vec<String> = cols.iter().map(|(n, _)| n.clone()).collect();
                    let alias = names.last().map(String::as_str).unwrap_or_default();
                    explain::qualify(e, alias, &cols)
                }
                _ => e.clone(),
            }))
            .collect();
        Ok(Some(SelectRoute::Grouped(GroupedRemote {
            nodes,
            remote: split.remote,
            local,
            columns,
            display,
        })))
    }

    /// Run a [`SelectRoute::Grouped`]: the partial query on its nodes, the rows into
    /// [`GROUP_TABLE`] inside a savepoint of the catalog transaction, the final step there, roll
    /// back.
    pub(super) async fn evaluate_grouped(
        &mut self,
        g: &GroupedRemote,
    ) -> Result<QueryResult, PgError> {
        let ddl = group_ddl(g);
        self.evaluate_over_remote(
            &g.nodes,
            &g.remote,
            "pgxc_group",
            &ddl,
            GROUP_TABLE,
            &g.columns,
            &g.local,
        )
        .await
    }

    /// EXPLAIN of a [`SelectRoute::Grouped`]: the catalog engine's plan of the final step (over an
    /// empty [`GROUP_TABLE`]) with its scan shown as `Data Node Scan on "__REMOTE_GROUP_QUERY__"`
    /// (XC's shape), its `Node/s:` and (VERBOSE) the partial query.
    pub(super) async fn explain_grouped(
        &mut self,
        g: &GroupedRemote,
        o: ExplainOpts,
    ) -> Result<Vec<String>, PgError> {
        self.local_run("SAVEPOINT pgxc_group", true).await?;
        let r = async {
            self.local_run(&group_ddl(g), true).await?;
            self.local_plan(&g.local, o.costs, o.verbose).await
        }
        .await;
        let undo = self.undo_savepoint("pgxc_group").await;
        let local = r?;
        undo?;
        let scan = RemoteScan {
            nodes: g.nodes.clone(),
            query: g.remote.clone(),
        };
        let lines: Vec<String> =
            explain::remote_scans(&local, |t| (t == GROUP_TABLE).then(|| scan.clone()), o)
                .into_iter()
                .map(|l| l.replace(GROUP_TABLE, "\"__REMOTE_GROUP_QUERY__\""))
                .collect();
        Ok(explain::name_partials(lines, &g.display))
    }
}

/// `CREATE TABLE` of [`GROUP_TABLE`] with a [`GroupedRemote`]'s columns.
fn group_ddl(g: &GroupedRemote) -> String {
    let cols: Vec<String> = g
        .columns
        .iter()
        .map(|(n, t)| format!("\"{n}\" {t}"))
        .collect();
    format!("CREATE TABLE {GROUP_TABLE} ({})", cols.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str) -> ast::Query {
        match parser::parse(sql).expect("parses").pop() {
            Some(Statement::Sql(ast::Statement::Query(q))) => *q,
            other => panic!("not a query: {other:?}"),
        }
    }

    fn t() -> Vec<JoinTable> {
        vec![(
            vec!["t".into()],
            vec![
                ("k".into(), DataType::Int4),
                ("a".into(), DataType::Int4),
                ("b".into(), DataType::Text),
            ],
        )]
    }

    #[test]
    fn splits_grouped_aggregates() {
        let s = split(
            &query("SELECT b, count(*), sum(a), avg(t.a) FROM t WHERE k > 1 GROUP BY b HAVING max(a) > 2 ORDER BY b"),
            &t(),
        )
        .expect("splits");
        assert_eq!(
            s.remote,
            "SELECT b AS pgxc_g0, count(*) AS pgxc_p0, sum(a) AS pgxc_p1, count(t.a) AS pgxc_p2, \
             max(a) AS pgxc_p3 FROM t WHERE k > 1 GROUP BY b"
        );
        let local = s
            .local_sql(&[
                DataType::Text,
                DataType::Int8,
                DataType::Int8,
                DataType::Int8,
                DataType::Int4,
            ])
            .expect("final");
        assert_eq!(
            local,
            "SELECT pgxc_g0 AS \"b\", coalesce(sum(pgxc_p0), 0)::int8 AS \"count\", \
             sum(pgxc_p1)::int8 AS \"sum\", (sum(pgxc_p1)::numeric / nullif(sum(pgxc_p2), 0)::numeric) \
             AS \"avg\" FROM __remote_group_query__ GROUP BY pgxc_g0 HAVING max(pgxc_p3) > 2 \
             ORDER BY pgxc_g0"
        );
    }

    #[test]
    fn distinct_aggregates_group_on_the_nodes() {
        let s = split(&query("SELECT count(DISTINCT a), sum(k) FROM t"), &t()).expect("splits");
        assert_eq!(
            s.remote,
            "SELECT sum(k) AS pgxc_p0, a AS pgxc_d0 FROM t GROUP BY a"
        );
        assert_eq!(
            s.local_sql(&[DataType::Int8, DataType::Int4])
                .expect("final"),
            "SELECT count(DISTINCT pgxc_d0) AS \"count\", sum(pgxc_p0)::int8 AS \"sum\" \
             FROM __remote_group_query__"
        );
    }

    #[test]
    fn plain_distinct_groups_on_the_nodes() {
        let s = split(
            &query("SELECT DISTINCT b, a + 1 AS x, 7 FROM t WHERE k > 1 ORDER BY b LIMIT 3"),
            &t(),
        )
        .expect("splits");
        assert_eq!(
            s.remote,
            "SELECT b AS pgxc_g0, a + 1 AS pgxc_g1 FROM t WHERE k > 1 GROUP BY b, a + 1"
        );
        assert_eq!(
            s.local_sql(&[DataType::Text, DataType::Int4])
                .expect("final"),
            "SELECT DISTINCT pgxc_g0 AS \"b\", pgxc_g1 AS \"x\", 7 AS \"?column?\" \
             FROM __remote_group_query__ ORDER BY pgxc_g0 LIMIT 3"
        );
        let s = split(&query("SELECT DISTINCT * FROM t"), &t()).expect("splits");
        assert_eq!(
            s.remote,
            "SELECT \"t\".\"k\" AS pgxc_g0, \"t\".\"a\" AS pgxc_g1, \"t\".\"b\" AS pgxc_g2 \
             FROM t GROUP BY \"t\".\"k\", \"t\".\"a\", \"t\".\"b\""
        );
        for sql in [
            "SELECT DISTINCT ON (a) a, b FROM t",
            "SELECT DISTINCT random() FROM t",
            "SELECT DISTINCT a FROM t ORDER BY b",
            "SELECT DISTINCT a, (SELECT 1) FROM t",
            "SELECT DISTINCT 1 FROM t",
        ] {
            assert!(split(&query(sql), &t()).is_none(), "{sql}");
        }
    }

    #[test]
    fn refuses_what_does_not_split() {
        for sql in [
            "SELECT string_agg(b, ',' ORDER BY b) FROM t",
            "SELECT array_agg(k) FROM t",
            "SELECT count(*) FILTER (WHERE a > 1) FROM t",
            "SELECT a, count(*) FROM t GROUP BY b",
            "SELECT * FROM t GROUP BY k",
            "SELECT k FROM t",
            "SELECT k, count(*) FROM t WHERE a IN (SELECT 1) GROUP BY k",
            "SELECT k, row_number() OVER () FROM t GROUP BY k",
            "SELECT count(*) AS a FROM t ORDER BY a",
            "SELECT a, count(*) FROM t GROUP BY ROLLUP (a)",
        ] {
            assert!(split(&query(sql), &t()).is_none(), "{sql}");
        }
        let s = split(&query("SELECT avg(a) FROM t"), &t()).expect("splits");
        assert!(s.local_sql(&[DataType::Float4, DataType::Int8]).is_none());
    }
}
