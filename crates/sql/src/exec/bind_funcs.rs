//! Binding of the expression forms and functions implemented in [`crate::funcs`]: row values and
//! row comparisons, `BETWEEN SYMMETRIC`, bitwise integer operators, jsonpath operators, array
//! slices and `ARRAY(SELECT ...)`, `overlay`, bytea `substring`/`||`, and the function families
//! (numeric `exp`/`ln`/`log`/`power`, `random`, `format`, quoting, hashes, encodings, `array_fill`,
//! `row_to_json`, jsonpath functions).
//!
//! [`Exec::bind_ext_expr`] runs before the binder's own cases and [`Exec::bind_ext_function`]
//! before its function table; both decline (`None` / `Err(args)`) for anything else.

use super::*;

/// PostgreSQL's `MAXDIM`.
const MAX_DIMS: usize = 6;

fn no_func(name: &str, args: &[Expr]) -> PgError {
    let types: Vec<String> = args.iter().map(|a| a.data_type().name()).collect();
    err(
        SqlState::UndefinedFunction,
        format!("function {name}({}) does not exist", types.join(", ")),
    )
}

fn no_op(op: &str, a: &DataType, b: &DataType) -> PgError {
    err(
        SqlState::UndefinedFunction,
        format!("operator does not exist: {} {op} {}", a.name(), b.name()),
    )
}

fn unequal_rows() -> PgError {
    err(
        SqlState::SyntaxError,
        "unequal number of entries in row expressions",
    )
}

/// The fields of a row constructor `(a, b, ...)` / `ROW(...)`, if `e` is one.
fn row_fields(e: &A) -> Option<Vec<A>> {
    match e {
        A::Tuple(items) => Some(items.clone()),
        A::Nested(x) => row_fields(x),
        A::Function(f) if func_name(f) == "row" && f.over.is_none() => match &f.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                    _ => None,
                })
                .collect(),
            FunctionArguments::None => Some(Vec::new()),
            FunctionArguments::Subquery(_) => None,
        },
        _ => None,
    }
}

/// The `RowToJson` call for a row with these key names and fields (`to_jsonb` gives jsonb).
fn row_json(name: &str, names: Vec<String>, fields: Vec<Expr>) -> Result<Expr, PgError> {
    let mut args = vec![Expr::Const(
        Value::Array(names.into_iter().map(Value::Text).collect()),
        DataType::Array(Box::new(DataType::Text)),
    )];
    for f in fields {
        args.push(if f.data_type() == DataType::Unknown {
            coerce(f, &DataType::Text, CastContext::Implicit)?
        } else {
            f
        });
    }
    let t = if name == "to_jsonb" {
        DataType::Jsonb
    } else {
        DataType::Json
    };
    Ok(Expr::Func(Func::RowToJson, args, t))
}

fn is_int(t: &DataType) -> bool {
    matches!(t, DataType::Int2 | DataType::Int4 | DataType::Int8)
}

/// Unknown literals as text, char(n) as text.
fn textish(e: Expr) -> Result<Expr, PgError> {
    match e.data_type() {
        DataType::Unknown => coerce(e, &DataType::Text, CastContext::Implicit),
        DataType::Char(_) => Ok(Expr::Cast(Box::new(e), DataType::Text, CastKind::Implicit)),
        _ => Ok(e),
    }
}

impl<'a> Exec<'a> {
    /// Bind the expression forms handled here; `None` for all others.
    pub(super) fn bind_ext_expr(&self, e: &A, cx: &Cx<'_>) -> Result<Option<Expr>, PgError> {
        use ast::BinaryOperator as B;
        Ok(Some(match e {
            A::BinaryOp { left, op, right } => match op {
                B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                    let bop = match op {
                        B::Eq => BinOp::Eq,
                        B::NotEq => BinOp::Ne,
                        B::Lt => BinOp::Lt,
                        B::LtEq => BinOp::Le,
                        B::Gt => BinOp::Gt,
                        _ => BinOp::Ge,
                    };
                    match (row_fields(left), row_fields(right), right.as_ref()) {
                        (Some(l), Some(r), _) => self.row_compare(bop, &l, &r, cx)?,
                        (Some(l), None, A::Subquery(q)) => {
                            self.row_compare_subquery(bop, &l, q, cx)?
                        }
                        _ => return Ok(None),
                    }
                }
                B::BitwiseAnd
                | B::BitwiseOr
                | B::PGBitwiseXor
                | B::PGBitwiseShiftLeft
                | B::PGBitwiseShiftRight => {
                    let a = self.bind(left, cx)?;
                    let b = self.bind(right, cx)?;
                    self.bitwise(op, a, b)?
                }
                B::PGExp => {
                    // `numeric ^ numeric` when either side is numeric (and neither float);
                    // otherwise the binder's float8 `^`.
                    let a = self.bind(left, cx)?;
                    let b = self.bind(right, cx)?;
                    let is_num = |t: &DataType| matches!(t, DataType::Numeric(_));
                    let is_float = |t: &DataType| matches!(t, DataType::Float4 | DataType::Float8);
                    let (ta, tb) = (a.data_type(), b.data_type());
                    for t in [&ta, &tb] {
                        if !(t.is_numeric() || *t == DataType::Unknown) {
                            return Err(no_op("^", &ta, &tb));
                        }
                    }
                    let t = if (is_num(&ta) || is_num(&tb)) && !is_float(&ta) && !is_float(&tb) {
                        DataType::Numeric(None)
                    } else {
                        DataType::Float8
                    };
                    let a = coerce(a, &t, CastContext::Implicit)?;
                    let b = coerce(b, &t, CastContext::Implicit)?;
                    Expr::Func(Func::Power, vec![a, b], t)
                }
                B::AtQuestion | B::AtAt => {
                    let a = self.bind(left, cx)?;
                    let b = self.bind(right, cx)?;
                    let f = if *op == B::AtQuestion {
                        Func::JsonPathExists
                    } else {
                        Func::JsonPathMatch
                    };
                    let sym = op.to_string();
                    self.jsonpath_call(f, a, b, &sym)?
                }
                _ => return Ok(None),
            },
            A::UnaryOp {
                op: ast::UnaryOperator::BitwiseNot,
                expr,
            } => {
                let x = self.bind(expr, cx)?;
                let x = match x.data_type() {
                    DataType::Unknown => coerce(x, &DataType::Int4, CastContext::Implicit)?,
                    t if is_int(&t) => x,
                    t => {
                        return Err(err(
                            SqlState::UndefinedFunction,
                            format!("operator does not exist: ~ {}", t.name()),
                        ))
                    }
                };
                let t = x.data_type();
                Expr::Func(Func::BitNot, vec![x], t)
            }
            A::IsNull(x) | A::IsNotNull(x) => {
                let Some(fields) = row_fields(x) else {
                    return Ok(None);
                };
                let negated = matches!(e, A::IsNotNull(_));
                let items = fields
                    .iter()
                    .map(|f| Ok(Expr::IsNull(Box::new(self.bind(f, cx)?), negated)))
                    .collect::<Result<Vec<_>, PgError>>()?;
                Expr::And(items)
            }
            A::IsDistinctFrom(l, r) | A::IsNotDistinctFrom(l, r) => {
                let (Some(l), Some(r)) = (row_fields(l), row_fields(r)) else {
                    return Ok(None);
                };
                if l.len() != r.len() {
                    return Err(unequal_rows());
                }
                let not = matches!(e, A::IsNotDistinctFrom(..));
                let mut items = Vec::new();
                for (a, b) in l.iter().zip(&r) {
                    let a = self.bind(a, cx)?;
                    let b = self.bind(b, cx)?;
                    let (x, y) = match self.binary_expr(BinOp::Eq, a, b)? {
                        Expr::Binary(_, x, y, _) => (*x, *y),
                        _ => return Err(unsupported("this row comparison")),
                    };
                    items.push(Expr::IsDistinct(Box::new(x), Box::new(y), not));
                }
                // Distinct when any field is; not distinct when every field is not.
                if not {
                    Expr::And(items)
                } else {
                    Expr::Or(items)
                }
            }
            A::In {
                expr,
                target,
                negated,
                ..
            } => {
                let Some(fields) = row_fields(expr) else {
                    return Ok(None);
                };
                self.row_in(&fields, target, *negated, cx)?
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let A::Function(f) = low.as_ref() else {
                    return Ok(None);
                };
                if func_name(f) != crate::parser::BETWEEN_SYMMETRIC {
                    return Ok(None);
                }
                let lo = match &f.args {
                    FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => x.clone(),
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                };
                let x = self.bind(expr, cx)?;
                let a = self.bind(&lo, cx)?;
                let b = self.bind(high, cx)?;
                let one = |lo: Expr, hi: Expr| -> Result<Expr, PgError> {
                    Ok(Expr::And(vec![
                        self.binary_expr(BinOp::Ge, x.clone(), lo)?,
                        self.binary_expr(BinOp::Le, x.clone(), hi)?,
                    ]))
                };
                let both = Expr::Or(vec![one(a.clone(), b.clone())?, one(b, a)?]);
                if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                }
            }
            A::Tuple(items) => {
                let fields = items
                    .iter()
                    .map(|x| self.bind(x, cx))
                    .collect::<Result<Vec<_>, _>>()?;
                Expr::Func(Func::RowValue, fields, DataType::Text)
            }
            A::Function(f) if f.over.is_none() => {
                let name = func_name(f);
                if let Some(e) = self.whole_row_json(f, &name, cx)? {
                    return Ok(Some(e));
                }
                match (&f.args, name.as_str()) {
                    (FunctionArguments::Subquery(q), "array") => {
                        let rel = self.query(q)?;
                        if rel.cols.len() != 1 {
                            return Err(err(
                                SqlState::SyntaxError,
                                "subquery must return only one column",
                            ));
                        }
                        let mut ty = out_type(&rel.cols[0].ty);
                        if ty == DataType::Unknown {
                            ty = DataType::Text;
                        }
                        let vals = rel
                            .rows
                            .into_iter()
                            .map(|mut r| r.pop().unwrap_or(Value::Null))
                            .collect();
                        Expr::Const(Value::Array(vals), DataType::Array(Box::new(ty)))
                    }
                    (_, "row") => {
                        let Some(fields) = row_fields(e) else {
                            return Ok(None);
                        };
                        let fields = fields
                            .iter()
                            .map(|x| self.bind(x, cx))
                            .collect::<Result<Vec<_>, _>>()?;
                        Expr::Func(Func::RowValue, fields, DataType::Text)
                    }
                    _ => return Ok(None),
                }
            }
            A::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                let s = self.bind(expr, cx)?;
                let r = self.bind(overlay_what, cx)?;
                let from = self.bind(overlay_from, cx)?;
                if s.data_type() == DataType::Bytea {
                    let r = match r.data_type() {
                        DataType::Bytea => r,
                        DataType::Unknown => coerce(r, &DataType::Bytea, CastContext::Implicit)?,
                        _ => return Err(no_func("overlay", &[s, r])),
                    };
                    let mut args =
                        vec![s, r, coerce(from, &DataType::Int4, CastContext::Implicit)?];
                    if let Some(n) = overlay_for {
                        args.push(coerce(
                            self.bind(n, cx)?,
                            &DataType::Int4,
                            CastContext::Implicit,
                        )?);
                    }
                    return Ok(Some(Expr::Func(Func::Overlay, args, DataType::Bytea)));
                }
                let mut args = vec![
                    textish(s)?,
                    textish(r)?,
                    coerce(from, &DataType::Int4, CastContext::Implicit)?,
                ];
                if let Some(n) = overlay_for {
                    args.push(coerce(
                        self.bind(n, cx)?,
                        &DataType::Int4,
                        CastContext::Implicit,
                    )?);
                }
                for a in &args[..2] {
                    if !matches!(a.data_type(), DataType::Text | DataType::Varchar(_)) {
                        return Err(no_func("overlay", &args));
                    }
                }
                Expr::Func(Func::Overlay, args, DataType::Text)
            }
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                if has_subquery(expr) {
                    return Ok(None);
                }
                let x = self.bind(expr, cx)?;
                if x.data_type() != DataType::Bytea {
                    return Ok(None);
                }
                let mut args = vec![x];
                args.push(match substring_from {
                    Some(f) => coerce(self.bind(f, cx)?, &DataType::Int4, CastContext::Implicit)?,
                    None => Expr::Const(Value::Int4(1), DataType::Int4),
                });
                if let Some(n) = substring_for {
                    args.push(coerce(
                        self.bind(n, cx)?,
                        &DataType::Int4,
                        CastContext::Implicit,
                    )?);
                }
                Expr::Func(Func::ByteaSubstr, args, DataType::Bytea)
            }
            A::CompoundFieldAccess { root, access_chain } => {
                let subs = access_chain
                    .iter()
                    .filter(|a| matches!(a, ast::AccessExpr::Subscript(_)))
                    .count();
                let slices = access_chain
                    .iter()
                    .any(|a| matches!(a, ast::AccessExpr::Subscript(ast::Subscript::Slice { .. })));
                if subs > MAX_DIMS {
                    return Err(err(
                        SqlState::ProgramLimitExceeded,
                        format!(
                            "number of array dimensions ({subs}) exceeds the maximum allowed ({MAX_DIMS})"
                        ),
                    ));
                }
                if !slices || subs != access_chain.len() {
                    return Ok(None);
                }
                let arr = self.bind(root, cx)?;
                let at = arr.data_type();
                if !matches!(at, DataType::Array(_)) {
                    return Err(err(
                        SqlState::DatatypeMismatch,
                        format!(
                            "cannot subscript type {} because it does not support subscripting",
                            at.name()
                        ),
                    ));
                }
                let bound = |b: &Option<A>, dflt: i32| -> Result<Expr, PgError> {
                    match b {
                        Some(x) => {
                            coerce(self.bind(x, cx)?, &DataType::Int4, CastContext::Implicit)
                        }
                        None => Ok(Expr::Const(Value::Int4(dflt), DataType::Int4)),
                    }
                };
                let (lo, hi) = match &access_chain[..] {
                    [ast::AccessExpr::Subscript(ast::Subscript::Slice {
                        lower_bound,
                        upper_bound,
                        stride: None,
                    })] => (bound(lower_bound, 1)?, bound(upper_bound, i32::MAX)?),
                    [ast::AccessExpr::Subscript(ast::Subscript::Slice {
                        stride: Some(_), ..
                    })] => return Err(unsupported("array slices with a stride")),
                    // More subscripts than the (one-dimensional) array has dimensions: an empty
                    // slice, as PostgreSQL's array_get_slice.
                    _ => (
                        Expr::Const(Value::Int4(1), DataType::Int4),
                        Expr::Const(Value::Int4(0), DataType::Int4),
                    ),
                };
                Expr::Func(Func::ArraySlice, vec![arr, lo, hi], at)
            }
            _ => return Ok(None),
        }))
    }

    /// `row_to_json(t)` / `to_json(t)` / `to_jsonb(t)` (also `t.*`) of a whole-row reference to a
    /// FROM item `t`: an object keyed by its column names. `None` when the argument is not one
    /// (a column of that name wins, as in PostgreSQL).
    fn whole_row_json(
        &self,
        f: &ast::Function,
        name: &str,
        cx: &Cx<'_>,
    ) -> Result<Option<Expr>, PgError> {
        if !matches!(name, "row_to_json" | "to_json" | "to_jsonb") || cx.agg.is_some() {
            return Ok(None);
        }
        let FunctionArguments::List(l) = &f.args else {
            return Ok(None);
        };
        let [arg] = l.args.as_slice() else {
            return Ok(None);
        };
        let table = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(A::Identifier(id))) => {
                let t = normalize_ident(id);
                if cx.cols.iter().any(|c| !c.hidden && c.name == t) {
                    return Ok(None);
                }
                t
            }
            FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(obj)) => {
                match obj.0.last().and_then(|p| p.as_ident()) {
                    Some(id) => normalize_ident(id),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let cols: Vec<(usize, &ColInfo)> = cx
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.hidden && c.table.as_deref() == Some(table.as_str()))
            .collect();
        if cols.is_empty() {
            return Ok(None);
        }
        let names = cols.iter().map(|(_, c)| c.name.clone()).collect();
        let fields = cols
            .iter()
            .map(|(i, c)| Expr::Column(*i, c.ty.clone()))
            .collect();
        row_json(name, names, fields).map(Some)
    }

    /// `(a1, a2, ...) op (b1, b2, ...)`: `=` is the AND of the pairs, `<>` their OR, ordering
    /// operators compare left to right (PostgreSQL's row comparison). Errors: 42601 for rows of
    /// different lengths.
    fn row_compare(&self, op: BinOp, l: &[A], r: &[A], cx: &Cx<'_>) -> Result<Expr, PgError> {
        if l.len() != r.len() {
            return Err(unequal_rows());
        }
        let mut pairs = Vec::new();
        for (a, b) in l.iter().zip(r) {
            pairs.push((self.bind(a, cx)?, self.bind(b, cx)?));
        }
        self.row_compare_bound(op, pairs)
    }

    /// `(a, b) op (SELECT x, y ...)`: the subquery's single row (NULLs when it returns none).
    /// Errors: 42601 for a column count other than the row's, 21000 for several rows.
    fn row_compare_subquery(
        &self,
        op: BinOp,
        l: &[A],
        q: &ast::Query,
        cx: &Cx<'_>,
    ) -> Result<Expr, PgError> {
        let xs = l
            .iter()
            .map(|f| self.bind(f, cx))
            .collect::<Result<Vec<_>, _>>()?;
        let rel = self.query(q)?;
        if rel.cols.len() != xs.len() {
            return Err(err(
                SqlState::SyntaxError,
                if rel.cols.len() > xs.len() {
                    "subquery has too many columns"
                } else {
                    "subquery has too few columns"
                },
            ));
        }
        if rel.rows.len() > 1 {
            return Err(err(
                SqlState::CardinalityViolation,
                "more than one row returned by a subquery used as an expression",
            ));
        }
        let row = rel
            .rows
            .into_iter()
            .next()
            .unwrap_or_else(|| vec![Value::Null; xs.len()]);
        let pairs = xs
            .into_iter()
            .zip(
                row.into_iter()
                    .zip(&rel.cols)
                    .map(|(v, c)| Expr::Const(v, out_type(&c.ty))),
            )
            .collect();
        self.row_compare_bound(op, pairs)
    }

    fn row_compare_bound(&self, op: BinOp, pairs: Vec<(Expr, Expr)>) -> Result<Expr, PgError> {
        match op {
            BinOp::Eq | BinOp::Ne => {
                let items = pairs
                    .into_iter()
                    .map(|(a, b)| self.binary_expr(op, a, b))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == BinOp::Eq {
                    Expr::And(items)
                } else {
                    Expr::Or(items)
                })
            }
            _ => {
                let strict = match op {
                    BinOp::Le => BinOp::Lt,
                    BinOp::Ge => BinOp::Gt,
                    o => o,
                };
                let mut acc: Option<Expr> = None;
                for (a, b) in pairs.into_iter().rev() {
                    acc = Some(match acc {
                        None => self.binary_expr(op, a, b)?,
                        Some(rest) => Expr::Or(vec![
                            self.binary_expr(strict, a.clone(), b.clone())?,
                            Expr::And(vec![self.binary_expr(BinOp::Eq, a, b)?, rest]),
                        ]),
                    });
                }
                Ok(acc.unwrap_or(Expr::Const(Value::Bool(true), DataType::Bool)))
            }
        }
    }

    /// `(a, b) [NOT] IN (SELECT x, y ...)` / `(a, b) IN ((1, 2), ...)`.
    fn row_in(
        &self,
        fields: &[A],
        target: &ast::InTarget,
        negated: bool,
        cx: &Cx<'_>,
    ) -> Result<Expr, PgError> {
        let xs = fields
            .iter()
            .map(|f| self.bind(f, cx))
            .collect::<Result<Vec<_>, _>>()?;
        let mut eqs = Vec::new();
        match target {
            ast::InTarget::Subquery(q) => {
                let rel = self.query(q)?;
                if rel.cols.len() != xs.len() {
                    return Err(err(
                        SqlState::SyntaxError,
                        if rel.cols.len() > xs.len() {
                            "subquery has too many columns"
                        } else {
                            "subquery has too few columns"
                        },
                    ));
                }
                let types: Vec<DataType> = rel.cols.iter().map(|c| out_type(&c.ty)).collect();
                if rel.rows.is_empty() {
                    // Still type-check the comparisons.
                    let pairs = xs
                        .iter()
                        .cloned()
                        .zip(types.iter().map(|t| Expr::Const(Value::Null, t.clone())))
                        .collect();
                    self.row_compare_bound(BinOp::Eq, pairs)?;
                }
                for row in rel.rows {
                    let pairs = xs
                        .iter()
                        .cloned()
                        .zip(
                            row.into_iter()
                                .zip(&types)
                                .map(|(v, t)| Expr::Const(v, t.clone())),
                        )
                        .collect();
                    eqs.push(self.row_compare_bound(BinOp::Eq, pairs)?);
                }
            }
            ast::InTarget::List(list) => {
                for item in list {
                    let Some(ys) = row_fields(item) else {
                        return Err(unsupported("IN with a row and a non-row item"));
                    };
                    if ys.len() != xs.len() {
                        return Err(unequal_rows());
                    }
                    let mut pairs = Vec::new();
                    for (x, y) in xs.iter().zip(&ys) {
                        pairs.push((x.clone(), self.bind(y, cx)?));
                    }
                    eqs.push(self.row_compare_bound(BinOp::Eq, pairs)?);
                }
            }
            _ => return Err(unsupported("this IN form")),
        }
        let probe = Expr::Const(Value::Null, DataType::Bool);
        Ok(Expr::InList(Box::new(probe), eqs, negated))
    }

    fn bitwise(&self, op: &ast::BinaryOperator, a: Expr, b: Expr) -> Result<Expr, PgError> {
        use ast::BinaryOperator as B;
        let sym = op.to_string();
        let (ta, tb) = (a.data_type(), b.data_type());
        if [&ta, &tb]
            .iter()
            .any(|t| matches!(t, DataType::Inet | DataType::Cidr))
        {
            return self.inet_op(op, a, b);
        }
        let int_or_unknown = |t: &DataType| is_int(t) || *t == DataType::Unknown;
        if !int_or_unknown(&ta) || !int_or_unknown(&tb) {
            return Err(no_op(&sym, &ta, &tb));
        }
        let shift = matches!(op, B::PGBitwiseShiftLeft | B::PGBitwiseShiftRight);
        if shift {
            let a = if ta == DataType::Unknown {
                coerce(a, &DataType::Int4, CastContext::Implicit)?
            } else {
                a
            };
            let b = coerce(b, &DataType::Int4, CastContext::Implicit)?;
            let t = a.data_type();
            let f = if *op == B::PGBitwiseShiftLeft {
                Func::ShiftLeft
            } else {
                Func::ShiftRight
            };
            return Ok(Expr::Func(f, vec![a, b], t));
        }
        let t = match (&ta, &tb) {
            (DataType::Unknown, DataType::Unknown) => DataType::Int4,
            (DataType::Unknown, t) | (t, DataType::Unknown) => t.clone(),
            _ => promote(&ta, &tb).ok_or_else(|| no_op(&sym, &ta, &tb))?,
        };
        let a = coerce(a, &t, CastContext::Implicit)?;
        let b = coerce(b, &t, CastContext::Implicit)?;
        let f = match op {
            B::BitwiseAnd => Func::BitAnd,
            B::BitwiseOr => Func::BitOr,
            _ => Func::BitXor,
        };
        Ok(Expr::Func(f, vec![a, b], t))
    }

    fn jsonpath_call(&self, f: Func, a: Expr, b: Expr, name: &str) -> Result<Expr, PgError> {
        let a = match a.data_type() {
            DataType::Jsonb => a,
            DataType::Unknown => coerce(a, &DataType::Jsonb, CastContext::Implicit)?,
            _ => return Err(no_func(name, &[a, b])),
        };
        let b = match b.data_type() {
            DataType::Unknown | DataType::Text | DataType::Varchar(_) => textish(b)?,
            _ => return Err(no_func(name, &[a, b])),
        };
        let t = match f {
            Func::JsonPathQueryArray | Func::JsonPathQueryFirst => DataType::Jsonb,
            _ => DataType::Bool,
        };
        Ok(Expr::Func(f, vec![a, b], t))
    }

    /// Bind a call of one of the functions implemented in [`crate::funcs`]; gives the arguments
    /// back (`Ok(Err(args))`) for any other function or overload.
    pub(super) fn bind_ext_function(
        &self,
        name: &str,
        mut args: Vec<Expr>,
    ) -> Result<Result<Expr, Vec<Expr>>, PgError> {
        let n = args.len();
        let t0 = args.first().map(Expr::data_type);
        let numeric0 = matches!(t0, Some(DataType::Numeric(_)));
        let num = |e: Expr| -> Result<Expr, PgError> {
            match e.data_type() {
                DataType::Float4 | DataType::Float8 => Err(no_func(name, &[e])),
                _ => coerce(e, &DataType::Numeric(None), CastContext::Implicit)
                    .map_err(|_| no_func(name, &[])),
            }
        };
        let e = match (name, n) {
            ("exp" | "ln" | "log" | "log10", 1) if numeric0 => {
                let f = match name {
                    "exp" => Func::Exp,
                    "ln" => Func::Ln,
                    _ => Func::Log10,
                };
                Expr::Func(f, args, DataType::Numeric(None))
            }
            ("log", 2) => {
                let v = args.into_iter().map(num).collect::<Result<Vec<_>, _>>()?;
                Expr::Func(Func::LogBase, v, DataType::Numeric(None))
            }
            ("power" | "pow", 2)
                if args
                    .iter()
                    .any(|a| matches!(a.data_type(), DataType::Numeric(_)))
                    && !args
                        .iter()
                        .any(|a| matches!(a.data_type(), DataType::Float4 | DataType::Float8)) =>
            {
                let v = args.into_iter().map(num).collect::<Result<Vec<_>, _>>()?;
                Expr::Func(Func::Power, v, DataType::Numeric(None))
            }
            ("pg_typeof", 1) if matches!(args[0], Expr::Func(Func::RowValue, ..)) => {
                Expr::Const(Value::Text("record".into()), DataType::Text)
            }
            ("random", 0) => Expr::Func(Func::Random, args, DataType::Float8),
            ("gen_random_uuid", 0) => Expr::Func(Func::GenRandomUuid, args, DataType::Uuid),
            ("setseed", 1) => {
                let x = coerce(args.remove(0), &DataType::Float8, CastContext::Implicit)?;
                Expr::Func(Func::SetSeed, vec![x], DataType::Text)
            }
            ("format", _) if n >= 1 => {
                let v = args
                    .into_iter()
                    .map(textish)
                    .collect::<Result<Vec<_>, _>>()?;
                if !matches!(v[0].data_type(), DataType::Text | DataType::Varchar(_)) {
                    return Err(no_func(name, &v));
                }
                Expr::Func(Func::Format, v, DataType::Text)
            }
            ("quote_ident", 1) => {
                let x = textish(args.remove(0))?;
                if !matches!(x.data_type(), DataType::Text | DataType::Varchar(_)) {
                    return Err(no_func(name, &[x]));
                }
                Expr::Func(Func::QuoteIdent, vec![x], DataType::Text)
            }
            ("quote_literal" | "quote_nullable", 1) => {
                let f = if name == "quote_literal" {
                    Func::QuoteLiteral
                } else {
                    Func::QuoteNullable
                };
                Expr::Func(f, vec![textish(args.remove(0))?], DataType::Text)
            }
            ("md5", 1) => {
                let x = textish(args.remove(0))?;
                if !matches!(
                    x.data_type(),
                    DataType::Text | DataType::Varchar(_) | DataType::Bytea
                ) {
                    return Err(no_func(name, &[x]));
                }
                Expr::Func(Func::Md5, vec![x], DataType::Text)
            }
            ("sha224" | "sha256" | "sha384" | "sha512", 1) => {
                let x = args.remove(0);
                let x = match x.data_type() {
                    DataType::Bytea => x,
                    DataType::Unknown => coerce(x, &DataType::Bytea, CastContext::Implicit)?,
                    _ => return Err(no_func(name, &[x])),
                };
                let f = match name {
                    "sha224" => Func::Sha224,
                    "sha256" => Func::Sha256,
                    "sha384" => Func::Sha384,
                    _ => Func::Sha512,
                };
                Expr::Func(f, vec![x], DataType::Bytea)
            }
            ("array_to_json", 1) => {
                let x = args.remove(0);
                if !matches!(x.data_type(), DataType::Array(_)) {
                    return Err(no_func(name, &[x]));
                }
                Expr::Func(Func::ArrayToJson, vec![x], DataType::Json)
            }
            ("trim_array", 2) => {
                let mut it = args.into_iter();
                let (Some(a), Some(k)) = (it.next(), it.next()) else {
                    return Err(no_func(name, &[]));
                };
                let at = a.data_type();
                if !matches!(at, DataType::Array(_)) {
                    return Err(no_func(name, &[a, k]));
                }
                let k = coerce(k, &DataType::Int4, CastContext::Implicit)?;
                Expr::Func(Func::TrimArray, vec![a, k], at)
            }
            (
                "jsonb_extract_path"
                | "jsonb_extract_path_text"
                | "json_extract_path"
                | "json_extract_path_text",
                _,
            ) if n >= 1 => {
                let mut it = args.into_iter();
                let doc = it.next().ok_or_else(|| no_func(name, &[]))?;
                let want = if name.starts_with("jsonb") {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let doc = match doc.data_type() {
                    t if t == want => doc,
                    DataType::Unknown => coerce(doc, &want, CastContext::Implicit)?,
                    _ => return Err(no_func(name, &[doc])),
                };
                let path = it.map(textish).collect::<Result<Vec<_>, _>>()?;
                if let Some(bad) = path
                    .iter()
                    .find(|p| !matches!(p.data_type(), DataType::Text | DataType::Varchar(_)))
                {
                    return Err(no_func(name, std::slice::from_ref(bad)));
                }
                let path = Expr::Array(path, DataType::Array(Box::new(DataType::Text)));
                if name.ends_with("_text") {
                    Expr::Func(Func::JsonPathText, vec![doc, path], DataType::Text)
                } else {
                    Expr::Func(Func::JsonPath, vec![doc, path], want)
                }
            }
            ("convert_to", 2) => {
                let v = args
                    .into_iter()
                    .map(textish)
                    .collect::<Result<Vec<_>, _>>()?;
                Expr::Func(Func::ConvertTo, v, DataType::Bytea)
            }
            ("convert_from", 2) => {
                let mut it = args.into_iter();
                let (Some(b), Some(enc)) = (it.next(), it.next()) else {
                    return Err(no_func(name, &[]));
                };
                let b = match b.data_type() {
                    DataType::Bytea => b,
                    DataType::Unknown => coerce(b, &DataType::Bytea, CastContext::Implicit)?,
                    _ => return Err(no_func(name, &[b, enc])),
                };
                Expr::Func(Func::ConvertFrom, vec![b, textish(enc)?], DataType::Text)
            }
            ("pg_column_size", 1) => {
                // A column's value is a stored datum (short varlena headers); anything else a
                // computed one.
                let x = textish(args.remove(0))?;
                let stored = matches!(x, Expr::Column(..));
                let flag = Expr::Const(Value::Bool(stored), DataType::Bool);
                Expr::Func(Func::PgColumnSize, vec![x, flag], DataType::Int4)
            }
            ("substr" | "substring", 2 | 3) if t0 == Some(DataType::Bytea) => {
                let mut it = args.into_iter();
                let mut v = vec![it.next().ok_or_else(|| no_func(name, &[]))?];
                for x in it {
                    v.push(coerce(x, &DataType::Int4, CastContext::Implicit)?);
                }
                Expr::Func(Func::ByteaSubstr, v, DataType::Bytea)
            }
            ("array_fill", 2 | 3) => {
                let mut it = args.into_iter();
                let v = it.next().ok_or_else(|| no_func(name, &[]))?;
                let v = textish(v)?;
                let et = v.data_type();
                if matches!(et, DataType::Array(_)) {
                    return Err(unsupported("multidimensional arrays"));
                }
                let int_arr = DataType::Array(Box::new(DataType::Int4));
                let mut out = vec![v];
                for x in it {
                    out.push(coerce(x, &int_arr, CastContext::Implicit)?);
                }
                Expr::Func(Func::ArrayFill, out, DataType::Array(Box::new(et)))
            }
            (crate::parser::ARRAY_SET, 3) => {
                let mut it = args.into_iter();
                let (Some(a), Some(i), Some(v)) = (it.next(), it.next(), it.next()) else {
                    return Err(no_func(name, &[]));
                };
                let at = a.data_type();
                let DataType::Array(et) = at.clone() else {
                    return Err(err(
                        SqlState::DatatypeMismatch,
                        format!(
                            "cannot subscript type {} because it does not support subscripting",
                            at.name()
                        ),
                    ));
                };
                let i = coerce(i, &DataType::Int4, CastContext::Implicit)?;
                let v = coerce(v, &et, CastContext::Assignment)?;
                Expr::Func(Func::ArraySetElem, vec![a, i, v], at)
            }
            ("row_to_json" | "to_json" | "to_jsonb", 1) => match args.remove(0) {
                Expr::Func(Func::RowValue, fields, _) => {
                    let names = (1..=fields.len()).map(|k| format!("f{k}")).collect();
                    row_json(name, names, fields)?
                }
                other if name == "row_to_json" => {
                    return Err(no_func(name, &[other]));
                }
                other => return Ok(Err(vec![other])),
            },
            (
                "jsonb_path_exists"
                | "jsonb_path_query_array"
                | "jsonb_path_match"
                | "jsonb_path_query_first",
                2,
            ) => {
                let f = match name {
                    "jsonb_path_exists" => Func::JsonPathExists,
                    "jsonb_path_match" => Func::JsonPathMatch,
                    "jsonb_path_query_first" => Func::JsonPathQueryFirst,
                    _ => Func::JsonPathQueryArray,
                };
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(no_func(name, &[]));
                };
                self.jsonpath_call(f, a, b, name)?
            }
            _ => return Ok(Err(args)),
        };
        Ok(Ok(e))
    }

    /// The arguments of a call of one of `crate::funcs::agg`'s aggregates (an ordered-set
    /// aggregate's `WITHIN GROUP` sort key first, then its direct arguments), coerced to the
    /// overload's types, and the result type. Errors: 42809 for a missing or misplaced `WITHIN
    /// GROUP`, 42883 when there is no such overload.
    pub(super) fn bind_ext_agg_args(
        &self,
        f: &ast::Function,
        agg: crate::funcs::agg::ExtAgg,
        args: Vec<Expr>,
        inner: &Cx<'_>,
    ) -> Result<(Vec<Expr>, DataType), PgError> {
        let name = agg.name();
        let mut all = Vec::new();
        if agg.ordered_set() {
            if f.within_group.len() != 1 {
                return Err(err(
                    SqlState::WrongObjectType,
                    format!("WITHIN GROUP is required for ordered-set aggregate {name}"),
                ));
            }
            all.push(self.bind(&f.within_group[0].expr, inner)?);
        } else if !f.within_group.is_empty() {
            return Err(err(
                SqlState::WrongObjectType,
                format!("{name} is not an ordered-set aggregate, so it cannot have WITHIN GROUP"),
            ));
        }
        all.extend(args);
        let types: Vec<DataType> = all.iter().map(Expr::data_type).collect();
        let (targets, ty) = agg.signature(&types)?;
        let mut out = Vec::new();
        for (e, t) in all.into_iter().zip(targets) {
            out.push(match t {
                Some(t) if e.data_type() != t => coerce(e, &t, CastContext::Implicit)?,
                _ => e,
            });
        }
        if agg.ordered_set() {
            // The sort direction, as a last constant argument.
            let desc = f.within_group[0].options.sort == Some(ast::OrderBySort::Desc);
            out.push(Expr::Const(Value::Bool(desc), DataType::Bool));
        }
        Ok((out, ty))
    }

    /// `bytea || bytea` (an unknown literal on either side is bytea); `None` when neither side is
    /// bytea.
    pub(super) fn bytea_concat(
        &self,
        a: Expr,
        b: Expr,
    ) -> Result<Result<Expr, (Expr, Expr)>, PgError> {
        let (ta, tb) = (a.data_type(), b.data_type());
        let bytea_or_unknown = |t: &DataType| matches!(t, DataType::Bytea | DataType::Unknown);
        if (ta != DataType::Bytea && tb != DataType::Bytea)
            || !bytea_or_unknown(&ta)
            || !bytea_or_unknown(&tb)
        {
            return Ok(Err((a, b)));
        }
        let a = coerce(a, &DataType::Bytea, CastContext::Implicit)?;
        let b = coerce(b, &DataType::Bytea, CastContext::Implicit)?;
        Ok(Ok(Expr::Func(
            Func::ByteaConcat,
            vec![a, b],
            DataType::Bytea,
        )))
    }
}
