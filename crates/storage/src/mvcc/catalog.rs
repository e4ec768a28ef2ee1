//! The storage catalog: which relations (tables and indexes) exist, where their rows live, and
//! which transaction is creating, dropping or truncating them.
//!
//! This is not the SQL catalog (column names and types live above, in the SQL engine's own
//! tables); it is what the store needs to keep indexes in step and to make DDL transactional.
//! Lookups use the latest committed state plus the caller's own pending changes (PostgreSQL's
//! catalog snapshot), which is safe because DDL holds an AccessExclusive (or Share) relation lock.

use pgxc_common::Gxid;
use serde::{Deserialize, Serialize};

/// A relation id (PostgreSQL's `Oid` of a `pg_class` row). Allocated by the store, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RelId(pub u64);

impl std::fmt::Display for RelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a relation is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelKind {
    /// A heap table.
    Table,
    /// A B-tree index on `table`; `unique` enforces at most one live version per non-NULL key.
    Index {
        /// The indexed table.
        table: RelId,
        /// Whether the index is UNIQUE.
        unique: bool,
    },
}

/// A relation as created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelDef {
    /// Its id.
    pub id: RelId,
    /// A name for messages (e.g. the constraint name in a 23505 error); not unique here.
    pub name: String,
    /// Table or index.
    pub kind: RelKind,
}

/// A catalog row as stored: the definition, its current storage and pending DDL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RelEntry {
    pub def: RelDef,
    /// The storage (PostgreSQL's relfilenode) holding the rows or index entries.
    pub sid: u64,
    /// The transaction creating the relation, until it commits.
    pub created_by: Option<Gxid>,
    /// The transaction dropping it, until it commits (or aborts).
    pub dropped_by: Option<Gxid>,
    /// A pending TRUNCATE: the transaction and the new, empty storage.
    pub truncated: Option<(Gxid, u64)>,
}

impl RelEntry {
    /// Whether `xid` sees this relation (committed, or created by `xid`; not dropped by `xid`).
    pub fn visible_to(&self, xid: Gxid) -> bool {
        self.created_by.is_none_or(|c| c == xid) && self.dropped_by != Some(xid)
    }

    /// The storage `xid` reads and writes: its own pending truncation's, else the current one.
    pub fn sid_for(&self, xid: Gxid) -> u64 {
        match self.truncated {
            Some((x, sid)) if x == xid => sid,
            _ => self.sid,
        }
    }

    /// Whether any DDL of `xid` is pending on this entry.
    pub fn pending_for(&self, xid: Gxid) -> bool {
        self.created_by == Some(xid)
            || self.dropped_by == Some(xid)
            || self.truncated.is_some_and(|(x, _)| x == xid)
    }

    /// Apply the commit of `xid`: `None` if the entry goes away (dropped); the storages to delete.
    pub fn on_commit(mut self, xid: Gxid) -> (Option<RelEntry>, Vec<u64>) {
        if self.dropped_by == Some(xid) {
            let mut gone = vec![self.sid];
            if let Some((_, s)) = self.truncated {
                gone.push(s);
            }
            return (None, gone);
        }
        let mut gone = Vec::new();
        if self.created_by == Some(xid) {
            self.created_by = None;
        }
        if let Some((x, s)) = self.truncated {
            if x == xid {
                gone.push(self.sid);
                self.sid = s;
                self.truncated = None;
            }
        }
        (Some(self), gone)
    }

    /// Apply the rollback of `xid`: `None` if the entry goes away (its creation is undone); the
    /// storages to delete.
    pub fn on_abort(mut self, xid: Gxid) -> (Option<RelEntry>, Vec<u64>) {
        if self.created_by == Some(xid) {
            let mut gone = vec![self.sid];
            if let Some((_, s)) = self.truncated {
                gone.push(s);
            }
            return (None, gone);
        }
        let mut gone = Vec::new();
        if self.dropped_by == Some(xid) {
            self.dropped_by = None;
        }
        if let Some((x, s)) = self.truncated {
            if x == xid {
                gone.push(s);
                self.truncated = None;
            }
        }
        (Some(self), gone)
    }
}

/// The redb table holding a storage's heap tuples (`Tid` → tuple).
pub(crate) fn heap_table(sid: u64) -> String {
    format!("heap.{sid}")
}

/// The redb table holding a storage's index entries (`key ‖ Tid` → empty).
pub(crate) fn index_table(sid: u64) -> String {
    format!("index.{sid}")
}
