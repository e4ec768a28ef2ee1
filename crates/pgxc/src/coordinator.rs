//! `pgxc coordinator`: where applications connect (PostgreSQL wire protocol on `--listen`).
//!
//! Its catalog engine (store `coordinator.redb`: every table's definition and `pgxc.pgxc_class`,
//! no user rows) takes GXIDs from the GTM like every node, and also serves the coordinator
//! protocol on `--internal`, so the other coordinators' DDL reaches this catalog in their
//! transactions.

use anyhow::{bail, Context, Result};
use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_storage::Disk;
use std::path::PathBuf;
use std::sync::Arc;

/// `pgxc coordinator` options.
#[derive(clap::Args, Debug)]
pub struct CoordinatorArgs {
    /// This coordinator's node name.
    #[arg(long)]
    pub name: String,
    /// Data directory (created on first start).
    #[arg(long, short = 'D')]
    pub data_dir: PathBuf,
    /// Listen address host:port for PostgreSQL clients.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub listen: String,
    /// Listen address host:port for other coordinators (catalog changes).
    #[arg(long)]
    pub internal: String,
    /// GTM addresses host:port, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub gtm: Vec<String>,
    /// A datanode, `name=host:port`; repeat for each, in node order.
    #[arg(long = "datanode")]
    pub datanodes: Vec<String>,
    /// Another coordinator's internal endpoint, `name=host:port`; repeat for each.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// The datanode replicated tables are read from when it holds them.
    #[arg(long)]
    pub preferred: Option<String>,
    /// Client authentication on the PostgreSQL port: `trust` (default) or `scram`
    /// (SCRAM-SHA-256 against --password-file).
    #[arg(long, default_value = "trust")]
    pub auth: String,
    /// Users for `--auth scram`: one `user:password` (or `user:SCRAM-SHA-256$...`) per line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

fn pairs(list: &[String], what: &str) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((n, a)) if !n.is_empty() && !a.is_empty() => Ok((n.to_string(), a.to_string())),
            _ => bail!("--{what} expects name=host:port, got {s:?}"),
        })
        .collect()
}

/// Run the coordinator until Ctrl-C / SIGTERM.
pub async fn run(args: CoordinatorArgs) -> Result<()> {
    let auth = crate::serve::client_auth(&args.auth, args.password_file.as_deref())?;
    let datanodes = pairs(&args.datanodes, "datanode")?;
    let peers = pairs(&args.peers, "peer")?;
    if datanodes.is_empty() {
        bail!("a coordinator needs at least one --datanode name=host:port");
    }
    if args.gtm.is_empty() {
        bail!("a coordinator needs --gtm host:port[,...]");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let gtm = GtmClient::connect(args.gtm.clone(), ClientOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the GTM at {:?}: {e}", args.gtm))?;
    // The catalog engine's sequences are the GTM's (global), not local ones.
    let engine = pgxc_coordinator::node::open_catalog_engine(
        Disk::real(&args.data_dir),
        "coordinator.redb",
        &gtm,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))?;
    let internal = tokio::net::TcpListener::bind(&args.internal)
        .await
        .with_context(|| format!("cannot listen on {}", args.internal))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let cfg = CoordinatorConfig {
        name: args.name.clone(),
        datanodes,
        peers,
        preferred: args.preferred.clone(),
        max_pool_size: 16,
    };
    let coord = Coordinator::start(cfg, engine.clone(), gtm)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the coordinator: {e}"))?;
    tracing::info!(
        name = %args.name,
        listen = %listener.local_addr()?,
        internal = %internal.local_addr()?,
        "coordinator ready"
    );
    let resolver = tokio::spawn(Arc::clone(&coord).resolver(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(30),
    ));
    // The engine owns a runtime: its last reference must not be dropped on an async worker, so
    // these two references outlive everything else here and are dropped on a blocking thread.
    let keep = (engine.clone(), Arc::clone(&coord));
    let r = tokio::select! {
        biased;
        _ = crate::serve::shutdown_signal() => Ok(()),
        r = pgxc_datanode::server::serve(internal, engine, args.name.clone()) => r.context("internal accept failed"),
        r = pgxc_coordinator::wire::serve_auth(listener, coord, auth) => r.context("accept failed"),
    };
    resolver.abort();
    let _ = resolver.await;
    let _ = tokio::task::spawn_blocking(move || drop(keep)).await;
    r
}
