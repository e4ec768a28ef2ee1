//! Aggregate state machinery shared by the interpreter (`exec::query`, `exec::window`) and the
//! planner's executor (`crate::plan`): PostgreSQL's (init, transition, combine, final) steps for
//! `count`, `sum`, `avg`, `min`, `max`, `bool_and`/`every`, `bool_or`, `string_agg` and
//! `array_agg`.
//!
//! A state ([`Acc`]) is plain data (serde), so a partial aggregate running on a datanode can ship
//! it to the coordinator, whose final aggregate merges states with [`combine`] (PostgreSQL's
//! `combinefn`) before [`finish`] (its `finalfn`). DISTINCT aggregates and aggregates with an
//! ORDER BY inside the call are not splittable ([`AggCall::splittable`]).

use std::cmp::Ordering;
use std::collections::HashSet;

use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

use super::{AggFn, AggSpec};
use crate::catalog::key_datum;
use crate::expr::Expr;
use crate::types::cast::compare;
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Numeric, Value};

/// Which aggregate function a call computes (PostgreSQL's `aggfnoid`, for the built-ins pgxc has).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggKind {
    /// `count(x)`: non-NULL inputs.
    Count,
    /// `count(*)`: rows.
    CountStar,
    /// `sum(x)`.
    Sum,
    /// `avg(x)`.
    Avg,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `bool_and(x)` / `every(x)`.
    BoolAnd,
    /// `bool_or(x)`.
    BoolOr,
    /// `string_agg(x, delimiter)`.
    StringAgg,
    /// `array_agg(x)` (NULL inputs kept).
    ArrayAgg,
    /// An aggregate of `crate::funcs::agg` (its state is the list of its inputs in `Acc::items`).
    Ext(crate::funcs::agg::ExtAgg),
}

impl AggKind {
    /// The SQL name, for EXPLAIN.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count | AggKind::CountStar => "count",
            AggKind::Sum => "sum",
            AggKind::Avg => "avg",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::BoolAnd => "bool_and",
            AggKind::BoolOr => "bool_or",
            AggKind::StringAgg => "string_agg",
            AggKind::ArrayAgg => "array_agg",
            AggKind::Ext(e) => e.name(),
        }
    }
}

fn kind_of(f: AggFn) -> AggKind {
    match f {
        AggFn::Count => AggKind::Count,
        AggFn::CountStar => AggKind::CountStar,
        AggFn::Sum => AggKind::Sum,
        AggFn::Avg => AggKind::Avg,
        AggFn::Min => AggKind::Min,
        AggFn::Max => AggKind::Max,
        AggFn::BoolAnd => AggKind::BoolAnd,
        AggFn::BoolOr => AggKind::BoolOr,
        AggFn::StringAgg => AggKind::StringAgg,
        AggFn::ArrayAgg => AggKind::ArrayAgg,
        AggFn::Ext(e) => AggKind::Ext(e),
    }
}

/// One bound aggregate call as plain data: the function, its argument expressions over the
/// input row, DISTINCT, FILTER, the result type and the ORDER BY inside the call
/// (`(key, descending, nulls_first)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggCall {
    /// The function.
    pub kind: AggKind,
    /// Argument expressions over the input row (`string_agg`: value and delimiter).
    pub args: Vec<Expr>,
    /// `agg(DISTINCT x)`.
    pub distinct: bool,
    /// `FILTER (WHERE ...)` over the input row.
    pub filter: Option<Expr>,
    /// The result type (as PostgreSQL resolves it: `sum(int4)` is int8, `avg(int)` numeric, ...).
    pub ty: DataType,
    /// `ORDER BY` inside the call: key expressions with (descending, nulls first).
    pub order: Vec<(Expr, bool, bool)>,
}

impl AggCall {
    /// The interpreter's bound aggregate as plain data.
    pub(super) fn from_spec(spec: &AggSpec) -> AggCall {
        AggCall {
            kind: kind_of(spec.f),
            args: spec.args.clone(),
            distinct: spec.distinct,
            filter: spec.filter.clone(),
            ty: spec.ty.clone(),
            order: spec
                .order
                .iter()
                .map(|(e, k)| (e.clone(), k.desc, k.nulls_first))
                .collect(),
        }
    }

    /// Whether the aggregate can run as Partial (per partition) + Final (combining states):
    /// every aggregate except DISTINCT ones and those with ORDER BY inside the call.
    pub fn splittable(&self) -> bool {
        !self.distinct && self.order.is_empty()
    }

    /// Feed one input row (FILTER and ORDER BY already handled by the caller: an ordered
    /// aggregate collects its inputs with [`AggCall::collect_ordered`]).
    pub fn step(&self, acc: &mut Acc, args: Vec<Value>) -> Result<(), PgError> {
        step(self.kind, &self.ty, self.distinct, acc, args)
    }

    /// Remember one input of an ordered aggregate (arguments and sort keys); [`AggCall::finish`]
    /// replays them sorted.
    pub fn collect_ordered(&self, acc: &mut Acc, args: Vec<Value>, keys: Vec<Value>) {
        acc.pending.push((args, keys));
    }

    /// The aggregate's result from its state (sorting and replaying the inputs of an ordered
    /// aggregate first).
    pub fn finish(&self, acc: &Acc) -> Result<Value, PgError> {
        if self.order.is_empty() {
            return finish(self.kind, &self.ty, acc);
        }
        let mut pending = acc.pending.clone();
        pending.sort_by(|(_, a), (_, b)| {
            for (i, (_, desc, nf)) in self.order.iter().enumerate() {
                let o = cmp_nulls(&a[i], &b[i], *desc, *nf);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        let mut fresh = Acc::new();
        for (args, _) in pending {
            self.step(&mut fresh, args)?;
        }
        finish(self.kind, &self.ty, &fresh)
    }

    /// Merge the state of a later partition (`other`) into `acc` (PostgreSQL's combine
    /// function): counts and sums add, min/max compare, bool_and/or combine, string_agg and
    /// array_agg concatenate in partition order.
    ///
    /// Errors: 22003 when an int8 sum overflows; 0A000 for a non-splittable aggregate.
    pub fn combine(&self, acc: &mut Acc, other: &Acc) -> Result<(), PgError> {
        if !self.splittable() {
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                "DISTINCT and ordered aggregates cannot be combined",
            ));
        }
        combine(self.kind, &self.ty, acc, other)
    }
}

/// One aggregate's running state (PostgreSQL's transition value), plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    /// Inputs counted (non-NULL ones, or rows for `count(*)` / `array_agg`).
    pub(crate) count: i64,
    /// Sum (int8, numeric, interval), min/max or bool_and/or so far.
    pub(crate) value: Value,
    /// Float sum (float4/float8 sum and avg).
    pub(crate) fsum: f64,
    /// `string_agg` so far.
    pub(crate) strings: Option<String>,
    /// The delimiter that came with the first `string_agg` input: put in front of this state's
    /// text when a combine appends it to an earlier partition's.
    pub(crate) first_delim: Option<String>,
    /// `array_agg` so far.
    pub(crate) items: Vec<Value>,
    /// Keys of the inputs a DISTINCT aggregate has seen.
    pub(crate) seen: HashSet<Vec<u8>>,
    /// Inputs of an ordered aggregate: (arguments, sort keys), replayed sorted at the end.
    pub(crate) pending: Vec<(Vec<Value>, Vec<Value>)>,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            count: 0,
            value: Value::Null,
            fsum: 0.0,
            strings: None,
            first_delim: None,
            items: Vec::new(),
            seen: HashSet::new(),
            pending: Vec::new(),
        }
    }
}

impl Acc {
    /// A fresh state (PostgreSQL's `initcond`).
    pub fn new() -> Acc {
        Acc::default()
    }

    /// Approximate bytes held, for operator memory accounting.
    pub fn approx_bytes(&self) -> usize {
        64 + self.strings.as_ref().map_or(0, String::len)
            + self.items.iter().map(value_bytes).sum::<usize>()
            + self.seen.iter().map(|k| k.len() + 16).sum::<usize>()
            + self
                .pending
                .iter()
                .map(|(a, k)| a.iter().chain(k).map(value_bytes).sum::<usize>())
                .sum::<usize>()
    }

    /// The state as bytes (a partial aggregate's output column, bytea).
    pub fn encode(&self) -> Result<Vec<u8>, PgError> {
        postcard::to_allocvec(self)
            .map_err(|e| PgError::new(SqlState::InternalError, format!("aggregate state: {e}")))
    }

    /// A state from [`Acc::encode`]'s bytes. Errors: XX001 if they do not decode.
    pub fn decode(b: &[u8]) -> Result<Acc, PgError> {
        postcard::from_bytes(b)
            .map_err(|e| PgError::new(SqlState::DataCorrupted, format!("aggregate state: {e}")))
    }
}

/// Approximate bytes one value occupies in memory.
pub fn value_bytes(v: &Value) -> usize {
    32 + match v {
        Value::Text(s) | Value::Json(s) | Value::Jsonb(s) => s.len(),
        Value::Bytea(b) => b.len(),
        Value::Numeric(_) => 32,
        Value::Array(items) => items.iter().map(value_bytes).sum(),
        _ => 0,
    }
}

/// NULL-aware ordering of one sort key (PostgreSQL's defaults: NULLs sort as larger than any
/// value, so last ascending and first descending unless NULLS FIRST/LAST says otherwise).
pub fn cmp_nulls(a: &Value, b: &Value, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = compare(a, b).unwrap_or(Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// The grouping / DISTINCT key of some values: equal under SQL `=` (or both NULL) gives equal
/// bytes (the index-key encoding).
pub fn row_key(vals: &[Value]) -> Vec<u8> {
    let d: Vec<_> = vals.iter().map(key_datum).collect();
    pgxc_storage::keycode::encode_key(&d).bytes
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(i64::from(*x)),
        Value::Int4(x) => Some(i64::from(*x)),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

fn numeric_of(v: &Value) -> Option<Numeric> {
    match v {
        Value::Numeric(n) => Some(n.clone()),
        other => int_of(other).map(Numeric::from_i64),
    }
}

fn float_of(v: &Value) -> f64 {
    match v {
        Value::Float4(x) => f64::from(*x),
        Value::Float8(x) => *x,
        Value::Numeric(n) => n.to_f64(),
        other => int_of(other).unwrap_or(0) as f64,
    }
}

fn overflow(ty: &str) -> PgError {
    PgError::new(
        SqlState::NumericValueOutOfRange,
        format!("{ty} out of range"),
    )
}

/// Add `b` to the running sum `a` (int8 / interval / numeric sums; float sums use `fsum`).
fn add_sum(ty: &DataType, kind: AggKind, a: &Value, b: &Value) -> Result<Value, PgError> {
    Ok(match ty {
        DataType::Int8 if kind == AggKind::Sum => {
            if a.is_null() {
                return Ok(b.clone());
            }
            let cur = int_of(a).unwrap_or(0);
            let x = int_of(b).unwrap_or(0);
            Value::Int8(cur.checked_add(x).ok_or_else(|| overflow("bigint"))?)
        }
        DataType::Interval => match (a, b) {
            (Value::Interval(x), Value::Interval(y)) => {
                Value::Interval(crate::types::datetime::interval_add(x, y)?)
            }
            (Value::Null, _) => b.clone(),
            _ => a.clone(),
        },
        _ => {
            if b.is_null() {
                return Ok(a.clone());
            }
            let x = numeric_of(b).unwrap_or_else(Numeric::zero);
            Value::Numeric(match a {
                Value::Numeric(n) => n.add(&x)?,
                _ => x,
            })
        }
    })
}

fn is_float(ty: &DataType) -> bool {
    matches!(ty, DataType::Float4 | DataType::Float8)
}

fn step(
    kind: AggKind,
    ty: &DataType,
    distinct: bool,
    acc: &mut Acc,
    args: Vec<Value>,
) -> Result<(), PgError> {
    let a0 = args.first().cloned().unwrap_or(Value::Null);
    let keeps_nulls = matches!(kind, AggKind::Ext(e) if e.keeps_nulls());
    if kind != AggKind::CountStar && kind != AggKind::ArrayAgg && !keeps_nulls && a0.is_null() {
        return Ok(());
    }
    if distinct && !acc.seen.insert(row_key(&args)) {
        return Ok(());
    }
    acc.count += 1;
    match kind {
        AggKind::Count | AggKind::CountStar => {}
        AggKind::Sum | AggKind::Avg => {
            if is_float(ty) {
                acc.fsum += float_of(&a0);
            } else {
                acc.value = add_sum(ty, kind, &acc.value, &a0)?;
            }
        }
        AggKind::Min | AggKind::Max => {
            let replace = acc.value.is_null() || {
                let o = compare(&a0, &acc.value).unwrap_or(Ordering::Equal);
                if kind == AggKind::Min {
                    o == Ordering::Less
                } else {
                    o == Ordering::Greater
                }
            };
            if replace {
                acc.value = a0;
            }
        }
        AggKind::BoolAnd | AggKind::BoolOr => {
            let b = matches!(a0, Value::Bool(true));
            acc.value = Value::Bool(match &acc.value {
                Value::Bool(c) => {
                    if kind == AggKind::BoolAnd {
                        *c && b
                    } else {
                        *c || b
                    }
                }
                _ => b,
            });
        }
        AggKind::StringAgg => {
            let s = match &a0 {
                Value::Text(s) => s.clone(),
                other => other.to_text(&DataType::Text, &TimeZone::default()),
            };
            let delim = match args.get(1) {
                Some(Value::Text(d)) => Some(d.clone()),
                _ => None,
            };
            match &mut acc.strings {
                None => {
                    acc.strings = Some(s);
                    acc.first_delim = delim;
                }
                Some(cur) => {
                    if let Some(d) = delim {
                        cur.push_str(&d);
                    }
                    cur.push_str(&s);
                }
            }
        }
        AggKind::ArrayAgg => acc.items.push(a0),
        AggKind::Ext(e) => match e.input(args)? {
            Some(item) => acc.items.push(item),
            None => acc.count -= 1,
        },
    }
    Ok(())
}

fn combine(kind: AggKind, ty: &DataType, acc: &mut Acc, other: &Acc) -> Result<(), PgError> {
    if other.count == 0 {
        return Ok(());
    }
    if acc.count == 0 {
        *acc = other.clone();
        return Ok(());
    }
    acc.count += other.count;
    match kind {
        AggKind::Count | AggKind::CountStar => {}
        AggKind::Sum | AggKind::Avg => {
            if is_float(ty) {
                acc.fsum += other.fsum;
            } else {
                acc.value = add_sum(ty, kind, &acc.value, &other.value)?;
            }
        }
        AggKind::Min | AggKind::Max => {
            let o = compare(&other.value, &acc.value).unwrap_or(Ordering::Equal);
            let better = if kind == AggKind::Min {
                o == Ordering::Less
            } else {
                o == Ordering::Greater
            };
            if acc.value.is_null() || (!other.value.is_null() && better) {
                acc.value = other.value.clone();
            }
        }
        AggKind::BoolAnd | AggKind::BoolOr => {
            let (a, b) = (
                matches!(acc.value, Value::Bool(true)),
                matches!(other.value, Value::Bool(true)),
            );
            acc.value = Value::Bool(if kind == AggKind::BoolAnd {
                a && b
            } else {
                a || b
            });
        }
        AggKind::StringAgg => match (&mut acc.strings, &other.strings) {
            (None, Some(s)) => {
                acc.strings = Some(s.clone());
                acc.first_delim = other.first_delim.clone();
            }
            (Some(cur), Some(s)) => {
                if let Some(d) = &other.first_delim {
                    cur.push_str(d);
                }
                cur.push_str(s);
            }
            _ => {}
        },
        AggKind::ArrayAgg | AggKind::Ext(_) => acc.items.extend(other.items.iter().cloned()),
    }
    Ok(())
}

fn finish(kind: AggKind, ty: &DataType, acc: &Acc) -> Result<Value, PgError> {
    Ok(match kind {
        AggKind::Ext(e) => e.finish(ty, &acc.items)?,
        AggKind::Count | AggKind::CountStar => Value::Int8(acc.count),
        _ if acc.count == 0 => Value::Null,
        AggKind::Sum => match ty {
            DataType::Float4 => Value::Float4(acc.fsum as f32),
            DataType::Float8 => Value::Float8(acc.fsum),
            _ => acc.value.clone(),
        },
        AggKind::Avg => match ty {
            DataType::Float8 => Value::Float8(acc.fsum / acc.count as f64),
            DataType::Interval => match &acc.value {
                Value::Interval(iv) => {
                    Value::Interval(crate::types::datetime::interval_div(iv, acc.count as f64)?)
                }
                _ => Value::Null,
            },
            _ => match &acc.value {
                Value::Numeric(n) => Value::Numeric(n.div(&Numeric::from_i64(acc.count))?),
                _ => Value::Null,
            },
        },
        AggKind::Min | AggKind::Max | AggKind::BoolAnd | AggKind::BoolOr => acc.value.clone(),
        AggKind::StringAgg => acc.strings.clone().map(Value::Text).unwrap_or(Value::Null),
        AggKind::ArrayAgg => Value::Array(acc.items.clone()),
    })
}

impl AggSpec {
    /// Feed one input row's arguments (the interpreter's aggregate step).
    pub(super) fn step(&self, acc: &mut Acc, args: Vec<Value>) -> Result<(), PgError> {
        step(kind_of(self.f), &self.ty, self.distinct, acc, args)
    }

    /// The aggregate's result (the interpreter's final step; ordered inputs already replayed).
    pub(super) fn finish(&self, acc: &Acc) -> Result<Value, PgError> {
        finish(kind_of(self.f), &self.ty, acc)
    }
}

/// A fresh aggregate state.
pub(super) fn new_acc() -> Acc {
    Acc::new()
}

/// Feed one input row's arguments to an aggregate.
pub(super) fn agg_step(spec: &AggSpec, acc: &mut Acc, args: Vec<Value>) -> Result<(), PgError> {
    spec.step(acc, args)
}

/// An aggregate's result.
pub(super) fn agg_finish(spec: &AggSpec, acc: &Acc) -> Result<Value, PgError> {
    spec.finish(acc)
}
