//! The change log: what every durable commit, PREPARE and COMMIT/ROLLBACK PREPARED appended, in
//! order, each record numbered by a log sequence number (LSN).
//!
//! Records are physical enough to replay on a standby (tuple ids and whole tuples) and are written
//! in the same redb transaction as the commit they belong to.

use pgxc_common::Gxid;
use serde::{Deserialize, Serialize};

use super::catalog::{RelDef, RelId};
use super::locks::LockMode;
use super::tuple::Tid;

/// A log sequence number: the position of a record in the change log. Starts at 1; strictly
/// increasing; never reused (PostgreSQL's `pg_lsn`, here a record counter rather than a byte
/// offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Lsn(pub u64);

impl std::fmt::Display for Lsn {
    /// PostgreSQL's `pg_lsn` text form `X/X` (high and low 32 bits in hex).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// One change of a transaction, or the end of one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A relation was created with its first storage.
    CreateRel {
        /// Its definition.
        def: RelDef,
        /// Its storage.
        sid: u64,
    },
    /// A relation was dropped.
    DropRel {
        /// Which.
        rel: RelId,
    },
    /// A relation was truncated: its rows now live in the new, empty storage.
    TruncateRel {
        /// Which.
        rel: RelId,
        /// The new storage.
        sid: u64,
    },
    /// A tuple version was written at `tid` (insert, the new version of an update, or a header
    /// change such as a delete, an update's xmax or a row lock): the whole encoded tuple.
    PutTuple {
        /// The storage.
        sid: u64,
        /// Where.
        tid: Tid,
        /// The encoded tuple (header, payload, checksum).
        tuple: Vec<u8>,
    },
    /// An index entry was added.
    IndexInsert {
        /// The index storage.
        sid: u64,
        /// The encoded key, without the tuple id.
        key: Vec<u8>,
        /// The tuple it points to.
        tid: Tid,
    },
    /// The transaction committed.
    Commit,
    /// The transaction was prepared with `gid`; its relation locks are listed.
    Prepare {
        /// The global transaction identifier.
        gid: String,
        /// Relation locks held by the prepared transaction.
        locks: Vec<(RelId, LockMode)>,
    },
    /// `COMMIT PREPARED gid`.
    CommitPrepared {
        /// The gid.
        gid: String,
    },
    /// `ROLLBACK PREPARED gid`.
    RollbackPrepared {
        /// The gid.
        gid: String,
    },
}

/// A change log record: its LSN, the transaction it belongs to, and the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Its position.
    pub lsn: Lsn,
    /// The transaction.
    pub xid: Gxid,
    /// What happened.
    pub change: Change,
}
