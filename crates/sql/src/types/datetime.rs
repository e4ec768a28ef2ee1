//! `date`, `time`, `timestamp`, `timestamptz` and `interval`: PostgreSQL 15's input (a practical
//! subset of `DecodeDateTime`/`DecodeInterval`), output (`DateStyle = ISO, MDY`,
//! `IntervalStyle = postgres`) and arithmetic.
//!
//! Internal representations are PostgreSQL's: dates are days since 2000-01-01, times and timestamps
//! microseconds, timestamps `i64::MIN`/`i64::MAX` for ∓infinity. Years are astronomical internally
//! (1 BC = year 0), as PostgreSQL's `pg_tm`.
//!
//! The engine never reads the wall clock: `now`, `today`, `tomorrow` and `yesterday` read the
//! transaction start time the session puts in [`DateTimeSettings::now`], and are rejected with 0A000
//! where there is none. Named time zones come from the tz database compiled into `chrono-tz`.

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

/// A time zone: the zone part of the `TimeZone` setting, of a timestamptz input or of `AT TIME ZONE`.
///
/// Named zones come from the IANA tz database compiled into the `chrono-tz` crate, never from the
/// host (`/etc/localtime`, `TZ`), so results are the same on every machine. Every conversion goes
/// through [`Zone::offset_at_utc`] / [`Zone::offset_at_local`], which follow PostgreSQL's rules for
/// the local times a daylight-saving transition skips or repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Zone {
    /// UTC (also `GMT`, `Z`).
    #[default]
    Utc,
    /// A fixed offset in seconds east of Greenwich (`+02` → 7200).
    Fixed(i32),
    /// A tz-database zone such as `Europe/Paris`.
    Named(chrono_tz::Tz),
}

/// `DateStyle`'s output format part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DateFormat {
    /// `ISO`: `2024-05-07 13:05:00+02`.
    #[default]
    Iso,
    /// `SQL`: `05/07/2024 13:05:00 CEST` (MDY) or `07/05/2024 ...` (DMY).
    Sql,
    /// `Postgres`: `Tue May 07 13:05:00 2024 CEST`.
    Postgres,
    /// `German`: `07.05.2024 13:05:00 CEST`.
    German,
}

/// `DateStyle`'s field order part: how ambiguous input such as `01/02/03` is read and the order
/// of the SQL/Postgres output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DateOrder {
    /// Month, day, year (PostgreSQL's default).
    #[default]
    Mdy,
    /// Day, month, year (`European`).
    Dmy,
    /// Year, month, day.
    Ymd,
}

/// `IntervalStyle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IntervalStyle {
    /// `postgres`: `1 day 02:00:00`.
    #[default]
    Postgres,
    /// `postgres_verbose`: `@ 1 day 2 hours`.
    PostgresVerbose,
    /// `sql_standard`: `1 2:00:00`.
    SqlStandard,
    /// `iso_8601`: `P1DT2H`.
    Iso8601,
}

/// The session settings that text input and output of values depend on: `TimeZone`, `DateStyle`,
/// `IntervalStyle`, `extra_float_digits`, and the transaction start time that the special inputs
/// `now`, `today`, `tomorrow` and `yesterday` read (PostgreSQL's `GetCurrentTransactionStartTimestamp`).
///
/// The default is a fresh PostgreSQL 15 session as the conformance suite runs it: UTC, `ISO, MDY`,
/// `postgres`, `extra_float_digits = 1`, and no transaction time (those inputs then fail with
/// 0A000; the engine never reads the wall clock here).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DateTimeSettings {
    /// The session zone.
    pub zone: Zone,
    /// `DateStyle` output format.
    pub date_format: DateFormat,
    /// `DateStyle` field order.
    pub date_order: DateOrder,
    /// `IntervalStyle`.
    pub interval_style: IntervalStyle,
    /// `extra_float_digits` (-15..=3): > 0 prints floats with the shortest round-trip digits,
    /// otherwise with `DBL_DIG`/`FLT_DIG` + this many significant digits.
    pub extra_float_digits: i32,
    /// The transaction start time (microseconds since 2000-01-01 UTC), when known.
    pub now: Option<i64>,
}

impl Default for DateTimeSettings {
    fn default() -> Self {
        DateTimeSettings {
            zone: Zone::Utc,
            date_format: DateFormat::Iso,
            date_order: DateOrder::Mdy,
            interval_style: IntervalStyle::Postgres,
            extra_float_digits: 1,
            now: None,
        }
    }
}

/// The name the rest of the engine uses for the value it passes as `tz` to text I/O, casts and
/// evaluation: the session's [`DateTimeSettings`], of which the time zone is one part.
pub type TimeZone = DateTimeSettings;

impl DateTimeSettings {
    /// Default settings in UTC.
    pub fn utc() -> DateTimeSettings {
        DateTimeSettings::default()
    }

    /// Default settings in a fixed zone (seconds east of UTC; 0 is UTC).
    pub fn fixed(secs_east: i32) -> DateTimeSettings {
        DateTimeSettings {
            zone: Zone::from_offset(secs_east),
            ..DateTimeSettings::default()
        }
    }

    /// Default settings in `zone`.
    pub fn in_zone(zone: Zone) -> DateTimeSettings {
        DateTimeSettings {
            zone,
            ..DateTimeSettings::default()
        }
    }

    /// Parse a `TimeZone` setting into default settings in that zone (see [`Zone::from_setting`]).
    pub fn from_setting(s: &str) -> Result<DateTimeSettings, PgError> {
        Ok(DateTimeSettings::in_zone(Zone::from_setting(s)?))
    }

    /// The same settings with the transaction start time `now` (microseconds since 2000-01-01 UTC).
    pub fn with_now(mut self, now: i64) -> DateTimeSettings {
        self.now = Some(now);
        self
    }

    /// The UTC offset (seconds east) of the session zone at a UTC instant.
    pub fn offset_at_utc(&self, utc: i64) -> i32 {
        self.zone.offset_at_utc(utc)
    }

    /// The UTC offset (seconds east) of the session zone for a local wall-clock time.
    pub fn offset_at_local(&self, local: i64) -> i32 {
        self.zone.offset_at_local(local)
    }

    /// The session zone as `SHOW TimeZone` prints it.
    pub fn name(&self) -> String {
        self.zone.name()
    }
}

/// Parse a `DateStyle` value (`'ISO, MDY'`, `'SQL, DMY'`, `'German'`, `'European'`, ...) on top of
/// the current format and order, as PostgreSQL's `check_datestyle`: `German` alone also sets DMY.
///
/// Errors: 22023 `invalid value for parameter "DateStyle"` for an unknown word or two conflicting
/// formats/orders.
pub fn parse_date_style(
    s: &str,
    current: (DateFormat, DateOrder),
) -> Result<(DateFormat, DateOrder), PgError> {
    let bad = || {
        PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"DateStyle\": \"{s}\""),
        )
    };
    let (mut fmt, mut order) = current;
    let (mut have_fmt, mut have_order) = (false, false);
    for tok in s.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        let tok = tok.trim_matches('"').to_ascii_lowercase();
        let (f, o) = match tok.as_str() {
            "iso" => (Some(DateFormat::Iso), None),
            "sql" => (Some(DateFormat::Sql), None),
            "postgres" => (Some(DateFormat::Postgres), None),
            "german" => (Some(DateFormat::German), None),
            "ymd" => (None, Some(DateOrder::Ymd)),
            "dmy" | "euro" | "european" => (None, Some(DateOrder::Dmy)),
            "mdy" | "us" | "noneuro" | "noneuropean" => (None, Some(DateOrder::Mdy)),
            "default" => (Some(DateFormat::Iso), Some(DateOrder::Mdy)),
            _ => return Err(bad()),
        };
        if let Some(f) = f {
            if have_fmt && f != fmt {
                return Err(bad());
            }
            fmt = f;
            have_fmt = true;
            if f == DateFormat::German && !have_order {
                order = DateOrder::Dmy;
            }
        }
        if let Some(o) = o {
            if have_order && o != order {
                return Err(bad());
            }
            order = o;
            have_order = true;
        }
    }
    Ok((fmt, order))
}

/// `DateStyle` as `SHOW DateStyle` prints it: `ISO, MDY`, `German, DMY`.
pub fn date_style_name(fmt: DateFormat, order: DateOrder) -> String {
    let f = match fmt {
        DateFormat::Iso => "ISO",
        DateFormat::Sql => "SQL",
        DateFormat::Postgres => "Postgres",
        DateFormat::German => "German",
    };
    let o = match order {
        DateOrder::Mdy => "MDY",
        DateOrder::Dmy => "DMY",
        DateOrder::Ymd => "YMD",
    };
    format!("{f}, {o}")
}

/// Parse an `IntervalStyle` value. Errors: 22023 for anything but PostgreSQL's four styles.
pub fn parse_interval_style(s: &str) -> Result<IntervalStyle, PgError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "postgres" => Ok(IntervalStyle::Postgres),
        "postgres_verbose" => Ok(IntervalStyle::PostgresVerbose),
        "sql_standard" => Ok(IntervalStyle::SqlStandard),
        "iso_8601" => Ok(IntervalStyle::Iso8601),
        _ => Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"IntervalStyle\": \"{s}\""),
        )),
    }
}

/// The name of an `IntervalStyle`, as `SHOW IntervalStyle` prints it.
pub fn interval_style_name(st: IntervalStyle) -> &'static str {
    match st {
        IntervalStyle::Postgres => "postgres",
        IntervalStyle::PostgresVerbose => "postgres_verbose",
        IntervalStyle::SqlStandard => "sql_standard",
        IntervalStyle::Iso8601 => "iso_8601",
    }
}

/// Seconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_UNIX_SECS: i64 = UNIX_EPOCH_DAYS * 86_400;

/// The last year whose transitions the compiled tz database lists; later instants follow that
/// year's rules, as PostgreSQL extends a zone with its POSIX rule string.
const TZ_LAST_LISTED_YEAR: i32 = 2037;

/// Unix seconds at which to ask the tz database for the offset in effect at `utc` (microseconds
/// since 2000-01-01): `utc` itself, or for instants after [`TZ_LAST_LISTED_YEAR`] the same day of
/// the latest listed year with the same calendar (weekday of January 1 and leap year), so that
/// rules like "second Sunday of March" fall on the same dates.
fn tz_probe_secs(utc: i64) -> i64 {
    let days = utc.div_euclid(USECS_PER_DAY);
    let (year, _, _) =
        j2date((days + POSTGRES_EPOCH_JDATE as i64).clamp(0, i32::MAX as i64) as i32);
    let mut shifted = utc;
    if year > TZ_LAST_LISTED_YEAR {
        let jan1 = |y: i32| date2j(y, 1, 1) as i64;
        let kind = |y: i32| ((jan1(y) + 1).rem_euclid(7), is_leap(y));
        let want = kind(year);
        if let Some(y2) = (TZ_LAST_LISTED_YEAR - 27..=TZ_LAST_LISTED_YEAR)
            .rev()
            .find(|y| kind(*y) == want)
        {
            shifted = utc - (jan1(year) - jan1(y2)) * USECS_PER_DAY;
        }
    }
    (shifted.div_euclid(USECS_PER_SEC) + PG_EPOCH_UNIX_SECS)
        .clamp(-8_210_266_876_800, 8_210_266_876_799)
}

/// A tz-database zone by name, case-insensitively (`america/new_york`), or `None`.
pub fn named_zone(name: &str) -> Option<chrono_tz::Tz> {
    chrono_tz::Tz::from_str_insensitive(name.trim()).ok()
}

impl Zone {
    /// Parse a `SET TIME ZONE` / `TimeZone` value as PostgreSQL does: `UTC`/`GMT`/`Z`; a plain number
    /// is hours east of UTC (`'+02'`, `'-5.5'`); a tz-database name (`Europe/Paris`, any case);
    /// anything else is POSIX-style, where a positive offset is *west* of Greenwich (`'-05:30'` is
    /// UTC+05:30, `'<+03>-03'` is UTC+3).
    ///
    /// Errors: 22023 `invalid value for parameter "TimeZone"`.
    pub fn from_setting(s: &str) -> Result<Zone, PgError> {
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
            return Ok(Zone::Utc);
        }
        if let Ok(h) = t.parse::<f64>() {
            if !h.is_finite() || h.abs() >= 24.0 * 7.0 {
                return Err(bad());
            }
            let secs = (h * 3600.0).round() as i32;
            return Ok(Zone::from_offset(secs));
        }
        if let Some(z) = named_zone(t) {
            return Ok(Zone::Named(z));
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
            return Err(bad());
        }
        let (neg, body) = match rest.as_bytes()[0] {
            b'-' => (true, &rest[1..]),
            b'+' => (false, &rest[1..]),
            _ => (false, rest),
        };
        let secs = parse_hms_offset(body).ok_or_else(bad)?;
        // POSIX sign: positive is west.
        Ok(Zone::from_offset(if neg { secs } else { -secs }))
    }

    /// A zone at a fixed offset (seconds east of UTC); 0 is UTC.
    pub fn from_offset(secs_east: i32) -> Zone {
        if secs_east == 0 {
            Zone::Utc
        } else {
            Zone::Fixed(secs_east)
        }
    }

    /// The UTC offset (seconds east) in effect at a UTC instant (microseconds since 2000-01-01).
    pub fn offset_at_utc(&self, utc: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(s) => *s,
            Zone::Named(tz) => {
                use chrono::{Offset, TimeZone as _};
                // chrono covers years ±262143; beyond that the edge offset applies.
                let secs = tz_probe_secs(utc);
                match chrono::DateTime::from_timestamp(secs, 0) {
                    Some(dt) => tz
                        .offset_from_utc_datetime(&dt.naive_utc())
                        .fix()
                        .local_minus_utc(),
                    None => 0,
                }
            }
        }
    }

    /// The UTC offset (seconds east) for a local wall-clock time (microseconds since 2000-01-01),
    /// as PostgreSQL's `DetermineTimeZoneOffset`: a local time skipped by a spring-forward
    /// transition is read with the offset before it (02:30 → 03:30 daylight time), a repeated one
    /// with the offset after it (standard time).
    pub fn offset_at_local(&self, local: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(s) => *s,
            Zone::Named(_) => {
                let before = self.offset_at_utc(local.saturating_sub(USECS_PER_DAY));
                let after = self.offset_at_utc(local.saturating_add(USECS_PER_DAY));
                let utc_with = |off: i32| local.saturating_sub(off as i64 * USECS_PER_SEC);
                if before == after {
                    let off = self.offset_at_utc(utc_with(before));
                    if off == before {
                        return before;
                    }
                    // A transition and its reversal within two days: take the one that fits.
                    return off;
                }
                let before_ok = self.offset_at_utc(utc_with(before)) == before;
                let after_ok = self.offset_at_utc(utc_with(after)) == after;
                match (before_ok, after_ok) {
                    (true, false) => before,
                    (false, true) => after,
                    // Skipped or repeated: prefer the reading with the later UTC instant
                    // (PostgreSQL's "beforetime > aftertime" rule).
                    _ => {
                        if utc_with(before) > utc_with(after) {
                            before
                        } else {
                            after
                        }
                    }
                }
            }
        }
    }

    /// The zone abbreviation in effect at a UTC instant (`CEST`, `EST`, `UTC`), for the SQL,
    /// Postgres and German DateStyles; a fixed offset prints as its ISO form (`+02`).
    pub fn abbreviation_at_utc(&self, utc: i64) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Fixed(s) => format_offset(*s),
            Zone::Named(tz) => {
                use chrono::TimeZone as _;
                use chrono_tz::OffsetName as _;
                let secs = tz_probe_secs(utc);
                match chrono::DateTime::from_timestamp(secs, 0) {
                    Some(dt) => {
                        let off = tz.offset_from_utc_datetime(&dt.naive_utc());
                        match off.abbreviation() {
                            Some(a) => a.to_string(),
                            None => format_offset(self.offset_at_utc(utc)),
                        }
                    }
                    None => format_offset(self.offset_at_utc(utc)),
                }
            }
        }
    }

    /// The setting as `SHOW TimeZone` prints it.
    pub fn name(&self) -> String {
        match self {
            Zone::Utc => "UTC".into(),
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(s) => {
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
    format_date_styled(d, &DateTimeSettings::default())
}

/// `date_out` in the session's `DateStyle`: `2024-05-07` (ISO), `05/07/2024` (SQL, MDY),
/// `07/05/2024` (SQL, DMY), `07.05.2024` (German), `05-07-2024` (Postgres, MDY).
pub fn format_date_styled(d: i32, st: &DateTimeSettings) -> String {
    match d {
        DATE_NEG_INF => "-infinity".into(),
        DATE_POS_INF => "infinity".into(),
        _ => {
            let (y, m, day) = date_to_ymd(d);
            let mut s = String::new();
            push_styled_date(&mut s, y, m, day, st);
            if y <= 0 {
                s.push_str(" BC");
            }
            s
        }
    }
}

/// The date part of `EncodeDateOnly` / the SQL and German forms of `EncodeDateTime`.
fn push_styled_date(out: &mut String, y: i32, m: i32, d: i32, st: &DateTimeSettings) {
    let (yy, _) = bc_year(y);
    let dmy = st.date_order == DateOrder::Dmy;
    match st.date_format {
        DateFormat::Iso => push_year_date(out, y, m, d),
        DateFormat::Sql => {
            if dmy {
                out.push_str(&format!("{d:02}/{m:02}/{yy:04}"));
            } else {
                out.push_str(&format!("{m:02}/{d:02}/{yy:04}"));
            }
        }
        DateFormat::German => out.push_str(&format!("{d:02}.{m:02}.{yy:04}")),
        DateFormat::Postgres => {
            if dmy {
                out.push_str(&format!("{d:02}-{m:02}-{yy:04}"));
            } else {
                out.push_str(&format!("{m:02}-{d:02}-{yy:04}"));
            }
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

/// `timetz_out`: `12:00:00+02`, `12:00:00-07:30`.
pub fn format_timetz(t: i64, secs_east: i32) -> String {
    let mut s = format_time(t);
    s.push_str(&format_offset(secs_east));
    s
}

/// `timestamp_out` (ISO): `2024-01-31 12:34:56.789`.
pub fn format_timestamp(ts: i64) -> String {
    format_ts(ts, None, &DateTimeSettings::default())
}

/// `timestamp_out` in the session's `DateStyle`.
pub fn format_timestamp_styled(ts: i64, st: &DateTimeSettings) -> String {
    format_ts(ts, None, st)
}

/// `timestamptz_out` in the session zone and `DateStyle`: `2024-01-31 12:34:56+00` (ISO),
/// `01/31/2024 12:34:56 UTC` (SQL).
pub fn format_timestamptz(ts: i64, tz: &DateTimeSettings) -> String {
    if ts == TS_NEG_INF || ts == TS_POS_INF {
        return format_ts(ts, None, tz);
    }
    let off = tz.offset_at_utc(ts);
    let zone = if tz.date_format == DateFormat::Iso {
        None
    } else {
        Some(tz.zone.abbreviation_at_utc(ts))
    };
    format_ts(
        ts.saturating_add(off as i64 * USECS_PER_SEC),
        Some((off, zone)),
        tz,
    )
}

const DAY_ABBREVS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTH_ABBREVS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `EncodeDateTime`: `off` is the zone offset and, for the non-ISO styles, its abbreviation.
fn format_ts(ts: i64, off: Option<(i32, Option<String>)>, st: &DateTimeSettings) -> String {
    match ts {
        TS_NEG_INF => "-infinity".into(),
        TS_POS_INF => "infinity".into(),
        _ => {
            let tm = timestamp_to_tm(ts);
            let mut s = String::new();
            let clock = |s: &mut String| {
                push_time(
                    s,
                    tm.hour as i64,
                    tm.minute as i64,
                    tm.second as i64,
                    tm.usec as i64,
                )
            };
            if st.date_format == DateFormat::Postgres {
                let dow = (date2j(tm.year, tm.month, tm.day) + 1).rem_euclid(7) as usize;
                s.push_str(DAY_ABBREVS[dow]);
                s.push(' ');
                let mon = MONTH_ABBREVS[(tm.month - 1).clamp(0, 11) as usize];
                if st.date_order == DateOrder::Dmy {
                    s.push_str(&format!("{:02} {mon} ", tm.day));
                } else {
                    s.push_str(&format!("{mon} {:02} ", tm.day));
                }
                clock(&mut s);
                s.push_str(&format!(" {:04}", bc_year(tm.year).0));
            } else {
                push_styled_date(&mut s, tm.year, tm.month, tm.day, st);
                s.push(' ');
                clock(&mut s);
            }
            match off {
                Some((o, None)) => s.push_str(&format_offset(o)),
                Some((_, Some(abbrev))) => {
                    s.push(' ');
                    s.push_str(&abbrev);
                }
                None => {}
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
    format_interval_styled(iv, IntervalStyle::Postgres)
}

/// Seconds and fraction as `AppendSeconds`: `05`, `5.25` (`fill` pads whole seconds to 2 digits).
fn push_seconds(out: &mut String, sec: i64, usec: i64, fill: bool) {
    if fill {
        out.push_str(&format!("{:02}", sec.abs()));
    } else {
        out.push_str(&sec.abs().to_string());
    }
    push_fraction(out, usec);
}

/// `interval_out` in any `IntervalStyle` (PostgreSQL's `EncodeInterval`).
pub fn format_interval_styled(iv: &Interval, style: IntervalStyle) -> String {
    let year = (iv.months / 12) as i64;
    let mon = (iv.months % 12) as i64;
    let mday = iv.days as i64;
    let t = iv.micros;
    let hour = t / USECS_PER_HOUR;
    let min = t / USECS_PER_MINUTE % 60;
    let sec = t / USECS_PER_SEC % 60;
    let fsec = t % USECS_PER_SEC;
    match style {
        IntervalStyle::Postgres => format_interval_postgres(iv),
        IntervalStyle::SqlStandard => {
            let has_negative =
                year < 0 || mon < 0 || mday < 0 || hour < 0 || min < 0 || sec < 0 || fsec < 0;
            let has_positive =
                year > 0 || mon > 0 || mday > 0 || hour > 0 || min > 0 || sec > 0 || fsec > 0;
            let has_year_month = year != 0 || mon != 0;
            let has_day_time = mday != 0 || hour != 0 || min != 0 || sec != 0 || fsec != 0;
            let mixed = (has_negative && has_positive) || (has_year_month && has_day_time);
            let standard = !mixed;
            let mut out = String::new();
            let (mut year, mut mon, mut mday, mut hour, mut min) = (year, mon, mday, hour, min);
            if has_negative && standard {
                out.push('-');
                year = -year;
                mon = -mon;
                mday = -mday;
                hour = -hour;
                min = -min;
            }
            if !has_negative && !has_positive {
                out.push('0');
            } else if !standard {
                let ys = if year < 0 || mon < 0 { '-' } else { '+' };
                let ds = if mday < 0 { '-' } else { '+' };
                let ss = if hour < 0 || min < 0 || sec < 0 || fsec < 0 {
                    '-'
                } else {
                    '+'
                };
                out.push_str(&format!(
                    "{ys}{}-{} {ds}{} {ss}{}:{:02}:",
                    year.abs(),
                    mon.abs(),
                    mday.abs(),
                    hour.abs(),
                    min.abs()
                ));
                push_seconds(&mut out, sec, fsec.abs(), true);
            } else if has_year_month {
                out.push_str(&format!("{year}-{mon}"));
            } else if mday != 0 {
                out.push_str(&format!("{mday} {hour}:{:02}:", min.abs()));
                push_seconds(&mut out, sec, fsec.abs(), true);
            } else {
                out.push_str(&format!("{hour}:{:02}:", min.abs()));
                push_seconds(&mut out, sec, fsec.abs(), true);
            }
            out
        }
        IntervalStyle::Iso8601 => {
            if year == 0 && mon == 0 && mday == 0 && t == 0 {
                return "PT0S".into();
            }
            let mut out = String::from("P");
            let part = |v: i64, u: char, out: &mut String| {
                if v != 0 {
                    out.push_str(&format!("{v}{u}"));
                }
            };
            part(year, 'Y', &mut out);
            part(mon, 'M', &mut out);
            part(mday, 'D', &mut out);
            if t != 0 {
                out.push('T');
            }
            part(hour, 'H', &mut out);
            part(min, 'M', &mut out);
            if sec != 0 || fsec != 0 {
                if sec < 0 || fsec < 0 {
                    out.push('-');
                }
                push_seconds(&mut out, sec, fsec.abs(), false);
                out.push('S');
            }
            out
        }
        IntervalStyle::PostgresVerbose => {
            let mut out = String::from("@");
            let mut is_zero = true;
            let mut is_before = false;
            let mut part = |v: i64, unit: &str, out: &mut String| {
                if v == 0 {
                    return;
                }
                let mut v = v;
                if is_zero {
                    is_before = v < 0;
                    v = v.abs();
                } else if is_before {
                    v = -v;
                }
                out.push_str(&format!(" {v} {unit}{}", if v == 1 { "" } else { "s" }));
                is_zero = false;
            };
            part(year, "year", &mut out);
            part(mon, "mon", &mut out);
            part(mday, "day", &mut out);
            part(hour, "hour", &mut out);
            part(min, "min", &mut out);
            if sec != 0 || fsec != 0 {
                out.push(' ');
                if sec < 0 || (sec == 0 && fsec < 0) {
                    if is_zero {
                        is_before = true;
                    } else if !is_before {
                        out.push('-');
                    }
                } else if is_before {
                    out.push('-');
                }
                push_seconds(&mut out, sec, fsec.abs(), false);
                out.push_str(if sec.abs() != 1 || fsec != 0 {
                    " secs"
                } else {
                    " sec"
                });
                is_zero = false;
            }
            if is_zero {
                out.push_str(" 0");
            }
            if is_before {
                out.push_str(" ago");
            }
            out
        }
    }
}

/// `EncodeInterval` for `IntervalStyle = postgres`.
fn format_interval_postgres(iv: &Interval) -> String {
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
    /// A tz-database zone named in the input (`2024-06-01 12:00 Europe/Berlin`).
    named: Option<chrono_tz::Tz>,
    bc: bool,
    ampm: Option<bool>,
    special: Option<Special>,
    /// The date came from `today`/`tomorrow`/`yesterday` (already astronomical, no BC).
    relative_date: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Special {
    PosInf,
    NegInf,
    Epoch,
    Allballs,
    /// `now`: the transaction start time.
    Now,
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

/// The UTC offset (seconds east) of a time zone abbreviation (lower case) that PostgreSQL's default
/// `timezone_abbreviations` knows (`est` → -18000), for a common subset.
pub fn tz_abbrev_offset(w: &str) -> Option<i32> {
    tz_abbrev(w)
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

/// Decode a date/time string into fields. `ty` names the type for error messages; `st` gives the
/// field order of ambiguous dates and the transaction time for `now`/`today`/... .
fn decode(s: &str, ty: &str, st: &DateTimeSettings) -> Result<Decoded, PgError> {
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
                "now" => {
                    st.now.ok_or_else(|| no_clock(&tok))?;
                    d.special = Some(Special::Now);
                }
                "today" | "tomorrow" | "yesterday" => {
                    let now = st.now.ok_or_else(|| no_clock(&tok))?;
                    if d.year.is_some() || d.month.is_some() || d.day.is_some() {
                        return Err(syntax(ty, s));
                    }
                    let local = now.saturating_add(st.offset_at_utc(now) as i64 * USECS_PER_SEC);
                    let shift = match tok.as_str() {
                        "tomorrow" => 1,
                        "yesterday" => -1,
                        _ => 0,
                    };
                    let (y, m, dd) = date_to_ymd(timestamp_to_date(local).saturating_add(shift));
                    d.year = Some(y);
                    d.month = Some(m);
                    d.day = Some(dd);
                    d.relative_date = true;
                }
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
                    } else if let Some(z) = named_zone(w) {
                        d.named = Some(z);
                    } else if let Some(off) = w
                        .strip_prefix("utc")
                        .or_else(|| w.strip_prefix("gmt"))
                        .and_then(parse_tz_suffix)
                    {
                        d.tz = Some(off);
                    } else if w.contains('/') {
                        return Err(PgError::new(
                            SqlState::InvalidParameterValue,
                            format!("time zone \"{w}\" not recognized"),
                        ));
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
            if parts[0].len() > 2
                || (sep == '-' && parts[2].len() <= 2)
                || (st.date_order == DateOrder::Ymd && sep != '.')
            {
                d.year = Some(a);
                d.month = Some(bb);
                d.day = Some(c);
            } else if sep == '.' || st.date_order == DateOrder::Dmy {
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
        (Some(y), Some(m), Some(day)) if d.relative_date => Ok(Some((y, m, day))),
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

/// `date_in` with the default settings (`ISO, MDY`, no transaction time).
pub fn parse_date(s: &str) -> Result<i32, PgError> {
    parse_date_in(s, &DateTimeSettings::default())
}

/// `date_in` with the session's `DateStyle` field order and transaction time (for `now`,
/// `today`, `tomorrow`, `yesterday`, read in the session zone).
pub fn parse_date_in(s: &str, st: &DateTimeSettings) -> Result<i32, PgError> {
    let d = decode(s, "date", st)?;
    match d.special {
        Some(Special::PosInf) => return Ok(DATE_POS_INF),
        Some(Special::NegInf) => return Ok(DATE_NEG_INF),
        Some(Special::Epoch) => return Ok(-(UNIX_EPOCH_DAYS as i32)),
        Some(Special::Allballs) => return Err(syntax("date", s)),
        Some(Special::Now) => {
            let now = st.now.ok_or_else(|| no_clock("now"))?;
            return Ok(timestamp_to_date(utc_to_local(now, st)?));
        }
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
    parse_time_in(s, &DateTimeSettings::default())
}

/// `time_in` with the session's settings (`now` is the local time of the transaction start).
pub fn parse_time_in(s: &str, st: &DateTimeSettings) -> Result<i64, PgError> {
    let d = decode(s, "time", st)?;
    match d.special {
        Some(Special::Allballs) => return Ok(0),
        Some(Special::Now) => {
            let now = st.now.ok_or_else(|| no_clock("now"))?;
            return Ok(utc_to_local(now, st)?.rem_euclid(USECS_PER_DAY));
        }
        Some(_) => return Err(syntax("time", s)),
        None => {}
    }
    if d.time.is_none() {
        return Err(syntax("time", s));
    }
    finish_date(&d, s, "time")?;
    finish_time(&d, s)
}

/// `timetz_in`: the time of day and its zone offset (seconds east). Without a zone the session
/// zone's offset applies (at the given date, or at the transaction date/today in UTC terms).
pub fn parse_timetz_in(s: &str, st: &DateTimeSettings) -> Result<(i64, i32), PgError> {
    let ty = "time with time zone";
    let d = decode(s, ty, st)?;
    let t = match d.special {
        Some(Special::Allballs) => 0,
        Some(Special::Now) => {
            let now = st.now.ok_or_else(|| no_clock("now"))?;
            let off = st.offset_at_utc(now);
            let local = now.saturating_add(off as i64 * USECS_PER_SEC);
            return Ok((local.rem_euclid(USECS_PER_DAY), off));
        }
        Some(_) => return Err(syntax(ty, s)),
        None => {
            if d.time.is_none() {
                return Err(syntax(ty, s));
            }
            finish_time(&d, s)?
        }
    };
    let date = finish_date(&d, s, ty)?;
    let off = match (d.tz, d.named) {
        (Some(o), _) => o,
        (None, Some(_)) if date.is_none() => {
            // A tz-database zone's offset depends on the date (PostgreSQL: 22007).
            return Err(syntax(ty, s));
        }
        (None, zone) => {
            let zone = zone.map(Zone::Named).unwrap_or(st.zone);
            let day = match date {
                Some((y, m, dd)) => ymd_to_date(y, m, dd) as i64,
                None => st
                    .now
                    .map(|n| n.div_euclid(USECS_PER_DAY))
                    .unwrap_or_default(),
            };
            zone.offset_at_local(day.saturating_mul(USECS_PER_DAY).saturating_add(t))
        }
    };
    Ok((t, off))
}

/// `timestamp_in` (`with_tz` = false) or `timestamptz_in` (true, local times read in `tz`), with
/// the `ISO, MDY` field order and no transaction time unless `tz` carries them.
pub fn parse_timestamp(s: &str, with_tz: bool, tz: &DateTimeSettings) -> Result<i64, PgError> {
    let ty = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let d = decode(s, ty, tz)?;
    match d.special {
        Some(Special::PosInf) => return Ok(TS_POS_INF),
        Some(Special::NegInf) => return Ok(TS_NEG_INF),
        Some(Special::Epoch) => return Ok(-UNIX_EPOCH_DAYS * USECS_PER_DAY),
        Some(Special::Allballs) => return Err(syntax(ty, s)),
        Some(Special::Now) => {
            let now = tz.now.ok_or_else(|| no_clock("now"))?;
            return if with_tz {
                Ok(now)
            } else {
                utc_to_local(now, tz)
            };
        }
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
        let off = match (d.tz, d.named) {
            (Some(o), _) => o,
            (None, Some(z)) => Zone::Named(z).offset_at_local(local),
            (None, None) => tz.offset_at_local(local),
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
        assert_eq!(Zone::from_setting("UTC").expect("tz"), Zone::Utc);
        assert!(TimeZone::from_setting("Mars/Olympus").is_err());
    }

    #[test]
    fn named_zones_follow_pg15_dst_rules() {
        // Values from PostgreSQL 15.18 with SET TimeZone = 'America/New_York'.
        let ny = TimeZone::from_setting("america/new_york").expect("zone");
        assert_eq!(ny.name(), "America/New_York");
        let tz = |s: &str| parse_timestamp(s, true, &ny).expect("ts");
        // Skipped by the spring-forward transition: read with the offset before it.
        assert_eq!(
            format_timestamptz(tz("2024-03-10 02:30:00"), &ny),
            "2024-03-10 03:30:00-04"
        );
        // Repeated by the fall-back transition: standard time.
        assert_eq!(
            format_timestamptz(tz("2024-11-03 01:30:00"), &ny),
            "2024-11-03 01:30:00-05"
        );
        // `+ 1 day` keeps the wall-clock time across DST, `+ 1 hour` is absolute.
        let day = parse_interval("1 day").expect("iv");
        let hour = parse_interval("1 hour").expect("iv");
        let t = tz("2024-03-10 01:30:00");
        let plus_day = timestamptz_add_interval(t, &day, &ny).expect("add");
        let plus_hour = timestamptz_add_interval(t, &hour, &ny).expect("add");
        assert_eq!(format_timestamptz(plus_day, &ny), "2024-03-11 01:30:00-04");
        assert_eq!(format_timestamptz(plus_hour, &ny), "2024-03-10 03:30:00-04");
        // Past the compiled tables the last rules go on (PostgreSQL's POSIX rule); before
        // standard time, local mean time.
        let far = tz("2100-07-01 08:00:00");
        assert_eq!(format_timestamptz(far, &ny), "2100-07-01 08:00:00-04");
        let lmt = parse_timestamp("1800-07-01 12:00+00", true, &ny).expect("ts");
        assert_eq!(format_timestamptz(lmt, &ny), "1800-07-01 07:03:58-04:56:02");
        // A zone named in the input wins over the session zone.
        let utc = TimeZone::utc();
        let berlin = parse_timestamp("2024-06-01 12:00 Europe/Berlin", true, &utc).expect("ts");
        assert_eq!(format_timestamptz(berlin, &utc), "2024-06-01 10:00:00+00");
        assert!(Zone::from_setting("Mars/Olympus").is_err());
    }

    #[test]
    fn date_and_interval_styles_match_pg15() {
        let mut st = TimeZone::from_setting("America/New_York").expect("zone");
        let ts = parse_timestamp("2024-07-01 12:00+00", true, &st).expect("ts");
        let local = parse_timestamp("2024-07-01 12:00:00.5", false, &st).expect("ts");
        let d = parse_date("2024-07-01").expect("date");
        let mut set = |style: &str| {
            let (f, o) = parse_date_style(style, (st.date_format, st.date_order)).expect("style");
            st.date_format = f;
            st.date_order = o;
            (
                format_timestamptz(ts, &st),
                format_timestamp_styled(local, &st),
                format_date_styled(d, &st),
            )
        };
        let r = set("SQL, MDY");
        assert_eq!(r.0, "07/01/2024 08:00:00 EDT");
        assert_eq!(r.1, "07/01/2024 12:00:00.5");
        assert_eq!(r.2, "07/01/2024");
        let r = set("Postgres, DMY");
        assert_eq!(r.0, "Mon 01 Jul 08:00:00 2024 EDT");
        assert_eq!(r.2, "01-07-2024");
        let r = set("German");
        assert_eq!(r.1, "01.07.2024 12:00:00.5");
        assert_eq!(
            date_style_name(st.date_format, st.date_order),
            "German, DMY"
        );
        // DMY input order.
        assert_eq!(parse_date_in("01/02/2024", &st), parse_date("2024-02-01"));
        assert!(parse_date_style("foo", Default::default()).is_err());

        let iv = |s: &str| parse_interval(s).expect("iv");
        let cases = [
            (IntervalStyle::SqlStandard, "1 year 2 months", "1-2"),
            (
                IntervalStyle::SqlStandard,
                "-3 days -04:05:06",
                "-3 4:05:06",
            ),
            (
                IntervalStyle::SqlStandard,
                "1 year 2 days",
                "+1-0 +2 +0:00:00",
            ),
            (IntervalStyle::SqlStandard, "-00:00:01.5", "-0:00:01.5"),
            (IntervalStyle::Iso8601, "-1 day +02:00", "P-1DT2H"),
            (IntervalStyle::Iso8601, "0", "PT0S"),
            (IntervalStyle::Iso8601, "-00:00:01.5", "PT-1.5S"),
            (
                IntervalStyle::PostgresVerbose,
                "-1 day +02:00",
                "@ 1 day -2 hours ago",
            ),
            (IntervalStyle::PostgresVerbose, "1 second", "@ 1 sec"),
            (
                IntervalStyle::PostgresVerbose,
                "3 days 04:05:06.5",
                "@ 3 days 4 hours 5 mins 6.5 secs",
            ),
        ];
        for (style, input, want) in cases {
            assert_eq!(format_interval_styled(&iv(input), style), want, "{input}");
        }
    }

    #[test]
    fn clock_words_read_the_transaction_time() {
        let now = parse_timestamp("2024-05-07 23:30:00+00", true, &TimeZone::utc()).expect("ts");
        let st = TimeZone::from_setting("Europe/Paris")
            .expect("zone")
            .with_now(now);
        // 23:30 UTC is already May 8 in Paris.
        assert_eq!(parse_date_in("today", &st), parse_date("2024-05-08"));
        assert_eq!(parse_date_in("tomorrow", &st), parse_date("2024-05-09"));
        assert_eq!(parse_timestamp("now", true, &st).expect("now"), now);
        let midnight = parse_timestamp("yesterday", true, &st).expect("ts");
        assert_eq!(format_timestamptz(midnight, &st), "2024-05-07 00:00:00+02");
    }

    #[test]
    fn clock_words_are_rejected_without_a_clock() {
        let e = parse_timestamp("now", false, &TimeZone::utc()).unwrap_err();
        assert_eq!(e.code, SqlState::FeatureNotSupported);
    }
}
