//! The coordinator's commit protocol and the in-doubt resolver, independent of transport.
//!
//! [`commit`] ends a global transaction over the datanodes it touched, in the order of
//! `docs/cluster.md` (and `notes/hard-problems.md`):
//!
//! 1. nodes that only read are released (`rollback` of a read-only local transaction);
//! 2. zero or one writer: one-phase commit on it, then the GTM ends the GXID;
//! 3. two or more writers: the GTM records `(gxid, gid, writers)` → every writer PREPAREs →
//!    the GTM records the decision (**the commit point**) → COMMIT PREPARED on every writer → the GTM
//!    forgets the gid, and only then does the GXID leave the running set.
//!
//! [`resolve`] finishes what a crashed or disconnected coordinator left: it decides from the
//! GTM's durable decision record only — never from "prepared everywhere I looked" — and aborts an
//! undecided transaction only when its owner is known to be gone.
//!
//! **Invariant:** after [`resolve`] has run with every node reachable, each gid's writers have all
//! committed or all rolled back, and they committed iff the GTM's decision was commit; a client was
//! told `COMMIT` only if the decision was commit.
//!
//! Crash failpoints (`pgxc_common::failpoint`, armed by `PGXC_FAILPOINTS`):
//! `coordinator-after-prepare` (every writer prepared, decision not recorded) and
//! `coordinator-after-decision` (decision recorded, no COMMIT PREPARED sent) and
//! `coordinator-mid-commit-prepared` (the first writer's COMMIT PREPARED done, not the others') in
//! [`commit`].
//!
//! The durable record and the nodes are traits ([`DecisionLog`], [`Participant`], [`NodeAccess`]),
//! implemented over the GTM client and datanode connections by the coordinator, and by in-memory
//! models in the tests below and in the simulator.

use std::future::Future;

use pgxc_common::{Gxid, PgError, SqlState};

/// A prepared global transaction as the decision record holds it (the GTM's `PreparedTxn`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InDoubt {
    /// The transaction's GXID.
    pub gxid: Gxid,
    /// Its global transaction identifier.
    pub gid: String,
    /// The writers recorded before any of them prepared.
    pub nodes: Vec<String>,
    /// `None` while undecided, `Some(true)` commit, `Some(false)` rollback.
    pub decision: Option<bool>,
}

/// The durable decision record: the GTM (`pgxc_gtm::client::GtmClient`'s `prepare`, `decide`,
/// `forget`, `commit`, `abort`, `list_prepared`). Every method is one durable GTM request.
pub trait DecisionLog {
    /// Record that `gxid` will prepare as `gid` on `nodes`. Errors: 42710 gid in use.
    fn prepare(
        &self,
        gxid: Gxid,
        gid: &str,
        nodes: Vec<String>,
    ) -> impl Future<Output = Result<(), PgError>>;
    /// Record the decision; the first decision wins, a contrary second one fails (XX000).
    fn decide(&self, gid: &str, commit: bool) -> impl Future<Output = Result<(), PgError>>;
    /// Drop the record: the GXID leaves the running set.
    fn forget(&self, gid: &str) -> impl Future<Output = Result<(), PgError>>;
    /// End a GXID that committed in one phase (or only read).
    fn commit(&self, gxid: Gxid) -> impl Future<Output = Result<(), PgError>>;
    /// End a GXID that rolled back.
    fn abort(&self, gxid: Gxid) -> impl Future<Output = Result<(), PgError>>;
    /// Every recorded prepared transaction.
    fn list_prepared(&self) -> impl Future<Output = Result<Vec<InDoubt>, PgError>>;
}

/// One datanode's side of one global transaction (a pooled connection with the local
/// transaction open on it).
pub trait Participant {
    /// The node's name (as in `pgxc_node`).
    fn name(&self) -> &str;
    /// Whether this transaction wrote on the node (reported by the node with each statement).
    fn wrote(&self) -> bool;
    /// One-phase commit of the local transaction.
    fn commit(&mut self) -> impl Future<Output = Result<(), PgError>>;
    /// Roll the local transaction back (also releases a read-only one).
    fn rollback(&mut self) -> impl Future<Output = Result<(), PgError>>;
    /// `PREPARE TRANSACTION gid`: after success the node keeps the writes and locks durably.
    fn prepare(&mut self, gid: &str) -> impl Future<Output = Result<(), PgError>>;
}

/// Access to any node by name for the second phase and for the resolver (`COMMIT PREPARED` /
/// `ROLLBACK PREPARED`, on a fresh connection if need be).
pub trait NodeAccess {
    /// Finish `gid` on `node`. A node that does not hold `gid` (already finished, or it never
    /// prepared) answers Ok: finishing is idempotent.
    fn finish_prepared(
        &self,
        node: &str,
        gid: &str,
        commit: bool,
    ) -> impl Future<Output = Result<(), PgError>>;
}

/// Test-only mistakes the simulator re-introduces to prove its checkers catch them (issue 7).
/// All `false` in production.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mistakes {
    /// Commit (one-phase) on each writer right after it votes, before every PREPARE succeeded.
    pub commit_before_all_prepared: bool,
}

/// The gid of an implicit two-phase commit (the client did not name one), as Postgres-XC's `T<gxid>`.
pub fn implicit_gid(gxid: Gxid) -> String {
    format!("_pgxc_T{}", gxid.0)
}

/// The GXID an implicit gid ([`implicit_gid`]) names: `Some(g)` only for exactly `_pgxc_T<g>`
/// (decimal, no sign, no leading zero), so that a user's gid that merely looks similar is never
/// taken for a coordinator's.
pub fn implicit_gxid(gid: &str) -> Option<Gxid> {
    let digits = gid.strip_prefix("_pgxc_T")?;
    let g: u64 = digits.parse().ok()?;
    (implicit_gid(Gxid(g)) == gid).then_some(Gxid(g))
}

/// How [`commit`] ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Committed (the client gets `COMMIT`). `pending` lists writers whose COMMIT PREPARED did
    /// not get through; the resolver finishes them.
    Committed {
        /// Writers still holding the prepared transaction.
        pending: Vec<String>,
    },
    /// Rolled back because a node refused (the error is the client's answer).
    RolledBack(PgError),
    /// The decision may or may not be recorded (the GTM did not answer): SQLSTATE 08007,
    /// `transaction_resolution_unknown`. The resolver finishes it either way.
    InDoubt(PgError),
}

/// Commit the global transaction `gxid` over `parts` (every node it touched). `gid` is the
/// implicit gid ([`implicit_gid`]) or the one given to `PREPARE TRANSACTION` (then only steps up
/// to PREPARE run: use [`prepare_only`]).
pub async fn commit<L: DecisionLog, P: Participant, N: NodeAccess>(
    log: &L,
    nodes: &N,
    gxid: Gxid,
    gid: &str,
    parts: &mut [P],
    mistakes: Mistakes,
) -> Outcome {
    // Release readers first: they hold nothing the decision depends on.
    for p in parts.iter_mut().filter(|p| !p.wrote()) {
        let _ = p.rollback().await;
    }
    let writers: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].wrote()).collect();
    if writers.len() <= 1 {
        if let Some(&w) = writers.first() {
            if let Err(e) = parts[w].commit().await {
                // The local commit failed: nothing committed anywhere. (A transport failure
                // after the request left is reported by the participant as 08007.)
                let _ = log.abort(gxid).await;
                return if e.code == SqlState::TransactionResolutionUnknown {
                    Outcome::InDoubt(e)
                } else {
                    Outcome::RolledBack(e)
                };
            }
        }
        let _ = log.commit(gxid).await;
        return Outcome::Committed {
            pending: Vec::new(),
        };
    }
    let names: Vec<String> = writers
        .iter()
        .map(|&i| parts[i].name().to_string())
        .collect();
    if let Err(e) = log.prepare(gxid, gid, names.clone()).await {
        for &i in &writers {
            let _ = parts[i].rollback().await;
        }
        let _ = log.abort(gxid).await;
        return Outcome::RolledBack(e);
    }
    for (k, &i) in writers.iter().enumerate() {
        let r = parts[i].prepare(gid).await;
        if mistakes.commit_before_all_prepared && r.is_ok() {
            let _ = nodes.finish_prepared(&names[k], gid, true).await;
        }
        if let Err(e) = r {
            // Abort. Writers that did not prepare are rolled back on their connection at once;
            // prepared ones only after the rollback decision is recorded (otherwise the resolver
            // decides and finishes them later: the gid is undecided and its owner will be gone).
            let mut all = true;
            for &wi in &writers[k..] {
                all &= parts[wi].rollback().await.is_ok();
            }
            if log.decide(gid, false).await.is_err() {
                return Outcome::RolledBack(e);
            }
            // Include the refusing node: a transport error may hide a PREPARE that happened.
            for n in &names[..=k] {
                all &= nodes.finish_prepared(n, gid, false).await.is_ok();
            }
            if all {
                let _ = log.forget(gid).await;
            }
            return Outcome::RolledBack(e);
        }
    }
    // Every writer prepared; the decision is not recorded yet (fault tests crash here).
    pgxc_common::failpoint::hit("coordinator-after-prepare");
    if let Err(e) = log.decide(gid, true).await {
        return Outcome::InDoubt(PgError::new(
            SqlState::TransactionResolutionUnknown,
            format!(
                "the commit decision for \"{gid}\" could not be confirmed: {}",
                e.message
            ),
        ));
    }
    // The commit point is durable; no COMMIT PREPARED sent yet (fault tests crash here).
    pgxc_common::failpoint::hit("coordinator-after-decision");
    let mut pending = Vec::new();
    for (k, n) in names.iter().enumerate() {
        if k == 1 {
            // One writer committed, the others still prepared (fault tests crash here).
            pgxc_common::failpoint::hit("coordinator-mid-commit-prepared");
        }
        if nodes.finish_prepared(n, gid, true).await.is_err() {
            pending.push(n.clone());
        }
    }
    if pending.is_empty() {
        let _ = log.forget(gid).await;
    }
    Outcome::Committed { pending }
}

/// `PREPARE TRANSACTION 'gid'` over several nodes: record, then prepare every writer. Readers are
/// released. On a refusal everything is rolled back and the error returned. The transaction then
/// waits for `COMMIT PREPARED` / `ROLLBACK PREPARED` ([`finish_prepared`]) from any coordinator.
pub async fn prepare_only<L: DecisionLog, P: Participant, N: NodeAccess>(
    log: &L,
    nodes: &N,
    gxid: Gxid,
    gid: &str,
    parts: &mut [P],
) -> Result<(), PgError> {
    for p in parts.iter_mut().filter(|p| !p.wrote()) {
        let _ = p.rollback().await;
    }
    let writers: Vec<usize> = (0..parts.len()).filter(|&i| parts[i].wrote()).collect();
    let names: Vec<String> = writers
        .iter()
        .map(|&i| parts[i].name().to_string())
        .collect();
    log.prepare(gxid, gid, names.clone()).await?;
    for (k, &i) in writers.iter().enumerate() {
        if let Err(e) = parts[i].prepare(gid).await {
            for &wi in &writers[k..] {
                let _ = parts[wi].rollback().await;
            }
            if log.decide(gid, false).await.is_ok() {
                let mut all = true;
                for n in &names[..=k] {
                    all &= nodes.finish_prepared(n, gid, false).await.is_ok();
                }
                if all {
                    let _ = log.forget(gid).await;
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// `COMMIT PREPARED 'gid'` (`commit`) / `ROLLBACK PREPARED 'gid'` from any coordinator: record
/// the decision (42704 if the gid is unknown; XX000 if it was already decided the other way),
/// apply it on every recorded node, forget it. Returns the nodes still pending (resolver's job).
pub async fn finish_prepared<L: DecisionLog, N: NodeAccess>(
    log: &L,
    nodes: &N,
    gid: &str,
    commit: bool,
) -> Result<Vec<String>, PgError> {
    let all = log.list_prepared().await?;
    let Some(p) = all.into_iter().find(|p| p.gid == gid) else {
        return Err(PgError::new(
            SqlState::UndefinedObject,
            format!("prepared transaction with identifier \"{gid}\" does not exist"),
        ));
    };
    log.decide(gid, commit).await?;
    let mut pending = Vec::new();
    for n in &p.nodes {
        if nodes.finish_prepared(n, gid, commit).await.is_err() {
            pending.push(n.clone());
        }
    }
    if pending.is_empty() {
        log.forget(gid).await?;
    }
    Ok(pending)
}

/// What one [`resolve`] pass did, per gid (for `pgxc clean` reports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Gids finished as committed.
    pub committed: Vec<String>,
    /// Gids finished as rolled back.
    pub rolled_back: Vec<String>,
    /// Gids left alone: undecided with a live owner, or a node did not answer.
    pub left: Vec<String>,
}

/// One pass of the in-doubt resolver (and of `pgxc clean`): for every recorded prepared
/// transaction, apply its decision on every recorded node and forget it; an undecided one whose
/// owner `abandoned` says is gone is first decided as rollback (if the owner decides first, its
/// decision stands). With `report_only` nothing is changed (`pgxc clean --no-clean`).
pub async fn resolve<L: DecisionLog, N: NodeAccess>(
    log: &L,
    nodes: &N,
    abandoned: impl Fn(&InDoubt) -> bool,
    report_only: bool,
) -> Result<Report, PgError> {
    resolve_when(log, nodes, abandoned, |_| true, report_only).await
}

/// [`resolve`], finishing a decided gid only when `due` says so (the background resolver leaves
/// a freshly decided gid to its own coordinator, which is normally finishing it right then).
pub async fn resolve_when<L: DecisionLog, N: NodeAccess>(
    log: &L,
    nodes: &N,
    abandoned: impl Fn(&InDoubt) -> bool,
    due: impl Fn(&InDoubt) -> bool,
    report_only: bool,
) -> Result<Report, PgError> {
    let mut report = Report::default();
    for p in log.list_prepared().await? {
        let decision = match p.decision {
            Some(_) if !due(&p) => {
                report.left.push(p.gid.clone());
                continue;
            }
            Some(d) => d,
            None if abandoned(&p) => {
                if report_only {
                    report.rolled_back.push(p.gid.clone());
                    continue;
                }
                match log.decide(&p.gid, false).await {
                    Ok(()) => false,
                    // Decided concurrently (by its owner, as commit): re-read next pass.
                    Err(_) => {
                        report.left.push(p.gid.clone());
                        continue;
                    }
                }
            }
            None => {
                report.left.push(p.gid.clone());
                continue;
            }
        };
        if report_only {
            if decision {
                report.committed.push(p.gid.clone());
            } else {
                report.rolled_back.push(p.gid.clone());
            }
            continue;
        }
        let mut all = true;
        for n in &p.nodes {
            all &= nodes.finish_prepared(n, &p.gid, decision).await.is_ok();
        }
        if all && log.forget(&p.gid).await.is_ok() {
            if decision {
                report.committed.push(p.gid.clone());
            } else {
                report.rolled_back.push(p.gid.clone());
            }
        } else {
            report.left.push(p.gid.clone());
        }
    }
    Ok(report)
}

/// What the orphan sweep ([`roll_back_orphans`]) reads beyond [`DecisionLog`] and [`NodeAccess`]:
/// the GTM's running set and each datanode's `pg_prepared_xacts`.
pub trait OrphanSource {
    /// A GTM snapshot taken now without a GXID (`GtmClient::snapshot(None)`): its `xip` lists
    /// every running and every prepared-and-not-forgotten GXID, and `xmax` is the next GXID the
    /// GTM will issue.
    fn gtm_snapshot(&self) -> impl Future<Output = Result<pgxc_common::Snapshot, PgError>>;
    /// The transactions prepared on `node` as `(gid, gxid)` (`DnRequest::ListPrepared`).
    /// Errors: the node's or the transport's.
    fn node_prepared(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<Vec<(String, Gxid)>, PgError>>;
}

/// The orphan sweep of the in-doubt resolver: roll back every *implicit* gid (`_pgxc_T<gxid>`,
/// [`implicit_gid`]) that a datanode of `node_names` holds prepared although the GTM neither
/// records it ([`DecisionLog::list_prepared`]) nor still runs its GXID ([`OrphanSource::gtm_snapshot`]).
///
/// Such a gid can only be left by a rolled-back transaction: a coordinator records the gid at the
/// GTM before any PREPARE, a GXID stays running at the GTM until its gid is forgotten or it is
/// aborted, and a gid decided *commit* is forgotten only after every writer acknowledged its
/// COMMIT PREPARED (durably). What does leave one: a PREPARE that failed on a dying disk (the
/// coordinator was told it failed, decided rollback, the datanode answered the ROLLBACK PREPARED
/// "nothing prepared", the GTM forgot the gid) whose record nevertheless reached the disk and
/// reappears when the datanode restarts. Postgres-XC's pgxc_clean rolls back the same gids (those
/// not known to the GTM).
///
/// Race-free by order: each datanode is listed first, the GTM read afterwards. A gid seen
/// prepared on a node was recorded at the GTM before that PREPARE; if the GTM no longer records
/// it and its GXID has ended, its owner has finished with it, and on a node where it did not
/// leave an orphan the ROLLBACK PREPARED finds nothing (idempotent). A GXID at or beyond the
/// snapshot's `xmax` counts as running. Explicit gids (a user's `PREPARE TRANSACTION 'x'`) are
/// never touched: they wait for their COMMIT/ROLLBACK PREPARED, as in PostgreSQL. A node that does
/// not answer is skipped (next pass). With `report_only` nothing is changed.
///
/// Returns the orphans as `"node:gid"` in [`Report::rolled_back`] (or [`Report::left`] when the
/// ROLLBACK PREPARED failed). Errors: the GTM's (nothing is rolled back without its answer).
pub async fn roll_back_orphans<L: DecisionLog, N: NodeAccess, S: OrphanSource>(
    log: &L,
    nodes: &N,
    source: &S,
    node_names: &[String],
    report_only: bool,
) -> Result<Report, PgError> {
    let mut report = Report::default();
    let mut candidates: Vec<(String, String, Gxid)> = Vec::new();
    for node in node_names {
        let Ok(held) = source.node_prepared(node).await else {
            continue;
        };
        for (gid, gxid) in held {
            // The datanode runs a coordinator's transaction under its GXID: an implicit gid
            // naming another GXID is not one of ours.
            if implicit_gxid(&gid) == Some(gxid) {
                candidates.push((node.clone(), gid, gxid));
            }
        }
    }
    if candidates.is_empty() {
        return Ok(report);
    }
    // Only now read the GTM (see above: the order makes the check race-free).
    let recorded: Vec<String> = log
        .list_prepared()
        .await?
        .into_iter()
        .map(|p| p.gid)
        .collect();
    let snapshot = source.gtm_snapshot().await?;
    for (node, gid, gxid) in candidates {
        if recorded.contains(&gid) || snapshot.is_running(gxid) {
            continue;
        }
        let what = format!("{node}:{gid}");
        if report_only || nodes.finish_prepared(&node, &gid, false).await.is_ok() {
            report.rolled_back.push(what);
        } else {
            report.left.push(what);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    //! A model: nodes with local states, a decision log, and failure injection at every step; a
    //! proptest checks atomicity after resolution for random failure schedules.
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Local {
        Active,
        Prepared,
        Committed,
        RolledBack,
    }

    /// Failure injection: the n-th call of each kind fails (0 = never).
    #[derive(Clone, Debug, Default)]
    struct Faults {
        /// Node names that refuse PREPARE.
        refuse_prepare: Vec<String>,
        /// Nodes unreachable for the second phase (until healed).
        unreachable: Vec<String>,
        /// The GTM fails `decide` (the commit point cannot be written).
        decide_fails: bool,
        /// The GTM fails `prepare`.
        log_prepare_fails: bool,
        /// Nodes whose PREPARE fails on a dying disk after its record reached the disk: the
        /// coordinator gets an error, the node forgets the transaction in memory, and it is
        /// prepared again when the node restarts ([`World::restart`]).
        prepare_fails_but_persists: Vec<String>,
    }

    #[derive(Default)]
    struct World {
        nodes: RefCell<BTreeMap<String, Local>>,
        log: RefCell<BTreeMap<String, InDoubt>>,
        faults: RefCell<Faults>,
        ended: RefCell<Vec<Gxid>>,
        /// Prepared records on disk that the node's memory lost (see `prepare_fails_but_persists`).
        on_disk_only: RefCell<Vec<String>>,
        /// The gid the nodes hold prepared (the model runs one transaction).
        gid: RefCell<String>,
        /// The GXID of that transaction.
        gxid: RefCell<Gxid>,
    }

    impl World {
        /// Restart every node: a prepared record that only the disk kept comes back.
        fn restart(&self) {
            for n in self.on_disk_only.borrow_mut().drain(..) {
                self.nodes.borrow_mut().insert(n, Local::Prepared);
            }
        }
    }

    impl OrphanSource for World {
        async fn gtm_snapshot(&self) -> Result<pgxc_common::Snapshot, PgError> {
            // The model's one GXID is running until ended; recorded gids stay in xip.
            let g = *self.gxid.borrow();
            let running = !self.ended.borrow().contains(&g)
                || self.log.borrow().values().any(|p| p.gxid == g);
            let xmax = Gxid(g.0 + 1);
            Ok(pgxc_common::Snapshot::new(
                xmax,
                if running { vec![g] } else { Vec::new() },
            ))
        }
        async fn node_prepared(&self, node: &str) -> Result<Vec<(String, Gxid)>, PgError> {
            if self.faults.borrow().unreachable.iter().any(|n| n == node) {
                return Err(PgError::new(SqlState::ConnectionFailure, "unreachable"));
            }
            Ok(match self.nodes.borrow().get(node) {
                Some(Local::Prepared) => vec![(self.gid.borrow().clone(), *self.gxid.borrow())],
                _ => Vec::new(),
            })
        }
    }

    impl DecisionLog for World {
        async fn prepare(&self, gxid: Gxid, gid: &str, nodes: Vec<String>) -> Result<(), PgError> {
            if self.faults.borrow().log_prepare_fails {
                return Err(PgError::new(SqlState::ConnectionFailure, "gtm down"));
            }
            self.log.borrow_mut().insert(
                gid.to_string(),
                InDoubt {
                    gxid,
                    gid: gid.to_string(),
                    nodes,
                    decision: None,
                },
            );
            Ok(())
        }
        async fn decide(&self, gid: &str, commit: bool) -> Result<(), PgError> {
            if self.faults.borrow().decide_fails {
                return Err(PgError::new(SqlState::ConnectionFailure, "gtm down"));
            }
            let mut log = self.log.borrow_mut();
            let p = log
                .get_mut(gid)
                .ok_or_else(|| PgError::new(SqlState::UndefinedObject, "no gid"))?;
            match p.decision {
                None => {
                    p.decision = Some(commit);
                    Ok(())
                }
                Some(d) if d == commit => Ok(()),
                Some(_) => Err(PgError::new(SqlState::InternalError, "decided otherwise")),
            }
        }
        async fn forget(&self, gid: &str) -> Result<(), PgError> {
            if let Some(p) = self.log.borrow_mut().remove(gid) {
                self.ended.borrow_mut().push(p.gxid);
            }
            Ok(())
        }
        async fn commit(&self, gxid: Gxid) -> Result<(), PgError> {
            self.ended.borrow_mut().push(gxid);
            Ok(())
        }
        async fn abort(&self, gxid: Gxid) -> Result<(), PgError> {
            self.ended.borrow_mut().push(gxid);
            Ok(())
        }
        async fn list_prepared(&self) -> Result<Vec<InDoubt>, PgError> {
            Ok(self.log.borrow().values().cloned().collect())
        }
    }

    impl NodeAccess for World {
        async fn finish_prepared(
            &self,
            node: &str,
            _gid: &str,
            commit: bool,
        ) -> Result<(), PgError> {
            if self.faults.borrow().unreachable.iter().any(|n| n == node) {
                return Err(PgError::new(SqlState::ConnectionFailure, "unreachable"));
            }
            let mut nodes = self.nodes.borrow_mut();
            let s = nodes.get_mut(node).expect("known node");
            if *s == Local::Prepared {
                *s = if commit {
                    Local::Committed
                } else {
                    Local::RolledBack
                };
            }
            Ok(())
        }
    }

    struct Part<'a> {
        world: &'a World,
        name: String,
        wrote: bool,
    }

    impl Participant for Part<'_> {
        fn name(&self) -> &str {
            &self.name
        }
        fn wrote(&self) -> bool {
            self.wrote
        }
        async fn commit(&mut self) -> Result<(), PgError> {
            self.world
                .nodes
                .borrow_mut()
                .insert(self.name.clone(), Local::Committed);
            Ok(())
        }
        async fn rollback(&mut self) -> Result<(), PgError> {
            let mut nodes = self.world.nodes.borrow_mut();
            let s = nodes.get_mut(&self.name).expect("known node");
            if *s == Local::Active {
                *s = Local::RolledBack;
            }
            Ok(())
        }
        async fn prepare(&mut self, _gid: &str) -> Result<(), PgError> {
            if self
                .world
                .faults
                .borrow()
                .prepare_fails_but_persists
                .iter()
                .any(|n| n == &self.name)
            {
                self.world
                    .nodes
                    .borrow_mut()
                    .insert(self.name.clone(), Local::RolledBack);
                self.world.on_disk_only.borrow_mut().push(self.name.clone());
                return Err(PgError::new(
                    SqlState::IoError,
                    "could not write: disk failed",
                ));
            }
            if self
                .world
                .faults
                .borrow()
                .refuse_prepare
                .iter()
                .any(|n| n == &self.name)
            {
                self.world
                    .nodes
                    .borrow_mut()
                    .insert(self.name.clone(), Local::RolledBack);
                return Err(PgError::new(SqlState::SerializationFailure, "refused"));
            }
            self.world
                .nodes
                .borrow_mut()
                .insert(self.name.clone(), Local::Prepared);
            Ok(())
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // The futures here never wait on anything: poll once with a no-op waker.
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("model futures never wait"),
        }
    }

    fn run(n_nodes: usize, wrote: &[bool], faults: Faults, mistakes: Mistakes) -> (World, Outcome) {
        let world = World::default();
        for i in 0..n_nodes {
            world
                .nodes
                .borrow_mut()
                .insert(format!("dn{i}"), Local::Active);
        }
        *world.faults.borrow_mut() = faults;
        let gxid = Gxid(100);
        *world.gid.borrow_mut() = implicit_gid(gxid);
        *world.gxid.borrow_mut() = gxid;
        let out = {
            let mut parts: Vec<Part> = (0..n_nodes)
                .map(|i| Part {
                    world: &world,
                    name: format!("dn{i}"),
                    wrote: wrote[i],
                })
                .collect();
            block_on(commit(
                &world,
                &world,
                gxid,
                &implicit_gid(gxid),
                &mut parts,
                mistakes,
            ))
        };
        (world, out)
    }

    fn writer_states(world: &World, wrote: &[bool]) -> Vec<Local> {
        let nodes = world.nodes.borrow();
        (0..wrote.len())
            .filter(|&i| wrote[i])
            .map(|i| nodes[&format!("dn{i}")])
            .collect()
    }

    #[test]
    fn two_writers_commit_in_order_and_forget() {
        let wrote = [true, false, true];
        let (world, out) = run(3, &wrote, Faults::default(), Mistakes::default());
        assert_eq!(out, Outcome::Committed { pending: vec![] });
        assert_eq!(
            writer_states(&world, &wrote),
            vec![Local::Committed, Local::Committed]
        );
        assert_eq!(world.nodes.borrow()["dn1"], Local::RolledBack);
        assert!(world.log.borrow().is_empty(), "gid forgotten");
        assert_eq!(*world.ended.borrow(), vec![Gxid(100)]);
    }

    #[test]
    fn a_refused_prepare_rolls_back_everyone() {
        let wrote = [true, true, true];
        let faults = Faults {
            refuse_prepare: vec!["dn1".into()],
            ..Faults::default()
        };
        let (world, out) = run(3, &wrote, faults, Mistakes::default());
        assert!(matches!(out, Outcome::RolledBack(_)));
        assert!(writer_states(&world, &wrote)
            .iter()
            .all(|s| *s == Local::RolledBack));
        assert!(world.log.borrow().is_empty());
    }

    #[test]
    fn unreachable_writer_is_finished_by_the_resolver() {
        let wrote = [true, true];
        let faults = Faults {
            unreachable: vec!["dn0".into()],
            ..Faults::default()
        };
        let (world, out) = run(2, &wrote, faults, Mistakes::default());
        assert_eq!(
            out,
            Outcome::Committed {
                pending: vec!["dn0".into()]
            }
        );
        assert_eq!(world.nodes.borrow()["dn0"], Local::Prepared);
        world.faults.borrow_mut().unreachable.clear();
        let report = block_on(resolve(&world, &world, |_| false, false)).unwrap();
        assert_eq!(report.committed, vec![implicit_gid(Gxid(100))]);
        assert_eq!(
            writer_states(&world, &wrote),
            vec![Local::Committed, Local::Committed]
        );
    }

    #[test]
    fn lost_decision_is_in_doubt_and_resolved_as_rollback_only_when_abandoned() {
        let wrote = [true, true];
        let faults = Faults {
            decide_fails: true,
            ..Faults::default()
        };
        let (world, out) = run(2, &wrote, faults, Mistakes::default());
        let Outcome::InDoubt(e) = out else {
            panic!("expected in doubt, got {out:?}");
        };
        assert_eq!(e.code, SqlState::TransactionResolutionUnknown);
        world.faults.borrow_mut().decide_fails = false;
        // Owner alive: left alone.
        let r = block_on(resolve(&world, &world, |_| false, false)).unwrap();
        assert_eq!(r.left.len(), 1);
        assert!(writer_states(&world, &wrote)
            .iter()
            .all(|s| *s == Local::Prepared));
        // Report only changes nothing.
        let r = block_on(resolve(&world, &world, |_| true, true)).unwrap();
        assert_eq!(r.rolled_back.len(), 1);
        assert_eq!(world.log.borrow().len(), 1);
        // Owner gone: rolled back everywhere.
        let r = block_on(resolve(&world, &world, |_| true, false)).unwrap();
        assert_eq!(r.rolled_back.len(), 1);
        assert!(writer_states(&world, &wrote)
            .iter()
            .all(|s| *s == Local::RolledBack));
    }

    #[test]
    fn the_commit_before_prepare_mistake_breaks_atomicity() {
        let wrote = [true, true];
        let faults = Faults {
            refuse_prepare: vec!["dn1".into()],
            ..Faults::default()
        };
        let mistakes = Mistakes {
            commit_before_all_prepared: true,
        };
        let (world, _) = run(2, &wrote, faults, mistakes);
        assert_eq!(
            writer_states(&world, &wrote),
            vec![Local::Committed, Local::RolledBack],
            "the mistake must be observable, or the simulator cannot be shown to catch it"
        );
    }

    fn dn_names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("dn{i}")).collect()
    }

    #[test]
    fn implicit_gxid_parses_only_exact_implicit_gids() {
        assert_eq!(implicit_gxid("_pgxc_T38"), Some(Gxid(38)));
        assert_eq!(implicit_gxid(&implicit_gid(Gxid(7))), Some(Gxid(7)));
        for other in [
            "_pgxc_T",
            "_pgxc_T038",
            "_pgxc_T+3",
            "_pgxc_T3x",
            "pgxc_T3",
            "mine",
        ] {
            assert_eq!(implicit_gxid(other), None, "{other}");
        }
    }

    /// Seed 83 of cluster_bank, in the model: a PREPARE fails on a dying disk but its record
    /// survives; the coordinator rolls back, the node answers its ROLLBACK PREPARED with "nothing
    /// prepared", the GTM forgets the gid, and after the restart the node holds an orphan that
    /// the GTM-driven resolver never sees. The orphan sweep rolls it back.
    #[test]
    fn a_prepare_that_failed_but_persisted_is_rolled_back_by_the_orphan_sweep() {
        let wrote = [true, true];
        let faults = Faults {
            prepare_fails_but_persists: vec!["dn1".into()],
            ..Faults::default()
        };
        let (world, out) = run(2, &wrote, faults, Mistakes::default());
        assert!(matches!(out, Outcome::RolledBack(_)), "{out:?}");
        assert!(world.log.borrow().is_empty(), "the GTM forgot the gid");
        world.restart();
        assert_eq!(world.nodes.borrow()["dn1"], Local::Prepared);
        // The GTM-driven resolver alone leaves it (this is the bug the sweep fixes).
        let r = block_on(resolve(&world, &world, |_| true, false)).unwrap();
        assert_eq!(r, Report::default());
        assert_eq!(world.nodes.borrow()["dn1"], Local::Prepared);
        // Report only: named, not changed.
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            true,
        ))
        .unwrap();
        assert_eq!(r.rolled_back, vec!["dn1:_pgxc_T100".to_string()]);
        assert_eq!(world.nodes.borrow()["dn1"], Local::Prepared);
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r.rolled_back, vec!["dn1:_pgxc_T100".to_string()]);
        assert_eq!(
            writer_states(&world, &wrote),
            vec![Local::RolledBack, Local::RolledBack]
        );
    }

    /// The sweep never touches a gid the GTM records (decided commit, or undecided with a live
    /// owner), a GXID still running (a coordinator between its GTM record and its PREPAREs), or a
    /// user's explicit gid.
    #[test]
    fn the_orphan_sweep_leaves_recorded_running_and_explicit_gids() {
        let wrote = [true, true];
        // Decided commit, second phase blocked: recorded at the GTM.
        let faults = Faults {
            unreachable: vec!["dn0".into()],
            ..Faults::default()
        };
        let (world, out) = run(2, &wrote, faults, Mistakes::default());
        assert!(matches!(out, Outcome::Committed { .. }));
        world.faults.borrow_mut().unreachable.clear();
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r, Report::default());
        assert_eq!(world.nodes.borrow()["dn0"], Local::Prepared);
        // Not recorded any more, but the GXID still running: left.
        world.log.borrow_mut().clear();
        world.ended.borrow_mut().clear();
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r, Report::default());
        assert_eq!(world.nodes.borrow()["dn0"], Local::Prepared);
        // Ended and forgotten, but an explicit gid: a user's PREPARE TRANSACTION waits.
        world.ended.borrow_mut().push(Gxid(100));
        *world.gid.borrow_mut() = "user_gid".into();
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r, Report::default());
        // An implicit gid naming another GXID than the transaction's: not a coordinator's.
        *world.gid.borrow_mut() = implicit_gid(Gxid(99));
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r, Report::default());
        assert_eq!(world.nodes.borrow()["dn0"], Local::Prepared);
        // The coordinator's own gid, ended and forgotten: an orphan.
        *world.gid.borrow_mut() = implicit_gid(Gxid(100));
        let r = block_on(roll_back_orphans(
            &world,
            &world,
            &world,
            &dn_names(2),
            false,
        ))
        .unwrap();
        assert_eq!(r.rolled_back, vec!["dn0:_pgxc_T100".to_string()]);
    }

    proptest! {
        /// For random writers and faults: after healing (and restarts, which bring back PREPAREs
        /// that failed on a dying disk after reaching it), one resolver pass (owners gone) and one
        /// orphan sweep, every writer agrees, the outcome equals the durable decision, and a
        /// client told COMMIT saw a commit everywhere.
        #[test]
        fn atomic_after_resolution(
            wrote in proptest::collection::vec(any::<bool>(), 1..5),
            refuse in proptest::collection::vec(any::<bool>(), 5),
            unreachable in proptest::collection::vec(any::<bool>(), 5),
            decide_fails in any::<bool>(),
            log_prepare_fails in any::<bool>(),
            persists in proptest::collection::vec(any::<bool>(), 5),
        ) {
            let n = wrote.len();
            let faults = Faults {
                refuse_prepare: (0..n).filter(|&i| refuse[i]).map(|i| format!("dn{i}")).collect(),
                unreachable: (0..n).filter(|&i| unreachable[i]).map(|i| format!("dn{i}")).collect(),
                decide_fails,
                log_prepare_fails,
                prepare_fails_but_persists: (0..n)
                    .filter(|&i| persists[i])
                    .map(|i| format!("dn{i}"))
                    .collect(),
            };
            let (world, out) = run(n, &wrote, faults, Mistakes::default());
            *world.faults.borrow_mut() = Faults::default();
            let decision_before = world.log.borrow().values().next().and_then(|p| p.decision);
            world.restart();
            block_on(resolve(&world, &world, |_| true, false)).unwrap();
            block_on(roll_back_orphans(&world, &world, &world, &dn_names(n), false)).unwrap();
            prop_assert!(world.log.borrow().is_empty(), "everything resolved");
            let states = writer_states(&world, &wrote);
            let all_committed = states.iter().all(|s| *s == Local::Committed);
            let all_rolled_back = states.iter().all(|s| *s == Local::RolledBack);
            prop_assert!(all_committed || all_rolled_back, "atomic: {:?}", states);
            match out {
                Outcome::Committed { .. } => prop_assert!(all_committed),
                Outcome::RolledBack(_) => prop_assert!(all_rolled_back || states.is_empty()),
                Outcome::InDoubt(_) => {}
            }
            if let Some(d) = decision_before {
                prop_assert_eq!(d, all_committed);
            }
        }
    }
}
