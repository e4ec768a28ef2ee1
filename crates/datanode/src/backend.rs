//! One coordinator connection's state on a datanode, and how each [`DnRequest`] is answered.
//!
//! A coordinator opens a global transaction with `Begin { gxid }`; the local transaction starts
//! at the first `Execute` (whose snapshot it needs) as `BEGIN ISOLATION LEVEL ...` on a session
//! directed to run as that GXID. Each later `Execute` re-directs the session to its statement's
//! snapshot (READ COMMITTED). `Commit`, `Rollback` and `Prepare` end it. This mirrors what
//! Postgres-XC's datanode backends did with the GXID and snapshot messages a coordinator sent
//! ahead of each query.
//!
//! `Query` answers a result's rows in batches: the first batch at once, the rest kept here under
//! the coordinator's stream number for `Fetch` (the coordinator then holds one batch per datanode,
//! not the whole result). Streams end with their transaction.
//!
//! `Rowset` loads rows sent as typed values into a session rowset of the open transaction
//! (`Session::rowset_create` / `rowset_append`): a non-colocated join's moved side, which the
//! join query that follows reads by the rowset's name. Rowsets end with their transaction too.

use std::collections::HashMap;

use pgxc_cluster::proto::{DnIsolation, DnRequest, DnResponse, DnResult, PROTOCOL_VERSION};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_sql::engine::Directed;
use pgxc_sql::types::Value;
use pgxc_sql::{Engine, Session};

/// The rows of a `Query` not fetched yet.
#[derive(Debug)]
struct Stream {
    rows: std::vec::IntoIter<Vec<Value>>,
    tag: String,
}

/// The per-connection state.
#[derive(Debug)]
pub struct Backend {
    node: String,
    /// `Begin` received, local transaction not started yet.
    pending: Option<(Gxid, DnIsolation, bool)>,
    /// The GXID of the open local transaction.
    open: Option<Gxid>,
    /// Open row streams by the coordinator's stream number.
    streams: HashMap<u32, Stream>,
    /// This connection's cancel key (backend number, secret), told in `Ready`.
    key: (u32, u64),
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The answer to an `Execute`: its statements' results (the notices on the last) and whether
/// the transaction wrote here.
fn results_response(s: &mut Session, results: Vec<pgxc_sql::engine::QueryResult>) -> DnResponse {
    let mut results: Vec<DnResult> = results
        .into_iter()
        .map(|r| DnResult {
            columns: r.columns,
            rows: r.rows,
            tag: r.tag,
            notices: Vec::new(),
        })
        .collect();
    if let Some(last) = results.last_mut() {
        last.notices = s.take_notices();
    }
    DnResponse::Results {
        results,
        wrote: s.has_written(),
        followed: s.followed(),
    }
}

/// At most `batch` (at least 1) rows from `rows`.
fn next_batch(rows: &mut std::vec::IntoIter<Vec<Value>>, batch: u32) -> Vec<Vec<Value>> {
    rows.by_ref().take(batch.max(1) as usize).collect()
}

impl Backend {
    /// A connection to the datanode named `node`.
    pub fn new(node: impl Into<String>) -> Backend {
        Backend {
            node: node.into(),
            pending: None,
            open: None,
            streams: HashMap::new(),
            key: (0, 0),
        }
    }

    /// The same connection, cancellable with `DnRequest::Cancel { backend, secret }` (the server
    /// keeps the registry; `Ready` tells the coordinator the key).
    pub fn with_cancel_key(mut self, backend: u32, secret: u64) -> Backend {
        self.key = (backend, secret);
        self
    }

    /// The answer to a `Query` whose statements gave `results`: the last result's first batch,
    /// the rest kept as `stream`.
    fn query_response(
        &mut self,
        s: &mut Session,
        results: Vec<pgxc_sql::engine::QueryResult>,
        stream: u32,
        batch: u32,
    ) -> Result<DnResponse, PgError> {
        let r = results
            .into_iter()
            .last()
            .ok_or_else(|| PgError::new(SqlState::ProtocolViolation, "Query needs a statement"))?;
        let mut rows = r.rows.into_iter();
        let first = next_batch(&mut rows, batch);
        let more = rows.len() > 0;
        let tag = if more {
            self.streams.insert(stream, Stream { rows, tag: r.tag });
            String::new()
        } else {
            r.tag
        };
        Ok(DnResponse::Batch {
            columns: r.columns,
            rows: first,
            more,
            tag,
            wrote: s.has_written(),
            followed: s.followed(),
            notices: s.take_notices(),
        })
    }

    /// The GXID of the transaction open on this connection, if any.
    pub fn open_gxid(&self) -> Option<Gxid> {
        self.open.or(self.pending.map(|p| p.0))
    }

    /// Answer one request. Never panics on any input; errors travel as [`DnResponse::Error`].
    pub fn handle(&mut self, s: &mut Session, engine: &Engine, req: DnRequest) -> DnResponse {
        match self.try_handle(s, engine, req) {
            Ok(r) => r,
            Err(e) => DnResponse::Error(e),
        }
    }

    /// [`Backend::handle`] on an async task, for an engine in `WaitMode::Restart` (the
    /// simulation's datanodes): `Execute` runs through `Session::execute_async`, so a statement
    /// that meets a lock holder awaits it and restarts instead of blocking the thread. Every
    /// other request never waits and is answered as by `handle`.
    pub async fn handle_async(
        &mut self,
        s: &mut Session,
        engine: &Engine,
        req: DnRequest,
    ) -> DnResponse {
        match req {
            DnRequest::Execute { snapshot, sql } => {
                let r = match self.start(s, snapshot) {
                    Ok(()) => s.execute_async(&sql).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(results) => results_response(s, results),
                    Err(e) => DnResponse::Error(e),
                }
            }
            DnRequest::Query {
                snapshot,
                sql,
                stream,
                batch,
            } => {
                let r = match self.start(s, snapshot) {
                    Ok(()) => s.execute_async(&sql).await,
                    Err(e) => Err(e),
                };
                match r.and_then(|results| self.query_response(s, results, stream, batch)) {
                    Ok(r) => r,
                    Err(e) => DnResponse::Error(e),
                }
            }
            other => self.handle(s, engine, other),
        }
    }

    fn try_handle(
        &mut self,
        s: &mut Session,
        engine: &Engine,
        req: DnRequest,
    ) -> Result<DnResponse, PgError> {
        match req {
            DnRequest::Hello {
                version,
                coordinator,
                settings,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(PgError::new(
                        SqlState::ProtocolViolation,
                        format!(
                            "coordinator \"{coordinator}\" speaks protocol {version}, this datanode {PROTOCOL_VERSION}"
                        ),
                    ));
                }
                for (k, v) in settings {
                    s.execute(&format!("SET {} = {}", quote_ident(&k), quote_literal(&v)))?;
                }
                Ok(DnResponse::Ready {
                    node: self.node.clone(),
                    backend: self.key.0,
                    secret: self.key.1,
                })
            }
            DnRequest::Begin {
                gxid,
                isolation,
                read_only,
            } => {
                if let Some(open) = self.open_gxid() {
                    if open != gxid {
                        return Err(PgError::new(
                            SqlState::ActiveSqlTransaction,
                            format!("transaction {open} is still open on this connection"),
                        ));
                    }
                    return Ok(DnResponse::Ok);
                }
                if !gxid.is_valid() {
                    return Err(PgError::new(
                        SqlState::ProtocolViolation,
                        format!("invalid GXID {gxid}"),
                    ));
                }
                self.pending = Some((gxid, isolation, read_only));
                Ok(DnResponse::Ok)
            }
            DnRequest::CopyIn {
                snapshot,
                sql,
                data,
            } => {
                let stmt = match pgxc_sql::parser::parse(&sql)?.pop() {
                    Some(pgxc_sql::parser::Statement::Copy(c)) if c.from => c,
                    _ => {
                        return Err(PgError::new(
                            SqlState::ProtocolViolation,
                            "CopyIn needs a COPY ... FROM STDIN statement",
                        ))
                    }
                };
                self.start(s, snapshot)?;
                let r = s.copy_in(&stmt, &data)?;
                Ok(DnResponse::Results {
                    results: vec![DnResult {
                        columns: r.columns,
                        rows: r.rows,
                        tag: r.tag,
                        notices: Vec::new(),
                    }],
                    wrote: s.has_written(),
                    followed: s.followed(),
                })
            }
            DnRequest::Execute { snapshot, sql } => {
                self.start(s, snapshot)?;
                let results = s.execute(&sql)?;
                Ok(results_response(s, results))
            }
            DnRequest::Query {
                snapshot,
                sql,
                stream,
                batch,
            } => {
                self.start(s, snapshot)?;
                let results = s.execute(&sql)?;
                self.query_response(s, results, stream, batch)
            }
            DnRequest::Fetch { stream, batch } => {
                let Some(st) = self.streams.get_mut(&stream) else {
                    return Err(PgError::new(
                        SqlState::InvalidCursorName,
                        format!("stream {stream} is not open on this connection"),
                    ));
                };
                let rows = next_batch(&mut st.rows, batch);
                let more = st.rows.len() > 0;
                let tag = if more {
                    String::new()
                } else {
                    self.streams
                        .remove(&stream)
                        .map(|st| st.tag)
                        .unwrap_or_default()
                };
                Ok(DnResponse::Batch {
                    columns: Vec::new(),
                    rows,
                    more,
                    tag,
                    wrote: s.has_written(),
                    followed: s.followed(),
                    notices: Vec::new(),
                })
            }
            DnRequest::CloseStream { stream } => {
                self.streams.remove(&stream);
                Ok(DnResponse::Ok)
            }
            DnRequest::Rowset {
                snapshot,
                name,
                columns,
                rows,
            } => {
                if self.open_gxid().is_none() {
                    return Err(PgError::new(
                        SqlState::NoActiveSqlTransaction,
                        "Rowset without Begin: a rowset lives in a global transaction",
                    ));
                }
                self.start(s, snapshot)?;
                if s.in_failed_transaction() {
                    return Err(PgError::new(
                        SqlState::InFailedSqlTransaction,
                        "current transaction is aborted, commands ignored until end of transaction block",
                    ));
                }
                let r = (|| {
                    if let Some(columns) = columns {
                        s.rowset_drop(&name);
                        s.rowset_create(&name, columns)?;
                    }
                    if !rows.is_empty() {
                        s.rowset_append(&name, rows)?;
                    }
                    Ok(DnResponse::Ok)
                })();
                if r.is_err() {
                    // As after a failed statement: the transaction only rolls back now.
                    s.fail_transaction_block();
                }
                r
            }
            DnRequest::DropRowset { name } => {
                if self.open.is_some() {
                    s.rowset_drop(&name);
                }
                Ok(DnResponse::Ok)
            }
            DnRequest::Cancel { .. } => Err(PgError::new(
                SqlState::ProtocolViolation,
                "Cancel must be the first message of a connection of its own",
            )),
            DnRequest::Commit => self.end(s, "COMMIT", "COMMIT"),

            DnRequest::Rollback => self.end(s, "ROLLBACK", "ROLLBACK"),
            DnRequest::Prepare { gid } => self.end(
                s,
                &format!("PREPARE TRANSACTION {}", quote_literal(&gid)),
                "PREPARE TRANSACTION",
            ),
            DnRequest::FinishPrepared { gid, commit } => Ok(DnResponse::Done {
                found: engine.finish_prepared_fenced(&gid, commit)?,
            }),
            DnRequest::ListPrepared => Ok(DnResponse::Prepared(
                engine
                    .prepared_xacts()
                    .into_iter()
                    .map(|p| (p.gid, p.xid))
                    .collect(),
            )),
        }
    }

    /// Open the local transaction at the first statement (it needs the snapshot), or re-direct
    /// the session to this statement's snapshot.
    fn start(&mut self, s: &mut Session, snapshot: pgxc_common::Snapshot) -> Result<(), PgError> {
        if snapshot.xmin > snapshot.xmax {
            return Err(PgError::new(
                SqlState::ProtocolViolation,
                "snapshot with xmin > xmax",
            ));
        }
        if let Some((gxid, iso, read_only)) = self.pending.take() {
            s.direct(Some(Directed {
                gxid,
                snapshot: snapshot.clone(),
            }));
            let begin = format!(
                "BEGIN ISOLATION LEVEL {}{}",
                match iso {
                    DnIsolation::ReadCommitted => "READ COMMITTED",
                    DnIsolation::RepeatableRead => "REPEATABLE READ",
                },
                if read_only { " READ ONLY" } else { "" }
            );
            if let Err(e) = s.execute(&begin) {
                s.direct(None);
                return Err(e);
            }
            self.open = Some(gxid);
            Ok(())
        } else if let Some(gxid) = self.open {
            s.direct(Some(Directed { gxid, snapshot }));
            Ok(())
        } else {
            Err(PgError::new(
                SqlState::ProtocolViolation,
                "Execute without Begin: every statement runs in a global transaction",
            ))
        }
    }

    /// End the open transaction with `stmt`; a failed block answers ROLLBACK, which is an error
    /// for COMMIT and PREPARE (40000: the coordinator must not count it as committed/prepared).
    fn end(
        &mut self,
        s: &mut Session,
        stmt: &str,
        expected_tag: &str,
    ) -> Result<DnResponse, PgError> {
        self.pending = None;
        self.streams.clear();
        if self.open.take().is_none() {
            // Nothing ran here: nothing to commit, roll back or prepare.
            return Ok(DnResponse::Ok);
        }
        pgxc_common::failpoint::hit_if(
            expected_tag == "PREPARE TRANSACTION",
            "datanode-before-prepare",
        );
        let r = s.execute(stmt);
        s.direct(None);
        let results = r?;
        let tag = results.last().map(|r| r.tag.as_str()).unwrap_or("");
        if tag != expected_tag {
            return Err(PgError::new(
                SqlState::TransactionRollback,
                format!(
                    "the transaction was rolled back on datanode \"{}\"",
                    self.node
                ),
            ));
        }
        pgxc_common::failpoint::hit_if(
            expected_tag == "PREPARE TRANSACTION",
            "datanode-after-prepare",
        );
        Ok(DnResponse::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgxc_common::Snapshot;
    use pgxc_storage::{Disk, SimDisk};
    use std::sync::Arc;

    /// A stand-in GTM for the tests: hands out GXIDs and snapshots from one counter.
    struct TestGtm {
        next: u64,
        running: Vec<Gxid>,
    }

    impl TestGtm {
        fn begin(&mut self) -> Gxid {
            let g = Gxid(self.next);
            self.next += 1;
            self.running.push(g);
            g
        }
        fn snapshot(&self) -> Snapshot {
            Snapshot::new(Gxid(self.next), self.running.clone())
        }
        fn end(&mut self, g: Gxid) {
            self.running.retain(|x| *x != g);
        }
    }

    fn engine() -> Arc<Engine> {
        Engine::open(&Disk::sim(SimDisk::new()), "dn").expect("open")
    }

    fn ok(r: DnResponse) -> DnResponse {
        if let DnResponse::Error(e) = &r {
            panic!("unexpected error {e}");
        }
        r
    }

    fn rows(r: DnResponse) -> Vec<Vec<pgxc_sql::types::Value>> {
        match ok(r) {
            DnResponse::Results { mut results, .. } => results.pop().expect("one result").rows,
            other => panic!("not results: {other:?}"),
        }
    }

    #[test]
    fn directed_transactions_use_the_coordinators_gxids_and_snapshots() {
        let eng = engine();
        // The engine's own bootstrap used low GXIDs; the test GTM starts far above them.
        let mut gtm = TestGtm {
            next: 1_000_000,
            running: vec![],
        };
        let (mut s1, mut s2) = (eng.session(), eng.session());
        let (mut b1, mut b2) = (Backend::new("dn1"), Backend::new("dn1"));
        s1.execute("CREATE TABLE acc (id int PRIMARY KEY, bal int)")
            .expect("ddl");
        s1.execute("INSERT INTO acc VALUES (1, 100), (2, 100)")
            .expect("load");

        // T1 updates, prepares; T2 (snapshot taken while T1 runs) must not see T1's write even
        // after T1 commits locally, because its snapshot lists T1 as running.
        let t1 = gtm.begin();
        ok(b1.handle(
            &mut s1,
            &eng,
            DnRequest::Begin {
                gxid: t1,
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        let r = b1.handle(
            &mut s1,
            &eng,
            DnRequest::Execute {
                snapshot: gtm.snapshot(),
                sql: "UPDATE acc SET bal = bal - 10 WHERE id = 1".into(),
            },
        );
        assert!(
            matches!(r, DnResponse::Results { wrote: true, .. }),
            "{r:?}"
        );
        ok(b1.handle(
            &mut s1,
            &eng,
            DnRequest::Prepare {
                gid: "_pgxc_T1".into(),
            },
        ));
        assert_eq!(
            b1.handle(&mut s1, &eng, DnRequest::ListPrepared),
            DnResponse::Prepared(vec![("_pgxc_T1".into(), t1)])
        );

        let t2 = gtm.begin();
        let snap_t2 = gtm.snapshot();
        assert!(snap_t2.xip.contains(&t1));
        ok(b2.handle(
            &mut s2,
            &eng,
            DnRequest::Begin {
                gxid: t2,
                isolation: DnIsolation::RepeatableRead,
                read_only: true,
            },
        ));
        let before = rows(b2.handle(
            &mut s2,
            &eng,
            DnRequest::Execute {
                snapshot: snap_t2.clone(),
                sql: "SELECT bal FROM acc WHERE id = 1".into(),
            },
        ));
        assert_eq!(before, vec![vec![pgxc_sql::types::Value::Int4(100)]]);

        assert_eq!(
            b1.handle(
                &mut s1,
                &eng,
                DnRequest::FinishPrepared {
                    gid: "_pgxc_T1".into(),
                    commit: true
                }
            ),
            DnResponse::Done { found: true }
        );
        gtm.end(t1);
        let still = rows(b2.handle(
            &mut s2,
            &eng,
            DnRequest::Execute {
                snapshot: snap_t2,
                sql: "SELECT bal FROM acc WHERE id = 1".into(),
            },
        ));
        assert_eq!(still, vec![vec![pgxc_sql::types::Value::Int4(100)]]);
        ok(b2.handle(&mut s2, &eng, DnRequest::Commit));
        gtm.end(t2);

        // A new transaction sees the committed write; finishing twice is idempotent.
        let t3 = gtm.begin();
        ok(b2.handle(
            &mut s2,
            &eng,
            DnRequest::Begin {
                gxid: t3,
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        let after = rows(b2.handle(
            &mut s2,
            &eng,
            DnRequest::Execute {
                snapshot: gtm.snapshot(),
                sql: "SELECT bal FROM acc WHERE id = 1".into(),
            },
        ));
        assert_eq!(after, vec![vec![pgxc_sql::types::Value::Int4(90)]]);
        ok(b2.handle(&mut s2, &eng, DnRequest::Rollback));
        assert_eq!(
            b1.handle(
                &mut s1,
                &eng,
                DnRequest::FinishPrepared {
                    gid: "_pgxc_T1".into(),
                    commit: true
                }
            ),
            DnResponse::Done { found: false }
        );
    }

    #[test]
    fn query_answers_batches_and_execute_carries_notices() {
        let eng = engine();
        let mut s = eng.session();
        let mut b = Backend::new("dn1").with_cancel_key(7, 42);
        s.execute("CREATE TABLE t (v int)").expect("ddl");
        s.execute("INSERT INTO t SELECT g FROM generate_series(1, 5) g")
            .expect("load");
        assert_eq!(
            b.handle(
                &mut s,
                &eng,
                DnRequest::Hello {
                    version: PROTOCOL_VERSION,
                    coordinator: "cn".into(),
                    settings: vec![],
                }
            ),
            DnResponse::Ready {
                node: "dn1".into(),
                backend: 7,
                secret: 42
            }
        );
        let snap = Snapshot::new(Gxid(4_000_001), vec![Gxid(4_000_000)]);
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: Gxid(4_000_000),
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        let batch = |r: DnResponse| match ok(r) {
            DnResponse::Batch {
                columns,
                rows,
                more,
                tag,
                ..
            } => (columns.len(), rows.len(), more, tag),
            other => panic!("not a batch: {other:?}"),
        };
        let q = DnRequest::Query {
            snapshot: snap.clone(),
            sql: "SELECT v FROM t ORDER BY v".into(),
            stream: 3,
            batch: 2,
        };
        assert_eq!(
            batch(b.handle(&mut s, &eng, q)),
            (1, 2, true, String::new())
        );
        let fetch = DnRequest::Fetch {
            stream: 3,
            batch: 2,
        };
        assert_eq!(
            batch(b.handle(&mut s, &eng, fetch.clone())),
            (0, 2, true, String::new())
        );
        assert_eq!(
            batch(b.handle(&mut s, &eng, fetch.clone())),
            (0, 1, false, "SELECT 5".into())
        );
        // The stream closed with its last batch.
        let r = b.handle(&mut s, &eng, fetch);
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::InvalidCursorName),
            "{r:?}"
        );
        // A small result is whole in the first answer.
        let q = DnRequest::Query {
            snapshot: snap.clone(),
            sql: "SELECT v FROM t WHERE v < 3".into(),
            stream: 4,
            batch: 100,
        };
        assert_eq!(
            batch(b.handle(&mut s, &eng, q)),
            (1, 2, false, "SELECT 2".into())
        );
        // A stream left open ends with its transaction.
        let q = DnRequest::Query {
            snapshot: snap.clone(),
            sql: "SELECT v FROM t".into(),
            stream: 5,
            batch: 1,
        };
        assert!(batch(b.handle(&mut s, &eng, q)).2);
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Execute {
                snapshot: snap,
                sql: "DROP TABLE IF EXISTS missing".into(),
            },
        );
        match ok(r) {
            DnResponse::Results { results, .. } => assert_eq!(
                results[0].notices,
                vec![pgxc_common::error::Notice::info(
                    "table \"missing\" does not exist, skipping"
                )]
            ),
            other => panic!("not results: {other:?}"),
        }
        ok(b.handle(&mut s, &eng, DnRequest::Rollback));
        assert!(b.streams.is_empty());
    }

    #[test]
    fn a_prepare_arriving_after_its_rollback_is_refused() {
        let eng = engine();
        let mut s = eng.session();
        let mut b = Backend::new("dn1");
        s.execute("CREATE TABLE t (v int)").expect("ddl");
        // The coordinator gave up on gid g (its PREPARE was still on the way) and rolled it back.
        assert_eq!(
            b.handle(
                &mut s,
                &eng,
                DnRequest::FinishPrepared {
                    gid: "_pgxc_T3000000".into(),
                    commit: false
                }
            ),
            DnResponse::Done { found: false }
        );
        let snap = Snapshot::new(Gxid(3_000_001), vec![Gxid(3_000_000)]);
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: Gxid(3_000_000),
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Execute {
                snapshot: snap,
                sql: "INSERT INTO t VALUES (1)".into(),
            },
        ));
        // The late PREPARE: refused, nothing left prepared, the write gone.
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Prepare {
                gid: "_pgxc_T3000000".into(),
            },
        );
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::TransactionRollback),
            "{r:?}"
        );
        assert_eq!(
            b.handle(&mut s, &eng, DnRequest::ListPrepared),
            DnResponse::Prepared(vec![])
        );
        let rows = s.execute("SELECT count(*) FROM t").expect("count");
        assert_eq!(rows[0].rows, vec![vec![pgxc_sql::types::Value::Int8(0)]]);
        // Another gid still prepares.
        let mut s2 = eng.session();
        s2.execute("BEGIN").expect("begin");
        s2.execute("INSERT INTO t VALUES (2)").expect("insert");
        s2.execute("PREPARE TRANSACTION 'other'").expect("prepare");
        assert!(eng.finish_prepared("other", true).expect("commit prepared"));
    }

    #[test]
    fn rowsets_carry_typed_rows_into_the_transaction_and_end_with_it() {
        use pgxc_sql::types::{DataType, Value};
        let eng = engine();
        let mut s = eng.session();
        let mut b = Backend::new("dn1");
        s.execute("CREATE TABLE t (k int, v text)").expect("ddl");
        s.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')")
            .expect("load");
        let snap = Snapshot::new(Gxid(5_000_001), vec![Gxid(5_000_000)]);
        let columns = vec![
            ("k".to_string(), DataType::Int4),
            ("x".into(), DataType::Text),
        ];
        let load = |name: &str, columns: Option<Vec<(String, DataType)>>, rows| DnRequest::Rowset {
            snapshot: snap.clone(),
            name: name.into(),
            columns,
            rows,
        };
        // Not inside a global transaction: 25P01.
        let r = b.handle(&mut s, &eng, load("r", Some(columns.clone()), vec![]));
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::NoActiveSqlTransaction),
            "{r:?}"
        );
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: Gxid(5_000_000),
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        // Created by the transaction's first request (it opens the local transaction), then
        // appended to in a second batch; values travel typed (a quote, a NULL, duplicate keys).
        ok(b.handle(
            &mut s,
            &eng,
            load(
                "r",
                Some(columns.clone()),
                vec![
                    vec![Value::Int4(1), Value::Text("it's".into())],
                    vec![Value::Null, Value::Text("no key".into())],
                ],
            ),
        ));
        ok(b.handle(
            &mut s,
            &eng,
            load(
                "r",
                None,
                vec![
                    vec![Value::Int4(3), Value::Null],
                    vec![Value::Int4(3), Value::Text("again".into())],
                ],
            ),
        ));
        let query = |sql: &str| DnRequest::Execute {
            snapshot: snap.clone(),
            sql: sql.into(),
        };
        let joined = rows(b.handle(
            &mut s,
            &eng,
            query("SELECT t.v, r.x FROM t JOIN r ON t.k = r.k ORDER BY t.v, r.x"),
        ));
        assert_eq!(
            joined,
            vec![
                vec![Value::Text("one".into()), Value::Text("it's".into())],
                vec![Value::Text("three".into()), Value::Text("again".into())],
                vec![Value::Text("three".into()), Value::Null],
            ]
        );
        // Creating again replaces it (a statement retried after ROLLBACK TO SAVEPOINT).
        ok(b.handle(
            &mut s,
            &eng,
            load(
                "r",
                Some(vec![("k".into(), DataType::Int8)]),
                vec![vec![Value::Int8(2)]],
            ),
        ));
        assert_eq!(
            rows(b.handle(&mut s, &eng, query("SELECT k FROM r"))),
            vec![vec![Value::Int8(2)]]
        );
        ok(b.handle(&mut s, &eng, DnRequest::DropRowset { name: "r".into() }));
        let r = b.handle(&mut s, &eng, query("SELECT k FROM r"));
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::UndefinedTable),
            "{r:?}"
        );
        ok(b.handle(&mut s, &eng, DnRequest::Rollback));
        // A rowset left at the end of a transaction is gone with it.
        let t2 = Gxid(5_000_002);
        let snap2 = Snapshot::new(Gxid(5_000_003), vec![t2]);
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: t2,
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Rowset {
                snapshot: snap2.clone(),
                name: "leftover".into(),
                columns: Some(columns.clone()),
                rows: vec![vec![Value::Int4(1), Value::Null]],
            },
        ));
        ok(b.handle(&mut s, &eng, DnRequest::Commit));
        let t3 = Gxid(5_000_004);
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: t3,
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Execute {
                snapshot: Snapshot::new(Gxid(5_000_005), vec![t3]),
                sql: "SELECT * FROM leftover".into(),
            },
        );
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::UndefinedTable),
            "{r:?}"
        );
        // Appending to a rowset that does not exist fails (and fails the transaction).
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Rowset {
                snapshot: Snapshot::new(Gxid(5_000_005), vec![t3]),
                name: "nothere".into(),
                columns: None,
                rows: vec![vec![Value::Int4(1)]],
            },
        );
        assert!(matches!(&r, DnResponse::Error(_)), "{r:?}");
        ok(b.handle(&mut s, &eng, DnRequest::Rollback));
    }

    #[test]
    fn errors_fail_the_transaction_and_commit_reports_the_rollback() {
        let eng = engine();
        let mut s = eng.session();
        let mut b = Backend::new("dn1");
        let snap = Snapshot::new(Gxid(2_000_001), vec![Gxid(2_000_000)]);
        ok(b.handle(
            &mut s,
            &eng,
            DnRequest::Begin {
                gxid: Gxid(2_000_000),
                isolation: DnIsolation::ReadCommitted,
                read_only: false,
            },
        ));
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Execute {
                snapshot: snap.clone(),
                sql: "SELECT 1/0".into(),
            },
        );
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::DivisionByZero),
            "{r:?}"
        );
        let r = b.handle(&mut s, &eng, DnRequest::Commit);
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::TransactionRollback),
            "{r:?}"
        );
        // The connection is usable again.
        assert!(b.open_gxid().is_none());
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Execute {
                snapshot: snap,
                sql: "SELECT 1".into(),
            },
        );
        assert!(
            matches!(&r, DnResponse::Error(e) if e.code == SqlState::ProtocolViolation),
            "{r:?}"
        );
        let r = b.handle(
            &mut s,
            &eng,
            DnRequest::Hello {
                version: 99,
                coordinator: "cn".into(),
                settings: vec![],
            },
        );
        assert!(matches!(r, DnResponse::Error(_)));
    }
}
