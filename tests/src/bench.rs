//! What the benchmark binaries beside PostgreSQL 15 share (`pgbench_compare`, `dist_bench`): a
//! local pgxc cluster started with `pgxc ctl up` and a throwaway PostgreSQL 15 server, both stopped
//! and their directories removed on drop, plus small process helpers. Not used by any test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable `name` parsed as `T`, else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A benchmark step's result: the error is a message for the operator.
pub type Res<T> = Result<T, String>;

/// Run `cmd` to completion; its stdout and stderr, or an error naming `what`.
pub fn run(cmd: &mut Command, what: &str) -> Res<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{what} failed ({}):\n{text}", out.status));
    }
    Ok(text)
}

/// A command run as the `postgres` OS user when this process is root.
pub fn as_postgres(prog: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(prog);
        c
    } else {
        Command::new(prog)
    }
}

/// The pgxc cluster (`pgxc ctl up` child); stopped with SIGTERM on drop.
pub struct Pgxc {
    dir: PathBuf,
    child: Child,
}

impl Pgxc {
    /// `pgxc ctl up` with its data under `dir`, ports from `base_port` (coordinators from
    /// `base_port + 100`), `coordinators` coordinators; waits (120 s) until it is ready.
    pub fn start(bin: &Path, dir: &Path, base_port: u16, coordinators: u32) -> Res<Pgxc> {
        let log = std::fs::File::create(dir.join("up.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args([
                "ctl",
                "up",
                "--coordinators",
                &coordinators.to_string(),
                "--data",
            ])
            .arg(dir.join("data"))
            .args(["--base-port", &base_port.to_string()])
            .env_remove("PGXC_FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut p = Pgxc {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
            if text.contains("Press Ctrl-C") {
                return Ok(p);
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("pgxc ctl up exited ({st}):\n{text}"));
            }
            if Instant::now() > deadline {
                return Err(format!("pgxc cluster not ready in 120 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pgxc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL 15 in a fresh directory; `pg_ctl stop` on drop.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
}

impl Postgres {
    /// initdb in `dir` and start the server on 127.0.0.1:`port` (and a socket in `dir`).
    pub fn start(bin: &Path, dir: &Path, port: u16) -> Res<Postgres> {
        let _ = Command::new("chown").arg("postgres").arg(dir).status();
        let data = dir.join("data");
        run(
            as_postgres(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres"]),
            "initdb",
        )?;
        let pg = Postgres {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB \
             -c max_connections=200 -c fsync=on -c synchronous_commit=on",
            dir.display()
        );
        run(
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("pg.log"))
                .args(["-o", &opts, "-w", "start"]),
            "pg_ctl start",
        )?;
        Ok(pg)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `SELECT version()` of the server on `port` (or the error text).
pub fn server_version(pg_bin: &Path, port: u16) -> String {
    run(
        Command::new(pg_bin.join("psql"))
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT version()"]),
        "psql",
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_else(|e| e)
}

/// The 1-minute load average (`/proc/loadavg`), to judge how noisy a run was.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
