//! Set-returning functions (PostgreSQL's SRFs): `unnest` (one or several arrays),
//! `generate_series` (integer, numeric, timestamp), `generate_subscripts`, `jsonb_each[_text]`,
//! `jsonb_array_elements[_text]`, `jsonb_object_keys` (and their json forms),
//! `regexp_split_to_table`, `regexp_matches`.
//!
//! In FROM they yield a relation (with `WITH ORDINALITY` and column alias lists); a FROM item
//! whose arguments reference earlier FROM items is evaluated once per outer row (PostgreSQL's
//! implicit LATERAL). In the select list they follow PostgreSQL 10+'s rule: all SRFs of a select
//! list run in lockstep, producing as many rows as the longest, the shorter ones padded with
//! NULLs.

use super::*;

/// Which set-returning function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum SrfKind {
    Unnest,
    Series,
    Subscripts,
    /// `json[b]_each[_text]`: (key, value) rows.
    Each {
        text: bool,
        jsonb: bool,
    },
    /// `json[b]_array_elements[_text]`.
    Elements {
        text: bool,
        jsonb: bool,
    },
    ObjectKeys,
    RegexpSplit,
    RegexpMatches,
}

/// A bound set-returning function call: its arguments (coerced to the function's input
/// types) and its output columns.
#[derive(Clone, Debug)]
pub(super) struct Srf {
    pub(super) kind: SrfKind,
    pub(super) name: String,
    pub(super) args: Vec<Expr>,
    pub(super) cols: Vec<(String, DataType)>,
    /// For `generate_series`: `cur + step` over the row `[cur, step]`.
    step: Option<Expr>,
}

/// The SRF named `name`, if it is one.
pub(super) fn srf_kind(name: &str) -> Option<SrfKind> {
    Some(match name {
        "unnest" => SrfKind::Unnest,
        "generate_series" => SrfKind::Series,
        "generate_subscripts" => SrfKind::Subscripts,
        "jsonb_each" => SrfKind::Each {
            text: false,
            jsonb: true,
        },
        "jsonb_each_text" => SrfKind::Each {
            text: true,
            jsonb: true,
        },
        "json_each" => SrfKind::Each {
            text: false,
            jsonb: false,
        },
        "json_each_text" => SrfKind::Each {
            text: true,
            jsonb: false,
        },
        "jsonb_array_elements" => SrfKind::Elements {
            text: false,
            jsonb: true,
        },
        "jsonb_array_elements_text" => SrfKind::Elements {
            text: true,
            jsonb: true,
        },
        "json_array_elements" => SrfKind::Elements {
            text: false,
            jsonb: false,
        },
        "json_array_elements_text" => SrfKind::Elements {
            text: true,
            jsonb: false,
        },
        "jsonb_object_keys" | "json_object_keys" => SrfKind::ObjectKeys,
        "regexp_split_to_table" => SrfKind::RegexpSplit,
        "regexp_matches" => SrfKind::RegexpMatches,
        _ => return None,
    })
}

/// Whether `e` is a call of a set-returning function (not a window or aggregate call).
pub(super) fn is_srf_call(e: &A) -> bool {
    match e {
        A::Function(f) => f.over.is_none() && srf_kind(&func_name(f)).is_some(),
        A::Nested(x) => is_srf_call(x),
        _ => false,
    }
}

/// Whether `e` calls a set-returning function where [`Exec::expand_tlist_srfs`] looks for
/// them (through operators, casts and non-aggregate function calls).
fn has_srf(e: &A) -> bool {
    if is_srf_call(e) {
        return true;
    }
    match e {
        A::Function(f) if f.over.is_none() && agg_fn(&func_name(f)).is_none() => match &f.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .any(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) if has_srf(x))),
            _ => false,
        },
        A::BinaryOp { left, right, .. } => has_srf(left) || has_srf(right),
        A::UnaryOp { expr, .. } | A::Nested(expr) | A::Cast { expr, .. } => has_srf(expr),
        _ => false,
    }
}

fn plain_args(args: &[FunctionArg]) -> Result<Vec<&A>, PgError> {
    args.iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(unsupported("this set-returning function argument")),
        })
        .collect()
}

/// The arguments of a function call in the select list.
pub(super) fn call_args(f: &ast::Function) -> Result<Vec<&A>, PgError> {
    match &f.args {
        FunctionArguments::List(l) => plain_args(&l.args),
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::Subquery(_) => Err(unsupported("function over a subquery")),
    }
}

fn no_srf(name: &str, args: &[Expr]) -> PgError {
    err(
        SqlState::UndefinedFunction,
        format!(
            "function {name}({}) does not exist",
            args.iter()
                .map(|a| a.data_type().name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

impl<'a> Exec<'a> {
    /// Bind a call of SRF `name` with `args` over `cx` (`None` if `name` is no SRF).
    ///
    /// Errors: 42883 when no variant takes these argument types; binding errors.
    pub(super) fn bind_srf(
        &self,
        name: &str,
        args: &[&A],
        cx: &Cx<'_>,
    ) -> Result<Option<Srf>, PgError> {
        let Some(kind) = srf_kind(name) else {
            return Ok(None);
        };
        let mut bound = Vec::new();
        for a in args {
            bound.push(self.bind(a, cx)?);
        }
        let one = |n: &str, t: DataType| vec![(n.to_string(), t)];
        let text_arg = |e: Expr| coerce(e, &DataType::Text, CastContext::Implicit);
        let mut step = None;
        let (args, cols) = match kind {
            SrfKind::Unnest => {
                if bound.is_empty() {
                    return Err(no_srf(name, &bound));
                }
                let mut cols = Vec::new();
                for b in &bound {
                    match b.data_type() {
                        DataType::Array(elem) => cols.push(("unnest".to_string(), out_type(&elem))),
                        _ => return Err(no_srf(name, &bound)),
                    }
                }
                (bound, cols)
            }
            SrfKind::Series => {
                if bound.len() != 2 && bound.len() != 3 {
                    return Err(no_srf(name, &bound));
                }
                let tys: Vec<DataType> = bound.iter().map(Expr::data_type).collect();
                let known = |t: &DataType| *t != DataType::Unknown;
                let first_known = tys.iter().take(2).find(|t| known(t)).cloned();
                let ty = match first_known {
                    Some(DataType::Timestamp) => DataType::Timestamp,
                    Some(DataType::Timestamptz) | Some(DataType::Date) => DataType::Timestamptz,
                    _ if tys.iter().any(|t| matches!(t, DataType::Numeric(_))) => {
                        DataType::Numeric(None)
                    }
                    _ if tys.iter().all(|t| {
                        matches!(t, DataType::Int2 | DataType::Int4 | DataType::Unknown)
                    }) =>
                    {
                        DataType::Int4
                    }
                    _ if tys.iter().all(|t| {
                        matches!(
                            t,
                            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Unknown
                        )
                    }) =>
                    {
                        DataType::Int8
                    }
                    _ => return Err(no_srf(name, &bound)),
                };
                let datetime = matches!(ty, DataType::Timestamp | DataType::Timestamptz);
                if datetime && bound.len() != 3 {
                    return Err(no_srf(name, &bound));
                }
                let step_ty = if datetime {
                    DataType::Interval
                } else {
                    ty.clone()
                };
                let mut args = Vec::new();
                for (i, b) in bound.into_iter().enumerate() {
                    let t = if i == 2 { &step_ty } else { &ty };
                    args.push(coerce(b, t, CastContext::Implicit).map_err(|_| {
                        err(
                            SqlState::UndefinedFunction,
                            format!("function {name} does not exist for these argument types"),
                        )
                    })?);
                }
                step = Some(self.binary_expr(
                    BinOp::Add,
                    Expr::Column(0, ty.clone()),
                    Expr::Column(1, step_ty),
                )?);
                (args, one("generate_series", ty))
            }
            SrfKind::Subscripts => {
                if !(bound.len() == 2 || bound.len() == 3)
                    || !matches!(bound[0].data_type(), DataType::Array(_))
                {
                    return Err(no_srf(name, &bound));
                }
                let mut it = bound.into_iter();
                let mut args = vec![it
                    .next()
                    .unwrap_or(Expr::Const(Value::Null, DataType::Unknown))];
                if let Some(d) = it.next() {
                    args.push(coerce(d, &DataType::Int4, CastContext::Implicit)?);
                }
                if let Some(r) = it.next() {
                    args.push(coerce(r, &DataType::Bool, CastContext::Implicit)?);
                }
                (args, one("generate_subscripts", DataType::Int4))
            }
            SrfKind::Each { text, jsonb } | SrfKind::Elements { text, jsonb } => {
                if bound.len() != 1 {
                    return Err(no_srf(name, &bound));
                }
                let jt = if jsonb {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let arg = coerce(bound.remove(0), &jt, CastContext::Implicit)
                    .map_err(|_| no_srf(name, &[]))?;
                let vt = if text { DataType::Text } else { jt };
                let cols = if matches!(kind, SrfKind::Each { .. }) {
                    vec![
                        ("key".to_string(), DataType::Text),
                        ("value".to_string(), vt),
                    ]
                } else {
                    one("value", vt)
                };
                (vec![arg], cols)
            }
            SrfKind::ObjectKeys => {
                if bound.len() != 1 {
                    return Err(no_srf(name, &bound));
                }
                let jt = if name.starts_with("jsonb") {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let arg = coerce(bound.remove(0), &jt, CastContext::Implicit)?;
                (vec![arg], one(name, DataType::Text))
            }
            SrfKind::RegexpSplit | SrfKind::RegexpMatches => {
                if bound.len() != 2 && bound.len() != 3 {
                    return Err(no_srf(name, &bound));
                }
                let args = bound
                    .into_iter()
                    .map(text_arg)
                    .collect::<Result<Vec<_>, _>>()?;
                let ty = if kind == SrfKind::RegexpSplit {
                    DataType::Text
                } else {
                    DataType::Array(Box::new(DataType::Text))
                };
                (args, one(name, ty))
            }
        };
        let cols = match kind {
            SrfKind::Unnest | SrfKind::Series | SrfKind::Subscripts => cols,
            _ => match crate::funcs::srf::lookup(name, args.len()) {
                Some(def) => def
                    .columns
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.clone()))
                    .collect(),
                None => return Err(no_srf(name, &args)),
            },
        };
        Ok(Some(Srf {
            kind,
            name: name.to_string(),
            args,
            cols,
            step,
        }))
    }

    /// The rows of a bound SRF for the input `row` (strict: a NULL argument gives no rows, except
    /// for `unnest` of several arrays, where a NULL array counts as empty).
    ///
    /// Errors: 22023 for a zero step; 22023/2201B for bad regular expressions or flags; 22023
    /// for JSON of the wrong shape (as PostgreSQL: "cannot call jsonb_each on a non-object").
    pub(super) fn eval_srf(&self, srf: &Srf, row: &[Value]) -> Result<Vec<Vec<Value>>, PgError> {
        let vals = srf
            .args
            .iter()
            .map(|e| e.eval(row, &self.cx))
            .collect::<Result<Vec<_>, _>>()?;
        if srf.kind == SrfKind::Unnest {
            let arrays: Vec<Vec<Value>> = vals
                .into_iter()
                .map(|v| match v {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                })
                .collect();
            let n = arrays.iter().map(Vec::len).max().unwrap_or(0);
            return Ok((0..n)
                .map(|i| {
                    arrays
                        .iter()
                        .map(|a| a.get(i).cloned().unwrap_or(Value::Null))
                        .collect()
                })
                .collect());
        }
        if srf.kind != SrfKind::Subscripts && vals.iter().any(Value::is_null) {
            return Ok(Vec::new());
        }
        if srf.kind == SrfKind::Subscripts && vals.iter().take(2).any(Value::is_null) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        match srf.kind {
            SrfKind::Unnest => {}
            SrfKind::Series => {
                let Some(step_e) = &srf.step else {
                    return Ok(out);
                };
                let step = vals.get(2).cloned().unwrap_or_else(|| match srf.cols[0].1 {
                    DataType::Int8 => Value::Int8(1),
                    DataType::Numeric(_) => Value::Numeric(Numeric::from_i64(1)),
                    _ => Value::Int4(1),
                });
                let zero = match &step {
                    Value::Interval(_) => cast_value(
                        Value::Text("0".into()),
                        &DataType::Text,
                        &DataType::Interval,
                        CastContext::Explicit,
                        &self.cx.tz,
                    )?,
                    Value::Numeric(_) => Value::Numeric(Numeric::from_i64(0)),
                    _ => Value::Int8(0),
                };
                let dir = compare(&step, &zero).unwrap_or(Ordering::Equal);
                if dir == Ordering::Equal {
                    return Err(err(
                        SqlState::InvalidParameterValue,
                        "step size cannot equal zero",
                    ));
                }
                if matches!(&step, Value::Numeric(n) if n.to_string() == "NaN") {
                    return Err(err(
                        SqlState::InvalidParameterValue,
                        "step size cannot be NaN",
                    ));
                }
                let (mut cur, stop) = (vals[0].clone(), vals[1].clone());
                loop {
                    let o = compare(&cur, &stop).unwrap_or(Ordering::Greater);
                    if (dir == Ordering::Greater && o == Ordering::Greater)
                        || (dir == Ordering::Less && o == Ordering::Less)
                    {
                        break;
                    }
                    if out.len() >= 50_000_000 {
                        return Err(err(
                            SqlState::ProgramLimitExceeded,
                            "generate_series too large",
                        ));
                    }
                    out.push(vec![cur.clone()]);
                    cur = match step_e.eval(&[cur, step.clone()], &self.cx) {
                        Ok(v) => v,
                        // Past the type's range: the series ends (PostgreSQL stops on overflow).
                        Err(e) if e.code == SqlState::NumericValueOutOfRange => break,
                        Err(e) => return Err(e),
                    };
                }
            }
            SrfKind::Subscripts => {
                let n = match &vals[0] {
                    Value::Array(a) => a.len(),
                    _ => 0,
                };
                if !matches!(vals[1], Value::Int4(1)) {
                    return Ok(out);
                }
                let rev = matches!(vals.get(2), Some(Value::Bool(true)));
                let mut idx: Vec<i32> = (1..=i32::try_from(n).unwrap_or(i32::MAX)).collect();
                if rev {
                    idx.reverse();
                }
                out = idx.into_iter().map(|i| vec![Value::Int4(i)]).collect();
            }
            SrfKind::Each { .. }
            | SrfKind::Elements { .. }
            | SrfKind::ObjectKeys
            | SrfKind::RegexpSplit
            | SrfKind::RegexpMatches => {
                let Some(def) = crate::funcs::srf::lookup(&srf.name, vals.len()) else {
                    return Err(no_srf(&srf.name, &srf.args));
                };
                out = (def.generator)(&vals)?;
            }
        }
        Ok(out)
    }

    /// A set-returning function in FROM: `name(args) [WITH ORDINALITY] [AS t(c1, ...)]`.
    /// Arguments may reference the current outer row (LATERAL). A single-column function's
    /// column is named by the table alias when no column alias is given (PostgreSQL's rule).
    ///
    /// Errors: 42883 for an unknown function; 42601 if the alias list is too long.
    pub(super) fn srf_from(
        &self,
        name: &str,
        args: &[&A],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
    ) -> Result<Rel, PgError> {
        let Some(srf) = self.bind_srf(name, args, &Cx::plain(&[]))? else {
            return Err(err(
                SqlState::UndefinedFunction,
                format!("function {name} does not exist"),
            ));
        };
        let mut rows = self.eval_srf(&srf, &[])?;
        self.func_rel(&srf.name, srf.cols.clone(), &mut rows, alias, ordinality)
            .map(|cols| Rel { cols, rows })
    }

    /// `unnest(a1, a2, ...)` parsed as sqlparser's UNNEST table factor.
    pub(super) fn unnest_from(
        &self,
        arrays: &[A],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
    ) -> Result<Rel, PgError> {
        let args: Vec<&A> = arrays.iter().collect();
        self.srf_from("unnest", &args, alias, ordinality)
    }

    /// The columns of a function relation (ordinality appended to `rows` when asked).
    fn func_rel(
        &self,
        fname: &str,
        mut cols: Vec<(String, DataType)>,
        rows: &mut [Vec<Value>],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
    ) -> Result<Vec<ColInfo>, PgError> {
        let qual = alias.map_or_else(|| fname.to_string(), |a| normalize_ident(&a.name));
        if cols.len() == 1 {
            if let Some(a) = alias {
                cols[0].0 = normalize_ident(&a.name);
            }
        }
        if ordinality {
            cols.push(("ordinality".into(), DataType::Int8));
            for (i, r) in rows.iter_mut().enumerate() {
                r.push(Value::Int8(i64::try_from(i + 1).unwrap_or(i64::MAX)));
            }
        }
        if let Some(a) = alias {
            if a.columns.len() > cols.len() {
                return Err(err(
                    SqlState::SyntaxError,
                    format!(
                        "table \"{qual}\" has {} columns available but {} columns specified",
                        cols.len(),
                        a.columns.len()
                    ),
                ));
            }
            for (c, n) in cols.iter_mut().zip(&a.columns) {
                c.0 = normalize_ident(&n.name);
            }
        }
        Ok(cols
            .into_iter()
            .map(|(name, ty)| ColInfo {
                table: Some(qual.clone()),
                name,
                ty,
                hidden: false,
            })
            .collect())
    }

    /// Replace the SRF calls in `e` (through operators, casts and ordinary function calls, not
    /// into subqueries) by references to the hidden columns that will hold their values,
    /// binding them over `cols`.
    fn replace_srfs(
        &self,
        e: &mut A,
        cols: &[ColInfo],
        srfs: &mut Vec<Srf>,
    ) -> Result<(), PgError> {
        if is_srf_call(e) {
            let mut inner = &*e;
            while let A::Nested(x) = inner {
                inner = x;
            }
            let A::Function(f) = inner else {
                return Ok(());
            };
            let fname = func_name(f);
            let args = call_args(f)?;
            let Some(srf) = self.bind_srf(&fname, &args, &Cx::plain(cols))? else {
                return Ok(());
            };
            if srf.cols.len() != 1 {
                return Err(unsupported(
                    "a set-returning function returning records in the select list",
                ));
            }
            let k = srfs.len();
            *e = A::CompoundIdentifier(vec![
                ast::Ident::new("\u{1}srf"),
                ast::Ident::new(format!("srf{k}")),
            ]);
            srfs.push(srf);
            return Ok(());
        }
        match e {
            // Not into aggregate arguments: PostgreSQL rejects SRFs there.
            A::Function(f) if f.over.is_none() && agg_fn(&func_name(f)).is_none() => {
                if let FunctionArguments::List(l) = &mut f.args {
                    for a in l.args.iter_mut() {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                            self.replace_srfs(x, cols, srfs)?;
                        }
                    }
                }
            }
            A::BinaryOp { left, right, .. } => {
                self.replace_srfs(left, cols, srfs)?;
                self.replace_srfs(right, cols, srfs)?;
            }
            A::UnaryOp { expr, .. } | A::Nested(expr) | A::Cast { expr, .. } => {
                self.replace_srfs(expr, cols, srfs)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Select-list SRFs: when items of `s`'s select list call SRFs, expand `input`
    /// (already filtered by WHERE) row by row in lockstep (the longest SRF sets the row count,
    /// shorter ones give NULLs; an input row for which every SRF is empty disappears) and
    /// return the select with those items replaced by references to the new columns.
    ///
    /// Errors: 0A000 for SRFs in an aggregate query; binding and evaluation errors.
    pub(super) fn expand_tlist_srfs(
        &self,
        s: &ast::Select,
        input: &mut Rel,
    ) -> Result<Option<ast::Select>, PgError> {
        let any = s.projection.iter().any(|p| match p {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                has_srf(e)
            }
            _ => false,
        });
        if !any {
            return Ok(None);
        }
        // PostgreSQL computes window functions before select-list SRFs; this expansion runs
        // first, so the combination is refused rather than answered differently.
        if s.projection
            .iter()
            .any(|p| p.to_string().to_ascii_uppercase().contains(" OVER "))
            || !s.named_window.is_empty()
        {
            return Err(unsupported(
                "set-returning functions together with window functions in the select list",
            ));
        }
        let mut srfs = Vec::new();
        let mut new_sel = s.clone();
        for item in new_sel.projection.iter_mut() {
            let (e, alias) = match item {
                ast::SelectItem::UnnamedExpr(e) => (e, None),
                ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
                _ => continue,
            };
            let before = srfs.len();
            let original = e.clone();
            self.replace_srfs(e, &input.cols, &mut srfs)?;
            if srfs.len() == before {
                continue;
            }
            // The output column keeps the name the original expression gives it.
            let mut top = &original;
            while let A::Nested(x) = top {
                top = x;
            }
            let name = match top {
                A::Function(f) => func_name(f),
                other => super::query::projection_name(other),
            };
            *item = ast::SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: alias.unwrap_or_else(|| ast::Ident::with_quote('"', name)),
            };
        }
        if srfs.is_empty() {
            return Ok(None);
        }
        let mut rows = Vec::new();
        for r in &input.rows {
            let sets = srfs
                .iter()
                .map(|f| self.eval_srf(f, r))
                .collect::<Result<Vec<_>, _>>()?;
            let n = sets.iter().map(Vec::len).max().unwrap_or(0);
            for i in 0..n {
                let mut row = r.clone();
                for set in &sets {
                    row.push(
                        set.get(i)
                            .and_then(|v| v.first().cloned())
                            .unwrap_or(Value::Null),
                    );
                }
                rows.push(row);
            }
        }
        for (k, f) in srfs.iter().enumerate() {
            input.cols.push(ColInfo {
                table: Some("\u{1}srf".into()),
                name: format!("srf{k}"),
                ty: f.cols[0].1.clone(),
                hidden: true,
            });
        }
        input.rows = rows;
        new_sel.selection = None;
        Ok(Some(new_sel))
    }
}
