//! Aggregates beyond the core ones of `exec::agg`: the statistics family (`stddev*`, `variance`,
//! `var_*`), `bit_and`/`bit_or`/`bit_xor`, the two-variable regression family (`corr`,
//! `covar_*`, `regr_*`), the ordered-set aggregates (`percentile_cont`, `percentile_disc`,
//! `mode`) and the json aggregates (`jsonb_agg`, `json_agg`, `jsonb_object_agg`,
//! `json_object_agg`).
//!
//! Their transition state is the list of inputs (`Acc::items` in `exec::agg`: one value per input
//! row, [`ExtAgg::input`]), so combining two partial states is concatenation; the final function
//! ([`ExtAgg::finish`]) computes with PostgreSQL's formulas: numeric `N * Sxx - Sx^2` over
//! `N * (N - 1)` with `select_div_scale` for exact inputs, the Youngs-Cramer accumulation of
//! `float8_accum` / `float8_regr_accum` for floats.

use std::cmp::Ordering;

use bigdecimal::num_bigint::BigInt;
use bigdecimal::{BigDecimal, Signed, Zero};
use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

use crate::types::cast::compare;
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Numeric, Value};

/// An aggregate implemented here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtAgg {
    /// `stddev` / `stddev_samp`.
    StddevSamp,
    /// `stddev_pop`.
    StddevPop,
    /// `variance` / `var_samp`.
    VarSamp,
    /// `var_pop`.
    VarPop,
    /// `bit_and`.
    BitAnd,
    /// `bit_or`.
    BitOr,
    /// `bit_xor`.
    BitXor,
    /// `corr(y, x)`.
    Corr,
    /// `covar_pop(y, x)`.
    CovarPop,
    /// `covar_samp(y, x)`.
    CovarSamp,
    /// `regr_slope(y, x)`.
    RegrSlope,
    /// `regr_intercept(y, x)`.
    RegrIntercept,
    /// `regr_count(y, x)`.
    RegrCount,
    /// `regr_r2(y, x)`.
    RegrR2,
    /// `regr_avgx(y, x)`.
    RegrAvgX,
    /// `regr_avgy(y, x)`.
    RegrAvgY,
    /// `regr_sxx(y, x)`.
    RegrSxx,
    /// `regr_syy(y, x)`.
    RegrSyy,
    /// `regr_sxy(y, x)`.
    RegrSxy,
    /// `percentile_cont(f) WITHIN GROUP (ORDER BY x)`.
    PercentileCont,
    /// `percentile_disc(f) WITHIN GROUP (ORDER BY x)`.
    PercentileDisc,
    /// `mode() WITHIN GROUP (ORDER BY x)`.
    Mode,
    /// `jsonb_agg(x)`.
    JsonbAgg,
    /// `json_agg(x)`.
    JsonAgg,
    /// `jsonb_object_agg(k, v)`.
    JsonbObjectAgg,
    /// `json_object_agg(k, v)`.
    JsonObjectAgg,
}

fn err(code: SqlState, msg: impl Into<String>) -> PgError {
    PgError::new(code, msg)
}

fn no_func(name: &str, types: &[DataType]) -> PgError {
    let t: Vec<String> = types.iter().map(DataType::name).collect();
    err(
        SqlState::UndefinedFunction,
        format!("function {name}({}) does not exist", t.join(", ")),
    )
}

fn f64_of(v: &Value) -> f64 {
    match v {
        Value::Float4(x) => f64::from(*x),
        Value::Float8(x) => *x,
        Value::Numeric(n) => n.to_f64(),
        Value::Int2(x) => f64::from(*x),
        Value::Int4(x) => f64::from(*x),
        Value::Int8(x) => *x as f64,
        _ => f64::NAN,
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(i64::from(*x)),
        Value::Int4(x) => Some(i64::from(*x)),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

impl ExtAgg {
    /// The aggregate called `name`, if it is one of these.
    pub fn from_name(name: &str) -> Option<ExtAgg> {
        use ExtAgg::*;
        Some(match name {
            "stddev" | "stddev_samp" => StddevSamp,
            "stddev_pop" => StddevPop,
            "variance" | "var_samp" => VarSamp,
            "var_pop" => VarPop,
            "bit_and" => BitAnd,
            "bit_or" => BitOr,
            "bit_xor" => BitXor,
            "corr" => Corr,
            "covar_pop" => CovarPop,
            "covar_samp" => CovarSamp,
            "regr_slope" => RegrSlope,
            "regr_intercept" => RegrIntercept,
            "regr_count" => RegrCount,
            "regr_r2" => RegrR2,
            "regr_avgx" => RegrAvgX,
            "regr_avgy" => RegrAvgY,
            "regr_sxx" => RegrSxx,
            "regr_syy" => RegrSyy,
            "regr_sxy" => RegrSxy,
            "percentile_cont" => PercentileCont,
            "percentile_disc" => PercentileDisc,
            "mode" => Mode,
            "jsonb_agg" => JsonbAgg,
            "json_agg" => JsonAgg,
            "jsonb_object_agg" => JsonbObjectAgg,
            "json_object_agg" => JsonObjectAgg,
            _ => return None,
        })
    }

    /// The SQL name (for EXPLAIN).
    pub fn name(self) -> &'static str {
        use ExtAgg::*;
        match self {
            StddevSamp => "stddev_samp",
            StddevPop => "stddev_pop",
            VarSamp => "var_samp",
            VarPop => "var_pop",
            BitAnd => "bit_and",
            BitOr => "bit_or",
            BitXor => "bit_xor",
            Corr => "corr",
            CovarPop => "covar_pop",
            CovarSamp => "covar_samp",
            RegrSlope => "regr_slope",
            RegrIntercept => "regr_intercept",
            RegrCount => "regr_count",
            RegrR2 => "regr_r2",
            RegrAvgX => "regr_avgx",
            RegrAvgY => "regr_avgy",
            RegrSxx => "regr_sxx",
            RegrSyy => "regr_syy",
            RegrSxy => "regr_sxy",
            PercentileCont => "percentile_cont",
            PercentileDisc => "percentile_disc",
            Mode => "mode",
            JsonbAgg => "jsonb_agg",
            JsonAgg => "json_agg",
            JsonbObjectAgg => "jsonb_object_agg",
            JsonObjectAgg => "json_object_agg",
        }
    }

    /// Whether the call takes `WITHIN GROUP (ORDER BY x)`: its aggregated argument is that sort
    /// key, bound first, followed by the direct arguments and (added by the binder after
    /// [`ExtAgg::signature`]) a boolean constant, true for `DESC`.
    pub fn ordered_set(self) -> bool {
        matches!(
            self,
            ExtAgg::PercentileCont | ExtAgg::PercentileDisc | ExtAgg::Mode
        )
    }

    /// Whether rows whose first argument is NULL still count (the json aggregates).
    pub fn keeps_nulls(self) -> bool {
        matches!(
            self,
            ExtAgg::JsonbAgg | ExtAgg::JsonAgg | ExtAgg::JsonbObjectAgg | ExtAgg::JsonObjectAgg
        )
    }

    fn regression(self) -> bool {
        use ExtAgg::*;
        matches!(
            self,
            Corr | CovarPop
                | CovarSamp
                | RegrSlope
                | RegrIntercept
                | RegrCount
                | RegrR2
                | RegrAvgX
                | RegrAvgY
                | RegrSxx
                | RegrSyy
                | RegrSxy
        )
    }

    /// The argument types the call's arguments are coerced to (`None`: keep the argument's own
    /// type) and the result type, as PostgreSQL resolves the call. `args` are the argument types
    /// (ordered-set aggregates: the sort key first). Errors: 42883 when there is no such overload.
    pub fn signature(
        self,
        args: &[DataType],
    ) -> Result<(Vec<Option<DataType>>, DataType), PgError> {
        use ExtAgg::*;
        let name = self.name();
        let fail = || no_func(name, args);
        let t0 = args.first().cloned().unwrap_or(DataType::Unknown);
        let n = args.len();
        Ok(match self {
            StddevSamp | StddevPop | VarSamp | VarPop if n == 1 => match t0 {
                DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Numeric(_) => {
                    (vec![None], DataType::Numeric(None))
                }
                DataType::Float4 | DataType::Float8 | DataType::Unknown => {
                    (vec![Some(DataType::Float8)], DataType::Float8)
                }
                _ => return Err(fail()),
            },
            BitAnd | BitOr | BitXor if n == 1 => match t0 {
                DataType::Int2 | DataType::Int4 | DataType::Int8 => (vec![None], t0),
                DataType::Unknown => (vec![Some(DataType::Int4)], DataType::Int4),
                _ => return Err(fail()),
            },
            _ if self.regression() && n == 2 => {
                for t in args {
                    if !(t.is_numeric() || *t == DataType::Unknown) {
                        return Err(fail());
                    }
                }
                let ty = if self == RegrCount {
                    DataType::Int8
                } else {
                    DataType::Float8
                };
                (vec![Some(DataType::Float8), Some(DataType::Float8)], ty)
            }
            PercentileCont | PercentileDisc if n == 2 => {
                // A fraction array gives an array of percentiles.
                let many = matches!(args[1], DataType::Array(_));
                let frac = if many {
                    DataType::Array(Box::new(DataType::Float8))
                } else {
                    DataType::Float8
                };
                let t = if self == PercentileCont {
                    if !(t0.is_numeric() || t0 == DataType::Unknown) {
                        return Err(fail());
                    }
                    DataType::Float8
                } else if t0 == DataType::Unknown {
                    DataType::Text
                } else {
                    t0.without_typmod()
                };
                let ty = if many {
                    DataType::Array(Box::new(t.clone()))
                } else {
                    t.clone()
                };
                (vec![Some(t), Some(frac)], ty)
            }
            Mode if n == 1 => {
                let t = if t0 == DataType::Unknown {
                    DataType::Text
                } else {
                    t0.without_typmod()
                };
                (vec![Some(t.clone())], t)
            }
            JsonbAgg | JsonAgg if n == 1 => {
                let t = if self == JsonbAgg {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let a = (t0 == DataType::Unknown).then_some(DataType::Text);
                (vec![a], t)
            }
            JsonbObjectAgg | JsonObjectAgg if n == 2 => {
                let t = if self == JsonbObjectAgg {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let unk = |t: &DataType| (*t == DataType::Unknown).then_some(DataType::Text);
                (vec![unk(&args[0]), unk(&args[1])], t)
            }
            _ => return Err(fail()),
        })
    }

    /// The item one input row contributes to the state, `None` to skip the row (PostgreSQL's
    /// strict transition functions skip rows with a NULL argument).
    ///
    /// Errors: 22023 for a NULL `jsonb_object_agg` key.
    pub fn input(self, mut args: Vec<Value>) -> Result<Option<Value>, PgError> {
        use ExtAgg::*;
        let a0 = args.first().cloned().unwrap_or(Value::Null);
        Ok(match self {
            JsonbAgg | JsonAgg => Some(a0),
            JsonbObjectAgg | JsonObjectAgg => {
                if a0.is_null() {
                    return Err(err(
                        SqlState::InvalidParameterValue,
                        "field name must not be null",
                    ));
                }
                Some(Value::Array(args))
            }
            _ if self.regression() => {
                if args.iter().any(Value::is_null) {
                    None
                } else {
                    Some(Value::Array(args))
                }
            }
            PercentileCont | PercentileDisc | Mode => {
                if a0.is_null() {
                    None
                } else {
                    args.truncate(3);
                    Some(Value::Array(args))
                }
            }
            _ => (!a0.is_null()).then_some(a0),
        })
    }

    /// The result from all inputs' items (`ty`: the result type).
    ///
    /// Errors: 22003 for a percentile outside `[0, 1]` or a float overflow.
    pub fn finish(self, ty: &DataType, items: &[Value]) -> Result<Value, PgError> {
        use ExtAgg::*;
        match self {
            JsonbAgg | JsonAgg => return json_agg(self == JsonbAgg, items),
            JsonbObjectAgg | JsonObjectAgg => {
                return json_object_agg(self == JsonbObjectAgg, items)
            }
            RegrCount => return Ok(Value::Int8(items.len() as i64)),
            _ => {}
        }
        if items.is_empty() {
            return Ok(Value::Null);
        }
        match self {
            StddevSamp | StddevPop | VarSamp | VarPop => {
                let sample = matches!(self, StddevSamp | VarSamp);
                let root = matches!(self, StddevSamp | StddevPop);
                if *ty == DataType::Float8 {
                    float_var(items, sample, root)
                } else {
                    numeric_var(items, sample, root)
                }
            }
            BitAnd | BitOr | BitXor => {
                let mut acc: Option<i64> = None;
                for v in items {
                    let x = int_of(v).unwrap_or(0);
                    acc = Some(match acc {
                        None => x,
                        Some(a) => match self {
                            BitAnd => a & x,
                            BitOr => a | x,
                            _ => a ^ x,
                        },
                    });
                }
                let a = acc.unwrap_or(0);
                Ok(match ty {
                    DataType::Int2 => Value::Int2(a as i16),
                    DataType::Int4 => Value::Int4(a as i32),
                    _ => Value::Int8(a),
                })
            }
            _ if self.regression() => Ok(regression(self, items)),
            PercentileCont | PercentileDisc => percentile(self, ty, items),
            Mode => {
                let (mut vals, desc) = sort_key_items(items);
                sort_values(&mut vals, desc);
                let vals: Vec<&Value> = vals.iter().collect();
                let mut best: Option<(&Value, usize)> = None;
                let mut i = 0;
                while i < vals.len() {
                    let mut j = i + 1;
                    while j < vals.len() && compare(vals[i], vals[j]) == Some(Ordering::Equal) {
                        j += 1;
                    }
                    if best.is_none_or(|(_, n)| j - i > n) {
                        best = Some((vals[i], j - i));
                    }
                    i = j;
                }
                Ok(best.map_or(Value::Null, |(v, _)| v.clone()))
            }
            _ => Ok(Value::Null),
        }
    }
}

/// `float8_accum` + `float8_var_samp` / `_pop` / `float8_stddev_*` (Youngs-Cramer).
fn float_var(items: &[Value], sample: bool, root: bool) -> Result<Value, PgError> {
    let (mut n, mut sx, mut sxx) = (0f64, 0f64, 0f64);
    for v in items {
        let x = f64_of(v);
        let old_n = n;
        n += 1.0;
        sx += x;
        if old_n > 0.0 {
            let tmp = x * n - sx;
            sxx += tmp * tmp / (n * old_n);
        }
    }
    let den = if sample { n - 1.0 } else { n };
    if den <= 0.0 {
        return Ok(Value::Null);
    }
    let var = sxx / den;
    Ok(Value::Float8(if root { var.sqrt() } else { var }))
}

fn to_numeric(v: &Value) -> BigDecimal {
    match v {
        Value::Numeric(Numeric::Finite(d)) => d.clone(),
        other => BigDecimal::from(int_of(other).unwrap_or(0)),
    }
}

/// `numeric_var_samp` / `_pop` / `numeric_stddev_*`: `(N * Sxx - Sx^2) / (N * (N - 1))` (or
/// `N * N`) at `select_div_scale`, square root at that scale.
fn numeric_var(items: &[Value], sample: bool, root: bool) -> Result<Value, PgError> {
    if items
        .iter()
        .any(|v| matches!(v, Value::Numeric(n) if !matches!(n, Numeric::Finite(_))))
    {
        return Ok(Value::Numeric(Numeric::NaN));
    }
    let n = items.len() as i64;
    if sample && n < 2 {
        return Ok(Value::Null);
    }
    let mut sx = BigDecimal::zero();
    let mut sxx = BigDecimal::zero();
    for v in items {
        let x = to_numeric(v);
        sxx += &x * &x;
        sx += x;
    }
    let big_n = BigDecimal::from(n);
    let num = &big_n * &sxx - &sx * &sx;
    if !num.is_positive() {
        return Ok(Value::Numeric(Numeric::zero()));
    }
    let den = if sample {
        BigDecimal::from(n * (n - 1))
    } else {
        BigDecimal::from(n) * BigDecimal::from(n)
    };
    let var = Numeric::Finite(num).div(&Numeric::Finite(den))?;
    if !root {
        return Ok(Value::Numeric(var));
    }
    let Numeric::Finite(d) = var else {
        return Ok(Value::Numeric(var));
    };
    let rscale = d.as_bigint_and_exponent().1.max(0);
    Ok(Value::Numeric(Numeric::Finite(sqrt_at(&d, rscale))))
}

/// `sqrt(d)` rounded to `rscale` digits (`sqrt_var` with a given scale).
fn sqrt_at(d: &BigDecimal, rscale: i64) -> BigDecimal {
    let (int, sc) = d.as_bigint_and_exponent();
    let k = 2 * (rscale + 1) - sc;
    let ten = BigInt::from(10);
    let n = if k >= 0 {
        int * ten.pow(k as u32)
    } else {
        int / ten.pow((-k) as u32)
    };
    let root = n.sqrt();
    let q = &root / 10;
    let r = root - &q * 10;
    let q = if r >= BigInt::from(5) { q + 1 } else { q };
    BigDecimal::new(q, rscale)
}

/// `float8_regr_accum` and the regression final functions.
fn regression(agg: ExtAgg, items: &[Value]) -> Value {
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    for v in items {
        let Value::Array(p) = v else { continue };
        let y = p.first().map_or(f64::NAN, f64_of);
        let x = p.get(1).map_or(f64::NAN, f64_of);
        let old_n = n;
        n += 1.0;
        sx += x;
        sy += y;
        if old_n > 0.0 {
            let tx = x * n - sx;
            let ty = y * n - sy;
            let scale = 1.0 / (n * old_n);
            sxx += tx * tx * scale;
            syy += ty * ty * scale;
            sxy += tx * ty * scale;
        }
    }
    let r = match agg {
        ExtAgg::CovarPop => Some(sxy / n),
        ExtAgg::CovarSamp => (n >= 2.0).then(|| sxy / (n - 1.0)),
        ExtAgg::Corr => (sxx != 0.0 && syy != 0.0).then(|| sxy / (sxx * syy).sqrt()),
        ExtAgg::RegrSlope => (sxx != 0.0).then(|| sxy / sxx),
        ExtAgg::RegrIntercept => (sxx != 0.0).then(|| (sy - sx * sxy / sxx) / n),
        ExtAgg::RegrR2 => (sxx != 0.0).then(|| {
            if syy == 0.0 {
                1.0
            } else {
                (sxy * sxy) / (sxx * syy)
            }
        }),
        ExtAgg::RegrAvgX => Some(sx / n),
        ExtAgg::RegrAvgY => Some(sy / n),
        ExtAgg::RegrSxx => Some(sxx),
        ExtAgg::RegrSyy => Some(syy),
        ExtAgg::RegrSxy => Some(sxy),
        _ => None,
    };
    r.map_or(Value::Null, Value::Float8)
}

/// `percentile_cont` (linear interpolation) / `percentile_disc` (first value whose cumulative
/// distribution reaches the fraction).
fn percentile(agg: ExtAgg, ty: &DataType, items: &[Value]) -> Result<Value, PgError> {
    let mut vals: Vec<Value> = Vec::new();
    let mut frac = Value::Null;
    let mut desc = false;
    for v in items {
        if let Value::Array(p) = v {
            vals.push(p.first().cloned().unwrap_or(Value::Null));
            frac = p.get(1).cloned().unwrap_or(Value::Null);
            desc = matches!(p.get(2), Some(Value::Bool(true)));
        }
    }
    sort_values(&mut vals, desc);
    let _ = ty;
    match frac {
        Value::Float8(f) => one_percentile(agg, &vals, f),
        Value::Array(fs) => Ok(Value::Array(
            fs.iter()
                .map(|f| match f {
                    Value::Float8(f) => one_percentile(agg, &vals, *f),
                    _ => Ok(Value::Null),
                })
                .collect::<Result<_, _>>()?,
        )),
        _ => Ok(Value::Null),
    }
}

/// One percentile of the sorted, non-empty `vals`. Errors: 22003 outside `[0, 1]`.
fn one_percentile(agg: ExtAgg, vals: &[Value], f: f64) -> Result<Value, PgError> {
    if !(0.0..=1.0).contains(&f) {
        return Err(err(
            SqlState::NumericValueOutOfRange,
            format!("percentile value {f} is not between 0 and 1"),
        ));
    }
    let n = vals.len();
    if agg == ExtAgg::PercentileDisc {
        let k = ((f * n as f64).ceil() as usize).clamp(1, n);
        return Ok(vals[k - 1].clone());
    }
    let pos = f * (n as f64 - 1.0);
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let a = f64_of(&vals[lo]);
    let b = f64_of(&vals[hi.min(n - 1)]);
    Ok(Value::Float8(if lo == hi {
        a
    } else {
        a + (b - a) * (pos - lo as f64)
    }))
}

/// The sort keys of an ordered-set aggregate's items (`[key, ..., desc]` arrays, the last element
/// the direction) and whether they sort descending.
fn sort_key_items(items: &[Value]) -> (Vec<Value>, bool) {
    let mut desc = false;
    let vals = items
        .iter()
        .map(|v| match v {
            Value::Array(p) => {
                desc = matches!(p.last(), Some(Value::Bool(true)));
                p.first().cloned().unwrap_or(Value::Null)
            }
            other => other.clone(),
        })
        .collect();
    (vals, desc)
}

fn sort_values(vals: &mut [Value], desc: bool) {
    vals.sort_by(|a, b| {
        let o = compare(a, b).unwrap_or(Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
}

/// A value as json text (types from the value itself).
fn json_text(v: &Value) -> String {
    let tz = TimeZone::default();
    let ty = type_of(v);
    let mut out = String::new();
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            out.push_str(&v.to_text(&ty, &tz))
        }
        Value::Float4(_) | Value::Float8(_) => {
            let s = v.to_text(&ty, &tz);
            if s.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(&s);
            } else {
                crate::types::text::escape_json(&s, &mut out);
            }
        }
        Value::Json(s) | Value::Jsonb(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (k, x) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&json_text(x));
            }
            out.push(']');
        }
        Value::Text(s) => crate::types::text::escape_json(s, &mut out),
        other => crate::types::text::escape_json(&other.to_text(&ty, &tz), &mut out),
    }
    out
}

fn type_of(v: &Value) -> DataType {
    match v {
        Value::Bool(_) => DataType::Bool,
        Value::Int2(_) => DataType::Int2,
        Value::Int4(_) => DataType::Int4,
        Value::Int8(_) => DataType::Int8,
        Value::Float4(_) => DataType::Float4,
        Value::Float8(_) => DataType::Float8,
        Value::Numeric(_) => DataType::Numeric(None),
        Value::Bytea(_) => DataType::Bytea,
        Value::Date(_) => DataType::Date,
        Value::Time(_) => DataType::Time,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::Timestamptz(_) => DataType::Timestamptz,
        Value::Interval(_) => DataType::Interval,
        Value::Uuid(_) => DataType::Uuid,
        Value::Json(_) => DataType::Json,
        Value::Jsonb(_) => DataType::Jsonb,
        Value::Array(items) => DataType::Array(Box::new(
            items
                .iter()
                .find(|x| !x.is_null())
                .map_or(DataType::Text, type_of),
        )),
        _ => DataType::Text,
    }
}

/// `jsonb_agg` (normalised jsonb) / `json_agg` (`[a, b]`, elements as written).
fn json_agg(jsonb: bool, items: &[Value]) -> Result<Value, PgError> {
    if items.is_empty() {
        return Ok(Value::Null);
    }
    let parts: Vec<String> = items.iter().map(json_text).collect();
    let text = format!("[{}]", parts.join(", "));
    Ok(if jsonb {
        Value::Jsonb(crate::types::json::print(&crate::types::json::parse(
            &text,
        )?))
    } else {
        Value::Json(text)
    })
}

/// `jsonb_object_agg` / `json_object_agg` (`{ "k" : v, ... }` for json, as PostgreSQL prints).
fn json_object_agg(jsonb: bool, items: &[Value]) -> Result<Value, PgError> {
    if items.is_empty() {
        return Ok(Value::Null);
    }
    let mut parts = Vec::new();
    for it in items {
        let Value::Array(p) = it else { continue };
        let k = match p.first() {
            Some(Value::Text(s)) => s.clone(),
            Some(v) => v.to_text(&type_of(v), &TimeZone::default()),
            None => String::new(),
        };
        let mut key = String::new();
        crate::types::text::escape_json(&k, &mut key);
        let v = json_text(p.get(1).unwrap_or(&Value::Null));
        parts.push(format!("{key} : {v}"));
    }
    let text = format!("{{ {} }}", parts.join(", "));
    Ok(if jsonb {
        Value::Jsonb(crate::types::json::print(&crate::types::json::parse(
            &text,
        )?))
    } else {
        Value::Json(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i32]) -> Vec<Value> {
        v.iter().map(|x| Value::Int4(*x)).collect()
    }

    fn text(v: Value) -> String {
        v.to_text(&type_of(&v), &TimeZone::default())
    }

    #[test]
    fn statistics_match_postgres() {
        let x = ints(&[1, 2, 2, 5]);
        let num = DataType::Numeric(None);
        assert_eq!(
            text(ExtAgg::StddevSamp.finish(&num, &x).unwrap()),
            "1.7320508075688773"
        );
        assert_eq!(
            text(ExtAgg::StddevPop.finish(&num, &x).unwrap()),
            "1.5000000000000000"
        );
        assert_eq!(
            text(ExtAgg::VarSamp.finish(&num, &x).unwrap()),
            "3.0000000000000000"
        );
        assert_eq!(
            text(ExtAgg::BitOr.finish(&DataType::Int4, &x).unwrap()),
            "7"
        );
        let pairs: Vec<Value> = [(1.0, 1.5), (2.0, 2.5), (5.0, 10.0)]
            .iter()
            .map(|(a, b)| Value::Array(vec![Value::Float8(*a), Value::Float8(*b)]))
            .collect();
        assert_eq!(
            ExtAgg::Corr.finish(&DataType::Float8, &pairs).unwrap(),
            Value::Float8(0.9909375519967097)
        );
        assert_eq!(
            ExtAgg::CovarPop.finish(&DataType::Float8, &pairs).unwrap(),
            Value::Float8(6.388888888888888)
        );
        let mode = ExtAgg::Mode
            .finish(
                &DataType::Text,
                &["p", "q", "p", "r"]
                    .iter()
                    .map(|s| Value::Text(s.to_string()))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert_eq!(mode, Value::Text("p".into()));
        assert_eq!(
            json_agg(true, &ints(&[1, 2, 3])).unwrap(),
            Value::Jsonb("[1, 2, 3]".into())
        );
    }
}
