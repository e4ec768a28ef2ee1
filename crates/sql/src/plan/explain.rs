//! EXPLAIN: a [`PhysicalPlan`] in PostgreSQL's text format — one line per row of the
//! `QUERY PLAN` column, children as `->  Node` indented the way PostgreSQL indents them, node
//! properties (`Filter:`, `Index Cond:`, `Hash Cond:`, `Merge Cond:`, `Join Filter:`,
//! `Group Key:`, `Sort Key:`) below their node, `(cost=a..b rows=n width=w)` unless
//! `COSTS OFF`, and `(actual rows=n loops=m)` with ANALYZE (pgxc keeps no timings: no wall clock
//! in the executor).

use super::executor::Operator;
use super::{AggPhase, AggStrategy, JoinType, PhysicalPlan, SortSpec};
use crate::expr::{Expr, Func};
use crate::types::{DataType, Value};

/// EXPLAIN options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExplainOptions {
    /// Print `(cost=...)`.
    pub costs: bool,
    /// Print `Output:` lines.
    pub verbose: bool,
    /// Print `(actual rows=... loops=...)` (the plan was run).
    pub analyze: bool,
}

/// The lines of EXPLAIN for `plan`; `actual` is the operator tree that ran it (ANALYZE).
pub fn explain(
    plan: &PhysicalPlan,
    opts: ExplainOptions,
    actual: Option<&dyn Operator>,
) -> Vec<String> {
    let qualify = count_scans(plan) > 1;
    let mut out = Vec::new();
    let cx = Cx { opts, qualify };
    node(plan, actual, 0, cx, &[], &mut Vec::new(), &mut out);
    out
}

fn count_scans(p: &PhysicalPlan) -> usize {
    match p {
        PhysicalPlan::SeqScan { .. }
        | PhysicalPlan::IndexScan { .. }
        | PhysicalPlan::RowsetScan { .. } => 1,
        other => other.children().into_iter().map(count_scans).sum(),
    }
}

/// Output column names of a node (for expressions of its parent).
pub fn out_names(p: &PhysicalPlan, qualify: bool) -> Vec<String> {
    match p {
        PhysicalPlan::SeqScan {
            alias,
            columns,
            projection,
            ..
        } => {
            let all: Vec<String> = columns
                .iter()
                .map(|c| {
                    if qualify {
                        format!("{alias}.{}", c.name)
                    } else {
                        c.name.clone()
                    }
                })
                .collect();
            match projection {
                None => all,
                Some(ps) => ps
                    .iter()
                    .map(|&i| all.get(i).cloned().unwrap_or_default())
                    .collect(),
            }
        }
        PhysicalPlan::IndexScan { alias, columns, .. }
        | PhysicalPlan::RowsetScan { alias, columns, .. } => columns
            .iter()
            .map(|c| {
                if qualify {
                    format!("{alias}.{}", c.name)
                } else {
                    c.name.clone()
                }
            })
            .collect(),
        PhysicalPlan::Filter { input, .. }
        | PhysicalPlan::Sort { input, .. }
        | PhysicalPlan::TopN { input, .. }
        | PhysicalPlan::Limit { input, .. }
        | PhysicalPlan::Distinct { input, .. } => out_names(input, qualify),
        PhysicalPlan::Project { input, exprs, .. } => {
            let inner = out_names(input, qualify);
            exprs.iter().map(|e| deparse(e, &inner)).collect()
        }
        PhysicalPlan::NestedLoop {
            outer, inner, join, ..
        }
        | PhysicalPlan::HashJoin {
            outer, inner, join, ..
        }
        | PhysicalPlan::MergeJoin {
            outer, inner, join, ..
        } => {
            let mut v = out_names(outer, qualify);
            if !matches!(join, JoinType::Semi | JoinType::Anti) {
                v.extend(out_names(inner, qualify));
            }
            v
        }
        PhysicalPlan::Aggregate {
            input, group, aggs, ..
        } => {
            let inner = out_names(input, qualify);
            let mut v: Vec<String> = group.iter().map(|g| deparse(g, &inner)).collect();
            for a in aggs {
                let args: Vec<String> = if a.kind == super::AggKind::CountStar {
                    vec!["*".into()]
                } else {
                    a.args.iter().map(|x| deparse(x, &inner)).collect()
                };
                v.push(format!(
                    "{}({}{})",
                    a.kind.name(),
                    if a.distinct { "DISTINCT " } else { "" },
                    args.join(", ")
                ));
            }
            v
        }
        PhysicalPlan::Values { width, .. } => (1..=*width).map(|i| format!("column{i}")).collect(),
        PhysicalPlan::Append { inputs, .. } => inputs
            .first()
            .map(|i| out_names(i, qualify))
            .unwrap_or_default(),
    }
}

fn literal(v: &Value, t: &DataType) -> String {
    match v {
        Value::Null => format!("NULL::{}", t.name()),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
            v.to_text(t, &crate::types::TimeZone::default())
        }
        Value::Bool(b) => b.to_string(),
        Value::Numeric(_) => v.to_text(t, &crate::types::TimeZone::default()),
        other => format!(
            "'{}'::{}",
            other
                .to_text(t, &crate::types::TimeZone::default())
                .replace('\'', "''"),
            t.name()
        ),
    }
}

/// An expression as PostgreSQL's EXPLAIN prints it (`(a = 5)`, `(t.x = u.x)`), with input
/// columns named by `names`.
pub fn deparse(e: &Expr, names: &[String]) -> String {
    let d = |x: &Expr| deparse(x, names);
    match e {
        Expr::Const(v, t) => literal(v, t),
        Expr::Column(i, _) => names.get(*i).cloned().unwrap_or_else(|| format!("${i}")),
        Expr::Cast(x, t, _) => format!("({})::{}", d(x), t.name()),
        Expr::Binary(op, a, b, _) => format!("({} {} {})", d(a), op.symbol(), d(b)),
        Expr::Neg(x, _) => format!("(- {})", d(x)),
        Expr::Not(x) => format!("(NOT {})", d(x)),
        Expr::And(v) => format!("({})", v.iter().map(d).collect::<Vec<_>>().join(" AND ")),
        Expr::Or(v) => format!("({})", v.iter().map(d).collect::<Vec<_>>().join(" OR ")),
        Expr::IsNull(x, neg) => format!("({} IS {}NULL)", d(x), if *neg { "NOT " } else { "" }),
        Expr::IsDistinct(a, b, neg) => format!(
            "({} IS {}DISTINCT FROM {})",
            d(a),
            if *neg { "NOT " } else { "" },
            d(b)
        ),
        Expr::IsBool(x, v, neg) => format!(
            "({} IS {}{})",
            d(x),
            if *neg { "NOT " } else { "" },
            if *v { "TRUE" } else { "FALSE" }
        ),
        Expr::InList(x, items, neg) => format!(
            "({} {} (ARRAY[{}]))",
            d(x),
            if *neg { "<> ALL" } else { "= ANY" },
            items
                .iter()
                .map(|i| match i {
                    Expr::Binary(_, _, v, _) => d(v),
                    other => d(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Like(x, p, neg, ci) => format!(
            "({} {} {})",
            d(x),
            match (neg, ci) {
                (false, false) => "~~",
                (true, false) => "!~~",
                (false, true) => "~~*",
                (true, true) => "!~~*",
            },
            d(p)
        ),
        Expr::Func(f, args, _) => format!(
            "{}({})",
            func_name(*f),
            args.iter().map(d).collect::<Vec<_>>().join(", ")
        ),
        Expr::Coalesce(v, _) => format!(
            "COALESCE({})",
            v.iter().map(d).collect::<Vec<_>>().join(", ")
        ),
        Expr::NullIf(a, b, _) => format!("NULLIF({}, {})", d(a), d(b)),
        Expr::MinMax(v, greatest, _) => format!(
            "{}({})",
            if *greatest { "GREATEST" } else { "LEAST" },
            v.iter().map(d).collect::<Vec<_>>().join(", ")
        ),
        Expr::Case(arms, els, _) => {
            let mut s = "CASE".to_string();
            for (c, r) in arms {
                s.push_str(&format!(" WHEN {} THEN {}", d(c), d(r)));
            }
            if let Some(e) = els {
                s.push_str(&format!(" ELSE {}", d(e)));
            }
            s.push_str(" END");
            s
        }
        Expr::Array(v, _) => format!("ARRAY[{}]", v.iter().map(d).collect::<Vec<_>>().join(", ")),
        Expr::Subscript(a, i, _) => format!("({})[{}]", d(a), d(i)),
        Expr::Quantified(op, a, b, any) => format!(
            "({} {} {}({}))",
            d(a),
            op.symbol(),
            if *any { "ANY" } else { "ALL" },
            d(b)
        ),
    }
}

fn func_name(f: Func) -> String {
    let dbg = format!("{f:?}");
    let mut out = String::new();
    for (i, ch) in dbg.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out.trim_end_matches("_fn").to_string()
}

fn join_name(j: JoinType) -> &'static str {
    match j {
        JoinType::Inner => "",
        JoinType::Left => " Left Join",
        JoinType::Right => " Right Join",
        JoinType::Full => " Full Join",
        JoinType::Semi => " Semi Join",
        JoinType::Anti => " Anti Join",
    }
}

/// `Hash Join`, `Hash Left Join`, `Merge Full Join`, ...
fn join_label(method: &str, j: JoinType) -> String {
    match j {
        JoinType::Inner => format!("{method} Join"),
        other => format!("{method}{}", join_name(other)),
    }
}

fn sort_keys(keys: &[SortSpec], names: &[String]) -> String {
    keys.iter()
        .map(|k| {
            let mut s = names
                .get(k.col)
                .cloned()
                .unwrap_or_else(|| format!("${}", k.col));
            if k.desc {
                s.push_str(" DESC");
                if !k.nulls_first {
                    s.push_str(" NULLS LAST");
                }
            } else if k.nulls_first {
                s.push_str(" NULLS FIRST");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn header(
    name: &str,
    p: &PhysicalPlan,
    actual: Option<(u64, u64)>,
    opts: ExplainOptions,
) -> String {
    let mut s = name.to_string();
    if opts.costs {
        let e = p.est();
        s.push_str(&format!(
            "  (cost={:.2}..{:.2} rows={:.0} width={})",
            e.startup.min(9.9e12),
            e.total.min(9.9e12),
            e.rows,
            e.width
        ));
    }
    if let Some((rows, loops)) = actual {
        let per = rows.checked_div(loops).unwrap_or(0);
        s.push_str(&format!(" (actual rows={per} loops={loops})"));
    }
    s
}

/// What every node of one EXPLAIN needs.
#[derive(Clone, Copy)]
struct Cx {
    opts: ExplainOptions,
    qualify: bool,
}

/// Print one node. `params` names the parameter row (the outer row of a parameterised nested
/// loop); `extra` are property lines a transparent parent (Filter) hands down.
fn node(
    p: &PhysicalPlan,
    op: Option<&dyn Operator>,
    depth: usize,
    cx: Cx,
    params: &[String],
    extra: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    let Cx { opts, qualify } = cx;
    let kids_ops: Vec<&dyn Operator> = op.map(|o| o.children()).unwrap_or_default();
    let kid = |i: usize| kids_ops.get(i).copied();
    // Transparent nodes: Filter hands its predicate to its child; Project is invisible.
    match p {
        PhysicalPlan::Filter {
            input, predicate, ..
        } => {
            let names = out_names(input, qualify);
            extra.push(format!("Filter: {}", deparse(predicate, &names)));
            node(input, kid(0), depth, cx, params, extra, out);
            return;
        }
        PhysicalPlan::Project { input, .. } => {
            node(input, kid(0), depth, cx, params, extra, out);
            return;
        }
        _ => {}
    }
    let actual = if opts.analyze {
        op.map(|o| o.actual())
    } else {
        None
    };
    let (name, mut props): (String, Vec<String>) = match p {
        PhysicalPlan::SeqScan {
            table,
            alias,
            filter,
            columns: _,
            ..
        } => {
            let mut props = Vec::new();
            if let Some(f) = filter {
                props.push(format!("Filter: {}", deparse(f, &out_names(p, qualify))));
            }
            (
                format!(
                    "Seq Scan on {table}{}",
                    if alias != table {
                        format!(" {alias}")
                    } else {
                        String::new()
                    }
                ),
                props,
            )
        }
        PhysicalPlan::IndexScan {
            index_name,
            table,
            alias,
            index_cond,
            filter,
            params: nparams,
            backward,
            ..
        } => {
            let mut props = Vec::new();
            let own = out_names(p, qualify);
            // Index conditions read `param ‖ table row`; param names come from the outer side,
            // which the caller put into `extra` context as `params` placeholders.
            let mut names: Vec<String> = (0..*nparams)
                .map(|i| params.get(i).cloned().unwrap_or_else(|| format!("${i}")))
                .collect();
            names.extend(own.iter().cloned());
            if !index_cond.is_empty() {
                let conds: Vec<String> = index_cond.iter().map(|c| deparse(c, &names)).collect();
                props.push(format!(
                    "Index Cond: {}",
                    if conds.len() == 1 {
                        conds[0].clone()
                    } else {
                        format!("({})", conds.join(" AND "))
                    }
                ));
            }
            if let Some(f) = filter {
                let mut cs = Vec::new();
                super::planner::conjuncts(f.clone(), &mut cs);
                let rest: Vec<Expr> = cs
                    .into_iter()
                    .filter(|c| *nparams > 0 || !index_cond.contains(c))
                    .collect();
                if let Some(r) = super::planner::and_of(rest) {
                    props.push(format!("Filter: {}", deparse(&r, &own)));
                }
            }
            (
                format!(
                    "Index Scan{} using {index_name} on {table}{}",
                    if *backward { " Backward" } else { "" },
                    if alias != table {
                        format!(" {alias}")
                    } else {
                        String::new()
                    }
                ),
                props,
            )
        }
        PhysicalPlan::NestedLoop {
            join,
            cond,
            param,
            outer,
            inner,
            ..
        } => {
            let mut props = Vec::new();
            let mut names = out_names(outer, qualify);
            names.extend(out_names(inner, qualify));
            if let Some(c) = cond {
                if !*param {
                    props.push(format!("Join Filter: {}", deparse(c, &names)));
                }
            }
            (format!("Nested Loop{}", join_name(*join)), props)
        }
        PhysicalPlan::HashJoin {
            join,
            outer,
            inner,
            outer_keys,
            inner_keys,
            residual,
            ..
        } => {
            let on = out_names(outer, qualify);
            let inn = out_names(inner, qualify);
            let conds: Vec<String> = outer_keys
                .iter()
                .zip(inner_keys)
                .map(|(a, b)| format!("({} = {})", deparse(a, &on), deparse(b, &inn)))
                .collect();
            let mut props = vec![format!(
                "Hash Cond: {}",
                if conds.len() == 1 {
                    conds[0].clone()
                } else {
                    format!("({})", conds.join(" AND "))
                }
            )];
            if let Some(r) = residual {
                let mut names = on.clone();
                names.extend(inn);
                props.push(format!("Join Filter: {}", deparse(r, &names)));
            }
            (join_label("Hash", *join), props)
        }
        PhysicalPlan::MergeJoin {
            join,
            outer,
            inner,
            outer_keys,
            inner_keys,
            residual,
            ..
        } => {
            let on = out_names(outer, qualify);
            let inn = out_names(inner, qualify);
            let conds: Vec<String> = outer_keys
                .iter()
                .zip(inner_keys)
                .map(|(a, b)| {
                    format!(
                        "({} = {})",
                        on.get(*a).cloned().unwrap_or_default(),
                        inn.get(*b).cloned().unwrap_or_default()
                    )
                })
                .collect();
            let mut props = vec![format!(
                "Merge Cond: {}",
                if conds.len() == 1 {
                    conds[0].clone()
                } else {
                    format!("({})", conds.join(" AND "))
                }
            )];
            if let Some(r) = residual {
                let mut names = on.clone();
                names.extend(inn);
                props.push(format!("Join Filter: {}", deparse(r, &names)));
            }
            (join_label("Merge", *join), props)
        }
        PhysicalPlan::Aggregate {
            input,
            strategy,
            phase,
            group,
            ..
        } => {
            let base = match strategy {
                AggStrategy::Plain => "Aggregate",
                AggStrategy::Hashed => "HashAggregate",
                AggStrategy::Sorted => "GroupAggregate",
            };
            let prefix = match phase {
                AggPhase::Single => "",
                AggPhase::Partial => "Partial ",
                AggPhase::Final => "Finalize ",
            };
            let mut props = Vec::new();
            if !group.is_empty() {
                let names = out_names(input, qualify);
                props.push(format!(
                    "Group Key: {}",
                    group
                        .iter()
                        .map(|g| deparse(g, &names))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            (format!("{prefix}{base}"), props)
        }
        PhysicalPlan::Sort { input, keys, .. } => {
            let names = out_names(input, qualify);
            (
                "Sort".to_string(),
                vec![format!("Sort Key: {}", sort_keys(keys, &names))],
            )
        }
        PhysicalPlan::TopN { .. } => ("Limit".to_string(), Vec::new()),
        PhysicalPlan::Limit { .. } => ("Limit".to_string(), Vec::new()),
        PhysicalPlan::Distinct { input, width, .. } => {
            let names = out_names(input, qualify);
            (
                "HashAggregate".to_string(),
                vec![format!(
                    "Group Key: {}",
                    names
                        .iter()
                        .take(*width)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )],
            )
        }
        PhysicalPlan::Values { rows, .. } => {
            if rows.len() == 1 && rows[0].is_empty() {
                ("Result".to_string(), Vec::new())
            } else {
                ("Values Scan on \"*VALUES*\"".to_string(), Vec::new())
            }
        }
        PhysicalPlan::RowsetScan { name, alias, .. } => (
            format!(
                "Named Tuplestore Scan on {name}{}",
                if alias != name {
                    format!(" {alias}")
                } else {
                    String::new()
                }
            ),
            Vec::new(),
        ),
        PhysicalPlan::Append { .. } => ("Append".to_string(), Vec::new()),
        PhysicalPlan::Filter { .. } | PhysicalPlan::Project { .. } => (String::new(), Vec::new()),
    };
    props.append(extra);
    // One Filter line per node, as PostgreSQL prints it.
    let filters: Vec<String> = props
        .iter()
        .filter_map(|p| p.strip_prefix("Filter: ").map(str::to_string))
        .collect();
    if filters.len() > 1 {
        props.retain(|p| !p.starts_with("Filter: "));
        props.push(format!("Filter: ({})", filters.join(" AND ")));
    }
    if opts.verbose {
        props.insert(0, format!("Output: {}", out_names(p, qualify).join(", ")));
    }
    let (line_indent, prop_indent) = if depth == 0 {
        (String::new(), "  ".to_string())
    } else {
        (
            format!("{}->  ", " ".repeat(6 * depth - 4)),
            " ".repeat(6 * depth + 2),
        )
    };
    out.push(format!("{line_indent}{}", header(&name, p, actual, opts)));
    for pr in props {
        out.push(format!("{prop_indent}{pr}"));
    }
    match p {
        PhysicalPlan::TopN { input, keys, .. } => {
            // PostgreSQL shows a bounded sort as Limit over Sort.
            let names = out_names(input, qualify);
            let ind = format!("{}->  ", " ".repeat(6 * (depth + 1) - 4));
            let pind = " ".repeat(6 * (depth + 1) + 2);
            out.push(format!("{ind}{}", header("Sort", p, actual, opts)));
            out.push(format!("{pind}Sort Key: {}", sort_keys(keys, &names)));
            if opts.analyze {
                out.push(format!("{pind}Sort Method: top-N heapsort"));
            }
            node(input, kid(0), depth + 2, cx, &[], &mut Vec::new(), out);
        }
        PhysicalPlan::HashJoin { outer, inner, .. } => {
            node(outer, kid(0), depth + 1, cx, &[], &mut Vec::new(), out);
            let ind = format!("{}->  ", " ".repeat(6 * (depth + 1) - 4));
            out.push(format!("{ind}{}", header("Hash", inner, None, opts)));
            node(inner, kid(1), depth + 2, cx, &[], &mut Vec::new(), out);
        }
        PhysicalPlan::NestedLoop {
            outer,
            inner,
            param: true,
            ..
        } => {
            node(outer, kid(0), depth + 1, cx, &[], &mut Vec::new(), out);
            let names = out_names(outer, qualify);
            node(inner, kid(1), depth + 1, cx, &names, &mut Vec::new(), out);
        }
        _ => {
            for (i, c) in p.children().into_iter().enumerate() {
                node(c, kid(i), depth + 1, cx, &[], &mut Vec::new(), out);
            }
        }
    }
}
