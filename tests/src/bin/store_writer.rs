//! `store_writer DIR [TASKS]`: a process that writes to a datanode MVCC store on a real directory
//! until it is killed, for `tests/tests/store_sigkill.rs`.
//!
//! It opens (recovering) the store `DIR/dn.redb`, finds the table `acked` by name (creating it,
//! with the unique index `acked_pkey`, on the first run), and runs `TASKS` (default 4) concurrent
//! tasks that each commit transactions of 1 to 5 rows in a loop. After each acknowledged commit it
//! prints one line to stdout, flushed:
//!
//! ```text
//! ACK <gxid> <n> <key>...
//! ```
//!
//! The transaction inserted exactly `n` rows, the `i`-th (from 0) with key `gxid * 8 + i` (also
//! its `acked_pkey` key, as a big-endian `i64` through `keycode`) and payload
//! [`payload`]`(gxid, n, key)`; the checker recomputes both.
//!
//! GXIDs come from a `LocalGtm` that must never reissue one, not even one whose transaction was
//! running at a kill (its tuples stay on disk, dead, until vacuum; reissuing it would resurrect
//! them). So GXIDs are reserved in blocks recorded durably in `DIR/gxid.next` before use, as the
//! GTM does, and a restart starts at the recorded value.
//!
//! Start-up errors are printed to stderr with exit status 1. A failed transaction is a bug here
//! (nothing conflicts), so it is reported the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pgxc_common::{Gxid, PgError};
use pgxc_storage::keycode::{encode_key, KeyDatum};
use pgxc_storage::mvcc::{Isolation, LocalGtm, RelId, RelKind, Store, StoreConfig};
use pgxc_storage::Disk;

/// GXIDs reserved per write of `gxid.next`.
const GXID_BLOCK: u64 = 1000;

/// The payload of row `key` of a transaction `gxid` that inserted `n` rows.
fn payload(gxid: u64, n: usize, key: i64) -> Vec<u8> {
    format!("gxid={gxid} n={n} key={key}").into_bytes()
}

/// The GXID source: a `LocalGtm` whose issued GXIDs are always below the durable reservation.
struct Gtm {
    gtm: LocalGtm,
    reserved: u64,
    file: PathBuf,
}

/// Write `next` to `file` durably (write a temporary file, fsync it, rename, fsync the
/// directory).
fn persist_next(file: &Path, next: u64) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{next}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Gtm {
    fn open(dir: &Path) -> Result<Gtm, String> {
        let file = dir.join("gxid.next");
        let next = match std::fs::read_to_string(&file) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|e| format!("{}: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Gxid::FIRST_NORMAL.0,
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        Ok(Gtm {
            gtm: LocalGtm::starting_at(Gxid(next)),
            reserved: next,
            file,
        })
    }

    fn begin(&mut self) -> Result<Gxid, String> {
        let x = self.gtm.begin();
        if x.0 >= self.reserved {
            let next = x.0 + GXID_BLOCK;
            persist_next(&self.file, next).map_err(|e| format!("{}: {e}", self.file.display()))?;
            self.reserved = next;
        }
        Ok(x)
    }
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("store_writer: {msg}");
    std::process::exit(1);
}

/// The table `acked` and its index, created if missing.
async fn table(store: &Store, gtm: &Mutex<Gtm>) -> Result<(RelId, RelId), PgError> {
    let rels = store.relations();
    let find = |name: &str| rels.iter().find(|r| r.name == name).map(|r| r.id);
    if let (Some(t), Some(i)) = (find("acked"), find("acked_pkey")) {
        if rels.iter().any(|r| r.id == t && r.kind == RelKind::Table) {
            return Ok((t, i));
        }
    }
    let (x, snap) = {
        let mut g = gtm.lock().expect("gtm lock");
        let x = g.begin().unwrap_or_else(|e| fail(e));
        (x, g.gtm.snapshot())
    };
    let mut t = store.begin(x, Isolation::ReadCommitted, snap)?;
    let table = t.create_table("acked").await?;
    let index = t
        .create_index(table, "acked_pkey", true, |_| {
            Err(PgError::new(
                pgxc_common::SqlState::InternalError,
                "acked is empty when its index is created",
            ))
        })
        .await?;
    t.commit().await?;
    gtm.lock().expect("gtm lock").gtm.end(x);
    Ok((table, index))
}

async fn writer(store: Store, gtm: Arc<Mutex<Gtm>>, table: RelId, index: RelId, task: u64) {
    let mut seed = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    loop {
        // xorshift: how many rows this transaction inserts.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = if seed.is_multiple_of(3) {
            1
        } else {
            2 + (seed % 4) as usize
        };
        let (x, snap) = {
            let mut g = gtm.lock().expect("gtm lock");
            let x = g.begin().unwrap_or_else(|e| fail(e));
            (x, g.gtm.snapshot())
        };
        let result: Result<Vec<i64>, PgError> = async {
            let mut t = store.begin(x, Isolation::ReadCommitted, snap)?;
            let mut keys = Vec::with_capacity(n);
            for i in 0..n {
                let key = (x.0 * 8 + i as u64) as i64;
                t.insert(
                    table,
                    &payload(x.0, n, key),
                    &[(index, encode_key(&[KeyDatum::Int(key)]))],
                )
                .await?;
                keys.push(key);
            }
            t.commit().await?;
            Ok(keys)
        }
        .await;
        gtm.lock().expect("gtm lock").gtm.end(x);
        match result {
            Ok(keys) => {
                let mut line = format!("ACK {} {n}", x.0);
                for k in keys {
                    line.push_str(&format!(" {k}"));
                }
                line.push('\n');
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    // The reader went away: nobody is counting acknowledgements any more.
                    std::process::exit(0);
                }
            }
            Err(e) => fail(format!("transaction {x} failed: {e}")),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| fail("usage: store_writer DIR [TASKS]")),
    );
    let tasks: u64 = match args.next() {
        Some(s) => s
            .parse()
            .unwrap_or_else(|e| fail(format!("bad TASKS {s:?}: {e}"))),
        None => 4,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("tokio runtime: {e}")));
    runtime.block_on(async {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            fail(format!("{}: {e}", dir.display()));
        }
        let gtm = Arc::new(Mutex::new(Gtm::open(&dir).unwrap_or_else(|e| fail(e))));
        let store = Store::open(&Disk::real(&dir), "dn.redb", StoreConfig::default())
            .unwrap_or_else(|e| fail(format!("opening the store: {e}")));
        let (table, index) = table(&store, &gtm)
            .await
            .unwrap_or_else(|e| fail(format!("creating the table: {e}")));
        eprintln!("store_writer: writing to table {table} with {tasks} tasks");
        let handles: Vec<_> = (0..tasks)
            .map(|task| tokio::spawn(writer(store.clone(), gtm.clone(), table, index, task)))
            .collect();
        for h in handles {
            if let Err(e) = h.await {
                fail(format!("writer task: {e}"));
            }
        }
    });
}
