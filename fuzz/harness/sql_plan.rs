//! The parse → bind → plan harness shared by the `sql_plan` fuzz target
//! (`fuzz/fuzz_targets/sql_plan.rs`) and its corpus replay test (`crates/sql/tests/fuzz_replay.rs`,
//! which includes this file with `#[path]`): one in-memory engine with a small schema, and for each
//! input a fresh session that runs, each inside a transaction block that is rolled back,
//!
//! 1. `EXPLAIN <input>` (parse, bind and plan without executing), then
//! 2. `<input>` itself (binding and execution errors exercised too).
//!
//! Any `Err` is fine; a panic is a bug. Inputs stay independent: each gets a new session (settings,
//! prepared statements and cursors start afresh) and everything it does is rolled back; an input
//! that may end the block itself (COMMIT, ROLLBACK, PREPARE TRANSACTION, ...) could have changed the
//! shared engine, so the engine is rebuilt after it.

use std::sync::Arc;
use std::time::Duration;

use pgxc_sql::parser::{Statement, TransactionStmt};
use pgxc_sql::{Engine, Session};
use pgxc_storage::{Disk, SimDisk};

/// The fuzzing schema: two tables with int, text, numeric, timestamp(tz), jsonb and array
/// columns, a primary key, a foreign key, an index, a view and a few rows.
pub const SCHEMA: &str = "\
CREATE TABLE t1 (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2), \
    ts timestamp, doc jsonb, tags text[], flag boolean DEFAULT false);
CREATE TABLE t2 (id bigint, t1_id int REFERENCES t1 (id), qty int CHECK (qty >= 0), \
    price numeric, created timestamptz, vals int[], note varchar(20), d date);
CREATE INDEX t2_t1_id ON t2 (t1_id);
CREATE INDEX t1_name ON t1 (name);
CREATE VIEW v12 AS SELECT t1.id, t1.name, t2.qty, t2.price * t2.qty AS total \
    FROM t1 JOIN t2 ON t2.t1_id = t1.id WHERE t2.qty > 0;
INSERT INTO t1 VALUES \
    (1, 'alpha', 10.50, '2024-01-15 10:30:00', '{\"a\": 1, \"b\": [1, 2]}', '{x,y}', true), \
    (2, 'beta', NULL, '2024-02-29 00:00:00', '[1, \"two\", null]', '{}', false), \
    (3, 'gamma', -3.25, NULL, NULL, NULL, NULL), \
    (4, '', 0, '1999-12-31 23:59:59.999999', '{\"nested\": {\"k\": \"v\"}}', '{NULL,\"a b\"}', true);
INSERT INTO t2 VALUES \
    (10, 1, 5, 1.5, '2024-01-15 10:30:00+00', '{1,2,3}', 'first', '2024-01-15'), \
    (11, 1, 0, NULL, NULL, NULL, NULL, NULL), \
    (12, 2, 7, 99.99, '2023-06-01 12:00:00+02', '{}', 'third', '2023-06-01'), \
    (13, NULL, 1, -1, NULL, '{NULL}', '', 'infinity');";

/// The shared engine and the per-input runner.
pub struct Harness {
    engine: Arc<Engine>,
}

/// A fresh engine with [`SCHEMA`] on a simulated disk.
///
/// Panics if the schema cannot be created (the harness itself is broken then, not the input).
fn build_engine() -> Arc<Engine> {
    let engine = match Engine::open(&Disk::sim(SimDisk::new()), "fuzz.redb") {
        Ok(e) => e,
        Err(e) => panic!("fuzz harness: cannot open the engine: {e}"),
    };
    let mut s = engine.session();
    if let Err(e) = s.execute(SCHEMA) {
        panic!("fuzz harness: cannot create the schema: {e}");
    }
    drop(s);
    engine
}

/// Whether `sql` contains a statement that can end the transaction block it runs in (COMMIT,
/// ROLLBACK, PREPARE TRANSACTION and the like), after which later statements would autocommit.
fn may_end_block(sql: &str) -> bool {
    let Ok(stmts) = pgxc_sql::parser::parse(sql) else {
        return false;
    };
    stmts.iter().any(|s| {
        matches!(
            s,
            Statement::Transaction(
                TransactionStmt::Commit { .. }
                    | TransactionStmt::Rollback { .. }
                    | TransactionStmt::PrepareTransaction(_)
                    | TransactionStmt::CommitPrepared(_)
                    | TransactionStmt::RollbackPrepared(_)
            )
        )
    })
}

/// Run `sql` inside `BEGIN` ... `ROLLBACK` on `session`; the statement's own result is ignored
/// (any error is an acceptable outcome).
fn in_rolled_back_block(session: &mut Session, sql: &str) {
    if session.in_transaction() {
        let _ = session.execute("ROLLBACK");
    }
    if let Err(e) = session.execute("BEGIN") {
        panic!("fuzz harness: BEGIN failed: {e}");
    }
    let _ = session.execute(sql);
    // Leaves no failed or open block behind for the next step, whatever `sql` did (it may even
    // have ended the block and opened another one).
    while session.in_transaction() {
        if let Err(e) = session.execute("ROLLBACK") {
            panic!("fuzz harness: ROLLBACK failed: {e}");
        }
    }
}

impl Harness {
    /// A harness on a fresh engine with [`SCHEMA`].
    pub fn new() -> Harness {
        Harness {
            engine: build_engine(),
        }
    }

    /// Run one input (arbitrary bytes, read as lossy UTF-8): `EXPLAIN <input>` and `<input>`,
    /// each in a rolled-back block of a new session. Panics only if the engine does.
    pub fn run(&mut self, data: &[u8]) {
        let input = String::from_utf8_lossy(data);
        let explain = format!("EXPLAIN {input}");
        let dirty = may_end_block(&input) || may_end_block(&explain);
        let mut session = self.engine.session();
        // One session only: nothing can hold a lock it would wait for, but never hang anyway.
        session.set_lock_timeout(Some(Duration::from_millis(100)));
        in_rolled_back_block(&mut session, &explain);
        in_rolled_back_block(&mut session, &input);
        drop(session);
        if dirty {
            self.engine = build_engine();
        }
    }
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}
