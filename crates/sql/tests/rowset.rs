//! Session rowsets (`Session::rowset_create` / `rowset_append` / `rowset_drop`): typed in-memory
//! row sets queried by bare name like a read-only table, with the planner (`Named Tuplestore
//! Scan`) and with the interpreter (`pgxc.use_planner = off`); shadowing, SQLSTATEs, the
//! lifetime rule (dropped when a transaction block ends, kept between statements) and
//! read-only-ness.

use pgxc_common::SqlState;
use pgxc_sql::types::{DataType, Value};
use pgxc_sql::{Engine, Session};
use pgxc_storage::{Disk, SimDisk};

fn session() -> Session {
    let engine = Engine::open(&Disk::sim(SimDisk::new()), "rowset.redb").expect("engine");
    engine.session()
}

fn run(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    match s.execute(sql) {
        Ok(mut r) => r.pop().map(|r| r.rows).unwrap_or_default(),
        Err(e) => panic!("{sql}: {e:?}"),
    }
}

fn fails(s: &mut Session, sql: &str) -> SqlState {
    match s.execute(sql) {
        Ok(r) => panic!("{sql}: expected an error, got {r:?}"),
        Err(e) => e.code,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        other => format!("{other:?}"),
    }
}

fn plan(s: &mut Session, sql: &str) -> String {
    run(s, &format!("EXPLAIN (COSTS OFF) {sql}"))
        .iter()
        .map(|r| text(&r[0]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn int8(v: i64) -> Value {
    Value::Int8(v)
}

fn int4(v: i32) -> Value {
    Value::Int4(v)
}

fn txt(v: &str) -> Value {
    Value::Text(v.to_string())
}

/// Table `t` (id int PRIMARY KEY, v text; ids 1..=10, v = 't' || id) and rowset `rs`
/// (k int, name text) with rows (2,'b'), (4,'d'), (4,'dd'), (11,'k'), (NULL,'n').
fn setup() -> Session {
    let mut s = session();
    run(&mut s, "CREATE TABLE t (id int PRIMARY KEY, v text)");
    run(
        &mut s,
        "INSERT INTO t SELECT g, 't' || g FROM generate_series(1, 10) g",
    );
    s.rowset_create(
        "rs",
        vec![
            ("k".into(), DataType::Int4),
            ("name".into(), DataType::Text),
        ],
    )
    .expect("create");
    let n = s
        .rowset_append(
            "rs",
            vec![
                vec![int4(2), txt("b")],
                vec![int4(4), txt("d")],
                vec![int4(4), txt("dd")],
            ],
        )
        .expect("append");
    assert_eq!(n, 3);
    let n = s
        .rowset_append(
            "rs",
            vec![vec![int4(11), txt("k")], vec![Value::Null, txt("n")]],
        )
        .expect("append");
    assert_eq!(n, 5);
    s
}

/// Run `check` with the planner and with the interpreter.
fn both_paths(s: &mut Session, check: impl Fn(&mut Session)) {
    check(s);
    run(s, "SET pgxc.use_planner = off");
    check(s);
    run(s, "SET pgxc.use_planner = on");
}

#[test]
fn scan_filter_order_and_aggregates() {
    let mut s = setup();
    both_paths(&mut s, |s| {
        assert_eq!(
            run(s, "SELECT k, name FROM rs WHERE k >= 4 ORDER BY name"),
            vec![
                vec![int4(4), txt("d")],
                vec![int4(4), txt("dd")],
                vec![int4(11), txt("k")],
            ]
        );
        assert_eq!(
            run(s, "SELECT count(*), count(k), sum(k), max(name) FROM rs"),
            vec![vec![int8(5), int8(4), int8(21), txt("n")]]
        );
        assert_eq!(
            run(
                s,
                "SELECT k, count(*) FROM rs GROUP BY k HAVING count(*) > 1 ORDER BY k"
            ),
            vec![vec![int4(4), int8(2)]]
        );
        assert_eq!(
            run(s, "SELECT r.name FROM rs AS r WHERE r.k IS NULL"),
            vec![vec![txt("n")]]
        );
        assert_eq!(
            run(s, "SELECT x.a FROM rs x (a, b) WHERE x.b = 'b'"),
            vec![vec![int4(2)]]
        );
    });
}

#[test]
fn joins_with_tables_and_rowsets() {
    let mut s = setup();
    s.rowset_create(
        "other",
        vec![("k".into(), DataType::Int8), ("w".into(), DataType::Text)],
    )
    .expect("create");
    s.rowset_append(
        "other",
        vec![vec![int8(4), txt("four")], vec![int8(2), txt("two")]],
    )
    .expect("append");
    both_paths(&mut s, |s| {
        assert_eq!(
            run(
                s,
                "SELECT t.id, t.v, rs.name FROM t JOIN rs ON rs.k = t.id ORDER BY rs.name"
            ),
            vec![
                vec![int4(2), txt("t2"), txt("b")],
                vec![int4(4), txt("t4"), txt("d")],
                vec![int4(4), txt("t4"), txt("dd")],
            ]
        );
        assert_eq!(
            run(
                s,
                "SELECT rs.name, t.v FROM rs LEFT JOIN t ON t.id = rs.k ORDER BY rs.name"
            ),
            vec![
                vec![txt("b"), txt("t2")],
                vec![txt("d"), txt("t4")],
                vec![txt("dd"), txt("t4")],
                vec![txt("k"), Value::Null],
                vec![txt("n"), Value::Null],
            ]
        );
        assert_eq!(
            run(
                s,
                "SELECT rs.name, o.w FROM rs, other o WHERE o.k = rs.k ORDER BY 1"
            ),
            vec![
                vec![txt("b"), txt("two")],
                vec![txt("d"), txt("four")],
                vec![txt("dd"), txt("four")],
            ]
        );
        assert_eq!(
            run(
                s,
                "SELECT id FROM t WHERE id IN (SELECT k FROM rs) ORDER BY id"
            ),
            vec![vec![int4(2)], vec![int4(4)]]
        );
        assert_eq!(
            run(
                s,
                "SELECT count(*) FROM t WHERE NOT EXISTS (SELECT 1 FROM rs WHERE rs.k = t.id)"
            ),
            vec![vec![int8(8)]]
        );
        assert_eq!(
            run(
                s,
                "SELECT s.n FROM (SELECT count(*) AS n FROM rs WHERE k < 5) s"
            ),
            vec![vec![int8(3)]]
        );
    });
}

#[test]
fn explain_names_the_rowset() {
    let mut s = setup();
    let p = plan(&mut s, "SELECT * FROM rs WHERE k = 4");
    assert!(p.contains("Named Tuplestore Scan on rs"), "{p}");
    assert!(p.contains("Filter: (k = 4)"), "{p}");
    let p = plan(&mut s, "SELECT t.v FROM t JOIN rs r ON r.k = t.id");
    assert!(p.contains("Named Tuplestore Scan on rs r"), "{p}");
    assert!(p.contains("Join"), "{p}");
}

#[test]
fn a_large_rowset_joins_a_table() {
    let mut s = session();
    run(&mut s, "CREATE TABLE big (id int PRIMARY KEY, g int)");
    run(
        &mut s,
        "INSERT INTO big SELECT g, g % 7 FROM generate_series(1, 20000) g",
    );
    s.rowset_create(
        "moved",
        vec![("id".into(), DataType::Int4), ("w".into(), DataType::Int8)],
    )
    .expect("create");
    // Two appends; ids 2, 4, ..., 40000 (half of them match `big`).
    for half in 0..2 {
        let rows = (1..=10000)
            .map(|i| vec![int4((half * 10000 + i) * 2), int8(1)])
            .collect();
        s.rowset_append("moved", rows).expect("append");
    }
    assert_eq!(
        run(
            &mut s,
            "SELECT count(*), sum(m.w)::int8, sum(b.g) FROM big b JOIN moved m ON m.id = b.id"
        ),
        // ids 2..=20000 step 2: 10000 rows; sum of (id % 7) over them.
        vec![vec![
            int8(10000),
            int8(10000),
            int8((1..=10000).map(|i| i64::from(i * 2 % 7)).sum())
        ]]
    );
}

#[test]
fn a_rowset_shadows_a_table_and_a_cte_shadows_the_rowset() {
    let mut s = setup();
    run(&mut s, "CREATE TABLE shadow (x int)");
    run(&mut s, "INSERT INTO shadow VALUES (100)");
    s.rowset_create("shadow", vec![("y".into(), DataType::Int4)])
        .expect("create");
    s.rowset_append("shadow", vec![vec![int4(7)]])
        .expect("append");
    both_paths(&mut s, |s| {
        assert_eq!(run(s, "SELECT * FROM shadow"), vec![vec![int4(7)]]);
        // A qualified name is the table.
        assert_eq!(run(s, "SELECT * FROM public.shadow"), vec![vec![int4(100)]]);
        assert_eq!(
            run(s, "WITH shadow AS (SELECT 1 AS z) SELECT z FROM shadow"),
            vec![vec![int4(1)]]
        );
    });
    assert!(s.rowset_drop("shadow"));
    assert!(!s.rowset_drop("shadow"));
    assert_eq!(run(&mut s, "SELECT * FROM shadow"), vec![vec![int4(100)]]);
}

#[test]
fn errors_carry_sqlstates() {
    let mut s = setup();
    let code = |r: Result<u64, pgxc_common::PgError>| r.expect_err("must fail").code;
    // Duplicate name, empty column list, repeated column.
    let e = s
        .rowset_create("rs", vec![("a".into(), DataType::Int4)])
        .expect_err("dup");
    assert_eq!(e.code, SqlState::DuplicateTable);
    let e = s.rowset_create("empty", Vec::new()).expect_err("empty");
    assert_eq!(e.code, SqlState::SyntaxError);
    let e = s
        .rowset_create(
            "twice",
            vec![("a".into(), DataType::Int4), ("a".into(), DataType::Text)],
        )
        .expect_err("twice");
    assert_eq!(e.code, SqlState::DuplicateColumn);
    // Unknown rowset, wrong width, wrong type, typmod overflow: nothing is appended.
    assert_eq!(
        code(s.rowset_append("nope", vec![vec![int4(1)]])),
        SqlState::UndefinedTable
    );
    assert_eq!(
        code(s.rowset_append("rs", vec![vec![int4(1), txt("a")], vec![int4(1)]])),
        SqlState::BadCopyFileFormat
    );
    assert_eq!(
        code(s.rowset_append("rs", vec![vec![txt("1"), txt("a")]])),
        SqlState::DatatypeMismatch
    );
    assert_eq!(
        code(s.rowset_append("rs", vec![vec![int8(1 << 40), txt("a")]])),
        SqlState::NumericValueOutOfRange
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM rs"), vec![vec![int8(5)]]);
    // Assignment casts apply (int8 into int4 in range, int4 into text); bool into int4 is
    // explicit only.
    assert_eq!(s.rowset_append("rs", vec![vec![int8(9), txt("i")]]), Ok(6));
    assert_eq!(s.rowset_append("rs", vec![vec![int4(12), int4(1)]]), Ok(7));
    assert_eq!(
        run(&mut s, "SELECT k FROM rs WHERE name = '1'"),
        vec![vec![int4(12)]]
    );
    assert_eq!(
        code(s.rowset_append("rs", vec![vec![Value::Bool(true), txt("x")]])),
        SqlState::DatatypeMismatch
    );
    s.rowset_create("vc", vec![("s".into(), DataType::Varchar(Some(2)))])
        .expect("create");
    assert_eq!(
        code(s.rowset_append("vc", vec![vec![txt("abc")]])),
        SqlState::StringDataRightTruncation
    );
    assert_eq!(s.rowset_append("vc", vec![vec![txt("ab")]]), Ok(1));
    // An unknown column still is 42703.
    assert_eq!(
        fails(&mut s, "SELECT nosuch FROM rs"),
        SqlState::UndefinedColumn
    );
    // The session stays usable.
    assert_eq!(
        run(&mut s, "SELECT k FROM rs WHERE name = 'i'"),
        vec![vec![int4(9)]]
    );
}

#[test]
fn rowsets_are_read_only() {
    let mut s = setup();
    assert_eq!(
        fails(&mut s, "INSERT INTO rs VALUES (1, 'x')"),
        SqlState::WrongObjectType
    );
    assert_eq!(
        fails(&mut s, "UPDATE rs SET name = 'x'"),
        SqlState::WrongObjectType
    );
    assert_eq!(
        fails(&mut s, "DELETE FROM rs WHERE k = 2"),
        SqlState::WrongObjectType
    );
    assert_eq!(fails(&mut s, "TRUNCATE rs"), SqlState::WrongObjectType);
    // Reading a rowset in a data-modifying statement on a table is fine.
    run(&mut s, "DELETE FROM t WHERE id IN (SELECT k FROM rs)");
    assert_eq!(run(&mut s, "SELECT count(*) FROM t"), vec![vec![int8(8)]]);
    run(
        &mut s,
        "INSERT INTO t SELECT k + 100, name FROM rs WHERE k IS NOT NULL AND name <> 'dd'",
    );
    assert_eq!(
        run(
            &mut s,
            "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id > 100"
        ),
        vec![vec![txt("b,d,k")]]
    );
    assert_eq!(run(&mut s, "SELECT count(*) FROM rs"), vec![vec![int8(5)]]);
}

#[test]
fn lifetime_follows_transaction_blocks() {
    let mut s = setup();
    // Outside a block: survives statements (implicit transactions).
    assert_eq!(run(&mut s, "SELECT count(*) FROM rs"), vec![vec![int8(5)]]);
    assert_eq!(run(&mut s, "SELECT count(*) FROM rs"), vec![vec![int8(5)]]);
    // Created before a block: dropped when that block commits.
    run(&mut s, "BEGIN");
    assert_eq!(run(&mut s, "SELECT count(*) FROM rs"), vec![vec![int8(5)]]);
    run(&mut s, "COMMIT");
    assert_eq!(fails(&mut s, "SELECT * FROM rs"), SqlState::UndefinedTable);
    assert!(!s.rowset_drop("rs"));

    // Created inside a block: kept between its statements, even across a failed statement
    // rolled back to a savepoint; dropped by ROLLBACK.
    run(&mut s, "BEGIN");
    s.rowset_create("b", vec![("x".into(), DataType::Int4)])
        .expect("create");
    s.rowset_append("b", vec![vec![int4(1)], vec![int4(2)]])
        .expect("append");
    run(&mut s, "SAVEPOINT sp");
    assert_eq!(fails(&mut s, "SELECT 1/0"), SqlState::DivisionByZero);
    run(&mut s, "ROLLBACK TO SAVEPOINT sp");
    assert_eq!(run(&mut s, "SELECT sum(x) FROM b"), vec![vec![int8(3)]]);
    s.rowset_append("b", vec![vec![int4(3)]]).expect("append");
    assert_eq!(run(&mut s, "SELECT sum(x) FROM b"), vec![vec![int8(6)]]);
    run(&mut s, "ROLLBACK");
    assert_eq!(fails(&mut s, "SELECT * FROM b"), SqlState::UndefinedTable);
    // The name is free again.
    s.rowset_create("b", vec![("x".into(), DataType::Text)])
        .expect("create again");
    assert_eq!(s.rowset_append("b", vec![vec![txt("z")]]), Ok(1));
    assert_eq!(run(&mut s, "SELECT x FROM b"), vec![vec![txt("z")]]);
    // Dropped explicitly inside a block; a failed block's ROLLBACK ends it too.
    run(&mut s, "BEGIN");
    assert!(s.rowset_drop("b"));
    s.rowset_create("c", vec![("x".into(), DataType::Int4)])
        .expect("create");
    assert_eq!(fails(&mut s, "SELECT 1/0"), SqlState::DivisionByZero);
    run(&mut s, "ROLLBACK");
    assert!(!s.rowset_drop("c"));
}
