//! `numeric`: arbitrary-precision decimal with PostgreSQL's rounding (half away from zero) and
//! display scale.
//!
//! A finite value is a [`BigDecimal`] whose (non-negative) scale is PostgreSQL's display scale
//! (`dscale`): `1.50` keeps scale 2 and prints as `1.50`. Result scales follow `numeric.c`:
//! addition/subtraction take the larger input scale, multiplication the sum, division
//! `select_div_scale` (at least 16 significant digits).

use std::cmp::Ordering;

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::{BigDecimal, One, Signed, ToPrimitive, Zero};
use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

/// A `numeric` value: a finite decimal, or NaN / ±Infinity (PostgreSQL 14+).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Numeric {
    /// A finite value; its scale is the display scale.
    Finite(#[serde(with = "decimal_serde")] bigdecimal::BigDecimal),
    /// `NaN`.
    NaN,
    /// `Infinity`.
    PosInf,
    /// `-Infinity`.
    NegInf,
}

/// Serde for a finite numeric as (digits, scale), so non-self-describing formats (postcard:
/// plans, aggregate states) round-trip it exactly.
mod decimal_serde {
    use std::str::FromStr;

    use bigdecimal::num_bigint::BigInt;
    use bigdecimal::BigDecimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &BigDecimal, s: S) -> Result<S::Ok, S::Error> {
        let (int, scale) = d.as_bigint_and_exponent();
        (int.to_string(), scale).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BigDecimal, D::Error> {
        let (digits, scale) = <(String, i64)>::deserialize(d)?;
        let int = BigInt::from_str(&digits).map_err(serde::de::Error::custom)?;
        Ok(BigDecimal::new(int, scale))
    }
}

/// `NUMERIC_MAX_DISPLAY_SCALE`.
pub const MAX_DISPLAY_SCALE: i64 = 1000;
/// `NUMERIC_MIN_SIG_DIGITS`.
const MIN_SIG_DIGITS: i64 = 16;
/// Largest number of decimal digits before the decimal point PostgreSQL can store
/// (`NUMERIC_WEIGHT_MAX` base-10000 digits).
const MAX_INT_DIGITS: u64 = 131_072;

fn pow10(n: u64) -> BigInt {
    num_pow(BigInt::from(10u32), n)
}

fn num_pow(base: BigInt, n: u64) -> BigInt {
    let mut result = BigInt::one();
    let mut b = base;
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            result *= &b;
        }
        e >>= 1;
        if e > 0 {
            b = &b * &b;
        }
    }
    result
}

fn overflow() -> PgError {
    PgError::new(
        SqlState::NumericValueOutOfRange,
        "value overflows numeric format",
    )
}

fn div_zero() -> PgError {
    PgError::new(SqlState::DivisionByZero, "division by zero")
}

/// Divide `num` by `den` (non-zero), rounding half away from zero.
fn div_round(num: &BigInt, den: &BigInt) -> BigInt {
    let q = num / den;
    let r = num - &q * den;
    if (r.abs() * 2u32) >= den.abs() {
        if (num.sign() == Sign::Minus) != (den.sign() == Sign::Minus) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// Rescale `d` to `scale` digits after the point, rounding half away from zero.
fn rescale(d: &BigDecimal, scale: i64) -> BigDecimal {
    let (int, cur) = d.as_bigint_and_exponent();
    match scale.cmp(&cur) {
        Ordering::Equal => d.clone(),
        Ordering::Greater => BigDecimal::new(int * pow10((scale - cur) as u64), scale),
        Ordering::Less => BigDecimal::new(div_round(&int, &pow10((cur - scale) as u64)), scale),
    }
}

/// Truncate `d` to `scale` digits after the point (toward zero).
fn rescale_trunc(d: &BigDecimal, scale: i64) -> BigDecimal {
    let (int, cur) = d.as_bigint_and_exponent();
    match scale.cmp(&cur) {
        Ordering::Equal => d.clone(),
        Ordering::Greater => BigDecimal::new(int * pow10((scale - cur) as u64), scale),
        Ordering::Less => BigDecimal::new(int / pow10((cur - scale) as u64), scale),
    }
}

fn scale_of(d: &BigDecimal) -> i64 {
    d.as_bigint_and_exponent().1
}

/// Number of decimal digits before the decimal point (0 for |d| < 1).
fn int_digits(d: &BigDecimal) -> u64 {
    let (int, scale) = d.as_bigint_and_exponent();
    if int.is_zero() {
        return 0;
    }
    let n = int.abs().to_string().len() as i64;
    (n - scale).max(0) as u64
}

/// PostgreSQL's base-10000 weight and first (most significant) base-10000 digit of a non-zero value.
fn weight_first_digit(d: &BigDecimal) -> (i64, i64) {
    let (int, scale) = d.as_bigint_and_exponent();
    if int.is_zero() {
        return (0, 0);
    }
    let abs = int.abs();
    let e = abs.to_string().len() as i64 - 1 - scale;
    let w = e.div_euclid(4);
    let shift = scale + 4 * w;
    let top = if shift >= 0 {
        abs / pow10(shift as u64)
    } else {
        abs * pow10((-shift) as u64)
    };
    (w, (top % 10000u32).to_i64().unwrap_or(0))
}

impl Numeric {
    /// A finite value from an integer.
    pub fn from_i64(v: i64) -> Numeric {
        Numeric::Finite(BigDecimal::from(v))
    }

    /// Zero with scale 0.
    pub fn zero() -> Numeric {
        Numeric::from_i64(0)
    }

    /// Whether this is NaN.
    pub fn is_nan(&self) -> bool {
        matches!(self, Numeric::NaN)
    }

    /// The display scale of a finite value (0 for the special values).
    pub fn scale(&self) -> i64 {
        match self {
            Numeric::Finite(d) => scale_of(d),
            _ => 0,
        }
    }

    fn finite(d: BigDecimal) -> Result<Numeric, PgError> {
        let d = if scale_of(&d) < 0 { rescale(&d, 0) } else { d };
        if int_digits(&d) > MAX_INT_DIGITS {
            return Err(overflow());
        }
        Ok(Numeric::Finite(d))
    }

    /// `numeric_in`: `' 1.50 '`, `'-1e3'`, `'.5'`, `'NaN'`, `'Infinity'`, `'-inf'`.
    pub fn parse(s: &str) -> Result<Numeric, PgError> {
        let bad = || {
            PgError::new(
                SqlState::InvalidTextRepresentation,
                format!("invalid input syntax for type numeric: \"{s}\""),
            )
        };
        let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PosInf),
            "-infinity" | "-inf" => return Ok(Numeric::NegInf),
            _ => {}
        }
        let b = t.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut digits = String::new();
        let mut frac = 0i64;
        let mut seen_point = false;
        let mut any = false;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    digits.push(c as char);
                    any = true;
                    if seen_point {
                        frac += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !any {
            return Err(bad());
        }
        let mut exp = 0i64;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
                i += 1;
            }
            if start == i {
                return Err(bad());
            }
            if exp > 1000 {
                return Err(bad());
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        let mut int: BigInt = digits.parse().map_err(|_| bad())?;
        if neg {
            int = -int;
        }
        let scale = (frac - exp).max(0);
        let d = BigDecimal::new(int, frac - exp);
        let d = rescale(&d, scale);
        if scale > MAX_DISPLAY_SCALE * 2 {
            return Err(overflow());
        }
        Numeric::finite(d)
    }

    /// `numeric_out`: the value with exactly its display scale (`1.50`, `0.001`, `NaN`, `-Infinity`).
    pub fn to_text(&self) -> String {
        match self {
            Numeric::NaN => "NaN".into(),
            Numeric::PosInf => "Infinity".into(),
            Numeric::NegInf => "-Infinity".into(),
            Numeric::Finite(d) => {
                let (int, scale) = d.as_bigint_and_exponent();
                let neg = int.sign() == Sign::Minus;
                let mut digits = int.abs().to_string();
                let mut out = String::new();
                if neg {
                    out.push('-');
                }
                if scale <= 0 {
                    out.push_str(&digits);
                    if !int.is_zero() {
                        for _ in 0..(-scale) {
                            out.push('0');
                        }
                    }
                    return out;
                }
                let scale = scale as usize;
                if digits.len() <= scale {
                    digits = format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits);
                }
                let (a, b) = digits.split_at(digits.len() - scale);
                out.push_str(a);
                out.push('.');
                out.push_str(b);
                out
            }
        }
    }

    /// PostgreSQL's ordering: -Infinity < finite values < Infinity < NaN; NaN equals NaN.
    pub fn cmp_pg(&self, other: &Numeric) -> Ordering {
        fn rank(n: &Numeric) -> u8 {
            match n {
                Numeric::NegInf => 0,
                Numeric::Finite(_) => 1,
                Numeric::PosInf => 2,
                Numeric::NaN => 3,
            }
        }
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    /// -1, 0 or 1 for a finite value; the sign of an infinity; NaN for NaN (`sign()`).
    pub fn signum(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PosInf => Numeric::from_i64(1),
            Numeric::NegInf => Numeric::from_i64(-1),
            Numeric::Finite(d) => Numeric::from_i64(match d.sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            }),
        }
    }

    fn sign_i(&self) -> i32 {
        match self {
            Numeric::NaN => 0,
            Numeric::PosInf => 1,
            Numeric::NegInf => -1,
            Numeric::Finite(d) => match d.sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            },
        }
    }

    fn inf_of_sign(s: i32) -> Numeric {
        if s < 0 {
            Numeric::NegInf
        } else {
            Numeric::PosInf
        }
    }

    /// Unary minus.
    pub fn neg(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PosInf => Numeric::NegInf,
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite(d) => Numeric::Finite(-d.clone()),
        }
    }

    /// `abs()`.
    pub fn abs(&self) -> Numeric {
        match self {
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite(d) => Numeric::Finite(d.abs()),
            other => other.clone(),
        }
    }

    /// `+`: the result scale is the larger input scale.
    pub fn add(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                Numeric::finite(rescale(&(a + b), scale_of(a).max(scale_of(b))))
            }
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::PosInf, Numeric::NegInf) | (Numeric::NegInf, Numeric::PosInf) => {
                Ok(Numeric::NaN)
            }
            (Numeric::PosInf, _) | (_, Numeric::PosInf) => Ok(Numeric::PosInf),
            _ => Ok(Numeric::NegInf),
        }
    }

    /// `-`.
    pub fn sub(&self, other: &Numeric) -> Result<Numeric, PgError> {
        self.add(&other.neg())
    }

    /// `*`: the result scale is the sum of the input scales (at most 1000).
    pub fn mul(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                let (ai, asc) = a.as_bigint_and_exponent();
                let (bi, bsc) = b.as_bigint_and_exponent();
                let r = BigDecimal::new(ai * bi, asc + bsc);
                let r = rescale(&r, (asc + bsc).min(MAX_DISPLAY_SCALE));
                Numeric::finite(r)
            }
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            _ => {
                let s = self.sign_i() * other.sign_i();
                if s == 0 {
                    Ok(Numeric::NaN)
                } else {
                    Ok(Numeric::inf_of_sign(s))
                }
            }
        }
    }

    /// PostgreSQL's `select_div_scale`.
    fn div_scale(a: &BigDecimal, b: &BigDecimal) -> i64 {
        let (w1, f1) = weight_first_digit(a);
        let (w2, f2) = weight_first_digit(b);
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        let mut rscale = MIN_SIG_DIGITS - qweight * 4;
        rscale = rscale.max(scale_of(a)).max(scale_of(b)).max(0);
        rscale.min(MAX_DISPLAY_SCALE)
    }

    /// `/`: rounded half away from zero at `select_div_scale`'s scale. 22012 on division by zero.
    pub fn div(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                if b.is_zero() {
                    return Err(div_zero());
                }
                let rscale = Numeric::div_scale(a, b);
                Numeric::finite(div_to_scale(a, b, rscale))
            }
            _ => self.div_nonfinite(other),
        }
    }

    /// `/` and `div()` when an operand is NaN or infinite (PostgreSQL's rules: NaN wins, finite /
    /// ±Infinity is 0, ±Infinity / finite keeps the sign product, ±Infinity / ±Infinity is NaN).
    fn div_nonfinite(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::Finite(_), _) => Ok(Numeric::zero()),
            (_, Numeric::Finite(b)) => {
                if b.is_zero() {
                    return Err(div_zero());
                }
                Ok(Numeric::inf_of_sign(self.sign_i() * other.sign_i()))
            }
            _ => Ok(Numeric::NaN),
        }
    }

    /// Integer division truncating toward zero (`div()`).
    pub fn div_trunc(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                if b.is_zero() {
                    return Err(div_zero());
                }
                let q = div_to_scale_trunc(a, b, 0);
                Numeric::finite(q)
            }
            _ => self.div_nonfinite(other),
        }
    }

    /// `%`: `a - trunc(a / b) * b`, scale = larger input scale. 22012 on division by zero.
    pub fn rem(&self, other: &Numeric) -> Result<Numeric, PgError> {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                if b.is_zero() {
                    return Err(div_zero());
                }
                let q = div_to_scale_trunc(a, b, 0);
                let r = a - &(b * &q);
                let scale = scale_of(a).max(scale_of(b));
                Numeric::finite(rescale(&r, scale))
            }
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::Finite(b), _) if b.is_zero() => Err(div_zero()),
            (_, Numeric::Finite(b)) if b.is_zero() => Err(div_zero()),
            (Numeric::Finite(_), _) => Ok(self.clone()),
            _ => Ok(Numeric::NaN),
        }
    }

    /// `round(x, s)`: half away from zero; `s` may be negative (`round(1234, -2)` = 1200).
    pub fn round(&self, s: i32) -> Numeric {
        match self {
            Numeric::Finite(d) => {
                let s = (s as i64).clamp(-MAX_DISPLAY_SCALE, MAX_DISPLAY_SCALE);
                let r = rescale(d, s);
                Numeric::Finite(rescale(&r, s.max(0)))
            }
            other => other.clone(),
        }
    }

    /// `trunc(x, s)`.
    pub fn trunc(&self, s: i32) -> Numeric {
        match self {
            Numeric::Finite(d) => {
                let s = (s as i64).clamp(-MAX_DISPLAY_SCALE, MAX_DISPLAY_SCALE);
                let r = rescale_trunc(d, s);
                Numeric::Finite(rescale(&r, s.max(0)))
            }
            other => other.clone(),
        }
    }

    /// `ceil()` (scale 0).
    pub fn ceil(&self) -> Numeric {
        match self {
            Numeric::Finite(d) => {
                let t = rescale_trunc(d, 0);
                if &t < d {
                    Numeric::Finite(t + BigDecimal::one())
                } else {
                    Numeric::Finite(t)
                }
            }
            other => other.clone(),
        }
    }

    /// `floor()` (scale 0).
    pub fn floor(&self) -> Numeric {
        match self {
            Numeric::Finite(d) => {
                let t = rescale_trunc(d, 0);
                if &t > d {
                    Numeric::Finite(t - BigDecimal::one())
                } else {
                    Numeric::Finite(t)
                }
            }
            other => other.clone(),
        }
    }

    /// `sqrt()` with PostgreSQL's result scale (at least 16 significant digits).
    pub fn sqrt(&self) -> Result<Numeric, PgError> {
        let neg_err = || {
            PgError::new(
                SqlState::InvalidArgumentForPowerFunction,
                "cannot take square root of a negative number",
            )
        };
        match self {
            Numeric::NaN => Ok(Numeric::NaN),
            Numeric::PosInf => Ok(Numeric::PosInf),
            Numeric::NegInf => Err(neg_err()),
            Numeric::Finite(d) => {
                if d.is_negative() {
                    return Err(neg_err());
                }
                let (w, _) = weight_first_digit(d);
                let sweight = (w + 1) * 4 / 2 - 1;
                let rscale = (MIN_SIG_DIGITS - sweight)
                    .max(scale_of(d))
                    .clamp(0, MAX_DISPLAY_SCALE);
                // isqrt(d * 10^(2 * (rscale + 1))) gives one extra digit to round on.
                let (int, sc) = d.as_bigint_and_exponent();
                let k = 2 * (rscale + 1) - sc;
                let n = if k >= 0 {
                    int * pow10(k as u64)
                } else {
                    int / pow10((-k) as u64)
                };
                let root = n.sqrt();
                let r = div_round(&root, &BigInt::from(10));
                Ok(Numeric::Finite(BigDecimal::new(r, rscale)))
            }
        }
    }

    /// Apply a `numeric(p, s)` type modifier: round to `s` digits (half away from zero); 22003
    /// `numeric field overflow` when the integer part needs more than `p - s` digits.
    pub fn apply_typmod(&self, precision: u32, scale: u32) -> Result<Numeric, PgError> {
        let p = precision as i64;
        let s = scale as i64;
        match self {
            Numeric::NaN => Ok(Numeric::NaN),
            Numeric::PosInf | Numeric::NegInf => Err(PgError::new(
                SqlState::NumericValueOutOfRange,
                "numeric field overflow",
            )),
            Numeric::Finite(d) => {
                let r = rescale(d, s);
                let max_int = p - s;
                if !r.is_zero() {
                    let (int, _) = r.as_bigint_and_exponent();
                    let total = int.abs().to_string().len() as i64;
                    let intd = total - s;
                    if intd > max_int {
                        return Err(PgError::new(
                            SqlState::NumericValueOutOfRange,
                            "numeric field overflow",
                        ));
                        // DETAIL (not carried by PgError yet): "A field with precision p, scale s
                        // must round to an absolute value less than 10^(p-s)."
                    }
                }
                Ok(Numeric::Finite(r))
            }
        }
    }

    /// Convert to an integer, rounding half away from zero (`numeric::int8`). `None` for NaN,
    /// infinities and out-of-range values; see [`Numeric::to_int`] for PostgreSQL's errors.
    pub fn to_i64_rounded(&self) -> Option<i64> {
        match self {
            Numeric::Finite(d) => rescale(d, 0).as_bigint_and_exponent().0.to_i64(),
            _ => None,
        }
    }

    /// Convert to an integer type named `ty` (`smallint`, `integer`, `bigint`) with bounds
    /// `[min, max]`, as `numeric_int2/4/8` do: half away from zero, PostgreSQL's errors.
    pub fn to_int(&self, ty: &str, min: i64, max: i64) -> Result<i64, PgError> {
        match self {
            Numeric::NaN => Err(PgError::new(
                SqlState::FeatureNotSupported,
                format!("cannot convert NaN to {ty}"),
            )),
            Numeric::PosInf | Numeric::NegInf => Err(PgError::new(
                SqlState::FeatureNotSupported,
                format!("cannot convert infinity to {ty}"),
            )),
            Numeric::Finite(_) => match self.to_i64_rounded() {
                Some(v) if v >= min && v <= max => Ok(v),
                _ => Err(PgError::new(
                    SqlState::NumericValueOutOfRange,
                    format!("{ty} out of range"),
                )),
            },
        }
    }

    /// `numeric::float8` (via the decimal text, as PostgreSQL does).
    pub fn to_f64(&self) -> f64 {
        match self {
            Numeric::NaN => f64::NAN,
            Numeric::PosInf => f64::INFINITY,
            Numeric::NegInf => f64::NEG_INFINITY,
            Numeric::Finite(_) => self.to_text().parse::<f64>().unwrap_or(f64::NAN),
        }
    }

    /// `float8::numeric` / `float4::numeric`: the float printed with `digits` significant digits
    /// (15 for float8, 6 for float4, as `%.*g`) and read back.
    pub fn from_float(v: f64, digits: usize) -> Result<Numeric, PgError> {
        if v.is_nan() {
            return Ok(Numeric::NaN);
        }
        if v.is_infinite() {
            return Ok(if v > 0.0 {
                Numeric::PosInf
            } else {
                Numeric::NegInf
            });
        }
        let s = format!("{:.*e}", digits.saturating_sub(1), v);
        let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let neg = mant.starts_with('-');
        let mant = mant.trim_start_matches('-');
        let mut digits_str: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
        while digits_str.len() > 1 && digits_str.ends_with('0') {
            digits_str.pop();
        }
        let mut int: BigInt = digits_str.parse().map_err(|_| overflow())?;
        if neg {
            int = -int;
        }
        let frac = digits_str.len() as i64 - 1 - exp;
        let d = BigDecimal::new(int, frac);
        Numeric::finite(rescale(&d, frac.max(0)))
    }
}

/// `a / b` rounded half away from zero to `rscale` digits.
fn div_to_scale(a: &BigDecimal, b: &BigDecimal, rscale: i64) -> BigDecimal {
    let (ai, asc) = a.as_bigint_and_exponent();
    let (bi, bsc) = b.as_bigint_and_exponent();
    let k = rscale + bsc - asc;
    let (num, den) = if k >= 0 {
        (ai * pow10(k as u64), bi)
    } else {
        (ai, bi * pow10((-k) as u64))
    };
    BigDecimal::new(div_round(&num, &den), rscale)
}

/// `a / b` truncated toward zero to `rscale` digits.
fn div_to_scale_trunc(a: &BigDecimal, b: &BigDecimal, rscale: i64) -> BigDecimal {
    let (ai, asc) = a.as_bigint_and_exponent();
    let (bi, bsc) = b.as_bigint_and_exponent();
    let k = rscale + bsc - asc;
    let (num, den) = if k >= 0 {
        (ai * pow10(k as u64), bi)
    } else {
        (ai, bi * pow10((-k) as u64))
    };
    BigDecimal::new(num / den, rscale)
}

impl std::fmt::Display for Numeric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).expect("parse")
    }

    fn t(s: &str) -> String {
        n(s).to_text()
    }

    #[test]
    fn input_output_matches_pg15() {
        assert_eq!(t(" 1.50 "), "1.50");
        assert_eq!(t("1e3"), "1000");
        assert_eq!(t("1.5e1"), "15");
        assert_eq!(t("1.50e1"), "15.0");
        assert_eq!(t("1e-3"), "0.001");
        assert_eq!(t(".5"), "0.5");
        assert_eq!(t("5."), "5");
        assert_eq!(t("-0.00"), "0.00");
        assert_eq!(t("+12"), "12");
        assert_eq!(t("nan"), "NaN");
        assert_eq!(t("-inf"), "-Infinity");
        assert_eq!(t("Infinity"), "Infinity");
        for bad in ["abc", "", "1e", "1.2.3", "- 1", "1 2", "e5", "."] {
            let e = Numeric::parse(bad).unwrap_err();
            assert_eq!(e.code, SqlState::InvalidTextRepresentation);
            assert_eq!(
                e.message,
                format!("invalid input syntax for type numeric: \"{bad}\"")
            );
        }
    }

    #[test]
    fn arithmetic_scales_match_pg15() {
        let op = |a: &str, o: char, b: &str| {
            let (a, b) = (n(a), n(b));
            match o {
                '+' => a.add(&b),
                '-' => a.sub(&b),
                '*' => a.mul(&b),
                '/' => a.div(&b),
                '%' => a.rem(&b),
                _ => unreachable!(),
            }
            .map(|v| v.to_text())
        };
        assert_eq!(op("1.5", '+', "2.25").unwrap(), "3.75");
        assert_eq!(op("1.50", '-', "2").unwrap(), "-0.50");
        assert_eq!(op("1.5", '*', "2.25").unwrap(), "3.375");
        assert_eq!(op("1", '/', "3").unwrap(), "0.33333333333333333333");
        assert_eq!(op("10", '/', "4").unwrap(), "2.5000000000000000");
        assert_eq!(op("2", '/', "3").unwrap(), "0.66666666666666666667");
        assert_eq!(op("100000", '/', "3").unwrap(), "33333.333333333333");
        assert_eq!(op("1", '/', "7.00000").unwrap(), "0.14285714285714285714");
        assert_eq!(
            op("123456789", '/', "0.001").unwrap(),
            "123456789000.00000000"
        );
        assert_eq!(op("-7", '/', "2").unwrap(), "-3.5000000000000000");
        assert_eq!(op("7.5", '%', "2").unwrap(), "1.5");
        assert_eq!(op("-7", '%', "3").unwrap(), "-1");
        let e = op("1", '/', "0").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (SqlState::DivisionByZero, "division by zero")
        );
        assert_eq!(op("Infinity", '-', "Infinity").unwrap(), "NaN");
        assert_eq!(op("5", '/', "Infinity").unwrap(), "0");
        assert_eq!(op("NaN", '/', "0").unwrap(), "NaN");
    }

    #[test]
    fn typmod_and_rounding() {
        assert_eq!(n("1.005").apply_typmod(5, 2).unwrap().to_text(), "1.01");
        assert_eq!(n("-1.005").apply_typmod(5, 2).unwrap().to_text(), "-1.01");
        assert_eq!(n("2").apply_typmod(5, 2).unwrap().to_text(), "2.00");
        assert_eq!(
            n("999.995").apply_typmod(5, 2).unwrap_err().message,
            "numeric field overflow"
        );
        assert_eq!(n("999.994").apply_typmod(5, 2).unwrap().to_text(), "999.99");
        assert_eq!(n("0.5").apply_typmod(1, 0).unwrap().to_text(), "1");
        assert_eq!(n("2.5").round(0).to_text(), "3");
        assert_eq!(n("-2.5").round(0).to_text(), "-3");
        assert_eq!(n("1234.5678").round(-2).to_text(), "1200");
        assert_eq!(n("1234.5678").round(2).to_text(), "1234.57");
        assert_eq!(n("1234.5678").trunc(2).to_text(), "1234.56");
        assert_eq!(n("-1.5").ceil().to_text(), "-1");
        assert_eq!(n("-1.5").floor().to_text(), "-2");
        assert_eq!(n("2").sqrt().unwrap().to_text(), "1.414213562373095");
        assert_eq!(n("100").sqrt().unwrap().to_text(), "10.000000000000000");
        assert_eq!(
            n("2.5")
                .to_int("integer", i32::MIN as i64, i32::MAX as i64)
                .unwrap(),
            3
        );
        assert_eq!(
            n("-2.5")
                .to_int("integer", i32::MIN as i64, i32::MAX as i64)
                .unwrap(),
            -3
        );
        assert_eq!(Numeric::from_float(0.1, 15).unwrap().to_text(), "0.1");
        assert_eq!(
            Numeric::from_float(1e20, 15).unwrap().to_text(),
            "100000000000000000000"
        );
        assert_eq!(
            Numeric::from_float(1.0 / 3.0, 15).unwrap().to_text(),
            "0.333333333333333"
        );
    }

    #[test]
    fn ordering() {
        let mut v = [n("NaN"), n("1"), n("-Infinity"), n("Infinity"), n("-5.5")];
        v.sort_by(|a, b| a.cmp_pg(b));
        let s: Vec<_> = v.iter().map(|x| x.to_text()).collect();
        assert_eq!(s, ["-Infinity", "-5.5", "1", "Infinity", "NaN"]);
        assert_eq!(n("1.50").cmp_pg(&n("1.5")), Ordering::Equal);
    }
}
