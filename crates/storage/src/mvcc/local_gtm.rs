//! [`LocalGtm`]: a minimal, in-memory stand-in for the GTM, for tests and benchmarks of one
//! store without a cluster.

use std::collections::BTreeSet;

use pgxc_common::{Gxid, Snapshot};

/// Hands out GXIDs (from [`Gxid::FIRST_NORMAL`], strictly increasing) and snapshots of the
/// running set, like the GTM does for a cluster (`xmax` = next GXID, `xip` = running).
/// Callers report the end of each transaction with [`LocalGtm::end`] after the store acknowledged
/// it (the coordinator's order: datanodes first, then the GTM).
#[derive(Clone, Debug)]
pub struct LocalGtm {
    next: u64,
    running: BTreeSet<Gxid>,
}

impl Default for LocalGtm {
    fn default() -> LocalGtm {
        LocalGtm::starting_at(Gxid::FIRST_NORMAL)
    }
}

impl LocalGtm {
    /// A GTM whose next GXID is `next` (e.g. one past the largest a store has seen, after a
    /// restart).
    pub fn starting_at(next: Gxid) -> LocalGtm {
        LocalGtm {
            next: next.0.max(Gxid::FIRST_NORMAL.0),
            running: BTreeSet::new(),
        }
    }

    /// Make the next GXID at least `next` (after a durable reservation that starts there); the
    /// running set is kept.
    pub fn advance_to(&mut self, next: Gxid) {
        self.next = self.next.max(next.0);
    }

    /// Issue the next GXID and register it as running.
    pub fn begin(&mut self) -> Gxid {
        let x = Gxid(self.next);
        self.next += 1;
        self.running.insert(x);
        x
    }

    /// A snapshot now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Gxid(self.next), self.running.iter().copied().collect())
    }

    /// Mark `xid` finished (committed or aborted).
    pub fn end(&mut self, xid: Gxid) {
        self.running.remove(&xid);
    }

    /// The oldest running GXID, or the next one if none runs (a vacuum horizon when every
    /// snapshot in use was taken from this GTM and callers refresh snapshots as they go).
    pub fn global_xmin(&self) -> Gxid {
        self.running.first().copied().unwrap_or(Gxid(self.next))
    }
}
