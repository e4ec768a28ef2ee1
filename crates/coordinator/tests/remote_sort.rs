//! ORDER BY over a distributed table as a k-way merge of the datanodes' sorted streams
//! (`remote_sort`), over an in-process cluster of three datanodes:
//!
//! - 20 000 rows (int, text and numeric columns with NULLs and many ties): ORDER BY ASC, DESC,
//!   NULLS FIRST/LAST, several keys, keys not in the output, output positions and aliases, with
//!   and without LIMIT/OFFSET, each result equal row for row to a standalone engine's over the
//!   same rows and to the coordinator's re-sort (`SET enable_remotesort = off`); a third of
//!   them also over 100 000 rows against the standalone engine;
//! - a full 100 000-row ORDER BY without LIMIT streamed to the client (`execute_streaming`,
//!   `fetch_stream`) with `pgxc.remote_fetch_size = 1000` holds at most one batch per datanode
//!   (`peak_buffered_rows`), and a LIMIT inside a transaction block leaves the block usable;
//! - EXPLAIN shows the merge (`Merge Append` over `Data Node Scan`, the pushed ORDER BY in the
//!   `Remote query:`), and statements the merge cannot handle keep the coordinator's Sort.
#![cfg(not(madsim))]

use std::sync::Arc;

use pgxc_coordinator::session::stream::{peak_buffered_rows, reset_peak_buffered_rows};
use pgxc_coordinator::session::CoordSession;
use pgxc_sql::types::Value;
use pgxc_sql::Engine;
use pgxc_storage::{Disk, SimDisk};

mod common;
use common::*;

/// Datanodes of the cluster.
const NODES: usize = 3;
/// Rows of the big table.
const BIG: i64 = 100_000;
/// Rows of the small table (compared with the coordinator's own re-sort too).
const SMALL: i64 = 20_000;
/// `pgxc.remote_fetch_size` of the streaming check.
const FETCH: usize = 1_000;

/// The select list generating row `i` (ints with NULLs and ties, text with mixed case and
/// NULLs, numeric with fractions and NULLs). No quotes, so it fits in EXECUTE DIRECT's literal.
const GEN: &str = "i, CASE WHEN i % 101 = 0 THEN NULL ELSE i * 37 % 1000 END, \
     CASE WHEN i % 89 = 0 THEN NULL WHEN i % 3 = 0 THEN upper(substr(md5(i::text), 1, 3)) \
     ELSE substr(md5(i::text), 1, 3) END, \
     CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 13 % 2000)::numeric / 8 END";

/// The statements checked, over table `T` (`{t}`), each with a total order on the rows it
/// returns (ties broken by `id`) or returning only key columns, so any two correct answers are
/// equal row for row.
const QUERIES: &[&str] = &[
    "SELECT id, g FROM {t} ORDER BY g, id",
    "SELECT id, g FROM {t} ORDER BY g DESC, id DESC",
    "SELECT id, g FROM {t} ORDER BY g NULLS FIRST, id LIMIT 3000",
    "SELECT id, g FROM {t} ORDER BY g DESC NULLS LAST, id OFFSET 100",
    "SELECT s, id FROM {t} ORDER BY s, id LIMIT 100",
    "SELECT s, id FROM {t} ORDER BY s DESC, id LIMIT 100 OFFSET 5000",
    "SELECT id, n FROM {t} ORDER BY n DESC, id LIMIT 50 OFFSET 1000",
    "SELECT id, n FROM {t} ORDER BY n NULLS FIRST, id DESC LIMIT 700",
    "SELECT id, s AS label FROM {t} ORDER BY label DESC, 1 OFFSET 15000",
    "SELECT id FROM {t} ORDER BY g, s, n DESC, id LIMIT 500",
    "SELECT * FROM {t} WHERE g > 500 ORDER BY 2, 1 LIMIT 4000",
    "SELECT x.id, x.n * 2 AS dbl FROM {t} x ORDER BY dbl, id LIMIT 20",
    "SELECT id, upper(s) FROM {t} ORDER BY lower(s) DESC NULLS LAST, id LIMIT 30",
    "SELECT g FROM {t} ORDER BY g",
    "SELECT n, g FROM {t} WHERE id % 7 = 0 ORDER BY 1 DESC, 2",
    "SELECT id, g FROM {t} ORDER BY g LIMIT 0",
    "SELECT id, g FROM {t} ORDER BY id LIMIT 5 OFFSET 199998",
];

fn sql_for(q: &str, t: &str) -> String {
    q.replace("{t}", t)
}

/// Create `t` round robin over the datanodes and fill it with rows 1..=`rows`, each datanode
/// getting a contiguous share (EXECUTE DIRECT: placement is free under round robin).
async fn load(s: &mut CoordSession, t: &str, rows: i64) {
    q(
        s,
        &format!("CREATE TABLE {t} (id int, g int, s text, n numeric) DISTRIBUTE BY ROUNDROBIN"),
    )
    .await;
    let share = rows / NODES as i64 + 1;
    for k in 0..NODES as i64 {
        let (lo, hi) = (k * share + 1, ((k + 1) * share).min(rows));
        q(
            s,
            &format!(
                "EXECUTE DIRECT ON (dn{}) 'INSERT INTO {t} SELECT {GEN} FROM generate_series({lo}, {hi}) i'",
                k + 1
            ),
        )
        .await;
    }
    let n = q(s, &format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(int(&n[0][0]), rows, "{t} loaded");
}

/// A standalone engine holding the same two tables.
fn reference() -> Arc<Engine> {
    let eng = Engine::open(&Disk::sim(SimDisk::new()), "reference").expect("reference engine");
    let mut s = eng.session();
    for (t, rows) in [("big", BIG), ("small", SMALL)] {
        s.execute(&format!(
            "CREATE TABLE {t} (id int, g int, s text, n numeric); \
             INSERT INTO {t} SELECT {GEN} FROM generate_series(1, {rows}) i"
        ))
        .expect("reference rows");
    }
    eng
}

/// The standalone engine's rows for `sql` (on a blocking thread: the engine runs its own).
async fn engine_rows(eng: &Arc<Engine>, sql: &str) -> Vec<Vec<Value>> {
    let (eng, sql) = (Arc::clone(eng), sql.to_string());
    tokio::task::spawn_blocking(move || {
        let mut r = eng
            .session()
            .execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        r.pop().map(|r| r.rows).unwrap_or_default()
    })
    .await
    .expect("reference query")
}

/// The EXPLAIN lines of `sql`.
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

fn same(got: &[Vec<Value>], want: &[Vec<Value>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: row {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_order_by() {
    let c = cluster(NODES, 1).await;
    let mut s = CoordSession::new(&c.coords[0]).expect("session");
    load(&mut s, "big", BIG).await;
    load(&mut s, "small", SMALL).await;
    let eng = tokio::task::spawn_blocking(reference)
        .await
        .expect("reference engine");

    // The route: a merge of the nodes' sorted streams, the keys pushed as output positions.
    assert_eq!(
        plan(
            &mut s,
            "EXPLAIN (COSTS OFF, VERBOSE) SELECT id, s AS label FROM big b \
             ORDER BY label DESC, g NULLS FIRST LIMIT 10 OFFSET 5"
        )
        .await,
        vec![
            "Limit",
            "  Output: id, s, g",
            "  ->  Merge Append",
            "        Output: id, s, g",
            "        Sort Key: s DESC, g NULLS FIRST",
            "        ->  Data Node Scan on big b",
            "              Output: id, s, g",
            "              Node/s: dn1, dn2, dn3",
            "              Remote query: SELECT id, s AS label, g FROM public.big AS \"b\" \
             ORDER BY 2 DESC, 3 NULLS FIRST LIMIT 15",
        ]
    );
    // What the merge cannot take keeps the coordinator's Sort over the candidates.
    for sql in [
        "SELECT id FROM big ORDER BY random() LIMIT 3",
        "SELECT DISTINCT ON (g) g, id FROM big ORDER BY g, id LIMIT 3",
        "SELECT id FROM big ORDER BY s COLLATE \"C\" LIMIT 3",
        "SELECT id, g::text FROM big ORDER BY g LIMIT 3",
    ] {
        let lines = plan(&mut s, &format!("EXPLAIN (COSTS OFF) {sql}")).await;
        assert!(
            !lines.iter().any(|l| l.contains("Merge Append")),
            "{sql}: {lines:?}"
        );
    }
    // Those still answer as the engine does.
    let want = engine_rows(&eng, "SELECT id, g::text FROM big ORDER BY g, id LIMIT 3").await;
    same(
        &q(&mut s, "SELECT id, g::text FROM big ORDER BY g, id LIMIT 3").await,
        &want,
        "cast output",
    );

    // Every statement, merged, against the standalone engine; over the small table also
    // against the coordinator's re-sort.
    for t in ["big", "small"] {
        for (i, query) in QUERIES.iter().enumerate() {
            // The big table takes every third statement (the rest costs time, not coverage).
            if t == "big" && i % 3 != 1 {
                continue;
            }
            let sql = sql_for(query, t);
            let lines = plan(&mut s, &format!("EXPLAIN (COSTS OFF) {sql}")).await;
            assert!(
                lines.iter().any(|l| l.contains("Merge Append")),
                "{sql} is merged: {lines:?}"
            );
            let got = q(&mut s, &sql).await;
            let want = engine_rows(&eng, &sql).await;
            same(&got, &want, &sql);
            if t == "small" {
                q(&mut s, "SET enable_remotesort = off").await;
                let resorted = q(&mut s, &sql).await;
                q(&mut s, "RESET enable_remotesort").await;
                same(&got, &resorted, &format!("{sql} (enable_remotesort off)"));
            }
        }
    }

    // A full ORDER BY without LIMIT streams to the client holding one batch per datanode.
    let sql = "SELECT id, g, s FROM big ORDER BY s DESC, g, id";
    let want = engine_rows(&eng, sql).await;
    q(&mut s, &format!("SET pgxc.remote_fetch_size = {FETCH}")).await;
    reset_peak_buffered_rows();
    let (results, stream) = s.execute_streaming(sql).await.expect("streaming select");
    let id = stream.expect("the result streams");
    assert_eq!(
        results.last().map(|r| r.columns.len()),
        Some(3),
        "hidden columns never reach the client"
    );
    let mut got = Vec::new();
    let tag = loop {
        match s.fetch_stream(id, usize::MAX).await.expect("fetch") {
            Ok(rows) => {
                assert!(rows.len() <= FETCH, "a batch of {} rows", rows.len());
                got.extend(rows);
            }
            Err(tag) => break tag,
        }
    };
    assert_eq!(tag, format!("SELECT {BIG}"));
    same(&got, &want, "streamed merge");
    let peak = peak_buffered_rows();
    assert!(
        peak <= NODES * FETCH + 16,
        "peak buffered rows {peak} > {NODES} × {FETCH}"
    );
    assert!(
        peak >= FETCH,
        "the rows went through the stream buffers ({peak})"
    );

    // LIMIT inside a block: the nodes' unread rows are dropped and the block goes on.
    q(&mut s, "BEGIN").await;
    let sql = "SELECT id, n FROM big ORDER BY n, id LIMIT 2500 OFFSET 10";
    let want = engine_rows(&eng, sql).await;
    let (_, stream) = s.execute_streaming(sql).await.expect("streaming select");
    let id = stream.expect("the result streams");
    let mut got = Vec::new();
    while let Ok(rows) = s.fetch_stream(id, 700).await.expect("fetch") {
        got.extend(rows);
    }
    same(&got, &want, "limited merge in a block");
    let n = q(&mut s, "SELECT count(*) FROM big WHERE g IS NULL").await;
    assert_eq!(
        int(&n[0][0]),
        (1..=BIG).filter(|i| i % 101 == 0).count() as i64
    );
    q(&mut s, "COMMIT").await;
    assert_eq!(s.buffered_rows(), 0);
    // The engine runs a runtime of its own: drop it off the test's.
    tokio::task::spawn_blocking(move || drop(eng))
        .await
        .expect("engine dropped");
}
