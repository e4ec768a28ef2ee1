//! A whole cluster in one process over loopback TCP: an in-memory GTM, two datanodes serving the
//! coordinator protocol, two coordinators. Checks placement, shipping, the fallback, one- and
//! two-phase commit, prepared transactions across coordinators and error codes.
#![cfg(not(madsim))]

use std::sync::Arc;

use pgxc_cluster::hash::hash_int4;
use pgxc_common::SqlState;
use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::CoordSession;
use pgxc_datanode::gtm_source::GtmTxnSource;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sql::types::Value;
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};
use tokio::net::TcpListener;

struct Cluster {
    _gtm: GtmServer,
    coords: Vec<Arc<Coordinator>>,
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

async fn cluster(datanodes: usize, coordinators: usize) -> Cluster {
    let gtm = GtmServer::start(ServerConfig::new(1, "127.0.0.1:0"), Replication::Memory)
        .await
        .expect("gtm starts");
    let addrs = vec![gtm.local_addr().to_string()];
    let mut dns = Vec::new();
    for i in 1..=datanodes {
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
    // Each coordinator's catalog engine also serves the coordinator protocol, for its peers' DDL.
    let mut cns = Vec::new();
    for i in 1..=coordinators {
        let client = GtmClient::connect(addrs.clone(), ClientOptions::default())
            .await
            .expect("gtm client");
        let name = format!("cn{i}");
        let eng = engine(&client, &name).await;
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        tokio::spawn(pgxc_datanode::server::serve(
            l,
            Arc::clone(&eng),
            name.clone(),
        ));
        cns.push((name, addr, eng, client));
    }
    let all: Vec<(String, String)> = cns
        .iter()
        .map(|(n, a, _, _)| (n.clone(), a.clone()))
        .collect();
    let mut coords = Vec::new();
    for (name, _, eng, client) in cns {
        let cfg = CoordinatorConfig {
            peers: all.iter().filter(|(n, _)| *n != name).cloned().collect(),
            name,
            datanodes: dns.clone(),
            preferred: None,
            max_pool_size: 8,
        };
        coords.push(
            Coordinator::start(cfg, eng, client)
                .await
                .expect("coordinator"),
        );
    }
    Cluster { _gtm: gtm, coords }
}

async fn q(s: &mut CoordSession, sql: &str) -> Vec<Vec<Value>> {
    match s.execute(sql).await {
        Ok(mut r) => r.pop().map(|r| r.rows).unwrap_or_default(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn code(s: &mut CoordSession, sql: &str) -> SqlState {
    match s.execute(sql).await {
        Ok(r) => panic!("{sql} succeeded: {r:?}"),
        Err(e) => e.code,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int2(i) => *i as i64,
        Value::Int4(i) => *i as i64,
        Value::Int8(i) => *i,
        Value::Numeric(n) => n.to_text().parse().expect("integral numeric"),
        other => panic!("not an integer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_behaves_as_one_database() {
    let c = cluster(2, 2).await;
    let mut s1 = CoordSession::new(&c.coords[0]).expect("session");
    let mut s2 = CoordSession::new(&c.coords[1]).expect("session");

    // DDL everywhere; default distribution: hash on the primary key.
    q(
        &mut s1,
        "CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)",
    )
    .await;
    let values: Vec<String> = (1..=100).map(|i| format!("({i}, 100)")).collect();
    let r = s1
        .execute(&format!("INSERT INTO acc VALUES {}", values.join(", ")))
        .await
        .expect("insert");
    assert_eq!(r[0].tag, "INSERT 0 100");

    // Rows live where PostgreSQL's hashint4 says: node = hash mod 2.
    let on_dn1 = q(&mut s1, "EXECUTE DIRECT ON (dn1) 'SELECT id FROM acc'").await;
    let on_dn2 = q(&mut s1, "EXECUTE DIRECT ON (dn2) 'SELECT id FROM acc'").await;
    assert_eq!(on_dn1.len() + on_dn2.len(), 100);
    assert!(!on_dn1.is_empty() && !on_dn2.is_empty());
    for row in &on_dn1 {
        assert_eq!(hash_int4(int(&row[0]) as i32) % 2, 0);
    }
    for row in &on_dn2 {
        assert_eq!(hash_int4(int(&row[0]) as i32) % 2, 1);
    }

    // Both coordinators see one database: aggregate (evaluated on the coordinator), point
    // lookups (shipped to one node), plain scans (concatenated).
    for s in [&mut s1, &mut s2] {
        let r = q(s, "SELECT count(*), sum(bal) FROM acc").await;
        assert_eq!((int(&r[0][0]), int(&r[0][1])), (100, 10_000));
        let r = q(s, "SELECT bal FROM acc WHERE id = 42").await;
        assert_eq!(r, vec![vec![Value::Int4(100)]]);
        assert_eq!(q(s, "SELECT id FROM acc WHERE bal = 100").await.len(), 100);
    }

    // A transfer across both datanodes commits with two-phase commit; the other coordinator
    // sees both halves or neither.
    let (a, b) = (int(&on_dn1[0][0]), int(&on_dn2[0][0]));
    q(&mut s1, "BEGIN").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal - 30 WHERE id = {a}"),
    )
    .await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 30 WHERE id = {b}"),
    )
    .await;
    let r = q(&mut s2, "SELECT sum(bal) FROM acc").await;
    assert_eq!(int(&r[0][0]), 10_000, "uncommitted transfer invisible");
    q(&mut s1, "COMMIT").await;
    let r = q(
        &mut s2,
        &format!("SELECT bal FROM acc WHERE id IN ({a}, {b}) ORDER BY id"),
    )
    .await;
    let mut got: Vec<i64> = r.iter().map(|r| int(&r[0])).collect();
    got.sort();
    assert_eq!(got, vec![70, 130]);
    assert_eq!(
        int(&q(&mut s2, "SELECT sum(bal) FROM acc").await[0][0]),
        10_000
    );

    // An error on one node rolls back the whole transaction, on every node.
    q(&mut s1, "BEGIN").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal - 1 WHERE id = {a}"),
    )
    .await;
    assert_eq!(
        code(&mut s1, &format!("INSERT INTO acc VALUES ({b}, 1)")).await,
        SqlState::UniqueViolation
    );
    assert_eq!(
        code(&mut s1, "SELECT 1").await,
        SqlState::InFailedSqlTransaction
    );
    assert_eq!(
        s1.execute("COMMIT").await.expect("commit")[0].tag,
        "ROLLBACK"
    );
    assert_eq!(
        int(&q(&mut s1, "SELECT sum(bal) FROM acc").await[0][0]),
        10_000
    );

    // XC's rules: the distribution key cannot be updated.
    assert_eq!(
        code(&mut s1, "UPDATE acc SET id = id + 1000 WHERE id = 1").await,
        SqlState::FeatureNotSupported
    );

    // PREPARE TRANSACTION on one coordinator, COMMIT PREPARED on the other.
    q(&mut s1, "BEGIN").await;
    q(&mut s1, &format!("UPDATE acc SET bal = 0 WHERE id = {a}")).await;
    q(&mut s1, &format!("UPDATE acc SET bal = 0 WHERE id = {b}")).await;
    assert_eq!(
        s1.execute("PREPARE TRANSACTION 'move_all'")
            .await
            .expect("prepare")[0]
            .tag,
        "PREPARE TRANSACTION"
    );
    assert_eq!(
        int(&q(&mut s2, "SELECT sum(bal) FROM acc").await[0][0]),
        10_000
    );
    q(&mut s2, "COMMIT PREPARED 'move_all'").await;
    assert_eq!(
        int(&q(&mut s1, "SELECT sum(bal) FROM acc").await[0][0]),
        10_000 - 200
    );
    assert_eq!(
        code(&mut s2, "COMMIT PREPARED 'move_all'").await,
        SqlState::UndefinedObject
    );

    // Replicated tables: every node holds every row; joins with them are evaluated correctly.
    q(
        &mut s2,
        "CREATE TABLE item (i_id int PRIMARY KEY, name text) DISTRIBUTE BY REPLICATION",
    )
    .await;
    q(&mut s2, "INSERT INTO item VALUES (1, 'one'), (2, 'two')").await;
    for dn in ["dn1", "dn2"] {
        let r = q(
            &mut s1,
            &format!("EXECUTE DIRECT ON ({dn}) 'SELECT count(*) FROM item'"),
        )
        .await;
        assert_eq!(int(&r[0][0]), 2);
    }
    let r = q(
        &mut s1,
        "SELECT name, count(*) FROM acc JOIN item ON acc.id = item.i_id GROUP BY name ORDER BY name",
    )
    .await;
    assert_eq!(
        r,
        vec![
            vec![Value::Text("one".into()), Value::Int8(1)],
            vec![Value::Text("two".into()), Value::Int8(1)]
        ]
    );
    let r = q(&mut s1, "UPDATE item SET name = 'uno' WHERE i_id = 1").await;
    assert!(r.is_empty());
    for dn in ["dn1", "dn2"] {
        let r = q(
            &mut s1,
            &format!("EXECUTE DIRECT ON ({dn}) 'SELECT name FROM item WHERE i_id = 1'"),
        )
        .await;
        assert_eq!(r, vec![vec![Value::Text("uno".into())]]);
    }

    // DDL is transactional cluster-wide.
    q(&mut s1, "BEGIN").await;
    q(&mut s1, "CREATE TABLE gone (k int)").await;
    q(&mut s1, "INSERT INTO gone VALUES (1), (2), (3)").await;
    assert_eq!(int(&q(&mut s1, "SELECT count(*) FROM gone").await[0][0]), 3);
    q(&mut s1, "ROLLBACK").await;
    assert_eq!(
        code(&mut s2, "SELECT * FROM gone").await,
        SqlState::UndefinedTable
    );
    assert_eq!(
        code(&mut s1, "EXECUTE DIRECT ON (dn2) 'SELECT * FROM gone'").await,
        SqlState::UndefinedTable
    );

    // Savepoints reach every node, also nodes the transaction touches after the savepoint.
    q(&mut s1, "BEGIN").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 1 WHERE id = {a}"),
    )
    .await;
    q(&mut s1, "SAVEPOINT sp").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 1000 WHERE id = {b}"),
    )
    .await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 1000 WHERE id = {a}"),
    )
    .await;
    assert_eq!(code(&mut s1, "SELECT 1/0").await, SqlState::DivisionByZero);
    q(&mut s1, "ROLLBACK TO SAVEPOINT sp").await;
    q(&mut s1, "RELEASE SAVEPOINT sp").await;
    assert_eq!(
        code(&mut s1, "ROLLBACK TO SAVEPOINT sp").await,
        SqlState::InvalidSavepointSpecification
    );
    q(&mut s1, "ROLLBACK").await;
    q(&mut s1, "BEGIN").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 1 WHERE id = {a}"),
    )
    .await;
    q(&mut s1, "SAVEPOINT sp").await;
    q(
        &mut s1,
        &format!("UPDATE acc SET bal = bal + 1000 WHERE id = {b}"),
    )
    .await;
    q(&mut s1, "ROLLBACK TO SAVEPOINT sp").await;
    q(&mut s1, "COMMIT").await;
    assert_eq!(
        int(&q(&mut s2, "SELECT sum(bal) FROM acc").await[0][0]),
        10_000 - 200 + 1,
        "only the work before the savepoint committed"
    );

    // Views read through a coordinator see every datanode's rows (evaluated over the base tables).
    q(
        &mut s1,
        "CREATE VIEW rich AS SELECT id, bal FROM acc WHERE bal >= 100",
    )
    .await;
    q(
        &mut s1,
        "CREATE VIEW rich_count AS SELECT count(*) AS n FROM rich",
    )
    .await;
    let direct = q(&mut s2, "SELECT count(*) FROM acc WHERE bal >= 100").await;
    assert_eq!(int(&direct[0][0]), 98, "{direct:?}");
    assert_eq!(int(&q(&mut s2, "SELECT n FROM rich_count").await[0][0]), 98);
    assert_eq!(
        q(&mut s1, "SELECT id FROM rich ORDER BY id").await.len(),
        98
    );
    assert_eq!(
        code(&mut s1, "UPDATE rich SET bal = 0").await,
        SqlState::FeatureNotSupported
    );

    // Nothing is left in doubt.
    let report = c.coords[0]
        .resolve_in_doubt(|_| false, true)
        .await
        .expect("resolver");
    assert!(
        report.left.is_empty() && report.committed.is_empty(),
        "{report:?}"
    );
}

/// `pgxc clean`: an implicit two-phase transaction whose coordinator died after the PREPAREs and
/// before deciding is reported, then rolled back everywhere from the GTM's record; a user's
/// `PREPARE TRANSACTION` is only reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgxc_clean_finishes_what_a_dead_coordinator_left() {
    use pgxc_cluster::proto::{DnIsolation, DnRequest};
    use pgxc_coordinator::clean::{clean, status, AddrNodes};
    use pgxc_datanode::client::DnConn;

    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    q(&mut s, "CREATE TABLE k (id int PRIMARY KEY, v int)").await;
    q(
        &mut s,
        "INSERT INTO k VALUES (1, 0), (2, 0), (3, 0), (4, 0)",
    )
    .await;
    let coord = &c.coords[0];
    let gtm = coord.gtm();
    let addrs: std::collections::BTreeMap<String, String> = coord_datanodes(coord);
    // A coordinator's first phase, then it "dies": writes on both datanodes, prepared, undecided.
    let (gxid, snap) = gtm.begin_snapshot().await.expect("gxid");
    let gid = format!("_pgxc_T{}", gxid.0);
    gtm.prepare(gxid, &gid, addrs.keys().cloned().collect())
        .await
        .expect("record");
    for (name, addr) in &addrs {
        let mut dn = DnConn::connect(name, addr, "dead", vec![])
            .await
            .expect("dn");
        dn.call(DnRequest::Begin {
            gxid,
            isolation: DnIsolation::ReadCommitted,
            read_only: false,
        })
        .await
        .expect("begin");
        dn.call(DnRequest::Execute {
            snapshot: snap.clone(),
            sql: "UPDATE k SET v = 99".into(),
        })
        .await
        .expect("update");
        dn.call(DnRequest::Prepare { gid: gid.clone() })
            .await
            .expect("prepare");
    }
    // A user's prepared transaction, which clean must leave alone.
    q(&mut s, "BEGIN").await;
    q(&mut s, "INSERT INTO k VALUES (10, 1), (11, 1)").await;
    q(&mut s, "PREPARE TRANSACTION 'user_gid'").await;

    let nodes = AddrNodes { addrs };
    let st = status(&nodes).await;
    for r in st.values() {
        let v = r.as_ref().expect("reachable");
        assert!(v.iter().any(|(g, _)| *g == gid), "{st:?}");
    }
    let report = clean(gtm, &nodes, true).await.expect("report");
    assert_eq!(report.rolled_back, vec![gid.clone()]);
    assert_eq!(report.left, vec!["user_gid".to_string()]);
    // --no-clean changed nothing.
    assert!(status(&nodes)
        .await
        .values()
        .all(|r| r.as_ref().is_ok_and(|v| v.iter().any(|(g, _)| *g == gid))));
    let report = clean(gtm, &nodes, false).await.expect("clean");
    assert_eq!(report.rolled_back, vec![gid.clone()]);
    for r in status(&nodes).await.values() {
        let v = r.as_ref().expect("reachable");
        assert!(!v.iter().any(|(g, _)| *g == gid), "rolled back everywhere");
    }
    // The dead transaction's writes are gone; the user's still waits for COMMIT PREPARED.
    assert_eq!(
        q(&mut s, "SELECT sum(v) FROM k").await,
        vec![vec![Value::Int8(0)]]
    );
    q(&mut s, "COMMIT PREPARED 'user_gid'").await;
    assert_eq!(
        q(&mut s, "SELECT sum(v) FROM k").await,
        vec![vec![Value::Int8(2)]]
    );
}

fn coord_datanodes(coord: &Coordinator) -> std::collections::BTreeMap<String, String> {
    coord.datanode_addrs().into_iter().collect()
}
