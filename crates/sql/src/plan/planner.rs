//! The planner: a bound SELECT ([`LogicalSelect`]) to a [`PhysicalPlan`].
//!
//! - WHERE and inner-join ON conjuncts are pushed down to the lowest subtree that has all their
//!   columns (never into the nullable side of an outer join; ON conjuncts of a LEFT/RIGHT join
//!   that read only its nullable side filter that side before the join).
//! - Access path per base relation: an index scan when a conjunct is `col = const`,
//!   `col IN (consts)` or a range (`<`, `<=`, `>`, `>=`, BETWEEN) on the leading column(s) of an
//!   index (PRIMARY KEY included) and it is cheaper than a sequential scan; index conditions are
//!   rechecked, so bounds only narrow the scan.
//! - Join order as written; per join the cheapest of: nested loop with an index lookup into
//!   the inner base relation, hash join (equi-joins), merge join (equi-joins; both sides sorted),
//!   plain nested loop. Costs follow PostgreSQL's cost units; a method switched off by its
//!   `enable_*` setting costs 1e10 more (PostgreSQL's `disable_cost`), so it is used only when
//!   nothing else can run.
//! - GROUP BY: hash aggregation, or sort + group aggregation (`enable_hashagg = off`);
//!   ORDER BY + LIMIT: top-N; ORDER BY satisfied by an index scan needs no sort.
//!
//! Output order of joins and hash aggregation equals the interpreter's (outer order, matches in
//! inner order; groups in first-seen order), so results without ORDER BY do not change when a
//! query moves from the interpreter to the planner.

use super::{
    AggCall, AggPhase, AggStrategy, Estimate, IndexQual, JoinType, PhysicalPlan, PlanOptions,
    ScanColumn, SortSpec,
};
use crate::expr::{BinOp, Expr, Func};
use crate::types::DataType;

const SEQ_PAGE_COST: f64 = 1.0;
const RANDOM_PAGE_COST: f64 = 4.0;
const CPU_TUPLE_COST: f64 = 0.01;
const CPU_INDEX_TUPLE_COST: f64 = 0.005;
const CPU_OPERATOR_COST: f64 = 0.0025;
const DISABLE_COST: f64 = 1.0e10;

/// An index of a base relation, as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexInfo {
    /// Storage relation id of the index.
    pub id: u64,
    /// Index name.
    pub name: String,
    /// Table columns of the key, in order.
    pub columns: Vec<usize>,
    /// UNIQUE / PRIMARY KEY.
    pub unique: bool,
}

/// A base relation of the FROM clause.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseRel {
    /// Storage relation id.
    pub rel: u64,
    /// Table name.
    pub table: String,
    /// Alias (the table name when none).
    pub alias: String,
    /// Columns.
    pub columns: Vec<ScanColumn>,
    /// Indexes.
    pub indexes: Vec<IndexInfo>,
    /// Estimated tuples.
    pub tuples: f64,
    /// A derived table or view: the plan producing its rows (then `rel` and `indexes` are
    /// unused).
    pub source: Option<Box<PhysicalPlan>>,
}

/// The FROM clause as a join tree. A subtree's columns are a contiguous range of the full row
/// (every base relation's columns in FROM order).
#[derive(Clone, Debug, PartialEq)]
pub enum JoinTree {
    /// `rels[i]`.
    Rel(usize),
    /// A join; `cond` are ON conjuncts over the full row.
    Join {
        /// Left input.
        left: Box<JoinTree>,
        /// Right input.
        right: Box<JoinTree>,
        /// Inner, Left, Right or Full.
        kind: JoinType,
        /// ON conjuncts (USING / NATURAL equalities included), over the full row.
        cond: Vec<Expr>,
    },
}

/// GROUP BY and aggregates, over the full row. The aggregate's output row is
/// `group values ‖ aggregate results`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogicalAgg {
    /// Group key expressions.
    pub group: Vec<Expr>,
    /// Aggregate calls.
    pub aggs: Vec<AggCall>,
}

/// A bound SELECT the planner can take.
#[derive(Clone, Debug, PartialEq)]
pub struct LogicalSelect {
    /// Base relations in FROM order.
    pub rels: Vec<BaseRel>,
    /// The FROM clause (`None`: no FROM, one empty input row).
    pub tree: Option<JoinTree>,
    /// WHERE conjuncts over the full row.
    pub filter: Vec<Expr>,
    /// GROUP BY / aggregates.
    pub agg: Option<LogicalAgg>,
    /// HAVING over the aggregate's output row.
    pub having: Option<Expr>,
    /// Output expressions over the aggregate's output row (or the full row), followed by hidden
    /// ORDER BY expressions.
    pub project: Vec<Expr>,
    /// Names of the visible outputs.
    pub names: Vec<String>,
    /// Visible width (the rest of `project` is hidden sort keys).
    pub width: usize,
    /// SELECT DISTINCT (over the visible outputs).
    pub distinct: bool,
    /// ORDER BY over the projected row.
    pub order: Vec<SortSpec>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET.
    pub offset: u64,
}

// ---- expression helpers ----

/// The direct sub-expressions of `e`.
pub fn sub_exprs(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Const(..) | Expr::Column(..) => Vec::new(),
        Expr::Cast(a, ..) | Expr::Neg(a, _) | Expr::Not(a) | Expr::IsNull(a, _) => vec![a],
        Expr::IsBool(a, ..) => vec![a],
        Expr::Binary(_, a, b, _)
        | Expr::IsDistinct(a, b, _)
        | Expr::NullIf(a, b, _)
        | Expr::Like(a, b, ..)
        | Expr::Subscript(a, b, _)
        | Expr::Quantified(_, a, b, _) => vec![a, b],
        Expr::And(v)
        | Expr::Or(v)
        | Expr::Coalesce(v, _)
        | Expr::MinMax(v, ..)
        | Expr::Func(_, v, _)
        | Expr::Array(v, _) => v.iter().collect(),
        Expr::Case(arms, els, _) => {
            let mut out: Vec<&Expr> = Vec::new();
            for (c, r) in arms {
                out.push(c);
                out.push(r);
            }
            if let Some(e) = els {
                out.push(e);
            }
            out
        }
        Expr::InList(a, v, _) => {
            let mut out: Vec<&Expr> = vec![a];
            out.extend(v.iter());
            out
        }
    }
}

/// Mutable direct sub-expressions of `e`.
fn sub_exprs_mut(e: &mut Expr) -> Vec<&mut Expr> {
    match e {
        Expr::Const(..) | Expr::Column(..) => Vec::new(),
        Expr::Cast(a, ..) | Expr::Neg(a, _) | Expr::Not(a) | Expr::IsNull(a, _) => vec![a],
        Expr::IsBool(a, ..) => vec![a],
        Expr::Binary(_, a, b, _)
        | Expr::IsDistinct(a, b, _)
        | Expr::NullIf(a, b, _)
        | Expr::Like(a, b, ..)
        | Expr::Subscript(a, b, _)
        | Expr::Quantified(_, a, b, _) => vec![a, b],
        Expr::And(v)
        | Expr::Or(v)
        | Expr::Coalesce(v, _)
        | Expr::MinMax(v, ..)
        | Expr::Func(_, v, _)
        | Expr::Array(v, _) => v.iter_mut().collect(),
        Expr::Case(arms, els, _) => {
            let mut out: Vec<&mut Expr> = Vec::new();
            for (c, r) in arms.iter_mut() {
                out.push(c);
                out.push(r);
            }
            if let Some(e) = els {
                out.push(e);
            }
            out
        }
        Expr::InList(a, v, _) => {
            let mut out: Vec<&mut Expr> = vec![a];
            out.extend(v.iter_mut());
            out
        }
    }
}

/// Column positions `e` reads.
pub fn columns_of(e: &Expr, out: &mut Vec<usize>) {
    if let Expr::Column(i, _) = e {
        out.push(*i);
    }
    for s in sub_exprs(e) {
        columns_of(s, out);
    }
}

/// `e` with every column position mapped by `f`.
pub fn map_columns(e: &Expr, f: &dyn Fn(usize) -> usize) -> Expr {
    let mut e = e.clone();
    fn go(e: &mut Expr, f: &dyn Fn(usize) -> usize) {
        if let Expr::Column(i, _) = e {
            *i = f(*i);
        }
        for s in sub_exprs_mut(e) {
            go(s, f);
        }
    }
    go(&mut e, f);
    e
}

/// Whether `e` calls a volatile function (nextval/setval/currval): such conjuncts stay where
/// they were written.
pub fn is_volatile(e: &Expr) -> bool {
    if let Expr::Func(f, ..) = e {
        if matches!(f, Func::NextVal | Func::SetVal | Func::CurrVal) {
            return true;
        }
    }
    sub_exprs(e).into_iter().any(is_volatile)
}

/// Split `AND` trees into conjuncts.
pub fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(v) => {
            for x in v {
                conjuncts(x, out);
            }
        }
        other => out.push(other),
    }
}

/// The AND of conjuncts (`None` when empty).
pub fn and_of(mut v: Vec<Expr>) -> Option<Expr> {
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(Expr::And(v)),
    }
}

fn cols_in(e: &Expr) -> Vec<usize> {
    let mut v = Vec::new();
    columns_of(e, &mut v);
    v
}

/// Whether index key order (the order-preserving key encoding) equals SQL comparison order
/// for values of this type, so range bounds and ORDER BY can use an index.
pub fn order_indexable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Bool
            | DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Float4
            | DataType::Float8
            | DataType::Text
            | DataType::Varchar(_)
            | DataType::Bytea
            | DataType::Date
            | DataType::Time
            | DataType::Timestamp
            | DataType::Timestamptz
            | DataType::Uuid
    )
}

/// Whether equal values under `=` have equal key encodings for this type (index equality
/// lookups and hash keys).
pub fn eq_indexable(t: &DataType) -> bool {
    order_indexable(t) || matches!(t, DataType::Numeric(_) | DataType::Interval)
}

fn int_family(t: &DataType) -> bool {
    matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8)
}

fn same_key_type(col: &DataType, v: &DataType) -> bool {
    if int_family(col) && int_family(v) {
        return true;
    }
    match (col, v) {
        (DataType::Varchar(_), DataType::Text) | (DataType::Text, DataType::Varchar(_)) => true,
        (DataType::Varchar(_), DataType::Varchar(_)) => true,
        (DataType::Numeric(_), DataType::Numeric(_)) => true,
        _ => col == v,
    }
}

fn width_of(t: &DataType) -> u32 {
    match t {
        DataType::Bool => 1,
        DataType::Int2 => 2,
        DataType::Int4 | DataType::Float4 | DataType::Date => 4,
        DataType::Int8
        | DataType::Float8
        | DataType::Time
        | DataType::Timestamp
        | DataType::Timestamptz => 8,
        DataType::Interval | DataType::Uuid => 16,
        _ => 32,
    }
}

fn columns_width(cols: &[ScanColumn]) -> u32 {
    cols.iter().map(|c| width_of(&c.ty)).sum()
}

// ---- access paths ----

/// One predicate usable as an index bound: column, operator (`Eq`, `Lt`, ...) or IN list.
#[derive(Clone, Debug)]
enum Bound1 {
    Cmp(BinOp, Expr),
    In(Vec<Expr>),
}

/// The column and bound a conjunct gives, when it has the shape `col op value` (value reading
/// only columns `param_ok` accepts, i.e. none for a plain scan or outer columns for a
/// parameterised one).
fn index_bound(
    e: &Expr,
    table_col: &dyn Fn(usize) -> Option<usize>,
    value_ok: &dyn Fn(&Expr) -> bool,
) -> Option<(usize, DataType, Bound1)> {
    match e {
        Expr::Binary(op, a, b, _) if op.is_comparison() && *op != BinOp::Ne => {
            let flip = |op: BinOp| match op {
                BinOp::Lt => BinOp::Gt,
                BinOp::Le => BinOp::Ge,
                BinOp::Gt => BinOp::Lt,
                BinOp::Ge => BinOp::Le,
                o => o,
            };
            let (col, val, op) = match (a.as_ref(), b.as_ref()) {
                (Expr::Column(i, _), v) if table_col(*i).is_some() && value_ok(v) => (a, v, *op),
                (v, Expr::Column(i, _)) if table_col(*i).is_some() && value_ok(v) => {
                    (b, v, flip(*op))
                }
                _ => return None,
            };
            let Expr::Column(i, ty) = col.as_ref() else {
                return None;
            };
            let c = table_col(*i)?;
            if !same_key_type(ty, &val.data_type()) {
                return None;
            }
            let ok = if op == BinOp::Eq {
                eq_indexable(ty)
            } else {
                order_indexable(ty)
            };
            ok.then(|| (c, ty.clone(), Bound1::Cmp(op, val.clone())))
        }
        Expr::InList(a, items, false) => {
            let Expr::Column(i, ty) = a.as_ref() else {
                return None;
            };
            let c = table_col(*i)?;
            // Items are the comparisons `x = item`.
            let mut vals = Vec::new();
            for it in items {
                match it {
                    Expr::Binary(BinOp::Eq, l, v, _)
                        if l.as_ref() == a.as_ref()
                            && value_ok(v)
                            && same_key_type(ty, &v.data_type()) =>
                    {
                        vals.push((**v).clone())
                    }
                    _ => return None,
                }
            }
            if !eq_indexable(ty) || vals.is_empty() {
                return None;
            }
            Some((c, ty.clone(), Bound1::In(vals)))
        }
        _ => None,
    }
}

/// An index path: the qual, which conjuncts it uses, selectivity, and the key columns bound by
/// equality.
#[derive(Clone, Debug)]
struct IndexPath {
    index: usize,
    qual: IndexQual,
    used: Vec<usize>,
    sel: f64,
    eq_cols: usize,
    unique_hit: bool,
}

/// The best qual each index gets from `conds` (bounds on table columns).
fn index_paths(
    rel: &BaseRel,
    conds: &[Expr],
    table_col: &dyn Fn(usize) -> Option<usize>,
    value_ok: &dyn Fn(&Expr) -> bool,
) -> Vec<IndexPath> {
    let bounds: Vec<Option<(usize, DataType, Bound1)>> = conds
        .iter()
        .map(|c| index_bound(c, table_col, value_ok))
        .collect();
    let mut out = Vec::new();
    for (ii, idx) in rel.indexes.iter().enumerate() {
        let mut qual = IndexQual::default();
        let mut used = Vec::new();
        let mut sel = 1.0;
        let mut eq_cols = 0;
        for &col in &idx.columns {
            // Equality first.
            let eq = bounds
                .iter()
                .enumerate()
                .find(|(_, b)| matches!(b, Some((c, _, Bound1::Cmp(BinOp::Eq, _))) if *c == col));
            if let Some((k, Some((_, _, Bound1::Cmp(_, v))))) = eq {
                qual.eq.push(v.clone());
                used.push(k);
                sel *= 0.005;
                eq_cols += 1;
                continue;
            }
            let inl = bounds
                .iter()
                .enumerate()
                .find(|(_, b)| matches!(b, Some((c, _, Bound1::In(_))) if *c == col));
            if let Some((k, Some((_, _, Bound1::In(items))))) = inl {
                sel *= (0.005 * items.len() as f64).min(1.0);
                qual.in_list = Some(items.clone());
                used.push(k);
                break;
            }
            for (k, b) in bounds.iter().enumerate() {
                if let Some((c, _, Bound1::Cmp(op, v))) = b {
                    if *c != col {
                        continue;
                    }
                    match op {
                        BinOp::Gt | BinOp::Ge if qual.lower.is_none() => {
                            qual.lower = Some((v.clone(), *op == BinOp::Ge));
                            used.push(k);
                        }
                        BinOp::Lt | BinOp::Le if qual.upper.is_none() => {
                            qual.upper = Some((v.clone(), *op == BinOp::Le));
                            used.push(k);
                        }
                        _ => {}
                    }
                }
            }
            match (qual.lower.is_some(), qual.upper.is_some()) {
                (true, true) => sel *= 0.005,
                (true, false) | (false, true) => sel *= 1.0 / 3.0,
                _ => {}
            }
            break;
        }
        if used.is_empty() {
            continue;
        }
        let unique_hit = idx.unique && eq_cols == idx.columns.len();
        // A unique single-key lookup per IN item.
        if idx.unique && eq_cols + 1 == idx.columns.len() {
            if let Some(items) = &qual.in_list {
                sel = items.len() as f64 / rel.tuples.max(1.0);
            }
        }
        out.push(IndexPath {
            index: ii,
            qual,
            used,
            sel,
            eq_cols,
            unique_hit,
        });
    }
    out
}

fn pages(tuples: f64, width: u32) -> f64 {
    (tuples * f64::from(width + 28) / 8192.0).ceil().max(1.0)
}

fn seq_cost(rel: &BaseRel, nquals: usize) -> f64 {
    let w = columns_width(&rel.columns);
    pages(rel.tuples, w) * SEQ_PAGE_COST
        + rel.tuples * (CPU_TUPLE_COST + CPU_OPERATOR_COST * nquals as f64)
}

/// Cost of one index scan fetching `rows` rows of `rel`.
fn index_cost(rel: &BaseRel, rows: f64, nquals: usize) -> (f64, f64) {
    let w = columns_width(&rel.columns);
    let startup = 0.29;
    let fetched_pages = rows.min(pages(rel.tuples, w)).max(1.0);
    let total = startup
        + rows * (CPU_INDEX_TUPLE_COST + CPU_TUPLE_COST + CPU_OPERATOR_COST * nquals as f64)
        + fetched_pages * RANDOM_PAGE_COST;
    (startup, total)
}

fn selectivity(e: &Expr) -> f64 {
    match e {
        Expr::Binary(BinOp::Eq, ..) => 0.005,
        Expr::Binary(op, ..) if op.is_comparison() => 1.0 / 3.0,
        Expr::InList(_, v, false) => (0.005 * v.len() as f64).min(1.0),
        Expr::IsNull(..) => 0.005,
        Expr::Const(crate::types::Value::Bool(true), _) => 1.0,
        Expr::Const(..) => 0.0,
        _ => 0.5,
    }
}

fn clamp_rows(r: f64) -> f64 {
    if r.is_finite() {
        r.max(1.0).round()
    } else {
        1.0
    }
}

/// The planner.
pub struct Planner<'o> {
    opts: &'o PlanOptions,
}

/// A planned subtree: plan, its first full-row column, and the ORDER BY it already satisfies.
struct Sub {
    plan: PhysicalPlan,
    start: usize,
    len: usize,
}

impl<'o> Planner<'o> {
    /// A planner with these settings.
    pub fn new(opts: &'o PlanOptions) -> Planner<'o> {
        Planner { opts }
    }

    fn offsets(q: &LogicalSelect) -> Vec<usize> {
        let mut v = Vec::with_capacity(q.rels.len());
        let mut at = 0;
        for r in &q.rels {
            v.push(at);
            at += r.columns.len();
        }
        v
    }

    /// Plan a SELECT. The output rows have `q.width` columns.
    pub fn plan(&self, q: &LogicalSelect) -> PhysicalPlan {
        let offs = Self::offsets(q);
        // ORDER BY a single table's index (no join, no aggregate): the wanted key columns.
        let mut want_order: Option<(Vec<usize>, bool)> = None;
        if q.agg.is_none()
            && q.rels.len() == 1
            && !q.order.is_empty()
            && matches!(q.tree, Some(JoinTree::Rel(0)))
        {
            let desc = q.order[0].desc;
            let mut cols = Vec::new();
            for k in &q.order {
                match q.project.get(k.col) {
                    Some(Expr::Column(c, ty))
                        if k.desc == desc && k.nulls_first == desc && order_indexable(ty) =>
                    {
                        cols.push(*c)
                    }
                    _ => {
                        cols.clear();
                        break;
                    }
                }
            }
            if !cols.is_empty() {
                want_order = Some((cols, desc));
            }
        }
        let mut top_filter = Vec::new();
        let mut pushed = Vec::new();
        for c in &q.filter {
            if cols_in(c).is_empty() || is_volatile(c) {
                top_filter.push(c.clone());
            } else {
                pushed.push(c.clone());
            }
        }
        let prefer_order = q.limit.is_some() || !self.opts.enable_sort;
        let (mut plan, ordered) = match &q.tree {
            None => (
                PhysicalPlan::Values {
                    rows: vec![Vec::new()],
                    width: 0,
                    est: Estimate {
                        startup: 0.0,
                        total: 0.01,
                        rows: 1.0,
                        width: 0,
                    },
                },
                false,
            ),
            Some(t) => {
                let mut ordered = false;
                let sub = self.plan_tree(
                    q,
                    &offs,
                    t,
                    pushed,
                    want_order.as_ref().filter(|_| prefer_order),
                    &mut ordered,
                );
                (sub.plan, ordered)
            }
        };
        if let Some(f) = and_of(top_filter) {
            plan = filter_node(plan, f);
        }
        let mut ordered = ordered;
        if let Some(agg) = &q.agg {
            plan = self.plan_agg(plan, agg);
            ordered = false;
        }
        if let Some(h) = &q.having {
            plan = filter_node(plan, h.clone());
        }
        let est = Estimate {
            width: q.project.iter().map(|e| width_of(&e.data_type())).sum(),
            ..*plan.est()
        };
        plan = PhysicalPlan::Project {
            input: Box::new(plan),
            exprs: q.project.clone(),
            names: q
                .names
                .iter()
                .cloned()
                .chain((q.width..q.project.len()).map(|i| format!("?sort{i}")))
                .collect(),
            est,
        };
        if q.distinct {
            let mut est = *plan.est();
            est.rows = clamp_rows(est.rows / 2.0);
            est.total += plan.est().rows * CPU_OPERATOR_COST * q.width as f64;
            plan = PhysicalPlan::Distinct {
                input: Box::new(plan),
                width: q.width,
                est,
            };
        }
        if !q.order.is_empty() && !ordered {
            let n = plan.est().rows.max(2.0);
            let sort_cost = 2.0 * CPU_OPERATOR_COST * n * n.log2();
            let mut est = *plan.est();
            est.startup = est.total + sort_cost;
            est.total = est.startup + n * CPU_OPERATOR_COST;
            if !self.opts.enable_sort {
                est.startup += DISABLE_COST;
                est.total += DISABLE_COST;
            }
            match q.limit {
                Some(l) if l.saturating_add(q.offset) < 1_000_000 => {
                    est.rows = (l as f64).min(est.rows);
                    plan = PhysicalPlan::TopN {
                        input: Box::new(plan),
                        keys: q.order.clone(),
                        limit: l,
                        offset: q.offset,
                        est,
                    };
                }
                _ => {
                    plan = PhysicalPlan::Sort {
                        input: Box::new(plan),
                        keys: q.order.clone(),
                        est,
                    };
                    if q.limit.is_some() || q.offset > 0 {
                        plan = limit_node(plan, q.limit, q.offset);
                    }
                }
            }
        } else if q.limit.is_some() || q.offset > 0 {
            plan = limit_node(plan, q.limit, q.offset);
        }
        if q.project.len() > q.width {
            let est = *plan.est();
            plan = PhysicalPlan::Project {
                input: Box::new(plan),
                exprs: (0..q.width)
                    .map(|i| Expr::Column(i, q.project[i].data_type()))
                    .collect(),
                names: q.names.clone(),
                est,
            };
        }
        plan
    }

    fn plan_agg(&self, input: PhysicalPlan, agg: &LogicalAgg) -> PhysicalPlan {
        let in_est = *input.est();
        let groups = if agg.group.is_empty() {
            1.0
        } else {
            clamp_rows((in_est.rows / 10.0).clamp(1.0, 200.0))
        };
        let width = agg
            .group
            .iter()
            .map(|g| width_of(&g.data_type()))
            .sum::<u32>()
            + agg.aggs.iter().map(|a| width_of(&a.ty)).sum::<u32>();
        let per_row = CPU_OPERATOR_COST * (agg.aggs.len() + agg.group.len()) as f64;
        if agg.group.is_empty() {
            let total = in_est.total + in_est.rows * per_row;
            return PhysicalPlan::Aggregate {
                input: Box::new(input),
                strategy: AggStrategy::Plain,
                phase: AggPhase::Single,
                group: Vec::new(),
                aggs: agg.aggs.clone(),
                est: Estimate {
                    startup: total,
                    total: total + 0.01,
                    rows: 1.0,
                    width,
                },
            };
        }
        let hash_total = in_est.total + in_est.rows * per_row;
        let n = in_est.rows.max(2.0);
        let sort_cost = 2.0 * CPU_OPERATOR_COST * n * n.log2();
        let mut hash_cost = hash_total;
        if !self.opts.enable_hashagg {
            hash_cost += DISABLE_COST;
        }
        let mut sorted_cost = hash_total + sort_cost;
        if !self.opts.enable_sort {
            sorted_cost += DISABLE_COST;
        }
        if hash_cost <= sorted_cost {
            return PhysicalPlan::Aggregate {
                input: Box::new(input),
                strategy: AggStrategy::Hashed,
                phase: AggPhase::Single,
                group: agg.group.clone(),
                aggs: agg.aggs.clone(),
                est: Estimate {
                    startup: hash_cost,
                    total: hash_cost + groups * CPU_TUPLE_COST,
                    rows: groups,
                    width,
                },
            };
        }
        // Sort on the group keys (projected next to the input so the Sort can name them), then
        // group aggregation over the sorted stream.
        let w = super::executor::width_hint(&input);
        let mut exprs: Vec<Expr> = Vec::new();
        // Identity projection of the input plus the group keys appended.
        let in_types = vec![DataType::Unknown; w];
        for (i, t) in in_types.iter().enumerate() {
            exprs.push(Expr::Column(i, t.clone()));
        }
        let mut keys = Vec::new();
        for g in &agg.group {
            keys.push(SortSpec {
                col: exprs.len(),
                desc: false,
                nulls_first: false,
            });
            exprs.push(g.clone());
        }
        let names = (0..exprs.len()).map(|i| format!("c{i}")).collect();
        let projected = PhysicalPlan::Project {
            input: Box::new(input),
            exprs,
            names,
            est: in_est,
        };
        let sorted = PhysicalPlan::Sort {
            input: Box::new(projected),
            keys,
            est: Estimate {
                startup: in_est.total + sort_cost,
                total: in_est.total + sort_cost + n * CPU_OPERATOR_COST,
                ..in_est
            },
        };
        PhysicalPlan::Aggregate {
            input: Box::new(sorted),
            strategy: AggStrategy::Sorted,
            phase: AggPhase::Single,
            group: agg.group.clone(),
            aggs: agg.aggs.clone(),
            est: Estimate {
                startup: sorted_cost - hash_total + in_est.total,
                total: sorted_cost,
                rows: groups,
                width,
            },
        }
    }

    fn plan_tree(
        &self,
        q: &LogicalSelect,
        offs: &[usize],
        t: &JoinTree,
        filters: Vec<Expr>,
        want_order: Option<&(Vec<usize>, bool)>,
        ordered: &mut bool,
    ) -> Sub {
        match t {
            JoinTree::Rel(i) => {
                let rel = &q.rels[*i];
                let start = offs[*i];
                let local: Vec<Expr> = filters
                    .iter()
                    .map(|e| map_columns(e, &|c| c - start))
                    .collect();
                let (plan, ord) = self.access_path(rel, local, want_order);
                *ordered = ord;
                Sub {
                    plan,
                    start,
                    len: rel.columns.len(),
                }
            }
            JoinTree::Join {
                left,
                right,
                kind,
                cond,
            } => {
                let (lr, rr) = (tree_range(q, offs, left), tree_range(q, offs, right));
                let in_range = |e: &Expr, r: (usize, usize)| {
                    let c = cols_in(e);
                    !c.is_empty() && c.iter().all(|&x| x >= r.0 && x < r.1)
                };
                let mut lf = Vec::new();
                let mut rf = Vec::new();
                let mut above = Vec::new();
                let mut jc = Vec::new();
                for f in filters {
                    let (l, r) = (in_range(&f, lr), in_range(&f, rr));
                    match kind {
                        JoinType::Inner if l => lf.push(f),
                        JoinType::Inner if r => rf.push(f),
                        JoinType::Inner => jc.push(f),
                        JoinType::Left if l => lf.push(f),
                        JoinType::Right if r => rf.push(f),
                        _ => above.push(f),
                    }
                }
                for c in cond {
                    let (l, r) = (in_range(c, lr), in_range(c, rr));
                    let volatile = is_volatile(c);
                    match kind {
                        JoinType::Inner if l && !volatile => lf.push(c.clone()),
                        JoinType::Inner if r && !volatile => rf.push(c.clone()),
                        JoinType::Left if r && !volatile => rf.push(c.clone()),
                        JoinType::Right if l && !volatile => lf.push(c.clone()),
                        _ => jc.push(c.clone()),
                    }
                }
                let mut o1 = false;
                let mut o2 = false;
                let ls = self.plan_tree(q, offs, left, lf, None, &mut o1);
                let rs = self.plan_tree(q, offs, right, rf, None, &mut o2);
                *ordered = false;
                let start = ls.start;
                let len = ls.len + rs.len;
                // Join conjuncts over the local row (left ‖ right).
                let local: Vec<Expr> = jc.iter().map(|e| map_columns(e, &|c| c - start)).collect();
                let inner_rel = match right.as_ref() {
                    JoinTree::Rel(i) => Some(*i),
                    _ => None,
                };
                let mut plan = self.join(
                    *kind,
                    ls.plan,
                    rs.plan,
                    ls.len,
                    local,
                    inner_rel.map(|i| &q.rels[i]),
                );
                if let Some(a) = and_of(
                    above
                        .iter()
                        .map(|e| map_columns(e, &|c| c - start))
                        .collect(),
                ) {
                    plan = filter_node(plan, a);
                }
                Sub { plan, start, len }
            }
        }
    }

    /// The cheapest scan of `rel` for filter conjuncts `conds` (over the table row); also whether
    /// it returns rows in `want_order`.
    fn access_path(
        &self,
        rel: &BaseRel,
        conds: Vec<Expr>,
        want_order: Option<&(Vec<usize>, bool)>,
    ) -> (PhysicalPlan, bool) {
        if let Some(src) = &rel.source {
            let plan = (**src).clone();
            return match and_of(conds) {
                Some(f) => (filter_node(plan, f), false),
                None => (plan, false),
            };
        }
        let width = columns_width(&rel.columns);
        let sel: f64 = conds.iter().map(selectivity).product();
        let rows = clamp_rows(rel.tuples * sel);
        let mut best_cost = seq_cost(rel, conds.len());
        if !self.opts.enable_seqscan {
            best_cost += DISABLE_COST;
        }
        let filter = and_of(conds.clone());
        let mut best = PhysicalPlan::SeqScan {
            rel: rel.rel,
            table: rel.table.clone(),
            alias: rel.alias.clone(),
            columns: rel.columns.clone(),
            filter: filter.clone(),
            projection: None,
            est: Estimate {
                startup: 0.0,
                total: best_cost,
                rows,
                width,
            },
        };
        let mut best_ordered = false;
        let ncols = rel.columns.len();
        let table_col = |i: usize| (i < ncols).then_some(i);
        let no_cols = |e: &Expr| cols_in(e).is_empty() && !is_volatile(e);
        let mut paths = index_paths(rel, &conds, &table_col, &no_cols);
        // A full index scan for the wanted order, or (sequential scans off, as PostgreSQL does)
        // instead of a sequential scan.
        if want_order.is_some() || !self.opts.enable_seqscan {
            for (ii, idx) in rel.indexes.iter().enumerate() {
                let useful = want_order.is_none_or(|(cols, _)| idx.columns.starts_with(cols));
                if useful && !paths.iter().any(|p| p.index == ii) {
                    paths.push(IndexPath {
                        index: ii,
                        qual: IndexQual::default(),
                        used: Vec::new(),
                        sel: 1.0,
                        eq_cols: 0,
                        unique_hit: false,
                    });
                }
            }
        }
        for p in paths {
            let idx = &rel.indexes[p.index];
            let fetched = if p.unique_hit {
                1.0
            } else {
                clamp_rows(rel.tuples * p.sel)
            };
            let (startup, mut total) = index_cost(rel, fetched, conds.len());
            if !self.opts.enable_indexscan {
                total += DISABLE_COST;
            }
            // Order: key columns after the equality-bound ones, no IN list.
            let provides = want_order.is_some_and(|(cols, _)| {
                p.qual.in_list.is_none()
                    && idx.columns.len() >= p.eq_cols + cols.len()
                    && idx.columns[p.eq_cols..p.eq_cols + cols.len()] == cols[..]
            });
            let backward = provides && want_order.is_some_and(|(_, d)| *d);
            // With a wanted order, an ordering path saves the sort: compare with seq + sort.
            let mut cmp_total = total;
            if want_order.is_some() && provides {
                cmp_total -= 2.0 * CPU_OPERATOR_COST * rows.max(2.0) * rows.max(2.0).log2()
                    + if self.opts.enable_sort {
                        0.0
                    } else {
                        DISABLE_COST
                    };
                // With LIMIT the scan stops early: favour it.
                cmp_total = cmp_total.min(startup + 1.0);
            }
            if cmp_total < best_cost || (provides && !best_ordered && cmp_total <= best_cost) {
                best_cost = cmp_total;
                best_ordered = provides;
                let index_cond: Vec<Expr> = p.used.iter().map(|&k| conds[k].clone()).collect();
                best = PhysicalPlan::IndexScan {
                    rel: rel.rel,
                    index: idx.id,
                    index_name: idx.name.clone(),
                    table: rel.table.clone(),
                    alias: rel.alias.clone(),
                    columns: rel.columns.clone(),
                    key_columns: idx.columns.clone(),
                    qual: p.qual.clone(),
                    index_cond,
                    filter: filter.clone(),
                    params: 0,
                    backward,
                    est: Estimate {
                        startup,
                        total,
                        rows: if p.unique_hit { 1.0 } else { rows },
                        width,
                    },
                };
            }
        }
        (best, best_ordered)
    }

    /// Choose the join method for `outer ‖ inner` with conjuncts `conds` over the joined row.
    fn join(
        &self,
        kind: JoinType,
        outer: PhysicalPlan,
        inner: PhysicalPlan,
        nl: usize,
        conds: Vec<Expr>,
        inner_rel: Option<&BaseRel>,
    ) -> PhysicalPlan {
        let (oe, ie) = (*outer.est(), *inner.est());
        let width = oe.width + ie.width;
        // Equi-join keys: `outer expr = inner expr` of the same hashable type.
        let mut okeys = Vec::new();
        let mut ikeys = Vec::new();
        let mut residual = Vec::new();
        for c in &conds {
            if let Expr::Binary(BinOp::Eq, a, b, _) = c {
                let (ca, cb) = (cols_in(a), cols_in(b));
                let ta = a.data_type();
                let hashable = ta == b.data_type() && eq_indexable(&ta);
                let left = |v: &[usize]| !v.is_empty() && v.iter().all(|&x| x < nl);
                let right = |v: &[usize]| !v.is_empty() && v.iter().all(|&x| x >= nl);
                if hashable && !is_volatile(c) {
                    if left(&ca) && right(&cb) {
                        okeys.push((**a).clone());
                        ikeys.push(map_columns(b, &|x| x - nl));
                        continue;
                    }
                    if left(&cb) && right(&ca) {
                        okeys.push((**b).clone());
                        ikeys.push(map_columns(a, &|x| x - nl));
                        continue;
                    }
                }
            }
            residual.push(c.clone());
        }
        let join_sel = if okeys.is_empty() {
            conds.iter().map(selectivity).product::<f64>()
        } else {
            1.0 / oe.rows.max(ie.rows).max(1.0)
        };
        let mut rows = clamp_rows(oe.rows * ie.rows * join_sel);
        if matches!(kind, JoinType::Left | JoinType::Full) {
            rows = rows.max(oe.rows);
        }
        if matches!(kind, JoinType::Right | JoinType::Full) {
            rows = rows.max(ie.rows);
        }
        let est = |startup: f64, total: f64| Estimate {
            startup,
            total,
            rows,
            width,
        };
        let mut best: Option<(f64, PhysicalPlan)> = None;
        let mut consider = |cost: f64, p: PhysicalPlan| {
            if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, p));
            }
        };
        let cond_all = and_of(conds.clone());
        // 1. Nested loop with an index lookup into the inner base relation.
        if let (Some(rel), true) = (inner_rel, matches!(kind, JoinType::Inner | JoinType::Left)) {
            let ncols = rel.columns.len();
            let table_col = |i: usize| (i >= nl && i < nl + ncols).then(|| i - nl);
            let outer_only = |e: &Expr| {
                let c = cols_in(e);
                !c.is_empty() && c.iter().all(|&x| x < nl) && !is_volatile(e)
            };
            let paths = index_paths(rel, &conds, &table_col, &outer_only);
            // The inner scan's own pushed filter, if any.
            let inner_filter = match &inner {
                PhysicalPlan::SeqScan { filter, .. } | PhysicalPlan::IndexScan { filter, .. } => {
                    filter.clone()
                }
                _ => None,
            };
            let simple_inner = matches!(
                inner,
                PhysicalPlan::SeqScan { .. } | PhysicalPlan::IndexScan { .. }
            );
            for p in paths.into_iter().filter(|p| p.qual.in_list.is_none()) {
                if !simple_inner {
                    break;
                }
                let idx = &rel.indexes[p.index];
                let per = if p.unique_hit {
                    1.0
                } else {
                    clamp_rows(rel.tuples * p.sel)
                };
                let (s, t) = index_cost(rel, per, 1);
                let mut total = oe.total + oe.rows * t + rows * CPU_TUPLE_COST;
                if !self.opts.enable_nestloop {
                    total += DISABLE_COST;
                }
                if !self.opts.enable_indexscan {
                    total += DISABLE_COST;
                }
                let index_cond: Vec<Expr> = p.used.iter().map(|&k| conds[k].clone()).collect();
                let scan = PhysicalPlan::IndexScan {
                    rel: rel.rel,
                    index: idx.id,
                    index_name: idx.name.clone(),
                    table: rel.table.clone(),
                    alias: rel.alias.clone(),
                    columns: rel.columns.clone(),
                    key_columns: idx.columns.clone(),
                    qual: p.qual.clone(),
                    index_cond,
                    filter: inner_filter.clone(),
                    params: nl,
                    backward: false,
                    est: Estimate {
                        startup: s,
                        total: t,
                        rows: per,
                        width: ie.width,
                    },
                };
                consider(
                    total,
                    PhysicalPlan::NestedLoop {
                        outer: Box::new(outer.clone()),
                        inner: Box::new(scan),
                        join: kind,
                        cond: cond_all.clone(),
                        param: true,
                        est: est(oe.startup + s, total),
                    },
                );
            }
        }
        // 2. Hash join.
        if !okeys.is_empty() {
            let startup = ie.total + ie.rows * (CPU_OPERATOR_COST + CPU_TUPLE_COST);
            let mut total =
                startup + oe.total + oe.rows * CPU_OPERATOR_COST + rows * CPU_TUPLE_COST;
            if !self.opts.enable_hashjoin {
                total += DISABLE_COST;
            }
            consider(
                total,
                PhysicalPlan::HashJoin {
                    outer: Box::new(outer.clone()),
                    inner: Box::new(inner.clone()),
                    join: kind,
                    outer_keys: okeys.clone(),
                    inner_keys: ikeys.clone(),
                    residual: and_of(residual.clone()),
                    est: est(startup, total),
                },
            );
        }
        // 3. Merge join (keys must be plain columns after a projection; sort both sides).
        if !okeys.is_empty()
            && okeys.iter().chain(&ikeys).all(|k| {
                order_indexable(&k.data_type()) || matches!(k.data_type(), DataType::Numeric(_))
            })
        {
            let sort = |p: PhysicalPlan, keys: &[Expr]| -> (PhysicalPlan, Vec<usize>, f64) {
                // Already sorted on the keys (a forward index scan over them): no Sort.
                if let Some(cols) = sorted_on(&p, keys) {
                    return (p, cols, 0.0);
                }
                let e = *p.est();
                let n = e.rows.max(2.0);
                let cost = 2.0 * CPU_OPERATOR_COST * n * n.log2();
                // Keys are plain columns here (see `plain_keys` below).
                let cols: Vec<usize> = keys
                    .iter()
                    .filter_map(|k| match k {
                        Expr::Column(c, _) => Some(*c),
                        _ => None,
                    })
                    .collect();
                let sorted = PhysicalPlan::Sort {
                    keys: cols
                        .iter()
                        .map(|&c| SortSpec {
                            col: c,
                            desc: false,
                            nulls_first: false,
                        })
                        .collect(),
                    input: Box::new(p),
                    est: Estimate {
                        startup: e.total + cost,
                        total: e.total + cost + n * CPU_OPERATOR_COST,
                        ..e
                    },
                };
                (
                    sorted,
                    cols,
                    cost + if self.opts.enable_sort {
                        0.0
                    } else {
                        DISABLE_COST
                    },
                )
            };
            let plain_keys = okeys
                .iter()
                .chain(&ikeys)
                .all(|k| matches!(k, Expr::Column(..)));
            if plain_keys {
                let (so, oc, c1) = sort(outer.clone(), &okeys);
                let (si, ic, c2) = sort(inner.clone(), &ikeys);
                let mut total = oe.total
                    + ie.total
                    + c1
                    + c2
                    + (oe.rows + ie.rows) * CPU_OPERATOR_COST
                    + rows * CPU_TUPLE_COST;
                if !self.opts.enable_mergejoin {
                    total += DISABLE_COST;
                }
                consider(
                    total,
                    PhysicalPlan::MergeJoin {
                        outer: Box::new(so),
                        inner: Box::new(si),
                        join: kind,
                        outer_keys: oc,
                        inner_keys: ic,
                        residual: and_of(residual.clone()),
                        est: est(oe.total + ie.total + c1 + c2, total),
                    },
                );
            }
        }
        // 4. Plain nested loop (any condition, any join type).
        {
            let mut total = oe.total
                + ie.total
                + oe.rows * ie.rows * CPU_OPERATOR_COST * (conds.len().max(1) as f64)
                + rows * CPU_TUPLE_COST;
            if !self.opts.enable_nestloop {
                total += DISABLE_COST;
            }
            consider(
                total,
                PhysicalPlan::NestedLoop {
                    outer: Box::new(outer),
                    inner: Box::new(inner),
                    join: kind,
                    cond: cond_all,
                    param: false,
                    est: est(oe.startup + ie.total, total),
                },
            );
        }
        match best {
            Some((_, p)) => p,
            None => unreachable_plan(),
        }
    }
}

/// The key columns when `p` already returns rows ordered ascending (NULLs last) on `keys`: a
/// forward index scan whose key columns after its equality-bound prefix are exactly those.
fn sorted_on(p: &PhysicalPlan, keys: &[Expr]) -> Option<Vec<usize>> {
    let PhysicalPlan::IndexScan {
        key_columns,
        qual,
        backward: false,
        ..
    } = p
    else {
        return None;
    };
    if qual.in_list.is_some() {
        return None;
    }
    let mut cols = Vec::new();
    for k in keys {
        match k {
            Expr::Column(c, t) if order_indexable(t) => cols.push(*c),
            _ => return None,
        }
    }
    let rest = key_columns.get(qual.eq.len()..)?;
    rest.starts_with(&cols).then_some(cols)
}

fn unreachable_plan() -> PhysicalPlan {
    PhysicalPlan::Values {
        rows: Vec::new(),
        width: 0,
        est: Estimate::default(),
    }
}

fn tree_range(q: &LogicalSelect, offs: &[usize], t: &JoinTree) -> (usize, usize) {
    let mut lo = usize::MAX;
    let mut hi = 0;
    fn walk(q: &LogicalSelect, offs: &[usize], t: &JoinTree, lo: &mut usize, hi: &mut usize) {
        match t {
            JoinTree::Rel(i) => {
                *lo = (*lo).min(offs[*i]);
                *hi = (*hi).max(offs[*i] + q.rels[*i].columns.len());
            }
            JoinTree::Join { left, right, .. } => {
                walk(q, offs, left, lo, hi);
                walk(q, offs, right, lo, hi);
            }
        }
    }
    walk(q, offs, t, &mut lo, &mut hi);
    (lo, hi)
}

fn filter_node(plan: PhysicalPlan, predicate: Expr) -> PhysicalPlan {
    let mut est = *plan.est();
    let mut cs = Vec::new();
    conjuncts(predicate.clone(), &mut cs);
    est.rows = clamp_rows(est.rows * cs.iter().map(selectivity).product::<f64>());
    PhysicalPlan::Filter {
        input: Box::new(plan),
        predicate,
        est,
    }
}

fn limit_node(plan: PhysicalPlan, limit: Option<u64>, offset: u64) -> PhysicalPlan {
    let mut est = *plan.est();
    if let Some(l) = limit {
        let frac = if est.rows > 0.0 {
            ((l + offset) as f64 / est.rows).min(1.0)
        } else {
            1.0
        };
        est.total = est.startup + (est.total - est.startup) * frac;
        est.rows = (l as f64).min(est.rows);
    }
    PhysicalPlan::Limit {
        input: Box::new(plan),
        limit,
        offset,
        est,
    }
}
