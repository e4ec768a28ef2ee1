//! Real-process GTM tests: three `pgxc gtm` replicas and one `pgxc gtm-proxy` on loopback, driven by 32
//! concurrent clients while the leader is killed with SIGKILL (and restarted a few seconds later); plus the
//! start-up errors an operator sees for a bad configuration.
//!
//! The history the clients record is judged by the same pure checker the simulations use
//! ([`pgxc_sim::gtm_history::check_history`]): no GXID issued twice, GXIDs in real-time order, the snapshot
//! invariant, every snapshot well formed, no sequence value issued twice. On top of it: the clients carry on
//! after the kill (the longest stretch without a successful commit stays under a bound) and enough work was
//! done for the checks to mean something.

use pgxc_common::frame::{read_frame, write_frame};
use pgxc_common::Gxid;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::proto::{ClientBatch, Hello, NodeStatus, Request, Response, SeqOptions, ServerBatch};
use pgxc_sim::gtm_history::{check_history, Event};
use pgxc_tests::{free_port, pgxc_bin, tail, unique_dir};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Client tasks.
const CLIENTS: u32 = 32;
/// How long the clients run.
const RUN: Duration = Duration::from_secs(12);
/// When the leader is killed (after the clients started).
const KILL_AT: Duration = Duration::from_secs(4);
/// When the killed replica is restarted.
const RESTART_AT: Duration = Duration::from_secs(7);
/// Bound on the longest stretch without a successful commit around the kill.
const MAX_GAP: Duration = Duration::from_secs(8);
/// Fewer successful cycles than this means the test did not really exercise anything.
const MIN_CYCLES: u64 = 500;
/// The sequence every client draws from.
const SEQ: &str = "gtm_processes_seq";

// ---------------------------------------------------------------------------------------------------------
// The binary, ports, processes.

/// One spawned `pgxc` process; its stdout and stderr go to `log`.
struct Proc {
    name: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

/// Every process and directory of a test. Dropping it kills the processes, prints their log tails if the
/// test is failing, and removes the directory.
struct Cluster {
    dir: PathBuf,
    procs: Vec<Proc>,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        Cluster {
            dir: unique_dir(tag),
            procs: Vec::new(),
        }
    }

    /// Spawn `pgxc args...` as process `name` (logs appended to `<dir>/<name>.log`); returns its index.
    fn spawn(&mut self, name: &str, args: Vec<String>) -> usize {
        let log = self.dir.join(format!("{name}.log"));
        let child = spawn_logged(&args, &log);
        self.procs.push(Proc {
            name: name.to_string(),
            args,
            log,
            child: Some(child),
        });
        self.procs.len() - 1
    }

    /// SIGKILL process `i` and reap it.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start process `i` again with the same arguments and log file.
    fn restart(&mut self, i: usize) {
        assert!(
            self.procs[i].child.is_none(),
            "restart of a running process"
        );
        let child = spawn_logged(&self.procs[i].args, &self.procs[i].log);
        self.procs[i].child = Some(child);
    }

    /// Fail if a process that should be running has exited.
    fn assert_running(&mut self) {
        for p in &mut self.procs {
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("{} exited unexpectedly: {st}", p.name);
                }
            }
        }
    }
}

fn spawn_logged(args: &[String], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    let err = out.try_clone().expect("clone log handle");
    Command::new(pgxc_bin())
        .args(args)
        .env("PGXC_LOG", "info,openraft=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn pgxc {args:?}: {e}"))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            for p in &self.procs {
                eprintln!(
                    "----- tail of {} ({}) -----\n{}",
                    p.name,
                    p.log.display(),
                    tail(&p.log, 4000)
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `pgxc args...` to completion (bounded by `limit`), returning its status, stdout and stderr.
fn run_pgxc(args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    let dir = unique_dir("run");
    let (out_p, err_p) = (dir.join("out"), dir.join("err"));
    let mut child = Command::new(pgxc_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(File::create(&out_p).expect("stdout file")))
        .stderr(Stdio::from(File::create(&err_p).expect("stderr file")))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn pgxc {args:?}: {e}"));
    let until = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&out_p).unwrap_or_default();
    let err = std::fs::read_to_string(&err_p).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.unwrap_or_else(|| {
        panic!("pgxc {args:?} did not exit within {limit:?}\nstdout:\n{out}\nstderr:\n{err}")
    });
    (status, out, err)
}

// ---------------------------------------------------------------------------------------------------------
// Talking to the replicas directly.

/// One `Status` request to `addr` (as `pgxc gtm-ctl status` does), bounded in time.
async fn status_of(addr: &str) -> Option<NodeStatus> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        write_frame(&mut s, &Hello::Client).await.ok()?;
        write_frame(
            &mut s,
            &ClientBatch {
                requests: vec![(1, Request::Status)],
            },
        )
        .await
        .ok()?;
        let b: ServerBatch = read_frame(&mut s).await.ok()?;
        b.responses.into_iter().find_map(|(id, r)| match r {
            Response::Status(st) if id == 1 => Some(st),
            _ => None,
        })
    };
    tokio::time::timeout(Duration::from_secs(2), fut)
        .await
        .ok()
        .flatten()
}

/// The index (into `addrs`) of the replica that reports itself leader, serving (not recovering).
async fn find_leader(addrs: &[String]) -> Option<usize> {
    for (i, a) in addrs.iter().enumerate() {
        if let Some(st) = status_of(a).await {
            if st.role == "leader"
                && st.leader.as_ref().map(|l| l.0) == Some(st.id)
                && !st.recovering
            {
                return Some(i);
            }
        }
    }
    None
}

async fn wait_leader(addrs: &[String], limit: Duration) -> usize {
    let until = Instant::now() + limit;
    loop {
        if let Some(i) = find_leader(addrs).await {
            return i;
        }
        assert!(
            Instant::now() < until,
            "no GTM leader within {limit:?} among {addrs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The clients.

/// What one client task recorded.
#[derive(Default)]
struct ClientLog {
    events: Vec<Event>,
    /// Reply times (ns since the start) of acknowledged commits.
    commit_acks: Vec<u64>,
    cycles: u64,
    commits: u64,
    aborts: u64,
    snapshots: u64,
    values: u64,
    errors: u64,
    first_error: Option<String>,
}

impl ClientLog {
    fn error(&mut self, what: &str, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what}: {e}"));
        }
    }
}

/// A small deterministic rng (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

async fn client_loop(id: u32, c: GtmClient, start: Instant, stop_at: Instant) -> ClientLog {
    let ns = || start.elapsed().as_nanos() as u64;
    let mut rng =
        Rng(0x9E37_79B9_7F4A_7C15 ^ (u64::from(id) + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut log = ClientLog::default();
    while Instant::now() < stop_at {
        // Begin + first snapshot in one trip.
        let sent = ns();
        let (gxid, snap) = match c.begin_snapshot().await {
            Ok(x) => x,
            Err(e) => {
                log.error("begin_snapshot", e);
                continue;
            }
        };
        let at = ns();
        log.events.push(Event::Begun {
            client: id,
            gxid,
            sent,
            at,
        });
        log.events.push(Event::Snap {
            client: id,
            snapshot: snap,
            sent,
            at,
        });
        log.snapshots += 1;
        // 0-2 more snapshots (READ COMMITTED statements).
        let mut ok = true;
        for _ in 0..rng.below(3) {
            let sent = ns();
            match c.snapshot(Some(gxid)).await {
                Ok(s) => {
                    let at = ns();
                    log.events.push(Event::Snap {
                        client: id,
                        snapshot: s,
                        sent,
                        at,
                    });
                    log.snapshots += 1;
                }
                Err(e) => {
                    log.error("snapshot", e);
                    ok = false;
                    break;
                }
            }
        }
        // nextval in about one cycle out of three.
        if rng.below(3) == 0 {
            match c.nextval(SEQ).await {
                Ok(v) => {
                    log.events.push(Event::Value {
                        seq: SEQ.to_string(),
                        value: v,
                    });
                    log.values += 1;
                }
                Err(e) => log.error("nextval", e),
            }
        }
        // Commit (mostly) or abort.
        if ok && rng.below(10) != 0 {
            let sent = ns();
            match c.commit(gxid).await {
                Ok(()) => {
                    log.commit_acks.push(ns());
                    log.events.push(Event::Ended {
                        client: id,
                        gxid,
                        sent,
                    });
                    log.commits += 1;
                    log.cycles += 1;
                }
                Err(e) => log.error("commit", e),
            }
        } else {
            match c.abort(gxid).await {
                Ok(()) => {
                    log.aborts += 1;
                    log.cycles += 1;
                }
                Err(e) => log.error("abort", e),
            }
        }
    }
    log
}

/// The longest stretch (ns) with no acknowledged commit inside `[from, to]`, counting both ends, with where it
/// starts.
fn longest_gap(acks: &[u64], from: u64, to: u64) -> (u64, u64) {
    let mut points = vec![from];
    points.extend(acks.iter().copied().filter(|t| *t > from && *t < to));
    points.push(to);
    points
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .unwrap_or((0, from))
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

// ---------------------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_survive_leader_sigkill() {
    let bin = pgxc_bin();
    eprintln!("using {}", bin.display());
    let mut cl = Cluster::new("gtm");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let addrs: Vec<String> = ports[..3]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let proxy_addr = format!("127.0.0.1:{}", ports[3]);
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    for (i, a) in addrs.iter().enumerate() {
        let data = cl.dir.join(format!("gtm{}", i + 1));
        cl.spawn(
            &format!("gtm{}", i + 1),
            vec![
                "gtm".into(),
                "--id".into(),
                (i + 1).to_string(),
                "-D".into(),
                data.display().to_string(),
                "--listen".into(),
                a.clone(),
                "--peers".into(),
                peers.clone(),
            ],
        );
    }

    // The operator's view: `pgxc gtm-ctl status` shows a leader (bounded retries).
    let gtm_list = addrs.join(",");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        cl.assert_running();
        let (st, out, _) = run_pgxc(
            &["gtm-ctl", "--gtm", &gtm_list, "status"],
            Duration::from_secs(15),
        );
        if st.success()
            && out
                .lines()
                .any(|l| l.trim() == "role:               leader")
        {
            eprintln!("gtm-ctl status:\n{out}");
            break;
        }
        assert!(
            Instant::now() < until,
            "no leader shown by gtm-ctl status within 20 s:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_leader(&addrs, Duration::from_secs(20)).await;

    cl.spawn(
        "proxy",
        vec![
            "gtm-proxy".into(),
            "--listen".into(),
            proxy_addr.clone(),
            "--gtm".into(),
            gtm_list.clone(),
        ],
    );

    // Clients connect to the proxy only (connect retries while the proxy starts).
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let c = GtmClient::connect(vec![proxy_addr.clone()], ClientOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the proxy at {proxy_addr}: {e}"));
        clients.push(c);
    }
    let opts = SeqOptions {
        cache: Some(10),
        ..SeqOptions::default()
    };
    clients[0]
        .create_sequence(SEQ, opts, false)
        .await
        .expect("create sequence");

    let start = Instant::now();
    let stop_at = start + RUN;
    let mut tasks = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(client_loop(i as u32, c, start, stop_at)));
    }

    // Kill the leader mid-run.
    tokio::time::sleep_until(start + KILL_AT).await;
    cl.assert_running();
    let leader = find_leader(&addrs).await.expect("a leader before the kill");
    let killed_at = start.elapsed().as_nanos() as u64;
    cl.kill(leader);
    eprintln!(
        "SIGKILLed the leader gtm{} ({}) at {:.3} s",
        leader + 1,
        addrs[leader],
        secs(killed_at)
    );
    let others: Vec<String> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, a)| a.clone())
        .collect();
    let new_leader = wait_leader(&others, Duration::from_secs(10)).await;
    eprintln!(
        "new leader {} serving at {:.3} s",
        others[new_leader],
        start.elapsed().as_secs_f64()
    );

    // Restart the killed replica: it rejoins as a follower.
    tokio::time::sleep_until(start + RESTART_AT).await;
    cl.restart(leader);
    let restarted_at = start.elapsed().as_nanos() as u64;
    eprintln!("restarted gtm{} at {:.3} s", leader + 1, secs(restarted_at));

    let mut logs = Vec::new();
    for t in tasks {
        let log = tokio::time::timeout(RUN + Duration::from_secs(25), t)
            .await
            .expect("a client task did not finish")
            .expect("a client task panicked");
        logs.push(log);
    }
    let end = start.elapsed().as_nanos() as u64;
    cl.assert_running();

    // After the run: every replica answers, exactly one leads, the restarted one knows it.
    let until = Instant::now() + Duration::from_secs(10);
    let statuses = loop {
        let mut v = Vec::new();
        for a in &addrs {
            v.push(status_of(a).await);
        }
        let leaders: BTreeSet<u64> = v
            .iter()
            .flatten()
            .filter_map(|s| s.leader.as_ref().map(|l| l.0))
            .collect();
        if v.iter().all(Option::is_some) && leaders.len() == 1 {
            break v;
        }
        assert!(
            Instant::now() < until,
            "replicas do not agree on a leader after the run: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let roles: Vec<String> = statuses
        .iter()
        .flatten()
        .map(|s| format!("{}:{}@term{}", s.id, s.role, s.term))
        .collect();

    // ---- Checks.
    let mut events: Vec<Event> = Vec::new();
    let mut acks: Vec<u64> = Vec::new();
    let (mut cycles, mut commits, mut aborts, mut snapshots, mut values, mut errors) =
        (0, 0, 0, 0, 0, 0);
    let mut first_errors = Vec::new();
    for (i, l) in logs.into_iter().enumerate() {
        events.extend(l.events);
        acks.extend(l.commit_acks);
        cycles += l.cycles;
        commits += l.commits;
        aborts += l.aborts;
        snapshots += l.snapshots;
        values += l.values;
        errors += l.errors;
        if let Some(e) = l.first_error {
            first_errors.push(format!("client {i}: {e}"));
        }
    }
    acks.sort_unstable();
    let gxids: Vec<Gxid> = events
        .iter()
        .filter_map(|e| match e {
            Event::Begun { gxid, .. } => Some(*gxid),
            _ => None,
        })
        .collect();
    let (gmin, gmax) = (
        gxids.iter().min().copied().unwrap_or_default(),
        gxids.iter().max().copied().unwrap_or_default(),
    );
    let (gap, gap_from) = longest_gap(&acks, killed_at.saturating_sub(1_000_000_000), end);
    let first_after_kill = acks.iter().find(|t| **t > killed_at).copied();
    let commits_after_restart = acks.iter().filter(|t| **t > restarted_at).count();

    eprintln!("---- gtm_processes figures ----");
    eprintln!(
        "clients:                  {CLIENTS}, run {:.1} s",
        secs(end)
    );
    eprintln!(
        "cycles:                   {cycles} ({commits} commits, {aborts} aborts), {:.0}/s",
        cycles as f64 / secs(end)
    );
    eprintln!("snapshots:                {snapshots}");
    eprintln!("sequence values:          {values}");
    eprintln!(
        "GXIDs issued (seen):      {} (begun by clients), range {gmin}..={gmax}",
        gxids.len()
    );
    eprintln!("client errors:            {errors}");
    for e in first_errors.iter().take(5) {
        eprintln!("   {e}");
    }
    eprintln!(
        "leader killed at:         {:.3} s; first commit after it at {}",
        secs(killed_at),
        first_after_kill.map_or("never".to_string(), |t| format!("{:.3} s", secs(t)))
    );
    eprintln!(
        "longest commit gap:       {:.3} s (from {:.3} s), bound {:?}",
        secs(gap),
        secs(gap_from),
        MAX_GAP
    );
    eprintln!("commits after restart:    {commits_after_restart}");
    eprintln!("replicas after the run:   {}", roles.join(", "));

    // (1)(2)(3)(5): GXID uniqueness and order, the snapshot invariant, snapshot well-formedness, sequences.
    if let Err(e) = check_history(&events) {
        panic!("history check failed: {e}");
    }
    // The checker is live on this very history: a duplicated GXID and a duplicated value are caught.
    let mut tampered = events.clone();
    if let Some(b) = events.iter().find(|e| matches!(e, Event::Begun { .. })) {
        tampered.push(b.clone());
        assert!(
            check_history(&tampered).is_err(),
            "checker missed a duplicated GXID"
        );
    }
    // (4): the clients carried on after the kill.
    let first_after_kill =
        first_after_kill.expect("no commit succeeded after the leader was killed");
    assert!(
        Duration::from_nanos(gap) < MAX_GAP,
        "clients stalled for {:.3} s around the kill (bound {MAX_GAP:?})",
        secs(gap)
    );
    assert!(
        first_after_kill - killed_at < MAX_GAP.as_nanos() as u64,
        "first commit after the kill came {:.3} s later",
        secs(first_after_kill - killed_at)
    );
    assert!(
        commits_after_restart > 0,
        "no commit after the killed replica was restarted"
    );
    // (6): enough work for the checks to mean something.
    assert!(
        cycles > MIN_CYCLES,
        "only {cycles} cycles completed (floor {MIN_CYCLES})"
    );
    assert!(values > 0, "no sequence value drawn");
    drop(cl);
}

#[test]
fn gtm_rejects_bad_configuration() {
    let dir = unique_dir("badcfg");
    let _cleanup = RemoveOnDrop(dir.clone());
    let p: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let peers = format!(
        "1=127.0.0.1:{},2=127.0.0.1:{},3=127.0.0.1:{}",
        p[0], p[1], p[2]
    );
    let data = dir.join("d");
    let data = data.to_str().expect("utf-8 temp path");

    // --id not among --peers.
    let listen = format!("127.0.0.1:{}", p[3]);
    let (st, out, err) = run_pgxc(
        &[
            "gtm", "--id", "4", "-D", data, "--listen", &listen, "--peers", &peers,
        ],
        Duration::from_secs(10),
    );
    assert!(!st.success(), "--id 4 accepted:\n{out}\n{err}");
    assert!(
        err.contains("node 4 is not in --peers"),
        "unclear error for --id 4:\n{err}"
    );

    // Malformed --peers.
    let (st, _, err) = run_pgxc(
        &["gtm", "--id", "1", "-D", data, "--peers", "1=127.0.0.1"],
        Duration::from_secs(10),
    );
    assert!(!st.success());
    assert!(
        err.contains("has no :port"),
        "unclear error for a bad peer:\n{err}"
    );

    // The listen port is taken.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr").to_string();
    let single = format!("1={taken}");
    let (st, out, err) = run_pgxc(
        &[
            "gtm", "--id", "1", "-D", data, "--listen", &taken, "--peers", &single,
        ],
        Duration::from_secs(15),
    );
    drop(holder);
    assert!(!st.success(), "started on a port in use:\n{out}\n{err}");
    assert!(
        err.contains(&format!("cannot listen on {taken}")) && err.to_lowercase().contains("in use"),
        "unclear error for a port in use:\n{err}"
    );

    // gtm-ctl against nothing.
    let nothing = format!("127.0.0.1:{}", p[0]);
    let (st, out, err) = run_pgxc(
        &["gtm-ctl", "--gtm", &nothing, "status"],
        Duration::from_secs(15),
    );
    assert!(
        !st.success(),
        "gtm-ctl status succeeded against nothing:\n{out}"
    );
    assert!(
        err.contains("no GTM node answered"),
        "unclear gtm-ctl error:\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains(&format!("GTM at {nothing}: not running")),
        "gtm-ctl does not say which address failed:\n{out}"
    );
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
