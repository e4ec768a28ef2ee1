//! `pgxc ctl`: deploy and run a local cluster (XC's pgxc_ctl).
//!
//! `pgxc ctl up` starts, under `./pgxc-data` (first time: initialises), 3 GTM replicas, 1 GTM proxy, 2 datanodes
//! and 2 coordinators as child processes of this binary on loopback ports from `--base-port` (GTM base..base+2,
//! proxy base+10, datanodes base+20.., coordinators' internal endpoints base+30.., coordinators' client ports
//! base+100..), waits until each is ready, prints a psql command per coordinator, stays in the foreground, and
//! stops every child cleanly (SIGTERM, then SIGKILL after a grace period) on Ctrl-C. Running it again keeps the
//! data.

use crate::ctl_gtm;
use anyhow::{anyhow, bail, Context, Result};
use pgxc_gtm::proto::{Request, Response};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `pgxc ctl up` options.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Where the cluster's data directories and logs live.
    #[arg(long, default_value = "pgxc-data")]
    pub data: PathBuf,
    /// First port: GTM replicas use base, base+1, base+2; the GTM proxy base+10; datanodes base+20..;
    /// coordinators base+30.. (internal) and base+100.. (PostgreSQL clients).
    #[arg(long, default_value_t = 6666)]
    pub base_port: u16,
    /// Number of datanodes.
    #[arg(long, default_value_t = 2)]
    pub datanodes: u16,
    /// Number of coordinators.
    #[arg(long, default_value_t = 2)]
    pub coordinators: u16,
    /// Host to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    args: Vec<String>,
}

/// Children are stopped when this is dropped, whatever happened.
struct Cluster {
    procs: Vec<Proc>,
}

impl Cluster {
    fn spawn(&mut self, name: &str, args: &[String], log: PathBuf) -> Result<()> {
        let exe = std::env::current_exe().context("cannot find the pgxc executable")?;
        // Append: a restart keeps the previous run's log (PostgreSQL's log files are kept too).
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
            args: args.to_vec(),
        });
        Ok(())
    }

    /// Restart every child that exited (a crashed or killed component comes back with its data, as
    /// a PostgreSQL postmaster restarts after a crash); returns what was restarted, with the tail of
    /// each one's log.
    fn restart_exited(&mut self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.procs.len() {
            if let Ok(Some(status)) = self.procs[i].child.try_wait() {
                let p = self.procs.remove(i);
                gone.push((p, status));
            } else {
                i += 1;
            }
        }
        let mut msgs = Vec::new();
        for (p, status) in gone {
            msgs.push(format!(
                "{} exited ({status}); restarting it. Last lines of {}:\n{}",
                p.name,
                p.log.display(),
                tail(&p.log, 5)
            ));
            self.spawn(&p.name, &p.args, p.log.clone())?;
        }
        Ok(msgs)
    }

    /// A child that exited: its name, status and the tail of its log.
    fn exited(&mut self) -> Option<String> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Some(format!(
                    "{} exited ({status}); last lines of {}:\n{}",
                    p.name,
                    p.log.display(),
                    tail(&p.log, 15)
                ));
            }
        }
        None
    }

    fn stop(&mut self) {
        for p in &self.procs {
            // SIGTERM: each component shuts down cleanly.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if std::time::Instant::now() > deadline => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.procs.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn check_port_free(host: &str, port: u16) -> Result<()> {
    std::net::TcpListener::bind((host, port))
        .map(drop)
        .map_err(|e| {
            anyhow!("port {port} on {host} is not free ({e}); pick other ports with --base-port")
        })
}

/// `pgxc ctl up`.
pub async fn up(args: UpArgs) -> Result<()> {
    let data = &args.data;
    let first = !data.exists();
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let base = args.base_port;
    if !(1..=9).contains(&args.datanodes) || !(1..=9).contains(&args.coordinators) {
        bail!("--datanodes and --coordinators must be between 1 and 9");
    }
    if base > u16::MAX - 110 {
        bail!("--base-port {base} leaves no room for the coordinators' ports (base+100..)");
    }
    let dn_addrs: Vec<(String, String)> = (1..=args.datanodes)
        .map(|i| (format!("dn{i}"), format!("{}:{}", args.host, base + 19 + i)))
        .collect();
    let cn_internal: Vec<(String, String)> = (1..=args.coordinators)
        .map(|i| (format!("cn{i}"), format!("{}:{}", args.host, base + 29 + i)))
        .collect();
    let cn_ports: Vec<u16> = (1..=args.coordinators).map(|i| base + 99 + i).collect();
    let gtm_addrs: Vec<String> = (0..3)
        .map(|i| format!("{}:{}", args.host, base + i))
        .collect();
    let proxy_addr = format!("{}:{}", args.host, base + 10);
    let mut ports = vec![base, base + 1, base + 2, base + 10];
    ports.extend((1..=args.datanodes).map(|i| base + 19 + i));
    ports.extend((1..=args.coordinators).map(|i| base + 29 + i));
    ports.extend(cn_ports.iter().copied());
    for port in ports {
        check_port_free(&args.host, port)?;
    }
    let peers = gtm_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "{} the default local cluster in {}",
        if first { "initialising" } else { "starting" },
        data.display()
    );
    let mut cluster = Cluster { procs: Vec::new() };
    for (i, addr) in gtm_addrs.iter().enumerate() {
        let id = i + 1;
        let dir = data.join(format!("gtm{id}"));
        let args = vec![
            "gtm".to_string(),
            "--id".into(),
            id.to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--listen".into(),
            addr.clone(),
            "--peers".into(),
            peers.clone(),
        ];
        cluster.spawn(
            &format!("gtm{id}"),
            &args,
            data.join(format!("gtm{id}.log")),
        )?;
        println!(
            "  started GTM replica {id} on {addr} (log {})",
            data.join(format!("gtm{id}.log")).display()
        );
    }
    // Wait for a leader.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(e) = cluster.exited() {
            bail!("{e}");
        }
        if let Ok(Response::Status(s)) = ctl_gtm::request_once(&gtm_addrs[0], Request::Status).await
        {
            if let Some((id, addr)) = s.leader {
                break (id, addr);
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the GTM group elected no leader within 30 s; see the logs in {}",
                data.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "  GTM group ready: leader is replica {} ({})",
        leader.0, leader.1
    );
    let proxy_args = vec![
        "gtm-proxy".to_string(),
        "--listen".into(),
        proxy_addr.clone(),
        "--gtm".into(),
        gtm_addrs.join(","),
    ];
    cluster.spawn("gtm-proxy", &proxy_args, data.join("gtm-proxy.log"))?;
    println!("  started GTM proxy on {proxy_addr}");
    wait_listening(&mut cluster, &proxy_addr, "the GTM proxy").await?;
    for (name, addr) in &dn_addrs {
        let a = vec![
            "datanode".to_string(),
            "--name".into(),
            name.clone(),
            "-D".into(),
            data.join(name).display().to_string(),
            "--listen".into(),
            addr.clone(),
            "--gtm".into(),
            proxy_addr.clone(),
        ];
        cluster.spawn(name, &a, data.join(format!("{name}.log")))?;
    }
    for (name, addr) in &dn_addrs {
        wait_listening(&mut cluster, addr, name).await?;
        println!("  started datanode {name} on {addr}");
    }
    for (k, (name, internal)) in cn_internal.iter().enumerate() {
        let mut a = vec![
            "coordinator".to_string(),
            "--name".into(),
            name.clone(),
            "-D".into(),
            data.join(name).display().to_string(),
            "--listen".into(),
            format!("{}:{}", args.host, cn_ports[k]),
            "--internal".into(),
            internal.clone(),
            "--gtm".into(),
            gtm_addrs.join(","),
        ];
        for (dn, addr) in &dn_addrs {
            a.push("--datanode".into());
            a.push(format!("{dn}={addr}"));
        }
        for (peer, addr) in cn_internal.iter().filter(|(p, _)| p != name) {
            a.push("--peer".into());
            a.push(format!("{peer}={addr}"));
        }
        cluster.spawn(name, &a, data.join(format!("{name}.log")))?;
    }
    for (k, (name, _)) in cn_internal.iter().enumerate() {
        let addr = format!("{}:{}", args.host, cn_ports[k]);
        wait_listening(&mut cluster, &addr, name).await?;
        println!("  started coordinator {name} on {addr}");
    }
    println!();
    println!(
        "GTM:        pgxc gtm-ctl --gtm {} status",
        gtm_addrs.join(",")
    );
    println!("GTM proxy:  {proxy_addr}");
    for (k, (name, _)) in cn_internal.iter().enumerate() {
        println!(
            "{name}:        psql -h {} -p {} -U postgres postgres",
            args.host, cn_ports[k]
        );
    }
    let mut clean = format!("pgxc clean --gtm {}", gtm_addrs.join(","));
    for (name, addr) in dn_addrs.iter().chain(cn_internal.iter()) {
        clean.push_str(&format!(" --node {name}={addr}"));
    }
    println!("In doubt:   {clean}");
    println!("Press Ctrl-C to stop the cluster.");
    loop {
        tokio::select! {
            // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
            biased;
            _ = crate::serve::shutdown_signal() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for m in cluster.restart_exited()? {
                    eprintln!("{m}");
                }
            }
        }
    }
    println!("stopping the cluster");
    cluster.stop();
    println!("stopped; data kept in {}", data.display());
    Ok(())
}

/// Wait until `addr` accepts TCP connections (the component is ready), or fail with its log if it
/// exits or 60 s pass.
async fn wait_listening(cluster: &mut Cluster, addr: &str, what: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(e) = cluster.exited() {
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
