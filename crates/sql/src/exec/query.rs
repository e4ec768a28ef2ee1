//! SELECT, VALUES, set operations, joins, grouping and aggregates.

use super::*;

#[derive(Clone, Copy, PartialEq)]
enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// Where a projection item comes from.
enum OrderSrc {
    Col(usize),
    Expr(Expr),
}

/// One aggregate's running state.
#[derive(Clone, Debug)]
pub(super) struct Acc {
    count: i64,
    value: Value,
    fsum: f64,
    strings: Option<String>,
    items: Vec<Value>,
    seen: std::collections::HashSet<Vec<u8>>,
    /// Inputs of an ordered aggregate: (arguments, sort keys), replayed sorted at the end.
    pending: Vec<(Vec<Value>, Vec<Value>)>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            count: 0,
            value: Value::Null,
            fsum: 0.0,
            strings: None,
            items: Vec::new(),
            seen: Default::default(),
            pending: Vec::new(),
        }
    }
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int2(x) => Some(i64::from(*x)),
        Value::Int4(x) => Some(i64::from(*x)),
        Value::Int8(x) => Some(*x),
        _ => None,
    }
}

fn numeric_of(v: &Value) -> Option<Numeric> {
    match v {
        Value::Numeric(n) => Some(n.clone()),
        other => int_of(other).map(Numeric::from_i64),
    }
}

fn float_of(v: &Value) -> f64 {
    match v {
        Value::Float4(x) => f64::from(*x),
        Value::Float8(x) => *x,
        Value::Numeric(n) => n.to_f64(),
        other => int_of(other).unwrap_or(0) as f64,
    }
}

fn overflow(ty: &str) -> PgError {
    err(
        SqlState::NumericValueOutOfRange,
        format!("{ty} out of range"),
    )
}

impl AggSpec {
    fn step(&self, acc: &mut Acc, args: Vec<Value>) -> Result<(), PgError> {
        let a0 = args.first().cloned().unwrap_or(Value::Null);
        if self.f != AggFn::CountStar && self.f != AggFn::ArrayAgg && a0.is_null() {
            return Ok(());
        }
        if self.distinct && !acc.seen.insert(row_key(&args)) {
            return Ok(());
        }
        acc.count += 1;
        match self.f {
            AggFn::Count | AggFn::CountStar => {}
            AggFn::Sum | AggFn::Avg => match &self.ty {
                DataType::Float4 | DataType::Float8 => acc.fsum += float_of(&a0),
                DataType::Int8 if self.f == AggFn::Sum => {
                    let cur = int_of(&acc.value).unwrap_or(0);
                    let x = int_of(&a0).unwrap_or(0);
                    acc.value = Value::Int8(cur.checked_add(x).ok_or_else(|| overflow("bigint"))?);
                }
                DataType::Interval => {
                    acc.value = match (&acc.value, &a0) {
                        (Value::Interval(a), Value::Interval(b)) => {
                            Value::Interval(crate::types::datetime::interval_add(a, b)?)
                        }
                        _ => a0.clone(),
                    }
                }
                _ => {
                    let x = numeric_of(&a0).unwrap_or_else(Numeric::zero);
                    acc.value = Value::Numeric(match &acc.value {
                        Value::Numeric(n) => n.add(&x)?,
                        _ => x,
                    });
                }
            },
            AggFn::Min | AggFn::Max => {
                let replace = acc.value.is_null() || {
                    let o = compare(&a0, &acc.value).unwrap_or(Ordering::Equal);
                    if self.f == AggFn::Min {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    }
                };
                if replace {
                    acc.value = a0;
                }
            }
            AggFn::BoolAnd | AggFn::BoolOr => {
                let b = bool_of(&a0);
                acc.value = Value::Bool(match &acc.value {
                    Value::Bool(c) => {
                        if self.f == AggFn::BoolAnd {
                            *c && b
                        } else {
                            *c || b
                        }
                    }
                    _ => b,
                });
            }
            AggFn::StringAgg => {
                let s = match &a0 {
                    Value::Text(s) => s.clone(),
                    other => other.to_text(&DataType::Text, &TimeZone::default()),
                };
                match &mut acc.strings {
                    None => acc.strings = Some(s),
                    Some(cur) => {
                        if let Some(Value::Text(d)) = args.get(1) {
                            cur.push_str(d);
                        }
                        cur.push_str(&s);
                    }
                }
            }
            AggFn::ArrayAgg => acc.items.push(a0),
        }
        Ok(())
    }

    fn finish(&self, acc: &Acc) -> Result<Value, PgError> {
        Ok(match self.f {
            AggFn::Count | AggFn::CountStar => Value::Int8(acc.count),
            _ if acc.count == 0 => Value::Null,
            AggFn::Sum => match &self.ty {
                DataType::Float4 => Value::Float4(acc.fsum as f32),
                DataType::Float8 => Value::Float8(acc.fsum),
                _ => acc.value.clone(),
            },
            AggFn::Avg => match &self.ty {
                DataType::Float8 => Value::Float8(acc.fsum / acc.count as f64),
                DataType::Interval => match &acc.value {
                    Value::Interval(iv) => {
                        Value::Interval(crate::types::datetime::interval_div(iv, acc.count as f64)?)
                    }
                    _ => Value::Null,
                },
                _ => match &acc.value {
                    Value::Numeric(n) => Value::Numeric(n.div(&Numeric::from_i64(acc.count))?),
                    _ => Value::Null,
                },
            },
            AggFn::Min | AggFn::Max | AggFn::BoolAnd | AggFn::BoolOr => acc.value.clone(),
            AggFn::StringAgg => acc.strings.clone().map(Value::Text).unwrap_or(Value::Null),
            AggFn::ArrayAgg => Value::Array(acc.items.clone()),
        })
    }
}

/// A fresh aggregate state.
pub(super) fn new_acc() -> Acc {
    Acc::new()
}

/// Feed one input row's arguments to an aggregate.
pub(super) fn agg_step(spec: &AggSpec, acc: &mut Acc, args: Vec<Value>) -> Result<(), PgError> {
    spec.step(acc, args)
}

/// An aggregate's result.
pub(super) fn agg_finish(spec: &AggSpec, acc: &Acc) -> Result<Value, PgError> {
    spec.finish(acc)
}

fn proj_name(e: &A) -> String {
    match e {
        A::Identifier(i) => normalize_ident(i),
        A::CompoundIdentifier(v) => v.last().map(normalize_ident).unwrap_or_default(),
        A::Function(f) => func_name(f),
        A::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            A::Identifier(_) | A::CompoundIdentifier(_) => proj_name(expr),
            _ => parse_type(data_type)
                .map(|t| t.base_name().to_string())
                .unwrap_or_else(|_| "?column?".into()),
        },
        A::Nested(x) => proj_name(x),
        A::Case { .. } => "case".into(),
        A::Exists { .. } => "exists".into(),
        A::Subquery(q) => match q.body.as_ref() {
            ast::SetExpr::Select(s) => match s.projection.first() {
                Some(ast::SelectItem::ExprWithAlias { alias, .. }) => normalize_ident(alias),
                Some(ast::SelectItem::UnnamedExpr(x)) => proj_name(x),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        A::Substring { .. } => "substring".into(),
        A::Trim { .. } => "btrim".into(),
        A::Position { .. } => "position".into(),
        A::Ceil { .. } => "ceil".into(),
        A::Floor { .. } => "floor".into(),
        A::Extract { .. } => "extract".into(),
        _ => "?column?".into(),
    }
}

impl<'a> Exec<'a> {
    /// Run a query (CTEs, body, ORDER BY, LIMIT/OFFSET/FETCH) into a materialized relation.
    pub(super) fn query(&self, q: &ast::Query) -> Result<Rel, PgError> {
        let depth = self.ctes.borrow().len();
        let r = self.query_inner(q);
        self.ctes.borrow_mut().truncate(depth);
        r
    }

    fn query_inner(&self, q: &ast::Query) -> Result<Rel, PgError> {
        if let Some(w) = &q.with {
            for cte in &w.cte_tables {
                let name = normalize_ident(&cte.alias.name);
                if w.recursive && mentions(&cte.query.to_string(), &name) {
                    let rel = self.recursive_cte(&name, cte)?;
                    self.ctes.borrow_mut().push((name, rel));
                    continue;
                }
                let mut rel = self.query(&cte.query)?;
                for (c, a) in rel.cols.iter_mut().zip(&cte.alias.columns) {
                    c.name = normalize_ident(&a.name);
                }
                self.ctes.borrow_mut().push((name, rel));
            }
        }
        let order: &[ast::OrderByExpr] = match &q.order_by {
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(v),
                ..
            }) => v,
            Some(_) => return Err(unsupported("ORDER BY ALL")),
            None => &[],
        };
        let mut rel = match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.select(s, order)?,
            other => {
                let mut r = self.set_expr(other)?;
                if !order.is_empty() {
                    self.sort_output(&mut r, order)?;
                }
                r
            }
        };
        let (mut limit, mut offset) = (None, None);
        match &q.limit_clause {
            Some(ast::LimitClause::LimitOffset {
                limit: l,
                offset: o,
                ..
            }) => {
                limit = l.as_ref();
                offset = o.as_ref().map(|o| &o.value);
            }
            Some(ast::LimitClause::OffsetCommaLimit {
                offset: o,
                limit: l,
            }) => {
                limit = Some(l);
                offset = Some(o);
            }
            None => {}
        }
        let mut limit_n = match limit {
            Some(e) => self.const_count(e, "LIMIT")?,
            None => None,
        };
        if let Some(f) = &q.fetch {
            limit_n = match &f.quantity {
                Some(e) => self.const_count(e, "FETCH")?,
                None => Some(1),
            };
        }
        let offset_n = match offset {
            Some(e) => self.const_count(e, "OFFSET")?.unwrap_or(0),
            None => 0,
        };
        if offset_n > 0 {
            let k = rel.rows.len().min(offset_n);
            rel.rows.drain(..k);
        }
        if let Some(n) = limit_n {
            rel.rows.truncate(n);
        }
        // Unknown-typed outputs (bare literals) resolve to text, except inside set operations.
        for c in rel.cols.iter_mut() {
            c.ty = out_type(&c.ty);
        }
        Ok(rel)
    }

    /// `WITH RECURSIVE name AS (base UNION [ALL] recursive)`: PostgreSQL's iteration over a
    /// working table, materialized. Errors: 42P19 without a non-recursive term; 54000 after
    /// 100,000 rows (a runaway recursion).
    fn recursive_cte(&self, name: &str, cte: &ast::Cte) -> Result<Rel, PgError> {
        let ast::SetExpr::SetOperation {
            left,
            op: ast::SetOperator::Union,
            set_quantifier,
            right,
        } = cte.query.body.as_ref()
        else {
            return Err(err(
                SqlState::InvalidRecursion,
                format!(
                    "recursive query \"{name}\" does not have the form non-recursive-term UNION [ALL] recursive-term"
                ),
            ));
        };
        if mentions(&left.to_string(), name) {
            return Err(err(
                SqlState::InvalidRecursion,
                format!("recursive reference to query \"{name}\" must not appear within its non-recursive term"),
            ));
        }
        let all = matches!(set_quantifier, ast::SetQuantifier::All);
        let mut result = self.set_expr(left)?;
        for (c, a) in result.cols.iter_mut().zip(&cte.alias.columns) {
            c.name = normalize_ident(&a.name);
        }
        for c in result.cols.iter_mut() {
            c.ty = out_type(&c.ty);
            c.table = None;
        }
        let mut seen = std::collections::HashSet::new();
        if !all {
            result.rows.retain(|r| seen.insert(row_key(r)));
        }
        let mut working = result.rows.clone();
        while !working.is_empty() {
            self.ctes.borrow_mut().push((
                name.to_string(),
                Rel {
                    cols: result.cols.clone(),
                    rows: std::mem::take(&mut working),
                },
            ));
            let step = self.set_expr(right);
            self.ctes.borrow_mut().pop();
            let step = step?;
            if step.cols.len() != result.cols.len() {
                return Err(err(
                    SqlState::SyntaxError,
                    "each UNION query must have the same number of columns",
                ));
            }
            for mut row in step.rows {
                for (v, (from, to)) in row.iter_mut().zip(step.cols.iter().zip(&result.cols)) {
                    let f = out_type(&from.ty);
                    if f != to.ty {
                        *v = cast_value(
                            std::mem::replace(v, Value::Null),
                            &f,
                            &to.ty,
                            CastContext::Assignment,
                            &self.cx.tz,
                        )?;
                    }
                }
                if all || seen.insert(row_key(&row)) {
                    working.push(row);
                }
            }
            result.rows.extend(working.iter().cloned());
            if result.rows.len() > 100_000 {
                return Err(err(
                    SqlState::ProgramLimitExceeded,
                    format!("recursive query \"{name}\" produced more than 100000 rows"),
                ));
            }
        }
        Ok(result)
    }

    fn const_count(&self, e: &A, what: &str) -> Result<Option<usize>, PgError> {
        if matches!(e, A::Identifier(i) if i.value.eq_ignore_ascii_case("all")) {
            return Ok(None);
        }
        match self.eval_const_int8(e, CastContext::Assignment)? {
            Value::Null => Ok(None),
            Value::Int8(n) if n < 0 => Err(err(
                if what == "OFFSET" {
                    SqlState::InvalidRowCountInResultOffsetClause
                } else {
                    SqlState::InvalidRowCountInLimitClause
                },
                format!("{what} must not be negative"),
            )),
            Value::Int8(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Ok(None),
        }
    }

    fn set_expr(&self, s: &ast::SetExpr) -> Result<Rel, PgError> {
        match s {
            ast::SetExpr::Select(sel) => self.select(sel, &[]),
            ast::SetExpr::Query(q) => self.query(q),
            ast::SetExpr::Values(v) => self.values(v),
            ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.set_expr(left)?;
                let r = self.set_expr(right)?;
                let all = matches!(set_quantifier, ast::SetQuantifier::All);
                self.set_op(l, r, *op, all)
            }
            ast::SetExpr::Table(t) => {
                let Some(name) = t.table_name.clone() else {
                    return Err(unsupported("TABLE without a name"));
                };
                let mut parts = Vec::new();
                if let Some(s) = t.schema_name.clone() {
                    parts.push(ast::ObjectNamePart::Identifier(s));
                }
                parts.push(ast::ObjectNamePart::Identifier(name));
                let on = ast::ObjectName(parts);
                self.table_rel(&on, None)
            }
            ast::SetExpr::Insert(st) | ast::SetExpr::Update(st) | ast::SetExpr::Delete(st) => {
                // Data-modifying statement in WITH: its RETURNING rows.
                let r = self.run(&Statement::Sql(st.clone()))?;
                Ok(Rel {
                    cols: r
                        .columns
                        .into_iter()
                        .map(|(name, ty)| ColInfo {
                            table: None,
                            name,
                            ty,
                            hidden: false,
                        })
                        .collect(),
                    rows: r.rows,
                })
            }
            _ => Err(unsupported("this query form")),
        }
    }

    fn values(&self, v: &ast::Values) -> Result<Rel, PgError> {
        let width = v.rows.first().map(|r| r.content.len()).unwrap_or(0);
        let mut bound: Vec<Vec<Expr>> = Vec::new();
        for r in &v.rows {
            if r.content.len() != width {
                return Err(err(
                    SqlState::SyntaxError,
                    "VALUES lists must all be the same length",
                ));
            }
            bound.push(
                r.content
                    .iter()
                    .map(|e| self.bind(e, &Cx::plain(&[])))
                    .collect::<Result<_, _>>()?,
            );
        }
        let mut cols = Vec::new();
        for c in 0..width {
            let types: Vec<DataType> = bound.iter().map(|r| r[c].data_type()).collect();
            cols.push(ColInfo {
                table: None,
                name: format!("column{}", c + 1),
                ty: common_type(&types)?,
                hidden: false,
            });
        }
        let mut rows = Vec::new();
        for r in bound {
            let mut out = Vec::new();
            for (e, c) in r.into_iter().zip(&cols) {
                out.push(coerce(e, &c.ty, CastContext::Implicit)?.eval(&[], &self.cx)?);
            }
            rows.push(out);
        }
        Ok(Rel { cols, rows })
    }

    fn set_op(&self, l: Rel, r: Rel, op: ast::SetOperator, all: bool) -> Result<Rel, PgError> {
        if l.cols.len() != r.cols.len() {
            return Err(err(
                SqlState::SyntaxError,
                format!(
                    "each {} query must have the same number of columns",
                    op.to_string().to_uppercase()
                ),
            ));
        }
        let mut cols = l.cols.clone();
        for (c, rc) in cols.iter_mut().zip(&r.cols) {
            c.ty = common_type(&[c.ty.clone(), rc.ty.clone()])?;
            c.table = None;
        }
        let conv = |rel: Rel| -> Result<Vec<Vec<Value>>, PgError> {
            rel.rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .zip(rel.cols.iter().zip(&cols))
                        .map(|(v, (from, to))| {
                            let from_ty = from.ty.clone();
                            cast_value(v, &from_ty, &to.ty, CastContext::Assignment, &self.cx.tz)
                        })
                        .collect()
                })
                .collect()
        };
        let lrows = conv(l)?;
        let rrows = conv(r)?;
        let dedupe = |rows: Vec<Vec<Value>>| {
            let mut seen = std::collections::HashSet::new();
            rows.into_iter()
                .filter(|r| seen.insert(row_key(r)))
                .collect::<Vec<_>>()
        };
        let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
        let rows = match op {
            ast::SetOperator::Union => {
                let mut v = lrows;
                v.extend(rrows);
                if all {
                    v
                } else {
                    dedupe(v)
                }
            }
            ast::SetOperator::Intersect | ast::SetOperator::Except => {
                for r in &rrows {
                    *counts.entry(row_key(r)).or_default() += 1;
                }
                let inter = op == ast::SetOperator::Intersect;
                let left = if all { lrows } else { dedupe(lrows) };
                let mut out = Vec::new();
                for row in left {
                    let k = row_key(&row);
                    let c = counts.get(&k).copied().unwrap_or(0);
                    let present = c > 0;
                    if all && present {
                        counts.insert(k, c - 1);
                    }
                    if present == inter {
                        out.push(row);
                    }
                }
                out
            }
            _ => return Err(unsupported(format!("set operator {op}"))),
        };
        Ok(Rel { cols, rows })
    }

    /// ORDER BY over a finished relation (set operations, VALUES): output names, positions or
    /// expressions over the output columns.
    fn sort_output(&self, rel: &mut Rel, order: &[ast::OrderByExpr]) -> Result<(), PgError> {
        let width = rel.cols.len();
        let mut keys = Vec::new();
        let mut extra = Vec::new();
        for o in order {
            let src = self.order_source(&o.expr, &rel.cols, &[], &Cx::plain(&rel.cols))?;
            let col = match src {
                OrderSrc::Col(c) => c,
                OrderSrc::Expr(e) => {
                    extra.push(e);
                    width + extra.len() - 1
                }
            };
            keys.push(sort_key_of(o, col));
        }
        if !extra.is_empty() {
            for row in rel.rows.iter_mut() {
                let vals = extra
                    .iter()
                    .map(|e| e.eval(row, &self.cx))
                    .collect::<Result<Vec<_>, _>>()?;
                row.extend(vals);
            }
        }
        sort_rows(&mut rel.rows, &keys);
        for row in rel.rows.iter_mut() {
            row.truncate(width);
        }
        Ok(())
    }

    fn order_source(
        &self,
        e: &A,
        out_cols: &[ColInfo],
        proj_ast: &[Option<String>],
        cx: &Cx<'_>,
    ) -> Result<OrderSrc, PgError> {
        if let A::Value(v) = e {
            if let ast::Value::Number(n, _) = &v.value {
                let k: usize = n.parse().unwrap_or(0);
                if k == 0 || k > out_cols.len() {
                    return Err(err(
                        SqlState::InvalidColumnReference,
                        format!("ORDER BY position {n} is not in select list"),
                    ));
                }
                return Ok(OrderSrc::Col(k - 1));
            }
        }
        if let A::Identifier(id) = e {
            let n = normalize_ident(id);
            let hits: Vec<usize> = out_cols
                .iter()
                .enumerate()
                .filter(|(_, c)| c.name == n && !c.hidden)
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = hits.first() {
                return Ok(OrderSrc::Col(i));
            }
        }
        let s = e.to_string();
        if let Some(i) = proj_ast
            .iter()
            .position(|p| p.as_deref() == Some(s.as_str()))
        {
            return Ok(OrderSrc::Col(i));
        }
        Ok(OrderSrc::Expr(self.bind(e, cx)?))
    }

    // ---- FROM ----

    fn table_rel(
        &self,
        name: &ast::ObjectName,
        alias: Option<&ast::TableAlias>,
    ) -> Result<Rel, PgError> {
        let parts = object_name(name);
        let qual = alias
            .map(|a| normalize_ident(&a.name))
            .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
        let mut rel = None;
        if parts.len() == 1 {
            if let Some((_, r)) = self
                .ctes
                .borrow()
                .iter()
                .rev()
                .find(|(n, _)| *n == parts[0])
            {
                rel = Some(r.clone());
            }
        }
        if rel.is_none() {
            rel = self.system_view(&parts)?;
        }
        if rel.is_none() {
            let key = match parts.as_slice() {
                [n] => format!("public.{n}"),
                [.., s, n] => format!("{s}.{n}"),
                [] => String::new(),
            };
            if let Some(s) = self.eng.seqs().get(&key) {
                let col = |n: &str, ty: DataType| ColInfo {
                    table: None,
                    name: n.into(),
                    ty,
                    hidden: false,
                };
                rel = Some(Rel {
                    cols: vec![
                        col("last_value", DataType::Int8),
                        col("is_called", DataType::Bool),
                    ],
                    rows: vec![vec![Value::Int8(s.last), Value::Bool(s.is_called)]],
                });
            }
        }
        let rel = match rel {
            Some(r) => r,
            None => {
                let (_, def) = self.find_table(name)?;
                if let Some(v) = &def.view {
                    let q = match crate::parser::parse(v)?.into_iter().next() {
                        Some(Statement::Sql(ast::Statement::Query(q))) => q,
                        _ => return Err(err(SqlState::InternalError, "bad view definition")),
                    };
                    let mut r = self.query(&q)?;
                    for (c, d) in r.cols.iter_mut().zip(&def.columns) {
                        c.name = d.name.clone();
                        c.hidden = false;
                    }
                    return self.qualify(r, &qual, alias);
                }
                let rows = self
                    .scan(RelId(def.rel))?
                    .into_iter()
                    .map(|r| decode_row(&r.data))
                    .collect::<Result<Vec<_>, _>>()?;
                Rel {
                    cols: Self::table_scope(&def, None),
                    rows,
                }
            }
        };
        self.qualify(rel, &qual, alias)
    }

    /// The few catalog views the suite reads: `information_schema.columns` / `.schemata`,
    /// `pg_indexes`, `pg_class`, `pg_tables`, derived from the SQL catalog.
    fn system_view(&self, parts: &[String]) -> Result<Option<Rel>, PgError> {
        let name = parts.join(".");
        let col = |n: &str, ty: DataType| ColInfo {
            table: None,
            name: n.into(),
            ty,
            hidden: false,
        };
        let text = |s: &str| Value::Text(s.to_string());
        let t = DataType::Text;
        Ok(Some(match name.as_str() {
            "information_schema.columns" => {
                let mut rows = Vec::new();
                for (_, d) in self.tables()? {
                    for (i, c) in d.columns.iter().enumerate() {
                        rows.push(vec![
                            text("pgxc"),
                            text(&d.schema),
                            text(&d.name),
                            text(&c.name),
                            Value::Int4(i32::try_from(i + 1).unwrap_or(i32::MAX)),
                            c.default.as_deref().map(text).unwrap_or(Value::Null),
                            text(if c.not_null { "NO" } else { "YES" }),
                            text(&c.ty.without_typmod().name()),
                        ]);
                    }
                }
                Rel {
                    cols: vec![
                        col("table_catalog", t.clone()),
                        col("table_schema", t.clone()),
                        col("table_name", t.clone()),
                        col("column_name", t.clone()),
                        col("ordinal_position", DataType::Int4),
                        col("column_default", t.clone()),
                        col("is_nullable", t.clone()),
                        col("data_type", t),
                    ],
                    rows,
                }
            }
            "information_schema.schemata" => {
                let mut schemas: Vec<String> = vec![
                    "information_schema".into(),
                    "pg_catalog".into(),
                    "public".into(),
                ];
                schemas.extend(self.schemas()?.into_iter().map(|(_, s)| s));
                Rel {
                    cols: vec![col("catalog_name", t.clone()), col("schema_name", t)],
                    rows: schemas
                        .iter()
                        .map(|s| vec![text("pgxc"), text(s)])
                        .collect(),
                }
            }
            "pg_indexes" | "pg_catalog.pg_indexes" => {
                let mut rows = Vec::new();
                for (_, d) in self.tables()? {
                    for i in &d.indexes {
                        rows.push(vec![text(&d.schema), text(&d.name), text(&i.name)]);
                    }
                }
                Rel {
                    cols: vec![
                        col("schemaname", t.clone()),
                        col("tablename", t.clone()),
                        col("indexname", t),
                    ],
                    rows,
                }
            }
            "pg_tables" | "pg_catalog.pg_tables" => {
                let rows = self
                    .tables()?
                    .into_iter()
                    .filter(|(_, d)| d.view.is_none())
                    .map(|(_, d)| vec![text(&d.schema), text(&d.name)])
                    .collect();
                Rel {
                    cols: vec![col("schemaname", t.clone()), col("tablename", t)],
                    rows,
                }
            }
            "pg_class" | "pg_catalog.pg_class" => {
                let mut rows = Vec::new();
                for (_, d) in self.tables()? {
                    let kind = if d.view.is_some() { "v" } else { "r" };
                    rows.push(vec![text(&d.name), text(kind)]);
                    for i in &d.indexes {
                        rows.push(vec![text(&i.name), text("i")]);
                    }
                }
                for k in self.eng.seqs().keys() {
                    let n = k.rsplit('.').next().unwrap_or(k);
                    rows.push(vec![text(n), text("S")]);
                }
                Rel {
                    cols: vec![col("relname", t.clone()), col("relkind", t)],
                    rows,
                }
            }
            _ => return Ok(None),
        }))
    }

    fn qualify(
        &self,
        mut rel: Rel,
        qual: &str,
        alias: Option<&ast::TableAlias>,
    ) -> Result<Rel, PgError> {
        for c in rel.cols.iter_mut() {
            c.table = Some(qual.to_string());
        }
        if let Some(a) = alias {
            for (c, n) in rel.cols.iter_mut().zip(&a.columns) {
                c.name = normalize_ident(&n.name);
            }
        }
        Ok(rel)
    }

    fn table_factor(&self, tf: &ast::TableFactor) -> Result<Rel, PgError> {
        match tf {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => self.table_rel(name, alias.as_ref()),
            ast::TableFactor::Table {
                name,
                alias,
                args: Some(args),
                ..
            } => self.table_function(name, &args.args, alias.as_ref()),
            ast::TableFactor::Derived {
                subquery,
                alias,
                lateral: false,
                ..
            } => {
                if alias.is_none() {
                    return Err(err(
                        SqlState::SyntaxError,
                        "subquery in FROM must have an alias",
                    ));
                }
                let mut rel = self.query(subquery)?;
                let qual = alias.as_ref().map(|a| normalize_ident(&a.name));
                for c in rel.cols.iter_mut() {
                    c.table = qual.clone();
                }
                if let Some(a) = alias {
                    for (c, n) in rel.cols.iter_mut().zip(&a.columns) {
                        c.name = normalize_ident(&n.name);
                    }
                }
                Ok(rel)
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } => self.join_tree(table_with_joins),
            _ => Err(unsupported("this FROM item")),
        }
    }

    fn table_function(
        &self,
        name: &ast::ObjectName,
        args: &[FunctionArg],
        alias: Option<&ast::TableAlias>,
    ) -> Result<Rel, PgError> {
        let fname = object_name(name).last().cloned().unwrap_or_default();
        if fname == "unnest" {
            let [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] = args else {
                return Err(unsupported("unnest with several arrays"));
            };
            let b = self.bind(e, &Cx::plain(&[]))?;
            let DataType::Array(elem) = b.data_type() else {
                return Err(err(
                    SqlState::UndefinedFunction,
                    format!("function unnest({}) does not exist", b.data_type().name()),
                ));
            };
            let rows = match b.eval(&[], &self.cx)? {
                Value::Array(items) => items.into_iter().map(|v| vec![v]).collect(),
                _ => Vec::new(),
            };
            return Ok(function_rel(&fname, alias, out_type(&elem), rows));
        }
        if fname != "generate_series" {
            return Err(err(
                SqlState::UndefinedFunction,
                format!("function {fname} does not exist"),
            ));
        }
        let mut vals = Vec::new();
        for a in args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                    vals.push(self.eval_const_int8(e, CastContext::Implicit)?);
                }
                _ => return Err(unsupported("this generate_series argument")),
            }
        }
        let ints: Vec<Option<i64>> = vals.iter().map(int_of).collect();
        let (start, stop, step) = match ints.as_slice() {
            [Some(a), Some(b)] => (*a, *b, 1),
            [Some(a), Some(b), Some(c)] => (*a, *b, *c),
            _ => (1, 0, 1),
        };
        if step == 0 {
            return Err(err(
                SqlState::InvalidParameterValue,
                "step size cannot equal zero",
            ));
        }
        let mut rows = Vec::new();
        let mut i = start;
        while (step > 0 && i <= stop) || (step < 0 && i >= stop) {
            if rows.len() > 10_000_000 {
                return Err(err(SqlState::OutOfMemory, "generate_series too large"));
            }
            rows.push(vec![Value::Int4(i32::try_from(i).unwrap_or(i32::MAX))]);
            i = match i.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        Ok(function_rel(&fname, alias, DataType::Int4, rows))
    }

    pub(super) fn join_tree(&self, twj: &ast::TableWithJoins) -> Result<Rel, PgError> {
        let mut left = self.table_factor(&twj.relation)?;
        for j in &twj.joins {
            let right = self.table_factor(&j.relation)?;
            left = self.join(left, right, &j.join_operator)?;
        }
        Ok(left)
    }

    pub(super) fn join(
        &self,
        left: Rel,
        mut right: Rel,
        op: &ast::JoinOperator,
    ) -> Result<Rel, PgError> {
        use ast::JoinOperator as J;
        let (kind, c) = match op {
            J::Join(ast::JoinConstraint::None)
            | J::Inner(ast::JoinConstraint::None)
            | J::Left(ast::JoinConstraint::None)
            | J::LeftOuter(ast::JoinConstraint::None)
            | J::Right(ast::JoinConstraint::None)
            | J::RightOuter(ast::JoinConstraint::None)
            | J::FullOuter(ast::JoinConstraint::None) => {
                return Err(err(
                    SqlState::SyntaxError,
                    "syntax error: JOIN needs ON or USING",
                ))
            }
            J::Join(c) | J::Inner(c) => (JoinKind::Inner, Some(c)),
            J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, Some(c)),
            J::Right(c) | J::RightOuter(c) => (JoinKind::Right, Some(c)),
            J::FullOuter(c) => (JoinKind::Full, Some(c)),
            J::CrossJoin(_) => (JoinKind::Inner, None),
            _ => return Err(unsupported("this join type")),
        };
        let nl = left.cols.len();
        let mut using: Vec<String> = Vec::new();
        match c {
            Some(ast::JoinConstraint::Using(names)) => {
                using = names
                    .iter()
                    .map(|n| object_name(n).last().cloned().unwrap_or_default())
                    .collect()
            }
            Some(ast::JoinConstraint::Natural) => {
                using = left
                    .cols
                    .iter()
                    .filter(|c| {
                        !c.hidden && right.cols.iter().any(|r| r.name == c.name && !r.hidden)
                    })
                    .map(|c| c.name.clone())
                    .collect()
            }
            _ => {}
        }
        let mut conds = Vec::new();
        for u in &using {
            let li = left.cols.iter().position(|c| c.name == *u && !c.hidden);
            let ri = right.cols.iter().position(|c| c.name == *u && !c.hidden);
            let (Some(li), Some(ri)) = (li, ri) else {
                return Err(err(
                    SqlState::UndefinedColumn,
                    format!("column \"{u}\" specified in USING clause does not exist"),
                ));
            };
            right.cols[ri].hidden = true;
            conds.push((li, nl + ri));
        }
        let mut cols = left.cols.clone();
        cols.extend(right.cols.iter().cloned());
        let mut cond: Option<Expr> = None;
        if let Some(ast::JoinConstraint::On(e)) = c {
            cond = Some(coerce(
                self.bind(e, &Cx::clause(&cols, "JOIN conditions"))?,
                &DataType::Bool,
                CastContext::Implicit,
            )?);
        }
        let mut parts = Vec::new();
        for (a, b) in conds {
            let x = Expr::Column(a, cols[a].ty.clone());
            let y = Expr::Column(b, cols[b].ty.clone());
            parts.push(self.binary_expr(BinOp::Eq, x, y)?);
        }
        if let Some(c) = cond {
            parts.push(c);
        }
        let cond = match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Expr::And(parts)),
        };
        let nr = right.cols.len();
        let mut right_matched = vec![false; right.rows.len()];
        let mut rows = Vec::new();
        for l in &left.rows {
            let mut matched = false;
            for (ri, r) in right.rows.iter().enumerate() {
                let mut row = l.clone();
                row.extend(r.iter().cloned());
                let ok = match &cond {
                    Some(c) => bool_of(&c.eval(&row, &self.cx)?),
                    None => true,
                };
                if ok {
                    matched = true;
                    right_matched[ri] = true;
                    rows.push(row);
                }
            }
            if !matched && matches!(kind, JoinKind::Left | JoinKind::Full) {
                let mut row = l.clone();
                row.extend(std::iter::repeat_n(Value::Null, nr));
                rows.push(row);
            }
        }
        if matches!(kind, JoinKind::Right | JoinKind::Full) {
            for (ri, r) in right.rows.iter().enumerate() {
                if !right_matched[ri] {
                    let mut row = vec![Value::Null; nl];
                    row.extend(r.iter().cloned());
                    rows.push(row);
                }
            }
        }
        Ok(Rel { cols, rows })
    }

    // ---- SELECT ----

    fn select(&self, s: &ast::Select, order: &[ast::OrderByExpr]) -> Result<Rel, PgError> {
        let mut input = self.cross_join_from(&s.from)?;
        if let Some(w) = s.selection.as_ref().filter(|w| has_subquery(w)) {
            if let Filter::PerRow(_) = self.bind_filter(Some(w), &input.cols)? {
                let f = Filter::PerRow(w);
                let mut kept = Vec::new();
                for r in std::mem::take(&mut input.rows) {
                    if self.filter_passes(&f, &input.cols, &r)? {
                        kept.push(r);
                    }
                }
                input.rows = kept;
            }
        }
        if let Some(w) = s
            .selection
            .as_ref()
            .filter(|w| !has_subquery(w) || self.bind(w, &Cx::clause(&input.cols, "WHERE")).is_ok())
        {
            let f = self.bind(w, &Cx::clause(&input.cols, "WHERE"))?;
            if f.data_type() != DataType::Bool && f.data_type() != DataType::Unknown {
                return Err(err(
                    SqlState::DatatypeMismatch,
                    format!(
                        "argument of WHERE must be type boolean, not type {}",
                        f.data_type().name()
                    ),
                ));
            }
            let f = coerce(f, &DataType::Bool, CastContext::Implicit)?;
            let mut kept = Vec::new();
            for r in input.rows {
                if bool_of(&f.eval(&r, &self.cx)?) {
                    kept.push(r);
                }
            }
            input.rows = kept;
        }
        let group_ast: Vec<&A> = match &s.group_by {
            ast::GroupByExpr::Expressions(v, _) => v.iter().collect(),
            ast::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        };
        let proj_exprs: Vec<&A> = s
            .projection
            .iter()
            .filter_map(|p| match p {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
            .collect();
        let is_agg = !group_ast.is_empty()
            || s.having.is_some()
            || proj_exprs.iter().any(|e| contains_agg(e))
            || order.iter().any(|o| contains_agg(&o.expr));
        let aggcx = RefCell::new(AggCx::default());
        if is_agg {
            let mut ag = AggCx::default();
            for g in &group_ast {
                let mut target: &A = g;
                if let A::Value(v) = g {
                    if let ast::Value::Number(n, _) = &v.value {
                        let k: usize = n.parse().unwrap_or(0);
                        target = proj_item_expr(&s.projection, k).ok_or_else(|| {
                            err(
                                SqlState::InvalidColumnReference,
                                format!("GROUP BY position {n} is not in select list"),
                            )
                        })?;
                    }
                }
                if let A::Identifier(id) = g {
                    let n = normalize_ident(id);
                    if !input.cols.iter().any(|c| c.name == n) {
                        for p in &s.projection {
                            if let ast::SelectItem::ExprWithAlias { expr, alias } = p {
                                if normalize_ident(alias) == n {
                                    target = expr;
                                }
                            }
                        }
                    }
                }
                let e = self.bind(target, &Cx::clause(&input.cols, "GROUP BY"))?;
                ag.group_ast.push(target.to_string());
                ag.group_exprs.push(e);
            }
            *aggcx.borrow_mut() = ag;
        }
        let wincx = RefCell::new(super::window::WinCx {
            base: input.cols.len(),
            specs: Vec::new(),
            named: s
                .named_window
                .iter()
                .filter_map(|d| match &d.1 {
                    ast::NamedWindowExpr::WindowSpec(w) => Some((normalize_ident(&d.0), w.clone())),
                    _ => None,
                })
                .collect(),
        });
        let cx = Cx {
            cols: &input.cols,
            agg: if is_agg { Some(&aggcx) } else { None },
            win: if is_agg { None } else { Some(&wincx) },
            clause: "this context",
        };
        let mut per_row = false;
        let (exprs, names) = match self.bind_projection_cx(&s.projection, &cx) {
            Ok(x) => x,
            Err(e)
                if !is_agg
                    && correlation_error(&e)
                    && proj_exprs.iter().any(|p| has_subquery(p)) =>
            {
                // Correlated subqueries in the select list: bound per row below; a row of
                // NULLs gives the names and types.
                per_row = true;
                let nulls = vec![Value::Null; input.cols.len()];
                self.with_outer(&input.cols, &nulls, || {
                    self.bind_projection_cx(&s.projection, &cx)
                })?
            }
            Err(e) => return Err(e),
        };
        let having = match &s.having {
            Some(h) => Some(coerce(
                self.bind(h, &cx)?,
                &DataType::Bool,
                CastContext::Implicit,
            )?),
            None => None,
        };
        let out_cols: Vec<ColInfo> = names
            .iter()
            .zip(&exprs)
            .map(|(n, e)| ColInfo {
                table: None,
                name: n.clone(),
                ty: e.data_type(),
                hidden: false,
            })
            .collect();
        let proj_ast: Vec<Option<String>> = s
            .projection
            .iter()
            .flat_map(|p| match p {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                    vec![Some(e.to_string())]
                }
                _ => Vec::new(),
            })
            .collect();
        let proj_ast = if proj_ast.len() == exprs.len() {
            proj_ast
        } else {
            Vec::new()
        };
        let width = exprs.len();
        let mut hidden: Vec<Expr> = Vec::new();
        let mut keys = Vec::new();
        for o in order {
            let col = match self.order_source(&o.expr, &out_cols, &proj_ast, &cx)? {
                OrderSrc::Col(c) => c,
                OrderSrc::Expr(e) => {
                    hidden.push(e);
                    width + hidden.len() - 1
                }
            };
            keys.push(sort_key_of(o, col));
        }
        if matches!(s.distinct, Some(ast::Distinct::Distinct))
            && keys.iter().any(|k| k.col >= width)
        {
            return Err(err(
                SqlState::InvalidColumnReference,
                "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
            ));
        }
        let mut distinct_on = Vec::new();
        if let Some(ast::Distinct::On(v)) = &s.distinct {
            for e in v {
                let col = match self.order_source(e, &out_cols, &proj_ast, &cx)? {
                    OrderSrc::Col(c) => c,
                    OrderSrc::Expr(e) => {
                        hidden.push(e);
                        width + hidden.len() - 1
                    }
                };
                distinct_on.push(col);
            }
        }
        if !distinct_on.is_empty() && !keys.is_empty() {
            let n = distinct_on.len().min(keys.len());
            let mut a: Vec<usize> = keys[..n].iter().map(|k| k.col).collect();
            let mut b: Vec<usize> = distinct_on[..n].to_vec();
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return Err(err(
                    SqlState::InvalidColumnReference,
                    "SELECT DISTINCT ON expressions must match initial ORDER BY expressions",
                ));
            }
        }
        // The rows the projection reads: input rows, or one row per group.
        let mut post_rows = if is_agg {
            self.aggregate(&input.rows, &aggcx.borrow())?
        } else {
            input.rows
        };
        let specs = std::mem::take(&mut wincx.borrow_mut().specs);
        if !specs.is_empty() {
            self.compute_windows(&mut post_rows, &specs)?;
        }
        let mut rows = Vec::new();
        for r in &post_rows {
            if let Some(h) = &having {
                if !bool_of(&h.eval(r, &self.cx)?) {
                    continue;
                }
            }
            let mut out = Vec::with_capacity(width + hidden.len());
            if per_row {
                let plain = Cx {
                    cols: cx.cols,
                    agg: None,
                    win: None,
                    clause: cx.clause,
                };
                let (row_exprs, _) = self.with_outer(&input.cols, r, || {
                    self.bind_projection_cx(&s.projection, &plain)
                })?;
                for e in &row_exprs {
                    out.push(e.eval(r, &self.cx)?);
                }
            } else {
                for e in &exprs {
                    out.push(e.eval(r, &self.cx)?);
                }
            }
            for e in &hidden {
                out.push(e.eval(r, &self.cx)?);
            }
            rows.push(out);
        }
        if matches!(s.distinct, Some(ast::Distinct::Distinct)) {
            let mut seen = std::collections::HashSet::new();
            rows.retain(|r| seen.insert(row_key(&r[..width])));
        }
        sort_rows(&mut rows, &keys);
        if !distinct_on.is_empty() {
            let mut seen = std::collections::HashSet::new();
            rows.retain(|r| {
                let k: Vec<Value> = distinct_on.iter().map(|&c| r[c].clone()).collect();
                seen.insert(row_key(&k))
            });
        }
        for r in rows.iter_mut() {
            r.truncate(width);
        }
        Ok(Rel {
            cols: out_cols,
            rows,
        })
    }

    fn aggregate(&self, rows: &[Vec<Value>], ag: &AggCx) -> Result<Vec<Vec<Value>>, PgError> {
        let mut groups: Vec<(Vec<Value>, Vec<Acc>)> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        if ag.group_exprs.is_empty() {
            groups.push((Vec::new(), vec![Acc::new(); ag.aggs.len()]));
            index.insert(row_key(&[]), 0);
        }
        for r in rows {
            let key = ag
                .group_exprs
                .iter()
                .map(|e| e.eval(r, &self.cx))
                .collect::<Result<Vec<_>, _>>()?;
            let k = row_key(&key);
            let gi = match index.get(&k) {
                Some(&g) => g,
                None => {
                    groups.push((key, vec![Acc::new(); ag.aggs.len()]));
                    index.insert(k, groups.len() - 1);
                    groups.len() - 1
                }
            };
            for (j, (_, spec)) in ag.aggs.iter().enumerate() {
                if let Some(f) = &spec.filter {
                    if !bool_of(&f.eval(r, &self.cx)?) {
                        continue;
                    }
                }
                let args = spec
                    .args
                    .iter()
                    .map(|e| e.eval(r, &self.cx))
                    .collect::<Result<Vec<_>, _>>()?;
                if spec.order.is_empty() {
                    spec.step(&mut groups[gi].1[j], args)?;
                } else {
                    let keys = spec
                        .order
                        .iter()
                        .map(|(e, _)| e.eval(r, &self.cx))
                        .collect::<Result<Vec<_>, _>>()?;
                    groups[gi].1[j].pending.push((args, keys));
                }
            }
        }
        let mut out = Vec::new();
        for (key, accs) in groups {
            let mut row = key;
            for ((_, spec), acc) in ag.aggs.iter().zip(accs) {
                if spec.order.is_empty() {
                    row.push(spec.finish(&acc)?);
                    continue;
                }
                let mut pending = acc.pending;
                pending.sort_by(|(_, a), (_, b)| {
                    for (i, (_, k)) in spec.order.iter().enumerate() {
                        let o = cmp_nulls(&a[i], &b[i], k.desc, k.nulls_first);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
                let mut fresh = Acc::new();
                for (args, _) in pending {
                    spec.step(&mut fresh, args)?;
                }
                row.push(spec.finish(&fresh)?);
            }
            out.push(row);
        }
        Ok(out)
    }
}

fn proj_item_expr(items: &[ast::SelectItem], k: usize) -> Option<&A> {
    match items.get(k.checked_sub(1)?)? {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

pub(super) fn projection_name(e: &A) -> String {
    proj_name(e)
}

/// The one-column relation a set-returning function `fname` in FROM yields: named by `alias`
/// (its first column alias naming the column) or else by the function.
fn function_rel(
    fname: &str,
    alias: Option<&ast::TableAlias>,
    ty: DataType,
    rows: Vec<Vec<Value>>,
) -> Rel {
    let qual = alias.map_or_else(|| fname.to_string(), |a| normalize_ident(&a.name));
    let name = alias
        .and_then(|a| a.columns.first())
        .map_or_else(|| qual.clone(), |c| normalize_ident(&c.name));
    Rel {
        cols: vec![ColInfo {
            table: Some(qual),
            name,
            ty,
            hidden: false,
        }],
        rows,
    }
}
