//! PostgreSQL 15's date/time constructor and conversion functions: `make_date`, `make_time`,
//! `make_timestamp(tz)`, `make_interval`, `date_bin`, `to_date`, `to_timestamp`, `to_number`,
//! `AT TIME ZONE` (`timezone(zone, x)`), `OVERLAPS`, and the `time`/`timetz` arithmetic the
//! operators need.
//!
//! Evaluation gets already-typed argument values (the binder coerces them: integers as `int4`,
//! seconds as `float8`, zones and templates as `text`) plus the session's
//! [`DateTimeSettings`]; errors carry PostgreSQL's SQLSTATEs.

use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

use super::datetime::{
    self, date_to_ymd, days_in_month, named_zone, timestamp_to_tm, tm_to_timestamp, ymd_to_date,
    DateTimeSettings, Tm, Zone, USECS_PER_DAY, USECS_PER_HOUR, USECS_PER_MINUTE, USECS_PER_SEC,
};
use super::numeric::Numeric;
use super::{Interval, Value};

/// A date/time function of this module (one `Func` variant of the expression tree carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DtFunc {
    /// `make_date(year int, month int, day int)` → date.
    MakeDate,
    /// `make_time(hour int, min int, sec float8)` → time.
    MakeTime,
    /// `make_timestamp(year, month, day, hour, min int, sec float8)` → timestamp.
    MakeTimestamp,
    /// `make_timestamptz(year, month, day, hour, min int, sec float8 [, zone text])` → timestamptz.
    MakeTimestamptz,
    /// `make_interval(years, months, weeks, days, hours, mins int, secs float8)` → interval.
    MakeInterval,
    /// `date_bin(stride interval, source, origin)` for timestamp or timestamptz.
    DateBin,
    /// `to_date(text, template)` → date.
    ToDate,
    /// `to_timestamp(text, template)` → timestamptz.
    ToTimestamp,
    /// `to_timestamp(float8)`: Unix epoch seconds → timestamptz.
    ToTimestampEpoch,
    /// `to_number(text, template)` → numeric.
    ToNumber,
    /// `timezone(zone, timestamp|timestamptz|timetz)` / `x AT TIME ZONE zone`; the zone is text or
    /// interval.
    AtTimeZone,
    /// `(s1, e1) OVERLAPS (s2, e2)` on four values of one date/time type (not strict).
    Overlaps,
    /// `time + interval` / `time - interval` (second argument already negated for `-`).
    TimePlusInterval,
    /// `time - time` → interval.
    TimeMinusTime,
    /// `date + time` → timestamp.
    DatePlusTime,
    /// `timetz + interval`.
    TimetzPlusInterval,
    /// `date + timetz` → timestamptz.
    DatePlusTimetz,
    /// `isfinite(date | timestamp | timestamptz | interval)`.
    IsFinite,
    /// `(x, p)`: a time/timetz/timestamp/timestamptz rounded to `p` (0..=6) fractional digits, as
    /// a cast to `timestamp(p)` / `time(p)` does (`AdjustTimestampForTypmod`).
    RoundPrecision,
}

impl DtFunc {
    /// Whether a NULL argument makes the result NULL without calling the function.
    pub fn is_strict(self) -> bool {
        self != DtFunc::Overlaps
    }
}

fn range(msg: impl Into<String>) -> PgError {
    PgError::new(SqlState::DatetimeFieldOverflow, msg)
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int2(x)) => *x as i64,
        Some(Value::Int4(x)) => *x as i64,
        Some(Value::Int8(x)) => *x,
        Some(Value::Float8(x)) => *x as i64,
        _ => 0,
    }
}

fn float(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Float8(x)) => *x,
        Some(Value::Float4(x)) => *x as f64,
        Some(Value::Int2(x)) => *x as f64,
        Some(Value::Int4(x)) => *x as f64,
        Some(Value::Int8(x)) => *x as f64,
        Some(Value::Numeric(n)) => n.to_f64(),
        _ => 0.0,
    }
}

fn text(v: Option<&Value>) -> &str {
    match v {
        Some(Value::Text(s)) => s,
        _ => "",
    }
}

/// Evaluate `f` on `args` in the session settings `st`.
///
/// Errors: 22008 for out-of-range fields and results, 22007 for input that does not match a
/// template, 22023 for unknown time zones and bad `date_bin` strides, 0A000 for month strides.
pub fn call(f: DtFunc, args: &[Value], st: &DateTimeSettings) -> Result<Value, PgError> {
    if f.is_strict() && args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let a = |i: usize| args.get(i);
    Ok(match f {
        DtFunc::MakeDate => Value::Date(make_date(int(a(0)), int(a(1)), int(a(2)))?),
        DtFunc::MakeTime => Value::Time(make_time(int(a(0)), int(a(1)), float(a(2)))?),
        DtFunc::MakeTimestamp | DtFunc::MakeTimestamptz => {
            let d = make_date(int(a(0)), int(a(1)), int(a(2))).map_err(|_| {
                range(format!(
                    "date field value out of range: {}-{:02}-{:02}",
                    int(a(0)),
                    int(a(1)),
                    int(a(2))
                ))
            })?;
            let t = make_time(int(a(3)), int(a(4)), float(a(5)))?;
            let local = (d as i64)
                .checked_mul(USECS_PER_DAY)
                .and_then(|x| x.checked_add(t))
                .ok_or_else(|| range("timestamp out of range"))?;
            if f == DtFunc::MakeTimestamp {
                Value::Timestamp(local)
            } else {
                let zone = match a(6) {
                    Some(Value::Text(z)) => zone_for_at(z)?,
                    _ => st.zone,
                };
                let off = zone.offset_at_local(local);
                Value::Timestamptz(local - off as i64 * USECS_PER_SEC)
            }
        }
        DtFunc::MakeInterval => {
            let months = int(a(0)) * 12 + int(a(1));
            let days = int(a(2)) * 7 + int(a(3));
            let secs = float(a(6));
            let micros = int(a(4)) as f64 * USECS_PER_HOUR as f64
                + int(a(5)) as f64 * USECS_PER_MINUTE as f64
                + (secs * 1e6).round_ties_even();
            let fits32 = |x: i64| i32::try_from(x).ok();
            match (fits32(months), fits32(days)) {
                (Some(m), Some(d)) if micros.is_finite() && micros.abs() < 9.2e18 => {
                    Value::Interval(Interval {
                        months: m,
                        days: d,
                        micros: micros as i64,
                    })
                }
                _ => return Err(range("interval out of range")),
            }
        }
        DtFunc::DateBin => {
            let Some(Value::Interval(stride)) = a(0) else {
                return Ok(Value::Null);
            };
            let (src, origin, tz) = match (a(1), a(2)) {
                (Some(Value::Timestamp(s)), Some(Value::Timestamp(o))) => (*s, *o, false),
                (Some(Value::Timestamptz(s)), Some(Value::Timestamptz(o))) => (*s, *o, true),
                _ => return Ok(Value::Null),
            };
            let r = date_bin(stride, src, origin)?;
            if tz {
                Value::Timestamptz(r)
            } else {
                Value::Timestamp(r)
            }
        }
        DtFunc::ToDate => {
            let tm = parse_template(text(a(0)), text(a(1)))?;
            Value::Date(ymd_to_date(tm.year, tm.month, tm.day))
        }
        DtFunc::ToTimestamp => {
            let p = parse_template_full(text(a(0)), text(a(1)))?;
            let local = tm_to_timestamp(&p.tm).ok_or_else(|| range("timestamp out of range"))?;
            let off = match p.offset {
                Some(o) => o,
                None => st.offset_at_local(local),
            };
            Value::Timestamptz(local - off as i64 * USECS_PER_SEC)
        }
        DtFunc::ToTimestampEpoch => {
            let x = float(a(0));
            if x.is_nan() {
                return Err(range("timestamp cannot be NaN"));
            }
            if x == f64::INFINITY {
                Value::Timestamptz(datetime::TS_POS_INF)
            } else if x == f64::NEG_INFINITY {
                Value::Timestamptz(datetime::TS_NEG_INF)
            } else {
                let us = (x * 1e6).round_ties_even()
                    - (datetime::UNIX_EPOCH_DAYS * USECS_PER_DAY) as f64;
                // Between MIN_TIMESTAMP and END_TIMESTAMP.
                if !(-211_813_488_000_000_000.0..9_223_371_331_200_000_000.0).contains(&us) {
                    return Err(range(format!("timestamp out of range: \"{x}\"")));
                }
                Value::Timestamptz(us as i64)
            }
        }
        DtFunc::ToNumber => Value::Numeric(to_number(text(a(0)), text(a(1)))?),
        DtFunc::AtTimeZone => {
            let zone = match a(0) {
                Some(Value::Text(z)) => zone_for_at(z)?,
                Some(Value::Interval(iv)) => {
                    if iv.months != 0 || iv.days != 0 {
                        return Err(PgError::new(
                            SqlState::InvalidParameterValue,
                            "interval time zone must not include months or days",
                        ));
                    }
                    Zone::from_offset((iv.micros / USECS_PER_SEC) as i32)
                }
                _ => return Ok(Value::Null),
            };
            let zst = DateTimeSettings::in_zone(zone);
            match a(1) {
                Some(Value::Timestamp(t)) => Value::Timestamptz(datetime::local_to_utc(*t, &zst)?),
                Some(Value::Timestamptz(t)) => Value::Timestamp(datetime::utc_to_local(*t, &zst)?),
                Some(Value::Timetz(t, off)) => {
                    // The zone's offset now (PostgreSQL uses the transaction time).
                    let at = st.now.unwrap_or(0);
                    let new_off = zone.offset_at_utc(at);
                    let utc = t - *off as i64 * USECS_PER_SEC;
                    Value::Timetz(
                        (utc + new_off as i64 * USECS_PER_SEC).rem_euclid(USECS_PER_DAY),
                        new_off,
                    )
                }
                _ => Value::Null,
            }
        }
        DtFunc::Overlaps => overlaps(args),
        DtFunc::TimePlusInterval => match (a(0), a(1)) {
            (Some(Value::Time(t)), Some(Value::Interval(iv))) => {
                Value::Time(datetime::time_add_interval(*t, iv))
            }
            _ => Value::Null,
        },
        DtFunc::TimeMinusTime => match (a(0), a(1)) {
            (Some(Value::Time(x)), Some(Value::Time(y))) => {
                Value::Interval(datetime::time_diff(*x, *y))
            }
            _ => Value::Null,
        },
        DtFunc::DatePlusTime => match (a(0), a(1)) {
            (Some(Value::Date(d)), Some(Value::Time(t))) => {
                let ts = datetime::date_to_timestamp(*d)?;
                if ts == datetime::TS_NEG_INF || ts == datetime::TS_POS_INF {
                    Value::Timestamp(ts)
                } else {
                    Value::Timestamp(
                        ts.checked_add(*t)
                            .ok_or_else(|| range("timestamp out of range"))?,
                    )
                }
            }
            _ => Value::Null,
        },
        DtFunc::TimetzPlusInterval => match (a(0), a(1)) {
            (Some(Value::Timetz(t, off)), Some(Value::Interval(iv))) => {
                Value::Timetz(datetime::time_add_interval(*t, iv), *off)
            }
            _ => Value::Null,
        },
        DtFunc::DatePlusTimetz => match (a(0), a(1)) {
            (Some(Value::Date(d)), Some(Value::Timetz(t, off))) => {
                let ts = datetime::date_to_timestamp(*d)?;
                if ts == datetime::TS_NEG_INF || ts == datetime::TS_POS_INF {
                    Value::Timestamptz(ts)
                } else {
                    Value::Timestamptz(ts + t - *off as i64 * USECS_PER_SEC)
                }
            }
            _ => Value::Null,
        },
        DtFunc::RoundPrecision => {
            let p = int(a(1)).clamp(0, 6) as u32;
            match a(0) {
                Some(Value::Timestamp(t)) => Value::Timestamp(round_usecs(*t, p)),
                Some(Value::Timestamptz(t)) => Value::Timestamptz(round_usecs(*t, p)),
                Some(Value::Time(t)) => Value::Time(round_usecs(*t, p)),
                Some(Value::Timetz(t, off)) => Value::Timetz(round_usecs(*t, p), *off),
                Some(v) => v.clone(),
                None => Value::Null,
            }
        }
        DtFunc::IsFinite => Value::Bool(match a(0) {
            Some(Value::Date(d)) => *d != datetime::DATE_NEG_INF && *d != datetime::DATE_POS_INF,
            Some(Value::Timestamp(t) | Value::Timestamptz(t)) => {
                *t != datetime::TS_NEG_INF && *t != datetime::TS_POS_INF
            }
            _ => true,
        }),
    })
}

/// Round microseconds to `p` fractional digits, half away from zero; infinities stay.
fn round_usecs(t: i64, p: u32) -> i64 {
    if p >= 6 || t == datetime::TS_NEG_INF || t == datetime::TS_POS_INF {
        return t;
    }
    let scale = 10i64.pow(6 - p);
    let half = scale / 2;
    if t >= 0 {
        t.saturating_add(half) / scale * scale
    } else {
        -(t.saturating_neg().saturating_add(half) / scale * scale)
    }
}

/// `make_date`: a negative year is BC. Errors: 22008 `date field value out of range`.
fn make_date(y: i64, m: i64, d: i64) -> Result<i32, PgError> {
    let bad = || range(format!("date field value out of range: {y}-{m:02}-{d:02}"));
    if y == 0 || !(1..=12).contains(&m) || y.abs() > 5_874_897 {
        return Err(bad());
    }
    let year = if y < 0 { y + 1 } else { y } as i32;
    let (m, d32) = (m as i32, i32::try_from(d).map_err(|_| bad())?);
    if d32 < 1 || d32 > days_in_month(year, m) {
        return Err(bad());
    }
    let days = ymd_to_date(year, m, d32);
    if date_to_ymd(days) != (year, m, d32) {
        return Err(bad());
    }
    Ok(days)
}

/// `make_time`. Errors: 22008 `time field value out of range`.
fn make_time(h: i64, m: i64, sec: f64) -> Result<i64, PgError> {
    let bad = || {
        range(format!(
            "time field value out of range: {h}:{m:02}:{sec:02}"
        ))
    };
    if !(0..=24).contains(&h) || !(0..=59).contains(&m) || !(0.0..=60.0).contains(&sec) {
        return Err(bad());
    }
    let t = h * USECS_PER_HOUR + m * USECS_PER_MINUTE + (sec * 1e6).round_ties_even() as i64;
    if t > USECS_PER_DAY {
        return Err(bad());
    }
    Ok(t)
}

/// `date_bin(stride, source, origin)`: the start of the stride-sized bin (counted from `origin`)
/// that contains `source`.
fn date_bin(stride: &Interval, src: i64, origin: i64) -> Result<i64, PgError> {
    let inf = |t: i64| t == datetime::TS_NEG_INF || t == datetime::TS_POS_INF;
    if inf(src) || inf(origin) {
        return Err(range("timestamps cannot be binned into infinite intervals"));
    }
    if stride.months != 0 {
        return Err(PgError::new(
            SqlState::FeatureNotSupported,
            "timestamps cannot be binned into intervals containing months or years",
        ));
    }
    let stride_us = (stride.days as i64)
        .checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(stride.micros))
        .ok_or_else(|| range("interval out of range"))?;
    if stride_us <= 0 {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            "stride must be greater than zero",
        ));
    }
    let diff = src
        .checked_sub(origin)
        .ok_or_else(|| range("interval out of range"))?;
    let mut delta = diff - diff % stride_us;
    if diff < 0 && diff % stride_us != 0 {
        delta -= stride_us;
    }
    origin
        .checked_add(delta)
        .ok_or_else(|| range("timestamp out of range"))
}

/// A zone for `AT TIME ZONE` / `make_timestamptz`: an abbreviation, a tz-database name, or a POSIX
/// offset (`'+05'` is five hours *west*, as in PostgreSQL). Errors: 22023 not recognized.
pub fn zone_for_at(name: &str) -> Result<Zone, PgError> {
    let lower = name.trim().to_ascii_lowercase();
    if let Some(off) = datetime::tz_abbrev_offset(&lower) {
        return Ok(Zone::from_offset(off));
    }
    if let Some(z) = named_zone(name) {
        return Ok(Zone::Named(z));
    }
    let posix = lower.starts_with(['+', '-']) || lower.starts_with(|c: char| c.is_ascii_digit());
    if posix {
        if let Ok(z) = Zone::from_setting(&format!("<x>{lower}")) {
            return Ok(z);
        }
    }
    Err(PgError::new(
        SqlState::InvalidParameterValue,
        format!("time zone \"{name}\" not recognized"),
    ))
}

fn overlaps(args: &[Value]) -> Value {
    fn key(v: &Value) -> Option<i64> {
        match v {
            Value::Date(d) => Some(*d as i64),
            Value::Time(t) | Value::Timestamp(t) | Value::Timestamptz(t) => Some(*t),
            Value::Timetz(t, off) => Some(t - *off as i64 * USECS_PER_SEC),
            _ => None,
        }
    }
    let k = |i: usize| args.get(i).and_then(key);
    let norm = |s: Option<i64>, e: Option<i64>| match (s, e) {
        (None, None) => None,
        (None, Some(e)) => Some((e, None)),
        (Some(s), None) => Some((s, None)),
        (Some(s), Some(e)) => Some(if s > e { (e, Some(s)) } else { (s, Some(e)) }),
    };
    let (Some((ts1, te1)), Some((ts2, te2))) = (norm(k(0), k(1)), norm(k(2), k(3))) else {
        return Value::Null;
    };
    let r = if ts1 > ts2 {
        match te2 {
            None => None,
            Some(te2) if ts1 < te2 => Some(true),
            Some(_) => te1.map(|_| false),
        }
    } else if ts1 < ts2 {
        match te1 {
            None => None,
            Some(te1) if ts2 < te1 => Some(true),
            Some(_) => te2.map(|_| false),
        }
    } else if te1.is_none() || te2.is_none() {
        None
    } else {
        Some(true)
    };
    r.map(Value::Bool).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// to_date / to_timestamp / to_number.

const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

struct Parsed {
    tm: Tm,
    offset: Option<i32>,
}

fn bad_template(input: &str) -> PgError {
    PgError::new(
        SqlState::InvalidDatetimeFormat,
        format!("invalid value for template in \"{input}\""),
    )
}

/// `to_date`'s result fields (time fields ignored); the date is checked.
fn parse_template(input: &str, fmt: &str) -> Result<Tm, PgError> {
    let p = parse_template_full(input, fmt)?;
    Ok(Tm {
        hour: 0,
        minute: 0,
        second: 0,
        usec: 0,
        ..p.tm
    })
}

/// PostgreSQL's `do_to_timestamp` for the common template patterns: `YYYY`, `YYY`, `YY`, `Y`,
/// `MM`, `Mon`/`MON`/`mon`, `Month`, `DD`, `DDD`, `Dy`/`Day` (skipped), `HH24`, `HH12`/`HH`,
/// `MI`, `SS`, `MS`, `US`, `AM`/`PM`, `TZH`, `TZM`, `FM` and `FX` prefixes (accepted), and literal
/// separators, which match any one non-alphanumeric character as in non-FX mode.
///
/// Errors: 22007 for input that does not match, 22008 for out-of-range fields.
fn parse_template_full(input: &str, fmt: &str) -> Result<Parsed, PgError> {
    let src = input.as_bytes();
    let f = fmt.as_bytes();
    let mut i = 0usize; // position in input
    let mut j = 0usize; // position in fmt
    let (mut year, mut month, mut day) = (None::<i64>, None::<i64>, None::<i64>);
    let (mut hour, mut minute, mut second, mut usec) = (0i64, 0i64, 0i64, 0i64);
    let mut doy = None::<i64>;
    let mut pm = None::<bool>;
    let mut hour12 = false;
    let mut tzh = None::<i64>;
    let mut tzm = 0i64;
    let mut bc = false;
    let skip_spaces = |i: &mut usize| {
        while *i < src.len() && src[*i] == b' ' {
            *i += 1;
        }
    };
    let read_num = |i: &mut usize, max_digits: usize, allow_sign: bool| -> Result<i64, PgError> {
        skip_spaces(i);
        let start = *i;
        let mut neg = false;
        if allow_sign && *i < src.len() && (src[*i] == b'-' || src[*i] == b'+') {
            neg = src[*i] == b'-';
            *i += 1;
        }
        let ds = *i;
        while *i < src.len() && src[*i].is_ascii_digit() && *i - ds < max_digits {
            *i += 1;
        }
        if *i == ds {
            *i = start;
            return Err(PgError::new(
                SqlState::InvalidDatetimeFormat,
                format!(
                    "invalid value \"{}\" for template",
                    &input[start.min(input.len())..]
                ),
            ));
        }
        let v: i64 = input[ds..*i].parse().map_err(|_| bad_template(input))?;
        Ok(if neg { -v } else { v })
    };
    let read_word = |i: &mut usize, names: &[&str], abbrev: bool| -> Result<usize, PgError> {
        skip_spaces(i);
        let rest = input[*i..].to_ascii_lowercase();
        for (k, n) in names.iter().enumerate() {
            let cand = if abbrev { &n[..3] } else { n };
            if rest.starts_with(cand) {
                *i += cand.len();
                return Ok(k);
            }
        }
        Err(PgError::new(
            SqlState::InvalidDatetimeFormat,
            format!("invalid value \"{}\" for template", &input[*i..]),
        ))
    };
    while j < f.len() {
        let rest = &fmt[j..];
        let up = rest.to_ascii_uppercase();
        let starts = |p: &str| up.starts_with(p);
        if starts("FM") || starts("FX") {
            j += 2;
            continue;
        }
        if starts("YYYY") {
            year = Some(read_num(&mut i, 9, true)?);
            j += 4;
        } else if starts("YYY") {
            let v = read_num(&mut i, 3, false)?;
            year = Some(if v < 100 { v + 2000 } else { v + 1000 });
            j += 3;
        } else if starts("YY") {
            let v = read_num(&mut i, 2, false)?;
            year = Some(if v < 70 { v + 2000 } else { v + 1900 });
            j += 2;
        } else if starts("Y") && !starts("Y,") {
            let v = read_num(&mut i, 1, false)?;
            year = Some(v + 2020);
            j += 1;
        } else if starts("MONTH") {
            month = Some(read_word(&mut i, &MONTH_NAMES, false)? as i64 + 1);
            j += 5;
        } else if starts("MON") {
            month = Some(read_word(&mut i, &MONTH_NAMES, true)? as i64 + 1);
            j += 3;
        } else if starts("MM") {
            month = Some(read_num(&mut i, 2, false)?);
            j += 2;
        } else if starts("MI") {
            minute = read_num(&mut i, 2, false)?;
            j += 2;
        } else if starts("MS") {
            let s0 = i;
            let v = read_num(&mut i, 3, false)?;
            let digits = i - s0;
            usec += v * 10i64.pow(3 - digits.min(3) as u32) * 1000;
            j += 2;
        } else if starts("US") {
            let s0 = i;
            let v = read_num(&mut i, 6, false)?;
            let digits = i - s0;
            usec += v * 10i64.pow(6 - digits.min(6) as u32);
            j += 2;
        } else if starts("DDD") {
            doy = Some(read_num(&mut i, 3, false)?);
            j += 3;
        } else if starts("DD") {
            day = Some(read_num(&mut i, 2, false)?);
            j += 2;
        } else if starts("DAY") {
            read_word(&mut i, &DAY_NAMES, false)?;
            j += 3;
        } else if starts("DY") {
            read_word(&mut i, &DAY_NAMES, true)?;
            j += 2;
        } else if starts("HH24") {
            hour = read_num(&mut i, 2, false)?;
            j += 4;
        } else if starts("HH12") || starts("HH") {
            hour = read_num(&mut i, 2, false)?;
            hour12 = true;
            j += if starts("HH12") { 4 } else { 2 };
        } else if starts("SS") {
            second = read_num(&mut i, 2, false)?;
            j += 2;
        } else if starts("AM") || starts("PM") || starts("A.M.") || starts("P.M.") {
            skip_spaces(&mut i);
            let r = input[i..].to_ascii_lowercase();
            let (is_pm, len) = if r.starts_with("am") {
                (false, 2)
            } else if r.starts_with("pm") {
                (true, 2)
            } else if r.starts_with("a.m.") {
                (false, 4)
            } else if r.starts_with("p.m.") {
                (true, 4)
            } else {
                return Err(bad_template(input));
            };
            pm = Some(is_pm);
            i += len;
            j += if starts("AM") || starts("PM") { 2 } else { 4 };
        } else if starts("BC") || starts("AD") {
            skip_spaces(&mut i);
            let r = input[i..].to_ascii_lowercase();
            if r.starts_with("bc") {
                bc = true;
                i += 2;
            } else if r.starts_with("ad") {
                i += 2;
            }
            j += 2;
        } else if starts("TZH") {
            tzh = Some(read_num(&mut i, 2, true)?);
            j += 3;
        } else if starts("TZM") {
            tzm = read_num(&mut i, 2, false)?;
            j += 3;
        } else if f[j] == b'"' {
            // A quoted literal: skip as many input characters.
            j += 1;
            while j < f.len() && f[j] != b'"' {
                if i < src.len() {
                    i += 1;
                }
                j += 1;
            }
            j += 1;
        } else {
            // A separator or other literal character: matches one non-alphanumeric input char.
            let c = f[j];
            j += 1;
            if c == b' ' {
                skip_spaces(&mut i);
                continue;
            }
            if i < src.len() && !src[i].is_ascii_alphanumeric() {
                i += 1;
            }
        }
    }
    let year = year.unwrap_or(1);
    let year = if bc { 1 - year } else { year };
    if hour12 {
        if !(1..=12).contains(&hour) {
            return Err(range(format!(
                "hour \"{hour}\" is invalid for the 12-hour clock"
            )));
        }
        if hour == 12 {
            hour = 0;
        }
        if pm == Some(true) {
            hour += 12;
        }
    } else if pm == Some(true) && hour < 12 {
        hour += 12;
    }
    let (mut month, mut day) = (month.unwrap_or(1), day.unwrap_or(1));
    if let Some(n) = doy {
        let y32 = i32::try_from(year).map_err(|_| range("date out of range"))?;
        let jd = datetime::date2j(y32, 1, 1) as i64 + n - 1;
        let (_, m, d) = datetime::j2date(jd as i32);
        month = m as i64;
        day = d as i64;
    }
    let field = |_what: &str| range(format!("date/time field value out of range: \"{input}\""));
    if !(1..=12).contains(&month) {
        return Err(field("month"));
    }
    let y32 = i32::try_from(year).map_err(|_| field("year"))?;
    if day < 1 || day > days_in_month(y32, month as i32) as i64 {
        return Err(field("day"));
    }
    if !(0..=24).contains(&hour) || !(0..=59).contains(&minute) || !(0..=60).contains(&second) {
        return Err(field("time"));
    }
    let offset = tzh.map(|h| {
        let m = if h < 0 { -tzm } else { tzm };
        (h * 3600 + m * 60) as i32
    });
    let tm = Tm {
        year: y32,
        month: month as i32,
        day: day as i32,
        hour: hour as i32,
        minute: minute as i32,
        second: second as i32,
        usec: usec as i32,
    };
    // Normalise 24:00:00 and leap seconds through the timestamp arithmetic.
    let ts = tm_to_timestamp(&Tm {
        hour: 0,
        minute: 0,
        second: 0,
        usec: 0,
        ..tm
    })
    .ok_or_else(|| range(format!("date out of range: \"{input}\"")))?;
    let ts = ts
        + tm.hour as i64 * USECS_PER_HOUR
        + tm.minute as i64 * USECS_PER_MINUTE
        + tm.second as i64 * USECS_PER_SEC
        + tm.usec as i64;
    Ok(Parsed {
        tm: timestamp_to_tm(ts),
        offset,
    })
}

/// `to_number(text, template)`: the digits of `input` read through the template's digit
/// positions (`9`, `0`), decimal point (`.`/`D`), group separators (`,`/`G`, skipped), sign
/// (`S`, `MI`, `PL`, a leading `-`) and `PR` angle brackets.
///
/// Errors: 22P02 when no digit is found.
fn to_number(input: &str, fmt: &str) -> Result<Numeric, PgError> {
    let up = fmt.to_ascii_uppercase();
    // The number of integer digit positions before the template's decimal point limits how many
    // integer digits are read, as PostgreSQL's NUM_processor.
    let point = up.find(['.', 'D']);
    let frac_positions = match point {
        Some(p) => up[p + 1..]
            .chars()
            .filter(|c| matches!(c, '9' | '0'))
            .count(),
        None => 0,
    };
    let mut digits = String::new();
    let mut neg = false;
    let mut seen_point = false;
    let mut frac = 0usize;
    for c in input.chars() {
        match c {
            '0'..='9' => {
                if seen_point {
                    if frac < frac_positions {
                        digits.push(c);
                        frac += 1;
                    }
                } else {
                    digits.push(c);
                }
            }
            '.' if point.is_some() && !seen_point => {
                seen_point = true;
                digits.push('.');
            }
            '-' | '<' => neg = true,
            _ => {}
        }
    }
    if digits.trim_matches('.').is_empty() {
        return Err(PgError::new(
            SqlState::InvalidTextRepresentation,
            "invalid input syntax for type numeric: \" \"",
        ));
    }
    let s = format!(
        "{}{}",
        if neg { "-" } else { "" },
        digits.trim_end_matches('.')
    );
    Numeric::parse(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        datetime::parse_timestamp(s, false, &DateTimeSettings::default()).expect("ts")
    }

    #[test]
    fn date_bin_and_make_functions_match_pg15() {
        let st = DateTimeSettings::default();
        let stride = datetime::parse_interval("15 minutes").expect("iv");
        let r = call(
            DtFunc::DateBin,
            &[
                Value::Interval(stride),
                Value::Timestamp(ts("2024-05-07 13:07:09")),
                Value::Timestamp(ts("2024-01-01")),
            ],
            &st,
        )
        .expect("date_bin");
        assert_eq!(r, Value::Timestamp(ts("2024-05-07 13:00:00")));
        let r = call(
            DtFunc::MakeDate,
            &[Value::Int4(2024), Value::Int4(2), Value::Int4(30)],
            &st,
        );
        assert_eq!(r.unwrap_err().code, SqlState::DatetimeFieldOverflow);
        let r = call(
            DtFunc::MakeTime,
            &[Value::Int4(13), Value::Int4(5), Value::Float8(6.5)],
            &st,
        )
        .expect("make_time");
        assert_eq!(
            r,
            Value::Time(13 * USECS_PER_HOUR + 5 * USECS_PER_MINUTE + 6_500_000)
        );
    }

    #[test]
    fn templates_parse_like_pg15() {
        let tm = parse_template("07 May 2024", "DD Mon YYYY").expect("to_date");
        assert_eq!((tm.year, tm.month, tm.day), (2024, 5, 7));
        let e = parse_template("2024-13-45", "YYYY-MM-DD").unwrap_err();
        assert_eq!(e.code, SqlState::DatetimeFieldOverflow);
        let p = parse_template_full("2024-05-07 01:05 PM", "YYYY-MM-DD HH12:MI AM").expect("ts");
        assert_eq!((p.tm.hour, p.tm.minute), (13, 5));
        assert_eq!(
            to_number("1,234.5", "9,999.9").expect("num").to_text(),
            "1234.5"
        );
        assert_eq!(
            to_number("-12.345", "99.99").expect("num").to_text(),
            "-12.34"
        );
    }

    #[test]
    fn overlaps_follows_the_null_rules() {
        let d = |x: i32| Value::Date(x);
        assert_eq!(overlaps(&[d(0), d(31), d(14), d(60)]), Value::Bool(true));
        assert_eq!(overlaps(&[d(0), d(31), d(31), d(60)]), Value::Bool(false));
        assert_eq!(overlaps(&[d(0), Value::Null, d(0), d(5)]), Value::Null);
        assert_eq!(
            overlaps(&[d(10), d(0), d(5), Value::Null]),
            Value::Bool(true)
        );
    }

    #[test]
    fn at_time_zone_names_and_posix_offsets() {
        assert_eq!(zone_for_at("UTC").expect("utc"), Zone::Utc);
        assert_eq!(zone_for_at("+05").expect("posix"), Zone::Fixed(-5 * 3600));
        assert!(matches!(zone_for_at("Asia/Tokyo"), Ok(Zone::Named(_))));
        assert_eq!(
            zone_for_at("Mars/Olympus").unwrap_err().code,
            SqlState::InvalidParameterValue
        );
    }
}
