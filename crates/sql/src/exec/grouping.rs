//! GROUPING SETS, ROLLUP and CUBE, and `grouping()`: a GROUP BY clause is expanded into one
//! flat list of grouping expressions plus the grouping sets (index lists into it), PostgreSQL's
//! order: ROLLUP (a, b) = (a, b), (a), (); CUBE (a, b) = (a, b), (a), (b), (); several items
//! combine by cross product. `grouping(a, b)` calls become hidden grouping columns whose value
//! the aggregation sets per grouping set (bit = 1 for an argument not grouped, first argument
//! most significant).

use super::*;

/// The expanded grouping of a query.
#[derive(Clone, Debug)]
pub(super) struct GroupingPlan {
    /// Grouping sets: indexes into the flat grouping expressions.
    pub(super) sets: Vec<Vec<usize>>,
    /// How many flat grouping expressions come before the `grouping()` columns.
    pub(super) nflat: usize,
    /// For each `grouping()` call: its arguments' indexes into the flat expressions.
    pub(super) calls: Vec<Vec<usize>>,
}

/// The qualifier of the hidden `grouping()` columns.
pub(super) const GROUPING_QUAL: &str = "\u{1}grp";

impl GroupingPlan {
    /// The value of `grouping()` call `c` in grouping set `set`.
    pub(super) fn call_value(&self, c: usize, set: &[usize]) -> i32 {
        self.calls[c]
            .iter()
            .fold(0, |acc, g| (acc << 1) | i32::from(!set.contains(g)))
    }
}

fn cross(a: Vec<Vec<usize>>, b: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for x in &a {
        for y in &b {
            let mut s = x.clone();
            for i in y {
                if !s.contains(i) {
                    s.push(*i);
                }
            }
            out.push(s);
        }
    }
    out
}

/// Whether `e` calls `grouping()` where [`rewrite_calls`] replaces it.
fn calls_grouping(e: &A) -> bool {
    match e {
        A::Function(f) => f.over.is_none() && func_name(f) == "grouping",
        A::BinaryOp { left, right, .. } => calls_grouping(left) || calls_grouping(right),
        A::UnaryOp { expr, .. } | A::Nested(expr) | A::Cast { expr, .. } => calls_grouping(expr),
        _ => false,
    }
}

/// Rewrite `grouping(...)` calls inside `e` (through operators, parentheses and casts) into
/// references to hidden columns, recording their arguments.
fn rewrite_calls(e: &mut A, flat: &[String], calls: &mut Vec<Vec<usize>>) -> Result<(), PgError> {
    match e {
        A::Function(f) if f.over.is_none() && func_name(f) == "grouping" => {
            let args = super::srf::call_args(f)?;
            let mut idx = Vec::new();
            for a in args {
                let t = a.to_string();
                let k = flat.iter().position(|g| *g == t).ok_or_else(|| {
                    err(
                        SqlState::GroupingError,
                        "arguments to GROUPING must be grouping expressions of the associated query level",
                    )
                })?;
                idx.push(k);
            }
            let n = calls.len();
            calls.push(idx);
            *e = A::CompoundIdentifier(vec![
                ast::Ident::with_quote('"', GROUPING_QUAL),
                ast::Ident::with_quote('"', format!("g{n}")),
            ]);
        }
        A::BinaryOp { left, right, .. } => {
            rewrite_calls(left, flat, calls)?;
            rewrite_calls(right, flat, calls)?;
        }
        A::UnaryOp { expr, .. } | A::Nested(expr) | A::Cast { expr, .. } => {
            rewrite_calls(expr, flat, calls)?;
        }
        _ => {}
    }
    Ok(())
}

/// Expand `s`'s GROUP BY when it uses ROLLUP, CUBE or GROUPING SETS, or when the query calls
/// `grouping()`: the select with a flat GROUP BY (the grouping expressions, then the hidden
/// `grouping()` columns) and the plan; `None` for plain grouping.
///
/// Errors: 42803 for a `grouping()` argument that is no grouping expression.
pub(super) fn plan_grouping(
    s: &ast::Select,
) -> Result<Option<(ast::Select, GroupingPlan)>, PgError> {
    let ast::GroupByExpr::Expressions(items, mods) = &s.group_by else {
        return Ok(None);
    };
    let special = items
        .iter()
        .any(|e| matches!(e, A::Rollup(_) | A::Cube(_) | A::GroupingSets(_)));
    let mentions_grouping = s.projection.iter().any(|p| match p {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
            calls_grouping(e)
        }
        _ => false,
    }) || s.having.as_ref().is_some_and(calls_grouping);
    if !special && !mentions_grouping {
        return Ok(None);
    }
    let mut flat: Vec<String> = Vec::new();
    let mut flat_ast: Vec<A> = Vec::new();
    let mut index_of = |e: &A, flat_ast: &mut Vec<A>| -> usize {
        let t = e.to_string();
        match flat.iter().position(|g| *g == t) {
            Some(k) => k,
            None => {
                flat.push(t);
                flat_ast.push(e.clone());
                flat.len() - 1
            }
        }
    };
    let mut sets: Vec<Vec<usize>> = vec![Vec::new()];
    for item in items {
        let item_sets: Vec<Vec<usize>> = match item {
            A::Rollup(elems) => {
                let idx: Vec<Vec<usize>> = elems
                    .iter()
                    .map(|g| g.iter().map(|e| index_of(e, &mut flat_ast)).collect())
                    .collect();
                (0..=idx.len()).rev().map(|n| idx[..n].concat()).collect()
            }
            A::Cube(elems) => {
                let idx: Vec<Vec<usize>> = elems
                    .iter()
                    .map(|g| g.iter().map(|e| index_of(e, &mut flat_ast)).collect())
                    .collect();
                let n = idx.len();
                if n > 12 {
                    return Err(err(
                        SqlState::ProgramLimitExceeded,
                        "CUBE is limited to 12 elements",
                    ));
                }
                // PostgreSQL's order: by descending set size, then lexicographically.
                let mut masks: Vec<u32> = (0..(1u32 << n)).collect();
                masks.sort_by_key(|m| {
                    (
                        std::cmp::Reverse(m.count_ones()),
                        (0..n)
                            .map(|i| m & (1 << (n - 1 - i)) == 0)
                            .collect::<Vec<_>>(),
                    )
                });
                masks
                    .into_iter()
                    .map(|m| {
                        (0..n)
                            .filter(|i| m & (1 << (n - 1 - i)) != 0)
                            .flat_map(|i| idx[i].clone())
                            .collect()
                    })
                    .collect()
            }
            A::GroupingSets(list) => list
                .iter()
                .map(|g| {
                    g.iter()
                        .flat_map(|e| match e {
                            A::Tuple(v) => v.iter().map(|x| index_of(x, &mut flat_ast)).collect(),
                            A::Nested(x) => vec![index_of(x, &mut flat_ast)],
                            other => vec![index_of(other, &mut flat_ast)],
                        })
                        .collect()
                })
                .collect(),
            A::Tuple(v) if v.is_empty() => vec![Vec::new()],
            other => vec![vec![index_of(other, &mut flat_ast)]],
        };
        sets = cross(sets, item_sets);
    }
    let mut ns = s.clone();
    let mut calls = Vec::new();
    for p in ns.projection.iter_mut() {
        match p {
            ast::SelectItem::UnnamedExpr(e) => {
                if matches!(e, A::Function(f) if func_name(f) == "grouping") {
                    let alias = ast::Ident::new("grouping");
                    let mut x = e.clone();
                    rewrite_calls(&mut x, &flat, &mut calls)?;
                    *p = ast::SelectItem::ExprWithAlias { expr: x, alias };
                } else {
                    rewrite_calls(e, &flat, &mut calls)?;
                }
            }
            ast::SelectItem::ExprWithAlias { expr, .. } => rewrite_calls(expr, &flat, &mut calls)?,
            _ => {}
        }
    }
    if let Some(h) = ns.having.as_mut() {
        rewrite_calls(h, &flat, &mut calls)?;
    }
    let nflat = flat_ast.len();
    let mut group = flat_ast;
    for k in 0..calls.len() {
        group.push(A::CompoundIdentifier(vec![
            ast::Ident::with_quote('"', GROUPING_QUAL),
            ast::Ident::with_quote('"', format!("g{k}")),
        ]));
    }
    ns.group_by = ast::GroupByExpr::Expressions(group, mods.clone());
    Ok(Some((ns, GroupingPlan { sets, nflat, calls })))
}
