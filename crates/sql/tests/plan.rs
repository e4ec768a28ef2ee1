//! The planner and the streaming executor through SQL: plan shapes pinned with
//! `EXPLAIN (COSTS OFF)` for each access path and join / aggregate method, streaming LIMIT,
//! the operator memory limit (53200), UPDATE/DELETE index lookups, and a differential property
//! test: random tables and queries give the same rows with every planner method switched off in
//! turn and with the interpreter (`pgxc.use_planner = off`).

use pgxc_common::SqlState;
use pgxc_sql::types::Value;
use pgxc_sql::{Engine, Session};
use pgxc_storage::{Disk, SimDisk};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn session() -> Session {
    let engine = Engine::open(&Disk::sim(SimDisk::new()), "plan.redb").expect("engine");
    engine.session()
}

fn run(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    match s.execute(sql) {
        Ok(mut r) => r.pop().map(|r| r.rows).unwrap_or_default(),
        Err(e) => panic!("{sql}: {e:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        other => format!("{other:?}"),
    }
}

fn lines(s: &mut Session, sql: &str) -> String {
    run(s, sql)
        .iter()
        .map(|r| text(&r[0]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn plan(s: &mut Session, sql: &str) -> String {
    lines(s, &format!("EXPLAIN (COSTS OFF) {sql}"))
}

/// `a`: 5,000 rows, PRIMARY KEY id, index on x (100 distinct values); `b`: 200 rows.
fn tables() -> Session {
    let mut s = session();
    run(&mut s, "CREATE TABLE a (id int PRIMARY KEY, x int, t text)");
    run(&mut s, "CREATE INDEX a_x ON a (x)");
    run(
        &mut s,
        "CREATE TABLE b (id int PRIMARY KEY, a_id int, v text)",
    );
    run(
        &mut s,
        "INSERT INTO a SELECT g, g % 100, 'v' || g FROM generate_series(1, 5000) g",
    );
    run(
        &mut s,
        "INSERT INTO b SELECT g, (g * 37) % 5000 + 1, 'v' || (g * 3) FROM generate_series(1, 200) g",
    );
    s
}

fn count(s: &mut Session, sql: &str) -> i64 {
    match run(s, sql).first().and_then(|r| r.first()) {
        Some(Value::Int8(n)) => *n,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn index_scans_for_equality_in_lists_and_ranges() {
    let mut s = tables();
    assert_eq!(
        plan(&mut s, "SELECT * FROM a WHERE id = 5"),
        "Index Scan using a_pkey on a\n  Index Cond: (id = 5)"
    );
    assert_eq!(
        run(&mut s, "SELECT id, x, t FROM a WHERE id = 5"),
        vec![vec![
            Value::Int4(5),
            Value::Int4(5),
            Value::Text("v5".into())
        ]]
    );
    assert_eq!(
        plan(&mut s, "SELECT * FROM a WHERE x BETWEEN 3 AND 4"),
        "Index Scan using a_x on a\n  Index Cond: ((x >= 3) AND (x <= 4))"
    );
    assert_eq!(
        count(&mut s, "SELECT count(*) FROM a WHERE x BETWEEN 3 AND 4"),
        100
    );
    let p = plan(
        &mut s,
        "SELECT * FROM a WHERE id IN (3, 1, 2) AND t <> 'v2'",
    );
    assert!(p.starts_with("Index Scan using a_pkey on a"), "{p}");
    assert!(p.contains("Filter: (t <> 'v2'::text)"), "{p}");
    assert_eq!(
        run(
            &mut s,
            "SELECT id FROM a WHERE id IN (3, 1, 2) AND t <> 'v2'"
        ),
        vec![vec![Value::Int4(1)], vec![Value::Int4(3)]]
    );
    // Without a usable predicate, or with the index switched off: a sequential scan.
    assert_eq!(
        plan(&mut s, "SELECT * FROM a WHERE t = 'v9'"),
        "Seq Scan on a\n  Filter: (t = 'v9'::text)"
    );
    run(&mut s, "SET enable_indexscan = off");
    assert_eq!(
        plan(&mut s, "SELECT * FROM a WHERE id = 5"),
        "Seq Scan on a\n  Filter: (id = 5)"
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM a WHERE id = 5"), 1);
}

#[test]
fn join_methods_follow_costs_and_settings() {
    let mut s = tables();
    let nl = plan(
        &mut s,
        "SELECT a.t, b.v FROM b JOIN a ON a.id = b.a_id WHERE b.id = 7",
    );
    assert_eq!(
        nl,
        "Nested Loop\n  ->  Index Scan using b_pkey on b\n        Index Cond: (b.id = 7)\n  ->  Index Scan using a_pkey on a\n        Index Cond: (a.id = b.a_id)",
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT a.id FROM b JOIN a ON a.id = b.a_id WHERE b.id = 7"
        ),
        vec![vec![Value::Int4(260)]]
    );
    let q = "SELECT a.id, b.id FROM a JOIN b ON a.t = b.v";
    let hash = plan(&mut s, q);
    assert!(
        hash.starts_with("Hash Join\n  Hash Cond: (a.t = b.v)"),
        "{hash}"
    );
    let rows = run(&mut s, &format!("{q} ORDER BY 1"));
    assert_eq!(rows.len(), 200);
    run(&mut s, "SET enable_hashjoin = off");
    run(&mut s, "SET enable_nestloop = off");
    let merge = plan(&mut s, q);
    assert!(
        merge.starts_with("Merge Join\n  Merge Cond: (a.t = b.v)"),
        "{merge}"
    );
    assert_eq!(run(&mut s, &format!("{q} ORDER BY 1")), rows);
    // Inputs already sorted on the key (full index scans): no sorts.
    run(&mut s, "SET enable_seqscan = off");
    let q2 = "SELECT a.id, b.v FROM a JOIN b ON a.id = b.id";
    assert_eq!(
        plan(&mut s, q2),
        "Merge Join\n  Merge Cond: (a.id = b.id)\n  ->  Index Scan using a_pkey on a\n  ->  Index Scan using b_pkey on b"
    );
    let merged = run(&mut s, q2);
    assert_eq!(merged.len(), 200);
    assert_eq!(merged[199][0], Value::Int4(200));
    run(&mut s, "SET enable_seqscan = on");
    run(&mut s, "SET enable_mergejoin = off");
    run(&mut s, "SET enable_nestloop = on");
    let loop_ = plan(&mut s, q);
    assert!(
        loop_.starts_with("Nested Loop\n  Join Filter: (a.t = b.v)"),
        "{loop_}"
    );
    assert_eq!(run(&mut s, &format!("{q} ORDER BY 1")), rows);
    let left = plan(&mut s, "SELECT * FROM b LEFT JOIN a ON a.id = b.a_id");
    assert!(left.starts_with("Nested Loop Left Join"), "{left}");
}

#[test]
fn hash_and_sort_aggregation() {
    let mut s = tables();
    let q = "SELECT x, count(*), sum(id), avg(id), min(t), max(t) FROM a WHERE x < 5 GROUP BY x";
    assert!(plan(&mut s, q).starts_with("HashAggregate\n  Group Key: x"));
    let mut hashed = run(&mut s, q);
    hashed.sort_by_key(|r| format!("{r:?}"));
    run(&mut s, "SET enable_hashagg = off");
    let p = plan(&mut s, q);
    assert!(
        p.starts_with("GroupAggregate\n  Group Key: x\n  ->  Sort"),
        "{p}"
    );
    let sorted = run(&mut s, q);
    assert_eq!(sorted.len(), 5);
    assert_eq!(sorted[0][1], Value::Int8(50));
    let mut copy = sorted.clone();
    copy.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(copy, hashed);
    assert_eq!(
        plan(&mut s, "SELECT count(*) FROM a"),
        "Aggregate\n  ->  Seq Scan on a"
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM a"), 5000);
}

#[test]
fn top_n_ordered_index_scans_and_streaming_limits() {
    let mut s = tables();
    let q = "SELECT id, t FROM a ORDER BY t DESC LIMIT 3";
    assert_eq!(
        plan(&mut s, q),
        "Limit\n  ->  Sort\n        Sort Key: t DESC\n        ->  Seq Scan on a"
    );
    let a = lines(&mut s, &format!("EXPLAIN (ANALYZE, COSTS OFF) {q}"));
    assert!(a.contains("Sort Method: top-N heapsort"), "{a}");
    assert_eq!(
        run(&mut s, q),
        vec![
            vec![Value::Int4(999), Value::Text("v999".into())],
            vec![Value::Int4(998), Value::Text("v998".into())],
            vec![Value::Int4(997), Value::Text("v997".into())],
        ]
    );
    // ORDER BY the primary key: the index gives the order, no sort.
    assert_eq!(
        plan(&mut s, "SELECT * FROM a ORDER BY id DESC LIMIT 2"),
        "Limit\n  ->  Index Scan Backward using a_pkey on a"
    );
    assert_eq!(
        run(&mut s, "SELECT id FROM a ORDER BY id DESC LIMIT 2 OFFSET 1"),
        vec![vec![Value::Int4(4999)], vec![Value::Int4(4998)]]
    );
    // LIMIT stops the scan after its first batch.
    let a = lines(
        &mut s,
        "EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM a LIMIT 10",
    );
    assert!(a.starts_with("Limit (actual rows=10 loops=1)"), "{a}");
    let scanned: u64 = a
        .lines()
        .find(|l| l.contains("Seq Scan on a"))
        .and_then(|l| l.split("actual rows=").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("actual rows of the scan");
    assert!(scanned <= 1024, "{a}");
}

#[test]
fn update_and_delete_find_their_rows_through_an_index() {
    let mut s = tables();
    assert_eq!(
        plan(&mut s, "UPDATE a SET x = x + 1 WHERE id = 5"),
        "Update on a\n  ->  Index Scan using a_pkey on a\n        Index Cond: (id = 5)"
    );
    assert_eq!(
        s.execute("UPDATE a SET x = x + 1 WHERE id = 5")
            .expect("update")[0]
            .tag,
        "UPDATE 1"
    );
    assert_eq!(
        run(&mut s, "SELECT x FROM a WHERE id = 5"),
        vec![vec![Value::Int4(6)]]
    );
    assert_eq!(
        s.execute("DELETE FROM a WHERE x = 6 AND id > 1000")
            .expect("delete")[0]
            .tag,
        "DELETE 40"
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM a WHERE x = 6"), 11);
}

#[test]
fn operator_memory_limit_fails_with_53200() {
    let mut s = tables();
    assert_eq!(lines(&mut s, "SHOW pgxc.operator_memory_limit"), "1GB");
    run(&mut s, "SET pgxc.operator_memory_limit = '64kB'");
    let e = s
        .execute("SELECT * FROM a ORDER BY t")
        .expect_err("sort over the limit");
    assert_eq!(e.code, SqlState::OutOfMemory);
    let e = s
        .execute("SELECT t, count(*) FROM a GROUP BY t")
        .expect_err("hash aggregate over the limit");
    assert_eq!(e.code, SqlState::OutOfMemory);
    // Streaming operators need no memory: fine under the same limit.
    assert_eq!(count(&mut s, "SELECT count(*) FROM a WHERE x > 10"), 4450);
    run(&mut s, "RESET pgxc.operator_memory_limit");
    assert_eq!(run(&mut s, "SELECT * FROM a ORDER BY t").len(), 5000);
}

#[test]
fn union_is_an_append() {
    let mut s = tables();
    let q = "SELECT id FROM a WHERE id < 3 UNION ALL SELECT id FROM b WHERE id < 3 ORDER BY 1";
    let p = plan(&mut s, q);
    assert!(p.starts_with("Sort\n  Sort Key: a.id\n  ->  Append"), "{p}");
    let one = |n| vec![Value::Int4(n)];
    assert_eq!(run(&mut s, q), vec![one(1), one(1), one(2), one(2)]);
    let q = "SELECT id FROM a WHERE id < 3 UNION SELECT id FROM b WHERE id < 4 ORDER BY id DESC LIMIT 2";
    assert_eq!(run(&mut s, q), vec![one(3), one(2)]);
    // VALUES, alone or as a derived table.
    let q = "SELECT v.x * 10 FROM (VALUES (2), (1), (3)) v(x) WHERE v.x < 3 ORDER BY 1";
    assert_eq!(
        plan(&mut s, q),
        "Sort\n  Sort Key: (column1 * 10)\n  ->  Values Scan on \"*VALUES*\"\n        Filter: (column1 < 3)"
    );
    assert_eq!(run(&mut s, q), vec![one(10), one(20)]);
    assert_eq!(
        run(&mut s, "VALUES (3), (1) ORDER BY 1 DESC LIMIT 1"),
        vec![one(3)]
    );
    // Operands of different types stay with the interpreter (it casts them).
    assert_eq!(
        plan(&mut s, "SELECT id FROM a UNION SELECT 1.5"),
        "Interpreted Query"
    );
}

#[test]
fn views_and_derived_tables_are_planned() {
    let mut s = tables();
    run(
        &mut s,
        "CREATE VIEW high AS SELECT id, x FROM a WHERE x > 90",
    );
    let p = plan(&mut s, "SELECT * FROM high WHERE id = 95");
    assert_eq!(p, "Seq Scan on a\n  Filter: ((x > 90) AND (id = 95))");
    assert_eq!(
        run(&mut s, "SELECT * FROM high WHERE id = 95"),
        vec![vec![Value::Int4(95), Value::Int4(95)]]
    );
    // USING: the merged column first, then the joined tables' other columns.
    let q = "SELECT * FROM a JOIN b USING (id) WHERE id < 3 ORDER BY id";
    assert!(!plan(&mut s, q).contains("Interpreted"));
    assert_eq!(
        run(&mut s, q),
        vec![
            vec![
                Value::Int4(1),
                Value::Int4(1),
                Value::Text("v1".into()),
                Value::Int4(38),
                Value::Text("v3".into())
            ],
            vec![
                Value::Int4(2),
                Value::Int4(2),
                Value::Text("v2".into()),
                Value::Int4(75),
                Value::Text("v6".into())
            ],
        ]
    );
    let q = "SELECT s.x, s.n FROM (SELECT x, count(*) AS n FROM a GROUP BY x) s WHERE s.n > 0 ORDER BY s.x LIMIT 2";
    let p = plan(&mut s, q);
    assert!(p.contains("HashAggregate"), "{p}");
    assert_eq!(
        run(&mut s, q),
        vec![
            vec![Value::Int4(0), Value::Int8(50)],
            vec![Value::Int4(1), Value::Int8(50)]
        ]
    );
}

#[test]
fn unsupported_shapes_are_explained_as_interpreted() {
    let mut s = tables();
    assert_eq!(
        plan(&mut s, "SELECT id, row_number() OVER (ORDER BY id) FROM b"),
        "Interpreted Query"
    );
    assert_eq!(plan(&mut s, "SELECT 1"), "Result");
    run(&mut s, "SET pgxc.use_planner = off");
    assert_eq!(
        plan(&mut s, "SELECT * FROM a WHERE id = 1"),
        "Interpreted Query"
    );
}

// ---- differential property test ----

/// One random case: two small tables and a query.
#[derive(Debug, Clone)]
struct Case {
    t1: Vec<(Option<i32>, Option<i32>, Option<u8>)>,
    t2: Vec<(i32, Option<i32>)>,
    query: String,
    ordered: bool,
}

fn lit(v: Option<i32>) -> String {
    v.map_or("NULL".into(), |x| x.to_string())
}

fn case() -> impl Strategy<Value = Case> {
    let t1 = prop::collection::vec(
        (
            prop::option::weighted(0.9, 0..8i32),
            prop::option::weighted(0.8, -3..6i32),
            prop::option::weighted(0.8, 0..4u8),
        ),
        0..25,
    );
    let t2 = prop::collection::btree_map(0..10i32, prop::option::weighted(0.8, 0..5i32), 0..12)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    let join = prop_oneof![
        Just("t1"),
        Just("t1 JOIN t2 ON t1.a = t2.k"),
        Just("t1 LEFT JOIN t2 ON t1.a = t2.k"),
        Just("t1 RIGHT JOIN t2 ON t1.a = t2.k"),
        Just("t1 FULL JOIN t2 ON t1.a = t2.k AND t2.d > 1"),
        Just("t1 LEFT JOIN t2 ON t1.a = t2.k AND t2.d > 1"),
        Just("t2 RIGHT JOIN t1 ON t1.a = t2.k AND t2.d < 3"),
        Just("t1, t2 WHERE t1.b = t2.d"),
        Just("t1 JOIN t2 ON t1.b < t2.d"),
        Just("t2 JOIN t1 ON t1.a = t2.k"),
        Just("t1 JOIN t1 AS u USING (a)"),
        Just("t1 LEFT JOIN t1 AS u USING (a, b)"),
        Just("t1 RIGHT JOIN t1 AS u USING (b)"),
        Just("t1 FULL JOIN t1 AS u USING (a) JOIN t2 ON t2.k = a"),
        Just("t1 NATURAL FULL JOIN t1 AS u"),
    ];
    let filter = prop_oneof![
        Just(""),
        Just("t1.a = 3"),
        Just("t1.a IN (1, 4, 6)"),
        Just("t1.a BETWEEN 2 AND 5"),
        Just("t1.b > 0 OR t1.c IS NULL"),
        Just("t1.c <> 'x1'"),
        Just("t1.a >= 4"),
    ];
    let shape = 0..6u8;
    let limit = prop::option::of(0..6u8);
    (t1, t2, join, filter, shape, limit).prop_map(|(t1, t2, join, filter, shape, limit)| {
        let (from, mut wher) = match join.split_once(" WHERE ") {
            Some((f, w)) => (f.to_string(), vec![w.to_string()]),
            None => (join.to_string(), Vec::new()),
        };
        if !filter.is_empty() {
            wher.push(format!("({filter})"));
        }
        let where_sql = if wher.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", wher.join(" AND "))
        };
        let has_t2 = from.contains("t2");
        let cols = if has_t2 { "t1.a, t1.b, t1.c, t2.k, t2.d" } else { "t1.a, t1.b, t1.c" };
        let (query, ordered) = match shape {
            0 if from.contains("USING") || from.contains("NATURAL") => {
                (format!("SELECT * FROM {from}{where_sql}"), false)
            }
            0 => (format!("SELECT {cols} FROM {from}{where_sql}"), false),
            1 => (
                format!(
                    "SELECT t1.c, count(*), sum(t1.a), min(t1.b), max(t1.a), avg(t1.b) FROM {from}{where_sql} GROUP BY t1.c"
                ),
                false,
            ),
            2 => (format!("SELECT DISTINCT t1.b FROM {from}{where_sql}"), false),
            3 => (
                format!(
                    "SELECT {cols} FROM {from}{where_sql} ORDER BY {cols}{}",
                    limit.map_or(String::new(), |l| format!(" LIMIT {l}"))
                ),
                true,
            ),
            4 => (
                format!(
                    "SELECT t1.b FROM {from}{where_sql} UNION{} SELECT t2.d FROM t2 WHERE t2.k > 3 ORDER BY 1{}",
                    if limit.is_some_and(|l| l % 2 == 0) { " ALL" } else { "" },
                    limit.map_or(String::new(), |l| format!(" LIMIT {l}"))
                ),
                true,
            ),
            _ => (
                format!(
                    "SELECT t1.a, count(t1.b) FROM {from}{where_sql} GROUP BY t1.a HAVING count(*) > 0 ORDER BY 1 NULLS FIRST{}",
                    limit.map_or(String::new(), |l| format!(" LIMIT {l} OFFSET 1"))
                ),
                true,
            ),
        };
        Case {
            t1,
            t2,
            query,
            ordered,
        }
    })
}

const SETTINGS: &[&str] = &[
    "enable_seqscan",
    "enable_indexscan",
    "enable_hashjoin",
    "enable_mergejoin",
    "enable_nestloop",
    "enable_hashagg",
    "enable_sort",
];

fn result(s: &mut Session, sql: &str, ordered: bool) -> Result<Vec<String>, String> {
    match s.execute(sql) {
        Ok(mut r) => {
            let rows = r.pop().map(|r| r.rows).unwrap_or_default();
            let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
            if !ordered {
                v.sort();
            }
            Ok(v)
        }
        Err(e) => Err(format!("{:?}", e.code)),
    }
}

#[test]
fn every_method_returns_the_same_rows() {
    let cell = std::cell::RefCell::new(session());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(&case(), |c| {
            let mut guard = cell.borrow_mut();
            let s: &mut Session = &mut guard;
            run(s, "DROP TABLE IF EXISTS t1");
            run(s, "DROP TABLE IF EXISTS t2");
            run(s, "CREATE TABLE t1 (a int, b int, c text)");
            run(s, "CREATE INDEX t1_a ON t1 (a)");
            run(s, "CREATE TABLE t2 (k int PRIMARY KEY, d int)");
            for (a, b, c) in &c.t1 {
                run(
                    s,
                    &format!(
                        "INSERT INTO t1 VALUES ({}, {}, {})",
                        lit(*a),
                        lit(*b),
                        c.map_or("NULL".into(), |c| format!("'x{c}'"))
                    ),
                );
            }
            for (k, d) in &c.t2 {
                run(s, &format!("INSERT INTO t2 VALUES ({k}, {})", lit(*d)));
            }
            run(s, "SET pgxc.use_planner = off");
            let want = result(s, &c.query, c.ordered);
            run(s, "SET pgxc.use_planner = on");
            let got = result(s, &c.query, c.ordered);
            prop_assert_eq!(&got, &want, "planner vs interpreter: {}", c.query);
            for name in SETTINGS {
                run(s, &format!("SET {name} = off"));
                let got = result(s, &c.query, c.ordered);
                run(s, &format!("SET {name} = on"));
                prop_assert_eq!(&got, &want, "{} = off: {}", name, c.query);
            }
            // Everything but one join method off.
            for keep in ["enable_hashjoin", "enable_mergejoin", "enable_nestloop"] {
                for name in ["enable_hashjoin", "enable_mergejoin", "enable_nestloop"] {
                    if name != keep {
                        run(s, &format!("SET {name} = off"));
                    }
                }
                let got = result(s, &c.query, c.ordered);
                for name in ["enable_hashjoin", "enable_mergejoin", "enable_nestloop"] {
                    run(s, &format!("SET {name} = on"));
                }
                prop_assert_eq!(&got, &want, "only {}: {}", keep, c.query);
            }
            Ok(())
        })
        .expect("planner methods agree");
}
