//! PostgreSQL 15 data types and values.
//!
//! [`DataType`] names a type as `format_type()` prints it and knows its OID; [`Value`] is one datum
//! in its PostgreSQL internal representation (dates as days since 2000-01-01, times and timestamps as
//! microseconds, intervals as months/days/microseconds), so arithmetic and comparisons follow
//! PostgreSQL exactly. Text and binary I/O live in [`text`] and [`binary`], casts in [`cast`].

pub mod cast;
pub mod datetime;
pub mod numeric;
pub mod text;

use serde::{Deserialize, Serialize};

pub use numeric::Numeric;

/// A PostgreSQL data type (the subset pgxc supports), with its type modifier where it has one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `boolean` (OID 16).
    Bool,
    /// `smallint` (OID 21).
    Int2,
    /// `integer` (OID 23).
    Int4,
    /// `bigint` (OID 20).
    Int8,
    /// `real` (OID 700).
    Float4,
    /// `double precision` (OID 701).
    Float8,
    /// `numeric` (OID 1700), optionally `numeric(precision, scale)`.
    Numeric(Option<(u32, u32)>),
    /// `text` (OID 25).
    Text,
    /// `character varying` (OID 1043), optionally with a maximum length in characters.
    Varchar(Option<u32>),
    /// `character(n)` / `bpchar` (OID 1042): blank-padded to `n` characters.
    Char(u32),
    /// `bytea` (OID 17).
    Bytea,
    /// `date` (OID 1082).
    Date,
    /// `time without time zone` (OID 1083).
    Time,
    /// `timestamp without time zone` (OID 1114).
    Timestamp,
    /// `timestamp with time zone` (OID 1184).
    Timestamptz,
    /// `interval` (OID 1186).
    Interval,
    /// `uuid` (OID 2950).
    Uuid,
    /// `json` (OID 114): the input text, kept verbatim.
    Json,
    /// `jsonb` (OID 3802): normalised.
    Jsonb,
    /// A one-dimensional array of the element type (e.g. `integer[]`, OID 1007).
    Array(Box<DataType>),
    /// The type of an undecorated string literal before it is resolved (`unknown`, OID 705).
    Unknown,
}

/// A PostgreSQL interval: months, days and microseconds kept apart, as PostgreSQL does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Interval {
    /// Months (years × 12 + months).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds (hours, minutes, seconds).
    pub micros: i64,
}

/// One value of some [`DataType`], or SQL NULL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL (of any type).
    Null,
    /// boolean.
    Bool(bool),
    /// smallint.
    Int2(i16),
    /// integer.
    Int4(i32),
    /// bigint.
    Int8(i64),
    /// real.
    Float4(f32),
    /// double precision.
    Float8(f64),
    /// numeric.
    Numeric(Numeric),
    /// text, varchar and char (char values are stored blank-padded).
    Text(String),
    /// bytea.
    Bytea(Vec<u8>),
    /// date: days since 2000-01-01 (`i32::MIN` = -infinity, `i32::MAX` = infinity).
    Date(i32),
    /// time: microseconds since midnight.
    Time(i64),
    /// timestamp: microseconds since 2000-01-01 00:00:00 (`i64::MIN` / `i64::MAX` = ∓infinity).
    Timestamp(i64),
    /// timestamptz: microseconds since 2000-01-01 00:00:00 UTC (`i64::MIN` / `i64::MAX` = ∓infinity).
    Timestamptz(i64),
    /// interval.
    Interval(Interval),
    /// uuid.
    Uuid([u8; 16]),
    /// json: the text as given.
    Json(String),
    /// jsonb: the normalised text form (PostgreSQL's jsonb output).
    Jsonb(String),
    /// A one-dimensional array (elements may be Null).
    Array(Vec<Value>),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}
