//! The bank test (issue 5's "Done when"): money moves between accounts on different datanodes
//! through both coordinators at once, while readers check that the total never changes.
//!
//! `pgxc ctl up` (3 GTM replicas, a proxy, 2 datanodes, 2 coordinators) on ports 26500–26999.
//! `accounts` is hash-distributed on `id`; every transfer takes one account from each datanode
//! (a two-phase commit over both), locking the lower id first so that transfers cannot deadlock
//! across datanodes. Writers run on both coordinators at READ COMMITTED; readers on both
//! coordinators sum every balance — at REPEATABLE READ in one statement, at REPEATABLE READ in two
//! statements (two halves of the accounts in one transaction), and at READ COMMITTED in one
//! statement — and must always see the constant total: a committed transfer is visible on both
//! datanodes or on neither (no fractured reads). Clients are tokio-postgres on the simple
//! protocol. Serialization failures (class 40) are retried and counted; any other error fails the
//! test. At the end the total is exact through both coordinators and per datanode, and no node
//! holds a prepared transaction. `PGXC_BANK_SECS` sets the load duration (default 15).

use pgxc_tests::{pgxc_bin, tail, unique_dir};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// This file's port range (26500–26999).
const BASE: u16 = 26_500;
/// Accounts and their opening balance.
const ACCOUNTS: i64 = 40;
const OPENING: i64 = 1_000;
const TOTAL: i64 = ACCOUNTS * OPENING;
/// Writers and readers per coordinator.
const WRITERS: usize = 3;

/// `pgxc ctl up` as a child; dropping it stops the cluster (SIGTERM) and removes the directory.
struct Up {
    dir: PathBuf,
    child: Child,
}

impl Up {
    fn start() -> Up {
        for p in [BASE, BASE + 1, BASE + 2, BASE + 10, BASE + 20, BASE + 21]
            .into_iter()
            .chain([BASE + 30, BASE + 31, BASE + 100, BASE + 101])
        {
            assert!(
                std::net::TcpListener::bind(("127.0.0.1", p)).is_ok(),
                "port {p} (this test's range 26500-26999) is in use"
            );
        }
        let dir = unique_dir("bank");
        let log = std::fs::File::create(dir.join("up.log")).expect("log");
        let child = Command::new(pgxc_bin())
            .args(["ctl", "up", "--data"])
            .arg(dir.join("data"))
            .args(["--base-port", &BASE.to_string()])
            .env_remove("PGXC_FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn pgxc ctl up");
        let mut up = Up { dir, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(up.dir.join("up.log")).unwrap_or_default();
            if text.contains("Press Ctrl-C") {
                return up;
            }
            if let Ok(Some(st)) = up.child.try_wait() {
                panic!("pgxc ctl up exited ({st}):\n{text}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cluster not ready in 120 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `pgxc clean` command line `ctl up` prints ("In doubt:"), as arguments after `clean`.
    fn clean_args(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("up.log")).unwrap_or_default();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("In doubt:"))
            .unwrap_or_else(|| panic!("ctl up printed no pgxc clean line:\n{text}"));
        line.split_whitespace()
            .skip_while(|w| *w != "clean")
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for name in [
            "up.log",
            "data/cn1.log",
            "data/cn2.log",
            "data/dn1.log",
            "data/dn2.log",
        ] {
            out += &format!("--- {name}\n{}\n", tail(&self.dir.join(name), 3000));
        }
        out
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn connect(port: u16) -> Client {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let (client, conn) = cfg
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// The first column of every row of a simple query.
async fn column(c: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect())
}

/// One number from a simple query (`None` if the answer is not one integer).
async fn number(c: &Client, sql: &str) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(column(c, sql).await?.first().and_then(|s| s.parse().ok()))
}

fn code_of(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// A small seeded generator (xorshift64*), one per client: runs differ only by scheduling.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[derive(Default, Debug)]
struct Tally {
    committed: u64,
    /// SQLSTATE → count of failed attempts (retried).
    errors: BTreeMap<String, u64>,
    /// Reader checks done, and the wrong totals seen.
    checks: u64,
    wrong: Vec<String>,
}

/// Move money between one account on each datanode until `until`.
async fn writer(
    port: u16,
    seed: u64,
    dn1: Arc<Vec<i64>>,
    dn2: Arc<Vec<i64>>,
    until: Instant,
) -> Tally {
    let c = connect(port).await;
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    while Instant::now() < until {
        let a = dn1[rng.below(dn1.len() as u64) as usize];
        let b = dn2[rng.below(dn2.len() as u64) as usize];
        let amount = 1 + rng.below(100) as i64;
        // Money flows a → b or b → a; the lower id is locked first (no distributed deadlock).
        let (from, to) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
        let mut deltas = [(from, -amount), (to, amount)];
        deltas.sort();
        let mut sqls = vec!["BEGIN".to_string()];
        for (id, d) in deltas {
            sqls.push(format!(
                "UPDATE accounts SET balance = balance + {d} WHERE id = {id}"
            ));
        }
        sqls.push("COMMIT".to_string());
        let mut failed = None;
        for s in &sqls {
            match c.simple_query(s).await {
                Ok(m) => {
                    // An UPDATE must find its account (CommandComplete "UPDATE 1").
                    if s.starts_with("UPDATE")
                        && !m
                            .iter()
                            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(1)))
                    {
                        t.wrong.push(format!("{s}: did not update one row"));
                    }
                }
                Err(e) => {
                    failed = Some(code_of(&e));
                    break;
                }
            }
        }
        match failed {
            None => t.committed += 1,
            Some(code) => {
                let _ = c.simple_query("ROLLBACK").await;
                *t.errors.entry(code).or_default() += 1;
            }
        }
    }
    t
}

/// Sum every balance until `until`, one of three ways (`kind` 0, 1, 2); every answer must be the
/// constant total.
async fn reader(port: u16, kind: u8, until: Instant) -> Tally {
    let c = connect(port).await;
    let mut t = Tally::default();
    let half = ACCOUNTS / 2;
    while Instant::now() < until {
        let r: Result<Option<i64>, tokio_postgres::Error> = async {
            match kind {
                0 => {
                    c.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ")
                        .await?;
                    let s = number(&c, "SELECT sum(balance) FROM accounts").await?;
                    c.simple_query("COMMIT").await?;
                    Ok(s)
                }
                1 => {
                    c.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ")
                        .await?;
                    let lo = number(
                        &c,
                        &format!("SELECT sum(balance) FROM accounts WHERE id <= {half}"),
                    )
                    .await?;
                    let hi = number(
                        &c,
                        &format!("SELECT sum(balance) FROM accounts WHERE id > {half}"),
                    )
                    .await?;
                    c.simple_query("COMMIT").await?;
                    Ok(lo.zip(hi).map(|(a, b)| a + b))
                }
                _ => number(&c, "SELECT sum(balance) FROM accounts").await,
            }
        }
        .await;
        match r {
            Ok(Some(TOTAL)) => t.checks += 1,
            Ok(other) => {
                t.checks += 1;
                t.wrong
                    .push(format!("reader kind {kind} on {port} saw {other:?}"));
            }
            Err(e) => {
                let _ = c.simple_query("ROLLBACK").await;
                *t.errors.entry(code_of(&e)).or_default() += 1;
            }
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_across_datanodes_keep_the_total_for_every_reader() {
    let secs: u64 = std::env::var("PGXC_BANK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let up = tokio::task::spawn_blocking(Up::start).await.expect("start");
    let (cn1, cn2) = (BASE + 100, BASE + 101);
    let c1 = connect(cn1).await;
    let c2 = connect(cn2).await;
    c1.simple_query(
        "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL) DISTRIBUTE BY HASH (id)",
    )
    .await
    .unwrap_or_else(|e| panic!("create: {e}\n{}", up.logs()));
    let values = (1..=ACCOUNTS)
        .map(|i| format!("({i}, {OPENING})"))
        .collect::<Vec<_>>()
        .join(", ");
    c1.simple_query(&format!("INSERT INTO accounts VALUES {values}"))
        .await
        .expect("insert accounts");
    let on = |node: &'static str| {
        let c = &c2;
        async move {
            column(
                c,
                &format!("EXECUTE DIRECT ON ({node}) 'SELECT id FROM accounts ORDER BY id'"),
            )
            .await
            .expect("execute direct")
            .iter()
            .map(|s| s.parse::<i64>().expect("an id"))
            .collect::<Vec<_>>()
        }
    };
    let (dn1, dn2) = (Arc::new(on("dn1").await), Arc::new(on("dn2").await));
    assert_eq!(
        dn1.len() + dn2.len(),
        ACCOUNTS as usize,
        "dn1 {dn1:?} dn2 {dn2:?}"
    );
    assert!(
        !dn1.is_empty() && !dn2.is_empty(),
        "accounts on both datanodes"
    );

    let until = Instant::now() + Duration::from_secs(secs);
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (k, port) in [cn1, cn2].into_iter().enumerate() {
        for w in 0..WRITERS {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ ((k * WRITERS + w + 1) as u64);
            writers.push(tokio::spawn(writer(
                port,
                seed,
                dn1.clone(),
                dn2.clone(),
                until,
            )));
        }
        for kind in 0..3 {
            readers.push((kind, tokio::spawn(reader(port, kind, until))));
        }
    }
    let mut w = Tally::default();
    for h in writers {
        let t = tokio::time::timeout(Duration::from_secs(secs + 120), h)
            .await
            .unwrap_or_else(|_| panic!("a writer hung\n{}", up.logs()))
            .expect("writer task");
        w.committed += t.committed;
        w.wrong.extend(t.wrong);
        for (k, n) in t.errors {
            *w.errors.entry(k).or_default() += n;
        }
    }
    let mut per_kind = [0u64; 3];
    let mut r = Tally::default();
    for (kind, h) in readers {
        let t = tokio::time::timeout(Duration::from_secs(secs + 120), h)
            .await
            .unwrap_or_else(|_| panic!("a reader hung\n{}", up.logs()))
            .expect("reader task");
        per_kind[kind as usize] += t.checks;
        r.checks += t.checks;
        r.wrong.extend(t.wrong);
        for (k, n) in t.errors {
            *r.errors.entry(k).or_default() += n;
        }
    }
    eprintln!(
        "bank: {} transfers committed in {secs} s, retried errors {:?}; {} reader checks \
         (RR one statement {}, RR two statements {}, RC one statement {}), reader errors {:?}",
        w.committed, w.errors, r.checks, per_kind[0], per_kind[1], per_kind[2], r.errors
    );
    assert!(
        r.wrong.is_empty() && w.wrong.is_empty(),
        "fractured or wrong reads ({} of {} checks): {:?} {:?}",
        r.wrong.len(),
        r.checks,
        &r.wrong[..r.wrong.len().min(10)],
        &w.wrong[..w.wrong.len().min(10)]
    );
    for (code, _) in w.errors.iter().chain(r.errors.iter()) {
        assert!(
            code.starts_with("40"),
            "only serialization failures may be retried; got {code}: writers {:?} readers {:?}\n{}",
            w.errors,
            r.errors,
            up.logs()
        );
    }
    assert!(w.committed > 0, "no transfer committed");
    assert!(
        per_kind.iter().all(|&n| n > 0),
        "every reader kind checked: {per_kind:?}"
    );

    // The final total, exactly, through both coordinators and per datanode.
    for c in [&c1, &c2] {
        assert_eq!(
            number(c, "SELECT sum(balance) FROM accounts")
                .await
                .expect("sum"),
            Some(TOTAL)
        );
    }
    let mut per_node = 0;
    for node in ["dn1", "dn2"] {
        per_node += number(
            &c1,
            &format!("EXECUTE DIRECT ON ({node}) 'SELECT sum(balance) FROM accounts'"),
        )
        .await
        .expect("execute direct")
        .expect("a sum");
    }
    assert_eq!(per_node, TOTAL, "per-datanode sums");
    // No balance moved without its counterpart: money left the opening state.
    let moved = number(
        &c2,
        &format!("SELECT count(*) FROM accounts WHERE balance <> {OPENING}"),
    )
    .await
    .expect("count");
    assert!(moved > Some(0), "transfers changed balances");

    // No prepared transaction left anywhere (bounded wait for the resolver).
    let args = up.clean_args();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new(pgxc_bin())
            .arg("clean")
            .args(&args)
            .arg("--status")
            .output()
            .expect("pgxc clean -s");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "pgxc clean -s: {text}");
        if !text.contains(": prepared ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prepared transactions left 60 s after the load:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop((c1, c2));
    tokio::task::spawn_blocking(move || drop(up))
        .await
        .expect("stop");
}
