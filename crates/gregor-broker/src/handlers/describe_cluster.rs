//! `DescribeCluster` (key 60, v0–1): the admin view of the cluster (live brokers, controller,
//! cluster id), from the metadata image.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::ClusterView;

/// Answers a DescribeCluster request.
pub fn handle(
    request: &DescribeClusterRequest,
    cluster: &ClusterView<'_>,
) -> DescribeClusterResponse {
    let brokers = cluster
        .brokers()
        .into_iter()
        .map(|(id, host, port, rack)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(i32::from(port))
                .with_rack(rack.map(StrBytes::from_string))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(cluster.cluster_id.to_string()))
        .with_controller_id(BrokerId(cluster.controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
