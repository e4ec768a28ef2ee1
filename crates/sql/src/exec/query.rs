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

// The aggregate state machinery lives in `exec::agg`.
pub(super) use super::agg::{agg_finish, agg_step, new_acc, Acc};

fn proj_name(e: &A) -> String {
    match e {
        A::Identifier(i) => normalize_ident(i),
        A::CompoundIdentifier(v) => v.last().map(normalize_ident).unwrap_or_default(),
        A::Function(f) => func_name(f),
        A::Cast {
            expr, data_type, ..
        } => {
            // PostgreSQL's FigureColname: the operand's name when it has a strong one
            // (columns, function calls, ...), else the type's.
            let mut inner = expr.as_ref();
            while let A::Nested(x) = inner {
                inner = x;
            }
            let n = proj_name(inner);
            if n != "?column?" && !matches!(inner, A::Case { .. } | A::Cast { .. }) {
                n
            } else {
                parse_type(data_type)
                    .map(|t| t.base_name().to_string())
                    .unwrap_or_else(|_| "?column?".into())
            }
        }
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
        check_from_names(q)?;
        if let Some(rel) = self.planned_query(q)? {
            return Ok(rel);
        }
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
                    let searched = search_clause(cte, &name)?;
                    let cte = searched.as_ref().unwrap_or(cte);
                    let rel = self.recursive_cte(&name, cte, recursion_cap(q, &name))?;
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
    ///
    /// With `cap`, iteration stops once that many rows exist: the outer query reads no more
    /// (PostgreSQL evaluates the CTE lazily, so `... UNION ALL ... LIMIT n` terminates).
    fn recursive_cte(
        &self,
        name: &str,
        cte: &ast::Cte,
        cap: Option<usize>,
    ) -> Result<Rel, PgError> {
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
        if let ast::SetExpr::Select(rs) = right.as_ref() {
            let mut refs = 0;
            for twj in &rs.from {
                refs += count_refs(&twj.relation, name);
                for j in &twj.joins {
                    refs += count_refs(&j.relation, name);
                }
            }
            if refs > 1 {
                return Err(err(
                    SqlState::InvalidRecursion,
                    format!(
                        "recursive reference to query \"{name}\" must not appear more than once"
                    ),
                ));
            }
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
        while !working.is_empty() && cap.is_none_or(|c| result.rows.len() < c) {
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
            rel = self.rowset_rel(&parts);
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
            let local = self.eng.seqs().get(&key).map(|s| (s.last, s.is_called));
            let pos = match (local, self.eng.global_seqs()) {
                (Some(_), Some(g)) => Some(g.position(&key)?),
                (l, _) => l,
            };
            if let Some((last, is_called)) = pos {
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
                    rows: vec![vec![Value::Int8(last), Value::Bool(is_called)]],
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
                let with_tid = self.tid_scan.get();
                let rows = self
                    .scan(RelId(def.rel))?
                    .into_iter()
                    .map(|r| {
                        let mut row = decode_row(&r.data)?;
                        if with_tid {
                            row.push(Value::Int8(i64::try_from(r.tid.0).unwrap_or(i64::MAX)));
                        }
                        Ok(row)
                    })
                    .collect::<Result<Vec<_>, PgError>>()?;
                let mut cols = Self::table_scope(&def, None);
                if with_tid {
                    cols.push(ColInfo {
                        table: None,
                        name: "\u{1}ctid".into(),
                        ty: DataType::Int8,
                        hidden: true,
                    });
                }
                Rel { cols, rows }
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
                            c.default
                                .as_deref()
                                .map(|d| text(&display_default(d)))
                                .unwrap_or(Value::Null),
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
            "pg_constraint" | "pg_catalog.pg_constraint" => {
                // `conrelid` is the table's regclass, shown (and compared) as its name, the way
                // `'t'::regclass` binds (see `Exec::regclass`).
                let path = self.path_schemas()?;
                let mut rows = Vec::new();
                for (_, d) in self.tables()? {
                    if d.view.is_some() {
                        continue;
                    }
                    let rel = regclass_name(&d.schema, &d.name, &path);
                    for i in d.indexes.iter().filter(|i| i.unique) {
                        let kind = if i.primary { "p" } else { "u" };
                        rows.push(vec![text(&i.name), text(kind), text(&rel)]);
                    }
                    for c in &d.checks {
                        rows.push(vec![text(&c.name), text("c"), text(&rel)]);
                    }
                    for f in &d.fks {
                        rows.push(vec![text(&f.name), text("f"), text(&rel)]);
                    }
                }
                Rel {
                    cols: vec![
                        col("conname", t.clone()),
                        col("contype", t.clone()),
                        col("conrelid", t),
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
            "pg_cursors" | "pg_catalog.pg_cursors" => Rel {
                cols: vec![
                    col("name", t.clone()),
                    col("statement", t.clone()),
                    col("is_holdable", DataType::Bool),
                    col("is_binary", DataType::Bool),
                    col("is_scrollable", DataType::Bool),
                    col("creation_time", DataType::Timestamptz),
                ],
                rows: self
                    .views
                    .cursors
                    .iter()
                    .map(|(n, st, hold, bin, scroll)| {
                        vec![
                            text(n),
                            text(st),
                            Value::Bool(*hold),
                            Value::Bool(*bin),
                            Value::Bool(*scroll),
                            Value::Timestamptz(self.now),
                        ]
                    })
                    .collect(),
            },
            "pg_prepared_statements" | "pg_catalog.pg_prepared_statements" => Rel {
                cols: vec![
                    col("name", t.clone()),
                    col("statement", t.clone()),
                    col("prepare_time", DataType::Timestamptz),
                    col("parameter_types", DataType::Array(Box::new(t.clone()))),
                    col("from_sql", DataType::Bool),
                ],
                rows: self
                    .views
                    .prepared
                    .iter()
                    .map(|(n, st, types)| {
                        vec![
                            text(n),
                            text(st),
                            Value::Timestamptz(self.now),
                            Value::Array(types.iter().map(|ty| text(&ty.name())).collect()),
                            Value::Bool(true),
                        ]
                    })
                    .collect(),
            },
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
                with_ordinality,
                ..
            } => self.table_function(name, &args.args, alias.as_ref(), *with_ordinality),
            ast::TableFactor::Function {
                name,
                args,
                alias,
                with_ordinality,
                ..
            } => self.table_function(name, args, alias.as_ref(), *with_ordinality),
            ast::TableFactor::UNNEST {
                alias,
                array_exprs,
                with_ordinality,
                with_offset: false,
                ..
            } => self.unnest_from(array_exprs, alias.as_ref(), *with_ordinality),
            ast::TableFactor::Derived {
                subquery, alias, ..
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
        ordinality: bool,
    ) -> Result<Rel, PgError> {
        let fname = object_name(name).last().cloned().unwrap_or_default();
        let args = args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                _ => Err(unsupported("this table function argument")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.srf_from(&fname, &args, alias, ordinality)
    }

    pub(super) fn join_tree(&self, twj: &ast::TableWithJoins) -> Result<Rel, PgError> {
        let mut left = self.table_factor(&twj.relation)?;
        for j in &twj.joins {
            left = self.join_step(left, &j.relation, &j.join_operator)?;
        }
        Ok(left)
    }

    /// Join `left` with the FROM item `tf`: a LATERAL item (a LATERAL subquery, or a function,
    /// whose arguments may reference `left`) is evaluated once per row of `left`, with that row
    /// as the outer scope (PostgreSQL's nested loop with parameters); others are joined as is.
    pub(super) fn join_step(
        &self,
        left: Rel,
        tf: &ast::TableFactor,
        op: &ast::JoinOperator,
    ) -> Result<Rel, PgError> {
        if !is_lateral(tf) || left.cols.is_empty() {
            let right = self.table_factor(tf)?;
            return self.join(left, right, op);
        }
        if matches!(
            op,
            ast::JoinOperator::Right(_)
                | ast::JoinOperator::RightOuter(_)
                | ast::JoinOperator::FullOuter(_)
        ) && matches!(tf, ast::TableFactor::Derived { lateral: true, .. })
        {
            return Err(err(
                SqlState::InvalidColumnReference,
                "The combining JOIN type must be INNER or LEFT for a LATERAL reference.",
            ));
        }
        let mut out: Option<Rel> = None;
        for row in &left.rows {
            let right = self.with_outer(&left.cols, row, || self.table_factor(tf))?;
            let one = Rel {
                cols: left.cols.clone(),
                rows: vec![row.clone()],
            };
            let j = self.join(one, right, op)?;
            match &mut out {
                Some(o) => o.rows.extend(j.rows),
                None => out = Some(j),
            }
        }
        match out {
            Some(o) => Ok(o),
            None => {
                // No outer rows: bind once against a row of NULLs for the column list.
                let nulls = vec![Value::Null; left.cols.len()];
                let right = self.with_outer(&left.cols, &nulls, || self.table_factor(tf))?;
                let mut j = self.join(
                    Rel {
                        cols: left.cols.clone(),
                        rows: Vec::new(),
                    },
                    right,
                    op,
                )?;
                j.rows.clear();
                Ok(j)
            }
        }
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
        for q in right.cols.iter().filter_map(|c| c.table.as_deref()) {
            if q != "\u{1}srf" && left.cols.iter().any(|c| c.table.as_deref() == Some(q)) {
                return Err(err(
                    SqlState::DuplicateAlias,
                    format!("table name \"{q}\" specified more than once"),
                ));
            }
        }
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
        let merge: Vec<(usize, usize)> = conds.clone();
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
        if merge.is_empty() {
            return Ok(Rel { cols, rows });
        }
        // USING / NATURAL: the merged columns come first (the left value, the right one for a
        // RIGHT join, COALESCE of both for a FULL join); the joined tables' own columns stay
        // reachable qualified only.
        let mut out_cols: Vec<ColInfo> = merge
            .iter()
            .map(|&(a, _)| ColInfo {
                table: None,
                name: cols[a].name.clone(),
                ty: cols[a].ty.clone(),
                hidden: false,
            })
            .collect();
        for &(a, _) in &merge {
            cols[a].hidden = true;
        }
        out_cols.extend(cols);
        let rows = rows
            .into_iter()
            .map(|r| {
                let mut out: Vec<Value> = merge
                    .iter()
                    .map(|&(a, b)| match kind {
                        JoinKind::Right => r[b].clone(),
                        JoinKind::Full if r[a].is_null() => r[b].clone(),
                        _ => r[a].clone(),
                    })
                    .collect();
                out.extend(r);
                out
            })
            .collect();
        Ok(Rel {
            cols: out_cols,
            rows,
        })
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
        // Set-returning functions in the select list expand the filtered input.
        let srf_sel;
        let s = match self.expand_tlist_srfs(s, &mut input)? {
            Some(ns) => {
                srf_sel = ns;
                &srf_sel
            }
            None => s,
        };
        // ROLLUP / CUBE / GROUPING SETS and grouping(): a flat GROUP BY plus hidden columns.
        let grp_sel;
        let mut gplan = None;
        let s = match super::grouping::plan_grouping(s)? {
            Some((ns, plan)) => {
                for k in 0..plan.calls.len() {
                    input.cols.push(ColInfo {
                        table: Some(super::grouping::GROUPING_QUAL.into()),
                        name: format!("g{k}"),
                        ty: DataType::Int4,
                        hidden: true,
                    });
                }
                for r in input.rows.iter_mut() {
                    r.extend(std::iter::repeat_n(Value::Null, plan.calls.len()));
                }
                gplan = Some(plan);
                grp_sel = ns;
                &grp_sel
            }
            None => s,
        };
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
        // Window functions read the input rows, or the groups of an aggregate query (their
        // columns are numbered from AGG_WIN_BASE while aggregates are still being found, then
        // moved after the aggregate values).
        const AGG_WIN_BASE: usize = 1 << 40;
        let wincx = RefCell::new(super::window::WinCx {
            base: if is_agg {
                AGG_WIN_BASE
            } else {
                input.cols.len()
            },
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
            win: Some(&wincx),
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
        let having_cx = Cx {
            cols: cx.cols,
            agg: cx.agg,
            win: None,
            clause: "HAVING",
        };
        let having = match &s.having {
            Some(h) => Some(coerce(
                self.bind(h, &having_cx)?,
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
            match &gplan {
                Some(plan) => self.aggregate_sets(&input.rows, &aggcx.borrow(), plan)?,
                None => self.aggregate(&input.rows, &aggcx.borrow())?,
            }
        } else {
            input.rows
        };
        let specs = std::mem::take(&mut wincx.borrow_mut().specs);
        let (exprs, hidden) = if is_agg && !specs.is_empty() {
            let width = {
                let ag = aggcx.borrow();
                ag.group_exprs.len() + ag.aggs.len()
            };
            let remap = |e: &Expr| {
                crate::plan::planner::map_columns(e, &|i| {
                    if i >= AGG_WIN_BASE {
                        width + (i - AGG_WIN_BASE)
                    } else {
                        i
                    }
                })
            };
            (
                exprs.iter().map(remap).collect::<Vec<_>>(),
                hidden.iter().map(remap).collect::<Vec<_>>(),
            )
        } else {
            (exprs, hidden)
        };
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

    /// Aggregate once per grouping set: grouping expressions outside the set read as NULL and
    /// `grouping()` columns as their value for the set; the empty set yields one row even for
    /// empty input (as a query without GROUP BY).
    fn aggregate_sets(
        &self,
        rows: &[Vec<Value>],
        ag: &AggCx,
        plan: &super::grouping::GroupingPlan,
    ) -> Result<Vec<Vec<Value>>, PgError> {
        let mut out = Vec::new();
        for set in &plan.sets {
            let consts: Vec<Expr> = ag
                .group_exprs
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    if i < plan.nflat {
                        if set.contains(&i) {
                            e.clone()
                        } else {
                            Expr::Const(Value::Null, e.data_type())
                        }
                    } else {
                        Expr::Const(
                            Value::Int4(plan.call_value(i - plan.nflat, set)),
                            DataType::Int4,
                        )
                    }
                })
                .collect();
            if set.is_empty() {
                let one = AggCx {
                    group_ast: Vec::new(),
                    group_exprs: Vec::new(),
                    aggs: ag.aggs.clone(),
                };
                for r in self.aggregate(rows, &one)? {
                    let mut row = consts
                        .iter()
                        .map(|e| e.eval(&[], &self.cx))
                        .collect::<Result<Vec<_>, _>>()?;
                    row.extend(r);
                    out.push(row);
                }
                continue;
            }
            let cx = AggCx {
                group_ast: ag.group_ast.clone(),
                group_exprs: consts,
                aggs: ag.aggs.clone(),
            };
            out.extend(self.aggregate(rows, &cx)?);
        }
        Ok(out)
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

fn parse_expr(text: &str) -> Result<A, PgError> {
    match crate::parser::parse(&format!("SELECT {text}"))?
        .into_iter()
        .next()
    {
        Some(Statement::Sql(ast::Statement::Query(q))) => match *q.body {
            ast::SetExpr::Select(s) => match s.projection.into_iter().next() {
                Some(ast::SelectItem::UnnamedExpr(e)) => Ok(e),
                _ => Err(err(SqlState::InternalError, "bad generated expression")),
            },
            _ => Err(err(SqlState::InternalError, "bad generated expression")),
        },
        _ => Err(err(SqlState::InternalError, "bad generated expression")),
    }
}

/// A recursive CTE with `SEARCH {DEPTH | BREADTH} FIRST BY cols SET ordercol` (marked by the
/// parser as an extra column `"pgxc_search mode cols ordercol"`): the CTE with the ordering
/// column computed by its terms. Depth first: the array of the BY values along the path (root
/// first); breadth first: `[depth, BY values...]`. Sorting by the column gives PostgreSQL's
/// order (its value prints as an array rather than PostgreSQL's record form).
///
/// Errors: 42703 for a BY column the CTE does not have; 42P19 for a non-UNION form.
fn search_clause(cte: &ast::Cte, name: &str) -> Result<Option<ast::Cte>, PgError> {
    let prefix = format!("{} ", crate::parser::CTE_SEARCH);
    let Some(marker) = cte
        .alias
        .columns
        .last()
        .map(|c| c.name.value.clone())
        .filter(|v| v.starts_with(&prefix))
    else {
        return Ok(None);
    };
    let parts: Vec<&str> = marker.split(' ').collect();
    let [_, mode, by, set] = parts.as_slice() else {
        return Ok(None);
    };
    let mut cte = cte.clone();
    cte.alias.columns.pop();
    let ast::SetExpr::SetOperation { left, right, .. } = cte.query.body.as_mut() else {
        return Err(err(
            SqlState::InvalidRecursion,
            format!(
                "with a SEARCH or CYCLE clause, the recursive query \"{name}\" must be a UNION"
            ),
        ));
    };
    let (ast::SetExpr::Select(l), ast::SetExpr::Select(r)) = (left.as_mut(), right.as_mut()) else {
        return Err(unsupported("SEARCH over this recursive query form"));
    };
    let names: Vec<String> = if cte.alias.columns.is_empty() {
        l.projection
            .iter()
            .map(|p| match p {
                ast::SelectItem::ExprWithAlias { alias, .. } => normalize_ident(alias),
                ast::SelectItem::UnnamedExpr(e) => proj_name(e),
                _ => String::new(),
            })
            .collect()
    } else {
        cte.alias
            .columns
            .iter()
            .map(|c| normalize_ident(&c.name))
            .collect()
    };
    let item = |sel: &ast::Select, k: usize| -> Option<String> {
        match sel.projection.get(k)? {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(format!("({e})"))
            }
            _ => None,
        }
    };
    let mut lv = Vec::new();
    let mut rv = Vec::new();
    for b in by.split(',') {
        let k = names.iter().position(|n| n == b).ok_or_else(|| {
            err(
                SqlState::UndefinedColumn,
                format!("search column \"{b}\" not in WITH query column list"),
            )
        })?;
        lv.push(item(l, k).ok_or_else(|| unsupported("SEARCH over a * select list"))?);
        rv.push(item(r, k).ok_or_else(|| unsupported("SEARCH over a * select list"))?);
    }
    // The recursive term's reference to the CTE.
    let mut qual = None;
    for twj in &r.from {
        for tf in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            if let ast::TableFactor::Table { name: n, alias, .. } = tf {
                if object_name(n).last().is_some_and(|x| x == name) {
                    qual = Some(match alias {
                        Some(a) => normalize_ident(&a.name),
                        None => name.to_string(),
                    });
                }
            }
        }
    }
    let qual = qual.ok_or_else(|| unsupported("SEARCH without a recursive reference"))?;
    let q = format!("\"{qual}\".\"{set}\"");
    let (le, re) = if *mode == "breadth" {
        (
            format!("ARRAY[0, {}]", lv.join(", ")),
            format!("ARRAY[({q})[1] + 1, {}]", rv.join(", ")),
        )
    } else {
        (
            format!("ARRAY[{}]", lv.join(", ")),
            format!("{q} || ARRAY[{}]", rv.join(", ")),
        )
    };
    l.projection
        .push(ast::SelectItem::UnnamedExpr(parse_expr(&le)?));
    r.projection
        .push(ast::SelectItem::UnnamedExpr(parse_expr(&re)?));
    if cte.alias.columns.is_empty() {
        cte.alias.columns = names
            .iter()
            .map(|n| ast::TableAliasColumnDef {
                name: ast::Ident::with_quote('"', n.clone()),
                data_type: None,
            })
            .collect();
    }
    cte.alias.columns.push(ast::TableAliasColumnDef {
        name: ast::Ident::with_quote('"', set.to_string()),
        data_type: None,
    });
    Ok(Some(cte))
}

/// How many times FROM item `tf` reads the relation `name` (aliases ignored).
fn count_refs(tf: &ast::TableFactor, name: &str) -> usize {
    match tf {
        ast::TableFactor::Table {
            name: n,
            args: None,
            ..
        } => usize::from(object_name(n).last().is_some_and(|x| x == name)),
        ast::TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            count_refs(&table_with_joins.relation, name)
                + table_with_joins
                    .joins
                    .iter()
                    .map(|j| count_refs(&j.relation, name))
                    .sum::<usize>()
        }
        _ => 0,
    }
}

/// When `q` only reads the first rows of recursive CTE `name` (`SELECT cols FROM name LIMIT
/// n [OFFSET m]`, no filter, grouping, ordering or window), how many rows it needs.
fn recursion_cap(q: &ast::Query, name: &str) -> Option<usize> {
    if q.order_by.is_some() || q.fetch.is_some() {
        return None;
    }
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let plain = sel.from.len() == 1
        && sel.from[0].joins.is_empty()
        && count_refs(&sel.from[0].relation, name) == 1
        && sel.selection.is_none()
        && sel.having.is_none()
        && sel.distinct.is_none()
        && matches!(&sel.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty())
        && sel.projection.iter().all(|p| match p {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                !contains_agg(e)
                    && !has_subquery(e)
                    && !super::srf::is_srf_call(e)
                    && !e.to_string().to_ascii_uppercase().contains(" OVER ")
            }
            _ => true,
        });
    if !plain {
        return None;
    }
    let lit = |e: &A| match e {
        A::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    };
    match &q.limit_clause {
        Some(ast::LimitClause::LimitOffset {
            limit: Some(l),
            offset,
            ..
        }) => {
            let off = match offset {
                Some(o) => lit(&o.value)?,
                None => 0,
            };
            lit(l).map(|n| n.saturating_add(off))
        }
        _ => None,
    }
}

/// The names FROM item `tf` makes visible at its query level (tables, aliases, functions; a
/// join without an alias contributes its members').
fn from_item_names(tf: &ast::TableFactor, out: &mut Vec<String>) {
    match tf {
        ast::TableFactor::Table { name, alias, .. } => out.push(match alias {
            Some(a) => normalize_ident(&a.name),
            None => object_name(name).last().cloned().unwrap_or_default(),
        }),
        ast::TableFactor::Function { name, alias, .. } => out.push(match alias {
            Some(a) => normalize_ident(&a.name),
            None => object_name(name).last().cloned().unwrap_or_default(),
        }),
        ast::TableFactor::UNNEST { alias, .. } => out.push(match alias {
            Some(a) => normalize_ident(&a.name),
            None => "unnest".into(),
        }),
        ast::TableFactor::Derived { alias: Some(a), .. } => out.push(normalize_ident(&a.name)),
        ast::TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => match alias {
            Some(a) => out.push(normalize_ident(&a.name)),
            None => {
                from_item_names(&table_with_joins.relation, out);
                for j in &table_with_joins.joins {
                    from_item_names(&j.relation, out);
                }
            }
        },
        _ => {}
    }
}

/// PostgreSQL's parse-time checks of a SELECT's FROM list: 42712 when two items of one level
/// share a name (`FROM t a, u a`, `FROM t, t`), 42P01 when `FOR UPDATE/SHARE OF x` names no
/// FROM item.
fn check_from_names(q: &ast::Query) -> Result<(), PgError> {
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return Ok(());
    };
    let mut names = Vec::new();
    for twj in &sel.from {
        from_item_names(&twj.relation, &mut names);
        for j in &twj.joins {
            from_item_names(&j.relation, &mut names);
        }
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(err(
                SqlState::DuplicateAlias,
                format!("table name \"{n}\" specified more than once"),
            ));
        }
    }
    for l in &q.locks {
        if let Some(of) = &l.of {
            let n = object_name(of).last().cloned().unwrap_or_default();
            if !names.contains(&n) {
                return Err(err(
                    SqlState::UndefinedTable,
                    format!("relation \"{n}\" in FOR UPDATE clause not found in FROM clause"),
                ));
            }
        }
    }
    Ok(())
}

/// A stored column default as PostgreSQL displays it (`information_schema.columns`,
/// `pg_get_expr`): sequence references as `nextval('s'::regclass)`, the schema omitted when it
/// is `public` (on the search path).
fn display_default(d: &str) -> String {
    match d
        .strip_prefix("nextval('")
        .and_then(|r| r.strip_suffix("')"))
    {
        Some(seq) => format!(
            "nextval('{}'::regclass)",
            seq.strip_prefix("public.").unwrap_or(seq)
        ),
        None => d.to_string(),
    }
}

/// Whether a FROM item may reference earlier FROM items: a LATERAL subquery, or a function
/// call (implicitly LATERAL in PostgreSQL).
pub(super) fn is_lateral(tf: &ast::TableFactor) -> bool {
    match tf {
        ast::TableFactor::Derived { lateral, .. } => *lateral,
        ast::TableFactor::Table { args: Some(_), .. }
        | ast::TableFactor::Function { .. }
        | ast::TableFactor::UNNEST { .. } => true,
        ast::TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            is_lateral(&table_with_joins.relation)
                || table_with_joins
                    .joins
                    .iter()
                    .any(|j| is_lateral(&j.relation))
        }
        _ => false,
    }
}

/// A relation's `regclass` text: its name, schema-qualified only when the search path would not
/// find it first (PostgreSQL's `regclassout`).
pub(super) fn regclass_name(schema: &str, name: &str, path: &[String]) -> String {
    if path.first().map(String::as_str) == Some(schema) {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}
