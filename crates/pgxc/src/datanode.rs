//! `pgxc datanode`: a datanode of a cluster, or (`--standalone`) one serving psql by itself.
//!
//! - Cluster mode: the engine (store `datanode.redb` in the data directory) takes every GXID and
//!   snapshot from the GTM (`--gtm`, a GTM proxy or the replicas), and serves coordinators over the
//!   coordinator protocol (`pgxc_datanode::server`) on `--listen`.
//! - `--standalone`: a local GTM, and PostgreSQL's wire protocol on `--listen` (`pgxc_wire`), each
//!   session on its own thread.
//!
//! The engine is opened on a blocking thread: opening drives storage futures on the engine's own
//! runtime, and in cluster mode it asks the GTM for GXIDs synchronously.

use anyhow::{bail, Context, Result};
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_storage::Disk;
use std::path::PathBuf;
use std::sync::Arc;

/// `pgxc datanode` options.
#[derive(clap::Args, Debug)]
pub struct DatanodeArgs {
    /// Serve PostgreSQL clients directly with a local GTM (no coordinator, no cluster).
    #[arg(long)]
    pub standalone: bool,
    /// Data directory (created on first start).
    #[arg(long, short = 'D')]
    pub data_dir: PathBuf,
    /// Listen address host:port: PostgreSQL clients (`--standalone`) or coordinators.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub listen: String,
    /// This datanode's node name (cluster mode).
    #[arg(long)]
    pub name: Option<String>,
    /// GTM addresses host:port, comma separated: a GTM proxy or the replicas (cluster mode).
    #[arg(long, value_delimiter = ',')]
    pub gtm: Vec<String>,
    /// Client authentication on the PostgreSQL port: `trust` (default) or `scram`
    /// (SCRAM-SHA-256 against --password-file).
    #[arg(long, default_value = "trust")]
    pub auth: String,
    /// Users for `--auth scram`: one `user:password` (or `user:SCRAM-SHA-256$...`) per line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Run the datanode until Ctrl-C / SIGTERM (commits are already durable).
pub fn run(args: DatanodeArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let disk = Disk::real(&args.data_dir);
    if !args.standalone {
        return run_cluster(args, disk);
    }
    let auth = crate::serve::client_auth(&args.auth, args.password_file.as_deref())?;
    let engine = pgxc_sql::Engine::open(&disk, "datanode.redb")
        .map_err(|e| anyhow::anyhow!("cannot open the datanode store: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            data_dir = %args.data_dir.display(),
            "standalone datanode ready"
        );
        tokio::select! {
            biased;
            _ = crate::serve::shutdown_signal() => Ok(()),
            r = pgxc_wire::serve_auth(listener, engine.clone(), auth) => r.context("accept failed"),
        }
    });
    drop(rt);
    drop(engine);
    served
}

/// Open a cluster node's engine with the GTM as its GXID source (on a blocking thread).
pub async fn open_cluster_engine(
    disk: Disk,
    file: &'static str,
    gtm: &GtmClient,
) -> Result<Arc<pgxc_sql::Engine>> {
    let src = Arc::new(pgxc_datanode::gtm_source::GtmTxnSource::new(gtm.clone()));
    tokio::task::spawn_blocking(move || pgxc_sql::Engine::open_with(&disk, file, Some(src)))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))
}

fn run_cluster(args: DatanodeArgs, disk: Disk) -> Result<()> {
    let Some(name) = args.name.clone() else {
        bail!("a datanode of a cluster needs --name (or use --standalone)");
    };
    if args.gtm.is_empty() {
        bail!("a datanode of a cluster needs --gtm host:port[,...] (or use --standalone)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let gtm = GtmClient::connect(args.gtm.clone(), ClientOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the GTM at {:?}: {e}", args.gtm))?;
        let engine = open_cluster_engine(disk, "datanode.redb", &gtm).await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            %name,
            listen = %listener.local_addr()?,
            data_dir = %args.data_dir.display(),
            "datanode ready"
        );
        let keep = engine.clone();
        let r = tokio::select! {
            biased;
            _ = crate::serve::shutdown_signal() => Ok(()),
            r = pgxc_datanode::server::serve(listener, engine, name) => r.context("accept failed"),
        };
        // The engine owns a runtime: its last reference must not be dropped on an async worker.
        let _ = tokio::task::spawn_blocking(move || drop(keep)).await;
        r
    })
}
