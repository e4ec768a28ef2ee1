//! FOREIGN KEY enforcement (PostgreSQL's RI triggers, done inline): a referencing row must
//! match a referenced row (23503); deleting or re-keying a referenced row applies the
//! constraint's action to the referencing rows.

use super::*;
use crate::catalog::{FkAction, FkDef};

fn action(a: &Option<ast::ReferentialAction>) -> FkAction {
    match a {
        Some(ast::ReferentialAction::Cascade) => FkAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => FkAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => FkAction::SetDefault,
        _ => FkAction::NoAction,
    }
}

fn same_key(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| compare(x, y) == Some(Ordering::Equal))
}

impl<'a> Exec<'a> {
    /// Build a FOREIGN KEY of `def` (whose columns are known) from its AST. `cols` are the
    /// referencing column names.
    pub(super) fn bind_fk(
        &self,
        def: &TableDef,
        name: Option<&ast::Ident>,
        cols: &[String],
        fk: &ast::ForeignKeyConstraint,
    ) -> Result<FkDef, PgError> {
        let (ref_schema, ref_table) = split_name(&fk.foreign_table);
        let parent = if ref_table == def.name {
            def.clone()
        } else {
            self.find_base_table(&fk.foreign_table)?.1
        };
        let columns = cols
            .iter()
            .map(|c| {
                def.column(c).ok_or_else(|| {
                    err(
                        SqlState::UndefinedColumn,
                        format!(
                            "column \"{c}\" referenced in foreign key constraint does not exist"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ref_columns: Vec<usize> = if fk.referred_columns.is_empty() {
            parent
                .indexes
                .iter()
                .find(|i| i.primary)
                .map(|i| i.columns.clone())
                .ok_or_else(|| {
                    err(
                        SqlState::InvalidForeignKey,
                        format!("there is no primary key for referenced table \"{ref_table}\""),
                    )
                })?
        } else {
            fk.referred_columns
                .iter()
                .map(|c| {
                    let n = normalize_ident(c);
                    parent.column(&n).ok_or_else(|| {
                        err(
                            SqlState::UndefinedColumn,
                            format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if ref_columns.len() != columns.len() {
            return Err(err(
                SqlState::InvalidForeignKey,
                "number of referencing and referenced columns for foreign key disagree",
            ));
        }
        let mut sorted = ref_columns.clone();
        sorted.sort_unstable();
        if !parent.indexes.iter().any(|i| {
            let mut c = i.columns.clone();
            c.sort_unstable();
            i.unique && c == sorted
        }) {
            return Err(err(
                SqlState::InvalidForeignKey,
                format!(
                    "there is no unique constraint matching given keys for referenced table \"{ref_table}\""
                ),
            ));
        }
        let name = name
            .or(fk.name.as_ref())
            .map(normalize_ident)
            .unwrap_or_else(|| format!("{}_{}_fkey", def.name, cols.join("_")));
        Ok(FkDef {
            name,
            columns,
            ref_schema: if fk.foreign_table.0.len() > 1 {
                ref_schema
            } else {
                parent.schema.clone()
            },
            ref_table,
            ref_columns,
            on_delete: action(&fk.on_delete),
            on_update: action(&fk.on_update),
            deferred: fk
                .characteristics
                .as_ref()
                .and_then(|c| c.initially)
                .is_some_and(|i| i == ast::DeferrableInitial::Deferred),
        })
    }

    /// Check the queued deferred FOREIGN KEY rows (at COMMIT): each row that still exists.
    pub(crate) fn check_deferred(
        &self,
        queue: &[(String, String, Vec<Value>)],
    ) -> Result<(), PgError> {
        for (schema, name, row) in queue {
            if let Some((_, def)) = self.table_by_name(schema, name)? {
                let live = self
                    .scan(RelId(def.rel))?
                    .into_iter()
                    .any(|r| decode_row(&r.data).is_ok_and(|x| same_key(&x, row)));
                if live {
                    self.check_fks_opt(&def, row, true)?;
                }
            }
        }
        Ok(())
    }

    fn table_by_name(&self, schema: &str, name: &str) -> Result<Option<(Tid, TableDef)>, PgError> {
        Ok(self
            .tables()?
            .into_iter()
            .find(|(_, t)| t.name == name && t.schema == schema))
    }

    /// 23503 unless every FOREIGN KEY of `def` finds its referenced row for `row`; deferred
    /// constraints are queued for COMMIT instead (unless `now`).
    pub(super) fn check_fks(&self, def: &TableDef, row: &[Value]) -> Result<(), PgError> {
        self.check_fks_opt(def, row, false)
    }

    /// [`Exec::check_fks`], with `now` = check deferred constraints too (at COMMIT).
    pub(crate) fn check_fks_opt(
        &self,
        def: &TableDef,
        row: &[Value],
        now: bool,
    ) -> Result<(), PgError> {
        for fk in &def.fks {
            if fk.deferred && !now {
                self.deferred.borrow_mut().push((
                    def.schema.clone(),
                    def.name.clone(),
                    row.to_vec(),
                ));
                continue;
            }
            let key: Vec<Value> = fk.columns.iter().map(|&c| row[c].clone()).collect();
            if key.iter().any(Value::is_null) {
                continue;
            }
            let parent = if fk.ref_table == def.name && fk.ref_schema == def.schema {
                def.clone()
            } else {
                match self.table_by_name(&fk.ref_schema, &fk.ref_table)? {
                    Some((_, p)) => p,
                    None => continue,
                }
            };
            let found = self.scan(RelId(parent.rel))?.into_iter().any(|r| {
                decode_row(&r.data).is_ok_and(|p| {
                    let pk: Vec<Value> = fk.ref_columns.iter().map(|&c| p[c].clone()).collect();
                    same_key(&pk, &key)
                })
            }) || (parent.rel == def.rel && {
                let pk: Vec<Value> = fk.ref_columns.iter().map(|&c| row[c].clone()).collect();
                same_key(&pk, &key)
            });
            if !found {
                return Err(err(
                    SqlState::ForeignKeyViolation,
                    format!(
                        "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                        def.name, fk.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The referenced row `old` of `def` was deleted (`new` = None) or updated to `new`: apply
    /// every referencing FOREIGN KEY's action.
    pub(super) fn fk_parent_changed(
        &self,
        def: &TableDef,
        old: &[Value],
        new: Option<&[Value]>,
    ) -> Result<(), PgError> {
        for (_, child) in self.tables()? {
            for fk in &child.fks {
                if fk.ref_table != def.name || fk.ref_schema != def.schema {
                    continue;
                }
                let old_key: Vec<Value> = fk.ref_columns.iter().map(|&c| old[c].clone()).collect();
                if old_key.iter().any(Value::is_null) {
                    continue;
                }
                if let Some(n) = new {
                    let new_key: Vec<Value> =
                        fk.ref_columns.iter().map(|&c| n[c].clone()).collect();
                    if same_key(&old_key, &new_key) {
                        continue;
                    }
                }
                let act = if new.is_some() {
                    fk.on_update
                } else {
                    fk.on_delete
                };
                for r in self.scan(RelId(child.rel))? {
                    let row = decode_row(&r.data)?;
                    let key: Vec<Value> = fk.columns.iter().map(|&c| row[c].clone()).collect();
                    if !same_key(&key, &old_key) {
                        continue;
                    }
                    if child.rel == def.rel && new.is_none() && same_key(&row, old) {
                        continue;
                    }
                    let replacement: Option<Vec<Value>> = match (act, new) {
                        (FkAction::NoAction, _) => {
                            return Err(err(
                                SqlState::ForeignKeyViolation,
                                format!(
                                    "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                                    def.name, fk.name, child.name
                                ),
                            ))
                        }
                        (FkAction::Cascade, None) => None,
                        (FkAction::Cascade, Some(n)) => {
                            let mut x = row.clone();
                            for (&c, &p) in fk.columns.iter().zip(&fk.ref_columns) {
                                x[c] = n[p].clone();
                            }
                            Some(x)
                        }
                        (FkAction::SetNull, _) => {
                            let mut x = row.clone();
                            for &c in &fk.columns {
                                x[c] = Value::Null;
                            }
                            Some(x)
                        }
                        (FkAction::SetDefault, _) => {
                            let mut x = row.clone();
                            for &c in &fk.columns {
                                x[c] = self.default_expr(&child.columns[c])?.eval(&[], &self.cx)?;
                            }
                            Some(x)
                        }
                    };
                    match replacement {
                        None => {
                            let o = {
                                let mut t = self.txn.borrow_mut();
                                self.eng.block_on(t.delete(RelId(child.rel), r.tid))?
                            };
                            if matches!(o, Outcome::Done(())) {
                                self.fk_parent_changed(&child, &row, None)?;
                            }
                        }
                        Some(x) => {
                            // The new key comes from the parent's new row: no FK check.
                            self.check_row_no_fk(&child, &x)?;
                            let payload = encode_row(&x)?;
                            let keys = Self::keys(&child, &x);
                            let o = {
                                let mut t = self.txn.borrow_mut();
                                self.eng
                                    .block_on(t.update(RelId(child.rel), r.tid, &payload, &keys))
                                    .map_err(|e| Self::unique_error(&child, e))?
                            };
                            if matches!(o, Outcome::Done(_)) {
                                self.fk_parent_changed(&child, &row, Some(&x))?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
