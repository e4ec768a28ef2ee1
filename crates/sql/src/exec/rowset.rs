//! Session rowsets: named, typed, in-memory row sets a session queries like a read-only table.
//!
//! They mirror PostgreSQL's *ephemeral named relations* (the tuplestores a trigger's transition
//! tables are, scanned by `Named Tuplestore Scan`) and are the receiving end of XL-style
//! redistribution: a datanode receives moved rows as typed values into a rowset
//! ([`crate::engine::Session::rowset_append`]) and runs the join query over it, with no SQL text
//! and no storage writes.
//!
//! - Names: a rowset is found by its bare (unqualified) name wherever a table name may appear
//!   (FROM, JOIN, subqueries, EXISTS/IN). The name is matched exactly, as a quoted identifier:
//!   create it in lower case to refer to it unquoted. A rowset shadows a table of the same bare
//!   name; a CTE of the same name shadows the rowset.
//! - Read-only: INSERT/UPDATE/DELETE/TRUNCATE naming a rowset fail with 42809
//!   (`wrong_object_type`, PostgreSQL's answer for a DML target that is not a table).
//! - Lifetime: every rowset of a session is dropped when a transaction block ends (COMMIT, END,
//!   ROLLBACK, ABORT, PREPARE TRANSACTION); statements outside a block (implicit transactions)
//!   do not drop them, so a rowset created outside a block lives until
//!   [`crate::engine::Session::rowset_drop`] or the end of the next transaction block.
//! - Memory: the rows live in the session behind an `Arc`; a statement binds a rowset like a
//!   materialized CTE, sharing the rows (no copy); the planner scans them with
//!   [`crate::plan::PhysicalPlan::RowsetScan`].

use std::collections::HashMap;
use std::sync::Arc;

use pgxc_common::{PgError, SqlState};
use sqlparser::ast;

use crate::parser::{normalize_ident, Statement};
use crate::types::cast::{apply_typmod, cast_value, CastContext};
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Value};

use super::{err, ColInfo, Exec, Rel};
use crate::plan::planner::BaseRel;
use crate::plan::{Estimate, PhysicalPlan, ScanColumn};

/// One rowset: its columns and its rows (each row has one value per column, of its type).
#[derive(Clone, Debug)]
pub(crate) struct Rowset {
    /// Column names and types, in order.
    pub(crate) columns: Vec<(String, DataType)>,
    /// The rows, shared with the statements that scan them.
    pub(crate) rows: Arc<Vec<Vec<Value>>>,
}

/// A session's rowsets by name. Cloning is cheap (the rows are shared).
#[derive(Clone, Debug, Default)]
pub(crate) struct Rowsets {
    map: HashMap<String, Rowset>,
}

impl Rowsets {
    /// Create rowset `name` with `columns` (42P07 if it exists, 42601 for no columns, 42602 for
    /// an empty name, 42701 for a repeated column name).
    pub(crate) fn create(
        &mut self,
        name: &str,
        columns: Vec<(String, DataType)>,
    ) -> Result<(), PgError> {
        if name.is_empty() {
            return Err(err(
                SqlState::InvalidName,
                "a rowset name must not be empty",
            ));
        }
        if self.map.contains_key(name) {
            return Err(err(
                SqlState::DuplicateTable,
                format!("rowset \"{name}\" already exists"),
            ));
        }
        if columns.is_empty() {
            return Err(err(
                SqlState::SyntaxError,
                format!("rowset \"{name}\" must have at least one column"),
            ));
        }
        for (i, (c, _)) in columns.iter().enumerate() {
            if columns[..i].iter().any(|(d, _)| d == c) {
                return Err(err(
                    SqlState::DuplicateColumn,
                    format!("column \"{c}\" specified more than once"),
                ));
            }
        }
        self.map.insert(
            name.to_string(),
            Rowset {
                columns,
                rows: Arc::new(Vec::new()),
            },
        );
        Ok(())
    }

    /// Append `rows` to rowset `name`, coercing each value to its column's type; all or
    /// nothing. The rowset's row count after appending. 42P01 unknown rowset, 22P04 a row of
    /// the wrong width (COPY's "extra data"/"missing data"), 42804 a value of a type that has no
    /// assignment cast to the column's type, 22001 etc. from typmods (`varchar(n)`, `numeric(p,s)`).
    pub(crate) fn append(
        &mut self,
        name: &str,
        rows: Vec<Vec<Value>>,
        tz: &TimeZone,
    ) -> Result<u64, PgError> {
        let Some(rs) = self.map.get_mut(name) else {
            return Err(undefined(name));
        };
        let mut fixed = Vec::with_capacity(rows.len());
        for (n, row) in rows.into_iter().enumerate() {
            if row.len() != rs.columns.len() {
                return Err(err(
                    SqlState::BadCopyFileFormat,
                    format!(
                        "rowset \"{name}\": row {} has {} values, expected {}",
                        n + 1,
                        row.len(),
                        rs.columns.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(row.len());
            for (v, (col, ty)) in row.into_iter().zip(&rs.columns) {
                out.push(coerce_value(v, ty, tz).map_err(|e| {
                    PgError::new(
                        e.code,
                        format!("rowset \"{name}\" column \"{col}\": {}", e.message),
                    )
                })?);
            }
            fixed.push(out);
        }
        let rows = Arc::make_mut(&mut rs.rows);
        if rows.is_empty() {
            *rows = fixed;
        } else {
            rows.append(&mut fixed);
        }
        Ok(rows.len() as u64)
    }

    /// Drop rowset `name`; whether it existed.
    pub(crate) fn drop_one(&mut self, name: &str) -> bool {
        self.map.remove(name).is_some()
    }

    /// Drop every rowset (the end of a transaction block).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Whether the session has no rowsets.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn undefined(name: &str) -> PgError {
    err(
        SqlState::UndefinedTable,
        format!("rowset \"{name}\" does not exist"),
    )
}

/// The type a value's representation is, when it has exactly one (`unknown` for NULL; an
/// array's from its first element that has one).
pub(crate) fn natural_type(v: &Value) -> DataType {
    match v {
        Value::Null => DataType::Unknown,
        Value::Bool(_) => DataType::Bool,
        Value::Int2(_) => DataType::Int2,
        Value::Int4(_) => DataType::Int4,
        Value::Int8(_) => DataType::Int8,
        Value::Float4(_) => DataType::Float4,
        Value::Float8(_) => DataType::Float8,
        Value::Numeric(_) => DataType::Numeric(None),
        Value::Text(_) => DataType::Text,
        Value::Bytea(_) => DataType::Bytea,
        Value::Date(_) => DataType::Date,
        Value::Time(_) => DataType::Time,
        Value::Timetz(..) => DataType::Timetz,
        Value::Timestamp(_) => DataType::Timestamp,
        Value::Timestamptz(_) => DataType::Timestamptz,
        Value::Interval(_) => DataType::Interval,
        Value::Uuid(_) => DataType::Uuid,
        Value::Json(_) => DataType::Json,
        Value::Jsonb(_) => DataType::Jsonb,
        Value::Array(items) => DataType::Array(Box::new(
            items
                .iter()
                .map(natural_type)
                .find(|t| *t != DataType::Unknown)
                .unwrap_or(DataType::Unknown),
        )),
    }
}

/// Whether `v` is already in `ty`'s representation (a value of that type as the engine holds it).
fn is_repr_of(v: &Value, ty: &DataType) -> bool {
    use DataType as T;
    match (v, ty) {
        (Value::Null, _) => true,
        (Value::Bool(_), T::Bool)
        | (Value::Int2(_), T::Int2)
        | (Value::Int4(_), T::Int4)
        | (Value::Int8(_), T::Int8 | T::Money)
        | (Value::Float4(_), T::Float4)
        | (Value::Float8(_), T::Float8)
        | (Value::Numeric(_), T::Numeric(_))
        | (
            Value::Text(_),
            T::Text | T::Varchar(_) | T::Char(_) | T::Name | T::QChar | T::Inet | T::Cidr,
        )
        | (Value::Bytea(_), T::Bytea)
        | (Value::Date(_), T::Date)
        | (Value::Time(_), T::Time)
        | (Value::Timetz(..), T::Timetz)
        | (Value::Timestamp(_), T::Timestamp)
        | (Value::Timestamptz(_), T::Timestamptz)
        | (Value::Interval(_), T::Interval)
        | (Value::Uuid(_), T::Uuid)
        | (Value::Json(_), T::Json)
        | (Value::Jsonb(_), T::Jsonb) => true,
        (Value::Array(items), T::Array(elem)) => items.iter().all(|i| is_repr_of(i, elem)),
        _ => false,
    }
}

/// `v` as a value of `ty`: kept when already of that representation (typmods applied as on
/// INSERT), converted when PostgreSQL has an assignment cast from the value's type, else 42804.
fn coerce_value(v: Value, ty: &DataType, tz: &TimeZone) -> Result<Value, PgError> {
    if is_repr_of(&v, ty) {
        return apply_typmod(v, ty, false);
    }
    let from = natural_type(&v);
    cast_value(v, &from, ty, CastContext::Assignment, tz).map_err(|e| {
        if e.code == SqlState::CannotCoerce || e.code == SqlState::DatatypeMismatch {
            err(
                SqlState::DatatypeMismatch,
                format!(
                    "value is of type {} but the column is of type {}",
                    from.name(),
                    ty.name()
                ),
            )
        } else {
            e
        }
    })
}

impl<'a> Exec<'a> {
    /// Give the statement the session's rowsets.
    pub(crate) fn with_rowsets(mut self, rowsets: Rowsets) -> Exec<'a> {
        self.rowsets = rowsets;
        self
    }

    /// The rowset a FROM item's name `parts` refers to: a bare name only.
    fn rowset_named(&self, parts: &[String]) -> Option<(&str, &Rowset)> {
        match parts {
            [name] => self
                .rowsets
                .map
                .get_key_value(name)
                .map(|(k, r)| (k.as_str(), r)),
            _ => None,
        }
    }

    /// The interpreter's FROM item for rowset `parts`, unqualified (the caller qualifies it):
    /// the rows copied once for this reference.
    pub(super) fn rowset_rel(&self, parts: &[String]) -> Option<Rel> {
        let (_, rs) = self.rowset_named(parts)?;
        Some(Rel {
            cols: rs
                .columns
                .iter()
                .map(|(n, t)| ColInfo {
                    table: None,
                    name: n.clone(),
                    ty: t.clone(),
                    hidden: false,
                })
                .collect(),
            rows: rs.rows.as_ref().clone(),
        })
    }

    /// The planner's base relation for rowset `parts` named `qual`: a
    /// [`PhysicalPlan::RowsetScan`] source sharing the session's rows. `None` when `parts` is
    /// not a rowset, or `alias` names more columns than it has (the interpreter reports that).
    pub(super) fn rowset_base_rel(
        &self,
        parts: &[String],
        alias: Option<&ast::TableAlias>,
    ) -> Option<(BaseRel, Vec<ColInfo>)> {
        let (name, rs) = self.rowset_named(parts)?;
        if alias.is_some_and(|a| a.columns.len() > rs.columns.len()) {
            return None;
        }
        let qual = alias
            .map(|a| normalize_ident(&a.name))
            .unwrap_or_else(|| name.to_string());
        let mut cols: Vec<ColInfo> = rs
            .columns
            .iter()
            .map(|(n, t)| ColInfo {
                table: Some(qual.clone()),
                name: n.clone(),
                ty: t.clone(),
                hidden: false,
            })
            .collect();
        if let Some(a) = alias {
            for (c, n) in cols.iter_mut().zip(&a.columns) {
                c.name = normalize_ident(&n.name);
            }
        }
        let columns: Vec<ScanColumn> = cols
            .iter()
            .map(|c| ScanColumn {
                name: c.name.clone(),
                ty: c.ty.clone(),
            })
            .collect();
        let n = rs.rows.len() as f64;
        let est = Estimate {
            startup: 0.0,
            // PostgreSQL's cpu_tuple_cost per row: no pages to read.
            total: n * 0.01,
            rows: n.max(1.0),
            width: (8 * columns.len()).min(u32::MAX as usize) as u32,
        };
        let plan = PhysicalPlan::RowsetScan {
            name: name.to_string(),
            alias: qual.clone(),
            columns: columns.clone(),
            rows: Arc::clone(&rs.rows),
            est,
        };
        Some((
            BaseRel {
                rel: 0,
                table: name.to_string(),
                alias: qual,
                columns,
                indexes: Vec::new(),
                tuples: n,
                source: Some(Box::new(plan)),
            },
            cols,
        ))
    }

    /// 42809 when a data-modifying statement targets a rowset (they are read-only):
    /// INSERT INTO, UPDATE, DELETE FROM, TRUNCATE naming one by its bare name.
    pub(super) fn check_rowset_write(&self, stmt: &Statement) -> Result<(), PgError> {
        if self.rowsets.is_empty() {
            return Ok(());
        }
        let Statement::Sql(s) = stmt else {
            return Ok(());
        };
        let table_of = |tf: &ast::TableFactor| match tf {
            ast::TableFactor::Table { name, .. } => Some(name.clone()),
            _ => None,
        };
        let targets: Vec<ast::ObjectName> = match s {
            ast::Statement::Insert(i) => match &i.table {
                ast::TableObject::TableName(n) => vec![n.clone()],
                _ => Vec::new(),
            },
            ast::Statement::Update(u) => table_of(&u.table.relation).into_iter().collect(),
            ast::Statement::Delete(d) => match &d.from {
                ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => {
                    v.iter().filter_map(|t| table_of(&t.relation)).collect()
                }
            },
            ast::Statement::Truncate(t) => t.table_names.iter().map(|n| n.name.clone()).collect(),
            _ => Vec::new(),
        };
        for n in &targets {
            if let Some((name, _)) = self.rowset_named(&super::object_name(n)) {
                return Err(err(
                    SqlState::WrongObjectType,
                    format!("cannot change rowset \"{name}\": rowsets are read-only"),
                ));
            }
        }
        Ok(())
    }
}
