//! Sequences with PostgreSQL 15 semantics: the durable [`SeqState`] and the pure rules of
//! `CREATE/ALTER SEQUENCE` (PostgreSQL's `init_params`), `nextval` (`nextval_internal`) and `setval`
//! (`do_setval`), with PostgreSQL's SQLSTATEs and messages.
//!
//! The GTM differs from PostgreSQL in one place: values are handed out of blocks that the leader reserves
//! durably ([`SeqState::reserve`]) and caches; a leader change loses the cached rest of a block (a gap, like the
//! per-session caches PostgreSQL loses when a backend exits). `last_value` is the durable reservation position,
//! like PostgreSQL's on-disk `last_value`, which includes values cached by sessions.
//!
//! **Invariant:** `min_value < max_value`, `min_value <= start <= max_value`,
//! `min_value <= last_value <= max_value`, `increment != 0`, `cache >= 1`, and the bounds fit `data_type`.
//!
//! **Invariant:** a block from [`SeqState::reserve`] lies within `[min_value, max_value]`, never crosses a
//! cycle wrap, and starts right after the previous block (or at the wrap): without CYCLE, setval or ALTER, no
//! value is reserved twice.

use crate::proto::{SeqInfo, SeqOptions, SeqType};
use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

/// A sequence's replicated definition and position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqState {
    /// `AS` type.
    pub data_type: SeqType,
    /// START value.
    pub start: i64,
    /// MINVALUE.
    pub min_value: i64,
    /// MAXVALUE.
    pub max_value: i64,
    /// INCREMENT (non-zero).
    pub increment: i64,
    /// CYCLE.
    pub cycle: bool,
    /// CACHE (>= 1): the per-session cache size clients should request.
    pub cache: i64,
    /// Last value reserved (the durable position).
    pub last_value: i64,
    /// Whether `last_value` has been reserved/returned; false after CREATE, RESTART or `setval(.., false)`, when
    /// the next value is `last_value` itself.
    pub is_called: bool,
    /// Bumped (from [`DurableState::seq_generation`](super::DurableState::seq_generation)) on every CREATE,
    /// ALTER, RENAME and setval: leader caches from an older generation are discarded.
    pub generation: u64,
}

/// PostgreSQL's `format_type_be` name of a sequence type.
pub fn type_name(t: SeqType) -> &'static str {
    match t {
        SeqType::SmallInt => "smallint",
        SeqType::Integer => "integer",
        SeqType::BigInt => "bigint",
    }
}

/// The (min, max) range of a sequence type.
pub fn type_bounds(t: SeqType) -> (i64, i64) {
    match t {
        SeqType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
        SeqType::Integer => (i32::MIN as i64, i32::MAX as i64),
        SeqType::BigInt => (i64::MIN, i64::MAX),
    }
}

fn invalid(msg: String) -> PgError {
    PgError::new(SqlState::InvalidParameterValue, msg)
}

/// 42P01 `relation "name" does not exist`, PostgreSQL's error for a missing sequence.
pub fn undefined(name: &str) -> PgError {
    PgError::new(
        SqlState::UndefinedTable,
        format!("relation \"{name}\" does not exist"),
    )
}

/// 42P07 `relation "name" already exists`.
pub fn duplicate(name: &str) -> PgError {
    PgError::new(
        SqlState::DuplicateTable,
        format!("relation \"{name}\" already exists"),
    )
}

/// `count` values `first + (skip + i) * increment`, `i in 0..count - skip` (saturating at nothing: callers pass
/// ranges that lie within the sequence bounds).
pub fn range_values(first: i64, increment: i64, skip: u64, count: u64) -> Vec<i64> {
    (skip..count)
        .map(|i| (first as i128 + i as i128 * increment as i128) as i64)
        .collect()
}

impl SeqState {
    /// `CREATE SEQUENCE` with `options` (PostgreSQL's `init_params` with `isInit`): defaults are AS bigint,
    /// INCREMENT 1, ascending MINVALUE 1 / MAXVALUE type max, descending MINVALUE type min / MAXVALUE -1, START
    /// MINVALUE (ascending) or MAXVALUE (descending), CACHE 1, NO CYCLE.
    ///
    /// Errors: 22023 (`INCREMENT must not be zero`, `MINVALUE (10) must be less than MAXVALUE (5)`,
    /// `START value (0) cannot be less than MINVALUE (1)`, `CACHE (0) must be greater than zero`, ...), 22003
    /// (`MAXVALUE (40000) is out of range for sequence data type smallint`).
    pub fn create(options: &SeqOptions, generation: u64) -> Result<SeqState, PgError> {
        let mut s = SeqState {
            data_type: SeqType::BigInt,
            start: 1,
            min_value: 1,
            max_value: i64::MAX,
            increment: 1,
            cycle: false,
            cache: 1,
            last_value: 1,
            is_called: false,
            generation,
        };
        s.init_params(options, true)?;
        Ok(s)
    }

    /// `ALTER SEQUENCE` with `options` (PostgreSQL's `init_params` without `isInit`): unspecified options keep
    /// their value; `NO MINVALUE`/`NO MAXVALUE` and a type change reset bounds as PostgreSQL does; the current
    /// position is kept unless RESTART, and must still lie within the bounds. On error `self` is unchanged.
    ///
    /// Errors: as [`SeqState::create`], plus 22023 `RESTART value (x) cannot be less than MINVALUE (y)` /
    /// `... greater than MAXVALUE (y)`.
    pub fn alter(&mut self, options: &SeqOptions, generation: u64) -> Result<(), PgError> {
        let mut s = self.clone();
        s.init_params(options, false)?;
        s.generation = generation;
        *self = s;
        Ok(())
    }

    fn init_params(&mut self, o: &SeqOptions, is_init: bool) -> Result<(), PgError> {
        let mut reset_max = false;
        let mut reset_min = false;
        if let Some(t) = o.data_type {
            if !is_init {
                let (tmin, tmax) = type_bounds(self.data_type);
                reset_max = self.max_value == tmax;
                reset_min = self.min_value == tmin;
            }
            self.data_type = t;
        }
        if let Some(inc) = o.increment {
            if inc == 0 {
                return Err(invalid("INCREMENT must not be zero".into()));
            }
            self.increment = inc;
        }
        if let Some(c) = o.cycle {
            self.cycle = c;
        }
        let (tmin, tmax) = type_bounds(self.data_type);
        let tname = type_name(self.data_type);
        match o.max_value {
            Some(Some(v)) => self.max_value = v,
            explicit_none => {
                if is_init || explicit_none.is_some() || reset_max {
                    self.max_value = if self.increment > 0 || reset_max {
                        tmax
                    } else {
                        -1
                    };
                }
            }
        }
        if self.max_value < tmin || self.max_value > tmax {
            return Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                format!(
                    "MAXVALUE ({}) is out of range for sequence data type {tname}",
                    self.max_value
                ),
            ));
        }
        match o.min_value {
            Some(Some(v)) => self.min_value = v,
            explicit_none => {
                if is_init || explicit_none.is_some() || reset_min {
                    self.min_value = if self.increment < 0 || reset_min {
                        tmin
                    } else {
                        1
                    };
                }
            }
        }
        if self.min_value < tmin || self.min_value > tmax {
            return Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                format!(
                    "MINVALUE ({}) is out of range for sequence data type {tname}",
                    self.min_value
                ),
            ));
        }
        if self.min_value >= self.max_value {
            return Err(invalid(format!(
                "MINVALUE ({}) must be less than MAXVALUE ({})",
                self.min_value, self.max_value
            )));
        }
        if let Some(v) = o.start {
            self.start = v;
        } else if is_init {
            self.start = if self.increment > 0 {
                self.min_value
            } else {
                self.max_value
            };
        }
        if self.start < self.min_value {
            return Err(invalid(format!(
                "START value ({}) cannot be less than MINVALUE ({})",
                self.start, self.min_value
            )));
        }
        if self.start > self.max_value {
            return Err(invalid(format!(
                "START value ({}) cannot be greater than MAXVALUE ({})",
                self.start, self.max_value
            )));
        }
        if let Some(r) = o.restart {
            self.last_value = r.unwrap_or(self.start);
            self.is_called = false;
        } else if is_init {
            self.last_value = self.start;
            self.is_called = false;
        }
        if self.last_value < self.min_value {
            return Err(invalid(format!(
                "RESTART value ({}) cannot be less than MINVALUE ({})",
                self.last_value, self.min_value
            )));
        }
        if self.last_value > self.max_value {
            return Err(invalid(format!(
                "RESTART value ({}) cannot be greater than MAXVALUE ({})",
                self.last_value, self.max_value
            )));
        }
        if let Some(c) = o.cache {
            if c <= 0 {
                return Err(invalid(format!("CACHE ({c}) must be greater than zero")));
            }
            self.cache = c;
        }
        Ok(())
    }

    /// Whether the value after `v` would cross a bound (the end of a cycle, or exhaustion without CYCLE).
    pub fn ends_at_bound(&self, v: i64) -> bool {
        let next = v as i128 + self.increment as i128;
        next > self.max_value as i128 || next < self.min_value as i128
    }

    /// Reserve up to `count` (>= 1) values, PostgreSQL's `nextval_internal` fetching a cache of `count`: the
    /// first value is `last_value` if not `is_called`, else `last_value + increment`, wrapping to MINVALUE
    /// (ascending) / MAXVALUE (descending) with CYCLE. The block stops at the bound (never wraps inside a block).
    /// Advances `last_value` to the block's last value and sets `is_called`. Returns `(first, count)`.
    ///
    /// Errors (nothing changed): 2200H `nextval: reached maximum value of sequence "name" (max)` /
    /// `nextval: reached minimum value of sequence "name" (min)`.
    pub fn reserve(&mut self, name: &str, count: u64) -> Result<(i64, u64), PgError> {
        let count = count.max(1) as i128;
        let inc = self.increment as i128;
        let (min, max) = (self.min_value as i128, self.max_value as i128);
        let first = if !self.is_called {
            self.last_value as i128
        } else if self.ends_at_bound(self.last_value) {
            if !self.cycle {
                let (which, bound) = if inc > 0 {
                    ("maximum", max)
                } else {
                    ("minimum", min)
                };
                return Err(PgError::new(
                    SqlState::SequenceGeneratorLimitExceeded,
                    format!("nextval: reached {which} value of sequence \"{name}\" ({bound})"),
                ));
            }
            if inc > 0 {
                min
            } else {
                max
            }
        } else {
            self.last_value as i128 + inc
        };
        let room = if inc > 0 {
            (max - first) / inc + 1
        } else {
            (first - min) / (-inc) + 1
        };
        let n = count.min(room);
        debug_assert!(n >= 1);
        self.last_value = (first + (n - 1) * inc) as i64;
        self.is_called = true;
        Ok((first as i64, n as u64))
    }

    /// `setval(name, value, is_called)`, PostgreSQL's `do_setval`.
    ///
    /// Errors: 22003 `setval: value 0 is out of bounds for sequence "name" (1..10)`.
    pub fn setval(
        &mut self,
        name: &str,
        value: i64,
        is_called: bool,
        generation: u64,
    ) -> Result<(), PgError> {
        if value < self.min_value || value > self.max_value {
            return Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                format!(
                    "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                    self.min_value, self.max_value
                ),
            ));
        }
        self.last_value = value;
        self.is_called = is_called;
        self.generation = generation;
        Ok(())
    }

    /// The `pg_sequences`-style description.
    pub fn info(&self, name: &str) -> SeqInfo {
        SeqInfo {
            name: name.to_string(),
            data_type: self.data_type,
            start: self.start,
            min_value: self.min_value,
            max_value: self.max_value,
            increment: self.increment,
            cycle: self.cycle,
            cache: self.cache,
            last_value: self.last_value,
            is_called: self.is_called,
        }
    }
}
