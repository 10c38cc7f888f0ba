//! `Metadata` (key 3): the cluster as clients see it — live brokers, controller, cluster id, and
//! the topics with each partition's leader, leader epoch, replicas and ISR — answered from the
//! metadata image this broker applied. Each broker is described by its endpoint on the listener
//! the request came in on. A requested topic that does not exist is created with
//! `num.partitions` and `default.replication.factor` when both `auto.create.topics.enable` and
//! the request allow it, as Kafka does.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_metadata::MetadataImage;
use gregor_metadata::image::TopicImage;
use gregor_protocol::ErrorCode;

use crate::topics::{TopicRegistry, validate_name};

/// The cluster as one request sees it: the image, and the listener the request came in on.
pub struct ClusterView<'a> {
    /// The metadata image this broker applied.
    pub image: &'a MetadataImage,
    /// Listener the request came in on: other brokers are described by their endpoint on it.
    pub listener: &'a str,
    /// The cluster id from `meta.properties`.
    pub cluster_id: &'a str,
    /// The id clients are given as controller: the active controller when it is also a
    /// broker, else a live broker (clients cannot reach controller-only nodes, as in KRaft).
    pub controller_id: i32,
}

impl ClusterView<'_> {
    /// Live brokers with an endpoint on this listener: `(id, host, port, rack)`.
    pub fn brokers(&self) -> Vec<(i32, String, u16, Option<String>)> {
        self.image
            .live_brokers()
            .filter_map(|b| {
                b.endpoint(self.listener)
                    .map(|e| (b.id, e.host.clone(), e.port, b.rack.clone()))
            })
            .collect()
    }
}

/// The Metadata entry of a topic.
pub fn topic_entry(image: &MetadataImage, topic: &TopicImage) -> MetadataResponseTopic {
    let live = |id: &i32| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let ids = |ids: &[i32]| ids.iter().map(|&id| BrokerId(id)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let offline: Vec<i32> = p.replicas.iter().copied().filter(|r| !live(r)).collect();
            let error = if p.has_leader() {
                ErrorCode::NONE
            } else {
                ErrorCode::LEADER_NOT_AVAILABLE
            };
            MetadataResponsePartition::default()
                .with_error_code(error.0)
                .with_partition_index(index)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(i32::MIN)
}

/// Topics of `request` to create before answering (auto-creation).
pub fn to_auto_create(
    request: &MetadataRequest,
    image: &MetadataImage,
    auto_create: bool,
) -> Vec<String> {
    if !(auto_create && request.allow_auto_topic_creation) {
        return Vec::new();
    }
    request
        .topics
        .iter()
        .flatten()
        .filter_map(|t| t.name.as_ref())
        .map(|n| n.to_string())
        .filter(|n| image.topic(n).is_none() && validate_name(n).is_ok())
        .collect()
}

/// Creates topics for auto-creation; failures (a concurrent creation, too few brokers) only
/// show as the topic's error in the answer.
pub async fn auto_create(topics: &TopicRegistry, names: Vec<String>) {
    for name in names {
        if let Err(e) = topics
            .create(&name, -1, -1, Default::default(), Default::default(), false)
            .await
        {
            tracing::debug!(topic = %name, error = %e, "auto-creation failed");
        }
    }
}

/// Answers a Metadata request.
pub fn handle(request: &MetadataRequest, cluster: &ClusterView<'_>) -> MetadataResponse {
    let image = cluster.image;
    let brokers = cluster
        .brokers()
        .into_iter()
        .map(|(id, host, port, rack)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(i32::from(port))
                .with_rack(rack.map(StrBytes::from_string))
        })
        .collect();
    let entries = match &request.topics {
        None => image
            .topic_ids
            .values()
            .filter_map(|id| image.topics.get(id))
            .map(|t| topic_entry(image, t))
            .collect(),
        Some(requested) => requested
            .iter()
            .map(|t| {
                let found = match &t.name {
                    Some(name) => image.topic(name),
                    None => image.topics.get(&t.topic_id),
                };
                match found {
                    Some(topic) => topic_entry(image, topic),
                    None => {
                        let code = match &t.name {
                            Some(name) if validate_name(name).is_err() => {
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
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(cluster.cluster_id.to_string())))
        .with_controller_id(BrokerId(cluster.controller_id))
        .with_topics(entries)
        .with_cluster_authorized_operations(i32::MIN)
}
