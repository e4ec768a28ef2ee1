//! [`SimDisk`]: a simulated disk that can lose, keep or tear unsynced writes, for deterministic
//! crash testing under madsim (or plain tests).
//!
//! Each file is a byte image seen by the running process (`current`), the durable image that
//! survives power loss (`durable`), and the list of `write`/`set_len` operations applied to
//! `current` since the last `sync_data` (`pending`). `sync_data` makes `current` durable.
//! [`SimDisk::crash`] decides, per file, which pending operations reached the platter (see the
//! crash model in the crate docs), makes the result durable, and fences every open handle.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::Rng;

/// The size of a simulated sector in bytes: torn writes are often cut at a multiple of it.
pub const SECTOR_SIZE: usize = 512;

/// One unsynced operation on a simulated file.
#[derive(Clone, Debug)]
enum Op {
    /// `write(offset, data)`; extends the file (zero-filled) if it ends past the current length.
    Write { offset: u64, data: Vec<u8> },
    /// `set_len(len)`; new bytes are zero.
    SetLen(u64),
}

impl Op {
    /// Apply this operation to `image`. `limit` keeps only the first `limit` bytes of a write
    /// (a torn write); `None` applies it whole.
    fn apply(&self, image: &mut Vec<u8>, limit: Option<usize>) {
        match self {
            Op::Write { offset, data } => {
                let data = match limit {
                    Some(n) => &data[..n.min(data.len())],
                    None => &data[..],
                };
                // Offsets were checked to fit in usize when the write was accepted.
                let start = *offset as usize;
                let end = start + data.len();
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            Op::SetLen(len) => image.resize(*len as usize, 0),
        }
    }
}

/// One simulated file.
#[derive(Default)]
struct SimFile {
    /// What survives a crash.
    durable: Vec<u8>,
    /// What the running process sees: `durable` with `pending` applied.
    current: Vec<u8>,
    /// Operations since the last `sync_data`, in order.
    pending: Vec<Op>,
    /// The id of the live backend that has this file open, if any.
    open_handle: Option<u64>,
}

/// Counters of what happened on a [`SimDisk`] since it was created (all files, all epochs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Successful `write` calls.
    pub writes: u64,
    /// Successful `set_len` calls.
    pub set_lens: u64,
    /// Successful `sync_data` calls.
    pub syncs: u64,
    /// `read` calls refused because they reached past the end of the file.
    pub reads_past_len: u64,
    /// Successful `write` calls that extended the file (redb normally grows it with `set_len`
    /// first).
    pub writes_past_len: u64,
    /// Calls refused because their handle was fenced by a crash or already closed.
    pub fenced_calls: u64,
    /// Calls refused by fault injection ([`SimDisk::fail_after_writes`]).
    pub injected_failures: u64,
    /// Crashes ([`SimDisk::crash`]).
    pub crashes: u64,
    /// Writes torn by crashes.
    pub torn_writes: u64,
}

/// What one [`SimDisk::crash`] did, summed over all files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced operations that reached the durable image (a torn write counts as kept).
    pub kept_ops: u64,
    /// Unsynced operations that were lost.
    pub dropped_ops: u64,
    /// Writes of which only a prefix of bytes reached the durable image (0 or 1 per file).
    pub torn_writes: u64,
}

#[derive(Default)]
struct SimState {
    /// Bumped by every crash; handles of an older epoch are fenced.
    epoch: u64,
    /// Source of handle ids (unique per disk).
    next_handle: u64,
    files: BTreeMap<String, SimFile>,
    /// Fault injection: how many more write/set_len/sync calls succeed; `Some(0)` fails them all.
    fail_after: Option<u64>,
    stats: SimStats,
}

/// A simulated disk holding any number of named files, shared by cloning.
///
/// Clones share the same files (an `Arc<Mutex<..>>` inside), so the simulation harness keeps one
/// clone across a node's "process" restarts and hands `Disk::sim(disk.clone())` to each
/// incarnation. All randomness comes from the rng given to [`SimDisk::crash`]; nothing reads
/// clocks, threads or OS randomness, so it is deterministic under madsim.
///
/// Memory: a file costs its current image plus its durable image plus the bytes written since its
/// last sync.
#[derive(Clone, Default)]
pub struct SimDisk {
    inner: Arc<Mutex<SimState>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let mut map = f.debug_map();
        for (name, file) in &state.files {
            map.entry(name, &(file.current.len(), file.pending.len()));
        }
        map.finish()
    }
}

fn fenced_error() -> io::Error {
    io::Error::other("simulated disk: handle fenced by a crash (or closed)")
}

impl SimDisk {
    /// An empty disk with no files and no fault injection.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than the panic itself; keep going rather than cascade.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The names of all files on the disk, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }

    /// Whether a file named `name` exists (it exists from its first open on, even if empty).
    pub fn exists(&self, name: &str) -> bool {
        self.lock().files.contains_key(name)
    }

    /// The current size in bytes of file `name` as the running process sees it (including
    /// unsynced operations), or `None` if there is no such file.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.lock().files.get(name).map(|f| f.current.len() as u64)
    }

    /// A copy of the durable image of file `name` (what a crash right now with every unsynced
    /// operation dropped would leave), or `None` if there is no such file. For tests.
    pub fn durable_image(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).map(|f| f.durable.clone())
    }

    /// A copy of the current image of file `name` (including unsynced operations), or `None`.
    /// For tests.
    pub fn current_image(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).map(|f| f.current.clone())
    }

    /// Install `bytes` as the whole content of file `name` (creating it if missing), durable at
    /// once, with no unsynced operations: as if the file had been copied onto the disk while no
    /// process had it open. For tests, e.g. to open a hand-made or deliberately damaged image
    /// (see [`SimDisk::durable_image`]). A handle that had the file open is fenced: its later
    /// calls fail and change nothing.
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        let mut state = self.lock();
        let file = state.files.entry(name.to_string()).or_default();
        file.current.clone_from(&bytes);
        file.durable = bytes;
        file.pending.clear();
        file.open_handle = None;
    }

    /// The number of unsynced operations on file `name` (0 if there is no such file).
    pub fn pending_ops(&self, name: &str) -> usize {
        self.lock().files.get(name).map_or(0, |f| f.pending.len())
    }

    /// Fault injection: after `n` more successful write/set_len/sync calls (over all files), every
    /// further such call fails with an I/O error and changes nothing, as a failed disk would.
    /// `None` repairs the disk. The setting survives crashes (the disk is still broken after the
    /// node restarts) until changed. Reads are never failed.
    pub fn fail_after_writes(&self, n: Option<u64>) {
        self.lock().fail_after = n;
    }

    /// The number of successful `sync_data` calls since the disk was created.
    pub fn sync_count(&self) -> u64 {
        self.lock().stats.syncs
    }

    /// Counters of everything that happened on this disk.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// Model a power loss of every file on the disk, using only `rng` for randomness.
    ///
    /// Per file with unsynced operations: with probability 1/4 all of them are lost; otherwise a
    /// uniformly random in-order prefix of them (possibly empty, possibly all) is kept, and if the
    /// last kept operation is a write, with probability 1/2 it is torn: only the first `k` bytes
    /// of it are kept, `k < len`, either at a [`SECTOR_SIZE`] boundary or at an arbitrary byte.
    /// The result becomes the durable content. Every handle opened before the crash is fenced:
    /// all its later calls fail with an I/O error and change nothing. Fault injection
    /// ([`SimDisk::fail_after_writes`]) is left as it is.
    pub fn crash(&self, rng: &mut impl Rng) -> CrashReport {
        let mut state = self.lock();
        let mut report = CrashReport::default();
        for file in state.files.values_mut() {
            let pending = std::mem::take(&mut file.pending);
            let n = pending.len();
            let keep = if n == 0 || rng.gen_ratio(1, 4) {
                0
            } else {
                rng.gen_range(0..=n)
            };
            let mut image = std::mem::take(&mut file.durable);
            for (i, op) in pending[..keep].iter().enumerate() {
                let mut limit = None;
                if i + 1 == keep {
                    if let Op::Write { data, .. } = op {
                        if !data.is_empty() && rng.gen_bool(0.5) {
                            let len = data.len();
                            let cut = if len > SECTOR_SIZE && rng.gen_bool(0.5) {
                                rng.gen_range(0..len.div_ceil(SECTOR_SIZE)) * SECTOR_SIZE
                            } else {
                                rng.gen_range(0..len)
                            };
                            limit = Some(cut);
                            report.torn_writes += 1;
                        }
                    }
                }
                op.apply(&mut image, limit);
            }
            report.kept_ops += keep as u64;
            report.dropped_ops += (n - keep) as u64;
            file.current = image.clone();
            file.durable = image;
            file.open_handle = None;
        }
        state.epoch += 1;
        state.stats.crashes += 1;
        state.stats.torn_writes += report.torn_writes;
        report
    }

    /// Open file `name` (creating it empty if missing) as a redb storage backend.
    ///
    /// Errors: `AlreadyOpen`-style I/O error if a live handle of this epoch has it open.
    pub(crate) fn open_backend(&self, name: &str) -> io::Result<SimBackend> {
        let mut state = self.lock();
        let epoch = state.epoch;
        let handle = state.next_handle;
        let file = state.files.entry(name.to_string()).or_default();
        if file.open_handle.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("simulated file {name:?} is already open"),
            ));
        }
        file.open_handle = Some(handle);
        state.next_handle += 1;
        Ok(SimBackend {
            disk: self.clone(),
            name: name.to_string(),
            epoch,
            handle,
        })
    }
}

/// A handle on one simulated file, given to redb as its [`redb::StorageBackend`].
pub(crate) struct SimBackend {
    disk: SimDisk,
    name: String,
    /// The disk epoch when this handle was opened.
    epoch: u64,
    /// This handle's id; the file records which handle has it open.
    handle: u64,
}

impl fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBackend")
            .field("name", &self.name)
            .field("epoch", &self.epoch)
            .field("handle", &self.handle)
            .finish()
    }
}

/// Which calls consume the fault-injection countdown.
#[derive(PartialEq, Eq)]
enum Access {
    Read,
    Mutate,
}

impl SimBackend {
    /// Run `f` on this handle's file if the handle is live (same epoch, still the file's open
    /// handle) and, for mutations, fault injection allows it.
    fn with_file<R>(
        &self,
        access: Access,
        f: impl FnOnce(&mut SimFile, &mut SimStats) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut guard = self.disk.lock();
        let state = &mut *guard;
        let live = state.epoch == self.epoch
            && state
                .files
                .get(&self.name)
                .is_some_and(|file| file.open_handle == Some(self.handle));
        if !live {
            state.stats.fenced_calls += 1;
            return Err(fenced_error());
        }
        if access == Access::Mutate {
            match &mut state.fail_after {
                Some(0) => {
                    state.stats.injected_failures += 1;
                    return Err(io::Error::other("simulated disk failure (injected)"));
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        match state.files.get_mut(&self.name) {
            Some(file) => f(file, &mut state.stats),
            None => Err(fenced_error()),
        }
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> io::Result<u64> {
        self.with_file(Access::Read, |file, _| Ok(file.current.len() as u64))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.with_file(Access::Read, |file, stats| {
            let start = to_usize(offset)?;
            match start
                .checked_add(out.len())
                .and_then(|end| file.current.get(start..end))
            {
                Some(src) => {
                    out.copy_from_slice(src);
                    Ok(())
                }
                None => {
                    stats.reads_past_len += 1;
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "simulated disk: read past the end of the file",
                    ))
                }
            }
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_file(Access::Mutate, |file, stats| {
            let op = Op::SetLen(to_usize(len).map(|l| l as u64)?);
            op.apply(&mut file.current, None);
            file.pending.push(op);
            stats.set_lens += 1;
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with_file(Access::Mutate, |file, stats| {
            file.pending.clear();
            file.durable.clone_from(&file.current);
            stats.syncs += 1;
            Ok(())
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with_file(Access::Mutate, |file, stats| {
            let start = to_usize(offset)?;
            let end = start
                .checked_add(data.len())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write too large"))?;
            if end > file.current.len() {
                stats.writes_past_len += 1;
            }
            let op = Op::Write {
                offset,
                data: data.to_vec(),
            };
            op.apply(&mut file.current, None);
            file.pending.push(op);
            stats.writes += 1;
            Ok(())
        })
    }

    fn close(&self) -> io::Result<()> {
        self.with_file(Access::Read, |file, _| {
            file.open_handle = None;
            Ok(())
        })
    }
}

impl Drop for SimBackend {
    fn drop(&mut self) {
        // redb calls close() exactly once; this covers a backend dropped without it. A fenced or
        // already closed handle changes nothing.
        let mut state = self.disk.lock();
        if state.epoch == self.epoch {
            if let Some(file) = state.files.get_mut(&self.name) {
                if file.open_handle == Some(self.handle) {
                    file.open_handle = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use redb::StorageBackend;

    #[test]
    fn unsynced_ops_are_kept_dropped_or_torn() {
        let mut rng = StdRng::seed_from_u64(7);
        let disk = SimDisk::new();
        let (mut kept_all, mut dropped_all, mut torn) = (0, 0, 0);
        for round in 0..200u64 {
            let name = format!("f{round}");
            let b = disk.open_backend(&name).expect("open");
            b.write(0, &[1u8; 1000]).expect("write");
            b.sync_data().expect("sync");
            b.write(0, &[2u8; 1000]).expect("write");
            let report = disk.crash(&mut rng);
            let image = disk.durable_image(&name).expect("file");
            assert_eq!(image.len(), 1000);
            let twos = image.iter().take_while(|&&x| x == 2).count();
            assert!(
                image[twos..].iter().all(|&x| x == 1),
                "prefix of new bytes only"
            );
            match twos {
                1000 => kept_all += 1,
                0 if report.torn_writes == 0 => dropped_all += 1,
                _ => torn += 1,
            }
            assert!(b.write(0, &[3u8; 10]).is_err(), "old handle is fenced");
            drop(b);
            assert_eq!(disk.durable_image(&name).expect("file"), image);
        }
        assert!(
            kept_all > 10 && dropped_all > 10 && torn > 10,
            "{kept_all} {dropped_all} {torn}"
        );
        assert_eq!(disk.stats().crashes, 200);
    }

    #[test]
    fn reads_past_len_fail_and_fault_injection_fails_writes() {
        let disk = SimDisk::new();
        let b = disk.open_backend("x").expect("open");
        b.set_len(10).expect("set_len");
        let mut buf = [0u8; 4];
        assert!(b.read(8, &mut buf).is_err());
        assert_eq!(disk.stats().reads_past_len, 1);
        disk.fail_after_writes(Some(1));
        b.write(0, b"ab").expect("first write allowed");
        assert!(b.write(2, b"cd").is_err());
        assert!(b.sync_data().is_err());
        assert_eq!(disk.sync_count(), 0);
        disk.fail_after_writes(None);
        b.sync_data().expect("repaired disk syncs");
        assert_eq!(disk.sync_count(), 1);
        assert_eq!(&disk.durable_image("x").expect("file")[..4], b"ab\0\0");
        assert!(disk.open_backend("x").is_err(), "one live handle per file");
        b.close().expect("close");
        assert!(disk.open_backend("x").is_ok());
    }

    #[test]
    fn put_file_installs_a_durable_image_and_fences_open_handles() {
        let disk = SimDisk::new();
        let old = disk.open_backend("f").expect("open");
        old.write(0, b"unsynced").expect("write");
        disk.put_file("f", b"image".to_vec());
        assert_eq!(disk.durable_image("f").as_deref(), Some(&b"image"[..]));
        assert_eq!(disk.current_image("f").as_deref(), Some(&b"image"[..]));
        assert_eq!(disk.pending_ops("f"), 0);
        assert!(old.write(0, b"late").is_err(), "the old handle is fenced");
        let b = disk.open_backend("f").expect("reopen");
        let mut buf = [0u8; 5];
        b.read(0, &mut buf).expect("read");
        assert_eq!(&buf, b"image");
    }
}
