//! Start-up of the long-running components, shared by `pgxc gtm`, `pgxc gtm-proxy` and `pgxc ctl`.

use crate::cmd_gtm::GtmConfig;
use anyhow::{anyhow, Context, Result};
use openraft::BasicNode;
use pgxc_gtm::proxy::GtmProxy;
use pgxc_gtm::raft::{start_raft, RaftConfig, KV_NAME};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_storage::Disk;
use std::collections::BTreeMap;

/// Wait for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
            biased;
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Run a GTM replica: initialise the data directory on first start (like `initgtm`), start Raft, initialise the
/// group from the lowest-numbered peer on its first start, serve until Ctrl-C/SIGTERM.
///
/// Errors: the data directory cannot be created or opened (another `pgxc gtm` holds it, a damaged file), the
/// listen address is in use.
pub async fn gtm(cfg: GtmConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let disk = Disk::real(&cfg.data_dir);
    let first_start = !disk.exists(KV_NAME);
    if first_start {
        eprintln!(
            "initialising GTM data directory {} (node {})",
            cfg.data_dir.display(),
            cfg.id
        );
    }
    // Bind first: a port in use is the most common start-up error and must not leave Raft half started.
    let listener = tokio::net::TcpListener::bind(cfg.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let node = start_raft(cfg.id, &disk, RaftConfig::default())
        .await
        .map_err(|e| {
            anyhow!(
                "cannot start GTM node {} in {}: {e}",
                cfg.id,
                cfg.data_dir.display()
            )
        })?;
    let lowest = cfg.peers.keys().next().copied();
    if first_start && lowest == Some(cfg.id) {
        let members: BTreeMap<u64, BasicNode> = cfg
            .peers
            .iter()
            .map(|(id, a)| (*id, BasicNode::new(a.clone())))
            .collect();
        node.initialize(members)
            .await
            .map_err(|e| anyhow!("cannot initialise the GTM group: {e}"))?;
        eprintln!(
            "initialised GTM group with voters {}",
            fmt_peers(&cfg.peers)
        );
    } else if first_start && cfg.peers.is_empty() {
        eprintln!("no --peers: waiting to be added to a group (pgxc gtm-ctl add-member --id {} --addr {})", cfg.id, cfg.listen);
    }
    let server = GtmServer::start_with_listener(
        listener,
        ServerConfig::new(cfg.id, cfg.listen.clone()),
        Replication::Raft(node),
    )
    .map_err(|e| anyhow!("cannot start GTM server: {}", e.message))?;
    eprintln!("GTM node {} listening on {}", cfg.id, server.local_addr());
    shutdown_signal().await;
    eprintln!("GTM node {} shutting down", cfg.id);
    server.shutdown().await;
    Ok(())
}

fn fmt_peers(p: &BTreeMap<u64, String>) -> String {
    p.iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Run a GTM proxy until Ctrl-C/SIGTERM. Keeps trying to reach the GTM group at start-up.
pub async fn proxy(listen: String, gtm: Vec<String>) -> Result<()> {
    let mut warned = false;
    let proxy = loop {
        match GtmProxy::start(&listen, gtm.clone()).await {
            Ok(p) => break p,
            Err(e) if e.message.contains("cannot listen") => return Err(anyhow!("{}", e.message)),
            Err(e) => {
                if !warned {
                    eprintln!(
                        "GTM proxy: waiting for a GTM leader at {} ({})",
                        gtm.join(","),
                        e.message
                    );
                    warned = true;
                }
                tokio::select! {
                    // `biased`: tokio picks unbiased branches with a process-global seed, which breaks madsim determinism.
                    biased;
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                    _ = shutdown_signal() => return Ok(()),
                }
            }
        }
    };
    eprintln!(
        "GTM proxy listening on {} (GTM {})",
        proxy.local_addr(),
        gtm.join(",")
    );
    shutdown_signal().await;
    proxy.shutdown().await;
    Ok(())
}

/// Client authentication for the PostgreSQL wire front end, from `--auth` and `--password-file`:
/// `trust` (the default for a local cluster) or `scram` (SCRAM-SHA-256 against the users of the
/// password file, one `user:password` or `user:SCRAM-SHA-256$...` per line).
///
/// Errors: an unknown method, `scram` without a password file, or an unreadable/malformed file.
pub fn client_auth(
    method: &str,
    password_file: Option<&std::path::Path>,
) -> Result<pgxc_wire::auth::Auth> {
    match (method, password_file) {
        ("trust", None) => Ok(pgxc_wire::auth::Auth::Trust),
        ("trust", Some(_)) => Err(anyhow!("--password-file needs --auth scram")),
        ("scram" | "scram-sha-256", Some(f)) => pgxc_wire::auth::Auth::scram_from_file(f)
            .with_context(|| format!("cannot load the password file {}", f.display())),
        ("scram" | "scram-sha-256", None) => {
            Err(anyhow!("--auth scram needs --password-file FILE"))
        }
        (other, _) => Err(anyhow!("unknown --auth method {other:?} (trust or scram)")),
    }
}
