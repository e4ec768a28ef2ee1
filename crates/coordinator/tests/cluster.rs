//! A whole cluster in one process over loopback TCP: an in-memory GTM, two datanodes serving the
//! coordinator protocol, two coordinators. Checks placement, shipping, the fallback, one- and
//! two-phase commit, prepared transactions across coordinators and error codes.
#![cfg(not(madsim))]

use std::sync::Arc;

use pgxc_cluster::hash::hash_int4;
use pgxc_common::SqlState;
use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::CoordSession;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_sql::types::Value;
use tokio::net::TcpListener;

mod common;
use common::*;

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

/// Global sequences: every coordinator's `nextval` comes from the GTM, so a serial column filled
/// through two coordinators at once never repeats a value; setval / ALTER .. RESTART through one
/// coordinator are seen through the other; DROP (and a rolled-back CREATE) removes the GTM's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_are_global() {
    let c = cluster(2, 2).await;
    let mut s1 = CoordSession::new(&c.coords[0]).expect("session");
    let s2 = CoordSession::new(&c.coords[1]).expect("session");
    let gtm = c.coords[0].gtm().clone();

    q(
        &mut s1,
        "CREATE TABLE ser (id serial PRIMARY KEY, who text NOT NULL)",
    )
    .await;
    assert!(gtm.get_sequence("public.ser_id_seq").await.is_ok());
    // Two coordinators insert at once, one row and several rows per statement.
    let fill = |s: &'static str| {
        move |mut sess: CoordSession| async move {
            for i in 0..15 {
                let sql = if i % 3 == 0 {
                    format!("INSERT INTO ser (who) VALUES ('{s}'), ('{s}'), ('{s}')")
                } else {
                    format!("INSERT INTO ser (who) VALUES ('{s}')")
                };
                sess.execute(&sql).await.expect("insert");
            }
            sess
        }
    };
    let (a, b) = tokio::join!(fill("cn1")(s1), fill("cn2")(s2));
    let (mut s1, mut s2) = (a, b);
    let r = q(
        &mut s2,
        "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM ser",
    )
    .await;
    assert_eq!(int(&r[0][0]), 50, "{r:?}");
    assert_eq!(int(&r[0][1]), 50, "all ids distinct: {r:?}");
    assert!(int(&r[0][2]) >= 1, "{r:?}");
    for who in ["cn1", "cn2"] {
        let n = q(
            &mut s1,
            &format!("SELECT count(*) FROM ser WHERE who = '{who}'"),
        )
        .await;
        assert_eq!(int(&n[0][0]), 25);
    }

    // nextval through cn1 then cn2 keeps increasing; currval is per session.
    q(&mut s2, "CREATE SEQUENCE gs").await;
    assert_eq!(int(&q(&mut s1, "SELECT nextval('gs')").await[0][0]), 1);
    assert_eq!(int(&q(&mut s2, "SELECT nextval('gs')").await[0][0]), 2);
    assert_eq!(int(&q(&mut s1, "SELECT nextval('gs')").await[0][0]), 3);
    assert_eq!(int(&q(&mut s2, "SELECT currval('gs')").await[0][0]), 2);
    assert_eq!(int(&q(&mut s1, "SELECT currval('gs')").await[0][0]), 3);
    let mut s3 = CoordSession::new(&c.coords[0]).expect("session");
    assert_eq!(
        code(&mut s3, "SELECT currval('gs')").await,
        SqlState::ObjectNotInPrerequisiteState
    );

    // setval through one coordinator is seen through the other.
    assert_eq!(
        int(&q(&mut s1, "SELECT setval('gs', 100)").await[0][0]),
        100
    );
    assert_eq!(int(&q(&mut s1, "SELECT currval('gs')").await[0][0]), 100);
    assert_eq!(int(&q(&mut s2, "SELECT nextval('gs')").await[0][0]), 101);
    // The GTM's last_value includes the values it has reserved ahead (as PostgreSQL's on-disk
    // last_value includes a cached range).
    let r = q(&mut s1, "SELECT last_value, is_called FROM gs").await;
    assert!(int(&r[0][0]) >= 101, "{r:?}");
    assert_eq!(r[0][1], Value::Bool(true));
    assert_eq!(
        code(&mut s2, "SELECT setval('gs', 0)").await,
        SqlState::NumericValueOutOfRange
    );

    // ALTER SEQUENCE through cn2 applies to the GTM's sequence.
    q(
        &mut s2,
        "ALTER SEQUENCE gs INCREMENT BY 10 RESTART WITH 500",
    )
    .await;
    assert_eq!(int(&q(&mut s1, "SELECT nextval('gs')").await[0][0]), 500);
    assert_eq!(int(&q(&mut s2, "SELECT nextval('gs')").await[0][0]), 510);
    // An ALTER without RESTART keeps going up from the GTM's position (which may skip the values
    // the GTM's leader had reserved ahead: a gap, never a repeat).
    q(&mut s1, "ALTER SEQUENCE gs INCREMENT BY 1").await;
    let v = int(&q(&mut s2, "SELECT nextval('gs')").await[0][0]);
    assert!(v > 510, "{v}");
    assert_eq!(int(&q(&mut s1, "SELECT nextval('gs')").await[0][0]), v + 1);

    // DROP SEQUENCE removes it everywhere, the GTM included.
    q(&mut s1, "DROP SEQUENCE gs").await;
    assert_eq!(
        code(&mut s2, "SELECT nextval('gs')").await,
        SqlState::UndefinedTable
    );
    assert!(gtm.get_sequence("public.gs").await.is_err());

    // A CREATE SEQUENCE whose transaction rolls back leaves nothing at the GTM.
    q(&mut s1, "BEGIN").await;
    q(&mut s1, "CREATE SEQUENCE rb START 7").await;
    assert_eq!(int(&q(&mut s1, "SELECT nextval('rb')").await[0][0]), 7);
    q(&mut s1, "ROLLBACK").await;
    assert!(gtm.get_sequence("public.rb").await.is_err());
    assert_eq!(
        code(&mut s2, "SELECT nextval('rb')").await,
        SqlState::UndefinedTable
    );
    q(&mut s2, "CREATE SEQUENCE rb START 7").await;
    assert_eq!(int(&q(&mut s1, "SELECT nextval('rb')").await[0][0]), 7);

    // DROP TABLE drops the serial column's sequence at the GTM too.
    q(&mut s2, "DROP TABLE ser").await;
    assert!(gtm.get_sequence("public.ser_id_seq").await.is_err());
    q(
        &mut s1,
        "CREATE TABLE ser (id serial PRIMARY KEY, who text NOT NULL)",
    )
    .await;
    let r = q(&mut s2, "INSERT INTO ser (who) VALUES ('x') RETURNING id").await;
    assert_eq!(int(&r[0][0]), 1, "a new serial starts over");
}

async fn plan(s: &mut CoordSession, sql: &str) -> Vec<String> {
    q(s, sql)
        .await
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => panic!("not a plan line: {other:?}"),
        })
        .collect()
}

/// EXPLAIN on a coordinator prints the route the statement takes, in Postgres-XC's shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_xc_plan_shapes() {
    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    q(
        &mut s,
        "CREATE TABLE tab1 (val int, val2 int) DISTRIBUTE BY HASH (val)",
    )
    .await;
    q(
        &mut s,
        "CREATE TABLE rep (val int, val2 int) DISTRIBUTE BY REPLICATION",
    )
    .await;
    let fqs = "Data Node Scan on \"__REMOTE_FQS_QUERY__\"";
    // Shipped whole to both nodes (no key equality).
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF) SELECT * FROM tab1 WHERE val2 = 5"
        )
        .await,
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    assert_eq!(
        plan(&mut s, "EXPLAIN VERBOSE SELECT * FROM tab1 WHERE val2 = 5").await,
        vec![
            format!("{fqs}  (cost=0.00..0.00 rows=0 width=0)"),
            "  Output: tab1.val, tab1.val2".into(),
            "  Node/s: dn1, dn2".into(),
            "  Remote query: SELECT * FROM tab1 WHERE val2 = 5".into(),
        ]
    );
    // A key equality prunes to the node the hash places key 1 on.
    let node = format!("dn{}", hash_int4(1) % 2 + 1);
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT val, val2 + 1 AS x FROM tab1 t WHERE val = 1"
        )
        .await,
        vec![
            fqs.to_string(),
            "  Output: t.val, t.val2 + 1".into(),
            format!("  Node/s: {node}"),
            "  Remote query: SELECT val, val2 + 1 AS x FROM tab1 t WHERE val = 1".into(),
        ]
    );
    // A replicated table is read from one node.
    assert_eq!(
        plan(&mut s, "EXPLAIN (COSTS OFF) SELECT * FROM rep").await,
        vec![fqs, "  Node/s: dn1"]
    );
    // A plain aggregate: partial on the datanodes, combined here.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT count(*), max(val) FROM tab1"
        )
        .await,
        vec![
            "Aggregate",
            "  Output: pg_catalog.sum((count(*))), pg_catalog.max((max(tab1.val)))",
            "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "        Output: count(*), max(tab1.val)",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT count(*), max(val) FROM tab1",
        ]
    );
    // GROUP BY a non-distribution column: partial aggregation on the datanodes, the final step
    // here (XC's remote group query).
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT val2, sum(val) FROM tab1 GROUP BY val2"
        )
        .await,
        vec![
            "HashAggregate",
            "  Output: tab1.val2, sum((sum(tab1.val)))",
            "  Group Key: tab1.val2",
            "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "        Output: tab1.val2, sum(tab1.val)",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT val2 AS pgxc_g0, sum(val) AS pgxc_p0 FROM tab1 GROUP BY val2",
        ]
    );
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT val2, count(DISTINCT val), avg(val) FROM tab1 \
             GROUP BY val2 ORDER BY 2 DESC LIMIT 3"
        )
        .await,
        // DISTINCT aggregates: the nodes group by the argument too (deduplicating it), the
        // coordinator counts the distinct values; avg from the partial sums and counts.
        vec![
            "Limit",
            "  Output: tab1.val2, count(DISTINCT tab1.val), (sum((sum(tab1.val))) / \
             NULLIF((sum((count(tab1.val))) = (0)::numeric), sum((count(tab1.val)))))",
            "  ->  Sort",
            "        Sort Key: count(DISTINCT tab1.val) DESC",
            "        ->  HashAggregate",
            "              Output: tab1.val2, count(DISTINCT tab1.val), sum((sum(tab1.val))), \
             sum((count(tab1.val)))",
            "              Group Key: tab1.val2",
            "              ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "                    Output: tab1.val2, sum(tab1.val), count(tab1.val), tab1.val",
            "                    Node/s: dn1, dn2",
            "                    Remote query: SELECT val2 AS pgxc_g0, sum(val) AS pgxc_p0, \
             count(val) AS pgxc_p1, val AS pgxc_d0 FROM tab1 GROUP BY val2, val",
        ]
    );
    // The seed's aggregation on a replicated table: shipped whole to one node.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT sum(val) FROM rep GROUP BY val2"
        )
        .await,
        vec![
            fqs,
            "  Output: sum(rep.val)",
            "  Node/s: dn1",
            "  Remote query: SELECT sum(val) FROM rep GROUP BY val2",
        ]
    );
    // With enable_remotegroup off: evaluated here over a remote scan of the table.
    q(&mut s, "SET enable_remotegroup = off").await;
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT val2, sum(val) FROM tab1 GROUP BY val2"
        )
        .await,
        vec![
            "HashAggregate",
            "  Output: val2, sum(val)",
            "  Group Key: val2",
            "  ->  Data Node Scan on tab1",
            "        Output: val, val2",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT \"val\", \"val2\" FROM public.tab1",
        ]
    );
    q(&mut s, "RESET enable_remotegroup").await;
    // A plain DISTINCT is a GROUP BY on its output: each node deduplicates its rows, the
    // coordinator the union (the remote group query's shape).
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT DISTINCT val2 FROM tab1"
        )
        .await,
        vec![
            "HashAggregate",
            "  Output: tab1.val2",
            "  Group Key: tab1.val2",
            "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "        Output: tab1.val2",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT val2 AS pgxc_g0 FROM tab1 GROUP BY val2",
        ]
    );
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT DISTINCT val2, val2 + 1 AS x FROM tab1 \
             ORDER BY val2 LIMIT 2"
        )
        .await,
        vec![
            "Limit",
            "  Output: tab1.val2, (tab1.val2 + 1)",
            "  ->  Sort",
            "        Sort Key: tab1.val2",
            "        ->  HashAggregate",
            "              Output: tab1.val2, (tab1.val2 + 1)",
            "              Group Key: tab1.val2, (tab1.val2 + 1)",
            "              ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "                    Output: tab1.val2, tab1.val2 + 1",
            "                    Node/s: dn1, dn2",
            "                    Remote query: SELECT val2 AS pgxc_g0, val2 + 1 AS pgxc_g1 FROM tab1 \
             GROUP BY val2, val2 + 1",
        ]
    );
    // DISTINCT over the distribution key: equal rows live on one node, shipped whole.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF) SELECT DISTINCT val2, val FROM tab1"
        )
        .await,
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    // The fallback's remote scans fetch only the columns the statement reads (plus NOT NULL
    // ones, which the coordinator's copy of the table needs a value in).
    q(
        &mut s,
        "CREATE TABLE wide (k int, a int, b text, c int NOT NULL, d text) DISTRIBUTE BY HASH (k)",
    )
    .await;
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT b FROM wide WHERE a IN (SELECT val2 FROM tab1)"
        )
        .await,
        vec![
            "Data Node Scan on wide",
            "  Output: k, a, b, c, d",
            "  Node/s: dn1, dn2",
            "  Remote query: SELECT \"a\", \"b\", \"c\" FROM public.wide",
            "  Filter: (a = ANY (ARRAY[]))",
        ]
    );
    q(
        &mut s,
        "INSERT INTO wide VALUES (1, 5, 'x', 0, 'p'), (2, 6, 'y', 0, 'q'), (3, 7, 'z', 0, 'r')",
    )
    .await;
    q(
        &mut s,
        "INSERT INTO tab1 VALUES (100, 5), (101, 7), (102, 7)",
    )
    .await;
    assert_eq!(
        q(
            &mut s,
            "SELECT b, d IS NULL FROM wide w WHERE a IN (SELECT val2 FROM tab1) ORDER BY b"
        )
        .await,
        vec![
            vec![Value::Text("x".into()), Value::Bool(false)],
            vec![Value::Text("z".into()), Value::Bool(false)],
        ]
    );
    q(&mut s, "DELETE FROM tab1 WHERE val >= 100").await;
    q(&mut s, "DROP TABLE wide").await;
    // ORDER BY and LIMIT pushed under the remote scan (each node's first limit + offset rows
    // in order, the key not in the output as a hidden column), the sorted streams merged here;
    // each switch keeps its part here.
    let sorted = "EXPLAIN (COSTS OFF, VERBOSE) SELECT val FROM tab1 t ORDER BY val2 DESC, 1 LIMIT 2 OFFSET 1";
    assert_eq!(
        plan(&mut s, sorted).await,
        vec![
            "Limit",
            "  Output: val, val2",
            "  ->  Merge Append",
            "        Output: val, val2",
            "        Sort Key: val2 DESC, val",
            "        ->  Data Node Scan on tab1 t",
            "              Output: val, val2",
            "              Node/s: dn1, dn2",
            "              Remote query: SELECT val, val2 FROM public.tab1 AS \"t\" \
             ORDER BY 2 DESC, 1 LIMIT 3",
        ]
    );
    q(&mut s, "SET enable_remotelimit = off").await;
    assert_eq!(
        plan(&mut s, sorted).await,
        vec![
            "Limit",
            "  Output: val, val2",
            "  ->  Merge Append",
            "        Output: val, val2",
            "        Sort Key: val2 DESC, val",
            "        ->  Data Node Scan on tab1 t",
            "              Output: val, val2",
            "              Node/s: dn1, dn2",
            "              Remote query: SELECT val, val2 FROM public.tab1 AS \"t\" \
             ORDER BY 2 DESC, 1",
        ]
    );
    q(&mut s, "SET enable_remotesort = off").await;
    assert_eq!(
        plan(&mut s, sorted).await,
        vec![
            "Limit",
            "  Output: val, val2",
            "  ->  Sort",
            "        Sort Key: val2 DESC, val",
            "        ->  Data Node Scan on tab1 t",
            "              Output: val, val2",
            "              Node/s: dn1, dn2",
            "              Remote query: SELECT \"val\", \"val2\" FROM public.tab1",
        ]
    );
    q(&mut s, "RESET enable_remotesort").await;
    q(&mut s, "RESET enable_remotelimit").await;
    // The seed's join on the distribution key: shipped whole; with enable_remotejoin off,
    // joined here over remote scans.
    q(
        &mut s,
        "CREATE TABLE tab2 (val int, val2 int) DISTRIBUTE BY HASH (val)",
    )
    .await;
    let join = "EXPLAIN (COSTS OFF) SELECT * FROM tab1, tab2 WHERE tab1.val = tab2.val";
    assert_eq!(plan(&mut s, join).await, vec![fqs, "  Node/s: dn1, dn2"]);
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT tab1.val2, count(*) FROM tab1, tab2 \
             WHERE tab1.val = tab2.val GROUP BY tab1.val2"
        )
        .await,
        // A colocated join grouped by a non-key column: joined and partially aggregated on the
        // datanodes, finished here.
        vec![
            "HashAggregate",
            "  Output: tab1.val2, sum((count(*)))",
            "  Group Key: tab1.val2",
            "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "        Output: tab1.val2, count(*)",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT tab1.val2 AS pgxc_g0, count(*) AS pgxc_p0 FROM tab1, tab2 \
             WHERE tab1.val = tab2.val GROUP BY tab1.val2",
        ]
    );
    // A plain DISTINCT over a colocated join: joined and deduplicated on the datanodes.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT DISTINCT tab1.val2 FROM tab1, tab2 \
             WHERE tab1.val = tab2.val"
        )
        .await,
        vec![
            "HashAggregate",
            "  Output: tab1.val2",
            "  Group Key: tab1.val2",
            "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
            "        Output: tab1.val2",
            "        Node/s: dn1, dn2",
            "        Remote query: SELECT tab1.val2 AS pgxc_g0 FROM tab1, tab2 \
             WHERE tab1.val = tab2.val GROUP BY tab1.val2",
        ]
    );
    q(&mut s, "SET enable_remotejoin = off").await;
    assert_eq!(
        plan(&mut s, join).await,
        vec![
            "Nested Loop",
            "  Join Filter: (tab1.val = tab2.val)",
            "  ->  Data Node Scan on tab1",
            "        Node/s: dn1, dn2",
            "  ->  Data Node Scan on tab2",
            "        Node/s: dn1, dn2",
        ]
    );
    q(&mut s, "RESET enable_remotejoin").await;
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF) SELECT * FROM tab1, rep WHERE tab1.val = rep.val"
        )
        .await,
        // Joined with a replicated table that every node holds: shipped whole (XC's rule).
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    // Not on the key, with enable_remotejoin off (on: the rows are redistributed between the
    // datanodes, `tests/distjoin.rs`): joined here over two remote scans.
    q(&mut s, "SET enable_remotejoin = off").await;
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF) SELECT * FROM tab1 a, tab1 b WHERE a.val2 = b.val2"
        )
        .await,
        vec![
            "Nested Loop",
            "  Join Filter: (a.val2 = b.val2)",
            "  ->  Data Node Scan on tab1 a",
            "        Node/s: dn1, dn2",
            "  ->  Data Node Scan on tab1 b",
            "        Node/s: dn1, dn2",
        ]
    );
    q(&mut s, "RESET enable_remotejoin").await;
    // Writes shipped to the nodes they touch.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) UPDATE tab1 SET val2 = 0 WHERE val = 1"
        )
        .await,
        vec![
            fqs.to_string(),
            format!("  Node/s: {node}"),
            "  Remote query: UPDATE tab1 SET val2 = 0 WHERE val = 1".into(),
        ]
    );
    assert_eq!(
        plan(&mut s, "EXPLAIN (COSTS OFF) DELETE FROM tab1").await,
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) INSERT INTO tab1 VALUES (1, 2)"
        )
        .await,
        vec![
            fqs.to_string(),
            format!("  Node/s: {node}"),
            "  Remote query: INSERT INTO tab1 VALUES (1, 2)".into()
        ]
    );
    // Keys on both nodes, or a key the text does not give: every node.
    let other = (2..100)
        .find(|k| hash_int4(*k) % 2 != hash_int4(1) % 2)
        .expect("a key on the other node");
    assert_eq!(
        plan(
            &mut s,
            &format!("EXPLAIN (COSTS OFF) INSERT INTO tab1 VALUES (1, 2), ({other}, 3)")
        )
        .await,
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF) INSERT INTO tab1 (val2) VALUES (2)"
        )
        .await,
        vec![fqs, "  Node/s: dn1, dn2"]
    );
    // No distributed table: the coordinator's own plan. EXPLAIN ran nothing.
    assert_eq!(
        plan(&mut s, "EXPLAIN (COSTS OFF) SELECT 1").await,
        vec!["Result"]
    );
    assert_eq!(
        q(&mut s, "SELECT count(*) FROM tab1").await,
        vec![vec![Value::Int8(0)]]
    );
    assert_eq!(
        code(&mut s, "EXPLAIN ANALYZE SELECT * FROM tab1").await,
        SqlState::FeatureNotSupported
    );
}

/// Start one more datanode on the cluster's GTM; returns its address.
async fn extra_datanode(c: &Cluster, name: &str) -> String {
    let client = GtmClient::connect(
        vec![c.gtm.local_addr().to_string()],
        ClientOptions::default(),
    )
    .await
    .expect("gtm client");
    let eng = engine(&client, name).await;
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(pgxc_datanode::server::serve(l, eng, name.to_string()));
    addr
}

fn texts(rows: &[Vec<Value>]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Value::Text(t) => t.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => "NULL".into(),
                    other => int(other).to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// XC's cluster catalog on a coordinator: pgxc_node / pgxc_group, CREATE / ALTER / DROP NODE
/// changing the coordinator's nodes at run time (and persisting), NODE GROUPs for TO GROUP,
/// pgxc_node_str(), pgxc_pool_check() / pgxc_pool_reload(), pg_prepared_xacts cluster-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_catalog_and_node_ddl() {
    let c = cluster(2, 2).await;
    let mut s1 = CoordSession::new(&c.coords[0]).expect("session");
    let mut s2 = CoordSession::new(&c.coords[1]).expect("session");

    let r = q(
        &mut s1,
        "SELECT node_name, node_type, nodeis_primary, nodeis_preferred FROM pgxc_node ORDER BY node_name",
    )
    .await;
    assert_eq!(
        texts(&r),
        vec![
            "cn1|C|false|false",
            "cn2|C|false|false",
            "dn1|D|false|false",
            "dn2|D|false|false"
        ]
    );
    let r = s2
        .execute("SELECT pgxc_node_str()")
        .await
        .expect("node str");
    assert_eq!(r[0].columns[0].0, "pgxc_node_str");
    assert_eq!(r[0].rows, vec![vec![Value::Text("cn2".into())]]);
    assert_eq!(
        q(&mut s1, "SELECT pgxc_pool_check()").await,
        vec![vec![Value::Bool(true)]]
    );

    // A datanode added at run time, registered on every coordinator (as `pgxc ctl add` does).
    q(&mut s1, "CREATE TABLE old_t (id int PRIMARY KEY)").await;
    q(&mut s1, "CREATE TABLE old_gone (id int)").await;
    q(&mut s1, "DROP TABLE old_gone").await;
    let addr = extra_datanode(&c, "dn3").await;
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    for s in [&mut s1, &mut s2] {
        q(
            s,
            &format!("CREATE NODE dn3 WITH (TYPE = 'datanode', HOST = '{host}', PORT = {port})"),
        )
        .await;
    }
    assert_eq!(
        code(
            &mut s1,
            "CREATE NODE dn3 WITH (TYPE = 'datanode', HOST = 'x', PORT = 1)"
        )
        .await,
        SqlState::DuplicateObject
    );
    let r = q(
        &mut s2,
        "SELECT node_type, node_host, node_port FROM pgxc_node WHERE node_name = 'dn3'",
    )
    .await;
    assert_eq!(texts(&r), vec![format!("D|{host}|{port}")]);
    assert_eq!(
        q(&mut s2, "SELECT pgxc_pool_check()").await,
        vec![vec![Value::Bool(true)]]
    );
    // It got the catalog when it was registered: DDL on older tables reaches it too.
    assert_eq!(
        q(
            &mut s1,
            "EXECUTE DIRECT ON (dn3) 'SELECT count(*) FROM old_t'"
        )
        .await,
        vec![vec![Value::Int8(0)]]
    );
    assert_eq!(
        code(&mut s1, "EXECUTE DIRECT ON (dn3) 'SELECT * FROM old_gone'").await,
        SqlState::UndefinedTable
    );
    q(&mut s2, "DROP TABLE old_t").await;
    // New tables are placed on it; both coordinators reach it.
    q(&mut s1, "CREATE TABLE t3 (id int PRIMARY KEY, v int)").await;
    let values: Vec<String> = (1..=60).map(|i| format!("({i}, 1)")).collect();
    q(
        &mut s2,
        &format!("INSERT INTO t3 VALUES {}", values.join(", ")),
    )
    .await;
    let on3 = q(&mut s1, "EXECUTE DIRECT ON (dn3) 'SELECT count(*) FROM t3'").await;
    assert!(int(&on3[0][0]) > 0, "{on3:?}");
    assert_eq!(
        q(&mut s1, "SELECT count(*), sum(v) FROM t3").await,
        vec![vec![Value::Int8(60), Value::Int8(60)]]
    );
    // pgxc_node persists: a coordinator restarted on the same catalog with its old
    // configuration still knows dn3.
    let again = Coordinator::start(
        CoordinatorConfig {
            name: "cn1".into(),
            datanodes: c.coords[0]
                .datanode_addrs()
                .into_iter()
                .filter(|(n, _)| n != "dn3")
                .collect(),
            peers: vec![],
            preferred: None,
            max_pool_size: 2,
        },
        Arc::clone(c.coords[0].engine()),
        c.coords[0].gtm().clone(),
    )
    .await
    .expect("restart");
    assert_eq!(again.datanode_names(), vec!["dn1", "dn2", "dn3"]);
    assert_eq!(again.peer_names(), vec!["cn2"]);

    // DROP NODE: refused while a table is distributed on it.
    assert_eq!(
        code(&mut s1, "DROP NODE dn3").await,
        SqlState::DependentObjectsStillExist
    );
    assert_eq!(
        code(&mut s1, "DROP NODE cn1").await,
        SqlState::ObjectNotInPrerequisiteState
    );
    q(&mut s1, "DROP TABLE t3").await;
    for s in [&mut s1, &mut s2] {
        q(s, "DROP NODE dn3").await;
    }
    q(&mut s1, "DROP NODE IF EXISTS dn3").await;
    assert_eq!(
        code(&mut s1, "DROP NODE dn3").await,
        SqlState::UndefinedObject
    );
    assert_eq!(
        code(&mut s1, "EXECUTE DIRECT ON (dn3) 'SELECT 1'").await,
        SqlState::UndefinedObject
    );
    assert_eq!(c.coords[0].datanode_names(), vec!["dn1", "dn2"]);
    q(&mut s1, "BEGIN").await;
    assert_eq!(
        code(&mut s1, "CREATE NODE dn4 WITH (TYPE = 'datanode')").await,
        SqlState::ActiveSqlTransaction
    );
    q(&mut s1, "ROLLBACK").await;

    // ALTER NODE; pgxc_pool_check() notices pgxc_node changed under the pool, reload fixes it.
    q(&mut s1, "ALTER NODE dn2 WITH (PREFERRED)").await;
    assert_eq!(c.coords[0].preferred().as_deref(), Some("dn2"));
    let eng = Arc::clone(c.coords[0].engine());
    tokio::task::spawn_blocking(move || {
        eng.session()
            .execute(
                "UPDATE pgxc.pgxc_node_rows SET nodeis_preferred = false WHERE node_name = 'dn2'",
            )
            .map(|_| ())
    })
    .await
    .expect("join")
    .expect("catalog update");
    assert_eq!(
        q(&mut s1, "SELECT pgxc_pool_check()").await,
        vec![vec![Value::Bool(false)]]
    );
    assert_eq!(
        q(&mut s1, "SELECT pgxc_pool_reload()").await,
        vec![vec![Value::Bool(true)]]
    );
    assert_eq!(
        q(&mut s1, "SELECT pgxc_pool_check()").await,
        vec![vec![Value::Bool(true)]]
    );
    assert_eq!(c.coords[0].preferred(), None);

    // Node groups: TO GROUP places a table on the group's datanodes.
    q(&mut s1, "CREATE NODE GROUP g1 WITH (dn2)").await;
    assert_eq!(
        code(&mut s1, "CREATE NODE GROUP g2 WITH (dn9)").await,
        SqlState::UndefinedObject
    );
    let r = q(&mut s1, "SELECT group_name, group_members FROM pgxc_group").await;
    assert_eq!(texts(&r), vec!["g1|dn2"]);
    q(
        &mut s1,
        "CREATE TABLE tg (a int) DISTRIBUTE BY REPLICATION TO GROUP g1",
    )
    .await;
    q(&mut s1, "INSERT INTO tg VALUES (1), (2)").await;
    let r = q(&mut s1, "EXECUTE DIRECT ON (dn2) 'SELECT count(*) FROM tg'").await;
    assert_eq!(int(&r[0][0]), 2);
    let r = q(&mut s1, "EXECUTE DIRECT ON (dn1) 'SELECT count(*) FROM tg'").await;
    assert_eq!(int(&r[0][0]), 0);
    assert_eq!(
        code(&mut s1, "DROP NODE dn2").await,
        SqlState::DependentObjectsStillExist
    );
    q(&mut s1, "DROP TABLE tg").await;
    q(&mut s1, "DROP NODE GROUP g1").await;
    assert_eq!(
        code(&mut s1, "DROP NODE GROUP g1").await,
        SqlState::UndefinedObject
    );

    // pg_prepared_xacts lists the cluster's prepared transactions on any coordinator.
    q(&mut s1, "CREATE TABLE px (id int PRIMARY KEY)").await;
    q(&mut s1, "BEGIN").await;
    q(&mut s1, "INSERT INTO px VALUES (1), (2), (3)").await;
    q(&mut s1, "PREPARE TRANSACTION 'px_gid'").await;
    let r = q(
        &mut s2,
        "SELECT gid, database FROM pg_prepared_xacts WHERE gid = 'px_gid'",
    )
    .await;
    assert_eq!(texts(&r), vec!["px_gid|pgxc"]);
    q(&mut s2, "COMMIT PREPARED 'px_gid'").await;
    assert!(q(&mut s1, "SELECT gid FROM pg_catalog.pg_prepared_xacts")
        .await
        .is_empty());
    assert_eq!(
        q(&mut s1, "SELECT count(*) FROM px").await,
        vec![vec![Value::Int8(3)]]
    );
    let _ = tokio::task::spawn_blocking(move || drop(again)).await;
}

/// A coordinator started later with an empty catalog copies it from a peer (the DDL log replayed,
/// pgxc_class copied), and once registered with CREATE NODE on the others it takes part in
/// their DDL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_added_later_gets_the_catalog() {
    let c = cluster(2, 2).await;
    let mut s1 = CoordSession::new(&c.coords[0]).expect("session");
    q(
        &mut s1,
        "CREATE TABLE item (id serial PRIMARY KEY, name text) DISTRIBUTE BY HASH (id)",
    )
    .await;
    q(&mut s1, "CREATE INDEX item_name ON item (name)").await;
    q(&mut s1, "CREATE TABLE gone (a int)").await;
    q(&mut s1, "DROP TABLE gone").await;
    q(
        &mut s1,
        "CREATE VIEW named AS SELECT id, name FROM item WHERE name IS NOT NULL",
    )
    .await;
    q(
        &mut s1,
        "INSERT INTO item (name) VALUES ('a'), ('b'), (NULL)",
    )
    .await;

    // cn3: a new catalog, the running coordinators as peers.
    let client = GtmClient::connect(
        vec![c.gtm.local_addr().to_string()],
        ClientOptions::default(),
    )
    .await
    .expect("gtm client");
    let eng = catalog_engine(&client, "cn3").await;
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(pgxc_datanode::server::serve(
        l,
        Arc::clone(&eng),
        "cn3".to_string(),
    ));
    let mut peers = c.coords[1].peer_addrs();
    peers.extend(c.coords[0].peer_addrs());
    let cn3 = Coordinator::start(
        CoordinatorConfig {
            name: "cn3".into(),
            datanodes: c.coords[0].datanode_addrs(),
            peers,
            preferred: None,
            max_pool_size: 4,
        },
        eng,
        client,
    )
    .await
    .expect("cn3 starts");
    let mut s3 = CoordSession::new(&cn3).expect("session");
    assert_eq!(
        q(&mut s3, "SELECT count(*) FROM item").await,
        vec![vec![Value::Int8(3)]]
    );
    assert_eq!(
        q(&mut s3, "SELECT name FROM named ORDER BY name").await,
        vec![vec![Value::Text("a".into())], vec![Value::Text("b".into())]]
    );
    assert_eq!(
        code(&mut s3, "SELECT * FROM gone").await,
        SqlState::UndefinedTable
    );
    // Its serial column draws from the same GTM sequence.
    let r = q(&mut s3, "INSERT INTO item (name) VALUES ('c') RETURNING id").await;
    assert_eq!(int(&r[0][0]), 4);
    let r = q(
        &mut s3,
        "SELECT pclocatortype, pcattname FROM pgxc.pgxc_class WHERE pcrelname = 'public.item'",
    )
    .await;
    assert_eq!(texts(&r), vec!["H|id"]);

    // Registered on the others, it receives their DDL.
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut s2 = CoordSession::new(&c.coords[1]).expect("session");
    for s in [&mut s1, &mut s2] {
        q(
            s,
            &format!("CREATE NODE cn3 WITH (TYPE = 'coordinator', HOST = '{host}', PORT = {port})"),
        )
        .await;
    }
    q(&mut s2, "CREATE TABLE later (k int PRIMARY KEY)").await;
    q(&mut s3, "INSERT INTO later VALUES (1), (2)").await;
    assert_eq!(
        q(&mut s1, "SELECT count(*) FROM later").await,
        vec![vec![Value::Int8(2)]]
    );
    q(&mut s1, "DROP VIEW named").await;
    q(&mut s1, "DROP TABLE item").await;
    assert_eq!(
        code(&mut s3, "SELECT * FROM item").await,
        SqlState::UndefinedTable
    );
    drop(s3);
    let _ = tokio::task::spawn_blocking(move || drop(cn3)).await;
}

/// Joins shipped whole (XC's shippability): colocated on the distribution key, or with replicated
/// tables covering the distributed one; anything else is evaluated on the coordinator over remote
/// scans — and both give the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colocated_joins_are_shipped_whole() {
    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    for ddl in [
        "CREATE TABLE cust (c_id int PRIMARY KEY, name text) DISTRIBUTE BY HASH (c_id)",
        "CREATE TABLE ord (o_id int, o_c_id int, amount int) DISTRIBUTE BY HASH (o_c_id)",
        "CREATE TABLE other (o_id int, x int) DISTRIBUTE BY HASH (o_id)",
        "CREATE TABLE item (i_id int, title text) DISTRIBUTE BY REPLICATION",
    ] {
        q(&mut s, ddl).await;
    }
    q(
        &mut s,
        "INSERT INTO cust SELECT g, 'c' || g FROM generate_series(1, 20) g",
    )
    .await;
    q(
        &mut s,
        "INSERT INTO ord SELECT g, g % 20 + 1, g * 10 FROM generate_series(1, 60) g",
    )
    .await;
    q(
        &mut s,
        "INSERT INTO other SELECT g, g FROM generate_series(1, 60) g",
    )
    .await;
    q(
        &mut s,
        "INSERT INTO item SELECT g, 't' || g FROM generate_series(1, 60) g",
    )
    .await;
    let fqs = "Data Node Scan on \"__REMOTE_FQS_QUERY__\"";
    let pinned = format!("  Node/s: dn{}", hash_int4(7) % 2 + 1);
    let shapes: Vec<(&str, Vec<&str>)> = vec![
        // Colocated on the key: every node joins its own rows.
        (
            "SELECT c.name, o.amount FROM cust c JOIN ord o ON c.c_id = o.o_c_id",
            vec![fqs, "  Node/s: dn1, dn2"],
        ),
        // ... pinned to one node by the key: shipped whole, aggregate and all.
        (
            "SELECT c.name, sum(o.amount) FROM cust c, ord o \
             WHERE c.c_id = o.o_c_id AND c.c_id = 7 GROUP BY c.name",
            vec![fqs, pinned.as_str()],
        ),
        // With a replicated table.
        (
            "SELECT o.o_id, i.title FROM ord o JOIN item i ON i.i_id = o.o_id",
            vec![fqs, "  Node/s: dn1, dn2"],
        ),
        // Grouped by the distribution key: every group lives on one node, shipped whole.
        (
            "SELECT o_c_id, count(DISTINCT amount) FROM ord GROUP BY o_c_id HAVING count(*) > 2",
            vec![fqs, "  Node/s: dn1, dn2"],
        ),
        // A plain aggregate over a colocated join: partial counts combined here.
        (
            "SELECT count(*) FROM cust c JOIN ord o ON c.c_id = o.o_c_id",
            vec![
                "Aggregate",
                "  ->  Data Node Scan on \"__REMOTE_GROUP_QUERY__\"",
                "        Node/s: dn1, dn2",
            ],
        ),
    ];
    for (sql, want) in shapes {
        assert_eq!(
            plan(&mut s, &format!("EXPLAIN (COSTS OFF) {sql}")).await,
            want,
            "{sql}"
        );
    }
    let rows = q(
        &mut s,
        "SELECT o_c_id, count(DISTINCT amount) FROM ord GROUP BY o_c_id HAVING count(*) > 2",
    )
    .await;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| int(&r[1]) == 3), "{rows:?}");
    // Not colocated (ord.o_id is not its key), with enable_remotejoin off (on: redistributed
    // between the datanodes, `tests/distjoin.rs`): evaluated here over remote scans.
    q(&mut s, "SET enable_remotejoin = off").await;
    let p = plan(
        &mut s,
        "EXPLAIN (COSTS OFF) SELECT * FROM ord o JOIN other t ON o.o_id = t.o_id",
    )
    .await;
    assert!(
        p.iter().any(|l| l.contains("Data Node Scan on ord"))
            && p.iter().any(|l| l.contains("Data Node Scan on other")),
        "{p:?}"
    );
    // Evaluated here, each remote scan applies the WHERE conjuncts that read only its table.
    let p = plan(
        &mut s,
        "EXPLAIN (COSTS OFF, VERBOSE) SELECT * FROM ord o JOIN other t ON o.o_id = t.o_id \
         WHERE o.amount > 100 AND t.x < 10 AND o.amount + t.x > 0",
    )
    .await;
    for want in [
        "Remote query: SELECT \"o_id\", \"o_c_id\", \"amount\" FROM public.ord AS \"o\" WHERE o.amount > 100",
        "Remote query: SELECT \"o_id\", \"x\" FROM public.other AS \"t\" WHERE t.x < 10",
    ] {
        assert!(p.iter().any(|l| l.trim() == want), "{want}\n{p:#?}");
    }
    let rows = q(
        &mut s,
        "SELECT count(*) FROM ord o JOIN other t ON o.o_id = t.o_id \
         WHERE o.amount > 100 AND t.x < 10 AND o.amount + t.x > 0",
    )
    .await;
    assert_eq!(int(&rows[0][0]), 0);
    let rows = q(
        &mut s,
        "SELECT count(*) FROM ord o JOIN other t ON o.o_id = t.o_id WHERE o.amount >= 100 AND t.x < 15",
    )
    .await;
    assert_eq!(int(&rows[0][0]), 5);
    q(&mut s, "RESET enable_remotejoin").await;
    // Same answers either way.
    let rows = q(
        &mut s,
        "SELECT count(*), sum(o.amount) FROM cust c JOIN ord o ON c.c_id = o.o_c_id",
    )
    .await;
    assert_eq!((int(&rows[0][0]), int(&rows[0][1])), (60, 18_300));
    let rows = q(
        &mut s,
        "SELECT count(*) FROM ord o JOIN other t ON o.o_id = t.o_id JOIN item i ON i.i_id = t.x",
    )
    .await;
    assert_eq!(int(&rows[0][0]), 60);
    let rows = q(
        &mut s,
        "SELECT c.name, o.amount FROM cust c JOIN ord o ON c.c_id = o.o_c_id WHERE c.c_id = 7 ORDER BY o.amount",
    )
    .await;
    let amounts: Vec<i64> = rows.iter().map(|r| int(&r[1])).collect();
    assert_eq!(amounts, vec![60, 260, 460]);
}

/// SQL cursors over distributed tables read the datanodes (they used to run on the coordinator's
/// empty local copy and return no rows); SQL PREPARE is refused with 0A000, the session usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_read_the_datanodes() {
    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    q(
        &mut s,
        "CREATE TABLE cur (id int, v text) DISTRIBUTE BY HASH(id)",
    )
    .await;
    q(
        &mut s,
        "INSERT INTO cur SELECT i, 'v' || i FROM generate_series(1, 100) i",
    )
    .await;
    assert_eq!(
        code(&mut s, "DECLARE c CURSOR FOR SELECT id FROM cur").await,
        SqlState::NoActiveSqlTransaction
    );
    q(&mut s, "BEGIN").await;
    q(
        &mut s,
        "DECLARE c SCROLL CURSOR FOR SELECT id, v FROM cur WHERE id > 10 ORDER BY id",
    )
    .await;
    let first = q(&mut s, "FETCH 3 FROM c").await;
    assert_eq!(
        first.iter().map(|r| int(&r[0])).collect::<Vec<_>>(),
        vec![11, 12, 13]
    );
    assert_eq!(first[0][1], Value::Text("v11".into()));
    q(&mut s, "MOVE FORWARD 10 IN c").await;
    assert_eq!(int(&q(&mut s, "FETCH NEXT FROM c").await[0][0]), 24);
    assert_eq!(int(&q(&mut s, "FETCH PRIOR FROM c").await[0][0]), 23);
    assert_eq!(q(&mut s, "FETCH ALL FROM c").await.len(), 100 - 23);
    q(&mut s, "DECLARE n CURSOR FOR SELECT count(*) FROM cur").await;
    assert_eq!(int(&q(&mut s, "FETCH 1 FROM n").await[0][0]), 100);
    q(&mut s, "CLOSE c").await;
    q(&mut s, "COMMIT").await;
    // The cursors ended with the block.
    q(&mut s, "BEGIN").await;
    assert_eq!(
        code(&mut s, "FETCH 1 FROM n").await,
        SqlState::InvalidCursorName
    );
    q(&mut s, "ROLLBACK").await;
    assert_eq!(
        code(&mut s, "PREPARE p AS SELECT count(*) FROM cur").await,
        SqlState::FeatureNotSupported
    );
    assert_eq!(int(&q(&mut s, "SELECT count(*) FROM cur").await[0][0]), 100);
}
