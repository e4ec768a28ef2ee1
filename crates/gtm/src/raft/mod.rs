//! openraft 0.9.25 wiring for the GTM group: type config, the madsim-switchable runtime, the log store and
//! state machine on the storage seam, the TCP network, node assembly and administration (initialize, add /
//! remove member, promote, leadership transfer) and the leader lease check the server relies on.
//!
//! Files: [`runtime`] (openraft's `AsyncRuntime` on the workspace tokio alias), [`store`] (log store and state
//! machine on one [`Kv`]), [`network`] (peer RPC over TCP), this module (assembly and administration).
//!
//! Timings (defaults of [`RaftConfig`]): heartbeat 100 ms (openraft ticks every 1.5 heartbeats, so a follower
//! hears from the leader about every 150 ms), election timeout 400..800 ms, lease bound 400 ms.
//!
//! **Invariant:** only fsynced entries are acknowledged: the log store reports an append to openraft only after
//! an fsynced ([`pgxc_storage::Durability::Immediate`]) write, and the vote is fsynced before it is used; so a
//! write openraft reports committed is on the disks of a quorum.
//!
//! **Invariant:** a deposed leader serves nothing past its lease: [`RaftNode::lease_valid`] holds only while
//! this node is leader and a quorum acknowledged it less than `election_timeout_min` ago. openraft 0.9.25
//! followers reject every vote request while `now <= last_heard_from_leader + election_timeout_max` (the
//! `leader_lease` of `Engine::handle_vote_req`), and the leader's acknowledgement time is the *sending* time of
//! the acknowledged request, so no other node can be elected before `ack + election_timeout_max`; the server
//! stops at `ack + election_timeout_min`, leaving `max - min` (400 ms by default) for clock-rate drift and for
//! the delay between openraft publishing its metrics and this module observing them (the observation age is
//! added to the elapsed time). Residual window: openraft's vote-time lease
//! protects followers, but in 0.9.25 the *leader's* own vote time is not refreshed by heartbeat
//! acknowledgements (observed: it is refreshed around its own appends, not while idle), so an idle leader whose
//! vote time is older than `election_timeout_max` may grant a vote to an up-to-date candidate of a higher term
//! (reachable by the candidate but not hearing the leader: an asymmetric partition) and step down at once. The
//! step-down reaches the metrics this module reads in the same RaftCore loop iteration, while the candidate still
//! needs the vote response and then its own recovery (session re-registration) before it serves, so the overlap is
//! theoretical; [`RaftNode::transfer_leader`] closes it for transfers by dropping the lease before asking the
//! target to campaign.

// openraft's `StorageError` (over 200 bytes) is imposed by its storage traits; boxing it only here would not help.
#![allow(clippy::result_large_err)]

pub mod network;
pub mod runtime;
pub mod store;

use crate::core::DurableState;
use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{
    BasicNode, ChangeMembers, CommittedLeaderId, Entry, EntryPayload, Raft, ServerState,
    SnapshotPolicy,
};
use pgxc_storage::{Disk, Kv};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use network::{serve_peer, NetworkFactory, PeerClient, PeerRequest, PeerResponse};
pub use runtime::GtmRuntime;
pub use store::{Applied, LogStore, StateMachine, StoreError};

/// Raft node id of a GTM replica.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft type configuration of the GTM group: commands of [`crate::core`], `u64` node ids, nodes
    /// addressed by `"host:port"`, snapshots as in-memory byte cursors, and the [`GtmRuntime`].
    pub TypeConfig:
        D = crate::core::Command,
        R = crate::core::CommandResult,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = GtmRuntime,
);

/// A log id of this group.
pub type LogId = openraft::LogId<NodeId>;
/// A stored membership of this group.
pub type Membership = openraft::StoredMembership<NodeId, BasicNode>;
/// The metrics of a node of this group.
pub type Metrics = openraft::RaftMetrics<NodeId, BasicNode>;

/// The name of the key/value database file of the GTM's Raft state on its [`Disk`].
pub const KV_NAME: &str = "gtm-raft";

/// Raft timings and log compaction settings of a GTM node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    /// Leader heartbeat interval (default 100 ms).
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout (default 400 ms). Also the leader lease bound of
    /// [`RaftNode::lease_valid`].
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout (default 800 ms); openraft's followers refuse to vote for
    /// this long after hearing from a leader.
    pub election_timeout_max: Duration,
    /// Build a snapshot (and compact the log) every this many applied entries (default 1000).
    pub snapshot_every: u64,
    /// Log entries kept after a snapshot for lagging followers (default 32).
    pub keep_after_snapshot: u64,
    /// Bound on a TCP connect to a peer (default 300 ms).
    pub connect_timeout: Duration,
    /// Bound on one InstallSnapshot chunk RPC (default 2 s).
    pub install_snapshot_timeout: Duration,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            snapshot_every: 1000,
            keep_after_snapshot: 32,
            connect_timeout: Duration::from_millis(300),
            install_snapshot_timeout: Duration::from_millis(2000),
        }
    }
}

impl RaftConfig {
    /// The openraft configuration.
    pub fn to_openraft(&self) -> Result<openraft::Config, NodeError> {
        let c = openraft::Config {
            cluster_name: "pgxc-gtm".to_string(),
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            election_timeout_min: self.election_timeout_min.as_millis() as u64,
            election_timeout_max: self.election_timeout_max.as_millis() as u64,
            install_snapshot_timeout: self.install_snapshot_timeout.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            ..Default::default()
        };
        c.validate().map_err(|e| NodeError::Config(e.to_string()))
    }
}

/// Why a Raft node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The disk failed opening the database.
    #[error("disk: {0}")]
    Disk(#[from] pgxc_storage::StorageError),
    /// The log store or state machine failed (I/O or undecodable data).
    #[error("raft storage: {0}")]
    Store(#[from] StoreError),
    /// The Raft node stopped.
    #[error("raft stopped: {0}")]
    Fatal(#[from] Fatal<NodeId>),
    /// Invalid timings.
    #[error("raft config: {0}")]
    Config(String),
    /// Not the leader (with the known leader, if any).
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// A membership change or initialization was refused.
    #[error("{0}")]
    Refused(String),
}

/// What the lease observer last saw in the metrics, and when.
#[derive(Debug)]
struct LeaseObs {
    /// When the metrics below were observed.
    observed_at: openraft::TokioInstant,
    /// Leader at that time.
    leader: bool,
    /// The only voter is this node.
    sole_voter: bool,
    /// openraft's `millis_since_quorum_ack` at that time.
    millis_since_quorum_ack: Option<u64>,
    /// A leadership transfer is under way: the lease is void.
    transferring: bool,
}

/// A running GTM Raft node: the openraft handle, the replicated state it applies, and administration.
pub struct RaftNode {
    /// This node's id.
    pub id: NodeId,
    /// The openraft handle (replaced by [`RaftNode::promote`]: take it from here, do not cache clones).
    pub raft: Raft<TypeConfig>,
    /// The replicated state, updated by every apply. Lock briefly.
    pub state: Arc<Mutex<DurableState>>,
    shared: Arc<store::SmShared>,
    kv: Kv,
    config: RaftConfig,
    lease: Arc<Mutex<LeaseObs>>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open (or create) the GTM Raft database on `disk` and start a Raft node with id `id`. A node with state on
/// disk resumes from it (snapshot, then log); a fresh node waits for [`RaftNode::initialize`] or to be added
/// by a leader.
pub async fn start_raft(
    id: NodeId,
    disk: &Disk,
    config: RaftConfig,
) -> Result<RaftNode, NodeError> {
    let kv = disk.open_kv(KV_NAME)?;
    let sm = StateMachine::open(kv.clone())?;
    let shared = sm.shared();
    let state = sm.state();
    let raft = spawn_raft(id, &kv, &config, sm).await?;
    let lease = Arc::new(Mutex::new(LeaseObs {
        observed_at: openraft::TokioInstant::now(),
        leader: false,
        sole_voter: false,
        millis_since_quorum_ack: None,
        transferring: false,
    }));
    spawn_lease_observer(id, &raft, lease.clone());
    Ok(RaftNode {
        id,
        raft,
        state,
        shared,
        kv,
        config,
        lease,
    })
}

async fn spawn_raft(
    id: NodeId,
    kv: &Kv,
    config: &RaftConfig,
    sm: StateMachine,
) -> Result<Raft<TypeConfig>, NodeError> {
    let oc = Arc::new(config.to_openraft()?);
    let net = NetworkFactory {
        my_id: id,
        connect_timeout: config.connect_timeout,
    };
    Ok(Raft::new(id, oc, net, LogStore::new(kv.clone()), sm).await?)
}

/// Follow the metrics of `raft`, recording what they say and when they were seen (for the lease check).
fn spawn_lease_observer(id: NodeId, raft: &Raft<TypeConfig>, lease: Arc<Mutex<LeaseObs>>) {
    let mut rx = raft.metrics();
    tokio::spawn(async move {
        loop {
            {
                let m = rx.borrow_and_update();
                let mut voters = m.membership_config.membership().voter_ids();
                let sole_voter = voters.next() == Some(id) && voters.next().is_none();
                let mut l = lock(&lease);
                l.observed_at = openraft::TokioInstant::now();
                l.leader = m.state == ServerState::Leader && m.current_leader == Some(id);
                l.sole_voter = sole_voter;
                l.millis_since_quorum_ack = m.millis_since_quorum_ack;
            }
            if rx.changed().await.is_err() {
                // The Raft stopped.
                let mut l = lock(&lease);
                l.leader = false;
                return;
            }
        }
    });
}

impl RaftNode {
    /// Subscribe to the commands applied from now on, in log order (also on followers). After a
    /// [`RaftNode::promote`] the log after the last snapshot is re-applied and re-published: subscribers should
    /// skip log ids they have already seen. A subscriber that falls [`store::APPLIED_CHANNEL`] entries behind
    /// gets `Lagged` and must resynchronise from [`RaftNode::state`].
    pub fn subscribe_applied(&self) -> tokio::sync::broadcast::Receiver<Applied> {
        self.shared.applied_tx.subscribe()
    }

    /// The node's current metrics.
    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow().clone()
    }

    /// The configuration this node runs with.
    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    /// Whether this node may serve as leader now: it is leader, and a quorum acknowledged it (heartbeat or
    /// append) less than `election_timeout_min` ago, counting the age of the observed metrics. A sole voter
    /// needs no acknowledgement. See the module's lease invariant.
    pub fn lease_valid(&self) -> bool {
        {
            let m = self.raft.metrics();
            let m = m.borrow();
            if m.state != ServerState::Leader || m.current_leader != Some(self.id) {
                return false;
            }
        }
        let l = lock(&self.lease);
        if !l.leader || l.transferring {
            return false;
        }
        if l.sole_voter {
            return true;
        }
        let Some(ms) = l.millis_since_quorum_ack else {
            return false;
        };
        let since = Duration::from_millis(ms) + l.observed_at.elapsed();
        since < self.config.election_timeout_min
    }

    /// The current leader known to this node, with its address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        Some((id, addr))
    }

    /// Voters of the current (effective) membership with their addresses.
    pub fn members(&self) -> Vec<(NodeId, String)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        mem.voter_ids()
            .map(|id| {
                (
                    id,
                    mem.get_node(&id)
                        .map(|n| n.addr.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Whether this node has a vote or a log (was initialized or joined a group).
    pub async fn is_initialized(&self) -> Result<bool, NodeError> {
        Ok(self.raft.is_initialized().await?)
    }

    /// Form a new group with `members` (which should include this node), unless this node already has a vote or
    /// a log: then it does nothing (so a restart may call it again). The other members must be started empty.
    pub async fn initialize(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<(), NodeError> {
        if self.is_initialized().await? {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(RaftError::APIError(e)) => Err(NodeError::Refused(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    fn write_err(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> NodeError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                NodeError::NotLeader(f.leader_id)
            }
            RaftError::APIError(e) => NodeError::Refused(e.to_string()),
            RaftError::Fatal(f) => f.into(),
        }
    }

    /// Add `id` (listening at `addr`) as a learner and wait until it caught up (leader only).
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), NodeError> {
        self.raft
            .add_learner(id, BasicNode { addr }, true)
            .await
            .map_err(Self::write_err)?;
        Ok(())
    }

    /// Add `id` (at `addr`) as a voter: first as a learner that catches up, then into the voter set (leader
    /// only). Idempotent.
    pub async fn add_member(&self, id: NodeId, addr: String) -> Result<(), NodeError> {
        self.add_learner(id, addr).await?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(Self::write_err)?;
        Ok(())
    }

    /// Remove voter `id` from the group (leader only; removing the leader itself makes it step down once the
    /// new configuration commits). The node is dropped entirely (not kept as a learner).
    pub async fn remove_member(&self, id: NodeId) -> Result<(), NodeError> {
        self.raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
            .await
            .map_err(Self::write_err)?;
        Ok(())
    }

    /// Force a one-member configuration of this node (Postgres-XC's `gtm_ctl promote` of a standby), for when
    /// the other members are lost for good.
    ///
    /// Shuts this Raft down, appends directly to the log a membership entry holding only this node (at the next
    /// index, in a new term above every term seen), saves a committed vote of that term for itself (fsynced),
    /// and restarts Raft from the same storage: it comes back as the leader of a group of one, and everything in
    /// its log, committed or not, becomes committed.
    ///
    /// **Unsafe if the other members are alive and still form a quorum**: they keep electing leaders and
    /// committing in the old configuration while this node leads its own, so two leaders issue the same GXIDs
    /// (split brain); and entries they committed that this node lacks are lost. Only promote a node whose peers
    /// are known dead (or fenced), and never bring them back without wiping them and re-adding them as new
    /// members.
    pub async fn promote(&mut self) -> Result<(), NodeError> {
        let me = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&self.id)
            .cloned()
            .ok_or_else(|| NodeError::Refused(format!("node {} is not a member", self.id)))?;
        lock(&self.lease).leader = false;
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown for promote");
        }
        let log = LogStore::new(self.kv.clone());
        let last = log.last_log_id()?;
        let vote = log.vote()?.unwrap_or_default();
        let term = vote
            .leader_id()
            .get_term()
            .max(last.map(|l| l.leader_id.term).unwrap_or(0))
            + 1;
        let index = last.map(|l| l.index + 1).unwrap_or(0);
        let membership = openraft::Membership::new(
            vec![BTreeSet::from([self.id])],
            BTreeMap::from([(self.id, me)]),
        );
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(term, self.id), index),
            payload: EntryPayload::Membership(membership),
        };
        log.force_append(&[entry], &openraft::Vote::new_committed(term, self.id))?;
        tracing::warn!(
            id = self.id,
            term,
            index,
            "promoted to a one-member GTM group"
        );

        // Restart from storage, keeping the shared state handle and the applied-command channel: the state is
        // reset to the snapshot and the log re-applied on top of it.
        let sm = StateMachine::reopen(self.kv.clone(), self.shared.clone())?;
        self.raft = spawn_raft(self.id, &self.kv, &self.config, sm).await?;
        spawn_lease_observer(self.id, &self.raft, self.lease.clone());
        Ok(())
    }

    /// Hand leadership to voter `to`, best effort (openraft 0.9 has no transfer API). Returns whether `to` is
    /// the leader when this returns.
    ///
    /// The lease is dropped at once (this node serves nothing from now on), the target is given up to an
    /// election timeout to catch up with the log, then asked to campaign at once (a leader grants a vote to an
    /// up-to-date candidate of a higher term; see the module notes). If that did not work, heartbeats are
    /// paused until the followers' leases expire and the target is asked to campaign again after that.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<bool, NodeError> {
        if to == self.id {
            return Ok(self.lease_valid());
        }
        let m = self.metrics();
        if m.current_leader != Some(self.id) || m.state != ServerState::Leader {
            return Err(NodeError::NotLeader(m.current_leader));
        }
        let mem = m.membership_config.membership();
        if !mem.voter_ids().any(|v| v == to) {
            return Err(NodeError::Refused(format!("node {to} is not a voter")));
        }
        let addr = mem
            .get_node(&to)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        lock(&self.lease).transferring = true;
        let res = self.do_transfer(to, addr).await;
        self.raft.runtime_config().heartbeat(true);
        lock(&self.lease).transferring = false;
        res
    }

    async fn do_transfer(&self, to: NodeId, addr: String) -> Result<bool, NodeError> {
        let max = self.config.election_timeout_max;
        // Let the target catch up with our log (else it cannot win).
        let caught_up = |m: &Metrics| {
            let mine = m.last_log_index;
            let theirs = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&to).cloned().flatten())
                .map(|l| l.index);
            theirs.is_some() && theirs == mine
        };
        let mut rx = self.raft.metrics();
        let _ = tokio::time::timeout(max, async {
            while !caught_up(&rx.borrow_and_update()) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        let mut client = PeerClient::new(self.id, to, addr, self.config.connect_timeout);
        let ttl = max;
        // 1: campaign now.
        if client.timeout_now(Duration::ZERO, ttl).await.is_ok() && self.wait_leader(to, max).await
        {
            return Ok(true);
        }
        tracing::info!(
            to,
            "leader transfer: immediate campaign failed; pausing heartbeats"
        );
        // 2: silence the heartbeats so the followers' leases lapse, then campaign.
        self.raft.runtime_config().heartbeat(false);
        let delay = max + self.config.heartbeat_interval;
        if let Err(e) = client.timeout_now(delay, ttl).await {
            tracing::info!(to, error = %e, "leader transfer: target unreachable");
            return Ok(false);
        }
        Ok(self.wait_leader(to, delay + 2 * max).await)
    }

    /// Wait up to `within` for this node's metrics to name `to` as leader.
    async fn wait_leader(&self, to: NodeId, within: Duration) -> bool {
        let mut rx = self.raft.metrics();
        tokio::time::timeout(within, async {
            while rx.borrow_and_update().current_leader != Some(to) {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// Stop the Raft node (pending client writes fail). The storage stays as is for a restart.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        lock(&self.lease).leader = false;
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        Ok(())
    }
}
