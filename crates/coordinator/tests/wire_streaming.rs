//! The coordinator's wire front end over an in-process cluster (an in-memory GTM, two datanodes
//! serving the coordinator protocol, one coordinator serving PostgreSQL's protocol on loopback),
//! driven by a raw frontend client:
//!
//! - result streaming: a SELECT of 1 000 000 rows spread over both datanodes reaches the client
//!   whole (count and checksum), through the simple protocol and through Execute with a row limit
//!   (PortalSuspended), while the coordinator's peak of buffered rows stays within
//!   `pgxc.remote_fetch_size` × datanodes;
//! - cancel: a CancelRequest stops a statement running on a datanode (forwarded there) and one
//!   running on the coordinator itself, both with 57014, and the session carries on;
//! - notices: NoticeResponses with PostgreSQL 15's severity, SQLSTATE and text, once per statement
//!   however many nodes ran it; and the same from a standalone engine's front end.
#![cfg(not(madsim))]

use std::sync::Arc;

use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::stream::{peak_buffered_rows, reset_peak_buffered_rows};
use pgxc_datanode::gtm_source::GtmTxnSource;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Rows per datanode in the big table.
const PER_NODE: i64 = 500_000;
/// `pgxc.remote_fetch_size` used for the big reads.
const FETCH: usize = 4_000;

struct Cluster {
    _gtm: GtmServer,
    coord: Arc<Coordinator>,
    /// The coordinator's client address.
    addr: String,
}

async fn engine(gtm: &GtmClient, name: &str) -> Arc<Engine> {
    let src = Arc::new(GtmTxnSource::new(gtm.clone()));
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        Engine::open_with(&Disk::sim(SimDisk::new()), &name, Some(src)).expect("engine opens")
    })
    .await
    .expect("join")
}

async fn cluster() -> Cluster {
    let gtm = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .expect("gtm starts");
    let addrs = vec![gtm.local_addr().to_string()];
    let mut dns = Vec::new();
    for i in 1..=2 {
        let client = GtmClient::connect(addrs.clone(), ClientOptions::default())
            .await
            .expect("gtm client");
        let name = format!("dn{i}");
        let eng = engine(&client, &name).await;
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(pgxc_datanode::server::serve(l, eng, name.clone()));
        dns.push((name, addr));
    }
    let client = GtmClient::connect(addrs, ClientOptions::default())
        .await
        .expect("gtm client");
    let eng =
        pgxc_coordinator::node::open_catalog_engine(Disk::sim(SimDisk::new()), "cn1", &client)
            .await
            .expect("catalog engine opens");
    let cfg = CoordinatorConfig {
        peers: Vec::new(),
        name: "cn1".into(),
        datanodes: dns,
        preferred: None,
        max_pool_size: 8,
    };
    let coord = Coordinator::start(cfg, eng, client)
        .await
        .expect("coordinator");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(pgxc_coordinator::wire::serve(l, Arc::clone(&coord)));
    Cluster {
        _gtm: gtm,
        coord,
        addr,
    }
}

/// A frontend speaking protocol 3.0 by hand.
struct Raw {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    pid: i32,
    secret: i32,
}

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// The fields (`S`, `C`, `M`, ...) of an ErrorResponse or NoticeResponse.
fn fields(body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let t = body[i];
        let end = i + 1 + body[i + 1..].iter().position(|&c| c == 0).expect("cstr");
        out.push((t, String::from_utf8_lossy(&body[i + 1..end]).into_owned()));
        i = end + 1;
    }
    out
}

fn field(body: &[u8], t: u8) -> String {
    fields(body)
        .into_iter()
        .find(|(k, _)| *k == t)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// A DataRow's first column as text (`None` for NULL).
fn first_column(body: &[u8]) -> Option<String> {
    let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
    (len >= 0).then(|| String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned())
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        let s = TcpStream::connect(addr).await.expect("connect");
        let (r, w) = s.into_split();
        let mut raw = Raw {
            r: BufReader::new(r),
            w,
            pid: 0,
            secret: 0,
        };
        let mut body = 196608i32.to_be_bytes().to_vec();
        for kv in ["user", "postgres", "database", "postgres"] {
            cstr(&mut body, kv);
        }
        body.push(0);
        let mut m = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        raw.w.write_all(&m).await.expect("startup");
        loop {
            let (t, b) = raw.read().await;
            match t {
                b'K' => {
                    raw.pid = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    raw.secret = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                }
                b'Z' => return raw,
                b'E' => panic!("startup failed: {:?}", fields(&b)),
                _ => {}
            }
        }
    }

    async fn read(&mut self) -> (u8, Vec<u8>) {
        let t = self.r.read_u8().await.expect("message type");
        let len = self.r.read_i32().await.expect("length");
        let mut b = vec![0; len as usize - 4];
        self.r.read_exact(&mut b).await.expect("body");
        (t, b)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.expect("send");
    }

    /// Messages until ReadyForQuery; DataRows are given to `row` instead of being kept.
    async fn until_ready(&mut self, mut row: impl FnMut(&[u8])) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let (t, b) = self.read().await;
            match t {
                b'D' => row(&b),
                b'Z' => {
                    out.push((t, b));
                    return out;
                }
                _ => out.push((t, b)),
            }
        }
    }

    /// A simple Query; the non-DataRow messages up to ReadyForQuery.
    async fn query(&mut self, sql: &str, row: impl FnMut(&[u8])) -> Vec<(u8, Vec<u8>)> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        self.send(&msg(b'Q', &b)).await;
        self.until_ready(row).await
    }

    /// A simple Query that must succeed; its first column's values.
    async fn ok(&mut self, sql: &str) -> Vec<Option<String>> {
        let mut rows = Vec::new();
        let msgs = self.query(sql, |b| rows.push(first_column(b))).await;
        if let Some((_, b)) = msgs.iter().find(|(t, _)| *t == b'E') {
            panic!("{sql}: {:?}", fields(b));
        }
        rows
    }

    /// The NoticeResponses (severity, SQLSTATE, message) of a simple Query that must succeed.
    async fn notices(&mut self, sql: &str) -> Vec<(String, String, String)> {
        let msgs = self.query(sql, |_| {}).await;
        if let Some((_, b)) = msgs.iter().find(|(t, _)| *t == b'E') {
            panic!("{sql}: {:?}", fields(b));
        }
        msgs.iter()
            .filter(|(t, _)| *t == b'N')
            .map(|(_, b)| (field(b, b'S'), field(b, b'C'), field(b, b'M')))
            .collect()
    }
}

/// Streams a big result: count and checksum of every row, and the peak of rows the coordinator
/// held, through the simple and the extended protocol.
async fn streaming(c: &Cluster) {
    let mut r = Raw::connect(&c.addr).await;
    r.ok("CREATE TABLE big (v int8) DISTRIBUTE BY ROUNDROBIN")
        .await;
    // Round robin places rows anywhere: fill each datanode directly, half the values each.
    r.ok(&format!(
        "EXECUTE DIRECT ON (dn1) 'INSERT INTO big SELECT g FROM generate_series(1, {PER_NODE}) g'"
    ))
    .await;
    r.ok(&format!(
        "EXECUTE DIRECT ON (dn2) 'INSERT INTO big SELECT g FROM generate_series({}, {}) g'",
        PER_NODE + 1,
        2 * PER_NODE
    ))
    .await;
    let total = 2 * PER_NODE;
    let checksum = total * (total + 1) / 2;

    // The setting: SHOW, a bad value refused, then the bound used below.
    assert_eq!(
        r.ok("SHOW pgxc.remote_fetch_size").await,
        vec![Some("10000".to_string())]
    );
    let bad = r.query("SET pgxc.remote_fetch_size = 0", |_| {}).await;
    assert_eq!(field(&bad[0].1, b'C'), "22023", "{:?}", fields(&bad[0].1));
    r.ok(&format!("SET pgxc.remote_fetch_size = {FETCH}")).await;
    assert_eq!(
        r.ok("SHOW pgxc.remote_fetch_size").await,
        vec![Some(FETCH.to_string())]
    );

    // Simple protocol.
    reset_peak_buffered_rows();
    let (mut n, mut sum) = (0i64, 0i64);
    let msgs = r
        .query("SELECT v FROM big", |b| {
            n += 1;
            sum += first_column(b)
                .expect("not null")
                .parse::<i64>()
                .expect("int8");
        })
        .await;
    let tags: Vec<String> = msgs
        .iter()
        .filter(|(t, _)| *t == b'C')
        .map(|(_, b)| String::from_utf8_lossy(&b[..b.len() - 1]).into_owned())
        .collect();
    assert!(!msgs.iter().any(|(t, _)| *t == b'E'), "{msgs:?}");
    assert_eq!((n, sum), (total, checksum));
    assert_eq!(tags, vec![format!("SELECT {total}")]);
    let peak = peak_buffered_rows();
    eprintln!("simple protocol: {n} rows streamed, peak buffered rows {peak}");
    assert!(peak > 0 && peak <= FETCH * 2, "peak {peak}");

    // Extended protocol: Execute with a row limit suspends the portal, the next one finishes it.
    reset_peak_buffered_rows();
    let mut m = Vec::new();
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, "SELECT v FROM big");
    body.extend_from_slice(&0i16.to_be_bytes());
    m.extend(msg(b'P', &body));
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, "");
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m.extend(msg(b'B', &body));
    let mut body = Vec::new();
    cstr(&mut body, "");
    body.extend_from_slice(&7_000i32.to_be_bytes());
    m.extend(msg(b'E', &body));
    let mut body = Vec::new();
    cstr(&mut body, "");
    body.extend_from_slice(&0i32.to_be_bytes());
    m.extend(msg(b'E', &body));
    m.extend(msg(b'S', &[]));
    r.send(&m).await;
    let (mut n, mut sum, mut suspended_after) = (0i64, 0i64, None);
    loop {
        let (t, b) = r.read().await;
        match t {
            b'D' => {
                n += 1;
                sum += first_column(&b)
                    .expect("value")
                    .parse::<i64>()
                    .expect("int8");
            }
            b's' => suspended_after = Some(n),
            b'C' => assert_eq!(
                String::from_utf8_lossy(&b[..b.len() - 1]),
                format!("SELECT {total}")
            ),
            b'E' => panic!("{:?}", fields(&b)),
            b'Z' => {
                assert_eq!(b, vec![b'I']);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(suspended_after, Some(7_000));
    assert_eq!((n, sum), (total, checksum));
    let peak = peak_buffered_rows();
    eprintln!("extended protocol: {n} rows streamed, peak buffered rows {peak}");
    assert!(peak <= FETCH * 2, "peak {peak}");

    // A portal abandoned half way: Sync ends it and its implicit transaction; the session
    // carries on and nothing stays buffered.
    let mut m = Vec::new();
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, "SELECT v FROM big");
    body.extend_from_slice(&0i16.to_be_bytes());
    m.extend(msg(b'P', &body));
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, "");
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m.extend(msg(b'B', &body));
    let mut body = Vec::new();
    cstr(&mut body, "");
    body.extend_from_slice(&10i32.to_be_bytes());
    m.extend(msg(b'E', &body));
    m.extend(msg(b'S', &[]));
    r.send(&m).await;
    let mut rows = 0;
    let msgs = r.until_ready(|_| rows += 1).await;
    assert_eq!(rows, 10);
    assert!(msgs.iter().any(|(t, _)| *t == b's'), "{msgs:?}");
    assert_eq!(msgs.last().map(|(_, b)| b.clone()), Some(vec![b'I']));
    assert_eq!(
        r.ok("SELECT count(*) FROM big").await,
        vec![Some(total.to_string())]
    );
    // A small result inside a block: complete after one round trip, no stream left open.
    r.ok("BEGIN").await;
    assert_eq!(
        r.ok("SELECT v FROM big WHERE v < 4 ORDER BY v").await.len(),
        3
    );
    assert_eq!(r.ok("SELECT v FROM big").await.len() as i64, total);
    r.ok("COMMIT").await;
}

/// A CancelRequest for the client's session, on a connection of its own (never answered).
async fn cancel(addr: &str, pid: i32, secret: i32) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut m = 16i32.to_be_bytes().to_vec();
    m.extend_from_slice(&80877102i32.to_be_bytes());
    m.extend_from_slice(&pid.to_be_bytes());
    m.extend_from_slice(&secret.to_be_bytes());
    s.write_all(&m).await.expect("cancel");
    // The server closes it without a reply.
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
}

/// Runs `sql` on `r` and cancels it from another connection (again every 300 ms until the answer
/// comes, in case a cancel lands before the statement started); returns the answer's messages.
async fn run_cancelled(addr: &str, r: &mut Raw, sql: &str) -> Vec<(u8, Vec<u8>)> {
    let mut b = Vec::new();
    cstr(&mut b, sql);
    r.send(&msg(b'Q', &b)).await;
    let (pid, secret) = (r.pid, r.secret);
    let addr2 = addr.to_string();
    let canceller = tokio::spawn(async move {
        for _ in 0..200 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            cancel(&addr2, pid, secret).await;
        }
    });
    let msgs = r.until_ready(|_| {}).await;
    canceller.abort();
    msgs
}

async fn cancelling(c: &Cluster) {
    let mut r = Raw::connect(&c.addr).await;
    r.ok("CREATE TABLE slow (x int) DISTRIBUTE BY ROUNDROBIN")
        .await;
    r.ok("EXECUTE DIRECT ON (dn1) 'INSERT INTO slow SELECT g FROM generate_series(1, 3000) g'")
        .await;
    // A long statement (a 9M-pair nested loop) on a datanode, where the cancel is forwarded, and
    // evaluated on the coordinator over the fetched rows, where its catalog session stops.
    let slow = "SELECT count(*) FROM slow a, slow b WHERE a.x + b.x < 0";
    for sql in [
        format!("EXECUTE DIRECT ON (dn1) '{slow}'"),
        slow.to_string(),
    ] {
        let msgs = run_cancelled(&c.addr, &mut r, &sql).await;
        let err = msgs
            .iter()
            .find(|(t, _)| *t == b'E')
            .unwrap_or_else(|| panic!("{sql} was not cancelled: {msgs:?}"));
        assert_eq!(field(&err.1, b'C'), "57014", "{:?}", fields(&err.1));
        assert_eq!(
            field(&err.1, b'M'),
            "canceling statement due to user request"
        );
        assert_eq!(msgs.last().map(|(_, b)| b.clone()), Some(vec![b'I']));
        // The session carries on.
        assert_eq!(r.ok("SELECT 1").await, vec![Some("1".to_string())]);
        assert_eq!(
            r.ok("EXECUTE DIRECT ON (dn1) 'SELECT 2'").await,
            vec![Some("2".to_string())]
        );
    }
    // A cancel with a wrong secret does nothing.
    cancel(&c.addr, r.pid, r.secret.wrapping_add(1)).await;
    assert_eq!(r.ok("SELECT 3").await, vec![Some("3".to_string())]);
}

/// PostgreSQL 15's notices (checked against its psql output), through `r`.
async fn notices(r: &mut Raw, cluster: bool) {
    let n = |s: &str, c: &str, m: &str| (s.to_string(), c.to_string(), m.to_string());
    assert_eq!(
        r.notices("DROP TABLE IF EXISTS missing").await,
        vec![n(
            "NOTICE",
            "00000",
            "table \"missing\" does not exist, skipping"
        )]
    );
    r.ok(if cluster {
        "CREATE TABLE nt (a int) DISTRIBUTE BY HASH (a)"
    } else {
        "CREATE TABLE nt (a int)"
    })
    .await;
    assert_eq!(
        r.notices("CREATE TABLE IF NOT EXISTS nt (a int)").await,
        vec![n(
            "NOTICE",
            "42P07",
            "relation \"nt\" already exists, skipping"
        )]
    );
    for (sql, m) in [
        (
            "DROP INDEX IF EXISTS nosuch_idx",
            "index \"nosuch_idx\" does not exist, skipping",
        ),
        (
            "DROP VIEW IF EXISTS nosuch_v",
            "view \"nosuch_v\" does not exist, skipping",
        ),
        (
            "DROP SEQUENCE IF EXISTS nosuch_s",
            "sequence \"nosuch_s\" does not exist, skipping",
        ),
        (
            "DROP SCHEMA IF EXISTS nosuch_sch",
            "schema \"nosuch_sch\" does not exist, skipping",
        ),
    ] {
        assert_eq!(r.notices(sql).await, vec![n("NOTICE", "00000", m)], "{sql}");
    }
    // Two statements in one string: one notice each.
    assert_eq!(
        r.notices("DROP TABLE IF EXISTS missing; DROP TABLE IF EXISTS missing")
            .await
            .len(),
        2
    );
    let none = n("WARNING", "25P01", "there is no transaction in progress");
    assert_eq!(r.notices("COMMIT").await, vec![none.clone()]);
    assert_eq!(r.notices("ROLLBACK").await, vec![none]);
    r.ok("BEGIN").await;
    assert_eq!(
        r.notices("BEGIN").await,
        vec![n(
            "WARNING",
            "25001",
            "there is already a transaction in progress"
        )]
    );
    assert_eq!(r.notices("COMMIT").await, vec![]);
    assert_eq!(r.notices("DROP TABLE nt").await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_streams_a_million_rows_in_bounded_memory() {
    let c = cluster().await;
    let started = std::time::Instant::now();
    streaming(&c).await;
    eprintln!("streaming: {:.1?}", started.elapsed());
    drop(c.coord);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_forwards_cancel_and_reports_notices() {
    let c = cluster().await;
    cancelling(&c).await;
    let mut r = Raw::connect(&c.addr).await;
    notices(&mut r, true).await;
    drop(c.coord);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_engine_reports_notices() {
    let eng = tokio::task::spawn_blocking(|| {
        Engine::open(&Disk::sim(SimDisk::new()), "standalone").expect("engine opens")
    })
    .await
    .expect("join");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(pgxc_wire::serve(l, eng));
    let mut r = Raw::connect(&addr).await;
    notices(&mut r, false).await;
}
