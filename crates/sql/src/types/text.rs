//! PostgreSQL 15's text I/O functions: [`Value::to_text`] (the `*out` functions) and
//! [`parse_text`] (the `*in` functions, with PostgreSQL's messages and SQLSTATEs).
//!
//! Output follows the defaults a fresh PostgreSQL 15 session has: `DateStyle = ISO, MDY`,
//! `IntervalStyle = postgres`, `extra_float_digits = 1` (shortest round-trip floats),
//! `bytea_output = hex`.

use std::fmt::Write as _;

use pgxc_common::{PgError, SqlState};

use super::datetime::{self, TimeZone};
use super::numeric::Numeric;
use super::{DataType, Value};

impl Value {
    /// PostgreSQL's output function for this value as type `ty` (`NULL` for SQL NULL; use
    /// [`Value::to_text_opt`] to tell NULL apart).
    pub fn to_text(&self, ty: &DataType, tz: &TimeZone) -> String {
        self.to_text_opt(ty, tz).unwrap_or_else(|| "NULL".into())
    }

    /// PostgreSQL's output function, `None` for SQL NULL.
    pub fn to_text_opt(&self, ty: &DataType, tz: &TimeZone) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "t" } else { "f" }.into(),
            Value::Int2(v) => v.to_string(),
            Value::Int4(v) => v.to_string(),
            Value::Int8(v) if *ty == DataType::Money => super::money::format_money(*v),
            Value::Int8(v) => v.to_string(),
            Value::Float4(v) => format_float4_digits(*v, tz.extra_float_digits),
            Value::Float8(v) => format_float8_digits(*v, tz.extra_float_digits),
            Value::Numeric(n) => n.to_text(),
            Value::Text(s) => match ty {
                DataType::Char(n) => pad_char(s, *n),
                _ => s.clone(),
            },
            Value::Bytea(b) => format_bytea(b),
            Value::Date(d) => datetime::format_date_styled(*d, tz),
            Value::Time(t) => datetime::format_time(*t),
            Value::Timetz(t, off) => datetime::format_timetz(*t, *off),
            Value::Timestamp(t) => datetime::format_timestamp_styled(*t, tz),
            Value::Timestamptz(t) => datetime::format_timestamptz(*t, tz),
            Value::Interval(iv) => datetime::format_interval_styled(iv, tz.interval_style),
            Value::Uuid(u) => format_uuid(u),
            Value::Json(s) | Value::Jsonb(s) => s.clone(),
            Value::Array(elems) => {
                let elem_ty = ty.element().cloned().unwrap_or(DataType::Text);
                format_array(elems, &elem_ty, tz)
            }
        })
    }
}

fn pad_char(s: &str, n: u32) -> String {
    let len = s.chars().count();
    if len >= n as usize {
        s.to_string()
    } else {
        let mut r = s.to_string();
        r.extend(std::iter::repeat_n(' ', n as usize - len));
        r
    }
}

/// `float8out` with `extra_float_digits = 1`: shortest round-trip digits; exponent form when the
/// decimal exponent is < -4 or >= 15 (`1e+15`, `1e-05`).
pub fn format_float8(v: f64) -> String {
    format_shortest(
        v.is_nan(),
        v.is_infinite(),
        v.is_sign_negative(),
        v == 0.0,
        &format!("{v:e}"),
        &format!("{v}"),
        15,
    )
}

/// `float8out` for any `extra_float_digits`: > 0 is the shortest round-trip form
/// ([`format_float8`]), otherwise `%.{15 + extra}g` as PostgreSQL's `float8out_internal`.
pub fn format_float8_digits(v: f64, extra: i32) -> String {
    if extra > 0 || v.is_nan() || v.is_infinite() {
        return format_float8(v);
    }
    format_g(v, (15 + extra).max(1) as usize)
}

/// `float4out` for any `extra_float_digits` (`%.{6 + extra}g` when it is 0 or less).
pub fn format_float4_digits(v: f32, extra: i32) -> String {
    if extra > 0 || v.is_nan() || v.is_infinite() {
        return format_float4(v);
    }
    format_g(v as f64, (6 + extra).max(1) as usize)
}

/// C's `%.{prec}g`: `prec` significant digits, trailing zeros removed, exponent form when the
/// exponent is < -4 or >= `prec`.
fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |m: &str| -> String {
        if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            m.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.unsigned_abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, v))
    }
}

/// `float4out` with `extra_float_digits = 1` (exponent form when the exponent is < -4 or >= 6).
pub fn format_float4(v: f32) -> String {
    format_shortest(
        v.is_nan(),
        v.is_infinite(),
        v.is_sign_negative(),
        v == 0.0,
        &format!("{v:e}"),
        &format!("{v}"),
        6,
    )
}

fn format_shortest(
    nan: bool,
    inf: bool,
    neg: bool,
    zero: bool,
    sci: &str,
    plain: &str,
    dig: i32,
) -> String {
    if nan {
        return "NaN".into();
    }
    if inf {
        return if neg { "-Infinity" } else { "Infinity" }.into();
    }
    if zero {
        return if neg { "-0" } else { "0" }.into();
    }
    let (mant, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= dig {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        plain.to_string()
    }
}

/// `byteaout` with `bytea_output = hex`.
pub fn format_bytea(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + b.len() * 2);
    s.push_str("\\x");
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// `uuid_out`: lower-case, hyphenated.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `array_out` for a one-dimensional array: `{1,2,NULL}`, `{"a b","",NULL,"\"q\""}`.
pub fn format_array(elems: &[Value], elem_ty: &DataType, tz: &TimeZone) -> String {
    let mut s = String::from("{");
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if let Value::Array(inner) = e {
            // A sub-array of a multidimensional array: `{{1,2},{3,4}}`.
            s.push_str(&format_array(inner, elem_ty, tz));
            continue;
        }
        match e.to_text_opt(elem_ty, tz) {
            None => s.push_str("NULL"),
            Some(t) => {
                let needs_quotes = t.is_empty()
                    || t.eq_ignore_ascii_case("null")
                    || t.chars().any(|c| {
                        matches!(c, '{' | '}' | ',' | '"' | '\\')
                            || matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
                    });
                if needs_quotes {
                    s.push('"');
                    for c in t.chars() {
                        if c == '"' || c == '\\' {
                            s.push('\\');
                        }
                        s.push(c);
                    }
                    s.push('"');
                } else {
                    s.push_str(&t);
                }
            }
        }
    }
    s.push('}');
    s
}

// ---------------------------------------------------------------------------------------------
// Input.

fn syntax(ty: &str, s: &str) -> PgError {
    PgError::new(
        SqlState::InvalidTextRepresentation,
        format!("invalid input syntax for type {ty}: \"{s}\""),
    )
}

fn out_of_range(ty: &str, s: &str) -> PgError {
    PgError::new(
        SqlState::NumericValueOutOfRange,
        format!("value \"{s}\" is out of range for type {ty}"),
    )
}

/// PostgreSQL's `isspace` set used when trimming input.
fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `int2in`/`int4in`/`int8in`: optional surrounding whitespace and sign, decimal digits.
pub fn parse_int(s: &str, ty: &str, min: i64, max: i64) -> Result<i64, PgError> {
    let t = s.trim_matches(is_pg_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(ty, s));
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + (b - b'0') as i128;
        if v > (i64::MAX as i128) + 1 {
            return Err(out_of_range(ty, s));
        }
    }
    if neg {
        v = -v;
    }
    if v < min as i128 || v > max as i128 {
        return Err(out_of_range(ty, s));
    }
    Ok(v as i64)
}

/// `float8in` (`float4in` when `single`): `NaN`, `Infinity`, `-inf`, decimal/exponent forms.
pub fn parse_float(s: &str, single: bool) -> Result<f64, PgError> {
    let ty = if single { "real" } else { "double precision" };
    let t = s.trim_matches(is_pg_space);
    let lower = t.to_ascii_lowercase();
    let special = match lower.as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    };
    if let Some(v) = special {
        return Ok(v);
    }
    let ok_chars = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !ok_chars {
        return Err(syntax(ty, s));
    }
    let v: f64 = t.parse().map_err(|_| syntax(ty, s))?;
    let nonzero_input = t
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if single {
        let f = v as f32;
        if f.is_infinite() || (f == 0.0 && nonzero_input) {
            return Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                format!("\"{t}\" is out of range for type real"),
            ));
        }
        // Parse again directly as f32 to avoid double rounding.
        let f: f32 = t.parse().map_err(|_| syntax(ty, s))?;
        return Ok(f as f64);
    }
    if v.is_infinite() || (v == 0.0 && nonzero_input) {
        return Err(PgError::new(
            SqlState::NumericValueOutOfRange,
            format!("\"{t}\" is out of range for type double precision"),
        ));
    }
    Ok(v)
}

/// `boolin`: `t`/`true`/`yes`/`on`/`1` and prefixes, case-insensitive, whitespace-trimmed.
pub fn parse_bool(s: &str) -> Result<bool, PgError> {
    let t = s.trim_matches(is_pg_space).to_ascii_lowercase();
    let is_prefix = |full: &str, min: usize| t.len() >= min && full.starts_with(t.as_str());
    if is_prefix("true", 1) || is_prefix("yes", 1) || is_prefix("on", 2) || t == "1" {
        return Ok(true);
    }
    if is_prefix("false", 1) || is_prefix("no", 1) || is_prefix("off", 2) || t == "0" {
        return Ok(false);
    }
    Err(syntax("boolean", s))
}

/// Enforce `varchar(n)`/`char(n)` on input or assignment: trailing spaces beyond `n` are
/// dropped silently, anything else is 22001.
pub fn check_length(s: &str, n: u32, ty: &DataType) -> Result<String, PgError> {
    let n = n as usize;
    match s.char_indices().nth(n) {
        None => Ok(s.to_string()),
        Some((idx, _)) => {
            if s[idx..].chars().all(|c| c == ' ') {
                Ok(s[..idx].to_string())
            } else {
                Err(PgError::new(
                    SqlState::StringDataRightTruncation,
                    format!("value too long for type {}", ty.name()),
                ))
            }
        }
    }
}

/// Truncate to `n` characters (explicit casts to `varchar(n)`/`char(n)`).
pub fn truncate_chars(s: &str, n: u32) -> String {
    match s.char_indices().nth(n as usize) {
        None => s.to_string(),
        Some((idx, _)) => s[..idx].to_string(),
    }
}

/// `byteain`: `\x` hex format or the escape format.
pub fn parse_bytea(s: &str) -> Result<Vec<u8>, PgError> {
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let mut out = Vec::with_capacity(hex.len() / 2);
        let mut chars = hex.chars().peekable();
        let digit = |c: char| -> Result<u8, PgError> {
            c.to_digit(16).map(|d| d as u8).ok_or_else(|| {
                PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("invalid hexadecimal digit: \"{c}\""),
                )
            })
        };
        while let Some(c) = chars.next() {
            if is_pg_space(c) {
                continue;
            }
            let hi = digit(c)?;
            let lo = match chars.next() {
                Some(c2) => digit(c2)?,
                None => {
                    return Err(PgError::new(
                        SqlState::InvalidParameterValue,
                        "invalid hexadecimal data: odd number of digits",
                    ))
                }
            };
            out.push(hi << 4 | lo);
        }
        return Ok(out);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if i + 1 < b.len() && b[i + 1] == b'\\' {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && (b'0'..=b'7').contains(&b[i + 2])
            && (b'0'..=b'7').contains(&b[i + 3])
        {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            return Err(PgError::new(
                SqlState::InvalidTextRepresentation,
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

/// `uuid_in`: 32 hex digits, optionally in braces, with a hyphen allowed after any group of four.
pub fn parse_uuid(s: &str) -> Result<[u8; 16], PgError> {
    let bad = || syntax("uuid", s);
    let mut t = s;
    let braces = t.starts_with('{');
    if braces {
        t = &t[1..];
    }
    let b = t.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    for (k, slot) in out.iter_mut().enumerate() {
        let hi = b
            .get(i)
            .and_then(|c| (*c as char).to_digit(16))
            .ok_or_else(bad)?;
        let lo = b
            .get(i + 1)
            .and_then(|c| (*c as char).to_digit(16))
            .ok_or_else(bad)?;
        *slot = (hi << 4 | lo) as u8;
        i += 2;
        if k % 2 == 1 && k < 15 && b.get(i) == Some(&b'-') {
            i += 1;
        }
    }
    if braces {
        if b.get(i) != Some(&b'}') {
            return Err(bad());
        }
        i += 1;
    }
    if i != b.len() {
        return Err(bad());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// JSON.

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

struct JsonParser<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
    depth: usize,
}

impl JsonParser<'_> {
    fn err(&self, ty: &str) -> PgError {
        // PostgreSQL adds a DETAIL ("Token "x" is invalid.") that PgError does not carry.
        PgError::new(
            SqlState::InvalidTextRepresentation,
            format!("invalid input syntax for type {ty}"),
        )
    }
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn value(&mut self, ty: &str) -> Result<Json, PgError> {
        self.ws();
        self.depth += 1;
        // TODO(types): make the parser iterative; PostgreSQL's limit is max_stack_depth, far deeper.
        // 400 levels stay well inside a 2 MiB thread stack even in debug builds.
        if self.depth > 400 {
            return Err(PgError::new(
                SqlState::StatementTooComplex,
                "stack depth limit exceeded",
            ));
        }
        let r = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err(ty));
                        }
                        let k = self.string(ty)?;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.err(ty));
                        }
                        self.i += 1;
                        let v = self.value(ty)?;
                        fields.push((k, v));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err(ty)),
                        }
                    }
                }
                Json::Object(fields)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(ty)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err(ty)),
                        }
                    }
                }
                Json::Array(items)
            }
            Some(b'"') => Json::String(self.string(ty)?),
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Json::Bool(true)
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Json::Bool(false)
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Json::Null
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                if self.b[self.i] == b'-' {
                    self.i += 1;
                }
                let digits = |p: &mut Self| {
                    let st = p.i;
                    while p.i < p.b.len() && p.b[p.i].is_ascii_digit() {
                        p.i += 1;
                    }
                    p.i - st
                };
                let int_start = self.i;
                let n = digits(self);
                if n == 0 || (n > 1 && self.b[int_start] == b'0') {
                    return Err(self.err(ty));
                }
                if self.b.get(self.i) == Some(&b'.') {
                    self.i += 1;
                    if digits(self) == 0 {
                        return Err(self.err(ty));
                    }
                }
                if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                    self.i += 1;
                    if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                    if digits(self) == 0 {
                        return Err(self.err(ty));
                    }
                }
                // A number must end at a delimiter.
                if self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    return Err(self.err(ty));
                }
                Json::Number(self.s[start..self.i].to_string())
            }
            _ => return Err(self.err(ty)),
        };
        if matches!(r, Json::Bool(_) | Json::Null)
            && self
                .b
                .get(self.i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return Err(self.err(ty));
        }
        self.depth -= 1;
        Ok(r)
    }
    fn hex4(&mut self, ty: &str) -> Result<u32, PgError> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err(ty))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err(ty))?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(self.err(ty));
        }
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self, ty: &str) -> Result<String, PgError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'"' && self.b[self.i] != b'\\' {
                if self.b[self.i] < 0x20 {
                    return Err(self.err(ty));
                }
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            match self.b.get(self.i) {
                None => return Err(self.err(ty)),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {
                    self.i += 1;
                    let c = *self.b.get(self.i).ok_or_else(|| self.err(ty))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\x08'),
                        b'f' => out.push('\x0c'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4(ty)?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.b.get(self.i) == Some(&b'\\')
                                    && self.b.get(self.i + 1) == Some(&b'u')
                                {
                                    self.i += 2;
                                    let lo = self.hex4(ty)?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(self.err(ty));
                                    }
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    return Err(self.err(ty));
                                }
                            }
                            if cp == 0 {
                                return Err(PgError::new(
                                    SqlState::UntranslatableCharacter,
                                    "unsupported Unicode escape sequence",
                                ));
                            }
                            out.push(char::from_u32(cp).ok_or_else(|| self.err(ty))?);
                        }
                        _ => return Err(self.err(ty)),
                    }
                }
            }
        }
    }
}

pub(crate) fn parse_json_tree(s: &str, ty: &str) -> Result<Json, PgError> {
    let mut p = JsonParser {
        b: s.as_bytes(),
        s,
        i: 0,
        depth: 0,
    };
    let v = p.value(ty)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err(ty));
    }
    Ok(v)
}

/// `json_in`: validate, keep the text verbatim.
pub fn parse_json(s: &str) -> Result<String, PgError> {
    parse_json_tree(s, "json")?;
    Ok(s.to_string())
}

/// `jsonb_in` + `jsonb_out`: the normalised text (`{"a": 1, "b": [1, 2]}`): keys ordered by
/// length then bytes, duplicate keys keep the last value, numbers printed as `numeric`.
pub fn parse_jsonb(s: &str) -> Result<String, PgError> {
    let tree = parse_json_tree(s, "json")?;
    let mut out = String::new();
    write_jsonb(&normalise(tree), &mut out);
    Ok(out)
}

pub(crate) fn normalise(j: Json) -> Json {
    match j {
        Json::Array(items) => Json::Array(items.into_iter().map(normalise).collect()),
        Json::Object(fields) => {
            let mut v: Vec<(String, Json)> = Vec::new();
            for (k, val) in fields {
                let val = normalise(val);
                if let Some(slot) = v.iter_mut().find(|(kk, _)| *kk == k) {
                    slot.1 = val;
                } else {
                    v.push((k, val));
                }
            }
            v.sort_by(|a, b| {
                a.0.len()
                    .cmp(&b.0.len())
                    .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
            });
            Json::Object(v)
        }
        other => other,
    }
}

/// PostgreSQL's `escape_json`.
pub fn escape_json(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn write_jsonb(j: &Json, out: &mut String) {
    match j {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match Numeric::parse(n) {
            Ok(v) => out.push_str(&v.to_text()),
            Err(_) => out.push_str(n),
        },
        Json::String(s) => escape_json(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(it, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                escape_json(k, out);
                out.push_str(": ");
                write_jsonb(v, out);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arrays.

fn malformed(s: &str) -> PgError {
    PgError::new(
        SqlState::InvalidTextRepresentation,
        format!("malformed array literal: \"{s}\""),
    )
}

/// The dimensions of a (possibly nested) array value, outermost first.
fn array_shape(v: &Value) -> Vec<usize> {
    match v {
        Value::Array(items) => {
            let mut d = vec![items.len()];
            if let Some(first) = items.first() {
                d.extend(array_shape(first));
            }
            d
        }
        _ => Vec::new(),
    }
}

/// The sub-array literals of a multidimensional array literal (`{{1,2},{3,4}}` → `{1,2}`,
/// `{3,4}`), or `None` for a one-dimensional one. Errors: 22P02 when sub-arrays and plain
/// elements are mixed or braces do not balance.
fn split_subarrays(s: &str) -> Result<Option<Vec<String>>, PgError> {
    let t = s.trim_matches(is_pg_space);
    let Some(inner) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return Ok(None);
    };
    if !inner.trim_start_matches(is_pg_space).starts_with('{') {
        return Ok(None);
    }
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    let mut cur = String::new();
    for c in inner.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '{' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            '}' if !quoted => {
                depth = depth.checked_sub(1).ok_or_else(|| malformed(s))?;
                cur.push(c);
            }
            ',' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if depth != 0 || quoted {
        return Err(malformed(s));
    }
    out.push(cur);
    let out: Vec<String> = out
        .into_iter()
        .map(|p| p.trim_matches(is_pg_space).to_string())
        .collect();
    if out.iter().any(|p| !p.starts_with('{') || !p.ends_with('}')) {
        return Err(malformed(s));
    }
    Ok(Some(out))
}

/// Split a one-dimensional array literal into its elements (`None` = unquoted NULL).
fn split_array(s: &str) -> Result<Vec<Option<String>>, PgError> {
    let t = s.trim_matches(is_pg_space);
    if t.starts_with('[') {
        // TODO(types): explicit bounds "[1:3]={...}".
        return Err(PgError::new(
            SqlState::FeatureNotSupported,
            "array literals with explicit bounds are not supported yet",
        ));
    }
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| malformed(s))?;
    let chars: Vec<char> = inner.chars().collect();
    let mut out = Vec::new();
    if inner.trim_matches(is_pg_space).is_empty() {
        return Ok(out);
    }
    let mut i = 0;
    loop {
        while i < chars.len() && is_pg_space(chars[i]) {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            if !out.is_empty() {
                return Err(malformed(s));
            }
            // TODO(types): multidimensional arrays.
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                "multidimensional arrays are not supported yet",
            ));
        }
        let mut val = String::new();
        let mut quoted_any = false;
        let mut trailing_ws = 0usize;
        while i < chars.len() && chars[i] != ',' {
            match chars[i] {
                '"' => {
                    quoted_any = true;
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(malformed(s)),
                            Some('"') => {
                                i += 1;
                                break;
                            }
                            Some('\\') => {
                                let c = *chars.get(i + 1).ok_or_else(|| malformed(s))?;
                                val.push(c);
                                i += 2;
                            }
                            Some(c) => {
                                val.push(*c);
                                i += 1;
                            }
                        }
                    }
                    trailing_ws = 0;
                }
                '\\' => {
                    let c = *chars.get(i + 1).ok_or_else(|| malformed(s))?;
                    val.push(c);
                    i += 2;
                    trailing_ws = 0;
                }
                '{' | '}' => return Err(malformed(s)),
                c if is_pg_space(c) => {
                    val.push(c);
                    trailing_ws += 1;
                    i += 1;
                }
                c => {
                    val.push(c);
                    trailing_ws = 0;
                    i += 1;
                }
            }
        }
        val.truncate(val.len() - trailing_ws);
        if !quoted_any && val.is_empty() {
            return Err(malformed(s));
        }
        if !quoted_any && val.eq_ignore_ascii_case("null") {
            out.push(None);
        } else {
            out.push(Some(val));
        }
        if i >= chars.len() {
            break;
        }
        i += 1; // comma
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

/// PostgreSQL's input function for `ty` (typmods applied as an assignment would: `varchar(n)` too
/// long is 22001, `numeric(p,s)` rounds / 22003). `tz` resolves `timestamptz` without a zone.
pub fn parse_text(ty: &DataType, s: &str, tz: &TimeZone) -> Result<Value, PgError> {
    Ok(match ty {
        DataType::Bool => Value::Bool(parse_bool(s)?),
        DataType::Int2 => {
            Value::Int2(parse_int(s, "smallint", i16::MIN as i64, i16::MAX as i64)? as i16)
        }
        DataType::Int4 => {
            Value::Int4(parse_int(s, "integer", i32::MIN as i64, i32::MAX as i64)? as i32)
        }
        DataType::Int8 => Value::Int8(parse_int(s, "bigint", i64::MIN, i64::MAX)?),
        DataType::Money => Value::Int8(super::money::parse_money(s)?),
        DataType::Inet => Value::Text(super::inet::canonical(s, false)?),
        DataType::Cidr => Value::Text(super::inet::canonical(s, true)?),
        DataType::Float4 => Value::Float4(parse_float(s, true)? as f32),
        DataType::Float8 => Value::Float8(parse_float(s, false)?),
        DataType::Numeric(tm) => {
            let n = Numeric::parse(s)?;
            Value::Numeric(match tm {
                Some((p, sc)) => n.apply_typmod(*p, *sc)?,
                None => n,
            })
        }
        DataType::Text | DataType::Unknown => Value::Text(s.to_string()),
        DataType::Varchar(None) => Value::Text(s.to_string()),
        DataType::Varchar(Some(n)) => Value::Text(check_length(s, *n, ty)?),
        DataType::Char(n) => Value::Text(pad_char(&check_length(s, *n, ty)?, *n)),
        DataType::Name => {
            // namein: truncated to NAMEDATALEN - 1 bytes, at a character boundary.
            let mut end = s.len().min(63);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Value::Text(s[..end].to_string())
        }
        // charin: the first byte (here: character), or empty.
        DataType::QChar => Value::Text(s.chars().take(1).collect()),
        DataType::Bytea => Value::Bytea(parse_bytea(s)?),
        DataType::Date => Value::Date(datetime::parse_date_in(s, tz)?),
        DataType::Time => Value::Time(datetime::parse_time_in(s, tz)?),
        DataType::Timetz => {
            let (t, off) = datetime::parse_timetz_in(s, tz)?;
            Value::Timetz(t, off)
        }
        DataType::Timestamp => Value::Timestamp(datetime::parse_timestamp(s, false, tz)?),
        DataType::Timestamptz => Value::Timestamptz(datetime::parse_timestamp(s, true, tz)?),
        DataType::Interval => Value::Interval(datetime::parse_interval(s)?),
        DataType::Uuid => Value::Uuid(parse_uuid(s)?),
        DataType::Json => Value::Json(parse_json(s)?),
        DataType::Jsonb => Value::Jsonb(parse_jsonb(s)?),
        DataType::Array(elem) => {
            if let Some(subs) = split_subarrays(s)? {
                // A multidimensional array: sub-arrays as nested values, all of one shape.
                let mut out = Vec::with_capacity(subs.len());
                for sub in subs {
                    out.push(parse_text(ty, &sub, tz)?);
                }
                let first = array_shape(&out[0]);
                if out.iter().any(|v| array_shape(v) != first) {
                    return Err(PgError::new(
                        SqlState::InvalidTextRepresentation,
                        format!("malformed array literal: \"{s}\""),
                    ));
                }
                return Ok(Value::Array(out));
            }
            let parts = split_array(s)?;
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                out.push(match p {
                    None => Value::Null,
                    Some(t) => parse_text(elem, &t, tz)?,
                });
            }
            Value::Array(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(v: Value, ty: DataType) -> String {
        v.to_text(&ty, &TimeZone::utc())
    }

    #[test]
    fn other_outputs() {
        assert_eq!(out(Value::Bool(true), DataType::Bool), "t");
        assert_eq!(out(Value::Text("ab".into()), DataType::Char(4)), "ab  ");
        assert_eq!(
            out(Value::Bytea(vec![0xde, 0xad]), DataType::Bytea),
            "\\xdead"
        );
        let arr = Value::Array(vec![
            Value::Text("a b".into()),
            Value::Null,
            Value::Text("".into()),
            Value::Text("x\"y".into()),
            Value::Text("NULL".into()),
        ]);
        assert_eq!(
            out(arr, DataType::Array(Box::new(DataType::Text))),
            r#"{"a b",NULL,"","x\"y","NULL"}"#
        );
    }

    #[test]
    fn multidimensional_arrays_round_trip() {
        let t = DataType::Array(Box::new(DataType::Int4));
        let utc = TimeZone::utc();
        let v = parse_text(&t, "{{1,2},{3,NULL}}", &utc).expect("2-D");
        assert_eq!(v.to_text(&t, &utc), "{{1,2},{3,NULL}}");
        let e = parse_text(&t, "{{1,2},{3}}", &utc).unwrap_err();
        assert_eq!(e.code, SqlState::InvalidTextRepresentation);
        let e = parse_text(&t, "{{1,2},3}", &utc).unwrap_err();
        assert_eq!(e.code, SqlState::InvalidTextRepresentation);
        let s = DataType::Array(Box::new(DataType::Text));
        let v = parse_text(&s, r#"{{"a,}",b}}"#, &utc).expect("quoted");
        assert_eq!(v.to_text(&s, &utc), r#"{{"a,}",b}}"#);
    }

    #[test]
    fn floats_print_like_pg15() {
        let cases: [(f64, &str); 12] = [
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1.5e300, "1.5e+300"),
        ];
        for (v, s) in cases {
            assert_eq!(format_float8(v), s, "{v}");
        }
        // extra_float_digits <= 0: %.{15 + n}g (values from PostgreSQL 15).
        assert_eq!(format_float8_digits(0.1 + 0.2, 0), "0.3");
        assert_eq!(format_float8_digits(1.0 / 3.0, 0), "0.333333333333333");
        assert_eq!(format_float8_digits(1e-5, 0), "1e-05");
        assert_eq!(format_float8_digits(1e15, 0), "1e+15");
        assert_eq!(format_float8_digits(1e14, 0), "100000000000000");
        assert_eq!(format_float8_digits(1.23456789012345, -3), "1.23456789012");
        assert_eq!(format_float4_digits(1234567.0, 0), "1.23457e+06");
        assert_eq!(format_float8_digits(0.1 + 0.2, 1), "0.30000000000000004");
        assert_eq!(format_float4(1234567.0), "1.234567e+06");
        assert_eq!(format_float4(123456.0), "123456");
        assert_eq!(format_float4(0.1), "0.1");
    }
}
