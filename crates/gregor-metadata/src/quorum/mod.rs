//! The Raft quorum that replicates the metadata log, built on `openraft` 0.9.
//!
//! [`MetadataQuorum`] is the whole of it as the broker sees it: start it with a
//! [`QuorumConfig`], read the committed [`MetadataImage`] from [`MetadataQuorum::image`], send
//! controller requests with [`MetadataQuorum::request`] (they reach the active controller
//! wherever it runs), and shut it down.
//!
//! Modules, one job each:
//! - `types`: the openraft type configuration (one entry = one `Vec<MetadataRecord>`);
//! - `log_store`: the durable Raft log and vote (`RaftLogStorage`);
//! - `state_machine`: applies entries to the image, publishes it, and snapshots it;
//! - `transport`: framed TCP, the peer connection pools and the CONTROLLER listener's server;
//! - `active`: hosts the `Controller` on the leader and answers peers' requests.
//!
//! A lone voter without a listener is a one-node Raft with no network at all: it initializes
//! itself on first start and leads at once (also after a restart, since its committed vote is
//! restored). Several voters all `initialize` with the same voter set on first start (openraft
//! accepts identical initialization everywhere) and elect a leader. Observers (broker-only
//! nodes) join as Raft learners: they receive and apply the log but never vote.

mod active;
mod files;
mod log_store;
mod state_machine;
#[cfg(test)]
mod tests;
mod transport;
mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, SnapshotPolicy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controller::{ControllerConfig, ControllerRequest, ControllerResponse};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use active::QuorumNode;
use transport::{NetworkFactory, RemoteFailure, RpcRequest, RpcResponse, Transport};
use types::raft_id;

/// How often the active controller's `tick` runs.
const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// Longest pause between retries of a request.
const MAX_BACKOFF: Duration = Duration::from_millis(200);
/// Timeout of one peer call made on behalf of [`MetadataQuorum::request`].
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What part a node plays in the quorum (from `process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// `process.roles` contains `controller`: votes, and may become the active controller.
    Voter,
    /// Broker-only: replicates and applies the log as a Raft learner, never votes or leads.
    Observer,
}

/// How to run this node's part of the quorum (Kafka's keys in brackets).
#[derive(Debug)]
pub struct QuorumConfig {
    /// This node's `node.id` (non-negative).
    pub node_id: i32,
    /// Voter or observer.
    pub role: NodeRole,
    /// Every voter's id and the `host:port` of its CONTROLLER listener
    /// (`controller.quorum.voters`).
    pub voters: BTreeMap<i32, String>,
    /// This node's bound CONTROLLER listener; `None` only for a lone voter with no network.
    pub listener: Option<tokio::net::TcpListener>,
    /// `host:port` other nodes reach this node at; observers must have one.
    pub advertised: Option<String>,
    /// Where the Raft log, vote and snapshots live (`<log.dirs[0]>/__cluster_metadata-0`).
    pub metadata_dir: PathBuf,
    /// Election timeout (`controller.quorum.election.timeout.ms`, Kafka's default 1000); the
    /// actual timeout is drawn between this and twice this.
    pub election_timeout_ms: u64,
    /// How often the leader heartbeats followers; must be below the election timeout.
    pub heartbeat_interval_ms: u64,
    /// Snapshot the image after this many entries applied since the last snapshot, and purge
    /// the log behind it.
    pub snapshot_every_entries: u64,
    /// Settings of the controller this node hosts while it leads.
    pub controller: ControllerConfig,
}

impl QuorumConfig {
    /// A lone voter with no network, storing in `metadata_dir`: the single-node default.
    pub fn single_node(node_id: i32, metadata_dir: PathBuf) -> QuorumConfig {
        QuorumConfig {
            node_id,
            role: NodeRole::Voter,
            voters: BTreeMap::from([(node_id, String::new())]),
            listener: None,
            advertised: None,
            metadata_dir,
            election_timeout_ms: 1000,
            heartbeat_interval_ms: 200,
            snapshot_every_entries: 20_000,
            controller: ControllerConfig::default(),
        }
    }
}

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The configuration cannot work (e.g. this voter is not in `voters`).
    #[error("invalid quorum configuration: {0}")]
    Config(String),
    /// Reading or writing the metadata directory failed.
    #[error("metadata storage error in {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// openraft reported an error (storage failure, shutdown…).
    #[error("raft error: {0}")]
    Raft(String),
    /// This node is not the active controller; `leader` is the one it knows of.
    #[error("not the active controller (leader: {leader:?})")]
    NotController {
        /// The current leader, if known.
        leader: Option<i32>,
    },
    /// Talking to another quorum node failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The active controller failed while deciding (a bug; the request was not applied).
    #[error("controller failed: {0}")]
    ControllerFailed(String),
    /// The remote active controller reported a failure.
    #[error("remote controller error: {0}")]
    Remote(String),
    /// No active controller answered within the caller's timeout.
    #[error("no active controller answered within {0:?}")]
    Timeout(Duration),
}

impl QuorumError {
    /// Worth retrying (possibly against another node)?
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            QuorumError::NotController { .. } | QuorumError::Transport(_) | QuorumError::Timeout(_)
        )
    }
}

/// This node's member of the metadata quorum; see the module docs.
///
/// # Example
///
/// A single-node cluster: one voter with no network, leading as soon as it starts.
///
/// ```no_run
/// use gregor_metadata::{MetadataQuorum, QuorumConfig};
///
/// # async fn demo() -> Result<(), gregor_metadata::QuorumError> {
/// let config = QuorumConfig::single_node(1, "gregor-data/__cluster_metadata-0".into());
/// let quorum = MetadataQuorum::start(config).await?;
/// let image = quorum.image();
/// println!("metadata applied up to offset {}", image.borrow().offset);
/// quorum.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct MetadataQuorum {
    node: Arc<QuorumNode>,
    image: watch::Receiver<Arc<MetadataImage>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

fn validate(config: &QuorumConfig) -> Result<(), QuorumError> {
    let bad = |m: String| Err(QuorumError::Config(m));
    if config.node_id < 0 {
        return bad(format!("node.id {} must not be negative", config.node_id));
    }
    if let Some(id) = config.voters.keys().find(|id| **id < 0) {
        return bad(format!("voter id {id} must not be negative"));
    }
    if config.heartbeat_interval_ms == 0
        || config.heartbeat_interval_ms >= config.election_timeout_ms
    {
        return bad(format!(
            "heartbeat interval {} ms must be positive and below the election timeout {} ms",
            config.heartbeat_interval_ms, config.election_timeout_ms
        ));
    }
    match config.role {
        NodeRole::Voter => {
            if !config.voters.contains_key(&config.node_id) {
                return bad(format!(
                    "voter {} is not in controller.quorum.voters",
                    config.node_id
                ));
            }
            if config.voters.len() > 1 && config.listener.is_none() {
                return bad("a voter of a multi-voter quorum needs a CONTROLLER listener".into());
            }
        }
        NodeRole::Observer => {
            if config.voters.contains_key(&config.node_id) {
                return bad(format!("observer {} is listed as a voter", config.node_id));
            }
            if config.voters.is_empty() {
                return bad("an observer needs controller.quorum.voters".into());
            }
            if config.listener.is_none() || config.advertised.is_none() {
                return bad(
                    "an observer needs a CONTROLLER listener and an advertised address".into(),
                );
            }
        }
    }
    Ok(())
}

impl MetadataQuorum {
    /// Opens the metadata directory, starts Raft (initializing the voter set on first start),
    /// serves the CONTROLLER listener and starts hosting the controller when this node leads.
    /// Returns once everything runs; leadership and catch-up continue in the background.
    pub async fn start(config: QuorumConfig) -> Result<MetadataQuorum, QuorumError> {
        validate(&config)?;
        let dir = config.metadata_dir.clone();
        let io_err = |source| QuorumError::Io {
            path: dir.clone(),
            source,
        };
        let log_store = log_store::LogStore::open(&dir).map_err(io_err)?;
        let (publish, image) = watch::channel(Arc::new(MetadataImage::default()));
        let state_machine = state_machine::StateMachine::open(&dir, publish).map_err(io_err)?;

        let snapshot_every = config.snapshot_every_entries.max(1);
        let raft_config = openraft::Config {
            cluster_name: "gregor-metadata".into(),
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            heartbeat_interval: config.heartbeat_interval_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
            max_in_snapshot_log_to_keep: snapshot_every.min(1000),
            // JSON carries chunk bytes as numbers (up to 4x): keep frames a few MiB at most.
            snapshot_max_chunk_size: 256 * 1024,
            // A chunk must not time out on a busy link just because heartbeats are fast.
            install_snapshot_timeout: config.election_timeout_ms.max(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;

        let transport = Arc::new(Transport::default());
        let network = NetworkFactory {
            transport: transport.clone(),
        };
        let raft = openraft::Raft::new(
            raft_id(config.node_id),
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))?;

        let node = Arc::new(QuorumNode::new(
            config.node_id,
            raft.clone(),
            image.clone(),
            transport,
            config.voters.clone(),
            config.controller.clone(),
        ));
        let mut tasks = Vec::new();
        if let Some(listener) = config.listener {
            tasks.push(transport::serve(listener, node.clone()));
        }
        tasks.push(tokio::spawn(active::tick_loop(node.clone(), TICK_INTERVAL)));
        let quorum = MetadataQuorum {
            node,
            image,
            tasks: std::sync::Mutex::new(tasks),
        };

        match config.role {
            NodeRole::Voter => {
                let members: BTreeMap<u64, BasicNode> = config
                    .voters
                    .iter()
                    .map(|(id, addr)| (raft_id(*id), BasicNode { addr: addr.clone() }))
                    .collect();
                let initialized = raft
                    .is_initialized()
                    .await
                    .map_err(|e| QuorumError::Raft(e.to_string()))?;
                if !initialized {
                    match raft.initialize(members).await {
                        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                        Err(e) => {
                            quorum.shutdown().await;
                            return Err(QuorumError::Raft(e.to_string()));
                        }
                    }
                }
                if config.voters.len() == 1 {
                    // A lone voter needs nobody: return leading, with its whole log applied, so
                    // that a single-node broker can write and read at once.
                    let id = raft_id(config.node_id);
                    let wait = Duration::from_millis(2 * config.election_timeout_ms + 1000);
                    let ready = raft
                        .wait(Some(wait))
                        .metrics(
                            |m| {
                                m.state == openraft::ServerState::Leader
                                    && m.current_leader == Some(id)
                                    && m.last_applied.map(|l| l.index) >= m.last_log_index
                            },
                            "lone voter leads",
                        )
                        .await;
                    if let Err(e) = ready {
                        tracing::warn!(error = %e, "lone voter is not leading yet");
                    }
                }
            }
            NodeRole::Observer => {
                let addr = config.advertised.unwrap_or_default();
                let node = quorum.node.clone();
                quorum
                    .tasks
                    .lock()
                    .expect("not poisoned")
                    .push(tokio::spawn(join_loop(node, addr)));
                return Ok(quorum);
            }
        }
        Ok(quorum)
    }

    /// The committed image, republished after each applied batch of entries and on snapshot
    /// install: what brokers serve from and act on.
    pub fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// Node id of the active controller (the Raft leader), if known.
    pub fn leader(&self) -> Option<i32> {
        self.node.leader()
    }

    /// Appends `records` as one entry (applied atomically) and waits until it is committed and
    /// applied here; returns its log index. Only on the leader (`NotController` elsewhere). The
    /// controller glue writes its decisions the same way; this is the raw primitive, for tools
    /// and tests that already know which records to write.
    pub async fn append(&self, records: Vec<MetadataRecord>) -> Result<u64, QuorumError> {
        self.node.append(records).await
    }

    /// Sends `request` to the active controller wherever it runs (here if this node leads,
    /// else over TCP to the leader), retrying with a small backoff on `NotController` and
    /// connection errors until `timeout` (then [`QuorumError::Timeout`]). A request retried
    /// after a lost connection may have been applied already: the controller answers such
    /// repeats as Kafka's does (e.g. `TOPIC_ALREADY_EXISTS`).
    pub async fn request(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, QuorumError> {
        match route(&self.node, RpcRequest::Controller(request), timeout).await? {
            RpcResponse::Controller(r) => r.map_err(from_remote),
            _ => Err(QuorumError::Transport("unexpected response".into())),
        }
    }

    /// Stops serving, leaves the quorum's tasks and shuts Raft down (everything acknowledged is
    /// already on disk).
    pub async fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("not poisoned"));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Err(e) = self.node.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
    }
}

fn from_remote(f: RemoteFailure) -> QuorumError {
    match f {
        RemoteFailure::NotLeader { leader } => QuorumError::NotController { leader },
        RemoteFailure::Failed(m) => QuorumError::Remote(m),
    }
}

/// The refusal in a routed response, if any.
fn refusal(response: &RpcResponse) -> Option<&RemoteFailure> {
    match response {
        RpcResponse::Controller(Err(f)) | RpcResponse::Join(Err(f)) => Some(f),
        _ => None,
    }
}

/// Sends a leader-only request (`Controller` or `Join`) to the leader: handled here if this
/// node leads, else sent to the leader this node knows of, else to the leader named by the
/// last refusal, else to each voter in turn. Retries with a small backoff on `NotLeader` and
/// transport errors until `timeout`.
async fn route(
    node: &QuorumNode,
    request: RpcRequest,
    timeout: Duration,
) -> Result<RpcResponse, QuorumError> {
    use transport::RpcHandler as _;
    let deadline = tokio::time::Instant::now() + timeout;
    let voters: Vec<i32> = node.voters.keys().copied().collect();
    let mut next_voter = 0usize;
    let mut hint: Option<i32> = None;
    let mut backoff = Duration::from_millis(10);
    let mut metrics = node.raft.metrics();
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(QuorumError::Timeout(timeout));
        }
        let target = node.leader().or(hint).or_else(|| {
            next_voter += 1;
            voters.get(next_voter % voters.len().max(1)).copied()
        });
        let attempt = async {
            match target {
                Some(t) if t == node.id => match &request {
                    RpcRequest::Controller(r) => match node.handle_local(r.clone()).await {
                        Ok(response) => Ok(RpcResponse::Controller(Ok(response))),
                        Err(QuorumError::NotController { leader }) => {
                            Ok(RpcResponse::Controller(Err(RemoteFailure::NotLeader {
                                leader,
                            })))
                        }
                        Err(e) => Err(e),
                    },
                    other => Ok(node.handle(other.clone()).await),
                },
                Some(t) => {
                    let addr = node
                        .address_of(t)
                        .filter(|a| !a.is_empty())
                        .ok_or(QuorumError::NotController { leader: None })?;
                    node.transport
                        .call(&addr, &request, remaining.min(CALL_TIMEOUT))
                        .await
                        .map_err(|e| QuorumError::Transport(e.to_string()))
                }
                None => Err(QuorumError::NotController { leader: None }),
            }
        };
        let outcome = match tokio::time::timeout(remaining, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => return Err(QuorumError::Timeout(timeout)),
        };
        match outcome {
            Ok(response) => match refusal(&response) {
                Some(RemoteFailure::NotLeader { leader }) => {
                    tracing::debug!(?target, ?leader, "not the leader; retrying");
                    hint = leader.filter(|l| Some(*l) != target);
                }
                _ => return Ok(response),
            },
            Err(e) if e.is_retryable() => {
                tracing::debug!(?target, error = %e, "leader unreachable; retrying");
                hint = None;
            }
            Err(e) => return Err(e),
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        // Wake early when Raft learns of a (new) leader.
        let _ = tokio::time::timeout(backoff.min(remaining), metrics.changed()).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Observers: ask the leader to replicate to us until it has said yes.
async fn join_loop(node: Arc<QuorumNode>, addr: String) {
    let id = node.id;
    loop {
        let request = RpcRequest::Join {
            node_id: id,
            addr: addr.clone(),
        };
        let result = match route(&node, request, Duration::from_secs(30)).await {
            Ok(RpcResponse::Join(r)) => r.map_err(from_remote),
            Ok(_) => Err(QuorumError::Transport("unexpected response".into())),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(node_id = id, "joined the metadata quorum as an observer");
                return;
            }
            Err(e) => {
                tracing::warn!(node_id = id, error = %e, "could not join the metadata quorum yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
