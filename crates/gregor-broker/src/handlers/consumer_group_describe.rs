//! `ConsumerGroupDescribe` (key 69, v0–1): KIP-848 groups with their epochs, members, current
//! and target assignments. Classic and unknown groups get `GROUP_ID_NOT_FOUND`, as Kafka.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use gregor_protocol::ErrorCode;

use crate::group::consumer::TopicPartitions as Owned;
use crate::group::{GroupCoordinator, GroupKind};
use crate::topics::TopicRegistry;

/// KIP-1099's member type for a member of the consumer protocol.
const CONSUMER_MEMBER: i8 = 1;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn assignment(parts: &Owned, topics: &TopicRegistry) -> Assignment {
    Assignment::default().with_topic_partitions(
        parts
            .iter()
            .map(|(id, p): (&Uuid, &BTreeSet<i32>)| {
                let name = topics.by_id(*id).map(|t| t.name).unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(s(&name)))
                    .with_partitions(p.iter().copied().collect())
            })
            .collect(),
    )
}

/// Answers a ConsumerGroupDescribe.
pub fn handle(
    request: &ConsumerGroupDescribeRequest,
    version: i16,
    coordinator: &GroupCoordinator,
    topics: &TopicRegistry,
) -> ConsumerGroupDescribeResponse {
    let groups = request
        .group_ids
        .iter()
        .map(|id| {
            let described = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(i32::MIN);
            let refused = described.clone();
            coordinator
                .with_group(id, |group| {
                    let consumer = group.and_then(|g| match &g.kind {
                        GroupKind::Consumer(c) => Some(c),
                        GroupKind::Classic(_) => None,
                    });
                    let Some(g) = consumer else {
                        let message = if group.is_some() {
                            format!("group {} is not a consumer group", id.0)
                        } else {
                            format!("group {} not found", id.0)
                        };
                        return described
                            .with_error_code(ErrorCode::GROUP_ID_NOT_FOUND.0)
                            .with_error_message(Some(StrBytes::from_string(message)))
                            .with_group_state(s("Dead"));
                    };
                    let members = g
                        .members
                        .values()
                        .map(|m| {
                            let member = Member::default()
                                .with_member_id(s(&m.member_id))
                                .with_instance_id(m.instance_id.as_deref().map(s))
                                .with_rack_id(m.rack_id.as_deref().map(s))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(s(&m.client_id))
                                .with_client_host(s(&m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .iter()
                                        .map(|n| TopicName(s(n)))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(m.subscribed_regex.as_deref().map(s))
                                .with_assignment(assignment(&m.assigned, topics))
                                .with_target_assignment(assignment(
                                    &g.target.get(&m.member_id).cloned().unwrap_or_default(),
                                    topics,
                                ));
                            if version >= 1 {
                                member.with_member_type(CONSUMER_MEMBER)
                            } else {
                                member
                            }
                        })
                        .collect();
                    described
                        .with_group_state(StrBytes::from_static_str(g.state_name()))
                        .with_group_epoch(g.group_epoch)
                        .with_assignment_epoch(g.assignment_epoch)
                        .with_assignor_name(s(&g.assignor_name))
                        .with_members(members)
                })
                .unwrap_or_else(|code| refused.with_error_code(code.0))
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
