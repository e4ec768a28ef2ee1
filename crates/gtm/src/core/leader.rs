//! The leader's volatile half of the GTM state machine: [`LeaderState`].
//!
//! It holds what is not replicated: the running transactions (GXID → session, held snapshot xmin), the next GXID
//! to issue, cached sequence blocks, session liveness and recovery progress. A new leader rebuilds it from
//! [`DurableState`] plus the sessions' re-registrations (Postgres-XC's GTM standby instead replicated every
//! transaction; we replicate only reservations, sessions and two-phase records).
//!
//! **Invariant:** `next_gxid` only increases, every GXID issued is `< durable.gxid_reserved_upto`, and every
//! running or prepared GXID is `< next_gxid` (so every snapshot is well formed).
//!
//! **Invariant:** while recovering, no GXID, snapshot, global xmin or sequence value is served.
//!
//! **Invariant:** a cached sequence block is served only while the sequence's durable generation equals the
//! block's (ALTER, setval, RENAME, DROP discard it).

use super::durable::session_expired;
use super::seq::{range_values, undefined, SeqState};
use super::{Command, CommandResult, CoreConfig, DurableState, Step};
use crate::proto::{NodeStatus, Request, Response, SessionId};
use pgxc_common::{Gxid, PgError, Snapshot, SqlState};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Largest `count` one `NextVal` is served (larger requests get this many values).
pub const MAX_NEXTVAL_COUNT: u64 = 1 << 20;

/// A running transaction in the leader's registry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Running {
    session: SessionId,
    /// xmin of the oldest snapshot the transaction took (or re-registered), if any.
    held_xmin: Option<Gxid>,
}

/// Cached, reserved-but-unserved values of one sequence: segments `(next, left)` of the sequence's increment.
#[derive(Clone, Debug, Default)]
struct SeqCache {
    generation: u64,
    segs: VecDeque<(i64, u64)>,
}

/// The leader's volatile state. See the [module docs](super) for the design.
#[derive(Debug)]
pub struct LeaderState {
    config: CoreConfig,
    started_ms: u64,
    now_ms: u64,
    next_gxid: u64,
    last_issued: u64,
    running: BTreeMap<Gxid, Running>,
    by_session: BTreeMap<SessionId, BTreeSet<Gxid>>,
    recovering: bool,
    pending: BTreeSet<SessionId>,
    last_seen: BTreeMap<SessionId, u64>,
    closing: BTreeMap<SessionId, u64>,
    gxid_inflight: Option<(u64, u64)>,
    seq_cache: BTreeMap<String, SeqCache>,
    seq_wanted: BTreeMap<String, u64>,
    seq_inflight: BTreeMap<String, u64>,
}

fn not_running(gxid: Gxid) -> PgError {
    PgError::new(
        SqlState::ObjectNotInPrerequisiteState,
        format!("transaction {gxid} is not running on the GTM"),
    )
}

fn no_session() -> PgError {
    PgError::new(
        SqlState::ProtocolViolation,
        "no GTM session registered on this connection",
    )
}

impl LeaderState {
    /// Start leading at `now_ms` with the replicated state as it is and the default [`CoreConfig`].
    pub fn new(durable: &DurableState, now_ms: u64) -> LeaderState {
        LeaderState::with_config(durable, now_ms, CoreConfig::default())
    }

    /// Start leading at `now_ms` with `config`. `next_gxid` starts at `durable.gxid_reserved_upto` (at least
    /// [`Gxid::FIRST_NORMAL`]); the leader is recovering until every open session of `durable` re-registered or
    /// was closed (not recovering at all if there is none).
    ///
    /// Panics if `config.gxid_block < 2` or `config.seq_block < 1`.
    pub fn with_config(durable: &DurableState, now_ms: u64, config: CoreConfig) -> LeaderState {
        assert!(
            config.gxid_block >= 2 && config.seq_block >= 1,
            "bad CoreConfig {config:?}"
        );
        let pending = durable.sessions.clone();
        // The re-introduced mistake (tests only): no recovery, snapshots without the running set.
        let recovering = !pending.is_empty() && !config.mistakes.stale_snapshot_after_leader_change;
        let next_gxid = durable.gxid_reserved_upto.max(Gxid::FIRST_NORMAL.0);
        LeaderState {
            config,
            started_ms: now_ms,
            now_ms,
            next_gxid,
            last_issued: 0,
            running: BTreeMap::new(),
            by_session: BTreeMap::new(),
            recovering,
            last_seen: pending.iter().map(|s| (*s, now_ms)).collect(),
            pending,
            closing: BTreeMap::new(),
            gxid_inflight: None,
            seq_cache: BTreeMap::new(),
            seq_wanted: BTreeMap::new(),
            seq_inflight: BTreeMap::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The next GXID this leader will issue (the `xmax` of a snapshot taken now).
    pub fn next_gxid(&self) -> Gxid {
        Gxid(self.next_gxid)
    }

    /// Number of running (begun or re-registered, not ended, not prepared) transactions in the registry.
    pub fn running_count(&self) -> u64 {
        self.running.len() as u64
    }

    /// Whether the leader still waits for sessions to re-register (serves no snapshot, GXID, global xmin or
    /// sequence value).
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// Sessions that have not re-registered since this leader started (empty once recovery ended).
    pub fn pending_sessions(&self) -> Vec<SessionId> {
        self.pending.iter().copied().collect()
    }

    /// The running GXIDs of the registry, ascending (prepared ones are in [`DurableState::prepared`]).
    pub fn running_gxids(&self) -> Vec<Gxid> {
        self.running.keys().copied().collect()
    }

    /// The global xmin: the minimum over running transactions of their GXID and held snapshot xmin, and over
    /// prepared GXIDs; `next_gxid` if there is none. Meaningless while recovering.
    pub fn global_xmin(&self, durable: &DurableState) -> Gxid {
        let running = self
            .running
            .iter()
            .map(|(g, r)| r.held_xmin.map_or(*g, |x| x.min(*g)));
        let prepared = durable.prepared.values().map(|p| p.gxid);
        running
            .chain(prepared)
            .min()
            .unwrap_or(Gxid(self.next_gxid))
            .min(Gxid(self.next_gxid))
    }

    /// A snapshot now: `xmax = next_gxid`, `xip = running ∪ prepared`. Meaningless while recovering.
    pub fn snapshot(&mut self, durable: &DurableState) -> Snapshot {
        let mut xip: Vec<Gxid> = self.running.keys().copied().collect();
        xip.extend(durable.prepared.values().map(|p| p.gxid));
        xip.sort_unstable();
        xip.dedup();
        if let Some(last) = xip.last() {
            // A prepared GXID is below the reservation mark; after a leader change it may (in theory) have been
            // issued by the previous leader past our start: never issue it again.
            if last.0 >= self.next_gxid {
                self.next_gxid = last.0 + 1;
            }
        }
        Snapshot::new(Gxid(self.next_gxid), xip)
    }

    fn touch(&mut self, session: Option<SessionId>, durable: &DurableState, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        if let Some(s) = session {
            if durable.sessions.contains(&s) {
                self.last_seen.insert(s, self.now_ms);
            }
        }
        if self.recovering {
            self.pending.retain(|s| durable.sessions.contains(s));
            if self.pending.is_empty() {
                self.recovering = false;
            }
        }
    }

    /// The session a transaction-starting request runs in: it must be registered and open.
    fn live_session(
        &self,
        session: Option<SessionId>,
        durable: &DurableState,
    ) -> Result<SessionId, PgError> {
        let s = session.ok_or_else(no_session)?;
        if !durable.sessions.contains(&s) || self.closing.contains_key(&s) {
            return Err(session_expired(s));
        }
        Ok(s)
    }

    fn issue_gxid(&mut self, session: SessionId, durable: &DurableState) -> Option<Gxid> {
        if self.next_gxid >= durable.gxid_reserved_upto {
            return None;
        }
        let g = self.next_gxid;
        assert!(
            g > self.last_issued,
            "GXID {g} issued after {}",
            self.last_issued
        );
        assert!(
            !self.running.contains_key(&Gxid(g)),
            "GXID {g} already running"
        );
        self.last_issued = g;
        self.next_gxid = g + 1;
        self.running.insert(
            Gxid(g),
            Running {
                session,
                held_xmin: None,
            },
        );
        self.by_session.entry(session).or_default().insert(Gxid(g));
        Some(Gxid(g))
    }

    fn hold_xmin(&mut self, gxid: Gxid, xmin: Gxid) {
        if let Some(r) = self.running.get_mut(&gxid) {
            r.held_xmin = Some(r.held_xmin.map_or(xmin, |x| x.min(xmin)));
        }
    }

    fn end(&mut self, gxid: Gxid) {
        if let Some(r) = self.running.remove(&gxid) {
            if let Some(set) = self.by_session.get_mut(&r.session) {
                set.remove(&gxid);
                if set.is_empty() {
                    self.by_session.remove(&r.session);
                }
            }
        }
    }

    fn drop_session(&mut self, session: SessionId) {
        for g in self.by_session.remove(&session).unwrap_or_default() {
            self.running.remove(&g);
        }
        self.pending.remove(&session);
        self.closing.remove(&session);
        self.last_seen.remove(&session);
        if self.recovering && self.pending.is_empty() {
            self.recovering = false;
        }
    }

    /// Handle one request from `session` (`None` before the connection registered) at `now_ms`.
    ///
    /// - `Register { session: None, open: [] }` → `Propose(OpenSession)`; a non-empty `open` is 08P01.
    /// - `Register { session: Some(s), open }` → `Reply(Registered)`, re-adding `open` to the running set (each
    ///   GXID must have been issued: else XX000) and ending `s`'s recovery wait; 08006 `GTM session N expired` if
    ///   `s` is closed (or being closed).
    /// - `Begin`, `BeginSnapshot`, `Snapshot`, `GlobalXmin`, `NextVal`: `Wait` while recovering (and `Begin*`
    ///   while the GXID range is exhausted). `Begin*` need a registered, open session (08P01 / 08006).
    ///   `Snapshot { gxid: Some(g) }` needs `g` running (55000 otherwise).
    /// - `Commit`/`Abort`: leave the running set (idempotent) → `Ok`.
    /// - `Prepare` → `Propose(Command::Prepare)` if the GXID is running; `Ok` if already prepared as this gid;
    ///   `Wait` while recovering; else 55000.
    /// - `Decide`, `Forget`, sequence DDL, `SetVal`, `CreateBarrier` → `Propose` (`Forget` of an unknown gid
    ///   replies `Ok` at once).
    /// - `NextVal` → values from the cache; `Propose(ReserveSequence)` with `claim = count` if the cache is
    ///   empty; `Wait` (with a background refill) if it holds fewer than `count` values before a bound.
    /// - `ListPrepared`, `GetSequence` → from `durable`.
    /// - `Status` → a minimal leader status; `Admin` → 0A000 (the server handles both itself).
    pub fn handle(
        &mut self,
        session: Option<SessionId>,
        req: &Request,
        durable: &DurableState,
        now_ms: u64,
    ) -> Step {
        self.touch(session, durable, now_ms);
        let err = |e: PgError| Step::Reply(Response::Error(e));
        match req {
            Request::Register {
                session: None,
                open,
            } => {
                if !open.is_empty() {
                    return err(PgError::new(
                        SqlState::ProtocolViolation,
                        "a new GTM session cannot hold open transactions",
                    ));
                }
                Step::Propose(Command::OpenSession)
            }
            Request::Register {
                session: Some(s),
                open,
            } => match self.register(*s, open, durable) {
                Ok(()) => Step::Reply(Response::Registered { session: *s }),
                Err(e) => err(e),
            },
            Request::KeepAlive => match session {
                Some(_) => match self.live_session(session, durable) {
                    Ok(_) => Step::Reply(Response::Ok),
                    Err(e) => err(e),
                },
                None => Step::Reply(Response::Ok),
            },
            Request::Begin | Request::BeginSnapshot => {
                let s = match self.live_session(session, durable) {
                    Ok(s) => s,
                    Err(e) => return err(e),
                };
                if self.recovering {
                    return Step::Wait;
                }
                let Some(g) = self.issue_gxid(s, durable) else {
                    return Step::Wait;
                };
                if matches!(req, Request::Begin) {
                    return Step::Reply(Response::Gxid(g));
                }
                let snapshot = self.snapshot(durable);
                self.hold_xmin(g, snapshot.xmin);
                Step::Reply(Response::Begun { gxid: g, snapshot })
            }
            Request::Snapshot { gxid } => {
                if let Some(g) = gxid {
                    if session.is_some() {
                        if let Err(e) = self.live_session(session, durable) {
                            return err(e);
                        }
                    }
                    if self.recovering {
                        return Step::Wait;
                    }
                    if !self.running.contains_key(g) {
                        return err(not_running(*g));
                    }
                    let snapshot = self.snapshot(durable);
                    self.hold_xmin(*g, snapshot.xmin);
                    Step::Reply(Response::Snapshot(snapshot))
                } else if self.recovering {
                    Step::Wait
                } else {
                    Step::Reply(Response::Snapshot(self.snapshot(durable)))
                }
            }
            Request::Commit { gxid } | Request::Abort { gxid } => {
                self.end(*gxid);
                Step::Reply(Response::Ok)
            }
            Request::Prepare { gxid, gid, nodes } => {
                if let Some(r) = self.running.get(gxid) {
                    return Step::Propose(Command::Prepare {
                        session: r.session,
                        gxid: *gxid,
                        gid: gid.clone(),
                        nodes: nodes.clone(),
                    });
                }
                if durable.prepared.get(gid).is_some_and(|p| p.gxid == *gxid) {
                    return Step::Reply(Response::Ok);
                }
                if self.recovering {
                    return Step::Wait;
                }
                err(not_running(*gxid))
            }
            Request::Decide { gid, commit } => Step::Propose(Command::Decide {
                gid: gid.clone(),
                commit: *commit,
            }),
            Request::Forget { gid } => {
                if durable.prepared.contains_key(gid) {
                    Step::Propose(Command::Forget { gid: gid.clone() })
                } else {
                    Step::Reply(Response::Ok)
                }
            }
            Request::ListPrepared => Step::Reply(Response::Prepared(
                durable.prepared.values().cloned().collect(),
            )),
            Request::GlobalXmin => {
                if self.recovering {
                    Step::Wait
                } else {
                    Step::Reply(Response::Gxid(self.global_xmin(durable)))
                }
            }
            Request::CreateSequence {
                name,
                options,
                if_not_exists,
            } => Step::Propose(Command::CreateSequence {
                name: name.clone(),
                options: options.clone(),
                if_not_exists: *if_not_exists,
            }),
            Request::AlterSequence {
                name,
                options,
                if_exists,
            } => Step::Propose(Command::AlterSequence {
                name: name.clone(),
                options: options.clone(),
                if_exists: *if_exists,
            }),
            Request::RenameSequence { from, to } => Step::Propose(Command::RenameSequence {
                from: from.clone(),
                to: to.clone(),
            }),
            Request::DropSequence { name, if_exists } => Step::Propose(Command::DropSequence {
                name: name.clone(),
                if_exists: *if_exists,
            }),
            Request::NextVal { name, count } => self.nextval(name, *count, durable),
            Request::SetVal {
                name,
                value,
                is_called,
            } => Step::Propose(Command::SetVal {
                name: name.clone(),
                value: *value,
                is_called: *is_called,
            }),
            Request::GetSequence { name } => match durable.sequences.get(name) {
                Some(s) => Step::Reply(Response::Sequence(s.info(name))),
                None => err(undefined(name)),
            },
            Request::CreateBarrier { id } => Step::Propose(Command::Barrier { id: id.clone() }),
            Request::Status => Step::Reply(Response::Status(NodeStatus {
                next_gxid: self.next_gxid,
                gxid_reserved_upto: durable.gxid_reserved_upto,
                running: self.running_count(),
                recovering: self.recovering,
                ..NodeStatus::blank(0, "leader")
            })),
            Request::Admin(_) => err(PgError::new(
                SqlState::FeatureNotSupported,
                "GTM administrative requests are handled by the server",
            )),
        }
    }

    fn register(
        &mut self,
        s: SessionId,
        open: &[(Gxid, Gxid)],
        durable: &DurableState,
    ) -> Result<(), PgError> {
        if !durable.sessions.contains(&s) || self.closing.contains_key(&s) {
            return Err(session_expired(s));
        }
        for (g, _) in open {
            if !g.is_valid() || g.0 >= durable.gxid_reserved_upto || g.0 >= self.next_gxid {
                return Err(PgError::new(
                    SqlState::InternalError,
                    format!("GXID {g} was never issued"),
                ));
            }
            if let Some(r) = self.running.get(g) {
                if r.session != s {
                    return Err(PgError::new(
                        SqlState::InternalError,
                        format!("GXID {g} is registered by GTM session {}", r.session),
                    ));
                }
            }
        }
        for (g, xmin) in open {
            let held_xmin = xmin.is_valid().then_some(*xmin);
            let entry = self.running.entry(*g).or_insert(Running {
                session: s,
                held_xmin: None,
            });
            if let Some(x) = held_xmin {
                entry.held_xmin = Some(entry.held_xmin.map_or(x, |h| h.min(x)));
            }
            self.by_session.entry(s).or_default().insert(*g);
        }
        self.pending.remove(&s);
        if self.recovering && self.pending.is_empty() {
            self.recovering = false;
        }
        Ok(())
    }

    fn nextval(&mut self, name: &str, count: u64, durable: &DurableState) -> Step {
        if self.recovering {
            return Step::Wait;
        }
        let Some(seq) = durable.sequences.get(name) else {
            return Step::Reply(Response::Error(undefined(name)));
        };
        let count = count.clamp(1, MAX_NEXTVAL_COUNT);
        if self
            .seq_cache
            .get(name)
            .is_some_and(|c| c.generation != seq.generation || c.segs.is_empty())
        {
            self.seq_cache.remove(name);
        }
        let Some(cache) = self.seq_cache.get_mut(name) else {
            // One reservation in flight per sequence: concurrent nextvals wait for it instead of each
            // reserving a block of their own, so values are handed out in request order (PostgreSQL's CACHE 1
            // ordering across sessions).
            if self.seq_inflight.contains_key(name) {
                let want = self.seq_wanted.entry(name.to_string()).or_default();
                *want = (*want).max(count);
                return Step::Wait;
            }
            self.seq_inflight.insert(name.to_string(), self.now_ms);
            return Step::Propose(Command::ReserveSequence {
                name: name.to_string(),
                count: count.max(self.config.seq_block),
                claim: count,
            });
        };
        // Values available up to the next bound (a block never crosses one).
        let mut avail = 0u64;
        let mut bounded = false;
        for &(next, left) in &cache.segs {
            avail += left;
            if seq.ends_at_bound(seg_last(seq, next, left)) {
                bounded = true;
                break;
            }
        }
        if avail < count && !bounded {
            let want = self.seq_wanted.entry(name.to_string()).or_default();
            *want = (*want).max(count);
            return Step::Wait;
        }
        let mut values = Vec::with_capacity(count.min(avail) as usize);
        while (values.len() as u64) < count {
            let Some((next, left)) = cache.segs.front_mut() else {
                break;
            };
            let at_bound = seq.ends_at_bound(seg_last(seq, *next, *left));
            let k = (count - values.len() as u64).min(*left);
            values.extend(range_values(*next, seq.increment, 0, k));
            *left -= k;
            if *left == 0 {
                cache.segs.pop_front();
                if at_bound {
                    break;
                }
            } else {
                *next = (*next as i128 + k as i128 * seq.increment as i128) as i64;
            }
        }
        // Refill in the background before the cache runs dry.
        let rest: u64 = cache.segs.iter().map(|s| s.1).sum();
        let rest_bounded = cache
            .segs
            .back()
            .is_some_and(|&(n, l)| seq.ends_at_bound(seg_last(seq, n, l)));
        if rest * 2 < self.config.seq_block && !rest_bounded {
            let want = self.seq_wanted.entry(name.to_string()).or_default();
            *want = (*want).max(count);
        }
        Step::Reply(Response::Values(values))
    }

    /// The response for a request whose [`Step::Propose`]d command applied with `result`: `Registered` for
    /// `OpenSession`, the claimed values for `ReserveSequence`, `Value` for `SetVal`, `Barrier` for `Barrier`,
    /// `Error` for a refused command, else `Ok`.
    pub fn reply_for(&mut self, _req: &Request, cmd: &Command, result: &CommandResult) -> Response {
        match result {
            CommandResult::Error(e) => Response::Error(e.clone()),
            CommandResult::Session(s) => Response::Registered { session: *s },
            CommandResult::SeqRange {
                first,
                increment,
                count,
                ..
            } => {
                let claim = match cmd {
                    Command::ReserveSequence { claim, .. } => *claim,
                    _ => 0,
                };
                Response::Values(range_values(*first, *increment, 0, claim.min(*count)))
            }
            CommandResult::Value(v) => Response::Value(*v),
            CommandResult::Barrier(id) => Response::Barrier(id.clone()),
            CommandResult::Done => Response::Ok,
        }
    }

    /// Learn the result of an applied command proposed by this leader (`durable` is the state after it applied,
    /// possibly with later commands applied too). Commands proposed by a previous leader may be reported as well.
    pub fn on_applied(&mut self, cmd: &Command, result: &CommandResult, durable: &DurableState) {
        let ok = !matches!(result, CommandResult::Error(_));
        match cmd {
            Command::Noop
            | Command::Decide { .. }
            | Command::Forget { .. }
            | Command::Barrier { .. } => {}
            Command::ReserveGxids { upto } => {
                if self
                    .gxid_inflight
                    .is_some_and(|(u, _)| u <= *upto || durable.gxid_reserved_upto >= u)
                {
                    self.gxid_inflight = None;
                }
            }
            Command::OpenSession => {
                if let CommandResult::Session(s) = result {
                    if durable.sessions.contains(s) {
                        self.last_seen.insert(*s, self.now_ms);
                    }
                }
            }
            Command::CloseSession { session } => self.drop_session(*session),
            Command::Prepare { gxid, gid, .. } => {
                if ok || durable.prepared.get(gid).is_some_and(|p| p.gxid == *gxid) {
                    self.end(*gxid);
                }
            }
            Command::CreateSequence { name, .. }
            | Command::AlterSequence { name, .. }
            | Command::DropSequence { name, .. }
            | Command::SetVal { name, .. } => {
                self.seq_cache.remove(name);
            }
            Command::RenameSequence { from, to } => {
                self.seq_cache.remove(from);
                self.seq_cache.remove(to);
            }
            Command::ReserveSequence { name, claim, .. } => {
                self.seq_inflight.remove(name);
                if *claim == 0 {
                    self.seq_wanted.remove(name);
                }
                if let CommandResult::SeqRange {
                    generation,
                    first,
                    increment,
                    count,
                } = result
                {
                    let current = durable.sequences.get(name).map(|s| s.generation);
                    if current == Some(*generation) && *count > *claim {
                        let cache = self.seq_cache.entry(name.clone()).or_default();
                        if cache.generation != *generation {
                            *cache = SeqCache {
                                generation: *generation,
                                segs: VecDeque::new(),
                            };
                        }
                        let next = (*first as i128 + *claim as i128 * *increment as i128) as i64;
                        cache.segs.push_back((next, count - claim));
                    }
                }
            }
        }
    }

    /// Background commands this leader wants proposed now (at `now_ms`), each to be reported to
    /// [`LeaderState::on_applied`] once applied:
    /// - `ReserveGxids` when less than half a block of GXIDs remains (one in flight at a time);
    /// - `CloseSession` for every session still pending `recovery_grace_ms` after the leader started, and
    ///   (outside recovery) for every session silent for `session_timeout_ms`;
    /// - `ReserveSequence { claim: 0 }` refills for sequences whose cache runs low or that a `NextVal` waits for.
    ///
    /// A proposal not applied within `proposal_retry_ms` is returned again.
    pub fn take_proposals(&mut self, durable: &DurableState, now_ms: u64) -> Vec<Command> {
        self.touch(None, durable, now_ms);
        let now = self.now_ms;
        let retry = self.config.proposal_retry_ms;
        let due = |at: u64| now.saturating_sub(at) >= retry;
        let mut out = Vec::new();

        // Forget what durable state already settled: closed sessions, prepared transactions.
        let closed: Vec<SessionId> = self
            .by_session
            .keys()
            .chain(self.last_seen.keys())
            .filter(|s| !durable.sessions.contains(s))
            .copied()
            .collect();
        for s in closed {
            self.drop_session(s);
        }
        let prepared: Vec<Gxid> = durable
            .prepared_gxids()
            .into_iter()
            .filter(|g| self.running.contains_key(g))
            .collect();
        for g in prepared {
            self.end(g);
        }
        self.closing.retain(|s, _| durable.sessions.contains(s));

        // GXID reservation.
        if let Some((upto, at)) = self.gxid_inflight {
            if durable.gxid_reserved_upto >= upto || due(at) {
                self.gxid_inflight = None;
            }
        }
        let left = durable.gxid_reserved_upto.saturating_sub(self.next_gxid);
        if self.gxid_inflight.is_none() && left * 2 < self.config.gxid_block {
            let upto = durable.gxid_reserved_upto.max(self.next_gxid) + self.config.gxid_block;
            self.gxid_inflight = Some((upto, now));
            out.push(Command::ReserveGxids { upto });
        }

        // Session closes: recovery grace, then liveness.
        let mut to_close = Vec::new();
        if self.recovering {
            if now.saturating_sub(self.started_ms) >= self.config.recovery_grace_ms {
                to_close.extend(self.pending.iter().copied());
            }
        } else {
            for s in &durable.sessions {
                let seen = *self.last_seen.entry(*s).or_insert(now);
                if now.saturating_sub(seen) >= self.config.session_timeout_ms {
                    to_close.push(*s);
                }
            }
        }
        for s in to_close {
            if self.closing.get(&s).is_none_or(|at| due(*at)) {
                self.closing.insert(s, now);
                out.push(Command::CloseSession { session: s });
            }
        }

        // Sequence refills.
        self.seq_wanted
            .retain(|name, _| durable.sequences.contains_key(name));
        self.seq_inflight
            .retain(|name, at| durable.sequences.contains_key(name) && !due(*at));
        for (name, count) in &self.seq_wanted {
            if !self.seq_inflight.contains_key(name) {
                self.seq_inflight.insert(name.clone(), now);
                out.push(Command::ReserveSequence {
                    name: name.clone(),
                    count: (*count).max(self.config.seq_block),
                    claim: 0,
                });
            }
        }
        out
    }
}

/// The last value of a cached segment `(next, left)` (left >= 1).
fn seg_last(seq: &SeqState, next: i64, left: u64) -> i64 {
    (next as i128 + (left as i128 - 1) * seq.increment as i128) as i64
}
