//! The Raft log store ([`LogStore`]) and state machine ([`StateMachine`]) of the GTM group, both on one
//! [`pgxc_storage::Kv`].
//!
//! Layout of the key/value database:
//! - table `log`: key = big-endian `u64` log index (so byte order is index order), value = postcard-encoded
//!   `openraft::Entry<TypeConfig>`;
//! - table `meta`: `vote`, `committed`, `purged` (postcard `Vote` / `Option<LogId>` / `LogId`);
//! - table `snapshot`: `current` = postcard [`StoredSnapshot`] (meta + data), the latest snapshot.
//!
//! **Invariant:** only fsynced entries are acknowledged: [`LogStore::append`] fires openraft's flush callback
//! only after a [`Durability::Immediate`] write returned, and the vote is saved with `Immediate` durability
//! before openraft acts on it. Truncation, purge and snapshots are `Immediate` too; only the committed-index
//! hint is `Deferred` (losing it only makes a restart re-apply less before the next leader commits).
//!
//! **Invariant:** data read back from disk is never trusted: a decode failure becomes an openraft
//! [`StorageError`] (which stops the Raft node) rather than a panic.

// openraft's `StorageError` (over 200 bytes) is imposed by its storage traits; boxing it only here would not help.
#![allow(clippy::result_large_err)]

use super::{LogId, Membership, TypeConfig};
use crate::core::{Command, CommandResult, DurableState};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, Vote,
};
use pgxc_storage::{Durability, Kv, WriteBatch};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

/// Table of log entries.
const LOG: &str = "log";
/// Table of the vote, the committed hint and the last purged log id.
const META: &str = "meta";
/// Table of the current snapshot.
const SNAPSHOT: &str = "snapshot";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"purged";
const KEY_SNAPSHOT: &[u8] = b"current";

/// openraft's storage error for this group.
pub type StoreError = StorageError<u64>;

fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StoreError {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // postcard to a Vec cannot fail for plain in-memory data; a failure is a Serialize bug.
    postcard::to_stdvec(v).expect("postcard encoding of an in-memory value")
}

fn decode<T: DeserializeOwned>(bytes: &[u8], subject: ErrorSubject<u64>) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| io_err(subject, ErrorVerb::Read, e))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = key.try_into().map_err(|_| {
        io_err(
            ErrorSubject::Logs,
            ErrorVerb::Read,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "log key is not 8 bytes"),
        )
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The persisted form of a snapshot: its metadata plus its data bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredSnapshot {
    /// openraft's snapshot metadata.
    pub meta: SnapshotMeta<u64, openraft::BasicNode>,
    /// The snapshot data: postcard [`SnapshotPayload`].
    pub data: Vec<u8>,
}

/// What a snapshot's data bytes contain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotPayload {
    /// The replicated GTM state.
    pub state: DurableState,
    /// The last log id applied to `state`.
    pub last_applied: Option<LogId>,
    /// The last membership applied.
    pub membership: Membership,
}

fn read_snapshot(kv: &Kv) -> Result<Option<StoredSnapshot>, StoreError> {
    let sub = ErrorSubject::Snapshot(None);
    match kv
        .get(SNAPSHOT, KEY_SNAPSHOT)
        .map_err(|e| io_err(sub.clone(), ErrorVerb::Read, e))?
    {
        None => Ok(None),
        Some(bytes) => decode(&bytes, sub).map(Some),
    }
}

/// The Raft log, the vote and the committed hint, on a [`Kv`]. Cloning shares the database (the clone is the
/// log reader openraft's replication tasks use).
#[derive(Clone, Debug)]
pub struct LogStore {
    kv: Kv,
}

impl LogStore {
    /// A log store on `kv` (which may already hold a log: a restart).
    pub fn new(kv: Kv) -> LogStore {
        LogStore { kv }
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        subject: ErrorSubject<u64>,
    ) -> Result<Option<T>, StoreError> {
        match self
            .kv
            .get(META, key)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, e))?
        {
            None => Ok(None),
            Some(b) => decode(&b, subject).map(Some),
        }
    }

    fn write(
        &self,
        batch: WriteBatch,
        durability: Durability,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StoreError> {
        self.kv
            .write(batch, durability)
            .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }

    /// The last log id in the log (or the last purged one if the log is empty).
    pub fn last_log_id(&self) -> Result<Option<LogId>, StoreError> {
        let last = self
            .kv
            .last(LOG)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        match last {
            Some((_, v)) => {
                let e: Entry<TypeConfig> = decode(&v, ErrorSubject::Logs)?;
                Ok(Some(e.log_id))
            }
            None => self.read_meta(KEY_PURGED, ErrorSubject::Logs),
        }
    }

    /// The saved vote, if any.
    pub fn vote(&self) -> Result<Option<Vote<u64>>, StoreError> {
        self.read_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    /// Append `entries` and save `vote` in one fsynced write, bypassing openraft (the Raft of this store must
    /// be shut down). Used only by [`super::RaftNode::promote`].
    pub(crate) fn force_append(
        &self,
        entries: &[Entry<TypeConfig>],
        vote: &Vote<u64>,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        for e in entries {
            batch.put(LOG, &index_key(e.log_id.index), &encode(e));
        }
        batch.put(META, KEY_VOTE, &encode(vote));
        self.write(batch, Durability::Immediate, ErrorSubject::Logs)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StoreError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let rows = self
            .kv
            .range(
                LOG,
                start.as_ref().map(|k| &k[..]),
                end.as_ref().map(|k| &k[..]),
                false,
                None,
            )
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (k, v) in rows {
            let index = key_index(&k)?;
            let entry: Entry<TypeConfig> = decode(&v, ErrorSubject::Log(LogId::default()))?;
            if entry.log_id.index != index {
                return Err(io_err(
                    ErrorSubject::Log(entry.log_id),
                    ErrorVerb::Read,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("entry stored under index {index}"),
                    ),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StoreError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(KEY_PURGED, ErrorSubject::Logs)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(META, KEY_VOTE, &encode(vote));
        self.write(batch, Durability::Immediate, ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StoreError> {
        self.vote()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(META, KEY_COMMITTED, &encode(&committed));
        // A hint only: losing it makes a restart re-apply less eagerly, never wrongly.
        self.write(batch, Durability::Deferred, ErrorSubject::Store)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StoreError> {
        Ok(self
            .read_meta::<Option<LogId>>(KEY_COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        for e in entries {
            batch.put(LOG, &index_key(e.log_id.index), &encode(&e));
        }
        match self.kv.write(batch, Durability::Immediate) {
            Ok(()) => {
                // Acknowledged only now that the entries are fsynced.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                callback.log_io_completed(Err(std::io::Error::other(msg)));
                Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        let from = index_key(log_id.index);
        batch.delete_range(LOG, Bound::Included(&from[..]), Bound::Unbounded);
        self.write(batch, Durability::Immediate, ErrorSubject::Logs)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        let upto = index_key(log_id.index);
        batch.put(META, KEY_PURGED, &encode(&log_id));
        batch.delete_range(LOG, Bound::Unbounded, Bound::Included(&upto[..]));
        self.write(batch, Durability::Immediate, ErrorSubject::Logs)
    }
}

/// One applied log entry, as published to [`StateMachine::subscribe`]rs.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The entry's log id.
    pub log_id: LogId,
    /// The command (only normal entries are published; blank and membership entries are not).
    pub command: Command,
    /// What [`DurableState::apply`] returned.
    pub result: CommandResult,
}

/// The part of the state machine shared with the GTM server.
#[derive(Debug)]
pub(crate) struct SmShared {
    /// The replicated state; the server locks it briefly to read.
    pub(crate) state: Arc<Mutex<DurableState>>,
    /// Applied commands, in log order.
    pub(crate) applied_tx: tokio::sync::broadcast::Sender<Applied>,
    /// Serialises snapshot writes (the builder runs in its own task, concurrently with installs).
    snapshot_lock: Mutex<()>,
}

/// Capacity of the applied-command broadcast channel; a slower subscriber sees `Lagged` and must resync from
/// the state.
pub const APPLIED_CHANNEL: usize = 4096;

/// The GTM state machine: [`DurableState`] plus the last applied log id and membership, with snapshots kept in
/// the same [`Kv`] as the log.
#[derive(Debug)]
pub struct StateMachine {
    kv: Kv,
    shared: Arc<SmShared>,
    last_applied: Option<LogId>,
    membership: Membership,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave DurableState half-applied in a way we could repair; keep going
    // with the data as is (the panic itself is reported elsewhere).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StateMachine {
    /// A state machine on `kv`, restored from the persisted snapshot if there is one (openraft then replays the
    /// log after it).
    pub fn open(kv: Kv) -> Result<StateMachine, StoreError> {
        let (tx, _) = tokio::sync::broadcast::channel(APPLIED_CHANNEL);
        let shared = Arc::new(SmShared {
            state: Arc::new(Mutex::new(DurableState::default())),
            applied_tx: tx,
            snapshot_lock: Mutex::new(()),
        });
        StateMachine::reopen(kv, shared)
    }

    /// Like [`StateMachine::open`], but reusing the shared state handle and applied-command channel of a
    /// previous state machine on the same `kv` (restart in place): the state is reset to the snapshot (or to
    /// the default without one), never applied twice.
    pub(crate) fn reopen(kv: Kv, shared: Arc<SmShared>) -> Result<StateMachine, StoreError> {
        let mut sm = StateMachine {
            kv,
            shared,
            last_applied: None,
            membership: Membership::default(),
        };
        let mut state = DurableState::default();
        if let Some(snap) = read_snapshot(&sm.kv)? {
            let payload: SnapshotPayload = decode(
                &snap.data,
                ErrorSubject::Snapshot(Some(snap.meta.signature())),
            )?;
            state = payload.state;
            sm.last_applied = snap.meta.last_log_id;
            sm.membership = snap.meta.last_membership.clone();
        }
        *lock(&sm.shared.state) = state;
        Ok(sm)
    }

    /// The replicated state, shared with the server.
    pub fn state(&self) -> Arc<Mutex<DurableState>> {
        self.shared.state.clone()
    }

    /// Subscribe to applied commands (from now on).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Applied> {
        self.shared.applied_tx.subscribe()
    }

    pub(crate) fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for the builder.
#[derive(Debug)]
pub struct SnapshotBuilder {
    kv: Kv,
    shared: Arc<SmShared>,
    payload: SnapshotPayload,
}

/// Persist `snap` as the current snapshot unless a newer one is already stored.
fn persist_snapshot(kv: &Kv, shared: &SmShared, snap: &StoredSnapshot) -> Result<(), StoreError> {
    let _g = lock(&shared.snapshot_lock);
    let sub = ErrorSubject::Snapshot(Some(snap.meta.signature()));
    if let Some(cur) = read_snapshot(kv)? {
        if cur.meta.last_log_id > snap.meta.last_log_id {
            return Ok(());
        }
    }
    let mut batch = WriteBatch::new();
    batch.put(SNAPSHOT, KEY_SNAPSHOT, &encode(snap));
    kv.write(batch, Durability::Immediate)
        .map_err(|e| io_err(sub, ErrorVerb::Write, e))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StoreError> {
        let p = &self.payload;
        let snapshot_id = match &p.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "none".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: p.last_applied,
            last_membership: p.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: encode(p),
        };
        persist_snapshot(&self.kv, &self.shared, &stored)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StoreError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StoreError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(CommandResult::Done),
                EntryPayload::Membership(m) => {
                    self.membership = Membership::new(Some(entry.log_id), m);
                    results.push(CommandResult::Done);
                }
                EntryPayload::Normal(command) => {
                    let result = lock(&self.shared.state).apply(&command);
                    // Nobody listening is fine.
                    let _ = self.shared.applied_tx.send(Applied {
                        log_id: entry.log_id,
                        command,
                        result: result.clone(),
                    });
                    results.push(result);
                }
            }
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            kv: self.kv.clone(),
            shared: self.shared.clone(),
            payload: SnapshotPayload {
                state: lock(&self.shared.state).clone(),
                last_applied: self.last_applied,
                membership: self.membership.clone(),
            },
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StoreError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StoreError> {
        let data = snapshot.into_inner();
        let payload: SnapshotPayload =
            decode(&data, ErrorSubject::Snapshot(Some(meta.signature())))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        persist_snapshot(&self.kv, &self.shared, &stored)?;
        *lock(&self.shared.state) = payload.state;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StoreError> {
        Ok(read_snapshot(&self.kv)?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
