//! The SQL catalog, stored in an MVCC system table so DDL is transactional.
//!
//! Every SQL table is one row of the system heap [`SYSTEM_TABLE`]: its [`TableDef`] (columns,
//! indexes, CHECK constraints), postcard-encoded. Lookups scan that heap with the statement's
//! transaction, so they see committed definitions plus the transaction's own earlier DDL (like
//! PostgreSQL's catalog snapshot). Each table's data lives in its own MVCC heap, each PRIMARY
//! KEY / UNIQUE / CREATE INDEX index in its own MVCC index.
//!
//! Index keys use [`pgxc_storage::keycode`]; see [`key_datum`] for the per-type mapping and its
//! ordering limitation for `numeric`.

use pgxc_common::{PgError, SqlState};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::IndexKey;
use serde::{Deserialize, Serialize};

use crate::types::{DataType, Value};

/// Name of the MVCC heap holding one [`TableDef`] per SQL table.
pub const SYSTEM_TABLE: &str = "pgxc_sql_tables";

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name (folded as PostgreSQL folds identifiers).
    pub name: String,
    /// Declared type, typmod included.
    pub ty: DataType,
    /// `NOT NULL` (also implied by PRIMARY KEY).
    pub not_null: bool,
    /// The `DEFAULT` expression as SQL text, re-bound at each use.
    pub default: Option<String>,
    /// `GENERATED ALWAYS AS IDENTITY`: explicit values need `OVERRIDING SYSTEM VALUE` (428C9).
    pub identity_always: bool,
    /// `GENERATED ALWAYS AS (expr) STORED`: the expression as SQL text.
    pub generated: Option<String>,
}

/// An index (PRIMARY KEY, UNIQUE or CREATE INDEX).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Index name (relation namespace, like PostgreSQL's `t_pkey`).
    pub name: String,
    /// The MVCC index's relation id.
    pub rel: u64,
    /// Indexed column positions.
    pub columns: Vec<usize>,
    /// Unique index.
    pub unique: bool,
    /// Backs the PRIMARY KEY.
    pub primary: bool,
    /// An expression index (`CREATE INDEX ON t (lower(b))`): every key column as a bound
    /// expression over the table row (plain columns as column references); `columns` is then
    /// empty, so planners never take it for a column index. Empty for column indexes.
    #[serde(default)]
    pub exprs: Vec<crate::expr::Expr>,
}

/// A CHECK constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Constraint name.
    pub name: String,
    /// The condition as SQL text.
    pub expr: String,
}

/// A SQL table's definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Schema (`public` unless qualified).
    pub schema: String,
    /// Table name.
    pub name: String,
    /// The MVCC heap's relation id.
    pub rel: u64,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Indexes.
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints.
    pub checks: Vec<CheckDef>,
    /// Sequences owned by columns (serial, identity), `schema.name`: dropped with the table.
    pub owned_seqs: Vec<String>,
    /// For a view: its query as SQL text (no storage; `rel` is 0).
    pub view: Option<String>,
    /// FOREIGN KEY constraints of this (referencing) table.
    pub fks: Vec<FkDef>,
}

/// What a FOREIGN KEY does when the referenced row is deleted or its key updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FkAction {
    /// NO ACTION / RESTRICT: fail with 23503.
    NoAction,
    /// CASCADE: delete / update the referencing rows.
    Cascade,
    /// SET NULL.
    SetNull,
    /// SET DEFAULT.
    SetDefault,
}

/// A FOREIGN KEY constraint (MATCH SIMPLE: a key with a NULL is not checked). Checked at the
/// end of each row change; `DEFERRABLE INITIALLY DEFERRED` is not honoured yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FkDef {
    /// Constraint name.
    pub name: String,
    /// Referencing column positions.
    pub columns: Vec<usize>,
    /// Referenced table's schema and name.
    pub ref_schema: String,
    /// Referenced table's name.
    pub ref_table: String,
    /// Referenced column positions in that table.
    pub ref_columns: Vec<usize>,
    /// ON DELETE.
    pub on_delete: FkAction,
    /// ON UPDATE.
    pub on_update: FkAction,
    /// `INITIALLY DEFERRED`: checked at COMMIT instead of after each row.
    pub deferred: bool,
}

/// Whether SQL text `sql` mentions identifier `name` as a whole word (a conservative
/// dependency check for views).
pub fn mentions(sql: &str, name: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let b = lower.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut start = 0;
    while let Some(i) = lower[start..].find(name) {
        let at = start + i;
        let end = at + name.len();
        let before_ok = at == 0 || !word(b[at - 1]);
        let after_ok = end >= b.len() || !word(b[end]);
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
    }
    false
}

impl TableDef {
    /// Encode for the system heap.
    ///
    /// Errors: XX000 if serialization fails (never for well-formed definitions).
    pub fn encode(&self) -> Result<Vec<u8>, PgError> {
        postcard::to_allocvec(self)
            .map_err(|e| PgError::new(SqlState::InternalError, format!("catalog encode: {e}")))
    }

    /// Decode a system-heap row.
    ///
    /// Errors: XX001 for a damaged row.
    pub fn decode(b: &[u8]) -> Result<TableDef, PgError> {
        postcard::from_bytes(b)
            .map_err(|e| PgError::new(SqlState::DataCorrupted, format!("catalog decode: {e}")))
    }

    /// Position of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// How a value is stored in a heap payload: like [`Value`], except that `numeric` is kept as its
/// text (its in-memory form does not round-trip through postcard).
#[derive(Serialize, Deserialize)]
enum Stored {
    Plain(Value),
    Numeric(String),
    Array(Vec<Stored>),
}

fn to_stored(v: &Value) -> Stored {
    match v {
        Value::Numeric(n) => Stored::Numeric(n.to_text()),
        Value::Array(items) => Stored::Array(items.iter().map(to_stored).collect()),
        other => Stored::Plain(other.clone()),
    }
}

fn from_stored(s: Stored) -> Result<Value, PgError> {
    Ok(match s {
        Stored::Plain(v) => v,
        Stored::Numeric(t) => Value::Numeric(crate::types::Numeric::parse(&t)?),
        Stored::Array(items) => Value::Array(
            items
                .into_iter()
                .map(from_stored)
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Encode a table row (all columns, in order) as a heap payload.
///
/// Errors: XX000 if serialization fails.
pub fn encode_row(row: &[Value]) -> Result<Vec<u8>, PgError> {
    let stored: Vec<Stored> = row.iter().map(to_stored).collect();
    postcard::to_allocvec(&stored)
        .map_err(|e| PgError::new(SqlState::InternalError, format!("row encode: {e}")))
}

/// Decode a heap payload written by [`encode_row`].
///
/// Errors: XX001 for a damaged payload.
pub fn decode_row(b: &[u8]) -> Result<Vec<Value>, PgError> {
    let stored: Vec<Stored> = postcard::from_bytes(b)
        .map_err(|e| PgError::new(SqlState::DataCorrupted, format!("row decode: {e}")))?;
    stored.into_iter().map(from_stored).collect()
}

/// Map a value to its index-key datum: integers, dates and timestamps → `Int`, floats → `Float`,
/// text/bytea/uuid → `Bytes`, bool → `Bool`.
///
/// **Limitation:** `numeric` maps to its normalised text (trailing fractional zeros removed) as
/// `Bytes`: equal values give equal keys (what uniqueness needs), but the byte order is not
/// numeric order, so such keys must not be used for range scans. Intervals and other types map
/// to a canonical byte string with the same limitation.
pub fn key_datum(v: &Value) -> KeyDatum {
    match v {
        Value::Null => KeyDatum::Null,
        Value::Bool(b) => KeyDatum::Bool(*b),
        Value::Int2(x) => KeyDatum::Int(i64::from(*x)),
        Value::Int4(x) => KeyDatum::Int(i64::from(*x)),
        Value::Int8(x) => KeyDatum::Int(*x),
        Value::Float4(x) => KeyDatum::Float(f64::from(*x)),
        Value::Float8(x) => KeyDatum::Float(*x),
        Value::Date(d) => KeyDatum::Int(i64::from(*d)),
        Value::Time(t) | Value::Timestamp(t) | Value::Timestamptz(t) => KeyDatum::Int(*t),
        Value::Timetz(..) => {
            KeyDatum::Bytes(encode_row(std::slice::from_ref(v)).unwrap_or_default())
        }
        Value::Text(s) | Value::Json(s) | Value::Jsonb(s) => KeyDatum::Bytes(s.as_bytes().to_vec()),
        Value::Bytea(b) => KeyDatum::Bytes(b.clone()),
        Value::Uuid(u) => KeyDatum::Bytes(u.to_vec()),
        Value::Numeric(n) => {
            let s = n.to_text();
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            };
            let s = if s == "-0" { "0".to_string() } else { s };
            KeyDatum::Bytes(s.into_bytes())
        }
        Value::Interval(iv) => KeyDatum::Bytes(
            crate::types::datetime::interval_cmp_value(iv)
                .to_be_bytes()
                .to_vec(),
        ),
        Value::Array(_) => KeyDatum::Bytes(encode_row(std::slice::from_ref(v)).unwrap_or_default()),
    }
}

/// The key of `row` in index `idx`.
pub fn index_key(idx: &IndexDef, row: &[Value]) -> IndexKey {
    if !idx.exprs.is_empty() {
        // Index expressions are immutable functions of the row: no session state is needed.
        // One that fails (it cannot for the immutable functions PostgreSQL allows here) keys
        // the row under NULL.
        let cx = crate::expr::EvalContext::default();
        let datums: Vec<KeyDatum> = idx
            .exprs
            .iter()
            .map(|e| e.eval(row, &cx).map_or(KeyDatum::Null, |v| key_datum(&v)))
            .collect();
        return encode_key(&datums);
    }
    let datums: Vec<KeyDatum> = idx
        .columns
        .iter()
        .map(|&c| row.get(c).map(key_datum).unwrap_or(KeyDatum::Null))
        .collect();
    encode_key(&datums)
}
