//! `Metadata` (key 3): the cluster as clients see it — brokers, controller, cluster id, and the
//! topics with their partitions. This single node leads every partition (leader epoch 0, one
//! replica, in sync). A requested topic that does not exist is created with `num.partitions`
//! when both `auto.create.topics.enable` and the request allow it, as Kafka does.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::topics::{Topic, TopicRegistry};

/// The facts about this broker a Metadata response needs.
pub struct ClusterView<'a> {
    /// This broker's `node.id`.
    pub node_id: i32,
    /// Host clients should connect to, for the listener the request came in on.
    pub host: &'a str,
    /// Port for that listener.
    pub port: u16,
    /// The cluster id from `meta.properties`.
    pub cluster_id: &'a str,
    /// `auto.create.topics.enable`.
    pub auto_create: bool,
    /// `num.partitions`, for auto-created topics.
    pub num_partitions: i32,
}

/// The Metadata entry of a hosted topic, led by `node_id`.
pub fn topic_entry(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}

/// Answers a Metadata request.
pub fn handle(
    request: &MetadataRequest,
    cluster: &ClusterView<'_>,
    topics: &TopicRegistry,
    now_ms: i64,
) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(cluster.node_id))
        .with_host(StrBytes::from_string(cluster.host.to_string()))
        .with_port(i32::from(cluster.port));
    let entries = match &request.topics {
        None => topics
            .all()
            .iter()
            .map(|t| topic_entry(t, cluster.node_id))
            .collect(),
        Some(requested) => requested
            .iter()
            .map(|t| {
                let found = match &t.name {
                    Some(name) => topics.get(name).or_else(|| {
                        (cluster.auto_create && request.allow_auto_topic_creation)
                            .then(|| {
                                topics
                                    .create(
                                        name,
                                        cluster.num_partitions,
                                        -1,
                                        Default::default(),
                                        false,
                                        now_ms,
                                    )
                                    .ok()
                            })
                            .flatten()
                    }),
                    None => topics.by_id(t.topic_id),
                };
                match found {
                    Some(topic) => topic_entry(&topic, cluster.node_id),
                    None => {
                        let code = match &t.name {
                            Some(name) if crate::topics::validate_name(name).is_err() => {
                                ErrorCode::INVALID_TOPIC_EXCEPTION
                            }
                            Some(_) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                            None => ErrorCode::UNKNOWN_TOPIC_ID,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.0)
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                    }
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_string(cluster.cluster_id.to_string())))
        .with_controller_id(BrokerId(cluster.node_id))
        .with_topics(entries)
        .with_cluster_authorized_operations(i32::MIN)
}
