//! Waiting: relation locks (PostgreSQL's eight table lock modes), the wait-for graph with local
//! deadlock detection, and wake-ups when a transaction ends.
//!
//! Every wait in the store is "wait until transaction X ends" (row locks live in tuple headers,
//! relation locks are held to the end of their transaction), so one mechanism serves both.

use std::collections::{BTreeMap, HashMap};

use pgxc_common::Gxid;
use serde::{Deserialize, Serialize};

use super::catalog::RelId;

/// PostgreSQL's table-level lock modes (`LOCK TABLE ... IN mode MODE`), weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// SELECT.
    AccessShare,
    /// SELECT FOR UPDATE / FOR SHARE.
    RowShare,
    /// INSERT, UPDATE, DELETE.
    RowExclusive,
    /// VACUUM (not FULL), ANALYZE, CREATE INDEX CONCURRENTLY.
    ShareUpdateExclusive,
    /// CREATE INDEX.
    Share,
    /// CREATE TRIGGER and some ALTER TABLE forms.
    ShareRowExclusive,
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY.
    Exclusive,
    /// DROP TABLE, TRUNCATE, most ALTER TABLE, plain LOCK TABLE.
    AccessExclusive,
}

impl LockMode {
    /// PostgreSQL's lock conflict table (Table 13.2 of the PostgreSQL 15 manual).
    pub fn conflicts(self, other: LockMode) -> bool {
        use LockMode::*;
        let (a, b) = if self <= other {
            (self, other)
        } else {
            (other, self)
        };
        match a {
            AccessShare => b == AccessExclusive,
            RowShare => b >= Exclusive,
            RowExclusive => b >= Share,
            ShareUpdateExclusive => b >= ShareUpdateExclusive,
            Share => b != Share && b >= ShareUpdateExclusive,
            ShareRowExclusive => b >= ShareUpdateExclusive,
            Exclusive | AccessExclusive => true,
        }
    }

    /// The mode's name as PostgreSQL prints it (`pg_locks.mode`).
    pub fn name(self) -> &'static str {
        use LockMode::*;
        match self {
            AccessShare => "AccessShareLock",
            RowShare => "RowShareLock",
            RowExclusive => "RowExclusiveLock",
            ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            Share => "ShareLock",
            ShareRowExclusive => "ShareRowExclusiveLock",
            Exclusive => "ExclusiveLock",
            AccessExclusive => "AccessExclusiveLock",
        }
    }
}

/// Why a wait could not start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WaitRefused {
    /// Waiting would close a cycle in the wait-for graph.
    Deadlock,
}

/// The in-memory lock state: relation lock holders, the wait-for graph and the parked waiters.
///
/// **Invariant:** each transaction waits for at most one other at a time, so the wait-for graph
/// has out-degree ≤ 1 and following it from the holder finds every cycle through the waiter.
#[derive(Default)]
pub(crate) struct LockTable {
    /// Relation → its holders, in grant order.
    holders: BTreeMap<RelId, Vec<(Gxid, LockMode)>>,
    /// Relation → requests waiting for it, in arrival order (PostgreSQL's wait queue).
    queue: BTreeMap<RelId, Vec<(Gxid, LockMode)>>,
    /// Transaction → the relation locks it holds (for release).
    held: HashMap<Gxid, Vec<(RelId, LockMode)>>,
    /// Waiter → the transaction it waits for.
    edges: HashMap<Gxid, Gxid>,
    /// Transaction → the wake-up senders of those waiting for it to end, in arrival order.
    waiters: HashMap<Gxid, Vec<tokio::sync::oneshot::Sender<()>>>,
}

impl LockTable {
    /// Try to grant `mode` on `rel` to `xid`: `Ok(())` if granted (or already held), `Err(x)`
    /// naming the first other holder whose mode conflicts or, as PostgreSQL queues lock requests,
    /// the first conflicting request queued before this one (unless `xid` already holds a lock
    /// on `rel`, which lets it jump the queue as PostgreSQL does to avoid needless deadlocks).
    /// A granted request leaves the queue.
    pub(crate) fn try_lock(&mut self, xid: Gxid, rel: RelId, mode: LockMode) -> Result<(), Gxid> {
        let list = self.holders.entry(rel).or_default();
        if list.iter().any(|(x, m)| *x == xid && *m == mode) {
            return Ok(());
        }
        if let Some((h, _)) = list.iter().find(|(x, m)| *x != xid && m.conflicts(mode)) {
            return Err(*h);
        }
        let holds_some = list.iter().any(|(x, _)| *x == xid);
        if !holds_some {
            if let Some(q) = self.queue.get(&rel) {
                for (x, m) in q {
                    if *x == xid {
                        break;
                    }
                    if m.conflicts(mode) {
                        return Err(*x);
                    }
                }
            }
        }
        list.push((xid, mode));
        self.held.entry(xid).or_default().push((rel, mode));
        self.dequeue(xid, rel);
        Ok(())
    }

    /// Queue `xid`'s request for `mode` on `rel` (it is about to wait), keeping its place if
    /// already queued.
    pub(crate) fn enqueue(&mut self, xid: Gxid, rel: RelId, mode: LockMode) {
        let q = self.queue.entry(rel).or_default();
        if !q.iter().any(|(x, _)| *x == xid) {
            q.push((xid, mode));
        }
    }

    /// Remove `xid`'s queued request on `rel` (granted, timed out, cancelled or deadlocked).
    pub(crate) fn dequeue(&mut self, xid: Gxid, rel: RelId) {
        if let Some(q) = self.queue.get_mut(&rel) {
            q.retain(|(x, _)| *x != xid);
            if q.is_empty() {
                self.queue.remove(&rel);
            }
        }
    }

    /// Whether `xid` holds a lock on `rel` of `mode` or a stronger one (tests).
    #[cfg(test)]
    pub(crate) fn holds(&self, xid: Gxid, rel: RelId, mode: LockMode) -> bool {
        self.holders
            .get(&rel)
            .is_some_and(|l| l.iter().any(|(x, m)| *x == xid && *m >= mode))
    }

    /// The relation locks `xid` holds, in grant order.
    pub(crate) fn locks_of(&self, xid: Gxid) -> Vec<(RelId, LockMode)> {
        self.held.get(&xid).cloned().unwrap_or_default()
    }

    /// Release every relation lock of `xid` and wake everyone waiting for it.
    pub(crate) fn end(&mut self, xid: Gxid) {
        if let Some(list) = self.held.remove(&xid) {
            for (rel, _) in list {
                if let Some(h) = self.holders.get_mut(&rel) {
                    h.retain(|(x, _)| *x != xid);
                    if h.is_empty() {
                        self.holders.remove(&rel);
                    }
                }
            }
        }
        self.edges.remove(&xid);
        for q in self.queue.values_mut() {
            q.retain(|(x, _)| *x != xid);
        }
        self.queue.retain(|_, q| !q.is_empty());
        if let Some(ws) = self.waiters.remove(&xid) {
            for w in ws {
                let _ = w.send(());
            }
        }
    }

    /// Register that `waiter` waits for `holder` to end, unless that closes a cycle.
    /// Returns the receiver that fires when `holder` ends.
    pub(crate) fn start_wait(
        &mut self,
        waiter: Gxid,
        holder: Gxid,
    ) -> Result<tokio::sync::oneshot::Receiver<()>, WaitRefused> {
        let mut h = holder;
        let mut steps = 0usize;
        loop {
            if h == waiter {
                return Err(WaitRefused::Deadlock);
            }
            match self.edges.get(&h) {
                Some(next) => h = *next,
                None => break,
            }
            steps += 1;
            assert!(
                steps <= self.edges.len(),
                "wait-for graph has a cycle not through the waiter"
            );
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.edges.insert(waiter, holder);
        self.waiters.entry(holder).or_default().push(tx);
        Ok(rx)
    }

    /// A receiver that fires when `holder` ends, for a waiter that is no transaction (no edge).
    pub(crate) fn subscribe(&mut self, holder: Gxid) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.waiters.entry(holder).or_default().push(tx);
        rx
    }

    /// Remove `waiter`'s wait-for edge (after it woke, timed out or was cancelled).
    pub(crate) fn stop_wait(&mut self, waiter: Gxid) {
        self.edges.remove(&waiter);
    }

    /// The transaction `waiter` waits for, if any (`pg_locks` with `granted = false`).
    pub(crate) fn waiting_for(&self, waiter: Gxid) -> Option<Gxid> {
        self.edges.get(&waiter).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_table_matches_postgres() {
        use LockMode::*;
        let all = [
            AccessShare,
            RowShare,
            RowExclusive,
            ShareUpdateExclusive,
            Share,
            ShareRowExclusive,
            Exclusive,
            AccessExclusive,
        ];
        // Rows of PostgreSQL's Table 13.2, "X" = conflicts, in the order above.
        let table = [
            ".......X", "......XX", "....XXXX", "...XXXXX", "..XX.XXX", "..XXXXXX", ".XXXXXXX",
            "XXXXXXXX",
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                let want = table[i].as_bytes()[j] == b'X';
                assert_eq!(a.conflicts(*b), want, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn deadlock_is_refused() {
        let mut t = LockTable::default();
        let _r1 = t.start_wait(Gxid(1), Gxid(2)).unwrap();
        let _r2 = t.start_wait(Gxid(2), Gxid(3)).unwrap();
        assert_eq!(
            t.start_wait(Gxid(3), Gxid(1)).unwrap_err(),
            WaitRefused::Deadlock
        );
        t.end(Gxid(3));
        assert!(t.start_wait(Gxid(4), Gxid(1)).is_ok());
    }

    #[test]
    fn relation_locks_conflict_and_release() {
        let mut t = LockTable::default();
        let r = RelId(5);
        t.try_lock(Gxid(1), r, LockMode::RowExclusive).unwrap();
        t.try_lock(Gxid(2), r, LockMode::RowExclusive).unwrap();
        assert_eq!(
            t.try_lock(Gxid(3), r, LockMode::AccessExclusive),
            Err(Gxid(1))
        );
        t.end(Gxid(1));
        assert_eq!(
            t.try_lock(Gxid(3), r, LockMode::AccessExclusive),
            Err(Gxid(2))
        );
        t.end(Gxid(2));
        t.try_lock(Gxid(3), r, LockMode::AccessExclusive).unwrap();
        assert!(t.holds(Gxid(3), r, LockMode::Share));
    }
}
