//! `OffsetFetch` (key 9, v1–9): a group's committed offsets (one group before v8, a batch of
//! groups from v8). A partition without a commit answers offset -1 with no error, as Kafka.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use gregor_protocol::ErrorCode;

use crate::group::{CommittedOffset, GroupCoordinator};

/// A topic's partitions with their commits.
type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

/// One group's committed offsets, grouped by topic, or the group's error.
type Fetched = Result<Vec<TopicOffsets>, ErrorCode>;

fn fetch(
    coordinator: &GroupCoordinator,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(&str, i32)>,
) -> Fetched {
    let flat = coordinator.fetch_offsets(group, topics, member)?;
    let mut by_topic: Vec<TopicOffsets> = Vec::new();
    for ((topic, partition), committed) in flat {
        match by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, parts)) => parts.push((partition, committed)),
            None => by_topic.push((topic, vec![(partition, committed)])),
        }
    }
    Ok(by_topic)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn metadata(c: &Option<CommittedOffset>) -> Option<StrBytes> {
    Some(StrBytes::from_string(
        c.as_ref().map(|c| c.metadata.clone()).unwrap_or_default(),
    ))
}

/// Answers an OffsetFetch.
pub fn handle(
    request: &OffsetFetchRequest,
    version: i16,
    coordinator: &GroupCoordinator,
) -> OffsetFetchResponse {
    let epoch = |c: &Option<CommittedOffset>| {
        if version >= 5 {
            c.as_ref().map_or(-1, |c| c.leader_epoch)
        } else {
            -1
        }
    };
    if version < 8 {
        let topics = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let (error, fetched) = match fetch(coordinator, &request.group_id, topics, None) {
            Ok(f) => (ErrorCode::NONE, f),
            Err(e) => (e, Vec::new()),
        };
        let topics = fetched
            .into_iter()
            .map(|(topic, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(name(&topic))
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, c)| {
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
                                    .with_committed_leader_epoch(epoch(&c))
                                    .with_metadata(metadata(&c))
                            })
                            .collect(),
                    )
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        return if version >= 2 {
            response.with_error_code(error.0)
        } else {
            response
        };
    }
    let groups = request
        .groups
        .iter()
        .map(|g| {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let member = g
                .member_id
                .as_deref()
                .filter(|m| !m.is_empty() && g.member_epoch >= 0)
                .map(|m| (m, g.member_epoch));
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            match fetch(coordinator, &g.group_id, topics, member) {
                Err(e) => group.with_error_code(e.0),
                Ok(fetched) => group.with_topics(
                    fetched
                        .into_iter()
                        .map(|(topic, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name(&topic))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, c)| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(
                                                    c.as_ref().map_or(-1, |c| c.offset),
                                                )
                                                .with_committed_leader_epoch(epoch(&c))
                                                .with_metadata(metadata(&c))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}
