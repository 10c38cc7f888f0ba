//! Hosting the active controller on the Raft leader, and answering peers' RPCs.
//!
//! [`QuorumNode`] is the state every task of a quorum member shares. While this node is the
//! Raft leader it holds a [`Controller`] created for the current term, only after
//! `ensure_linearizable` proved that the image includes every entry committed by earlier
//! terms. Requests (local or from peers) are decided one at a time under a mutex and their
//! records written through Raft and applied locally before the answer goes out, so the next
//! request is decided against an image that includes them. A tick loop drives
//! `Controller::tick`, creates the controller soon after leadership is gained and drops it as
//! soon as leadership is lost. A panic inside the controller is caught: that request fails,
//! the controller is rebuilt from the committed image, and the quorum keeps running.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::QuorumError;
use super::transport::{RemoteFailure, RpcHandler, RpcRequest, RpcResponse, Transport};
use super::types::{RaftHandle, kafka_id, raft_id};
use crate::controller::{Controller, ControllerConfig, ControllerRequest, ControllerResponse};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// How long a new leader may take to prove it leads and has applied earlier terms' entries.
const LINEARIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The controller of one leadership term.
struct Active {
    term: u64,
    controller: Controller,
    /// `tick` panicked this term: stop calling it until the next term.
    tick_broken: bool,
}

/// State shared by a quorum member's tasks.
pub(crate) struct QuorumNode {
    pub(crate) id: i32,
    pub(crate) raft: RaftHandle,
    pub(crate) image: watch::Receiver<Arc<MetadataImage>>,
    pub(crate) transport: Arc<Transport>,
    pub(crate) voters: BTreeMap<i32, String>,
    pub(crate) controller_config: ControllerConfig,
    active: Arc<Mutex<Option<Active>>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "controller panicked".to_string())
}

impl QuorumNode {
    pub(crate) fn new(
        id: i32,
        raft: RaftHandle,
        image: watch::Receiver<Arc<MetadataImage>>,
        transport: Arc<Transport>,
        voters: BTreeMap<i32, String>,
        controller_config: ControllerConfig,
    ) -> QuorumNode {
        QuorumNode {
            id,
            raft,
            image,
            transport,
            voters,
            controller_config,
            active: Arc::new(Mutex::new(None)),
        }
    }

    /// The leader this node knows of.
    pub(crate) fn leader(&self) -> Option<i32> {
        self.raft.metrics().borrow().current_leader.map(kafka_id)
    }

    /// Where to reach node `id`: its address in the Raft membership, else the configured voter.
    pub(crate) fn address_of(&self, id: i32) -> Option<String> {
        let metrics = self.raft.metrics();
        let from_membership = metrics
            .borrow()
            .membership_config
            .nodes()
            .find(|(nid, _)| **nid == raft_id(id))
            .map(|(_, n)| n.addr.clone());
        from_membership
            .filter(|a| !a.is_empty())
            .or_else(|| self.voters.get(&id).cloned())
    }

    /// Term of this node's leadership, or `NotController` naming the leader it knows.
    fn leading_term(&self) -> Result<u64, QuorumError> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Leader && m.current_leader == Some(raft_id(self.id)) {
            Ok(m.current_term)
        } else {
            Err(QuorumError::NotController {
                leader: m.current_leader.map(kafka_id),
            })
        }
    }

    /// Makes sure `slot` holds a controller for the current term, creating one on the
    /// committed image once every earlier term's entries are applied.
    async fn ensure_active(&self, slot: &mut Option<Active>) -> Result<(), QuorumError> {
        let term = match self.leading_term() {
            Ok(t) => t,
            Err(e) => {
                *slot = None;
                return Err(e);
            }
        };
        if slot.as_ref().is_some_and(|a| a.term == term) {
            return Ok(());
        }
        *slot = None;
        // Bounded: a stale leader that cannot reach a majority must not hold the lock forever.
        let proved = tokio::time::timeout(LINEARIZE_TIMEOUT, self.raft.ensure_linearizable())
            .await
            .map_err(|_| QuorumError::NotController { leader: None })?;
        proved.map_err(|e| match e {
            RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)) => {
                QuorumError::NotController {
                    leader: f.leader_id.map(kafka_id),
                }
            }
            other => QuorumError::Raft(other.to_string()),
        })?;
        let image = self.image.borrow().clone();
        let config = self.controller_config.clone();
        let controller = catch_unwind(AssertUnwindSafe(|| Controller::new(config, now_ms())))
            .map_err(|p| QuorumError::ControllerFailed(panic_message(&*p)))?;
        tracing::info!(
            node_id = self.id,
            term,
            offset = image.offset,
            "active controller started"
        );
        *slot = Some(Active {
            term,
            controller,
            tick_broken: false,
        });
        Ok(())
    }

    /// Writes `records` as one entry and waits until it is applied here, still holding the
    /// controller lock `slot` (dropping the controller if the write fails). The write runs in
    /// its own task: a caller that gives up (timeout, dropped future) must not release the
    /// lock while the entry may still commit, or the next decision would be made against an
    /// image that misses it.
    async fn write_locked(
        &self,
        mut slot: OwnedMutexGuard<Option<Active>>,
        records: Vec<MetadataRecord>,
    ) -> Result<u64, QuorumError> {
        let raft = self.raft.clone();
        let task = tokio::spawn(async move {
            let result = match raft.client_write(records).await {
                Ok(resp) => Ok(resp.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    Err(QuorumError::NotController {
                        leader: f.leader_id.map(kafka_id),
                    })
                }
                Err(e) => Err(QuorumError::Raft(e.to_string())),
            };
            if result.is_err() {
                // The decision may be half-known to the controller's soft state: start over.
                *slot = None;
            }
            result
        });
        task.await
            .map_err(|e| QuorumError::Raft(format!("metadata write task failed: {e}")))?
    }

    /// Appends records as one entry, serialized with controller decisions (leader only).
    pub(crate) async fn append(&self, records: Vec<MetadataRecord>) -> Result<u64, QuorumError> {
        let mut slot = self.active.clone().lock_owned().await;
        if let Err(e) = self.leading_term() {
            *slot = None;
            return Err(e);
        }
        self.write_locked(slot, records).await
    }

    /// Decides one request with the local controller (this node must lead).
    pub(crate) async fn handle_local(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerResponse, QuorumError> {
        let mut slot = self.active.clone().lock_owned().await;
        self.ensure_active(&mut slot).await?;
        let Some(active) = slot.as_mut() else {
            return Err(QuorumError::NotController { leader: None });
        };
        let image = self.image.borrow().clone();
        let decided = catch_unwind(AssertUnwindSafe(|| {
            active.controller.handle(&image, request, now_ms())
        }));
        let (response, records) = match decided {
            Ok(d) => d,
            Err(p) => {
                *slot = None;
                let msg = panic_message(&*p);
                tracing::error!(error = %msg, "controller panicked handling a request");
                return Err(QuorumError::ControllerFailed(msg));
            }
        };
        if !records.is_empty() {
            self.write_locked(slot, records).await?;
        }
        Ok(response)
    }

    /// One round of the tick loop: keep the controller in step with leadership and tick it.
    pub(crate) async fn tick(&self) {
        let mut slot = self.active.clone().lock_owned().await;
        match self.ensure_active(&mut slot).await {
            Ok(()) => {}
            Err(QuorumError::NotController { .. }) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not start the active controller");
                return;
            }
        }
        let Some(active) = slot.as_mut() else { return };
        if active.tick_broken {
            return;
        }
        let image = self.image.borrow().clone();
        match catch_unwind(AssertUnwindSafe(|| {
            active.controller.tick(&image, now_ms())
        })) {
            Ok(records) if records.is_empty() => {}
            Ok(records) => {
                if let Err(e) = self.write_locked(slot, records).await {
                    tracing::warn!(error = %e, "could not write the controller's tick records");
                }
            }
            Err(p) => {
                tracing::error!(
                    error = %panic_message(&*p),
                    "controller tick panicked; not ticking again this term"
                );
                active.tick_broken = true;
            }
        }
    }

    /// Asks the leader to add this observer as a learner.
    pub(crate) async fn join(&self, node_id: i32, addr: String) -> Result<(), QuorumError> {
        self.leading_term()?;
        match self
            .raft
            .add_learner(raft_id(node_id), BasicNode { addr }, false)
            .await
        {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(QuorumError::NotController {
                    leader: f.leader_id.map(kafka_id),
                })
            }
            Err(e) => Err(QuorumError::Raft(e.to_string())),
        }
    }
}

fn remote(e: QuorumError) -> RemoteFailure {
    match e {
        QuorumError::NotController { leader } => RemoteFailure::NotLeader { leader },
        other => RemoteFailure::Failed(other.to_string()),
    }
}

impl RpcHandler for QuorumNode {
    async fn handle(&self, request: RpcRequest) -> RpcResponse {
        match request {
            RpcRequest::AppendEntries(r) => {
                RpcResponse::AppendEntries(self.raft.append_entries(r).await)
            }
            RpcRequest::Vote(r) => RpcResponse::Vote(self.raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => {
                RpcResponse::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            RpcRequest::Controller(r) => {
                RpcResponse::Controller(self.handle_local(r).await.map_err(remote))
            }
            RpcRequest::Join { node_id, addr } => {
                RpcResponse::Join(self.join(node_id, addr).await.map_err(remote))
            }
        }
    }
}

/// Runs [`QuorumNode::tick`] every `interval`, and at once when this node's leadership
/// (or term) changes so a new leader's controller starts without waiting for the next tick.
pub(crate) async fn tick_loop(node: Arc<QuorumNode>, interval: Duration) {
    let mut metrics = node.raft.metrics();
    let mut seen: Option<(ServerState, u64)> = None;
    let mut next_tick = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_tick) => {
                node.tick().await;
                next_tick = tokio::time::Instant::now() + interval;
            }
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = {
                    let m = metrics.borrow_and_update();
                    (m.state, m.current_term)
                };
                if seen != Some(now) {
                    seen = Some(now);
                    node.tick().await;
                    next_tick = tokio::time::Instant::now() + interval;
                }
            }
        }
    }
}
