//! A subset of the SQL/JSON path language (`jsonpath`) in lax mode, for `@?`, `@@`,
//! `jsonb_path_exists`, `jsonb_path_match`, `jsonb_path_query_array` and
//! `jsonb_path_query_first`: `$`, `.key`, `."key"`, `.*`, `[*]`, subscript lists and ranges
//! (`[0, 2 to last]`, `last - n`), the item methods `.size()`, `.type()`, `.double()`, `.abs()`,
//! `.floor()`, `.ceiling()`, and filters `? (...)` with `@` paths, literals (numbers, strings,
//! `true`, `false`, `null`), comparisons (`==`, `!=`, `<>`, `<`, `<=`, `>`, `>=`), `&&`, `||`, `!`,
//! `exists (...)`, `like_regex "re" [flag "i"]`, `starts with` and `is unknown`. A top-level
//! predicate (`$.a > 1`) gives a boolean (NULL when unknown).
//!
//! Errors: 42601 for a path this grammar does not accept (PostgreSQL's jsonpath syntax errors).

use std::cmp::Ordering;

use pgxc_common::{PgError, SqlState};

use crate::types::json as j;
use crate::types::text::Json;
use crate::types::{Numeric, Value};

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    AnyKey,
    AnyIndex,
    /// A subscript list: single indexes and `from to to` ranges.
    Index(Vec<(Idx, Option<Idx>)>),
    Filter(Box<Pred>),
    Method(Method),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    Size,
    Type,
    Double,
    Abs,
    Floor,
    Ceiling,
}

#[derive(Clone, Copy, Debug)]
enum Idx {
    At(i64),
    Last(i64),
}

#[derive(Clone, Debug)]
enum Operand {
    /// A path from `$` (`false`) or `@` (`true`).
    Path(bool, Vec<Step>),
    Lit(Json),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug)]
enum Pred {
    Cmp(Operand, Cmp, Operand),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Exists(Operand),
    LikeRegex(Operand, String, String),
    StartsWith(Operand, Operand),
    IsUnknown(Box<Pred>),
}

/// A parsed path: a plain path, or a predicate.
enum Query {
    Path(Vec<Step>),
    Pred(Pred),
}

fn syntax(path: &str) -> PgError {
    PgError::new(
        SqlState::SyntaxError,
        format!("syntax error in jsonpath input: \"{path}\""),
    )
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        self.src[st..self.i].to_string()
    }

    fn err(&self) -> PgError {
        syntax(self.src)
    }

    fn string(&mut self) -> Result<String, PgError> {
        // At an opening double quote.
        self.i += 1;
        let mut out = String::new();
        let rest = &self.src[self.i..];
        let mut chars = rest.char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += k + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) => out.push(c),
                    None => return Err(self.err()),
                },
                c => out.push(c),
            }
        }
        Err(self.err())
    }

    fn number(&mut self) -> Result<Json, PgError> {
        self.ws();
        let st = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_digit()
                || self.s[self.i] == b'.'
                || self.s[self.i] == b'e'
                || self.s[self.i] == b'E')
        {
            self.i += 1;
        }
        let t = &self.src[st..self.i];
        Numeric::parse(t).map_err(|_| self.err())?;
        Ok(j::number(t.to_string()))
    }

    fn steps(&mut self) -> Result<Vec<Step>, PgError> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'*') => {
                            self.i += 1;
                            steps.push(Step::AnyKey);
                        }
                        Some(b'"') => steps.push(Step::Key(self.string()?)),
                        _ => {
                            let w = self.word();
                            if w.is_empty() {
                                return Err(self.err());
                            }
                            if self.eat("(") {
                                if !self.eat(")") {
                                    return Err(self.err());
                                }
                                let m = match w.as_str() {
                                    "size" => Method::Size,
                                    "type" => Method::Type,
                                    "double" => Method::Double,
                                    "abs" => Method::Abs,
                                    "floor" => Method::Floor,
                                    "ceiling" => Method::Ceiling,
                                    _ => return Err(self.err()),
                                };
                                steps.push(Step::Method(m));
                            } else {
                                steps.push(Step::Key(w));
                            }
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    if self.eat("*") {
                        steps.push(Step::AnyIndex);
                    } else {
                        let mut list = Vec::new();
                        loop {
                            let from = self.index()?;
                            let save = self.i;
                            let to = if self.word() == "to" {
                                Some(self.index()?)
                            } else {
                                self.i = save;
                                None
                            };
                            list.push((from, to));
                            if !self.eat(",") {
                                break;
                            }
                        }
                        steps.push(Step::Index(list));
                    }
                    if !self.eat("]") {
                        return Err(self.err());
                    }
                }
                Some(b'?') => {
                    self.i += 1;
                    if !self.eat("(") {
                        return Err(self.err());
                    }
                    let p = self.pred()?;
                    if !self.eat(")") {
                        return Err(self.err());
                    }
                    steps.push(Step::Filter(Box::new(p)));
                }
                _ => return Ok(steps),
            }
        }
    }

    /// One subscript: `n`, `last` or `last - n`.
    fn index(&mut self) -> Result<Idx, PgError> {
        let int = |p: &mut Self| -> Result<i64, PgError> {
            match p.number()? {
                Json::Number(t) => t.parse::<i64>().map_err(|_| p.err()),
                _ => Err(p.err()),
            }
        };
        if self.eat("last") {
            let off = if self.eat("-") { int(self)? } else { 0 };
            Ok(Idx::Last(off))
        } else {
            Ok(Idx::At(int(self)?))
        }
    }

    fn operand(&mut self) -> Result<Operand, PgError> {
        match self.peek() {
            Some(b'$') => {
                self.i += 1;
                Ok(Operand::Path(false, self.steps()?))
            }
            Some(b'@') => {
                self.i += 1;
                Ok(Operand::Path(true, self.steps()?))
            }
            Some(b'"') => Ok(Operand::Lit(j::string(&self.string()?))),
            Some(c) if c.is_ascii_digit() || c == b'-' => Ok(Operand::Lit(self.number()?)),
            Some(_) => {
                let save = self.i;
                match self.word().as_str() {
                    "true" => Ok(Operand::Lit(j::boolean(true))),
                    "false" => Ok(Operand::Lit(j::boolean(false))),
                    "null" => Ok(Operand::Lit(j::null())),
                    _ => {
                        self.i = save;
                        Err(self.err())
                    }
                }
            }
            None => Err(self.err()),
        }
    }

    fn cmp_op(&mut self) -> Option<Cmp> {
        for (t, c) in [
            ("==", Cmp::Eq),
            ("!=", Cmp::Ne),
            ("<>", Cmp::Ne),
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ] {
            if self.eat(t) {
                return Some(c);
            }
        }
        None
    }

    fn pred(&mut self) -> Result<Pred, PgError> {
        let mut p = self.pred_and()?;
        while self.eat("||") {
            p = Pred::Or(Box::new(p), Box::new(self.pred_and()?));
        }
        Ok(p)
    }

    fn pred_and(&mut self) -> Result<Pred, PgError> {
        let mut p = self.pred_atom()?;
        while self.eat("&&") {
            p = Pred::And(Box::new(p), Box::new(self.pred_atom()?));
        }
        Ok(p)
    }

    fn pred_atom(&mut self) -> Result<Pred, PgError> {
        if self.eat("!") {
            if !self.eat("(") {
                return Err(self.err());
            }
            let p = self.pred()?;
            if !self.eat(")") {
                return Err(self.err());
            }
            return Ok(Pred::Not(Box::new(p)));
        }
        if self.peek() == Some(b'(') {
            self.i += 1;
            let p = self.pred()?;
            if !self.eat(")") {
                return Err(self.err());
            }
            let save = self.i;
            if self.word() == "is" && self.word() == "unknown" {
                return Ok(Pred::IsUnknown(Box::new(p)));
            }
            self.i = save;
            return Ok(p);
        }
        let save = self.i;
        if self.word() == "exists" {
            if !self.eat("(") {
                return Err(self.err());
            }
            let o = self.operand()?;
            if !self.eat(")") {
                return Err(self.err());
            }
            return Ok(Pred::Exists(o));
        }
        self.i = save;
        let a = self.operand()?;
        let save = self.i;
        match self.word().as_str() {
            "like_regex" => {
                if self.peek() != Some(b'"') {
                    return Err(self.err());
                }
                let re = self.string()?;
                let save = self.i;
                let flags = if self.word() == "flag" {
                    if self.peek() != Some(b'"') {
                        return Err(self.err());
                    }
                    self.string()?
                } else {
                    self.i = save;
                    String::new()
                };
                return Ok(Pred::LikeRegex(a, re, flags));
            }
            "starts" => {
                if self.word() != "with" {
                    return Err(self.err());
                }
                let b = self.operand()?;
                return Ok(Pred::StartsWith(a, b));
            }
            _ => self.i = save,
        }
        let op = self.cmp_op().ok_or_else(|| self.err())?;
        let b = self.operand()?;
        Ok(Pred::Cmp(a, op, b))
    }
}

fn parse(path: &str) -> Result<Query, PgError> {
    let mut p = Parser {
        s: path.as_bytes(),
        i: 0,
        src: path,
    };
    let save = p.i;
    let w = p.word();
    if w != "lax" && w != "strict" {
        p.i = save;
    }
    let q = if p.peek() == Some(b'$') {
        let save = p.i;
        p.i += 1;
        let steps = p.steps()?;
        if p.peek().is_none() {
            Query::Path(steps)
        } else {
            p.i = save;
            Query::Pred(p.pred()?)
        }
    } else {
        Query::Pred(p.pred()?)
    };
    if p.peek().is_some() {
        return Err(syntax(path));
    }
    Ok(q)
}

fn apply(items: Vec<Json>, step: &Step, root: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for it in items {
        match (step, it) {
            (Step::Key(k), Json::Object(pairs)) => {
                if let Some((_, v)) = pairs.into_iter().find(|(key, _)| key == k) {
                    out.push(v);
                }
            }
            (Step::Key(_), Json::Array(a)) => out.extend(apply(a, step, root)),
            (Step::AnyKey, Json::Object(pairs)) => out.extend(pairs.into_iter().map(|(_, v)| v)),
            (Step::AnyKey, Json::Array(a)) => out.extend(apply(a, step, root)),
            (Step::AnyIndex, Json::Array(a)) => out.extend(a),
            (Step::AnyIndex, v) => out.push(v),
            (Step::Index(list), Json::Array(a)) => {
                let n = a.len() as i64;
                let pos = |i: Idx| match i {
                    Idx::At(k) => k,
                    Idx::Last(off) => n - 1 - off,
                };
                for (from, to) in list {
                    let lo = pos(*from);
                    let hi = to.map_or(lo, pos);
                    for k in lo.max(0)..=hi.min(n - 1) {
                        out.push(a[k as usize].clone());
                    }
                }
            }
            // Lax mode: a non-array is an array of one element.
            (Step::Index(list), v) if selects_first(list) => out.push(v),
            (Step::Method(m), v) => out.extend(method(*m, v)),
            (Step::Filter(p), Json::Array(a)) => {
                for x in a {
                    if eval_pred(p, &x, root) == Some(true) {
                        out.push(x);
                    }
                }
            }
            (Step::Filter(p), v) if eval_pred(p, &v, root) == Some(true) => out.push(v),
            _ => {}
        }
    }
    out
}

/// Whether a subscript list selects element 0 of a one-element array.
fn selects_first(list: &[(Idx, Option<Idx>)]) -> bool {
    let pos = |i: &Idx| match i {
        Idx::At(k) => *k,
        Idx::Last(off) => -off,
    };
    list.iter().any(|(from, to)| {
        let lo = pos(from);
        let hi = to.as_ref().map_or(lo, pos);
        lo <= 0 && hi >= 0
    })
}

/// An item method applied to one item (lax mode: arrays unwrap, except for `size` and `type`).
fn method(m: Method, v: Json) -> Vec<Json> {
    let num = |f: fn(&Numeric) -> Numeric, v: &Json| match v {
        Json::Number(t) => Numeric::parse(t).ok().map(|n| j::number(f(&n).to_text())),
        _ => None,
    };
    match (m, v) {
        (Method::Size, Json::Array(a)) => vec![j::number(a.len().to_string())],
        (Method::Size, _) => vec![j::number("1".into())],
        (Method::Type, v) => vec![j::string(j::type_of(&v))],
        (_, Json::Array(a)) => a.into_iter().flat_map(|x| method(m, x)).collect(),
        (Method::Double, Json::Number(t)) => vec![j::number(t)],
        (Method::Double, Json::String(t)) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| vec![j::number(crate::types::text::format_float8(f))])
            .unwrap_or_default(),
        (Method::Abs, v) => num(Numeric::abs, &v).into_iter().collect(),
        (Method::Floor, v) => num(Numeric::floor, &v).into_iter().collect(),
        (Method::Ceiling, v) => num(Numeric::ceil, &v).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn run(steps: &[Step], start: Json, root: &Json) -> Vec<Json> {
    let mut items = vec![start];
    for s in steps {
        items = apply(items, s, root);
    }
    items
}

fn operand_items(o: &Operand, cur: &Json, root: &Json) -> Vec<Json> {
    match o {
        Operand::Lit(v) => vec![v.clone()],
        Operand::Path(at, steps) => {
            let start = if *at { cur.clone() } else { root.clone() };
            // Lax mode unwraps arrays operands of comparisons.
            run(steps, start, root)
                .into_iter()
                .flat_map(|v| match v {
                    Json::Array(a) => a,
                    v => vec![v],
                })
                .collect()
        }
    }
}

/// Compare two items: `None` is "unknown".
fn compare(a: &Json, b: &Json, op: Cmp) -> Option<bool> {
    let ord = match (a, b) {
        (Json::Null, Json::Null) => Ordering::Equal,
        (Json::Null, _) | (_, Json::Null) => return Some(op == Cmp::Ne),
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (Numeric::parse(x).ok()?, Numeric::parse(y).ok()?);
            x.cmp_pg(&y)
        }
        (Json::String(x), Json::String(y)) => x.cmp(y),
        (Json::Bool(x), Json::Bool(y)) => {
            if !matches!(op, Cmp::Eq | Cmp::Ne) {
                x.cmp(y)
            } else {
                return Some((x == y) == (op == Cmp::Eq));
            }
        }
        _ => return None,
    };
    Some(match op {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Ne => ord != Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    })
}

fn eval_pred(p: &Pred, cur: &Json, root: &Json) -> Option<bool> {
    match p {
        Pred::Cmp(a, op, b) => {
            let xs = operand_items(a, cur, root);
            let ys = operand_items(b, cur, root);
            let mut unknown = false;
            for x in &xs {
                for y in &ys {
                    match compare(x, y, *op) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => unknown = true,
                    }
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Pred::And(a, b) => match (eval_pred(a, cur, root), eval_pred(b, cur, root)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Pred::Or(a, b) => match (eval_pred(a, cur, root), eval_pred(b, cur, root)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Pred::Not(a) => eval_pred(a, cur, root).map(|b| !b),
        Pred::Exists(o) => Some(!operand_items(o, cur, root).is_empty()),
        Pred::IsUnknown(p) => Some(eval_pred(p, cur, root).is_none()),
        Pred::LikeRegex(o, re, flags) => {
            let flags = crate::types::regex::parse_flags(flags).ok()?;
            let mut unknown = false;
            for it in operand_items(o, cur, root) {
                match it {
                    Json::String(s) => match crate::types::regex::is_match(&s, re, flags) {
                        Ok(true) => return Some(true),
                        Ok(false) => {}
                        Err(_) => unknown = true,
                    },
                    _ => unknown = true,
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Pred::StartsWith(a, b) => {
            let prefixes = operand_items(b, cur, root);
            let Some(Json::String(p)) = prefixes.first() else {
                return None;
            };
            let mut unknown = false;
            for it in operand_items(a, cur, root) {
                match it {
                    Json::String(s) if s.starts_with(p.as_str()) => return Some(true),
                    Json::String(_) => {}
                    _ => unknown = true,
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
    }
}

/// Evaluate `path` on the json/jsonb `doc`: the items it selects (a predicate path gives one
/// boolean item, or `null` when unknown). Errors: 42601 for an unsupported or malformed path,
/// 22P02 for malformed json.
pub(crate) fn query(doc: &Value, path: &str) -> Result<Vec<Json>, PgError> {
    let root = match doc {
        Value::Json(s) | Value::Jsonb(s) | Value::Text(s) => j::parse(s)?,
        _ => return Ok(Vec::new()),
    };
    Ok(match parse(path)? {
        Query::Path(steps) => run(&steps, root.clone(), &root),
        Query::Pred(p) => vec![match eval_pred(&p, &root, &root) {
            Some(b) => j::boolean(b),
            None => j::null(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(doc: &str, path: &str) -> String {
        j::print(&j::array(query(&Value::Jsonb(doc.into()), path).unwrap()))
    }

    #[test]
    fn paths_and_filters() {
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a[*] ? (@ >= 2)"), "[2, 3]");
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a[*] ? (@ > 2)"), "[3]");
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a[1]"), "[2]");
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a[last]"), "[3]");
        assert_eq!(q("{\"a\": {\"b\": \"x\"}}", "$.a.b"), "[\"x\"]");
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a[*] > 2"), "[true]");
        assert_eq!(
            q("[{\"k\": 1}, {\"k\": 5}]", "$[*] ? (@.k > 2 && @.k < 9).k"),
            "[5]"
        );
        assert_eq!(q("{\"a\": [1, 2, 3, 4]}", "$.a[0, 2 to last]"), "[1, 3, 4]");
        assert_eq!(q("{\"a\": [1, 2, 3]}", "$.a.size()"), "[3]");
        assert_eq!(q("{\"a\": [-1.5, 2]}", "$.a.abs()"), "[1.5, 2]");
        assert_eq!(
            q(
                "{\"a\": [\"abc\", \"xbc\"]}",
                "$.a[*] ? (@ starts with \"a\")"
            ),
            "[\"abc\"]"
        );
        assert_eq!(
            q(
                "{\"a\": [\"abc\", \"XBC\"]}",
                "$.a[*] ? (@ like_regex \"^x\" flag \"i\")"
            ),
            "[\"XBC\"]"
        );
        assert!(query(&Value::Jsonb("{}".into()), "$.a ? (").is_err());
    }
}
