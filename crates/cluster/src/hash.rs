//! The distribution hash: PostgreSQL 15's hash functions, bit for bit, fixed to little-endian.
//!
//! Postgres-XC placed a row of a `DISTRIBUTE BY HASH(col)` table with the column type's hash
//! function (`compute_hash`) and took it modulo the node count. pgxc does the same with PostgreSQL
//! 15's hash opclass support functions, reproduced here:
//!
//! | type | PostgreSQL function | rule |
//! |---|---|---|
//! | int2, int4, date, bool | `hashint2`/`hashint4`/`hashchar` | `hash_uint32(value as i32 as u32)` |
//! | int8, time, timestamp, timestamptz | `hashint8`/`time_hash`/`timestamp_hash` | fold the high word into the low word (`lo ^ hi`, or `lo ^ !hi` when negative), then `hash_uint32` |
//! | float4, float8 | `hashfloat4`/`hashfloat8` | ±0 → 0; NaN canonicalised; `hash_bytes` of the float8's 8 bytes |
//! | numeric | `hash_numeric` | NaN/±Infinity → 0; zero → `0xFFFF_FFFF`; else `hash_bytes` of the base-10000 digits without leading/trailing zero digits, XOR the weight; the sign is not hashed |
//! | text, varchar | `hashtext` (C collation) | `hash_bytes` of the UTF-8 bytes |
//! | char(n) | `hashbpchar` | trailing blanks ignored, then as text |
//! | bytea | `hashvarlena` | `hash_bytes` of the bytes |
//! | uuid | `uuid_hash` | `hash_bytes` of the 16 bytes |
//! | interval | `interval_hash` | `hashint8` of (months × 30 + days) × 86,400,000,000 + micros, truncated to 64 bits |
//!
//! `hash_bytes` is Bob Jenkins' lookup3 as in PostgreSQL's `src/common/hashfn.c`. PostgreSQL reads
//! multi-byte quantities (floats, numeric digits) in native byte order; pgxc fixes little-endian,
//! so the result equals PostgreSQL's on x86-64 and ARM64 and is the same on every platform.
//! The unit tests pin values computed by PostgreSQL 15.18 itself.
//!
//! json, jsonb and arrays have no distribution hash (Postgres-XC rejected them as distribution
//! columns too): [`hash_value`] returns `None`.

use bigdecimal::num_bigint::Sign;
use pgxc_sql::types::{Numeric, Value};

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn le32(k: &[u8]) -> u32 {
    u32::from_le_bytes([k[0], k[1], k[2], k[3]])
}

/// PostgreSQL's `hash_bytes` (`hash_any`): lookup3 over `k`, little-endian.
pub fn hash_bytes(k: &[u8]) -> u32 {
    let init = 0x9e37_79b9u32
        .wrapping_add(k.len() as u32)
        .wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(le32(&rest[0..4]));
        b = b.wrapping_add(le32(&rest[4..8]));
        c = c.wrapping_add(le32(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    // The last 0..=11 bytes; the lowest byte of `c` is reserved for the length.
    let byte = |i: usize| rest[i] as u32;
    let n = rest.len();
    if n >= 11 {
        c = c.wrapping_add(byte(10) << 24);
    }
    if n >= 10 {
        c = c.wrapping_add(byte(9) << 16);
    }
    if n >= 9 {
        c = c.wrapping_add(byte(8) << 8);
    }
    if n >= 8 {
        b = b.wrapping_add(byte(7) << 24);
    }
    if n >= 7 {
        b = b.wrapping_add(byte(6) << 16);
    }
    if n >= 6 {
        b = b.wrapping_add(byte(5) << 8);
    }
    if n >= 5 {
        b = b.wrapping_add(byte(4));
    }
    if n >= 4 {
        a = a.wrapping_add(byte(3) << 24);
    }
    if n >= 3 {
        a = a.wrapping_add(byte(2) << 16);
    }
    if n >= 2 {
        a = a.wrapping_add(byte(1) << 8);
    }
    if n >= 1 {
        a = a.wrapping_add(byte(0));
    }
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// PostgreSQL's `hash_bytes_uint32` (`hash_uint32`): lookup3 of one 32-bit word.
pub fn hash_uint32(k: u32) -> u32 {
    let init = 0x9e37_79b9u32.wrapping_add(4).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init.wrapping_add(k), init, init);
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// `hashint4` (also `hashint2`, `hashchar` for bool, date's `hashint4`).
pub fn hash_int4(v: i32) -> u32 {
    hash_uint32(v as u32)
}

/// `hashint8`: equal int4 and int8 values hash alike.
pub fn hash_int8(v: i64) -> u32 {
    let lo = v as u32;
    let hi = (v >> 32) as u32;
    hash_uint32(if v >= 0 { lo ^ hi } else { lo ^ !hi })
}

/// `hashfloat8` (and `hashfloat4`, which widens to float8 first).
pub fn hash_float8(v: f64) -> u32 {
    if v == 0.0 {
        return 0;
    }
    let v = if v.is_nan() { f64::NAN } else { v };
    hash_bytes(&v.to_le_bytes())
}

/// `hash_numeric`: see the module table. The sign is not part of the hash (as PostgreSQL).
pub fn hash_numeric(n: &Numeric) -> u32 {
    let Numeric::Finite(d) = n else {
        return 0;
    };
    let (unscaled, scale) = d.as_bigint_and_exponent();
    if unscaled.sign() == Sign::NoSign {
        return u32::MAX;
    }
    let digits = unscaled.magnitude().to_string();
    // Split into integer and fraction digit strings at the decimal point.
    let (int_part, frac_part): (String, String) = if scale <= 0 {
        let mut s = digits.clone();
        s.extend(std::iter::repeat_n('0', (-scale) as usize));
        (s, String::new())
    } else {
        let scale = scale as usize;
        if digits.len() > scale {
            let (i, f) = digits.split_at(digits.len() - scale);
            (i.to_string(), f.to_string())
        } else {
            let mut f = "0".repeat(scale - digits.len());
            f.push_str(&digits);
            (String::new(), f)
        }
    };
    // Base-10000 groups aligned on the decimal point.
    let pad_int = (4 - int_part.len() % 4) % 4;
    let int_aligned = format!("{}{}", "0".repeat(pad_int), int_part);
    let pad_frac = (4 - frac_part.len() % 4) % 4;
    let frac_aligned = format!("{}{}", frac_part, "0".repeat(pad_frac));
    let mut groups: Vec<i16> = Vec::new();
    for chunk in int_aligned
        .as_bytes()
        .chunks(4)
        .chain(frac_aligned.as_bytes().chunks(4))
    {
        let mut g: i16 = 0;
        for &ch in chunk {
            g = g * 10 + (ch - b'0') as i16;
        }
        groups.push(g);
    }
    let mut weight: i32 = (int_aligned.len() / 4) as i32 - 1;
    let first = groups.iter().position(|&g| g != 0).unwrap_or(groups.len());
    weight -= first as i32;
    let last = groups
        .iter()
        .rposition(|&g| g != 0)
        .map_or(first, |p| p + 1);
    let bytes: Vec<u8> = groups[first..last]
        .iter()
        .flat_map(|g| g.to_le_bytes())
        .collect();
    hash_bytes(&bytes) ^ (weight as u32)
}

/// The distribution hash of one value, or `None` for NULL (XC sends NULL keys to the first node
/// of the list, see [`crate::locator`]) and for types without a hash (json, jsonb, arrays).
pub fn hash_value(v: &Value) -> Option<u32> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => hash_int4(*b as i32),
        Value::Int2(i) => hash_int4(*i as i32),
        Value::Int4(i) => hash_int4(*i),
        Value::Int8(i) => hash_int8(*i),
        Value::Float4(f) => hash_float8(*f as f64),
        Value::Float8(f) => hash_float8(*f),
        Value::Numeric(n) => hash_numeric(n),
        // char(n) values are stored blank-padded: hashbpchar ignores trailing blanks; for text and
        // varchar trailing blanks are significant. The caller passes the column's type through
        // `hash_value_typed` when it matters.
        Value::Text(s) => hash_bytes(s.as_bytes()),
        Value::Bytea(b) => hash_bytes(b),
        Value::Date(d) => hash_int4(*d),
        Value::Time(t) => hash_int8(*t),
        Value::Timestamp(t) | Value::Timestamptz(t) => hash_int8(*t),
        Value::Interval(iv) => {
            let days = iv.months as i128 * 30 + iv.days as i128;
            let span = days * 86_400_000_000 + iv.micros as i128;
            hash_int8(span as i64)
        }
        Value::Uuid(u) => hash_bytes(u),
        Value::Json(_) | Value::Jsonb(_) | Value::Array(_) => return None,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// [`hash_value`] for a value of a `char(n)` column: trailing blanks do not count (`hashbpchar`).
pub fn hash_bpchar(s: &str) -> u32 {
    hash_bytes(s.trim_end_matches(' ').as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn pg(v: i64) -> u32 {
        v as i32 as u32
    }

    fn num(s: &str) -> Numeric {
        Numeric::Finite(bigdecimal::BigDecimal::from_str(s).expect("literal"))
    }

    /// Values printed by PostgreSQL 15.18 (`SELECT hashint4(0), ...`).
    #[test]
    fn matches_postgresql_15() {
        assert_eq!(hash_int4(0), pg(-272711505));
        assert_eq!(hash_int4(1), pg(-1905060026));
        assert_eq!(hash_int4(-1), pg(385747274));
        assert_eq!(hash_int4(123456789), pg(524883300));
        assert_eq!(hash_int8(1), pg(-1905060026));
        assert_eq!(hash_int8(5_000_000_000), pg(-694934712));
        assert_eq!(hash_int8(-1), pg(385747274));
        assert_eq!(hash_int4(7), pg(-978793473));
        assert_eq!(hash_bytes(b"abc"), pg(-785388649));
        assert_eq!(hash_bytes(b""), pg(-1477818771));
        assert_eq!(hash_bytes(b"pgxc distribution"), pg(1467143895));
        assert_eq!(hash_bpchar("abc  "), pg(-785388649));
        assert_eq!(hash_numeric(&num("1.50")), pg(692967894));
        assert_eq!(hash_numeric(&num("0")), pg(-1));
        assert_eq!(hash_numeric(&num("-12345.678")), pg(573919094));
        assert_eq!(hash_numeric(&num("1.5")), pg(692967894));
        // date '2024-01-15' is day 8780 after 2000-01-01.
        assert_eq!(hash_value(&Value::Date(8780)), Some(pg(189174452)));
        // timestamp '2024-01-15 10:30:00'
        let ts = 8780i64 * 86_400_000_000 + (10 * 3600 + 30 * 60) * 1_000_000;
        assert_eq!(hash_value(&Value::Timestamp(ts)), Some(pg(1687517796)));
        let u = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        assert_eq!(hash_value(&Value::Uuid(u)), Some(pg(1154666245)));
        assert_eq!(hash_float8(1.5), pg(630860146));
        assert_eq!(hash_float8(-0.0), 0);
        assert_eq!(hash_float8(0.0), 0);
        for (s, h) in [
            ("123456789", 1014187944),
            ("1234567890", -373166526),
            ("12345678901", 1650060602),
            ("123456789012", -2102057603),
            ("abcdefghijklmnopqrstuvwx", 1251586959),
            ("é日本", -681415742),
        ] {
            assert_eq!(hash_bytes(s.as_bytes()), pg(h), "{s}");
        }
        assert_eq!(hash_numeric(&num("12345678.9")), pg(-1037569625));
        assert_eq!(hash_numeric(&num("0.000123")), pg(-1465604073));
        assert_eq!(hash_numeric(&num("100000000")), pg(1324868426));
        assert_eq!(hash_float8(f64::NAN), pg(-1275764840));
        assert_eq!(hash_value(&Value::Float4(2.5)), Some(pg(473603155)));
        let iv = pgxc_sql::types::Interval {
            months: 1,
            days: 2,
            micros: 3 * 3_600_000_000,
        };
        assert_eq!(hash_value(&Value::Interval(iv)), Some(pg(-2088581774)));
    }

    #[test]
    fn equal_values_of_different_integer_types_hash_alike() {
        for v in [-70000i64, -1, 0, 1, 42, 65535, i32::MAX as i64] {
            assert_eq!(hash_int8(v), hash_int4(v as i32));
        }
        assert_eq!(hash_float8(2.5f32 as f64), hash_float8(2.5));
        assert_eq!(hash_numeric(&num("100")), hash_numeric(&num("100.000")));
        assert_eq!(hash_numeric(&num("0.0001")), hash_numeric(&num("0.00010")));
    }
}
