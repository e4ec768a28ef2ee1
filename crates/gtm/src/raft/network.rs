//! The GTM group's Raft RPC over TCP (the workspace tokio alias: real sockets, or madsim's simulated TCP).
//!
//! Connection protocol: the connecting peer sends [`Hello::Peer`] as the first frame (read by the GTM server,
//! which then hands the stream to [`serve_peer`]), then [`PeerRequest`] frames, each answered by exactly one
//! [`PeerResponse`] frame before the next request (one outstanding request per connection). Frames are
//! [`pgxc_common::frame`]s (postcard, length-prefixed, flushed after each write).
//!
//! The client side ([`PeerClient`]) keeps one connection per target, (re)connects lazily, bounds the connect
//! and every RPC by a timeout, and drops the connection on any error, reporting it to openraft as a
//! `NetworkError` (retried on the next heartbeat; see [`PeerClient`] for why not `Unreachable`). A malformed
//! frame closes only that connection.
//!
//! **Invariant:** a response is only ever matched to the request just sent on the same connection; a
//! connection that timed out or failed mid-RPC is discarded, never reused.

use super::{NodeId, TypeConfig};
use crate::proto::Hello;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use pgxc_common::frame::{read_frame, write_frame, FrameError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::net::TcpStream;

/// A Raft RPC from one GTM replica to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// openraft AppendEntries (also the heartbeat).
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// openraft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Leadership transfer: the receiver starts an election after `delay_ms` (once the old leader's lease has
    /// expired at the other voters). Answered with [`PeerResponse::Ok`].
    TimeoutNow {
        /// Milliseconds to wait before campaigning.
        delay_ms: u64,
    },
}

/// The answer to a [`PeerRequest`] (same variant).
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// AppendEntries result.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Vote result.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// InstallSnapshot result.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Accepted (TimeoutNow).
    Ok,
}

/// Serve Raft RPCs from one peer connection until it closes or sends a malformed frame.
///
/// The GTM server calls this after it accepted `stream` and read the [`Hello::Peer`] frame. Errors end only this
/// connection.
pub async fn serve_peer(mut stream: TcpStream, raft: Raft<TypeConfig>) {
    loop {
        let req: PeerRequest = match read_frame(&mut stream).await {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::debug!(error = %e, "raft peer connection closed");
                return;
            }
        };
        let resp = match req {
            PeerRequest::AppendEntries(r) => {
                PeerResponse::AppendEntries(raft.append_entries(r).await)
            }
            PeerRequest::Vote(r) => PeerResponse::Vote(raft.vote(r).await),
            PeerRequest::InstallSnapshot(r) => {
                PeerResponse::InstallSnapshot(raft.install_snapshot(r).await)
            }
            PeerRequest::TimeoutNow { delay_ms } => {
                let raft = raft.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    let _ = raft.trigger().elect().await;
                });
                PeerResponse::Ok
            }
        };
        if let Err(e) = write_frame(&mut stream, &resp).await {
            tracing::debug!(error = %e, "raft peer connection closed while answering");
            return;
        }
    }
}

/// Creates a [`PeerClient`] per replication target.
#[derive(Clone, Debug)]
pub struct NetworkFactory {
    /// This node's id (sent in [`Hello::Peer`]).
    pub my_id: NodeId,
    /// Bound on establishing a connection (and sending the hello).
    pub connect_timeout: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient::new(self.my_id, target, node.addr.clone(), self.connect_timeout)
    }
}

/// Why an RPC attempt failed locally.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("connect to {0} timed out")]
    ConnectTimeout(String),
    #[error("rpc to {0} timed out")]
    RpcTimeout(String),
    #[error("connect to {addr}: {err}")]
    Connect { addr: String, err: std::io::Error },
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("peer answered with the wrong response kind")]
    Mismatch,
}

/// The RPC client to one peer: one lazily (re)connected TCP connection, one outstanding request.
#[derive(Debug)]
pub struct PeerClient {
    my_id: NodeId,
    target: NodeId,
    addr: String,
    connect_timeout: Duration,
    /// The idle connection, if any. In a `Mutex` only to make the client `Sync` (openraft requires it, and
    /// madsim's `TcpStream` is not `Sync`); always reached through `&mut self` (`get_mut`, no locking).
    conn: std::sync::Mutex<Option<TcpStream>>,
}

impl PeerClient {
    /// A client from `my_id` to `target` at `addr` ("host:port"); nothing is connected yet.
    pub fn new(
        my_id: NodeId,
        target: NodeId,
        addr: String,
        connect_timeout: Duration,
    ) -> PeerClient {
        PeerClient {
            my_id,
            target,
            addr,
            connect_timeout,
            conn: std::sync::Mutex::new(None),
        }
    }

    async fn connect(&mut self, timeout: Duration) -> Result<TcpStream, CallError> {
        let addr = self.addr.clone();
        let from = self.my_id;
        let fut = async move {
            let mut s =
                TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|err| CallError::Connect {
                        addr: addr.clone(),
                        err,
                    })?;
            let _ = s.set_nodelay(true);
            write_frame(&mut s, &Hello::Peer { from }).await?;
            Ok::<_, CallError>(s)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(CallError::ConnectTimeout(self.addr.clone())),
        }
    }

    /// Send `req` and wait for its response within `ttl`; any failure drops the connection.
    async fn call(&mut self, req: &PeerRequest, ttl: Duration) -> Result<PeerResponse, CallError> {
        let deadline = tokio::time::Instant::now() + ttl;
        let idle = self
            .conn
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut stream = match idle {
            Some(s) => s,
            None => self.connect(self.connect_timeout.min(ttl)).await?,
        };
        let rpc = async {
            write_frame(&mut stream, req).await?;
            let resp: PeerResponse = read_frame(&mut stream).await?;
            Ok::<_, CallError>(resp)
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let resp = match tokio::time::timeout(remaining, rpc).await {
            Ok(r) => r?,
            Err(_) => return Err(CallError::RpcTimeout(self.addr.clone())),
        };
        // Only a connection that completed a request/response exchange is kept.
        *self.conn.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(stream);
        Ok(resp)
    }

    fn unreachable<E: std::error::Error>(&self, e: CallError) -> RPCError<NodeId, BasicNode, E> {
        tracing::debug!(target = self.target, error = %e, "raft rpc failed");
        // Every failure is reported as a `NetworkError`, never `Unreachable`: openraft 0.9 answers `Unreachable`
        // with a backoff loop built on an unbiased `tokio::select!`, whose branch choice comes from a
        // process-global seed and breaks madsim's determinism check. Without backoff the next heartbeat retries;
        // the connect timeout bounds each attempt.
        RPCError::Network(NetworkError::new(&e))
    }

    /// Ask the target to start an election after `delay` (leadership transfer, best effort).
    pub async fn timeout_now(&mut self, delay: Duration, ttl: Duration) -> Result<(), String> {
        let req = PeerRequest::TimeoutNow {
            delay_ms: delay.as_millis() as u64,
        };
        match self.call(&req, ttl).await {
            Ok(PeerResponse::Ok) => Ok(()),
            Ok(_) => Err(CallError::Mismatch.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .call(&PeerRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerResponse::AppendEntries(Ok(r))) => Ok(r),
            Ok(PeerResponse::AppendEntries(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unreachable(CallError::Mismatch)),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(&PeerRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerResponse::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(PeerResponse::InstallSnapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unreachable(CallError::Mismatch)),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Vote(Ok(r))) => Ok(r),
            Ok(PeerResponse::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(self.unreachable(CallError::Mismatch)),
            Err(e) => Err(self.unreachable(e)),
        }
    }
}
