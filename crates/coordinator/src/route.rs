//! What a statement touches: its relations, the distribution-key values its WHERE clause pins,
//! and whether it can be shipped whole to several datanodes and its results concatenated
//! (plain scans, GROUP BY or DISTINCT including the distribution key), and which columns of each
//! table it reads ([`read_columns`]: the coordinator's fallback fetches only those, projection
//! pushdown under its remote scans).

use std::ops::ControlFlow;

use pgxc_sql::parser::normalize_ident;
use sqlparser::ast::{
    self, BinaryOperator, Expr, ObjectName, SetExpr, TableFactor, UnaryOperator, Visit, Visitor,
};

/// A relation name as written, folded: `(schema, name)`.
pub type RelName = (Option<String>, String);

fn fold(name: &ObjectName) -> Option<RelName> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(id) => normalize_ident(id),
            None => p.to_string(),
        })
        .collect();
    match parts.as_slice() {
        [n] => Some((None, n.clone())),
        [s, n] => Some((Some(s.clone()), n.clone())),
        [_, s, n] => Some((Some(s.clone()), n.clone())),
        _ => None,
    }
}

/// Every relation a statement names (tables, views, CTE names — the caller filters by the
/// catalog), in order of appearance, without duplicates.
pub fn relations<V: Visit>(stmt: &V) -> Vec<RelName> {
    let mut out: Vec<RelName> = Vec::new();
    let _ = ast::visit_relations(stmt, |r| {
        if let Some(n) = fold(r) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// Literal values (as SQL text of the literal, unquoted for strings) that a WHERE clause's
/// top-level conjuncts pin column `key` of relation `names` (table name or alias) to:
/// `key = lit`, `lit = key`, `key IN (lit, ...)`. `None` if no conjunct pins it.
pub fn key_literals(selection: Option<&Expr>, names: &[String], key: &str) -> Option<Vec<String>> {
    let mut conj = Vec::new();
    if let Some(e) = selection {
        conjuncts(e, &mut conj);
    }
    for c in conj {
        match c {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                if is_key(left, names, key) {
                    if let Some(l) = literal(right) {
                        return Some(vec![l]);
                    }
                }
                if is_key(right, names, key) {
                    if let Some(l) = literal(left) {
                        return Some(vec![l]);
                    }
                }
            }
            Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated: false,
                ..
            } if is_key(expr, names, key) => {
                let lits: Option<Vec<String>> = list.iter().map(literal).collect();
                if let Some(l) = lits {
                    return Some(l);
                }
            }
            _ => {}
        }
    }
    None
}

fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other),
    }
}

fn is_key(e: &Expr, names: &[String], key: &str) -> bool {
    match e {
        Expr::Identifier(id) => normalize_ident(id) == key,
        Expr::CompoundIdentifier(ids) => match ids.as_slice() {
            [t, c] => normalize_ident(c) == key && names.contains(&normalize_ident(t)),
            [_, t, c] => normalize_ident(c) == key && names.contains(&normalize_ident(t)),
            _ => false,
        },
        Expr::Nested(inner) => is_key(inner, names, key),
        _ => false,
    }
}

fn literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some(n.clone()),
            ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => Some(format!("-{n}")),
                _ => None,
            },
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// Aggregate function names whose presence makes a query need a coordinator step.
pub(crate) const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bit_and",
    "bit_or",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "corr",
    "covar_pop",
    "covar_samp",
    "percentile_cont",
    "percentile_disc",
    "mode",
];

struct NeedsCoordinator(bool);

impl Visitor for NeedsCoordinator {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Subquery(_)
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            }
            | Expr::Exists { .. } => {
                self.0 = true;
                ControlFlow::Break(())
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_lowercase();
                let base = name.rsplit('.').next().unwrap_or(&name).to_string();
                if f.over.is_some() || AGGREGATES.contains(&base.as_str()) {
                    self.0 = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            _ => ControlFlow::Continue(()),
        }
    }
}

/// The one base table and its alias names, if `q` is a plain single-table SELECT whose result is
/// the concatenation of the same query's results on each datanode: no aggregates, window
/// functions, subqueries, GROUP BY, HAVING, DISTINCT, ORDER BY, LIMIT/OFFSET, set operations,
/// CTEs, joins, or locking clause.
pub fn concat_shippable(q: &ast::Query) -> Option<(ObjectName, Vec<String>)> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    if !q.locks.is_empty() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if s.distinct.is_some() || s.having.is_some() || !s.named_window.is_empty() {
        return None;
    }
    match &s.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return None,
    }
    let [from] = s.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Table {
        name, alias, args, ..
    } = &from.relation
    else {
        return None;
    };
    if args.is_some() {
        return None;
    }
    let mut v = NeedsCoordinator(false);
    let _ = q.visit(&mut v);
    if v.0 {
        return None;
    }
    let mut names = vec![fold(name)?.1];
    if let Some(a) = alias {
        names.push(normalize_ident(&a.name));
    }
    Some((name.clone(), names))
}

/// How the coordinator combines one column of per-node results of a plain aggregate query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    /// `count(*)`, `count(x)`: the sum of the nodes' counts.
    Count,
    /// `sum(x)`: the sum of the nodes' sums (NULL when every node's is NULL).
    Sum,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
}

/// For `SELECT agg, ... FROM t [WHERE ...]` whose every output column is `count(*)`, `count(x)`,
/// `sum(x)`, `min(x)` or `max(x)` (no DISTINCT, FILTER or ORDER BY inside; no GROUP BY, HAVING,
/// ORDER BY, LIMIT, subqueries, joins): how to combine each column of the per-node results
/// (partial aggregation on the datanodes, final step on the coordinator).
pub fn combinable_aggregates(q: &ast::Query) -> Option<Vec<Combine>> {
    aggregates_combinable(q, false)
}

/// [`combinable_aggregates`] for a FROM list that may join several tables (inner joins checked by
/// the caller, [`inner_join`]): valid when every joined row lives on exactly one datanode
/// (a join colocated on the distribution key, or with replicated tables).
pub fn combinable_aggregates_joined(q: &ast::Query) -> Option<Vec<Combine>> {
    aggregates_combinable(q, true)
}

fn aggregates_combinable(q: &ast::Query, joins: bool) -> Option<Vec<Combine>> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if s.distinct.is_some()
        || s.having.is_some()
        || !s.named_window.is_empty()
        || !q.locks.is_empty()
    {
        return None;
    }
    match &s.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return None,
    }
    if joins {
        // ON clauses are filters too: no subqueries or aggregates in them.
        for f in &s.from {
            let mut v = NeedsCoordinator(false);
            let _ = f.visit(&mut v);
            if v.0 {
                return None;
            }
        }
    } else {
        let [from] = s.from.as_slice() else {
            return None;
        };
        if !from.joins.is_empty() || !matches!(from.relation, TableFactor::Table { args: None, .. })
        {
            return None;
        }
    }
    if let Some(w) = &s.selection {
        let mut v = NeedsCoordinator(false);
        let _ = w.visit(&mut v);
        if v.0 {
            return None;
        }
    }
    let mut out = Vec::new();
    for item in &s.projection {
        let e = match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => return None,
        };
        let Expr::Function(f) = e else {
            return None;
        };
        if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
            return None;
        }
        let ast::FunctionArguments::List(args) = &f.args else {
            return None;
        };
        if args.duplicate_treatment.is_some() || !args.clauses.is_empty() || args.args.len() != 1 {
            return None;
        }
        // The argument must not itself contain aggregates or subqueries.
        let mut v = NeedsCoordinator(false);
        let _ = args.args[0].visit(&mut v);
        if v.0 {
            return None;
        }
        let name = f.name.to_string().to_ascii_lowercase();
        out.push(match name.as_str() {
            "count" => Combine::Count,
            "sum" => Combine::Sum,
            "min" => Combine::Min,
            "max" => Combine::Max,
            _ => return None,
        });
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// The single base table of a plain SELECT's FROM (with its alias names) and its WHERE clause,
/// for distribution-key pruning. `None` for anything else.
pub fn single_table_select(q: &ast::Query) -> Option<(ObjectName, Vec<String>, Option<&Expr>)> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let [from] = s.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Table { name, alias, .. } = &from.relation else {
        return None;
    };
    let mut names = vec![fold(name)?.1];
    if let Some(a) = alias {
        names.push(normalize_ident(&a.name));
    }
    Some((name.clone(), names, s.selection.as_ref()))
}

/// A column reference as written: `qualifier.column` or a bare `column` (folded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColRef {
    /// The table name or alias written before the column, if any.
    pub qualifier: Option<String>,
    /// The column name.
    pub column: String,
}

/// A SELECT whose FROM list is base tables joined only by inner joins (commas, `CROSS JOIN`,
/// `[INNER] JOIN ... ON`): the shape fast query shipping of joins needs (Postgres-XC ships a join
/// whole when it is colocated on the distribution key or joins replicated tables).
#[derive(Clone, Debug)]
pub struct InnerJoin<'a> {
    /// Every table occurrence: its folded name and the names it is referred to by (the table name
    /// and its alias).
    pub tables: Vec<(RelName, Vec<String>)>,
    /// `a = b` between two column references, from the ON clauses and the WHERE's top-level
    /// conjuncts (both are filters of an inner join).
    pub equalities: Vec<(ColRef, ColRef)>,
    /// The WHERE clause.
    pub selection: Option<&'a Expr>,
}

fn col_ref(e: &Expr) -> Option<ColRef> {
    match e {
        Expr::Identifier(id) => Some(ColRef {
            qualifier: None,
            column: normalize_ident(id),
        }),
        Expr::CompoundIdentifier(ids) => match ids.as_slice() {
            [t, c] | [_, t, c] => Some(ColRef {
                qualifier: Some(normalize_ident(t)),
                column: normalize_ident(c),
            }),
            _ => None,
        },
        Expr::Nested(inner) => col_ref(inner),
        _ => None,
    }
}

fn equalities(e: &Expr, out: &mut Vec<(ColRef, ColRef)>) {
    let mut conj = Vec::new();
    conjuncts(e, &mut conj);
    for c in conj {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        {
            if let (Some(l), Some(r)) = (col_ref(left), col_ref(right)) {
                out.push((l, r));
            }
        }
    }
}

/// The [`InnerJoin`] shape of `q`, or `None` when its body is not one SELECT over base tables
/// joined by inner joins only (outer, semi, lateral, USING/NATURAL joins, table functions,
/// derived tables and set operations are not this shape).
pub fn inner_join(q: &ast::Query) -> Option<InnerJoin<'_>> {
    if q.with.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let mut tables = Vec::new();
    let mut eqs = Vec::new();
    let table = |f: &TableFactor| -> Option<(RelName, Vec<String>)> {
        let TableFactor::Table {
            name, alias, args, ..
        } = f
        else {
            return None;
        };
        if args.is_some() {
            return None;
        }
        let rel = fold(name)?;
        let mut names = vec![rel.1.clone()];
        if let Some(a) = alias {
            if !a.columns.is_empty() {
                return None;
            }
            names = vec![normalize_ident(&a.name)];
        }
        Some((rel, names))
    };
    for twj in &s.from {
        tables.push(table(&twj.relation)?);
        for j in &twj.joins {
            tables.push(table(&j.relation)?);
            match &j.join_operator {
                ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => match c {
                    ast::JoinConstraint::On(e) => equalities(e, &mut eqs),
                    ast::JoinConstraint::None => {}
                    _ => return None,
                },
                ast::JoinOperator::CrossJoin(ast::JoinConstraint::None) => {}
                _ => return None,
            }
        }
    }
    if let Some(w) = &s.selection {
        equalities(w, &mut eqs);
    }
    Some(InnerJoin {
        tables,
        equalities: eqs,
        selection: s.selection.as_ref(),
    })
}

/// How many relation names `q` mentions in all, counting repeats (FROM lists, subqueries, CTEs).
pub fn relation_mentions(q: &ast::Query) -> usize {
    let mut n = 0;
    let _ = ast::visit_relations(q, |_| {
        n += 1;
        ControlFlow::<()>::Continue(())
    });
    n
}

/// Whether the results of `q` on several datanodes, concatenated, are its result over the union of
/// their data when every output row comes from exactly one node: a plain SELECT without
/// aggregates, window functions, subqueries, GROUP BY, HAVING, DISTINCT, ORDER BY, LIMIT/OFFSET,
/// set operations, CTEs or locking clauses (joins allowed; the caller checks colocation).
pub fn concat_safe(q: &ast::Query) -> bool {
    if q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
    {
        return false;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    if s.distinct.is_some() || s.having.is_some() || !s.named_window.is_empty() {
        return false;
    }
    match &s.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return false,
    }
    let mut v = NeedsCoordinator(false);
    let _ = q.visit(&mut v);
    !v.0
}

/// A WHERE conjunct a remote scan of one table can apply (pushdown under a coordinator plan).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanFilter {
    /// The table occurrence the conjunct reads.
    pub table: RelName,
    /// The name the query refers to it by (its alias, or its name): the remote scan uses it as
    /// its alias so the conjunct's text applies unchanged.
    pub qualifier: String,
    /// The conjunct's SQL text.
    pub sql: String,
    /// The columns it reads (folded), so the caller can check they are the table's.
    pub columns: Vec<String>,
}

/// Whether `e` is made only of column references, constants and operators that evaluate the same
/// on a datanode as on the coordinator (no functions, subqueries, aggregates or parameters).
pub(crate) fn portable(e: &Expr) -> bool {
    let mut ok = true;
    let _ = ast::visit_expressions(e, |x| {
        ok &= matches!(
            x,
            Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Value(_)
                | Expr::BinaryOp { .. }
                | Expr::UnaryOp { .. }
                | Expr::Nested(_)
                | Expr::IsNull(_)
                | Expr::IsNotNull(_)
                | Expr::IsTrue(_)
                | Expr::IsFalse(_)
                | Expr::IsNotTrue(_)
                | Expr::IsNotFalse(_)
                | Expr::IsDistinctFrom(..)
                | Expr::IsNotDistinctFrom(..)
                | Expr::Between { .. }
                | Expr::In {
                    target: ast::InTarget::List(_),
                    ..
                }
                | Expr::Like { .. }
                | Expr::ILike { .. }
        );
        if let Expr::Value(v) = x {
            ok &= !matches!(v.value, ast::Value::Placeholder(_));
        }
        if ok {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    ok
}

/// The WHERE conjuncts of `q` that remote scans can apply before the coordinator evaluates the
/// rest: only for an [`InnerJoin`] (a filter of an inner join removes only rows that could not
/// reach the result), only on tables the whole statement mentions once (a second mention, e.g. in
/// a subquery, needs the rows the filter would drop), and only [`portable`] conjuncts whose column
/// references all name that one occurrence (bare columns only when the FROM list has one table).
/// The coordinator still applies the whole WHERE clause, so a pushed conjunct only saves work.
pub fn scan_filters(q: &ast::Query) -> Vec<ScanFilter> {
    let Some(shape) = inner_join(q) else {
        return Vec::new();
    };
    let Some(w) = shape.selection else {
        return Vec::new();
    };
    let mut mentions: Vec<RelName> = Vec::new();
    let _ = ast::visit_relations(q, |r| {
        if let Some(n) = fold(r) {
            mentions.push(n);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut conj = Vec::new();
    conjuncts(w, &mut conj);
    let mut out = Vec::new();
    for c in conj {
        if !portable(c) {
            continue;
        }
        let mut quals: Vec<Option<String>> = Vec::new();
        let mut columns = Vec::new();
        let _ = ast::visit_expressions(c, |x| {
            if let Some(r) = match x {
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => col_ref(x),
                _ => None,
            } {
                if !quals.contains(&r.qualifier) {
                    quals.push(r.qualifier.clone());
                }
                columns.push(r.column);
            }
            ControlFlow::<()>::Continue(())
        });
        let target = match quals.as_slice() {
            [None] if shape.tables.len() == 1 => Some(0),
            [Some(q)] => {
                let hits: Vec<usize> = (0..shape.tables.len())
                    .filter(|&i| shape.tables[i].1.contains(q))
                    .collect();
                match hits.as_slice() {
                    [i] => Some(*i),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(i) = target else {
            continue;
        };
        let (rel, names) = &shape.tables[i];
        // Compared by bare name: `t` and `public.t` may be the same table.
        if mentions.iter().filter(|m| m.1 == rel.1).count() != 1 {
            continue;
        }
        out.push(ScanFilter {
            table: rel.clone(),
            qualifier: names[0].clone(),
            sql: c.to_string(),
            columns,
        });
    }
    out
}

/// Finds subqueries and window functions (aggregates are allowed).
struct NeedsCoordinatorBesidesAggregates(bool);

impl Visitor for NeedsCoordinatorBesidesAggregates {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let stop = match e {
            Expr::Subquery(_)
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            }
            | Expr::Exists { .. } => true,
            Expr::Function(f) => f.over.is_some(),
            _ => false,
        };
        if stop {
            self.0 = true;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Whether `q` is a single-table aggregate query grouped by the distribution key `key` of the
/// table called `names` (name or alias): `SELECT ... FROM t [WHERE ...] GROUP BY ..., key, ...
/// [HAVING ...]` with no DISTINCT, ORDER BY, LIMIT/OFFSET, window functions, subqueries, CTEs or
/// set operations. Every group then lives on exactly one datanode, so the query runs whole on
/// each node and the results are concatenated (XC ships GROUP BY on the distribution key).
pub fn grouped_by_key(q: &ast::Query, names: &[String], key: &str) -> bool {
    if q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
    {
        return false;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    if s.distinct.is_some() || !s.named_window.is_empty() {
        return false;
    }
    let [from] = s.from.as_slice() else {
        return false;
    };
    if !from.joins.is_empty() || !matches!(from.relation, TableFactor::Table { args: None, .. }) {
        return false;
    }
    let ast::GroupByExpr::Expressions(exprs, mods) = &s.group_by else {
        return false;
    };
    if !mods.is_empty() || !exprs.iter().any(|e| is_key(e, names, key)) {
        return false;
    }
    let mut v = NeedsCoordinatorBesidesAggregates(false);
    let _ = q.visit(&mut v);
    !v.0
}

/// Whether `q` is a plain single-table `SELECT DISTINCT` whose output includes the distribution
/// key `key` of the table called `names` (name or alias) as a bare column (or `*`): `SELECT
/// DISTINCT ..., key, ... FROM t [WHERE ...]` with no DISTINCT ON, aggregates, GROUP BY, HAVING,
/// ORDER BY, LIMIT/OFFSET, window functions, subqueries, CTEs or set operations. Two equal
/// output rows then have equal keys and so come from the same datanode: the query runs whole on
/// each node and the results are concatenated (like [`grouped_by_key`]).
pub fn distinct_by_key(q: &ast::Query, names: &[String], key: &str) -> bool {
    if q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || !q.locks.is_empty()
    {
        return false;
    }
    let SetExpr::Select(s) = q.body.as_ref() else {
        return false;
    };
    if !matches!(s.distinct, Some(ast::Distinct::Distinct))
        || s.having.is_some()
        || !s.named_window.is_empty()
    {
        return false;
    }
    match &s.group_by {
        ast::GroupByExpr::Expressions(v, m) if v.is_empty() && m.is_empty() => {}
        _ => return false,
    }
    let [from] = s.from.as_slice() else {
        return false;
    };
    if !from.joins.is_empty() || !matches!(from.relation, TableFactor::Table { args: None, .. }) {
        return false;
    }
    let has_key = s.projection.iter().any(|item| match item {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
            is_key(e, names, key)
        }
        ast::SelectItem::Wildcard(o) => *o == ast::WildcardAdditionalOptions::default(),
        ast::SelectItem::QualifiedWildcard(
            ast::SelectItemQualifiedWildcardKind::ObjectName(n),
            o,
        ) => {
            *o == ast::WildcardAdditionalOptions::default()
                && fold(n).is_some_and(|(_, t)| names.contains(&t))
        }
        _ => false,
    });
    if !has_key {
        return false;
    }
    let mut v = NeedsCoordinator(false);
    let _ = q.visit(&mut v);
    !v.0
}

/// The columns a statement reads of each table it names, for projection pushdown under the
/// coordinator's fallback (`SelectRoute::Evaluate`: fetch only what the statement reads).
///
/// `tables` are the tables to answer for: each one's bare (unqualified, folded) name and its
/// columns in order. The answer has one entry per table: `Some(mask)` (`mask[i]`: column `i` is
/// read) or `None` when every column must be fetched. The analysis over-approximates: a column
/// counts as read when a two-part reference `q.c` names it with `q` one of the table's
/// occurrences (its name or alias, in any scope), or when any other identifier anywhere in the
/// statement (select lists, WHERE, ON, USING, GROUP BY, ORDER BY, window definitions, subqueries,
/// CTEs...) is spelled like it. A table is read whole when the statement uses `t.*`, a whole-row
/// reference (`t`, `row_to_json(x)`, `(t).a`, `t.f` naming no column: PostgreSQL's `f(t)`), a
/// column alias list (`t AS x(a, b)`), and every table is read
/// whole for an unqualified `*`, a NATURAL join or a `TABLE t` body — PostgreSQL's expansion of
/// those depends on column positions this analysis does not track.
pub fn read_columns(q: &ast::Query, tables: &[(String, Vec<String>)]) -> Vec<Option<Vec<bool>>> {
    let mut r = Reads {
        tables,
        occurrences: Vec::new(),
        idents: Vec::new(),
        qualified: vec![Vec::new(); tables.len()],
        handled: Vec::new(),
        whole: vec![false; tables.len()],
        all: false,
    };
    // First the occurrences (names and aliases), then every reference.
    let mut occ = Occurrences(Vec::new(), tables, Vec::new());
    let _ = q.visit(&mut occ);
    r.occurrences = occ.0;
    for i in occ.2 {
        r.whole[i] = true;
    }
    let _ = q.visit(&mut r);
    tables
        .iter()
        .enumerate()
        .map(|(i, (_, cols))| {
            if r.all || r.whole[i] {
                return None;
            }
            Some(
                cols.iter()
                    .map(|c| r.idents.contains(c) || r.qualified[i].contains(c))
                    .collect(),
            )
        })
        .collect()
}

/// The names table occurrences are referred to by (table name, alias) and the table each means;
/// the third field lists tables read whole because of a column alias list.
struct Occurrences<'a>(
    Vec<(String, usize)>,
    &'a [(String, Vec<String>)],
    Vec<usize>,
);

impl Visitor for Occurrences<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = f {
            if let Some((_, bare)) = fold(name) {
                for (i, (t, _)) in self.1.iter().enumerate() {
                    if *t != bare {
                        continue;
                    }
                    self.0.push((bare.clone(), i));
                    if let Some(a) = alias {
                        self.0.push((normalize_ident(&a.name), i));
                        if !a.columns.is_empty() {
                            self.2.push(i);
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The reference walk of [`read_columns`].
struct Reads<'a> {
    tables: &'a [(String, Vec<String>)],
    occurrences: Vec<(String, usize)>,
    /// Every identifier of the statement that names some table's column, folded (except the
    /// parts of `q.c` references resolved to table occurrences, see `qualified`).
    idents: Vec<String>,
    /// Per table, the columns `q.c` references name when `q` is one of its occurrences.
    qualified: Vec<Vec<String>>,
    /// The identifiers of the `q.c` references counted in `qualified` (by address in the
    /// statement, which the walk borrows unchanged), skipped by the identifier walk.
    handled: Vec<*const ast::Ident>,
    whole: Vec<bool>,
    all: bool,
}

impl Reads<'_> {
    /// `name` (folded) used as a whole row or in `name.*`: the tables it names are read whole;
    /// a name that is no table occurrence (a subquery's alias, a CTE) reads everything.
    fn whole_row(&mut self, name: &str, must_match: bool) {
        let mut hit = false;
        for (n, i) in &self.occurrences {
            if n == name {
                self.whole[*i] = true;
                hit = true;
            }
        }
        if !hit && must_match {
            self.all = true;
        }
    }

    fn qualified_wildcard(&mut self, name: &ObjectName) {
        match fold(name) {
            Some((_, n)) => self.whole_row(&n, true),
            None => self.all = true,
        }
    }
}

/// Whether a query body (through set operations) has a `TABLE t` term.
fn has_table_body(body: &SetExpr) -> bool {
    match body {
        SetExpr::Table(_) => true,
        SetExpr::SetOperation { left, right, .. } => has_table_body(left) || has_table_body(right),
        _ => false,
    }
}

impl Visitor for Reads<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if has_table_body(&q.body) {
            self.all = true;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &ast::Select) -> ControlFlow<()> {
        for item in &s.projection {
            match item {
                ast::SelectItem::Wildcard(_) => self.all = true,
                ast::SelectItem::QualifiedWildcard(kind, _) => match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                        self.qualified_wildcard(n)
                    }
                    ast::SelectItemQualifiedWildcardKind::Expr(_) => self.all = true,
                },
                _ => {}
            }
        }
        for twj in &s.from {
            for j in &twj.joins {
                let natural = match &j.join_operator {
                    ast::JoinOperator::Join(c)
                    | ast::JoinOperator::Inner(c)
                    | ast::JoinOperator::Left(c)
                    | ast::JoinOperator::LeftOuter(c)
                    | ast::JoinOperator::Right(c)
                    | ast::JoinOperator::RightOuter(c)
                    | ast::JoinOperator::FullOuter(c)
                    | ast::JoinOperator::CrossJoin(c)
                    | ast::JoinOperator::Semi(c)
                    | ast::JoinOperator::LeftSemi(c)
                    | ast::JoinOperator::RightSemi(c)
                    | ast::JoinOperator::Anti(c)
                    | ast::JoinOperator::LeftAnti(c)
                    | ast::JoinOperator::RightAnti(c) => {
                        matches!(c, ast::JoinConstraint::Natural)
                    }
                    // Not PostgreSQL's: read everything.
                    _ => true,
                };
                if natural {
                    self.all = true;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Wildcard(_) => self.all = true,
            Expr::QualifiedWildcard(n, _) => self.qualified_wildcard(n),
            // A bare name that is a table occurrence may be a whole-row reference.
            Expr::Identifier(id) => self.whole_row(&normalize_ident(id), false),
            Expr::CompoundIdentifier(ids) => {
                if let Some(last) = ids.last() {
                    self.whole_row(&normalize_ident(last), false);
                }
                // `q.c` with `q` a table occurrence: column `c` of the tables `q` may mean (every
                // occurrence so named, in any scope), or their whole rows when none has a column
                // `c` (PostgreSQL's `t.f` is also `f(t)`). Anything else counts by spelling.
                if let [q, c] = ids.as_slice() {
                    let (q, c) = (normalize_ident(q), normalize_ident(c));
                    let hits: Vec<usize> = self
                        .occurrences
                        .iter()
                        .filter(|(n, _)| *n == q)
                        .map(|(_, i)| *i)
                        .collect();
                    if !hits.is_empty() {
                        if hits.iter().any(|&i| self.tables[i].1.contains(&c)) {
                            for &i in &hits {
                                if !self.qualified[i].contains(&c) {
                                    self.qualified[i].push(c.clone());
                                }
                            }
                        } else {
                            for &i in &hits {
                                self.whole[i] = true;
                            }
                        }
                        self.handled
                            .extend(ids.iter().map(|id| id as *const ast::Ident));
                    }
                }
            }
            Expr::Function(f) => {
                if let ast::FunctionArguments::List(list) = &f.args {
                    for a in &list.args {
                        let arg = match a {
                            ast::FunctionArg::Unnamed(a)
                            | ast::FunctionArg::Named { arg: a, .. }
                            | ast::FunctionArg::ExprNamed { arg: a, .. } => a,
                        };
                        match arg {
                            ast::FunctionArgExpr::QualifiedWildcard(n) => {
                                self.qualified_wildcard(n)
                            }
                            ast::FunctionArgExpr::WildcardWithOptions(_) => self.all = true,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_ident(&mut self, id: &ast::Ident) -> ControlFlow<()> {
        if self.handled.contains(&(id as *const ast::Ident)) {
            return ControlFlow::Continue(());
        }
        let n = normalize_ident(id);
        if !self.idents.contains(&n) && self.tables.iter().any(|(_, c)| c.contains(&n)) {
            self.idents.push(n);
        }
        ControlFlow::Continue(())
    }
}

/// The folded name of an object name.
pub fn rel_name(name: &ObjectName) -> Option<RelName> {
    fold(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgxc_sql::parser::{parse, Statement};

    fn query(sql: &str) -> ast::Query {
        match parse(sql).expect("parses").pop() {
            Some(Statement::Sql(ast::Statement::Query(q))) => *q,
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn finds_relations_and_key_literals() {
        let q = query("SELECT a.x FROM acc a JOIN public.br b ON a.b = b.b WHERE a.id = 7");
        assert_eq!(
            relations(&q),
            vec![(None, "acc".into()), (Some("public".into()), "br".into())]
        );
        let q = query("SELECT abalance FROM pgbench_accounts WHERE aid = 42");
        let (_, names, sel) = single_table_select(&q).expect("single table");
        assert_eq!(key_literals(sel, &names, "aid"), Some(vec!["42".into()]));
        assert_eq!(key_literals(sel, &names, "bid"), None);
        let q = query("SELECT * FROM t x WHERE 3 = x.k AND v > 1");
        let (_, names, sel) = single_table_select(&q).expect("single table");
        assert_eq!(key_literals(sel, &names, "k"), Some(vec!["3".into()]));
        let q = query("SELECT * FROM t WHERE k IN (1, -2, 3) OR v = 1");
        let (_, names, sel) = single_table_select(&q).expect("single table");
        assert_eq!(key_literals(sel, &names, "k"), None, "OR does not pin");
        let q = query("SELECT * FROM t WHERE (k IN (1, -2, 3)) AND v = 1");
        let (_, names, sel) = single_table_select(&q).expect("single table");
        assert_eq!(
            key_literals(sel, &names, "k"),
            Some(vec!["1".into(), "-2".into(), "3".into()])
        );
    }

    #[test]
    fn plain_aggregates_combine() {
        assert_eq!(
            combinable_aggregates(&query(
                "SELECT count(*), sum(b) AS s, min(a), max(a + 1) FROM t WHERE a > 1"
            )),
            Some(vec![
                Combine::Count,
                Combine::Sum,
                Combine::Min,
                Combine::Max
            ])
        );
        for sql in [
            "SELECT avg(a) FROM t",
            "SELECT count(DISTINCT a) FROM t",
            "SELECT sum(a) FROM t GROUP BY b",
            "SELECT a, count(*) FROM t",
            "SELECT sum(a) FROM t, u",
            "SELECT sum(a) FILTER (WHERE a > 1) FROM t",
            "SELECT count(*) FROM t WHERE a IN (SELECT b FROM u)",
            "SELECT sum(a) FROM t LIMIT 1",
        ] {
            assert!(combinable_aggregates(&query(sql)).is_none(), "{sql}");
        }
    }

    #[test]
    fn reads_only_named_columns() {
        let tables = vec![
            (
                "t".to_string(),
                vec!["k".into(), "a".into(), "b".into(), "c".into()],
            ),
            ("u".to_string(), vec!["k".into(), "x".into(), "y".into()]),
        ];
        let reads = |sql: &str| read_columns(&query(sql), &tables);
        let m = |v: &[bool]| Some(v.to_vec());
        assert_eq!(
            reads("SELECT t.a, sum(x) FROM t JOIN u ON t.k = u.k WHERE u.y > 1 GROUP BY 1"),
            vec![m(&[true, true, false, false]), m(&[true, true, true])]
        );
        // Qualified references count for their table only.
        assert_eq!(
            reads("SELECT t.a, v.y FROM t JOIN u v ON t.c = v.k WHERE v.x > t.k"),
            vec![m(&[true, true, false, true]), m(&[true, true, true])]
        );
        assert_eq!(
            reads("SELECT t.a FROM t WHERE EXISTS (SELECT 1 FROM u t WHERE t.x = 1)"),
            vec![m(&[false, true, false, false]), m(&[false, true, false])]
        );
        assert_eq!(
            reads("SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x = t.c) ORDER BY b"),
            vec![m(&[false, true, true, true]), m(&[false, true, false])]
        );
        assert_eq!(
            reads("SELECT count(*) FROM t"),
            vec![m(&[false, false, false, false]), m(&[false, false, false])]
        );
        // Whole rows.
        for (sql, t, u) in [
            ("SELECT * FROM t", true, true),
            ("SELECT t.* FROM t, u", true, false),
            ("SELECT x.* FROM t x, u", true, false),
            ("SELECT row_to_json(x) FROM t x", true, false),
            ("SELECT count(u.*) FROM u", false, true),
            ("SELECT a FROM t NATURAL JOIN u", true, true),
            ("SELECT a1 FROM t AS z(a1, a2)", true, false),
            ("SELECT s.a FROM (SELECT * FROM t) s", true, true),
            ("SELECT q.* FROM (SELECT a FROM t) q", true, true),
            ("TABLE t", true, true),
        ] {
            let r = reads(sql);
            assert_eq!((r[0].is_none(), r[1].is_none()), (t, u), "{sql}");
        }
        assert_eq!(
            reads("SELECT q.z FROM (SELECT a AS z FROM t) q JOIN u USING (k)"),
            vec![m(&[true, true, false, false]), m(&[true, false, false])]
        );
    }

    #[test]
    fn distinct_on_the_key_concatenates() {
        let names = vec!["t".to_string()];
        assert!(distinct_by_key(
            &query("SELECT DISTINCT k, a FROM t WHERE a > 1"),
            &names,
            "k"
        ));
        assert!(distinct_by_key(
            &query("SELECT DISTINCT * FROM t"),
            &names,
            "k"
        ));
        for sql in [
            "SELECT DISTINCT a FROM t",
            "SELECT DISTINCT k + 1 FROM t",
            "SELECT DISTINCT k FROM t ORDER BY k",
            "SELECT DISTINCT k FROM t LIMIT 2",
            "SELECT DISTINCT ON (k) k, a FROM t",
            "SELECT DISTINCT k, count(*) FROM t GROUP BY k",
            "SELECT DISTINCT k FROM t, u",
            "SELECT k FROM t",
        ] {
            assert!(!distinct_by_key(&query(sql), &names, "k"), "{sql}");
        }
    }

    #[test]
    fn only_plain_scans_concatenate() {
        assert!(concat_shippable(&query("SELECT a, b + 1 FROM t WHERE a > 3")).is_some());
        for sql in [
            "SELECT count(*) FROM t",
            "SELECT a FROM t ORDER BY a",
            "SELECT a FROM t LIMIT 1",
            "SELECT DISTINCT a FROM t",
            "SELECT a FROM t GROUP BY a",
            "SELECT a FROM t WHERE a IN (SELECT b FROM u)",
            "SELECT a, row_number() OVER () FROM t",
            "SELECT a FROM t, u",
            "SELECT a FROM t UNION SELECT b FROM u",
            "SELECT a FROM t FOR UPDATE",
        ] {
            assert!(concat_shippable(&query(sql)).is_none(), "{sql}");
        }
    }
}
