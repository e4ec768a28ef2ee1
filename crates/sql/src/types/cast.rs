//! PostgreSQL 15's cast matrix (`pg_cast` plus the automatic I/O-conversion casts), value
//! conversion under a cast context, and B-tree comparison of values.

use std::cmp::Ordering;

use pgxc_common::{PgError, SqlState};

use super::datetime::{self, TimeZone, USECS_PER_DAY};
use super::numeric::Numeric;
use super::text::{check_length, parse_text, truncate_chars};
use super::{DataType, Value};

/// Where a cast is being applied (`pg_cast.castcontext`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CastContext {
    /// Applied silently in expressions (`i`).
    Implicit,
    /// Applied when storing into a column (`a`), and explicitly.
    Assignment,
    /// Only with `CAST(x AS t)` / `x::t` (`e`).
    Explicit,
}

/// The least permissive context in which a cast from `from` to `to` exists, or `None` if PostgreSQL
/// has no such cast. Same type (ignoring typmods) is `Implicit` (a length coercion at most).
pub fn cast_context(from: &DataType, to: &DataType) -> Option<CastContext> {
    use CastContext::*;
    use DataType as T;
    if from.without_typmod() == to.without_typmod() {
        return Some(Implicit);
    }
    let rank = |t: &DataType| match t {
        T::Int2 => 0,
        T::Int4 => 1,
        T::Int8 => 2,
        _ => 9,
    };
    Some(match (from, to) {
        (T::Unknown, _) => Implicit,
        (a, b) if a.is_integer() && b.is_integer() => {
            if rank(a) < rank(b) {
                Implicit
            } else {
                Assignment
            }
        }
        (a, T::Float4 | T::Float8 | T::Numeric(_)) if a.is_integer() => Implicit,
        (T::Float4, T::Float8) => Implicit,
        (T::Float8, T::Float4) => Assignment,
        (T::Float4 | T::Float8, b) if b.is_integer() => Assignment,
        (T::Float4 | T::Float8, T::Numeric(_)) => Assignment,
        (T::Numeric(_), b) if b.is_integer() => Assignment,
        (T::Numeric(_), T::Float4 | T::Float8) => Implicit,
        (T::Int4, T::Bool) | (T::Bool, T::Int4) => Explicit,
        (a, b) if a.is_string() && b.is_string() => Implicit,
        (T::Date, T::Timestamp | T::Timestamptz) => Implicit,
        (T::Timestamp, T::Timestamptz) => Implicit,
        (T::Timestamptz, T::Timestamp) => Assignment,
        (T::Timestamp | T::Timestamptz, T::Date | T::Time) => Assignment,
        (T::Time, T::Interval) => Implicit,
        (T::Time, T::Timetz) => Implicit,
        (T::Cidr, T::Inet) => Implicit,
        (T::Inet, T::Cidr) => Assignment,
        (T::Int4 | T::Int8 | T::Numeric(_), T::Money) | (T::Money, T::Numeric(_)) => Assignment,
        (T::Timetz, T::Time) | (T::Timestamptz, T::Timetz) => Assignment,
        (T::Interval, T::Time) => Assignment,
        (T::Json, T::Jsonb) | (T::Jsonb, T::Json) => Assignment,
        (
            T::Jsonb,
            T::Bool | T::Int2 | T::Int4 | T::Int8 | T::Float4 | T::Float8 | T::Numeric(_),
        ) => Explicit,
        (T::Array(a), T::Array(b)) => cast_context(a, b)?,
        // Automatic I/O conversion casts: to a string type by assignment, from one explicitly.
        (_, b) if b.is_string() => Assignment,
        (a, _) if a.is_string() => Explicit,
        _ => return None,
    })
}

/// Whether `from` can be cast to `to` in context `ctx`.
pub fn can_cast(from: &DataType, to: &DataType, ctx: CastContext) -> bool {
    cast_context(from, to).is_some_and(|c| c <= ctx)
}

fn cannot_cast(from: &DataType, to: &DataType) -> PgError {
    PgError::new(
        SqlState::CannotCoerce,
        format!("cannot cast type {} to {}", from.name(), to.name()),
    )
}

fn int_range(v: i64, to: &DataType) -> Result<Value, PgError> {
    match to {
        DataType::Int2 => i16::try_from(v)
            .map(Value::Int2)
            .map_err(|_| PgError::new(SqlState::NumericValueOutOfRange, "smallint out of range")),
        DataType::Int4 => i32::try_from(v)
            .map(Value::Int4)
            .map_err(|_| PgError::new(SqlState::NumericValueOutOfRange, "integer out of range")),
        _ => Ok(Value::Int8(v)),
    }
}

fn int_type_name(t: &DataType) -> &'static str {
    match t {
        DataType::Int2 => "smallint",
        DataType::Int4 => "integer",
        _ => "bigint",
    }
}

/// `float8 → int` as PostgreSQL's `dtoi4`: `rint` (half to even), 22003 out of range (also NaN).
fn float_to_int(f: f64, to: &DataType) -> Result<Value, PgError> {
    let r = f.round_ties_even();
    let (min, max) = match to {
        DataType::Int2 => (i16::MIN as f64, i16::MAX as f64 + 1.0),
        DataType::Int4 => (i32::MIN as f64, i32::MAX as f64 + 1.0),
        _ => (i64::MIN as f64, -(i64::MIN as f64)),
    };
    if r.is_nan() || r < min || r >= max {
        return Err(PgError::new(
            SqlState::NumericValueOutOfRange,
            format!("{} out of range", int_type_name(to)),
        ));
    }
    int_range(r as i64, to)
}

fn float8_to_float4(f: f64) -> Result<f32, PgError> {
    let r = f as f32;
    if r.is_infinite() && !f.is_infinite() {
        return Err(PgError::new(
            SqlState::NumericValueOutOfRange,
            "value out of range: overflow",
        ));
    }
    if r == 0.0 && f != 0.0 {
        return Err(PgError::new(
            SqlState::NumericValueOutOfRange,
            "value out of range: underflow",
        ));
    }
    Ok(r)
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(*x as i64),
        Value::Int4(x) => Some(*x as i64),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float4(x) => Some(*x as f64),
        Value::Float8(x) => Some(*x),
        _ => None,
    }
}

/// Apply `to`'s type modifier to a value already of `to`'s base type: `varchar(n)`/`char(n)`
/// truncate when `explicit`, else 22001 (trailing spaces excepted); `numeric(p,s)` rounds.
pub fn apply_typmod(v: Value, to: &DataType, explicit: bool) -> Result<Value, PgError> {
    Ok(match (v, to) {
        (Value::Text(s), DataType::Varchar(Some(n))) => Value::Text(if explicit {
            truncate_chars(&s, *n)
        } else {
            check_length(&s, *n, to)?
        }),
        (Value::Text(s), DataType::Char(n)) => {
            let s = if explicit {
                truncate_chars(&s, *n)
            } else {
                check_length(&s, *n, to)?
            };
            let len = s.chars().count();
            let mut s = s;
            if len < *n as usize {
                s.extend(std::iter::repeat_n(' ', *n as usize - len));
            }
            Value::Text(s)
        }
        (Value::Numeric(x), DataType::Numeric(Some((p, s)))) => {
            Value::Numeric(x.apply_typmod(*p, *s)?)
        }
        (Value::Text(s), DataType::Name | DataType::QChar) => {
            super::text::parse_text(to, &s, &TimeZone::utc())?
        }
        (Value::Array(items), DataType::Array(elem)) => Value::Array(
            items
                .into_iter()
                .map(|i| apply_typmod(i, elem, explicit))
                .collect::<Result<_, _>>()?,
        ),
        (v, _) => v,
    })
}

/// Convert `v` of type `from` to type `to` as a cast in context `ctx` would (42846 when PostgreSQL
/// has no such cast in that context). `tz` is the session time zone (timestamptz conversions and
/// text I/O).
pub fn cast_value(
    v: Value,
    from: &DataType,
    to: &DataType,
    ctx: CastContext,
    tz: &TimeZone,
) -> Result<Value, PgError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match cast_context(from, to) {
        Some(c) if c <= ctx => {}
        _ => return Err(cannot_cast(from, to)),
    }
    let explicit = ctx == CastContext::Explicit;
    let converted = convert(v, from, to, tz)?;
    apply_typmod(converted, to, explicit)
}

fn convert(v: Value, from: &DataType, to: &DataType, tz: &TimeZone) -> Result<Value, PgError> {
    use DataType as T;
    if from.without_typmod() == to.without_typmod() {
        return Ok(v);
    }
    // Text I/O: from unknown or string types into anything but strings.
    if (from.is_string() || *from == T::Unknown) && !to.is_string() {
        let s = match v {
            Value::Text(s) => s,
            other => other.to_text(from, tz),
        };
        return parse_text(&to.without_typmod(), &s, tz);
    }
    if to.is_string() {
        return Ok(match v {
            Value::Text(s) => {
                // char(n) → text/varchar drops the padding.
                if matches!(from, T::Char(_)) && !matches!(to, T::Char(_)) {
                    Value::Text(s.trim_end_matches(' ').to_string())
                } else {
                    Value::Text(s)
                }
            }
            Value::Bool(b) => {
                // bool → string types is `true`/`false` (booltext), unlike boolout's t/f.
                Value::Text(if b { "true" } else { "false" }.into())
            }
            other => Value::Text(other.to_text(from, tz)),
        });
    }
    match (from, to, &v) {
        (T::Cidr, T::Inet, Value::Text(s)) => {
            let n = super::inet::parse_inet(s, true)?;
            return Ok(Value::Text(super::inet::format_inet(&n, false)));
        }
        (T::Inet, T::Cidr, Value::Text(s)) => {
            // inet → cidr drops the host bits (`network()`).
            let mut n = super::inet::parse_inet(s, false)?;
            n.clear_host_bits();
            return Ok(Value::Text(super::inet::format_inet(&n, true)));
        }
        _ => {}
    }
    if *from == T::Money || *to == T::Money {
        return super::money::convert(v, from, to);
    }
    if let (Some(i), true) = (as_i64(&v), to.is_integer()) {
        return int_range(i, to);
    }
    Ok(match (v, to) {
        (Value::Int2(x), T::Float4) => Value::Float4(x as f32),
        (Value::Int4(x), T::Float4) => Value::Float4(x as f32),
        (Value::Int8(x), T::Float4) => Value::Float4(x as f32),
        (Value::Int2(x), T::Float8) => Value::Float8(x as f64),
        (Value::Int4(x), T::Float8) => Value::Float8(x as f64),
        (Value::Int8(x), T::Float8) => Value::Float8(x as f64),
        (v @ (Value::Int2(_) | Value::Int4(_) | Value::Int8(_)), T::Numeric(_)) => {
            Value::Numeric(Numeric::from_i64(as_i64(&v).unwrap_or(0)))
        }
        (Value::Float4(f), T::Float8) => Value::Float8(f as f64),
        (Value::Float8(f), T::Float4) => Value::Float4(float8_to_float4(f)?),
        (v @ (Value::Float4(_) | Value::Float8(_)), t) if t.is_integer() => {
            float_to_int(as_f64(&v).unwrap_or(f64::NAN), t)?
        }
        (Value::Float4(f), T::Numeric(_)) => Value::Numeric(Numeric::from_float(f as f64, 6)?),
        (Value::Float8(f), T::Numeric(_)) => Value::Numeric(Numeric::from_float(f, 15)?),
        (Value::Numeric(n), t) if t.is_integer() => {
            let (min, max) = match t {
                T::Int2 => (i16::MIN as i64, i16::MAX as i64),
                T::Int4 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            int_range(n.to_int(int_type_name(t), min, max)?, t)?
        }
        (Value::Numeric(n), T::Float8) => Value::Float8(n.to_f64()),
        (Value::Numeric(n), T::Float4) => {
            let f = n.to_f64();
            let r = f as f32;
            if (r.is_infinite() && !f.is_infinite()) || (r == 0.0 && f != 0.0) {
                return Err(PgError::new(
                    SqlState::NumericValueOutOfRange,
                    format!("\"{}\" is out of range for type real", n.to_text()),
                ));
            }
            Value::Float4(r)
        }
        (v @ Value::Numeric(_), T::Numeric(_)) => v,
        (Value::Int4(x), T::Bool) => Value::Bool(x != 0),
        (Value::Bool(b), T::Int4) => Value::Int4(b as i32),
        (Value::Date(d), T::Timestamp) => Value::Timestamp(datetime::date_to_timestamp(d)?),
        (Value::Date(d), T::Timestamptz) => {
            Value::Timestamptz(datetime::date_to_timestamptz(d, tz)?)
        }
        (Value::Timestamp(t), T::Timestamptz) => Value::Timestamptz(datetime::local_to_utc(t, tz)?),
        (Value::Timestamptz(t), T::Timestamp) => Value::Timestamp(datetime::utc_to_local(t, tz)?),
        (Value::Timestamp(t), T::Date) => Value::Date(datetime::timestamp_to_date(t)),
        (Value::Timestamptz(t), T::Date) => {
            Value::Date(datetime::timestamp_to_date(datetime::utc_to_local(t, tz)?))
        }
        (Value::Timestamp(t), T::Time) => {
            if t == datetime::TS_NEG_INF || t == datetime::TS_POS_INF {
                return Ok(Value::Null);
            }
            Value::Time(t.rem_euclid(USECS_PER_DAY))
        }
        (Value::Timestamptz(t), T::Time) => {
            if t == datetime::TS_NEG_INF || t == datetime::TS_POS_INF {
                return Ok(Value::Null);
            }
            Value::Time(datetime::utc_to_local(t, tz)?.rem_euclid(USECS_PER_DAY))
        }
        (Value::Time(t), T::Timetz) => {
            // time_timetz: the session zone's offset on the transaction's date.
            let day = tz.now.unwrap_or(0).div_euclid(USECS_PER_DAY);
            let off = tz.offset_at_local(day.saturating_mul(USECS_PER_DAY).saturating_add(t));
            Value::Timetz(t, off)
        }
        (Value::Timetz(t, _), T::Time) => Value::Time(t),
        (Value::Timestamptz(t), T::Timetz) => {
            if t == datetime::TS_NEG_INF || t == datetime::TS_POS_INF {
                return Ok(Value::Null);
            }
            let off = tz.offset_at_utc(t);
            let local = datetime::utc_to_local(t, tz)?;
            Value::Timetz(local.rem_euclid(USECS_PER_DAY), off)
        }
        (Value::Time(t), T::Interval) => Value::Interval(super::Interval {
            months: 0,
            days: 0,
            micros: t,
        }),
        (Value::Interval(iv), T::Time) => Value::Time(iv.micros.rem_euclid(USECS_PER_DAY)),
        (Value::Json(s), T::Jsonb) => Value::Jsonb(super::text::parse_jsonb(&s)?),
        (Value::Jsonb(s), T::Json) => Value::Json(s),
        (Value::Jsonb(s), t) => jsonb_scalar(&s, t)?,
        (Value::Array(items), T::Array(to_elem)) => {
            let from_elem = from.element().cloned().unwrap_or(T::Unknown);
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                out.push(if i.is_null() {
                    Value::Null
                } else {
                    convert(i, &from_elem, to_elem, tz)?
                });
            }
            Value::Array(out)
        }
        (v, t) => {
            return Err(PgError::new(
                SqlState::InternalError,
                format!("unexpected value {v:?} for a cast to {}", t.name()),
            ))
        }
    })
}

/// `jsonb::bool` / `jsonb::numeric` / ...: only from a matching JSON scalar.
fn jsonb_scalar(s: &str, to: &DataType) -> Result<Value, PgError> {
    let kind = match s.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "numeric",
    };
    let err = || {
        PgError::new(
            SqlState::InvalidParameterValue,
            format!("cannot cast jsonb {kind} to type {}", to.name()),
        )
    };
    match (kind, to) {
        ("boolean", DataType::Bool) => Ok(Value::Bool(s == "true")),
        ("numeric", _) => {
            let n = Numeric::parse(s)?;
            convert(
                Value::Numeric(n),
                &DataType::Numeric(None),
                to,
                &TimeZone::utc(),
            )
        }
        _ => Err(err()),
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    // PostgreSQL: NaN = NaN and NaN > everything else; -0 = 0.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// PostgreSQL B-tree order of two non-NULL values of the same type (also across int2/int4/int8,
/// float4/float8, integer/numeric and date/timestamp). `None` for NULLs, incomparable types, and
/// `json` (which has no ordering). Text compares bytewise (the "C" collation).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value as V;
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return Some(x.cmp(&y));
    }
    Some(match (a, b) {
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        (V::Float4(_) | V::Float8(_), V::Float4(_) | V::Float8(_)) => {
            cmp_f64(as_f64(a)?, as_f64(b)?)
        }
        (V::Float4(_) | V::Float8(_), V::Int2(_) | V::Int4(_) | V::Int8(_)) => {
            cmp_f64(as_f64(a)?, as_i64(b)? as f64)
        }
        (V::Int2(_) | V::Int4(_) | V::Int8(_), V::Float4(_) | V::Float8(_)) => {
            cmp_f64(as_i64(a)? as f64, as_f64(b)?)
        }
        (V::Numeric(x), V::Numeric(y)) => x.cmp_pg(y),
        (V::Numeric(x), _) if as_i64(b).is_some() => x.cmp_pg(&Numeric::from_i64(as_i64(b)?)),
        (_, V::Numeric(y)) if as_i64(a).is_some() => Numeric::from_i64(as_i64(a)?).cmp_pg(y),
        (V::Text(x), V::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::Bytea(x), V::Bytea(y)) => x.cmp(y),
        (V::Date(x), V::Date(y)) => x.cmp(y),
        (V::Time(x), V::Time(y)) => x.cmp(y),
        (V::Timetz(x, xo), V::Timetz(y, yo)) => {
            // timetz_cmp: by UTC time, then by zone (west of UTC first... as PostgreSQL).
            let ux = x - *xo as i64 * 1_000_000;
            let uy = y - *yo as i64 * 1_000_000;
            ux.cmp(&uy).then_with(|| yo.cmp(xo))
        }
        (V::Timestamp(x), V::Timestamp(y)) | (V::Timestamptz(x), V::Timestamptz(y)) => x.cmp(y),
        (V::Date(x), V::Timestamp(y)) => datetime::date_to_timestamp(*x).ok()?.cmp(y),
        (V::Timestamp(x), V::Date(y)) => x.cmp(&datetime::date_to_timestamp(*y).ok()?),
        (V::Interval(x), V::Interval(y)) => {
            datetime::interval_cmp_value(x).cmp(&datetime::interval_cmp_value(y))
        }
        (V::Uuid(x), V::Uuid(y)) => x.cmp(y),
        // TODO(types): jsonb's own ordering (object > array > boolean > number > string > null).
        (V::Jsonb(x), V::Jsonb(y)) => x.cmp(y),
        (V::Array(x), V::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = match (p.is_null(), q.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => compare(p, q)?,
                };
                if o != Ordering::Equal {
                    return Some(o);
                }
            }
            x.len().cmp(&y.len())
        }
        _ => return None,
    })
}

/// `bpchar` comparison semantics: trailing spaces are insignificant.
pub fn compare_bpchar(a: &str, b: &str) -> Ordering {
    a.trim_end_matches(' ')
        .as_bytes()
        .cmp(b.trim_end_matches(' ').as_bytes())
}
