//! `DescribeCluster` (key 60, v0–1): the admin view of the cluster (brokers, controller, id).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::ClusterView;

/// Answers a DescribeCluster request.
pub fn handle(
    request: &DescribeClusterRequest,
    cluster: &ClusterView<'_>,
) -> DescribeClusterResponse {
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(cluster.node_id))
        .with_host(StrBytes::from_string(cluster.host.to_string()))
        .with_port(i32::from(cluster.port));
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(cluster.cluster_id.to_string()))
        .with_controller_id(BrokerId(cluster.node_id))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(i32::MIN)
}
