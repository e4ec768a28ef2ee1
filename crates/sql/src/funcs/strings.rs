//! `format()`, `quote_ident` / `quote_literal`, `overlay`, encoding conversion (`convert_to`,
//! `convert_from`), bytea `substring`, `pg_column_size`, record text output and json text of
//! values, with PostgreSQL's output and error codes.

use pgxc_common::{PgError, SqlState};

use crate::expr::EvalContext;
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Value};

fn err(code: SqlState, msg: impl Into<String>) -> PgError {
    PgError::new(code, msg)
}

/// Keywords `quote_ident` must quote (PostgreSQL's reserved, column-name and type/function-name
/// keywords; unreserved keywords need no quotes).
const QUOTED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// `quote_ident` (`quote_identifier`): double-quoted unless it is a lower-case identifier that is
/// not a keyword needing quotes.
pub(crate) fn quote_ident(s: &str) -> String {
    let safe = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !QUOTED_KEYWORDS.contains(&s);
    if safe {
        return s.to_string();
    }
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `quote_literal`: single-quoted with quotes and backslashes doubled, `E` prefix when a backslash
/// occurs (`quote_literal_cstr`).
pub(crate) fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn bad_format(msg: impl Into<String>) -> PgError {
    err(SqlState::InvalidParameterValue, msg)
}

/// `format(fmt, args...)`: `%s`, `%I`, `%L`, `%%`, positions `%n$`, flag `-`, widths `n`, `*`,
/// `*n$`. `args[0]` is the format (NULL gives NULL). Errors: 22023 for malformed specifiers or too
/// few arguments, 22004 for `%I` of NULL.
pub(crate) fn format(
    args: &[Value],
    types: &[DataType],
    cx: &EvalContext,
) -> Result<Value, PgError> {
    let fmt = match args.first() {
        Some(Value::Text(s)) => s.clone(),
        _ => return Ok(Value::Null),
    };
    let nargs = args.len() - 1;
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut next_arg = 0usize; // 0-based index into the value arguments
    let unterminated = || bad_format("unterminated format() type specifier");
    let digits = |i: &mut usize| -> Option<usize> {
        let start = *i;
        let mut n: usize = 0;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            n = n
                .saturating_mul(10)
                .saturating_add(chars[*i] as usize - '0' as usize);
            *i += 1;
        }
        (*i > start).then_some(n)
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        if i >= chars.len() {
            return Err(unterminated());
        }
        if chars[i] == '%' {
            out.push('%');
            i += 1;
            continue;
        }
        // [argpos$][flags][width][type]
        let mut argpos: Option<usize> = None;
        let mut width: Option<i64> = None;
        let mut left = false;
        let save = i;
        if let Some(n) = digits(&mut i) {
            if i < chars.len() && chars[i] == '$' {
                if n == 0 {
                    return Err(bad_format(
                        "format specifies argument 0, but arguments are numbered from 1",
                    ));
                }
                argpos = Some(n);
                i += 1;
            } else {
                // Digits without `$` are the width.
                i = save;
            }
        }
        while i < chars.len() && chars[i] == '-' {
            left = true;
            i += 1;
        }
        if i < chars.len() && chars[i] == '*' {
            i += 1;
            let wpos = {
                let s = i;
                match digits(&mut i) {
                    Some(n) if i < chars.len() && chars[i] == '$' => {
                        i += 1;
                        if n == 0 {
                            return Err(bad_format(
                                "format specifies argument 0, but arguments are numbered from 1",
                            ));
                        }
                        Some(n - 1)
                    }
                    Some(_) => {
                        i = s;
                        None
                    }
                    None => None,
                }
            };
            let k = match wpos {
                Some(k) => {
                    next_arg = k + 1;
                    k
                }
                None => {
                    let k = next_arg;
                    next_arg += 1;
                    k
                }
            };
            if k >= nargs {
                return Err(bad_format("too few arguments for format()"));
            }
            width = match &args[k + 1] {
                Value::Null => None,
                Value::Int2(x) => Some(i64::from(*x)),
                Value::Int4(x) => Some(i64::from(*x)),
                Value::Int8(x) => Some(*x),
                other => Some(
                    text_of(other, &types[k + 1], cx)
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| {
                            err(
                                SqlState::InvalidTextRepresentation,
                                "invalid input syntax for type integer",
                            )
                        })?,
                ),
            };
            if let Some(w) = width {
                if w < 0 {
                    left = true;
                    width = Some(-w);
                }
            }
        } else if let Some(n) = digits(&mut i) {
            width = Some(n as i64);
        }
        if i >= chars.len() {
            return Err(unterminated());
        }
        let ty = chars[i];
        i += 1;
        if !matches!(ty, 's' | 'I' | 'L') {
            return Err(bad_format(format!(
                "unrecognized format() type specifier \"{ty}\""
            )));
        }
        let k = match argpos {
            Some(n) => {
                next_arg = n;
                n - 1
            }
            None => {
                let k = next_arg;
                next_arg += 1;
                k
            }
        };
        if k >= nargs {
            return Err(bad_format("too few arguments for format()"));
        }
        let v = &args[k + 1];
        let s = match (ty, v) {
            ('s', Value::Null) => String::new(),
            ('L', Value::Null) => "NULL".to_string(),
            ('I', Value::Null) => {
                return Err(err(
                    SqlState::NullValueNotAllowed,
                    "null values cannot be formatted as an SQL identifier",
                ))
            }
            ('s', v) => text_of(v, &types[k + 1], cx),
            ('I', v) => quote_ident(&text_of(v, &types[k + 1], cx)),
            (_, v) => quote_literal(&text_of(v, &types[k + 1], cx)),
        };
        let w = width.unwrap_or(0).max(0) as usize;
        let n = s.chars().count();
        if n < w {
            let pad = " ".repeat(w - n);
            if left {
                out.push_str(&s);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&s);
            }
        } else {
            out.push_str(&s);
        }
    }
    Ok(Value::Text(out))
}

fn text_of(v: &Value, ty: &DataType, cx: &EvalContext) -> String {
    super::text_of(v, ty, cx)
}

/// `overlay(s placing r from start for len)`: `substr(s, 1, start - 1) || r || substr(s, start +
/// len)`. Errors: 22011 for a negative length or a start below 1.
pub(crate) fn overlay(s: &str, r: &str, start: i64, len: i64) -> Result<String, PgError> {
    if start < 1 || len < 0 {
        return Err(err(
            SqlState::SubstringError,
            "negative substring length not allowed",
        ));
    }
    let chars: Vec<char> = s.chars().collect();
    let head: String = chars
        .iter()
        .take((start - 1).min(chars.len() as i64) as usize)
        .collect();
    let tail_from = start.saturating_add(len) - 1;
    let tail: String = chars
        .iter()
        .skip(tail_from.min(chars.len() as i64) as usize)
        .collect();
    Ok(format!("{head}{r}{tail}"))
}

/// `overlay(bytea placing bytea from start for len)`. Errors: 22011 as for text.
pub(crate) fn overlay_bytes(s: &[u8], r: &[u8], start: i64, len: i64) -> Result<Vec<u8>, PgError> {
    if start < 1 || len < 0 {
        return Err(err(
            SqlState::SubstringError,
            "negative substring length not allowed",
        ));
    }
    let head = ((start - 1).min(s.len() as i64)) as usize;
    let tail = ((start.saturating_add(len) - 1).min(s.len() as i64)) as usize;
    let mut out = s[..head].to_vec();
    out.extend_from_slice(r);
    out.extend_from_slice(&s[tail.max(head)..]);
    Ok(out)
}

/// `substring(bytea from start [for len])`. Errors: 22011 for a negative length.
pub(crate) fn substr_bytes(b: &[u8], start: i64, len: Option<i64>) -> Result<Vec<u8>, PgError> {
    let end = match len {
        Some(n) if n < 0 => {
            return Err(err(
                SqlState::SubstringError,
                "negative substring length not allowed",
            ))
        }
        Some(n) => start.saturating_add(n),
        None => i64::MAX,
    };
    let s = start.max(1);
    if end <= s {
        return Ok(Vec::new());
    }
    let from = ((s - 1) as usize).min(b.len());
    let to = ((end - 1).min(b.len() as i64)) as usize;
    Ok(b[from..to.max(from)].to_vec())
}

/// An encoding name as PostgreSQL compares them (case and punctuation ignored).
fn encoding(name: &str) -> Option<&'static str> {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Some(match n.as_str() {
        "utf8" | "unicode" => "UTF8",
        "latin1" | "iso88591" => "LATIN1",
        "sqlascii" => "SQL_ASCII",
        _ => return None,
    })
}

/// `convert_to(text, encoding)` (UTF8, LATIN1, SQL_ASCII). Errors: 22023 for an unknown encoding,
/// 22P05 for a character LATIN1 cannot represent.
pub(crate) fn convert_to(s: &str, enc: &str) -> Result<Vec<u8>, PgError> {
    match encoding(enc) {
        Some("LATIN1") => s
            .chars()
            .map(|c| {
                u8::try_from(c as u32).map_err(|_| {
                    err(
                        SqlState::UntranslatableCharacter,
                        format!(
                            "character with byte sequence {} in encoding \"UTF8\" has no equivalent in encoding \"LATIN1\"",
                            byte_seq(c.to_string().as_bytes())
                        ),
                    )
                })
            })
            .collect(),
        Some(_) => Ok(s.as_bytes().to_vec()),
        None => Err(err(
            SqlState::InvalidParameterValue,
            format!("invalid destination encoding name \"{enc}\""),
        )),
    }
}

fn byte_seq(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("0x{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `convert_from(bytea, encoding)`. Errors: 22023 for an unknown encoding, 22021 for bytes that
/// are not valid in it (`invalid byte sequence for encoding "UTF8": 0xff`).
pub(crate) fn convert_from(b: &[u8], enc: &str) -> Result<String, PgError> {
    match encoding(enc) {
        Some("LATIN1") => Ok(b.iter().map(|&x| char::from(x)).collect()),
        Some(name) => match std::str::from_utf8(b) {
            Ok(s) if !s.contains('\0') => Ok(s.to_string()),
            Ok(_) => Err(err(
                SqlState::CharacterNotInRepertoire,
                format!("invalid byte sequence for encoding \"{name}\": 0x00"),
            )),
            Err(e) => {
                let at = e.valid_up_to();
                let bad = &b[at..(at + e.error_len().unwrap_or(b.len() - at)).min(b.len())];
                Err(err(
                    SqlState::CharacterNotInRepertoire,
                    format!(
                        "invalid byte sequence for encoding \"UTF8\": {}",
                        byte_seq(bad)
                    ),
                ))
            }
        },
        None => Err(err(
            SqlState::InvalidParameterValue,
            format!("invalid source encoding name \"{enc}\""),
        )),
    }
}

/// `record_out`: `(f1,f2,...)` with NULL fields empty and fields quoted when empty or containing
/// `"`, `\`, `(`, `)`, `,` or whitespace.
pub(crate) fn record_out(fields: &[Value], types: &[DataType], tz: &TimeZone) -> String {
    let mut out = String::from("(");
    for (k, v) in fields.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let ty = types.get(k).cloned().unwrap_or(DataType::Text);
        let s = match v {
            Value::Null => continue,
            Value::Text(s) => s.clone(),
            v => v.to_text(&ty, tz),
        };
        let quote = s.is_empty()
            || s.chars()
                .any(|c| matches!(c, '"' | '\\' | '(' | ')' | ',') || c.is_whitespace());
        if quote {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push(c);
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&s);
        }
    }
    out.push(')');
    out
}

/// Number of base-10000 digits PostgreSQL stores for a finite numeric (leading and trailing zero
/// digits stripped).
fn numeric_ndigits(n: &crate::types::Numeric) -> usize {
    let crate::types::Numeric::Finite(d) = n else {
        return 0;
    };
    let (int, scale) = d.as_bigint_and_exponent();
    let digits = int.magnitude().to_string();
    if digits.chars().all(|c| c == '0') {
        return 0;
    }
    // Split into the integer and fraction digit strings around the decimal point.
    let (ip, fp) = if scale <= 0 {
        (
            format!("{digits}{}", "0".repeat((-scale) as usize)),
            String::new(),
        )
    } else if (scale as usize) >= digits.len() {
        (
            String::new(),
            format!("{}{digits}", "0".repeat(scale as usize - digits.len())),
        )
    } else {
        let k = digits.len() - scale as usize;
        (digits[..k].to_string(), digits[k..].to_string())
    };
    let ip = format!("{}{ip}", "0".repeat((4 - ip.len() % 4) % 4));
    let fp = format!("{fp}{}", "0".repeat((4 - fp.len() % 4) % 4));
    let all = format!("{ip}{fp}");
    let groups: Vec<&str> = (0..all.len() / 4).map(|k| &all[k * 4..k * 4 + 4]).collect();
    let first = groups.iter().position(|g| *g != "0000").unwrap_or(0);
    let last = groups.iter().rposition(|g| *g != "0000").unwrap_or(0);
    last + 1 - first
}

/// `pg_column_size(v)`: the bytes the value's datum takes. `stored` is for a value read from a
/// table, whose short varlena values carry a 1-byte header (computed values carry 4 bytes).
pub(crate) fn column_size(v: &Value, ty: &DataType, stored: bool) -> i32 {
    let varlena = |n: usize| {
        let n = i32::try_from(n).unwrap_or(i32::MAX - 4);
        if stored && n < 127 {
            n + 1
        } else {
            n + 4
        }
    };
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int2(_) => 2,
        Value::Int4(_) | Value::Float4(_) | Value::Date(_) => 4,
        Value::Int8(_)
        | Value::Float8(_)
        | Value::Time(_)
        | Value::Timestamp(_)
        | Value::Timestamptz(_) => 8,
        Value::Timetz(..) => 12,
        Value::Interval(_) | Value::Uuid(_) => 16,
        Value::Text(s) | Value::Json(s) | Value::Jsonb(s) => varlena(s.len()),
        Value::Bytea(b) => varlena(b.len()),
        Value::Numeric(n) => varlena(2 + 2 * numeric_ndigits(n)),
        Value::Array(items) => {
            if items.is_empty() {
                return varlena(12);
            }
            let et = match ty {
                DataType::Array(e) => (**e).clone(),
                _ => DataType::Text,
            };
            // Header (ndim, dataoffset, elemtype, one dimension and lower bound), the NULL
            // bitmap with the header MAXALIGNed, then the elements (in their stored form).
            let mut head = 20usize;
            if items.iter().any(Value::is_null) {
                head = (4 + head + items.len().div_ceil(8)).div_ceil(8) * 8 - 4;
            }
            let body: usize = items
                .iter()
                .filter(|x| !x.is_null())
                .map(|x| column_size(x, &et, true).max(0) as usize)
                .sum();
            varlena(head + body)
        }
        #[allow(unreachable_patterns)] // variants added later: a fixed-width guess
        _ => 8,
    }
}

/// A value as json text (`to_json` of a field in `row_to_json`): numbers and booleans bare, json
/// verbatim, arrays as `[...]`, everything else as a JSON string of its text output.
pub(crate) fn json_text(v: &Value, ty: &DataType, cx: &EvalContext) -> Result<String, PgError> {
    let mut out = String::new();
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) | Value::Numeric(_) => {
            out.push_str(&v.to_text(ty, &cx.tz))
        }
        Value::Float4(_) | Value::Float8(_) => {
            let s = v.to_text(ty, &cx.tz);
            if s.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(&s);
            } else {
                crate::types::text::escape_json(&s, &mut out);
            }
        }
        Value::Json(s) | Value::Jsonb(s) => out.push_str(s),
        Value::Array(items) => {
            let et = match ty {
                DataType::Array(e) => (**e).clone(),
                _ => DataType::Text,
            };
            out.push('[');
            for (k, x) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&json_text(x, &et, cx)?);
            }
            out.push(']');
        }
        Value::Text(s) => crate::types::text::escape_json(s, &mut out),
        other => crate::types::text::escape_json(&other.to_text(ty, &cx.tz), &mut out),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(args: Vec<Value>) -> Result<Value, PgError> {
        let types: Vec<DataType> = args
            .iter()
            .map(|v| match v {
                Value::Int4(_) => DataType::Int4,
                _ => DataType::Text,
            })
            .collect();
        format(&args, &types, &EvalContext::default())
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn format_matches_postgres() {
        assert_eq!(
            fmt(vec![t("%s and %s"), t("x"), Value::Int4(2)]).unwrap(),
            t("x and 2")
        );
        assert_eq!(
            fmt(vec![t("%I %L"), t("Col"), t("it's")]).unwrap(),
            t("\"Col\" 'it''s'")
        );
        assert_eq!(
            fmt(vec![t("%5s|%-5s|"), t("ab"), t("cd")]).unwrap(),
            t("   ab|cd   |")
        );
        assert_eq!(fmt(vec![t("%1$s %1$s"), t("rep")]).unwrap(), t("rep rep"));
        assert_eq!(
            fmt(vec![t("%s|%L"), Value::Null, Value::Null]).unwrap(),
            t("|NULL")
        );
        assert_eq!(
            fmt(vec![t("%s %s"), t("a")]).unwrap_err().code,
            SqlState::InvalidParameterValue
        );
        assert_eq!(
            fmt(vec![t("%I"), Value::Null]).unwrap_err().code,
            SqlState::NullValueNotAllowed
        );
        assert_eq!(fmt(vec![t("100%%")]).unwrap(), t("100%"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a b"), "\"a b\"");
        assert_eq!(quote_ident("abc"), "abc");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_literal("x'y"), "'x''y'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }

    #[test]
    fn overlay_and_conversion() {
        assert_eq!(overlay("Txxxxas", "hom", 2, 4).unwrap(), "Thomas");
        assert_eq!(convert_to("é", "UTF8").unwrap(), vec![0xc3, 0xa9]);
        assert_eq!(
            convert_from(&[0xff], "UTF8").unwrap_err().code,
            SqlState::CharacterNotInRepertoire
        );
        assert_eq!(substr_bytes(&[1, 2, 3, 4], 2, Some(2)).unwrap(), vec![2, 3]);
        assert_eq!(
            record_out(
                &[Value::Int4(1), Value::Text("a b".into()), Value::Null],
                &[DataType::Int4, DataType::Text, DataType::Text],
                &TimeZone::default()
            ),
            "(1,\"a b\",)"
        );
    }
}
