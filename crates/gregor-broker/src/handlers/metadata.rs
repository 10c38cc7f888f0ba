//! `Metadata` (key 3): the cluster as clients see it — brokers, controller, cluster id, topics.
//!
//! Gregor does not host topics yet (topic creation arrives with the rest of the broker work),
//! so every requested topic is answered `UNKNOWN_TOPIC_OR_PARTITION` and a request for all
//! topics gets none. Auto-creation is not attempted.

use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

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
}

/// Answers a Metadata request.
pub fn handle(request: &MetadataRequest, cluster: &ClusterView<'_>) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(cluster.node_id))
        .with_host(StrBytes::from_string(cluster.host.to_string()))
        .with_port(i32::from(cluster.port));
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_error_code(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_string(cluster.cluster_id.to_string())))
        .with_controller_id(BrokerId(cluster.node_id))
        .with_topics(topics)
}
