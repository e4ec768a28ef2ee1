//! Bound expressions: typed trees the binder produces and the executor evaluates, with
//! PostgreSQL's operator typing, three-valued logic and error codes.
//!
//! **Invariant:** every [`Expr`] carries its result type; evaluating it yields a value of that type
//! or NULL (never a value of another type).

use std::cmp::Ordering;

use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

use crate::types::cast::{cast_value, compare, CastContext};
use crate::types::datetime::{self, TimeZone};
use crate::types::{DataType, Numeric, Value};

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `||`
    Concat,
}

impl BinOp {
    /// The operator's SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Concat => "||",
        }
    }

    /// Whether this is a comparison (result boolean).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
}

/// A scalar function the engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// `abs(x)`
    Abs,
    /// `lower(text)`
    Lower,
    /// `upper(text)`
    Upper,
    /// `length(text)` / `char_length`
    Length,
    /// `octet_length(text)`
    OctetLength,
    /// `substr(text, from [, count])` / `substring(... from ... for ...)`
    Substr,
    /// `round(x [, s])`
    Round,
    /// `trunc(x [, s])`
    Trunc,
    /// `ceil(x)` / `ceiling(x)`
    Ceil,
    /// `floor(x)`
    Floor,
    /// `mod(a, b)`
    ModFn,
    /// `trim(text)` / `btrim`
    Btrim,
    /// `ltrim(text)`
    Ltrim,
    /// `rtrim(text)`
    Rtrim,
    /// `replace(text, from, to)`
    Replace,
    /// `position(sub in text)` / `strpos(text, sub)` (arguments in strpos order)
    Strpos,
    /// `concat(...)`
    ConcatFn,
    /// `pg_typeof(x)`
    PgTypeof,
    /// `sqrt(x)`
    Sqrt,
    /// `sign(x)`
    Sign,
    /// `repeat(text, n)`
    Repeat,
    /// `left(text, n)`
    Left,
    /// `right(text, n)`
    Right,
    /// `reverse(text)`
    Reverse,
    /// `power(a, b)` / `a ^ b` (double precision).
    Power,
    /// `extract(field from x)` (numeric): arguments `(field text, x)`.
    Extract,
    /// `date_part(field, x)` (double precision).
    DatePart,
    /// `date_trunc(field, x)`.
    DateTrunc,
    /// `age(a, b)`.
    Age,
    /// `justify_hours(interval)`.
    JustifyHours,
    /// `justify_days(interval)`.
    JustifyDays,
    /// `justify_interval(interval)`.
    JustifyInterval,
    /// The date/time constructors and conversions of [`crate::types::dtfunc`] (`make_date`,
    /// `date_bin`, `to_date`, `AT TIME ZONE`, `OVERLAPS`, time arithmetic, ...).
    DateTime(crate::types::dtfunc::DtFunc),
    /// `current_setting(name [, missing_ok])` (text).
    CurrentSetting,
    /// `set_config(name, value, is_local)` (text): changes a session setting.
    SetConfig,
    /// `pg_backend_pid()` (integer): the session's number.
    BackendPid,
    /// `inet`/`cidr` containment: `<<`, `>>` (boolean).
    Inet(crate::types::inet::InetOp),
    /// `exp(x)`.
    Exp,
    /// `ln(x)`.
    Ln,
    /// `log10(x)` / one-argument `log(x)`.
    Log10,
    /// `cbrt(x)`.
    Cbrt,
    /// `sin(x)`.
    Sin,
    /// `cos(x)`.
    Cos,
    /// `tan(x)`.
    Tan,
    /// `asin(x)`.
    Asin,
    /// `acos(x)`.
    Acos,
    /// `atan(x)`.
    Atan,
    /// `atan2(y, x)`.
    Atan2,
    /// `degrees(x)`.
    Degrees,
    /// `radians(x)`.
    Radians,
    /// `initcap(text)`.
    Initcap,
    /// `lpad(text, n [, fill])`.
    Lpad,
    /// `rpad(text, n [, fill])`.
    Rpad,
    /// `split_part(text, delim, n)`.
    SplitPart,
    /// `ascii(text)`.
    Ascii,
    /// `chr(int)`.
    Chr,
    /// `starts_with(text, prefix)`.
    StartsWith,
    /// `translate(text, from, to)`.
    Translate,
    /// `concat_ws(sep, ...)`.
    ConcatWs,
    /// `nextval(name)`.
    NextVal,
    /// `currval(name)`.
    CurrVal,
    /// `setval(name, value [, is_called])`.
    SetVal,
    /// `array_length(a, dim)` / `cardinality(a)` (dimension 1 only).
    ArrayLength,
    /// `array_append(a, x)` / `a || x`.
    ArrayAppend,
    /// `array_prepend(x, a)` / `x || a`.
    ArrayPrepend,
    /// `array_cat(a, b)` / `a || b`.
    ArrayCat,
    /// `array_to_string(a, sep [, null_text])`.
    ArrayToString,
    /// `num_nulls(...)`.
    NumNulls,
    /// `num_nonnulls(...)`.
    NumNonNulls,
    /// `factorial(n)` (numeric).
    Factorial,
    /// `div(a, b)`: numeric division truncated toward zero.
    DivTrunc,
    /// `s ~ pattern` with flags: `(s, pattern, flags)`.
    RegexMatch,
    /// `similar_to_escape(pattern [, escape])`: a SIMILAR TO pattern as a regular expression.
    SimilarEscape,
    /// `regexp_replace(s, pattern, replacement [, flags])`.
    RegexpReplace,
    /// `regexp_match(s, pattern [, flags])` (text[]).
    RegexpMatch,
    /// `regexp_split_to_array(s, pattern [, flags])`.
    RegexpSplitToArray,
    /// `regexp_count(s, pattern [, start [, flags]])`.
    RegexpCount,
    /// `regexp_instr(s, pattern [, start [, n [, endoption [, flags [, subexpr]]]]])`.
    RegexpInstr,
    /// `regexp_like(s, pattern [, flags])`.
    RegexpLike,
    /// `regexp_substr(s, pattern [, start [, n [, flags [, subexpr]]]])`.
    RegexpSubstr,
    /// `substring(s from pattern)` (POSIX regular expression).
    RegexSubstring,
    /// `j -> key|index`.
    JsonGet,
    /// `j ->> key|index`.
    JsonGetText,
    /// `j #> path`.
    JsonPath,
    /// `j #>> path`.
    JsonPathText,
    /// `a @> b` (and `b <@ a`).
    JsonContains,
    /// `j ? key`.
    JsonExists,
    /// `j ?| keys`.
    JsonExistsAny,
    /// `j ?& keys`.
    JsonExistsAll,
    /// `a || b` on jsonb.
    JsonConcat,
    /// `j - key|index`.
    JsonDelete,
    /// `j #- path`.
    JsonDeletePath,
    /// `jsonb_typeof(j)` / `json_typeof`.
    JsonTypeof,
    /// `jsonb_array_length(j)`.
    JsonArrayLength,
    /// `jsonb_build_object(k, v, ...)`.
    JsonBuildObject,
    /// `jsonb_build_array(...)`.
    JsonBuildArray,
    /// `to_jsonb(x)` / `to_json(x)`.
    ToJson,
    /// `jsonb_set(j, path, new [, create_missing])`.
    JsonSet,
    /// `jsonb_insert(j, path, new [, insert_after])`.
    JsonInsert,
    /// `jsonb_pretty(j)`.
    JsonPretty,
    /// `jsonb_strip_nulls(j)`.
    JsonStripNulls,
    /// `to_char(timestamp | timestamptz | interval | numeric, fmt)`.
    ToChar,
    /// `isfinite(date | timestamp | interval)`.
    IsFinite,
    /// `gcd(a, b)`.
    Gcd,
    /// `lcm(a, b)`.
    Lcm,
    /// `width_bucket(x, lo, hi, n)`.
    WidthBucket,
    /// `min_scale(numeric)`.
    MinScale,
    /// `scale(numeric)`.
    Scale,
    /// `trim_scale(numeric)`.
    TrimScale,
    /// `bit_length(text)`.
    BitLength,
    /// `to_hex(int)`.
    ToHex,
    /// `array_remove(a, x)`.
    ArrayRemove,
    /// `array_position(a, x)`.
    ArrayPosition,
    /// `array_positions(a, x)`.
    ArrayPositions,
    /// `array_replace(a, x, y)`.
    ArrayReplace,
    /// `string_to_array(s, sep [, null_str])`.
    StringToArray,
    /// `array_lower(a, dim)`.
    ArrayLower,
    /// `array_upper(a, dim)`.
    ArrayUpper,
    /// `array_dims(a)`.
    ArrayDims,
    /// `array_ndims(a)`.
    ArrayNdims,
    /// `a @> b` (and `b <@ a`) on arrays.
    ArrayContains,
    /// `a && b` on arrays.
    ArrayOverlap,
    /// `length(bytea)` / `octet_length(bytea)`.
    ByteaLength,
    /// `encode(bytea, format)`.
    Encode,
    /// `decode(text, format)`.
    Decode,
    /// `get_byte(bytea, n)`.
    GetByte,
    /// `set_byte(bytea, n, v)`.
    SetByte,
    // ---- implemented in crate::funcs ----
    /// `&` on integers.
    BitAnd,
    /// `|` on integers.
    BitOr,
    /// `#` on integers.
    BitXor,
    /// `~` on integers.
    BitNot,
    /// `<<` on integers.
    ShiftLeft,
    /// `>>` on integers.
    ShiftRight,
    /// `log(base, x)` on numerics (also `log(numeric)` as `log(10, x)` via `Log10`).
    LogBase,
    /// `random()`.
    Random,
    /// `setseed(x)` (returns void, shown as an empty string).
    SetSeed,
    /// `gen_random_uuid()`.
    GenRandomUuid,
    /// `format(fmt, args...)`.
    Format,
    /// `quote_ident(text)`.
    QuoteIdent,
    /// `quote_literal(x)`.
    QuoteLiteral,
    /// `quote_nullable(x)`.
    QuoteNullable,
    /// `md5(text | bytea)`.
    Md5,
    /// `sha256(bytea)`.
    Sha256,
    /// `overlay(s placing r from n [for len])`.
    Overlay,
    /// `convert_to(text, encoding)`.
    ConvertTo,
    /// `convert_from(bytea, encoding)`.
    ConvertFrom,
    /// `pg_column_size(x)`.
    PgColumnSize,
    /// `bytea || bytea`.
    ByteaConcat,
    /// `substring(bytea from n [for len])`.
    ByteaSubstr,
    /// `arr[lo:hi]`.
    ArraySlice,
    /// `array_fill(value, dims [, lbounds])`.
    ArrayFill,
    /// `arr[i] := v` in UPDATE (`array_set`).
    ArraySetElem,
    /// A row constructor `(a, b)` / `ROW(a, b)` used as a value: its `record_out` text.
    RowValue,
    /// `row_to_json(row)` / `to_json(row)` / `to_jsonb(row)`: the first argument is the array of
    /// key names, the others the row's fields (json or jsonb by the result type).
    RowToJson,
    /// `jsonb @? jsonpath` / `jsonb_path_exists`.
    JsonPathExists,
    /// `jsonb @@ jsonpath` / `jsonb_path_match`.
    JsonPathMatch,
    /// `jsonb_path_query_array(jsonb, jsonpath)`.
    JsonPathQueryArray,
    /// `jsonb_path_query_first(jsonb, jsonpath)`.
    JsonPathQueryFirst,
    /// `array_to_json(anyarray)`.
    ArrayToJson,
    /// `trim_array(anyarray, n)`.
    TrimArray,
    /// `sha224(bytea)`.
    Sha224,
    /// `sha384(bytea)`.
    Sha384,
    /// `sha512(bytea)`.
    Sha512,
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A constant.
    Const(Value, DataType),
    /// Column `i` of the input row.
    Column(usize, DataType),
    /// A cast (explicit, or inserted by the binder).
    Cast(Box<Expr>, DataType, CastKind),
    /// A binary operator; operands already coerced to the operator's input types.
    Binary(BinOp, Box<Expr>, Box<Expr>, DataType),
    /// Unary minus.
    Neg(Box<Expr>, DataType),
    /// `NOT x`.
    Not(Box<Expr>),
    /// `a AND b AND ...`.
    And(Vec<Expr>),
    /// `a OR b OR ...`.
    Or(Vec<Expr>),
    /// `x IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `x IS [NOT] DISTINCT FROM y`.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    /// `x IS [NOT] TRUE/FALSE`: `(x, value, negated)`.
    IsBool(Box<Expr>, bool, bool),
    /// `CASE WHEN c THEN r ... ELSE e END` (a simple CASE is bound to this form).
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>, DataType),
    /// `COALESCE(...)`.
    Coalesce(Vec<Expr>, DataType),
    /// `NULLIF(a, b)`: the comparison `a = b` and `a`.
    NullIf(Box<Expr>, Box<Expr>, DataType),
    /// `GREATEST(...)` (`true`) / `LEAST(...)` (`false`).
    MinMax(Vec<Expr>, bool, DataType),
    /// `x [NOT] IN (list)`: the comparisons `x = item` for each item.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// `x [NOT] [I]LIKE pattern`: `(x, pattern, negated, case_insensitive)`.
    Like(Box<Expr>, Box<Expr>, bool, bool),
    /// A scalar function call.
    Func(Func, Vec<Expr>, DataType),
    /// `ARRAY[a, b, ...]` (elements already of the element type).
    Array(Vec<Expr>, DataType),
    /// `a[i]` (1-based; NULL out of range).
    Subscript(Box<Expr>, Box<Expr>, DataType),
    /// `x op ANY (array)` (`true`) / `x op ALL (array)` (`false`), comparison operators only.
    Quantified(BinOp, Box<Expr>, Box<Expr>, bool),
}

/// Whether a cast was written by the user or inserted by the binder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CastKind {
    /// `CAST(x AS t)` / `x::t`.
    Explicit,
    /// Inserted to store a value into a column.
    Assignment,
    /// Inserted to make operand types match.
    Implicit,
}

/// Sequences as evaluation sees them (`nextval`, `currval`, `setval`): the standalone engine's
/// local sequences, or the GTM's in a cluster. Names are `schema.name`, already folded.
pub trait SequenceSource: Send + Sync + std::fmt::Debug {
    /// The next value. Errors: 42P01 unknown sequence, 2200H past MAXVALUE/MINVALUE.
    fn nextval(&self, name: &str) -> Result<i64, PgError>;
    /// The value the session's last `nextval` returned. Errors: 42P01, 55000 before any.
    fn currval(&self, name: &str) -> Result<i64, PgError>;
    /// Set the current value (`is_called` = the next `nextval` advances first). Errors: 42P01,
    /// 22003 outside the bounds.
    fn setval(&self, name: &str, value: i64, is_called: bool) -> Result<i64, PgError>;
}

/// Session settings (GUCs) as `current_setting` / `set_config` see them during a statement.
pub trait SettingsSource: Send + Sync + std::fmt::Debug {
    /// The value of setting `name` (any case) as SHOW prints it. Errors: 42704 unknown setting.
    fn get(&self, name: &str) -> Result<String, PgError>;
    /// Set `name` to `value` (until the end of the transaction when `is_local`) and return the
    /// value as SHOW would print it. Errors: 42704 unknown setting, 22023 bad value.
    fn set(&self, name: &str, value: &str, is_local: bool) -> Result<String, PgError>;
    /// The session's process number (`pg_backend_pid()`), stable for the session's life.
    fn backend_pid(&self) -> i32;
}

/// What evaluation needs besides the row: the session time zone and the sequence source.
#[derive(Clone, Debug, Default)]
pub struct EvalContext {
    /// The session `TimeZone`.
    pub tz: TimeZone,
    /// Where `nextval`/`currval`/`setval` go (`None`: they fail with 0A000).
    pub seqs: Option<std::sync::Arc<dyn SequenceSource>>,
    /// The session's random generator (`random()`, `setseed()`, `gen_random_uuid()`).
    pub rng: std::sync::Arc<crate::funcs::SessionRng>,
    /// Where `current_setting`/`set_config` go (`None`: they fail with 0A000).
    pub settings: Option<std::sync::Arc<dyn SettingsSource>>,
}

fn err(code: SqlState, msg: impl Into<String>) -> PgError {
    PgError::new(code, msg)
}

impl Expr {
    /// The result type.
    pub fn data_type(&self) -> DataType {
        match self {
            Expr::Const(_, t)
            | Expr::Column(_, t)
            | Expr::Cast(_, t, _)
            | Expr::Binary(_, _, _, t)
            | Expr::Neg(_, t)
            | Expr::Case(_, _, t)
            | Expr::Coalesce(_, t)
            | Expr::NullIf(_, _, t)
            | Expr::MinMax(_, _, t)
            | Expr::Func(_, _, t)
            | Expr::Array(_, t)
            | Expr::Subscript(_, _, t) => t.clone(),
            Expr::Quantified(..) => DataType::Bool,
            Expr::Not(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::IsNull(..)
            | Expr::IsDistinct(..)
            | Expr::IsBool(..)
            | Expr::InList(..)
            | Expr::Like(..) => DataType::Bool,
        }
    }

    /// Evaluate against `row`.
    ///
    /// Errors: PostgreSQL's runtime errors (22012 division by zero, 22003 out of range, 22P02 bad
    /// input in a cast, ...).
    pub fn eval(&self, row: &[Value], cx: &EvalContext) -> Result<Value, PgError> {
        match self {
            Expr::Const(v, _) => Ok(v.clone()),
            Expr::Column(i, _) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| err(SqlState::InternalError, format!("no column {i} in row"))),
            Expr::Cast(e, to, kind) => {
                let v = e.eval(row, cx)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let ctx = match kind {
                    CastKind::Explicit => CastContext::Explicit,
                    CastKind::Assignment => CastContext::Assignment,
                    CastKind::Implicit => CastContext::Implicit,
                };
                cast_value(v, &e.data_type(), to, ctx, &cx.tz)
            }
            Expr::Binary(op, a, b, ty) => {
                let x = a.eval(row, cx)?;
                let y = b.eval(row, cx)?;
                if x.is_null() || y.is_null() {
                    return Ok(Value::Null);
                }
                binary(*op, x, y, &a.data_type(), ty, cx)
            }
            Expr::Neg(e, ty) => {
                let v = e.eval(row, cx)?;
                negate(v, ty)
            }
            Expr::Not(e) => Ok(match e.eval(row, cx)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            }),
            Expr::And(items) => eval_junction(items, false, row, cx),
            Expr::Or(items) => eval_junction(items, true, row, cx),
            Expr::IsNull(e, negated) => Ok(Value::Bool(e.eval(row, cx)?.is_null() != *negated)),
            Expr::IsDistinct(a, b, negated) => {
                let x = a.eval(row, cx)?;
                let y = b.eval(row, cx)?;
                let distinct = match (x.is_null(), y.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    _ => compare(&x, &y) != Some(Ordering::Equal),
                };
                Ok(Value::Bool(distinct != *negated))
            }
            Expr::IsBool(e, want, negated) => {
                let is = matches!(e.eval(row, cx)?, Value::Bool(b) if b == *want);
                Ok(Value::Bool(is != *negated))
            }
            Expr::Case(whens, else_, _) => {
                for (c, r) in whens {
                    if c.eval(row, cx)? == Value::Bool(true) {
                        return r.eval(row, cx);
                    }
                }
                match else_ {
                    Some(e) => e.eval(row, cx),
                    None => Ok(Value::Null),
                }
            }
            Expr::Coalesce(items, _) => {
                for e in items {
                    let v = e.eval(row, cx)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(Value::Null)
            }
            Expr::NullIf(eq, a, _) => {
                if eq.eval(row, cx)? == Value::Bool(true) {
                    Ok(Value::Null)
                } else {
                    a.eval(row, cx)
                }
            }
            Expr::MinMax(items, greatest, _) => {
                let mut best: Option<Value> = None;
                for e in items {
                    let v = e.eval(row, cx)?;
                    if v.is_null() {
                        continue;
                    }
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let ord = compare(&v, &b).unwrap_or(Ordering::Equal);
                            if (ord == Ordering::Greater) == *greatest && ord != Ordering::Equal {
                                v
                            } else {
                                b
                            }
                        }
                    });
                }
                Ok(best.unwrap_or(Value::Null))
            }
            Expr::InList(x, items, negated) => {
                let _ = x;
                Ok(match eval_junction(items, true, row, cx)? {
                    Value::Bool(b) => Value::Bool(b != *negated),
                    v => v,
                })
            }
            Expr::Like(x, p, negated, ci) => {
                let (s, pat) = match (x.eval(row, cx)?, p.eval(row, cx)?) {
                    (Value::Text(s), Value::Text(p)) => (s, p),
                    _ => return Ok(Value::Null),
                };
                let m = if *ci {
                    like(&s.to_lowercase(), &pat.to_lowercase())?
                } else {
                    like(&s, &pat)?
                };
                Ok(Value::Bool(m != *negated))
            }
            Expr::Array(items, _) => Ok(Value::Array(
                items
                    .iter()
                    .map(|e| e.eval(row, cx))
                    .collect::<Result<_, _>>()?,
            )),
            Expr::Subscript(a, i, _) => {
                let (Value::Array(items), Some(i)) = (a.eval(row, cx)?, as_int(&i.eval(row, cx)?))
                else {
                    return Ok(Value::Null);
                };
                Ok(usize::try_from(i - 1)
                    .ok()
                    .and_then(|k| items.get(k).cloned())
                    .unwrap_or(Value::Null))
            }
            Expr::Quantified(op, x, arr, any) => {
                let x = x.eval(row, cx)?;
                let Value::Array(items) = arr.eval(row, cx)? else {
                    return Ok(Value::Null);
                };
                let mut null = false;
                for it in items {
                    if x.is_null() || it.is_null() {
                        null = true;
                        continue;
                    }
                    let ord = compare(&x, &it).unwrap_or(Ordering::Equal);
                    let r = comparison_holds(*op, ord)?;
                    if r == *any {
                        return Ok(Value::Bool(*any));
                    }
                }
                Ok(if null {
                    Value::Null
                } else {
                    Value::Bool(!*any)
                })
            }
            Expr::Func(f, args, ty) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row, cx))
                    .collect::<Result<Vec<_>, _>>()?;
                let types: Vec<DataType> = args.iter().map(Expr::data_type).collect();
                call(*f, vals, &types, ty, cx)
            }
        }
    }
}

/// SQL LIKE with `\` as the escape character.
///
/// Errors: 22025 is PostgreSQL's code for a pattern ending in the escape; reported as 22P02-like
/// invalid input here (`LIKE pattern must not end with escape character`).
/// OR (`decisive` true) or AND (`decisive` false) of `items` under SQL's three-valued logic:
/// the first item equal to `decisive` decides (the rest are not evaluated); otherwise NULL if
/// any item was NULL, else `!decisive`.
fn eval_junction(
    items: &[Expr],
    decisive: bool,
    row: &[Value],
    cx: &EvalContext,
) -> Result<Value, PgError> {
    let mut null = false;
    for e in items {
        match e.eval(row, cx)? {
            Value::Bool(b) if b == decisive => return Ok(Value::Bool(decisive)),
            Value::Bool(_) => {}
            _ => null = true,
        }
    }
    Ok(if null {
        Value::Null
    } else {
        Value::Bool(!decisive)
    })
}

pub fn like(s: &str, pat: &str) -> Result<bool, PgError> {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    if p.last() == Some(&'\\') && p.iter().rev().take_while(|c| **c == '\\').count() % 2 == 1 {
        return Err(err(
            SqlState::InvalidParameterValue,
            "LIKE pattern must not end with escape character",
        ));
    }
    // Iterative matcher with backtracking on the last '%'.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '%' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '_' => {
                    si += 1;
                    pi += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    si += 1;
                    pi += 2;
                    continue;
                }
                '\\' if pi + 1 < p.len() => {}
                c if c == s[si] => {
                    si += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return Ok(false),
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    Ok(pi == p.len())
}

fn int_range_err(ty: &DataType) -> PgError {
    let name = match ty {
        DataType::Int2 => "smallint",
        DataType::Int8 => "bigint",
        _ => "integer",
    };
    err(
        SqlState::NumericValueOutOfRange,
        format!("{name} out of range"),
    )
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(i64::from(*x)),
        Value::Int4(x) => Some(i64::from(*x)),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

fn make_int(x: i64, ty: &DataType) -> Result<Value, PgError> {
    match ty {
        DataType::Int2 => i16::try_from(x)
            .map(Value::Int2)
            .map_err(|_| int_range_err(ty)),
        DataType::Int4 => i32::try_from(x)
            .map(Value::Int4)
            .map_err(|_| int_range_err(ty)),
        _ => Ok(Value::Int8(x)),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float4(x) => Some(f64::from(*x)),
        Value::Float8(x) => Some(*x),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => as_int(v).map(|x| x as f64),
        Value::Numeric(n) => Some(n.to_f64()),
        _ => None,
    }
}

fn as_numeric(v: &Value) -> Option<Numeric> {
    match v {
        Value::Numeric(n) => Some(n.clone()),
        _ => as_int(v).map(Numeric::from_i64),
    }
}

fn float_result(x: f64, ty: &DataType) -> Result<Value, PgError> {
    Ok(match ty {
        DataType::Float4 => {
            let f = x as f32;
            if f.is_infinite() && x.is_finite() {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "value out of range: overflow",
                ));
            }
            Value::Float4(f)
        }
        _ => Value::Float8(x),
    })
}

fn negate(v: Value, ty: &DataType) -> Result<Value, PgError> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int2(x) => Value::Int2(x.checked_neg().ok_or_else(|| int_range_err(ty))?),
        Value::Int4(x) => Value::Int4(x.checked_neg().ok_or_else(|| int_range_err(ty))?),
        Value::Int8(x) => Value::Int8(x.checked_neg().ok_or_else(|| int_range_err(ty))?),
        Value::Float4(x) => Value::Float4(-x),
        Value::Float8(x) => Value::Float8(-x),
        Value::Numeric(n) => Value::Numeric(n.neg()),
        Value::Interval(iv) => Value::Interval(datetime::interval_neg(&iv)?),
        other => {
            return Err(err(
                SqlState::UndefinedFunction,
                format!("operator does not exist: - {}", value_type_name(&other)),
            ))
        }
    })
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::Text(_) => "text",
        Value::Bool(_) => "boolean",
        _ => "unknown",
    }
}

/// Apply a binary operator to two non-NULL values. `in_ty` is the (common) operand type, `ty`
/// the result type.
fn binary(
    op: BinOp,
    x: Value,
    y: Value,
    in_ty: &DataType,
    ty: &DataType,
    cx: &EvalContext,
) -> Result<Value, PgError> {
    if op.is_comparison() {
        let ord = match (&x, &y) {
            (Value::Text(a), Value::Text(b)) if matches!(in_ty, DataType::Char(_)) => {
                Some(crate::types::cast::compare_bpchar(a, b))
            }
            _ => compare(&x, &y),
        }
        .ok_or_else(|| {
            err(
                SqlState::UndefinedFunction,
                format!("could not compare values of type {}", in_ty.name()),
            )
        })?;
        return Ok(Value::Bool(comparison_holds(op, ord)?));
    }
    if op == BinOp::Concat {
        let a = text_of(&x, in_ty, cx);
        let b = text_of(&y, &DataType::Text, cx);
        return Ok(Value::Text(a + &b));
    }
    // Date/time arithmetic.
    match (&x, &y, op) {
        (Value::Date(d), _, BinOp::Add | BinOp::Sub) if as_int(&y).is_some() => {
            let n = as_int(&y).unwrap_or(0);
            let n = i32::try_from(if op == BinOp::Sub { -n } else { n })
                .map_err(|_| err(SqlState::DatetimeFieldOverflow, "date out of range"))?;
            return Ok(Value::Date(datetime::date_add_days(*d, n)?));
        }
        (Value::Date(a), Value::Date(b), BinOp::Sub) => {
            return Ok(Value::Int4(datetime::date_diff(*a, *b)?));
        }
        (Value::Timestamp(t), Value::Interval(iv), BinOp::Add | BinOp::Sub) => {
            let iv = if op == BinOp::Sub {
                datetime::interval_neg(iv)?
            } else {
                *iv
            };
            return Ok(Value::Timestamp(datetime::timestamp_add_interval(*t, &iv)?));
        }
        (Value::Timestamptz(t), Value::Interval(iv), BinOp::Add | BinOp::Sub) => {
            let iv = if op == BinOp::Sub {
                datetime::interval_neg(iv)?
            } else {
                *iv
            };
            return Ok(Value::Timestamptz(datetime::timestamptz_add_interval(
                *t, &iv, &cx.tz,
            )?));
        }
        (Value::Timestamp(a), Value::Timestamp(b), BinOp::Sub)
        | (Value::Timestamptz(a), Value::Timestamptz(b), BinOp::Sub) => {
            return Ok(Value::Interval(datetime::timestamp_diff(*a, *b)?));
        }
        (Value::Interval(a), Value::Interval(b), BinOp::Add) => {
            return Ok(Value::Interval(datetime::interval_add(a, b)?))
        }
        (Value::Interval(a), Value::Interval(b), BinOp::Sub) => {
            return Ok(Value::Interval(datetime::interval_sub(a, b)?))
        }
        (Value::Interval(a), _, BinOp::Mul) if as_f64(&y).is_some() => {
            return Ok(Value::Interval(datetime::interval_mul(
                a,
                as_f64(&y).unwrap_or(0.0),
            )?))
        }
        (Value::Interval(a), _, BinOp::Div) if as_f64(&y).is_some() => {
            let f = as_f64(&y).unwrap_or(0.0);
            if f == 0.0 {
                return Err(err(SqlState::DivisionByZero, "division by zero"));
            }
            return Ok(Value::Interval(datetime::interval_div(a, f)?));
        }
        _ => {}
    }
    match ty {
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            let (a, b) = match (as_int(&x), as_int(&y)) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad_operands(op, in_ty)),
            };
            let r = match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul(b),
                BinOp::Div | BinOp::Mod => {
                    if b == 0 {
                        return Err(err(SqlState::DivisionByZero, "division by zero"));
                    }
                    if op == BinOp::Div {
                        a.checked_div(b)
                    } else {
                        Some(a.checked_rem(b).unwrap_or(0))
                    }
                }
                _ => None,
            }
            .ok_or_else(|| int_range_err(ty))?;
            make_int(r, ty)
        }
        DataType::Float4 | DataType::Float8 => {
            let (a, b) = match (as_f64(&x), as_f64(&y)) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad_operands(op, in_ty)),
            };
            let r = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => {
                    if b == 0.0 {
                        return Err(err(SqlState::DivisionByZero, "division by zero"));
                    }
                    a / b
                }
                _ => return Err(bad_operands(op, in_ty)),
            };
            if r.is_infinite() && a.is_finite() && b.is_finite() {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "value out of range: overflow",
                ));
            }
            float_result(r, ty)
        }
        DataType::Numeric(_) => {
            let (a, b) = match (as_numeric(&x), as_numeric(&y)) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(bad_operands(op, in_ty)),
            };
            Ok(Value::Numeric(match op {
                BinOp::Add => a.add(&b)?,
                BinOp::Sub => a.sub(&b)?,
                BinOp::Mul => a.mul(&b)?,
                BinOp::Div => a.div(&b)?,
                BinOp::Mod => a.rem(&b)?,
                _ => return Err(bad_operands(op, in_ty)),
            }))
        }
        _ => Err(bad_operands(op, in_ty)),
    }
}

/// Whether comparison `op` holds between two values that compare as `ord`.
fn comparison_holds(op: BinOp, ord: Ordering) -> Result<bool, PgError> {
    Ok(match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::Ne => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::Ge => ord != Ordering::Less,
        _ => return unreachable_op(op),
    })
}

fn unreachable_op(op: BinOp) -> Result<bool, PgError> {
    Err(err(
        SqlState::InternalError,
        format!("operator {} is not a comparison", op.symbol()),
    ))
}

fn bad_operands(op: BinOp, ty: &DataType) -> PgError {
    err(
        SqlState::UndefinedFunction,
        format!(
            "operator does not exist: {} {} {}",
            ty.name(),
            op.symbol(),
            ty.name()
        ),
    )
}

fn text_of(v: &Value, ty: &DataType, cx: &EvalContext) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => other.to_text(ty, &cx.tz),
    }
}

fn text_arg(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

fn int_arg(v: &Value) -> Option<i64> {
    as_int(v)
}

/// Call scalar function `f` (strict: any NULL argument gives NULL, except `concat`).
fn call(
    f: Func,
    args: Vec<Value>,
    types: &[DataType],
    ty: &DataType,
    cx: &EvalContext,
) -> Result<Value, PgError> {
    if let Some(v) = crate::funcs::call(f, &args, types, ty, cx)? {
        return Ok(v);
    }
    if f == Func::ConcatWs {
        let Some(Value::Text(sep)) = args.first() else {
            return Ok(Value::Null);
        };
        let parts: Vec<String> = args
            .iter()
            .zip(types)
            .skip(1)
            .filter(|(v, _)| !v.is_null())
            .map(|(v, t)| text_of(v, t, cx))
            .collect();
        return Ok(Value::Text(parts.join(sep)));
    }
    match f {
        Func::NumNulls | Func::NumNonNulls => {
            let nulls = args.iter().filter(|v| v.is_null()).count();
            let n = if f == Func::NumNulls {
                nulls
            } else {
                args.len() - nulls
            };
            return Ok(Value::Int4(i32::try_from(n).unwrap_or(i32::MAX)));
        }
        Func::ArrayAppend | Func::ArrayPrepend | Func::ArrayCat => {
            let arr = |v: &Value| match v {
                Value::Array(a) => a.clone(),
                _ => Vec::new(),
            };
            let a0 = args.first().cloned().unwrap_or(Value::Null);
            let a1 = args.get(1).cloned().unwrap_or(Value::Null);
            return Ok(match f {
                Func::ArrayAppend => {
                    let mut a = arr(&a0);
                    a.push(a1);
                    Value::Array(a)
                }
                Func::ArrayPrepend => {
                    let mut a = vec![a0];
                    a.extend(arr(&a1));
                    Value::Array(a)
                }
                _ => {
                    if a0.is_null() && a1.is_null() {
                        Value::Null
                    } else {
                        let mut a = arr(&a0);
                        a.extend(arr(&a1));
                        Value::Array(a)
                    }
                }
            });
        }
        Func::ArrayToString => {
            let (Some(Value::Array(items)), Some(Value::Text(sep))) = (args.first(), args.get(1))
            else {
                return Ok(Value::Null);
            };
            let elem = match types.first() {
                Some(DataType::Array(e)) => (**e).clone(),
                _ => DataType::Text,
            };
            let null_text = match args.get(2) {
                Some(Value::Text(t)) => Some(t.clone()),
                _ => None,
            };
            let parts: Vec<String> = items
                .iter()
                .filter_map(|v| match v {
                    Value::Null => null_text.clone(),
                    v => Some(text_of(v, &elem, cx)),
                })
                .collect();
            return Ok(Value::Text(parts.join(sep)));
        }
        _ => {}
    }
    if f == Func::ConcatFn {
        let mut s = String::new();
        for (v, t) in args.iter().zip(types) {
            if !v.is_null() {
                s.push_str(&text_of(v, t, cx));
            }
        }
        return Ok(Value::Text(s));
    }
    if let Some(v) = call_misc(f, &args, types, cx)? {
        return Ok(v);
    }
    if let Some(v) = call_json(f, &args, types, ty, cx)? {
        return Ok(v);
    }
    if let Func::DateTime(g) = f {
        return crate::types::dtfunc::call(g, &args, &cx.tz);
    }
    if let (Func::Inet(op), [a, b]) = (f, args.as_slice()) {
        let cidr = |i: usize| types.get(i) == Some(&DataType::Cidr);
        return crate::types::inet::call(op, a, cidr(0), b, cidr(1));
    }
    if let Some(v) = call_settings(f, &args, cx)? {
        return Ok(v);
    }
    if f == Func::PgTypeof {
        return Ok(Value::Text(
            types
                .first()
                .map(|t| t.without_typmod().name())
                .unwrap_or_default(),
        ));
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    if let Some(v) = call_regex(f, &args)? {
        return Ok(v);
    }
    let a0 = args.first().cloned().unwrap_or(Value::Null);
    let s0 = text_arg(&a0).unwrap_or("").to_string();
    Ok(match f {
        Func::Abs => match a0 {
            Value::Float4(x) => Value::Float4(x.abs()),
            Value::Float8(x) => Value::Float8(x.abs()),
            Value::Numeric(n) => Value::Numeric(n.abs()),
            v => {
                let x = as_int(&v).unwrap_or(0);
                make_int(x.checked_abs().ok_or_else(|| int_range_err(ty))?, ty)?
            }
        },
        Func::Sign => match a0 {
            Value::Numeric(n) => Value::Numeric(n.signum()),
            v => Value::Float8(
                as_f64(&v).unwrap_or(0.0).signum()
                    * f64::from(u8::from(as_f64(&v).unwrap_or(0.0) != 0.0)),
            ),
        },
        Func::Lower => Value::Text(s0.to_ascii_lowercase()),
        Func::Upper => Value::Text(s0.to_ascii_uppercase()),
        Func::Length => Value::Int4(s0.chars().count() as i32),
        Func::OctetLength => Value::Int4(s0.len() as i32),
        Func::Reverse => Value::Text(s0.chars().rev().collect()),
        Func::Substr => {
            let chars: Vec<char> = s0.chars().collect();
            let from = args.get(1).and_then(int_arg).unwrap_or(1);
            let end = match args.get(2).and_then(int_arg) {
                Some(n) if n < 0 => {
                    return Err(err(
                        SqlState::SubstringError,
                        "negative substring length not allowed",
                    ))
                }
                Some(n) => from.saturating_add(n),
                None => i64::MAX,
            };
            let start = from.max(1);
            if end <= start {
                Value::Text(String::new())
            } else {
                let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
                let take = usize::try_from(end - start).unwrap_or(usize::MAX);
                Value::Text(chars.iter().skip(skip).take(take).collect())
            }
        }
        Func::Left | Func::Right => {
            let chars: Vec<char> = s0.chars().collect();
            let n = args.get(1).and_then(int_arg).unwrap_or(0);
            let len = chars.len() as i64;
            let k = if n >= 0 { n.min(len) } else { (len + n).max(0) };
            let k = usize::try_from(k).unwrap_or(0);
            Value::Text(if f == Func::Left {
                chars[..k].iter().collect()
            } else {
                chars[chars.len() - k..].iter().collect()
            })
        }
        Func::Repeat => {
            let n = args.get(1).and_then(int_arg).unwrap_or(0).max(0);
            let n = usize::try_from(n).unwrap_or(0);
            if s0.len().saturating_mul(n) >= 1 << 30 {
                return Err(err(
                    SqlState::ProgramLimitExceeded,
                    "requested length too large",
                ));
            }
            Value::Text(s0.repeat(n))
        }
        Func::Btrim | Func::Ltrim | Func::Rtrim => {
            let set: Vec<char> = args
                .get(1)
                .and_then(text_arg)
                .map(|s| s.chars().collect())
                .unwrap_or_else(|| vec![' ']);
            let r = match f {
                Func::Btrim => s0.trim_matches(|c| set.contains(&c)),
                Func::Ltrim => s0.trim_start_matches(|c| set.contains(&c)),
                _ => s0.trim_end_matches(|c| set.contains(&c)),
            };
            Value::Text(r.to_string())
        }
        Func::Replace => {
            let from = args.get(1).and_then(text_arg).unwrap_or("");
            let to = args.get(2).and_then(text_arg).unwrap_or("");
            Value::Text(if from.is_empty() {
                s0
            } else {
                s0.replace(from, to)
            })
        }
        Func::Strpos => {
            let sub = args.get(1).and_then(text_arg).unwrap_or("");
            Value::Int4(match s0.find(sub) {
                Some(b) => s0[..b].chars().count() as i32 + 1,
                None => 0,
            })
        }
        Func::Round | Func::Trunc => {
            let s = args
                .get(1)
                .and_then(int_arg)
                .map(|x| i32::try_from(x).unwrap_or(0));
            match a0 {
                Value::Numeric(n) => Value::Numeric(if f == Func::Round {
                    n.round(s.unwrap_or(0))
                } else {
                    n.trunc(s.unwrap_or(0))
                }),
                v => {
                    let x = as_f64(&v).unwrap_or(0.0);
                    Value::Float8(if f == Func::Round {
                        x.round_ties_even()
                    } else {
                        x.trunc()
                    })
                }
            }
        }
        Func::Ceil | Func::Floor => match a0 {
            Value::Numeric(n) => Value::Numeric(if f == Func::Ceil { n.ceil() } else { n.floor() }),
            v => {
                let x = as_f64(&v).unwrap_or(0.0);
                Value::Float8(if f == Func::Ceil { x.ceil() } else { x.floor() })
            }
        },
        Func::Sqrt => match a0 {
            Value::Numeric(n) => Value::Numeric(n.sqrt()?),
            v => {
                let x = as_f64(&v).unwrap_or(0.0);
                if x < 0.0 {
                    return Err(err(
                        SqlState::InvalidArgumentForPowerFunction,
                        "cannot take square root of a negative number",
                    ));
                }
                Value::Float8(x.sqrt())
            }
        },
        Func::ModFn => {
            let b = args.get(1).cloned().unwrap_or(Value::Null);
            let in_ty = types.first().cloned().unwrap_or(DataType::Int4);
            binary(BinOp::Mod, a0, b, &in_ty, ty, cx)?
        }
        Func::Power => {
            let x = as_f64(&a0).unwrap_or(0.0);
            let y = args.get(1).and_then(as_f64).unwrap_or(0.0);
            if x == 0.0 && y < 0.0 {
                return Err(err(
                    SqlState::InvalidArgumentForPowerFunction,
                    "zero raised to a negative power is undefined",
                ));
            }
            if x < 0.0 && y.fract() != 0.0 {
                return Err(err(
                    SqlState::InvalidArgumentForPowerFunction,
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            let r = x.powf(y);
            if r.is_infinite() {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "value out of range: overflow",
                ));
            }
            Value::Float8(r)
        }
        Func::Extract | Func::DatePart => {
            let field = s0.to_ascii_lowercase();
            let src = args.get(1).cloned().unwrap_or(Value::Null);
            let n = match src {
                Value::Timestamp(t) => datetime::extract_timestamp(&field, t, None)?,
                Value::Timestamptz(t) => datetime::extract_timestamp(&field, t, Some(&cx.tz))?,
                Value::Date(d) => datetime::extract_date(&field, d)?,
                Value::Interval(iv) => Some(datetime::extract_interval(&field, &iv)?),
                Value::Time(t) => Some(datetime::extract_time(&field, t)?),
                _ => None,
            };
            match n {
                None => Value::Null,
                Some(n) if f == Func::Extract => Value::Numeric(n),
                Some(n) => Value::Float8(n.to_f64()),
            }
        }
        Func::DateTrunc => {
            let field = s0.to_ascii_lowercase();
            match args.get(1).cloned().unwrap_or(Value::Null) {
                Value::Timestamp(t) => Value::Timestamp(datetime::date_trunc(&field, t)?),
                Value::Timestamptz(t) => {
                    Value::Timestamptz(datetime::date_trunc_tz(&field, t, &cx.tz)?)
                }
                Value::Interval(iv) => Value::Interval(datetime::date_trunc_interval(&field, &iv)?),
                _ => Value::Null,
            }
        }
        Func::Age => match (&a0, args.get(1)) {
            (Value::Timestamp(a), Some(Value::Timestamp(b)))
            | (Value::Timestamptz(a), Some(Value::Timestamptz(b))) => {
                Value::Interval(datetime::age(*a, *b)?)
            }
            _ => Value::Null,
        },
        Func::JustifyHours | Func::JustifyDays | Func::JustifyInterval => match &a0 {
            Value::Interval(iv) => Value::Interval(match f {
                Func::JustifyHours => datetime::justify_hours(iv)?,
                Func::JustifyDays => datetime::justify_days(iv)?,
                _ => datetime::justify_interval(iv)?,
            }),
            _ => Value::Null,
        },
        Func::Exp
        | Func::Ln
        | Func::Log10
        | Func::Cbrt
        | Func::Sin
        | Func::Cos
        | Func::Tan
        | Func::Asin
        | Func::Acos
        | Func::Atan
        | Func::Degrees
        | Func::Radians => {
            let x = as_f64(&a0).unwrap_or(0.0);
            if matches!(f, Func::Ln | Func::Log10) {
                if x == 0.0 {
                    return Err(err(
                        SqlState::InvalidArgumentForLogarithm,
                        "cannot take logarithm of zero",
                    ));
                }
                if x < 0.0 {
                    return Err(err(
                        SqlState::InvalidArgumentForLogarithm,
                        "cannot take logarithm of a negative number",
                    ));
                }
            }
            if matches!(f, Func::Asin | Func::Acos) && !(-1.0..=1.0).contains(&x) {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "input is out of range",
                ));
            }
            let r = match f {
                Func::Exp => x.exp(),
                Func::Ln => x.ln(),
                Func::Log10 => x.log10(),
                Func::Cbrt => x.cbrt(),
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Tan => x.tan(),
                Func::Asin => x.asin(),
                Func::Acos => x.acos(),
                Func::Atan => x.atan(),
                Func::Degrees => x.to_degrees(),
                _ => x.to_radians(),
            };
            if r.is_infinite() && x.is_finite() {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "value out of range: overflow",
                ));
            }
            Value::Float8(r)
        }
        Func::Atan2 => {
            let y = as_f64(&a0).unwrap_or(0.0);
            let x = args.get(1).and_then(as_f64).unwrap_or(0.0);
            Value::Float8(y.atan2(x))
        }
        Func::Initcap => {
            let mut out = String::with_capacity(s0.len());
            let mut start = true;
            for c in s0.chars() {
                if c.is_ascii_alphanumeric() {
                    if start {
                        out.push(c.to_ascii_uppercase());
                    } else {
                        out.push(c.to_ascii_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = !c.is_alphanumeric();
                }
            }
            Value::Text(out)
        }
        Func::Lpad | Func::Rpad => {
            let n = args.get(1).and_then(int_arg).unwrap_or(0).max(0);
            let n = usize::try_from(n).unwrap_or(0);
            if n > 1 << 28 {
                return Err(err(
                    SqlState::ProgramLimitExceeded,
                    "requested length too large",
                ));
            }
            let fill: Vec<char> = args
                .get(2)
                .and_then(text_arg)
                .unwrap_or(" ")
                .chars()
                .collect();
            let chars: Vec<char> = s0.chars().collect();
            if chars.len() >= n || fill.is_empty() {
                Value::Text(chars.iter().take(n).collect())
            } else {
                let pad: String = fill.iter().cycle().take(n - chars.len()).collect();
                Value::Text(if f == Func::Lpad {
                    pad + &s0
                } else {
                    s0 + &pad
                })
            }
        }
        Func::SplitPart => {
            let delim = args.get(1).and_then(text_arg).unwrap_or("");
            let n = args.get(2).and_then(int_arg).unwrap_or(0);
            if n == 0 {
                return Err(err(
                    SqlState::InvalidParameterValue,
                    "field position must not be zero",
                ));
            }
            let parts: Vec<&str> = if delim.is_empty() {
                vec![s0.as_str()]
            } else {
                s0.split(delim).collect()
            };
            let idx = if n > 0 {
                usize::try_from(n - 1).ok()
            } else {
                usize::try_from(parts.len() as i64 + n).ok()
            };
            Value::Text(
                idx.and_then(|i| parts.get(i))
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            )
        }
        Func::Ascii => Value::Int4(s0.chars().next().map(|c| c as i32).unwrap_or(0)),
        Func::Chr => {
            let n = int_arg(&a0).unwrap_or(0);
            let c = u32::try_from(n)
                .ok()
                .filter(|&n| n != 0)
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    err(
                        SqlState::ProgramLimitExceeded,
                        "requested character too large for encoding",
                    )
                })?;
            Value::Text(c.to_string())
        }
        Func::StartsWith => {
            let p = args.get(1).and_then(text_arg).unwrap_or("");
            Value::Bool(s0.starts_with(p))
        }
        Func::Translate => {
            let from: Vec<char> = args
                .get(1)
                .and_then(text_arg)
                .unwrap_or("")
                .chars()
                .collect();
            let to: Vec<char> = args
                .get(2)
                .and_then(text_arg)
                .unwrap_or("")
                .chars()
                .collect();
            Value::Text(
                s0.chars()
                    .filter_map(|c| match from.iter().position(|&x| x == c) {
                        Some(i) => to.get(i).copied(),
                        None => Some(c),
                    })
                    .collect(),
            )
        }
        Func::NextVal | Func::CurrVal | Func::SetVal => {
            let seqs = cx.seqs.as_ref().ok_or_else(|| {
                err(
                    SqlState::FeatureNotSupported,
                    "sequences are not available here",
                )
            })?;
            let name = if s0.contains('.') {
                s0.to_ascii_lowercase()
            } else {
                format!("public.{}", s0.to_ascii_lowercase())
            };
            Value::Int8(match f {
                Func::NextVal => seqs.nextval(&name)?,
                Func::CurrVal => seqs.currval(&name)?,
                _ => {
                    let v = args.get(1).and_then(int_arg).unwrap_or(0);
                    let called = !matches!(args.get(2), Some(Value::Bool(false)));
                    seqs.setval(&name, v, called)?
                }
            })
        }
        Func::Factorial => {
            let n = int_arg(&a0).unwrap_or(0);
            if n < 0 {
                return Err(err(
                    SqlState::InvalidParameterValue,
                    "factorial of a negative number is undefined",
                ));
            }
            if n > 1000 {
                return Err(err(
                    SqlState::NumericValueOutOfRange,
                    "value overflows numeric format",
                ));
            }
            let mut acc = Numeric::from_i64(1);
            for k in 2..=n {
                acc = acc.mul(&Numeric::from_i64(k))?;
            }
            Value::Numeric(acc)
        }
        Func::DivTrunc => {
            let b = args
                .get(1)
                .and_then(as_numeric)
                .unwrap_or_else(Numeric::zero);
            let a = as_numeric(&a0).unwrap_or_else(Numeric::zero);
            Value::Numeric(a.div_trunc(&b)?)
        }
        Func::ArrayLength => match &a0 {
            Value::Array(a) if a.is_empty() => Value::Null,
            Value::Array(a) => match args.get(1).and_then(int_arg) {
                Some(1) | None => Value::Int4(i32::try_from(a.len()).unwrap_or(i32::MAX)),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Func::ConcatFn
        | Func::PgTypeof
        | Func::ConcatWs
        | Func::ArrayAppend
        | Func::ArrayPrepend
        | Func::ArrayCat
        | Func::ArrayToString
        | Func::NumNulls
        | Func::NumNonNulls
        | Func::RegexMatch
        | Func::SimilarEscape
        | Func::RegexpReplace
        | Func::RegexpMatch
        | Func::RegexpSplitToArray
        | Func::RegexpCount
        | Func::RegexpInstr
        | Func::RegexpLike
        | Func::RegexpSubstr
        | Func::RegexSubstring
        | Func::JsonGet
        | Func::JsonGetText
        | Func::JsonPath
        | Func::JsonPathText
        | Func::JsonContains
        | Func::JsonExists
        | Func::JsonExistsAny
        | Func::JsonExistsAll
        | Func::JsonConcat
        | Func::JsonDelete
        | Func::JsonDeletePath
        | Func::JsonTypeof
        | Func::JsonArrayLength
        | Func::JsonBuildObject
        | Func::JsonBuildArray
        | Func::ToJson
        | Func::JsonSet
        | Func::JsonInsert
        | Func::JsonPretty
        | Func::JsonStripNulls
        | Func::IsFinite
        | Func::Gcd
        | Func::Lcm
        | Func::WidthBucket
        | Func::MinScale
        | Func::Scale
        | Func::TrimScale
        | Func::BitLength
        | Func::ToHex
        | Func::ArrayRemove
        | Func::ArrayPosition
        | Func::ArrayPositions
        | Func::ArrayReplace
        | Func::StringToArray
        | Func::ArrayLower
        | Func::ArrayUpper
        | Func::ArrayDims
        | Func::ArrayNdims
        | Func::ArrayContains
        | Func::ArrayOverlap
        | Func::ByteaLength
        | Func::Encode
        | Func::Decode
        | Func::GetByte
        | Func::SetByte
        | Func::DateTime(_)
        | Func::CurrentSetting
        | Func::SetConfig
        | Func::BackendPid
        | Func::Inet(_) => Value::Null,
        Func::ToChar => {
            use crate::types::to_char;
            let fmt = args.get(1).and_then(text_arg).unwrap_or("");
            match &a0 {
                Value::Timestamp(ts) => Value::Text(to_char::format_tm(
                    &datetime::timestamp_to_tm(*ts),
                    fmt,
                    false,
                )),
                Value::Timestamptz(ts) => {
                    let local = datetime::utc_to_local(*ts, &cx.tz)?;
                    Value::Text(to_char::format_tm(
                        &datetime::timestamp_to_tm(local),
                        fmt,
                        false,
                    ))
                }
                Value::Interval(iv) => {
                    let tm = datetime::Tm {
                        year: iv.months / 12,
                        month: iv.months % 12,
                        day: iv.days,
                        hour: i32::try_from(iv.micros / 3_600_000_000).unwrap_or(i32::MAX),
                        minute: (iv.micros / 60_000_000 % 60) as i32,
                        second: (iv.micros / 1_000_000 % 60) as i32,
                        usec: (iv.micros % 1_000_000) as i32,
                    };
                    Value::Text(to_char::format_tm(&tm, fmt, true))
                }
                other => match as_numeric(other) {
                    Some(n) => Value::Text(to_char::format_number(&n, fmt)),
                    None => Value::Null,
                },
            }
        }
        // Evaluated by crate::funcs::call (NULL arguments of strict functions end here).
        Func::BitAnd
        | Func::BitOr
        | Func::BitXor
        | Func::BitNot
        | Func::ShiftLeft
        | Func::ShiftRight
        | Func::LogBase
        | Func::Random
        | Func::SetSeed
        | Func::GenRandomUuid
        | Func::Format
        | Func::QuoteIdent
        | Func::QuoteLiteral
        | Func::QuoteNullable
        | Func::Md5
        | Func::Sha256
        | Func::Overlay
        | Func::ConvertTo
        | Func::ConvertFrom
        | Func::PgColumnSize
        | Func::ByteaConcat
        | Func::ByteaSubstr
        | Func::ArraySlice
        | Func::ArrayFill
        | Func::ArraySetElem
        | Func::RowValue
        | Func::RowToJson
        | Func::JsonPathExists
        | Func::JsonPathMatch
        | Func::JsonPathQueryArray
        | Func::JsonPathQueryFirst
        | Func::ArrayToJson
        | Func::TrimArray
        | Func::Sha224
        | Func::Sha384
        | Func::Sha512 => Value::Null,
    })
}

/// The regular-expression functions (arguments already non-NULL); `None` for other functions.
fn call_regex(f: Func, args: &[Value]) -> Result<Option<Value>, PgError> {
    use crate::types::regex as re;
    let t = |k: usize| args.get(k).and_then(text_arg).unwrap_or("");
    let i = |k: usize, d: i64| args.get(k).and_then(int_arg).unwrap_or(d);
    let flags = |k: usize| re::parse_flags(t(k));
    let text_array = |v: Vec<Option<String>>| {
        Value::Array(
            v.into_iter()
                .map(|x| x.map_or(Value::Null, Value::Text))
                .collect(),
        )
    };
    Ok(Some(match f {
        Func::RegexMatch => Value::Bool(re::is_match(t(0), t(1), flags(2)?)?),
        Func::SimilarEscape => Value::Text(re::similar_to_regex(
            t(0),
            if args.len() > 1 {
                Some(t(1))
            } else {
                Some("\\")
            },
        )?),
        Func::RegexpReplace => Value::Text(re::replace(t(0), t(1), t(2), flags(3)?)?),
        Func::RegexpMatch => match re::first_match(t(0), t(1), flags(2)?)? {
            Some(v) => text_array(v),
            None => Value::Null,
        },
        Func::RegexpSplitToArray => text_array(
            re::split(t(0), t(1), flags(2)?)?
                .into_iter()
                .map(Some)
                .collect(),
        ),
        Func::RegexpCount => Value::Int4(re::count(t(0), t(1), i(2, 1), flags(3)?)?),
        Func::RegexpInstr => Value::Int4(re::instr(
            t(0),
            t(1),
            i(2, 1),
            i(3, 1),
            i(4, 0),
            flags(5)?,
            i(6, 0),
        )?),
        Func::RegexpLike => Value::Bool(re::is_match(t(0), t(1), flags(2)?)?),
        Func::RegexpSubstr => match re::substr(t(0), t(1), i(2, 1), i(3, 1), flags(4)?, i(5, 0))? {
            Some(s) => Value::Text(s),
            None => Value::Null,
        },
        Func::RegexSubstring => match re::substring(t(0), t(1))? {
            Some(s) => Value::Text(s),
            None => Value::Null,
        },
        _ => return Ok(None),
    }))
}

/// A SQL value as JSON (`to_jsonb`): numbers and booleans as themselves, json as its tree, anything
/// else as its text.
fn value_to_json(
    v: &Value,
    t: &DataType,
    cx: &EvalContext,
) -> Result<crate::types::text::Json, PgError> {
    use crate::types::json as j;
    Ok(match v {
        Value::Null => j::null(),
        Value::Bool(b) => j::boolean(*b),
        Value::Json(s) | Value::Jsonb(s) => j::parse(s)?,
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            j::number(text_of(v, t, cx))
        }
        Value::Float4(_) | Value::Float8(_) => {
            let s = text_of(v, t, cx);
            if s.parse::<f64>().is_ok_and(f64::is_finite) {
                j::number(s)
            } else {
                j::string(&s)
            }
        }
        Value::Array(items) => {
            let et = match t {
                DataType::Array(e) => (**e).clone(),
                _ => DataType::Text,
            };
            j::array(
                items
                    .iter()
                    .map(|x| value_to_json(x, &et, cx))
                    .collect::<Result<_, _>>()?,
            )
        }
        other => j::string(&text_of(other, t, cx)),
    })
}

/// The JSON functions; `None` for other functions.
fn call_json(
    f: Func,
    args: &[Value],
    types: &[DataType],
    ty: &DataType,
    cx: &EvalContext,
) -> Result<Option<Value>, PgError> {
    use crate::types::json as j;
    let out = |tree: &crate::types::text::Json| {
        let s = j::print(tree);
        if *ty == DataType::Json {
            Value::Json(s)
        } else {
            Value::Jsonb(s)
        }
    };
    let opt_out = |tree: Option<&crate::types::text::Json>| tree.map_or(Value::Null, out);
    let ty_at = |k: usize| types.get(k).cloned().unwrap_or(DataType::Text);
    match f {
        Func::JsonBuildObject => {
            if !args.len().is_multiple_of(2) {
                return Err(err(
                    SqlState::InvalidParameterValue,
                    "argument list must have even number of elements",
                ));
            }
            let mut pairs = Vec::new();
            for k in (0..args.len()).step_by(2) {
                if args[k].is_null() {
                    return Err(err(
                        SqlState::NullValueNotAllowed,
                        format!("argument {}: key must not be null", k + 1),
                    ));
                }
                let key = text_of(&args[k], &ty_at(k), cx);
                pairs.push((key, value_to_json(&args[k + 1], &ty_at(k + 1), cx)?));
            }
            return Ok(Some(out(&j::object(pairs))));
        }
        Func::JsonBuildArray => {
            let items = args
                .iter()
                .enumerate()
                .map(|(k, v)| value_to_json(v, &ty_at(k), cx))
                .collect::<Result<_, _>>()?;
            return Ok(Some(out(&j::array(items))));
        }
        _ => {}
    }
    let is_json = matches!(
        f,
        Func::JsonGet
            | Func::JsonGetText
            | Func::JsonPath
            | Func::JsonPathText
            | Func::JsonContains
            | Func::JsonExists
            | Func::JsonExistsAny
            | Func::JsonExistsAll
            | Func::JsonConcat
            | Func::JsonDelete
            | Func::JsonDeletePath
            | Func::JsonTypeof
            | Func::JsonArrayLength
            | Func::ToJson
            | Func::JsonSet
            | Func::JsonInsert
            | Func::JsonPretty
            | Func::JsonStripNulls
    );
    if !is_json {
        return Ok(None);
    }
    if args.iter().any(Value::is_null) {
        return Ok(Some(Value::Null));
    }
    if f == Func::ToJson {
        return Ok(Some(out(&value_to_json(&args[0], &ty_at(0), cx)?)));
    }
    let doc = |k: usize| -> Result<crate::types::text::Json, PgError> {
        match args.get(k) {
            Some(Value::Json(s) | Value::Jsonb(s) | Value::Text(s)) => j::parse(s),
            _ => Ok(j::null()),
        }
    };
    let strs = |k: usize| -> Vec<String> {
        match args.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| text_arg(v).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let step = |k: usize| match args.get(k) {
        Some(Value::Text(s)) => j::Step::Key(s),
        Some(v) => j::Step::Index(as_int(v).unwrap_or(0)),
        None => j::Step::Index(0),
    };
    let d0 = doc(0)?;
    Ok(Some(match f {
        Func::JsonGet => opt_out(j::get(&d0, &step(1))),
        Func::JsonGetText => j::get(&d0, &step(1))
            .and_then(j::as_text)
            .map_or(Value::Null, Value::Text),
        Func::JsonPath => opt_out(j::get_path(&d0, &strs(1))),
        Func::JsonPathText => j::get_path(&d0, &strs(1))
            .and_then(j::as_text)
            .map_or(Value::Null, Value::Text),
        Func::JsonContains => Value::Bool(j::contains(&d0, &doc(1)?)),
        Func::JsonExists => Value::Bool(j::exists(&d0, text_arg(&args[1]).unwrap_or(""))),
        Func::JsonExistsAny => Value::Bool(strs(1).iter().any(|k| j::exists(&d0, k))),
        Func::JsonExistsAll => Value::Bool(strs(1).iter().all(|k| j::exists(&d0, k))),
        Func::JsonConcat => out(&j::concat(d0, doc(1)?)),
        Func::JsonDelete => out(&j::delete(d0, &step(1))?),
        Func::JsonDeletePath => out(&j::delete_path(d0, &strs(1))?),
        Func::JsonTypeof => Value::Text(j::type_of(&d0).to_string()),
        Func::JsonArrayLength => Value::Int4(j::array_length(&d0)?),
        Func::JsonSet | Func::JsonInsert => {
            let flag = matches!(args.get(3), Some(Value::Bool(true)));
            let insert = (f == Func::JsonInsert).then_some(flag);
            let create = f == Func::JsonSet && !matches!(args.get(3), Some(Value::Bool(false)));
            out(&j::set_path(d0, &strs(1), &doc(2)?, create, insert)?)
        }
        Func::JsonPretty => Value::Text(j::pretty(&d0)),
        Func::JsonStripNulls => out(&j::strip_nulls(d0)),
        _ => return Ok(None),
    }))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(b: &[u8]) -> String {
    let mut out = String::new();
    for (n, chunk) in b.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.push('\n');
        }
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Result<Vec<u8>, PgError> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        if c.is_ascii_whitespace() || c == b'=' {
            continue;
        }
        let v = B64.iter().position(|&x| x == c).ok_or_else(|| {
            err(
                SqlState::InvalidParameterValue,
                format!(
                    "invalid symbol \"{}\" found while decoding base64 sequence",
                    c as char
                ),
            )
        })?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Ok(out)
}

fn bad_encoding(name: &str) -> PgError {
    err(
        SqlState::InvalidParameterValue,
        format!("unrecognized encoding: \"{name}\""),
    )
}

/// Array, string, bytea and numeric helpers; `None` for other functions. Handles its own NULLs
/// (some of these are not strict).
fn call_misc(
    f: Func,
    args: &[Value],
    types: &[DataType],
    cx: &EvalContext,
) -> Result<Option<Value>, PgError> {
    let a0 = args.first().cloned().unwrap_or(Value::Null);
    let arr = |v: &Value| match v {
        Value::Array(a) => Some(a.clone()),
        _ => None,
    };
    let eq = |x: &Value, y: &Value| -> bool {
        if x.is_null() || y.is_null() {
            return x.is_null() && y.is_null();
        }
        compare(x, y) == Some(Ordering::Equal)
    };
    // Not strict.
    match f {
        Func::ArrayRemove | Func::ArrayPosition | Func::ArrayPositions | Func::ArrayReplace => {
            let Some(a) = arr(&a0) else {
                return Ok(Some(Value::Null));
            };
            let x = args.get(1).cloned().unwrap_or(Value::Null);
            return Ok(Some(match f {
                Func::ArrayRemove => Value::Array(a.into_iter().filter(|v| !eq(v, &x)).collect()),
                Func::ArrayReplace => {
                    let y = args.get(2).cloned().unwrap_or(Value::Null);
                    Value::Array(
                        a.into_iter()
                            .map(|v| if eq(&v, &x) { y.clone() } else { v })
                            .collect(),
                    )
                }
                Func::ArrayPosition => match a.iter().position(|v| eq(v, &x)) {
                    Some(k) => Value::Int4(i32::try_from(k + 1).unwrap_or(i32::MAX)),
                    None => Value::Null,
                },
                _ => Value::Array(
                    a.iter()
                        .enumerate()
                        .filter(|(_, v)| eq(v, &x))
                        .map(|(k, _)| Value::Int4(i32::try_from(k + 1).unwrap_or(i32::MAX)))
                        .collect(),
                ),
            }));
        }
        Func::StringToArray => {
            let Value::Text(s) = &a0 else {
                return Ok(Some(Value::Null));
            };
            let null_str = args.get(2).and_then(text_arg);
            let parts: Vec<String> = match args.get(1) {
                Some(Value::Text(sep)) if sep.is_empty() => vec![s.clone()],
                Some(Value::Text(sep)) => {
                    if s.is_empty() {
                        Vec::new()
                    } else {
                        s.split(sep.as_str()).map(str::to_string).collect()
                    }
                }
                _ => s.chars().map(|c| c.to_string()).collect(),
            };
            return Ok(Some(Value::Array(
                parts
                    .into_iter()
                    .map(|p| {
                        if Some(p.as_str()) == null_str {
                            Value::Null
                        } else {
                            Value::Text(p)
                        }
                    })
                    .collect(),
            )));
        }
        _ => {}
    }
    let mine = matches!(
        f,
        Func::IsFinite
            | Func::Gcd
            | Func::Lcm
            | Func::WidthBucket
            | Func::MinScale
            | Func::Scale
            | Func::TrimScale
            | Func::BitLength
            | Func::ToHex
            | Func::ArrayLower
            | Func::ArrayUpper
            | Func::ArrayDims
            | Func::ArrayNdims
            | Func::ArrayContains
            | Func::ArrayOverlap
            | Func::ByteaLength
            | Func::Encode
            | Func::Decode
            | Func::GetByte
            | Func::SetByte
    );
    if !mine {
        return Ok(None);
    }
    if args.iter().any(Value::is_null) {
        return Ok(Some(Value::Null));
    }
    let i = |k: usize| args.get(k).and_then(as_int).unwrap_or(0);
    let t = |k: usize| args.get(k).and_then(text_arg).unwrap_or("");
    let bytes = |v: &Value| match v {
        Value::Bytea(b) => b.clone(),
        Value::Text(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    let nonempty_len = |a: &Value| match a {
        Value::Array(v) if !v.is_empty() => Some(v.len()),
        _ => None,
    };
    Ok(Some(match f {
        Func::IsFinite => Value::Bool(match &a0 {
            Value::Date(d) => *d != i32::MIN && *d != i32::MAX,
            Value::Timestamp(t) | Value::Timestamptz(t) => *t != i64::MIN && *t != i64::MAX,
            _ => true,
        }),
        Func::Gcd | Func::Lcm => {
            let (a, b) = (i(0), i(1));
            let mut x = a.unsigned_abs();
            let mut y = b.unsigned_abs();
            while y != 0 {
                let r = x % y;
                x = y;
                y = r;
            }
            let g = x;
            let r = if f == Func::Gcd {
                g
            } else {
                match a.unsigned_abs().checked_div(g) {
                    None => 0,
                    Some(q) => q.checked_mul(b.unsigned_abs()).ok_or_else(|| {
                        err(SqlState::NumericValueOutOfRange, "integer out of range")
                    })?,
                }
            };
            let ty = types.first().cloned().unwrap_or(DataType::Int4);
            let r = i64::try_from(r)
                .map_err(|_| err(SqlState::NumericValueOutOfRange, "integer out of range"))?;
            make_int(r, &ty)?
        }
        Func::WidthBucket => {
            let x = as_f64(&a0).unwrap_or(0.0);
            let lo = args.get(1).and_then(as_f64).unwrap_or(0.0);
            let hi = args.get(2).and_then(as_f64).unwrap_or(0.0);
            let n = i(3);
            if n <= 0 {
                return Err(err(
                    SqlState::InvalidArgumentForWidthBucket,
                    "count must be greater than zero",
                ));
            }
            if lo == hi {
                return Err(err(
                    SqlState::InvalidArgumentForWidthBucket,
                    "lower bound cannot equal upper bound",
                ));
            }
            let nf = n as f64;
            let r = if lo < hi {
                if x < lo {
                    0
                } else if x >= hi {
                    n + 1
                } else {
                    ((x - lo) / (hi - lo) * nf).floor() as i64 + 1
                }
            } else if x > lo {
                0
            } else if x <= hi {
                n + 1
            } else {
                ((lo - x) / (lo - hi) * nf).floor() as i64 + 1
            };
            Value::Int4(i32::try_from(r).unwrap_or(i32::MAX))
        }
        Func::MinScale | Func::Scale | Func::TrimScale => {
            let n = as_numeric(&a0).unwrap_or_else(Numeric::zero);
            let text = n.to_text();
            let trimmed = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text.clone()
            };
            let min_scale = trimmed.split_once('.').map_or(0, |(_, fr)| fr.len());
            match f {
                Func::Scale => Value::Int4(i32::try_from(n.scale()).unwrap_or(0)),
                Func::MinScale => Value::Int4(i32::try_from(min_scale).unwrap_or(0)),
                _ => Value::Numeric(Numeric::parse(&trimmed)?),
            }
        }
        Func::BitLength => Value::Int4(i32::try_from(bytes(&a0).len() * 8).unwrap_or(i32::MAX)),
        Func::ToHex => {
            let v = i(0);
            Value::Text(match types.first() {
                Some(DataType::Int8) => format!("{:x}", v as u64),
                _ => format!("{:x}", v as i32 as u32),
            })
        }
        Func::ArrayLower => match (nonempty_len(&a0), i(1)) {
            (Some(_), 1) => Value::Int4(1),
            _ => Value::Null,
        },
        Func::ArrayUpper => match (nonempty_len(&a0), i(1)) {
            (Some(n), 1) => Value::Int4(i32::try_from(n).unwrap_or(i32::MAX)),
            _ => Value::Null,
        },
        Func::ArrayDims => match nonempty_len(&a0) {
            Some(n) => Value::Text(format!("[1:{n}]")),
            None => Value::Null,
        },
        Func::ArrayNdims => match nonempty_len(&a0) {
            Some(_) => Value::Int4(1),
            None => Value::Null,
        },
        Func::ArrayContains | Func::ArrayOverlap => {
            let a = arr(&a0).unwrap_or_default();
            let b = args.get(1).and_then(arr).unwrap_or_default();
            let has = |x: &Value| !x.is_null() && a.iter().any(|y| !y.is_null() && eq(x, y));
            Value::Bool(if f == Func::ArrayContains {
                b.iter().all(has)
            } else {
                b.iter().any(has)
            })
        }
        Func::ByteaLength => Value::Int4(i32::try_from(bytes(&a0).len()).unwrap_or(i32::MAX)),
        Func::Encode => {
            let b = bytes(&a0);
            Value::Text(match t(1).to_ascii_lowercase().as_str() {
                "hex" => b.iter().map(|x| format!("{x:02x}")).collect(),
                "base64" => base64_encode(&b),
                "escape" => {
                    let mut s = String::new();
                    for &x in &b {
                        if x == b'\\' {
                            s.push_str("\\\\");
                        } else if x == 0 || x >= 0x80 {
                            s.push_str(&format!("\\{x:03o}"));
                        } else {
                            s.push(x as char);
                        }
                    }
                    s
                }
                other => return Err(bad_encoding(other)),
            })
        }
        Func::Decode => {
            let s = t(0);
            Value::Bytea(match t(1).to_ascii_lowercase().as_str() {
                "hex" => {
                    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
                    if !digits.len().is_multiple_of(2) {
                        return Err(err(
                            SqlState::InvalidParameterValue,
                            "invalid hexadecimal data: odd number of digits",
                        ));
                    }
                    digits
                        .chunks(2)
                        .map(|p| match (hex_val(p[0]), hex_val(p[1])) {
                            (Some(h), Some(l)) => Ok(h * 16 + l),
                            _ => Err(err(
                                SqlState::InvalidParameterValue,
                                format!("invalid hexadecimal digit: \"{}\"", p[0] as char),
                            )),
                        })
                        .collect::<Result<_, _>>()?
                }
                "base64" => base64_decode(s)?,
                "escape" => s.as_bytes().to_vec(),
                other => return Err(bad_encoding(other)),
            })
        }
        Func::GetByte | Func::SetByte => {
            let mut b = bytes(&a0);
            let n = i(1);
            let len = b.len();
            let k = usize::try_from(n)
                .ok()
                .filter(|k| *k < len)
                .ok_or_else(|| {
                    err(
                        SqlState::ArraySubscriptError,
                        format!("index {n} out of valid range, 0..{}", len.saturating_sub(1)),
                    )
                })?;
            if f == Func::GetByte {
                Value::Int4(i32::from(b[k]))
            } else {
                b[k] = (i(2) & 0xff) as u8;
                Value::Bytea(b)
            }
        }
        _ => {
            let _ = cx;
            return Ok(None);
        }
    }))
}

/// `current_setting`, `set_config` and `pg_backend_pid`; `None` for other functions.
fn call_settings(f: Func, args: &[Value], cx: &EvalContext) -> Result<Option<Value>, PgError> {
    if !matches!(f, Func::CurrentSetting | Func::SetConfig | Func::BackendPid) {
        return Ok(None);
    }
    let text = |i: usize| match args.get(i) {
        Some(Value::Text(s)) => Some(s.as_str()),
        _ => None,
    };
    let no_source = || {
        err(
            SqlState::FeatureNotSupported,
            "session settings are not available here",
        )
    };
    Ok(Some(match f {
        Func::BackendPid => Value::Int4(cx.settings.as_ref().map_or(0, |s| s.backend_pid())),
        Func::CurrentSetting => {
            let Some(name) = text(0) else {
                return Ok(Some(Value::Null));
            };
            let missing_ok = matches!(args.get(1), Some(Value::Bool(true)));
            let r = match &cx.settings {
                Some(s) => s.get(name),
                None => Err(no_source()),
            };
            match r {
                Ok(v) => Value::Text(v),
                Err(e) if missing_ok && e.code == SqlState::UndefinedObject => Value::Null,
                Err(e) => return Err(e),
            }
        }
        _ => {
            let Some(name) = text(0) else {
                return Err(err(
                    SqlState::NullValueNotAllowed,
                    "SET requires parameter name",
                ));
            };
            let is_local = matches!(args.get(2), Some(Value::Bool(true)));
            let src = cx.settings.as_ref().ok_or_else(no_source)?;
            // set_config(name, NULL, ...) sets the empty string, as PostgreSQL.
            Value::Text(src.set(name, text(1).unwrap_or(""), is_local)?)
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_like_postgres() {
        assert!(like("abc", "a%").unwrap());
        assert!(like("abc", "_b_").unwrap());
        assert!(!like("abc", "b%").unwrap());
        assert!(like("a%c", "a\\%c").unwrap());
        assert!(like("", "%").unwrap());
        assert!(like("aXbXc", "%b%c").unwrap());
        assert!(like("abc", "abc\\").is_err());
    }

    #[test]
    fn three_valued_logic() {
        let cx = EvalContext::default();
        let t = Expr::Const(Value::Bool(true), DataType::Bool);
        let f = Expr::Const(Value::Bool(false), DataType::Bool);
        let n = Expr::Const(Value::Null, DataType::Bool);
        assert_eq!(
            Expr::And(vec![t.clone(), n.clone()])
                .eval(&[], &cx)
                .unwrap(),
            Value::Null
        );
        assert_eq!(
            Expr::And(vec![f.clone(), n.clone()])
                .eval(&[], &cx)
                .unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            Expr::Or(vec![t, n.clone()]).eval(&[], &cx).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            Expr::Or(vec![f, n.clone()]).eval(&[], &cx).unwrap(),
            Value::Null
        );
        assert_eq!(Expr::Not(Box::new(n)).eval(&[], &cx).unwrap(), Value::Null);
    }

    #[test]
    fn integer_overflow_and_division_by_zero() {
        let cx = EvalContext::default();
        let c = |v: i32| Box::new(Expr::Const(Value::Int4(v), DataType::Int4));
        let add = Expr::Binary(BinOp::Add, c(i32::MAX), c(1), DataType::Int4);
        assert_eq!(
            add.eval(&[], &cx).unwrap_err().code,
            SqlState::NumericValueOutOfRange
        );
        let div = Expr::Binary(BinOp::Div, c(1), c(0), DataType::Int4);
        assert_eq!(
            div.eval(&[], &cx).unwrap_err().code,
            SqlState::DivisionByZero
        );
        let div = Expr::Binary(BinOp::Div, c(7), c(-2), DataType::Int4);
        assert_eq!(div.eval(&[], &cx).unwrap(), Value::Int4(-3));
    }
}
