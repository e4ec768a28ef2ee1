//! `pgxc ctl` verbs over a configured cluster (XC's pgxc_ctl): `init`, `start`, `stop`, `status`,
//! `monitor`, `kill`, `add`, `remove`. Components run detached (their own process group, a pid file in
//! each data directory), so every verb works across invocations; `pgxc ctl up` is the foreground form.
//!
//! Start order is the configuration's: GTM replicas (then a leader is awaited), GTM proxies, datanodes,
//! coordinators; stop order is the reverse.

use crate::ctl_config::{entry_toml, remove_entry, Component, Kind, Plan};
use crate::ctl_pgwire;
use crate::ctl_proc::{self, check_dir, check_ports, init_dir, running_pid};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `pgxc ctl stop -m` modes (pg_ctl's).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// SIGTERM, then wait up to 60 s (fails, leaving the process running, if it has not exited).
    Smart,
    /// SIGTERM, then SIGKILL after 10 s.
    Fast,
    /// SIGKILL at once (as `kill`); restarting recovers from the durable state.
    Immediate,
}

/// Options of `pgxc ctl init` used when it writes a new configuration file.
#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// First port of the default cluster written when the configuration file does not exist yet
    /// (the same layout as `pgxc ctl up --base-port`).
    #[arg(long, default_value_t = 6666)]
    pub base_port: u16,
    /// Host of the default cluster written when the configuration file does not exist yet.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

/// `pgxc ctl add` / `remove` node kinds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A coordinator.
    Coordinator,
    /// A datanode.
    Datanode,
}

impl NodeKind {
    fn kind(self) -> Kind {
        match self {
            NodeKind::Coordinator => Kind::Coordinator,
            NodeKind::Datanode => Kind::Datanode,
        }
    }
}

/// `pgxc ctl init`: write the default cluster's configuration to `path` when it does not exist (data
/// directories beside it), then create every data directory that does not exist yet (kept otherwise).
///
/// Errors: the configuration is invalid, a directory cannot be created or belongs to another component.
pub fn init(path: &Path, args: &InitArgs) -> Result<()> {
    if !path.exists() {
        let base = abs_parent(path)?;
        let plan = Plan::default_cluster(&base, &args.host, args.base_port, 2, 2)?;
        let text = plan.to_toml(
            &base,
            "pgxc ctl cluster configuration, written by `pgxc ctl init` (docs/ctl.md).\n\
             Relative data_dir paths are relative to this file's directory.",
        );
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "wrote the default cluster's configuration to {}",
            path.display()
        );
    }
    let plan = Plan::load(path)?;
    for c in &plan.components {
        let created = init_dir(c)?;
        println!(
            "{:<12} {:<12} {} {}",
            c.name,
            c.kind.word(),
            if created {
                "initialised"
            } else {
                "kept       "
            },
            c.data_dir.display()
        );
    }
    println!("next: pgxc ctl -c {} start", path.display());
    Ok(())
}

fn abs_parent(path: &Path) -> Result<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match parent {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// `pgxc ctl start [target]`: start the selected components that are not running, detached, each waited
/// for until ready (GTM replicas: a leader elected; others: accepting connections).
///
/// Errors: a missing data directory, a port in use, a component exiting during start-up (with its log's
/// last lines). Components started before the failure are left running (`pgxc ctl stop` stops them).
pub async fn start(plan: &Plan, target: &str) -> Result<()> {
    let sel = plan.select(target)?;
    let mut todo = Vec::new();
    for c in &sel {
        if let Some(pid) = running_pid(c) {
            println!("{:<12} already running (pid {pid})", c.name);
        } else {
            check_dir(plan, c)?;
            check_ports(c)?;
            todo.push(*c);
        }
    }
    let gtms: Vec<&Component> = todo
        .iter()
        .copied()
        .filter(|c| c.kind == Kind::Gtm)
        .collect();
    let mut gtm_children = Vec::new();
    for c in &gtms {
        gtm_children.push((*c, ctl_proc::spawn(plan, c, true)?));
        println!(
            "{:<12} starting GTM replica on {} (log {})",
            c.name,
            c.addr(),
            c.log().display()
        );
    }
    if !gtms.is_empty() {
        let (id, addr) = ctl_proc::wait_gtm_leader(&plan.gtm_addrs(), || {
            gtm_children
                .iter_mut()
                .find_map(|(c, ch)| ctl_proc::exit_message(c, ch))
        })
        .await?;
        println!("GTM group ready: leader is replica {id} ({addr})");
    }
    for c in todo.iter().filter(|c| c.kind != Kind::Gtm) {
        let mut child = ctl_proc::spawn(plan, c, true)?;
        ctl_proc::wait_ready(c, || ctl_proc::exit_message(c, &mut child)).await?;
        println!(
            "{:<12} started {} on {} (log {})",
            c.name,
            c.kind.word(),
            c.addr(),
            c.log().display()
        );
    }
    for c in sel.iter().filter(|c| c.kind == Kind::Coordinator) {
        println!(
            "{:<12} psql -h {} -p {} -U postgres postgres",
            c.name, c.host, c.port
        );
    }
    Ok(())
}

/// `pgxc ctl stop [-m mode] [target]`: stop the selected running components, coordinators first and GTM
/// replicas last, and remove their pid files.
///
/// Errors: in smart mode, a component still running after 60 s (named; the others are still stopped).
pub async fn stop(plan: &Plan, mode: StopMode, target: &str) -> Result<()> {
    let sel = plan.select(target)?;
    let mut stuck = Vec::new();
    for c in sel.iter().rev() {
        let Some(pid) = running_pid(c) else {
            ctl_proc::clear_pid(c);
            println!("{:<12} already stopped", c.name);
            continue;
        };
        if stop_one(c, pid, mode).await {
            ctl_proc::clear_pid(c);
            println!("{:<12} stopped ({mode:?})", c.name);
        } else {
            stuck.push(c.name.clone());
        }
    }
    if !stuck.is_empty() {
        bail!(
            "still running after 60 s: {} (clients still connected?); use `pgxc ctl stop -m fast`",
            stuck.join(", ")
        );
    }
    Ok(())
}

async fn stop_one(c: &Component, pid: i32, mode: StopMode) -> bool {
    match mode {
        StopMode::Immediate => {
            let _ = ctl_proc::signal(pid, Signal::SIGKILL);
            ctl_proc::wait_gone(c, pid, None, Duration::from_secs(10)).await
        }
        StopMode::Smart => {
            let _ = ctl_proc::signal(pid, Signal::SIGTERM);
            ctl_proc::wait_gone(c, pid, None, Duration::from_secs(60)).await
        }
        StopMode::Fast => {
            let _ = ctl_proc::signal(pid, Signal::SIGTERM);
            if ctl_proc::wait_gone(c, pid, None, Duration::from_secs(10)).await {
                return true;
            }
            let _ = ctl_proc::signal(pid, Signal::SIGKILL);
            ctl_proc::wait_gone(c, pid, None, Duration::from_secs(10)).await
        }
    }
}

/// `pgxc ctl kill [target]`: SIGKILL the selected running components (XC's `kill`), remove pid files.
pub async fn kill(plan: &Plan, target: &str) -> Result<()> {
    stop(plan, StopMode::Immediate, target).await
}

/// `pgxc ctl status`: one line per component, in start order:
/// `<name> <kind> running|stopped <pid|-> <host:port>[ internal <host:port>] <data_dir>`.
pub fn status(plan: &Plan) -> Result<()> {
    for c in &plan.components {
        let pid = running_pid(c);
        let internal = c
            .internal_addr()
            .map(|a| format!(" internal {a}"))
            .unwrap_or_default();
        println!(
            "{:<12} {:<12} {:<8} {:<8} {}{} {}",
            c.name,
            c.kind.word(),
            if pid.is_some() { "running" } else { "stopped" },
            pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            c.addr(),
            internal,
            c.data_dir.display()
        );
    }
    Ok(())
}

/// `pgxc ctl monitor [target]`: XC's `monitor`: "Running: <kind> <name>" when the process is alive and
/// accepts connections (a coordinator: answers `SELECT 1`), "Not running: <kind> <name>" otherwise.
///
/// Errors: some selected component is not running (after printing every line), so scripts can test it.
pub async fn monitor(plan: &Plan, target: &str) -> Result<()> {
    let mut down = 0;
    for c in plan.select(target)? {
        let up = running_pid(c).is_some()
            && tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(c.addr()),
            )
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
            && (c.kind != Kind::Coordinator || ctl_proc::coordinator_answers(&c.addr()).await);
        if up {
            println!("Running: {} {}", c.kind.word(), c.name);
        } else {
            println!("Not running: {} {}", c.kind.word(), c.name);
            down += 1;
        }
    }
    if down > 0 {
        bail!("{down} component(s) not running");
    }
    Ok(())
}

/// `pgxc ctl add coordinator|datanode` options.
#[derive(clap::Args, Debug, Clone)]
pub struct AddArgs {
    /// What to add.
    #[arg(value_enum)]
    pub kind: NodeKind,
    /// Its node name (letters, digits, _).
    pub name: String,
    /// Its port (a datanode's for coordinators, a coordinator's for PostgreSQL clients).
    #[arg(long)]
    pub port: u16,
    /// A coordinator's internal port (default: --port + 1).
    #[arg(long)]
    pub internal_port: Option<u16>,
    /// Its data directory (default: `<name>` beside the configuration file).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Its host (loopback only for now).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

/// `pgxc ctl add coordinator|datanode NAME --port P [--dir D]`: append it to the configuration (checked
/// whole), initialise its data directory, start it, and register it on every other running coordinator
/// with `CREATE NODE name WITH (TYPE = 'datanode'|'coordinator', HOST = 'h', PORT = p)` (a coordinator's
/// PORT is its internal endpoint, the one other coordinators use).
///
/// A new coordinator copies the catalog from a running peer coordinator when it first starts (the
/// coordinator's own behaviour; XC's pgxc_ctl used pg_dump). A new datanode gets no existing rows: tables
/// keep their node lists.
///
/// Errors: the name or a port is taken (configuration error with its line), a port is in use, start-up
/// fails (the configuration keeps the entry: fix and `pgxc ctl start NAME`), or a coordinator refused the
/// registration (each error printed with its SQLSTATE; the node is added and running regardless).
pub async fn add(path: &Path, args: &AddArgs) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = abs_parent(path)?;
    let kind = args.kind.kind();
    let c = Component {
        kind,
        name: args.name.clone(),
        gtm_id: None,
        host: args.host.clone(),
        port: args.port,
        internal_port: (kind == Kind::Coordinator)
            .then(|| args.internal_port.unwrap_or(args.port.wrapping_add(1))),
        data_dir: match &args.dir {
            Some(d) if d.is_relative() => std::env::current_dir()?.join(d),
            Some(d) => d.clone(),
            None => base.join(&args.name),
        },
    };
    let mut new_text = text.clone();
    if !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push('\n');
    new_text.push_str(&entry_toml(&c, &base));
    // Check the whole new configuration before touching anything.
    Plan::parse(&new_text, &base)
        .map_err(|e| anyhow::anyhow!("{}: after adding {}: {e:#}", path.display(), c.label()))?;
    let old = Plan::load(path)?;
    let c = Plan::parse(&new_text, &base)?
        .get(&args.name)
        .cloned()
        .context("the new entry is missing")?;
    check_ports(&c)?;
    std::fs::write(path, &new_text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("added {} to {}", c.label(), path.display());
    let plan = Plan::load(path)?;
    init_dir(&c)?;
    start(&plan, &c.name).await?;
    let sql = create_node_sql(&c);
    let failed = on_coordinators(&old, &sql, "42710");
    if failed > 0 {
        bail!(
            "{} is running and in the configuration, but {failed} coordinator(s) did not register it (above); \
             run `{sql}` on them when fixed",
            c.label()
        );
    }
    Ok(())
}

/// How `sql` went on one coordinator.
enum Outcome {
    /// Done (or already so: `already_ok` SQLSTATE).
    Done,
    /// Not running: skipped (it reads the configuration when started).
    Skipped,
    /// Refused or unreachable (printed).
    Failed,
}

/// Run `sql` on running coordinator `cn`, printing the outcome; a server error whose SQLSTATE is
/// `already_ok` (42710 "already defined" for CREATE NODE, 42704 "not defined" for DROP NODE) counts as done.
fn on_coordinator(cn: &Component, sql: &str, already_ok: &str) -> Outcome {
    if running_pid(cn).is_none() {
        println!(
            "{:<12} not running: skipped `{sql}` (it reads the configuration when started)",
            cn.name
        );
        return Outcome::Skipped;
    }
    match ctl_pgwire::simple_query(&cn.addr(), sql) {
        Ok(Ok(tag)) => {
            println!("{:<12} {tag}", cn.name);
            Outcome::Done
        }
        Ok(Err(e)) if e.code == already_ok => {
            println!("{:<12} already done ({})", cn.name, e.message);
            Outcome::Done
        }
        Ok(Err(e)) => {
            println!("{:<12} `{sql}` failed: {e}", cn.name);
            Outcome::Failed
        }
        Err(e) => {
            println!("{:<12} `{sql}` failed: {e:#}", cn.name);
            Outcome::Failed
        }
    }
}

/// Run `sql` on every running coordinator of `plan`; returns how many failed.
fn on_coordinators(plan: &Plan, sql: &str, already_ok: &str) -> usize {
    plan.of(Kind::Coordinator)
        .filter(|cn| matches!(on_coordinator(cn, sql, already_ok), Outcome::Failed))
        .count()
}

fn create_node_sql(c: &Component) -> String {
    format!(
        "CREATE NODE {} WITH (TYPE = '{}', HOST = '{}', PORT = {})",
        c.name,
        c.kind.word(),
        c.host,
        c.internal_port.unwrap_or(c.port)
    )
}

/// `pgxc ctl remove coordinator|datanode NAME [--clean] [--force]`: `DROP NODE name` on every other
/// running coordinator, stop it (fast), remove its entry from the configuration, and with `--clean` delete
/// its data directory (XC's `remove ... clean`).
///
/// A coordinator that refuses the DROP NODE (e.g. 2BP01: a table still uses the datanode) stops the
/// removal: the coordinators that had dropped it get it back (CREATE NODE), the node keeps running and
/// stays in the configuration. `--force` removes it anyway (rows on a removed datanode become unreachable).
///
/// Errors: no such node, it is the last datanode or coordinator, or a coordinator refused (above).
pub async fn remove(
    path: &Path,
    kind: NodeKind,
    name: &str,
    clean: bool,
    force: bool,
) -> Result<()> {
    let plan = Plan::load(path)?;
    let kind = kind.kind();
    let c = plan
        .get(name)
        .filter(|c| c.kind == kind)
        .cloned()
        .with_context(|| format!("no {} named {name:?} in {}", kind.word(), path.display()))?;
    if plan.of(kind).count() == 1 {
        bail!(
            "{} is the cluster's last {}; a cluster needs at least one",
            c.label(),
            kind.word()
        );
    }
    let drop_sql = format!("DROP NODE {name}");
    let mut dropped = Vec::new();
    let mut failed = 0;
    for cn in plan.of(Kind::Coordinator).filter(|o| o.name != name) {
        match on_coordinator(cn, &drop_sql, "42704") {
            Outcome::Done => dropped.push(cn),
            Outcome::Skipped => {}
            Outcome::Failed if force => failed += 1,
            Outcome::Failed => {
                for back in dropped {
                    on_coordinator(back, &create_node_sql(&c), "42710");
                }
                bail!(
                    "{} was not removed: coordinator {} refused `{drop_sql}` (above); it keeps running and \
                     stays in the configuration (move or drop what uses it first, or use --force)",
                    c.label(),
                    cn.name
                );
            }
        }
    }
    stop(&plan, StopMode::Fast, name).await?;
    let text = std::fs::read_to_string(path)?;
    std::fs::write(path, remove_entry(&text, kind, name)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("removed {} from {}", c.label(), path.display());
    if clean {
        std::fs::remove_dir_all(&c.data_dir)
            .with_context(|| format!("cannot delete {}", c.data_dir.display()))?;
        println!("deleted {}", c.data_dir.display());
    }
    if failed > 0 {
        bail!("--force: {failed} coordinator(s) did not drop {name} (above)");
    }
    Ok(())
}
