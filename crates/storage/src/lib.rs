//! pgxc-storage: the storage seam. The only crate of the workspace that names redb.
//!
//! Every pgxc component that keeps state on disk (the GTM's Raft log and state-machine
//! snapshots, the datanode's MVCC storage) gets its disk through this crate:
//!
//! - [`Disk`] says where a component's files live: [`Disk::real`] (a directory, redb's normal
//!   file backend) or [`Disk::sim`] (a [`SimDisk`], for deterministic simulation under madsim).
//!   [`Disk::open_kv`] opens a named database file on it; [`Disk::exists`] tells a first start.
//! - [`Kv`] is a small key/value API over one redb database: named tables of byte keys to byte
//!   values, point reads, ordered ranges in both directions with limits, first/last, and atomic
//!   [`WriteBatch`]es with an explicit [`Durability`] (`Immediate` = fsynced before returning,
//!   `Deferred` = durable with the next `Immediate` write).
//! - [`StorageError`] classifies failures as I/O, corruption or misuse, and converts into
//!   [`pgxc_common::PgError`] (SQLSTATE 58030, XX001, XX000).
//!
//! redb calls are synchronous: inside the simulator that is fine (and required: no threads); in
//! real mode, keep heavy calls off latency-sensitive async tasks.
//!
//! # The crash model of [`SimDisk`]
//!
//! redb reaches a simulated file only through its `StorageBackend` trait (`len`, `read`,
//! `write`, `set_len`, `sync_data`, `close`). Per file the disk keeps a durable image and the
//! in-order list of `write`/`set_len` operations since the last `sync_data`; `sync_data` makes
//! the current image durable. [`SimDisk::crash`] models power loss of the whole disk, drawing
//! randomness only from the rng it is given:
//!
//! - with probability 1/4 a file loses all its unsynced operations; otherwise a random in-order
//!   prefix of them (empty to complete) survives;
//! - when a prefix survives, its last write may be torn (probability 1/2): only its first `k`
//!   bytes persist, `k` at a 512-byte sector boundary or arbitrary;
//! - the result becomes the new durable content, and every handle opened before the crash is
//!   fenced (an epoch counter): all its later calls, including the writes redb's destructor makes
//!   when the killed node's `Database` is dropped, fail with an I/O error and change nothing.
//!
//! Fault injection ([`SimDisk::fail_after_writes`]) makes the disk fail after `n` more
//! write/set_len/sync calls, as a dying disk would. Reopening after a crash makes redb repair
//! the file back to its last complete commit.
//!
//! **Invariant:** a batch acknowledged by `Kv::write(.., Durability::Immediate)` survives any
//! crash: after reopening, it and every batch before it are visible.
//!
//! **Invariant:** a crash never exposes part of a batch: the reopened state is the state after
//! some whole batch at or after the last acknowledged `Immediate` one.
//!
//! **Invariant:** a fenced handle (opened before a crash) never changes the disk.
//!
//! **Invariant:** one live handle per file: a second [`Disk::open_kv`] of an open file fails
//! with [`StorageError::Misuse`] (a crash releases all handles).
//!
//! **Invariant:** this crate never panics on data read from disk; damage is reported as
//! [`StorageError::Corruption`] (as far as redb itself does not panic).

mod disk;
mod error;
pub mod keycode;
mod kv;
pub mod mvcc;
mod sim;

pub use disk::Disk;
pub use error::{Result, StorageError};
pub use kv::{Durability, Kv, WriteBatch};
pub use sim::{CrashReport, SimDisk, SimStats, SECTOR_SIZE};
