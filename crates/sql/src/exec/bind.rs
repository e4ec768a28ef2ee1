//! Binding sqlparser expressions into typed [`Expr`] trees with PostgreSQL's typing rules.

use super::*;

fn no_op(op: &str, a: &DataType, b: &DataType) -> PgError {
    err(
        SqlState::UndefinedFunction,
        format!("operator does not exist: {} {op} {}", a.name(), b.name()),
    )
}

fn no_func(name: &str, args: &[Expr]) -> PgError {
    let types: Vec<String> = args.iter().map(|a| a.data_type().name()).collect();
    err(
        SqlState::UndefinedFunction,
        format!("function {name}({}) does not exist", types.join(", ")),
    )
}

fn is_datetime(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date
            | DataType::Timestamp
            | DataType::Timestamptz
            | DataType::Interval
            | DataType::Time
            | DataType::Timetz
    )
}

fn number_literal(s: &str) -> Result<Expr, PgError> {
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(v) = s.parse::<i64>() {
            return Ok(match i32::try_from(v) {
                Ok(x) => Expr::Const(Value::Int4(x), DataType::Int4),
                Err(_) => Expr::Const(Value::Int8(v), DataType::Int8),
            });
        }
    }
    Ok(Expr::Const(
        Value::Numeric(Numeric::parse(s)?),
        DataType::Numeric(None),
    ))
}

/// Text-function argument: strings stay (char(n) loses its padding), unknown literals become
/// text, anything else has no such function (42883).
fn text_arg(e: Expr, fname: &str) -> Result<Expr, PgError> {
    let t = e.data_type();
    match t {
        DataType::Text | DataType::Varchar(_) => Ok(e),
        DataType::Char(_) => Ok(Expr::Cast(Box::new(e), DataType::Text, CastKind::Implicit)),
        DataType::Unknown => coerce(e, &DataType::Text, CastContext::Implicit),
        _ => Err(no_func(fname, &[e])),
    }
}

fn int_arg(e: Expr, fname: &str) -> Result<Expr, PgError> {
    match e.data_type() {
        DataType::Int2 | DataType::Int4 | DataType::Unknown => {
            coerce(e, &DataType::Int4, CastContext::Implicit)
        }
        _ => Err(no_func(fname, &[e])),
    }
}

/// `args` as the text arguments of `fname`.
fn text_args(args: Vec<Expr>, fname: &str) -> Result<Vec<Expr>, PgError> {
    args.into_iter().map(|a| text_arg(a, fname)).collect()
}

/// `args` as the text arguments of `fname`, but for an integer one at position `int_at`.
fn text_args_int_at(args: Vec<Expr>, int_at: usize, fname: &str) -> Result<Vec<Expr>, PgError> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == int_at {
                int_arg(a, fname)
            } else {
                text_arg(a, fname)
            }
        })
        .collect()
}

fn num_arg(e: Expr, fname: &str) -> Result<Expr, PgError> {
    match e.data_type() {
        DataType::Unknown => coerce(e, &DataType::Float8, CastContext::Implicit),
        t if num_rank(&t).is_some() => Ok(e),
        _ => Err(no_func(fname, &[e])),
    }
}

fn explicit_cast(e: Expr, ty: DataType, tz: &TimeZone) -> Result<Expr, PgError> {
    let from = e.data_type();
    match e {
        Expr::Const(v, DataType::Unknown) => {
            let v = cast_value(v, &DataType::Unknown, &ty, CastContext::Explicit, tz)?;
            Ok(Expr::Const(v, ty))
        }
        Expr::Const(Value::Null, _) => Ok(Expr::Const(Value::Null, ty)),
        Expr::Const(Value::Array(v), DataType::Array(_))
            if v.is_empty() && matches!(ty, DataType::Array(_)) =>
        {
            Ok(Expr::Const(Value::Array(v), ty))
        }
        e if from == ty => Ok(e),
        e => {
            if can_cast(&from, &ty, CastContext::Explicit) {
                Ok(Expr::Cast(Box::new(e), ty, CastKind::Explicit))
            } else {
                Err(err(
                    SqlState::CannotCoerce,
                    format!("cannot cast type {} to {}", from.name(), ty.name()),
                ))
            }
        }
    }
}

impl<'a> Exec<'a> {
    /// Bind SQL expression text (a stored DEFAULT or CHECK) over `scope`.
    pub(super) fn bind_text(&self, sql: &str, scope: &[ColInfo]) -> Result<Expr, PgError> {
        let stmts = crate::parser::parse(&format!("SELECT {sql}"))?;
        let e = match stmts.first() {
            Some(Statement::Sql(ast::Statement::Query(q))) => match q.body.as_ref() {
                ast::SetExpr::Select(s) => match s.projection.first() {
                    Some(ast::SelectItem::UnnamedExpr(e)) => e.clone(),
                    _ => {
                        None.ok_or_else(|| err(SqlState::InternalError, "bad stored expression"))?
                    }
                },
                _ => return Err(err(SqlState::InternalError, "bad stored expression")),
            },
            _ => return Err(err(SqlState::InternalError, "bad stored expression")),
        };
        self.bind(&e, &Cx::plain(scope))
    }

    /// Bind a select list (RETURNING) over `scope`.
    pub(super) fn bind_projection(
        &self,
        items: &[ast::SelectItem],
        scope: &[ColInfo],
        agg: Option<&RefCell<AggCx>>,
    ) -> Result<(Vec<Expr>, Vec<String>), PgError> {
        let cx = Cx {
            cols: scope,
            agg,
            win: None,
            clause: "RETURNING",
        };
        self.bind_projection_cx(items, &cx)
    }

    pub(super) fn bind_projection_cx(
        &self,
        items: &[ast::SelectItem],
        cx: &Cx<'_>,
    ) -> Result<(Vec<Expr>, Vec<String>), PgError> {
        let mut exprs = Vec::new();
        let mut names = Vec::new();
        for item in items {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    exprs.push(self.bind(e, cx)?);
                    names.push(query::projection_name(e));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    exprs.push(self.bind(expr, cx)?);
                    names.push(normalize_ident(alias));
                }
                ast::SelectItem::Wildcard(_) => {
                    if cx.cols.is_empty() {
                        return Err(err(
                            SqlState::SyntaxError,
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    for (i, c) in cx.cols.iter().enumerate() {
                        if !c.hidden {
                            exprs.push(self.col_ref(i, cx)?);
                            names.push(c.name.clone());
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let t = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                            object_name(n).last().cloned().unwrap_or_default()
                        }
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let mut any = false;
                    for (i, c) in cx.cols.iter().enumerate() {
                        if c.table.as_deref() == Some(t.as_str()) {
                            any = true;
                            exprs.push(self.col_ref(i, cx)?);
                            names.push(c.name.clone());
                        }
                    }
                    if !any {
                        return Err(err(
                            SqlState::UndefinedTable,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                }
                _ => return Err(unsupported("this select item")),
            }
        }
        Ok((exprs, names))
    }

    /// Column `i` of the input, or its group key in an aggregate query (42803 if ungrouped).
    fn col_ref(&self, i: usize, cx: &Cx<'_>) -> Result<Expr, PgError> {
        let c = &cx.cols[i];
        let e = Expr::Column(i, c.ty.clone());
        if let Some(ag) = cx.agg {
            let ag = ag.borrow();
            return match ag.group_exprs.iter().position(|g| *g == e) {
                Some(k) => Ok(Expr::Column(k, c.ty.clone())),
                None => Err(err(
                    SqlState::GroupingError,
                    format!(
                        "column \"{}.{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                        c.table.clone().unwrap_or_default(),
                        c.name
                    ),
                )),
            };
        }
        Ok(e)
    }

    fn resolve(&self, parts: &[String], cx: &Cx<'_>) -> Result<usize, PgError> {
        let (table, col) = match parts {
            [c] => (None, c),
            [.., t, c] => (Some(t), c),
            [] => return Err(err(SqlState::SyntaxError, "empty column reference")),
        };
        let hits: Vec<usize> = cx
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.name == *col
                    && match table {
                        None => !c.hidden,
                        Some(t) => c.table.as_deref() == Some(t.as_str()),
                    }
            })
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [i] => Ok(*i),
            [] => {
                if let Some(t) = table {
                    if !cx
                        .cols
                        .iter()
                        .any(|c| c.table.as_deref() == Some(t.as_str()))
                    {
                        return Err(err(
                            SqlState::UndefinedTable,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                }
                Err(err(
                    SqlState::UndefinedColumn,
                    format!("column \"{}\" does not exist", parts.join(".")),
                ))
            }
            _ => Err(err(
                SqlState::AmbiguousColumn,
                format!("column reference \"{col}\" is ambiguous"),
            )),
        }
    }

    /// A reference to a column of an enclosing query's current row (correlated subquery): its
    /// value as a constant.
    fn outer_ref(&self, parts: &[String]) -> Option<Expr> {
        let outer = self.outer.borrow();
        for (cols, row) in outer.iter().rev() {
            let cx = Cx::plain(cols);
            if let Ok(i) = self.resolve(parts, &cx) {
                return Some(Expr::Const(row.get(i)?.clone(), cols[i].ty.clone()));
            }
        }
        None
    }

    pub(super) fn bind_bool(&self, e: &A, cx: &Cx<'_>) -> Result<Expr, PgError> {
        let b = self.bind(e, cx)?;
        match b.data_type() {
            DataType::Bool => Ok(b),
            DataType::Unknown => coerce(b, &DataType::Bool, CastContext::Implicit),
            t => Err(err(
                SqlState::DatatypeMismatch,
                format!(
                    "argument of {} must be type boolean, not type {}",
                    cx.clause,
                    t.name()
                ),
            )),
        }
    }

    fn subquery_rows(&self, q: &ast::Query) -> Result<Rel, PgError> {
        self.query(q)
    }

    /// Bind an expression.
    pub(super) fn bind(&self, e: &A, cx: &Cx<'_>) -> Result<Expr, PgError> {
        if let A::Function(f) = e {
            if f.over.is_some() {
                return match cx.win {
                    Some(w) => self.bind_window(f, cx, w),
                    None => Err(err(
                        SqlState::WindowingError,
                        format!("window functions are not allowed in {}", cx.clause),
                    )),
                };
            }
        }
        if let Some(ag) = cx.agg {
            let s = e.to_string();
            let hit = {
                let ag = ag.borrow();
                ag.group_ast
                    .iter()
                    .position(|g| *g == s)
                    .map(|k| Expr::Column(k, ag.group_exprs[k].data_type()))
            };
            if let Some(h) = hit {
                return Ok(h);
            }
            if let A::Function(f) = e {
                if f.over.is_none() {
                    if let Some(af) = agg_fn(&func_name(f)) {
                        return self.bind_agg(f, af, cx);
                    }
                }
            }
        } else if let A::Function(f) = e {
            if f.over.is_none() && agg_fn(&func_name(f)).is_some() {
                return Err(err(
                    SqlState::GroupingError,
                    format!("aggregate functions are not allowed in {}", cx.clause),
                ));
            }
        }
        if let Some(x) = self.bind_ext_expr(e, cx)? {
            return Ok(x);
        }
        match e {
            A::Identifier(_) | A::CompoundIdentifier(_) => {
                let parts: Vec<String> = match e {
                    A::Identifier(id) => vec![normalize_ident(id)],
                    A::CompoundIdentifier(ids) => ids.iter().map(normalize_ident).collect(),
                    _ => Vec::new(),
                };
                match self.resolve(&parts, cx) {
                    Ok(i) => self.col_ref(i, cx),
                    Err(err0) => self.outer_ref(&parts).ok_or(err0),
                }
            }
            A::Value(v) => self.literal(&v.value),
            A::TypedString(ts) if split_precision(&ts.data_type).is_some() => {
                let s = ts.value.value.clone().into_string().unwrap_or_default();
                let (base, p) = split_precision(&ts.data_type).unwrap_or((ts.data_type.clone(), 6));
                let ty = parse_type(&base)?;
                let v = Expr::Const(Value::Text(s), DataType::Unknown);
                let inner = explicit_cast(v, ty.clone(), &self.cx.tz)?;
                Ok(round_precision(inner, p, ty))
            }
            A::TypedString(ts) => {
                let s = ts.value.value.clone().into_string().unwrap_or_default();
                let ty = parse_type(&ts.data_type)?;
                explicit_cast(
                    Expr::Const(Value::Text(s), DataType::Unknown),
                    ty,
                    &self.cx.tz,
                )
            }
            A::Cast {
                expr, data_type, ..
            } => {
                if let Some((base, p)) = split_precision(data_type) {
                    // `x::timestamp(p)`: the cast, then PostgreSQL's typmod rounding.
                    let ty = parse_type(&base)?;
                    let inner = explicit_cast(self.bind(expr, cx)?, ty.clone(), &self.cx.tz)?;
                    return Ok(round_precision(inner, p, ty));
                }
                let tname = data_type.to_string().to_ascii_lowercase();
                if tname == "regclass" || tname == "pg_catalog.regclass" {
                    return self.regclass(expr, cx);
                }
                let ty = parse_type(data_type)?;
                let inner = self.bind(expr, cx)?;
                explicit_cast(inner, ty, &self.cx.tz)
            }
            A::Nested(x) => self.bind(x, cx),
            A::UnaryOp { op, expr } => self.unary(*op, expr, cx),
            A::BinaryOp {
                left,
                op: ast::BinaryOperator::Overlaps,
                right,
            } => self.bind_overlaps(left, right, cx),
            A::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                let x = self.bind(timestamp, cx)?;
                let z = self.bind(time_zone, cx)?;
                self.at_time_zone(z, x)
            }
            A::BinaryOp { left, op, right } => {
                let bop = match op {
                    ast::BinaryOperator::And | ast::BinaryOperator::Or => {
                        let a = self.bind_bool(left, cx)?;
                        let b = self.bind_bool(right, cx)?;
                        let mut items = Vec::new();
                        let is_and = *op == ast::BinaryOperator::And;
                        for x in [a, b] {
                            match x {
                                Expr::And(v) if is_and => items.extend(v),
                                Expr::Or(v) if !is_and => items.extend(v),
                                x => items.push(x),
                            }
                        }
                        return Ok(if is_and {
                            Expr::And(items)
                        } else {
                            Expr::Or(items)
                        });
                    }
                    ast::BinaryOperator::Plus => BinOp::Add,
                    ast::BinaryOperator::Minus => BinOp::Sub,
                    ast::BinaryOperator::Multiply => BinOp::Mul,
                    ast::BinaryOperator::Divide => BinOp::Div,
                    ast::BinaryOperator::Modulo => BinOp::Mod,
                    ast::BinaryOperator::Eq => BinOp::Eq,
                    ast::BinaryOperator::NotEq => BinOp::Ne,
                    ast::BinaryOperator::Lt => BinOp::Lt,
                    ast::BinaryOperator::LtEq => BinOp::Le,
                    ast::BinaryOperator::Gt => BinOp::Gt,
                    ast::BinaryOperator::GtEq => BinOp::Ge,
                    ast::BinaryOperator::StringConcat => BinOp::Concat,
                    ast::BinaryOperator::PGExp => {
                        let a = num_arg(self.bind(left, cx)?, "^")?;
                        let b = num_arg(self.bind(right, cx)?, "^")?;
                        let a = coerce(a, &DataType::Float8, CastContext::Implicit)?;
                        let b = coerce(b, &DataType::Float8, CastContext::Implicit)?;
                        return Ok(Expr::Func(Func::Power, vec![a, b], DataType::Float8));
                    }
                    ast::BinaryOperator::PGRegexMatch
                    | ast::BinaryOperator::PGRegexIMatch
                    | ast::BinaryOperator::PGRegexNotMatch
                    | ast::BinaryOperator::PGRegexNotIMatch
                    | ast::BinaryOperator::PGLikeMatch
                    | ast::BinaryOperator::PGILikeMatch
                    | ast::BinaryOperator::PGNotLikeMatch
                    | ast::BinaryOperator::PGNotILikeMatch => {
                        use ast::BinaryOperator as B;
                        let sym = op.to_string();
                        let x = text_arg(self.bind(left, cx)?, &sym)?;
                        let p = text_arg(self.bind(right, cx)?, &sym)?;
                        let icase = matches!(
                            op,
                            B::PGRegexIMatch
                                | B::PGRegexNotIMatch
                                | B::PGILikeMatch
                                | B::PGNotILikeMatch
                        );
                        let negated = matches!(
                            op,
                            B::PGRegexNotMatch
                                | B::PGRegexNotIMatch
                                | B::PGNotLikeMatch
                                | B::PGNotILikeMatch
                        );
                        if matches!(
                            op,
                            B::PGLikeMatch
                                | B::PGILikeMatch
                                | B::PGNotLikeMatch
                                | B::PGNotILikeMatch
                        ) {
                            return Ok(Expr::Like(Box::new(x), Box::new(p), negated, icase));
                        }
                        let flags = Expr::Const(
                            Value::Text(if icase { "i" } else { "" }.into()),
                            DataType::Text,
                        );
                        let m = Expr::Func(Func::RegexMatch, vec![x, p, flags], DataType::Bool);
                        return Ok(if negated { Expr::Not(Box::new(m)) } else { m });
                    }
                    ast::BinaryOperator::Arrow
                    | ast::BinaryOperator::LongArrow
                    | ast::BinaryOperator::HashArrow
                    | ast::BinaryOperator::HashLongArrow
                    | ast::BinaryOperator::AtArrow
                    | ast::BinaryOperator::ArrowAt
                    | ast::BinaryOperator::Question
                    | ast::BinaryOperator::QuestionAnd
                    | ast::BinaryOperator::QuestionPipe
                    | ast::BinaryOperator::HashMinus
                    | ast::BinaryOperator::PGOverlap => {
                        let a = self.bind(left, cx)?;
                        let b = self.bind(right, cx)?;
                        return self.json_operator(op, a, b);
                    }
                    ast::BinaryOperator::PGStartsWith => {
                        let x = text_arg(self.bind(left, cx)?, "^@")?;
                        let p = text_arg(self.bind(right, cx)?, "^@")?;
                        return Ok(Expr::Func(Func::StartsWith, vec![x, p], DataType::Bool));
                    }
                    other => return Err(unsupported(format!("operator {other}"))),
                };
                let a = self.bind(left, cx)?;
                let b = self.bind(right, cx)?;
                if matches!(bop, BinOp::Concat | BinOp::Sub)
                    && matches!(a.data_type(), DataType::Jsonb)
                {
                    let op = if bop == BinOp::Concat {
                        ast::BinaryOperator::StringConcat
                    } else {
                        ast::BinaryOperator::Minus
                    };
                    return self.json_operator(&op, a, b);
                }
                self.binary_expr(bop, a, b)
            }
            A::IsNull(x) => Ok(Expr::IsNull(Box::new(self.bind(x, cx)?), false)),
            A::IsNotNull(x) => Ok(Expr::IsNull(Box::new(self.bind(x, cx)?), true)),
            A::IsTrue(x) => Ok(Expr::IsBool(Box::new(self.bind_bool(x, cx)?), true, false)),
            A::IsNotTrue(x) => Ok(Expr::IsBool(Box::new(self.bind_bool(x, cx)?), true, true)),
            A::IsFalse(x) => Ok(Expr::IsBool(Box::new(self.bind_bool(x, cx)?), false, false)),
            A::IsNotFalse(x) => Ok(Expr::IsBool(Box::new(self.bind_bool(x, cx)?), false, true)),
            A::IsUnknown(x) => Ok(Expr::IsNull(Box::new(self.bind_bool(x, cx)?), false)),
            A::IsNotUnknown(x) => Ok(Expr::IsNull(Box::new(self.bind_bool(x, cx)?), true)),
            A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
                let (x, y) = self.coerce_pair(self.bind(a, cx)?, self.bind(b, cx)?, "=")?;
                Ok(Expr::IsDistinct(
                    Box::new(x),
                    Box::new(y),
                    matches!(e, A::IsNotDistinctFrom(..)),
                ))
            }
            A::In {
                expr,
                target,
                negated,
                ..
            } => {
                let x = self.bind(expr, cx)?;
                let items: Vec<Expr> = match target {
                    ast::InTarget::List(list) => list
                        .iter()
                        .map(|i| self.bind(i, cx))
                        .collect::<Result<_, _>>()?,
                    ast::InTarget::Subquery(q) => {
                        let rel = self.subquery_rows(q)?;
                        if rel.cols.len() != 1 {
                            return Err(err(
                                SqlState::SyntaxError,
                                "subquery has too many columns",
                            ));
                        }
                        let ty = out_type(&rel.cols[0].ty);
                        rel.rows
                            .into_iter()
                            .map(|mut r| Expr::Const(r.pop().unwrap_or(Value::Null), ty.clone()))
                            .collect()
                    }
                    _ => return Err(unsupported("this IN form")),
                };
                let mut types = vec![x.data_type()];
                types.extend(items.iter().map(Expr::data_type));
                let t = common_type(&types)
                    .map_err(|_| no_op("=", &types[0], &types[types.len() - 1]))?;
                let x = coerce(x, &t, CastContext::Implicit)?;
                let mut eqs = Vec::new();
                for i in items {
                    let i = coerce(i, &t, CastContext::Implicit)?;
                    eqs.push(self.binary_expr(BinOp::Eq, x.clone(), i)?);
                }
                Ok(Expr::InList(Box::new(x), eqs, *negated))
            }
            A::Exists { subquery, negated } => {
                let rel = self.subquery_rows(subquery)?;
                Ok(Expr::Const(
                    Value::Bool(rel.rows.is_empty() == *negated),
                    DataType::Bool,
                ))
            }
            A::Subquery(q) => {
                let rel = self.subquery_rows(q)?;
                if rel.cols.len() != 1 {
                    return Err(err(
                        SqlState::SyntaxError,
                        "subquery must return only one column",
                    ));
                }
                if rel.rows.len() > 1 {
                    return Err(err(
                        SqlState::CardinalityViolation,
                        "more than one row returned by a subquery used as an expression",
                    ));
                }
                let ty = out_type(&rel.cols[0].ty);
                let v = rel
                    .rows
                    .into_iter()
                    .next()
                    .and_then(|mut r| r.pop())
                    .unwrap_or(Value::Null);
                Ok(Expr::Const(v, ty))
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.bind(expr, cx)?;
                let lo = self.bind(low, cx)?;
                let hi = self.bind(high, cx)?;
                let a = self.binary_expr(BinOp::Ge, x.clone(), lo)?;
                let b = self.binary_expr(BinOp::Le, x, hi)?;
                let both = Expr::And(vec![a, b]);
                Ok(if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                })
            }
            A::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any: false,
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any: false,
            } => {
                let x = text_arg(self.bind(expr, cx)?, "~~")?;
                let mut p = text_arg(self.bind(pattern, cx)?, "~~")?;
                if let Some(esc) = escape_char {
                    let esc = match self.bind(esc, cx)? {
                        Expr::Const(Value::Text(t), _) => t,
                        _ => return Err(unsupported("a non-constant LIKE ESCAPE")),
                    };
                    let mut ec = esc.chars();
                    let (e0, rest) = (ec.next(), ec.next());
                    if rest.is_some() {
                        return Err(err(
                            SqlState::InvalidEscapeSequence,
                            "invalid escape string",
                        ));
                    }
                    // Rewrite the pattern to use `\` as the escape character.
                    p = match (p, e0) {
                        (Expr::Const(Value::Text(pat), t), e0) => {
                            let mut out = String::new();
                            let mut it = pat.chars();
                            while let Some(c) = it.next() {
                                if Some(c) == e0 {
                                    if let Some(n) = it.next() {
                                        out.push('\\');
                                        out.push(n);
                                    }
                                } else if c == '\\' {
                                    out.push_str("\\\\");
                                } else {
                                    out.push(c);
                                }
                            }
                            Expr::Const(Value::Text(out), t)
                        }
                        (p, Some('\\')) => p,
                        _ => return Err(unsupported("a non-constant LIKE pattern with ESCAPE")),
                    };
                }
                Ok(Expr::Like(
                    Box::new(x),
                    Box::new(p),
                    *negated,
                    matches!(e, A::ILike { .. }),
                ))
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let op = match operand {
                    Some(o) => Some(self.bind(o, cx)?),
                    None => None,
                };
                let mut whens = Vec::new();
                let mut results = Vec::new();
                for c in conditions {
                    let cond = match &op {
                        Some(o) => {
                            let w = self.bind(&c.condition, cx)?;
                            self.binary_expr(BinOp::Eq, o.clone(), w)?
                        }
                        None => self.bind_bool(&c.condition, cx)?,
                    };
                    whens.push(cond);
                    results.push(self.bind(&c.result, cx)?);
                }
                let els = match else_result {
                    Some(x) => Some(self.bind(x, cx)?),
                    None => None,
                };
                let mut types: Vec<DataType> = results.iter().map(Expr::data_type).collect();
                if let Some(x) = &els {
                    types.push(x.data_type());
                }
                let t = common_type(&types)?;
                let mut pairs = Vec::new();
                for (w, r) in whens.into_iter().zip(results) {
                    pairs.push((w, coerce(r, &t, CastContext::Implicit)?));
                }
                let els = match els {
                    Some(x) => Some(Box::new(coerce(x, &t, CastContext::Implicit)?)),
                    None => None,
                };
                Ok(Expr::Case(pairs, els, t))
            }
            A::Function(f) => self.function(f, cx),
            A::SimilarTo {
                negated,
                expr,
                pattern,
                escape_char,
            } => {
                let x = text_arg(self.bind(expr, cx)?, "~")?;
                let mut eargs = vec![text_arg(self.bind(pattern, cx)?, "similar_to_escape")?];
                if let Some(e) = escape_char {
                    eargs.push(text_arg(self.bind(e, cx)?, "similar_to_escape")?);
                }
                let re = Expr::Func(Func::SimilarEscape, eargs, DataType::Text);
                let flags = Expr::Const(Value::Text(String::new()), DataType::Text);
                let m = Expr::Func(Func::RegexMatch, vec![x, re, flags], DataType::Bool);
                Ok(if *negated { Expr::Not(Box::new(m)) } else { m })
            }
            A::Substring {
                expr,
                substring_from: Some(from),
                substring_for,
                ..
            } if {
                let t = self.bind(from, cx)?.data_type();
                matches!(
                    t,
                    DataType::Text | DataType::Unknown | DataType::Varchar(_) | DataType::Char(_)
                )
            } =>
            {
                let x = text_arg(self.bind(expr, cx)?, "substring")?;
                let p = text_arg(self.bind(from, cx)?, "substring")?;
                let p = match substring_for {
                    Some(esc) => Expr::Func(
                        Func::SimilarEscape,
                        vec![p, text_arg(self.bind(esc, cx)?, "substring")?],
                        DataType::Text,
                    ),
                    None => p,
                };
                Ok(Expr::Func(Func::RegexSubstring, vec![x, p], DataType::Text))
            }
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![text_arg(self.bind(expr, cx)?, "substring")?];
                args.push(match substring_from {
                    Some(f) => int_arg(self.bind(f, cx)?, "substring")?,
                    None => Expr::Const(Value::Int4(1), DataType::Int4),
                });
                if let Some(f) = substring_for {
                    args.push(int_arg(self.bind(f, cx)?, "substring")?);
                }
                Ok(Expr::Func(Func::Substr, args, DataType::Text))
            }
            A::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(unsupported("TRIM with a character list"));
                }
                let f = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Func::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => Func::Rtrim,
                    _ => Func::Btrim,
                };
                let mut args = vec![text_arg(self.bind(expr, cx)?, "btrim")?];
                if let Some(w) = trim_what {
                    args.push(text_arg(self.bind(w, cx)?, "btrim")?);
                }
                Ok(Expr::Func(f, args, DataType::Text))
            }
            A::Position { expr, r#in } => {
                let s = text_arg(self.bind(r#in, cx)?, "position")?;
                let sub = text_arg(self.bind(expr, cx)?, "position")?;
                Ok(Expr::Func(Func::Strpos, vec![s, sub], DataType::Int4))
            }
            A::Ceil { expr, .. } | A::Floor { expr, .. } => {
                let f = if matches!(e, A::Ceil { .. }) {
                    Func::Ceil
                } else {
                    Func::Floor
                };
                let x = num_arg(self.bind(expr, cx)?, "ceil")?;
                self.math1(f, x)
            }
            A::Array(arr) => {
                let items = arr
                    .elem
                    .iter()
                    .map(|x| self.bind(x, cx))
                    .collect::<Result<Vec<_>, _>>()?;
                let types: Vec<DataType> = items.iter().map(Expr::data_type).collect();
                if items.is_empty() {
                    return Ok(Expr::Const(
                        Value::Array(Vec::new()),
                        DataType::Array(Box::new(DataType::Unknown)),
                    ));
                }
                let t = common_type(&types)?;
                let items = items
                    .into_iter()
                    .map(|x| coerce(x, &t, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::Array(items, DataType::Array(Box::new(t))))
            }
            A::CompoundFieldAccess { root, access_chain } => {
                let mut cur = self.bind(root, cx)?;
                for a in access_chain {
                    match a {
                        ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => {
                            let elem = match cur.data_type() {
                                DataType::Array(e) => *e,
                                t => {
                                    return Err(err(
                                        SqlState::DatatypeMismatch,
                                        format!(
                                            "cannot subscript type {} because it does not support subscripting",
                                            t.name()
                                        ),
                                    ))
                                }
                            };
                            let i = coerce(
                                self.bind(index, cx)?,
                                &DataType::Int4,
                                CastContext::Implicit,
                            )?;
                            cur = Expr::Subscript(Box::new(cur), Box::new(i), elem);
                        }
                        _ => return Err(unsupported("array slices and field access")),
                    }
                }
                Ok(cur)
            }
            A::Interval(iv) => {
                let v = self.bind(&iv.value, cx)?;
                let v = match (v, &iv.leading_field, &iv.last_field) {
                    (Expr::Const(Value::Text(t), DataType::Unknown), Some(f), None)
                        if !t.chars().any(|c| c.is_ascii_alphabetic()) =>
                    {
                        Expr::Const(Value::Text(format!("{t} {f}")), DataType::Unknown)
                    }
                    (v, _, _) => v,
                };
                explicit_cast(v, DataType::Interval, &self.cx.tz)
            }
            A::AnyOp {
                left,
                compare_op,
                right,
                ..
            }
            | A::AllOp {
                left,
                compare_op,
                right,
            } => {
                let any = matches!(e, A::AnyOp { .. });
                let op = match compare_op {
                    ast::BinaryOperator::Eq => BinOp::Eq,
                    ast::BinaryOperator::NotEq => BinOp::Ne,
                    ast::BinaryOperator::Lt => BinOp::Lt,
                    ast::BinaryOperator::LtEq => BinOp::Le,
                    ast::BinaryOperator::Gt => BinOp::Gt,
                    ast::BinaryOperator::GtEq => BinOp::Ge,
                    other => return Err(unsupported(format!("operator {other} with ANY/ALL"))),
                };
                let A::Subquery(q) = right.as_ref() else {
                    let x = self.bind(left, cx)?;
                    let arr = self.bind(right, cx)?;
                    let elem = match arr.data_type() {
                        DataType::Array(e) => *e,
                        t => {
                            return Err(err(
                                SqlState::DatatypeMismatch,
                                format!(
                                    "op ANY/ALL (array) requires array on right side, not {}",
                                    t.name()
                                ),
                            ))
                        }
                    };
                    let probe = Expr::Const(Value::Null, elem.clone());
                    let (x, _) = self.coerce_pair(x, probe, op.symbol())?;
                    let arr = if x.data_type() != elem && elem != DataType::Unknown {
                        coerce(
                            arr,
                            &DataType::Array(Box::new(x.data_type())),
                            CastContext::Implicit,
                        )?
                    } else {
                        arr
                    };
                    return Ok(Expr::Quantified(op, Box::new(x), Box::new(arr), any));
                };
                let x = self.bind(left, cx)?;
                let rel = self.subquery_rows(q)?;
                if rel.cols.len() != 1 {
                    return Err(err(SqlState::SyntaxError, "subquery has too many columns"));
                }
                let ty = out_type(&rel.cols[0].ty);
                let mut items = Vec::new();
                for mut r in rel.rows {
                    let v = Expr::Const(r.pop().unwrap_or(Value::Null), ty.clone());
                    items.push(self.binary_expr(op, x.clone(), v)?);
                }
                if items.is_empty() {
                    // Still type-check the comparison.
                    self.binary_expr(op, x, Expr::Const(Value::Null, ty))?;
                    return Ok(Expr::Const(Value::Bool(!any), DataType::Bool));
                }
                Ok(if any {
                    Expr::Or(items)
                } else {
                    Expr::And(items)
                })
            }
            A::Extract { field, expr, .. } => {
                let f = Expr::Const(
                    Value::Text(field.to_string().to_ascii_lowercase()),
                    DataType::Text,
                );
                let x = self.datetime_arg(self.bind(expr, cx)?, "extract")?;
                Ok(Expr::Func(
                    Func::Extract,
                    vec![f, x],
                    DataType::Numeric(None),
                ))
            }
            other => Err(unsupported(format!(
                "expression {}",
                other.to_string().chars().take(40).collect::<String>()
            ))),
        }
    }

    fn literal(&self, v: &ast::Value) -> Result<Expr, PgError> {
        use ast::Value as V;
        Ok(match v {
            V::Number(s, _) => number_literal(s)?,
            V::SingleQuotedString(s)
            | V::EscapedStringLiteral(s)
            | V::NationalStringLiteral(s)
            | V::UnicodeStringLiteral(s) => Expr::Const(Value::Text(s.clone()), DataType::Unknown),
            V::DollarQuotedString(d) => {
                Expr::Const(Value::Text(d.value.clone()), DataType::Unknown)
            }
            V::Boolean(b) => Expr::Const(Value::Bool(*b), DataType::Bool),
            V::Null => Expr::Const(Value::Null, DataType::Unknown),
            V::Placeholder(p) => {
                let n: usize = p.trim_start_matches('$').parse().unwrap_or(0);
                let (v, t) = n
                    .checked_sub(1)
                    .and_then(|i| self.params.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        err(
                            SqlState::UndefinedParameter,
                            format!("there is no parameter {p}"),
                        )
                    })?;
                Expr::Const(v, t)
            }
            other => return Err(unsupported(format!("literal {other}"))),
        })
    }

    /// The json/jsonb operators (`->`, `->>`, `#>`, `#>>`, `@>`, `<@`, `?`, `?|`, `?&`, `#-`, and
    /// `||` / `-` on jsonb).
    fn json_operator(&self, op: &ast::BinaryOperator, a: Expr, b: Expr) -> Result<Expr, PgError> {
        use ast::BinaryOperator as B;
        let sym = op.to_string();
        let (ta, tb) = (a.data_type(), b.data_type());
        let fail = || no_op(&sym, &ta, &tb);
        if matches!(op, B::AtArrow | B::ArrowAt | B::PGOverlap)
            && (matches!(ta, DataType::Array(_)) || matches!(tb, DataType::Array(_)))
        {
            let t = match (&ta, &tb) {
                (DataType::Array(_), DataType::Unknown) => ta.clone(),
                (DataType::Unknown, DataType::Array(_)) => tb.clone(),
                _ => common_type(&[ta.clone(), tb.clone()]).map_err(|_| fail())?,
            };
            let a = coerce(a, &t, CastContext::Implicit)?;
            let b = coerce(b, &t, CastContext::Implicit)?;
            let (func, args) = match op {
                B::AtArrow => (Func::ArrayContains, vec![a, b]),
                B::ArrowAt => (Func::ArrayContains, vec![b, a]),
                _ => (Func::ArrayOverlap, vec![a, b]),
            };
            return Ok(Expr::Func(func, args, DataType::Bool));
        }
        let jsonb_only = !matches!(
            op,
            B::Arrow | B::LongArrow | B::HashArrow | B::HashLongArrow
        );
        let a = match ta {
            DataType::Jsonb => a,
            DataType::Json if !jsonb_only => a,
            DataType::Unknown => coerce(a, &DataType::Jsonb, CastContext::Implicit)?,
            _ => return Err(fail()),
        };
        let doc_t = a.data_type();
        let text_array = DataType::Array(Box::new(DataType::Text));
        let key = |b: Expr| -> Result<Expr, PgError> {
            match b.data_type() {
                DataType::Int2 | DataType::Int4 | DataType::Int8 => {
                    coerce(b, &DataType::Int4, CastContext::Implicit)
                }
                _ => text_arg(b, &sym).map_err(|_| fail()),
            }
        };
        let path = |b: Expr| -> Result<Expr, PgError> {
            match b.data_type() {
                DataType::Unknown => coerce(b, &text_array, CastContext::Implicit),
                DataType::Array(e) if matches!(*e, DataType::Text | DataType::Varchar(_)) => Ok(b),
                _ => Err(fail()),
            }
        };
        let jsonb = |b: Expr| -> Result<Expr, PgError> {
            match b.data_type() {
                DataType::Jsonb => Ok(b),
                DataType::Unknown => coerce(b, &DataType::Jsonb, CastContext::Implicit),
                _ => Err(fail()),
            }
        };
        let (func, args, t) = match op {
            B::Arrow => (Func::JsonGet, vec![a, key(b)?], doc_t),
            B::LongArrow => (Func::JsonGetText, vec![a, key(b)?], DataType::Text),
            B::HashArrow => (Func::JsonPath, vec![a, path(b)?], doc_t),
            B::HashLongArrow => (Func::JsonPathText, vec![a, path(b)?], DataType::Text),
            B::AtArrow => (Func::JsonContains, vec![a, jsonb(b)?], DataType::Bool),
            B::ArrowAt => (Func::JsonContains, vec![jsonb(b)?, a], DataType::Bool),
            B::Question => (
                Func::JsonExists,
                vec![a, text_arg(b, &sym).map_err(|_| fail())?],
                DataType::Bool,
            ),
            B::QuestionAnd => (Func::JsonExistsAll, vec![a, path(b)?], DataType::Bool),
            B::QuestionPipe => (Func::JsonExistsAny, vec![a, path(b)?], DataType::Bool),
            B::HashMinus => (Func::JsonDeletePath, vec![a, path(b)?], DataType::Jsonb),
            B::StringConcat => match b.data_type() {
                DataType::Jsonb | DataType::Unknown => {
                    (Func::JsonConcat, vec![a, jsonb(b)?], DataType::Jsonb)
                }
                _ => return self.binary_expr(BinOp::Concat, a, b),
            },
            B::Minus => match b.data_type() {
                DataType::Array(_) => return Err(unsupported("jsonb - text[]")),
                _ => (Func::JsonDelete, vec![a, key(b)?], DataType::Jsonb),
            },
            _ => return Err(fail()),
        };
        Ok(Expr::Func(func, args, t))
    }

    fn unary(&self, op: ast::UnaryOperator, x: &A, cx: &Cx<'_>) -> Result<Expr, PgError> {
        use ast::UnaryOperator as U;
        match op {
            U::Minus => {
                // PostgreSQL's unary minus binds tighter than `^` (`-2 ^ 2` is 4); sqlparser
                // parses it as `-(2 ^ 2)`: push the minus into the leftmost operand.
                if let A::BinaryOp {
                    left,
                    op: ast::BinaryOperator::PGExp,
                    right,
                } = x
                {
                    let neg = A::UnaryOp {
                        op: U::Minus,
                        expr: left.clone(),
                    };
                    let e = A::BinaryOp {
                        left: Box::new(neg),
                        op: ast::BinaryOperator::PGExp,
                        right: right.clone(),
                    };
                    return self.bind(&e, cx);
                }
                if let A::Value(v) = x {
                    if let ast::Value::Number(s, _) = &v.value {
                        return number_literal(&format!("-{s}"));
                    }
                }
                let e = self.bind(x, cx)?;
                let e = match e.data_type() {
                    DataType::Unknown => coerce(e, &DataType::Float8, CastContext::Implicit)?,
                    _ => e,
                };
                let t = e.data_type();
                if num_rank(&t).is_none() && t != DataType::Interval {
                    return Err(err(
                        SqlState::UndefinedFunction,
                        format!("operator does not exist: - {}", t.name()),
                    ));
                }
                Ok(Expr::Neg(Box::new(e), t.without_typmod()))
            }
            U::Plus => {
                let e = self.bind(x, cx)?;
                let t = e.data_type();
                if num_rank(&t).is_none() && t != DataType::Interval && t != DataType::Unknown {
                    return Err(err(
                        SqlState::UndefinedFunction,
                        format!("operator does not exist: + {}", t.name()),
                    ));
                }
                Ok(e)
            }
            U::Not => Ok(Expr::Not(Box::new(self.bind_bool(x, cx)?))),
            U::PGAbs => {
                let e = num_arg(self.bind(x, cx)?, "@")?;
                let t = e.data_type().without_typmod();
                Ok(Expr::Func(Func::Abs, vec![e], t))
            }
            U::PGCubeRoot => {
                let e = num_arg(self.bind(x, cx)?, "||/")?;
                let e = coerce(e, &DataType::Float8, CastContext::Implicit)?;
                Ok(Expr::Func(Func::Cbrt, vec![e], DataType::Float8))
            }
            U::PGSquareRoot => {
                let e = num_arg(self.bind(x, cx)?, "|/")?;
                let e = coerce(e, &DataType::Float8, CastContext::Implicit)?;
                Ok(Expr::Func(Func::Sqrt, vec![e], DataType::Float8))
            }
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    /// Make two operands comparable: unknown literals take the other side's type, numbers
    /// promote, strings become text, other types unify through implicit casts.
    fn coerce_pair(&self, a: Expr, b: Expr, op: &str) -> Result<(Expr, Expr), PgError> {
        let (ta, tb) = (a.data_type(), b.data_type());
        let t = match (&ta, &tb) {
            (DataType::Unknown, DataType::Unknown) => DataType::Text,
            (DataType::Unknown, t) | (t, DataType::Unknown) => t.clone(),
            (DataType::Char(_), DataType::Char(_)) => return Ok((a, b)),
            _ if ta.without_typmod() == tb.without_typmod() => return Ok((a, b)),
            _ => match promote(&ta, &tb) {
                Some(t) => t,
                None => unify(&ta, &tb).map_err(|_| no_op(op, &ta, &tb))?,
            },
        };
        let conv = |e: Expr| -> Result<Expr, PgError> {
            coerce(e, &t, CastContext::Implicit).map_err(|x| {
                if x.code == SqlState::DatatypeMismatch {
                    no_op(op, &ta, &tb)
                } else {
                    x
                }
            })
        };
        Ok((conv(a)?, conv(b)?))
    }

    /// A typed binary operator, with PostgreSQL's operand resolution.
    pub(super) fn binary_expr(&self, op: BinOp, a: Expr, b: Expr) -> Result<Expr, PgError> {
        let (ta, tb) = (a.data_type(), b.data_type());
        if op.is_comparison() {
            let (x, y) = self.coerce_pair(a, b, op.symbol())?;
            return Ok(Expr::Binary(op, Box::new(x), Box::new(y), DataType::Bool));
        }
        if op == BinOp::Concat
            && (matches!(ta, DataType::Array(_)) || matches!(tb, DataType::Array(_)))
        {
            return match (&ta, &tb) {
                (DataType::Array(x), DataType::Array(y)) => {
                    if x != y && **x != DataType::Unknown && **y != DataType::Unknown {
                        return Err(no_op("||", &ta, &tb));
                    }
                    Ok(Expr::Func(Func::ArrayCat, vec![a, b], ta.clone()))
                }
                (DataType::Array(x), _) => {
                    let b =
                        coerce(b, x, CastContext::Implicit).map_err(|_| no_op("||", &ta, &tb))?;
                    Ok(Expr::Func(Func::ArrayAppend, vec![a, b], ta.clone()))
                }
                (_, DataType::Array(y)) => {
                    let a =
                        coerce(a, y, CastContext::Implicit).map_err(|_| no_op("||", &ta, &tb))?;
                    Ok(Expr::Func(Func::ArrayPrepend, vec![a, b], tb.clone()))
                }
                _ => Err(no_op("||", &ta, &tb)),
            };
        }
        let (a, b) = if op == BinOp::Concat {
            match self.bytea_concat(a, b)? {
                Ok(e) => return Ok(e),
                Err(ab) => ab,
            }
        } else {
            (a, b)
        };
        if op == BinOp::Concat {
            let texty = |t: &DataType| t.is_string() || *t == DataType::Unknown;
            if !texty(&ta) && !texty(&tb) {
                return Err(no_op("||", &ta, &tb));
            }
            let to_text = |e: Expr| -> Result<Expr, PgError> {
                match e.data_type() {
                    DataType::Text => Ok(e),
                    DataType::Unknown => coerce(e, &DataType::Text, CastContext::Implicit),
                    _ => Ok(Expr::Cast(Box::new(e), DataType::Text, CastKind::Explicit)),
                }
            };
            return Ok(Expr::Binary(
                op,
                Box::new(to_text(a)?),
                Box::new(to_text(b)?),
                DataType::Text,
            ));
        }
        // Resolve unknown literals against the other side.
        let (a, b) = match (&ta, &tb) {
            (DataType::Unknown, DataType::Unknown) => {
                return Err(err(
                    SqlState::UndefinedFunction,
                    format!("operator is not unique: unknown {} unknown", op.symbol()),
                ))
            }
            (DataType::Unknown, t) => (self.resolve_unknown(a, t, op)?, b),
            (t, DataType::Unknown) => {
                let r = self.resolve_unknown(b, t, op)?;
                (a, r)
            }
            _ => (a, b),
        };
        let (ta, tb) = (a.data_type(), b.data_type());
        use DataType as T;
        if is_datetime(&ta) || is_datetime(&tb) {
            let ts = |e: Expr| Expr::Cast(Box::new(e), T::Timestamp, CastKind::Implicit);
            let bin =
                |o: BinOp, x: Expr, y: Expr, t: T| Expr::Binary(o, Box::new(x), Box::new(y), t);
            let int = |t: &T| matches!(t, T::Int2 | T::Int4 | T::Int8);
            return Ok(match (&ta, &tb, op) {
                (T::Date, t, BinOp::Add | BinOp::Sub) if int(t) => bin(op, a, b, T::Date),
                (t, T::Date, BinOp::Add) if int(t) => bin(op, b, a, T::Date),
                (T::Date, T::Date, BinOp::Sub) => bin(op, a, b, T::Int4),
                (T::Date, T::Interval, BinOp::Add | BinOp::Sub) => bin(op, ts(a), b, T::Timestamp),
                (T::Interval, T::Date, BinOp::Add) => bin(op, ts(b), a, T::Timestamp),
                (T::Timestamp, T::Interval, BinOp::Add | BinOp::Sub) => bin(op, a, b, T::Timestamp),
                (T::Timestamptz, T::Interval, BinOp::Add | BinOp::Sub) => {
                    bin(op, a, b, T::Timestamptz)
                }
                (T::Interval, T::Timestamp | T::Timestamptz, BinOp::Add) => {
                    let t = tb.clone();
                    bin(op, b, a, t)
                }
                (T::Timestamp, T::Timestamp, BinOp::Sub)
                | (T::Timestamptz, T::Timestamptz, BinOp::Sub) => bin(op, a, b, T::Interval),
                (T::Interval, T::Interval, BinOp::Add | BinOp::Sub) => bin(op, a, b, T::Interval),
                (T::Interval, t, BinOp::Mul | BinOp::Div) if num_rank(t).is_some() => bin(
                    op,
                    a,
                    coerce(b, &T::Float8, CastContext::Implicit)?,
                    T::Interval,
                ),
                (t, T::Interval, BinOp::Mul) if num_rank(t).is_some() => bin(
                    op,
                    b,
                    coerce(a, &T::Float8, CastContext::Implicit)?,
                    T::Interval,
                ),
                (T::Time | T::Timetz, T::Interval, BinOp::Add | BinOp::Sub)
                | (T::Interval, T::Time | T::Timetz, BinOp::Add)
                | (T::Time, T::Time, BinOp::Sub)
                | (T::Date, T::Time | T::Timetz, BinOp::Add)
                | (T::Time | T::Timetz, T::Date, BinOp::Add) => self.time_arith(op, a, b)?,
                _ => return Err(no_op(op.symbol(), &ta, &tb)),
            });
        }
        let Some(t) = promote(&ta, &tb) else {
            return Err(no_op(op.symbol(), &ta, &tb));
        };
        if op == BinOp::Mod && matches!(t, T::Float4 | T::Float8) {
            return Err(no_op("%", &ta, &tb));
        }
        let a = coerce(a, &t, CastContext::Implicit)?;
        let b = coerce(b, &t, CastContext::Implicit)?;
        Ok(Expr::Binary(op, Box::new(a), Box::new(b), t))
    }

    fn resolve_unknown(&self, e: Expr, other: &DataType, op: BinOp) -> Result<Expr, PgError> {
        let target = match other {
            DataType::Date | DataType::Timestamp | DataType::Timestamptz
                if matches!(op, BinOp::Add | BinOp::Sub) =>
            {
                // `ts + '1 day'` means an interval; `date - '2020-01-01'` a date.
                if let Expr::Const(Value::Text(s), _) = &e {
                    if crate::types::text::parse_text(&DataType::Interval, s, &self.cx.tz).is_ok() {
                        DataType::Interval
                    } else {
                        other.clone()
                    }
                } else {
                    other.clone()
                }
            }
            DataType::Interval if matches!(op, BinOp::Mul | BinOp::Div) => DataType::Float8,
            t if num_rank(t).is_some() => t.without_typmod(),
            t => t.clone(),
        };
        coerce(e, &target, CastContext::Implicit)
    }

    fn math1(&self, f: Func, x: Expr) -> Result<Expr, PgError> {
        Ok(match x.data_type() {
            DataType::Numeric(_) => Expr::Func(f, vec![x], DataType::Numeric(None)),
            _ => Expr::Func(
                f,
                vec![coerce(x, &DataType::Float8, CastContext::Implicit)?],
                DataType::Float8,
            ),
        })
    }

    fn datetime_arg(&self, e: Expr, fname: &str) -> Result<Expr, PgError> {
        match e.data_type() {
            DataType::Timestamp
            | DataType::Timestamptz
            | DataType::Date
            | DataType::Interval
            | DataType::Time => Ok(e),
            DataType::Unknown => coerce(e, &DataType::Timestamptz, CastContext::Implicit),
            _ => Err(no_func(fname, &[e])),
        }
    }

    /// The clock functions: the transaction's start time, as PostgreSQL's `now()`.
    fn clock(&self, name: &str) -> Option<Expr> {
        use crate::types::datetime as dt;
        let now = self.now;
        let local = dt::utc_to_local(now, &self.cx.tz).unwrap_or(now);
        Some(match name {
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp" => Expr::Const(Value::Timestamptz(now), DataType::Timestamptz),
            "current_date" => {
                Expr::Const(Value::Date(dt::timestamp_to_date(local)), DataType::Date)
            }
            "localtimestamp" => Expr::Const(Value::Timestamp(local), DataType::Timestamp),
            "localtime" => Expr::Const(
                Value::Time(local.rem_euclid(86_400_000_000)),
                DataType::Time,
            ),
            "current_time" => Expr::Const(
                Value::Timetz(
                    local.rem_euclid(86_400_000_000),
                    self.cx.tz.offset_at_utc(now),
                ),
                DataType::Timetz,
            ),
            _ => return None,
        })
    }

    pub(super) fn bind_agg(
        &self,
        f: &ast::Function,
        af: AggFn,
        cx: &Cx<'_>,
    ) -> Result<Expr, PgError> {
        let Some(ag) = cx.agg else {
            return Err(err(
                SqlState::GroupingError,
                "aggregate functions are not allowed here",
            ));
        };
        let inner = Cx::clause(cx.cols, "aggregate function calls");
        let list = match &f.args {
            FunctionArguments::List(l) => l,
            _ => return Err(unsupported("this aggregate call")),
        };
        let mut order = Vec::new();
        for c in &list.clauses {
            match c {
                ast::FunctionArgumentClause::OrderBy(v) => {
                    for o in v {
                        let k = self.bind(&o.expr, &inner)?;
                        order.push((k, sort_key_of(o, 0)));
                    }
                }
                _ => return Err(unsupported("this aggregate clause")),
            }
        }
        let distinct = matches!(
            list.duplicate_treatment,
            Some(ast::DuplicateTreatment::Distinct)
        );
        let mut args = Vec::new();
        let mut star = false;
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(self.bind(x, &inner)?),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                _ => return Err(unsupported("this aggregate argument")),
            }
        }
        let name = func_name(f);
        let (args, ext_ty) = match af {
            AggFn::Ext(e) => {
                let (a, t) = self.bind_ext_agg_args(f, e, args, &inner)?;
                (a, Some(t))
            }
            _ => (args, None),
        };
        let arity_ok = match af {
            AggFn::Ext(_) => true,
            AggFn::Count => star || args.len() == 1,
            AggFn::StringAgg => args.len() == 2,
            _ => args.len() == 1,
        };
        if !arity_ok {
            return Err(no_func(&name, &args));
        }
        let at = args
            .first()
            .map(Expr::data_type)
            .unwrap_or(DataType::Unknown);
        let (f_kind, ty) = match af {
            AggFn::Count if star => (AggFn::CountStar, DataType::Int8),
            AggFn::Count => (AggFn::Count, DataType::Int8),
            AggFn::Sum => (
                af,
                match at {
                    DataType::Int2 | DataType::Int4 => DataType::Int8,
                    DataType::Int8 | DataType::Numeric(_) => DataType::Numeric(None),
                    DataType::Float4 => DataType::Float4,
                    DataType::Float8 | DataType::Unknown => DataType::Float8,
                    DataType::Interval => DataType::Interval,
                    _ => return Err(no_func(&name, &args)),
                },
            ),
            AggFn::Avg => (
                af,
                match at {
                    DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Numeric(_) => {
                        DataType::Numeric(None)
                    }
                    DataType::Float4 | DataType::Float8 | DataType::Unknown => DataType::Float8,
                    DataType::Interval => DataType::Interval,
                    _ => return Err(no_func(&name, &args)),
                },
            ),
            AggFn::Min | AggFn::Max => {
                if matches!(at, DataType::Json | DataType::Bool) {
                    return Err(no_func(&name, &args));
                }
                (af, out_type(&at))
            }
            AggFn::BoolAnd | AggFn::BoolOr => {
                if !matches!(at, DataType::Bool | DataType::Unknown) {
                    return Err(no_func(&name, &args));
                }
                (af, DataType::Bool)
            }
            AggFn::StringAgg => (af, DataType::Text),
            AggFn::ArrayAgg => (af, DataType::Array(Box::new(out_type(&at)))),
            AggFn::CountStar => (af, DataType::Int8),
            AggFn::Ext(_) => (af, ext_ty.clone().unwrap_or(DataType::Unknown)),
        };
        let args = match af {
            AggFn::StringAgg => args
                .into_iter()
                .map(|a| text_arg(a, "string_agg"))
                .collect::<Result<Vec<_>, _>>()?,
            AggFn::Sum | AggFn::Avg if at == DataType::Unknown => args
                .into_iter()
                .map(|a| coerce(a, &DataType::Float8, CastContext::Implicit))
                .collect::<Result<Vec<_>, _>>()?,
            _ => args
                .into_iter()
                .map(|a| {
                    if a.data_type() == DataType::Unknown {
                        coerce(a, &DataType::Text, CastContext::Implicit)
                    } else {
                        Ok(a)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let filter = match &f.filter {
            Some(x) => Some(self.bind_bool(x, &inner)?),
            None => None,
        };
        let key = e_key(f);
        let mut ag = ag.borrow_mut();
        let ng = ag.group_exprs.len();
        if let Some(j) = ag.aggs.iter().position(|(k, _)| *k == key) {
            return Ok(Expr::Column(ng + j, ty));
        }
        ag.aggs.push((
            key,
            AggSpec {
                f: f_kind,
                args,
                distinct,
                filter,
                ty: ty.clone(),
                order,
            },
        ));
        Ok(Expr::Column(ng + ag.aggs.len() - 1, ty))
    }

    fn function(&self, f: &ast::Function, cx: &Cx<'_>) -> Result<Expr, PgError> {
        let name = func_name(f);
        if name == "make_interval" && f.over.is_none() {
            return self.bind_make_interval(f, cx);
        }
        if f.over.is_some() {
            return Err(unsupported("window functions"));
        }
        let mut args = Vec::new();
        match &f.args {
            FunctionArguments::List(l) => {
                for a in &l.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => {
                            args.push(self.bind(x, cx)?)
                        }
                        _ => return Err(unsupported("this function argument")),
                    }
                }
            }
            FunctionArguments::None => {
                return match name.as_str() {
                    "current_user" | "session_user" | "user" | "current_role" => {
                        Ok(Expr::Const(Value::Text("postgres".into()), DataType::Text))
                    }
                    "current_schema" => {
                        Ok(Expr::Const(Value::Text("public".into()), DataType::Text))
                    }
                    "current_catalog" => {
                        Ok(Expr::Const(Value::Text("pgxc".into()), DataType::Text))
                    }
                    _ => self
                        .clock(&name)
                        .ok_or_else(|| unsupported(format!("{name} without arguments"))),
                };
            }
            FunctionArguments::Subquery(_) => return Err(unsupported("function over a subquery")),
        }
        let args = match self.bind_ext_function(&name, args)? {
            Ok(e) => return Ok(e),
            Err(args) => args,
        };
        let n = args.len();
        let one = |args: Vec<Expr>| args.into_iter().next();
        match (name.as_str(), n) {
            ("coalesce", _) if n > 0 => {
                let t = common_type(&args.iter().map(Expr::data_type).collect::<Vec<_>>())?;
                let items = args
                    .into_iter()
                    .map(|a| coerce(a, &t, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::Coalesce(items, t))
            }
            ("greatest" | "least", _) if n > 0 => {
                let t = common_type(&args.iter().map(Expr::data_type).collect::<Vec<_>>())?;
                let items = args
                    .into_iter()
                    .map(|a| coerce(a, &t, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::MinMax(items, name == "greatest", t))
            }
            ("nullif", 2) => {
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let a = if a.data_type() == DataType::Unknown && b.data_type() == DataType::Unknown
                {
                    coerce(a, &DataType::Text, CastContext::Implicit)?
                } else {
                    a
                };
                let (x, y) = self.coerce_pair(a.clone(), b, "=")?;
                let t = x.data_type();
                let eq = Expr::Binary(BinOp::Eq, Box::new(x.clone()), Box::new(y), DataType::Bool);
                let _ = a;
                Ok(Expr::NullIf(Box::new(eq), Box::new(x), t))
            }
            ("abs", 1) => {
                let x = num_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, "abs")?;
                let t = x.data_type().without_typmod();
                Ok(Expr::Func(Func::Abs, vec![x], t))
            }
            ("lower" | "upper" | "reverse", 1) => {
                let x = text_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                let func = match name.as_str() {
                    "lower" => Func::Lower,
                    "upper" => Func::Upper,
                    _ => Func::Reverse,
                };
                Ok(Expr::Func(func, vec![x], DataType::Text))
            }
            ("length" | "octet_length" | "bit_length", 1)
                if args[0].data_type() == DataType::Bytea =>
            {
                let func = if name == "bit_length" {
                    Func::BitLength
                } else {
                    Func::ByteaLength
                };
                Ok(Expr::Func(func, args, DataType::Int4))
            }
            ("bit_length", 1) => {
                let x = text_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                Ok(Expr::Func(Func::BitLength, vec![x], DataType::Int4))
            }
            ("length" | "char_length" | "character_length" | "octet_length", 1) => {
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                let func = if name == "octet_length" {
                    Func::OctetLength
                } else {
                    Func::Length
                };
                // octet_length(character(n)) counts the padding (bpcharoctetlen).
                let x = if name == "octet_length" && matches!(x.data_type(), DataType::Char(_)) {
                    x
                } else {
                    text_arg(x, &name)?
                };
                Ok(Expr::Func(func, vec![x], DataType::Int4))
            }
            ("substr" | "substring", 2 | 3) => {
                let mut it = args.into_iter();
                let mut v = Vec::new();
                if let Some(s) = it.next() {
                    v.push(text_arg(s, &name)?);
                }
                for a in it {
                    v.push(int_arg(a, &name)?);
                }
                Ok(Expr::Func(Func::Substr, v, DataType::Text))
            }
            ("btrim" | "ltrim" | "rtrim" | "trim", 1 | 2) => {
                let func = match name.as_str() {
                    "ltrim" => Func::Ltrim,
                    "rtrim" => Func::Rtrim,
                    _ => Func::Btrim,
                };
                let v = text_args(args, &name)?;
                Ok(Expr::Func(func, v, DataType::Text))
            }
            ("replace", 3) => {
                let v = text_args(args, &name)?;
                Ok(Expr::Func(Func::Replace, v, DataType::Text))
            }
            ("strpos", 2) => {
                let v = text_args(args, &name)?;
                Ok(Expr::Func(Func::Strpos, v, DataType::Int4))
            }
            ("repeat" | "left" | "right", 2) => {
                let mut it = args.into_iter();
                let (Some(s), Some(k)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let func = match name.as_str() {
                    "repeat" => Func::Repeat,
                    "left" => Func::Left,
                    _ => Func::Right,
                };
                Ok(Expr::Func(
                    func,
                    vec![text_arg(s, &name)?, int_arg(k, &name)?],
                    DataType::Text,
                ))
            }
            ("concat", _) => Ok(Expr::Func(Func::ConcatFn, args, DataType::Text)),
            ("pg_typeof", 1) => Ok(Expr::Func(Func::PgTypeof, args, DataType::Text)),
            ("round" | "trunc", 1) => {
                let x = num_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                self.math1(
                    if name == "round" {
                        Func::Round
                    } else {
                        Func::Trunc
                    },
                    x,
                )
            }
            ("round" | "trunc", 2) => {
                let mut it = args.into_iter();
                let (Some(x), Some(s)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let x = num_arg(x, &name)?;
                if matches!(x.data_type(), DataType::Float4 | DataType::Float8) {
                    return Err(no_func(&name, &[x, s]));
                }
                let x = coerce(x, &DataType::Numeric(None), CastContext::Implicit)?;
                let s = int_arg(s, &name)?;
                let func = if name == "round" {
                    Func::Round
                } else {
                    Func::Trunc
                };
                Ok(Expr::Func(func, vec![x, s], DataType::Numeric(None)))
            }
            ("ceil" | "ceiling" | "floor" | "sqrt" | "sign", 1) => {
                let x = num_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                let func = match name.as_str() {
                    "floor" => Func::Floor,
                    "sqrt" => Func::Sqrt,
                    "sign" => Func::Sign,
                    _ => Func::Ceil,
                };
                self.math1(func, x)
            }
            ("power" | "pow", 2) => {
                let v = args
                    .into_iter()
                    .map(|a| coerce(num_arg(a, &name)?, &DataType::Float8, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::Func(Func::Power, v, DataType::Float8))
            }
            ("mod", 2) => {
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let e = self.binary_expr(BinOp::Mod, a, b)?;
                match e {
                    Expr::Binary(_, a, b, t) => Ok(Expr::Func(Func::ModFn, vec![*a, *b], t)),
                    other => Ok(other),
                }
            }
            ("now" | "transaction_timestamp" | "statement_timestamp" | "clock_timestamp", 0) => {
                self.clock(&name).ok_or_else(|| no_func(&name, &[]))
            }
            ("date_part" | "date_trunc", 2) => {
                let mut it = args.into_iter();
                let (Some(fld), Some(x)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let fld = text_arg(fld, &name)?;
                let mut x = self.datetime_arg(x, &name)?;
                if name == "date_trunc" && x.data_type() == DataType::Date {
                    x = Expr::Cast(Box::new(x), DataType::Timestamptz, CastKind::Implicit);
                }
                let (func, t) = if name == "date_part" {
                    (Func::DatePart, DataType::Float8)
                } else {
                    (Func::DateTrunc, x.data_type())
                };
                Ok(Expr::Func(func, vec![fld, x], t))
            }
            (
                "make_date" | "make_time" | "make_timestamp" | "make_timestamptz" | "date_bin"
                | "to_date" | "to_timestamp" | "to_number" | "timezone" | "set_config"
                | "current_setting" | "pg_backend_pid" | "inet_server_port",
                _,
            ) => self.datetime_function(&name, args),
            ("age", 2) => {
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let (a, b) = self.coerce_pair(a, b, "-")?;
                let (a, b) = if a.data_type() == DataType::Date {
                    (
                        coerce(a, &DataType::Timestamp, CastContext::Implicit)?,
                        coerce(b, &DataType::Timestamp, CastContext::Implicit)?,
                    )
                } else {
                    (a, b)
                };
                if !matches!(a.data_type(), DataType::Timestamp | DataType::Timestamptz) {
                    return Err(no_func(&name, &[a, b]));
                }
                Ok(Expr::Func(Func::Age, vec![a, b], DataType::Interval))
            }
            ("justify_hours" | "justify_days" | "justify_interval", 1) => {
                let x = coerce(
                    one(args).ok_or_else(|| no_func(&name, &[]))?,
                    &DataType::Interval,
                    CastContext::Implicit,
                )?;
                let func = match name.as_str() {
                    "justify_hours" => Func::JustifyHours,
                    "justify_days" => Func::JustifyDays,
                    _ => Func::JustifyInterval,
                };
                Ok(Expr::Func(func, vec![x], DataType::Interval))
            }
            (
                "exp" | "ln" | "log10" | "log" | "cbrt" | "sin" | "cos" | "tan" | "asin" | "acos"
                | "atan" | "degrees" | "radians",
                1,
            ) => {
                let x = num_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                let x = coerce(x, &DataType::Float8, CastContext::Implicit)?;
                let func = match name.as_str() {
                    "exp" => Func::Exp,
                    "ln" => Func::Ln,
                    "log10" | "log" => Func::Log10,
                    "cbrt" => Func::Cbrt,
                    "sin" => Func::Sin,
                    "cos" => Func::Cos,
                    "tan" => Func::Tan,
                    "asin" => Func::Asin,
                    "acos" => Func::Acos,
                    "atan" => Func::Atan,
                    "degrees" => Func::Degrees,
                    _ => Func::Radians,
                };
                Ok(Expr::Func(func, vec![x], DataType::Float8))
            }
            ("atan2", 2) => {
                let v = args
                    .into_iter()
                    .map(|a| coerce(num_arg(a, &name)?, &DataType::Float8, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::Func(Func::Atan2, v, DataType::Float8))
            }
            ("pi", 0) => Ok(Expr::Const(
                Value::Float8(std::f64::consts::PI),
                DataType::Float8,
            )),
            ("initcap", 1) | ("ascii", 1) => {
                let x = text_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                Ok(if name == "initcap" {
                    Expr::Func(Func::Initcap, vec![x], DataType::Text)
                } else {
                    Expr::Func(Func::Ascii, vec![x], DataType::Int4)
                })
            }
            ("chr", 1) => {
                let x = int_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                Ok(Expr::Func(Func::Chr, vec![x], DataType::Text))
            }
            ("lpad" | "rpad", 2 | 3) => {
                let v = text_args_int_at(args, 1, &name)?;
                let func = if name == "lpad" {
                    Func::Lpad
                } else {
                    Func::Rpad
                };
                Ok(Expr::Func(func, v, DataType::Text))
            }
            ("split_part", 3) => {
                let v = text_args_int_at(args, 2, &name)?;
                Ok(Expr::Func(Func::SplitPart, v, DataType::Text))
            }
            ("starts_with", 2) | ("translate", 3) => {
                let v = text_args(args, &name)?;
                Ok(if name == "starts_with" {
                    Expr::Func(Func::StartsWith, v, DataType::Bool)
                } else {
                    Expr::Func(Func::Translate, v, DataType::Text)
                })
            }
            ("concat_ws", _) if n >= 1 => {
                let mut it = args.into_iter();
                let mut v = vec![text_arg(
                    it.next().ok_or_else(|| no_func(&name, &[]))?,
                    &name,
                )?];
                v.extend(it);
                Ok(Expr::Func(Func::ConcatWs, v, DataType::Text))
            }
            ("nextval" | "currval", 1) | ("setval", 2 | 3) => {
                let mut v = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    v.push(match i {
                        0 => text_arg(a, &name)?,
                        1 => coerce(a, &DataType::Int8, CastContext::Implicit)
                            .map_err(|_| no_func(&name, &[]))?,
                        _ => coerce(a, &DataType::Bool, CastContext::Implicit)?,
                    });
                }
                let func = match name.as_str() {
                    "nextval" => Func::NextVal,
                    "currval" => Func::CurrVal,
                    _ => Func::SetVal,
                };
                Ok(Expr::Func(func, v, DataType::Int8))
            }
            ("pg_get_serial_sequence", 2) => {
                let mut it = args.into_iter();
                let (Some(Expr::Const(Value::Text(t), _)), Some(Expr::Const(Value::Text(c), _))) =
                    (it.next(), it.next())
                else {
                    return Err(unsupported("pg_get_serial_sequence over expressions"));
                };
                Ok(Expr::Const(
                    Value::Text(format!("public.{t}_{c}_seq")),
                    DataType::Text,
                ))
            }
            ("array_length", 2) | ("cardinality", 1) => {
                let mut v = args;
                if !matches!(v[0].data_type(), DataType::Array(_)) {
                    return Err(no_func(&name, &v));
                }
                if v.len() == 2 {
                    v[1] = int_arg(v[1].clone(), &name)?;
                }
                Ok(Expr::Func(Func::ArrayLength, v, DataType::Int4))
            }
            ("array_append" | "array_prepend" | "array_cat", 2) => {
                let mut it = args.into_iter();
                let (Some(a), Some(b)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                self.binary_expr(BinOp::Concat, a, b)
            }
            ("array_to_string", 2 | 3) => {
                let mut v = args;
                if !matches!(v[0].data_type(), DataType::Array(_)) {
                    return Err(no_func(&name, &v));
                }
                for x in v.iter_mut().skip(1) {
                    *x = text_arg(x.clone(), &name)?;
                }
                Ok(Expr::Func(Func::ArrayToString, v, DataType::Text))
            }
            ("num_nulls" | "num_nonnulls", _) if n > 0 => {
                let func = if name == "num_nulls" {
                    Func::NumNulls
                } else {
                    Func::NumNonNulls
                };
                Ok(Expr::Func(func, args, DataType::Int4))
            }
            ("factorial", 1) => {
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                let x = match x.data_type() {
                    DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Unknown => {
                        coerce(x, &DataType::Int8, CastContext::Implicit)?
                    }
                    _ => return Err(no_func(&name, &[x])),
                };
                Ok(Expr::Func(
                    Func::Factorial,
                    vec![x],
                    DataType::Numeric(None),
                ))
            }
            ("div", 2) => {
                let v = args
                    .into_iter()
                    .map(|a| {
                        coerce(
                            num_arg(a, &name)?,
                            &DataType::Numeric(None),
                            CastContext::Implicit,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Expr::Func(Func::DivTrunc, v, DataType::Numeric(None)))
            }
            ("regexp_replace", 3 | 4)
            | ("regexp_match" | "regexp_split_to_array" | "regexp_like", 2 | 3) => {
                let v = text_args(args, &name)?;
                let (func, t) = match name.as_str() {
                    "regexp_replace" => (Func::RegexpReplace, DataType::Text),
                    "regexp_match" => {
                        (Func::RegexpMatch, DataType::Array(Box::new(DataType::Text)))
                    }
                    "regexp_like" => (Func::RegexpLike, DataType::Bool),
                    _ => (
                        Func::RegexpSplitToArray,
                        DataType::Array(Box::new(DataType::Text)),
                    ),
                };
                Ok(Expr::Func(func, v, t))
            }
            ("regexp_count", 2..=4) | ("regexp_instr", 2..=7) | ("regexp_substr", 2..=6) => {
                // Text at 0, 1 and at the flags position; integers elsewhere.
                let flags_at = match name.as_str() {
                    "regexp_count" => 3,
                    "regexp_instr" => 5,
                    _ => 4,
                };
                let v = args
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| {
                        if i < 2 || i == flags_at {
                            text_arg(a, &name)
                        } else {
                            int_arg(a, &name)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (func, t) = match name.as_str() {
                    "regexp_count" => (Func::RegexpCount, DataType::Int4),
                    "regexp_instr" => (Func::RegexpInstr, DataType::Int4),
                    _ => (Func::RegexpSubstr, DataType::Text),
                };
                Ok(Expr::Func(func, v, t))
            }
            (
                "jsonb_typeof" | "json_typeof" | "jsonb_array_length" | "json_array_length"
                | "jsonb_pretty" | "jsonb_strip_nulls" | "json_strip_nulls",
                1,
            ) => {
                let jt = if name.starts_with("jsonb") {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                let x = match x.data_type() {
                    DataType::Unknown => coerce(x, &jt, CastContext::Implicit)?,
                    t if t == jt => x,
                    _ => return Err(no_func(&name, &[x])),
                };
                let (func, t) = match name.as_str() {
                    "jsonb_typeof" | "json_typeof" => (Func::JsonTypeof, DataType::Text),
                    "jsonb_array_length" | "json_array_length" => {
                        (Func::JsonArrayLength, DataType::Int4)
                    }
                    "jsonb_pretty" => (Func::JsonPretty, DataType::Text),
                    _ => (Func::JsonStripNulls, jt),
                };
                Ok(Expr::Func(func, vec![x], t))
            }
            ("jsonb_build_object" | "json_build_object", _)
            | ("jsonb_build_array" | "json_build_array", _) => {
                let jt = if name.starts_with("jsonb") {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let v = args
                    .into_iter()
                    .map(|a| match a.data_type() {
                        DataType::Unknown => coerce(a, &DataType::Text, CastContext::Implicit),
                        _ => Ok(a),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let func = if name.ends_with("object") {
                    Func::JsonBuildObject
                } else {
                    Func::JsonBuildArray
                };
                Ok(Expr::Func(func, v, jt))
            }
            ("to_jsonb" | "to_json", 1) => {
                let jt = if name == "to_jsonb" {
                    DataType::Jsonb
                } else {
                    DataType::Json
                };
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                if x.data_type() == DataType::Unknown {
                    return Err(err(
                        SqlState::DatatypeMismatch,
                        "could not determine polymorphic type because input has type unknown",
                    ));
                }
                Ok(Expr::Func(Func::ToJson, vec![x], jt))
            }
            ("jsonb_set", 3 | 4) | ("jsonb_insert", 3 | 4) => {
                let mut v = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    let t = match i {
                        0 | 2 => DataType::Jsonb,
                        1 => DataType::Array(Box::new(DataType::Text)),
                        _ => DataType::Bool,
                    };
                    v.push(coerce(a, &t, CastContext::Implicit).map_err(|_| no_func(&name, &[]))?);
                }
                let func = if name == "jsonb_set" {
                    Func::JsonSet
                } else {
                    Func::JsonInsert
                };
                Ok(Expr::Func(func, v, DataType::Jsonb))
            }
            ("to_char", 2) => {
                let mut it = args.into_iter();
                let (Some(x), Some(f)) = (it.next(), it.next()) else {
                    return Err(no_func(&name, &[]));
                };
                let x = match x.data_type() {
                    DataType::Timestamp | DataType::Timestamptz | DataType::Interval => x,
                    DataType::Date => coerce(x, &DataType::Timestamp, CastContext::Implicit)?,
                    DataType::Float4 | DataType::Float8 => {
                        Expr::Cast(Box::new(x), DataType::Numeric(None), CastKind::Implicit)
                    }
                    t if num_rank(&t).is_some() => x,
                    _ => return Err(no_func(&name, &[x, f])),
                };
                let f = text_arg(f, &name)?;
                Ok(Expr::Func(Func::ToChar, vec![x, f], DataType::Text))
            }
            ("isfinite", 1) => {
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                match x.data_type() {
                    DataType::Date
                    | DataType::Timestamp
                    | DataType::Timestamptz
                    | DataType::Interval => {}
                    _ => return Err(no_func(&name, &[x])),
                }
                Ok(Expr::Func(Func::IsFinite, vec![x], DataType::Bool))
            }
            ("gcd" | "lcm", 2) => {
                let types: Vec<DataType> = args.iter().map(Expr::data_type).collect();
                let t = common_type(&types).map_err(|_| no_func(&name, &args))?;
                let t = match t {
                    DataType::Int2 | DataType::Int4 | DataType::Unknown => DataType::Int4,
                    DataType::Int8 => DataType::Int8,
                    _ => return Err(no_func(&name, &args)),
                };
                let v = args
                    .into_iter()
                    .map(|a| coerce(a, &t, CastContext::Implicit))
                    .collect::<Result<Vec<_>, _>>()?;
                let func = if name == "gcd" { Func::Gcd } else { Func::Lcm };
                Ok(Expr::Func(func, v, t))
            }
            ("width_bucket", 4) => {
                let mut v = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    v.push(if i < 3 {
                        coerce(num_arg(a, &name)?, &DataType::Float8, CastContext::Implicit)?
                    } else {
                        int_arg(a, &name)?
                    });
                }
                Ok(Expr::Func(Func::WidthBucket, v, DataType::Int4))
            }
            ("scale" | "min_scale" | "trim_scale", 1) => {
                let x = num_arg(one(args).ok_or_else(|| no_func(&name, &[]))?, &name)?;
                if matches!(x.data_type(), DataType::Float4 | DataType::Float8) {
                    return Err(no_func(&name, &[x]));
                }
                let x = coerce(x, &DataType::Numeric(None), CastContext::Implicit)?;
                let (func, t) = match name.as_str() {
                    "scale" => (Func::Scale, DataType::Int4),
                    "min_scale" => (Func::MinScale, DataType::Int4),
                    _ => (Func::TrimScale, DataType::Numeric(None)),
                };
                Ok(Expr::Func(func, vec![x], t))
            }
            ("to_hex", 1) => {
                let x = one(args).ok_or_else(|| no_func(&name, &[]))?;
                let x = match x.data_type() {
                    DataType::Int8 => x,
                    DataType::Int2 | DataType::Int4 | DataType::Unknown => {
                        coerce(x, &DataType::Int4, CastContext::Implicit)?
                    }
                    _ => return Err(no_func(&name, &[x])),
                };
                Ok(Expr::Func(Func::ToHex, vec![x], DataType::Text))
            }
            ("array_remove" | "array_position" | "array_positions", 2) | ("array_replace", 3) => {
                let mut it = args.into_iter();
                let a = it.next().ok_or_else(|| no_func(&name, &[]))?;
                let at = a.data_type();
                let DataType::Array(et) = at.clone() else {
                    return Err(no_func(&name, &[a]));
                };
                let mut v = vec![a];
                for x in it {
                    v.push(coerce(x, &et, CastContext::Implicit).map_err(|_| no_func(&name, &[]))?);
                }
                let (func, t) = match name.as_str() {
                    "array_remove" => (Func::ArrayRemove, at),
                    "array_replace" => (Func::ArrayReplace, at),
                    "array_position" => (Func::ArrayPosition, DataType::Int4),
                    _ => (
                        Func::ArrayPositions,
                        DataType::Array(Box::new(DataType::Int4)),
                    ),
                };
                Ok(Expr::Func(func, v, t))
            }
            ("string_to_array", 2 | 3) => {
                let v = text_args(args, &name)?;
                Ok(Expr::Func(
                    Func::StringToArray,
                    v,
                    DataType::Array(Box::new(DataType::Text)),
                ))
            }
            ("array_lower" | "array_upper", 2) | ("array_dims" | "array_ndims", 1) => {
                let mut v = args;
                if !matches!(v[0].data_type(), DataType::Array(_)) {
                    return Err(no_func(&name, &v));
                }
                if v.len() == 2 {
                    v[1] = int_arg(v[1].clone(), &name)?;
                }
                let (func, t) = match name.as_str() {
                    "array_lower" => (Func::ArrayLower, DataType::Int4),
                    "array_upper" => (Func::ArrayUpper, DataType::Int4),
                    "array_dims" => (Func::ArrayDims, DataType::Text),
                    _ => (Func::ArrayNdims, DataType::Int4),
                };
                Ok(Expr::Func(func, v, t))
            }
            ("encode", 2) | ("get_byte", 2) | ("set_byte", 3) => {
                let mut it = args.into_iter();
                let b = it.next().ok_or_else(|| no_func(&name, &[]))?;
                let b = match b.data_type() {
                    DataType::Bytea => b,
                    DataType::Unknown => coerce(b, &DataType::Bytea, CastContext::Implicit)?,
                    _ => return Err(no_func(&name, &[b])),
                };
                let mut v = vec![b];
                for x in it {
                    v.push(if name == "encode" {
                        text_arg(x, &name)?
                    } else {
                        int_arg(x, &name)?
                    });
                }
                let (func, t) = match name.as_str() {
                    "encode" => (Func::Encode, DataType::Text),
                    "get_byte" => (Func::GetByte, DataType::Int4),
                    _ => (Func::SetByte, DataType::Bytea),
                };
                Ok(Expr::Func(func, v, t))
            }
            ("decode", 2) => {
                let v = text_args(args, &name)?;
                Ok(Expr::Func(Func::Decode, v, DataType::Bytea))
            }
            ("similar_to_escape", 1 | 2) => {
                let v = text_args(args, &name)?;
                Ok(Expr::Func(Func::SimilarEscape, v, DataType::Text))
            }
            ("version", 0) => Ok(Expr::Const(
                Value::Text("PostgreSQL 15.0 (pgxc) on x86_64-pc-linux-gnu".into()),
                DataType::Text,
            )),
            ("current_database", 0) => Ok(Expr::Const(Value::Text("pgxc".into()), DataType::Text)),
            ("current_schema", 0) => Ok(Expr::Const(
                self.path_schemas()?
                    .into_iter()
                    .next()
                    .map(Value::Text)
                    .unwrap_or(Value::Null),
                DataType::Text,
            )),
            _ => Err(no_func(&name, &args)),
        }
    }
}

fn e_key(f: &ast::Function) -> String {
    f.to_string()
}

/// `time(p)`, `timetz(p)`, `timestamp(p)`, `timestamptz(p)` with `p` < 6: the type without the
/// precision and the precision (PostgreSQL treats `p` > 6 as 6, so those need no rounding).
fn split_precision(dt: &ast::DataType) -> Option<(ast::DataType, u32)> {
    match dt {
        ast::DataType::Time(Some(p), tz) if *p < 6 => {
            Some((ast::DataType::Time(None, *tz), *p as u32))
        }
        ast::DataType::Timestamp(Some(p), tz) if *p < 6 => {
            Some((ast::DataType::Timestamp(None, *tz), *p as u32))
        }
        _ => None,
    }
}

/// Round a time or timestamp expression of type `ty` to `p` fractional digits.
fn round_precision(e: Expr, p: u32, ty: DataType) -> Expr {
    Expr::Func(
        Func::DateTime(crate::types::dtfunc::DtFunc::RoundPrecision),
        vec![e, Expr::Const(Value::Int4(p as i32), DataType::Int4)],
        ty,
    )
}

/// Binding of the date/time functions and operators of [`crate::types::dtfunc`] and of the
/// settings functions.
impl Exec<'_> {
    /// `time`/`timetz` arithmetic and `date + time`: the operand types are already checked.
    fn time_arith(&self, op: BinOp, a: Expr, b: Expr) -> Result<Expr, PgError> {
        use crate::types::dtfunc::DtFunc as D;
        use DataType as T;
        let f = |g: D, args: Vec<Expr>, t: T| Expr::Func(Func::DateTime(g), args, t);
        let neg = |e: Expr| Expr::Neg(Box::new(e), T::Interval);
        Ok(match (a.data_type(), b.data_type(), op) {
            (T::Time, T::Interval, BinOp::Add) => f(D::TimePlusInterval, vec![a, b], T::Time),
            (T::Time, T::Interval, _) => f(D::TimePlusInterval, vec![a, neg(b)], T::Time),
            (T::Interval, T::Time, _) => f(D::TimePlusInterval, vec![b, a], T::Time),
            (T::Timetz, T::Interval, BinOp::Add) => f(D::TimetzPlusInterval, vec![a, b], T::Timetz),
            (T::Timetz, T::Interval, _) => f(D::TimetzPlusInterval, vec![a, neg(b)], T::Timetz),
            (T::Interval, T::Timetz, _) => f(D::TimetzPlusInterval, vec![b, a], T::Timetz),
            (T::Time, T::Time, _) => f(D::TimeMinusTime, vec![a, b], T::Interval),
            (T::Date, T::Time, _) => f(D::DatePlusTime, vec![a, b], T::Timestamp),
            (T::Time, T::Date, _) => f(D::DatePlusTime, vec![b, a], T::Timestamp),
            (T::Date, T::Timetz, _) => f(D::DatePlusTimetz, vec![a, b], T::Timestamptz),
            (T::Timetz, T::Date, _) => f(D::DatePlusTimetz, vec![b, a], T::Timestamptz),
            (ta, tb, _) => return Err(no_op(op.symbol(), &ta, &tb)),
        })
    }

    /// `inet`/`cidr` `<<` (is contained by) and `>>` (contains); an unknown literal is read as
    /// `inet`.
    pub(super) fn inet_op(
        &self,
        op: &ast::BinaryOperator,
        a: Expr,
        b: Expr,
    ) -> Result<Expr, PgError> {
        use crate::types::inet::InetOp;
        let sym = op.to_string();
        let side = |e: Expr| -> Result<Expr, PgError> {
            match e.data_type() {
                DataType::Inet | DataType::Cidr => Ok(e),
                DataType::Unknown => coerce(e, &DataType::Inet, CastContext::Implicit),
                t => Err(no_op(&sym, &t, &DataType::Inet)),
            }
        };
        let (a, b) = (side(a)?, side(b)?);
        let f = match op {
            ast::BinaryOperator::PGBitwiseShiftLeft => InetOp::ContainedBy,
            ast::BinaryOperator::PGBitwiseShiftRight => InetOp::Contains,
            _ => return Err(no_op(&sym, &a.data_type(), &b.data_type())),
        };
        Ok(Expr::Func(Func::Inet(f), vec![a, b], DataType::Bool))
    }

    /// `x AT TIME ZONE zone` / `timezone(zone, x)`: timestamp → timestamptz, timestamptz →
    /// timestamp, timetz → timetz; the zone is text or an interval.
    fn at_time_zone(&self, zone: Expr, x: Expr) -> Result<Expr, PgError> {
        use DataType as T;
        let zone = match zone.data_type() {
            T::Interval => zone,
            _ => text_arg(zone, "timezone")?,
        };
        let x = match x.data_type() {
            T::Timestamp | T::Timestamptz | T::Timetz => x,
            T::Unknown | T::Date => coerce(x, &T::Timestamptz, CastContext::Implicit)?,
            T::Time => coerce(x, &T::Timetz, CastContext::Implicit)?,
            _ => return Err(no_func("timezone", &[zone, x])),
        };
        let ty = match x.data_type() {
            T::Timestamp => T::Timestamptz,
            T::Timestamptz => T::Timestamp,
            t => t,
        };
        Ok(Expr::Func(
            Func::DateTime(crate::types::dtfunc::DtFunc::AtTimeZone),
            vec![zone, x],
            ty,
        ))
    }

    /// `(s1, e1) OVERLAPS (s2, e2)`: an end may be an interval (added to its start).
    fn bind_overlaps(&self, left: &A, right: &A, cx: &Cx<'_>) -> Result<Expr, PgError> {
        let pair = |e: &A| -> Result<(Expr, Expr), PgError> {
            match e {
                A::Tuple(items) if items.len() == 2 => {
                    let s = self.bind(&items[0], cx)?;
                    let e = self.bind(&items[1], cx)?;
                    let e = if e.data_type() == DataType::Interval {
                        self.binary_expr(BinOp::Add, s.clone(), e)?
                    } else {
                        e
                    };
                    Ok((s, e))
                }
                _ => Err(err(
                    SqlState::SyntaxError,
                    "wrong number of parameters on left side of OVERLAPS expression",
                )),
            }
        };
        let (s1, e1) = pair(left)?;
        let (s2, e2) = pair(right)?;
        let mut args = vec![s1, e1, s2, e2];
        let types: Vec<DataType> = args.iter().map(Expr::data_type).collect();
        let t = common_type(&types)?;
        let t = match t {
            DataType::Unknown => DataType::Timestamptz,
            DataType::Date
            | DataType::Time
            | DataType::Timetz
            | DataType::Timestamp
            | DataType::Timestamptz => t,
            _ => return Err(no_func("overlaps", &args)),
        };
        args = args
            .into_iter()
            .map(|a| coerce(a, &t, CastContext::Implicit))
            .collect::<Result<_, _>>()?;
        Ok(Expr::Func(
            Func::DateTime(crate::types::dtfunc::DtFunc::Overlaps),
            args,
            DataType::Bool,
        ))
    }

    /// `make_interval(years, months, weeks, days, hours, mins, secs)` with positional or named
    /// (`days => 10`) arguments, all defaulting to 0.
    fn bind_make_interval(&self, f: &ast::Function, cx: &Cx<'_>) -> Result<Expr, PgError> {
        const NAMES: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];
        let mut slots: Vec<Option<Expr>> = vec![None; 7];
        let list = match &f.args {
            FunctionArguments::List(l) => l.args.as_slice(),
            FunctionArguments::None => &[],
            FunctionArguments::Subquery(_) => return Err(unsupported("function over a subquery")),
        };
        let mut pos = 0;
        for a in list {
            let (slot, x) = match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => {
                    pos += 1;
                    (pos - 1, x)
                }
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(x),
                    ..
                } => {
                    let n = normalize_ident(name);
                    let i = NAMES.iter().position(|k| *k == n).ok_or_else(|| {
                        err(
                            SqlState::UndefinedFunction,
                            format!("function make_interval({n} => ...) does not exist"),
                        )
                    })?;
                    (i, x)
                }
                FunctionArg::ExprNamed {
                    name: A::Identifier(name),
                    arg: FunctionArgExpr::Expr(x),
                    ..
                } => {
                    let n = normalize_ident(name);
                    let i = NAMES.iter().position(|k| *k == n).ok_or_else(|| {
                        err(
                            SqlState::UndefinedFunction,
                            format!("function make_interval({n} => ...) does not exist"),
                        )
                    })?;
                    (i, x)
                }
                _ => return Err(unsupported("this function argument")),
            };
            if slot >= 7 {
                return Err(err(
                    SqlState::UndefinedFunction,
                    "function make_interval with more than 7 arguments does not exist",
                ));
            }
            slots[slot] = Some(self.bind(x, cx)?);
        }
        let mut args = Vec::with_capacity(7);
        for (i, s) in slots.into_iter().enumerate() {
            let ty = if i == 6 {
                DataType::Float8
            } else {
                DataType::Int4
            };
            let e = s.unwrap_or(Expr::Const(Value::Int4(0), DataType::Int4));
            args.push(
                coerce(e, &ty, CastContext::Implicit).map_err(|_| no_func("make_interval", &[]))?,
            );
        }
        Ok(Expr::Func(
            Func::DateTime(crate::types::dtfunc::DtFunc::MakeInterval),
            args,
            DataType::Interval,
        ))
    }

    /// The date/time constructors and conversions and the settings functions by name.
    fn datetime_function(&self, name: &str, args: Vec<Expr>) -> Result<Expr, PgError> {
        use crate::types::dtfunc::DtFunc as D;
        use DataType as T;
        let n = args.len();
        let typed = |args: Vec<Expr>, tys: &[T]| -> Result<Vec<Expr>, PgError> {
            let all = args.clone();
            args.into_iter()
                .zip(tys)
                .map(|(a, t)| {
                    let r = if t.is_string() {
                        text_arg(a, name)
                    } else {
                        coerce(a, t, CastContext::Implicit)
                    };
                    r.map_err(|_| no_func(name, &all))
                })
                .collect()
        };
        let dt = |g: D, args: Vec<Expr>, ty: T| Ok(Expr::Func(Func::DateTime(g), args, ty));
        let i = T::Int4;
        let fl = T::Float8;
        match (name, n) {
            ("make_date", 3) => dt(
                D::MakeDate,
                typed(args, &[i.clone(), i.clone(), i])?,
                T::Date,
            ),
            ("make_time", 3) => dt(D::MakeTime, typed(args, &[i.clone(), i, fl])?, T::Time),
            ("make_timestamp", 6) => dt(
                D::MakeTimestamp,
                typed(args, &[i.clone(), i.clone(), i.clone(), i.clone(), i, fl])?,
                T::Timestamp,
            ),
            ("make_timestamptz", 6 | 7) => dt(
                D::MakeTimestamptz,
                typed(
                    args,
                    &[i.clone(), i.clone(), i.clone(), i.clone(), i, fl, T::Text],
                )?,
                T::Timestamptz,
            ),
            ("date_bin", 3) => {
                let mut it = args.into_iter();
                let (Some(stride), Some(src), Some(origin)) = (it.next(), it.next(), it.next())
                else {
                    return Err(no_func(name, &[]));
                };
                let ty = match (src.data_type(), origin.data_type()) {
                    (T::Timestamp, T::Timestamp | T::Unknown)
                    | (T::Unknown | T::Date, T::Timestamp) => T::Timestamp,
                    (T::Timestamptz, _) | (_, T::Timestamptz) | (T::Unknown, T::Unknown) => {
                        T::Timestamptz
                    }
                    (T::Timestamp, T::Date) | (T::Date, T::Date) => T::Timestamp,
                    _ => return Err(no_func(name, &[stride, src, origin])),
                };
                dt(
                    D::DateBin,
                    typed(
                        vec![stride, src, origin],
                        &[T::Interval, ty.clone(), ty.clone()],
                    )?,
                    ty,
                )
            }
            ("to_date", 2) => dt(D::ToDate, typed(args, &[T::Text, T::Text])?, T::Date),
            ("to_timestamp", 2) => dt(
                D::ToTimestamp,
                typed(args, &[T::Text, T::Text])?,
                T::Timestamptz,
            ),
            ("to_timestamp", 1) => dt(D::ToTimestampEpoch, typed(args, &[fl])?, T::Timestamptz),
            ("to_number", 2) => dt(
                D::ToNumber,
                typed(args, &[T::Text, T::Text])?,
                T::Numeric(None),
            ),
            ("timezone", 2) => {
                let mut it = args.into_iter();
                let (Some(z), Some(x)) = (it.next(), it.next()) else {
                    return Err(no_func(name, &[]));
                };
                self.at_time_zone(z, x)
            }
            ("current_setting", 1) => Ok(Expr::Func(
                Func::CurrentSetting,
                typed(args, &[T::Text])?,
                T::Text,
            )),
            ("current_setting", 2) => Ok(Expr::Func(
                Func::CurrentSetting,
                typed(args, &[T::Text, T::Bool])?,
                T::Text,
            )),
            ("set_config", 3) => Ok(Expr::Func(
                Func::SetConfig,
                typed(args, &[T::Text, T::Text, T::Bool])?,
                T::Text,
            )),
            ("pg_backend_pid", 0) => Ok(Expr::Func(Func::BackendPid, args, T::Int4)),
            // No TCP port in the standalone engine: NULL, as PostgreSQL over a Unix socket.
            ("inet_server_port", 0) => Ok(Expr::Const(Value::Null, T::Int4)),
            _ => Err(no_func(name, &args)),
        }
    }
}

impl Exec<'_> {
    /// `'name'::regclass`: the relation named by a constant (PostgreSQL's identifier rules:
    /// unquoted parts fold to lower case, `schema.name` allowed), as its regclass text (the name,
    /// qualified when not first on the search path). pgxc has no OIDs: a regclass is compared by
    /// that name (`pg_constraint.conrelid` holds the same text). Errors: 42P01 unknown relation,
    /// 0A000 for a non-constant operand.
    fn regclass(&self, expr: &A, cx: &Cx) -> Result<Expr, PgError> {
        let bound = self.bind(expr, cx)?;
        let Expr::Const(v, _) = &bound else {
            return Err(err(
                SqlState::FeatureNotSupported,
                "regclass of a non-constant expression is not supported",
            ));
        };
        let raw = match v {
            Value::Null => return Ok(Expr::Const(Value::Null, DataType::Text)),
            Value::Text(s) => s.clone(),
            other => {
                return Err(err(
                    SqlState::FeatureNotSupported,
                    format!("cannot cast {other:?} to regclass"),
                ))
            }
        };
        let fold = |p: &str| {
            let p = p.trim();
            if p.len() >= 2 && p.starts_with('"') && p.ends_with('"') {
                p[1..p.len() - 1].replace("\"\"", "\"")
            } else {
                p.to_ascii_lowercase()
            }
        };
        let parts: Vec<String> = raw.split('.').map(fold).collect();
        let (schema, name) = match parts.as_slice() {
            [n] => (None, n.clone()),
            [s, n] => (Some(s.clone()), n.clone()),
            _ => {
                return Err(err(
                    SqlState::InvalidName,
                    format!("improper relation name (too many dotted names): {raw}"),
                ))
            }
        };
        let Some(def) = self.lookup_table(schema.as_deref(), &name)? else {
            return Err(err(
                SqlState::UndefinedTable,
                format!("relation \"{raw}\" does not exist"),
            ));
        };
        let path = self.path_schemas()?;
        Ok(Expr::Const(
            Value::Text(super::query::regclass_name(&def.schema, &def.name, &path)),
            DataType::Text,
        ))
    }
}
