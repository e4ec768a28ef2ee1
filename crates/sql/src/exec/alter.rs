//! ALTER TABLE: columns (add, drop, rename, type, default, NOT NULL), constraints (CHECK,
//! UNIQUE, PRIMARY KEY; FOREIGN KEY accepted and not enforced), rename. Changes that touch
//! rows rewrite every row version in the same transaction, so ALTER TABLE stays transactional.

use super::*;

impl<'a> Exec<'a> {
    /// Rewrite every visible row of `def` with `f` (which sees the old row), storing the keys of
    /// `def`'s indexes as they are after the change.
    fn rewrite_rows(
        &self,
        def: &TableDef,
        mut f: impl FnMut(Vec<Value>) -> Result<Vec<Value>, PgError>,
    ) -> Result<(), PgError> {
        for r in self.scan(RelId(def.rel))? {
            let new = f(decode_row(&r.data)?)?;
            self.check_row(def, &new)?;
            let payload = encode_row(&new)?;
            let keys = Self::keys(def, &new);
            let mut t = self.txn.borrow_mut();
            match self
                .eng
                .block_on(t.update(RelId(def.rel), r.tid, &payload, &keys))
                .map_err(|e| Self::unique_error(def, e))?
            {
                Outcome::Done(_) | Outcome::SelfModified => {}
                _ => {
                    return Err(err(
                        SqlState::SerializationFailure,
                        "could not serialize access due to concurrent update",
                    ))
                }
            }
        }
        Ok(())
    }

    fn rows_of(&self, def: &TableDef) -> Result<Vec<Vec<Value>>, PgError> {
        self.scan(RelId(def.rel))?
            .into_iter()
            .map(|r| decode_row(&r.data))
            .collect()
    }

    pub(super) fn alter_table(&self, a: &ast::AlterTable) -> Result<QueryResult, PgError> {
        let Some((tid, mut def)) = self
            .find_table_opt(&a.name)?
            .filter(|(_, d)| d.view.is_none())
        else {
            if a.if_exists {
                return Ok(QueryResult::command("ALTER TABLE"));
            }
            return Err(err(
                SqlState::UndefinedTable,
                format!(
                    "relation \"{}\" does not exist",
                    object_name(&a.name).join(".")
                ),
            ));
        };
        for op in &a.operations {
            self.alter_op(&mut def, op)?;
            // Later operations see the rows written by earlier ones.
            self.txn.borrow_mut().next_command()?;
        }
        self.put_catalog(Some(tid), &def)?;
        Ok(QueryResult::command("ALTER TABLE"))
    }

    fn column_pos(def: &TableDef, id: &ast::Ident) -> Result<usize, PgError> {
        let n = normalize_ident(id);
        def.column(&n).ok_or_else(|| {
            err(
                SqlState::UndefinedColumn,
                format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
            )
        })
    }

    fn alter_op(&self, def: &mut TableDef, op: &ast::AlterTableOperation) -> Result<(), PgError> {
        use ast::AlterTableOperation as O;
        match op {
            O::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let n = normalize_ident(&column_def.name);
                if def.column(&n).is_some() {
                    if *if_not_exists {
                        return Ok(());
                    }
                    return Err(err(
                        SqlState::DuplicateColumn,
                        format!("column \"{n}\" of relation \"{}\" already exists", def.name),
                    ));
                }
                let ty = parse_type(&column_def.data_type)?;
                let mut col = ColumnDef {
                    name: n.clone(),
                    ty,
                    not_null: false,
                    default: None,
                    identity_always: false,
                    generated: None,
                };
                let mut unique = None;
                for o in &column_def.options {
                    match &o.option {
                        ast::ColumnOption::NotNull => col.not_null = true,
                        ast::ColumnOption::Null => {}
                        ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                        ast::ColumnOption::Unique(_) => unique = Some(false),
                        ast::ColumnOption::PrimaryKey(_) => {
                            col.not_null = true;
                            unique = Some(true);
                        }
                        ast::ColumnOption::Check(c) => def.checks.push(CheckDef {
                            name: format!("{}_{n}_check", def.name),
                            expr: c.expr.to_string(),
                        }),
                        ast::ColumnOption::ForeignKey(_) => {
                            return Err(unsupported("REFERENCES in ADD COLUMN"))
                        }
                        other => return Err(unsupported(format!("column option {other}"))),
                    }
                }
                let d = self.default_expr(&col)?;
                def.columns.push(col);
                let value = d.eval(&[], &self.cx)?;
                self.rewrite_rows(def, |mut r| {
                    r.push(value.clone());
                    Ok(r)
                })?;
                if let Some(primary) = unique {
                    let p = def.columns.len() - 1;
                    let iname = if primary {
                        format!("{}_pkey", def.name)
                    } else {
                        format!("{}_{n}_key", def.name)
                    };
                    self.add_index(def, iname, vec![p], true, primary)?;
                }
                Ok(())
            }
            O::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for c in column_names {
                    let n = normalize_ident(c);
                    let Some(p) = def.column(&n) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(err(
                            SqlState::UndefinedColumn,
                            format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                        ));
                    };
                    let mut kept = Vec::new();
                    for mut idx in std::mem::take(&mut def.indexes) {
                        if idx.columns.contains(&p) {
                            let mut t = self.txn.borrow_mut();
                            self.eng.block_on(t.drop_relation(RelId(idx.rel)))?;
                        } else {
                            for c in idx.columns.iter_mut() {
                                if *c > p {
                                    *c -= 1;
                                }
                            }
                            kept.push(idx);
                        }
                    }
                    def.indexes = kept;
                    def.columns.remove(p);
                    let cname = n.clone();
                    def.checks.retain(|ch| !ch.expr.contains(&cname));
                    self.rewrite_rows(def, |mut r| {
                        if p < r.len() {
                            r.remove(p);
                        }
                        Ok(r)
                    })?;
                }
                Ok(())
            }
            O::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let p = Self::column_pos(def, old_column_name)?;
                let n = normalize_ident(new_column_name);
                if def.column(&n).is_some() {
                    return Err(err(
                        SqlState::DuplicateColumn,
                        format!("column \"{n}\" of relation \"{}\" already exists", def.name),
                    ));
                }
                def.columns[p].name = n;
                Ok(())
            }
            O::RenameTable { table_name } => {
                let n = match table_name {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
                };
                let (_, name) = split_name(n);
                if self.find_table_opt(n)?.is_some() {
                    return Err(err(
                        SqlState::DuplicateTable,
                        format!("relation \"{name}\" already exists"),
                    ));
                }
                def.name = name;
                Ok(())
            }
            O::AlterColumn { column_name, op } => {
                let p = Self::column_pos(def, column_name)?;
                match op {
                    ast::AlterColumnOperation::SetNotNull => {
                        def.columns[p].not_null = true;
                        if self
                            .rows_of(def)?
                            .iter()
                            .any(|r| r.get(p).is_none_or(Value::is_null))
                        {
                            return Err(err(
                                SqlState::NotNullViolation,
                                format!(
                                    "column \"{}\" of relation \"{}\" contains null values",
                                    def.columns[p].name, def.name
                                ),
                            ));
                        }
                    }
                    ast::AlterColumnOperation::DropNotNull => {
                        if def
                            .indexes
                            .iter()
                            .any(|i| i.primary && i.columns.contains(&p))
                        {
                            return Err(err(
                                SqlState::InvalidTableDefinition,
                                format!("column \"{}\" is in a primary key", def.columns[p].name),
                            ));
                        }
                        def.columns[p].not_null = false;
                    }
                    ast::AlterColumnOperation::SetDefault { value } => {
                        let e = self.bind(value, &Cx::plain(&[]))?;
                        coerce(e, &def.columns[p].ty, CastContext::Assignment)?;
                        def.columns[p].default = Some(value.to_string());
                    }
                    ast::AlterColumnOperation::DropDefault => def.columns[p].default = None,
                    ast::AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    } => {
                        let to = parse_type(data_type)?;
                        let from = def.columns[p].ty.clone();
                        let scope = Self::table_scope(def, None);
                        let conv = match using {
                            Some(u) => coerce(
                                self.bind(u, &Cx::plain(&scope))?,
                                &to,
                                CastContext::Assignment,
                            )?,
                            None => {
                                coerce(Expr::Column(p, from.clone()), &to, CastContext::Assignment)
                                    .map_err(|_| {
                                        err(
                                            SqlState::DatatypeMismatch,
                                            format!(
                                        "column \"{}\" cannot be cast automatically to type {}",
                                        def.columns[p].name,
                                        to.name()
                                    ),
                                        )
                                    })?
                            }
                        };
                        def.columns[p].ty = to;
                        let cx = self.cx.clone();
                        self.rewrite_rows(def, |mut r| {
                            let v = conv.eval(&r, &cx)?;
                            if p < r.len() {
                                r[p] = v;
                            }
                            Ok(r)
                        })?;
                    }
                    other => return Err(unsupported(format!("ALTER COLUMN {other}"))),
                }
                Ok(())
            }
            O::AddConstraint { constraint, .. } => match constraint {
                ast::TableConstraint::Check(ch) => {
                    let name = ch
                        .name
                        .as_ref()
                        .map(normalize_ident)
                        .unwrap_or_else(|| format!("{}_check", def.name));
                    let scope = Self::table_scope(def, None);
                    let e = self.bind_bool(&ch.expr, &Cx::plain(&scope))?;
                    for r in self.rows_of(def)? {
                        if e.eval(&r, &self.cx)? == Value::Bool(false) {
                            return Err(err(
                                SqlState::CheckViolation,
                                format!(
                                    "check constraint \"{name}\" of relation \"{}\" is violated by some row",
                                    def.name
                                ),
                            ));
                        }
                    }
                    def.checks.push(CheckDef {
                        name,
                        expr: ch.expr.to_string(),
                    });
                    Ok(())
                }
                ast::TableConstraint::PrimaryKey(pk) => {
                    if def.indexes.iter().any(|i| i.primary) {
                        return Err(err(
                            SqlState::InvalidTableDefinition,
                            format!(
                                "multiple primary keys for table \"{}\" are not allowed",
                                def.name
                            ),
                        ));
                    }
                    let cols = self.index_columns(def, &pk.columns)?;
                    let rows = self.rows_of(def)?;
                    for &c in &cols {
                        if rows.iter().any(|r| r.get(c).is_none_or(Value::is_null)) {
                            return Err(err(
                                SqlState::NotNullViolation,
                                format!(
                                    "column \"{}\" of relation \"{}\" contains null values",
                                    def.columns[c].name, def.name
                                ),
                            ));
                        }
                        def.columns[c].not_null = true;
                    }
                    let name = pk
                        .name
                        .as_ref()
                        .map(normalize_ident)
                        .unwrap_or_else(|| format!("{}_pkey", def.name));
                    self.add_index(def, name, cols, true, true)
                }
                ast::TableConstraint::Unique(u) => {
                    let cols = self.index_columns(def, &u.columns)?;
                    let name = u.name.as_ref().map(normalize_ident).unwrap_or_else(|| {
                        let names: Vec<&str> =
                            cols.iter().map(|&c| def.columns[c].name.as_str()).collect();
                        format!("{}_{}_key", def.name, names.join("_"))
                    });
                    self.add_index(def, name, cols, true, false)
                }
                ast::TableConstraint::ForeignKey(fk) => {
                    let cols: Vec<String> = fk.columns.iter().map(normalize_ident).collect();
                    let f = self.bind_fk(def, None, &cols, fk)?;
                    def.fks.push(f);
                    for r in self.rows_of(def)? {
                        self.check_fks(def, &r)?;
                    }
                    Ok(())
                }
                other => Err(unsupported(format!("constraint {other}"))),
            },
            O::DropConstraint {
                if_exists, name, ..
            } => {
                let n = normalize_ident(name);
                let before = def.checks.len() + def.fks.len();
                def.checks.retain(|c| c.name != n);
                def.fks.retain(|c| c.name != n);
                if def.checks.len() + def.fks.len() != before {
                    return Ok(());
                }
                if let Some(p) = def.indexes.iter().position(|i| i.name == n) {
                    let idx = def.indexes.remove(p);
                    let mut t = self.txn.borrow_mut();
                    self.eng.block_on(t.drop_relation(RelId(idx.rel)))?;
                    return Ok(());
                }
                if *if_exists {
                    return Ok(());
                }
                Err(err(
                    SqlState::UndefinedObject,
                    format!(
                        "constraint \"{n}\" of relation \"{}\" does not exist",
                        def.name
                    ),
                ))
            }
            other => Err(unsupported(format!("ALTER TABLE {other}"))),
        }
    }

    fn index_columns(
        &self,
        def: &TableDef,
        cols: &[ast::IndexColumn],
    ) -> Result<Vec<usize>, PgError> {
        cols.iter()
            .map(|c| match &c.column.expr {
                A::Identifier(i) => Self::column_pos(def, i),
                other => Err(unsupported(format!("index expression {other}"))),
            })
            .collect()
    }
}
