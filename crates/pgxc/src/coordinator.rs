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

/// `pgxc coordinator` options. A TOML file given with `--config` supplies the same keys (`name`,
/// `data_dir`, `listen`, `internal`, `gtm = ["host:port", ...]`, `datanodes = ["dn1=host:port", ...]`,
/// `peers = [...]`, `preferred`, `auth`, `password_file`); flags override it (XC's
/// `postgresql.conf` of a coordinator, reduced to what pgxc uses).
#[derive(clap::Args, Debug, Default)]
pub struct CoordinatorArgs {
    /// TOML configuration file with the keys above.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// This coordinator's node name.
    #[arg(long)]
    pub name: Option<String>,
    /// Data directory (created on first start).
    #[arg(long, short = 'D')]
    pub data_dir: Option<PathBuf>,
    /// Listen address host:port for PostgreSQL clients (default 127.0.0.1:5432).
    #[arg(long)]
    pub listen: Option<String>,
    /// Listen address host:port for other coordinators (catalog changes).
    #[arg(long)]
    pub internal: Option<String>,
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
    #[arg(long)]
    pub auth: Option<String>,
    /// Users for `--auth scram`: one `user:password` (or `user:SCRAM-SHA-256$...`) per line.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// The keys of a `pgxc coordinator --config` file.
#[derive(serde::Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct CoordinatorFile {
    name: Option<String>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    internal: Option<String>,
    #[serde(default)]
    gtm: Vec<String>,
    #[serde(default)]
    datanodes: Vec<String>,
    #[serde(default)]
    peers: Vec<String>,
    preferred: Option<String>,
    auth: Option<String>,
    password_file: Option<PathBuf>,
}

/// A coordinator's settings: the `--config` file with the flags on top.
#[derive(Debug, PartialEq)]
pub struct CoordinatorSettings {
    /// Node name.
    pub name: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Client listen address.
    pub listen: String,
    /// Internal (coordinator protocol) listen address.
    pub internal: String,
    /// GTM (proxy) addresses.
    pub gtm: Vec<String>,
    /// `name=host:port` per datanode.
    pub datanodes: Vec<String>,
    /// `name=host:port` per peer coordinator.
    pub peers: Vec<String>,
    /// Preferred datanode for replicated reads.
    pub preferred: Option<String>,
    /// `trust` or `scram`.
    pub auth: String,
    /// Users for `scram`.
    pub password_file: Option<PathBuf>,
}

/// Merge `--config` (if any) and the flags. Errors: an unreadable or malformed file (with its
/// line), an unknown key, a missing name, data directory or internal address.
pub fn settings(args: &CoordinatorArgs) -> Result<CoordinatorSettings> {
    let file: CoordinatorFile = crate::cmd_gtm::config_file(args.config.as_deref(), "coordinator")?;
    let or_file = |flags: &Vec<String>, file: Vec<String>| {
        if flags.is_empty() {
            file
        } else {
            flags.clone()
        }
    };
    Ok(CoordinatorSettings {
        name: args
            .name
            .clone()
            .or(file.name)
            .ok_or_else(|| anyhow::anyhow!("missing --name (this coordinator's node name)"))?,
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
        internal: args
            .internal
            .clone()
            .or(file.internal)
            .ok_or_else(|| anyhow::anyhow!("missing --internal (the address peers reach)"))?,
        gtm: or_file(&args.gtm, file.gtm),
        datanodes: or_file(&args.datanodes, file.datanodes),
        peers: or_file(&args.peers, file.peers),
        preferred: args.preferred.clone().or(file.preferred),
        auth: args
            .auth
            .clone()
            .or(file.auth)
            .unwrap_or_else(|| "trust".into()),
        password_file: args.password_file.clone().or(file.password_file),
    })
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
    let args = settings(&args)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pgxc-cn-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("cn1.toml");
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn a_config_file_gives_the_settings_and_flags_override_it() {
        let p = file(
            "name = \"cn1\"\ndata_dir = \"/data/cn1\"\ninternal = \"127.0.0.1:6696\"\n\
             gtm = [\"127.0.0.1:6676\"]\ndatanodes = [\"dn1=127.0.0.1:6686\", \"dn2=127.0.0.1:6687\"]\n\
             peers = [\"cn2=127.0.0.1:6697\"]\n",
        );
        let s = settings(&CoordinatorArgs {
            config: Some(p.clone()),
            listen: Some("127.0.0.1:6766".into()),
            ..CoordinatorArgs::default()
        })
        .expect("settings");
        assert_eq!(s.name, "cn1");
        assert_eq!(s.data_dir, PathBuf::from("/data/cn1"));
        assert_eq!(s.listen, "127.0.0.1:6766");
        assert_eq!(s.internal, "127.0.0.1:6696");
        assert_eq!(s.gtm, vec!["127.0.0.1:6676".to_string()]);
        assert_eq!(s.datanodes.len(), 2);
        assert_eq!(s.peers, vec!["cn2=127.0.0.1:6697".to_string()]);
        assert_eq!(s.auth, "trust");
        // A flag wins over the file.
        let s = settings(&CoordinatorArgs {
            config: Some(p.clone()),
            name: Some("cn9".into()),
            datanodes: vec!["dn3=127.0.0.1:6688".into()],
            ..CoordinatorArgs::default()
        })
        .expect("settings");
        assert_eq!(
            (s.name.as_str(), s.datanodes),
            ("cn9", vec!["dn3=127.0.0.1:6688".to_string()])
        );
        let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
    }

    #[test]
    fn bad_config_files_are_refused_clearly() {
        let p = file("name = \"cn1\"\nbogus = 1\n");
        let e = format!(
            "{:#}",
            settings(&CoordinatorArgs {
                config: Some(p.clone()),
                ..CoordinatorArgs::default()
            })
            .expect_err("unknown key")
        );
        assert!(
            e.contains("bad coordinator config") && e.contains("bogus"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(p.parent().expect("dir"));
        let e = format!(
            "{:#}",
            settings(&CoordinatorArgs {
                name: Some("cn1".into()),
                ..CoordinatorArgs::default()
            })
            .expect_err("no data dir")
        );
        assert!(e.contains("missing --data-dir"), "{e}");
    }
}
