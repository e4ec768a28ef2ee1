//! Scalar function families evaluated outside `expr.rs`: bitwise integer operators, numeric
//! transcendental functions with PostgreSQL's scales, the session random generator, `format()` and
//! the quoting functions, hashes, encoding conversion, bytea and array helpers, row values, json
//! constructors and a minimal jsonpath, plus the per-call row generators of set-returning functions
//! ([`srf`]).
//!
//! [`call`] is consulted by `expr::call` before its own functions: it returns `Ok(None)` for a
//! function it does not implement.

pub mod agg;
pub(crate) mod hash;
pub(crate) mod jsonpath;
pub(crate) mod math;
pub(crate) mod srf;
pub(crate) mod strings;

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use pgxc_common::{PgError, SqlState};

use crate::expr::{EvalContext, Func};
use crate::types::{DataType, Numeric, Value};

fn err(code: SqlState, msg: impl Into<String>) -> PgError {
    PgError::new(code, msg)
}

/// Sessions started so far in this process: each session's generator is seeded from its ordinal, so
/// runs are repeatable and sessions do not share a sequence.
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// The session's pseudo-random generator (`random()`, `setseed()`, `gen_random_uuid()`), seeded
/// deterministically (never from the clock); `setseed(x)` reseeds it as PostgreSQL does.
#[derive(Debug)]
pub struct SessionRng(Mutex<math::Prng>);

impl Default for SessionRng {
    fn default() -> SessionRng {
        let n = SESSIONS.fetch_add(1, AtomicOrdering::Relaxed);
        SessionRng(Mutex::new(math::Prng::new(
            0x5047_5843_0000_0000 ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )))
    }
}

impl SessionRng {
    fn with<T>(&self, f: impl FnOnce(&mut math::Prng) -> T) -> T {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    /// `random()`: uniform in `[0, 1)`.
    pub fn next_f64(&self) -> f64 {
        self.with(|p| p.next_f64())
    }

    /// `setseed(x)`. Errors: 22023 outside `[-1, 1]`.
    pub fn set_seed(&self, x: f64) -> Result<(), PgError> {
        if !(-1.0..=1.0).contains(&x) {
            return Err(err(
                SqlState::InvalidParameterValue,
                format!("setseed parameter {x} is out of allowed range [-1,1]"),
            ));
        }
        self.with(|p| *p = math::Prng::from_fseed(x));
        Ok(())
    }

    /// A version-4 UUID from the generator (`gen_random_uuid()`).
    pub fn uuid_v4(&self) -> [u8; 16] {
        let (a, b) = self.with(|p| (p.next_u64(), p.next_u64()));
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&a.to_be_bytes());
        u[8..].copy_from_slice(&b.to_be_bytes());
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        u
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(i64::from(*x)),
        Value::Int4(x) => Some(i64::from(*x)),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float4(x) => Some(f64::from(*x)),
        Value::Float8(x) => Some(*x),
        Value::Numeric(n) => Some(n.to_f64()),
        v => as_int(v).map(|x| x as f64),
    }
}

fn int_of(x: i64, ty: &DataType) -> Result<Value, PgError> {
    let range = || {
        err(
            SqlState::NumericValueOutOfRange,
            format!("{} out of range", ty.name()),
        )
    };
    Ok(match ty {
        DataType::Int2 => Value::Int2(i16::try_from(x).map_err(|_| range())?),
        DataType::Int4 => Value::Int4(i32::try_from(x).map_err(|_| range())?),
        _ => Value::Int8(x),
    })
}

/// Integer bit width of an integer type.
fn bits_of(ty: &DataType) -> u32 {
    match ty {
        DataType::Int2 => 16,
        DataType::Int4 => 32,
        _ => 64,
    }
}

/// Evaluate the functions implemented in this module; `Ok(None)` for any other.
pub(crate) fn call(
    f: Func,
    args: &[Value],
    types: &[DataType],
    ty: &DataType,
    cx: &EvalContext,
) -> Result<Option<Value>, PgError> {
    // Not strict, or without arguments.
    match f {
        Func::Random => return Ok(Some(Value::Float8(cx.rng.next_f64()))),
        Func::GenRandomUuid => return Ok(Some(Value::Uuid(cx.rng.uuid_v4()))),
        Func::Format => return strings::format(args, types, cx).map(Some),
        Func::QuoteNullable => {
            return Ok(Some(match args.first() {
                None | Some(Value::Null) => Value::Text("NULL".into()),
                Some(v) => Value::Text(strings::quote_literal(&text_of(v, &types[0], cx))),
            }))
        }
        Func::ArrayFill => return arrays_fill(args).map(Some),
        Func::ArraySetElem => return array_set(args).map(Some),
        Func::ArraySlice => return array_slice(args).map(Some),
        Func::RowValue => return Ok(Some(Value::Text(strings::record_out(args, types, &cx.tz)))),
        Func::RowToJson => {
            let text = row_to_json(args, types, cx)?;
            return Ok(Some(if *ty == DataType::Jsonb {
                Value::Jsonb(crate::types::json::print(&crate::types::json::parse(
                    &text,
                )?))
            } else {
                Value::Json(text)
            }));
        }
        Func::PgColumnSize => {
            return Ok(Some(match args.first() {
                None | Some(Value::Null) => Value::Null,
                Some(v) => Value::Int4(strings::column_size(
                    v,
                    &types[0],
                    matches!(args.get(1), Some(Value::Bool(true))),
                )),
            }))
        }
        _ => {}
    }
    if !is_ours(f, args, types) {
        return Ok(None);
    }
    if args.iter().any(Value::is_null) {
        return Ok(Some(Value::Null));
    }
    let a0 = &args[0];
    let num = |k: usize| match args.get(k) {
        Some(Value::Numeric(n)) => n.clone(),
        Some(v) => Numeric::from_float(as_f64(v).unwrap_or(0.0), 15).unwrap_or(Numeric::NaN),
        None => Numeric::NaN,
    };
    let int = |k: usize| args.get(k).and_then(as_int).unwrap_or(0);
    let text = |k: usize| match args.get(k) {
        Some(Value::Text(s)) => s.as_str(),
        _ => "",
    };
    let bytes = |k: usize| match args.get(k) {
        Some(Value::Bytea(b)) => b.clone(),
        Some(Value::Text(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    Ok(Some(match f {
        Func::BitAnd => int_of(int(0) & int(1), ty)?,
        Func::BitOr => int_of(int(0) | int(1), ty)?,
        Func::BitXor => int_of(int(0) ^ int(1), ty)?,
        Func::BitNot => int_of(!int(0), ty)?,
        Func::ShiftLeft | Func::ShiftRight => {
            let bits = bits_of(ty);
            let s = (int(1) as u32) & (bits - 1);
            let x = int(0);
            let r = match (f, bits) {
                (Func::ShiftLeft, 16) => i64::from((x as i16).wrapping_shl(s)),
                (Func::ShiftLeft, 32) => i64::from((x as i32).wrapping_shl(s)),
                (Func::ShiftLeft, _) => x.wrapping_shl(s),
                (_, 16) => i64::from((x as i16).wrapping_shr(s)),
                (_, 32) => i64::from((x as i32).wrapping_shr(s)),
                _ => x.wrapping_shr(s),
            };
            int_of(r, ty)?
        }
        Func::Exp => Value::Numeric(math::exp(&num(0))?),
        Func::Ln => Value::Numeric(math::ln(&num(0))?),
        Func::Log10 => Value::Numeric(math::log(&Numeric::from_i64(10), &num(0))?),
        Func::LogBase => Value::Numeric(math::log(&num(0), &num(1))?),
        Func::Power => Value::Numeric(math::power(&num(0), &num(1))?),
        Func::Cbrt => Value::Float8(math::cbrt_glibc(as_f64(a0).unwrap_or(0.0))),
        Func::SetSeed => {
            cx.rng.set_seed(as_f64(a0).unwrap_or(0.0))?;
            Value::Text(String::new())
        }
        Func::QuoteIdent => Value::Text(strings::quote_ident(text(0))),
        Func::QuoteLiteral => Value::Text(strings::quote_literal(&text_of(a0, &types[0], cx))),
        Func::Md5 => Value::Text(hash::hex(&hash::md5(&bytes(0)))),
        Func::Sha256 => Value::Bytea(hash::sha256(&bytes(0)).to_vec()),
        Func::Sha224 => Value::Bytea(hash::sha224(&bytes(0)).to_vec()),
        Func::Sha384 => Value::Bytea(hash::sha512_family(&bytes(0), true)),
        Func::Sha512 => Value::Bytea(hash::sha512_family(&bytes(0), false)),
        Func::JsonPathQueryFirst => match jsonpath::query(a0, text(1))?.first() {
            Some(j) => Value::Jsonb(crate::types::json::print(j)),
            None => Value::Null,
        },
        Func::ArrayToJson => Value::Json(strings::json_text(a0, &types[0], cx)?),
        Func::TrimArray => {
            let Value::Array(items) = a0 else {
                return Ok(Some(Value::Null));
            };
            let n = int(1);
            if n < 0 || n > items.len() as i64 {
                return Err(err(
                    SqlState::ArraySubscriptError,
                    format!(
                        "number of elements to trim must be between 0 and {}",
                        items.len()
                    ),
                ));
            }
            Value::Array(items[..items.len() - n as usize].to_vec())
        }
        Func::Overlay if matches!(a0, Value::Bytea(_)) => {
            let r = bytes(1);
            let len = if args.len() > 3 {
                int(3)
            } else {
                r.len() as i64
            };
            Value::Bytea(strings::overlay_bytes(&bytes(0), &r, int(2), len)?)
        }
        Func::Overlay => {
            let s = text(0);
            let r = text(1);
            let len = if args.len() > 3 {
                int(3)
            } else {
                r.chars().count() as i64
            };
            Value::Text(strings::overlay(s, r, int(2), len)?)
        }
        Func::ConvertTo => Value::Bytea(strings::convert_to(text(0), text(1))?),
        Func::ConvertFrom => Value::Text(strings::convert_from(&bytes(0), text(1))?),
        Func::ByteaConcat => {
            let mut b = bytes(0);
            b.extend(bytes(1));
            Value::Bytea(b)
        }
        Func::ByteaSubstr => {
            let b = bytes(0);
            let from = int(1);
            let len = if args.len() > 2 { Some(int(2)) } else { None };
            Value::Bytea(strings::substr_bytes(&b, from, len)?)
        }
        Func::JsonPathExists => Value::Bool(!jsonpath::query(a0, text(1))?.is_empty()),
        Func::JsonPathQueryArray => {
            let items = jsonpath::query(a0, text(1))?;
            Value::Jsonb(crate::types::json::print(&crate::types::json::array(items)))
        }
        Func::JsonPathMatch => match jsonpath::query(a0, text(1))?.first() {
            Some(crate::types::text::Json::Bool(b)) => Value::Bool(*b),
            _ => Value::Null,
        },
        _ => return Ok(None),
    }))
}

/// Whether [`call`] handles `f` given its argument values/types (numeric `exp`/`ln`/`log`/`power`
/// and float `cbrt` are shared with `expr.rs`'s float implementations).
fn is_ours(f: Func, args: &[Value], types: &[DataType]) -> bool {
    match f {
        Func::Exp | Func::Ln | Func::Log10 | Func::Power => {
            matches!(types.first(), Some(DataType::Numeric(_)))
                || matches!(args.first(), Some(Value::Numeric(_)))
        }
        Func::Cbrt => true,
        Func::BitAnd
        | Func::BitOr
        | Func::BitXor
        | Func::BitNot
        | Func::ShiftLeft
        | Func::ShiftRight
        | Func::LogBase
        | Func::SetSeed
        | Func::QuoteIdent
        | Func::QuoteLiteral
        | Func::Md5
        | Func::Sha256
        | Func::Overlay
        | Func::ConvertTo
        | Func::ConvertFrom
        | Func::ByteaConcat
        | Func::ByteaSubstr
        | Func::JsonPathExists
        | Func::JsonPathQueryArray
        | Func::JsonPathQueryFirst
        | Func::ArrayToJson
        | Func::TrimArray
        | Func::Sha224
        | Func::Sha384
        | Func::Sha512
        | Func::JsonPathMatch => true,
        _ => false,
    }
}

/// A value's text output (text values as they are).
pub(crate) fn text_of(v: &Value, ty: &DataType, cx: &EvalContext) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => other.to_text(ty, &cx.tz),
    }
}

/// Most elements an array built here may have. PostgreSQL allows 134217727 (`MaxArraySize`), but
/// its NULLs cost a bit each where ours cost a `Value`: arrays are capped lower so a stray
/// `a[100000000] = 1` fails instead of exhausting memory.
const MAX_ARRAY_ELEMS: i64 = 1 << 22;

fn too_big_array() -> PgError {
    err(
        SqlState::ProgramLimitExceeded,
        format!("array size exceeds the maximum allowed ({MAX_ARRAY_ELEMS})"),
    )
}

/// `array_fill(value, dims [, lbounds])` for one dimension. Errors: 22004 when `dims` is NULL,
/// 0A000 for several dimensions or lower bounds other than 1.
fn arrays_fill(args: &[Value]) -> Result<Value, PgError> {
    let null_dims = || {
        err(
            SqlState::NullValueNotAllowed,
            "dimension array or low bound array cannot be null",
        )
    };
    let dims = match args.get(1) {
        Some(Value::Array(d)) => d,
        _ => return Err(null_dims()),
    };
    if let Some(l) = args.get(2) {
        match l {
            Value::Array(lb) => {
                if lb.len() != dims.len() {
                    return Err(err(
                        SqlState::ArraySubscriptError,
                        "wrong number of array subscripts",
                    ));
                }
                if lb.iter().any(|v| as_int(v) != Some(1)) {
                    return Err(err(
                        SqlState::FeatureNotSupported,
                        "array lower bounds other than 1 are not supported yet",
                    ));
                }
            }
            _ => return Err(null_dims()),
        }
    }
    if dims.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    if dims.len() > 1 {
        return Err(err(
            SqlState::FeatureNotSupported,
            "multidimensional arrays are not supported yet",
        ));
    }
    let n = match dims[0] {
        Value::Null => {
            return Err(err(
                SqlState::NullValueNotAllowed,
                "dimension values cannot be null",
            ))
        }
        ref v => as_int(v).unwrap_or(0).max(0),
    };
    if n > MAX_ARRAY_ELEMS {
        return Err(too_big_array());
    }
    let v = args.first().cloned().unwrap_or(Value::Null);
    Ok(Value::Array(vec![v; n as usize]))
}

/// `arr[i] := v` (an UPDATE's subscripted assignment, PostgreSQL's `array_set`): a NULL array
/// becomes a one-element array, positions past the end are padded with NULLs. Errors: 22004 for
/// a NULL subscript, 0A000 for positions before 1 (other lower bounds are not supported).
fn array_set(args: &[Value]) -> Result<Value, PgError> {
    let i = match args.get(1) {
        Some(Value::Null) | None => {
            return Err(err(
                SqlState::NullValueNotAllowed,
                "array subscript in assignment must not be null",
            ))
        }
        Some(v) => as_int(v).unwrap_or(0),
    };
    let mut items = match args.first() {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    if i < 1 {
        return Err(err(
            SqlState::FeatureNotSupported,
            "array lower bounds other than 1 are not supported yet",
        ));
    }
    if i > MAX_ARRAY_ELEMS {
        return Err(too_big_array());
    }
    let k = (i - 1) as usize;
    if items.len() <= k {
        items.resize(k + 1, Value::Null);
    }
    items[k] = args.get(2).cloned().unwrap_or(Value::Null);
    Ok(Value::Array(items))
}

/// `arr[lo:hi]` on a one-dimensional array (omitted bounds are `Value::Null` markers handled by the
/// binder: it passes the array's own bounds as `Int4(1)` / `Int4(i32::MAX)`). A NULL bound or array
/// gives NULL; an empty range gives `{}`.
fn array_slice(args: &[Value]) -> Result<Value, PgError> {
    let (Some(Value::Array(items)), Some(lo), Some(hi)) = (args.first(), args.get(1), args.get(2))
    else {
        return Ok(Value::Null);
    };
    let (Some(lo), Some(hi)) = (as_int(lo), as_int(hi)) else {
        return Ok(Value::Null);
    };
    let lo = lo.max(1);
    let hi = hi.min(items.len() as i64);
    if lo > hi {
        return Ok(Value::Array(Vec::new()));
    }
    Ok(Value::Array(items[(lo - 1) as usize..hi as usize].to_vec()))
}

/// `row_to_json(row)`: json text without spaces, as PostgreSQL prints it. `args[0]` is the array
/// of key names (a row constructor's are `f1`, `f2`, ...), the rest the fields.
fn row_to_json(args: &[Value], types: &[DataType], cx: &EvalContext) -> Result<String, PgError> {
    let names = match args.first() {
        Some(Value::Array(n)) => n.as_slice(),
        _ => &[],
    };
    let mut out = String::from("{");
    for (k, v) in args.iter().enumerate().skip(1) {
        if k > 1 {
            out.push(',');
        }
        let name = match names.get(k - 1) {
            Some(Value::Text(s)) => s.clone(),
            _ => format!("f{k}"),
        };
        crate::types::text::escape_json(&name, &mut out);
        out.push(':');
        out.push_str(&strings::json_text(v, &types[k], cx)?);
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_uuid_is_v4_and_seeds_repeat() {
        let r = SessionRng::default();
        let u = r.uuid_v4();
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(u[8] >> 6, 2);
        assert_ne!(u, r.uuid_v4());
        r.set_seed(0.5).unwrap();
        let a = r.next_f64();
        r.set_seed(0.5).unwrap();
        assert_eq!(a, r.next_f64());
        assert!(r.set_seed(2.0).is_err());
    }

    #[test]
    fn array_helpers() {
        let a = Value::Array(vec![Value::Int4(1), Value::Int4(2), Value::Int4(3)]);
        assert_eq!(
            array_slice(&[a.clone(), Value::Int4(2), Value::Int4(3)]).unwrap(),
            Value::Array(vec![Value::Int4(2), Value::Int4(3)])
        );
        assert_eq!(
            array_slice(&[a.clone(), Value::Int4(3), Value::Int4(2)]).unwrap(),
            Value::Array(vec![])
        );
        assert_eq!(
            array_set(&[Value::Null, Value::Int4(2), Value::Int4(7)]).unwrap(),
            Value::Array(vec![Value::Null, Value::Int4(7)])
        );
        assert_eq!(
            arrays_fill(&[Value::Null, Value::Null]).unwrap_err().code,
            SqlState::NullValueNotAllowed
        );
    }
}
