//! The pull-based executor: one operator per plan node, each producing batches of at most
//! [`BATCH`] rows from `next_batch`. Scans stream from [`TableAccess`] cursors; the operators
//! that must hold rows (sort, top-N, hash join build, hashed aggregate, distinct, the inner
//! side of a plain nested loop, merge join) account their memory against
//! [`PlanOptions::memory_limit`] and fail with 53200 beyond it. Every `next_batch` checks the
//! statement's cancel flag first (57014).
//!
//! The operator interface is synchronous today (storage calls go through the engine's
//! `block_on` inside [`TableAccess`]); it has the shape of an async pull interface
//! (`open` / `next_batch` / `close`), so it can become one without changing the plans.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::Ordering as AtomicOrdering;

use pgxc_common::{PgError, SqlState};
use pgxc_storage::keycode::encode_key;
use pgxc_storage::mvcc::KeyRange;

use super::{
    AggCall, AggPhase, AggStrategy, CursorId, IndexQual, JoinType, PhysicalPlan, PlanOptions,
    SortSpec, TableAccess, BATCH,
};
use crate::catalog::{decode_row, key_datum};
use crate::exec::agg::{cmp_nulls, row_key, value_bytes, Acc};
use crate::expr::{EvalContext, Expr};
use crate::types::Value;

/// A row of values.
pub type Tuple = Vec<Value>;

/// What operators share while running: storage access, evaluation context, settings.
pub struct ExecCtx<'a> {
    /// Storage.
    pub access: &'a mut dyn TableAccess,
    /// Time zone and sequences for expression evaluation.
    pub eval: &'a EvalContext,
    /// Memory limit and cancel flag.
    pub opts: &'a PlanOptions,
}

impl ExecCtx<'_> {
    /// 57014 once the statement's cancel flag is set.
    fn check_cancel(&self) -> Result<(), PgError> {
        if let Some(c) = &self.opts.cancel {
            if c.load(AtomicOrdering::Relaxed) {
                return Err(PgError::new(
                    SqlState::QueryCanceled,
                    "canceling statement due to user request",
                ));
            }
        }
        Ok(())
    }
}

/// Memory held by one operator, checked against the limit.
#[derive(Default)]
struct Mem {
    bytes: usize,
}

impl Mem {
    fn charge(&mut self, n: usize, cx: &ExecCtx<'_>, what: &str) -> Result<(), PgError> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > cx.opts.memory_limit {
            return Err(PgError::new(
                SqlState::OutOfMemory,
                format!(
                    "out of memory: {what} needs more than pgxc.operator_memory_limit ({} kB)",
                    cx.opts.memory_limit / 1024
                ),
            ));
        }
        Ok(())
    }
}

fn row_bytes(r: &[Value]) -> usize {
    24 + r.iter().map(value_bytes).sum::<usize>()
}

fn passes(e: &Option<Expr>, row: &[Value], cx: &ExecCtx<'_>) -> Result<bool, PgError> {
    match e {
        None => Ok(true),
        Some(e) => Ok(matches!(e.eval(row, cx.eval)?, Value::Bool(true))),
    }
}

fn cmp_rows(a: &[Value], b: &[Value], keys: &[SortSpec]) -> Ordering {
    for k in keys {
        let (x, y) = (
            a.get(k.col).unwrap_or(&Value::Null),
            b.get(k.col).unwrap_or(&Value::Null),
        );
        let o = cmp_nulls(x, y, k.desc, k.nulls_first);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// One running operator.
pub trait Operator {
    /// (Re)start with a parameter row (the outer row of a parameterised nested loop; empty
    /// otherwise).
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError>;
    /// The next batch (1..=BATCH rows), or `None` when done.
    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError>;
    /// Release cursors.
    fn close(&mut self, cx: &mut ExecCtx<'_>);
    /// Rows returned and times opened (EXPLAIN ANALYZE).
    fn actual(&self) -> (u64, u64);
    /// Child operators, outer first.
    fn children(&self) -> Vec<&dyn Operator>;
}

/// Counters every operator keeps.
#[derive(Default, Clone, Copy)]
struct Counters {
    rows: u64,
    loops: u64,
}

impl Counters {
    fn emit(&mut self, b: Vec<Tuple>) -> Option<Vec<Tuple>> {
        if b.is_empty() {
            return None;
        }
        self.rows += b.len() as u64;
        Some(b)
    }
}

/// Build the operator tree for a plan.
pub fn build(plan: &PhysicalPlan) -> Box<dyn Operator> {
    match plan {
        PhysicalPlan::SeqScan {
            rel,
            filter,
            projection,
            ..
        } => Box::new(SeqScanOp {
            rel: *rel,
            filter: filter.clone(),
            projection: projection.clone(),
            cursor: None,
            c: Counters::default(),
        }),
        PhysicalPlan::IndexScan {
            index,
            qual,
            filter,
            key_columns,
            columns,
            backward,
            ..
        } => Box::new(IndexScanOp {
            index: *index,
            qual: qual.clone(),
            filter: filter.clone(),
            key_types: key_columns
                .iter()
                .map(|&c| columns.get(c).map(|c| c.ty.clone()))
                .collect(),
            backward: *backward,
            ranges: Vec::new(),
            cursor: None,
            c: Counters::default(),
        }),
        PhysicalPlan::Filter {
            input, predicate, ..
        } => Box::new(FilterOp {
            input: build(input),
            predicate: predicate.clone(),
            c: Counters::default(),
        }),
        PhysicalPlan::Project { input, exprs, .. } => Box::new(ProjectOp {
            input: build(input),
            exprs: exprs.clone(),
            c: Counters::default(),
        }),
        PhysicalPlan::NestedLoop {
            outer,
            inner,
            join,
            cond,
            param,
            ..
        } => Box::new(NestLoopOp {
            outer: build(outer),
            inner: build(inner),
            join: *join,
            cond: cond.clone(),
            param: *param,
            inner_width: width_hint(inner),
            outer_width: width_hint(outer),
            st: LoopState::default(),
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::HashJoin {
            outer,
            inner,
            join,
            outer_keys,
            inner_keys,
            residual,
            ..
        } => Box::new(HashJoinOp {
            outer: build(outer),
            inner: build(inner),
            join: *join,
            outer_keys: outer_keys.clone(),
            inner_keys: inner_keys.clone(),
            residual: residual.clone(),
            inner_width: width_hint(inner),
            outer_width: width_hint(outer),
            built: false,
            table: HashMap::new(),
            inner_rows: Vec::new(),
            matched: Vec::new(),
            outer_buf: Vec::new(),
            outer_pos: 0,
            outer_done: false,
            tail_pos: None,
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::MergeJoin {
            outer,
            inner,
            join,
            outer_keys,
            inner_keys,
            residual,
            ..
        } => Box::new(MergeJoinOp {
            outer: build(outer),
            inner: build(inner),
            join: *join,
            outer_keys: outer_keys.clone(),
            inner_keys: inner_keys.clone(),
            residual: residual.clone(),
            inner_width: width_hint(inner),
            outer_width: width_hint(outer),
            out: None,
            pos: 0,
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::Aggregate {
            input,
            strategy,
            phase,
            group,
            aggs,
            ..
        } => Box::new(AggOp {
            input: build(input),
            strategy: *strategy,
            phase: *phase,
            group: group.clone(),
            aggs: aggs.clone(),
            groups: Vec::new(),
            index: HashMap::new(),
            done_input: false,
            emit_pos: 0,
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::Sort { input, keys, .. } => Box::new(SortOp {
            input: build(input),
            keys: keys.clone(),
            rows: None,
            pos: 0,
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::TopN {
            input,
            keys,
            limit,
            offset,
            ..
        } => Box::new(TopNOp {
            input: build(input),
            keys: keys.clone(),
            keep: usize::try_from(limit.saturating_add(*offset)).unwrap_or(usize::MAX),
            offset: usize::try_from(*offset).unwrap_or(usize::MAX),
            rows: None,
            pos: 0,
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::Limit {
            input,
            limit,
            offset,
            ..
        } => Box::new(LimitOp {
            input: build(input),
            limit: *limit,
            offset: *offset,
            skipped: 0,
            returned: 0,
            c: Counters::default(),
        }),
        PhysicalPlan::Distinct { input, width, .. } => Box::new(DistinctOp {
            input: build(input),
            width: *width,
            seen: HashSet::new(),
            mem: Mem::default(),
            c: Counters::default(),
        }),
        PhysicalPlan::Values { rows, .. } => Box::new(ValuesOp {
            rows: rows.clone(),
            pos: 0,
            c: Counters::default(),
        }),
        PhysicalPlan::RowsetScan { rows, .. } => Box::new(RowsetScanOp {
            rows: std::sync::Arc::clone(rows),
            pos: 0,
            c: Counters::default(),
        }),
        PhysicalPlan::Append { inputs, .. } => Box::new(AppendOp {
            inputs: inputs.iter().map(build).collect(),
            cur: 0,
            params: Vec::new(),
            c: Counters::default(),
        }),
    }
}

/// The width of a node's output row, where the plan says it (for NULL-extending outer joins).
pub fn width_hint(plan: &PhysicalPlan) -> usize {
    match plan {
        PhysicalPlan::SeqScan {
            columns,
            projection,
            ..
        } => projection.as_ref().map_or(columns.len(), Vec::len),
        PhysicalPlan::IndexScan { columns, .. } => columns.len(),
        PhysicalPlan::Filter { input, .. }
        | PhysicalPlan::Sort { input, .. }
        | PhysicalPlan::TopN { input, .. }
        | PhysicalPlan::Limit { input, .. }
        | PhysicalPlan::Distinct { input, .. } => width_hint(input),
        PhysicalPlan::Project { exprs, .. } => exprs.len(),
        PhysicalPlan::NestedLoop {
            outer, inner, join, ..
        }
        | PhysicalPlan::HashJoin {
            outer, inner, join, ..
        }
        | PhysicalPlan::MergeJoin {
            outer, inner, join, ..
        } => match join {
            JoinType::Semi | JoinType::Anti => width_hint(outer),
            _ => width_hint(outer) + width_hint(inner),
        },
        PhysicalPlan::Aggregate { group, aggs, .. } => group.len() + aggs.len(),
        PhysicalPlan::Values { width, .. } => *width,
        PhysicalPlan::RowsetScan { columns, .. } => columns.len(),
        PhysicalPlan::Append { inputs, .. } => inputs.first().map_or(0, width_hint),
    }
}

/// Run a plan to completion: all its rows.
pub fn run(plan: &PhysicalPlan, cx: &mut ExecCtx<'_>) -> Result<Vec<Tuple>, PgError> {
    let mut op = build(plan);
    let r = drain(op.as_mut(), cx);
    op.close(cx);
    r
}

/// Open an operator and pull every batch.
pub fn drain(op: &mut dyn Operator, cx: &mut ExecCtx<'_>) -> Result<Vec<Tuple>, PgError> {
    op.open(cx, &[])?;
    let mut out = Vec::new();
    while let Some(b) = op.next_batch(cx)? {
        out.extend(b);
    }
    Ok(out)
}

// ---- scans ----

struct SeqScanOp {
    rel: u64,
    filter: Option<Expr>,
    projection: Option<Vec<usize>>,
    cursor: Option<CursorId>,
    c: Counters,
}

impl Operator for SeqScanOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, _params: &[Value]) -> Result<(), PgError> {
        if let Some(c) = self.cursor.take() {
            cx.access.close(c);
        }
        self.c.loops += 1;
        self.cursor = Some(cx.access.open_scan(self.rel)?);
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            let Some(cur) = self.cursor else {
                return Ok(None);
            };
            let rows = cx.access.next_rows(cur, BATCH)?;
            if rows.is_empty() {
                cx.access.close(cur);
                self.cursor = None;
                return Ok(None);
            }
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let row = decode_row(&r.data)?;
                if !passes(&self.filter, &row, cx)? {
                    continue;
                }
                out.push(match &self.projection {
                    None => row,
                    Some(p) => p
                        .iter()
                        .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
                        .collect(),
                });
            }
            if let Some(b) = self.c.emit(out) {
                return Ok(Some(b));
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        if let Some(c) = self.cursor.take() {
            cx.access.close(c);
        }
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        Vec::new()
    }
}

struct IndexScanOp {
    index: u64,
    qual: IndexQual,
    filter: Option<Expr>,
    key_types: Vec<Option<crate::types::DataType>>,
    backward: bool,
    /// Key ranges still to scan (next one last).
    ranges: Vec<KeyRange>,
    cursor: Option<CursorId>,
    c: Counters,
}

/// Key bytes of values of the leading index columns.
fn key_bytes(vals: &[Value]) -> Vec<u8> {
    let d: Vec<_> = vals.iter().map(key_datum).collect();
    encode_key(&d).bytes
}

/// The key ranges an index qual selects for one parameter row (empty when a bound is NULL:
/// no row can match), in scan order reversed (the next range to scan last).
pub fn qual_ranges(
    qual: &IndexQual,
    params: &[Value],
    eval: &EvalContext,
    backward: bool,
) -> Result<Vec<KeyRange>, PgError> {
    let mut prefix_vals = Vec::new();
    for e in &qual.eq {
        let v = e.eval(params, eval)?;
        if v.is_null() {
            return Ok(Vec::new());
        }
        prefix_vals.push(v);
    }
    let prefix = key_bytes(&prefix_vals);
    let mut ranges = Vec::new();
    if let Some(items) = &qual.in_list {
        let mut keys = Vec::new();
        for e in items {
            let v = e.eval(params, eval)?;
            if v.is_null() {
                continue;
            }
            let mut k = prefix.clone();
            k.extend(key_bytes(std::slice::from_ref(&v)));
            keys.push(k);
        }
        keys.sort();
        keys.dedup();
        for k in keys {
            ranges.push(KeyRange::prefix(&k));
        }
    } else if qual.lower.is_some() || qual.upper.is_some() {
        let whole = KeyRange::prefix(&prefix);
        let bound =
            |b: &Option<(Expr, bool)>, lower: bool| -> Result<Option<Bound<Vec<u8>>>, PgError> {
                let Some((e, incl)) = b else {
                    return Ok(Some(if lower {
                        whole.lower.clone()
                    } else {
                        whole.upper.clone()
                    }));
                };
                let v = e.eval(params, eval)?;
                if v.is_null() {
                    return Ok(None);
                }
                let mut k = prefix.clone();
                k.extend(key_bytes(std::slice::from_ref(&v)));
                Ok(Some(if *incl {
                    Bound::Included(k)
                } else {
                    Bound::Excluded(k)
                }))
            };
        let (Some(lo), Some(hi)) = (bound(&qual.lower, true)?, bound(&qual.upper, false)?) else {
            return Ok(Vec::new());
        };
        // With no lower bound on the range column, still skip nothing below the prefix; with
        // only a lower bound, NULLs (which sort last) stay in range and the recheck drops them.
        ranges.push(KeyRange::between(lo, hi));
    } else if prefix.is_empty() {
        ranges.push(KeyRange::all());
    } else {
        ranges.push(KeyRange::prefix(&prefix));
    }
    if !backward {
        ranges.reverse();
    }
    Ok(ranges)
}

impl Operator for IndexScanOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        if let Some(c) = self.cursor.take() {
            cx.access.close(c);
        }
        self.c.loops += 1;
        let _ = &self.key_types;
        self.ranges = qual_ranges(&self.qual, params, cx.eval, self.backward)?;
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            let cur = match self.cursor {
                Some(c) => c,
                None => match self.ranges.pop() {
                    None => return Ok(None),
                    Some(r) => {
                        let c = cx.access.open_index_scan(self.index, r, self.backward)?;
                        self.cursor = Some(c);
                        c
                    }
                },
            };
            let rows = cx.access.next_rows(cur, BATCH)?;
            if rows.is_empty() {
                cx.access.close(cur);
                self.cursor = None;
                continue;
            }
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let row = decode_row(&r.data)?;
                if passes(&self.filter, &row, cx)? {
                    out.push(row);
                }
            }
            if let Some(b) = self.c.emit(out) {
                return Ok(Some(b));
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        if let Some(c) = self.cursor.take() {
            cx.access.close(c);
        }
        self.ranges.clear();
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        Vec::new()
    }
}

// ---- simple row operators ----

struct FilterOp {
    input: Box<dyn Operator>,
    predicate: Expr,
    c: Counters,
}

impl Operator for FilterOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            let Some(b) = self.input.next_batch(cx)? else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(b.len());
            for r in b {
                if matches!(self.predicate.eval(&r, cx.eval)?, Value::Bool(true)) {
                    out.push(r);
                }
            }
            if let Some(b) = self.c.emit(out) {
                return Ok(Some(b));
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

struct ProjectOp {
    input: Box<dyn Operator>,
    exprs: Vec<Expr>,
    c: Counters,
}

impl Operator for ProjectOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        let Some(b) = self.input.next_batch(cx)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(b.len());
        for r in b {
            let mut o = Vec::with_capacity(self.exprs.len());
            for e in &self.exprs {
                o.push(e.eval(&r, cx.eval)?);
            }
            out.push(o);
        }
        Ok(self.c.emit(out))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

struct LimitOp {
    input: Box<dyn Operator>,
    limit: Option<u64>,
    offset: u64,
    skipped: u64,
    returned: u64,
    c: Counters,
}

impl Operator for LimitOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.skipped = 0;
        self.returned = 0;
        if self.limit == Some(0) {
            return Ok(());
        }
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            if let Some(l) = self.limit {
                if self.returned >= l {
                    return Ok(None);
                }
            }
            let Some(b) = self.input.next_batch(cx)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for r in b {
                if self.skipped < self.offset {
                    self.skipped += 1;
                    continue;
                }
                if let Some(l) = self.limit {
                    if self.returned >= l {
                        break;
                    }
                }
                self.returned += 1;
                out.push(r);
            }
            if let Some(b) = self.c.emit(out) {
                return Ok(Some(b));
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

struct DistinctOp {
    input: Box<dyn Operator>,
    width: usize,
    seen: HashSet<Vec<u8>>,
    mem: Mem,
    c: Counters,
}

impl Operator for DistinctOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.seen.clear();
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            let Some(b) = self.input.next_batch(cx)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for r in b {
                let k = row_key(&r[..self.width.min(r.len())]);
                let n = k.len() + 32;
                if self.seen.insert(k) {
                    self.mem.charge(n, cx, "DISTINCT")?;
                    out.push(r);
                }
            }
            if let Some(b) = self.c.emit(out) {
                return Ok(Some(b));
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

/// A session rowset's rows, batch by batch (each row cloned once, as it is emitted).
struct RowsetScanOp {
    rows: std::sync::Arc<Vec<Tuple>>,
    pos: usize,
    c: Counters,
}

impl Operator for RowsetScanOp {
    fn open(&mut self, _cx: &mut ExecCtx<'_>, _params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.pos = 0;
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        let end = (self.pos + BATCH).min(self.rows.len());
        let b = self.rows[self.pos..end].to_vec();
        self.pos = end;
        Ok(self.c.emit(b))
    }

    fn close(&mut self, _cx: &mut ExecCtx<'_>) {}

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        Vec::new()
    }
}

struct ValuesOp {
    rows: Vec<Tuple>,
    pos: usize,
    c: Counters,
}

impl Operator for ValuesOp {
    fn open(&mut self, _cx: &mut ExecCtx<'_>, _params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.pos = 0;
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        let end = (self.pos + BATCH).min(self.rows.len());
        let b = self.rows[self.pos..end].to_vec();
        self.pos = end;
        Ok(self.c.emit(b))
    }

    fn close(&mut self, _cx: &mut ExecCtx<'_>) {}

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        Vec::new()
    }
}

struct AppendOp {
    inputs: Vec<Box<dyn Operator>>,
    cur: usize,
    params: Vec<Value>,
    c: Counters,
}

impl Operator for AppendOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.cur = 0;
        self.params = params.to_vec();
        if let Some(i) = self.inputs.first_mut() {
            i.open(cx, params)?;
        }
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        loop {
            cx.check_cancel()?;
            let Some(i) = self.inputs.get_mut(self.cur) else {
                return Ok(None);
            };
            if let Some(b) = i.next_batch(cx)? {
                return Ok(self.c.emit(b));
            }
            i.close(cx);
            self.cur += 1;
            if let Some(n) = self.inputs.get_mut(self.cur) {
                n.open(cx, &self.params)?;
            }
        }
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        for i in &mut self.inputs {
            i.close(cx);
        }
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        self.inputs.iter().map(|i| i.as_ref()).collect()
    }
}

// ---- sorting ----

struct SortOp {
    input: Box<dyn Operator>,
    keys: Vec<SortSpec>,
    rows: Option<Vec<Tuple>>,
    pos: usize,
    mem: Mem,
    c: Counters,
}

impl Operator for SortOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.rows = None;
        self.pos = 0;
        self.mem = Mem::default();
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        if self.rows.is_none() {
            let mut all = Vec::new();
            while let Some(b) = self.input.next_batch(cx)? {
                cx.check_cancel()?;
                for r in b {
                    self.mem.charge(row_bytes(&r), cx, "sort")?;
                    all.push(r);
                }
            }
            let keys = &self.keys;
            all.sort_by(|a, b| cmp_rows(a, b, keys));
            self.rows = Some(all);
        }
        let rows = self.rows.as_ref().map_or(&[][..], |r| r.as_slice());
        let end = (self.pos + BATCH).min(rows.len());
        let b = rows[self.pos..end].to_vec();
        self.pos = end;
        Ok(self.c.emit(b))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

struct TopNOp {
    input: Box<dyn Operator>,
    keys: Vec<SortSpec>,
    keep: usize,
    offset: usize,
    rows: Option<Vec<Tuple>>,
    pos: usize,
    mem: Mem,
    c: Counters,
}

impl Operator for TopNOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.rows = None;
        self.pos = 0;
        self.mem = Mem::default();
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        if self.rows.is_none() {
            // Stable: rows enter in input order and each trim is a stable sort, so among equal
            // keys the earlier row stays first (as a full stable sort + LIMIT would give).
            let keys = self.keys.clone();
            let mut buf: Vec<Tuple> = Vec::new();
            let cap = self.keep.saturating_mul(2).max(BATCH);
            while let Some(b) = self.input.next_batch(cx)? {
                cx.check_cancel()?;
                for r in b {
                    buf.push(r);
                }
                if buf.len() > cap {
                    buf.sort_by(|a, b| cmp_rows(a, b, &keys));
                    buf.truncate(self.keep);
                }
                let held: usize = buf.iter().map(|r| row_bytes(r)).sum();
                self.mem.bytes = 0;
                self.mem.charge(held, cx, "top-N sort")?;
            }
            buf.sort_by(|a, b| cmp_rows(a, b, &keys));
            buf.truncate(self.keep);
            let rows: Vec<Tuple> = buf.into_iter().skip(self.offset).collect();
            self.rows = Some(rows);
        }
        let rows = self.rows.as_ref().map_or(&[][..], |r| r.as_slice());
        let end = (self.pos + BATCH).min(rows.len());
        let b = rows[self.pos..end].to_vec();
        self.pos = end;
        Ok(self.c.emit(b))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}

// ---- joins ----

#[derive(Default)]
struct LoopState {
    outer_buf: Vec<Tuple>,
    outer_pos: usize,
    outer_done: bool,
    /// The current outer row and whether it matched.
    cur: Option<(Tuple, bool)>,
    /// Plain loop: the inner rows (read once) and which matched; param loop: the current batch.
    inner_rows: Vec<Tuple>,
    inner_matched: Vec<bool>,
    inner_loaded: bool,
    inner_pos: usize,
    inner_done: bool,
    /// Position in the unmatched-inner tail (Right/Full).
    tail_pos: Option<usize>,
}

struct NestLoopOp {
    outer: Box<dyn Operator>,
    inner: Box<dyn Operator>,
    join: JoinType,
    cond: Option<Expr>,
    param: bool,
    inner_width: usize,
    outer_width: usize,
    st: LoopState,
    mem: Mem,
    c: Counters,
}

impl NestLoopOp {
    /// The next inner row for the current outer row, with its index (plain loop).
    fn next_inner(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<(Tuple, usize)>, PgError> {
        loop {
            if self.st.inner_pos < self.st.inner_rows.len() {
                let i = self.st.inner_pos;
                self.st.inner_pos += 1;
                return Ok(Some((self.st.inner_rows[i].clone(), i)));
            }
            if !self.param || self.st.inner_done {
                return Ok(None);
            }
            match self.inner.next_batch(cx)? {
                Some(b) => {
                    self.st.inner_rows = b;
                    self.st.inner_pos = 0;
                }
                None => {
                    self.st.inner_done = true;
                    return Ok(None);
                }
            }
        }
    }
}

impl Operator for NestLoopOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.st = LoopState::default();
        self.mem = Mem::default();
        self.outer.open(cx, params)?;
        if !self.param {
            self.inner.open(cx, params)?;
            let mut rows = Vec::new();
            while let Some(b) = self.inner.next_batch(cx)? {
                for r in b {
                    self.mem
                        .charge(row_bytes(&r), cx, "nested loop inner side")?;
                    rows.push(r);
                }
            }
            self.st.inner_matched = vec![false; rows.len()];
            self.st.inner_rows = rows;
            self.st.inner_loaded = true;
        }
        Ok(())
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        let mut out = Vec::new();
        let mut steps: usize = 0;
        loop {
            if out.len() >= BATCH {
                break;
            }
            steps += 1;
            if steps.is_multiple_of(4096) {
                cx.check_cancel()?;
            }
            if let Some(t) = self.st.tail_pos {
                // Unmatched inner rows of a Right/Full join, after the outer side is done.
                let n = self.st.inner_rows.len();
                let mut t = t;
                while t < n && out.len() < BATCH {
                    if !self.st.inner_matched[t] {
                        let mut row = vec![Value::Null; self.outer_width];
                        row.extend(self.st.inner_rows[t].iter().cloned());
                        out.push(row);
                    }
                    t += 1;
                }
                self.st.tail_pos = Some(t);
                if t >= n {
                    self.st.tail_pos = Some(usize::MAX);
                }
                break;
            }
            if self.st.cur.is_none() {
                if self.st.outer_pos >= self.st.outer_buf.len() {
                    if self.st.outer_done {
                        break;
                    }
                    match self.outer.next_batch(cx)? {
                        Some(b) => {
                            self.st.outer_buf = b;
                            self.st.outer_pos = 0;
                            continue;
                        }
                        None => {
                            self.st.outer_done = true;
                            if !self.param && matches!(self.join, JoinType::Right | JoinType::Full)
                            {
                                self.st.tail_pos = Some(0);
                                continue;
                            }
                            break;
                        }
                    }
                }
                let row = std::mem::take(&mut self.st.outer_buf[self.st.outer_pos]);
                self.st.outer_pos += 1;
                if self.param {
                    self.inner.open(cx, &row)?;
                    self.st.inner_rows.clear();
                    self.st.inner_done = false;
                }
                self.st.inner_pos = 0;
                self.st.cur = Some((row, false));
            }
            match self.next_inner(cx)? {
                Some((irow, idx)) => {
                    let Some((orow, _)) = &self.st.cur else {
                        continue;
                    };
                    let mut combined = orow.clone();
                    combined.extend(irow);
                    if !passes(&self.cond, &combined, cx)? {
                        continue;
                    }
                    if let Some(c) = self.st.cur.as_mut() {
                        c.1 = true;
                    }
                    if !self.param {
                        self.st.inner_matched[idx] = true;
                    }
                    match self.join {
                        JoinType::Semi => {
                            if let Some((o, _)) = self.st.cur.take() {
                                out.push(o);
                            }
                        }
                        JoinType::Anti => {
                            self.st.cur = None;
                        }
                        _ => out.push(combined),
                    }
                }
                None => {
                    if let Some((o, matched)) = self.st.cur.take() {
                        if !matched {
                            match self.join {
                                JoinType::Left | JoinType::Full => {
                                    let mut row = o;
                                    row.extend(std::iter::repeat_n(Value::Null, self.inner_width));
                                    out.push(row);
                                }
                                JoinType::Anti => out.push(o),
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        Ok(self.c.emit(out))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.outer.close(cx);
        self.inner.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.outer.as_ref(), self.inner.as_ref()]
    }
}

struct HashJoinOp {
    outer: Box<dyn Operator>,
    inner: Box<dyn Operator>,
    join: JoinType,
    outer_keys: Vec<Expr>,
    inner_keys: Vec<Expr>,
    residual: Option<Expr>,
    inner_width: usize,
    outer_width: usize,
    built: bool,
    table: HashMap<Vec<u8>, Vec<usize>>,
    inner_rows: Vec<Tuple>,
    matched: Vec<bool>,
    outer_buf: Vec<Tuple>,
    outer_pos: usize,
    outer_done: bool,
    tail_pos: Option<usize>,
    mem: Mem,
    c: Counters,
}

/// Key values of a row, or `None` if any is NULL (NULL keys never join).
fn eval_keys(keys: &[Expr], row: &[Value], cx: &ExecCtx<'_>) -> Result<Option<Vec<u8>>, PgError> {
    let mut vals = Vec::with_capacity(keys.len());
    for k in keys {
        let v = k.eval(row, cx.eval)?;
        if v.is_null() {
            return Ok(None);
        }
        vals.push(v);
    }
    Ok(Some(row_key(&vals)))
}

impl Operator for HashJoinOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.built = false;
        self.table.clear();
        self.inner_rows.clear();
        self.matched.clear();
        self.outer_buf.clear();
        self.outer_pos = 0;
        self.outer_done = false;
        self.tail_pos = None;
        self.mem = Mem::default();
        self.outer.open(cx, params)?;
        self.inner.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        if !self.built {
            while let Some(b) = self.inner.next_batch(cx)? {
                cx.check_cancel()?;
                for r in b {
                    self.mem.charge(row_bytes(&r) + 48, cx, "hash join")?;
                    let i = self.inner_rows.len();
                    if let Some(k) = eval_keys(&self.inner_keys, &r, cx)? {
                        self.table.entry(k).or_default().push(i);
                    }
                    self.inner_rows.push(r);
                }
            }
            self.matched = vec![false; self.inner_rows.len()];
            self.built = true;
        }
        let mut out = Vec::new();
        while out.len() < BATCH {
            if let Some(t) = self.tail_pos {
                let n = self.inner_rows.len();
                let mut t = t;
                while t < n && out.len() < BATCH {
                    if !self.matched[t] {
                        let mut row = vec![Value::Null; self.outer_width];
                        row.extend(self.inner_rows[t].iter().cloned());
                        out.push(row);
                    }
                    t += 1;
                }
                self.tail_pos = Some(t);
                break;
            }
            if self.outer_pos >= self.outer_buf.len() {
                if self.outer_done {
                    break;
                }
                match self.outer.next_batch(cx)? {
                    Some(b) => {
                        self.outer_buf = b;
                        self.outer_pos = 0;
                        continue;
                    }
                    None => {
                        self.outer_done = true;
                        if matches!(self.join, JoinType::Right | JoinType::Full) {
                            self.tail_pos = Some(0);
                            continue;
                        }
                        break;
                    }
                }
            }
            let o = std::mem::take(&mut self.outer_buf[self.outer_pos]);
            self.outer_pos += 1;
            let mut matched = false;
            if let Some(k) = eval_keys(&self.outer_keys, &o, cx)? {
                if let Some(cands) = self.table.get(&k) {
                    for &i in cands {
                        let mut combined = o.clone();
                        combined.extend(self.inner_rows[i].iter().cloned());
                        if !passes(&self.residual, &combined, cx)? {
                            continue;
                        }
                        matched = true;
                        self.matched[i] = true;
                        match self.join {
                            JoinType::Semi | JoinType::Anti => break,
                            _ => out.push(combined),
                        }
                    }
                }
            }
            match self.join {
                JoinType::Semi if matched => out.push(o),
                JoinType::Anti if !matched => out.push(o),
                JoinType::Left | JoinType::Full if !matched => {
                    let mut row = o;
                    row.extend(std::iter::repeat_n(Value::Null, self.inner_width));
                    out.push(row);
                }
                _ => {}
            }
        }
        Ok(self.c.emit(out))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.outer.close(cx);
        self.inner.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.outer.as_ref(), self.inner.as_ref()]
    }
}

struct MergeJoinOp {
    outer: Box<dyn Operator>,
    inner: Box<dyn Operator>,
    join: JoinType,
    outer_keys: Vec<usize>,
    inner_keys: Vec<usize>,
    residual: Option<Expr>,
    inner_width: usize,
    outer_width: usize,
    out: Option<Vec<Tuple>>,
    pos: usize,
    mem: Mem,
    c: Counters,
}

fn has_null_key(r: &[Value], keys: &[usize]) -> bool {
    keys.iter().any(|&k| r.get(k).is_none_or(Value::is_null))
}

fn cmp_keys(a: &[Value], ak: &[usize], b: &[Value], bk: &[usize]) -> Ordering {
    for (&x, &y) in ak.iter().zip(bk) {
        let o = cmp_nulls(
            a.get(x).unwrap_or(&Value::Null),
            b.get(y).unwrap_or(&Value::Null),
            false,
            false,
        );
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

impl MergeJoinOp {
    /// Merge `o` and `i`, both sorted ascending on their keys (rows with a NULL key anywhere in
    /// the order: they never match and are set aside first).
    fn merge(&self, o: Vec<Tuple>, i: Vec<Tuple>, cx: &ExecCtx<'_>) -> Result<Vec<Tuple>, PgError> {
        let mut out = Vec::new();
        let mut imatched = vec![false; i.len()];
        let left_outer = matches!(self.join, JoinType::Left | JoinType::Full);
        let null_ext = |row: &Tuple, n: usize| {
            let mut r = row.clone();
            r.extend(std::iter::repeat_n(Value::Null, n));
            r
        };
        let ok_o: Vec<usize> = (0..o.len())
            .filter(|&k| !has_null_key(&o[k], &self.outer_keys))
            .collect();
        let ok_i: Vec<usize> = (0..i.len())
            .filter(|&k| !has_null_key(&i[k], &self.inner_keys))
            .collect();
        if left_outer {
            for r in o.iter().filter(|r| has_null_key(r, &self.outer_keys)) {
                out.push(null_ext(r, self.inner_width));
            }
        }
        let (mut a, mut b) = (0, 0);
        while a < ok_o.len() {
            let orow = &o[ok_o[a]];
            while b < ok_i.len()
                && cmp_keys(&i[ok_i[b]], &self.inner_keys, orow, &self.outer_keys) == Ordering::Less
            {
                b += 1;
            }
            // The inner group with this key, and the outer group with it.
            let mut b2 = b;
            while b2 < ok_i.len()
                && cmp_keys(&i[ok_i[b2]], &self.inner_keys, orow, &self.outer_keys)
                    == Ordering::Equal
            {
                b2 += 1;
            }
            let mut a2 = a;
            while a2 < ok_o.len()
                && cmp_keys(&o[ok_o[a2]], &self.outer_keys, orow, &self.outer_keys)
                    == Ordering::Equal
            {
                a2 += 1;
            }
            for &ok in &ok_o[a..a2] {
                let orow = &o[ok];
                let mut matched = false;
                for &ik in &ok_i[b..b2] {
                    let mut combined = orow.clone();
                    combined.extend(i[ik].iter().cloned());
                    if passes(&self.residual, &combined, cx)? {
                        matched = true;
                        imatched[ik] = true;
                        out.push(combined);
                    }
                }
                if !matched && left_outer {
                    out.push(null_ext(orow, self.inner_width));
                }
            }
            a = a2;
            b = b2;
        }
        if matches!(self.join, JoinType::Right | JoinType::Full) {
            for (k, irow) in i.iter().enumerate() {
                if !imatched[k] {
                    let mut row = vec![Value::Null; self.outer_width];
                    row.extend(irow.iter().cloned());
                    out.push(row);
                }
            }
        }
        Ok(out)
    }
}

impl Operator for MergeJoinOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.out = None;
        self.pos = 0;
        self.mem = Mem::default();
        self.outer.open(cx, params)?;
        self.inner.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        if self.out.is_none() {
            let mut o = Vec::new();
            while let Some(b) = self.outer.next_batch(cx)? {
                for r in b {
                    self.mem.charge(row_bytes(&r), cx, "merge join")?;
                    o.push(r);
                }
            }
            let mut i = Vec::new();
            while let Some(b) = self.inner.next_batch(cx)? {
                for r in b {
                    self.mem.charge(row_bytes(&r), cx, "merge join")?;
                    i.push(r);
                }
            }
            self.out = Some(self.merge(o, i, cx)?);
        }
        let rows = self.out.as_ref().map_or(&[][..], |r| r.as_slice());
        let end = (self.pos + BATCH).min(rows.len());
        let b = rows[self.pos..end].to_vec();
        self.pos = end;
        Ok(self.c.emit(b))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.outer.close(cx);
        self.inner.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.outer.as_ref(), self.inner.as_ref()]
    }
}

// ---- aggregation ----

struct AggOp {
    input: Box<dyn Operator>,
    strategy: AggStrategy,
    phase: AggPhase,
    group: Vec<Expr>,
    aggs: Vec<AggCall>,
    /// Groups in first-seen order: key values and states (Sorted: the current group only).
    groups: Vec<(Tuple, Vec<Acc>)>,
    index: HashMap<Vec<u8>, usize>,
    done_input: bool,
    emit_pos: usize,
    mem: Mem,
    c: Counters,
}

impl AggOp {
    fn fresh(&self) -> Vec<Acc> {
        vec![Acc::new(); self.aggs.len()]
    }

    /// Feed one input row into the states of its group.
    fn accumulate(
        &self,
        accs: &mut [Acc],
        r: &[Value],
        cx: &ExecCtx<'_>,
    ) -> Result<usize, PgError> {
        let mut grew = 0;
        let ng = self.group.len();
        for (j, call) in self.aggs.iter().enumerate() {
            if self.phase == AggPhase::Final {
                let st = match r.get(ng + j) {
                    Some(Value::Bytea(b)) => Acc::decode(b)?,
                    _ => Acc::new(),
                };
                grew += st.approx_bytes();
                call.combine(&mut accs[j], &st)?;
                continue;
            }
            if !passes(&call.filter, r, cx)? {
                continue;
            }
            let mut args = Vec::with_capacity(call.args.len());
            for a in &call.args {
                args.push(a.eval(r, cx.eval)?);
            }
            if call.distinct
                || matches!(
                    call.kind,
                    super::AggKind::StringAgg | super::AggKind::ArrayAgg
                )
            {
                grew += args.iter().map(value_bytes).sum::<usize>();
            }
            if call.order.is_empty() {
                call.step(&mut accs[j], args)?;
            } else {
                let mut keys = Vec::with_capacity(call.order.len());
                for (k, _, _) in &call.order {
                    keys.push(k.eval(r, cx.eval)?);
                }
                grew += args.iter().chain(&keys).map(value_bytes).sum::<usize>();
                call.collect_ordered(&mut accs[j], args, keys);
            }
        }
        Ok(grew)
    }

    fn output(&self, key: &[Value], accs: &[Acc]) -> Result<Tuple, PgError> {
        let mut row = key.to_vec();
        for (call, acc) in self.aggs.iter().zip(accs) {
            row.push(match self.phase {
                AggPhase::Partial => Value::Bytea(acc.encode()?),
                _ => call.finish(acc)?,
            });
        }
        Ok(row)
    }

    fn key_of(&self, r: &[Value], cx: &ExecCtx<'_>) -> Result<Tuple, PgError> {
        let mut key = Vec::with_capacity(self.group.len());
        for g in &self.group {
            key.push(g.eval(r, cx.eval)?);
        }
        Ok(key)
    }

    /// Sorted strategy: stream groups; returns finished groups' rows.
    fn sorted_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        let mut out = Vec::new();
        while out.len() < BATCH {
            if self.done_input {
                if let Some((k, a)) = self.groups.pop() {
                    out.push(self.output(&k, &a)?);
                }
                break;
            }
            match self.input.next_batch(cx)? {
                None => self.done_input = true,
                Some(b) => {
                    for r in b {
                        let key = self.key_of(&r, cx)?;
                        let same = self
                            .groups
                            .last()
                            .is_some_and(|(k, _)| row_key(k) == row_key(&key));
                        if !same {
                            if let Some((k, a)) = self.groups.pop() {
                                out.push(self.output(&k, &a)?);
                            }
                            self.mem = Mem::default();
                            self.groups.push((key, self.fresh()));
                        }
                        let mut g = self
                            .groups
                            .pop()
                            .unwrap_or_else(|| (Vec::new(), self.fresh()));
                        let grew = self.accumulate(&mut g.1, &r, cx)?;
                        self.groups.push(g);
                        self.mem.charge(grew, cx, "aggregate")?;
                    }
                }
            }
        }
        Ok(self.c.emit(out))
    }
}

impl Operator for AggOp {
    fn open(&mut self, cx: &mut ExecCtx<'_>, params: &[Value]) -> Result<(), PgError> {
        self.c.loops += 1;
        self.groups.clear();
        self.index.clear();
        self.done_input = false;
        self.emit_pos = 0;
        self.mem = Mem::default();
        self.input.open(cx, params)
    }

    fn next_batch(&mut self, cx: &mut ExecCtx<'_>) -> Result<Option<Vec<Tuple>>, PgError> {
        cx.check_cancel()?;
        if self.strategy == AggStrategy::Sorted && !self.group.is_empty() {
            return self.sorted_batch(cx);
        }
        if !self.done_input {
            if self.group.is_empty() {
                let f = self.fresh();
                self.groups.push((Vec::new(), f));
                self.index.insert(row_key(&[]), 0);
            }
            while let Some(b) = self.input.next_batch(cx)? {
                cx.check_cancel()?;
                for r in b {
                    let key = self.key_of(&r, cx)?;
                    let k = row_key(&key);
                    let gi = match self.index.get(&k) {
                        Some(&g) => g,
                        None => {
                            self.mem.charge(
                                k.len() + row_bytes(&key) + 64 * self.aggs.len() + 48,
                                cx,
                                "hash aggregate",
                            )?;
                            let f = self.fresh();
                            self.groups.push((key, f));
                            self.index.insert(k, self.groups.len() - 1);
                            self.groups.len() - 1
                        }
                    };
                    let mut accs = std::mem::take(&mut self.groups[gi].1);
                    let grew = self.accumulate(&mut accs, &r, cx);
                    self.groups[gi].1 = accs;
                    self.mem.charge(grew?, cx, "hash aggregate")?;
                }
            }
            self.done_input = true;
        }
        let mut out = Vec::new();
        while self.emit_pos < self.groups.len() && out.len() < BATCH {
            let (k, a) = &self.groups[self.emit_pos];
            out.push(self.output(k, a)?);
            self.emit_pos += 1;
        }
        Ok(self.c.emit(out))
    }

    fn close(&mut self, cx: &mut ExecCtx<'_>) {
        self.input.close(cx);
    }

    fn actual(&self) -> (u64, u64) {
        (self.c.rows, self.c.loops)
    }

    fn children(&self) -> Vec<&dyn Operator> {
        vec![self.input.as_ref()]
    }
}
