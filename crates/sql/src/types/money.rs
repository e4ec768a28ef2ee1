//! `money` (OID 790): a 64-bit count of cents, with PostgreSQL 15's `cash_in` / `cash_out` in the
//! C locale (`lc_monetary = C`: symbol `$`, decimal point `.`, thousands separator `,`, two
//! fractional digits) and its casts to and from `integer`, `bigint` and `numeric`.
//!
//! A money value travels as [`Value::Int8`] (cents) typed [`DataType::Money`]; its binary format is
//! the same int8 as PostgreSQL's `cash_send`.

use pgxc_common::{PgError, SqlState};

use super::numeric::Numeric;
use super::{DataType, Value};

fn syntax(s: &str) -> PgError {
    PgError::new(
        SqlState::InvalidTextRepresentation,
        format!("invalid input syntax for type money: \"{s}\""),
    )
}

fn out_of_range(s: &str) -> PgError {
    PgError::new(
        SqlState::NumericValueOutOfRange,
        format!("value \"{s}\" is out of range for type money"),
    )
}

/// `cash_in`: `$1,234.56`, `-$1.50`, `(12.34)` (negative), `1.999` (rounded to `2.00`).
///
/// Errors: 22P02 for anything else, 22003 beyond ±92233720368547758.07.
pub fn parse_money(input: &str) -> Result<i64, PgError> {
    let b = input.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if b.get(i) == Some(&b'$') {
        i += 1;
    }
    skip_ws(&mut i);
    let mut negative = false;
    match b.get(i) {
        Some(b'-') | Some(b'(') => {
            negative = true;
            i += 1;
        }
        Some(b'+') => i += 1,
        _ => {}
    }
    skip_ws(&mut i);
    if b.get(i) == Some(&b'$') {
        i += 1;
    }
    skip_ws(&mut i);
    // Accumulate negatively so that the most negative value fits, as cash_in does.
    let mut value: i64 = 0;
    let mut seen_dot = false;
    let mut dec = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() && (!seen_dot || dec < 2) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_sub((c - b'0') as i64))
                .ok_or_else(|| out_of_range(input))?;
            if seen_dot {
                dec += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if c != b',' {
            break;
        }
        i += 1;
    }
    // Round half up on the next digit.
    if i < b.len() && b[i].is_ascii_digit() && b[i] >= b'5' {
        value = value.checked_sub(1).ok_or_else(|| out_of_range(input))?;
    }
    for _ in dec..2 {
        value = value.checked_mul(10).ok_or_else(|| out_of_range(input))?;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => {}
            b')' | b'+' | b'$' => {}
            b'-' => negative = true,
            _ => return Err(syntax(input)),
        }
        i += 1;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or_else(|| out_of_range(input))
    }
}

/// `cash_out`: `$1,234.56`, `-$0.50`.
pub fn format_money(cents: i64) -> String {
    let neg = cents < 0;
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (k, c) in units.chars().enumerate() {
        if k > 0 && (units.len() - k).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}${grouped}.{:02}", if neg { "-" } else { "" }, abs % 100)
}

/// Casts between `money` and `integer`/`bigint`/`numeric` (`int8_cash`, `numeric_cash`,
/// `cash_numeric`). Errors: 22003 out of range.
pub fn convert(v: Value, from: &DataType, to: &DataType) -> Result<Value, PgError> {
    let range = || PgError::new(SqlState::NumericValueOutOfRange, "money out of range");
    Ok(match (v, from, to) {
        (Value::Int8(c), DataType::Money, DataType::Numeric(_)) => {
            Value::Numeric(Numeric::Finite(bigdecimal::BigDecimal::new(c.into(), 2)))
        }
        (Value::Numeric(n), _, DataType::Money) => {
            let cents = n.mul(&Numeric::from_i64(100))?;
            Value::Int8(cents.to_int("bigint", i64::MIN, i64::MAX)?)
        }
        (Value::Int2(x), _, DataType::Money) => Value::Int8(x as i64 * 100),
        (Value::Int4(x), _, DataType::Money) => Value::Int8(x as i64 * 100),
        (Value::Int8(x), _, DataType::Money) => Value::Int8(x.checked_mul(100).ok_or_else(range)?),
        (v, _, _) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cash_in_and_out_match_pg15() {
        // Values from PostgreSQL 15.18 (lc_monetary = C).
        let cases = [
            ("-1234.5", "-$1,234.50"),
            ("(12.34)", "-$12.34"),
            ("$-1,234.567", "-$1,234.57"),
            (" $ 1 ", "$1.00"),
            ("1.", "$1.00"),
            (".5", "$0.50"),
            ("-$1", "-$1.00"),
            ("92233720368547758.07", "$92,233,720,368,547,758.07"),
        ];
        for (input, want) in cases {
            assert_eq!(
                format_money(parse_money(input).expect(input)),
                want,
                "{input}"
            );
        }
        for bad in ["1e3", "abc", "1.2.3", "(-1)"] {
            assert_eq!(
                parse_money(bad).unwrap_err().code,
                SqlState::InvalidTextRepresentation,
                "{bad}"
            );
        }
        assert_eq!(
            parse_money("92233720368547758.08").unwrap_err().code,
            SqlState::NumericValueOutOfRange
        );
        let n = Numeric::parse("1.995").expect("num");
        let m = convert(
            Value::Numeric(n),
            &DataType::Numeric(None),
            &DataType::Money,
        );
        assert_eq!(m.expect("cast"), Value::Int8(200));
    }
}
