//! The GTM's pure state machine: no I/O, no clocks (time is passed in as milliseconds), no randomness, no
//! threads.
//!
//! Two halves:
//! - [`DurableState`]: replicated through Raft (it is the Raft snapshot). Changed only by
//!   [`DurableState::apply`] of a [`Command`], which is deterministic: every replica applying the same log
//!   reaches the same state. It holds the GXID reservation mark, the session table, the two-phase commit
//!   records, the sequences and the barrier counter.
//! - [`LeaderState`]: the leader's volatile state (running transactions and the snapshots they hold, next
//!   GXID, cached sequence blocks, session liveness, recovery). Rebuilt from [`DurableState`] plus session
//!   re-registration on every leader change.
//!
//! The server drives it like an openraft engine: for each client request it calls [`LeaderState::handle`],
//! which answers with a [`Step`]. On [`Step::Propose`] the server replicates the command, every replica runs
//! [`DurableState::apply`], then the leader calls [`LeaderState::on_applied`] and answers the client with
//! [`LeaderState::reply_for`]. On [`Step::Wait`] it calls `handle` again after the next apply or tick. It
//! periodically calls [`LeaderState::take_proposals`] and proposes what it returns (reporting those to
//! `on_applied` too). A proposal may be lost (never applied, e.g. on a leader change); the core re-proposes
//! its own background commands after [`CoreConfig::proposal_retry_ms`], and every command is safe to apply
//! twice.
//!
//! The server must build a [`LeaderState`] only once its state machine has applied every entry committed
//! before its term (openraft's leader-start blank entry), and must stop using it when it loses leadership.
//!
//! # Design
//!
//! **GXIDs.** No Raft write per transaction. [`DurableState::gxid_reserved_upto`] says "every GXID below this
//! may have been issued". The leader issues from a volatile `next_gxid` that starts at that mark when it becomes
//! leader (skipping whatever the previous leader had left unissued), and issues only while
//! `next_gxid < gxid_reserved_upto`; it keeps the mark ahead with [`Command::ReserveGxids`] in blocks of
//! [`CoreConfig::gxid_block`] (proactively, from `take_proposals`, when less than half a block remains; at
//! most one in flight). A Begin with the range exhausted waits.
//!
//! **Snapshots.** The leader keeps the running transactions (GXID → session, oldest snapshot xmin it holds).
//! A snapshot is `xmax = next_gxid`, `xip = running ∪ prepared` — Postgres-XC's `GTM_GetTransactionSnapshot`.
//! The global xmin (vacuum horizon) is the minimum over running transactions of their GXID and held snapshot
//! xmin, and over prepared GXIDs; else `next_gxid`. Snapshots taken without a GXID (`Snapshot { gxid: None }`)
//! hold no horizon, as in Postgres-XC.
//!
//! **Sessions and recovery.** Sessions are replicated ([`Command::OpenSession`], [`Command::CloseSession`]).
//! A new leader starts *recovering* with every open session pending; clients re-register the GXIDs they still
//! hold ([`Request::Register`](crate::proto::Request::Register)) before the leader serves any snapshot, GXID,
//! global xmin or sequence value. After [`CoreConfig::recovery_grace_ms`] the leader closes every session still
//! pending; recovery ends when no session is pending. Outside recovery, a session silent for
//! [`CoreConfig::session_timeout_ms`] is closed the same way. Closing a session drops its non-prepared running
//! transactions; a client told "GTM session N expired" (08006) must treat its open transactions as lost.
//!
//! **Two-phase commit.** [`Command::Prepare`] moves a GXID from its session's volatile running set into the
//! durable [`DurableState::prepared`] records, where every snapshot still lists it (across session close and
//! leader changes) until [`Command::Forget`]. [`Command::Decide`] records the commit/rollback decision.
//!
//! **Sequences** follow PostgreSQL 15 (`CREATE/ALTER SEQUENCE` option rules, `nextval`, `setval` and their
//! error messages). [`Command::ReserveSequence`] durably advances a sequence by a block of values before any of
//! them is handed out ("persist a reserved range before handing any value from it"); the leader caches blocks
//! and serves `nextval` from the cache. See [`seq`].
//!
//! **Barriers.** [`Command::Barrier`] issues barrier ids from a durable, monotonic counter.
//!
//! # Invariants
//!
//! **Invariant:** a GXID is issued at most once in the life of the cluster, and GXIDs are issued in strictly
//! increasing order (across leader changes: a new leader starts at the replicated reservation mark).
//!
//! **Invariant:** every GXID issued is below [`DurableState::gxid_reserved_upto`] at the time it is issued.
//!
//! **Invariant:** no snapshot is served while the leader is recovering; every snapshot lists every
//! transaction that is running (begun or re-registered, and not committed, aborted or dropped with its closed
//! session) or prepared and not forgotten.
//!
//! **Invariant:** a sequence value is handed out only from a block that [`DurableState::apply`] has already
//! reserved; a non-cycling sequence never hands out a value twice.
//!
//! **Invariant:** session ids are never reused.

#![warn(missing_docs)]

mod durable;
mod leader;
pub mod seq;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use durable::DurableState;
pub use leader::{LeaderState, MAX_NEXTVAL_COUNT};
pub use seq::SeqState;

use crate::proto::{Response, SeqOptions, SessionId};
use pgxc_common::{Gxid, PgError};
use serde::{Deserialize, Serialize};

/// Default [`CoreConfig::gxid_block`]: how far ahead of `next_gxid` the leader reserves GXIDs.
pub const GXID_BLOCK: u64 = 10_000;
/// Default [`CoreConfig::seq_block`]: the minimum number of sequence values the leader reserves at once.
pub const SEQ_BLOCK: u64 = 1_000;
/// Default [`CoreConfig::recovery_grace_ms`]: how long a new leader waits for sessions to re-register.
pub const RECOVERY_GRACE_MS: u64 = 2_000;
/// Default [`CoreConfig::session_timeout_ms`]: a session not heard from for this long is closed.
pub const SESSION_TIMEOUT_MS: u64 = 10_000;
/// Default [`CoreConfig::proposal_retry_ms`]: a background proposal not applied after this long is re-proposed.
pub const PROPOSAL_RETRY_MS: u64 = 1_000;

/// Tunables of the leader state machine (shortened by tests and simulation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// GXIDs reserved per [`Command::ReserveGxids`]; a new reservation is proposed when less than half of this
    /// remains. Must be >= 2.
    pub gxid_block: u64,
    /// Minimum number of values per [`Command::ReserveSequence`] (never beyond a sequence bound). Must be >= 1.
    pub seq_block: u64,
    /// After a leader change, sessions that have not re-registered within this many ms are closed.
    pub recovery_grace_ms: u64,
    /// Outside recovery, a session not heard from (any request counts) for this many ms is closed.
    pub session_timeout_ms: u64,
    /// A background command this leader proposed and did not see applied within this many ms is proposed again.
    pub proposal_retry_ms: u64,
    /// Test-only re-introduced mistakes (all off by default and in production).
    pub mistakes: Mistakes,
}

/// Test-only mistakes the simulator re-introduces to prove its checkers catch them (issue 7, as
/// `pgxc_cluster::twophase::Mistakes`). All `false` in production; nothing outside the simulator and the
/// core's own tests sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mistakes {
    /// A new leader serves snapshots, GXIDs, global xmin and sequence values at once, without waiting for
    /// the sessions to re-register the transactions they still run (no recovery): until a session comes
    /// back, every snapshot misses its running GXIDs, so a transaction that commits afterwards looks
    /// committed-before-the-snapshot to it (fractured reads). `PGXC_SIM_MISTAKE=stale_snapshot_after_leader_change`
    /// in the simulator.
    pub stale_snapshot_after_leader_change: bool,
}

impl Default for CoreConfig {
    fn default() -> CoreConfig {
        CoreConfig {
            gxid_block: GXID_BLOCK,
            seq_block: SEQ_BLOCK,
            recovery_grace_ms: RECOVERY_GRACE_MS,
            session_timeout_ms: SESSION_TIMEOUT_MS,
            proposal_retry_ms: PROPOSAL_RETRY_MS,
            mistakes: Mistakes::default(),
        }
    }
}

/// A replicated command: the payload of a Raft log entry. Every command is safe to apply more than once
/// (re-proposals after a lost proposal): the second application is a no-op, returns the same error, or (for
/// [`Command::ReserveSequence`] and [`Command::Barrier`]) consumes fresh values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// No-op (e.g. openraft's leader-start entry). Result: [`CommandResult::Done`].
    Noop,
    /// Raise [`DurableState::gxid_reserved_upto`] to `upto` (never lowers it). Result: `Done`.
    ReserveGxids {
        /// New reservation mark: every GXID below it may be issued.
        upto: u64,
    },
    /// Open a new session with the next never-used id. Result: [`CommandResult::Session`].
    OpenSession,
    /// Close a session (idempotent). The leader drops its non-prepared running transactions. Result: `Done`.
    CloseSession {
        /// The session.
        session: SessionId,
    },
    /// Record that `gxid`, run by `session`, is prepared as `gid` on `nodes`. Result: `Done`; errors
    /// (as [`CommandResult::Error`]): 42710 if `gid` is used by another transaction, 08006 if `session` was closed
    /// first (its transactions were dropped), XX000 if `gxid` was never issued or is prepared under another gid.
    /// Re-applying the same record is a no-op.
    Prepare {
        /// The session owning the transaction (filled in by the leader from its registry).
        session: SessionId,
        /// The transaction.
        gxid: Gxid,
        /// Global transaction identifier.
        gid: String,
        /// Participant node names.
        nodes: Vec<String>,
    },
    /// Record the decision for a prepared gid. Result: `Done` (also for a repeated identical decision);
    /// errors: 42704 unknown gid, XX000 contrary decision.
    Decide {
        /// Global transaction identifier.
        gid: String,
        /// Commit (true) or rollback (false).
        commit: bool,
    },
    /// Drop a prepared record (idempotent). Result: `Done`.
    Forget {
        /// Global transaction identifier.
        gid: String,
    },
    /// `CREATE SEQUENCE`. Result: `Done`; errors: 42P07, 22023, 22003 (PostgreSQL's messages).
    CreateSequence {
        /// Name.
        name: String,
        /// Options.
        options: SeqOptions,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER SEQUENCE`. Result: `Done`; errors: 42P01, 22023, 22003.
    AlterSequence {
        /// Name.
        name: String,
        /// Options.
        options: SeqOptions,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `ALTER SEQUENCE from RENAME TO to`. Result: `Done`; errors: 42P01 (`from` missing), 42P07 (`to` exists).
    RenameSequence {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// `DROP SEQUENCE`. Result: `Done`; errors: 42P01.
    DropSequence {
        /// Name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `setval(name, value, is_called)`. Result: [`CommandResult::Value`]; errors: 42P01, 22003.
    SetVal {
        /// Name.
        name: String,
        /// New value.
        value: i64,
        /// Whether `value` counts as already returned.
        is_called: bool,
    },
    /// Durably reserve the next block of up to `count` values of a sequence (PostgreSQL's `nextval` fetching
    /// `count` values at once). The block never crosses a cycle wrap: it stops at the bound and the next block
    /// wraps. Result: [`CommandResult::SeqRange`]; errors: 42P01, 2200H when the sequence is exhausted and does
    /// not cycle.
    ReserveSequence {
        /// Name.
        name: String,
        /// Values wanted (0 is treated as 1).
        count: u64,
        /// How many of the first values go to the request that proposed this command (the rest are cached by
        /// the leader); 0 for a background refill. Not used by `apply`.
        claim: u64,
    },
    /// `CREATE BARRIER [id]`: bump the barrier counter; record `id`, or a generated `barrier_NNNN` (the counter,
    /// zero-padded to 4 digits, skipping ids already used). Result: [`CommandResult::Barrier`]; errors: 42710
    /// if `id` was used.
    Barrier {
        /// The user's id.
        id: Option<String>,
    },
}

/// The result of applying a [`Command`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Success without a value.
    Done,
    /// The id of a session opened by [`Command::OpenSession`].
    Session(SessionId),
    /// A block of sequence values reserved by [`Command::ReserveSequence`]: `first`, `first + increment`, ...,
    /// `count` values (count >= 1), all within the sequence's bounds.
    SeqRange {
        /// [`SeqState::generation`] of the sequence when the block was reserved (caches from an older generation
        /// are stale).
        generation: u64,
        /// First value.
        first: i64,
        /// Step between values (the sequence's INCREMENT).
        increment: i64,
        /// Number of values.
        count: u64,
    },
    /// The value set by [`Command::SetVal`].
    Value(i64),
    /// The barrier id issued by [`Command::Barrier`].
    Barrier(String),
    /// The command was refused; nothing changed.
    Error(PgError),
}

impl CommandResult {
    /// The values of a [`CommandResult::SeqRange`], in order (empty for other results).
    pub fn seq_values(&self) -> Vec<i64> {
        match self {
            CommandResult::SeqRange {
                first,
                increment,
                count,
                ..
            } => seq::range_values(*first, *increment, 0, *count),
            _ => Vec::new(),
        }
    }
}

/// What the server must do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Send this response.
    Reply(Response),
    /// Propose `cmd` through Raft; once applied, call [`LeaderState::on_applied`] and answer with
    /// [`LeaderState::reply_for`] of its result. If the proposal fails (lost leadership), answer with an error
    /// of the server's choice (the client retries at the new leader).
    Propose(Command),
    /// Cannot answer yet (recovering, or waiting for a GXID/sequence reservation): call `handle` again after the
    /// next apply or tick.
    Wait,
}
