//! The SQL front end: what real clients send parses, the Postgres-XC forms round-trip into their
//! structures, syntax errors carry PostgreSQL's message and position, and no input panics.

use pgxc_common::SqlState;
use pgxc_sql::parser::*;
use proptest::prelude::*;
use sqlparser::ast;

fn one(sql: &str) -> Statement {
    let mut v = parse(sql).unwrap_or_else(|e| panic!("{sql:?}: {e:?}"));
    assert_eq!(v.len(), 1, "{sql:?}: {v:?}");
    v.remove(0)
}

fn err(sql: &str) -> (SqlState, String, Option<u32>) {
    match parse(sql) {
        Ok(v) => panic!("{sql:?} parsed: {v:?}"),
        Err(e) => (e.code, e.message, e.position),
    }
}

fn id(s: &str) -> ast::Ident {
    ast::Ident::new(s)
}

fn names(v: &[ast::Ident]) -> Vec<String> {
    v.iter().map(normalize_ident).collect()
}

// ---------------------------------------------------------------------------------------------------
// What clients send (captured from PostgreSQL 15 with psql, pgbench, pg_dump and four drivers).

#[test]
fn every_captured_client_statement_parses() {
    let json = include_str!("data/compat_statements.json");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut n = 0;
    let mut failures = Vec::new();
    for item in v.as_array().unwrap() {
        let sql = item["sql"].as_str().unwrap();
        let src = item["src"].as_str().unwrap();
        n += 1;
        if let Err(e) = parse(sql) {
            failures.push(format!("[{src}] {e:?} :: {sql}"));
        }
    }
    assert!(n > 190, "{n}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn captured_forms_sqlparser_rejects_are_ours() {
    match one("copy pgbench_accounts from stdin with (freeze on)") {
        Statement::Copy(c) => {
            assert!(c.from);
            assert_eq!(c.target, CopyTarget::Stdin);
            assert_eq!(
                c.option("freeze").unwrap().value,
                Some(OptionValue::Word("on".into()))
            );
        }
        s => panic!("{s:?}"),
    }
    match one("vacuum analyze pgbench_branches") {
        Statement::Vacuum(v) => {
            assert!(v.option("analyze").is_some());
            assert_eq!(v.tables.len(), 1);
            assert_eq!(v.tables[0].name.to_string(), "pgbench_branches");
        }
        s => panic!("{s:?}"),
    }
}

/// A pg_dump script as psql sends it on restore (meta-commands and COPY data removed).
#[test]
fn pg_dump_restore_script_parses() {
    let script = include_str!("data/pg_dump_restore.sql");
    let mut sql = String::new();
    let mut in_copy = false;
    for line in script.lines() {
        if in_copy {
            in_copy = line != "\\.";
            continue;
        }
        if line.starts_with('\\') {
            continue;
        }
        if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            in_copy = true;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    let stmts = parse_spanned(&sql).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(stmts.len() > 25, "{}", stmts.len());
    // Each statement's text parses alone to the same thing.
    for s in &stmts {
        assert_eq!(&sql[s.span.clone()], s.text);
        assert_eq!(
            parse(&s.text).unwrap(),
            vec![s.statement.clone()],
            "{}",
            s.text
        );
    }
    assert!(stmts.iter().any(|s| matches!(
        &s.statement,
        Statement::Copy(Copy {
            from: true,
            target: CopyTarget::Stdin,
            ..
        })
    )));
    assert!(
        stmts
            .iter()
            .any(|s| s.text.starts_with("CREATE FUNCTION")
                && matches!(s.statement, Statement::Sql(_)))
    );
}

#[test]
fn client_session_statements() {
    let ok = [
        "VACUUM",
        "VACUUM FULL",
        "VACUUM FULL FREEZE VERBOSE ANALYZE t",
        "VACUUM (FULL, ANALYZE, PARALLEL 2, INDEX_CLEANUP off) t (a, b), s.u",
        "vacuum verbose analyze public.t(a)",
        "ANALYZE",
        "ANALYSE t",
        "ANALYZE VERBOSE t (a), u",
        "ANALYZE (VERBOSE, SKIP_LOCKED) t",
        "CHECKPOINT",
        "DISCARD ALL",
        "DISCARD TEMP",
        "LOCK t",
        "LOCK TABLE ONLY a.b, c IN SHARE ROW EXCLUSIVE MODE NOWAIT",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET datestyle = 'ISO, MDY'",
        "SET client_encoding TO 'UTF8'",
        "SET search_path TO \"$user\", public",
        "SET LOCAL statement_timeout = '5s'",
        "SET extra_float_digits = 3",
        "SET TIME ZONE 'UTC'",
        "SET TIME ZONE LOCAL",
        "SET TIME ZONE INTERVAL '+05:30' HOUR TO MINUTE",
        "SET NAMES 'UTF8'",
        "SET ROLE NONE",
        "SET SESSION AUTHORIZATION DEFAULT",
        "SET myapp.user_id = 42",
        "SET x = -1.5",
        "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'",
        "SET CONSTRAINTS ALL DEFERRED",
        "SET application_name = 'PostgreSQL JDBC Driver'",
        "SHOW ALL",
        "SHOW TRANSACTION ISOLATION LEVEL",
        "SHOW server_version",
        "RESET ALL",
        "RESET TIME ZONE",
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        "BEGIN TRANSACTION READ WRITE DEFERRABLE",
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "COMMIT AND NO CHAIN",
        "END",
        "ABORT",
        "ROLLBACK TO SAVEPOINT s1",
        "ROLLBACK WORK TO s1",
        "RELEASE SAVEPOINT s1",
        "PREPARE TRANSACTION 'gid-1'",
        "COMMIT PREPARED 'gid-1'",
        "ROLLBACK PREPARED 'gid-1'",
        "PREPARE p(int) AS SELECT $1",
        "EXECUTE p(1)",
        "DEALLOCATE ALL",
        "COPY t TO STDOUT",
        "COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ',', NULL '', FORCE_NOT_NULL (a))",
        "COPY t FROM '/tmp/x' WITH CSV HEADER DELIMITER AS ';' FORCE NOT NULL a, b",
        "COPY BINARY t FROM STDIN",
        "COPY t TO STDOUT WITH BINARY",
        "COPY (SELECT * FROM t WHERE a > 1) TO STDOUT WITH (FORMAT binary)",
        "COPY t FROM STDIN WHERE a > 5",
        "COPY t TO PROGRAM 'gzip > /tmp/x.gz'",
        "SELECT pgxc_pool_reload()",
        "SELECT pgxc_node_str(), xc_node_id FROM t",
    ];
    for sql in ok {
        one(sql);
    }
}

#[test]
fn utility_structures() {
    assert_eq!(
        one("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
        Statement::Set(Set::Transaction {
            session_characteristics: true,
            modes: vec![TransactionMode::IsolationLevel(
                IsolationLevel::RepeatableRead
            )]
        })
    );
    assert_eq!(
        one("SET datestyle = 'ISO, MDY'"),
        Statement::Set(Set::Variable {
            local: false,
            name: "datestyle".into(),
            value: SetValue::Values(vec!["ISO, MDY".into()])
        })
    );
    assert_eq!(
        one("SET LOCAL Search_Path TO \"$user\", Public"),
        Statement::Set(Set::Variable {
            local: true,
            name: "search_path".into(),
            value: SetValue::Values(vec!["$user".into(), "public".into()])
        })
    );
    assert_eq!(
        one("SET client_encoding TO DEFAULT"),
        Statement::Set(Set::Variable {
            local: false,
            name: "client_encoding".into(),
            value: SetValue::Default
        })
    );
    assert_eq!(
        one("set names 'UTF8'"),
        Statement::Set(Set::Variable {
            local: false,
            name: "client_encoding".into(),
            value: SetValue::Values(vec!["UTF8".into()])
        })
    );
    assert_eq!(
        one("SET statement_timeout = -1"),
        Statement::Set(Set::Variable {
            local: false,
            name: "statement_timeout".into(),
            value: SetValue::Values(vec!["-1".into()])
        })
    );
    assert_eq!(one("SHOW ALL"), Statement::Show(ShowTarget::All));
    assert_eq!(
        one("show TimeZone"),
        Statement::Show(ShowTarget::Variable("timezone".into()))
    );
    assert_eq!(
        one("SHOW TIME ZONE"),
        Statement::Show(ShowTarget::Variable("timezone".into()))
    );
    assert_eq!(one("RESET ALL"), Statement::Reset(ResetTarget::All));
    assert_eq!(
        one("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"),
        Statement::Transaction(TransactionStmt::Begin {
            modes: vec![
                TransactionMode::IsolationLevel(IsolationLevel::Serializable),
                TransactionMode::ReadOnly
            ]
        })
    );
    assert_eq!(
        one("begin"),
        Statement::Transaction(TransactionStmt::Begin { modes: vec![] })
    );
    assert_eq!(
        one("END;"),
        Statement::Transaction(TransactionStmt::Commit { chain: false })
    );
    assert_eq!(
        one("PREPARE TRANSACTION 'T1'"),
        Statement::Transaction(TransactionStmt::PrepareTransaction("T1".into()))
    );
    assert_eq!(
        one("COMMIT PREPARED 'it''s'"),
        Statement::Transaction(TransactionStmt::CommitPrepared("it's".into()))
    );
    assert_eq!(
        one("ROLLBACK PREPARED 'T1'"),
        Statement::Transaction(TransactionStmt::RollbackPrepared("T1".into()))
    );
    assert_eq!(
        one("ROLLBACK TO SAVEPOINT sp"),
        Statement::Transaction(TransactionStmt::RollbackTo(id("sp")))
    );
    assert_eq!(one("discard all"), Statement::Discard(DiscardTarget::All));
    assert_eq!(one("CHECKPOINT"), Statement::Checkpoint);
    match one("LOCK TABLE public.t1 IN ACCESS SHARE MODE") {
        Statement::Lock(l) => {
            assert_eq!(l.mode, LockMode::AccessShare);
            assert_eq!(l.tables[0].to_string(), "public.t1");
            assert!(!l.nowait);
        }
        s => panic!("{s:?}"),
    }
    match one("LOCK t") {
        Statement::Lock(l) => assert_eq!(l.mode, LockMode::AccessExclusive),
        s => panic!("{s:?}"),
    }
    match one("VACUUM (FULL, PARALLEL 4) t (a, b)") {
        Statement::Vacuum(v) => {
            assert_eq!(v.options.len(), 2);
            assert_eq!(
                v.option("parallel").unwrap().value,
                Some(OptionValue::Number("4".into()))
            );
            assert_eq!(names(&v.tables[0].columns), vec!["a", "b"]);
        }
        s => panic!("{s:?}"),
    }
    match one("COPY public.t1 (id, name) TO stdout;") {
        Statement::Copy(c) => {
            assert!(!c.from);
            assert_eq!(c.target, CopyTarget::Stdout);
            match c.source {
                CopySource::Table { name, columns } => {
                    assert_eq!(name.to_string(), "public.t1");
                    assert_eq!(names(&columns), vec!["id", "name"]);
                }
                s => panic!("{s:?}"),
            }
        }
        s => panic!("{s:?}"),
    }
    match one("COPY t FROM STDIN WITH CSV HEADER NULL AS 'x' FORCE NOT NULL a") {
        Statement::Copy(c) => {
            assert_eq!(
                c.option("format").unwrap().value,
                Some(OptionValue::Word("csv".into()))
            );
            assert_eq!(c.option("header").unwrap().value, None);
            assert_eq!(
                c.option("null").unwrap().value,
                Some(OptionValue::Str("x".into()))
            );
            assert_eq!(
                c.option("force_not_null").unwrap().value,
                Some(OptionValue::List(vec![id("a")]))
            );
        }
        s => panic!("{s:?}"),
    }
    match one("COPY (SELECT 1) TO STDOUT") {
        Statement::Copy(Copy {
            source: CopySource::Query(q),
            ..
        }) => assert_eq!(q.to_string(), "SELECT 1"),
        s => panic!("{s:?}"),
    }
    match one("COPY t FROM STDIN WHERE a > 5") {
        Statement::Copy(c) => assert_eq!(c.where_clause.unwrap().to_string(), "a > 5"),
        s => panic!("{s:?}"),
    }
    // Ordinary statements stay sqlparser's.
    assert!(matches!(
        one("SELECT 1"),
        Statement::Sql(ast::Statement::Query(_))
    ));
    assert!(matches!(
        one("PREPARE transaction AS SELECT 1"),
        Statement::Sql(ast::Statement::Prepare { .. })
    ));
}

// ---------------------------------------------------------------------------------------------------
// Postgres-XC extensions.

#[test]
fn create_table_distribute_by() {
    let cases = [
        (
            "CREATE TABLE t (a int PRIMARY KEY, b text) DISTRIBUTE BY HASH(a)",
            Some(DistributionStrategy::Hash(id("a"))),
            None,
        ),
        (
            "create table t (a int, b text) distribute by modulo (b) to node (dn1, dn2)",
            Some(DistributionStrategy::Modulo(id("b"))),
            Some(NodeTarget::Nodes(vec![id("dn1"), id("dn2")])),
        ),
        (
            "CREATE TABLE t (a int) DISTRIBUTE BY ROUNDROBIN",
            Some(DistributionStrategy::RoundRobin),
            None,
        ),
        (
            "CREATE TABLE t (a int) DISTRIBUTE BY ROUND ROBIN TO GROUP g1",
            Some(DistributionStrategy::RoundRobin),
            Some(NodeTarget::Group(id("g1"))),
        ),
        (
            "CREATE TABLE t (a int) WITH (fillfactor=100) DISTRIBUTE BY REPLICATION",
            Some(DistributionStrategy::Replication),
            None,
        ),
        (
            "CREATE UNLOGGED TABLE t (a int) TO NODE (dn1)",
            None,
            Some(NodeTarget::Nodes(vec![id("dn1")])),
        ),
        (
            "CREATE TABLE t2 DISTRIBUTE BY HASH(a) AS SELECT 1 AS a",
            Some(DistributionStrategy::Hash(id("a"))),
            None,
        ),
    ];
    for (sql, strategy, target) in cases {
        match one(sql) {
            Statement::CreateTable {
                create,
                distribution,
            } => {
                assert!(matches!(create, ast::Statement::CreateTable(_)), "{sql}");
                assert_eq!(distribution, Distribution { strategy, target }, "{sql}");
                let text = create.to_string();
                assert!(!text.to_uppercase().contains("DISTRIBUTE"), "{text}");
            }
            s => panic!("{sql}: {s:?}"),
        }
    }
    // The table definition is intact.
    match one("CREATE TABLE t (a int NOT NULL, b char(84)) WITH (fillfactor=100) DISTRIBUTE BY HASH(a) TO NODE (dn1)") {
        Statement::CreateTable {
            create: ast::Statement::CreateTable(ct),
            ..
        } => {
            assert_eq!(ct.name.to_string(), "t");
            assert_eq!(ct.columns.len(), 2);
        }
        s => panic!("{s:?}"),
    }
    // No XC clause: a plain sqlparser CREATE TABLE.
    assert!(matches!(
        one("CREATE TABLE t (a int)"),
        Statement::Sql(ast::Statement::CreateTable(_))
    ));
    // XC's error for an unknown strategy.
    let (code, msg, pos) = err("CREATE TABLE t (a int) DISTRIBUTE BY RANGE(a)");
    assert_eq!(code, SqlState::SyntaxError);
    assert_eq!(msg, "unrecognized distribution option \"range\"");
    assert_eq!(pos, Some(38));
    // An error in the table part is reported at its place in the original text.
    let sql = "CREATE TABLE t (a int,, b int) DISTRIBUTE BY HASH(a)";
    let (_, msg, pos) = err(sql);
    assert_eq!(msg, "syntax error at or near \",\"");
    assert_eq!(pos, Some(23));
}

#[test]
fn alter_table_distribution() {
    assert_eq!(
        one("ALTER TABLE public.t DISTRIBUTE BY HASH(b)"),
        Statement::AlterTableDistribution {
            table: ast::ObjectName::from(vec![id("public"), id("t")]),
            if_exists: false,
            only: false,
            actions: vec![AlterDistribution::DistributeBy(DistributionStrategy::Hash(
                id("b")
            ))],
        }
    );
    assert_eq!(
        one("ALTER TABLE IF EXISTS t ADD NODE (dn3), DELETE NODE (dn1, dn2)"),
        Statement::AlterTableDistribution {
            table: ast::ObjectName::from(vec![id("t")]),
            if_exists: true,
            only: false,
            actions: vec![
                AlterDistribution::AddNode(vec![id("dn3")]),
                AlterDistribution::DeleteNode(vec![id("dn1"), id("dn2")])
            ],
        }
    );
    match one("ALTER TABLE t TO GROUP g") {
        Statement::AlterTableDistribution { actions, .. } => {
            assert_eq!(
                actions,
                vec![AlterDistribution::To(NodeTarget::Group(id("g")))]
            )
        }
        s => panic!("{s:?}"),
    }
    match one("ALTER TABLE t DISTRIBUTE BY REPLICATION, TO NODE (dn1, dn2)") {
        Statement::AlterTableDistribution { actions, .. } => assert_eq!(actions.len(), 2),
        s => panic!("{s:?}"),
    }
    // Ordinary ALTER TABLE is sqlparser's.
    assert!(matches!(
        one("alter table pgbench_branches add primary key (bid)"),
        Statement::Sql(_)
    ));
}

#[test]
fn node_ddl() {
    assert_eq!(
        one("CREATE NODE dn1 WITH (TYPE = 'datanode', HOST = 'localhost', PORT = 15432, PRIMARY, PREFERRED)"),
        Statement::CreateNode {
            name: id("dn1"),
            options: NodeOptions {
                node_type: Some(NodeType::Datanode),
                host: Some("localhost".into()),
                port: Some(15432),
                primary: Some(true),
                preferred: Some(true),
            }
        }
    );
    assert_eq!(
        one("create node coord2 with (type='coordinator', host='10.0.0.2', port=5432)"),
        Statement::CreateNode {
            name: id("coord2"),
            options: NodeOptions {
                node_type: Some(NodeType::Coordinator),
                host: Some("10.0.0.2".into()),
                port: Some(5432),
                primary: None,
                preferred: None,
            }
        }
    );
    assert_eq!(
        one("ALTER NODE dn1 WITH (PORT = 15433, PRIMARY = false)"),
        Statement::AlterNode {
            name: id("dn1"),
            options: NodeOptions {
                port: Some(15433),
                primary: Some(false),
                ..Default::default()
            }
        }
    );
    assert_eq!(
        one("DROP NODE dn1"),
        Statement::DropNode {
            name: id("dn1"),
            if_exists: false
        }
    );
    assert_eq!(
        one("CREATE NODE GROUP g1 WITH (dn1, dn2)"),
        Statement::CreateNodeGroup {
            name: id("g1"),
            members: vec![id("dn1"), id("dn2")]
        }
    );
    assert_eq!(
        one("DROP NODE GROUP g1"),
        Statement::DropNodeGroup {
            name: id("g1"),
            if_exists: false
        }
    );
    let (code, _, _) = err("CREATE NODE dn1 WITH (TYPE = 'gtm')");
    assert_eq!(code, SqlState::InvalidParameterValue);
    let (code, _, _) = err("CREATE NODE dn1 WITH (PORT = 70000)");
    assert_eq!(code, SqlState::InvalidParameterValue);
    let (code, msg, pos) = err("CREATE NODE dn1 WITH (TYPE 'datanode')");
    assert_eq!(code, SqlState::SyntaxError);
    assert_eq!(msg, "syntax error at or near \"'datanode'\"");
    assert_eq!(pos, Some(28));
}

#[test]
fn execute_direct_clean_connection_barrier() {
    assert_eq!(
        one("EXECUTE DIRECT ON (dn1, dn2) 'SELECT count(*) FROM t'"),
        Statement::ExecuteDirect {
            nodes: vec![id("dn1"), id("dn2")],
            query: "SELECT count(*) FROM t".into()
        }
    );
    assert_eq!(
        one("execute direct on (dn1) $$select 'x'$$"),
        Statement::ExecuteDirect {
            nodes: vec![id("dn1")],
            query: "select 'x'".into()
        }
    );
    assert_eq!(
        one("CLEAN CONNECTION TO ALL FORCE FOR DATABASE db1 TO USER u1"),
        Statement::CleanConnection(CleanConnection {
            target: CleanTarget::All { force: true },
            database: Some(id("db1")),
            user: Some(id("u1")),
        })
    );
    assert_eq!(
        one("CLEAN CONNECTION TO NODE (dn1, dn2) FOR db1"),
        Statement::CleanConnection(CleanConnection {
            target: CleanTarget::Nodes(vec![id("dn1"), id("dn2")]),
            database: Some(id("db1")),
            user: None,
        })
    );
    assert_eq!(
        one("CLEAN CONNECTION TO COORDINATOR (c1) TO USER bob"),
        Statement::CleanConnection(CleanConnection {
            target: CleanTarget::Coordinators(vec![id("c1")]),
            database: None,
            user: Some(id("bob")),
        })
    );
    assert_eq!(one("CREATE BARRIER"), Statement::CreateBarrier { id: None });
    assert_eq!(
        one("CREATE BARRIER 'before_upgrade'"),
        Statement::CreateBarrier {
            id: Some("before_upgrade".into())
        }
    );
    assert_eq!(one("PAUSE CLUSTER"), Statement::PauseCluster);
    assert_eq!(one("UNPAUSE CLUSTER"), Statement::UnpauseCluster);
    // EXECUTE of a prepared statement is untouched.
    assert!(matches!(one("EXECUTE direct_plan(1)"), Statement::Sql(_)));
}

// ---------------------------------------------------------------------------------------------------
// Splitting and spans.

#[test]
fn splitting_respects_quotes_comments_and_dollar_quotes() {
    let sql = "SELECT ';' AS a; -- c;omment\n/* x; /* nested; */ y */ SELECT $t$ ; $t$;;  ;\
               SELECT \"a;b\" FROM t; SELECT E'\\';' ";
    let v = parse_spanned(sql).unwrap();
    let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "SELECT ';' AS a",
            "SELECT $t$ ; $t$",
            "SELECT \"a;b\" FROM t",
            "SELECT E'\\';'"
        ]
    );
    for s in &v {
        assert_eq!(&sql[s.span.clone()], s.text);
    }
    assert_eq!(parse("").unwrap(), vec![]);
    assert_eq!(parse(" ; -- nothing\n ;").unwrap(), vec![]);
    let v =
        parse("BEGIN; SET x = 1; CREATE TABLE t (a int) DISTRIBUTE BY HASH(a); COMMIT").unwrap();
    assert_eq!(v.len(), 4);
}

// ---------------------------------------------------------------------------------------------------
// Errors: message and position as PostgreSQL 15.18 reports them (checked against a real server).

#[test]
fn syntax_error_positions_match_postgresql() {
    let cases: &[(&str, &str, u32)] = &[
        ("SELECT (", "syntax error at end of input", 9),
        ("SELECT (  ", "syntax error at end of input", 11),
        ("SELECT 1 +;", "syntax error at or near \";\"", 11),
        ("SELEC 1", "syntax error at or near \"SELEC\"", 1),
        ("SELECT 1 FROM", "syntax error at end of input", 14),
        (
            "select 1 from t where\n",
            "syntax error at end of input",
            23,
        ),
        (
            "select 1 from t where  -- c",
            "syntax error at end of input",
            28,
        ),
        ("SELECT 1 2", "syntax error at or near \"2\"", 10),
        ("select 1; selec 2", "syntax error at or near \"selec\"", 11),
        ("select 1; select (", "syntax error at end of input", 19),
        (
            "vacuum analyze foo bar",
            "syntax error at or near \"bar\"",
            20,
        ),
        (
            "SELECT 'abc",
            "unterminated quoted string at or near \"'abc\"",
            8,
        ),
        ("/* x", "unterminated /* comment at or near \"/* x\"", 1),
        (
            "SELECT \"abc",
            "unterminated quoted identifier at or near \"\"abc\"",
            8,
        ),
        (
            "select $$abc",
            "unterminated dollar-quoted string at or near \"$$abc\"",
            8,
        ),
        (
            "select $1abc",
            "trailing junk after parameter at or near \"$1abc\"",
            8,
        ),
        (
            "select 123abc",
            "trailing junk after numeric literal at or near \"123abc\"",
            8,
        ),
        (
            "select e'\\'",
            "unterminated quoted string at or near \"e'\\'\"",
            8,
        ),
        (
            "select \"\"",
            "zero-length delimited identifier at or near \"\"\"\"",
            8,
        ),
        ("select (1; select 2)", "syntax error at or near \";\"", 10),
        (
            "LOCK TABLE t IN SHARE MOD",
            "syntax error at or near \"MOD\"",
            23,
        ),
        ("SET", "syntax error at end of input", 4),
        (
            "BEGIN ISOLATION LEVEL foo",
            "syntax error at or near \"foo\"",
            23,
        ),
        (
            "COPY t FROM STDIN WITH (FREEZE ON) x",
            "syntax error at or near \"x\"",
            36,
        ),
        ("VACUUM (FULL", "syntax error at end of input", 13),
        ("SHOW", "syntax error at end of input", 5),
        ("SET x TO", "syntax error at end of input", 9),
        (
            "copy (select 1 from) to stdout",
            "syntax error at or near \")\"",
            20,
        ),
        ("COMMIT PREPARED", "syntax error at end of input", 16),
        ("SET search_path = a,", "syntax error at end of input", 21),
        ("ANALYZE t(", "syntax error at end of input", 11),
        ("DISCARD foo", "syntax error at or near \"foo\"", 9),
        (
            "CREATE TABLE t (a int,, b int)",
            "syntax error at or near \",\"",
            23,
        ),
        // Positions count characters, not bytes.
        ("SELECT 'é' 'x' FROM", "syntax error at or near \"'x'\"", 12),
    ];
    for (sql, msg, pos) in cases {
        let (code, m, p) = err(sql);
        assert_eq!(code, SqlState::SyntaxError, "{sql}");
        assert_eq!((m.as_str(), p), (*msg, Some(*pos)), "{sql}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [100usize, 10_000, 200_000] {
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let e = parse(&sql).unwrap_err();
        assert_eq!(e.code, SqlState::StatementTooComplex, "{depth}");
        let sql = format!("SELECT {}1", "- ".repeat(depth));
        assert!(parse(&sql).is_err());
        let sql = format!(
            "SELECT * FROM {}t{}",
            "(SELECT * FROM ".repeat(depth),
            ")".repeat(depth)
        );
        assert!(parse(&sql).is_err());
        let sql = format!(
            "COPY ({}SELECT 1{}) TO STDOUT",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert!(parse(&sql).is_err());
    }
    // Moderate nesting is fine.
    let sql = format!("SELECT {}1{}", "(".repeat(20), ")".repeat(20));
    parse(&sql).unwrap();
}

const WORDS: &[&str] = &[
    "SELECT",
    "(",
    ")",
    ",",
    ";",
    "'a'",
    "$$x$$",
    "\"",
    "'",
    "$1",
    "CREATE",
    "TABLE",
    "t",
    "DISTRIBUTE",
    "BY",
    "HASH",
    "TO",
    "NODE",
    "GROUP",
    "COPY",
    "FROM",
    "STDIN",
    "WITH",
    "SET",
    "=",
    "VACUUM",
    "ANALYZE",
    "ALTER",
    "ON",
    "EXECUTE",
    "DIRECT",
    "CLEAN",
    "CONNECTION",
    "ALL",
    "BEGIN",
    "LOCK",
    "IN",
    "MODE",
    "/*",
    "*/",
    "--",
    "\n",
    "1",
    "-",
    ".",
    "é",
    "WHERE",
    "PREPARE",
    "TRANSACTION",
    "AS",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC*") {
        let _ = parse(&s);
    }

    #[test]
    fn sql_like_strings_never_panic(picks in proptest::collection::vec(0..WORDS.len(), 0..40)) {
        let parts: Vec<&str> = picks.iter().map(|&i| WORDS[i]).collect();
        let sql = parts.join(" ");
        let _ = parse(&sql);
        let sql: String = parts.concat();
        let _ = parse(&sql);
    }
}
