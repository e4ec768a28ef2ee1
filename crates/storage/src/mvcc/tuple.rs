//! Heap tuple versions: [`Tid`], the [`Header`] with PostgreSQL's xmin/cmin/xmax/cmax, and their
//! checksummed on-disk encoding.

use pgxc_common::Gxid;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// A tuple identifier: the address of one row version in one relation storage (PostgreSQL's
/// `ctid`, here a 64-bit counter per storage, starting at 1, never reused while the storage lives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tid(pub u64);

impl std::fmt::Display for Tid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(0,{})", self.0)
    }
}

/// What a tuple's `xmax` means (PostgreSQL's infomask bits, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XmaxKind {
    /// Deleted by `xmax` (DELETE).
    Delete,
    /// Replaced by a newer version at [`Header::next`] (UPDATE).
    Update,
}

/// Row-lock strength of SELECT ... FOR SHARE / FOR UPDATE.
///
/// PostgreSQL's four strengths are folded into two: `FOR KEY SHARE` behaves as [`Share`], and
/// `FOR NO KEY UPDATE` (and UPDATE/DELETE) as [`Exclusive`] (no foreign keys exist yet that would
/// benefit from the weaker pair).
///
/// [`Share`]: RowLockStrength::Share
/// [`Exclusive`]: RowLockStrength::Exclusive
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowLockStrength {
    /// FOR SHARE / FOR KEY SHARE: conflicts only with Exclusive.
    Share,
    /// FOR UPDATE / FOR NO KEY UPDATE, and the implicit lock of UPDATE and DELETE: conflicts with
    /// everything.
    Exclusive,
}

impl RowLockStrength {
    /// Whether a holder of `self` blocks a requester of `other`.
    pub fn conflicts(self, other: RowLockStrength) -> bool {
        !(self == RowLockStrength::Share && other == RowLockStrength::Share)
    }
}

/// The MVCC header of a tuple version (PostgreSQL's `HeapTupleHeaderData`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The inserting transaction.
    pub xmin: Gxid,
    /// The inserting command within `xmin` (statement counter).
    pub cmin: u32,
    /// The deleting or updating transaction, with what it did; `None` if never deleted.
    pub xmax: Option<(Gxid, XmaxKind)>,
    /// The deleting command within the `xmax` transaction.
    pub cmax: u32,
    /// For an updated version: the newer version (`t_ctid`).
    pub next: Option<Tid>,
    /// Row-lock holders (FOR SHARE / FOR UPDATE) that did not modify the row; finished ones are
    /// pruned when the next lock is taken (PostgreSQL keeps these in a MultiXact).
    pub lockers: Vec<(Gxid, RowLockStrength)>,
}

impl Header {
    /// The header of a freshly inserted version.
    pub fn inserted(xmin: Gxid, cmin: u32) -> Header {
        Header {
            xmin,
            cmin,
            xmax: None,
            cmax: 0,
            next: None,
            lockers: Vec::new(),
        }
    }
}

/// Format byte of an encoded tuple.
const TUPLE_FORMAT: u8 = 1;

/// Encode a tuple: `format u8 | xmin u64 | cmin u32 | xmax u64 (0 = none) | xmax kind u8 |
/// cmax u32 | next u64 (0 = none) | lockers u16 | (xid u64, strength u8)* | payload | crc32`,
/// integers big-endian; the CRC-32 covers everything before it.
pub fn encode_tuple(h: &Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + 9 * h.lockers.len() + payload.len());
    out.push(TUPLE_FORMAT);
    out.extend_from_slice(&h.xmin.0.to_be_bytes());
    out.extend_from_slice(&h.cmin.to_be_bytes());
    let (xmax, kind) = match h.xmax {
        None => (0, 0u8),
        Some((x, XmaxKind::Delete)) => (x.0, 1),
        Some((x, XmaxKind::Update)) => (x.0, 2),
    };
    out.extend_from_slice(&xmax.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&h.cmax.to_be_bytes());
    out.extend_from_slice(&h.next.map_or(0, |t| t.0).to_be_bytes());
    let n = u16::try_from(h.lockers.len()).expect("at most 65535 row lockers");
    out.extend_from_slice(&n.to_be_bytes());
    for (x, s) in &h.lockers {
        out.extend_from_slice(&x.0.to_be_bytes());
        out.push(match s {
            RowLockStrength::Share => 1,
            RowLockStrength::Exclusive => 2,
        });
    }
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StorageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| StorageError::Corruption("tuple truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, StorageError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
    }
    fn u16(&mut self) -> Result<u16, StorageError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes(b.try_into().unwrap_or([0; 2])))
    }
    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
}

/// Decode a tuple written by [`encode_tuple`], verifying its checksum.
///
/// Errors: [`StorageError::Corruption`] on a checksum mismatch, a truncated tuple, an unknown
/// format or an invalid field.
pub fn decode_tuple(bytes: &[u8]) -> Result<(Header, &[u8]), StorageError> {
    if bytes.len() < 4 {
        return Err(StorageError::Corruption(
            "tuple shorter than its checksum".into(),
        ));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_be_bytes(crc.try_into().unwrap_or([0; 4]));
    if crc32fast::hash(body) != want {
        return Err(StorageError::Corruption("tuple checksum mismatch".into()));
    }
    let mut r = Reader { buf: body, pos: 0 };
    if r.u8()? != TUPLE_FORMAT {
        return Err(StorageError::Corruption("unknown tuple format".into()));
    }
    let xmin = Gxid(r.u64()?);
    let cmin = r.u32()?;
    let xmax_raw = r.u64()?;
    let kind = r.u8()?;
    let xmax = match (xmax_raw, kind) {
        (0, 0) => None,
        (x, 1) if x != 0 => Some((Gxid(x), XmaxKind::Delete)),
        (x, 2) if x != 0 => Some((Gxid(x), XmaxKind::Update)),
        _ => return Err(StorageError::Corruption("invalid tuple xmax".into())),
    };
    let cmax = r.u32()?;
    let next = match r.u64()? {
        0 => None,
        t => Some(Tid(t)),
    };
    let n = r.u16()?;
    let mut lockers = Vec::with_capacity(usize::from(n).min(64));
    for _ in 0..n {
        let x = Gxid(r.u64()?);
        let s = match r.u8()? {
            1 => RowLockStrength::Share,
            2 => RowLockStrength::Exclusive,
            _ => return Err(StorageError::Corruption("invalid row lock strength".into())),
        };
        lockers.push((x, s));
    }
    if !xmin.is_valid() {
        return Err(StorageError::Corruption("tuple with invalid xmin".into()));
    }
    let payload = &body[r.pos..];
    Ok((
        Header {
            xmin,
            cmin,
            xmax,
            cmax,
            next,
            lockers,
        },
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_checksum() {
        let h = Header {
            xmin: Gxid(7),
            cmin: 2,
            xmax: Some((Gxid(9), XmaxKind::Update)),
            cmax: 1,
            next: Some(Tid(44)),
            lockers: vec![(Gxid(8), RowLockStrength::Share)],
        };
        let bytes = encode_tuple(&h, b"payload");
        let (h2, p) = decode_tuple(&bytes).unwrap();
        assert_eq!(h2, h);
        assert_eq!(p, b"payload");
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert!(decode_tuple(&bad).unwrap_err().is_corruption());
        assert!(decode_tuple(&bytes[..10]).unwrap_err().is_corruption());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_tuple(&bytes);
        }
    }
}
