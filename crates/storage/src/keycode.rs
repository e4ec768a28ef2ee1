//! Order-preserving ("memcomparable") encoding of index keys: the byte-wise order of encoded
//! keys equals PostgreSQL's default B-tree order of the values (ASC, NULLS LAST), and the
//! encoding is prefix-free, as [`crate::mvcc::IndexKey`] requires.
//!
//! Each datum starts with a tag byte; a multi-column key is the concatenation of its columns.
//! The SQL engine may add encodings for further types as long as they keep both properties.

/// One key column value.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyDatum {
    /// SQL NULL: sorts after every value (NULLS LAST).
    Null,
    /// bool: false < true.
    Bool(bool),
    /// Any integer type (int2/int4/int8), as i64.
    Int(i64),
    /// float4/float8, as f64: -Inf < ... < -0 = 0 < ... < Inf < NaN (PostgreSQL orders NaN above
    /// every other value and equal to itself).
    Float(f64),
    /// text/varchar/bytea with "C" collation: byte-wise order.
    Bytes(Vec<u8>),
}

const TAG_VALUE: u8 = 0x01;
const TAG_NULL: u8 = 0x02;

/// Append the encoding of `d` to `out`.
pub fn encode_datum(d: &KeyDatum, out: &mut Vec<u8>) {
    match d {
        KeyDatum::Null => out.push(TAG_NULL),
        KeyDatum::Bool(b) => {
            out.push(TAG_VALUE);
            out.push(u8::from(*b));
        }
        KeyDatum::Int(i) => {
            out.push(TAG_VALUE);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        KeyDatum::Float(f) => {
            out.push(TAG_VALUE);
            let f = if f.is_nan() {
                f64::NAN
            } else if *f == 0.0 {
                0.0
            } else {
                *f
            };
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        KeyDatum::Bytes(b) => {
            out.push(TAG_VALUE);
            // 0x00 is escaped as 0x00 0xff; the terminator is 0x00 0x01, which sorts below any
            // escaped byte, so a shorter string sorts first and no encoding prefixes another.
            for &byte in b {
                out.push(byte);
                if byte == 0 {
                    out.push(0xff);
                }
            }
            out.extend_from_slice(&[0x00, 0x01]);
        }
    }
}

/// Encode a (multi-column) key. Returns the bytes and whether any column is NULL.
pub fn encode_key(cols: &[KeyDatum]) -> crate::mvcc::IndexKey {
    let mut bytes = Vec::new();
    for c in cols {
        encode_datum(c, &mut bytes);
    }
    crate::mvcc::IndexKey {
        bytes,
        has_null: cols.contains(&KeyDatum::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(d: &KeyDatum) -> Vec<u8> {
        let mut v = Vec::new();
        encode_datum(d, &mut v);
        v
    }

    #[test]
    fn nulls_last_and_float_order() {
        assert!(enc(&KeyDatum::Int(i64::MAX)) < enc(&KeyDatum::Null));
        let fs = [
            f64::NEG_INFINITY,
            -1.5,
            -0.0,
            0.0,
            2.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for w in fs.windows(2) {
            assert!(
                enc(&KeyDatum::Float(w[0])) <= enc(&KeyDatum::Float(w[1])),
                "{w:?}"
            );
        }
        assert_eq!(enc(&KeyDatum::Float(-0.0)), enc(&KeyDatum::Float(0.0)));
    }

    proptest! {
        #[test]
        fn ints_keep_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc(&KeyDatum::Int(a)).cmp(&enc(&KeyDatum::Int(b))));
        }

        #[test]
        fn byte_strings_keep_order_and_are_prefix_free(a: Vec<u8>, b: Vec<u8>) {
            let (ea, eb) = (enc(&KeyDatum::Bytes(a.clone())), enc(&KeyDatum::Bytes(b.clone())));
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            if a != b {
                prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
            }
        }

        #[test]
        fn two_column_keys_order_lexicographically(a: (i64, Vec<u8>), b: (i64, Vec<u8>)) {
            let k = |x: &(i64, Vec<u8>)| encode_key(&[KeyDatum::Int(x.0), KeyDatum::Bytes(x.1.clone())]).bytes;
            prop_assert_eq!(a.cmp(&b), k(&a).cmp(&k(&b)));
        }
    }
}
