//! PostgreSQL's binary send/receive formats (the `*send` / `*recv` functions), as used by the
//! extended query protocol with format code 1.
//!
//! [`from_binary`] never panics: short or malformed input is 08P01 `insufficient data left in
//! message` or 22P03 `incorrect binary data format`, as in PostgreSQL.

use pgxc_common::{PgError, SqlState};

use super::datetime;
use super::numeric::Numeric;
use super::text::check_length;
use super::{DataType, Interval, Value};
use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::BigDecimal;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// The binary (`*send`) form of a non-NULL value of type `ty` (NULL encodes as empty; the protocol
/// sends NULL as length -1, which is the caller's job).
pub fn to_binary(v: &Value, ty: &DataType) -> Vec<u8> {
    match v {
        Value::Null => Vec::new(),
        Value::Bool(b) => vec![*b as u8],
        Value::Int2(x) => x.to_be_bytes().to_vec(),
        Value::Int4(x) => x.to_be_bytes().to_vec(),
        Value::Int8(x) => x.to_be_bytes().to_vec(),
        Value::Float4(x) => x.to_be_bytes().to_vec(),
        Value::Float8(x) => x.to_be_bytes().to_vec(),
        Value::Numeric(n) => numeric_send(n),
        Value::Text(s) => match ty {
            DataType::Char(n) => {
                let len = s.chars().count();
                let mut s = s.clone();
                if len < *n as usize {
                    s.extend(std::iter::repeat_n(' ', *n as usize - len));
                }
                s.into_bytes()
            }
            DataType::Inet | DataType::Cidr => {
                // inet_send: family (2 = IPv4, 3 = IPv6), bits, is_cidr, length, address.
                let cidr = *ty == DataType::Cidr;
                match super::inet::parse_inet(s, cidr) {
                    Ok(n) => {
                        let len = if n.family == 4 { 4 } else { 16 };
                        let family = if n.family == 4 { 2 } else { 3 };
                        let mut out = vec![family, n.bits, cidr as u8, len as u8];
                        out.extend_from_slice(&n.addr[..len]);
                        out
                    }
                    Err(_) => s.as_bytes().to_vec(),
                }
            }
            _ => s.as_bytes().to_vec(),
        },
        Value::Bytea(b) => b.clone(),
        Value::Date(d) => d.to_be_bytes().to_vec(),
        Value::Time(t) | Value::Timestamp(t) | Value::Timestamptz(t) => t.to_be_bytes().to_vec(),
        Value::Timetz(t, off) => {
            // timetz_send: the time, then the zone in seconds *west* of UTC.
            let mut out = t.to_be_bytes().to_vec();
            out.extend_from_slice(&off.wrapping_neg().to_be_bytes());
            out
        }
        Value::Interval(iv) => {
            let mut out = Vec::with_capacity(16);
            out.extend_from_slice(&iv.micros.to_be_bytes());
            out.extend_from_slice(&iv.days.to_be_bytes());
            out.extend_from_slice(&iv.months.to_be_bytes());
            out
        }
        Value::Uuid(u) => u.to_vec(),
        Value::Json(s) => s.as_bytes().to_vec(),
        Value::Jsonb(s) => {
            let mut out = Vec::with_capacity(s.len() + 1);
            out.push(1);
            out.extend_from_slice(s.as_bytes());
            out
        }
        Value::Array(items) => {
            let elem = ty.element().cloned().unwrap_or(DataType::Text);
            let mut out = Vec::new();
            // A multidimensional array is nested values: send its dimensions and the elements
            // flattened in row-major order, as array_send.
            let mut dims = Vec::new();
            let mut level = items;
            while !level.is_empty() {
                dims.push(level.len() as i32);
                match &level[0] {
                    Value::Array(inner) => level = inner,
                    _ => break,
                }
            }
            let mut flat = Vec::new();
            flatten_array(items, &mut flat);
            let has_nulls = flat.iter().any(|v| v.is_null());
            out.extend_from_slice(&(dims.len() as i32).to_be_bytes());
            out.extend_from_slice(&(has_nulls as i32).to_be_bytes());
            out.extend_from_slice(&elem.oid().to_be_bytes());
            for d in &dims {
                out.extend_from_slice(&d.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
            }
            for it in flat {
                if it.is_null() {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                } else {
                    let b = to_binary(it, &elem);
                    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    out.extend_from_slice(&b);
                }
            }
            out
        }
    }
}

/// The leaf elements of a (possibly nested) array value, in row-major order.
fn flatten_array<'v>(items: &'v [Value], out: &mut Vec<&'v Value>) {
    for it in items {
        match it {
            Value::Array(inner) => flatten_array(inner, out),
            v => out.push(v),
        }
    }
}

/// `numeric_send`: ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
fn numeric_send(n: &Numeric) -> Vec<u8> {
    let header = |nd: i16, w: i16, sign: u16, ds: i16| {
        let mut v = Vec::new();
        v.extend_from_slice(&nd.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&ds.to_be_bytes());
        v
    };
    let d = match n {
        Numeric::NaN => return header(0, 0, NUMERIC_NAN, 0),
        // PostgreSQL sends dscale 32 for the infinities (the bits NUMERIC_DSCALE reads from the
        // special header), 0 for NaN.
        Numeric::PosInf => return header(0, 0, NUMERIC_PINF, 32),
        Numeric::NegInf => return header(0, 0, NUMERIC_NINF, 32),
        Numeric::Finite(d) => d,
    };
    let (int, scale) = d.as_bigint_and_exponent();
    let scale = scale.max(0);
    let sign = if int.sign() == Sign::Minus {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    if int.sign() == Sign::NoSign {
        return header(0, 0, NUMERIC_POS, scale as i16);
    }
    // Align the decimal point on a base-10000 boundary, then split into base-10000 digits.
    let s4 = (scale + 3) / 4 * 4;
    let mut mag = int.magnitude().clone()
        * bigdecimal::num_bigint::BigUint::from(10u32).pow((s4 - scale) as u32);
    let mut groups: Vec<i16> = Vec::new(); // least significant first
    let base = bigdecimal::num_bigint::BigUint::from(10000u32);
    while mag.bits() > 0 {
        let g = (&mag % &base).iter_u32_digits().next().unwrap_or(0);
        groups.push(g as i16);
        mag /= &base;
    }
    let weight = groups.len() as i64 - 1 - s4 / 4;
    groups.reverse();
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let mut out = header(groups.len() as i16, weight as i16, sign, scale as i16);
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

fn short() -> PgError {
    PgError::new(
        SqlState::ProtocolViolation,
        "insufficient data left in message",
    )
}

fn bad_format() -> PgError {
    PgError::new(
        SqlState::InvalidBinaryRepresentation,
        "incorrect binary data format",
    )
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PgError> {
        let end = self.i.checked_add(n).ok_or_else(short)?;
        let s = self.b.get(self.i..end).ok_or_else(short)?;
        self.i = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], PgError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn i16(&mut self) -> Result<i16, PgError> {
        Ok(i16::from_be_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Result<i32, PgError> {
        Ok(i32::from_be_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, PgError> {
        Ok(i64::from_be_bytes(self.arr()?))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.b[self.i.min(self.b.len())..];
        self.i = self.b.len();
        s
    }
    fn done(&self) -> Result<(), PgError> {
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(bad_format())
        }
    }
}

fn utf8(b: &[u8]) -> Result<String, PgError> {
    String::from_utf8(b.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bad = b.get(at).copied().unwrap_or(0);
        PgError::new(
            SqlState::CharacterNotInRepertoire,
            format!("invalid byte sequence for encoding \"UTF8\": 0x{bad:02x}"),
        )
    })
}

/// Decode the binary (`*recv`) form of a value of type `ty`.
pub fn from_binary(ty: &DataType, bytes: &[u8]) -> Result<Value, PgError> {
    let mut r = Reader { b: bytes, i: 0 };
    let v = match ty {
        DataType::Bool => Value::Bool(r.arr::<1>()?[0] != 0),
        DataType::Int2 => Value::Int2(r.i16()?),
        DataType::Int4 => Value::Int4(r.i32()?),
        DataType::Int8 | DataType::Money => Value::Int8(r.i64()?),
        DataType::Float4 => Value::Float4(f32::from_be_bytes(r.arr()?)),
        DataType::Float8 => Value::Float8(f64::from_be_bytes(r.arr()?)),
        DataType::Numeric(tm) => {
            let n = numeric_recv(&mut r)?;
            Value::Numeric(match tm {
                Some((p, s)) => n.apply_typmod(*p, *s)?,
                None => n,
            })
        }
        DataType::Text
        | DataType::Unknown
        | DataType::Varchar(None)
        | DataType::Name
        | DataType::QChar => Value::Text(utf8(r.rest())?),
        DataType::Inet | DataType::Cidr => {
            let b = r.rest();
            let cidr = *ty == DataType::Cidr;
            let bad = || {
                PgError::new(
                    SqlState::InvalidBinaryRepresentation,
                    format!("invalid external \"{}\" value", ty.typname()),
                )
            };
            let (family, bits, len) = match b {
                [2, bits, _, 4, ..] if b.len() == 8 && *bits <= 32 => (4, *bits, 4),
                [3, bits, _, 16, ..] if b.len() == 20 && *bits <= 128 => (6, *bits, 16),
                _ => return Err(bad()),
            };
            let mut addr = [0u8; 16];
            addr[..len].copy_from_slice(&b[4..4 + len]);
            let n = super::inet::Inet { family, bits, addr };
            Value::Text(super::inet::format_inet(&n, cidr))
        }
        DataType::Varchar(Some(n)) => Value::Text(check_length(&utf8(r.rest())?, *n, ty)?),
        DataType::Char(n) => {
            let s = check_length(&utf8(r.rest())?, *n, ty)?;
            let len = s.chars().count();
            let mut s = s;
            if len < *n as usize {
                s.extend(std::iter::repeat_n(' ', *n as usize - len));
            }
            Value::Text(s)
        }
        DataType::Bytea => Value::Bytea(r.rest().to_vec()),
        DataType::Date => {
            let d = r.i32()?;
            if d != datetime::DATE_NEG_INF
                && d != datetime::DATE_POS_INF
                && !(-datetime::POSTGRES_EPOCH_JDATE
                    ..2_147_483_494 - datetime::POSTGRES_EPOCH_JDATE)
                    .contains(&d)
            {
                return Err(PgError::new(
                    SqlState::DatetimeFieldOverflow,
                    "date out of range",
                ));
            }
            Value::Date(d)
        }
        DataType::Time => {
            let t = r.i64()?;
            if !(0..=datetime::USECS_PER_DAY).contains(&t) {
                return Err(PgError::new(
                    SqlState::DatetimeFieldOverflow,
                    "time out of range",
                ));
            }
            Value::Time(t)
        }
        DataType::Timetz => {
            let t = r.i64()?;
            let west = r.i32()?;
            if !(0..=datetime::USECS_PER_DAY).contains(&t) || !(-57_600..=57_600).contains(&west) {
                return Err(PgError::new(
                    SqlState::DatetimeFieldOverflow,
                    "time out of range",
                ));
            }
            Value::Timetz(t, -west)
        }
        DataType::Timestamp | DataType::Timestamptz => {
            let t = r.i64()?;
            let ok = t == datetime::TS_NEG_INF
                || t == datetime::TS_POS_INF
                || (-211_813_488_000_000_000..9_223_371_331_200_000_000).contains(&t);
            if !ok {
                return Err(PgError::new(
                    SqlState::DatetimeFieldOverflow,
                    "timestamp out of range",
                ));
            }
            if *ty == DataType::Timestamp {
                Value::Timestamp(t)
            } else {
                Value::Timestamptz(t)
            }
        }
        DataType::Interval => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        DataType::Uuid => Value::Uuid(r.arr()?),
        DataType::Json => Value::Json(super::text::parse_json(&utf8(r.rest())?)?),
        DataType::Jsonb => {
            let version = r.arr::<1>()?[0];
            if version != 1 {
                return Err(PgError::new(
                    SqlState::InvalidBinaryRepresentation,
                    format!("unsupported jsonb version number {version}"),
                ));
            }
            Value::Jsonb(super::text::parse_jsonb(&utf8(r.rest())?)?)
        }
        DataType::Array(elem) => array_recv(&mut r, elem)?,
    };
    r.done()?;
    Ok(v)
}

fn numeric_recv(r: &mut Reader<'_>) -> Result<Numeric, PgError> {
    let ndigits = r.i16()?;
    if ndigits < 0 || ndigits as i64 > 131072 / 4 + 1000 {
        return Err(PgError::new(
            SqlState::InvalidBinaryRepresentation,
            "invalid length in external \"numeric\" value",
        ));
    }
    let weight = r.i16()? as i64;
    let sign = r.i16()? as u16;
    let dscale = r.i16()?;
    match sign {
        NUMERIC_NAN => return Ok(Numeric::NaN),
        NUMERIC_PINF => return Ok(Numeric::PosInf),
        NUMERIC_NINF => return Ok(Numeric::NegInf),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => {
            return Err(PgError::new(
                SqlState::InvalidBinaryRepresentation,
                "invalid sign in external \"numeric\" value",
            ))
        }
    }
    if !(0..=0x3FFF).contains(&dscale) {
        return Err(PgError::new(
            SqlState::InvalidBinaryRepresentation,
            "invalid scale in external \"numeric\" value",
        ));
    }
    let mut int = BigInt::from(0);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..10000).contains(&d) {
            return Err(PgError::new(
                SqlState::InvalidBinaryRepresentation,
                "invalid digit in external \"numeric\" value",
            ));
        }
        int = int * 10000u32 + BigInt::from(d);
    }
    if sign == NUMERIC_NEG {
        int = -int;
    }
    // value = int * 10000^(weight - ndigits + 1)
    let exp4 = weight - ndigits as i64 + 1;
    let d = BigDecimal::new(int, -exp4 * 4);
    // Round (half away from zero) to the display scale, as numeric_recv does.
    let n = Numeric::Finite(d).round(dscale as i32);
    Ok(n)
}

fn array_recv(r: &mut Reader<'_>, elem: &DataType) -> Result<Value, PgError> {
    let ndim = r.i32()?;
    let flags = r.i32()?;
    let elem_oid = r.i32()? as u32;
    if !(0..=6).contains(&ndim) {
        return Err(PgError::new(
            SqlState::InvalidBinaryRepresentation,
            format!("invalid number of dimensions: {ndim}"),
        ));
    }
    if flags != 0 && flags != 1 {
        return Err(PgError::new(
            SqlState::InvalidBinaryRepresentation,
            "invalid array flags",
        ));
    }
    if elem_oid != elem.oid() {
        return Err(PgError::new(
            SqlState::DatatypeMismatch,
            format!(
                "binary data has array element type {elem_oid} instead of expected {}",
                elem.oid()
            ),
        ));
    }
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim > 1 {
        // TODO(types): multidimensional arrays.
        return Err(PgError::new(
            SqlState::FeatureNotSupported,
            "multidimensional arrays are not supported yet",
        ));
    }
    let n = r.i32()?;
    let _lbound = r.i32()?;
    if n < 0 {
        return Err(PgError::new(
            SqlState::InvalidBinaryRepresentation,
            "invalid array dimensions",
        ));
    }
    let mut items = Vec::with_capacity((n as usize).min(r.b.len() / 4 + 1));
    for _ in 0..n {
        let len = r.i32()?;
        if len == -1 {
            items.push(Value::Null);
            continue;
        }
        if len < 0 {
            return Err(bad_format());
        }
        let b = r.take(len as usize)?;
        items.push(from_binary(elem, b)?);
    }
    Ok(Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value, ty: DataType) {
        let b = to_binary(&v, &ty);
        assert_eq!(from_binary(&ty, &b).expect("decode"), v, "{ty:?}");
    }

    #[test]
    fn numeric_wire_format_matches_pg() {
        // SELECT numeric_send(1.50): 0002 0000 0000 0002 0001 1388
        let n = Numeric::parse("1.50").expect("n");
        assert_eq!(
            to_binary(&Value::Numeric(n), &DataType::Numeric(None)),
            [0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]
        );
        // numeric_send(-12345.678): 0003 0001 4000 0003 0001 0929 1a7c
        let n = Numeric::parse("-12345.678").expect("n");
        assert_eq!(
            to_binary(&Value::Numeric(n), &DataType::Numeric(None)),
            [0, 3, 0, 1, 0x40, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        // numeric_send(0.00012): 0002 ffff 0000 0005 0001 07d0
        let n = Numeric::parse("0.00012").expect("n");
        assert_eq!(
            to_binary(&Value::Numeric(n), &DataType::Numeric(None)),
            [0, 2, 0xff, 0xff, 0, 0, 0, 5, 0, 1, 0x07, 0xd0]
        );
        // numeric_send(0.000): 0000 0000 0000 0003
        let n = Numeric::parse("0.000").expect("n");
        assert_eq!(
            to_binary(&Value::Numeric(n), &DataType::Numeric(None)),
            [0, 0, 0, 0, 0, 0, 0, 3]
        );
        // numeric_send(1000000): 0001 0001 0000 0000 0064
        let n = Numeric::parse("1000000").expect("n");
        assert_eq!(
            to_binary(&Value::Numeric(n), &DataType::Numeric(None)),
            [0, 1, 0, 1, 0, 0, 0, 0, 0, 0x64]
        );
        for s in [
            "0",
            "0.000",
            "1.50",
            "-12345.678",
            "0.00012",
            "1e20",
            "NaN",
            "-Infinity",
            "123456789.987654321",
        ] {
            roundtrip(
                Value::Numeric(Numeric::parse(s).expect("n")),
                DataType::Numeric(None),
            );
        }
    }

    #[test]
    fn roundtrips_and_bad_input() {
        roundtrip(Value::Int4(-7), DataType::Int4);
        roundtrip(Value::Float8(0.1), DataType::Float8);
        roundtrip(Value::Text("héllo".into()), DataType::Text);
        roundtrip(
            Value::Interval(Interval {
                months: 14,
                days: 3,
                micros: 14706000000,
            }),
            DataType::Interval,
        );
        roundtrip(Value::Jsonb("{\"a\": 1}".into()), DataType::Jsonb);
        roundtrip(
            Value::Array(vec![Value::Int4(1), Value::Null, Value::Int4(3)]),
            DataType::Array(Box::new(DataType::Int4)),
        );
        roundtrip(
            Value::Array(vec![]),
            DataType::Array(Box::new(DataType::Text)),
        );
        let e = from_binary(&DataType::Int4, &[0, 1]).unwrap_err();
        assert_eq!(e.code, SqlState::ProtocolViolation);
        let e = from_binary(&DataType::Int4, &[0, 0, 0, 1, 2]).unwrap_err();
        assert_eq!(e.code, SqlState::InvalidBinaryRepresentation);
        let e = from_binary(&DataType::Text, &[0xff]).unwrap_err();
        assert_eq!(
            e.message,
            "invalid byte sequence for encoding \"UTF8\": 0xff"
        );
        // Fuzz-ish: arbitrary bytes never panic.
        let tys = [
            DataType::Numeric(None),
            DataType::Array(Box::new(DataType::Int4)),
            DataType::Jsonb,
            DataType::Interval,
            DataType::Date,
        ];
        let mut seed = 12345u64;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            for t in &tys {
                let _ = from_binary(t, &bytes);
            }
        }
    }
}
