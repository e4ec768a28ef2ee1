//! Joins that are not colocated, run on the datanodes after redistributing or broadcasting rows
//! (`distjoin`): every query's result equals the coordinator join's (`enable_remotejoin = off`)
//! on data with NULL join keys, duplicates, tables on different node subsets, replicated and
//! round-robin tables; EXPLAIN shows the redistribution step; ANALYZE's row counts steer the
//! choice between redistribution and broadcast.
#![cfg(not(madsim))]

use pgxc_coordinator::session::CoordSession;
use pgxc_sql::types::{TimeZone, Value};

mod common;
use common::*;

/// A statement's rows as text (NULL as `None`), sorted unless `ordered`.
async fn rows(s: &mut CoordSession, sql: &str, ordered: bool) -> Vec<Vec<Option<String>>> {
    let mut r = match s.execute(sql).await {
        Ok(r) => r,
        Err(e) => panic!("{sql}: {e}"),
    };
    let r = r.pop().expect("a result");
    let tz = TimeZone::utc();
    let mut out: Vec<Vec<Option<String>>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(r.columns.iter())
                .map(|(v, (_, ty))| match v {
                    Value::Null => None,
                    v => v.to_text_opt(ty, &tz),
                })
                .collect()
        })
        .collect();
    if !ordered {
        out.sort();
    }
    out
}

async fn plan(s: &mut CoordSession, sql: &str) -> String {
    rows(s, &format!("EXPLAIN (COSTS OFF) {sql}"), true)
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A deterministic pseudo-random sequence (xorshift), for the data.
struct Gen(u64);

impl Gen {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// An int literal in 0..n, NULL one time in `nulls`.
    fn key(&mut self, n: u64, nulls: u64) -> String {
        if self.next(nulls) == 0 {
            "NULL".into()
        } else {
            self.next(n).to_string()
        }
    }
}

async fn load(s: &mut CoordSession) {
    for ddl in [
        "CREATE TABLE t1 (id int PRIMARY KEY, k int, v text) DISTRIBUTE BY HASH (id)",
        "CREATE TABLE t2 (id int, k int, w text) DISTRIBUTE BY HASH (id) TO NODE (dn1, dn2)",
        "CREATE TABLE t3 (a int, k bigint, c varchar(8)) DISTRIBUTE BY ROUNDROBIN",
        "CREATE TABLE m (id int, k int) DISTRIBUTE BY MODULO (k)",
        "CREATE TABLE hk (k int, note text) DISTRIBUTE BY HASH (k) TO NODE (dn2, dn3)",
        "CREATE TABLE r (k int, name text) DISTRIBUTE BY REPLICATION TO NODE (dn1)",
        "CREATE TABLE st (c varchar(8), x int) DISTRIBUTE BY HASH (c)",
    ] {
        s.execute(ddl).await.expect(ddl);
    }
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut ins = |table: &str, n: usize, row: &mut dyn FnMut(usize, &mut Gen) -> String| {
        let vals: Vec<String> = (0..n).map(|i| row(i, &mut g)).collect();
        format!("INSERT INTO {table} VALUES {}", vals.join(", "))
    };
    let stmts = vec![
        ins("t1", 300, &mut |i, g| {
            format!("({i}, {}, 'v{}')", g.key(40, 10), g.next(5))
        }),
        ins("t2", 200, &mut |i, g| {
            format!("({i}, {}, 'w{}')", g.key(40, 8), g.next(7))
        }),
        ins("t3", 150, &mut |_, g| {
            format!("({}, {}, 'c{}')", g.key(30, 6), g.key(40, 9), g.next(6))
        }),
        ins("m", 120, &mut |i, g| format!("({i}, {})", g.key(40, 12))),
        ins("hk", 60, &mut |i, g| format!("({}, 'n{i}')", g.key(45, 10))),
        ins("r", 25, &mut |i, g| format!("({}, 'r{i}')", g.key(40, 10))),
        ins("st", 50, &mut |_, g| {
            format!("('c{}', {})", g.next(8), g.next(100))
        }),
    ];
    for sql in stmts {
        s.execute(&sql).await.expect("insert");
    }
    // Extreme and negative keys travel as literals too.
    for sql in [
        "INSERT INTO t1 VALUES (2000, -2147483648, 'min'), (2001, -5, 'neg'), (2002, 2147483647, 'max')",
        "INSERT INTO t2 VALUES (2000, -2147483648, 'min'), (2001, -5, 'neg'), (2002, 2147483647, 'max')",
    ] {
        s.execute(sql).await.expect("insert");
    }
}

/// Queries that are not colocated joins; `true`: the order of rows is significant.
const QUERIES: &[(&str, bool)] = &[
    ("SELECT t1.id, t2.id, t1.k FROM t1 JOIN t2 ON t1.k = t2.k", false),
    ("SELECT * FROM t1 JOIN t2 ON t1.k = t2.k", false),
    ("SELECT t1.k, t2.w FROM t1 JOIN t2 ON t1.k = t2.k WHERE t1.id >= 2000", false),
    ("SELECT t2.*, t1.id FROM t1 JOIN t2 ON t1.k = t2.k WHERE t1.v = 'v2'", false),
    ("SELECT t1.v, t2.w FROM t1, t2 WHERE t1.k = t2.k AND t2.id < 100 AND t1.v <> 'v1'", false),
    ("SELECT count(*), sum(t1.id), min(t2.w), max(t1.v) FROM t1 JOIN t2 ON t1.k = t2.k", false),
    ("SELECT a.k, count(*) FROM t1 a JOIN t2 b ON a.k = b.k GROUP BY a.k ORDER BY a.k", true),
    ("SELECT a.id, b.id FROM t1 a JOIN t2 b ON a.k = b.k ORDER BY a.id, b.id LIMIT 17", true),
    ("SELECT DISTINCT a.v, b.w FROM t1 a JOIN t2 b ON a.k = b.k", false),
    ("SELECT t1.id, m.id FROM t1 JOIN m ON t1.k = m.k", false),
    ("SELECT t1.id, hk.note FROM t1 JOIN hk ON t1.k = hk.k", false),
    ("SELECT hk.note, t2.id FROM hk JOIN t2 ON hk.k = t2.k WHERE t2.w > 'w2'", false),
    ("SELECT t1.id, t3.a FROM t1 JOIN t3 ON t1.k = t3.k", false),
    ("SELECT t1.id, t3.a FROM t1 JOIN t3 ON t1.id = t3.a", false),
    ("SELECT t1.id, t2.id FROM t1 JOIN t2 ON t1.k > t2.k AND t2.k > 35", false),
    ("SELECT t1.id, r.name FROM t1 JOIN r ON t1.k = r.k", false),
    ("SELECT hk.note, r.name FROM hk JOIN r ON hk.k = r.k", false),
    ("SELECT t1.id, t2.id, m.id FROM t1 JOIN t2 ON t1.k = t2.k JOIN m ON m.k = t2.k WHERE m.id < 60", false),
    ("SELECT t1.id, t2.id, hk.note FROM t1, t2, hk WHERE t1.k = t2.k AND t2.id = hk.k", false),
    ("SELECT st.x, t3.a FROM st JOIN t3 ON st.c = t3.c", false),
    ("SELECT x.id, y.id FROM t1 x JOIN t1 y ON x.k = y.id WHERE x.id < 50", false),
    ("SELECT t2.k, sum(t1.id) AS s FROM t1 JOIN t2 ON t1.k = t2.k GROUP BY t2.k HAVING count(*) > 2 ORDER BY s DESC, t2.k", true),
    ("SELECT count(*) FROM t1 JOIN t2 ON t1.k = t2.k WHERE t1.k IS NULL", false),
    ("SELECT count(*) FROM t1 JOIN t2 ON t1.k = t2.k AND t1.id > 1000", false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_joins_equal_the_coordinator_join() {
    let c = cluster(3, 2).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    load(&mut s).await;
    let mut distributed = 0;
    for pass in 0..2 {
        if pass == 1 {
            // With statistics the choice may change (broadcast of small sides); results not.
            s.execute("ANALYZE").await.expect("analyze");
        }
        for (sql, ordered) in QUERIES {
            s.execute("SET enable_remotejoin = on").await.expect("set");
            let p = plan(&mut s, sql).await;
            if p.contains("Distribute results by") || p.contains("Broadcast") {
                distributed += 1;
            }
            let got = rows(&mut s, sql, *ordered).await;
            s.execute("SET enable_remotejoin = off").await.expect("set");
            let off = plan(&mut s, sql).await;
            assert!(
                !off.contains("Distribute results by") && !off.contains("Broadcast"),
                "{sql}: enable_remotejoin = off still moves rows:\n{off}"
            );
            let want = rows(&mut s, sql, *ordered).await;
            assert_eq!(got, want, "{sql}\nplan:\n{p}");
        }
    }
    assert!(
        distributed >= 2 * (QUERIES.len() - 2),
        "only {distributed} runs moved rows"
    );
    // Inside a transaction block the moved rows are the transaction's own view.
    s.execute("RESET ALL").await.expect("reset");
    s.execute("BEGIN").await.expect("begin");
    s.execute("INSERT INTO t2 VALUES (1000, 7, 'new'), (1001, NULL, 'null')")
        .await
        .expect("insert");
    let sql = "SELECT t1.id, t2.w FROM t1 JOIN t2 ON t1.k = t2.k WHERE t2.id BETWEEN 1000 AND 1999";
    let mut want = rows(&mut s, "SELECT id, 'new' FROM t1 WHERE k = 7", false).await;
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(rows(&mut s, sql, false).await, want);
    s.execute("ROLLBACK").await.expect("rollback");
    assert!(rows(&mut s, sql, false).await.is_empty());
    // Another coordinator sees the same results.
    let mut s2 = CoordSession::new(&c.coords[1]).expect("session");
    let sql = QUERIES[0].0;
    assert_eq!(
        rows(&mut s2, sql, false).await,
        rows(&mut s, sql, false).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_statistics_choose_the_step() {
    let c = cluster(3, 2).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    load(&mut s).await;
    // Without statistics: redistribution. Join on hk's distribution key: t1 goes to hk's nodes.
    let p = plan(
        &mut s,
        "SELECT t1.id, hk.note FROM t1 JOIN hk ON t1.k = hk.k",
    )
    .await;
    assert!(p.contains("Distribute results by H: t1.k"), "{p}");
    assert!(p.contains("Data Node Scan on public.t1 \"t1\""), "{p}");
    // Only the columns the statement refers to travel.
    assert!(
        p.lines()
            .any(|l| l.trim() == "Remote query: SELECT \"id\", \"k\" FROM public.t1"),
        "{p}"
    );
    // On no key: both sides redistributed by the join key.
    let p = plan(&mut s, "SELECT t1.id, t2.id FROM t1 JOIN t2 ON t1.k = t2.k").await;
    assert!(p.contains("Distribute results by H: t1.k"), "{p}");
    assert!(p.contains("Distribute results by H: t2.k"), "{p}");
    // Different key types (int and bigint) never redistribute: broadcast.
    let p = plan(&mut s, "SELECT t1.id, t3.a FROM t1 JOIN t3 ON t1.k = t3.k").await;
    assert!(p.contains("Broadcast") && !p.contains("Distribute"), "{p}");
    // A non-equi join broadcasts.
    let p = plan(&mut s, "SELECT t1.id FROM t1 JOIN t2 ON t1.k < t2.k").await;
    assert!(p.contains("Broadcast"), "{p}");
    // GROUP BY over the moved join: the coordinator's final step.
    let p = plan(
        &mut s,
        "SELECT a.k, count(*) FROM t1 a JOIN t2 b ON a.k = b.k GROUP BY a.k",
    )
    .await;
    assert!(
        p.contains("__REMOTE_JOIN_QUERY__") && p.contains("Distribute"),
        "{p}"
    );
    // enable_remotejoin = off: the coordinator joins.
    s.execute("SET enable_remotejoin = off").await.expect("set");
    let p = plan(&mut s, "SELECT t1.id, t2.id FROM t1 JOIN t2 ON t1.k = t2.k").await;
    assert!(!p.contains("Distribute") && !p.contains("Broadcast"), "{p}");
    s.execute("RESET enable_remotejoin").await.expect("reset");

    // ANALYZE stores row counts per node on every coordinator.
    s.execute("ANALYZE t1, t2").await.expect("analyze");
    let counts = rows(
        &mut s,
        "SELECT relname, sum(reltuples) FROM pgxc.pgxc_stats GROUP BY relname",
        false,
    )
    .await;
    let expect = vec![
        vec![Some("public.t1".to_string()), Some("303".to_string())],
        vec![Some("public.t2".to_string()), Some("203".to_string())],
    ];
    assert_eq!(counts, expect);
    let mut s2 = CoordSession::new(&c.coords[1]).expect("session");
    let counts2 = rows(
        &mut s2,
        "SELECT relname, sum(reltuples) FROM pgxc.pgxc_stats GROUP BY relname",
        false,
    )
    .await;
    assert_eq!(counts2, expect);
    // With the counts: r (25 rows, no count yet → 1000 assumed) ... a small side is broadcast
    // rather than moving the big one: hk has 60 rows, t1 303; keeping t1 and broadcasting hk to
    // t1's 3 nodes moves 180 rows, redistributing t1 moves 303.
    s.execute("ANALYZE hk").await.expect("analyze");
    let p = plan(
        &mut s,
        "SELECT t1.id, hk.note FROM t1 JOIN hk ON t1.k = hk.k",
    )
    .await;
    assert!(p.contains("Broadcast") && p.contains("public.hk"), "{p}");
    // An unknown table is an error; the session stays usable.
    let e = s.execute("ANALYZE nope").await.expect_err("unknown table");
    assert_eq!(e.code, pgxc_common::SqlState::UndefinedTable);
    assert_eq!(
        rows(&mut s, "SELECT 1", false).await,
        vec![vec![Some("1".to_string())]]
    );
}

/// Joins over explicit small tables: NULL join keys never match (redistribution drops them,
/// broadcast keeps them on every node and the equality rejects them), duplicate keys give every
/// pair, a key whose rows all land on one node still meets its partners there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_and_duplicate_keys_move_as_typed_values() {
    let c = cluster(3, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    for sql in [
        "CREATE TABLE na (id int PRIMARY KEY, k int, t text) DISTRIBUTE BY HASH (id)",
        "CREATE TABLE nb (id int PRIMARY KEY, k int, u text) DISTRIBUTE BY HASH (id)",
        "INSERT INTO na VALUES (1, 1, 'a1'), (2, 1, 'a2'), (3, 2, 'it''s'), (4, NULL, 'a4'), \
         (5, NULL, NULL), (6, 3, 'a6'), (7, 5, 'a7')",
        "INSERT INTO nb VALUES (10, 1, 'b10'), (11, 1, NULL), (12, NULL, 'b12'), (13, 3, 'b13'), \
         (14, 3, 'b14'), (15, 4, 'b15')",
    ] {
        s.execute(sql).await.expect(sql);
    }
    let sql = "SELECT na.id, nb.id, na.t, nb.u FROM na JOIN nb ON na.k = nb.k";
    let p = plan(&mut s, sql).await;
    assert!(p.contains("Distribute results by H: na.k"), "{p}");
    assert!(p.contains("Distribute results by H: nb.k"), "{p}");
    let s_ = |x: &str| Some(x.to_string());
    assert_eq!(
        rows(&mut s, sql, false).await,
        vec![
            vec![s_("1"), s_("10"), s_("a1"), s_("b10")],
            vec![s_("1"), s_("11"), s_("a1"), None],
            vec![s_("2"), s_("10"), s_("a2"), s_("b10")],
            vec![s_("2"), s_("11"), s_("a2"), None],
            vec![s_("6"), s_("13"), s_("a6"), s_("b13")],
            vec![s_("6"), s_("14"), s_("a6"), s_("b14")],
        ]
    );
    // Combined aggregates over the moved join, and a join that finds nothing.
    assert_eq!(
        rows(
            &mut s,
            "SELECT count(*), sum(na.id + nb.id) FROM na JOIN nb ON na.k = nb.k",
            false
        )
        .await,
        vec![vec![s_("6"), s_("87")]]
    );
    assert_eq!(
        rows(
            &mut s,
            "SELECT na.id FROM na JOIN nb ON na.k = nb.k WHERE nb.k = 4",
            false
        )
        .await,
        Vec::<Vec<Option<String>>>::new()
    );
    // Broadcast (a non-equi join): the NULL keys travel and match nothing.
    let sql = "SELECT na.id, nb.id FROM na JOIN nb ON na.k < nb.k";
    let p = plan(&mut s, sql).await;
    assert!(p.contains("Broadcast"), "{p}");
    let mut want = Vec::new();
    let a = [
        (1, Some(1)),
        (2, Some(1)),
        (3, Some(2)),
        (4, None),
        (5, None),
        (6, Some(3)),
        (7, Some(5)),
    ];
    let b = [
        (10, Some(1)),
        (11, Some(1)),
        (12, None),
        (13, Some(3)),
        (14, Some(3)),
        (15, Some(4)),
    ];
    for (ai, ak) in a {
        for (bi, bk) in b {
            if let (Some(ak), Some(bk)) = (ak, bk) {
                if ak < bk {
                    want.push(vec![Some(ai.to_string()), Some(bi.to_string())]);
                }
            }
        }
    }
    want.sort();
    assert_eq!(rows(&mut s, sql, false).await, want);
}

/// A moved side bigger than one batch (`ROWSET_BATCH` rows per node) arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_of_several_batches_moves_whole() {
    let c = cluster(2, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    for sql in [
        "CREATE TABLE ba (id int PRIMARY KEY, k int) DISTRIBUTE BY HASH (id)",
        "CREATE TABLE bb (id int PRIMARY KEY, k int) DISTRIBUTE BY HASH (id)",
        "INSERT INTO ba SELECT g, 30000 - g FROM generate_series(1, 25000) g",
        "INSERT INTO bb SELECT g, g FROM generate_series(1, 25000) g",
    ] {
        s.execute(sql).await.expect(sql);
    }
    let sql = "SELECT count(*), sum(ba.id), sum(bb.id) FROM ba JOIN bb ON ba.k = bb.k";
    let p = plan(&mut s, sql).await;
    assert!(p.contains("Distribute results by"), "{p}");
    // ba.k = 30000 - id meets bb.k in 5000..=25000 for ba.id in 5000..=25000.
    let n: i64 = 20001;
    let sum_a: i64 = (5000..=25000).sum();
    let sum_b: i64 = (5000..=25000).map(|i: i64| 30000 - i).sum();
    assert_eq!(
        rows(&mut s, sql, false).await,
        vec![vec![
            Some(n.to_string()),
            Some(sum_a.to_string()),
            Some(sum_b.to_string())
        ]]
    );
}

/// A moved join that fails inside a transaction block fails the block as any statement does;
/// after ROLLBACK (or ROLLBACK TO SAVEPOINT) no rowset is left on the datanodes, and the same
/// session's next joins work. A table named like a rowset shows its own rows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_block_leaves_no_rowset_behind() {
    let c = cluster(3, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    load(&mut s).await;
    // The name of the first moved side's rowset on the datanodes.
    for sql in [
        "CREATE TABLE __pgxc_moved_0__ (k int) DISTRIBUTE BY REPLICATION",
        "INSERT INTO __pgxc_moved_0__ VALUES (-1)",
    ] {
        s.execute(sql).await.expect(sql);
    }
    let own = vec![vec![Some("-1".to_string())]];
    let join = "SELECT count(*), sum(t1.id) FROM t1 JOIN t2 ON t1.k = t2.k";
    let failing = "SELECT t1.id / (t2.k - t2.k) FROM t1 JOIN t2 ON t1.k = t2.k";
    assert!(plan(&mut s, failing)
        .await
        .contains("Distribute results by"));
    let want = rows(&mut s, join, false).await;
    assert_ne!(want, vec![vec![Some("0".to_string()), None]]);

    s.execute("BEGIN").await.expect("begin");
    assert_eq!(rows(&mut s, join, false).await, want);
    // Dropped after the statement: the table is visible again in the same transaction.
    assert_eq!(
        rows(&mut s, "SELECT k FROM __pgxc_moved_0__", false).await,
        own
    );
    let e = s.execute(failing).await.expect_err("division by zero");
    assert_eq!(e.code, pgxc_common::SqlState::DivisionByZero);
    assert_eq!(
        code(&mut s, join).await,
        pgxc_common::SqlState::InFailedSqlTransaction
    );
    s.execute("ROLLBACK").await.expect("rollback");
    assert_eq!(rows(&mut s, join, false).await, want);
    assert_eq!(
        rows(&mut s, "SELECT k FROM __pgxc_moved_0__", false).await,
        own
    );

    // Rolled back to a savepoint: the block goes on without the failed statement's rowsets.
    s.execute("BEGIN").await.expect("begin");
    s.execute("SAVEPOINT a").await.expect("savepoint");
    let e = s.execute(failing).await.expect_err("division by zero");
    assert_eq!(e.code, pgxc_common::SqlState::DivisionByZero);
    s.execute("ROLLBACK TO SAVEPOINT a")
        .await
        .expect("rollback to");
    assert_eq!(
        rows(&mut s, "SELECT k FROM __pgxc_moved_0__", false).await,
        own
    );
    assert_eq!(rows(&mut s, join, false).await, want);
    s.execute("COMMIT").await.expect("commit");
    assert_eq!(rows(&mut s, join, false).await, want);
}
