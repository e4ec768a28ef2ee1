//! `pgxc ctl` verbs over a configured cluster, driven as a user would: a TOML configuration, `init`,
//! `start`, `status`, psql through both coordinators, `stop -m fast`, `status` says stopped, `start` again
//! keeps the data, `add datanode` / `remove datanode`, and the errors for a missing data directory, a bad
//! configuration and a port in use.
//!
//! Ports 25600..25660 on 127.0.0.1 (this helper's range); data under the system temp directory. psql is
//! required (Debian's postgresql-client).

use pgxc_tests::{pgxc_bin, tail, unique_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A configured cluster in a temp directory; dropping it kills whatever is still running
/// (`pgxc ctl kill all`) and removes the directory (kept, with logs printed, on failure).
struct Ctl {
    dir: PathBuf,
    cfg: PathBuf,
}

impl Ctl {
    fn new(tag: &str, config: &str) -> Ctl {
        let dir = unique_dir(tag);
        let cfg = dir.join("cluster.toml");
        std::fs::write(&cfg, config).expect("write config");
        Ctl { dir, cfg }
    }

    fn cfg(&self) -> PathBuf {
        self.cfg.clone()
    }

    /// `pgxc ctl -c cluster.toml <args>`: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(pgxc_bin())
            .arg("ctl")
            .arg("-c")
            .arg(self.cfg())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pgxc ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run and require success.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code,
            0,
            "pgxc ctl {args:?} failed:\n{out}\n{err}\n{}",
            self.logs()
        );
        out
    }

    /// `status` as (name, state, pid) per line.
    fn status(&self) -> Vec<(String, String, String)> {
        self.ok(&["status"])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[2].to_string(), f[3].to_string())
            })
            .collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    out += &format!("--- {}\n{}\n", p.display(), tail(&p, 1500));
                }
            }
        }
        out
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        if self.cfg().exists() {
            let _ = self.run(&["kill", "all"]);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn psql(port: u16, sql: &str) -> (i32, String, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("psql is installed (apt-get install postgresql-client)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn psql_ok(port: u16, sql: &str) -> String {
    let (code, out, err) = psql(port, sql);
    assert_eq!(code, 0, "{sql}: {err}");
    out
}

/// A 3-replica GTM, a proxy, 2 datanodes and 2 coordinators from `base` (base..base+2 GTM, base+10 proxy,
/// base+20.. datanodes, base+30.. coordinators' internal endpoints, base+40.. coordinators).
fn config(base: u16) -> String {
    let mut s = String::from("# test cluster\n");
    for i in 0..3 {
        s += &format!(
            "[[gtm]]\nid = {}\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"gtm{}\"\n\n",
            i + 1,
            base + i,
            i + 1
        );
    }
    s += &format!(
        "[[gtm_proxy]]\nname = \"proxy1\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"proxy1\"\n\n",
        base + 10
    );
    for i in 1..=2 {
        s += &format!(
            "[[datanode]]\nname = \"dn{i}\"\nhost = \"127.0.0.1\"\nport = {}\ndata_dir = \"dn{i}\"\n\n",
            base + 19 + i
        );
    }
    for i in 1..=2 {
        s += &format!(
            "[[coordinator]]\nname = \"cn{i}\"\nhost = \"127.0.0.1\"\nport = {}\ninternal_port = {}\ndata_dir = \"cn{i}\"\n\n",
            base + 39 + i,
            base + 29 + i
        );
    }
    s
}

const NAMES: [&str; 8] = ["gtm1", "gtm2", "gtm3", "proxy1", "dn1", "dn2", "cn1", "cn2"];

#[test]
fn init_start_status_psql_stop_restart_add_remove() {
    let base = 25600;
    let ctl = Ctl::new("ctl-verbs", &config(base));
    let (cn1, cn2) = (base + 40, base + 41);

    // start before init: the missing data directory is named, nothing is started.
    let (code, _, err) = ctl.run(&["start"]);
    assert_eq!(code, 1, "{err}");
    let gtm1 = ctl.dir.join("gtm1");
    assert!(
        err.contains(&format!(
            "data directory {} of gtm gtm1 does not exist; run `pgxc ctl -c {} init` first",
            gtm1.display(),
            ctl.cfg().display()
        )),
        "{err}"
    );

    let out = ctl.ok(&["init"]);
    assert_eq!(out.matches("initialised").count(), 8, "{out}");
    for n in NAMES {
        assert!(
            ctl.dir.join(n).join("PGXC_NODE").is_file(),
            "{n} not initialised"
        );
    }
    // init again keeps everything.
    let out = ctl.ok(&["init"]);
    assert_eq!(out.matches("kept").count(), 8, "{out}");

    let out = ctl.ok(&["start"]);
    assert!(
        out.contains(&format!(
            "cn1          psql -h 127.0.0.1 -p {cn1} -U postgres postgres"
        )),
        "{out}"
    );
    let st = ctl.status();
    assert_eq!(st.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), NAMES);
    for (name, state, pid) in &st {
        assert_eq!(state, "running", "{name}");
        assert!(pid.parse::<u32>().is_ok(), "{name} pid {pid}");
    }
    let mon = ctl.ok(&["monitor", "all"]);
    assert_eq!(mon.matches("Running: ").count(), 8, "{mon}");
    assert!(mon.contains("Running: coordinator cn2"), "{mon}");

    psql_ok(
        cn1,
        "CREATE TABLE kv (k int PRIMARY KEY, v text) DISTRIBUTE BY HASH (k)",
    );
    psql_ok(
        cn1,
        "INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 50) g",
    );
    let before = psql_ok(cn2, "SELECT count(*), sum(k), max(v) FROM kv");
    assert_eq!(before.trim(), "50|1275|v9");

    let out = ctl.ok(&["stop", "-m", "fast"]);
    // Coordinators stop first, GTM replicas last.
    let order: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        order,
        ["cn2", "cn1", "dn2", "dn1", "proxy1", "gtm3", "gtm2", "gtm1"],
        "{out}"
    );
    for (name, state, pid) in ctl.status() {
        assert_eq!((state.as_str(), pid.as_str()), ("stopped", "-"), "{name}");
    }
    let (code, mon, err) = ctl.run(&["monitor", "all"]);
    assert_eq!(code, 1);
    assert_eq!(mon.matches("Not running: ").count(), 8, "{mon}");
    assert!(err.contains("8 component(s) not running"), "{err}");
    let (code, _, _) = psql(cn1, "SELECT 1");
    assert_ne!(code, 0, "cn1 still answers after stop");

    // Start again: the data is kept.
    ctl.ok(&["start", "all"]);
    assert_eq!(
        psql_ok(cn1, "SELECT count(*), sum(k), max(v) FROM kv").trim(),
        "50|1275|v9"
    );
    assert_eq!(psql_ok(cn2, "SELECT v FROM kv WHERE k = 7").trim(), "v7");

    // One component: kill, status, start it alone.
    ctl.ok(&["kill", "dn2"]);
    let st = ctl.status();
    assert_eq!(st[5], ("dn2".into(), "stopped".into(), "-".into()));
    assert_eq!(st[4].1, "running");
    ctl.ok(&["start", "dn2"]);
    assert_eq!(psql_ok(cn2, "SELECT count(*) FROM kv").trim(), "50");

    // add datanode: configured, initialised, started, and registered with CREATE NODE on both
    // coordinators; new tables are then distributed over it too.
    let out = ctl.ok(&["add", "datanode", "dn3", "--port", &(base + 22).to_string()]);
    for cn in ["cn1", "cn2"] {
        assert!(out.contains(&format!("{cn:<12} CREATE NODE\n")), "{out}");
    }
    let text = std::fs::read_to_string(ctl.cfg()).expect("config");
    assert!(
        text.starts_with("# test cluster\n"),
        "comments kept:\n{text}"
    );
    assert!(text.contains("name = \"dn3\""), "{text}");
    let st = ctl.status();
    assert_eq!(st.len(), 9);
    assert_eq!((st[6].0.as_str(), st[6].1.as_str()), ("dn3", "running"));

    psql_ok(cn1, "CREATE TABLE t3 (k int PRIMARY KEY)");
    psql_ok(cn1, "INSERT INTO t3 SELECT generate_series(1, 30)");
    assert_eq!(
        psql_ok(
            cn2,
            "SELECT nodes FROM pgxc.pgxc_class WHERE pcrelname = 'public.t3'"
        )
        .trim(),
        "dn1,dn2,dn3"
    );
    let on_dn3: u32 = psql_ok(cn1, "EXECUTE DIRECT ON (dn3) 'SELECT count(*) FROM t3'")
        .trim()
        .parse()
        .expect("count");
    assert!((1..30).contains(&on_dn3), "{on_dn3} of 30 rows on dn3");

    // remove while a table uses it: refused by the first coordinator, nothing changed.
    let (code, out, err) = ctl.run(&["remove", "datanode", "dn3", "--clean"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("(SQLSTATE 2BP01)"), "{out}");
    assert!(
        err.contains("datanode dn3 was not removed: coordinator cn1 refused `DROP NODE dn3`"),
        "{err}"
    );
    assert_eq!(ctl.status()[6].1, "running");
    assert!(std::fs::read_to_string(ctl.cfg())
        .expect("config")
        .contains("name = \"dn3\""));
    assert_eq!(psql_ok(cn2, "SELECT count(*) FROM t3").trim(), "30");

    // Once nothing uses it: DROP NODE everywhere, stopped, out of the configuration, directory deleted.
    psql_ok(cn1, "DROP TABLE t3");
    let out = ctl.ok(&["remove", "datanode", "dn3", "--clean"]);
    for line in [
        "cn1          DROP NODE",
        "cn2          DROP NODE",
        "dn3          stopped (Fast)",
    ] {
        assert!(out.contains(line), "{out}");
    }
    assert!(out.contains("removed datanode dn3"), "{out}");
    assert!(!ctl.dir.join("dn3").exists());
    assert!(!std::fs::read_to_string(ctl.cfg())
        .expect("config")
        .contains("dn3"));
    let st = ctl.status();
    assert_eq!(st.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), NAMES);
    // add coordinator: started with every datanode and peer, registered on cn1 and cn2, and (the
    // coordinator's own start-up) a copy of the catalog: the existing table reads through it.
    let cn3 = base + 42;
    let out = ctl.ok(&[
        "add",
        "coordinator",
        "cn3",
        "--port",
        &cn3.to_string(),
        "--internal-port",
        &(base + 32).to_string(),
    ]);
    assert!(
        out.contains(&format!("cn3          psql -h 127.0.0.1 -p {cn3} ")),
        "{out}"
    );
    assert!(
        out.contains("cn1          CREATE NODE\ncn2          CREATE NODE\n"),
        "{out}"
    );
    assert_eq!(
        psql_ok(cn3, "SELECT count(*), sum(k) FROM kv").trim(),
        "50|1275"
    );
    let out = ctl.ok(&["remove", "coordinator", "cn3", "--clean"]);
    assert!(out.contains("cn3          stopped (Fast)"), "{out}");
    let st = ctl.status();
    assert_eq!(st.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), NAMES);
    let (code, _, err) = ctl.run(&["remove", "coordinator", "cn9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no coordinator named \"cn9\""), "{err}");

    // Nothing was lost, then a smart stop.
    assert_eq!(
        psql_ok(cn1, "SELECT count(*), sum(k) FROM kv").trim(),
        "50|1275"
    );
    ctl.ok(&["stop", "-m", "smart", "all"]);
    assert!(ctl.status().iter().all(|s| s.1 == "stopped"));
}

fn err_of(ctl: &Ctl, args: &[&str]) -> String {
    let (code, out, err) = ctl.run(args);
    assert_eq!(code, 1, "expected a failure:\n{out}\n{err}");
    err
}

#[test]
fn bad_configurations_name_line_and_field() {
    let ctl = Ctl::new("ctl-bad", "");
    let cfg = ctl.cfg();
    let at = |e: &str| format!("pgxc: error: {}: {e}", cfg.display());
    let good = config(25700);

    // A mistyped field: toml's message with line and column, prefixed with the file.
    std::fs::write(&cfg, good.replace("port = 25720", "port = \"25720\"")).expect("write");
    let e = err_of(&ctl, &["status"]);
    assert!(
        e.starts_with(&at("TOML parse error at line 29, column 8")),
        "{e}"
    );
    assert!(
        e.contains("invalid type: string \"25720\", expected u16"),
        "{e}"
    );

    // Syntax.
    std::fs::write(&cfg, good.replace("[[datanode]]", "[[datanode]")).expect("write");
    let e = err_of(&ctl, &["status"]);
    assert!(e.starts_with(&at("TOML parse error at line 26")), "{e}");

    // An unknown field.
    std::fs::write(&cfg, good.replace("name = \"dn2\"", "nmae = \"dn2\"")).expect("write");
    let e = err_of(&ctl, &["status"]);
    assert!(
        e.contains("unknown field `nmae`") && e.contains("line 33"),
        "{e}"
    );

    // A duplicate port, a duplicate name, a coordinator without its internal port.
    std::fs::write(&cfg, good.replace("port = 25721", "port = 25702")).expect("write");
    assert_eq!(
        err_of(&ctl, &["status"]).trim_end(),
        at("line 35: datanode dn2: port 25702 is already used by gtm gtm3")
    );
    std::fs::write(&cfg, good.replace("name = \"cn2\"", "name = \"dn1\"")).expect("write");
    assert_eq!(
        err_of(&ctl, &["status"]).trim_end(),
        at("line 46: duplicate name \"dn1\" (datanode dn1 and coordinator dn1)")
    );
    std::fs::write(&cfg, good.replace("internal_port = 25731\n", "")).expect("write");
    assert_eq!(
        err_of(&ctl, &["status"]).trim_end(),
        at("line 46: coordinator cn2 needs internal_port (the endpoint other coordinators use)")
    );

    // Remote hosts and standbys: accepted shapes, not supported yet.
    std::fs::write(
        &cfg,
        good.replacen(
            "host = \"127.0.0.1\"\nport = 25720",
            "host = \"db2.example\"\nport = 25720",
            1,
        ),
    )
    .expect("write");
    let e = err_of(&ctl, &["start"]);
    assert!(
        e.starts_with(&at("line 28: datanode dn1: host \"db2.example\" is a remote host; remote hosts are not supported yet")),
        "{e}"
    );
    std::fs::write(
        &cfg,
        good.replace(
            "data_dir = \"dn2\"\n",
            "data_dir = \"dn2\"\nstandby = { host = \"127.0.0.1\", port = 25790, data_dir = \"dn2s\" }\n",
        ),
    )
    .expect("write");
    let e = err_of(&ctl, &["init"]);
    assert!(
        e.starts_with(&at("line 37: datanode dn2: standby is not supported yet")),
        "{e}"
    );
    assert!(
        !ctl.dir.join("dn1").exists(),
        "init created directories from a bad configuration"
    );

    // No coordinator at all, and a missing file.
    let only: String = good
        .split("[[coordinator]]")
        .next()
        .unwrap_or("")
        .to_string();
    std::fs::write(&cfg, only).expect("write");
    let e = err_of(&ctl, &["status"]);
    assert!(e.contains("names no coordinator ([[coordinator]])"), "{e}");
    std::fs::remove_file(&cfg).expect("rm");
    let e = err_of(&ctl, &["status"]);
    assert!(
        e.contains(&format!(
            "cannot read the cluster configuration {}",
            cfg.display()
        )),
        "{e}"
    );
}

#[test]
fn port_in_use_is_reported_before_anything_starts() {
    let base = 25800;
    let ctl = Ctl::new("ctl-port", &config(base));
    ctl.ok(&["init"]);
    // Someone else holds datanode dn2's port.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", base + 21)).expect("bind");
    let e = err_of(&ctl, &["start"]);
    assert!(
        e.contains(&format!(
            "port {} on 127.0.0.1 (needed by datanode dn2) is in use",
            base + 21
        )),
        "{e}"
    );
    // The check runs before any process is spawned.
    assert!(
        ctl.status().iter().all(|s| s.1 == "stopped"),
        "something started"
    );
    assert!(!Path::new(&ctl.dir.join("gtm1.log")).exists());
    // `ctl up -c` reports it the same way.
    let e = err_of(&ctl, &["up"]);
    assert!(e.contains("(needed by datanode dn2) is in use"), "{e}");
}

/// `pgxc ctl up` (no configuration) as a child with its output in `log`; dropping it terminates it
/// (SIGTERM, as Ctrl-C; it stops its components), so a failing test leaves nothing running.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            terminate(&mut self.0);
        }
    }
}

fn up_child(data: &Path, base: u16, log: &Path) -> Up {
    let log = std::fs::File::create(log).expect("log");
    Up(Command::new(pgxc_bin())
        .args(["ctl", "up", "--data"])
        .arg(data)
        .args(["--base-port", &base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("clone")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn pgxc ctl up"))
}

fn wait_for(log: &Path, child: &mut std::process::Child, text: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = std::fs::read_to_string(log).unwrap_or_default();
        if out.contains(text) {
            return out;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("pgxc ctl up exited ({st}) before {text:?}:\n{out}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in 120 s:\n{out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().expect("wait for pgxc ctl up")
}

#[test]
fn up_default_cluster_is_visible_to_status_and_keeps_data() {
    let base = 25850;
    // The configuration `up` writes is what the other verbs read; the guard kills leftovers through it.
    let dir = unique_dir("ctl-up");
    let data = dir.join("pgxc-data");
    let ctl = Ctl {
        cfg: data.join("pgxc-ctl.toml"),
        dir,
    };
    let log = ctl.dir.join("up.log");
    let mut up = up_child(&data, base, &log);
    let out = wait_for(&log, &mut up.0, "Press Ctrl-C");
    assert!(
        out.starts_with("initialising the default local cluster"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Status:     pgxc ctl -c {} status",
            ctl.cfg().display()
        )),
        "{out}"
    );
    let st = ctl.status();
    let names: Vec<&str> = st.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "gtm1",
            "gtm2",
            "gtm3",
            "gtm-proxy",
            "dn1",
            "dn2",
            "cn1",
            "cn2"
        ]
    );
    assert!(st.iter().all(|s| s.1 == "running"), "{st:?}");
    let cn1 = base + 100;
    psql_ok(cn1, "CREATE TABLE kept (k int PRIMARY KEY)");
    psql_ok(cn1, "INSERT INTO kept SELECT generate_series(1, 10)");

    // A second `up` on the same data refuses: the components are running.
    let (code, _, err) = ctl.run(&["up"]);
    assert_eq!(code, 1);
    assert!(err.contains("gtm gtm1 is already running (pid "), "{err}");

    assert!(terminate(&mut up.0).success());
    let out = std::fs::read_to_string(&log).expect("log");
    assert!(
        out.contains(&format!("stopped; data kept in {}", data.display())),
        "{out}"
    );
    assert!(ctl.status().iter().all(|s| s.1 == "stopped"));

    // Again: the data is kept.
    let mut up = up_child(&data, base, &log);
    let out = wait_for(&log, &mut up.0, "Press Ctrl-C");
    assert!(
        out.starts_with("starting the default local cluster"),
        "{out}"
    );
    assert_eq!(
        psql_ok(base + 101, "SELECT count(*), sum(k) FROM kept").trim(),
        "10|55"
    );
    assert!(terminate(&mut up.0).success());
}
