//! PostgreSQL's tuple visibility rules (`heapam_visibility.c`) against a global snapshot plus the
//! local commit log, as pure functions of a [`Header`] and an [`XidStatus`] lookup.

use pgxc_common::{Gxid, Snapshot};
use serde::{Deserialize, Serialize};

use super::tuple::{Header, RowLockStrength, Tid, XmaxKind};

/// The local commit-log state of a GXID on this datanode (PostgreSQL's clog, plus "prepared").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XidStatus {
    /// Began here and has not ended.
    InProgress,
    /// Prepared for two-phase commit (`PREPARE TRANSACTION`); ends with COMMIT/ROLLBACK PREPARED.
    Prepared,
    /// Committed (durably).
    Committed,
    /// Rolled back, or was running when the datanode crashed, or never wrote here.
    Aborted,
}

impl XidStatus {
    /// Whether the transaction has not ended (in progress or prepared): others must wait for it.
    pub fn is_open(self) -> bool {
        matches!(self, XidStatus::InProgress | XidStatus::Prepared)
    }
}

/// Who is looking: a transaction, its current command id and its snapshot.
#[derive(Clone, Debug)]
pub struct Viewer<'a> {
    /// The viewing transaction.
    pub xid: Gxid,
    /// The current command (statement) id: versions written by this transaction with a command id
    /// `>= cid` are not seen (a statement does not see its own changes).
    pub cid: u32,
    /// The global snapshot of the current statement (READ COMMITTED) or transaction (REPEATABLE READ).
    pub snapshot: &'a Snapshot,
}

/// The answer of [`visible`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// The version is in the viewer's snapshot.
    Visible,
    /// It is not.
    Invisible,
    /// The snapshot says `Gxid` finished, but it has not finished here yet (its COMMIT PREPARED or
    /// COMMIT is on its way): wait for it to end, then ask again. Waiting, rather than guessing,
    /// keeps a transaction committed on two datanodes visible on both or on neither.
    WaitFor(Gxid),
}

/// Whether a transaction other than the viewer is finished-and-committed from the viewer's
/// point of view: `Ok(true)` committed, `Ok(false)` running or aborted, `Err(x)` must wait for `x`.
fn committed_for(viewer: &Viewer<'_>, x: Gxid, status: XidStatus) -> Result<bool, Gxid> {
    if viewer.snapshot.is_running(x) {
        return Ok(false);
    }
    match status {
        XidStatus::Committed => Ok(true),
        XidStatus::Aborted => Ok(false),
        XidStatus::InProgress | XidStatus::Prepared => Err(x),
    }
}

/// PostgreSQL's `HeapTupleSatisfiesMVCC`: whether the version with header `h` is visible to
/// `viewer`, with `status` giving the local commit-log state of any GXID.
pub fn visible(h: &Header, viewer: &Viewer<'_>, status: impl Fn(Gxid) -> XidStatus) -> Visibility {
    if h.xmin == viewer.xid {
        if h.cmin >= viewer.cid {
            return Visibility::Invisible; // inserted by this or a later command
        }
    } else {
        match committed_for(viewer, h.xmin, status(h.xmin)) {
            Ok(true) => {}
            Ok(false) => return Visibility::Invisible,
            Err(x) => return Visibility::WaitFor(x),
        }
    }
    match h.xmax {
        None => Visibility::Visible,
        Some((x, _)) if x == viewer.xid => {
            if h.cmax >= viewer.cid {
                Visibility::Visible // deleted by this statement or a later one: still seen
            } else {
                Visibility::Invisible
            }
        }
        Some((x, _)) => match committed_for(viewer, x, status(x)) {
            Ok(true) => Visibility::Invisible,
            Ok(false) => Visibility::Visible,
            Err(x) => Visibility::WaitFor(x),
        },
    }
}

/// The answer of [`check_modify`] (PostgreSQL's `TM_Result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modify {
    /// The version may be updated, deleted or locked now.
    Ok,
    /// Already updated or deleted by the current command of this transaction: skip it
    /// (`TM_SelfModified`; this is why `UPDATE t SET x = x + 1` touches each row once).
    SelfModified,
    /// The version does not exist for this transaction (its inserter aborted, or this
    /// transaction itself deleted it in an earlier command).
    Invisible,
    /// Another open transaction holds the row: wait for it to end, then check again.
    Wait(Gxid),
    /// A committed transaction updated (`next` = the newer version) or deleted (`next = None`) the
    /// row (`TM_Updated` / `TM_Deleted`): READ COMMITTED re-checks the newest version, REPEATABLE
    /// READ fails with 40001.
    Concurrent {
        /// The newer version, for an update.
        next: Option<Tid>,
    },
}

/// PostgreSQL's `HeapTupleSatisfiesUpdate`: whether `xid` (at command `cid`) may modify or lock
/// (with `strength`) the version with header `h`. Uses the latest local state, not a snapshot.
pub fn check_modify(
    h: &Header,
    xid: Gxid,
    cid: u32,
    strength: RowLockStrength,
    status: impl Fn(Gxid) -> XidStatus,
) -> Modify {
    if h.xmin == xid {
        if h.cmin >= cid {
            return Modify::Invisible;
        }
    } else {
        match status(h.xmin) {
            XidStatus::Committed => {}
            XidStatus::Aborted => return Modify::Invisible,
            XidStatus::InProgress | XidStatus::Prepared => return Modify::Wait(h.xmin),
        }
    }
    if let Some((x, kind)) = h.xmax {
        if x == xid {
            return if h.cmax >= cid {
                Modify::SelfModified
            } else {
                Modify::Invisible
            };
        }
        match status(x) {
            XidStatus::InProgress | XidStatus::Prepared => return Modify::Wait(x),
            XidStatus::Committed => {
                return Modify::Concurrent {
                    next: match kind {
                        XmaxKind::Update => h.next,
                        XmaxKind::Delete => None,
                    },
                }
            }
            XidStatus::Aborted => {}
        }
    }
    for (x, s) in &h.lockers {
        if *x != xid && s.conflicts(strength) && status(*x).is_open() {
            return Modify::Wait(*x);
        }
    }
    Modify::Ok
}

/// The answer of [`unique_conflict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueCheck {
    /// This version does not hold the key.
    Free,
    /// A live version holds the key: 23505.
    Duplicate,
    /// An open transaction inserted or deleted this version: wait for it, then check again.
    Wait(Gxid),
}

/// PostgreSQL's `_bt_check_unique` with a dirty snapshot: whether the version `h`, found under
/// the same key of a unique index, blocks an insert by `xid`.
pub fn unique_conflict(h: &Header, xid: Gxid, status: impl Fn(Gxid) -> XidStatus) -> UniqueCheck {
    if h.xmin != xid {
        match status(h.xmin) {
            XidStatus::Committed => {}
            XidStatus::Aborted => return UniqueCheck::Free,
            XidStatus::InProgress | XidStatus::Prepared => return UniqueCheck::Wait(h.xmin),
        }
    }
    match h.xmax {
        None => UniqueCheck::Duplicate,
        Some((x, _)) if x == xid => UniqueCheck::Free,
        Some((x, _)) => match status(x) {
            XidStatus::Committed => UniqueCheck::Free,
            XidStatus::Aborted => UniqueCheck::Duplicate,
            XidStatus::InProgress | XidStatus::Prepared => UniqueCheck::Wait(x),
        },
    }
}

/// Whether a version is dead to every present and future snapshot, given `horizon`: every
/// transaction below it has finished in every snapshot still in use (the GTM's global xmin,
/// clamped by local snapshots). Such versions are what VACUUM removes.
pub fn is_dead(h: &Header, horizon: Gxid, status: impl Fn(Gxid) -> XidStatus) -> bool {
    if status(h.xmin) == XidStatus::Aborted {
        return true;
    }
    match h.xmax {
        Some((x, _)) => x < horizon && h.xmin < horizon && status(x) == XidStatus::Committed,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(xmax: u64, running: &[u64]) -> Snapshot {
        Snapshot::new(Gxid(xmax), running.iter().map(|x| Gxid(*x)).collect())
    }

    fn clog(committed: &'static [u64], open: &'static [u64]) -> impl Fn(Gxid) -> XidStatus {
        move |x| {
            if committed.contains(&x.0) {
                XidStatus::Committed
            } else if open.contains(&x.0) {
                XidStatus::InProgress
            } else {
                XidStatus::Aborted
            }
        }
    }

    #[test]
    fn own_writes_follow_command_ids() {
        let s = snap(10, &[5]);
        let v = Viewer {
            xid: Gxid(5),
            cid: 2,
            snapshot: &s,
        };
        let st = clog(&[], &[5]);
        assert_eq!(
            visible(&Header::inserted(Gxid(5), 1), &v, &st),
            Visibility::Visible
        );
        assert_eq!(
            visible(&Header::inserted(Gxid(5), 2), &v, &st),
            Visibility::Invisible
        );
        let mut h = Header::inserted(Gxid(5), 0);
        h.xmax = Some((Gxid(5), XmaxKind::Update));
        h.cmax = 2;
        assert_eq!(
            visible(&h, &v, &st),
            Visibility::Visible,
            "updated by this statement"
        );
        h.cmax = 1;
        assert_eq!(
            visible(&h, &v, &st),
            Visibility::Invisible,
            "updated earlier"
        );
    }

    #[test]
    fn snapshot_decides_before_the_clog() {
        let s = snap(10, &[6]);
        let v = Viewer {
            xid: Gxid(9),
            cid: 0,
            snapshot: &s,
        };
        // 6 committed locally but was running in the snapshot: invisible.
        let st = clog(&[4, 6], &[]);
        assert_eq!(
            visible(&Header::inserted(Gxid(6), 0), &v, &st),
            Visibility::Invisible
        );
        assert_eq!(
            visible(&Header::inserted(Gxid(4), 0), &v, &st),
            Visibility::Visible
        );
        // 11 >= xmax: invisible even though committed.
        let st2 = clog(&[11], &[]);
        assert_eq!(
            visible(&Header::inserted(Gxid(11), 0), &v, &st2),
            Visibility::Invisible
        );
        // finished in the snapshot but still prepared here: wait.
        let st3 = |x: Gxid| {
            if x == Gxid(4) {
                XidStatus::Prepared
            } else {
                XidStatus::Committed
            }
        };
        assert_eq!(
            visible(&Header::inserted(Gxid(4), 0), &v, st3),
            Visibility::WaitFor(Gxid(4))
        );
        // deleted by a transaction that was running in the snapshot: still visible.
        let mut h = Header::inserted(Gxid(4), 0);
        h.xmax = Some((Gxid(6), XmaxKind::Delete));
        assert_eq!(visible(&h, &v, &st), Visibility::Visible);
        h.xmax = Some((Gxid(5), XmaxKind::Delete));
        assert_eq!(visible(&h, &v, clog(&[4, 5], &[])), Visibility::Invisible);
        assert_eq!(
            visible(&h, &v, clog(&[4], &[])),
            Visibility::Visible,
            "aborted delete"
        );
    }

    #[test]
    fn modify_rules() {
        let st = clog(&[1, 2], &[3]);
        let mut h = Header::inserted(Gxid(1), 0);
        assert_eq!(
            check_modify(&h, Gxid(4), 0, RowLockStrength::Exclusive, &st),
            Modify::Ok
        );
        h.lockers = vec![(Gxid(3), RowLockStrength::Share)];
        assert_eq!(
            check_modify(&h, Gxid(4), 0, RowLockStrength::Share, &st),
            Modify::Ok
        );
        assert_eq!(
            check_modify(&h, Gxid(4), 0, RowLockStrength::Exclusive, &st),
            Modify::Wait(Gxid(3))
        );
        h.xmax = Some((Gxid(2), XmaxKind::Update));
        h.next = Some(Tid(9));
        assert_eq!(
            check_modify(&h, Gxid(4), 0, RowLockStrength::Exclusive, &st),
            Modify::Concurrent { next: Some(Tid(9)) }
        );
        h.xmax = Some((Gxid(4), XmaxKind::Update));
        h.cmax = 3;
        assert_eq!(
            check_modify(&h, Gxid(4), 3, RowLockStrength::Exclusive, &st),
            Modify::SelfModified
        );
        assert_eq!(
            check_modify(
                &Header::inserted(Gxid(7), 0),
                Gxid(4),
                0,
                RowLockStrength::Share,
                &st
            ),
            Modify::Invisible
        );
    }

    #[test]
    fn unique_rules() {
        let st = clog(&[1, 2], &[3]);
        assert_eq!(
            unique_conflict(&Header::inserted(Gxid(1), 0), Gxid(4), &st),
            UniqueCheck::Duplicate
        );
        assert_eq!(
            unique_conflict(&Header::inserted(Gxid(3), 0), Gxid(4), &st),
            UniqueCheck::Wait(Gxid(3))
        );
        assert_eq!(
            unique_conflict(&Header::inserted(Gxid(9), 0), Gxid(4), &st),
            UniqueCheck::Free
        );
        let mut h = Header::inserted(Gxid(1), 0);
        h.xmax = Some((Gxid(2), XmaxKind::Delete));
        assert_eq!(unique_conflict(&h, Gxid(4), &st), UniqueCheck::Free);
        h.xmax = Some((Gxid(3), XmaxKind::Delete));
        assert_eq!(
            unique_conflict(&h, Gxid(4), &st),
            UniqueCheck::Wait(Gxid(3))
        );
    }

    #[test]
    fn dead_only_below_the_horizon() {
        let st = clog(&[1, 2], &[]);
        let mut h = Header::inserted(Gxid(1), 0);
        assert!(!is_dead(&h, Gxid(10), &st));
        h.xmax = Some((Gxid(2), XmaxKind::Delete));
        assert!(is_dead(&h, Gxid(3), &st));
        assert!(!is_dead(&h, Gxid(2), &st));
        assert!(
            is_dead(&Header::inserted(Gxid(5), 0), Gxid(1), &st),
            "aborted insert"
        );
    }
}
