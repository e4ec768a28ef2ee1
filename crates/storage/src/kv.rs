//! [`Kv`]: a small byte-oriented key/value API over one redb database, with named tables of
//! `&[u8] -> &[u8]`, atomic [`WriteBatch`]es and explicit [`Durability`].

use std::ops::Bound;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Result, StorageError};

/// How durable a [`Kv::write`] is when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// The batch is on stable storage (fsynced) before `write` returns: it survives any crash.
    /// redb's `Durability::Immediate`.
    Immediate,
    /// The batch is visible to later reads at once but reaches stable storage only with the next
    /// `Immediate` write (or a clean close); a crash before that may lose it (whole, never
    /// partly). redb's `Durability::None`. redb keeps the dirty pages of such commits in memory
    /// (up to its cache size) until the next `Immediate` commit, so interleave `Immediate` writes
    /// to bound memory.
    Deferred,
}

/// One operation of a [`WriteBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum BatchOp {
    Put {
        table: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: String,
        key: Vec<u8>,
    },
    DeleteRange {
        table: String,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    },
}

/// A list of puts and deletes applied in order, atomically, by [`Kv::write`].
///
/// Either every operation of the batch is visible (in memory and, per the durability, after a
/// crash) or none is. Operations on several tables may be mixed; later operations see earlier
/// ones (a put after a delete of the same key leaves the put).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch. Writing an empty batch still commits (an `Immediate` one is a sync
    /// barrier that makes earlier `Deferred` writes durable).
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Set `key` to `value` in `table` (creating the table if needed).
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(BatchOp::Put {
            table: table.to_string(),
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self
    }

    /// Remove `key` from `table` (no-op if absent).
    pub fn delete(&mut self, table: &str, key: &[u8]) -> &mut Self {
        self.ops.push(BatchOp::Delete {
            table: table.to_string(),
            key: key.to_vec(),
        });
        self
    }

    /// Remove every key of `table` within `(start, end)` (byte-wise lexicographic order; an
    /// empty or inverted range removes nothing). E.g. Raft log truncation or purge.
    pub fn delete_range(
        &mut self,
        table: &str,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> &mut Self {
        self.ops.push(BatchOp::DeleteRange {
            table: table.to_string(),
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
        });
        self
    }

    /// The number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

fn table_def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// Whether `(start, end)` can contain any key; redb (like `BTreeMap`) may panic on an inverted
/// range, so such ranges are answered as empty before reaching it.
fn range_is_nonempty(start: &Bound<&[u8]>, end: &Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s < e,
        _ => true,
    }
}

struct KvInner {
    db: redb::Database,
    /// The file name on its disk, for error messages.
    name: String,
}

/// A key/value store: one redb database file, with named tables mapping byte keys to byte values
/// (ordered byte-wise lexicographically).
///
/// Cloning is cheap (an `Arc`); clones share the database. `Kv` is `Send + Sync`. Reads see every
/// write that returned before them (including `Deferred` ones). Writes are serialized by redb
/// (one write transaction at a time; a concurrent `write` blocks until the previous one ends).
///
/// All calls are synchronous and may do disk I/O (an `Immediate` write fsyncs). Under madsim
/// that is fine; in real mode, callers on hot async paths may want to run them on a blocking
/// thread (not in simulated code: the simulator forbids threads).
///
/// Reading a table that was never written returns empty results, not an error.
#[derive(Clone)]
pub struct Kv {
    inner: Arc<KvInner>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("name", &self.inner.name)
            .finish()
    }
}

/// Copy a redb entry out into owned vectors.
fn owned(
    entry: (
        redb::AccessGuard<'_, &'static [u8]>,
        redb::AccessGuard<'_, &'static [u8]>,
    ),
) -> (Vec<u8>, Vec<u8>) {
    (entry.0.value().to_vec(), entry.1.value().to_vec())
}

impl Kv {
    pub(crate) fn new(db: redb::Database, name: String) -> Kv {
        Kv {
            inner: Arc::new(KvInner { db, name }),
        }
    }

    /// The redb database, for the MVCC store in this crate.
    pub(crate) fn db(&self) -> &redb::Database {
        &self.inner.db
    }

    /// The file name of this database on its disk.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Add the file name to an error's message.
    fn ctx(&self, err: impl Into<StorageError>) -> StorageError {
        match err.into() {
            StorageError::Io(m) => StorageError::Io(format!("{}: {m}", self.inner.name)),
            StorageError::Corruption(m) => {
                StorageError::Corruption(format!("{}: {m}", self.inner.name))
            }
            StorageError::Misuse(m) => StorageError::Misuse(format!("{}: {m}", self.inner.name)),
        }
    }

    /// Run `f` on table `table` in a fresh read transaction; `None` if the table does not exist.
    fn with_read_table<R>(
        &self,
        table: &str,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<R>,
    ) -> Result<Option<R>> {
        let txn = self.inner.db.begin_read().map_err(|e| self.ctx(e))?;
        let t = match txn.open_table(table_def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.ctx(e)),
        };
        f(&t).map(Some)
    }

    /// The value of `key` in `table`, or `None` if the key or the table is absent.
    ///
    /// Errors: [`StorageError::Io`] / [`StorageError::Corruption`] from the disk.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .with_read_table(table, |t| {
                Ok(t.get(key)
                    .map_err(|e| self.ctx(e))?
                    .map(|v| v.value().to_vec()))
            })?
            .flatten())
    }

    /// The entries of `table` with keys in `(start, end)`, in ascending key order (descending if
    /// `reverse`), at most `limit` of them (all if `None`). An absent table, an empty or an
    /// inverted range gives an empty vector.
    ///
    /// Errors: [`StorageError::Io`] / [`StorageError::Corruption`] from the disk.
    pub fn range(
        &self,
        table: &str,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if !range_is_nonempty(&start, &end) || limit == Some(0) {
            return Ok(Vec::new());
        }
        let limit = limit.unwrap_or(usize::MAX);
        Ok(self
            .with_read_table(table, |t| {
                let iter = t.range::<&[u8]>((start, end)).map_err(|e| self.ctx(e))?;
                let mut out = Vec::new();
                let mut push = |entry: std::result::Result<_, redb::StorageError>| -> Result<bool> {
                    out.push(owned(entry.map_err(|e| self.ctx(e))?));
                    Ok(out.len() < limit)
                };
                if reverse {
                    for entry in iter.rev() {
                        if !push(entry)? {
                            break;
                        }
                    }
                } else {
                    for entry in iter {
                        if !push(entry)? {
                            break;
                        }
                    }
                }
                Ok(out)
            })?
            .unwrap_or_default())
    }

    /// The entry with the smallest key in `table`, or `None` if it is empty or absent.
    ///
    /// Errors: [`StorageError::Io`] / [`StorageError::Corruption`] from the disk.
    pub fn first(&self, table: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .with_read_table(table, |t| {
                Ok(t.first().map_err(|e| self.ctx(e))?.map(owned))
            })?
            .flatten())
    }

    /// The entry with the largest key in `table`, or `None` if it is empty or absent.
    ///
    /// Errors: [`StorageError::Io`] / [`StorageError::Corruption`] from the disk.
    pub fn last(&self, table: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .with_read_table(table, |t| Ok(t.last().map_err(|e| self.ctx(e))?.map(owned)))?
            .flatten())
    }

    /// Apply `batch` atomically in one redb write transaction with the given durability.
    ///
    /// On `Ok`, every operation is visible to later reads, and with [`Durability::Immediate`] it
    /// is on stable storage. On `Err`, nothing of the batch is visible to this handle; whether an
    /// `Immediate` batch whose commit failed reached the disk is unknown (it may appear after a
    /// restart). After an I/O error redb refuses further writes on this handle (every later call
    /// fails with [`StorageError::Io`]); reopen the database.
    ///
    /// Errors: [`StorageError::Io`] (disk failure, fenced handle), [`StorageError::Corruption`],
    /// [`StorageError::Misuse`] (e.g. a value too large for redb, about 3 GiB).
    pub fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let mut txn = self.inner.db.begin_write().map_err(|e| self.ctx(e))?;
        txn.set_durability(match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::Deferred => redb::Durability::None,
        })
        .map_err(|e| self.ctx(e))?;
        for op in &batch.ops {
            match op {
                BatchOp::Put { table, key, value } => {
                    let mut t = txn.open_table(table_def(table)).map_err(|e| self.ctx(e))?;
                    t.insert(key.as_slice(), value.as_slice())
                        .map_err(|e| self.ctx(e))?;
                }
                BatchOp::Delete { table, key } => {
                    let mut t = txn.open_table(table_def(table)).map_err(|e| self.ctx(e))?;
                    t.remove(key.as_slice()).map_err(|e| self.ctx(e))?;
                }
                BatchOp::DeleteRange { table, start, end } => {
                    let start = start.as_ref().map(Vec::as_slice);
                    let end = end.as_ref().map(Vec::as_slice);
                    if !range_is_nonempty(&start, &end) {
                        continue;
                    }
                    let mut t = txn.open_table(table_def(table)).map_err(|e| self.ctx(e))?;
                    t.retain_in::<&[u8], _>((start, end), |_, _| false)
                        .map_err(|e| self.ctx(e))?;
                }
            }
        }
        // Dropping `txn` on an error above aborts it: nothing of the batch is applied.
        txn.commit().map_err(|e| self.ctx(e))
    }
}

/// Compile-time check: `Kv` is `Send + Sync + Clone`.
const _: () = {
    const fn check<T: Send + Sync + Clone>() {}
    check::<Kv>();
};
