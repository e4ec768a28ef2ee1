//! The GTM client protocol, spoken between clients, GTM proxies and GTM nodes.
//!
//! Every TCP link carries [`frame`](pgxc_common::frame)s. A client connection first sends a [`Hello`], then
//! any number of [`ClientBatch`]es; the server answers each with a [`ServerBatch`] carrying one response per
//! request, matched by [`ReqId`]. Batching is what lets a GTM proxy multiplex many sessions over one link
//! (Postgres-XC's GTM proxy does the same grouping of `GTM_Proxy` commands).
//!
//! A session ([`SessionId`]) is the unit the GTM tracks for recovery: after a leader change, every session
//! re-registers the GXIDs it still holds open ([`Request::Register`]) before the new leader serves any snapshot.

use pgxc_common::{Gxid, PgError, Snapshot};
use serde::{Deserialize, Serialize};

/// Identifies a client session on the GTM (a proxy, or a client talking to the GTM directly). Issued by the GTM
/// and replicated through Raft; never reused.
pub type SessionId = u64;

/// Matches a response to its request inside one connection. Chosen by the sender; unique per connection.
pub type ReqId = u64;

/// Raft node id of a GTM replica.
pub type NodeId = u64;

/// First frame on a GTM connection: what the peer is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hello {
    /// A client or proxy that will send [`ClientBatch`]es.
    Client,
    /// A GTM replica that will send Raft RPCs (see [`crate::raft`]).
    Peer {
        /// Raft node id of the sender.
        from: NodeId,
    },
}

/// A batch of requests from one connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientBatch {
    /// Requests, answered in any order.
    pub requests: Vec<(ReqId, Request)>,
}

/// The answers to (part of) a [`ClientBatch`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerBatch {
    /// One response per request id.
    pub responses: Vec<(ReqId, Response)>,
}

/// Sequence options, PostgreSQL's `CREATE SEQUENCE` / `ALTER SEQUENCE` clauses. `None` means "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqOptions {
    /// `AS smallint | integer | bigint`: bounds the default MINVALUE/MAXVALUE.
    pub data_type: Option<SeqType>,
    /// `INCREMENT [BY] n` (non-zero; negative makes a descending sequence).
    pub increment: Option<i64>,
    /// `MINVALUE n` (`Some(Some(n))`) or `NO MINVALUE` (`Some(None)`).
    pub min_value: Option<Option<i64>>,
    /// `MAXVALUE n` or `NO MAXVALUE`.
    pub max_value: Option<Option<i64>>,
    /// `START [WITH] n`.
    pub start: Option<i64>,
    /// `RESTART [WITH n]` (ALTER only): `Some(None)` restarts at the start value.
    pub restart: Option<Option<i64>>,
    /// `CACHE n` (>= 1): how many values a session fetches at once.
    pub cache: Option<i64>,
    /// `[NO] CYCLE`.
    pub cycle: Option<bool>,
}

/// A sequence's data type (`AS ...`), PostgreSQL 10+.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeqType {
    /// int2
    SmallInt,
    /// int4
    Integer,
    /// int8 (the default)
    BigInt,
}

/// A sequence's definition and position, as `pg_sequences` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqInfo {
    /// Sequence name (schema-qualified by the caller if it wants).
    pub name: String,
    /// Data type.
    pub data_type: SeqType,
    /// START value.
    pub start: i64,
    /// MINVALUE.
    pub min_value: i64,
    /// MAXVALUE.
    pub max_value: i64,
    /// INCREMENT.
    pub increment: i64,
    /// CYCLE.
    pub cycle: bool,
    /// CACHE.
    pub cache: i64,
    /// Last value handed out or reserved (PostgreSQL's `last_value` on disk, which includes the cached range).
    pub last_value: i64,
    /// Whether `last_value` has been returned (false right after CREATE or `setval(.., false)`).
    pub is_called: bool,
}

/// A prepared transaction as the GTM knows it (what `pg_prepared_xacts` lists cluster-wide).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedTxn {
    /// The transaction's GXID.
    pub gxid: Gxid,
    /// The global transaction identifier given to `PREPARE TRANSACTION 'gid'`.
    pub gid: String,
    /// The participant nodes recorded at prepare time (names), for the resolver and `pgxc clean`.
    pub nodes: Vec<String>,
    /// The durable decision: `None` while undecided, `Some(true)` commit, `Some(false)` rollback.
    pub decision: Option<bool>,
}

/// One GTM request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Open a new session (`session: None`) or re-attach an existing one after a reconnect or leader change,
    /// re-registering the GXIDs it still holds open. Answered with [`Response::Registered`].
    Register {
        /// The session to re-attach, or `None` for a new one.
        session: Option<SessionId>,
        /// GXIDs this session began and has not ended (with the xmin of the oldest snapshot each holds).
        open: Vec<(Gxid, Gxid)>,
    },
    /// Keep the session alive (sent periodically); answered with [`Response::Ok`].
    KeepAlive,
    /// Begin a transaction: answered with [`Response::Gxid`].
    Begin,
    /// Begin and take a snapshot in one trip (XC's `GTM_BEGIN_TRANSACTION` + `GTM_SNAPSHOT_GET`):
    /// answered with [`Response::Begun`].
    BeginSnapshot,
    /// Take a snapshot for a running transaction (READ COMMITTED takes one per statement), or for a
    /// read-only statement without a GXID (`gxid: None`): answered with [`Response::Snapshot`].
    Snapshot {
        /// The transaction taking the snapshot, whose xmin horizon is lowered to the snapshot's xmin.
        gxid: Option<Gxid>,
    },
    /// The transaction committed (one-phase) on every node it wrote: it leaves the running set.
    Commit {
        /// The transaction.
        gxid: Gxid,
    },
    /// The transaction aborted: it leaves the running set.
    Abort {
        /// The transaction.
        gxid: Gxid,
    },
    /// Record durably (through Raft) that `gxid` is prepared as `gid` on `nodes`. It then stays running until
    /// [`Request::Forget`], even if its session dies. Errors: 42710 if the gid is in use.
    Prepare {
        /// The transaction.
        gxid: Gxid,
        /// Global transaction identifier.
        gid: String,
        /// Participant node names.
        nodes: Vec<String>,
    },
    /// Record durably the commit/rollback decision for a prepared gid (the two-phase commit decision record).
    /// Idempotent for the same decision; 42704 for an unknown gid; a contrary decision is refused (XX000).
    Decide {
        /// Global transaction identifier.
        gid: String,
        /// true: COMMIT PREPARED, false: ROLLBACK PREPARED.
        commit: bool,
    },
    /// Every participant has applied the decision: the prepared transaction leaves the GTM (and the running
    /// set). Idempotent.
    Forget {
        /// Global transaction identifier.
        gid: String,
    },
    /// List prepared transactions: answered with [`Response::Prepared`].
    ListPrepared,
    /// The global xmin (oldest GXID any running transaction or held snapshot may still need): vacuum's
    /// horizon. Answered with [`Response::Gxid`].
    GlobalXmin,
    /// `CREATE SEQUENCE name ...`. Errors: 42P07 if it exists (unless `if_not_exists`), 22023 for bad options.
    CreateSequence {
        /// Name.
        name: String,
        /// Options.
        options: SeqOptions,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER SEQUENCE name ...`. Errors: 42P01 if missing (unless `if_exists`), 22023 for bad options.
    AlterSequence {
        /// Name.
        name: String,
        /// Options.
        options: SeqOptions,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `ALTER SEQUENCE old RENAME TO new`.
    RenameSequence {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// `DROP SEQUENCE name`. Errors: 42P01 if missing (unless `if_exists`).
    DropSequence {
        /// Name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `nextval(name)`, fetching `count` consecutive values at once (the session's CACHE). Answered with
    /// [`Response::Values`] (1..=count values; fewer only when the sequence must cycle or stop at a bound).
    /// Errors: 42P01, 2200H (`nextval: reached maximum value of sequence "s" (n)`).
    NextVal {
        /// Name.
        name: String,
        /// How many values (>= 1).
        count: u64,
    },
    /// `setval(name, value, is_called)`: answered with [`Response::Value`] (`value`). Errors: 42P01, 22003 when
    /// out of bounds (`setval: value 0 is out of bounds for sequence "s" (1..10)`).
    SetVal {
        /// Name.
        name: String,
        /// New value.
        value: i64,
        /// Whether the next nextval returns `value + increment` (true) or `value` (false).
        is_called: bool,
    },
    /// Describe a sequence: answered with [`Response::Sequence`].
    GetSequence {
        /// Name.
        name: String,
    },
    /// `CREATE BARRIER ['id']`: issue the next barrier id (monotonic). Answered with [`Response::Barrier`].
    CreateBarrier {
        /// The user's id, or `None` for a generated one.
        id: Option<String>,
    },
    /// Describe this GTM node and the group: answered with [`Response::Status`].
    Status,
    /// Administrative requests (`pgxc gtm-ctl`).
    Admin(AdminRequest),
}

/// `pgxc gtm-ctl` operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Force this node into a one-member configuration (XC's `gtm_ctl promote` of a standby). Unsafe if the
    /// other members are alive and still form a quorum: see docs/gtm.md.
    Promote,
    /// Hand leadership to `to` (best effort).
    TransferLeader {
        /// Target node.
        to: NodeId,
    },
    /// Add a voter (`addr` is its host:port).
    AddMember {
        /// New node id.
        id: NodeId,
        /// Its listen address.
        addr: String,
    },
    /// Remove a voter.
    RemoveMember {
        /// Node id.
        id: NodeId,
    },
}

/// What a GTM node reports about itself and its group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub id: NodeId,
    /// Raft role: "leader", "follower", "candidate", "learner", "shutdown".
    pub role: String,
    /// Current leader, if known: (id, address).
    pub leader: Option<(NodeId, String)>,
    /// Raft term.
    pub term: u64,
    /// Last applied log index.
    pub last_applied: u64,
    /// Voters: (id, address).
    pub members: Vec<(NodeId, String)>,
    /// Next GXID the leader will issue (0 if not leader).
    pub next_gxid: u64,
    /// Every GXID below this may have been issued (the replicated reservation mark).
    pub gxid_reserved_upto: u64,
    /// Running transactions the leader tracks (0 if not leader).
    pub running: u64,
    /// Whether the leader is still waiting for sessions to re-register (no snapshots served yet).
    pub recovering: bool,
}

impl NodeStatus {
    /// A report for node `id` in `role` with every counter zero and no leader or members known; callers fill
    /// in what they know.
    pub fn blank(id: NodeId, role: &str) -> NodeStatus {
        NodeStatus {
            id,
            role: role.to_string(),
            leader: None,
            term: 0,
            last_applied: 0,
            members: Vec::new(),
            next_gxid: 0,
            gxid_reserved_upto: 0,
            running: 0,
            recovering: false,
        }
    }
}

/// One GTM response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Success without a value.
    Ok,
    /// The session id to use from now on.
    Registered {
        /// Session id.
        session: SessionId,
    },
    /// A GXID (Begin, GlobalXmin).
    Gxid(Gxid),
    /// Begin + snapshot.
    Begun {
        /// The new transaction.
        gxid: Gxid,
        /// Its first snapshot (contains `gxid` in `xip`).
        snapshot: Snapshot,
    },
    /// A snapshot.
    Snapshot(Snapshot),
    /// Sequence values, in the order they must be returned.
    Values(Vec<i64>),
    /// A single value (setval).
    Value(i64),
    /// A sequence description.
    Sequence(SeqInfo),
    /// Prepared transactions.
    Prepared(Vec<PreparedTxn>),
    /// A barrier id.
    Barrier(String),
    /// Node status.
    Status(NodeStatus),
    /// This node is not the leader (or cannot prove it still is): retry at `leader` if given. SQLSTATE 57P03.
    NotLeader {
        /// Known leader: (id, address).
        leader: Option<(NodeId, String)>,
    },
    /// The request failed.
    Error(PgError),
}
