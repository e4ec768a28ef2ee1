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

/// `pgxc datanode` options. A TOML file given with `--config` supplies the same keys (`standalone`,
/// `name`, `data_dir`, `listen`, `gtm = ["host:port", ...]`, `auth`, `password_file`); flags
/// override it.
#[derive(clap::Args, Debug, Default)]
pub struct DatanodeArgs {
    /// TOML configuration file with the keys above.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serve PostgreSQL clients directly with a local GTM (no coordinator, no cluster).
    #[arg(long)]
    pub standalone: bool,
    /// Data directory (created on first start).
    #[arg(long, short = 'D')]
    pub data_dir: Option<PathBuf>,
    /// Listen address host:port: PostgreSQL clients (`--standalone`) or coordinators (default
    /// 127.0.0.1:5432).
    #[arg(long)]
    pub listen: Option<String>,
    /// This datanode's node name (cluster mode).
    #[arg(long)]
    pub name: Option<String>,
    /// GTM addresses host:port, comma separated: a GTM proxy or the replicas (cluster mode).
    #[arg(long, value_delimiter = ',')]
    pub gtm: Vec<String>,
    /// Client authentication on the PostgreSQL port: `trust` (default) or `scram`
    /// (SCRAM-SHA-256 against --password-file).
    #[arg(long)]
    pub auth: Option<String>,
    /// Users for `--auth scram`: one `user:password` (or `user:SCRAM-SHA-256$...`) per line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// The keys of a `pgxc datanode --config` file.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct DatanodeFile {
    #[serde(default)]
    standalone: bool,
    name: Option<String>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    #[serde(default)]
    gtm: Vec<String>,
    auth: Option<String>,
    password_file: Option<PathBuf>,
}

/// A datanode's settings: the `--config` file with the flags on top.
#[derive(Debug, PartialEq)]
pub struct DatanodeSettings {
    /// Serve psql directly with a local GTM.
    pub standalone: bool,
    /// Node name (cluster mode).
    pub name: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: String,
    /// GTM (proxy) addresses (cluster mode).
    pub gtm: Vec<String>,
    /// `trust` or `scram` (standalone).
    pub auth: String,
    /// Users for `scram`.
    pub password_file: Option<PathBuf>,
}

/// Merge `--config` (if any) and the flags. Errors: an unreadable or malformed file (with its
/// line), an unknown key, a missing data directory.
pub fn settings(args: &DatanodeArgs) -> Result<DatanodeSettings> {
    let file: DatanodeFile = crate::cmd_gtm::config_file(args.config.as_deref(), "datanode")?;
    Ok(DatanodeSettings {
        standalone: args.standalone || file.standalone,
        name: args.name.clone().or(file.name),
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .ok_or_else(|| anyhow::anyhow!("missing --data-dir"))?,
        listen: args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:5432".into()),
        gtm: if args.gtm.is_empty() {
            file.gtm
        } else {
            args.gtm.clone()
        },
        auth: args
            .auth
            .clone()
            .or(file.auth)
            .unwrap_or_else(|| "trust".into()),
        password_file: args.password_file.clone().or(file.password_file),
    })
}

/// Run the datanode until Ctrl-C / SIGTERM (commits are already durable).
pub fn run(args: DatanodeArgs) -> Result<()> {
    let args = settings(&args)?;
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

fn run_cluster(args: DatanodeSettings, disk: Disk) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_gives_the_settings_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("pgxc-dn-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("dn1.toml");
        std::fs::write(
            &p,
            "name = \"dn1\"\ndata_dir = \"/data/dn1\"\nlisten = \"127.0.0.1:6686\"\ngtm = [\"127.0.0.1:6676\"]\n",
        )
        .expect("write");
        let s = settings(&DatanodeArgs {
            config: Some(p.clone()),
            ..DatanodeArgs::default()
        })
        .expect("settings");
        assert_eq!(
            s,
            DatanodeSettings {
                standalone: false,
                name: Some("dn1".into()),
                data_dir: PathBuf::from("/data/dn1"),
                listen: "127.0.0.1:6686".into(),
                gtm: vec!["127.0.0.1:6676".into()],
                auth: "trust".into(),
                password_file: None,
            }
        );
        let s = settings(&DatanodeArgs {
            config: Some(p.clone()),
            listen: Some("127.0.0.1:7000".into()),
            ..DatanodeArgs::default()
        })
        .expect("settings");
        assert_eq!(s.listen, "127.0.0.1:7000");
        std::fs::write(&p, "data_dir = \"/d\"\nport = 5\n").expect("write");
        let e = format!(
            "{:#}",
            settings(&DatanodeArgs {
                config: Some(p.clone()),
                ..DatanodeArgs::default()
            })
            .expect_err("unknown key")
        );
        assert!(
            e.contains("bad datanode config") && e.contains("port"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
