//! `date`, `time`, `timestamp`, `timestamptz` and `interval`: PostgreSQL 15's input (a practical
//! subset of `DecodeDateTime`/`DecodeInterval`), output (`DateStyle = ISO, MDY`,
//! `IntervalStyle = postgres`) and arithmetic.
//!
//! Internal representations are PostgreSQL's: dates are days since 2000-01-01, times and timestamps
//! microseconds, timestamps `i64::MIN`/`i64::MAX` for ∓infinity. Years are astronomical internally
//! (1 BC = year 0), as PostgreSQL's `pg_tm`.
//!
//! The engine never reads the wall clock: `now`, `today`, `tomorrow` and `yesterday` are rejected
//! with 0A000 until the session supplies the transaction time.

use pgxc_common::{PgError, SqlState};

use super::numeric::Numeric;
use super::Interval;

/// Microseconds per second.
pub const USECS_PER_SEC: i64 = 1_000_000;
/// Microseconds per minute.
pub const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
/// Microseconds per hour.
pub const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
/// Microseconds per day.
pub const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Julian day number of 2000-01-01.
pub const POSTGRES_EPOCH_JDATE: i32 = 2_451_545;
/// Days from 1970-01-01 to 2000-01-01.
pub const UNIX_EPOCH_DAYS: i64 = 10_957;
/// `DATEVAL_NOBEGIN`.
pub const DATE_NEG_INF: i32 = i32::MIN;
/// `DATEVAL_NOEND`.
pub const DATE_POS_INF: i32 = i32::MAX;
/// `DT_NOBEGIN`.
pub const TS_NEG_INF: i64 = i64::MIN;
/// `DT_NOEND`.
pub const TS_POS_INF: i64 = i64::MAX;
/// `MIN_TIMESTAMP` (4714-11-24 00:00:00 BC).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// `END_TIMESTAMP` (294277-01-01 00:00:00).
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// First invalid date (days since 2000-01-01): `DATE_END_JULIAN - POSTGRES_EPOCH_JDATE`.
const DATE_END: i32 = 2_147_483_494 - POSTGRES_EPOCH_JDATE;
/// First valid date: Julian day 0.
const DATE_MIN: i32 = -POSTGRES_EPOCH_JDATE;

/// A session time zone (the `TimeZone` setting).
///
/// Only UTC and fixed offsets are supported for now; a tz-database zone will be another variant whose
/// offsets depend on the instant, which is why every conversion goes through
/// [`TimeZone::offset_at_utc`] / [`TimeZone::offset_at_local`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimeZone {
    /// UTC (also `GMT`, `Z`).
    #[default]
    Utc,
    /// A fixed offset in seconds east of Greenwich (`+02` → 7200).
    Fixed(i32),
}

impl TimeZone {
    /// Parse a `SET TIME ZONE` / `TimeZone` value as PostgreSQL does: `UTC`/`GMT`/`Z`; a plain number
    /// is hours east of UTC (`'+02'`, `'-5.5'`); anything else is POSIX-style, where a positive
    /// offset is *west* of Greenwich (`'-05:30'` is UTC+05:30, `'<+03>-03'` is UTC+3).
    pub fn from_setting(s: &str) -> Result<TimeZone, PgError> {
        let bad = || {
            PgError::new(
                SqlState::InvalidParameterValue,
                format!("invalid value for parameter \"TimeZone\": \"{s}\""),
            )
        };
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "utc" | "gmt" | "z" | "zulu" | "etc/utc" | "etc/gmt" | "uct" | "universal"
        ) {
            return Ok(TimeZone::Utc);
        }
        if let Ok(h) = t.parse::<f64>() {
            if !h.is_finite() || h.abs() >= 24.0 * 7.0 {
                return Err(bad());
            }
            let secs = (h * 3600.0).round() as i32;
            return Ok(TimeZone::from_offset(secs));
        }
        // POSIX: optional abbreviation (letters or <...>), then [+-]hh[:mm[:ss]].
        let rest = if let Some(r) = lower.strip_prefix('<') {
            match r.find('>') {
                Some(i) => &r[i + 1..],
                None => return Err(bad()),
            }
        } else {
            lower.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        };
        if rest.is_empty() {
            // A named zone such as "America/New_York".
            // TODO(types): tz database. Until then only UTC and fixed offsets exist.
            return Err(bad());
        }
        let (neg, body) = match rest.as_bytes()[0] {
            b'-' => (true, &rest[1..]),
            b'+' => (false, &rest[1..]),
            _ => (false, rest),
        };
        let secs = parse_hms_offset(body).ok_or_else(bad)?;
        // POSIX sign: positive is west.
        Ok(TimeZone::from_offset(if neg { secs } else { -secs }))
    }

    /// A zone at a fixed offset (seconds east of UTC); 0 is UTC.
    pub fn from_offset(secs_east: i32) -> TimeZone {
        if secs_east == 0 {
            TimeZone::Utc
        } else {
            TimeZone::Fixed(secs_east)
        }
    }

    /// The UTC offset (seconds east) in effect at a UTC instant (microseconds since 2000-01-01).
    pub fn offset_at_utc(&self, _utc: i64) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(s) => *s,
        }
    }

    /// The UTC offset (seconds east) for a local wall-clock time (microseconds since 2000-01-01).
    pub fn offset_at_local(&self, _local: i64) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(s) => *s,
        }
    }

    /// The setting as `SHOW TimeZone` prints it.
    pub fn name(&self) -> String {
        match self {
            TimeZone::Utc => "UTC".into(),
            TimeZone::Fixed(s) => {
                // Shown in POSIX form, like PostgreSQL shows `SET TIME ZONE '-05:30'`.
                let west = -*s;
                let sign = if west < 0 { "-" } else { "+" };
                let a = west.unsigned_abs();
                let (h, m, sec) = (a / 3600, a / 60 % 60, a % 60);
                if sec != 0 {
                    format!("<{}>{sign}{h:02}:{m:02}:{sec:02}", format_offset(*s))
                } else if m != 0 {
                    format!("<{}>{sign}{h:02}:{m:02}", format_offset(*s))
                } else {
                    format!("<{}>{sign}{h:02}", format_offset(*s))
                }
            }
        }
    }
}

/// `hh[:mm[:ss]]` or `hhmm` → seconds.
fn parse_hms_offset(body: &str) -> Option<i32> {
    let parts: Vec<&str> = body.split(':').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (h, m, s): (i32, i32, i32) = if parts.len() == 1 {
        let p = parts[0];
        match p.len() {
            1 | 2 => (p.parse().ok()?, 0, 0),
            3 | 4 => (
                p[..p.len() - 2].parse().ok()?,
                p[p.len() - 2..].parse().ok()?,
                0,
            ),
            5 | 6 => (
                p[..p.len() - 4].parse().ok()?,
                p[p.len() - 4..p.len() - 2].parse().ok()?,
                p[p.len() - 2..].parse().ok()?,
            ),
            _ => return None,
        }
    } else {
        (
            parts[0].parse().ok()?,
            parts[1].parse().ok()?,
            parts.get(2).map(|s| s.parse().ok()).unwrap_or(Some(0))?,
        )
    };
    if h > 15 * 24 || m > 59 || s > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// `+HH`, `+HH:MM` or `+HH:MM:SS`, as PostgreSQL prints a UTC offset (seconds east).
pub fn format_offset(secs_east: i32) -> String {
    let sign = if secs_east < 0 { '-' } else { '+' };
    let a = secs_east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s != 0 {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    } else if m != 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}")
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (PostgreSQL's date2j / j2date).

/// Julian day number of an astronomical (year, month, day).
pub fn date2j(year: i32, month: i32, day: i32) -> i32 {
    let (mut y, mut m) = (year as i64, month as i64);
    if m > 2 {
        m += 1;
        y += 4800;
    } else {
        m += 13;
        y += 4799;
    }
    let century = y.div_euclid(100);
    let mut julian = y * 365 - 32167;
    julian += y.div_euclid(4) - century + century.div_euclid(4);
    julian += 7834 * m / 256 + day as i64;
    julian as i32
}

/// (year, month, day) of a Julian day number.
pub fn j2date(jd: i32) -> (i32, i32, i32) {
    // Julian days before 0 are outside every PostgreSQL type's range; clamp rather than overflow.
    let mut julian = (jd.max(0) as i64 + 32044) as u64;
    let mut quad = julian / 146097;
    let extra = (julian - quad * 146097) * 4 + 3;
    julian += 60 + quad * 3 + extra / 146097;
    quad = julian / 1461;
    julian -= quad * 1461;
    let mut y = julian * 4 / 1461;
    julian = if y != 0 {
        (julian + 305) % 365
    } else {
        (julian + 306) % 366
    } + 123;
    y += quad * 4;
    let year = y as i64 - 4800;
    let quad = julian * 2141 / 65536;
    let day = julian - 7834 * quad / 256;
    let month = (quad + 10) % 12 + 1;
    (year as i32, month as i32, day as i32)
}

/// Whether `year` (astronomical) is a leap year.
pub fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in a month.
pub fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

fn valid_julian(y: i32, m: i32) -> bool {
    (y > -4713 || (y == -4713 && m >= 11)) && (y < 5_874_898 || (y == 5_874_898 && m < 6))
}

/// Days since 2000-01-01 → (year, month, day).
pub fn date_to_ymd(days: i32) -> (i32, i32, i32) {
    j2date(days.wrapping_add(POSTGRES_EPOCH_JDATE))
}

/// (year, month, day) → days since 2000-01-01 (no range check).
pub fn ymd_to_date(y: i32, m: i32, d: i32) -> i32 {
    date2j(y, m, d) - POSTGRES_EPOCH_JDATE
}

/// A broken-down timestamp, like PostgreSQL's `pg_tm` plus fractional seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tm {
    /// Astronomical year (1 BC = 0).
    pub year: i32,
    /// 1..=12.
    pub month: i32,
    /// 1..=31.
    pub day: i32,
    /// 0..=23.
    pub hour: i32,
    /// 0..=59.
    pub minute: i32,
    /// 0..=60.
    pub second: i32,
    /// Microseconds 0..=999999.
    pub usec: i32,
}

/// Split a timestamp (microseconds since 2000-01-01, finite) into its fields.
pub fn timestamp_to_tm(ts: i64) -> Tm {
    let days = ts.div_euclid(USECS_PER_DAY);
    let t = ts.rem_euclid(USECS_PER_DAY);
    let (year, month, day) = j2date((days + POSTGRES_EPOCH_JDATE as i64) as i32);
    Tm {
        year,
        month,
        day,
        hour: (t / USECS_PER_HOUR) as i32,
        minute: (t / USECS_PER_MINUTE % 60) as i32,
        second: (t / USECS_PER_SEC % 60) as i32,
        usec: (t % USECS_PER_SEC) as i32,
    }
}

/// Combine fields into a timestamp; `None` when out of PostgreSQL's timestamp range.
pub fn tm_to_timestamp(tm: &Tm) -> Option<i64> {
    if !valid_julian(tm.year, tm.month) {
        return None;
    }
    let days = ymd_to_date(tm.year, tm.month, tm.day) as i64;
    let t = tm.hour as i64 * USECS_PER_HOUR
        + tm.minute as i64 * USECS_PER_MINUTE
        + tm.second as i64 * USECS_PER_SEC
        + tm.usec as i64;
    let ts = days.checked_mul(USECS_PER_DAY)?.checked_add(t)?;
    ts_in_range(ts).then_some(ts)
}

fn ts_in_range(ts: i64) -> bool {
    (MIN_TIMESTAMP..END_TIMESTAMP).contains(&ts)
}

fn date_in_range(d: i32) -> bool {
    (DATE_MIN..DATE_END).contains(&d)
}

// ---------------------------------------------------------------------------------------------
// Output.

fn push_year_date(out: &mut String, y: i32, m: i32, d: i32) {
    let (yy, _) = bc_year(y);
    out.push_str(&format!("{yy:04}-{m:02}-{d:02}"));
}

fn bc_year(y: i32) -> (i64, bool) {
    if y <= 0 {
        (1 - y as i64, true)
    } else {
        (y as i64, false)
    }
}

fn push_time(out: &mut String, h: i64, m: i64, s: i64, usec: i64) {
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    push_fraction(out, usec);
}

fn push_fraction(out: &mut String, usec: i64) {
    if usec != 0 {
        let f = format!("{:06}", usec.abs());
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// `date_out` (ISO): `2024-01-31`, `0044-03-15 BC`, `infinity`.
pub fn format_date(d: i32) -> String {
    match d {
        DATE_NEG_INF => "-infinity".into(),
        DATE_POS_INF => "infinity".into(),
        _ => {
            let (y, m, day) = date_to_ymd(d);
            let mut s = String::new();
            push_year_date(&mut s, y, m, day);
            if y <= 0 {
                s.push_str(" BC");
            }
            s
        }
    }
}

/// `time_out`: `12:34:56.789`.
pub fn format_time(t: i64) -> String {
    let mut s = String::new();
    push_time(
        &mut s,
        t / USECS_PER_HOUR,
        t / USECS_PER_MINUTE % 60,
        t / USECS_PER_SEC % 60,
        t % USECS_PER_SEC,
    );
    s
}

/// `timestamp_out` (ISO): `2024-01-31 12:34:56.789`.
pub fn format_timestamp(ts: i64) -> String {
    format_ts(ts, None)
}

/// `timestamptz_out` (ISO) in `tz`: `2024-01-31 12:34:56+00`.
pub fn format_timestamptz(ts: i64, tz: &TimeZone) -> String {
    if ts == TS_NEG_INF || ts == TS_POS_INF {
        return format_ts(ts, None);
    }
    let off = tz.offset_at_utc(ts);
    format_ts(ts.saturating_add(off as i64 * USECS_PER_SEC), Some(off))
}

fn format_ts(ts: i64, off: Option<i32>) -> String {
    match ts {
        TS_NEG_INF => "-infinity".into(),
        TS_POS_INF => "infinity".into(),
        _ => {
            let tm = timestamp_to_tm(ts);
            let mut s = String::new();
            push_year_date(&mut s, tm.year, tm.month, tm.day);
            s.push(' ');
            push_time(
                &mut s,
                tm.hour as i64,
                tm.minute as i64,
                tm.second as i64,
                tm.usec as i64,
            );
            if let Some(o) = off {
                s.push_str(&format_offset(o));
            }
            if tm.year <= 0 {
                s.push_str(" BC");
            }
            s
        }
    }
}

/// `interval_out` with `IntervalStyle = postgres`: `1 year 2 mons 3 days 04:05:06`, `-1 days +02:00:00`.
pub fn format_interval(iv: &Interval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let year = iv.months / 12;
    let mon = iv.months % 12;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        out.push_str(&format!(
            "{}{}{} {}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            value,
            unit,
            if value != 1 { "s" } else { "" }
        ));
        is_before = value < 0;
        is_zero = false;
    };
    part(year as i64, "year", &mut out);
    part(mon as i64, "mon", &mut out);
    part(iv.days as i64, "day", &mut out);
    let t = iv.micros;
    if is_zero || t != 0 {
        let minus = t < 0;
        let a = t.unsigned_abs();
        let h = a / USECS_PER_HOUR as u64;
        let m = a / USECS_PER_MINUTE as u64 % 60;
        let sec = a / USECS_PER_SEC as u64 % 60;
        let us = a % USECS_PER_SEC as u64;
        out.push_str(&format!(
            "{}{}{h:02}:{m:02}:{sec:02}",
            if is_zero { "" } else { " " },
            if minus {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            }
        ));
        push_fraction(&mut out, us as i64);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Input.

fn syntax(ty: &str, s: &str) -> PgError {
    PgError::new(
        SqlState::InvalidDatetimeFormat,
        format!("invalid input syntax for type {ty}: \"{s}\""),
    )
}

fn field_range(s: &str) -> PgError {
    PgError::new(
        SqlState::DatetimeFieldOverflow,
        format!("date/time field value out of range: \"{s}\""),
    )
}

fn no_clock(word: &str) -> PgError {
    PgError::new(
        SqlState::FeatureNotSupported,
        format!("\"{word}\" needs the transaction time, which is not available here"),
    )
}

/// What a date/time string decoded to.
#[derive(Debug, Default)]
struct Decoded {
    year: Option<i32>,
    month: Option<i32>,
    day: Option<i32>,
    time: Option<(i32, i32, i32, i32)>,
    tz: Option<i32>,
    bc: bool,
    ampm: Option<bool>,
    special: Option<Special>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Special {
    PosInf,
    NegInf,
    Epoch,
    Allballs,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_name(w: &str) -> Option<i32> {
    const FULL: [&str; 12] = [
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
    if let Some(i) = FULL.iter().position(|m| *m == w) {
        return Some(i as i32 + 1);
    }
    if w == "sept" {
        return Some(9);
    }
    MONTHS.iter().position(|m| *m == w).map(|i| i as i32 + 1)
}

fn is_weekday(w: &str) -> bool {
    const DAYS: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    DAYS.iter()
        .any(|d| *d == w || (w.len() >= 3 && d.starts_with(w) && w.len() <= 4))
        || matches!(w, "tues" | "wed" | "thur" | "thurs")
}

/// Time zone abbreviations PostgreSQL's default `timezone_abbreviations` knows (a common subset).
fn tz_abbrev(w: &str) -> Option<i32> {
    let h = |x: f64| Some((x * 3600.0) as i32);
    match w {
        "z" | "zulu" | "utc" | "gmt" | "ut" => h(0.0),
        "est" => h(-5.0),
        "edt" => h(-4.0),
        "cst" => h(-6.0),
        "cdt" => h(-5.0),
        "mst" => h(-7.0),
        "mdt" => h(-6.0),
        "pst" => h(-8.0),
        "pdt" => h(-7.0),
        "akst" => h(-9.0),
        "akdt" => h(-8.0),
        "hst" => h(-10.0),
        "cet" | "met" | "bst" | "wat" => h(1.0),
        "cest" | "mest" | "eet" => h(2.0),
        "eest" | "msk" => h(3.0),
        "ist" => h(2.0),
        "jst" | "kst" => h(9.0),
        "aest" => h(10.0),
        "aedt" => h(11.0),
        "nzst" => h(12.0),
        "nzdt" => h(13.0),
        "wet" => h(0.0),
        "west" => h(1.0),
        _ => None,
    }
}

/// Parse `hh:mm[:ss[.frac]]` → (h, m, s, usec); fraction rounded to microseconds.
fn parse_clock(s: &str) -> Option<(i32, i32, i32, i32)> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let num = |p: &str| -> Option<i32> {
        if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            p.parse().ok()
        }
    };
    let h = num(parts[0])?;
    let (m, mfrac) = match parts[1].split_once('.') {
        Some((a, f)) if parts.len() == 2 => (num(a)?, Some(f)),
        _ => (num(parts[1])?, None),
    };
    let (mut sec, mut usec) = (0, 0);
    if let Some(f) = mfrac {
        // "mm:ss.frac" (a fraction on the second field means minutes:seconds).
        let us = parse_frac(f)?;
        return Some((0, h, m + us / 1_000_000, us % 1_000_000));
    }
    if let Some(p) = parts.get(2) {
        match p.split_once('.') {
            Some((a, f)) => {
                sec = if a.is_empty() { 0 } else { num(a)? };
                usec = parse_frac(f)?;
            }
            None => sec = num(p)?,
        }
    }
    if usec >= 1_000_000 {
        sec += 1;
        usec -= 1_000_000;
    }
    Some((h, m, sec, usec))
}

/// `.123456789` digits → microseconds, rounded half to even like `rint`.
fn parse_frac(f: &str) -> Option<i32> {
    if !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if f.is_empty() {
        return Some(0);
    }
    let v: f64 = format!("0.{f}").parse().ok()?;
    Some((v * 1e6).round_ties_even() as i32)
}

fn parse_tz_suffix(s: &str) -> Option<i32> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => return None,
    };
    let secs = parse_hms_offset(body)?;
    Some(if neg { -secs } else { secs })
}

/// Decode a date/time string into fields. `ty` names the type for error messages.
fn decode(s: &str, ty: &str) -> Result<Decoded, PgError> {
    let lower = s.trim().to_ascii_lowercase();
    let mut d = Decoded::default();
    if lower.is_empty() {
        return Err(syntax(ty, s));
    }
    // Split into whitespace/comma separated tokens, splitting an ISO "T" between date and time.
    let mut tokens: Vec<String> = Vec::new();
    for raw in lower.split(|c: char| c.is_ascii_whitespace() || c == ',') {
        if raw.is_empty() {
            continue;
        }
        if let Some(pos) = raw.find('t') {
            let (a, b) = raw.split_at(pos);
            if !a.is_empty()
                && a.bytes()
                    .all(|c| c.is_ascii_digit() || c == b'-' || c == b'/' || c == b'.')
                && b.len() > 1
                && b.as_bytes()[1].is_ascii_digit()
            {
                tokens.push(a.to_string());
                tokens.push(b[1..].to_string());
                continue;
            }
        }
        tokens.push(raw.to_string());
    }
    let mut bare_numbers: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i].clone();
        i += 1;
        let b = tok.as_bytes();
        if b[0].is_ascii_alphabetic() {
            match tok.as_str() {
                "infinity" => d.special = Some(Special::PosInf),
                "epoch" => d.special = Some(Special::Epoch),
                "allballs" => d.special = Some(Special::Allballs),
                "now" | "today" | "tomorrow" | "yesterday" => return Err(no_clock(&tok)),
                "bc" => d.bc = true,
                "ad" => {}
                "am" | "a.m." => d.ampm = Some(false),
                "pm" | "p.m." => d.ampm = Some(true),
                "at" | "on" => {}
                w => {
                    if let Some(m) = month_name(w) {
                        if d.month.is_some() {
                            return Err(syntax(ty, s));
                        }
                        d.month = Some(m);
                    } else if is_weekday(w) {
                    } else if let Some(off) = tz_abbrev(w) {
                        d.tz = Some(off);
                    } else if let Some(off) = w
                        .strip_prefix("utc")
                        .or_else(|| w.strip_prefix("gmt"))
                        .and_then(parse_tz_suffix)
                    {
                        d.tz = Some(off);
                    } else if w.contains('/') || w.len() > 1 {
                        if w.contains('/') {
                            return Err(PgError::new(
                                SqlState::FeatureNotSupported,
                                format!("time zone \"{w}\" is not supported yet (no tz database)"),
                            ));
                        }
                        return Err(syntax(ty, s));
                    } else {
                        return Err(syntax(ty, s));
                    }
                }
            }
            continue;
        }
        if tok == "-infinity" {
            d.special = Some(Special::NegInf);
            continue;
        }
        if tok == "+infinity" {
            d.special = Some(Special::PosInf);
            continue;
        }
        if b[0] == b'+' || b[0] == b'-' {
            // A zone offset following a time.
            let off = parse_tz_suffix(&tok).ok_or_else(|| syntax(ty, s))?;
            d.tz = Some(off);
            continue;
        }
        if !b[0].is_ascii_digit() && b[0] != b'.' {
            return Err(syntax(ty, s));
        }
        if tok.contains(':') {
            // A time, possibly with a zone suffix: 12:00:00+02, 12:00z.
            let (clock, zone) =
                match tok.find(|c: char| c == '+' || c == '-' || c.is_ascii_alphabetic()) {
                    Some(p) => (&tok[..p], Some(&tok[p..])),
                    None => (tok.as_str(), None),
                };
            if d.time.is_some() {
                return Err(syntax(ty, s));
            }
            d.time = Some(parse_clock(clock).ok_or_else(|| syntax(ty, s))?);
            if let Some(z) = zone {
                d.tz = Some(if z.starts_with('+') || z.starts_with('-') {
                    parse_tz_suffix(z).ok_or_else(|| syntax(ty, s))?
                } else {
                    tz_abbrev(z).ok_or_else(|| syntax(ty, s))?
                });
            }
            continue;
        }
        if tok.contains('-') || tok.contains('/') || (tok.matches('.').count() == 2) {
            // A date: y-m-d, m/d/y, y/m/d, d.m.y; y-mon-d.
            let sep = if tok.contains('-') {
                '-'
            } else if tok.contains('/') {
                '/'
            } else {
                '.'
            };
            let parts: Vec<&str> = tok.split(sep).collect();
            // A trailing "-hh" zone after a date is not supported; dates have 3 parts.
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) || d.year.is_some() {
                return Err(syntax(ty, s));
            }
            let num = |p: &str| -> Result<i32, PgError> {
                if p.len() > 9 || !p.bytes().all(|c| c.is_ascii_digit()) {
                    Err(syntax(ty, s))
                } else {
                    p.parse().map_err(|_| syntax(ty, s))
                }
            };
            if let Some(m) = month_name(parts[1]) {
                // 1999-jan-08 or 08-jan-1999
                let a = num(parts[0])?;
                let c = num(parts[2])?;
                d.month = Some(m);
                if parts[0].len() > 2 {
                    d.year = Some(a);
                    d.day = Some(c);
                } else {
                    d.day = Some(a);
                    d.year = Some(c);
                }
                continue;
            }
            let (a, bb, c) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
            if parts[0].len() > 2 || sep == '-' {
                d.year = Some(a);
                d.month = Some(bb);
                d.day = Some(c);
            } else if sep == '.' {
                d.day = Some(a);
                d.month = Some(bb);
                d.year = Some(c);
            } else {
                // DateStyle MDY.
                d.month = Some(a);
                d.day = Some(bb);
                d.year = Some(c);
            }
            if parts[2].len() <= 2 && sep != '-' && parts[0].len() <= 2 {
                // Two-digit years: 70..99 → 19xx, 00..69 → 20xx.
                if let Some(y) = d.year {
                    d.year = Some(if y < 70 { y + 2000 } else { y + 1900 });
                }
            }
            continue;
        }
        if !tok.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            // digits followed by a zone, e.g. "2024-01-01 12z" — not supported.
            return Err(syntax(ty, s));
        }
        bare_numbers.push(tok);
    }
    // Bare numbers: YYYYMMDD / hhmmss concatenations, or day/year around a month name.
    for n in bare_numbers {
        if n.contains('.') {
            return Err(syntax(ty, s));
        }
        if d.year.is_none()
            && d.month.is_none()
            && (n.len() == 8 || n.len() == 6)
            && d.day.is_none()
        {
            let (y, rest) = n.split_at(n.len() - 4);
            let y: i32 = y.parse().map_err(|_| syntax(ty, s))?;
            d.year = Some(if n.len() == 6 {
                if y < 70 {
                    y + 2000
                } else {
                    y + 1900
                }
            } else {
                y
            });
            d.month = Some(rest[..2].parse().map_err(|_| syntax(ty, s))?);
            d.day = Some(rest[2..].parse().map_err(|_| syntax(ty, s))?);
            continue;
        }
        if n.len() > 9 {
            return Err(syntax(ty, s));
        }
        let v: i32 = n.parse().map_err(|_| syntax(ty, s))?;
        if d.month.is_some() && d.day.is_none() && n.len() <= 2 {
            d.day = Some(v);
        } else if d.year.is_none() && (d.day.is_some() || n.len() > 2) {
            d.year = Some(v);
        } else if d.day.is_none() {
            d.day = Some(v);
        } else {
            return Err(syntax(ty, s));
        }
    }
    Ok(d)
}

fn finish_date(d: &Decoded, s: &str, ty: &str) -> Result<Option<(i32, i32, i32)>, PgError> {
    match (d.year, d.month, d.day) {
        (None, None, None) => Ok(None),
        (Some(y), Some(m), Some(day)) => {
            if y == 0 && d.bc {
                return Err(field_range(s));
            }
            let y = if d.bc { 1 - y } else { y };
            if !(1..=12).contains(&m) || day < 1 || day > days_in_month(y, m) {
                return Err(field_range(s));
            }
            Ok(Some((y, m, day)))
        }
        _ => Err(syntax(ty, s)),
    }
}

fn finish_time(d: &Decoded, s: &str) -> Result<i64, PgError> {
    let Some((mut h, m, sec, us)) = d.time else {
        return Ok(0);
    };
    if let Some(pm) = d.ampm {
        if !(1..=12).contains(&h) {
            return Err(field_range(s));
        }
        if h == 12 {
            h = 0;
        }
        if pm {
            h += 12;
        }
    }
    if !(0..=24).contains(&h) || !(0..=59).contains(&m) || !(0..=60).contains(&sec) {
        return Err(field_range(s));
    }
    let t = h as i64 * USECS_PER_HOUR
        + m as i64 * USECS_PER_MINUTE
        + sec as i64 * USECS_PER_SEC
        + us as i64;
    if t > USECS_PER_DAY {
        return Err(field_range(s));
    }
    Ok(t)
}

/// `date_in`.
pub fn parse_date(s: &str) -> Result<i32, PgError> {
    let d = decode(s, "date")?;
    match d.special {
        Some(Special::PosInf) => return Ok(DATE_POS_INF),
        Some(Special::NegInf) => return Ok(DATE_NEG_INF),
        Some(Special::Epoch) => return Ok(-(UNIX_EPOCH_DAYS as i32)),
        Some(Special::Allballs) => return Err(syntax("date", s)),
        None => {}
    }
    let (y, m, day) = finish_date(&d, s, "date")?.ok_or_else(|| syntax("date", s))?;
    finish_time(&d, s)?;
    if !valid_julian(y, m) {
        return Err(date_range(s));
    }
    let days = ymd_to_date(y, m, day);
    if !date_in_range(days) {
        return Err(date_range(s));
    }
    Ok(days)
}

fn date_range(s: &str) -> PgError {
    PgError::new(
        SqlState::DatetimeFieldOverflow,
        format!("date out of range: \"{s}\""),
    )
}

fn ts_range(s: &str) -> PgError {
    PgError::new(
        SqlState::DatetimeFieldOverflow,
        format!("timestamp out of range: \"{s}\""),
    )
}

/// `time_in` (a zone, if given, is ignored as PostgreSQL does).
pub fn parse_time(s: &str) -> Result<i64, PgError> {
    let d = decode(s, "time")?;
    match d.special {
        Some(Special::Allballs) => return Ok(0),
        Some(_) => return Err(syntax("time", s)),
        None => {}
    }
    if d.time.is_none() {
        return Err(syntax("time", s));
    }
    finish_date(&d, s, "time")?;
    finish_time(&d, s)
}

/// `timestamp_in` (`with_tz` = false) or `timestamptz_in` (true, local times read in `tz`).
pub fn parse_timestamp(s: &str, with_tz: bool, tz: &TimeZone) -> Result<i64, PgError> {
    let ty = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let d = decode(s, ty)?;
    match d.special {
        Some(Special::PosInf) => return Ok(TS_POS_INF),
        Some(Special::NegInf) => return Ok(TS_NEG_INF),
        Some(Special::Epoch) => return Ok(-UNIX_EPOCH_DAYS * USECS_PER_DAY),
        Some(Special::Allballs) => return Err(syntax(ty, s)),
        None => {}
    }
    let (y, m, day) = finish_date(&d, s, ty)?.ok_or_else(|| syntax(ty, s))?;
    let t = finish_time(&d, s)?;
    if !valid_julian(y, m) {
        return Err(ts_range(s));
    }
    let local = (ymd_to_date(y, m, day) as i64)
        .checked_mul(USECS_PER_DAY)
        .and_then(|v| v.checked_add(t))
        .ok_or_else(|| ts_range(s))?;
    let ts = if with_tz {
        let off = match d.tz {
            Some(o) => o,
            None => tz.offset_at_local(local),
        };
        local
            .checked_sub(off as i64 * USECS_PER_SEC)
            .ok_or_else(|| ts_range(s))?
    } else {
        local
    };
    if !ts_in_range(ts) {
        return Err(ts_range(s));
    }
    Ok(ts)
}

// ---------------------------------------------------------------------------------------------
// Interval input.

fn iv_range() -> PgError {
    PgError::new(SqlState::DatetimeFieldOverflow, "interval out of range")
}

/// Accumulates interval fields in wide types.
#[derive(Default)]
struct IvAcc {
    months: f64,
    days: f64,
    micros: f64,
}

impl IvAcc {
    /// Add `v` of `unit`, spilling fractions down as PostgreSQL's `AdjustFract*`.
    fn add(&mut self, v: f64, unit: Unit) {
        match unit {
            Unit::Micro => self.micros += v,
            Unit::Milli => self.micros += v * 1e3,
            Unit::Second => self.micros += v * 1e6,
            Unit::Minute => self.micros += v * 6e7,
            Unit::Hour => self.micros += v * 3.6e9,
            Unit::Day => self.add_days(v),
            Unit::Week => self.add_days(v * 7.0),
            Unit::Month => self.add_months(v),
            Unit::Year => self.add_years(v, 1.0),
            Unit::Decade => self.add_years(v, 10.0),
            Unit::Century => self.add_years(v, 100.0),
            Unit::Millennium => self.add_years(v, 1000.0),
        }
    }
    fn add_days(&mut self, v: f64) {
        let whole = v.trunc();
        self.days += whole;
        self.micros += ((v - whole) * USECS_PER_DAY as f64).round();
    }
    fn add_months(&mut self, v: f64) {
        let whole = v.trunc();
        self.months += whole;
        self.add_days((v - whole) * 30.0);
    }
    fn add_years(&mut self, v: f64, mult: f64) {
        let whole = v.trunc();
        self.months += whole * 12.0 * mult;
        self.months += ((v - whole) * 12.0 * mult).round();
    }
    fn finish(self, negate: bool, input: &str) -> Result<Interval, PgError> {
        let sign = if negate { -1.0 } else { 1.0 };
        let m = self.months * sign;
        let d = self.days * sign;
        let us = (self.micros * sign).round();
        if !(i32::MIN as f64..=i32::MAX as f64).contains(&m)
            || !(i32::MIN as f64..=i32::MAX as f64).contains(&d)
            || !(-9.2e18..=9.2e18).contains(&us)
        {
            return Err(PgError::new(
                SqlState::IntervalFieldOverflow,
                format!("interval field value out of range: \"{input}\""),
            ));
        }
        Ok(Interval {
            months: m as i32,
            days: d as i32,
            micros: us as i64,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Unit {
    Micro,
    Milli,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Decade,
    Century,
    Millennium,
}

fn unit_name(w: &str) -> Option<Unit> {
    Some(match w {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" | "usecond" => {
            Unit::Micro
        }
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" | "msecond" => {
            Unit::Milli
        }
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Second,
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Minute,
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Hour,
        "day" | "days" | "d" => Unit::Day,
        "week" | "weeks" | "w" => Unit::Week,
        "month" | "months" | "mon" | "mons" => Unit::Month,
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Year,
        "decade" | "decades" | "dec" | "decs" => Unit::Decade,
        "century" | "centuries" | "c" | "cent" => Unit::Century,
        "millennium" | "millennia" | "mil" | "mils" | "millenniums" => Unit::Millennium,
        _ => return None,
    })
}

/// `interval_in` (IntervalStyle postgres input, SQL `y-m`, `d hh:mm:ss`, ISO 8601 `P1Y2M3DT4H`).
pub fn parse_interval(s: &str) -> Result<Interval, PgError> {
    let bad = || syntax("interval", s);
    let lower = s.trim().to_ascii_lowercase();
    if lower.starts_with('p') {
        return parse_iso_interval(lower.strip_prefix('p').unwrap_or_default(), s)
            .ok_or_else(bad)?;
    }
    let mut acc = IvAcc::default();
    let mut negate = false;
    // Tokenise into numbers (with sign), units and clock/date forms.
    let mut tokens: Vec<String> = Vec::new();
    {
        let mut cur = String::new();
        let flush = |cur: &mut String, tokens: &mut Vec<String>| {
            if !cur.is_empty() {
                tokens.push(std::mem::take(cur));
            }
        };
        let chars: Vec<char> = lower.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_whitespace() || c == ',' {
                flush(&mut cur, &mut tokens);
            } else if c.is_ascii_alphabetic() {
                if !cur.is_empty() && !cur.chars().all(|x| x.is_ascii_alphabetic()) {
                    flush(&mut cur, &mut tokens);
                }
                cur.push(c);
            } else if c == '@' {
                flush(&mut cur, &mut tokens);
            } else {
                if !cur.is_empty() && cur.chars().all(|x| x.is_ascii_alphabetic()) {
                    flush(&mut cur, &mut tokens);
                }
                if (c == '+' || c == '-') && !cur.is_empty() && !cur.ends_with('e') {
                    // "1-2" year-month stays together; "+" after digits starts a new token.
                    if c == '+' || cur.contains(':') || cur.contains('-') {
                        flush(&mut cur, &mut tokens);
                    }
                }
                cur.push(c);
            }
            i += 1;
        }
        flush(&mut cur, &mut tokens);
    }
    if tokens.is_empty() {
        return Err(bad());
    }
    let mut i = 0;
    let mut any = false;
    let mut last_unit: Option<Unit> = None;
    while i < tokens.len() {
        let tok = &tokens[i];
        i += 1;
        if tok.chars().all(|c| c.is_ascii_alphabetic()) {
            if tok == "ago" {
                negate = true;
                continue;
            }
            return Err(bad());
        }
        let (neg, body) = match tok.as_bytes()[0] {
            b'-' => (true, &tok[1..]),
            b'+' => (false, &tok[1..]),
            _ => (false, tok.as_str()),
        };
        let sign = if neg { -1.0 } else { 1.0 };
        if body.contains(':') {
            let (h, m, sec, us) = parse_clock(body).ok_or_else(bad)?;
            if m > 59 || sec > 59 {
                return Err(PgError::new(
                    SqlState::IntervalFieldOverflow,
                    format!("interval field value out of range: \"{s}\""),
                ));
            }
            let t = h as f64 * 3.6e9 + m as f64 * 6e7 + sec as f64 * 1e6 + us as f64;
            acc.micros += sign * t;
            any = true;
            continue;
        }
        if let Some((y, m)) = body.split_once('-') {
            // SQL year-month literal "1-2".
            let y: f64 = y.parse().map_err(|_| bad())?;
            let m: f64 = m.parse().map_err(|_| bad())?;
            if !y.is_finite() || !m.is_finite() || m >= 12.0 {
                return Err(bad());
            }
            acc.months += sign * (y * 12.0 + m);
            any = true;
            continue;
        }
        if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return Err(bad());
        }
        let v: f64 = body.parse().map_err(|_| bad())?;
        let v = sign * v;
        // A following unit word?
        let unit = match tokens.get(i) {
            Some(w) if w.chars().all(|c| c.is_ascii_alphabetic()) && w != "ago" => {
                i += 1;
                unit_name(w).ok_or_else(bad)?
            }
            _ => {
                // A bare number: days if followed by a clock, else seconds (or the unit after
                // the last one, as PostgreSQL's "1 day 2" ... is rare); PostgreSQL treats it as
                // seconds unless a time field follows.
                if tokens.get(i).is_some_and(|t| t.contains(':')) {
                    Unit::Day
                } else {
                    let _ = last_unit;
                    Unit::Second
                }
            }
        };
        last_unit = Some(unit);
        acc.add(v, unit);
        any = true;
    }
    if !any {
        return Err(bad());
    }
    acc.finish(negate, s)
}

fn parse_iso_interval(s: &str, input: &str) -> Option<Result<Interval, PgError>> {
    let mut acc = IvAcc::default();
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        match c {
            't' if num.is_empty() && !in_time => in_time = true,
            '0'..='9' | '.' | '-' | '+' => num.push(c),
            _ => {
                if num.is_empty() {
                    return None;
                }
                let v: f64 = num.parse().ok()?;
                num.clear();
                let unit = match (c, in_time) {
                    ('y', false) => Unit::Year,
                    ('m', false) => Unit::Month,
                    ('w', false) => Unit::Week,
                    ('d', false) => Unit::Day,
                    ('h', true) => Unit::Hour,
                    ('m', true) => Unit::Minute,
                    ('s', true) => Unit::Second,
                    _ => return None,
                };
                acc.add(v, unit);
                any = true;
            }
        }
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(acc.finish(false, input))
}

// ---------------------------------------------------------------------------------------------
// Arithmetic.

fn date_overflow() -> PgError {
    PgError::new(SqlState::DatetimeFieldOverflow, "date out of range")
}

fn ts_overflow() -> PgError {
    PgError::new(SqlState::DatetimeFieldOverflow, "timestamp out of range")
}

fn is_date_inf(d: i32) -> bool {
    d == DATE_NEG_INF || d == DATE_POS_INF
}

fn is_ts_inf(t: i64) -> bool {
    t == TS_NEG_INF || t == TS_POS_INF
}

/// `date + integer` (and `date - integer` with a negated argument).
pub fn date_add_days(d: i32, n: i32) -> Result<i32, PgError> {
    if is_date_inf(d) {
        return Ok(d);
    }
    let r = d.checked_add(n).ok_or_else(date_overflow)?;
    if !date_in_range(r) {
        return Err(date_overflow());
    }
    Ok(r)
}

/// `date - date` → integer days.
pub fn date_diff(a: i32, b: i32) -> Result<i32, PgError> {
    if is_date_inf(a) || is_date_inf(b) {
        return Err(PgError::new(
            SqlState::DatetimeFieldOverflow,
            "cannot subtract infinite dates",
        ));
    }
    Ok(a - b)
}

/// `date::timestamp` (also the local time for `date::timestamptz`).
pub fn date_to_timestamp(d: i32) -> Result<i64, PgError> {
    match d {
        DATE_NEG_INF => Ok(TS_NEG_INF),
        DATE_POS_INF => Ok(TS_POS_INF),
        _ => {
            let ts = (d as i64).saturating_mul(USECS_PER_DAY);
            if !ts_in_range(ts) {
                return Err(PgError::new(
                    SqlState::DatetimeFieldOverflow,
                    "date out of range for timestamp",
                ));
            }
            Ok(ts)
        }
    }
}

/// `date::timestamptz` in `tz`.
pub fn date_to_timestamptz(d: i32, tz: &TimeZone) -> Result<i64, PgError> {
    let local = date_to_timestamp(d)?;
    local_to_utc(local, tz)
}

/// `timestamp::date`.
pub fn timestamp_to_date(ts: i64) -> i32 {
    match ts {
        TS_NEG_INF => DATE_NEG_INF,
        TS_POS_INF => DATE_POS_INF,
        _ => ts.div_euclid(USECS_PER_DAY) as i32,
    }
}

/// `timestamp::timestamptz`: a local time in `tz` to UTC.
pub fn local_to_utc(local: i64, tz: &TimeZone) -> Result<i64, PgError> {
    if is_ts_inf(local) {
        return Ok(local);
    }
    shift_in_range(local, -(tz.offset_at_local(local) as i64) * USECS_PER_SEC)
}

/// `timestamptz::timestamp`: a UTC instant to local time in `tz`.
pub fn utc_to_local(utc: i64, tz: &TimeZone) -> Result<i64, PgError> {
    if is_ts_inf(utc) {
        return Ok(utc);
    }
    shift_in_range(utc, tz.offset_at_utc(utc) as i64 * USECS_PER_SEC)
}

/// `ts + delta` microseconds, or 22008 if that leaves the timestamp range.
fn shift_in_range(ts: i64, delta: i64) -> Result<i64, PgError> {
    let r = ts.checked_add(delta).ok_or_else(ts_overflow)?;
    if !ts_in_range(r) {
        return Err(ts_overflow());
    }
    Ok(r)
}

/// `timestamp + interval`: months first (clamping the day to the month's end), then days, then time.
pub fn timestamp_add_interval(ts: i64, iv: &Interval) -> Result<i64, PgError> {
    if is_ts_inf(ts) {
        return Ok(ts);
    }
    let mut ts = ts;
    if iv.months != 0 {
        let mut tm = timestamp_to_tm(ts);
        let total = tm.year as i64 * 12 + (tm.month as i64 - 1) + iv.months as i64;
        tm.year = total.div_euclid(12) as i32;
        tm.month = total.rem_euclid(12) as i32 + 1;
        tm.day = tm.day.min(days_in_month(tm.year, tm.month));
        ts = tm_to_timestamp(&tm).ok_or_else(ts_overflow)?;
    }
    if iv.days != 0 {
        ts = ts
            .checked_add(iv.days as i64 * USECS_PER_DAY)
            .ok_or_else(ts_overflow)?;
    }
    ts = ts.checked_add(iv.micros).ok_or_else(ts_overflow)?;
    if !ts_in_range(ts) {
        return Err(ts_overflow());
    }
    Ok(ts)
}

/// `timestamptz + interval`: months and days are applied in local time in `tz`.
pub fn timestamptz_add_interval(ts: i64, iv: &Interval, tz: &TimeZone) -> Result<i64, PgError> {
    if is_ts_inf(ts) {
        return Ok(ts);
    }
    let mut ts = ts;
    if iv.months != 0 || iv.days != 0 {
        let local = utc_to_local(ts, tz)?;
        let shifted = timestamp_add_interval(
            local,
            &Interval {
                months: iv.months,
                days: iv.days,
                micros: 0,
            },
        )?;
        ts = local_to_utc(shifted, tz)?;
    }
    ts = ts.checked_add(iv.micros).ok_or_else(ts_overflow)?;
    if !ts_in_range(ts) {
        return Err(ts_overflow());
    }
    Ok(ts)
}

/// Negate an interval (22008 `interval out of range` on overflow).
pub fn interval_neg(iv: &Interval) -> Result<Interval, PgError> {
    Ok(Interval {
        months: iv.months.checked_neg().ok_or_else(iv_range)?,
        days: iv.days.checked_neg().ok_or_else(iv_range)?,
        micros: iv.micros.checked_neg().ok_or_else(iv_range)?,
    })
}

/// `interval + interval`.
pub fn interval_add(a: &Interval, b: &Interval) -> Result<Interval, PgError> {
    Ok(Interval {
        months: a.months.checked_add(b.months).ok_or_else(iv_range)?,
        days: a.days.checked_add(b.days).ok_or_else(iv_range)?,
        micros: a.micros.checked_add(b.micros).ok_or_else(iv_range)?,
    })
}

/// `interval - interval`.
pub fn interval_sub(a: &Interval, b: &Interval) -> Result<Interval, PgError> {
    interval_add(a, &interval_neg(b)?)
}

fn tsround(x: f64) -> f64 {
    (x * 1e6).round_ties_even() / 1e6
}

/// `interval * float8` (PostgreSQL 15's `interval_mul`, cascading fractions down).
pub fn interval_mul(iv: &Interval, factor: f64) -> Result<Interval, PgError> {
    if factor.is_nan() {
        return Err(iv_range());
    }
    let m = iv.months as f64 * factor;
    if !(i32::MIN as f64..=i32::MAX as f64).contains(&m) {
        return Err(iv_range());
    }
    let rmonth = m as i32;
    let dd = iv.days as f64 * factor;
    if !(i32::MIN as f64..=i32::MAX as f64).contains(&dd) {
        return Err(iv_range());
    }
    let mut rday = dd as i32;
    let month_remainder_days = tsround((m - rmonth as f64) * 30.0);
    let mut sec_remainder =
        tsround((dd - rday as f64 + month_remainder_days - month_remainder_days.trunc()) * 86400.0);
    if sec_remainder.abs() >= 86400.0 {
        let extra = (sec_remainder / 86400.0).trunc();
        rday = rday.checked_add(extra as i32).ok_or_else(iv_range)?;
        sec_remainder -= extra * 86400.0;
    }
    rday = rday
        .checked_add(month_remainder_days.trunc() as i32)
        .ok_or_else(iv_range)?;
    let t = (iv.micros as f64 * factor + sec_remainder * 1e6).round_ties_even();
    if !(-9.2e18..=9.2e18).contains(&t) {
        return Err(iv_range());
    }
    Ok(Interval {
        months: rmonth,
        days: rday,
        micros: t as i64,
    })
}

/// `interval / float8`.
pub fn interval_div(iv: &Interval, factor: f64) -> Result<Interval, PgError> {
    if factor == 0.0 {
        return Err(PgError::new(SqlState::DivisionByZero, "division by zero"));
    }
    interval_mul(iv, 1.0 / factor)
}

/// `justify_hours`: whole days out of the time part, signs made consistent.
pub fn justify_hours(iv: &Interval) -> Result<Interval, PgError> {
    let mut r = *iv;
    let wholeday = r.micros / USECS_PER_DAY;
    r.micros -= wholeday * USECS_PER_DAY;
    r.days = r.days.checked_add(wholeday as i32).ok_or_else(iv_range)?;
    if r.days > 0 && r.micros < 0 {
        r.micros += USECS_PER_DAY;
        r.days -= 1;
    } else if r.days < 0 && r.micros > 0 {
        r.micros -= USECS_PER_DAY;
        r.days += 1;
    }
    Ok(r)
}

/// `justify_days`: whole 30-day months out of the day part.
pub fn justify_days(iv: &Interval) -> Result<Interval, PgError> {
    let mut r = *iv;
    let wholemonth = r.days / 30;
    r.days -= wholemonth * 30;
    r.months = r.months.checked_add(wholemonth).ok_or_else(iv_range)?;
    if r.months > 0 && r.days < 0 {
        r.days += 30;
        r.months -= 1;
    } else if r.months < 0 && r.days > 0 {
        r.days -= 30;
        r.months += 1;
    }
    Ok(r)
}

/// `justify_interval`.
pub fn justify_interval(iv: &Interval) -> Result<Interval, PgError> {
    let mut r = *iv;
    let wholemonth = r.days / 30;
    r.days -= wholemonth * 30;
    r.months = r.months.checked_add(wholemonth).ok_or_else(iv_range)?;
    if r.months > 0 && (r.days < 0 || (r.days == 0 && r.micros < 0)) {
        r.days += 30;
        r.months -= 1;
    } else if r.months < 0 && (r.days > 0 || (r.days == 0 && r.micros > 0)) {
        r.days -= 30;
        r.months += 1;
    }
    let wholeday = r.micros / USECS_PER_DAY;
    r.micros -= wholeday * USECS_PER_DAY;
    r.days = r.days.checked_add(wholeday as i32).ok_or_else(iv_range)?;
    if r.days > 0 && r.micros < 0 {
        r.micros += USECS_PER_DAY;
        r.days -= 1;
    } else if r.days < 0 && r.micros > 0 {
        r.micros -= USECS_PER_DAY;
        r.days += 1;
    }
    Ok(r)
}

/// `timestamp - timestamp` → interval (`justify_hours` of the difference).
pub fn timestamp_diff(a: i64, b: i64) -> Result<Interval, PgError> {
    if is_ts_inf(a) || is_ts_inf(b) {
        return Err(PgError::new(
            SqlState::DatetimeFieldOverflow,
            "cannot subtract infinite timestamps",
        ));
    }
    let d = a.checked_sub(b).ok_or_else(iv_range)?;
    justify_hours(&Interval {
        months: 0,
        days: 0,
        micros: d,
    })
}

/// `age(a, b)` for local timestamps: field-by-field difference, borrowing as PostgreSQL does.
pub fn age(a: i64, b: i64) -> Result<Interval, PgError> {
    if is_ts_inf(a) || is_ts_inf(b) {
        return Err(PgError::new(
            SqlState::DatetimeFieldOverflow,
            "cannot subtract infinite timestamps",
        ));
    }
    let t1 = timestamp_to_tm(a);
    let t2 = timestamp_to_tm(b);
    let mut fsec = t1.usec as i64 - t2.usec as i64;
    let mut sec = t1.second as i64 - t2.second as i64;
    let mut min = t1.minute as i64 - t2.minute as i64;
    let mut hour = t1.hour as i64 - t2.hour as i64;
    let mut mday = t1.day as i64 - t2.day as i64;
    let mut mon = t1.month as i64 - t2.month as i64;
    let mut year = t1.year as i64 - t2.year as i64;
    let neg = a < b;
    if neg {
        fsec = -fsec;
        sec = -sec;
        min = -min;
        hour = -hour;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    while fsec < 0 {
        fsec += USECS_PER_SEC;
        sec -= 1;
    }
    while sec < 0 {
        sec += 60;
        min -= 1;
    }
    while min < 0 {
        min += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        mday -= 1;
    }
    while mday < 0 {
        // Borrow from the month before the later date's month.
        let (y, m) = if neg {
            (t1.year, t1.month)
        } else {
            (t2.year, t2.month)
        };
        mday += days_in_month(y, m) as i64;
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    if neg {
        fsec = -fsec;
        sec = -sec;
        min = -min;
        hour = -hour;
        mday = -mday;
        mon = -mon;
        year = -year;
    }
    let months = year * 12 + mon;
    let micros = ((hour * 60 + min) * 60 + sec) * USECS_PER_SEC + fsec;
    if months.abs() > i32::MAX as i64 || mday.abs() > i32::MAX as i64 {
        return Err(iv_range());
    }
    Ok(Interval {
        months: months as i32,
        days: mday as i32,
        micros,
    })
}

/// `time + interval` (wrapping around midnight).
pub fn time_add_interval(t: i64, iv: &Interval) -> i64 {
    (t + iv.micros.rem_euclid(USECS_PER_DAY)).rem_euclid(USECS_PER_DAY)
}

/// `time - time` → interval.
pub fn time_diff(a: i64, b: i64) -> Interval {
    Interval {
        months: 0,
        days: 0,
        micros: a - b,
    }
}

/// The interval's length in microseconds with months as 30 days and days as 24 hours (used for
/// comparison, as PostgreSQL's `interval_cmp_value`).
pub fn interval_cmp_value(iv: &Interval) -> i128 {
    let days = iv.months as i128 * 30 + iv.days as i128;
    days * USECS_PER_DAY as i128 + iv.micros as i128
}

// ---------------------------------------------------------------------------------------------
// extract / date_part / date_trunc.

fn unit_err(unit: &str, ty: &str) -> PgError {
    PgError::new(
        SqlState::FeatureNotSupported,
        format!("unit \"{unit}\" not supported for type {ty}"),
    )
}

fn unit_unknown(unit: &str, ty: &str) -> PgError {
    PgError::new(
        SqlState::InvalidParameterValue,
        format!("unit \"{unit}\" not recognized for type {ty}"),
    )
}

fn canonical_field(f: &str) -> String {
    let f = f.trim().to_ascii_lowercase();
    let c = match f.as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => "microseconds",
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => "milliseconds",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "day" | "days" | "d" => "day",
        "week" | "weeks" | "w" => "week",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        "decade" | "decades" | "dec" | "decs" => "decade",
        "century" | "centuries" | "c" | "cent" => "century",
        "millennium" | "millennia" | "mil" | "mils" | "millenniums" => "millennium",
        other => return other.to_string(),
    };
    c.to_string()
}

fn num_scaled(v: i64, scale: i64) -> Numeric {
    Numeric::Finite(bigdecimal::BigDecimal::new(v.into(), scale))
}

/// ISO 8601 week-numbering year and week of a date.
fn iso_week(y: i32, m: i32, d: i32) -> (i32, i32) {
    let jd = date2j(y, m, d);
    // ISO day of week: Monday = 1.
    let isodow = |j: i32| (j + 1).rem_euclid(7);
    let week1_start = |year: i32| {
        let j4 = date2j(year, 1, 4);
        let dow = isodow(j4); // 0 = Sunday
        let dow = if dow == 0 { 7 } else { dow };
        j4 - (dow - 1)
    };
    let mut year = y;
    let mut start = week1_start(year);
    if jd < start {
        year -= 1;
        start = week1_start(year);
    } else {
        let next = week1_start(year + 1);
        if jd >= next {
            year += 1;
            start = next;
        }
    }
    (year, (jd - start) / 7 + 1)
}

/// `extract(field from timestamp)` (`tz` = Some(offset) for timestamptz, giving the local fields
/// and the timezone fields). Returns numeric as PostgreSQL 14+ does.
pub fn extract_timestamp(
    field: &str,
    ts: i64,
    tz: Option<&TimeZone>,
) -> Result<Option<Numeric>, PgError> {
    let ty = if tz.is_some() {
        "timestamp with time zone"
    } else {
        "timestamp without time zone"
    };
    let f = canonical_field(field);
    if is_ts_inf(ts) {
        let sign = if ts == TS_POS_INF { 1 } else { -1 };
        return match f.as_str() {
            "epoch" | "julian" | "year" | "isoyear" | "decade" | "century" | "millennium" => {
                Ok(Some(if sign > 0 {
                    Numeric::PosInf
                } else {
                    Numeric::NegInf
                }))
            }
            "microseconds" | "milliseconds" | "second" | "minute" | "hour" | "day" | "month"
            | "quarter" | "week" | "dow" | "isodow" | "doy" | "timezone" | "timezone_hour"
            | "timezone_minute" => Ok(None),
            _ => Err(unit_unknown(field, ty)),
        };
    }
    let (local, off) = match tz {
        Some(z) => {
            let off = z.offset_at_utc(ts);
            (ts + off as i64 * USECS_PER_SEC, off)
        }
        None => (ts, 0),
    };
    let tm = timestamp_to_tm(local);
    let sec_us = tm.second as i64 * USECS_PER_SEC + tm.usec as i64;
    let int = |v: i64| Ok(Numeric::from_i64(v));
    let r: Result<Numeric, PgError> = match f.as_str() {
        "microseconds" => int(sec_us),
        "milliseconds" => Ok(num_scaled(sec_us, 3)),
        "second" => Ok(num_scaled(sec_us, 6)),
        "minute" => int(tm.minute as i64),
        "hour" => int(tm.hour as i64),
        "day" => int(tm.day as i64),
        "month" => int(tm.month as i64),
        "quarter" => int((tm.month as i64 - 1) / 3 + 1),
        "week" => int(iso_week(tm.year, tm.month, tm.day).1 as i64),
        "year" => int(if tm.year > 0 {
            tm.year as i64
        } else {
            tm.year as i64 - 1
        }),
        "isoyear" => {
            let y = iso_week(tm.year, tm.month, tm.day).0 as i64;
            int(if y > 0 { y } else { y - 1 })
        }
        "decade" => {
            let y = tm.year as i64;
            int(if y >= 0 {
                y / 10
            } else {
                -((8 - (y - 1)) / 10)
            })
        }
        "century" => {
            let y = tm.year as i64;
            int(if y > 0 {
                (y + 99) / 100
            } else {
                -((99 - (y - 1)) / 100)
            })
        }
        "millennium" => {
            let y = tm.year as i64;
            int(if y > 0 {
                (y + 999) / 1000
            } else {
                -((999 - (y - 1)) / 1000)
            })
        }
        "dow" => int((date2j(tm.year, tm.month, tm.day) as i64 + 1).rem_euclid(7)),
        "isodow" => {
            let d = (date2j(tm.year, tm.month, tm.day) as i64 + 1).rem_euclid(7);
            int(if d == 0 { 7 } else { d })
        }
        "doy" => int((date2j(tm.year, tm.month, tm.day) - date2j(tm.year, 1, 1) + 1) as i64),
        "julian" => {
            let jd = date2j(tm.year, tm.month, tm.day) as i64;
            let t = local.rem_euclid(USECS_PER_DAY);
            // julian + microseconds / 86400000000, with numeric division's scale, as PostgreSQL.
            Numeric::from_i64(t)
                .div(&Numeric::from_i64(USECS_PER_DAY))
                .and_then(|frac| Numeric::from_i64(jd).add(&frac))
        }
        "epoch" => {
            let v = ts as i128 + UNIX_EPOCH_DAYS as i128 * USECS_PER_DAY as i128;
            Ok(Numeric::Finite(bigdecimal::BigDecimal::new(
                bigdecimal::num_bigint::BigInt::from(v),
                6,
            )))
        }
        "timezone" if tz.is_some() => int(off as i64),
        "timezone_hour" if tz.is_some() => int(off as i64 / 3600),
        "timezone_minute" if tz.is_some() => int(off as i64 / 60 % 60),
        "timezone" | "timezone_hour" | "timezone_minute" => Err(unit_err(field, ty)),
        _ => Err(unit_unknown(field, ty)),
    };
    r.map(Some)
}

/// `extract(field from date)`: integer-valued fields; time fields are 0A000 as in PostgreSQL.
/// `None` is SQL NULL (e.g. `extract(day from 'infinity'::date)`).
pub fn extract_date(field: &str, d: i32) -> Result<Option<Numeric>, PgError> {
    let f = canonical_field(field);
    match f.as_str() {
        "microseconds" | "milliseconds" | "second" | "minute" | "hour" | "timezone"
        | "timezone_hour" | "timezone_minute" => Err(unit_err(field, "date")),
        "epoch" => {
            if is_date_inf(d) {
                return Ok(Some(if d > 0 {
                    Numeric::PosInf
                } else {
                    Numeric::NegInf
                }));
            }
            Ok(Some(Numeric::from_i64(
                (d as i64 + UNIX_EPOCH_DAYS) * 86400,
            )))
        }
        _ => {
            let ts = date_to_timestamp(d)?;
            let n = extract_timestamp(field, ts, None).map_err(|e| {
                if e.code == SqlState::InvalidParameterValue {
                    unit_unknown(field, "date")
                } else {
                    e
                }
            })?;
            Ok(n.map(|n| n.trunc(0)))
        }
    }
}

/// `extract(field from interval)`.
pub fn extract_interval(field: &str, iv: &Interval) -> Result<Numeric, PgError> {
    let f = canonical_field(field);
    let int = |v: i64| Ok(Numeric::from_i64(v));
    let year = iv.months as i64 / 12;
    let sec_us = iv.micros % USECS_PER_MINUTE;
    match f.as_str() {
        "microseconds" => int(sec_us),
        "milliseconds" => Ok(num_scaled(sec_us, 3)),
        "second" => Ok(num_scaled(sec_us, 6)),
        "minute" => int(iv.micros / USECS_PER_MINUTE % 60),
        "hour" => int(iv.micros / USECS_PER_HOUR),
        "day" => int(iv.days as i64),
        "month" => int(iv.months as i64 % 12),
        "quarter" => int((iv.months as i64 % 12) / 3 + 1),
        "year" => int(year),
        "decade" => int(year / 10),
        "century" => int(year / 100),
        "millennium" => int(year / 1000),
        "epoch" => {
            // months as 365.25/12 days, days as 86400 s.
            let secs = (year as i128) * 31_557_600
                + (iv.months as i128 % 12) * 2_592_000
                + iv.days as i128 * 86_400;
            let us = secs * 1_000_000 + iv.micros as i128;
            Ok(Numeric::Finite(bigdecimal::BigDecimal::new(
                bigdecimal::num_bigint::BigInt::from(us),
                6,
            )))
        }
        "week" | "dow" | "isodow" | "doy" | "isoyear" | "julian" | "timezone" | "timezone_hour"
        | "timezone_minute" => Err(unit_err(field, "interval")),
        _ => Err(unit_unknown(field, "interval")),
    }
}

/// `extract(field from time)`.
pub fn extract_time(field: &str, t: i64) -> Result<Numeric, PgError> {
    let f = canonical_field(field);
    let sec_us = t % USECS_PER_MINUTE;
    match f.as_str() {
        "microseconds" => Ok(Numeric::from_i64(sec_us)),
        "milliseconds" => Ok(num_scaled(sec_us, 3)),
        "second" => Ok(num_scaled(sec_us, 6)),
        "minute" => Ok(Numeric::from_i64(t / USECS_PER_MINUTE % 60)),
        "hour" => Ok(Numeric::from_i64(t / USECS_PER_HOUR)),
        "epoch" => Ok(num_scaled(t, 6)),
        "day" | "month" | "year" | "quarter" | "decade" | "century" | "millennium" | "week"
        | "dow" | "isodow" | "doy" | "isoyear" | "julian" | "timezone" | "timezone_hour"
        | "timezone_minute" => Err(unit_err(field, "time without time zone")),
        _ => Err(unit_unknown(field, "time without time zone")),
    }
}

/// `date_trunc(field, timestamp)` on a local timestamp.
pub fn date_trunc(field: &str, ts: i64) -> Result<i64, PgError> {
    if is_ts_inf(ts) {
        return Ok(ts);
    }
    let f = canonical_field(field);
    let mut tm = timestamp_to_tm(ts);
    match f.as_str() {
        "millennium" => {
            tm.year = if tm.year > 0 {
                ((tm.year + 999) / 1000) * 1000 - 999
            } else {
                -((999 - (tm.year - 1)) / 1000 * 1000) + 1
            };
            tm.month = 1;
            tm.day = 1;
            tm.hour = 0;
            tm.minute = 0;
            tm.second = 0;
            tm.usec = 0;
        }
        "century" => {
            tm.year = if tm.year > 0 {
                ((tm.year + 99) / 100) * 100 - 99
            } else {
                -((99 - (tm.year - 1)) / 100 * 100) + 1
            };
            tm.month = 1;
            tm.day = 1;
            tm.hour = 0;
            tm.minute = 0;
            tm.second = 0;
            tm.usec = 0;
        }
        "decade" => {
            tm.year = if tm.year > 0 {
                (tm.year / 10) * 10
            } else {
                -((8 - (tm.year - 1)) / 10 * 10)
            };
            tm.month = 1;
            tm.day = 1;
            tm.hour = 0;
            tm.minute = 0;
            tm.second = 0;
            tm.usec = 0;
        }
        "year" | "quarter" | "month" | "week" | "day" | "hour" | "minute" | "second"
        | "milliseconds" | "microseconds" => {
            match f.as_str() {
                "year" => {
                    tm.month = 1;
                    tm.day = 1;
                }
                "quarter" => {
                    tm.month = 3 * ((tm.month - 1) / 3) + 1;
                    tm.day = 1;
                }
                "month" => tm.day = 1,
                "week" => {
                    let (iy, wk) = iso_week(tm.year, tm.month, tm.day);
                    let j4 = date2j(iy, 1, 4);
                    let dow = (j4 + 1).rem_euclid(7);
                    let dow = if dow == 0 { 7 } else { dow };
                    let start = j4 - (dow - 1) + (wk - 1) * 7;
                    let (y, m, d) = j2date(start);
                    tm.year = y;
                    tm.month = m;
                    tm.day = d;
                }
                _ => {}
            }
            let level = match f.as_str() {
                "year" | "quarter" | "month" | "week" | "day" => 0,
                "hour" => 1,
                "minute" => 2,
                "second" => 3,
                "milliseconds" => 4,
                _ => 5,
            };
            if level < 1 {
                tm.hour = 0;
            }
            if level < 2 {
                tm.minute = 0;
            }
            if level < 3 {
                tm.second = 0;
            }
            if level < 4 {
                tm.usec = 0;
            } else if level == 4 {
                tm.usec = tm.usec / 1000 * 1000;
            }
        }
        _ => return Err(unit_unknown(field, "timestamp without time zone")),
    }
    tm_to_timestamp(&tm).ok_or_else(ts_overflow)
}

/// `date_trunc(field, timestamptz)` in the session zone.
pub fn date_trunc_tz(field: &str, ts: i64, tz: &TimeZone) -> Result<i64, PgError> {
    if is_ts_inf(ts) {
        return Ok(ts);
    }
    let local = utc_to_local(ts, tz)?;
    let t = date_trunc(field, local).map_err(|e| {
        if e.code == SqlState::InvalidParameterValue {
            unit_unknown(field, "timestamp with time zone")
        } else {
            e
        }
    })?;
    local_to_utc(t, tz)
}

/// `date_trunc(field, interval)`.
pub fn date_trunc_interval(field: &str, iv: &Interval) -> Result<Interval, PgError> {
    let f = canonical_field(field);
    let mut r = *iv;
    let keep_time = |us: i64, unit: i64| us / unit * unit;
    match f.as_str() {
        "millennium" => {
            r.months = r.months / 12000 * 12000;
            r.days = 0;
            r.micros = 0;
        }
        "century" => {
            r.months = r.months / 1200 * 1200;
            r.days = 0;
            r.micros = 0;
        }
        "decade" => {
            r.months = r.months / 120 * 120;
            r.days = 0;
            r.micros = 0;
        }
        "year" => {
            r.months = r.months / 12 * 12;
            r.days = 0;
            r.micros = 0;
        }
        "quarter" => {
            r.months = r.months / 3 * 3;
            r.days = 0;
            r.micros = 0;
        }
        "month" => {
            r.days = 0;
            r.micros = 0;
        }
        "day" => r.micros = 0,
        "hour" => r.micros = keep_time(r.micros, USECS_PER_HOUR),
        "minute" => r.micros = keep_time(r.micros, USECS_PER_MINUTE),
        "second" => r.micros = keep_time(r.micros, USECS_PER_SEC),
        "milliseconds" => r.micros = keep_time(r.micros, 1000),
        "microseconds" => {}
        "week" => {
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                format!("unit \"{field}\" not supported for type interval"),
            ))
        }
        _ => return Err(unit_unknown(field, "interval")),
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_time_zones_match_pg15() {
        // SET timezone = '+02': a plain number is hours east.
        let tz = TimeZone::from_setting("+02").expect("tz");
        let ts = parse_timestamp("2024-01-01 00:00:00+00", true, &tz).expect("ts");
        assert_eq!(format_timestamptz(ts, &tz), "2024-01-01 02:00:00+02");
        let ts = parse_timestamp("2024-01-01 00:00:00+05:30", true, &tz).expect("ts");
        assert_eq!(format_timestamptz(ts, &tz), "2023-12-31 20:30:00+02");
        // SET timezone = '-05:30': POSIX sign, i.e. UTC+05:30.
        let tz = TimeZone::from_setting("-05:30").expect("tz");
        let ts = parse_timestamp("2024-01-01 00:00:00", true, &tz).expect("ts");
        assert_eq!(format_timestamptz(ts, &tz), "2024-01-01 00:00:00+05:30");
        assert_eq!(TimeZone::from_setting("UTC").expect("tz"), TimeZone::Utc);
        assert!(TimeZone::from_setting("Mars/Olympus").is_err());
    }

    #[test]
    fn clock_words_are_rejected_without_a_clock() {
        let e = parse_timestamp("now", false, &TimeZone::Utc).unwrap_err();
        assert_eq!(e.code, SqlState::FeatureNotSupported);
    }
}
