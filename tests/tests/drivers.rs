//! The PostgreSQL wire front end driven by a real driver (tokio-postgres 0.7) and by a raw frontend
//! client: `pgxc datanode --standalone`, and a local cluster (`pgxc ctl up`) through a coordinator.
//!
//! - tokio-postgres: prepared statements whose parameter types the server infers (ParameterDescription
//!   checked against PostgreSQL's answers), binary parameters and binary results for every type the
//!   driver speaks without extra features (round trips compared value by value, NULLs included),
//!   `query_typed`, errors with their SQLSTATE (the connection stays usable), a transaction rolled back
//!   and one committed, and SCRAM-SHA-256 login (`--auth scram --password-file`) with a wrong password
//!   refused with 28P01.
//! - raw protocol: SSLRequest and GSSENCRequest answered `N`; binary parameters and results for date,
//!   time, timestamp, timestamptz, interval, uuid, numeric, json, jsonb (byte-exact round trips with
//!   inferred parameter OIDs); an oversized, a negative-length and an unknown message each end only
//!   their own connection with FATAL 08P01 while another session carries on.
//!
//! Ports: 24000–24999 only.

use pgxc_tests::{pgxc_bin, tail, unique_dir};
use std::io::{Read, Write};
use std::net::TcpStream as StdTcp;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

fn port_free(p: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
}

/// A free port in 24000..24400, varied by process id and `salt`.
fn pick_port(salt: u16) -> u16 {
    let mut p = 24_000
        + ((std::process::id() as u16)
            .wrapping_mul(7)
            .wrapping_add(salt * 37))
            % 400;
    for _ in 0..400 {
        if port_free(p) {
            return p;
        }
        p = 24_000 + (p - 24_000 + 1) % 400;
    }
    panic!("no free port in 24000..24400");
}

/// A standalone datanode; dropping it kills the process and removes its directory.
struct Datanode {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Datanode {
    fn start(salt: u16, extra: &[&str]) -> Datanode {
        let dir = unique_dir("drivers");
        let port = pick_port(salt);
        let log = std::fs::File::create(dir.join("datanode.log")).expect("log");
        let child = Command::new(pgxc_bin())
            .args(["datanode", "--standalone", "-D"])
            .arg(dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn pgxc datanode");
        let mut d = Datanode { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while StdTcp::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!(
                    "datanode exited ({st}): {}",
                    tail(&d.dir.join("datanode.log"), 2000)
                );
            }
            assert!(Instant::now() < deadline, "datanode did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Datanode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", tail(&self.dir.join("datanode.log"), 3000));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn connect(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname("postgres");
    if let Some(p) = password {
        cfg.password(p);
    }
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The checks shared by the standalone datanode and the coordinator.
async fn driver_checks(c: &mut Client, table: &str) {
    // tokio-postgres's own first statement: an untyped parameter cast to int8.
    let st = c
        .prepare("SELECT $1::int8 + 1 AS x")
        .await
        .expect("prepare");
    assert_eq!(st.params(), &[Type::INT8]);
    assert_eq!(st.columns()[0].name(), "x");
    assert_eq!(st.columns()[0].type_(), &Type::INT8);
    let row = c.query_one(&st, &[&41i64]).await.expect("query");
    assert_eq!(row.get::<_, i64>(0), 42);

    c.batch_execute(&format!(
        "CREATE TABLE {table} (aid int PRIMARY KEY, bal bigint, name varchar(20), f float8, r real, \
         s smallint, ok boolean, data bytea, note text, arr int[])"
    ))
    .await
    .expect("create");
    // INSERT VALUES positions take the column types.
    let ins = c
        .prepare(&format!(
            "INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .await
        .expect("prepare insert");
    assert_eq!(
        ins.params(),
        &[
            Type::INT4,
            Type::INT8,
            Type::VARCHAR,
            Type::FLOAT8,
            Type::FLOAT4,
            Type::INT2,
            Type::BOOL,
            Type::BYTEA,
            Type::TEXT,
            Type::INT4_ARRAY
        ]
    );
    assert!(ins.columns().is_empty(), "INSERT describes as NoData");
    let bytes: Vec<u8> = vec![0, 1, 2, 0xfe, 0xff, b'\''];
    let arr: Vec<i32> = vec![1, -2, 300_000];
    let n = c
        .execute(
            &ins,
            &[
                &1i32,
                &(-9_000_000_000i64),
                &"it's",
                &0.1f64,
                &1.5f32,
                &(-7i16),
                &true,
                &bytes,
                &"π ≈ 3.14159\n\ttab",
                &arr,
            ],
        )
        .await
        .expect("insert");
    assert_eq!(n, 1);
    c.execute(
        &ins,
        &[
            &2i32,
            &Option::<i64>::None,
            &Option::<&str>::None,
            &Option::<f64>::None,
            &Option::<f32>::None,
            &Option::<i16>::None,
            &Option::<bool>::None,
            &Option::<Vec<u8>>::None,
            &Option::<&str>::None,
            &Option::<Vec<i32>>::None,
        ],
    )
    .await
    .expect("insert nulls");

    // Comparison with a column: the column's type; binary results.
    let sel = c
        .prepare(&format!("SELECT * FROM {table} WHERE aid = $1"))
        .await
        .expect("prepare select");
    assert_eq!(sel.params(), &[Type::INT4]);
    let types: Vec<Type> = sel.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::INT4,
            Type::INT8,
            Type::VARCHAR,
            Type::FLOAT8,
            Type::FLOAT4,
            Type::INT2,
            Type::BOOL,
            Type::BYTEA,
            Type::TEXT,
            Type::INT4_ARRAY
        ]
    );
    let row = c.query_one(&sel, &[&1i32]).await.expect("select 1");
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i64>(1), -9_000_000_000);
    assert_eq!(row.get::<_, &str>(2), "it's");
    assert_eq!(row.get::<_, f64>(3), 0.1);
    assert_eq!(row.get::<_, f32>(4), 1.5);
    assert_eq!(row.get::<_, i16>(5), -7);
    assert!(row.get::<_, bool>(6));
    assert_eq!(row.get::<_, Vec<u8>>(7), bytes);
    assert_eq!(row.get::<_, &str>(8), "π ≈ 3.14159\n\ttab");
    assert_eq!(row.get::<_, Vec<i32>>(9), arr);
    let row = c.query_one(&sel, &[&2i32]).await.expect("select 2");
    assert_eq!(row.get::<_, Option<i64>>(1), None);
    assert_eq!(row.get::<_, Option<&str>>(2), None);
    assert_eq!(row.get::<_, Option<Vec<i32>>>(9), None);

    // Arithmetic with a typed operand, UPDATE SET positions, IN lists, LIMIT/OFFSET.
    let upd = c
        .prepare(&format!(
            "UPDATE {table} SET bal = bal + $1, note = $3 WHERE aid = $2"
        ))
        .await
        .expect("prepare update");
    assert_eq!(upd.params(), &[Type::INT8, Type::INT4, Type::TEXT]);
    let n = c
        .execute(&upd, &[&10i64, &1i32, &"updated"])
        .await
        .expect("update");
    assert_eq!(n, 1);
    let q = c
        .prepare(&format!(
            "SELECT aid, bal FROM {table} WHERE aid IN ($1, $2) ORDER BY aid LIMIT $3 OFFSET $4"
        ))
        .await
        .expect("prepare in");
    assert_eq!(
        q.params(),
        &[Type::INT4, Type::INT4, Type::INT8, Type::INT8]
    );
    let rows = c
        .query(&q, &[&1i32, &2i32, &5i64, &0i64])
        .await
        .expect("in");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, i64>(1), -8_999_999_990);
    let rows = c
        .query(&q, &[&1i32, &2i32, &1i64, &1i64])
        .await
        .expect("offset");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 2);

    // RETURNING describes its columns.
    let ret = c
        .prepare(&format!(
            "UPDATE {table} SET f = $1 WHERE aid = $2 RETURNING aid, f * 2 AS twice"
        ))
        .await
        .expect("prepare returning");
    assert_eq!(ret.params(), &[Type::FLOAT8, Type::INT4]);
    assert_eq!(ret.columns().len(), 2);
    assert_eq!(ret.columns()[1].type_(), &Type::FLOAT8);
    let row = c
        .query_one(&ret, &[&2.25f64, &2i32])
        .await
        .expect("returning");
    assert_eq!(row.get::<_, f64>(1), 4.5);

    // query_typed: the client names the types; no Describe round trip.
    let rows = c
        .query_typed(
            "SELECT $1 || '-x', $2 + 1",
            &[(&"a", Type::TEXT), (&5i64, Type::INT8)],
        )
        .await
        .expect("query_typed");
    assert_eq!(rows[0].get::<_, &str>(0), "a-x");
    assert_eq!(rows[0].get::<_, i64>(1), 6);

    // Errors keep their SQLSTATE, and the connection stays usable.
    let e = c
        .execute(
            &ins,
            &[
                &1i32, &0i64, &"dup", &0f64, &0f32, &0i16, &false, &bytes, &"", &arr,
            ],
        )
        .await
        .expect_err("duplicate key");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    let e = c.prepare("SELEC 1").await.expect_err("syntax error");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR)
    );
    let e = c
        .prepare(&format!("SELECT nope FROM {table} WHERE aid = $1"))
        .await
        .expect_err("undefined column");
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN)
    );
    let e = c
        .query_one(&sel, &[&3i32])
        .await
        .expect_err("no row for query_one");
    assert!(e.code().is_none(), "{e}");

    // A transaction rolled back, then one committed.
    let count = format!("SELECT count(*) FROM {table}");
    {
        let tx = c.transaction().await.expect("begin");
        tx.execute(
            &ins,
            &[
                &3i32, &0i64, &"tx", &0f64, &0f32, &0i16, &false, &bytes, &"", &arr,
            ],
        )
        .await
        .expect("insert in tx");
        let n: i64 = tx.query_one(&count, &[]).await.expect("count").get(0);
        assert_eq!(n, 3);
        tx.rollback().await.expect("rollback");
    }
    let n: i64 = c.query_one(&count, &[]).await.expect("count").get(0);
    assert_eq!(n, 2);
    {
        let tx = c.transaction().await.expect("begin");
        tx.execute(
            &ins,
            &[
                &3i32, &0i64, &"tx", &0f64, &0f32, &0i16, &false, &bytes, &"", &arr,
            ],
        )
        .await
        .expect("insert in tx");
        tx.commit().await.expect("commit");
    }
    let n: i64 = c.query_one(&count, &[]).await.expect("count").get(0);
    assert_eq!(n, 3);

    // Execute with a row limit: PortalSuspended after 2 rows, then the rest, then nothing.
    {
        let tx = c.transaction().await.expect("begin");
        let st = tx
            .prepare(&format!(
                "SELECT aid FROM {table} WHERE aid > $1 ORDER BY aid"
            ))
            .await
            .expect("prepare");
        let portal = tx.bind(&st, &[&0i32]).await.expect("bind");
        let aids = |rows: Vec<tokio_postgres::Row>| -> Vec<i32> {
            rows.iter().map(|r| r.get(0)).collect()
        };
        let a = tx.query_portal(&portal, 2).await.expect("first batch");
        assert_eq!(aids(a), vec![1, 2]);
        let b = tx.query_portal(&portal, 2).await.expect("second batch");
        assert_eq!(aids(b), vec![3]);
        let rest = tx.query_portal(&portal, 2).await.expect("exhausted");
        assert!(rest.is_empty());
        tx.commit().await.expect("commit");
    }

    // COPY FROM STDIN through the extended protocol (tokio-postgres's copy_in), with no rows.
    let sink = c
        .copy_in::<_, &'static [u8]>(&format!("COPY {table} (aid, bal) FROM STDIN"))
        .await
        .expect("copy_in starts");
    let mut sink = std::pin::pin!(sink);
    assert_eq!(sink.as_mut().finish().await.expect("copy_in ends"), 0);
    let n: i64 = c.query_one(&count, &[]).await.expect("count").get(0);
    assert_eq!(n, 3);
}

#[test]
fn tokio_postgres_against_a_standalone_datanode() {
    let dn = Datanode::start(1, &[]);
    runtime().block_on(async {
        let mut c = connect(dn.port, "postgres", None).await.expect("connect");
        driver_checks(&mut c, "acc").await;
    });
}

#[test]
fn scram_sha_256_login() {
    let dir = unique_dir("drivers-pw");
    let pwfile = dir.join("passwords");
    std::fs::write(&pwfile, "# test users\nalice:s3cret 'pw'\n").expect("write password file");
    let pw = pwfile.to_string_lossy().into_owned();
    let dn = Datanode::start(2, &["--auth", "scram", "--password-file", &pw]);
    runtime().block_on(async {
        let c = connect(dn.port, "alice", Some("s3cret 'pw'"))
            .await
            .expect("SCRAM login with the right password");
        let row = c.query_one("SELECT 1 + 1", &[]).await.expect("query");
        assert_eq!(row.get::<_, i32>(0), 2);
        for (user, password) in [("alice", "wrong"), ("mallory", "s3cret 'pw'")] {
            let e = connect(dn.port, user, Some(password))
                .await
                .expect_err("a wrong password or unknown user is refused");
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
                "{e}"
            );
        }
    });
    // psql with PGPASSWORD, when psql is installed.
    if Command::new("psql").arg("--version").output().is_ok() {
        let out = Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-p",
                &dn.port.to_string(),
            ])
            .args(["-U", "alice", "-d", "postgres", "-c", "SELECT 40 + 2"])
            .env("PGPASSWORD", "s3cret 'pw'")
            .output()
            .expect("psql runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "42",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-p", &dn.port.to_string()])
            .args(["-U", "alice", "-d", "postgres", "-c", "SELECT 1"])
            .env("PGPASSWORD", "nope")
            .output()
            .expect("psql runs");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------------------
// A raw frontend.

struct Raw {
    s: StdTcp,
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

impl Raw {
    /// Connect, answer-check SSLRequest and GSSENCRequest (`N`), start up as postgres.
    fn connect(port: u16) -> Raw {
        let mut s = StdTcp::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        for code in [80877103i32, 80877104] {
            let mut m = 8i32.to_be_bytes().to_vec();
            m.extend_from_slice(&code.to_be_bytes());
            s.write_all(&m).expect("write");
            let mut b = [0u8; 1];
            s.read_exact(&mut b).expect("read");
            assert_eq!(b[0], b'N');
        }
        let mut body = 196608i32.to_be_bytes().to_vec();
        cstr(&mut body, "user");
        cstr(&mut body, "postgres");
        cstr(&mut body, "database");
        cstr(&mut body, "postgres");
        body.push(0);
        let mut m = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        s.write_all(&m).expect("startup");
        let mut r = Raw { s };
        r.until_ready();
        r
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send");
    }

    /// The next backend message, or `None` at EOF.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 5];
        if self.s.read_exact(&mut h).is_err() {
            return None;
        }
        let len = i32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let mut body = vec![0; len - 4];
        self.s.read_exact(&mut body).ok()?;
        Some((h[0], body))
    }

    /// Messages up to and including ReadyForQuery.
    fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let m = self.recv().expect("connection open");
            let done = m.0 == b'Z';
            out.push(m);
            if done {
                return out;
            }
        }
    }

    fn query(&mut self, sql: &str) -> Vec<(u8, Vec<u8>)> {
        let mut b = Vec::new();
        cstr(&mut b, sql);
        self.send(&msg(b'Q', &b));
        let r = self.until_ready();
        assert!(!r.iter().any(|m| m.0 == b'E'), "{sql}: {}", errors(&r));
        r
    }
}

/// The SQLSTATE and message fields of the ErrorResponses in `msgs`.
fn errors(msgs: &[(u8, Vec<u8>)]) -> String {
    msgs.iter()
        .filter(|m| m.0 == b'E')
        .map(|m| String::from_utf8_lossy(&m.1).replace('\0', "|"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn sqlstate(body: &[u8]) -> String {
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let field = body[i];
        let end = i + 1 + body[i + 1..].iter().position(|&c| c == 0).unwrap_or(0);
        if field == b'C' {
            return String::from_utf8_lossy(&body[i + 1..end]).into_owned();
        }
        i = end + 1;
    }
    String::new()
}

/// Binary values of the types tokio-postgres cannot speak without extra features: (column, type,
/// parameter OID PostgreSQL infers, binary value).
fn binary_cases() -> Vec<(&'static str, &'static str, u32, Vec<u8>)> {
    let i32b = |v: i32| v.to_be_bytes().to_vec();
    let i64b = |v: i64| v.to_be_bytes().to_vec();
    let mut interval = i64b(3_723_000_004);
    interval.extend(i32b(5));
    interval.extend(i32b(14));
    // numeric 12345.6789: ndigits 3, weight 1, sign +, dscale 4, digits 1 2345 6789.
    let mut numeric = Vec::new();
    for v in [3i16, 1, 0, 4, 1, 2345, 6789] {
        numeric.extend(v.to_be_bytes());
    }
    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(br#"{"a": [1, 2.5, "x"], "b": null}"#);
    vec![
        ("d", "date", 1082, i32b(9_000)),
        ("t", "time", 1083, i64b(45_296_789_012)),
        ("ts", "timestamp", 1114, i64b(812_345_678_901_234)),
        ("tz", "timestamptz", 1184, i64b(-123_456_789_000)),
        ("iv", "interval", 1186, interval),
        ("u", "uuid", 2950, (0u8..16).map(|b| b * 17).collect()),
        ("n", "numeric", 1700, numeric),
        ("j", "json", 114, br#"{"k": "v"}"#.to_vec()),
        ("jb", "jsonb", 3802, jsonb),
    ]
}

/// Parse + Describe + Bind (binary) + Execute for the binary cases: the inferred OIDs and the
/// byte-exact round trip of every value.
fn raw_binary_round_trip(r: &mut Raw, table: &str) {
    let cases = binary_cases();
    let cols: Vec<String> = cases.iter().map(|c| format!("{} {}", c.0, c.1)).collect();
    r.query(&format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, {})",
        cols.join(", ")
    ));
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let marks: Vec<String> = (2..=cases.len() + 1).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO {table} (id, {}) VALUES ($1, {})",
        names.join(", "),
        marks.join(", ")
    );
    // Parse with no parameter types, Describe the statement.
    let mut b = Vec::new();
    cstr(&mut b, "ins");
    cstr(&mut b, &insert);
    b.extend(0i16.to_be_bytes());
    let mut out = msg(b'P', &b);
    let mut d = vec![b'S'];
    cstr(&mut d, "ins");
    out.extend(msg(b'D', &d));
    out.extend(msg(b'S', &[]));
    r.send(&out);
    let got = r.until_ready();
    assert!(!got.iter().any(|m| m.0 == b'E'), "{}", errors(&got));
    let pd = got
        .iter()
        .find(|m| m.0 == b't')
        .expect("ParameterDescription");
    let n = i16::from_be_bytes([pd.1[0], pd.1[1]]) as usize;
    let oids: Vec<u32> = (0..n)
        .map(|i| u32::from_be_bytes(pd.1[2 + 4 * i..6 + 4 * i].try_into().expect("4 bytes")))
        .collect();
    let mut want = vec![23u32];
    want.extend(cases.iter().map(|c| c.2));
    assert_eq!(oids, want);
    assert!(
        got.iter().any(|m| m.0 == b'n'),
        "INSERT describes as NoData"
    );
    // Bind every parameter in binary.
    let mut values: Vec<Vec<u8>> = vec![7i32.to_be_bytes().to_vec()];
    values.extend(cases.iter().map(|c| c.3.clone()));
    let mut b = Vec::new();
    cstr(&mut b, "");
    cstr(&mut b, "ins");
    b.extend(1i16.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    b.extend((values.len() as i16).to_be_bytes());
    for v in &values {
        b.extend((v.len() as i32).to_be_bytes());
        b.extend(v);
    }
    b.extend(0i16.to_be_bytes());
    let mut out = msg(b'B', &b);
    let mut e = Vec::new();
    cstr(&mut e, "");
    e.extend(0i32.to_be_bytes());
    out.extend(msg(b'E', &e));
    out.extend(msg(b'S', &[]));
    r.send(&out);
    let got = r.until_ready();
    assert!(!got.iter().any(|m| m.0 == b'E'), "{}", errors(&got));
    // Read back in binary, selecting by a binary-bound, inferred int4 key.
    let mut b = Vec::new();
    cstr(&mut b, "");
    cstr(
        &mut b,
        &format!("SELECT {} FROM {table} WHERE id = $1", names.join(", ")),
    );
    b.extend(0i16.to_be_bytes());
    let mut out = msg(b'P', &b);
    let mut b = Vec::new();
    cstr(&mut b, "");
    cstr(&mut b, "");
    b.extend(1i16.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    b.extend(4i32.to_be_bytes());
    b.extend(7i32.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    out.extend(msg(b'B', &b));
    let mut d = vec![b'P'];
    cstr(&mut d, "");
    out.extend(msg(b'D', &d));
    let mut e = Vec::new();
    cstr(&mut e, "");
    e.extend(0i32.to_be_bytes());
    out.extend(msg(b'E', &e));
    out.extend(msg(b'S', &[]));
    r.send(&out);
    let got = r.until_ready();
    assert!(!got.iter().any(|m| m.0 == b'E'), "{}", errors(&got));
    let rows: Vec<&(u8, Vec<u8>)> = got.iter().filter(|m| m.0 == b'D').collect();
    assert_eq!(rows.len(), 1);
    let row = &rows[0].1;
    let mut i = 2;
    for (name, _, _, want) in &cases {
        let len = i32::from_be_bytes(row[i..i + 4].try_into().expect("4 bytes")) as usize;
        let v = &row[i + 4..i + 4 + len];
        assert_eq!(v, &want[..], "binary round trip of column {name}");
        i += 4 + len;
    }
}

/// `COPY ... FROM STDIN` and `COPY ... TO STDOUT` through Parse/Bind/Execute, with a Sync sent
/// during the copy (ignored, as PostgreSQL does) and one after CopyDone.
fn raw_extended_copy(r: &mut Raw, table: &str) {
    r.query(&format!("CREATE TABLE {table} (a int PRIMARY KEY, b text)"));
    let pbe = |sql: &str| {
        let mut b = Vec::new();
        cstr(&mut b, "");
        cstr(&mut b, sql);
        b.extend(0i16.to_be_bytes());
        let mut out = msg(b'P', &b);
        let mut b = Vec::new();
        cstr(&mut b, "");
        cstr(&mut b, "");
        b.extend([0u8; 6]);
        out.extend(msg(b'B', &b));
        let mut e = Vec::new();
        cstr(&mut e, "");
        e.extend(0i32.to_be_bytes());
        out.extend(msg(b'E', &e));
        out.extend(msg(b'S', &[]));
        out
    };
    r.send(&pbe(&format!("COPY {table} FROM STDIN")));
    let mut kinds = Vec::new();
    while let Some((ty, _)) = r.recv() {
        kinds.push(ty);
        if ty == b'G' {
            break;
        }
        assert!(ty != b'Z' && ty != b'E', "no CopyInResponse: {kinds:?}");
    }
    assert_eq!(kinds, vec![b'1', b'2', b'G']);
    let mut out = msg(b'd', b"1\tone\n2\t");
    out.extend(msg(b'd', b"two\n"));
    out.extend(msg(b'c', &[]));
    out.extend(msg(b'S', &[]));
    r.send(&out);
    let got = r.until_ready();
    assert!(!got.iter().any(|m| m.0 == b'E'), "{}", errors(&got));
    let tags: Vec<String> = got
        .iter()
        .filter(|m| m.0 == b'C')
        .map(|m| {
            String::from_utf8_lossy(&m.1)
                .trim_end_matches('\0')
                .to_string()
        })
        .collect();
    assert_eq!(tags, vec!["COPY 2"]);
    r.send(&pbe(&format!("COPY {table} TO STDOUT")));
    let got = r.until_ready();
    assert!(!got.iter().any(|m| m.0 == b'E'), "{}", errors(&got));
    let data: Vec<u8> = got
        .iter()
        .filter(|m| m.0 == b'd')
        .flat_map(|m| m.1.clone())
        .collect();
    let mut lines: Vec<&str> = std::str::from_utf8(&data).expect("utf8").lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["1\tone", "2\ttwo"]);
    assert!(got.iter().any(|m| m.0 == b'H') && got.iter().any(|m| m.0 == b'c'));
}

/// Parse errors PostgreSQL raises at Parse: a duplicate statement name (42P05) and several
/// statements in one Parse (42601); the connection is usable after Sync.
fn raw_parse_errors(r: &mut Raw) {
    let parse = |name: &str, sql: &str| {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend(0i16.to_be_bytes());
        let mut out = msg(b'P', &b);
        out.extend(msg(b'S', &[]));
        out
    };
    r.send(&parse("dup", "SELECT 1"));
    let got = r.until_ready();
    assert_eq!(
        got.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![b'1', b'Z']
    );
    for (name, sql, code) in [
        ("dup", "SELECT 2", "42P05"),
        ("", "SELECT 1; SELECT 2", "42601"),
    ] {
        r.send(&parse(name, sql));
        let got = r.until_ready();
        let e = got.iter().find(|m| m.0 == b'E').expect("an error");
        assert_eq!(sqlstate(&e.1), code, "{sql}");
    }
    r.query("SELECT 1");
}

/// Malformed messages end their own connection with FATAL 08P01; `other` carries on.
fn raw_malformed(port: u16, other: &mut Raw) {
    let cases: Vec<Vec<u8>> = vec![
        // Oversized: length > 1 GB.
        {
            let mut m = vec![b'Q'];
            m.extend(0x7fff_fff0i32.to_be_bytes());
            m
        },
        // Negative length.
        {
            let mut m = vec![b'Q'];
            m.extend((-5i32).to_be_bytes());
            m
        },
        // Unknown message type.
        msg(b'!', b"junk"),
    ];
    for bad in cases {
        let mut r = Raw::connect(port);
        r.send(&bad);
        let (ty, body) = r.recv().expect("an ErrorResponse before the close");
        assert_eq!(ty, b'E');
        assert_eq!(sqlstate(&body), "08P01");
        assert!(String::from_utf8_lossy(&body).contains("FATAL"));
        assert!(r.recv().is_none(), "the connection is closed");
        // The other session is unaffected.
        let got = other.query("SELECT 7 * 6");
        let row = got.iter().find(|m| m.0 == b'D').expect("a row");
        assert_eq!(&row.1[6..], b"42");
    }
}

#[test]
fn raw_protocol_against_a_standalone_datanode() {
    let dn = Datanode::start(3, &[]);
    let mut r = Raw::connect(dn.port);
    raw_binary_round_trip(&mut r, "bin");
    raw_extended_copy(&mut r, "cp");
    raw_parse_errors(&mut r);
    let mut other = Raw::connect(dn.port);
    raw_malformed(dn.port, &mut other);
    // The first session is still fine too.
    r.query("SELECT 1");
}

// ---------------------------------------------------------------------------------------------------------
// A local cluster.

/// `pgxc ctl up` as a child; dropping it stops the cluster and removes the directory.
struct Up {
    dir: PathBuf,
    child: Child,
    coordinator: u16,
}

fn cluster_ports_free(base: u16) -> bool {
    [0u16, 1, 2, 10, 20, 21, 30, 31, 100, 101]
        .iter()
        .all(|o| port_free(base + o))
}

impl Up {
    fn start() -> Up {
        let dir = unique_dir("drivers-cluster");
        let mut base = 24_500 + (std::process::id() % 3) as u16 * 130;
        while !cluster_ports_free(base) {
            base += 130;
            assert!(base + 101 < 25_000, "no free port range in 24500..25000");
        }
        let log = std::fs::File::create(dir.join("up.log")).expect("log");
        let child = Command::new(pgxc_bin())
            .args(["ctl", "up", "--data"])
            .arg(dir.join("data"))
            .args(["--base-port", &base.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn pgxc ctl up");
        let mut up = Up {
            dir,
            child,
            coordinator: base + 100,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(up.dir.join("up.log")).unwrap_or_default();
            if text.contains("Press Ctrl-C") {
                return up;
            }
            if let Ok(Some(st)) = up.child.try_wait() {
                panic!("pgxc ctl up exited ({st}):\n{text}");
            }
            assert!(Instant::now() < deadline, "cluster not ready:\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self, name: &str) -> String {
        tail(&Path::new(&self.dir).join(name), 3000)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for n in ["up.log", "data/cn1.log", "data/dn1.log", "data/dn2.log"] {
                eprintln!("--- {n}\n{}", self.log(n));
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn tokio_postgres_and_raw_protocol_through_a_coordinator() {
    let up = Up::start();
    runtime().block_on(async {
        // The coordinator may still be starting after `pgxc ctl up` printed its banner: retry,
        // each attempt bounded, so a coordinator that never serves fails the test instead of
        // hanging it.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut c = loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(20),
                connect(up.coordinator, "postgres", None),
            )
            .await;
            match attempt {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) if Instant::now() >= deadline => {
                    panic!("connect to the coordinator: {e}")
                }
                Err(_) if Instant::now() >= deadline => panic!("the coordinator never answered"),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        driver_checks(&mut c, "acc_c").await;
    });
    let mut r = Raw::connect(up.coordinator);
    raw_binary_round_trip(&mut r, "bin_c");
    raw_extended_copy(&mut r, "cp_c");
    let mut other = Raw::connect(up.coordinator);
    raw_malformed(up.coordinator, &mut other);
}
