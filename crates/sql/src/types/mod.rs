//! PostgreSQL 15 data types and values.
//!
//! [`DataType`] names a type as `format_type()` prints it and knows its OID; [`Value`] is one datum
//! in its PostgreSQL internal representation (dates as days since 2000-01-01, times and timestamps as
//! microseconds, intervals as months/days/microseconds), so arithmetic and comparisons follow
//! PostgreSQL exactly. Text and binary I/O live in [`text`] and [`binary`], casts in [`cast`].

pub mod binary;
pub mod cast;
pub mod datetime;
pub mod dtfunc;
pub mod inet;
pub mod json;
pub mod money;
pub mod numeric;
pub mod regex;
pub mod text;
pub mod to_char;

use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

pub use datetime::TimeZone;
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
    /// `money` (OID 790): cents as [`Value::Int8`].
    Money,
    /// `inet` (OID 869): a host address with an optional prefix, as its canonical text.
    Inet,
    /// `cidr` (OID 650): a network address, as its canonical text.
    Cidr,
    /// `name` (OID 19): an identifier, at most 63 bytes (`NAMEDATALEN - 1`).
    Name,
    /// `"char"` (OID 18): a single byte, PostgreSQL's internal one-character type.
    QChar,
    /// `bytea` (OID 17).
    Bytea,
    /// `date` (OID 1082).
    Date,
    /// `time without time zone` (OID 1083).
    Time,
    /// `time with time zone` / `timetz` (OID 1266).
    Timetz,
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
    /// timetz: microseconds since midnight (local time) and the zone offset in seconds east of
    /// UTC (`12:00+02` → `(12 h, 7200)`).
    Timetz(i64, i32),
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

/// PostgreSQL's type categories (`pg_type.typcategory`), used to resolve overloaded operators and
/// functions the way PostgreSQL's `func_select_candidate` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypeCategory {
    /// `A`: arrays.
    Array,
    /// `B`: boolean.
    Boolean,
    /// `D`: date/time.
    DateTime,
    /// `N`: numeric types.
    Numeric,
    /// `S`: string types.
    String,
    /// `T`: timespan (interval).
    Timespan,
    /// `U`: user-defined (bytea, uuid, json, jsonb).
    User,
    /// `X`: unknown.
    Unknown,
}

impl TypeCategory {
    /// The one-letter code in `pg_type.typcategory`.
    pub fn code(self) -> char {
        match self {
            TypeCategory::Array => 'A',
            TypeCategory::Boolean => 'B',
            TypeCategory::DateTime => 'D',
            TypeCategory::Numeric => 'N',
            TypeCategory::String => 'S',
            TypeCategory::Timespan => 'T',
            TypeCategory::User => 'U',
            TypeCategory::Unknown => 'X',
        }
    }
}

impl DataType {
    /// The type's OID in `pg_type` (arrays have their own OIDs, e.g. `integer[]` = 1007).
    pub fn oid(&self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Numeric(_) => 1700,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Money => 790,
            DataType::Inet => 869,
            DataType::Cidr => 650,
            DataType::Name => 19,
            DataType::QChar => 18,
            DataType::Bytea => 17,
            DataType::Date => 1082,
            DataType::Time => 1083,
            DataType::Timetz => 1266,
            DataType::Timestamp => 1114,
            DataType::Timestamptz => 1184,
            DataType::Interval => 1186,
            DataType::Uuid => 2950,
            DataType::Json => 114,
            DataType::Jsonb => 3802,
            DataType::Unknown => 705,
            DataType::Array(elem) => elem.array_oid(),
        }
    }

    /// The OID of the array type whose elements are this type (`typarray`), or 0 if there is none.
    pub fn array_oid(&self) -> u32 {
        match self {
            DataType::Bool => 1000,
            DataType::Int2 => 1005,
            DataType::Int4 => 1007,
            DataType::Int8 => 1016,
            DataType::Float4 => 1021,
            DataType::Float8 => 1022,
            DataType::Numeric(_) => 1231,
            DataType::Text => 1009,
            DataType::Varchar(_) => 1015,
            DataType::Char(_) => 1014,
            DataType::Money => 791,
            DataType::Inet => 1041,
            DataType::Cidr => 651,
            DataType::Name => 1003,
            DataType::QChar => 1002,
            DataType::Bytea => 1001,
            DataType::Date => 1182,
            DataType::Time => 1183,
            DataType::Timetz => 1270,
            DataType::Timestamp => 1115,
            DataType::Timestamptz => 1185,
            DataType::Interval => 1187,
            DataType::Uuid => 2951,
            DataType::Json => 199,
            DataType::Jsonb => 3807,
            DataType::Unknown | DataType::Array(_) => 0,
        }
    }

    /// The type with this OID and type modifier (`atttypmod`, -1 for none), if pgxc supports it.
    pub fn from_oid(oid: u32, typmod: i32) -> Option<DataType> {
        let t = match oid {
            16 => DataType::Bool,
            21 => DataType::Int2,
            23 => DataType::Int4,
            20 => DataType::Int8,
            700 => DataType::Float4,
            701 => DataType::Float8,
            1700 => {
                if typmod >= 4 {
                    let t = (typmod - 4) as u32;
                    DataType::Numeric(Some((t >> 16, t & 0xffff)))
                } else {
                    DataType::Numeric(None)
                }
            }
            25 => DataType::Text,
            1043 => DataType::Varchar((typmod >= 4).then(|| (typmod - 4) as u32)),
            1042 => DataType::Char(if typmod >= 4 { (typmod - 4) as u32 } else { 1 }),
            790 => DataType::Money,
            869 => DataType::Inet,
            650 => DataType::Cidr,
            19 => DataType::Name,
            18 => DataType::QChar,
            17 => DataType::Bytea,
            1082 => DataType::Date,
            1083 => DataType::Time,
            1266 => DataType::Timetz,
            1114 => DataType::Timestamp,
            1184 => DataType::Timestamptz,
            1186 => DataType::Interval,
            2950 => DataType::Uuid,
            114 => DataType::Json,
            3802 => DataType::Jsonb,
            705 => DataType::Unknown,
            _ => {
                let elem = [
                    DataType::Bool,
                    DataType::Int2,
                    DataType::Int4,
                    DataType::Int8,
                    DataType::Float4,
                    DataType::Float8,
                    DataType::Numeric(None),
                    DataType::Text,
                    DataType::Varchar(None),
                    DataType::Char(1),
                    DataType::Name,
                    DataType::QChar,
                    DataType::Money,
                    DataType::Inet,
                    DataType::Cidr,
                    DataType::Bytea,
                    DataType::Date,
                    DataType::Time,
                    DataType::Timetz,
                    DataType::Timestamp,
                    DataType::Timestamptz,
                    DataType::Interval,
                    DataType::Uuid,
                    DataType::Json,
                    DataType::Jsonb,
                ]
                .into_iter()
                .find(|e| e.array_oid() == oid)?;
                let elem = DataType::from_oid(elem.oid(), typmod)?;
                DataType::Array(Box::new(elem))
            }
        };
        Some(t)
    }

    /// The type modifier as `pg_attribute.atttypmod` stores it (-1 when there is none).
    pub fn typmod(&self) -> i32 {
        match self {
            DataType::Numeric(Some((p, s))) => (((*p as i32) << 16) | (*s as i32)) + 4,
            DataType::Varchar(Some(n)) | DataType::Char(n) => *n as i32 + 4,
            DataType::Array(elem) => elem.typmod(),
            _ => -1,
        }
    }

    /// `pg_type.typlen`: the fixed size in bytes, or -1 for variable-length types (-2 for `unknown`).
    pub fn typlen(&self) -> i16 {
        match self {
            DataType::Bool | DataType::QChar => 1,
            DataType::Name => 64,
            DataType::Int2 => 2,
            DataType::Int4 | DataType::Float4 | DataType::Date => 4,
            DataType::Int8
            | DataType::Float8
            | DataType::Time
            | DataType::Timestamp
            | DataType::Timestamptz
            | DataType::Money => 8,
            DataType::Timetz => 12,
            DataType::Interval | DataType::Uuid => 16,
            DataType::Unknown => -2,
            _ => -1,
        }
    }

    /// The type's name as `format_type()` prints it: `integer`, `character varying(10)`,
    /// `numeric(10,2)`, `timestamp without time zone`, `integer[]`.
    pub fn name(&self) -> String {
        match self {
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(n) => format!("character({n})"),
            DataType::Array(elem) => format!("{}[]", elem.name()),
            other => other.base_name().to_string(),
        }
    }

    /// The name without type modifiers (`numeric`, `character varying`, `character`, `integer[]`
    /// prints as `integer`'s array); used in messages such as `invalid input syntax for type numeric`.
    pub fn base_name(&self) -> &'static str {
        match self {
            DataType::Bool => "boolean",
            DataType::Int2 => "smallint",
            DataType::Int4 => "integer",
            DataType::Int8 => "bigint",
            DataType::Float4 => "real",
            DataType::Float8 => "double precision",
            DataType::Numeric(_) => "numeric",
            DataType::Text => "text",
            DataType::Varchar(_) => "character varying",
            DataType::Char(_) => "character",
            DataType::Money => "money",
            DataType::Inet => "inet",
            DataType::Cidr => "cidr",
            DataType::Name => "name",
            DataType::QChar => "\"char\"",
            DataType::Bytea => "bytea",
            DataType::Date => "date",
            DataType::Time => "time without time zone",
            DataType::Timetz => "time with time zone",
            DataType::Timestamp => "timestamp without time zone",
            DataType::Timestamptz => "timestamp with time zone",
            DataType::Interval => "interval",
            DataType::Uuid => "uuid",
            DataType::Json => "json",
            DataType::Jsonb => "jsonb",
            DataType::Unknown => "unknown",
            DataType::Array(_) => "anyarray",
        }
    }

    /// The internal type name (`pg_type.typname`): `int4`, `varchar`, `bpchar`, `_int4`, ...
    pub fn typname(&self) -> String {
        match self {
            DataType::Bool => "bool".into(),
            DataType::Int2 => "int2".into(),
            DataType::Int4 => "int4".into(),
            DataType::Int8 => "int8".into(),
            DataType::Float4 => "float4".into(),
            DataType::Float8 => "float8".into(),
            DataType::Numeric(_) => "numeric".into(),
            DataType::Text => "text".into(),
            DataType::Varchar(_) => "varchar".into(),
            DataType::Char(_) => "bpchar".into(),
            DataType::Money => "money".into(),
            DataType::Inet => "inet".into(),
            DataType::Cidr => "cidr".into(),
            DataType::Name => "name".into(),
            DataType::QChar => "char".into(),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Time => "time".into(),
            DataType::Timetz => "timetz".into(),
            DataType::Timestamp => "timestamp".into(),
            DataType::Timestamptz => "timestamptz".into(),
            DataType::Interval => "interval".into(),
            DataType::Uuid => "uuid".into(),
            DataType::Json => "json".into(),
            DataType::Jsonb => "jsonb".into(),
            DataType::Unknown => "unknown".into(),
            DataType::Array(e) => format!("_{}", e.typname()),
        }
    }

    /// Resolve a SQL type name or alias (case-insensitive; `int`, `integer`, `int4`, `float`,
    /// `double precision`, `character varying`, `timestamptz`, `serial`, `_int4`, `int[]`, ...) with
    /// its type modifiers (`varchar(10)` → `[10]`, `numeric(10,2)` → `[10, 2]`).
    ///
    /// `serial`/`bigserial`/`smallserial` resolve to their integer types; marking the column as
    /// serial is the caller's job. Errors: 42704 `type "x" does not exist`, 22023 for bad modifiers.
    pub fn from_name(name: &str, typmods: &[i64]) -> Result<DataType, PgError> {
        let lower = name.trim().to_ascii_lowercase();
        let norm: String = lower.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(elem) = norm.strip_suffix("[]") {
            return Ok(DataType::Array(Box::new(DataType::from_name(
                elem, typmods,
            )?)));
        }
        if let Some(elem) = norm.strip_prefix('_') {
            if let Ok(e) = DataType::from_name(elem, typmods) {
                if e.array_oid() != 0 {
                    return Ok(DataType::Array(Box::new(e)));
                }
            }
        }
        let no_mods = |t: DataType| -> Result<DataType, PgError> {
            if typmods.is_empty() {
                Ok(t)
            } else {
                Err(PgError::new(
                    SqlState::SyntaxError,
                    format!("type modifier is not allowed for type \"{}\"", t.typname()),
                ))
            }
        };
        let precision_ok = |t: DataType, what: &str| -> Result<DataType, PgError> {
            match typmods {
                [] => Ok(t),
                [p] if *p < 0 => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("{what}({p}) precision must not be negative"),
                )),
                // TODO(types): fractional-second precision (time(3), timestamp(0), interval(2)).
                [6] => Ok(t),
                [_] => Err(PgError::new(
                    SqlState::FeatureNotSupported,
                    format!("{what} precision other than 6 is not supported yet"),
                )),
                _ => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "invalid type modifier",
                )),
            }
        };
        let length = |what: &str, default: Option<u32>| -> Result<Option<u32>, PgError> {
            match typmods {
                [] => Ok(default),
                [n] if *n < 1 => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("length for type {what} must be at least 1"),
                )),
                [n] if *n > 10_485_760 => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("length for type {what} cannot exceed 10485760"),
                )),
                [n] => Ok(Some(*n as u32)),
                _ => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "invalid type modifier",
                )),
            }
        };
        match norm.as_str() {
            "bool" | "boolean" => no_mods(DataType::Bool),
            "int2" | "smallint" | "smallserial" | "serial2" => no_mods(DataType::Int2),
            "int" | "int4" | "integer" | "serial" | "serial4" => no_mods(DataType::Int4),
            "int8" | "bigint" | "bigserial" | "serial8" => no_mods(DataType::Int8),
            "real" | "float4" => no_mods(DataType::Float4),
            "double precision" | "float8" => no_mods(DataType::Float8),
            "float" => match typmods {
                [] => Ok(DataType::Float8),
                [p] if *p < 1 => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "precision for type float must be at least 1 bit",
                )),
                [p] if *p <= 24 => Ok(DataType::Float4),
                [p] if *p <= 53 => Ok(DataType::Float8),
                [_] => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "precision for type float must be less than 54 bits",
                )),
                _ => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "invalid type modifier",
                )),
            },
            "numeric" | "decimal" | "dec" => match typmods {
                [] => Ok(DataType::Numeric(None)),
                [p] | [p, _] if !(1..=1000).contains(p) => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("NUMERIC precision {p} must be between 1 and 1000"),
                )),
                [p] => Ok(DataType::Numeric(Some((*p as u32, 0)))),
                [_, s] if !(-1000..=1000).contains(s) => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("NUMERIC scale {s} must be between -1000 and 1000"),
                )),
                // TODO(types): PostgreSQL 15 allows a negative scale, numeric(5,-2).
                [_, s] if *s < 0 => Err(PgError::new(
                    SqlState::FeatureNotSupported,
                    "negative NUMERIC scale is not supported yet",
                )),
                [p, s] => Ok(DataType::Numeric(Some((*p as u32, *s as u32)))),
                _ => Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    "invalid NUMERIC type modifier",
                )),
            },
            "varchar" | "character varying" | "char varying" => {
                Ok(DataType::Varchar(length("varchar", None)?))
            }
            "char" | "character" | "bpchar" => {
                // `bpchar` without a length is unlimited in PostgreSQL; pgxc treats it like char(1)
                // only when spelled char/character.
                Ok(DataType::Char(length("char", Some(1))?.unwrap_or(1)))
            }
            "text" => no_mods(DataType::Text),
            "name" => no_mods(DataType::Name),
            "money" => no_mods(DataType::Money),
            "inet" => no_mods(DataType::Inet),
            "cidr" => no_mods(DataType::Cidr),
            "\"char\"" => no_mods(DataType::QChar),
            "bytea" => no_mods(DataType::Bytea),
            "date" => no_mods(DataType::Date),
            "time" | "time without time zone" => precision_ok(DataType::Time, "TIME"),
            "timestamp" | "timestamp without time zone" => {
                precision_ok(DataType::Timestamp, "TIMESTAMP")
            }
            "timestamptz" | "timestamp with time zone" => {
                precision_ok(DataType::Timestamptz, "TIMESTAMP")
            }
            "timetz" | "time with time zone" => precision_ok(DataType::Timetz, "TIME"),
            "interval" => precision_ok(DataType::Interval, "INTERVAL"),
            "uuid" => no_mods(DataType::Uuid),
            "json" => no_mods(DataType::Json),
            "jsonb" => no_mods(DataType::Jsonb),
            "unknown" => no_mods(DataType::Unknown),
            _ => Err(PgError::new(
                SqlState::UndefinedObject,
                format!("type \"{}\" does not exist", name.trim()),
            )),
        }
    }

    /// `pg_type.typcategory`.
    pub fn category(&self) -> TypeCategory {
        match self {
            DataType::Bool => TypeCategory::Boolean,
            DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Float4
            | DataType::Float8
            | DataType::Numeric(_) => TypeCategory::Numeric,
            DataType::Text
            | DataType::Varchar(_)
            | DataType::Char(_)
            | DataType::Name
            | DataType::QChar => TypeCategory::String,
            DataType::Date
            | DataType::Time
            | DataType::Timetz
            | DataType::Timestamp
            | DataType::Timestamptz => TypeCategory::DateTime,
            DataType::Interval => TypeCategory::Timespan,
            // money is 'N' in PostgreSQL; kept out of the numeric promotions here since the
            // engine implements no money arithmetic.
            DataType::Bytea
            | DataType::Uuid
            | DataType::Json
            | DataType::Jsonb
            | DataType::Money
            | DataType::Inet
            | DataType::Cidr => TypeCategory::User,
            DataType::Array(_) => TypeCategory::Array,
            DataType::Unknown => TypeCategory::Unknown,
        }
    }

    /// `pg_type.typispreferred`: float8, text, boolean, timestamptz and interval.
    pub fn is_preferred(&self) -> bool {
        matches!(
            self,
            DataType::Float8
                | DataType::Text
                | DataType::Bool
                | DataType::Timestamptz
                | DataType::Interval
        )
    }

    /// Whether this is one of the numeric types (int2/4/8, float4/8, numeric).
    pub fn is_numeric(&self) -> bool {
        self.category() == TypeCategory::Numeric
    }

    /// Whether this is int2, int4 or int8.
    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    /// Whether this is text, varchar or char.
    pub fn is_string(&self) -> bool {
        self.category() == TypeCategory::String
    }

    /// The element type of an array type.
    pub fn element(&self) -> Option<&DataType> {
        match self {
            DataType::Array(e) => Some(e),
            _ => None,
        }
    }

    /// The same type without its type modifier (`varchar(10)` → `varchar`).
    pub fn without_typmod(&self) -> DataType {
        match self {
            DataType::Numeric(_) => DataType::Numeric(None),
            DataType::Varchar(_) => DataType::Varchar(None),
            DataType::Array(e) => DataType::Array(Box::new(e.without_typmod())),
            other => other.clone(),
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
