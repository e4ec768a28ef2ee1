//! `pgxc`: one binary, a subcommand per component.
//!
//! - `pgxc gtm`: a GTM replica (initialises its data directory on first start, like XC's `initgtm`).
//! - `pgxc gtm-proxy`: a GTM proxy.
//! - `pgxc gtm-ctl`: status, promote, transfer-leader, add-member, remove-member.
//! - `pgxc ctl`: deploy and run a cluster from one TOML configuration (XC's pgxc_ctl): `up` (the default
//!   local cluster, or `-c FILE`'s, in the foreground), `init`, `start`, `stop`, `status`, `monitor`, `kill`,
//!   `add`, `remove` (docs/ctl.md).
//! - `pgxc datanode`: a datanode of a cluster (or `--standalone`, serving psql on its own).
//! - `pgxc coordinator`: a coordinator, where applications connect.
//! - `pgxc clean`: finish in-doubt prepared transactions (XC's pgxc_clean).

mod clean;
mod cmd_gtm;
mod coordinator;
mod ctl;
mod ctl_config;
mod ctl_gtm;
mod ctl_pgwire;
mod ctl_proc;
mod ctl_verbs;
mod datanode;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A write-scalable, symmetric PostgreSQL cluster (a Postgres-XC re-creation).
#[derive(Parser, Debug)]
#[command(name = "pgxc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a GTM replica (global transaction manager), a member of an openraft group.
    Gtm(GtmArgs),
    /// Run a GTM proxy: multiplexes and batches many sessions' GTM requests over one connection.
    GtmProxy(GtmProxyArgs),
    /// Deploy and run a cluster (XC's pgxc_ctl).
    Ctl {
        /// The cluster configuration (TOML, docs/ctl.md). Default for `up`: the built-in local cluster;
        /// for the other verbs: ./pgxc-ctl.toml.
        #[arg(short = 'c', long = "config", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        verb: CtlVerb,
    },
    /// Run a datanode of a cluster, serving coordinators; or, with `--standalone`, serving the PostgreSQL
    /// wire protocol itself (psql connects directly) with a local GTM and no coordinator.
    Datanode(datanode::DatanodeArgs),
    /// Run a coordinator: PostgreSQL clients connect here.
    Coordinator(coordinator::CoordinatorArgs),
    /// Finish prepared transactions left in doubt, from the GTM's decision record (XC's pgxc_clean).
    Clean(clean::CleanArgs),
    /// Operate a GTM group.
    GtmCtl {
        /// GTM addresses (host:port), comma separated.
        #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:6666")]
        gtm: Vec<String>,
        #[command(subcommand)]
        verb: GtmCtlVerb,
    },
}

/// `pgxc ctl` verbs (XC's pgxc_ctl). Targets are `all`, a kind (`gtm`, `gtm_proxy`, `datanode`,
/// `coordinator`) or a component name.
#[derive(Subcommand, Debug)]
pub enum CtlVerb {
    /// Start the default local cluster (or `-c FILE`'s) in the foreground, initialising it the first time;
    /// Ctrl-C stops it.
    Up(ctl::UpArgs),
    /// Write the default configuration if the file does not exist, then create the data directories.
    Init(ctl_verbs::InitArgs),
    /// Start components, detached (pid files in their data directories).
    Start {
        /// all | gtm | gtm_proxy | datanode | coordinator | <name>
        #[arg(default_value = "all")]
        target: String,
    },
    /// Stop components: coordinators first, GTM replicas last.
    Stop {
        /// smart: SIGTERM and wait; fast: SIGTERM, SIGKILL after 10 s; immediate: SIGKILL.
        #[arg(short = 'm', long = "mode", value_enum, default_value = "fast")]
        mode: ctl_verbs::StopMode,
        /// all | gtm | gtm_proxy | datanode | coordinator | <name>
        #[arg(default_value = "all")]
        target: String,
    },
    /// One line per component: running/stopped, pid, address, data directory.
    Status,
    /// "Running: ..." / "Not running: ..." per component (alive and accepting connections); fails if any
    /// is not running.
    Monitor {
        /// all | gtm | gtm_proxy | datanode | coordinator | <name>
        #[arg(default_value = "all")]
        target: String,
    },
    /// SIGKILL components (as `stop -m immediate`).
    Kill {
        /// all | gtm | gtm_proxy | datanode | coordinator | <name>
        target: String,
    },
    /// Add a coordinator or datanode: configure, initialise, start, and CREATE NODE on every coordinator.
    Add(ctl_verbs::AddArgs),
    /// Remove a coordinator or datanode: DROP NODE on every coordinator, stop it, drop it from the config.
    Remove {
        /// What to remove.
        #[arg(value_enum)]
        kind: ctl_verbs::NodeKind,
        /// Its node name.
        name: String,
        /// Also delete its data directory (XC's `remove ... clean`).
        #[arg(long)]
        clean: bool,
        /// Remove it even if a coordinator refuses DROP NODE (a table still uses the datanode).
        #[arg(long)]
        force: bool,
    },
}

/// `pgxc gtm` options. A TOML file given with `--config` supplies the same keys (`id`, `data_dir`, `listen`,
/// `peers`); flags override it.
#[derive(clap::Args, Debug, Default)]
pub struct GtmArgs {
    /// TOML configuration file with keys id, data_dir, listen, peers ("1=host:port,2=...").
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Raft node id of this replica (>= 1).
    #[arg(long)]
    pub id: Option<u64>,
    /// Data directory (created and initialised on first start).
    #[arg(long, short = 'D')]
    pub data_dir: Option<PathBuf>,
    /// Listen address host:port (clients, proxies and peers).
    #[arg(long)]
    pub listen: Option<String>,
    /// The group's initial voters, `id=host:port` comma separated, this node included. Used on first start only.
    #[arg(long)]
    pub peers: Option<String>,
}

/// `pgxc gtm-proxy` options.
#[derive(clap::Args, Debug)]
pub struct GtmProxyArgs {
    /// Listen address host:port for coordinators and datanodes.
    #[arg(long, default_value = "127.0.0.1:6670")]
    pub listen: String,
    /// GTM replica addresses, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub gtm: Vec<String>,
}

/// `pgxc gtm-ctl` verbs.
#[derive(Subcommand, Debug)]
pub enum GtmCtlVerb {
    /// Show every listed replica's role, term, leader, members and GXID marks.
    Status,
    /// Force the (first) listed replica into a one-member group (XC's standby promote). See docs/gtm.md.
    Promote,
    /// Hand leadership to replica `--to` (best effort).
    TransferLeader {
        /// Target node id.
        #[arg(long)]
        to: u64,
    },
    /// Add a replica as a voter.
    AddMember {
        /// New node id.
        #[arg(long)]
        id: u64,
        /// Its address host:port (it must be running, started with the same --peers or none).
        #[arg(long)]
        addr: String,
    },
    /// Remove a voter.
    RemoveMember {
        /// Node id.
        #[arg(long)]
        id: u64,
    },
}

async fn ctl_run(config: Option<PathBuf>, verb: CtlVerb) -> Result<()> {
    if let CtlVerb::Up(args) = verb {
        return ctl::up(args, config.as_deref()).await;
    }
    let path = config.unwrap_or_else(|| PathBuf::from(ctl_config::DEFAULT_CONFIG));
    match verb {
        CtlVerb::Up(_) => unreachable!("handled above"),
        CtlVerb::Init(args) => ctl_verbs::init(&path, &args),
        CtlVerb::Add(args) => ctl_verbs::add(&path, &args).await,
        CtlVerb::Remove {
            kind,
            name,
            clean,
            force,
        } => ctl_verbs::remove(&path, kind, &name, clean, force).await,
        verb => {
            let plan = ctl_config::Plan::load(&path)?;
            match verb {
                CtlVerb::Start { target } => ctl_verbs::start(&plan, &target).await,
                CtlVerb::Stop { mode, target } => ctl_verbs::stop(&plan, mode, &target).await,
                CtlVerb::Status => ctl_verbs::status(&plan),
                CtlVerb::Monitor { target } => ctl_verbs::monitor(&plan, &target).await,
                CtlVerb::Kill { target } => ctl_verbs::kill(&plan, &target).await,
                _ => unreachable!("handled above"),
            }
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("pgxc: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGXC_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Datanode(args) = cli.command {
        return datanode::run(args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Gtm(args) => cmd_gtm::run_gtm(args).await,
            Command::GtmProxy(args) => cmd_gtm::run_proxy(args).await,
            Command::GtmCtl { gtm, verb } => ctl_gtm::run(&gtm, verb).await,
            Command::Ctl { config, verb } => ctl_run(config, verb).await,
            Command::Coordinator(args) => coordinator::run(args).await,
            Command::Clean(args) => clean::run(args).await,
            Command::Datanode(_) => unreachable!("handled above"),
        }
    })
}
