//! `numeric`: arbitrary-precision decimal with PostgreSQL's rounding (half away from zero) and
//! display scale. (Being built.)

use serde::{Deserialize, Serialize};

/// A `numeric` value: a finite decimal, or NaN / ±Infinity (PostgreSQL 14+).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Numeric {
    /// A finite value; its scale is the display scale.
    Finite(bigdecimal::BigDecimal),
    /// `NaN`.
    NaN,
    /// `Infinity`.
    PosInf,
    /// `-Infinity`.
    NegInf,
}
