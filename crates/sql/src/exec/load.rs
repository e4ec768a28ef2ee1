//! The direct row-load path: typed [`Value`] rows into a table without SQL text.
//!
//! [`Session::insert_values`] (and `COPY ... FROM STDIN`, see `copy.rs`) hand rows of values to
//! [`Exec::load_rows`], which resolves the table the way INSERT does (search_path included),
//! converts each value to its column's type, fills omitted columns with their defaults
//! (serial/identity/`DEFAULT` expressions) and stored generated columns, and writes the rows
//! through the executor's one insert path ([`Exec::insert_rows`]: NOT NULL, CHECK, unique and
//! foreign-key checks, index maintenance, batched storage writes). Nothing is printed as SQL and
//! parsed again, which is what made loading through `INSERT ... VALUES` text slow (tokenizing,
//! parsing and binding every literal).
//!
//! Value conversion ("the assignment cast of an `INSERT ... VALUES` literal of the value's type"):
//! - a value already in the column type's own representation (`Int4` for `integer`, `Numeric`
//!   for unconstrained `numeric`, `Text` for `text`/`varchar`, `Int8` cents for `money`, ...)
//!   is stored as is;
//! - a [`Value::Text`] is an untyped literal: the column type's input function parses it, as for
//!   `INSERT ... VALUES ('...')` and COPY (`'x'` into `integer`: 22P02 `invalid input syntax for
//!   type integer: "x"`; `varchar(n)` / `char(n)` / `numeric(p,s)` typmods enforced);
//! - any other value gets PostgreSQL's assignment cast from its own type (`Int4` into `bigint`,
//!   `numeric` or `text`; 42804 `column "c" is of type ... but expression is of type ...` when
//!   there is none);
//! - an array into an array column converts element by element by these rules.

use pgxc_common::{PgError, SqlState};
use sqlparser::ast::{self, Ident};

use super::{coerce_assign, err, Exec};
use crate::catalog::{ColumnDef, TableDef};
use crate::engine::Session;
use crate::expr::Expr;
use crate::types::cast::{cast_value, CastContext};
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Value};

/// Rows handed to the insert path at a time (the batch size of a plain INSERT).
const BATCH_ROWS: usize = 1024;

/// Whose semantics a load follows where INSERT and COPY differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadMode {
    /// [`Session::insert_values`]: INSERT's rules (42601 for a wrong value count, 428C9 for a
    /// value into a `GENERATED ALWAYS` identity column, all columns when none are named).
    Insert,
    /// `COPY ... FROM`: 22P04 for a wrong field count, identity columns take the given values
    /// (like `OVERRIDING SYSTEM VALUE`), and without a column list the stored generated columns
    /// are left out, as PostgreSQL's COPY does.
    Copy,
}

/// PostgreSQL's identifier folding of one SQL identifier as written: `"Ab""c"` is `Ab"c`, `Abc`
/// is `abc`.
fn fold_ident(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\"\"", "\"")
    } else {
        s.to_ascii_lowercase()
    }
}

/// A possibly qualified name as SQL writes it (`t`, `public.t`, `"My Schema"."T"`) split on the
/// dots outside double quotes, each part folded. Errors: 42601 for an empty part.
fn split_qualified(name: &str) -> Result<Vec<String>, PgError> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in name.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    if quoted || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(err(
            SqlState::SyntaxError,
            format!("improper qualified name: \"{name}\""),
        ));
    }
    Ok(parts.iter().map(|p| fold_ident(p)).collect())
}

/// Whether `v` is already stored the way a column of type `ty` stores its values (no typmod to
/// enforce), so it goes in unconverted.
fn stored_as_is(v: &Value, ty: &DataType) -> bool {
    matches!(
        (v, ty),
        (Value::Bool(_), DataType::Bool)
            | (Value::Int2(_), DataType::Int2)
            | (Value::Int4(_), DataType::Int4)
            | (Value::Int8(_), DataType::Int8 | DataType::Money)
            | (Value::Float4(_), DataType::Float4)
            | (Value::Float8(_), DataType::Float8)
            | (Value::Numeric(_), DataType::Numeric(None))
            | (Value::Text(_), DataType::Text | DataType::Varchar(None))
            | (Value::Bytea(_), DataType::Bytea)
            | (Value::Date(_), DataType::Date)
            | (Value::Time(_), DataType::Time)
            | (Value::Timetz(..), DataType::Timetz)
            | (Value::Timestamp(_), DataType::Timestamp)
            | (Value::Timestamptz(_), DataType::Timestamptz)
            | (Value::Interval(_), DataType::Interval)
            | (Value::Uuid(_), DataType::Uuid)
            | (Value::Json(_), DataType::Json)
            | (Value::Jsonb(_), DataType::Jsonb)
    )
}

/// The type an `INSERT ... VALUES` literal of `v` would have: `unknown` for text (an untyped
/// string literal), the value's own type otherwise (`rowset::natural_type`), arrays of unknown
/// elements as text arrays.
fn literal_type(v: &Value) -> DataType {
    fn text_for_unknown(t: DataType) -> DataType {
        match t {
            DataType::Unknown => DataType::Text,
            DataType::Array(e) => DataType::Array(Box::new(text_for_unknown(*e))),
            t => t,
        }
    }
    match v {
        Value::Text(_) => DataType::Unknown,
        Value::Array(_) => text_for_unknown(super::rowset::natural_type(v)),
        _ => super::rowset::natural_type(v),
    }
}

impl Exec<'_> {
    /// `v` as a value of column `col` (see the module docs for the rules). Errors: the input
    /// function's (22P02, 22007, 22003, 22001...), 42804 when no assignment cast exists.
    fn load_value(&self, v: Value, col: &ColumnDef) -> Result<Value, PgError> {
        if v.is_null() || stored_as_is(&v, &col.ty) {
            return Ok(v);
        }
        let v = match (v, &col.ty) {
            (Value::Array(items), DataType::Array(elem)) => {
                let elem_col = ColumnDef {
                    name: col.name.clone(),
                    ty: (**elem).clone(),
                    not_null: false,
                    default: None,
                    identity_always: false,
                    generated: None,
                };
                return items
                    .into_iter()
                    .map(|e| self.load_value(e, &elem_col))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array);
            }
            (v, _) => v,
        };
        if let Value::Text(_) = v {
            // What `coerce` does with an untyped literal, without building the expression.
            return cast_value(
                v,
                &DataType::Unknown,
                &col.ty,
                CastContext::Assignment,
                &TimeZone::default(),
            );
        }
        let ty = literal_type(&v);
        coerce_assign(Expr::Const(v, ty), col)?.eval(&[], &self.cx)
    }

    /// Load `rows` into the table SQL would call `table`: each row's values are for `columns`
    /// (SQL identifiers as written; empty = the table's columns in order), converted to the
    /// columns' types, omitted columns defaulted, then written through [`Exec::insert_rows`] in
    /// batches. Returns the number of rows inserted.
    ///
    /// Errors: 42P01 no such table, 42703 no such column, 42701 a column named twice, a wrong
    /// value count (42601 as INSERT says it, 22P04 as COPY does in [`LoadMode::Copy`]), the
    /// conversion's errors, and INSERT's constraint errors (23502, 23514, 23505, 23503, 428C9).
    pub(crate) fn load_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        mode: LoadMode,
    ) -> Result<u64, PgError> {
        let parts = split_qualified(table)?;
        let name = ast::ObjectName(
            parts
                .iter()
                .map(|p| ast::ObjectNamePart::Identifier(Ident::with_quote('"', p.clone())))
                .collect(),
        );
        let (_, def) = self.find_base_table(&name)?;
        let targets = Self::load_targets(&def, columns, mode)?;
        let overriding = mode == LoadMode::Copy;
        // Target columns that rows have given values for so far (checked for 428C9 as INSERT
        // checks each given value: a short row without a column list leaves the rest defaulted).
        let mut given_upto = 0;
        // Per table column: the position of its value in a source row, or its default.
        let mut source: Vec<Option<usize>> = vec![None; def.columns.len()];
        for (k, &t) in targets.iter().enumerate() {
            source[t] = Some(k);
        }
        let defaults: Vec<Option<Expr>> = def
            .columns
            .iter()
            .zip(&source)
            .map(|(c, s)| match s {
                Some(_) => Ok(None),
                None => self.default_expr(c).map(Some),
            })
            .collect::<Result<_, _>>()?;
        let generated = self.generated_exprs(&def)?;
        let mut n = 0u64;
        let mut pending: Vec<Vec<Value>> = Vec::with_capacity(rows.len().min(BATCH_ROWS));
        for src in rows {
            self.check_row_width(&def, &targets, columns.is_empty(), src.len(), mode)?;
            if src.len() > given_upto {
                for &t in &targets[given_upto..src.len()] {
                    Self::check_explicit(&def.columns[t], overriding)?;
                }
                given_upto = src.len();
            }
            let mut src: Vec<Option<Value>> = src.into_iter().map(Some).collect();
            let mut row = Vec::with_capacity(def.columns.len());
            for (i, col) in def.columns.iter().enumerate() {
                let given = source[i]
                    .and_then(|k| src.get_mut(k))
                    .and_then(Option::take);
                row.push(match (given, &defaults[i]) {
                    (Some(v), _) => self.load_value(v, col)?,
                    (None, Some(d)) => d.eval(&[], &self.cx)?,
                    // A target column beyond a short row of an INSERT without a column list.
                    (None, None) => self.default_expr(col)?.eval(&[], &self.cx)?,
                });
            }
            self.apply_generated(&generated, &mut row)?;
            pending.push(row);
            if pending.len() >= BATCH_ROWS {
                self.check_cancel()?;
                n += self.insert_rows(&def, std::mem::take(&mut pending))?.len() as u64;
            }
        }
        n += self.insert_rows(&def, pending)?.len() as u64;
        Ok(n)
    }

    /// The table positions `columns` name (all columns, or for COPY all but the stored generated
    /// ones, when empty). Errors: 42703, 42701.
    fn load_targets(
        def: &TableDef,
        columns: &[String],
        mode: LoadMode,
    ) -> Result<Vec<usize>, PgError> {
        if columns.is_empty() {
            return Ok((0..def.columns.len())
                .filter(|&i| mode == LoadMode::Insert || def.columns[i].generated.is_none())
                .collect());
        }
        let mut v = Vec::with_capacity(columns.len());
        for c in columns {
            let n = fold_ident(c);
            let p = def.column(&n).ok_or_else(|| {
                err(
                    SqlState::UndefinedColumn,
                    format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                )
            })?;
            if v.contains(&p) {
                return Err(err(
                    SqlState::DuplicateColumn,
                    format!("column \"{n}\" specified more than once"),
                ));
            }
            v.push(p);
        }
        Ok(v)
    }

    /// A row of `width` values against `targets`: INSERT's 42601 messages (a short row is allowed
    /// without a column list, the rest defaulted), COPY's 22P04 ones.
    fn check_row_width(
        &self,
        def: &TableDef,
        targets: &[usize],
        all_columns: bool,
        width: usize,
        mode: LoadMode,
    ) -> Result<(), PgError> {
        match mode {
            LoadMode::Insert if width > targets.len() => Err(err(
                SqlState::SyntaxError,
                "INSERT has more expressions than target columns",
            )),
            LoadMode::Insert if width < targets.len() && !all_columns => Err(err(
                SqlState::SyntaxError,
                "INSERT has more target columns than expressions",
            )),
            LoadMode::Copy if width > targets.len() => Err(err(
                SqlState::BadCopyFileFormat,
                "extra data after last expected column",
            )),
            LoadMode::Copy if width < targets.len() => Err(err(
                SqlState::BadCopyFileFormat,
                format!(
                    "missing data for column \"{}\"",
                    def.columns[targets[width]].name
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl Session {
    /// [`Session::insert_values`] with `mode`'s rules: in the open transaction block (a failure
    /// fails the block), or in an implicit transaction of its own (committed on success, rolled
    /// back on failure) when none is open.
    pub(crate) fn load_values(
        &mut self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
        mode: LoadMode,
    ) -> Result<u64, PgError> {
        if self.in_transaction() {
            return self.with_block_exec(true, |x| x.load_rows(table, columns, rows, mode));
        }
        self.execute("BEGIN")?;
        match self.with_block_exec(true, |x| x.load_rows(table, columns, rows, mode)) {
            Ok(n) => {
                self.execute("COMMIT")?;
                Ok(n)
            }
            Err(e) => {
                let _ = self.execute("ROLLBACK");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_like_sql() {
        assert_eq!(split_qualified("T").unwrap(), vec!["t"]);
        assert_eq!(
            split_qualified("Public.\"My.T\"\"x\"").unwrap(),
            vec!["public", "My.T\"x"]
        );
        assert_eq!(
            split_qualified("a..b").unwrap_err().code,
            SqlState::SyntaxError
        );
        assert_eq!(fold_ident("\"Ab\""), "Ab");
        assert_eq!(fold_ident("Ab"), "ab");
    }

    #[test]
    fn literal_types() {
        assert_eq!(literal_type(&Value::Text("1".into())), DataType::Unknown);
        assert_eq!(literal_type(&Value::Int4(1)), DataType::Int4);
        assert_eq!(
            literal_type(&Value::Array(vec![Value::Null, Value::Int8(1)])),
            DataType::Array(Box::new(DataType::Int8))
        );
        assert!(stored_as_is(&Value::Int8(5), &DataType::Money));
        assert!(!stored_as_is(
            &Value::Numeric(crate::types::Numeric::from_i64(1)),
            &DataType::Numeric(Some((5, 2)))
        ));
    }
}
