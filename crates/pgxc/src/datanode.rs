//! `pgxc datanode --standalone`: one datanode serving PostgreSQL's wire protocol by itself.
//!
//! The engine (`pgxc_sql::Engine`, store `datanode.redb` in the data directory, a local GTM) is opened
//! before the tokio runtime starts, because opening drives storage futures on the engine's own
//! runtime; connections are then served by `pgxc_wire::serve`, each session on its own thread.

use anyhow::{bail, Context, Result};
use pgxc_storage::Disk;
use std::path::PathBuf;

/// `pgxc datanode` options.
#[derive(clap::Args, Debug)]
pub struct DatanodeArgs {
    /// Serve clients directly (no coordinator): the only mode so far.
    #[arg(long)]
    pub standalone: bool,
    /// Data directory (created on first start).
    #[arg(long, short = 'D')]
    pub data_dir: PathBuf,
    /// Listen address host:port for PostgreSQL clients.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub listen: String,
}

/// Run the datanode until Ctrl-C / SIGTERM (the latter ends the process; commits are already durable).
pub fn run(args: DatanodeArgs) -> Result<()> {
    if !args.standalone {
        bail!("only `pgxc datanode --standalone` is implemented so far");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let disk = Disk::real(&args.data_dir);
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
            r = pgxc_wire::serve(listener, engine.clone()) => r.context("accept failed"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    drop(rt);
    drop(engine);
    served
}
