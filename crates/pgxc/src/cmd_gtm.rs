//! `pgxc gtm` and `pgxc gtm-proxy`: configuration checks and start-up.

use crate::{GtmArgs, GtmProxyArgs};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `pgxc gtm` TOML file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GtmFile {
    id: Option<u64>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    peers: Option<String>,
}

/// A checked GTM replica configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GtmConfig {
    /// Raft node id.
    pub id: u64,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: String,
    /// Initial voters (id → address); empty when joining later through `gtm-ctl add-member`.
    pub peers: BTreeMap<u64, String>,
}

/// Parse `1=host:port,2=host:port`.
///
/// Errors: an entry without `=`, a non-numeric or zero id, a duplicate id, an address without a port.
pub fn parse_peers(s: &str) -> Result<BTreeMap<u64, String>> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("bad peer entry {part:?}: expected id=host:port"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| anyhow!("bad peer id {id:?} in {part:?}: expected a number"))?;
        if id == 0 {
            bail!("peer id 0 is reserved: ids start at 1");
        }
        let addr = addr.trim().to_string();
        check_addr(&addr).with_context(|| format!("peer {id}"))?;
        if peers.insert(id, addr).is_some() {
            bail!("peer id {id} listed twice");
        }
    }
    Ok(peers)
}

fn check_addr(addr: &str) -> Result<()> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("address {addr:?} has no :port"))?;
    if host.is_empty() {
        bail!("address {addr:?} has no host");
    }
    port.parse::<u16>()
        .map_err(|_| anyhow!("address {addr:?} has a bad port {port:?}"))?;
    Ok(())
}

/// A component's `--config` TOML file, or the empty configuration without one. Errors: an
/// unreadable file; a malformed one or an unknown key ("bad `what` config FILE", with the line).
pub fn config_file<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
    what: &str,
) -> Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("bad {what} config {}", path.display()))
}

/// Merge the TOML file (if any) and the flags into a checked configuration.
pub fn gtm_config(args: &GtmArgs) -> Result<GtmConfig> {
    let file: GtmFile = config_file(args.config.as_deref(), "GTM")?;
    let id = args
        .id
        .or(file.id)
        .ok_or_else(|| anyhow!("missing --id (the replica's Raft node id)"))?;
    if id == 0 {
        bail!("--id 0 is reserved: ids start at 1");
    }
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .ok_or_else(|| anyhow!("missing --data-dir"))?;
    let peers = match args.peers.as_deref().or(file.peers.as_deref()) {
        Some(p) => parse_peers(p)?,
        None => BTreeMap::new(),
    };
    let listen = match args.listen.clone().or(file.listen) {
        Some(l) => l,
        None => peers
            .get(&id)
            .cloned()
            .ok_or_else(|| anyhow!("missing --listen (and node {id} is not in --peers)"))?,
    };
    check_addr(&listen).context("--listen")?;
    if !peers.is_empty() {
        match peers.get(&id) {
            None => bail!(
                "node {id} is not in --peers ({}): list every initial voter, this one included",
                fmt_peers(&peers)
            ),
            Some(a) if a != &listen => {
                bail!("--peers gives node {id} the address {a} but it listens on {listen}")
            }
            _ => {}
        }
    }
    Ok(GtmConfig {
        id,
        data_dir,
        listen,
        peers,
    })
}

fn fmt_peers(p: &BTreeMap<u64, String>) -> String {
    p.iter()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Run a GTM replica until killed.
pub async fn run_gtm(args: GtmArgs) -> Result<()> {
    let cfg = gtm_config(&args)?;
    crate::serve::gtm(cfg).await
}

/// Run a GTM proxy until killed.
pub async fn run_proxy(args: GtmProxyArgs) -> Result<()> {
    check_addr(&args.listen).context("--listen")?;
    for a in &args.gtm {
        check_addr(a).context("--gtm")?;
    }
    crate::serve::proxy(args.listen, args.gtm).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_errors() {
        let p = parse_peers("1=127.0.0.1:1,2=h:2, 3=h:3").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[&2], "h:2");
        assert!(parse_peers("1=h:1,1=h:2")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(parse_peers("x=h:1")
            .unwrap_err()
            .to_string()
            .contains("bad peer id"));
        assert!(parse_peers("1=h").is_err());
        assert!(parse_peers("0=h:1").is_err());
        assert!(parse_peers("1h:1")
            .unwrap_err()
            .to_string()
            .contains("expected id=host:port"));
    }

    #[test]
    fn config_checks() {
        let args = GtmArgs {
            id: Some(2),
            data_dir: Some("/tmp/x".into()),
            peers: Some("1=127.0.0.1:7001,2=127.0.0.1:7002".into()),
            ..Default::default()
        };
        let c = gtm_config(&args).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7002");
        let bad = GtmArgs {
            id: Some(3),
            ..args
        };
        assert!(gtm_config(&bad)
            .unwrap_err()
            .to_string()
            .contains("not in --peers"));
        let none = GtmArgs::default();
        assert!(gtm_config(&none).unwrap_err().to_string().contains("--id"));
    }
}
