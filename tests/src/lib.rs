//! Helpers shared by the real-process tests: build the `pgxc` binary once, pick free loopback ports,
//! make unique temp directories, and read the tail of a process log.

pub mod bench;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Build `pgxc` once per test binary and return its path (under `CARGO_TARGET_DIR` or `target/`).
///
/// Panics if the build fails: a test cannot run without the binary.
pub fn pgxc_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(&cargo)
            .args(["build", "-p", "pgxc", "--bin", "pgxc"])
            .current_dir(&root)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cargo} build: {e}"));
        assert!(status.success(), "cargo build -p pgxc failed: {status}");
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) => {
                let d = PathBuf::from(d);
                if d.is_absolute() {
                    d
                } else {
                    root.join(d)
                }
            }
            None => root.join("target"),
        };
        let bin = target
            .join("debug")
            .join(format!("pgxc{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        bin
    })
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A fresh, unique directory under the system temp dir (created).
pub fn unique_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!(
        "pgxc-test-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The last `n` bytes of a file, lossily decoded (a placeholder text if it cannot be opened).
pub fn tail(path: &Path, n: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("<cannot open {}>", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(n)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
