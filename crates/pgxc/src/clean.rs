//! `pgxc clean`: finish prepared transactions left in doubt (XC's pgxc_clean), from the GTM's
//! decision record. Options as pgxc_clean where they apply: `-N/--no-clean` reports only,
//! `-s/--status` lists what every node holds prepared.

use anyhow::{bail, Result};
use pgxc_coordinator::clean::{clean, status, AddrNodes};
use pgxc_gtm::client::{ClientOptions, GtmClient};

/// `pgxc clean` options.
#[derive(clap::Args, Debug)]
pub struct CleanArgs {
    /// GTM addresses host:port, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub gtm: Vec<String>,
    /// A node holding prepared transactions, `name=host:port`: every datanode, and every
    /// coordinator's internal endpoint; repeat for each.
    #[arg(long = "node")]
    pub nodes: Vec<String>,
    /// Report what would be done; change nothing (pgxc_clean's --no-clean).
    #[arg(short = 'N', long)]
    pub no_clean: bool,
    /// List the transactions each node holds prepared, then exit (pgxc_clean's --status).
    #[arg(short = 's', long)]
    pub status: bool,
    /// Accepted for pgxc_clean compatibility: every database is always cleaned.
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// Run `pgxc clean`.
pub async fn run(args: CleanArgs) -> Result<()> {
    let mut addrs = std::collections::BTreeMap::new();
    for n in &args.nodes {
        match n.split_once('=') {
            Some((name, addr)) if !name.is_empty() && !addr.is_empty() => {
                addrs.insert(name.to_string(), addr.to_string());
            }
            _ => bail!("--node expects name=host:port, got {n:?}"),
        }
    }
    let nodes = AddrNodes { addrs };
    if args.status {
        for (node, r) in status(&nodes).await {
            match r {
                Ok(v) if v.is_empty() => println!("{node}: no prepared transactions"),
                Ok(v) => {
                    for (gid, gxid) in v {
                        println!("{node}: prepared {gid} (gxid {gxid})");
                    }
                }
                Err(e) => println!("{node}: unreachable: {e}"),
            }
        }
        return Ok(());
    }
    if args.gtm.is_empty() {
        bail!("pgxc clean needs --gtm host:port[,...]");
    }
    let gtm = GtmClient::connect(args.gtm.clone(), ClientOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the GTM at {:?}: {e}", args.gtm))?;
    let report = clean(&gtm, &nodes, args.no_clean)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let verb = if args.no_clean { "would be " } else { "" };
    for g in &report.committed {
        println!("{g}: {verb}committed");
    }
    for g in &report.rolled_back {
        println!("{g}: {verb}rolled back");
    }
    for g in &report.left {
        println!("{g}: left in doubt (a user's PREPARE TRANSACTION, or a node did not answer)");
    }
    if report.committed.is_empty() && report.rolled_back.is_empty() && report.left.is_empty() {
        println!("no transaction in doubt");
    }
    Ok(())
}
