//! Property test: random interleavings of requests from several sessions, random leader changes (a new
//! [`LeaderState`] from a copy of the durable state; some sessions re-register at once, some late, some never)
//! and random lost proposals, checked against a simple model:
//!
//! - no GXID is issued twice, and GXIDs are strictly increasing in issue order;
//! - no value of a non-cycling sequence is issued twice (and they increase);
//! - every snapshot is well formed (`Snapshot::check`) and lists every transaction the model considers running
//!   (begun or re-registered and not ended, or prepared and not forgotten);
//! - the global xmin is <= every running GXID and every snapshot xmin a running transaction holds.

use super::tests::{small_config, Harness};
use super::*;
use crate::proto::Request;
use pgxc_common::{Gxid, Snapshot, SqlState};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CLIENTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Begin(usize, bool),
    Snapshot(usize, usize, bool),
    End(usize, usize, bool),
    Prepare(usize, usize),
    Decide(usize, bool),
    Forget(usize),
    GlobalXmin,
    NextVal(bool, u64),
    KeepAlive(usize),
    Advance(u64),
    Tick,
    FailNext,
    LeaderChange([bool; CLIENTS]),
    ReRegister(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    prop_oneof![
        2 => c.clone().prop_map(Op::Register),
        6 => (c.clone(), any::<bool>()).prop_map(|(c, s)| Op::Begin(c, s)),
        4 => (c.clone(), 0..4usize, any::<bool>()).prop_map(|(c, i, g)| Op::Snapshot(c, i, g)),
        4 => (c.clone(), 0..4usize, any::<bool>()).prop_map(|(c, i, k)| Op::End(c, i, k)),
        2 => (c.clone(), 0..4usize).prop_map(|(c, i)| Op::Prepare(c, i)),
        1 => (0..4usize, any::<bool>()).prop_map(|(i, k)| Op::Decide(i, k)),
        1 => (0..4usize).prop_map(Op::Forget),
        2 => Just(Op::GlobalXmin),
        3 => (any::<bool>(), 1..6u64).prop_map(|(cy, n)| Op::NextVal(cy, n)),
        2 => c.clone().prop_map(Op::KeepAlive),
        2 => (0..3_000u64).prop_map(Op::Advance),
        2 => Just(Op::Tick),
        2 => Just(Op::FailNext),
        1 => any::<[bool; CLIENTS]>().prop_map(Op::LeaderChange),
        2 => c.prop_map(Op::ReRegister),
    ]
}

#[derive(Clone, Debug, Default)]
struct Client {
    session: Option<u64>,
    /// Open transactions with the xmin of the oldest snapshot each holds (INVALID if none).
    open: Vec<(Gxid, Gxid)>,
    /// A leader change happened and this client has not re-registered yet.
    needs_rereg: bool,
}

struct Sim {
    h: Harness,
    clients: Vec<Client>,
    prepared: BTreeMap<String, (Gxid, Option<bool>)>,
    fail_next: bool,
    last_gxid: Gxid,
    seq_values: Vec<i64>,
    gid_counter: u64,
}

impl Sim {
    fn new() -> Sim {
        let mut h = Harness::new(small_config());
        h.create_seq("s", SeqOptions::default());
        let cyc = SeqOptions {
            min_value: Some(Some(1)),
            max_value: Some(Some(7)),
            increment: Some(2),
            cycle: Some(true),
            ..Default::default()
        };
        h.create_seq("c", cyc);
        Sim {
            h,
            clients: vec![Client::default(); CLIENTS],
            prepared: BTreeMap::new(),
            fail_next: false,
            last_gxid: Gxid::INVALID,
            seq_values: Vec::new(),
            gid_counter: 0,
        }
    }

    /// Propose `cmd`: lost if a failure is armed, else applied and reported.
    fn propose(&mut self, cmd: &Command) -> Option<CommandResult> {
        if std::mem::take(&mut self.fail_next) {
            return None;
        }
        let r = self.h.apply(cmd);
        self.sync();
        Some(r)
    }

    /// Clients whose session was closed lose their open transactions.
    fn sync(&mut self) {
        for c in &mut self.clients {
            if let Some(s) = c.session {
                if !self.h.d.sessions.contains(&s) {
                    *c = Client::default();
                }
            }
        }
    }

    fn tick(&mut self) {
        let now = self.h.now;
        for cmd in self.h.l.take_proposals(&self.h.d, now) {
            self.propose(&cmd);
        }
    }

    fn run(&mut self, s: Option<u64>, req: &Request) -> Option<Response> {
        for _ in 0..8 {
            let now = self.h.now;
            match self.h.l.handle(s, req, &self.h.d, now) {
                Step::Reply(r) => return Some(r),
                Step::Propose(cmd) => {
                    let r = self.propose(&cmd)?;
                    return Some(self.h.l.reply_for(req, &cmd, &r));
                }
                Step::Wait => {
                    self.tick();
                    self.h.now += 200;
                }
            }
        }
        None
    }

    /// Every transaction the model considers running, with the snapshot xmin it holds.
    fn model_running(&self) -> Vec<(Gxid, Gxid)> {
        let mut v: Vec<(Gxid, Gxid)> = self
            .clients
            .iter()
            .flat_map(|c| c.open.iter().copied())
            .collect();
        v.extend(self.prepared.values().map(|(g, _)| (*g, Gxid::INVALID)));
        v
    }

    fn check_snapshot(&self, snap: &Snapshot) {
        snap.check().unwrap();
        assert!(
            snap.xmax > self.last_gxid,
            "xmax {} <= issued {}",
            snap.xmax,
            self.last_gxid
        );
        for (g, _) in self.model_running() {
            assert!(snap.is_running(g), "snapshot {snap} misses running {g}");
        }
    }

    fn issued(&mut self, g: Gxid) {
        assert!(
            g > self.last_gxid,
            "GXID {g} issued after {}",
            self.last_gxid
        );
        assert!(g.0 < self.h.d.gxid_reserved_upto);
        self.last_gxid = g;
    }

    fn active(&self, c: usize) -> Option<u64> {
        let cl = &self.clients[c];
        if cl.needs_rereg {
            None
        } else {
            cl.session
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Register(c) => {
                if self.clients[c].session.is_none() {
                    match self.run(
                        None,
                        &Request::Register {
                            session: None,
                            open: vec![],
                        },
                    ) {
                        Some(Response::Registered { session }) => {
                            assert!(self.h.d.sessions.contains(&session));
                            self.clients[c] = Client {
                                session: Some(session),
                                ..Default::default()
                            };
                        }
                        None => {}
                        r => panic!("{r:?}"),
                    }
                }
            }
            Op::Begin(c, with_snap) => {
                let Some(s) = self.active(c) else { return };
                let req = if with_snap {
                    Request::BeginSnapshot
                } else {
                    Request::Begin
                };
                match self.run(Some(s), &req) {
                    Some(Response::Gxid(g)) => {
                        self.issued(g);
                        self.clients[c].open.push((g, Gxid::INVALID));
                    }
                    Some(Response::Begun { gxid, snapshot }) => {
                        self.issued(gxid);
                        self.clients[c].open.push((gxid, snapshot.xmin));
                        self.check_snapshot(&snapshot);
                    }
                    Some(Response::Error(e)) => {
                        assert_eq!(e.code, SqlState::ConnectionFailure, "{e}")
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::Snapshot(c, i, with_gxid) => {
                let Some(s) = self.active(c) else { return };
                let target = if with_gxid && !self.clients[c].open.is_empty() {
                    Some(i % self.clients[c].open.len())
                } else {
                    None
                };
                let gxid = target.map(|i| self.clients[c].open[i].0);
                match self.run(Some(s), &Request::Snapshot { gxid }) {
                    Some(Response::Snapshot(snap)) => {
                        self.check_snapshot(&snap);
                        if let Some(i) = target {
                            let held = &mut self.clients[c].open[i].1;
                            if !held.is_valid() || snap.xmin < *held {
                                *held = snap.xmin;
                            }
                        }
                    }
                    Some(Response::Error(e)) => {
                        assert_eq!(e.code, SqlState::ConnectionFailure, "{e}")
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::End(c, i, commit) => {
                let Some(s) = self.active(c) else { return };
                if self.clients[c].open.is_empty() {
                    return;
                }
                let i = i % self.clients[c].open.len();
                let g = self.clients[c].open[i].0;
                let req = if commit {
                    Request::Commit { gxid: g }
                } else {
                    Request::Abort { gxid: g }
                };
                assert_eq!(self.run(Some(s), &req), Some(Response::Ok));
                self.clients[c].open.remove(i);
            }
            Op::Prepare(c, i) => {
                let Some(s) = self.active(c) else { return };
                if self.clients[c].open.is_empty() {
                    return;
                }
                let i = i % self.clients[c].open.len();
                let g = self.clients[c].open[i].0;
                self.gid_counter += 1;
                let gid = format!("gid{}", self.gid_counter);
                match self.run(
                    Some(s),
                    &Request::Prepare {
                        gxid: g,
                        gid: gid.clone(),
                        nodes: vec!["dn".into()],
                    },
                ) {
                    Some(Response::Ok) => {
                        self.clients[c].open.remove(i);
                        self.prepared.insert(gid, (g, None));
                    }
                    Some(Response::Error(e)) => {
                        assert_eq!(e.code, SqlState::ConnectionFailure, "{e}")
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::Decide(i, commit) => {
                let Some((gid, (_, decision))) =
                    self.prepared.iter().nth(i % self.prepared.len().max(1))
                else {
                    return;
                };
                let (gid, decision) = (gid.clone(), *decision);
                match self.run(
                    None,
                    &Request::Decide {
                        gid: gid.clone(),
                        commit,
                    },
                ) {
                    Some(Response::Ok) => {
                        assert!(decision.is_none_or(|d| d == commit));
                        self.prepared.get_mut(&gid).unwrap().1 = Some(commit);
                    }
                    Some(Response::Error(e)) => {
                        assert_eq!(e.code, SqlState::InternalError);
                        assert_eq!(decision, Some(!commit));
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::Forget(i) => {
                let Some(gid) = self
                    .prepared
                    .keys()
                    .nth(i % self.prepared.len().max(1))
                    .cloned()
                else {
                    return;
                };
                match self.run(None, &Request::Forget { gid: gid.clone() }) {
                    Some(Response::Ok) => {
                        self.prepared.remove(&gid);
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::GlobalXmin => match self.run(None, &Request::GlobalXmin) {
                Some(Response::Gxid(x)) => {
                    for (g, held) in self.model_running() {
                        assert!(x <= g, "global xmin {x} > running {g}");
                        assert!(
                            !held.is_valid() || x <= held,
                            "global xmin {x} > held xmin {held}"
                        );
                    }
                    assert!(x <= self.h.l.next_gxid());
                }
                None => {}
                r => panic!("{r:?}"),
            },
            Op::NextVal(cyc, count) => {
                let name = if cyc { "c" } else { "s" };
                match self.run(
                    None,
                    &Request::NextVal {
                        name: name.into(),
                        count,
                    },
                ) {
                    Some(Response::Values(v)) => {
                        assert!(!v.is_empty() && v.len() as u64 <= count, "{v:?}");
                        if cyc {
                            assert!(v.iter().all(|x| [1, 3, 5, 7].contains(x)), "{v:?}");
                            assert!(v.windows(2).all(|w| w[1] == w[0] + 2), "{v:?}");
                        } else {
                            assert_eq!(
                                v.len() as u64,
                                count,
                                "a non-cycling sequence far from its bound"
                            );
                            for x in v {
                                assert!(
                                    self.seq_values.last().is_none_or(|l| x > *l),
                                    "{x} after {:?}",
                                    self.seq_values.last()
                                );
                                self.seq_values.push(x);
                            }
                        }
                    }
                    None => {}
                    r => panic!("{r:?}"),
                }
            }
            Op::KeepAlive(c) => {
                if let Some(s) = self.active(c) {
                    match self.run(Some(s), &Request::KeepAlive) {
                        Some(Response::Ok) => {}
                        Some(Response::Error(e)) => assert_eq!(e.code, SqlState::ConnectionFailure),
                        r => panic!("{r:?}"),
                    }
                }
            }
            Op::Advance(ms) => self.h.now += ms,
            Op::Tick => self.tick(),
            Op::FailNext => self.fail_next = true,
            Op::LeaderChange(returns) => {
                self.h.failover();
                for (c, back) in returns.into_iter().enumerate() {
                    if self.clients[c].session.is_some() {
                        self.clients[c].needs_rereg = true;
                        if back {
                            self.step(Op::ReRegister(c));
                        }
                    }
                }
            }
            Op::ReRegister(c) => {
                let cl = self.clients[c].clone();
                let (Some(s), true) = (cl.session, cl.needs_rereg) else {
                    return;
                };
                match self.run(
                    Some(s),
                    &Request::Register {
                        session: Some(s),
                        open: cl.open.clone(),
                    },
                ) {
                    Some(Response::Registered { session }) => {
                        assert_eq!(session, s);
                        self.clients[c].needs_rereg = false;
                    }
                    Some(Response::Error(e)) => {
                        assert_eq!(e.code, SqlState::ConnectionFailure, "{e}");
                        self.clients[c] = Client::default();
                    }
                    r => panic!("{r:?}"),
                }
            }
        }
        self.sync();
        assert!(self.h.l.next_gxid().0 <= self.h.d.gxid_reserved_upto.max(Gxid::FIRST_NORMAL.0));
        if !self.h.l.is_recovering() {
            // Every client still holding a session open in durable state has re-registered.
            for c in &self.clients {
                if let Some(s) = c.session {
                    assert!(
                        !c.needs_rereg || !self.h.d.sessions.contains(&s),
                        "recovery ended while {s} pending"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn core_model_check(ops in proptest::collection::vec(op(), 1..150)) {
        let mut sim = Sim::new();
        for op in ops {
            sim.step(op);
        }
        // Drain: every client comes back, time passes; the model still holds.
        for c in 0..CLIENTS {
            sim.step(Op::ReRegister(c));
        }
        sim.step(Op::Tick);
        sim.step(Op::Snapshot(0, 0, false));
        sim.step(Op::GlobalXmin);
    }
}
