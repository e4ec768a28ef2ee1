//! Unit tests of the GTM state machine: GXIDs, snapshots, sessions and recovery, two-phase records, barriers,
//! and PostgreSQL 15 sequence behaviour (expected values are what PostgreSQL 15 prints).

use super::*;
use crate::proto::{Request, SeqInfo, SeqType};
use pgxc_common::{Gxid, Snapshot, SqlState};

/// A single GTM node: durable state + leader, driven the way the server drives them.
pub(super) struct Harness {
    pub d: DurableState,
    pub l: LeaderState,
    pub now: u64,
    pub cfg: CoreConfig,
}

pub(super) fn small_config() -> CoreConfig {
    CoreConfig {
        gxid_block: 8,
        seq_block: 4,
        recovery_grace_ms: 1_000,
        session_timeout_ms: 5_000,
        proposal_retry_ms: 500,
        mistakes: Mistakes::default(),
    }
}

impl Harness {
    pub fn new(cfg: CoreConfig) -> Harness {
        let d = DurableState::default();
        let l = LeaderState::with_config(&d, 0, cfg.clone());
        Harness { d, l, now: 0, cfg }
    }

    /// Apply a command and report it to the leader.
    pub fn apply(&mut self, cmd: &Command) -> CommandResult {
        let r = self.d.apply(cmd);
        self.l.on_applied(cmd, &r, &self.d);
        r
    }

    /// Propose and apply everything `take_proposals` asks for.
    pub fn pump(&mut self) {
        for cmd in self.l.take_proposals(&self.d, self.now) {
            self.apply(&cmd);
        }
    }

    /// One request; `None` if it still waits after a few ticks of 100 ms.
    pub fn try_req(&mut self, s: Option<u64>, req: Request) -> Option<Response> {
        for _ in 0..5 {
            match self.l.handle(s, &req, &self.d, self.now) {
                Step::Reply(r) => return Some(r),
                Step::Propose(cmd) => {
                    let r = self.apply(&cmd);
                    return Some(self.l.reply_for(&req, &cmd, &r));
                }
                Step::Wait => {
                    self.pump();
                    self.now += 100;
                }
            }
        }
        None
    }

    pub fn req(&mut self, s: Option<u64>, req: Request) -> Response {
        self.try_req(s, req.clone())
            .unwrap_or_else(|| panic!("{req:?} still waiting"))
    }

    pub fn register(&mut self) -> u64 {
        match self.req(
            None,
            Request::Register {
                session: None,
                open: vec![],
            },
        ) {
            Response::Registered { session } => session,
            r => panic!("{r:?}"),
        }
    }

    pub fn begin(&mut self, s: u64) -> Gxid {
        match self.req(Some(s), Request::Begin) {
            Response::Gxid(g) => g,
            r => panic!("{r:?}"),
        }
    }

    pub fn snapshot(&mut self, s: u64, g: Option<Gxid>) -> Snapshot {
        match self.req(Some(s), Request::Snapshot { gxid: g }) {
            Response::Snapshot(x) => x,
            r => panic!("{r:?}"),
        }
    }

    pub fn xmin(&mut self) -> Gxid {
        match self.req(None, Request::GlobalXmin) {
            Response::Gxid(g) => g,
            r => panic!("{r:?}"),
        }
    }

    /// Leader change: a new leader from a copy of the durable state.
    pub fn failover(&mut self) {
        self.l = LeaderState::with_config(&self.d.clone(), self.now, self.cfg.clone());
    }

    pub fn create_seq(&mut self, name: &str, options: SeqOptions) -> Response {
        self.req(
            None,
            Request::CreateSequence {
                name: name.into(),
                options,
                if_not_exists: false,
            },
        )
    }

    pub fn nextval(&mut self, name: &str, count: u64) -> Result<Vec<i64>, PgError> {
        match self.req(
            None,
            Request::NextVal {
                name: name.into(),
                count,
            },
        ) {
            Response::Values(v) => Ok(v),
            Response::Error(e) => Err(e),
            r => panic!("{r:?}"),
        }
    }

    /// `nextval` called `n` times, one value each (a PostgreSQL session with CACHE 1).
    pub fn nextvals(&mut self, name: &str, n: usize) -> Vec<i64> {
        (0..n).map(|_| self.nextval(name, 1).unwrap()[0]).collect()
    }

    pub fn info(&mut self, name: &str) -> SeqInfo {
        match self.req(None, Request::GetSequence { name: name.into() }) {
            Response::Sequence(i) => i,
            r => panic!("{r:?}"),
        }
    }
}

fn err_of(r: Response) -> PgError {
    match r {
        Response::Error(e) => e,
        r => panic!("expected an error, got {r:?}"),
    }
}

fn assert_err(r: Response, code: SqlState, msg: &str) {
    let e = err_of(r);
    assert_eq!((e.code, e.message.as_str()), (code, msg));
}

fn opts() -> SeqOptions {
    SeqOptions::default()
}

// ---------------------------------------------------------------- GXIDs

#[test]
fn gxids_increase_and_reservations_are_durable() {
    let mut h = Harness::new(small_config());
    assert!(!h.l.is_recovering());
    let s = h.register();
    assert_eq!(s, 1);
    // Nothing reserved yet: Begin waits, take_proposals reserves a block.
    assert_eq!(h.l.handle(Some(s), &Request::Begin, &h.d, 0), Step::Wait);
    assert_eq!(
        h.l.take_proposals(&h.d, 0),
        vec![Command::ReserveGxids { upto: 3 + 8 }]
    );
    // At most one reservation in flight.
    assert_eq!(h.l.take_proposals(&h.d, 0), vec![]);
    h.apply(&Command::ReserveGxids { upto: 11 });
    let gs: Vec<u64> = (0..8).map(|_| h.begin(s).0).collect();
    assert_eq!(gs, vec![3, 4, 5, 6, 7, 8, 9, 10]);
    assert!(h.d.gxid_reserved_upto >= 11);
    // Proactive: less than half a block left → a new reservation.
    let mut h2 = Harness::new(small_config());
    h2.apply(&Command::ReserveGxids { upto: 13 });
    let s2 = h2.register();
    for _ in 0..7 {
        h2.begin(s2);
    }
    assert_eq!(h2.l.next_gxid(), Gxid(10));
    assert_eq!(
        h2.l.take_proposals(&h2.d, 0),
        vec![Command::ReserveGxids { upto: 21 }]
    );
}

#[test]
fn new_leader_skips_unissued_reserved_gxids() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    let g1 = h.begin(s);
    assert_eq!(g1, Gxid(3));
    let mark = h.d.gxid_reserved_upto;
    h.failover();
    assert_eq!(h.l.next_gxid(), Gxid(mark));
    h.req(
        Some(s),
        Request::Register {
            session: Some(s),
            open: vec![(g1, Gxid::INVALID)],
        },
    );
    let g2 = h.begin(s);
    assert_eq!(g2, Gxid(mark));
    assert!(g2 > g1);
}

#[test]
fn lost_reservation_is_reproposed() {
    let mut h = Harness::new(small_config());
    let first = h.l.take_proposals(&h.d, 0);
    assert_eq!(first.len(), 1);
    // Never applied (lost proposal): re-proposed after the retry delay only.
    assert_eq!(h.l.take_proposals(&h.d, 100), vec![]);
    assert_eq!(h.l.take_proposals(&h.d, 600), first);
}

// ---------------------------------------------------------------- snapshots and xmin

#[test]
fn snapshots_list_running_and_prepared() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    let a = h.begin(s);
    let b = h.begin(s);
    let c = h.begin(s);
    let snap = h.snapshot(s, Some(b));
    assert_eq!(snap.to_string(), "3:6:3,4,5");
    assert_eq!(h.req(Some(s), Request::Commit { gxid: a }), Response::Ok);
    // Idempotent.
    assert_eq!(h.req(Some(s), Request::Commit { gxid: a }), Response::Ok);
    assert_eq!(
        h.req(Some(s), Request::Abort { gxid: Gxid(999) }),
        Response::Ok
    );
    // b holds xmin 3 even though 3 ended.
    assert_eq!(h.xmin(), Gxid(3));
    let Response::Begun { gxid: d, snapshot } = h.req(Some(s), Request::BeginSnapshot) else {
        panic!()
    };
    assert_eq!(d, Gxid(6));
    assert_eq!(snapshot.to_string(), "4:7:4,5,6");
    assert!(snapshot.is_running(d));
    // Prepare c: it leaves the registry but stays in snapshots.
    let r = h.req(
        Some(s),
        Request::Prepare {
            gxid: c,
            gid: "g1".into(),
            nodes: vec!["dn1".into()],
        },
    );
    assert_eq!(r, Response::Ok);
    assert_eq!(h.l.running_count(), 2);
    assert!(h.snapshot(s, None).xip.contains(&c));
    h.req(Some(s), Request::Commit { gxid: b });
    h.req(Some(s), Request::Commit { gxid: d });
    assert_eq!(h.snapshot(s, None).to_string(), "5:7:5");
    assert_eq!(h.xmin(), c);
    h.req(None, Request::Forget { gid: "g1".into() });
    assert_eq!(h.snapshot(s, None).to_string(), "7:7:");
    assert_eq!(h.xmin(), Gxid(7));
    // A snapshot for a transaction that is not running is refused.
    let e = err_of(h.req(Some(s), Request::Snapshot { gxid: Some(b) }));
    assert_eq!(e.code, SqlState::ObjectNotInPrerequisiteState);
}

#[test]
fn begin_needs_a_live_session() {
    let mut h = Harness::new(small_config());
    assert_eq!(
        err_of(h.req(None, Request::Begin)).code,
        SqlState::ProtocolViolation
    );
    assert_err(
        h.req(Some(42), Request::Begin),
        SqlState::ConnectionFailure,
        "GTM session 42 expired",
    );
    assert_eq!(
        err_of(h.req(
            None,
            Request::Register {
                session: None,
                open: vec![(Gxid(3), Gxid(3))]
            }
        ))
        .code,
        SqlState::ProtocolViolation
    );
}

// ---------------------------------------------------------------- sessions and recovery

#[test]
fn recovery_waits_for_reregistration() {
    let mut h = Harness::new(small_config());
    let s1 = h.register();
    let s2 = h.register();
    let g1 = h.begin(s1);
    let g2 = h.begin(s2);
    let snap1 = h.snapshot(s1, Some(g1));
    h.failover();
    assert!(h.l.is_recovering());
    assert_eq!(h.l.pending_sessions(), vec![s1, s2]);
    assert_eq!(h.l.running_count(), 0);
    // Nothing served while recovering.
    for req in [
        Request::Begin,
        Request::BeginSnapshot,
        Request::Snapshot { gxid: None },
        Request::GlobalXmin,
    ] {
        assert_eq!(
            h.l.handle(Some(s1), &req, &h.d, h.now),
            Step::Wait,
            "{req:?}"
        );
    }
    // Sequences wait too.
    assert_eq!(
        h.l.handle(
            None,
            &Request::NextVal {
                name: "x".into(),
                count: 1
            },
            &h.d,
            h.now
        ),
        Step::Wait
    );
    // s1 comes back with its open transaction and held snapshot xmin.
    let r = h.req(
        Some(s1),
        Request::Register {
            session: Some(s1),
            open: vec![(g1, snap1.xmin)],
        },
    );
    assert_eq!(r, Response::Registered { session: s1 });
    assert!(h.l.is_recovering());
    // s2 too: recovery ends, snapshots list both.
    h.req(
        Some(s2),
        Request::Register {
            session: Some(s2),
            open: vec![(g2, Gxid::INVALID)],
        },
    );
    assert!(!h.l.is_recovering());
    let snap = h.snapshot(s1, None);
    assert_eq!(snap.xip, vec![g1, g2]);
    assert!(snap.xmax.0 >= h.d.gxid_reserved_upto.min(snap.xmax.0));
    assert_eq!(h.xmin(), g1);
}

/// The re-introduced mistake (issue 7) must be observable: a new leader that does not wait for
/// re-registration serves a snapshot missing a still-running transaction.
#[test]
fn the_stale_snapshot_mistake_drops_running_transactions_after_failover() {
    let mut h = Harness::new(CoreConfig {
        mistakes: Mistakes {
            stale_snapshot_after_leader_change: true,
        },
        ..small_config()
    });
    let s1 = h.register();
    let s2 = h.register();
    let g1 = h.begin(s1);
    assert_eq!(h.snapshot(s2, None).xip, vec![g1]);
    h.failover();
    assert!(!h.l.is_recovering());
    let snap = h.snapshot(s2, None);
    assert!(
        !snap.is_running(g1),
        "the mistake must be observable: {snap:?}"
    );
    // The same failover without the mistake waits for s1 (see recovery_waits_for_reregistration).
    h.cfg.mistakes = Mistakes::default();
    h.failover();
    assert!(h.l.is_recovering());
    assert_eq!(
        h.l.handle(Some(s2), &Request::Snapshot { gxid: None }, &h.d, h.now),
        Step::Wait
    );
}

#[test]
fn recovery_grace_closes_silent_sessions() {
    let mut h = Harness::new(small_config());
    let s1 = h.register();
    let s2 = h.register();
    let g1 = h.begin(s1);
    let _g2 = h.begin(s2);
    h.failover();
    h.req(
        Some(s1),
        Request::Register {
            session: Some(s1),
            open: vec![(g1, Gxid::INVALID)],
        },
    );
    // Before the grace period: nothing closed.
    h.now += 999;
    assert!(!h
        .l
        .take_proposals(&h.d, h.now)
        .contains(&Command::CloseSession { session: s2 }));
    h.now += 1;
    let props = h.l.take_proposals(&h.d, h.now);
    assert!(
        props.contains(&Command::CloseSession { session: s2 }),
        "{props:?}"
    );
    // Lost once: re-proposed after the retry delay.
    assert!(!h
        .l
        .take_proposals(&h.d, h.now)
        .contains(&Command::CloseSession { session: s2 }));
    h.now += 500;
    let props = h.l.take_proposals(&h.d, h.now);
    assert!(props.contains(&Command::CloseSession { session: s2 }));
    h.apply(&Command::CloseSession { session: s2 });
    assert!(!h.l.is_recovering());
    assert!(!h.d.sessions.contains(&s2));
    assert_eq!(h.snapshot(s1, None).xip, vec![g1]);
    // s2 comes back too late.
    assert_err(
        h.req(
            Some(s2),
            Request::Register {
                session: Some(s2),
                open: vec![],
            },
        ),
        SqlState::ConnectionFailure,
        &format!("GTM session {s2} expired"),
    );
    assert_eq!(
        err_of(h.req(Some(s2), Request::Begin)).code,
        SqlState::ConnectionFailure
    );
    // A new session gets a new id, never a reused one.
    assert_eq!(h.register(), 3);
}

#[test]
fn reregistration_validates_gxids() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    h.begin(s);
    let mark = h.d.gxid_reserved_upto;
    h.failover();
    let e = err_of(h.req(
        Some(s),
        Request::Register {
            session: Some(s),
            open: vec![(Gxid(mark), Gxid::INVALID)],
        },
    ));
    assert_eq!(e.code, SqlState::InternalError);
    assert!(h.l.is_recovering());
    let e = err_of(h.req(
        Some(s),
        Request::Register {
            session: Some(s),
            open: vec![(Gxid(1), Gxid::INVALID)],
        },
    ));
    assert_eq!(e.code, SqlState::InternalError);
}

#[test]
fn idle_sessions_time_out_and_lose_their_transactions() {
    let mut h = Harness::new(small_config());
    let s1 = h.register();
    let s2 = h.register();
    let g1 = h.begin(s1);
    let g2 = h.begin(s2);
    let g3 = h.begin(s2);
    h.req(
        Some(s2),
        Request::Prepare {
            gxid: g3,
            gid: "p".into(),
            nodes: vec![],
        },
    );
    h.now += 4_000;
    assert_eq!(h.req(Some(s1), Request::KeepAlive), Response::Ok);
    h.now += 1_000;
    let props = h.l.take_proposals(&h.d, h.now);
    assert_eq!(props, vec![Command::CloseSession { session: s2 }]);
    // While its close is in flight the session counts as expired.
    assert_eq!(
        err_of(h.req(Some(s2), Request::Begin)).code,
        SqlState::ConnectionFailure
    );
    h.apply(&props[0]);
    // g2 dropped; the prepared g3 survives the session.
    assert_eq!(h.snapshot(s1, None).xip, vec![g1, g3]);
    assert_eq!(h.xmin(), g1);
    h.req(Some(s1), Request::Commit { gxid: g1 });
    assert_eq!(h.xmin(), g3);
    let _ = g2;
    assert_eq!(
        h.req(Some(s2), Request::KeepAlive),
        Response::Error(session_expired_err(s2))
    );
}

fn session_expired_err(s: u64) -> PgError {
    PgError::new(
        SqlState::ConnectionFailure,
        format!("GTM session {s} expired"),
    )
}

#[test]
fn prepare_racing_session_close_is_refused() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    let g = h.begin(s);
    let Step::Propose(prep) = h.l.handle(
        Some(s),
        &Request::Prepare {
            gxid: g,
            gid: "x".into(),
            nodes: vec![],
        },
        &h.d,
        0,
    ) else {
        panic!()
    };
    h.apply(&Command::CloseSession { session: s });
    assert_eq!(
        h.d.apply(&prep),
        CommandResult::Error(session_expired_err(s))
    );
    assert!(h.d.prepared.is_empty());
}

// ---------------------------------------------------------------- two-phase records

#[test]
fn two_phase_records() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    let g = h.begin(s);
    let g2 = h.begin(s);
    let prep = |g: Gxid, gid: &str| Request::Prepare {
        gxid: g,
        gid: gid.into(),
        nodes: vec!["dn1".into(), "dn2".into()],
    };
    assert_eq!(h.req(Some(s), prep(g, "t1")), Response::Ok);
    // Retried prepare of the same gxid/gid is fine; another transaction cannot reuse the gid.
    assert_eq!(h.req(Some(s), prep(g, "t1")), Response::Ok);
    assert_err(
        h.req(Some(s), prep(g2, "t1")),
        SqlState::DuplicateObject,
        "transaction identifier \"t1\" is already in use",
    );
    assert_err(
        h.req(
            None,
            Request::Decide {
                gid: "nope".into(),
                commit: true,
            },
        ),
        SqlState::UndefinedObject,
        "prepared transaction with identifier \"nope\" does not exist",
    );
    assert_eq!(
        h.req(
            None,
            Request::Decide {
                gid: "t1".into(),
                commit: true
            }
        ),
        Response::Ok
    );
    assert_eq!(
        h.req(
            None,
            Request::Decide {
                gid: "t1".into(),
                commit: true
            }
        ),
        Response::Ok
    );
    assert_eq!(
        err_of(h.req(
            None,
            Request::Decide {
                gid: "t1".into(),
                commit: false
            }
        ))
        .code,
        SqlState::InternalError
    );
    let expected = vec![PreparedTxn {
        gxid: g,
        gid: "t1".into(),
        nodes: vec!["dn1".into(), "dn2".into()],
        decision: Some(true),
    }];
    assert_eq!(
        h.req(None, Request::ListPrepared),
        Response::Prepared(expected.clone())
    );
    // Survives a leader change and the session's death.
    h.apply(&Command::CloseSession { session: s });
    h.failover();
    assert!(!h.l.is_recovering());
    assert_eq!(
        h.req(None, Request::ListPrepared),
        Response::Prepared(expected)
    );
    let s2 = h.register();
    assert!(h.snapshot(s2, None).xip.contains(&g));
    assert_eq!(
        h.req(None, Request::Forget { gid: "t1".into() }),
        Response::Ok
    );
    assert_eq!(
        h.req(None, Request::Forget { gid: "t1".into() }),
        Response::Ok
    );
    assert_eq!(
        h.req(None, Request::ListPrepared),
        Response::Prepared(vec![])
    );
    assert!(!h.snapshot(s2, None).xip.contains(&g));
    // A transaction not running cannot be prepared.
    assert_eq!(
        err_of(h.req(Some(s2), prep(Gxid(4), "t2"))).code,
        SqlState::ObjectNotInPrerequisiteState
    );
}

use crate::proto::PreparedTxn;

// ---------------------------------------------------------------- barriers

#[test]
fn barriers() {
    let mut h = Harness::new(small_config());
    let b = |h: &mut Harness, id: Option<&str>| {
        h.req(
            None,
            Request::CreateBarrier {
                id: id.map(String::from),
            },
        )
    };
    assert_eq!(b(&mut h, None), Response::Barrier("barrier_0001".into()));
    assert_eq!(
        b(&mut h, Some("barrier_0003")),
        Response::Barrier("barrier_0003".into())
    );
    // The counter is 2 after the user's id; generated ids skip used ones.
    assert_eq!(b(&mut h, None), Response::Barrier("barrier_0004".into()));
    assert_err(
        b(&mut h, Some("barrier_0001")),
        SqlState::DuplicateObject,
        "barrier \"barrier_0001\" already exists",
    );
    assert_eq!(h.d.barrier_counter, 4);
}

// ---------------------------------------------------------------- sequences

#[test]
fn sequence_defaults_match_postgres() {
    let mut h = Harness::new(small_config());
    assert_eq!(h.create_seq("s", opts()), Response::Ok);
    let i = h.info("s");
    assert_eq!(
        (
            i.data_type,
            i.start,
            i.min_value,
            i.max_value,
            i.increment,
            i.cycle,
            i.cache,
            i.last_value,
            i.is_called
        ),
        (SeqType::BigInt, 1, 1, i64::MAX, 1, false, 1, 1, false)
    );
    h.create_seq(
        "d",
        SeqOptions {
            increment: Some(-1),
            ..opts()
        },
    );
    let i = h.info("d");
    assert_eq!((i.start, i.min_value, i.max_value), (-1, i64::MIN, -1));
    h.create_seq(
        "i",
        SeqOptions {
            data_type: Some(SeqType::Integer),
            ..opts()
        },
    );
    assert_eq!(h.info("i").max_value, i32::MAX as i64);
    h.create_seq(
        "sd",
        SeqOptions {
            data_type: Some(SeqType::SmallInt),
            increment: Some(-3),
            ..opts()
        },
    );
    let i = h.info("sd");
    assert_eq!((i.start, i.min_value, i.max_value), (-1, -32768, -1));
    assert_eq!(h.nextvals("s", 3), vec![1, 2, 3]);
    assert_eq!(h.nextvals("sd", 3), vec![-1, -4, -7]);
}

#[test]
fn sequence_option_errors_match_postgres() {
    let mut h = Harness::new(small_config());
    let cases: Vec<(SeqOptions, SqlState, &str)> = vec![
        (
            SeqOptions {
                increment: Some(0),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "INCREMENT must not be zero",
        ),
        (
            SeqOptions {
                min_value: Some(Some(10)),
                max_value: Some(Some(5)),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "MINVALUE (10) must be less than MAXVALUE (5)",
        ),
        (
            SeqOptions {
                start: Some(0),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "START value (0) cannot be less than MINVALUE (1)",
        ),
        (
            SeqOptions {
                start: Some(11),
                max_value: Some(Some(10)),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "START value (11) cannot be greater than MAXVALUE (10)",
        ),
        (
            SeqOptions {
                data_type: Some(SeqType::SmallInt),
                max_value: Some(Some(40000)),
                ..opts()
            },
            SqlState::NumericValueOutOfRange,
            "MAXVALUE (40000) is out of range for sequence data type smallint",
        ),
        (
            SeqOptions {
                data_type: Some(SeqType::Integer),
                min_value: Some(Some(-3_000_000_000)),
                ..opts()
            },
            SqlState::NumericValueOutOfRange,
            "MINVALUE (-3000000000) is out of range for sequence data type integer",
        ),
        (
            SeqOptions {
                cache: Some(0),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "CACHE (0) must be greater than zero",
        ),
        // Descending with MINVALUE above the default MAXVALUE -1.
        (
            SeqOptions {
                increment: Some(-1),
                min_value: Some(Some(5)),
                ..opts()
            },
            SqlState::InvalidParameterValue,
            "MINVALUE (5) must be less than MAXVALUE (-1)",
        ),
    ];
    for (o, code, msg) in cases {
        assert_err(h.create_seq("bad", o.clone()), code, msg);
        assert!(!h.d.sequences.contains_key("bad"), "{o:?}");
    }
    h.create_seq("s", opts());
    assert_err(
        h.create_seq("s", opts()),
        SqlState::DuplicateTable,
        "relation \"s\" already exists",
    );
    let r = h.req(
        None,
        Request::CreateSequence {
            name: "s".into(),
            options: opts(),
            if_not_exists: true,
        },
    );
    assert_eq!(r, Response::Ok);
    assert_err(
        h.nextval("nope", 1)
            .map(|_| Response::Ok)
            .unwrap_or_else(Response::Error),
        SqlState::UndefinedTable,
        "relation \"nope\" does not exist",
    );
    let alter = |name: &str, o: SeqOptions, if_exists: bool| Request::AlterSequence {
        name: name.into(),
        options: o,
        if_exists,
    };
    assert_err(
        h.req(None, alter("nope", opts(), false)),
        SqlState::UndefinedTable,
        "relation \"nope\" does not exist",
    );
    assert_eq!(h.req(None, alter("nope", opts(), true)), Response::Ok);
    assert_eq!(h.nextvals("s", 5), vec![1, 2, 3, 4, 5]);
    // Lowering MAXVALUE below the current position (the reserved block reaches 5) is refused like RESTART.
    assert_err(
        h.req(
            None,
            alter(
                "s",
                SeqOptions {
                    max_value: Some(Some(3)),
                    ..opts()
                },
                false,
            ),
        ),
        SqlState::InvalidParameterValue,
        &format!(
            "RESTART value ({}) cannot be greater than MAXVALUE (3)",
            h.info("s").last_value
        ),
    );
    assert_err(
        h.req(
            None,
            alter(
                "s",
                SeqOptions {
                    restart: Some(Some(0)),
                    ..opts()
                },
                false,
            ),
        ),
        SqlState::InvalidParameterValue,
        "RESTART value (0) cannot be less than MINVALUE (1)",
    );
    assert_eq!(
        h.req(
            None,
            Request::DropSequence {
                name: "nope".into(),
                if_exists: true
            }
        ),
        Response::Ok
    );
    assert_err(
        h.req(
            None,
            Request::DropSequence {
                name: "nope".into(),
                if_exists: false,
            },
        ),
        SqlState::UndefinedTable,
        "relation \"nope\" does not exist",
    );
}

#[test]
fn sequence_cycle_descending() {
    // CREATE SEQUENCE s INCREMENT -2 MINVALUE -5 MAXVALUE 5 CYCLE; nextval x8 → 5,3,1,-1,-3,-5,5,3
    let mut h = Harness::new(small_config());
    let o = SeqOptions {
        increment: Some(-2),
        min_value: Some(Some(-5)),
        max_value: Some(Some(5)),
        cycle: Some(true),
        ..opts()
    };
    h.create_seq("s", o);
    assert_eq!(
        h.nextvals("s", 14),
        vec![5, 3, 1, -1, -3, -5, 5, 3, 1, -1, -3, -5, 5, 3]
    );
    // Ascending cycle wraps to MINVALUE, not START.
    h.create_seq(
        "a",
        SeqOptions {
            min_value: Some(Some(1)),
            max_value: Some(Some(3)),
            start: Some(2),
            cycle: Some(true),
            ..opts()
        },
    );
    assert_eq!(h.nextvals("a", 6), vec![2, 3, 1, 2, 3, 1]);
    // A multi-value fetch stops at the bound (a block never crosses the wrap).
    h.create_seq(
        "b",
        SeqOptions {
            max_value: Some(Some(5)),
            cycle: Some(true),
            ..opts()
        },
    );
    assert_eq!(h.nextval("b", 3).unwrap(), vec![1, 2, 3]);
    assert_eq!(h.nextval("b", 3).unwrap(), vec![4, 5]);
    assert_eq!(h.nextval("b", 3).unwrap(), vec![1, 2, 3]);
}

#[test]
fn sequence_limits_and_setval() {
    let mut h = Harness::new(small_config());
    h.create_seq(
        "s",
        SeqOptions {
            max_value: Some(Some(10)),
            ..opts()
        },
    );
    assert_eq!(h.nextvals("s", 10), (1..=10).collect::<Vec<_>>());
    assert_err(
        h.nextval("s", 1)
            .map(|_| Response::Ok)
            .unwrap_or_else(Response::Error),
        SqlState::SequenceGeneratorLimitExceeded,
        "nextval: reached maximum value of sequence \"s\" (10)",
    );
    let setval = |v: i64, c: bool| Request::SetVal {
        name: "s".into(),
        value: v,
        is_called: c,
    };
    assert_err(
        h.req(None, setval(0, true)),
        SqlState::NumericValueOutOfRange,
        "setval: value 0 is out of bounds for sequence \"s\" (1..10)",
    );
    assert_err(
        h.req(None, setval(11, true)),
        SqlState::NumericValueOutOfRange,
        "setval: value 11 is out of bounds for sequence \"s\" (1..10)",
    );
    assert_eq!(h.req(None, setval(4, true)), Response::Value(4));
    assert_eq!(h.nextvals("s", 2), vec![5, 6]);
    assert_eq!(h.req(None, setval(4, false)), Response::Value(4));
    let i = h.info("s");
    assert_eq!((i.last_value, i.is_called), (4, false));
    assert_eq!(h.nextvals("s", 2), vec![4, 5]);
    // setval(max, true): exhausted again.
    h.req(None, setval(10, true));
    assert!(h.nextval("s", 1).is_err());

    h.create_seq(
        "d",
        SeqOptions {
            increment: Some(-1),
            min_value: Some(Some(-2)),
            ..opts()
        },
    );
    assert_eq!(h.nextvals("d", 2), vec![-1, -2]);
    assert_err(
        h.nextval("d", 1)
            .map(|_| Response::Ok)
            .unwrap_or_else(Response::Error),
        SqlState::SequenceGeneratorLimitExceeded,
        "nextval: reached minimum value of sequence \"d\" (-2)",
    );
    // Near i64::MAX without overflow.
    h.create_seq(
        "big",
        SeqOptions {
            start: Some(i64::MAX - 1),
            ..opts()
        },
    );
    assert_eq!(h.nextval("big", 5).unwrap(), vec![i64::MAX - 1, i64::MAX]);
    assert_eq!(
        err_of(h.req(
            None,
            Request::NextVal {
                name: "big".into(),
                count: 1
            }
        ))
        .code,
        SqlState::SequenceGeneratorLimitExceeded
    );
}

#[test]
fn sequence_alter_restart_type_and_rename() {
    let mut h = Harness::new(small_config());
    h.create_seq("s", opts());
    assert_eq!(h.nextvals("s", 3), vec![1, 2, 3]);
    // RESTART (no value) goes back to START; ALTER START alone does not move the sequence.
    let alter = |o: SeqOptions| Request::AlterSequence {
        name: "s".into(),
        options: o,
        if_exists: false,
    };
    h.req(
        None,
        alter(SeqOptions {
            start: Some(100),
            ..opts()
        }),
    );
    let next = h.nextvals("s", 1)[0];
    assert!((4..100).contains(&next), "{next}");
    h.req(
        None,
        alter(SeqOptions {
            restart: Some(None),
            ..opts()
        }),
    );
    assert_eq!(h.nextvals("s", 2), vec![100, 101]);
    h.req(
        None,
        alter(SeqOptions {
            restart: Some(Some(7)),
            increment: Some(5),
            ..opts()
        }),
    );
    assert_eq!(h.nextvals("s", 3), vec![7, 12, 17]);
    // AS smallint resets a default MAXVALUE to the new type's.
    h.req(
        None,
        alter(SeqOptions {
            data_type: Some(SeqType::SmallInt),
            ..opts()
        }),
    );
    let i = h.info("s");
    assert_eq!(
        (i.data_type, i.min_value, i.max_value),
        (SeqType::SmallInt, 1, 32767)
    );
    // NO MAXVALUE on an ascending sequence: the type maximum.
    h.req(
        None,
        alter(SeqOptions {
            max_value: Some(Some(1000)),
            ..opts()
        }),
    );
    assert_eq!(h.info("s").max_value, 1000);
    h.req(
        None,
        alter(SeqOptions {
            max_value: Some(None),
            ..opts()
        }),
    );
    assert_eq!(h.info("s").max_value, 32767);
    // A non-default MAXVALUE out of the new type's range is an error.
    h.create_seq(
        "t",
        SeqOptions {
            max_value: Some(Some(100_000)),
            ..opts()
        },
    );
    assert_err(
        h.req(
            None,
            Request::AlterSequence {
                name: "t".into(),
                options: SeqOptions {
                    data_type: Some(SeqType::SmallInt),
                    ..opts()
                },
                if_exists: false,
            },
        ),
        SqlState::NumericValueOutOfRange,
        "MAXVALUE (100000) is out of range for sequence data type smallint",
    );
    // RENAME keeps the position.
    let before = h.info("s").last_value;
    assert_err(
        h.req(
            None,
            Request::RenameSequence {
                from: "s".into(),
                to: "t".into(),
            },
        ),
        SqlState::DuplicateTable,
        "relation \"t\" already exists",
    );
    assert_eq!(
        h.req(
            None,
            Request::RenameSequence {
                from: "s".into(),
                to: "u".into()
            }
        ),
        Response::Ok
    );
    assert_err(
        h.req(None, Request::GetSequence { name: "s".into() }),
        SqlState::UndefinedTable,
        "relation \"s\" does not exist",
    );
    assert_eq!(h.info("u").last_value, before);
    assert!(h.nextvals("u", 1)[0] > 17);
}

#[test]
fn sequence_blocks_are_durable_and_cached() {
    let mut h = Harness::new(small_config()); // seq_block 4
    h.create_seq(
        "s",
        SeqOptions {
            cache: Some(10),
            ..opts()
        },
    );
    assert_eq!(h.info("s").cache, 10);
    assert_eq!(h.nextval("s", 1).unwrap(), vec![1]);
    // A block of 4 was reserved durably: PostgreSQL's on-disk last_value includes cached values.
    let i = h.info("s");
    assert_eq!((i.last_value, i.is_called), (4, true));
    // Served from the cache without a Raft write.
    assert_eq!(
        h.l.handle(
            None,
            &Request::NextVal {
                name: "s".into(),
                count: 2
            },
            &h.d,
            0
        ),
        Step::Reply(Response::Values(vec![2, 3]))
    );
    // Only one value cached but 3 wanted: wait for a background refill, then get contiguous values.
    assert_eq!(
        h.l.handle(
            None,
            &Request::NextVal {
                name: "s".into(),
                count: 3
            },
            &h.d,
            0
        ),
        Step::Wait
    );
    assert_eq!(h.nextval("s", 3).unwrap(), vec![4, 5, 6]);
    // A session CACHE 10 fetch.
    assert_eq!(h.nextval("s", 10).unwrap(), (7..=16).collect::<Vec<_>>());
    // Leader change: cached values are lost (a gap), never reissued.
    let last = h.info("s").last_value;
    h.failover();
    let v = h.nextval("s", 1).unwrap()[0];
    assert_eq!(v, last + 1);
    // setval invalidates the cache.
    h.nextval("s", 1).unwrap();
    h.req(
        None,
        Request::SetVal {
            name: "s".into(),
            value: 1000,
            is_called: false,
        },
    );
    assert_eq!(h.nextval("s", 1).unwrap(), vec![1000]);
    // DROP + CREATE: a fresh sequence, no stale cache.
    h.req(
        None,
        Request::DropSequence {
            name: "s".into(),
            if_exists: false,
        },
    );
    h.create_seq("s", opts());
    assert_eq!(h.nextval("s", 1).unwrap(), vec![1]);
}

#[test]
fn stale_seq_block_is_not_cached() {
    let mut h = Harness::new(small_config());
    h.create_seq("s", opts());
    let cmd = Command::ReserveSequence {
        name: "s".into(),
        count: 4,
        claim: 0,
    };
    let r = h.d.apply(&cmd);
    assert_eq!(r.seq_values(), vec![1, 2, 3, 4]);
    // ALTER applies before the leader hears of the block.
    h.apply(&Command::AlterSequence {
        name: "s".into(),
        options: SeqOptions {
            restart: Some(Some(50)),
            ..opts()
        },
        if_exists: false,
    });
    h.l.on_applied(&cmd, &r, &h.d);
    assert_eq!(h.nextval("s", 1).unwrap(), vec![50]);
}

#[test]
fn durable_state_roundtrips_and_is_deterministic() {
    let mut h = Harness::new(small_config());
    let s = h.register();
    h.begin(s);
    h.create_seq("s", opts());
    h.nextval("s", 1).unwrap();
    h.req(None, Request::CreateBarrier { id: None });
    let bytes = postcard::to_allocvec(&h.d).unwrap();
    let back: DurableState = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, h.d);
}

#[test]
fn status_and_admin() {
    let mut h = Harness::new(small_config());
    let Response::Status(st) = h.req(None, Request::Status) else {
        panic!()
    };
    assert_eq!((st.next_gxid, st.running, st.recovering), (3, 0, false));
    let e = err_of(h.req(None, Request::Admin(crate::proto::AdminRequest::Promote)));
    assert_eq!(e.code, SqlState::FeatureNotSupported);
}

#[test]
fn sequence_cache_per_session_like_postgres() {
    // CREATE SEQUENCE s CACHE 3; two sessions each fetch their CACHE: PostgreSQL gives session A 1..3 (it
    // returns 1, then 2, 3 from its cache) and session B 4..6; session A's next fetch is 7..9.
    let mut h = Harness::new(small_config());
    h.create_seq(
        "s",
        SeqOptions {
            cache: Some(3),
            ..opts()
        },
    );
    let cache = h.info("s").cache as u64;
    assert_eq!(h.nextval("s", cache).unwrap(), vec![1, 2, 3]);
    assert_eq!(h.nextval("s", cache).unwrap(), vec![4, 5, 6]);
    assert_eq!(h.nextval("s", cache).unwrap(), vec![7, 8, 9]);
    // A count of 0 is treated as 1.
    assert_eq!(h.nextval("s", 0).unwrap(), vec![10]);
}

#[test]
fn concurrent_nextvals_share_one_reservation_in_request_order() {
    // Found by the GTM chaos simulation: two nextvals arriving while the cache was empty each reserved a block
    // of their own, so a later request could get a value from the higher block while the lower one was still
    // being served (1001, then 2, 3, ...). Now the second waits for the first reservation.
    let mut h = Harness::new(small_config());
    h.create_seq("s", opts());
    let req = Request::NextVal {
        name: "s".into(),
        count: 1,
    };
    let Step::Propose(first) = h.l.handle(None, &req, &h.d, h.now) else {
        panic!("first nextval on an empty cache must reserve");
    };
    assert_eq!(h.l.handle(None, &req, &h.d, h.now), Step::Wait);
    let r = h.apply(&first);
    assert_eq!(h.l.reply_for(&req, &first, &r), Response::Values(vec![1]));
    assert_eq!(h.nextval("s", 1).unwrap(), vec![2]);
    assert_eq!(h.nextvals("s", 4), vec![3, 4, 5, 6]);
}
