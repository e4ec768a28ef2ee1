//! Automatically updatable views (PostgreSQL's rules, `rewriteHandler.c`): INSERT, UPDATE and
//! DELETE on a view whose query reads exactly one base table, without DISTINCT, GROUP BY,
//! HAVING, LIMIT/OFFSET, set operations, aggregates, window functions or WITH, and whose select
//! list holds only plain column references, are rewritten onto the base table: view columns map
//! to base columns and the view's WHERE condition restricts UPDATE and DELETE. Other views give
//! 55000 (`cannot insert into view "v"`), as PostgreSQL without rules or triggers.

use super::*;

/// How an updatable view maps onto its base table.
struct ViewMap {
    /// The base table as the view names it.
    base: ast::ObjectName,
    /// The base table's alias in the view (qualifies `cond`).
    alias: Option<ast::TableAlias>,
    /// (view column, base column), in view column order.
    cols: Vec<(String, String)>,
    /// The view's WHERE condition.
    cond: Option<A>,
}

fn not_updatable(verb: &str, view: &str, why: &str) -> PgError {
    PgError::new(
        SqlState::ObjectNotInPrerequisiteState,
        format!("cannot {verb} view \"{view}\": {why}"),
    )
}

/// Rename view column references in `e` to base column names (plain and qualified names).
fn rename(e: &mut A, map: &[(String, String)]) {
    let fix = |id: &mut ast::Ident| {
        let n = normalize_ident(id);
        if let Some((_, b)) = map.iter().find(|(v, b)| *v == n && v != b) {
            *id = ast::Ident::with_quote('"', b.clone());
        }
    };
    match e {
        A::Identifier(id) => fix(id),
        A::CompoundIdentifier(v) => {
            if let Some(last) = v.last_mut() {
                fix(last);
            }
        }
        A::BinaryOp { left, right, .. } => {
            rename(left, map);
            rename(right, map);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::Cast { expr, .. }
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsFalse(expr) => rename(expr, map),
        A::Between {
            expr, low, high, ..
        } => {
            rename(expr, map);
            rename(low, map);
            rename(high, map);
        }
        A::Function(f) => {
            if let FunctionArguments::List(l) = &mut f.args {
                for a in l.args.iter_mut() {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                        rename(x, map);
                    }
                }
            }
        }
        _ => {}
    }
}

fn and(a: Option<A>, b: Option<A>) -> Option<A> {
    match (a, b) {
        (Some(x), Some(y)) => Some(A::BinaryOp {
            left: Box::new(A::Nested(Box::new(x))),
            op: ast::BinaryOperator::And,
            right: Box::new(A::Nested(Box::new(y))),
        }),
        (x, None) => x,
        (None, y) => y,
    }
}

impl<'a> Exec<'a> {
    /// The mapping of view `name` onto its base table: `None` if `name` is not a view.
    ///
    /// Errors: 55000 when the view is not automatically updatable (`verb`: "insert into",
    /// "update", "delete from").
    fn view_map(&self, name: &ast::ObjectName, verb: &str) -> Result<Option<ViewMap>, PgError> {
        let Some((_, def)) = self.find_table_opt(name)? else {
            return Ok(None);
        };
        let Some(text) = &def.view else {
            return Ok(None);
        };
        let q = match crate::parser::parse(text)?.into_iter().next() {
            Some(Statement::Sql(ast::Statement::Query(q))) => q,
            _ => return Err(err(SqlState::InternalError, "bad view definition")),
        };
        let bad = |why: &str| not_updatable(verb, &def.name, why);
        if q.with.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || !q.locks.is_empty()
        {
            return Err(bad(
                "Views containing WITH, LIMIT or OFFSET are not automatically updatable.",
            ));
        }
        let ast::SetExpr::Select(sel) = q.body.as_ref() else {
            return Err(bad(
                "Views containing UNION, INTERSECT, or EXCEPT are not automatically updatable.",
            ));
        };
        let grouped = !matches!(&sel.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty());
        if sel.distinct.is_some() || grouped || sel.having.is_some() {
            return Err(bad(
                "Views containing DISTINCT, GROUP BY or HAVING are not automatically updatable.",
            ));
        }
        if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
            return Err(bad(
                "Views that do not select from a single table or view are not automatically updatable.",
            ));
        }
        let ast::TableFactor::Table {
            name: base,
            alias,
            args: None,
            ..
        } = &sel.from[0].relation
        else {
            return Err(bad(
                "Views that do not select from a single table or view are not automatically updatable.",
            ));
        };
        let (_, bdef) = self.find_base_table(base)?;
        let mut base_cols = Vec::new();
        for p in &sel.projection {
            let e = match p {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(bad(
                        "Views with multi-alias items are not automatically updatable.",
                    ))
                }
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    base_cols.extend(bdef.columns.iter().map(|c| c.name.clone()));
                    continue;
                }
            };
            if contains_agg(e) {
                return Err(bad(
                    "Views that return aggregate functions are not automatically updatable.",
                ));
            }
            let col = match e {
                A::Identifier(id) => normalize_ident(id),
                A::CompoundIdentifier(v) => v.last().map(normalize_ident).unwrap_or_default(),
                _ => {
                    return Err(bad(
                        "Views that return columns that are not columns of their base relation are not automatically updatable.",
                    ))
                }
            };
            if bdef.column(&col).is_none() {
                return Err(err(
                    SqlState::UndefinedColumn,
                    format!("column \"{col}\" does not exist"),
                ));
            }
            base_cols.push(col);
        }
        let cols = def
            .columns
            .iter()
            .map(|c| c.name.clone())
            .zip(base_cols)
            .collect();
        Ok(Some(ViewMap {
            base: base.clone(),
            alias: alias.clone(),
            cols,
            cond: sel.selection.clone(),
        }))
    }

    /// After `e` from INSERT / UPDATE / DELETE `st`: when `e` is the 55000 of a view target,
    /// run `st` rewritten onto the view's base table (or fail with the view's 55000 reason);
    /// otherwise `e`.
    pub(super) fn view_dml(&self, st: &ast::Statement, e: PgError) -> Result<QueryResult, PgError> {
        if e.code != SqlState::ObjectNotInPrerequisiteState {
            return Err(e);
        }
        match self.rewrite_view_dml(st)? {
            Some(rewritten) => self.run(&Statement::Sql(rewritten)),
            None => Err(e),
        }
    }

    /// INSERT / UPDATE / DELETE on an automatically updatable view, rewritten onto its base
    /// table; `None` when the target is not a view.
    ///
    /// Errors: 55000 for a view that is not automatically updatable; 42703 for a column the
    /// view does not have.
    pub(super) fn rewrite_view_dml(
        &self,
        st: &ast::Statement,
    ) -> Result<Option<ast::Statement>, PgError> {
        let view_col = |m: &ViewMap, n: &str, view: &str| -> Result<String, PgError> {
            m.cols
                .iter()
                .find(|(v, _)| v == n)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| {
                    err(
                        SqlState::UndefinedColumn,
                        format!("column \"{n}\" of relation \"{view}\" does not exist"),
                    )
                })
        };
        match st {
            ast::Statement::Insert(ins) => {
                let ast::TableObject::TableName(name) = &ins.table else {
                    return Ok(None);
                };
                let Some(m) = self.view_map(name, "insert into")? else {
                    return Ok(None);
                };
                let view = object_name(name).last().cloned().unwrap_or_default();
                let mut ins = ins.clone();
                ins.table = ast::TableObject::TableName(m.base.clone());
                let names: Vec<String> = if ins.columns.is_empty() {
                    m.cols.iter().map(|(_, b)| b.clone()).collect()
                } else {
                    ins.columns
                        .iter()
                        .map(|c| {
                            view_col(
                                &m,
                                &object_name(c).last().cloned().unwrap_or_default(),
                                &view,
                            )
                        })
                        .collect::<Result<_, _>>()?
                };
                ins.columns = names
                    .into_iter()
                    .map(|n| {
                        ast::ObjectName(vec![ast::ObjectNamePart::Identifier(
                            ast::Ident::with_quote('"', n),
                        )])
                    })
                    .collect();
                Ok(Some(ast::Statement::Insert(ins)))
            }
            ast::Statement::Update(u) => {
                let ast::TableFactor::Table { name, alias, .. } = &u.table.relation else {
                    return Ok(None);
                };
                if !u.table.joins.is_empty() {
                    return Ok(None);
                }
                let Some(m) = self.view_map(name, "update")? else {
                    return Ok(None);
                };
                let view = object_name(name).last().cloned().unwrap_or_default();
                let mut u = u.clone();
                if alias.is_some() && m.alias.is_some() {
                    return Err(unsupported("an aliased UPDATE of an aliased view"));
                }
                if let ast::TableFactor::Table {
                    name: n, alias: al, ..
                } = &mut u.table.relation
                {
                    *n = m.base.clone();
                    *al = alias.clone().or(m.alias.clone());
                }
                for a in u.assignments.iter_mut() {
                    if let ast::AssignmentTarget::ColumnName(n) = &mut a.target {
                        let b = view_col(
                            &m,
                            &object_name(n).last().cloned().unwrap_or_default(),
                            &view,
                        )?;
                        *n = ast::ObjectName(vec![ast::ObjectNamePart::Identifier(
                            ast::Ident::with_quote('"', b),
                        )]);
                    }
                    rename(&mut a.value, &m.cols);
                }
                let mut w = u.selection.take();
                if let Some(x) = w.as_mut() {
                    rename(x, &m.cols);
                }
                u.selection = and(w, m.cond.clone());
                Ok(Some(ast::Statement::Update(u)))
            }
            ast::Statement::Delete(d) => {
                let from = match &d.from {
                    ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
                };
                let [twj] = from.as_slice() else {
                    return Ok(None);
                };
                let ast::TableFactor::Table { name, alias, .. } = &twj.relation else {
                    return Ok(None);
                };
                let Some(m) = self.view_map(name, "delete from")? else {
                    return Ok(None);
                };
                if alias.is_some() && m.alias.is_some() {
                    return Err(unsupported("an aliased DELETE of an aliased view"));
                }
                let mut d = d.clone();
                let mut twj = twj.clone();
                if let ast::TableFactor::Table {
                    name: n, alias: al, ..
                } = &mut twj.relation
                {
                    *n = m.base.clone();
                    *al = alias.clone().or(m.alias.clone());
                }
                d.from = match &d.from {
                    ast::FromTable::WithFromKeyword(_) => {
                        ast::FromTable::WithFromKeyword(vec![twj])
                    }
                    ast::FromTable::WithoutKeyword(_) => ast::FromTable::WithoutKeyword(vec![twj]),
                };
                let mut w = d.selection.take();
                if let Some(x) = w.as_mut() {
                    rename(x, &m.cols);
                }
                d.selection = and(w, m.cond.clone());
                Ok(Some(ast::Statement::Delete(d)))
            }
            _ => Ok(None),
        }
    }
}
