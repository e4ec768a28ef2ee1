//! JSON / JSONB operators and functions (`->`, `->>`, `#>`, `@>`, `?`, `||`, `-`, `jsonb_set`...).
//!
//! Values are kept as text (`Value::Json` as written, `Value::Jsonb` normalised); the operations here
//! parse them into a tree, work on it, and print the result in jsonb's normalised form.

use pgxc_common::{PgError, SqlState};

use super::text::{escape_json, normalise, parse_json_tree, write_jsonb, Json};
use super::Numeric;

/// Parse a json/jsonb text into a normalised tree.
pub(crate) fn parse(s: &str) -> Result<Json, PgError> {
    Ok(normalise(parse_json_tree(s, "json")?))
}

/// Print a tree in jsonb's form.
pub(crate) fn print(j: &Json) -> String {
    let mut out = String::new();
    write_jsonb(j, &mut out);
    out
}

/// A scalar as `->>` prints it: strings unquoted, `null` as SQL NULL (`None`).
pub(crate) fn as_text(j: &Json) -> Option<String> {
    match j {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(print(other)),
    }
}

/// A key step of `->` / `#>`: an object key, or an array index (negative counts from the end).
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(i64),
}

fn array_index(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let k = if i < 0 { len + i } else { i };
    if (0..len).contains(&k) {
        usize::try_from(k).ok()
    } else {
        None
    }
}

/// `j -> step`.
pub(crate) fn get<'j>(j: &'j Json, step: &Step<'_>) -> Option<&'j Json> {
    match (j, step) {
        (Json::Object(f), Step::Key(k)) => f.iter().find(|(kk, _)| kk == k).map(|(_, v)| v),
        (Json::Array(a), Step::Index(i)) => array_index(a.len(), *i).and_then(|k| a.get(k)),
        (Json::Array(a), Step::Key(k)) => k
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|i| array_index(a.len(), i))
            .and_then(|x| a.get(x)),
        _ => None,
    }
}

/// `j #> path`.
pub(crate) fn get_path<'j>(j: &'j Json, path: &[String]) -> Option<&'j Json> {
    let mut cur = j;
    for p in path {
        cur = get(cur, &Step::Key(p))?;
    }
    Some(cur)
}

/// `a @> b`.
pub(crate) fn contains(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(fa), Json::Object(fb)) => fb.iter().all(|(k, vb)| {
            fa.iter()
                .find(|(ka, _)| ka == k)
                .is_some_and(|(_, va)| contains(va, vb))
        }),
        (Json::Array(xa), Json::Array(xb)) => xb.iter().all(|vb| {
            xa.iter().any(|va| match vb {
                Json::Array(_) | Json::Object(_) => contains(va, vb),
                _ => scalar_eq(va, vb),
            })
        }),
        // A top-level array contains a scalar it has as an element.
        (Json::Array(xa), s) if !matches!(s, Json::Object(_)) => {
            xa.iter().any(|va| scalar_eq(va, s))
        }
        (x, y) => scalar_eq(x, y),
    }
}

fn scalar_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (Numeric::parse(x), Numeric::parse(y)) {
            (Ok(p), Ok(q)) => p == q,
            _ => x == y,
        },
        _ => a == b,
    }
}

/// `j ? key`: a top-level key, or a string element of a top-level array.
pub(crate) fn exists(j: &Json, key: &str) -> bool {
    match j {
        Json::Object(f) => f.iter().any(|(k, _)| k == key),
        Json::Array(a) => a.iter().any(|v| matches!(v, Json::String(s) if s == key)),
        Json::String(s) => s == key,
        _ => false,
    }
}

/// `a || b`.
pub(crate) fn concat(a: Json, b: Json) -> Json {
    match (a, b) {
        (Json::Object(mut fa), Json::Object(fb)) => {
            for (k, v) in fb {
                match fa.iter_mut().find(|(kk, _)| *kk == k) {
                    Some(slot) => slot.1 = v,
                    None => fa.push((k, v)),
                }
            }
            normalise(Json::Object(fa))
        }
        (Json::Array(mut xa), Json::Array(xb)) => {
            xa.extend(xb);
            Json::Array(xa)
        }
        (Json::Array(mut xa), b) => {
            xa.push(b);
            Json::Array(xa)
        }
        (a, Json::Array(xb)) => {
            let mut v = vec![a];
            v.extend(xb);
            Json::Array(v)
        }
        (a, b) => Json::Array(vec![a, b]),
    }
}

/// `j - key` / `j - index`. Errors: 22023 deleting from a scalar.
pub(crate) fn delete(j: Json, step: &Step<'_>) -> Result<Json, PgError> {
    match (j, step) {
        (Json::Object(f), Step::Key(k)) => Ok(Json::Object(
            f.into_iter().filter(|(kk, _)| kk != k).collect(),
        )),
        (Json::Array(a), Step::Key(k)) => Ok(Json::Array(
            a.into_iter()
                .filter(|v| !matches!(v, Json::String(s) if s == k))
                .collect(),
        )),
        (Json::Array(mut a), Step::Index(i)) => {
            if let Some(k) = array_index(a.len(), *i) {
                a.remove(k);
            }
            Ok(Json::Array(a))
        }
        (Json::Object(_), Step::Index(_)) => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot delete from object using integer index",
        )),
        _ => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot delete from scalar",
        )),
    }
}

/// `j #- path`.
pub(crate) fn delete_path(j: Json, path: &[String]) -> Result<Json, PgError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(j);
    };
    if rest.is_empty() {
        return match &j {
            Json::Array(_) => match first.trim().parse::<i64>() {
                Ok(i) => delete(j, &Step::Index(i)),
                Err(_) => Err(PgError::new(
                    SqlState::InvalidTextRepresentation,
                    format!("path element at position 1 is not an integer: \"{first}\""),
                )),
            },
            Json::Object(_) => delete(j, &Step::Key(first)),
            _ => Err(PgError::new(
                SqlState::InvalidParameterValue,
                "cannot delete path in scalar",
            )),
        };
    }
    Ok(match j {
        Json::Object(f) => Json::Object(
            f.into_iter()
                .map(|(k, v)| {
                    if k == *first {
                        delete_path(v, rest).map(|v| (k, v))
                    } else {
                        Ok((k, v))
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        Json::Array(a) => {
            let idx = first
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|i| array_index(a.len(), i));
            Json::Array(
                a.into_iter()
                    .enumerate()
                    .map(|(n, v)| {
                        if Some(n) == idx {
                            delete_path(v, rest)
                        } else {
                            Ok(v)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        other => other,
    })
}

/// `jsonb_set(j, path, new, create_missing)` (`insert` = `jsonb_insert(j, path, new, after)`).
pub(crate) fn set_path(
    j: Json,
    path: &[String],
    new: &Json,
    create: bool,
    insert: Option<bool>,
) -> Result<Json, PgError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(if insert.is_some() { j } else { new.clone() });
    };
    Ok(match j {
        Json::Object(mut f) => {
            let pos = f.iter().position(|(k, _)| k == first);
            match (pos, rest.is_empty()) {
                (Some(p), true) => {
                    if insert.is_some() {
                        return Err(PgError::new(
                            SqlState::InvalidParameterValue,
                            "cannot replace existing key",
                        ));
                    }
                    f[p].1 = new.clone();
                }
                (Some(p), false) => {
                    let v = std::mem::replace(&mut f[p].1, Json::Null);
                    f[p].1 = set_path(v, rest, new, create, insert)?;
                }
                (None, true) if create || insert.is_some() => {
                    f.push((first.clone(), new.clone()));
                }
                _ => {}
            }
            normalise(Json::Object(f))
        }
        Json::Array(mut a) => {
            let i: i64 = first.trim().parse().map_err(|_| {
                PgError::new(
                    SqlState::InvalidTextRepresentation,
                    format!("path element at position 1 is not an integer: \"{first}\""),
                )
            })?;
            let len = a.len();
            match array_index(len, i) {
                Some(k) if rest.is_empty() => match insert {
                    Some(after) => a.insert(if after { k + 1 } else { k }, new.clone()),
                    None => a[k] = new.clone(),
                },
                Some(k) => {
                    let v = std::mem::replace(&mut a[k], Json::Null);
                    a[k] = set_path(v, rest, new, create, insert)?;
                }
                None if rest.is_empty() && (create || insert.is_some()) => {
                    if i < 0 {
                        a.insert(0, new.clone());
                    } else {
                        a.push(new.clone());
                    }
                }
                None => {}
            }
            Json::Array(a)
        }
        _ => {
            return Err(PgError::new(
                SqlState::InvalidParameterValue,
                "cannot set path in scalar",
            ))
        }
    })
}

/// `jsonb_typeof`.
pub(crate) fn type_of(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// `jsonb_strip_nulls`.
pub(crate) fn strip_nulls(j: Json) -> Json {
    match j {
        Json::Object(f) => Json::Object(
            f.into_iter()
                .filter(|(_, v)| !matches!(v, Json::Null))
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// `jsonb_pretty`.
pub(crate) fn pretty(j: &Json) -> String {
    fn go(j: &Json, depth: usize, out: &mut String) {
        let pad = |n: usize, out: &mut String| out.push_str(&"    ".repeat(n));
        match j {
            Json::Array(a) if !a.is_empty() => {
                out.push_str("[\n");
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    pad(depth + 1, out);
                    go(v, depth + 1, out);
                }
                out.push('\n');
                pad(depth, out);
                out.push(']');
            }
            Json::Object(f) if !f.is_empty() => {
                out.push_str("{\n");
                for (i, (k, v)) in f.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    pad(depth + 1, out);
                    escape_json(k, out);
                    out.push_str(": ");
                    go(v, depth + 1, out);
                }
                out.push('\n');
                pad(depth, out);
                out.push('}');
            }
            other => write_jsonb(other, out),
        }
    }
    let mut out = String::new();
    go(j, 0, &mut out);
    out
}

/// A JSON string value.
pub(crate) fn string(s: &str) -> Json {
    Json::String(s.to_string())
}

/// A JSON number from its text.
pub(crate) fn number(s: String) -> Json {
    Json::Number(s)
}

/// `jsonb_array_length`. Errors: 22023 on a non-array.
pub(crate) fn array_length(j: &Json) -> Result<i32, PgError> {
    match j {
        Json::Array(a) => Ok(i32::try_from(a.len()).unwrap_or(i32::MAX)),
        Json::Object(_) => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot get array length of a non-array",
        )),
        _ => Err(PgError::new(
            SqlState::InvalidParameterValue,
            "cannot get array length of a scalar",
        )),
    }
}

/// Build an object from `(key, value)` pairs (later keys win).
pub(crate) fn object(pairs: Vec<(String, Json)>) -> Json {
    normalise(Json::Object(pairs))
}

/// Build an array.
pub(crate) fn array(items: Vec<Json>) -> Json {
    Json::Array(items)
}

/// JSON `null`.
pub(crate) fn null() -> Json {
    Json::Null
}

/// A JSON boolean.
pub(crate) fn boolean(b: bool) -> Json {
    Json::Bool(b)
}
