//! The datanode's MVCC store: heap tables and B-tree indexes on redb, PostgreSQL visibility
//! against global snapshots, row and relation locks, two-phase commit, group commit, a change log,
//! vacuum and crash recovery.
//!
//! # Model
//!
//! A [`Store`] is one redb file on a [`Disk`]. Transactions are identified by the GTM's GXIDs
//! (Postgres-XC runs datanode transactions under the global id, not a local one) and begun with
//! [`Store::begin`], carrying the global snapshot the coordinator got from the GTM. Rows are
//! opaque byte payloads (the SQL engine encodes them); index keys are byte strings the caller
//! computes (e.g. with [`crate::keycode`]), compared byte-wise.
//!
//! Like PostgreSQL, every row version (tuple) is stored in place with its header (xmin, cmin,
//! xmax, cmax, the next version, row lockers) as soon as it is written, and its visibility is
//! decided when read: [`visibility::visible`] against the snapshot first, then the local commit
//! log. An index entry (`key ‖ tid`) exists for every version, so an index scan checks each
//! version it finds. Uncommitted tuples are written with deferred durability; a commit writes its
//! commit-log entry and its change-log records in one immediately durable redb transaction, shared
//! by every commit waiting at that moment (group commit), and is acknowledged only after it.
//!
//! # Recovery
//!
//! A GXID with no commit-log entry is aborted, so transactions running at a crash are aborted by
//! construction; prepared ones come back with their relation locks (from their prepared record)
//! and their row locks (in the tuple headers); pending DDL of aborted transactions is undone and
//! storage no catalog entry references is deleted when the store opens.
//!
//! **Invariant:** a commit is acknowledged only after its commit-log entry is durable, and every
//! change it made is durable with it (redb commits are ordered and atomic).
//!
//! **Invariant:** a GXID begins at most once in a store's lifetime ([`Store::begin`] refuses a
//! known one).
//!
//! **Invariant:** change-log LSNs are strictly increasing in commit order and never reused.
//!
//! **Invariant:** a version is removed by vacuum only when it is dead to every snapshot at or
//! above the horizon, and the horizon never exceeds the xmin of a local transaction's snapshot.
//!
//! **Invariant:** no data read from disk is trusted: tuples carry a CRC-32 and a damaged one is a
//! [`StorageError::Corruption`] (SQLSTATE XX001), never a panic.

mod catalog;
mod commit;
#[cfg(not(madsim))]
pub mod fixtures;
mod local_gtm;
mod locks;
mod store;
mod tuple;
mod txn;
mod vacuum;
pub mod visibility;
mod wal;

pub use catalog::{RelDef, RelId, RelKind};
pub use local_gtm::LocalGtm;
pub use locks::LockMode;
pub use store::{PrepareInfo, PreparedXact, RelStats, Store, StoreConfig, VacuumStats};
pub use tuple::{decode_tuple, encode_tuple, Header, RowLockStrength, Tid, XmaxKind};
pub use txn::{
    would_block, CancelHandle, IndexKey, Isolation, KeyRange, NewRow, Outcome, Row, Savepoint,
    Scan, Txn,
};
pub use visibility::XidStatus;
pub use wal::{Change, ChangeRecord, Lsn};

#[allow(unused_imports)] // referenced by the module docs
use crate::{Disk, StorageError};
