//! What a statement touches: its relations, the distribution-key values its WHERE clause pins,
//! and whether it can be shipped whole to several datanodes and its results concatenated.

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
