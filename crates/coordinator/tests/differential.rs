//! Differential property test: random schemas with random distributions (HASH, MODULO, ROUNDROBIN,
//! REPLICATION, each on a random subset of 3 datanodes), random rows, and random queries (filters,
//! inner/outer/semi/anti joins, aggregates incl. DISTINCT and ORDER BY inside, GROUP BY/HAVING,
//! ORDER BY/LIMIT/OFFSET, scalar and correlated subqueries, set operations, plain SELECT DISTINCT over
//! tables and joins, queries reading few columns of the tables' six — one NOT NULL, one with a
//! DEFAULT, some tables with a CHECK — through the coordinator's fallback). The cluster (an in-memory
//! GTM, 3 datanodes, 1 coordinator, over loopback TCP) must return exactly what one standalone engine
//! holding the same rows returns: the same rows (in the same order where the query orders them
//! totally), or an error with the same SQLSTATE.
//!
//! `PGXC_DIFF_CASES` sets the number of generated schemas (default 12; each runs every query family),
//! `PGXC_DIFF_SEED` the seed (default fixed, so CI is deterministic). A failure prints the schema, the
//! rows' DDL/DML and the query, and the seed to replay it.
#![cfg(not(madsim))]

use std::fmt::Write as _;
use std::sync::Arc;

use pgxc_coordinator::node::{Coordinator, CoordinatorConfig};
use pgxc_coordinator::session::CoordSession;
use pgxc_datanode::gtm_source::GtmTxnSource;
use pgxc_gtm::client::{ClientOptions, GtmClient};
use pgxc_gtm::server::{GtmServer, Replication, ServerConfig};
use pgxc_sql::types::{TimeZone, Value};
use pgxc_sql::{Engine, QueryResult};
use pgxc_storage::{Disk, SimDisk};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tokio::net::TcpListener;

const DATANODES: usize = 3;

/// How a generated table is distributed.
#[derive(Clone, Debug)]
enum Dist {
    HashK,
    HashA,
    ModuloK,
    RoundRobin,
    Replication,
}

/// A generated row: `(k, a, b, c, d, e)` (`d` is NOT NULL).
type Row = (
    i32,
    Option<i32>,
    Option<String>,
    Option<i32>,
    i32,
    Option<String>,
);

#[derive(Clone, Debug)]
struct Table {
    dist: Dist,
    /// Datanode indexes (0-based) of `TO NODE`; every node when it holds all of them.
    nodes: Vec<usize>,
    rows: Vec<Row>,
    /// A CHECK constraint on `c` (the coordinator then fetches every column in its fallback).
    check: bool,
}

impl Table {
    fn ddl(&self, name: &str, distributed: bool) -> String {
        // Wider than most queries read, with a NOT NULL and a defaulted column: the fallback's
        // remote scans fetch only the columns a query reads (projection pushdown).
        let mut s = format!(
            "CREATE TABLE {name} (k int, a int, b text, c int{}, d int NOT NULL, \
             e text DEFAULT 'x')",
            if self.check { " CHECK (c >= 0)" } else { "" }
        );
        if distributed {
            let by = match self.dist {
                Dist::HashK => "HASH (k)",
                Dist::HashA => "HASH (a)",
                Dist::ModuloK => "MODULO (k)",
                Dist::RoundRobin => "ROUNDROBIN",
                Dist::Replication => "REPLICATION",
            };
            let _ = write!(s, " DISTRIBUTE BY {by}");
            if self.nodes.len() < DATANODES {
                let names: Vec<String> =
                    self.nodes.iter().map(|i| format!("dn{}", i + 1)).collect();
                let _ = write!(s, " TO NODE ({})", names.join(", "));
            }
        }
        s
    }

    fn insert(&self, name: &str) -> Option<String> {
        if self.rows.is_empty() {
            return None;
        }
        let lit = |v: &Option<i32>| v.map_or("NULL".to_string(), |v| v.to_string());
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|(k, a, b, c, d, e)| {
                let b = b.as_ref().map_or("NULL".to_string(), |b| format!("'{b}'"));
                let e = e.as_ref().map_or("NULL".to_string(), |e| format!("'{e}'"));
                format!("({k}, {}, {b}, {}, {d}, {e})", lit(a), lit(c))
            })
            .collect();
        Some(format!("INSERT INTO {name} VALUES {}", rows.join(", ")))
    }
}

fn table() -> impl Strategy<Value = Table> {
    let dist = prop_oneof![
        Just(Dist::HashK),
        Just(Dist::HashA),
        Just(Dist::ModuloK),
        Just(Dist::RoundRobin),
        Just(Dist::Replication),
    ];
    let nodes = proptest::sample::subsequence((0..DATANODES).collect::<Vec<_>>(), 1..=DATANODES);
    let word = || proptest::sample::select(vec!["ant", "bee", "cat", "dog", "eel", "Ant", ""]);
    let row = (
        0..12i32,
        proptest::option::weighted(0.85, -3..8i32),
        proptest::option::weighted(0.85, word().prop_map(str::to_string)),
        proptest::option::weighted(0.8, 0..5i32),
        -2..4i32,
        proptest::option::weighted(0.7, word().prop_map(str::to_string)),
    );
    (
        dist,
        nodes,
        proptest::collection::vec(row, 0..25),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(dist, nodes, rows, check)| Table {
            dist,
            nodes,
            rows,
            check,
        })
}

/// A query and whether its ORDER BY orders the output totally (then the order is compared too).
#[derive(Clone, Debug)]
struct Query {
    sql: String,
    ordered: bool,
}

fn pred(alias: &'static str) -> impl Strategy<Value = String> {
    let p = move |s: &str| s.replace("$", alias);
    prop_oneof![
        Just(p("true")),
        (-2..6i32).prop_map(move |n| p(&format!("$a > {n}"))),
        Just(p("$a IS NULL")),
        Just(p("$b = 'cat'")),
        (0..12i32).prop_map(move |n| p(&format!("$k = {n}"))),
        (0..12i32, 0..12i32).prop_map(move |(x, y)| p(&format!("$k IN ({x}, {y}, 3)"))),
        (0..3i32).prop_map(move |n| p(&format!("$c BETWEEN {n} AND {}", n + 2))),
        (0..5i32).prop_map(move |n| p(&format!("($a > {n} OR $b LIKE 'a%')"))),
        Just(p("NOT ($c = 1)")),
    ]
}

fn query(ntables: usize) -> impl Strategy<Value = Query> {
    let t = move || (0..ntables).prop_map(|i| format!("t{i}"));
    let col = || proptest::sample::select(vec!["k", "a", "b", "c"]);
    let icol = || proptest::sample::select(vec!["k", "a", "c"]);
    let un = |sql: String| Query {
        sql,
        ordered: false,
    };
    prop_oneof![
        // Filters and projections.
        (t(), pred("")).prop_map(move |(t, p)| un(format!("SELECT k, a, b, c FROM {t} WHERE {p}"))),
        // Aggregates, GROUP BY and HAVING.
        (t(), col(), pred(""), 0..3i32).prop_map(move |(t, g, p, n)| un(format!(
            "SELECT {g}, count(*), count(a), sum(a), min(b), max(c), avg(k) FROM {t} WHERE {p} \
             GROUP BY {g} HAVING count(*) > {n}"
        ))),
        (t(), pred("")).prop_map(move |(t, p)| un(format!(
            "SELECT count(*), sum(k), count(DISTINCT a), sum(DISTINCT c), \
             string_agg(b, ',' ORDER BY b, k), array_agg(k ORDER BY k), bool_and(a > 0) \
             FROM {t} WHERE {p}"
        ))),
        (t(), icol()).prop_map(move |(t, g)| un(format!(
            "SELECT {g}, count(DISTINCT b), string_agg(DISTINCT b, '/' ORDER BY b) FROM {t} GROUP BY {g}"
        ))),
        // Joins.
        (
            t(),
            t(),
            icol(),
            icol(),
            proptest::sample::select(vec!["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]),
            pred("x.")
        )
            .prop_map(move |(l, r, lc, rc, j, p)| un(format!(
                "SELECT x.k, x.a, y.k, y.b FROM {l} x {j} {r} y ON x.{lc} = y.{rc} WHERE {p} OR x.k IS NULL"
            ))),
        (t(), t(), pred("y.")).prop_map(move |(l, r, p)| un(format!(
            "SELECT x.b, count(*), sum(y.c) FROM {l} x JOIN {r} y ON x.k = y.k AND {p} GROUP BY x.b"
        ))),
        // Semi and anti joins, subqueries.
        (t(), t(), pred("")).prop_map(move |(l, r, p)| un(format!(
            "SELECT k, b FROM {l} WHERE a IN (SELECT c FROM {r} WHERE {p})"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT k, a FROM {l} x WHERE EXISTS (SELECT 1 FROM {r} y WHERE y.k = x.k AND y.a IS NOT NULL)"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT k, a FROM {l} x WHERE NOT EXISTS (SELECT 1 FROM {r} y WHERE y.a = x.a)"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT k FROM {l} WHERE c NOT IN (SELECT c FROM {r} WHERE c IS NOT NULL)"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT x.k, (SELECT count(*) FROM {r} y WHERE y.a = x.a), (SELECT max(b) FROM {r}) FROM {l} x"
        ))),
        // ORDER BY with LIMIT/OFFSET (a total order over every column).
        (t(), 0..6i64, 0..4i64, proptest::bool::ANY).prop_map(move |(t, n, m, desc)| Query {
            sql: format!(
                "SELECT k, a, b FROM {t} ORDER BY a {} NULLS FIRST, k, b, c LIMIT {n} OFFSET {m}",
                if desc { "DESC" } else { "ASC" }
            ),
            ordered: true,
        }),
        (t(), 0..5i64).prop_map(move |(t, n)| Query {
            sql: format!(
                "SELECT b, count(*) FROM {t} GROUP BY b ORDER BY count(*) DESC, b NULLS LAST LIMIT {n}"
            ),
            ordered: true,
        }),
        // A join (colocated when both tables hash k on the same nodes) sorted and limited.
        (t(), t(), 0..8i64).prop_map(move |(l, r, n)| Query {
            sql: format!(
                "SELECT x.k, y.a AS ya, x.b FROM {l} x JOIN {r} y ON x.k = y.k \
                 ORDER BY x.k, y.a NULLS FIRST, x.a, x.b, x.c, y.b, y.c LIMIT {n}"
            ),
            ordered: true,
        }),
        // Remote group query shapes: GROUP BY an expression, every splittable aggregate,
        // HAVING on an aggregate outside the select list, ORDER BY an aggregate with LIMIT.
        (t(), pred(""), 0..3i32).prop_map(move |(t, p, n)| Query {
            sql: format!(
                "SELECT a % 3 AS m, count(*), count(c), sum(c), avg(c), min(b), max(b), \
                 bool_or(c > 2), every(k > 2) FROM {t} WHERE {p} GROUP BY a % 3 \
                 HAVING max(k) >= {n} ORDER BY m NULLS FIRST"
            ),
            ordered: true,
        }),
        (t(), 0..4i64).prop_map(move |(t, n)| Query {
            sql: format!(
                "SELECT b, count(DISTINCT a), avg(DISTINCT c), sum(k) FROM {t} GROUP BY b \
                 HAVING count(*) > 0 ORDER BY count(DISTINCT a) DESC, b NULLS FIRST LIMIT {n}"
            ),
            ordered: true,
        }),
        // A global aggregate over no rows: one row, count 0, the others NULL.
        (t(), icol()).prop_map(move |(t, g)| un(format!(
            "SELECT count(*), count({g}), sum({g}), avg({g}), min(b), count(DISTINCT {g}) \
             FROM {t} WHERE k < 0"
        ))),
        // Aggregates over joins (colocated when both hash k on the same nodes, else not).
        (t(), t(), icol(), 0..3i32).prop_map(move |(l, r, g, n)| un(format!(
            "SELECT x.{g}, count(DISTINCT y.b), sum(y.k), avg(x.c), count(*) FROM {l} x \
             JOIN {r} y ON x.k = y.k GROUP BY x.{g} HAVING count(*) > {n}"
        ))),
        (t(), t(), icol(), icol()).prop_map(move |(l, r, lc, rc)| un(format!(
            "SELECT y.b, count(*), count(x.a), max(y.c) FROM {l} x LEFT JOIN {r} y \
             ON x.{lc} = y.{rc} GROUP BY y.b"
        ))),
        // Subqueries in FROM and correlated semi joins.
        (t(), 0..3i64).prop_map(move |(t, n)| un(format!(
            "SELECT s.g, s.n FROM (SELECT a AS g, count(*) AS n FROM {t} GROUP BY a) s \
             WHERE s.n > {n}"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT x.k, x.a FROM {l} x WHERE x.a IN (SELECT y.a FROM {r} y WHERE y.k > x.c)"
        ))),
        // Ordered set operations and DISTINCT with LIMIT/OFFSET.
        (t(), t(), 0..6i64).prop_map(move |(l, r, n)| Query {
            sql: format!(
                "(SELECT a FROM {l}) UNION (SELECT k FROM {r}) ORDER BY 1 NULLS FIRST LIMIT {n}"
            ),
            ordered: true,
        }),
        (t(), 0..6i64, 0..3i64).prop_map(move |(t, n, m)| Query {
            sql: format!(
                "SELECT DISTINCT a, b FROM {t} ORDER BY a NULLS LAST, b NULLS LAST \
                 LIMIT {n} OFFSET {m}"
            ),
            ordered: true,
        }),
        // DISTINCT and set operations.
        (t(), col(), col()).prop_map(move |(t, x, y)| un(format!("SELECT DISTINCT {x}, {y} FROM {t}"))),
        // Plain DISTINCT pushed down (a GROUP BY of the output on each node, DISTINCT here), or
        // shipped whole when it includes the distribution key; single tables and joins.
        (t(), pred(""), col()).prop_map(move |(t, p, x)| un(format!(
            "SELECT DISTINCT a % 3 AS m, {x}, 1 AS one, d FROM {t} WHERE {p}"
        ))),
        (t(), pred("")).prop_map(move |(t, p)| un(format!("SELECT DISTINCT k, b FROM {t} WHERE {p}"))),
        (t(), pred("")).prop_map(move |(t, p)| un(format!("SELECT DISTINCT * FROM {t} WHERE {p}"))),
        (t(), 0..6i64).prop_map(move |(t, n)| Query {
            sql: format!(
                "SELECT DISTINCT b, e FROM {t} ORDER BY e NULLS FIRST, b DESC NULLS LAST LIMIT {n}"
            ),
            ordered: true,
        }),
        (t(), t(), pred("x.")).prop_map(move |(l, r, p)| un(format!(
            "SELECT DISTINCT x.b, y.c FROM {l} x JOIN {r} y ON x.k = y.k WHERE {p}"
        ))),
        (t(), t(), 0..6i64).prop_map(move |(l, r, n)| Query {
            sql: format!(
                "SELECT DISTINCT x.a, y.e FROM {l} x JOIN {r} y ON x.k = y.k \
                 ORDER BY x.a NULLS FIRST, y.e NULLS FIRST LIMIT {n}"
            ),
            ordered: true,
        }),
        // Few columns of wide tables through the fallback (outer joins, subqueries): the remote
        // scans fetch only what the query reads.
        (t(), t(), 0..3i32).prop_map(move |(l, r, n)| un(format!(
            "SELECT x.e, count(*), sum(y.d) FROM {l} x LEFT JOIN {r} y ON x.a = y.c \
             WHERE y.d > {n} OR y.d IS NULL GROUP BY x.e"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT e, d FROM {l} WHERE k IN (SELECT a FROM {r} y WHERE y.e IS NOT NULL)"
        ))),
        (t(), t()).prop_map(move |(l, r)| un(format!(
            "SELECT x.b, y.e FROM {l} x FULL JOIN {r} y USING (k) WHERE x.d > 0 OR y.d < 2"
        ))),
        (
            t(),
            t(),
            proptest::sample::select(vec![
                "UNION", "UNION ALL", "INTERSECT", "INTERSECT ALL", "EXCEPT", "EXCEPT ALL"
            ])
        )
            .prop_map(move |(l, r, op)| un(format!("SELECT a FROM {l} {op} SELECT c FROM {r}"))),
    ]
}

/// The settings every query runs under: every pushdown on, then each of Postgres-XC's switches
/// off on its own.
const MODES: [&str; 6] = [
    "RESET ALL",
    "RESET ALL; SET enable_fast_query_shipping = off",
    "RESET ALL; SET enable_remotegroup = off",
    "RESET ALL; SET enable_remotejoin = off",
    "RESET ALL; SET enable_remotesort = off",
    "RESET ALL; SET enable_remotelimit = off",
];

/// One generated case: tables and queries over them.
#[derive(Clone, Debug)]
struct Case {
    tables: Vec<Table>,
    queries: Vec<Query>,
}

fn case() -> impl Strategy<Value = Case> {
    // Mostly two or three tables, so that joins between differently distributed tables are
    // frequent.
    prop_oneof![1 => Just(1usize), 3 => 2..=3usize]
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(table(), n),
                proptest::collection::vec(query(n), 12),
                proptest::bool::weighted(0.5),
            )
        })
        .prop_map(|(mut tables, queries, colocate)| {
            // Half the schemas put every table on the same nodes, so that joins on the
            // distribution key are colocated (and shipped whole) often.
            if colocate {
                let nodes = tables[0].nodes.clone();
                for t in &mut tables {
                    t.nodes = nodes.clone();
                }
            }
            Case { tables, queries }
        })
}

// ---- the two systems ------------------------------------------------------------------------

struct Cluster {
    _gtm: GtmServer,
    coord: Arc<Coordinator>,
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
    for i in 1..=DATANODES {
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
    let client = GtmClient::connect(addrs.clone(), ClientOptions::default())
        .await
        .expect("gtm client");
    let eng = engine(&client, "cn1").await;
    let cfg = CoordinatorConfig {
        name: "cn1".into(),
        datanodes: dns,
        peers: Vec::new(),
        preferred: None,
        max_pool_size: 8,
    };
    let coord = Coordinator::start(cfg, eng, client)
        .await
        .expect("coordinator");
    Cluster { _gtm: gtm, coord }
}

/// A result as comparable text: the column names and rows of rendered values (None = NULL), or
/// the error's SQLSTATE.
type Outcome = Result<(Vec<String>, Vec<Vec<Option<String>>>), String>;

fn render(r: Result<Vec<QueryResult>, pgxc_common::PgError>, ordered: bool) -> Outcome {
    let tz = TimeZone::utc();
    match r {
        Err(e) => Err(e.code.code().to_string()),
        Ok(mut rs) => {
            let r = rs.pop().unwrap_or_else(|| QueryResult::command("EMPTY"));
            let mut rows: Vec<Vec<Option<String>>> = r
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
                rows.sort();
            }
            Ok((r.columns.iter().map(|(n, _)| n.clone()).collect(), rows))
        }
    }
}

/// Per-run tallies: queries that returned rows on both sides, and queries both refused (same SQLSTATE).
#[derive(Default)]
struct Tally {
    rows: usize,
    errors: std::collections::BTreeMap<String, usize>,
}

async fn run_case(
    cluster: &Cluster,
    reference: &Arc<Engine>,
    case: &Case,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut cs = CoordSession::new(&cluster.coord).map_err(|e| e.to_string())?;
    let mut script = String::new();
    let names: Vec<String> = (0..case.tables.len()).map(|i| format!("t{i}")).collect();
    for (t, name) in case.tables.iter().zip(&names) {
        let mut stmts = vec![(t.ddl(name, true), t.ddl(name, false))];
        if let Some(ins) = t.insert(name) {
            stmts.push((ins.clone(), ins));
        }
        for (dist_sql, ref_sql) in stmts {
            let _ = writeln!(script, "{dist_sql};");
            cs.execute(&dist_sql)
                .await
                .map_err(|e| format!("cluster: {dist_sql}: {e}\n{script}"))?;
            let eng = Arc::clone(reference);
            tokio::task::spawn_blocking(move || {
                let mut s = eng.session();
                s.execute(&ref_sql).map(|_| ())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reference: {e}\n{script}"))?;
        }
    }
    let mut failure = None;
    // Every query with every pushdown on, then with Postgres-XC's switches off.
    let modes = MODES;
    let runs = modes
        .iter()
        .flat_map(|m| case.queries.iter().map(move |q| (*m, q)));
    let mut mode = "";
    for (m, q) in runs {
        if m != mode {
            mode = m;
            for set in m.split("; ") {
                cs.execute(set)
                    .await
                    .map_err(|e| format!("cluster: {set}: {e}"))?;
            }
        }
        let got = render(cs.execute(&q.sql).await, q.ordered);
        let eng = Arc::clone(reference);
        let sql = q.sql.clone();
        let want = tokio::task::spawn_blocking(move || {
            let mut s = eng.session();
            s.execute(&sql)
        })
        .await
        .map_err(|e| e.to_string())?;
        let want = render(want, q.ordered);
        match &want {
            Ok(_) => tally.rows += 1,
            Err(code) => {
                *tally
                    .errors
                    .entry(format!("{code}: {}", q.sql))
                    .or_default() += 1
            }
        }
        if got != want {
            failure = Some(format!(
                "{script}{mode};\n{};\n  cluster:   {got:?}\n  reference: {want:?}",
                q.sql
            ));
            break;
        }
    }
    // Clean up both sides whatever happened, so the next case starts empty.
    let _ = cs.execute("RESET ALL").await;
    for name in &names {
        let drop = format!("DROP TABLE IF EXISTS {name}");
        let _ = cs.execute(&drop).await;
        let eng = Arc::clone(reference);
        let _ = tokio::task::spawn_blocking(move || eng.session().execute(&drop).map(|_| ())).await;
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

#[test]
fn cluster_returns_what_one_node_returns() {
    let cases: u32 = std::env::var("PGXC_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("PGXC_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_130);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (cluster, reference) = rt.block_on(async {
        let cluster = cluster().await;
        let reference = tokio::task::spawn_blocking(|| {
            Engine::open(&Disk::sim(SimDisk::new()), "reference").expect("reference engine")
        })
        .await
        .expect("join");
        (cluster, reference)
    });
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = case();
    let mut queries = 0usize;
    let mut tally = Tally::default();
    for i in 0..cases {
        let tree = strategy
            .new_tree(&mut runner)
            .expect("the strategy generates cases");
        let case = tree.current();
        queries += case.queries.len();
        if let Err(f) = rt.block_on(run_case(&cluster, &reference, &case, &mut tally)) {
            panic!(
                "case {i} of seed {seed}: the cluster and one node disagree:\n{f}\n\
                 replay: PGXC_DIFF_SEED={seed} PGXC_DIFF_CASES={} cargo test -p pgxc-coordinator \
                 --test differential",
                i + 1
            );
        }
    }
    eprintln!(
        "differential: {cases} schemas, {queries} queries, each run {} times (every pushdown on, then \
         each of enable_fast_query_shipping, enable_remotegroup, enable_remotejoin, \
         enable_remotesort, enable_remotelimit off): all agree ({} runs with rows, {} refused by \
         both; PGXC_DIFF_CASES=N for more, PGXC_DIFF_SEED=S for another seed)",
        MODES.len(),
        tally.rows,
        tally.errors.values().sum::<usize>()
    );
    // The generator makes valid queries: both sides refusing one means the test lost its teeth.
    assert!(
        tally.errors.is_empty(),
        "queries refused by both sides: {:#?}",
        tally.errors
    );
    // Drop the engines off the runtime's workers.
    drop(reference);
    drop(cluster);
    rt.shutdown_background();
}
