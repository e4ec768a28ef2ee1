//! `pgxc ctl`'s cluster configuration: a TOML file naming GTM replicas, GTM proxies, coordinators and
//! datanodes (XC's `pgxc_ctl.conf`, in TOML), and the resolved [`Plan`] every verb works from.
//!
//! ```toml
//! [[gtm]]            # a GTM replica (a voter of the openraft group); name gtm<id>
//! id = 1
//! host = "127.0.0.1"
//! port = 6666
//! data_dir = "gtm1"  # relative paths are relative to the config file's directory
//!
//! [[gtm_proxy]]
//! name = "proxy1"
//! host = "127.0.0.1"
//! port = 6676
//! data_dir = "proxy1" # holds its pid file only
//!
//! [[datanode]]
//! name = "dn1"
//! host = "127.0.0.1"
//! port = 6686
//! data_dir = "dn1"
//!
//! [[coordinator]]
//! name = "cn1"
//! host = "127.0.0.1"
//! port = 6766          # PostgreSQL clients
//! internal_port = 6696 # other coordinators (catalog changes)
//! data_dir = "cn1"
//! ```
//!
//! Every entry may carry a `standby = { host, port, data_dir }` table (XC's slaves); the shape is accepted
//! and refused with "not supported yet", as are hosts other than loopback (`localhost`, `127.x.x.x`, `::1`,
//! `0.0.0.0`): `pgxc ctl` starts local processes only for now. A component's log is `<name>.log` beside its
//! data directory, its pid file `pgxc.pid` inside it.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The file `pgxc ctl` verbs read when `-c` is not given.
pub const DEFAULT_CONFIG: &str = "pgxc-ctl.toml";

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    gtm: Vec<GtmEntry>,
    #[serde(default)]
    gtm_proxy: Vec<NodeEntry>,
    #[serde(default)]
    datanode: Vec<NodeEntry>,
    #[serde(default)]
    coordinator: Vec<NodeEntry>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct GtmEntry {
    id: Spanned<u64>,
    host: Spanned<String>,
    port: Spanned<u16>,
    data_dir: Spanned<PathBuf>,
    standby: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: Spanned<String>,
    host: Spanned<String>,
    port: Spanned<u16>,
    internal_port: Option<Spanned<u16>>,
    data_dir: Spanned<PathBuf>,
    standby: Option<Spanned<toml::Value>>,
}

/// What a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A GTM replica (`pgxc gtm`).
    Gtm,
    /// A GTM proxy (`pgxc gtm-proxy`).
    GtmProxy,
    /// A datanode (`pgxc datanode`).
    Datanode,
    /// A coordinator (`pgxc coordinator`).
    Coordinator,
}

impl Kind {
    /// XC's word for the kind, as `pgxc ctl` prints it and accepts it as a target (`gtm`, `gtm_proxy`,
    /// `datanode`, `coordinator`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Gtm => "gtm",
            Kind::GtmProxy => "gtm_proxy",
            Kind::Datanode => "datanode",
            Kind::Coordinator => "coordinator",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Gtm => "gtm",
            Kind::GtmProxy => "gtm_proxy",
            Kind::Datanode => "datanode",
            Kind::Coordinator => "coordinator",
        }
    }
}

/// One component of the cluster, resolved: absolute data directory, its ports.
#[derive(Clone, Debug)]
pub struct Component {
    /// Its kind.
    pub kind: Kind,
    /// Unique name (`gtm<id>` for GTM replicas).
    pub name: String,
    /// GTM replica id (Raft node id, >= 1); `None` for other kinds.
    pub gtm_id: Option<u64>,
    /// Host it listens on (loopback).
    pub host: String,
    /// Its main port: GTM clients, proxy clients, coordinators (datanode), PostgreSQL clients (coordinator).
    pub port: u16,
    /// A coordinator's internal endpoint port (other coordinators' catalog changes).
    pub internal_port: Option<u16>,
    /// Data directory (absolute or as given relative to the working directory).
    pub data_dir: PathBuf,
}

impl Component {
    /// `host:port` of the main endpoint.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `host:internal_port` for a coordinator.
    pub fn internal_addr(&self) -> Option<String> {
        self.internal_port.map(|p| format!("{}:{p}", self.host))
    }

    /// Every port it binds.
    pub fn ports(&self) -> Vec<u16> {
        let mut v = vec![self.port];
        v.extend(self.internal_port);
        v
    }

    /// Its log file: `<name>.log` beside the data directory.
    pub fn log(&self) -> PathBuf {
        self.data_dir
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(format!("{}.log", self.name))
    }

    /// Its pid file: `pgxc.pid` in the data directory.
    pub fn pid_file(&self) -> PathBuf {
        self.data_dir.join("pgxc.pid")
    }

    /// A short description: `coordinator cn1`.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind.word(), self.name)
    }
}

/// A whole cluster: components in start order (GTM replicas, proxies, datanodes, coordinators).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The components, in start order.
    pub components: Vec<Component>,
    /// The file it was read from (`None` for the built-in default cluster).
    pub file: Option<PathBuf>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Whether `pgxc ctl` can start a process listening on `host` (loopback or every local address).
pub fn is_local_host(host: &str) -> bool {
    host == "localhost" || host == "::1" || host == "0.0.0.0" || host.starts_with("127.")
}

impl Plan {
    /// Read and check a configuration file.
    ///
    /// Errors (each naming the file and, where it has one, the line and field): the file cannot be read,
    /// TOML syntax or an unknown/mistyped field (toml's message, with line and column), no GTM replica /
    /// datanode / coordinator, a duplicate name, GTM id, port or data directory, port 0, a coordinator
    /// without `internal_port` (or another kind with one), a remote host or a standby ("not supported yet").
    pub fn load(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the cluster configuration {} (write one, or run `pgxc ctl init -c {}` to write the default cluster's)",
                path.display(),
                path.display()
            )
        })?;
        // Absolute data directories: components and pid-file checks do not depend on the working directory.
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = parent
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", parent.display()))?;
        Plan::parse(&text, &base)
            .map_err(|e| anyhow!("{}: {e:#}", path.display()))
            .map(|mut p| {
                p.file = Some(path.to_path_buf());
                p
            })
    }

    /// Parse configuration text; relative data directories are resolved against `base`. Errors as
    /// [`Plan::load`], without the file name.
    pub fn parse(text: &str, base: &Path) -> Result<Plan> {
        let cfg: FileConfig =
            toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut components = Vec::new();
        for g in &cfg.gtm {
            if *g.id.get_ref() == 0 {
                bail!("{}: gtm id must be >= 1", at(g.id.span()));
            }
            components.push((
                Component {
                    kind: Kind::Gtm,
                    name: format!("gtm{}", g.id.get_ref()),
                    gtm_id: Some(*g.id.get_ref()),
                    host: g.host.get_ref().clone(),
                    port: *g.port.get_ref(),
                    internal_port: None,
                    data_dir: resolve(g.data_dir.get_ref()),
                },
                (g.host.span(), g.port.span(), g.data_dir.span(), g.id.span()),
                g.standby.as_ref().map(|s| s.span()),
            ));
        }
        for (kind, list) in [
            (Kind::GtmProxy, &cfg.gtm_proxy),
            (Kind::Datanode, &cfg.datanode),
            (Kind::Coordinator, &cfg.coordinator),
        ] {
            for n in list {
                let name = n.name.get_ref();
                let dash_ok = kind == Kind::GtmProxy;
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash_ok && c == '-'))
                {
                    bail!(
                        "{}: {} name {name:?} must be letters, digits and _ only",
                        at(n.name.span()),
                        kind.word()
                    );
                }
                match (&n.internal_port, kind) {
                    (None, Kind::Coordinator) => bail!(
                        "{}: coordinator {name} needs internal_port (the endpoint other coordinators use)",
                        at(n.name.span())
                    ),
                    (Some(p), Kind::GtmProxy | Kind::Datanode) => bail!(
                        "{}: internal_port is for coordinators only ({} {name})",
                        at(p.span()),
                        kind.word()
                    ),
                    _ => {}
                }
                components.push((
                    Component {
                        kind,
                        name: name.clone(),
                        gtm_id: None,
                        host: n.host.get_ref().clone(),
                        port: *n.port.get_ref(),
                        internal_port: n.internal_port.as_ref().map(|p| *p.get_ref()),
                        data_dir: resolve(n.data_dir.get_ref()),
                    },
                    (
                        n.host.span(),
                        n.port.span(),
                        n.data_dir.span(),
                        n.name.span(),
                    ),
                    n.standby.as_ref().map(|s| s.span()),
                ));
            }
        }
        for (what, kind) in [
            ("GTM replica ([[gtm]])", Kind::Gtm),
            ("datanode ([[datanode]])", Kind::Datanode),
            ("coordinator ([[coordinator]])", Kind::Coordinator),
        ] {
            if !components.iter().any(|(c, _, _)| c.kind == kind) {
                bail!("the configuration names no {what}; a cluster needs at least one");
            }
        }
        for (i, (c, (host, port, dir, name), standby)) in components.iter().enumerate() {
            if let Some(s) = standby {
                bail!(
                    "{}: {}: standby is not supported yet (GTM replicas are already a Raft group; coordinator and datanode standbys are future work)",
                    at(s.clone()),
                    c.label()
                );
            }
            if !is_local_host(&c.host) {
                bail!(
                    "{}: {}: host {:?} is a remote host; remote hosts are not supported yet (pgxc ctl starts local processes only: use 127.0.0.1)",
                    at(host.clone()),
                    c.label(),
                    c.host
                );
            }
            for p in c.ports() {
                if p == 0 {
                    bail!("{}: {}: port 0 is not allowed", at(port.clone()), c.label());
                }
            }
            for (o, _, _) in &components[..i] {
                if o.name == c.name {
                    bail!(
                        "{}: duplicate name {:?} ({} and {})",
                        at(name.clone()),
                        c.name,
                        o.label(),
                        c.label()
                    );
                }
                if let Some(p) = c.ports().iter().find(|p| o.ports().contains(p)) {
                    bail!(
                        "{}: {}: port {p} is already used by {}",
                        at(port.clone()),
                        c.label(),
                        o.label()
                    );
                }
                if o.data_dir == c.data_dir {
                    bail!(
                        "{}: {}: data_dir {} is already used by {}",
                        at(dir.clone()),
                        c.label(),
                        c.data_dir.display(),
                        o.label()
                    );
                }
            }
        }
        Ok(Plan {
            components: components.into_iter().map(|(c, _, _)| c).collect(),
            file: None,
        })
    }

    /// The built-in default cluster of `pgxc ctl up`: 3 GTM replicas on base..base+2, a GTM proxy on
    /// base+10, datanodes dn1.. on base+20.., coordinators cn1.. with internal endpoints on base+30.. and
    /// client ports base+100.., data directories `<data>/<name>`.
    ///
    /// Errors: counts outside 1..=9, or a base port leaving no room for base+110.
    pub fn default_cluster(
        data: &Path,
        host: &str,
        base: u16,
        datanodes: u16,
        coordinators: u16,
    ) -> Result<Plan> {
        if !(1..=9).contains(&datanodes) || !(1..=9).contains(&coordinators) {
            bail!("--datanodes and --coordinators must be between 1 and 9");
        }
        if base == 0 || base > u16::MAX - 110 {
            bail!("--base-port {base} leaves no room for the coordinators' ports (base+100..)");
        }
        let mut components = Vec::new();
        let c = |kind, name: String, port, internal_port, gtm_id| Component {
            kind,
            data_dir: data.join(&name),
            name,
            gtm_id,
            host: host.to_string(),
            port,
            internal_port,
        };
        for i in 0..3u16 {
            components.push(c(
                Kind::Gtm,
                format!("gtm{}", i + 1),
                base + i,
                None,
                Some(u64::from(i) + 1),
            ));
        }
        components.push(c(Kind::GtmProxy, "gtm-proxy".into(), base + 10, None, None));
        for i in 1..=datanodes {
            components.push(c(
                Kind::Datanode,
                format!("dn{i}"),
                base + 19 + i,
                None,
                None,
            ));
        }
        for i in 1..=coordinators {
            components.push(c(
                Kind::Coordinator,
                format!("cn{i}"),
                base + 99 + i,
                Some(base + 29 + i),
                None,
            ));
        }
        Ok(Plan {
            components,
            file: None,
        })
    }

    /// The plan as configuration text (relative data directories when they lie under `base`), with a
    /// header comment.
    pub fn to_toml(&self, base: &Path, header: &str) -> String {
        let mut out = String::new();
        for l in header.lines() {
            out.push_str(&format!("# {l}\n"));
        }
        for c in &self.components {
            out.push('\n');
            out.push_str(&entry_toml(c, base));
        }
        out
    }

    /// Addresses of the GTM replicas, in id order.
    pub fn gtm_addrs(&self) -> Vec<String> {
        self.of(Kind::Gtm).map(Component::addr).collect()
    }

    /// Components of one kind, in configuration order.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(move |c| c.kind == kind)
    }

    /// The component named `name`.
    pub fn get(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Select components by XC's targets: `all`, a kind (`gtm`, `gtm_proxy`, `datanode`, `coordinator`) or
    /// a component name. Errors: an unknown target (the message lists the names).
    pub fn select(&self, target: &str) -> Result<Vec<&Component>> {
        let sel: Vec<&Component> = match target {
            "all" => self.components.iter().collect(),
            t => match [Kind::Gtm, Kind::GtmProxy, Kind::Datanode, Kind::Coordinator]
                .into_iter()
                .find(|k| k.word() == t || (*k == Kind::GtmProxy && t == "gtm-proxy"))
            {
                Some(k) => self.of(k).collect(),
                None => self.get(t).into_iter().collect(),
            },
        };
        if sel.is_empty() {
            let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
            bail!(
                "no component {target:?} in the configuration (targets: all, gtm, gtm_proxy, datanode, coordinator, {})",
                names.join(", ")
            );
        }
        Ok(sel)
    }

    /// The command-line arguments of `pgxc` that run component `c` of this cluster: GTM replicas get every
    /// replica as `--peers`; datanodes reach the GTM through the first proxy (the replicas when there is
    /// none); coordinators reach the GTM replicas directly and get every datanode and the other
    /// coordinators' internal endpoints.
    pub fn args(&self, c: &Component) -> Vec<String> {
        let dir = c.data_dir.display().to_string();
        let gtm = self.gtm_addrs().join(",");
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        match c.kind {
            Kind::Gtm => {
                let peers = self
                    .of(Kind::Gtm)
                    .map(|g| format!("{}={}", g.gtm_id.unwrap_or(0), g.addr()))
                    .collect::<Vec<_>>()
                    .join(",");
                let id = c.gtm_id.unwrap_or(0).to_string();
                s(&[
                    "gtm",
                    "--id",
                    &id,
                    "--data-dir",
                    &dir,
                    "--listen",
                    &c.addr(),
                    "--peers",
                    &peers,
                ])
            }
            Kind::GtmProxy => s(&["gtm-proxy", "--listen", &c.addr(), "--gtm", &gtm]),
            Kind::Datanode => {
                let via = self
                    .of(Kind::GtmProxy)
                    .next()
                    .map(Component::addr)
                    .unwrap_or(gtm);
                s(&[
                    "datanode",
                    "--name",
                    &c.name,
                    "-D",
                    &dir,
                    "--listen",
                    &c.addr(),
                    "--gtm",
                    &via,
                ])
            }
            Kind::Coordinator => {
                let internal = c.internal_addr().unwrap_or_default();
                let mut a = s(&[
                    "coordinator",
                    "--name",
                    &c.name,
                    "-D",
                    &dir,
                    "--listen",
                    &c.addr(),
                    "--internal",
                    &internal,
                    "--gtm",
                    &gtm,
                ]);
                for d in self.of(Kind::Datanode) {
                    a.push("--datanode".into());
                    a.push(format!("{}={}", d.name, d.addr()));
                }
                for p in self.of(Kind::Coordinator).filter(|p| p.name != c.name) {
                    a.push("--peer".into());
                    a.push(format!(
                        "{}={}",
                        p.name,
                        p.internal_addr().unwrap_or_default()
                    ));
                }
                a
            }
        }
    }
}

/// One `[[kind]]` table for `c`, its data directory relative to `base` when it lies under it.
pub fn entry_toml(c: &Component, base: &Path) -> String {
    let dir = c.data_dir.strip_prefix(base).unwrap_or(&c.data_dir);
    let dir = toml::Value::String(dir.display().to_string());
    let host = toml::Value::String(c.host.clone());
    let mut out = format!("[[{}]]\n", c.kind.table());
    match c.gtm_id {
        Some(id) => out.push_str(&format!("id = {id}\n")),
        None => out.push_str(&format!("name = {}\n", toml::Value::String(c.name.clone()))),
    }
    out.push_str(&format!("host = {host}\nport = {}\n", c.port));
    if let Some(p) = c.internal_port {
        out.push_str(&format!("internal_port = {p}\n"));
    }
    out.push_str(&format!("data_dir = {dir}\n"));
    out
}

/// Remove the `[[kind]]` table whose `name` is `name` from configuration text (comments elsewhere kept).
/// Errors: no such table.
pub fn remove_entry(text: &str, kind: Kind, name: &str) -> Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = format!("[[{}]]", kind.table());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == header {
            let mut end = i + 1;
            while end < lines.len() && !lines[end].trim_start().starts_with('[') {
                end += 1;
            }
            let block: String = lines[i..end].concat();
            let parsed: Option<toml::Value> = toml::from_str(&block).ok();
            let this = parsed
                .as_ref()
                .and_then(|v| v.get(kind.table()))
                .and_then(|v| v.as_array())
                .and_then(|a| a.first())
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                == Some(name);
            if this {
                return Ok(lines[..i].concat() + &lines[end..].concat());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    bail!(
        "no [[{}]] named {name:?} in the configuration",
        kind.table()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[gtm]]
id = 1
host = "127.0.0.1"
port = 25001
data_dir = "gtm1"

[[datanode]]
name = "dn1"
host = "127.0.0.1"
port = 25020
data_dir = "dn1"

[[coordinator]]
name = "cn1"
host = "localhost"
port = 25100
internal_port = 25030
data_dir = "/abs/cn1"
"#;

    #[test]
    fn parses_and_resolves_paths() {
        let p = Plan::parse(GOOD, Path::new("/base")).expect("good config");
        let names: Vec<&str> = p.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gtm1", "dn1", "cn1"]);
        assert_eq!(
            p.get("dn1").map(|c| c.data_dir.clone()),
            Some(PathBuf::from("/base/dn1"))
        );
        assert_eq!(
            p.get("cn1").map(|c| c.data_dir.clone()),
            Some(PathBuf::from("/abs/cn1"))
        );
        assert_eq!(
            p.get("dn1").map(|c| c.log()),
            Some(PathBuf::from("/base/dn1.log"))
        );
        let cn = p.get("cn1").expect("cn1");
        assert_eq!(
            p.args(cn),
            [
                "coordinator",
                "--name",
                "cn1",
                "-D",
                "/abs/cn1",
                "--listen",
                "localhost:25100",
                "--internal",
                "localhost:25030",
                "--gtm",
                "127.0.0.1:25001",
                "--datanode",
                "dn1=127.0.0.1:25020"
            ]
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad = GOOD.replace("port = 25020", "port = \"x\"");
        let e = Plan::parse(&bad, Path::new("/b"))
            .expect_err("bad type")
            .to_string();
        assert!(e.contains("line 11") && e.contains("invalid type"), "{e}");
        let dup = GOOD.replace("port = 25020", "port = 25001");
        let e = Plan::parse(&dup, Path::new("/b"))
            .expect_err("dup")
            .to_string();
        assert_eq!(
            e,
            "line 11: datanode dn1: port 25001 is already used by gtm gtm1"
        );
        let remote = GOOD.replace("host = \"localhost\"", "host = \"10.1.2.3\"");
        let e = Plan::parse(&remote, Path::new("/b"))
            .expect_err("remote")
            .to_string();
        assert!(
            e.starts_with("line 16: coordinator cn1: host \"10.1.2.3\" is a remote host"),
            "{e}"
        );
        let unknown = GOOD.replace("data_dir = \"dn1\"", "data_dir = \"dn1\"\nfoo = 1");
        let e = Plan::parse(&unknown, Path::new("/b"))
            .expect_err("unknown")
            .to_string();
        assert!(
            e.contains("unknown field `foo`") && e.contains("line 13"),
            "{e}"
        );
        let standby = GOOD.replace(
            "data_dir = \"dn1\"",
            "data_dir = \"dn1\"\nstandby = { host = \"127.0.0.1\", port = 1, data_dir = \"s\" }",
        );
        let e = Plan::parse(&standby, Path::new("/b"))
            .expect_err("standby")
            .to_string();
        assert!(
            e.starts_with("line 13: datanode dn1: standby is not supported yet"),
            "{e}"
        );
    }

    #[test]
    fn default_round_trips_and_entries_remove() {
        let p = Plan::default_cluster(Path::new("/d"), "127.0.0.1", 7000, 2, 2).expect("default");
        let text = p.to_toml(Path::new("/d"), "generated");
        let q = Plan::parse(&text, Path::new("/d")).expect("round trip");
        assert_eq!(q.components.len(), 8);
        assert_eq!(q.get("cn2").and_then(|c| c.internal_port), Some(7031));
        let without = remove_entry(&text, Kind::Datanode, "dn2").expect("remove");
        let r = Plan::parse(&without, Path::new("/d")).expect("still valid");
        assert!(r.get("dn2").is_none() && r.get("dn1").is_some() && r.get("cn2").is_some());
        assert!(remove_entry(&text, Kind::Datanode, "dn9").is_err());
    }
}
