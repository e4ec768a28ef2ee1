//! The direct row-load API, `Session::insert_values`: typed values land and read back equal,
//! conversions follow INSERT's assignment casts (text parsed by the column type's input
//! function), omitted columns get their defaults, constraint violations carry INSERT's
//! SQLSTATEs, and the transaction rules hold (a failed load fails the block, ROLLBACK undoes a
//! load, outside a block a load commits on its own and is all-or-nothing).

use pgxc_common::SqlState;
use pgxc_sql::types::datetime::TimeZone;
use pgxc_sql::types::Value;
use pgxc_sql::{Engine, Session};
use pgxc_storage::{Disk, SimDisk};

fn engine() -> std::sync::Arc<Engine> {
    Engine::open(&Disk::sim(SimDisk::new()), "load.redb").expect("engine")
}

fn exec(s: &mut Session, sql: &str) {
    if let Err(e) = s.execute(sql) {
        panic!("{sql}: {e:?}");
    }
}

/// The rows of `sql` in PostgreSQL's text form (`None` = NULL).
fn text_rows(s: &mut Session, sql: &str) -> Vec<Vec<Option<String>>> {
    let r = match s.execute(sql) {
        Ok(mut r) => r.pop().expect("a result"),
        Err(e) => panic!("{sql}: {e:?}"),
    };
    let tz = TimeZone::utc();
    r.rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&r.columns)
                .map(|(v, (_, ty))| v.to_text_opt(ty, &tz))
                .collect()
        })
        .collect()
}

fn t(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn typed_values_land_and_read_back_equal() {
    let e = engine();
    let mut s = e.session();
    exec(
        &mut s,
        "CREATE TABLE t (a int, b bigint, c text, d date, e boolean, f float8, g numeric, h bytea)",
    );
    let n = s
        .insert_values(
            "t",
            &[],
            vec![
                vec![
                    Value::Int4(1),
                    Value::Int8(10_000_000_000),
                    Value::Text("one".into()),
                    Value::Date(0),
                    Value::Bool(true),
                    Value::Float8(1.5),
                    Value::Text("12.340".into()),
                    Value::Bytea(vec![0xde, 0xad]),
                ],
                vec![
                    Value::Int4(-2),
                    Value::Null,
                    Value::Text("it's \"two\"".into()),
                    Value::Null,
                    Value::Bool(false),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            ],
        )
        .expect("load");
    assert_eq!(n, 2);
    // The typed values come back as they went in.
    let r = s
        .execute("SELECT * FROM t ORDER BY a")
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(r.rows[0][0], Value::Int4(-2));
    assert_eq!(r.rows[1][1], Value::Int8(10_000_000_000));
    assert_eq!(r.rows[1][3], Value::Date(0));
    assert_eq!(r.rows[1][5], Value::Float8(1.5));
    assert_eq!(
        text_rows(&mut s, "SELECT * FROM t ORDER BY a"),
        vec![
            vec![
                t("-2"),
                None,
                t("it's \"two\""),
                None,
                t("f"),
                None,
                None,
                None
            ],
            vec![
                t("1"),
                t("10000000000"),
                t("one"),
                t("2000-01-01"),
                t("t"),
                t("1.5"),
                t("12.340"),
                t("\\xdead")
            ],
        ]
    );
}

#[test]
fn values_convert_with_the_assignment_cast() {
    let e = engine();
    let mut s = e.session();
    exec(
        &mut s,
        "CREATE TABLE c (i8 bigint, n numeric(6,2), tx text, d date, i4 int, v varchar(3), ch char(4))",
    );
    s.insert_values(
        "c",
        &cols(&["i8", "n", "tx", "d", "i4", "v", "ch"]),
        vec![vec![
            Value::Int4(7),
            Value::Int4(3),
            Value::Int4(42),
            Value::Text("2024-02-29".into()),
            Value::Text(" 12 ".into()),
            Value::Text("abc".into()),
            Value::Text("x".into()),
        ]],
    )
    .expect("load");
    let r = s.execute("SELECT i8, i4 FROM c").unwrap().pop().unwrap();
    assert_eq!(r.rows, vec![vec![Value::Int8(7), Value::Int4(12)]]);
    assert_eq!(
        text_rows(&mut s, "SELECT i8, n, tx, d, i4, v, ch || '|' FROM c"),
        vec![vec![
            t("7"),
            t("3.00"),
            t("42"),
            t("2024-02-29"),
            t("12"),
            t("abc"),
            t("x|")
        ]]
    );
    // numeric(6,2) rounds as INSERT does; a text column keeps a float8's output form.
    s.insert_values(
        "c",
        &cols(&["n", "tx"]),
        vec![vec![Value::Float8(1.005), Value::Float8(0.25)]],
    )
    .expect("load");
    assert_eq!(
        text_rows(&mut s, "SELECT n, tx FROM c WHERE i8 IS NULL"),
        vec![vec![t("1.01"), t("0.25")]]
    );
    // The input function's errors, and a value with no assignment cast.
    let bad = |s: &mut Session, col: &str, v: Value| {
        s.insert_values("c", &cols(&[col]), vec![vec![v]])
            .expect_err("must fail")
    };
    let e1 = bad(&mut s, "i4", Value::Text("x".into()));
    assert_eq!(e1.code, SqlState::InvalidTextRepresentation);
    assert_eq!(e1.message, "invalid input syntax for type integer: \"x\"");
    assert_eq!(
        bad(&mut s, "d", Value::Text("2024-02-30".into())).code,
        SqlState::DatetimeFieldOverflow
    );
    assert_eq!(
        bad(&mut s, "v", Value::Text("abcd".into())).code,
        SqlState::StringDataRightTruncation
    );
    assert_eq!(
        bad(&mut s, "n", Value::Int8(10_000)).code,
        SqlState::NumericValueOutOfRange
    );
    let e2 = bad(&mut s, "d", Value::Int4(1));
    assert_eq!(e2.code, SqlState::DatatypeMismatch);
    assert_eq!(
        e2.message,
        "column \"d\" is of type date but expression is of type integer"
    );
    // Nothing of the failed loads is left.
    assert_eq!(
        text_rows(&mut s, "SELECT count(*) FROM c"),
        vec![vec![t("2")]]
    );
}

#[test]
fn omitted_columns_get_their_defaults() {
    let e = engine();
    let mut s = e.session();
    exec(
        &mut s,
        "CREATE TABLE d (id serial PRIMARY KEY, k int DEFAULT 7, \
         g int GENERATED ALWAYS AS IDENTITY, v text, w int GENERATED ALWAYS AS (k * 2) STORED)",
    );
    s.insert_values(
        "d",
        &cols(&["v"]),
        vec![vec![Value::Text("a".into())], vec![Value::Text("b".into())]],
    )
    .expect("load");
    s.insert_values(
        "d",
        &cols(&["V", "k"]),
        vec![vec![Value::Text("c".into()), Value::Int4(1)]],
    )
    .expect("load");
    assert_eq!(
        text_rows(&mut s, "SELECT id, k, g, v, w FROM d ORDER BY id"),
        vec![
            vec![t("1"), t("7"), t("1"), t("a"), t("14")],
            vec![t("2"), t("7"), t("2"), t("b"), t("14")],
            vec![t("3"), t("1"), t("3"), t("c"), t("2")],
        ]
    );
    // INSERT without a column list: a short row's remaining columns are defaulted.
    s.insert_values("d", &[], vec![vec![Value::Int4(10), Value::Int4(5)]])
        .expect("load");
    assert_eq!(
        text_rows(&mut s, "SELECT id, k, g, v, w FROM d WHERE id = 10"),
        vec![vec![t("10"), t("5"), t("4"), None, t("10")]]
    );
    // As INSERT: a value for a GENERATED ALWAYS identity column is 428C9.
    let e1 = s
        .insert_values("d", &cols(&["g"]), vec![vec![Value::Int4(1)]])
        .unwrap_err();
    assert_eq!(e1.code, SqlState::GeneratedAlways);
}

#[test]
fn names_resolve_like_insert() {
    let e = engine();
    let mut s = e.session();
    exec(
        &mut s,
        "CREATE SCHEMA s; CREATE TABLE s.\"Mixed\" (\"Key\" int, v int); CREATE TABLE t (a int)",
    );
    s.insert_values(
        "s.\"Mixed\"",
        &cols(&["\"Key\"", "V"]),
        vec![vec![Value::Int4(1), Value::Int4(2)]],
    )
    .expect("qualified");
    exec(&mut s, "SET search_path = s, public");
    s.insert_values("\"Mixed\"", &[], vec![vec![Value::Int4(3), Value::Int4(4)]])
        .expect("via search_path");
    s.insert_values("T", &[], vec![vec![Value::Int4(5)]])
        .expect("public via search_path");
    assert_eq!(
        text_rows(&mut s, "SELECT \"Key\", v FROM s.\"Mixed\" ORDER BY 1"),
        vec![vec![t("1"), t("2")], vec![t("3"), t("4")]]
    );
    assert_eq!(text_rows(&mut s, "SELECT a FROM t"), vec![vec![t("5")]]);
    let e1 = s.insert_values("nope", &[], vec![]).unwrap_err();
    assert_eq!(e1.code, SqlState::UndefinedTable);
    assert_eq!(e1.message, "relation \"nope\" does not exist");
    let e2 = s
        .insert_values("t", &cols(&["b"]), vec![vec![Value::Int4(1)]])
        .unwrap_err();
    assert_eq!(e2.code, SqlState::UndefinedColumn);
    assert_eq!(e2.message, "column \"b\" of relation \"t\" does not exist");
    let e3 = s
        .insert_values("t", &[], vec![vec![Value::Int4(1), Value::Int4(2)]])
        .unwrap_err();
    assert_eq!(e3.code, SqlState::SyntaxError);
    assert_eq!(
        e3.message,
        "INSERT has more expressions than target columns"
    );
    let e4 = s
        .insert_values("t", &cols(&["a", "a"]), vec![])
        .unwrap_err();
    assert_eq!(e4.code, SqlState::DuplicateColumn);
}

#[test]
fn constraint_violations_carry_insert_sqlstates() {
    let e = engine();
    let mut s = e.session();
    exec(
        &mut s,
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1); \
         CREATE TABLE k (id int PRIMARY KEY, v int NOT NULL CHECK (v > 0), \
         p int REFERENCES p (id))",
    );
    let load = |s: &mut Session, rows: Vec<Vec<Value>>| s.insert_values("k", &[], rows);
    let row = |id, v: Value, p: Value| vec![Value::Int4(id), v, p];
    let nn = load(&mut s, vec![row(1, Value::Null, Value::Null)]).unwrap_err();
    assert_eq!(nn.code, SqlState::NotNullViolation);
    assert_eq!(
        nn.message,
        "null value in column \"v\" of relation \"k\" violates not-null constraint"
    );
    let ck = load(&mut s, vec![row(1, Value::Int4(0), Value::Null)]).unwrap_err();
    assert_eq!(ck.code, SqlState::CheckViolation);
    assert_eq!(
        ck.message,
        "new row for relation \"k\" violates check constraint \"k_v_check\""
    );
    let fk = load(&mut s, vec![row(1, Value::Int4(1), Value::Int4(2))]).unwrap_err();
    assert_eq!(fk.code, SqlState::ForeignKeyViolation);
    // Two rows with one key in one load: the second is a unique violation and nothing lands.
    let uq = load(
        &mut s,
        vec![
            row(1, Value::Int4(1), Value::Int4(1)),
            row(1, Value::Int4(2), Value::Null),
        ],
    )
    .unwrap_err();
    assert_eq!(uq.code, SqlState::UniqueViolation);
    assert_eq!(
        uq.message,
        "duplicate key value violates unique constraint \"k_pkey\""
    );
    assert_eq!(
        text_rows(&mut s, "SELECT count(*) FROM k"),
        vec![vec![t("0")]]
    );
    assert_eq!(
        load(&mut s, vec![row(1, Value::Int4(1), Value::Int4(1))]).unwrap(),
        1
    );
    let again = load(&mut s, vec![row(1, Value::Int4(5), Value::Null)]).unwrap_err();
    assert_eq!(again.code, SqlState::UniqueViolation);
    assert_eq!(
        text_rows(&mut s, "SELECT id, v, p FROM k"),
        vec![vec![t("1"), t("1"), t("1")]]
    );
}

#[test]
fn loads_follow_the_transaction_block() {
    let e = engine();
    let mut s = e.session();
    let mut other = e.session();
    exec(&mut s, "CREATE TABLE b (id int PRIMARY KEY)");
    // Outside a block the load commits by itself: another session sees it.
    assert_eq!(
        s.insert_values("b", &[], vec![vec![Value::Int4(1)]])
            .unwrap(),
        1
    );
    assert!(!s.in_transaction());
    assert_eq!(
        text_rows(&mut other, "SELECT id FROM b"),
        vec![vec![t("1")]]
    );
    // ROLLBACK undoes a successful load.
    exec(&mut s, "BEGIN");
    s.insert_values("b", &[], vec![vec![Value::Int4(2)], vec![Value::Int4(3)]])
        .unwrap();
    assert_eq!(
        text_rows(&mut s, "SELECT count(*) FROM b"),
        vec![vec![t("3")]]
    );
    assert_eq!(
        text_rows(&mut other, "SELECT count(*) FROM b"),
        vec![vec![t("1")]]
    );
    exec(&mut s, "ROLLBACK");
    assert_eq!(text_rows(&mut s, "SELECT id FROM b"), vec![vec![t("1")]]);
    // A failed load fails the block: the next statement is 25P02, and so is another load.
    exec(&mut s, "BEGIN");
    s.insert_values("b", &[], vec![vec![Value::Int4(4)]])
        .unwrap();
    let dup = s
        .insert_values("b", &[], vec![vec![Value::Int4(1)]])
        .unwrap_err();
    assert_eq!(dup.code, SqlState::UniqueViolation);
    assert!(s.in_failed_transaction());
    let next = s.execute("SELECT 1").unwrap_err();
    assert_eq!(next.code, SqlState::InFailedSqlTransaction);
    let next = s
        .insert_values("b", &[], vec![vec![Value::Int4(5)]])
        .unwrap_err();
    assert_eq!(next.code, SqlState::InFailedSqlTransaction);
    exec(&mut s, "ROLLBACK");
    assert_eq!(text_rows(&mut s, "SELECT id FROM b"), vec![vec![t("1")]]);
    // Committed inside a block: visible to others after COMMIT.
    exec(&mut s, "BEGIN");
    s.insert_values("b", &[], vec![vec![Value::Int4(6)]])
        .unwrap();
    exec(&mut s, "COMMIT");
    assert_eq!(
        text_rows(&mut other, "SELECT id FROM b ORDER BY id"),
        vec![vec![t("1")], vec![t("6")]]
    );
    // A read-only block refuses a load (25006) and fails.
    exec(&mut s, "BEGIN READ ONLY");
    let ro = s
        .insert_values("b", &[], vec![vec![Value::Int4(7)]])
        .unwrap_err();
    assert_eq!(ro.code, SqlState::ReadOnlySqlTransaction);
    assert!(s.in_failed_transaction());
    exec(&mut s, "ROLLBACK");
}

#[test]
fn many_rows_load_in_batches() {
    let e = engine();
    let mut s = e.session();
    exec(&mut s, "CREATE TABLE m (k int PRIMARY KEY, v text)");
    let rows: Vec<Vec<Value>> = (0..5000)
        .map(|i| vec![Value::Int4(i), Value::Text(format!("v{i}"))])
        .collect();
    assert_eq!(s.insert_values("m", &[], rows).unwrap(), 5000);
    assert_eq!(
        text_rows(&mut s, "SELECT count(*), sum(k), min(v), max(v) FROM m"),
        vec![vec![t("5000"), t("12497500"), t("v0"), t("v999")]]
    );
    assert_eq!(
        text_rows(&mut s, "SELECT v FROM m WHERE k = 4321"),
        vec![vec![t("v4321")]]
    );
}
