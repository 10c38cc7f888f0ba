//! `ConsumerGroupHeartbeat` (key 68, v0–1): the KIP-848 consumer protocol. Joining, leaving,
//! staying alive and receiving the assignment are all this one request.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::GroupCoordinator;
use crate::group::consumer::HeartbeatRequest;

use super::ClientInfo;

/// Answers a ConsumerGroupHeartbeat.
pub fn handle(
    request: &ConsumerGroupHeartbeatRequest,
    client: &ClientInfo,
    coordinator: &GroupCoordinator,
    now_ms: i64,
) -> ConsumerGroupHeartbeatResponse {
    let text = |s: &Option<StrBytes>| s.as_ref().map(|s| s.to_string());
    let heartbeat = HeartbeatRequest {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: text(&request.instance_id),
        rack_id: text(&request.rack_id),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_regex: text(&request.subscribed_topic_regex),
        server_assignor: text(&request.server_assignor),
        owned: request.topic_partitions.as_ref().map(|tps| {
            let mut owned = BTreeMap::new();
            for tp in tps {
                owned
                    .entry(tp.topic_id)
                    .or_insert_with(std::collections::BTreeSet::new)
                    .extend(tp.partitions.iter().copied());
            }
            owned
        }),
        client_id: client.client_id.clone(),
        client_host: client.host.clone(),
    };
    let result = coordinator.consumer_heartbeat(&request.group_id, heartbeat, now_ms);
    let assignment = result.assignment.map(|parts| {
        Assignment::default().with_topic_partitions(
            parts
                .into_iter()
                .map(|(id, p)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(p.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(result.error.0)
        .with_error_message(result.message.map(StrBytes::from_string))
        .with_member_id(Some(StrBytes::from_string(result.member_id)))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(coordinator.consumer_heartbeat_interval_ms())
        .with_assignment(assignment)
}
