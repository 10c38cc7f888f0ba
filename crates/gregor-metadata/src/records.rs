//! Metadata records: the entries of the cluster metadata log.
//!
//! They carry what Kafka's KRaft records carry (`RegisterBrokerRecord`, `TopicRecord`,
//! `PartitionRecord`, `PartitionChangeRecord`, `ConfigRecord`, `RemoveTopicRecord`,
//! `ProducerIdsRecord`…) with the same meaning, but are encoded with serde rather than Kafka's
//! generated schemas: the metadata log is internal to the quorum and never read by clients.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker's `node.id`.
pub type BrokerId = i32;

/// `leader` of a partition that has none (every replica offline or out of the ISR).
pub const NO_LEADER: BrokerId = -1;

/// One listener a broker advertises to clients (`advertised.listeners`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`, `INTERNAL`…).
    pub name: String,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: u16,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
}

/// What a config record applies to (Kafka's `ConfigResource`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// One broker (`Some(id)`) or the cluster-wide broker default (`None`, Kafka's empty name).
    Broker(Option<BrokerId>),
}

/// A broker joined or rejoined the cluster (Kafka's `RegisterBrokerRecord`). A broker starts
/// fenced: it leads nothing until it has caught up with the metadata log and asked to be unfenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterBrokerRecord {
    /// The broker.
    pub broker_id: BrokerId,
    /// Random id of this process's run: a restart is a new incarnation.
    pub incarnation_id: Uuid,
    /// Epoch of this registration; requests from older epochs are stale.
    pub broker_epoch: i64,
    /// Where clients reach it.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// Registered fenced (always true for a fresh registration, as in Kafka).
    pub fenced: bool,
}

/// A new topic (Kafka's `TopicRecord`); its partitions follow as [`PartitionRecord`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
}

/// The full state of one partition (Kafka's `PartitionRecord`): written when the partition is
/// created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// Owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Replica brokers, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<BrokerId>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<BrokerId>,
    /// Current leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Bumped on every leader change: fences the old leader and drives follower truncation.
    pub leader_epoch: i32,
    /// Bumped on every change of this partition: fences stale ISR changes (`AlterPartition`).
    pub partition_epoch: i32,
}

/// A change to one partition (Kafka's `PartitionChangeRecord`); `None` fields are unchanged.
/// Applying it bumps the partition epoch, and the leader epoch whenever `leader` is set (the
/// controller sets it only when the leader changes, or when the replica set changes under it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChangeRecord {
    /// Owning topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// New ISR.
    pub isr: Option<Vec<BrokerId>>,
    /// New leader (may be [`NO_LEADER`]).
    pub leader: Option<BrokerId>,
    /// New replica list.
    pub replicas: Option<Vec<BrokerId>>,
    /// New removing replicas.
    pub removing_replicas: Option<Vec<BrokerId>>,
    /// New adding replicas.
    pub adding_replicas: Option<Vec<BrokerId>>,
}

/// A config key set (`Some`) or removed (`None`) on a resource (Kafka's `ConfigRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// What the key belongs to.
    pub resource: ConfigResource,
    /// Config key (`retention.ms`…).
    pub name: String,
    /// New value, or `None` to fall back to the default.
    pub value: Option<String>,
}

/// One entry of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// See [`RegisterBrokerRecord`].
    RegisterBroker(RegisterBrokerRecord),
    /// A broker left the cluster for good (Kafka's `UnregisterBrokerRecord`).
    UnregisterBroker {
        /// The broker.
        broker_id: BrokerId,
        /// The registration being removed.
        broker_epoch: i64,
    },
    /// A broker stopped heartbeating or shut down: it may lead nothing (`FenceBrokerRecord`).
    FenceBroker {
        /// The broker.
        broker_id: BrokerId,
        /// Its registration.
        broker_epoch: i64,
    },
    /// A registered broker caught up and may lead again (`UnfenceBrokerRecord`).
    UnfenceBroker {
        /// The broker.
        broker_id: BrokerId,
        /// Its registration.
        broker_epoch: i64,
    },
    /// See [`TopicRecord`].
    Topic(TopicRecord),
    /// See [`PartitionRecord`].
    Partition(PartitionRecord),
    /// See [`PartitionChangeRecord`].
    PartitionChange(PartitionChangeRecord),
    /// See [`ConfigRecord`].
    Config(ConfigRecord),
    /// A topic and all its partitions are gone (`RemoveTopicRecord`); its configs go with it.
    RemoveTopic {
        /// The topic.
        topic_id: Uuid,
    },
    /// A block of producer ids was handed to a broker (`ProducerIdsRecord`).
    ProducerIds {
        /// The broker that got the block.
        broker_id: BrokerId,
        /// Its registration.
        broker_epoch: i64,
        /// First id not yet handed out.
        next_producer_id: i64,
    },
}
