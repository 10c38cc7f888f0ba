//! The active controller's decisions: requests in, metadata records out.
//!
//! `Controller` is deliberately free of I/O and of Raft: given the current [`MetadataImage`] and
//! one request (or a clock tick) it answers and returns the records that carry the change out.
//! The quorum runs it only on the Raft leader, one request at a time, and appends the records
//! atomically before answering, so every decision is made against an image that includes all
//! earlier decisions. A newly elected leader starts a fresh `Controller` on the committed image;
//! the only state it keeps itself is soft (when each broker last heartbeated), which a new
//! leader rebuilds by giving every broker a full session from its election.

mod brokers;
mod election;
mod partitions;
mod placement;
#[cfg(test)]
mod tests;
mod topics;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use gregor_protocol::ErrorCode;

use crate::image::MetadataImage;
use crate::records::{BrokerId, ConfigResource, Endpoint, MetadataRecord};

use election::Batch;

/// Settings the controller decides by (Kafka's keys in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// A broker that has not heartbeated for this long is fenced (`broker.session.timeout.ms`).
    pub broker_session_timeout_ms: i64,
    /// Partitions of topics created without a count (`num.partitions`).
    pub num_partitions: i32,
    /// Replication factor of topics created without one (`default.replication.factor`).
    pub default_replication_factor: i16,
    /// Elect out-of-ISR replicas when no ISR member is alive (`unclean.leader.election.enable`);
    /// a topic's own `unclean.leader.election.enable` config overrides it.
    pub unclean_leader_election_enable: bool,
    /// Move leadership back to preferred leaders (`auto.leader.rebalance.enable`).
    pub auto_leader_rebalance_enable: bool,
    /// How often to check for preferred-leader imbalance
    /// (`leader.imbalance.check.interval.seconds`, in ms here).
    pub leader_imbalance_check_interval_ms: i64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            broker_session_timeout_ms: 9_000,
            num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
        }
    }
}

/// An error for one item of a request: the Kafka error code clients get, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Kafka error code.
    pub code: i16,
    /// Human-readable reason, passed to clients as the error message.
    pub message: String,
}

impl ItemError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ItemError {
            code: code.0,
            message: message.into(),
        }
    }
}

/// A topic to create (CreateTopics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Name, already checked against Kafka's naming rules by the broker.
    pub name: String,
    /// Partition count, or -1 for `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor, or -1 for `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment: partition index → replicas. When given, count and factor must be -1.
    pub assignments: BTreeMap<i32, Vec<BrokerId>>,
    /// Config overrides, already validated by the broker.
    pub configs: BTreeMap<String, String>,
}

/// The outcome of creating one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopic {
    /// The new topic's id.
    pub topic_id: Uuid,
    /// Its partition count.
    pub num_partitions: i32,
    /// Its replication factor.
    pub replication_factor: i16,
}

/// Partitions to add to a topic (CreatePartitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPartitions {
    /// Topic name.
    pub name: String,
    /// New total count.
    pub count: i32,
    /// Replicas of each new partition, in order, if chosen by the caller.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

/// One config change (IncrementalAlterConfigs' operations; AlterConfigs is sent as a `Set` of
/// every given key plus a `Delete` of every other key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    /// Set `key` to `value`.
    Set(String, String),
    /// Remove the override of `key`.
    Delete(String),
}

/// An ISR change a partition leader asks for (Kafka's `AlterPartition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChange {
    /// Topic.
    pub topic_id: Uuid,
    /// Partition.
    pub partition: i32,
    /// The leader epoch the leader is in.
    pub leader_epoch: i32,
    /// The ISR it wants.
    pub new_isr: Vec<BrokerId>,
    /// The partition epoch it last saw (stale requests get `INVALID_UPDATE_VERSION`).
    pub partition_epoch: i32,
}

/// Kind of leader election (ElectLeaders' `election_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// Move leadership to the preferred replica if it is alive and in the ISR.
    Preferred,
    /// Elect any live replica when no ISR member is alive (may lose data).
    Unclean,
}

/// A request to the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// A broker starts (Kafka's `BrokerRegistration`).
    RegisterBroker {
        /// `node.id`.
        broker_id: BrokerId,
        /// This process run.
        incarnation_id: Uuid,
        /// Advertised listeners.
        endpoints: Vec<Endpoint>,
        /// `broker.rack`.
        rack: Option<String>,
    },
    /// A broker is alive (Kafka's `BrokerHeartbeat`).
    BrokerHeartbeat {
        /// `node.id`.
        broker_id: BrokerId,
        /// From its registration.
        broker_epoch: i64,
        /// How far it has applied the metadata log.
        current_metadata_offset: u64,
        /// It wants to stay (or become) fenced.
        want_fence: bool,
        /// It is shutting down: move its leaderships away (controlled shutdown).
        want_shutdown_now: bool,
    },
    /// CreateTopics.
    CreateTopics {
        /// Topics to create.
        topics: Vec<NewTopic>,
        /// Check only, change nothing.
        validate_only: bool,
    },
    /// CreatePartitions.
    CreatePartitions {
        /// Topics to grow.
        topics: Vec<NewPartitions>,
        /// Check only, change nothing.
        validate_only: bool,
    },
    /// DeleteTopics, by name.
    DeleteTopics {
        /// Topics to delete.
        names: Vec<String>,
    },
    /// (Incremental)AlterConfigs.
    AlterConfigs {
        /// Per resource, the operations to apply in order.
        resources: Vec<(ConfigResource, Vec<ConfigOp>)>,
        /// Check only, change nothing.
        validate_only: bool,
    },
    /// AlterPartition: leaders shrink or expand their ISR.
    AlterPartition {
        /// The leader asking.
        broker_id: BrokerId,
        /// Its registration epoch.
        broker_epoch: i64,
        /// The changes.
        changes: Vec<IsrChange>,
    },
    /// ElectLeaders; `None` means every partition.
    ElectLeaders {
        /// Preferred or unclean.
        election_type: ElectionType,
        /// (topic, partition) pairs.
        partitions: Option<Vec<(String, i32)>>,
    },
    /// AlterPartitionReassignments: `Some(replicas)` starts one, `None` cancels one.
    AlterPartitionReassignments {
        /// (topic, partition, target replicas).
        reassignments: Vec<(String, i32, Option<Vec<BrokerId>>)>,
    },
    /// A block of producer ids for a broker (Kafka's `AllocateProducerIds`).
    AllocateProducerIds {
        /// The broker.
        broker_id: BrokerId,
        /// Its registration epoch.
        broker_epoch: i64,
    },
}

/// The controller's answer, one variant per request kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// To `RegisterBroker`.
    Registered(Result<i64, ItemError>),
    /// To `BrokerHeartbeat`.
    Heartbeat(Result<HeartbeatReply, ItemError>),
    /// To `CreateTopics`, in request order.
    TopicsCreated(Vec<(String, Result<CreatedTopic, ItemError>)>),
    /// To `CreatePartitions`, in request order.
    PartitionsCreated(Vec<(String, Result<(), ItemError>)>),
    /// To `DeleteTopics`, in request order: the deleted topic's id.
    TopicsDeleted(Vec<(String, Result<Uuid, ItemError>)>),
    /// To `AlterConfigs`, in request order.
    ConfigsAltered(Vec<(ConfigResource, Result<(), ItemError>)>),
    /// To `AlterPartition`: per change, the partition state the leader must adopt.
    #[allow(clippy::type_complexity)]
    PartitionsAltered(Result<Vec<(Uuid, i32, Result<AlteredPartition, ItemError>)>, ItemError>),
    /// To `ElectLeaders`: per partition; `ELECTION_NOT_NEEDED` when the leader is already right.
    LeadersElected(Vec<((String, i32), Result<(), ItemError>)>),
    /// To `AlterPartitionReassignments`.
    Reassigned(Vec<((String, i32), Result<(), ItemError>)>),
    /// To `AllocateProducerIds`: first id and count of the block.
    ProducerIds(Result<(i64, i32), ItemError>),
}

/// What a heartbeat tells the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// It has applied the metadata log past its registration.
    pub is_caught_up: bool,
    /// It is fenced (leads nothing, hidden from clients).
    pub is_fenced: bool,
    /// Its controlled shutdown is complete: it may exit.
    pub should_shutdown: bool,
}

/// The partition state after an accepted ISR change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlteredPartition {
    /// Leader.
    pub leader: BrokerId,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// The ISR now in force.
    pub isr: Vec<BrokerId>,
    /// The partition epoch now in force.
    pub partition_epoch: i32,
}

/// The active controller's decision logic; see the module docs.
pub struct Controller {
    config: ControllerConfig,
    /// When this controller became active: no session is counted from earlier.
    start_ms: i64,
    /// Last heartbeat (or registration) of each broker heard from since then.
    last_contact: BTreeMap<BrokerId, i64>,
    /// When leader imbalance was last checked.
    last_rebalance_ms: i64,
}

impl Controller {
    /// A controller that became active at `now_ms`: every registered broker gets a full
    /// session from now before it can be fenced.
    /// (`last_contact` holds only brokers heard from during this term.)
    pub fn new(config: ControllerConfig, now_ms: i64) -> Controller {
        Controller {
            config,
            start_ms: now_ms,
            last_contact: BTreeMap::new(),
            last_rebalance_ms: now_ms,
        }
    }

    /// Decides one request against `image`: the answer, and the records to append (all or
    /// nothing) before the answer is sent. An empty list means nothing changes.
    pub fn handle(
        &mut self,
        image: &MetadataImage,
        request: ControllerRequest,
        now_ms: i64,
    ) -> (ControllerResponse, Vec<MetadataRecord>) {
        let mut batch = Batch::new(image);
        let response = match request {
            ControllerRequest::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                rack,
            } => self.register_broker(
                &mut batch,
                broker_id,
                incarnation_id,
                endpoints,
                rack,
                now_ms,
            ),
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                current_metadata_offset,
                want_fence,
                want_shutdown_now,
            } => self.heartbeat(
                &mut batch,
                broker_id,
                broker_epoch,
                current_metadata_offset,
                want_fence,
                want_shutdown_now,
                now_ms,
            ),
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => self.create_topics(&mut batch, topics, validate_only),
            ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            } => self.create_partitions(&mut batch, topics, validate_only),
            ControllerRequest::DeleteTopics { names } => self.delete_topics(&mut batch, names),
            ControllerRequest::AlterConfigs {
                resources,
                validate_only,
            } => self.alter_configs(&mut batch, resources, validate_only),
            ControllerRequest::AlterPartition {
                broker_id,
                broker_epoch,
                changes,
            } => self.alter_partition(&mut batch, broker_id, broker_epoch, changes),
            ControllerRequest::ElectLeaders {
                election_type,
                partitions,
            } => self.elect_leaders(&mut batch, election_type, partitions),
            ControllerRequest::AlterPartitionReassignments { reassignments } => {
                self.reassign(&mut batch, reassignments)
            }
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => self.allocate_producer_ids(&mut batch, broker_id, broker_epoch),
        };
        (response, batch.into_records())
    }

    /// Periodic work: fences brokers whose session expired (moving their leaderships and
    /// shrinking ISRs) and, with `auto.leader.rebalance.enable`, moves leadership back to
    /// preferred replicas. Returns the records to append.
    pub fn tick(&mut self, image: &MetadataImage, now_ms: i64) -> Vec<MetadataRecord> {
        let mut batch = Batch::new(image);
        self.fence_expired(&mut batch, now_ms);
        // Leaderless partitions that gained a candidate (e.g. unclean election enabled since),
        // and reassignments whose new replicas caught up.
        batch.recover_leaderless(&self.config);
        batch.complete_reassignments();
        if self.config.auto_leader_rebalance_enable
            && now_ms - self.last_rebalance_ms >= self.config.leader_imbalance_check_interval_ms
        {
            self.last_rebalance_ms = now_ms;
            self.rebalance(&mut batch);
        }
        batch.into_records()
    }
}
