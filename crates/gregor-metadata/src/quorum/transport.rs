//! The quorum's TCP transport: framing, the request/response messages, a per-peer connection
//! pool (openraft's `RaftNetworkFactory`) and the server loop of the CONTROLLER listener.
//!
//! A frame is a `u32` big-endian length followed by that many bytes of JSON. JSON because the
//! crate already speaks serde_json, every openraft message derives serde, metadata traffic is
//! small, and frames stay readable when debugging. A frame longer than [`MAX_FRAME`] or that
//! does not parse closes that connection only (with a warning); the server keeps serving.
//!
//! Each peer has a pool of idle connections: a call takes one (or dials a new one lazily),
//! sends one request, reads one response and returns the connection to the pool. Any I/O
//! error drops the connection, and openraft sees `Unreachable` and backs off.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::types::{RaftNodeId, TypeConfig};
use crate::controller::{ControllerRequest, ControllerResponse};

/// Largest frame either side accepts (snapshot chunks are capped well below it).
pub const MAX_FRAME: u32 = 64 * 1024 * 1024;
/// How long dialing a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per peer.
const MAX_IDLE: usize = 4;

/// A request from one quorum node to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcRequest {
    /// Raft log replication / heartbeat.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<RaftNodeId>),
    /// One chunk of a snapshot for a lagging follower.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A request for the active controller.
    Controller(ControllerRequest),
    /// An observer asks the leader to replicate the log to it.
    Join {
        /// The observer's `node.id`.
        node_id: i32,
        /// Where the leader reaches it.
        addr: String,
    },
}

/// Why a controller-level request failed on the remote node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RemoteFailure {
    /// The remote is not the active controller; retry at `leader` if known.
    NotLeader {
        /// The leader the remote knows of.
        leader: Option<i32>,
    },
    /// Anything else, described.
    Failed(String),
}

/// The answer to an [`RpcRequest`], same variant.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    /// To `AppendEntries`.
    AppendEntries(Result<AppendEntriesResponse<RaftNodeId>, RaftError<RaftNodeId>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<RaftNodeId>, RaftError<RaftNodeId>>),
    /// To `InstallSnapshot`.
    InstallSnapshot(
        Result<InstallSnapshotResponse<RaftNodeId>, RaftError<RaftNodeId, InstallSnapshotError>>,
    ),
    /// To `Controller`.
    Controller(Result<ControllerResponse, RemoteFailure>),
    /// To `Join`.
    Join(Result<(), RemoteFailure>),
}

/// Transport failures, all retryable by dialing again.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Connect, read or write failed, or the peer closed the connection.
    #[error("I/O with {addr}: {source}")]
    Io {
        /// The peer.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The call did not finish in time.
    #[error("call to {0} timed out")]
    Timeout(String),
    /// The peer answered with a different kind of message.
    #[error("unexpected response from {0}")]
    Unexpected(String),
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large to send"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    stream.write_all(&buf).await?;
    stream.flush().await
}

/// Reads one frame; `Ok(None)` on a clean close before a frame starts. Oversized or garbage
/// frames are `InvalidData` errors.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut TcpStream,
) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Idle connections to one peer address.
#[derive(Default)]
struct PeerPool {
    idle: Mutex<Vec<TcpStream>>,
}

/// The client side: connection pools to every peer this node talks to.
#[derive(Default)]
pub struct Transport {
    peers: Mutex<HashMap<String, Arc<PeerPool>>>,
}

impl Transport {
    fn pool(&self, addr: &str) -> Arc<PeerPool> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.entry(addr.to_string()).or_default().clone()
    }

    /// Sends `request` to `addr` and waits at most `timeout` for its response.
    pub async fn call(
        &self,
        addr: &str,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, TransportError> {
        let pool = self.pool(addr);
        let io_err = |source| TransportError::Io {
            addr: addr.to_string(),
            source,
        };
        let exchange = async {
            // A pooled connection may have been closed by the peer since (e.g. it restarted):
            // if one fails, try once more on a fresh connection.
            loop {
                let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let reused = idle.is_some();
                let mut stream = match idle {
                    Some(s) => s,
                    None => {
                        let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                            .await
                            .map_err(|_| io_err(io::ErrorKind::TimedOut.into()))?
                            .map_err(io_err)?;
                        s.set_nodelay(true).map_err(io_err)?;
                        s
                    }
                };
                let response = match exchange_one(&mut stream, request).await {
                    Ok(r) => r,
                    Err(_) if reused => continue,
                    Err(e) => return Err(io_err(e)),
                };
                let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(stream);
                }
                return Ok(response);
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout(addr.to_string()))?
    }
}

/// Sends one request on `stream` and reads its response.
async fn exchange_one(stream: &mut TcpStream, request: &RpcRequest) -> io::Result<RpcResponse> {
    write_frame(stream, request).await?;
    read_frame::<RpcResponse>(stream)
        .await?
        .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// openraft's network factory: one [`PeerClient`] per replication target, sharing the pools.
pub struct NetworkFactory {
    /// The pools.
    pub transport: Arc<Transport>,
}

/// openraft's client for one peer.
pub struct PeerClient {
    target: RaftNodeId,
    addr: String,
    transport: Arc<Transport>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: RaftNodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
        }
    }
}

type RpcResult<T, E> = Result<T, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>>>;

impl PeerClient {
    async fn send<T, E: std::error::Error>(
        &self,
        request: RpcRequest,
        option: &RPCOption,
        pick: impl FnOnce(RpcResponse) -> Option<Result<T, RaftError<RaftNodeId, E>>>,
    ) -> RpcResult<T, E> {
        let response = match self
            .transport
            .call(&self.addr, &request, option.hard_ttl())
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&e))),
        };
        match pick(response) {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            None => Err(RPCError::Network(NetworkError::new(
                &TransportError::Unexpected(self.addr.clone()),
            ))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftNodeId>, openraft::error::Infallible> {
        self.send(RpcRequest::AppendEntries(rpc), &option, |r| match r {
            RpcResponse::AppendEntries(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftNodeId>, InstallSnapshotError> {
        self.send(RpcRequest::InstallSnapshot(rpc), &option, |r| match r {
            RpcResponse::InstallSnapshot(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftNodeId>, openraft::error::Infallible> {
        self.send(RpcRequest::Vote(rpc), &option, |r| match r {
            RpcResponse::Vote(r) => Some(r),
            _ => None,
        })
        .await
    }
}

/// What the server does with each request.
pub trait RpcHandler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, request: RpcRequest) -> impl Future<Output = RpcResponse> + Send;
}

/// Serves `listener` until the returned task is aborted (which also closes every connection).
pub fn serve<H: RpcHandler>(listener: TcpListener, handler: Arc<H>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let handler = handler.clone();
                        connections.spawn(async move {
                            if let Err(e) = serve_connection(stream, handler).await {
                                tracing::warn!(%peer, error = %e, "closing quorum connection");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "quorum listener accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

async fn serve_connection<H: RpcHandler>(mut stream: TcpStream, handler: Arc<H>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    while let Some(request) = read_frame::<RpcRequest>(&mut stream).await? {
        let response = handler.handle(request).await;
        write_frame(&mut stream, &response).await?;
    }
    Ok(())
}
