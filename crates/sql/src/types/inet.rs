//! `inet` (OID 869) and `cidr` (OID 650): IPv4/IPv6 host or network addresses with a prefix
//! length, with PostgreSQL 15's text input/output and the containment operators `<<` / `>>`.
//!
//! Values travel as [`Value::Text`] in their canonical output form (`10.0.0.0/8`, `::1`), typed
//! [`DataType::Inet`] / [`DataType::Cidr`]; operators parse them back.

use std::net::{Ipv4Addr, Ipv6Addr};

use pgxc_common::{PgError, SqlState};
use serde::{Deserialize, Serialize};

use super::Value;

/// An address and its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inet {
    /// 4 or 6.
    pub family: u8,
    /// The prefix length (0..=32 or 0..=128).
    pub bits: u8,
    /// The address, IPv4 in the first four bytes.
    pub addr: [u8; 16],
}

/// The containment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InetOp {
    /// `a << b`: a is strictly contained by b.
    ContainedBy,
    /// `a >> b`: a strictly contains b.
    Contains,
}

fn bad(ty: &str, s: &str) -> PgError {
    PgError::new(
        SqlState::InvalidTextRepresentation,
        format!("invalid input syntax for type {ty}: \"{s}\""),
    )
}

impl Inet {
    fn max_bits(&self) -> u8 {
        if self.family == 4 {
            32
        } else {
            128
        }
    }

    fn len(&self) -> usize {
        if self.family == 4 {
            4
        } else {
            16
        }
    }

    /// Whether the first `bits` bits of the two addresses are equal.
    fn prefix_eq(&self, other: &Inet, bits: u8) -> bool {
        let full = (bits / 8) as usize;
        if self.addr[..full] != other.addr[..full] {
            return false;
        }
        let rest = bits % 8;
        if rest == 0 {
            return true;
        }
        let mask = 0xffu8 << (8 - rest);
        self.addr[full] & mask == other.addr[full] & mask
    }

    /// Zero the bits right of the prefix (`network()`).
    pub fn clear_host_bits(&mut self) {
        for i in 0..self.len() {
            let lo = i as u32 * 8;
            let keep = (self.bits as u32).saturating_sub(lo).min(8);
            let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
            self.addr[i] &= mask;
        }
    }

    /// Whether bits right of the prefix are set (invalid in a `cidr`).
    fn has_host_bits(&self) -> bool {
        let mut zero = *self;
        zero.clear_host_bits();
        zero.addr != self.addr
    }
}

/// `inet_in` (`cidr` = false) or `cidr_in` (true).
///
/// Errors: 22P02 for a malformed address or mask, and for a `cidr` with bits set right of its
/// mask.
pub fn parse_inet(s: &str, cidr: bool) -> Result<Inet, PgError> {
    let ty = if cidr { "cidr" } else { "inet" };
    let t = s.trim();
    let (a, mask) = match t.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (t, None),
    };
    let mut v = if a.contains(':') {
        let ip: Ipv6Addr = a.parse().map_err(|_| bad(ty, s))?;
        Inet {
            family: 6,
            bits: 128,
            addr: ip.octets(),
        }
    } else {
        // cidr accepts abbreviated IPv4 networks ("10/8", "192.168/16").
        let parts: Vec<&str> = a.split('.').collect();
        if parts.is_empty() || parts.len() > 4 || (!cidr && parts.len() != 4) {
            return Err(bad(ty, s));
        }
        let mut addr = [0u8; 16];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(ty, s));
            }
            addr[i] = p.parse().map_err(|_| bad(ty, s))?;
        }
        let default_bits = if cidr && parts.len() < 4 {
            (parts.len() * 8) as u8
        } else {
            32
        };
        Inet {
            family: 4,
            bits: default_bits,
            addr,
        }
    };
    if let Some(m) = mask {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) || m.len() > 3 {
            return Err(bad(ty, s));
        }
        let bits: u8 = m.parse().map_err(|_| bad(ty, s))?;
        if bits > v.max_bits() {
            return Err(bad(ty, s));
        }
        v.bits = bits;
    }
    if cidr && v.has_host_bits() {
        return Err(PgError::new(
            SqlState::InvalidTextRepresentation,
            format!("invalid cidr value: \"{s}\""),
        ));
    }
    Ok(v)
}

/// `inet_out` / `cidr_out`: the mask is shown for a `cidr` always, for an `inet` only when it is
/// not the full length.
pub fn format_inet(v: &Inet, cidr: bool) -> String {
    let addr = if v.family == 4 {
        Ipv4Addr::new(v.addr[0], v.addr[1], v.addr[2], v.addr[3]).to_string()
    } else {
        Ipv6Addr::from(v.addr).to_string()
    };
    if cidr || v.bits != v.max_bits() {
        format!("{addr}/{}", v.bits)
    } else {
        addr
    }
}

/// Canonical text of an `inet`/`cidr` input (what the value stores).
pub fn canonical(s: &str, cidr: bool) -> Result<String, PgError> {
    Ok(format_inet(&parse_inet(s, cidr)?, cidr))
}

/// `a << b` / `a >> b` on two stored values (`cidr` tells how each was stored).
pub fn call(
    op: InetOp,
    a: &Value,
    a_cidr: bool,
    b: &Value,
    b_cidr: bool,
) -> Result<Value, PgError> {
    let (Value::Text(x), Value::Text(y)) = (a, b) else {
        return Ok(Value::Null);
    };
    let x = parse_inet(x, a_cidr)?;
    let y = parse_inet(y, b_cidr)?;
    let (inner, outer) = match op {
        InetOp::ContainedBy => (x, y),
        InetOp::Contains => (y, x),
    };
    Ok(Value::Bool(
        inner.family == outer.family
            && inner.bits > outer.bits
            && inner.prefix_eq(&outer, outer.bits),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_containment_match_pg15() {
        assert_eq!(canonical("127.0.0.1", false).expect("inet"), "127.0.0.1");
        assert_eq!(canonical("10.0.0.0/8", true).expect("cidr"), "10.0.0.0/8");
        assert_eq!(canonical("10/8", true).expect("cidr"), "10.0.0.0/8");
        assert_eq!(canonical("10.1.2.3/8", false).expect("inet"), "10.1.2.3/8");
        assert_eq!(canonical("::1", false).expect("v6"), "::1");
        assert_eq!(
            canonical("2001:db8::/32", true).expect("v6"),
            "2001:db8::/32"
        );
        assert_eq!(
            canonical("10.1.2.3/8", true).unwrap_err().code,
            SqlState::InvalidTextRepresentation
        );
        assert!(canonical("300.1.1.1", false).is_err());
        let t = |s: &str| Value::Text(s.into());
        let r = call(
            InetOp::ContainedBy,
            &t("10.1.2.3"),
            false,
            &t("10.0.0.0/8"),
            true,
        );
        assert_eq!(r.expect("op"), Value::Bool(true));
        let r = call(
            InetOp::ContainedBy,
            &t("10.0.0.0/8"),
            true,
            &t("10.0.0.0/8"),
            true,
        );
        assert_eq!(r.expect("op"), Value::Bool(false));
        let r = call(
            InetOp::Contains,
            &t("10.0.0.0/8"),
            true,
            &t("11.0.0.1"),
            false,
        );
        assert_eq!(r.expect("op"), Value::Bool(false));
    }
}
