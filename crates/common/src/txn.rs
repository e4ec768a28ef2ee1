//! Global transaction ids and global snapshots.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A global transaction id (GXID), issued by the GTM.
///
/// Shape: an unsigned 64-bit counter that never wraps (PostgreSQL's 32-bit xid wraps; ours does not, so
/// comparisons are plain integer comparisons). `Gxid(0)` is [`Gxid::INVALID`]; the GTM issues ids from
/// [`Gxid::FIRST_NORMAL`] upward.
///
/// **Invariant:** a GXID is issued at most once in the life of a cluster, across restarts and GTM leader changes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Gxid(pub u64);

impl Gxid {
    /// Never issued; marks "no transaction" (PostgreSQL's `InvalidTransactionId`).
    pub const INVALID: Gxid = Gxid(0);
    /// The first GXID the GTM issues (PostgreSQL's `FirstNormalTransactionId` is 3; we keep the same floor).
    pub const FIRST_NORMAL: Gxid = Gxid(3);

    /// Whether this is a real, issued id.
    pub fn is_valid(self) -> bool {
        self.0 >= Self::FIRST_NORMAL.0
    }
}

impl fmt::Debug for Gxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gxid:{}", self.0)
    }
}

impl fmt::Display for Gxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A global snapshot, with PostgreSQL's `SnapshotData` meaning (see `txid_current_snapshot()`'s
/// `xmin:xmax:xip_list`):
///
/// - every GXID `< xmin` had finished (committed or aborted) when the snapshot was taken;
/// - every GXID `>= xmax` had not been issued yet, so it is treated as running;
/// - a GXID in `[xmin, xmax)` was running iff it is listed in `xip` (sorted ascending, no duplicates).
///
/// Whether a finished transaction committed is not part of the snapshot: datanodes look that up in their
/// commit log.
///
/// **Invariant:** `xmin <= xmax`, every `xip` entry is in `[xmin, xmax)`, and `xmin == xip[0]` when `xip` is
/// non-empty, else `xmin == xmax` ([`Snapshot::check`]).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    /// Lowest GXID still running (or `xmax` if none).
    pub xmin: Gxid,
    /// First GXID not yet issued.
    pub xmax: Gxid,
    /// GXIDs running when the snapshot was taken, ascending.
    pub xip: Vec<Gxid>,
}

impl Snapshot {
    /// Build a snapshot from the running set and the next unissued GXID. `running` must be ascending and
    /// below `xmax`; `xmin` is derived.
    ///
    /// Panics (an invariant violation, not bad input) if `running` is unsorted or reaches `xmax`.
    pub fn new(xmax: Gxid, running: Vec<Gxid>) -> Snapshot {
        let xmin = running.first().copied().unwrap_or(xmax);
        let s = Snapshot {
            xmin,
            xmax,
            xip: running,
        };
        assert!(s.check().is_ok(), "malformed snapshot {s:?}");
        s
    }

    /// Validate the invariants of a snapshot that came from the network or disk.
    ///
    /// Errors: a human-readable description of the first violation.
    pub fn check(&self) -> Result<(), String> {
        if self.xmin > self.xmax {
            return Err(format!("snapshot xmin {} > xmax {}", self.xmin, self.xmax));
        }
        match self.xip.first() {
            Some(first) if *first != self.xmin => {
                return Err(format!(
                    "snapshot xmin {} differs from first xip {}",
                    self.xmin, first
                ));
            }
            None if self.xmin != self.xmax => {
                return Err(format!(
                    "snapshot with empty xip has xmin {} != xmax {}",
                    self.xmin, self.xmax
                ));
            }
            _ => {}
        }
        for w in self.xip.windows(2) {
            if w[0] >= w[1] {
                return Err(format!(
                    "snapshot xip not strictly ascending at {} {}",
                    w[0], w[1]
                ));
            }
        }
        if let Some(last) = self.xip.last() {
            if *last >= self.xmax {
                return Err(format!("snapshot xip entry {} >= xmax {}", last, self.xmax));
            }
        }
        Ok(())
    }

    /// PostgreSQL's `XidInMVCCSnapshot`: true if `xid` must be treated as still running (invisible) under
    /// this snapshot, whatever the commit log says.
    pub fn is_running(&self, xid: Gxid) -> bool {
        if xid < self.xmin {
            return false;
        }
        if xid >= self.xmax {
            return true;
        }
        self.xip.binary_search(&xid).is_ok()
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// PostgreSQL's `txid_snapshot` text form: `xmin:xmax:xip1,xip2`.
impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_text_form_and_visibility() {
        let s = Snapshot::new(Gxid(20), vec![Gxid(10), Gxid(15)]);
        assert_eq!(s.to_string(), "10:20:10,15");
        assert!(!s.is_running(Gxid(9)));
        assert!(s.is_running(Gxid(10)));
        assert!(!s.is_running(Gxid(11)));
        assert!(s.is_running(Gxid(15)));
        assert!(s.is_running(Gxid(20)));
        let empty = Snapshot::new(Gxid(7), vec![]);
        assert_eq!(empty.to_string(), "7:7:");
        assert!(empty.is_running(Gxid(7)));
        assert!(!empty.is_running(Gxid(6)));
    }

    #[test]
    fn check_rejects_malformed() {
        let bad = Snapshot {
            xmin: Gxid(5),
            xmax: Gxid(4),
            xip: vec![],
        };
        assert!(bad.check().is_err());
        let bad = Snapshot {
            xmin: Gxid(3),
            xmax: Gxid(9),
            xip: vec![Gxid(3), Gxid(3)],
        };
        assert!(bad.check().is_err());
        let bad = Snapshot {
            xmin: Gxid(3),
            xmax: Gxid(9),
            xip: vec![Gxid(3), Gxid(9)],
        };
        assert!(bad.check().is_err());
    }
}
