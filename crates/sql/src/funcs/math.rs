//! Numeric transcendental functions with PostgreSQL's result scales (`numeric.c`: `ln_var`,
//! `exp_var`, `power_var`, `log_var` and their rscale rules), glibc's `cbrt` (PostgreSQL's float8
//! `cbrt` calls the C library's, whose last digit differs from a correctly rounded one), and
//! PostgreSQL's pseudo-random generator (`pg_prng.c`: xoroshiro128** seeded through splitmix64).
//!
//! The numeric functions compute in fixed point (a [`BigInt`] scaled by `10^w`) with enough guard
//! digits that the final rounding (half away from zero, as `round_var`) to the result scale gives
//! the correctly rounded value, which is what PostgreSQL's own guard digits give too.

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::{BigDecimal, One, Signed, ToPrimitive, Zero};
use pgxc_common::{PgError, SqlState};

use crate::types::Numeric;

/// `NUMERIC_MIN_SIG_DIGITS`.
const MIN_SIG_DIGITS: i64 = 16;
/// `NUMERIC_MAX_DISPLAY_SCALE`.
const MAX_DISPLAY_SCALE: i64 = 1000;
/// `NUMERIC_MAX_RESULT_SCALE`.
const MAX_RESULT_SCALE: i64 = 2000;
/// Most decimal digits before the point a numeric can hold (`NUMERIC_WEIGHT_MAX` base-10000 digits).
const MAX_INT_DIGITS: i64 = 131_072;

fn pow10(n: i64) -> BigInt {
    BigInt::from(10u32).pow(n.max(0) as u32)
}

fn overflow() -> PgError {
    PgError::new(
        SqlState::NumericValueOutOfRange,
        "value overflows numeric format",
    )
}

/// `num / den` rounded half away from zero (`den` non-zero).
fn div_round(num: &BigInt, den: &BigInt) -> BigInt {
    let q = num / den;
    let r = num - &q * den;
    if r.abs() * 2u32 >= den.abs() {
        if (num.sign() == Sign::Minus) != (den.sign() == Sign::Minus) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// `d` as a fixed-point integer scaled by `10^w` (rounded).
fn to_fixed(d: &BigDecimal, w: i64) -> BigInt {
    let (int, s) = d.as_bigint_and_exponent();
    if w >= s {
        int * pow10(w - s)
    } else {
        div_round(&int, &pow10(s - w))
    }
}

/// A fixed-point value at scale `w` rounded to `rscale` digits, as a numeric with that display scale.
fn fixed_to_numeric(v: &BigInt, w: i64, rscale: i64) -> Result<Numeric, PgError> {
    let r = if w >= rscale {
        div_round(v, &pow10(w - rscale))
    } else {
        v * pow10(rscale - w)
    };
    finite(BigDecimal::new(r, rscale))
}

fn finite(d: BigDecimal) -> Result<Numeric, PgError> {
    let (int, s) = d.as_bigint_and_exponent();
    if !int.is_zero() && int.abs().to_string().len() as i64 - s > MAX_INT_DIGITS {
        return Err(overflow());
    }
    Ok(Numeric::Finite(d))
}

fn fmul(a: &BigInt, b: &BigInt, w: i64) -> BigInt {
    div_round(&(a * b), &pow10(w))
}

fn fdiv(a: &BigInt, b: &BigInt, w: i64) -> BigInt {
    div_round(&(a * pow10(w)), b)
}

/// Decimal exponent of the leading digit of a non-zero value (`floor(log10(|d|))`).
fn dec_exponent(d: &BigDecimal) -> i64 {
    let (int, s) = d.as_bigint_and_exponent();
    int.abs().to_string().len() as i64 - 1 - s
}

/// The display scale of a finite value.
fn dscale(d: &BigDecimal) -> i64 {
    d.as_bigint_and_exponent().1.max(0)
}

/// `estimate_ln_dweight`: the approximate decimal weight of `ln(d)` for `d > 0`.
fn estimate_ln_dweight(d: &BigDecimal) -> i64 {
    if !d.is_positive() {
        return 0;
    }
    let lo = BigDecimal::new(BigInt::from(9), 1);
    let hi = BigDecimal::new(BigInt::from(11), 1);
    if *d >= lo && *d <= hi {
        let x = d - BigDecimal::one();
        if x.is_zero() {
            return 0;
        }
        return dec_exponent(&x);
    }
    // PostgreSQL's base-10000 weight and the first one or two base-10000 digits.
    let e = dec_exponent(d);
    let weight = e.div_euclid(4);
    let (int, s) = d.as_bigint_and_exponent();
    // |d| * 10^(4 - 4 * weight): the first two base-10000 digits before the point.
    let shift = 4 - 4 * weight - s;
    let (t, exact) = if shift >= 0 {
        (int.abs() * pow10(shift), true)
    } else {
        let den = pow10(-shift);
        let a = int.abs();
        let q = &a / &den;
        let exact = (&q * &den) == a;
        (q, exact)
    };
    let first = (&t / 10000u32).to_i64().unwrap_or(1);
    let second = (&t % 10000u32).to_i64().unwrap_or(0);
    let (digits, dweight) = if second != 0 || !exact {
        (first * 10000 + second, weight * 4 - 4)
    } else {
        (first, weight * 4)
    };
    let ln = (digits as f64).ln() + dweight as f64 * std::f64::consts::LN_10;
    if ln == 0.0 || !ln.is_finite() {
        return 0;
    }
    ln.abs().log10() as i64
}

/// `ln(m)` in fixed point at scale `w` for a fixed-point `m` in (0.5, 20), by repeated square roots
/// down to `|m - 1| < 0.01` and the series `2 atanh((m - 1) / (m + 1))`.
fn ln_fixed_small(m: &BigInt, w: i64) -> BigInt {
    let one = pow10(w);
    let mut m = m.clone();
    let mut k = 0u32;
    let tol = pow10(w - 2);
    while (&m - &one).abs() > tol {
        m = (&m * &one).sqrt();
        k += 1;
    }
    let z = fdiv(&(&m - &one), &(&m + &one), w);
    let z2 = fmul(&z, &z, w);
    let mut term = z.clone();
    let mut sum = z;
    let mut n = 1u32;
    loop {
        term = fmul(&term, &z2, w);
        n += 2;
        let t = &term / n;
        if t.is_zero() {
            break;
        }
        sum += t;
    }
    sum * 2 * (BigInt::one() << k)
}

/// `ln(d)` for `d > 0` at fixed-point scale `w`.
fn ln_fixed(d: &BigDecimal, w: i64) -> BigInt {
    let e = dec_exponent(d);
    // m = d / 10^e in [1, 10).
    let (int, s) = d.as_bigint_and_exponent();
    let shift = w - s - e;
    let m = if shift >= 0 {
        int * pow10(shift)
    } else {
        div_round(&int, &pow10(-shift))
    };
    let mut r = ln_fixed_small(&m, w);
    if e != 0 {
        let ln10 = ln_fixed_small(&pow10(w + 1), w);
        r += ln10 * e;
    }
    r
}

/// `exp(x)` at fixed-point scale `w` for a fixed-point `x >= 0`, by halving `x` until it is small,
/// the Taylor series, and squaring back.
fn exp_fixed_pos(x: &BigInt, w: i64) -> BigInt {
    let one = pow10(w);
    let mut k = 0u32;
    let limit = pow10(w - 3);
    let mut r = x.clone();
    while r > limit {
        r /= 2;
        k += 1;
    }
    let mut term = one.clone();
    let mut sum = one.clone();
    let mut n = 1u32;
    loop {
        term = fmul(&term, &r, w) / n;
        if term.is_zero() {
            break;
        }
        sum += &term;
        n += 1;
    }
    for _ in 0..k {
        sum = fmul(&sum, &sum, w);
    }
    sum
}

fn clamp_rscale(r: i64) -> i64 {
    r.clamp(0, MAX_DISPLAY_SCALE)
}

/// `ln(numeric)` (`numeric_ln`). Errors: 2201E for zero and negative arguments.
pub(crate) fn ln(x: &Numeric) -> Result<Numeric, PgError> {
    let d = match x {
        Numeric::NaN => return Ok(Numeric::NaN),
        Numeric::PosInf => return Ok(Numeric::PosInf),
        Numeric::NegInf => return Err(log_negative()),
        Numeric::Finite(d) => d,
    };
    check_log_arg(d)?;
    let rscale = clamp_rscale((MIN_SIG_DIGITS - estimate_ln_dweight(d)).max(dscale(d)));
    let e = dec_exponent(d).abs();
    let w = rscale + e.to_string().len() as i64 + 12;
    fixed_to_numeric(&ln_fixed(d, w), w, rscale)
}

fn log_negative() -> PgError {
    PgError::new(
        SqlState::InvalidArgumentForLogarithm,
        "cannot take logarithm of a negative number",
    )
}

fn check_log_arg(d: &BigDecimal) -> Result<(), PgError> {
    if d.is_zero() {
        return Err(PgError::new(
            SqlState::InvalidArgumentForLogarithm,
            "cannot take logarithm of zero",
        ));
    }
    if d.is_negative() {
        return Err(log_negative());
    }
    Ok(())
}

/// `log(base, x)` on numerics (`numeric_log` / `log_var`); `log(x)` and `log10(x)` are `log(10, x)`.
/// Errors: 2201E for zero or negative arguments, 22012 for base 1.
pub(crate) fn log(base: &Numeric, x: &Numeric) -> Result<Numeric, PgError> {
    let (b, d) = match (base, x) {
        (Numeric::NaN, _) | (_, Numeric::NaN) => return Ok(Numeric::NaN),
        (Numeric::Finite(b), Numeric::Finite(d)) => (b, d),
        (Numeric::NegInf, _) | (_, Numeric::NegInf) => return Err(log_negative()),
        (Numeric::Finite(b), Numeric::PosInf) => {
            check_log_arg(b)?;
            return Ok(if *b > BigDecimal::one() {
                Numeric::PosInf
            } else if *b < BigDecimal::one() {
                Numeric::NegInf
            } else {
                return Err(PgError::new(SqlState::DivisionByZero, "division by zero"));
            });
        }
        (Numeric::PosInf, Numeric::Finite(d)) => {
            check_log_arg(d)?;
            return Ok(Numeric::zero());
        }
        _ => return Ok(Numeric::NaN),
    };
    check_log_arg(b)?;
    check_log_arg(d)?;
    let bw = estimate_ln_dweight(b);
    let nw = estimate_ln_dweight(d);
    let result_dweight = nw - bw;
    let rscale = clamp_rscale(
        (MIN_SIG_DIGITS - result_dweight)
            .max(dscale(b))
            .max(dscale(d)),
    );
    let guard = |x: &BigDecimal| dec_exponent(x).abs().to_string().len() as i64;
    let w = rscale + result_dweight.max(0) + (-bw).max(0) + guard(b).max(guard(d)) + 14;
    let lb = ln_fixed(b, w);
    if lb.is_zero() {
        return Err(PgError::new(SqlState::DivisionByZero, "division by zero"));
    }
    let ln_x = ln_fixed(d, w);
    fixed_to_numeric(&fdiv(&ln_x, &lb, w), w, rscale)
}

/// `exp(x)` for a finite `x` at result scale `rscale`.
fn exp_decimal(x: &BigDecimal, rscale: i64) -> Result<Numeric, PgError> {
    let xf = x.to_f64().unwrap_or(0.0);
    if xf.abs() >= (MAX_RESULT_SCALE * 3) as f64 {
        if xf > 0.0 {
            return Err(overflow());
        }
        return Ok(Numeric::Finite(BigDecimal::new(BigInt::zero(), rscale)));
    }
    let dw = (xf.abs() * std::f64::consts::LOG10_E).ceil() as i64;
    let k_digits = ((xf.abs() * 1000.0 + 1.0).log10()).ceil() as i64;
    let w = rscale + dw + k_digits + 14;
    let fx = to_fixed(&x.abs(), w);
    let e = exp_fixed_pos(&fx, w);
    if x.is_negative() {
        let inv = fdiv(&pow10(w), &e, w);
        fixed_to_numeric(&inv, w, rscale)
    } else {
        fixed_to_numeric(&e, w, rscale)
    }
}

/// `exp(numeric)` (`numeric_exp`). Errors: 22003 when the result overflows.
#[allow(clippy::approx_constant)] // numeric.c's literal, not LOG10_E: the scale must match.
pub(crate) fn exp(x: &Numeric) -> Result<Numeric, PgError> {
    let d = match x {
        Numeric::NaN => return Ok(Numeric::NaN),
        Numeric::PosInf => return Ok(Numeric::PosInf),
        Numeric::NegInf => return Ok(Numeric::zero()),
        Numeric::Finite(d) => d,
    };
    let val = (d.to_f64().unwrap_or(0.0) * 0.434294481903252)
        .clamp(-(MAX_RESULT_SCALE as f64), MAX_RESULT_SCALE as f64);
    let rscale = clamp_rscale((MIN_SIG_DIGITS - val as i64).max(dscale(d)));
    exp_decimal(d, rscale)
}

/// Whether a finite value is an integer.
fn is_integral(d: &BigDecimal) -> bool {
    let (int, s) = d.as_bigint_and_exponent();
    s <= 0 || (&int % pow10(s)).is_zero()
}

/// `power(numeric, numeric)` / `numeric ^ numeric` (`numeric_power` / `power_var`).
///
/// Errors: 2201F for zero to a negative power and a negative base to a non-integer power, 22003
/// on overflow.
#[allow(clippy::approx_constant)] // numeric.c's literal, not LOG10_E: the scale must match.
pub(crate) fn power(base: &Numeric, exp: &Numeric) -> Result<Numeric, PgError> {
    let (b, x) = match (base, exp) {
        (Numeric::Finite(b), Numeric::Finite(x)) => (b, x),
        _ => return power_special(base, exp),
    };
    if b.is_zero() && x.is_negative() {
        return Err(PgError::new(
            SqlState::InvalidArgumentForPowerFunction,
            "zero raised to a negative power is undefined",
        ));
    }
    if b.is_negative() && !is_integral(x) {
        return Err(PgError::new(
            SqlState::InvalidArgumentForPowerFunction,
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    if is_integral(x) {
        if let Some(n) = x.to_i64().filter(|n| i32::try_from(*n).is_ok()) {
            let rscale = clamp_rscale(MIN_SIG_DIGITS.max(dscale(b)));
            return power_int(b, n, rscale);
        }
    }
    if b.is_zero() {
        return Ok(Numeric::Finite(BigDecimal::new(
            BigInt::zero(),
            MIN_SIG_DIGITS,
        )));
    }
    let negative = b.is_negative() && x.to_i64().is_some_and(|n| n % 2 != 0);
    let ab = b.abs();
    let ln_dweight = estimate_ln_dweight(&ab);
    // Low-precision estimate of exp * ln(base) for the result scale and the overflow test.
    let val = ab.to_f64().unwrap_or(1.0).ln() * x.to_f64().unwrap_or(0.0);
    if !val.is_finite() || val.abs() > MAX_RESULT_SCALE as f64 * 3.01 {
        if val > 0.0 {
            return Err(overflow());
        }
        return Ok(Numeric::Finite(BigDecimal::new(
            BigInt::zero(),
            MAX_DISPLAY_SCALE,
        )));
    }
    let val = val * 0.434294481903252;
    let rscale = clamp_rscale(
        (MIN_SIG_DIGITS - val as i64)
            .max(dscale(&ab))
            .max(dscale(x)),
    );
    let sig = (rscale + val.ceil() as i64).max(0);
    let xdigits = dec_exponent(x).max(0);
    let w = sig + xdigits + (-ln_dweight).max(0) + 20;
    let ln_b = BigDecimal::new(ln_fixed(&ab, w), w);
    let y = ln_b * x;
    let r = exp_decimal(&y, rscale)?;
    Ok(if negative { r.neg() } else { r })
}

/// `power_var_int`: an integer exponent, computed exactly and rounded to `rscale`.
fn power_int(b: &BigDecimal, n: i64, rscale: i64) -> Result<Numeric, PgError> {
    if n == 0 {
        return Ok(Numeric::Finite(BigDecimal::new(pow10(rscale), rscale)));
    }
    if b.is_zero() {
        return Ok(Numeric::Finite(BigDecimal::new(BigInt::zero(), rscale)));
    }
    // Approximate decimal weight of the result.
    let f = n as f64 * b.abs().to_f64().unwrap_or(1.0).log10();
    if f > (3 * i16::MAX as i64 * 4) as f64 || f > MAX_INT_DIGITS as f64 + 1.0 {
        return Err(overflow());
    }
    if f + 1.0 < -(rscale as f64) || f + 1.0 < -(MAX_DISPLAY_SCALE as f64) {
        return Ok(Numeric::Finite(BigDecimal::new(BigInt::zero(), rscale)));
    }
    let (int, s) = b.as_bigint_and_exponent();
    let m = n.unsigned_abs() as u32;
    let int_len = int.magnitude().to_string().len() as f64;
    if f64::from(m) * int_len > 20_000.0 {
        // Too many digits to compute exactly: exp(n * ln|b|) with enough guard digits.
        let negative = b.is_negative() && n % 2 != 0;
        let ab = b.abs();
        let sig = (rscale + f.ceil() as i64).max(0);
        let w = sig
            + n.unsigned_abs().to_string().len() as i64
            + (-estimate_ln_dweight(&ab)).max(0)
            + 20;
        let y = BigDecimal::new(ln_fixed(&ab, w), w) * BigDecimal::from(n);
        let r = exp_decimal(&y, rscale)?;
        return Ok(if negative { r.neg() } else { r });
    }
    let num = int.pow(m);
    let sc = s * m as i64;
    let v = if n > 0 {
        BigDecimal::new(num, sc)
    } else {
        // 10^sc / int^m at rscale.
        let q = div_round(&(pow10(sc + rscale.max(0))), &num);
        BigDecimal::new(q, rscale)
    };
    let (vi, vs) = v.as_bigint_and_exponent();
    let r = if vs > rscale {
        div_round(&vi, &pow10(vs - rscale))
    } else {
        vi * pow10(rscale - vs)
    };
    finite(BigDecimal::new(r, rscale))
}

/// `power()` when an argument is NaN or infinite (PostgreSQL 15's rules).
fn power_special(base: &Numeric, exp: &Numeric) -> Result<Numeric, PgError> {
    let one = |n: &Numeric| matches!(n, Numeric::Finite(d) if *d == BigDecimal::one());
    let zero = |n: &Numeric| matches!(n, Numeric::Finite(d) if d.is_zero());
    if base.is_nan() || exp.is_nan() {
        if one(base) || zero(exp) {
            return Ok(Numeric::from_i64(1));
        }
        return Ok(Numeric::NaN);
    }
    if zero(exp) {
        return Ok(Numeric::from_i64(1));
    }
    match (base, exp) {
        (Numeric::Finite(b), _) => {
            // Infinite exponent.
            if b.is_zero() {
                if matches!(exp, Numeric::NegInf) {
                    return Err(PgError::new(
                        SqlState::InvalidArgumentForPowerFunction,
                        "zero raised to a negative power is undefined",
                    ));
                }
                return Ok(Numeric::zero());
            }
            let a = b.abs();
            let one_d = BigDecimal::one();
            if a == one_d {
                return Ok(Numeric::from_i64(1));
            }
            let big = a > one_d;
            Ok(match (big, exp) {
                (true, Numeric::PosInf) | (false, Numeric::NegInf) => Numeric::PosInf,
                _ => Numeric::zero(),
            })
        }
        (Numeric::PosInf, Numeric::Finite(x)) => Ok(if x.is_negative() {
            Numeric::zero()
        } else {
            Numeric::PosInf
        }),
        (Numeric::PosInf, Numeric::PosInf) => Ok(Numeric::PosInf),
        (Numeric::PosInf, _) => Ok(Numeric::zero()),
        (Numeric::NegInf, Numeric::Finite(x)) => {
            if x.is_negative() {
                return Ok(Numeric::zero());
            }
            if !is_integral(x) {
                return Err(PgError::new(
                    SqlState::InvalidArgumentForPowerFunction,
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            let odd = (x.as_bigint_and_exponent().0 % 2u32) != BigInt::zero() && dscale(x) == 0;
            Ok(if odd {
                Numeric::NegInf
            } else {
                Numeric::PosInf
            })
        }
        (Numeric::NegInf, Numeric::PosInf) => Ok(Numeric::PosInf),
        _ => Ok(Numeric::zero()),
    }
}

/// glibc's `cbrt` (`sysdeps/ieee754/dbl-64/s_cbrt.c`), which PostgreSQL's `cbrt(float8)` and `||/`
/// call: `cbrt(27)` is `3.0000000000000004` there, not Rust's correctly rounded `3`.
#[allow(clippy::excessive_precision)] // glibc's coefficients, as written there
pub(crate) fn cbrt_glibc(x: f64) -> f64 {
    const CBRT2: f64 = 1.259_921_049_894_873_2;
    const SQR_CBRT2: f64 = 1.587_401_051_968_199_5;
    const FACTOR: [f64; 5] = [1.0 / SQR_CBRT2, 1.0 / CBRT2, 1.0, CBRT2, SQR_CBRT2];
    if x == 0.0 || !x.is_finite() {
        return x + x;
    }
    let (xm, xe) = frexp(x.abs());
    let u = 0.354895765043919860
        + (1.50819193781584896
            + (-2.11499494167371287
                + (2.44693122563534430
                    + (-1.83469277483613086
                        + (0.784932344976639262 - 0.145263899385486377 * xm) * xm)
                        * xm)
                    * xm)
                * xm)
            * xm;
    let t2 = u * u * u;
    let ym = u * (t2 + 2.0 * xm) / (2.0 * t2 + xm) * FACTOR[(2 + xe % 3) as usize];
    let r = ldexp(ym, xe / 3);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// C's `frexp` for a finite non-zero `x`: `x = m * 2^e` with `0.5 <= |m| < 1`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up first.
        let (m, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (m, e - 54);
    }
    let e = exp - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e)
}

/// C's `ldexp`: `x * 2^e`, exact while the result is a normal number.
fn ldexp(x: f64, e: i32) -> f64 {
    let mut x = x;
    let mut e = e;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// PostgreSQL's session pseudo-random generator (`pg_prng_state`): xoroshiro128**, seeded by
/// splitmix64. `setseed(s)` makes `random()`'s sequence repeatable and identical to PostgreSQL's.
#[derive(Debug)]
pub struct Prng {
    s0: u64,
    s1: u64,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut v = *state;
    v = (v ^ (v >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    v = (v ^ (v >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    v ^ (v >> 31)
}

impl Prng {
    /// `pg_prng_seed`: a generator seeded with the 64-bit `seed`.
    pub fn new(seed: u64) -> Prng {
        let mut s = seed;
        let s0 = splitmix64(&mut s);
        let s1 = splitmix64(&mut s);
        let mut p = Prng { s0, s1 };
        if p.s0 == 0 && p.s1 == 0 {
            p.s0 = 1 << 63;
        }
        p
    }

    /// `pg_prng_fseed` (what `setseed(x)` does): the seed is `x * (2^52 - 1)` as an integer.
    pub fn from_fseed(x: f64) -> Prng {
        let seed = (((1u64 << 52) - 1) as f64 * x) as i64;
        Prng::new(seed as u64)
    }

    /// The next 64 random bits (`xoroshiro128ss`).
    pub fn next_u64(&mut self) -> u64 {
        let s0 = self.s0;
        let sx = self.s1 ^ s0;
        let val = s0.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        self.s0 = s0.rotate_left(24) ^ sx ^ (sx << 16);
        self.s1 = sx.rotate_left(37);
        val
    }

    /// `pg_prng_double`: uniform in `[0, 1)` with 52 random bits.
    pub fn next_f64(&mut self) -> f64 {
        let v = self.next_u64();
        (v >> 12) as f64 * 2f64.powi(-52)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Numeric {
        Numeric::parse(s).unwrap()
    }

    #[test]
    fn scales_match_postgres() {
        assert_eq!(ln(&num("10")).unwrap().to_text(), "2.3025850929940457");
        assert_eq!(
            ln(&num("2.718281828459045")).unwrap().to_text(),
            "0.9999999999999999"
        );
        assert_eq!(exp(&num("1.0")).unwrap().to_text(), "2.7182818284590452");
        assert_eq!(exp(&num("1")).unwrap().to_text(), "2.7182818284590452");
        let e2 = exp(&num("2.0")).unwrap();
        assert_eq!(ln(&e2).unwrap().to_text(), "2.0000000000000000");
        assert_eq!(
            power(&num("2.0"), &num("-2")).unwrap().to_text(),
            "0.2500000000000000"
        );
        assert_eq!(
            power(&num("9"), &num("0.5")).unwrap().to_text(),
            "3.0000000000000000"
        );
        assert_eq!(
            power(&num("2"), &num("10")).unwrap().to_text(),
            "1024.0000000000000000"
        );
        assert_eq!(
            log(&num("2"), &num("64")).unwrap().to_text(),
            "6.0000000000000000"
        );
        assert_eq!(
            power(&num("1.0000001"), &num("100000000"))
                .unwrap()
                .to_text(),
            "22026.4547815773066365"
        );
        assert_eq!(
            power(&num("-1.0000001"), &num("99999999"))
                .unwrap()
                .to_text(),
            "-22026.4525789320487433"
        );
        assert_eq!(
            power(&num("0.9999999"), &num("123456789"))
                .unwrap()
                .to_text(),
            "0.0000043485003593"
        );
        assert!(ln(&num("0")).is_err());
        assert!(power(&num("0"), &num("-1")).is_err());
    }

    #[test]
    fn cbrt_is_glibcs() {
        assert_eq!(cbrt_glibc(27.0), 3.0000000000000004);
        assert_eq!(cbrt_glibc(-8.0), -2.0);
        assert_eq!(cbrt_glibc(0.0), 0.0);
    }

    #[test]
    fn prng_is_repeatable() {
        let mut a = Prng::from_fseed(0.5);
        let mut b = Prng::from_fseed(0.5);
        let x = a.next_f64();
        assert_eq!(x, b.next_f64());
        assert!((0.0..1.0).contains(&x));
        assert_ne!(a.next_u64(), Prng::from_fseed(0.25).next_u64());
    }
}
