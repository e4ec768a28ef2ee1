//! The coordinator ↔ datanode protocol (messages only; framing is `pgxc_common::frame`).
//!
//! One connection carries one datanode session, like a PostgreSQL backend; a coordinator pools
//! them (XC's pooler). Every request gets exactly one [`DnResponse`]. `Execute` answers whole row
//! sets; `Query` answers a SELECT's rows in batches of at most `batch` rows ([`DnResponse::Batch`]),
//! the rest kept on the datanode under a stream number until `Fetch`ed or closed, so a
//! coordinator holds at most one batch per datanode however large the result. A `Cancel` on a
//! connection of its own (with the key `Ready` gave) cancels the statement running on another
//! connection, as PostgreSQL's CancelRequest does.
//! `Rowset` carries rows as typed values into a session rowset of the datanode session (a join's
//! moved side, Postgres-XL's "Distribute results by"), so moved rows are never SQL text.
//! Messages are postcard-encoded; the protocol version is checked by [`DnRequest::Hello`].
//! See `docs/cluster.md` for the transaction order these messages implement.

use pgxc_common::error::Notice;
use pgxc_common::{Gxid, PgError, Snapshot};
use pgxc_sql::types::{DataType, Value};
use serde::{Deserialize, Serialize};

/// The protocol version a coordinator announces in [`DnRequest::Hello`] (4: `Rowset` and
/// `DropRowset`; 3: the cancel key in `Ready`).
pub const PROTOCOL_VERSION: u32 = 4;

/// The most rows a coordinator puts in one [`DnRequest::Rowset`] (a batch of moved rows is cut
/// from one `Query`/`Fetch` answer of at most this many rows, so it also fits in a frame whenever
/// that answer did).
pub const ROWSET_BATCH: u32 = 10_000;

/// Transaction isolation as the coordinator asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnIsolation {
    /// READ COMMITTED: the coordinator sends a new snapshot with every statement.
    ReadCommitted,
    /// REPEATABLE READ (and SERIALIZABLE, run as snapshot isolation as Postgres-XC did).
    RepeatableRead,
}

/// A request from a coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DnRequest {
    /// First message on a connection: who is calling. Answered with [`DnResponse::Ready`] (the
    /// datanode's name) or an error if the version differs (08P01).
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// The coordinator's node name.
        coordinator: String,
        /// Session settings to apply (`DateStyle`, `TimeZone`, `search_path`, ...), as `SET` would.
        settings: Vec<(String, String)>,
    },
    /// Open the local transaction of global transaction `gxid` (no-op if it is already open).
    Begin {
        /// The GTM's GXID. **Invariant:** never one the datanode has seen end.
        gxid: Gxid,
        /// Isolation level.
        isolation: DnIsolation,
        /// `SET TRANSACTION READ ONLY`.
        read_only: bool,
    },
    /// Run SQL text (one or more statements, simple-query semantics) inside the open transaction,
    /// under `snapshot`. Answered with one [`DnResponse::Results`].
    Execute {
        /// The statement's global snapshot (**invariant:** `xmin ≤ xmax`, taken after `Begin`'s GXID).
        snapshot: Snapshot,
        /// The SQL text (fast query shipping sends the client's text unchanged).
        sql: String,
    },
    /// `COPY ... FROM STDIN` inside the open transaction under `snapshot`: `sql` is the COPY
    /// statement, `data` the rows of the stream this datanode stores (whole lines, in the
    /// statement's format). Answered like `Execute`.
    CopyIn {
        /// The statement's global snapshot.
        snapshot: Snapshot,
        /// The `COPY ... FROM STDIN` text.
        sql: String,
        /// The data lines for this node.
        data: Vec<u8>,
    },
    /// One-phase commit of the open transaction.
    Commit,
    /// Roll back the open transaction (also ends a read-only one).
    Rollback,
    /// `PREPARE TRANSACTION gid` of the open transaction.
    Prepare {
        /// Global transaction identifier.
        gid: String,
    },
    /// `COMMIT PREPARED gid` (`commit`) / `ROLLBACK PREPARED gid`. Idempotent: an unknown gid
    /// answers [`DnResponse::Done`] with `found: false`.
    FinishPrepared {
        /// Global transaction identifier.
        gid: String,
        /// Commit or roll back.
        commit: bool,
    },
    /// The gids prepared on this datanode (`pg_prepared_xacts`), for the resolver.
    ListPrepared,
    /// Run one row-returning statement (`sql`; of several statements the last one's rows are
    /// answered) inside the open transaction under `snapshot`, like `Execute`, and answer its
    /// first `batch` rows as [`DnResponse::Batch`]. Rows left over stay on the datanode under
    /// number `stream` (chosen by the coordinator, unique among its open streams on this
    /// connection) until [`DnRequest::Fetch`]ed to the end, closed, or the transaction ends.
    Query {
        /// The statement's global snapshot.
        snapshot: Snapshot,
        /// The SQL text.
        sql: String,
        /// The stream number the rest of the rows are kept under.
        stream: u32,
        /// Largest number of rows in one answer (at least 1).
        batch: u32,
    },
    /// The next (at most `batch`) rows of `stream`, as [`DnResponse::Batch`]; 34000 if no such
    /// stream is open.
    Fetch {
        /// The stream number of the `Query`.
        stream: u32,
        /// Largest number of rows in the answer (at least 1).
        batch: u32,
    },
    /// Drop what is left of `stream` (answered `Ok`, also when it is not open).
    CloseStream {
        /// The stream number of the `Query`.
        stream: u32,
    },
    /// Add `rows` to the session rowset `name` of the open transaction (a temporary, session-local
    /// relation the transaction's queries see by its bare name, shadowing a table of that name;
    /// it ends with the transaction). With `columns`, the rowset is (re)created first with those
    /// columns, replacing one of that name; without, it must exist. Used to move a join's rows
    /// to the datanodes that run the join (Postgres-XL's `Distribute results by` / `Broadcast`)
    /// as typed values instead of SQL text. Answered `Ok`.
    ///
    /// **Invariants:** every row has exactly the rowset's arity, each value of its column's type
    /// (or NULL); a message holds at most [`ROWSET_BATCH`] rows (the frame limit still applies).
    /// Errors: 25P01 without `Begin`; 25P02 in a failed transaction; the engine's errors for a
    /// row of the wrong shape or an unknown rowset (the transaction is then failed, as after any
    /// error).
    Rowset {
        /// The statement's global snapshot (opens the local transaction if this is the node's
        /// first request of it).
        snapshot: Snapshot,
        /// The rowset's name (an identifier, unquoted form).
        name: String,
        /// Create (replacing) with these columns first: `(name, type)`.
        columns: Option<Vec<(String, DataType)>>,
        /// The rows to append.
        rows: Vec<Vec<Value>>,
    },
    /// Drop the session rowset `name` (answered `Ok`, also when there is none). Outside a
    /// transaction there is none: `Ok` too.
    DropRowset {
        /// The rowset's name.
        name: String,
    },
    /// The first and only message of a connection opened to cancel the statement running on
    /// another connection: `backend` and `secret` as that connection's [`DnResponse::Ready`] gave
    /// them. Never answered (PostgreSQL's CancelRequest); the cancelled statement fails with 57014.
    Cancel {
        /// The target connection's backend number.
        backend: u32,
        /// The target connection's secret.
        secret: u64,
    },
}

/// The result of one statement on a datanode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnResult {
    /// Column names and types (empty for commands).
    pub columns: Vec<(String, DataType)>,
    /// Rows.
    pub rows: Vec<Vec<Value>>,
    /// PostgreSQL's command tag.
    pub tag: String,
    /// The NOTICEs and WARNINGs the statement reported on this datanode (of all the
    /// request's statements, on the last result).
    pub notices: Vec<Notice>,
}

/// A datanode's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DnResponse {
    /// Answer to `Hello`.
    Ready {
        /// The datanode's node name.
        node: String,
        /// This connection's backend number, for [`DnRequest::Cancel`] (0: cannot be cancelled).
        backend: u32,
        /// This connection's cancel secret.
        secret: u64,
    },
    /// Answer to `Begin`, `Commit`, `Rollback`, `Prepare`, `CloseStream`, `Rowset`, `DropRowset`.
    Ok,
    /// Answer to `Execute`: one result per statement, and whether the transaction has written on
    /// this node so far (it is then a two-phase commit participant).
    Results {
        /// Per statement.
        results: Vec<DnResult>,
        /// The local transaction wrote.
        wrote: bool,
        /// Committed transactions whose updates or deletes the local transaction followed under
        /// READ COMMITTED (`Txn::followed`): the coordinator ends this transaction at the GTM only
        /// after they left its running set, so no snapshot sees this one without them.
        followed: Vec<Gxid>,
    },
    /// Answer to `Query` and `Fetch`: the next rows of the statement's result.
    Batch {
        /// Column names and types (on the `Query`'s answer; empty on a `Fetch`'s).
        columns: Vec<(String, DataType)>,
        /// At most `batch` rows.
        rows: Vec<Vec<Value>>,
        /// More rows are kept under the stream number (`Fetch` them); `false`: this was the last
        /// batch and the stream is closed.
        more: bool,
        /// The command tag (`SELECT n`, n counting every row of the result) when `more` is
        /// `false`; empty otherwise.
        tag: String,
        /// The local transaction wrote (as [`DnResponse::Results::wrote`]).
        wrote: bool,
        /// As [`DnResponse::Results::followed`].
        followed: Vec<Gxid>,
        /// The statement's NOTICEs and WARNINGs (on the `Query`'s answer).
        notices: Vec<Notice>,
    },
    /// Answer to `FinishPrepared`.
    Done {
        /// Whether the gid was prepared here.
        found: bool,
    },
    /// Answer to `ListPrepared`: `(gid, gxid)` pairs.
    Prepared(Vec<(String, Gxid)>),
    /// Any request failed; the SQLSTATE is PostgreSQL's. After an error inside a transaction the
    /// datanode's transaction is failed (25P02) until `Rollback`.
    Error(PgError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_postcard() {
        let msgs = vec![
            DnRequest::Hello {
                version: PROTOCOL_VERSION,
                coordinator: "cn1".into(),
                settings: vec![("TimeZone".into(), "UTC".into())],
            },
            DnRequest::Begin {
                gxid: Gxid(42),
                isolation: DnIsolation::RepeatableRead,
                read_only: false,
            },
            DnRequest::Execute {
                snapshot: Snapshot::new(Gxid(43), vec![Gxid(41)]),
                sql: "UPDATE t SET v = v + 1 WHERE k = 7".into(),
            },
            DnRequest::FinishPrepared {
                gid: "_pgxc_T42".into(),
                commit: true,
            },
            DnRequest::Query {
                snapshot: Snapshot::new(Gxid(43), vec![]),
                sql: "SELECT * FROM t".into(),
                stream: 1,
                batch: 1000,
            },
            DnRequest::Fetch {
                stream: 1,
                batch: 1000,
            },
            DnRequest::CloseStream { stream: 1 },
            DnRequest::Rowset {
                snapshot: Snapshot::new(Gxid(43), vec![]),
                name: "__pgxc_moved_0__".into(),
                columns: Some(vec![
                    ("k".into(), DataType::Int4),
                    ("t".into(), DataType::Text),
                ]),
                rows: vec![
                    vec![Value::Int4(1), Value::Text("it's".into())],
                    vec![Value::Null, Value::Null],
                ],
            },
            DnRequest::Rowset {
                snapshot: Snapshot::new(Gxid(43), vec![]),
                name: "r".into(),
                columns: None,
                rows: vec![],
            },
            DnRequest::DropRowset { name: "r".into() },
            DnRequest::Cancel {
                backend: 7,
                secret: u64::MAX,
            },
        ];
        for m in msgs {
            let bytes = postcard::to_stdvec(&m).expect("encode");
            let back: DnRequest = postcard::from_bytes(&bytes).expect("decode");
            assert_eq!(back, m);
        }
        let r = DnResponse::Results {
            results: vec![DnResult {
                columns: vec![("v".into(), DataType::Int4)],
                rows: vec![vec![Value::Int4(3)], vec![Value::Null]],
                tag: "SELECT 2".into(),
                notices: vec![Notice::info("table \"t\" does not exist, skipping")],
            }],
            wrote: false,
            followed: vec![Gxid(7)],
        };
        let bytes = postcard::to_stdvec(&r).expect("encode");
        assert_eq!(
            postcard::from_bytes::<DnResponse>(&bytes).expect("decode"),
            r
        );
        let b = DnResponse::Batch {
            columns: vec![("v".into(), DataType::Int8)],
            rows: vec![vec![Value::Int8(1)]],
            more: true,
            tag: String::new(),
            wrote: false,
            followed: vec![],
            notices: vec![],
        };
        let bytes = postcard::to_stdvec(&b).expect("encode");
        assert_eq!(
            postcard::from_bytes::<DnResponse>(&bytes).expect("decode"),
            b
        );
    }

    #[test]
    fn garbage_does_not_decode_into_a_request() {
        for junk in [&[0xffu8, 0xff, 0xff][..], &[], &[200, 1, 2, 3]] {
            assert!(postcard::from_bytes::<DnRequest>(junk).is_err());
        }
    }
}
