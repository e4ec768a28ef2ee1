//! Row generators of set-returning functions, for the executor's SRF support (in the select list
//! and in FROM): each takes the evaluated arguments and returns the rows (one `Vec<Value>` per row,
//! in PostgreSQL's order). [`lookup`] names a function's generator and its output columns.
//!
//! NULL arguments: every function here is strict, so a NULL argument gives no rows.

use pgxc_common::{PgError, SqlState};

use crate::types::json as j;
use crate::types::regex as re;
use crate::types::text::Json;
use crate::types::{DataType, Value};

/// A set-returning function's row generator: evaluated arguments to rows.
pub(crate) type Generator = fn(&[Value]) -> Result<Vec<Vec<Value>>, PgError>;

/// A set-returning function implemented here: its generator and its output columns (name and type;
/// a single column is named after the function in the select list, as PostgreSQL does).
pub(crate) struct SrfDef {
    /// Produces the rows.
    pub generator: Generator,
    /// Output columns `(name, type)`.
    pub columns: Vec<(&'static str, DataType)>,
}

/// The generator for `name` called with `nargs` arguments, if it is one of these functions:
/// `regexp_matches(text, text [, text])` (`text[]`), `regexp_split_to_table(text, text [, text])`
/// (`text`), `jsonb_each(jsonb)` (`key text, value jsonb`), `jsonb_each_text(jsonb)` (`key text,
/// value text`), `jsonb_array_elements(jsonb)` (`value jsonb`), `jsonb_array_elements_text(jsonb)`
/// (`value text`), `jsonb_object_keys(jsonb)` (`text`); the `json_*` spellings give json values.
/// Arguments must already be coerced to those types (unknown literals to text/jsonb).
pub(crate) fn lookup(name: &str, nargs: usize) -> Option<SrfDef> {
    let text_arr = DataType::Array(Box::new(DataType::Text));
    Some(match (name, nargs) {
        ("regexp_matches", 2 | 3) => SrfDef {
            generator: |a| regexp_matches(text(a, 0), text(a, 1), text(a, 2)),
            columns: vec![("regexp_matches", text_arr)],
        },
        ("regexp_split_to_table", 2 | 3) => SrfDef {
            generator: |a| regexp_split_to_table(text(a, 0), text(a, 1), text(a, 2)),
            columns: vec![("regexp_split_to_table", DataType::Text)],
        },
        ("jsonb_each", 1) => SrfDef {
            generator: |a| each(a, false, true),
            columns: vec![("key", DataType::Text), ("value", DataType::Jsonb)],
        },
        ("json_each", 1) => SrfDef {
            generator: |a| each(a, false, false),
            columns: vec![("key", DataType::Text), ("value", DataType::Json)],
        },
        ("jsonb_each_text", 1) | ("json_each_text", 1) => SrfDef {
            generator: |a| each(a, true, true),
            columns: vec![("key", DataType::Text), ("value", DataType::Text)],
        },
        ("jsonb_array_elements", 1) => SrfDef {
            generator: |a| array_elements(a, false, true),
            columns: vec![("value", DataType::Jsonb)],
        },
        ("json_array_elements", 1) => SrfDef {
            generator: |a| array_elements(a, false, false),
            columns: vec![("value", DataType::Json)],
        },
        ("jsonb_array_elements_text", 1) | ("json_array_elements_text", 1) => SrfDef {
            generator: |a| array_elements(a, true, true),
            columns: vec![("value", DataType::Text)],
        },
        ("jsonb_object_keys", 1) | ("json_object_keys", 1) => SrfDef {
            generator: object_keys,
            columns: vec![(
                if name == "jsonb_object_keys" {
                    "jsonb_object_keys"
                } else {
                    "json_object_keys"
                },
                DataType::Text,
            )],
        },
        _ => return None,
    })
}

fn text(a: &[Value], k: usize) -> Option<&str> {
    match a.get(k) {
        Some(Value::Text(s)) => Some(s),
        _ => None,
    }
}

fn doc(a: &[Value]) -> Result<Option<Json>, PgError> {
    match a.first() {
        Some(Value::Json(s) | Value::Jsonb(s) | Value::Text(s)) => Ok(Some(j::parse(s)?)),
        _ => Ok(None),
    }
}

fn json_value(t: &Json, jsonb: bool) -> Value {
    let s = j::print(t);
    if jsonb {
        Value::Jsonb(s)
    } else {
        Value::Json(s)
    }
}

/// `regexp_matches(s, pat [, flags])`: one `text[]` row per match (every match with `g`, else the
/// first), holding the capture groups or the whole match. Errors: 2201B bad pattern, 22023 bad
/// flag.
pub(crate) fn regexp_matches(
    s: Option<&str>,
    pat: Option<&str>,
    flags: Option<&str>,
) -> Result<Vec<Vec<Value>>, PgError> {
    let (Some(s), Some(pat)) = (s, pat) else {
        return Ok(Vec::new());
    };
    let flags = re::parse_flags(flags.unwrap_or(""))?;
    Ok(re::all_matches(s, pat, flags)?
        .into_iter()
        .map(|groups| {
            vec![Value::Array(
                groups
                    .into_iter()
                    .map(|g| g.map_or(Value::Null, Value::Text))
                    .collect(),
            )]
        })
        .collect())
}

/// `regexp_split_to_table(s, pat [, flags])`: one text row per piece. Errors: 2201B, 22023
/// (including the `g` flag).
pub(crate) fn regexp_split_to_table(
    s: Option<&str>,
    pat: Option<&str>,
    flags: Option<&str>,
) -> Result<Vec<Vec<Value>>, PgError> {
    let (Some(s), Some(pat)) = (s, pat) else {
        return Ok(Vec::new());
    };
    let flags = re::parse_flags(flags.unwrap_or(""))?;
    if flags.global {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            "regexp_split_to_table() does not support the \"global\" option",
        ));
    }
    Ok(re::split(s, pat, flags)?
        .into_iter()
        .map(|p| vec![Value::Text(p)])
        .collect())
}

/// `jsonb_each` / `jsonb_each_text` (`as_text`): `(key, value)` rows of an object, keys in jsonb
/// order. Errors: 22023 for a non-object.
pub(crate) fn each(a: &[Value], as_text: bool, jsonb: bool) -> Result<Vec<Vec<Value>>, PgError> {
    let Some(d) = doc(a)? else {
        return Ok(Vec::new());
    };
    let Json::Object(pairs) = d else {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!(
                "cannot call {} on a non-object",
                if as_text {
                    "jsonb_each_text"
                } else {
                    "jsonb_each"
                }
            ),
        ));
    };
    Ok(pairs
        .into_iter()
        .map(|(k, v)| {
            let value = if as_text {
                j::as_text(&v).map_or(Value::Null, Value::Text)
            } else {
                json_value(&v, jsonb)
            };
            vec![Value::Text(k), value]
        })
        .collect())
}

/// `jsonb_array_elements` / `_text`: one row per element. Errors: 22023 for a scalar or object.
pub(crate) fn array_elements(
    a: &[Value],
    as_text: bool,
    jsonb: bool,
) -> Result<Vec<Vec<Value>>, PgError> {
    let Some(d) = doc(a)? else {
        return Ok(Vec::new());
    };
    let items = match d {
        Json::Array(items) => items,
        Json::Object(_) => {
            return Err(PgError::new(
                SqlState::InvalidParameterValue,
                "cannot extract elements from an object",
            ))
        }
        _ => {
            return Err(PgError::new(
                SqlState::InvalidParameterValue,
                "cannot extract elements from a scalar",
            ))
        }
    };
    Ok(items
        .into_iter()
        .map(|v| {
            vec![if as_text {
                j::as_text(&v).map_or(Value::Null, Value::Text)
            } else {
                json_value(&v, jsonb)
            }]
        })
        .collect())
}

/// `jsonb_object_keys`: one text row per key. Errors: 22023 for a scalar or array.
pub(crate) fn object_keys(a: &[Value]) -> Result<Vec<Vec<Value>>, PgError> {
    let Some(d) = doc(a)? else {
        return Ok(Vec::new());
    };
    match d {
        Json::Object(pairs) => Ok(pairs
            .into_iter()
            .map(|(k, _)| vec![Value::Text(k)])
            .collect()),
        Json::Array(_) => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot call jsonb_object_keys on an array",
        )),
        _ => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot call jsonb_object_keys on a scalar",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators() {
        let rows = regexp_matches(Some("a1b22c333"), Some("\\d+"), Some("g")).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], vec![Value::Array(vec![Value::Text("22".into())])]);
        let rows = regexp_split_to_table(Some("one two  three"), Some("\\s+"), None).unwrap();
        assert_eq!(rows.len(), 3);
        let d = [Value::Jsonb("{\"a\": 1, \"b\": \"x\"}".into())];
        let rows = (lookup("jsonb_each_text", 1).unwrap().generator)(&d).unwrap();
        assert_eq!(
            rows[1],
            vec![Value::Text("b".into()), Value::Text("x".into())]
        );
        let rows = each(&d, false, true).unwrap();
        assert_eq!(rows[1][1], Value::Jsonb("\"x\"".into()));
        let keys = object_keys(&[Value::Jsonb("{\"z\": 1, \"y\": 2}".into())]).unwrap();
        assert_eq!(keys.len(), 2);
        let el = array_elements(&[Value::Jsonb("[1, \"two\"]".into())], false, true).unwrap();
        assert_eq!(el[1], vec![Value::Jsonb("\"two\"".into())]);
        assert!(array_elements(&[Value::Jsonb("1".into())], false, true).is_err());
    }
}
