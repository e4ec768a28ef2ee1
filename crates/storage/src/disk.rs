//! [`Disk`]: where a component's database files live — a real directory or a [`SimDisk`].

use std::path::PathBuf;

use crate::error::{Result, StorageError};
use crate::kv::Kv;
use crate::sim::SimDisk;

/// redb's page cache limit for a database on a simulated disk, in bytes. Many simulated nodes
/// share one process, so it is kept small.
const SIM_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// redb's page cache limit for a database on a real disk, in bytes.
const REAL_CACHE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug)]
enum DiskKind {
    Real(PathBuf),
    Sim(SimDisk),
}

/// The storage seam: where a component's files live.
///
/// Components never name redb or paths; they get a `Disk` from their launcher (a real directory
/// in production, a [`SimDisk`] under simulation) and open named databases on it. Cloning is
/// cheap; clones name the same place.
#[derive(Clone, Debug)]
pub struct Disk {
    kind: DiskKind,
}

/// Check that `name` is a plain file name: non-empty, no path separators, not `.` or `..`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(StorageError::Misuse(format!(
            "invalid database file name {name:?}: must be a plain file name"
        )));
    }
    Ok(())
}

impl Disk {
    /// Files under the real directory `dir`, through redb's normal file backend. The directory is
    /// created (with parents) on the first [`Disk::open_kv`] if missing.
    pub fn real(dir: impl Into<PathBuf>) -> Disk {
        Disk {
            kind: DiskKind::Real(dir.into()),
        }
    }

    /// Files on the simulated disk `disk` (which the caller typically keeps, to crash it and to
    /// reopen a new `Disk::sim(disk.clone())` after a simulated restart).
    pub fn sim(disk: SimDisk) -> Disk {
        Disk {
            kind: DiskKind::Sim(disk),
        }
    }

    /// The real directory, if this is a real disk.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match &self.kind {
            DiskKind::Real(dir) => Some(dir),
            DiskKind::Sim(_) => None,
        }
    }

    /// Whether a file named `name` exists on this disk (e.g. to tell a first start, like
    /// `initgtm`, from a restart). An invalid name does not exist.
    pub fn exists(&self, name: &str) -> bool {
        if check_name(name).is_err() {
            return false;
        }
        match &self.kind {
            DiskKind::Real(dir) => dir.join(name).is_file(),
            DiskKind::Sim(disk) => disk.exists(name),
        }
    }

    /// Open the redb database file `name` on this disk, creating an empty one if missing.
    ///
    /// After a crash redb repairs the file on open (it rolls back to the last complete commit).
    /// The synchronous open may read the whole file when a repair is needed.
    ///
    /// A damaged file must give an error, never take the process down. redb trusts a file it
    /// last closed cleanly: a plain open does not check page checksums, and reading a damaged
    /// page later panics (seen with redb 4.6 in release builds: `unreachable!()` in
    /// `btree_cursor.rs`, slice indexes out of range in `btree_iters.rs`, during scans after a
    /// successful open). So every open runs redb's integrity check
    /// (`Builder::set_check_integrity_on_open`): the checksum of every page of the committed
    /// trees is verified and the allocator state rebuilt, and damage is reported as
    /// [`StorageError::Corruption`] (or, for a file cut short, an I/O error). The cost: each open
    /// reads the whole file and commits once, like the repair after a crash. Damage that appears
    /// while the file is open is not detected.
    ///
    /// As a second line, the open runs under [`std::panic::catch_unwind`] and a panic inside it
    /// becomes [`StorageError::Corruption`]: some of redb's consistency checks are
    /// `debug_assert!`s (in builds with debug assertions, such as tests, e.g. "Invalid page type
    /// byte 0 for page ..." while it walks the trees of an unchecked file on open). Nothing
    /// outlives a panicking open (the backend and redb's half-built state are dropped during
    /// unwinding), so no broken state is observed later. The panic message is still printed by
    /// the panic hook.
    ///
    /// Errors: [`StorageError::Misuse`] for an invalid name or a file already open (one open
    /// [`Kv`] per file; clone it to share), [`StorageError::Io`] for disk failures,
    /// [`StorageError::Corruption`] for a file redb cannot recover.
    pub fn open_kv(&self, name: &str) -> Result<Kv> {
        check_name(name)?;
        let backend = match &self.kind {
            DiskKind::Real(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::Io(format!("cannot create directory {}: {e}", dir.display()))
                })?;
                None
            }
            DiskKind::Sim(disk) => Some(
                disk.open_backend(name)
                    .map_err(|e| StorageError::Misuse(format!("cannot open {name}: {e}")))?,
            ),
        };
        // AssertUnwindSafe: the closure owns the backend and shares nothing with the caller but
        // `self` (a path, or a SimDisk whose state is only touched under its own lock).
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match (&self.kind, backend) {
                (_, Some(backend)) => redb::Builder::new()
                    .set_cache_size(SIM_CACHE_BYTES)
                    .set_check_integrity_on_open(true)
                    .create_with_backend(backend),
                (DiskKind::Real(dir), None) => redb::Builder::new()
                    .set_cache_size(REAL_CACHE_BYTES)
                    .set_check_integrity_on_open(true)
                    .create(dir.join(name)),
                (DiskKind::Sim(_), None) => unreachable!("a simulated disk always has a backend"),
            }
        }));
        let db = match opened {
            Ok(db) => db,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                return Err(StorageError::Corruption(format!(
                    "opening {name}: redb panicked on the file's contents: {msg}"
                )));
            }
        };
        let db = db.map_err(|e| match StorageError::from(e) {
            StorageError::Io(m) => StorageError::Io(format!("opening {name}: {m}")),
            StorageError::Corruption(m) => StorageError::Corruption(format!("opening {name}: {m}")),
            StorageError::Misuse(m) => StorageError::Misuse(format!("opening {name}: {m}")),
        })?;
        Ok(Kv::new(db, name.to_string()))
    }
}
