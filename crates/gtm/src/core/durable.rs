//! The replicated half of the GTM state machine: [`DurableState`] and its deterministic [`DurableState::apply`].
//!
//! **Invariant:** `apply` is a pure function of the state and the command (BTree collections only, no clocks):
//! every replica applying the same log reaches the same state, which is also the Raft snapshot.
//!
//! **Invariant:** `gxid_reserved_upto` and `next_session` never decrease; a session id is never reused; a
//! prepared record stays until [`Command::Forget`], whatever happens to its session.

use super::seq::{duplicate, undefined, SeqState};
use super::{Command, CommandResult};
use crate::proto::{PreparedTxn, SessionId};
use pgxc_common::{Gxid, PgError, SqlState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// State replicated by Raft (and its snapshot). Fields are public for inspection (status, tests); change them
/// only through [`DurableState::apply`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurableState {
    /// Every GXID below this may have been issued; the leader issues only below it and a new leader starts at it.
    pub gxid_reserved_upto: u64,
    /// The last session id issued (ids start at 1).
    pub next_session: SessionId,
    /// Open sessions.
    pub sessions: BTreeSet<SessionId>,
    /// Prepared transactions by gid (with their decision once recorded).
    pub prepared: BTreeMap<String, PreparedTxn>,
    /// Sequences by (caller-qualified) name.
    pub sequences: BTreeMap<String, SeqState>,
    /// Counter stamped into [`SeqState::generation`] on every sequence definition or position change.
    pub seq_generation: u64,
    /// Barriers issued so far (the monotonic barrier counter).
    pub barrier_counter: u64,
    /// Barrier ids used.
    pub barriers: BTreeSet<String>,
}

fn internal(msg: String) -> PgError {
    PgError::new(SqlState::InternalError, msg)
}

/// 08006 `GTM session N expired`: the session was closed; its open transactions are lost.
pub fn session_expired(session: SessionId) -> PgError {
    PgError::new(
        SqlState::ConnectionFailure,
        format!("GTM session {session} expired"),
    )
}

impl DurableState {
    /// Apply one committed command (deterministic). Refusals are returned as [`CommandResult::Error`] and change
    /// nothing; see each [`Command`] variant for its result and errors.
    pub fn apply(&mut self, cmd: &Command) -> CommandResult {
        match self.apply_inner(cmd) {
            Ok(r) => r,
            Err(e) => CommandResult::Error(e),
        }
    }

    /// Whether `gxid` is prepared (under any gid).
    pub fn is_prepared(&self, gxid: Gxid) -> bool {
        self.prepared.values().any(|p| p.gxid == gxid)
    }

    /// The prepared GXIDs, ascending, without duplicates.
    pub fn prepared_gxids(&self) -> Vec<Gxid> {
        let set: BTreeSet<Gxid> = self.prepared.values().map(|p| p.gxid).collect();
        set.into_iter().collect()
    }

    fn next_generation(&mut self) -> u64 {
        self.seq_generation += 1;
        self.seq_generation
    }

    fn apply_inner(&mut self, cmd: &Command) -> Result<CommandResult, PgError> {
        match cmd {
            Command::Noop => Ok(CommandResult::Done),
            Command::ReserveGxids { upto } => {
                self.gxid_reserved_upto = self.gxid_reserved_upto.max(*upto);
                Ok(CommandResult::Done)
            }
            Command::OpenSession => {
                self.next_session += 1;
                self.sessions.insert(self.next_session);
                Ok(CommandResult::Session(self.next_session))
            }
            Command::CloseSession { session } => {
                self.sessions.remove(session);
                Ok(CommandResult::Done)
            }
            Command::Prepare {
                session,
                gxid,
                gid,
                nodes,
            } => {
                if let Some(p) = self.prepared.get(gid) {
                    if p.gxid == *gxid {
                        return Ok(CommandResult::Done);
                    }
                    return Err(PgError::new(
                        SqlState::DuplicateObject,
                        format!("transaction identifier \"{gid}\" is already in use"),
                    ));
                }
                if !gxid.is_valid() || gxid.0 >= self.gxid_reserved_upto {
                    return Err(internal(format!("GXID {gxid} was never issued")));
                }
                if let Some(p) = self.prepared.values().find(|p| p.gxid == *gxid) {
                    return Err(internal(format!(
                        "transaction {gxid} is already prepared as \"{}\"",
                        p.gid
                    )));
                }
                if !self.sessions.contains(session) {
                    return Err(session_expired(*session));
                }
                self.prepared.insert(
                    gid.clone(),
                    PreparedTxn {
                        gxid: *gxid,
                        gid: gid.clone(),
                        nodes: nodes.clone(),
                        decision: None,
                    },
                );
                Ok(CommandResult::Done)
            }
            Command::Decide { gid, commit } => {
                let p = self.prepared.get_mut(gid).ok_or_else(|| {
                    PgError::new(
                        SqlState::UndefinedObject,
                        format!("prepared transaction with identifier \"{gid}\" does not exist"),
                    )
                })?;
                match p.decision {
                    None => {
                        p.decision = Some(*commit);
                        Ok(CommandResult::Done)
                    }
                    Some(d) if d == *commit => Ok(CommandResult::Done),
                    Some(d) => Err(internal(format!(
                        "prepared transaction \"{gid}\" was already decided to {}",
                        if d { "commit" } else { "roll back" }
                    ))),
                }
            }
            Command::Forget { gid } => {
                self.prepared.remove(gid);
                Ok(CommandResult::Done)
            }
            Command::CreateSequence {
                name,
                options,
                if_not_exists,
            } => {
                if self.sequences.contains_key(name) {
                    return if *if_not_exists {
                        Ok(CommandResult::Done)
                    } else {
                        Err(duplicate(name))
                    };
                }
                let generation = self.seq_generation + 1;
                let s = SeqState::create(options, generation)?;
                self.seq_generation = generation;
                self.sequences.insert(name.clone(), s);
                Ok(CommandResult::Done)
            }
            Command::AlterSequence {
                name,
                options,
                if_exists,
            } => {
                let generation = self.seq_generation + 1;
                match self.sequences.get_mut(name) {
                    None if *if_exists => Ok(CommandResult::Done),
                    None => Err(undefined(name)),
                    Some(s) => {
                        s.alter(options, generation)?;
                        self.seq_generation = generation;
                        Ok(CommandResult::Done)
                    }
                }
            }
            Command::RenameSequence { from, to } => {
                if !self.sequences.contains_key(from) {
                    return Err(undefined(from));
                }
                if self.sequences.contains_key(to) {
                    return Err(duplicate(to));
                }
                let mut s = self.sequences.remove(from).expect("checked above");
                s.generation = self.next_generation();
                self.sequences.insert(to.clone(), s);
                Ok(CommandResult::Done)
            }
            Command::DropSequence { name, if_exists } => {
                if self.sequences.remove(name).is_none() && !*if_exists {
                    return Err(undefined(name));
                }
                Ok(CommandResult::Done)
            }
            Command::SetVal {
                name,
                value,
                is_called,
            } => {
                let generation = self.seq_generation + 1;
                let s = self
                    .sequences
                    .get_mut(name)
                    .ok_or_else(|| undefined(name))?;
                s.setval(name, *value, *is_called, generation)?;
                self.seq_generation = generation;
                Ok(CommandResult::Value(*value))
            }
            Command::ReserveSequence {
                name,
                count,
                claim: _,
            } => {
                let s = self
                    .sequences
                    .get_mut(name)
                    .ok_or_else(|| undefined(name))?;
                let (first, n) = s.reserve(name, *count)?;
                Ok(CommandResult::SeqRange {
                    generation: s.generation,
                    first,
                    increment: s.increment,
                    count: n,
                })
            }
            Command::Barrier { id } => {
                let id = match id {
                    Some(id) => {
                        if self.barriers.contains(id) {
                            return Err(PgError::new(
                                SqlState::DuplicateObject,
                                format!("barrier \"{id}\" already exists"),
                            ));
                        }
                        self.barrier_counter += 1;
                        id.clone()
                    }
                    None => loop {
                        self.barrier_counter += 1;
                        let id = format!("barrier_{:04}", self.barrier_counter);
                        if !self.barriers.contains(&id) {
                            break id;
                        }
                    },
                };
                self.barriers.insert(id.clone());
                Ok(CommandResult::Barrier(id))
            }
        }
    }
}
