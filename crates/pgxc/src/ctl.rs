//! `pgxc ctl`: deploy and run a cluster (XC's pgxc_ctl). This module is `pgxc ctl up`, the foreground form;
//! the other verbs are in `ctl_verbs`, the configuration in `ctl_config` (docs/ctl.md).
//!
//! `pgxc ctl up` with no configuration starts, under `./pgxc-data` (first time: initialises), 3 GTM replicas,
//! 1 GTM proxy, 2 datanodes and 2 coordinators as child processes of this binary on loopback ports from
//! `--base-port` (GTM base..base+2, proxy base+10, datanodes base+20.., coordinators' internal endpoints
//! base+30.., coordinators' client ports base+100..), and writes that layout to `<data>/pgxc-ctl.toml` so the
//! other verbs (`status`, `monitor`, ...) can name it. With `-c FILE` it runs that configured cluster instead.
//! It waits until each component is ready, prints a psql command per coordinator, stays in the foreground,
//! restarts a child that dies (with its data), and stops every child cleanly (SIGTERM, then SIGKILL after a
//! grace period) on Ctrl-C. Running it again keeps the data.

use crate::ctl_config::{Component, Kind, Plan};
use crate::ctl_proc;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// The default `--base-port`: GTM replicas on 6666..6668, coordinators' clients on 6766.. .
pub const DEFAULT_BASE_PORT: u16 = 6666;

/// `pgxc ctl up` options (without `-c`; with `-c FILE` only the configuration counts).
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Where the cluster's data directories and logs live.
    #[arg(long, default_value = "pgxc-data")]
    pub data: PathBuf,
    /// First port: GTM replicas use base, base+1, base+2; the GTM proxy base+10; datanodes base+20..;
    /// coordinators base+30.. (internal) and base+100.. (PostgreSQL clients).
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
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
    comp: Component,
    child: Child,
}

/// Children are stopped when this is dropped, whatever happened.
struct Cluster {
    plan: Plan,
    procs: Vec<Proc>,
}

impl Cluster {
    fn spawn(&mut self, c: &Component) -> Result<()> {
        let child = ctl_proc::spawn(&self.plan, c, false)?;
        self.procs.push(Proc {
            comp: c.clone(),
            child,
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
                p.comp.name,
                p.comp.log().display(),
                ctl_proc::tail(&p.comp.log(), 5)
            ));
            self.spawn(&p.comp)?;
        }
        Ok(msgs)
    }

    /// A child that exited: its name, status and the tail of its log.
    fn exited(&mut self) -> Option<String> {
        self.procs
            .iter_mut()
            .find_map(|p| ctl_proc::exit_message(&p.comp, &mut p.child))
    }

    fn stop(&mut self) {
        // Coordinators first, GTM replicas last (the reverse of the start order).
        for p in self.procs.iter().rev() {
            // SIGTERM: each component shuts down cleanly.
            let _ = ctl_proc::signal(p.child.id() as i32, nix::sys::signal::Signal::SIGTERM);
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
            ctl_proc::clear_pid(&p.comp);
        }
        self.procs.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `pgxc ctl up [-c FILE]`: see the module documentation.
///
/// Errors: a bad configuration, a port in use, a data directory that cannot be created or belongs to
/// another component, a component that exits during start-up (with its log's last lines), no GTM leader
/// within 30 s.
pub async fn up(args: UpArgs, config: Option<&Path>) -> Result<()> {
    let (plan, what, cfg_file) = match config {
        Some(path) => (
            Plan::load(path)?,
            format!("the cluster of {}", path.display()),
            path.to_path_buf(),
        ),
        None => {
            let data = &args.data;
            std::fs::create_dir_all(data)
                .with_context(|| format!("cannot create {}", data.display()))?;
            let file = data.join(crate::ctl_config::DEFAULT_CONFIG);
            // A directory an earlier `ctl up` created keeps its layout: the GTM replicas remember
            // their peers' addresses, so the ports cannot change (`--base-port` is only for a new
            // directory; repeating the same one is fine).
            let plan = if file.exists() {
                let stored = Plan::load(&file)?;
                let stored_base = stored
                    .gtm_addrs()
                    .first()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(b) = stored_base {
                    if b != args.base_port && args.base_port != DEFAULT_BASE_PORT {
                        bail!(
                            "{} was created with --base-port {b}; its GTM replicas remember those \
                             ports, so start it with --base-port {b} (or without --base-port), or use a \
                             new --data directory for other ports",
                            data.display()
                        );
                    }
                }
                stored
            } else {
                Plan::default_cluster(
                    data,
                    &args.host,
                    args.base_port,
                    args.datanodes,
                    args.coordinators,
                )?
            };
            let text = plan.to_toml(
                data,
                "The cluster `pgxc ctl up` runs from this directory, rewritten by every `pgxc ctl up`\n\
                 (docs/ctl.md). While it runs: pgxc ctl -c <this file> status | monitor all.",
            );
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
            (
                Plan {
                    file: Some(file.clone()),
                    ..plan
                },
                format!("the default local cluster in {}", data.display()),
                file,
            )
        }
    };
    for c in &plan.components {
        if let Some(pid) = ctl_proc::running_pid(c) {
            bail!(
                "{} is already running (pid {pid}); stop it with `pgxc ctl -c {} stop` first",
                c.label(),
                cfg_file.display()
            );
        }
        ctl_proc::check_ports(c)?;
    }
    let mut first = false;
    for c in &plan.components {
        first |= ctl_proc::init_dir(c)?;
    }
    println!("{} {what}", if first { "initialising" } else { "starting" });
    let mut cluster = Cluster {
        plan: plan.clone(),
        procs: Vec::new(),
    };
    for c in plan.of(Kind::Gtm) {
        cluster.spawn(c)?;
        println!(
            "  started GTM replica {} on {} (log {})",
            c.gtm_id.unwrap_or(0),
            c.addr(),
            c.log().display()
        );
    }
    let leader = ctl_proc::wait_gtm_leader(&plan.gtm_addrs(), || cluster.exited()).await?;
    println!(
        "  GTM group ready: leader is replica {} ({})",
        leader.0, leader.1
    );
    for kind in [Kind::GtmProxy, Kind::Datanode, Kind::Coordinator] {
        for c in plan.of(kind) {
            cluster.spawn(c)?;
        }
        for c in plan.of(kind) {
            ctl_proc::wait_ready(c, || cluster.exited()).await?;
            println!("  started {} {} on {}", c.kind.word(), c.name, c.addr());
        }
    }
    let gtm_addrs = plan.gtm_addrs();
    println!();
    println!(
        "GTM:        pgxc gtm-ctl --gtm {} status",
        gtm_addrs.join(",")
    );
    for p in plan.of(Kind::GtmProxy) {
        println!("GTM proxy:  {}", p.addr());
    }
    for c in plan.of(Kind::Coordinator) {
        println!(
            "{:<12}psql -h {} -p {} -U postgres postgres",
            format!("{}:", c.name),
            c.host,
            c.port
        );
    }
    let mut clean = format!("pgxc clean --gtm {}", gtm_addrs.join(","));
    for c in plan.of(Kind::Datanode) {
        clean.push_str(&format!(" --node {}={}", c.name, c.addr()));
    }
    for c in plan.of(Kind::Coordinator) {
        clean.push_str(&format!(
            " --node {}={}",
            c.name,
            c.internal_addr().unwrap_or_default()
        ));
    }
    println!("In doubt:   {clean}");
    println!("Status:     pgxc ctl -c {} status", cfg_file.display());
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
    let kept: Vec<String> = plan
        .components
        .iter()
        .filter(|c| c.kind != Kind::GtmProxy)
        .map(|c| c.data_dir.display().to_string())
        .collect();
    println!("stopped; data kept in {}", common_dir(&kept));
    Ok(())
}

/// The directory the data directories share (their parent when they are siblings), for the goodbye line.
fn common_dir(dirs: &[String]) -> String {
    let parents: Vec<Option<&Path>> = dirs.iter().map(|d| Path::new(d).parent()).collect();
    match parents.first() {
        Some(Some(p)) if parents.iter().all(|q| *q == Some(*p)) => p.display().to_string(),
        _ => dirs.join(", "),
    }
}
