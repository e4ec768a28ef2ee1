//! `pgxc ctl`'s process handling: data directory checks, pid files, spawning a component (detached or as a
//! foreground child), liveness, signals and readiness waits.
//!
//! A pid file (`<data_dir>/pgxc.pid`, the decimal pid and a newline) is trusted only while that process is
//! alive, not a zombie, and its command line still carries the component's listen address, so a stale
//! file or a recycled pid reads as "stopped" (PostgreSQL's postmaster.pid is checked the same way).

use crate::ctl_config::{Component, Plan};
use anyhow::{anyhow, bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The marker `pgxc ctl init` writes into a data directory: `<kind> <name>`.
pub const MARKER: &str = "PGXC_NODE";

/// Create (first time) a component's data directory and its marker.
///
/// Returns `true` when the directory was created now, `false` when it was already initialised (kept).
/// Errors: it cannot be created, or its marker names another component (a configuration pointing two
/// components at one directory, or at another cluster's).
pub fn init_dir(c: &Component) -> Result<bool> {
    let created = !c.data_dir.exists();
    std::fs::create_dir_all(&c.data_dir).with_context(|| {
        format!(
            "cannot create data directory {} of {}",
            c.data_dir.display(),
            c.label()
        )
    })?;
    let marker = c.data_dir.join(MARKER);
    let want = format!("{} {}\n", c.kind.word(), c.name);
    match std::fs::read_to_string(&marker) {
        Ok(have) if have == want => {}
        Ok(have) => bail!(
            "data directory {} belongs to {} (its {MARKER} file), not to {}",
            c.data_dir.display(),
            have.trim(),
            c.label()
        ),
        Err(_) => std::fs::write(&marker, want)
            .with_context(|| format!("cannot write {}", marker.display()))?,
    }
    Ok(created)
}

/// Check that a component's data directory exists (`start` does not create one).
///
/// Errors: "data directory ... of datanode dn1 does not exist; run `pgxc ctl -c FILE init` first".
pub fn check_dir(plan: &Plan, c: &Component) -> Result<()> {
    if !c.data_dir.is_dir() {
        let cfg = plan
            .file
            .as_ref()
            .map(|f| format!(" -c {}", f.display()))
            .unwrap_or_default();
        bail!(
            "data directory {} of {} does not exist; run `pgxc ctl{cfg} init` first",
            c.data_dir.display(),
            c.label()
        );
    }
    Ok(())
}

/// Check that every port a component binds is free on its host.
///
/// Errors: "port P on H (needed by coordinator cn1) is in use: <os error>".
pub fn check_ports(c: &Component) -> Result<()> {
    for p in c.ports() {
        std::net::TcpListener::bind((c.host.as_str(), p)).map(drop).map_err(|e| {
            anyhow!(
                "port {p} on {} (needed by {}) is in use: {e}; stop what holds it or change the port in the configuration",
                c.host,
                c.label()
            )
        })?;
    }
    Ok(())
}

/// Start component `c` of `plan` as a child process, output appended to its log, and write its pid file.
/// `detached`: in a new process group, so it outlives this `pgxc ctl` and a terminal's Ctrl-C does not
/// reach it.
///
/// Errors: the log or pid file cannot be written, the executable cannot be spawned.
pub fn spawn(plan: &Plan, c: &Component, detached: bool) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the pgxc executable")?;
    let log = c.log();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open log {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.args(plan.args(c))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if detached {
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", c.label()))?;
    std::fs::write(c.pid_file(), format!("{}\n", child.id()))
        .with_context(|| format!("cannot write {}", c.pid_file().display()))?;
    Ok(child)
}

/// The pid of `c` when it is running (its pid file names a live, non-zombie process whose command line
/// carries `c`'s listen address); `None` otherwise.
pub fn running_pid(c: &Component) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(c.pid_file())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_ours(pid, c).then_some(pid)
}

fn is_ours(pid: i32, c: &Component) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name: "pid (comm) S ...".
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, Some('Z') | Some('X') | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let addr = c.addr();
    cmdline.split(|b| *b == 0).any(|arg| arg == addr.as_bytes())
}

/// Remove `c`'s pid file (ignored if absent).
pub fn clear_pid(c: &Component) {
    let _ = std::fs::remove_file(c.pid_file());
}

/// Send `sig` to `pid`. Errors: the kernel refused (e.g. no such process).
pub fn signal(pid: i32, sig: nix::sys::signal::Signal) -> Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
        .map_err(|e| anyhow!("cannot send {sig} to pid {pid}: {e}"))
}

/// Wait up to `timeout` for `c` (pid `pid`) to exit; reaps it when it is our child (`child`).
/// Returns whether it is gone.
pub async fn wait_gone(
    c: &Component,
    pid: i32,
    child: Option<&mut Child>,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut child = child;
    loop {
        if let Some(ch) = child.as_deref_mut() {
            if !matches!(ch.try_wait(), Ok(None)) {
                return true;
            }
        } else if !is_ours(pid, c) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last `n` lines of a file (empty if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Wait until `addr` accepts TCP connections, or fail when `exited` reports the process gone (its
/// message) or 60 s pass.
pub async fn wait_listening(
    addr: &str,
    what: &str,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(e) = exited() {
            bail!("{e}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not start listening on {addr} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the coordinator at `addr` answers `SELECT 1` (PostgreSQL protocol, trust) within 10 s.
pub async fn coordinator_answers(addr: &str) -> bool {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        matches!(
            crate::ctl_pgwire::simple_query(&addr, "SELECT 1"),
            Ok(Ok(_))
        )
    })
    .await
    .unwrap_or(false)
}

/// Wait until component `c` is ready: it accepts connections and, for a coordinator, answers `SELECT 1`.
/// Fails when `exited` reports the process gone (its message) or 60 s pass.
pub async fn wait_ready(c: &Component, mut exited: impl FnMut() -> Option<String>) -> Result<()> {
    wait_listening(&c.addr(), &c.label(), &mut exited).await?;
    if c.kind != crate::ctl_config::Kind::Coordinator {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(e) = exited() {
            bail!("{e}");
        }
        if coordinator_answers(&c.addr()).await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} accepts connections on {} but did not answer SELECT 1 within 60 s; see {}",
                c.label(),
                c.addr(),
                c.log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait until one of the GTM replicas `addrs` names a leader; returns `(id, address)`. Fails when
/// `exited` reports a process gone or 30 s pass.
pub async fn wait_gtm_leader(
    addrs: &[String],
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(u64, String)> {
    use pgxc_gtm::proto::{Request, Response};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = exited() {
            bail!("{e}");
        }
        for a in addrs {
            if let Ok(Ok(Response::Status(s))) = tokio::time::timeout(
                Duration::from_secs(2),
                crate::ctl_gtm::request_once(a, Request::Status),
            )
            .await
            {
                if let Some(l) = s.leader {
                    return Ok(l);
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the GTM group elected no leader within 30 s; see the GTM replicas' logs");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// "exited" message for a child: its label, status and the tail of its log.
pub fn exit_message(c: &Component, child: &mut Child) -> Option<String> {
    match child.try_wait() {
        Ok(Some(status)) => Some(format!(
            "{} exited ({status}); last lines of {}:\n{}",
            c.label(),
            c.log().display(),
            tail(&c.log(), 15)
        )),
        _ => None,
    }
}
