//! The GTM's pure state machine: no I/O, no clocks (time is passed in as milliseconds).
//!
//! Two halves:
//! - [`DurableState`]: replicated through Raft. Changed only by [`DurableState::apply`] of a [`Command`], which is
//!   deterministic: every replica applying the same log reaches the same state.
//! - [`LeaderState`]: the leader's volatile state (running transactions, next GXID, cached sequence blocks,
//!   session liveness, recovery). Rebuilt from [`DurableState`] plus session re-registration on every leader
//!   change.
//!
//! The server drives it like an openraft engine: it feeds requests to [`LeaderState::handle`], which answers
//! with a [`Step`]; proposes the [`Command`]s it is asked to; reports their results to
//! [`LeaderState::on_applied`]; retries [`Step::Wait`]ed requests after every apply or tick; and calls
//! [`LeaderState::tick`] periodically.
//!
//! PLACEHOLDER: the real implementation is being written; these definitions fix the API.

use crate::proto::{Request, Response, SessionId};
use serde::{Deserialize, Serialize};

/// A replicated command: the payload of a Raft log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// No-op.
    Noop,
}

/// The result of applying a [`Command`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Nothing to report.
    Done,
}

/// State replicated by Raft.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurableState {}

impl DurableState {
    /// Apply one committed command (deterministic).
    pub fn apply(&mut self, _cmd: &Command) -> CommandResult {
        CommandResult::Done
    }
}

/// What the server must do with a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Send this response.
    Reply(Response),
    /// Propose `cmd` through Raft; once applied, answer with [`LeaderState::reply_for`] of its result.
    Propose(Command),
    /// Cannot answer yet (recovering, or waiting for a GXID/sequence reservation): retry after the next apply or
    /// tick.
    Wait,
}

/// The leader's volatile state.
#[derive(Debug)]
pub struct LeaderState {}

impl LeaderState {
    /// Start leading at `now_ms` with the replicated state as it is.
    pub fn new(_durable: &DurableState, _now_ms: u64) -> LeaderState {
        LeaderState {}
    }

    /// Handle one request from `session` (`None` before the connection registered).
    pub fn handle(&mut self, _session: Option<SessionId>, _req: &Request, _durable: &DurableState, _now_ms: u64) -> Step {
        Step::Wait
    }

    /// The response for a request whose [`Step::Propose`]d command applied with `result`.
    pub fn reply_for(&mut self, _req: &Request, _cmd: &Command, _result: &CommandResult) -> Response {
        Response::Ok
    }

    /// Learn the result of any applied command proposed by this leader.
    pub fn on_applied(&mut self, _cmd: &Command, _result: &CommandResult, _durable: &DurableState) {}

    /// Background commands this leader wants proposed now (GXID/sequence reservations, session closes).
    pub fn take_proposals(&mut self, _durable: &DurableState, _now_ms: u64) -> Vec<Command> {
        Vec::new()
    }
}
